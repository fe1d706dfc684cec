/*
 * ops_shape.c - reshape and flatten (zero-copy views of a contiguous var: the output shares
 * the input's data; the gradient is added back element for element) and embedding (row
 * gather, whose backward scatters rows into the table in index order).
 */
#include "nn/nn_internal.h"

/* ---- reshape / flatten ---------------------------------------------------------------------------- */

static cq_status view_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                               cq_err *err) {
    CQ_UNUSED(vctx);
    CQ_UNUSED(n_in);
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    const float *gy = (const float *)out->grad->data;
    int64_t n = cq_var_numel(out);
    CQ__OMP_ROWS(n)
    for (int64_t i = 0; i < n; i++) gx[i] += gy[i];
    return CQ_OK;
}

static cq_status make_view(cq_tape *t, cq_var *x, int ndim, const int64_t *shape, cq_var **out, cq_err *err) {
    cq_var *y;
    CQ__TRY(cq__tape_view(t, ndim, shape, cq_var_f32(x), &y, err));
    cq_status s = cq_tape_record(t, y, &x, 1, view_backward, NULL, 0, err);
    if (s) return s;
    *out = y;
    return CQ_OK;
}

cq_status cq_reshape(cq_tape *t, cq_var *x, int ndim, const int64_t *shape, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_reshape", "tape");
    cq_status s = cq__check_var(x, "cq_reshape", "x", err);
    if (s) return s;
    if (ndim < 0 || ndim > CQ_MAX_DIMS || (ndim > 0 && !shape))
        return cq_err_set(err, CQ_E_ARG, "cq_reshape: rank %d outside 0..%d", ndim, CQ_MAX_DIMS);
    int64_t resolved[CQ_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        resolved[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0) return cq_err_set(err, CQ_E_ARG, "cq_reshape: only one dimension can be -1");
            infer = i;
        } else if (shape[i] < 0) {
            return cq_err_set(err, CQ_E_ARG, "cq_reshape: invalid dimension %lld", (long long)shape[i]);
        } else {
            known *= shape[i];
        }
    }
    int64_t numel = cq_var_numel(x);
    if (infer >= 0) {
        if (known == 0 || numel % known)
            return cq_err_set(err, CQ_E_SHAPE, "cq_reshape: cannot infer -1 for %lld elements", (long long)numel);
        resolved[infer] = numel / known;
        known = numel;
    }
    char sx[96], sy[96];
    if (known != numel)
        return cq_err_set(err, CQ_E_SHAPE, "cq_reshape: shape %s is invalid for input %s",
                          cq_shape_str(ndim, resolved, sy, sizeof sy),
                          cq_shape_str(x->data->ndim, x->data->shape, sx, sizeof sx));
    return make_view(t, x, ndim, resolved, out, err);
}

cq_status cq_flatten(cq_tape *t, cq_var *x, int start_dim, int end_dim, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_flatten", "tape");
    cq_status s = cq__check_var(x, "cq_flatten", "x", err);
    if (s) return s;
    int nd = x->data->ndim;
    if (start_dim < 0) start_dim += nd;
    if (end_dim < 0) end_dim += nd;
    if (nd == 0) start_dim = end_dim = 0; /* a scalar flattens to [1] as in PyTorch */
    if (start_dim < 0 || end_dim < start_dim || (nd > 0 && end_dim >= nd))
        return cq_err_set(err, CQ_E_ARG, "cq_flatten: dims %d..%d invalid for a rank-%d input", start_dim, end_dim, nd);
    int64_t shape[CQ_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < start_dim; i++) shape[k++] = x->data->shape[i];
    shape[k++] = nd == 0 ? 1 : cq_shape_numel(end_dim - start_dim + 1, x->data->shape + start_dim);
    for (int i = end_dim + 1; i < nd; i++) shape[k++] = x->data->shape[i];
    return make_view(t, x, k, shape, out, err);
}

/* ---- embedding ----------------------------------------------------------------------------------- */

typedef struct {
    const int64_t *ids; /* copied onto the tape */
    int64_t n_ids, dim;
} embedding_ctx;

static cq_status embedding_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                    cq_err *err) {
    CQ_UNUSED(n_in);
    const embedding_ctx *c = vctx;
    float *gw;
    CQ__TRY(cq__grad_of(t, in[0], &gw, err));
    const float *gy = (const float *)out->grad->data;
    /* In index order: a repeated id accumulates its rows in a fixed order. */
    for (int64_t i = 0; i < c->n_ids; i++) {
        float *row = gw + c->ids[i] * c->dim;
        for (int64_t j = 0; j < c->dim; j++) row[j] += gy[i * c->dim + j];
    }
    return CQ_OK;
}

cq_status cq_embedding(cq_tape *t, cq_var *weight, const int64_t *ids, int ids_ndim, const int64_t *ids_shape,
                       cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    const char *op = "cq_embedding";
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(weight, op, "weight", err);
    if (s) return s;
    if (weight->data->ndim != 2) return cq_err_set(err, CQ_E_SHAPE, "%s: weight must be [V, D]", op);
    if (ids_ndim < 0 || ids_ndim > CQ_MAX_DIMS - 1 || (ids_ndim > 0 && !ids_shape))
        return cq_err_set(err, CQ_E_ARG, "%s: ids rank %d outside 0..%d", op, ids_ndim, CQ_MAX_DIMS - 1);
    int64_t vocab = weight->data->shape[0], dim = weight->data->shape[1];
    int64_t n_ids = cq_shape_numel(ids_ndim, ids_shape);
    if (n_ids > 0 && !ids) return cq_err_set(err, CQ_E_ARG, "%s: ids is NULL", op);
    for (int64_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return cq_err_set(err, CQ_E_ARG, "%s: id %lld at position %lld outside [0, %lld)", op, (long long)ids[i],
                              (long long)i, (long long)vocab);
    int64_t shape[CQ_MAX_DIMS];
    for (int i = 0; i < ids_ndim; i++) shape[i] = ids_shape[i];
    shape[ids_ndim] = dim;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, ids_ndim + 1, shape, false, &y, err));
    const float *pw = cq_var_f32(weight);
    float *py = cq_var_f32(y);
    for (int64_t i = 0; i < n_ids; i++) memcpy(py + i * dim, pw + ids[i] * dim, sizeof(float) * (size_t)dim);
    embedding_ctx c = {NULL, n_ids, dim};
    if (cq__tape_wants_grad(t, &weight, 1)) {
        int64_t *copy = cq_tape_alloc(t, sizeof(int64_t) * (size_t)(n_ids ? n_ids : 1), err);
        if (!copy) return CQ_E_NOMEM;
        if (n_ids) memcpy(copy, ids, sizeof(int64_t) * (size_t)n_ids);
        c.ids = copy;
    }
    if ((s = cq_tape_record(t, y, &weight, 1, embedding_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}
