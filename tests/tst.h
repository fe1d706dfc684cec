/*
 * tst.h - the test harness. A test is `TST(name) { ... CHECK(...); }` in any tests/test_*.c;
 * it registers itself before main runs, so adding a test never touches a central list.
 * A test passes when every CHECK held and at least one CHECK ran: a test that asserts
 * nothing fails. TST_FULL tests run only with --full (make test-full).
 * Tests run from the repository root, so data paths are relative to it.
 */
#ifndef CQ_TST_H
#define CQ_TST_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

typedef void (*tst_fn)(void);
void tst_register(const char *name, const char *file, tst_fn fn, int full);
void tst_check_failed(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tst_check_passed(void);
void tst_skip(const char *why);
/* Compares n bytes; on a mismatch reports the first differing byte offset and both values. */
int tst_bytes_equal(const void *a, const void *b, size_t n, const char *file, int line, const char *what);

#define TST__DEF(name, full)                                                              \
    static void tst_##name(void);                                                         \
    __attribute__((constructor)) static void tst_reg_##name(void) {                       \
        tst_register(#name, __FILE__, tst_##name, full);                                  \
    }                                                                                     \
    static void tst_##name(void)

#define TST(name) TST__DEF(name, 0)
#define TST_FULL(name) TST__DEF(name, 1)

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (cond) tst_check_passed();                                                     \
        else tst_check_failed(__FILE__, __LINE__, #cond, NULL);                           \
    } while (0)

/* CHECK with a printf-style explanation printed on failure. */
#define CHECKF(cond, ...)                                                                 \
    do {                                                                                  \
        if (cond) tst_check_passed();                                                     \
        else tst_check_failed(__FILE__, __LINE__, #cond, __VA_ARGS__);                    \
    } while (0)

#define CHECK_BYTES(a, b, n, what) tst_bytes_equal((a), (b), (n), __FILE__, __LINE__, (what))

#endif
