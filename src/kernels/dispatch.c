/*
 * dispatch.c - chooses a variant per op. Each ISA level has a table of kernels (NULL where it
 * has no variant); for every level the CPU supports, a merged table is built once, taking each
 * op from the highest level at or below it that has one (BLIS's "reference first, then
 * override"). The cap (CQ_ISA, read once, or cq_set_isa_cap) selects which merged table runs.
 * Also the `cquanto cpu` report. Built with CQ_KERNELS_REF_ONLY (the fuzz targets, which
 * leave out the ISA-flagged files) only the reference level exists.
 */
#include "kernels/kernels_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <strings.h>

/* The levels of this architecture, lowest first. */
static const cq_isa g_order[] = {
    CQ_ISA_REF,
#if defined(CQ_KERNELS_REF_ONLY)
#elif defined(__x86_64__)
    CQ_ISA_AVX2,   CQ_ISA_AVX512, CQ_ISA_AMX,
#elif defined(__aarch64__)
    CQ_ISA_NEON,
#endif
};
#define N_LEVELS ((int)CQ_ARRAY_LEN(g_order))

static cq__kernels g_merged[CQ_ISA_COUNT];
static int g_best_rank;           /* highest supported rank */
static volatile int g_cap_rank;   /* rank the cap allows (N_LEVELS - 1: uncapped) */
static volatile int g_cap_isa = CQ_ISA_COUNT;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int rank_of(cq_isa isa) {
    for (int i = 0; i < N_LEVELS; i++)
        if (g_order[i] == isa) return i;
    return -1;
}

const cq__kernels *cq__kernels_for(cq_isa isa) {
    switch (isa) {
    case CQ_ISA_REF: return &cq__kernels_ref;
#if defined(CQ_KERNELS_REF_ONLY)
#elif defined(__x86_64__)
    case CQ_ISA_AVX2: return &cq__kernels_avx2;
    case CQ_ISA_AVX512: return &cq__kernels_avx512;
    case CQ_ISA_AMX: return &cq__kernels_amx;
#elif defined(__aarch64__)
    case CQ_ISA_NEON: return &cq__kernels_neon;
#endif
    default: return NULL;
    }
}

/* The merged table up to rank r: each op (with its scratch function) from the highest level
 * <= r that has it. */
static void merge(int r, cq__kernels *out) {
    *out = cq__kernels_ref;
    for (int i = 1; i <= r; i++) {
        const cq__kernels *k = cq__kernels_for(g_order[i]);
#define CQ__TAKE(field, name, type) \
        if (k->field) out->field = k->field;
        CQ__OPS(CQ__TAKE)
#undef CQ__TAKE
        if (k->matmul_w8a8) out->scratch_w8a8 = k->scratch_w8a8;
        if (k->matmul_exact) out->scratch_exact = k->scratch_exact;
        if (k->matmul_fast) out->scratch_fast = k->scratch_fast;
    }
}

static int cap_rank_for(int cap) {
    if (cap >= CQ_ISA_COUNT) return N_LEVELS - 1;
    int r = rank_of((cq_isa)cap);
    return r < 0 ? 0 : r; /* another architecture's level: only ref */
}

static void init(void) {
    g_best_rank = 0;
    for (int i = 1; i < N_LEVELS; i++)
        if (cq__cpu_level_ok(g_order[i])) g_best_rank = i;
    for (int i = 0; i <= g_best_rank; i++) merge(i, &g_merged[i]);
    const char *env = getenv("CQ_ISA");
    cq_isa cap;
    if (env && *env && cq_isa_parse(env, &cap, NULL) == CQ_OK) g_cap_isa = (int)cap;
    g_cap_rank = cap_rank_for(g_cap_isa);
}

static int active_rank(void) {
    pthread_once(&g_once, init);
    return g_cap_rank < g_best_rank ? g_cap_rank : g_best_rank;
}

const cq__kernels *cq__kernels_active(void) { return &g_merged[active_rank()]; }

static const char *const g_isa_names[CQ_ISA_COUNT] = {"ref", "avx2", "avx512", "amx", "neon"};

const char *cq_isa_name(cq_isa isa) { return (unsigned)isa < CQ_ISA_COUNT ? g_isa_names[isa] : "?"; }

cq_status cq_isa_parse(const char *s, cq_isa *out, cq_err *err) {
    for (int i = 0; s && i < CQ_ISA_COUNT; i++) {
        if (!strcasecmp(s, g_isa_names[i])) {
            *out = (cq_isa)i;
            return CQ_OK;
        }
    }
    return cq_err_set(err, CQ_E_ARG, "unknown ISA level '%s' (expected ref, avx2, avx512, amx or neon)",
                      s ? s : "(null)");
}

bool cq_isa_supported(cq_isa isa) {
    pthread_once(&g_once, init);
    int r = rank_of(isa);
    return r >= 0 && r <= g_best_rank;
}

cq_isa cq_isa_best(void) {
    pthread_once(&g_once, init);
    return g_order[g_best_rank];
}

cq_isa cq_isa_active(void) { return g_order[active_rank()]; }

cq_status cq_set_isa_cap(cq_isa cap, cq_err *err) {
    if ((unsigned)cap > CQ_ISA_COUNT) return cq_err_set(err, CQ_E_ARG, "cq_set_isa_cap: invalid level %d", (int)cap);
    pthread_once(&g_once, init);
    g_cap_isa = (int)cap;
    g_cap_rank = cap_rank_for(cap);
    return CQ_OK;
}

cq_isa cq_get_isa_cap(void) {
    pthread_once(&g_once, init);
    return (cq_isa)g_cap_isa;
}

/* ---- report ------------------------------------------------------------------------------ */

#define CQ__NAME(field, name, type) name,
static const char *const g_op_names[] = {CQ__OPS(CQ__NAME)};
#undef CQ__NAME
#define CQ__OFFSET(field, name, type) offsetof(cq__kernels, field),
static const size_t g_op_offsets[] = {CQ__OPS(CQ__OFFSET)};
#undef CQ__OFFSET

int cq_kernel_op_count(void) { return (int)CQ_ARRAY_LEN(g_op_names); }

const char *cq_kernel_op_name(int op) { return op >= 0 && op < cq_kernel_op_count() ? g_op_names[op] : NULL; }

static bool table_has(const cq__kernels *k, int op) {
    void *p;
    memcpy(&p, (const char *)k + g_op_offsets[op], sizeof p);
    return p != NULL;
}

bool cq_kernel_op_has(int op, cq_isa isa) {
    const cq__kernels *k = cq__kernels_for(isa);
    return k && op >= 0 && op < cq_kernel_op_count() && table_has(k, op);
}

cq_isa cq_kernel_op_chosen(int op) {
    int r = active_rank();
    for (int i = r; i > 0; i--)
        if (cq_kernel_op_has(op, g_order[i])) return g_order[i];
    return CQ_ISA_REF;
}
