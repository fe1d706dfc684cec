/*
 * module_train.c - the data-set loops around a model: top-1 evaluation, calibration passes
 * and one training epoch (forward, loss, backward, optimizer step, tape reset). They hold no
 * math of their own; they are here so the demo, the examples and the tests run the same loop.
 */
#include "nn/module_internal.h"

/* The input batch [B, sample shape...] as a tape var. */
static cq_status batch_input(cq_tape *t, const cq_dataset *ds, float *x, int64_t b, cq_var **out, cq_err *err) {
    int64_t shape[CQ_MAX_DIMS];
    shape[0] = b;
    for (int i = 0; i < ds->ndim; i++) shape[i + 1] = ds->shape[i];
    cq_tensor view = {.dtype = CQ_F32, .ndim = ds->ndim + 1, .data = x};
    memcpy(view.shape, shape, sizeof shape);
    return cq_tape_input(t, &view, out, err);
}

static cq_status check_range(const cq_dataset *ds, int64_t start, int64_t count, int64_t batch, const char *fn,
                             cq_err *err) {
    if (!ds || start < 0 || count < 0 || start > ds->count || count > ds->count - start)
        return cq_err_set(err, CQ_E_ARG, "%s: samples [%lld, %lld) are outside the data set", fn, (long long)start,
                          (long long)(start + count));
    if (batch <= 0) return cq_err_set(err, CQ_E_ARG, "%s: batch must be positive", fn);
    return CQ_OK;
}

static int64_t argmax_row(const float *row, int64_t n) {
    int64_t best = 0;
    for (int64_t j = 1; j < n; j++)
        if (row[j] > row[best]) best = j;
    return best;
}

/* Runs the model over a slice with grad off; counts correct predictions when asked. */
static cq_status inference_pass(cq_model *m, const cq_dataset *ds, int64_t start, int64_t count, int64_t batch,
                                int64_t *correct, uint8_t *predictions, cq_err *err) {
    int64_t per = cq_dataset_sample_numel(ds), b_max = batch < count ? batch : count;
    cq_tape *t = NULL;
    float *x = NULL;
    int64_t *y = NULL, ok = 0;
    cq_status s = cq_tape_new(&t, err);
    if (!s && b_max > 0) {
        x = cq__malloc((size_t)(b_max * per) * sizeof *x, err, "an input batch");
        y = cq__malloc((size_t)b_max * sizeof *y, err, "a label batch");
        if (!x || !y) s = CQ_E_NOMEM;
    }
    if (!s) cq_tape_set_grad_enabled(t, false);
    cq_model_set_training(m, false);
    for (int64_t i = 0; !s && i < count; i += batch) {
        int64_t b = count - i < batch ? count - i : batch;
        cq_var *in = NULL, *out = NULL;
        s = cq_dataset_batch(ds, start + i, b, x, y, err);
        if (!s) s = batch_input(t, ds, x, b, &in, err);
        if (!s) s = cq_model_forward(m, t, in, &out, err);
        if (!s && (out->data->ndim != 2 || out->data->shape[0] != b))
            s = cq_err_set(err, CQ_E_SHAPE, "%s: the model's output is not [batch, classes]", m->arch);
        for (int64_t r = 0; !s && r < b; r++) {
            int64_t n = out->data->shape[1], p = argmax_row(cq_var_f32(out) + r * n, n);
            ok += p == y[r];
            if (predictions) predictions[i + r] = (uint8_t)p;
        }
        cq_tape_reset(t);
    }
    if (correct) *correct = ok;
    free(x);
    free(y);
    cq_tape_free(t);
    return s;
}

cq_status cq_model_evaluate(cq_model *m, const cq_dataset *ds, int64_t start, int64_t count, int64_t batch,
                            int64_t *correct, uint8_t *predictions, cq_err *err) {
    if (!m || !correct) return cq_err_set(err, CQ_E_ARG, "cq_model_evaluate: NULL argument");
    cq_status s = check_range(ds, start, count, batch, "cq_model_evaluate", err);
    return s ? s : inference_pass(m, ds, start, count, batch, correct, predictions, err);
}

cq_status cq_model_calibrate(cq_model *m, const cq_dataset *ds, int64_t start, int64_t count, int64_t batch,
                             double momentum, cq_err *err) {
    if (!m) return cq_err_set(err, CQ_E_ARG, "cq_model_calibrate: model is NULL");
    cq_status s = check_range(ds, start, count, batch, "cq_model_calibrate", err);
    if (!s) s = cq_calibrate_begin(m, momentum, err);
    if (!s) s = inference_pass(m, ds, start, count, batch, NULL, NULL, err);
    cq_calibrate_end(m);
    return s;
}

cq_train_opts cq_train_default_opts(void) { return (cq_train_opts){.batch = 64, .loss = CQ_LOSS_NLL}; }

cq_status cq_model_train_epoch(cq_model *m, cq_optim *optim, const cq_dataset *ds, int64_t start, int64_t count,
                               const cq_train_opts *opts, float *mean_loss, cq_err *err) {
    if (!m || !optim || !opts) return cq_err_set(err, CQ_E_ARG, "cq_model_train_epoch: NULL argument");
    cq_status s = check_range(ds, start, count, opts->batch, "cq_model_train_epoch", err);
    if (s) return s;
    int64_t per = cq_dataset_sample_numel(ds), batch = opts->batch, b_max = batch < count ? batch : count;
    int64_t steps = (count + batch - 1) / batch;
    cq_tape *t = NULL;
    int64_t *order = cq__malloc((size_t)(count ? count : 1) * sizeof *order, err, "a sample order");
    float *x = b_max ? cq__malloc((size_t)(b_max * per) * sizeof *x, err, "an input batch") : NULL;
    int64_t *y = b_max ? cq__malloc((size_t)b_max * sizeof *y, err, "a label batch") : NULL;
    if (!order || (b_max && (!x || !y))) s = CQ_E_NOMEM;
    if (!s) s = cq_tape_new(&t, err);
    if (!s) {
        for (int64_t i = 0; i < count; i++) order[i] = start + i;
        uint64_t state = opts->shuffle_seed;
        for (int64_t i = count - 1; opts->shuffle_seed && i > 0; i--) { /* Fisher-Yates */
            uint64_t z = (state += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            int64_t j = (int64_t)(z % (uint64_t)(i + 1)), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
    }
    cq_model_set_training(m, true);
    double total = 0.0;
    for (int64_t step = 0; !s && step < steps; step++) {
        int64_t i = step * batch, b = count - i < batch ? count - i : batch;
        cq_var *in = NULL, *out = NULL, *loss = NULL;
        cq_optim_zero_grad(optim);
        s = cq_dataset_batch_indexed(ds, order + i, b, x, y, err);
        if (!s) s = batch_input(t, ds, x, b, &in, err);
        if (!s) s = cq_model_forward(m, t, in, &out, err);
        if (!s) s = opts->loss == CQ_LOSS_NLL ? cq_nll_loss(t, out, y, &loss, err) : cq_cross_entropy(t, out, y, &loss, err);
        if (!s) s = cq_backward(t, loss, err);
        if (!s) s = cq_optim_step(optim, err);
        if (!s) {
            float l = cq_var_f32(loss)[0];
            total += l;
            if (opts->progress) opts->progress(opts->progress_ctx, step + 1, steps, l);
        }
        cq_tape_reset(t);
    }
    cq_model_set_training(m, false);
    if (mean_loss) *mean_loss = steps ? (float)(total / (double)steps) : 0.0f;
    cq_tape_free(t);
    free(order);
    free(x);
    free(y);
    return s;
}
