/*
 * threads.c - the thread count used by OpenMP regions in the library. Work is always split by
 * output rows with a fixed reduction order, so the count changes speed, never results.
 */
#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static int g_threads; /* 0: not yet decided */

static int default_threads(void) {
    const char *env = getenv("CQ_THREADS");
    if (env && *env) {
        int n = atoi(env);
        if (n > 0) return n;
    }
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void cq_set_num_threads(int n) { g_threads = n > 0 ? n : default_threads(); }

int cq_get_num_threads(void) {
    if (g_threads <= 0) g_threads = default_threads();
    return g_threads;
}
