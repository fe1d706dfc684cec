/*
 * test_lenet.c - the bundled LeNet against PyTorch, and the quantization workflow's accuracy
 * bounds (issue 4): the float model's top-1 predictions agree with PyTorch 2.6's on >= 9,995
 * of the 10,000 MNIST test images at 97.61%; on the last 5,000 images W8A8 calibrated on the
 * first 5,000 is within 0.3 points of float and W4 after one epoch of QAT within 1.0 point;
 * a frozen model saved and reloaded gives bit-identical outputs. The PyTorch reference comes
 * from tools/gen_lenet_ref.py (tests/data/lenet_ref/).
 */
#include "tst.h"

#include "cquanto.h"
#include "cquanto/experimental.h"

#include <math.h>
#include <stdlib.h>

#define MNIST_IMAGES "data/mnist-t10k-images-idx3-ubyte.gz"
#define MNIST_LABELS "data/mnist-t10k-labels-idx1-ubyte.gz"
#define LENET "data/lenet_mnist.safetensors"
#define REF "tests/data/lenet_ref/lenet_ref.safetensors"
#define HALF 5000 /* calibrate / train on [0, 5000), evaluate on [5000, 10000) */

typedef struct fixture {
    cq_dataset *ds;
    cq_model *m;
} fixture;

static bool setup(fixture *f) {
    cq_err err = {0};
    f->ds = NULL;
    f->m = NULL;
    bool ok = cq_dataset_load_mnist(&f->ds, MNIST_IMAGES, MNIST_LABELS, &err) == CQ_OK &&
              cq_lenet_new(&f->m, &err) == CQ_OK && cq_model_load_safetensors(f->m, LENET, &err) == CQ_OK;
    CHECKF(ok, "setup: %s", err.msg);
    return ok;
}

static void teardown(fixture *f) {
    cq_model_free(f->m);
    cq_dataset_free(f->ds);
}

static int64_t accuracy(fixture *f) {
    cq_err err = {0};
    int64_t correct = -1;
    CHECKF(cq_model_evaluate(f->m, f->ds, HALF, HALF, 250, &correct, NULL, &err) == CQ_OK, "%s", err.msg);
    return correct;
}

/* Log-probabilities of samples [start, start + n) into out (n * 10 floats). */
static bool run(cq_model *m, const cq_dataset *ds, int64_t start, int64_t n, float *out) {
    cq_err err = {0};
    cq_tape *t = NULL;
    float *x = malloc((size_t)n * 784 * sizeof *x);
    int64_t shape[4] = {n, 1, 28, 28};
    cq_tensor view = {.dtype = CQ_F32, .ndim = 4, .shape = {n, 1, 28, 28}, .data = x};
    cq_var *in = NULL, *y = NULL;
    bool ok = x && cq_tape_new(&t, &err) == CQ_OK && cq_dataset_batch(ds, start, n, x, NULL, &err) == CQ_OK;
    (void)shape;
    if (ok) cq_tape_set_grad_enabled(t, false);
    ok = ok && cq_tape_input(t, &view, &in, &err) == CQ_OK && cq_model_forward(m, t, in, &y, &err) == CQ_OK;
    if (ok) memcpy(out, cq_var_f32(y), (size_t)n * 10 * sizeof *out);
    CHECKF(ok, "forward: %s", err.msg);
    cq_tape_free(t);
    free(x);
    return ok;
}

TST(lenet_float_matches_pytorch) {
    fixture f;
    if (!setup(&f)) return teardown(&f);
    cq_err err = {0};
    cq_st_file *ref = NULL;
    const cq_tensor *pred = NULL, *logprobs = NULL, *labels_ok = NULL;
    bool ok = cq_st_open(REF, &ref, &err) == CQ_OK && cq_st_get(ref, "pred", &pred, &err) == CQ_OK &&
              cq_st_get(ref, "logprobs", &logprobs, &err) == CQ_OK &&
              cq_st_get(ref, "labels_ok", &labels_ok, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    uint8_t *ours = malloc(10000);
    int64_t correct = 0;
    if (ok && ours) {
        CHECKF(cq_model_evaluate(f.m, f.ds, 0, 10000, 500, &correct, ours, &err) == CQ_OK, "%s", err.msg);
        int64_t agree = 0;
        for (int i = 0; i < 10000; i++) agree += ours[i] == ((const uint8_t *)pred->data)[i];
        int64_t torch_correct = ((const int64_t *)labels_ok->data)[0];
        CHECKF(agree >= 9995, "top-1 agrees with PyTorch on %lld of 10000", (long long)agree);
        CHECKF(torch_correct == 9761, "the reference says %lld", (long long)torch_correct);
        CHECKF(llabs(correct - torch_correct) <= 10000 - agree, "%lld correct, PyTorch %lld", (long long)correct,
               (long long)torch_correct);
        CHECKF(correct == 9761, "accuracy %.2f%%, PyTorch 97.61%%", correct / 100.0);
        float lp[64 * 10];
        if (run(f.m, f.ds, 0, 64, lp)) {
            double worst = 0;
            for (int i = 0; i < 640; i++) worst = fmax(worst, fabs(lp[i] - ((const float *)logprobs->data)[i]));
            CHECKF(worst < 1e-4, "log-probabilities differ from PyTorch's by up to %g", worst);
        }
    }
    free(ours);
    cq_st_close(ref);
    teardown(&f);
}

TST(lenet_w8a8_calibrated_within_0p3_points) {
    fixture f;
    if (!setup(&f)) return teardown(&f);
    cq_err err = {0};
    int64_t fl = accuracy(&f);
    cq_quantize_opts q = cq_quantize_default_opts();
    q.weights = CQ_QINT8;
    q.activations = CQ_QINT8;
    bool ok = cq_quantize(f.m, &q, &err) == CQ_OK && cq_model_calibrate(f.m, f.ds, 0, HALF, 250, 0.9, &err) == CQ_OK &&
              cq_freeze(f.m, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    cq_module_qinfo fc1 = cq_module_get_qinfo(cq_module_find(cq_model_root(f.m), "fc1"));
    CHECK(fc1.frozen && fc1.input_scale != 1.0f && fc1.output_scale != 1.0f);
    int64_t w8a8 = accuracy(&f);
    /* 0.3 points of 5,000 images is 15 images */
    CHECKF(fl - w8a8 <= 15, "float %.2f%%, W8A8 %.2f%%", fl / 50.0, w8a8 / 50.0);
    teardown(&f);
}

TST(lenet_w4_qat_within_1p0_point) {
    fixture f;
    if (!setup(&f)) return teardown(&f);
    cq_err err = {0};
    int64_t fl = accuracy(&f);
    cq_quantize_opts q = cq_quantize_default_opts();
    q.weights = CQ_QINT4;
    CHECKF(cq_quantize(f.m, &q, &err) == CQ_OK, "%s", err.msg);
    CHECK(cq_module_get_qinfo(cq_module_find(cq_model_root(f.m), "fc1")).group_size == 64);
    cq_var *params[16];
    int n = cq_model_parameters(f.m, params, 16);
    CHECK(n == 8);
    cq_optim_opts oo = cq_optim_default_opts(CQ_OPTIM_ADAM);
    oo.lr = 1e-4f;
    cq_optim *opt = NULL;
    cq_train_opts to = cq_train_default_opts();
    to.batch = 50;
    to.shuffle_seed = 1;
    float loss = 0;
    bool ok = cq_optim_new(&opt, &oo, params, n, &err) == CQ_OK &&
              cq_model_train_epoch(f.m, opt, f.ds, 0, HALF, &to, &loss, &err) == CQ_OK;
    cq_optim_free(opt);
    ok = ok && cq_freeze(f.m, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    CHECK(loss > 0 && loss < 0.5f);
    CHECK(cq_model_parameters(f.m, NULL, 0) == 4); /* only the biases still train */
    int64_t w4 = accuracy(&f);
    CHECKF(fl - w4 <= 50, "float %.2f%%, W4 after QAT %.2f%%", fl / 50.0, w4 / 50.0);
    teardown(&f);
}

TST(lenet_saved_then_reloaded_bit_identical) {
    fixture f;
    if (!setup(&f)) return teardown(&f);
    cq_err err = {0};
    char dir[] = "/tmp/cqlenetXXXXXX";
    if (!mkdtemp(dir)) return teardown(&f);
    /* a mix: int4 (grouped) fc1, int2 fc2, int8 convs, int8 activations everywhere */
    cq_quantize_opts q = cq_quantize_default_opts();
    q.activations = CQ_QINT8;
    const char *fc1[] = {"fc1", NULL}, *fc2[] = {"fc2", NULL}, *convs[] = {"conv*", NULL};
    bool ok = true;
    q.weights = CQ_QINT4, q.include = fc1;
    ok = ok && cq_quantize(f.m, &q, &err) == CQ_OK;
    q.weights = CQ_QINT2, q.include = fc2;
    ok = ok && cq_quantize(f.m, &q, &err) == CQ_OK;
    q.weights = CQ_QINT8, q.include = convs;
    ok = ok && cq_quantize(f.m, &q, &err) == CQ_OK;
    ok = ok && cq_model_calibrate(f.m, f.ds, 0, 1000, 250, 0.9, &err) == CQ_OK && cq_freeze(f.m, &err) == CQ_OK &&
         cq_model_save(f.m, dir, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    cq_model *re = NULL;
    ok = ok && cq_lenet_new(&re, &err) == CQ_OK && cq_model_requantize(re, dir, &err) == CQ_OK;
    CHECKF(ok, "requantize: %s", err.msg);
    if (ok) {
        enum { N = 1000 };
        float *a = malloc(N * 10 * sizeof *a), *b = malloc(N * 10 * sizeof *b);
        if (a && b && run(f.m, f.ds, HALF, N, a) && run(re, f.ds, HALF, N, b))
            CHECK_BYTES(a, b, N * 10 * sizeof *a, "saved vs reloaded outputs");
        free(a);
        free(b);
        const char *names[] = {"conv1", "conv2", "fc1", "fc2"};
        for (int i = 0; i < 4; i++) {
            cq_module_qinfo x = cq_module_get_qinfo(cq_module_find(cq_model_root(f.m), names[i]));
            cq_module_qinfo y = cq_module_get_qinfo(cq_module_find(cq_model_root(re), names[i]));
            CHECKF(y.frozen && x.weights == y.weights && x.activations == y.activations &&
                       x.input_scale == y.input_scale && x.output_scale == y.output_scale,
                   "%s", names[i]);
        }
        int64_t acc_a = -1, acc_b = -2;
        CHECK(cq_model_evaluate(f.m, f.ds, HALF, HALF, 250, &acc_a, NULL, &err) == CQ_OK &&
              cq_model_evaluate(re, f.ds, HALF, HALF, 250, &acc_b, NULL, &err) == CQ_OK && acc_a == acc_b);
    }
    cq_model_free(re);
    cq_fs_remove_tree(dir, NULL);
    teardown(&f);
}
