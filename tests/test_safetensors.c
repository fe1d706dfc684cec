/*
 * test_safetensors.c - the safetensors reader and writer against files written by the
 * reference Python safetensors (tests/data/st, tools/gen_st_fixtures.py): tensors, dtypes,
 * shapes and bytes as the manifest says; byte-identical re-writes (one call, streamed in
 * chunks, in any tensor order); the writer's layout, errors and atomicity; misaligned input.
 * The malformed corpus is test_io_malformed.c.
 */
#include "test_io_util.h"

static char *fixture_path(const char *rel) {
    char *p = malloc(strlen(rel) + 32);
    sprintf(p, "tests/data/st/%s", rel);
    return p;
}

/* Checks an open file against its manifest rows: [name, dtype, shape, fnv] in file order. */
static void check_against_manifest(const cq_st_file *f, const json_t *rows, const char *label) {
    CHECKF(cq_st_count(f) == (int64_t)json_array_size(rows), "%s: %lld tensors, manifest %zu", label,
           (long long)cq_st_count(f), json_array_size(rows));
    for (size_t i = 0; i < json_array_size(rows) && (int64_t)i < cq_st_count(f); i++) {
        const json_t *row = json_array_get(rows, i);
        const cq_tensor *t = cq_st_tensor(f, (int64_t)i);
        CHECKF(!strcmp(cq_st_name(f, (int64_t)i), json_string_value(json_array_get(row, 0))), "%s: name %zu", label, i);
        CHECKF(!strcmp(cq_dtype_name(t->dtype), json_string_value(json_array_get(row, 1))), "%s: dtype of %s", label,
               cq_st_name(f, (int64_t)i));
        const json_t *shape = json_array_get(row, 2);
        bool same = t->ndim == (int)json_array_size(shape);
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == json_integer_value(json_array_get(shape, d));
        CHECKF(same, "%s: shape of %s", label, cq_st_name(f, (int64_t)i));
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)io_fnv1a64(t->data, cq_tensor_nbytes(t)));
        CHECKF(!strcmp(hex, json_string_value(json_array_get(row, 3))), "%s: bytes of %s", label,
               cq_st_name(f, (int64_t)i));
        CHECKF(((uintptr_t)t->data % cq_dtype_size(t->dtype)) == 0, "%s: %s misaligned", label,
               cq_st_name(f, (int64_t)i));
    }
}

TST(st_read_reference_files_match_manifest) {
    json_t *m = io_manifest();
    CHECK(m != NULL);
    if (!m) return;
    const char *rel;
    json_t *rows;
    int files = 0;
    json_object_foreach(json_object_get(m, "files"), rel, rows) {
        char *p = fixture_path(rel);
        cq_err err = {0};
        cq_st_file *f = NULL;
        CHECKF(cq_st_open(p, &f, &err) == CQ_OK, "%s: %s", p, err.msg);
        if (f) check_against_manifest(f, rows, p);
        cq_st_close(f);
        free(p);
        files++;
    }
    CHECK(files == 7);
    json_decref(m);
}

TST(st_open_memory_matches_open) {
    size_t n;
    unsigned char *buf = io_slurp("tests/data/st/mixed.safetensors", &n);
    CHECK(buf != NULL);
    cq_err err = {0};
    cq_st_file *a = NULL, *b = NULL;
    CHECK(cq_st_open("tests/data/st/mixed.safetensors", &a, &err) == CQ_OK);
    CHECK(cq_st_open_memory(buf, n, "mem", &b, &err) == CQ_OK);
    CHECK(a && b && cq_st_count(a) == cq_st_count(b) && cq_st_count(a) == 20);
    for (int64_t i = 0; a && b && i < cq_st_count(a); i++) {
        CHECK(!strcmp(cq_st_name(a, i), cq_st_name(b, i)));
        const cq_tensor *x = cq_st_tensor(a, i), *y = cq_st_tensor(b, i);
        CHECK(cq_tensor_nbytes(x) == cq_tensor_nbytes(y) && !memcmp(x->data, y->data, cq_tensor_nbytes(x)));
    }
    CHECK(!strcmp(cq_st_path(b), "mem"));
    cq_st_close(a);
    cq_st_close(b);
    free(buf);
}

TST(st_get_find_metadata_and_scalars) {
    cq_err err = {0};
    cq_st_file *f = NULL;
    CHECK(cq_st_open("tests/data/st/mixed.safetensors", &f, &err) == CQ_OK);
    if (!f) return;
    const cq_tensor *t = NULL;
    CHECK(cq_st_get(f, "scalar", &t, &err) == CQ_OK && t->ndim == 0 && t->dtype == CQ_F32);
    CHECK(t && *(const float *)t->data == 3.5f);
    CHECK(cq_st_get(f, "scalar.i64", &t, &err) == CQ_OK && *(const int64_t *)t->data == 42);
    CHECK(cq_st_get(f, "i.i8", &t, &err) == CQ_OK && ((const int8_t *)t->data)[0] == -128);
    CHECK(cq_st_get(f, "empty", &t, &err) == CQ_OK && t->ndim == 2 && t->shape[0] == 0 && cq_tensor_nbytes(t) == 0);
    CHECK(cq_st_get(f, "odd \"name\"\\ \xc3\xa9/\t\xe2\x82\xac", &t, &err) == CQ_OK);
    CHECK(cq_st_get(f, "nope", &t, &err) == CQ_E_NOTFOUND && t == NULL);
    CHECK(strstr(err.msg, "mixed.safetensors") && strstr(err.msg, "'nope'"));
    CHECK(cq_st_find(f, "w.f32") >= 0 && cq_st_find(f, "w.f3") == -1);
    CHECK(cq_st_metadata_count(f) == 1 && !strcmp(cq_st_metadata(f, "format"), "pt"));
    CHECK(cq_st_metadata(f, "absent") == NULL);
    CHECK(cq_st_name(f, -1) == NULL && cq_st_tensor(f, cq_st_count(f)) == NULL);
    CHECK(cq_st_header_size(f) % 8 == 0);
    CHECK(cq_st_file_offset(f, 0) == 8 + cq_st_header_size(f));
    cq_st_close(f);
    cq_st_close(NULL);
}

/* Re-writes src with cq_st_save (metadata in header order) and compares bytes. */
static void rewrite_one_call(const char *src, const char *dst) {
    cq_err err = {0};
    cq_st_file *f = NULL;
    CHECKF(cq_st_open(src, &f, &err) == CQ_OK, "%s", err.msg);
    if (!f) return;
    int64_t n = cq_st_count(f), nm = cq_st_metadata_count(f);
    const char **names = calloc((size_t)n + 1, sizeof *names);
    const cq_tensor **ts = calloc((size_t)n + 1, sizeof *ts);
    const char **meta = calloc((size_t)(2 * nm + 1), sizeof *meta);
    for (int64_t i = 0; i < n; i++) names[i] = cq_st_name(f, i), ts[i] = cq_st_tensor(f, i);
    for (int64_t i = 0; i < nm; i++) meta[2 * i] = cq_st_metadata_key(f, i), meta[2 * i + 1] = cq_st_metadata_value(f, i);
    CHECKF(cq_st_save(dst, n, names, ts, nm ? meta : NULL, &err) == CQ_OK, "%s", err.msg);
    IO_CHECK_SAME_FILE(src, dst);
    free(names);
    free(ts);
    free(meta);
    cq_st_close(f);
}

TST(st_rewrite_reference_files_byte_identical) {
    char *dir = io_tmpdir();
    CHECK(dir != NULL);
    json_t *m = io_manifest();
    const char *rel;
    json_t *rows;
    json_object_foreach(json_object_get(m, "files"), rel, rows) {
        char *src = fixture_path(rel), *dst = cq_path_join(dir, "out.safetensors");
        rewrite_one_call(src, dst);
        free(src);
        free(dst);
    }
    json_decref(m);
    CHECK(io_count_entries(dir) == 1); /* only the output: no temp files left */
    io_rmtree(dir);
}

/* Streams src into dst: tensors declared in reverse, written last-first in 3-byte chunks. */
TST(st_streaming_writer_any_order_in_chunks) {
    char *dir = io_tmpdir();
    char *dst = cq_path_join(dir, "streamed.safetensors");
    cq_err err = {0};
    cq_st_file *f = NULL;
    CHECK(cq_st_open("tests/data/st/mixed.safetensors", &f, &err) == CQ_OK);
    cq_st_writer *w = NULL;
    CHECK(cq_st_writer_open(dst, &w, &err) == CQ_OK);
    CHECK(cq_st_writer_add_metadata(w, "format", "pt", &err) == CQ_OK);
    int64_t n = cq_st_count(f);
    for (int64_t i = n - 1; i >= 0; i--) {
        const cq_tensor *t = cq_st_tensor(f, i);
        CHECK(cq_st_writer_declare(w, cq_st_name(f, i), t->dtype, t->ndim, t->shape, &err) == CQ_OK);
    }
    CHECK(!cq_fs_exists(dst)); /* nothing at the target before commit */
    for (int64_t i = n - 1; i >= 0; i--) {
        const cq_tensor *t = cq_st_tensor(f, i);
        size_t nb = cq_tensor_nbytes(t);
        for (size_t off = 0; off < nb; off += 3) {
            size_t k = nb - off < 3 ? nb - off : 3;
            CHECK(cq_st_writer_write(w, cq_st_name(f, i), (const char *)t->data + off, k, &err) == CQ_OK);
        }
    }
    CHECKF(cq_st_writer_commit(w, &err) == CQ_OK, "%s", err.msg);
    cq_st_writer_free(w);
    IO_CHECK_SAME_FILE("tests/data/st/mixed.safetensors", dst);
    cq_st_close(f);
    free(dst);
    io_rmtree(dir);
}

TST(st_writer_reference_layout) {
    char *dir = io_tmpdir();
    char *dst = cq_path_join(dir, "layout.safetensors");
    cq_err err = {0};
    int64_t s3[1] = {3};
    /* Declared in an order unlike the reference's: U8, F16, F32 "b", F32 "a", I64, BF16, BOOL. */
    const char *names[] = {"u", "h", "b", "a", "l", "bf", "flag"};
    cq_dtype dts[] = {CQ_U8, CQ_F16, CQ_F32, CQ_F32, CQ_I64, CQ_BF16, CQ_BOOL};
    cq_tensor *ts[7];
    for (int i = 0; i < 7; i++) {
        cq_tensor_new(&ts[i], dts[i], 1, s3, &err);
        memset(ts[i]->data, i + 1, cq_tensor_nbytes(ts[i]));
    }
    CHECK(cq_st_save(dst, 7, names, (const cq_tensor *const *)ts, NULL, &err) == CQ_OK);
    cq_st_file *f = NULL;
    CHECK(cq_st_open(dst, &f, &err) == CQ_OK);
    const char *want[] = {"l", "a", "b", "bf", "h", "u", "flag"}; /* descending dtype, then name */
    for (int i = 0; f && i < 7; i++) CHECKF(!strcmp(cq_st_name(f, i), want[i]), "position %d: %s", i, cq_st_name(f, i));
    for (int i = 0; f && i < 7; i++) {
        const cq_tensor *t;
        CHECK(cq_st_get(f, names[i], &t, &err) == CQ_OK && ((const unsigned char *)t->data)[0] == i + 1);
        CHECK((uintptr_t)t->data % cq_dtype_size(t->dtype) == 0);
    }
    CHECK(f && cq_st_header_size(f) % 8 == 0);
    cq_st_close(f);
    for (int i = 0; i < 7; i++) cq_tensor_free(ts[i]);
    free(dst);
    io_rmtree(dir);
}

TST(st_writer_rejects_misuse_and_leaves_nothing) {
    char *dir = io_tmpdir();
    char *dst = cq_path_join(dir, "bad.safetensors");
    cq_err err = {0};
    int64_t s2[1] = {2};
    float two[2] = {1, 2};
    cq_st_writer *w = NULL;
    CHECK(cq_st_writer_open(dst, &w, &err) == CQ_OK);
    CHECK(cq_st_writer_declare(w, "x", CQ_F32, 1, s2, &err) == CQ_OK);
    CHECK(cq_st_writer_declare(w, "x", CQ_F32, 1, s2, &err) == CQ_E_ARG && strstr(err.msg, "twice"));
    CHECK(cq_st_writer_declare(w, "", CQ_F32, 1, s2, &err) == CQ_E_ARG);
    CHECK(cq_st_writer_declare(w, "__metadata__", CQ_F32, 1, s2, &err) == CQ_E_ARG);
    CHECK(cq_st_writer_declare(w, "bad\xff", CQ_F32, 1, s2, &err) == CQ_E_ARG && strstr(err.msg, "UTF-8"));
    CHECK(cq_st_writer_declare(w, "y", CQ_DTYPE_INVALID, 1, s2, &err) == CQ_E_DTYPE);
    int64_t neg[1] = {-1};
    CHECK(cq_st_writer_declare(w, "z", CQ_F32, 1, neg, &err) == CQ_E_SHAPE);
    CHECK(cq_st_writer_declare(w, "y", CQ_F32, 1, s2, &err) == CQ_OK);
    CHECK(cq_st_writer_write(w, "x", two, 8, &err) == CQ_OK);
    CHECK(cq_st_writer_declare(w, "late", CQ_F32, 1, s2, &err) == CQ_E_ARG);
    CHECK(cq_st_writer_add_metadata(w, "k", "v", &err) == CQ_E_ARG);
    CHECK(cq_st_writer_write(w, "x", two, 1, &err) == CQ_E_ARG && strstr(err.msg, "exceed"));
    CHECK(cq_st_writer_write(w, "nope", two, 1, &err) == CQ_E_NOTFOUND);
    cq_tensor *wrong = NULL;
    int64_t s3[1] = {3};
    cq_tensor_new(&wrong, CQ_F32, 1, s3, &err);
    CHECK(cq_st_writer_write_tensor(w, "y", wrong, &err) == CQ_E_SHAPE && strstr(err.msg, "declared"));
    cq_tensor_free(wrong);
    /* "y" never got its bytes: commit fails and removes the temp file. */
    CHECK(cq_st_writer_commit(w, &err) == CQ_E_ARG && strstr(err.msg, "'y'"));
    CHECK(cq_st_writer_commit(w, &err) == CQ_E_ARG);
    cq_st_writer_free(w);
    CHECK(io_count_entries(dir) == 0);
    /* Freeing an uncommitted writer discards it and leaves an existing target intact. */
    CHECK(cq_fs_write_file_atomic(dst, "old", 3, &err) == CQ_OK);
    CHECK(cq_st_writer_open(dst, &w, &err) == CQ_OK);
    CHECK(cq_st_writer_declare(w, "x", CQ_F32, 1, s2, &err) == CQ_OK);
    CHECK(cq_st_writer_write(w, "x", two, 8, &err) == CQ_OK);
    cq_st_writer_free(w);
    size_t n;
    unsigned char *old = io_slurp(dst, &n);
    CHECK(old && n == 3 && !memcmp(old, "old", 3));
    free(old);
    CHECK(io_count_entries(dir) == 1);
    /* Committing replaces it. */
    CHECK(cq_st_writer_open(dst, &w, &err) == CQ_OK);
    CHECK(cq_st_writer_declare(w, "x", CQ_F32, 1, s2, &err) == CQ_OK);
    CHECK(cq_st_writer_write(w, "x", two, 8, &err) == CQ_OK);
    CHECK(cq_st_writer_commit(w, &err) == CQ_OK);
    cq_st_writer_free(w);
    cq_st_file *f = NULL;
    CHECK(cq_st_open(dst, &f, &err) == CQ_OK && cq_st_count(f) == 1);
    cq_st_close(f);
    CHECK(io_count_entries(dir) == 1);
    /* Output paths that cannot work. */
    CHECK(cq_st_writer_open(dir, &w, &err) == CQ_E_IO && w == NULL);
    CHECK(cq_st_writer_open("/nonexistent-folder-cq/x.safetensors", &w, &err) == CQ_E_IO && w == NULL);
    CHECK(strstr(err.msg, "/nonexistent-folder-cq/x.safetensors") != NULL);
    free(dst);
    io_rmtree(dir);
}

TST(st_empty_and_metadata_only_files) {
    char *dir = io_tmpdir();
    char *dst = cq_path_join(dir, "e.safetensors");
    cq_err err = {0};
    CHECK(cq_st_save(dst, 0, NULL, NULL, NULL, &err) == CQ_OK);
    IO_CHECK_SAME_FILE("tests/data/st/empty.safetensors", dst);
    const char *meta[] = {"format", "pt", NULL};
    CHECK(cq_st_save(dst, 0, NULL, NULL, meta, &err) == CQ_OK);
    /* The reference's own unit test: {"__metadata__":{"framework":"pt"}} padded to 40 bytes. */
    const char *meta2[] = {"framework", "pt", NULL};
    CHECK(cq_st_save(dst, 0, NULL, NULL, meta2, &err) == CQ_OK);
    size_t n;
    unsigned char *b = io_slurp(dst, &n);
    CHECK(b && n == 48 && b[0] == 40 && !memcmp(b + 8, "{\"__metadata__\":{\"framework\":\"pt\"}}     ", 40));
    free(b);
    const char *odd[] = {"k", NULL};
    CHECK(cq_st_save(dst, 0, NULL, NULL, odd, &err) == CQ_E_ARG);
    free(dst);
    io_rmtree(dir);
}

/* The reference unit test "test_serialization": one F32 [1,2,3] tensor named attn.0. */
TST(st_writer_matches_reference_unit_test_bytes) {
    char *dir = io_tmpdir();
    char *dst = cq_path_join(dir, "r.safetensors");
    cq_err err = {0};
    int64_t shape[3] = {1, 2, 3};
    float v[6] = {0, 1, 2, 3, 4, 5};
    cq_tensor *t = NULL;
    CHECK(cq_tensor_view(&t, CQ_F32, 3, shape, v, &err) == CQ_OK);
    const char *name = "attn.0";
    CHECK(cq_st_save(dst, 1, &name, (const cq_tensor *const *)&t, NULL, &err) == CQ_OK);
    size_t n;
    unsigned char *b = io_slurp(dst, &n);
    const char *hdr = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
    CHECK(b && n == 8 + 64 + 24 && b[0] == 64 && !memcmp(b + 8, hdr, strlen(hdr)));
    CHECK(b && !memcmp(b + 8 + 64, v, 24));
    free(b);
    cq_tensor_free(t);
    free(dst);
    io_rmtree(dir);
}

/* A file from another writer whose header length is not a multiple of 8: every tensor is
 * still handed out aligned, with the right values. */
TST(st_misaligned_tensors_are_copied_aligned) {
    const char *hdr = "{\"a\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[3,11]},"
                      "\"c\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[11,19]}}";
    size_t hl = strlen(hdr);
    unsigned char buf[512];
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    unsigned char *d = buf + 8 + hl;
    d[0] = 1, d[1] = 2, d[2] = 3;
    float fv[2] = {1.5f, -2.25f};
    double dv = 3.125;
    memcpy(d + 3, fv, 8);
    memcpy(d + 11, &dv, 8);
    cq_err err = {0};
    cq_st_file *f = NULL;
    CHECK(cq_st_open_memory(buf, 8 + hl + 19, "misaligned", &f, &err) == CQ_OK);
    const cq_tensor *t;
    CHECK(cq_st_get(f, "b", &t, &err) == CQ_OK && (uintptr_t)t->data % 4 == 0);
    CHECK(((const float *)t->data)[0] == 1.5f && ((const float *)t->data)[1] == -2.25f);
    CHECK(cq_st_get(f, "c", &t, &err) == CQ_OK && (uintptr_t)t->data % 8 == 0 && *(const double *)t->data == 3.125);
    cq_st_close(f);
}

TST(st_open_errors_name_the_file) {
    cq_err err = {0};
    cq_st_file *f = (cq_st_file *)1;
    CHECK(cq_st_open("tests/data/st/does-not-exist.safetensors", &f, &err) == CQ_E_IO && f == NULL);
    CHECK(strstr(err.msg, "does-not-exist.safetensors") != NULL);
    CHECK(cq_st_open("tests/data/st", &f, &err) == CQ_E_IO && strstr(err.msg, "folder"));
    CHECK(cq_st_open_memory(NULL, 0, NULL, &f, &err) == CQ_E_FORMAT && strstr(err.msg, "<memory>"));
    CHECK(cq_st_open_memory(NULL, 5, NULL, &f, &err) == CQ_E_ARG);
}

/* The bundled third-party files read completely and the tensors tile the data region. */
TST(st_bundled_models_read) {
    const char *files[] = {"data/silero_vad_16k.safetensors", "data/stories260K/model.safetensors",
                           "data/lenet_mnist.safetensors"};
    int64_t counts[] = {15, -1, 8};
    for (int k = 0; k < 3; k++) {
        cq_err err = {0};
        cq_st_file *f = NULL;
        CHECKF(cq_st_open(files[k], &f, &err) == CQ_OK, "%s", err.msg);
        if (!f) continue;
        if (counts[k] >= 0) CHECKF(cq_st_count(f) == counts[k], "%s: %lld tensors", files[k], (long long)cq_st_count(f));
        uint64_t total = 0;
        for (int64_t i = 0; i < cq_st_count(f); i++) total += cq_tensor_nbytes(cq_st_tensor(f, i));
        CHECK(total == cq_st_data_size(f));
        cq_st_close(f);
    }
}
