/*
 * test_fnmatch.c - the module-name matcher (cq__fnmatchcase) against Python's
 * fnmatch.fnmatchcase on CPython's own test cases plus edge cases
 * (tests/data/fnmatch_cases.inc, written by tools/gen_fnmatch_cases.py).
 */
#include "tst.h"
#include "core/internal.h"

static const struct {
    const char *pattern, *name;
    int want;
} cases[] = {
#include "data/fnmatch_cases.inc"
};

TST(fnmatch_is_pythons_fnmatchcase) {
    int failed = 0;
    for (size_t i = 0; i < CQ_ARRAY_LEN(cases); i++) {
        bool got = cq__fnmatchcase(cases[i].pattern, cases[i].name);
        if (got != (cases[i].want != 0) && failed++ < 20)
            CHECKF(false, "fnmatchcase('%s', '%s') gave %d, Python %d", cases[i].name, cases[i].pattern, got,
                   cases[i].want);
    }
    CHECKF(failed == 0, "%d of %zu cases differ from Python", failed, CQ_ARRAY_LEN(cases));
    CHECK(CQ_ARRAY_LEN(cases) > 2000);
}
