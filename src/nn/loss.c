/*
 * loss.c - cross_entropy (log_softmax + nll fused) and nll_loss over [N, C] with PyTorch's
 * reduction='mean' and ignore_index=-100: the mean is over the rows whose target is not
 * ignored (no rows: NaN, as PyTorch). Sums run in double in row order.
 */
#include "nn/nn_internal.h"

enum { IGNORE_INDEX = -100 };

typedef struct {
    const int64_t *targets; /* on the tape */
    const float *log_probs; /* cross-entropy: log_softmax of the logits, on the tape */
    int64_t n, c, count;    /* count: rows not ignored */
} loss_ctx;

static cq_status loss_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                               cq_err *err) {
    CQ_UNUSED(n_in);
    const loss_ctx *c = vctx;
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    float g = ((const float *)out->grad->data)[0] / (float)c->count;
    for (int64_t i = 0; i < c->n; i++) {
        int64_t target = c->targets[i];
        if (target == IGNORE_INDEX) continue;
        float *row = gx + i * c->c;
        if (c->log_probs) /* d/dlogits of -log_softmax[target] = softmax - onehot */
            for (int64_t j = 0; j < c->c; j++) row[j] += g * expf(c->log_probs[i * c->c + j]);
        row[target] -= g;
    }
    return CQ_OK;
}

static cq_status loss_forward(cq_tape *t, cq_var *x, const int64_t *targets, bool from_logits, cq_var **out,
                              cq_err *err) {
    const char *op = from_logits ? "cq_cross_entropy" : "cq_nll_loss";
    CQ__NEED(out, op, "out");
    *out = NULL;
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, from_logits ? "logits" : "log_probs", err);
    if (s) return s;
    char sx[96];
    if (x->data->ndim != 2)
        return cq_err_set(err, CQ_E_SHAPE, "%s: input %s must be [N, C]", op,
                          cq_shape_str(x->data->ndim, x->data->shape, sx, sizeof sx));
    loss_ctx c = {NULL, NULL, x->data->shape[0], x->data->shape[1], 0};
    if (c.n > 0 && !targets) return cq_err_set(err, CQ_E_ARG, "%s: targets is NULL", op);
    for (int64_t i = 0; i < c.n; i++) {
        if (targets[i] == IGNORE_INDEX) continue;
        if (targets[i] < 0 || targets[i] >= c.c)
            return cq_err_set(err, CQ_E_ARG, "%s: target %lld of row %lld outside [0, %lld)", op,
                              (long long)targets[i], (long long)i, (long long)c.c);
        c.count++;
    }
    const float *logp = cq_var_f32(x);
    if (from_logits) {
        float *lp = cq_tape_alloc(t, sizeof(float) * (size_t)(c.n * c.c + 1), err);
        if (!lp) return CQ_E_NOMEM;
        CQ__OMP_ROWS(c.n * c.c)
        for (int64_t i = 0; i < c.n; i++) cq__softmax_row(logp + i * c.c, lp + i * c.c, c.c, true);
        logp = c.log_probs = lp;
    }
    double sum = 0.0;
    for (int64_t i = 0; i < c.n; i++)
        if (targets[i] != IGNORE_INDEX) sum -= logp[i * c.c + targets[i]];
    cq_var *y;
    CQ__TRY(cq__tape_var(t, 0, NULL, false, &y, err));
    cq_var_f32(y)[0] = (float)(sum / (double)c.count);
    if (cq__tape_wants_grad(t, &x, 1)) {
        int64_t *copy = cq_tape_alloc(t, sizeof(int64_t) * (size_t)(c.n + 1), err);
        if (!copy) return CQ_E_NOMEM;
        if (c.n) memcpy(copy, targets, sizeof(int64_t) * (size_t)c.n);
        c.targets = copy;
    }
    if ((s = cq_tape_record(t, y, &x, 1, loss_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}

cq_status cq_cross_entropy(cq_tape *t, cq_var *logits, const int64_t *targets, cq_var **out, cq_err *err) {
    return loss_forward(t, logits, targets, true, out, err);
}

cq_status cq_nll_loss(cq_tape *t, cq_var *log_probs, const int64_t *targets, cq_var **out, cq_err *err) {
    return loss_forward(t, log_probs, targets, false, out, err);
}
