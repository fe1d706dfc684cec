/*
 * source.h - the tensor source: one file's tensors as the layers above src/io read them,
 * whatever the file format. A source lists its tensors (name, type, shape, byte size, bytes)
 * over the file's read-only mapping, zero copy, and takes back the pages of a tensor once its
 * reader is done with them, so a pass over a file larger than memory stays bounded.
 * safetensors (safetensors_read.c) and GGUF (gguf.c) implement it; cq_ckpt (shards.c) is built
 * on it. A new format supplies one cq__source_ops and a case in cq__source_open; nothing above
 * src/io changes. Private to the library; never installed.
 */
#ifndef CQ_IO_SOURCE_H
#define CQ_IO_SOURCE_H

#include "core/internal.h"

/* One tensor of a source. The byte size comes from the format, never from dtype and shape
 * alone: block-quantized types (GGUF's Q4_0 packs 32 weights and a scale in 18 bytes) have no
 * cq_dtype. */
typedef struct cq__src_tensor {
    const char *name;
    /* t.dtype is CQ_DTYPE_INVALID when the format's type has no cq_dtype; t.shape is then the
     * logical element shape and t.data still points at the bytes. */
    cq_tensor t;
    uint32_t format_type; /* the format's own type code (GGUF: ggml_type); 0 where cq_dtype says all */
    uint64_t nbytes;      /* bytes at t.data */
    uint64_t offset;      /* of those bytes in the file */
} cq__src_tensor;

/* A metadata value: a string (safetensors' "__metadata__" has only these), or one of the typed
 * values other formats carry (GGUF: integers, floats, booleans, arrays). */
typedef enum cq__meta_kind { CQ__META_STRING, CQ__META_INT, CQ__META_FLOAT, CQ__META_BOOL, CQ__META_ARRAY } cq__meta_kind;
typedef struct cq__meta {
    cq__meta_kind kind;
    const char *str;    /* STRING, NUL-terminated, borrowed until close */
    int64_t i;          /* INT; BOOL as 0 or 1 */
    double f;           /* FLOAT */
    cq__meta_kind elem; /* ARRAY: n elements of this kind, each read with meta_value(k, j) */
    int64_t n;
} cq__meta;

typedef struct cq__source_ops {
    const char *format; /* "safetensors" */
    int64_t (*count)(const void *impl);
    /* Tensor i (0 <= i < count), in file order; borrowed until close. */
    const cq__src_tensor *(*tensor)(const void *impl, int64_t i);
    /* Bytes [off, off + n) of tensor i (n clamped to the tensor's end) will not be read again:
     * the whole pages inside go back to the kernel (a later read faults them in again from the
     * page cache). */
    void (*release)(const void *impl, int64_t i, uint64_t off, uint64_t n);
    /* Tensors will be read front to back from now on: read ahead accordingly. May be NULL. */
    void (*sequential)(const void *impl);
    int64_t (*meta_count)(const void *impl);
    const char *(*meta_key)(const void *impl, int64_t k);
    /* Metadata entry k (elem < 0), or element elem of the array it holds; false out of range. */
    bool (*meta_value)(const void *impl, int64_t k, int64_t elem, cq__meta *out);
    void (*close)(void *impl);
} cq__source_ops;

typedef struct cq__source {
    const cq__source_ops *ops;
    void *impl;
} cq__source;

/* Opens the file at path as a source of the format its contents name (GGUF when it starts
 * with "GGUF" or is named *.gguf, safetensors otherwise), validated in full. */
cq_status cq__source_open(const char *path, cq__source **out, cq_err *err);
/* Closes the source and the file it reads; accepts NULL. */
void cq__source_close(cq__source *s);

static inline int64_t cq__src_count(const cq__source *s) { return s->ops->count(s->impl); }
static inline const cq__src_tensor *cq__src_tensor_at(const cq__source *s, int64_t i) {
    return s->ops->tensor(s->impl, i);
}
static inline void cq__src_release(const cq__source *s, int64_t i, uint64_t off, uint64_t n) {
    s->ops->release(s->impl, i, off, n);
}
static inline void cq__src_sequential(const cq__source *s) {
    if (s->ops->sequential) s->ops->sequential(s->impl);
}
/* What a mapped source's release and sequential ops do (source.c), shared by every format:
 * release gives back the whole pages inside bytes [off, off + n) of the n_bytes at data (n
 * clamped); a page shared with a neighbouring tensor stays until that one is released too.
 * MADV_DONTNEED on a read-only file mapping only unmaps the pages; the page cache keeps them. */
void cq__release_mapped(const void *data, uint64_t nbytes, uint64_t off, uint64_t n);
void cq__advise_sequential(const void *base, size_t size);

/* The string value of metadata key `key`, NULL when absent or not a string. */
const char *cq__src_meta_string(const cq__source *s, const char *key);

/* The safetensors source over an open file (owned by the file; closing it closes the file), and
 * the file behind a source (NULL for another format). */
cq__source *cq__st_source(cq_st_file *f);
const cq_st_file *cq__st_of_source(const cq__source *s);
/* The same for GGUF (gguf.c). A GGUF tensor's record has t.shape in Hugging Face order (ggml's
 * ne reversed), t.dtype the cq_dtype of F32, F16, BF16, F64, I8, I16, I32 and I64 tensors and
 * CQ_DTYPE_INVALID for the block types, and format_type its ggml type. Metadata: integers as
 * INT (a u64 above INT64_MAX reads as absent), f32/f64 as FLOAT, BOOL, STRING, and ARRAY. */
cq__source *cq__gguf_source(cq_gguf *g);
const cq_gguf *cq__gguf_of_source(const cq__source *s);

/* ---- checkpoints on sources (shards.c) ---------------------------------------------------- */

/* Shard `shard`'s source, NULL out of range. */
const cq__source *cq__ckpt_source(const cq_ckpt *c, int shard);
/* Checkpoint tensor i's record in its shard's source, NULL out of range. */
const cq__src_tensor *cq__ckpt_record(const cq_ckpt *c, int64_t i);
/* The page-release hook for checkpoint tensor i: bytes [off, off + n) are consumed. */
void cq__ckpt_release(const cq_ckpt *c, int64_t i, uint64_t off, uint64_t n);
/* Every shard will be read front to back. */
void cq__ckpt_sequential(const cq_ckpt *c);

#endif
