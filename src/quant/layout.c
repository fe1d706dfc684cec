/*
 * layout.c - argument checks and the (outer, n, inner) layouts shared by the quantizers:
 * which axis a scale runs along, the keepdim shape of a reduction, the validation quanto
 * applies to axes and broadcast scales, and the exact min/max reductions over a layout.
 */
#include "quant_internal.h"

cq_status cq__check_float(const cq_tensor *t, const char *what, cq_err *err) {
    if (!t) return cq_err_set(err, CQ_E_ARG, "%s is NULL", what);
    if (!cq__is_quant_float(t->dtype))
        return cq_err_set(err, CQ_E_DTYPE, "%s has dtype %s; expected F32, F16 or BF16", what,
                          cq_dtype_name(t->dtype));
    return CQ_OK;
}

cq_status cq__check_axis(int *axis, int ndim, bool allow_none, const char *fn, cq_err *err) {
    if (*axis == CQ_AXIS_NONE) {
        if (allow_none) return CQ_OK;
        return cq_err_set(err, CQ_E_ARG, "%s: axis must be 0 or -1, not none", fn);
    }
    if (ndim >= 1 && *axis == ndim - 1) *axis = -1;
    if (*axis != 0 && *axis != -1)
        return cq_err_set(err, CQ_E_ARG, "%s: axis %d is not supported (0, -1%s)", fn, *axis,
                          allow_none ? " or none" : "");
    if (ndim < 1) return cq_err_set(err, CQ_E_SHAPE, "%s: a 0-dim tensor has no axis %d", fn, *axis);
    return CQ_OK;
}

cq__layout cq__axis_layout(int ndim, const int64_t *shape, int axis) {
    int64_t numel = cq_shape_numel(ndim, shape);
    cq__layout l = {1, 1, numel};
    if (axis == CQ_AXIS_NONE || ndim == 0) return l;
    if (axis == 0) {
        l.n = shape[0];
        l.inner = shape[0] ? numel / shape[0] : 0;
    } else {
        l.n = shape[ndim - 1];
        l.outer = l.n ? numel / l.n : 0;
        l.inner = 1;
    }
    return l;
}

void cq__keepdim_shape(int ndim, const int64_t *shape, int axis, int *out_ndim, int64_t *out_shape) {
    if (axis == CQ_AXIS_NONE) {
        *out_ndim = 0;
        return;
    }
    *out_ndim = ndim;
    for (int d = 0; d < ndim; d++) out_shape[d] = 1;
    int keep = axis == 0 ? 0 : ndim - 1;
    out_shape[keep] = shape[keep];
}

/* True when every dim of x strictly between a and b is 1. */
static bool run_gap_is_unit(const cq_tensor *x, int a, int b) {
    for (int d = a + 1; d < b; d++)
        if (x->shape[d] != 1) return false;
    return true;
}

cq_status cq__param_layout_run(const cq_tensor *x, const cq_tensor *param, const char *what, cq__layout *out,
                               cq_err *err) {
    int64_t numel = cq_tensor_numel(x);
    *out = (cq__layout){1, 1, numel};
    if (param->ndim == 0) return CQ_OK;
    char b1[96], b2[96];
    if (param->ndim != x->ndim)
        return cq_err_set(err, CQ_E_SHAPE, "%s of shape %s does not broadcast over a tensor of shape %s "
                          "(it needs the same number of dims)", what,
                          cq_shape_str(param->ndim, param->shape, b1, sizeof b1),
                          cq_shape_str(x->ndim, x->shape, b2, sizeof b2));
    /* The dims the parameter keeps (equal to x's, x's not 1) must be one run [first, last]; the
     * dims of x that are 1 go either way. */
    int first = -1, last = -1;
    bool ok = true;
    for (int d = 0; d < param->ndim && ok; d++) {
        if (x->shape[d] == 1 || param->shape[d] == 1) {
            ok = param->shape[d] == 1 || param->shape[d] == x->shape[d];
            continue;
        }
        ok = param->shape[d] == x->shape[d] && (last < 0 || last == d - 1 || run_gap_is_unit(x, last, d));
        if (first < 0) first = d;
        last = d;
    }
    if (!ok)
        return cq_err_set(err, CQ_E_SHAPE, "%s of shape %s does not broadcast over a tensor of shape %s "
                          "along one run of dims", what,
                          cq_shape_str(param->ndim, param->shape, b1, sizeof b1),
                          cq_shape_str(x->ndim, x->shape, b2, sizeof b2));
    if (first < 0) return CQ_OK;
    out->outer = cq_shape_numel(first, x->shape);
    out->n = cq_shape_numel(last - first + 1, x->shape + first);
    out->inner = cq_shape_numel(x->ndim - last - 1, x->shape + last + 1);
    return CQ_OK;
}

cq_status cq__param_layout(const cq_tensor *x, const cq_tensor *param, const char *what, cq__layout *out,
                           cq_err *err) {
    int kept = 0;
    for (int d = 0; d < param->ndim; d++) kept += param->shape[d] != 1;
    if (kept > 1) {
        char b1[96], b2[96];
        return cq_err_set(err, CQ_E_SHAPE, "%s of shape %s does not broadcast over a tensor of shape %s "
                          "along a single axis", what, cq_shape_str(param->ndim, param->shape, b1, sizeof b1),
                          cq_shape_str(x->ndim, x->shape, b2, sizeof b2));
    }
    return cq__param_layout_run(x, param, what, out, err);
}

/* Min and max (or the max of |x| when mn is NULL) of every parameter slot j. Exact and
 * NaN-propagating like torch.amax (a NaN anywhere makes the slot NaN), with zeros ordered -0 < +0
 * (cq__minf), so the order of the comparisons, SIMD lanes and threads included, cannot change
 * the result; each slot is reduced by one thread. */
static inline __attribute__((always_inline)) void reduce_slots(const void *x, cq_dtype dt, cq__layout l,
                                                               int64_t j0, int64_t j1, float *mn, float *mx) {
    for (int64_t j = j0; j < j1; j++) {
        mx[j] = mn ? -INFINITY : 0.0f;
        if (mn) mn[j] = INFINITY;
    }
    if (l.inner == 1) { /* one slot per column: sweep rows, updating the slots in place */
        for (int64_t o = 0; o < l.outer; o++)
            for (int64_t j = j0; j < j1; j++) {
                float v = cq__ld(x, dt, o * l.n + j);
                if (mn) {
                    mx[j] = cq__maxf(mx[j], v);
                    mn[j] = cq__minf(mn[j], v);
                } else {
                    mx[j] = cq__maxf(mx[j], fabsf(v));
                }
            }
        return;
    }
    /* one slot per run of `inner` elements: the vectorised kernels, merged over `outer` */
    size_t es = cq_dtype_size(dt);
    for (int64_t o = 0; o < l.outer; o++)
        for (int64_t j = j0; j < j1; j++) {
            const uint8_t *run = (const uint8_t *)x + (size_t)((o * l.n + j) * l.inner) * es;
            if (mn) {
                float lo, hi;
                cq_vec_minmax(run, dt, l.inner, &lo, &hi);
                mn[j] = cq__minf(mn[j], lo);
                mx[j] = cq__maxf(mx[j], hi);
            } else {
                mx[j] = cq__maxf(mx[j], cq_vec_absmax(run, dt, l.inner));
            }
        }
}


void cq__reduce_minmax(const void *x, cq_dtype dt, cq__layout l, float *mn, float *mx) {
    int64_t nthreads = cq_get_num_threads();
    int64_t chunks = l.n < nthreads * 4 ? l.n : nthreads * 4;
    bool parallel = l.outer * l.n * l.inner > 32768 && chunks > 1;
#pragma omp parallel for schedule(static) num_threads(nthreads) if (parallel)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t j0 = l.n * c / chunks, j1 = l.n * (c + 1) / chunks;
        switch (dt) {
        case CQ_F16: reduce_slots(x, CQ_F16, l, j0, j1, mn, mx); break;
        case CQ_BF16: reduce_slots(x, CQ_BF16, l, j0, j1, mn, mx); break;
        default: reduce_slots(x, CQ_F32, l, j0, j1, mn, mx); break;
        }
    }
}

float *cq__params_f32(const cq_tensor *p, int64_t n, cq_err *err) {
    float *v = cq__malloc((size_t)(n > 0 ? n : 1) * sizeof(float), err, "quantization parameters");
    if (v)
        for (int64_t j = 0; j < n; j++) v[j] = cq__ld(p->data, p->dtype, j);
    return v;
}
