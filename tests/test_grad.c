/*
 * test_grad.c - finite-difference gradient checks for every op in src/nn/ops.def, plus a
 * multi-op chain with fan-out. For each case the scalar L = sum_i r_i y_i (r fixed random) is
 * evaluated in double from the op's f32 outputs; d L / d x_j from cq_backward_with is compared
 * with the 4-point central difference (8(L(+h) - L(-h)) - (L(+2h) - L(-2h))) / 12h, h = 2^-6,
 * on inputs that sit on a 2^-12 grid (so x +- h is exact) and away from kinks (relu at 0,
 * max-pool ties). Bound: |analytic - numeric| <= tol * (1 + |numeric|), tol = 2e-3 unless a
 * case says otherwise (the numeric estimate carries the f32 rounding of the outputs / h).
 */
#include "test_nn_util.h"

#define MAX_IN 5
#define FD_H (1.0 / 64.0)
#define FD_SAMPLES 48 /* elements checked per input (all when fewer) */

typedef enum { INIT_NORMAL, INIT_AWAY_FROM_ZERO, INIT_DISTINCT, INIT_POSITIVE } init_kind;

typedef struct {
    int ndim;
    int64_t shape[6];
    init_kind init;
    bool check; /* requires a gradient and gets checked */
} input_spec;

typedef cq_status (*fwd_fn)(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err);

typedef struct {
    const char *op; /* its ops.def name */
    const char *label;
    fwd_fn fwd;
    int n_in;
    input_spec in[MAX_IN];
    double tol;
} grad_case;

/* ---- forward wrappers (one per case configuration) ----------------------------------------- */

static cq_status f_linear(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_linear(t, in[0], in[1], in[2], out, err);
}
static cq_status f_linear_nobias(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_linear(t, in[0], in[1], NULL, out, err);
}
static cq_status f_matmul(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_var_matmul(t, in[0], in[1], out, err);
}
static cq_status f_conv_pad1(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    cq_conv2d_opts o = cq_conv2d_default_opts();
    o.padding[0] = o.padding[1] = 1;
    return cq_conv2d(t, in[0], in[1], in[2], &o, out, err);
}
static cq_status f_conv_mixed(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    cq_conv2d_opts o = {{2, 1}, {1, 2}, {2, 1}, 2};
    return cq_conv2d(t, in[0], in[1], in[2], &o, out, err);
}
static cq_status f_conv_1x1(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_conv2d(t, in[0], in[1], NULL, NULL, out, err);
}
static cq_status f_conv_depthwise(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    cq_conv2d_opts o = {{2, 2}, {1, 1}, {1, 1}, 3};
    return cq_conv2d(t, in[0], in[1], in[2], &o, out, err);
}
static cq_status f_layer_norm1(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_layer_norm(t, in[0], 1, in[1], in[2], 1e-5f, out, err);
}
static cq_status f_layer_norm2(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_layer_norm(t, in[0], 2, in[1], NULL, 1e-5f, out, err);
}
static cq_status f_rms_norm(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_rms_norm(t, in[0], in[1], 1e-6f, out, err);
}
static cq_status f_bn_train(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_batch_norm2d(t, in[0], in[1], in[2], NULL, NULL, true, 0.1f, 1e-5f, out, err);
}
static cq_status f_bn_eval(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_batch_norm2d(t, in[0], in[1], in[2], in[3], in[4], false, 0.1f, 1e-5f, out, err);
}
static cq_status f_embedding(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    static const int64_t ids[6] = {1, 4, 1, 0, 5, 1};
    const int64_t shape[2] = {2, 3};
    return cq_embedding(t, in[0], ids, 2, shape, out, err);
}
static cq_status f_relu(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_relu(t, in[0], out, err); }
static cq_status f_gelu(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_gelu(t, in[0], false, out, err); }
static cq_status f_gelu_tanh(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_gelu(t, in[0], true, out, err); }
static cq_status f_silu(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_silu(t, in[0], out, err); }
static cq_status f_softmax(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_softmax(t, in[0], out, err); }
static cq_status f_log_softmax(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_log_softmax(t, in[0], out, err);
}
static cq_status f_max_pool_pad(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    cq_pool2d_opts o = cq_pool2d_default_opts(3);
    o.stride[0] = o.stride[1] = 2;
    o.padding[0] = o.padding[1] = 1;
    return cq_max_pool2d(t, in[0], &o, out, err);
}
static cq_status f_max_pool_dil_ceil(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    cq_pool2d_opts o = cq_pool2d_default_opts(2);
    o.dilation[0] = o.dilation[1] = 2;
    o.ceil_mode = true;
    return cq_max_pool2d(t, in[0], &o, out, err);
}
static cq_status f_avg_pool_pad(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    cq_pool2d_opts o = cq_pool2d_default_opts(3);
    o.stride[0] = o.stride[1] = 2;
    o.padding[0] = o.padding[1] = 1;
    return cq_avg_pool2d(t, in[0], &o, out, err);
}
static cq_status f_avg_pool_ceil_nopad_count(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    cq_pool2d_opts o = cq_pool2d_default_opts(2);
    o.padding[1] = 1;
    o.ceil_mode = true;
    o.count_include_pad = false;
    return cq_avg_pool2d(t, in[0], &o, out, err);
}
static cq_status f_adaptive(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_adaptive_avg_pool2d(t, in[0], 3, 2, out, err);
}
static cq_status f_dropout(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    uint64_t seed = 42; /* the same mask on every evaluation */
    return cq_dropout(t, in[0], 0.3f, true, &seed, out, err);
}
static cq_status f_flatten(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_flatten(t, in[0], 1, -1, out, err);
}
static cq_status f_reshape(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    const int64_t shape[2] = {4, -1};
    return cq_reshape(t, in[0], 2, shape, out, err);
}
static cq_status f_add(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_add(t, in[0], in[1], out, err); }
static cq_status f_sub(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_sub(t, in[0], in[1], out, err); }
static cq_status f_mul(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_mul(t, in[0], in[1], out, err); }
static cq_status f_scale(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_scale(t, in[0], -1.5f, out, err); }
static cq_status f_sum(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_sum(t, in[0], out, err); }
static cq_status f_mean(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) { return cq_mean(t, in[0], out, err); }
static const int64_t k_targets[5] = {0, 3, -100, 2, 1};
static cq_status f_cross_entropy(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_cross_entropy(t, in[0], k_targets, out, err);
}
static cq_status f_nll(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_nll_loss(t, in[0], k_targets, out, err);
}
/* A transform whose true derivative is 1, so the straight-through gradient is also exact. */
static cq_status shift_transform(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err) {
    (void)ctx;
    (void)err;
    const float *x = in->data;
    float *y = out->data;
    for (int64_t i = 0; i < cq_tensor_numel(in); i++) y[i] = x[i] + 0.5f;
    return CQ_OK;
}
static cq_status f_ste(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    return cq_ste(t, in[0], shift_transform, NULL, out, err);
}

/* ---- the cases ------------------------------------------------------------------------------ */

#define IN(nd, ...) {nd, {__VA_ARGS__}, INIT_NORMAL, true}
#define IN_K(nd, kind, ...) {nd, {__VA_ARGS__}, kind, true}
#define IN_CONST(nd, kind, ...) {nd, {__VA_ARGS__}, kind, false}

static const grad_case k_cases[] = {
    {"linear", "x[4,5] W[3,5] b[3]", f_linear, 3, {IN(2, 4, 5), IN(2, 3, 5), IN(1, 3)}, 0},
    {"linear", "3-D x, no bias", f_linear_nobias, 2, {IN(3, 2, 3, 5), IN(2, 4, 5)}, 0},
    {"matmul", "[2,3,4] @ [4,5]", f_matmul, 2, {IN(3, 2, 3, 4), IN(2, 4, 5)}, 0},
    {"matmul", "batched [2,3,4] @ [2,4,2]", f_matmul, 2, {IN(3, 2, 3, 4), IN(3, 2, 4, 2)}, 0},
    {"conv2d", "3x3 pad 1", f_conv_pad1, 3, {IN(4, 2, 3, 6, 5), IN(4, 4, 3, 3, 3), IN(1, 4)}, 0},
    {"conv2d", "stride (2,1) pad (1,2) dilation (2,1) groups 2", f_conv_mixed, 3,
     {IN(4, 2, 4, 9, 8), IN(4, 6, 2, 3, 2), IN(1, 6)}, 0},
    {"conv2d", "1x1 direct, no bias", f_conv_1x1, 2, {IN(4, 2, 3, 4, 4), IN(4, 5, 3, 1, 1)}, 0},
    {"conv2d", "depthwise stride 2", f_conv_depthwise, 3, {IN(4, 1, 3, 5, 5), IN(4, 3, 1, 3, 3), IN(1, 3)}, 0},
    {"layer_norm", "last dim, affine", f_layer_norm1, 3, {IN(2, 3, 6), IN(1, 6), IN(1, 6)}, 0},
    {"layer_norm", "last 2 dims, weight only", f_layer_norm2, 2, {IN(3, 2, 3, 4), IN(2, 3, 4)}, 0},
    {"rms_norm", "x[3,7] w[7]", f_rms_norm, 2, {IN(2, 3, 7), IN(1, 7)}, 0},
    {"batch_norm2d", "train [3,4,3,2]", f_bn_train, 3, {IN(4, 3, 4, 3, 2), IN(1, 4), IN(1, 4)}, 0},
    {"batch_norm2d", "train [5,3]", f_bn_train, 3, {IN(2, 5, 3), IN(1, 3), IN(1, 3)}, 0},
    {"batch_norm2d", "eval with running stats", f_bn_eval, 5,
     {IN(4, 2, 3, 2, 2), IN(1, 3), IN(1, 3), IN_CONST(1, INIT_NORMAL, 3), IN_CONST(1, INIT_POSITIVE, 3)}, 0},
    {"embedding", "repeated ids", f_embedding, 1, {IN(2, 6, 4)}, 0},
    {"relu", "x[3,7]", f_relu, 1, {IN_K(2, INIT_AWAY_FROM_ZERO, 3, 7)}, 0},
    {"gelu", "exact", f_gelu, 1, {IN(2, 3, 7)}, 0},
    {"gelu", "tanh", f_gelu_tanh, 1, {IN(2, 3, 7)}, 0},
    {"silu", "x[3,7]", f_silu, 1, {IN(2, 3, 7)}, 0},
    {"softmax", "x[3,6]", f_softmax, 1, {IN(2, 3, 6)}, 0},
    {"log_softmax", "x[2,2,5]", f_log_softmax, 1, {IN(3, 2, 2, 5)}, 0},
    {"max_pool2d", "k3 s2 pad 1", f_max_pool_pad, 1, {IN_K(4, INIT_DISTINCT, 2, 2, 7, 6)}, 0},
    {"max_pool2d", "k2 dilation 2 ceil", f_max_pool_dil_ceil, 1, {IN_K(4, INIT_DISTINCT, 1, 2, 7, 7)}, 0},
    {"avg_pool2d", "k3 s2 pad 1", f_avg_pool_pad, 1, {IN(4, 2, 2, 7, 6)}, 0},
    {"avg_pool2d", "k2 ceil, pad excluded", f_avg_pool_ceil_nopad_count, 1, {IN(4, 1, 2, 5, 5)}, 0},
    {"adaptive_avg_pool2d", "7x5 -> 3x2", f_adaptive, 1, {IN(4, 2, 2, 7, 5)}, 0},
    {"dropout", "p 0.3 train", f_dropout, 1, {IN(2, 4, 8)}, 0},
    {"flatten", "[2,3,2,2] from dim 1", f_flatten, 1, {IN(4, 2, 3, 2, 2)}, 0},
    {"reshape", "[2,3,2,2] -> [4,-1]", f_reshape, 1, {IN(4, 2, 3, 2, 2)}, 0},
    {"add", "same shape", f_add, 2, {IN(2, 3, 4), IN(2, 3, 4)}, 0},
    {"add", "[3,4] + [4]", f_add, 2, {IN(2, 3, 4), IN(1, 4)}, 0},
    {"sub", "[4] - [2,4]", f_sub, 2, {IN(1, 4), IN(2, 2, 4)}, 0},
    {"mul", "[2,3,4] * [1,3,4]", f_mul, 2, {IN(3, 2, 3, 4), IN(3, 1, 3, 4)}, 0},
    {"mul", "same shape", f_mul, 2, {IN(2, 3, 4), IN(2, 3, 4)}, 0},
    {"scale", "x * -1.5", f_scale, 1, {IN(2, 3, 4)}, 0},
    {"sum", "x[3,4]", f_sum, 1, {IN(2, 3, 4)}, 0},
    {"mean", "x[3,4]", f_mean, 1, {IN(2, 3, 4)}, 0},
    {"cross_entropy", "[5,4], one ignored row", f_cross_entropy, 1, {IN(2, 5, 4)}, 0},
    {"nll_loss", "[5,4], one ignored row", f_nll, 1, {IN(2, 5, 4)}, 0},
    {"ste", "identity gradient", f_ste, 1, {IN(2, 3, 4)}, 0},
};

/* ---- the checker ------------------------------------------------------------------------------ */

static void init_input(cq_var *v, init_kind kind, uint64_t *seed) {
    float *p = cq_var_f32(v);
    int64_t n = cq_var_numel(v);
    switch (kind) {
    case INIT_NORMAL: tnn_fill_normal(v, seed, 1.0); break;
    case INIT_POSITIVE:
        for (int64_t i = 0; i < n; i++) p[i] = tnn_grid(0.5 + fabs(tnn_normal(seed)));
        break;
    case INIT_AWAY_FROM_ZERO: /* |x| >= 0.1 > 2h: no step crosses the kink */
        for (int64_t i = 0; i < n; i++) {
            double x = tnn_normal(seed);
            p[i] = tnn_grid(x < 0 ? x - 0.1 : x + 0.1);
        }
        break;
    case INIT_DISTINCT: /* a shuffled ladder with step 0.1 > 4h: no tie can flip */
        for (int64_t i = 0; i < n; i++) p[i] = tnn_grid(0.1 * (double)(i - n / 2));
        for (int64_t i = n - 1; i > 0; i--) {
            int64_t j = (int64_t)(tnn_rng(seed) % (uint64_t)(i + 1));
            float tmp = p[i];
            p[i] = p[j];
            p[j] = tmp;
        }
        break;
    }
}

/* L = sum r_i y_i in double, with grads off so nothing is recorded. */
static double eval_loss(const grad_case *c, cq_tape *t, cq_var *const *in, const float *r, cq_err *err) {
    cq_tape_reset(t);
    bool was = cq_tape_set_grad_enabled(t, false);
    cq_var *y = NULL;
    cq_status s = c->fwd(t, in, &y, err);
    cq_tape_set_grad_enabled(t, was);
    if (s) return NAN;
    double acc = 0.0;
    for (int64_t i = 0; i < cq_var_numel(y); i++) acc += (double)r[i] * cq_var_f32(y)[i];
    return acc;
}

/* Returns the worst tol-relative error over the checked elements (<= 1 passes). */
static void run_case(const grad_case *c, uint64_t seed) {
    cq_err err = {0};
    cq_var *in[MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++) {
        in[i] = tnn_var(c->in[i].ndim, c->in[i].shape, c->in[i].check);
        init_input(in[i], c->in[i].init, &seed);
    }
    cq_tape *t = NULL;
    CHECK(cq_tape_new(&t, &err) == CQ_OK);
    cq_var *y = NULL;
    cq_status s = c->fwd(t, in, &y, &err);
    CHECKF(s == CQ_OK && y, "%s (%s): forward failed: %s", c->op, c->label, err.msg);
    if (s != CQ_OK || !y) goto done;
    int64_t ny = cq_var_numel(y);
    float *r = malloc(sizeof(float) * (size_t)ny);
    for (int64_t i = 0; i < ny; i++) r[i] = tnn_grid(tnn_normal(&seed));
    s = cq_backward_with(t, y, r, &err);
    CHECKF(s == CQ_OK, "%s (%s): backward failed: %s", c->op, c->label, err.msg);
    double tol = c->tol > 0 ? c->tol : 2e-4;
    for (int i = 0; i < c->n_in && s == CQ_OK; i++) {
        if (!c->in[i].check) continue;
        int64_t n = cq_var_numel(in[i]);
        CHECKF(in[i]->grad != NULL, "%s (%s): input %d got no gradient", c->op, c->label, i);
        if (!in[i]->grad) continue;
        float *analytic = malloc(sizeof(float) * (size_t)n);
        memcpy(analytic, in[i]->grad->data, sizeof(float) * (size_t)n);
        int64_t samples = n < FD_SAMPLES ? n : FD_SAMPLES;
        double worst = 0.0, worst_a = 0.0, worst_n = 0.0;
        int64_t worst_j = -1;
        for (int64_t k = 0; k < samples; k++) {
            int64_t j = k * n / samples;
            float *p = cq_var_f32(in[i]), x0 = p[j];
            double l[4];
            const double steps[4] = {FD_H, -FD_H, 2 * FD_H, -2 * FD_H};
            for (int q = 0; q < 4; q++) {
                p[j] = (float)(x0 + steps[q]);
                l[q] = eval_loss(c, t, in, r, &err);
            }
            p[j] = x0;
            double numeric = (8.0 * (l[0] - l[1]) - (l[2] - l[3])) / (12.0 * FD_H);
            double rel = fabs(analytic[j] - numeric) / (tol * (1.0 + fabs(numeric)));
            if (!(rel <= worst)) {
                worst = rel, worst_a = analytic[j], worst_n = numeric, worst_j = j;
            }
        }
        if (getenv("CQ_GRAD_VERBOSE"))
            printf("  %-20s %-48s in %d: worst %.3g of tol (analytic %.7g numeric %.7g)\n", c->op, c->label, i,
                   worst, worst_a, worst_n);
        CHECKF(worst <= 1.0, "%s (%s): input %d element %lld: analytic %.7g numeric %.7g (tol %g)", c->op, c->label, i,
               (long long)worst_j, worst_a, worst_n, tol);
        free(analytic);
    }
    free(r);
done:
    cq_tape_free(t);
    for (int i = 0; i < c->n_in; i++) cq_var_free(in[i]);
}

TST(grad_fd_every_case) {
    uint64_t base = getenv("CQ_GRAD_SEED") ? strtoull(getenv("CQ_GRAD_SEED"), NULL, 10) : 1000;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) run_case(&k_cases[i], base + i);
}

/* Each op of ops.def has at least one case above. */
TST(grad_fd_covers_ops_def) {
    static const char *ops[] = {
#define CQ_OP(name) #name,
#include "nn/ops.def"
#undef CQ_OP
    };
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        bool found = false;
        for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) found |= strcmp(k_cases[i].op, ops[o]) == 0;
        CHECKF(found, "op %s in ops.def has no finite-difference case", ops[o]);
    }
}

/* ---- a chain with fan-out: the tape sums gradients from two uses of a var ---------------- */

static cq_var *g_chain_targets_dummy;
static cq_status f_chain(cq_tape *t, cq_var *const *in, cq_var **out, cq_err *err) {
    /* x -> conv -> relu -> maxpool -> flatten -> linear -> h; loss = CE(h * h + h) */
    (void)g_chain_targets_dummy;
    static const int64_t targets[2] = {1, 2};
    cq_var *a, *b, *c, *d, *h, *hh, *z;
    cq_conv2d_opts o = cq_conv2d_default_opts();
    o.padding[0] = o.padding[1] = 1;
    cq_pool2d_opts p = cq_pool2d_default_opts(2);
    cq_status s;
    if ((s = cq_conv2d(t, in[0], in[1], in[2], &o, &a, err)) || (s = cq_gelu(t, a, false, &b, err)) ||
        (s = cq_avg_pool2d(t, b, &p, &c, err)) || (s = cq_flatten(t, c, 1, -1, &d, err)) ||
        (s = cq_linear(t, d, in[3], in[4], &h, err)) || (s = cq_mul(t, h, h, &hh, err)) || (s = cq_add(t, hh, h, &z, err)))
        return s;
    return cq_cross_entropy(t, z, targets, out, err);
}

TST(grad_fd_chain_with_fanout) {
    const grad_case c = {"chain", "conv-gelu-avgpool-flatten-linear, h*h + h, cross-entropy", f_chain, 5,
                         {IN(4, 2, 2, 4, 4), IN(4, 3, 2, 3, 3), IN(1, 3), IN(2, 3, 12), IN(1, 3)}, 2e-3};
    run_case(&c, 77);
}
