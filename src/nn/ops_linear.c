/*
 * ops_linear.c - linear (x W^T + b) and matmul, forward and backward, on CBLAS sgemm. The bias
 * is written into the output first and the GEMM accumulates onto it (beta = 1), which is what
 * PyTorch's addmm does. Bias gradients are column sums accumulated in double, row by row.
 * Quantized matmuls are not here (kernels layer).
 */
#include "nn/nn_internal.h"

/* dst[j] += sum_i g[i*cols + j], summed in double in row order. */
static cq_status add_column_sums(cq_tape *t, float *dst, const float *g, int64_t rows, int64_t cols,
                                 cq_err *err) {
    double *acc = cq_tape_alloc(t, sizeof(double) * (size_t)cols, err);
    if (!acc) return CQ_E_NOMEM;
    for (int64_t j = 0; j < cols; j++) acc[j] = 0.0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) acc[j] += g[i * cols + j];
    for (int64_t j = 0; j < cols; j++) dst[j] += (float)acc[j];
    return CQ_OK;
}

static bool fits_blas(int64_t a, int64_t b, int64_t c) { return a <= INT32_MAX && b <= INT32_MAX && c <= INT32_MAX; }

/* ---- linear --------------------------------------------------------------------------------- */

static cq_status linear_backward(cq_tape *t, const void *ctx, cq_var *out, cq_var *const *in, int n_in,
                                 cq_err *err) {
    CQ_UNUSED(ctx);
    CQ_UNUSED(n_in);
    cq_var *x = in[0], *w = in[1], *b = in[2];
    int64_t nout = w->data->shape[0], nin = w->data->shape[1];
    int64_t rows = cq_var_numel(out) / (nout ? nout : 1);
    const float *gy = (const float *)out->grad->data;
    if (x->requires_grad) {
        float *gx;
        CQ__TRY(cq__grad_of(t, x, &gx, err));
        cq__sgemm(false, false, rows, nin, nout, 1.0f, gy, nout, cq_var_f32(w), nin, 1.0f, gx, nin);
    }
    if (w->requires_grad) {
        float *gw;
        CQ__TRY(cq__grad_of(t, w, &gw, err));
        cq__sgemm(true, false, nout, nin, rows, 1.0f, gy, nout, cq_var_f32(x), nin, 1.0f, gw, nin);
    }
    if (b && b->requires_grad) {
        float *gb;
        CQ__TRY(cq__grad_of(t, b, &gb, err));
        return add_column_sums(t, gb, gy, rows, nout, err);
    }
    return CQ_OK;
}

cq_status cq_linear(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_linear", "tape");
    cq_status s;
    if ((s = cq__check_var(x, "cq_linear", "x", err)) || (s = cq__check_var(w, "cq_linear", "weight", err)))
        return s;
    if (b && (s = cq__check_var(b, "cq_linear", "bias", err))) return s;
    char sx[96], sw[96];
    if (w->data->ndim != 2 || x->data->ndim < 1 || x->data->shape[x->data->ndim - 1] != w->data->shape[1])
        return cq_err_set(err, CQ_E_SHAPE, "cq_linear: input %s does not match weight %s (expected [..., in] and [out, in])",
                          cq_shape_str(x->data->ndim, x->data->shape, sx, sizeof sx),
                          cq_shape_str(w->data->ndim, w->data->shape, sw, sizeof sw));
    int64_t nout = w->data->shape[0], nin = w->data->shape[1];
    if (b && (b->data->ndim != 1 || b->data->shape[0] != nout))
        return cq_err_set(err, CQ_E_SHAPE, "cq_linear: bias %s does not match weight %s",
                          cq_shape_str(b->data->ndim, b->data->shape, sx, sizeof sx),
                          cq_shape_str(w->data->ndim, w->data->shape, sw, sizeof sw));
    int64_t rows = nin ? cq_var_numel(x) / nin : 0;
    if (!fits_blas(rows, nin, nout)) return cq_err_set(err, CQ_E_OVERFLOW, "cq_linear: dimensions exceed BLAS int range");
    int64_t shape[CQ_MAX_DIMS];
    memcpy(shape, x->data->shape, sizeof shape);
    shape[x->data->ndim - 1] = nout;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, shape, !b, &y, err));
    float *py = cq_var_f32(y);
    if (b)
        for (int64_t i = 0; i < rows; i++) memcpy(py + i * nout, cq_var_f32(b), sizeof(float) * (size_t)nout);
    cq__sgemm(false, true, rows, nout, nin, 1.0f, cq_var_f32(x), nin, cq_var_f32(w), nin, b ? 1.0f : 0.0f, py, nout);
    cq_var *ins[3] = {x, w, b};
    if ((s = cq_tape_record(t, y, ins, 3, linear_backward, NULL, 0, err))) return s;
    *out = y;
    return CQ_OK;
}

/* ---- matmul --------------------------------------------------------------------------------- */

typedef struct {
    int64_t batches, m, k, n;
    bool shared_b; /* b is 2-D: one GEMM over all rows of a */
} matmul_ctx;

static cq_status matmul_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                 cq_err *err) {
    CQ_UNUSED(n_in);
    const matmul_ctx *c = vctx;
    cq_var *a = in[0], *b = in[1];
    const float *gy = (const float *)out->grad->data, *pa = cq_var_f32(a), *pb = cq_var_f32(b);
    int64_t batches = c->shared_b ? 1 : c->batches, m = c->shared_b ? c->batches * c->m : c->m;
    if (a->requires_grad) {
        float *ga;
        CQ__TRY(cq__grad_of(t, a, &ga, err));
        for (int64_t i = 0; i < batches; i++)
            cq__sgemm(false, true, m, c->k, c->n, 1.0f, gy + i * m * c->n, c->n, pb + i * c->k * c->n, c->n, 1.0f,
                      ga + i * m * c->k, c->k);
    }
    if (b->requires_grad) {
        float *gb;
        CQ__TRY(cq__grad_of(t, b, &gb, err));
        for (int64_t i = 0; i < batches; i++)
            cq__sgemm(true, false, c->k, c->n, m, 1.0f, pa + i * m * c->k, c->k, gy + i * m * c->n, c->n, 1.0f,
                      gb + i * c->k * c->n, c->n);
    }
    return CQ_OK;
}

cq_status cq_var_matmul(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_var_matmul", "tape");
    cq_status s;
    if ((s = cq__check_var(a, "cq_var_matmul", "a", err)) || (s = cq__check_var(b, "cq_var_matmul", "b", err))) return s;
    const cq_tensor *ta = a->data, *tb = b->data;
    bool ok = ta->ndim >= 2 && tb->ndim >= 2 && ta->shape[ta->ndim - 1] == tb->shape[tb->ndim - 2];
    bool shared_b = tb->ndim == 2;
    if (ok && !shared_b) {
        ok = ta->ndim == tb->ndim;
        for (int i = 0; ok && i < ta->ndim - 2; i++) ok = ta->shape[i] == tb->shape[i];
    }
    char sa[96], sb[96];
    if (!ok)
        return cq_err_set(err, CQ_E_SHAPE, "cq_var_matmul: shapes %s and %s do not multiply ([..., M, K] @ [K, N] or [..., K, N])",
                          cq_shape_str(ta->ndim, ta->shape, sa, sizeof sa), cq_shape_str(tb->ndim, tb->shape, sb, sizeof sb));
    matmul_ctx c;
    c.m = ta->shape[ta->ndim - 2];
    c.k = ta->shape[ta->ndim - 1];
    c.n = tb->shape[tb->ndim - 1];
    c.batches = cq_shape_numel(ta->ndim - 2, ta->shape);
    c.shared_b = shared_b;
    if (!fits_blas(c.batches * c.m, c.k, c.n)) return cq_err_set(err, CQ_E_OVERFLOW, "cq_var_matmul: dimensions exceed BLAS int range");
    int64_t shape[CQ_MAX_DIMS];
    memcpy(shape, ta->shape, sizeof shape);
    shape[ta->ndim - 1] = c.n;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, ta->ndim, shape, false, &y, err));
    int64_t batches = shared_b ? 1 : c.batches, m = shared_b ? c.batches * c.m : c.m;
    for (int64_t i = 0; i < batches; i++)
        cq__sgemm(false, false, m, c.n, c.k, 1.0f, cq_var_f32(a) + i * m * c.k, c.k, cq_var_f32(b) + i * c.k * c.n, c.n,
                  0.0f, cq_var_f32(y) + i * m * c.n, c.n);
    cq_var *ins[2] = {a, b};
    if ((s = cq_tape_record(t, y, ins, 2, matmul_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}
