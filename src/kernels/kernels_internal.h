/*
 * kernels_internal.h - what the kernel files share: the repacked weight layout (struct
 * cq_mm_weight), the argument block of the matmul tile kernels, and the per-ISA kernel tables
 * the dispatcher chooses from. Never installed. Everything here is a type, a declaration or a
 * static inline helper, so ISA-flagged files get their own copies of the helpers.
 *
 * Packed weight layout (docs/KERNELS.md has the pictures). Output rows are grouped in tiles of
 * 16 (the last tile padded with zero rows). Input features k are split into the weight's
 * groups; each group is padded with zero codes to `gsp`, a multiple of the layout's granule,
 * so Kp = groups_per_row * gsp. Inside a tile the data is k-major:
 *   qint8 (granule 4):  per quad of k, 64 bytes: lane r (bytes 4r..4r+3) = w[r][4j..4j+3] ^ 0x80
 *                        (biased to unsigned: the vpdpbusd / AMX u8 operand)
 *   qint4 (granule 8):  per octet j, 64 bytes: lane r byte i: low nibble = code[r][8j+i],
 *                        high nibble = code[r][8j+4+i]
 *   qint2 (granule 16): per 16 k, 64 bytes: lane r byte i, bits 2p..2p+1 = code[r][16j+4p+i]
 *   float8 (granule 1): per k, 16 bytes: byte r = w[r][k]
 *   float (f32/f16/bf16, granule 1): per k, 16 elements of the weight dtype: element r = w[r][k]
 *                        (one vector load per k feeds 16 output rows: the GEMV's operand)
 * Scales (and shifts) are stored in the scale dtype as [tile][group][16]; float weights have
 * none (one group of k per row).
 */
#ifndef CQ_KERNELS_INTERNAL_H
#define CQ_KERNELS_INTERNAL_H

#include "core/internal.h"
#include "core/elem.h"

#define CQ_TILE_ROWS 16
#define CQ_CODES_SLACK 1024 /* zero bytes after a weight's last array */
#define CQ_W8A8_MAX_K 65536

/* Largest activation block in fast mode, and the block used inside longer groups. */
#define CQ_FAST_MAX_BLOCK 256
#define CQ_FAST_LONG_BLOCK 128

struct cq_mm_weight {
    cq_qtype qtype;
    int bits;          /* 8, 4 or 2; float weights: 8 * element size */
    bool is_float8;
    bool is_float;     /* qtype CQ_QNONE: f32/f16/bf16 values of wdtype, no scales */
    cq_dtype wdtype;   /* float weights: F32, F16 or BF16 */
    int64_t n, k;      /* logical shape */
    int64_t gs;        /* group size; k for per-channel */
    int64_t groups;    /* groups per row = k / gs */
    int64_t gsp;       /* group length in the layout (gs rounded up to the granule) */
    int64_t kp;        /* groups * gsp */
    int64_t ntiles;    /* ceil(n / 16) */
    size_t tile_bytes; /* code bytes per tile */
    cq_dtype scale_dtype;
    size_t scale_elt;  /* 2 or 4 */
    uint8_t *codes;    /* ntiles * tile_bytes, 64-byte aligned */
    void *scale;       /* [ntiles][groups][16] in scale_dtype */
    void *shift;       /* same, qint2/4 only */
    bool fast_ok;
    /* every scale and shift is 0 or finite with magnitude in [2^-100, 2^100]: dequantization
     * then never meets NaN or a denormal, which lets exact mode round bf16 more cheaply */
    bool params_tame;
    int64_t blk;       /* fast mode: activation block length inside a group */
    int64_t nblk;      /* fast mode: blocks per group = ceil(gs / blk); the last one ends at gsp */
    size_t nbytes;     /* codes + scales + shifts that one pass streams */
    size_t alloc_bytes; /* the one allocation behind codes, scale and shift */
};

static inline int64_t cq__ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t cq__round_up(int64_t a, int64_t b) { return cq__ceil_div(a, b) * b; }

/* Logical k of a (group, offset-in-padded-group) position, and its validity. */
static inline int cq__granule(int bits, bool is_float8) { return is_float8 ? 1 : bits == 8 ? 4 : bits == 4 ? 8 : 16; }

/* The tiled layout of the codes, stated once (the writer, the reference reader and the SIMD
 * decoders derive from these two): padded position kk of tile row r (of 16) lies in 64-byte
 * chunk kk / granule, byte r * 4 + kk % 4 of it, at bit offset bits * ((kk % granule) / 4),
 * so a chunk holds granule = 32 / bits positions of each row. float8 codes are whole bytes:
 * byte kk * 16 + r. */
static inline size_t cq__tile_byte(int bits, bool is_float8, int64_t kk, int r) {
    if (is_float8) return (size_t)kk * 16 + (size_t)r;
    return (size_t)(kk / cq__granule(bits, false)) * 64 + (size_t)r * 4 + (size_t)(kk % 4);
}

/* Float weights: element (tile row r, feature k) is element k * 16 + r of its tile. */
static inline size_t cq__tile_float_index(int64_t k, int r) { return (size_t)k * CQ_TILE_ROWS + (size_t)r; }
static inline float cq__w_float(const cq_mm_weight *w, int64_t n, int64_t k) {
    const uint8_t *tile = w->codes + (size_t)(n / CQ_TILE_ROWS) * w->tile_bytes;
    return cq_load_f32(tile, w->wdtype, (int64_t)cq__tile_float_index(k, (int)(n % CQ_TILE_ROWS)));
}
static inline int cq__tile_shift(int bits, int64_t kk) { return bits * (int)((kk % cq__granule(bits, false)) / 4); }

/* Scale / shift of (tile, group, lane) as f32 (exact for every scale dtype). */
static inline float cq__ld_scale(const cq_mm_weight *w, const void *base, int64_t tile, int64_t g, int lane) {
    int64_t i = (tile * w->groups + g) * CQ_TILE_ROWS + lane;
    if (w->scale_dtype == CQ_F32) return ((const float *)base)[i];
    return cq_load_f32(base, w->scale_dtype, i);
}

/* Code of logical element (row n, feature k) read from the tiled layout: the signed value for
 * qint8, the unsigned code for qint2/4, the raw byte for float8. Used by the reference kernels
 * and by unpacking; never in a hot loop. */
static inline int cq__w_code(const cq_mm_weight *w, int64_t n, int64_t k) {
    int64_t t = n / CQ_TILE_ROWS, r = n % CQ_TILE_ROWS;
    int64_t g = k / w->gs, kk = g * w->gsp + k % w->gs; /* position along the padded row */
    uint8_t b = w->codes[(size_t)t * w->tile_bytes + cq__tile_byte(w->bits, w->is_float8, kk, (int)r)];
    if (w->is_float8) return b;
    if (w->bits == 8) return (int)(int8_t)(b ^ 0x80);
    return (b >> cq__tile_shift(w->bits, kk)) & ((1 << w->bits) - 1);
}

/* ---- fast-mode activations -----------------------------------------------------------------
 * Each activation row, quantized per block, is stored as kp int8 codes (zero in the padding)
 * followed by one record per block, all 64-byte aligned: row stride cq__qrow_bytes(). */
typedef struct cq__qblock {
    float d;      /* block scale absmax/127 (0 for an all-zero block) */
    int32_t qsum; /* sum of the block's codes */
    float dq;     /* d * (float)qsum */
    int32_t pad;
} cq__qblock;

static inline size_t cq__qrow_codes_bytes(const cq_mm_weight *w) { return (size_t)cq__round_up(w->kp, 64); }
static inline size_t cq__qrow_bytes(const cq_mm_weight *w) {
    return cq__qrow_codes_bytes(w) + (size_t)cq__round_up(w->groups * w->nblk * (int64_t)sizeof(cq__qblock), 64);
}

/* ---- tile kernels ------------------------------------------------------------------------------
 * A matmul kernel computes the outputs of rows [m0, m1) and of the columns in tiles [t0, t1)
 * (columns 16*t0 .. min(16*t1, N) - 1). Activations are
 * prepared by the driver (matmul.c): f32 rows for exact mode, int8 rows (+ per-row sums) for
 * W8A8, quantized rows for fast mode. `scratch` is this thread's slice of the workspace. */
typedef struct cq__mm_args {
    const cq_mm_weight *w;
    int64_t m;
    const float *xf;     /* exact: M rows of k floats, stride ldx */
    const int8_t *xq;    /* W8A8: M rows of k int8, stride ldx (bytes) */
    const int32_t *xsum; /* W8A8: sum of each row's codes */
    const uint8_t *xb;   /* fast: M rows of cq__qrow_bytes() each */
    int64_t ldx;
    float x_scale;       /* W8A8 */
    const float *bias;
    void *y;
    cq_dtype y_dtype;
    int64_t ldy;
    size_t scratch_bytes; /* per thread */
} cq__mm_args;

typedef void (*cq__mm_fn)(const cq__mm_args *a, int64_t t0, int64_t t1, int64_t m0, int64_t m1, void *scratch);
/* Scratch bytes per thread a variant needs (0 if none); NULL means none. */
typedef size_t (*cq__mm_scratch_fn)(const cq_mm_weight *w, int64_t m);

/* Quantizes rows of x (F32 or BF16) per block for fast mode into xb (row stride
 * cq__qrow_bytes(w)); rows [m0, m1). */
typedef void (*cq__qrows_fn)(const cq_mm_weight *w, const void *x, cq_dtype xt, int64_t ldx, int64_t m0,
                             int64_t m1, uint8_t *xb);

/* ---- the kernel registry ----------------------------------------------------------------------
 * Every kernel is one entry of its level's list: a name that says what it computes, the op and
 * weight format it is registered for (its slot), its level and any CPU features it needs beyond
 * the level's, its register tile, and the function. The dispatcher picks one entry per slot;
 * tests run every entry against the reference entry of its slot. CQ__OPS lists each op once:
 * its field (also the union member holding its function), its report name and its type. */
typedef void (*cq__f32_to_u16_fn)(const float *, uint16_t *, int64_t);
typedef void (*cq__u16_to_f32_fn)(const uint16_t *, float *, int64_t);
typedef void (*cq__f32_to_u8_fn)(const float *, uint8_t *, int64_t);
typedef void (*cq__u8_to_f32_fn)(const uint8_t *, float *, int64_t);
typedef float (*cq__absmax_fn)(const void *, cq_dtype, int64_t);
typedef void (*cq__quantize_i8_fn)(const void *, cq_dtype, int64_t, float, int8_t *);
typedef void (*cq__dequantize_i8_fn)(const int8_t *, int64_t, float, void *, cq_dtype);
typedef void (*cq__quantize_f8_fn)(const void *, cq_dtype, int64_t, float, cq_dtype, uint8_t *);
typedef int32_t (*cq__sum_i8_fn)(const int8_t *, int64_t); /* n <= 2^23: exact in int32 */
typedef void (*cq__minmax_fn)(const void *, cq_dtype, int64_t, float *, float *);
/* Attention (src/lm), over a K cache stored transposed (key j's element i at k[i * ldk + j], so
 * the keys lie along the SIMD lanes and a score needs no reduction): s[j] = scale * (q . k_j)
 * for j < n, the dot product summed in increasing i with one fused multiply-add per term; and
 * o[i] += p[j] * v[j * ldv + i] over j in order, one fused multiply-add each. */
typedef void (*cq__attn_scores_fn)(const float *q, const float *k, int64_t ldk, int64_t n, int64_t d, float scale,
                                   float *s);
typedef void (*cq__attn_values_fn)(const float *p, const float *v, int64_t ldv, int64_t n, int64_t d, float *o);
typedef void (*cq__affine_codes_fn)(const void *, cq_dtype, int64_t, float, float, float, uint8_t *);

#define CQ__VEC_OPS(X)                                            \
    X(f32_to_f16, "convert_f32_f16", cq__f32_to_u16_fn)          \
    X(f16_to_f32, "convert_f16_f32", cq__u16_to_f32_fn)          \
    X(f32_to_bf16, "convert_f32_bf16", cq__f32_to_u16_fn)        \
    X(bf16_to_f32, "convert_bf16_f32", cq__u16_to_f32_fn)        \
    X(f32_to_e4m3, "convert_f32_e4m3fn", cq__f32_to_u8_fn)       \
    X(e4m3_to_f32, "convert_e4m3fn_f32", cq__u8_to_f32_fn)       \
    X(f32_to_e5m2, "convert_f32_e5m2", cq__f32_to_u8_fn)         \
    X(e5m2_to_f32, "convert_e5m2_f32", cq__u8_to_f32_fn)         \
    X(absmax, "absmax", cq__absmax_fn)                           \
    X(quantize_i8, "quantize_i8", cq__quantize_i8_fn)            \
    X(dequantize_i8, "dequantize_i8", cq__dequantize_i8_fn)      \
    X(quantize_f8, "quantize_f8", cq__quantize_f8_fn)            \
    X(sum_i8, "sum_i8", cq__sum_i8_fn)                           \
    X(minmax, "minmax", cq__minmax_fn)                           \
    X(affine_codes, "affine_codes", cq__affine_codes_fn)         \
    X(quantize_rows, "quantize_act_blocks", cq__qrows_fn)         \
    X(attn_scores, "attention_scores", cq__attn_scores_fn)       \
    X(attn_values, "attention_values", cq__attn_values_fn)
#define CQ__MM_OPS(X)                                             \
    X(matmul_w8a8, "matmul_w8a8", cq__mm_fn)                     \
    X(matmul_exact, "matmul_exact", cq__mm_fn)                   \
    X(matmul_fast, "matmul_fast", cq__mm_fn)
#define CQ__OPS(X) CQ__VEC_OPS(X) CQ__MM_OPS(X)

#define CQ__OP_ENUM(field, name, type) CQ__OP_##field,
typedef enum { CQ__OPS(CQ__OP_ENUM) CQ__OP_COUNT } cq__op;
#undef CQ__OP_ENUM

/* Weight formats a matmul kernel is registered for (elementwise ops: CQ__W_NONE). */
typedef enum {
    CQ__W_NONE, CQ__W_QINT8, CQ__W_QINT4, CQ__W_QINT2, CQ__W_F8_E4M3FN, CQ__W_F8_E5M2,
    CQ__W_F32, CQ__W_F16, CQ__W_BF16, /* float weights (qtype CQ_QNONE) */
    CQ__W_COUNT
} cq__wfmt;
cq__wfmt cq__wfmt_of(const cq_mm_weight *w);
const char *cq__wfmt_name(cq__wfmt f); /* "qint4", "f16"; "" for CQ__W_NONE */

/* CPU features a kernel may need beyond its level's (a bit mask). */
#define CQ__NEED_AVX512_BF16 1u

/* A matmul kernel's name: activations, weights, output, tile MR x NR, level (+ suffix). */
#define CQ__GEMM_NAME(act, wt, mr, nr, isa) CQ__GEMM_NAME_(act, wt, mr, nr, isa)
#define CQ__GEMM_NAME_(act, wt, mr, nr, isa) "gemm_" act "_" wt "_f32_" #mr "x" #nr "__" isa

#define CQ__OP_FIELD(field, name, type) type field;
typedef struct cq__kernel {
    const char *name; /* e.g. "gemm_qd8_qb4w_f32_6x32__avx512" (docs/KERNELS.md, section 4) */
    cq__op op;
    cq__wfmt wfmt;
    cq_isa isa;
    unsigned needs;
    int mr, nr; /* register tile: activation rows x output columns (elementwise: 1 x lanes) */
    union {
        CQ__OPS(CQ__OP_FIELD)
    } fn;
    cq__mm_scratch_fn scratch; /* matmul: scratch bytes per thread; NULL: none */
} cq__kernel;
#undef CQ__OP_FIELD

/* One level's entries, lowest priority first. */
typedef struct {
    const cq__kernel *k;
    int n;
} cq__kernel_list;

extern const cq__kernel_list cq__kernels_ref;
#if defined(__x86_64__)
extern const cq__kernel_list cq__kernels_avx2;
extern const cq__kernel_list cq__kernels_avx512;
extern const cq__kernel_list cq__kernels_amx;
#endif
#if defined(__aarch64__)
extern const cq__kernel_list cq__kernels_neon;
#endif

/* The registry: every level's entries, levels in ascending order. */
int cq__kernel_count(void);
const cq__kernel *cq__kernel_get(int i);
/* This CPU (and OS) can run it; and, further, the cap allows its level. */
bool cq__kernel_runnable(const cq__kernel *k);
bool cq__kernel_allowed(const cq__kernel *k);
/* The entry of a slot at exactly one level (NULL if that level registers none): the reference
 * of a slot, or the kernel an AMX kernel hands shapes it does not cover. */
const cq__kernel *cq__kernel_at(cq_isa isa, cq__op op, cq__wfmt w);
/* The entry dispatch runs for a slot: of the allowed entries, the last registered. */
const cq__kernel *cq__kernel_pick(cq__op op, cq__wfmt w);
/* The dispatched function of an elementwise op: CQ__VEC(absmax)(x, t, n). */
#define CQ__VEC(field) (cq__kernel_pick(CQ__OP_##field, CQ__W_NONE)->fn.field)

/* matmul.c: cq_matmul and cq_matmul_work_size with the given matmul kernel instead of the
 * dispatched one (tests run every registered kernel so). The kernel must be registered for
 * the call's op and the weight's format (else CQ_E_ARG). */
cq_status cq__matmul_with(const cq__kernel *k, const cq_mm_weight *w, int64_t M, const void *x, cq_dtype x_dtype,
                          int64_t ldx, void *y, cq_dtype y_dtype, int64_t ldy, const cq_matmul_opts *opts, cq_err *err);
size_t cq__matmul_work_size_with(const cq__kernel *k, const cq_mm_weight *w, int64_t M, cq_dtype x_dtype);

/* cpu.c: the raw detection (once) and the AMX tile permission for this process; whether the
 * CPU has every feature of a CQ__NEED_* mask. */
bool cq__cpu_level_ok(cq_isa isa);
bool cq__cpu_has(unsigned needs);

/* ---- helpers shared by the reference and the drivers ------------------------------------- */

/* Rounds an f32 to a storage dtype's precision and stores it (F32, F16, BF16). */
static inline void cq__store_y(void *y, cq_dtype t, int64_t i, float v) { cq_store_f32(y, t, i, v); }
static inline float cq__round_y(float v, cq_dtype t) { return t == CQ_F32 ? v : cq_round_to_dtype(v, t); }
/* The largest finite value of an fp8 data dtype: quanto's qmax of its float8 qtype (the qtype
 * table); 0 for any other dtype. */
static inline float cq__fp8_max(cq_dtype t) {
    const cq_qtype_info *qi = cq__qtype_storing(t);
    return qi && qi->family == CQ_QFAMILY_FLOAT ? (float)qi->qmax : 0.0f;
}

#endif
