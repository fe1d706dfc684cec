/*
 * test_lm.c - the Llama runtime and the llama2.c tokenizer against the goldens of
 * tools/gen_lm_golden.py (tests/data/lm): token ids and decoded text of llama2.c's encode(),
 * transformers' logits over 69 positions of stories260K (within 1e-4 of the largest logit) and
 * its 64 greedy tokens; then what must hold whatever the reference: chunked and one-pass
 * prefill agree bit for bit, thread counts never change a logit, the cache refuses overflow,
 * config keys the runtime cannot honour are refused by name, and malformed tokenizer files
 * are refused.
 */
#include "tst.h"
#include "test_io_util.h"

#include "cquanto.h"

#include <jansson.h>
#include <math.h>

#define LM_DIR "data/stories260K"
#define GOLDEN "tests/data/lm/stories260K.safetensors"

static cq_tokenizer *tok512(void) {
    cq_tokenizer *t = NULL;
    cq_err err = {0};
    if (cq_tokenizer_load(LM_DIR "/tok512.bin", &t, &err)) printf("  %s\n", err.msg);
    return t;
}

TST(lm_tokenizer_matches_llama2c_cases) {
    cq_tokenizer *t = tok512();
    json_error_t je;
    json_t *root = json_load_file("tests/data/lm/tok512_cases.json", 0, &je);
    json_t *cases = json_object_get(root, "cases");
    CHECKF(t && json_array_size(cases) >= 8, "tokenizer or cases missing: %s", je.text);
    CHECK(cq_tokenizer_vocab_size(t) == 512 && cq_tokenizer_bos(t) == 1 && cq_tokenizer_eos(t) == 2);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *want = json_object_get(c, "ids");
        int32_t *ids;
        int64_t n;
        bool same = io_ids_match(t, text, want, &ids, &n);
        CHECKF(same, "case %zu '%.40s': %lld ids, expected %zu", i, text, (long long)n, json_array_size(want));
        char *back = NULL;
        size_t len = 0;
        CHECK(ids && cq_tokenizer_decode(t, ids, n, &back, &len, NULL) == CQ_OK);
        const char *dec = json_string_value(json_object_get(c, "decoded"));
        CHECKF(back && len == strlen(dec) && !memcmp(back, dec, len), "case %zu decodes to '%.40s'", i, back);
        free(back);
        free(ids);
    }
    json_decref(root);
    cq_tokenizer_free(t);
}

/* Unknown characters fall back to bytes, and a long text encodes (the heap keeps it n log n). */
TST(lm_tokenizer_byte_fallback_and_long_text) {
    cq_tokenizer *t = tok512();
    CHECK(t != NULL);
    if (!t) return;
    const char bad[] = "\xff\xfe ok";
    int32_t *ids = NULL;
    int64_t n = 0;
    CHECK(cq_tokenizer_encode(t, bad, sizeof bad - 1, false, &ids, &n, NULL) == CQ_OK);
    CHECK(n >= 3 && ids[1] == 0xff + 3 && ids[2] == 0xfe + 3);
    char *back = NULL;
    size_t len = 0;
    CHECK(cq_tokenizer_decode(t, ids, n, &back, &len, NULL) == CQ_OK);
    CHECK(back && len == sizeof bad && back[0] == ' ' && !memcmp(back + 1, bad, sizeof bad - 1)); /* dummy prefix kept without BOS */
    free(back);
    free(ids);
    size_t big = 400000;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++) text[i] = "Once upon a time there was a girl. "[i % 35];
    text[big] = 0;
    CHECK(cq_tokenizer_encode(t, text, big, true, &ids, &n, NULL) == CQ_OK);
    CHECK(n > 1000 && n < (int64_t)big / 2);
    CHECK(cq_tokenizer_decode(t, ids, n, &back, &len, NULL) == CQ_OK);
    CHECK(back && len == big && !memcmp(back, text, big));
    free(back);
    free(ids);
    free(text);
    cq_tokenizer_free(t);
}

TST(lm_tokenizer_refuses_malformed_files) {
    size_t n = 0;
    unsigned char *good = io_slurp(LM_DIR "/tok512.bin", &n);
    CHECK(good && n > 100);
    if (!good) return;
    cq_tokenizer *t = NULL;
    cq_err err = {0};
    CHECK(cq_tokenizer_parse(good, n - 3, "cut", &t, &err) == CQ_E_FORMAT && !t && strstr(err.msg, "cut: token"));
    unsigned char *bad = malloc(n);
    memcpy(bad, good, n);
    int32_t neg = -5;
    memcpy(bad + 8, &neg, 4); /* token 0's length */
    CHECK(cq_tokenizer_parse(bad, n, "neg", &t, &err) == CQ_E_FORMAT && strstr(err.msg, "token 0"));
    memcpy(bad, good, n);
    float inf = INFINITY;
    memcpy(bad + 4, &inf, 4); /* token 0's score */
    CHECK(cq_tokenizer_parse(bad, n, "inf", &t, &err) == CQ_E_FORMAT && strstr(err.msg, "score"));
    CHECK(cq_tokenizer_parse(good, 2, "tiny", &t, &err) == CQ_E_FORMAT);
    CHECK(cq_tokenizer_load("tests/data/no-such.bin", &t, &err) != CQ_OK && strstr(err.msg, "no-such"));
    CHECK(cq_tokenizer_parse(good, n, "ok", &t, &err) == CQ_OK && t);
    cq_tokenizer_free(t);
    free(bad);
    free(good);
}

typedef struct {
    cq_st_file *f;
    const int32_t *prompt, *greedy;
    int64_t n_prompt, n_greedy, T, vocab;
    const float *logits; /* [T][vocab] */
} golden;

static bool golden_open(golden *g) {
    memset(g, 0, sizeof *g);
    const cq_tensor *p, *q, *l;
    cq_err err = {0};
    if (cq_st_open(GOLDEN, &g->f, &err) || cq_st_get(g->f, "prompt_ids", &p, &err) ||
        cq_st_get(g->f, "greedy_ids", &q, &err) || cq_st_get(g->f, "logits", &l, &err)) {
        printf("  %s\n", err.msg);
        return false;
    }
    g->prompt = p->data, g->n_prompt = p->shape[0];
    g->greedy = q->data, g->n_greedy = q->shape[0];
    g->logits = l->data, g->T = l->shape[0], g->vocab = l->shape[1];
    return g->T == g->n_prompt + g->n_greedy;
}

static cq_lm *load(int64_t batch) {
    cq_lm_opts o = cq_lm_default_opts();
    o.batch = batch;
    cq_lm *lm = NULL;
    cq_err err = {0};
    if (cq_lm_load(LM_DIR, &o, &lm, &err)) printf("  %s\n", err.msg);
    return lm;
}

/* Every logit of prompt + greedy continuation within 1e-4 of transformers' largest. */
TST(lm_stories260k_logits_match_transformers) {
    golden g;
    cq_lm *lm = load(0);
    bool ok = golden_open(&g) && lm;
    CHECK(ok);
    if (ok) {
        cq_lm_info info;
        cq_lm_get_info(lm, &info);
        CHECK(info.vocab == g.vocab && info.layers == 5 && info.kv_heads == 4 && info.heads == 8 && info.tied_head);
        int32_t *seq = malloc((size_t)g.T * sizeof *seq);
        memcpy(seq, g.prompt, (size_t)g.n_prompt * sizeof *seq);
        memcpy(seq + g.n_prompt, g.greedy, (size_t)g.n_greedy * sizeof *seq);
        float *lg = malloc((size_t)(g.T * g.vocab) * sizeof(float));
        CHECK(cq_lm_forward(lm, seq, g.T, lg, 0, NULL) == CQ_OK);
        float top = 0, worst = 0;
        for (int64_t i = 0; i < g.T * g.vocab; i++) top = fmaxf(top, fabsf(g.logits[i]));
        for (int64_t i = 0; i < g.T * g.vocab; i++) worst = fmaxf(worst, fabsf(lg[i] - g.logits[i]));
        CHECKF(worst <= 1e-4f * top, "max |logit - transformers| = %g, largest logit %g", worst, top);
        printf("  stories260K: max |logit - transformers| = %.3g (largest logit %.3g)\n", worst, top);
        free(lg);
        free(seq);
    }
    cq_lm_free(lm);
    if (g.f) cq_st_close(g.f);
}

/* Prefill of the prompt, then 64 greedy steps: transformers' tokens. */
TST(lm_stories260k_greedy_matches_transformers) {
    golden g;
    cq_lm *lm = load(0);
    bool ok = golden_open(&g) && lm;
    CHECK(ok);
    if (ok) {
        float *lg = malloc((size_t)g.vocab * sizeof(float));
        CHECK(cq_lm_forward(lm, g.prompt, g.n_prompt, lg, g.n_prompt - 1, NULL) == CQ_OK);
        int64_t same = 0;
        for (int64_t i = 0; i < g.n_greedy; i++) {
            int32_t next = cq_lm_sample(lg, g.vocab, 0.0f, 0, 1.0f, NULL);
            if (next != g.greedy[i]) break;
            same++;
            CHECK(cq_lm_forward(lm, &next, 1, lg, 0, NULL) == CQ_OK);
        }
        CHECKF(same == g.n_greedy, "greedy tokens agree for %lld of %lld", (long long)same, (long long)g.n_greedy);
        CHECK(cq_lm_position(lm) == g.T);
        free(lg);
    }
    cq_lm_free(lm);
    if (g.f) cq_st_close(g.f);
}

/* The same logits bit for bit whether the sequence runs in one pass, in chunks of 7, or token by
 * token, and at 1, 2 or 3 threads. */
TST(lm_logits_independent_of_chunking_and_threads) {
    golden g;
    bool ok = golden_open(&g);
    CHECK(ok);
    if (!ok) return;
    int saved = cq_get_num_threads();
    int64_t T = g.n_prompt + 20;
    int32_t *seq = malloc((size_t)T * sizeof *seq);
    memcpy(seq, g.prompt, (size_t)g.n_prompt * sizeof *seq);
    memcpy(seq + g.n_prompt, g.greedy, 20 * sizeof *seq);
    float *ref = NULL;
    const struct {
        int64_t batch;
        int threads;
        bool stepwise;
    } runs[] = {{0, 1, false}, {7, 2, false}, {0, 3, false}, {0, 2, true}};
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        cq_set_num_threads(runs[r].threads);
        cq_lm *lm = load(runs[r].batch);
        float *lg = malloc((size_t)(T * g.vocab) * sizeof(float));
        bool fine = lm != NULL;
        if (runs[r].stepwise)
            for (int64_t i = 0; fine && i < T; i++) fine = !cq_lm_forward(lm, seq + i, 1, lg + i * g.vocab, 0, NULL);
        else
            fine = fine && !cq_lm_forward(lm, seq, T, lg, 0, NULL);
        CHECKF(fine, "run %zu failed", r);
        if (!ref) ref = lg;
        else {
            CHECKF(!memcmp(ref, lg, (size_t)(T * g.vocab) * sizeof(float)), "run %zu (batch %lld, %d threads%s) differs",
                   r, (long long)runs[r].batch, runs[r].threads, runs[r].stepwise ? ", token by token" : "");
            free(lg);
        }
        cq_lm_free(lm);
    }
    cq_set_num_threads(saved);
    free(ref);
    free(seq);
    cq_st_close(g.f);
}

TST(lm_cache_and_ids_are_checked) {
    cq_lm_opts o = cq_lm_default_opts();
    o.context = 8;
    cq_lm *lm = NULL;
    cq_err err = {0};
    CHECK(cq_lm_load(LM_DIR, &o, &lm, &err) == CQ_OK);
    if (!lm) return;
    int32_t ids[9] = {1, 403, 407, 261, 378, 5, 6, 7, 8};
    CHECK(cq_lm_forward(lm, ids, 9, NULL, 9, &err) == CQ_E_ARG && strstr(err.msg, "context of 8"));
    CHECK(cq_lm_forward(lm, ids, 8, NULL, 8, &err) == CQ_OK && cq_lm_position(lm) == 8);
    CHECK(cq_lm_forward(lm, ids, 1, NULL, 1, &err) == CQ_E_ARG);
    cq_lm_reset(lm);
    CHECK(cq_lm_position(lm) == 0);
    int32_t bad = 512;
    CHECK(cq_lm_forward(lm, &bad, 1, NULL, 1, &err) == CQ_E_ARG && strstr(err.msg, "512"));
    cq_lm_free(lm);
}

/* A copy of stories260K with one config.json change must be refused, naming the key. */
static void refused_with(const char *from, const char *to, const char *want) {
    char *dir = io_tmpdir();
    size_t n = 0;
    char *cfg = (char *)io_slurp(LM_DIR "/config.json", &n);
    char path[600], *at = cfg ? strstr(cfg, from) : NULL;
    CHECKF(dir && at, "fixture for '%s'", want);
    if (dir && at) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK(cq_fs_copy_file(LM_DIR "/model.safetensors", path, NULL) == CQ_OK);
        snprintf(path, sizeof path, "%s/config.json", dir);
        FILE *f = fopen(path, "wb");
        fwrite(cfg, 1, (size_t)(at - cfg), f);
        fputs(to, f);
        fputs(at + strlen(from), f);
        fclose(f);
        cq_lm *lm = NULL;
        cq_err err = {0};
        cq_status st = cq_lm_load(dir, NULL, &lm, &err);
        CHECKF(st != CQ_OK && !lm && strstr(err.msg, want), "'%s': got '%s'", want, err.msg);
    }
    free(cfg);
    io_rmtree(dir);
}

TST(lm_refuses_what_it_cannot_compute) {
    refused_with("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\"", "model_type 'gpt2'");
    refused_with("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "hidden_act 'gelu'");
    refused_with("\"torch_dtype\"", "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}, \"torch_dtype\"",
                 "rope_scaling");
    refused_with("\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3", "grouped-query");
    refused_with("\"hidden_size\": 64", "\"hidden_size\": 32", "model.embed_tokens.weight");
}

TST(lm_sample_rules) {
    float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, -INFINITY};
    CHECK(cq_lm_sample(l, 6, 0.0f, 0, 1.0f, NULL) == 1); /* argmax, lowest id on ties */
    uint64_t a = 42, b = 42;
    int same = 1, hits[6] = {0};
    for (int i = 0; i < 2000; i++) {
        int32_t x = cq_lm_sample(l, 6, 1.0f, 0, 1.0f, &a), y = cq_lm_sample(l, 6, 1.0f, 0, 1.0f, &b);
        same &= x == y;
        if (x >= 0 && x < 6) hits[x]++;
    }
    CHECK(same);            /* a seed reproduces the draws */
    CHECK(hits[5] == 0);    /* probability 0 is never drawn */
    CHECK(hits[1] > 400 && hits[3] > 400 && hits[4] > 300 && hits[2] < 100);
    uint64_t c = 7;
    int only = 1;
    for (int i = 0; i < 200; i++) {
        int32_t x = cq_lm_sample(l, 6, 1.0f, 0, 0.3f, &c);
        only &= x == 1 || x == 3; /* the nucleus of mass 0.3 holds the two largest */
    }
    CHECK(only);
    int first_two = 1;
    for (int i = 0; i < 200; i++) {
        int32_t x = cq_lm_sample(l, 6, 5.0f, 2, 1.0f, &c); /* top-k 2: the two largest, ties by id */
        first_two &= x == 1 || x == 3;
    }
    CHECK(first_two);
}

/* Quantize-on-load (quanto's rules, exact mode) against optimum-quanto's quantize + freeze of
 * the same model: every logit within 1e-4 of the largest. */
TST(lm_stories260k_quantized_logits_match_optimum_quanto) {
    golden g;
    bool ok = golden_open(&g);
    CHECK(ok);
    if (!ok) return;
    const struct {
        cq_qtype q;
        const char *key;
    } cases[] = {{CQ_QINT8, "logits_qint8"}, {CQ_QINT4, "logits_qint4"}, {CQ_QINT2, "logits_qint2"},
                 {CQ_QFLOAT8_E4M3FN, "logits_qfloat8"}};
    int32_t *seq = malloc((size_t)g.T * sizeof *seq);
    memcpy(seq, g.prompt, (size_t)g.n_prompt * sizeof *seq);
    memcpy(seq + g.n_prompt, g.greedy, (size_t)g.n_greedy * sizeof *seq);
    float *lg = malloc((size_t)(g.T * g.vocab) * sizeof(float));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const cq_tensor *want = NULL;
        CHECK(cq_st_get(g.f, cases[c].key, &want, NULL) == CQ_OK);
        cq_lm_opts o = cq_lm_default_opts();
        o.weights = cases[c].q;
        cq_lm *lm = NULL;
        cq_err err = {0};
        CHECKF(cq_lm_load(LM_DIR, &o, &lm, &err) == CQ_OK, "%s", err.msg);
        if (!lm || !want) continue;
        cq_lm_info info;
        cq_lm_get_info(lm, &info);
        CHECK(info.quantized == 35 && info.weight_qtype == cases[c].q);
        CHECK(cq_lm_forward(lm, seq, g.T, lg, 0, NULL) == CQ_OK);
        const float *w = want->data;
        float top = 0, worst = 0;
        for (int64_t i = 0; i < g.T * g.vocab; i++) top = fmaxf(top, fabsf(w[i]));
        for (int64_t i = 0; i < g.T * g.vocab; i++) worst = fmaxf(worst, fabsf(lg[i] - w[i]));
        CHECKF(worst <= 1e-4f * top, "%s: max |logit - optimum-quanto| = %g, largest %g", cases[c].key, worst, top);
        printf("  stories260K %s: max |logit - optimum-quanto| = %.3g (largest logit %.3g)\n", cases[c].key, worst, top);
        cq_lm_free(lm);
    }
    free(lg);
    free(seq);
    cq_st_close(g.f);
}

/* llama.cpp's perplexity protocol on the first bytes of WikiText-2 against the same protocol run
 * on transformers' logits (tools/gen_lm_golden.py), float and qint4 with its KL divergence
 * from the float model (optimum-quanto's qint4). */
TST(lm_perplexity_and_kld_match_reference) {
    golden g;
    bool ok = golden_open(&g);
    CHECK(ok);
    if (!ok) return;
    json_error_t je;
    json_t *pc = json_loads(cq_st_metadata(g.f, "perplexity"), 0, &je);
    CHECKF(pc != NULL, "perplexity metadata: %s", je.text);
    size_t nb = (size_t)json_integer_value(json_object_get(pc, "bytes")), n = 0;
    char *text = (char *)io_slurp("data/wikitext-2/wiki.test.raw", &n);
    cq_tokenizer *t = tok512();
    int32_t *ids = NULL;
    int64_t nt = 0;
    CHECK(text && n >= nb && t && cq_tokenizer_encode(t, text, nb, true, &ids, &nt, NULL) == CQ_OK);
    CHECKF(nt == json_integer_value(json_object_get(pc, "tokens")), "%lld tokens", (long long)nt);
    cq_lm *f32 = load(0), *q4 = NULL;
    cq_lm_opts o = cq_lm_default_opts();
    o.weights = CQ_QINT4;
    CHECK(cq_lm_load(LM_DIR, &o, &q4, NULL) == CQ_OK);
    cq_ppl_opts po = cq_ppl_default_opts();
    po.n_ctx = 128;
    po.bos = 1;
    cq_ppl_result r, rq;
    if (ids && f32 && q4) {
        json_t *jf = json_object_get(pc, "float"), *jq = json_object_get(pc, "qint4");
        CHECK(cq_lm_perplexity(f32, NULL, ids, nt, &po, &r, NULL) == CQ_OK);
        CHECK(r.chunks == json_integer_value(json_object_get(jf, "chunks")) &&
              r.scored == json_integer_value(json_object_get(jf, "scored")));
        double want = json_real_value(json_object_get(jf, "ppl"));
        CHECKF(fabs(r.ppl - want) <= 1e-4 * want, "float PPL %.6f, reference %.6f", r.ppl, want);
        want = json_real_value(json_object_get(jf, "ppl_err"));
        CHECKF(fabs(r.ppl_err - want) <= 1e-3 * want, "float PPL error %.6f, reference %.6f", r.ppl_err, want);
        CHECK(cq_lm_perplexity(q4, f32, ids, nt, &po, &rq, NULL) == CQ_OK);
        const struct {
            const char *key;
            double got, tol;
        } cmp[] = {{"ppl", rq.ppl, 1e-4}, {"base_ppl", rq.base_ppl, 1e-4}, {"kld", rq.kld, 1e-3},
                   {"kld_median", rq.kld_median, 1e-3}, {"dp_rms", rq.dp_rms, 1e-3}, {"same_top", rq.same_top, 2e-3}};
        for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
            want = json_real_value(json_object_get(jq, cmp[i].key));
            CHECKF(fabs(cmp[i].got - want) <= cmp[i].tol * fabs(want), "qint4 %s %.6f, reference %.6f", cmp[i].key,
                   cmp[i].got, want);
        }
        printf("  WikiText-2 head, ctx 128: PPL %.4f (reference %.4f); qint4 KLD %.5f (reference %.5f)\n", r.ppl,
               json_real_value(json_object_get(jf, "ppl")), rq.kld, json_real_value(json_object_get(jq, "kld")));
        /* the same on 1 and 2 threads (first 4 chunks); too short a text is refused */
        int saved = cq_get_num_threads();
        cq_ppl_result r1, r2;
        po.max_chunks = 4;
        cq_set_num_threads(1);
        CHECK(cq_lm_perplexity(q4, f32, ids, nt, &po, &r1, NULL) == CQ_OK);
        cq_set_num_threads(2);
        CHECK(cq_lm_perplexity(q4, f32, ids, nt, &po, &r2, NULL) == CQ_OK);
        cq_set_num_threads(saved);
        CHECK(r1.chunks == 4 && !memcmp(&r1, &r2, sizeof r1));
        po.max_chunks = 0;
        cq_err err = {0};
        CHECK(cq_lm_perplexity(f32, NULL, ids, 255, &po, &r, &err) == CQ_E_ARG && strstr(err.msg, "at least 256"));
    }
    cq_lm_free(f32);
    cq_lm_free(q4);
    free(ids);
    free(text);
    cq_tokenizer_free(t);
    json_decref(pc);
    cq_st_close(g.f);
}

/* Seeded random Qwen2 (q/k/v biases, untied head, theta 1e6) and Mistral (head_dim apart from
 * hidden / heads, one key/value head) folders, and stories260K with bf16 weights (run as bf16,
 * against transformers in f32 on the same rounded weights): logits within 1e-4 of the largest. */
TST(lm_other_families_and_bf16_weights_match_transformers) {
    const struct {
        const char *dir, *type;
        cq_dtype wd;
        bool tied;
    } cases[] = {{"tests/data/lm/tiny-qwen2", "qwen2", CQ_F32, false},
                 {"tests/data/lm/tiny-mistral", "mistral", CQ_F32, true},
                 {"tests/data/lm/stories260K-bf16", "llama", CQ_BF16, true}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[256];
        snprintf(path, sizeof path, "%s/golden.safetensors", cases[c].dir);
        cq_st_file *g = NULL;
        const cq_tensor *ids = NULL, *want = NULL;
        cq_lm *lm = NULL;
        cq_err err = {0};
        bool ok = cq_st_open(path, &g, &err) == CQ_OK && cq_st_get(g, "ids", &ids, &err) == CQ_OK &&
                  cq_st_get(g, "logits", &want, &err) == CQ_OK && cq_lm_load(cases[c].dir, NULL, &lm, &err) == CQ_OK;
        CHECKF(ok, "%s: %s", cases[c].dir, err.msg);
        if (ok) {
            cq_lm_info info;
            cq_lm_get_info(lm, &info);
            if (!strcmp(cases[c].type, "mistral")) /* config.json's special ids */
                CHECK(info.bos == 1 && info.n_eos == 1 && info.eos[0] == 2);
            if (!strcmp(cases[c].type, "qwen2")) CHECK(info.bos == -1 && info.n_eos == 0);
            CHECKF(!strcmp(info.model_type, cases[c].type) && info.weight_dtype == cases[c].wd &&
                       info.tied_head == cases[c].tied && info.vocab == want->shape[1],
                   "%s: info", cases[c].dir);
            int64_t T = ids->shape[0], V = want->shape[1];
            float *lg = malloc((size_t)(T * V) * sizeof(float));
            CHECK(cq_lm_forward(lm, ids->data, T, lg, 0, NULL) == CQ_OK);
            const float *w = want->data;
            float top = 0, worst = 0;
            for (int64_t i = 0; i < T * V; i++) top = fmaxf(top, fabsf(w[i]));
            for (int64_t i = 0; i < T * V; i++) worst = fmaxf(worst, fabsf(lg[i] - w[i]));
            CHECKF(worst <= 1e-4f * top, "%s: max |logit - transformers| = %g, largest %g", cases[c].dir, worst, top);
            printf("  %s: max |logit - transformers| = %.3g (largest logit %.3g)\n", cases[c].type, worst, top);
            free(lg);
        }
        cq_lm_free(lm);
        cq_st_close(g);
    }
}

/* The interleaved RoPE layout: stories260K with each head's q/k rows reordered from rotate-half
 * (i, i + d/2) to interleaved (2i, 2i + 1) pairs, run with CQ_ROPE_INTERLEAVED, gives the
 * original logits (attention scores are dot products, which the reordering leaves alone but for
 * the order of their terms). */
TST(lm_interleaved_rope_layout) {
    cq_ckpt *c = NULL;
    char *dir = io_tmpdir(), path[600];
    CHECK(dir && cq_ckpt_open(LM_DIR, &c, NULL) == CQ_OK);
    if (!c || !dir) {
        io_rmtree(dir);
        return;
    }
    int64_t n = cq_ckpt_count(c), d = 8; /* head_dim of stories260K */
    const char **names = calloc((size_t)n, sizeof *names);
    const cq_tensor **ts = calloc((size_t)n, sizeof *ts);
    cq_tensor **owned = calloc((size_t)n, sizeof *owned);
    for (int64_t i = 0; i < n; i++) {
        names[i] = cq_ckpt_name(c, i);
        ts[i] = cq_ckpt_tensor(c, i);
        if (!strstr(names[i], "q_proj") && !strstr(names[i], "k_proj")) continue;
        CHECK(cq_tensor_clone(&owned[i], ts[i], NULL) == CQ_OK);
        const float *src = ts[i]->data;
        float *dst = owned[i]->data;
        int64_t rows = ts[i]->shape[0], cols = ts[i]->shape[1];
        for (int64_t r = 0; r < rows; r++) {
            int64_t h = r / d, j = r % d, to = h * d + (j < d / 2 ? 2 * j : 2 * (j - d / 2) + 1);
            memcpy(dst + to * cols, src + r * cols, (size_t)cols * sizeof(float));
        }
        ts[i] = owned[i];
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(cq_st_save(path, n, names, ts, NULL, NULL) == CQ_OK);
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK(cq_fs_copy_file(LM_DIR "/config.json", path, NULL) == CQ_OK);
    golden g;
    cq_lm_opts o = cq_lm_default_opts();
    o.rope = CQ_ROPE_INTERLEAVED;
    cq_lm *lm = NULL;
    if (golden_open(&g) && cq_lm_load(dir, &o, &lm, NULL) == CQ_OK) {
        int64_t T = g.n_prompt;
        float *lg = malloc((size_t)(T * g.vocab) * sizeof(float));
        CHECK(cq_lm_forward(lm, g.prompt, T, lg, 0, NULL) == CQ_OK);
        float worst = 0;
        for (int64_t i = 0; i < T * g.vocab; i++) worst = fmaxf(worst, fabsf(lg[i] - g.logits[i]));
        CHECKF(worst <= 1e-4f * 22.0f, "interleaved layout: max |logit - transformers| = %g", worst);
        free(lg);
        cq_lm_free(lm);
        cq_lm_opts half = cq_lm_default_opts(); /* the same file read as rotate-half is another model */
        CHECK(cq_lm_load(dir, &half, &lm, NULL) == CQ_OK);
        lg = malloc((size_t)g.vocab * sizeof(float));
        CHECK(lm && cq_lm_forward(lm, g.prompt, T, lg, T - 1, NULL) == CQ_OK);
        worst = 0;
        for (int64_t i = 0; i < g.vocab; i++) worst = fmaxf(worst, fabsf(lg[i] - g.logits[(T - 1) * g.vocab + i]));
        CHECKF(worst > 0.1f, "the rotate-half reading of the permuted file should differ (%g)", worst);
        free(lg);
    } else {
        CHECK(0);
    }
    cq_lm_free(lm);
    if (g.f) cq_st_close(g.f);
    for (int64_t i = 0; i < n; i++) cq_tensor_free(owned[i]);
    free(owned);
    free(ts);
    free(names);
    cq_ckpt_close(c);
    io_rmtree(dir);
}

/* Static int8 activations: quantize-on-load with qint8 activations, calibrated on the chunks
 * optimum-quanto calibrated on (Calibration(momentum=0.9, streamline=False), RoPE on dequantized
 * q and k: docs/LM.md). Quantized activations make tiny float differences chaotic (a value at a
 * rounding boundary takes the other code, and the change travels), so the check is: layer 0's
 * scales equal quanto's to 1e-6 and every scale to 2e-3 (relative); the logits are ten times
 * closer to quanto's W8A8 than quanto's W8A8 is to the float model (RMS over 69 x 512), and
 * the top tokens agree at 95 % of the positions or more. */
TST(lm_w8a8_calibration_matches_optimum_quanto) {
    cq_st_file *g = NULL;
    const cq_tensor *cal = NULL, *want = NULL;
    golden ref;
    cq_err err = {0};
    bool ok = cq_st_open("tests/data/lm/stories260K_w8a8.safetensors", &g, &err) == CQ_OK &&
              cq_st_get(g, "calib_ids", &cal, &err) == CQ_OK && cq_st_get(g, "logits", &want, &err) == CQ_OK &&
              golden_open(&ref);
    CHECKF(ok, "%s", err.msg);
    cq_lm_opts o = cq_lm_default_opts();
    o.weights = CQ_QINT8;
    o.activations = CQ_QINT8;
    cq_lm *lm = NULL;
    CHECKF(ok && cq_lm_load(LM_DIR, &o, &lm, &err) == CQ_OK, "%s", err.msg);
    if (ok && lm) {
        cq_calib_opts co = cq_calib_default_opts();
        co.n_ctx = cal->shape[1];
        CHECKF(cq_lm_calibrate(lm, cal->data, cal->shape[0] * cal->shape[1], &co, &err) == CQ_OK, "%s", err.msg);
        int64_t n = cq_lm_activation_scales(lm, 0, NULL, NULL, NULL), bad = 0;
        CHECK(n == 35);
        float worst = 0, worst0 = 0;
        for (int64_t i = 0; i < n; i++) {
            const char *name;
            float in, out;
            cq_lm_activation_scales(lm, i, &name, &in, &out);
            char key[256];
            const cq_tensor *wi = NULL, *wo = NULL;
            snprintf(key, sizeof key, "%s.input_scale", name);
            cq_st_get(g, key, &wi, NULL);
            snprintf(key, sizeof key, "%s.output_scale", name);
            cq_st_get(g, key, &wo, NULL);
            if (!wi || !wo) {
                bad++;
                continue;
            }
            float a = ((const float *)wi->data)[0], b = ((const float *)wo->data)[0];
            float rel = fmaxf(fabsf(in - a) / a, fabsf(out - b) / b);
            worst = fmaxf(worst, rel);
            if (i < 7) worst0 = fmaxf(worst0, rel);
        }
        CHECKF(bad == 0 && worst0 <= 1e-6f && worst <= 2e-3f, "scales: %lld missing; layer 0 %g, all %g relative",
               (long long)bad, worst0, worst);
        int32_t *seq = malloc((size_t)ref.T * sizeof *seq);
        memcpy(seq, ref.prompt, (size_t)ref.n_prompt * sizeof *seq);
        memcpy(seq + ref.n_prompt, ref.greedy, (size_t)ref.n_greedy * sizeof *seq);
        int64_t T = ref.T, V = ref.vocab;
        float *lg = malloc((size_t)(T * V) * sizeof(float));
        CHECK(cq_lm_forward(lm, seq, T, lg, 0, NULL) == CQ_OK);
        const float *q = want->data, *f = ref.logits;
        double to_quanto = 0, quanto_to_float = 0;
        int64_t same_top = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t a = 0, b = 0;
            for (int64_t v = 0; v < V; v++) {
                int64_t i = t * V + v;
                to_quanto += (double)(lg[i] - q[i]) * (lg[i] - q[i]);
                quanto_to_float += (double)(q[i] - f[i]) * (q[i] - f[i]);
                if (lg[i] > lg[t * V + a]) a = v;
                if (q[i] > q[t * V + b]) b = v;
            }
            same_top += a == b;
        }
        to_quanto = sqrt(to_quanto / (double)(T * V)), quanto_to_float = sqrt(quanto_to_float / (double)(T * V));
        CHECKF(to_quanto < 0.1 * quanto_to_float && same_top * 100 >= 95 * T,
               "W8A8: RMS to optimum-quanto %.4f (its RMS to float %.4f), top token equal at %lld of %lld", to_quanto,
               quanto_to_float, (long long)same_top, (long long)T);
        printf("  stories260K W8A8 calibrated: scales within %.2g (layer 0: %.2g); logit RMS to optimum-quanto %.4f vs "
               "its %.4f to float; top token %lld/%lld\n",
               worst, worst0, to_quanto, quanto_to_float, (long long)same_top, (long long)T);
        free(lg);
        free(seq);
    }
    cq_lm_free(lm);
    cq_st_close(g);
    if (ref.f) cq_st_close(ref.f);
}

/* --head quantizes the output head on load (quanto's rule for its qtype; the layers' group size
 * is not applied to it); without it the head stays float. */
TST(lm_head_quantized_on_request) {
    cq_lm_opts o = cq_lm_default_opts();
    o.weights = CQ_QINT4;
    o.group_size = 4; /* divides every width of stories260K (64, 172); would be refused at int8 */
    cq_lm *plain = NULL, *head8 = NULL;
    CHECK(cq_lm_load(LM_DIR, &o, &plain, NULL) == CQ_OK);
    o.head = CQ_QINT8;
    cq_err err = {0};
    CHECKF(cq_lm_load(LM_DIR, &o, &head8, &err) == CQ_OK, "%s", err.msg);
    if (plain && head8) {
        cq_lm_info a, b;
        cq_lm_get_info(plain, &a);
        cq_lm_get_info(head8, &b);
        /* the tied 512 x 64 head: 4 bytes a weight as stored, 1 (plus scales) at int8 */
        CHECKF(a.weight_bytes - b.weight_bytes >= 512 * 64 * 3 - 4096, "%lld vs %lld bytes", (long long)a.weight_bytes,
               (long long)b.weight_bytes);
        CHECK(b.weight_qtype == CQ_QINT4 && a.quantized + 1 == b.quantized);
        int32_t ids[8] = {1, 403, 407, 261, 378, 290, 269, 353};
        float la[512], lb[512];
        CHECK(cq_lm_forward(plain, ids, 8, la, 7, NULL) == CQ_OK && cq_lm_forward(head8, ids, 8, lb, 7, NULL) == CQ_OK);
        double d = 0, n = 0;
        for (int i = 0; i < 512; i++) d += ((double)la[i] - lb[i]) * ((double)la[i] - lb[i]), n += (double)la[i] * la[i];
        CHECKF(d > 0 && d < 1e-3 * n, "relative squared change of the logits %g", d / n);
    }
    cq_lm_free(plain);
    cq_lm_free(head8);
    o.head = CQ_QINT2 + 100;
    cq_lm *bad = NULL;
    CHECK(cq_lm_load(LM_DIR, &o, &bad, &err) == CQ_E_ARG && !bad);
}
