/*
 * quant_internal.h - helpers shared by the files of src/quant/: the (outer, n, inner)
 * broadcast layout every scale and reduction uses, argument checks, and the internal entry
 * points of the optimizers (element load/store and rounding are core/elem.h's). Private;
 * never installed.
 */
#ifndef CQ_QUANT_INTERNAL_H
#define CQ_QUANT_INTERNAL_H

#include "core/internal.h"
#include "core/elem.h"

/* Every per-axis quantity (a scale, a shift, a reduction result) indexes a tensor viewed as
 * (outer, n, inner): element (o, j, r) at flat index (o*n + j)*inner + r uses parameter j.
 * Per tensor is (1, 1, numel); axis 0 is (1, shape[0], rest); axis -1 is (rest, shape[-1], 1). */
typedef struct cq__layout {
    int64_t outer, n, inner;
} cq__layout;

/* NaN-propagating max/min as torch.amax/amin. */

/* Elementwise loops walk [lo, hi) in segments: with inner > 1 a segment shares one parameter
 * slot (ps = 0); with inner == 1 consecutive elements use consecutive slots (ps = 1). Returns
 * the segment's first slot and sets *end. Inside a segment, loops are plain and vectorizable. */
static inline int64_t cq__segment(cq__layout l, int64_t i, int64_t hi, int64_t *end) {
    int64_t j, e;
    if (l.inner == 1) {
        j = i % l.n;
        e = i + (l.n - j);
    } else {
        int64_t blk = i / l.inner;
        j = blk % l.n;
        e = (blk + 1) * l.inner;
    }
    *end = e < hi ? e : hi;
    return j;
}

static inline bool cq__is_quant_float(cq_dtype t) { return t == CQ_F32 || t == CQ_F16 || t == CQ_BF16; }

/* CQ_E_DTYPE unless t is F32/F16/BF16; `what` names the tensor. */
cq_status cq__check_float(const cq_tensor *t, const char *what, cq_err *err);
/* Normalises axis (ndim-1 -> -1); CQ_E_ARG unless 0, -1 or (allow_none) CQ_AXIS_NONE. */
cq_status cq__check_axis(int *axis, int ndim, bool allow_none, const char *fn, cq_err *err);
/* The layout of reducing x over every dim but `axis` (0, -1 or CQ_AXIS_NONE). */
cq__layout cq__axis_layout(int ndim, const int64_t *shape, int axis);
/* The layout under which `param` (0-dim, or same ndim with at most one non-unit dim equal to
 * the matching dim of x) broadcasts over x. */
cq_status cq__param_layout(const cq_tensor *x, const cq_tensor *param, const char *what, cq__layout *out,
                           cq_err *err);
/* The same for a param whose kept dims (each x's) form one run: (O,I,kh,1) over (O,I,kh,kw) is
 * one parameter per (o,i,h), as quanto's HQQ shift of an ungrouped Conv2d. */
cq_status cq__param_layout_run(const cq_tensor *x, const cq_tensor *param, const char *what, cq__layout *out,
                               cq_err *err);
/* Per slot j of layout l: min and max of x (mn NULL: max of |x| into mx). Exact, threaded. */
void cq__reduce_minmax(const void *x, cq_dtype dt, cq__layout l, float *mn, float *mx);
/* keepdim shape of a reduction over every dim but `axis` (ndim 0 for CQ_AXIS_NONE). */
void cq__keepdim_shape(int ndim, const int64_t *shape, int axis, int *out_ndim, int64_t *out_shape);

/* The scale laid out on the shift's shape (it broadcasts onto it): scale itself in *out when the
 * shapes agree, else a new tensor in *tmp (and *out) that the caller frees. */
cq_status cq__expand_scale(const cq_tensor *scale, const cq_tensor *shift, cq_tensor **tmp, const cq_tensor **out,
                           cq_err *err);

/* A parameter tensor (scale, shift: F32/F16/BF16) as n f32 values (malloc'd; NULL on OOM). */
float *cq__params_f32(const cq_tensor *p, int64_t n, cq_err *err);

/* Resolves a dequantize output dtype: INVALID -> the scale dtype; else the scale dtype or F32. */
cq_status cq__check_out_dtype(cq_dtype out_dtype, cq_dtype scale_dtype, cq_dtype *resolved, cq_err *err);

/* MaxOptimizer on an already grouped tensor: (scale, shift) new tensors of x's dtype with
 * keepdim shapes for `axis` (0, -1, or CQ_AXIS_NONE meaning quanto's per-last-dim fallback). */
cq_status cq__max_optimize(const cq_tensor *x, int bits, int axis, cq_tensor **scale, cq_tensor **shift,
                           cq_err *err);
/* HqqOptimizer.optimize on an already grouped tensor; same outputs as cq__max_optimize. */
cq_status cq__hqq_optimize(const cq_tensor *x, int bits, int axis, const cq_hqq_opts *opts,
                           cq_tensor **scale, cq_tensor **shift, cq_err *err);
/* Affine codes of x under (scale, shift) laid out as lay (no grouping, no checks). */
cq_status cq__affine_codes(const cq_tensor *x, const cq_tensor *scale, const cq_tensor *shift,
                           cq__layout lay, int bits, uint8_t *codes, cq_err *err);
/* scale * code - shift (two roundings in dt) into out (dtype dt, same numel as codes). */
cq_status cq__affine_dequant(const uint8_t *codes, const cq_tensor *scale, const cq_tensor *shift,
                             cq__layout lay, void *out, cq_err *err);

#endif
