/*
 * max_optimizer.c - optimum-quanto's MaxOptimizer for affine qtypes: per group,
 * scale = (rmax - rmin) / (2^bits - 1) and shift = -rmin, each op rounded to the input dtype.
 * affine.c calls it through cq_affine_optimize, and HQQ (hqq.c) starts from its result.
 */
#include "quant_internal.h"

cq_status cq__max_optimize(const cq_tensor *x, int bits, int axis, cq_tensor **scale, cq_tensor **shift,
                           cq_err *err) {
    *scale = *shift = NULL;
    /* quanto reduces over dims 1.. for axis 0 and over all but the last dim otherwise, which
     * includes its axis-None fallback. */
    int red_axis = axis == 0 ? 0 : -1;
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    cq__keepdim_shape(x->ndim, x->shape, red_axis, &ndim, shape);
    cq_status s = cq_tensor_new(scale, x->dtype, ndim, shape, err);
    if (!s) s = cq_tensor_new(shift, x->dtype, ndim, shape, err);
    cq__layout l = cq__axis_layout(x->ndim, x->shape, red_axis);
    float *mn = NULL, *mx = NULL;
    if (!s) {
        mn = cq__malloc((size_t)(l.n ? l.n : 1) * sizeof(float), err, "affine minima");
        mx = cq__malloc((size_t)(l.n ? l.n : 1) * sizeof(float), err, "affine maxima");
        if (!mn || !mx) s = CQ_E_NOMEM;
    }
    if (s) {
        free(mn), free(mx);
        cq_tensor_free(*scale), cq_tensor_free(*shift);
        *scale = *shift = NULL;
        return s;
    }
    cq__reduce_minmax(x->data, x->dtype, l, mn, mx);
    float qrange = cq__affine_code_max(bits);
    for (int64_t j = 0; j < l.n; j++) {
        float range = cq__rnd(mx[j] - mn[j], x->dtype);
        cq__st((*scale)->data, x->dtype, j, cq__rnd(range / qrange, x->dtype));
        cq__st((*shift)->data, x->dtype, j, -mn[j]);
    }
    free(mn), free(mx);
    return CQ_OK;
}
