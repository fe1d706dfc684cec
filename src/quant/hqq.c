/*
 * hqq.c - optimum-quanto's HqqOptimizer (Half-Quadratic Quantization, Badri & Shaji): starting
 * from the MaxOptimizer's (scale, shift), it repeatedly sets the shift to the group mean of
 * code*scale - (W - shrink(W - W_hat)) and keeps it while the mean absolute error drops.
 * Only the shift moves. Every elementwise op rounds to the input dtype as torch does; the two
 * means are computed in f32 in the order ATen's CPU cascade sum uses (torch_sum.c), so the
 * results match quanto bit for bit except where torch's vectorized powf (SLEEF, 1 ulp) and
 * glibc's powf disagree. docs/NUMERICS.md states the bound. Not here: the Max optimizer
 * (max_optimizer.c) and the affine code of one element (core/elem.h).
 */
#include "quant_internal.h"
#include "quant/torch_sum.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- the optimizer ------------------------------------------------------------------------
 * No buffer of the tensor's size: each pass recomputes codes and W_hat from (W, scale, shift)
 * chunk by chunk, so the working memory is the parameters plus one chunk per thread. A step is
 * two passes: the update (targets and their group means, chunked by parameter) and the error
 * of the new shift (chunked in flat order and summed in that order). */

/* Elements per work chunk (each thread's buffer holds about one); tests lower it so that small
 * tensors span many chunks. */
CQ__TEST_KNOB(int64_t, cq__hqq_chunk_elems, (int64_t)1 << 16, cq_experimental_set_hqq_chunk_elems)

cq_hqq_opts cq_hqq_default_opts(void) { return (cq_hqq_opts){0.7, 10.0, 1.01, 20, NULL}; }

typedef struct hqq_job {
    const void *w;
    cq_dtype dt;
    int64_t rows, cols, n; /* the weight as (rows, cols) */
    bool per_row;          /* axis 0: one parameter per row; else one per column */
    float qmax, inv_beta, pexp;
    bool lp_is_one;
    const float *scale, *shift; /* per parameter, f32 (exact in dt) */
    float *shift_next, *sums;
    int threads;
    float *work; /* per thread: work_cap floats of targets or errors, work_cap of scratch */
    int64_t work_cap, chunk_params, n_chunks;
    const volatile int *cancel; /* the caller's; a pass stops early once it reads non-zero */
} hqq_job;

static bool cancelled(const hqq_job *h) { return h->cancel && *h->cancel; }

/* One HQQ step's elementwise part for n consecutive elements of W from flat index i0, element i
 * with parameters s[i*ps], sh[i*ps]: t = round(code*scale) - round(W - shrink(W - W_hat)), all
 * rounded to dt, where shrink(x) = sign(x) * relu(|x| - (1/beta) * |x|^(p-1)) (for p = 1:
 * relu(|x| - 1/beta)). Three loops, so that the two around the scalar powf vectorize; u holds
 * n floats of scratch. */
static inline __attribute__((always_inline)) void hqq_target_seg(const hqq_job *h, cq_dtype dt, int64_t i0, int64_t n,
                                                                 const float *s, const float *sh, int ps, float *t,
                                                                 float *u) {
    float qmax = h->qmax;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float wv = cq__ld(h->w, dt, i0 + i), sv = s[i * ps], shv = sh[i * ps];
        t[i] = cq__rnd(wv - cq__affine_value(cq__affine_code(wv, sv, shv, qmax, dt), sv, shv, dt), dt);
    }
    if (!h->lp_is_one)
        for (int64_t i = 0; i < n; i++) u[i] = cq__rnd(powf(fabsf(t[i]), h->pexp), dt);
    float inv_beta = h->inv_beta, inv_beta_dt = cq__rnd(h->inv_beta, dt);
    bool lp_is_one = h->lp_is_one;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float wv = cq__ld(h->w, dt, i0 + i), sv = s[i * ps], shv = sh[i * ps];
        float code = cq__affine_code(wv, sv, shv, qmax, dt), error = t[i], a = fabsf(error);
        float d = lp_is_one ? cq__rnd(a - inv_beta_dt, dt) : cq__rnd(a - cq__rnd(inv_beta * u[i], dt), dt);
        float relu = d > 0.0f || d != d ? d : 0.0f;
        float sign = error > 0.0f ? 1.0f : error < 0.0f ? -1.0f : error == error ? 0.0f : error;
        t[i] = cq__rnd(cq__rnd(code * sv, dt) - cq__rnd(wv - sign * relu, dt), dt);
    }
}

/* Parameters [p0, p1): their targets into t, summed in torch's order for a (rows, cols) tensor
 * reduced along its last dim (per row) or first dim (per column). Column chunks start at
 * multiples of 32 and the last one is at least 32 wide, so each column gets the order its
 * position in the whole tensor gives it (outer_sum). */
static inline __attribute__((always_inline)) void hqq_update_chunk(const hqq_job *h, cq_dtype dt, int64_t p0,
                                                                   int64_t p1, float *t, float *u) {
    int64_t w = p1 - p0;
    if (h->per_row) {
        for (int64_t j = p0; j < p1; j++)
            hqq_target_seg(h, dt, j * h->cols, h->cols, h->scale + j, h->shift + j, 0, t + (j - p0) * h->cols, u);
        cq__torch_sum_2d(t, h->cols, 1, w, h->cols, h->sums + p0);
    } else {
        for (int64_t r = 0; r < h->rows; r++)
            hqq_target_seg(h, dt, r * h->cols + p0, w, h->scale + p0, h->shift + p0, 1, t + r * w, u);
        cq__torch_sum_2d(t, h->rows, w, w, 1, h->sums + p0);
    }
    /* A zero-scale (constant) group keeps -rmin, which reproduces it exactly; the mean would
     * only add rounding noise (quanto has NaN there). */
    float count = (float)(h->per_row ? h->cols : h->rows);
    for (int64_t j = p0; j < p1; j++)
        h->shift_next[j] = h->scale[j] == 0.0f ? h->shift[j] : cq__rnd(h->sums[j] / count, dt);
}

/* |W - W_hat| for n consecutive elements from flat index i0, element k with parameters s[k*ps],
 * sh[k*ps] (ps a constant 0 or 1 at each call, so the loop vectorizes). */
static inline __attribute__((always_inline)) void hqq_error_seg(const hqq_job *h, cq_dtype dt, int64_t i0, int64_t n,
                                                                const float *s, const float *sh, int ps, float *o) {
    float qmax = h->qmax;
#pragma omp simd
    for (int64_t k = 0; k < n; k++) {
        float wv = cq__ld(h->w, dt, i0 + k), sv = s[k * ps], shv = sh[k * ps];
        o[k] = fabsf(cq__rnd(wv - cq__affine_value(cq__affine_code(wv, sv, shv, qmax, dt), sv, shv, dt), dt));
    }
}

/* |W - W_hat| for flat elements [lo, hi) under `shift`, into out, one row piece at a time. */
static inline __attribute__((always_inline)) void hqq_error_chunk(const hqq_job *h, cq_dtype dt, const float *shift,
                                                                  int64_t lo, int64_t hi, float *out) {
    for (int64_t i = lo; i < hi;) {
        int64_t r = i / h->cols, c = i % h->cols, e = (r + 1) * h->cols < hi ? (r + 1) * h->cols : hi;
        if (h->per_row) hqq_error_seg(h, dt, i, e - i, h->scale + r, shift + r, 0, out + (i - lo));
        else hqq_error_seg(h, dt, i, e - i, h->scale + c, shift + c, 1, out + (i - lo));
        i = e;
    }
}

static int worker(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static void chunk_bounds(const hqq_job *h, int64_t k, int64_t *p0, int64_t *p1) {
    int64_t np = h->per_row ? h->rows : h->cols;
    *p0 = k * h->chunk_params;
    *p1 = k == h->n_chunks - 1 ? np : *p0 + h->chunk_params;
    if (*p1 > np) *p1 = np;
}

/* shift_next from shift (one HQQ update over the whole tensor). */
static void hqq_update(const hqq_job *h) {
#pragma omp parallel for schedule(dynamic) num_threads(h->threads) if (h->n_chunks > 1)
    for (int64_t k = 0; k < h->n_chunks; k++) {
        if (cancelled(h)) continue; /* the result is discarded */
        int64_t p0, p1;
        chunk_bounds(h, k, &p0, &p1);
        float *t = h->work + (size_t)worker() * 2 * (size_t)h->work_cap, *u = t + h->work_cap;
        switch (h->dt) {
        case CQ_F16: hqq_update_chunk(h, CQ_F16, p0, p1, t, u); break;
        case CQ_BF16: hqq_update_chunk(h, CQ_BF16, p0, p1, t, u); break;
        default: hqq_update_chunk(h, CQ_F32, p0, p1, t, u); break;
        }
    }
}

/* torch.abs(W - W_hat).mean() in W's dtype: the errors are computed a batch of chunks at a time
 * (one per thread) and summed in flat order. */
static float hqq_mean_error(const hqq_job *h, const float *shift) {
    cq__stream_sum ss;
    cq__stream_sum_init(&ss, h->n);
    int64_t ch = cq__hqq_chunk_elems, batch = ch * h->threads;
    for (int64_t base = 0; base < h->n && !cancelled(h); base += batch) {
        int64_t slots = (h->n - base + ch - 1) / ch < h->threads ? (h->n - base + ch - 1) / ch : h->threads;
#pragma omp parallel for schedule(static, 1) num_threads(h->threads) if (slots > 1)
        for (int64_t k = 0; k < slots; k++) {
            int64_t lo = base + k * ch, hi = lo + ch < h->n ? lo + ch : h->n;
            float *out = h->work + (size_t)k * 2 * (size_t)h->work_cap;
            switch (h->dt) {
            case CQ_F16: hqq_error_chunk(h, CQ_F16, shift, lo, hi, out); break;
            case CQ_BF16: hqq_error_chunk(h, CQ_BF16, shift, lo, hi, out); break;
            default: hqq_error_chunk(h, CQ_F32, shift, lo, hi, out); break;
            }
        }
        for (int64_t k = 0; k < slots; k++) {
            int64_t lo = base + k * ch, hi = lo + ch < h->n ? lo + ch : h->n;
            cq__stream_sum_feed(&ss, h->work + (size_t)k * 2 * (size_t)h->work_cap, hi - lo);
        }
    }
    return cq_round_to_dtype(cq__stream_sum_finish(&ss) / (float)h->n, h->dt);
}

cq_status cq__hqq_optimize(const cq_tensor *x, int bits, int axis, const cq_hqq_opts *opts,
                           cq_tensor **scale, cq_tensor **shift, cq_err *err) {
    cq_hqq_opts o = opts ? *opts : cq_hqq_default_opts();
    if (o.iters < 0 || !(o.beta > 0) || !(o.kappa > 0))
        return cq_err_set(err, CQ_E_ARG, "hqq optimizer: iters must be >= 0 and beta, kappa > 0");
    if (axis != 0 && x->ndim > 2)
        return cq_err_set(err, CQ_E_SHAPE, "hqq optimizer: along the last axis it takes 2-D (grouped) tensors, not %dd",
                          x->ndim);
    cq_status s = cq__max_optimize(x, bits, axis, scale, shift, err);
    if (s) return s;
    hqq_job h;
    memset(&h, 0, sizeof h);
    h.w = x->data;
    h.dt = x->dtype;
    h.n = cq_tensor_numel(x);
    h.qmax = cq__affine_code_max(bits);
    /* A 2-D view: (rows, cols) with one shift per row (axis 0) or per column (axis -1); the
     * mean runs over the other dimension. quanto's torch.mean(axis=-1) reduces the last dim only,
     * so an N-D weight (an ungrouped Conv2d) gets a shift per row of its last dim, (O,I,kh,1),
     * while its scale stays per output channel: each row takes its channel's scale. */
    h.per_row = axis == 0;
    int64_t rows_per_scale = 1;
    if (h.per_row) {
        h.cols = x->shape[x->ndim - 1];
        h.rows = h.cols ? h.n / h.cols : 0;
        rows_per_scale = x->shape[0] ? h.rows / x->shape[0] : 1;
    } else {
        h.cols = x->shape[x->ndim - 1], h.rows = h.cols ? h.n / h.cols : 0;
    }
    int64_t np = h.per_row ? h.rows : h.cols, ch = cq__hqq_chunk_elems > 0 ? cq__hqq_chunk_elems : 1;
    if (h.n == 0) return CQ_OK;
    if (h.per_row) {
        h.chunk_params = ch / h.cols > 0 ? ch / h.cols : 1;
        h.work_cap = h.chunk_params * h.cols;
    } else {
        h.chunk_params = (ch / h.rows) & ~(int64_t)31;
        if (h.chunk_params < 32) h.chunk_params = 32;
        h.work_cap = h.rows * 2 * h.chunk_params; /* the last chunk takes the remainder */
    }
    /* Row chunks: the last may be short. Column chunks: the last takes the remainder. */
    h.n_chunks = h.per_row ? (np + h.chunk_params - 1) / h.chunk_params : np / h.chunk_params;
    if (h.n_chunks < 1) h.n_chunks = 1;
    if (h.work_cap < ch) h.work_cap = ch;
    h.threads = cq_get_num_threads();
    h.cancel = o.cancel;
    float *scales = malloc((size_t)np * sizeof(float)), *cur = malloc((size_t)np * sizeof(float));
    h.shift_next = malloc((size_t)np * sizeof(float));
    h.sums = malloc((size_t)np * sizeof(float));
    h.work = malloc((size_t)h.threads * 2 * (size_t)h.work_cap * sizeof(float));
    if (!scales || !cur || !h.shift_next || !h.sums || !h.work) {
        s = cq_err_set(err, CQ_E_NOMEM, "hqq optimizer: out of memory for %lld parameters", (long long)np);
        goto done;
    }
    for (int64_t j = 0; j < np; j++) {
        scales[j] = cq__ld((*scale)->data, h.dt, j / rows_per_scale);
        cur[j] = cq__ld((*shift)->data, h.dt, j / rows_per_scale);
    }
    h.scale = scales;
    h.shift = cur;
    float best_error = hqq_mean_error(&h, cur);
    double beta = o.beta;
    /* How torch treats the Python scalars (checked against torch 2.6 for every f16/bf16
     * value): pow's exponent and a subtracted scalar are first rounded to the tensor's dtype;
     * a multiplying scalar enters the f32 math unrounded. */
    h.pexp = cq__rnd((float)(o.lp_norm - 1.0), h.dt);
    h.lp_is_one = o.lp_norm == 1.0;
    bool moved = false;
    for (int it = 0; it < o.iters; it++) {
        h.inv_beta = (float)(1.0 / beta);
        hqq_update(&h);
        float mean_error = hqq_mean_error(&h, h.shift_next);
        if (cancelled(&h)) {
            s = cq_err_set(err, CQ_E_IO, "interrupted");
            goto done;
        }
        if (!(mean_error < best_error)) break;
        best_error = mean_error;
        memcpy(cur, h.shift_next, (size_t)np * sizeof(float));
        beta *= o.kappa;
        moved = true;
    }
    /* Until a step is kept, the shift is the Max optimizer's (and has its shape). */
    if (moved && rows_per_scale != 1) {
        int64_t shape[CQ_MAX_DIMS];
        memcpy(shape, x->shape, sizeof shape);
        shape[x->ndim - 1] = 1;
        cq_tensor *fine = NULL;
        s = cq_tensor_new(&fine, h.dt, x->ndim, shape, err);
        if (s) goto done;
        cq_tensor_free(*shift);
        *shift = fine;
    }
    if (moved || rows_per_scale == 1)
        for (int64_t j = 0; j < np; j++) cq__st((*shift)->data, h.dt, j, cur[j]);
done:
    free(scales), free(cur), free(h.shift_next), free(h.sums), free(h.work);
    if (s) {
        cq_tensor_free(*scale), cq_tensor_free(*shift);
        *scale = *shift = NULL;
    }
    return s;
}
