/*
 * safetensors_read.c - the safetensors reader: a memory-mapped view that validates the header
 * with the reference implementation's rules (huggingface/safetensors, safetensors/src/tensor.rs).
 *
 * Layout: [u64 LE N][N bytes of JSON header, space padded][data]. Tensors are views into the
 * mapping (read-only; copied once only if misaligned). The writer is safetensors_write.c.
 * Not here: sharded checkpoints (shards.c), dtype conversion, big-endian hosts.
 */
#include "io/fsutil.h"
#include "io/io_internal.h"

#include <inttypes.h>
#include <stdarg.h>

/* Dtypes the reference knows but cquanto cannot hold: valid files we refuse as unsupported. */
static const char *const g_reference_only_dtypes[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E5M2FNUZ", "C64"};

static uint64_t read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

bool cq__st_shape_nbytes(cq_dtype t, int ndim, const int64_t *shape, uint64_t *out) {
    uint64_t n = cq_dtype_size(t);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || cq__mul_overflow_u64(n, (uint64_t)shape[i], &n)) return false;
    if (n > SIZE_MAX) return false;
    *out = n;
    return true;
}

typedef struct st_entry {
    cq__src_tensor rec; /* name (owned), view, byte size and file offset */
    uint64_t begin, end;
    size_t header_order;
    void *aligned_copy; /* owned; set only for a misaligned tensor */
} st_entry;

struct cq_st_file {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint64_t header_len;
    st_entry *entries;
    int64_t count;
    int64_t *by_name; /* entry indices sorted by name */
    char **meta_keys, **meta_values;
    int64_t meta_count;
    cq__source src; /* this file as a tensor source */
};

void cq_st_close(cq_st_file *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->count; i++) {
        free((char *)f->entries[i].rec.name);
        cq_aligned_free(f->entries[i].aligned_copy);
    }
    for (int64_t i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->entries);
    free(f->by_name);
    if (f->mapped) cq__unmap_file(f->base, f->size);
    free(f->path);
    free(f);
}

static cq_status format_error(cq_err *err, const cq_st_file *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static cq_status format_error(cq_err *err, const cq_st_file *f, const char *fmt, ...) {
    char msg[CQ_ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cq_err_set(err, CQ_E_FORMAT, "%s: %s", f->path, msg);
}

/* A JSON integer >= 0, as the reference's usize fields require. */
static bool get_uint(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static cq_status parse_metadata(cq_st_file *f, const json_t *meta, cq_err *err) {
    if (json_is_null(meta)) return CQ_OK; /* serde reads null as an absent Option */
    if (!json_is_object(meta)) return format_error(err, f, "\"__metadata__\" is not an object of strings");
    size_t n = json_object_size(meta);
    f->meta_keys = cq__calloc(n ? n : 1, sizeof *f->meta_keys, err, "metadata");
    f->meta_values = cq__calloc(n ? n : 1, sizeof *f->meta_values, err, "metadata");
    if (!f->meta_keys || !f->meta_values) return CQ_E_NOMEM;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)meta, key, v) {
        if (!json_is_string(v))
            return format_error(err, f, "\"__metadata__\" value of key '%.100s' is not a string", key);
        f->meta_keys[f->meta_count] = cq__strdup(key, err);
        f->meta_values[f->meta_count] = cq__strdup(json_string_value(v), err);
        f->meta_count++;
        if (!f->meta_keys[f->meta_count - 1] || !f->meta_values[f->meta_count - 1]) return CQ_E_NOMEM;
    }
    return CQ_OK;
}

static cq_status parse_tensor_info(cq_st_file *f, const char *name, const json_t *info, st_entry *e, cq_err *err) {
    if (!json_is_object(info)) return format_error(err, f, "tensor '%.100s': entry is not an object", name);
    const json_t *dt = json_object_get(info, "dtype");
    if (!json_is_string(dt)) return format_error(err, f, "tensor '%.100s': missing or non-string \"dtype\"", name);
    const char *dts = json_string_value(dt);
    e->rec.t.dtype = cq_dtype_from_name(dts);
    if (e->rec.t.dtype == CQ_DTYPE_INVALID) {
        for (size_t i = 0; i < CQ_ARRAY_LEN(g_reference_only_dtypes); i++)
            if (!strcmp(dts, g_reference_only_dtypes[i]))
                return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: tensor '%.100s': dtype %s is not supported by cquanto",
                                  f->path, name, dts);
        return format_error(err, f, "tensor '%.100s': unknown dtype \"%.40s\"", name, dts);
    }
    const json_t *shape = json_object_get(info, "shape");
    if (!json_is_array(shape)) return format_error(err, f, "tensor '%.100s': missing \"shape\" array", name);
    size_t ndim = json_array_size(shape);
    for (size_t i = 0; i < ndim; i++) {
        uint64_t d;
        if (!get_uint(json_array_get(shape, i), &d))
            return format_error(err, f, "tensor '%.100s': shape entry %zu is not a non-negative integer", name, i);
        if (i < CQ_MAX_DIMS) e->rec.t.shape[i] = (int64_t)d;
    }
    if (ndim > CQ_MAX_DIMS)
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: tensor '%.100s': rank %zu exceeds cquanto's maximum of %d",
                          f->path, name, ndim, CQ_MAX_DIMS);
    e->rec.t.ndim = (int)ndim;
    const json_t *offs = json_object_get(info, "data_offsets");
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !get_uint(json_array_get(offs, 0), &e->begin) ||
        !get_uint(json_array_get(offs, 1), &e->end))
        return format_error(err, f, "tensor '%.100s': \"data_offsets\" is not two non-negative integers", name);
    if (e->end < e->begin)
        return format_error(err, f, "tensor '%.100s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                            name, e->begin, e->end);
    uint64_t nbytes;
    char sbuf[160];
    if (!cq__st_shape_nbytes(e->rec.t.dtype, e->rec.t.ndim, e->rec.t.shape, &nbytes))
        return format_error(err, f, "tensor '%.100s': byte size of shape %s overflows", name,
                            cq_shape_str(e->rec.t.ndim, e->rec.t.shape, sbuf, sizeof sbuf));
    if (nbytes != e->end - e->begin)
        return format_error(err, f,
                            "tensor '%.100s': %s %s needs %" PRIu64 " bytes but data_offsets [%" PRIu64 ", %" PRIu64
                            "] hold %" PRIu64,
                            name, dts, cq_shape_str(e->rec.t.ndim, e->rec.t.shape, sbuf, sizeof sbuf), nbytes, e->begin,
                            e->end, e->end - e->begin);
    return CQ_OK;
}

static int cmp_offsets(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->header_order < y->header_order ? -1 : x->header_order > y->header_order;
}

/* qsort has no context argument; the name index sorts indices into this array. */
static _Thread_local const st_entry *g_sort_entries;
static int cmp_by_name(const void *a, const void *b) {
    return strcmp(g_sort_entries[*(const int64_t *)a].rec.name, g_sort_entries[*(const int64_t *)b].rec.name);
}

static cq_status check_layout(cq_st_file *f, cq_err *err) {
    qsort(f->entries, (size_t)f->count, sizeof *f->entries, cmp_offsets);
    uint64_t expected = 0;
    for (int64_t i = 0; i < f->count; i++) {
        const st_entry *e = &f->entries[i];
        if (e->begin < expected)
            return format_error(err, f,
                                "tensor '%.100s': data_offsets [%" PRIu64 ", %" PRIu64
                                "] overlap tensor '%.100s', which ends at %" PRIu64,
                                e->rec.name, e->begin, e->end, f->entries[i - 1].rec.name, expected);
        if (e->begin > expected)
            return format_error(err, f,
                                "tensor '%.100s': data_offsets [%" PRIu64 ", %" PRIu64 "] leave a %" PRIu64
                                "-byte hole after offset %" PRIu64,
                                e->rec.name, e->begin, e->end, e->begin - expected, expected);
        expected = e->end;
    }
    uint64_t data_size = f->size - 8 - f->header_len;
    if (expected > data_size)
        return format_error(err, f,
                            "tensors need %" PRIu64 " data bytes but only %" PRIu64
                            " follow the header (truncated file?)",
                            expected, data_size);
    if (expected < data_size)
        return format_error(err, f, "%" PRIu64 " bytes after the last tensor's data belong to no tensor",
                            data_size - expected);
    return CQ_OK;
}

/* Points every tensor at its bytes; copies the rare misaligned one. */
static cq_status place_tensors(cq_st_file *f, cq_err *err) {
    const uint8_t *data = f->base + 8 + f->header_len;
    for (int64_t i = 0; i < f->count; i++) {
        st_entry *e = &f->entries[i];
        const uint8_t *p = data + e->begin;
        size_t nbytes = (size_t)(e->end - e->begin);
        size_t align = cq_dtype_size(e->rec.t.dtype);
        if (nbytes && (uintptr_t)p % align) {
            e->aligned_copy = cq_aligned_alloc(nbytes);
            if (!e->aligned_copy)
                return cq_err_set(err, CQ_E_NOMEM, "%s: out of memory copying misaligned tensor '%s'", f->path,
                                  e->rec.name);
            memcpy(e->aligned_copy, p, nbytes);
            p = e->aligned_copy;
        }
        e->rec.t.data = (void *)p;
        e->rec.t.owns_data = false;
        e->rec.nbytes = nbytes;
        e->rec.offset = 8 + f->header_len + e->begin;
    }
    f->by_name = cq__malloc((size_t)(f->count ? f->count : 1) * sizeof *f->by_name, err, "a name index");
    if (!f->by_name) return CQ_E_NOMEM;
    for (int64_t i = 0; i < f->count; i++) f->by_name[i] = i;
    g_sort_entries = f->entries;
    qsort(f->by_name, (size_t)f->count, sizeof *f->by_name, cmp_by_name);
    return CQ_OK;
}

static cq_status parse(cq_st_file *f, cq_err *err) {
    if (f->size < 8)
        return format_error(err, f, "file is %zu bytes, too short for the 8-byte header length", f->size);
    uint64_t n = read_le64(f->base);
    if (n > CQ_ST_MAX_HEADER_SIZE)
        return format_error(err, f, "header length %" PRIu64 " exceeds the limit of %d bytes", n,
                            CQ_ST_MAX_HEADER_SIZE);
    if (n > f->size - 8)
        return format_error(err, f, "header length %" PRIu64 " is larger than the %zu bytes after the length field",
                            n, f->size - 8);
    f->header_len = n;
    const char *h = (const char *)f->base + 8;
    size_t bad;
    if (!cq__utf8_valid(h, (size_t)n, &bad))
        return format_error(err, f, "header is not valid UTF-8 (byte %zu of the header)", bad);
    if (n == 0 || h[0] != '{') return format_error(err, f, "header does not start with '{'");
    json_error_t je;
    json_t *root = json_loadb(h, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_duplicate_key)
            return format_error(err, f, "duplicate name in header: %s", je.text);
        return format_error(err, f, "header is not valid JSON: %s (byte %d of the header)", je.text, je.position);
    }
    cq_status s = CQ_OK;
    size_t nkeys = json_object_size(root);
    f->entries = cq__calloc(nkeys ? nkeys : 1, sizeof *f->entries, err, "tensor entries");
    if (!f->entries) s = CQ_E_NOMEM;
    const char *key;
    json_t *v;
    size_t order = 0;
    json_object_foreach(root, key, v) {
        if (s) break;
        if (!strcmp(key, "__metadata__")) {
            s = parse_metadata(f, v, err);
            continue;
        }
        st_entry *e = &f->entries[f->count];
        e->header_order = order++;
        e->rec.name = cq__strdup(key, err);
        if (!e->rec.name) {
            s = CQ_E_NOMEM;
            break;
        }
        f->count++;
        s = parse_tensor_info(f, key, v, e, err);
    }
    json_decref(root);
    if (!s) s = check_layout(f, err);
    if (!s) s = place_tensors(f, err);
    return s;
}

static const cq__source_ops g_st_source_ops;

static cq_status new_file(const char *label, cq_st_file **out, cq_err *err) {
    *out = cq__calloc(1, sizeof **out, err, "a safetensors handle");
    if (!*out) return CQ_E_NOMEM;
    (*out)->src = (cq__source){&g_st_source_ops, *out};
    (*out)->path = cq__strdup(label, err);
    if (!(*out)->path) {
        free(*out);
        *out = NULL;
        return CQ_E_NOMEM;
    }
    return CQ_OK;
}

cq_status cq_st_open_memory(const void *data, size_t size, const char *label, cq_st_file **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_st_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return cq_err_set(err, CQ_E_ARG, "cq_st_open_memory: data is NULL");
    cq_st_file *f;
    cq_status s = new_file(label ? label : "<memory>", &f, err);
    if (s) return s;
    f->base = data;
    f->size = size;
    s = parse(f, err);
    if (s) {
        cq__err_one_line(err);
        cq_st_close(f);
        return s;
    }
    *out = f;
    return CQ_OK;
}

cq_status cq_st_open(const char *path, cq_st_file **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_st_open: out is NULL");
    *out = NULL;
    if (!path) return cq_err_set(err, CQ_E_ARG, "cq_st_open: path is NULL");
    cq_st_file *f;
    cq_status s = new_file(path, &f, err);
    if (s) return s;
    s = cq__map_file(path, &f->base, &f->size, err);
    f->mapped = !s;
    if (!s) s = parse(f, err);
    if (s) {
        cq__err_one_line(err);
        cq_st_close(f);
        return s;
    }
    *out = f;
    return CQ_OK;
}

const char *cq_st_path(const cq_st_file *f) { return f ? f->path : NULL; }
int64_t cq_st_count(const cq_st_file *f) { return f ? f->count : 0; }
uint64_t cq_st_header_size(const cq_st_file *f) { return f ? f->header_len : 0; }
uint64_t cq_st_data_size(const cq_st_file *f) { return f ? f->size - 8 - f->header_len : 0; }

const char *cq_st_name(const cq_st_file *f, int64_t i) {
    return f && i >= 0 && i < f->count ? f->entries[i].rec.name : NULL;
}

const cq_tensor *cq_st_tensor(const cq_st_file *f, int64_t i) {
    return f && i >= 0 && i < f->count ? &f->entries[i].rec.t : NULL;
}

uint64_t cq_st_file_offset(const cq_st_file *f, int64_t i) {
    return f && i >= 0 && i < f->count ? 8 + f->header_len + f->entries[i].begin : 0;
}

int64_t cq_st_find(const cq_st_file *f, const char *name) {
    if (!f || !name) return -1;
    int64_t lo = 0, hi = f->count - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->entries[f->by_name[mid]].rec.name, name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

cq_status cq_st_get(const cq_st_file *f, const char *name, const cq_tensor **out, cq_err *err) {
    if (out) *out = NULL;
    if (!f || !name || !out) return cq_err_set(err, CQ_E_ARG, "cq_st_get: NULL argument");
    int64_t i = cq_st_find(f, name);
    if (i < 0) return cq_err_set(err, CQ_E_NOTFOUND, "%s: no tensor named '%s'", f->path, name);
    *out = &f->entries[i].rec.t;
    return CQ_OK;
}

const char *cq_st_metadata(const cq_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int64_t i = 0; i < f->meta_count; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

int64_t cq_st_metadata_count(const cq_st_file *f) { return f ? f->meta_count : 0; }
const char *cq_st_metadata_key(const cq_st_file *f, int64_t i) {
    return f && i >= 0 && i < f->meta_count ? f->meta_keys[i] : NULL;
}
const char *cq_st_metadata_value(const cq_st_file *f, int64_t i) {
    return f && i >= 0 && i < f->meta_count ? f->meta_values[i] : NULL;
}

/* ---- the file as a tensor source (source.h) ------------------------------------------------ */

static int64_t src_count(const void *impl) { return ((const cq_st_file *)impl)->count; }

static const cq__src_tensor *src_tensor(const void *impl, int64_t i) {
    const cq_st_file *f = impl;
    return i >= 0 && i < f->count ? &f->entries[i].rec : NULL;
}

static void src_release(const void *impl, int64_t i, uint64_t off, uint64_t n) {
    const cq_st_file *f = impl;
    if (!f->mapped || i < 0 || i >= f->count || f->entries[i].aligned_copy) return;
    cq__release_mapped(f->entries[i].rec.t.data, f->entries[i].rec.nbytes, off, n);
}

static void src_sequential(const void *impl) {
    const cq_st_file *f = impl;
    if (f->mapped) cq__advise_sequential(f->base, f->size);
}

static int64_t src_meta_count(const void *impl) { return ((const cq_st_file *)impl)->meta_count; }
static const char *src_meta_key(const void *impl, int64_t k) { return cq_st_metadata_key(impl, k); }

static bool src_meta_value(const void *impl, int64_t k, int64_t elem, cq__meta *out) {
    const char *v = cq_st_metadata_value(impl, k);
    if (!v || elem >= 0) return false; /* only strings, no arrays */
    memset(out, 0, sizeof *out);
    out->kind = CQ__META_STRING;
    out->str = v;
    return true;
}

static void src_close(void *impl) { cq_st_close(impl); }

static const cq__source_ops g_st_source_ops = {
    "safetensors", src_count, src_tensor, src_release, src_sequential, src_meta_count, src_meta_key, src_meta_value,
    src_close};

cq__source *cq__st_source(cq_st_file *f) { return f ? &f->src : NULL; }

const cq_st_file *cq__st_of_source(const cq__source *s) {
    return s && s->ops == &g_st_source_ops ? s->impl : NULL;
}
