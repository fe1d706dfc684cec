/*
 * fuzz_qmap.c - libFuzzer target for the quanto_qmap.json reader (cq_qmap_parse). Accepted
 * maps are written back and re-read: the second reading must give the same modules and
 * qtypes, and writing again the same text. Corpus: fuzz/corpus/qmap.
 */
#include "cquanto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cq_qmap *m = NULL;
    cq_err err = {0};
    if (cq_qmap_parse((const char *)data, size, "fuzz", &m, &err) != CQ_OK) {
        if (m || !err.msg[0]) abort();
        return 0;
    }
    char *text = NULL, *again = NULL;
    cq_qmap *m2 = NULL;
    if (cq_qmap_to_json(m, &text, &err) != CQ_OK) abort();
    if (cq_qmap_parse(text, strlen(text), "fuzz-again", &m2, &err) != CQ_OK) abort();
    if (cq_qmap_count(m2) != cq_qmap_count(m)) abort();
    for (int64_t i = 0; i < cq_qmap_count(m); i++)
        if (strcmp(cq_qmap_module(m, i), cq_qmap_module(m2, i)) || cq_qmap_weights(m, i) != cq_qmap_weights(m2, i) ||
            cq_qmap_activations(m, i) != cq_qmap_activations(m2, i) || cq_qmap_find(m, cq_qmap_module(m, i)) != i)
            abort();
    if (cq_qmap_to_json(m2, &again, &err) != CQ_OK || strcmp(text, again)) abort();
    free(text);
    free(again);
    cq_qmap_free(m);
    cq_qmap_free(m2);
    return 0;
}
