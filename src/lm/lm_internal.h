/*
 * lm_internal.h - the decoder's state (struct cq_lm): its weights as cq_matmul operands, the
 * KV cache and the activation arena, all allocated at load. Private to src/lm; never installed.
 */
#ifndef CQ_LM_INTERNAL_H
#define CQ_LM_INTERNAL_H

#include "core/internal.h"
#include "convert/convert_internal.h" /* quanto module state of a quantized folder */

/* One Linear: the repacked weight and its bias (f32, NULL when the checkpoint has none), and
 * quanto's static activation quantization when act is set. */
typedef struct lm_linear {
    cq_mm_weight *w;
    float *bias;
    int64_t in, out;
    cq_qtype act;            /* CQ_QNONE or CQ_QINT8 */
    bool w8a8;               /* qint8 weights too: the integer matmul */
    float in_scale, out_scale;
    char *name;              /* the module, for the scale accessors and the writer */
} lm_linear;

typedef struct lm_layer {
    float *attn_norm, *mlp_norm; /* RMSNorm weights [hidden], f32 */
    lm_linear q, k, v, o, gate, up, down;
} lm_layer;

struct cq_lm {
    cq_ckpt *ckpt;          /* kept open: the embedding is read from its mapping */
    const cq_tensor *embed; /* [vocab, hidden] */
    char model_type[16];
    int64_t vocab, hidden, inter, layers, heads, kv_heads, head_dim, max_pos;
    int64_t context, batch;
    double rms_eps, rope_theta;
    int tie_config;          /* tie_word_embeddings: 1, 0, or -1 when absent */
    int32_t bos_id, eos_ids[4]; /* config.json's bos_token_id and eos_token_id (-1 / none) */
    int n_eos;
    bool tied;
    cq_rope_layout rope;
    cq_matmul_mode mode;
    cq_dtype wdtype;
    size_t weight_bytes, cache_bytes;
    lm_layer *layer;
    float *final_norm;
    lm_linear head;
    float *inv_freq;         /* [head_dim / 2] */
    /* K: [layers][kv_heads * head_dim][context] (transposed: the keys along the SIMD lanes of the
     * score kernel); V: [layers][context][kv_heads * head_dim] */
    float *kcache, *vcache;
    int64_t pos;             /* tokens in the cache */
    /* arena: [batch] rows of each activation */
    float *arena, *x, *xn, *q, *att, *k, *v, *gate, *up;
    float *scores;           /* [nscores][context]: one row per thread */
    int nscores;
    void *work;              /* cq_matmul scratch for work_threads threads */
    size_t work_size;
    int work_threads;
    cq_tokenizer *tok;
    cq__qmodules qmods;      /* quanto folders: the quantized modules; n == 0 otherwise */
    cq_qtype quantize_to;    /* quantize-on-load */
    cq_optimizer_kind optimizer;
    int64_t group_size;
    cq_qtype wqtype;
    int64_t quantized;
    cq_qtype quantize_act;   /* activations for quantize-on-load */
    cq_qtype quantize_head;  /* the head, quantized on load (cq_lm_opts.head) */
    bool calibrating;
    float momentum, one_minus;
    int8_t *xq;              /* [batch][max in_features]: int8 activations */
    float *xf;               /* [batch][max in_features]: fake-quantized activations */
};

/* The Linears of the layers in order (q k v o gate up down per layer); NULL past the end. */
lm_linear *cq__lm_linear_at(const cq_lm *lm, int64_t i);

#endif
