/*
 * group.c - quanto's grouping (tensor/grouped.py) and the module group-size rule
 * (nn/qmodule.py). Axis 0 grouping is a plain reshape to (numel/gs, gs); axis -1 permutes so
 * that each column of the (gs, numel/gs) result is one group. Byte moves only: works for any
 * dtype and never rounds.
 */
#include "quant_internal.h"

int64_t cq_default_group_size(int ndim, const int64_t *shape) {
    if (ndim < 1 || !shape || shape[0] <= 0) return 0;
    int64_t in_features = cq_shape_numel(ndim, shape) / shape[0];
    if (in_features <= 128) return 0;
    static const int64_t candidates[] = {128, 96, 64, 32};
    for (size_t i = 0; i < CQ_ARRAY_LEN(candidates); i++)
        if (in_features % candidates[i] == 0) return candidates[i];
    return 0;
}

cq_status cq_grouped_shape(int ndim, const int64_t *shape, int axis, int64_t group_size,
                           int64_t out_shape[2], cq_err *err) {
    CQ__ARG(out_shape);
    CQ__ARG(shape);
    cq_status s = cq__check_axis(&axis, ndim, false, "grouping", err);
    if (s) return s;
    int64_t axis_dim = axis == 0 ? shape[0] : shape[ndim - 1];
    int64_t numel = cq_shape_numel(ndim, shape);
    int64_t axis_numel = axis_dim ? numel / axis_dim : 0;
    if (group_size <= 0 || group_size > axis_numel || axis_numel % group_size)
        return cq_err_set(err, CQ_E_ARG, "group size %lld must be a divisor of %lld (the elements per index "
                          "along axis %d)", (long long)group_size, (long long)axis_numel, axis);
    out_shape[0] = axis == 0 ? numel / group_size : group_size;
    out_shape[1] = axis == 0 ? group_size : numel / group_size;
    return CQ_OK;
}

/* Element (g, r, c) of x viewed as (G, gs, C) moves to (r, c*G + g) of the (gs, C*G) result;
 * ungrouping is the same map read the other way. */
static void permute_last_axis(const uint8_t *src, uint8_t *dst, int64_t G, int64_t gs, int64_t C,
                              size_t es, bool to_grouped) {
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (G * gs * C > 65536)
    for (int64_t r = 0; r < gs; r++) {
        for (int64_t g = 0; g < G; g++) {
            for (int64_t c = 0; c < C; c++) {
                size_t flat = (size_t)((g * gs + r) * C + c) * es;
                size_t grp = (size_t)(r * C * G + c * G + g) * es;
                if (to_grouped) memcpy(dst + grp, src + flat, es);
                else memcpy(dst + flat, src + grp, es);
            }
        }
    }
}

cq_status cq_group(const cq_tensor *x, int axis, int64_t group_size, cq_tensor **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(x);
    int64_t gshape[2];
    cq_status s = cq_grouped_shape(x->ndim, x->shape, axis, group_size, gshape, err);
    if (s) return s;
    s = cq_tensor_new(out, x->dtype, 2, gshape, err);
    if (s) return s;
    if (axis == 0) {
        memcpy((*out)->data, x->data, cq_tensor_nbytes(x));
    } else {
        int64_t C = x->shape[x->ndim - 1];
        permute_last_axis(x->data, (*out)->data, gshape[1] / C, group_size, C, cq_dtype_size(x->dtype), true);
    }
    return CQ_OK;
}

cq_status cq_ungroup(const cq_tensor *grouped, int axis, int ndim, const int64_t *orig_shape,
                     cq_tensor **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(grouped);
    CQ__ARG(orig_shape);
    if (ndim < 1 || ndim > CQ_MAX_DIMS)
        return cq_err_set(err, CQ_E_SHAPE, "ungroup: original rank %d outside 1..%d", ndim, CQ_MAX_DIMS);
    if (cq_tensor_numel(grouped) != cq_shape_numel(ndim, orig_shape)) {
        char b1[96], b2[96];
        return cq_err_set(err, CQ_E_SHAPE, "ungroup: grouped shape %s does not hold original shape %s",
                          cq_shape_str(grouped->ndim, grouped->shape, b1, sizeof b1),
                          cq_shape_str(ndim, orig_shape, b2, sizeof b2));
    }
    cq_status s = cq_tensor_new(out, grouped->dtype, ndim, orig_shape, err);
    if (s) return s;
    bool same = grouped->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = grouped->shape[d] == orig_shape[d];
    if (same || axis == 0) {
        memcpy((*out)->data, grouped->data, cq_tensor_nbytes(grouped));
        return CQ_OK;
    }
    if (axis != -1 && axis != ndim - 1) {
        cq_tensor_free(*out);
        *out = NULL;
        return cq_err_set(err, CQ_E_ARG, "ungroup: axis %d is not supported (0 or -1)", axis);
    }
    if (grouped->ndim != 2) {
        cq_tensor_free(*out);
        *out = NULL;
        return cq_err_set(err, CQ_E_SHAPE, "ungroup: a grouped tensor is 2-D, got rank %d", grouped->ndim);
    }
    int64_t gs = grouped->shape[0], C = orig_shape[ndim - 1];
    int64_t G = C && gs ? cq_tensor_numel(grouped) / C / gs : 0;
    if (G * C != grouped->shape[1]) {
        cq_tensor_free(*out);
        *out = NULL;
        return cq_err_set(err, CQ_E_SHAPE, "ungroup: %lld columns are not a multiple of the last dim %lld",
                          (long long)grouped->shape[1], (long long)C);
    }
    permute_last_axis(grouped->data, (*out)->data, G, gs, C, cq_dtype_size(grouped->dtype), false);
    return CQ_OK;
}
