/*
 * nn_internal.h - private helpers shared by the tape (tape.c) and the ops (ops_*.c, loss.c):
 * tape-owned var creation, the "does this op need a backward" test, gradient accumulation,
 * row-major sgemm with a thread count that follows cq_get_num_threads(), and a seeded RNG.
 * Not part of the public API; nothing outside src/nn/ should include it.
 */
#ifndef CQ_NN_INTERNAL_H
#define CQ_NN_INTERNAL_H

#include "core/internal.h"

#include <math.h>

/* A tape-owned f32 var (header, tensor and data on the tape). zero: clear the data. */
cq_status cq__tape_var(cq_tape *t, int ndim, const int64_t *shape, bool zero, cq_var **out, cq_err *err);
/* A tape-owned var whose data is `data` (borrowed: a view for reshape/flatten). */
cq_status cq__tape_view(cq_tape *t, int ndim, const int64_t *shape, float *data, cq_var **out, cq_err *err);
/* True when an op with these inputs must record a backward (grad mode on, an input needs it). */
bool cq__tape_wants_grad(const cq_tape *t, cq_var *const *inputs, int n);

/* Gradient buffer of v, allocated (zeroed) on first use. */
cq_status cq__grad_of(cq_tape *t, cq_var *v, float **out, cq_err *err);

/* Validates that v is a usable f32 var; names the op and argument in the message. */
cq_status cq__check_var(const cq_var *v, const char *op, const char *arg, cq_err *err);

/* Row-major C[M,N] = alpha * op(A) op(B) + beta * C, via cblas_sgemm. lda etc. are row strides. */
void cq__sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc);

/* One row of softmax (log_out false) or log_softmax (true) over d values (ops_act.c). */
void cq__softmax_row(const float *x, float *y, int64_t d, bool log_out);

/* splitmix64: a small, seeded generator (dropout masks, test data). */
static inline uint64_t cq__rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* Uniform in [0, 1) with 24 random bits. */
static inline float cq__rng_uniform(uint64_t *state) {
    return (float)(cq__rng_next(state) >> 40) * (1.0f / 16777216.0f);
}

/* Convenience for ops: fail with CQ_E_ARG when any required pointer is NULL. */
#define CQ__NEED(ptr, op, name)                                                         \
    do {                                                                                \
        if (!(ptr)) return cq_err_set(err, CQ_E_ARG, "%s: argument %s is NULL", op, name); \
    } while (0)

/* OpenMP parallel-for only when the loop is large enough (about 1 ms) to pay for waking the
 * threads: on a loaded machine every parallel region can wait a scheduler slice for its
 * slowest thread. Each iteration writes its own outputs, so the thread count never changes a
 * result. */
#define CQ__PRAGMA(x) _Pragma(#x)
#define CQ__OMP_ROWS(work) \
    CQ__PRAGMA(omp parallel for schedule(static) num_threads(cq_get_num_threads()) if ((work) > 1048576))

#endif
