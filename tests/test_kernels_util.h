/*
 * test_kernels_util.h - helpers shared by the kernel tests (tests/test_kernels*.c): a seeded
 * generator, canary-guarded buffers, and the loop over the registered kernels this CPU runs.
 * The kernel tests need only core + kernels (no io, no BLAS), so `make test-aarch64` can run
 * them under qemu.
 */
#ifndef CQ_TEST_KERNELS_UTIL_H
#define CQ_TEST_KERNELS_UTIL_H

#include "tst.h"
#include "cquanto.h"
#include "kernels/kernels_internal.h"
#include "core/float_bits.h" /* cq__f32_bits, cq__bits_f32 */

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

/* The registered kernels of slot (op, w) other than the reference that dispatch may run now
 * (the CPU can run them and the cap allows their level): FOR_EACH_KERNEL(k, op, w) { ... }.
 * Tests take their kernels from the registry, so a kernel added to it is tested unchanged. */
static inline const cq__kernel *next_kernel(const cq__kernel *prev, cq__op op, cq__wfmt w) {
    int i = 0, n = cq__kernel_count();
    if (prev)
        while (i < n && cq__kernel_get(i++) != prev) {}
    for (; i < n; i++) {
        const cq__kernel *k = cq__kernel_get(i);
        if (k->op == op && k->wfmt == w && k->isa != CQ_ISA_REF && cq__kernel_allowed(k)) return k;
    }
    return NULL;
}
static inline int kernel_index(const cq__kernel *k) {
    for (int i = 0; i < cq__kernel_count(); i++)
        if (cq__kernel_get(i) == k) return i;
    return -1;
}
#define FOR_EACH_KERNEL(k, op, w) for (const cq__kernel *k = next_kernel(NULL, op, w); k; k = next_kernel(k, op, w))
#define FOR_EACH_VEC_KERNEL(k, field) FOR_EACH_KERNEL(k, CQ__OP_##field, CQ__W_NONE)
/* The reference function of an elementwise op. */
#define REF_VEC(field) (cq__kernel_at(CQ_ISA_REF, CQ__OP_##field, CQ__W_NONE)->fn.field)

#endif
