/*
 * test_checkpoint.c - the checkpoint tools (src/convert): the plan (which modules, group sizes,
 * skips, bad options), the streaming quantizer against checkpoints written by the real
 * optimum-quanto (tests/data/interop, made by tools/interop/make_fixtures.py), dequantization of
 * quanto's files against what quanto itself dequantizes them to, thread-count invariance,
 * sharded inputs, malformed inputs, the error statistics and the SVG chart.
 */
#include "convert/convert_internal.h"
#include "tst.h"

#include <jansson.h>
#include <math.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <zlib.h>

#define INTEROP "tests/data/interop"
#define STORIES "data/stories260K"

/* ---- helpers ------------------------------------------------------------------------------------ */

static char *tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/cqconv.XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static void rmtree(char *dir) {
    if (dir) cq_fs_remove_tree(dir, NULL);
    free(dir);
}

static char *join(const char *a, const char *b) { return cq_path_join(a, b); }

static unsigned char *slurp(const char *path, size_t *n) {
    char *text = NULL;
    if (cq_fs_read_file(path, (size_t)1 << 30, &text, n, NULL) != CQ_OK) return NULL;
    return (unsigned char *)text;
}

static bool files_equal(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool eq = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return eq;
}

/* Writes a safetensors file of n named float tensors with deterministic pseudo-random values. */
typedef struct spec {
    const char *name;
    cq_dtype dt;
    int ndim;
    int64_t shape[4];
} spec;

static uint32_t rng_next(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static cq_status write_specs(const char *path, const spec *specs, int n, uint32_t seed) {
    cq_st_writer *w = NULL;
    cq_status s = cq_st_writer_open(path, &w, NULL);
    if (!s) s = cq_st_writer_add_metadata(w, "format", "pt", NULL);
    for (int i = 0; !s && i < n; i++) s = cq_st_writer_declare(w, specs[i].name, specs[i].dt, specs[i].ndim, specs[i].shape, NULL);
    for (int i = 0; !s && i < n; i++) {
        cq_tensor *t = NULL;
        s = cq_tensor_new(&t, specs[i].dt, specs[i].ndim, specs[i].shape, NULL);
        int64_t numel = s ? 0 : cq_tensor_numel(t);
        for (int64_t k = 0; k < numel; k++) {
            float v = ((float)(rng_next(&seed) >> 8) / 16777216.0f - 0.5f) * 0.2f;
            if (cq_dtype_is_float(specs[i].dt)) cq_store_f32(t->data, specs[i].dt, k, v);
            else ((uint8_t *)t->data)[k * (int64_t)cq_dtype_size(specs[i].dt)] = (uint8_t)k;
        }
        if (!s) s = cq_st_writer_write_tensor(w, specs[i].name, t, NULL);
        cq_tensor_free(t);
    }
    if (!s) s = cq_st_writer_commit(w, NULL);
    cq_st_writer_free(w);
    return s;
}

static void write_text(const char *path, const char *text) { cq_fs_write_file_atomic(path, text, strlen(text), NULL); }

/* Tensors of a and b agree in names, dtypes and shapes, and in bytes except where quanto's
 * zero-scale rows (NaN/inf codes in quanto, 0 here: docs/NUMERICS.md) differ. */
static int compare_checkpoints(const char *ours, const char *theirs, const char *label) {
    cq_st_file *a = NULL, *b = NULL;
    cq_err err = {0};
    int bad = 0;
    if (cq_st_open(ours, &a, &err) || cq_st_open(theirs, &b, &err)) {
        CHECKF(false, "%s: %s", label, err.msg);
        cq_st_close(a);
        return 1;
    }
    CHECKF(cq_st_count(a) == cq_st_count(b), "%s: %lld vs %lld tensors", label, (long long)cq_st_count(a),
           (long long)cq_st_count(b));
    for (int64_t i = 0; i < cq_st_count(b); i++) {
        const char *name = cq_st_name(b, i);
        const cq_tensor *y = cq_st_tensor(b, i), *x = NULL;
        if (cq_st_get(a, name, &x, NULL)) {
            CHECKF(false, "%s: missing %s", label, name);
            bad++;
            continue;
        }
        bool same = x->dtype == y->dtype && x->ndim == y->ndim;
        for (int d = 0; same && d < x->ndim; d++) same = x->shape[d] == y->shape[d];
        if (!same) {
            CHECKF(false, "%s: %s dtype/shape differs", label, name);
            bad++;
            continue;
        }
        size_t nb = cq_tensor_nbytes(y);
        if (!memcmp(x->data, y->data, nb)) continue;
        /* Allowed only in the rows of an 8-bit weight whose scale is zero. */
        char sname[1024];
        size_t len = strlen(name);
        bool allowed = len > 6 && !strcmp(name + len - 6, "._data") && y->ndim >= 1;
        if (allowed) {
            snprintf(sname, sizeof sname, "%.*s._scale", (int)(len - 6), name);
            const cq_tensor *sc = NULL;
            allowed = !cq_st_get(b, sname, &sc, NULL) && cq_tensor_numel(sc) == y->shape[0];
            size_t row = nb / (size_t)y->shape[0];
            for (int64_t r = 0; allowed && r < y->shape[0]; r++)
                if (memcmp((const uint8_t *)x->data + r * row, (const uint8_t *)y->data + r * row, row))
                    allowed = cq_load_f32(sc->data, sc->dtype, r) == 0.0f;
        }
        CHECKF(allowed, "%s: %s bytes differ", label, name);
        if (!allowed) bad++;
    }
    cq_st_close(a);
    cq_st_close(b);
    return bad;
}

static cq_convert_opts opts_for(const char *weights, const char *activations) {
    cq_convert_opts o = cq_convert_default_opts();
    cq_qtype_parse(weights, &o.weights, NULL);
    if (activations) cq_qtype_parse(activations, &o.activations, NULL);
    return o;
}

/* ---- the plan ------------------------------------------------------------------------------------ */

TST(convert_plan_stories260k) {
    cq_convert_opts o = opts_for("int4", NULL);
    cq_plan *p = NULL;
    cq_err err = {0};
    CHECKF(cq_plan_build(STORIES, &o, &p, &err) == CQ_OK, "%s", err.msg);
    if (!p) return;
    int64_t nq = 0;
    cq_plan_totals(p, NULL, NULL, &nq);
    CHECK(nq == 35);
    CHECK(cq_plan_count(p) == 36);
    const cq_plan_entry *e = cq_plan_entry_at(p, 0);
    CHECK(!strcmp(e->module, "model.embed_tokens") && e->action == CQ_PLAN_SKIP_EMBEDDING);
    bool all_channel = true;
    for (int64_t i = 1; i < cq_plan_count(p); i++) all_channel = all_channel && cq_plan_entry_at(p, i)->group_size == 0;
    CHECK(all_channel); /* in_features 64 and 172: quanto's rule never groups */
    cq_plan_free(p);

    /* include / exclude with quanto semantics */
    const char *inc[] = {"model.layers.0.*"}, *exc[] = {"*.mlp.*"};
    o.include = inc, o.n_include = 1, o.exclude = exc, o.n_exclude = 1;
    CHECKF(cq_plan_build(STORIES, &o, &p, &err) == CQ_OK, "%s", err.msg);
    cq_plan_totals(p, NULL, NULL, &nq);
    CHECK(nq == 4);
    cq_plan_free(p);
}

/* The entry of module m in p, or NULL. */
static const cq_plan_entry *plan_find(const cq_plan *p, const char *m) {
    for (int64_t k = 0; p && k < cq_plan_count(p); k++)
        if (!strcmp(cq_plan_entry_at(p, k)->module, m)) return cq_plan_entry_at(p, k);
    return NULL;
}

typedef struct want_entry {
    const char *m;
    cq_plan_action a;
    int64_t gs;
    const char *by;
} want_entry;

static void check_plan(const cq_plan *p, const want_entry *want, size_t n) {
    CHECKF(p && cq_plan_count(p) == (int64_t)n, "%lld entries", p ? (long long)cq_plan_count(p) : -1LL);
    for (size_t i = 0; p && i < n; i++) {
        const cq_plan_entry *e = plan_find(p, want[i].m);
        CHECKF(e && e->action == want[i].a && e->group_size == want[i].gs && !strcmp(e->decided_by, want[i].by),
               "%s: %d %lld %s", want[i].m, e ? (int)e->action : -1, e ? (long long)e->group_size : -1LL,
               e ? e->decided_by : "-");
    }
}

TST(convert_plan_group_sizes_and_heads) {
    char *dir = tmpdir();
    char *f = join(dir, "model.safetensors"), *cfg = join(dir, "config.json"), *kinds = join(dir, "kinds.json");
    const spec specs[] = {
        {"model.embed_tokens.weight", CQ_BF16, 2, {100, 256}},
        {"model.layers.0.self_attn.q_proj.weight", CQ_BF16, 2, {8, 256}}, /* group 128 */
        {"model.layers.0.self_attn.k_proj.weight", CQ_BF16, 2, {8, 288}}, /* group 96 */
        {"model.layers.0.self_attn.v_proj.weight", CQ_BF16, 2, {8, 320}}, /* group 64 */
        {"model.layers.0.self_attn.o_proj.weight", CQ_BF16, 2, {8, 160}}, /* group 32 */
        {"model.layers.0.mlp.gate_proj.weight", CQ_BF16, 2, {8, 172}},    /* none divides */
        {"model.conv.weight", CQ_BF16, 4, {4, 32, 3, 3}},                  /* 288 -> 96 */
        {"model.norm.weight", CQ_BF16, 1, {256}},
        {"model.norm.bias", CQ_BF16, 1, {256}},
        {"model.tok.weight", CQ_BF16, 2, {100, 64}},
        {"lm_head.weight", CQ_BF16, 2, {100, 256}},
    };
    CHECK(write_specs(f, specs, (int)(sizeof specs / sizeof specs[0]), 1) == CQ_OK);
    write_text(cfg, "{\"model_type\": \"llama\", \"vocab_size\": 100, \"tie_word_embeddings\": false}");
    cq_convert_opts o = opts_for("int4", NULL);
    cq_plan *p = NULL;
    cq_err err = {0};
    /* config.json's family decides; what its table does not name stays float. */
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
    const char *L = "config:llama";
    const want_entry by_config[] = {
        {"model.embed_tokens", CQ_PLAN_SKIP_EMBEDDING, 0, L}, {"model.layers.0.self_attn.q_proj", CQ_PLAN_QUANTIZE, 128, L},
        {"model.layers.0.self_attn.k_proj", CQ_PLAN_QUANTIZE, 96, L}, {"model.layers.0.self_attn.v_proj", CQ_PLAN_QUANTIZE, 64, L},
        {"model.layers.0.self_attn.o_proj", CQ_PLAN_QUANTIZE, 32, L}, {"model.layers.0.mlp.gate_proj", CQ_PLAN_QUANTIZE, 0, L},
        {"model.conv", CQ_PLAN_SKIP_UNDECIDED, 0, "undecided"}, {"model.tok", CQ_PLAN_SKIP_UNDECIDED, 0, "undecided"},
        {"lm_head", CQ_PLAN_QUANTIZE, 128, L}};
    check_plan(p, by_config, sizeof by_config / sizeof by_config[0]);
    CHECK(p && plan_find(p, "model.conv")->kind == CQ_LAYER_UNKNOWN && plan_find(p, "lm_head")->kind == CQ_LAYER_LINEAR);
    cq_plan_free(p);
    /* A kinds file decides the modules it names, before the table. */
    write_text(kinds, "{\"model.conv\": \"conv2d\", \"model.tok\": \"embedding\", \"lm_head\": \"other\"}");
    o.module_kinds = kinds;
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
    CHECK(p && plan_find(p, "model.conv")->action == CQ_PLAN_QUANTIZE && plan_find(p, "model.conv")->group_size == 96 &&
          !strcmp(plan_find(p, "model.conv")->decided_by, "kinds-file"));
    CHECK(p && plan_find(p, "model.tok")->action == CQ_PLAN_SKIP_EMBEDDING);
    CHECK(p && plan_find(p, "lm_head")->action == CQ_PLAN_SKIP_KIND && plan_find(p, "lm_head")->kind == CQ_LAYER_OTHER);
    CHECK(p && plan_find(p, "model.layers.0.self_attn.q_proj")->action == CQ_PLAN_QUANTIZE);
    cq_plan_free(p);
    o.module_kinds = NULL;
    /* Tied embeddings: the head is the embedding table. */
    write_text(cfg, "{\"model_type\": \"llama\", \"vocab_size\": 100, \"tie_word_embeddings\": true}");
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
    CHECK(p && plan_find(p, "lm_head") && plan_find(p, "lm_head")->action == CQ_PLAN_SKIP_TIED_HEAD);
    cq_plan_free(p);
    /* An explicit group size must divide every quantized module's input features. */
    o.group_size = 64;
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_E_ARG && strstr(err.msg, "gate_proj") && strstr(err.msg, "172"),
           "%s", err.msg);
    const char *exc[] = {"*.k_proj", "*.o_proj", "*.gate_proj"};
    o.exclude = exc, o.n_exclude = 3;
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
    CHECK(p && plan_find(p, "model.layers.0.self_attn.q_proj")->group_size == 64 &&
          plan_find(p, "model.layers.0.self_attn.v_proj")->group_size == 64);
    cq_plan_free(p);
    /* A config.json of a family cquanto has no table for: nothing is guessed, so nothing is left. */
    write_text(cfg, "{\"model_type\": \"mystery\"}");
    o = opts_for("int4", NULL);
    CHECK(cq_plan_build(dir, &o, &p, &err) == CQ_E_ARG && strstr(err.msg, "mystery") && strstr(err.msg, "--module-kinds"));
    /* Without config.json (and kinds file), names and ranks decide as they always have, and with
     * activations LayerNorm-looking modules get quanto's QLayerNorm state. */
    CHECK(remove(cfg) == 0);
    o = opts_for("int8", "int8");
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
    const char *G = "name/rank guess";
    const want_entry by_guess[] = {
        {"model.embed_tokens", CQ_PLAN_SKIP_EMBEDDING, 0, G}, {"model.layers.0.self_attn.q_proj", CQ_PLAN_QUANTIZE, 0, G},
        {"model.layers.0.self_attn.k_proj", CQ_PLAN_QUANTIZE, 0, G}, {"model.layers.0.self_attn.v_proj", CQ_PLAN_QUANTIZE, 0, G},
        {"model.layers.0.self_attn.o_proj", CQ_PLAN_QUANTIZE, 0, G}, {"model.layers.0.mlp.gate_proj", CQ_PLAN_QUANTIZE, 0, G},
        {"model.conv", CQ_PLAN_QUANTIZE, 0, G}, {"model.norm", CQ_PLAN_ACTIVATIONS_ONLY, 0, G},
        {"model.tok", CQ_PLAN_QUANTIZE, 0, G}, {"lm_head", CQ_PLAN_QUANTIZE, 0, G}};
    check_plan(p, by_guess, sizeof by_guess / sizeof by_guess[0]);
    CHECK(p && plan_find(p, "model.norm")->weights == CQ_QNONE);
    cq_plan_free(p);
    free(f);
    free(cfg);
    free(kinds);
    rmtree(dir);
}

/* The bert and gpt2 tables: GPT-2's Conv1D and BERT's tied decoder stay float, their LayerNorms
 * get activation scales, and the families are found by model_type or by class name. */
TST(convert_plan_family_tables) {
    char *dir = tmpdir();
    char *f = join(dir, "model.safetensors"), *cfg = join(dir, "config.json");
    const spec gpt2[] = {
        {"transformer.wte.weight", CQ_F32, 2, {50, 16}},       {"transformer.h.0.ln_1.weight", CQ_F32, 1, {16}},
        {"transformer.h.0.ln_1.bias", CQ_F32, 1, {16}},         {"transformer.h.0.attn.c_attn.weight", CQ_F32, 2, {16, 48}},
        {"transformer.h.0.attn.c_attn.bias", CQ_F32, 1, {48}},  {"transformer.h.0.attn.c_proj.weight", CQ_F32, 2, {16, 16}},
        {"transformer.h.0.attn.c_proj.bias", CQ_F32, 1, {16}},  {"transformer.h.0.extra.weight", CQ_F32, 2, {16, 16}},
        {"lm_head.weight", CQ_F32, 2, {50, 16}},
    };
    CHECK(write_specs(f, gpt2, (int)(sizeof gpt2 / sizeof gpt2[0]), 3) == CQ_OK);
    write_text(cfg, "{\"model_type\": \"gpt2\", \"tie_word_embeddings\": false}");
    cq_convert_opts o = opts_for("int8", "int8");
    cq_plan *p = NULL;
    cq_err err = {0};
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
    const char *G = "config:gpt2";
    const want_entry want_gpt2[] = {
        {"transformer.wte", CQ_PLAN_SKIP_EMBEDDING, 0, G},       {"transformer.h.0.ln_1", CQ_PLAN_ACTIVATIONS_ONLY, 0, G},
        {"transformer.h.0.attn.c_attn", CQ_PLAN_SKIP_CONV1D, 0, G}, {"transformer.h.0.attn.c_proj", CQ_PLAN_SKIP_CONV1D, 0, G},
        {"transformer.h.0.extra", CQ_PLAN_SKIP_UNDECIDED, 0, "undecided"}, {"lm_head", CQ_PLAN_QUANTIZE, 0, G}};
    check_plan(p, want_gpt2, sizeof want_gpt2 / sizeof want_gpt2[0]);
    cq_plan_free(p);
    const spec bert[] = {
        {"bert.embeddings.word_embeddings.weight", CQ_F32, 2, {50, 16}},
        {"bert.embeddings.LayerNorm.weight", CQ_F32, 1, {16}},
        {"bert.embeddings.LayerNorm.bias", CQ_F32, 1, {16}},
        {"bert.encoder.layer.0.attention.self.query.weight", CQ_F32, 2, {16, 16}},
        {"bert.encoder.layer.0.attention.self.query.bias", CQ_F32, 1, {16}},
        {"cls.predictions.decoder.weight", CQ_F32, 2, {50, 16}},
    };
    CHECK(write_specs(f, bert, (int)(sizeof bert / sizeof bert[0]), 4) == CQ_OK);
    write_text(cfg, "{\"architectures\": [\"BertForMaskedLM\"]}");
    CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
    const char *B = "config:bert";
    const want_entry want_bert[] = {
        {"bert.embeddings.word_embeddings", CQ_PLAN_SKIP_EMBEDDING, 0, B},
        {"bert.embeddings.LayerNorm", CQ_PLAN_ACTIVATIONS_ONLY, 0, B},
        {"bert.encoder.layer.0.attention.self.query", CQ_PLAN_QUANTIZE, 0, B},
        {"cls.predictions.decoder", CQ_PLAN_SKIP_TIED_HEAD, 0, B}};
    check_plan(p, want_bert, sizeof want_bert / sizeof want_bert[0]);
    cq_plan_free(p);
    /* Mistral by model_type, Qwen2 (q/k/v biases) by class name: both read Llama's table. */
    const spec llama_like[] = {
        {"model.embed_tokens.weight", CQ_F32, 2, {50, 16}},
        {"model.layers.0.self_attn.q_proj.weight", CQ_F32, 2, {16, 16}},
        {"model.layers.0.self_attn.q_proj.bias", CQ_F32, 1, {16}},
        {"model.layers.0.mlp.extra.weight", CQ_F32, 2, {16, 16}},
        {"lm_head.weight", CQ_F32, 2, {50, 16}},
    };
    const char *configs[][2] = {{"{\"model_type\": \"mistral\", \"tie_word_embeddings\": false}", "config:mistral"},
                                {"{\"architectures\": [\"Qwen2ForCausalLM\"], \"tie_word_embeddings\": false}",
                                 "config:qwen2"}};
    for (int c = 0; c < 2; c++) {
        CHECK(write_specs(f, llama_like, (int)(sizeof llama_like / sizeof llama_like[0]), 5 + c) == CQ_OK);
        write_text(cfg, configs[c][0]);
        CHECKF(cq_plan_build(dir, &o, &p, &err) == CQ_OK, "%s", err.msg);
        const char *F = configs[c][1];
        const want_entry want_ll[] = {{"model.embed_tokens", CQ_PLAN_SKIP_EMBEDDING, 0, F},
                                      {"model.layers.0.self_attn.q_proj", CQ_PLAN_QUANTIZE, 0, F},
                                      {"model.layers.0.mlp.extra", CQ_PLAN_SKIP_UNDECIDED, 0, "undecided"},
                                      {"lm_head", CQ_PLAN_QUANTIZE, 0, F}};
        check_plan(p, want_ll, sizeof want_ll / sizeof want_ll[0]);
        cq_plan_free(p);
    }
    free(f);
    free(cfg);
    rmtree(dir);
}

TST(convert_plan_rejects_bad_options_and_inputs) {
    cq_plan *p = NULL;
    cq_err err = {0};
    cq_convert_opts o = opts_for("int4", NULL);
    const char *empty[] = {""};
    o.include = empty, o.n_include = 1;
    CHECK(cq_plan_build(STORIES, &o, &p, &err) == CQ_E_ARG && strstr(err.msg, "empty"));
    const char *none[] = {"no.such.module*"};
    o.include = none;
    CHECK(cq_plan_build(STORIES, &o, &p, &err) == CQ_E_ARG && strstr(err.msg, "match no"));
    o = opts_for("int8", NULL);
    o.optimizer = CQ_OPT_HQQ;
    CHECK(cq_plan_build(STORIES, &o, &p, &err) == CQ_E_ARG);
    o = opts_for("int4", NULL);
    o.optimizer = CQ_OPT_ABSMAX;
    CHECK(cq_plan_build(STORIES, &o, &p, &err) == CQ_E_ARG);
    o = opts_for("int8", NULL);
    o.group_size = 32;
    CHECK(cq_plan_build(STORIES, &o, &p, &err) == CQ_E_ARG);
    /* Already quantized. */
    o = opts_for("int4", NULL);
    CHECK(cq_plan_build(INTEROP "/stories_int4", &o, &p, &err) == CQ_E_FORMAT && strstr(err.msg, "already"));
    /* A module to quantize in an unsupported dtype; excluding it makes the plan valid. */
    char *dir = tmpdir(), *f = join(dir, "m.safetensors");
    const spec specs[] = {{"fc.weight", CQ_F64, 2, {4, 8}}, {"fc2.weight", CQ_F32, 2, {4, 8}}};
    write_specs(f, specs, 2, 3);
    CHECK(cq_plan_build(f, &o, &p, &err) == CQ_E_DTYPE && strstr(err.msg, "fc.weight") && strstr(err.msg, "F64"));
    const char *exc[] = {"fc"};
    o.exclude = exc, o.n_exclude = 1;
    CHECKF(cq_plan_build(f, &o, &p, &err) == CQ_OK, "%s", err.msg);
    cq_plan_free(p);
    /* GPT-2's Conv1D layers are left alone; only its tied head would remain. */
    const spec gpt2[] = {{"transformer.h.0.attn.c_attn.weight", CQ_F32, 2, {16, 48}},
                         {"transformer.h.0.mlp.c_fc.weight", CQ_F32, 2, {16, 64}},
                         {"transformer.wte.weight", CQ_F32, 2, {50, 16}}};
    write_specs(f, gpt2, 3, 4);
    o = opts_for("int8", NULL);
    CHECK(cq_plan_build(f, &o, &p, &err) == CQ_E_ARG && strstr(err.msg, "nothing"));
    free(f);
    rmtree(dir);
}

/* ---- against optimum-quanto ---------------------------------------------------------------------- */

typedef void (*fixture_fn)(const char *name, const char *fixture_dir, json_t *expected);

static void for_each_fixture(fixture_fn fn) {
    json_t *list = json_load_file(INTEROP "/fixtures.json", 0, NULL);
    json_t *arr = json_object_get(list, "fixtures");
    CHECKF(json_array_size(arr) >= 10, "fixtures.json lists %zu fixtures", json_array_size(arr));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *name = json_string_value(json_array_get(arr, i));
        char dir[512], path[600];
        snprintf(dir, sizeof dir, INTEROP "/%s", name);
        snprintf(path, sizeof path, "%s/expected.json", dir);
        json_t *exp = json_load_file(path, 0, NULL);
        CHECKF(exp != NULL, "%s", path);
        if (exp) fn(name, dir, exp);
        json_decref(exp);
    }
    json_decref(list);
}

/* Direction (a): our quantization of the same float model gives optimum-quanto's tensors. */
static void quantize_matches(const char *name, const char *fixture, json_t *exp) {
    json_t *o = json_object_get(exp, "cquanto_options");
    cq_convert_opts opts = opts_for(json_string_value(json_object_get(o, "weights")),
                                    json_string_value(json_object_get(o, "activations")));
    const char *optimizer = json_string_value(json_object_get(o, "optimizer"));
    if (optimizer) CHECKF(!strcmp(optimizer, "hqq"), "%s: optimizer %s", name, optimizer);
    if (optimizer) opts.optimizer = CQ_OPT_HQQ;
    char *dir = tmpdir(), *out = join(dir, "q"), *ours = join(out, "model.safetensors");
    char theirs[600];
    snprintf(theirs, sizeof theirs, "%s/model.safetensors", fixture);
    cq_err err = {0};
    cq_status s = cq_convert_quantize(json_string_value(json_object_get(o, "source")), out, &opts, NULL, &err);
    CHECKF(s == CQ_OK, "%s: %s", name, err.msg);
    if (!s) {
        CHECKF(compare_checkpoints(ours, theirs, name) == 0, "%s", name);
        /* Same modules and qtypes (quanto orders them by module definition, we by file). */
        char *qa = join(out, "quanto_qmap.json");
        char qb[600];
        snprintf(qb, sizeof qb, "%s/quanto_qmap.json", fixture);
        cq_qmap *a = NULL, *b = NULL;
        CHECK(cq_qmap_load(qa, &a, NULL) == CQ_OK && cq_qmap_load(qb, &b, NULL) == CQ_OK);
        CHECK(a && b && cq_qmap_count(a) == cq_qmap_count(b));
        for (int64_t i = 0; a && b && i < cq_qmap_count(b); i++) {
            int64_t k = cq_qmap_find(a, cq_qmap_module(b, i));
            CHECKF(k >= 0 && cq_qmap_weights(a, k) == cq_qmap_weights(b, i) &&
                       cq_qmap_activations(a, k) == cq_qmap_activations(b, i),
                   "%s: qmap entry %s", name, cq_qmap_module(b, i));
        }
        cq_qmap_free(a);
        cq_qmap_free(b);
        free(qa);
    }
    free(ours);
    free(out);
    rmtree(dir);
}

TST(convert_quantize_matches_optimum_quanto) { for_each_fixture(quantize_matches); }

/* Direction (b): quanto's checkpoint dequantizes to exactly what quanto's dequantize() gives. */
static void dequantize_matches(const char *name, const char *fixture, json_t *exp) {
    json_t *o = json_object_get(exp, "cquanto_options");
    char *dir = tmpdir(), *out = join(dir, "f.safetensors");
    cq_convert_opts opts = cq_convert_default_opts();
    opts.like = json_string_value(json_object_get(o, "source")); /* grouped shapes of tiny's modules */
    cq_err err = {0};
    cq_status s = cq_convert_dequantize(fixture, out, &opts, NULL, &err);
    CHECKF(s == CQ_OK, "%s: %s", name, err.msg);
    cq_st_file *f = NULL;
    if (!s && cq_st_open(out, &f, &err) == CQ_OK) {
        json_t *deq = json_object_get(exp, "dequantized");
        const char *key;
        json_t *v;
        int checked = 0;
        json_object_foreach(deq, key, v) {
            const cq_tensor *t = NULL;
            if (cq_st_get(f, key, &t, NULL)) {
                CHECKF(false, "%s: no %s", name, key);
                continue;
            }
            size_t nb = cq_tensor_nbytes(t);
            uLong crc = crc32(0L, (const Bytef *)t->data, (uInt)nb);
            CHECKF(nb == (size_t)json_integer_value(json_object_get(v, "nbytes")) &&
                       crc == (uLong)json_integer_value(json_object_get(v, "crc32")),
                   "%s: %s dequantizes differently from optimum-quanto (%zu bytes, crc %08lx)", name, key, nb,
                   (unsigned long)crc);
            checked++;
        }
        CHECKF(checked >= 6 && checked == (int)json_object_size(deq), "%s: %d weights checked", name, checked);
        /* Activation scales are gone, and nothing but float tensors remains. */
        bool clean = true;
        for (int64_t i = 0; i < cq_st_count(f); i++)
            clean = clean && !strstr(cq_st_name(f, i), "input_scale") && !strstr(cq_st_name(f, i), "._data");
        CHECK(clean);
        cq_st_close(f);
    }
    free(out);
    rmtree(dir);
}

TST(convert_dequantize_matches_optimum_quanto) { for_each_fixture(dequantize_matches); }

TST(convert_dequantize_needs_a_shape_source) {
    /* tiny's g96 (no bias) and grouped conv: optimum-quanto's file does not tell their shapes. */
    char *dir = tmpdir(), *out = join(dir, "f.safetensors");
    cq_err err = {0};
    CHECK(cq_convert_dequantize(INTEROP "/tiny_f32_int4", out, NULL, NULL, &err) == CQ_E_NOTFOUND &&
          strstr(err.msg, "--like"));
    CHECK(!cq_fs_exists(out));
    /* stories260K: config.json's widths settle it without a reference. */
    CHECKF(cq_convert_dequantize(INTEROP "/stories_int4", out, NULL, NULL, &err) == CQ_OK, "%s", err.msg);
    /* Not a quanto checkpoint. */
    cq_convert_opts o = cq_convert_default_opts();
    o.overwrite = true;
    CHECK(cq_convert_dequantize(STORIES, out, &o, NULL, &err) == CQ_E_NOTFOUND && strstr(err.msg, "quanto_qmap"));
    free(out);
    rmtree(dir);
}

/* ---- our own round trip ------------------------------------------------------------------------------- */

TST(convert_roundtrip_quantize_dequantize_report) {
    static const char *const qtypes[] = {"int2", "int4", "int8", "float8", "float8_e5m2"};
    static const double min_snr[] = {2.0, 12.0, 35.0, 25.0, 15.0};
    char *dir = tmpdir();
    for (size_t k = 0; k < sizeof qtypes / sizeof qtypes[0]; k++) {
        char out[600], deq[600];
        snprintf(out, sizeof out, "%s/%s", dir, qtypes[k]);
        snprintf(deq, sizeof deq, "%s/%s.safetensors", dir, qtypes[k]);
        cq_convert_opts o = opts_for(qtypes[k], NULL);
        cq_convert_stats st;
        cq_err err = {0};
        CHECKF(cq_convert_quantize(STORIES, out, &o, &st, &err) == CQ_OK, "%s: %s", qtypes[k], err.msg);
        CHECK(st.modules == 35 && st.weights == 226560);
        char tok[700];
        snprintf(tok, sizeof tok, "%s/tok512.bin", out);
        CHECK(files_equal(tok, STORIES "/tok512.bin")); /* small files travel along */
        CHECKF(cq_convert_dequantize(out, deq, NULL, NULL, &err) == CQ_OK, "%s: %s", qtypes[k], err.msg);
        cq_report *r = NULL;
        CHECKF(cq_report_build(STORIES, out, NULL, &r, &err) == CQ_OK, "%s: %s", qtypes[k], err.msg);
        cq_error_stats all;
        double bpw;
        cq_report_overall(r, &all, &bpw);
        CHECKF(all.snr_db > min_snr[k] && isfinite(all.snr_db), "%s: SNR %.2f", qtypes[k], all.snr_db);
        CHECK(cq_report_count(r) == 35);
        for (int64_t i = 1; i < cq_report_count(r); i++)
            CHECK(cq_report_entry_at(r, i - 1)->err.snr_db <= cq_report_entry_at(r, i)->err.snr_db);
        /* The report's error is the dequantized file's error, tensor for tensor. */
        const cq_report_entry *worst = cq_report_entry_at(r, 0);
        cq_st_file *fd = NULL, *ff = NULL;
        CHECK(cq_st_open(deq, &fd, NULL) == CQ_OK && cq_st_open(STORIES "/model.safetensors", &ff, NULL) == CQ_OK);
        char wname[300];
        snprintf(wname, sizeof wname, "%s.weight", worst->module);
        const cq_tensor *a = NULL, *b = NULL;
        cq_error_stats es;
        if (fd && ff && !cq_st_get(ff, wname, &a, NULL) && !cq_st_get(fd, wname, &b, NULL) &&
            !cq_error_stats_tensors(a, b, &es, NULL))
            CHECK(es.snr_db == worst->err.snr_db && es.max_abs == worst->err.max_abs);
        else
            CHECK(false);
        cq_st_close(fd);
        cq_st_close(ff);
        if (k == 1) {
            char svg[700];
            snprintf(svg, sizeof svg, "%s/snr.svg", dir);
            CHECKF(cq_report_write_svg(r, "stories260K int4", svg, &err) == CQ_OK, "%s", err.msg);
            size_t n;
            char *text = (char *)slurp(svg, &n);
            CHECK(text && !strncmp(text, "<?xml", 5) && strstr(text, "<svg") && strstr(text, "q_proj") &&
                  strstr(text, "</svg>"));
            int bars = 0;
            for (char *q = text; q && (q = strstr(q, "<title>")); q++) bars++;
            CHECK(bars == 35);
            free(text);
        }
        cq_report_free(r);
    }
    rmtree(dir);
}

TST(convert_error_stats_by_hand) {
    float x[4] = {1, 2, 3, 4}, y[4] = {1, 2, 3, 5};
    cq_error_stats s;
    memset(&s, 0, sizeof s);
    cq_error_stats_add(&s, x, CQ_F32, y, CQ_F32, 4);
    cq_error_stats_finish(&s);
    CHECK(s.n == 4 && s.sum_sq_ref == 30.0 && s.sum_sq_err == 1.0 && s.max_abs == 1.0);
    CHECK(fabs(s.snr_db - 10.0 * log10(30.0)) < 1e-12 && fabs(s.rel_rms - sqrt(1.0 / 30.0)) < 1e-15);
    memset(&s, 0, sizeof s);
    cq_error_stats_add(&s, x, CQ_F32, x, CQ_F32, 4);
    cq_error_stats_finish(&s);
    CHECK(isinf(s.snr_db) && s.snr_db > 0 && s.rel_rms == 0.0);
    uint16_t hb[4];
    for (int i = 0; i < 4; i++) hb[i] = cq_f32_to_bf16(y[i]);
    memset(&s, 0, sizeof s);
    cq_error_stats_add(&s, x, CQ_F32, hb, CQ_BF16, 4); /* mixed dtypes */
    cq_error_stats_finish(&s);
    CHECK(s.sum_sq_err == 1.0);
    y[2] = NAN;
    memset(&s, 0, sizeof s);
    cq_error_stats_add(&s, x, CQ_F32, y, CQ_F32, 4);
    cq_error_stats_finish(&s);
    CHECK(isnan(s.snr_db) && isnan(s.max_abs));
}

/* ---- streaming: blocks, threads, shards ------------------------------------------------------------ */

/* A bf16 model whose tensors are cut into many blocks: odd row counts, single-row pieces. */
static const spec BLOCKY[] = {
    {"embed.weight", CQ_BF16, 2, {50, 64}},
    {"a.weight", CQ_BF16, 2, {37, 256}},   /* 74 groups of 128 */
    {"b.weight", CQ_BF16, 2, {129, 96}},   /* per channel, odd rows */
    {"c.weight", CQ_F16, 2, {65, 192}},    /* groups of 96 */
    {"c.bias", CQ_F16, 1, {65}},
    {"d.weight", CQ_F32, 4, {9, 16, 3, 3}},/* conv, groups of 48? no: 144 -> none */
    {"e.weight", CQ_BF16, 2, {1, 64}},     /* one row: per tensor in quanto */
    {"norm.weight", CQ_BF16, 1, {64}},
};

/* Every quantized tensor equals src/quant's whole-tensor quantization, for each qtype. */
TST(convert_blocks_equal_whole_tensor_quantization) {
    char *dir = tmpdir(), *src = join(dir, "m.safetensors");
    CHECK(write_specs(src, BLOCKY, (int)(sizeof BLOCKY / sizeof BLOCKY[0]), 7) == CQ_OK);
    size_t saved = cq_experimental_set_convert_item_bytes(700); /* a few rows per block */
    /* The last two: HQQ (parameters in one exclusive pass, codes in blocks; quanto's HQQ rejects
     * the one-row module e). */
    static const char *const qtypes[] = {"int2", "int4", "int8", "float8", "float8_e5m2", "int4", "int2"};
    for (size_t k = 0; k < 7; k++) {
        bool hqq = k >= 5;
        char out[600], file[700];
        snprintf(out, sizeof out, "%s/%s%s", dir, qtypes[k], hqq ? "_hqq" : "");
        snprintf(file, sizeof file, "%s/model.safetensors", out);
        cq_convert_opts o = opts_for(qtypes[k], NULL);
        o.threads = 2;
        static const char *const one_row[] = {"e"};
        if (hqq) o.optimizer = CQ_OPT_HQQ, o.exclude = one_row, o.n_exclude = 1;
        cq_err err = {0};
        CHECKF(cq_convert_quantize(src, out, &o, NULL, &err) == CQ_OK, "%s: %s", qtypes[k], err.msg);
        cq_st_file *in = NULL, *q = NULL;
        if (cq_st_open(src, &in, NULL) || cq_st_open(file, &q, NULL)) {
            CHECK(false);
            cq_st_close(in);
            continue;
        }
        static const char *const mods[] = {"a", "b", "c", "d", "e"};
        for (size_t m = 0; m < (hqq ? 4 : 5); m++) {
            char name[64];
            snprintf(name, sizeof name, "%s.weight", mods[m]);
            const cq_tensor *w = NULL;
            cq_st_get(in, name, &w, NULL);
            cq_qweight *qw = NULL;
            CHECK(cq_qweight_quantize(w, o.weights, o.optimizer, -1, &qw, NULL) == CQ_OK);
            if (!qw) continue;
            if (qw->shift) cq_qweight_apply_tinygemm_roundtrip(qw);
            const cq_tensor *parts[3] = {qw->data, qw->scale, qw->shift};
            const char *suffix[3] = {qw->shift ? "weight._data._data" : "weight._data", "weight._scale", "weight._shift"};
            for (int p = 0; p < (qw->shift ? 3 : 2); p++) {
                snprintf(name, sizeof name, "%s.%s", mods[m], suffix[p]);
                const cq_tensor *t = NULL;
                bool ok = !cq_st_get(q, name, &t, NULL) && t->ndim == parts[p]->ndim &&
                          cq_tensor_nbytes(t) == cq_tensor_nbytes(parts[p]) &&
                          !memcmp(t->data, parts[p]->data, cq_tensor_nbytes(t));
                for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == parts[p]->shape[d];
                CHECKF(ok, "%s %s", qtypes[k], name);
            }
            cq_qweight_free(qw);
        }
        cq_st_close(in);
        cq_st_close(q);
        /* Our own files dequantize without a reference (shapes recorded where ambiguous). */
        char deq[700];
        snprintf(deq, sizeof deq, "%s/%s%s.safetensors", dir, qtypes[k], hqq ? "_hqq" : "");
        CHECKF(cq_convert_dequantize(out, deq, NULL, NULL, &err) == CQ_OK, "%s: %s", qtypes[k], err.msg);
    }
    cq_experimental_set_convert_item_bytes(saved);
    free(src);
    rmtree(dir);
}

/* HQQ on ungrouped Conv2d weights: the shift's shape follows the data (quanto-format: a kept HQQ
 * step gives (O,I,kh,1), none the Max (O,1,1,1)), so the streamer settles it before the header;
 * both come out as whole-tensor quantization gives them. */
TST(convert_hqq_conv_shift_shape_follows_the_data) {
    char *dir = tmpdir(), *src = join(dir, "m.safetensors"), *out = join(dir, "q"), *file = join(out, "model.safetensors");
    int64_t shape[4] = {4, 3, 3, 3};
    cq_tensor *exact = NULL, *rnd = NULL;
    cq_tensor_new(&exact, CQ_F32, 4, shape, NULL);
    cq_tensor_new(&rnd, CQ_F32, 4, shape, NULL);
    uint32_t seed = 5;
    for (int64_t k = 0; k < 108; k++) {
        cq_store_f32(exact->data, CQ_F32, k, (float)(k % 27 % 16) * 0.125f - 1.0f); /* on the int4 grid */
        cq_store_f32(rnd->data, CQ_F32, k, (float)(rng_next(&seed) >> 8) / 16777216.0f - 0.5f);
    }
    cq_st_writer *w = NULL;
    cq_status s = cq_st_writer_open(src, &w, NULL);
    if (!s) s = cq_st_writer_declare(w, "exact.weight", CQ_F32, 4, shape, NULL);
    if (!s) s = cq_st_writer_declare(w, "rnd.weight", CQ_F32, 4, shape, NULL);
    if (!s) s = cq_st_writer_write_tensor(w, "exact.weight", exact, NULL);
    if (!s) s = cq_st_writer_write_tensor(w, "rnd.weight", rnd, NULL);
    if (!s) s = cq_st_writer_commit(w, NULL);
    cq_st_writer_free(w);
    CHECK(s == CQ_OK);
    cq_convert_opts o = opts_for("int4", NULL);
    o.optimizer = CQ_OPT_HQQ;
    static const char *const kinds[] = {"exact", "rnd"};
    cq_err err = {0};
    CHECKF(cq_convert_quantize(src, out, &o, NULL, &err) == CQ_OK, "%s", err.msg);
    cq_st_file *q = NULL;
    CHECK(cq_st_open(file, &q, NULL) == CQ_OK);
    const cq_tensor *ws[2] = {exact, rnd};
    for (int m = 0; q && m < 2; m++) {
        cq_qweight *qw = NULL;
        CHECK(cq_qweight_quantize(ws[m], CQ_QINT4, CQ_OPT_HQQ, -1, &qw, NULL) == CQ_OK);
        if (!qw) continue;
        CHECK(qw->shift->shape[1] == (m ? 3 : 1)); /* the exact weight keeps the Max shift */
        const cq_tensor *parts[3] = {qw->data, qw->scale, qw->shift};
        static const char *const suffix[3] = {"weight._data._data", "weight._scale", "weight._shift"};
        for (int p = 0; p < 3; p++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%s", kinds[m], suffix[p]);
            const cq_tensor *t = NULL;
            CHECKF(!cq_st_get(q, name, &t, NULL) && cq_tensor_same_shape(t, parts[p]) &&
                       !memcmp(t->data, parts[p]->data, cq_tensor_nbytes(t)),
                   "%s", name);
        }
        cq_qweight_free(qw);
    }
    cq_st_close(q);
    char *deq = join(dir, "d.safetensors");
    CHECKF(cq_convert_dequantize(out, deq, NULL, NULL, &err) == CQ_OK, "%s", err.msg);
    free(deq);
    cq_tensor_free(exact), cq_tensor_free(rnd);
    free(file), free(out), free(src);
    rmtree(dir);
}

TST(convert_output_identical_for_any_thread_count) {
    char *dir = tmpdir(), *src = join(dir, "m.safetensors");
    CHECK(write_specs(src, BLOCKY, (int)(sizeof BLOCKY / sizeof BLOCKY[0]), 9) == CQ_OK);
    size_t saved = cq_experimental_set_convert_item_bytes(1000);
    static const char *const qtypes[] = {"int4", "int8"};
    for (int k = 0; k < 2; k++) {
        char first[700] = "";
        for (int t = 1; t <= 4; t++) {
            char out[600], file[700];
            snprintf(out, sizeof out, "%s/%s_t%d", dir, qtypes[k], t);
            snprintf(file, sizeof file, "%s/model.safetensors", out);
            cq_convert_opts o = opts_for(qtypes[k], NULL);
            o.threads = t;
            if (k == 0 && t == 3) o.optimizer = CQ_OPT_MAX;
            cq_err err = {0};
            CHECKF(cq_convert_quantize(src, out, &o, NULL, &err) == CQ_OK, "%s", err.msg);
            if (t == 1) snprintf(first, sizeof first, "%s", file);
            else CHECKF(files_equal(first, file), "%s with %d threads", qtypes[k], t);
        }
    }
    /* HQQ too (its parameter pass and its blocks); quanto's HQQ cannot take the one-row module. */
    char a[600], b[600], fa[700], fb[700];
    snprintf(a, sizeof a, "%s/hqq1", dir);
    snprintf(b, sizeof b, "%s/hqq3", dir);
    snprintf(fa, sizeof fa, "%s/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/model.safetensors", b);
    cq_convert_opts o = opts_for("int4", NULL);
    o.optimizer = CQ_OPT_HQQ;
    o.threads = 1;
    cq_err err = {0};
    CHECK(cq_convert_quantize(src, a, &o, NULL, &err) != CQ_OK && strstr(err.msg, "e.weight"));
    const char *one_row[] = {"e"};
    o.exclude = one_row, o.n_exclude = 1;
    CHECKF(cq_convert_quantize(src, a, &o, NULL, &err) == CQ_OK, "%s", err.msg);
    o.threads = 3;
    CHECKF(cq_convert_quantize(src, b, &o, NULL, &err) == CQ_OK, "%s", err.msg);
    CHECK(files_equal(fa, fb));
    cq_experimental_set_convert_item_bytes(saved);
    free(src);
    rmtree(dir);
}

/* A two-shard checkpoint with an index: the output keeps the sharding. */
static char *make_sharded(const char *dir) {
    char *in = join(dir, "in");
    cq_fs_mkdir_p(in, NULL);
    char *s1 = join(in, "model-00001-of-00002.safetensors"), *s2 = join(in, "model-00002-of-00002.safetensors");
    const spec sh1[] = {{"model.embed_tokens.weight", CQ_BF16, 2, {32, 128}}, {"model.layers.0.self_attn.q_proj.weight", CQ_BF16, 2, {128, 128}}};
    const spec sh2[] = {{"model.layers.0.mlp.down_proj.weight", CQ_BF16, 2, {64, 256}}, {"model.norm.weight", CQ_BF16, 1, {128}},
                        {"lm_head.weight", CQ_BF16, 2, {32, 128}}};
    write_specs(s1, sh1, 2, 11);
    write_specs(s2, sh2, 3, 12);
    const char *names[] = {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                           "model.layers.0.mlp.down_proj.weight",
                           "model.norm.weight", "lm_head.weight"};
    const char *files[] = {"model-00001-of-00002.safetensors", "model-00001-of-00002.safetensors",
                           "model-00002-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "model-00002-of-00002.safetensors"};
    char *idx = join(in, "model.safetensors.index.json"), *cfg = join(in, "config.json"), *tok = join(in, "tokenizer.json");
    cq_ckpt_write_index(idx, 0, 5, names, files, NULL);
    write_text(cfg, "{\"model_type\": \"llama\", \"vocab_size\": 32, \"tie_word_embeddings\": false}");
    write_text(tok, "{\"version\": \"1.0\"}");
    free(s1);
    free(s2);
    free(idx);
    free(cfg);
    free(tok);
    return in;
}

TST(convert_sharded_keeps_sharding) {
    char *dir = tmpdir(), *in = make_sharded(dir), *out = join(dir, "out");
    cq_convert_opts o = opts_for("int4", NULL);
    cq_err err = {0};
    CHECKF(cq_convert_quantize(in, out, &o, NULL, &err) == CQ_OK, "%s", err.msg);
    cq_ckpt *c = NULL;
    CHECKF(cq_ckpt_open(out, &c, &err) == CQ_OK, "%s", err.msg);
    CHECK(c && cq_ckpt_shard_count(c) == 2);
    CHECK(c && cq_ckpt_find(c, "model.layers.0.mlp.down_proj.weight._data._data") >= 0 &&
          cq_ckpt_tensor_shard(c, cq_ckpt_find(c, "model.layers.0.mlp.down_proj.weight._data._data")) == 1);
    CHECK(c && cq_ckpt_find(c, "lm_head.weight._scale") >= 0); /* untied head: quantized */
    CHECK(c && cq_ckpt_find(c, "model.embed_tokens.weight") >= 0);
    cq_ckpt_close(c);
    char *tok = join(out, "tokenizer.json"), *cfg = join(out, "config.json");
    CHECK(cq_fs_exists(tok));
    cq_hfconfig *h = NULL;
    CHECK(cq_hfconfig_load(cfg, &h, NULL) == CQ_OK && cq_hfconfig_has(h, "quantization_config"));
    cq_hfconfig_free(h);
    /* And back. */
    char *deq = join(dir, "deq.safetensors");
    CHECKF(cq_convert_dequantize(out, deq, NULL, NULL, &err) == CQ_OK, "%s", err.msg);
    cq_report *r = NULL;
    CHECKF(cq_report_build(in, out, NULL, &r, &err) == CQ_OK, "%s", err.msg);
    CHECK(cq_report_count(r) == 3);
    cq_report_free(r);
    /* An existing output is refused without overwrite, replaced with it. */
    CHECK(cq_convert_quantize(in, out, &o, NULL, &err) == CQ_E_EXISTS);
    o.overwrite = true;
    o.weights = CQ_QINT8;
    CHECKF(cq_convert_quantize(in, out, &o, NULL, &err) == CQ_OK, "%s", err.msg);
    CHECK(cq_convert_quantize(in, in, &o, NULL, &err) == CQ_E_ARG); /* never over the input */
    CHECK(cq_convert_quantize(in, dir, &o, NULL, &err) == CQ_E_ARG); /* nor over a folder holding it */
    char *other = join(dir, "other"), *keep = join(dir, "other/keep.txt");
    cq_fs_mkdir_p(other, NULL);
    write_text(keep, "precious");
    CHECK(cq_convert_quantize(in, other, &o, NULL, &err) == CQ_E_EXISTS && strstr(err.msg, "quanto_qmap.json"));
    CHECK(cq_fs_exists(keep)); /* --force replaces only earlier outputs and empty folders */
    free(other);
    free(keep);
    free(tok);
    free(cfg);
    free(deq);
    free(in);
    free(out);
    rmtree(dir);
}

static int count_entries(const char *d) {
    int n = 0;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", d);
    FILE *p = popen(cmd, "r");
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

TST(convert_malformed_inputs_leave_nothing) {
    char *dir = tmpdir(), *in = make_sharded(dir), *out = join(dir, "out");
    cq_convert_opts o = opts_for("int4", NULL);
    cq_err err = {0};
    /* A missing shard. */
    char *s2 = join(in, "model-00002-of-00002.safetensors"), *moved = join(dir, "moved.safetensors");
    rename(s2, moved);
    CHECK(cq_convert_quantize(in, out, &o, NULL, &err) != CQ_OK && strstr(err.msg, "model-00002-of-00002"));
    CHECK(!cq_fs_exists(out));
    /* A corrupt (truncated) shard. */
    size_t n;
    unsigned char *bytes = slurp(moved, &n);
    cq_fs_write_file_atomic(s2, bytes, n / 2, NULL);
    free(bytes);
    CHECK(cq_convert_quantize(in, out, &o, NULL, &err) == CQ_E_FORMAT);
    CHECK(!cq_fs_exists(out));
    /* An index naming a file that is not there. */
    rename(moved, s2);
    char *idx = join(in, "model.safetensors.index.json");
    const char *names[] = {"model.embed_tokens.weight"};
    const char *files[] = {"model-00009-of-00009.safetensors"};
    cq_ckpt_write_index(idx, 0, 1, names, files, NULL);
    CHECK(cq_convert_quantize(in, out, &o, NULL, &err) != CQ_OK && strstr(err.msg, "model-00009-of-00009"));
    CHECK(!cq_fs_exists(out));
    CHECK(count_entries(dir) == 1); /* only in/: no temp folder left beside out */
    free(idx);
    free(s2);
    free(moved);
    free(in);
    free(out);
    rmtree(dir);
}

static volatile int g_cancel_after_first;
static void cancel_cb(const cq_convert_progress *p, void *user) {
    CQ_UNUSED(p);
    *(volatile int *)user = 1;
}

TST(convert_cancel_leaves_nothing) {
    char *dir = tmpdir(), *out = join(dir, "out");
    cq_convert_opts o = opts_for("int8", NULL);
    o.cancel = &g_cancel_after_first;
    o.progress = cancel_cb;
    o.progress_user = (void *)&g_cancel_after_first;
    g_cancel_after_first = 0;
    cq_err err = {0};
    CHECK(cq_convert_quantize(STORIES, out, &o, NULL, &err) != CQ_OK && strstr(err.msg, "interrupted"));
    CHECK(!cq_fs_exists(out) && count_entries(dir) == 0);
    free(out);
    rmtree(dir);
}

/* ---- bounded memory -------------------------------------------------------------------------------- */

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* The cquanto next to this test binary (build/X/tests/cq_tests -> build/X/cquanto), or $CQUANTO. */
static bool find_cli(char *buf, size_t n) {
    const char *env = getenv("CQUANTO");
    if (env && *env && access(env, X_OK) == 0) {
        snprintf(buf, n, "%s", env);
        return true;
    }
    ssize_t k = readlink("/proc/self/exe", buf, n - 16);
    if (k <= 0) return false;
    buf[k] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) return false;
    *slash = '\0';
    slash = strrchr(buf, '/');
    if (!slash) return false;
    strcpy(slash, "/cquanto");
    return access(buf, X_OK) == 0;
}

/* Runs argv; returns the exit status and the child's peak resident set in bytes. */
static int run_measured(char *const argv[], long *maxrss_bytes) {
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) return -1;
    *maxrss_bytes = ru.ru_maxrss * 1024L;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A checkpoint far bigger than the bound: 28 weights of 4 MB and a 16 MB embedding (bf16). */
TST(convert_peak_memory_is_bounded) {
#if defined(__SANITIZE_ADDRESS__)
    tst_skip("sanitizer shadow memory inflates the resident set");
    return;
#endif
    char cli[1024];
    if (!find_cli(cli, sizeof cli)) {
        tst_skip("cquanto binary not found next to the test binary (set CQUANTO)");
        return;
    }
    char *dir = tmpdir(), *src = join(dir, "m.safetensors"), *out = join(dir, "out");
    enum { N = 29 };
    spec specs[N];
    char names[N][64];
    for (int i = 0; i < N; i++) {
        if (i == 0) snprintf(names[i], sizeof names[i], "model.embed_tokens.weight");
        else snprintf(names[i], sizeof names[i], "model.layers.%d.proj.weight", i);
        specs[i] = (spec){names[i], CQ_BF16, 2, {i ? 2048 : 8192, 1024}};
    }
    CHECK(write_specs(src, specs, N, 5) == CQ_OK);
    const long largest = 8192L * 1024 * 2, bound = 2 * largest + (64L << 20);
    /* HQQ is slow: two tensors with it, the rest is copied. */
    static const char *const modes[][3] = {{"int8", "absmax", "*"}, {"int4", "max", "*"}, {"int4", "hqq", "*.[12].*"}};
    for (int m = 0; m < 3; m++) {
        char *argv[] = {cli, "quantize", src, "-o", out, "--weights", (char *)modes[m][0], "--optimizer",
                        (char *)modes[m][1], "--include", (char *)modes[m][2], "--force", "--threads", "2", NULL};
        long rss = 0;
        int rc = run_measured(argv, &rss);
        CHECKF(rc == 0, "%s %s: exit %d", modes[m][0], modes[m][1], rc);
        CHECKF(rss > 0 && rss < bound, "%s %s: peak RSS %.1f MB, bound %.1f MB (input %.1f MB)", modes[m][0],
               modes[m][1], rss / 1e6, bound / 1e6, (28.0 * 4 + 16) * 1.048576);
    }
    free(src);
    free(out);
    rmtree(dir);
}
