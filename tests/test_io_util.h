/*
 * test_io_util.h - small helpers shared by the io tests (test_safetensors.c, test_io_*.c):
 * scratch folders, whole-file reads, the FNV-1a hash the fixture manifest uses, and the
 * manifest itself (tests/data/st/manifest.json, written by tools/gen_st_fixtures.py).
 */
#ifndef CQ_TEST_IO_UTIL_H
#define CQ_TEST_IO_UTIL_H

#include "cquanto.h"
#include "cquanto/experimental.h"
#include "tst.h"

#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>

#define IO_UNUSED __attribute__((unused))

/* Encodes text with t (special tokens added) and compares the ids with the JSON array want;
 * *ids (malloc'd, the caller frees it) and *n get what the encoder gave. */
static IO_UNUSED bool io_ids_match(const cq_tokenizer *t, const char *text, const json_t *want, int32_t **ids,
                                   int64_t *n) {
    *ids = NULL, *n = 0;
    if (cq_tokenizer_encode(t, text, strlen(text), true, ids, n, NULL) != CQ_OK) return false;
    bool same = (size_t)*n == json_array_size(want);
    for (int64_t k = 0; same && k < *n; k++) same = (*ids)[k] == json_integer_value(json_array_get(want, (size_t)k));
    return same;
}

/* A fresh empty scratch folder under $TMPDIR (or /tmp); the caller removes it. */
static IO_UNUSED char *io_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/cqio.XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static IO_UNUSED void io_rmtree(char *dir) {
    if (dir) cq_fs_remove_tree(dir, NULL);
    free(dir);
}

/* Whole file, malloc'd; NULL if unreadable. */
static IO_UNUSED unsigned char *io_slurp(const char *path, size_t *n) {
    char *text = NULL;
    if (cq_fs_read_file(path, (size_t)1 << 30, &text, n, NULL) != CQ_OK) return NULL;
    return (unsigned char *)text;
}

static IO_UNUSED uint64_t io_fnv1a64(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001B3ull;
    return h;
}

/* Entries in a folder other than . and .. (to spot leftover temp files). */
static IO_UNUSED int io_count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static IO_UNUSED json_t *io_manifest(void) {
    return json_load_file("tests/data/st/manifest.json", 0, NULL);
}

/* True when a and b hold the same bytes (reports the first difference). */
#define IO_CHECK_SAME_FILE(a, b)                                                            \
    do {                                                                                  \
        size_t na_ = 0, nb_ = 0;                                                          \
        unsigned char *da_ = io_slurp((a), &na_), *db_ = io_slurp((b), &nb_);             \
        CHECKF(da_ && db_ && na_ == nb_, "%s (%zu bytes) vs %s (%zu bytes)", (a), na_, (b), nb_); \
        if (da_ && db_ && na_ == nb_) CHECK_BYTES(da_, db_, na_, (a));                    \
        free(da_);                                                                        \
        free(db_);                                                                        \
    } while (0)

#endif
