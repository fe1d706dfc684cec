/*
 * vec_avx512.c - AVX-512 elementwise kernels: f16/bf16/fp8 conversions, absmax, quanto's int8
 * quantize / dequantize, and the fast-mode per-block activation quantizer. Each reproduces
 * ref/ref_vec.c bit for bit (tests/test_kernels_vec.c checks every variant); tails use masked
 * loads and stores, so nothing reads or writes outside the caller's arrays.
 */
#include "kernels/x86/simd_avx512.h"

#include <math.h>

static inline __mmask16 tail_mask(int64_t rem) {
    return rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1u);
}

void cq__avx512_f32_to_f16(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

void cq__avx512_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
    }
}

void cq__avx512_f32_to_bf16(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512i b = cq5_bf16_bits_hi(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(b, 16)));
    }
}

void cq__avx512_bf16_to_f32(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512i h = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
    }
}

/* ---- fp8 ------------------------------------------------------------------------------------
 * The encoder follows core/dtype_convert.c's fp8_encode step by step: normal values round the
 * f32 bits half to even at the fp8 mantissa width; values below the smallest normal are
 * scaled by a power of two (exact) and rounded to an integer code; overflow gives inf (e5m2)
 * or NaN (e4m3fn); NaN gives sign | 0x7f. */
static inline __m128i fp8_encode16(__m512 v, int mbits, int bias, int max_code, bool has_inf) {
    __m512i u = _mm512_castps_si512(v);
    __m512i sign = _mm512_slli_epi32(_mm512_srli_epi32(u, 31), 7);
    __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    int shift = 23 - mbits;
    __m512i odd = _mm512_and_si512(_mm512_srli_epi32(a, shift), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(a, _mm512_add_epi32(odd, _mm512_set1_epi32((1 << (shift - 1)) - 1)));
    __m512i mag = _mm512_sub_epi32(_mm512_srli_epi32(r, shift), _mm512_set1_epi32((127 - bias) << mbits));
    __mmask16 sub = _mm512_cmplt_epu32_mask(a, _mm512_set1_epi32((127 - bias + 1) << 23));
    float scale = (float)(1u << (bias - 1 + mbits));
    __m512i mag_sub = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_castsi512_ps(a), _mm512_set1_ps(scale)));
    mag = _mm512_mask_mov_epi32(mag, sub, mag_sub);
    __mmask16 over = _mm512_cmpgt_epi32_mask(mag, _mm512_set1_epi32(max_code));
    mag = _mm512_mask_mov_epi32(mag, over, _mm512_set1_epi32(has_inf ? max_code + 1 : 0x7f));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(a, _mm512_set1_epi32(0x7f800000));
    mag = _mm512_mask_mov_epi32(mag, nan, _mm512_set1_epi32(0x7f));
    return _mm512_cvtepi32_epi8(_mm512_or_si512(mag, sign));
}

void cq__avx512_f32_to_e4m3(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm_mask_storeu_epi8(y + i, m, fp8_encode16(_mm512_maskz_loadu_ps(m, x + i), 3, 7, 0x7e, false));
    }
}

void cq__avx512_f32_to_e5m2(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm_mask_storeu_epi8(y + i, m, fp8_encode16(_mm512_maskz_loadu_ps(m, x + i), 2, 15, 0x7b, true));
    }
}

/* e4m3fn -> f16 bits (magnitude << 7, sign to bit 15) is the value * 2^-8 for normal and
 * subnormal codes alike, so f16 -> f32 and one exact multiply decode both without f32
 * denormal arithmetic (microcode assists); 0x7f / 0xff are NaN. */
static inline __m512 e4m3_decode16(__m128i b) {
    __m256i v = _mm256_cvtepu8_epi16(b);
    __m256i mag = _mm256_and_si256(v, _mm256_set1_epi16(0x7f));
    __m256i h = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi16(0x80)), 8));
    __m512 f = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(0x1p8f));
    __mmask16 nan = _mm256_cmpeq_epi16_mask(mag, _mm256_set1_epi16(0x7f));
    __m512i sign = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_srli_epi16(v, 7)), 31);
    return _mm512_mask_mov_ps(f, nan, _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_set1_epi32(0x7ff00000))));
}

/* e5m2 is the top byte of an f16. */
static inline __m512 e5m2_decode16(__m128i b) {
    return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8));
}

void cq__avx512_e4m3_to_f32(const uint8_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, e4m3_decode16(_mm_maskz_loadu_epi8(m, x + i)));
    }
}

void cq__avx512_e5m2_to_f32(const uint8_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, e5m2_decode16(_mm_maskz_loadu_epi8(m, x + i)));
    }
}

/* 16 elements of an F32 / F16 / BF16 array as f32 (zeros outside the mask). */
static inline __m512 load16(const void *x, cq_dtype t, int64_t i, __mmask16 m) {
    if (t == CQ_F32) return _mm512_maskz_loadu_ps(m, (const float *)x + i);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)x + i);
    if (t == CQ_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* NaN-propagating: a NaN element makes the result NaN (the ref's positive quiet NaN). */
float cq__avx512_absmax(const void *x, cq_dtype t, int64_t n) {
    __m512 acc = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (int64_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_abs_ps(load16(x, t, i, tail_mask(n - i)));
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        acc = _mm512_max_ps(acc, v);
    }
    return nan ? NAN : _mm512_reduce_max_ps(acc);
}

void cq__avx512_quantize_i8(const void *x, cq_dtype t, int64_t n, float scale, int8_t *q) {
    __m512 s = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = cq5_round(_mm512_div_ps(load16(x, t, i, m), s), t);
        __mmask16 bad = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-128.0f)), _mm512_set1_ps(127.0f));
        __m512i c = _mm512_maskz_mov_epi32((__mmask16)~bad, _mm512_cvtps_epi32(v));
        if (scale == 0.0f) c = _mm512_setzero_si512();
        _mm_mask_storeu_epi8(q + i, m, _mm512_cvtepi32_epi8(c));
    }
}

void cq__avx512_dequantize_i8(const int8_t *q, int64_t n, float scale, void *y, cq_dtype t) {
    __m512 s = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(s, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, q + i))));
        if (t == CQ_F32) {
            _mm512_mask_storeu_ps((float *)y + i, m, v);
        } else if (t == CQ_F16) {
            _mm256_mask_storeu_epi16((uint16_t *)y + i, m,
                                     _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        } else {
            __m512i b = cq5_bf16_bits_hi(v);
            _mm256_mask_storeu_epi16((uint16_t *)y + i, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(b, 16)));
        }
    }
}

/* Fast-mode activation blocks (ref: quantize_rows_ref). max(v, acc) returns acc when v is NaN,
 * so NaN elements never raise amax; max(t, -127) maps a NaN t to -127 as the ref does. */
void cq__avx512_quantize_rows(const cq_mm_weight *w, const void *x, cq_dtype xt, int64_t ldx, int64_t m0,
                              int64_t m1, uint8_t *xb) {
    size_t row_bytes = cq__qrow_bytes(w), code_bytes = cq__qrow_codes_bytes(w);
    for (int64_t m = m0; m < m1; m++) {
        uint8_t *out = xb + (size_t)m * row_bytes;
        int8_t *codes = (int8_t *)out;
        cq__qblock *blocks = (cq__qblock *)(out + code_bytes);
        memset(codes, 0, code_bytes);
        for (int64_t g = 0; g < w->groups; g++) {
            for (int64_t b = 0; b < w->nblk; b++) {
                int64_t k0 = b * w->blk, k1 = k0 + w->blk < w->gs ? k0 + w->blk : w->gs;
                int64_t base = m * ldx + g * w->gs;
                __m512 vmax = _mm512_setzero_ps();
                for (int64_t k = k0; k < k1; k += 16) {
                    __m512 v = _mm512_abs_ps(load16(x, xt, base + k, tail_mask(k1 - k)));
                    vmax = _mm512_max_ps(v, vmax);
                }
                float amax = _mm512_reduce_max_ps(vmax);
                cq__qblock *blk = &blocks[g * w->nblk + b];
                blk->d = 0.0f, blk->qsum = 0, blk->dq = 0.0f, blk->pad = 0;
                if (!(amax >= 0x1p-100f)) continue;
                float d = amax / 127.0f, id = 1.0f / d;
                __m512 vid = _mm512_set1_ps(id);
                __m512i qs = _mm512_setzero_si512();
                for (int64_t k = k0; k < k1; k += 16) {
                    __mmask16 mk = tail_mask(k1 - k);
                    __m512 v = _mm512_mul_ps(load16(x, xt, base + k, mk), vid);
                    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
                    __m512i c = _mm512_maskz_mov_epi32(mk, _mm512_cvtps_epi32(v));
                    qs = _mm512_add_epi32(qs, c);
                    _mm_mask_storeu_epi8(codes + g * w->gsp + k, mk, _mm512_cvtepi32_epi8(c));
                }
                int32_t qsum = _mm512_reduce_add_epi32(qs);
                blk->d = d, blk->qsum = qsum, blk->dq = d * (float)qsum;
            }
        }
    }
}
