/*
 * cmd_demo.c - `cquanto demo`: optimum-quanto's MNIST workflow on the bundled LeNet, end to end
 * in C. Each row starts from the float checkpoint, quantizes it one way (calibrating and
 * fine-tuning on the first 5,000 MNIST test images where the row says so), freezes it, saves
 * it as a quanto checkpoint, reloads that into a fresh LeNet with requantize and evaluates both
 * on the last 5,000 images: top-1 accuracy, checkpoint bytes, bits per weight, median
 * milliseconds per batch of 250 and the largest difference between the saved and the reloaded model's
 * outputs (0 when reloading is exact). Progress goes to stderr on a terminal only.
 */
#include "cli.h"
#include "progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { SPLIT = 5000, EVAL_BATCH = 250, TRAIN_BATCH = 50 };

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto demo [--data DIR] [--out DIR] [--threads N] [--epochs N] [--quiet]\n\n"
            "The optimum-quanto workflow on the bundled LeNet and the MNIST test set: quantize, calibrate,\n"
            "fine-tune with quantization in the loop (QAT), freeze, save a quanto checkpoint\n"
            "(model.safetensors + quanto_qmap.json) and reload it with requantize, for several settings.\n"
            "Calibration and fine-tuning use the first 5,000 test images, accuracy the last 5,000.\n\n"
            "  --data DIR     folder with lenet_mnist.safetensors and the MNIST t10k files (default: data)\n"
            "  --out DIR      keep each row's checkpoint in DIR/<row>/ (default: a temporary folder,\n"
            "                 removed at the end)\n"
            "  --threads N    worker threads (default: CQ_THREADS or all cores)\n"
            "  --epochs N     fine-tuning epochs for the QAT rows (default 1)\n"
            "  --quiet        no progress line\n"
            "  -h, --help     this help\n\n"
            "exit status: 0 ok (every reload exact), 1 failure, 2 usage error\n");
}

typedef struct demo {
    const char *data_dir, *out_dir;
    int epochs;
    bool progress; /* draw the training progress line on stderr */
    cq_dataset *mnist;
    char lenet_path[4096];
    cq_err err;
} demo;

typedef struct row_result {
    const char *name;
    int64_t correct;
    uint64_t file_bytes;
    double bits_per_weight;
    double ms_per_batch;
    float max_diff;
} row_result;

typedef struct progress_ctx {
    const char *row;
    int epoch, epochs;
    double last;
} progress_ctx;

static void on_step(void *ctx, int64_t step, int64_t steps, float loss) {
    progress_ctx *p = ctx;
    double t = cli_now();
    if (step != steps && t - p->last < 0.1) return;
    p->last = t;
    fprintf(stderr, "\r\033[K  %s: epoch %d/%d, step %lld/%lld, loss %.4f", p->row, p->epoch, p->epochs,
            (long long)step, (long long)steps, loss);
    fflush(stderr);
}

static void clear_progress(const demo *d) {
    if (d->progress) fprintf(stderr, "\r\033[K");
}

static cq_status fresh_lenet(demo *d, cq_model **m) {
    cq_status s = cq_lenet_new(m, &d->err);
    if (!s) s = cq_model_load_safetensors(*m, d->lenet_path, &d->err);
    return s;
}

/* QAT: epochs of Adam on the first half, through the straight-through quantized weights. */
static cq_status fine_tune(demo *d, cq_model *m, const char *row, float lr) {
    cq_var *params[16];
    int n = cq_model_parameters(m, params, 16);
    cq_optim_opts oo = cq_optim_default_opts(CQ_OPTIM_ADAM);
    oo.lr = lr;
    cq_optim *opt = NULL;
    cq_status s = cq_optim_new(&opt, &oo, params, n, &d->err);
    progress_ctx pc = {row, 0, d->epochs, 0};
    cq_train_opts to = cq_train_default_opts();
    to.batch = TRAIN_BATCH;
    to.loss = CQ_LOSS_NLL;
    to.progress = d->progress ? on_step : NULL;
    to.progress_ctx = &pc;
    for (int e = 0; !s && e < d->epochs; e++) {
        pc.epoch = e + 1;
        to.shuffle_seed = 1000 + (uint64_t)e;
        s = cq_model_train_epoch(m, opt, d->mnist, 0, SPLIT, &to, NULL, &d->err);
    }
    clear_progress(d);
    cq_optim_free(opt);
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Log-probabilities of the evaluation half, batch by batch, into out (SPLIT * 10 floats);
 * also the median milliseconds per batch (the median shrugs off other processes' bursts). */
static cq_status eval_outputs(demo *d, cq_model *m, float *out, double *ms_per_batch) {
    int64_t per = cq_dataset_sample_numel(d->mnist);
    float *x = malloc((size_t)(EVAL_BATCH * per) * sizeof *x);
    cq_tape *t = NULL;
    cq_status s = x ? cq_tape_new(&t, &d->err) : cq_err_set(&d->err, CQ_E_NOMEM, "out of memory");
    double times[SPLIT / EVAL_BATCH];
    int batches = 0;
    if (!s) cq_tape_set_grad_enabled(t, false);
    cq_model_set_training(m, false);
    for (int64_t i = 0; !s && i < SPLIT; i += EVAL_BATCH) {
        cq_tensor view = {.dtype = CQ_F32, .ndim = 4, .shape = {EVAL_BATCH, 1, 28, 28}, .data = x};
        cq_var *in = NULL, *y = NULL;
        s = cq_dataset_batch(d->mnist, SPLIT + i, EVAL_BATCH, x, NULL, &d->err);
        double t0 = cli_now();
        if (!s) s = cq_tape_input(t, &view, &in, &d->err);
        if (!s) s = cq_model_forward(m, t, in, &y, &d->err);
        times[batches++] = cli_now() - t0;
        if (!s) memcpy(out + i * 10, cq_var_f32(y), (size_t)EVAL_BATCH * 10 * sizeof *out);
        cq_tape_reset(t);
    }
    qsort(times, (size_t)batches, sizeof *times, cmp_double);
    *ms_per_batch = batches ? 1000.0 * times[batches / 2] : 0;
    cq_tape_free(t);
    free(x);
    return s;
}

static int64_t count_correct(const demo *d, const float *logprobs) {
    int64_t ok = 0;
    for (int64_t i = 0; i < SPLIT; i++) {
        const float *r = logprobs + i * 10;
        int best = 0;
        for (int j = 1; j < 10; j++)
            if (r[j] > r[best]) best = j;
        ok += best == d->mnist->labels[SPLIT + i];
    }
    return ok;
}

/* Freezes m, saves it under dir, reloads it into a fresh LeNet and measures both. When
 * reloaded_row is given it also describes the reloaded model. */
static cq_status finish_row(demo *d, cq_model *m, const char *dir, row_result *r, row_result *reloaded_row) {
    float *a = malloc(SPLIT * 10 * sizeof *a), *b = malloc(SPLIT * 10 * sizeof *b);
    cq_model *re = NULL;
    char *path = NULL;
    double ms_b = 0;
    cq_status s = a && b ? CQ_OK : cq_err_set(&d->err, CQ_E_NOMEM, "out of memory");
    if (!s) s = cq_freeze(m, &d->err);
    if (!s) s = cq_model_save(m, dir, &d->err);
    if (!s) s = cq_lenet_new(&re, &d->err);
    if (!s) s = cq_model_requantize(re, dir, &d->err);
    /* a warm-up pass so that the timing below does not include one-time weight packing */
    if (!s) s = eval_outputs(d, m, a, &r->ms_per_batch);
    if (!s) s = eval_outputs(d, m, a, &r->ms_per_batch);
    if (!s) s = eval_outputs(d, re, b, &ms_b);
    if (!s) s = eval_outputs(d, re, b, &ms_b);
    if (!s && !(path = cq_path_join(dir, "model.safetensors"))) s = cq_err_set(&d->err, CQ_E_NOMEM, "out of memory");
    if (!s) s = cq_fs_file_size(path, &r->file_bytes, &d->err);
    if (!s) {
        r->correct = count_correct(d, a);
        r->bits_per_weight = 8.0 * (double)cq_model_weight_bytes(m) / (double)cq_model_weight_count(m);
        r->max_diff = 0;
        for (int64_t i = 0; i < SPLIT * 10; i++) {
            float diff = fabsf(a[i] - b[i]);
            if (!(diff <= r->max_diff)) r->max_diff = diff; /* NaN propagates */
        }
        if (reloaded_row) {
            *reloaded_row = *r;
            reloaded_row->correct = count_correct(d, b);
            reloaded_row->ms_per_batch = ms_b;
            reloaded_row->bits_per_weight = 8.0 * (double)cq_model_weight_bytes(re) / (double)cq_model_weight_count(re);
        }
    }
    free(path);
    cq_model_free(re);
    free(a);
    free(b);
    return s;
}

static void print_header(void) {
    printf("%-28s %9s %11s %10s %12s %12s\n", "step", "top-1", "model bytes", "bits/wt", "ms/batch250",
           "max|re-sv|");
    printf("%-28s %9s %11s %10s %12s %12s\n", "----------------------------", "---------", "-----------",
           "----------", "------------", "------------");
}

static void print_row(const row_result *r) {
    printf("%-28s %8.2f%% %11llu %10.2f %12.2f %12.3g\n", r->name, (double)r->correct / (SPLIT / 100.0),
           (unsigned long long)r->file_bytes, r->bits_per_weight, r->ms_per_batch, (double)r->max_diff);
    fflush(stdout);
}

typedef struct row_spec {
    const char *name, *dir;
    cq_qtype weights, activations;
    bool calibrate;
    float qat_lr; /* 0: no fine-tuning */
    bool reload_row; /* also print the reloaded model as its own row */
} row_spec;

static cq_status run_row(demo *d, const row_spec *spec, row_result *r, row_result *reloaded) {
    cq_model *m = NULL;
    char *dir = cq_path_join(d->out_dir, spec->dir);
    cq_status s = dir ? fresh_lenet(d, &m) : cq_err_set(&d->err, CQ_E_NOMEM, "out of memory");
    if (!s && spec->weights != CQ_QNONE) {
        cq_quantize_opts q = cq_quantize_default_opts();
        q.weights = spec->weights;
        q.activations = spec->activations;
        s = cq_quantize(m, &q, &d->err);
    }
    if (!s && spec->calibrate) s = cq_model_calibrate(m, d->mnist, 0, SPLIT, EVAL_BATCH, 0.9, &d->err);
    if (!s && spec->qat_lr > 0) s = fine_tune(d, m, spec->name, spec->qat_lr);
    r->name = spec->name;
    if (!s) s = finish_row(d, m, dir, r, spec->reload_row ? reloaded : NULL);
    if (s) cq_err_prefix(&d->err, s, "%s: ", spec->name);
    cq_model_free(m);
    free(dir);
    return s;
}

static int run_demo(demo *d) {
    static const row_spec rows[] = {
        {"float32", "float", CQ_QNONE, CQ_QNONE, false, 0, false},
        {"W8 (int8 weights)", "w8", CQ_QINT8, CQ_QNONE, false, 0, false},
        {"W8A8 calibrated", "w8a8", CQ_QINT8, CQ_QINT8, true, 0, false},
        {"W4 (group rule)", "w4", CQ_QINT4, CQ_QNONE, false, 0, false},
        {"W4 + QAT", "w4-qat", CQ_QINT4, CQ_QNONE, false, 1e-4f, true},
        {"W2 + QAT", "w2-qat", CQ_QINT2, CQ_QNONE, false, 5e-4f, false},
        {"W float8 (e4m3fn)", "wf8", CQ_QFLOAT8_E4M3FN, CQ_QNONE, false, 0, false},
    };
    const int n_rows = (int)(sizeof rows / sizeof rows[0]);
    row_result results[8] = {0}, reloaded = {0};
    double t0 = cli_now();
    printf("cquanto demo: LeNet on MNIST (data: %s). Calibration and QAT on test images 0-4999,\n"
           "accuracy on 5000-9999; every row is frozen, saved as a quanto checkpoint and reloaded.\n"
           "threads: %d, QAT: %d epoch%s of Adam, batch %d\n\n",
           d->data_dir, cq_get_num_threads(), d->epochs, d->epochs == 1 ? "" : "s", TRAIN_BATCH);
    print_header();
    for (int i = 0; i < n_rows; i++) {
        if (run_row(d, &rows[i], &results[i], &reloaded)) {
            clear_progress(d);
            fprintf(stderr, "cquanto demo: %s\n", d->err.msg);
            return 1;
        }
        print_row(&results[i]);
    }
    reloaded.name = "W4 + QAT, saved + reloaded";
    print_row(&reloaded);
    results[n_rows] = reloaded;

    const int64_t fl = results[0].correct;
    bool exact = true;
    for (int i = 0; i <= n_rows; i++) exact &= results[i].max_diff == 0.0f;
    double w8a8_drop = (double)(fl - results[2].correct) / (SPLIT / 100.0);
    double w4_drop = (double)(fl - results[4].correct) / (SPLIT / 100.0);
    printf("\nchecks: W8A8 %.2f points from float (bound 0.3): %s; W4 after QAT %.2f points (bound 1.0): %s;\n"
           "        every reload bit-identical: %s\n",
           w8a8_drop, w8a8_drop <= 0.3 ? "ok" : "FAILED", w4_drop, w4_drop <= 1.0 ? "ok" : "FAILED",
           exact ? "ok" : "FAILED");
    printf("total %.1f s\n", cli_now() - t0);
    return exact && w8a8_drop <= 0.3 && w4_drop <= 1.0 ? 0 : 1;
}

int cmd_demo(int argc, char **argv) {
    demo d = {.data_dir = "data", .epochs = 1};
    const char *out = NULL;
    bool quiet = false;
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = true;
        } else if ((v = cli_opt_value(argc, argv, &i, "--data", &missing))) {
            d.data_dir = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--out", &missing))) {
            out = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--threads", &missing))) {
            if (cli_parse_int(v, 1, 1024, &threads)) return cli_usage_error("demo", "--threads needs 1..1024");
        } else if ((v = cli_opt_value(argc, argv, &i, "--epochs", &missing))) {
            long e;
            if (cli_parse_int(v, 1, 100, &e)) return cli_usage_error("demo", "--epochs needs 1..100");
            d.epochs = (int)e;
        } else if (missing) {
            return cli_usage_error("demo", "%s needs a value", argv[i]);
        } else {
            return cli_usage_error("demo", "unexpected argument '%s'", argv[i]);
        }
    }
    if (threads) cq_set_num_threads((int)threads);
    d.progress = !quiet && isatty(STDERR_FILENO);
    snprintf(d.lenet_path, sizeof d.lenet_path, "%s/lenet_mnist.safetensors", d.data_dir);
    char images[4096], labels[4096];
    snprintf(images, sizeof images, "%s/mnist-t10k-images-idx3-ubyte.gz", d.data_dir);
    snprintf(labels, sizeof labels, "%s/mnist-t10k-labels-idx1-ubyte.gz", d.data_dir);
    if (cq_dataset_load_mnist(&d.mnist, images, labels, &d.err)) return cli_fail("demo", &d.err);
    if (d.mnist->count < 2 * SPLIT) {
        cq_dataset_free(d.mnist);
        fprintf(stderr, "cquanto demo: %s has %lld images, the demo needs %d\n", images, (long long)d.mnist->count,
                2 * SPLIT);
        return 1;
    }
    char *tmp = NULL;
    if (out) {
        if (cq_fs_mkdir_p(out, &d.err)) {
            cq_dataset_free(d.mnist);
            return cli_fail("demo", &d.err);
        }
        d.out_dir = out;
    } else {
        char tmpl[] = "/tmp/cquanto-demo-XXXXXX";
        if (!mkdtemp(tmpl)) {
            cq_dataset_free(d.mnist);
            perror("cquanto demo: cannot create a temporary folder");
            return 1;
        }
        tmp = strdup(tmpl);
        d.out_dir = tmp;
    }
    int rc = run_demo(&d);
    if (tmp) cq_fs_remove_tree(tmp, NULL);
    else printf("checkpoints in %s/<row>/\n", out);
    free(tmp);
    cq_dataset_free(d.mnist);
    return rc;
}
