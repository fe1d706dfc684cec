/*
 * cquanto.h - the whole public API of cquanto, a C11 quantization toolkit that follows
 * optimum-quanto's design and on-disk format.
 *
 * Worked example (the optimum-quanto workflow in C):
 *
 *     cq_err err = {0};
 *     cq_model *m = NULL;
 *     if (cq_lenet_new(&m, &err) != CQ_OK) die(err.msg);
 *     cq_model_load_safetensors(m, "data/lenet_mnist.safetensors", &err);
 *     cq_quantize_opts q = cq_quantize_default_opts();
 *     q.weights = CQ_QINT8; q.activations = CQ_QINT8;
 *     cq_quantize(m, &q, &err);
 *     cq_calibrate_begin(m, 0.9f);   ... forward passes ...   cq_calibrate_end(m);
 *     cq_freeze(m, &err);
 *     cq_model_save(m, "out/lenet-int8", &err);     // model.safetensors + quanto_qmap.json
 *
 * Conventions
 *  - Every fallible call returns a cq_status and takes a `cq_err *err` last (may be NULL). On
 *    failure err->msg names the file, tensor or argument at fault. Nothing aborts on bad input.
 *  - Constructors use out-parameters and set *out = NULL on failure; every _new/_open pairs
 *    with a _free/_close that accepts NULL.
 *  - Shapes and element counts are int64_t, byte sizes are size_t.
 *  - Enum values are append-only: they may end up in files.
 *
 * Sections: core (status, dtypes, tensors) - qtypes and quantization math - kernels and
 * dispatch - io (safetensors, quanto map, HF folders) - nn (tape, ops, modules, optimizers,
 * quantized modules) - models.
 */
#ifndef CQUANTO_H
#define CQUANTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CQ_VERSION_MAJOR 0
#define CQ_VERSION_MINOR 1
#define CQ_VERSION_PATCH 0
#define CQ_VERSION_STRING "0.1.0"

/* ======================================================================================
 * core: status and error messages
 * ====================================================================================== */

typedef enum cq_status {
    CQ_OK = 0,
    CQ_E_ARG,         /* a caller argument is invalid (names the argument) */
    CQ_E_NOMEM,       /* allocation failed */
    CQ_E_IO,          /* open/read/write/rename failed (names the file and errno text) */
    CQ_E_FORMAT,      /* a file is malformed (names the file and what is wrong) */
    CQ_E_SHAPE,       /* shapes do not agree (names the tensor) */
    CQ_E_DTYPE,       /* a dtype is wrong or unknown (names the tensor) */
    CQ_E_UNSUPPORTED, /* valid but not implemented */
    CQ_E_OVERFLOW,    /* a size computation overflowed */
    CQ_E_NOTFOUND,    /* a named tensor, key or module does not exist */
    CQ_E_EXISTS       /* an output exists and overwriting was not asked for */
} cq_status;

#define CQ_ERR_MSG_SIZE 512

/* The caller owns this record; pass it last to any fallible call. */
typedef struct cq_err {
    cq_status status;
    char msg[CQ_ERR_MSG_SIZE];
} cq_err;

const char *cq_status_str(cq_status s);

/* Sets err (if not NULL) to status s with a printf-style message and returns s. Used by the
 * library and available to applications that extend it. */
cq_status cq_err_set(cq_err *err, cq_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prefixes an existing message with more context ("loading fc1: " + old message). */
cq_status cq_err_prefix(cq_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cq_err_clear(cq_err *err);

/* ======================================================================================
 * core: dtypes
 * ====================================================================================== */

typedef enum cq_dtype {
    CQ_DTYPE_INVALID = 0,
    CQ_F32,
    CQ_F16,
    CQ_BF16,
    CQ_F8_E4M3FN,
    CQ_F8_E5M2,
    CQ_F8_E4M3FNUZ,
    CQ_I8,
    CQ_U8,
    CQ_I16,
    CQ_I32,
    CQ_I64,
    CQ_U16,
    CQ_U32,
    CQ_U64,
    CQ_F64,
    CQ_BOOL,
    CQ_DTYPE_COUNT
} cq_dtype;

size_t cq_dtype_size(cq_dtype t);            /* bytes per element, 0 for INVALID */
const char *cq_dtype_name(cq_dtype t);       /* safetensors spelling: "F32", "BF16", "F8_E4M3" ... */
cq_dtype cq_dtype_from_name(const char *s);  /* inverse of cq_dtype_name; INVALID if unknown */
bool cq_dtype_is_float(cq_dtype t);

/* Scalar conversions with PyTorch's cast semantics: round-to-nearest-even; NaN stays NaN;
 * f16/bf16/e5m2 overflow to +-inf; e4m3fn/e4m3fnuz have no inf: overflow and inf become NaN
 * (as torch's cast does; quanto clamps before casting). */
uint16_t cq_f32_to_f16(float x);
float cq_f16_to_f32(uint16_t h);
uint16_t cq_f32_to_bf16(float x);
float cq_bf16_to_f32(uint16_t h);
uint8_t cq_f32_to_f8_e4m3fn(float x);
float cq_f8_e4m3fn_to_f32(uint8_t b);
uint8_t cq_f32_to_f8_e5m2(float x);
float cq_f8_e5m2_to_f32(uint8_t b);
uint8_t cq_f32_to_f8_e4m3fnuz(float x);
float cq_f8_e4m3fnuz_to_f32(uint8_t b);

/* Rounds x to the nearest value representable in float dtype t and returns it as f32
 * (identity for CQ_F32). This is how "compute in fp32, round once per op" is expressed. */
float cq_round_to_dtype(float x, cq_dtype t);

/* Element i of a float-typed buffer as f32, and the reverse. */
float cq_load_f32(const void *data, cq_dtype t, int64_t i);
void cq_store_f32(void *data, cq_dtype t, int64_t i, float v);

/* Converts n elements between any two numeric dtypes (float conversions as above). */
cq_status cq_convert(const void *src, cq_dtype st, void *dst, cq_dtype dt, int64_t n, cq_err *err);

/* ======================================================================================
 * core: tensors (dense, row-major, contiguous)
 * ====================================================================================== */

#define CQ_MAX_DIMS 8

typedef struct cq_tensor {
    cq_dtype dtype;
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    void *data;
    bool owns_data; /* false for views over a mapped file or a caller buffer */
} cq_tensor;

int64_t cq_shape_numel(int ndim, const int64_t *shape); /* 1 for ndim == 0 */
int64_t cq_tensor_numel(const cq_tensor *t);
size_t cq_tensor_nbytes(const cq_tensor *t);
/* Allocates a zeroed tensor (64-byte aligned data). */
cq_status cq_tensor_new(cq_tensor **out, cq_dtype dt, int ndim, const int64_t *shape, cq_err *err);
/* A tensor header over memory the caller keeps alive. */
cq_status cq_tensor_view(cq_tensor **out, cq_dtype dt, int ndim, const int64_t *shape, void *data,
                         cq_err *err);
cq_status cq_tensor_clone(cq_tensor **out, const cq_tensor *src, cq_err *err);
void cq_tensor_free(cq_tensor *t);
bool cq_tensor_same_shape(const cq_tensor *a, const cq_tensor *b);
/* "[4096, 4096]" into buf; returns buf. */
const char *cq_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* 64-byte aligned allocation used for every tensor buffer. */
void *cq_aligned_alloc(size_t nbytes);
void cq_aligned_free(void *p);

/* Threads: CQ_THREADS env, or cq_set_num_threads(). Results never depend on the count. */
void cq_set_num_threads(int n);
int cq_get_num_threads(void);

/* ======================================================================================
 * quant: qtypes, quantization math, packing, optimizers, quantized tensors
 * (section owned by src/quant/)
 * ====================================================================================== */

typedef enum cq_qtype {
    CQ_QNONE = 0,
    CQ_QINT2,
    CQ_QINT4,
    CQ_QINT8,
    CQ_QFLOAT8_E4M3FN,
    CQ_QFLOAT8_E5M2,
    CQ_QFLOAT8_E4M3FNUZ,
    CQ_QTYPE_COUNT
} cq_qtype;
#define CQ_QFLOAT8 CQ_QFLOAT8_E4M3FN

/* Static facts of a qtype, as in optimum-quanto's qtype table. */
typedef struct cq_qtype_info {
    const char *name;    /* canonical quanto name: "qint4", "qfloat8_e4m3fn" ... */
    int bits;            /* 2, 4 or 8 */
    bool is_float;       /* the float8 qtypes */
    cq_dtype dtype;      /* quanto's qtype.dtype: I8 for the integer qtypes, the F8 dtype otherwise */
    double qmin, qmax;   /* -2, 1 / -8, 7 / -128, 127 / -448, 448 / -57344, 57344 / -240, 240 */
} cq_qtype_info;

/* NULL for CQ_QNONE or an out-of-range value. */
const cq_qtype_info *cq_qtype_get(cq_qtype q);
/* Canonical name, "none" for CQ_QNONE. */
const char *cq_qtype_name(cq_qtype q);
/* Accepts the quanto names (qint2, qint4, qint8, qfloat8, qfloat8_e4m3fn, qfloat8_e5m2,
 * qfloat8_e4m3fnuz) and the CLI's short names (int2, int4, int8, float8, float8_e4m3fn,
 * float8_e5m2, float8_e4m3fnuz) and "none". Returns CQ_E_ARG (naming s) otherwise. */
cq_status cq_qtype_parse(const char *s, cq_qtype *out, cq_err *err);

/* @@QUANT_API@@ (declarations for src/quant/ go here) */

/* ======================================================================================
 * kernels: quantized matmul, activation quantization, conversions, CPU dispatch
 * (section owned by src/kernels/)
 * ====================================================================================== */

/* @@KERNELS_API@@ (declarations for src/kernels/ go here) */

/* ======================================================================================
 * io: safetensors, sharded checkpoints, quanto map, Hugging Face folders
 * (section owned by src/io/)
 * ====================================================================================== */

/* @@IO_API@@ (declarations for src/io/ go here) */

/* ======================================================================================
 * nn: autograd tape, ops (forward and backward), losses, optimizers
 * (section owned by src/nn/ ops)
 * ====================================================================================== */

/* @@NN_API@@ (declarations for src/nn/ tape, ops, optimizers go here) */

/* ======================================================================================
 * nn: modules, quantized modules, quantize/calibrate/freeze/save/requantize, models
 * (section owned by src/nn/ modules and src/models/)
 * ====================================================================================== */

/* @@MODULE_API@@ (declarations for modules, quantization workflow and models go here) */

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_H */
