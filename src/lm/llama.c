/*
 * llama.c - the Llama-family decoder (Llama, SmolLM, TinyLlama, Mistral, Qwen2): the loader
 * that checks config.json and the tensors and repacks every Linear for cq_matmul in its stored
 * dtype, and the forward pass over a preallocated arena and KV cache. The arithmetic follows
 * transformers' modeling_llama.py (eager attention) op for op: RMSNorm in f32, RoPE with f32
 * inverse frequencies, softmax in f32, SwiGLU; docs/LM.md lists where the order of
 * floating-point sums differs. Each output element is computed by one thread in a fixed
 * order, so the thread count never changes a result.
 */
#include "lm/lm_internal.h"
#include "convert/gguf_hf.h" /* a .gguf is loaded as the Hugging Face folder it stands for */
#include "io/io_internal.h"  /* cq__hfconfig_ints */
#include "io/source.h"      /* cq__ckpt_release: a repacked tensor's pages go back to the kernel */
#include "kernels/kernels_internal.h" /* the attention kernels */

#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define LM_DEFAULT_CONTEXT_CAP 4096
#define LM_DEFAULT_BATCH 256

cq_lm_opts cq_lm_default_opts(void) {
    cq_lm_opts o = {CQ_MATMUL_EXACT, 0, 0, CQ_ROPE_HALF, NULL, CQ_QNONE, CQ_OPT_DEFAULT, -1, CQ_QNONE, CQ_QNONE};
    return o;
}

/* ---- config ------------------------------------------------------------------------------ */

static cq_status cfg_int(const cq_hfconfig *c, const char *path, const char *key, int64_t def, int64_t lo, int64_t hi,
                         int64_t *out, cq_err *err) {
    cq_status st = cq_hfconfig_int(c, key, out, err);
    if (st == CQ_E_NOTFOUND && def >= 0) {
        *out = def;
        st = CQ_OK;
    } else if (st == CQ_E_NOTFOUND) {
        return cq_err_set(err, CQ_E_FORMAT, "%s: '%s' is missing", path, key);
    }
    if (st) return st;
    if (*out < lo || *out > hi)
        return cq_err_set(err, CQ_E_FORMAT, "%s: '%s' = %lld is outside %lld..%lld", path, key, (long long)*out,
                          (long long)lo, (long long)hi);
    return CQ_OK;
}

/* Whether key holds a value other than null (of any JSON type). */
static bool cfg_set(const cq_hfconfig *c, const char *key) {
    int64_t v;
    return cq_hfconfig_int(c, key, &v, NULL) != CQ_E_NOTFOUND;
}

/* c: the parsed config; path names it in messages. */
static cq_status read_config(cq_lm *lm, cq_hfconfig *c, const char *path, const cq_lm_opts *o, cq_err *err) {
    cq_status st = CQ_OK;
    const char *mt = cq_hfconfig_model_type(c);
    static const char *const types[] = {"llama", "mistral", "qwen2"};
    for (size_t i = 0; mt && i < CQ_ARRAY_LEN(types) && !lm->model_type[0]; i++)
        if (!strcmp(mt, types[i])) snprintf(lm->model_type, sizeof lm->model_type, "%s", mt);
    if (!lm->model_type[0]) {
        st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: model_type '%s' is not supported (llama, mistral, qwen2)", path,
                        mt ? mt : "(missing)");
        goto done;
    }
    const char *act = cq_hfconfig_str(c, "hidden_act");
    if (act && strcmp(act, "silu")) {
        st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: hidden_act '%s' is not supported (silu)", path, act);
        goto done;
    }
    if (cfg_set(c, "rope_scaling")) {
        st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: 'rope_scaling' is set; the runtime does not support it", path);
        goto done;
    }
    if (cfg_set(c, "quantization_config") && lm->qmods.n == 0) {
        st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: 'quantization_config' without quanto_qmap.json: only "
                        "optimum-quanto's format is read", path);
        goto done;
    }
    if ((st = cfg_int(c, path, "hidden_size", -1, 1, 1 << 16, &lm->hidden, err)) ||
        (st = cfg_int(c, path, "intermediate_size", -1, 1, 1 << 20, &lm->inter, err)) ||
        (st = cfg_int(c, path, "num_hidden_layers", -1, 1, 1024, &lm->layers, err)) ||
        (st = cfg_int(c, path, "num_attention_heads", -1, 1, 1024, &lm->heads, err)) ||
        (st = cfg_int(c, path, "num_key_value_heads", lm->heads, 1, lm->heads, &lm->kv_heads, err)) ||
        (st = cfg_int(c, path, "vocab_size", -1, 1, 1 << 24, &lm->vocab, err)) ||
        (st = cfg_int(c, path, "head_dim", lm->hidden / lm->heads, 2, 1 << 12, &lm->head_dim, err)) ||
        (st = cfg_int(c, path, "max_position_embeddings", 2048, 1, (int64_t)1 << 24, &lm->max_pos, err)))
        goto done;
    if (lm->heads % lm->kv_heads || lm->head_dim % 2) {
        st = cq_err_set(err, CQ_E_FORMAT, "%s: %lld heads over %lld key/value heads of dim %lld: not a grouped-query layout",
                        path, (long long)lm->heads, (long long)lm->kv_heads, (long long)lm->head_dim);
        goto done;
    }
    lm->rms_eps = 1e-6, lm->rope_theta = 10000.0;
    if (cfg_set(c, "rms_norm_eps") && (st = cq_hfconfig_real(c, "rms_norm_eps", &lm->rms_eps, err))) goto done;
    if (cfg_set(c, "rope_theta") && (st = cq_hfconfig_real(c, "rope_theta", &lm->rope_theta, err))) goto done;
    if (!(lm->rms_eps >= 0) || !(lm->rope_theta > 0)) {
        st = cq_err_set(err, CQ_E_FORMAT, "%s: rms_norm_eps or rope_theta out of range", path);
        goto done;
    }
    int64_t ids[4];
    lm->bos_id = cq__hfconfig_ints(c, "bos_token_id", ids, 1) ? (int32_t)ids[0] : -1;
    int ne = cq__hfconfig_ints(c, "eos_token_id", ids, 4);
    for (int i = 0; i < ne; i++)
        if (ids[i] >= 0 && ids[i] < INT32_MAX) lm->eos_ids[lm->n_eos++] = (int32_t)ids[i];
    lm->tie_config = cfg_set(c, "tie_word_embeddings") ? (cq_hfconfig_tie_word_embeddings(c) ? 1 : 0) : -1;
    lm->context = o->context > 0 ? o->context : lm->max_pos < LM_DEFAULT_CONTEXT_CAP ? lm->max_pos : LM_DEFAULT_CONTEXT_CAP;
    /* Mistral / Qwen2 attend only within a window; past it the full attention here would differ. */
    int64_t window = 0;
    bool use_window = strcmp(lm->model_type, "qwen2") != 0; /* Qwen2 applies it only with use_sliding_window */
    if (!use_window) cq_hfconfig_bool(c, "use_sliding_window", &use_window, NULL);
    if (use_window && cfg_set(c, "sliding_window") && cq_hfconfig_int(c, "sliding_window", &window, NULL) == CQ_OK &&
        window > 0 && lm->context > window) {
        if (o->context > 0) {
            st = cq_err_set(err, CQ_E_UNSUPPORTED, "%s: context %lld exceeds sliding_window %lld (sliding-window attention is not supported)",
                            path, (long long)o->context, (long long)window);
            goto done;
        }
        lm->context = window;
    }
done:
    return st;
}

/* ---- weights ------------------------------------------------------------------------------ */

static bool float_dtype(cq_dtype t) { return t == CQ_F32 || t == CQ_F16 || t == CQ_BF16; }

/* Tensor `name` with the expected shape (d1 == 0: 1-D [d0]) and a float dtype. */
static cq_status get_tensor(const cq_lm *lm, const char *name, int64_t d0, int64_t d1, const cq_tensor **out,
                            cq_err *err) {
    const cq_tensor *t = NULL;
    if (cq_ckpt_get(lm->ckpt, name, &t, NULL) != CQ_OK)
        return cq_err_set(err, CQ_E_FORMAT, "%s: tensor '%s' is missing", cq_ckpt_dir(lm->ckpt), name);
    int nd = d1 ? 2 : 1;
    if (t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1))
        return cq_err_set(err, CQ_E_SHAPE, "%s: tensor '%s' has shape [%lld%s%lld], expected [%lld%s%lld]",
                          cq_ckpt_dir(lm->ckpt), name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                          t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)d0, nd == 2 ? ", " : "",
                          nd == 2 ? (long long)d1 : 0LL);
    if (!float_dtype(t->dtype))
        return cq_err_set(err, CQ_E_DTYPE, "%s: tensor '%s' is %s; float weights must be F32, F16 or BF16",
                          cq_ckpt_dir(lm->ckpt), name, cq_dtype_name(t->dtype));
    *out = t;
    return CQ_OK;
}

/* A 1-D parameter as f32 (malloc). */
static cq_status load_vector(const cq_lm *lm, const char *name, int64_t n, float **out, cq_err *err) {
    const cq_tensor *t;
    CQ__TRY(get_tensor(lm, name, n, 0, &t, err));
    float *v = cq__malloc((size_t)n * sizeof(float), err, name);
    if (!v) return CQ_E_NOMEM;
    for (int64_t i = 0; i < n; i++) v[i] = cq_load_f32(t->data, t->dtype, i);
    *out = v;
    return CQ_OK;
}

/* Checkpoint tensor i (-1: none) is repacked: its mapped pages are not needed again, so resident
 * memory stays near the repacked bytes instead of twice them. */
static void release(const cq_lm *lm, int64_t i) {
    const cq_tensor *t = i >= 0 ? cq_ckpt_tensor(lm->ckpt, i) : NULL;
    if (t) cq__ckpt_release(lm->ckpt, i, 0, cq_tensor_nbytes(t));
}

/* The qtype of a Linear's repacked weight. */
static cq_qtype weight_qtype(const lm_linear *l) {
    cq_mm_weight_info info;
    cq_mm_weight_get_info(l->w, &info);
    return info.qtype;
}

/* A module's scalar activation scale "<module>.<what>" as f32. */
static cq_status load_scale(const cq_lm *lm, const char *module, const char *what, float *out, cq_err *err) {
    char name[300];
    snprintf(name, sizeof name, "%s.%s", module, what);
    const cq_tensor *t = NULL;
    if (cq_ckpt_get(lm->ckpt, name, &t, NULL) != CQ_OK || cq_tensor_numel(t) != 1 || !float_dtype(t->dtype))
        return cq_err_set(err, CQ_E_FORMAT, "%s: '%s' is missing or not one float", cq_ckpt_dir(lm->ckpt), name);
    *out = cq_load_f32(t->data, t->dtype, 0);
    if (!(*out > 0.0f) || !isfinite(*out))
        return cq_err_set(err, CQ_E_FORMAT, "%s: '%s' = %g is not a positive scale", cq_ckpt_dir(lm->ckpt), name, *out);
    return CQ_OK;
}

/* The quanto module state of `module` in a quantized folder, NULL when it is not quantized. */
static const cq__qmodule *quanto_module(const cq_lm *lm, const char *module) {
    for (int64_t i = 0; i < lm->qmods.n; i++)
        if (lm->qmods.mods[i].weights != CQ_QNONE && !strcmp(lm->qmods.mods[i].module, module)) return &lm->qmods.mods[i];
    return NULL;
}

/* The kernels' weight from a quantized weight (codes and scales copied into the tiles). */
static cq_status mm_from_qweight(const cq_qweight *w, cq_mm_weight **out, cq_err *err) {
    cq_mm_weight_src src = {0};
    src.qtype = w->qtype;
    src.out_features = w->shape[0];
    src.in_features = w->shape[1];
    src.group_size = w->group_size;
    src.data = w->data->data;
    src.scale = w->scale->data;
    src.shift = w->shift ? w->shift->data : NULL;
    src.scale_dtype = w->scale->dtype;
    return cq_mm_weight_new(out, &src, err);
}

/* Linear `module` [out_f, in_f]: quanto's state when the folder quantized it, else the float
 * weight, quantized on load when asked (quantize: the layers' Linears, not the head). */
/* A Linear: a quanto module as its map says, else the float weight, quantized on load to qt
 * (CQ_QNONE: kept as stored) in groups of group_size (cq_qweight_quantize) with activations act. */
static cq_status load_linear(cq_lm *lm, const char *module, int64_t out_f, int64_t in_f, cq_qtype qt,
                             int64_t group_size, cq_qtype act, lm_linear *l, cq_err *err) {
    char name[256];
    cq_err inner = {0};
    cq_status st;
    cq_qweight *qw = NULL;
    const cq__qmodule *qm = quanto_module(lm, module);
    l->in = in_f, l->out = out_f;
    l->in_scale = l->out_scale = 1.0f;
    if (!(l->name = cq__strdup(module, err))) return CQ_E_NOMEM;
    if (qm) {
        if (qm->activations != CQ_QNONE && qm->activations != CQ_QINT8)
            return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: module '%s' has %s activations; the runtime runs qint8 "
                              "activations only", cq_ckpt_dir(lm->ckpt), module, cq_qtype_name(qm->activations));
        l->act = qm->activations;
        if (l->act != CQ_QNONE) {
            CQ__TRY(load_scale(lm, module, "input_scale", &l->in_scale, err));
            CQ__TRY(load_scale(lm, module, "output_scale", &l->out_scale, err));
        }
        st = cq__qmodule_weight(lm->ckpt, qm, &qw, &inner);
        if (!st && (qw->ndim != 2 || qw->shape[0] != out_f || qw->shape[1] != in_f))
            st = cq_err_set(&inner, CQ_E_SHAPE, "quantized weight is not [%lld, %lld]", (long long)out_f, (long long)in_f);
        if (!st) st = mm_from_qweight(qw, &l->w, &inner);
        if (!st) lm->wqtype = qw->qtype, lm->quantized++;
        cq_qweight_free(qw);
        if (st) return cq_err_set(err, st, "%s: %s: %s", cq_ckpt_dir(lm->ckpt), module, inner.msg);
        release(lm, qm->data_idx), release(lm, qm->scale_idx), release(lm, qm->shift_idx);
    } else {
        snprintf(name, sizeof name, "%s.weight", module);
        const cq_tensor *t;
        CQ__TRY(get_tensor(lm, name, out_f, in_f, &t, err));
        if (lm->wdtype == CQ_DTYPE_INVALID) lm->wdtype = t->dtype;
        if (qt != CQ_QNONE) {
            l->act = act;
            st = cq_qweight_quantize(t, qt, lm->optimizer, group_size, &qw, &inner);
            if (!st) st = mm_from_qweight(qw, &l->w, &inner);
            if (!st) lm->wqtype = qw->qtype, lm->quantized++;
            cq_qweight_free(qw);
        } else {
            cq_mm_weight_src src = {0};
            src.qtype = CQ_QNONE;
            src.out_features = out_f;
            src.in_features = in_f;
            src.data = t->data;
            src.weight_dtype = t->dtype;
            st = cq_mm_weight_new(&l->w, &src, &inner);
        }
        if (st) return cq_err_set(err, st, "%s: %s", name, inner.msg);
        if (t != lm->embed) release(lm, cq_ckpt_find(lm->ckpt, name));
    }
    l->w8a8 = l->act == CQ_QINT8 && weight_qtype(l) == CQ_QINT8;
    snprintf(name, sizeof name, "%s.bias", module);
    if (cq_ckpt_find(lm->ckpt, name) >= 0) CQ__TRY(load_vector(lm, name, out_f, &l->bias, err));
    cq_mm_weight_info info;
    cq_mm_weight_get_info(l->w, &info);
    lm->weight_bytes += info.nbytes;
    return CQ_OK;
}

static cq_status load_weights(cq_lm *lm, cq_err *err) {
    int64_t qd = lm->heads * lm->head_dim, kvd = lm->kv_heads * lm->head_dim;
    CQ__TRY(get_tensor(lm, "model.embed_tokens.weight", lm->vocab, lm->hidden, &lm->embed, err));
    lm->layer = cq__calloc((size_t)lm->layers, sizeof *lm->layer, err, "layers");
    if (!lm->layer) return CQ_E_NOMEM;
    char p[128], n[160];
    for (int64_t i = 0; i < lm->layers; i++) {
        lm_layer *L = &lm->layer[i];
        snprintf(p, sizeof p, "model.layers.%lld", (long long)i);
        snprintf(n, sizeof n, "%s.input_layernorm.weight", p);
        CQ__TRY(load_vector(lm, n, lm->hidden, &L->attn_norm, err));
        snprintf(n, sizeof n, "%s.post_attention_layernorm.weight", p);
        CQ__TRY(load_vector(lm, n, lm->hidden, &L->mlp_norm, err));
        const struct {
            const char *name;
            int64_t out, in;
            lm_linear *l;
        } lin[] = {{"self_attn.q_proj", qd, lm->hidden, &L->q},     {"self_attn.k_proj", kvd, lm->hidden, &L->k},
                   {"self_attn.v_proj", kvd, lm->hidden, &L->v},    {"self_attn.o_proj", lm->hidden, qd, &L->o},
                   {"mlp.gate_proj", lm->inter, lm->hidden, &L->gate}, {"mlp.up_proj", lm->inter, lm->hidden, &L->up},
                   {"mlp.down_proj", lm->hidden, lm->inter, &L->down}};
        for (size_t j = 0; j < CQ_ARRAY_LEN(lin); j++) {
            snprintf(n, sizeof n, "%s.%s", p, lin[j].name);
            CQ__TRY(load_linear(lm, n, lin[j].out, lin[j].in, lm->quantize_to, lm->group_size, lm->quantize_act,
                                lin[j].l, err));
        }
    }
    CQ__TRY(load_vector(lm, "model.norm.weight", lm->hidden, &lm->final_norm, err));
    bool has_head = cq_ckpt_find(lm->ckpt, "lm_head.weight") >= 0;
    lm->tied = lm->tie_config == 1 || (lm->tie_config == -1 && !has_head);
    if (!lm->tied && !has_head)
        return cq_err_set(err, CQ_E_FORMAT, "%s: tie_word_embeddings is false but lm_head.weight is missing",
                          cq_ckpt_dir(lm->ckpt));
    cq_qtype layers_qtype = lm->wqtype; /* what cq_lm_info reports: the layers', not the head's */
    /* the layers' group size is for their qtype; the head takes quanto's rule for its own */
    cq_status st = load_linear(lm, lm->tied ? "model.embed_tokens" : "lm_head", lm->vocab, lm->hidden,
                               lm->quantize_head, -1, CQ_QNONE, &lm->head, err);
    lm->wqtype = layers_qtype;
    return st;
}

/* ---- arena -------------------------------------------------------------------------------- */

static cq_status alloc_arena(cq_lm *lm, cq_err *err) {
    int64_t B = lm->batch, qd = lm->heads * lm->head_dim, kvd = lm->kv_heads * lm->head_dim;
    uint64_t cache;
    if (cq__mul_overflow_u64((uint64_t)(lm->layers * lm->context), (uint64_t)kvd * 2 * sizeof(float), &cache) ||
        cache > ((uint64_t)1 << 40))
        return cq_err_set(err, CQ_E_OVERFLOW, "KV cache of %lld layers x %lld tokens is too large",
                          (long long)lm->layers, (long long)lm->context);
    lm->cache_bytes = (size_t)cache;
    lm->kcache = cq_aligned_alloc(lm->cache_bytes);
    lm->vcache = lm->kcache ? lm->kcache + (size_t)(lm->layers * lm->context * kvd) : NULL;
    size_t act = (size_t)B * (size_t)(2 * lm->hidden + 2 * qd + 2 * kvd + 2 * lm->inter);
    lm->arena = cq_aligned_alloc(act * sizeof(float));
    lm->inv_freq = cq__malloc((size_t)(lm->head_dim / 2) * sizeof(float), err, "RoPE frequencies");
    /* one row of attention scores per thread */
    lm->nscores = cq_get_num_threads();
    lm->scores = cq__malloc((size_t)lm->nscores * (size_t)lm->context * sizeof(float), err, "attention scores");
    if (!lm->kcache || !lm->arena || !lm->inv_freq || !lm->scores)
        return cq_err_set(err, CQ_E_NOMEM, "out of memory for the KV cache (%zu bytes) and activations", lm->cache_bytes);
    float *a = lm->arena;
    lm->x = a, a += B * lm->hidden;
    lm->xn = a, a += B * lm->hidden;
    lm->q = a, a += B * qd;
    lm->att = a, a += B * qd;
    lm->k = a, a += B * kvd;
    lm->v = a, a += B * kvd;
    lm->gate = a, a += B * lm->inter;
    lm->up = a;
    int64_t kmax = lm->hidden > lm->inter ? lm->hidden : lm->inter;
    if (qd > kmax) kmax = qd;
    lm->xq = cq__malloc((size_t)(B * kmax), err, "int8 activations");
    lm->xf = lm->xq ? cq__malloc((size_t)(B * kmax) * sizeof(float), err, "quantized activations") : NULL;
    if (!lm->xf) return CQ_E_NOMEM;
    /* transformers: inv_freq = 1 / theta ** (arange(0, d, 2).float() / d), in f32 */
    for (int64_t i = 0; i < lm->head_dim / 2; i++)
        lm->inv_freq[i] = 1.0f / powf((float)lm->rope_theta, (float)(2 * i) / (float)lm->head_dim);
    return CQ_OK;
}

/* Scratch for cq_matmul at the current thread count, grown when it rises. */
static cq_status ensure_work(cq_lm *lm, cq_err *err) {
    int nt = cq_get_num_threads();
    if (lm->work && lm->work_threads == nt) return CQ_OK;
    size_t need = 0;
    for (int64_t i = 0; i <= lm->layers; i++) {
        const lm_linear *ls[7];
        int n = 0;
        if (i == lm->layers) ls[n++] = &lm->head;
        else {
            const lm_layer *L = &lm->layer[i];
            ls[n++] = &L->q, ls[n++] = &L->k, ls[n++] = &L->v, ls[n++] = &L->o;
            ls[n++] = &L->gate, ls[n++] = &L->up, ls[n++] = &L->down;
        }
        for (int j = 0; j < n; j++) {
            for (int mode = 0; mode < 3; mode++) {
                size_t s = mode == 2 ? (ls[j]->w8a8 ? cq_matmul_work_size(ls[j]->w, lm->batch, CQ_I8, CQ_MATMUL_EXACT) : 0)
                                     : cq_matmul_work_size(ls[j]->w, lm->batch, CQ_F32, mode ? CQ_MATMUL_FAST : CQ_MATMUL_EXACT);
                if (s > need) need = s;
            }
        }
    }
    free(lm->work);
    lm->work = need ? cq__malloc(need, err, "matmul scratch") : NULL;
    lm->work_size = need;
    if (need && !lm->work) return CQ_E_NOMEM;
    if (nt > lm->nscores) {
        float *s = realloc(lm->scores, (size_t)nt * (size_t)lm->context * sizeof(float));
        if (!s) return cq_err_set(err, CQ_E_NOMEM, "out of memory for attention scores");
        lm->scores = s, lm->nscores = nt;
    }
    lm->work_threads = nt;
    return CQ_OK;
}

void cq_lm_free(cq_lm *lm) {
    if (!lm) return;
    for (int64_t i = 0; lm->layer && i < lm->layers; i++) {
        lm_layer *L = &lm->layer[i];
        lm_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (size_t j = 0; j < CQ_ARRAY_LEN(ls); j++) {
            cq_mm_weight_free(ls[j]->w);
            free(ls[j]->bias);
            free(ls[j]->name);
        }
        free(L->attn_norm);
        free(L->mlp_norm);
    }
    free(lm->layer);
    cq_mm_weight_free(lm->head.w);
    free(lm->head.bias);
    free(lm->head.name);
    free(lm->xq);
    free(lm->xf);
    free(lm->final_norm);
    cq_aligned_free(lm->kcache);
    cq_aligned_free(lm->arena);
    free(lm->inv_freq);
    free(lm->scores);
    free(lm->work);
    cq_tokenizer_free(lm->tok);
    cq__qmodules_free(&lm->qmods);
    cq_ckpt_close(lm->ckpt);
    free(lm);
}

/* The tokenizer: opts->tokenizer, else the GGUF's, else tokenizer.json / tok512.bin /
 * tokenizer.bin beside the weights. */
static cq_status load_tokenizer(cq_lm *lm, const cq_lm_opts *o, const cq__gguf_hf *gguf, cq_err *err) {
    if (o->tokenizer) return cq_tokenizer_load(o->tokenizer, &lm->tok, err);
    if (gguf) {
        const char *text = cq__gguf_hf_tokenizer(gguf);
        return text ? cq_tokenizer_parse(text, strlen(text), cq_ckpt_dir(lm->ckpt), &lm->tok, err) : CQ_OK;
    }
    static const char *const names[] = {"tokenizer.json", "tok512.bin", "tokenizer.bin"};
    for (size_t i = 0; i < CQ_ARRAY_LEN(names); i++) {
        char *p = NULL;
        CQ__TRY(cq_ckpt_folder_file(lm->ckpt, names[i], &p, err));
        if (!p) continue;
        cq_status st = cq_tokenizer_load(p, &lm->tok, err);
        free(p);
        return st;
    }
    return CQ_OK;
}

cq_status cq_lm_load(const char *path, const cq_lm_opts *opts, cq_lm **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(path);
    cq_lm_opts o = opts ? *opts : cq_lm_default_opts();
    if (o.mode != CQ_MATMUL_EXACT && o.mode != CQ_MATMUL_FAST)
        return cq_err_set(err, CQ_E_ARG, "cq_lm_load: unknown matmul mode %d", (int)o.mode);
    if (o.rope != CQ_ROPE_HALF && o.rope != CQ_ROPE_INTERLEAVED)
        return cq_err_set(err, CQ_E_ARG, "cq_lm_load: unknown RoPE layout %d", (int)o.rope);
    if (o.context < 0 || o.batch < 0)
        return cq_err_set(err, CQ_E_ARG, "cq_lm_load: negative context or batch");
    cq_lm *lm = cq__calloc(1, sizeof *lm, err, "model");
    if (!lm) return CQ_E_NOMEM;
    lm->mode = o.mode;
    lm->rope = o.rope;
    lm->wdtype = CQ_DTYPE_INVALID;
    lm->quantize_to = o.weights;
    lm->quantize_act = o.activations;
    lm->quantize_head = o.head;
    if (o.activations != CQ_QNONE && (o.activations != CQ_QINT8 || o.weights == CQ_QNONE)) {
        free(lm);
        return cq_err_set(err, CQ_E_UNSUPPORTED, "cq_lm_load: activations %s need quantized weights and qint8",
                          cq_qtype_name(o.activations));
    }
    lm->optimizer = o.optimizer;
    lm->group_size = o.group_size;
    for (int k = 0; k < 2; k++) {
        cq_qtype q = k ? o.head : o.weights;
        if (q != CQ_QNONE && !cq_qtype_takes(q, CQ_QROLE_WEIGHTS, false)) {
            free(lm);
            return cq_err_set(err, CQ_E_ARG, "cq_lm_load: %s is not a weight qtype", cq_qtype_name(q));
        }
    }
    char *cfg = NULL, *qmap = NULL;
    cq_hfconfig *config = NULL;
    cq__gguf_hf *gguf = NULL;
    cq_status st = CQ_OK;
    if (cq__is_gguf_file(path)) { /* converted in memory, by the rules of `cquanto convert` */
        st = cq__gguf_hf_open(path, CQ_DTYPE_INVALID, &gguf, err);
        if (!st) st = cq__gguf_hf_to_ckpt(gguf, &lm->ckpt, err);
        if (!st) st = cq_hfconfig_parse(cq__gguf_hf_config(gguf), strlen(cq__gguf_hf_config(gguf)), path, &config, err);
    } else {
        st = cq_ckpt_open(path, &lm->ckpt, err);
        if (!st) st = cq_ckpt_folder_file(lm->ckpt, "quanto_qmap.json", &qmap, err);
        if (!st && qmap) st = cq__qmodules_find(lm->ckpt, NULL, &lm->qmods, err);
        if (!st) st = cq_ckpt_folder_file(lm->ckpt, "config.json", &cfg, err);
        if (!st && !cfg) st = cq_err_set(err, CQ_E_NOTFOUND, "%s: no config.json beside the weights", path);
        if (!st) st = cq_hfconfig_load(cfg, &config, err);
    }
    free(qmap);
    if (!st) st = read_config(lm, config, cfg ? cfg : path, &o, err);
    cq_hfconfig_free(config);
    free(cfg);
    lm->batch = o.batch > 0 ? o.batch : LM_DEFAULT_BATCH;
    if (lm->batch > lm->context) lm->batch = lm->context;
    if (!st) st = load_weights(lm, err);
    if (!st) st = alloc_arena(lm, err);
    if (!st) st = ensure_work(lm, err);
    if (!st) st = load_tokenizer(lm, &o, gguf, err);
    cq__gguf_hf_free(gguf);
    if (!st && lm->tok && cq_tokenizer_vocab_size(lm->tok) > lm->vocab)
        st = cq_err_set(err, CQ_E_FORMAT, "%s: the tokenizer has %lld tokens, the model %lld", path,
                        (long long)cq_tokenizer_vocab_size(lm->tok), (long long)lm->vocab);
    if (st) {
        cq_lm_free(lm);
        return st;
    }
    *out = lm;
    return CQ_OK;
}

void cq_lm_get_info(const cq_lm *lm, cq_lm_info *info) {
    if (!lm || !info) return;
    memset(info, 0, sizeof *info);
    info->model_type = lm->model_type;
    info->vocab = lm->vocab, info->hidden = lm->hidden, info->intermediate = lm->inter;
    info->layers = lm->layers, info->heads = lm->heads, info->kv_heads = lm->kv_heads, info->head_dim = lm->head_dim;
    info->context = lm->context;
    info->rope_theta = lm->rope_theta, info->rms_eps = lm->rms_eps;
    info->tied_head = lm->tied;
    info->weight_dtype = lm->wdtype;
    info->weight_qtype = lm->wqtype;
    info->quantized = lm->quantized;
    info->weight_bytes = lm->weight_bytes;
    info->cache_bytes = lm->cache_bytes;
    info->bos = lm->bos_id;
    info->n_eos = lm->n_eos;
    memcpy(info->eos, lm->eos_ids, sizeof info->eos);
}

const cq_tokenizer *cq_lm_tokenizer(const cq_lm *lm) { return lm ? lm->tok : NULL; }
void cq_lm_reset(cq_lm *lm) {
    if (lm) lm->pos = 0;
}
int64_t cq_lm_position(const cq_lm *lm) { return lm ? lm->pos : 0; }

/* ---- forward ------------------------------------------------------------------------------ */

/* y = w * (x / sqrt(mean(x^2) + eps)) per row, as LlamaRMSNorm (f32 throughout). */
static void rms_norm(const float *x, const float *w, float *y, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float ss = 0.0f;
        for (int64_t i = 0; i < n; i++) ss = fmaf(xr[i], xr[i], ss);
        float inv = 1.0f / sqrtf(ss / (float)n + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = w[i] * (xr[i] * inv);
    }
}

/* Rotates each head of v (heads x d) by position pos. */
static void rope(const cq_lm *lm, float *v, int64_t heads, int64_t pos) {
    int64_t d = lm->head_dim, half = d / 2;
    for (int64_t i = 0; i < half; i++) {
        float ang = (float)pos * lm->inv_freq[i], c = cosf(ang), s = sinf(ang);
        for (int64_t h = 0; h < heads; h++) {
            float *hv = v + h * d;
            int64_t a = lm->rope == CQ_ROPE_HALF ? i : 2 * i, b = lm->rope == CQ_ROPE_HALF ? i + half : 2 * i + 1;
            float x0 = hv[a], x1 = hv[b];
            hv[a] = x0 * c - x1 * s;
            hv[b] = x1 * c + x0 * s;
        }
    }
}

/* calibrate.py's _updated_scale with absmax_scale(x, qint8) as the new observation. */
static cq_status observe(const cq_lm *lm, const float *x, int64_t n, float *scale, cq_err *err) {
    cq_tensor *view = NULL, *s = NULL;
    int64_t shape[1] = {n};
    cq_status st = cq_tensor_view(&view, CQ_F32, 1, shape, (void *)x, err);
    if (!st) st = cq_absmax_scale(view, CQ_QINT8, CQ_AXIS_NONE, &s, err);
    if (!st) {
        float fresh = ((const float *)s->data)[0];
        *scale = *scale == 1.0f ? fresh : lm->momentum * *scale + fresh * lm->one_minus;
    }
    cq_tensor_free(s);
    cq_tensor_free(view);
    return st;
}

/* y[M][ldy] = x[M][in] . W^T (+ bias), with quanto's activation quantization around it when the
 * module has it: observe (calibration), quantize the input (int8 codes for the W8A8 matmul, else
 * quantize + dequantize), then observe and quantize + dequantize the output. */
static cq_status linear(cq_lm *lm, lm_linear *l, int64_t M, const float *x, float *y, int64_t ldy, cq_err *err) {
    cq_matmul_opts o = cq_matmul_default_opts();
    o.mode = lm->mode;
    o.bias = l->bias;
    o.work = lm->work;
    o.work_size = lm->work_size;
    const void *xin = x;
    cq_dtype xt = CQ_F32;
    if (l->act != CQ_QNONE) {
        int64_t n = M * l->in;
        if (lm->calibrating) CQ__TRY(observe(lm, x, n, &l->in_scale, err));
        cq_vec_quantize_i8(x, CQ_F32, n, l->in_scale, lm->xq);
        if (l->w8a8) {
            xin = lm->xq, xt = CQ_I8;
            o.x_scale = l->in_scale;
        } else {
            cq_vec_dequantize_i8(lm->xq, n, l->in_scale, lm->xf, CQ_F32);
            xin = lm->xf;
        }
    }
    CQ__TRY(cq_matmul(l->w, M, xin, xt, l->in, y, CQ_F32, ldy, &o, err));
    if (l->act != CQ_QNONE) { /* the layers' outputs are contiguous rows (ldy == out) */
        int64_t n = M * l->out;
        if (lm->calibrating) CQ__TRY(observe(lm, y, n, &l->out_scale, err));
        cq_vec_quantize_i8(y, CQ_F32, n, l->out_scale, lm->xq);
        cq_vec_dequantize_i8(lm->xq, n, l->out_scale, y, CQ_F32);
    }
    return CQ_OK;
}

lm_linear *cq__lm_linear_at(const cq_lm *lm, int64_t i) {
    if (i < 0 || i >= 7 * lm->layers) return NULL;
    lm_layer *L = &lm->layer[i / 7];
    lm_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    return ls[i % 7];
}

/* Causal attention of T new tokens (positions p0 ..) over the cache of layer li. */
static void attention(cq_lm *lm, int64_t li, int64_t T, int64_t p0) {
    int64_t d = lm->head_dim, qd = lm->heads * d, kvd = lm->kv_heads * d, group = lm->heads / lm->kv_heads;
    const float *kc = lm->kcache + (size_t)(li * lm->context) * (size_t)kvd;
    const float *vc = lm->vcache + (size_t)(li * lm->context) * (size_t)kvd;
    float scale = 1.0f / sqrtf((float)d);
    const cq__attn_scores_fn scores = CQ__VEC(attn_scores); /* SIMD, the same sums at every level */
    const cq__attn_values_fn values = CQ__VEC(attn_values);
    int64_t units = T * lm->heads;
    int nt = lm->nscores;
    if (units * (p0 + T) * d < 65536) nt = 1;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t u = 0; u < units; u++) {
#ifdef _OPENMP
        float *sc = lm->scores + (size_t)omp_get_thread_num() * (size_t)lm->context;
#else
        float *sc = lm->scores;
#endif
        int64_t t = u / lm->heads, h = u % lm->heads, kvh = h / group, n = p0 + t + 1;
        const float *q = lm->q + t * qd + h * d;
        scores(q, kc + kvh * d * lm->context, lm->context, n, d, scale, sc);
        float mx = -INFINITY;
        for (int64_t j = 0; j < n; j++)
            if (sc[j] > mx) mx = sc[j];
        float sum = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            sc[j] = expf(sc[j] - mx);
            sum += sc[j];
        }
        float inv = 1.0f / sum;
        for (int64_t j = 0; j < n; j++) sc[j] *= inv;
        float *o = lm->att + t * qd + h * d;
        for (int64_t i = 0; i < d; i++) o[i] = 0.0f;
        values(sc, vc + kvh * d, kvd, n, d, o);
    }
}

/* One chunk of T <= batch tokens at positions pos ..; logits of its rows r0 .. T-1 (none when
 * r0 >= T). */
static cq_status forward_chunk(cq_lm *lm, const int32_t *ids, int64_t T, float *logits, int64_t r0, cq_err *err) {
    int64_t H = lm->hidden, d = lm->head_dim, qd = lm->heads * d, kvd = lm->kv_heads * d, p0 = lm->pos;
    float eps = (float)lm->rms_eps;
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < H; i++) lm->x[t * H + i] = cq_load_f32(lm->embed->data, lm->embed->dtype, ids[t] * H + i);
    for (int64_t li = 0; li < lm->layers; li++) {
        lm_layer *L = &lm->layer[li];
        rms_norm(lm->x, L->attn_norm, lm->xn, T, H, eps);
        CQ__TRY(linear(lm, &L->q, T, lm->xn, lm->q, qd, err));
        CQ__TRY(linear(lm, &L->k, T, lm->xn, lm->k, kvd, err));
        CQ__TRY(linear(lm, &L->v, T, lm->xn, lm->v, kvd, err));
        float *kc = lm->kcache + (size_t)(li * lm->context) * (size_t)kvd;
        float *vc = lm->vcache + (size_t)(li * lm->context) * (size_t)kvd;
        for (int64_t t = 0; t < T; t++) {
            rope(lm, lm->q + t * qd, lm->heads, p0 + t);
            rope(lm, lm->k + t * kvd, lm->kv_heads, p0 + t);
            for (int64_t i = 0; i < kvd; i++) kc[i * lm->context + p0 + t] = lm->k[t * kvd + i]; /* transposed */
            memcpy(vc + (p0 + t) * kvd, lm->v + t * kvd, (size_t)kvd * sizeof(float));
        }
        attention(lm, li, T, p0);
        CQ__TRY(linear(lm, &L->o, T, lm->att, lm->xn, H, err));
        for (int64_t i = 0; i < T * H; i++) lm->x[i] += lm->xn[i];
        rms_norm(lm->x, L->mlp_norm, lm->xn, T, H, eps);
        CQ__TRY(linear(lm, &L->gate, T, lm->xn, lm->gate, lm->inter, err));
        CQ__TRY(linear(lm, &L->up, T, lm->xn, lm->up, lm->inter, err));
        for (int64_t i = 0; i < T * lm->inter; i++) {
            float g = lm->gate[i];
            lm->gate[i] = g / (1.0f + expf(-g)) * lm->up[i]; /* silu(gate) * up */
        }
        CQ__TRY(linear(lm, &L->down, T, lm->gate, lm->xn, H, err));
        for (int64_t i = 0; i < T * H; i++) lm->x[i] += lm->xn[i];
    }
    lm->pos += T;
    if (r0 >= T) return CQ_OK;
    int64_t rows = T - r0;
    rms_norm(lm->x + r0 * H, lm->final_norm, lm->xn, rows, H, eps);
    return linear(lm, &lm->head, rows, lm->xn, logits, lm->vocab, err);
}

cq_status cq_lm_forward(cq_lm *lm, const int32_t *ids, int64_t n, float *logits, int64_t logits_from, cq_err *err) {
    CQ__ARG(lm);
    if (n <= 0 || !ids) return cq_err_set(err, CQ_E_ARG, "cq_lm_forward: no tokens");
    if (logits_from < 0 || logits_from > n || (logits_from < n && !logits))
        return cq_err_set(err, CQ_E_ARG, "cq_lm_forward: logits_from %lld is not in 0..%lld, or logits is NULL",
                          (long long)logits_from, (long long)n);
    if (n > lm->context - lm->pos)
        return cq_err_set(err, CQ_E_ARG, "cq_lm_forward: %lld tokens after %lld exceed the context of %lld tokens",
                          (long long)n, (long long)lm->pos, (long long)lm->context);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= lm->vocab)
            return cq_err_set(err, CQ_E_ARG, "cq_lm_forward: token %d at %lld is not in 0..%lld", ids[i], (long long)i,
                              (long long)lm->vocab - 1);
    CQ__TRY(ensure_work(lm, err));
    for (int64_t s = 0; s < n; s += lm->batch) {
        int64_t T = n - s < lm->batch ? n - s : lm->batch;
        int64_t r0 = logits_from > s ? logits_from - s : 0; /* first row of this chunk with logits */
        float *lg = r0 < T ? logits + (s + r0 - logits_from) * lm->vocab : NULL;
        CQ__TRY(forward_chunk(lm, ids + s, T, lg, r0, err));
    }
    return CQ_OK;
}
