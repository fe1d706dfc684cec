/*
 * cmd_dequantize.c - `cquanto dequantize QUANT -o FLOAT.safetensors`: an optimum-quanto
 * checkpoint (ours or quanto's) back to one float safetensors file via cq_convert_dequantize.
 */
#include "progress.h"

#include <string.h>

#define CMD "dequantize"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto dequantize QUANT -o FLOAT.safetensors [--like FLOAT] [--threads N] [--force] [--quiet]\n\n"
            "Turns a quanto checkpoint (a folder or file with quanto_qmap.json beside it) back into float:\n"
            "every quantized weight dequantized in its scale dtype, activation scales dropped, the rest\n"
            "copied.\n\n"
            "  --like FLOAT   a checkpoint of the float model: its weight shapes settle grouped int2/int4\n"
            "                 weights whose shape the quanto file does not record (files written by\n"
            "                 optimum-quanto; cquanto's own files record them)\n"
            "  --threads N    worker threads; never changes the output\n"
            "  --force        replace the output file if it exists\n"
            "  --quiet        no progress line and no summary\n");
}

int cmd_dequantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *like = NULL;
    long threads = 0;
    bool force = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--force")) force = true;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = true;
        else if ((v = cli_opt_value(argc, argv, &i, "-o", &missing)) || missing ||
                 (v = cli_opt_value(argc, argv, &i, "--output", &missing)) || missing) {
            if (missing) return cli_usage_error(CMD, "%s needs a file name", a);
            out = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--like", &missing)) || missing) {
            if (missing) return cli_usage_error(CMD, "--like needs a checkpoint");
            like = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--threads", &missing)) || missing) {
            if (missing || cli_parse_int(v, 1, 4096, &threads))
                return cli_usage_error(CMD, "--threads needs a number from 1 to 4096");
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error(CMD, "unknown option '%s'", a);
        } else if (in) {
            return cli_usage_error(CMD, "one input only (got '%s' and '%s')", in, a);
        } else {
            in = a;
        }
    }
    if (!in) return cli_usage_error(CMD, "missing the quantized checkpoint");
    if (!out) return cli_usage_error(CMD, "missing -o FLOAT.safetensors");
    cq_convert_opts o = cq_convert_default_opts();
    o.threads = (int)threads;
    o.overwrite = force;
    o.like = like;
    cli_progress pr;
    cli_progress_init(&pr, quiet);
    cli_install_cancel_handlers();
    o.cancel = &cli_cancel_flag;
    o.progress = cli_progress_cb;
    o.progress_user = &pr;
    cq_err err = {0};
    cq_convert_stats st;
    cq_status s = cq_convert_dequantize(in, out, &o, &st, &err);
    cli_progress_end(&pr);
    if (s) return cli_fail(CMD, &err);
    if (!quiet) {
        char b1[32], b2[32];
        printf("%s: %lld modules dequantized, %lld tensors; %s -> %s in %.2f s\n", out, (long long)st.modules,
               (long long)st.tensors, cli_human_bytes((double)st.bytes_in, b1, sizeof b1),
               cli_human_bytes((double)st.bytes_out, b2, sizeof b2), st.seconds);
    }
    return 0;
}
