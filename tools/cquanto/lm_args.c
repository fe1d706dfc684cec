/*
 * lm_args.c - the options the language-model commands (generate, perplexity, calibrate) share:
 * how the model is loaded (quantize-on-load, matmul mode, context, tokenizer) and the thread
 * count, parsed once into cq_lm_opts and described once for their --help.
 */
#include "cli.h"

#include <string.h>

const char cli_lm_options_help[] =
    "  --weights Q        quantize the layers' Linears on load: int8, int4, int2, float8, float8_e5m2\n"
    "                     (a quanto folder from `cquanto quantize` runs quantized as it is)\n"
    "  --activations int8 with --weights: static int8 activations (scales 1 until `cquanto calibrate`)\n"
    "  --head Q           quantize the output head on load too (int8, int4 ...; default: as stored,\n"
    "                     as optimum-quanto leaves it; llama.cpp quantizes it)\n"
    "  --group-size N     int2/int4 group size (default: optimum-quanto's rule)\n"
    "  --optimizer O      absmax, max or hqq (default: absmax at 8 bits, max below)\n"
    "  --mode exact|fast  matmul mode for quantized weights (default exact: quanto's arithmetic)\n"
    "  --context N        KV cache length (default: the model's, at most 4096)\n"
    "  --tokenizer FILE   tokenizer.json, llama2.c's tokenizer.bin or a .gguf (default: the model's)\n"
    "  --threads N        worker threads (default: CQ_THREADS or all cores); never changes a result\n";

int cli_lm_option(const char *cmd, int argc, char **argv, int *i, cq_lm_opts *o, long *threads) {
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    long n;
    if (!strcmp(a, "--weights")) {
        if (!v || cq_qtype_parse(v, &o->weights, NULL) || !cq_qtype_takes(o->weights, CQ_QROLE_WEIGHTS, false))
            return cli_usage_error(cmd, "--weights needs int8, int4, int2, float8 or float8_e5m2");
    } else if (!strcmp(a, "--head")) {
        if (!v || cq_qtype_parse(v, &o->head, NULL) || !cq_qtype_takes(o->head, CQ_QROLE_WEIGHTS, false))
            return cli_usage_error(cmd, "--head needs int8, int4, int2, float8 or float8_e5m2");
    } else if (!strcmp(a, "--activations")) {
        if (!v || cq_qtype_parse(v, &o->activations, NULL) || o->activations != CQ_QINT8)
            return cli_usage_error(cmd, "--activations needs int8 (float8 activations are not run yet)");
    } else if (!strcmp(a, "--group-size")) {
        if (!v || cli_parse_int(v, 1, 1L << 30, &n)) return cli_usage_error(cmd, "--group-size needs a positive number");
        o->group_size = n;
    } else if (!strcmp(a, "--optimizer")) {
        if (v && !strcmp(v, "absmax")) o->optimizer = CQ_OPT_ABSMAX;
        else if (v && !strcmp(v, "max")) o->optimizer = CQ_OPT_MAX;
        else if (v && !strcmp(v, "hqq")) o->optimizer = CQ_OPT_HQQ;
        else return cli_usage_error(cmd, "--optimizer needs absmax, max or hqq");
    } else if (!strcmp(a, "--mode")) {
        if (v && !strcmp(v, "exact")) o->mode = CQ_MATMUL_EXACT;
        else if (v && !strcmp(v, "fast")) o->mode = CQ_MATMUL_FAST;
        else return cli_usage_error(cmd, "--mode needs exact or fast");
    } else if (!strcmp(a, "--context")) {
        if (!v || cli_parse_int(v, 1, 1L << 24, &n)) return cli_usage_error(cmd, "--context needs 1..16777216");
        o->context = n;
    } else if (!strcmp(a, "--tokenizer")) {
        if (!v) return cli_usage_error(cmd, "--tokenizer needs FILE");
        o->tokenizer = v;
    } else if (!strcmp(a, "--threads")) {
        if (!v || cli_parse_int(v, 1, 4096, threads)) return cli_usage_error(cmd, "--threads needs 1..4096");
    } else {
        return 0;
    }
    (*i)++;
    return 1;
}

int cli_lm_no_tokenizer(const char *cmd, const char *model) {
    cq_err err = {0};
    cq_err_set(&err, CQ_E_NOTFOUND, "%s: no tokenizer (tokenizer.json, tok512.bin or tokenizer.bin); name one with --tokenizer",
               model);
    return cli_fail(cmd, &err);
}
