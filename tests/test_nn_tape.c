/*
 * test_nn_tape.c - the tape's contract: grad mode, accumulation into parameters, reset and
 * memory reuse, custom ops, the straight-through estimator, dropout, argument errors, a small
 * training loop that must learn (and, under make asan, must not leak), and results that do
 * not depend on the thread count (names with "thread" rerun under CQ_THREADS=1).
 */
#include "test_nn_util.h"

static cq_tape *new_tape(void) {
    cq_tape *t = NULL;
    cq_err err = {0};
    if (cq_tape_new(&t, &err) != CQ_OK) abort();
    return t;
}

TST(nn_tape_no_grad_records_nothing) {
    cq_err err = {0};
    const int64_t xs[2] = {2, 3}, ws[2] = {4, 3};
    cq_var *x = tnn_var(2, xs, false), *w = tnn_var(2, ws, true);
    uint64_t seed = 1;
    tnn_fill_normal(x, &seed, 1.0);
    tnn_fill_normal(w, &seed, 1.0);
    cq_tape *t = new_tape();
    CHECK(cq_tape_grad_enabled(t));
    CHECK(cq_tape_set_grad_enabled(t, false) == true);
    cq_var *y = NULL, *loss = NULL;
    CHECK(cq_linear(t, x, w, NULL, &y, &err) == CQ_OK && !y->requires_grad && y->on_tape);
    CHECK(cq_sum(t, y, &loss, &err) == CQ_OK);
    CHECK(cq_backward(t, loss, &err) == CQ_E_ARG && strstr(err.msg, "does not require"));
    CHECK(w->grad == NULL);
    /* With grads on, the same call records and reaches w. */
    CHECK(cq_tape_set_grad_enabled(t, true) == false);
    CHECK(cq_linear(t, x, w, NULL, &y, &err) == CQ_OK && y->requires_grad);
    CHECK(cq_sum(t, y, &loss, &err) == CQ_OK && cq_backward(t, loss, &err) == CQ_OK);
    CHECK(w->grad != NULL && x->grad == NULL); /* x does not require a gradient */
    /* dL/dW[o][i] = sum_n x[n][i] */
    CHECK(fabsf(((float *)w->grad->data)[1] - (cq_var_f32(x)[1] + cq_var_f32(x)[4])) < 1e-6f);
    cq_var_free(y); /* a tape var: ignored, the tape owns it */
    cq_tape_free(t);
    cq_var_free(x);
    cq_var_free(w);
}

TST(nn_tape_accumulates_and_zero_grad) {
    cq_err err = {0};
    const int64_t s[1] = {4};
    cq_var *p = tnn_var(1, s, true);
    for (int i = 0; i < 4; i++) cq_var_f32(p)[i] = (float)i;
    cq_tape *t = new_tape();
    cq_var *sq = NULL, *loss = NULL;
    CHECK(cq_mul(t, p, p, &sq, &err) == CQ_OK && cq_sum(t, sq, &loss, &err) == CQ_OK);
    CHECK(cq_var_numel(loss) == 1 && loss->data->ndim == 0 && cq_var_f32(loss)[0] == 14.0f);
    CHECK(cq_backward(t, loss, &err) == CQ_OK);
    CHECK(((float *)p->grad->data)[3] == 6.0f); /* d(p^2)/dp, both uses summed */
    CHECK(cq_backward(t, loss, &err) == CQ_OK); /* a second pass adds again, as retain_graph */
    CHECK(((float *)p->grad->data)[3] == 12.0f);
    cq_var_zero_grad(p);
    CHECK(((float *)p->grad->data)[3] == 0.0f);
    /* backward needs a one-element loss */
    CHECK(cq_backward(t, sq, &err) == CQ_E_SHAPE && strstr(err.msg, "4 elements"));
    cq_tape_free(t);
    cq_var_free(p);
}

TST(nn_tape_reset_reuses_memory) {
    cq_err err = {0};
    const int64_t xs[4] = {8, 3, 12, 12}, ws[4] = {6, 3, 3, 3};
    cq_var *x = tnn_var(4, xs, false), *w = tnn_var(4, ws, true);
    uint64_t seed = 3;
    tnn_fill_normal(x, &seed, 1.0);
    tnn_fill_normal(w, &seed, 0.3);
    cq_tape *t = new_tape();
    size_t first = 0;
    bool same = true;
    float first_loss = 0;
    for (int step = 0; step < 5; step++) {
        cq_var *y, *r, *loss;
        CHECK(cq_conv2d(t, x, w, NULL, NULL, &y, &err) == CQ_OK && cq_relu(t, y, &r, &err) == CQ_OK &&
              cq_mean(t, r, &loss, &err) == CQ_OK && cq_backward(t, loss, &err) == CQ_OK);
        if (step == 0) first = cq_tape_bytes(t), first_loss = cq_var_f32(loss)[0];
        same &= cq_tape_bytes(t) == first && cq_var_f32(loss)[0] == first_loss;
        cq_tape_reset(t);
        CHECK(cq_tape_bytes(t) == 0);
    }
    CHECK(same && first > 0);
    cq_tape_free(t);
    cq_var_free(x);
    cq_var_free(w);
}

/* A custom op through cq_tape_record: y = x^3, dy/dx = 3 x^2. */
static cq_status cube_backward(cq_tape *t, const void *ctx, cq_var *out, cq_var *const *in, int n, cq_err *err) {
    (void)ctx;
    (void)n;
    cq_status s = cq_var_ensure_grad(t, in[0], err);
    if (s) return s;
    float *gx = in[0]->grad->data;
    const float *gy = out->grad->data, *x = cq_var_f32(in[0]);
    for (int64_t i = 0; i < cq_var_numel(out); i++) gx[i] += gy[i] * 3.0f * x[i] * x[i];
    return CQ_OK;
}

TST(nn_tape_custom_op) {
    cq_err err = {0};
    const int64_t s[1] = {3};
    cq_var *x = tnn_var(1, s, true);
    for (int i = 0; i < 3; i++) cq_var_f32(x)[i] = (float)(i + 1);
    cq_tape *t = new_tape();
    cq_var *y = NULL, *loss = NULL;
    CHECK(cq_tape_zeros(t, 1, s, &y, &err) == CQ_OK && !y->requires_grad);
    for (int i = 0; i < 3; i++) cq_var_f32(y)[i] = powf(cq_var_f32(x)[i], 3);
    CHECK(cq_tape_record(t, y, &x, 1, cube_backward, NULL, 0, &err) == CQ_OK && y->requires_grad);
    CHECK(cq_sum(t, y, &loss, &err) == CQ_OK && cq_backward(t, loss, &err) == CQ_OK);
    CHECK(((float *)x->grad->data)[2] == 27.0f);
    /* out must be a tape var */
    CHECK(cq_tape_record(t, x, &x, 1, cube_backward, NULL, 0, &err) == CQ_E_ARG);
    cq_tape_free(t);
    cq_var_free(x);
}

/* Rounds to multiples of 0.5: a stand-in for quantize-then-dequantize. */
static cq_status round_half(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err) {
    (void)err;
    int *calls = ctx;
    ++*calls;
    for (int64_t i = 0; i < cq_tensor_numel(in); i++) ((float *)out->data)[i] = nearbyintf(((float *)in->data)[i] * 2) / 2;
    return CQ_OK;
}

TST(nn_tape_ste_routes_weight_gradient) {
    cq_err err = {0};
    const int64_t xs[2] = {2, 3}, ws[2] = {2, 3};
    cq_var *x = tnn_var(2, xs, false), *w = tnn_var(2, ws, true);
    uint64_t seed = 5;
    tnn_fill_normal(x, &seed, 1.0);
    tnn_fill_normal(w, &seed, 1.0);
    cq_tape *t = new_tape();
    int calls = 0;
    cq_var *wq = NULL, *y = NULL, *loss = NULL;
    CHECK(cq_ste(t, w, round_half, &calls, &wq, &err) == CQ_OK && calls == 1);
    CHECK(cq_var_f32(wq)[4] == nearbyintf(cq_var_f32(w)[4] * 2) / 2);
    CHECK(cq_linear(t, x, wq, NULL, &y, &err) == CQ_OK && cq_sum(t, y, &loss, &err) == CQ_OK);
    CHECK(cq_backward(t, loss, &err) == CQ_OK);
    /* the float weight receives the gradient of the dequantized one: sum_n x[n][i] */
    const float *g = w->grad->data;
    CHECK(g[0] == cq_var_f32(x)[0] + cq_var_f32(x)[3] && g[5] == cq_var_f32(x)[2] + cq_var_f32(x)[5]);
    cq_tape_free(t);
    cq_var_free(x);
    cq_var_free(w);
}

TST(nn_tape_dropout_modes) {
    cq_err err = {0};
    const int64_t s[1] = {4000};
    cq_var *x = tnn_var(1, s, true);
    for (int i = 0; i < 4000; i++) cq_var_f32(x)[i] = 1.0f;
    cq_tape *t = new_tape();
    cq_var *y = NULL, *y2 = NULL;
    CHECK(cq_dropout(t, x, 0.25f, false, NULL, &y, &err) == CQ_OK && cq_var_f32(y)[7] == 1.0f); /* eval */
    uint64_t a = 9, b = 9;
    CHECK(cq_dropout(t, x, 0.25f, true, &a, &y, &err) == CQ_OK && cq_dropout(t, x, 0.25f, true, &b, &y2, &err) == CQ_OK);
    int zeros = 0;
    bool scaled = true;
    for (int i = 0; i < 4000; i++) {
        zeros += cq_var_f32(y)[i] == 0.0f;
        scaled &= cq_var_f32(y)[i] == 0.0f || fabsf(cq_var_f32(y)[i] - 4.0f / 3.0f) < 1e-6f;
    }
    CHECK(memcmp(cq_var_f32(y), cq_var_f32(y2), 4000 * sizeof(float)) == 0 && a == b); /* same seed, same mask */
    CHECK(zeros > 850 && zeros < 1150 && scaled);
    CHECK(cq_dropout(t, x, 1.0f, true, &a, &y, &err) == CQ_OK && cq_var_f32(y)[0] == 0.0f);
    CHECK(cq_dropout(t, x, 1.5f, true, &a, &y, &err) == CQ_E_ARG);
    CHECK(cq_dropout(t, x, 0.5f, true, NULL, &y, &err) == CQ_E_ARG && strstr(err.msg, "rng_state"));
    cq_tape_free(t);
    cq_var_free(x);
}

TST(nn_ops_reject_bad_arguments) {
    cq_err err = {0};
    const int64_t s23[2] = {2, 3}, s24[2] = {2, 4}, s4[4] = {1, 2, 5, 5}, w4[4] = {3, 3, 3, 3};
    cq_var *a = tnn_var(2, s23, false), *b = tnn_var(2, s24, false), *img = tnn_var(4, s4, false),
           *cw = tnn_var(4, w4, false);
    cq_tape *t = new_tape();
    cq_var *y = (cq_var *)1;
    CHECK(cq_linear(t, a, b, NULL, &y, &err) == CQ_E_SHAPE && y == NULL && strstr(err.msg, "cq_linear"));
    CHECK(cq_add(t, a, b, &y, &err) == CQ_E_SHAPE && strstr(err.msg, "[2, 3]") && strstr(err.msg, "[2, 4]"));
    CHECK(cq_var_matmul(t, a, a, &y, &err) == CQ_E_SHAPE);
    CHECK(cq_conv2d(t, img, cw, NULL, NULL, &y, &err) == CQ_E_SHAPE && strstr(err.msg, "groups"));
    cq_conv2d_opts o = cq_conv2d_default_opts();
    o.stride[0] = 0;
    CHECK(cq_conv2d(t, img, cw, NULL, &o, &y, &err) == CQ_E_ARG);
    const int64_t bad_targets[2] = {0, 3};
    CHECK(cq_cross_entropy(t, a, bad_targets, &y, &err) == CQ_E_ARG && strstr(err.msg, "target 3"));
    const int64_t ids[1] = {2};
    CHECK(cq_embedding(t, a, ids, 1, (const int64_t[]){1}, &y, &err) == CQ_E_ARG && strstr(err.msg, "id 2"));
    const int64_t bad_shape[2] = {5, -1};
    CHECK(cq_reshape(t, a, 2, bad_shape, &y, &err) == CQ_E_SHAPE);
    cq_pool2d_opts p = cq_pool2d_default_opts(2);
    p.padding[0] = 2;
    CHECK(cq_max_pool2d(t, img, &p, &y, &err) == CQ_E_ARG && strstr(err.msg, "half"));
    CHECK(cq_layer_norm(t, a, 3, NULL, NULL, 1e-5f, &y, &err) == CQ_E_ARG);
    CHECK(cq_batch_norm2d(t, b, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, &y, &err) == CQ_OK);
    const int64_t one_row[2] = {1, 4};
    cq_var *single = tnn_var(2, one_row, false);
    CHECK(cq_batch_norm2d(t, single, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, &y, &err) == CQ_E_SHAPE &&
          strstr(err.msg, "more than 1 value"));
    CHECK(cq_relu(t, NULL, &y, NULL) == CQ_E_ARG); /* err may be NULL */
    cq_tape_free(t);
    cq_var_free(a);
    cq_var_free(b);
    cq_var_free(img);
    cq_var_free(cw);
    cq_var_free(single);
}

/* ---- training: a two-layer MLP separates two Gaussian blobs; the loss must drop ---------- */

static float train_mlp(cq_optim_kind kind, double lr, int steps) {
    cq_err err = {0};
    const int64_t xs[2] = {64, 4}, w1s[2] = {16, 4}, b1s[1] = {16}, w2s[2] = {2, 16}, b2s[1] = {2};
    cq_var *x = tnn_var(2, xs, false), *w1 = tnn_var(2, w1s, true), *b1 = tnn_var(1, b1s, true),
           *w2 = tnn_var(2, w2s, true), *b2 = tnn_var(1, b2s, true);
    uint64_t seed = 11;
    int64_t labels[64];
    for (int i = 0; i < 64; i++) {
        labels[i] = i % 2;
        for (int j = 0; j < 4; j++) cq_var_f32(x)[i * 4 + j] = tnn_grid(tnn_normal(&seed) + (labels[i] ? 1.0 : -1.0));
    }
    tnn_fill_normal(w1, &seed, 0.5);
    tnn_fill_normal(w2, &seed, 0.5);
    cq_var *params[4] = {w1, b1, w2, b2};
    cq_optim_opts o = cq_optim_default_opts(kind);
    o.lr = lr;
    if (kind == CQ_OPTIM_SGD) o.momentum = 0.9;
    cq_optim *opt = NULL;
    cq_optim_new(&opt, &o, params, 4, &err);
    cq_tape *t = new_tape();
    float loss_value = NAN;
    for (int s = 0; s < steps; s++) {
        cq_var *h, *a, *z, *loss;
        cq_optim_zero_grad(opt);
        if (cq_linear(t, x, w1, b1, &h, &err) || cq_gelu(t, h, true, &a, &err) || cq_linear(t, a, w2, b2, &z, &err) ||
            cq_cross_entropy(t, z, labels, &loss, &err) || cq_backward(t, loss, &err) || cq_optim_step(opt, &err))
            break;
        loss_value = cq_var_f32(loss)[0];
        cq_tape_reset(t);
    }
    cq_tape_free(t);
    cq_optim_free(opt);
    for (int i = 0; i < 4; i++) cq_var_free(params[i]);
    cq_var_free(x);
    return loss_value;
}

TST(nn_training_loop_learns) {
    float sgd = train_mlp(CQ_OPTIM_SGD, 0.1, 60), adam = train_mlp(CQ_OPTIM_ADAM, 0.05, 60);
    float adadelta = train_mlp(CQ_OPTIM_ADADELTA, 1.0, 60), adamw = train_mlp(CQ_OPTIM_ADAMW, 0.05, 60);
    CHECKF(sgd < 0.1f && adam < 0.1f && adamw < 0.1f && adadelta < 0.3f, "final losses sgd %g adam %g adamw %g adadelta %g",
           sgd, adam, adamw, adadelta);
}

/* ---- thread count: identical bytes for 1 and 4 threads (OpenMP loops and OpenBLAS) -------- */

static void lenet_step(int threads, float *out, size_t n_out) {
    cq_err err = {0};
    cq_set_num_threads(threads);
    const int64_t xs[4] = {64, 1, 28, 28}, c1s[4] = {10, 1, 5, 5}, c2s[4] = {20, 10, 5, 5}, f1s[2] = {50, 320},
                  f2s[2] = {10, 50}, b10[1] = {10}, b20[1] = {20}, b50[1] = {50};
    cq_var *x = tnn_var(4, xs, false), *c1 = tnn_var(4, c1s, true), *c1b = tnn_var(1, b10, true),
           *c2 = tnn_var(4, c2s, true), *c2b = tnn_var(1, b20, true), *f1 = tnn_var(2, f1s, true),
           *f1b = tnn_var(1, b50, true), *f2 = tnn_var(2, f2s, true), *f2b = tnn_var(1, b10, true);
    cq_var *params[8] = {c1, c1b, c2, c2b, f1, f1b, f2, f2b};
    uint64_t seed = 21;
    tnn_fill_normal(x, &seed, 1.0);
    for (int i = 0; i < 8; i++) tnn_fill_normal(params[i], &seed, 0.2);
    int64_t labels[64];
    for (int i = 0; i < 64; i++) labels[i] = i % 10;
    cq_tape *t = new_tape();
    cq_pool2d_opts pool = cq_pool2d_default_opts(2);
    cq_var *a, *b, *c, *d, *e, *f, *g, *h, *k, *l, *loss;
    bool ok = !cq_conv2d(t, x, c1, c1b, NULL, &a, &err) && !cq_max_pool2d(t, a, &pool, &b, &err) &&
              !cq_relu(t, b, &c, &err) && !cq_conv2d(t, c, c2, c2b, NULL, &d, &err) &&
              !cq_max_pool2d(t, d, &pool, &e, &err) && !cq_relu(t, e, &f, &err) &&
              !cq_flatten(t, f, 1, -1, &g, &err) && !cq_linear(t, g, f1, f1b, &h, &err) && !cq_relu(t, h, &k, &err) &&
              !cq_linear(t, k, f2, f2b, &l, &err) && !cq_cross_entropy(t, l, labels, &loss, &err) &&
              !cq_backward(t, loss, &err);
    CHECKF(ok, "%s", err.msg);
    size_t used = 0;
    for (int i = 0; i < 8 && ok; i++) {
        size_t n = (size_t)cq_var_numel(params[i]);
        if (used + n <= n_out) memcpy(out + used, params[i]->grad->data, n * sizeof(float));
        used += n;
    }
    if (ok && used + 640 <= n_out) memcpy(out + used, cq_var_f32(l), 640 * sizeof(float));
    cq_tape_free(t);
    cq_var_free(x);
    for (int i = 0; i < 8; i++) cq_var_free(params[i]);
    cq_set_num_threads(0); /* back to the default */
}

TST(nn_lenet_step_thread_invariant) {
    enum { N = 21840 + 640 };
    float *one = calloc(N, sizeof(float)), *four = calloc(N, sizeof(float));
    lenet_step(1, one, N);
    lenet_step(4, four, N);
    CHECK_BYTES(one, four, N * sizeof(float), "LeNet gradients and logits, 1 vs 4 threads");
    free(one);
    free(four);
}

/* Sizes above the thresholds where OpenBLAS runs multi-threaded (2^24 multiply-adds) and
 * where the OpenMP loops split (2^20 elements: im2col/col2im, layer norm, gelu): 1 vs 4
 * threads must give the same bytes. */
static void big_step(int threads, float *out, size_t n_out) {
    cq_err err = {0};
    cq_set_num_threads(threads);
    const int64_t xs[4] = {5, 16, 128, 128}, ws[4] = {16, 16, 3, 3}, ls[2] = {32, 2048}, lb[1] = {32};
    cq_var *x = tnn_var(4, xs, true), *w = tnn_var(4, ws, true), *lw = tnn_var(2, ls, true), *b = tnn_var(1, lb, true);
    uint64_t seed = 33;
    tnn_fill_normal(x, &seed, 1.0);
    tnn_fill_normal(w, &seed, 0.1);
    tnn_fill_normal(lw, &seed, 0.05);
    cq_tape *t = new_tape();
    cq_conv2d_opts o = cq_conv2d_default_opts();
    o.padding[0] = o.padding[1] = 1;
    const int64_t rs[2] = {640, 2048};
    cq_var *c, *r, *n, *z, *h, *loss;
    bool ok = !cq_conv2d(t, x, w, NULL, &o, &c, &err) && !cq_reshape(t, c, 2, rs, &r, &err) &&
              !cq_layer_norm(t, r, 1, NULL, NULL, 1e-5f, &n, &err) && !cq_gelu(t, n, false, &z, &err) &&
              !cq_linear(t, z, lw, b, &h, &err) && !cq_mean(t, h, &loss, &err) && !cq_backward(t, loss, &err);
    CHECKF(ok, "%s", err.msg);
    cq_var *grads[4] = {x, w, lw, b};
    size_t used = 0;
    for (int i = 0; i < 4 && ok; i++) {
        size_t n_el = (size_t)cq_var_numel(grads[i]);
        if (used + n_el <= n_out) memcpy(out + used, grads[i]->grad->data, n_el * sizeof(float));
        used += n_el;
    }
    cq_tape_free(t);
    for (int i = 0; i < 4; i++) cq_var_free(grads[i]);
    cq_set_num_threads(0);
}

TST(nn_large_gemm_conv_thread_invariant) {
    enum { N = 5 * 16 * 128 * 128 + 16 * 16 * 9 + 32 * 2048 + 32 };
    float *one = calloc(N, sizeof(float)), *four = calloc(N, sizeof(float));
    big_step(1, one, N);
    big_step(4, four, N);
    CHECK_BYTES(one, four, N * sizeof(float), "conv/layer-norm/linear gradients, 1 vs 4 threads");
    free(one);
    free(four);
}
