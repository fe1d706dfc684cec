/*
 * report_svg.c - cq_report_write_svg: a report (report.c) drawn as an SVG bar chart, read
 * through the public accessors only.
 */
#include "convert_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

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
    int64_t n = cq_report_count(r);
    cq_error_stats overall;
    double bits_per_weight;
    cq_report_overall(r, &overall, &bits_per_weight);
    const cq_report_entry **byorder = cq__calloc((size_t)n + 1, sizeof *byorder, err, "the chart");
    if (!byorder) return CQ_E_NOMEM;
    for (int64_t i = 0; i < n; i++) byorder[i] = cq_report_entry_at(r, i);
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
              left, overall.snr_db, bits_per_weight, (long long)n);
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
    if (isfinite(overall.snr_db)) {
        double y = YPOS(overall.snr_db);
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
