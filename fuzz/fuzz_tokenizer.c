/*
 * fuzz_tokenizer.c - libFuzzer target for the tokenizer readers (cq_tokenizer_parse: llama2.c's
 * tokenizer.bin and Hugging Face's tokenizer.json) and their encoders: an accepted file must
 * encode fixed texts and the input's own bytes to ids inside the vocabulary, and decode them
 * again. Corpus: fuzz/corpus/tokenizer.
 */
#include "cquanto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void encode_decode(const cq_tokenizer *t, const char *text, size_t n) {
    int32_t *ids = NULL;
    int64_t k = 0;
    cq_err err = {0};
    if (cq_tokenizer_encode(t, text, n, true, &ids, &k, &err) != CQ_OK) abort();
    int32_t bos = cq_tokenizer_bos(t);
    if (bos >= 0 && (k < 1 || ids[0] != bos)) abort(); /* the template's BOS comes first */
    for (int64_t i = 0; i < k; i++)
        if (ids[i] < 0 || ids[i] >= cq_tokenizer_vocab_size(t)) abort();
    char *back = NULL;
    size_t len = 0;
    if (cq_tokenizer_decode(t, ids, k, &back, &len, &err) != CQ_OK || strlen(back) > len) abort();
    free(back);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cq_tokenizer *t = NULL;
    cq_err err = {0};
    if (cq_tokenizer_parse(data, size, "fuzz", &t, &err) != CQ_OK) {
        if (t || !err.msg[0]) abort();
        return 0;
    }
    static const char *const texts[] = {"", "Once upon a time", "\xff\xfe\xc3", "a  b\n\t<0x41>"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) encode_decode(t, texts[i], strlen(texts[i]));
    encode_decode(t, (const char *)data, size < 4096 ? size : 4096);
    cq_tokenizer_free(t);
    return 0;
}
