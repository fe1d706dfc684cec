/*
 * dtype_convert.c - conversions between dtypes with PyTorch's cast semantics: f32 to f16,
 * bf16 and the three fp8 formats round half to even; f16/bf16/e5m2 overflow to inf;
 * e4m3fn/e4m3fnuz have no inf, so overflow and inf become NaN. Wider-to-narrow float casts go
 * through f32 as torch's do (f64 -> f32 -> f16). Float-to-integer casts truncate and
 * saturate (NaN -> 0), where torch is undefined. docs/NUMERICS.md has the edge cases.
 * The dtype table itself is in dtype.c; the 16-bit bit tricks are in float_bits.h.
 */
#include "internal.h"
#include "float_bits.h"

#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- fp8 -------------------------------------------------------------------------------
 * One codec for the three 8-bit formats, parametrised by mantissa bits and bias. They differ
 * in what lies beyond the largest finite code: e5m2 has inf (IEEE-like), e4m3fn uses 0x7f /
 * 0xff as NaN and has no inf, e4m3fnuz has a single NaN at 0x80 and no negative zero. */

typedef enum { FP8_IEEE, FP8_FN, FP8_FNUZ } fp8_kind;

typedef struct {
    int mbits, bias;
    uint32_t max_code; /* largest finite magnitude code */
    fp8_kind kind;
} fp8_format;

static const fp8_format FMT_E4M3FN = {3, 7, 0x7e, FP8_FN};
static const fp8_format FMT_E5M2 = {2, 15, 0x7b, FP8_IEEE};
static const fp8_format FMT_E4M3FNUZ = {3, 8, 0x7f, FP8_FNUZ};

static uint8_t fp8_nan(const fp8_format *f, uint32_t sign) {
    return f->kind == FP8_FNUZ ? 0x80 : (uint8_t)((sign << 7) | 0x7f);
}

static uint8_t fp8_encode(float x, const fp8_format *f) {
    uint32_t u = cq__f32_bits(x), sign = u >> 31, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return fp8_nan(f, sign);
    uint32_t shift = 23u - (uint32_t)f->mbits;
    uint32_t min_normal = (uint32_t)(127 - f->bias + 1) << 23;
    uint32_t mag;
    if (a < min_normal) {
        /* Subnormal: the code is |x| / 2^(1 - bias - mbits) rounded half to even; the
         * power-of-two scale is exact. */
        mag = (uint32_t)cq__rint(ldexpf(cq__bits_f32(a), f->bias - 1 + f->mbits));
    } else {
        uint32_t r = a + ((1u << (shift - 1)) - 1u) + ((a >> shift) & 1u);
        mag = (r >> shift) - ((uint32_t)(127 - f->bias) << f->mbits);
    }
    if (mag > f->max_code) return f->kind == FP8_IEEE ? (uint8_t)((sign << 7) | (f->max_code + 1)) : fp8_nan(f, sign);
    if (mag == 0 && f->kind == FP8_FNUZ) return 0;
    return (uint8_t)((sign << 7) | mag);
}

static float fp8_decode(uint8_t b, const fp8_format *f) {
    uint32_t sign = (uint32_t)(b >> 7) << 31, mag = b & 0x7fu;
    uint32_t mmask = (1u << f->mbits) - 1u;
    uint32_t e = mag >> f->mbits, m = mag & mmask;
    if (f->kind == FP8_FNUZ && b == 0x80) return cq__bits_f32(0x7fc00000u);
    if ((f->kind == FP8_FN && mag == 0x7f) || (f->kind == FP8_IEEE && e == (0x7fu >> f->mbits) && m))
        return cq__bits_f32(sign | 0x7fc00000u | (m << (23 - f->mbits)));
    if (f->kind == FP8_IEEE && mag == f->max_code + 1) return cq__bits_f32(sign | 0x7f800000u);
    float v = e == 0 ? ldexpf((float)m, 1 - f->bias - f->mbits)
                     : cq__bits_f32(((e + 127u - (uint32_t)f->bias) << 23) | (m << (23 - f->mbits)));
    return sign ? -v : v;
}

/* ---- exported scalar conversions -------------------------------------------------------- */

uint16_t cq_f32_to_f16(float x) { return cq__f32_to_f16_bits(x); }
float cq_f16_to_f32(uint16_t h) { return cq__f16_bits_to_f32(h); }
uint16_t cq_f32_to_bf16(float x) { return cq__f32_to_bf16_bits(x); }
float cq_bf16_to_f32(uint16_t h) { return cq__bf16_bits_to_f32(h); }
uint8_t cq_f32_to_f8_e4m3fn(float x) { return fp8_encode(x, &FMT_E4M3FN); }
float cq_f8_e4m3fn_to_f32(uint8_t b) { return fp8_decode(b, &FMT_E4M3FN); }
uint8_t cq_f32_to_f8_e5m2(float x) { return fp8_encode(x, &FMT_E5M2); }
float cq_f8_e5m2_to_f32(uint8_t b) { return fp8_decode(b, &FMT_E5M2); }
uint8_t cq_f32_to_f8_e4m3fnuz(float x) { return fp8_encode(x, &FMT_E4M3FNUZ); }
float cq_f8_e4m3fnuz_to_f32(uint8_t b) { return fp8_decode(b, &FMT_E4M3FNUZ); }

float cq_round_to_dtype(float x, cq_dtype t) {
    switch (t) {
    case CQ_F16: return cq__round_f16(x);
    case CQ_BF16: return cq__round_bf16(x);
    case CQ_F8_E4M3FN: return fp8_decode(fp8_encode(x, &FMT_E4M3FN), &FMT_E4M3FN);
    case CQ_F8_E5M2: return fp8_decode(fp8_encode(x, &FMT_E5M2), &FMT_E5M2);
    case CQ_F8_E4M3FNUZ: return fp8_decode(fp8_encode(x, &FMT_E4M3FNUZ), &FMT_E4M3FNUZ);
    default: return x; /* f32, and f64 which holds every f32 */
    }
}

/* ---- element access --------------------------------------------------------------------- */

/* Float to integer: truncation toward zero, saturating at the target's range, NaN -> 0
 * (torch leaves out-of-range casts undefined; in range they agree). */
static int64_t sat_i64(double v, double lo, double hi) {
    if (v != v) return 0;
    if (v <= lo) return (int64_t)lo;
    if (v >= hi) return (int64_t)hi;
    return (int64_t)v;
}

static uint64_t sat_u64(double v, double hi) {
    if (!(v > 0)) return 0; /* NaN, negatives */
    if (v >= hi) return (uint64_t)hi;
    return (uint64_t)v;
}

/* Values are carried between any two dtypes in one of three forms, chosen by the source, so
 * integers never pass through a float and floats round only where torch's casts do. */
typedef enum { VAL_F64, VAL_I64, VAL_U64 } val_kind;
typedef struct {
    val_kind kind;
    double f;
    int64_t i;
    uint64_t u;
} any_val;

static any_val load_any(const void *data, cq_dtype t, int64_t i) {
    any_val v = {VAL_I64, 0, 0, 0};
    switch (t) {
    case CQ_F32: v.kind = VAL_F64, v.f = ((const float *)data)[i]; break;
    case CQ_F16: v.kind = VAL_F64, v.f = cq__f16_bits_to_f32(((const uint16_t *)data)[i]); break;
    case CQ_BF16: v.kind = VAL_F64, v.f = cq__bf16_bits_to_f32(((const uint16_t *)data)[i]); break;
    case CQ_F8_E4M3FN: v.kind = VAL_F64, v.f = fp8_decode(((const uint8_t *)data)[i], &FMT_E4M3FN); break;
    case CQ_F8_E5M2: v.kind = VAL_F64, v.f = fp8_decode(((const uint8_t *)data)[i], &FMT_E5M2); break;
    case CQ_F8_E4M3FNUZ: v.kind = VAL_F64, v.f = fp8_decode(((const uint8_t *)data)[i], &FMT_E4M3FNUZ); break;
    case CQ_F64: v.kind = VAL_F64, v.f = ((const double *)data)[i]; break;
    case CQ_I8: v.i = ((const int8_t *)data)[i]; break;
    case CQ_U8: v.i = ((const uint8_t *)data)[i]; break;
    case CQ_I16: v.i = ((const int16_t *)data)[i]; break;
    case CQ_I32: v.i = ((const int32_t *)data)[i]; break;
    case CQ_I64: v.i = ((const int64_t *)data)[i]; break;
    case CQ_U16: v.i = ((const uint16_t *)data)[i]; break;
    case CQ_U32: v.i = ((const uint32_t *)data)[i]; break;
    case CQ_U64: v.kind = VAL_U64, v.u = ((const uint64_t *)data)[i]; break;
    case CQ_BOOL: v.i = ((const uint8_t *)data)[i] != 0; break;
    default: break;
    }
    return v;
}

/* A float value for a float destination: f64 is kept for F64, everything else goes through
 * f32 first, as c10's casts do (so f64 -> f16 can round twice, like torch). */
static float to_f32(any_val v) {
    switch (v.kind) {
    case VAL_F64: return (float)v.f;
    case VAL_I64: return (float)v.i;
    default: return (float)v.u;
    }
}

static void store_any(void *data, cq_dtype t, int64_t i, any_val v) {
    /* Integer destinations: C's modular conversion from the integer forms (what torch does),
     * truncation with saturation from floats. */
    int64_t iv = 0;
    uint64_t uv = 0;
    bool to_int = !cq_dtype_is_float(t);
    if (to_int) {
        if (v.kind == VAL_I64) iv = v.i, uv = (uint64_t)v.i;
        else if (v.kind == VAL_U64) iv = (int64_t)v.u, uv = v.u;
    }
    switch (t) {
    case CQ_F32: ((float *)data)[i] = to_f32(v); return;
    case CQ_F16: ((uint16_t *)data)[i] = cq__f32_to_f16_bits(to_f32(v)); return;
    case CQ_BF16: ((uint16_t *)data)[i] = cq__f32_to_bf16_bits(to_f32(v)); return;
    case CQ_F8_E4M3FN: ((uint8_t *)data)[i] = fp8_encode(to_f32(v), &FMT_E4M3FN); return;
    case CQ_F8_E5M2: ((uint8_t *)data)[i] = fp8_encode(to_f32(v), &FMT_E5M2); return;
    case CQ_F8_E4M3FNUZ: ((uint8_t *)data)[i] = fp8_encode(to_f32(v), &FMT_E4M3FNUZ); return;
    case CQ_F64:
        ((double *)data)[i] = v.kind == VAL_F64 ? v.f : v.kind == VAL_I64 ? (double)v.i : (double)v.u;
        return;
    case CQ_BOOL:
        ((uint8_t *)data)[i] = v.kind == VAL_F64 ? v.f != 0 : v.kind == VAL_I64 ? v.i != 0 : v.u != 0;
        return;
    default: break;
    }
    if (v.kind == VAL_F64) {
        switch (t) {
        case CQ_I8: iv = sat_i64(v.f, INT8_MIN, INT8_MAX); break;
        case CQ_U8: iv = sat_i64(v.f, 0, UINT8_MAX); break;
        case CQ_I16: iv = sat_i64(v.f, INT16_MIN, INT16_MAX); break;
        case CQ_U16: iv = sat_i64(v.f, 0, UINT16_MAX); break;
        case CQ_I32: iv = sat_i64(v.f, INT32_MIN, INT32_MAX); break;
        case CQ_U32: iv = sat_i64(v.f, 0, UINT32_MAX); break;
        /* 2^63 and 2^64 are the first doubles out of range. */
        case CQ_I64: iv = v.f != v.f ? 0 : v.f >= 0x1p63 ? INT64_MAX : v.f <= -0x1p63 ? INT64_MIN : (int64_t)v.f; break;
        case CQ_U64: uv = v.f >= 0x1p64 ? UINT64_MAX : sat_u64(v.f, 0x1p64); break;
        default: break;
        }
        if (t != CQ_U64) uv = (uint64_t)iv;
    }
    switch (t) {
    case CQ_I8: ((int8_t *)data)[i] = (int8_t)uv; break;
    case CQ_U8: ((uint8_t *)data)[i] = (uint8_t)uv; break;
    case CQ_I16: ((int16_t *)data)[i] = (int16_t)uv; break;
    case CQ_U16: ((uint16_t *)data)[i] = (uint16_t)uv; break;
    case CQ_I32: ((int32_t *)data)[i] = (int32_t)uv; break;
    case CQ_U32: ((uint32_t *)data)[i] = (uint32_t)uv; break;
    case CQ_I64: ((int64_t *)data)[i] = (int64_t)uv; break;
    case CQ_U64: ((uint64_t *)data)[i] = uv; break;
    default: break;
    }
}

float cq_load_f32(const void *data, cq_dtype t, int64_t i) {
    if (!data) return 0.0f;
    switch (t) {
    case CQ_F32: return ((const float *)data)[i];
    case CQ_F16: return cq__f16_bits_to_f32(((const uint16_t *)data)[i]);
    case CQ_BF16: return cq__bf16_bits_to_f32(((const uint16_t *)data)[i]);
    default: return to_f32(load_any(data, t, i));
    }
}

void cq_store_f32(void *data, cq_dtype t, int64_t i, float v) {
    if (!data) return;
    switch (t) {
    case CQ_F32: ((float *)data)[i] = v; return;
    case CQ_F16: ((uint16_t *)data)[i] = cq__f32_to_f16_bits(v); return;
    case CQ_BF16: ((uint16_t *)data)[i] = cq__f32_to_bf16_bits(v); return;
    default: store_any(data, t, i, (any_val){VAL_F64, v, 0, 0}); return;
    }
}

/* ---- bulk conversion -------------------------------------------------------------------- */

/* Large conversions are split into fixed chunks across threads; each element is
 * independent, so the thread count cannot change the result. */
#define CONVERT_CHUNK ((int64_t)1 << 16)

static void convert_range(const void *src, cq_dtype st, void *dst, cq_dtype dt, int64_t lo, int64_t hi) {
    if (st == CQ_BF16 && dt == CQ_F32) {
        const uint16_t *s = src;
        float *d = dst;
        for (int64_t i = lo; i < hi; i++) d[i] = cq__bf16_bits_to_f32(s[i]);
    } else if (st == CQ_F32 && dt == CQ_BF16) {
        const float *s = src;
        uint16_t *d = dst;
        for (int64_t i = lo; i < hi; i++) d[i] = cq__f32_to_bf16_bits(s[i]);
    } else if (st == CQ_F16 && dt == CQ_F32) {
        const uint16_t *s = src;
        float *d = dst;
        for (int64_t i = lo; i < hi; i++) d[i] = cq__f16_bits_to_f32(s[i]);
    } else if (st == CQ_F32 && dt == CQ_F16) {
        const float *s = src;
        uint16_t *d = dst;
        for (int64_t i = lo; i < hi; i++) d[i] = cq__f32_to_f16_bits(s[i]);
    } else {
        for (int64_t i = lo; i < hi; i++) store_any(dst, dt, i, load_any(src, st, i));
    }
}

cq_status cq_convert(const void *src, cq_dtype st, void *dst, cq_dtype dt, int64_t n, cq_err *err) {
    if (st <= CQ_DTYPE_INVALID || st >= CQ_DTYPE_COUNT)
        return cq_err_set(err, CQ_E_DTYPE, "cq_convert: invalid source dtype %d", (int)st);
    if (dt <= CQ_DTYPE_INVALID || dt >= CQ_DTYPE_COUNT)
        return cq_err_set(err, CQ_E_DTYPE, "cq_convert: invalid destination dtype %d", (int)dt);
    if (n < 0) return cq_err_set(err, CQ_E_ARG, "cq_convert: negative element count %lld", (long long)n);
    if (n == 0) return CQ_OK;
    if (!src || !dst) return cq_err_set(err, CQ_E_ARG, "cq_convert: NULL buffer");
    if (st == dt) {
        memmove(dst, src, (size_t)n * cq_dtype_size(st));
        return CQ_OK;
    }
    int64_t chunks = (n + CONVERT_CHUNK - 1) / CONVERT_CHUNK;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * CONVERT_CHUNK, hi = lo + CONVERT_CHUNK < n ? lo + CONVERT_CHUNK : n;
        convert_range(src, st, dst, dt, lo, hi);
    }
    return CQ_OK;
}
