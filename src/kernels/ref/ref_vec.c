/*
 * ref_vec.c - scalar reference of the elementwise kernels: dtype conversions (delegating to the
 * core scalar casts, which define them), absmax, quanto's per-tensor int8 quantization and
 * dequantization, and the per-block activation quantization of the fast matmul mode.
 * This file is the specification the SIMD variants must match bit for bit; it is compiled
 * without ISA flags and favours clarity over speed.
 */
#include "kernels/kernels_internal.h"

#include <math.h>

static void f32_to_f16_ref(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f32_to_f16(x[i]);
}
static void f16_to_f32_ref(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f16_to_f32(x[i]);
}
static void f32_to_bf16_ref(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f32_to_bf16(x[i]);
}
static void bf16_to_f32_ref(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_bf16_to_f32(x[i]);
}
static void f32_to_e4m3_ref(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f32_to_f8_e4m3fn(x[i]);
}
static void e4m3_to_f32_ref(const uint8_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f8_e4m3fn_to_f32(x[i]);
}
static void f32_to_e5m2_ref(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f32_to_f8_e5m2(x[i]);
}
static void e5m2_to_f32_ref(const uint8_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = cq_f8_e5m2_to_f32(x[i]);
}

/* NaN-propagating like torch.amax: any NaN element gives NaN (a positive quiet NaN). */
static float absmax_ref(const void *x, cq_dtype t, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = fabsf(cq_load_f32(x, t, i));
        if (v != v) return NAN;
        if (v > m) m = v;
    }
    return m;
}

/* quanto's quantize_symmetric for int8: divide in the input dtype (f32 then rounded to it),
 * round half to even, clamp to [-128, 127]. NaN (and anything divided by a zero scale) -> 0. */
static void quantize_i8_ref(const void *x, cq_dtype t, int64_t n, float scale, int8_t *q) {
    for (int64_t i = 0; i < n; i++) {
        float v = cq__round_y(cq_load_f32(x, t, i) / scale, t);
        if (scale == 0.0f || v != v) {
            q[i] = 0;
            continue;
        }
        v = nearbyintf(v);
        q[i] = (int8_t)(v < -128.0f ? -128 : v > 127.0f ? 127 : (int)v);
    }
}

/* torch.amin / amax of one run, NaN-propagating (any NaN: both NaN). A zero extreme is -0 for
 * the min when the run holds a -0 and +0 for the max when it holds a +0: a total order, so no
 * order of comparison (SIMD lanes, chunks) changes the bits. Empty: +inf and -inf. */
static void minmax_ref(const void *x, cq_dtype t, int64_t n, float *mn, float *mx) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        float v = cq_load_f32(x, t, i);
        if (v != v) {
            *mn = *mx = NAN;
            return;
        }
        lo = cq__minf(lo, v), hi = cq__maxf(hi, v);
    }
    *mn = lo, *mx = hi;
}

/* quanto's affine codes of one run sharing (scale, shift): cq__affine_code per element. */
static void affine_codes_ref(const void *x, cq_dtype t, int64_t n, float scale, float shift, float qmax,
                             uint8_t *codes) {
    for (int64_t i = 0; i < n; i++) codes[i] = (uint8_t)cq__affine_code(cq_load_f32(x, t, i), scale, shift, qmax, t);
}

/* quanto's quantize_symmetric to an fp8 dtype with one scale: x / scale in the input dtype,
 * clamped to +-max (NaN passes), then cast; a zero scale gives 0. */
static void quantize_f8_ref(const void *x, cq_dtype t, int64_t n, float scale, cq_dtype out, uint8_t *q) {
    float qmax = cq__fp8_max(out);
    for (int64_t i = 0; i < n; i++) {
        float v = scale != 0.0f ? cq__round_y(cq_load_f32(x, t, i) / scale, t) : 0.0f;
        v = v < -qmax ? -qmax : v > qmax ? qmax : v;
        q[i] = out == CQ_F8_E4M3FN ? cq_f32_to_f8_e4m3fn(v) : out == CQ_F8_E5M2 ? cq_f32_to_f8_e5m2(v)
                                                                                : cq_f32_to_f8_e4m3fnuz(v);
    }
}

static int32_t sum_i8_ref(const int8_t *x, int64_t n) {
    int32_t s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}

static void dequantize_i8_ref(const int8_t *q, int64_t n, float scale, void *y, cq_dtype t) {
    for (int64_t i = 0; i < n; i++) cq__store_y(y, t, i, scale * (float)q[i]);
}

/* Fast-mode activation blocks. Per block: amax over the block (NaN ignored); blocks whose amax
 * is below 2^-100 (or zero) are all-zero with d = 0, which keeps 1/d finite. Otherwise
 * d = amax / 127, id = 1 / d, q = round_half_even(clamp(x * id, -127, 127)) where the clamp
 * maps NaN to -127 (what max(x, lo) does on x86 and vmaxnm does on arm). */
#define CQ_FAST_TINY 0x1p-100f

static void quantize_rows_ref(const cq_mm_weight *w, const void *x, cq_dtype xt, int64_t ldx, int64_t m0,
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
                float amax = 0.0f;
                for (int64_t k = k0; k < k1; k++) {
                    float v = fabsf(cq_load_f32(x, xt, base + k));
                    if (v > amax) amax = v;
                }
                cq__qblock *blk = &blocks[g * w->nblk + b];
                blk->d = 0.0f, blk->qsum = 0, blk->dq = 0.0f, blk->pad = 0;
                if (!(amax >= CQ_FAST_TINY)) continue;
                float d = amax / 127.0f, id = 1.0f / d;
                int32_t qsum = 0;
                for (int64_t k = k0; k < k1; k++) {
                    float v = cq_load_f32(x, xt, base + k) * id;
                    if (!(v >= -127.0f)) v = -127.0f;
                    if (v > 127.0f) v = 127.0f;
                    int q = (int)nearbyintf(v);
                    codes[g * w->gsp + k] = (int8_t)q;
                    qsum += q;
                }
                blk->d = d, blk->qsum = qsum, blk->dq = d * (float)qsum;
            }
        }
    }
}

/* The tile-kernel part of the table lives in ref_matmul.c. */
extern void cq__ref_matmul_w8a8(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1,
                                 void *scratch);
extern void cq__ref_matmul_exact(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1,
                                 void *scratch);
extern void cq__ref_matmul_fast(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1,
                                 void *scratch);
extern size_t cq__ref_scratch_exact(const cq_mm_weight *w, int64_t m);

static void attn_scores_ref(const float *q, const float *k, int64_t ldk, int64_t n, int64_t d, float scale,
                            float *s) {
    for (int64_t j = 0; j < n; j++) {
        float acc = 0.0f;
        for (int64_t i = 0; i < d; i++) acc = fmaf(q[i], k[i * ldk + j], acc);
        s[j] = acc * scale;
    }
}

static void attn_values_ref(const float *p, const float *v, int64_t ldv, int64_t n, int64_t d, float *o) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < d; i++) o[i] = fmaf(p[j], v[j * ldv + i], o[i]);
}

#define REF_VEC(field, opname, type) {opname "__ref", CQ__OP_##field, CQ__W_NONE, CQ_ISA_REF, 0, 1, 1, {.field = field##_ref}, NULL},
#define REF_GEMM(op, wfmt, act, wt, fn, scratch) \
    {CQ__GEMM_NAME(act, wt, 1, 1, "ref"), CQ__OP_##op, wfmt, CQ_ISA_REF, 0, 1, 1, {.op = fn}, scratch},

/* The reference registers every slot: the one generic kernel per matmul op under each weight
 * format it takes, so every slot has a kernel to fall back to and to be checked against. */
static const cq__kernel ref_kernels[] = {
    CQ__VEC_OPS(REF_VEC)
    REF_GEMM(matmul_w8a8, CQ__W_QINT8, "qs8", "qc8w", cq__ref_matmul_w8a8, NULL)
    REF_GEMM(matmul_exact, CQ__W_QINT8, "f32", "qc8w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_exact, CQ__W_QINT4, "f32", "qb4w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_exact, CQ__W_QINT2, "f32", "qb2w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_exact, CQ__W_F8_E4M3FN, "f32", "f8e4m3w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_exact, CQ__W_F8_E5M2, "f32", "f8e5m2w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_exact, CQ__W_F32, "f32", "f32w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_exact, CQ__W_F16, "f32", "f16w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_exact, CQ__W_BF16, "f32", "bf16w", cq__ref_matmul_exact, cq__ref_scratch_exact)
    REF_GEMM(matmul_fast, CQ__W_QINT8, "qd8", "qc8w", cq__ref_matmul_fast, NULL)
    REF_GEMM(matmul_fast, CQ__W_QINT4, "qd8", "qb4w", cq__ref_matmul_fast, NULL)
    REF_GEMM(matmul_fast, CQ__W_QINT2, "qd8", "qb2w", cq__ref_matmul_fast, NULL)
};

const cq__kernel_list cq__kernels_ref = {ref_kernels, (int)CQ_ARRAY_LEN(ref_kernels)};
