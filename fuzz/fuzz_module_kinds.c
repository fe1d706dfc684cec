/*
 * fuzz_module_kinds.c - libFuzzer target for --module-kinds files (cq__module_kinds_parse). An
 * accepted file gives every module a known kind, found again by name, whose name reads back as
 * the same kind; a refused one leaves nothing allocated and says why in one line. Corpus:
 * fuzz/corpus/module_kinds.
 */
#include "io/hf_modules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cq__module_kinds k;
    cq_err err = {0};
    if (cq__module_kinds_parse((const char *)data, size, "fuzz", &k, &err) != CQ_OK) {
        if (k.n || k.module || k.label || !err.msg[0] || strchr(err.msg, '\n')) abort();
        return 0;
    }
    for (int64_t i = 0; i < k.n; i++) {
        cq_layer_kind back;
        if (k.kind[i] == CQ_LAYER_UNKNOWN || cq__module_kinds_get(&k, k.module[i]) != k.kind[i] ||
            cq_layer_kind_parse(cq_layer_kind_name(k.kind[i]), &back, NULL) != CQ_OK || back != k.kind[i])
            abort();
    }
    cq__module_kinds_free(&k);
    return 0;
}
