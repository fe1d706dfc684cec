/*
 * mem_read_bw.c - measures memory-read bandwidth the way bench/bench_quantize.sh needs it: T
 * threads each stream a disjoint part of a 1 GiB buffer (far beyond the caches), best of five
 * passes. Prints "threads GB/s" lines; the quantize benchmark divides its throughput by these.
 *
 * usage: mem_read_bw [MAX_THREADS]   (default: all cores)
 */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const size_t bytes = (size_t)1 << 30, n = bytes / sizeof(uint64_t);
    int maxt = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    if (maxt < 1) maxt = 1;
    uint64_t *buf = aligned_alloc(64, bytes);
    if (!buf) return 1;
#pragma omp parallel for num_threads(maxt) schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = i * 0x9E3779B97F4A7C15ull; /* first touch, no zero pages */
    volatile uint64_t sink = 0;
    for (int t = 1; t <= maxt; t++) {
        double best = 1e30;
        for (int pass = 0; pass < 5; pass++) {
            uint64_t acc = 0;
            double t0 = now();
#pragma omp parallel for num_threads(t) schedule(static) reduction(^ : acc)
            for (size_t i = 0; i < n; i += 8) /* 8 independent streams per cache line */
                acc ^= buf[i] + buf[i + 1] + buf[i + 2] + buf[i + 3] + buf[i + 4] + buf[i + 5] + buf[i + 6] + buf[i + 7];
            double dt = now() - t0;
            sink ^= acc;
            if (dt < best) best = dt;
        }
        printf("%d %.2f\n", t, (double)bytes / best / 1e9);
    }
    free(buf);
    return (int)(sink & 0); /* keeps the reads */
}
