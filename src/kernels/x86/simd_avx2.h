/*
 * simd_avx2.h - the 16-lane vector vocabulary of the shared kernel sources implemented with
 * AVX2 + FMA + F16C: each 16-lane value is a pair of 256-bit registers (lanes 0-7, 8-15).
 * Semantics are those documented in x86/simd_avx512.h; the differences are how they are
 * reached: no mask registers (masks are all-ones lanes), partial loads and stores through
 * maskload / a small stack copy, and no vpdpbusd (vpmaddubsw + vpmaddwd, with qint8 weights
 * split into nibbles so no 16-bit sum can saturate). Include only from *_avx2.c.
 */
#ifndef CQ_SIMD_AVX2_H
#define CQ_SIMD_AVX2_H

#include "kernels/kernels_internal.h"

#include <immintrin.h>
#include <math.h>

#define CQ_INLINE static inline __attribute__((always_inline))
#define CQ_SIMD_INT8_BIAS 128

typedef struct {
    __m256 lo, hi;
} vf;
typedef struct {
    __m256i lo, hi;
} vi;
typedef vi vmask;

#define VF2(expr_lo, expr_hi) ((vf){(expr_lo), (expr_hi)})
#define VI2(expr_lo, expr_hi) ((vi){(expr_lo), (expr_hi)})

/* Lanes [0, n) of a half starting at lane `base`. */
CQ_INLINE __m256i half_mask(int n, int base) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n - base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- float ---- */
CQ_INLINE vf vf_zero(void) { return VF2(_mm256_setzero_ps(), _mm256_setzero_ps()); }
CQ_INLINE vf vf_set1(float x) { return VF2(_mm256_set1_ps(x), _mm256_set1_ps(x)); }
CQ_INLINE vf vf_loadu(const float *p) { return VF2(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)); }
CQ_INLINE void vf_storeu(float *p, vf v) {
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
}
CQ_INLINE vf vf_load_n(const float *p, int n) {
    if (n >= 16) return vf_loadu(p);
    return VF2(_mm256_maskload_ps(p, half_mask(n, 0)), _mm256_maskload_ps(p + 8, half_mask(n, 8)));
}
CQ_INLINE void vf_store_n(float *p, vf v, int n) {
    if (n >= 16) {
        vf_storeu(p, v);
        return;
    }
    _mm256_maskstore_ps(p, half_mask(n, 0), v.lo);
    _mm256_maskstore_ps(p + 8, half_mask(n, 8), v.hi);
}
CQ_INLINE vf vf_add(vf a, vf b) { return VF2(_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)); }
CQ_INLINE vf vf_sub(vf a, vf b) { return VF2(_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)); }
CQ_INLINE vf vf_mul(vf a, vf b) { return VF2(_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)); }
CQ_INLINE vf vf_div(vf a, vf b) { return VF2(_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)); }
CQ_INLINE vf vf_fmadd(vf a, vf b, vf c) { return VF2(_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)); }
CQ_INLINE vf vf_fnmadd(vf a, vf b, vf c) {
    return VF2(_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi));
}
CQ_INLINE vf vf_abs(vf a) {
    __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    return VF2(_mm256_and_ps(a.lo, m), _mm256_and_ps(a.hi, m));
}
CQ_INLINE vf vf_max(vf a, vf b) { return VF2(_mm256_max_ps(a.lo, b.lo), _mm256_max_ps(a.hi, b.hi)); }
CQ_INLINE vf vf_min(vf a, vf b) { return VF2(_mm256_min_ps(a.lo, b.lo), _mm256_min_ps(a.hi, b.hi)); }
CQ_INLINE float vf_reduce_max(vf a) {
    __m256 m = _mm256_max_ps(a.lo, a.hi);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}
CQ_INLINE vf vf_from_i32(vi a) { return VF2(_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)); }
CQ_INLINE vi vi_from_vf_rne(vf a) { return VI2(_mm256_cvtps_epi32(a.lo), _mm256_cvtps_epi32(a.hi)); }
CQ_INLINE vf vf_as(vi a) { return VF2(_mm256_castsi256_ps(a.lo), _mm256_castsi256_ps(a.hi)); }
CQ_INLINE vi vi_as(vf a) { return VI2(_mm256_castps_si256(a.lo), _mm256_castps_si256(a.hi)); }
CQ_INLINE vmask vf_isnan(vf a) {
    return VI2(_mm256_castps_si256(_mm256_cmp_ps(a.lo, a.lo, _CMP_UNORD_Q)),
               _mm256_castps_si256(_mm256_cmp_ps(a.hi, a.hi, _CMP_UNORD_Q)));
}
CQ_INLINE vf vf_blend(vmask m, vf a, vf b) {
    return VF2(_mm256_blendv_ps(a.lo, b.lo, _mm256_castsi256_ps(m.lo)),
               _mm256_blendv_ps(a.hi, b.hi, _mm256_castsi256_ps(m.hi)));
}

/* Low 16 bits of each 32-bit lane of a half, packed to 8 u16 (truncating). */
CQ_INLINE __m128i pack_u16_half(__m256i v) {
    const __m256i sh = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9,
                                        12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i t = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, sh), 0x08);
    return _mm256_castsi256_si128(t);
}
/* Low byte of each 32-bit lane of a half, packed to 8 bytes (truncating). */
CQ_INLINE __m128i pack_u8_half(__m256i v) {
    const __m256i sh = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                                        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i t = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, sh), _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
    return _mm256_castsi256_si128(t);
}

CQ_INLINE vf vf_from_f16(vi h) { return VF2(_mm256_cvtph_ps(pack_u16_half(h.lo)), _mm256_cvtph_ps(pack_u16_half(h.hi))); }
CQ_INLINE vi vi_to_f16(vf a) {
    return VI2(_mm256_cvtepu16_epi32(_mm256_cvtps_ph(a.lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)),
               _mm256_cvtepu16_epi32(_mm256_cvtps_ph(a.hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
}
CQ_INLINE vf vf_round_f16(vf a) {
    return VF2(_mm256_cvtph_ps(_mm256_cvtps_ph(a.lo, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)),
               _mm256_cvtph_ps(_mm256_cvtps_ph(a.hi, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
}
CQ_INLINE vf vf_load_f16(const void *p) {
    const __m128i *q = p;
    return VF2(_mm256_cvtph_ps(_mm_loadu_si128(q)), _mm256_cvtph_ps(_mm_loadu_si128(q + 1)));
}
CQ_INLINE vf vf_load_bf16(const void *p) {
    const __m128i *q = p;
    return VF2(_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q)), 16)),
               _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q + 1)), 16)));
}

/* ---- int32 lanes / 64 bytes ---- */
CQ_INLINE vi vi_zero(void) { return VI2(_mm256_setzero_si256(), _mm256_setzero_si256()); }
CQ_INLINE vi vi_set1(int32_t x) { return VI2(_mm256_set1_epi32(x), _mm256_set1_epi32(x)); }
CQ_INLINE vi vi_set1_8(uint8_t x) { return VI2(_mm256_set1_epi8((char)x), _mm256_set1_epi8((char)x)); }
CQ_INLINE vi vi_loadu(const void *p) {
    const __m256i *q = p;
    return VI2(_mm256_loadu_si256(q), _mm256_loadu_si256(q + 1));
}
CQ_INLINE void vi_storeu(void *p, vi v) {
    __m256i *q = p;
    _mm256_storeu_si256(q, v.lo);
    _mm256_storeu_si256(q + 1, v.hi);
}
CQ_INLINE vi vi_add(vi a, vi b) { return VI2(_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)); }
CQ_INLINE vi vi_sub(vi a, vi b) { return VI2(_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)); }
CQ_INLINE vi vi_and(vi a, vi b) { return VI2(_mm256_and_si256(a.lo, b.lo), _mm256_and_si256(a.hi, b.hi)); }
CQ_INLINE vi vi_or(vi a, vi b) { return VI2(_mm256_or_si256(a.lo, b.lo), _mm256_or_si256(a.hi, b.hi)); }
CQ_INLINE vi vi_xor(vi a, vi b) { return VI2(_mm256_xor_si256(a.lo, b.lo), _mm256_xor_si256(a.hi, b.hi)); }
CQ_INLINE vi vi_srli(vi a, const int n) { return VI2(_mm256_srli_epi32(a.lo, n), _mm256_srli_epi32(a.hi, n)); }
CQ_INLINE vi vi_slli(vi a, const int n) { return VI2(_mm256_slli_epi32(a.lo, n), _mm256_slli_epi32(a.hi, n)); }
CQ_INLINE vi vi_srai(vi a, const int n) { return VI2(_mm256_srai_epi32(a.lo, n), _mm256_srai_epi32(a.hi, n)); }
CQ_INLINE vi vi_srli16(vi a, const int n) { return VI2(_mm256_srli_epi16(a.lo, n), _mm256_srli_epi16(a.hi, n)); }
CQ_INLINE vmask vi_gt(vi a, vi b) { return VI2(_mm256_cmpgt_epi32(a.lo, b.lo), _mm256_cmpgt_epi32(a.hi, b.hi)); }
CQ_INLINE vmask vi_eq(vi a, vi b) { return VI2(_mm256_cmpeq_epi32(a.lo, b.lo), _mm256_cmpeq_epi32(a.hi, b.hi)); }
CQ_INLINE vi vi_blend(vmask m, vi a, vi b) {
    return VI2(_mm256_blendv_epi8(a.lo, b.lo, m.lo), _mm256_blendv_epi8(a.hi, b.hi, m.hi));
}
CQ_INLINE vmask vm_or(vmask a, vmask b) { return vi_or(a, b); }
CQ_INLINE bool vm_any(vmask a) { return _mm256_movemask_epi8(_mm256_or_si256(a.lo, a.hi)) != 0; }
CQ_INLINE int32_t vi_reduce_add(vi a) {
    __m256i s = _mm256_add_epi32(a.lo, a.hi);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}
/* Partial byte / u16 transfers go through a zeroed 16-element copy. */
CQ_INLINE __m128i load16_bytes(const void *p, int n) {
    if (n >= 16) return _mm_loadu_si128(p);
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, (size_t)n);
    return _mm_loadu_si128((const __m128i *)tmp);
}
CQ_INLINE vi vi_load_u8_n(const uint8_t *p, int n) {
    __m128i b = load16_bytes(p, n);
    return VI2(_mm256_cvtepu8_epi32(b), _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)));
}
CQ_INLINE vi vi_load_i8_n(const int8_t *p, int n) {
    __m128i b = load16_bytes(p, n);
    return VI2(_mm256_cvtepi8_epi32(b), _mm256_cvtepi8_epi32(_mm_srli_si128(b, 8)));
}
CQ_INLINE vi vi_load_u16_n(const uint16_t *p, int n) {
    if (n >= 16) return VI2(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)),
                            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 8))));
    uint16_t tmp[16] = {0};
    memcpy(tmp, p, (size_t)n * 2);
    return VI2(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)tmp)),
               _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(tmp + 8))));
}
CQ_INLINE void vi_store_u8_n(uint8_t *p, vi v, int n) {
    __m128i b = _mm_unpacklo_epi64(pack_u8_half(v.lo), pack_u8_half(v.hi));
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)p, b);
        return;
    }
    uint8_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, b);
    memcpy(p, tmp, (size_t)n);
}
CQ_INLINE void vi_store_u16_n(uint16_t *p, vi v, int n) {
    __m128i a = pack_u16_half(v.lo), b = pack_u16_half(v.hi);
    if (n >= 16) {
        _mm_storeu_si128((__m128i *)p, a);
        _mm_storeu_si128((__m128i *)(p + 8), b);
        return;
    }
    uint16_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, a);
    _mm_storeu_si128((__m128i *)(tmp + 8), b);
    memcpy(p, tmp, (size_t)n * 2);
}
CQ_INLINE vi vi_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vi_set1(v);
}
/* w bytes < 128 times s8: vpmaddubsw pairs stay within 2 * 127 * 128, no saturation. */
CQ_INLINE __m256i dp_half(__m256i acc, __m256i w, __m256i x) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1)));
}
CQ_INLINE vi vi_dp_small(vi acc, vi w, vi x4) { return VI2(dp_half(acc.lo, w.lo, x4.lo), dp_half(acc.hi, w.hi, x4.hi)); }
/* Full-range bytes: w = 16 * hi + lo with nibbles, each product pair well inside int16. */
CQ_INLINE __m256i dp8_half(__m256i acc, __m256i w, __m256i x) {
    __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(w, nib), x);
    __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w, 4), nib), x);
    __m256i s = _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_set1_epi16(1)), _mm256_madd_epi16(hi, _mm256_set1_epi16(16)));
    return _mm256_add_epi32(acc, s);
}
CQ_INLINE vi vi_dp_int8(vi acc, vi w, vi x4) { return VI2(dp8_half(acc.lo, w.lo, x4.lo), dp8_half(acc.hi, w.hi, x4.hi)); }

CQ_INLINE vf vf_from_e4m3(const uint8_t *p) {
    __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
    __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x7f)), 7),
                                _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8));
    __m256 k = _mm256_set1_ps(0x1p8f);
    return VF2(_mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), k),
               _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), k));
}
CQ_INLINE vf vf_from_e5m2(const uint8_t *p) {
    __m256i h = _mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p)), 8);
    return VF2(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)));
}

#endif
