/*
 * bench_kernels.c - kernel benchmarks against the machine's limits and against peers, in one
 * run on one machine: memory-read bandwidth and int8 dot-product peaks measured here, then
 * decode (M = 1) matmuls streaming weights from DRAM (each pass rotates through distinct
 * copies totalling >= 2 GiB, 4x a 480 MiB last-level cache) against OpenBLAS sgemv, and
 * prefill (M = 512) against oneDNN's int8 matmul and OpenBLAS sgemm. Medians of repeated
 * runs, single thread and all threads. Not part of `make test`; run by bench/run_all.sh.
 * Usage: bench_kernels [--quick] [--only STR] [--shape N K]
 *   --quick      fewer shapes and repeats, for a smoke run
 *   --only STR   only the decode rows whose weight kind contains STR (and no prefill)
 *   --shape N K  only this decode shape
 */
#include "cquanto.h"

#include <cblas.h>
#include "read_bw.h"
#include <immintrin.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_quick;
static int g_reps = 7;
static const char *g_only;        /* --only STR: decode kinds whose name contains STR, no prefill */
static int64_t g_shape[2];        /* --shape N K: that decode shape only */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void *xalloc(size_t n) {
    void *p = cq_aligned_alloc(n);
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static uint64_t g_rng = 88172645463325252ull;
static uint32_t rnd32(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rndf(void) { return (float)(int32_t)rnd32() * 0x1p-31f; }

static void set_threads(int n) {
    cq_set_num_threads(n);
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

/* ---- machine limits --------------------------------------------------------------------- */

#define DRAM_BYTES ((size_t)2 << 30) /* per pass: >= 4x the 480 MiB LLC this VM reports */

static volatile uint64_t g_sink;

/* Read bandwidth in GB/s with `threads` threads streaming disjoint parts of the array. */
static double read_bandwidth(const uint8_t *buf, size_t n, int threads) {
    return bench_read_bandwidth(buf, n, threads, g_quick ? 3 : 7);
}

/* In-register vpdpbusd chains: 12 independent accumulators per thread (named, so they stay in
 * registers without relying on loop unrolling). GOP/s counts a multiply-add as 2 ops. */
__attribute__((target("avx512f,avx512vnni"))) static int32_t vnni_loop(long iters) {
    __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    __m512i c0 = _mm512_set1_epi32(0), c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2), c3 = _mm512_set1_epi32(3);
    __m512i c4 = _mm512_set1_epi32(4), c5 = _mm512_set1_epi32(5), c6 = _mm512_set1_epi32(6), c7 = _mm512_set1_epi32(7);
    __m512i c8 = _mm512_set1_epi32(8), c9 = _mm512_set1_epi32(9), c10 = _mm512_set1_epi32(10), c11 = _mm512_set1_epi32(11);
    for (long it = 0; it < iters; it++) {
        c0 = _mm512_dpbusd_epi32(c0, a, b), c1 = _mm512_dpbusd_epi32(c1, a, b), c2 = _mm512_dpbusd_epi32(c2, a, b);
        c3 = _mm512_dpbusd_epi32(c3, a, b), c4 = _mm512_dpbusd_epi32(c4, a, b), c5 = _mm512_dpbusd_epi32(c5, a, b);
        c6 = _mm512_dpbusd_epi32(c6, a, b), c7 = _mm512_dpbusd_epi32(c7, a, b), c8 = _mm512_dpbusd_epi32(c8, a, b);
        c9 = _mm512_dpbusd_epi32(c9, a, b), c10 = _mm512_dpbusd_epi32(c10, a, b), c11 = _mm512_dpbusd_epi32(c11, a, b);
        __asm__ volatile("" : "+v"(a), "+v"(b)); /* keep the operands opaque so nothing folds */
    }
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                 _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    return _mm512_reduce_add_epi32(s);
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

/* AMX: 4 independent 16x16 int32 accumulators fed by two A and two B tiles. */
__attribute__((target("amx-tile,amx-int8"))) static void amx_loop(long iters) {
    amx_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) cfg.colsb[i] = 64, cfg.rows[i] = 16;
    _tile_loadconfig(&cfg);
    static __attribute__((aligned(64))) int8_t buf[1024];
    for (int i = 4; i < 8; i++) {
        if (i == 4) _tile_loadd(4, buf, 64);
        if (i == 5) _tile_loadd(5, buf, 64);
        if (i == 6) _tile_loadd(6, buf, 64);
        if (i == 7) _tile_loadd(7, buf, 64);
    }
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (long it = 0; it < iters; it++) {
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        _tile_dpbusd(2, 5, 6);
        _tile_dpbusd(3, 5, 7);
    }
    static __attribute__((aligned(64))) int32_t out[256];
    _tile_stored(0, out, 64);
    _tile_release();
    g_sink += (uint64_t)out[0];
}

static double int8_peak(int threads, int amx) {
    long iters = g_quick ? 2000000 : 10000000;
    if (amx) iters /= 16;
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now();
#pragma omp parallel num_threads(threads)
        {
            if (amx) amx_loop(iters);
            else g_sink += (uint64_t)vnni_loop(iters);
        }
        t[r] = now() - t0;
    }
    /* VNNI: 12 x 64 MACs per iteration; AMX: 4 x 16 x 16 x 64 MACs. */
    double macs = amx ? (double)iters * 4 * 16 * 16 * 64 : (double)iters * 12 * 64;
    return 2.0 * macs * threads / median(t, 5) * 1e-9;
}

/* ---- decode ----------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    cq_qtype q;
    int64_t gs;
    cq_matmul_mode mode;
    cq_dtype xt;
} wkind;

static const wkind k_kinds[] = {
    {"int8 W8A8", CQ_QINT8, 0, CQ_MATMUL_EXACT, CQ_I8},
    {"int8 W8A16 exact", CQ_QINT8, 0, CQ_MATMUL_EXACT, CQ_F32},
    {"int8 W8A16 fast", CQ_QINT8, 0, CQ_MATMUL_FAST, CQ_F32},
    {"int4 g128 exact", CQ_QINT4, 128, CQ_MATMUL_EXACT, CQ_F32},
    {"int4 g128 fast", CQ_QINT4, 128, CQ_MATMUL_FAST, CQ_F32},
    {"int2 g64 exact", CQ_QINT2, 64, CQ_MATMUL_EXACT, CQ_F32},
    {"int2 g64 fast", CQ_QINT2, 64, CQ_MATMUL_FAST, CQ_F32},
    {"e4m3 exact", CQ_QFLOAT8_E4M3FN, 0, CQ_MATMUL_EXACT, CQ_F32},
};

/* One random weight of kind k ([n, k] with bf16 scales, as in a bf16 LLM checkpoint). */
static cq_mm_weight *make_weight(const wkind *wk, int64_t n, int64_t k) {
    int bits = wk->q == CQ_QINT4 ? 4 : wk->q == CQ_QINT2 ? 2 : 8;
    int64_t gs = bits == 8 ? k : wk->gs, ns = n * (k / gs);
    uint8_t *codes = xalloc((size_t)(n * k));
    for (int64_t i = 0; i < n * k; i++) {
        uint8_t b = (uint8_t)rnd32();
        if (bits < 8) b &= (uint8_t)((1 << bits) - 1);
        else if (wk->q == CQ_QFLOAT8_E4M3FN && (b & 0x7f) == 0x7f) b = 0x7e;
        codes[i] = b;
    }
    uint16_t *scale = xalloc((size_t)ns * 2), *shift = xalloc((size_t)ns * 2);
    for (int64_t i = 0; i < ns; i++) {
        scale[i] = cq_f32_to_bf16(0.01f + 0.01f * fabsf(rndf()));
        shift[i] = cq_f32_to_bf16(0.05f * rndf());
    }
    cq_mm_weight_src src = {wk->q, n, k, bits == 8 ? 0 : gs, codes, true, scale, bits < 8 ? shift : NULL, CQ_BF16, CQ_DTYPE_INVALID};
    cq_mm_weight *w = NULL;
    cq_err err = {0};
    if (cq_mm_weight_new(&w, &src, &err) != CQ_OK) {
        fprintf(stderr, "bench_kernels: %s\n", err.msg);
        exit(1);
    }
    cq_aligned_free(codes);
    cq_aligned_free(scale);
    cq_aligned_free(shift);
    return w;
}

typedef struct {
    double sec, gbs;
} timing;

/* Median seconds per matmul over passes through `nw` distinct weights. */
static timing time_decode(cq_mm_weight **ws, int nw, const void *x, cq_dtype xt, float *y, cq_matmul_mode mode,
                          size_t wbytes) {
    cq_mm_weight_info info;
    cq_mm_weight_get_info(ws[0], &info);
    cq_matmul_opts o = cq_matmul_default_opts();
    o.mode = mode;
    o.x_scale = 0.01f;
    o.work_size = cq_matmul_work_size(ws[0], 1, xt, mode);
    o.work = o.work_size ? xalloc(o.work_size) : NULL;
    double t[16];
    /* exact modes are compute-bound and slower: fewer passes keep the run under its limit */
    int reps = g_quick ? 3 : mode == CQ_MATMUL_EXACT && xt != CQ_I8 ? 3 : 5;
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < nw; i++)
            cq_matmul(ws[i], 1, x, xt, info.in_features, y, CQ_F32, info.out_features, &o, NULL);
        if (r >= 0) t[r] = (now() - t0) / nw;
    }
    cq_aligned_free(o.work);
    timing res;
    res.sec = median(t, reps);
    res.gbs = (double)wbytes / res.sec * 1e-9;
    return res;
}

static timing time_sgemv(float **ws, int nw, int64_t n, int64_t k, const float *x, float *y) {
    double t[16];
    int reps = g_quick ? 3 : 5;
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        for (int i = 0; i < nw; i++) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)k, 1.0f, ws[i], (int)k, x, 1, 0.0f, y, 1);
        if (r >= 0) t[r] = (now() - t0) / nw;
    }
    timing res;
    res.sec = median(t, reps);
    res.gbs = (double)(n * k * 4) / res.sec * 1e-9;
    return res;
}

/* Relative RMS difference of fast against exact mode on one weight. */
static double fast_error(cq_mm_weight *w, int64_t n, int64_t k, const float *x) {
    float *ye = xalloc((size_t)n * 4), *yf = xalloc((size_t)n * 4);
    cq_matmul_opts o = cq_matmul_default_opts();
    o.work_size = cq_matmul_work_size(w, 1, CQ_F32, CQ_MATMUL_EXACT);
    size_t wf = cq_matmul_work_size(w, 1, CQ_F32, CQ_MATMUL_FAST);
    if (wf > o.work_size) o.work_size = wf;
    o.work = o.work_size ? xalloc(o.work_size) : NULL;
    cq_matmul(w, 1, x, CQ_F32, k, ye, CQ_F32, n, &o, NULL);
    o.mode = CQ_MATMUL_FAST;
    cq_matmul(w, 1, x, CQ_F32, k, yf, CQ_F32, n, &o, NULL);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += (double)(ye[i] - yf[i]) * (ye[i] - yf[i]);
        den += (double)ye[i] * ye[i];
    }
    cq_aligned_free(o.work);
    cq_aligned_free(ye);
    cq_aligned_free(yf);
    return sqrt(num / den);
}

static void bench_decode(double bw[3], int maxt) {
    int64_t shapes[3][2] = {{4096, 4096}, {14336, 4096}, {4096, 14336}};
    int nshapes = g_quick ? 1 : 3;
    if (g_shape[0] > 0) shapes[0][0] = g_shape[0], shapes[0][1] = g_shape[1], nshapes = 1;
    printf("\n## Decode (M = 1), weights streamed from DRAM (>= %.1f GiB of distinct weights per pass)\n\n",
           (double)DRAM_BYTES / (1 << 30));
    printf("| N x K | weights | threads | us/matmul | weight GB/s | %% of read BW | vs sgemv | fast-mode rel. error |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < nshapes; s++) {
        int64_t n = shapes[s][0], k = shapes[s][1];
        float *x = xalloc((size_t)k * 4), *y = xalloc((size_t)n * 4);
        int8_t *xi = xalloc((size_t)k);
        for (int64_t i = 0; i < k; i++) x[i] = rndf() + rndf() + rndf(), xi[i] = (int8_t)rnd32();
        /* baseline: sgemv on f32 weights */
        size_t fbytes = (size_t)(n * k) * 4;
        int nf = (int)((DRAM_BYTES + fbytes - 1) / fbytes);
        float **fw = xalloc(sizeof(float *) * (size_t)nf);
        for (int i = 0; i < nf; i++) {
            fw[i] = xalloc(fbytes);
            if (i == 0)
                for (int64_t j = 0; j < n * k; j++) fw[0][j] = 0.02f * rndf();
            else memcpy(fw[i], fw[0], fbytes);
        }
        timing sg[3];
        for (int t = 1; t <= maxt; t++) {
            set_threads(t);
            sg[t] = time_sgemv(fw, nf, n, k, x, y);
            printf("| %lldx%lld | f32 (OpenBLAS sgemv) | %d | %.0f | %.1f | %.0f%% | 1.00x | |\n", (long long)n,
                   (long long)k, t, sg[t].sec * 1e6, sg[t].gbs, 100 * sg[t].gbs / bw[t]);
        }
        for (int i = 0; i < nf; i++) cq_aligned_free(fw[i]);
        cq_aligned_free(fw);
        fflush(stdout);

        for (size_t kd = 0; kd < sizeof k_kinds / sizeof k_kinds[0]; kd++) {
            const wkind *wk = &k_kinds[kd];
            if (g_only && !strstr(wk->name, g_only)) continue;
            cq_mm_weight *w0 = make_weight(wk, n, k);
            cq_mm_weight_info info;
            cq_mm_weight_get_info(w0, &info);
            int nw = (int)((DRAM_BYTES + info.nbytes - 1) / info.nbytes);
            cq_mm_weight **ws = xalloc(sizeof *ws * (size_t)nw);
            ws[0] = w0;
            for (int i = 1; i < nw; i++)
                if (cq_mm_weight_clone(w0, &ws[i], NULL) != CQ_OK) exit(1);
            char err[32] = "";
            if (wk->mode == CQ_MATMUL_FAST) snprintf(err, sizeof err, "%.2e", fast_error(w0, n, k, x));
            for (int t = 1; t <= maxt; t++) {
                set_threads(t);
                timing r = time_decode(ws, nw, wk->xt == CQ_I8 ? (const void *)xi : (const void *)x, wk->xt, y,
                                       wk->mode, info.nbytes);
                printf("| %lldx%lld | %s | %d | %.0f | %.1f | %.0f%% | %.2fx | %s |\n", (long long)n, (long long)k,
                       wk->name, t, r.sec * 1e6, r.gbs, 100 * r.gbs / bw[t], sg[t].sec / r.sec, err);
                fflush(stdout);
            }
            for (int i = 0; i < nw; i++) cq_mm_weight_free(ws[i]);
            cq_aligned_free(ws);
        }
        cq_aligned_free(x);
        cq_aligned_free(xi);
        cq_aligned_free(y);
    }
}

/* ---- prefill ------------------------------------------------------------------------------ */

#define DN(call)                                                                            \
    do {                                                                                    \
        dnnl_status_t s_ = (call);                                                          \
        if (s_ != dnnl_success) {                                                           \
            fprintf(stderr, "bench_kernels: oneDNN error %d at line %d\n", (int)s_, __LINE__); \
            return -1;                                                                      \
        }                                                                                   \
    } while (0)

/* oneDNN int8 matmul s8 x s8 -> s32 (weights in oneDNN's preferred layout, packed outside
 * the timing). Returns seconds per matmul, or -1 on failure. */
static double time_onednn(int64_t M, int64_t N, int64_t K, const char **impl_out) {
    static char impl[128];
    dnnl_engine_t eng;
    dnnl_stream_t st;
    DN(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    DN(dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_s8, dnnl_ab));
    DN(dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_s8, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_s32, dnnl_ab));
    dnnl_matmul_desc_t md;
    DN(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c));
    dnnl_primitive_desc_t pd;
    DN(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    snprintf(impl, sizeof impl, "%s", name ? name : "?");
    *impl_out = impl;
    dnnl_primitive_t p;
    DN(dnnl_primitive_create(&p, pd));
    const dnnl_memory_desc_t *bq = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t am, bm, cm;
    DN(dnnl_memory_create(&am, &a, eng, DNNL_MEMORY_ALLOCATE));
    DN(dnnl_memory_create(&bm, bq, eng, DNNL_MEMORY_ALLOCATE));
    DN(dnnl_memory_create(&cm, &c, eng, DNNL_MEMORY_ALLOCATE));
    void *ptr;
    dnnl_memory_get_data_handle(am, &ptr);
    for (int64_t i = 0; i < M * K; i++) ((int8_t *)ptr)[i] = (int8_t)rnd32();
    dnnl_memory_get_data_handle(bm, &ptr);
    memset(ptr, 3, dnnl_memory_desc_get_size(bq));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    double t[16];
    int reps = g_quick ? 3 : g_reps;
    for (int r = -2; r < reps; r++) {
        double t0 = now();
        DN(dnnl_primitive_execute(p, st, 3, args));
        DN(dnnl_stream_wait(st));
        if (r >= 0) t[r] = now() - t0;
    }
    dnnl_primitive_destroy(p);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(am);
    dnnl_memory_destroy(bm);
    dnnl_memory_destroy(cm);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    return median(t, reps);
}

static double time_sgemm(int64_t M, int64_t N, int64_t K) {
    float *x = xalloc((size_t)(M * K) * 4), *w = xalloc((size_t)(N * K) * 4), *y = xalloc((size_t)(M * N) * 4);
    for (int64_t i = 0; i < M * K; i++) x[i] = rndf();
    for (int64_t i = 0; i < N * K; i++) w[i] = rndf();
    double t[16];
    int reps = g_quick ? 3 : g_reps;
    for (int r = -2; r < reps; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, x, (int)K, w, (int)K, 0.0f, y,
                    (int)N);
        if (r >= 0) t[r] = now() - t0;
    }
    cq_aligned_free(x);
    cq_aligned_free(w);
    cq_aligned_free(y);
    return median(t, reps);
}

static double time_ours(const wkind *wk, int64_t M, int64_t N, int64_t K) {
    cq_mm_weight *w = make_weight(wk, N, K);
    void *x;
    if (wk->xt == CQ_I8) {
        x = xalloc((size_t)(M * K));
        for (int64_t i = 0; i < M * K; i++) ((int8_t *)x)[i] = (int8_t)rnd32();
    } else {
        x = xalloc((size_t)(M * K) * 4);
        for (int64_t i = 0; i < M * K; i++) ((float *)x)[i] = rndf();
    }
    float *y = xalloc((size_t)(M * N) * 4);
    cq_matmul_opts o = cq_matmul_default_opts();
    o.mode = wk->mode;
    o.x_scale = 0.01f;
    o.work_size = cq_matmul_work_size(w, M, wk->xt, wk->mode);
    o.work = o.work_size ? xalloc(o.work_size) : NULL;
    double t[16];
    int reps = g_quick ? 3 : g_reps;
    for (int r = -2; r < reps; r++) {
        double t0 = now();
        cq_matmul(w, M, x, wk->xt, K, y, CQ_F32, N, &o, NULL);
        if (r >= 0) t[r] = now() - t0;
    }
    cq_aligned_free(o.work);
    cq_aligned_free(x);
    cq_aligned_free(y);
    cq_mm_weight_free(w);
    return median(t, reps);
}

/* "x%" of a peak, or `none` when there is no peak (0). */
static void pct_of(char *buf, size_t n, double value, double peak, const char *none) {
    if (peak > 0) snprintf(buf, n, "%.0f%%", 100 * value / peak);
    else snprintf(buf, n, "%s", none);
}

static void bench_prefill(double peak_vnni[3], double peak_amx[3], int maxt) {
    int64_t M = 512, N = 4096, K = 4096;
    double ops = 2.0 * (double)M * (double)N * (double)K;
    printf("\n## Prefill (M = %lld, N = K = %lld), weights cache-resident\n\n", (long long)M, (long long)N);
    printf("| op | threads | ms | GOP/s | %% of VNNI peak | %% of AMX peak | vs oneDNN int8 | vs sgemm |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    const wkind w8a8 = {"cquanto W8A8 (int8 x int8 -> f32)", CQ_QINT8, 0, CQ_MATMUL_EXACT, CQ_I8};
    const wkind w4f = {"cquanto W4 g128 fast (f32 in, f32 out)", CQ_QINT4, 128, CQ_MATMUL_FAST, CQ_F32};
    const wkind w4e = {"cquanto W4 g128 exact (f32 in, f32 out)", CQ_QINT4, 128, CQ_MATMUL_EXACT, CQ_F32};
    const wkind w8f = {"cquanto W8A16 fast (f32 in, f32 out)", CQ_QINT8, 0, CQ_MATMUL_FAST, CQ_F32};
    for (int t = 1; t <= maxt; t++) {
        set_threads(t);
        const char *impl = "?";
        char amx_na[] = "-"; /* no AMX on this CPU: no peak to compare with */
        double tdn = time_onednn(M, N, K, &impl);
        double tsg = time_sgemm(M, N, K);
        char amx[32];
        pct_of(amx, sizeof amx, ops / tdn * 1e-9, peak_amx[t], amx_na);
        printf("| oneDNN %s s8 x s8 -> s32 | %d | %.2f | %.0f | %.0f%% | %s | 1.00x | %.2fx |\n", impl, t, tdn * 1e3,
               ops / tdn * 1e-9, 100 * ops / tdn * 1e-9 / peak_vnni[t], amx, tsg / tdn);
        printf("| OpenBLAS sgemm (f32) | %d | %.2f | %.0f | | | %.2fx | 1.00x |\n", t, tsg * 1e3, ops / tsg * 1e-9,
               tdn / tsg);
        const wkind *ours[] = {&w8a8, &w4f, &w8f, &w4e};
        for (int i = 0; i < 4; i++) {
            double tt = time_ours(ours[i], M, N, K);
            pct_of(amx, sizeof amx, ops / tt * 1e-9, peak_amx[t], amx_na);
            printf("| %s | %d | %.2f | %.0f | %.0f%% | %s | %.2fx | %.2fx |\n", ours[i]->name, t, tt * 1e3,
                   ops / tt * 1e-9, 100 * ops / tt * 1e-9 / peak_vnni[t], amx, tdn / tt, tsg / tt);
            fflush(stdout);
        }
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = argv[++i];
        else if (!strcmp(argv[i], "--shape") && i + 2 < argc) g_shape[0] = atoll(argv[i + 1]), g_shape[1] = atoll(argv[i + 2]), i += 2;
        else {
            fprintf(stderr, "usage: bench_kernels [--quick] [--only STR] [--shape N K]\n");
            return 2;
        }
    }
    const cq_cpu_info *ci = cq_cpu_get_info();
    int maxt = omp_get_num_procs() >= 2 ? 2 : 1;
    double load[3] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(f);
    }
    printf("# cquanto kernel benchmarks\n\n");
    printf("CPU: %s (%s), %d logical CPUs; kernels: %s (best %s); OpenBLAS core %s; load average at start %.2f\n",
           ci->model, ci->arch, omp_get_num_procs(), cq_isa_name(cq_isa_active()), cq_isa_name(cq_isa_best()),
           openblas_get_corename(), load[0]);

    double bw[3] = {0}, pv[3] = {0}, pa[3] = {0};
    uint8_t *buf = xalloc(DRAM_BYTES);
    memset(buf, 1, DRAM_BYTES);
    printf("\n## Machine limits (measured here)\n\n| measure | 1 thread | %d threads |\n|---|---|---|\n", maxt);
    for (int t = 1; t <= maxt; t++) bw[t] = read_bandwidth(buf, DRAM_BYTES, t);
    cq_aligned_free(buf);
    printf("| memory read bandwidth, 2 GiB stream (GB/s) | %.1f | %.1f |\n", bw[1], bw[maxt]);
    if (ci->avx512_vnni) {
        for (int t = 1; t <= maxt; t++) pv[t] = int8_peak(t, 0);
        printf("| int8 peak, in-register vpdpbusd (GOP/s) | %.0f | %.0f |\n", pv[1], pv[maxt]);
    }
    if (ci->amx_int8) {
        for (int t = 1; t <= maxt; t++) pa[t] = int8_peak(t, 1);
        printf("| int8 peak, in-register AMX tdpbusd (GOP/s) | %.0f | %.0f |\n", pa[1], pa[maxt]);
    }
    fflush(stdout);
    if (!g_only) bench_prefill(pv, pa, maxt);
    bench_decode(bw, maxt);
    return 0;
}
