/*
 * hf_modules.c - module kinds: their names, the tables of the model families cquanto knows,
 * and --module-kinds files. A table row is a Python-fnmatch pattern on module names; rows for
 * the base model also match below the task head's prefix ("model.", "bert.", "transformer."),
 * so LlamaModel and LlamaForCausalLM state dicts read alike. Module names follow transformers'
 * modeling_<family>.py.
 */
#include "io/hf_modules.h"
#include "io/io_internal.h"

#define MAX_KINDS_BYTES ((size_t)64 << 20)

/* ---- names ---- */

static const struct {
    const char *name;
    int rank; /* of the weight; 0: any */
} kinds[] = {
    [CQ_LAYER_UNKNOWN] = {"unknown", 0},
    [CQ_LAYER_LINEAR] = {"linear", 2},
    [CQ_LAYER_CONV2D] = {"conv2d", 4},
    [CQ_LAYER_EMBEDDING] = {"embedding", 2},
    [CQ_LAYER_EMBEDDING_BAG] = {"embedding_bag", 2},
    [CQ_LAYER_CONV_TRANSPOSE2D] = {"conv_transpose2d", 4},
    [CQ_LAYER_GPT2_CONV1D] = {"gpt2_conv1d", 2},
    [CQ_LAYER_LAYERNORM] = {"layernorm", 1},
    [CQ_LAYER_RMSNORM] = {"rmsnorm", 1},
    [CQ_LAYER_BATCHNORM] = {"batchnorm", 1},
    [CQ_LAYER_GROUPNORM] = {"groupnorm", 1},
    [CQ_LAYER_OTHER] = {"other", 0},
};

const char *cq_layer_kind_name(cq_layer_kind k) {
    return (unsigned)k < CQ_ARRAY_LEN(kinds) ? kinds[k].name : "unknown";
}

int cq__layer_kind_weight_rank(cq_layer_kind k) { return (unsigned)k < CQ_ARRAY_LEN(kinds) ? kinds[k].rank : 0; }

cq_status cq_layer_kind_parse(const char *name, cq_layer_kind *out, cq_err *err) {
    CQ__ARG(name);
    CQ__ARG(out);
    for (size_t i = 1; i < CQ_ARRAY_LEN(kinds); i++)
        if (!strcmp(name, kinds[i].name)) {
            *out = (cq_layer_kind)i;
            return CQ_OK;
        }
    char choices[256];
    size_t used = 0;
    for (size_t i = 1; i < CQ_ARRAY_LEN(kinds) && used < sizeof choices; i++)
        used += (size_t)snprintf(choices + used, sizeof choices - used, "%s%s", i > 1 ? ", " : "", kinds[i].name);
    return cq_err_set(err, CQ_E_ARG, "unknown module kind \"%.60s\" (choose %s)", name, choices);
}

/* ---- architecture tables ---- */

typedef struct arch_row {
    const char *pattern;
    cq_layer_kind kind;
    bool root;        /* matches the whole name only (task heads), not below the base prefix */
    bool output_head; /* the projection tie_word_embeddings ties to the input embedding */
} arch_row;

struct cq__arch {
    const char *name;
    const char *model_type;   /* config.json "model_type" */
    const char *class_prefix; /* of config.json "architectures" entries */
    const char *base_prefix;  /* where the task heads keep the base model */
    const arch_row *rows;
    size_t n_rows;
};

#define L CQ_LAYER_LINEAR
static const arch_row llama_rows[] = {
    {"embed_tokens", CQ_LAYER_EMBEDDING, false, false},
    {"layers.*.self_attn.q_proj", L, false, false},
    {"layers.*.self_attn.k_proj", L, false, false},
    {"layers.*.self_attn.v_proj", L, false, false},
    {"layers.*.self_attn.o_proj", L, false, false},
    {"layers.*.mlp.gate_proj", L, false, false},
    {"layers.*.mlp.up_proj", L, false, false},
    {"layers.*.mlp.down_proj", L, false, false},
    {"layers.*.input_layernorm", CQ_LAYER_RMSNORM, false, false},
    {"layers.*.post_attention_layernorm", CQ_LAYER_RMSNORM, false, false},
    {"norm", CQ_LAYER_RMSNORM, false, false},
    {"lm_head", L, true, true},
    {"score", L, true, false}, /* LlamaForSequenceClassification */
};

static const arch_row bert_rows[] = {
    {"embeddings.word_embeddings", CQ_LAYER_EMBEDDING, false, false},
    {"embeddings.position_embeddings", CQ_LAYER_EMBEDDING, false, false},
    {"embeddings.token_type_embeddings", CQ_LAYER_EMBEDDING, false, false},
    {"embeddings.LayerNorm", CQ_LAYER_LAYERNORM, false, false},
    {"encoder.layer.*.attention.self.query", L, false, false},
    {"encoder.layer.*.attention.self.key", L, false, false},
    {"encoder.layer.*.attention.self.value", L, false, false},
    {"encoder.layer.*.attention.output.dense", L, false, false},
    {"encoder.layer.*.attention.output.LayerNorm", CQ_LAYER_LAYERNORM, false, false},
    {"encoder.layer.*.intermediate.dense", L, false, false},
    {"encoder.layer.*.output.dense", L, false, false},
    {"encoder.layer.*.output.LayerNorm", CQ_LAYER_LAYERNORM, false, false},
    {"pooler.dense", L, false, false},
    {"cls.predictions.transform.dense", L, true, false},
    {"cls.predictions.transform.LayerNorm", CQ_LAYER_LAYERNORM, true, false},
    {"cls.predictions.decoder", L, true, true},
    {"cls.seq_relationship", L, true, false},
    {"classifier", L, true, false},
    {"qa_outputs", L, true, false},
};

static const arch_row gpt2_rows[] = {
    {"wte", CQ_LAYER_EMBEDDING, false, false},
    {"wpe", CQ_LAYER_EMBEDDING, false, false},
    {"h.*.ln_1", CQ_LAYER_LAYERNORM, false, false},
    {"h.*.ln_2", CQ_LAYER_LAYERNORM, false, false},
    {"h.*.ln_cross_attn", CQ_LAYER_LAYERNORM, false, false},
    {"h.*.attn.c_attn", CQ_LAYER_GPT2_CONV1D, false, false},
    {"h.*.attn.c_proj", CQ_LAYER_GPT2_CONV1D, false, false},
    {"h.*.crossattention.c_attn", CQ_LAYER_GPT2_CONV1D, false, false},
    {"h.*.crossattention.q_attn", CQ_LAYER_GPT2_CONV1D, false, false},
    {"h.*.crossattention.c_proj", CQ_LAYER_GPT2_CONV1D, false, false},
    {"h.*.mlp.c_fc", CQ_LAYER_GPT2_CONV1D, false, false},
    {"h.*.mlp.c_proj", CQ_LAYER_GPT2_CONV1D, false, false},
    {"ln_f", CQ_LAYER_LAYERNORM, false, false},
    {"lm_head", L, true, true},
    {"score", L, true, false}, /* GPT2ForSequenceClassification */
    {"multiple_choice_head.summary", L, true, false}, /* GPT2DoubleHeadsModel */
};
#undef L

static const cq__arch archs[] = {
    {"llama", "llama", "Llama", "model.", llama_rows, CQ_ARRAY_LEN(llama_rows)},
    /* Mistral and Qwen2 keep Llama's module tree (modeling_mistral.py, modeling_qwen2.py); Qwen2's
     * q/k/v biases change nothing here. Their MoE siblings have model types of their own. */
    {"mistral", "mistral", "Mistral", "model.", llama_rows, CQ_ARRAY_LEN(llama_rows)},
    {"qwen2", "qwen2", "Qwen2", "model.", llama_rows, CQ_ARRAY_LEN(llama_rows)},
    {"bert", "bert", "Bert", "bert.", bert_rows, CQ_ARRAY_LEN(bert_rows)},
    {"gpt2", "gpt2", "GPT2", "transformer.", gpt2_rows, CQ_ARRAY_LEN(gpt2_rows)},
};

const cq__arch *cq__arch_for_config(const cq_hfconfig *c) {
    if (!c) return NULL;
    const char *mt = cq_hfconfig_model_type(c);
    for (size_t i = 0; mt && i < CQ_ARRAY_LEN(archs); i++)
        if (!strcmp(mt, archs[i].model_type)) return &archs[i];
    if (mt) return NULL; /* a model_type of another family: its class names do not overrule it */
    const char *cls;
    for (size_t k = 0; (cls = cq__hfconfig_str_at(c, "architectures", k)); k++)
        for (size_t i = 0; i < CQ_ARRAY_LEN(archs); i++)
            if (!strncmp(cls, archs[i].class_prefix, strlen(archs[i].class_prefix))) return &archs[i];
    return NULL;
}

const char *cq__arch_name(const cq__arch *a) { return a ? a->name : NULL; }

cq_layer_kind cq__arch_kind(const cq__arch *a, const char *module, bool *output_head) {
    if (output_head) *output_head = false;
    if (!a || !module) return CQ_LAYER_UNKNOWN;
    size_t plen = strlen(a->base_prefix);
    const char *base = !strncmp(module, a->base_prefix, plen) ? module + plen : NULL;
    for (size_t i = 0; i < a->n_rows; i++) {
        const arch_row *r = &a->rows[i];
        if (cq__fnmatchcase(r->pattern, module) || (!r->root && base && cq__fnmatchcase(r->pattern, base))) {
            if (output_head) *output_head = r->output_head;
            return r->kind;
        }
    }
    return CQ_LAYER_UNKNOWN;
}

/* ---- --module-kinds files ---- */

void cq__module_kinds_free(cq__module_kinds *k) {
    if (!k) return;
    for (int64_t i = 0; i < k->n; i++) free(k->module[i]);
    free(k->module);
    free(k->kind);
    free(k->label);
    cq__strmap_free(&k->index);
    memset(k, 0, sizeof *k);
}

cq_layer_kind cq__module_kinds_get(const cq__module_kinds *k, const char *module) {
    int64_t i = k && module ? cq__strmap_get(&k->index, module) : -1;
    return i >= 0 ? k->kind[i] : CQ_LAYER_UNKNOWN;
}

static cq_status fill(cq__module_kinds *k, json_t *root, cq_err *err) {
    size_t n = json_object_size(root);
    k->module = cq__calloc(n ? n : 1, sizeof *k->module, err, "a module kinds table");
    k->kind = cq__calloc(n ? n : 1, sizeof *k->kind, err, "a module kinds table");
    if (!k->module || !k->kind) return CQ_E_NOMEM;
    CQ__TRY(cq__strmap_reserve(&k->index, n, err));
    const char *module;
    json_t *v;
    json_object_foreach(root, module, v) {
        if (!json_is_string(v))
            return cq_err_set(err, CQ_E_FORMAT, "%s: module '%.100s': the kind is not a string (give a name such as "
                              "\"linear\")", k->label, module);
        cq_err why = {0};
        if (cq_layer_kind_parse(json_string_value(v), &k->kind[k->n], &why))
            return cq_err_set(err, CQ_E_FORMAT, "%s: module '%.100s': %s", k->label, module, why.msg);
        if (!(k->module[k->n] = cq__strdup(module, err))) return CQ_E_NOMEM;
        k->n++; /* owned from here, freed on failure too */
        /* Keys are unique: the parser refuses duplicates. */
        CQ__TRY(cq__strmap_put(&k->index, k->module[k->n - 1], k->n - 1, NULL, err));
    }
    return CQ_OK;
}

cq_status cq__module_kinds_parse(const char *text, size_t n, const char *label, cq__module_kinds *out, cq_err *err) {
    CQ__ARG(out);
    memset(out, 0, sizeof *out);
    if (!label) label = "<module kinds>";
    if (!text && n) return cq_err_set(err, CQ_E_ARG, "cq__module_kinds_parse: text is NULL");
    json_t *root;
    cq_status s = cq__json_parse_object(text ? text : "", n, label, &root, err);
    if (!s) {
        out->label = cq__strdup(label, err);
        s = out->label ? fill(out, root, err) : CQ_E_NOMEM;
        json_decref(root);
    }
    if (s) {
        cq__err_one_line(err);
        cq__module_kinds_free(out);
    }
    return s;
}

cq_status cq__module_kinds_load(const char *path, cq__module_kinds *out, cq_err *err) {
    CQ__ARG(out);
    memset(out, 0, sizeof *out);
    CQ__ARG(path);
    char *text;
    size_t n;
    CQ__TRY(cq_fs_read_file(path, MAX_KINDS_BYTES, &text, &n, err));
    cq_status s = cq__module_kinds_parse(text, n, path, out, err);
    free(text);
    return s;
}
