/*
 * ops_act.c - activations and dropout, forward and backward: relu, gelu (exact erf form and
 * the tanh approximation, with PyTorch's formulas and constants), silu, softmax and
 * log_softmax over the last dim, and dropout with a caller-seeded mask. Row-wise reductions
 * accumulate in double.
 */
#include "nn/nn_internal.h"

/* ---- pointwise activations -------------------------------------------------------------------- */

typedef enum { ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SILU } act_kind;
typedef struct {
    act_kind kind;
} act_ctx;

static const float kGeluBeta = (float)(M_SQRT2 * M_2_SQRTPI * 0.5); /* sqrt(2/pi) */
static const float kGeluKappa = 0.044715f;
static const float kGeluPdf = (float)(M_2_SQRTPI * M_SQRT1_2 * 0.5); /* 1/sqrt(2 pi) */

static float act_value(act_kind k, float x) {
    switch (k) {
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ACT_GELU: return x * 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
    case ACT_GELU_TANH: {
        float inner = kGeluBeta * (x + kGeluKappa * (x * x * x));
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    case ACT_SILU: return x / (1.0f + expf(-x));
    }
    return 0.0f;
}

/* d act / dx at x (relu: 0 at 0, as PyTorch's threshold backward). */
static float act_slope(act_kind k, float x) {
    switch (k) {
    case ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
        float pdf = expf(-0.5f * x * x) * kGeluPdf;
        return cdf + x * pdf;
    }
    case ACT_GELU_TANH: {
        float x_sq = x * x;
        float inner = kGeluBeta * (x + kGeluKappa * (x_sq * x));
        float th = tanhf(inner);
        float left = 0.5f * x, right = 1.0f + th;
        return 0.5f * right + left * (1.0f - th * th) * kGeluBeta * (1.0f + 3.0f * kGeluKappa * x_sq);
    }
    case ACT_SILU: {
        float sig = 1.0f / (1.0f + expf(-x));
        return sig * (1.0f + x * (1.0f - sig));
    }
    }
    return 0.0f;
}

static cq_status act_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                              cq_err *err) {
    CQ_UNUSED(n_in);
    act_kind k = ((const act_ctx *)vctx)->kind;
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    const float *px = cq_var_f32(in[0]), *gy = (const float *)out->grad->data;
    int64_t n = cq_var_numel(out);
    CQ__OMP_ROWS(n)
    for (int64_t i = 0; i < n; i++) gx[i] += gy[i] * act_slope(k, px[i]);
    return CQ_OK;
}

static cq_status act_forward(cq_tape *t, cq_var *x, act_kind k, const char *op, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, "x", err);
    if (s) return s;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, x->data->shape, false, &y, err));
    const float *px = cq_var_f32(x);
    float *py = cq_var_f32(y);
    int64_t n = cq_var_numel(x);
    CQ__OMP_ROWS(n)
    for (int64_t i = 0; i < n; i++) py[i] = act_value(k, px[i]);
    act_ctx ctx = {k};
    if ((s = cq_tape_record(t, y, &x, 1, act_backward, &ctx, sizeof ctx, err))) return s;
    *out = y;
    return CQ_OK;
}

cq_status cq_relu(cq_tape *t, cq_var *x, cq_var **out, cq_err *err) { return act_forward(t, x, ACT_RELU, "cq_relu", out, err); }
cq_status cq_gelu(cq_tape *t, cq_var *x, bool tanh_approx, cq_var **out, cq_err *err) {
    return act_forward(t, x, tanh_approx ? ACT_GELU_TANH : ACT_GELU, "cq_gelu", out, err);
}
cq_status cq_silu(cq_tape *t, cq_var *x, cq_var **out, cq_err *err) { return act_forward(t, x, ACT_SILU, "cq_silu", out, err); }

/* ---- softmax and log_softmax over the last dim ------------------------------------------------- */

typedef struct {
    bool log;
    int64_t rows, d;
} softmax_ctx;

/* Also used by loss.c's cross-entropy. log: y = x - max - log(sum exp(x - max)). */
void cq__softmax_row(const float *x, float *y, int64_t d, bool log_out) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < d; j++)
        if (x[j] > mx || isnan(x[j])) mx = x[j];
    double sum = 0.0;
    for (int64_t j = 0; j < d; j++) sum += expf(x[j] - mx);
    if (log_out) {
        float lse = (float)log(sum);
        for (int64_t j = 0; j < d; j++) y[j] = x[j] - mx - lse;
    } else {
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < d; j++) y[j] = expf(x[j] - mx) * inv;
    }
}

static cq_status softmax_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                  cq_err *err) {
    CQ_UNUSED(n_in);
    const softmax_ctx *c = vctx;
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    const float *py = cq_var_f32(out), *gy = (const float *)out->grad->data;
    CQ__OMP_ROWS(c->rows * c->d)
    for (int64_t r = 0; r < c->rows; r++) {
        const float *yr = py + r * c->d, *gr = gy + r * c->d;
        float *gxr = gx + r * c->d;
        double acc = 0.0;
        if (c->log) {
            for (int64_t j = 0; j < c->d; j++) acc += gr[j];
            for (int64_t j = 0; j < c->d; j++) gxr[j] += gr[j] - expf(yr[j]) * (float)acc;
        } else {
            for (int64_t j = 0; j < c->d; j++) acc += (double)gr[j] * yr[j];
            for (int64_t j = 0; j < c->d; j++) gxr[j] += yr[j] * (gr[j] - (float)acc);
        }
    }
    return CQ_OK;
}

static cq_status softmax_forward(cq_tape *t, cq_var *x, bool log_out, cq_var **out, cq_err *err) {
    const char *op = log_out ? "cq_log_softmax" : "cq_softmax";
    CQ__NEED(out, op, "out");
    *out = NULL;
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, "x", err);
    if (s) return s;
    if (x->data->ndim < 1) return cq_err_set(err, CQ_E_SHAPE, "%s: input must have at least one dim", op);
    softmax_ctx c = {log_out, 0, x->data->shape[x->data->ndim - 1]};
    c.rows = c.d ? cq_var_numel(x) / c.d : 0;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, x->data->shape, false, &y, err));
    const float *px = cq_var_f32(x);
    float *py = cq_var_f32(y);
    CQ__OMP_ROWS(c.rows * c.d)
    for (int64_t r = 0; r < c.rows; r++) cq__softmax_row(px + r * c.d, py + r * c.d, c.d, log_out);
    if ((s = cq_tape_record(t, y, &x, 1, softmax_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}

cq_status cq_softmax(cq_tape *t, cq_var *x, cq_var **out, cq_err *err) { return softmax_forward(t, x, false, out, err); }
cq_status cq_log_softmax(cq_tape *t, cq_var *x, cq_var **out, cq_err *err) { return softmax_forward(t, x, true, out, err); }

/* ---- dropout ------------------------------------------------------------------------------------ */

typedef struct {
    const float *mask; /* 0 or 1/(1-p) per element, on the tape */
} dropout_ctx;

static cq_status dropout_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                  cq_err *err) {
    CQ_UNUSED(n_in);
    const float *mask = ((const dropout_ctx *)vctx)->mask;
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    const float *gy = (const float *)out->grad->data;
    int64_t n = cq_var_numel(out);
    for (int64_t i = 0; i < n; i++) gx[i] += mask ? gy[i] * mask[i] : gy[i];
    return CQ_OK;
}

cq_status cq_dropout(cq_tape *t, cq_var *x, float p, bool training, uint64_t *rng_state, cq_var **out,
                     cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_dropout", "tape");
    cq_status s = cq__check_var(x, "cq_dropout", "x", err);
    if (s) return s;
    if (!(p >= 0.0f && p <= 1.0f)) return cq_err_set(err, CQ_E_ARG, "cq_dropout: p = %g outside [0, 1]", (double)p);
    bool active = training && p > 0.0f;
    if (active && !rng_state) return cq_err_set(err, CQ_E_ARG, "cq_dropout: training needs rng_state");
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, x->data->shape, false, &y, err));
    int64_t n = cq_var_numel(x);
    const float *px = cq_var_f32(x);
    float *py = cq_var_f32(y);
    dropout_ctx c = {NULL};
    if (active) {
        float *mask = cq_tape_alloc(t, sizeof(float) * (size_t)(n ? n : 1), err);
        if (!mask) return CQ_E_NOMEM;
        float keep_scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
        for (int64_t i = 0; i < n; i++) mask[i] = cq__rng_uniform(rng_state) < p ? 0.0f : keep_scale;
        for (int64_t i = 0; i < n; i++) py[i] = px[i] * mask[i];
        c.mask = mask;
    } else {
        memcpy(py, px, sizeof(float) * (size_t)n);
    }
    if ((s = cq_tape_record(t, y, &x, 1, dropout_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}
