/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors header parser and validator
 * (cq_st_open_memory). Any input must be refused cleanly or yield a handle whose tensors
 * tile the data region exactly, are aligned, and are found again by name; every byte of an
 * accepted tensor is read so ASan sees any out-of-bounds view. `make fuzz` runs it; the replay
 * driver feeds fuzz/corpus/safetensors to it in `make test`.
 */
#include "cquanto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cq_err err = {0};
    cq_st_file *f = NULL;
    if (cq_st_open_memory(data, size, "fuzz", &f, &err) != CQ_OK) {
        if (f || !err.msg[0]) abort(); /* a refusal always explains itself */
        return 0;
    }
    uint64_t total = 0;
    volatile uint8_t sink = 0;
    for (int64_t i = 0; i < cq_st_count(f); i++) {
        const cq_tensor *t = cq_st_tensor(f, i);
        size_t n = cq_tensor_nbytes(t);
        if (n && (uintptr_t)t->data % cq_dtype_size(t->dtype)) abort();
        for (size_t k = 0; k < n; k++) sink ^= ((const uint8_t *)t->data)[k];
        if (cq_st_find(f, cq_st_name(f, i)) != i) abort();
        total += n;
    }
    if (total != cq_st_data_size(f)) abort();
    for (int64_t i = 0; i < cq_st_metadata_count(f); i++)
        if (!cq_st_metadata(f, cq_st_metadata_key(f, i)) || !cq_st_metadata_value(f, i)) abort();
    (void)sink;
    cq_st_close(f);
    return 0;
}
