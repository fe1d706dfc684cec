/*
 * cpu.c - CPU feature detection, done once per process: cpuid plus XGETBV (the OS must save the
 * YMM / ZMM / tile state before a feature counts) and, for AMX, Linux's per-process permission
 * request; getauxval on AArch64. It decides which ISA levels can run; the choice of kernels
 * is dispatch.c's. Nothing here is compiled with ISA flags.
 */
#include "kernels/kernels_internal.h"

#include <pthread.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

static cq_cpu_info g_info;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* Linux keeps AMX tile data disabled until a process asks for it (arch_prctl
 * ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); the grant covers every thread. */
static bool request_amx_permission(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
#else
    return false;
#endif
}

static void detect_x86(cq_cpu_info *c) {
    unsigned a, b, cx, d;
    snprintf(c->arch, sizeof c->arch, "x86_64");
    if (!__get_cpuid(0, &a, &b, &cx, &d)) return;
    unsigned max_leaf = a;
    memcpy(c->vendor, &b, 4);
    memcpy(c->vendor + 4, &d, 4);
    memcpy(c->vendor + 8, &cx, 4);
    c->vendor[12] = 0;

    __cpuid(1, a, b, cx, d);
    bool osxsave = cx & (1u << 27);
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool os_ymm = (xcr0 & 0x6) == 0x6;            /* SSE + AVX state */
    bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0; /* opmask, ZMM_Hi256, Hi16_ZMM */
    bool os_amx = (xcr0 & 0x60000) == 0x60000;     /* XTILECFG, XTILEDATA */
    c->sse4_2 = cx & (1u << 20);
    c->avx = os_ymm && (cx & (1u << 28));
    c->fma = c->avx && (cx & (1u << 12));
    c->f16c = c->avx && (cx & (1u << 29));

    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, cx, d);
        c->avx2 = c->avx && (b & (1u << 5));
        c->avx512f = os_zmm && (b & (1u << 16));
        c->avx512dq = c->avx512f && (b & (1u << 17));
        c->avx512bw = c->avx512f && (b & (1u << 30));
        c->avx512vl = c->avx512f && (b & (1u << 31));
        c->avx512_vnni = c->avx512f && (cx & (1u << 11));
        c->avx512_fp16 = c->avx512f && (d & (1u << 23));
        c->amx_bf16 = os_amx && (d & (1u << 22));
        c->amx_tile = os_amx && (d & (1u << 24));
        c->amx_int8 = os_amx && (d & (1u << 25));
        unsigned sub_max = a;
        if (sub_max >= 1) {
            __cpuid_count(7, 1, a, b, cx, d);
            c->avx_vnni = c->avx && (a & (1u << 4));
            c->avx512_bf16 = c->avx512f && (a & (1u << 5));
        }
    }
    if (c->amx_tile && !request_amx_permission()) c->amx_tile = c->amx_int8 = c->amx_bf16 = false;

    __cpuid(0x80000000, a, b, cx, d);
    if (a >= 0x80000004) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++) __cpuid(0x80000002 + i, r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]);
        char brand[49];
        memcpy(brand, r, 48);
        brand[48] = 0;
        const char *p = brand;
        while (*p == ' ') p++;
        snprintf(c->model, sizeof c->model, "%s", p);
    }
}
#endif

#if defined(__aarch64__)
static void detect_arm(cq_cpu_info *c) {
    snprintf(c->arch, sizeof c->arch, "aarch64");
    c->neon = true; /* Advanced SIMD is mandatory in AArch64 */
#if defined(__linux__)
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    c->fp16 = (hw & (1ul << 10)) != 0;   /* HWCAP_ASIMDHP */
    c->dotprod = (hw & (1ul << 20)) != 0; /* HWCAP_ASIMDDP */
    c->i8mm = (hw2 & (1ul << 13)) != 0;   /* HWCAP2_I8MM */
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "CPU part", 8)) {
                char *v = strchr(line, ':');
                if (v) snprintf(c->model, sizeof c->model, "arm cpu part%s", v + 1);
                c->model[strcspn(c->model, "\n")] = 0;
                break;
            }
        }
        fclose(f);
    }
#endif
}
#endif

static void detect(void) {
#if defined(__x86_64__)
    detect_x86(&g_info);
#elif defined(__aarch64__)
    detect_arm(&g_info);
#else
    snprintf(g_info.arch, sizeof g_info.arch, "generic");
#endif
}

const cq_cpu_info *cq_cpu_get_info(void) {
    pthread_once(&g_once, detect);
    return &g_info;
}

bool cq__cpu_level_ok(cq_isa isa) {
    const cq_cpu_info *c = cq_cpu_get_info();
    switch (isa) {
    case CQ_ISA_REF: return true;
#if defined(__x86_64__)
    case CQ_ISA_AVX2: return c->avx2 && c->fma && c->f16c;
    case CQ_ISA_AVX512:
        return cq__cpu_level_ok(CQ_ISA_AVX2) && c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq &&
               c->avx512_vnni;
    case CQ_ISA_AMX: return cq__cpu_level_ok(CQ_ISA_AVX512) && c->amx_tile && c->amx_int8;
#endif
#if defined(__aarch64__)
    case CQ_ISA_NEON: return c->neon && c->dotprod;
#endif
    default: (void)c; return false;
    }
}

bool cq__cpu_has(unsigned needs) {
    const cq_cpu_info *c = cq_cpu_get_info();
    if ((needs & CQ__NEED_AVX512_BF16) && !c->avx512_bf16) return false;
    return (needs & ~CQ__NEED_AVX512_BF16) == 0;
}
