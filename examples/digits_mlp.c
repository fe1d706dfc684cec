/*
 * digits_mlp.c - train a small MLP from scratch in C on scikit-learn's digits (8x8 images,
 * data/digits.csv.gz), then run optimum-quanto's workflow on it: quantize (int4 weights, int8
 * activations), calibrate, fine-tune with quantization in the loop (QAT), freeze, save a quanto
 * checkpoint (model.safetensors + quanto_qmap.json), reload it into a fresh model with
 * requantize and check that the reloaded model's outputs are bit-identical.
 *
 *     build/release/examples/digits_mlp [data/digits.csv.gz] [OUT_DIR]
 *
 * The first 1,400 rows train, the remaining 397 test. OUT_DIR defaults to a temporary folder.
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include "cquanto.h"
#include "cquanto/experimental.h" /* the digits reader */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TRAIN = 1400 };

#define TRY(call)                                                                    \
    do {                                                                             \
        if ((call) != CQ_OK) {                                                       \
            fprintf(stderr, "digits_mlp: %s\n", err.msg);                           \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static double accuracy(cq_model *m, const cq_dataset *ds, int64_t *correct_out) {
    cq_err err = {0};
    int64_t correct = 0;
    TRY(cq_model_evaluate(m, ds, TRAIN, ds->count - TRAIN, 128, &correct, NULL, &err));
    if (correct_out) *correct_out = correct;
    return 100.0 * (double)correct / (double)(ds->count - TRAIN);
}

/* `epochs` epochs of Adam over the training rows. */
static void train(cq_model *m, const cq_dataset *ds, int epochs, float lr, const char *what) {
    cq_err err = {0};
    cq_var *params[16];
    int n = cq_model_parameters(m, params, 16);
    cq_optim_opts oo = cq_optim_default_opts(CQ_OPTIM_ADAM);
    oo.lr = lr;
    cq_optim *opt = NULL;
    TRY(cq_optim_new(&opt, &oo, params, n, &err));
    cq_train_opts to = cq_train_default_opts();
    to.batch = 32;
    to.loss = CQ_LOSS_CROSS_ENTROPY; /* the MLP returns logits */
    for (int e = 0; e < epochs; e++) {
        float loss = 0;
        to.shuffle_seed = 1 + (uint64_t)e;
        TRY(cq_model_train_epoch(m, opt, ds, 0, TRAIN, &to, &loss, &err));
        if (e == epochs - 1 || (e + 1) % 5 == 0)
            printf("  %s epoch %2d: mean loss %.4f, test accuracy %.2f%%\n", what, e + 1, loss, accuracy(m, ds, NULL));
    }
    cq_optim_free(opt);
}

/* The test rows' logits, for comparing two models. */
static float *logits(cq_model *m, const cq_dataset *ds) {
    cq_err err = {0};
    int64_t n = ds->count - TRAIN, per = cq_dataset_sample_numel(ds);
    float *x = malloc((size_t)(n * per) * sizeof *x), *out = malloc((size_t)n * 10 * sizeof *out);
    cq_tape *t = NULL;
    cq_var *in = NULL, *y = NULL;
    if (!x || !out) exit(1);
    cq_tensor view = {.dtype = CQ_F32, .ndim = 2, .shape = {n, per}, .data = x};
    TRY(cq_dataset_batch(ds, TRAIN, n, x, NULL, &err));
    TRY(cq_tape_new(&t, &err));
    cq_tape_set_grad_enabled(t, false);
    cq_model_set_training(m, false);
    TRY(cq_tape_input(t, &view, &in, &err));
    TRY(cq_model_forward(m, t, in, &y, &err));
    memcpy(out, cq_var_f32(y), (size_t)n * 10 * sizeof *out);
    cq_tape_free(t);
    free(x);
    return out;
}

int main(int argc, char **argv) {
    const char *csv = argc > 1 ? argv[1] : "data/digits.csv.gz";
    char tmpl[] = "/tmp/digits-mlp-XXXXXX";
    const char *out_dir = argc > 2 ? argv[2] : mkdtemp(tmpl);
    if (!out_dir) {
        perror("digits_mlp: temporary folder");
        return 1;
    }
    cq_err err = {0};
    cq_dataset *ds = NULL;
    TRY(cq_dataset_load_digits(&ds, csv, &err));
    printf("digits: %lld images of 8x8; training on %d, testing on %lld\n", (long long)ds->count, TRAIN,
           (long long)(ds->count - TRAIN));

    /* 1. a float MLP 64 -> 64 -> 32 -> 10, trained from scratch */
    const int64_t sizes[] = {64, 64, 32, 10};
    cq_model *m = NULL;
    TRY(cq_mlp_new(&m, 3, sizes, 42, &err));
    printf("1. float training\n");
    train(m, ds, 20, 3e-3f, "float");
    double float_acc = accuracy(m, ds, NULL);

    /* 2. quantize every Linear: int4 weights (per channel: 64 and 32 inputs fit no group),
     *    int8 activations; then calibrate the activation scales on the training rows */
    cq_quantize_opts q = cq_quantize_default_opts();
    q.weights = CQ_QINT4;
    q.activations = CQ_QINT8;
    TRY(cq_quantize(m, &q, &err));
    TRY(cq_model_calibrate(m, ds, 0, TRAIN, 128, 0.9, &err));
    printf("2. quantized W4A8 and calibrated: %.2f%% (float %.2f%%)\n", accuracy(m, ds, NULL), float_acc);

    /* 3. quantization-aware fine-tuning: the float weights learn through the quantizer */
    printf("3. QAT\n");
    train(m, ds, 5, 1e-3f, "QAT");

    /* 4. freeze (integer weights), save, reload into a fresh model, compare */
    TRY(cq_freeze(m, &err));
    int64_t frozen_correct = 0, reloaded_correct = 0;
    double frozen_acc = accuracy(m, ds, &frozen_correct);
    TRY(cq_model_save(m, out_dir, &err));
    cq_model *re = NULL;
    TRY(cq_mlp_new(&re, 3, sizes, 7, &err)); /* other random weights: everything comes from the files */
    TRY(cq_model_requantize(re, out_dir, &err));
    accuracy(re, ds, &reloaded_correct);
    float *a = logits(m, ds), *b = logits(re, ds);
    bool same = memcmp(a, b, (size_t)(ds->count - TRAIN) * 10 * sizeof *a) == 0;
    printf("4. frozen %.2f%%, %zu weight bytes (float: %lld); saved to %s and reloaded: %s\n", frozen_acc,
           cq_model_weight_bytes(m), (long long)cq_model_weight_count(m) * 4, out_dir,
           same && frozen_correct == reloaded_correct ? "bit-identical outputs" : "OUTPUTS DIFFER");
    free(a);
    free(b);
    cq_model_free(re);
    cq_model_free(m);
    cq_dataset_free(ds);
    if (argc <= 2) cq_fs_remove_tree(out_dir, NULL);
    return same ? 0 : 1;
}
