/*
 * mem_source.c - tensors in memory as a tensor source (mem_source.h).
 */
#include "io/io_internal.h"
#include "io/mem_source.h"

typedef struct mem_source {
    char *label;
    cq__src_tensor *t;
    int64_t n, cap;
    cq__source src;
} mem_source;

static int64_t mem_count(const void *impl) { return ((const mem_source *)impl)->n; }

static const cq__src_tensor *mem_tensor(const void *impl, int64_t i) {
    const mem_source *m = impl;
    return i >= 0 && i < m->n ? &m->t[i] : NULL;
}

/* The bytes are nobody's copy of a file, so a tensor read to its end is freed rather than
 * handed back to the page cache; partial releases keep it. */
static void mem_release(const void *impl, int64_t i, uint64_t off, uint64_t n) {
    const mem_source *m = impl;
    if (i < 0 || i >= m->n || off != 0 || n < m->t[i].nbytes) return;
    cq__src_tensor *t = (cq__src_tensor *)&m->t[i];
    cq_aligned_free(t->t.data);
    t->t.data = NULL;
}

static int64_t mem_meta_count(const void *impl) {
    (void)impl;
    return 0;
}
static const char *mem_meta_key(const void *impl, int64_t k) {
    (void)impl, (void)k;
    return NULL;
}
static bool mem_meta_value(const void *impl, int64_t k, int64_t elem, cq__meta *out) {
    (void)impl, (void)k, (void)elem, (void)out;
    return false;
}

static void mem_close(void *impl) {
    mem_source *m = impl;
    for (int64_t i = 0; i < m->n; i++) {
        free((char *)m->t[i].name);
        cq_aligned_free(m->t[i].t.data);
    }
    free(m->t);
    free(m->label);
    free(m);
}

static const cq__source_ops g_mem_ops = {
    "memory", mem_count, mem_tensor, mem_release, NULL, mem_meta_count, mem_meta_key, mem_meta_value, mem_close,
};

cq_status cq__mem_source_new(const char *label, int64_t cap, cq__source **out, cq_err *err) {
    *out = NULL;
    mem_source *m = cq__calloc(1, sizeof *m, err, "a tensor source");
    if (!m) return CQ_E_NOMEM;
    m->label = cq__strdup(label ? label : "<memory>", err);
    m->t = cap > 0 ? cq__calloc((size_t)cap, sizeof *m->t, err, "tensor records") : NULL;
    if (!m->label || (cap > 0 && !m->t)) {
        mem_close(m);
        return CQ_E_NOMEM;
    }
    m->cap = cap;
    m->src.ops = &g_mem_ops;
    m->src.impl = m;
    *out = &m->src;
    return CQ_OK;
}

cq_status cq__mem_source_add(cq__source *s, const char *name, cq_dtype dt, int ndim, const int64_t *shape,
                             void **data, cq_err *err) {
    mem_source *m = s->impl;
    *data = NULL;
    uint64_t nbytes = 0;
    if (m->n == m->cap) return cq_err_set(err, CQ_E_ARG, "%s: more tensors than declared", m->label);
    if (ndim < 0 || ndim > CQ_MAX_DIMS || !cq__st_shape_nbytes(dt, ndim, shape, &nbytes))
        return cq_err_set(err, CQ_E_FORMAT, "%s: tensor '%s' has a bad shape", m->label, name);
    for (int64_t i = 0; i < m->n; i++)
        if (!strcmp(m->t[i].name, name))
            return cq_err_set(err, CQ_E_FORMAT, "%s: tensor '%s' appears twice", m->label, name);
    cq__src_tensor *t = &m->t[m->n];
    memset(t, 0, sizeof *t);
    if (!(t->name = cq__strdup(name, err))) return CQ_E_NOMEM;
    t->t.data = cq_aligned_alloc(nbytes ? (size_t)nbytes : 1);
    if (!t->t.data) {
        free((char *)t->name);
        return cq_err_set(err, CQ_E_NOMEM, "%s: out of memory for tensor '%s' (%llu bytes)", m->label, name,
                          (unsigned long long)nbytes);
    }
    memset(t->t.data, 0, (size_t)nbytes);
    t->t.dtype = dt;
    t->t.ndim = ndim;
    for (int d = 0; d < ndim; d++) t->t.shape[d] = shape[d];
    t->nbytes = nbytes;
    m->n++;
    *data = t->t.data;
    return CQ_OK;
}
