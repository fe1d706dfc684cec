/*
 * cquanto/quant.h - quantization math: grouping, symmetric and affine quantization, the
 * absmax / max / HQQ optimizers, canonical packing, quantized weights and activations.
 */
#ifndef CQUANTO_QUANT_H
#define CQUANTO_QUANT_H

#include "cquanto/core.h"

#ifdef __cplusplus
extern "C" {
#endif

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
CQ_API int64_t cq_default_group_size(int ndim, const int64_t *shape);
/* quanto's grouped_shape: (numel/gs, gs) for axis 0, (gs, numel/gs) for axis -1.
 * group_size must divide numel/shape[axis] (CQ_E_ARG otherwise). */
CQ_API cq_status cq_grouped_shape(int ndim, const int64_t *shape, int axis, int64_t group_size,
                                  int64_t out_shape[2], cq_err *err);
/* group/ungroup (quanto's grouped.py), any dtype: axis 0 is a reshape, axis -1 a permutation
 * (grouped[r, c*G + g] = x_rows[g*gs + r, c]). ungroup is the exact inverse. */
CQ_API cq_status cq_group(const cq_tensor *x, int axis, int64_t group_size, cq_tensor **out, cq_err *err);
CQ_API cq_status cq_ungroup(const cq_tensor *grouped, int axis, int ndim, const int64_t *orig_shape,
                            cq_tensor **out, cq_err *err);

/* --- quant: symmetric (8-bit) quantization ---------------------------------------------- */

/* AbsmaxOptimizer / calibrate.absmax_scale: max|x| / qmax (127, 448, 57344, 240) reduced over
 * every dim but `axis`, keepdim; 0-dim for CQ_AXIS_NONE. Scale dtype = x dtype. */
CQ_API cq_status cq_absmax_scale(const cq_tensor *x, cq_qtype q, int axis, cq_tensor **scale, cq_err *err);
/* quanto::quantize_symmetric: data = cast(clamp(round?(x / scale))) to dtype (I8: rounded
 * half-to-even, clamped to [-128, 127]; F8 types: clamped to +-finfo.max then cast RNE).
 * Validation as quanto (0-dim scale per tensor; per axis: ndim >= 2, axis 0/-1, size > 1,
 * scale of the same ndim with one non-unit dim). A zero scale gives code 0 (quanto: NaN). */
CQ_API cq_status cq_quantize_symmetric(const cq_tensor *x, cq_dtype dtype, int axis, const cq_tensor *scale,
                                       cq_tensor **data, cq_err *err);
/* x_hat = scale * data computed in scale's dtype (data widened first); `scale` is 0-dim or
 * broadcastable (same ndim, at most one non-unit dim). out_dtype: CQ_DTYPE_INVALID for the
 * scale dtype, or CQ_F32 (same values, widened). */
CQ_API cq_status cq_dequantize_symmetric(const cq_tensor *data, const cq_tensor *scale, cq_dtype out_dtype,
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
CQ_API cq_hqq_opts cq_hqq_default_opts(void);

/* AffineOptimizer.__call__ with MaxOptimizer (opt CQ_OPT_MAX or DEFAULT) or HqqOptimizer
 * (CQ_OPT_HQQ; hqq NULL = defaults). x (2-D or more) is grouped first when group_size > 0;
 * axis 0 or -1. Max: scale = (rmax - rmin) / (2^bits - 1), shift = -rmin (float shift, x
 * dtype), keepdim shapes over the grouped tensor ((G,1) for axis 0, (1,G') for axis -1; a
 * grouped size of 1 along axis falls back to one scale per last-dim index, as quanto does).
 * HQQ moves only the shift; it is bit-exact with quanto for f16/bf16 and within 2 ulp for
 * f32 (docs/NUMERICS.md), and needs more than one row/group along axis (else CQ_E_SHAPE).
 * Every function of this section is reentrant; results never depend on the thread count. */
CQ_API cq_status cq_affine_optimize(const cq_tensor *x, cq_qtype q, int axis, int64_t group_size,
                                    cq_optimizer_kind opt, const cq_hqq_opts *hqq, cq_tensor **scale,
                                    cq_tensor **shift, cq_err *err);
/* quanto::quantize_affine with a float shift: codes = clamp(round((x + shift) / scale), 0,
 * 2^bits - 1) as U8 in the grouped shape (x's shape when group_size is 0). Zero scale: code 0. */
CQ_API cq_status cq_quantize_affine(const cq_tensor *x, int bits, int axis, int64_t group_size,
                                    const cq_tensor *scale, const cq_tensor *shift, cq_tensor **codes,
                                    cq_err *err);
/* x_hat = scale * code - shift (two roundings, scale dtype), then ungrouped to orig_shape
 * (orig_shape NULL: kept in the codes' shape). out_dtype as for cq_dequantize_symmetric. */
CQ_API cq_status cq_dequantize_affine(const cq_tensor *codes, const cq_tensor *scale, const cq_tensor *shift,
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
CQ_API void cq_pack_codes(const uint8_t *codes, int64_t n_rows, int64_t row_len, int bits, uint8_t *packed);
CQ_API void cq_unpack_codes(const uint8_t *packed, int64_t n_rows, int64_t row_len, int bits, uint8_t *codes);
/* Code of logical element (row, col) read straight from a packed buffer. */
static inline uint8_t cq_packed_code(const uint8_t *packed, int64_t n_rows, int64_t row_len, int bits,
                                     int64_t row, int64_t col) {
    if (!packed || (bits != 2 && bits != 4)) return 0;
    int64_t R = cq_packed_rows(n_rows, bits);
    return (uint8_t)((packed[cq_packed_byte_row(row, R) * row_len + col] >> (bits * cq_packed_field(row, R))) &
                     ((1 << bits) - 1));
}
/* Tensor forms: U8 codes -> packed U8 (R, ...); packed -> codes with n_rows logical rows. */
CQ_API cq_status cq_pack(const cq_tensor *codes, int bits, cq_tensor **packed, cq_err *err);
CQ_API cq_status cq_unpack(const cq_tensor *packed, int bits, int64_t n_rows, cq_tensor **codes, cq_err *err);

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
CQ_API cq_status cq_qweight_quantize(const cq_tensor *w, cq_qtype q, cq_optimizer_kind opt, int64_t group_size,
                                     cq_qweight **out, cq_err *err);
/* The same with any axis (0 or -1) and HQQ parameters (NULL = defaults). */
CQ_API cq_status cq_qweight_quantize_ex(const cq_tensor *w, cq_qtype q, int axis, cq_optimizer_kind opt,
                                        int64_t group_size, const cq_hqq_opts *hqq, cq_qweight **out,
                                        cq_err *err);
/* Builds a weight (axis 0) from on-disk tensors, validating dtypes and shapes against qtype
 * and the float weight's shape. group_size -1 infers it from scale.shape[0] (what the module
 * rule would give for quanto files); shift is required iff the qtype has < 8 bits.
 * copy = false borrows the tensors' memory (keep them alive, e.g. the mapped file). */
CQ_API cq_status cq_qweight_from_tensors(cq_qtype q, int ndim, const int64_t *shape, int64_t group_size,
                                         const cq_tensor *data, const cq_tensor *scale, const cq_tensor *shift,
                                         bool copy, cq_qweight **out, cq_err *err);
CQ_API void cq_qweight_free(cq_qweight *w);
/* The float weight (weight shape) in the scale dtype (out_dtype CQ_DTYPE_INVALID) or F32. */
CQ_API cq_status cq_qweight_dequantize(const cq_qweight *w, cq_dtype out_dtype, cq_tensor **out, cq_err *err);
/* qbits: the U8 codes in their logical (grouped) shape; qbytes: a copy of data. */
CQ_API cq_status cq_qweight_unpack_codes(const cq_qweight *w, cq_tensor **codes, cq_err *err);
/* State-dict suffix of the data tensor: "_data" (8-bit) or "_data._data" (2/4-bit). */
CQ_API const char *cq_qweight_data_key(cq_qtype q);
/* quanto freezes a bf16 qint4 2-D weight with group 128 on CPU through TinyGemm, which saves
 * shift' = bf16(8s - bf16(8s - shift)) instead of the optimizer's shift (QUANTO-FORMAT.md 8.1). Applies
 * that round trip in place when those conditions hold; returns whether it did. */
CQ_API bool cq_qweight_apply_tinygemm_roundtrip(cq_qweight *w);

/* quanto's ActivationQBytesTensor: per-tensor symmetric data (I8 or F8) + 0-dim scale. */
typedef struct cq_qactivation {
    cq_qtype qtype; /* 8-bit qtypes only */
    cq_tensor *data, *scale;
} cq_qactivation;
/* scale: 0-dim float tensor (a module's input_scale); NULL computes cq_absmax_scale. */
CQ_API cq_status cq_qactivation_quantize(const cq_tensor *x, cq_qtype q, const cq_tensor *scale,
                                         cq_qactivation **out, cq_err *err);
CQ_API cq_status cq_qactivation_dequantize(const cq_qactivation *a, cq_dtype out_dtype, cq_tensor **out,
                                           cq_err *err);
CQ_API void cq_qactivation_free(cq_qactivation *a);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_QUANT_H */
