/*
 * torch_sum.h - torch's CPU float sum, replayed in its exact order (torch_sum.c). Private to
 * src/quant/ and its tests; never installed.
 */
#ifndef CQ_QUANT_TORCH_SUM_H
#define CQ_QUANT_TORCH_SUM_H

#include "core/internal.h"

/* torch's CPU float sum (ATen's cascade_sum as dispatched on x86, AVX2 lanes) of a 2-D
 * f32 array, reducing over `size0` elements of stride `stride0` for each of `size1` outputs
 * of stride `stride1` (one of the strides must be 1). */
void cq__torch_sum_2d(const float *x, int64_t size0, int64_t stride0, int64_t size1, int64_t stride1,
                      float *out);

/* The same order for one contiguous run of n floats (what torch.sum of a flat tensor does),
 * fed in pieces front to back, so a sum over a tensor needs no buffer of its size. */
typedef struct cq__stream_sum {
    int64_t n, fed, blocks, n_blocks, level_power, level_mask;
    float acc[4][4][8]; /* cascade levels x ILP accumulators x vector lanes (torch_sum.c) */
    float pend[32];     /* a block being assembled, or the tail after the last block */
    int npend;
} cq__stream_sum;
void cq__stream_sum_init(cq__stream_sum *ss, int64_t n);
void cq__stream_sum_feed(cq__stream_sum *ss, const float *x, int64_t m);
/* The sum, once all n values were fed (bit-identical to cq__torch_sum_2d(x, n, 1, 1, n)). */
float cq__stream_sum_finish(cq__stream_sum *ss);

#endif
