/*
 * source.c - opening a file as a tensor source (source.h): the format is chosen here, from the
 * file, and the rest of the library never asks which one it got.
 */
#include "io/io_internal.h"

cq_status cq__source_open(const char *path, cq__source **out, cq_err *err) {
    *out = NULL;
    cq_st_file *f = NULL;
    cq_status s = cq_st_open(path, &f, err);
    if (!s) *out = cq__st_source(f);
    return s;
}

void cq__source_close(cq__source *s) {
    if (s) s->ops->close(s->impl);
}

const char *cq__src_meta_string(const cq__source *s, const char *key) {
    int64_t n = s->ops->meta_count(s->impl);
    cq__meta v;
    for (int64_t k = 0; k < n; k++)
        if (!strcmp(s->ops->meta_key(s->impl, k), key))
            return s->ops->meta_value(s->impl, k, -1, &v) && v.kind == CQ__META_STRING ? v.str : NULL;
    return NULL;
}
