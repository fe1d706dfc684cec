/*
 * vec.c - the public elementwise kernels (cq_vec_*): each forwards to the dispatched variant,
 * splitting long arrays into fixed chunks across threads. Chunks are independent (absmax
 * combines them with max, which is exact), so the thread count never changes a result.
 */
#include "kernels/kernels_internal.h"

#include <math.h>
#include <stdlib.h>

#define VEC_CHUNK ((int64_t)1 << 16)

static inline int64_t n_chunks(int64_t n) { return n <= 0 ? 0 : cq__ceil_div(n, VEC_CHUNK); }

/* Runs STMT for chunks [lo, hi) of n elements, in parallel when there are several. */
#define FOR_CHUNKS(n, STMT)                                                                            \
    do {                                                                                               \
        int64_t nc_ = n_chunks(n);                                                                     \
        if (nc_ == 1) { /* one chunk: no parallel region (its fork/join costs more than the work) */ \
            int64_t lo = 0, len = (n);                                                                 \
            STMT;                                                                                      \
            break;                                                                                     \
        }                                                                                              \
        _Pragma("omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (nc_ > 1)")  \
        for (int64_t c_ = 0; c_ < nc_; c_++) {                                                         \
            int64_t lo = c_ * VEC_CHUNK, len = (n) - lo < VEC_CHUNK ? (n) - lo : VEC_CHUNK;           \
            STMT;                                                                                      \
        }                                                                                              \
    } while (0)

void cq_vec_f32_to_f16(const float *x, uint16_t *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(f32_to_f16)(x + lo, y + lo, len));
}
void cq_vec_f16_to_f32(const uint16_t *x, float *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(f16_to_f32)(x + lo, y + lo, len));
}
void cq_vec_f32_to_bf16(const float *x, uint16_t *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(f32_to_bf16)(x + lo, y + lo, len));
}
void cq_vec_bf16_to_f32(const uint16_t *x, float *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(bf16_to_f32)(x + lo, y + lo, len));
}
void cq_vec_f32_to_f8_e4m3fn(const float *x, uint8_t *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(f32_to_e4m3)(x + lo, y + lo, len));
}
void cq_vec_f8_e4m3fn_to_f32(const uint8_t *x, float *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(e4m3_to_f32)(x + lo, y + lo, len));
}
void cq_vec_f32_to_f8_e5m2(const float *x, uint8_t *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(f32_to_e5m2)(x + lo, y + lo, len));
}
void cq_vec_f8_e5m2_to_f32(const uint8_t *x, float *y, int64_t n) {
    if (!x || !y) return;
    FOR_CHUNKS(n, CQ__VEC(e5m2_to_f32)(x + lo, y + lo, len));
}

static bool is_16bit_float(cq_dtype t) { return t == CQ_F16 || t == CQ_BF16; }

float cq_vec_absmax(const void *x, cq_dtype dtype, int64_t n) {
    if (!x || n <= 0 || (dtype != CQ_F32 && !is_16bit_float(dtype))) return 0.0f;
    size_t es = cq_dtype_size(dtype);
    int64_t nc = n_chunks(n);
    if (nc == 1) return CQ__VEC(absmax)(x, dtype, n); /* no parallel region for one chunk */
    float result = 0.0f;
    bool nan = false;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (nc > 1) \
    reduction(max : result) reduction(|| : nan)
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * VEC_CHUNK, len = n - lo < VEC_CHUNK ? n - lo : VEC_CHUNK;
        float m = CQ__VEC(absmax)((const char *)x + (size_t)lo * es, dtype, len);
        if (m != m) nan = true;
        else if (m > result) result = m;
    }
    return nan ? NAN : result;
}

void cq_vec_quantize_i8(const void *x, cq_dtype dtype, int64_t n, float scale, int8_t *q) {
    if (!x || !q || (dtype != CQ_F32 && !is_16bit_float(dtype))) return;
    size_t es = cq_dtype_size(dtype);
    FOR_CHUNKS(n, CQ__VEC(quantize_i8)((const char *)x + (size_t)lo * es, dtype, len, scale, q + lo));
}

void cq_vec_quantize_f8(const void *x, cq_dtype dtype, int64_t n, float scale, cq_dtype fp8, uint8_t *q) {
    if (!x || !q || (dtype != CQ_F32 && !is_16bit_float(dtype)) || cq__fp8_max(fp8) == 0.0f) return;
    size_t es = cq_dtype_size(dtype);
    FOR_CHUNKS(n, CQ__VEC(quantize_f8)((const char *)x + (size_t)lo * es, dtype, len, scale, fp8, q + lo));
}

void cq_vec_dequantize_i8(const int8_t *q, int64_t n, float scale, void *y, cq_dtype dtype) {
    if (!q || !y || (dtype != CQ_F32 && !is_16bit_float(dtype))) return;
    size_t es = cq_dtype_size(dtype);
    FOR_CHUNKS(n, CQ__VEC(dequantize_i8)(q + lo, len, scale, (char *)y + (size_t)lo * es, dtype));
}

void cq_vec_minmax(const void *x, cq_dtype dtype, int64_t n, float *mn, float *mx) {
    if (!mn || !mx) return;
    *mn = INFINITY, *mx = -INFINITY;
    if (!x || n <= 0 || (dtype != CQ_F32 && !is_16bit_float(dtype))) return;
    int64_t nc = n_chunks(n);
    if (nc == 1) {
        CQ__VEC(minmax)(x, dtype, n, mn, mx);
        return;
    }
    size_t es = cq_dtype_size(dtype);
    float *part = malloc((size_t)nc * 2 * sizeof(float));
    if (!part) { /* no memory for the partials: one thread does it all */
        CQ__VEC(minmax)(x, dtype, n, mn, mx);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads())
    for (int64_t c = 0; c < nc; c++) {
        int64_t lo = c * VEC_CHUNK, len = n - lo < VEC_CHUNK ? n - lo : VEC_CHUNK;
        CQ__VEC(minmax)((const char *)x + (size_t)lo * es, dtype, len, &part[2 * c], &part[2 * c + 1]);
    }
    for (int64_t c = 0; c < nc; c++) *mn = cq__minf(*mn, part[2 * c]), *mx = cq__maxf(*mx, part[2 * c + 1]);
    free(part);
}

void cq_vec_affine_codes(const void *x, cq_dtype dtype, int64_t n, float scale, float shift, int bits,
                         uint8_t *codes) {
    if (!x || !codes || (dtype != CQ_F32 && !is_16bit_float(dtype)) || bits < 1 || bits > 8) return;
    size_t es = cq_dtype_size(dtype);
    float qmax = cq__affine_code_max(bits);
    FOR_CHUNKS(n, CQ__VEC(affine_codes)((const char *)x + (size_t)lo * es, dtype, len, scale, shift, qmax, codes + lo));
}
