/*
 * tensor.c - the dense tensor descriptor: dtype, shape, data, ownership. Tensors are always
 * contiguous row-major; views borrow memory (a mapped file, a caller buffer) and never free it.
 */
#include "internal.h"

#include <inttypes.h>

void *cq_aligned_alloc(size_t nbytes) {
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    if (rounded < nbytes) return NULL;
    return aligned_alloc(64, rounded ? rounded : 64);
}

void cq_aligned_free(void *p) { free(p); }

int64_t cq_shape_numel(int ndim, const int64_t *shape) {
    if (ndim > 0 && !shape) return 0;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int64_t cq_tensor_numel(const cq_tensor *t) { return t ? cq_shape_numel(t->ndim, t->shape) : 0; }

size_t cq_tensor_nbytes(const cq_tensor *t) {
    return t ? (size_t)cq_tensor_numel(t) * cq_dtype_size(t->dtype) : 0;
}

static cq_status check_shape(cq_dtype dt, int ndim, const int64_t *shape, size_t *nbytes, cq_err *err) {
    if (dt <= CQ_DTYPE_INVALID || dt >= CQ_DTYPE_COUNT)
        return cq_err_set(err, CQ_E_DTYPE, "invalid dtype %d", (int)dt);
    if (ndim < 0 || ndim > CQ_MAX_DIMS)
        return cq_err_set(err, CQ_E_SHAPE, "rank %d outside 0..%d", ndim, CQ_MAX_DIMS);
    if (ndim > 0 && !shape) return cq_err_set(err, CQ_E_ARG, "a rank-%d shape is NULL", ndim);
    uint64_t n = cq_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return cq_err_set(err, CQ_E_SHAPE, "negative dimension %" PRId64, shape[i]);
        if (cq__mul_overflow_u64(n, (uint64_t)shape[i], &n) || n > (uint64_t)SIZE_MAX / 2)
            return cq_err_set(err, CQ_E_OVERFLOW, "tensor size overflows");
    }
    *nbytes = (size_t)n;
    return CQ_OK;
}

static cq_tensor *header_new(cq_dtype dt, int ndim, const int64_t *shape, cq_err *err) {
    cq_tensor *t = cq__calloc(1, sizeof *t, err, "a tensor header");
    if (!t) return NULL;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return t;
}

cq_status cq_tensor_new(cq_tensor **out, cq_dtype dt, int ndim, const int64_t *shape, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    size_t nbytes;
    cq_status s = check_shape(dt, ndim, shape, &nbytes, err);
    if (s) return s;
    cq_tensor *t = header_new(dt, ndim, shape, err);
    if (!t) return CQ_E_NOMEM;
    t->data = cq_aligned_alloc(nbytes);
    if (!t->data) {
        free(t);
        return cq_err_set(err, CQ_E_NOMEM, "out of memory allocating a %zu-byte tensor", nbytes);
    }
    memset(t->data, 0, nbytes);
    t->owns_data = true;
    *out = t;
    return CQ_OK;
}

cq_status cq_tensor_view(cq_tensor **out, cq_dtype dt, int ndim, const int64_t *shape, void *data,
                         cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    size_t nbytes;
    cq_status s = check_shape(dt, ndim, shape, &nbytes, err);
    if (s) return s;
    if (!data && nbytes) return cq_err_set(err, CQ_E_ARG, "cq_tensor_view: data is NULL");
    cq_tensor *t = header_new(dt, ndim, shape, err);
    if (!t) return CQ_E_NOMEM;
    t->data = data;
    t->owns_data = false;
    *out = t;
    return CQ_OK;
}

cq_status cq_tensor_clone(cq_tensor **out, const cq_tensor *src, cq_err *err) {
    if (!src) {
        if (out) *out = NULL;
        return cq_err_set(err, CQ_E_ARG, "cq_tensor_clone: src is NULL");
    }
    cq_status s = cq_tensor_new(out, src->dtype, src->ndim, src->shape, err);
    if (s) return s;
    memcpy((*out)->data, src->data, cq_tensor_nbytes(src));
    return CQ_OK;
}

void cq_tensor_free(cq_tensor *t) {
    if (!t) return;
    if (t->owns_data) cq_aligned_free(t->data);
    free(t);
}

bool cq_tensor_same_shape(const cq_tensor *a, const cq_tensor *b) {
    if (!a || !b) return false;
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *cq_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t used = 0;
    if (!buf || n == 0) return "";
    if (ndim > 0 && !shape) ndim = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, n - used, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %" PRId64 : "%" PRId64, shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}
