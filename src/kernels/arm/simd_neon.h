/*
 * simd_neon.h - the 16-lane vector vocabulary of the shared kernel sources implemented with
 * AArch64 Advanced SIMD and the dot-product extension (sdot): each 16-lane value is four
 * 128-bit registers. Semantics are those documented in x86/simd_avx512.h, with two choices
 * made explicit: max/min are written as compare + select so NaN behaves as on x86, and qint8
 * weight bytes are un-biased (xor 0x80) before sdot, so CQ_SIMD_INT8_BIAS is 0 here. Shifts
 * use the register forms so no immediate has to survive inlining. Include only from
 * *_neon.c.
 */
#ifndef CQ_SIMD_NEON_H
#define CQ_SIMD_NEON_H

#include "kernels/kernels_internal.h"

#include <arm_neon.h>
#include <math.h>

#define CQ_INLINE static inline __attribute__((always_inline))
#define CQ_SIMD_INT8_BIAS 0

typedef struct {
    float32x4_t v[4];
} vf;
typedef struct {
    int32x4_t v[4];
} vi;
typedef struct {
    uint32x4_t v[4];
} vmask;

/* EACH(i, stmt): stmt once per register, with i the constant 0, 1, 2, 3. Written out rather
 * than looped so every register index is constant from the start: with a loop GCC keeps the
 * values in memory until it unrolls, after inlining has grown the kernels, and this file took
 * over 5 minutes and 2.3 GB to compile. */
#define EACH(i, stmt)                                                                               \
    do {                                                                                             \
        { enum { i = 0 }; stmt; } { enum { i = 1 }; stmt; } { enum { i = 2 }; stmt; } { enum { i = 3 }; stmt; } \
    } while (0)

/* ---- float ---- */
CQ_INLINE vf vf_zero(void) {
    vf r;
    EACH(i, r.v[i] = vdupq_n_f32(0.0f));
    return r;
}
CQ_INLINE vf vf_set1(float x) {
    vf r;
    EACH(i, r.v[i] = vdupq_n_f32(x));
    return r;
}
CQ_INLINE vf vf_loadu(const float *p) {
    vf r;
    EACH(i, r.v[i] = vld1q_f32(p + 4 * i));
    return r;
}
CQ_INLINE void vf_storeu(float *p, vf a) { EACH(i, vst1q_f32(p + 4 * i, a.v[i])); }
CQ_INLINE vf vf_load_n(const float *p, int n) {
    if (n >= 16) return vf_loadu(p);
    float tmp[16] = {0};
    memcpy(tmp, p, (size_t)n * sizeof(float));
    return vf_loadu(tmp);
}
CQ_INLINE void vf_store_n(float *p, vf a, int n) {
    if (n >= 16) {
        vf_storeu(p, a);
        return;
    }
    float tmp[16];
    vf_storeu(tmp, a);
    memcpy(p, tmp, (size_t)n * sizeof(float));
}
#define VF_OP2(name, expr)                      \
    CQ_INLINE vf name(vf a, vf b) {             \
        vf r;                                   \
        EACH(i, r.v[i] = expr(a.v[i], b.v[i])); \
        return r;                               \
    }
VF_OP2(vf_add, vaddq_f32)
VF_OP2(vf_sub, vsubq_f32)
VF_OP2(vf_mul, vmulq_f32)
VF_OP2(vf_div, vdivq_f32)
CQ_INLINE vf vf_fmadd(vf a, vf b, vf c) {
    vf r;
    EACH(i, r.v[i] = vfmaq_f32(c.v[i], a.v[i], b.v[i]));
    return r;
}
CQ_INLINE vf vf_fnmadd(vf a, vf b, vf c) {
    vf r;
    EACH(i, r.v[i] = vfmsq_f32(c.v[i], a.v[i], b.v[i]));
    return r;
}
CQ_INLINE vf vf_abs(vf a) {
    vf r;
    EACH(i, r.v[i] = vabsq_f32(a.v[i]));
    return r;
}
CQ_INLINE vf vf_max(vf a, vf b) {
    vf r;
    EACH(i, r.v[i] = vbslq_f32(vcgtq_f32(a.v[i], b.v[i]), a.v[i], b.v[i]));
    return r;
}
CQ_INLINE vf vf_min(vf a, vf b) {
    vf r;
    EACH(i, r.v[i] = vbslq_f32(vcltq_f32(a.v[i], b.v[i]), a.v[i], b.v[i]));
    return r;
}
CQ_INLINE float vf_reduce_max(vf a) {
    float32x4_t m = vmaxq_f32(vmaxq_f32(a.v[0], a.v[1]), vmaxq_f32(a.v[2], a.v[3]));
    return vmaxvq_f32(m);
}
CQ_INLINE vf vf_from_i32(vi a) {
    vf r;
    EACH(i, r.v[i] = vcvtq_f32_s32(a.v[i]));
    return r;
}
CQ_INLINE vi vi_from_vf_rne(vf a) {
    vi r;
    EACH(i, r.v[i] = vcvtnq_s32_f32(a.v[i]));
    return r;
}
CQ_INLINE vf vf_as(vi a) {
    vf r;
    EACH(i, r.v[i] = vreinterpretq_f32_s32(a.v[i]));
    return r;
}
CQ_INLINE vi vi_as(vf a) {
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_f32(a.v[i]));
    return r;
}
CQ_INLINE vmask vf_isnan(vf a) {
    vmask r;
    EACH(i, r.v[i] = vmvnq_u32(vceqq_f32(a.v[i], a.v[i])));
    return r;
}
CQ_INLINE vf vf_blend(vmask m, vf a, vf b) {
    vf r;
    EACH(i, r.v[i] = vbslq_f32(m.v[i], b.v[i], a.v[i]));
    return r;
}
/* Hardware conversions round half to even (FPCR default) and keep NaN sign and payload top
 * bits, quieting them, as F16C does. */
CQ_INLINE vf vf_from_f16(vi h) {
    vf r;
    EACH(i, r.v[i] = vcvt_f32_f16(vreinterpret_f16_u16(vmovn_u32(vreinterpretq_u32_s32(h.v[i])))));
    return r;
}
CQ_INLINE vi vi_to_f16(vf a) {
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_u32(vmovl_u16(vreinterpret_u16_f16(vcvt_f16_f32(a.v[i])))));
    return r;
}
CQ_INLINE vf vf_round_f16(vf a) {
    vf r;
    EACH(i, r.v[i] = vcvt_f32_f16(vcvt_f16_f32(a.v[i])));
    return r;
}
CQ_INLINE vf vf_load_f16(const void *p) {
    const uint16_t *q = p;
    vf r;
    EACH(i, r.v[i] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(q + 4 * i))));
    return r;
}
CQ_INLINE vf vf_load_bf16(const void *p) {
    const uint16_t *q = p;
    vf r;
    EACH(i, r.v[i] = vreinterpretq_f32_u32(vshlq_n_u32(vmovl_u16(vld1_u16(q + 4 * i)), 16)));
    return r;
}

/* ---- int32 lanes / 64 bytes ---- */
CQ_INLINE vi vi_zero(void) {
    vi r;
    EACH(i, r.v[i] = vdupq_n_s32(0));
    return r;
}
CQ_INLINE vi vi_set1(int32_t x) {
    vi r;
    EACH(i, r.v[i] = vdupq_n_s32(x));
    return r;
}
CQ_INLINE vi vi_set1_8(uint8_t x) {
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_u8(vdupq_n_u8(x)));
    return r;
}
CQ_INLINE vi vi_loadu(const void *p) {
    const int32_t *q = p;
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_u8(vld1q_u8((const uint8_t *)(q + 4 * i))));
    return r;
}
CQ_INLINE void vi_storeu(void *p, vi a) {
    uint8_t *q = p;
    EACH(i, vst1q_u8(q + 16 * i, vreinterpretq_u8_s32(a.v[i])));
}
#define VI_OP2(name, expr)                      \
    CQ_INLINE vi name(vi a, vi b) {             \
        vi r;                                   \
        EACH(i, r.v[i] = expr(a.v[i], b.v[i])); \
        return r;                               \
    }
VI_OP2(vi_add, vaddq_s32)
VI_OP2(vi_sub, vsubq_s32)
VI_OP2(vi_and, vandq_s32)
VI_OP2(vi_or, vorrq_s32)
VI_OP2(vi_xor, veorq_s32)
CQ_INLINE vi vi_srli(vi a, const int n) {
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(a.v[i]), vdupq_n_s32(-n))));
    return r;
}
CQ_INLINE vi vi_slli(vi a, const int n) {
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(a.v[i]), vdupq_n_s32(n))));
    return r;
}
CQ_INLINE vi vi_srai(vi a, const int n) {
    vi r;
    EACH(i, r.v[i] = vshlq_s32(a.v[i], vdupq_n_s32(-n)));
    return r;
}
CQ_INLINE vi vi_srli16(vi a, const int n) {
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_u16(vshlq_u16(vreinterpretq_u16_s32(a.v[i]), vdupq_n_s16((int16_t)-n))));
    return r;
}
CQ_INLINE vmask vi_gt(vi a, vi b) {
    vmask r;
    EACH(i, r.v[i] = vcgtq_s32(a.v[i], b.v[i]));
    return r;
}
CQ_INLINE vmask vi_eq(vi a, vi b) {
    vmask r;
    EACH(i, r.v[i] = vceqq_s32(a.v[i], b.v[i]));
    return r;
}
CQ_INLINE vi vi_blend(vmask m, vi a, vi b) {
    vi r;
    EACH(i, r.v[i] = vbslq_s32(m.v[i], b.v[i], a.v[i]));
    return r;
}
CQ_INLINE vmask vm_or(vmask a, vmask b) {
    vmask r;
    EACH(i, r.v[i] = vorrq_u32(a.v[i], b.v[i]));
    return r;
}
CQ_INLINE bool vm_any(vmask a) {
    return vmaxvq_u32(vorrq_u32(vorrq_u32(a.v[0], a.v[1]), vorrq_u32(a.v[2], a.v[3]))) != 0;
}
CQ_INLINE int32_t vi_reduce_add(vi a) {
    return vaddvq_s32(vaddq_s32(vaddq_s32(a.v[0], a.v[1]), vaddq_s32(a.v[2], a.v[3])));
}
CQ_INLINE vi vi_load_u8_n(const uint8_t *p, int n) {
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, (size_t)(n < 16 ? n : 16));
    uint8x16_t b = vld1q_u8(tmp);
    uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_u8(vget_high_u8(b));
    vi r;
    r.v[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo)));
    r.v[1] = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(lo)));
    r.v[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi)));
    r.v[3] = vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(hi)));
    return r;
}
CQ_INLINE vi vi_load_i8_n(const int8_t *p, int n) {
    int8_t tmp[16] = {0};
    memcpy(tmp, p, (size_t)(n < 16 ? n : 16));
    int8x16_t b = vld1q_s8(tmp);
    int16x8_t lo = vmovl_s8(vget_low_s8(b)), hi = vmovl_s8(vget_high_s8(b));
    vi r;
    r.v[0] = vmovl_s16(vget_low_s16(lo));
    r.v[1] = vmovl_s16(vget_high_s16(lo));
    r.v[2] = vmovl_s16(vget_low_s16(hi));
    r.v[3] = vmovl_s16(vget_high_s16(hi));
    return r;
}
CQ_INLINE vi vi_load_u16_n(const uint16_t *p, int n) {
    uint16_t tmp[16] = {0};
    memcpy(tmp, p, (size_t)(n < 16 ? n : 16) * 2);
    vi r;
    EACH(i, r.v[i] = vreinterpretq_s32_u32(vmovl_u16(vld1_u16(tmp + 4 * i))));
    return r;
}
CQ_INLINE void vi_store_u8_n(uint8_t *p, vi a, int n) {
    uint16x8_t lo = vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(a.v[0])), vmovn_u32(vreinterpretq_u32_s32(a.v[1])));
    uint16x8_t hi = vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(a.v[2])), vmovn_u32(vreinterpretq_u32_s32(a.v[3])));
    uint8_t tmp[16];
    vst1q_u8(tmp, vcombine_u8(vmovn_u16(lo), vmovn_u16(hi)));
    memcpy(p, tmp, (size_t)(n < 16 ? n : 16));
}
CQ_INLINE void vi_store_u16_n(uint16_t *p, vi a, int n) {
    uint16_t tmp[16];
    EACH(i, vst1_u16(tmp + 4 * i, vmovn_u32(vreinterpretq_u32_s32(a.v[i]))));
    memcpy(p, tmp, (size_t)(n < 16 ? n : 16) * 2);
}
CQ_INLINE vi vi_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vi_set1(v);
}
/* sdot: signed bytes both sides; codes < 128 read the same as signed. */
CQ_INLINE vi vi_dp_small(vi acc, vi w, vi x4) {
    vi r;
    EACH(i, r.v[i] = vdotq_s32(acc.v[i], vreinterpretq_s8_s32(w.v[i]), vreinterpretq_s8_s32(x4.v[i])));
    return r;
}
/* Stored qint8 bytes are w + 128: xor 0x80 gives w back, so this sums w * x (bias 0). */
CQ_INLINE vi vi_dp_int8(vi acc, vi w, vi x4) {
    vi r;
    EACH(i, r.v[i] = vdotq_s32(acc.v[i], veorq_s8(vreinterpretq_s8_s32(w.v[i]), vdupq_n_s8((int8_t)0x80)),
                               vreinterpretq_s8_s32(x4.v[i])));
    return r;
}

/* Four f16 registers of eight lanes (lo, hi of two halves) as the four f32 registers. */
CQ_INLINE vf vf_from_f16_halves(uint16x8_t h0, uint16x8_t h1) {
    vf r = {{vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h0))), vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h0))),
             vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(h1))), vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(h1)))}};
    return r;
}
/* e4m3fn bytes (widened to 16 bits): the magnitude << 7 and the sign << 8 are the f16 bits of
 * value * 2^-8. */
CQ_INLINE uint16x8_t e4m3_f16_bits(uint16x8_t h) {
    return vorrq_u16(vshlq_n_u16(vandq_u16(h, vdupq_n_u16(0x7f)), 7), vshlq_n_u16(vandq_u16(h, vdupq_n_u16(0x80)), 8));
}
CQ_INLINE vf vf_from_e4m3(const uint8_t *p) {
    uint8x16_t b = vld1q_u8(p);
    vf r = vf_from_f16_halves(e4m3_f16_bits(vmovl_u8(vget_low_u8(b))), e4m3_f16_bits(vmovl_u8(vget_high_u8(b))));
    EACH(i, r.v[i] = vmulq_f32(r.v[i], vdupq_n_f32(0x1p8f)));
    return r;
}
CQ_INLINE vf vf_from_e5m2(const uint8_t *p) {
    uint8x16_t b = vld1q_u8(p);
    return vf_from_f16_halves(vshlq_n_u16(vmovl_u8(vget_low_u8(b)), 8), vshlq_n_u16(vmovl_u8(vget_high_u8(b)), 8));
}

#endif
