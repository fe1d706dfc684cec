/*
 * tst_main.c - runs the registered tests: all of them, those whose name contains argv[1], and
 * the TST_FULL ones only with --full. Prints one line per failure and closes with
 * "N passed, N failed[, N skipped]"; exits 1 on any failure.
 */
#include "tst.h"

#include <stdarg.h>
#include <stdlib.h>

typedef struct {
    const char *name, *file;
    tst_fn fn;
    int full;
} tst_case;

static tst_case *g_cases;
static int g_ncases, g_capcases;
static int g_cur_checks, g_cur_failed, g_cur_skipped;
static const char *g_cur_name;

void tst_register(const char *name, const char *file, tst_fn fn, int full) {
    if (g_ncases == g_capcases) {
        g_capcases = g_capcases ? 2 * g_capcases : 256;
        g_cases = realloc(g_cases, (size_t)g_capcases * sizeof *g_cases);
        if (!g_cases) {
            fprintf(stderr, "tst: out of memory\n");
            exit(2);
        }
    }
    g_cases[g_ncases++] = (tst_case){name, file, fn, full};
}

void tst_check_passed(void) { g_cur_checks++; }

void tst_check_failed(const char *file, int line, const char *expr, const char *fmt, ...) {
    g_cur_checks++;
    if (g_cur_failed++ < 8) {
        printf("  FAIL %s (%s:%d): %s", g_cur_name, file, line, expr);
        if (fmt) {
            printf(": ");
            va_list ap;
            va_start(ap, fmt);
            vprintf(fmt, ap);
            va_end(ap);
        }
        printf("\n");
    }
}

void tst_skip(const char *why) {
    g_cur_skipped = 1;
    printf("  skip %s: %s\n", g_cur_name, why);
}

int tst_bytes_equal(const void *a, const void *b, size_t n, const char *file, int line, const char *what) {
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            tst_check_failed(file, line, what, "first difference at byte %zu: 0x%02x vs 0x%02x (of %zu)", i,
                             x[i], y[i], n);
            return 0;
        }
    }
    tst_check_passed();
    return 1;
}

int main(int argc, char **argv) {
    int full = 0, list = 0;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full")) full = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else filter = argv[i];
    }
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < g_ncases; i++) {
        tst_case *c = &g_cases[i];
        if (c->full && !full) continue;
        if (filter && !strstr(c->name, filter)) continue;
        if (list) {
            printf("%s (%s)\n", c->name, c->file);
            continue;
        }
        g_cur_name = c->name;
        g_cur_checks = g_cur_failed = g_cur_skipped = 0;
        c->fn();
        if (g_cur_failed) {
            failed++;
        } else if (g_cur_skipped && g_cur_checks == 0) {
            skipped++;
        } else if (g_cur_checks == 0) {
            printf("  FAIL %s: asserted nothing\n", c->name);
            failed++;
        } else {
            passed++;
        }
    }
    if (list) return 0;
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
