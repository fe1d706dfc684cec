/*
 * mem_read_bw.c - the memory-read bandwidth for bench/bench_quantize.sh, measured exactly as
 * bench_kernels measures it (read_bw.h): T threads stream disjoint parts of a 2 GiB buffer (far
 * beyond the caches) with AVX-512 loads where the CPU has them, median of seven passes. Prints
 * "threads GB/s" lines; the quantize benchmark divides its throughput by these.
 *
 * usage: mem_read_bw [MAX_THREADS]   (default: all cores)
 */
#include "read_bw.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    const size_t bytes = (size_t)2 << 30;
    int maxt = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    if (maxt < 1) maxt = 1;
    uint8_t *buf = cq_aligned_alloc(bytes);
    if (!buf) {
        fprintf(stderr, "mem_read_bw: out of memory (%zu bytes)\n", bytes);
        return 1;
    }
    memset(buf, 1, bytes); /* first touch, so no page faults are timed */
    for (int t = 1; t <= maxt; t++) printf("%d %.2f\n", t, bench_read_bandwidth(buf, bytes, t, 7));
    cq_aligned_free(buf);
    return 0;
}
