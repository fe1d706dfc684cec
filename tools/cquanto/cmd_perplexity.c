/*
 * cmd_perplexity.c - `cquanto perplexity MODEL -f TEXT`: llama.cpp's perplexity protocol over a
 * text file (docs/LM.md), and with --reference FLOAT the KL divergence and top-token agreement of
 * MODEL against its float original, both run on the same chunks in one pass. Prints the running
 * perplexity per chunk like llama-perplexity, then the final estimate and statistics.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMD "perplexity"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto perplexity MODEL -f TEXT [-c N] [--chunks N] [--reference FLOAT_MODEL] [options]\n\n"
            "Perplexity of MODEL (a Llama-family folder, float or quanto, or a .gguf) on the text file, by\n"
            "llama.cpp's protocol: whole chunks of N tokens, each from an empty cache with BOS first, the\n"
            "second half of each scored. With --reference, the same chunks also run through the base model\n"
            "(the float original) and the KL divergence, the change in the correct token's probability and\n"
            "top-token agreement are reported, as llama-perplexity --kl-divergence does.\n\n"
            "  -f, --file TEXT    the text (e.g. data/wikitext-2/wiki.test.raw)\n"
            "  -c, --ctx N        tokens per chunk (default: 512, or the model's context if shorter)\n"
            "  --chunks N         score only the first N chunks\n"
            "  --reference DIR    the model to compare against (KL divergence); --base is the same\n"
            "%s"
            "  -q, --quiet        only the final lines\n"
            "  -h, --help         this help\n\n"
            "exit status: 0 ok, 1 unreadable input or unsupported model, 2 usage error\n",
            cli_lm_options_help);
}

typedef struct {
    bool quiet;
    double t0;
} progress_state;

static void on_chunk(void *user, int64_t chunk, int64_t chunks, double ppl) {
    progress_state *p = user;
    if (p->quiet) return;
    if (chunk == 1) {
        double dt = cli_now() - p->t0;
        fprintf(stderr, "cquanto perplexity: %.2f s per chunk, ETA %.1f s\n", dt, dt * (double)(chunks - 1));
    }
    printf("[%lld]%.4f,", (long long)chunk, ppl);
    if (chunk == chunks || chunk % 16 == 0) putchar('\n');
    fflush(stdout);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *base_dir = NULL;
    long ctx = 0, chunks = 0, threads = 0;
    bool quiet = false;
    cq_lm_opts o = cq_lm_default_opts();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int shared = cli_lm_option(CMD, argc, argv, &i, &o, &threads);
        if (shared > 1) return shared;
        if (shared) continue;
        bool takes = true;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!v) return cli_usage_error(CMD, "%s needs a text file", a);
            file = v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (!v || cli_parse_int(v, 4, 1L << 20, &ctx)) return cli_usage_error(CMD, "%s needs 4..1048576", a);
        } else if (!strcmp(a, "--chunks")) {
            if (!v || cli_parse_int(v, 1, 1L << 30, &chunks)) return cli_usage_error(CMD, "--chunks needs a positive number");
        } else if (!strcmp(a, "--reference") || !strcmp(a, "--base")) {
            if (!v) return cli_usage_error(CMD, "%s needs a model folder", a);
            base_dir = v;
        } else {
            takes = false;
            if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = true;
            else if (a[0] == '-' && a[1]) return cli_usage_error(CMD, "unknown option '%s'", a);
            else if (model) return cli_usage_error(CMD, "one MODEL only (got '%s' and '%s')", model, a);
            else model = a;
        }
        if (takes) i++;
    }
    if (!model) return cli_usage_error(CMD, "MODEL is required (see --help)");
    if (!file) return cli_usage_error(CMD, "-f TEXT is required");
    if (threads) cq_set_num_threads((int)threads);
    cq_err err = {0};
    cq_lm *lm = NULL, *base = NULL;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    cq_status st = cq_fs_read_file(file, (size_t)1 << 31, &text, &len, &err);
    if (!st) st = cq_lm_load(model, &o, &lm, &err);
    if (!st && base_dir) {
        cq_lm_opts bo = cq_lm_default_opts();
        bo.tokenizer = o.tokenizer;
        bo.context = o.context;
        st = cq_lm_load(base_dir, &bo, &base, &err);
    }
    const cq_tokenizer *tok = lm ? cq_lm_tokenizer(lm) : NULL;
    if (!st && !tok) {
        cq_lm_free(lm);
        cq_lm_free(base);
        free(text);
        return cli_lm_no_tokenizer(CMD, model);
    }
    double t0 = cli_now();
    if (!st) st = cq_tokenizer_encode(tok, text, len, true, &ids, &n, &err);
    if (!st && !quiet)
        fprintf(stderr, "cquanto perplexity: %s: %zu bytes, %lld tokens (%.2f s)\n", file, len, (long long)n,
                cli_now() - t0);
    cq_ppl_result r;
    progress_state ps = {quiet, cli_now()};
    if (!st) {
        cq_ppl_opts po = cq_ppl_default_opts();
        po.n_ctx = ctx;
        po.max_chunks = chunks;
        po.bos = cq_tokenizer_bos(tok);
        po.progress = on_chunk;
        po.user = &ps;
        st = cq_lm_perplexity(lm, base, ids, n, &po, &r, &err);
    }
    if (!st) {
        double dt = cli_now() - ps.t0;
        printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.ppl_err);
        if (base) {
            printf("Base PPL             %10.4f +/- %.5f\n", r.base_ppl, r.base_ppl_err);
            printf("Mean ln(PPL/PPLbase) %10.6f +/- %.6f\n", r.ln_ratio, r.ln_ratio_err);
            printf("Mean KLD             %10.6f +/- %.6f\n", r.kld, r.kld_err);
            printf("Maximum KLD          %10.6f\n", r.kld_max);
            printf("99.9%%   KLD          %10.6f\n", r.kld_p999);
            printf("99.0%%   KLD          %10.6f\n", r.kld_p99);
            printf("90.0%%   KLD          %10.6f\n", r.kld_p90);
            printf("Median  KLD          %10.6f\n", r.kld_median);
            printf("Mean    dp           %9.4f %%\n", 100.0 * r.dp_mean);
            printf("RMS     dp           %9.4f %%\n", 100.0 * r.dp_rms);
            printf("Same top             %9.4f %%\n", 100.0 * r.same_top);
        }
        if (!quiet)
            fprintf(stderr, "cquanto perplexity: %lld chunks of %lld tokens, %lld scored, in %.2f s (%.0f tokens/s%s)\n",
                    (long long)r.chunks, (long long)r.n_ctx, (long long)r.scored, dt,
                    (double)(r.chunks * r.n_ctx) * (base ? 2 : 1) / (dt > 0 ? dt : 1e-9), base ? ", both models" : "");
    }
    free(ids);
    free(text);
    cq_lm_free(lm);
    cq_lm_free(base);
    return st ? cli_fail(CMD, &err) : 0;
}
