/*
 * matmul.c - the cq_matmul driver: checks arguments, carves the caller's scratch, prepares the
 * activations (row sums for W8A8, block quantization for fast mode, bf16 -> f32 for exact
 * mode) and splits the output over threads: by tiles of 16 output columns, or by rows of M
 * when there are too few tiles. Every output element is computed by one thread in the same
 * order whatever the split, so results never depend on the thread count. No arithmetic of
 * its own.
 */
#include "kernels/kernels_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef enum { KIND_W8A8, KIND_EXACT, KIND_FAST } mm_kind;

static inline size_t pad64(size_t n) { return (n + 63) & ~(size_t)63; }

cq_matmul_opts cq_matmul_default_opts(void) {
    cq_matmul_opts o = {CQ_MATMUL_EXACT, 1.0f, NULL, NULL, 0};
    return o;
}

/* Float weights have one product: FAST means EXACT for them (kernels.h). */
static mm_kind kind_of(const cq_mm_weight *w, cq_dtype x_dtype, cq_matmul_mode mode) {
    if (x_dtype == CQ_I8) return KIND_W8A8;
    return mode == CQ_MATMUL_FAST && !w->is_float ? KIND_FAST : KIND_EXACT;
}

/* Workspace = shared activation area, then one slice per thread. */
typedef struct {
    size_t shared, per_thread;
    int threads;
} work_plan;

static work_plan plan_work(const cq_mm_weight *w, const cq__kernel *k, int64_t M, cq_dtype x_dtype, mm_kind kind) {
    work_plan p = {0, 0, cq_get_num_threads()};
    if (kind == KIND_W8A8) p.shared = pad64((size_t)M * sizeof(int32_t));
    else if (kind == KIND_FAST) p.shared = (size_t)M * cq__qrow_bytes(w);
    else if (x_dtype == CQ_BF16) p.shared = pad64((size_t)M * (size_t)w->k * sizeof(float));
    p.per_thread = k->scratch ? pad64(k->scratch(w, M)) : 0;
    return p;
}

static const cq__op g_kind_op[] = {[KIND_W8A8] = CQ__OP_matmul_w8a8, [KIND_EXACT] = CQ__OP_matmul_exact,
                                   [KIND_FAST] = CQ__OP_matmul_fast};

size_t cq__matmul_work_size_with(const cq__kernel *k, const cq_mm_weight *w, int64_t M, cq_dtype x_dtype) {
    if (!w || !k || M <= 0) return 0;
    mm_kind kind = k->op == CQ__OP_matmul_w8a8 ? KIND_W8A8 : k->op == CQ__OP_matmul_fast ? KIND_FAST : KIND_EXACT;
    work_plan p = plan_work(w, k, M, x_dtype, kind);
    size_t total = p.shared + p.per_thread * (size_t)p.threads;
    return total ? total + 64 : 0; /* + 64: the caller's pointer need not be aligned */
}

/* The dispatched kernel of a call (NULL for a weight format the op does not take). */
static const cq__kernel *pick(const cq_mm_weight *w, cq_dtype x_dtype, cq_matmul_mode mode) {
    return cq__kernel_pick(g_kind_op[kind_of(w, x_dtype, mode)], cq__wfmt_of(w));
}

size_t cq_matmul_work_size(const cq_mm_weight *w, int64_t M, cq_dtype x_dtype, cq_matmul_mode mode) {
    if (!w || M <= 0) return 0;
    return cq__matmul_work_size_with(pick(w, x_dtype, mode), w, M, x_dtype);
}

static cq_status check_args(const cq_mm_weight *w, int64_t M, const void *x, cq_dtype x_dtype, int64_t ldx,
                            const void *y, cq_dtype y_dtype, int64_t ldy, const cq_matmul_opts *o, cq_err *err) {
    if (!w) return cq_err_set(err, CQ_E_ARG, "cq_matmul: weight is NULL");
    if (M < 0) return cq_err_set(err, CQ_E_ARG, "cq_matmul: M = %lld is negative", (long long)M);
    if (M > 0 && (!x || !y)) return cq_err_set(err, CQ_E_ARG, "cq_matmul: x or y is NULL");
    if (x_dtype != CQ_I8 && x_dtype != CQ_F32 && x_dtype != CQ_BF16)
        return cq_err_set(err, CQ_E_DTYPE, "cq_matmul: activation dtype %s is not I8, F32 or BF16",
                          cq_dtype_name(x_dtype));
    if (y_dtype != CQ_F32 && y_dtype != CQ_F16 && y_dtype != CQ_BF16)
        return cq_err_set(err, CQ_E_DTYPE, "cq_matmul: output dtype %s is not F32, F16 or BF16", cq_dtype_name(y_dtype));
    if (ldx < w->k) return cq_err_set(err, CQ_E_ARG, "cq_matmul: ldx %lld < in_features %lld", (long long)ldx, (long long)w->k);
    if (ldy < w->n) return cq_err_set(err, CQ_E_ARG, "cq_matmul: ldy %lld < out_features %lld", (long long)ldy, (long long)w->n);
    if (o->mode != CQ_MATMUL_EXACT && o->mode != CQ_MATMUL_FAST)
        return cq_err_set(err, CQ_E_ARG, "cq_matmul: unknown mode %d", (int)o->mode);
    if (x_dtype == CQ_I8) {
        if (w->qtype != CQ_QINT8)
            return cq_err_set(err, CQ_E_UNSUPPORTED, "cq_matmul: int8 activations need qint8 weights, not %s",
                              cq__wfmt_name(cq__wfmt_of(w)));
        if (w->k > CQ_W8A8_MAX_K)
            return cq_err_set(err, CQ_E_UNSUPPORTED, "cq_matmul: W8A8 needs in_features <= %d (got %lld)",
                              CQ_W8A8_MAX_K, (long long)w->k);
    } else if (o->mode == CQ_MATMUL_FAST && !w->fast_ok && !w->is_float) {
        return cq_err_set(err, CQ_E_UNSUPPORTED,
                          "cq_matmul: fast mode needs integer weights with group_size %% 16 == 0 (group_size %lld)",
                          (long long)w->gs);
    }
    return CQ_OK;
}

/* Split: tiles when there are enough for every thread, else rows. Chunks of tiles are kept
 * even so the two-tile (32-column) kernels rarely see an odd remainder. */
static void run_split(cq__mm_fn fn, const cq__mm_args *a, uint8_t *scratch, size_t per_thread, int threads) {
    int64_t ntiles = a->w->ntiles, M = a->m;
    bool by_tiles = ntiles >= 2 * threads || M < threads;
    int64_t units = by_tiles ? ntiles : M;
    int nt = (int)(units < threads ? units : threads);
    double work = (double)M * (double)a->w->n * (double)a->w->k;
    if (work < 2e5) nt = 1; /* the fork costs more than such a product */
    if (nt <= 1) {
        fn(a, 0, ntiles, 0, M, scratch);
        return;
    }
    int64_t step = cq__ceil_div(units, nt);
    if (by_tiles && step % 2) step++;
    /* One chunk per thread with its own scratch slice; correct even if OpenMP gives fewer. */
#pragma omp parallel for schedule(static, 1) num_threads(nt)
    for (int c = 0; c < nt; c++) {
        int64_t lo = c * step, hi = lo + step < units ? lo + step : units;
        void *mine = scratch ? scratch + (size_t)c * per_thread : NULL;
        if (lo < hi) {
            if (by_tiles) fn(a, lo, hi, 0, M, mine);
            else fn(a, 0, ntiles, lo, hi, mine);
        }
    }
}

static cq_status matmul_run(const cq__kernel *k, const cq_mm_weight *w, int64_t M, const void *x, cq_dtype x_dtype,
                            int64_t ldx, void *y, cq_dtype y_dtype, int64_t ldy, const cq_matmul_opts *opts,
                            cq_err *err) {
    cq_matmul_opts o = opts ? *opts : cq_matmul_default_opts();
    cq_status st = check_args(w, M, x, x_dtype, ldx, y, y_dtype, ldy, &o, err);
    if (st || M == 0) return st;

    mm_kind kind = kind_of(w, x_dtype, o.mode);
    if (!k) k = cq__kernel_pick(g_kind_op[kind], cq__wfmt_of(w));
    else if (k->op != g_kind_op[kind] || k->wfmt != cq__wfmt_of(w))
        return cq_err_set(err, CQ_E_ARG, "cq_matmul: kernel %s does not compute this product", k->name);
    work_plan p = plan_work(w, k, M, x_dtype, kind);
    size_t need = p.shared + p.per_thread * (size_t)p.threads;
    uint8_t *work = NULL;
    if (need) {
        uintptr_t base = (uintptr_t)o.work, aligned = (base + 63) & ~(uintptr_t)63;
        if (!o.work || o.work_size < need + (size_t)(aligned - base))
            return cq_err_set(err, CQ_E_ARG, "cq_matmul: scratch of %zu bytes given, %zu needed (cq_matmul_work_size)",
                              o.work ? o.work_size : (size_t)0, need + 64);
        work = (uint8_t *)aligned;
    }

    cq__mm_args a = {0};
    a.w = w;
    a.m = M;
    a.ldx = ldx;
    a.bias = o.bias;
    a.y = y;
    a.y_dtype = y_dtype;
    a.ldy = ldy;
    a.x_scale = o.x_scale;
    a.scratch_bytes = p.per_thread;
    int nt = p.threads;

    if (kind == KIND_W8A8) {
        const int8_t *xq = x;
        int32_t *xsum = (int32_t *)work;
#pragma omp parallel for schedule(static) num_threads(nt) if (M * w->k > 65536)
        for (int64_t m = 0; m < M; m++) xsum[m] = CQ__VEC(sum_i8)(xq + m * ldx, w->k);
        a.xq = xq;
        a.xsum = xsum;
    } else if (kind == KIND_FAST) {
        uint8_t *xb = work;
#pragma omp parallel for schedule(static) num_threads(nt) if (M > 1 && M * w->k > 65536)
        for (int64_t m = 0; m < M; m++) CQ__VEC(quantize_rows)(w, x, x_dtype, ldx, m, m + 1, xb);
        a.xb = xb;
    } else {
        if (x_dtype == CQ_BF16) {
            float *xf = (float *)work;
            const uint16_t *xh = x;
#pragma omp parallel for schedule(static) num_threads(nt) if (M * w->k > 65536)
            for (int64_t m = 0; m < M; m++) CQ__VEC(bf16_to_f32)(xh + m * ldx, xf + m * w->k, w->k);
            a.xf = xf;
            a.ldx = w->k;
        } else {
            a.xf = x;
        }
    }
    cq__mm_fn fn = kind == KIND_W8A8 ? k->fn.matmul_w8a8 : kind == KIND_FAST ? k->fn.matmul_fast : k->fn.matmul_exact;
    run_split(fn, &a, p.per_thread ? work + p.shared : NULL, p.per_thread, nt);
    return CQ_OK;
}

cq_status cq_matmul(const cq_mm_weight *w, int64_t M, const void *x, cq_dtype x_dtype, int64_t ldx, void *y,
                    cq_dtype y_dtype, int64_t ldy, const cq_matmul_opts *opts, cq_err *err) {
    return matmul_run(NULL, w, M, x, x_dtype, ldx, y, y_dtype, ldy, opts, err);
}

cq_status cq__matmul_with(const cq__kernel *k, const cq_mm_weight *w, int64_t M, const void *x, cq_dtype x_dtype,
                          int64_t ldx, void *y, cq_dtype y_dtype, int64_t ldy, const cq_matmul_opts *opts, cq_err *err) {
    if (!k) return cq_err_set(err, CQ_E_ARG, "cq__matmul_with: kernel is NULL");
    return matmul_run(k, w, M, x, x_dtype, ldx, y, y_dtype, ldy, opts, err);
}
