/*
 * test_kernels_vec.c - the elementwise kernels: every ISA level's variant against the
 * reference, bit for bit, on exhaustive 8- and 16-bit inputs, a sweep of f32 bit patterns
 * with the special values, every length up to 2 vectors + 1 (tails), misaligned pointers and
 * canaries after outputs; plus the public cq_vec_* wrappers. Needs only core + kernels.
 */
#include "test_kernels_util.h"

#include <math.h>

/* f32 inputs: specials, ties and boundaries of every format, then a strided sweep of all bit
 * patterns (the full 2^32 sweep is TST_FULL). */
static float *f32_inputs(int64_t *n, uint32_t stride) {
    static const uint32_t specials[] = {
        0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fffffff,
        0x00000001, 0x007fffff, 0x00800000, 0x3f800000, 0x3f808000, 0x3f818000, 0x3f807fff, 0x477fe000,
        0x477ff000, 0x477fefff, 0x38800000, 0x387fffff, 0x33800000, 0x33000000, 0x43e00000, 0x43e80000,
        0x43f00000, 0x43efffff, 0x3c800000, 0x3b000000, 0x3a800000, 0x47600000, 0x47700000, 0x37800000,
        0x36800000, 0x36000000, 0x7f7fffff, 0xc3e00000, 0xbf800000, 0x4b000000, 0x4b000001, 0x3fc00000};
    int64_t ns = (int64_t)CQ_ARRAY_LEN(specials), nsweep = (int64_t)(0x100000000ull / stride);
    float *v = malloc((size_t)(ns + nsweep) * sizeof(float));
    for (int64_t i = 0; i < ns; i++) v[i] = cq__bits_f32(specials[i]);
    for (int64_t i = 0; i < nsweep; i++) v[ns + i] = cq__bits_f32((uint32_t)((uint64_t)i * stride + 12345u));
    *n = ns + nsweep;
    return v;
}

typedef void (*f32_to_u16)(const float *, uint16_t *, int64_t);
typedef void (*u16_to_f32)(const uint16_t *, float *, int64_t);
typedef void (*f32_to_u8)(const float *, uint8_t *, int64_t);
typedef void (*u8_to_f32)(const uint8_t *, float *, int64_t);

/* Runs kernel k (of op `field`) over the same inputs at every offset 0..2 and every length
 * 0..33 (tails), then the whole array, comparing bytes with the reference and checking the
 * canaries. */
#define CHECK_CONVERT(k, field, in, n, in_t, out_t)                                                        \
    do {                                                                                                   \
        out_t *want = malloc((size_t)(n) * sizeof(out_t) + 1);                                             \
        REF_VEC(field)(in, want, n);                                                                       \
        kbuf got = kbuf_new((size_t)(n) * sizeof(out_t), sizeof(out_t));                                   \
        (k)->fn.field(in, (out_t *)got.p, n);                                                              \
        CHECKF(!memcmp(got.p, want, (size_t)(n) * sizeof(out_t)) && kbuf_canaries_ok(&got), "%s", (k)->name); \
        if (memcmp(got.p, want, (size_t)(n) * sizeof(out_t)))                                              \
            for (int64_t i_ = 0; i_ < (n); i_++)                                                           \
                if (memcmp(got.p + i_ * sizeof(out_t), want + i_, sizeof(out_t))) {                        \
                    printf("    first difference at %lld\n", (long long)i_);                              \
                    break;                                                                                 \
                }                                                                                          \
        kbuf_free(&got);                                                                                   \
        for (int len = 0; len <= 33; len++)                                                                \
            for (int off = 0; off < 3; off++) {                                                            \
                kbuf t = kbuf_new((size_t)len * sizeof(out_t), (size_t)off * sizeof(out_t));               \
                (k)->fn.field((in) + off, (out_t *)t.p, len);                                              \
                REF_VEC(field)((in) + off, want, len);                                                     \
                CHECKF(!memcmp(t.p, want, (size_t)len * sizeof(out_t)) && kbuf_canaries_ok(&t),            \
                       "%s len %d off %d", (k)->name, len, off);                                           \
                kbuf_free(&t);                                                                             \
            }                                                                                              \
        free(want);                                                                                        \
    } while (0)

static void check_conversions(uint32_t stride) {
    int64_t nf;
    float *f = f32_inputs(&nf, stride);
    uint16_t *h = malloc(65536 * sizeof(uint16_t) + 64);
    uint8_t b[256 + 64];
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int i = 0; i < 256; i++) b[i] = (uint8_t)i;
    FOR_EACH_VEC_KERNEL(k, f32_to_f16) CHECK_CONVERT(k, f32_to_f16, f, nf, float, uint16_t);
    FOR_EACH_VEC_KERNEL(k, f32_to_bf16) CHECK_CONVERT(k, f32_to_bf16, f, nf, float, uint16_t);
    FOR_EACH_VEC_KERNEL(k, f32_to_e4m3) CHECK_CONVERT(k, f32_to_e4m3, f, nf, float, uint8_t);
    FOR_EACH_VEC_KERNEL(k, f32_to_e5m2) CHECK_CONVERT(k, f32_to_e5m2, f, nf, float, uint8_t);
    FOR_EACH_VEC_KERNEL(k, f16_to_f32) CHECK_CONVERT(k, f16_to_f32, h, 65536, uint16_t, float);
    FOR_EACH_VEC_KERNEL(k, bf16_to_f32) CHECK_CONVERT(k, bf16_to_f32, h, 65536, uint16_t, float);
    FOR_EACH_VEC_KERNEL(k, e4m3_to_f32) CHECK_CONVERT(k, e4m3_to_f32, b, 256, uint8_t, float);
    FOR_EACH_VEC_KERNEL(k, e5m2_to_f32) CHECK_CONVERT(k, e5m2_to_f32, b, 256, uint8_t, float);
    CHECK(REF_VEC(f32_to_f16) != NULL); /* something is asserted where only the reference runs */
    free(f);
    free(h);
}

TST(kernel_vec_conversions_match_ref) { check_conversions(65537); }

/* Every f32 bit pattern through the four f32 -> narrow conversions, in 16 M chunks. */
TST_FULL(kernel_vec_conversions_match_ref_all_f32) {
    const int64_t chunk = (int64_t)1 << 24;
    float *f = malloc((size_t)chunk * sizeof(float));
    uint16_t *want16 = malloc((size_t)chunk * 2), *got16 = malloc((size_t)chunk * 2);
    uint8_t *want8 = malloc((size_t)chunk), *got8 = malloc((size_t)chunk);
    long *bad = calloc((size_t)cq__kernel_count(), sizeof(long)); /* chunks differing, per kernel index */
    for (uint64_t base = 0; base < 0x100000000ull; base += (uint64_t)chunk) {
        for (int64_t i = 0; i < chunk; i++) f[i] = cq__bits_f32((uint32_t)(base + (uint64_t)i));
        REF_VEC(f32_to_f16)(f, want16, chunk);
        FOR_EACH_VEC_KERNEL(k, f32_to_f16) k->fn.f32_to_f16(f, got16, chunk), bad[kernel_index(k)] += !!memcmp(got16, want16, (size_t)chunk * 2);
        REF_VEC(f32_to_bf16)(f, want16, chunk);
        FOR_EACH_VEC_KERNEL(k, f32_to_bf16) k->fn.f32_to_bf16(f, got16, chunk), bad[kernel_index(k)] += !!memcmp(got16, want16, (size_t)chunk * 2);
        REF_VEC(f32_to_e4m3)(f, want8, chunk);
        FOR_EACH_VEC_KERNEL(k, f32_to_e4m3) k->fn.f32_to_e4m3(f, got8, chunk), bad[kernel_index(k)] += !!memcmp(got8, want8, (size_t)chunk);
        REF_VEC(f32_to_e5m2)(f, want8, chunk);
        FOR_EACH_VEC_KERNEL(k, f32_to_e5m2) k->fn.f32_to_e5m2(f, got8, chunk), bad[kernel_index(k)] += !!memcmp(got8, want8, (size_t)chunk);
    }
    for (int i = 0; i < cq__kernel_count(); i++)
        CHECKF(bad[i] == 0, "%s: %ld chunks differ", cq__kernel_get(i)->name, bad[i]);
    free(bad);
    free(f);
    free(want16);
    free(got16);
    free(want8);
    free(got8);
}

/* The reference conversions are the core scalar casts. */
TST(kernel_vec_ref_conversions_are_core_casts) {
    float f[4] = {1.0f / 3.0f, -448.0f, 1e-9f, 70000.0f};
    uint16_t h[4];
    uint8_t b[4];
    REF_VEC(f32_to_bf16)(f, h, 4);
    for (int i = 0; i < 4; i++) CHECK(h[i] == cq_f32_to_bf16(f[i]));
    REF_VEC(f32_to_e4m3)(f, b, 4);
    for (int i = 0; i < 4; i++) CHECK(b[i] == cq_f32_to_f8_e4m3fn(f[i]));
}

TST(kernel_vec_absmax_quantize_dequantize_match_ref) {
    krng r = {11};
    const int n = 203;
    float *x = malloc(n * sizeof(float));
    uint16_t *xh = malloc(n * sizeof(uint16_t)), *xb = malloc(n * sizeof(uint16_t));
    for (int i = 0; i < n; i++) {
        x[i] = krng_n(&r, 3.0f);
        if (i % 17 == 5) x[i] = (float)(i % 9) * 0.5f; /* ties after dividing by 0.5 */
    }
    x[7] = 1e30f, x[8] = -1e30f, x[9] = 0.0f, x[10] = -0.0f, x[11] = 1e-40f;
    cq_vec_f32_to_f16(x, xh, n);
    cq_vec_f32_to_bf16(x, xb, n);
    const void *srcs[3] = {x, xh, xb};
    const cq_dtype dts[3] = {CQ_F32, CQ_F16, CQ_BF16};
    const float scales[] = {0.5f, 0.0173f, 0.0f, 3.0f};
/* every run: dtype d, length len, offset off (src) */
#define FOR_RUNS                                                                 \
    for (int d = 0; d < 3; d++)                                                  \
        for (int len = 0; len <= n; len += len < 40 ? 1 : 37)                    \
            for (int off = 0; off < 2 && off + len <= n; off++)                  \
                for (const void *src = (const uint8_t *)srcs[d] + (size_t)off * cq_dtype_size(dts[d]); src; src = NULL)
    /* NaN propagates through absmax; NaN quantizes to 0 */
    float nanv[20];
    for (int i = 0; i < 20; i++) nanv[i] = (float)i;
    nanv[13] = cq__bits_f32(0x7fc00001);
    FOR_EACH_VEC_KERNEL(k, absmax) {
        FOR_RUNS {
            float a = k->fn.absmax(src, dts[d], len), b = REF_VEC(absmax)(src, dts[d], len);
            CHECKF(cq__f32_bits(a) == cq__f32_bits(b), "%s %s len %d: %a vs %a", k->name, cq_dtype_name(dts[d]), len, a, b);
        }
        CHECK(cq__f32_bits(k->fn.absmax(nanv, CQ_F32, 20)) == cq__f32_bits(REF_VEC(absmax)(nanv, CQ_F32, 20)));
        CHECK(isnan(k->fn.absmax(nanv, CQ_F32, 20)));
    }
    FOR_EACH_VEC_KERNEL(k, quantize_i8) {
        FOR_RUNS for (size_t si = 0; si < CQ_ARRAY_LEN(scales); si++) {
            kbuf q = kbuf_new((size_t)len, (size_t)off + 1);
            int8_t want[256];
            k->fn.quantize_i8(src, dts[d], len, scales[si], (int8_t *)q.p);
            REF_VEC(quantize_i8)(src, dts[d], len, scales[si], want);
            CHECKF(!memcmp(q.p, want, (size_t)len) && kbuf_canaries_ok(&q), "%s %s len %d s %g", k->name,
                   cq_dtype_name(dts[d]), len, scales[si]);
            kbuf_free(&q);
        }
        int8_t qn[20];
        k->fn.quantize_i8(nanv, CQ_F32, 20, 1.0f, qn);
        CHECK(qn[13] == 0 && qn[19] == 19);
    }
    /* dequantize and sum the reference's codes of every run */
    FOR_EACH_VEC_KERNEL(k, dequantize_i8) {
        FOR_RUNS for (size_t si = 0; si < CQ_ARRAY_LEN(scales); si++) {
            size_t es = cq_dtype_size(dts[d]);
            int8_t codes[256];
            REF_VEC(quantize_i8)(src, dts[d], len, scales[si], codes);
            kbuf y = kbuf_new((size_t)len * es, es * (size_t)off);
            uint8_t ywant[256 * 4];
            k->fn.dequantize_i8(codes, len, scales[si], y.p, dts[d]);
            REF_VEC(dequantize_i8)(codes, len, scales[si], ywant, dts[d]);
            CHECKF(!memcmp(y.p, ywant, (size_t)len * es) && kbuf_canaries_ok(&y), "%s %s len %d", k->name,
                   cq_dtype_name(dts[d]), len);
            kbuf_free(&y);
        }
    }
    FOR_EACH_VEC_KERNEL(k, sum_i8) {
        FOR_RUNS for (size_t si = 0; si < CQ_ARRAY_LEN(scales); si++) {
            int8_t codes[256];
            REF_VEC(quantize_i8)(src, dts[d], len, scales[si], codes);
            CHECKF(k->fn.sum_i8(codes, len) == REF_VEC(sum_i8)(codes, len), "%s len %d", k->name, len);
        }
    }
#undef FOR_RUNS
    CHECK(REF_VEC(absmax)(x, CQ_F32, n) == 1e30f);
    free(x);
    free(xh);
    free(xb);
}

/* Every 16-bit pattern in order: each f16 or bf16 value once. */
static uint16_t *every_u16(void) {
    uint16_t *h = malloc(65536 * sizeof(uint16_t));
    for (int i = 0; h && i < 65536; i++) h[i] = (uint16_t)i;
    return h;
}

static int bytes_differ(const void *a, const void *b, int64_t n) {
    const uint8_t *x = a, *y = b;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += x[i] != y[i];
    return bad;
}

/* Every f16 and bf16 value (NaN, inf, subnormals, ties after the division) through quantize_i8
 * at scales from tiny to huge, each level against the reference. */
TST(kernel_vec_quantize_i8_every_half_input) {
    uint16_t *h = every_u16();
    int8_t *want = malloc(65536), *got = malloc(65536);
    const float scales[] = {1.0f, 0.5f, 0.0173f, 3.0f, 1.0f / 127.0f, 0x1p-24f, 0x1p-130f, 0x1p100f, 65504.0f, -0.75f,
                            0.0f};
    const cq_dtype dts[2] = {CQ_F16, CQ_BF16};
    for (int d = 0; d < 2; d++)
        for (size_t si = 0; si < CQ_ARRAY_LEN(scales); si++) {
            REF_VEC(quantize_i8)(h, dts[d], 65536, scales[si], want);
            FOR_EACH_VEC_KERNEL(k, quantize_i8) {
                k->fn.quantize_i8(h, dts[d], 65536, scales[si], got);
                int bad = bytes_differ(got, want, 65536);
                CHECKF(bad == 0, "%s %s scale %a: %d codes differ", k->name, cq_dtype_name(dts[d]), scales[si], bad);
            }
        }
    CHECK(REF_VEC(quantize_i8) != NULL);
    free(h);
    free(want);
    free(got);
}

/* min/max and affine codes (the int2/int4 quantizer's kernels): every level against the
 * reference on runs of every length up to 40 and then every 37th, at two alignments, with signed
 * zeros, infinities, a NaN, ties after the division, and zero and NaN scales. */
TST(kernel_vec_minmax_affine_codes_match_ref) {
    krng r = {23};
    const int n = 260;
    float *x = malloc(n * sizeof(float));
    uint16_t *xh = malloc(n * sizeof(uint16_t)), *xb = malloc(n * sizeof(uint16_t));
    for (int i = 0; i < n; i++) {
        x[i] = krng_n(&r, 2.0f);
        if (i % 13 == 3) x[i] = (float)(i % 7) * 0.25f - 0.75f; /* ties after (x + 0.75) / 0.5 */
        if (i % 29 == 11) x[i] = (i & 1) ? -0.0f : 0.0f;
    }
    x[200] = INFINITY, x[201] = -INFINITY, x[230] = NAN;
    cq_vec_f32_to_f16(x, xh, n);
    cq_vec_f32_to_bf16(x, xb, n);
    const void *srcs[3] = {x, xh, xb};
    const cq_dtype dts[3] = {CQ_F32, CQ_F16, CQ_BF16};
    const float params[][2] = {{0.5f, 0.75f}, {0.0173f, 3.1f}, {0.0f, 1.0f}, {NAN, 0.0f}, {1.0f / 15.0f, -0.0f}};
#define FOR_RUNS                                                                 \
    for (int d = 0; d < 3; d++)                                                  \
        for (int len = 0; len <= n - 1; len += len < 40 ? 1 : 37)                \
            for (int off = 0; off < 2 && off + len <= n; off++)                  \
                for (const void *src = (const uint8_t *)srcs[d] + (size_t)off * cq_dtype_size(dts[d]); src; src = NULL)
    FOR_EACH_VEC_KERNEL(k, minmax) FOR_RUNS {
        float a[2], b[2];
        k->fn.minmax(src, dts[d], len, &a[0], &a[1]);
        REF_VEC(minmax)(src, dts[d], len, &b[0], &b[1]);
        CHECKF(cq__f32_bits(a[0]) == cq__f32_bits(b[0]) && cq__f32_bits(a[1]) == cq__f32_bits(b[1]), "%s %s len %d off %d: %a %a vs %a %a",
               k->name, cq_dtype_name(dts[d]), len, off, a[0], a[1], b[0], b[1]);
    }
    FOR_EACH_VEC_KERNEL(k, affine_codes) FOR_RUNS {
        for (size_t pi = 0; pi < CQ_ARRAY_LEN(params); pi++)
            for (int bits = 2; bits <= 4; bits += 2) {
                float qmax = (float)((1 << bits) - 1);
                kbuf q = kbuf_new((size_t)len, (size_t)off + 1);
                uint8_t want[300];
                k->fn.affine_codes(src, dts[d], len, params[pi][0], params[pi][1], qmax, q.p);
                REF_VEC(affine_codes)(src, dts[d], len, params[pi][0], params[pi][1], qmax, want);
                CHECKF(!memcmp(q.p, want, (size_t)len) && kbuf_canaries_ok(&q), "%s %s len %d off %d scale %g shift %g bits %d",
                       k->name, cq_dtype_name(dts[d]), len, off, params[pi][0], params[pi][1], bits);
                kbuf_free(&q);
            }
    }
#undef FOR_RUNS
    /* the reference's rules: NaN in both, zeros ordered -0 < +0, empty runs */
    float zs[4] = {0.0f, -0.0f, 0.0f, 1.0f}, lo, hi;
    REF_VEC(minmax)(zs, CQ_F32, 3, &lo, &hi);
    CHECK(lo == 0.0f && signbit(lo) && hi == 0.0f && !signbit(hi));
    REF_VEC(minmax)(x, CQ_F32, n, &lo, &hi);
    CHECK(isnan(lo) && isnan(hi));
    REF_VEC(minmax)(x, CQ_F32, 0, &lo, &hi);
    CHECK(lo == INFINITY && hi == -INFINITY);
    /* the public wrappers: several chunks merge to the one-run result */
    int64_t big = ((int64_t)1 << 17) + 5;
    float *y = malloc((size_t)big * sizeof(float));
    for (int64_t i = 0; i < big; i++) y[i] = krng_n(&r, 1.0f);
    y[70000] = -0.0f, y[3] = 5.0f, y[big - 1] = -7.0f;
    cq_vec_minmax(y, CQ_F32, big, &lo, &hi);
    float rl, rh;
    REF_VEC(minmax)(y, CQ_F32, big, &rl, &rh);
    CHECK(cq__f32_bits(lo) == cq__f32_bits(rl) && cq__f32_bits(hi) == cq__f32_bits(rh) && hi == 5.0f && lo == -7.0f);
    uint8_t *c1 = malloc((size_t)big), *c2 = malloc((size_t)big);
    cq_vec_affine_codes(y, CQ_F32, big, 12.0f / 15.0f, 7.0f, 4, c1);
    REF_VEC(affine_codes)(y, CQ_F32, big, 12.0f / 15.0f, 7.0f, 15.0f, c2);
    CHECK(!memcmp(c1, c2, (size_t)big));
    free(y), free(c1), free(c2);
    free(x), free(xh), free(xb);
}

/* fp8 quantization: every f16 and bf16 value, and f32 runs of every length up to 40 (then every
 * 37th) at two alignments, to each fp8 dtype, with zero, tiny and huge scales. */
TST(kernel_vec_quantize_f8_match_ref) {
    uint16_t *h = every_u16();
    uint8_t *want = malloc(65536), *got = malloc(65536);
    krng r = {31};
    float f[300];
    for (int i = 0; i < 300; i++) f[i] = krng_n(&r, 500.0f);
    f[5] = NAN, f[6] = INFINITY, f[7] = -INFINITY, f[8] = -0.0f, f[9] = 1e-30f;
    const float scales[] = {1.0f, 0.37f, 1.0f / 448.0f, 0x1p-20f, 0x1p60f, 0.0f, -2.0f};
    const cq_dtype fp8s[3] = {CQ_F8_E4M3FN, CQ_F8_E5M2, CQ_F8_E4M3FNUZ}, halves[2] = {CQ_F16, CQ_BF16};
    FOR_EACH_VEC_KERNEL(k, quantize_f8) {
        for (int o = 0; o < 3; o++)
            for (size_t si = 0; si < CQ_ARRAY_LEN(scales); si++) {
                for (int d = 0; d < 2; d++) {
                    float sc = cq_round_to_dtype(scales[si], halves[d]);
                    REF_VEC(quantize_f8)(h, halves[d], 65536, sc, fp8s[o], want);
                    k->fn.quantize_f8(h, halves[d], 65536, sc, fp8s[o], got);
                    int bad = bytes_differ(got, want, 65536);
                    CHECKF(bad == 0, "%s %s -> %s scale %a: %d codes differ", k->name,
                           cq_dtype_name(halves[d]), cq_dtype_name(fp8s[o]), sc, bad);
                }
                for (int len = 0; len < 299; len += len < 40 ? 1 : 37)
                    for (int off = 0; off < 2; off++) {
                        kbuf q = kbuf_new((size_t)len, (size_t)off + 1);
                        k->fn.quantize_f8(f + off, CQ_F32, len, scales[si], fp8s[o], q.p);
                        REF_VEC(quantize_f8)(f + off, CQ_F32, len, scales[si], fp8s[o], want);
                        CHECKF(!memcmp(q.p, want, (size_t)len) && kbuf_canaries_ok(&q), "%s f32 -> %s len %d off %d",
                               k->name, cq_dtype_name(fp8s[o]), len, off);
                        kbuf_free(&q);
                    }
            }
    }
    /* the public wrapper over several chunks, against the reference */
    int64_t big = ((int64_t)1 << 17) + 3;
    float *y = malloc((size_t)big * sizeof(float));
    uint8_t *c1 = malloc((size_t)big), *c2 = malloc((size_t)big);
    for (int64_t i = 0; i < big; i++) y[i] = krng_n(&r, 100.0f);
    cq_vec_quantize_f8(y, CQ_F32, big, 0.25f, CQ_F8_E4M3FN, c1);
    REF_VEC(quantize_f8)(y, CQ_F32, big, 0.25f, CQ_F8_E4M3FN, c2);
    CHECK(!memcmp(c1, c2, (size_t)big));
    free(y), free(c1), free(c2);
    free(h), free(want), free(got);
}

/* Every f16 and bf16 value through the affine codes at several (scale, shift) pairs. */
TST(kernel_vec_affine_codes_every_half_input) {
    uint16_t *h = every_u16();
    uint8_t *want = malloc(65536), *got = malloc(65536);
    const float params[][2] = {{1.0f, 0.0f}, {0.5f, 3.0f}, {0.0173f, 0.11f}, {2.0f / 15.0f, 1.0f}, {0x1p-20f, 0x1p-17f},
                               {100.0f, 700.0f}};
    const cq_dtype dts[2] = {CQ_F16, CQ_BF16};
    for (int d = 0; d < 2; d++)
        for (size_t pi = 0; pi < CQ_ARRAY_LEN(params); pi++) {
            /* scale and shift as quanto has them: values of the weight's dtype */
            float sc = cq_round_to_dtype(params[pi][0], dts[d]), sh = cq_round_to_dtype(params[pi][1], dts[d]);
            REF_VEC(affine_codes)(h, dts[d], 65536, sc, sh, 15.0f, want);
            FOR_EACH_VEC_KERNEL(k, affine_codes) {
                k->fn.affine_codes(h, dts[d], 65536, sc, sh, 15.0f, got);
                int bad = bytes_differ(got, want, 65536);
                CHECKF(bad == 0, "%s %s scale %a shift %a: %d codes differ", k->name, cq_dtype_name(dts[d]), sc, sh, bad);
            }
        }
    CHECK(REF_VEC(affine_codes) != NULL);
    free(h), free(want), free(got);
}

/* The fast-mode activation quantizer: blocks, padding, zero and tiny blocks, NaN and inf. */
TST(kernel_vec_quantize_act_blocks_match_ref) {
    const int64_t cases[][3] = {/* K, gs (0 per channel), bits */ {5, 0, 4}, {40, 0, 8}, {300, 0, 2}, {256, 128, 4},
                                {96, 32, 2}, {512, 512, 4}, {130, 0, 4}, {64, 16, 4}};
    for (size_t c = 0; c < CQ_ARRAY_LEN(cases); c++) {
        int64_t K = cases[c][0], gs = cases[c][1], M = 3;
        int bits = (int)cases[c][2];
        cq_qtype q = bits == 8 ? CQ_QINT8 : bits == 4 ? CQ_QINT4 : CQ_QINT2;
        int64_t egs = gs ? gs : K, G = K / egs;
        uint8_t *codes = calloc((size_t)(2 * K), 1);
        float sc[64] = {0}, sh[64] = {0};
        cq_mm_weight_src s = {q, 2, K, bits == 8 ? 0 : gs, codes, true, sc, bits == 8 ? NULL : sh, CQ_F32, CQ_DTYPE_INVALID};
        cq_mm_weight *w = NULL;
        CHECK(cq_mm_weight_new(&w, &s, NULL) == CQ_OK && G <= 32);
        if (!w) continue;
        krng r = {c + 1};
        float *x = malloc((size_t)(M * K) * sizeof(float));
        for (int64_t i = 0; i < M * K; i++) x[i] = krng_n(&r, 2.0f);
        for (int64_t i = 0; i < egs && i < K; i++) x[i] = 0.0f;     /* an all-zero block */
        x[K + 1] = cq__bits_f32(0x7fc00000);                            /* NaN: ignored by amax, code -127 */
        if (K > 3) x[2 * K + 3] = INFINITY;                          /* inf: d = inf */
        if (K > 6) for (int64_t i = 4; i < 6; i++) x[2 * K + i] = 1e-35f; /* below the tiny threshold with its block? */
        size_t rb = cq__qrow_bytes(w);
        uint8_t *want = malloc(rb * (size_t)M), *got = malloc(rb * (size_t)M);
        memset(want, 0x5a, rb * (size_t)M);
        REF_VEC(quantize_rows)(w, x, CQ_F32, K, 0, M, want);
        FOR_EACH_VEC_KERNEL(k, quantize_rows) {
            memset(got, 0x5a, rb * (size_t)M);
            k->fn.quantize_rows(w, x, CQ_F32, K, 0, M, got);
            CHECKF(!memcmp(got, want, rb * (size_t)M), "%s K=%lld gs=%lld", k->name, (long long)K, (long long)gs);
        }
        CHECK(want[0] == 0);
        free(want);
        free(got);
        free(x);
        free(codes);
        cq_mm_weight_free(w);
    }
}

/* The public wrappers split long arrays across threads; results equal one reference pass. */
TST(kernel_vec_public_wrappers_thread_split) {
    int64_t n = (1 << 18) + 77;
    float *x = malloc((size_t)n * sizeof(float));
    krng r = {3};
    for (int64_t i = 0; i < n; i++) x[i] = krng_n(&r, 10.0f);
    x[n - 5] = -1234.5f;
    uint16_t *h1 = malloc((size_t)n * 2), *h2 = malloc((size_t)n * 2);
    int saved = cq_get_num_threads();
    cq_set_num_threads(1);
    cq_vec_f32_to_bf16(x, h1, n);
    float m1 = cq_vec_absmax(x, CQ_F32, n);
    cq_set_num_threads(2);
    cq_vec_f32_to_bf16(x, h2, n);
    float m2 = cq_vec_absmax(x, CQ_F32, n);
    cq_set_num_threads(saved);
    CHECK(!memcmp(h1, h2, (size_t)n * 2) && m1 == m2 && m1 == 1234.5f);
    int8_t *q = malloc((size_t)n);
    cq_vec_quantize_i8(x, CQ_F32, n, m1 / 127.0f, q);
    CHECK(q[n - 5] == -127);
    float *y = malloc((size_t)n * sizeof(float));
    cq_vec_dequantize_i8(q, n, 2.0f, y, CQ_F32);
    CHECK(y[n - 5] == -254.0f);
    CHECK(cq_vec_absmax(x, CQ_I32, n) == 0.0f && cq_vec_absmax(x, CQ_F32, 0) == 0.0f);
    free(x);
    free(h1);
    free(h2);
    free(q);
    free(y);
}

/* Attention's scores (over a transposed K: key j's element i at k[i * ld + j]) and weighted sums:
 * every level's bits equal the reference's for head sizes 1..70, 0..9 keys (tails of every
 * length), strides wider than a row, misaligned data, and zeros, signed zeros, infinities and
 * NaN among the keys. */
TST(kernel_vec_attention_matches_ref) {
    krng r = {31};
    const int64_t maxd = 70, maxn = 9, ld = 75;
    const int64_t nk = (maxd + 1) * ld + 1;
    float *k = malloc((size_t)nk * sizeof(float)), *q = malloc((size_t)(maxd + 1) * sizeof(float));
    float p[9], s1[9], s2[9], o1[80], o2[80];
    for (int64_t i = 0; i < nk; i++) k[i] = krng_n(&r, 1.5f);
    for (int64_t i = 0; i < maxd + 1; i++) q[i] = krng_n(&r, 1.5f);
    for (int j = 0; j < 9; j++) p[j] = j == 4 ? 0.0f : fabsf(krng_n(&r, 0.5f));
    k[3 * ld + 5] = -0.0f, k[5 * ld + 17] = INFINITY, k[7 * ld + 2] = NAN, k[4 * ld + 3] = -INFINITY, q[40] = -0.0f;
    /* the reference itself against a plain double-precision dot product and weighted sum */
    double worst = 0;
    for (int64_t d = 1; d <= 40; d++) {
        REF_VEC(attn_scores)(q, k, ld, 2, d, 0.5f, s1);
        float ov[64] = {0};
        REF_VEC(attn_values)(p, k, ld, 2, d, ov);
        for (int64_t j = 0; j < 2; j++) {
            double dot = 0;
            for (int64_t i = 0; i < d; i++) dot += (double)q[i] * k[i * ld + j];
            worst = fmax(worst, fabs(s1[j] - 0.5 * dot));
        }
        for (int64_t i = 0; i < d; i++) worst = fmax(worst, fabs(ov[i] - ((double)p[0] * k[i] + (double)p[1] * k[ld + i])));
    }
    CHECKF(worst < 1e-5, "reference attention off by %g", worst);
    FOR_EACH_VEC_KERNEL(kk, attn_scores)
    for (int64_t d = 1; d <= maxd; d++)
        for (int off = 0; off < 2; off++)
            for (int64_t n = 0; n <= maxn; n += 3) {
                kk->fn.attn_scores(q + off, k + off, ld, n, d, 0.125f, s1);
                REF_VEC(attn_scores)(q + off, k + off, ld, n, d, 0.125f, s2);
                bool same = true;
                for (int64_t j = 0; j < n; j++) same = same && cq__f32_bits(s1[j]) == cq__f32_bits(s2[j]);
                CHECKF(same, "%s: d %lld n %lld off %d", kk->name, (long long)d, (long long)n, off);
            }
    FOR_EACH_VEC_KERNEL(kk, attn_values)
    for (int64_t d = 1; d <= maxd; d++)
        for (int off = 0; off < 2; off++)
            for (int64_t n = 0; n <= maxn; n += 3) {
                for (int64_t i = 0; i < d; i++) o1[i] = o2[i] = (float)i * 0.01f;
                o1[d] = o2[d] = 7.0f; /* past the row: must stay */
                kk->fn.attn_values(p, k + off, ld, n, d, o1);
                REF_VEC(attn_values)(p, k + off, ld, n, d, o2);
                CHECKF(!memcmp(o1, o2, (size_t)(d + 1) * sizeof(float)) && o1[d] == 7.0f, "%s: d %lld n %lld off %d",
                       kk->name, (long long)d, (long long)n, off);
            }
    free(k);
    free(q);
}
