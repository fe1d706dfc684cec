/*
 * test_dtype.c - dtype conversions: exhaustive f16/bf16 (65,536 patterns) and fp8 (256 per
 * format) decode and round trip, f32 -> each narrow type against torch's casts
 * (tests/data/golden/dtype_casts.safetensors: ties, subnormals, overflow, NaN/inf) and against
 * the compiler's _Float16 where it exists, cq_round_to_dtype, cq_load/store_f32, cq_convert
 * between all numeric dtypes (golden cases from torch plus error paths and thread counts).
 */
#include "test_quant_util.h"
#include "core/float_bits.h" /* cq__f32_bits, cq__bits_f32 */

#include <math.h>

/* Bit equality, except that any two NaNs of the same sign are equal (payloads are not
 * specified; docs/NUMERICS.md). */
static bool same_f32(float a, float b) {
    if (a != a || b != b) return a != a && b != b && signbit(a) == signbit(b);
    return cq__f32_bits(a) == cq__f32_bits(b);
}

/* Against torch, NaN signs are not compared either: torch's scalar tail loops and its
 * vectorized bodies disagree on them (a NaN in the last elements of a tensor can flip). */
static bool same_value(float a, float b) {
    if (a != a || b != b) return a != a && b != b;
    return cq__f32_bits(a) == cq__f32_bits(b);
}

/* ---- exhaustive 16-bit formats ---------------------------------------------------------- */

TST(dtype_f16_exhaustive_decode_and_round_trip) {
    int bad_decode = 0, bad_trip = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float v = cq_f16_to_f32((uint16_t)h);
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff, sign = h >> 15;
        /* Independent reference: sign * 2^(e-15) * (1 + m/1024), or subnormal/inf/NaN. */
        double ref = e == 0 ? ldexp((double)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024.0 + m, (int)e - 25);
        float want = (float)(sign ? -ref : ref);
        if (e == 31 && m) want = sign ? -NAN : NAN;
        if (!same_f32(v, want)) bad_decode++;
        uint16_t back = cq_f32_to_f16(v);
        if (e == 31 && m) {
            /* NaN stays NaN with its sign, made quiet. */
            if ((back & 0x7e00) != 0x7e00 || (back >> 15) != sign) bad_trip++;
        } else if (back != h) {
            bad_trip++;
        }
    }
    CHECKF(bad_decode == 0, "%d f16 patterns decode wrongly", bad_decode);
    CHECKF(bad_trip == 0, "%d f16 patterns do not round-trip", bad_trip);
}

#ifdef __FLT16_MAX__
/* GCC's _Float16 conversions (libgcc, round half to even) are an independent reference. */
TST(dtype_f16_matches_compiler_float16) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t b = (uint16_t)h;
        _Float16 x;
        memcpy(&x, &b, 2);
        if (!same_f32(cq_f16_to_f32(b), (float)x)) bad++;
    }
    /* f32 -> f16 over a stride of all f32 patterns (every 65,537th: all exponents, varied
     * mantissas) plus every tie between neighbouring f16 values. */
    for (uint64_t u = 0; u < ((uint64_t)1 << 32); u += 65537) {
        float f = cq__bits_f32((uint32_t)u);
        if (f != f) continue;
        _Float16 r = (_Float16)f;
        uint16_t want;
        memcpy(&want, &r, 2);
        if (cq_f32_to_f16(f) != want) bad++;
    }
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float mid = (cq_f16_to_f32((uint16_t)h) + cq_f16_to_f32((uint16_t)(h + 1))) / 2; /* exact */
        for (int s = 0; s < 2; s++) {
            float f = s ? -mid : mid;
            _Float16 r = (_Float16)f;
            uint16_t want;
            memcpy(&want, &r, 2);
            if (cq_f32_to_f16(f) != want) bad++;
        }
    }
    CHECKF(bad == 0, "%d conversions differ from _Float16", bad);
}

/* Every 5th f32 pattern (libgcc's software _Float16 makes all of them take minutes). */
TST_FULL(dtype_f16_f32_patterns_stride_5_match_compiler) {
    int64_t bad = 0;
    for (uint64_t u = 0; u < ((uint64_t)1 << 32); u += 5) {
        float f = cq__bits_f32((uint32_t)u);
        if (f != f) continue;
        _Float16 r = (_Float16)f;
        uint16_t want;
        memcpy(&want, &r, 2);
        bad += cq_f32_to_f16(f) != want;
    }
    CHECKF(bad == 0, "%lld f32 patterns convert differently from _Float16", (long long)bad);
}
#endif

TST(dtype_bf16_exhaustive_decode_and_round_trip) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float v = cq_bf16_to_f32((uint16_t)h);
        if (cq__f32_bits(v) != h << 16) bad++;
        uint16_t back = cq_f32_to_bf16(v);
        bool nan = ((h >> 7) & 0xff) == 0xff && (h & 0x7f);
        if (nan ? back != 0xffff : back != h) bad++;
    }
    CHECKF(bad == 0, "%d bf16 patterns fail", bad);
    /* Ties between bf16 neighbours go to even; one ulp above goes up. */
    int bad_ties = 0;
    for (uint32_t h = 0; h < 0x7f7f; h += 7) {
        uint32_t tie = (h << 16) | 0x8000;
        uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (cq_f32_to_bf16(cq__bits_f32(tie)) != want) bad_ties++;
        if (cq_f32_to_bf16(cq__bits_f32(tie + 1)) != h + 1) bad_ties++;
        if (cq_f32_to_bf16(cq__bits_f32(tie - 1)) != h) bad_ties++;
    }
    CHECKF(bad_ties == 0, "%d bf16 tie cases fail", bad_ties);
    CHECK(cq_f32_to_bf16(INFINITY) == 0x7f80 && cq_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(cq_f32_to_bf16(3.4028234663852886e38f) == 0x7f80); /* rounds past the largest bf16 */
}

/* ---- fp8 ----------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    cq_dtype dt;
    float (*decode)(uint8_t);
    uint8_t (*encode)(float);
} fp8_fmt;

static const fp8_fmt FP8[] = {
    {"f8_e4m3fn", CQ_F8_E4M3FN, cq_f8_e4m3fn_to_f32, cq_f32_to_f8_e4m3fn},
    {"f8_e5m2", CQ_F8_E5M2, cq_f8_e5m2_to_f32, cq_f32_to_f8_e5m2},
    {"f8_e4m3fnuz", CQ_F8_E4M3FNUZ, cq_f8_e4m3fnuz_to_f32, cq_f32_to_f8_e4m3fnuz},
};

TST(dtype_fp8_all_patterns_against_torch) {
    cq_st_file *f = golden_open("dtype_casts");
    if (!f) return;
    for (size_t k = 0; k < 3; k++) {
        const cq_tensor *table = golden_get(f, "decode.%s", FP8[k].name);
        if (!table) continue;
        const float *want = table->data;
        int bad_decode = 0, bad_trip = 0;
        for (int b = 0; b < 256; b++) {
            float v = FP8[k].decode((uint8_t)b);
            if (!same_value(v, want[b])) bad_decode++;
            /* Every non-NaN code round-trips; NaN codes come back as the format's NaN. */
            uint8_t back = FP8[k].encode(v);
            if (v == v ? back != b : !(FP8[k].decode(back) != FP8[k].decode(back))) bad_trip++;
        }
        CHECKF(bad_decode == 0, "%s: %d codes decode differently from torch", FP8[k].name, bad_decode);
        CHECKF(bad_trip == 0, "%s: %d codes do not round-trip", FP8[k].name, bad_trip);
    }
    /* Format facts. */
    CHECK(cq_f8_e4m3fn_to_f32(0x7e) == 448.0f && cq_f8_e5m2_to_f32(0x7b) == 57344.0f &&
          cq_f8_e4m3fnuz_to_f32(0x7f) == 240.0f);
    CHECK(cq_f32_to_f8_e4m3fnuz(-0.0f) == 0x00);           /* no negative zero */
    CHECK(cq_f32_to_f8_e4m3fn(INFINITY) == 0x7f);          /* no inf: NaN */
    CHECK(cq_f32_to_f8_e5m2(-INFINITY) == 0xfc);
    CHECK(cq_f32_to_f8_e4m3fn(464.0f) == 0x7e && cq_f32_to_f8_e4m3fn(465.0f) == 0x7f); /* tie to even, then NaN */
    CHECK(cq_f32_to_f8_e5m2(61439.0f) == 0x7b && cq_f32_to_f8_e5m2(61440.0f) == 0x7c);
    CHECK(cq_f32_to_f8_e4m3fnuz(247.0f) == 0x7f && cq_f32_to_f8_e4m3fnuz(248.0f) == 0x80);
    cq_st_close(f);
}

/* An independent fp8 encoder: nearest of the sorted finite values, ties to the even code, and
 * the value one step past the largest finite one standing for overflow (inf or NaN). */
typedef struct {
    float vals[129];
    uint8_t codes[129];
    int n;
} fp8_table;

static void fp8_table_build(const fp8_fmt *f, fp8_table *t) {
    t->n = 0;
    for (int b = 0; b < 128; b++) {
        float v = f->decode((uint8_t)b);
        if (v == v && v != INFINITY) t->vals[t->n] = v, t->codes[t->n] = (uint8_t)b, t->n++;
    }
    /* Values ascend with the code for non-negative fp8; add the first value out of range. */
    t->vals[t->n] = 2 * t->vals[t->n - 1] - t->vals[t->n - 2];
    t->codes[t->n] = (uint8_t)(t->codes[t->n - 1] + 1);
    t->n++;
}

static uint8_t fp8_reference(float x, const fp8_fmt *f, const fp8_table *t) {
    const float *vals = t->vals;
    const uint8_t *codes = t->codes;
    int n = t->n;
    uint8_t nan = f->dt == CQ_F8_E4M3FNUZ ? 0x80 : 0x7f;
    bool neg = signbit(x);
    float a = fabsf(x);
    if (a != a) return f->dt == CQ_F8_E4M3FNUZ ? 0x80 : (uint8_t)(nan | (neg ? 0x80 : 0));
    int lo = 0, hi = n; /* the last index with vals[lo] <= a */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (vals[mid] <= a) lo = mid;
        else hi = mid;
    }
    uint8_t c;
    if (lo == n - 1) c = codes[n - 1];
    else {
        float dl = a - vals[lo], dh = vals[lo + 1] - a; /* exact: neighbours within a binade */
        c = dl < dh ? codes[lo] : dh < dl ? codes[lo + 1] : (codes[lo] & 1) ? codes[lo + 1] : codes[lo];
    }
    if (c == codes[n - 1]) { /* overflow */
        if (f->dt == CQ_F8_E5M2) return (uint8_t)(0x7c | (neg ? 0x80 : 0));
        return f->dt == CQ_F8_E4M3FNUZ ? 0x80 : (uint8_t)(0x7f | (neg ? 0x80 : 0));
    }
    if (c == 0 && f->dt == CQ_F8_E4M3FNUZ) return 0;
    return (uint8_t)(c | (neg ? 0x80 : 0));
}

static int64_t fp8_against_reference(uint64_t stride) {
    int64_t bad = 0;
    for (size_t k = 0; k < 3; k++) {
        fp8_table t;
        fp8_table_build(&FP8[k], &t);
        for (uint64_t u = 0; u < ((uint64_t)1 << 32); u += stride) {
            float x = cq__bits_f32((uint32_t)u);
            bad += FP8[k].encode(x) != fp8_reference(x, &FP8[k], &t);
        }
    }
    return bad;
}

TST(dtype_fp8_encode_matches_nearest_even_reference) {
    int64_t bad = fp8_against_reference(65521);
    CHECKF(bad == 0, "%lld f32 patterns encode differently from the reference", (long long)bad);
}

TST_FULL(dtype_fp8_encode_f32_patterns_stride_7) {
    int64_t bad = fp8_against_reference(7);
    CHECKF(bad == 0, "%lld f32 patterns encode differently from the reference", (long long)bad);
}

/* ---- f32 -> narrow types against torch ---------------------------------------------------- */

TST(dtype_f32_casts_against_torch) {
    cq_st_file *f = golden_open("dtype_casts");
    if (!f) return;
    const cq_tensor *in = golden_get(f, "cast.in");
    const cq_tensor *h = golden_get(f, "cast.f16"), *b = golden_get(f, "cast.bf16");
    if (!in || !h || !b) return;
    const float *x = in->data;
    int64_t n = cq_tensor_numel(in);
    int bad16 = 0, badb = 0;
    for (int64_t i = 0; i < n; i++) {
        if (cq_f32_to_f16(x[i]) != ((const uint16_t *)h->data)[i]) {
            if (bad16++ < 3)
                CHECKF(false, "f16(%a) = 0x%04x, torch 0x%04x", (double)x[i], cq_f32_to_f16(x[i]),
                       ((const uint16_t *)h->data)[i]);
        }
        if (cq_f32_to_bf16(x[i]) != ((const uint16_t *)b->data)[i]) {
            if (badb++ < 3)
                CHECKF(false, "bf16(%a) = 0x%04x, torch 0x%04x", (double)x[i], cq_f32_to_bf16(x[i]),
                       ((const uint16_t *)b->data)[i]);
        }
    }
    CHECKF(bad16 == 0, "%d of %lld f16 casts differ from torch", bad16, (long long)n);
    CHECKF(badb == 0, "%d of %lld bf16 casts differ from torch", badb, (long long)n);
    for (size_t k = 0; k < 3; k++) {
        const cq_tensor *want = golden_get(f, "cast.%s", FP8[k].name);
        if (!want) continue;
        const uint8_t *w = want->data;
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            uint8_t got = FP8[k].encode(x[i]);
            if (got != w[i] && bad++ < 3)
                CHECKF(false, "%s(%a) = 0x%02x, torch 0x%02x", FP8[k].name, (double)x[i], got, w[i]);
        }
        CHECKF(bad == 0, "%s: %d of %lld casts differ from torch", FP8[k].name, bad, (long long)n);
    }
    /* f16/bf16 decode samples from torch. */
    const cq_tensor *codes = golden_get(f, "decode.f16.codes"), *d16 = golden_get(f, "decode.f16"),
                    *db = golden_get(f, "decode.bf16");
    if (codes && d16 && db) {
        int bad = 0;
        for (int64_t i = 0; i < cq_tensor_numel(codes); i++) {
            uint16_t c = (uint16_t)((const int16_t *)codes->data)[i];
            float w16 = ((const float *)d16->data)[i], wb = ((const float *)db->data)[i];
            if (!same_value(cq_f16_to_f32(c), w16) && bad++ < 3)
                CHECKF(false, "f16 0x%04x -> 0x%08x, torch 0x%08x", c, cq__f32_bits(cq_f16_to_f32(c)), cq__f32_bits(w16));
            if (!same_value(cq_bf16_to_f32(c), wb) && bad++ < 3)
                CHECKF(false, "bf16 0x%04x -> 0x%08x, torch 0x%08x", c, cq__f32_bits(cq_bf16_to_f32(c)), cq__f32_bits(wb));
        }
        CHECKF(bad == 0, "%d f16/bf16 decodes differ from torch", bad);
    }
    cq_st_close(f);
}

TST(dtype_round_to_dtype_is_decode_of_encode) {
    const float xs[] = {0.1f, -3.14159f, 1e-6f, 65519.0f, 65520.0f, 1e30f, 448.5f, 1e-9f, -0.0f, INFINITY};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        float x = xs[i];
        CHECK(same_f32(cq_round_to_dtype(x, CQ_F32), x));
        CHECK(same_f32(cq_round_to_dtype(x, CQ_F16), cq_f16_to_f32(cq_f32_to_f16(x))));
        CHECK(same_f32(cq_round_to_dtype(x, CQ_BF16), cq_bf16_to_f32(cq_f32_to_bf16(x))));
        for (size_t k = 0; k < 3; k++)
            CHECK(same_f32(cq_round_to_dtype(x, FP8[k].dt), FP8[k].decode(FP8[k].encode(x))));
    }
}

TST(dtype_load_store_f32) {
    uint8_t buf[64];
    const cq_dtype dts[] = {CQ_F32, CQ_F16, CQ_BF16, CQ_F8_E4M3FN, CQ_F8_E5M2, CQ_F8_E4M3FNUZ, CQ_F64,
                            CQ_I8, CQ_U8, CQ_I16, CQ_I32, CQ_I64, CQ_U16, CQ_U32, CQ_U64};
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        cq_store_f32(buf, dts[k], 3, 12.0f);
        CHECKF(cq_load_f32(buf, dts[k], 3) == 12.0f, "%s", cq_dtype_name(dts[k]));
    }
    cq_store_f32(buf, CQ_F16, 0, 0.1f);
    CHECK(cq_load_f32(buf, CQ_F16, 0) == cq_round_to_dtype(0.1f, CQ_F16));
    cq_store_f32(buf, CQ_I8, 0, 300.7f); /* saturates (torch: undefined) */
    CHECK(cq_load_f32(buf, CQ_I8, 0) == 127.0f);
    cq_store_f32(buf, CQ_U8, 0, NAN);
    CHECK(cq_load_f32(buf, CQ_U8, 0) == 0.0f);
    cq_store_f32(buf, CQ_BOOL, 0, -0.5f);
    CHECK(cq_load_f32(buf, CQ_BOOL, 0) == 1.0f);
}

/* ---- cq_convert -------------------------------------------------------------------------- */

static void check_convert(const cq_st_file *f, const char *src_name, const char *dst_name, int64_t n) {
    const cq_tensor *src = golden_get(f, "%s", src_name), *want = golden_get(f, "%s", dst_name);
    if (!src || !want) return;
    if (n < 0) n = cq_tensor_numel(want);
    cq_tensor *got = NULL;
    cq_err err = {0};
    CHECK(cq_tensor_new(&got, want->dtype, want->ndim, want->shape, &err) == CQ_OK);
    if (!got) return;
    CHECKF(cq_convert(src->data, src->dtype, got->data, want->dtype, n, &err) == CQ_OK, "%s", err.msg);
    /* Compare as values with NaN-tolerant bit equality. */
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t es = cq_dtype_size(want->dtype);
        bool eq = !memcmp((uint8_t *)got->data + i * es, (const uint8_t *)want->data + i * es, es);
        if (!eq && cq_dtype_is_float(want->dtype))
            eq = same_value(cq_load_f32(got->data, got->dtype, i), cq_load_f32(want->data, want->dtype, i));
        if (!eq && bad++ < 3)
            CHECKF(false, "%s -> %s element %lld: got %g want %g", src_name, dst_name, (long long)i,
                   (double)cq_load_f32(got->data, got->dtype, i), (double)cq_load_f32(want->data, want->dtype, i));
    }
    CHECKF(bad == 0, "%s -> %s: %d elements differ from torch", src_name, dst_name, bad);
    cq_tensor_free(got);
}

TST(dtype_convert_against_torch) {
    cq_st_file *f = golden_open("dtype_casts");
    if (!f) return;
    const char *f64_to[] = {"f32", "f16", "bf16", "f8_e4m3fn", "f8_e5m2"};
    char name[64];
    for (size_t i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "conv.f64_to_%s", f64_to[i]);
        check_convert(f, "conv.f64", name, -1);
    }
    const char *i64_to[] = {"f64", "f32", "f16", "bf16", "i32", "i16", "i8", "u8"};
    for (size_t i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "conv.i64_to_%s", i64_to[i]);
        check_convert(f, "conv.i64", name, -1);
    }
    const char *f32_to[] = {"i64", "i32", "i16", "i8", "u8", "bool"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "conv.f32i_to_%s", f32_to[i]);
        check_convert(f, "conv.f32i", name, -1);
    }
    check_convert(f, "conv.bf16", "conv.bf16_to_f16", -1);
    check_convert(f, "conv.bf16", "conv.bf16_to_f8_e4m3fn", -1);
    check_convert(f, "conv.f16", "conv.f16_to_bf16", -1);
    check_convert(f, "conv.f16", "conv.f16_to_f8_e5m2", -1);
    cq_st_close(f);
}

TST(dtype_convert_every_pair_round_trips_small_integers) {
    /* Values representable in every numeric dtype (e5m2 has 2 mantissa bits), so any
     * A -> B -> A must give them back. */
    static const float small[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16};
    enum { N = sizeof small / sizeof small[0] };
    for (int a = CQ_F32; a < CQ_DTYPE_COUNT; a++) {
        for (int b = CQ_F32; b < CQ_DTYPE_COUNT; b++) {
            float vals[N];
            uint8_t src[N * 8], mid[N * 8], back[N * 8];
            for (int i = 0; i < N; i++) vals[i] = (a == CQ_BOOL || b == CQ_BOOL) ? (float)(i & 1) : small[i];
            for (int i = 0; i < N; i++) cq_store_f32(src, (cq_dtype)a, i, vals[i]);
            cq_err err = {0};
            bool ok = cq_convert(src, (cq_dtype)a, mid, (cq_dtype)b, N, &err) == CQ_OK &&
                      cq_convert(mid, (cq_dtype)b, back, (cq_dtype)a, N, &err) == CQ_OK;
            int bad = 0;
            for (int i = 0; ok && i < N; i++) bad += cq_load_f32(back, (cq_dtype)a, i) != vals[i];
            CHECKF(ok && bad == 0, "%s -> %s -> %s: %s (%d bad)", cq_dtype_name((cq_dtype)a),
                   cq_dtype_name((cq_dtype)b), cq_dtype_name((cq_dtype)a), err.msg, bad);
        }
    }
}

TST(dtype_convert_errors) {
    float x[2] = {1, 2};
    uint16_t y[2];
    cq_err err = {0};
    CHECK(cq_convert(x, CQ_DTYPE_INVALID, y, CQ_F16, 2, &err) == CQ_E_DTYPE && strstr(err.msg, "source"));
    CHECK(cq_convert(x, CQ_F32, y, (cq_dtype)99, 2, &err) == CQ_E_DTYPE && strstr(err.msg, "destination"));
    CHECK(cq_convert(x, CQ_F32, y, CQ_F16, -1, &err) == CQ_E_ARG && strstr(err.msg, "negative"));
    CHECK(cq_convert(NULL, CQ_F32, y, CQ_F16, 2, &err) == CQ_E_ARG && strstr(err.msg, "NULL"));
    CHECK(cq_convert(NULL, CQ_F32, NULL, CQ_F16, 0, NULL) == CQ_OK);
}

TST(dtype_convert_threads_give_identical_bytes) {
    int64_t n = 300000;
    float *src = malloc((size_t)n * 4);
    uint16_t *a = malloc((size_t)n * 2), *b = malloc((size_t)n * 2);
    uint8_t *c = malloc((size_t)n), *d = malloc((size_t)n);
    uint32_t state = 12345;
    for (int64_t i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        src[i] = cq__bits_f32(state);
    }
    int saved = cq_get_num_threads();
    cq_set_num_threads(1);
    CHECK(cq_convert(src, CQ_F32, a, CQ_BF16, n, NULL) == CQ_OK);
    CHECK(cq_convert(src, CQ_F32, c, CQ_F8_E5M2, n, NULL) == CQ_OK);
    cq_set_num_threads(4);
    CHECK(cq_convert(src, CQ_F32, b, CQ_BF16, n, NULL) == CQ_OK);
    CHECK(cq_convert(src, CQ_F32, d, CQ_F8_E5M2, n, NULL) == CQ_OK);
    cq_set_num_threads(saved);
    CHECK_BYTES(a, b, (size_t)n * 2, "bf16 with 1 and 4 threads");
    CHECK_BYTES(c, d, (size_t)n, "e5m2 with 1 and 4 threads");
    free(src), free(a), free(b), free(c), free(d);
}
