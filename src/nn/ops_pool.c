/*
 * ops_pool.c - max_pool2d, avg_pool2d and adaptive_avg_pool2d on [N, C, H, W], forward and
 * backward, with PyTorch's output-size rule (floor or ceil mode), its window clipping and
 * divisors (count_include_pad), and its tie rule for max (the first maximum wins; NaN wins).
 * Work is split by (n, c) planes, so each gradient element is summed in one fixed order.
 */
#include "nn/nn_internal.h"

cq_pool2d_opts cq_pool2d_default_opts(int64_t k) {
    cq_pool2d_opts o = {{k, k}, {k, k}, {0, 0}, {1, 1}, false, true};
    return o;
}

typedef enum { POOL_MAX, POOL_AVG, POOL_ADAPTIVE } pool_kind;

typedef struct {
    pool_kind kind;
    int64_t planes, h, w, oh, ow;
    int64_t k[2], s[2], p[2], d[2];
    bool count_include_pad;
    const int32_t *argmax; /* max pool: index within the input plane per output, on the tape */
} pool_ctx;

/* PyTorch's pooling_output_shape. */
static int64_t pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int64_t out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) out--;
    return out;
}

/* Averaging window of output (i, j): rows [*h0, *h1), cols [*w0, *w1), and its divisor. */
static void avg_window(const pool_ctx *c, int64_t i, int64_t j, int64_t *h0, int64_t *h1, int64_t *w0, int64_t *w1,
                       float *divisor) {
    if (c->kind == POOL_ADAPTIVE) {
        *h0 = i * c->h / c->oh, *h1 = ((i + 1) * c->h + c->oh - 1) / c->oh;
        *w0 = j * c->w / c->ow, *w1 = ((j + 1) * c->w + c->ow - 1) / c->ow;
        *divisor = (float)((*h1 - *h0) * (*w1 - *w0));
        return;
    }
    int64_t hs = i * c->s[0] - c->p[0], ws = j * c->s[1] - c->p[1];
    int64_t he = hs + c->k[0] < c->h + c->p[0] ? hs + c->k[0] : c->h + c->p[0];
    int64_t we = ws + c->k[1] < c->w + c->p[1] ? ws + c->k[1] : c->w + c->p[1];
    int64_t pool_size = (he - hs) * (we - ws);
    *h0 = hs > 0 ? hs : 0, *w0 = ws > 0 ? ws : 0;
    *h1 = he < c->h ? he : c->h, *w1 = we < c->w ? we : c->w;
    *divisor = (float)(c->count_include_pad ? pool_size : (*h1 - *h0) * (*w1 - *w0));
}

static cq_status pool_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                               cq_err *err) {
    CQ_UNUSED(n_in);
    const pool_ctx *c = vctx;
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    const float *gy = (const float *)out->grad->data;
    int64_t in_plane = c->h * c->w, out_plane = c->oh * c->ow;
    CQ__OMP_ROWS(c->planes * in_plane)
    for (int64_t pl = 0; pl < c->planes; pl++) {
        float *gxp = gx + pl * in_plane;
        const float *gyp = gy + pl * out_plane;
        if (c->kind == POOL_MAX) {
            const int32_t *am = c->argmax + pl * out_plane;
            for (int64_t o = 0; o < out_plane; o++) gxp[am[o]] += gyp[o];
            continue;
        }
        for (int64_t i = 0; i < c->oh; i++)
            for (int64_t j = 0; j < c->ow; j++) {
                int64_t h0, h1, w0, w1;
                float divisor;
                avg_window(c, i, j, &h0, &h1, &w0, &w1, &divisor);
                if (h0 >= h1 || w0 >= w1) continue;
                float g = gyp[i * c->ow + j] / divisor;
                for (int64_t h = h0; h < h1; h++)
                    for (int64_t w = w0; w < w1; w++) gxp[h * c->w + w] += g;
            }
    }
    return CQ_OK;
}

/* Kernel taps t in [*lo, *hi) whose position start + t*d lies inside [0, n). */
static void kernel_range(int64_t start, int64_t k, int64_t d, int64_t n, int64_t *lo, int64_t *hi) {
    *lo = start >= 0 ? 0 : (-start + d - 1) / d;
    int64_t inside = n - start <= 0 ? 0 : (n - start + d - 1) / d;
    *hi = inside < k ? inside : k;
    if (*hi < *lo) *hi = *lo;
}

static void max_pool_plane(const pool_ctx *c, const float *xp, float *yp, int32_t *am) {
    for (int64_t i = 0; i < c->oh; i++) {
        int64_t hs = i * c->s[0] - c->p[0], a0, a1;
        kernel_range(hs, c->k[0], c->d[0], c->h, &a0, &a1);
        for (int64_t j = 0; j < c->ow; j++) {
            int64_t ws = j * c->s[1] - c->p[1], b0, b1;
            kernel_range(ws, c->k[1], c->d[1], c->w, &b0, &b1);
            /* PyTorch: start at -inf on the first tap; a later tap wins if greater or NaN */
            float best = -INFINITY;
            int64_t best_idx = (a0 < a1 && b0 < b1) ? (hs + a0 * c->d[0]) * c->w + ws + b0 * c->d[1] : 0;
            for (int64_t ki = a0; ki < a1; ki++) {
                int64_t row = (hs + ki * c->d[0]) * c->w;
                for (int64_t kj = b0; kj < b1; kj++) {
                    int64_t idx = row + ws + kj * c->d[1];
                    float v = xp[idx];
                    if (v > best || isnan(v)) {
                        best = v;
                        best_idx = idx;
                    }
                }
            }
            yp[i * c->ow + j] = best;
            am[i * c->ow + j] = (int32_t)best_idx;
        }
    }
}

static void avg_pool_plane(const pool_ctx *c, const float *xp, float *yp) {
    for (int64_t i = 0; i < c->oh; i++)
        for (int64_t j = 0; j < c->ow; j++) {
            int64_t h0, h1, w0, w1;
            float divisor;
            avg_window(c, i, j, &h0, &h1, &w0, &w1, &divisor);
            double sum = 0.0;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) sum += xp[h * c->w + w];
            yp[i * c->ow + j] = (h0 >= h1 || w0 >= w1) ? 0.0f : (float)(sum / divisor);
        }
}

static cq_status pool_forward(cq_tape *t, cq_var *x, pool_ctx *c, const char *op, cq_var **out, cq_err *err) {
    cq_status s;
    const cq_tensor *tx = x->data;
    int64_t shape[4] = {tx->shape[0], tx->shape[1], c->oh, c->ow};
    cq_var *y;
    CQ__TRY(cq__tape_var(t, 4, shape, false, &y, err));
    int64_t in_plane = c->h * c->w, out_plane = c->oh * c->ow;
    int32_t *argmax = NULL;
    if (c->kind == POOL_MAX) {
        if (in_plane > INT32_MAX) return cq_err_set(err, CQ_E_OVERFLOW, "%s: input plane too large", op);
        argmax = cq_tape_alloc(t, sizeof(int32_t) * (size_t)(c->planes * out_plane + 1), err);
        if (!argmax) return CQ_E_NOMEM;
    }
    const float *px = cq_var_f32(x);
    float *py = cq_var_f32(y);
    CQ__OMP_ROWS(c->planes * in_plane)
    for (int64_t pl = 0; pl < c->planes; pl++) {
        if (c->kind == POOL_MAX) max_pool_plane(c, px + pl * in_plane, py + pl * out_plane, argmax + pl * out_plane);
        else avg_pool_plane(c, px + pl * in_plane, py + pl * out_plane);
    }
    c->argmax = argmax;
    if ((s = cq_tape_record(t, y, &x, 1, pool_backward, c, sizeof *c, err))) return s;
    *out = y;
    return CQ_OK;
}

static cq_status pool_input(cq_tape *t, cq_var *x, const char *op, pool_ctx *c, cq_err *err) {
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, "x", err);
    if (s) return s;
    char sx[96];
    if (x->data->ndim != 4)
        return cq_err_set(err, CQ_E_SHAPE, "%s: input %s must be [N, C, H, W]", op,
                          cq_shape_str(x->data->ndim, x->data->shape, sx, sizeof sx));
    c->planes = x->data->shape[0] * x->data->shape[1];
    c->h = x->data->shape[2];
    c->w = x->data->shape[3];
    return CQ_OK;
}

static cq_status windowed_pool(cq_tape *t, cq_var *x, const cq_pool2d_opts *o, pool_kind kind, cq_var **out,
                               cq_err *err) {
    const char *op = kind == POOL_MAX ? "cq_max_pool2d" : "cq_avg_pool2d";
    CQ__NEED(out, op, "out");
    *out = NULL;
    CQ__NEED(o, op, "opts");
    pool_ctx c = {0};
    c.kind = kind;
    cq_status s = pool_input(t, x, op, &c, err);
    if (s) return s;
    int64_t dims[2] = {c.h, c.w}, outs[2];
    for (int i = 0; i < 2; i++) {
        c.k[i] = o->kernel[i];
        c.s[i] = o->stride[i] ? o->stride[i] : o->kernel[i];
        c.p[i] = o->padding[i];
        c.d[i] = o->dilation[i];
        if (c.k[i] < 1 || c.s[i] < 1 || c.d[i] < 1 || c.p[i] < 0)
            return cq_err_set(err, CQ_E_ARG, "%s: kernel, stride and dilation must be >= 1 and padding >= 0", op);
        if (kind == POOL_AVG && c.d[i] != 1) return cq_err_set(err, CQ_E_ARG, "%s: dilation must be 1", op);
        /* PyTorch: pad should be at most half of the effective kernel size */
        if (c.p[i] > ((c.k[i] - 1) * c.d[i] + 1) / 2)
            return cq_err_set(err, CQ_E_ARG, "%s: padding %lld is more than half of the kernel", op, (long long)c.p[i]);
        outs[i] = pooled_size(dims[i], c.k[i], c.p[i], c.s[i], c.d[i], o->ceil_mode);
        if (outs[i] < 1)
            return cq_err_set(err, CQ_E_SHAPE, "%s: the kernel does not fit the input (output size %lld)", op,
                              (long long)outs[i]);
    }
    c.oh = outs[0];
    c.ow = outs[1];
    c.count_include_pad = o->count_include_pad;
    return pool_forward(t, x, &c, op, out, err);
}

cq_status cq_max_pool2d(cq_tape *t, cq_var *x, const cq_pool2d_opts *opts, cq_var **out, cq_err *err) {
    return windowed_pool(t, x, opts, POOL_MAX, out, err);
}

cq_status cq_avg_pool2d(cq_tape *t, cq_var *x, const cq_pool2d_opts *opts, cq_var **out, cq_err *err) {
    return windowed_pool(t, x, opts, POOL_AVG, out, err);
}

cq_status cq_adaptive_avg_pool2d(cq_tape *t, cq_var *x, int64_t out_h, int64_t out_w, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    const char *op = "cq_adaptive_avg_pool2d";
    pool_ctx c = {0};
    c.kind = POOL_ADAPTIVE;
    cq_status s = pool_input(t, x, op, &c, err);
    if (s) return s;
    if (out_h < 1 || out_w < 1)
        return cq_err_set(err, CQ_E_ARG, "%s: output size %lldx%lld must be positive", op, (long long)out_h,
                          (long long)out_w);
    c.oh = out_h;
    c.ow = out_w;
    return pool_forward(t, x, &c, op, out, err);
}
