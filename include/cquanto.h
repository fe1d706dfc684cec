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
 *     cq_calibrate_begin(m, 0.9, &err);   ... forward passes ...   cq_calibrate_end(m);
 *     cq_freeze(m, &err);
 *     cq_model_save(m, "out/lenet-int8", &err);     // model.safetensors + quanto_qmap.json
 *
 * Conventions
 *  - Every fallible call returns a cq_status and takes a `cq_err *err` last (may be NULL). On
 *    failure err->msg names the file, tensor or argument at fault; the status is only ever the
 *    return value, the same with or without a record. Nothing aborts on bad input, and a NULL
 *    pointer argument is refused with CQ_E_ARG; functions without a status (getters, kernels)
 *    return a neutral value (0, NULL, "", false) or do nothing for a NULL object.
 *  - Ownership on failure: a call documented as taking ownership of an argument takes it on
 *    every return, success or failure (on failure it frees it), so the caller never frees what
 *    it passed: cq_model_new (root), cq_module_add (child), cq_state_dict_add (t). The one
 *    exception is an argument that was not the caller's to give (a module already in a tree
 *    or a model, or one that contains the parent): it is refused and left as it is.
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

/* The caller owns this record; pass it last to any fallible call. It holds the message only:
 * the status is the call's return value. */
typedef struct cq_err {
    char msg[CQ_ERR_MSG_SIZE];
} cq_err;

const char *cq_status_str(cq_status s);

/* Writes a printf-style message into err (if not NULL) and returns s. Used by the library
 * and available to applications that extend it. */
cq_status cq_err_set(cq_err *err, cq_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prefixes err's message (if err is not NULL) with more context ("loading fc1: " + old
 * message) and returns s unchanged: `return cq_err_prefix(err, s, "loading %s: ", name);`. */
cq_status cq_err_prefix(cq_err *err, cq_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
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
const cq_qtype_info *cq_qtype_get(cq_qtype q);
/* Canonical name, "none" for CQ_QNONE. */
const char *cq_qtype_name(cq_qtype q);
/* The family; CQ_QFAMILY_NONE for CQ_QNONE or an out-of-range value. */
cq_qtype_family cq_qtype_family_of(cq_qtype q);
/* Whether q may take every role in `role` (and, with in_files, be written to checkpoint
 * files); false for CQ_QNONE. */
bool cq_qtype_takes(cq_qtype q, unsigned role, bool in_files);
/* Whether optimizer opt may compute weights of qtype q; false for CQ_QNONE. */
bool cq_qtype_optimizer_applies(cq_qtype q, cq_optimizer_kind opt);
/* The short names of the qtypes cq_qtype_takes(q, role, in_files) accepts, in table order,
 * "none" first when with_none, separated by sep and by last before the final one ("int8,
 * float8 or float8_e5m2"), into buf (truncated to n). Returns buf. */
const char *cq_qtype_choices(unsigned role, bool in_files, bool with_none, const char *sep, const char *last,
                             char *buf, size_t n);
/* Accepts the quanto names (qint2, qint4, qint8, qfloat8, qfloat8_e4m3fn, qfloat8_e5m2,
 * qfloat8_e4m3fnuz) and the CLI's short names (int2, int4, int8, float8, float8_e4m3fn,
 * float8_e5m2, float8_e4m3fnuz) and "none". Returns CQ_E_ARG (naming s) otherwise. */
cq_status cq_qtype_parse(const char *s, cq_qtype *out, cq_err *err);

/* --- quant: axes, group sizes, grouping ------------------------------------------------
 * Axes follow optimum-quanto: 0 (one scale per index of the first dim, the module default),
 * -1 (per index of the last dim; ndim-1 is accepted and normalised to -1), or CQ_AXIS_NONE
 * (per tensor: a 0-dim scale). Quantizing along an axis of size 1 means per tensor, as in
 * quanto. Every float tensor below is F32, F16 or BF16 and every op is computed in f32 and
 * rounded to that dtype after each step, which makes results bit-exact with quanto
 * (docs/NUMERICS.md lists the exceptions: zero scales, HQQ's means). */
#define CQ_AXIS_NONE (-1000)

/* The module rule: no grouping (0) when numel/shape[0] <= 128, else the first of 128, 96,
 * 64, 32 that divides it, else 0. */
int64_t cq_default_group_size(int ndim, const int64_t *shape);
/* quanto's grouped_shape: (numel/gs, gs) for axis 0, (gs, numel/gs) for axis -1.
 * group_size must divide numel/shape[axis] (CQ_E_ARG otherwise). */
cq_status cq_grouped_shape(int ndim, const int64_t *shape, int axis, int64_t group_size,
                           int64_t out_shape[2], cq_err *err);
/* group/ungroup (quanto's grouped.py), any dtype: axis 0 is a reshape, axis -1 a permutation
 * (grouped[r, c*G + g] = x_rows[g*gs + r, c]). ungroup is the exact inverse. */
cq_status cq_group(const cq_tensor *x, int axis, int64_t group_size, cq_tensor **out, cq_err *err);
cq_status cq_ungroup(const cq_tensor *grouped, int axis, int ndim, const int64_t *orig_shape,
                     cq_tensor **out, cq_err *err);

/* --- quant: symmetric (8-bit) quantization ---------------------------------------------- */

/* AbsmaxOptimizer / calibrate.absmax_scale: max|x| / qmax (127, 448, 57344, 240) reduced over
 * every dim but `axis`, keepdim; 0-dim for CQ_AXIS_NONE. Scale dtype = x dtype. */
cq_status cq_absmax_scale(const cq_tensor *x, cq_qtype q, int axis, cq_tensor **scale, cq_err *err);
/* quanto::quantize_symmetric: data = cast(clamp(round?(x / scale))) to dtype (I8: rounded
 * half-to-even, clamped to [-128, 127]; F8 types: clamped to +-finfo.max then cast RNE).
 * Validation as quanto (0-dim scale per tensor; per axis: ndim >= 2, axis 0/-1, size > 1,
 * scale of the same ndim with one non-unit dim). A zero scale gives code 0 (quanto: NaN). */
cq_status cq_quantize_symmetric(const cq_tensor *x, cq_dtype dtype, int axis, const cq_tensor *scale,
                                cq_tensor **data, cq_err *err);
/* x_hat = scale * data computed in scale's dtype (data widened first); `scale` is 0-dim or
 * broadcastable (same ndim, at most one non-unit dim). out_dtype: CQ_DTYPE_INVALID for the
 * scale dtype, or CQ_F32 (same values, widened). */
cq_status cq_dequantize_symmetric(const cq_tensor *data, const cq_tensor *scale, cq_dtype out_dtype,
                                  cq_tensor **out, cq_err *err);

/* --- quant: affine (2/4-bit) quantization ------------------------------------------------ */

/* HqqOptimizer parameters; cq_hqq_default_opts() gives quanto's 0.7, 10, 1.01, 20. */
typedef struct cq_hqq_opts {
    double lp_norm, beta, kappa;
    int iters;
    /* May be NULL. Polled between chunks of each pass over the weight; non-zero stops the
     * optimizer with CQ_E_IO ("interrupted"). Set it from a signal handler. */
    const volatile int *cancel;
} cq_hqq_opts;
cq_hqq_opts cq_hqq_default_opts(void);

/* AffineOptimizer.__call__ with MaxOptimizer (opt CQ_OPT_MAX or DEFAULT) or HqqOptimizer
 * (CQ_OPT_HQQ; hqq NULL = defaults). x (2-D or more) is grouped first when group_size > 0;
 * axis 0 or -1. Max: scale = (rmax - rmin) / (2^bits - 1), shift = -rmin (float shift, x
 * dtype), keepdim shapes over the grouped tensor ((G,1) for axis 0, (1,G') for axis -1; a
 * grouped size of 1 along axis falls back to one scale per last-dim index, as quanto does).
 * HQQ moves only the shift; it is bit-exact with quanto for f16/bf16 and within 2 ulp for
 * f32 (docs/NUMERICS.md), and needs more than one row/group along axis (else CQ_E_SHAPE).
 * Every function of this section is reentrant; results never depend on the thread count. */
cq_status cq_affine_optimize(const cq_tensor *x, cq_qtype q, int axis, int64_t group_size,
                             cq_optimizer_kind opt, const cq_hqq_opts *hqq, cq_tensor **scale,
                             cq_tensor **shift, cq_err *err);
/* quanto::quantize_affine with a float shift: codes = clamp(round((x + shift) / scale), 0,
 * 2^bits - 1) as U8 in the grouped shape (x's shape when group_size is 0). Zero scale: code 0. */
cq_status cq_quantize_affine(const cq_tensor *x, int bits, int axis, int64_t group_size,
                             const cq_tensor *scale, const cq_tensor *shift, cq_tensor **codes,
                             cq_err *err);
/* x_hat = scale * code - shift (two roundings, scale dtype), then ungrouped to orig_shape
 * (orig_shape NULL: kept in the codes' shape). out_dtype as for cq_dequantize_symmetric. */
cq_status cq_dequantize_affine(const cq_tensor *codes, const cq_tensor *scale, const cq_tensor *shift,
                               int axis, int orig_ndim, const int64_t *orig_shape, cq_dtype out_dtype,
                               cq_tensor **out, cq_err *err);

/* --- quant: canonical packing (PackedTensor) --------------------------------------------
 * Codes (N, ...) of `bits` 2 or 4 pack along dim 0 into (R = ceil(N / (8/bits)), ...) U8:
 * byte [r] holds row r + i*R in bits [bits*i, bits*(i+1)). row_len = product of the
 * trailing dims. The buffer forms never fail; codes must be < 2^bits. The three inline
 * functions below are that addressing, and every reader and writer of the layout uses them. */
static inline int64_t cq_packed_rows(int64_t n_rows, int bits) { return (n_rows + 8 / bits - 1) / (8 / bits); }
/* Logical row `row` of a packing with R byte rows sits in byte row cq_packed_byte_row() at
 * bit field cq_packed_field() (bits [bits*field, bits*(field+1))); cq_packed_row_of() is the
 * inverse: the logical row that bit field `field` of byte row r holds. */
static inline int64_t cq_packed_byte_row(int64_t row, int64_t R) { return row % R; }
static inline int cq_packed_field(int64_t row, int64_t R) { return (int)(row / R); }
static inline int64_t cq_packed_row_of(int64_t r, int field, int64_t R) { return (int64_t)field * R + r; }
void cq_pack_codes(const uint8_t *codes, int64_t n_rows, int64_t row_len, int bits, uint8_t *packed);
void cq_unpack_codes(const uint8_t *packed, int64_t n_rows, int64_t row_len, int bits, uint8_t *codes);
/* Code of logical element (row, col) read straight from a packed buffer. */
static inline uint8_t cq_packed_code(const uint8_t *packed, int64_t n_rows, int64_t row_len, int bits,
                                     int64_t row, int64_t col) {
    if (!packed || (bits != 2 && bits != 4)) return 0;
    int64_t R = cq_packed_rows(n_rows, bits);
    return (uint8_t)((packed[cq_packed_byte_row(row, R) * row_len + col] >> (bits * cq_packed_field(row, R))) &
                     ((1 << bits) - 1));
}
/* Tensor forms: U8 codes -> packed U8 (R, ...); packed -> codes with n_rows logical rows. */
cq_status cq_pack(const cq_tensor *codes, int bits, cq_tensor **packed, cq_err *err);
cq_status cq_unpack(const cq_tensor *packed, int bits, int64_t n_rows, cq_tensor **codes, cq_err *err);

/* --- quant: quantized tensors ------------------------------------------------------------ */

/* A quantized weight: quanto's WeightQBytesTensor (8-bit qtypes) or WeightQBitsTensor (qint2,
 * qint4), in the canonical on-disk layout. The tensors map 1:1 to the state-dict entries:
 *   data  - qbytes: I8 / F8 in the weight's shape                        ("weight._data")
 *           qbits:  U8 packed codes (ceil(rows/vpi), ...) where the logical codes have the
 *                   grouped shape (G, gs), or the weight's shape when not grouped
 *                                                                        ("weight._data._data")
 *   scale - weight dtype: (O,1[,1,1]) per channel, (G,1) grouped, () per tensor ("weight._scale")
 *   shift - qbits only: float shift in the weight dtype, the scale's shape, or (O,I,kh,1) after
 *           HQQ on an ungrouped N-D weight (quanto's mean over the last dim); NULL for qbytes
 *                                                                        ("weight._shift")
 * Tensors may borrow memory (owns_data false) when built with copy = false. */
typedef struct cq_qweight {
    cq_qtype qtype;
    int axis;           /* 0 or -1 (quanto's metadata; the scale shape tells per-tensor) */
    int64_t group_size; /* qbits: 0 when not grouped; always 0 for qbytes */
    int ndim;           /* the float weight's shape */
    int64_t shape[CQ_MAX_DIMS];
    cq_tensor *data, *scale, *shift;
} cq_qweight;

/* Quantizes a float weight (F32/F16/BF16) the way a quanto module does at freeze(): axis 0,
 * opt DEFAULT/ABSMAX for 8-bit, DEFAULT/MAX/HQQ for 2/4-bit (anything else: CQ_E_ARG);
 * group_size -1 = the module rule, 0 = none, > 0 explicit (qbits only). */
cq_status cq_qweight_quantize(const cq_tensor *w, cq_qtype q, cq_optimizer_kind opt, int64_t group_size,
                              cq_qweight **out, cq_err *err);
/* The same with any axis (0 or -1) and HQQ parameters (NULL = defaults). */
cq_status cq_qweight_quantize_ex(const cq_tensor *w, cq_qtype q, int axis, cq_optimizer_kind opt,
                                 int64_t group_size, const cq_hqq_opts *hqq, cq_qweight **out,
                                 cq_err *err);
/* Builds a weight (axis 0) from on-disk tensors, validating dtypes and shapes against qtype
 * and the float weight's shape. group_size -1 infers it from scale.shape[0] (what the module
 * rule would give for quanto files); shift is required iff the qtype has < 8 bits.
 * copy = false borrows the tensors' memory (keep them alive, e.g. the mapped file). */
cq_status cq_qweight_from_tensors(cq_qtype q, int ndim, const int64_t *shape, int64_t group_size,
                                  const cq_tensor *data, const cq_tensor *scale, const cq_tensor *shift,
                                  bool copy, cq_qweight **out, cq_err *err);
void cq_qweight_free(cq_qweight *w);
/* The float weight (weight shape) in the scale dtype (out_dtype CQ_DTYPE_INVALID) or F32. */
cq_status cq_qweight_dequantize(const cq_qweight *w, cq_dtype out_dtype, cq_tensor **out, cq_err *err);
/* qbits: the U8 codes in their logical (grouped) shape; qbytes: a copy of data. */
cq_status cq_qweight_unpack_codes(const cq_qweight *w, cq_tensor **codes, cq_err *err);
/* State-dict suffix of the data tensor: "_data" (8-bit) or "_data._data" (2/4-bit). */
const char *cq_qweight_data_key(cq_qtype q);
/* quanto freezes a bf16 qint4 2-D weight with group 128 on CPU through TinyGemm, which saves
 * shift' = bf16(8s - bf16(8s - shift)) instead of the optimizer's shift (spec 8.1). Applies
 * that round trip in place when those conditions hold; returns whether it did. */
bool cq_qweight_apply_tinygemm_roundtrip(cq_qweight *w);

/* quanto's ActivationQBytesTensor: per-tensor symmetric data (I8 or F8) + 0-dim scale. */
typedef struct cq_qactivation {
    cq_qtype qtype; /* 8-bit qtypes only */
    cq_tensor *data, *scale;
} cq_qactivation;
/* scale: 0-dim float tensor (a module's input_scale); NULL computes cq_absmax_scale. */
cq_status cq_qactivation_quantize(const cq_tensor *x, cq_qtype q, const cq_tensor *scale,
                                  cq_qactivation **out, cq_err *err);
cq_status cq_qactivation_dequantize(const cq_qactivation *a, cq_dtype out_dtype, cq_tensor **out,
                                    cq_err *err);
void cq_qactivation_free(cq_qactivation *a);

/* @@QUANT_API@@ (declarations for src/quant/ go here) */

/* ======================================================================================
 * kernels: quantized matmul, activation quantization, conversions, CPU dispatch
 * (section owned by src/kernels/)
 * ====================================================================================== */

/* --- kernels: CPU features and dispatch ---------------------------------------------------
 * Every kernel exists as a scalar reference (the specification) and as SIMD variants. The CPU
 * is detected once (cpuid + XGETBV, and the Linux AMX permission request; getauxval on arm).
 * Each op then runs the best variant whose ISA level the CPU supports and the cap allows. The
 * cap comes from CQ_ISA=ref|avx2|avx512|amx|neon (read once) or cq_set_isa_cap(). Levels are
 * ordered within an architecture (x86: ref < avx2 < avx512 < amx; arm: ref < neon); a cap
 * naming the other architecture's level leaves only ref. Results never depend on the level:
 * integer paths and the float paths with a stated order are bit-exact with the reference. */
typedef enum cq_isa {
    CQ_ISA_REF = 0, /* portable C: the specification */
    CQ_ISA_AVX2,    /* AVX2 + FMA + F16C */
    CQ_ISA_AVX512,  /* AVX-512 F/BW/VL/DQ + VNNI (vpdpbusd); BF16 where present */
    CQ_ISA_AMX,     /* AVX512 level + AMX-INT8 tiles (prefill-sized int8 matmuls) */
    CQ_ISA_NEON,    /* AArch64 Advanced SIMD with the dot-product extension */
    CQ_ISA_COUNT
} cq_isa;

const char *cq_isa_name(cq_isa isa); /* "ref", "avx2", "avx512", "amx", "neon"; "?" otherwise */
/* Parses an ISA name as CQ_ISA does (case-insensitive); CQ_E_ARG naming s otherwise. */
cq_status cq_isa_parse(const char *s, cq_isa *out, cq_err *err);
bool cq_isa_supported(cq_isa isa); /* the CPU and the OS can run this level */
cq_isa cq_isa_best(void);          /* highest supported level, ignoring the cap */
cq_isa cq_isa_active(void);        /* highest supported level within the cap: what runs */
/* Caps the level for the rest of the process (tests walk the levels with it; not meant to be
 * called while kernels run on other threads). CQ_ISA_COUNT removes the cap. */
cq_status cq_set_isa_cap(cq_isa cap, cq_err *err);
cq_isa cq_get_isa_cap(void);       /* CQ_ISA_COUNT when uncapped */

/* What cpuid (x86) or the auxiliary vector (arm) reports, after the OS-support checks: a
 * feature is true only when both the CPU has it and the OS saves its register state. */
typedef struct cq_cpu_info {
    char arch[16];   /* "x86_64", "aarch64", or the compiler's name for another target */
    char vendor[16]; /* "GenuineIntel", "AuthenticAMD", "" on arm */
    char model[64];  /* brand string, e.g. "Intel(R) Xeon(R) Platinum 8480+" */
    bool sse4_2, avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16, avx512_fp16;
    bool avx_vnni, amx_tile, amx_int8, amx_bf16;
    bool neon, dotprod, i8mm, fp16;
} cq_cpu_info;
const cq_cpu_info *cq_cpu_get_info(void);

/* The kernel registry (`cquanto cpu`). Every kernel is registered for one slot, an (op, weight
 * format) pair, with a name that says what it computes (docs/KERNELS.md, section 4); dispatch
 * runs, per slot, the last registered kernel that the CPU can run and the cap allows. Kernels
 * are numbered 0 .. cq_kernel_count()-1, slots 0 .. cq_kernel_slot_count()-1. */
typedef struct cq_kernel_info {
    const char *name;   /* e.g. "gemm_qd8_qb4w_f32_6x32__avx512" */
    const char *op;     /* e.g. "matmul_fast", "quantize_i8" */
    const char *weight; /* the weight format of a matmul ("qint4"); "" for elementwise ops */
    cq_isa isa;         /* its level */
    const char *needs;  /* CPU features it needs beyond its level's ("avx512_bf16"); "" if none */
    int mr, nr;         /* register tile: activation rows x output columns (elementwise: 1 x lanes) */
    int slot;
    bool runnable;      /* this CPU and OS can run it */
    bool chosen;        /* dispatch runs it now for its slot */
} cq_kernel_info;
int cq_kernel_count(void);
int cq_kernel_slot_count(void);
cq_status cq_kernel_get(int i, cq_kernel_info *out, cq_err *err); /* CQ_E_ARG if i is out of range */

/* --- kernels: elementwise (vectorised; each equals the scalar function named) -------------
 * n <= 0 does nothing. Buffers need no alignment; input and output must not overlap. */
void cq_vec_f32_to_f16(const float *x, uint16_t *y, int64_t n);       /* cq_f32_to_f16 */
void cq_vec_f16_to_f32(const uint16_t *x, float *y, int64_t n);       /* cq_f16_to_f32 */
void cq_vec_f32_to_bf16(const float *x, uint16_t *y, int64_t n);      /* cq_f32_to_bf16 */
void cq_vec_bf16_to_f32(const uint16_t *x, float *y, int64_t n);      /* cq_bf16_to_f32 */
void cq_vec_f32_to_f8_e4m3fn(const float *x, uint8_t *y, int64_t n); /* cq_f32_to_f8_e4m3fn */
void cq_vec_f8_e4m3fn_to_f32(const uint8_t *x, float *y, int64_t n); /* cq_f8_e4m3fn_to_f32 */
void cq_vec_f32_to_f8_e5m2(const float *x, uint8_t *y, int64_t n);   /* cq_f32_to_f8_e5m2 */
void cq_vec_f8_e5m2_to_f32(const uint8_t *x, float *y, int64_t n);   /* cq_f8_e5m2_to_f32 */
/* max |x[i]| over x of dtype F32, F16 or BF16; NaN if any element is NaN (torch.amax); 0 for n <= 0. */
float cq_vec_absmax(const void *x, cq_dtype dtype, int64_t n);
/* quanto's quantize_symmetric to int8 with a per-tensor scale, computed in x's dtype (F32, F16
 * or BF16): q = clamp(round_half_even(round_dtype(x / scale)), -128, 127). A zero scale gives
 * codes 0; NaN gives 0 (docs/NUMERICS.md). */
void cq_vec_quantize_i8(const void *x, cq_dtype dtype, int64_t n, float scale, int8_t *q);
/* quanto's quantize_symmetric to an fp8 dtype (F8_E4M3FN, F8_E5M2 or F8_E4M3FNUZ) with one
 * scale: q = fp8(clamp(round_dtype(x / scale), -max, max)), NaN kept as NaN; a zero scale gives
 * 0 (docs/NUMERICS.md). x is F32, F16 or BF16. */
void cq_vec_quantize_f8(const void *x, cq_dtype dtype, int64_t n, float scale, cq_dtype fp8, uint8_t *q);
/* quanto's dequantization y = round_dtype(scale * q), stored as dtype (F32, F16 or BF16). */
void cq_vec_dequantize_i8(const int8_t *q, int64_t n, float scale, void *y, cq_dtype dtype);
/* min and max of x (F32, F16 or BF16), as torch.amin / amax: NaN in both if any element is NaN.
 * A zero minimum is -0 if x holds a -0, a zero maximum +0 if x holds a +0 (so the result never
 * depends on the order of comparison). n <= 0: +inf and -inf. */
void cq_vec_minmax(const void *x, cq_dtype dtype, int64_t n, float *mn, float *mx);
/* quanto's quantize_affine for a run sharing one (scale, shift), computed in x's dtype (F32, F16
 * or BF16): codes = clamp(round_half_even(round_dtype(round_dtype(x + shift) / scale)), 0,
 * 2^bits - 1), unpacked, one per byte. A zero scale or NaN gives code 0 (docs/NUMERICS.md). */
void cq_vec_affine_codes(const void *x, cq_dtype dtype, int64_t n, float scale, float shift, int bits,
                         uint8_t *codes);

/* --- kernels: quantized matmul -------------------------------------------------------------
 * Y[M,N] = X[M,K] . W[N,K]^T (+ bias[N]): torch's F.linear, W holding one output channel per
 * row. A weight is repacked ONCE (at load or freeze) from its canonical quanto tensors into a
 * cq_mm_weight, whose layout belongs to the kernels (tiles of 16 output rows, interleaved
 * 4 input features per 32-bit lane: the vpdpbusd / AMX / sdot operand order). The canonical
 * tensors come back unchanged from cq_mm_weight_unpack. Weight kinds and what they compute:
 *
 *  - W8A8: qint8 weights x int8 activations (x_dtype CQ_I8, per-tensor opts->x_scale): the
 *    exact int32 dot product, then quanto's qbytes_int_mm epilogue
 *        y = round_y(round_s(float(acc) * round_s(x_scale * scale[n]))) (+ bias, rounded to y's
 *    dtype).
 *    K <= 65536 (the int32 accumulator cannot overflow).
 *  - Weight-only, activations F32 or BF16, weights qint8, qfloat8_e4m3fn, qfloat8_e5m2, qint4 or
 *    qint2 (group-wise affine with quanto's float shift, or per channel), two modes:
 *    CQ_MATMUL_EXACT  what quanto computes: each weight dequantized with quanto's rounding in the
 *                     scale dtype (qint8/fp8: s*q; qint2/4: (s*code) - shift, rounded after each
 *                     op), then per output  acc = +0; for k = 0..K-1: acc = fmaf(x[k], w[k], acc)
 *                     (one fused multiply-add per k, in increasing k), y = round_y(acc).
 *    CQ_MATMUL_FAST   activations quantized on the fly to int8 per block (one block = one weight
 *                     group when group_size <= 256, else 128 features; blocks never straddle
 *                     groups): d = absmax/127, q = round_half_even(x * (1/d)); then per block an
 *                     exact integer dot product and acc = fmaf(d, s*float(isum), acc)
 *                     (qint2/4 also acc = fmaf(-shift, d*float(sum q), acc)). Not for fp8
 *                     weights. docs/KERNELS.md gives the error against EXACT.
 *    Both modes are bit-exact across ISA levels and thread counts.
 * Rounding: round_s rounds to the scale dtype, round_y to y_dtype (identity for F32); bias is
 * added as y = round_y(y + bias[n]). */

typedef enum cq_matmul_mode { CQ_MATMUL_EXACT = 0, CQ_MATMUL_FAST = 1 } cq_matmul_mode;

/* The canonical quanto tensors of one 2-D weight [N, K] (N = out_features, K = in_features). */
typedef struct cq_mm_weight_src {
    cq_qtype qtype;          /* QINT8, QFLOAT8_E4M3FN, QFLOAT8_E5M2, QINT4 or QINT2 */
    int64_t out_features;    /* N >= 1 */
    int64_t in_features;     /* K >= 1 */
    int64_t group_size;      /* qint2/4: gs dividing K, or 0 (or K) for per-channel; 8-bit: 0 */
    const void *data;        /* qint8: I8 [N,K]; float8: the F8 bytes [N,K]; qint2/4: U8 codes,
                              * canonical-packed (ceil(G/vpi), gs) with G = N*K/gs groups
                              * (per-channel: (ceil(N/vpi), K)), or one code per byte [N,K]
                              * when codes_unpacked is true */
    bool codes_unpacked;
    const void *scale;       /* 8-bit: [N]; qint2/4: [G] (per-channel: [N]); in scale_dtype */
    const void *shift;       /* qint2/4: float shift [G] in scale_dtype; NULL for 8-bit */
    cq_dtype scale_dtype;    /* F32, F16 or BF16 (the model's dtype) */
} cq_mm_weight_src;

typedef struct cq_mm_weight cq_mm_weight;

/* Repacks src (which is only read; it may be freed afterwards). Validates qtype, shapes,
 * group size, code range and, for e4m3fn, rejects NaN codes (quanto never produces them). */
cq_status cq_mm_weight_new(cq_mm_weight **out, const cq_mm_weight_src *src, cq_err *err);
void cq_mm_weight_free(cq_mm_weight *w);
/* An independent copy (same layout, its own memory). */
cq_status cq_mm_weight_clone(const cq_mm_weight *w, cq_mm_weight **out, cq_err *err);

typedef struct cq_mm_weight_info {
    cq_qtype qtype;
    int64_t out_features, in_features, group_size; /* group_size == in_features: per channel */
    cq_dtype scale_dtype;
    bool fast_ok;  /* CQ_MATMUL_FAST is available (integer weights, group_size % 16 == 0 or per channel) */
    size_t nbytes; /* bytes the kernels stream per pass: codes + scales (+ shifts) */
} cq_mm_weight_info;
void cq_mm_weight_get_info(const cq_mm_weight *w, cq_mm_weight_info *info);

/* Writes the canonical tensors back, byte for byte what cq_mm_weight_new read: data in the
 * form given by codes_unpacked, scale (and shift for qint2/4) in the scale dtype. Buffers
 * sized as in cq_mm_weight_src; shift may be NULL for 8-bit weights. */
cq_status cq_mm_weight_unpack(const cq_mm_weight *w, bool codes_unpacked, void *data, void *scale,
                              void *shift, cq_err *err);

typedef struct cq_matmul_opts {
    cq_matmul_mode mode; /* weight-only matmuls; ignored for W8A8 */
    float x_scale;       /* W8A8: the activations' per-tensor scale */
    const float *bias;   /* [N] or NULL */
    void *work;          /* scratch of at least cq_matmul_work_size() bytes (any alignment) */
    size_t work_size;
} cq_matmul_opts;
cq_matmul_opts cq_matmul_default_opts(void); /* EXACT, x_scale 1, no bias, no scratch */

/* Scratch bytes cq_matmul needs for these arguments at the current cq_get_num_threads(). */
size_t cq_matmul_work_size(const cq_mm_weight *w, int64_t M, cq_dtype x_dtype, cq_matmul_mode mode);

/* Y = X . W^T as above. x: M rows of K elements of x_dtype (CQ_I8 for W8A8, else F32 or
 * BF16), row stride ldx elements; y: M rows of N elements of y_dtype (F32, F16 or BF16), row
 * stride ldy. Multithreaded over output rows (cq_get_num_threads()); never allocates. */
cq_status cq_matmul(const cq_mm_weight *w, int64_t M, const void *x, cq_dtype x_dtype, int64_t ldx,
                    void *y, cq_dtype y_dtype, int64_t ldy, const cq_matmul_opts *opts, cq_err *err);

/* @@KERNELS_API@@ (declarations for src/kernels/ go here) */

/* ======================================================================================
 * io: safetensors, sharded checkpoints, quanto map, Hugging Face folders
 * (section owned by src/io/)
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

cq_status cq_st_open(const char *path, cq_st_file **out, cq_err *err);
/* The same over a caller's buffer (kept alive by the caller until close); `label` names it in
 * messages (NULL: "<memory>"). */
cq_status cq_st_open_memory(const void *data, size_t size, const char *label, cq_st_file **out,
                            cq_err *err);
void cq_st_close(cq_st_file *f); /* accepts NULL */

const char *cq_st_path(const cq_st_file *f);       /* the path or label given at open */
int64_t cq_st_count(const cq_st_file *f);          /* number of tensors */
/* Tensor i in file (offset) order, 0 <= i < count; NULL out of range. Borrowed, valid until
 * cq_st_close. */
const char *cq_st_name(const cq_st_file *f, int64_t i);
const cq_tensor *cq_st_tensor(const cq_st_file *f, int64_t i);
/* Byte offset of tensor i's data from the start of the file (8 + N + begin). */
uint64_t cq_st_file_offset(const cq_st_file *f, int64_t i);
/* Index of a tensor by name, -1 if absent. */
int64_t cq_st_find(const cq_st_file *f, const char *name);
/* CQ_E_NOTFOUND (naming the file and the tensor) if absent. */
cq_status cq_st_get(const cq_st_file *f, const char *name, const cq_tensor **out, cq_err *err);
/* "__metadata__" entries in header order; cq_st_metadata returns NULL if the key is absent. */
const char *cq_st_metadata(const cq_st_file *f, const char *key);
int64_t cq_st_metadata_count(const cq_st_file *f);
const char *cq_st_metadata_key(const cq_st_file *f, int64_t i);
const char *cq_st_metadata_value(const cq_st_file *f, int64_t i);
uint64_t cq_st_header_size(const cq_st_file *f); /* N */
uint64_t cq_st_data_size(const cq_st_file *f);   /* bytes after the header */

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

cq_status cq_st_writer_open(const char *path, cq_st_writer **out, cq_err *err);
cq_status cq_st_writer_add_metadata(cq_st_writer *w, const char *key, const char *value, cq_err *err);
/* Names must be unique, non-empty UTF-8 without NUL; CQ_E_ARG otherwise. */
cq_status cq_st_writer_declare(cq_st_writer *w, const char *name, cq_dtype dt, int ndim,
                               const int64_t *shape, cq_err *err);
/* Appends nbytes to tensor `name` (its bytes so far plus these must not exceed its size). */
cq_status cq_st_writer_write(cq_st_writer *w, const char *name, const void *data, size_t nbytes,
                             cq_err *err);
/* Writes a whole tensor whose dtype and shape must match the declaration. */
cq_status cq_st_writer_write_tensor(cq_st_writer *w, const char *name, const cq_tensor *t, cq_err *err);
cq_status cq_st_writer_commit(cq_st_writer *w, cq_err *err);
void cq_st_writer_free(cq_st_writer *w); /* accepts NULL; discards an uncommitted file */

/* One call: n tensors with their names; metadata is NULL or a NULL-terminated list of
 * key, value, key, value, ... strings. */
cq_status cq_st_save(const char *path, int64_t n, const char *const *names,
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

cq_status cq_ckpt_open(const char *path, cq_ckpt **out, cq_err *err);
void cq_ckpt_close(cq_ckpt *c); /* accepts NULL */

int64_t cq_ckpt_count(const cq_ckpt *c);
const char *cq_ckpt_name(const cq_ckpt *c, int64_t i);           /* NULL out of range */
const cq_tensor *cq_ckpt_tensor(const cq_ckpt *c, int64_t i);    /* borrowed until close */
int cq_ckpt_tensor_shard(const cq_ckpt *c, int64_t i);           /* shard index, -1 out of range */
int64_t cq_ckpt_find(const cq_ckpt *c, const char *name);        /* -1 if absent */
cq_status cq_ckpt_get(const cq_ckpt *c, const char *name, const cq_tensor **out, cq_err *err);
/* The folder holding the checkpoint (where config.json and quanto_qmap.json live). */
const char *cq_ckpt_dir(const cq_ckpt *c);
/* The index file's path, or NULL for a single file. */
const char *cq_ckpt_index_path(const cq_ckpt *c);
/* The file `name` (config.json, quanto_qmap.json ...) of the checkpoint's folder: *path
 * (malloc'd) or NULL when there is none; CQ_E_FORMAT when it is a link leading outside the
 * folder (the rule for shards). */
cq_status cq_ckpt_folder_file(const cq_ckpt *c, const char *name, char **path, cq_err *err);
/* The index's metadata.total_size (-1 when absent or not sharded). */
int64_t cq_ckpt_index_total_size(const cq_ckpt *c);
int cq_ckpt_shard_count(const cq_ckpt *c);
const cq_st_file *cq_ckpt_shard(const cq_ckpt *c, int shard);
/* The shard's file name as written in the weight_map (the base name for a single file). */
const char *cq_ckpt_shard_file(const cq_ckpt *c, int shard);

/* "model-00002-of-00005.safetensors" (transformers' shard names) into buf; returns buf. */
const char *cq_shard_file_name(char *buf, size_t n, const char *prefix, int shard, int nshards);
/* Writes a transformers index (json.dumps(indent=2, sort_keys=True) + "\n", so byte-identical
 * to transformers'): {"metadata": {"total_size": total_size}, "weight_map": {name: file}}.
 * Atomic. */
cq_status cq_ckpt_write_index(const char *path, int64_t total_size, int64_t n, const char *const *names,
                              const char *const *files, cq_err *err);

/* --- io: the quanto quantization map (quanto_qmap.json) --------------------------------
 * {"<module>": {"weights": "<qtype>|none", "activations": "<qtype>|none"}, ...}, read with the
 * names quanto's requantize accepts (qint2 qint4 qint8 qfloat8 qfloat8_e4m3fn qfloat8_e5m2
 * qfloat8_e4m3fnuz none) and written exactly as Python's json.dump(qmap, f, indent=4) with the
 * canonical names. Modules keep insertion (file) order. */
typedef struct cq_qmap cq_qmap;

cq_status cq_qmap_new(cq_qmap **out, cq_err *err);
void cq_qmap_free(cq_qmap *m); /* accepts NULL */
/* Adds a module, or replaces its qtypes if present. */
cq_status cq_qmap_set(cq_qmap *m, const char *module, cq_qtype weights, cq_qtype activations, cq_err *err);
int64_t cq_qmap_count(const cq_qmap *m);
const char *cq_qmap_module(const cq_qmap *m, int64_t i);
cq_qtype cq_qmap_weights(const cq_qmap *m, int64_t i);
cq_qtype cq_qmap_activations(const cq_qmap *m, int64_t i);
int64_t cq_qmap_find(const cq_qmap *m, const char *module); /* -1 if absent */
cq_status cq_qmap_load(const char *path, cq_qmap **out, cq_err *err);
cq_status cq_qmap_parse(const char *text, size_t n, const char *label, cq_qmap **out, cq_err *err);
/* The JSON text (malloc'd, NUL-terminated, no trailing newline as json.dump). */
cq_status cq_qmap_to_json(const cq_qmap *m, char **out, cq_err *err);
cq_status cq_qmap_save(const cq_qmap *m, const char *path, cq_err *err); /* atomic */

/* --- io: Hugging Face config.json ---------------------------------------------------------
 * A parsed config kept whole, so a copy can be written with changes. Getters look at top-level
 * keys. Saving follows transformers (json.dumps(indent=2, sort_keys=True) + "\n"; floats in
 * Python's shortest repr). */
typedef struct cq_hfconfig cq_hfconfig;

cq_status cq_hfconfig_load(const char *path, cq_hfconfig **out, cq_err *err);
cq_status cq_hfconfig_parse(const char *text, size_t n, const char *label, cq_hfconfig **out,
                            cq_err *err);
void cq_hfconfig_free(cq_hfconfig *c); /* accepts NULL */
bool cq_hfconfig_has(const cq_hfconfig *c, const char *key);
/* NULL when absent, null or not a string. */
const char *cq_hfconfig_str(const cq_hfconfig *c, const char *key);
/* CQ_E_NOTFOUND when absent (or null), CQ_E_FORMAT (naming file and key) when of another type. */
cq_status cq_hfconfig_int(const cq_hfconfig *c, const char *key, int64_t *out, cq_err *err);
cq_status cq_hfconfig_real(const cq_hfconfig *c, const char *key, double *out, cq_err *err); /* ints too */
cq_status cq_hfconfig_bool(const cq_hfconfig *c, const char *key, bool *out, cq_err *err);
const char *cq_hfconfig_model_type(const cq_hfconfig *c);  /* NULL when absent */
/* tie_word_embeddings, True when absent (the transformers default). */
bool cq_hfconfig_tie_word_embeddings(const cq_hfconfig *c);
/* The transformers QuantoConfig as config.json holds it: "quantization_config":
 * {"activations": <"int8"|"float8"|null>, "modules_to_not_convert": <list|null>,
 *  "quant_method": "quanto", "weights": "int2"|"int4"|"int8"|"float8"}. modules: NULL-terminated
 * list or NULL for null. Replaces an existing quantization_config. */
cq_status cq_hfconfig_set_quantization(cq_hfconfig *c, cq_qtype weights, cq_qtype activations,
                                       const char *const *modules_to_not_convert, cq_err *err);
cq_status cq_hfconfig_set_bool(cq_hfconfig *c, const char *key, bool value, cq_err *err);
cq_status cq_hfconfig_to_json(const cq_hfconfig *c, char **out, cq_err *err); /* malloc'd */
cq_status cq_hfconfig_save(const cq_hfconfig *c, const char *path, cq_err *err); /* atomic */

/* --- io: files and folders -----------------------------------------------------------------
 * Outputs are never written in place: a temp file (or folder) next to the target is filled,
 * fsynced and renamed over it, and removed on any failure. */
/* malloc'd "a/b" ("b" alone if a is empty or b is absolute); NULL on allocation failure. */
char *cq_path_join(const char *a, const char *b);
bool cq_fs_exists(const char *path);
bool cq_fs_is_dir(const char *path);
cq_status cq_fs_file_size(const char *path, uint64_t *out, cq_err *err);
cq_status cq_fs_mkdir_p(const char *path, cq_err *err);
/* Reads a whole file (malloc'd, NUL appended, *n excludes it). max_bytes guards huge inputs. */
cq_status cq_fs_read_file(const char *path, size_t max_bytes, char **out, size_t *n, cq_err *err);
cq_status cq_fs_write_file_atomic(const char *path, const void *data, size_t n, cq_err *err);
cq_status cq_fs_copy_file(const char *src, const char *dst, cq_err *err); /* atomic */
/* Creates an empty temp folder next to final_path ("<dir>/.<name>.tmp-XXXXXX"); malloc'd path. */
cq_status cq_fs_temp_dir(const char *final_path, char **out, cq_err *err);
/* Renames a finished temp folder to final_path. An existing final_path is CQ_E_EXISTS unless
 * overwrite, in which case it is replaced (moved aside, then removed after the rename). */
cq_status cq_fs_commit_dir(const char *tmp_dir, const char *final_path, bool overwrite, cq_err *err);
/* Removes a file or a folder tree (does not follow symlinks). Missing path is CQ_OK. */
cq_status cq_fs_remove_tree(const char *path, cq_err *err);

/* @@IO_API@@ (declarations for src/io/ go here) */

/* ======================================================================================
 * convert: whole-checkpoint quantize, dequantize and error report (streaming)
 * (section owned by src/convert/)
 * ====================================================================================== */

/* --- convert: options, progress, statistics ---------------------------------------------
 * The checkpoint tools of the `cquanto quantize / dequantize / report` commands. They take a
 * .safetensors file, a Hugging Face folder or a sharded folder (whatever cq_ckpt_open takes),
 * map it, work one tensor at a time and stream their output, so memory stays near the largest
 * tensor whatever the model size. Outputs appear only when complete (temp name + rename). */
typedef struct cq_convert_progress {
    int64_t tensors_done, tensors_total;
    uint64_t bytes_done, bytes_total; /* input bytes */
    double seconds;                   /* since the start */
    const char *current;              /* the tensor just finished (borrowed for the call) */
} cq_convert_progress;

typedef struct cq_convert_opts {
    cq_qtype weights;            /* QINT2, QINT4, QINT8, QFLOAT8_E4M3FN or QFLOAT8_E5M2 */
    cq_qtype activations;        /* QNONE (default), QINT8, QFLOAT8_E4M3FN, QFLOAT8_E5M2 */
    cq_optimizer_kind optimizer; /* DEFAULT: absmax at 8 bits, max below */
    int64_t group_size;          /* -1 (default): quanto's module rule; > 0: that size (qint2/4) */
    const char *const *include;  /* quanto's fnmatch patterns on module names; n_include of them */
    int n_include;
    const char *const *exclude;
    int n_exclude;
    int threads;                 /* 0: cq_get_num_threads() */
    bool overwrite;              /* replace an existing output (else CQ_E_EXISTS) */
    /* dequantize: a checkpoint whose "<m>.weight" shapes fill in what a quanto file cannot tell
     * (grouped int2/int4 weights without cquanto's shape record); NULL: none. */
    const char *like;
    /* Polled between chunks; when it reads non-zero the call stops, removes its temp output and
     * returns CQ_E_IO ("interrupted"). Set it from a signal handler. */
    const volatile int *cancel;
    /* Called after each tensor, one call at a time, from one of the worker threads. */
    void (*progress)(const cq_convert_progress *p, void *user);
    void *progress_user;
    /* May be NULL. Called with progress_user and a one-line notice of something done that does
     * not stop the work: a temp output left by a killed run removed, a side file not copied. */
    void (*notice)(const char *msg, void *user);
} cq_convert_opts;
cq_convert_opts cq_convert_default_opts(void); /* QINT8, no activations, group -1, all modules */

/* Fails (one line naming both) when the output path out is, holds or lies inside a file or
 * folder that reading any of the n checkpoints touches (compared by device and inode, after
 * symlinks), is a symbolic link, or names a folder that does not exist. Every writing call
 * checks this itself before any work; commands that write other files (report --plot) call it. */
cq_status cq_convert_check_output(const char *out, const char *const *checkpoints, int n, cq_err *err);

typedef struct cq_convert_stats {
    int64_t tensors;          /* tensors read */
    int64_t modules;          /* modules quantized */
    int64_t weights;          /* elements of the quantized weights */
    uint64_t bytes_in;        /* tensor bytes read */
    uint64_t bytes_out;       /* tensor bytes written */
    uint64_t qweight_bytes;   /* bytes of the quantized weights (data + scale + shift) */
    double bits_per_weight;   /* 8 * qweight_bytes / weights (0 when nothing was quantized) */
    double seconds;
} cq_convert_stats;

/* --- convert: the quantization plan ---------------------------------------------------------
 * Which modules get quantized. A module is a candidate when the checkpoint holds a
 * "<module>.weight" of rank 2 (Linear) or 4 (Conv2d). Candidates are then skipped when they are
 * embedding tables (names of the Llama/BERT/GPT-2/OPT/T5 families, any last name component
 * containing "embed", or first dim == config.json's vocab_size outside an output head), the
 * output head tied to the input embedding (config.json tie_word_embeddings), GPT-2's Conv1D
 * layers (c_attn, c_proj, c_fc: not nn.Linear, so optimum-quanto leaves them), or by
 * include/exclude with optimum-quanto's semantics: Python fnmatch on the module name; with
 * include patterns a module must match one; it must match no exclude pattern. With activations,
 * modules that look like nn.LayerNorm (1-D weight and bias, "norm"/"ln" in the name) get
 * quanto's QLayerNorm state (weights none) as quantize() would give them. */
typedef enum cq_plan_action {
    CQ_PLAN_QUANTIZE = 0,      /* weights quantized (and activations if asked) */
    CQ_PLAN_ACTIVATIONS_ONLY,  /* a LayerNorm given activation scales, weight kept */
    CQ_PLAN_SKIP_EMBEDDING,
    CQ_PLAN_SKIP_TIED_HEAD,
    CQ_PLAN_SKIP_CONV1D,
    CQ_PLAN_SKIP_EXCLUDED,     /* matched an exclude pattern */
    CQ_PLAN_SKIP_NOT_INCLUDED  /* include patterns given, none matched */
} cq_plan_action;
const char *cq_plan_action_name(cq_plan_action a); /* "quantize", "embedding", "tied head" ... */

typedef struct cq_plan_entry {
    const char *module;        /* "model.layers.0.mlp.down_proj" (borrowed from the plan) */
    cq_dtype dtype;            /* of the float weight */
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    cq_plan_action action;
    cq_qtype weights;          /* QNONE unless quantized */
    cq_qtype activations;
    int64_t group_size;        /* 0: per output channel */
    uint64_t bytes_before;     /* the module's weight as stored */
    uint64_t bytes_after;      /* its quantized tensors, input_scale and output_scale included */
} cq_plan_entry;

typedef struct cq_plan cq_plan;

/* Opens the checkpoint and its config.json (if any) and decides. Fails with CQ_E_DTYPE when a
 * module to quantize is not F32/F16/BF16, CQ_E_ARG when an include pattern is empty, when the
 * patterns leave nothing to quantize or an explicit group size does not divide a module's
 * in_features, CQ_E_FORMAT when the input is already a quanto checkpoint. */
cq_status cq_plan_build(const char *in, const cq_convert_opts *opts, cq_plan **out, cq_err *err);
void cq_plan_free(cq_plan *p); /* accepts NULL */
int64_t cq_plan_count(const cq_plan *p);                            /* candidates, file order */
const cq_plan_entry *cq_plan_entry_at(const cq_plan *p, int64_t i); /* NULL out of range */
/* Whole-checkpoint totals: every tensor's bytes before and after, and the quantized count. */
void cq_plan_totals(const cq_plan *p, uint64_t *bytes_before, uint64_t *bytes_after, int64_t *n_quantized);

/* --- convert: the streaming commands -----------------------------------------------------------
 * cq_convert_quantize writes folder `out`: the input's safetensors file(s) with each planned
 * module's "<m>.weight" replaced by quanto's frozen state ("<m>.weight._data[._data]",
 * "<m>.weight._scale", "<m>.weight._shift", "<m>.input_scale", "<m>.output_scale" = 1.0 in the
 * weight dtype), every other tensor copied unchanged; the input's file names and sharding (with
 * an updated index); quanto_qmap.json; config.json with a transformers quantization_config; the
 * input folder's other small files. Bytes never depend on opts->threads. */
cq_status cq_convert_quantize(const char *in, const char *out, const cq_convert_opts *opts,
                              cq_convert_stats *stats, cq_err *err);
/* Turns a quanto checkpoint (quanto_qmap.json beside it) into one float safetensors file: each
 * quantized module's "<m>.weight" dequantized in its scale dtype, activation scales dropped,
 * everything else copied. opts (NULL: defaults) gives threads, overwrite, cancel, progress. */
cq_status cq_convert_dequantize(const char *in, const char *out_file, const cq_convert_opts *opts,
                                cq_convert_stats *stats, cq_err *err);

/* --- convert: error report ---------------------------------------------------------------------
 * Quantization error of each quantized module of a quanto checkpoint against the float
 * checkpoint it came from, computed in double over the weight's elements x and their
 * dequantized values y: snr_db = 10 log10(sum x^2 / sum (x-y)^2) (+inf when exact),
 * rel_rms = sqrt(sum (x-y)^2 / sum x^2), max_abs = max |x-y|. */
typedef struct cq_error_stats {
    int64_t n;
    double sum_sq_ref;  /* sum x^2 */
    double sum_sq_err;  /* sum (x-y)^2 */
    double max_abs;     /* NaN when any difference is NaN */
    double snr_db, rel_rms;
} cq_error_stats;
/* Accumulates n elements (x, y of F32/F16/BF16, any mix) into s; call cq_error_stats_finish after
 * the last chunk. Start from a zeroed struct. */
void cq_error_stats_add(cq_error_stats *s, const void *x, cq_dtype xt, const void *y, cq_dtype yt, int64_t n);
void cq_error_stats_finish(cq_error_stats *s);
/* The same for two whole tensors of equal element count (CQ_E_SHAPE otherwise). */
cq_status cq_error_stats_tensors(const cq_tensor *ref, const cq_tensor *approx, cq_error_stats *out,
                                 cq_err *err);

typedef struct cq_report_entry {
    const char *module;         /* borrowed from the report */
    int64_t order;              /* position in the quantized checkpoint (the plot's x axis) */
    cq_qtype qtype;
    int64_t group_size;         /* 0: per channel */
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    double bits_per_weight;     /* 8 * (data + scale + shift bytes) / elements */
    cq_error_stats err;
} cq_report_entry;

typedef struct cq_report cq_report;
/* Compares every module of quant_in's quanto_qmap.json that has quantized weights with
 * "<m>.weight" of float_in (same shape required). opts: threads, cancel, progress (NULL ok). */
cq_status cq_report_build(const char *float_in, const char *quant_in, const cq_convert_opts *opts,
                          cq_report **out, cq_err *err);
void cq_report_free(cq_report *r); /* accepts NULL */
int64_t cq_report_count(const cq_report *r);
/* Entries sorted worst first (lowest SNR; ties by name). */
const cq_report_entry *cq_report_entry_at(const cq_report *r, int64_t i);
/* Over all modules together: SNR of the summed energies, and bits per weight. */
void cq_report_overall(const cq_report *r, cq_error_stats *err, double *bits_per_weight);
/* An SVG chart of SNR per module in checkpoint order (bars colored by the module's last name
 * component: q_proj, k_proj, ...), written atomically. */
cq_status cq_report_write_svg(const cq_report *r, const char *title, const char *path, cq_err *err);

/* @@CONVERT_API@@ (declarations for src/convert/ go here) */

/* ======================================================================================
 * nn: autograd tape, ops (forward and backward), losses, optimizers
 * (section owned by src/nn/ ops)
 * ====================================================================================== */

/* --- tape and variables ---------------------------------------------------------------
 * A cq_var is an f32 value that can carry a gradient. Two lifetimes exist:
 *  - long-lived vars (parameters, buffers such as running stats, constants) are made with
 *    cq_var_new / cq_var_from_tensor and freed by the caller with cq_var_free;
 *  - intermediates are made by ops on a cq_tape and owned by it: they stay valid until the
 *    next cq_tape_reset or cq_tape_free, which release all of them at once. Never free them.
 * The tape's memory is kept across resets and reused, so a training loop that resets after
 * every step stops allocating after its first step.
 *
 * When the tape's grad mode is on and any input requires a gradient, an op records a node;
 * cq_backward replays the nodes in reverse and ADDS into .grad of every var that requires a
 * gradient (zero them with cq_var_zero_grad or cq_optim_zero_grad). With grad mode off (for
 * inference) nothing is recorded and outputs never require a gradient.
 *
 * Op signature: cq_status cq_OP(cq_tape *t, inputs..., cq_var **out, cq_err *err). Inputs are
 * never modified (except the running stats cq_batch_norm2d updates in training). *out is NULL
 * on failure. A tape belongs to one thread at a time. Results never depend on the thread
 * count. docs/NN.md has the PyTorch correspondence and the measured accuracy. */
typedef struct cq_tape cq_tape;

typedef struct cq_var {
    cq_tensor *data;     /* f32, contiguous. Long-lived vars own it; the user may write it
                            (an optimizer does), but not while a recorded step still needs it */
    cq_tensor *grad;     /* f32, same shape; NULL until a backward reaches it. Owned like data */
    bool requires_grad;  /* parameters: true; buffers, constants and inputs: false */
    bool on_tape;        /* owned by a tape (an intermediate); false for long-lived vars */
    void *node;          /* private: the tape node that produced it, NULL for leaves */
} cq_var;

/* Long-lived var of zeros; pair with cq_var_free. */
cq_status cq_var_new(cq_var **out, int ndim, const int64_t *shape, bool requires_grad, cq_err *err);
/* Long-lived var holding a copy of src converted to f32 (any float or integer dtype). */
cq_status cq_var_from_tensor(cq_var **out, const cq_tensor *src, bool requires_grad, cq_err *err);
void cq_var_free(cq_var *v); /* accepts NULL; refuses (does nothing) for on_tape vars */
static inline float *cq_var_f32(const cq_var *v) { return v && v->data ? (float *)v->data->data : NULL; }
static inline int64_t cq_var_numel(const cq_var *v) { return cq_tensor_numel(v ? v->data : NULL); }
/* Sets every element of v->grad to zero (no-op when it has none). */
void cq_var_zero_grad(cq_var *v);

cq_status cq_tape_new(cq_tape **out, cq_err *err);
void cq_tape_free(cq_tape *t); /* accepts NULL */
/* Releases every intermediate and node recorded so far; keeps the memory for reuse. */
void cq_tape_reset(cq_tape *t);
/* Grad mode (on for a new tape). Returns the previous setting, so a no-grad block is
 *     bool was = cq_tape_set_grad_enabled(t, false); ... ; cq_tape_set_grad_enabled(t, was); */
bool cq_tape_set_grad_enabled(cq_tape *t, bool on);
bool cq_tape_grad_enabled(const cq_tape *t);
/* Bytes of intermediates currently in use on the tape (0 after a reset). */
size_t cq_tape_bytes(const cq_tape *t);

/* A tape-owned var copying src (converted to f32): how a batch of inputs enters a step. */
cq_status cq_tape_input(cq_tape *t, const cq_tensor *src, cq_var **out, cq_err *err);
/* A tape-owned var of zeros that requires no gradient (for custom ops and the frozen paths). */
cq_status cq_tape_zeros(cq_tape *t, int ndim, const int64_t *shape, cq_var **out, cq_err *err);
/* Scratch memory (64-byte aligned, uninitialised) valid until the next reset; NULL (err set)
 * when it cannot be had, which callers report as CQ_E_NOMEM. */
void *cq_tape_alloc(cq_tape *t, size_t nbytes, cq_err *err);

/* Custom ops: compute `out` yourself (from cq_tape_zeros), then record how its gradient flows
 * back. The backward gets out->grad filled and must ADD into inputs[i]->grad for each input
 * that requires a gradient, after cq_var_ensure_grad(t, inputs[i], err). ctx (ctx_size bytes)
 * is copied onto the tape. Records nothing when grad mode is off or no input requires a
 * gradient; otherwise out->requires_grad becomes true. */
typedef cq_status (*cq_backward_fn)(cq_tape *t, const void *ctx, cq_var *out, cq_var *const *inputs,
                                    int n_inputs, cq_err *err);
cq_status cq_tape_record(cq_tape *t, cq_var *out, cq_var *const *inputs, int n_inputs,
                         cq_backward_fn backward, const void *ctx, size_t ctx_size, cq_err *err);
/* Allocates a zeroed v->grad if v has none (on the tape for intermediates, owned by v for
 * long-lived vars). */
cq_status cq_var_ensure_grad(cq_tape *t, cq_var *v, cq_err *err);

/* Seeds d(loss)/d(loss) = 1 (loss must have one element) and replays the tape in reverse,
 * accumulating into .grad. Intermediate grads are zeroed first, so a second call adds the
 * same gradients to the parameters again (like retain_graph=True). */
cq_status cq_backward(cq_tape *t, cq_var *loss, cq_err *err);
/* The same with an explicit upstream gradient (numel(out) floats) for a non-scalar output. */
cq_status cq_backward_with(cq_tape *t, cq_var *out, const float *grad_out, cq_err *err);

/* --- ops (forward and backward). Shapes are PyTorch's. ----------------------------------- */

/* y = x W^T + b. x [..., in], W [out, in], b [out] or NULL -> y [..., out]. CBLAS sgemm. */
cq_status cq_linear(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, cq_var **out, cq_err *err);

typedef struct cq_conv2d_opts {
    int64_t stride[2], padding[2], dilation[2]; /* (h, w) */
    int64_t groups;
} cq_conv2d_opts;
cq_conv2d_opts cq_conv2d_default_opts(void); /* stride 1, padding 0, dilation 1, groups 1 */
/* x [N, C, H, W], w [OC, C/groups, KH, KW], b [OC] or NULL; opts NULL means defaults.
 * im2col + sgemm; zero padding. */
cq_status cq_conv2d(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, const cq_conv2d_opts *opts,
                    cq_var **out, cq_err *err);

/* Normalizes over the last n_norm_dims dims; w and b (either may be NULL) have those dims'
 * shape. PyTorch eps default 1e-5. Biased variance, as PyTorch. */
cq_status cq_layer_norm(cq_tape *t, cq_var *x, int n_norm_dims, cq_var *w, cq_var *b, float eps,
                        cq_var **out, cq_err *err);
/* y = x / sqrt(mean(x^2 over the last dim) + eps) * w; w [D] or NULL. */
cq_status cq_rms_norm(cq_tape *t, cq_var *x, cq_var *w, float eps, cq_var **out, cq_err *err);
/* x [N, C, H, W] or [N, C]; w, b [C] or NULL (affine=False). Training: normalizes with the
 * batch mean and biased variance and, when running_mean/running_var are given, updates them
 * in place as PyTorch does: r = (1-momentum) r + momentum * stat, with the unbiased variance.
 * Eval: normalizes with the running stats (with batch stats when they are NULL, as PyTorch's
 * track_running_stats=False). PyTorch defaults: momentum 0.1,
 * eps 1e-5. The running stats are buffers (long-lived vars); they never get gradients. */
cq_status cq_batch_norm2d(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, cq_var *running_mean,
                          cq_var *running_var, bool training, float momentum, float eps,
                          cq_var **out, cq_err *err);
/* weight [V, D]; ids (n_ids = product of ids_shape) in [0, V) -> [ids_shape..., D]. */
cq_status cq_embedding(cq_tape *t, cq_var *weight, const int64_t *ids, int ids_ndim,
                       const int64_t *ids_shape, cq_var **out, cq_err *err);

cq_status cq_relu(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
/* tanh_approx false: x/2 (1 + erf(x/sqrt 2)); true: PyTorch's approximate='tanh'. */
cq_status cq_gelu(cq_tape *t, cq_var *x, bool tanh_approx, cq_var **out, cq_err *err);
cq_status cq_silu(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
/* Over the last dim. */
cq_status cq_softmax(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
cq_status cq_log_softmax(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);

typedef struct cq_pool2d_opts {
    int64_t kernel[2], stride[2], padding[2], dilation[2]; /* stride 0 means = kernel */
    bool ceil_mode;
    bool count_include_pad; /* avg pool only; PyTorch default true */
} cq_pool2d_opts;
/* kernel k x k, stride = kernel, padding 0, dilation 1, floor mode, count_include_pad. */
cq_pool2d_opts cq_pool2d_default_opts(int64_t k);
/* x [N, C, H, W]. Max pool pads with -inf; ties take the first maximum (gradient to it). */
cq_status cq_max_pool2d(cq_tape *t, cq_var *x, const cq_pool2d_opts *opts, cq_var **out, cq_err *err);
cq_status cq_avg_pool2d(cq_tape *t, cq_var *x, const cq_pool2d_opts *opts, cq_var **out, cq_err *err);
/* PyTorch's bins: start = floor(i*H/OH), end = ceil((i+1)*H/OH). */
cq_status cq_adaptive_avg_pool2d(cq_tape *t, cq_var *x, int64_t out_h, int64_t out_w, cq_var **out,
                                 cq_err *err);

/* Training: zeroes each element with probability p and scales the rest by 1/(1-p); the mask
 * comes from *rng_state (a caller-held seed, advanced by the call), so runs are reproducible
 * (the masks are not PyTorch's). Not training or p == 0: the identity. */
cq_status cq_dropout(cq_tape *t, cq_var *x, float p, bool training, uint64_t *rng_state, cq_var **out,
                     cq_err *err);
/* Views sharing x's data (no copy). reshape accepts one -1. end_dim may be -1. */
cq_status cq_flatten(cq_tape *t, cq_var *x, int start_dim, int end_dim, cq_var **out, cq_err *err);
cq_status cq_reshape(cq_tape *t, cq_var *x, int ndim, const int64_t *shape, cq_var **out, cq_err *err);
/* Elementwise a+b, a-b, a*b. Shapes equal, or the smaller one's shape is a suffix of the
 * other's (so [N, C] + [C] and any + one-element work); the result has the larger shape. */
cq_status cq_add(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
cq_status cq_sub(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
cq_status cq_mul(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
/* y = x * s for a constant s. */
cq_status cq_scale(cq_tape *t, cq_var *x, float s, cq_var **out, cq_err *err);
/* a [..., M, K] @ b [..., K, N]: b is 2-D (shared) or has a's batch dims. */
cq_status cq_var_matmul(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
/* Sum and mean of all elements (one-element result, shape []). Summed in double. */
cq_status cq_sum(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
cq_status cq_mean(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);

/* Mean over the rows whose target is not -100 (PyTorch's ignore_index), as PyTorch's
 * reduction='mean'. logits / log_probs [N, C]; targets: N values in [0, C) or -100. */
cq_status cq_cross_entropy(cq_tape *t, cq_var *logits, const int64_t *targets, cq_var **out,
                           cq_err *err);
cq_status cq_nll_loss(cq_tape *t, cq_var *log_probs, const int64_t *targets, cq_var **out,
                      cq_err *err);

/* Straight-through estimator: forward out = transform(x) (same shape, f32), backward passes
 * the gradient to x unchanged, as optimum-quanto's quantizer autograd Functions do. Apply it to
 * a weight var to run an op on the dequantized weight while the float weight gets the
 * gradient. transform writes all numel(in) elements of out; ctx is the caller's and must
 * outlive the call only. */
typedef cq_status (*cq_transform_fn)(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err);
cq_status cq_ste(cq_tape *t, cq_var *x, cq_transform_fn transform, void *ctx, cq_var **out,
                 cq_err *err);

/* --- optimizers: PyTorch's update rules (single-tensor, CPU), f32 state ----------------- */
typedef enum cq_optim_kind { CQ_OPTIM_SGD = 0, CQ_OPTIM_ADAM, CQ_OPTIM_ADAMW, CQ_OPTIM_ADADELTA } cq_optim_kind;

/* Hyper-parameters are doubles because PyTorch's are Python floats: scalar expressions such
 * as 1 - beta2 are formed in double and rounded to f32 where they meet a tensor, as in torch. */
typedef struct cq_optim_opts {
    cq_optim_kind kind;
    double lr;
    double weight_decay;
    double momentum, dampening; bool nesterov;  /* SGD */
    double beta1, beta2, eps; bool amsgrad;     /* Adam, AdamW (eps also Adadelta) */
    double rho;                                 /* Adadelta */
    bool maximize;
} cq_optim_opts;
/* PyTorch 2.x defaults for kind: SGD lr 1e-3, momentum 0; Adam lr 1e-3, betas (0.9, 0.999),
 * eps 1e-8, weight_decay 0; AdamW the same with weight_decay 1e-2; Adadelta lr 1, rho 0.9,
 * eps 1e-6, weight_decay 0. */
cq_optim_opts cq_optim_default_opts(cq_optim_kind kind);

typedef struct cq_optim cq_optim;
/* params: n long-lived vars (borrowed; they must outlive the optimizer). Vars whose grad is
 * NULL at a step are skipped, as PyTorch skips params whose .grad is None. */
cq_status cq_optim_new(cq_optim **out, const cq_optim_opts *opts, cq_var *const *params, int n,
                       cq_err *err);
void cq_optim_free(cq_optim *o);
cq_status cq_optim_step(cq_optim *o, cq_err *err);
void cq_optim_zero_grad(cq_optim *o);
void cq_optim_set_lr(cq_optim *o, double lr);

/* @@NN_API@@ (declarations for src/nn/ tape, ops, optimizers go here) */

/* ======================================================================================
 * nn: modules, quantized modules, quantize/calibrate/freeze/save/requantize, models
 * (section owned by src/nn/ modules and src/models/)
 * ====================================================================================== */

/* ---- data sets: the bundled MNIST (IDX, gzip) and scikit-learn digits (CSV, gzip) ---------- */

typedef struct cq_dataset {
    int64_t count;     /* samples */
    int ndim;          /* per-sample rank: 3 for MNIST ([1, 28, 28]), 1 for digits ([64]) */
    int64_t shape[3];
    uint8_t *pixels;   /* count * sample_numel raw pixel values */
    uint8_t *labels;   /* count class indices */
    float pixel_max;   /* 255 for MNIST, 16 for digits: batches hold pixel / pixel_max */
    int num_classes;
} cq_dataset;

/* MNIST from its two IDX files (gzip-compressed or plain); names the file and what is wrong. */
cq_status cq_dataset_load_mnist(cq_dataset **out, const char *images_path, const char *labels_path, cq_err *err);
/* data/digits.csv.gz: rows of 64 pixels (0..16) then the label. */
cq_status cq_dataset_load_digits(cq_dataset **out, const char *csv_path, cq_err *err);
void cq_dataset_free(cq_dataset *ds);
int64_t cq_dataset_sample_numel(const cq_dataset *ds);
/* Samples [start, start + count) as f32 pixel / pixel_max into x (count * sample_numel floats) and
 * their labels into labels; either output may be NULL. */
cq_status cq_dataset_batch(const cq_dataset *ds, int64_t start, int64_t count, float *x, int64_t *labels,
                           cq_err *err);
/* The same for an arbitrary list of sample indices (a shuffled mini-batch). */
cq_status cq_dataset_batch_indexed(const cq_dataset *ds, const int64_t *indices, int64_t count, float *x,
                                   int64_t *labels, cq_err *err);

/* ---- modules: named trees of layers ---------------------------------------------------
 * A module is a node of a tree with a local name; its full name joins the local names from
 * the root with dots ("layer1.0.conv1"), the root's being "". Leaf modules hold their
 * parameters and buffers as long-lived f32 vars under PyTorch's names ("weight", "bias",
 * "running_mean", "running_var", "num_batches_tracked"), so a state dict key is
 * "<module>.<param>". A module is owned by its parent once added; freeing the root (or the
 * model) frees the tree. New modules are in training mode, as in PyTorch. Constructors
 * initialise like PyTorch's reset_parameters except that Linear/Conv2d weights and biases
 * start at zero: call cq_module_init_params for a random start, or load a state dict. */
typedef enum cq_module_kind {
    CQ_MODULE_CONTAINER = 0, /* children only; its forward is the model's code */
    CQ_MODULE_SEQUENTIAL,    /* forward runs the children in order */
    CQ_MODULE_LINEAR,        /* weight [out, in], bias [out] */
    CQ_MODULE_CONV2D,        /* weight [oc, ic/groups, kh, kw], bias [oc] */
    CQ_MODULE_LAYER_NORM,    /* weight, bias [normalized shape] (none when not affine) */
    CQ_MODULE_RMS_NORM,      /* weight [dim] */
    CQ_MODULE_BATCH_NORM2D,  /* weight, bias, running_mean, running_var [C], num_batches_tracked [] I64 */
    CQ_MODULE_EMBEDDING,     /* weight [num, dim]; forward with cq_module_forward_ids */
    CQ_MODULE_RELU,
    CQ_MODULE_FLATTEN,       /* flatten(x, 1, -1) */
    CQ_MODULE_IDENTITY       /* what a folded BatchNorm / ReLU becomes */
} cq_module_kind;

typedef struct cq_module cq_module;

cq_status cq_module_new_container(cq_module **out, cq_err *err);
cq_status cq_module_new_sequential(cq_module **out, cq_err *err);
cq_status cq_module_new_linear(cq_module **out, int64_t in_features, int64_t out_features, bool bias,
                               cq_err *err);
/* opts NULL = stride 1, padding 0, dilation 1, groups 1. */
cq_status cq_module_new_conv2d(cq_module **out, int64_t in_channels, int64_t out_channels, int64_t kh,
                               int64_t kw, const cq_conv2d_opts *opts, bool bias, cq_err *err);
/* Normalizes over the last n_dims dims of the given shape; weight 1, bias 0 when affine. */
cq_status cq_module_new_layer_norm(cq_module **out, int n_dims, const int64_t *shape, float eps,
                                   bool affine, cq_err *err);
cq_status cq_module_new_rms_norm(cq_module **out, int64_t dim, float eps, cq_err *err);
/* PyTorch defaults: eps 1e-5, momentum 0.1; running stats 0 and 1. */
cq_status cq_module_new_batch_norm2d(cq_module **out, int64_t channels, float eps, float momentum,
                                     bool affine, cq_err *err);
/* weight ~ N(0, 1) from cq_module_init_params; zeros until then. */
cq_status cq_module_new_embedding(cq_module **out, int64_t num_embeddings, int64_t dim, cq_err *err);
/* kind CQ_MODULE_RELU, CQ_MODULE_FLATTEN or CQ_MODULE_IDENTITY. */
cq_status cq_module_new_simple(cq_module **out, cq_module_kind kind, cq_err *err);
/* Attaches child under parent with a local name (non-empty, no '.', unique among the
 * parent's children). Takes ownership of child (see Conventions). */
cq_status cq_module_add(cq_module *parent, const char *local_name, cq_module *child, cq_err *err);
/* Frees a module that was never added (or a root) and its subtree. Accepts NULL. */
void cq_module_free(cq_module *m);

const char *cq_module_name(const cq_module *m);       /* full dotted name, "" for a root */
const char *cq_module_local_name(const cq_module *m); /* "" for a root */
cq_module_kind cq_module_get_kind(const cq_module *m);
const char *cq_module_kind_name(cq_module_kind k);    /* PyTorch's class name: "Linear" ... */
int cq_module_num_children(const cq_module *m);
cq_module *cq_module_child(const cq_module *m, int i); /* NULL out of range */
/* By dotted name relative to m ("" is m itself); NULL if absent. */
cq_module *cq_module_find(const cq_module *m, const char *dotted_name);
/* Depth-first pre-order walk, PyTorch's named_modules() order: for (x = root; x; x =
 * cq_module_next(root, x)). */
cq_module *cq_module_next(const cq_module *root, const cq_module *m);
/* A parameter or buffer by local name ("weight", "running_mean"); NULL if the module has none
 * (a frozen quantized module has no float "weight"). */
cq_var *cq_module_param(const cq_module *m, const char *local_name);
/* Training mode for m and its subtree (BatchNorm uses batch statistics when training). */
void cq_module_set_training(cq_module *m, bool training);
bool cq_module_is_training(const cq_module *m);
/* PyTorch-style random init of every Linear/Conv2d (weight and bias ~ U(-1/sqrt(fan_in),
 * +1/sqrt(fan_in))) and Embedding (N(0,1)) in the subtree, from a seed (not PyTorch's
 * generator, so the numbers differ from PyTorch's). */
void cq_module_init_params(cq_module *m, uint64_t seed);

/* Runs one module: Linear, Conv2d, the norms, ReLU, Flatten, Identity, and Sequential (its
 * children in order). Quantized modules quantize as described under cq_quantize. Training
 * mode and grad mode are independent: BatchNorm follows the former, recording the latter. */
cq_status cq_module_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err);
/* Embedding lookup. */
cq_status cq_module_forward_ids(cq_tape *t, cq_module *m, const int64_t *ids, int ids_ndim,
                                const int64_t *ids_shape, cq_var **out, cq_err *err);

/* ---- models: a module tree plus its forward function ----------------------------------- */
typedef struct cq_model cq_model;
typedef cq_status (*cq_model_forward_fn)(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err);

/* Takes ownership of root (see Conventions). forward NULL: the root must be a Sequential and runs as one. arch names the model
 * in messages ("LeNet"); copied. */
cq_status cq_model_new(cq_model **out, const char *arch, cq_module *root, cq_model_forward_fn forward,
                       cq_err *err);
void cq_model_free(cq_model *m); /* accepts NULL */
cq_module *cq_model_root(const cq_model *m);
const char *cq_model_arch(const cq_model *m);
cq_status cq_model_forward(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
void cq_model_set_training(cq_model *m, bool training);
/* The vars that take gradients (float weights and biases), in state-dict order: writes up to
 * cap of them and returns how many there are. Frozen quantized weights are not among them. */
int cq_model_parameters(const cq_model *m, cq_var **params, int cap);
/* Number of weight elements of the Linear/Conv2d/Embedding modules (what bits-per-weight
 * divides by) and the bytes their stored weights take (data, scales and shifts when frozen). */
int64_t cq_model_weight_count(const cq_model *m);
size_t cq_model_weight_bytes(const cq_model *m);

/* ---- state dicts ------------------------------------------------------------------------
 * An ordered list of named tensors. Keys follow PyTorch ("fc1.weight") and, for quantized
 * modules, optimum-quanto (spec 8.1): frozen weights as "weight._data" (+ "weight._scale") for
 * int8/float8 and "weight._data._data", "weight._scale", "weight._shift" for int2/int4, plus
 * "input_scale" and "output_scale" (F32, shape []) on every quantized module. */
typedef struct cq_state_dict cq_state_dict;

cq_status cq_state_dict_new(cq_state_dict **out, cq_err *err);
void cq_state_dict_free(cq_state_dict *sd); /* accepts NULL */
/* Takes ownership of t (see Conventions). Keys must be unique. */
cq_status cq_state_dict_add(cq_state_dict *sd, const char *key, cq_tensor *t, cq_err *err);
int64_t cq_state_dict_count(const cq_state_dict *sd);
const char *cq_state_dict_key(const cq_state_dict *sd, int64_t i);       /* NULL out of range */
const cq_tensor *cq_state_dict_tensor(const cq_state_dict *sd, int64_t i); /* NULL out of range */
const cq_tensor *cq_state_dict_find(const cq_state_dict *sd, const char *key); /* NULL if absent */
/* Copies of every tensor in a safetensors file, in file order. */
cq_status cq_state_dict_load_safetensors(const char *path, cq_state_dict **out, cq_err *err);
cq_status cq_state_dict_save_safetensors(const cq_state_dict *sd, const char *path, cq_err *err);

/* The model's state: float params and buffers in module order, quantized modules as above. */
cq_status cq_model_state_dict(const cq_model *m, cq_state_dict **out, cq_err *err);

typedef struct cq_load_opts {
    bool strict;          /* missing or unexpected keys are errors (default true) */
    bool convert_dtypes;  /* accept F16/BF16/F64 (and integer buffers) for F32 entries by
                             converting; default false: a dtype mismatch is an error */
} cq_load_opts;
cq_load_opts cq_load_default_opts(void);
/* Loads by name. Errors (nothing is changed then): CQ_E_NOTFOUND "missing key 'fc1.bias'",
 * CQ_E_FORMAT "unexpected key 'fc3.weight'", CQ_E_SHAPE "fc1.weight: shape [50, 320] in the
 * model, [50, 321] in <source>", CQ_E_DTYPE likewise. Frozen quantized modules take their
 * quanto keys and rebuild the integer weight. */
cq_status cq_model_load_state_dict(cq_model *m, const cq_state_dict *sd, const cq_load_opts *opts,
                                   const char *source_label, cq_err *err);
/* Strict load of a safetensors file (no dtype conversion). */
cq_status cq_model_load_safetensors(cq_model *m, const char *path, cq_err *err);

/* ---- quantization: optimum-quanto's quantize / Calibration / freeze / requantize ---------
 * cq_quantize walks the tree in named_modules() order and quantizes each module whose full
 * name matches (Python's fnmatch.fnmatchcase, as quanto: '*', '?', '[seq]', '[!seq]', no
 * backslash escapes, an unclosed '[' literal) at least one include
 * pattern (all when include is NULL) and no exclude pattern. "a" does not match "a.b": use
 * "a*". Modules already quantized are left as they are. As in quanto:
 *  - Linear: weight quantized (per output channel; 2/4-bit grouped by the module rule,
 *    cq_default_group_size), input and output quantized when activations is set;
 *  - Conv2d: weight and output quantized, never its input (quanto's QConv2d asks for no
 *    input hook, spec 12.6);
 *  - LayerNorm: output quantization only, and only when activations is set;
 *  - the bias is never quantized; activation scales are per tensor and start at 1.0.
 * Until cq_freeze the weight is re-quantized on every forward and the float weight receives
 * the gradient of the dequantized weight (straight-through), so training is QAT. With
 * activations, quantized values flow through a straight-through quantize-dequantize. */
typedef struct cq_quantize_opts {
    cq_qtype weights;               /* CQ_QNONE: leave weights in float */
    cq_qtype activations;           /* CQ_QNONE, CQ_QINT8 or a float8 qtype */
    cq_optimizer_kind optimizer;    /* CQ_OPT_DEFAULT: Absmax for 8-bit, Max below */
    const char *const *include;     /* NULL-terminated fnmatch patterns; NULL = every module */
    const char *const *exclude;     /* NULL-terminated; NULL = none */
} cq_quantize_opts;
cq_quantize_opts cq_quantize_default_opts(void); /* qint8 weights, no activations, default optimizer */
cq_status cq_quantize(cq_model *m, const cq_quantize_opts *opts, cq_err *err);

/* Calibration: between begin and end every forward updates the input and output scales of
 * quantized modules with activations: new = absmax(x) / qmax (127 or the float8 max); the
 * first observation replaces the initial 1.0, later ones give m*old + (1-m)*new. quanto uses
 * momentum 0.9 for input scales whatever it is given (spec 6.3); cquanto uses `momentum` for
 * both (docs/WORKFLOW.md). Pass 0.9 (a double) to match quanto's arithmetic exactly. */
cq_status cq_calibrate_begin(cq_model *m, double momentum, cq_err *err);
void cq_calibrate_end(cq_model *m);

/* Replaces each quantized module's float weight by its integer weight (cq_qweight), which the
 * quantized kernels then use. The float weight var is freed: drop optimizers holding it first. */
cq_status cq_freeze(cq_model *m, cq_err *err);

/* What quantization a module has (all CQ_QNONE / false for a float module). */
typedef struct cq_module_qinfo {
    bool quantized, frozen;
    cq_qtype weights, activations;
    cq_optimizer_kind optimizer;
    int64_t group_size;             /* 2/4-bit weights: the module rule's choice, 0 = none */
    float input_scale, output_scale;
    const cq_qweight *qweight;      /* the frozen weight, NULL until frozen */
} cq_module_qinfo;
cq_module_qinfo cq_module_get_qinfo(const cq_module *m);

/* The quanto map of the model's quantized modules (insertion in module order). */
cq_status cq_model_qmap(const cq_model *m, cq_qmap **out, cq_err *err);
/* Writes dir/model.safetensors (cq_model_state_dict) and dir/quanto_qmap.json, each
 * atomically; creates dir if needed and replaces those two files if present. */
cq_status cq_model_save(const cq_model *m, const char *dir, cq_err *err);
/* quanto's requantize on a freshly built float model: quantizes the modules named in
 * dir/quanto_qmap.json with their qtypes, then loads dir/model.safetensors strictly (frozen
 * modules from their quanto keys, unfrozen ones from "weight"). Outputs are then bit-identical
 * to those of the model that was saved. */
cq_status cq_model_requantize(cq_model *m, const char *dir, cq_err *err);

/* ---- Conv-BN(-ReLU) folding, as torch.ao.quantization.fuse_modules for inference ----------
 * Folds BatchNorm2d `bn` (eval statistics) into Conv2d `conv` with PyTorch's
 * fuse_conv_bn_weights arithmetic: w' = w * (gamma * rsqrt(var + eps)), b' = (b - mean) *
 * rsqrt(var + eps) * gamma + beta; the conv gains a bias if it had none. bn (and relu, a ReLU
 * module or NULL) become Identity; with relu the conv applies ReLU itself. Names are full
 * dotted names. Only float (not quantized) modules; the keys of the folded modules vanish
 * from the state dict while the conv keeps its own names. */
cq_status cq_fold_conv_bn(cq_model *m, const char *conv, const char *bn, const char *relu, cq_err *err);

/* ---- training and evaluation on a data set --------------------------------------------------
 * The loops the demo, the examples and the tests share. Batches are samples of a cq_dataset
 * fed as [B, sample shape...] f32 (pixel / pixel_max). Each call uses its own tape. */
typedef enum cq_loss_kind {
    CQ_LOSS_NLL = 0,       /* the model returns log-probabilities (LeNet) */
    CQ_LOSS_CROSS_ENTROPY  /* the model returns logits (the MLP) */
} cq_loss_kind;

/* Top-1 accuracy over samples [start, start + count): eval mode, grad off. Writes the number
 * of correct predictions; predictions (count entries) may be NULL. */
cq_status cq_model_evaluate(cq_model *m, const cq_dataset *ds, int64_t start, int64_t count, int64_t batch,
                            int64_t *correct, uint8_t *predictions, cq_err *err);
/* Runs the model over samples [start, start + count) under cq_calibrate_begin/end (eval mode,
 * grad off), so every quantized module's activation scales are calibrated. */
cq_status cq_model_calibrate(cq_model *m, const cq_dataset *ds, int64_t start, int64_t count, int64_t batch,
                             double momentum, cq_err *err);

typedef struct cq_train_opts {
    int64_t batch;          /* samples per step (default 64) */
    cq_loss_kind loss;
    uint64_t shuffle_seed;  /* the sample order of the epoch; 0 keeps the data set's order */
    /* Called after each step with the steps done, the steps in the epoch and the step's
     * loss (NULL: silent). */
    void (*progress)(void *ctx, int64_t step, int64_t steps, float loss);
    void *progress_ctx;
} cq_train_opts;
cq_train_opts cq_train_default_opts(void);
/* One epoch over samples [start, start + count) in training mode: forward, loss, backward,
 * optimizer step (quantized, unfrozen modules train through their straight-through weights:
 * QAT). The last partial batch is used as well. Writes the mean loss (may be NULL). */
cq_status cq_model_train_epoch(cq_model *m, cq_optim *optim, const cq_dataset *ds, int64_t start, int64_t count,
                               const cq_train_opts *opts, float *mean_loss, cq_err *err);

/* ---- bundled models -------------------------------------------------------------------- */
/* LeNet for MNIST (the PyTorch tutorial net, data/lenet_mnist.safetensors): conv1 (1->10, 5x5),
 * conv2 (10->20, 5x5), fc1 (320->50), fc2 (50->10); forward: relu(maxpool2(conv1(x))),
 * relu(maxpool2(conv2(x))), flatten, relu(fc1), fc2, log_softmax. Input [N, 1, 28, 28] of
 * pixel/255; output log-probabilities [N, 10]. Dropout is left out (eval behaviour). */
cq_status cq_lenet_new(cq_model **out, cq_err *err);
/* An MLP of Linear layers "layers.0" ... "layers.<n_layers-1>" with sizes[0] inputs and
 * sizes[i+1] outputs for layer i, ReLU between layers, logits out. Random init from seed. */
cq_status cq_mlp_new(cq_model **out, int n_layers, const int64_t *sizes, uint64_t seed, cq_err *err);

/* @@MODULE_API@@ (declarations for modules, quantization workflow and models go here) */

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_H */
