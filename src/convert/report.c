/*
 * report.c - quantization error of a quanto checkpoint against its float source: per module
 * SNR, relative RMS error, max absolute error and bits per weight, worst first, and an SVG bar
 * chart of SNR per module. Sums run in double, in element order, one module per thread, so the
 * figures never depend on the thread count. Dequantization is src/quant's.
 */
#include "convert_internal.h"

#include <math.h>
#include <stdarg.h>
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
    const cq__ckpt_maps *fmaps, *qmaps;
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
    cq_status s = cq__qmodule_weight(j->qc, j->qmaps, m, &qw, err);
    if (!s && (s = cq_qweight_dequantize(qw, CQ_F32, &deq, err))) cq_err_prefix(err, "%s: ", m->module);
    if (!s) {
        const cq_tensor *ref = cq_ckpt_tensor(j->fc, j->fidx[i]);
        if (cq_tensor_numel(ref) != cq_tensor_numel(deq))
            s = cq_err_set(err, CQ_E_SHAPE, "%s: the float weight has %lld elements, the quantized one %lld", m->module,
                           (long long)cq_tensor_numel(ref), (long long)cq_tensor_numel(deq));
        else if (!cq_dtype_is_float(ref->dtype))
            s = cq_err_set(err, CQ_E_DTYPE, "%sweight: dtype %s is not a float", m->prefix, cq_dtype_name(ref->dtype));
        if (!s) {
            memset(&e->err, 0, sizeof e->err);
            cq_error_stats_add(&e->err, cq__maps_data(j->fmaps, j->fidx[i]), ref->dtype, deq->data, CQ_F32,
                               cq_tensor_numel(ref));
            cq_error_stats_finish(&e->err);
            uint64_t qbytes = cq_tensor_nbytes(qw->data) + cq_tensor_nbytes(qw->scale) +
                              (qw->shift ? cq_tensor_nbytes(qw->shift) : 0);
            e->bits_per_weight = 8.0 * (double)qbytes / (double)cq_tensor_numel(ref);
            e->group_size = qw->group_size;
        }
    }
    cq__maps_release(j->fmaps, j->fidx[i]);
    cq__maps_release(j->qmaps, m->data_idx);
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
    cq_convert_opts defaults = cq_convert_default_opts();
    if (!opts) opts = &defaults;
    report_job j;
    memset(&j, 0, sizeof j);
    j.opts = opts;
    j.t0 = cq__now();
    cq_ckpt *fc = NULL, *qc = NULL;
    cq__qmodules qm;
    memset(&qm, 0, sizeof qm);
    cq__ckpt_maps fmaps, qmaps;
    memset(&fmaps, 0, sizeof fmaps);
    memset(&qmaps, 0, sizeof qmaps);
    cq_report *r = cq__calloc(1, sizeof *r, err, "the report");
    cq_status s = r ? CQ_OK : CQ_E_NOMEM;
    if (!s) s = cq_ckpt_open(float_in, &fc, err);
    if (!s) s = cq_ckpt_open(quant_in, &qc, err);
    if (!s) s = cq__qmodules_find(qc, fc, &qm, err);
    if (!s) s = cq__maps_open(fc, &fmaps, err);
    if (!s) s = cq__maps_open(qc, &qmaps, err);
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
    j.fmaps = &fmaps;
    j.qmaps = &qmaps;
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
    cq__maps_close(&fmaps);
    cq__maps_close(&qmaps);
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

/* ---- SVG ------------------------------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 16384) + (size_t)k;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
}

/* Text for XML: & < > " escaped. */
static void sb_text(sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_printf(b, "&amp;"); break;
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        default: sb_printf(b, "%c", *s);
        }
    }
}

static const char *const PALETTE[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
                                      "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#8c564b"};

static const char *kind_of(const char *module) {
    const char *d = strrchr(module, '.');
    return d ? d + 1 : module;
}

/* The layer index of a module: its first all-digit name component ("model.layers.12.mlp" -> 12). */
static long layer_of(const char *module) {
    for (const char *p = module; *p; p++) {
        if ((p == module || p[-1] == '.') && *p >= '0' && *p <= '9') {
            const char *q = p;
            while (*q >= '0' && *q <= '9') q++;
            if (*q == '.' || *q == '\0') return strtol(p, NULL, 10);
        }
    }
    return -1;
}

static int cmp_order(const void *pa, const void *pb) {
    const cq_report_entry *a = *(const cq_report_entry *const *)pa, *b = *(const cq_report_entry *const *)pb;
    return a->order < b->order ? -1 : a->order > b->order;
}

cq_status cq_report_write_svg(const cq_report *r, const char *title, const char *path, cq_err *err) {
    if (!r || !path) return cq_err_set(err, CQ_E_ARG, "cq_report_write_svg: NULL report or path");
    int64_t n = r->n;
    const cq_report_entry **byorder = cq__calloc((size_t)n + 1, sizeof *byorder, err, "the chart");
    if (!byorder) return CQ_E_NOMEM;
    for (int64_t i = 0; i < n; i++) byorder[i] = &r->entries[i];
    qsort(byorder, (size_t)n, sizeof *byorder, cmp_order);

    /* Module kinds (q_proj, k_proj ...) in order of first appearance get the palette's colours. */
    const char *kinds[CQ_ARRAY_LEN(PALETTE)];
    int nkinds = 0;
    double lo = 0, hi = 10;
    for (int64_t i = 0; i < n; i++) {
        const char *k = kind_of(byorder[i]->module);
        bool seen = false;
        for (int c = 0; c < nkinds && !seen; c++) seen = !strcmp(kinds[c], k);
        if (!seen && nkinds < (int)CQ_ARRAY_LEN(PALETTE)) kinds[nkinds++] = k;
        double v = byorder[i]->err.snr_db;
        if (isfinite(v)) {
            if (v > hi) hi = v;
            if (v < lo) lo = v;
        }
    }
    hi = ceil(hi / 10.0) * 10.0;
    lo = floor(lo / 10.0) * 10.0;
    const double left = 70, right = 170, top = 50, bottom = 60, plot_h = 320;
    double bar = n > 0 ? (n > 200 ? 3.0 : n > 60 ? 6.0 : 12.0) : 12.0;
    double plot_w = bar * (double)(n ? n : 1);
    if (plot_w < 480) plot_w = 480, bar = n ? plot_w / (double)n : bar;
    double W = left + plot_w + right, H = top + plot_h + bottom;
#define YPOS(v) (top + plot_h * (hi - (v)) / (hi - lo))

    sbuf b = {0};
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_printf(&b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
              "font-family=\"sans-serif\" font-size=\"12\">\n",
              W, H, W, H);
    sb_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    sb_printf(&b, "<text x=\"%.0f\" y=\"24\" font-size=\"16\" font-weight=\"bold\">", left);
    sb_text(&b, title && *title ? title : "Quantization SNR per module");
    sb_printf(&b, "</text>\n");
    sb_printf(&b, "<text x=\"%.0f\" y=\"40\" fill=\"#555\">overall SNR %.2f dB, %.3f bits per weight, %lld modules</text>\n",
              left, r->overall.snr_db, r->bits_per_weight, (long long)n);
    /* Grid and y axis every 10 dB. */
    for (double v = lo; v <= hi + 1e-9; v += 10.0) {
        double y = YPOS(v);
        sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y, left + plot_w, y);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n", left - 6, y + 4, v);
    }
    sb_printf(&b,
              "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">SNR (dB), higher is "
              "better</text>\n",
              top + plot_h / 2);
    for (int64_t i = 0; i < n; i++) {
        const cq_report_entry *e = byorder[i];
        const char *k = kind_of(e->module);
        int c = 0;
        while (c < nkinds && strcmp(kinds[c], k)) c++;
        double v = e->err.snr_db;
        bool clipped = !isfinite(v);
        if (clipped) v = isnan(v) || v < 0 ? lo : hi;
        double y0 = YPOS(0 > lo ? 0 : lo), y1 = YPOS(v);
        double x = left + bar * (double)i;
        sb_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"%s><title>", x,
                  y1 < y0 ? y1 : y0, bar > 2 ? bar - 1 : bar, fabs(y0 - y1),
                  c < (int)CQ_ARRAY_LEN(PALETTE) ? PALETTE[c] : "#999", clipped ? " fill-opacity=\"0.4\"" : "");
        sb_text(&b, e->module);
        sb_printf(&b, ": %.2f dB, %s, %.3f bits per weight</title></rect>\n", e->err.snr_db, cq_qtype_name(e->qtype),
                  e->bits_per_weight);
    }
    /* Layer boundaries: a tick and the layer index under the first module of each layer. */
    long prev = -2;
    int64_t every = n > 400 ? 8 : n > 150 ? 4 : 1, seen = 0;
    for (int64_t i = 0; i < n; i++) {
        long l = layer_of(byorder[i]->module);
        if (l == prev || l < 0) continue;
        prev = l;
        double x = left + bar * (double)i;
        sb_printf(&b, "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"#999\"/>\n", x, top + plot_h, x,
                  top + plot_h + 5);
        if (seen++ % every == 0)
            sb_printf(&b, "<text x=\"%.2f\" y=\"%.1f\" font-size=\"10\">%ld</text>\n", x + 1, top + plot_h + 16, l);
    }
    /* Overall SNR as a dashed line. */
    if (isfinite(r->overall.snr_db)) {
        double y = YPOS(r->overall.snr_db);
        sb_printf(&b,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\" stroke-dasharray=\"6 4\"/>\n",
                  left, y, left + plot_w, y);
    }
    sb_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left, top + plot_h,
              left + plot_w, top + plot_h);
    sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">modules in checkpoint order, by layer</text>\n",
              left + plot_w / 2, top + plot_h + 36);
    for (int c = 0; c < nkinds; c++) {
        double y = top + 10 + 20.0 * c;
        sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", left + plot_w + 16, y,
                  PALETTE[c]);
        sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\">", left + plot_w + 34, y + 10);
        sb_text(&b, kinds[c]);
        sb_printf(&b, "</text>\n");
    }
    sb_printf(&b, "</svg>\n");
#undef YPOS
    free(byorder);
    if (b.oom) {
        free(b.p);
        return cq_err_set(err, CQ_E_NOMEM, "out of memory drawing the chart");
    }
    cq_status s = cq_fs_write_file_atomic(path, b.p, b.n, err);
    free(b.p);
    return s;
}
