/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader (cq_gguf_open_memory) and ggml
 * dequantization. Any input must be refused cleanly (with a message) or yield a handle whose
 * keys and tensors are found again by name, whose every metadata element reads back, whose
 * tensors lie one after another inside the input at aligned offsets, and whose first blocks
 * dequantize; every byte of an accepted tensor is read so ASan sees any out-of-bounds view.
 * `make fuzz` runs it; the replay driver feeds fuzz/corpus/gguf to it in `make test`.
 */
#include "cquanto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every element of metadata key k through the getter its type calls for. */
static void walk_kv(const cq_gguf *g, int64_t k) {
    const char *key = cq_gguf_kv_key(g, k);
    if (!key || cq_gguf_kv_find(g, key) != k) abort();
    cq_gguf_type t = cq_gguf_kv_type(g, k), e = cq_gguf_kv_elem_type(g, k);
    int64_t n = cq_gguf_kv_len(g, k);
    if (!cq_gguf_type_name(t) || !cq_gguf_type_name(e) || n < 0 || (t != CQ_GGUF_ARRAY && n != 1)) abort();
    volatile size_t sink = 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t iv;
        double dv;
        const char *s = cq_gguf_kv_str(g, k, j);
        if ((e == CQ_GGUF_STRING) != (s != NULL)) abort();
        if (s) sink += strlen(s);
        if (cq_gguf_kv_int(g, k, j, &iv)) sink += (size_t)iv;
        if (cq_gguf_kv_real(g, k, j, &dv)) sink += dv == dv;
    }
    if (cq_gguf_kv_str(g, k, n) || cq_gguf_kv_str(g, k, -1)) abort();
    int64_t iv;
    double dv;
    bool bv;
    /* The typed getters on every key: errors explain themselves and never crash. */
    cq_err err = {0};
    if (cq_gguf_get_int(g, key, &iv, &err) && !err.msg[0]) abort();
    if (cq_gguf_get_real(g, key, &dv, &err) && !err.msg[0]) abort();
    if (cq_gguf_get_bool(g, key, &bv, &err) && !err.msg[0]) abort();
    if ((cq_gguf_get_str(g, key) != NULL) != (t == CQ_GGUF_STRING)) abort();
    (void)sink;
}

static void walk_tensor(const cq_gguf *g, int64_t i, const uint8_t *data, size_t size, uint64_t *expect) {
    const cq_gguf_tensor *t = cq_gguf_tensor_at(g, i);
    if (!t || cq_gguf_tensor_find(g, t->name) != i) abort();
    int64_t block = cq_ggml_block_size((int)t->type);
    if (block <= 0 || t->ndim < 1 || t->ndim > 4 || t->ne[0] % block) abort();
    int64_t numel = 1;
    for (int d = 0; d < 4; d++) {
        if (t->ne[d] < 1 || (d >= t->ndim && t->ne[d] != 1)) abort();
        numel *= t->ne[d];
    }
    if (numel != t->numel || t->nbytes != (uint64_t)(numel / block) * cq_ggml_type_size((int)t->type)) abort();
    /* gguf.cpp's layout: each tensor where the previous one ends, padded to the alignment. */
    uint64_t a = cq_gguf_alignment(g);
    if (t->offset != *expect || t->offset % a) abort();
    *expect += (t->nbytes + a - 1) / a * a;
    const uint8_t *p = t->data;
    if (p < data || (size_t)(p - data) != cq_gguf_data_offset(g) + t->offset || t->nbytes > size - (size_t)(p - data))
        abort();
    volatile uint8_t sink = 0;
    for (uint64_t k = 0; k < t->nbytes; k++) sink ^= p[k];
    (void)sink;
    /* The first few blocks dequantize (random scales give any float; only crashes matter). */
    if (cq_ggml_can_dequantize((int)t->type)) {
        int64_t n = block == 1 ? (numel < 64 ? numel : 64) : block * (numel / block < 2 ? numel / block : 2);
        float *out = malloc((size_t)n * sizeof *out);
        cq_err err = {0};
        if (!out || cq_ggml_dequantize((int)t->type, p, n, out, &err) != CQ_OK) abort();
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cq_err err = {0};
    cq_gguf *g = NULL;
    cq_status s = cq_gguf_open_memory(data, size, "fuzz", &g, &err);
    if (s != CQ_OK) {
        if (g || !err.msg[0] || strchr(err.msg, '\n')) abort(); /* a refusal explains itself in one line */
        return 0;
    }
    uint32_t v = cq_gguf_version(g);
    uint64_t a = cq_gguf_alignment(g);
    if ((v != 2 && v != 3) || a == 0 || (a & (a - 1)) || cq_gguf_data_offset(g) > size) abort();
    for (int64_t k = 0; k < cq_gguf_kv_count(g); k++) walk_kv(g, k);
    uint64_t expect = 0;
    for (int64_t i = 0; i < cq_gguf_tensor_count(g); i++) walk_tensor(g, i, data, size, &expect);
    cq_gguf_close(g);
    return 0;
}
