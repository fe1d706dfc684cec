/*
 * test_io_ckpt.c - checkpoints as one set of tensors: sharded checkpoints built here with our
 * own writers (shards + index) and opened as a folder, as an index file and shard by shard;
 * every way the index and shards can disagree; folder resolution; and the transformers-written
 * sharded quanto fixture (tests/data/st/quanto_llama_sharded), whose index we re-write byte
 * for byte.
 */
#include "test_io_util.h"

#include "io/source.h"

typedef struct shard_spec {
    const char *file;
    int n;
    const char *names[3];
    cq_dtype dtypes[3];
} shard_spec;

static const shard_spec k_shards[2] = {
    {"model-00001-of-00002.safetensors", 2, {"a", "b"}, {CQ_F32, CQ_I8}},
    {"model-00002-of-00002.safetensors", 2, {"c", "d.scalar"}, {CQ_BF16, CQ_F32}},
};

/* Writes the two shards (each tensor's bytes are its first letter repeated) into dir. */
static void write_shards(const char *dir) {
    cq_err err = {0};
    for (int s = 0; s < 2; s++) {
        cq_tensor *ts[3] = {0};
        for (int i = 0; i < k_shards[s].n; i++) {
            int64_t shape[1] = {3 + i};
            cq_tensor_new(&ts[i], k_shards[s].dtypes[i], strchr(k_shards[s].names[i], '.') ? 0 : 1, shape, &err);
            memset(ts[i]->data, k_shards[s].names[i][0], cq_tensor_nbytes(ts[i]));
        }
        char *p = cq_path_join(dir, k_shards[s].file);
        CHECK(cq_st_save(p, k_shards[s].n, k_shards[s].names, (const cq_tensor *const *)ts, NULL, &err) == CQ_OK);
        free(p);
        for (int i = 0; i < k_shards[s].n; i++) cq_tensor_free(ts[i]);
    }
}

/* Writes an index from parallel lists (n entries). */
static cq_status write_index(const char *dir, int n, const char *const *names, const char *const *files, cq_err *err) {
    char *p = cq_path_join(dir, "model.safetensors.index.json");
    cq_status s = cq_ckpt_write_index(p, 1234, n, names, files, err);
    free(p);
    return s;
}

static const char *const k_names[] = {"a", "b", "c", "d.scalar"};
static const char *const k_files[] = {"model-00001-of-00002.safetensors", "model-00001-of-00002.safetensors",
                                      "model-00002-of-00002.safetensors", "model-00002-of-00002.safetensors"};

static void check_good_checkpoint(const cq_ckpt *c, const char *how) {
    CHECKF(cq_ckpt_count(c) == 4, "%s: %lld tensors", how, (long long)cq_ckpt_count(c));
    CHECK(cq_ckpt_shard_count(c) == 2);
    CHECK(!strcmp(cq_ckpt_shard_file(c, 0), k_shards[0].file) && !strcmp(cq_ckpt_shard_file(c, 1), k_shards[1].file));
    /* Shard order, then file order (F32 before I8, F32 before BF16). */
    const char *order[] = {"a", "b", "d.scalar", "c"};
    for (int i = 0; i < 4; i++) {
        CHECKF(!strcmp(cq_ckpt_name(c, i), order[i]), "%s: position %d is %s", how, i, cq_ckpt_name(c, i));
        CHECK(cq_ckpt_tensor_shard(c, i) == (i < 2 ? 0 : 1));
    }
    for (int i = 0; i < 4; i++) {
        const cq_tensor *t = NULL;
        cq_err err = {0};
        CHECK(cq_ckpt_get(c, k_names[i], &t, &err) == CQ_OK);
        CHECK(t && ((const char *)t->data)[cq_tensor_nbytes(t) - 1] == k_names[i][0]);
        CHECK(cq_ckpt_find(c, k_names[i]) >= 0);
    }
    const cq_tensor *t = NULL;
    cq_err err = {0};
    CHECK(cq_ckpt_get(c, "zz", &t, &err) == CQ_E_NOTFOUND && strstr(err.msg, "'zz'"));
    CHECK(cq_ckpt_name(c, 4) == NULL && cq_ckpt_tensor(c, -1) == NULL && cq_ckpt_tensor_shard(c, 9) == -1);
    CHECK(cq_ckpt_shard(c, 1) && cq_st_count(cq_ckpt_shard(c, 1)) == 2 && cq_ckpt_shard(c, 2) == NULL);
}

/* The two shards and their index in dir, opened as a folder. */
static cq_ckpt *open_good_checkpoint(const char *dir) {
    cq_err err = {0};
    write_shards(dir);
    CHECK(write_index(dir, 4, k_names, k_files, &err) == CQ_OK);
    cq_ckpt *c = NULL;
    CHECKF(cq_ckpt_open(dir, &c, &err) == CQ_OK, "%s", err.msg);
    return c;
}

TST(io_ckpt_sharded_opens_as_one_set) {
    char *dir = io_tmpdir();
    cq_err err = {0};
    cq_ckpt *c = open_good_checkpoint(dir);
    if (c) {
        check_good_checkpoint(c, "folder");
        CHECK(!strcmp(cq_ckpt_dir(c), dir));
        CHECK(cq_ckpt_index_path(c) && strstr(cq_ckpt_index_path(c), "model.safetensors.index.json"));
        CHECK(cq_ckpt_index_total_size(c) == 1234);
    }
    cq_ckpt_close(c);
    char *idx = cq_path_join(dir, "model.safetensors.index.json");
    CHECK(cq_ckpt_open(idx, &c, &err) == CQ_OK);
    if (c) check_good_checkpoint(c, "index file");
    cq_ckpt_close(c);
    free(idx);
    /* A single shard opens as a plain file. */
    char *one = cq_path_join(dir, k_shards[1].file);
    CHECK(cq_ckpt_open(one, &c, &err) == CQ_OK && cq_ckpt_count(c) == 2 && cq_ckpt_index_path(c) == NULL);
    CHECK(c && !strcmp(cq_ckpt_shard_file(c, 0), k_shards[1].file) && cq_ckpt_index_total_size(c) == -1);
    cq_ckpt_close(c);
    free(one);
    io_rmtree(dir);
}

/* The checkpoint reads its shards through tensor sources: records carry the format's byte size
 * and file offset, the bytes are the shard file's own mapping (zero copy), released pages read
 * back the same, and metadata is found by key. */
TST(io_ckpt_reads_through_tensor_sources) {
    char *dir = io_tmpdir();
    cq_err err = {0};
    cq_ckpt *c = open_good_checkpoint(dir);
    for (int64_t i = 0; c && i < cq_ckpt_count(c); i++) {
        const cq__src_tensor *r = cq__ckpt_record(c, i);
        const cq__source *src = cq__ckpt_source(c, cq_ckpt_tensor_shard(c, i));
        const cq_st_file *f = cq_ckpt_shard(c, cq_ckpt_tensor_shard(c, i));
        int64_t k = cq_st_find(f, cq_ckpt_name(c, i));
        CHECK(r && src && !strcmp(src->ops->format, "safetensors") && cq__st_of_source(src) == f);
        CHECK(r && !strcmp(r->name, cq_ckpt_name(c, i)) && &r->t == cq_ckpt_tensor(c, i));
        CHECK(r && r->t.data == cq_st_tensor(f, k)->data && r->nbytes == cq_tensor_nbytes(&r->t));
        CHECK(r && r->offset == cq_st_file_offset(f, k) && r->format_type == 0);
        uint8_t first = r && r->nbytes ? ((const uint8_t *)r->t.data)[0] : 0;
        cq__ckpt_release(c, i, 0, UINT64_MAX);
        CHECK(!r || !r->nbytes || ((const uint8_t *)r->t.data)[0] == first);
    }
    CHECK(cq__ckpt_record(c, 4) == NULL && cq__ckpt_source(c, 2) == NULL);
    cq_ckpt_close(c);
    /* Metadata through the source. */
    char *p = cq_path_join(dir, "meta.safetensors");
    cq_st_writer *w = NULL;
    CHECK(cq_st_writer_open(p, &w, &err) == CQ_OK);
    CHECK(cq_st_writer_add_metadata(w, "format", "pt", &err) == CQ_OK);
    CHECK(cq_st_writer_declare(w, "x", CQ_F32, 1, (int64_t[]){3}, &err) == CQ_OK);
    CHECK(cq_st_writer_write(w, "x", (float[]){1, 2, 3}, 12, &err) == CQ_OK && cq_st_writer_commit(w, &err) == CQ_OK);
    cq_st_writer_free(w);
    cq__source *src = NULL;
    CHECKF(cq__source_open(p, &src, &err) == CQ_OK, "%s", err.msg);
    if (src) {
        CHECK(cq__src_count(src) == 1 && cq__src_tensor_at(src, 0)->nbytes == 12 && !cq__src_tensor_at(src, 1));
        CHECK(cq__src_meta_string(src, "format") && !strcmp(cq__src_meta_string(src, "format"), "pt"));
        CHECK(cq__src_meta_string(src, "absent") == NULL);
    }
    cq__source_close(src);
    CHECK(cq__source_open(dir, &src, &err) != CQ_OK && src == NULL);
    free(p);
    io_rmtree(dir);
}

/* Rewrites the index with one change and expects cq_ckpt_open to fail with status/fragment. */
static void expect_index_failure(const char *what, int n, const char *const *names, const char *const *files,
                                 cq_status want, const char *fragment) {
    char *dir = io_tmpdir();
    cq_err err = {0};
    write_shards(dir);
    CHECK(write_index(dir, n, names, files, &err) == CQ_OK);
    cq_ckpt *c = (cq_ckpt *)1;
    cq_status s = cq_ckpt_open(dir, &c, &err);
    CHECKF(s == want && c == NULL, "%s: got %s: %s", what, cq_status_str(s), err.msg);
    CHECKF(strstr(err.msg, fragment) != NULL, "%s: message lacks \"%s\": %s", what, fragment, err.msg);
    CHECKF(strchr(err.msg, '\n') == NULL, "%s: multi-line message", what);
    io_rmtree(dir);
}

TST(io_ckpt_index_and_shards_must_agree) {
    const char *names5[] = {"a", "b", "c", "d.scalar", "e"};
    const char *files5[] = {k_files[0], k_files[1], k_files[2], k_files[3], k_files[3]};
    expect_index_failure("listed but absent", 5, names5, files5, CQ_E_FORMAT, "'e' is listed in");
    expect_index_failure("not listed", 3, k_names, k_files, CQ_E_FORMAT, "does not list");
    const char *swapped[] = {k_files[2], k_files[1], k_files[2], k_files[3]};
    expect_index_failure("wrong shard", 4, k_names, swapped, CQ_E_FORMAT, "'a' is listed in model-00002");
    const char *missing[] = {k_files[0], k_files[1], k_files[2], "model-00003-of-00003.safetensors"};
    expect_index_failure("missing shard", 4, k_names, missing, CQ_E_IO, "model-00003-of-00003.safetensors");
}

TST(io_ckpt_index_rejects_bad_json_and_paths) {
    char *dir = io_tmpdir();
    cq_err err = {0};
    write_shards(dir);
    char *idx = cq_path_join(dir, "model.safetensors.index.json");
    const char *bad[][2] = {
        {"{\"weight_map\": {\"a\": \"../model-00001-of-00002.safetensors\"}}", "not a file beside the index"},
        {"{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "not a file beside the index"},
        {"{\"weight_map\": {\"a\": 3}}", "not a file name"},
        {"{\"metadata\": {}}", "missing \"weight_map\""},
        {"{\"metadata\": 5, \"weight_map\": {}}", "\"metadata\" is not an object"},
        {"{\"weight_map\": {", "not valid JSON"},
        {"[]", "not a JSON object"},
        {"{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}", "duplicate key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(cq_fs_write_file_atomic(idx, bad[i][0], strlen(bad[i][0]), &err) == CQ_OK);
        cq_ckpt *c = NULL;
        CHECKF(cq_ckpt_open(dir, &c, &err) == CQ_E_FORMAT && c == NULL, "case %zu: %s", i, err.msg);
        CHECKF(strstr(err.msg, bad[i][1]) && strstr(err.msg, "model.safetensors.index.json"), "case %zu: %s", i,
               err.msg);
    }
    /* A corrupt shard is reported with the shard's path. */
    CHECK(write_index(dir, 4, k_names, k_files, &err) == CQ_OK);
    char *shard = cq_path_join(dir, k_shards[0].file);
    CHECK(cq_fs_write_file_atomic(shard, "\x02\0\0\0\0\0\0\0[]", 10, &err) == CQ_OK);
    cq_ckpt *c = NULL;
    CHECK(cq_ckpt_open(dir, &c, &err) == CQ_E_FORMAT && strstr(err.msg, k_shards[0].file));
    free(shard);
    free(idx);
    io_rmtree(dir);
}

TST(io_ckpt_folder_resolution) {
    cq_err err = {0};
    cq_ckpt *c = NULL;
    char *dir = io_tmpdir();
    CHECK(cq_ckpt_open(dir, &c, &err) == CQ_E_NOTFOUND && strstr(err.msg, dir));
    write_shards(dir); /* two .safetensors, no index: ambiguous */
    CHECK(cq_ckpt_open(dir, &c, &err) == CQ_E_ARG && strstr(err.msg, "several"));
    /* model.safetensors wins over other files. */
    char *src = cq_path_join(dir, k_shards[0].file), *model = cq_path_join(dir, "model.safetensors");
    CHECK(cq_fs_copy_file(src, model, &err) == CQ_OK);
    CHECK(cq_ckpt_open(dir, &c, &err) == CQ_OK && cq_ckpt_count(c) == 2 && !strcmp(cq_ckpt_shard_file(c, 0), "model.safetensors"));
    cq_ckpt_close(c);
    free(src);
    free(model);
    io_rmtree(dir);
    /* One file of any name in a folder is the checkpoint. */
    CHECK(cq_ckpt_open("data/stories260K", &c, &err) == CQ_OK && cq_ckpt_count(c) > 10);
    CHECK(c && !strcmp(cq_ckpt_dir(c), "data/stories260K"));
    cq_ckpt_close(c);
    CHECK(cq_ckpt_open("data/silero_vad_16k.safetensors", &c, &err) == CQ_OK && cq_ckpt_count(c) == 15);
    CHECK(c && !strcmp(cq_ckpt_dir(c), "data"));
    cq_ckpt_close(c);
    CHECK(cq_ckpt_open("no/such/path", &c, &err) == CQ_E_IO && c == NULL && strstr(err.msg, "no/such/path"));
    cq_ckpt_close(NULL);
}

TST(io_ckpt_transformers_sharded_fixture) {
    const char *dir = "tests/data/st/quanto_llama_sharded";
    cq_err err = {0};
    cq_ckpt *c = NULL;
    CHECKF(cq_ckpt_open(dir, &c, &err) == CQ_OK, "%s", err.msg);
    if (!c) return;
    CHECK(cq_ckpt_shard_count(c) == 2);
    json_t *m = io_manifest();
    const json_t *files = json_object_get(m, "files");
    size_t expected = json_array_size(json_object_get(files, "quanto_llama_sharded/model-00001-of-00002.safetensors")) +
                      json_array_size(json_object_get(files, "quanto_llama_sharded/model-00002-of-00002.safetensors"));
    CHECK(expected > 0 && cq_ckpt_count(c) == (int64_t)expected);
    json_decref(m);
    uint64_t total = 0;
    for (int64_t i = 0; i < cq_ckpt_count(c); i++) total += cq_tensor_nbytes(cq_ckpt_tensor(c, i));
    CHECK(cq_ckpt_index_total_size(c) == (int64_t)total);
    /* Re-write the index: byte-identical to transformers'. */
    int64_t n = cq_ckpt_count(c);
    const char **names = calloc((size_t)n, sizeof *names), **shard_files = calloc((size_t)n, sizeof *shard_files);
    for (int64_t i = 0; i < n; i++) {
        names[i] = cq_ckpt_name(c, i);
        shard_files[i] = cq_ckpt_shard_file(c, cq_ckpt_tensor_shard(c, i));
    }
    char *tmp = io_tmpdir();
    char *out = cq_path_join(tmp, "model.safetensors.index.json");
    CHECK(cq_ckpt_write_index(out, cq_ckpt_index_total_size(c), n, names, shard_files, &err) == CQ_OK);
    IO_CHECK_SAME_FILE(cq_ckpt_index_path(c), out);
    const char *dup[] = {"a", "a"}, *f2[] = {"x.safetensors", "x.safetensors"};
    CHECK(cq_ckpt_write_index(out, 0, 2, dup, f2, &err) == CQ_E_ARG && strstr(err.msg, "twice"));
    free(out);
    io_rmtree(tmp);
    free(names);
    free(shard_files);
    cq_ckpt_close(c);
}

TST(io_ckpt_shard_file_names) {
    char buf[128];
    CHECK(!strcmp(cq_shard_file_name(buf, sizeof buf, "model", 2, 5), "model-00002-of-00005.safetensors"));
    CHECK(!strcmp(cq_shard_file_name(buf, sizeof buf, "diffusion_pytorch_model", 1, 1),
                  "diffusion_pytorch_model-00001-of-00001.safetensors"));
}
