/*
 * ref_matmul.c - scalar reference of the three matmul kinds (W8A8, weight-only exact, weight-only
 * fast), written on the logical weight (code of row n, feature k; scale of row n, group g)
 * rather than on the tiled layout, so it states the arithmetic and nothing else. The SIMD
 * variants reproduce it bit for bit; cquanto.h's kernels section is the prose version.
 */
#include "kernels/kernels_internal.h"

#include <math.h>

static inline float round_s(const cq_mm_weight *w, float v) { return cq__round_y(v, w->scale_dtype); }

static inline float scale_of(const cq_mm_weight *w, int64_t n, int64_t g) {
    return cq__ld_scale(w, w->scale, n / CQ_TILE_ROWS, g, (int)(n % CQ_TILE_ROWS));
}
static inline float shift_of(const cq_mm_weight *w, int64_t n, int64_t g) {
    return cq__ld_scale(w, w->shift, n / CQ_TILE_ROWS, g, (int)(n % CQ_TILE_ROWS));
}

static inline void store_out(const cq__mm_args *a, int64_t m, int64_t n, float v) {
    v = cq__round_y(v, a->y_dtype);
    if (a->bias) v = cq__round_y(v + a->bias[n], a->y_dtype);
    cq__store_y(a->y, a->y_dtype, m * a->ldy + n, v);
}

static inline int64_t row_end(const cq_mm_weight *w, int64_t t1) {
    return t1 * CQ_TILE_ROWS < w->n ? t1 * CQ_TILE_ROWS : w->n;
}

/* The value quanto's dequantization gives weight element (n, k), in the scale dtype; a float
 * weight's stored value. */
static float dequant(const cq_mm_weight *w, int64_t n, int64_t k) {
    if (w->is_float) return cq__w_float(w, n, k); /* the stored value, exactly */
    int64_t g = k / w->gs;
    int c = cq__w_code(w, n, k);
    float s = scale_of(w, n, g);
    if (w->is_float8) {
        float v = w->qtype == CQ_QFLOAT8_E5M2 ? cq_f8_e5m2_to_f32((uint8_t)c) : cq_f8_e4m3fn_to_f32((uint8_t)c);
        return round_s(w, s * v);
    }
    if (w->bits == 8) return round_s(w, s * (float)c);
    return round_s(w, round_s(w, s * (float)c) - shift_of(w, n, g));
}

/* y = round_y(float(sum_k x*q) * round_s(x_scale * scale[n])) (+ bias). */
void cq__ref_matmul_w8a8(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    CQ_UNUSED(scratch);
    const cq_mm_weight *w = a->w;
    for (int64_t n = t0 * CQ_TILE_ROWS; n < row_end(w, t1); n++) {
        float os = round_s(w, a->x_scale * scale_of(w, n, 0));
        for (int64_t m = m0; m < m1; m++) {
            const int8_t *x = a->xq + m * a->ldx;
            int32_t acc = 0;
            for (int64_t k = 0; k < w->k; k++) acc += (int32_t)x[k] * cq__w_code(w, n, k);
            store_out(a, m, n, round_s(w, (float)acc * os));
        }
    }
}

/* Scratch: one dequantized weight row. */
size_t cq__ref_scratch_exact(const cq_mm_weight *w, int64_t m) {
    CQ_UNUSED(m);
    return (size_t)w->k * sizeof(float);
}

/* acc = +0; acc = fmaf(x[k], w[k], acc) for k = 0..K-1 in order; y = round_y(acc) (+ bias). */
void cq__ref_matmul_exact(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    const cq_mm_weight *w = a->w;
    float *wrow = scratch;
    for (int64_t n = t0 * CQ_TILE_ROWS; n < row_end(w, t1); n++) {
        for (int64_t k = 0; k < w->k; k++) wrow[k] = dequant(w, n, k);
        for (int64_t m = m0; m < m1; m++) {
            const float *x = a->xf + m * a->ldx;
            float acc = 0.0f;
            for (int64_t k = 0; k < w->k; k++) acc = fmaf(x[k], wrow[k], acc);
            store_out(a, m, n, acc);
        }
    }
}

/* Per activation block b (in increasing k) of group g:
 *   isum = sum of code * q over the block (exact int32; qint8 codes are the signed weights)
 *   acc = fmaf(d_b, s_g * float(isum), acc)
 *   qint2/4 only: acc = fmaf(-shift_g, dq_b, acc)        with dq_b = d_b * float(sum of q)
 * y = round_y(acc) (+ bias). */
void cq__ref_matmul_fast(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch) {
    CQ_UNUSED(scratch);
    const cq_mm_weight *w = a->w;
    size_t row_bytes = cq__qrow_bytes(w), code_bytes = cq__qrow_codes_bytes(w);
    for (int64_t n = t0 * CQ_TILE_ROWS; n < row_end(w, t1); n++) {
        for (int64_t m = m0; m < m1; m++) {
            const uint8_t *row = a->xb + (size_t)m * row_bytes;
            const int8_t *q = (const int8_t *)row;
            const cq__qblock *blocks = (const cq__qblock *)(row + code_bytes);
            float acc = 0.0f;
            for (int64_t g = 0; g < w->groups; g++) {
                float s = scale_of(w, n, g), sh = w->bits < 8 ? shift_of(w, n, g) : 0.0f;
                for (int64_t b = 0; b < w->nblk; b++) {
                    int64_t k0 = b * w->blk, k1 = k0 + w->blk < w->gs ? k0 + w->blk : w->gs;
                    int32_t isum = 0;
                    for (int64_t k = k0; k < k1; k++)
                        isum += cq__w_code(w, n, g * w->gs + k) * (int32_t)q[g * w->gsp + k];
                    const cq__qblock *blk = &blocks[g * w->nblk + b];
                    acc = fmaf(blk->d, s * (float)isum, acc);
                    if (w->bits < 8) acc = fmaf(-sh, blk->dq, acc);
                }
            }
            store_out(a, m, n, acc);
        }
    }
}
