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
    cli_run run = {.cmd = CMD, .usage = usage};
    bool force = false;
    int arg = 0, next;
    while ((next = cli_run_next(&run, argc, argv, &arg)) == CLI_OPT_OTHER) {
        const char *a = argv[arg], *v;
        bool missing = false;
        if (!strcmp(a, "--force")) force = true;
        else if ((v = cli_opt_value(argc, argv, &arg, "-o", &missing)) || missing ||
                 (v = cli_opt_value(argc, argv, &arg, "--output", &missing)) || missing) {
            if (missing) return cli_usage_error(CMD, "%s needs a file name", a);
            out = v;
        } else if ((v = cli_opt_value(argc, argv, &arg, "--like", &missing)) || missing) {
            if (missing) return cli_usage_error(CMD, "--like needs a checkpoint");
            like = v;
        } else if (cli_take_input(CMD, a, &in)) {
            return 2;
        }
    }
    if (next != CLI_ARGS_END) return next;
    if (!in) return cli_usage_error(CMD, "missing the quantized checkpoint");
    if (!out) return cli_usage_error(CMD, "missing -o FLOAT.safetensors");
    if (cli_is_gguf(in) || (like && cli_is_gguf(like))) return cli_refuse_gguf(CMD, cli_is_gguf(in) ? in : like);
    cq_convert_opts o = cq_convert_default_opts();
    o.overwrite = force;
    o.like = like;
    cli_run_begin(&run, &o);
    cq_err err = {0};
    cq_convert_stats st;
    cq_status s = cq_convert_dequantize(in, out, &o, &st, &err);
    cli_run_end(&run);
    if (s) return cli_fail(CMD, &err);
    if (!run.quiet) {
        char b1[32], b2[32];
        printf("%s: %lld modules dequantized, %lld tensors; %s -> %s in %.2f s\n", out, (long long)st.modules,
               (long long)st.tensors, cli_human_bytes((double)st.bytes_in, b1, sizeof b1),
               cli_human_bytes((double)st.bytes_out, b2, sizeof b2), st.seconds);
    }
    return 0;
}
