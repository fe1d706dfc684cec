/*
 * safetensors_write.c - the safetensors writer: a streaming writer that lays files out exactly
 * as the reference writer (huggingface/safetensors) does.
 *
 * It fixes the layout when the first bytes arrive, then accepts each tensor's bytes in any
 * tensor order, writing them at their offsets in a temp file that commit renames into place.
 * The reader is safetensors_read.c.
 */
#include "core/strmap.h"
#include "io/io_internal.h"

#include <inttypes.h>

/* The reference writer orders tensors by its Dtype enum, descending, then by name. This is
 * the enum's relative order for the dtypes we have. */
static int dtype_rank(cq_dtype t) {
    switch (t) {
    case CQ_BOOL: return 0;
    case CQ_U8: return 1;
    case CQ_I8: return 2;
    case CQ_F8_E5M2: return 3;
    case CQ_F8_E4M3FN: return 4;
    case CQ_F8_E4M3FNUZ: return 5;
    case CQ_I16: return 6;
    case CQ_U16: return 7;
    case CQ_F16: return 8;
    case CQ_BF16: return 9;
    case CQ_I32: return 10;
    case CQ_U32: return 11;
    case CQ_F32: return 12;
    case CQ_F64: return 13;
    case CQ_I64: return 14;
    case CQ_U64: return 15;
    default: return -1;
    }
}

typedef struct wr_tensor {
    char *name;
    cq_dtype dtype;
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    uint64_t nbytes, begin, written;
} wr_tensor;

struct cq_st_writer {
    cq__afile af;
    json_t *metadata; /* insertion-ordered object of strings, NULL when none */
    wr_tensor *tensors;
    int64_t count, cap;
    cq__strmap by_name; /* name -> index into tensors */
    uint64_t data_start;
    bool sealed, failed;
};

void cq_st_writer_free(cq_st_writer *w) {
    if (!w) return;
    cq__afile_abort(&w->af);
    for (int64_t i = 0; i < w->count; i++) free(w->tensors[i].name);
    free(w->tensors);
    cq__strmap_free(&w->by_name);
    json_decref(w->metadata);
    free(w);
}

cq_status cq_st_writer_open(const char *path, cq_st_writer **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_st_writer_open: out is NULL");
    *out = NULL;
    CQ__ARG(path);
    cq_st_writer *w = cq__calloc(1, sizeof *w, err, "a safetensors writer");
    if (!w) return CQ_E_NOMEM;
    cq_status s = cq__afile_open(&w->af, path, err);
    if (s) {
        free(w);
        return s;
    }
    *out = w;
    return CQ_OK;
}

static cq_status writer_usable(cq_st_writer *w, bool want_sealed, cq_err *err) {
    if (!w) return cq_err_set(err, CQ_E_ARG, "safetensors writer is NULL");
    if (w->failed || w->af.fd < 0)
        return cq_err_set(err, CQ_E_ARG, "%s: the writer already failed or was committed",
                          w->af.final_path ? w->af.final_path : "safetensors writer");
    if (!want_sealed && w->sealed)
        return cq_err_set(err, CQ_E_ARG, "%s: cannot declare after tensor data was written", w->af.final_path);
    return CQ_OK;
}

cq_status cq_st_writer_add_metadata(cq_st_writer *w, const char *key, const char *value, cq_err *err) {
    cq_status s = writer_usable(w, false, err);
    if (s) return s;
    if (!key || !value) return cq_err_set(err, CQ_E_ARG, "%s: metadata key or value is NULL", w->af.final_path);
    if (!w->metadata && !(w->metadata = json_object()))
        return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    json_t *v = json_string(value);
    if (!v)
        return cq_err_set(err, CQ_E_ARG, "%s: metadata value of '%.100s' is not valid UTF-8", w->af.final_path, key);
    if (json_object_set_new(w->metadata, key, v) != 0)
        return cq_err_set(err, CQ_E_ARG, "%s: metadata key '%.100s' is not valid UTF-8", w->af.final_path, key);
    return CQ_OK;
}

cq_status cq_st_writer_declare(cq_st_writer *w, const char *name, cq_dtype dt, int ndim, const int64_t *shape,
                               cq_err *err) {
    cq_status s = writer_usable(w, false, err);
    if (s) return s;
    const char *path = w->af.final_path;
    if (!name || !*name) return cq_err_set(err, CQ_E_ARG, "%s: tensor name is empty", path);
    if (!cq__utf8_valid(name, strlen(name), NULL))
        return cq_err_set(err, CQ_E_ARG, "%s: tensor name '%.100s' is not valid UTF-8", path, name);
    if (!strcmp(name, "__metadata__"))
        return cq_err_set(err, CQ_E_ARG, "%s: '__metadata__' cannot name a tensor", path);
    if (dtype_rank(dt) < 0) return cq_err_set(err, CQ_E_DTYPE, "%s: tensor '%s': invalid dtype %d", path, name, dt);
    if (ndim < 0 || ndim > CQ_MAX_DIMS || (ndim && !shape))
        return cq_err_set(err, CQ_E_SHAPE, "%s: tensor '%s': rank %d outside 0..%d", path, name, ndim, CQ_MAX_DIMS);
    uint64_t nbytes;
    if (!cq__st_shape_nbytes(dt, ndim, shape, &nbytes))
        return cq_err_set(err, CQ_E_SHAPE, "%s: tensor '%s': negative or overflowing shape", path, name);
    if (cq__strmap_get(&w->by_name, name) >= 0)
        return cq_err_set(err, CQ_E_ARG, "%s: tensor '%s' declared twice", path, name);
    if (w->count == w->cap) {
        int64_t cap = w->cap ? w->cap * 2 : 64;
        wr_tensor *t = realloc(w->tensors, (size_t)cap * sizeof *t);
        if (!t) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
        w->tensors = t;
        w->cap = cap;
    }
    wr_tensor *t = &w->tensors[w->count];
    memset(t, 0, sizeof *t);
    t->name = cq__strdup(name, err);
    if (!t->name) return CQ_E_NOMEM;
    if ((s = cq__strmap_put(&w->by_name, t->name, w->count, NULL, err))) {
        free(t->name);
        return s;
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = nbytes;
    w->count++;
    return CQ_OK;
}

static _Thread_local const wr_tensor *g_sort_tensors;
static int cmp_reference_order(const void *a, const void *b) {
    const wr_tensor *x = &g_sort_tensors[*(const int64_t *)a], *y = &g_sort_tensors[*(const int64_t *)b];
    int rx = dtype_rank(x->dtype), ry = dtype_rank(y->dtype);
    if (rx != ry) return ry - rx;
    return strcmp(x->name, y->name);
}

static json_t *tensor_info_json(const wr_tensor *t) {
    json_t *shape = json_array(), *offs = json_array(), *info = json_object();
    bool ok = shape && offs && info;
    for (int d = 0; ok && d < t->ndim; d++) ok = json_array_append_new(shape, json_integer(t->shape[d])) == 0;
    ok = ok && json_array_append_new(offs, json_integer((json_int_t)t->begin)) == 0 &&
         json_array_append_new(offs, json_integer((json_int_t)(t->begin + t->nbytes))) == 0;
    ok = ok && json_object_set_new(info, "dtype", json_string(cq_dtype_name(t->dtype))) == 0;
    ok = ok && json_object_set(info, "shape", shape) == 0 && json_object_set(info, "data_offsets", offs) == 0;
    json_decref(shape);
    json_decref(offs);
    if (!ok) {
        json_decref(info);
        return NULL;
    }
    return info;
}

/* Fixes offsets in the reference order and writes the header. */
static cq_status seal(cq_st_writer *w, cq_err *err) {
    const char *path = w->af.final_path;
    int64_t n = w->count;
    int64_t *order = cq__malloc((size_t)(n ? n : 1) * sizeof *order, err, "a tensor order");
    json_t *root = json_object();
    cq_status s = CQ_OK;
    if (!order || !root) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (!s) {
        for (int64_t i = 0; i < n; i++) order[i] = i;
        g_sort_tensors = w->tensors;
        qsort(order, (size_t)n, sizeof *order, cmp_reference_order);
        if (w->metadata && json_object_set(root, "__metadata__", w->metadata) != 0)
            s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    }
    uint64_t offset = 0;
    for (int64_t k = 0; !s && k < n; k++) {
        wr_tensor *t = &w->tensors[order[k]];
        t->begin = offset;
        if (cq__add_overflow_u64(offset, t->nbytes, &offset) || offset > (uint64_t)INT64_MAX / 2) {
            s = cq_err_set(err, CQ_E_OVERFLOW, "%s: total data size overflows", path);
            break;
        }
        json_t *info = tensor_info_json(t);
        if (!info || json_object_set_new(root, t->name, info) != 0)
            s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    }
    char *text = NULL;
    size_t len = 0;
    if (!s) s = cq__json_emit(root, &cq__json_serde_compact, &text, &len, err);
    json_decref(root);
    free(order);
    if (!s) {
        size_t padded = (len + 7) / 8 * 8;
        char *h = realloc(text, padded + 8);
        if (!h) {
            s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
        } else {
            text = h;
            memmove(h + 8, h, len);
            memset(h + 8 + len, ' ', padded - len);
            for (int i = 0; i < 8; i++) h[i] = (char)(((uint64_t)padded >> (8 * i)) & 0xFF);
            w->data_start = 8 + (uint64_t)padded;
            s = cq__afile_pwrite(&w->af, h, padded + 8, 0, err);
        }
    }
    free(text);
    if (s) w->failed = true;
    else w->sealed = true;
    return s;
}

cq_status cq_st_writer_write(cq_st_writer *w, const char *name, const void *data, size_t nbytes, cq_err *err) {
    cq_status s = writer_usable(w, true, err);
    if (s) return s;
    if (!w->sealed && (s = seal(w, err))) return s;
    int64_t found = cq__strmap_get(&w->by_name, name);
    if (found < 0) return cq_err_set(err, CQ_E_NOTFOUND, "%s: tensor '%s' was not declared", w->af.final_path, name);
    wr_tensor *t = &w->tensors[found];
    if (nbytes > t->nbytes - t->written)
        return cq_err_set(err, CQ_E_ARG, "%s: tensor '%s': %zu more bytes would exceed its %" PRIu64, w->af.final_path,
                          name, nbytes, t->nbytes);
    if (nbytes && !data) return cq_err_set(err, CQ_E_ARG, "%s: tensor '%s': data is NULL", w->af.final_path, name);
    s = cq__afile_pwrite(&w->af, data, nbytes, w->data_start + t->begin + t->written, err);
    if (s) {
        w->failed = true;
        return s;
    }
    t->written += nbytes;
    return CQ_OK;
}

cq_status cq_st_writer_write_tensor(cq_st_writer *w, const char *name, const cq_tensor *t, cq_err *err) {
    cq_status s = writer_usable(w, true, err);
    if (s) return s;
    if (!t || !name) return cq_err_set(err, CQ_E_ARG, "%s: NULL tensor or name", w->af.final_path);
    if (!w->sealed && (s = seal(w, err))) return s;
    int64_t found = cq__strmap_get(&w->by_name, name);
    const wr_tensor *d = found >= 0 ? &w->tensors[found] : NULL;
    if (!d) return cq_err_set(err, CQ_E_NOTFOUND, "%s: tensor '%s' was not declared", w->af.final_path, name);
    bool same = d->dtype == t->dtype && d->ndim == t->ndim;
    for (int i = 0; same && i < t->ndim; i++) same = d->shape[i] == t->shape[i];
    if (!same) {
        char a[160], b[160];
        return cq_err_set(err, CQ_E_SHAPE, "%s: tensor '%s' was declared %s %s but is %s %s", w->af.final_path, name,
                          cq_dtype_name(d->dtype), cq_shape_str(d->ndim, d->shape, a, sizeof a),
                          cq_dtype_name(t->dtype), cq_shape_str(t->ndim, t->shape, b, sizeof b));
    }
    return cq_st_writer_write(w, name, t->data, (size_t)d->nbytes, err);
}

cq_status cq_st_writer_commit(cq_st_writer *w, cq_err *err) {
    cq_status s = writer_usable(w, true, err);
    if (s) return s;
    if (!w->sealed && (s = seal(w, err))) return s;
    for (int64_t i = 0; i < w->count; i++) {
        const wr_tensor *t = &w->tensors[i];
        if (t->written != t->nbytes) {
            w->failed = true;
            return cq_err_set(err, CQ_E_ARG, "%s: tensor '%s' got %" PRIu64 " of its %" PRIu64 " bytes",
                              w->af.final_path, t->name, t->written, t->nbytes);
        }
    }
    s = cq__afile_commit(&w->af, err);
    w->failed = true; /* committed or failed: no further use either way */
    return s;
}

cq_status cq_st_save(const char *path, int64_t n, const char *const *names, const cq_tensor *const *tensors,
                     const char *const *metadata, cq_err *err) {
    CQ__ARG(path);
    if (n < 0 || (n > 0 && (!names || !tensors)))
        return cq_err_set(err, CQ_E_ARG, "cq_st_save: %s: bad tensor list", path ? path : "(null)");
    cq_st_writer *w;
    cq_status s = cq_st_writer_open(path, &w, err);
    for (int64_t i = 0; !s && metadata && metadata[i]; i += 2) {
        if (!metadata[i + 1]) {
            s = cq_err_set(err, CQ_E_ARG, "%s: metadata key '%s' has no value", path, metadata[i]);
            break;
        }
        s = cq_st_writer_add_metadata(w, metadata[i], metadata[i + 1], err);
    }
    for (int64_t i = 0; !s && i < n; i++) {
        if (!tensors[i]) s = cq_err_set(err, CQ_E_ARG, "%s: tensor %" PRId64 " is NULL", path, i);
        else s = cq_st_writer_declare(w, names[i], tensors[i]->dtype, tensors[i]->ndim, tensors[i]->shape, err);
    }
    for (int64_t i = 0; !s && i < n; i++) s = cq_st_writer_write_tensor(w, names[i], tensors[i], err);
    if (!s) s = cq_st_writer_commit(w, err);
    cq_st_writer_free(w);
    return s;
}
