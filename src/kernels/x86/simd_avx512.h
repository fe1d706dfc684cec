/*
 * simd_avx512.h - the 16-lane vector vocabulary of the shared kernel sources
 * (kernels/matmul_simd.inc, kernels/vec_simd.inc) implemented with AVX-512 F/BW/VL/DQ + VNNI.
 * One vf is 16 floats, one vi 16 int32 lanes (= 64 bytes), one vmask 16 lane flags; lane r is
 * row r of a weight tile. Every op states the exact semantics the AVX2 and NEON versions
 * reproduce. Include only from files compiled with the AVX-512 flags.
 */
#ifndef CQ_SIMD_AVX512_H
#define CQ_SIMD_AVX512_H

#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <math.h>

#define CQ_INLINE static inline __attribute__((always_inline))
#define CQ_SIMD_LEVEL_NAME "avx512"
/* qint8 weights are stored biased (w + 128); vpdpbusd sums the biased bytes. */
#define CQ_SIMD_INT8_BIAS 128

typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vmask;

CQ_INLINE __mmask16 lanes_n(int n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u); }

/* ---- float ---- */
CQ_INLINE vf vf_zero(void) { return _mm512_setzero_ps(); }
CQ_INLINE vf vf_set1(float x) { return _mm512_set1_ps(x); }
CQ_INLINE vf vf_loadu(const float *p) { return _mm512_loadu_ps(p); }
CQ_INLINE void vf_storeu(float *p, vf v) { _mm512_storeu_ps(p, v); }
CQ_INLINE vf vf_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(lanes_n(n), p); }
CQ_INLINE void vf_store_n(float *p, vf v, int n) { _mm512_mask_storeu_ps(p, lanes_n(n), v); }
CQ_INLINE vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
CQ_INLINE vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
CQ_INLINE vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
CQ_INLINE vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
CQ_INLINE vf vf_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }   /* a*b + c, one rounding */
CQ_INLINE vf vf_fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); } /* c - a*b, one rounding */
CQ_INLINE vf vf_abs(vf a) { return _mm512_abs_ps(a); }
/* a > b ? a : b, so b whenever either is NaN (x86 max). */
CQ_INLINE vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
/* a < b ? a : b, so b whenever either is NaN (x86 min). */
CQ_INLINE vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
CQ_INLINE float vf_reduce_max(vf a) { return _mm512_reduce_max_ps(a); }
CQ_INLINE vf vf_from_i32(vi a) { return _mm512_cvtepi32_ps(a); }
/* Round half to even to int32; only for values inside int32's range. */
CQ_INLINE vi vi_from_vf_rne(vf a) { return _mm512_cvtps_epi32(a); }
CQ_INLINE vf vf_as(vi a) { return _mm512_castsi512_ps(a); }
CQ_INLINE vi vi_as(vf a) { return _mm512_castps_si512(a); }
CQ_INLINE vmask vf_isnan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
CQ_INLINE vf vf_blend(vmask m, vf a, vf b) { return _mm512_mask_mov_ps(a, m, b); } /* m ? b : a */
/* f16 bits in the low half of each lane -> f32 (exact), and f32 -> f16 bits, round half to
 * even, NaN keeping sign and top payload bits (F16C semantics = core/float_bits.h). */
CQ_INLINE vf vf_from_f16(vi h) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)); }
CQ_INLINE vi vi_to_f16(vf a) {
    return _mm512_cvtepu16_epi32(_mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
CQ_INLINE vf vf_round_f16(vf a) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
/* Round half to even to bf16 with vcvtneps2bf16, for values that are neither NaN nor
 * denormal (the instruction flushes denormals): the caller guarantees it. Compiled in only
 * when the file has the AVX512_BF16 flag; used only when the CPU reports it. */
#ifdef __AVX512BF16__
#define CQ_SIMD_BF16_CVT 1
CQ_INLINE vf vf_round_bf16_hw(vf a) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(a);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif
/* 16 f16 / bf16 values at p as f32 (exact). */
CQ_INLINE vf vf_load_f16(const void *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
CQ_INLINE vf vf_load_bf16(const void *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}

/* ---- int32 lanes / 64 bytes ---- */
CQ_INLINE vi vi_zero(void) { return _mm512_setzero_si512(); }
CQ_INLINE vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
CQ_INLINE vi vi_set1_8(uint8_t x) { return _mm512_set1_epi8((char)x); }
CQ_INLINE vi vi_loadu(const void *p) { return _mm512_loadu_si512(p); }
CQ_INLINE void vi_storeu(void *p, vi v) { _mm512_storeu_si512(p, v); }
CQ_INLINE vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
CQ_INLINE vi vi_sub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
CQ_INLINE vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
CQ_INLINE vi vi_or(vi a, vi b) { return _mm512_or_si512(a, b); }
CQ_INLINE vi vi_xor(vi a, vi b) { return _mm512_xor_si512(a, b); }
CQ_INLINE vi vi_srli(vi a, const int n) { return _mm512_srli_epi32(a, (unsigned)n); }
CQ_INLINE vi vi_slli(vi a, const int n) { return _mm512_slli_epi32(a, (unsigned)n); }
CQ_INLINE vi vi_srai(vi a, const int n) { return _mm512_srai_epi32(a, (unsigned)n); }
CQ_INLINE vi vi_srli16(vi a, const int n) { return _mm512_srli_epi16(a, (unsigned)n); } /* 16-bit lanes */
CQ_INLINE vmask vi_gt(vi a, vi b) { return _mm512_cmpgt_epi32_mask(a, b); }             /* signed */
CQ_INLINE vmask vi_eq(vi a, vi b) { return _mm512_cmpeq_epi32_mask(a, b); }
CQ_INLINE vi vi_blend(vmask m, vi a, vi b) { return _mm512_mask_mov_epi32(a, m, b); } /* m ? b : a */
CQ_INLINE vmask vm_or(vmask a, vmask b) { return (vmask)(a | b); }
CQ_INLINE vmask vm_not(vmask a) { return (vmask)~a; }
CQ_INLINE bool vm_any(vmask a) { return a != 0; }
CQ_INLINE int32_t vi_reduce_add(vi a) { return _mm512_reduce_add_epi32(a); }
/* n (<= 16) bytes / 16-bit values into the low bits of lanes (zero- or sign-extended; zeros
 * beyond n), and back (truncating each lane). */
CQ_INLINE vi vi_load_u8_n(const uint8_t *p, int n) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lanes_n(n), p)); }
CQ_INLINE vi vi_load_i8_n(const int8_t *p, int n) { return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(lanes_n(n), p)); }
CQ_INLINE vi vi_load_u16_n(const uint16_t *p, int n) {
    return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(lanes_n(n), p));
}
CQ_INLINE void vi_store_u8_n(uint8_t *p, vi v, int n) { _mm_mask_storeu_epi8(p, lanes_n(n), _mm512_cvtepi32_epi8(v)); }
CQ_INLINE void vi_store_u16_n(uint16_t *p, vi v, int n) {
    _mm256_mask_storeu_epi16(p, lanes_n(n), _mm512_cvtepi32_epi16(v));
}
/* The 4 bytes at p (any alignment) in every lane. */
CQ_INLINE vi vi_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
/* acc + sum over the lane's 4 byte pairs of w (unsigned, < 128) * x (signed). */
CQ_INLINE vi vi_dp_small(vi acc, vi w, vi x4) { return _mm512_dpbusd_epi32(acc, w, x4); }
/* The same for stored qint8 weight bytes: sum of (byte - 128 + CQ_SIMD_INT8_BIAS) * x. */
CQ_INLINE vi vi_dp_int8(vi acc, vi w, vi x4) { return _mm512_dpbusd_epi32(acc, w, x4); }

/* The 16 bytes at p, one per lane, as f32: fp8 e4m3fn (no NaN codes: refused at pack time)
 * and e5m2. e4m3fn goes through f16 bits (magnitude << 7) = value * 2^-8, so no f32 denormal
 * reaches an arithmetic unit (those take microcode assists). */
CQ_INLINE vf vf_from_e4m3(const uint8_t *p) {
    __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
    __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7f)), 7),
                                _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8));
    return _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(0x1p8f));
}
CQ_INLINE vf vf_from_e5m2(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p)), 8));
}

#endif
