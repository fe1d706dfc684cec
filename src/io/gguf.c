/*
 * gguf.c - the GGUF reader (llama.cpp's model file, versions 2 and 3): a memory-mapped view
 * validated with the rules of llama.cpp's ggml/src/gguf.cpp (gguf_init_from_reader) and of the
 * gguf Python package's GGUFReader, and the file as a tensor source (source.h).
 *
 * Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 key-value count; the
 * key-values (string key, u32 value type, value; an array is u32 element type, u64 count,
 * elements; a string is u64 length + bytes); the tensor infos (string name, u32 n_dims, u64
 * ne[n_dims], u32 ggml type, u64 offset); padding to general.alignment; the data region, each
 * tensor at its offset from the region's start.
 *
 * The rules, each a CQ_E_FORMAT naming the file and what is wrong (docs/GGUF.md lists them):
 * gguf.cpp's (version 0 and over 3 refused, counts and lengths bounded by the bytes left before
 * anything is allocated, strings at most 2^30 bytes and arrays 2^30 elements, non-empty unique
 * keys, known value types and no arrays of arrays, general.alignment a u32 power of two, unique
 * tensor names under 64 bytes, at most 4 dimensions, the element count within int64, a ggml
 * type that exists, rows a multiple of its block, the byte size within size_t, and offsets
 * exactly sequential in tensor-info order, each tensor padded to the alignment), the Python
 * reader's (keys and tensor names are UTF-8), and cquanto's own (no NUL byte in a key or a name,
 * since callers see them as C strings; 1 to 4 dimensions of at least 1 element, as every model
 * file has; each tensor's bytes inside the file, llama.cpp's model loader's check). Valid files
 * cquanto cannot read are CQ_E_UNSUPPORTED: version 1, byte-swapped (big-endian) files, and
 * arrays of arrays (legal in the spec, refused by gguf.cpp too).
 *
 * Not here: writing GGUF, dequantization (gguf_dequant.c), big-endian hosts.
 */
#include "core/float_bits.h"
#include "core/strmap.h"
#include "io/fsutil.h"
#include "io/io_internal.h"

#include <inttypes.h>
#include <stdarg.h>

#define GGUF_MAX_STRING ((uint64_t)1 << 30) /* gguf.cpp's GGUF_MAX_STRING_LENGTH */
#define GGUF_MAX_ARRAY ((uint64_t)1 << 30)  /* gguf.cpp's GGUF_MAX_ARRAY_ELEMENTS */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGML_MAX_NAME 64 /* ggml.h: names are shorter than this */
#define GGML_MAX_DIMS 4
#define GGUF_NUM_TYPES 13
/* The fewest bytes a key-value (8-byte length, a 1-byte key, u32 type, a 1-byte value) and a
 * tensor info (8-byte length, empty name, u32 n_dims, one u64 dimension, u32 type, u64 offset)
 * take: a count larger than the bytes left could hold is refused before anything is allocated. */
#define MIN_KV_BYTES 14
#define MIN_TENSOR_INFO_BYTES 32

static const uint8_t g_value_size[GGUF_NUM_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
/* gguf.cpp's names (GGUF_TYPE_NAME), which its messages and llama.cpp's tools print. */
static const char *const g_value_name[GGUF_NUM_TYPES] = {"u8",  "i8",  "u16", "i16", "u32", "i32", "f32",
                                                          "bool", "str", "arr", "u64", "i64", "f64"};

typedef struct gguf_kv {
    char *key;
    cq_gguf_type type;  /* CQ_GGUF_ARRAY for an array */
    cq_gguf_type elem;  /* an array's element type; the value type of a scalar */
    int64_t n;          /* elements; 1 for a scalar */
    const uint8_t *raw; /* numbers: n little-endian values, in the mapping */
    char **strs;        /* strings: n NUL-terminated copies, all inside pool */
    char *pool;
} gguf_kv;

typedef struct gguf_rec {
    cq_gguf_tensor t;   /* the public record; t.name is owned */
    cq__src_tensor src; /* the same tensor as a source sees it */
    void *aligned_copy; /* owned; only for a typed tensor whose bytes are misaligned in memory */
} gguf_rec;

struct cq_gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint32_t version;
    uint64_t alignment, data_offset;
    gguf_kv *kv;
    int64_t n_kv;
    gguf_rec *tensors;
    int64_t n_tensors;
    cq__strmap kv_index, tensor_index;
    cq__source src; /* this file as a tensor source */
};

const char *cq_gguf_type_name(cq_gguf_type t) {
    return (unsigned)t < GGUF_NUM_TYPES ? g_value_name[t] : NULL;
}

void cq_gguf_close(cq_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].strs);
        free(g->kv[i].pool);
    }
    for (int64_t i = 0; i < g->n_tensors; i++) {
        free((char *)g->tensors[i].t.name);
        cq_aligned_free(g->tensors[i].aligned_copy);
    }
    free(g->kv);
    free(g->tensors);
    cq__strmap_free(&g->kv_index);
    cq__strmap_free(&g->tensor_index);
    if (g->mapped) cq__unmap_file(g->base, g->size);
    free(g->path);
    free(g);
}

static cq_status gguf_error(cq_err *err, cq_status st, const cq_gguf *g, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static cq_status gguf_error(cq_err *err, cq_status st, const cq_gguf *g, const char *fmt, ...) {
    char msg[CQ_ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cq_err_set(err, st, "%s: %s", g->path, msg);
}
#define FORMAT_ERROR(r, ...) gguf_error((r)->err, CQ_E_FORMAT, (r)->g, __VA_ARGS__)

/* ---- reading the header ------------------------------------------------------------------ */

typedef struct reader {
    cq_gguf *g;
    size_t pos;
    cq_err *err;
} reader;

static size_t left(const reader *r) { return r->g->size - r->pos; }

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* An n-byte little-endian field; `what` names where the file ended. */
static cq_status read_uint(reader *r, int n, uint64_t *v, const char *what) {
    if (left(r) < (size_t)n)
        return FORMAT_ERROR(r, "truncated: the file (%zu bytes) ends inside %s", r->g->size, what);
    *v = le(r->g->base + r->pos, n);
    r->pos += (size_t)n;
    return CQ_OK;
}

static cq_status read_u32(reader *r, uint32_t *v, const char *what) {
    uint64_t x = 0;
    CQ__TRY(read_uint(r, 4, &x, what));
    *v = (uint32_t)x;
    return CQ_OK;
}

/* A GGUF string: its bytes stay in the mapping (*p, *len). */
static cq_status read_str(reader *r, const uint8_t **p, uint64_t *len, const char *what) {
    CQ__TRY(read_uint(r, 8, len, what));
    if (*len > GGUF_MAX_STRING)
        return FORMAT_ERROR(r, "%s: string length %" PRIu64 " exceeds gguf's limit of %" PRIu64 " bytes", what, *len,
                            GGUF_MAX_STRING);
    if (*len > left(r))
        return FORMAT_ERROR(r, "%s: string length %" PRIu64 " runs past the end of the file (%zu bytes left)", what,
                            *len, left(r));
    *p = r->g->base + r->pos;
    r->pos += (size_t)*len;
    return CQ_OK;
}

/* Keys and tensor names: UTF-8 (the Python reader decodes them) without NUL (callers get C
 * strings, and "a\0b" would read as "a"), at most max_len bytes (0: gguf's string limit only);
 * copied NUL-terminated into *out. */
static cq_status read_name(reader *r, const char *what, uint64_t max_len, char **out) {
    const uint8_t *p = NULL;
    uint64_t len = 0;
    *out = NULL;
    CQ__TRY(read_str(r, &p, &len, what));
    if (max_len && len > max_len)
        return FORMAT_ERROR(r, "%s is %" PRIu64 " bytes, longer than ggml's limit of %" PRIu64, what, len, max_len);
    size_t bad;
    if (!cq__utf8_valid((const char *)p, (size_t)len, &bad))
        return FORMAT_ERROR(r, "%s is not valid UTF-8 (byte %zu)", what, bad);
    if (memchr(p, 0, (size_t)len)) return FORMAT_ERROR(r, "%s holds a NUL byte", what);
    *out = cq__malloc((size_t)len + 1, r->err, "a GGUF name");
    if (!*out) return CQ_E_NOMEM;
    memcpy(*out, p, (size_t)len);
    (*out)[len] = '\0';
    return CQ_OK;
}

/* An array of n strings: n lengths must fit before the pointers are allocated, then one pass
 * checks every length and sizes the pool, and a second copies (it cannot fail). */
static cq_status read_strings(reader *r, gguf_kv *kv, const char *what) {
    uint64_t n = (uint64_t)kv->n;
    if (n > left(r) / 8)
        return FORMAT_ERROR(r, "%s: %" PRIu64 " strings need at least %" PRIu64 " bytes but only %zu are left", what, n,
                            n * 8, left(r));
    size_t start = r->pos;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p = NULL;
        uint64_t len = 0;
        CQ__TRY(read_str(r, &p, &len, what));
        total += len; /* at most the file's size */
    }
    kv->strs = cq__malloc((size_t)(n ? n : 1) * sizeof *kv->strs, r->err, "GGUF strings");
    kv->pool = cq__malloc((size_t)(total + n + 1), r->err, "GGUF strings");
    if (!kv->strs || !kv->pool) return CQ_E_NOMEM;
    r->pos = start;
    char *o = kv->pool;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = le(r->g->base + r->pos, 8);
        memcpy(o, r->g->base + r->pos + 8, (size_t)len);
        o[len] = '\0';
        kv->strs[i] = o;
        o += len + 1;
        r->pos += 8 + (size_t)len;
    }
    return CQ_OK;
}

static cq_status read_kv(reader *r, int64_t i, gguf_kv *kv) {
    char what[160];
    snprintf(what, sizeof what, "key %" PRId64, i);
    CQ__TRY(read_name(r, what, 0, &kv->key));
    if (!kv->key[0]) return FORMAT_ERROR(r, "key %" PRId64 " is empty", i);
    int64_t dup;
    CQ__TRY(cq__strmap_put(&r->g->kv_index, kv->key, i, &dup, r->err));
    if (dup >= 0) return FORMAT_ERROR(r, "duplicate key '%.100s' (keys %" PRId64 " and %" PRId64 ")", kv->key, dup, i);
    snprintf(what, sizeof what, "the value of key '%.100s'", kv->key);
    uint32_t type = 0, elem = 0;
    uint64_t n = 1;
    CQ__TRY(read_u32(r, &type, what));
    elem = type;
    if (type == CQ_GGUF_ARRAY) {
        CQ__TRY(read_u32(r, &elem, what));
        CQ__TRY(read_uint(r, 8, &n, what));
        if (elem == CQ_GGUF_ARRAY)
            return gguf_error(r->err, CQ_E_UNSUPPORTED, r->g,
                              "key '%.100s' holds an array of arrays, which cquanto (like llama.cpp) cannot read",
                              kv->key);
        if (elem >= GGUF_NUM_TYPES)
            return FORMAT_ERROR(r, "key '%.100s': unknown array element type %" PRIu32, kv->key, elem);
        if (n > GGUF_MAX_ARRAY)
            return FORMAT_ERROR(r, "key '%.100s': an array of %" PRIu64 " elements exceeds gguf's limit of %" PRIu64,
                                kv->key, n, GGUF_MAX_ARRAY);
    } else if (type >= GGUF_NUM_TYPES) {
        return FORMAT_ERROR(r, "key '%.100s': unknown value type %" PRIu32, kv->key, type);
    }
    kv->type = (cq_gguf_type)type;
    kv->elem = (cq_gguf_type)elem;
    kv->n = (int64_t)n;
    if (elem == CQ_GGUF_STRING) return read_strings(r, kv, what);
    uint64_t bytes = n * g_value_size[elem]; /* n <= 2^30: no overflow */
    if (bytes > left(r) && type != CQ_GGUF_ARRAY)
        return FORMAT_ERROR(r, "truncated: the file (%zu bytes) ends inside %s", r->g->size, what);
    if (bytes > left(r))
        return FORMAT_ERROR(r, "%s: %" PRIu64 " %s values need %" PRIu64 " bytes but only %zu are left", what, n,
                            g_value_name[elem], bytes, left(r));
    kv->raw = r->g->base + r->pos;
    r->pos += (size_t)bytes;
    return CQ_OK;
}

static cq_status read_alignment(reader *r) {
    cq_gguf *g = r->g;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t k = cq__strmap_get(&g->kv_index, "general.alignment");
    if (k < 0) return CQ_OK;
    const gguf_kv *kv = &g->kv[k];
    if (kv->type != CQ_GGUF_UINT32)
        return FORMAT_ERROR(r, "general.alignment has type %s%s%s (u32 required)", kv->type == CQ_GGUF_ARRAY ? "arr[" : "",
                            g_value_name[kv->elem], kv->type == CQ_GGUF_ARRAY ? "]" : "");
    uint64_t a = le(kv->raw, 4);
    if (a == 0 || (a & (a - 1))) return FORMAT_ERROR(r, "general.alignment %" PRIu64 " is not a power of two", a);
    g->alignment = a;
    return CQ_OK;
}

static cq_status read_tensor_info(reader *r, int64_t i, gguf_rec *rec) {
    char what[160];
    snprintf(what, sizeof what, "the name of tensor %" PRId64, i);
    char *name;
    cq_status s = read_name(r, what, GGML_MAX_NAME - 1, &name);
    rec->t.name = name;
    if (s) return s;
    int64_t dup;
    CQ__TRY(cq__strmap_put(&r->g->tensor_index, name, i, &dup, r->err));
    if (dup >= 0)
        return FORMAT_ERROR(r, "duplicate tensor name '%.100s' (tensors %" PRId64 " and %" PRId64 ")", name, dup, i);
    snprintf(what, sizeof what, "the info of tensor '%.100s'", name);
    uint32_t nd = 0;
    CQ__TRY(read_u32(r, &nd, what));
    if (nd < 1 || nd > GGML_MAX_DIMS)
        return FORMAT_ERROR(r, "tensor '%.100s' has %" PRIu32 " dimensions (1 to %d allowed)", name, nd, GGML_MAX_DIMS);
    rec->t.ndim = (int)nd;
    uint64_t numel = 1;
    for (int d = 0; d < GGML_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < (int)nd) CQ__TRY(read_uint(r, 8, &v, what));
        if (v == 0) return FORMAT_ERROR(r, "tensor '%.100s': dimension %d is 0 (empty tensors are refused)", name, d);
        if (v > INT64_MAX)
            return FORMAT_ERROR(r, "tensor '%.100s': dimension %d is %" PRIu64 ", above INT64_MAX", name, d, v);
        rec->t.ne[d] = (int64_t)v;
        if (cq__mul_overflow_u64(numel, v, &numel) || numel > INT64_MAX)
            return FORMAT_ERROR(r, "tensor '%.100s': the element count overflows int64 (dimension %d is %" PRIu64 ")",
                                name, d, v);
    }
    rec->t.numel = (int64_t)numel;
    uint32_t type = 0;
    CQ__TRY(read_u32(r, &type, what));
    int64_t block = cq_ggml_block_size((int)type);
    if (type > INT32_MAX || block == 0)
        return FORMAT_ERROR(r, "tensor '%.100s': unknown ggml type %" PRIu32, name, type);
    rec->t.type = (cq_ggml_type)type;
    if (rec->t.ne[0] % block)
        return FORMAT_ERROR(r, "tensor '%.100s': rows of %" PRId64 " elements are not a multiple of %s's block of %" PRId64,
                            name, rec->t.ne[0], cq_ggml_type_name((int)type), block);
    if (cq__mul_overflow_u64(numel / (uint64_t)block, cq_ggml_type_size((int)type), &rec->t.nbytes) ||
        rec->t.nbytes > SIZE_MAX)
        return FORMAT_ERROR(r, "tensor '%.100s': the byte size overflows", name);
    CQ__TRY(read_uint(r, 8, &rec->t.offset, what));
    return CQ_OK;
}

/* gguf.cpp's rule: tensor i starts where tensor i - 1 ends, padded to the alignment (so offsets
 * are aligned and nothing overlaps or is left between). And llama.cpp's loader's: the bytes lie
 * inside the file (the last tensor's padding may be missing). */
static cq_status check_layout(reader *r) {
    cq_gguf *g = r->g;
    if (g->n_tensors == 0) {
        g->data_offset = r->pos; /* as gguf.cpp: no padding without tensors */
        return CQ_OK;
    }
    uint64_t a = g->alignment, start = ((uint64_t)r->pos + a - 1) / a * a;
    if (start > g->size)
        return FORMAT_ERROR(r, "truncated: the data region would start at byte %" PRIu64 ", past the end of the %zu-byte file",
                            start, g->size);
    g->data_offset = start;
    uint64_t avail = g->size - start, expect = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const cq_gguf_tensor *t = &g->tensors[i].t;
        const char *prev = i ? g->tensors[i - 1].t.name : NULL;
        if (t->offset % a)
            return FORMAT_ERROR(r, "tensor '%.100s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                                t->name, t->offset, a);
        if (t->offset < expect)
            return FORMAT_ERROR(r, "tensor '%.100s': offset %" PRIu64 " overlaps tensor '%.100s', which ends at %" PRIu64
                                   " (padded)", t->name, t->offset, prev, expect);
        if (t->offset > expect)
            return FORMAT_ERROR(r, "tensor '%.100s': offset %" PRIu64 " leaves a hole after %s%.100s%s (expected %" PRIu64
                                   "; tensors follow one another in tensor-info order)",
                                t->name, t->offset, prev ? "tensor '" : "the start of the data region", prev ? prev : "",
                                prev ? "'" : "", expect);
        if (t->nbytes > avail || t->offset > avail - t->nbytes)
            return FORMAT_ERROR(r, "truncated: tensor '%.100s' needs data bytes [%" PRIu64 ", %" PRIu64 ") but the data region holds %" PRIu64,
                                t->name, t->offset, t->offset + t->nbytes, avail);
        uint64_t padded = (t->nbytes + a - 1) / a * a; /* nbytes <= avail: no overflow */
        expect += padded;
    }
    return CQ_OK;
}

static cq_dtype dtype_of(cq_ggml_type t) {
    switch (t) {
    case CQ_GGML_F32: return CQ_F32;
    case CQ_GGML_F16: return CQ_F16;
    case CQ_GGML_BF16: return CQ_BF16;
    case CQ_GGML_F64: return CQ_F64;
    case CQ_GGML_I8: return CQ_I8;
    case CQ_GGML_I16: return CQ_I16;
    case CQ_GGML_I32: return CQ_I32;
    case CQ_GGML_I64: return CQ_I64;
    default: return CQ_DTYPE_INVALID;
    }
}

/* Points every record at its bytes and fills the source's view: Hugging Face order (ne
 * reversed), and, for a typed tensor whose bytes are not aligned to its element size in memory
 * (an alignment of 1 or 2, or a caller's unaligned buffer), an aligned copy, so that every
 * cq_tensor view is aligned as safetensors' are. */
static cq_status place_tensors(cq_gguf *g, cq_err *err) {
    for (int64_t i = 0; i < g->n_tensors; i++) {
        gguf_rec *rec = &g->tensors[i];
        cq_gguf_tensor *t = &rec->t;
        t->data = g->base + g->data_offset + t->offset;
        cq__src_tensor *s = &rec->src;
        s->name = t->name;
        s->t.dtype = dtype_of(t->type);
        s->t.ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++) s->t.shape[d] = t->ne[t->ndim - 1 - d];
        s->t.data = (void *)t->data;
        s->t.owns_data = false;
        s->format_type = (uint32_t)t->type;
        s->nbytes = t->nbytes;
        s->offset = g->data_offset + t->offset;
        size_t es = cq_dtype_size(s->t.dtype);
        if (es && (uintptr_t)t->data % es) {
            rec->aligned_copy = cq_aligned_alloc((size_t)t->nbytes);
            if (!rec->aligned_copy)
                return gguf_error(err, CQ_E_NOMEM, g, "out of memory copying misaligned tensor '%s'", t->name);
            memcpy(rec->aligned_copy, t->data, (size_t)t->nbytes);
            s->t.data = rec->aligned_copy;
        }
    }
    return CQ_OK;
}

/* Room for item i of an array that will hold at most n, grown by doubling as items are read:
 * memory follows what the file really holds, not the count its header claims (which only has to
 * fit the bytes left, so a corrupt count could still ask for several times the file's size).
 * New items are zeroed. The items own heap names only, so moving them is safe. */
static cq_status grow(void **items, int64_t *cap, int64_t i, int64_t n, size_t size, cq_err *err) {
    if (i < *cap) return CQ_OK;
    int64_t nc = *cap ? 2 * *cap : 16;
    if (nc > n) nc = n;
    void *p = realloc(*items, (size_t)nc * size);
    if (!p) return cq_err_set(err, CQ_E_NOMEM, "out of memory reading GGUF metadata and tensor infos");
    memset((char *)p + (size_t)*cap * size, 0, (size_t)(nc - *cap) * size);
    *items = p;
    *cap = nc;
    return CQ_OK;
}

static cq_status parse(cq_gguf *g, cq_err *err) {
    reader rd = {g, 0, err}, *r = &rd;
    if (g->size < 4 || memcmp(g->base, "GGUF", 4)) {
        if (g->size < 4) return FORMAT_ERROR(r, "not a GGUF file: %zu bytes, too short for the magic \"GGUF\"", g->size);
        char m[5];
        for (int i = 0; i < 4; i++) m[i] = g->base[i] >= 0x20 && g->base[i] < 0x7F ? (char)g->base[i] : '?';
        m[4] = '\0';
        return FORMAT_ERROR(r, "not a GGUF file: it starts with \"%s\", not the magic \"GGUF\"", m);
    }
    r->pos = 4;
    CQ__TRY(read_u32(r, &g->version, "the header"));
    if (g->version == 0) return FORMAT_ERROR(r, "bad GGUF version 0");
    if ((g->version & 0xFFFFu) == 0)
        return gguf_error(err, CQ_E_UNSUPPORTED, g,
                          "GGUF version %" PRIu32 " (0x%08" PRIx32 ") reads as a byte-swapped (big-endian) file, "
                          "which cquanto does not read",
                          g->version, g->version);
    if (g->version == 1)
        return gguf_error(err, CQ_E_UNSUPPORTED, g, "GGUF version 1 is not supported (llama.cpp dropped it too)");
    if (g->version > 3)
        return gguf_error(err, CQ_E_UNSUPPORTED, g, "GGUF version %" PRIu32 " is newer than the versions 2 and 3 cquanto reads",
                          g->version);
    uint64_t n_tensors = 0, n_kv = 0;
    CQ__TRY(read_uint(r, 8, &n_tensors, "the header"));
    CQ__TRY(read_uint(r, 8, &n_kv, "the header"));
    if (n_kv > left(r) / MIN_KV_BYTES)
        return FORMAT_ERROR(r, "key-value count %" PRIu64 " is more than the %zu bytes left can hold (at least %d each)", n_kv,
                            left(r), MIN_KV_BYTES);
    int64_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        CQ__TRY(grow((void **)&g->kv, &cap, (int64_t)i, (int64_t)n_kv, sizeof *g->kv, err));
        g->n_kv++; /* owned from here, even half read */
        CQ__TRY(read_kv(r, (int64_t)i, &g->kv[i]));
    }
    CQ__TRY(read_alignment(r));
    if (n_tensors > left(r) / MIN_TENSOR_INFO_BYTES)
        return FORMAT_ERROR(r, "tensor count %" PRIu64 " is more than the %zu bytes left can hold (at least %d each)",
                            n_tensors, left(r), MIN_TENSOR_INFO_BYTES);
    cap = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        CQ__TRY(grow((void **)&g->tensors, &cap, (int64_t)i, (int64_t)n_tensors, sizeof *g->tensors, err));
        g->n_tensors++;
        CQ__TRY(read_tensor_info(r, (int64_t)i, &g->tensors[i]));
    }
    CQ__TRY(check_layout(r));
    return place_tensors(g, err);
}

/* ---- opening ------------------------------------------------------------------------------ */

static const cq__source_ops g_gguf_source_ops;

static cq_status new_gguf(const char *label, cq_gguf **out, cq_err *err) {
    *out = cq__calloc(1, sizeof **out, err, "a GGUF handle");
    if (!*out) return CQ_E_NOMEM;
    (*out)->src = (cq__source){&g_gguf_source_ops, *out};
    (*out)->path = cq__strdup(label, err);
    if (!(*out)->path) {
        free(*out);
        *out = NULL;
        return CQ_E_NOMEM;
    }
    return CQ_OK;
}

/* Parses a handle whose bytes are set; on failure closes it and leaves *out NULL. */
static cq_status finish_open(cq_gguf *g, cq_status s, cq_gguf **out, cq_err *err) {
    if (!s) s = parse(g, err);
    if (s) {
        cq__err_one_line(err);
        cq_gguf_close(g);
        return s;
    }
    *out = g;
    return CQ_OK;
}

cq_status cq_gguf_open_memory(const void *data, size_t size, const char *label, cq_gguf **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    if (!data && size) return cq_err_set(err, CQ_E_ARG, "cq_gguf_open_memory: data is NULL");
    cq_gguf *g;
    CQ__TRY(new_gguf(label ? label : "<memory>", &g, err));
    g->base = data;
    g->size = size;
    return finish_open(g, CQ_OK, out, err);
}

cq_status cq_gguf_open(const char *path, cq_gguf **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(path);
    cq_gguf *g;
    CQ__TRY(new_gguf(path, &g, err));
    cq_status s = cq__map_file(path, &g->base, &g->size, err);
    g->mapped = !s;
    return finish_open(g, s, out, err);
}

/* ---- the handle --------------------------------------------------------------------------- */

const char *cq_gguf_path(const cq_gguf *g) { return g ? g->path : NULL; }
uint32_t cq_gguf_version(const cq_gguf *g) { return g ? g->version : 0; }
uint64_t cq_gguf_alignment(const cq_gguf *g) { return g ? g->alignment : 0; }
uint64_t cq_gguf_data_offset(const cq_gguf *g) { return g ? g->data_offset : 0; }
int64_t cq_gguf_kv_count(const cq_gguf *g) { return g ? g->n_kv : 0; }
int64_t cq_gguf_tensor_count(const cq_gguf *g) { return g ? g->n_tensors : 0; }

static const gguf_kv *kv_at(const cq_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const char *cq_gguf_kv_key(const cq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : NULL;
}

int64_t cq_gguf_kv_find(const cq_gguf *g, const char *key) {
    return g && key ? cq__strmap_get(&g->kv_index, key) : -1;
}

cq_gguf_type cq_gguf_kv_type(const cq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : (cq_gguf_type)-1;
}

cq_gguf_type cq_gguf_kv_elem_type(const cq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->elem : (cq_gguf_type)-1;
}

int64_t cq_gguf_kv_len(const cq_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->n : 0;
}

const char *cq_gguf_kv_str(const cq_gguf *g, int64_t i, int64_t j) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->elem == CQ_GGUF_STRING && j >= 0 && j < kv->n ? kv->strs[j] : NULL;
}

static bool is_integer(cq_gguf_type t) {
    return t <= CQ_GGUF_INT32 || t == CQ_GGUF_UINT64 || t == CQ_GGUF_INT64;
}

/* Element j of a numeric value as int64 (*ok false for a u64 above INT64_MAX) or double. */
static int64_t elem_i64(const gguf_kv *kv, int64_t j, bool *ok) {
    int w = g_value_size[kv->elem];
    uint64_t u = le(kv->raw + (size_t)j * (size_t)w, w);
    *ok = true;
    switch (kv->elem) {
    case CQ_GGUF_INT8: return (int8_t)u;
    case CQ_GGUF_INT16: return (int16_t)u;
    case CQ_GGUF_INT32: return (int32_t)u;
    case CQ_GGUF_INT64: return (int64_t)u;
    case CQ_GGUF_BOOL: return u != 0; /* gguf.cpp reads any nonzero byte as true */
    case CQ_GGUF_UINT64: *ok = u <= INT64_MAX; return (int64_t)u;
    default: return (int64_t)u; /* u8, u16, u32 */
    }
}

static double elem_f64(const gguf_kv *kv, int64_t j) {
    int w = g_value_size[kv->elem];
    uint64_t u = le(kv->raw + (size_t)j * (size_t)w, w);
    if (kv->elem == CQ_GGUF_FLOAT32) return (double)cq__bits_f32((uint32_t)u);
    if (kv->elem == CQ_GGUF_FLOAT64) {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    if (kv->elem == CQ_GGUF_UINT64) return (double)u;
    bool ok;
    return (double)elem_i64(kv, j, &ok);
}

bool cq_gguf_kv_int(const cq_gguf *g, int64_t i, int64_t j, int64_t *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out || j < 0 || j >= kv->n || !(is_integer(kv->elem) || kv->elem == CQ_GGUF_BOOL)) return false;
    bool ok;
    int64_t v = elem_i64(kv, j, &ok);
    if (ok) *out = v;
    return ok;
}

bool cq_gguf_kv_real(const cq_gguf *g, int64_t i, int64_t j, double *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out || j < 0 || j >= kv->n ||
        !(is_integer(kv->elem) || kv->elem == CQ_GGUF_FLOAT32 || kv->elem == CQ_GGUF_FLOAT64))
        return false;
    *out = elem_f64(kv, j);
    return true;
}

/* The scalar under key for a typed getter: CQ_E_NOTFOUND when absent, CQ_E_FORMAT when an
 * array or (ok(type) false) of another type. */
static cq_status typed_kv(const cq_gguf *g, const char *key, bool (*ok)(cq_gguf_type), const char *want,
                          const gguf_kv **out, cq_err *err) {
    int64_t i = cq__strmap_get(&g->kv_index, key);
    if (i < 0) return cq_err_set(err, CQ_E_NOTFOUND, "%s: no metadata key '%s'", g->path, key);
    const gguf_kv *kv = &g->kv[i];
    if (kv->type == CQ_GGUF_ARRAY)
        return cq_err_set(err, CQ_E_FORMAT, "%s: metadata key '%s' is an array of %" PRId64 " %s, not %s", g->path, key,
                          kv->n, g_value_name[kv->elem], want);
    if (!ok(kv->type))
        return cq_err_set(err, CQ_E_FORMAT, "%s: metadata key '%s' is a %s, not %s", g->path, key,
                          g_value_name[kv->type], want);
    *out = kv;
    return CQ_OK;
}

static bool int_type(cq_gguf_type t) { return is_integer(t); }
static bool real_type(cq_gguf_type t) { return is_integer(t) || t == CQ_GGUF_FLOAT32 || t == CQ_GGUF_FLOAT64; }
static bool bool_type(cq_gguf_type t) { return t == CQ_GGUF_BOOL; }

cq_status cq_gguf_get_int(const cq_gguf *g, const char *key, int64_t *out, cq_err *err) {
    CQ__ARG(g);
    CQ__ARG(key);
    CQ__ARG(out);
    const gguf_kv *kv;
    CQ__TRY(typed_kv(g, key, int_type, "an integer", &kv, err));
    bool ok;
    int64_t v = elem_i64(kv, 0, &ok);
    if (!ok)
        return cq_err_set(err, CQ_E_FORMAT, "%s: metadata key '%s' = %" PRIu64 " does not fit an int64", g->path, key,
                          (uint64_t)v);
    *out = v;
    return CQ_OK;
}

cq_status cq_gguf_get_real(const cq_gguf *g, const char *key, double *out, cq_err *err) {
    CQ__ARG(g);
    CQ__ARG(key);
    CQ__ARG(out);
    const gguf_kv *kv;
    CQ__TRY(typed_kv(g, key, real_type, "a number", &kv, err));
    *out = elem_f64(kv, 0);
    return CQ_OK;
}

cq_status cq_gguf_get_bool(const cq_gguf *g, const char *key, bool *out, cq_err *err) {
    CQ__ARG(g);
    CQ__ARG(key);
    CQ__ARG(out);
    const gguf_kv *kv;
    CQ__TRY(typed_kv(g, key, bool_type, "a bool", &kv, err));
    *out = kv->raw[0] != 0;
    return CQ_OK;
}

const char *cq_gguf_get_str(const cq_gguf *g, const char *key) {
    int64_t i = cq_gguf_kv_find(g, key);
    return i >= 0 && g->kv[i].type == CQ_GGUF_STRING ? g->kv[i].strs[0] : NULL;
}

const cq_gguf_tensor *cq_gguf_tensor_at(const cq_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i].t : NULL;
}

int64_t cq_gguf_tensor_find(const cq_gguf *g, const char *name) {
    return g && name ? cq__strmap_get(&g->tensor_index, name) : -1;
}

/* ---- the file as a tensor source (source.h) ------------------------------------------------ */

static int64_t src_count(const void *impl) { return ((const cq_gguf *)impl)->n_tensors; }

static const cq__src_tensor *src_tensor(const void *impl, int64_t i) {
    const cq_gguf *g = impl;
    return i >= 0 && i < g->n_tensors ? &g->tensors[i].src : NULL;
}

static void src_release(const void *impl, int64_t i, uint64_t off, uint64_t n) {
    const cq_gguf *g = impl;
    if (!g->mapped || i < 0 || i >= g->n_tensors || g->tensors[i].aligned_copy) return;
    cq__release_mapped(g->tensors[i].t.data, g->tensors[i].t.nbytes, off, n);
}

static void src_sequential(const void *impl) {
    const cq_gguf *g = impl;
    if (g->mapped) cq__advise_sequential(g->base, g->size);
}

static int64_t src_meta_count(const void *impl) { return ((const cq_gguf *)impl)->n_kv; }
static const char *src_meta_key(const void *impl, int64_t k) { return cq_gguf_kv_key(impl, k); }

static cq__meta_kind meta_kind(cq_gguf_type t) {
    if (t == CQ_GGUF_STRING) return CQ__META_STRING;
    if (t == CQ_GGUF_BOOL) return CQ__META_BOOL;
    if (t == CQ_GGUF_FLOAT32 || t == CQ_GGUF_FLOAT64) return CQ__META_FLOAT;
    return CQ__META_INT;
}

static bool src_meta_value(const void *impl, int64_t k, int64_t elem, cq__meta *out) {
    const gguf_kv *kv = kv_at(impl, k);
    if (!kv || (elem >= 0 && kv->type != CQ_GGUF_ARRAY) || elem >= kv->n) return false;
    memset(out, 0, sizeof *out);
    if (elem < 0 && kv->type == CQ_GGUF_ARRAY) {
        out->kind = CQ__META_ARRAY;
        out->elem = meta_kind(kv->elem);
        out->n = kv->n;
        return true;
    }
    int64_t j = elem < 0 ? 0 : elem;
    bool ok = true;
    out->kind = meta_kind(kv->elem);
    switch (out->kind) {
    case CQ__META_STRING: out->str = kv->strs[j]; break;
    case CQ__META_FLOAT: out->f = elem_f64(kv, j); break;
    default: out->i = elem_i64(kv, j, &ok); break; /* INT, BOOL */
    }
    return ok;
}

static void src_close(void *impl) { cq_gguf_close(impl); }

static const cq__source_ops g_gguf_source_ops = {
    "gguf", src_count, src_tensor, src_release, src_sequential, src_meta_count, src_meta_key, src_meta_value,
    src_close};

cq__source *cq__gguf_source(cq_gguf *g) { return g ? &g->src : NULL; }

const cq_gguf *cq__gguf_of_source(const cq__source *s) {
    return s && s->ops == &g_gguf_source_ops ? s->impl : NULL;
}
