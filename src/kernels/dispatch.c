/*
 * dispatch.c - the kernel registry and the choice of one kernel per slot (op, weight format).
 * Each ISA level lists its kernels (cq__kernel_list); for every level the CPU supports, the
 * entry each slot runs is chosen once from the runnable entries at or below that level. The cap
 * (CQ_ISA, read once, or cq_set_isa_cap) selects which choice runs. Also the `cquanto cpu`
 * report. Built with CQ_KERNELS_REF_ONLY (the fuzz targets, which
 * leave out the ISA-flagged files) only the reference level exists.
 */
#include "kernels/kernels_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <strings.h>

/* The levels of this architecture, lowest first, and their kernel lists. */
static const cq_isa g_order[] = {
    CQ_ISA_REF,
#if defined(CQ_KERNELS_REF_ONLY)
#elif defined(__x86_64__)
    CQ_ISA_AVX2,   CQ_ISA_AVX512, CQ_ISA_AMX,
#elif defined(__aarch64__)
    CQ_ISA_NEON,
#endif
};
static const cq__kernel_list *const g_lists[] = {
    &cq__kernels_ref,
#if defined(CQ_KERNELS_REF_ONLY)
#elif defined(__x86_64__)
    &cq__kernels_avx2, &cq__kernels_avx512, &cq__kernels_amx,
#elif defined(__aarch64__)
    &cq__kernels_neon,
#endif
};
#define N_LEVELS ((int)CQ_ARRAY_LEN(g_order))

/* g_pick[r]: the entry each slot runs when the cap allows levels up to rank r. */
static const cq__kernel *g_pick[N_LEVELS][CQ__OP_COUNT][CQ__W_COUNT];
static int g_best_rank;           /* highest supported rank */
static volatile int g_cap_rank;   /* rank the cap allows (N_LEVELS - 1: uncapped) */
static volatile int g_cap_isa = CQ_ISA_COUNT;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int rank_of(cq_isa isa) {
    for (int i = 0; i < N_LEVELS; i++)
        if (g_order[i] == isa) return i;
    return -1;
}

int cq__kernel_count(void) {
    int n = 0;
    for (int i = 0; i < N_LEVELS; i++) n += g_lists[i]->n;
    return n;
}

const cq__kernel *cq__kernel_get(int i) {
    for (int l = 0; l < N_LEVELS && i >= 0; l++) {
        if (i < g_lists[l]->n) return &g_lists[l]->k[i];
        i -= g_lists[l]->n;
    }
    return NULL;
}

static int cap_rank_for(int cap) {
    if (cap >= CQ_ISA_COUNT) return N_LEVELS - 1;
    int r = rank_of((cq_isa)cap);
    return r < 0 ? 0 : r; /* another architecture's level: only ref */
}

bool cq__kernel_runnable(const cq__kernel *k) {
    int r = rank_of(k->isa);
    return r >= 0 && cq__cpu_level_ok(k->isa) && cq__cpu_has(k->needs);
}

/* Later entries override earlier ones: levels ascend, and within a level an entry needing
 * extra features follows the one that does not (BLIS's "reference first, then override"). */
static void init(void) {
    g_best_rank = 0;
    for (int i = 1; i < N_LEVELS; i++)
        if (cq__cpu_level_ok(g_order[i])) g_best_rank = i;
    for (int r = 0; r <= g_best_rank; r++)
        for (int l = 0; l <= r; l++)
            for (int i = 0; i < g_lists[l]->n; i++) {
                const cq__kernel *k = &g_lists[l]->k[i];
                if (cq__kernel_runnable(k)) g_pick[r][k->op][k->wfmt] = k;
            }
    const char *env = getenv("CQ_ISA");
    cq_isa cap;
    if (env && *env && cq_isa_parse(env, &cap, NULL) == CQ_OK) g_cap_isa = (int)cap;
    g_cap_rank = cap_rank_for(g_cap_isa);
}

static int active_rank(void) {
    pthread_once(&g_once, init);
    return g_cap_rank < g_best_rank ? g_cap_rank : g_best_rank;
}

bool cq__kernel_allowed(const cq__kernel *k) { return cq__kernel_runnable(k) && rank_of(k->isa) <= active_rank(); }

const cq__kernel *cq__kernel_at(cq_isa isa, cq__op op, cq__wfmt w) {
    int r = rank_of(isa);
    for (int i = 0; r >= 0 && i < g_lists[r]->n; i++)
        if (g_lists[r]->k[i].op == op && g_lists[r]->k[i].wfmt == w && !g_lists[r]->k[i].needs) return &g_lists[r]->k[i];
    return NULL;
}

const cq__kernel *cq__kernel_pick(cq__op op, cq__wfmt w) { return g_pick[active_rank()][op][w]; }

cq__wfmt cq__wfmt_of(const cq_mm_weight *w) {
    if (w->is_float) return w->wdtype == CQ_F16 ? CQ__W_F16 : w->wdtype == CQ_BF16 ? CQ__W_BF16 : CQ__W_F32;
    if (w->is_float8) return w->qtype == CQ_QFLOAT8_E5M2 ? CQ__W_F8_E5M2 : CQ__W_F8_E4M3FN;
    return w->bits == 8 ? CQ__W_QINT8 : w->bits == 4 ? CQ__W_QINT4 : CQ__W_QINT2;
}

const char *cq__wfmt_name(cq__wfmt f) {
    static const char *const names[CQ__W_COUNT] = {"", "qint8", "qint4", "qint2", "qfloat8_e4m3fn", "qfloat8_e5m2",
                                                   "f32",   "f16",   "bf16"};
    return (unsigned)f < CQ__W_COUNT ? names[f] : "?";
}

static const char *const g_isa_names[CQ_ISA_COUNT] = {"ref", "avx2", "avx512", "amx", "neon"};

const char *cq_isa_name(cq_isa isa) { return (unsigned)isa < CQ_ISA_COUNT ? g_isa_names[isa] : "?"; }

cq_status cq_isa_parse(const char *s, cq_isa *out, cq_err *err) {
    CQ__ARG(out);
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

/* ---- report ------------------------------------------------------------------------------
 * Slots are numbered in the order of the reference list, which registers every slot. */

#define CQ__NAME(field, name, type) name,
static const char *const g_op_names[] = {CQ__OPS(CQ__NAME)};
#undef CQ__NAME

int cq_kernel_count(void) { return cq__kernel_count(); }
int cq_kernel_slot_count(void) { return cq__kernels_ref.n; }

static int slot_of(const cq__kernel *k) {
    for (int i = 0; i < cq__kernels_ref.n; i++)
        if (cq__kernels_ref.k[i].op == k->op && cq__kernels_ref.k[i].wfmt == k->wfmt) return i;
    return -1;
}

cq_status cq_kernel_get(int i, cq_kernel_info *out, cq_err *err) {
    CQ__ARG(out);
    const cq__kernel *k = i >= 0 ? cq__kernel_get(i) : NULL;
    if (!k) return cq_err_set(err, CQ_E_ARG, "cq_kernel_get: index %d is not in 0..%d", i, cq_kernel_count() - 1);
    out->name = k->name;
    out->op = g_op_names[k->op];
    out->weight = cq__wfmt_name(k->wfmt);
    out->isa = k->isa;
    out->needs = k->needs & CQ__NEED_AVX512_BF16 ? "avx512_bf16" : "";
    out->mr = k->mr;
    out->nr = k->nr;
    out->slot = slot_of(k);
    out->runnable = cq__kernel_runnable(k);
    out->chosen = cq__kernel_pick(k->op, k->wfmt) == k;
    return CQ_OK;
}
