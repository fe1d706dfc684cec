/*
 * ops_norm.c - layer_norm, rms_norm and batch_norm2d, forward and backward. Statistics are
 * computed in double (two passes) and the per-row / per-channel mean and 1/std are kept on the
 * tape for backward. Affine weight and bias are optional (NULL means 1 and 0). The batch norm
 * running-stat update follows PyTorch: momentum-weighted, unbiased variance, in double.
 */
#include "nn/nn_internal.h"

/* Shared by the three norms: per group (a row or a channel), mean and 1/sqrt(var + eps). */
typedef struct {
    int64_t groups, group_len; /* layer/rms norm: rows x D; batch norm: channels x (N*HW) */
    const float *mean, *rstd;  /* on the tape */
    bool batch_stats;          /* batch norm: normalised with batch statistics (training) */
} norm_ctx;

/* Adds column sums of gy*xhat and gy into gw, gb (rows x d, row order, double). */
static cq_status add_affine_grads(cq_tape *t, cq_var *w, cq_var *b, const float *x, const float *gy,
                                  const norm_ctx *c, bool center, cq_err *err) {
    int64_t d = c->group_len;
    float *gw = NULL, *gb = NULL;
    if (w && w->requires_grad) CQ__TRY(cq__grad_of(t, w, &gw, err));
    if (b && b->requires_grad) CQ__TRY(cq__grad_of(t, b, &gb, err));
    if (!gw && !gb) return CQ_OK;
    double *acc = cq_tape_alloc(t, sizeof(double) * 2 * (size_t)d, err);
    if (!acc) return CQ_E_NOMEM;
    for (int64_t j = 0; j < 2 * d; j++) acc[j] = 0.0;
    for (int64_t r = 0; r < c->groups; r++) {
        const float *xr = x + r * d, *gr = gy + r * d;
        float mean = center ? c->mean[r] : 0.0f, rstd = c->rstd[r];
        for (int64_t j = 0; j < d; j++) {
            acc[j] += (double)gr[j] * ((xr[j] - mean) * rstd);
            acc[d + j] += gr[j];
        }
    }
    for (int64_t j = 0; j < d; j++) {
        if (gw) gw[j] += (float)acc[j];
        if (gb) gb[j] += (float)acc[d + j];
    }
    return CQ_OK;
}

/* Checks that an affine parameter has the normalised dims' shape (or is NULL). */
static cq_status check_affine(const char *op, const char *name, const cq_var *p, const cq_tensor *x, int n_dims,
                              cq_err *err) {
    if (!p) return CQ_OK;
    cq_status s = cq__check_var(p, op, name, err);
    if (s) return s;
    bool ok = p->data->ndim == n_dims;
    for (int i = 0; ok && i < n_dims; i++) ok = p->data->shape[i] == x->shape[x->ndim - n_dims + i];
    char sp[96], sx[96];
    if (!ok)
        return cq_err_set(err, CQ_E_SHAPE, "%s: %s %s does not match the last %d dims of input %s", op, name,
                          cq_shape_str(p->data->ndim, p->data->shape, sp, sizeof sp), n_dims,
                          cq_shape_str(x->ndim, x->shape, sx, sizeof sx));
    return CQ_OK;
}

/* Allocates the mean and rstd arrays on the tape. */
static cq_status stats_alloc(cq_tape *t, norm_ctx *c, float **mean, float **rstd, cq_err *err) {
    *mean = cq_tape_alloc(t, sizeof(float) * (size_t)(c->groups ? c->groups : 1), err);
    *rstd = *mean ? cq_tape_alloc(t, sizeof(float) * (size_t)(c->groups ? c->groups : 1), err) : NULL;
    c->mean = *mean;
    c->rstd = *rstd;
    return *rstd ? CQ_OK : CQ_E_NOMEM;
}

/* ---- layer norm ------------------------------------------------------------------------------- */

static cq_status layer_norm_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                     cq_err *err) {
    CQ_UNUSED(n_in);
    const norm_ctx *c = vctx;
    cq_var *x = in[0], *w = in[1], *b = in[2];
    const float *px = cq_var_f32(x), *gy = (const float *)out->grad->data, *pw = w ? cq_var_f32(w) : NULL;
    int64_t d = c->group_len;
    if (x->requires_grad) {
        float *gx;
        CQ__TRY(cq__grad_of(t, x, &gx, err));
        CQ__OMP_ROWS(c->groups * d)
        for (int64_t r = 0; r < c->groups; r++) {
            const float *xr = px + r * d, *gr = gy + r * d;
            float mean = c->mean[r], rstd = c->rstd[r];
            double sum_g = 0.0, sum_gx = 0.0;
            for (int64_t j = 0; j < d; j++) {
                float g = pw ? gr[j] * pw[j] : gr[j];
                sum_g += g;
                sum_gx += (double)g * ((xr[j] - mean) * rstd);
            }
            float mg = (float)(sum_g / (double)d), mgx = (float)(sum_gx / (double)d);
            for (int64_t j = 0; j < d; j++) {
                float g = pw ? gr[j] * pw[j] : gr[j];
                float xhat = (xr[j] - mean) * rstd;
                gx[r * d + j] += rstd * (g - mg - xhat * mgx);
            }
        }
    }
    return add_affine_grads(t, w, b, px, gy, c, true, err);
}

cq_status cq_layer_norm(cq_tape *t, cq_var *x, int n_norm_dims, cq_var *w, cq_var *b, float eps, cq_var **out,
                        cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    const char *op = "cq_layer_norm";
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, "x", err);
    if (s) return s;
    if (n_norm_dims < 1 || n_norm_dims > x->data->ndim)
        return cq_err_set(err, CQ_E_ARG, "%s: n_norm_dims %d outside 1..%d", op, n_norm_dims, x->data->ndim);
    if ((s = check_affine(op, "weight", w, x->data, n_norm_dims, err)) ||
        (s = check_affine(op, "bias", b, x->data, n_norm_dims, err)))
        return s;
    norm_ctx c = {0};
    c.group_len = cq_shape_numel(n_norm_dims, x->data->shape + x->data->ndim - n_norm_dims);
    c.groups = c.group_len ? cq_var_numel(x) / c.group_len : 0;
    float *mean, *rstd;
    if ((s = stats_alloc(t, &c, &mean, &rstd, err))) return s;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, x->data->shape, false, &y, err));
    const float *px = cq_var_f32(x), *pw = w ? cq_var_f32(w) : NULL, *pb = b ? cq_var_f32(b) : NULL;
    float *py = cq_var_f32(y);
    int64_t d = c.group_len;
    CQ__OMP_ROWS(c.groups * d)
    for (int64_t r = 0; r < c.groups; r++) {
        const float *xr = px + r * d;
        double sum = 0.0, sq = 0.0;
        for (int64_t j = 0; j < d; j++) sum += xr[j];
        double m = sum / (double)d;
        for (int64_t j = 0; j < d; j++) sq += (xr[j] - m) * (xr[j] - m);
        mean[r] = (float)m;
        rstd[r] = (float)(1.0 / sqrt(sq / (double)d + (double)eps));
        for (int64_t j = 0; j < d; j++) {
            float v = (xr[j] - mean[r]) * rstd[r];
            if (pw) v *= pw[j];
            if (pb) v += pb[j];
            py[r * d + j] = v;
        }
    }
    cq_var *ins[3] = {x, w, b};
    if ((s = cq_tape_record(t, y, ins, 3, layer_norm_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}

/* ---- RMS norm ---------------------------------------------------------------------------------- */

static cq_status rms_norm_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                   cq_err *err) {
    CQ_UNUSED(n_in);
    const norm_ctx *c = vctx;
    cq_var *x = in[0], *w = in[1];
    const float *px = cq_var_f32(x), *gy = (const float *)out->grad->data, *pw = w ? cq_var_f32(w) : NULL;
    int64_t d = c->group_len;
    if (x->requires_grad) {
        float *gx;
        CQ__TRY(cq__grad_of(t, x, &gx, err));
        CQ__OMP_ROWS(c->groups * d)
        for (int64_t r = 0; r < c->groups; r++) {
            const float *xr = px + r * d, *gr = gy + r * d;
            float rstd = c->rstd[r];
            double sum_gx = 0.0;
            for (int64_t j = 0; j < d; j++) sum_gx += (double)(pw ? gr[j] * pw[j] : gr[j]) * xr[j];
            /* d/dx_j of x_i r: r delta_ij - x_i r^3 x_j / d */
            float k = (float)(sum_gx / (double)d * (double)rstd * (double)rstd * (double)rstd);
            for (int64_t j = 0; j < d; j++) gx[r * d + j] += (pw ? gr[j] * pw[j] : gr[j]) * rstd - xr[j] * k;
        }
    }
    return add_affine_grads(t, w, NULL, px, gy, c, false, err);
}

cq_status cq_rms_norm(cq_tape *t, cq_var *x, cq_var *w, float eps, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    const char *op = "cq_rms_norm";
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, "x", err);
    if (s) return s;
    if (x->data->ndim < 1) return cq_err_set(err, CQ_E_SHAPE, "%s: input must have at least one dim", op);
    if ((s = check_affine(op, "weight", w, x->data, 1, err))) return s;
    norm_ctx c = {0};
    c.group_len = x->data->shape[x->data->ndim - 1];
    c.groups = c.group_len ? cq_var_numel(x) / c.group_len : 0;
    float *mean, *rstd;
    if ((s = stats_alloc(t, &c, &mean, &rstd, err))) return s;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, x->data->shape, false, &y, err));
    const float *px = cq_var_f32(x), *pw = w ? cq_var_f32(w) : NULL;
    float *py = cq_var_f32(y);
    int64_t d = c.group_len;
    CQ__OMP_ROWS(c.groups * d)
    for (int64_t r = 0; r < c.groups; r++) {
        const float *xr = px + r * d;
        double sq = 0.0;
        for (int64_t j = 0; j < d; j++) sq += (double)xr[j] * xr[j];
        mean[r] = 0.0f;
        rstd[r] = (float)(1.0 / sqrt(sq / (double)d + (double)eps));
        for (int64_t j = 0; j < d; j++) py[r * d + j] = pw ? (xr[j] * rstd[r]) * pw[j] : xr[j] * rstd[r];
    }
    cq_var *ins[2] = {x, w};
    if ((s = cq_tape_record(t, y, ins, 2, rms_norm_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}

/* ---- batch norm ---------------------------------------------------------------------------------- */

/* Batch norm works per channel over N x HW; the data is [N][C][HW], so channel c's elements
 * are the HW-long runs at (n*C + c)*HW. */
typedef struct {
    norm_ctx stats;
    int64_t n, c, hw;
} bn_ctx;

static cq_status batch_norm_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                     cq_err *err) {
    CQ_UNUSED(n_in);
    const bn_ctx *c = vctx;
    cq_var *x = in[0], *w = in[1], *b = in[2];
    const float *px = cq_var_f32(x), *gy = (const float *)out->grad->data, *pw = w ? cq_var_f32(w) : NULL;
    float *gx = NULL, *gw = NULL, *gb = NULL;
    if (x->requires_grad) CQ__TRY(cq__grad_of(t, x, &gx, err));
    if (w && w->requires_grad) CQ__TRY(cq__grad_of(t, w, &gw, err));
    if (b && b->requires_grad) CQ__TRY(cq__grad_of(t, b, &gb, err));
    double count = (double)(c->n * c->hw);
    CQ__OMP_ROWS(c->n * c->c * c->hw)
    for (int64_t ch = 0; ch < c->c; ch++) {
        float mean = c->stats.mean[ch], rstd = c->stats.rstd[ch], wc = pw ? pw[ch] : 1.0f;
        double sum_g = 0.0, sum_gxhat = 0.0;
        for (int64_t n = 0; n < c->n; n++) {
            const float *xr = px + (n * c->c + ch) * c->hw, *gr = gy + (n * c->c + ch) * c->hw;
            for (int64_t i = 0; i < c->hw; i++) {
                sum_g += gr[i];
                sum_gxhat += (double)gr[i] * ((xr[i] - mean) * rstd);
            }
        }
        if (gw) gw[ch] += (float)sum_gxhat;
        if (gb) gb[ch] += (float)sum_g;
        if (!gx) continue;
        /* With batch statistics the mean and variance depend on x too (the two extra terms). */
        float mg = c->stats.batch_stats ? (float)(sum_g / count) : 0.0f;
        float mgx = c->stats.batch_stats ? (float)(sum_gxhat / count) : 0.0f;
        for (int64_t n = 0; n < c->n; n++) {
            const float *xr = px + (n * c->c + ch) * c->hw, *gr = gy + (n * c->c + ch) * c->hw;
            float *gxr = gx + (n * c->c + ch) * c->hw;
            for (int64_t i = 0; i < c->hw; i++) {
                float xhat = (xr[i] - mean) * rstd;
                gxr[i] += wc * rstd * (gr[i] - mg - xhat * mgx);
            }
        }
    }
    return CQ_OK;
}

cq_status cq_batch_norm2d(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, cq_var *running_mean, cq_var *running_var,
                          bool training, float momentum, float eps, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    const char *op = "cq_batch_norm2d";
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, "x", err);
    if (s) return s;
    const cq_tensor *tx = x->data;
    char sx[96];
    if (tx->ndim != 4 && tx->ndim != 2)
        return cq_err_set(err, CQ_E_SHAPE, "%s: input %s must be [N, C, H, W] or [N, C]", op,
                          cq_shape_str(tx->ndim, tx->shape, sx, sizeof sx));
    bn_ctx c = {0};
    c.n = tx->shape[0];
    c.c = tx->shape[1];
    c.hw = tx->ndim == 4 ? tx->shape[2] * tx->shape[3] : 1;
    cq_var *per_channel[4] = {w, b, running_mean, running_var};
    const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        if (!per_channel[i]) continue;
        if ((s = cq__check_var(per_channel[i], op, names[i], err))) return s;
        if (cq_var_numel(per_channel[i]) != c.c || per_channel[i]->data->ndim != 1)
            return cq_err_set(err, CQ_E_SHAPE, "%s: %s %s does not match %lld channels", op, names[i],
                              cq_shape_str(per_channel[i]->data->ndim, per_channel[i]->data->shape, sx, sizeof sx),
                              (long long)c.c);
    }
    /* Without running stats PyTorch (track_running_stats=False) uses batch stats in eval too. */
    bool use_batch = training || !running_mean || !running_var;
    int64_t count = c.n * c.hw;
    if (use_batch && count <= 1)
        return cq_err_set(err, CQ_E_SHAPE, "%s: expected more than 1 value per channel when training, got input %s",
                          op, cq_shape_str(tx->ndim, tx->shape, sx, sizeof sx));
    c.stats.groups = c.c;
    c.stats.group_len = count;
    c.stats.batch_stats = use_batch;
    float *mean, *rstd;
    if ((s = stats_alloc(t, &c.stats, &mean, &rstd, err))) return s;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, tx->ndim, tx->shape, false, &y, err));
    const float *px = cq_var_f32(x), *pw = w ? cq_var_f32(w) : NULL, *pb = b ? cq_var_f32(b) : NULL;
    float *py = cq_var_f32(y);
    float *rm = running_mean ? cq_var_f32(running_mean) : NULL, *rv = running_var ? cq_var_f32(running_var) : NULL;
    CQ__OMP_ROWS(c.n * c.c * c.hw)
    for (int64_t ch = 0; ch < c.c; ch++) {
        if (use_batch) {
            double sum = 0.0, sq = 0.0;
            for (int64_t n = 0; n < c.n; n++)
                for (int64_t i = 0; i < c.hw; i++) sum += px[(n * c.c + ch) * c.hw + i];
            double m = sum / (double)count;
            for (int64_t n = 0; n < c.n; n++)
                for (int64_t i = 0; i < c.hw; i++) {
                    double dlt = px[(n * c.c + ch) * c.hw + i] - m;
                    sq += dlt * dlt;
                }
            mean[ch] = (float)m;
            rstd[ch] = (float)(1.0 / sqrt(sq / (double)count + (double)eps));
            if (training && rm && rv) {
                rm[ch] = (float)((double)momentum * m + (1.0 - (double)momentum) * rm[ch]);
                rv[ch] = (float)((double)momentum * (sq / (double)(count - 1)) + (1.0 - (double)momentum) * rv[ch]);
            }
        } else {
            mean[ch] = rm[ch];
            rstd[ch] = (float)(1.0 / sqrt((double)rv[ch] + (double)eps));
        }
        float wc = pw ? pw[ch] : 1.0f, bc = pb ? pb[ch] : 0.0f;
        for (int64_t n = 0; n < c.n; n++) {
            const float *xr = px + (n * c.c + ch) * c.hw;
            float *yr = py + (n * c.c + ch) * c.hw;
            for (int64_t i = 0; i < c.hw; i++) yr[i] = (xr[i] - mean[ch]) * rstd[ch] * wc + bc;
        }
    }
    cq_var *ins[3] = {x, w, b};
    if ((s = cq_tape_record(t, y, ins, 3, batch_norm_backward, &c, sizeof c, err))) return s;
    *out = y;
    return CQ_OK;
}
