/*
 * ops_elem.c - elementwise and reduction ops with their backward passes side by side:
 * add, sub, mul (with suffix broadcasting), scale, sum, mean, and the straight-through
 * estimator used by quantization-aware training. Reductions accumulate in double in a fixed
 * order, so results never depend on the thread count.
 */
#include "nn/nn_internal.h"

/* ---- broadcasting: the smaller operand's shape (leading 1s dropped) is a suffix of the larger */

static bool is_suffix_of(const cq_tensor *small, const cq_tensor *big) {
    int lead = 0;
    while (lead < small->ndim && small->shape[lead] == 1) lead++;
    int rest = small->ndim - lead;
    if (small->ndim > big->ndim) return false;
    for (int i = 0; i < rest; i++)
        if (small->shape[small->ndim - 1 - i] != big->shape[big->ndim - 1 - i]) return false;
    return true;
}

/* Picks the result shape; na, nb are the operands' element counts (each divides the result's). */
static cq_status broadcast(const char *op, const cq_var *a, const cq_var *b, const cq_tensor **shape_of,
                           cq_err *err) {
    if (cq_tensor_same_shape(a->data, b->data) || is_suffix_of(b->data, a->data)) {
        *shape_of = a->data;
        return CQ_OK;
    }
    if (is_suffix_of(a->data, b->data)) {
        *shape_of = b->data;
        return CQ_OK;
    }
    char sa[96], sb[96];
    return cq_err_set(err, CQ_E_SHAPE, "%s: shapes %s and %s do not broadcast (one must be a suffix of the other)",
                      op, cq_shape_str(a->data->ndim, a->data->shape, sa, sizeof sa),
                      cq_shape_str(b->data->ndim, b->data->shape, sb, sizeof sb));
}

typedef enum { ELEM_ADD, ELEM_SUB, ELEM_MUL } elem_kind;
typedef struct {
    elem_kind kind;
} elem_ctx;

static const char *elem_name(elem_kind k) { return k == ELEM_ADD ? "cq_add" : k == ELEM_SUB ? "cq_sub" : "cq_mul"; }

/* Adds sum over the broadcast copies of g_i * (scale_by ? scale_by[i % ns] : 1) * sign into dst,
 * where dst has nd elements (nd divides n). Sequential: fixed order. */
static void reduce_into(float *dst, int64_t nd, const float *g, int64_t n, const float *scale_by, int64_t ns,
                        float sign) {
    if (nd == n) {
        CQ__OMP_ROWS(n)
        for (int64_t i = 0; i < n; i++) dst[i] += sign * (scale_by ? g[i] * scale_by[i % ns] : g[i]);
        return;
    }
    for (int64_t j = 0; j < nd; j++) {
        double acc = 0.0;
        for (int64_t i = j; i < n; i += nd) acc += scale_by ? (double)(g[i] * scale_by[i % ns]) : (double)g[i];
        dst[j] += sign * (float)acc;
    }
}

static cq_status elem_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                               cq_err *err) {
    CQ_UNUSED(n_in);
    const elem_ctx *ctx = vctx;
    const float *g = (const float *)out->grad->data;
    int64_t n = cq_var_numel(out);
    cq_var *a = in[0], *b = in[1];
    int64_t na = cq_var_numel(a), nb = cq_var_numel(b);
    if (a->requires_grad) {
        float *ga;
        CQ__TRY(cq__grad_of(t, a, &ga, err));
        reduce_into(ga, na, g, n, ctx->kind == ELEM_MUL ? cq_var_f32(b) : NULL, nb, 1.0f);
    }
    if (b->requires_grad) {
        float *gb;
        CQ__TRY(cq__grad_of(t, b, &gb, err));
        reduce_into(gb, nb, g, n, ctx->kind == ELEM_MUL ? cq_var_f32(a) : NULL, na,
                    ctx->kind == ELEM_SUB ? -1.0f : 1.0f);
    }
    return CQ_OK;
}

static cq_status elem_forward(cq_tape *t, elem_kind kind, cq_var *a, cq_var *b, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    const char *op = elem_name(kind);
    *out = NULL;
    CQ__NEED(t, op, "tape");
    cq_status s;
    if ((s = cq__check_var(a, op, "a", err)) || (s = cq__check_var(b, op, "b", err))) return s;
    const cq_tensor *shape_of = NULL;
    if ((s = broadcast(op, a, b, &shape_of, err))) return s;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, shape_of->ndim, shape_of->shape, false, &y, err));
    const float *pa = cq_var_f32(a), *pb = cq_var_f32(b);
    float *py = cq_var_f32(y);
    int64_t n = cq_var_numel(y), na = cq_var_numel(a), nb = cq_var_numel(b);
    if (na == n && nb == n) {
        CQ__OMP_ROWS(n)
        for (int64_t i = 0; i < n; i++)
            py[i] = kind == ELEM_ADD ? pa[i] + pb[i] : kind == ELEM_SUB ? pa[i] - pb[i] : pa[i] * pb[i];
    } else {
        CQ__OMP_ROWS(n)
        for (int64_t i = 0; i < n; i++) {
            float x = pa[i % na], z = pb[i % nb];
            py[i] = kind == ELEM_ADD ? x + z : kind == ELEM_SUB ? x - z : x * z;
        }
    }
    elem_ctx ctx = {kind};
    cq_var *ins[2] = {a, b};
    if ((s = cq_tape_record(t, y, ins, 2, elem_backward, &ctx, sizeof ctx, err))) return s;
    *out = y;
    return CQ_OK;
}

cq_status cq_add(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err) {
    return elem_forward(t, ELEM_ADD, a, b, out, err);
}
cq_status cq_sub(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err) {
    return elem_forward(t, ELEM_SUB, a, b, out, err);
}
cq_status cq_mul(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err) {
    return elem_forward(t, ELEM_MUL, a, b, out, err);
}

/* ---- scale ------------------------------------------------------------------------------- */

typedef struct {
    float s;
} scale_ctx;

static cq_status scale_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                                cq_err *err) {
    CQ_UNUSED(n_in);
    float s = ((const scale_ctx *)vctx)->s;
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    const float *g = (const float *)out->grad->data;
    int64_t n = cq_var_numel(out);
    for (int64_t i = 0; i < n; i++) gx[i] += g[i] * s;
    return CQ_OK;
}

cq_status cq_scale(cq_tape *t, cq_var *x, float s, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_scale", "tape");
    cq_status st = cq__check_var(x, "cq_scale", "x", err);
    if (st) return st;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, x->data->shape, false, &y, err));
    const float *px = cq_var_f32(x);
    float *py = cq_var_f32(y);
    int64_t n = cq_var_numel(x);
    for (int64_t i = 0; i < n; i++) py[i] = px[i] * s;
    scale_ctx ctx = {s};
    if ((st = cq_tape_record(t, y, &x, 1, scale_backward, &ctx, sizeof ctx, err))) return st;
    *out = y;
    return CQ_OK;
}

/* ---- sum and mean ------------------------------------------------------------------------- */

typedef struct {
    float factor; /* 1 for sum, 1/n for mean */
} sum_ctx;

static cq_status sum_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                              cq_err *err) {
    CQ_UNUSED(n_in);
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    float g = ((const float *)out->grad->data)[0] * ((const sum_ctx *)vctx)->factor;
    int64_t n = cq_var_numel(in[0]);
    for (int64_t i = 0; i < n; i++) gx[i] += g;
    return CQ_OK;
}

static cq_status sum_forward(cq_tape *t, cq_var *x, bool mean, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    const char *op = mean ? "cq_mean" : "cq_sum";
    *out = NULL;
    CQ__NEED(t, op, "tape");
    cq_status s = cq__check_var(x, op, "x", err);
    if (s) return s;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, 0, NULL, false, &y, err));
    const float *px = cq_var_f32(x);
    int64_t n = cq_var_numel(x);
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) acc += px[i];
    sum_ctx ctx = {mean ? (float)(1.0 / (double)n) : 1.0f};
    cq_var_f32(y)[0] = mean ? (float)(acc / (double)n) : (float)acc;
    if ((s = cq_tape_record(t, y, &x, 1, sum_backward, &ctx, sizeof ctx, err))) return s;
    *out = y;
    return CQ_OK;
}

cq_status cq_sum(cq_tape *t, cq_var *x, cq_var **out, cq_err *err) { return sum_forward(t, x, false, out, err); }
cq_status cq_mean(cq_tape *t, cq_var *x, cq_var **out, cq_err *err) { return sum_forward(t, x, true, out, err); }

/* ---- straight-through estimator ------------------------------------------------------------- */

/* The gradient passes through unchanged, as in quanto's quantizer autograd Functions. */
static cq_status ste_backward(cq_tape *t, const void *vctx, cq_var *out, cq_var *const *in, int n_in,
                              cq_err *err) {
    CQ_UNUSED(vctx);
    CQ_UNUSED(n_in);
    float *gx;
    CQ__TRY(cq__grad_of(t, in[0], &gx, err));
    const float *g = (const float *)out->grad->data;
    int64_t n = cq_var_numel(out);
    for (int64_t i = 0; i < n; i++) gx[i] += g[i];
    return CQ_OK;
}

cq_status cq_ste(cq_tape *t, cq_var *x, cq_transform_fn transform, void *ctx, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__NEED(t, "cq_ste", "tape");
    CQ__NEED(transform, "cq_ste", "transform");
    cq_status s = cq__check_var(x, "cq_ste", "x", err);
    if (s) return s;
    cq_var *y;
    CQ__TRY(cq__tape_var(t, x->data->ndim, x->data->shape, true, &y, err));
    if ((s = transform(ctx, x->data, y->data, err))) return cq_err_prefix(err, s, "cq_ste: ");
    if ((s = cq_tape_record(t, y, &x, 1, ste_backward, NULL, 0, err))) return s;
    *out = y;
    return CQ_OK;
}
