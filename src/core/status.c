/*
 * status.c - status codes and the caller-owned error record. There is no global error state:
 * every fallible call writes into the cq_err the caller passed, so threads never share one.
 */
#include "internal.h"

#include <stdarg.h>

const char *cq_status_str(cq_status s) {
    switch (s) {
    case CQ_OK: return "ok";
    case CQ_E_ARG: return "invalid argument";
    case CQ_E_NOMEM: return "out of memory";
    case CQ_E_IO: return "i/o error";
    case CQ_E_FORMAT: return "malformed file";
    case CQ_E_SHAPE: return "shape mismatch";
    case CQ_E_DTYPE: return "dtype error";
    case CQ_E_UNSUPPORTED: return "unsupported";
    case CQ_E_OVERFLOW: return "size overflow";
    case CQ_E_NOTFOUND: return "not found";
    case CQ_E_EXISTS: return "already exists";
    }
    return "unknown status";
}

cq_status cq_err_set(cq_err *err, cq_status s, const char *fmt, ...) {
    if (err && !fmt) {
        /* A NULL format is a caller bug; give the status's own words rather than pass it on. */
        snprintf(err->msg, sizeof err->msg, "%s", cq_status_str(s));
    } else if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

cq_status cq_err_prefix(cq_err *err, cq_status s, const char *fmt, ...) {
    if (!err || !fmt) return s; /* a NULL format adds no context */
    char prefix[CQ_ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Shift the old message right to make room; the tail is cut if the total is too long. */
    size_t plen = strlen(prefix), olen = strnlen(err->msg, sizeof err->msg - 1);
    if (plen > sizeof err->msg - 1) plen = sizeof err->msg - 1;
    if (plen + olen > sizeof err->msg - 1) olen = sizeof err->msg - 1 - plen;
    memmove(err->msg + plen, err->msg, olen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + olen] = '\0';
    return s;
}

void cq_err_clear(cq_err *err) {
    if (err) err->msg[0] = '\0';
}

void *cq__malloc(size_t n, cq_err *err, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) cq_err_set(err, CQ_E_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *cq__calloc(size_t count, size_t size, cq_err *err, const char *what) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) cq_err_set(err, CQ_E_NOMEM, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

char *cq__strdup(const char *s, cq_err *err) {
    size_t n = strlen(s) + 1;
    char *p = cq__malloc(n, err, "a string");
    if (p) memcpy(p, s, n);
    return p;
}
