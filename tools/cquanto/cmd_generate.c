/*
 * cmd_generate.c - `cquanto generate MODEL -p TEXT`: loads a Llama-family folder, encodes the
 * prompt, runs it through the model in one prefill and then samples token by token, writing
 * the text to stdout as it is produced. Timings (prefill and decode tokens/s) go to stderr.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CMD "generate"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto generate MODEL [-p TEXT] [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] [options]\n\n"
            "MODEL is a Hugging Face folder of a Llama-family decoder (Llama, SmolLM, TinyLlama, Mistral,\n"
            "Qwen2): config.json, model.safetensors or shards, and a tokenizer (tokenizer.json, tok512.bin or\n"
            "tokenizer.bin, or --tokenizer), or a llama.cpp .gguf file (read as `cquanto convert` would write\n"
            "it, block formats dequantized to f32). Writes the prompt and then the generated text to stdout as\n"
            "it is produced; timings go to stderr.\n\n"
            "  -p, --prompt TEXT  text to continue (default: empty, the model starts from BOS)\n"
            "  -n, --tokens N     tokens to generate (default 256; stops early at EOS or BOS: the\n"
            "                     tokenizer's, and config.json's eos_token_id)\n"
            "  --temp T           sampling temperature; 0 = greedy (default 0.8)\n"
            "  --top-k K          sample among the K most likely tokens; 0 = all (default 40)\n"
            "  --top-p P          nucleus sampling mass, 0 < P <= 1 (default 0.95)\n"
            "  --seed S           sampling seed (default: from the clock, printed with the timings)\n"
            "  --ignore-eos       keep generating past EOS and BOS\n"
            "%s"
            "  -q, --quiet        no timings on stderr\n"
            "  -h, --help         this help\n\n"
            "exit status: 0 ok, 1 unreadable or unsupported model, 2 usage error\n",
            cli_lm_options_help);
}

static int parse_real(const char *s, double lo, double hi, double *out) {
    char *end;
    if (!s || !*s) return 1;
    double v = strtod(s, &end);
    if (*end || !(v >= lo && v <= hi)) return 1;
    *out = v;
    return 0;
}

typedef struct {
    const char *model, *prompt;
    long n, threads, top_k;
    double temp, top_p;
    unsigned long long seed;
    bool seeded, ignore_eos, quiet;
    cq_lm_opts lm;
} gen_args;

static int parse_args(int argc, char **argv, gen_args *a) {
    *a = (gen_args){NULL, "", 256, 0, 40, 0.8, 0.95, 0, false, false, false, cq_lm_default_opts()};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int shared = cli_lm_option(CMD, argc, argv, &i, &a->lm, &a->threads);
        if (shared > 1) return shared;
        if (shared) continue;
        bool takes = true;
        if (cli_is_help(o)) {
            usage(stdout);
            return -1;
        } else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) {
            if (!v) return cli_usage_error(CMD, "%s needs TEXT", o);
            a->prompt = v;
        } else if (!strcmp(o, "-n") || !strcmp(o, "--tokens")) {
            if (!v || cli_parse_int(v, 0, 1L << 24, &a->n)) return cli_usage_error(CMD, "%s needs 0..16777216", o);
        } else if (!strcmp(o, "--temp")) {
            if (parse_real(v, 0.0, 100.0, &a->temp)) return cli_usage_error(CMD, "--temp needs 0..100");
        } else if (!strcmp(o, "--top-k")) {
            if (!v || cli_parse_int(v, 0, 1L << 24, &a->top_k)) return cli_usage_error(CMD, "--top-k needs 0 or more");
        } else if (!strcmp(o, "--top-p")) {
            if (parse_real(v, 1e-9, 1.0, &a->top_p)) return cli_usage_error(CMD, "--top-p needs 0 < P <= 1");
        } else if (!strcmp(o, "--seed")) {
            char *end;
            if (!v || !*v || (a->seed = strtoull(v, &end, 10), *end)) return cli_usage_error(CMD, "--seed needs a number");
            a->seeded = true;
        } else {
            takes = false;
            if (!strcmp(o, "--ignore-eos")) a->ignore_eos = true;
            else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) a->quiet = true;
            else if (o[0] == '-' && o[1]) return cli_usage_error(CMD, "unknown option '%s'", o);
            else if (a->model) return cli_usage_error(CMD, "one MODEL only (got '%s' and '%s')", a->model, o);
            else a->model = o;
        }
        if (takes) i++;
    }
    if (!a->model) return cli_usage_error(CMD, "MODEL is required (see --help)");
    return 0;
}

static void put_piece(const cq_tokenizer *tok, int32_t prev, int32_t id) {
    size_t n;
    const char *p = cq_tokenizer_piece(tok, prev, id, &n);
    if (p && n) fwrite(p, 1, n, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv) {
    gen_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? 0 : rc;
    if (a.threads) cq_set_num_threads((int)a.threads);
    if (!a.seeded) a.seed = (unsigned long long)time(NULL);
    cq_err err = {0};
    cq_lm *lm = NULL;
    double t0 = cli_now();
    if (cq_lm_load(a.model, &a.lm, &lm, &err)) return cli_fail(CMD, &err);
    double t_load = cli_now() - t0;
    const cq_tokenizer *tok = cq_lm_tokenizer(lm);
    if (!tok) {
        cq_lm_free(lm);
        return cli_lm_no_tokenizer(CMD, a.model);
    }
    cq_lm_info info;
    cq_lm_get_info(lm, &info);
    int32_t *ids = NULL;
    int64_t n_prompt = 0;
    float *logits = malloc((size_t)info.vocab * sizeof(float));
    int status = 0;
    if (!logits) {
        cq_err_set(&err, CQ_E_NOMEM, "out of memory");
        status = 1;
    } else if (cq_tokenizer_encode(tok, a.prompt, strlen(a.prompt), true, &ids, &n_prompt, &err)) {
        status = 1;
    } else if (n_prompt == 0) {
        cq_err_set(&err, CQ_E_ARG, "the prompt is empty and the tokenizer has no BOS token: give -p TEXT");
        status = 1;
    } else if (n_prompt + a.n > info.context) {
        cq_err_set(&err, CQ_E_ARG, "%lld prompt tokens + %ld to generate exceed the context of %lld (--context)",
                   (long long)n_prompt, a.n, (long long)info.context);
        status = 1;
    }
    if (status) {
        free(ids);
        free(logits);
        cq_lm_free(lm);
        return cli_fail(CMD, &err);
    }
    for (int64_t i = 0; i < n_prompt; i++) put_piece(tok, i ? ids[i - 1] : -1, ids[i]);
    double t1 = cli_now();
    cq_status st = cq_lm_forward(lm, ids, n_prompt, logits, n_prompt - 1, &err);
    double t_prefill = cli_now() - t1, t2 = cli_now();
    uint64_t rng = a.seed ? a.seed : 1;
    int32_t prev = ids[n_prompt - 1];
    long made = 0, steps = 0;
    for (; !st && made < a.n; made++) {
        int32_t next = cq_lm_sample(logits, info.vocab, (float)a.temp, (int)a.top_k, (float)a.top_p, &rng);
        bool stop = next == cq_tokenizer_eos(tok) || next == cq_tokenizer_bos(tok);
        for (int e = 0; e < info.n_eos; e++) stop |= next == info.eos[e];
        if (!a.ignore_eos && stop) break;
        put_piece(tok, prev, next);
        prev = next;
        if (made + 1 < a.n) st = cq_lm_forward(lm, &next, 1, logits, 0, &err), steps++;
    }
    double t_decode = cli_now() - t2;
    putchar('\n');
    fflush(stdout);
    if (!a.quiet && !st) {
        char wb[32];
        fprintf(stderr,
                "cquanto generate: %s (%s, %lld layers, %lld Linears %s, others %s; %s per token) loaded in %.2f s; "
                "%d threads; seed %llu\n"
                "  prompt  %6lld tokens in %8.2f ms (%8.1f tokens/s)\n"
                "  decode  %6ld tokens in %8.2f ms (%8.1f tokens/s over %ld forward steps)\n",
                a.model, info.model_type, (long long)info.layers, (long long)info.quantized,
                info.quantized ? cq_qtype_name(info.weight_qtype) : "float", cq_dtype_name(info.weight_dtype),
                cli_human_bytes((double)info.weight_bytes, wb, sizeof wb), t_load, cq_get_num_threads(), a.seed,
                (long long)n_prompt, 1e3 * t_prefill, (double)n_prompt / (t_prefill > 0 ? t_prefill : 1e-9), made,
                1e3 * t_decode, (double)steps / (t_decode > 0 ? t_decode : 1e-9), steps);
    }
    free(ids);
    free(logits);
    cq_lm_free(lm);
    return st ? cli_fail(CMD, &err) : 0;
}
