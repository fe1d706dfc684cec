/*
 * simd_avx512.h - static inline helpers for the AVX-512 kernel files (*_avx512.c, *_amx.c):
 * rounding an f32 vector to f16/bf16 precision exactly as the core scalar casts do, loading
 * 16 scales of any scale dtype, and the matmul epilogue (round, bias, store 16 outputs of any
 * output dtype with a tail mask). Include only from files compiled with the AVX-512 flags.
 */
#ifndef CQ_SIMD_AVX512_H
#define CQ_SIMD_AVX512_H

#include "kernels/kernels_internal.h"

#include <immintrin.h>

#define CQ_INLINE static inline __attribute__((always_inline))

/* bf16 bits in the high half, round half to even; NaN -> 0xFFFF (core/float_bits.h). */
CQ_INLINE __m512i cq5_bf16_bits_hi(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    r = _mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u));
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32((int)0xffff0000u));
}

CQ_INLINE __m512 cq5_round_bf16(__m512 v) { return _mm512_castsi512_ps(cq5_bf16_bits_hi(v)); }

CQ_INLINE __m512 cq5_round_f16(__m512 v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

CQ_INLINE __m512 cq5_round(__m512 v, cq_dtype t) {
    return t == CQ_BF16 ? cq5_round_bf16(v) : t == CQ_F16 ? cq5_round_f16(v) : v;
}

/* 16 consecutive values of a scale-dtype array as f32. */
CQ_INLINE __m512 cq5_load_scale(const void *p, cq_dtype t) {
    if (t == CQ_F32) return _mm512_loadu_ps(p);
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    if (t == CQ_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

CQ_INLINE __m512 cq5_tile_scale(const cq_mm_weight *w, const void *base, int64_t tile, int64_t g) {
    return cq5_load_scale((const uint8_t *)base + (size_t)((tile * w->groups + g) * CQ_TILE_ROWS) * w->scale_elt,
                          w->scale_dtype);
}

CQ_INLINE __mmask16 cq5_tile_mask(const cq_mm_weight *w, int64_t tile) {
    int64_t rem = w->n - tile * CQ_TILE_ROWS;
    return rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
}

/* y[m, 16*tile + lane] = round_y(v) (+ bias, rounded again), for the lanes in the mask. */
CQ_INLINE void cq5_store_out(const cq__mm_args *a, int64_t m, int64_t tile, __m512 v, __mmask16 mask) {
    int64_t n0 = tile * CQ_TILE_ROWS;
    v = cq5_round(v, a->y_dtype);
    if (a->bias) v = cq5_round(_mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a->bias + n0)), a->y_dtype);
    size_t off = (size_t)(m * a->ldy + n0);
    if (a->y_dtype == CQ_F32) {
        _mm512_mask_storeu_ps((float *)a->y + off, mask, v);
    } else if (a->y_dtype == CQ_F16) {
        __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16((uint16_t *)a->y + off, mask, h);
    } else {
        /* v is already bf16-exact (or the 0xFFFF NaN), so truncation is the conversion. */
        __m256i h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16));
        _mm256_mask_storeu_epi16((uint16_t *)a->y + off, mask, h);
    }
}

/* Sum of the 16 int32 lanes (exact). */
CQ_INLINE int32_t cq5_hsum_epi32(__m512i v) { return _mm512_reduce_add_epi32(v); }

/* 4 bytes at p as a broadcast int32; reading exactly 4 bytes. */
CQ_INLINE __m512i cq5_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

#endif
