/*
 * torch_sum.c - a replica of torch's CPU float sum (ATen's cascade sum, SumKernel.cpp), so
 * that means computed here are bit-identical to torch's: the 2-D form (cq__torch_sum_2d) and
 * the same order streamed over a flat run (cq__stream_sum). HQQ's group means and mean error
 * use it (hqq.c); it knows nothing about quantization.
 */
#include "quant/torch_sum.h"

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
