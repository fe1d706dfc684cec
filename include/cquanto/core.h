/*
 * cquanto/core.h - status and errors, dtypes and scalar float conversions, dense tensors,
 * aligned memory, the thread count, and the qtype vocabulary every layer shares.
 */
#ifndef CQUANTO_CORE_H
#define CQUANTO_CORE_H

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

/* Marks what the shared library exports; everything else in it is hidden
 * (-fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define CQ_API __attribute__((visibility("default")))
#else
#define CQ_API
#endif

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

/* The caller owns this record; pass it last to any fallible call. It holds the message only:
 * the status is the call's return value. */
typedef struct cq_err {
    char msg[CQ_ERR_MSG_SIZE];
} cq_err;

CQ_API const char *cq_status_str(cq_status s);

/* Writes a printf-style message into err (if not NULL) and returns s. Used by the library
 * and available to applications that extend it. */
CQ_API cq_status cq_err_set(cq_err *err, cq_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prefixes err's message (if err is not NULL) with more context ("loading fc1: " + old
 * message) and returns s unchanged: `return cq_err_prefix(err, s, "loading %s: ", name);`. */
CQ_API cq_status cq_err_prefix(cq_err *err, cq_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
CQ_API void cq_err_clear(cq_err *err);

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

CQ_API size_t cq_dtype_size(cq_dtype t);            /* bytes per element, 0 for INVALID */
CQ_API const char *cq_dtype_name(cq_dtype t);       /* safetensors spelling: "F32", "BF16", "F8_E4M3" ... */
CQ_API cq_dtype cq_dtype_from_name(const char *s);  /* inverse of cq_dtype_name; INVALID if unknown */
CQ_API bool cq_dtype_is_float(cq_dtype t);

/* Scalar conversions with PyTorch's cast semantics: round-to-nearest-even; NaN stays NaN;
 * f16/bf16/e5m2 overflow to +-inf; e4m3fn/e4m3fnuz have no inf: overflow and inf become NaN
 * (as torch's cast does; quanto clamps before casting). */
CQ_API uint16_t cq_f32_to_f16(float x);
CQ_API float cq_f16_to_f32(uint16_t h);
CQ_API uint16_t cq_f32_to_bf16(float x);
CQ_API float cq_bf16_to_f32(uint16_t h);
CQ_API uint8_t cq_f32_to_f8_e4m3fn(float x);
CQ_API float cq_f8_e4m3fn_to_f32(uint8_t b);
CQ_API uint8_t cq_f32_to_f8_e5m2(float x);
CQ_API float cq_f8_e5m2_to_f32(uint8_t b);
CQ_API uint8_t cq_f32_to_f8_e4m3fnuz(float x);
CQ_API float cq_f8_e4m3fnuz_to_f32(uint8_t b);

/* Rounds x to the nearest value representable in float dtype t and returns it as f32
 * (identity for CQ_F32). This is how "compute in fp32, round once per op" is expressed. */
CQ_API float cq_round_to_dtype(float x, cq_dtype t);

/* Element i of a float-typed buffer as f32, and the reverse. */
CQ_API float cq_load_f32(const void *data, cq_dtype t, int64_t i);
CQ_API void cq_store_f32(void *data, cq_dtype t, int64_t i, float v);

/* Converts n elements between any two numeric dtypes (float conversions as above). */
CQ_API cq_status cq_convert(const void *src, cq_dtype st, void *dst, cq_dtype dt, int64_t n, cq_err *err);

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

CQ_API int64_t cq_shape_numel(int ndim, const int64_t *shape); /* 1 for ndim == 0 */
CQ_API int64_t cq_tensor_numel(const cq_tensor *t);
CQ_API size_t cq_tensor_nbytes(const cq_tensor *t);
/* Allocates a zeroed tensor (64-byte aligned data). */
CQ_API cq_status cq_tensor_new(cq_tensor **out, cq_dtype dt, int ndim, const int64_t *shape, cq_err *err);
/* A tensor header over memory the caller keeps alive. */
CQ_API cq_status cq_tensor_view(cq_tensor **out, cq_dtype dt, int ndim, const int64_t *shape, void *data,
                                cq_err *err);
CQ_API cq_status cq_tensor_clone(cq_tensor **out, const cq_tensor *src, cq_err *err);
CQ_API void cq_tensor_free(cq_tensor *t);
CQ_API bool cq_tensor_same_shape(const cq_tensor *a, const cq_tensor *b);
/* "[4096, 4096]" into buf; returns buf. */
CQ_API const char *cq_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* 64-byte aligned allocation used for every tensor buffer. */
CQ_API void *cq_aligned_alloc(size_t nbytes);
CQ_API void cq_aligned_free(void *p);

/* Threads: CQ_THREADS env, or cq_set_num_threads(). Results never depend on the count. */
CQ_API void cq_set_num_threads(int n);
CQ_API int cq_get_num_threads(void);

/* ======================================================================================
 * core: qtypes (the vocabulary every layer shares)
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

/* Which optimizer computes a weight's scale (and shift); cq_qtype_info.optimizers says which
 * apply to a qtype. */
typedef enum cq_optimizer_kind {
    CQ_OPT_DEFAULT = 0, /* Absmax for 8-bit qtypes, Max below (quanto's module default) */
    CQ_OPT_ABSMAX,
    CQ_OPT_MAX,
    CQ_OPT_HQQ
} cq_optimizer_kind;

/* How a qtype maps floats to stored values. */
typedef enum cq_qtype_family {
    CQ_QFAMILY_NONE = 0,  /* CQ_QNONE */
    CQ_QFAMILY_SYMMETRIC, /* integer data = round(x / scale), one scale per channel (qint8) */
    CQ_QFAMILY_AFFINE,    /* unsigned codes = round((x + shift) / scale), grouped, packed (qint2, qint4) */
    CQ_QFAMILY_FLOAT,     /* fp8 data = fp8(x / scale), one scale per channel (the float8 qtypes) */
} cq_qtype_family;

/* The roles a qtype may take (cq_qtype_info.roles). */
#define CQ_QROLE_WEIGHTS 1u
#define CQ_QROLE_ACTIVATIONS 2u
/* cq_qtype_info.optimizers: bit CQ_QOPT_BIT(opt) for each optimizer that applies
 * (CQ_OPT_DEFAULT always does: it picks the family's own). */
#define CQ_QOPT_BIT(opt) (1u << (opt))

/* The traits of a qtype: the one table every layer reads (src/core/qtype.c). Iterate it as
 * q = CQ_QNONE + 1 .. CQ_QTYPE_COUNT - 1. */
typedef struct cq_qtype_info {
    const char *name;        /* canonical quanto name: "qint4", "qfloat8_e4m3fn" ... */
    const char *short_name;  /* the CLI's name: "int4", "float8", "float8_e5m2" ... */
    cq_qtype_family family;
    int bits;                /* 2, 4 or 8 */
    cq_dtype dtype;          /* quanto's qtype.dtype: I8 for the integer qtypes, the F8 dtype otherwise */
    cq_dtype storage;        /* dtype of the stored data tensor: dtype, or U8 when packed */
    bool packed;             /* 8/bits codes per byte along dim 0 (PackedTensor, cq_pack_codes) */
    double qmin, qmax;       /* -2, 1 / -8, 7 / -128, 127 / -448, 448 / -57344, 57344 / -240, 240 */
    const char *data_key;    /* state-dict suffix of the data after "weight.": "_data" or "_data._data" */
    unsigned roles;          /* CQ_QROLE_WEIGHTS | CQ_QROLE_ACTIVATIONS */
    bool in_files;           /* checkpoint files can hold it (the reference safetensors has the dtype) */
    unsigned optimizers;     /* CQ_QOPT_BIT(CQ_OPT_ABSMAX) for 8-bit qtypes, MAX and HQQ for affine */
} cq_qtype_info;

/* NULL for CQ_QNONE or an out-of-range value. */
CQ_API const cq_qtype_info *cq_qtype_get(cq_qtype q);
/* Canonical name, "none" for CQ_QNONE. */
CQ_API const char *cq_qtype_name(cq_qtype q);
/* The family; CQ_QFAMILY_NONE for CQ_QNONE or an out-of-range value. */
CQ_API cq_qtype_family cq_qtype_family_of(cq_qtype q);
/* Whether q may take every role in `role` (and, with in_files, be written to checkpoint
 * files); false for CQ_QNONE. */
CQ_API bool cq_qtype_takes(cq_qtype q, unsigned role, bool in_files);
/* Whether optimizer opt may compute weights of qtype q; false for CQ_QNONE. */
CQ_API bool cq_qtype_optimizer_applies(cq_qtype q, cq_optimizer_kind opt);
/* The short names of the qtypes cq_qtype_takes(q, role, in_files) accepts, in table order,
 * "none" first when with_none, separated by sep and by last before the final one ("int8,
 * float8 or float8_e5m2"), into buf (truncated to n). Returns buf. */
CQ_API const char *cq_qtype_choices(unsigned role, bool in_files, bool with_none, const char *sep,
                                    const char *last, char *buf, size_t n);
/* Accepts the quanto names (qint2, qint4, qint8, qfloat8, qfloat8_e4m3fn, qfloat8_e5m2,
 * qfloat8_e4m3fnuz) and the CLI's short names (int2, int4, int8, float8, float8_e4m3fn,
 * float8_e5m2, float8_e4m3fnuz) and "none". Returns CQ_E_ARG (naming s) otherwise. */
CQ_API cq_status cq_qtype_parse(const char *s, cq_qtype *out, cq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_CORE_H */
