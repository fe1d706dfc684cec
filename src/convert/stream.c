/*
 * stream.c - the machinery under the checkpoint commands: an ordered pipeline (items computed
 * on any thread, written strictly in item order, so output bytes never depend on the thread
 * count) and progress reporting. Knows nothing about quantization or file formats.
 */
#include "convert_internal.h"

#include <pthread.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

double cq__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cq__report_progress(const cq_convert_opts *o, int64_t done, int64_t total, uint64_t bytes_done,
                         uint64_t bytes_total, double t0, const char *current) {
    if (!o || !o->progress) return;
    cq_convert_progress p = {done, total, bytes_done, bytes_total, cq__now() - t0, current};
    o->progress(&p, o->progress_user);
}

/* ---- ordered pipeline ----------------------------------------------------------------------- */

typedef struct pipe_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t n, next, turn;
    bool failed;
    cq_status status;
    cq_err err;
    const cq_convert_opts *opts;
    void *ctx;
    const cq__pipe_ops *ops;
} pipe_state;

static void pipe_fail(pipe_state *ps, cq_status s, const cq_err *e) {
    if (!ps->failed) {
        ps->failed = true;
        ps->status = s;
        ps->err = *e;
        if (!ps->err.msg[0]) snprintf(ps->err.msg, sizeof ps->err.msg, "%s", cq_status_str(s));
    }
}

static void pipe_worker(pipe_state *ps) {
    for (;;) {
        pthread_mutex_lock(&ps->mu);
        if (!ps->failed && cq__cancelled(ps->opts)) {
            cq_err e = {0};
            cq_err_set(&e, CQ_E_IO, "interrupted");
            pipe_fail(ps, CQ_E_IO, &e);
            pthread_cond_broadcast(&ps->cv);
        }
        if (ps->failed || ps->next >= ps->n) {
            pthread_mutex_unlock(&ps->mu);
            return;
        }
        int64_t item = ps->next++;
        pthread_mutex_unlock(&ps->mu);

        cq_err e = {0};
        void *result = NULL;
        cq_status s = ps->ops->compute ? ps->ops->compute(ps->ctx, item, &result, &e) : CQ_OK;

        pthread_mutex_lock(&ps->mu);
        while (ps->turn != item && !ps->failed) pthread_cond_wait(&ps->cv, &ps->mu);
        bool go = !ps->failed;
        if (go && s) {
            pipe_fail(ps, s, &e);
            go = false;
        }
        pthread_mutex_unlock(&ps->mu);

        /* Only the holder of the turn writes, so the write needs no lock. */
        if (go && ps->ops->write) s = ps->ops->write(ps->ctx, item, result, &e);
        if (ps->ops->free_result) ps->ops->free_result(ps->ctx, item, result);

        pthread_mutex_lock(&ps->mu);
        if (go && s) pipe_fail(ps, s, &e);
        ps->turn = item + 1;
        pthread_cond_broadcast(&ps->cv);
        pthread_mutex_unlock(&ps->mu);
    }
}

/* Items [first, last) on `threads` workers. */
static void run_segment(pipe_state *ps, int64_t first, int64_t last, int threads) {
    ps->next = ps->turn = first;
    ps->n = last;
    if (threads > last - first) threads = (int)(last - first);
    if (threads < 1) threads = 1;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
    pipe_worker(ps);
#else
    CQ_UNUSED(threads);
    pipe_worker(ps);
#endif
}

static void run_exclusive(pipe_state *ps, int64_t item) {
    cq_err e = {0};
    void *result = NULL;
    cq_status s = CQ_OK;
    if (cq__cancelled(ps->opts)) s = cq_err_set(&e, CQ_E_IO, "interrupted");
    if (!s && ps->ops->compute) s = ps->ops->compute(ps->ctx, item, &result, &e);
    if (!s && ps->ops->write) s = ps->ops->write(ps->ctx, item, result, &e);
    if (ps->ops->free_result) ps->ops->free_result(ps->ctx, item, result);
    if (s) pipe_fail(ps, s, &e);
}

cq_status cq__pipe_run(int64_t n_items, int threads, const cq_convert_opts *opts, void *ctx,
                       const cq__pipe_ops *ops, cq_err *err) {
    pipe_state ps;
    memset(&ps, 0, sizeof ps);
    pthread_mutex_init(&ps.mu, NULL);
    pthread_cond_init(&ps.cv, NULL);
    ps.opts = opts;
    ps.ctx = ctx;
    ps.ops = ops;
    /* The pipeline is the parallelism: the library calls made inside an item run on one thread
     * each (their own parallel regions would only add fork/join and spin-wait costs per item).
     * Exclusive items get all `threads` for their own loops. */
    int saved = cq_get_num_threads();
    for (int64_t first = 0; first < n_items && !ps.failed;) {
        int64_t last = first;
        while (last < n_items && !(ops->exclusive && ops->exclusive(ctx, last))) last++;
        if (last > first) {
            cq_set_num_threads(1);
            run_segment(&ps, first, last, threads);
            cq_set_num_threads(saved);
        }
        if (last < n_items && !ps.failed) {
            cq_set_num_threads(threads);
            run_exclusive(&ps, last++);
            cq_set_num_threads(saved);
        }
        first = last;
    }
    cq_set_num_threads(saved);
    pthread_cond_destroy(&ps.cv);
    pthread_mutex_destroy(&ps.mu);
    if (ps.failed) {
        if (err) *err = ps.err;
        return ps.status;
    }
    return CQ_OK;
}
