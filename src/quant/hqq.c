/*
 * hqq.c - optimum-quanto's HqqOptimizer (Half-Quadratic Quantization, Badri & Shaji): starting
 * from the MaxOptimizer's (scale, shift), it repeatedly sets the shift to the group mean of
 * code*scale - (W - shrink(W - W_hat)) and keeps it while the mean absolute error drops.
 * Only the shift moves. Every elementwise op rounds to the input dtype as torch does; the two
 * means are computed in f32 in the order ATen's CPU cascade sum uses (emulated below), so the
 * results match quanto bit for bit except where torch's vectorized powf (SLEEF, 1 ulp) and
 * glibc's powf disagree. docs/NUMERICS.md states the bound. Not here: the Max optimizer and
 * the affine codes (affine.c).
 */
#include "quant_internal.h"

/* ---- ATen's cascade sum (aten/src/ATen/native/cpu/SumKernel.cpp) -----------------------
 * torch sums floats in a fixed but unusual order: 4 interleaved accumulators (ILP), a
 * cascade of 4 levels that folds every 16+ additions, and for contiguous rows, lanes of a
 * Vectorized<float>. The sum kernel is not registered for AVX-512, so x86 torch runs its
 * AVX2 build (8 lanes) on AVX2 and AVX-512 CPUs alike (checked against torch 2.6 in the
 * goldens). We replay that order so that f32 means are bit-identical. */

#define TORCH_VEC 8
#define TORCH_LEVELS 4
#define TORCH_ILP 4

static int64_t ceil_log2(int64_t x) {
    if (x <= 2) return 1;
    return 64 - __builtin_clzll((uint64_t)(x - 1));
}

/* Sums `nrows` interleaved series of `size` items; item (i, k) is `w` consecutive lanes at
 * in + i*row_stride + k*col_stride. */
static inline __attribute__((always_inline)) void multi_row_sum(const float *in, int64_t row_stride,
                                                                 int64_t col_stride, int64_t size, int nrows, int w,
                                                                 float out[TORCH_ILP][TORCH_VEC]) {
    int64_t level_power = ceil_log2(size) / TORCH_LEVELS;
    if (level_power < 4) level_power = 4;
    int64_t level_step = (int64_t)1 << level_power, level_mask = level_step - 1;
    float acc[TORCH_LEVELS][TORCH_ILP][TORCH_VEC];
    memset(acc, 0, sizeof acc);
    int64_t i = 0;
    while (i + level_step <= size) {
        for (int64_t j = 0; j < level_step; j++, i++)
            for (int k = 0; k < nrows; k++)
                for (int l = 0; l < w; l++) acc[0][k][l] += in[i * row_stride + k * col_stride + l];
        for (int j = 1; j < TORCH_LEVELS; j++) {
            for (int k = 0; k < nrows; k++)
                for (int l = 0; l < w; l++) {
                    acc[j][k][l] += acc[j - 1][k][l];
                    acc[j - 1][k][l] = 0.0f;
                }
            if ((i & (level_mask << (j * level_power))) != 0) break;
        }
    }
    for (; i < size; i++)
        for (int k = 0; k < nrows; k++)
            for (int l = 0; l < w; l++) acc[0][k][l] += in[i * row_stride + k * col_stride + l];
    for (int j = 1; j < TORCH_LEVELS; j++)
        for (int k = 0; k < nrows; k++)
            for (int l = 0; l < w; l++) acc[0][k][l] += acc[j][k][l];
    for (int k = 0; k < nrows; k++)
        for (int l = 0; l < w; l++) out[k][l] = acc[0][k][l];
}

/* row_sum: `size` items of w lanes, stride in_stride, folded through 4 ILP accumulators. */
static inline __attribute__((always_inline)) void row_sum(const float *in, int64_t in_stride, int64_t size, int w,
                                                           float out[TORCH_VEC]) {
    float part[TORCH_ILP][TORCH_VEC];
    int64_t size_ilp = size / TORCH_ILP;
    multi_row_sum(in, in_stride * TORCH_ILP, in_stride, size_ilp, TORCH_ILP, w, part);
    for (int64_t i = size_ilp * TORCH_ILP; i < size; i++)
        for (int l = 0; l < w; l++) part[0][l] += in[i * in_stride + l];
    for (int k = 1; k < TORCH_ILP; k++)
        for (int l = 0; l < w; l++) part[0][l] += part[k][l];
    for (int l = 0; l < w; l++) out[l] = part[0][l];
}

/* vectorized_inner_sum for one contiguous row of n >= TORCH_VEC floats. */
static float inner_sum(const float *x, int64_t n) {
    float vec[TORCH_VEC];
    int64_t vec_size = n / TORCH_VEC;
    row_sum(x, TORCH_VEC, vec_size, TORCH_VEC, vec);
    float total = 0.0f;
    for (int64_t k = vec_size * TORCH_VEC; k < n; k++) total += x[k];
    for (int l = 0; l < TORCH_VEC; l++) total += vec[l];
    return total;
}

static float scalar_row_sum(const float *x, int64_t stride, int64_t n) {
    float v[TORCH_VEC];
    row_sum(x, stride, n, 1, v);
    return v[0];
}

/* vectorized_outer_sum / scalar_outer_sum: reduce size0 rows of stride rs, size1 contiguous
 * columns; the column's position decides which of three orders it gets. */
static void outer_sum(const float *x, int64_t size0, int64_t rs, int64_t size1, float *out) {
    float sums[TORCH_ILP][TORCH_VEC];
    int64_t j = 0;
    if (size1 >= TORCH_VEC) {
        for (; j + TORCH_ILP * TORCH_VEC <= size1; j += TORCH_ILP * TORCH_VEC) {
            multi_row_sum(x + j, rs, TORCH_VEC, size0, TORCH_ILP, TORCH_VEC, sums);
            for (int k = 0; k < TORCH_ILP; k++) memcpy(out + j + k * TORCH_VEC, sums[k], sizeof sums[k]);
        }
        for (; j + TORCH_VEC <= size1; j += TORCH_VEC) row_sum(x + j, rs, size0, TORCH_VEC, out + j);
    } else {
        for (; j + TORCH_ILP - 1 < size1; j += TORCH_ILP) {
            multi_row_sum(x + j, rs, 1, size0, TORCH_ILP, 1, sums);
            for (int k = 0; k < TORCH_ILP; k++) out[j + k] = sums[k][0];
        }
    }
    for (; j < size1; j++) out[j] = scalar_row_sum(x + j, rs, size0);
}

void cq__torch_sum_2d(const float *x, int64_t size0, int64_t stride0, int64_t size1, int64_t stride1,
                      float *out) {
    if (stride0 == 1 && size0 >= TORCH_VEC) {
        /* Each output is one row's sum in torch's order; rows may go to any thread. */
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (size0 * size1 > 65536)
        for (int64_t j = 0; j < size1; j++) out[j] = inner_sum(x + j * stride1, size0);
    } else if (stride1 == 1 && size1 > 1) {
        outer_sum(x, size0, stride0, size1, out);
    } else {
        for (int64_t j = 0; j < size1; j++) out[j] = scalar_row_sum(x + j * stride1, stride0, size0);
    }
}

/* ---- the optimizer ------------------------------------------------------------------------ */

/* One HQQ step's elementwise part: t = round(code*scale) - round(W - shrink(W - W_hat)), all
 * rounded to dt, where shrink(x) = sign(x) * relu(|x| - (1/beta) * |x|^(p-1)) (for p = 1:
 * relu(|x| - 1/beta)). One segment of elements with scales s[0] (ps 0) or s[0..] (ps 1). */
static inline __attribute__((always_inline)) void target_seg(const void *w, const void *w_hat, const uint8_t *codes,
                                                             const float *s, int ps, cq_dtype dt, int64_t i0,
                                                             int64_t i1, float inv_beta, float pexp, bool lp_is_one,
                                                             float *t) {
    for (int64_t i = i0; i < i1; i++) {
        float wv = cq__ld(w, dt, i);
        float error = cq__rnd(wv - cq__ld(w_hat, dt, i), dt);
        float a = fabsf(error), d;
        if (lp_is_one) d = cq__rnd(a - cq__rnd(inv_beta, dt), dt);
        else d = cq__rnd(a - cq__rnd(inv_beta * cq__rnd(powf(a, pexp), dt), dt), dt);
        float relu = d > 0.0f || d != d ? d : 0.0f;
        float sign = error > 0.0f ? 1.0f : error < 0.0f ? -1.0f : error == error ? 0.0f : error;
        float e = sign * relu;
        t[i] = cq__rnd(cq__rnd((float)codes[i] * s[(i - i0) * ps], dt) - cq__rnd(wv - e, dt), dt);
    }
}

static inline __attribute__((always_inline)) void target_walk(const void *w, const void *w_hat, const uint8_t *codes,
                                                              const float *s, cq_dtype dt, cq__layout l, int64_t lo,
                                                              int64_t hi, float inv_beta, float pexp, bool lp_is_one,
                                                              float *t) {
    for (int64_t i = lo, e; i < hi; i = e) {
        int64_t j = cq__segment(l, i, hi, &e);
        if (l.inner == 1) target_seg(w, w_hat, codes, s + j, 1, dt, i, e, inv_beta, pexp, lp_is_one, t);
        else target_seg(w, w_hat, codes, s + j, 0, dt, i, e, inv_beta, pexp, lp_is_one, t);
    }
}

#define HQQ_CHUNK ((int64_t)1 << 14)

static void hqq_targets(const cq_tensor *w, const void *w_hat, const uint8_t *codes, const float *s, cq__layout l,
                        float inv_beta, float pexp, bool lp_is_one, float *t) {
    int64_t n = cq_tensor_numel(w), chunks = (n + HQQ_CHUNK - 1) / HQQ_CHUNK;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * HQQ_CHUNK, hi = lo + HQQ_CHUNK < n ? lo + HQQ_CHUNK : n;
        switch (w->dtype) {
        case CQ_F16: target_walk(w->data, w_hat, codes, s, CQ_F16, l, lo, hi, inv_beta, pexp, lp_is_one, t); break;
        case CQ_BF16: target_walk(w->data, w_hat, codes, s, CQ_BF16, l, lo, hi, inv_beta, pexp, lp_is_one, t); break;
        default: target_walk(w->data, w_hat, codes, s, CQ_F32, l, lo, hi, inv_beta, pexp, lp_is_one, t); break;
        }
    }
}

/* torch.abs(W - W_hat).mean() in W's dtype (f32 sum, divided, rounded). Serial: it replays
 * torch's single-threaded order over the whole tensor. */
static float mean_abs_error(const cq_tensor *w, const void *w_hat, float *tmp) {
    int64_t n = cq_tensor_numel(w);
    cq_dtype dt = w->dtype;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (n > 65536)
    for (int64_t i = 0; i < n; i++) tmp[i] = fabsf(cq__rnd(cq__ld(w->data, dt, i) - cq__ld(w_hat, dt, i), dt));
    float sum;
    cq__torch_sum_2d(tmp, n, 1, 1, n, &sum);
    return cq_round_to_dtype(sum / (float)n, dt);
}

cq_status cq__hqq_optimize(const cq_tensor *x, int bits, int axis, const cq_hqq_opts *opts,
                           cq_tensor **scale, cq_tensor **shift, cq_err *err) {
    cq_hqq_opts o = opts ? *opts : cq_hqq_default_opts();
    if (o.iters < 0 || !(o.beta > 0) || !(o.kappa > 0))
        return cq_err_set(err, CQ_E_ARG, "hqq optimizer: iters must be >= 0 and beta, kappa > 0");
    cq_status s = cq__max_optimize(x, bits, axis, scale, shift, err);
    if (s) return s;
    cq_dtype dt = x->dtype;
    size_t es = cq_dtype_size(dt);
    int64_t n = cq_tensor_numel(x);
    /* A 2-D view: (rows, cols) with one parameter per row (axis 0) or per column (axis -1);
     * the group mean runs over the other dimension. quanto's torch.mean(dim=-1) would only
     * reduce the last dim of an N-D weight; we reduce the whole group (docs/NUMERICS.md). */
    int64_t rows, cols;
    cq__layout lay;
    if (axis == 0) {
        rows = x->shape[0], cols = rows ? n / rows : 0;
        lay = (cq__layout){1, rows, cols};
    } else {
        cols = x->shape[x->ndim - 1], rows = cols ? n / cols : 0;
        lay = (cq__layout){rows, cols, 1};
    }
    int64_t nparams = axis == 0 ? rows : cols;
    cq_tensor *shift_new = NULL;
    uint8_t *codes = malloc((size_t)n + 1), *codes_new = malloc((size_t)n + 1);
    void *w_hat = malloc((size_t)n * es + 1), *w_hat_new = malloc((size_t)n * es + 1);
    float *t = malloc((size_t)n * sizeof(float) + 1), *sums = malloc((size_t)nparams * sizeof(float) + 1);
    float *scales = malloc((size_t)nparams * sizeof(float) + 1);
    s = cq_tensor_clone(&shift_new, *shift, err);
    if (!s && (!codes || !codes_new || !w_hat || !w_hat_new || !t || !sums || !scales))
        s = cq_err_set(err, CQ_E_NOMEM, "hqq optimizer: out of memory for %lld elements", (long long)n);
    if (!s) s = cq__affine_codes(x, *scale, *shift, lay, bits, codes, err);
    if (!s) s = cq__affine_dequant(codes, *scale, *shift, lay, w_hat, err);
    if (s) goto done;
    for (int64_t j = 0; j < nparams; j++) scales[j] = cq__ld((*scale)->data, dt, j);
    float best_error = mean_abs_error(x, w_hat, t);
    double beta = o.beta;
    /* How torch treats the Python scalars (checked against torch 2.6 for every f16/bf16
     * value): pow's exponent and a subtracted scalar are first rounded to the tensor's dtype;
     * a multiplying scalar enters the f32 math unrounded. */
    float pexp = cq__rnd((float)(o.lp_norm - 1.0), dt);
    bool lp_is_one = o.lp_norm == 1.0;
    for (int it = 0; it < o.iters; it++) {
        hqq_targets(x, w_hat, codes, scales, lay, (float)(1.0 / beta), pexp, lp_is_one, t);
        if (axis == 0) cq__torch_sum_2d(t, cols, 1, rows, cols, sums);
        else cq__torch_sum_2d(t, rows, cols, cols, 1, sums);
        float count = (float)(axis == 0 ? cols : rows);
        /* A zero-scale (constant) group keeps -rmin, which reproduces it exactly; the mean
         * would only add rounding noise (quanto has NaN there). */
        for (int64_t j = 0; j < nparams; j++)
            cq__st(shift_new->data, dt, j, scales[j] == 0.0f ? cq__ld((*shift)->data, dt, j) : cq__rnd(sums[j] / count, dt));
        s = cq__affine_codes(x, *scale, shift_new, lay, bits, codes_new, err);
        if (!s) s = cq__affine_dequant(codes_new, *scale, shift_new, lay, w_hat_new, err);
        if (s) goto done;
        float mean_error = mean_abs_error(x, w_hat_new, t);
        if (!(mean_error < best_error)) break;
        best_error = mean_error;
        memcpy((*shift)->data, shift_new->data, (size_t)nparams * es);
        beta *= o.kappa;
        uint8_t *tc = codes;
        codes = codes_new, codes_new = tc;
        void *tw = w_hat;
        w_hat = w_hat_new, w_hat_new = tw;
    }
done:
    free(codes), free(codes_new), free(w_hat), free(w_hat_new), free(t), free(sums), free(scales);
    cq_tensor_free(shift_new);
    if (s) {
        cq_tensor_free(*scale), cq_tensor_free(*shift);
        *scale = *shift = NULL;
    }
    return s;
}
