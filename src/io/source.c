/*
 * source.c - opening a file as a tensor source (source.h): the format is chosen here, from the
 * file, and the rest of the library never asks which one it got.
 */
#include "io/fsutil.h"
#include "io/io_internal.h"

#include <sys/mman.h>
#include <unistd.h>

/* GGUF when the file starts with its magic, or when it is named *.gguf (so a damaged GGUF file
 * is reported by the GGUF reader, "bad magic", not as a safetensors header); safetensors
 * otherwise (its first 8 bytes are a length, with no magic of its own to look for). */
static bool is_gguf(const char *path) {
    if (cq__str_has_suffix(path, ".gguf")) return true;
    int fd;
    if (cq__open_regular(path, &fd, NULL, NULL)) return false; /* the reader reports it */
    char magic[4];
    bool yes = pread(fd, magic, 4, 0) == 4 && !memcmp(magic, "GGUF", 4);
    close(fd);
    return yes;
}

cq_status cq__source_open(const char *path, cq__source **out, cq_err *err) {
    *out = NULL;
    if (path && is_gguf(path)) {
        cq_gguf *g = NULL;
        cq_status s = cq_gguf_open(path, &g, err);
        if (!s) *out = cq__gguf_source(g);
        return s;
    }
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

void cq__release_mapped(const void *data, uint64_t nbytes, uint64_t off, uint64_t n) {
    if (!data || off >= nbytes || n == 0) return;
    if (n > nbytes - off) n = nbytes - off;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)data + off, b = a + n;
    uintptr_t lo = (a + page - 1) & ~(page - 1), hi = b & ~(page - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void cq__advise_sequential(const void *base, size_t size) {
    if (base && size) (void)madvise((void *)base, size, MADV_SEQUENTIAL);
}
