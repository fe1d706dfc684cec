/*
 * test_nn_util.h - helpers shared by the nn tests (test_grad.c, test_nn_*.c, test_optim.c):
 * a seeded generator, vars filled with grid-aligned values, and a tape-free way to read a
 * var. Static inline so each test file gets its own copy; no test state is shared.
 */
#ifndef CQ_TEST_NN_UTIL_H
#define CQ_TEST_NN_UTIL_H

#include "cquanto.h"
#include "tst.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>

static inline uint64_t tnn_rng(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1). */
static inline double tnn_uniform(uint64_t *s) { return ((double)(tnn_rng(s) >> 11) + 0.5) / 9007199254740992.0; }

/* Standard normal (Box-Muller). */
static inline double tnn_normal(uint64_t *s) {
    double u = tnn_uniform(s), v = tnn_uniform(s);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Rounds to a multiple of 2^-12 so that x +- k h stays exact for the finite-difference steps. */
static inline float tnn_grid(double x) { return (float)(nearbyint(x * 4096.0) / 4096.0); }

/* A long-lived var of the given shape; the caller frees it with cq_var_free. */
static inline cq_var *tnn_var(int ndim, const int64_t *shape, bool requires_grad) {
    cq_var *v = NULL;
    cq_err err = {0};
    if (cq_var_new(&v, ndim, shape, requires_grad, &err) != CQ_OK) {
        fprintf(stderr, "tnn_var: %s\n", err.msg);
        abort();
    }
    return v;
}

static inline void tnn_fill_normal(cq_var *v, uint64_t *s, double scale) {
    float *p = cq_var_f32(v);
    for (int64_t i = 0; i < cq_var_numel(v); i++) p[i] = tnn_grid(scale * tnn_normal(s));
}

/* ---- goldens written by tools/gen_nn_golden.py ---- */
#define GOLDEN_HINT "regenerate with /root/qvenv/bin/python tools/gen_nn_golden.py"

static inline cq_st_file *golden_open(const char *path) {
    cq_err err = {0};
    cq_st_file *f = NULL;
    if (cq_st_open(path, &f, &err) != CQ_OK) {
        CHECKF(false, "%s (%s)", err.msg, GOLDEN_HINT);
        return NULL;
    }
    const char *gen = cq_st_metadata(f, "generator"), *ver = cq_st_metadata(f, "format_version");
    bool ok = gen && ver && strcmp(gen, "tools/gen_nn_golden.py") == 0 && strcmp(ver, "1") == 0;
    CHECKF(ok, "%s: unexpected generator/format_version (%s)", path, GOLDEN_HINT);
    if (!ok) {
        cq_st_close(f);
        return NULL;
    }
    return f;
}

static inline const cq_tensor *golden_get(cq_st_file *f, const char *cname, const char *name) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", cname, name);
    int64_t i = cq_st_find(f, key);
    return i < 0 ? NULL : cq_st_tensor(f, i);
}

static inline json_t *golden_params(cq_st_file *f, const char *cname) {
    char key[160];
    snprintf(key, sizeof key, "%s.params", cname);
    const char *text = cq_st_metadata(f, key);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    CHECKF(j != NULL, "%s: no parameters (%s)", key, GOLDEN_HINT);
    return j;
}

/* Checks max |got - ref| / max |ref| <= tol over the tensor, and the element count.
 * CQ_GOLDEN_VERBOSE=1 prints the measured ratio. */
static inline void golden_compare(const char *cname, const char *what, const float *got, int64_t n, const cq_tensor *ref,
                                  double tol) {
    CHECKF(ref && cq_tensor_numel(ref) == n, "%s.%s: missing or wrong size in the golden", cname, what);
    if (!ref || cq_tensor_numel(ref) != n) return;
    const float *r = ref->data;
    double max_ref = 0, max_diff = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        max_ref = fmax(max_ref, fabs(r[i]));
        double d = fabs((double)got[i] - r[i]);
        if (d > max_diff || isnan(d)) max_diff = d, at = i;
    }
    double rel = max_ref > 0 ? max_diff / max_ref : max_diff;
    if (getenv("CQ_GOLDEN_VERBOSE")) printf("  %-28s %-14s rel %.3g\n", cname, what, rel);
    CHECKF(rel <= tol, "%s.%s: element %lld ours %.9g torch %.9g (max |diff|/max |ref| = %.3g > %g)", cname, what,
           (long long)at, got[at], r[at], rel, tol);
}

#endif
