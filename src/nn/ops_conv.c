/*
 * ops_conv.c - conv2d forward and backward as im2col + sgemm, per image and group, with
 * stride, zero padding, dilation and groups as in PyTorch. The column buffer is one tape
 * allocation per call, reused for every image; a 1x1, stride-1, unpadded conv skips im2col.
 * Backward recomputes the columns instead of keeping them (memory over a little time). Every
 * reduction runs in a fixed order, so the thread count never changes a result.
 */
#include "nn/nn_internal.h"

typedef struct {
    int64_t n, c, h, w;       /* input */
    int64_t oc, kh, kw;       /* weight */
    int64_t groups, cg, ocg;  /* channels per group (in, out) */
    int64_t oh, ow;           /* output */
    int64_t sh, sw, ph, pw, dh, dw;
    int64_t k, p;             /* GEMM inner size cg*kh*kw, output pixels oh*ow */
    bool direct;              /* 1x1, stride 1, no padding: the input is its own column matrix */
} conv_geom;

cq_conv2d_opts cq_conv2d_default_opts(void) {
    cq_conv2d_opts o = {{1, 1}, {0, 0}, {1, 1}, 1};
    return o;
}

/* Output columns ow whose input column ow*sw - pw + kj*dw lies inside [0, W): [*lo, *hi). */
static void valid_cols(const conv_geom *g, int64_t kj, int64_t *lo, int64_t *hi) {
    int64_t off = kj * g->dw - g->pw; /* iw = ow*sw + off */
    int64_t first = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    int64_t last = g->w - 1 - off < 0 ? -1 : (g->w - 1 - off) / g->sw; /* inclusive */
    *lo = first;
    *hi = last + 1 < g->ow ? last + 1 : g->ow;
    if (*hi < *lo) *hi = *lo;
}

/* col[(ci*kh + ki)*kw + kj][oh*OW + ow] = x[ci][oh*sh - ph + ki*dh][ow*sw - pw + kj*dw] or 0.
 * The valid column range is found once per kernel column, so the inner loop has no branch
 * (a memcpy when the stride is 1). */
static void im2col(const conv_geom *g, const float *x, float *col) {
    CQ__OMP_ROWS(g->k * g->p)
    for (int64_t ci = 0; ci < g->cg; ci++) {
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                float *row = col + ((ci * g->kh + ki) * g->kw + kj) * g->p;
                int64_t lo, hi, off = kj * g->dw - g->pw;
                valid_cols(g, kj, &lo, &hi);
                for (int64_t oh = 0; oh < g->oh; oh++) {
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;
                    float *dst = row + oh * g->ow;
                    if (ih < 0 || ih >= g->h) {
                        memset(dst, 0, sizeof(float) * (size_t)g->ow);
                        continue;
                    }
                    const float *src = x + (ci * g->h + ih) * g->w; /* iw = ow*sw + off, valid in [lo, hi) */
                    for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (g->sw == 1) {
                        if (hi > lo) memcpy(dst + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
                    } else {
                        for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw + off];
                    }
                    for (int64_t ow = hi; ow < g->ow; ow++) dst[ow] = 0.0f;
                }
            }
    }
}

/* The adjoint of im2col: gx[ci][ih][iw] += every column entry that was read from there.
 * Parallel over input channels only, so each element is summed in the same order. */
static void col2im_add(const conv_geom *g, const float *col, float *gx) {
    CQ__OMP_ROWS(g->k * g->p)
    for (int64_t ci = 0; ci < g->cg; ci++) {
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const float *row = col + ((ci * g->kh + ki) * g->kw + kj) * g->p;
                int64_t lo, hi, off = kj * g->dw - g->pw;
                valid_cols(g, kj, &lo, &hi);
                for (int64_t oh = 0; oh < g->oh; oh++) {
                    int64_t ih = oh * g->sh - g->ph + ki * g->dh;
                    if (ih < 0 || ih >= g->h) continue;
                    float *dst = gx + (ci * g->h + ih) * g->w;
                    const float *src = row + oh * g->ow;
                    for (int64_t ow = lo; ow < hi; ow++) dst[ow * g->sw + off] += src[ow];
                }
            }
    }
}

/* Input channels of image n, group gi. */
static const float *group_input(const conv_geom *g, const float *x, int64_t n, int64_t gi) {
    return x + (n * g->c + gi * g->cg) * g->h * g->w;
}

static cq_status conv_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                               cq_err *err) {
    CQ_UNUSED(n_in);
    const conv_geom *g = vctx;
    cq_var *x = in[0], *w = in[1], *b = in[2];
    const float *gy = (const float *)out->grad->data, *px = cq_var_f32(x), *pw = cq_var_f32(w);
    float *col = NULL;
    if (!g->direct && (x->requires_grad || w->requires_grad)) {
        col = cq_tape_alloc(t, sizeof(float) * (size_t)(g->k * g->p), err);
        if (!col) return CQ_E_NOMEM;
    }
    if (w->requires_grad) {
        float *gw;
        CQ__TRY(cq__grad_of(t, w, &gw, err));
        for (int64_t n = 0; n < g->n; n++)
            for (int64_t gi = 0; gi < g->groups; gi++) {
                const float *cols = group_input(g, px, n, gi);
                if (!g->direct) {
                    im2col(g, cols, col);
                    cols = col;
                }
                const float *gy_ng = gy + (n * g->oc + gi * g->ocg) * g->p;
                cq__sgemm(false, true, g->ocg, g->k, g->p, 1.0f, gy_ng, g->p, cols, g->p, 1.0f,
                          gw + gi * g->ocg * g->k, g->k);
            }
    }
    if (x->requires_grad) {
        float *gx;
        CQ__TRY(cq__grad_of(t, x, &gx, err));
        for (int64_t n = 0; n < g->n; n++)
            for (int64_t gi = 0; gi < g->groups; gi++) {
                const float *gy_ng = gy + (n * g->oc + gi * g->ocg) * g->p;
                float *gx_ng = gx + (n * g->c + gi * g->cg) * g->h * g->w;
                if (g->direct) { /* accumulate straight into gx */
                    cq__sgemm(true, false, g->k, g->p, g->ocg, 1.0f, pw + gi * g->ocg * g->k, g->k, gy_ng, g->p,
                              1.0f, gx_ng, g->p);
                    continue;
                }
                cq__sgemm(true, false, g->k, g->p, g->ocg, 1.0f, pw + gi * g->ocg * g->k, g->k, gy_ng, g->p, 0.0f,
                          col, g->p);
                col2im_add(g, col, gx_ng);
            }
    }
    if (b && b->requires_grad) {
        float *gb;
        CQ__TRY(cq__grad_of(t, b, &gb, err));
        for (int64_t oc = 0; oc < g->oc; oc++) {
            double acc = 0.0;
            for (int64_t n = 0; n < g->n; n++) {
                const float *row = gy + (n * g->oc + oc) * g->p;
                for (int64_t i = 0; i < g->p; i++) acc += row[i];
            }
            gb[oc] += (float)acc;
        }
    }
    return CQ_OK;
}

static cq_status conv_geometry(const cq_var *x, const cq_var *w, const cq_var *b, const cq_conv2d_opts *o,
                               conv_geom *g, cq_err *err) {
    char sx[96], sw[96];
    const cq_tensor *tx = x->data, *tw = w->data;
    if (tx->ndim != 4 || tw->ndim != 4)
        return cq_err_set(err, CQ_E_SHAPE, "cq_conv2d: input %s and weight %s must both be 4-D ([N, C, H, W], [OC, C/groups, KH, KW])",
                          cq_shape_str(tx->ndim, tx->shape, sx, sizeof sx), cq_shape_str(tw->ndim, tw->shape, sw, sizeof sw));
    for (int i = 0; i < 2; i++)
        if (o->stride[i] < 1 || o->dilation[i] < 1 || o->padding[i] < 0)
            return cq_err_set(err, CQ_E_ARG, "cq_conv2d: stride and dilation must be >= 1 and padding >= 0");
    if (o->groups < 1) return cq_err_set(err, CQ_E_ARG, "cq_conv2d: groups must be >= 1");
    *g = (conv_geom){0};
    g->n = tx->shape[0], g->c = tx->shape[1], g->h = tx->shape[2], g->w = tx->shape[3];
    g->oc = tw->shape[0], g->kh = tw->shape[2], g->kw = tw->shape[3];
    g->groups = o->groups;
    g->sh = o->stride[0], g->sw = o->stride[1], g->ph = o->padding[0], g->pw = o->padding[1];
    g->dh = o->dilation[0], g->dw = o->dilation[1];
    if (g->c % g->groups || g->oc % g->groups || tw->shape[1] != g->c / g->groups)
        return cq_err_set(err, CQ_E_SHAPE, "cq_conv2d: weight %s does not fit input %s with groups=%lld",
                          cq_shape_str(tw->ndim, tw->shape, sw, sizeof sw), cq_shape_str(tx->ndim, tx->shape, sx, sizeof sx),
                          (long long)g->groups);
    if (b && (b->data->ndim != 1 || b->data->shape[0] != g->oc))
        return cq_err_set(err, CQ_E_SHAPE, "cq_conv2d: bias %s does not match %lld output channels",
                          cq_shape_str(b->data->ndim, b->data->shape, sx, sizeof sx), (long long)g->oc);
    g->cg = g->c / g->groups, g->ocg = g->oc / g->groups;
    int64_t span_h = g->dh * (g->kh - 1) + 1, span_w = g->dw * (g->kw - 1) + 1;
    if (g->kh < 1 || g->kw < 1 || g->h + 2 * g->ph < span_h || g->w + 2 * g->pw < span_w)
        return cq_err_set(err, CQ_E_SHAPE, "cq_conv2d: kernel %s (dilated) is larger than the padded input %s",
                          cq_shape_str(tw->ndim, tw->shape, sw, sizeof sw), cq_shape_str(tx->ndim, tx->shape, sx, sizeof sx));
    g->oh = (g->h + 2 * g->ph - span_h) / g->sh + 1;
    g->ow = (g->w + 2 * g->pw - span_w) / g->sw + 1;
    g->k = g->cg * g->kh * g->kw;
    g->p = g->oh * g->ow;
    g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
    if (g->k > INT32_MAX || g->p > INT32_MAX || g->ocg > INT32_MAX)
        return cq_err_set(err, CQ_E_OVERFLOW, "cq_conv2d: dimensions exceed BLAS int range");
    return CQ_OK;
}

cq_status cq_conv2d(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, const cq_conv2d_opts *opts, cq_var **out,
                    cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_conv2d", "tape");
    cq_status s;
    if ((s = cq__check_var(x, "cq_conv2d", "x", err)) || (s = cq__check_var(w, "cq_conv2d", "weight", err))) return s;
    if (b && (s = cq__check_var(b, "cq_conv2d", "bias", err))) return s;
    cq_conv2d_opts defaults = cq_conv2d_default_opts();
    conv_geom g;
    if ((s = conv_geometry(x, w, b, opts ? opts : &defaults, &g, err))) return s;
    int64_t shape[4] = {g.n, g.oc, g.oh, g.ow};
    cq_var *y;
    CQ__TRY(cq__tape_var(t, 4, shape, false, &y, err));
    float *py = cq_var_f32(y), *col = NULL;
    const float *px = cq_var_f32(x), *pw = cq_var_f32(w);
    if (!g.direct) {
        col = cq_tape_alloc(t, sizeof(float) * (size_t)(g.k * g.p), err);
        if (!col) return CQ_E_NOMEM;
    }
    for (int64_t n = 0; n < g.n; n++) {
        float *yn = py + n * g.oc * g.p;
        for (int64_t oc = 0; oc < g.oc; oc++)
            for (int64_t i = 0; i < g.p; i++) yn[oc * g.p + i] = b ? cq_var_f32(b)[oc] : 0.0f;
        for (int64_t gi = 0; gi < g.groups; gi++) {
            const float *cols = group_input(&g, px, n, gi);
            if (!g.direct) {
                im2col(&g, cols, col);
                cols = col;
            }
            cq__sgemm(false, false, g.ocg, g.p, g.k, 1.0f, pw + gi * g.ocg * g.k, g.k, cols, g.p, 1.0f,
                      yn + gi * g.ocg * g.p, g.p);
        }
    }
    cq_var *ins[3] = {x, w, b};
    if ((s = cq_tape_record(t, y, ins, 3, conv_backward, &g, sizeof g, err))) return s;
    *out = y;
    return CQ_OK;
}
