/*
 * read_bw.h - the memory-read bandwidth probe shared by bench_kernels.c and mem_read_bw.c, so that
 * every ratio "of read bandwidth" in BENCHMARKS.md divides by the same measurement: T threads
 * each stream a disjoint part of a buffer far larger than the caches with the widest loads the
 * CPU has (4 independent AVX-512 accumulators, else 4 scalar ones), median of `reps` passes.
 */
#ifndef CQ_BENCH_READ_BW_H
#define CQ_BENCH_READ_BW_H

#include "cquanto.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

__attribute__((target("avx512f"))) static uint64_t bench_read_avx512(const uint8_t *p, size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

static uint64_t bench_read_scalar(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) a += q[i], b += q[i + 1], c += q[i + 2], d += q[i + 3];
    return a + b + c + d;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static volatile uint64_t bench_read_sink;

/* buf: 64-byte aligned, n bytes (touched beforehand, so no page faults are timed); reps <= 15. */
static double bench_read_bandwidth(const uint8_t *buf, size_t n, int threads, int reps) {
    int avx512 = cq_cpu_get_info()->avx512f;
    double t[15];
    if (reps > 15) reps = 15;
    for (int r = 0; r < reps; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        uint64_t s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
        {
            int id = omp_get_thread_num(), nt = omp_get_num_threads();
            size_t per = (n / (size_t)nt) & ~(size_t)255;
            const uint8_t *p = buf + per * (size_t)id;
            s += avx512 ? bench_read_avx512(p, per) : bench_read_scalar(p, per);
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        t[r] = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        bench_read_sink += s;
    }
    qsort(t, (size_t)reps, sizeof t[0], bench_cmp_double);
    double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
    return (double)n / med * 1e-9;
}

#endif
