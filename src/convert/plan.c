/*
 * plan.c - decides what `cquanto quantize` does to each tensor of a checkpoint: which modules
 * are quantized (and with which group size), which are skipped and why, and the exact names,
 * dtypes and shapes of the tensors that replace each quantized weight (optimum-quanto's frozen
 * state dict, QUANTO-FORMAT.md 8.1). Reads only headers and config.json; touches no tensor data.
 * Not here: the quantization math (src/quant) and the streaming itself (quantize_stream.c).
 */
#include "convert_internal.h"

#include <inttypes.h>

/* ---- module classification ------------------------------------------------------------------ */

static const char *last_component(const char *module) {
    const char *dot = strrchr(module, '.');
    return dot ? dot + 1 : module;
}

static bool contains_ci(const char *s, const char *needle) {
    size_t n = strlen(needle);
    for (; *s; s++)
        if (!strncasecmp(s, needle, n)) return true;
    return false;
}

/* Output projections onto the vocabulary (transformers' get_output_embeddings()). */
static bool is_output_head(const char *module) {
    static const char *const heads[] = {"lm_head", "embed_out", "output", "decoder"};
    const char *last = last_component(module);
    for (size_t i = 0; i < CQ_ARRAY_LEN(heads); i++)
        if (!strcmp(last, heads[i])) return strcmp(heads[i], "decoder") || cq__str_has_suffix(module, "predictions.decoder");
    return false;
}

/* Embedding tables by name: Llama/OPT embed_tokens and embed_positions, BERT word/position/
 * token_type_embeddings, GPT-2 wte/wpe, GPT-NeoX embed_in, T5 shared and relative_attention_bias;
 * generally any last component mentioning "embed". Only rank-2 tensors are tables (ViT's patch
 * embedding is a Conv2d and stays a candidate). */
static bool is_embedding_name(const char *module) {
    static const char *const exact[] = {"wte", "wpe", "shared", "relative_attention_bias", "tok_embeddings"};
    const char *last = last_component(module);
    for (size_t i = 0; i < CQ_ARRAY_LEN(exact); i++)
        if (!strcmp(last, exact[i])) return true;
    return contains_ci(last, "embed");
}

/* GPT-2's transformers.pytorch_utils.Conv1D layers: not nn.Linear, so quanto leaves them. */
static bool is_conv1d_name(const char *module) {
    static const char *const names[] = {"c_attn", "c_proj", "c_fc", "q_attn"};
    const char *last = last_component(module);
    for (size_t i = 0; i < CQ_ARRAY_LEN(names); i++)
        if (!strcmp(last, names[i])) return true;
    return false;
}

/* nn.LayerNorm by its state: 1-D weight and bias of one size, and a name saying so. */
static bool looks_like_layernorm(const char *module) {
    const char *last = last_component(module);
    return contains_ci(last, "norm") || !strncmp(last, "ln", 2);
}

const char *cq_plan_action_name(cq_plan_action a) {
    switch (a) {
    case CQ_PLAN_QUANTIZE: return "quantize";
    case CQ_PLAN_ACTIVATIONS_ONLY: return "activations";
    case CQ_PLAN_SKIP_EMBEDDING: return "skip: embedding";
    case CQ_PLAN_SKIP_TIED_HEAD: return "skip: tied to the embedding";
    case CQ_PLAN_SKIP_CONV1D: return "skip: GPT-2 Conv1D";
    case CQ_PLAN_SKIP_EXCLUDED: return "skip: --exclude";
    case CQ_PLAN_SKIP_NOT_INCLUDED: return "skip: not --include'd";
    case CQ_PLAN_SKIP_KIND: return "skip: not a module quanto converts";
    case CQ_PLAN_SKIP_UNDECIDED: return "skip: kind unknown";
    }
    return "?";
}

/* ---- output tensors of a module --------------------------------------------------------------- */

void cq__plan_code_layout(const cq_plan_entry *e, int64_t *rows, int64_t *row_len) {
    int64_t numel = cq_shape_numel(e->ndim, e->shape);
    if (e->group_size > 0) {
        *rows = numel / e->group_size;
        *row_len = e->group_size;
    } else {
        *rows = e->shape[0];
        *row_len = e->shape[0] ? numel / e->shape[0] : 0;
    }
}

static void set_spec(cq__out_spec *s, const char *suffix, cq_dtype dt, int ndim, const int64_t *shape) {
    snprintf(s->suffix, sizeof s->suffix, "%s", suffix);
    s->dtype = dt;
    s->ndim = ndim;
    for (int i = 0; i < ndim; i++) s->shape[i] = shape[i];
    s->nbytes = (uint64_t)cq_shape_numel(ndim, shape) * cq_dtype_size(dt);
}

int cq__plan_out_specs(const cq_plan *p, const cq_plan_entry *e, cq__out_spec out[CQ__MAX_OUT_SPECS]) {
    int n = 0;
    if (e->action == CQ_PLAN_QUANTIZE) {
        const cq_qtype_info *qi = cq_qtype_get(e->weights);
        int64_t shape[CQ_MAX_DIMS];
        char key[24];
        snprintf(key, sizeof key, "weight.%s", qi->data_key);
        if (!qi->packed) {
            set_spec(&out[n++], key, qi->storage, e->ndim, e->shape);
            /* AbsmaxOptimizer along axis 0: keepdim (O,1[,1,1]); per tensor (0-dim) when O == 1. */
            for (int i = 0; i < e->ndim; i++) shape[i] = i ? 1 : e->shape[0];
            set_spec(&out[n++], "weight._scale", e->dtype, e->shape[0] == 1 ? 0 : e->ndim, shape);
        } else {
            /* Codes in the grouped shape (G, gs), or the weight's shape, packed along dim 0. */
            int ndim = e->group_size > 0 ? 2 : e->ndim;
            int64_t logical[CQ_MAX_DIMS];
            if (e->group_size > 0) {
                cq__plan_code_layout(e, &logical[0], &logical[1]);
            } else {
                for (int i = 0; i < ndim; i++) logical[i] = e->shape[i];
            }
            for (int i = 0; i < ndim; i++) shape[i] = i ? logical[i] : cq_packed_rows(logical[0], qi->bits);
            set_spec(&out[n++], key, qi->storage, ndim, shape);
            /* MaxOptimizer keepdim along axis 0; with a single row quanto falls back to reducing
             * over every dim but the last (QUANTO-FORMAT.md 9.5). */
            for (int i = 0; i < ndim; i++)
                shape[i] = logical[0] == 1 ? (i == ndim - 1 ? logical[i] : 1) : (i ? 1 : logical[0]);
            set_spec(&out[n++], "weight._scale", e->dtype, ndim, shape);
            /* quanto's HQQ means over the last dim only: an ungrouped N-D weight's shift is
             * (O,I,kh,1) once a step is kept (else still the Max shift). */
            if (p->opts.optimizer == CQ_OPT_HQQ && e->group_size == 0 && ndim > 2 &&
                !(p->shift_kept && p->shift_kept[e - p->entries]))
                for (int i = 0; i < ndim; i++) shape[i] = i == ndim - 1 ? 1 : e->shape[i];
            set_spec(&out[n++], "weight._shift", e->dtype, ndim, shape);
        }
    }
    if (e->action == CQ_PLAN_QUANTIZE || e->action == CQ_PLAN_ACTIVATIONS_ONLY) {
        set_spec(&out[n++], "input_scale", e->dtype, 0, NULL);
        set_spec(&out[n++], "output_scale", e->dtype, 0, NULL);
    }
    return n;
}

/* ---- building ---------------------------------------------------------------------------------- */

cq_convert_opts cq_convert_default_opts(void) {
    cq_convert_opts o;
    memset(&o, 0, sizeof o);
    o.weights = CQ_QINT8;
    o.activations = CQ_QNONE;
    o.optimizer = CQ_OPT_DEFAULT;
    o.group_size = -1;
    return o;
}

void cq_plan_free(cq_plan *p) {
    if (!p) return;
    for (int64_t i = 0; i < p->n_entries; i++) free(p->entry_prefix[i]);
    free(p->entry_prefix);
    free(p->shift_kept);
    free(p->entries);
    free(p->tensors);
    cq_hfconfig_free(p->config);
    cq__module_kinds_free(&p->kinds);
    cq_ckpt_close(p->ckpt);
    free(p);
}

int64_t cq_plan_count(const cq_plan *p) { return p ? p->n_entries : 0; }

const cq_plan_entry *cq_plan_entry_at(const cq_plan *p, int64_t i) {
    return p && i >= 0 && i < p->n_entries ? &p->entries[i] : NULL;
}

void cq_plan_totals(const cq_plan *p, uint64_t *bytes_before, uint64_t *bytes_after, int64_t *n_quantized) {
    if (bytes_before) *bytes_before = p ? p->bytes_before : 0;
    if (bytes_after) *bytes_after = p ? p->bytes_after : 0;
    if (n_quantized) *n_quantized = p ? p->n_quantized : 0;
}

static cq_status check_opts(const cq_convert_opts *o, cq_err *err) {
    char choices[128];
    if (!cq_qtype_takes(o->weights, CQ_QROLE_WEIGHTS, true))
        return cq_err_set(err, CQ_E_ARG, "weights %s: choose %s", cq_qtype_name(o->weights),
                          cq_qtype_choices(CQ_QROLE_WEIGHTS, true, false, ", ", " or ", choices, sizeof choices));
    if (o->activations != CQ_QNONE && !cq_qtype_takes(o->activations, CQ_QROLE_ACTIVATIONS, true))
        return cq_err_set(err, CQ_E_ARG, "activations %s: choose %s", cq_qtype_name(o->activations),
                          cq_qtype_choices(CQ_QROLE_ACTIVATIONS, true, true, ", ", " or ", choices, sizeof choices));
    bool qbits = cq_qtype_family_of(o->weights) == CQ_QFAMILY_AFFINE;
    if (o->optimizer >= CQ_OPT_DEFAULT && o->optimizer <= CQ_OPT_HQQ &&
        !cq_qtype_optimizer_applies(o->weights, o->optimizer)) {
        if (o->optimizer == CQ_OPT_ABSMAX)
            return cq_err_set(err, CQ_E_ARG, "optimizer absmax is symmetric: it suits 8-bit weights, not %s (use max "
                              "or hqq)", cq_qtype_name(o->weights));
        return cq_err_set(err, CQ_E_ARG, "optimizer %s is affine: it suits int2/int4 weights, not %s (use absmax)",
                          o->optimizer == CQ_OPT_MAX ? "max" : "hqq", cq_qtype_name(o->weights));
    }
    if (o->group_size == 0 || o->group_size < -1)
        return cq_err_set(err, CQ_E_ARG, "group size %" PRId64 ": give a positive size or auto", o->group_size);
    if (o->group_size > 0 && !qbits)
        return cq_err_set(err, CQ_E_ARG, "a group size applies to int2/int4 weights only (%s is per channel)",
                          cq_qtype_name(o->weights));
    if (o->n_include < 0 || o->n_exclude < 0 || (o->n_include && !o->include) || (o->n_exclude && !o->exclude))
        return cq_err_set(err, CQ_E_ARG, "include/exclude: %d and %d patterns given, but a list is NULL or a count "
                          "negative", o->n_include, o->n_exclude);
    for (int i = 0; i < o->n_include; i++)
        if (!o->include[i] || !o->include[i][0])
            return cq_err_set(err, CQ_E_ARG, "an --include pattern is empty (it would match no module)");
    for (int i = 0; i < o->n_exclude; i++)
        if (!o->exclude[i] || !o->exclude[i][0])
            return cq_err_set(err, CQ_E_ARG, "an --exclude pattern is empty");
    return CQ_OK;
}

static bool matches_any(const char *const *pats, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (cq__fnmatchcase(pats[i], name)) return true;
    return false;
}

static bool is_quanto_state_name(const char *name) {
    return cq__str_has_suffix(name, ".weight._data") || cq__str_has_suffix(name, ".weight._data._data") ||
           cq__str_has_suffix(name, ".weight._scale") || cq__str_has_suffix(name, ".weight._shift") || !strcmp(name, "weight._data") ||
           !strcmp(name, "weight._data._data");
}

/* ---- deciding a module's kind ------------------------------------------------------------------ */

static const char BY_FILE[] = "kinds-file", BY_STRUCTURE[] = "structure", BY_GUESS[] = "name/rank guess",
                  BY_NONE[] = "undecided";

/* The tensor "<prefix><leaf>" of the module whose weight is weight_name, or NULL. */
static const cq_tensor *sibling(const cq_plan *p, const char *weight_name, const char *leaf) {
    int64_t i = cq__ckpt_find_member(p->ckpt, weight_name, strlen(weight_name) - strlen("weight"), leaf);
    return i >= 0 ? cq_ckpt_tensor(p->ckpt, i) : NULL;
}

/* Today's rule for checkpoints that come with nothing else: names and ranks. */
static cq_layer_kind guess_kind(const char *module, const cq_tensor *t, const cq_tensor *bias, bool *head) {
    if (t->ndim == 4) return CQ_LAYER_CONV2D;
    if (t->ndim == 2) {
        if ((*head = is_output_head(module))) return CQ_LAYER_LINEAR;
        if (is_embedding_name(module)) return CQ_LAYER_EMBEDDING;
        if (is_conv1d_name(module)) return CQ_LAYER_GPT2_CONV1D;
        return CQ_LAYER_LINEAR;
    }
    /* nn.LayerNorm by its state: 1-D weight and bias of one size, and a name saying so. */
    if (t->ndim == 1 && bias && bias->ndim == 1 && bias->shape[0] == t->shape[0] && looks_like_layernorm(module))
        return CQ_LAYER_LAYERNORM;
    return CQ_LAYER_UNKNOWN;
}

/* The kind of the module owning weight_name, and what decided it (*by), in the order
 * cquanto/convert.h gives. *head: the module is an output head that tie_word_embeddings ties. */
static cq_status decide_kind(const cq_plan *p, const char *module, const char *weight_name, const cq_tensor *t,
                             cq_layer_kind *kind, bool *head, const char **by, cq_err *err) {
    *head = false;
    cq_layer_kind k = p->have_kinds ? cq__module_kinds_get(&p->kinds, module) : CQ_LAYER_UNKNOWN;
    if (k != CQ_LAYER_UNKNOWN) {
        int rank = cq__layer_kind_weight_rank(k);
        if (rank && rank != t->ndim) {
            char shape[64];
            return cq_err_set(err, CQ_E_FORMAT,
                              "%s: module '%.100s': kind %s wants a rank-%d weight, but %.100s has shape %s",
                              p->kinds.label, module, cq_layer_kind_name(k), rank, weight_name,
                              cq_shape_str(t->ndim, t->shape, shape, sizeof shape));
        }
        *kind = k;
        *by = BY_FILE;
        return CQ_OK;
    }
    static const char *const running[] = {"running_mean", "running_var", "num_batches_tracked"};
    for (size_t i = 0; i < CQ_ARRAY_LEN(running); i++) {
        if (sibling(p, weight_name, running[i])) {
            *kind = CQ_LAYER_BATCHNORM;
            *by = BY_STRUCTURE;
            return CQ_OK;
        }
    }
    const cq_tensor *bias = sibling(p, weight_name, "bias");
    if (p->arch) {
        k = cq__arch_kind(p->arch, module, head);
        *by = p->config_label;
    } else if (!p->have_kinds && !p->config) {
        k = guess_kind(module, t, bias, head);
        *by = BY_GUESS;
    }
    if (k == CQ_LAYER_UNKNOWN) *by = BY_NONE;
    /* Structure overrules a table or a guess that the tensors contradict. */
    int rank = cq__layer_kind_weight_rank(k);
    bool bias_out = bias && bias->ndim == 1 && bias->shape[0] == t->shape[0];
    if ((rank && rank != t->ndim) || ((k == CQ_LAYER_LINEAR || k == CQ_LAYER_CONV2D) && bias && !bias_out)) {
        k = CQ_LAYER_UNKNOWN; /* a GPT-2 Conv1D (bias of dim 1) or a ConvTranspose2d: no Linear/Conv2d */
        *by = BY_STRUCTURE;
    } else if (k == CQ_LAYER_EMBEDDING && bias) {
        /* Embeddings have no bias; an "embed" name with one is a Linear (pos_embed_proj). */
        k = *by == BY_GUESS && bias_out ? CQ_LAYER_LINEAR : CQ_LAYER_UNKNOWN;
        *by = BY_STRUCTURE;
    }
    *kind = k;
    return CQ_OK;
}

/* Kinds-file modules that must have a weight here: a Linear or Conv2d the file names but the
 * checkpoint lacks is a file for another model (or a typo), and a LayerNorm without a weight
 * (elementwise_affine=False) would need QLayerNorm state cquanto cannot write. */
static cq_status check_kinds_file(const cq_plan *p, cq_err *err) {
    for (int64_t i = 0; i < p->kinds.n; i++) {
        cq_layer_kind k = p->kinds.kind[i];
        if (k != CQ_LAYER_LINEAR && k != CQ_LAYER_CONV2D && !(k == CQ_LAYER_LAYERNORM && p->opts.activations))
            continue;
        const char *m = p->kinds.module[i];
        size_t n = strlen(m);
        if (cq__ckpt_find_member(p->ckpt, m, n, n ? ".weight" : "weight") < 0)
            return cq_err_set(err, CQ_E_FORMAT, "%s: module '%.100s': a %s, but %s has no '%.100s%sweight'",
                              p->kinds.label, m, cq_layer_kind_name(k), cq_ckpt_dir(p->ckpt), m, n ? "." : "");
    }
    return CQ_OK;
}

/* What the plan does with a candidate of kind k (rank 2 or 4). */
static cq_plan_action kind_action(cq_layer_kind k, bool head, bool tied) {
    switch (k) {
    case CQ_LAYER_LINEAR:
    case CQ_LAYER_CONV2D: return head && tied ? CQ_PLAN_SKIP_TIED_HEAD : CQ_PLAN_QUANTIZE;
    case CQ_LAYER_EMBEDDING: return CQ_PLAN_SKIP_EMBEDDING;
    case CQ_LAYER_GPT2_CONV1D: return CQ_PLAN_SKIP_CONV1D;
    case CQ_LAYER_UNKNOWN: return CQ_PLAN_SKIP_UNDECIDED;
    default: return CQ_PLAN_SKIP_KIND;
    }
}

/* Norms whose state (a weight and a bias) is a LayerNorm's: shown skipped, so the plan says why
 * they get no activation scales. An RMSNorm, bias-less, is no row, as before kinds were known. */
static bool looks_like_layernorm_state(cq_layer_kind k) { return k == CQ_LAYER_BATCHNORM || k == CQ_LAYER_GROUPNORM; }

static cq_status plan_entry_sizes(cq_plan *p, cq_plan_entry *e, const char *tensor_name, cq_err *err) {
    const cq_convert_opts *o = &p->opts;
    if (e->action == CQ_PLAN_QUANTIZE) {
        if (e->dtype != CQ_F32 && e->dtype != CQ_F16 && e->dtype != CQ_BF16)
            return cq_err_set(err, CQ_E_DTYPE,
                              "%s: dtype %s cannot be quantized (F32, F16 or BF16 only); leave the module out "
                              "with --exclude '%s'",
                              tensor_name, cq_dtype_name(e->dtype), e->module);
        if (e->shape[0] == 0 || cq_shape_numel(e->ndim, e->shape) == 0)
            return cq_err_set(err, CQ_E_SHAPE, "%s: an empty weight cannot be quantized; use --exclude '%s'",
                              tensor_name, e->module);
        e->weights = o->weights;
        e->activations = o->activations;
        if (cq_qtype_family_of(o->weights) == CQ_QFAMILY_AFFINE) {
            int64_t in_features = cq_shape_numel(e->ndim, e->shape) / e->shape[0];
            if (o->group_size > 0) {
                if (in_features % o->group_size)
                    return cq_err_set(err, CQ_E_ARG,
                                      "group size %" PRId64 " does not divide the %" PRId64
                                      " input features of %s (leave it out with --exclude '%s' or use auto)",
                                      o->group_size, in_features, e->module, e->module);
                e->group_size = o->group_size;
            } else {
                e->group_size = cq_default_group_size(e->ndim, e->shape);
            }
        }
        p->n_quantized++;
    } else if (e->action == CQ_PLAN_ACTIVATIONS_ONLY) {
        e->activations = o->activations;
    }
    e->bytes_after = 0;
    cq__out_spec specs[CQ__MAX_OUT_SPECS];
    int n = cq__plan_out_specs(p, e, specs);
    for (int i = 0; i < n; i++) e->bytes_after += specs[i].nbytes;
    if (e->action == CQ_PLAN_ACTIVATIONS_ONLY || n == 0) e->bytes_after += e->bytes_before; /* weight kept */
    return CQ_OK;
}

static cq_status add_entry(cq_plan *p, int64_t *cap, const char *tensor_name, const cq_tensor *t, cq_plan_action a,
                           cq_layer_kind kind, const char *decided_by, cq_err *err) {
    if (p->n_entries == *cap) {
        int64_t nc = *cap ? 2 * *cap : 64;
        cq_plan_entry *e = realloc(p->entries, (size_t)nc * sizeof *e);
        if (!e) return cq_err_set(err, CQ_E_NOMEM, "out of memory planning");
        p->entries = e;
        char **pre = realloc(p->entry_prefix, (size_t)nc * sizeof *pre);
        if (!pre) return cq_err_set(err, CQ_E_NOMEM, "out of memory planning");
        p->entry_prefix = pre;
        *cap = nc;
    }
    size_t len = strlen(tensor_name) - strlen("weight"); /* keeps the "." */
    char *prefix = cq__malloc(len + 1 + len + 1, err, "a module name");
    if (!prefix) return CQ_E_NOMEM;
    memcpy(prefix, tensor_name, len);
    prefix[len] = '\0';
    /* The module name follows the prefix in the same allocation, without the trailing dot. */
    char *module = prefix + len + 1;
    memcpy(module, tensor_name, len ? len - 1 : 0);
    module[len ? len - 1 : 0] = '\0';
    cq_plan_entry *e = &p->entries[p->n_entries];
    memset(e, 0, sizeof *e);
    e->module = module;
    e->dtype = t->dtype;
    e->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) e->shape[i] = t->shape[i];
    e->action = a;
    e->kind = kind;
    e->decided_by = decided_by;
    e->bytes_before = cq_tensor_nbytes(t);
    p->entry_prefix[p->n_entries] = prefix;
    p->n_entries++;
    return plan_entry_sizes(p, e, tensor_name, err);
}

static cq_status build(cq_plan *p, cq_err *err) {
    const cq_convert_opts *o = &p->opts;
    bool tied = false;
    if (p->config) {
        tied = cq_hfconfig_tie_word_embeddings(p->config);
        if (cq_hfconfig_has(p->config, "quantization_config")) {
            return cq_err_set(err, CQ_E_FORMAT,
                              "%s: config.json already has a quantization_config: the checkpoint is quantized "
                              "(dequantize it first)",
                              cq_ckpt_dir(p->ckpt));
        }
        if ((p->arch = cq__arch_for_config(p->config)))
            snprintf(p->config_label, sizeof p->config_label, "config:%s", cq__arch_name(p->arch));
    }
    int64_t n = cq_ckpt_count(p->ckpt);
    p->tensors = cq__calloc((size_t)(n ? n : 1), sizeof *p->tensors, err, "the plan");
    if (!p->tensors) return CQ_E_NOMEM;
    p->n_tensors = n;
    int64_t cap = 0, n_undecided = 0;
    bool any_candidate = false;
    for (int64_t i = 0; i < n; i++) {
        const char *name = cq_ckpt_name(p->ckpt, i);
        const cq_tensor *t = cq_ckpt_tensor(p->ckpt, i);
        cq__plan_tensor *pt = &p->tensors[i];
        pt->name = name;
        pt->t = t;
        pt->shard = cq_ckpt_tensor_shard(p->ckpt, i);
        pt->entry = -1;
        p->bytes_before += cq_tensor_nbytes(t);
        if (is_quanto_state_name(name))
            return cq_err_set(err, CQ_E_FORMAT,
                              "%s: tensor '%s' is optimum-quanto state: the checkpoint is already quantized "
                              "(dequantize it first)",
                              cq_ckpt_dir(p->ckpt), name);
        bool is_weight = !strcmp(name, "weight") || cq__str_has_suffix(name, ".weight");
        if (!is_weight) continue;
        /* The module: the name without ".weight" ("" for a root module's "weight"). */
        size_t mlen = strlen(name) - (strlen(name) > 6 ? 7 : 6);
        char *module = cq__malloc(mlen + 1, err, "a module name");
        if (!module) return CQ_E_NOMEM;
        memcpy(module, name, mlen);
        module[mlen] = '\0';
        cq_layer_kind kind = CQ_LAYER_UNKNOWN;
        bool head = false, keep = false;
        const char *by = BY_NONE;
        /* Rank-1 weights matter only for activations; a kinds file is checked whatever the rank. */
        bool candidate = t->ndim == 2 || t->ndim == 4, norm_row = t->ndim == 1 && o->activations != CQ_QNONE;
        cq_status s = CQ_OK;
        if (candidate || norm_row || (p->have_kinds && cq__module_kinds_get(&p->kinds, module)))
            s = decide_kind(p, module, name, t, &kind, &head, &by, err);
        cq_plan_action a = CQ_PLAN_QUANTIZE;
        if (!s && candidate) {
            any_candidate = keep = true;
            a = kind_action(kind, head, tied);
            if (a == CQ_PLAN_QUANTIZE) {
                if (o->n_include && !matches_any(o->include, o->n_include, module)) a = CQ_PLAN_SKIP_NOT_INCLUDED;
                else if (matches_any(o->exclude, o->n_exclude, module)) a = CQ_PLAN_SKIP_EXCLUDED;
            }
            n_undecided += a == CQ_PLAN_SKIP_UNDECIDED;
        } else if (!s && norm_row && kind == CQ_LAYER_LAYERNORM) {
            /* Shown only when given QLayerNorm state, as before kinds were known. */
            keep = cq_dtype_is_float(t->dtype) && (!o->n_include || matches_any(o->include, o->n_include, module)) &&
                   !matches_any(o->exclude, o->n_exclude, module);
            a = CQ_PLAN_ACTIVATIONS_ONLY;
        } else if (!s && norm_row && looks_like_layernorm_state(kind)) {
            keep = true;
            a = CQ_PLAN_SKIP_KIND;
        }
        free(module);
        if (s) return s;
        if (!keep) continue;
        s = add_entry(p, &cap, name, t, a, kind, by, err);
        if (s) return s;
        if (a == CQ_PLAN_QUANTIZE || a == CQ_PLAN_ACTIVATIONS_ONLY) pt->entry = p->n_entries - 1;
    }
    if (p->have_kinds) CQ__TRY(check_kinds_file(p, err));
    /* Totals: a quantized weight is replaced by its outputs; activation-only modules add two. */
    p->bytes_after = p->bytes_before;
    for (int64_t i = 0; i < p->n_entries; i++) {
        const cq_plan_entry *e = &p->entries[i];
        if (e->action == CQ_PLAN_QUANTIZE || e->action == CQ_PLAN_ACTIVATIONS_ONLY)
            p->bytes_after = p->bytes_after - e->bytes_before + e->bytes_after;
    }
    if (p->n_quantized == 0) {
        if (!any_candidate)
            return cq_err_set(err, CQ_E_ARG, "%s: no module to quantize (no rank-2 or rank-4 '.weight' tensor)",
                              cq_ckpt_dir(p->ckpt));
        if (o->n_include)
            return cq_err_set(err, CQ_E_ARG,
                              "the --include patterns match no quantizable module (see the plan with --dry-run)");
        if (n_undecided) {
            const char *mt = cq_hfconfig_model_type(p->config);
            char why[160];
            if (p->arch) snprintf(why, sizeof why, "not in cquanto's %s table", cq__arch_name(p->arch));
            else if (mt) snprintf(why, sizeof why, "config.json's model_type '%.60s' has no cquanto table", mt);
            else if (p->config) snprintf(why, sizeof why, "config.json names no family cquanto has a table for");
            else snprintf(why, sizeof why, "not named in %.100s", p->kinds.label);
            return cq_err_set(err, CQ_E_ARG,
                              "nothing left to quantize: the kinds of %" PRId64 " candidate modules are unknown "
                              "(%s); give them in a --module-kinds file (see the plan with --dry-run)",
                              n_undecided, why);
        }
        return cq_err_set(err, CQ_E_ARG,
                          "nothing left to quantize: every candidate is an embedding, a tied head, a Conv1D, "
                          "another kind quanto leaves in float, or excluded (see the plan with --dry-run)");
    }
    return CQ_OK;
}

cq_status cq_plan_build(const char *in, const cq_convert_opts *opts, cq_plan **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_plan_build: out is NULL");
    *out = NULL;
    if (!in || !opts) return cq_err_set(err, CQ_E_ARG, "cq_plan_build: NULL input path or options");
    cq_status s = check_opts(opts, err);
    if (s) return s;
    cq_plan *p = cq__calloc(1, sizeof *p, err, "the plan");
    if (!p) return CQ_E_NOMEM;
    p->opts = *opts;
    s = cq_ckpt_open(in, &p->ckpt, err);
    if (!s) {
        char *cfg = NULL;
        s = cq_ckpt_folder_file(p->ckpt, "config.json", &cfg, err);
        if (!s && cfg) s = cq_hfconfig_load(cfg, &p->config, err);
        free(cfg);
    }
    if (!s && opts->module_kinds) {
        s = cq__module_kinds_load(opts->module_kinds, &p->kinds, err);
        p->have_kinds = !s;
    }
    if (!s) s = build(p, err);
    /* The option arrays belong to the caller; the plan keeps only what it copied. */
    p->opts.include = p->opts.exclude = NULL;
    p->opts.n_include = p->opts.n_exclude = 0;
    p->opts.module_kinds = NULL;
    if (s) {
        cq_plan_free(p);
        return s;
    }
    *out = p;
    return CQ_OK;
}
