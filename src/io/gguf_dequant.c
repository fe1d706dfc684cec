/*
 * gguf_dequant.c - ggml's tensor types (name, block size, bytes per block) and their
 * dequantization to f32, bit-exact with the gguf Python package (gguf-py 0.17.1,
 * gguf/quants.py, numpy 2.2.4).
 *
 * Bit-exact means: the same float32 operations in the same order as numpy evaluates them.
 * quants.py converts every f16 scale to float32 first, builds the integer code in integer types,
 * converts it to float32, and then applies one ufunc at a time: `d * q` (Q4_0, Q5_0, Q8_0, Q3_K,
 * Q6_K), `d * q + m` (Q4_1, Q5_1) and `dl * q - ml` (the K types, where dl = d * sub-block scale
 * and ml = dmin * sub-block min are themselves float32 products). Each ufunc rounds to float32,
 * so C computing the same expressions with -ffp-contract=off (no fused multiply-add, which would
 * skip a rounding) gives the same bits. numpy never widens to float64 here (every operand is
 * float32 or an integer array cast to float32 first). The element orders below are those of
 * quants.py's reshapes, written out as index arithmetic.
 *
 * One difference from core/float_bits.h: numpy's f16 -> f32 keeps a NaN's payload without
 * setting the quiet bit (npy_halfbits_to_floatbits), while cq__f16_bits_to_f32 quiets it as
 * torch does; an F16 tensor dequantized here must match numpy, so it has its own conversion.
 * NaN scales inside quantized blocks give NaN, but which payload survives a float operation
 * between two NaNs is the hardware's choice, so only non-NaN scales are promised bit-exact.
 *
 * Scalar code on purpose: this runs once per tensor at load time, and every loop is a tight
 * pass over one block with no calls through tables.
 */
#include "core/float_bits.h"
#include "io/io_internal.h"

#include <inttypes.h>

/* ---- the type table ----------------------------------------------------------------------
 * ggml.c's type_traits (blck_size, type_size) for every code ggml defines, with the names the
 * gguf Python package gives them (GGMLQuantizationType: "Q4_K", "BF16"). Codes ggml removed
 * (4, 5, 31-33, 36-38) have no entry: block size 0, which gguf.cpp also rejects in a file.
 * From llama.cpp's ggml (the one vendored by llama-cpp-python 0.3.36), whose gguf.cpp accepts
 * codes below GGML_TYPE_COUNT = 43. */
typedef struct ggml_traits {
    const char *name;
    int32_t block;  /* elements per block */
    uint16_t bytes; /* bytes per block */
} ggml_traits;

static const ggml_traits g_types[] = {
    [CQ_GGML_F32] = {"F32", 1, 4},          [CQ_GGML_F16] = {"F16", 1, 2},
    [CQ_GGML_Q4_0] = {"Q4_0", 32, 18},      [CQ_GGML_Q4_1] = {"Q4_1", 32, 20},
    [CQ_GGML_Q5_0] = {"Q5_0", 32, 22},      [CQ_GGML_Q5_1] = {"Q5_1", 32, 24},
    [CQ_GGML_Q8_0] = {"Q8_0", 32, 34},      [CQ_GGML_Q8_1] = {"Q8_1", 32, 36},
    [CQ_GGML_Q2_K] = {"Q2_K", 256, 84},     [CQ_GGML_Q3_K] = {"Q3_K", 256, 110},
    [CQ_GGML_Q4_K] = {"Q4_K", 256, 144},    [CQ_GGML_Q5_K] = {"Q5_K", 256, 176},
    [CQ_GGML_Q6_K] = {"Q6_K", 256, 210},    [CQ_GGML_Q8_K] = {"Q8_K", 256, 292},
    [16] = {"IQ2_XXS", 256, 66},            [17] = {"IQ2_XS", 256, 74},
    [18] = {"IQ3_XXS", 256, 98},            [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},              [21] = {"IQ3_S", 256, 110},
    [22] = {"IQ2_S", 256, 82},              [23] = {"IQ4_XS", 256, 136},
    [CQ_GGML_I8] = {"I8", 1, 1},            [CQ_GGML_I16] = {"I16", 1, 2},
    [CQ_GGML_I32] = {"I32", 1, 4},          [CQ_GGML_I64] = {"I64", 1, 8},
    [CQ_GGML_F64] = {"F64", 1, 8},          [29] = {"IQ1_M", 256, 56},
    [CQ_GGML_BF16] = {"BF16", 1, 2},        [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},              [39] = {"MXFP4", 32, 17},
    [40] = {"NVFP4", 64, 36},               [41] = {"Q1_0", 128, 18},
    [42] = {"Q2_0", 64, 18},
};

static const ggml_traits *traits(int type) {
    return type >= 0 && (size_t)type < CQ_ARRAY_LEN(g_types) && g_types[type].name ? &g_types[type] : NULL;
}

const char *cq_ggml_type_name(int type) {
    const ggml_traits *t = traits(type);
    return t ? t->name : NULL;
}

int64_t cq_ggml_block_size(int type) {
    const ggml_traits *t = traits(type);
    return t ? t->block : 0;
}

size_t cq_ggml_type_size(int type) {
    const ggml_traits *t = traits(type);
    return t ? t->bytes : 0;
}

bool cq_ggml_can_dequantize(int type) {
    switch (type) {
    case CQ_GGML_F32: case CQ_GGML_F16: case CQ_GGML_BF16: case CQ_GGML_Q4_0: case CQ_GGML_Q4_1:
    case CQ_GGML_Q5_0: case CQ_GGML_Q5_1: case CQ_GGML_Q8_0: case CQ_GGML_Q2_K: case CQ_GGML_Q3_K:
    case CQ_GGML_Q4_K: case CQ_GGML_Q5_K: case CQ_GGML_Q6_K:
        return true;
    default:
        return false;
    }
}

/* ---- loads (the bytes of a mapping need not be aligned; the file is little-endian) ------------ */

static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (unsigned)p[1] << 8); }
static inline uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* numpy's float16 -> float32 (see the top): exact, and a NaN keeps its bits. */
static inline float f16_np(uint16_t h) {
    if ((h & 0x7c00u) == 0x7c00u)
        return cq__bits_f32((uint32_t)(h & 0x8000u) << 16 | 0x7f800000u | (uint32_t)(h & 0x3ffu) << 13);
    return cq__f16_bits_to_f32(h);
}
static inline float scale16(const uint8_t *p) { return f16_np(ld16(p)); }

/* ---- one block each ---------------------------------------------------------------------------- */

/* Q4_0: f16 d, 16 bytes of nibbles; element j is the low nibble of byte j, j + 16 its high one. */
static void block_q4_0(const uint8_t *b, float *y) {
    float d = scale16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((qs[j] & 0x0F) - 8);
        y[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

/* Q4_1: f16 d, f16 m, nibbles as Q4_0; d * q + m. */
static void block_q4_1(const uint8_t *b, float *y) {
    float d = scale16(b), m = scale16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(qs[j] & 0x0F) + m;
        y[j + 16] = d * (float)(qs[j] >> 4) + m;
    }
}

/* Q5_0: f16 d, u32 of fifth bits (bit j for element j), nibbles as Q4_0; codes - 16. */
static void block_q5_0(const uint8_t *b, float *y) {
    float d = scale16(b);
    uint32_t qh = ld32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0F) | (int)((qh >> j) & 1u) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

/* Q5_1: f16 d, f16 m, fifth bits and nibbles as Q5_0; d * q + m. */
static void block_q5_1(const uint8_t *b, float *y) {
    float d = scale16(b), m = scale16(b + 2);
    uint32_t qh = ld32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0F) | (int)((qh >> j) & 1u) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1u) << 4;
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

/* Q8_0: f16 d, 32 int8 codes; quants.py computes x * d. */
static void block_q8_0(const uint8_t *b, float *y) {
    float d = scale16(b);
    const int8_t *x = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = (float)x[j] * d;
}

/* Q2_K: 16 bytes of (min << 4 | scale) per 16 elements, 64 bytes of 2-bit codes, f16 d, f16
 * dmin. Code of element 128 h + 32 s + l: bits 2s..2s+1 of qs[32 h + l]. dl * q - ml. */
static void block_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *qs = b + 16;
    float d = scale16(b + 80), dmin = scale16(b + 82);
    float dl[16], ml[16];
    for (int g = 0; g < 16; g++) {
        dl[g] = d * (float)(sc[g] & 0x0F);
        ml[g] = dmin * (float)(sc[g] >> 4);
    }
    for (int e = 0; e < 256; e++) {
        int q = (qs[(e >> 7) * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
        y[e] = dl[e >> 4] * (float)q - ml[e >> 4];
    }
}

/* Q3_K: 32 bytes of high-bit masks, 64 bytes of 2-bit codes (Q2_K's order), 12 bytes of 6-bit
 * scales, f16 d. Scale k: low 4 bits from byte k (k < 8) or the high nibble of byte k - 8, high 2
 * bits from byte 8 + k % 4 at bit 2 (k / 4); minus 32. Element e's mask bit is bit e / 32 of
 * hmask[e % 32], and a clear bit subtracts 4. */
static void block_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
    float d = scale16(b + 108);
    float dl[16];
    for (int k = 0; k < 16; k++) {
        int lo = (k < 8 ? sc[k] : sc[k - 8] >> 4) & 0x0F;
        int hi = (sc[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
        dl[k] = d * (float)((lo | hi << 4) - 32);
    }
    for (int e = 0; e < 256; e++) {
        int ql = (qs[(e >> 7) * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
        int h = (hmask[e & 31] >> (e >> 5)) & 1;
        y[e] = dl[e >> 4] * (float)(ql - ((h ^ 1) << 2));
    }
}

/* Q4_K and Q5_K open with f16 d, f16 dmin and 12 bytes of 6-bit scales and mins (quants.py's
 * Q4_K.get_scale_min); per sub-block of 32, dl = d * scale and ml = dmin * min. */
static void k_sub_blocks(const uint8_t *b, float dl[8], float ml[8]) {
    float d = scale16(b), dmin = scale16(b + 2);
    const uint8_t *s = b + 4;
    for (int j = 0; j < 4; j++) {
        dl[j] = d * (float)(s[j] & 0x3F);
        ml[j] = dmin * (float)(s[j + 4] & 0x3F);
        dl[j + 4] = d * (float)((s[j + 8] & 0x0F) | ((s[j] >> 2) & 0x30));
        ml[j + 4] = dmin * (float)((s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30));
    }
}

/* Q4_K: the sub-block header above, then 128 bytes of nibbles: element 64 c + 32 s + l is nibble
 * s of qs[32 c + l], in sub-block e / 32. */
static void block_q4_k(const uint8_t *b, float *y) {
    const uint8_t *qs = b + 16;
    float dl[8], ml[8];
    k_sub_blocks(b, dl, ml);
    for (int e = 0; e < 256; e++) {
        int q = (qs[(e >> 6) * 32 + (e & 31)] >> (4 * ((e >> 5) & 1))) & 0x0F;
        y[e] = dl[e >> 5] * (float)q - ml[e >> 5];
    }
}

/* Q5_K: Q4_K plus 32 bytes of fifth bits before the nibbles: bit e / 32 of qh[e % 32]. */
static void block_q5_k(const uint8_t *b, float *y) {
    const uint8_t *qh = b + 16, *qs = b + 48;
    float dl[8], ml[8];
    k_sub_blocks(b, dl, ml);
    for (int e = 0; e < 256; e++) {
        int q = ((qs[(e >> 6) * 32 + (e & 31)] >> (4 * ((e >> 5) & 1))) & 0x0F) | ((qh[e & 31] >> (e >> 5)) & 1) << 4;
        y[e] = dl[e >> 5] * (float)q - ml[e >> 5];
    }
}

/* Q6_K: 128 bytes of low nibbles (element 128 h + 64 s + l: nibble s of ql[64 h + l]), 64 bytes
 * of high 2-bit pairs (element 128 h + 32 s + l: bits 2s of qh[32 h + l]), 16 int8 scales, f16
 * d; codes - 32, scale per 16 elements. */
static void block_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = scale16(b + 208);
    float dl[16];
    for (int k = 0; k < 16; k++) dl[k] = d * (float)sc[k];
    for (int e = 0; e < 256; e++) {
        int h = e >> 7;
        int lo = (ql[h * 64 + (e & 63)] >> (4 * ((e >> 6) & 1))) & 0x0F;
        int hi = (qh[h * 32 + (e & 31)] >> (2 * ((e >> 5) & 3))) & 3;
        y[e] = dl[e >> 4] * (float)((lo | hi << 4) - 32);
    }
}

typedef void (*block_fn)(const uint8_t *b, float *y);

static block_fn block_fn_of(int type) {
    switch (type) {
    case CQ_GGML_Q4_0: return block_q4_0;
    case CQ_GGML_Q4_1: return block_q4_1;
    case CQ_GGML_Q5_0: return block_q5_0;
    case CQ_GGML_Q5_1: return block_q5_1;
    case CQ_GGML_Q8_0: return block_q8_0;
    case CQ_GGML_Q2_K: return block_q2_k;
    case CQ_GGML_Q3_K: return block_q3_k;
    case CQ_GGML_Q4_K: return block_q4_k;
    case CQ_GGML_Q5_K: return block_q5_k;
    case CQ_GGML_Q6_K: return block_q6_k;
    default: return NULL;
    }
}

cq_status cq_ggml_dequantize(int type, const void *src, int64_t n, float *dst, cq_err *err) {
    CQ__ARG(src);
    CQ__ARG(dst);
    const ggml_traits *t = traits(type);
    if (!t) return cq_err_set(err, CQ_E_ARG, "cq_ggml_dequantize: %d is not a ggml type", type);
    if (!cq_ggml_can_dequantize(type))
        return cq_err_set(err, CQ_E_UNSUPPORTED, "cq_ggml_dequantize: ggml type %s cannot be dequantized by cquanto",
                          t->name);
    if (n < 0 || n % t->block)
        return cq_err_set(err, CQ_E_ARG, "cq_ggml_dequantize: %" PRId64 " elements is not a multiple of %s's block of %d",
                          n, t->name, (int)t->block);
    const uint8_t *s = src;
    switch (type) {
    case CQ_GGML_F32:
        memcpy(dst, s, (size_t)n * 4);
        return CQ_OK;
    case CQ_GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = f16_np(ld16(s + 2 * i));
        return CQ_OK;
    case CQ_GGML_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = cq__bits_f32((uint32_t)ld16(s + 2 * i) << 16);
        return CQ_OK;
    default:
        break;
    }
    /* One indirect call per block of 32 or 256 elements, not per element. */
    block_fn f = block_fn_of(type);
    for (int64_t k = 0, nb = n / t->block; k < nb; k++) f(s + k * t->bytes, dst + k * t->block);
    return CQ_OK;
}
