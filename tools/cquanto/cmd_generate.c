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
            "tokenizer.bin, or --tokenizer). Writes the prompt and then the generated text to stdout as it is produced;\n"
            "timings go to stderr.\n\n"
            "  -p, --prompt TEXT  text to continue (default: empty, the model starts from BOS)\n"
            "  -n, --tokens N     tokens to generate (default 256; stops early at EOS or BOS: the\n"
            "                     tokenizer's, and config.json's eos_token_id)\n"
            "  --temp T           sampling temperature; 0 = greedy (default 0.8)\n"
            "  --top-k K          sample among the K most likely tokens; 0 = all (default 40)\n"
            "  --top-p P          nucleus sampling mass, 0 < P <= 1 (default 0.95)\n"
            "  --seed S           sampling seed (default: from the clock, printed with the timings)\n"
            "  --ignore-eos       keep generating past EOS and BOS\n"
            "  --weights Q        quantize the layers' Linears on load: int8, int4, int2, float8, float8_e5m2\n"
            "                     (a quanto folder from `cquanto quantize` runs quantized as it is)\n"
            "  --activations int8 with --weights: static int8 activations, scales 1 (run `cquanto calibrate`\n"
            "                     for measured ones)\n"
            "  --group-size N     int2/int4 group size (default: optimum-quanto's rule)\n"
            "  --optimizer O      absmax, max or hqq (default: absmax at 8 bits, max below)\n"
            "  --mode exact|fast  matmul mode for quantized weights (default exact)\n"
            "  --context N        KV cache length (default: the model's, at most 4096)\n"
            "  --tokenizer FILE   tokenizer file (tokenizer.json, or llama2.c's tokenizer.bin format)\n"
            "  --threads N        worker threads (default: CQ_THREADS or all cores); never changes the output\n"
            "  -q, --quiet        no timings on stderr\n"
            "  -h, --help         this help\n\n"
            "exit status: 0 ok, 1 unreadable or unsupported model, 2 usage error\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
    const char *model, *prompt, *tokenizer;
    long n, context, threads, top_k;
    double temp, top_p;
    unsigned long long seed;
    bool seeded, ignore_eos, quiet;
    cq_matmul_mode mode;
    cq_qtype weights;
    cq_optimizer_kind optimizer;
    long group_size;
    cq_qtype activations;
} gen_args;

static int parse_args(int argc, char **argv, gen_args *a) {
    *a = (gen_args){NULL, "", NULL, 256, 0, 0, 40, 0.8, 0.95, 0, false, false, false, CQ_MATMUL_EXACT,
                    CQ_QNONE, CQ_OPT_DEFAULT, -1, CQ_QNONE};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
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
        } else if (!strcmp(o, "--mode")) {
            if (v && !strcmp(v, "exact")) a->mode = CQ_MATMUL_EXACT;
            else if (v && !strcmp(v, "fast")) a->mode = CQ_MATMUL_FAST;
            else return cli_usage_error(CMD, "--mode needs exact or fast");
        } else if (!strcmp(o, "--weights")) {
            if (!v || cq_qtype_parse(v, &a->weights, NULL) || !cq_qtype_takes(a->weights, CQ_QROLE_WEIGHTS, false))
                return cli_usage_error(CMD, "--weights needs int8, int4, int2, float8 or float8_e5m2");
        } else if (!strcmp(o, "--activations")) {
            if (!v || cq_qtype_parse(v, &a->activations, NULL) || a->activations != CQ_QINT8)
                return cli_usage_error(CMD, "--activations needs int8 (float8 activations are not run yet)");
        } else if (!strcmp(o, "--group-size")) {
            if (!v || cli_parse_int(v, 1, 1L << 30, &a->group_size)) return cli_usage_error(CMD, "--group-size needs a positive number");
        } else if (!strcmp(o, "--optimizer")) {
            if (v && !strcmp(v, "absmax")) a->optimizer = CQ_OPT_ABSMAX;
            else if (v && !strcmp(v, "max")) a->optimizer = CQ_OPT_MAX;
            else if (v && !strcmp(v, "hqq")) a->optimizer = CQ_OPT_HQQ;
            else return cli_usage_error(CMD, "--optimizer needs absmax, max or hqq");
        } else if (!strcmp(o, "--context")) {
            if (!v || cli_parse_int(v, 1, 1L << 24, &a->context)) return cli_usage_error(CMD, "--context needs 1..16777216");
        } else if (!strcmp(o, "--threads")) {
            if (!v || cli_parse_int(v, 1, 4096, &a->threads)) return cli_usage_error(CMD, "--threads needs 1..4096");
        } else if (!strcmp(o, "--tokenizer")) {
            if (!v) return cli_usage_error(CMD, "--tokenizer needs FILE");
            a->tokenizer = v;
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
    cq_lm_opts o = cq_lm_default_opts();
    o.mode = a.mode;
    o.context = a.context;
    o.tokenizer = a.tokenizer;
    o.weights = a.weights;
    o.optimizer = a.optimizer;
    o.group_size = a.group_size;
    o.activations = a.activations;
    cq_lm *lm = NULL;
    double t0 = now_s();
    if (cq_lm_load(a.model, &o, &lm, &err)) return cli_fail(CMD, &err);
    double t_load = now_s() - t0;
    const cq_tokenizer *tok = cq_lm_tokenizer(lm);
    if (!tok) {
        cq_lm_free(lm);
        cq_err_set(&err, CQ_E_NOTFOUND, "%s: no tokenizer (tokenizer.json, tok512.bin or tokenizer.bin); name one with --tokenizer",
                   a.model);
        return cli_fail(CMD, &err);
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
    double t1 = now_s();
    cq_status st = cq_lm_forward(lm, ids, n_prompt, logits, n_prompt - 1, &err);
    double t_prefill = now_s() - t1, t2 = now_s();
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
    double t_decode = now_s() - t2;
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
