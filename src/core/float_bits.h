/*
 * float_bits.h - inline bit-level conversions between f32 and the 16-bit float formats, and
 * round-half-to-even helpers, for hot loops (quantization, dtype conversion). The exported
 * scalar API (cq_f32_to_f16 ...) in dtype_convert.c is built on these, so there is one
 * definition of each rounding rule. Semantics are PyTorch's tensor casts (see
 * docs/NUMERICS.md); this header does not cover the fp8 formats (dtype_convert.c does).
 */
#ifndef CQ_FLOAT_BITS_H
#define CQ_FLOAT_BITS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t cq__f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static inline float cq__bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Round half to even to an integer value. The 2^23 trick is exact for |x| < 2^23 in the
 * default rounding mode (no -ffast-math anywhere), and every larger float is an integer. */
static inline float cq__rint(float x) {
    float a = fabsf(x);
    float r = copysignf((a + 0x1p23f) - 0x1p23f, x);
    /* A quiet comparison and a select: loops using this vectorize (an ordered `<` may trap
     * on NaN, which stops GCC from if-converting it). NaN -> x. */
    return __builtin_isless(a, 0x1p23f) ? r : x;
}

/* cq__rint for |x| < 2^23 (or NaN, which stays NaN) without a select, so that loops that
 * clamp first and round after vectorize. Rounding commutes with clamping to integers. */
static inline float cq__rint_small(float x) { return copysignf((fabsf(x) + 0x1p23f) - 0x1p23f, x); }

/* bf16: the high half of an f32, rounded half to even. Every NaN becomes 0xFFFF, as torch's
 * vectorized CPU cast produces. */
static inline uint16_t cq__f32_to_bf16_bits(float x) {
    uint32_t u = cq__f32_bits(x);
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? 0xffffu : r); /* a select, no branch */
}

static inline float cq__bf16_bits_to_f32(uint16_t h) { return cq__bits_f32((uint32_t)h << 16); }

/* f16 (IEEE binary16), round half to even; overflow -> inf; NaN keeps its sign and the top
 * payload bits and is made quiet (what F16C's vcvtps2ph does, torch's vectorized path). */
static inline uint16_t cq__f32_to_f16_bits(float x) {
    uint32_t u = cq__f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a & 0x7fffffu) >> 13));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520: rounds past 65504 */
    if (a < 0x38800000u) {                                    /* below 2^-14: subnormal */
        /* |x| * 2^24 is exact (a power-of-two scale of a value below 2^10), then RNE. */
        return (uint16_t)(sign | (uint16_t)cq__rint(cq__bits_f32(a) * 0x1p24f));
    }
    a += 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | ((a >> 13) - (112u << 10)));
}

static inline float cq__f16_bits_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return cq__bits_f32(sign | 0x7f800000u | (m ? 0x400000u | (m << 13) : 0));
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* exact */
        return sign ? -v : v;
    }
    return cq__bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

static inline float cq__round_bf16(float x) { return cq__bf16_bits_to_f32(cq__f32_to_bf16_bits(x)); }
static inline float cq__round_f16(float x) { return cq__f16_bits_to_f32(cq__f32_to_f16_bits(x)); }

#endif
