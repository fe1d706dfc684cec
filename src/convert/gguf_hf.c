/*
 * gguf_hf.c - a GGUF model (llama.cpp's file) as the Hugging Face folder it was made from:
 * config.json from the "<arch>.*" metadata, the tensors under transformers' names with
 * llama.cpp's q/k row permutation undone and block formats dequantized (cq_ggml_dequantize,
 * bit-exact with the gguf package), tokenizer.json from the "tokenizer.ggml.*" metadata. It is
 * convert_hf_to_gguf.py run backwards. One mapping serves `cquanto convert` (written out as a
 * folder, one tensor at a time) and the runtime's GGUF loading (kept in memory), so the two
 * cannot disagree. docs/GGUF.md lists what is refused, by name.
 */
#include "convert/gguf_hf.h"
#include "convert/convert_internal.h" /* cq__now */
#include "core/strmap.h"
#include "io/fsutil.h"
#include "io/io_internal.h" /* cq__json_emit */
#include "io/mem_source.h"

#include <jansson.h>
#include <math.h>

/* ggml's token types (llama.h, enum llama_token_type). */
enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_BYTE = 6 };

typedef struct gh_tensor {
    char name[96];     /* transformers' name */
    int64_t src;       /* the GGUF tensor */
    cq_dtype dtype;
    int ndim;
    int64_t shape[2];  /* HF order: (out, in) or (n) */
    int64_t permute;   /* heads of llama.cpp's q/k row permutation to undo, 0: none */
} gh_tensor;

struct cq__gguf_hf {
    cq_gguf *g;
    char *path;
    int64_t ctx; /* context_length */
    char arch[16];
    gh_tensor *t;
    int64_t n;
    /* JSON texts; the tokenizer's are NULL when the file has none */
    char *config, *generation, *tokenizer, *tok_config;
};

/* ---- metadata --------------------------------------------------------------------------- */

static cq_status meta_int(const cq__gguf_hf *h, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out,
                          cq_err *err) {
    cq_status st = cq_gguf_get_int(h->g, key, out, err);
    if (st == CQ_E_NOTFOUND && def >= 0) *out = def, st = CQ_OK;
    if (st) return st;
    if (*out < lo || *out > hi)
        return cq_err_set(err, CQ_E_FORMAT, "%s: '%s' = %lld is outside %lld..%lld", h->path, key, (long long)*out,
                          (long long)lo, (long long)hi);
    return CQ_OK;
}

static cq_status meta_real(const cq__gguf_hf *h, const char *key, double def, double *out, cq_err *err) {
    cq_status st = cq_gguf_get_real(h->g, key, out, err);
    if (st == CQ_E_NOTFOUND) *out = def, st = CQ_OK;
    return st;
}

static char *arch_key(char *buf, size_t n, const cq__gguf_hf *h, const char *suffix) {
    snprintf(buf, n, "%s.%s", h->arch, suffix);
    return buf;
}

/* The shortest decimal that reads back as the same float: what the f32 value a GGUF stores
 * was written from (1e-05, not 9.999999747378752e-06). */
static double shortest_f32(double v) {
    float f = (float)v;
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if ((float)strtod(buf, NULL) == f) return strtod(buf, NULL);
    }
    return v;
}

/* ---- tensors ------------------------------------------------------------------------------ */

static const struct { const char *gguf, *hf; } g_block_names[] = {
    {"attn_norm.weight", "input_layernorm.weight"},  {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_output.bias", "self_attn.o_proj.bias"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},     {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};
static const struct { const char *gguf, *hf; } g_top_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

typedef struct hparams {
    int64_t layers, hidden, inter, heads, kv_heads, head_dim, vocab, ctx;
    double eps, theta;
} hparams;

/* The HF name of GGUF tensor `name`, and which q/k permutation it carries. */
static cq_status map_name(const cq__gguf_hf *h, const hparams *hp, const char *name, gh_tensor *t, cq_err *err) {
    for (size_t i = 0; i < CQ_ARRAY_LEN(g_top_names); i++)
        if (!strcmp(name, g_top_names[i].gguf)) {
            snprintf(t->name, sizeof t->name, "%s", g_top_names[i].hf);
            return CQ_OK;
        }
    long long layer = -1;
    int used = 0;
    if (sscanf(name, "blk.%lld.%n", &layer, &used) == 1 && used > 0 && layer >= 0 && layer < hp->layers) {
        const char *rest = name + used;
        for (size_t i = 0; i < CQ_ARRAY_LEN(g_block_names); i++)
            if (!strcmp(rest, g_block_names[i].gguf)) {
                snprintf(t->name, sizeof t->name, "model.layers.%lld.%s", layer, g_block_names[i].hf);
                /* convert_hf_to_gguf.py's LlamaModel permutes q and k rows (Qwen2 does not) */
                if (!strcmp(h->arch, "llama") && !strncmp(rest, "attn_q.", 7)) t->permute = hp->heads;
                if (!strcmp(h->arch, "llama") && !strncmp(rest, "attn_k.", 7)) t->permute = hp->kv_heads;
                return CQ_OK;
            }
    }
    if (!strcmp(name, "rope_freqs.weight"))
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: tensor 'rope_freqs.weight' (Llama-3 RoPE scaling) is not supported",
                          h->path);
    return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: tensor '%s' has no place in a %s model", h->path, name, h->arch);
}

static cq_dtype out_dtype(cq_ggml_type type, cq_dtype want) {
    if (want != CQ_DTYPE_INVALID) return want;
    return type == CQ_GGML_F16 ? CQ_F16 : type == CQ_GGML_BF16 ? CQ_BF16 : CQ_F32;
}

static cq_status plan_tensors(cq__gguf_hf *h, const hparams *hp, cq_dtype want, cq_err *err) {
    int64_t n = cq_gguf_tensor_count(h->g);
    h->t = cq__calloc((size_t)(n ? n : 1), sizeof *h->t, err, "tensor plan");
    if (!h->t) return CQ_E_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        const cq_gguf_tensor *g = cq_gguf_tensor_at(h->g, i);
        gh_tensor *t = &h->t[h->n];
        t->src = i;
        CQ__TRY(map_name(h, hp, g->name, t, err));
        if (g->ndim > 2)
            return cq_err_set(err, CQ_E_FORMAT, "%s: tensor '%s' has %d dimensions", h->path, g->name, g->ndim);
        if (!cq_ggml_can_dequantize(g->type))
            return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: tensor '%s' is %s, which cquanto cannot dequantize", h->path,
                              g->name, cq_ggml_type_name(g->type) ? cq_ggml_type_name(g->type) : "of an unknown type");
        t->dtype = out_dtype(g->type, want);
        t->ndim = g->ndim;
        t->shape[0] = g->ndim == 2 ? g->ne[1] : g->ne[0];
        t->shape[1] = g->ndim == 2 ? g->ne[0] : 0;
        if (t->permute && (t->shape[0] % t->permute || (t->shape[0] / t->permute) % 2))
            return cq_err_set(err, CQ_E_FORMAT, "%s: tensor '%s' has %lld rows, not %lld heads of an even size", h->path,
                              g->name, (long long)t->shape[0], (long long)t->permute);
        h->n++;
    }
    return CQ_OK;
}

static const gh_tensor *find(const cq__gguf_hf *h, const char *hf_name) {
    for (int64_t i = 0; i < h->n; i++)
        if (!strcmp(h->t[i].name, hf_name)) return &h->t[i];
    return NULL;
}

cq_status cq__gguf_hf_tensor(const cq__gguf_hf *h, int64_t i, void *dst, cq_err *err) {
    const gh_tensor *t = &h->t[i];
    const cq_gguf_tensor *g = cq_gguf_tensor_at(h->g, t->src);
    int64_t rows = t->shape[0], row = t->ndim == 2 ? t->shape[1] : 1;
    size_t es = cq_dtype_size(t->dtype);
    bool same = (g->type == CQ_GGML_F32 && t->dtype == CQ_F32) || (g->type == CQ_GGML_F16 && t->dtype == CQ_F16) ||
                (g->type == CQ_GGML_BF16 && t->dtype == CQ_BF16);
    if (same && !t->permute) {
        memcpy(dst, g->data, (size_t)g->nbytes);
        return CQ_OK;
    }
    float *f = t->dtype == CQ_F32 && !t->permute ? dst : cq__malloc((size_t)g->numel * sizeof *f, err, g->name);
    if (!f) return CQ_E_NOMEM;
    cq_status st = cq_ggml_dequantize(g->type, g->data, g->numel, f, err);
    if (st) cq_err_set(err, st, "%s: tensor '%s': %s", h->path, g->name, err ? err->msg : "cannot dequantize");
    /* llama.cpp stores head h's rows as pairs (2j, 2j+1) = HF rows (j, j + dim/2): undo it */
    int64_t hd = t->permute ? rows / t->permute : 0;
    for (int64_t r = 0; !st && f != dst && r < rows; r++) {
        int64_t s = r;
        if (hd) {
            int64_t head = r / hd, k = r % hd, half = hd / 2;
            s = head * hd + (k < half ? 2 * k : 2 * (k - half) + 1);
        }
        st = cq_convert(f + s * row, CQ_F32, (char *)dst + (size_t)(r * row) * es, t->dtype, row, err);
    }
    if (f != dst) free(f);
    return st;
}

/* ---- config.json and generation_config.json ---------------------------------------------- */

static cq_status read_hparams(cq__gguf_hf *h, hparams *hp, cq_err *err) {
    char k[96];
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "block_count"), -1, 1, 1024, &hp->layers, err));
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "embedding_length"), -1, 1, 1 << 16, &hp->hidden, err));
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "feed_forward_length"), -1, 1, 1 << 20, &hp->inter, err));
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "attention.head_count"), -1, 1, 1024, &hp->heads, err));
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "attention.head_count_kv"), hp->heads, 1, hp->heads, &hp->kv_heads, err));
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "context_length"), 2048, 1, (int64_t)1 << 24, &hp->ctx, err));
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "attention.key_length"), hp->hidden / hp->heads, 2, 1 << 12,
                     &hp->head_dim, err));
    int64_t rot = 0;
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "rope.dimension_count"), hp->head_dim, 0, 1 << 12, &rot, err));
    if (rot != hp->head_dim)
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: '%s' = %lld: RoPE on part of a %lld-wide head is not supported",
                          h->path, k, (long long)rot, (long long)hp->head_dim);
    const char *scaling = cq_gguf_get_str(h->g, arch_key(k, sizeof k, h, "rope.scaling.type"));
    if (scaling && strcmp(scaling, "none"))
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: '%s' = '%s': RoPE scaling is not supported", h->path, k, scaling);
    CQ__TRY(meta_real(h, arch_key(k, sizeof k, h, "attention.layer_norm_rms_epsilon"), 1e-6, &hp->eps, err));
    CQ__TRY(meta_real(h, arch_key(k, sizeof k, h, "rope.freq_base"), 10000.0, &hp->theta, err));
    int64_t e = cq_gguf_tensor_find(h->g, "token_embd.weight");
    if (e < 0) return cq_err_set(err, CQ_E_FORMAT, "%s: tensor 'token_embd.weight' is missing", h->path);
    const cq_gguf_tensor *te = cq_gguf_tensor_at(h->g, e);
    if (te->ndim != 2 || te->ne[0] != hp->hidden)
        return cq_err_set(err, CQ_E_FORMAT, "%s: 'token_embd.weight' is not %lld wide", h->path, (long long)hp->hidden);
    CQ__TRY(meta_int(h, arch_key(k, sizeof k, h, "vocab_size"), te->ne[1], 1, 1 << 24, &hp->vocab, err));
    if (hp->vocab != te->ne[1])
        return cq_err_set(err, CQ_E_FORMAT, "%s: '%s' = %lld but 'token_embd.weight' has %lld rows", h->path, k,
                          (long long)hp->vocab, (long long)te->ne[1]);
    return CQ_OK;
}

static int set(json_t *o, const char *key, json_t *v) { return json_object_set_new(o, key, v); }

/* A token id from "tokenizer.ggml.<what>_token_id"; when absent, llama.cpp's default for a
 * SentencePiece vocabulary (<unk> 0, <s> 1, </s> 2: llama-vocab.cpp), else -1. */
static int64_t special_id(const cq__gguf_hf *h, const char *what) {
    char k[64];
    int64_t v = -1;
    snprintf(k, sizeof k, "tokenizer.ggml.%s_token_id", what);
    if (cq_gguf_get_int(h->g, k, &v, NULL) == CQ_OK) return v;
    const char *model = cq_gguf_get_str(h->g, "tokenizer.ggml.model");
    if (!model || strcmp(model, "llama")) return -1;
    return !strcmp(what, "unknown") ? 0 : !strcmp(what, "bos") ? 1 : !strcmp(what, "eos") ? 2 : -1;
}

static cq_status emit(json_t *root, const cq__json_style *style, const char *path, const char *what, char **out,
                      cq_err *err) {
    size_t len = 0;
    cq_status st = root ? cq__json_emit(root, style, out, &len, err) : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    json_decref(root);
    if (st) return cq_err_set(err, st, "%s: cannot write %s: %s", path, what, err ? err->msg : "");
    char *t = realloc(*out, len + 2);
    if (!t) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    t[len] = '\n', t[len + 1] = 0;
    *out = t;
    return CQ_OK;
}

static cq_status make_config(cq__gguf_hf *h, const hparams *hp, cq_err *err) {
    bool qwen2 = !strcmp(h->arch, "qwen2");
    json_t *c = json_object();
    const gh_tensor *embed = find(h, "model.embed_tokens.weight");
    cq_dtype wt = embed ? embed->dtype : CQ_F32;
    int64_t bos = special_id(h, "bos"), eos = special_id(h, "eos"), pad = special_id(h, "padding");
    int bad = !c;
    bad |= set(c, "architectures", json_pack("[s]", qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"));
    bad |= set(c, "model_type", json_string(h->arch));
    bad |= set(c, "hidden_size", json_integer(hp->hidden));
    bad |= set(c, "intermediate_size", json_integer(hp->inter));
    bad |= set(c, "num_hidden_layers", json_integer(hp->layers));
    bad |= set(c, "num_attention_heads", json_integer(hp->heads));
    bad |= set(c, "num_key_value_heads", json_integer(hp->kv_heads));
    bad |= set(c, "head_dim", json_integer(hp->head_dim));
    bad |= set(c, "max_position_embeddings", json_integer(hp->ctx));
    bad |= set(c, "vocab_size", json_integer(hp->vocab));
    bad |= set(c, "rms_norm_eps", json_real(shortest_f32(hp->eps)));
    bad |= set(c, "rope_theta", json_real(shortest_f32(hp->theta)));
    bad |= set(c, "rope_scaling", json_null());
    bad |= set(c, "hidden_act", json_string("silu"));
    bad |= set(c, "tie_word_embeddings", json_boolean(!find(h, "lm_head.weight")));
    bad |= set(c, "torch_dtype", json_string(wt == CQ_F16 ? "float16" : wt == CQ_BF16 ? "bfloat16" : "float32"));
    bad |= set(c, "attention_dropout", json_real(0.0));
    bad |= set(c, "initializer_range", json_real(0.02));
    bad |= set(c, "use_cache", json_true());
    if (qwen2) {
        bad |= set(c, "use_sliding_window", json_false());
    } else {
        bad |= set(c, "attention_bias", json_boolean(find(h, "model.layers.0.self_attn.q_proj.bias") != NULL));
        bad |= set(c, "mlp_bias", json_false());
        bad |= set(c, "pretraining_tp", json_integer(1));
    }
    if (bos >= 0) bad |= set(c, "bos_token_id", json_integer(bos));
    if (eos >= 0) bad |= set(c, "eos_token_id", json_integer(eos));
    if (pad >= 0) bad |= set(c, "pad_token_id", json_integer(pad));
    json_t *g = json_object();
    bad |= !g || set(g, "_from_model_config", json_true());
    if (bos >= 0) bad |= set(g, "bos_token_id", json_integer(bos));
    if (eos >= 0) bad |= set(g, "eos_token_id", json_integer(eos));
    if (pad >= 0) bad |= set(g, "pad_token_id", json_integer(pad));
    if (bad) {
        json_decref(c);
        json_decref(g);
        return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    }
    CQ__TRY(emit(c, &cq__json_python_indent2_sorted, h->path, "config.json", &h->config, err));
    return emit(g, &cq__json_python_indent2_sorted, h->path, "generation_config.json", &h->generation, err);
}

/* ---- tokenizer.json ------------------------------------------------------------------------ */

/* Hugging Face's split patterns for llama.cpp's pre-tokenizer names (llama-vocab.cpp gives the
 * same expressions in its own spelling). */
#define LLAMA3_SPLIT                                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"
#define QWEN2_SPLIT                                                                                                    \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"     \
    "\\s+(?!\\S)|\\s+"

static json_t *byte_level(bool use_regex) {
    return json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex",
                     use_regex);
}

static json_t *split_then_bytes(const char *regex) {
    return json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},o]}", "type", "Sequence", "pretokenizers", "type", "Split",
                     "pattern", "Regex", regex, "behavior", "Isolated", "invert", 0, byte_level(false));
}

/* The pre-tokenizer of a byte-level BPE model ("gpt2"), by tokenizer.ggml.pre. */
static cq_status gpt2_pre(const cq__gguf_hf *h, json_t **out, cq_err *err) {
    const char *pre = cq_gguf_get_str(h->g, "tokenizer.ggml.pre");
    if (!pre || !strcmp(pre, "default") || !strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2"))
        *out = byte_level(true);
    else if (!strcmp(pre, "smollm"))
        *out = json_pack("{s:s,s:[{s:s,s:b},o]}", "type", "Sequence", "pretokenizers", "type", "Digits",
                         "individual_digits", 1, byte_level(true));
    else if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3"))
        *out = split_then_bytes(LLAMA3_SPLIT);
    else if (!strcmp(pre, "qwen2"))
        *out = split_then_bytes(QWEN2_SPLIT);
    else
        return cq_err_set(err, CQ_E_UNSUPPORTED,
                          "%s: tokenizer.ggml.pre '%s' is not supported (default, gpt-2, smollm, llama-bpe, qwen2)",
                          h->path, pre);
    return *out ? CQ_OK : cq_err_set(err, CQ_E_NOMEM, "out of memory");
}

/* SentencePiece models carry scores, not merges. The merges transformers derives from them
 * (GGUFTokenizerSkeleton): every split of each piece into two pieces, the splits of one piece
 * by the scores of their halves, then all by the score of the piece, highest first (stable). */
typedef struct spm_merge {
    int32_t l, r;
    float score, sl, sr; /* of the piece, its left and right half */
    int64_t seq;
} spm_merge;

static int cmp_local(const void *a, const void *b) {
    const spm_merge *x = a, *y = b;
    if (x->sl != y->sl) return x->sl > y->sl ? -1 : 1;
    if (x->sr != y->sr) return x->sr > y->sr ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}
static int cmp_global(const void *a, const void *b) {
    const spm_merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static cq_status spm_merges(const cq__gguf_hf *h, int64_t ti, int64_t si, int64_t n, json_t *out, cq_err *err) {
    cq__strmap index = {0};
    spm_merge *m = NULL;
    size_t nm = 0, cap = 0;
    cq_status st = cq__strmap_reserve(&index, (size_t)n, err);
    for (int64_t i = 0; !st && i < n; i++) st = cq__strmap_put(&index, cq_gguf_kv_str(h->g, ti, i), i, NULL, err);
    char *buf = NULL;
    size_t bufcap = 0;
    double d;
    for (int64_t i = 0; !st && i < n; i++) {
        if (cq__strmap_get(&index, cq_gguf_kv_str(h->g, ti, i)) != i) continue; /* a later duplicate */
        const char *p = cq_gguf_kv_str(h->g, ti, i);
        size_t len = strlen(p), first = nm;
        if (len + 1 > bufcap && !(buf = realloc(buf, bufcap = 2 * len + 16))) {
            st = cq_err_set(err, CQ_E_NOMEM, "out of memory");
            break;
        }
        for (size_t cut = 1; cut < len; cut++) {
            if (((unsigned char)p[cut] & 0xC0) == 0x80) continue; /* split on characters, as Python does */
            memcpy(buf, p, cut);
            buf[cut] = 0;
            int64_t l = cq__strmap_get(&index, buf), r = cq__strmap_get(&index, p + cut);
            if (l < 0 || r < 0) continue;
            if (nm == cap) {
                spm_merge *g = realloc(m, (cap = cap ? 2 * cap : 1024) * sizeof *m);
                if (!g) {
                    st = cq_err_set(err, CQ_E_NOMEM, "out of memory");
                    break;
                }
                m = g;
            }
            spm_merge e = {(int32_t)l, (int32_t)r, 0, 0, 0, (int64_t)nm};
            cq_gguf_kv_real(h->g, si, i, &d), e.score = (float)d;
            cq_gguf_kv_real(h->g, si, l, &d), e.sl = (float)d;
            cq_gguf_kv_real(h->g, si, r, &d), e.sr = (float)d;
            m[nm++] = e;
        }
        if (!st && nm > first) qsort(m + first, nm - first, sizeof *m, cmp_local);
        for (size_t k = first; k < nm; k++) m[k].seq = (int64_t)k;
    }
    if (!st && nm) qsort(m, nm, sizeof *m, cmp_global);
    for (size_t k = 0; !st && k < nm; k++)
        if (json_array_append_new(out, json_pack("[s,s]", cq_gguf_kv_str(h->g, ti, m[k].l), cq_gguf_kv_str(h->g, ti, m[k].r))))
            st = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    free(buf);
    free(m);
    cq__strmap_free(&index);
    return st;
}

static json_t *template_post(const cq__gguf_hf *h, int64_t ti, int64_t bos, int64_t eos) {
    json_t *single = json_array(), *pair = json_array(), *sp = json_object();
    json_t *seq_a = json_pack("{s:{s:s,s:i}}", "Sequence", "id", "A", "type_id", 0);
    json_t *seq_b = json_pack("{s:{s:s,s:i}}", "Sequence", "id", "B", "type_id", 1);
    int64_t ids[2] = {bos, eos};
    for (int k = 0; k < 2; k++) {
        if (ids[k] < 0) continue;
        const char *tok = cq_gguf_kv_str(h->g, ti, ids[k]);
        json_object_set_new(sp, tok, json_pack("{s:s,s:[I],s:[s]}", "id", tok, "ids", (json_int_t)ids[k], "tokens", tok));
    }
    for (int side = 0; side < 2; side++) {
        json_t *a = side ? pair : single;
        if (bos >= 0) json_array_append_new(a, json_pack("{s:{s:s,s:i}}", "SpecialToken", "id", cq_gguf_kv_str(h->g, ti, bos), "type_id", 0));
        json_array_append(a, seq_a);
        if (eos >= 0) json_array_append_new(a, json_pack("{s:{s:s,s:i}}", "SpecialToken", "id", cq_gguf_kv_str(h->g, ti, eos), "type_id", 0));
        if (side) {
            if (bos >= 0) json_array_append_new(a, json_pack("{s:{s:s,s:i}}", "SpecialToken", "id", cq_gguf_kv_str(h->g, ti, bos), "type_id", 1));
            json_array_append(a, seq_b);
            if (eos >= 0) json_array_append_new(a, json_pack("{s:{s:s,s:i}}", "SpecialToken", "id", cq_gguf_kv_str(h->g, ti, eos), "type_id", 1));
        }
    }
    json_decref(seq_a);
    json_decref(seq_b);
    return json_pack("{s:s,s:o,s:o,s:o}", "type", "TemplateProcessing", "single", single, "pair", pair, "special_tokens", sp);
}

static cq_status make_tokenizer(cq__gguf_hf *h, cq_err *err) {
    const char *model = cq_gguf_get_str(h->g, "tokenizer.ggml.model");
    if (!model) return CQ_OK; /* a file without a tokenizer: none is written */
    bool spm = !strcmp(model, "llama"), gpt2 = !strcmp(model, "gpt2");
    if (!spm && !gpt2)
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: tokenizer.ggml.model '%s' is not supported (gpt2, llama)", h->path,
                          model);
    int64_t ti = cq_gguf_kv_find(h->g, "tokenizer.ggml.tokens"), si = cq_gguf_kv_find(h->g, "tokenizer.ggml.scores");
    int64_t mi = cq_gguf_kv_find(h->g, "tokenizer.ggml.merges"), tt = cq_gguf_kv_find(h->g, "tokenizer.ggml.token_type");
    if (ti < 0 || cq_gguf_kv_type(h->g, ti) != CQ_GGUF_ARRAY || cq_gguf_kv_elem_type(h->g, ti) != CQ_GGUF_STRING)
        return cq_err_set(err, CQ_E_FORMAT, "%s: 'tokenizer.ggml.tokens' is missing or not an array of strings", h->path);
    int64_t n = cq_gguf_kv_len(h->g, ti);
    if (gpt2 && (mi < 0 || cq_gguf_kv_elem_type(h->g, mi) != CQ_GGUF_STRING))
        return cq_err_set(err, CQ_E_FORMAT, "%s: 'tokenizer.ggml.merges' is missing or not an array of strings", h->path);
    if (spm && (si < 0 || cq_gguf_kv_len(h->g, si) != n || cq_gguf_kv_elem_type(h->g, si) != CQ_GGUF_FLOAT32))
        return cq_err_set(err, CQ_E_FORMAT, "%s: 'tokenizer.ggml.scores' is missing or not %lld floats", h->path,
                          (long long)n);
    if (tt >= 0 && (cq_gguf_kv_len(h->g, tt) != n || cq_gguf_kv_str(h->g, tt, 0)))
        return cq_err_set(err, CQ_E_FORMAT, "%s: 'tokenizer.ggml.token_type' is not %lld integers", h->path, (long long)n);
    int64_t bos = special_id(h, "bos"), eos = special_id(h, "eos"), unk = special_id(h, "unknown");
    if (bos >= n || eos >= n || unk >= n)
        return cq_err_set(err, CQ_E_FORMAT, "%s: a special token id is outside the %lld tokens", h->path, (long long)n);
    bool add_bos = spm, add_eos = false, prefix = spm;
    cq_gguf_get_bool(h->g, "tokenizer.ggml.add_bos_token", &add_bos, NULL);
    cq_gguf_get_bool(h->g, "tokenizer.ggml.add_eos_token", &add_eos, NULL);
    cq_gguf_get_bool(h->g, "tokenizer.ggml.add_space_prefix", &prefix, NULL);

    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    cq_status st = vocab && merges && added ? CQ_OK : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    for (int64_t i = 0; !st && i < n; i++) {
        const char *tok = cq_gguf_kv_str(h->g, ti, i);
        json_t *id = json_integer(i);
        if (json_object_get(vocab, tok)) { /* a duplicate piece keeps its first id, as a dict built in order would not */
            json_decref(id);
            continue;
        }
        if (!id || json_object_set_new(vocab, tok, id))
            st = cq_err_set(err, CQ_E_FORMAT, "%s: token %lld is not valid UTF-8", h->path, (long long)i);
        int64_t type = TOKEN_NORMAL;
        if (tt >= 0) cq_gguf_kv_int(h->g, tt, i, &type);
        if (!st && (type == TOKEN_CONTROL || type == TOKEN_USER_DEFINED || (spm && type == TOKEN_UNKNOWN)) &&
            json_array_append_new(added, json_pack("{s:I,s:s,s:b,s:b,s:b,s:b,s:b}", "id", (json_int_t)i, "content", tok,
                                                   "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0,
                                                   "special", type != TOKEN_USER_DEFINED)))
            st = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    }
    for (int64_t i = 0; !st && gpt2 && i < cq_gguf_kv_len(h->g, mi); i++)
        if (json_array_append_new(merges, json_string(cq_gguf_kv_str(h->g, mi, i))))
            st = cq_err_set(err, CQ_E_FORMAT, "%s: merge %lld is not valid UTF-8", h->path, (long long)i);
    if (!st && spm) st = spm_merges(h, ti, si, n, merges, err);
    json_t *pre = NULL, *root = NULL;
    if (!st && gpt2) st = gpt2_pre(h, &pre, err);
    if (!st) {
        json_t *post = add_bos || add_eos ? template_post(h, ti, add_bos ? bos : -1, add_eos ? eos : -1)
                       : gpt2            ? json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 1,
                                                     "trim_offsets", 0, "use_regex", 1)
                                         : json_null();
        json_t *norm = !spm ? json_null()
                       : prefix ? json_pack("{s:s,s:[{s:s,s:s},{s:s,s:{s:s},s:s}]}", "type", "Sequence", "normalizers",
                                            "type", "Prepend", "prepend", "\xe2\x96\x81", "type", "Replace", "pattern",
                                            "String", " ", "content", "\xe2\x96\x81")
                                : json_pack("{s:s,s:{s:s},s:s}", "type", "Replace", "pattern", "String", " ", "content",
                                            "\xe2\x96\x81");
        json_t *dec = gpt2 ? json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                                       "use_regex", 1)
                           : json_pack("{s:s,s:[{s:s,s:{s:s},s:s},{s:s},{s:s}]}", "type", "Sequence", "decoders", "type",
                                       "Replace", "pattern", "String", "\xe2\x96\x81", "content", " ", "type",
                                       "ByteFallback", "type", "Fuse");
        if (dec && spm && prefix)
            json_array_append_new(json_object_get(dec, "decoders"),
                                  json_pack("{s:s,s:s,s:i,s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
        json_t *bpe = json_pack("{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:b,s:O,s:O}", "type", "BPE", "dropout",
                                "unk_token", spm && unk >= 0 ? json_string(cq_gguf_kv_str(h->g, ti, unk)) : json_null(),
                                "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", spm, "byte_fallback", spm,
                                "ignore_merges", 0, "vocab", vocab, "merges", merges);
        root = json_pack("{s:s,s:n,s:n,s:O,s:o,s:o,s:o,s:o,s:o}", "version", "1.0", "truncation", "padding",
                         "added_tokens", added, "normalizer", norm, "pre_tokenizer", pre ? pre : json_null(),
                         "post_processor", post, "decoder", dec, "model", bpe);
        pre = NULL;
        st = emit(root, &cq__json_serde_compact, h->path, "tokenizer.json", &h->tokenizer, err);
    }
    /* what transformers' AutoTokenizer reads beside it: the special tokens and the chat template */
    if (!st) {
        json_t *tc = json_pack("{s:b,s:b,s:b,s:s,s:I}", "add_bos_token", add_bos, "add_eos_token", add_eos,
                               "clean_up_tokenization_spaces", 0, "tokenizer_class", "PreTrainedTokenizerFast",
                               "model_max_length", (json_int_t)h->ctx);
        static const char *const roles[] = {"bos", "eos", "unknown", "padding"};
        static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
        for (size_t k = 0; tc && k < CQ_ARRAY_LEN(roles); k++) {
            int64_t id = special_id(h, roles[k]);
            if (id >= 0 && id < n) json_object_set_new(tc, keys[k], json_string(cq_gguf_kv_str(h->g, ti, id)));
        }
        const char *chat = cq_gguf_get_str(h->g, "tokenizer.chat_template");
        if (tc && chat) json_object_set_new(tc, "chat_template", json_string(chat));
        st = emit(tc, &cq__json_python_indent2_sorted, h->path, "tokenizer_config.json", &h->tok_config, err);
    }
    json_decref(pre);
    json_decref(vocab);
    json_decref(merges);
    json_decref(added);
    return st;
}

/* ---- the whole ------------------------------------------------------------------------------ */

void cq__gguf_hf_free(cq__gguf_hf *h) {
    if (!h) return;
    cq_gguf_close(h->g);
    free(h->path);
    free(h->t);
    free(h->config);
    free(h->tokenizer);
    free(h->generation);
    free(h->tok_config);
    free(h);
}

cq_status cq__gguf_hf_open(const char *path, cq_dtype dtype, cq__gguf_hf **out, cq_err *err) {
    *out = NULL;
    if (dtype != CQ_DTYPE_INVALID && dtype != CQ_F32 && dtype != CQ_F16 && dtype != CQ_BF16)
        return cq_err_set(err, CQ_E_ARG, "%s: the float dtype must be F32, F16 or BF16, not %s", path, cq_dtype_name(dtype));
    cq__gguf_hf *h = cq__calloc(1, sizeof *h, err, "a GGUF model");
    if (!h) return CQ_E_NOMEM;
    cq_status st = (h->path = cq__strdup(path, err)) ? cq_gguf_open(path, &h->g, err) : CQ_E_NOMEM;
    const char *arch = st ? NULL : cq_gguf_get_str(h->g, "general.architecture");
    if (!st && (!arch || (strcmp(arch, "llama") && strcmp(arch, "qwen2"))))
        st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: general.architecture '%s' is not supported (llama, qwen2)", path,
                        arch ? arch : "(missing)");
    hparams hp = {0};
    if (!st) snprintf(h->arch, sizeof h->arch, "%s", arch);
    if (!st) st = read_hparams(h, &hp, err);
    h->ctx = hp.ctx;
    if (!st) st = plan_tensors(h, &hp, dtype, err);
    if (!st) st = make_config(h, &hp, err);
    if (!st) st = make_tokenizer(h, err);
    if (st) {
        cq__gguf_hf_free(h);
        return st;
    }
    *out = h;
    return CQ_OK;
}

const char *cq__gguf_hf_config(const cq__gguf_hf *h) { return h->config; }
const char *cq__gguf_hf_tokenizer(const cq__gguf_hf *h) { return h->tokenizer; }

static uint64_t source_bytes(const cq__gguf_hf *h, int64_t i) {
    return cq_gguf_tensor_at(h->g, h->t[i].src)->nbytes;
}

/* ---- cquanto convert: the folder ------------------------------------------------------------ */

cq_status cq_gguf_convert(const char *gguf, const char *out, const cq_gguf_convert_opts *opts, cq_err *err) {
    CQ__ARG(gguf);
    CQ__ARG(out);
    cq_gguf_convert_opts o = opts ? *opts : cq_gguf_convert_default_opts();
    const char *inputs[] = {gguf};
    CQ__TRY(cq__check_output(out, inputs, 1, err));
    cq__gguf_hf *h = NULL;
    CQ__TRY(cq__gguf_hf_open(gguf, o.dtype, &h, err));
    char *tmp = NULL, *p = NULL;
    cq_st_writer *w = NULL;
    cq_status st = cq_fs_temp_dir(out, &tmp, err);
    if (!st) st = cq_st_writer_open((p = cq_path_join(tmp, "model.safetensors")), &w, err);
    uint64_t total = 0, done = 0;
    double t0 = cq__now();
    for (int64_t i = 0; !st && i < h->n; i++) {
        st = cq_st_writer_declare(w, h->t[i].name, h->t[i].dtype, h->t[i].ndim, h->t[i].shape, err);
        total += source_bytes(h, i);
    }
    if (!st) st = cq_st_writer_add_metadata(w, "format", "pt", err);
    void *buf = NULL;
    for (int64_t i = 0; !st && i < h->n; i++) {
        const gh_tensor *t = &h->t[i];
        size_t nb = cq_dtype_size(t->dtype) * (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        free(buf);
        if (!(buf = cq__malloc(nb ? nb : 1, err, t->name))) st = CQ_E_NOMEM;
        if (!st) st = cq__gguf_hf_tensor(h, i, buf, err);
        if (!st) st = cq_st_writer_write(w, t->name, buf, nb, err);
        if (o.cancel && *o.cancel) st = cq_err_set(err, CQ_E_IO, "%s: interrupted", out);
        done += source_bytes(h, i);
        if (!st && o.progress) {
            cq_convert_progress pr = {i + 1, h->n, done, total, cq__now() - t0, t->name};
            o.progress(&pr, o.progress_user);
        }
    }
    free(buf);
    if (!st) st = cq_st_writer_commit(w, err);
    cq_st_writer_free(w);
    const char *files[][2] = {{"config.json", h->config}, {"generation_config.json", h->generation},
                              {"tokenizer.json", h->tokenizer}, {"tokenizer_config.json", h->tok_config}};
    for (size_t k = 0; !st && k < CQ_ARRAY_LEN(files); k++) {
        if (!files[k][1]) continue;
        free(p);
        p = cq_path_join(tmp, files[k][0]);
        st = p ? cq_fs_write_file_atomic(p, files[k][1], strlen(files[k][1]), err) : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    }
    if (!st) st = cq_fs_commit_dir(tmp, out, o.overwrite, err);
    if (st && tmp) cq_fs_remove_tree(tmp, NULL);
    free(p);
    free(tmp);
    cq__gguf_hf_free(h);
    return st;
}

cq_gguf_convert_opts cq_gguf_convert_default_opts(void) {
    cq_gguf_convert_opts o = {CQ_DTYPE_INVALID, false, NULL, NULL, NULL};
    return o;
}

/* ---- the runtime: the converted model in memory ---------------------------------------------- */

cq_status cq__gguf_hf_to_ckpt(const cq__gguf_hf *h, cq_ckpt **out, cq_err *err) {
    *out = NULL;
    cq__source *src = NULL;
    CQ__TRY(cq__mem_source_new(h->path, h->n, &src, err));
    cq_status st = CQ_OK;
    for (int64_t i = 0; !st && i < h->n; i++) {
        void *data = NULL;
        st = cq__mem_source_add(src, h->t[i].name, h->t[i].dtype, h->t[i].ndim, h->t[i].shape, &data, err);
        if (!st) st = cq__gguf_hf_tensor(h, i, data, err);
    }
    if (st) {
        cq__source_close(src);
        return st;
    }
    return cq__ckpt_from_source(src, h->path, out, err);
}

bool cq__is_gguf_file(const char *path) {
    FILE *f = cq_fs_is_dir(path) ? NULL : fopen(path, "rb");
    char magic[4] = {0};
    bool yes = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    return yes;
}
