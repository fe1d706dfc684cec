/*
 * cmd_calibrate.c - `cquanto calibrate MODEL -f TEXT -o OUT`: the static activation scales of a
 * quanto folder whose modules quantize their activations (`cquanto quantize --activations int8`
 * writes them as 1.0), measured as optimum-quanto's Calibration does over chunks of the text,
 * and written into a copy of the folder (docs/LM.md). A float MODEL is first quantized
 * (--weights, --activations) into a temp folder beside OUT, as `cquanto quantize` would. The
 * input is never modified.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMD "calibrate"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto calibrate MODEL -f TEXT -o OUT [-c N] [--samples N] [--momentum M] [options]\n\n"
            "MODEL is a quanto folder of a Llama-family model whose modules quantize their activations\n"
            "(`cquanto quantize MODEL --weights int8 --activations int8 -o QUANT` writes their scales as 1),\n"
            "or a float folder, quantized first with --weights / --activations as `cquanto quantize` does.\n"
            "Runs chunks of TEXT through it as optimum-quanto's Calibration does (each module's input and\n"
            "output absmax / 127, averaged with momentum) and writes the quanto folder with the measured\n"
            "scales to OUT.\n\n"
            "  -f, --file TEXT    calibration text (e.g. data/wikitext-2/wiki.test.raw)\n"
            "  -o, --output OUT   the calibrated folder (must not exist unless --force)\n"
            "  -c, --ctx N        tokens per chunk (default 256, or the model's context if shorter)\n"
            "  --samples N        chunks to run (default 128; 0 = every whole chunk); --chunks is the same\n"
            "  --momentum M       scale averaging, 0..1 (default 0.9, quanto's)\n"
            "  --weights Q        a float MODEL's weights: int8 (default), int4, int2, float8, float8_e5m2\n"
            "  --activations int8 a float MODEL's activations (the default; float8 is not run yet)\n"
            "  --group-size N, --optimizer O  as for `cquanto quantize`, for a float MODEL\n"
            "  --tokenizer FILE   tokenizer.json or llama2.c's tokenizer.bin (default: the model folder's)\n"
            "  --threads N        worker threads; never changes a result\n"
            "  --force            replace an existing OUT\n"
            "  -q, --quiet        no progress or table\n"
            "  -h, --help         this help\n\n"
            "exit status: 0 ok, 1 unreadable input, nothing to calibrate or a write failure, 2 usage error\n");
}

static void on_chunk(void *user, int64_t chunk, int64_t chunks) {
    if (*(bool *)user) return;
    fprintf(stderr, "\rcquanto calibrate: chunk %lld of %lld", (long long)chunk, (long long)chunks);
    if (chunk == chunks) fputc('\n', stderr);
}

int cmd_calibrate(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *out = NULL;
    long ctx = 0, chunks = 128, threads = 0;
    double momentum = 0.9;
    bool quiet = false, force = false;
    cq_lm_opts args = cq_lm_default_opts(); /* --weights etc.: how a float MODEL is quantized */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int shared = !strcmp(a, "--mode") || !strcmp(a, "--context") ? 0 : cli_lm_option(CMD, argc, argv, &i, &args, &threads);
        if (shared > 1) return shared;
        if (shared) continue;
        bool takes = true;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!v) return cli_usage_error(CMD, "%s needs a text file", a);
            file = v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!v) return cli_usage_error(CMD, "%s needs a folder", a);
            out = v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!v || cli_parse_int(v, 2, 1L << 20, &ctx)) return cli_usage_error(CMD, "%s needs 2..1048576", a);
        } else if (!strcmp(a, "--chunks") || !strcmp(a, "--samples")) {
            if (!v || cli_parse_int(v, 0, 1L << 30, &chunks)) return cli_usage_error(CMD, "--chunks needs 0 or more");
        } else if (!strcmp(a, "--momentum")) {
            char *end;
            momentum = v ? strtod(v, &end) : -1;
            if (!v || *end || !(momentum >= 0 && momentum <= 1)) return cli_usage_error(CMD, "--momentum needs 0..1");
        } else {
            takes = false;
            if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = true;
            else if (!strcmp(a, "--force")) force = true;
            else if (a[0] == '-' && a[1]) return cli_usage_error(CMD, "unknown option '%s'", a);
            else if (model) return cli_usage_error(CMD, "one QUANT only (got '%s' and '%s')", model, a);
            else model = a;
        }
        if (takes) i++;
    }
    if (!model) return cli_usage_error(CMD, "QUANT is required (see --help)");
    if (cli_is_gguf(model)) return cli_refuse_gguf(CMD, model); /* its calibrated copy needs a folder to copy */
    if (!file) return cli_usage_error(CMD, "-f TEXT is required");
    if (!out) return cli_usage_error(CMD, "-o OUT is required");
    if (threads) cq_set_num_threads((int)threads);
    cq_err err = {0};
    cq_lm_opts o = cq_lm_default_opts(); /* the quanto folder says how it is quantized */
    o.tokenizer = args.tokenizer;
    o.batch = ctx ? ctx : 256; /* quanto observes each forward call whole: one chunk per pass */
    o.context = ctx > 512 ? ctx : 0;
    cq_lm *lm = NULL;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    cq_status st = cq_fs_read_file(file, (size_t)1 << 31, &text, &len, &err);
    /* a float MODEL: quantize it into a temp folder beside OUT first */
    char *tmp = NULL, *qmap = cq_path_join(model, "quanto_qmap.json");
    bool is_dir = cq_fs_is_dir(model), quantized = qmap && cq_fs_exists(qmap);
    free(qmap);
    const char *load_from = model;
    if (!st && !quantized && is_dir && !force && cq_fs_exists(out))
        st = cq_err_set(&err, CQ_E_EXISTS, "%s exists (--force to replace it)", out);
    if (!st && !quantized) {
        cq_convert_opts qo = cq_convert_default_opts();
        qo.weights = args.weights != CQ_QNONE ? args.weights : CQ_QINT8;
        qo.activations = CQ_QINT8;
        qo.optimizer = args.optimizer;
        qo.group_size = args.group_size;
        st = cq_fs_temp_dir(out, &tmp, &err);
        if (!st) {
            qo.overwrite = true; /* the temp folder exists, empty */
            if (!quiet) fprintf(stderr, "cquanto calibrate: %s is not quantized: quantizing it to %s weights, int8 activations\n",
                                model, cq_qtype_name(qo.weights));
            st = cq_convert_quantize(model, tmp, &qo, NULL, &err);
            load_from = tmp;
        }
    }
    if (!st) st = cq_lm_load(load_from, &o, &lm, &err);
    const cq_tokenizer *tok = lm ? cq_lm_tokenizer(lm) : NULL;
    if (!st && !tok) st = cq_err_set(&err, CQ_E_NOTFOUND, "%s: no tokenizer (tokenizer.json, tok512.bin or "
                                     "tokenizer.bin); name one with --tokenizer", model);
    if (!st) st = cq_tokenizer_encode(tok, text, len, true, &ids, &n, &err);
    if (!st) {
        cq_calib_opts co = cq_calib_default_opts();
        co.n_ctx = ctx;
        co.max_chunks = chunks;
        co.momentum = momentum;
        co.bos = cq_tokenizer_bos(tok);
        co.progress = on_chunk;
        co.user = &quiet;
        st = cq_lm_calibrate(lm, ids, n, &co, &err);
    }
    if (!st) st = cq_lm_save_calibrated(lm, out, force, &err);
    if (!st && !quiet) {
        int64_t k = cq_lm_activation_scales(lm, 0, NULL, NULL, NULL);
        fprintf(stderr, "cquanto calibrate: %lld modules, %s: %zu bytes, %lld tokens; wrote %s (%.1f s CPU)\n",
                (long long)k, file, len, (long long)n, out, (double)clock() / CLOCKS_PER_SEC - t0);
        printf("%-48s %12s %12s\n", "module", "input_scale", "output_scale");
        for (int64_t i = 0; i < k; i++) {
            const char *name;
            float a, b;
            cq_lm_activation_scales(lm, i, &name, &a, &b);
            printf("%-48s %12.6g %12.6g\n", name, a, b);
        }
    }
    free(ids);
    free(text);
    cq_lm_free(lm);
    if (tmp) cq_fs_remove_tree(tmp, NULL);
    free(tmp);
    return st ? cli_fail(CMD, &err) : 0;
}
