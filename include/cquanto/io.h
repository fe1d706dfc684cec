/*
 * cquanto/io.h - safetensors read and write, sharded checkpoints, GGUF (llama.cpp's files) read
 * and ggml dequantization, the quanto map, Hugging Face config.json, and the in-memory data set
 * the training loops read.
 */
#ifndef CQUANTO_IO_H
#define CQUANTO_IO_H

#include "cquanto/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * io: safetensors, sharded checkpoints, quanto map, Hugging Face folders
 * ====================================================================================== */

/* --- io: safetensors reading ----------------------------------------------------------
 * cq_st_open maps the file read-only and validates it with the reference implementation's
 * rules (huggingface/safetensors tensor.rs): an 8-byte little-endian header length N with
 * N <= 100,000,000 and N <= size - 8; a header of valid UTF-8 JSON starting with '{' (trailing
 * spaces allowed); known dtypes; shapes of non-negative integers whose byte size (checked for
 * overflow) equals end - begin; offsets that, sorted, are contiguous from 0 and cover the data
 * region exactly; unique names; "__metadata__" a string-to-string map. Every rejection is
 * CQ_E_FORMAT with a one-line message naming the file and the problem (CQ_E_UNSUPPORTED for
 * valid files we cannot represent: rank > CQ_MAX_DIMS, dtypes such as C64 or F4). Tensors are
 * views into the mapping; a tensor whose bytes are not aligned to its element size (only in
 * files from other writers) is copied once into aligned memory, so every view is aligned.
 * The handle is read-only and may be shared between threads. Never modify a view's data. */
#define CQ_ST_MAX_HEADER_SIZE 100000000

typedef struct cq_st_file cq_st_file;

CQ_API cq_status cq_st_open(const char *path, cq_st_file **out, cq_err *err);
/* The same over a caller's buffer (kept alive by the caller until close); `label` names it in
 * messages (NULL: "<memory>"). */
CQ_API cq_status cq_st_open_memory(const void *data, size_t size, const char *label, cq_st_file **out,
                                   cq_err *err);
CQ_API void cq_st_close(cq_st_file *f); /* accepts NULL */

CQ_API const char *cq_st_path(const cq_st_file *f);       /* the path or label given at open */
CQ_API int64_t cq_st_count(const cq_st_file *f);          /* number of tensors */
/* Tensor i in file (offset) order, 0 <= i < count; NULL out of range. Borrowed, valid until
 * cq_st_close. */
CQ_API const char *cq_st_name(const cq_st_file *f, int64_t i);
CQ_API const cq_tensor *cq_st_tensor(const cq_st_file *f, int64_t i);
/* Byte offset of tensor i's data from the start of the file (8 + N + begin). */
CQ_API uint64_t cq_st_file_offset(const cq_st_file *f, int64_t i);
/* Index of a tensor by name, -1 if absent. */
CQ_API int64_t cq_st_find(const cq_st_file *f, const char *name);
/* CQ_E_NOTFOUND (naming the file and the tensor) if absent. */
CQ_API cq_status cq_st_get(const cq_st_file *f, const char *name, const cq_tensor **out, cq_err *err);
/* "__metadata__" entries in header order; cq_st_metadata returns NULL if the key is absent. */
CQ_API const char *cq_st_metadata(const cq_st_file *f, const char *key);
CQ_API int64_t cq_st_metadata_count(const cq_st_file *f);
CQ_API const char *cq_st_metadata_key(const cq_st_file *f, int64_t i);
CQ_API const char *cq_st_metadata_value(const cq_st_file *f, int64_t i);
CQ_API uint64_t cq_st_header_size(const cq_st_file *f); /* N */
CQ_API uint64_t cq_st_data_size(const cq_st_file *f);   /* bytes after the header */

/* --- io: safetensors writing ------------------------------------------------------------
 * A streaming writer. Declare every tensor (and metadata) first; the first write fixes the
 * layout. Tensors are laid out as the reference writer does (descending dtype order
 * U64 I64 F64 F32 U32 I32 BF16 F16 U16 I16 F8_E4M3FNUZ F8_E4M3 F8_E5M2 I8 U8 BOOL, then by
 * name), the header is compact JSON padded with spaces to a multiple of 8 and metadata keeps
 * insertion order, so a file written by Python safetensors and re-written here from what
 * cq_st_open read is byte-identical. Each tensor's bytes may come in any tensor order and in
 * chunks (appended per tensor). Everything goes to a temp file in the destination folder;
 * commit checks every tensor is complete, fsyncs and renames it into place. Freeing an
 * uncommitted writer removes the temp file. One writer belongs to one thread. */
typedef struct cq_st_writer cq_st_writer;

CQ_API cq_status cq_st_writer_open(const char *path, cq_st_writer **out, cq_err *err);
CQ_API cq_status cq_st_writer_add_metadata(cq_st_writer *w, const char *key, const char *value, cq_err *err);
/* Names must be unique, non-empty UTF-8 without NUL; CQ_E_ARG otherwise. */
CQ_API cq_status cq_st_writer_declare(cq_st_writer *w, const char *name, cq_dtype dt, int ndim,
                                      const int64_t *shape, cq_err *err);
/* Appends nbytes to tensor `name` (its bytes so far plus these must not exceed its size). */
CQ_API cq_status cq_st_writer_write(cq_st_writer *w, const char *name, const void *data, size_t nbytes,
                                    cq_err *err);
/* Writes a whole tensor whose dtype and shape must match the declaration. */
CQ_API cq_status cq_st_writer_write_tensor(cq_st_writer *w, const char *name, const cq_tensor *t, cq_err *err);
CQ_API cq_status cq_st_writer_commit(cq_st_writer *w, cq_err *err);
CQ_API void cq_st_writer_free(cq_st_writer *w); /* accepts NULL; discards an uncommitted file */

/* One call: n tensors with their names; metadata is NULL or a NULL-terminated list of
 * key, value, key, value, ... strings. */
CQ_API cq_status cq_st_save(const char *path, int64_t n, const char *const *names,
                            const cq_tensor *const *tensors, const char *const *metadata, cq_err *err);

/* --- io: checkpoints (one file, a folder, or shards with an index) ----------------------
 * cq_ckpt_open accepts a .safetensors file, a *.safetensors.index.json file, or a folder
 * holding model.safetensors.index.json / diffusion_pytorch_model.safetensors.index.json /
 * one other *.safetensors.index.json, else model.safetensors /
 * diffusion_pytorch_model.safetensors / a single *.safetensors file. A sharded checkpoint
 * opens every shard named in the index's weight_map (plain file names beside the index, which
 * must resolve inside its folder: see docs/CLI.md, "Files read and written"), and fails with CQ_E_FORMAT if a listed tensor is missing from its
 * shard, or a shard holds a tensor the index does not list. Tensors are presented as one set,
 * in shard order (shard files sorted by name) then file order. */
typedef struct cq_ckpt cq_ckpt;

CQ_API cq_status cq_ckpt_open(const char *path, cq_ckpt **out, cq_err *err);
CQ_API void cq_ckpt_close(cq_ckpt *c); /* accepts NULL */

CQ_API int64_t cq_ckpt_count(const cq_ckpt *c);
CQ_API const char *cq_ckpt_name(const cq_ckpt *c, int64_t i);           /* NULL out of range */
CQ_API const cq_tensor *cq_ckpt_tensor(const cq_ckpt *c, int64_t i);    /* borrowed until close */
CQ_API int cq_ckpt_tensor_shard(const cq_ckpt *c, int64_t i);           /* shard index, -1 out of range */
CQ_API int64_t cq_ckpt_find(const cq_ckpt *c, const char *name);        /* -1 if absent */
CQ_API cq_status cq_ckpt_get(const cq_ckpt *c, const char *name, const cq_tensor **out, cq_err *err);
/* The folder holding the checkpoint (where config.json and quanto_qmap.json live). */
CQ_API const char *cq_ckpt_dir(const cq_ckpt *c);
/* The index file's path, or NULL for a single file. */
CQ_API const char *cq_ckpt_index_path(const cq_ckpt *c);
/* The file `name` (config.json, quanto_qmap.json ...) of the checkpoint's folder: *path
 * (malloc'd) or NULL when there is none; CQ_E_FORMAT when it is a link leading outside the
 * folder (the rule for shards). */
CQ_API cq_status cq_ckpt_folder_file(const cq_ckpt *c, const char *name, char **path, cq_err *err);
/* The index's metadata.total_size (-1 when absent or not sharded). */
CQ_API int64_t cq_ckpt_index_total_size(const cq_ckpt *c);
CQ_API int cq_ckpt_shard_count(const cq_ckpt *c);
CQ_API const cq_st_file *cq_ckpt_shard(const cq_ckpt *c, int shard);
/* The shard's file name as written in the weight_map (the base name for a single file). */
CQ_API const char *cq_ckpt_shard_file(const cq_ckpt *c, int shard);

/* "model-00002-of-00005.safetensors" (transformers' shard names) into buf; returns buf. */
CQ_API const char *cq_shard_file_name(char *buf, size_t n, const char *prefix, int shard, int nshards);
/* Writes a transformers index (json.dumps(indent=2, sort_keys=True) + "\n", so byte-identical
 * to transformers'): {"metadata": {"total_size": total_size}, "weight_map": {name: file}}.
 * Atomic. */
CQ_API cq_status cq_ckpt_write_index(const char *path, int64_t total_size, int64_t n, const char *const *names,
                                     const char *const *files, cq_err *err);

/* --- io: GGUF ----------------------------------------------------------------------------
 * llama.cpp's model file (versions 2 and 3; version 1 and big-endian files are refused as
 * unsupported). cq_gguf_open maps the file read-only and validates it with the rules of
 * llama.cpp's gguf.cpp and the gguf Python package: magic "GGUF"; counts, string and array
 * lengths checked against the bytes left (no allocation before the bytes exist; strings and
 * arrays at most 2^30 bytes / elements); known value types (arrays of arrays refused as
 * unsupported); unique non-empty keys and unique tensor names, UTF-8 without NUL, names under
 * 64 bytes; general.alignment, when present, a u32 power of two (default 32); 1 to 4
 * dimensions, each >= 1, the first a multiple of the type's block size, the element and byte
 * counts overflow-checked; known tensor types; offsets exactly sequential in tensor-info order,
 * each tensor padded to the alignment (gguf.cpp's rule: so aligned, no overlaps, no holes), and
 * each tensor's bytes inside the file (the data region starts at the aligned end of the tensor
 * infos). docs/GGUF.md lists the rules. Every rejection is CQ_E_FORMAT with a one-line message
 * naming the file and what is wrong (CQ_E_UNSUPPORTED for valid files cquanto cannot read).
 * Metadata strings are copied at open (NUL-terminated); numbers and tensor data stay in the
 * mapping. Read-only and safe to share between threads. */
typedef struct cq_gguf cq_gguf;

/* The value types, with gguf's codes. */
typedef enum cq_gguf_type {
    CQ_GGUF_UINT8 = 0, CQ_GGUF_INT8 = 1, CQ_GGUF_UINT16 = 2, CQ_GGUF_INT16 = 3, CQ_GGUF_UINT32 = 4,
    CQ_GGUF_INT32 = 5, CQ_GGUF_FLOAT32 = 6, CQ_GGUF_BOOL = 7, CQ_GGUF_STRING = 8, CQ_GGUF_ARRAY = 9,
    CQ_GGUF_UINT64 = 10, CQ_GGUF_INT64 = 11, CQ_GGUF_FLOAT64 = 12
} cq_gguf_type;
/* gguf.cpp's short name of a value type ("u32", "str", "arr" ...); NULL for another code. */
CQ_API const char *cq_gguf_type_name(cq_gguf_type t);

/* Tensor element types, with ggml's codes (ggml.h, enum ggml_type). */
typedef enum cq_ggml_type {
    CQ_GGML_F32 = 0, CQ_GGML_F16 = 1, CQ_GGML_Q4_0 = 2, CQ_GGML_Q4_1 = 3, CQ_GGML_Q5_0 = 6,
    CQ_GGML_Q5_1 = 7, CQ_GGML_Q8_0 = 8, CQ_GGML_Q8_1 = 9, CQ_GGML_Q2_K = 10, CQ_GGML_Q3_K = 11,
    CQ_GGML_Q4_K = 12, CQ_GGML_Q5_K = 13, CQ_GGML_Q6_K = 14, CQ_GGML_Q8_K = 15, CQ_GGML_I8 = 24,
    CQ_GGML_I16 = 25, CQ_GGML_I32 = 26, CQ_GGML_I64 = 27, CQ_GGML_F64 = 28, CQ_GGML_BF16 = 30
} cq_ggml_type;

CQ_API cq_status cq_gguf_open(const char *path, cq_gguf **out, cq_err *err);
/* The same over a caller's buffer (kept alive until close); `label` names it in messages. */
CQ_API cq_status cq_gguf_open_memory(const void *data, size_t size, const char *label, cq_gguf **out, cq_err *err);
CQ_API void cq_gguf_close(cq_gguf *g); /* accepts NULL */
CQ_API const char *cq_gguf_path(const cq_gguf *g);
CQ_API uint32_t cq_gguf_version(const cq_gguf *g);
CQ_API uint64_t cq_gguf_alignment(const cq_gguf *g);
CQ_API uint64_t cq_gguf_data_offset(const cq_gguf *g); /* where the data region starts */

/* Metadata, in file order. A key's value: cq_gguf_kv_type; for an array, its element type
 * and length; numbers widen losslessly to int64/double (a UINT64 above INT64_MAX is
 * CQ_E_FORMAT at the typed getters, false at cq_gguf_kv_int). A BOOL is 0 or 1 (any nonzero
 * byte is true, as gguf.cpp reads it). String values are not checked for UTF-8 (gguf.cpp does
 * not either) and one holding a NUL byte reads up to it; keys and tensor names are UTF-8
 * without NUL. */
CQ_API int64_t cq_gguf_kv_count(const cq_gguf *g);
CQ_API const char *cq_gguf_kv_key(const cq_gguf *g, int64_t i);  /* NULL out of range */
CQ_API int64_t cq_gguf_kv_find(const cq_gguf *g, const char *key); /* -1 if absent */
CQ_API cq_gguf_type cq_gguf_kv_type(const cq_gguf *g, int64_t i);      /* (cq_gguf_type)-1 out of range */
CQ_API cq_gguf_type cq_gguf_kv_elem_type(const cq_gguf *g, int64_t i); /* arrays; else the value type */
CQ_API int64_t cq_gguf_kv_len(const cq_gguf *g, int64_t i);            /* arrays; 1 otherwise; 0 out of range */
/* Element j of key i (j = 0 for a scalar): a string (NULL if not one or out of range), or a
 * number (false if not one or out of range). */
CQ_API const char *cq_gguf_kv_str(const cq_gguf *g, int64_t i, int64_t j);
CQ_API bool cq_gguf_kv_int(const cq_gguf *g, int64_t i, int64_t j, int64_t *out);   /* integer types, BOOL */
CQ_API bool cq_gguf_kv_real(const cq_gguf *g, int64_t i, int64_t j, double *out);   /* FLOAT32/64 and integers */
/* By key, for scalars: CQ_E_NOTFOUND (naming file and key) when absent, CQ_E_FORMAT when of
 * another type or an array (get_int: integer types; get_real: integers and floats; get_bool:
 * BOOL). get_str returns NULL when absent or not a string. */
CQ_API cq_status cq_gguf_get_int(const cq_gguf *g, const char *key, int64_t *out, cq_err *err);
CQ_API cq_status cq_gguf_get_real(const cq_gguf *g, const char *key, double *out, cq_err *err);
CQ_API cq_status cq_gguf_get_bool(const cq_gguf *g, const char *key, bool *out, cq_err *err);
CQ_API const char *cq_gguf_get_str(const cq_gguf *g, const char *key);

/* Tensors, in file (tensor info) order. ne[] is ggml's order: ne[0] is the contiguous
 * dimension, so a Hugging Face (out, in) weight is ne = {in, out}; shape() reverses it. */
typedef struct cq_gguf_tensor {
    const char *name;
    cq_ggml_type type;
    int ndim;
    int64_t ne[4];      /* unused dimensions are 1 */
    int64_t numel;
    uint64_t offset;    /* from the start of the data region */
    uint64_t nbytes;
    const void *data;   /* in the mapping (or the caller's buffer), at a multiple of the file's
                           alignment from its start: aligned in memory for a mapped file */
} cq_gguf_tensor;
CQ_API int64_t cq_gguf_tensor_count(const cq_gguf *g);
CQ_API const cq_gguf_tensor *cq_gguf_tensor_at(const cq_gguf *g, int64_t i); /* NULL out of range */
CQ_API int64_t cq_gguf_tensor_find(const cq_gguf *g, const char *name);     /* -1 if absent */

/* ggml types: name ("Q4_K"; NULL for a code ggml does not define), elements per block and
 * bytes per block (0 for unknown), and whether cq_ggml_dequantize handles it. */
CQ_API const char *cq_ggml_type_name(int type);
CQ_API int64_t cq_ggml_block_size(int type);
CQ_API size_t cq_ggml_type_size(int type);
CQ_API bool cq_ggml_can_dequantize(int type);
/* n elements (a multiple of the block size) of `type` at src (any alignment) into f32,
 * bit-exact with the gguf Python package's dequantize (gguf/quants.py) for F32, F16, BF16, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K (every block whose f16 scales are not NaN;
 * docs/GGUF.md); CQ_E_UNSUPPORTED for the other ggml types, CQ_E_ARG for a code ggml does not
 * define or a partial block. */
CQ_API cq_status cq_ggml_dequantize(int type, const void *src, int64_t n, float *dst, cq_err *err);

/* --- io: the quanto quantization map (quanto_qmap.json) --------------------------------
 * {"<module>": {"weights": "<qtype>|none", "activations": "<qtype>|none"}, ...}, read with the
 * names quanto's requantize accepts (qint2 qint4 qint8 qfloat8 qfloat8_e4m3fn qfloat8_e5m2
 * qfloat8_e4m3fnuz none) and written exactly as Python's json.dump(qmap, f, indent=4) with the
 * canonical names. Modules keep insertion (file) order. */
typedef struct cq_qmap cq_qmap;

CQ_API cq_status cq_qmap_new(cq_qmap **out, cq_err *err);
CQ_API void cq_qmap_free(cq_qmap *m); /* accepts NULL */
/* Adds a module, or replaces its qtypes if present. */
CQ_API cq_status cq_qmap_set(cq_qmap *m, const char *module, cq_qtype weights, cq_qtype activations, cq_err *err);
CQ_API int64_t cq_qmap_count(const cq_qmap *m);
CQ_API const char *cq_qmap_module(const cq_qmap *m, int64_t i);
CQ_API cq_qtype cq_qmap_weights(const cq_qmap *m, int64_t i);
CQ_API cq_qtype cq_qmap_activations(const cq_qmap *m, int64_t i);
CQ_API int64_t cq_qmap_find(const cq_qmap *m, const char *module); /* -1 if absent */
CQ_API cq_status cq_qmap_load(const char *path, cq_qmap **out, cq_err *err);
CQ_API cq_status cq_qmap_parse(const char *text, size_t n, const char *label, cq_qmap **out, cq_err *err);
/* The JSON text (malloc'd, NUL-terminated, no trailing newline as json.dump). */
CQ_API cq_status cq_qmap_to_json(const cq_qmap *m, char **out, cq_err *err);
CQ_API cq_status cq_qmap_save(const cq_qmap *m, const char *path, cq_err *err); /* atomic */

/* --- io: Hugging Face config.json ---------------------------------------------------------
 * A parsed config kept whole, so a copy can be written with changes. Getters look at top-level
 * keys. Saving follows transformers (json.dumps(indent=2, sort_keys=True) + "\n"; floats in
 * Python's shortest repr). */
typedef struct cq_hfconfig cq_hfconfig;

CQ_API cq_status cq_hfconfig_load(const char *path, cq_hfconfig **out, cq_err *err);
CQ_API cq_status cq_hfconfig_parse(const char *text, size_t n, const char *label, cq_hfconfig **out,
                                   cq_err *err);
CQ_API void cq_hfconfig_free(cq_hfconfig *c); /* accepts NULL */
CQ_API bool cq_hfconfig_has(const cq_hfconfig *c, const char *key);
/* NULL when absent, null or not a string. */
CQ_API const char *cq_hfconfig_str(const cq_hfconfig *c, const char *key);
/* CQ_E_NOTFOUND when absent (or null), CQ_E_FORMAT (naming file and key) when of another type. */
CQ_API cq_status cq_hfconfig_int(const cq_hfconfig *c, const char *key, int64_t *out, cq_err *err);
CQ_API cq_status cq_hfconfig_real(const cq_hfconfig *c, const char *key, double *out, cq_err *err); /* ints too */
CQ_API cq_status cq_hfconfig_bool(const cq_hfconfig *c, const char *key, bool *out, cq_err *err);
CQ_API const char *cq_hfconfig_model_type(const cq_hfconfig *c);  /* NULL when absent */
/* tie_word_embeddings, True when absent (the transformers default). */
CQ_API bool cq_hfconfig_tie_word_embeddings(const cq_hfconfig *c);
/* The transformers QuantoConfig as config.json holds it: "quantization_config":
 * {"activations": <"int8"|"float8"|null>, "modules_to_not_convert": <list|null>,
 *  "quant_method": "quanto", "weights": "int2"|"int4"|"int8"|"float8"}. modules: NULL-terminated
 * list or NULL for null. Replaces an existing quantization_config. */
CQ_API cq_status cq_hfconfig_set_quantization(cq_hfconfig *c, cq_qtype weights, cq_qtype activations,
                                              const char *const *modules_to_not_convert, cq_err *err);
CQ_API cq_status cq_hfconfig_set_bool(cq_hfconfig *c, const char *key, bool value, cq_err *err);
CQ_API cq_status cq_hfconfig_to_json(const cq_hfconfig *c, char **out, cq_err *err); /* malloc'd */
CQ_API cq_status cq_hfconfig_save(const cq_hfconfig *c, const char *path, cq_err *err); /* atomic */

/* --- io: module kinds ------------------------------------------------------------------------
 * What kind of torch module owns a "<module>.weight". A state dict does not say: an
 * nn.Embedding and a bias-less nn.Linear, or a Conv2d and a ConvTranspose2d of the same shape,
 * hold the same tensors. The checkpoint planner (cquanto/convert.h) learns kinds from a
 * --module-kinds file, structural evidence, and the per-architecture tables of the families
 * cquanto knows (llama, bert, gpt2, keyed by config.json's model_type or architectures).
 * Only LINEAR and CONV2D weights are quantized, and LAYERNORM gets activation scales, because
 * those are the modules optimum-quanto converts (QUANTO-FORMAT.md 5.1). */
typedef enum cq_layer_kind {
    CQ_LAYER_UNKNOWN = 0,       /* not known: left in float */
    CQ_LAYER_LINEAR,            /* nn.Linear (and subclasses): weight (out, in) */
    CQ_LAYER_CONV2D,            /* nn.Conv2d: weight (out, in/groups, kh, kw) */
    CQ_LAYER_EMBEDDING,         /* nn.Embedding: weight (num, dim), no bias */
    CQ_LAYER_EMBEDDING_BAG,     /* nn.EmbeddingBag */
    CQ_LAYER_CONV_TRANSPOSE2D,  /* nn.ConvTranspose2d: weight (in, out/groups, kh, kw) */
    CQ_LAYER_GPT2_CONV1D,       /* transformers' Conv1D (GPT-2): weight (in, out) */
    CQ_LAYER_LAYERNORM,         /* nn.LayerNorm, with or without bias */
    CQ_LAYER_RMSNORM,           /* LlamaRMSNorm and the like (not an nn.LayerNorm) */
    CQ_LAYER_BATCHNORM,         /* nn.BatchNorm1d/2d/3d: running_mean, running_var */
    CQ_LAYER_GROUPNORM,         /* nn.GroupNorm */
    CQ_LAYER_OTHER              /* any other module: never quantized */
} cq_layer_kind;
/* "linear", "conv2d", "embedding", "embedding_bag", "conv_transpose2d", "gpt2_conv1d",
 * "layernorm", "rmsnorm", "batchnorm", "groupnorm", "other"; "unknown" for UNKNOWN and out of
 * range. The names a --module-kinds file uses. */
CQ_API const char *cq_layer_kind_name(cq_layer_kind k);
/* The kind of one of those names (not "unknown"); CQ_E_ARG naming the choices otherwise. */
CQ_API cq_status cq_layer_kind_parse(const char *name, cq_layer_kind *out, cq_err *err);

/* --- io: in-memory image data sets --------------------------------------------------------
 * What the training and evaluation loops (cquanto/nn.h) read. The bundled readers that
 * allocate one (MNIST, digits) are in cquanto/experimental.h. */

typedef struct cq_dataset {
    int64_t count;     /* samples */
    int ndim;          /* per-sample rank: 3 for MNIST ([1, 28, 28]), 1 for digits ([64]) */
    int64_t shape[3];
    uint8_t *pixels;   /* count * sample_numel raw pixel values */
    uint8_t *labels;   /* count class indices */
    float pixel_max;   /* 255 for MNIST, 16 for digits: batches hold pixel / pixel_max */
    int num_classes;
} cq_dataset;

CQ_API int64_t cq_dataset_sample_numel(const cq_dataset *ds);
/* Samples [start, start + count) as f32 pixel / pixel_max into x (count * sample_numel floats) and
 * their labels into labels; either output may be NULL. */
CQ_API cq_status cq_dataset_batch(const cq_dataset *ds, int64_t start, int64_t count, float *x, int64_t *labels,
                                  cq_err *err);
/* The same for an arbitrary list of sample indices (a shuffled mini-batch). */
CQ_API cq_status cq_dataset_batch_indexed(const cq_dataset *ds, const int64_t *indices, int64_t count, float *x,
                                          int64_t *labels, cq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_IO_H */
