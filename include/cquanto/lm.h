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
 * Two formats, told apart by their first byte:
 *  - Hugging Face tokenizer.json with a BPE model, run as the `tokenizers` library runs it:
 *    added tokens split out first, normalizer (Prepend, Replace), pre-tokenizer (ByteLevel with
 *    the GPT-2 regex, Split on a regex, Digits, Metaspace), BPE by merge rank with byte_fallback,
 *    unk and ignore_merges, and the TemplateProcessing specials (BOS) when add_bos; decoding as
 *    its decoder says (ByteLevel, Metaspace, Replace + ByteFallback + Fuse + Strip), special
 *    tokens skipped. Anything else in the file is refused by name.
 *  - llama2.c's tokenizer file (tok512.bin ...): int32 max_token_length, then per token a
 *    float32 score, an int32 byte length and the bytes. Encoding is SentencePiece BPE as
 *    llama2.c runs it: a dummy-prefix space, one token per UTF-8 character found in the
 *    vocabulary (else one byte-fallback token <0xXX> per byte), then repeatedly the adjacent
 *    pair whose concatenation is in the vocabulary with the highest score (the leftmost on
 *    ties) is merged. Token 1 is BOS, 2 is EOS. Decoding maps <0xXX> to its byte, BOS and EOS
 *    to nothing, and drops the leading space of the token after BOS.
 * docs/LM.md gives the details and the one divergence. */
typedef struct cq_tokenizer cq_tokenizer;

/* Reads the file at path: a tokenizer.json, a llama2.c tokenizer, or a GGUF model (the tokenizer
 * its metadata describes, as `cquanto convert` writes it). CQ_E_FORMAT naming the file and the
 * token for a malformed one. */
CQ_API cq_status cq_tokenizer_load(const char *path, cq_tokenizer **out, cq_err *err);
/* The same from memory (copied); label names it in errors. */
CQ_API cq_status cq_tokenizer_parse(const void *data, size_t size, const char *label, cq_tokenizer **out,
                                    cq_err *err);
CQ_API void cq_tokenizer_free(cq_tokenizer *t); /* accepts NULL */
CQ_API int64_t cq_tokenizer_vocab_size(const cq_tokenizer *t);
/* BOS: llama2.c's 1, or the template's first special token; EOS: llama2.c's 2, or the first
 * special added token named </s>, <|endoftext|>, <|end_of_text|>, <|eot_id|> or <|im_end|>.
 * -1 when there is none. */
CQ_API int32_t cq_tokenizer_bos(const cq_tokenizer *t);
CQ_API int32_t cq_tokenizer_eos(const cq_tokenizer *t);
/* The token's string as stored (NULL for an id no entry names); *len gets its length. */
CQ_API const char *cq_tokenizer_token(const cq_tokenizer *t, int32_t id, size_t *len);
/* Encodes text[0 .. len) (any bytes; invalid UTF-8 falls back to bytes), BOS first (the
 * template's specials around the text) when add_bos: *ids (malloc'd, free()) and *n.
 * O(n log n) in the text's length. */
CQ_API cq_status cq_tokenizer_encode(const cq_tokenizer *t, const char *text, size_t len, bool add_bos,
                                     int32_t **ids, int64_t *n, cq_err *err);
/* The bytes token id decodes to when it follows token prev (-1 at the start; the leading
 * space the format drops at the start is dropped after -1 and BOS): NULL for an id out of
 * range; *len gets their count (0 for control tokens). Borrowed until the tokenizer is freed;
 * not NUL-terminated. For streaming output; cq_tokenizer_decode is exact for a whole sequence. */
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
    const char *tokenizer; /* tokenizer file; NULL: tokenizer.json, tok512.bin or tokenizer.bin in the folder */
    /* Quantize-on-load of a float checkpoint: every Linear of the layers (not the embedding or
     * the head) to this qtype (CQ_QNONE: keep floats), with quanto's optimizer and group-size
     * rules (cq_qweight_quantize). A quanto folder (quanto_qmap.json) is loaded as quantized
     * whatever this says. */
    cq_qtype weights;
    cq_optimizer_kind optimizer;
    int64_t group_size;    /* -1: quanto's module rule; 0: per channel; > 0: explicit */
    /* Static activation quantization of those Linears on load (CQ_QNONE or CQ_QINT8), with
     * scales of 1 until cq_lm_calibrate sets them. */
    cq_qtype activations;
    /* The output head (lm_head, or the embedding when tied): CQ_QNONE (default) keeps it as
     * stored, as optimum-quanto does; a weight qtype quantizes it on load like the layers'
     * Linears (no activation quantization), as llama.cpp quantizes its output tensor. Applies
     * to float heads only (a quanto folder's head is loaded as its map says). */
    cq_qtype head;
} cq_lm_opts;
CQ_API cq_lm_opts cq_lm_default_opts(void);

/* Loads the folder (or one .safetensors file beside its config.json): weights are repacked for
 * cq_matmul in their stored dtype (float, or quanto's codes and scales for the modules
 * quanto_qmap.json names), the embedding is read from the file's mapping. A module with qint8
 * activations runs as quanto's does: its input quantized with input_scale (with qint8 weights,
 * the W8A8 integer matmul), its output quantized and dequantized with output_scale. float8
 * activations are refused, naming the module. */
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
    int32_t bos;            /* config.json's bos_token_id, -1 when absent */
    int32_t eos[4];         /* its eos_token_id (one or a list), n_eos of them */
    int n_eos;
} cq_lm_info;
CQ_API void cq_lm_get_info(const cq_lm *lm, cq_lm_info *info);
/* The tokenizer found or named at load, NULL if none. */
CQ_API const cq_tokenizer *cq_lm_tokenizer(const cq_lm *lm);

/* Empties the KV cache: the next forward starts at position 0. */
CQ_API void cq_lm_reset(cq_lm *lm);
CQ_API int64_t cq_lm_position(const cq_lm *lm); /* tokens in the cache */
/* Runs ids[0 .. n) at the next positions, appending them to the cache. logits gets the vocab
 * logits of tokens logits_from .. n-1 ([n - logits_from][vocab]): n - 1 for the last token only
 * (generation), 0 for all (scoring); n for none (logits may then be NULL). The head runs only
 * for those rows. CQ_E_ARG if an id is out of range or the cache would overflow (naming the
 * context length). */
CQ_API cq_status cq_lm_forward(cq_lm *lm, const int32_t *ids, int64_t n, float *logits, int64_t logits_from,
                               cq_err *err);

/* --- lm: evaluation -----------------------------------------------------------------------
 * Perplexity by llama.cpp's protocol (llama-perplexity): the token stream is cut into whole
 * chunks of n_ctx tokens; each chunk runs from an empty cache with its first token replaced by
 * BOS, and only the second half is scored: the logits at positions n_ctx/2 .. n_ctx-2 against
 * the next token, n_ctx - 1 - n_ctx/2 tokens per chunk. PPL = exp(mean NLL), and its error is
 * PPL * sqrt(var(NLL) / (count - 1)), as llama.cpp prints "PPL = x +/- y". With a base model
 * (the float original), the same chunks also run through it and every scored position gives
 * KL(base || model) over the vocabulary, the change in the correct token's probability and
 * whether the top tokens agree (llama.cpp's --kl-divergence, computed from full-precision base
 * logits in the same pass rather than from a 16-bit log-probability file). Sums run in token
 * order, so results never depend on the thread count. docs/LM.md gives the formulas. */
typedef struct cq_ppl_opts {
    int64_t n_ctx;      /* tokens per chunk (llama.cpp's -c); 0: min(512, the model's context) */
    int64_t max_chunks; /* 0: every whole chunk */
    int32_t bos;        /* replaces each chunk's first token; -1 keeps it */
    /* called after each chunk with the running perplexity (may be NULL) */
    void (*progress)(void *user, int64_t chunk, int64_t chunks, double ppl);
    void *user;
} cq_ppl_opts;
CQ_API cq_ppl_opts cq_ppl_default_opts(void);

typedef struct cq_ppl_result {
    int64_t n_ctx, chunks, scored; /* tokens per chunk, chunks run, positions scored */
    double ppl, ppl_err;
    /* with a base model (zero otherwise) */
    double base_ppl, base_ppl_err;
    double ln_ratio, ln_ratio_err; /* mean of NLL - NLL_base: ln(PPL / PPL_base) */
    double kld, kld_err;           /* mean KL(base || model) in nats, and its standard error */
    double kld_max, kld_p999, kld_p99, kld_p90, kld_median;
    double same_top;               /* fraction of positions whose argmax agrees with the base's */
    double dp_mean, dp_rms;        /* p(correct token) - p_base(correct token) */
} cq_ppl_result;

/* Scores tokens[0 .. n) (n >= 2 * n_ctx) with lm, and with base when not NULL (same vocabulary).
 * Both caches are reset before each chunk and left holding the last one. */
CQ_API cq_status cq_lm_perplexity(cq_lm *lm, cq_lm *base, const int32_t *tokens, int64_t n, const cq_ppl_opts *opts,
                                  cq_ppl_result *out, cq_err *err);

/* --- lm: calibration ----------------------------------------------------------------------
 * optimum-quanto's Calibration (streamline off, docs/LM.md): chunks of n_ctx tokens (BOS first,
 * each from an empty cache) run through the model; before each quantized-activation Linear its
 * input's absmax / 127 updates input_scale, after it the output's updates output_scale:
 * the first observation replaces the scale while it is 1, later ones give
 * momentum * scale + new * (1 - momentum); the activations are then quantized with the updated
 * scale, as quanto does in the same pass. */
typedef struct cq_calib_opts {
    int64_t n_ctx;      /* tokens per chunk; 0: min(256, context); at most the load's batch */
    int64_t max_chunks; /* 0: every whole chunk */
    double momentum;    /* 0.9 (quanto's default) */
    int32_t bos;        /* replaces each chunk's first token; -1 keeps it */
    void (*progress)(void *user, int64_t chunk, int64_t chunks);
    void *user;
} cq_calib_opts;
CQ_API cq_calib_opts cq_calib_default_opts(void);
CQ_API cq_status cq_lm_calibrate(cq_lm *lm, const int32_t *tokens, int64_t n, const cq_calib_opts *opts, cq_err *err);
/* The scales of quantized-activation module i (0 .. count-1, in layer order, q k v o gate up
 * down); returns the count, and fills name (borrowed) and the scales when i is in range. */
CQ_API int64_t cq_lm_activation_scales(const cq_lm *lm, int64_t i, const char **name, float *input_scale,
                                       float *output_scale);
/* Writes the quanto folder the model was loaded from to out_dir with its current input and
 * output scales: every shard and side file copied, the scale tensors replaced. Atomic (a temp
 * folder renamed); CQ_E_EXISTS for an existing out_dir unless overwrite. CQ_E_ARG when the
 * model was not loaded from a quanto folder. */
CQ_API cq_status cq_lm_save_calibrated(const cq_lm *lm, const char *out_dir, bool overwrite, cq_err *err);

/* --- lm: sampling -------------------------------------------------------------------------
 * temperature <= 0: the argmax (the lowest id among equal maxima). Otherwise softmax of
 * logits / temperature over the top_k most likely ids (top_k <= 0: all), restricted further to
 * the smallest set of most likely ids whose mass reaches top_p (top_p >= 1: no cut), drawn with
 * the xorshift generator in *rng (advanced; NULL: a fixed seed). Ties in probability order by
 * id, so a seed reproduces a draw on every machine. */
CQ_API int32_t cq_lm_sample(const float *logits, int64_t vocab, float temperature, int top_k, float top_p,
                            uint64_t *rng);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_LM_H */
