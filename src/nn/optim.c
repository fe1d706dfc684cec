/*
 * optim.c - SGD (momentum, dampening, nesterov, weight decay), Adam, AdamW (amsgrad optional)
 * and Adadelta with PyTorch's single-tensor update rules (torch.optim, 2.x): the same
 * sequence of tensor operations, each rounded to f32, with the scalar expressions (1 - beta2,
 * lr / bias_correction1, ...) formed in double as Python does and rounded to f32 where they
 * meet a tensor. PyTorch's vectorized CPU kernels fuse some multiply-adds; we do not, so
 * results agree to a few ulps rather than bit for bit (tests/test_optim.c states the bound).
 * Per-parameter state is created at a parameter's first step with a gradient, as in PyTorch.
 */
#include "nn/nn_internal.h"

typedef struct {
    float *buf1, *buf2, *buf3; /* SGD: momentum; Adam: exp_avg, exp_avg_sq, max_exp_avg_sq;
                                  Adadelta: square_avg, acc_delta */
    int64_t step;
    bool started;
} param_state;

struct cq_optim {
    cq_optim_opts o;
    int n;
    cq_var **params;
    param_state *state;
};

cq_optim_opts cq_optim_default_opts(cq_optim_kind kind) {
    cq_optim_opts o;
    memset(&o, 0, sizeof o);
    o.kind = kind;
    o.lr = 1e-3;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    if (kind == CQ_OPTIM_ADAMW) o.weight_decay = 1e-2;
    if (kind == CQ_OPTIM_ADADELTA) {
        o.lr = 1.0;
        o.rho = 0.9;
        o.eps = 1e-6;
    }
    return o;
}

static cq_status check_opts(const cq_optim_opts *o, cq_err *err) {
    if (o->kind < CQ_OPTIM_SGD || o->kind > CQ_OPTIM_ADADELTA)
        return cq_err_set(err, CQ_E_ARG, "cq_optim_new: unknown optimizer kind %d", (int)o->kind);
    if (!(o->lr >= 0.0)) return cq_err_set(err, CQ_E_ARG, "cq_optim_new: invalid learning rate %g", o->lr);
    if (!(o->weight_decay >= 0.0))
        return cq_err_set(err, CQ_E_ARG, "cq_optim_new: invalid weight_decay %g", o->weight_decay);
    switch (o->kind) {
    case CQ_OPTIM_SGD:
        if (!(o->momentum >= 0.0)) return cq_err_set(err, CQ_E_ARG, "cq_optim_new: invalid momentum %g", o->momentum);
        if (o->nesterov && (o->momentum <= 0.0 || o->dampening != 0.0))
            return cq_err_set(err, CQ_E_ARG, "cq_optim_new: nesterov needs a momentum and zero dampening");
        break;
    case CQ_OPTIM_ADAM:
    case CQ_OPTIM_ADAMW:
        if (!(o->eps >= 0.0)) return cq_err_set(err, CQ_E_ARG, "cq_optim_new: invalid eps %g", o->eps);
        if (!(o->beta1 >= 0.0 && o->beta1 < 1.0) || !(o->beta2 >= 0.0 && o->beta2 < 1.0))
            return cq_err_set(err, CQ_E_ARG, "cq_optim_new: betas (%g, %g) must be in [0, 1)", o->beta1, o->beta2);
        break;
    case CQ_OPTIM_ADADELTA:
        if (!(o->eps >= 0.0)) return cq_err_set(err, CQ_E_ARG, "cq_optim_new: invalid eps %g", o->eps);
        if (!(o->rho >= 0.0 && o->rho <= 1.0)) return cq_err_set(err, CQ_E_ARG, "cq_optim_new: rho %g outside [0, 1]", o->rho);
        break;
    }
    return CQ_OK;
}

cq_status cq_optim_new(cq_optim **out, const cq_optim_opts *opts, cq_var *const *params, int n, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(opts, "cq_optim_new", "opts");
    if (n < 0 || (n > 0 && !params)) return cq_err_set(err, CQ_E_ARG, "cq_optim_new: params is NULL");
    cq_status s = check_opts(opts, err);
    if (s) return s;
    for (int i = 0; i < n; i++) {
        if ((s = cq__check_var(params[i], "cq_optim_new", "a parameter", err))) return s;
        if (params[i]->on_tape)
            return cq_err_set(err, CQ_E_ARG, "cq_optim_new: parameter %d is a tape intermediate, not a long-lived var", i);
    }
    cq_optim *o = cq__calloc(1, sizeof *o, err, "an optimizer");
    if (!o) return CQ_E_NOMEM;
    o->o = *opts;
    o->n = n;
    o->params = cq__calloc((size_t)(n ? n : 1), sizeof *o->params, err, "optimizer parameters");
    o->state = cq__calloc((size_t)(n ? n : 1), sizeof *o->state, err, "optimizer state");
    if (!o->params || !o->state) {
        cq_optim_free(o);
        return CQ_E_NOMEM;
    }
    for (int i = 0; i < n; i++) o->params[i] = params[i];
    *out = o;
    return CQ_OK;
}

void cq_optim_free(cq_optim *o) {
    if (!o) return;
    for (int i = 0; o->state && i < o->n; i++) {
        cq_aligned_free(o->state[i].buf1);
        cq_aligned_free(o->state[i].buf2);
        cq_aligned_free(o->state[i].buf3);
    }
    free(o->state);
    free(o->params);
    free(o);
}

void cq_optim_zero_grad(cq_optim *o) {
    for (int i = 0; o && i < o->n; i++) cq_var_zero_grad(o->params[i]);
}

void cq_optim_set_lr(cq_optim *o, double lr) {
    if (o) o->o.lr = lr;
}

static float *zeros(int64_t n) {
    float *p = cq_aligned_alloc(sizeof(float) * (size_t)(n ? n : 1));
    if (p) memset(p, 0, sizeof(float) * (size_t)n);
    return p;
}

/* First step of a parameter: allocate its state (zeros; SGD's buffer is filled at use). */
static cq_status start_state(const cq_optim_opts *o, param_state *st, int64_t n, cq_err *err) {
    int buffers = o->kind == CQ_OPTIM_SGD ? (o->momentum != 0.0) : o->kind == CQ_OPTIM_ADADELTA ? 2 : (o->amsgrad ? 3 : 2);
    float **bufs[3] = {&st->buf1, &st->buf2, &st->buf3};
    for (int b = 0; b < buffers; b++)
        if (!(*bufs[b] = zeros(n))) return cq_err_set(err, CQ_E_NOMEM, "cq_optim_step: out of memory for optimizer state");
    st->started = true;
    return CQ_OK;
}

static void sgd_update(const cq_optim_opts *o, param_state *st, float *p, const float *grad, int64_t n, bool first) {
    const float wd = (float)o->weight_decay, mom = (float)o->momentum, damp1 = (float)(1.0 - o->dampening);
    const float neg_lr = (float)(-o->lr);
    float *buf = st->buf1;
    CQ__OMP_ROWS(n)
    for (int64_t i = 0; i < n; i++) {
        float g = o->maximize ? -grad[i] : grad[i];
        if (o->weight_decay != 0.0) g = g + wd * p[i];
        if (o->momentum != 0.0) {
            buf[i] = first ? g : buf[i] * mom + damp1 * g; /* buf.mul_(momentum).add_(g, alpha=1-dampening) */
            g = o->nesterov ? g + mom * buf[i] : buf[i];
        }
        p[i] = p[i] + neg_lr * g;
    }
}

static void adam_update(const cq_optim_opts *o, param_state *st, float *p, const float *grad, int64_t n) {
    const bool decoupled = o->kind == CQ_OPTIM_ADAMW;
    const double step = (double)st->step;
    const double bias_correction1 = 1.0 - pow(o->beta1, step);
    const double bias_correction2 = 1.0 - pow(o->beta2, step);
    const float neg_step_size = (float)(-(o->lr / bias_correction1));
    const float bc2_sqrt = (float)sqrt(bias_correction2);
    const float w1 = (float)(1.0 - o->beta1), beta2 = (float)o->beta2, w2 = (float)(1.0 - o->beta2);
    const float wd = (float)o->weight_decay, decay = (float)(1.0 - o->lr * o->weight_decay), eps = (float)o->eps;
    float *m = st->buf1, *v = st->buf2, *vmax = st->buf3;
    CQ__OMP_ROWS(n)
    for (int64_t i = 0; i < n; i++) {
        float g = o->maximize ? -grad[i] : grad[i];
        if (decoupled) p[i] = p[i] * decay;                        /* param.mul_(1 - lr * wd) */
        else if (o->weight_decay != 0.0) g = g + wd * p[i];         /* grad.add(param, alpha=wd) */
        m[i] = w1 < 0.5f ? m[i] + w1 * (g - m[i]) : g - (g - m[i]) * (1.0f - w1); /* lerp_(g, 1-beta1) */
        v[i] = v[i] * beta2 + w2 * g * g;                           /* mul_(beta2).addcmul_(g, g, 1-beta2) */
        float vhat = v[i];
        if (o->amsgrad) vhat = vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];
        float denom = sqrtf(vhat) / bc2_sqrt + eps;
        p[i] = p[i] + neg_step_size * m[i] / denom;                  /* addcdiv_(m, denom, -step_size) */
    }
}

static void adadelta_update(const cq_optim_opts *o, param_state *st, float *p, const float *grad, int64_t n) {
    const float rho = (float)o->rho, w = (float)(1.0 - o->rho), eps = (float)o->eps;
    const float wd = (float)o->weight_decay, neg_lr = (float)(-o->lr);
    float *square_avg = st->buf1, *acc_delta = st->buf2;
    CQ__OMP_ROWS(n)
    for (int64_t i = 0; i < n; i++) {
        float g = o->maximize ? -grad[i] : grad[i];
        if (o->weight_decay != 0.0) g = g + wd * p[i];
        square_avg[i] = square_avg[i] * rho + w * g * g;
        float std = sqrtf(square_avg[i] + eps);
        float delta = sqrtf(acc_delta[i] + eps) / std * g;
        acc_delta[i] = acc_delta[i] * rho + w * delta * delta;
        p[i] = p[i] + neg_lr * delta;
    }
}

cq_status cq_optim_step(cq_optim *o, cq_err *err) {
    CQ__NEED(o, "cq_optim_step", "optimizer");
    for (int i = 0; i < o->n; i++) {
        cq_var *pv = o->params[i];
        if (!pv->grad) continue; /* PyTorch skips params whose .grad is None */
        int64_t n = cq_var_numel(pv);
        param_state *st = &o->state[i];
        bool first = !st->started;
        if (first) {
            cq_status s = start_state(&o->o, st, n, err);
            if (s) return s;
        }
        st->step++;
        float *p = cq_var_f32(pv);
        const float *g = (const float *)pv->grad->data;
        switch (o->o.kind) {
        case CQ_OPTIM_SGD: sgd_update(&o->o, st, p, g, n, first); break;
        case CQ_OPTIM_ADAM:
        case CQ_OPTIM_ADAMW: adam_update(&o->o, st, p, g, n); break;
        case CQ_OPTIM_ADADELTA: adadelta_update(&o->o, st, p, g, n); break;
        }
    }
    return CQ_OK;
}
