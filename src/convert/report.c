/*
 * report.c - quantization error of a quanto checkpoint against its float source: per module
 * SNR, relative RMS error, max absolute error and bits per weight, worst first. Sums run in
 * double, in element order, one module per thread, so the figures never depend on the thread
 * count. Dequantization is src/quant's; the chart of a report is report_svg.c's.
 */
#include "convert_internal.h"

#include <math.h>
#include <stdlib.h>

/* ---- error statistics --------------------------------------------------------------------------- */

#define STATS_CHUNK 4096

static void to_f32(const void *src, cq_dtype t, int64_t n, float *dst) {
    switch (t) {
    case CQ_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case CQ_BF16: cq_vec_bf16_to_f32(src, dst, n); break;
    case CQ_F16: cq_vec_f16_to_f32(src, dst, n); break;
    default:
        for (int64_t i = 0; i < n; i++) dst[i] = cq_load_f32(src, t, i);
    }
}

void cq_error_stats_add(cq_error_stats *s, const void *x, cq_dtype xt, const void *y, cq_dtype yt, int64_t n) {
    if (!s || !x || !y) return;
    float a[STATS_CHUNK], b[STATS_CHUNK];
    size_t xs = cq_dtype_size(xt), ys = cq_dtype_size(yt);
    for (int64_t off = 0; off < n; off += STATS_CHUNK) {
        int64_t k = n - off < STATS_CHUNK ? n - off : STATS_CHUNK;
        to_f32((const uint8_t *)x + (size_t)off * xs, xt, k, a);
        to_f32((const uint8_t *)y + (size_t)off * ys, yt, k, b);
        for (int64_t i = 0; i < k; i++) {
            double r = a[i], d = (double)a[i] - (double)b[i];
            s->sum_sq_ref += r * r;
            s->sum_sq_err += d * d;
            double ad = fabs(d);
            if (ad > s->max_abs || isnan(ad)) s->max_abs = isnan(s->max_abs) ? s->max_abs : ad;
        }
    }
    s->n += n > 0 ? n : 0;
}

void cq_error_stats_finish(cq_error_stats *s) {
    if (!s) return;
    if (isnan(s->sum_sq_err) || isnan(s->sum_sq_ref)) {
        s->snr_db = s->rel_rms = NAN;
    } else if (s->sum_sq_err == 0.0) {
        s->snr_db = INFINITY;
        s->rel_rms = 0.0;
    } else if (s->sum_sq_ref == 0.0) {
        s->snr_db = -INFINITY;
        s->rel_rms = INFINITY;
    } else {
        s->snr_db = 10.0 * log10(s->sum_sq_ref / s->sum_sq_err);
        s->rel_rms = sqrt(s->sum_sq_err / s->sum_sq_ref);
    }
}

cq_status cq_error_stats_tensors(const cq_tensor *ref, const cq_tensor *approx, cq_error_stats *out, cq_err *err) {
    CQ__ARG(out);
    memset(out, 0, sizeof *out);
    if (!ref || !approx) return cq_err_set(err, CQ_E_ARG, "error stats: NULL tensor");
    if (!cq_dtype_is_float(ref->dtype) || !cq_dtype_is_float(approx->dtype))
        return cq_err_set(err, CQ_E_DTYPE, "error stats: %s vs %s (float tensors only)", cq_dtype_name(ref->dtype),
                          cq_dtype_name(approx->dtype));
    if (cq_tensor_numel(ref) != cq_tensor_numel(approx))
        return cq_err_set(err, CQ_E_SHAPE, "error stats: %lld vs %lld elements", (long long)cq_tensor_numel(ref),
                          (long long)cq_tensor_numel(approx));
    cq_error_stats_add(out, ref->data, ref->dtype, approx->data, approx->dtype, cq_tensor_numel(ref));
    cq_error_stats_finish(out);
    return CQ_OK;
}

/* ---- the report --------------------------------------------------------------------------------- */

struct cq_report {
    cq_report_entry *entries; /* worst first */
    int64_t n;
    char **names;
    cq_error_stats overall;
    double bits_per_weight;
};

void cq_report_free(cq_report *r) {
    if (!r) return;
    for (int64_t i = 0; i < r->n; i++) free(r->names[i]);
    free(r->names);
    free(r->entries);
    free(r);
}

int64_t cq_report_count(const cq_report *r) { return r ? r->n : 0; }

const cq_report_entry *cq_report_entry_at(const cq_report *r, int64_t i) {
    return r && i >= 0 && i < r->n ? &r->entries[i] : NULL;
}

void cq_report_overall(const cq_report *r, cq_error_stats *err, double *bits_per_weight) {
    if (err) {
        if (r) *err = r->overall;
        else memset(err, 0, sizeof *err);
    }
    if (bits_per_weight) *bits_per_weight = r ? r->bits_per_weight : 0.0;
}

typedef struct report_job {
    const cq_ckpt *fc, *qc;
    const cq__qmodules *qm;
    int64_t *mods;   /* the quantized modules among qm */
    int64_t *fidx;   /* their float weights in fc */
    cq_report_entry *entries;
    const cq_convert_opts *opts;
    int64_t done;
    double t0;
} report_job;

static cq_status report_compute(void *ctx, int64_t i, void **result, cq_err *err) {
    CQ_UNUSED(result);
    report_job *j = ctx;
    const cq__qmodule *m = &j->qm->mods[j->mods[i]];
    cq_report_entry *e = &j->entries[i];
    cq_qweight *qw = NULL;
    cq_tensor *deq = NULL;
    cq_status s = cq__qmodule_weight(j->qc, m, &qw, err);
    if (!s && (s = cq_qweight_dequantize(qw, CQ_F32, &deq, err))) cq_err_prefix(err, s, "%s: ", m->module);
    if (!s) {
        const cq_tensor *ref = cq_ckpt_tensor(j->fc, j->fidx[i]);
        if (cq_tensor_numel(ref) != cq_tensor_numel(deq))
            s = cq_err_set(err, CQ_E_SHAPE, "%s: the float weight has %lld elements, the quantized one %lld", m->module,
                           (long long)cq_tensor_numel(ref), (long long)cq_tensor_numel(deq));
        else if (!cq_dtype_is_float(ref->dtype))
            s = cq_err_set(err, CQ_E_DTYPE, "%sweight: dtype %s is not a float", m->prefix, cq_dtype_name(ref->dtype));
        if (!s) {
            memset(&e->err, 0, sizeof e->err);
            cq_error_stats_add(&e->err, ref->data, ref->dtype, deq->data, CQ_F32,
                               cq_tensor_numel(ref));
            cq_error_stats_finish(&e->err);
            uint64_t qbytes = cq_tensor_nbytes(qw->data) + cq_tensor_nbytes(qw->scale) +
                              (qw->shift ? cq_tensor_nbytes(qw->shift) : 0);
            e->bits_per_weight = 8.0 * (double)qbytes / (double)cq_tensor_numel(ref);
            e->group_size = qw->group_size;
        }
    }
    cq__ckpt_release(j->fc, j->fidx[i], 0, UINT64_MAX);
    cq__ckpt_release(j->qc, m->data_idx, 0, UINT64_MAX);
    cq_tensor_free(deq);
    cq_qweight_free(qw);
    return s;
}

static cq_status report_write(void *ctx, int64_t i, void *result, cq_err *err) {
    CQ_UNUSED(result);
    CQ_UNUSED(err);
    report_job *j = ctx;
    j->done++;
    cq__report_progress(j->opts, j->done, j->qm->n, 0, 0, j->t0, j->entries[i].module);
    return CQ_OK;
}

/* Worst first: lowest SNR (NaN counts as worst), ties by name. */
static int cmp_worst_first(const void *pa, const void *pb) {
    const cq_report_entry *a = pa, *b = pb;
    double x = a->err.snr_db, y = b->err.snr_db;
    bool xn = isnan(x), yn = isnan(y);
    if (xn != yn) return xn ? -1 : 1;
    if (!xn && x != y) return x < y ? -1 : 1;
    return strcmp(a->module, b->module);
}

cq_status cq_report_build(const char *float_in, const char *quant_in, const cq_convert_opts *opts, cq_report **out,
                          cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_report_build: out is NULL");
    *out = NULL;
    CQ__ARG(float_in);
    CQ__ARG(quant_in);
    cq_convert_opts defaults = cq_convert_default_opts();
    if (!opts) opts = &defaults;
    report_job j;
    memset(&j, 0, sizeof j);
    j.opts = opts;
    j.t0 = cq__now();
    cq_ckpt *fc = NULL, *qc = NULL;
    cq__qmodules qm;
    memset(&qm, 0, sizeof qm);
    cq_report *r = cq__calloc(1, sizeof *r, err, "the report");
    cq_status s = r ? CQ_OK : CQ_E_NOMEM;
    if (!s) s = cq_ckpt_open(float_in, &fc, err);
    if (!s) s = cq_ckpt_open(quant_in, &qc, err);
    if (!s) s = cq__qmodules_find(qc, fc, &qm, err);
    if (!s) {
        cq__ckpt_sequential(fc);
        cq__ckpt_sequential(qc);
    }
    int64_t n = 0;
    if (!s) {
        j.mods = cq__calloc((size_t)qm.n + 1, sizeof *j.mods, err, "the report");
        j.fidx = cq__calloc((size_t)qm.n + 1, sizeof *j.fidx, err, "the report");
        r->entries = cq__calloc((size_t)qm.n + 1, sizeof *r->entries, err, "the report");
        r->names = cq__calloc((size_t)qm.n + 1, sizeof *r->names, err, "the report");
        if (!j.mods || !j.fidx || !r->entries || !r->names) s = CQ_E_NOMEM;
    }
    for (int64_t i = 0; !s && i < qm.n; i++) {
        const cq__qmodule *m = &qm.mods[i];
        if (!cq_qtype_get(m->weights)) continue;
        char name[2048];
        snprintf(name, sizeof name, "%sweight", m->prefix);
        int64_t fi = cq_ckpt_find(fc, name);
        if (fi < 0) {
            s = cq_err_set(err, CQ_E_NOTFOUND, "%s: no tensor '%s' to compare %s with (is it the model it came from?)",
                           float_in, name, m->module);
            break;
        }
        cq_report_entry *e = &r->entries[n];
        r->names[n] = cq__strdup(m->module, err);
        if (!r->names[n]) {
            s = CQ_E_NOMEM;
            break;
        }
        e->module = r->names[n];
        e->order = m->data_idx;
        e->qtype = m->weights;
        e->ndim = m->ndim;
        memcpy(e->shape, m->shape, sizeof e->shape);
        j.mods[n] = i;
        j.fidx[n] = fi;
        n++;
    }
    r->n = n;
    if (!s && n == 0) s = cq_err_set(err, CQ_E_NOTFOUND, "%s: no quantized module to report on", quant_in);
    j.fc = fc;
    j.qc = qc;
    j.qm = &qm;
    j.entries = r ? r->entries : NULL;
    if (!s) {
        static const cq__pipe_ops ops = {report_compute, report_write, NULL, NULL};
        s = cq__pipe_run(n, opts->threads > 0 ? opts->threads : cq_get_num_threads(), opts, &j, &ops, err);
    }
    if (!s) {
        double qbits = 0, elems = 0;
        for (int64_t i = 0; i < n; i++) {
            r->overall.n += r->entries[i].err.n;
            r->overall.sum_sq_ref += r->entries[i].err.sum_sq_ref;
            r->overall.sum_sq_err += r->entries[i].err.sum_sq_err;
            double ma = r->entries[i].err.max_abs;
            if (isnan(ma) || ma > r->overall.max_abs) r->overall.max_abs = isnan(r->overall.max_abs) ? r->overall.max_abs : ma;
            qbits += r->entries[i].bits_per_weight * (double)r->entries[i].err.n;
            elems += (double)r->entries[i].err.n;
        }
        cq_error_stats_finish(&r->overall);
        r->bits_per_weight = elems > 0 ? qbits / elems : 0;
        qsort(r->entries, (size_t)n, sizeof *r->entries, cmp_worst_first);
    }
    free(j.mods);
    free(j.fidx);
    cq__qmodules_free(&qm);
    cq_ckpt_close(fc);
    cq_ckpt_close(qc);
    if (s) {
        cq_report_free(r);
        return s;
    }
    *out = r;
    return CQ_OK;
}
