/*
 * cquanto/kernels.h - CPU detection and dispatch, vectorised elementwise kernels and the
 * quantized matmul with its repacked weights.
 */
#ifndef CQUANTO_KERNELS_H
#define CQUANTO_KERNELS_H

#include "cquanto/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * kernels: quantized matmul, activation quantization, conversions, CPU dispatch
 * ====================================================================================== */

/* --- kernels: CPU features and dispatch ---------------------------------------------------
 * Every kernel exists as a scalar reference (the specification) and as SIMD variants. The CPU
 * is detected once (cpuid + XGETBV, and the Linux AMX permission request; getauxval on arm).
 * Each op then runs the best variant whose ISA level the CPU supports and the cap allows. The
 * cap comes from CQ_ISA=ref|avx2|avx512|amx|neon (read once) or cq_set_isa_cap(). Levels are
 * ordered within an architecture (x86: ref < avx2 < avx512 < amx; arm: ref < neon); a cap
 * naming the other architecture's level leaves only ref. Results never depend on the level:
 * integer paths and the float paths with a stated order are bit-exact with the reference. */
typedef enum cq_isa {
    CQ_ISA_REF = 0, /* portable C: the specification */
    CQ_ISA_AVX2,    /* AVX2 + FMA + F16C */
    CQ_ISA_AVX512,  /* AVX-512 F/BW/VL/DQ + VNNI (vpdpbusd); BF16 where present */
    CQ_ISA_AMX,     /* AVX512 level + AMX-INT8 tiles (prefill-sized int8 matmuls) */
    CQ_ISA_NEON,    /* AArch64 Advanced SIMD with the dot-product extension */
    CQ_ISA_COUNT
} cq_isa;

CQ_API const char *cq_isa_name(cq_isa isa); /* "ref", "avx2", "avx512", "amx", "neon"; "?" otherwise */
/* Parses an ISA name as CQ_ISA does (case-insensitive); CQ_E_ARG naming s otherwise. */
CQ_API cq_status cq_isa_parse(const char *s, cq_isa *out, cq_err *err);
CQ_API bool cq_isa_supported(cq_isa isa); /* the CPU and the OS can run this level */
CQ_API cq_isa cq_isa_best(void);          /* highest supported level, ignoring the cap */
CQ_API cq_isa cq_isa_active(void);        /* highest supported level within the cap: what runs */
/* Caps the level for the rest of the process (tests walk the levels with it; not meant to be
 * called while kernels run on other threads). CQ_ISA_COUNT removes the cap. */
CQ_API cq_status cq_set_isa_cap(cq_isa cap, cq_err *err);
CQ_API cq_isa cq_get_isa_cap(void);       /* CQ_ISA_COUNT when uncapped */

/* What cpuid (x86) or the auxiliary vector (arm) reports, after the OS-support checks: a
 * feature is true only when both the CPU has it and the OS saves its register state. */
typedef struct cq_cpu_info {
    char arch[16];   /* "x86_64", "aarch64", or the compiler's name for another target */
    char vendor[16]; /* "GenuineIntel", "AuthenticAMD", "" on arm */
    char model[64];  /* brand string, e.g. "Intel(R) Xeon(R) Platinum 8480+" */
    bool sse4_2, avx, avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16, avx512_fp16;
    bool avx_vnni, amx_tile, amx_int8, amx_bf16;
    bool neon, dotprod, i8mm, fp16;
} cq_cpu_info;
CQ_API const cq_cpu_info *cq_cpu_get_info(void);

/* The kernel registry (`cquanto cpu`). Every kernel is registered for one slot, an (op, weight
 * format) pair, with a name that says what it computes (docs/KERNELS.md, section 4); dispatch
 * runs, per slot, the last registered kernel that the CPU can run and the cap allows. Kernels
 * are numbered 0 .. cq_kernel_count()-1, slots 0 .. cq_kernel_slot_count()-1. */
typedef struct cq_kernel_info {
    const char *name;   /* e.g. "gemm_qd8_qb4w_f32_6x32__avx512" */
    const char *op;     /* e.g. "matmul_fast", "quantize_i8" */
    const char *weight; /* the weight format of a matmul ("qint4"); "" for elementwise ops */
    cq_isa isa;         /* its level */
    const char *needs;  /* CPU features it needs beyond its level's ("avx512_bf16"); "" if none */
    int mr, nr;         /* register tile: activation rows x output columns (elementwise: 1 x lanes) */
    int slot;
    bool runnable;      /* this CPU and OS can run it */
    bool chosen;        /* dispatch runs it now for its slot */
} cq_kernel_info;
CQ_API int cq_kernel_count(void);
CQ_API int cq_kernel_slot_count(void);
CQ_API cq_status cq_kernel_get(int i, cq_kernel_info *out, cq_err *err); /* CQ_E_ARG if i is out of range */

/* --- kernels: elementwise (vectorised; each equals the scalar function named) -------------
 * n <= 0 does nothing. Buffers need no alignment; input and output must not overlap. */
CQ_API void cq_vec_f32_to_f16(const float *x, uint16_t *y, int64_t n);       /* cq_f32_to_f16 */
CQ_API void cq_vec_f16_to_f32(const uint16_t *x, float *y, int64_t n);       /* cq_f16_to_f32 */
CQ_API void cq_vec_f32_to_bf16(const float *x, uint16_t *y, int64_t n);      /* cq_f32_to_bf16 */
CQ_API void cq_vec_bf16_to_f32(const uint16_t *x, float *y, int64_t n);      /* cq_bf16_to_f32 */
CQ_API void cq_vec_f32_to_f8_e4m3fn(const float *x, uint8_t *y, int64_t n); /* cq_f32_to_f8_e4m3fn */
CQ_API void cq_vec_f8_e4m3fn_to_f32(const uint8_t *x, float *y, int64_t n); /* cq_f8_e4m3fn_to_f32 */
CQ_API void cq_vec_f32_to_f8_e5m2(const float *x, uint8_t *y, int64_t n);   /* cq_f32_to_f8_e5m2 */
CQ_API void cq_vec_f8_e5m2_to_f32(const uint8_t *x, float *y, int64_t n);   /* cq_f8_e5m2_to_f32 */
/* max |x[i]| over x of dtype F32, F16 or BF16; NaN if any element is NaN (torch.amax); 0 for n <= 0. */
CQ_API float cq_vec_absmax(const void *x, cq_dtype dtype, int64_t n);
/* quanto's quantize_symmetric to int8 with a per-tensor scale, computed in x's dtype (F32, F16
 * or BF16): q = clamp(round_half_even(round_dtype(x / scale)), -128, 127). A zero scale gives
 * codes 0; NaN gives 0 (docs/NUMERICS.md). */
CQ_API void cq_vec_quantize_i8(const void *x, cq_dtype dtype, int64_t n, float scale, int8_t *q);
/* quanto's quantize_symmetric to an fp8 dtype (F8_E4M3FN, F8_E5M2 or F8_E4M3FNUZ) with one
 * scale: q = fp8(clamp(round_dtype(x / scale), -max, max)), NaN kept as NaN; a zero scale gives
 * 0 (docs/NUMERICS.md). x is F32, F16 or BF16. */
CQ_API void cq_vec_quantize_f8(const void *x, cq_dtype dtype, int64_t n, float scale, cq_dtype fp8, uint8_t *q);
/* quanto's dequantization y = round_dtype(scale * q), stored as dtype (F32, F16 or BF16). */
CQ_API void cq_vec_dequantize_i8(const int8_t *q, int64_t n, float scale, void *y, cq_dtype dtype);
/* min and max of x (F32, F16 or BF16), as torch.amin / amax: NaN in both if any element is NaN.
 * A zero minimum is -0 if x holds a -0, a zero maximum +0 if x holds a +0 (so the result never
 * depends on the order of comparison). n <= 0: +inf and -inf. */
CQ_API void cq_vec_minmax(const void *x, cq_dtype dtype, int64_t n, float *mn, float *mx);
/* quanto's quantize_affine for a run sharing one (scale, shift), computed in x's dtype (F32, F16
 * or BF16): codes = clamp(round_half_even(round_dtype(round_dtype(x + shift) / scale)), 0,
 * 2^bits - 1), unpacked, one per byte. A zero scale or NaN gives code 0 (docs/NUMERICS.md). */
CQ_API void cq_vec_affine_codes(const void *x, cq_dtype dtype, int64_t n, float scale, float shift, int bits,
                                uint8_t *codes);

/* --- kernels: quantized matmul -------------------------------------------------------------
 * Y[M,N] = X[M,K] . W[N,K]^T (+ bias[N]): torch's F.linear, W holding one output channel per
 * row. A weight is repacked ONCE (at load or freeze) from its canonical quanto tensors into a
 * cq_mm_weight, whose layout belongs to the kernels (tiles of 16 output rows, interleaved
 * 4 input features per 32-bit lane: the vpdpbusd / AMX / sdot operand order). The canonical
 * tensors come back unchanged from cq_mm_weight_unpack. Weight kinds and what they compute:
 *
 *  - W8A8: qint8 weights x int8 activations (x_dtype CQ_I8, per-tensor opts->x_scale): the
 *    exact int32 dot product, then quanto's qbytes_int_mm epilogue
 *        y = round_y(round_s(float(acc) * round_s(x_scale * scale[n]))) (+ bias, rounded to y's
 *    dtype).
 *    K <= 65536 (the int32 accumulator cannot overflow).
 *  - Weight-only, activations F32 or BF16, weights qint8, qfloat8_e4m3fn, qfloat8_e5m2, qint4 or
 *    qint2 (group-wise affine with quanto's float shift, or per channel), two modes:
 *    CQ_MATMUL_EXACT  what quanto computes: each weight dequantized with quanto's rounding in the
 *                     scale dtype (qint8/fp8: s*q; qint2/4: (s*code) - shift, rounded after each
 *                     op), then per output  acc = +0; for k = 0..K-1: acc = fmaf(x[k], w[k], acc)
 *                     (one fused multiply-add per k, in increasing k), y = round_y(acc).
 *    CQ_MATMUL_FAST   activations quantized on the fly to int8 per block (one block = one weight
 *                     group when group_size <= 256, else 128 features; blocks never straddle
 *                     groups): d = absmax/127, q = round_half_even(x * (1/d)); then per block an
 *                     exact integer dot product and acc = fmaf(d, s*float(isum), acc)
 *                     (qint2/4 also acc = fmaf(-shift, d*float(sum q), acc)). Not for fp8
 *                     weights. docs/KERNELS.md gives the error against EXACT.
 *    Both modes are bit-exact across ISA levels and thread counts.
 *  - Float, activations F32 or BF16, weights stored as F32, F16 or BF16 (qtype CQ_QNONE): the
 *    unquantized Linear of a float checkpoint, with EXACT's arithmetic on the stored values
 *    (each converted exactly to f32; one fmaf per k in increasing k). The weight stays in its
 *    own dtype, so an f16/bf16 GEMV streams half the bytes of f32. CQ_MATMUL_FAST is the same
 *    computation for these weights (there is nothing to quantize on the fly).
 * Rounding: round_s rounds to the scale dtype, round_y to y_dtype (identity for F32); bias is
 * added as y = round_y(y + bias[n]). */

typedef enum cq_matmul_mode { CQ_MATMUL_EXACT = 0, CQ_MATMUL_FAST = 1 } cq_matmul_mode;

/* The canonical quanto tensors of one 2-D weight [N, K] (N = out_features, K = in_features). */
typedef struct cq_mm_weight_src {
    cq_qtype qtype;          /* QINT8, QFLOAT8_E4M3FN, QFLOAT8_E5M2, QINT4 or QINT2; CQ_QNONE
                              * for a float weight: data is [N,K] of weight_dtype, row-major,
                              * group_size 0, no scale or shift */
    int64_t out_features;    /* N >= 1 */
    int64_t in_features;     /* K >= 1 */
    int64_t group_size;      /* qint2/4: gs dividing K, or 0 (or K) for per-channel; 8-bit: 0 */
    const void *data;        /* qint8: I8 [N,K]; float8: the F8 bytes [N,K]; qint2/4: U8 codes,
                              * canonical-packed (ceil(G/vpi), gs) with G = N*K/gs groups
                              * (per-channel: (ceil(N/vpi), K)), or one code per byte [N,K]
                              * when codes_unpacked is true */
    bool codes_unpacked;
    const void *scale;       /* 8-bit: [N]; qint2/4: [G] (per-channel: [N]); in scale_dtype */
    const void *shift;       /* qint2/4: float shift [G] in scale_dtype; NULL for 8-bit */
    cq_dtype scale_dtype;    /* F32, F16 or BF16 (the model's dtype); float weights: ignored */
    cq_dtype weight_dtype;   /* float weights (CQ_QNONE): F32, F16 or BF16; else ignored */
} cq_mm_weight_src;

typedef struct cq_mm_weight cq_mm_weight;

/* Repacks src (which is only read; it may be freed afterwards). Validates qtype, shapes,
 * group size, code range and, for e4m3fn, rejects NaN codes (quanto never produces them). */
CQ_API cq_status cq_mm_weight_new(cq_mm_weight **out, const cq_mm_weight_src *src, cq_err *err);
CQ_API void cq_mm_weight_free(cq_mm_weight *w);
/* An independent copy (same layout, its own memory). */
CQ_API cq_status cq_mm_weight_clone(const cq_mm_weight *w, cq_mm_weight **out, cq_err *err);

typedef struct cq_mm_weight_info {
    cq_qtype qtype;        /* CQ_QNONE: a float weight of weight_dtype */
    int64_t out_features, in_features, group_size; /* group_size == in_features: per channel */
    cq_dtype scale_dtype;
    bool fast_ok;  /* CQ_MATMUL_FAST is available (integer weights, group_size % 16 == 0 or per channel) */
    size_t nbytes; /* bytes the kernels stream per pass: codes + scales (+ shifts); floats: N*K*elt */
    cq_dtype weight_dtype; /* float weights: F32, F16 or BF16; CQ_DTYPE_INVALID otherwise */
} cq_mm_weight_info;
CQ_API void cq_mm_weight_get_info(const cq_mm_weight *w, cq_mm_weight_info *info);

/* Writes the canonical tensors back, byte for byte what cq_mm_weight_new read: data in the
 * form given by codes_unpacked, scale (and shift for qint2/4) in the scale dtype. Buffers
 * sized as in cq_mm_weight_src; shift may be NULL for 8-bit weights, scale and shift NULL for
 * float weights. */
CQ_API cq_status cq_mm_weight_unpack(const cq_mm_weight *w, bool codes_unpacked, void *data, void *scale,
                                     void *shift, cq_err *err);

typedef struct cq_matmul_opts {
    cq_matmul_mode mode; /* weight-only matmuls; ignored for W8A8 */
    float x_scale;       /* W8A8: the activations' per-tensor scale */
    const float *bias;   /* [N] or NULL */
    void *work;          /* scratch of at least cq_matmul_work_size() bytes (any alignment) */
    size_t work_size;
} cq_matmul_opts;
CQ_API cq_matmul_opts cq_matmul_default_opts(void); /* EXACT, x_scale 1, no bias, no scratch */

/* Scratch bytes cq_matmul needs for these arguments at the current cq_get_num_threads(). */
CQ_API size_t cq_matmul_work_size(const cq_mm_weight *w, int64_t M, cq_dtype x_dtype, cq_matmul_mode mode);

/* Y = X . W^T as above. x: M rows of K elements of x_dtype (CQ_I8 for W8A8, else F32 or
 * BF16), row stride ldx elements; y: M rows of N elements of y_dtype (F32, F16 or BF16), row
 * stride ldy. Multithreaded over output rows (cq_get_num_threads()); never allocates. */
CQ_API cq_status cq_matmul(const cq_mm_weight *w, int64_t M, const void *x, cq_dtype x_dtype, int64_t ldx,
                           void *y, cq_dtype y_dtype, int64_t ldy, const cq_matmul_opts *opts, cq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_KERNELS_H */
