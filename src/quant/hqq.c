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

#ifdef _OPENMP
#include <omp.h>
#endif

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

/* ---- the same sum, streamed ---------------------------------------------------------------
 * inner_sum(x, n) consumes x as n_blocks blocks of ILP*VEC floats through multi_row_sum's
 * cascade, then at most 31 tail floats. The blocks are folded in as they arrive; the tail waits
 * in pend for the finish. */

#define TORCH_BLOCK (TORCH_ILP * TORCH_VEC)
_Static_assert(sizeof(((cq__stream_sum *)0)->acc) == sizeof(float[TORCH_LEVELS][TORCH_ILP][TORCH_VEC]),
               "cq__stream_sum.acc must match torch's cascade");
_Static_assert(sizeof(((cq__stream_sum *)0)->pend) == sizeof(float[TORCH_BLOCK]), "cq__stream_sum.pend");

void cq__stream_sum_init(cq__stream_sum *ss, int64_t n) {
    memset(ss, 0, sizeof *ss);
    ss->n = n;
    ss->n_blocks = n >= TORCH_VEC ? n / TORCH_VEC / TORCH_ILP : 0;
    ss->level_power = ceil_log2(ss->n_blocks) / TORCH_LEVELS;
    if (ss->level_power < 4) ss->level_power = 4;
    ss->level_mask = ((int64_t)1 << ss->level_power) - 1;
}

static void stream_block(cq__stream_sum *ss, const float *b) {
    for (int k = 0; k < TORCH_ILP; k++)
        for (int l = 0; l < TORCH_VEC; l++) ss->acc[0][k][l] += b[k * TORCH_VEC + l];
    int64_t i = ++ss->blocks;
    if (i & ss->level_mask) return;
    for (int j = 1; j < TORCH_LEVELS; j++) {
        for (int k = 0; k < TORCH_ILP; k++)
            for (int l = 0; l < TORCH_VEC; l++) {
                ss->acc[j][k][l] += ss->acc[j - 1][k][l];
                ss->acc[j - 1][k][l] = 0.0f;
            }
        if ((i & (ss->level_mask << (j * ss->level_power))) != 0) break;
    }
}

void cq__stream_sum_feed(cq__stream_sum *ss, const float *x, int64_t m) {
    if (m > ss->n - ss->fed) m = ss->n - ss->fed;
    ss->fed += m;
    while (m > 0) {
        if (ss->blocks < ss->n_blocks && ss->npend == 0) {
            int64_t k = m / TORCH_BLOCK, left = ss->n_blocks - ss->blocks;
            if (k > left) k = left;
            for (int64_t b = 0; b < k; b++, x += TORCH_BLOCK) stream_block(ss, x);
            m -= k * TORCH_BLOCK;
            if (k > 0) continue;
        }
        int64_t take = TORCH_BLOCK - ss->npend < m ? TORCH_BLOCK - ss->npend : m;
        memcpy(ss->pend + ss->npend, x, (size_t)take * sizeof(float));
        ss->npend += (int)take;
        x += take, m -= take;
        if (ss->npend == TORCH_BLOCK && ss->blocks < ss->n_blocks) {
            stream_block(ss, ss->pend);
            ss->npend = 0;
        }
    }
}

float cq__stream_sum_finish(cq__stream_sum *ss) {
    if (ss->n < TORCH_VEC) {
        float sum;
        cq__torch_sum_2d(ss->pend, ss->n, 1, 1, ss->n, &sum);
        return sum;
    }
    float(*acc)[TORCH_ILP][TORCH_VEC] = ss->acc;
    for (int j = 1; j < TORCH_LEVELS; j++)
        for (int k = 0; k < TORCH_ILP; k++)
            for (int l = 0; l < TORCH_VEC; l++) acc[0][k][l] += acc[j][k][l];
    /* row_sum's items past the last block, then its ILP fold; inner_sum's scalar tail last. */
    int64_t tail_items = ss->n / TORCH_VEC - ss->n_blocks * TORCH_ILP, tail = ss->n - ss->n_blocks * TORCH_BLOCK;
    for (int64_t i = 0; i < tail_items; i++)
        for (int l = 0; l < TORCH_VEC; l++) acc[0][0][l] += ss->pend[i * TORCH_VEC + l];
    for (int k = 1; k < TORCH_ILP; k++)
        for (int l = 0; l < TORCH_VEC; l++) acc[0][0][l] += acc[0][k][l];
    float total = 0.0f;
    for (int64_t i = tail_items * TORCH_VEC; i < tail; i++) total += ss->pend[i];
    for (int l = 0; l < TORCH_VEC; l++) total += acc[0][0][l];
    return total;
}

/* ---- the optimizer ------------------------------------------------------------------------
 * No buffer of the tensor's size: each pass recomputes codes and W_hat from (W, scale, shift)
 * chunk by chunk, so the working memory is the parameters plus one chunk per thread. A step is
 * two passes: the update (targets and their group means, chunked by parameter) and the error
 * of the new shift (chunked in flat order and summed in that order). */

int64_t cq__hqq_chunk_elems = (int64_t)1 << 16;

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
} hqq_job;

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
    for (int64_t base = 0; base < h->n; base += batch) {
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
    cq_status s = cq__max_optimize(x, bits, axis, scale, shift, err);
    if (s) return s;
    hqq_job h;
    memset(&h, 0, sizeof h);
    h.w = x->data;
    h.dt = x->dtype;
    h.n = cq_tensor_numel(x);
    h.qmax = (float)((1 << bits) - 1);
    /* A 2-D view: (rows, cols) with one parameter per row (axis 0) or per column (axis -1);
     * the group mean runs over the other dimension. quanto's torch.mean(dim=-1) would only
     * reduce the last dim of an N-D weight; we reduce the whole group (docs/NUMERICS.md). */
    h.per_row = axis == 0;
    if (h.per_row) h.rows = x->shape[0], h.cols = h.rows ? h.n / h.rows : 0;
    else h.cols = x->shape[x->ndim - 1], h.rows = h.cols ? h.n / h.cols : 0;
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
    float *scales = malloc((size_t)np * sizeof(float)), *cur = malloc((size_t)np * sizeof(float));
    h.shift_next = malloc((size_t)np * sizeof(float));
    h.sums = malloc((size_t)np * sizeof(float));
    h.work = malloc((size_t)h.threads * 2 * (size_t)h.work_cap * sizeof(float));
    if (!scales || !cur || !h.shift_next || !h.sums || !h.work) {
        s = cq_err_set(err, CQ_E_NOMEM, "hqq optimizer: out of memory for %lld parameters", (long long)np);
        goto done;
    }
    for (int64_t j = 0; j < np; j++) {
        scales[j] = cq__ld((*scale)->data, h.dt, j);
        cur[j] = cq__ld((*shift)->data, h.dt, j);
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
    for (int it = 0; it < o.iters; it++) {
        h.inv_beta = (float)(1.0 / beta);
        hqq_update(&h);
        float mean_error = hqq_mean_error(&h, h.shift_next);
        if (!(mean_error < best_error)) break;
        best_error = mean_error;
        memcpy(cur, h.shift_next, (size_t)np * sizeof(float));
        beta *= o.kappa;
    }
    for (int64_t j = 0; j < np; j++) cq__st((*shift)->data, h.dt, j, cur[j]);
done:
    free(scales), free(cur), free(h.shift_next), free(h.sums), free(h.work);
    if (s) {
        cq_tensor_free(*scale), cq_tensor_free(*shift);
        *scale = *shift = NULL;
    }
    return s;
}
