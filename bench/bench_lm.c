/*
 * bench_lm.c - the Llama runtime (cquanto/lm.h) against the memory-read bandwidth, measured in
 * the same run with the probe every other ratio in BENCHMARKS.md uses (read_bw.h). For each
 * weight configuration (the float weights as stored; int8, int4 and int2 quantize-on-load, EXACT
 * and FAST; W8A8 with static int8 activations) and each thread count (1, all): load, then R times (cq_lm_reset between) a prefill of P
 * pseudo-random token ids (splitmix64, seed 42: bench/bench_lm_torch.py draws the same ids) and
 * D single-token greedy decode steps. Reports medians over the R repetitions: prefill and decode
 * tokens/s, the bytes the matmuls stream per token (cq_lm_info.weight_bytes), the decode weight
 * stream in GB/s (weight_bytes x decode tokens/s) and that as a share of the read bandwidth at
 * the same thread count. A benchmark, not a test: figures depend on the machine and its load.
 *
 * usage: bench_lm --model DIR [--prompt P] [--decode D] [--reps R] [--threads T] [--retry K]
 *                 [--quiet-wait S] [--head Q] [--only LIST]
 *   --model DIR   a Hugging Face Llama/Mistral/Qwen2 folder. bench/bench_lm.sh generates a
 *                 synthetic one with build/release/bench/gen_synth_ckpt and runs this on it.
 *                 Without --model the program prints this note and exits 0 (`make bench` runs
 *                 every bench_* program bare; the script is what runs this one).
 *   --prompt P    prefill length (default 64)        --decode D   decode steps (default 32)
 *   --reps R      repetitions, median (default 5)    --threads T  the "all" count (default: CPUs)
 *   --retry K     time a row up to K more times while other processes kept more than 0.2 CPUs
 *                 busy during it (the "others' CPUs" column), keeping the quietest (default 0)
 *   --quiet-wait S  before each timing, wait up to S seconds for the others' CPUs to drop to 0.2
 *                 (default 0: no wait)
 *   --head Q      in the quantized rows, quantize the output head too (int8, int4 ...; default:
 *                 as stored, as optimum-quanto does; llama.cpp quantizes its output tensor)
 *   --only LIST   comma-separated subset of float,int8-exact,int4-exact,int2-exact,int8-fast,
 *                 int4-fast,int2-fast,w8a8
 */
#include "read_bw.h"

#include "cquanto/lm.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define BW_BYTES ((size_t)2 << 30)
#define BUSY 0.2 /* others' CPUs above which --retry times a row again (and --quiet-wait waits) */

static double g_quiet_wait = 0; /* --quiet-wait */
static cq_qtype g_head = CQ_QNONE; /* --head: the output head's qtype in the quantized rows */

typedef struct config {
    const char *name;
    cq_qtype weights;
    cq_matmul_mode mode;
    cq_qtype activations; /* W8A8: static int8 activations (scale 1: the speed does not depend on it) */
} config;

static const config CONFIGS[] = {
    {"float", CQ_QNONE, CQ_MATMUL_EXACT, CQ_QNONE},      {"int8-exact", CQ_QINT8, CQ_MATMUL_EXACT, CQ_QNONE},
    {"int4-exact", CQ_QINT4, CQ_MATMUL_EXACT, CQ_QNONE}, {"int2-exact", CQ_QINT2, CQ_MATMUL_EXACT, CQ_QNONE},
    {"int8-fast", CQ_QINT8, CQ_MATMUL_FAST, CQ_QNONE},   {"int4-fast", CQ_QINT4, CQ_MATMUL_FAST, CQ_QNONE},
    {"int2-fast", CQ_QINT2, CQ_MATMUL_FAST, CQ_QNONE},   {"w8a8", CQ_QINT8, CQ_MATMUL_EXACT, CQ_QINT8},
};

/* Resident memory of this process now, in bytes (/proc/self/statm). */
static double resident_bytes(void) {
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* CPU-seconds the whole machine has been busy (user, nice, system, irq, softirq, steal in
 * /proc/stat) and this process's own (getrusage): their difference over a measurement is what
 * other processes (or the hypervisor) took, reported so that a row timed on a busy machine shows. */
static double machine_busy_s(void) {
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (n != 8) return 0;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* Before a timing: waits (up to max_s seconds, in 0.5 s looks) until other processes keep at
 * most BUSY CPUs busy. */
static void wait_quiet(double max_s) {
    for (double waited = 0; waited < max_s; waited += 0.5) {
        double b0 = machine_busy_s(), s0 = self_cpu_s();
        nanosleep(&(struct timespec){0, 500000000L}, NULL);
        if ((machine_busy_s() - b0 - (self_cpu_s() - s0)) / 0.5 <= BUSY) return;
    }
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int usage(void) {
    fprintf(stderr, "usage: bench_lm --model DIR [--prompt P] [--decode D] [--reps R] [--threads T] [--retry K] "
                    "[--quiet-wait S] [--head Q] [--only LIST]\n");
    return 2;
}

static bool selected(const char *only, const char *name) {
    if (!only) return true;
    size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
        if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return true;
    return false;
}

typedef struct result {
    double prefill_tps, decode_tps, load_s, rss;
    double others; /* CPUs other processes kept busy on average while the repetitions ran */
    cq_lm_info info;
} result;

/* One configuration at one thread count: load, R x (reset, prefill, D decode steps). */
static int run_one(const char *model, const config *c, int threads, int64_t P, int64_t D, int reps, result *res) {
    cq_set_num_threads(threads); /* before the load: the attention scratch is sized for it */
    cq_lm_opts o = cq_lm_default_opts();
    o.mode = c->mode;
    o.weights = c->weights;
    o.activations = c->activations;
    if (c->weights != CQ_QNONE) o.head = g_head;
    o.context = P + D;
    o.batch = P; /* the whole prompt in one pass: the GEMM is what prefill measures */
    cq_err err = {0};
    cq_lm *lm = NULL;
    double t0 = now_s();
    if (cq_lm_load(model, &o, &lm, &err)) {
        fprintf(stderr, "bench_lm: %s (%s): %s\n", model, c->name, err.msg);
        return 1;
    }
    res->load_s = now_s() - t0;
    res->rss = resident_bytes(); /* the repacked weights, the KV cache, the arena, the mapped pages kept */
    cq_lm_get_info(lm, &res->info);
    int64_t V = res->info.vocab;
    int32_t *ids = malloc((size_t)P * sizeof *ids);
    /* room for all P rows, whatever the head is asked for */
    float *logits = malloc((size_t)P * (size_t)V * sizeof *logits);
    double tp[15], td[15];
    int rc = 0;
    if (!ids || !logits) {
        fprintf(stderr, "bench_lm: out of memory\n");
        rc = 1;
    }
    uint64_t seed = 42;
    for (int64_t i = 0; !rc && i < P; i++) ids[i] = (int32_t)(splitmix64(&seed) % (uint64_t)V);
    wait_quiet(g_quiet_wait);
    double busy0 = machine_busy_s(), self0 = self_cpu_s(), w0 = now_s();
    for (int r = 0; !rc && r < reps; r++) {
        cq_lm_reset(lm);
        double a = now_s();
        cq_status st = cq_lm_forward(lm, ids, P, logits, P - 1, &err); /* the last token's logits */
        double b = now_s();
        for (int64_t s = 0; !st && s < D; s++) {
            int32_t next = 0; /* greedy: the lowest id among the maxima */
            for (int64_t v = 1; v < V; v++)
                if (logits[v] > logits[next]) next = (int32_t)v;
            st = cq_lm_forward(lm, &next, 1, logits, 0, &err);
        }
        double e = now_s();
        if (st) {
            fprintf(stderr, "bench_lm: %s (%s): forward: %s\n", model, c->name, err.msg);
            rc = 1;
        }
        tp[r] = b - a;
        td[r] = e - b;
    }
    double wall = now_s() - w0, others = (machine_busy_s() - busy0 - (self_cpu_s() - self0)) / wall;
    res->others = others > 0 ? others : 0;
    if (!rc) {
        res->prefill_tps = (double)P / median(tp, reps);
        res->decode_tps = (double)D / median(td, reps);
    }
    free(ids);
    free(logits);
    cq_lm_free(lm);
    return rc;
}

int main(int argc, char **argv) {
    const char *model = NULL, *only = NULL;
    int64_t P = 64, D = 32;
    int reps = 5, retry = 0, maxt = omp_get_num_procs();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        if (!strcmp(a, "--model")) model = argv[++i];
        else if (!strcmp(a, "--only")) only = argv[++i];
        else if (!strcmp(a, "--prompt")) P = atoll(argv[++i]);
        else if (!strcmp(a, "--decode")) D = atoll(argv[++i]);
        else if (!strcmp(a, "--reps")) reps = atoi(argv[++i]);
        else if (!strcmp(a, "--threads")) maxt = atoi(argv[++i]);
        else if (!strcmp(a, "--retry")) retry = atoi(argv[++i]);
        else if (!strcmp(a, "--quiet-wait")) g_quiet_wait = atof(argv[++i]);
        else if (!strcmp(a, "--head")) {
            if (cq_qtype_parse(argv[++i], &g_head, NULL)) return usage();
        }
        else return usage();
    }
    if (!model) {
        printf("bench_lm: no --model; bench/bench_lm.sh generates a synthetic Llama folder "
               "(bench/gen_synth_ckpt) and runs bench_lm and the transformers peer on it.\n");
        return 0;
    }
    if (P < 1 || D < 1 || reps < 1 || reps > 15 || maxt < 1 || retry < 0) {
        fprintf(stderr, "bench_lm: --prompt and --decode must be >= 1, --reps 1..15, --threads >= 1, --retry >= 0\n");
        return 2;
    }
    const cq_cpu_info *ci = cq_cpu_get_info();
    double load[3] = {-1, -1, -1};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
        fclose(f);
    }
    int tcount = maxt > 1 ? 2 : 1, tlist[2] = {1, maxt};
    printf("## cquanto Llama runtime: %s\n\n", model);
    printf("CPU: %s (%s), %d logical CPUs; kernels: %s; AMX %s, AVX512-BF16 %s, AVX512-FP16 %s; "
           "load average at start %.2f %.2f %.2f\n",
           ci->model, ci->arch, omp_get_num_procs(), cq_isa_name(cq_isa_active()), ci->amx_tile ? "yes" : "no",
           ci->avx512_bf16 ? "yes" : "no", ci->avx512_fp16 ? "yes" : "no", load[0], load[1], load[2]);

    double bw[2] = {0, 0};
    uint8_t *buf = cq_aligned_alloc(BW_BYTES);
    if (!buf) {
        fprintf(stderr, "bench_lm: out of memory (%zu bytes for the bandwidth probe)\n", BW_BYTES);
        return 1;
    }
    memset(buf, 1, BW_BYTES); /* first touch, so no page faults are timed */
    double bw_others[2] = {0, 0};
    for (int t = 0; t < tcount; t++)
        for (int k = 0; k <= retry; k++) { /* as the rows: again while others were busy, keep the quietest */
            wait_quiet(g_quiet_wait);
            double busy0 = machine_busy_s(), self0 = self_cpu_s(), w0 = now_s();
            double g = bench_read_bandwidth(buf, BW_BYTES, tlist[t], 7);
            double o = (machine_busy_s() - busy0 - (self_cpu_s() - self0)) / (now_s() - w0);
            if (o < 0) o = 0;
            if (k == 0 || o < bw_others[t]) bw[t] = g, bw_others[t] = o;
            if (bw_others[t] <= BUSY) break;
        }
    cq_aligned_free(buf);
    printf("Memory read bandwidth (read_bw.h, 2 GiB stream, median of 7): %.2f GB/s at 1 thread", bw[0]);
    if (tcount > 1) printf(", %.2f GB/s at %d threads", bw[1], maxt);
    printf(" (others' CPUs %.2f", bw_others[0]);
    if (tcount > 1) printf(", %.2f", bw_others[1]);
    printf(").\n<!-- read_bw_gbs");
    for (int t = 0; t < tcount; t++) printf(" %d=%.3f", tlist[t], bw[t]);
    printf(" -->\n\n");
    printf("Prefill %lld random token ids, then %lld greedy single-token decode steps; median of %d "
           "repetitions (cq_lm_reset between). \"others' CPUs\": CPUs that other processes kept busy "
           "on average during the repetitions (/proc/stat less this process); rows well above 0 were "
           "timed on a busy machine.\n\n",
           (long long)P, (long long)D, reps);
    printf("| weights | matmul | threads | load s | RSS MB | prefill tok/s | decode tok/s | weight MB/token | "
           "decode weight GB/s | %% of read BW | others' CPUs |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    int status = 0;
    for (size_t c = 0; c < sizeof CONFIGS / sizeof CONFIGS[0]; c++) {
        if (!selected(only, CONFIGS[c].name)) continue;
        for (int t = 0; t < tcount; t++) {
            result r, again;
            if (run_one(model, &CONFIGS[c], tlist[t], P, D, reps, &r)) {
                status = 1;
                continue;
            }
            for (int k = 0; k < retry && r.others > BUSY; k++) /* keep the quietest timing */
                if (!run_one(model, &CONFIGS[c], tlist[t], P, D, reps, &again) && again.others < r.others) r = again;
            char wname[48];
            if (r.info.weight_qtype == CQ_QNONE)
                snprintf(wname, sizeof wname, "%s (as stored)", cq_dtype_name(r.info.weight_dtype));
            else
                snprintf(wname, sizeof wname, "%s (%lld Linears)", cq_qtype_name(r.info.weight_qtype),
                         (long long)r.info.quantized);
            double gbs = (double)r.info.weight_bytes * r.decode_tps * 1e-9;
            printf("| %s | %s | %d | %.2f | %.0f | %.1f | %.2f | %.1f | %.2f | %.0f%% | %.2f |\n", wname,
                   CONFIGS[c].activations != CQ_QNONE ? "W8A8 (int8 x int8)"
                   : r.info.weight_qtype == CQ_QNONE   ? "-"
                   : CONFIGS[c].mode == CQ_MATMUL_FAST ? "fast"
                                                       : "exact",
                   tlist[t], r.load_s, r.rss * 1e-6, r.prefill_tps, r.decode_tps, (double)r.info.weight_bytes * 1e-6, gbs,
                   100.0 * gbs / bw[t], r.others);
            fflush(stdout);
        }
    }
    return status;
}
