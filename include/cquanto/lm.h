/*
 * cquanto/lm.h - the inference layer for language models: tokenizers, a Llama-family decoder
 * whose every Linear runs through cq_matmul on its weight as stored, a KV cache, and sampling.
 * Separate from the training stack (nn.h): no tape, no autograd, buffers preallocated at load.
 */
#ifndef CQUANTO_LM_H
#define CQUANTO_LM_H

#include "cquanto/kernels.h"
#include "cquanto/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * lm: tokenizers
 * ====================================================================================== */

/* --- lm: tokenizer ------------------------------------------------------------------------
 * llama2.c's tokenizer file (tok512.bin ...): int32 max_token_length, then per token a float32
 * score, an int32 byte length and the bytes; the vocabulary size is the number of records.
 * Encoding is SentencePiece BPE as llama2.c runs it: a dummy-prefix space, one token per UTF-8
 * character found in the vocabulary (else one byte-fallback token <0xXX> per byte), then
 * repeatedly the adjacent pair whose concatenation is in the vocabulary with the highest score
 * (the leftmost on ties) is merged. Token 1 is BOS, 2 is EOS. Decoding maps <0xXX> to its byte,
 * BOS and EOS to nothing, and drops the leading space of the token after BOS (docs/LM.md). */
typedef struct cq_tokenizer cq_tokenizer;

/* Reads the file at path; CQ_E_FORMAT naming the file and the token for a malformed one. */
CQ_API cq_status cq_tokenizer_load(const char *path, cq_tokenizer **out, cq_err *err);
/* The same from memory (copied); label names it in errors. */
CQ_API cq_status cq_tokenizer_parse(const void *data, size_t size, const char *label, cq_tokenizer **out,
                                    cq_err *err);
CQ_API void cq_tokenizer_free(cq_tokenizer *t); /* accepts NULL */
CQ_API int64_t cq_tokenizer_vocab_size(const cq_tokenizer *t);
CQ_API int32_t cq_tokenizer_bos(const cq_tokenizer *t);
CQ_API int32_t cq_tokenizer_eos(const cq_tokenizer *t);
/* The token's bytes as stored (NULL out of range); *len gets their count. */
CQ_API const char *cq_tokenizer_token(const cq_tokenizer *t, int32_t id, size_t *len);
/* Encodes text[0 .. len) (any bytes; invalid UTF-8 falls back to bytes), BOS first when
 * add_bos: *ids (malloc'd, free()) and *n. O(n log n) in the text's length. */
CQ_API cq_status cq_tokenizer_encode(const cq_tokenizer *t, const char *text, size_t len, bool add_bos,
                                     int32_t **ids, int64_t *n, cq_err *err);
/* The bytes token id decodes to when it follows token prev (-1 at the start): NULL for an id
 * out of range; *len gets their count (0 for BOS and EOS). Borrowed until the tokenizer is
 * freed; not NUL-terminated for byte tokens. */
CQ_API const char *cq_tokenizer_piece(const cq_tokenizer *t, int32_t prev, int32_t id, size_t *len);
/* The text of n ids: *text (malloc'd, NUL-terminated) and *len; CQ_E_ARG naming the first id
 * out of range. */
CQ_API cq_status cq_tokenizer_decode(const cq_tokenizer *t, const int32_t *ids, int64_t n, char **text, size_t *len,
                                     cq_err *err);

/* ======================================================================================
 * lm: Llama-family decoders
 * ====================================================================================== */

/* --- lm: model ----------------------------------------------------------------------------
 * A Hugging Face folder (config.json, model.safetensors or shards) of a LlamaForCausalLM,
 * MistralForCausalLM or Qwen2ForCausalLM (SmolLM and TinyLlama are Llama): token embedding,
 * per layer RMSNorm -> self-attention (RoPE, grouped-query heads, causal, KV cache) -> residual,
 * RMSNorm -> SwiGLU MLP -> residual, final RMSNorm, output head (tied to the embedding or
 * lm_head.weight). Linear biases are used where the checkpoint has them (Qwen2's q/k/v).
 * What the runtime cannot compute faithfully (rope_scaling, another hidden_act, a sliding
 * window shorter than the context ...) is refused, naming the config key. */
typedef struct cq_lm cq_lm;

typedef enum cq_rope_layout {
    CQ_ROPE_HALF = 0,    /* Hugging Face rotate_half: pairs (i, i + d/2) */
    CQ_ROPE_INTERLEAVED, /* Meta / GGUF: pairs (2i, 2i + 1) */
} cq_rope_layout;

typedef struct cq_lm_opts {
    cq_matmul_mode mode;  /* quantized weights: EXACT (quanto's arithmetic) or FAST */
    int64_t context;      /* KV cache length in tokens; 0: min(max_position_embeddings, 4096) */
    int64_t batch;        /* tokens one forward pass computes at most (longer inputs are split); 0: 256 */
    cq_rope_layout rope;  /* the q/k rows' layout (HF checkpoints: CQ_ROPE_HALF) */
    const char *tokenizer; /* tokenizer file; NULL: tok512.bin / tokenizer.bin in the folder, if any */
    /* Quantize-on-load of a float checkpoint: every Linear of the layers (not the embedding or
     * the head) to this qtype (CQ_QNONE: keep floats), with quanto's optimizer and group-size
     * rules (cq_qweight_quantize). A quanto folder (quanto_qmap.json) is loaded as quantized
     * whatever this says. */
    cq_qtype weights;
    cq_optimizer_kind optimizer;
    int64_t group_size;    /* -1: quanto's module rule; 0: per channel; > 0: explicit */
} cq_lm_opts;
CQ_API cq_lm_opts cq_lm_default_opts(void);

/* Loads the folder (or one .safetensors file beside its config.json): weights are repacked for
 * cq_matmul in their stored dtype (float, or quanto's codes and scales for the modules
 * quanto_qmap.json names), the embedding is read from the file's mapping. Modules with
 * quantized activations are refused (static activation scales are not run yet). */
CQ_API cq_status cq_lm_load(const char *path, const cq_lm_opts *opts, cq_lm **out, cq_err *err);
CQ_API void cq_lm_free(cq_lm *lm); /* accepts NULL */

typedef struct cq_lm_info {
    const char *model_type; /* config's model_type: "llama", "mistral", "qwen2" */
    int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim;
    int64_t context;        /* KV cache length */
    double rope_theta, rms_eps;
    bool tied_head;
    cq_dtype weight_dtype;  /* dtype of the float weights (F32, F16, BF16) */
    cq_qtype weight_qtype;  /* qtype of the quantized Linears (CQ_QNONE: all float) */
    int64_t quantized;      /* Linears running on quantized weights */
    size_t weight_bytes;    /* bytes the matmuls stream per token */
    size_t cache_bytes;     /* KV cache */
} cq_lm_info;
CQ_API void cq_lm_get_info(const cq_lm *lm, cq_lm_info *info);
/* The tokenizer found or named at load, NULL if none. */
CQ_API const cq_tokenizer *cq_lm_tokenizer(const cq_lm *lm);

/* Empties the KV cache: the next forward starts at position 0. */
CQ_API void cq_lm_reset(cq_lm *lm);
CQ_API int64_t cq_lm_position(const cq_lm *lm); /* tokens in the cache */
/* Runs ids[0 .. n) at the next positions, appending them to the cache. logits (may be NULL)
 * gets the vocab logits of the last token, or of all n tokens ([n][vocab]) when all_logits.
 * CQ_E_ARG if an id is out of range or the cache would overflow (naming the context length). */
CQ_API cq_status cq_lm_forward(cq_lm *lm, const int32_t *ids, int64_t n, float *logits, bool all_logits, cq_err *err);

/* --- lm: sampling -------------------------------------------------------------------------
 * temperature <= 0: the argmax (the lowest id among equal maxima). Otherwise softmax of
 * logits / temperature, restricted to the smallest set of most likely ids whose mass reaches
 * top_p (top_p >= 1: all), drawn with the xorshift generator in *rng (never 0; advanced). */
CQ_API int32_t cq_lm_sample(const float *logits, int64_t vocab, float temperature, float top_p, uint64_t *rng);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_LM_H */
