/*
 * stream.c - the machinery under the checkpoint commands: an ordered pipeline (items computed
 * on any thread, written strictly in item order, so output bytes never depend on the thread
 * count), a private read-only mapping of shard files whose finished pages can be dropped, and
 * progress reporting. Knows nothing about quantization or file formats.
 */
#include "convert_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* ---- private mapping -------------------------------------------------------------------------- */

cq_status cq__map_open(const char *path, cq__map *m, cq_err *err) {
    m->base = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cq_err_set(err, CQ_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cq_err_set(err, CQ_E_IO, "%s: %s", path, strerror(e));
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return cq_err_set(err, CQ_E_IO, "%s: cannot map the file: %s", path, strerror(e));
        }
        m->base = p;
        m->size = (size_t)st.st_size;
        /* Tensors are read front to back; let the kernel read ahead aggressively. */
        (void)madvise(p, m->size, MADV_SEQUENTIAL);
    }
    close(fd);
    return CQ_OK;
}

void cq__map_close(cq__map *m) {
    if (m->base) munmap((void *)m->base, m->size);
    m->base = NULL;
    m->size = 0;
}

static bool page_range(const cq__map *m, const void *p, size_t n, bool inner, uintptr_t *lo, uintptr_t *hi) {
    uintptr_t base = (uintptr_t)m->base, a = (uintptr_t)p, b = a + n;
    if (!m->base || a < base || b > base + m->size || n == 0) return false;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    *lo = inner ? (a + page - 1) & ~(page - 1) : a & ~(page - 1);
    *hi = inner ? b & ~(page - 1) : (b + page - 1) & ~(page - 1);
    if (!inner && *hi > ((base + m->size + page - 1) & ~(page - 1))) *hi = (base + m->size + page - 1) & ~(page - 1);
    return *hi > *lo;
}

void cq__map_willneed(const cq__map *m, const void *p, size_t n) {
    uintptr_t lo, hi;
    if (page_range(m, p, n, false, &lo, &hi)) (void)madvise((void *)lo, hi - lo, MADV_WILLNEED);
}

/* Only whole pages inside the range: a page shared with a neighbouring tensor stays until that
 * one is released too (or the map is closed). MADV_DONTNEED on a shared read-only file mapping
 * only unmaps the pages; the page cache keeps them. */
void cq__map_release(const cq__map *m, const void *p, size_t n) {
    uintptr_t lo, hi;
    if (page_range(m, p, n, true, &lo, &hi)) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
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

/* ---- every shard of a checkpoint ------------------------------------------------------------ */

cq_status cq__maps_open(const cq_ckpt *c, cq__ckpt_maps *m, cq_err *err) {
    memset(m, 0, sizeof *m);
    m->ckpt = c;
    int n = cq_ckpt_shard_count(c);
    m->maps = cq__calloc((size_t)(n ? n : 1), sizeof *m->maps, err, "the shard maps");
    if (!m->maps) return CQ_E_NOMEM;
    m->n = n;
    for (int s = 0; s < n; s++) {
        cq_status st = cq__map_open(cq_st_path(cq_ckpt_shard(c, s)), &m->maps[s], err);
        if (st) {
            cq__maps_close(m);
            return st;
        }
    }
    return CQ_OK;
}

void cq__maps_close(cq__ckpt_maps *m) {
    for (int s = 0; m->maps && s < m->n; s++) cq__map_close(&m->maps[s]);
    free(m->maps);
    memset(m, 0, sizeof *m);
}

static const void *maps_locate(const cq__ckpt_maps *m, int64_t i, const cq__map **map) {
    const cq_tensor *t = cq_ckpt_tensor(m->ckpt, i);
    int shard = cq_ckpt_tensor_shard(m->ckpt, i);
    *map = NULL;
    if (!t || shard < 0 || shard >= m->n || !m->maps[shard].base) return t ? t->data : NULL;
    const cq_st_file *f = cq_ckpt_shard(m->ckpt, shard);
    int64_t idx = cq_st_find(f, cq_ckpt_name(m->ckpt, i));
    uint64_t off = cq_st_file_offset(f, idx);
    size_t es = cq_dtype_size(t->dtype);
    /* Misaligned data (possible only in files from other writers): use the io layer's copy. */
    if (idx < 0 || (es && off % es) || off + cq_tensor_nbytes(t) > m->maps[shard].size) return t->data;
    *map = &m->maps[shard];
    return m->maps[shard].base + off;
}

const void *cq__maps_data(const cq__ckpt_maps *m, int64_t i) {
    const cq__map *map;
    return maps_locate(m, i, &map);
}

void cq__maps_release(const cq__ckpt_maps *m, int64_t i) {
    const cq__map *map;
    const void *p = maps_locate(m, i, &map);
    if (map) cq__map_release(map, p, cq_tensor_nbytes(cq_ckpt_tensor(m->ckpt, i)));
}

cq_status cq__maps_view(const cq__ckpt_maps *m, int64_t i, cq_tensor **out, cq_err *err) {
    const cq_tensor *t = cq_ckpt_tensor(m->ckpt, i);
    if (!t) return cq_err_set(err, CQ_E_ARG, "no tensor %lld", (long long)i);
    return cq_tensor_view(out, t->dtype, t->ndim, t->shape, (void *)cq__maps_data(m, i), err);
}
