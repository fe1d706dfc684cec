/*
 * test_kernels_float.c - cq_matmul on unquantized float weights (f32, f16, bf16; qtype
 * CQ_QNONE): the reference against the spec computed from the row-major weight, every
 * registered kernel of the float slots against the reference bit for bit (decode and prefill
 * row counts, odd N and K, misaligned buffers, bias, every output dtype), thread counts, the
 * round trip through cq_mm_weight_unpack and the argument errors. Needs only core + kernels.
 */
#include "test_kernels_util.h"

static const cq_dtype k_wdtypes[] = {CQ_F32, CQ_F16, CQ_BF16};

typedef struct {
    int64_t n, k;
    cq_dtype wd;
    kbuf data; /* row-major [n][k] of wd, misaligned */
    cq_mm_weight *w;
} fcase;

static fcase fcase_make(int64_t n, int64_t k, cq_dtype wd, uint64_t seed) {
    fcase c = {n, k, wd, kbuf_new((size_t)(n * k) * cq_dtype_size(wd), cq_dtype_size(wd) * (seed % 3)), NULL};
    krng r = {seed * 0x9E3779B97F4A7C15ull + 3};
    for (int64_t i = 0; i < n * k; i++) cq_store_f32(c.data.p, wd, i, krng_n(&r, 0.5f));
    cq_mm_weight_src src = {0};
    src.qtype = CQ_QNONE;
    src.out_features = n;
    src.in_features = k;
    src.data = c.data.p;
    src.weight_dtype = wd;
    cq_err err = {0};
    if (cq_mm_weight_new(&c.w, &src, &err) != CQ_OK) printf("  fcase_make: %s\n", err.msg);
    return c;
}

static void fcase_free(fcase *c) {
    cq_mm_weight_free(c->w);
    kbuf_free(&c->data);
}

/* The spec: acc = +0; acc = fmaf(x[k], w[n][k], acc) in increasing k; y = round_y(acc), then
 * round_y(y + bias[n]). */
static void spec(const fcase *c, int64_t M, const float *x, int64_t ldx, const float *bias, cq_dtype yt, float *y) {
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < c->n; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < c->k; k++)
                acc = fmaf(x[m * ldx + k], cq_load_f32(c->data.p, c->wd, n * c->k + k), acc);
            float v = yt == CQ_F32 ? acc : cq_round_to_dtype(acc, yt);
            if (bias) v = yt == CQ_F32 ? v + bias[n] : cq_round_to_dtype(v + bias[n], yt);
            y[m * c->n + n] = v;
        }
}

/* Runs kernel k (NULL: cq_matmul) into a canary-guarded y; the y values as f32, or NULL. */
static float *run(const fcase *c, const cq__kernel *k, int64_t M, const void *x, cq_dtype xt, int64_t ldx,
                  cq_dtype yt, const float *bias, cq_matmul_mode mode, int *canary_ok) {
    size_t es = cq_dtype_size(yt);
    kbuf yb = kbuf_new((size_t)(M * c->n) * es, es);
    cq_matmul_opts o = cq_matmul_default_opts();
    o.mode = mode;
    o.bias = bias;
    o.work_size = k ? cq__matmul_work_size_with(k, c->w, M, xt) : cq_matmul_work_size(c->w, M, xt, mode);
    o.work = o.work_size ? malloc(o.work_size) : NULL;
    cq_err err = {0};
    cq_status st = k ? cq__matmul_with(k, c->w, M, x, xt, ldx, yb.p, yt, c->n, &o, &err)
                     : cq_matmul(c->w, M, x, xt, ldx, yb.p, yt, c->n, &o, &err);
    free(o.work);
    float *out = NULL;
    *canary_ok = kbuf_canaries_ok(&yb);
    if (st == CQ_OK) {
        out = malloc((size_t)(M * c->n) * sizeof(float));
        for (int64_t i = 0; i < M * c->n; i++) out[i] = cq_load_f32(yb.p, yt, i);
    } else {
        printf("  %s: %s\n", k ? k->name : "cq_matmul", err.msg);
    }
    kbuf_free(&yb);
    return out;
}

static int64_t first_diff(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (cq__f32_bits(a[i]) != cq__f32_bits(b[i])) return i;
    return -1;
}

TST(kernel_float_weights_all_levels_match_spec) {
    const int64_t ns[] = {1, 15, 16, 17, 33, 47}, ks[] = {1, 3, 16, 29, 64, 173}, ms[] = {1, 2, 3, 4, 7, 13};
    uint64_t seed = 1;
    for (size_t wi = 0; wi < CQ_ARRAY_LEN(k_wdtypes); wi++)
        for (size_t ni = 0; ni < CQ_ARRAY_LEN(ns); ni++)
            for (size_t ki = 0; ki < CQ_ARRAY_LEN(ks); ki++) {
                seed++;
                fcase c = fcase_make(ns[ni], ks[ki], k_wdtypes[wi], seed);
                if (!c.w) {
                    CHECK(c.w != NULL);
                    continue;
                }
                int64_t M = ms[seed % CQ_ARRAY_LEN(ms)], ldx = c.k + (int64_t)(seed % 3);
                cq_dtype xt = seed % 4 == 0 ? CQ_BF16 : CQ_F32;
                cq_dtype yt = seed % 5 == 0 ? CQ_BF16 : seed % 5 == 1 ? CQ_F16 : CQ_F32;
                krng r = {seed + 11};
                kbuf xb = kbuf_new((size_t)(M * ldx) * cq_dtype_size(xt), cq_dtype_size(xt) * (seed % 2));
                float *xf = malloc((size_t)(M * ldx) * sizeof(float));
                for (int64_t i = 0; i < M * ldx; i++) {
                    cq_store_f32(xb.p, xt, i, krng_n(&r, 1.5f));
                    xf[i] = cq_load_f32(xb.p, xt, i);
                }
                float *bias = NULL;
                if (seed % 3 == 0) {
                    bias = malloc((size_t)c.n * sizeof(float));
                    for (int64_t n = 0; n < c.n; n++) bias[n] = krng_f(&r);
                }
                float *want = malloc((size_t)(M * c.n) * sizeof(float));
                spec(&c, M, xf, ldx, bias, yt, want);
                char label[96];
                snprintf(label, sizeof label, "%s N=%lld K=%lld M=%lld x=%s y=%s", cq_dtype_name(c.wd),
                         (long long)c.n, (long long)c.k, (long long)M, cq_dtype_name(xt), cq_dtype_name(yt));
                cq__wfmt f = cq__wfmt_of(c.w);
                const cq__kernel *ref = cq__kernel_at(CQ_ISA_REF, CQ__OP_matmul_exact, f);
                CHECKF(ref != NULL, "%s: no reference kernel", label);
                int canary = 0;
                float *got = ref ? run(&c, ref, M, xb.p, xt, ldx, yt, bias, CQ_MATMUL_EXACT, &canary) : NULL;
                int64_t at = got ? first_diff(got, want, M * c.n) : 0;
                CHECKF(got && canary && at < 0, "%s: ref vs spec at %lld", label, (long long)at);
                free(got);
                FOR_EACH_KERNEL(k, CQ__OP_matmul_exact, f) {
                    got = run(&c, k, M, xb.p, xt, ldx, yt, bias, CQ_MATMUL_EXACT, &canary);
                    at = got ? first_diff(got, want, M * c.n) : 0;
                    CHECKF(got && canary && at < 0, "%s: %s vs spec at %lld", label, k->name, (long long)at);
                    free(got);
                }
                /* dispatched, and FAST (which is EXACT for float weights) */
                for (int mode = 0; mode < 2; mode++) {
                    got = run(&c, NULL, M, xb.p, xt, ldx, yt, bias, mode ? CQ_MATMUL_FAST : CQ_MATMUL_EXACT, &canary);
                    at = got ? first_diff(got, want, M * c.n) : 0;
                    CHECKF(got && canary && at < 0, "%s: cq_matmul mode %d vs spec at %lld", label, mode, (long long)at);
                    free(got);
                }
                free(want);
                free(bias);
                free(xf);
                kbuf_free(&xb);
                fcase_free(&c);
            }
}

TST(kernel_float_weights_thread_count_does_not_change_bytes) {
    int saved = cq_get_num_threads();
    for (size_t wi = 0; wi < CQ_ARRAY_LEN(k_wdtypes); wi++)
        for (int mi = 0; mi < 2; mi++) {
            int64_t M = mi ? 19 : 1, N = 300, K = 257;
            fcase c = fcase_make(N, K, k_wdtypes[wi], 40 + wi);
            krng r = {5};
            float *x = malloc((size_t)(M * K) * sizeof(float)), *y[3];
            for (int64_t i = 0; i < M * K; i++) x[i] = krng_n(&r, 1.0f);
            for (int t = 0; t < 3; t++) {
                cq_set_num_threads(t + 1);
                cq_matmul_opts o = cq_matmul_default_opts();
                o.work_size = cq_matmul_work_size(c.w, M, CQ_F32, o.mode);
                o.work = malloc(o.work_size + 1);
                y[t] = malloc((size_t)(M * N) * sizeof(float));
                CHECK(cq_matmul(c.w, M, x, CQ_F32, K, y[t], CQ_F32, N, &o, NULL) == CQ_OK);
                free(o.work);
            }
            CHECKF(!memcmp(y[0], y[1], (size_t)(M * N) * sizeof(float)) &&
                       !memcmp(y[0], y[2], (size_t)(M * N) * sizeof(float)),
                   "%s M=%lld", cq_dtype_name(c.wd), (long long)M);
            for (int t = 0; t < 3; t++) free(y[t]);
            free(x);
            fcase_free(&c);
        }
    cq_set_num_threads(saved);
}

TST(kernel_float_weights_roundtrip_and_info) {
    for (size_t wi = 0; wi < CQ_ARRAY_LEN(k_wdtypes); wi++) {
        fcase c = fcase_make(37, 21, k_wdtypes[wi], 90 + wi);
        CHECK(c.w != NULL);
        if (!c.w) continue;
        size_t bytes = (size_t)(c.n * c.k) * cq_dtype_size(c.wd);
        uint8_t *back = malloc(bytes);
        CHECK(cq_mm_weight_unpack(c.w, false, back, NULL, NULL, NULL) == CQ_OK);
        CHECK_BYTES(back, c.data.p, bytes, "float weight after repack + unpack");
        cq_mm_weight_info info;
        cq_mm_weight_get_info(c.w, &info);
        CHECK(info.qtype == CQ_QNONE && info.weight_dtype == c.wd && info.out_features == c.n &&
              info.in_features == c.k && info.nbytes == bytes && info.group_size == c.k);
        cq_mm_weight *cl = NULL;
        CHECK(cq_mm_weight_clone(c.w, &cl, NULL) == CQ_OK);
        memset(back, 0, bytes);
        CHECK(cl && cq_mm_weight_unpack(cl, false, back, NULL, NULL, NULL) == CQ_OK);
        CHECK_BYTES(back, c.data.p, bytes, "clone of a float weight");
        cq_mm_weight_free(cl);
        free(back);
        fcase_free(&c);
    }
}

TST(kernel_float_weights_reject_bad_input) {
    float d[8] = {0};
    int8_t xi[4] = {0};
    float y[4];
    cq_mm_weight *w = (cq_mm_weight *)1;
    cq_err err = {0};
    cq_mm_weight_src s = {0};
    s.qtype = CQ_QNONE, s.out_features = 2, s.in_features = 4, s.data = d, s.weight_dtype = CQ_F64;
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_E_DTYPE && w == NULL && strstr(err.msg, "F64"));
    s.weight_dtype = CQ_F32, s.group_size = 2;
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_E_ARG && strstr(err.msg, "no groups"));
    s.group_size = 0, s.data = NULL;
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_E_ARG && strstr(err.msg, "NULL"));
    s.data = d, s.in_features = 0;
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_E_SHAPE);
    s.in_features = 4;
    CHECK(cq_mm_weight_new(&w, &s, &err) == CQ_OK && w);
    CHECK(cq_matmul(w, 1, xi, CQ_I8, 4, y, CQ_F32, 2, NULL, &err) == CQ_E_UNSUPPORTED && strstr(err.msg, "f32"));
    cq_mm_weight_free(w);
}
