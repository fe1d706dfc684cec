/*
 * internal.h - helpers shared by the library's translation units; never installed.
 * Everything here is either static inline or a cq__ function, so kernel files compiled with
 * ISA flags get their own copies and nothing leaks between instruction sets.
 */
#ifndef CQ_INTERNAL_H
#define CQ_INTERNAL_H

#include "cquanto.h"
#include "cquanto/experimental.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CQ_UNUSED(x) ((void)(x))
#define CQ_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Internal invariants only; never for anything a file or a caller controls. */
#define CQ_ASSERT(cond)                                                                   \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "cquanto: internal error %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* Returns from the enclosing function with the status of a failed call (statuses travel by
 * return value only: the cq_err record carries the message, never the status). */
#define CQ__TRY(call)                      \
    do {                                   \
        cq_status cq__try_s_ = (call);     \
        if (cq__try_s_) return cq__try_s_; \
    } while (0)

/* Refuses a NULL pointer argument of a public function with CQ_E_ARG, naming the function and
 * the argument (err must be in scope). */
#define CQ__ARG(p)                                                                              \
    do {                                                                                        \
        if (!(p)) return cq_err_set(err, CQ_E_ARG, "%s: argument '%s' is NULL", __func__, #p); \
    } while (0)

/* Defines a tuning knob of cquanto/experimental.h, static variable VAR (starting at INIT), and
 * its setter SETTER, so that every knob keeps the header's rule: a positive value replaces the
 * knob, any other only reads it, and the previous value comes back for the test to restore. */
#define CQ__TEST_KNOB(type, var, init, setter) \
    static type var = (init);                  \
    type setter(type value) {                  \
        type was = var;                        \
        if (value > 0) var = value;            \
        return was;                            \
    }

/* Checked a*b for sizes; returns false on overflow. */
static inline bool cq__mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}
static inline bool cq__add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}

/* Allocation that reports through err; NULL always means CQ_E_NOMEM. */
void *cq__malloc(size_t n, cq_err *err, const char *what);
void *cq__calloc(size_t count, size_t size, cq_err *err, const char *what);
char *cq__strdup(const char *s, cq_err *err);

/* Whether s ends with suffix (file extensions, state-dict key tails). */
static inline bool cq__str_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The 8-bit qtype whose data tensors have dtype dt (qint8 for I8, the float8 qtypes for their
 * F8 dtypes), NULL for any other dtype (core/qtype.c). */
const cq_qtype_info *cq__qtype_storing(cq_dtype dt);

/* Python's fnmatch.fnmatchcase(name, pattern): the one matcher of module names against
 * include/exclude patterns (core/fnmatch.c states the rules). */
bool cq__fnmatchcase(const char *pattern, const char *name);

#endif
