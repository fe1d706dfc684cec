/*
 * test_kernels_util.h - helpers shared by the kernel tests (tests/test_kernels*.c): a seeded
 * generator, canary-guarded buffers, and a loop over the ISA levels this CPU runs. The kernel
 * tests need only core + kernels (no io, no BLAS), so `make test-aarch64` can run them under
 * qemu.
 */
#ifndef CQ_TEST_KERNELS_UTIL_H
#define CQ_TEST_KERNELS_UTIL_H

#include "tst.h"
#include "cquanto.h"
#include "kernels/kernels_internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    uint64_t s;
} krng;

static inline uint32_t krng_u32(krng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (uint32_t)(r->s >> 16);
}
/* Uniform in [-1, 1). */
static inline float krng_f(krng *r) { return (float)((int32_t)krng_u32(r)) * 0x1p-31f; }
/* Roughly normal (sum of 4 uniforms), scaled. */
static inline float krng_n(krng *r, float scale) {
    return scale * (krng_f(r) + krng_f(r) + krng_f(r) + krng_f(r)) * 0.5f;
}

#define CANARY 0xA5
#define CANARY_BYTES 64

/* A buffer of n bytes at byte offset `misalign` from a 64-byte boundary, with canary bytes
 * before and after. */
typedef struct {
    uint8_t *base, *p;
    size_t n, off;
} kbuf;

static inline kbuf kbuf_new(size_t n, size_t misalign) {
    kbuf b;
    b.n = n;
    b.off = 64 + misalign;
    b.base = cq_aligned_alloc(n + b.off + CANARY_BYTES + 64);
    memset(b.base, CANARY, n + b.off + CANARY_BYTES + 64);
    b.p = b.base + b.off;
    return b;
}

static inline int kbuf_canaries_ok(const kbuf *b) {
    for (size_t i = 0; i < b->off; i++)
        if (b->base[i] != CANARY) return 0;
    for (size_t i = 0; i < CANARY_BYTES; i++)
        if (b->p[b->n + i] != CANARY) return 0;
    return 1;
}

static inline void kbuf_free(kbuf *b) { cq_aligned_free(b->base); }

/* The levels other than ref that this CPU can run, for "every variant vs ref" loops. */
static inline int kernel_levels(cq_isa *out) {
    int n = 0;
    for (int i = 1; i < CQ_ISA_COUNT; i++)
        if (cq_isa_supported((cq_isa)i)) out[n++] = (cq_isa)i;
    return n;
}

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
