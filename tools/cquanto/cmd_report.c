/*
 * cmd_report.c - `cquanto report FLOAT QUANT [--plot FILE.svg]`: per-module quantization error
 * (SNR, relative RMS, max absolute error, bits per weight), worst first, from cq_report_build;
 * optionally the SVG chart of SNR per module.
 */
#include "progress.h"

#include <math.h>
#include <string.h>

#define CMD "report"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto report FLOAT QUANT [--plot FILE.svg] [--top N] [--threads N] [--quiet]\n\n"
            "Compares every quantized module of QUANT (an optimum-quanto checkpoint, ours or quanto's) with\n"
            "its float weight in FLOAT (the checkpoint it came from), worst module first:\n"
            "  SNR dB    10 log10(sum x^2 / sum (x - dequant(q(x)))^2), higher is better\n"
            "  rel RMS   sqrt(sum (x - y)^2 / sum x^2)\n"
            "  max abs   the largest absolute error\n"
            "  bits/w    stored bits per weight (data + scales + shifts)\n\n"
            "  --plot F  write an SVG bar chart of SNR per module in checkpoint order\n"
            "  --top N   print only the N worst modules\n"
            "  --threads N, --quiet as for quantize\n");
}

static void fmt_db(double v, char *buf, size_t n) {
    if (isinf(v)) snprintf(buf, n, v > 0 ? "exact" : "-inf");
    else snprintf(buf, n, "%.2f", v);
}

int cmd_report(int argc, char **argv) {
    const char *paths[2] = {NULL, NULL}, *plot = NULL;
    int npaths = 0;
    long top = -1;
    cli_run run = {.cmd = CMD, .usage = usage};
    int arg = 0, next;
    while ((next = cli_run_next(&run, argc, argv, &arg)) == CLI_OPT_OTHER) {
        const char *a = argv[arg], *v;
        bool missing = false;
        if ((v = cli_opt_value(argc, argv, &arg, "--plot", &missing)) || missing) {
            if (missing) return cli_usage_error(CMD, "--plot needs a file name");
            plot = v;
        } else if ((v = cli_opt_value(argc, argv, &arg, "--top", &missing)) || missing) {
            if (missing || cli_parse_int(v, 1, 1L << 30, &top)) return cli_usage_error(CMD, "--top needs a positive number");
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error(CMD, "unknown option '%s'", a);
        } else if (npaths == 2) {
            return cli_usage_error(CMD, "two checkpoints only: FLOAT then QUANT");
        } else {
            paths[npaths++] = a;
        }
    }
    if (next != CLI_ARGS_END) return next;
    if (npaths != 2) return cli_usage_error(CMD, "give the float checkpoint and the quantized one");
    for (int i = 0; i < 2; i++)
        if (cli_is_gguf(paths[i])) return cli_refuse_gguf(CMD, paths[i]);
    cq_err err = {0};
    /* The chart is checked before the work, as the other commands' outputs are. */
    if (plot && cq_convert_check_output(plot, paths, 2, &err)) return cli_fail(CMD, &err);
    cq_convert_opts o = cq_convert_default_opts();
    cli_run_begin(&run, &o);
    cq_report *r = NULL;
    cq_status s = cq_report_build(paths[0], paths[1], &o, &r, &err);
    cli_run_end(&run);
    if (s) return cli_fail(CMD, &err);
    int64_t n = cq_report_count(r);
    size_t w = 6;
    for (int64_t i = 0; i < n; i++) {
        size_t l = strlen(cq_report_entry_at(r, i)->module);
        if (l > w) w = l;
    }
    printf("%-*s  %-15s %-8s %7s %9s %10s %11s\n", (int)w, "module", "qtype", "group", "bits/w", "SNR dB", "rel RMS",
           "max abs");
    for (int64_t i = 0; i < n && (top < 0 || i < top); i++) {
        const cq_report_entry *e = cq_report_entry_at(r, i);
        char g[24], db[24];
        if (e->group_size > 0) snprintf(g, sizeof g, "%lld", (long long)e->group_size);
        else snprintf(g, sizeof g, "%s", cq_qtype_family_of(e->qtype) == CQ_QFAMILY_AFFINE ? "channel" : "-");
        fmt_db(e->err.snr_db, db, sizeof db);
        printf("%-*s  %-15s %-8s %7.3f %9s %10.3e %11.3e\n", (int)w, e->module, cq_qtype_name(e->qtype), g,
               e->bits_per_weight, db, e->err.rel_rms, e->err.max_abs);
    }
    cq_error_stats all;
    double bpw;
    cq_report_overall(r, &all, &bpw);
    char db[24];
    fmt_db(all.snr_db, db, sizeof db);
    printf("\noverall: SNR %s dB, rel RMS %.3e, max abs %.3e, %.3f bits per weight over %lld modules (%lld weights)\n",
           db, all.rel_rms, all.max_abs, bpw, (long long)n, (long long)all.n);
    if (plot) {
        char title[512];
        snprintf(title, sizeof title, "SNR per module: %s vs %s", paths[1], paths[0]);
        if (cq_report_write_svg(r, title, plot, &err)) {
            cq_report_free(r);
            return cli_fail(CMD, &err);
        }
        printf("chart: %s\n", plot);
    }
    cq_report_free(r);
    return 0;
}
