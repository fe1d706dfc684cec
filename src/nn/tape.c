/*
 * tape.c - autograd variables, the tape and backward. The tape is an arena: every
 * intermediate var, its data, saved tensors and nodes live there until cq_tape_reset, which
 * keeps the memory (merged into one chunk) so a training loop stops allocating after its
 * first step. Nodes are recorded in execution order, which is a topological order, so backward
 * is a reverse walk. Under AddressSanitizer each allocation is a separate malloc so overruns
 * are caught. This file holds no op math (see ops_*.c).
 */
#include "nn/nn_internal.h"

#include <cblas.h>

#if defined(__SANITIZE_ADDRESS__)
#define CQ_TAPE_SEPARATE_ALLOCS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CQ_TAPE_SEPARATE_ALLOCS 1
#endif
#endif

enum { ALIGN = 64, CHUNK_HEADER = 64, MIN_CHUNK = 1 << 20 };
#define SGEMM_THREADED_MACS 16777216.0 /* 2^24 multiply-adds, about 1 ms on one core */

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
} chunk;

typedef struct tape_node {
    struct tape_node *prev;
    cq_var *out;
    cq_var **inputs;
    int n_inputs;
    cq_backward_fn backward;
    const void *ctx;
} tape_node;

struct cq_tape {
    chunk *chunks; /* head is the one being filled */
    size_t bytes_used;
    tape_node *last;
    bool grad_enabled;
};

/* ---- arena --------------------------------------------------------------------------- */

static size_t round_up(size_t n) { return (n + (ALIGN - 1)) & ~(size_t)(ALIGN - 1); }

static chunk *chunk_new(size_t size) {
    chunk *c = cq_aligned_alloc(CHUNK_HEADER + size);
    if (!c) return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

void *cq_tape_alloc(cq_tape *t, size_t nbytes, cq_err *err) {
    if (!t) {
        cq_err_set(err, CQ_E_ARG, "cq_tape_alloc: tape is NULL");
        return NULL;
    }
    size_t need = round_up(nbytes ? nbytes : 1);
    if (need < nbytes) {
        cq_err_set(err, CQ_E_NOMEM, "tape allocation of %zu bytes overflows", nbytes);
        return NULL;
    }
#ifdef CQ_TAPE_SEPARATE_ALLOCS
    /* one chunk per allocation: ASan sees the exact bounds */
    chunk *c = chunk_new(need);
    if (!c) {
        cq_err_set(err, CQ_E_NOMEM, "out of memory allocating %zu bytes on the tape", nbytes);
        return NULL;
    }
    c->used = need;
    c->next = t->chunks;
    t->chunks = c;
    t->bytes_used += need;
    return (char *)c + CHUNK_HEADER;
#else
    chunk *c = t->chunks;
    if (!c || c->size - c->used < need) {
        size_t size = c ? c->size * 2 : MIN_CHUNK;
        if (size < need) size = need;
        chunk *fresh = chunk_new(size);
        if (!fresh) {
            cq_err_set(err, CQ_E_NOMEM, "out of memory allocating %zu bytes on the tape", nbytes);
            return NULL;
        }
        fresh->next = c;
        t->chunks = c = fresh;
    }
    void *p = (char *)c + CHUNK_HEADER + c->used;
    c->used += need;
    t->bytes_used += need;
    return p;
#endif
}

static void *tape_calloc(cq_tape *t, size_t nbytes, cq_err *err) {
    void *p = cq_tape_alloc(t, nbytes, err);
    if (p) memset(p, 0, nbytes);
    return p;
}

static void free_chunks(chunk *c) {
    while (c) {
        chunk *next = c->next;
        cq_aligned_free(c);
        c = next;
    }
}

void cq_tape_reset(cq_tape *t) {
    if (!t) return;
    t->last = NULL;
    t->bytes_used = 0;
#ifdef CQ_TAPE_SEPARATE_ALLOCS
    free_chunks(t->chunks);
    t->chunks = NULL;
#else
    if (t->chunks && t->chunks->next) {
        /* Several chunks: replace them by one that holds a whole step, so the next step
         * allocates nothing. If that allocation fails, keep the biggest existing one. */
        size_t total = 0;
        for (chunk *c = t->chunks; c; c = c->next) total += c->size;
        chunk *merged = chunk_new(total);
        if (merged) {
            free_chunks(t->chunks);
            t->chunks = merged;
        } else {
            chunk *head = t->chunks;
            free_chunks(head->next);
            head->next = NULL;
        }
    }
    if (t->chunks) t->chunks->used = 0;
#endif
}

cq_status cq_tape_new(cq_tape **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    cq_tape *t = cq__calloc(1, sizeof *t, err, "a tape");
    if (!t) return CQ_E_NOMEM;
    t->grad_enabled = true;
    *out = t;
    return CQ_OK;
}

void cq_tape_free(cq_tape *t) {
    if (!t) return;
    free_chunks(t->chunks);
    free(t);
}

bool cq_tape_set_grad_enabled(cq_tape *t, bool on) {
    if (!t) return false;
    bool was = t->grad_enabled;
    t->grad_enabled = on;
    return was;
}

bool cq_tape_grad_enabled(const cq_tape *t) { return t && t->grad_enabled; }

size_t cq_tape_bytes(const cq_tape *t) { return t ? t->bytes_used : 0; }

/* ---- vars ------------------------------------------------------------------------------ */

static cq_status check_shape_f32(int ndim, const int64_t *shape, size_t *nbytes, cq_err *err) {
    if (ndim < 0 || ndim > CQ_MAX_DIMS)
        return cq_err_set(err, CQ_E_SHAPE, "rank %d outside 0..%d", ndim, CQ_MAX_DIMS);
    uint64_t n = sizeof(float);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return cq_err_set(err, CQ_E_SHAPE, "negative dimension %lld", (long long)shape[i]);
        if (cq__mul_overflow_u64(n, (uint64_t)shape[i], &n) || n > (uint64_t)SIZE_MAX / 4)
            return cq_err_set(err, CQ_E_OVERFLOW, "var size overflows");
    }
    *nbytes = (size_t)n;
    return CQ_OK;
}

/* A tape-owned var header + tensor header (data set by the caller). */
static cq_var *tape_var_header(cq_tape *t, int ndim, const int64_t *shape, cq_err *err) {
    char *mem = tape_calloc(t, sizeof(cq_var) + sizeof(cq_tensor), err);
    if (!mem) return NULL;
    cq_var *v = (cq_var *)mem;
    cq_tensor *d = (cq_tensor *)(mem + sizeof(cq_var));
    d->dtype = CQ_F32;
    d->ndim = ndim;
    for (int i = 0; i < ndim; i++) d->shape[i] = shape[i];
    d->owns_data = false;
    v->data = d;
    v->on_tape = true;
    return v;
}

cq_status cq__tape_var(cq_tape *t, int ndim, const int64_t *shape, bool zero, cq_var **out, cq_err *err) {
    size_t nbytes;
    *out = NULL;
    cq_status s = check_shape_f32(ndim, shape, &nbytes, err);
    if (s) return s;
    cq_var *v = tape_var_header(t, ndim, shape, err);
    if (!v) return CQ_E_NOMEM;
    v->data->data = zero ? tape_calloc(t, nbytes, err) : cq_tape_alloc(t, nbytes, err);
    if (!v->data->data) return CQ_E_NOMEM;
    *out = v;
    return CQ_OK;
}

cq_status cq__tape_view(cq_tape *t, int ndim, const int64_t *shape, float *data, cq_var **out, cq_err *err) {
    size_t nbytes;
    *out = NULL;
    cq_status s = check_shape_f32(ndim, shape, &nbytes, err);
    if (s) return s;
    cq_var *v = tape_var_header(t, ndim, shape, err);
    if (!v) return CQ_E_NOMEM;
    v->data->data = data;
    *out = v;
    return CQ_OK;
}

cq_status cq_tape_zeros(cq_tape *t, int ndim, const int64_t *shape, cq_var **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_tape_zeros: out is NULL");
    *out = NULL;
    if (!t || (ndim > 0 && !shape)) return cq_err_set(err, CQ_E_ARG, "cq_tape_zeros: tape or shape is NULL");
    return cq__tape_var(t, ndim, shape, true, out, err);
}

cq_status cq_tape_input(cq_tape *t, const cq_tensor *src, cq_var **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    if (!t || !src) return cq_err_set(err, CQ_E_ARG, "cq_tape_input: tape or tensor is NULL");
    cq_var *v;
    CQ__TRY(cq__tape_var(t, src->ndim, src->shape, false, &v, err));
    cq_status s = cq_convert(src->data, src->dtype, v->data->data, CQ_F32, cq_tensor_numel(src), err);
    if (s) return cq_err_prefix(err, s, "cq_tape_input: ");
    *out = v;
    return CQ_OK;
}

cq_status cq_var_new(cq_var **out, int ndim, const int64_t *shape, bool requires_grad, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    cq_var *v = cq__calloc(1, sizeof *v, err, "a var");
    if (!v) return CQ_E_NOMEM;
    cq_status s = cq_tensor_new(&v->data, CQ_F32, ndim, shape, err);
    if (s) {
        free(v);
        return s;
    }
    v->requires_grad = requires_grad;
    *out = v;
    return CQ_OK;
}

cq_status cq_var_from_tensor(cq_var **out, const cq_tensor *src, bool requires_grad, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    if (!src) return cq_err_set(err, CQ_E_ARG, "cq_var_from_tensor: tensor is NULL");
    cq_var *v;
    cq_status s = cq_var_new(&v, src->ndim, src->shape, requires_grad, err);
    if (s) return s;
    s = cq_convert(src->data, src->dtype, v->data->data, CQ_F32, cq_tensor_numel(src), err);
    if (s) {
        cq_var_free(v);
        cq_err_prefix(err, s, "cq_var_from_tensor: ");
        return s;
    }
    *out = v;
    return CQ_OK;
}

void cq_var_free(cq_var *v) {
    if (!v || v->on_tape) return;
    cq_tensor_free(v->data);
    cq_tensor_free(v->grad);
    free(v);
}

void cq_var_zero_grad(cq_var *v) {
    if (v && v->grad) memset(v->grad->data, 0, cq_tensor_nbytes(v->grad));
}

cq_status cq_var_ensure_grad(cq_tape *t, cq_var *v, cq_err *err) {
    if (!v) return cq_err_set(err, CQ_E_ARG, "cq_var_ensure_grad: var is NULL");
    if (v->grad) return CQ_OK;
    if (!v->on_tape) return cq_tensor_new(&v->grad, CQ_F32, v->data->ndim, v->data->shape, err);
    if (!t) return cq_err_set(err, CQ_E_ARG, "cq_var_ensure_grad: a tape var needs its tape");
    cq_var *g;
    CQ__TRY(cq__tape_var(t, v->data->ndim, v->data->shape, true, &g, err));
    v->grad = g->data;
    return CQ_OK;
}

cq_status cq__grad_of(cq_tape *t, cq_var *v, float **out, cq_err *err) {
    cq_status s = cq_var_ensure_grad(t, v, err);
    *out = s ? NULL : (float *)v->grad->data;
    return s;
}

cq_status cq__check_var(const cq_var *v, const char *op, const char *arg, cq_err *err) {
    if (!v || !v->data || (!v->data->data && cq_tensor_numel(v->data) > 0))
        return cq_err_set(err, CQ_E_ARG, "%s: %s is NULL", op, arg);
    if (v->data->dtype != CQ_F32)
        return cq_err_set(err, CQ_E_DTYPE, "%s: %s has dtype %s, expected F32", op, arg,
                          cq_dtype_name(v->data->dtype));
    return CQ_OK;
}

/* ---- recording and backward ------------------------------------------------------------ */

bool cq__tape_wants_grad(const cq_tape *t, cq_var *const *inputs, int n) {
    if (!t->grad_enabled) return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad) return true;
    return false;
}

cq_status cq_tape_record(cq_tape *t, cq_var *out, cq_var *const *inputs, int n_inputs,
                         cq_backward_fn backward, const void *ctx, size_t ctx_size, cq_err *err) {
    if (!t || !out || !backward || n_inputs < 0 || (n_inputs && !inputs))
        return cq_err_set(err, CQ_E_ARG, "cq_tape_record: tape, out, inputs or backward is NULL");
    if (!cq__tape_wants_grad(t, inputs, n_inputs)) return CQ_OK;
    if (!out->on_tape)
        return cq_err_set(err, CQ_E_ARG, "cq_tape_record: out must be a tape var (cq_tape_zeros)");
    tape_node *node = cq_tape_alloc(t, sizeof *node, err);
    if (!node) return CQ_E_NOMEM;
    node->inputs = cq_tape_alloc(t, sizeof(cq_var *) * (size_t)(n_inputs ? n_inputs : 1), err);
    if (!node->inputs) return CQ_E_NOMEM;
    for (int i = 0; i < n_inputs; i++) node->inputs[i] = inputs[i];
    node->n_inputs = n_inputs;
    node->ctx = NULL;
    if (ctx_size) {
        void *copy = cq_tape_alloc(t, ctx_size, err);
        if (!copy) return CQ_E_NOMEM;
        memcpy(copy, ctx, ctx_size);
        node->ctx = copy;
    }
    node->out = out;
    node->backward = backward;
    node->prev = t->last;
    t->last = node;
    out->node = node;
    out->requires_grad = true;
    return CQ_OK;
}

cq_status cq_backward_with(cq_tape *t, cq_var *out, const float *grad_out, cq_err *err) {
    if (!t || !out || !grad_out) return cq_err_set(err, CQ_E_ARG, "cq_backward: tape, output or gradient is NULL");
    if (!out->requires_grad)
        return cq_err_set(err, CQ_E_ARG,
                          "cq_backward: the output does not require a gradient (grad mode off, or no "
                          "input requires one)");
    for (tape_node *n = t->last; n; n = n->prev) cq_var_zero_grad(n->out);
    float *g;
    CQ__TRY(cq__grad_of(t, out, &g, err));
    int64_t numel = cq_var_numel(out);
    for (int64_t i = 0; i < numel; i++) g[i] += grad_out[i];
    for (tape_node *n = t->last; n; n = n->prev) {
        if (!n->out->grad) continue; /* no gradient reached this node */
        cq_status s = n->backward(t, n->ctx, n->out, n->inputs, n->n_inputs, err);
        if (s) return s;
    }
    return CQ_OK;
}

cq_status cq_backward(cq_tape *t, cq_var *loss, cq_err *err) {
    if (!loss) return cq_err_set(err, CQ_E_ARG, "cq_backward: loss is NULL");
    if (cq_var_numel(loss) != 1)
        return cq_err_set(err, CQ_E_SHAPE, "cq_backward: the loss has %lld elements, expected 1 "
                          "(use cq_backward_with for other outputs)", (long long)cq_var_numel(loss));
    const float one = 1.0f;
    return cq_backward_with(t, loss, &one, err);
}

/* ---- float GEMM -------------------------------------------------------------------------- */

/* Thread-count invariance cannot rest on OpenBLAS: how its threaded driver splits a GEMM, and so
 * the order in which an output is summed, depends on its thread count and on the CPU it
 * detects (under some hypervisors it falls back to a generic core that splits differently; see
 * docs/NN.md). So OpenBLAS always runs single-threaded, and large GEMMs are cut here into panels
 * of C of a fixed size, whatever the thread count: the same calls with the same arguments, only
 * spread over different threads, give the same bytes. */
#define SGEMM_PANEL 64

static void sgemm_call(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void cq__sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc) {
    if (m == 0 || n == 0) return;
    CQ_ASSERT(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && lda <= INT32_MAX &&
              ldb <= INT32_MAX && ldc <= INT32_MAX);
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
    if (k == 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    /* Small GEMMs (LeNet's are 0.1-2 M multiply-adds) stay whole: waking threads costs more than
     * they take. Large ones are cut along the longer side of C. */
    bool by_rows = m >= n;
    int64_t len = by_rows ? m : n, panels = (len + SGEMM_PANEL - 1) / SGEMM_PANEL;
    if ((double)m * (double)n * (double)k < SGEMM_THREADED_MACS || panels < 2) {
        sgemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#pragma omp parallel for schedule(dynamic) num_threads(cq_get_num_threads())
    for (int64_t p = 0; p < panels; p++) {
        int64_t lo = p * SGEMM_PANEL, cnt = len - lo < SGEMM_PANEL ? len - lo : SGEMM_PANEL;
        if (by_rows) /* rows lo.. of C: rows of A, or columns of A^T */
            sgemm_call(trans_a, trans_b, cnt, n, k, alpha, trans_a ? a + lo : a + lo * lda, lda, b, ldb, beta,
                       c + lo * ldc, ldc);
        else /* columns lo.. of C: columns of B, or rows of B^T */
            sgemm_call(trans_a, trans_b, m, cnt, k, alpha, a, lda, trans_b ? b + lo * ldb : b + lo, ldb, beta, c + lo,
                       ldc);
    }
}
