/*
 * test_quant_util.h - helpers for the golden-file tests (test_dtype.c, test_quant_golden.c):
 * open a fixture from tests/data/golden/, walk its case list (the "_cases" text tensor written
 * by tools/gen_golden.py), fetch tensors by name, compare tensors bit for bit. Static
 * functions only, so each test file gets its own copy.
 */
#ifndef CQ_TEST_QUANT_UTIL_H
#define CQ_TEST_QUANT_UTIL_H

#include "cquanto.h"
#include "tst.h"

#include <stdarg.h>
#include <stdlib.h>

#define GOLDEN_DIR "tests/data/golden/"

static __attribute__((unused)) cq_st_file *golden_open(const char *name) {
    char path[256];
    snprintf(path, sizeof path, GOLDEN_DIR "%s.safetensors", name);
    cq_st_file *f = NULL;
    cq_err err = {0};
    cq_status s = cq_st_open(path, &f, &err);
    CHECKF(s == CQ_OK, "%s", err.msg);
    return s == CQ_OK ? f : NULL;
}

/* A fixture tensor; fails the test (and returns NULL) when missing. */
static __attribute__((unused)) const cq_tensor *golden_get(const cq_st_file *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static __attribute__((unused)) const cq_tensor *golden_get(const cq_st_file *f, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const cq_tensor *t = NULL;
    cq_err err = {0};
    cq_status s = cq_st_get(f, name, &t, &err);
    CHECKF(s == CQ_OK, "%s", err.msg);
    return s == CQ_OK ? t : NULL;
}

/* The same tensor, present or not (no check). */
static __attribute__((unused)) const cq_tensor *golden_find(const cq_st_file *f, const char *name) {
    int64_t i = cq_st_find(f, name);
    return i < 0 ? NULL : cq_st_tensor(f, i);
}

/* fnuz tensors are stored as their U8 bit patterns: a header copy with the real dtype. */
static __attribute__((unused)) cq_tensor retag(const cq_tensor *t, cq_dtype dt) {
    cq_tensor c = *t;
    c.dtype = dt;
    c.owns_data = false;
    return c;
}

/* Case list iteration: each line is "<case> key=value key=value ...". */
typedef struct golden_cases {
    const char *text, *end, *line;
    char name[160], rest[512];
} golden_cases;

static __attribute__((unused)) bool golden_cases_begin(golden_cases *c, const cq_st_file *f) {
    const cq_tensor *t = golden_find(f, "_cases");
    CHECKF(t != NULL, "fixture %s has no _cases", cq_st_path(f));
    if (!t) return false;
    c->text = c->line = t->data;
    c->end = c->text + cq_tensor_numel(t);
    return true;
}

static __attribute__((unused)) bool golden_cases_next(golden_cases *c) {
    if (c->line >= c->end) return false;
    const char *nl = memchr(c->line, '\n', (size_t)(c->end - c->line));
    if (!nl) nl = c->end;
    const char *sp = memchr(c->line, ' ', (size_t)(nl - c->line));
    if (!sp) sp = nl;
    snprintf(c->name, sizeof c->name, "%.*s", (int)(sp - c->line), c->line);
    snprintf(c->rest, sizeof c->rest, " %.*s", (int)(nl - sp), sp);
    c->line = nl + 1;
    return true;
}

/* Value of key in the current case ("" if absent), copied into buf. */
static __attribute__((unused)) const char *golden_case_str(const golden_cases *c, const char *key, char *buf,
                                                           size_t n) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(c->rest, pat);
    buf[0] = '\0';
    if (!p) return buf;
    p += strlen(pat);
    size_t len = strcspn(p, " \n");
    snprintf(buf, n, "%.*s", (int)len, p);
    return buf;
}

static __attribute__((unused)) long long golden_case_int(const golden_cases *c, const char *key) {
    char buf[64];
    return atoll(golden_case_str(c, key, buf, sizeof buf));
}

/* "none" -> CQ_AXIS_NONE, else the integer. */
static __attribute__((unused)) int golden_case_axis(const golden_cases *c) {
    char buf[16];
    golden_case_str(c, "axis", buf, sizeof buf);
    return strcmp(buf, "none") ? atoi(buf) : CQ_AXIS_NONE;
}

static __attribute__((unused)) cq_qtype golden_case_qtype(const golden_cases *c) {
    char buf[32];
    cq_qtype q = CQ_QNONE;
    cq_qtype_parse(golden_case_str(c, "qtype", buf, sizeof buf), &q, NULL);
    return q;
}

/* Same dtype, shape and bytes; reports the case and the first differing element. */
static __attribute__((unused)) bool tensors_identical(const cq_tensor *got, const cq_tensor *want, const char *what) {
    if (!got || !want) {
        CHECKF(false, "%s: missing tensor", what);
        return false;
    }
    char b1[96], b2[96];
    bool same = got->dtype == want->dtype && cq_tensor_same_shape(got, want);
    CHECKF(same, "%s: got %s %s, want %s %s", what, cq_dtype_name(got->dtype),
           cq_shape_str(got->ndim, got->shape, b1, sizeof b1), cq_dtype_name(want->dtype),
           cq_shape_str(want->ndim, want->shape, b2, sizeof b2));
    if (!same) return false;
    size_t es = cq_dtype_size(got->dtype), n = (size_t)cq_tensor_numel(got);
    const uint8_t *a = got->data, *b = want->data;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(a + i * es, b + i * es, es)) {
            CHECKF(false, "%s: element %zu differs: got %g, want %g", what, i,
                   (double)cq_load_f32(a, got->dtype, (int64_t)i), (double)cq_load_f32(b, want->dtype, (int64_t)i));
            return false;
        }
    }
    CHECK(true);
    return true;
}

#endif
