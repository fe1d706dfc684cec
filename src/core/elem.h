/*
 * elem.h - one element of an F32 / F16 / BF16 tensor: load, store, and rounding to the dtype
 * after each op (what torch does on CPU), plus quanto's affine code and dequantized value for
 * one element. Shared by src/quant (the whole-tensor math) and the kernels' scalar reference,
 * so the two cannot drift apart. Private; never installed.
 */
#ifndef CQ_CORE_ELEM_H
#define CQ_CORE_ELEM_H

#include "core/internal.h"
#include "core/float_bits.h"

/* F32, F16 and BF16 are the dtypes quanto quantizes; everything is computed in f32 and rounded
 * back after each op (what torch does on CPU). always_inline so that loops instantiated with a
 * constant dtype lose the switch. */
static inline __attribute__((always_inline)) float cq__rnd(float v, cq_dtype dt) {
    switch (dt) {
    case CQ_F16: return cq__round_f16(v);
    case CQ_BF16: return cq__round_bf16(v);
    default: return v;
    }
}

static inline __attribute__((always_inline)) float cq__ld(const void *p, cq_dtype dt, int64_t i) {
    switch (dt) {
    case CQ_F16: return cq__f16_bits_to_f32(((const uint16_t *)p)[i]);
    case CQ_BF16: return cq__bf16_bits_to_f32(((const uint16_t *)p)[i]);
    default: return ((const float *)p)[i];
    }
}

/* v must already be representable in dt (the conversion is then exact). */
static inline __attribute__((always_inline)) void cq__st(void *p, cq_dtype dt, int64_t i, float v) {
    switch (dt) {
    case CQ_F16: ((uint16_t *)p)[i] = cq__f32_to_f16_bits(v); break;
    case CQ_BF16: ((uint16_t *)p)[i] = cq__f32_to_bf16_bits(v); break;
    default: ((float *)p)[i] = v; break;
    }
}

/* The largest affine code of `bits` bits: codes run over [0, 2^bits - 1] (quanto's MaxOptimizer
 * range and quantize_affine's clamp). */
static inline float cq__affine_code_max(int bits) { return (float)((1 << bits) - 1); }

/* quanto::quantize_affine for one element: clamp(round((x + shift) / scale), 0, qmax), each op
 * rounded to dt. Divergence: a zero scale (a constant group) gives code 0, not NaN. Clamp, then
 * round (the same, the bounds being integers); quiet comparisons and selects keep loops
 * vectorizable. */
static inline __attribute__((always_inline)) float cq__affine_code(float x, float s, float sh, float qmax,
                                                                     cq_dtype dt) {
    float v = cq__rnd(cq__rnd(x + sh, dt) / s, dt);
    v = __builtin_isless(v, 0.0f) ? 0.0f : v;
    v = __builtin_isgreater(v, qmax) ? qmax : v;
    v = cq__rint_small(v);
    return ((s != 0.0f) & (v == v)) ? v : 0.0f; /* & not &&: no branch, the loops stay vectorised */
}

/* QBitsDequantizer for one element: scale * code - shift, two roundings in dt. */
static inline __attribute__((always_inline)) float cq__affine_value(float code, float s, float sh, cq_dtype dt) {
    return cq__rnd(cq__rnd(s * code, dt) - sh, dt);
}

/* torch.amax / amin steps with one total order: any NaN gives NaN, and ties between zeros go to
 * +0 for the max and -0 for the min, so the order of comparison (lanes, chunks, threads) never
 * shows in the bits. The rule of cq_vec_minmax and of every min/max reduction in src/quant. */
static inline float cq__maxf(float m, float a) {
    return m != m ? m : a != a ? NAN : (a > m || (a == m && !signbit(a))) ? a : m;
}
static inline float cq__minf(float m, float a) {
    return m != m ? m : a != a ? NAN : (a < m || (a == m && signbit(a))) ? a : m;
}

#endif
