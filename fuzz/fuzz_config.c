/*
 * fuzz_config.c - libFuzzer target for the config.json reader and writer (cq_hfconfig_*):
 * typed getters on the usual keys never crash; an accepted config, with a quantization_config
 * added, is written, re-read and written again to the same text (the Python-style emitter is
 * a fixed point). Corpus: fuzz/corpus/config.
 */
#include "cquanto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cq_hfconfig *c = NULL;
    cq_err err = {0};
    if (cq_hfconfig_parse((const char *)data, size, "fuzz", &c, &err) != CQ_OK) {
        if (c || !err.msg[0]) abort();
        return 0;
    }
    static const char *const keys[] = {"vocab_size", "hidden_size", "model_type", "rms_norm_eps",
                                       "tie_word_embeddings", "rope_scaling", "name", ""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int64_t v;
        double d;
        bool b;
        (void)cq_hfconfig_int(c, keys[i], &v, NULL);
        (void)cq_hfconfig_real(c, keys[i], &d, NULL);
        (void)cq_hfconfig_bool(c, keys[i], &b, NULL);
        (void)cq_hfconfig_str(c, keys[i]);
    }
    (void)cq_hfconfig_model_type(c);
    (void)cq_hfconfig_tie_word_embeddings(c);
    const char *keep[] = {"lm_head", NULL};
    if (cq_hfconfig_set_quantization(c, CQ_QINT4, CQ_QNONE, keep, &err) != CQ_OK) abort();
    char *text = NULL, *again = NULL;
    cq_hfconfig *c2 = NULL;
    if (cq_hfconfig_to_json(c, &text, &err) != CQ_OK) abort();
    if (cq_hfconfig_parse(text, strlen(text), "fuzz-again", &c2, &err) != CQ_OK) abort();
    if (cq_hfconfig_to_json(c2, &again, &err) != CQ_OK || strcmp(text, again)) abort();
    free(text);
    free(again);
    cq_hfconfig_free(c);
    cq_hfconfig_free(c2);
    return 0;
}
