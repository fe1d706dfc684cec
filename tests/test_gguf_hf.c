/*
 * test_gguf_hf.c - GGUF models as Hugging Face folders (cq_gguf_convert) and in the runtime, on
 * the stories260K GGUF fixtures llama.cpp's own converter made from data/stories260K
 * (tests/data/gguf, tools/make_gguf_fixtures.sh): the F32 file converts back to the original
 * safetensors bit for bit (so the q/k permutation is undone exactly), its tokenizer (the
 * SentencePiece scores llama.cpp stored) gives llama2.c's ids, the runtime computes the same
 * logits from the .gguf as from the folder, and block formats load and stay close to float.
 * With --full, SmolLM2-135M (scripts/get-model.sh) against transformers on the converted folder
 * (tools/gguf_reference.py made the golden).
 */
#include "tst.h"
#include "test_io_util.h"

#include "cquanto.h"

#include <jansson.h>
#include <math.h>

#define FIXTURES "tests/data/gguf/"
#define LM_DIR "data/stories260K"

static cq_lm *load(const char *path) {
    cq_lm *lm = NULL;
    cq_err err = {0};
    if (cq_lm_load(path, NULL, &lm, &err)) printf("  %s\n", err.msg);
    return lm;
}

static int32_t *wiki_ids(const cq_tokenizer *t, size_t bytes, int64_t *n) {
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    *n = 0;
    if (cq_fs_read_file("data/wikitext-2/wiki.test.raw", (size_t)64 << 20, &text, &len, NULL) == CQ_OK)
        cq_tokenizer_encode(t, text, len < bytes ? len : bytes, true, &ids, n, NULL);
    free(text);
    return ids;
}

TST(gguf_f32_converts_back_to_the_original_bit_for_bit) {
    char *dir = io_tmpdir(), *out = cq_path_join(dir, "stories");
    cq_err err = {0};
    CHECKF(cq_gguf_convert(FIXTURES "stories260K-F32.gguf", out, NULL, &err) == CQ_OK, "%s", err.msg);
    cq_ckpt *a = NULL, *b = NULL;
    CHECK(cq_ckpt_open(out, &a, &err) == CQ_OK && cq_ckpt_open(LM_DIR, &b, &err) == CQ_OK);
    if (a && b) {
        int64_t same = 0;
        for (int64_t i = 0; i < cq_ckpt_count(b); i++) {
            const cq_tensor *x = cq_ckpt_tensor(b, i), *y = NULL;
            if (cq_ckpt_get(a, cq_ckpt_name(b, i), &y, NULL) || y->dtype != x->dtype || y->ndim != x->ndim ||
                cq_tensor_nbytes(x) != cq_tensor_nbytes(y)) {
                CHECKF(0, "tensor %s missing or of another type/shape", cq_ckpt_name(b, i));
                continue;
            }
            same += !memcmp(x->data, y->data, cq_tensor_nbytes(x));
        }
        CHECKF(same == cq_ckpt_count(b) && cq_ckpt_count(a) == cq_ckpt_count(b), "%lld of %lld tensors identical",
               (long long)same, (long long)cq_ckpt_count(b));
        /* the folder is complete: config, tokenizer, generation config */
        static const char *const files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                            "generation_config.json"};
        for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
            char *p = cq_path_join(out, files[k]);
            CHECKF(cq_fs_exists(p), "%s written", files[k]);
            free(p);
        }
    }
    cq_ckpt_close(a);
    cq_ckpt_close(b);
    /* an existing output is kept unless overwrite */
    CHECK(cq_gguf_convert(FIXTURES "stories260K-F32.gguf", out, NULL, &err) == CQ_E_EXISTS);
    cq_gguf_convert_opts o = cq_gguf_convert_default_opts();
    o.overwrite = true;
    o.dtype = CQ_BF16;
    CHECKF(cq_gguf_convert(FIXTURES "stories260K-F32.gguf", out, &o, &err) == CQ_OK, "%s", err.msg);
    cq_ckpt *c = NULL;
    CHECK(cq_ckpt_open(out, &c, &err) == CQ_OK && cq_ckpt_tensor(c, 0)->dtype == CQ_BF16);
    cq_ckpt_close(c);
    cq_fs_remove_tree(dir, NULL);
    free(out);
    free(dir);
}

/* The tokenizer.json made from llama.cpp's SentencePiece vocabulary and scores encodes as
 * llama2.c's tokenizer does: the same ids over 20 kB of WikiText-2. */
TST(gguf_spm_tokenizer_matches_llama2c) {
    cq_tokenizer *g = NULL, *l = NULL;
    cq_err err = {0};
    CHECKF(cq_tokenizer_load(FIXTURES "stories260K-F32.gguf", &g, &err) == CQ_OK, "%s", err.msg);
    CHECKF(cq_tokenizer_load(LM_DIR "/tok512.bin", &l, &err) == CQ_OK, "%s", err.msg);
    if (g && l) {
        int64_t ng = 0, nl = 0;
        int32_t *a = wiki_ids(g, 20000, &ng), *b = wiki_ids(l, 20000, &nl);
        int64_t same = 0;
        while (same < ng && same < nl && a[same] == b[same]) same++;
        CHECKF(ng == nl && same == ng && ng > 1000, "%lld of %lld/%lld ids agree", (long long)same, (long long)ng,
               (long long)nl);
        char *text = NULL;
        size_t len = 0;
        CHECK(cq_tokenizer_decode(g, a, ng, &text, &len, NULL) == CQ_OK && len > 19000);
        free(text);
        free(a);
        free(b);
    }
    cq_tokenizer_free(g);
    cq_tokenizer_free(l);
}

/* cquanto generate model.gguf: the logits of the folder it came from, bit for bit. */
TST(gguf_runtime_equals_the_folder) {
    cq_lm *a = load(FIXTURES "stories260K-F32.gguf"), *b = load(LM_DIR);
    CHECK(a && b);
    if (a && b) {
        int64_t n = 0;
        int32_t *ids = wiki_ids(cq_lm_tokenizer(b), 400, &n);
        cq_lm_info ia, ib;
        cq_lm_get_info(a, &ia);
        cq_lm_get_info(b, &ib);
        CHECK(ia.vocab == ib.vocab && ia.layers == ib.layers && ia.kv_heads == ib.kv_heads && ia.tied_head == ib.tied_head);
        float *la = malloc((size_t)(n * ia.vocab) * sizeof(float)), *lb = malloc((size_t)(n * ib.vocab) * sizeof(float));
        CHECK(n > 50 && cq_lm_forward(a, ids, n, la, 0, NULL) == CQ_OK && cq_lm_forward(b, ids, n, lb, 0, NULL) == CQ_OK);
        CHECK_BYTES(la, lb, (size_t)(n * ia.vocab) * sizeof(float), "logits of the .gguf and of the folder");
        free(la);
        free(lb);
        free(ids);
    }
    cq_lm_free(a);
    cq_lm_free(b);
}

/* Block formats dequantize at load; their logits stay near float's, closer the more bits. */
TST(gguf_block_formats_run_near_float) {
    static const char *const files[] = {"stories260K-Q8_0.gguf", "stories260K-Q4_0.gguf"};
    cq_lm *f = load(LM_DIR);
    CHECK(f != NULL);
    int64_t n = 0;
    int32_t *ids = f ? wiki_ids(cq_lm_tokenizer(f), 400, &n) : NULL;
    cq_lm_info info;
    cq_lm_get_info(f, &info);
    float *lf = malloc((size_t)(n * info.vocab) * sizeof(float)), *lq = malloc((size_t)(n * info.vocab) * sizeof(float));
    CHECK(f && cq_lm_forward(f, ids, n, lf, 0, NULL) == CQ_OK);
    double prev = 0;
    for (size_t k = 0; f && k < sizeof files / sizeof files[0]; k++) {
        char path[256];
        snprintf(path, sizeof path, FIXTURES "%s", files[k]);
        cq_lm *q = load(path);
        CHECKF(q && cq_lm_forward(q, ids, n, lq, 0, NULL) == CQ_OK, "%s runs", files[k]);
        double e2 = 0, s2 = 0;
        for (int64_t i = 0; q && i < n * info.vocab; i++) {
            e2 += ((double)lq[i] - lf[i]) * ((double)lq[i] - lf[i]);
            s2 += (double)lf[i] * lf[i];
        }
        double rel = sqrt(e2 / s2);
        printf("  %s: relative RMS logit error vs float %.4f\n", files[k], rel);
        CHECKF(q && rel > 0 && rel < 0.25 && rel > prev, "%s: relative error %.4f", files[k], rel);
        prev = rel;
        cq_lm_free(q);
    }
    free(lf);
    free(lq);
    free(ids);
    cq_lm_free(f);
}

/* cquanto perplexity of each fixture equals llama-perplexity's on the same file (ctx 128, 20
 * chunks, tests/data/gguf/llama_cpp_reference.json): within 0.05% for F32, whose arithmetic
 * differs only in the order of float sums, and within 0.5% for the others, where llama.cpp also
 * rounds the activations (to f16 for F16, to 8-bit blocks for the block formats) and cquanto
 * multiplies the dequantized f32 weights by f32 activations. */
TST(gguf_perplexity_matches_llama_cpp) {
    size_t n = 0;
    char *ref = (char *)io_slurp(FIXTURES "llama_cpp_reference.json", &n);
    json_error_t je;
    json_t *root = ref ? json_loadb(ref, n, 0, &je) : NULL;
    CHECKF(root != NULL, "llama_cpp_reference.json: %s", ref ? je.text : "missing");
    cq_tokenizer *tok = NULL;
    CHECK(cq_tokenizer_load(LM_DIR "/tok512.bin", &tok, NULL) == CQ_OK);
    int64_t nt = 0;
    int32_t *ids = tok ? wiki_ids(tok, 40000, &nt) : NULL; /* 20 chunks of 128 need ~2,600 ids */
    size_t i, checked = 0;
    json_t *fx;
    json_array_foreach(json_object_get(root, "fixtures"), i, fx) {
        const char *file = json_string_value(json_object_get(fx, "file"));
        json_t *p = json_object_get(fx, "perplexity_20");
        if (!file || !p || !ids) continue;
        char path[256];
        snprintf(path, sizeof path, FIXTURES "%s", file);
        cq_lm *lm = load(path);
        cq_ppl_opts po = cq_ppl_default_opts();
        po.n_ctx = json_integer_value(json_object_get(p, "ctx"));
        po.max_chunks = json_integer_value(json_object_get(p, "chunks"));
        po.bos = 1;
        cq_ppl_result r;
        CHECKF(lm && cq_lm_perplexity(lm, NULL, ids, nt, &po, &r, NULL) == CQ_OK, "%s runs", file);
        double want = json_real_value(json_object_get(p, "ppl")), tol = strstr(file, "F32") ? 5e-4 : 5e-3;
        if (lm) printf("  %-32s PPL %9.4f, llama.cpp %9.4f (%+.3f%%)\n", file, r.ppl, want, 100 * (r.ppl / want - 1));
        CHECKF(lm && fabs(r.ppl / want - 1) <= tol, "%s: PPL %.4f, llama.cpp %.4f", file, r.ppl, want);
        cq_lm_free(lm);
        checked++;
    }
    CHECKF(checked >= 10, "%zu fixtures checked", checked);
    free(ids);
    cq_tokenizer_free(tok);
    json_decref(root);
    free(ref);
}

TST(gguf_convert_refuses_by_name) {
    char *dir = io_tmpdir(), *out = cq_path_join(dir, "o");
    cq_err err = {0};
    CHECK(cq_gguf_convert("tests/data/no-such.gguf", out, NULL, &err) != CQ_OK && strstr(err.msg, "no-such"));
    CHECK(!cq_fs_exists(out));
    cq_gguf_convert_opts o = cq_gguf_convert_default_opts();
    o.dtype = CQ_I8;
    CHECK(cq_gguf_convert(FIXTURES "stories260K-F32.gguf", out, &o, &err) == CQ_E_ARG && strstr(err.msg, "F32, F16 or BF16"));
    CHECK(!cq_fs_exists(out));
    cq_fs_remove_tree(dir, NULL);
    free(out);
    free(dir);
}

/* ---- SmolLM2-135M (make test-full) -------------------------------------------------------- */

static const char *smollm2(void) {
    const char *p = getenv("CQ_SMOLLM2_GGUF");
    return p && *p ? p : NULL;
}

/* transformers on the converted folder: two rows of logits within 1e-4 of the largest, and the
 * 64 greedy tokens. */
TST_FULL(gguf_smollm2_matches_transformers) {
    const char *path = smollm2();
    if (!path) {
        tst_skip("CQ_SMOLLM2_GGUF is not set (tests/cli/test_gguf.sh --full sets it from scripts/get-model.sh)");
        return;
    }
    cq_st_file *g = NULL;
    const cq_tensor *p = NULL, *q = NULL, *r = NULL, *l = NULL;
    cq_err err = {0};
    bool ok = cq_st_open(FIXTURES "smollm2_golden.safetensors", &g, &err) == CQ_OK &&
              !cq_st_get(g, "prompt_ids", &p, &err) && !cq_st_get(g, "greedy_ids", &q, &err) &&
              !cq_st_get(g, "rows", &r, &err) && !cq_st_get(g, "logits", &l, &err);
    CHECKF(ok, "%s", err.msg);
    cq_lm *lm = ok ? load(path) : NULL;
    CHECK(lm != NULL);
    if (lm) {
        int64_t np = p->shape[0], ng = q->shape[0], V = l->shape[1], T = np + ng;
        int32_t *seq = malloc((size_t)T * sizeof *seq);
        memcpy(seq, p->data, (size_t)np * sizeof *seq);
        memcpy(seq + np, q->data, (size_t)ng * sizeof *seq);
        float *lg = malloc((size_t)(T * V) * sizeof(float));
        CHECK(cq_lm_forward(lm, seq, T - 1, lg, 0, NULL) == CQ_OK);
        const int32_t *rows = r->data;
        const float *ref = l->data;
        float top = 0, worst = 0;
        for (int64_t k = 0; k < r->shape[0]; k++)
            for (int64_t i = 0; i < V; i++) {
                top = fmaxf(top, fabsf(ref[k * V + i]));
                worst = fmaxf(worst, fabsf(lg[(int64_t)rows[k] * V + i] - ref[k * V + i]));
            }
        CHECKF(worst <= 1e-4f * top, "max |logit - transformers| = %g, largest %g", worst, top);
        printf("  SmolLM2-135M: max |logit - transformers| = %.3g (largest logit %.3g)\n", worst, top);
        int64_t same = 0;
        for (int64_t i = 0; i < ng; i++) {
            int32_t next = cq_lm_sample(lg + (np - 1 + i) * V, V, 0.0f, 0, 1.0f, NULL);
            if (next != seq[np + i]) break;
            same++;
        }
        CHECKF(same == ng, "greedy tokens agree for %lld of %lld", (long long)same, (long long)ng);
        free(lg);
        free(seq);
    }
    cq_lm_free(lm);
    cq_st_close(g);
}
