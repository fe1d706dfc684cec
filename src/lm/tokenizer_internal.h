/*
 * tokenizer_internal.h - what the two tokenizer readers share: the tokenizer object (pieces,
 * their decoded bytes, special ids), and the BPE merge engine both encoders run (llama2.c's
 * merges by score, Hugging Face's by rank). Private to src/lm; never installed.
 */
#ifndef CQ_LM_TOKENIZER_INTERNAL_H
#define CQ_LM_TOKENIZER_INTERNAL_H

#include "core/internal.h"
#include "core/strmap.h"

typedef enum { CQ__TOK_LLAMA2C, CQ__TOK_HF_BPE } cq__tok_kind;

typedef struct cq__hf_tok cq__hf_tok; /* tokenizer_hf.c */

struct cq_tokenizer {
    cq__tok_kind kind;
    int64_t n;            /* ids 0 .. n-1 */
    char **piece;         /* each id's token string as stored (NULL for an id no entry names) */
    uint32_t *len;
    char **dec;           /* the bytes each id decodes to */
    uint32_t *dec_len;
    bool *control;        /* decodes to nothing (BOS, EOS, special added tokens) */
    cq__strmap index;     /* piece -> id (the first id of a duplicated piece) */
    int32_t bos, eos;     /* -1 when the format names none */
    /* decoding drops one leading space of the first token: after BOS (llama2.c), or at the start
     * and after a control token (the Strip / Metaspace decoders) */
    bool strip_after_bos, strip_at_start;
    /* llama2.c */
    float *score;
    int32_t byte_base;    /* id of <0x00> when the 256 byte tokens follow it in order, else -1 */
    int32_t space;        /* id of " " (the dummy prefix), -1 if absent */
    uint32_t max_len;
    cq__hf_tok *hf;       /* Hugging Face tokenizer.json */
};

/* "<0xXX>" (two upper-case hex digits): its byte, else -1. */
int cq__tok_byte_piece(const char *p, size_t len);

/* BPE merges over a sequence of symbols (ids). pair(ctx, left, right, &key, &merged) says
 * whether two adjacent ids merge, into which id, and with what priority: the pair with the
 * highest key merges first, the leftmost on equal keys, until no pair merges. ids is rewritten
 * in place; returns the new count, or -1 when out of memory. */
typedef bool (*cq__bpe_pair_fn)(const void *ctx, int32_t left, int32_t right, double *key, int32_t *merged);
int64_t cq__bpe_merge(int32_t *ids, int64_t n, cq__bpe_pair_fn pair, const void *ctx);

/* tokenizer_hf.c */
cq_status cq__hf_tok_parse(cq_tokenizer *t, const char *text, size_t size, const char *label, cq_err *err);
void cq__hf_tok_free(cq__hf_tok *h);
cq_status cq__hf_tok_encode(const cq_tokenizer *t, const char *text, size_t len, bool add_special, int32_t **ids,
                            int64_t *n, cq_err *err);

#endif
