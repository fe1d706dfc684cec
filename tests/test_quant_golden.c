/*
 * test_quant_golden.c - quantization math against fixtures from the real optimum-quanto
 * (tools/gen_golden.py, tests/data/golden/quant_*.safetensors): absmax scales, symmetric
 * quantize/dequantize for every 8-bit qtype; Max optimizer, affine codes, packing and
 * dequantization for qint2/qint4; grouping; HQQ; ATen's summation order; and whole modules
 * frozen by quanto (state-dict tensors). F32, F16 and BF16 inputs, axes 0, -1 and none.
 * Everything is compared bit for bit; HQQ within the bound stated in docs/NUMERICS.md.
 */
#include "test_quant_util.h"
#include "quant/torch_sum.h" /* cq__torch_sum_2d, cq__stream_sum */

#include <math.h>

/* A fixture tensor with fnuz data retagged from its U8 storage. */
static const cq_tensor *golden_data(const cq_st_file *f, const char *name, bool fnuz, cq_tensor *tmp) {
    const cq_tensor *t = golden_get(f, "%s", name);
    if (!t || !fnuz || t->dtype != CQ_U8) return t;
    *tmp = retag(t, CQ_F8_E4M3FNUZ);
    return tmp;
}

/* ---- symmetric ------------------------------------------------------------------------- */

TST(quant_golden_symmetric_every_qtype_dtype_axis) {
    cq_st_file *f = golden_open("quant_symmetric");
    if (!f) return;
    golden_cases c;
    if (!golden_cases_begin(&c, f)) return;
    int cases = 0;
    while (golden_cases_next(&c)) {
        char input[64], name[256];
        golden_case_str(&c, "input", input, sizeof input);
        cq_qtype q = golden_case_qtype(&c);
        int axis = golden_case_axis(&c);
        bool fnuz = golden_case_int(&c, "fnuz_u8") != 0, given = golden_case_int(&c, "given_scale") != 0;
        const cq_tensor *x = golden_get(f, "%s", input);
        snprintf(name, sizeof name, "%s.scale", c.name);
        const cq_tensor *want_scale = golden_get(f, "%s", name);
        cq_tensor tmp;
        snprintf(name, sizeof name, "%s.data", c.name);
        const cq_tensor *want_data = golden_data(f, name, fnuz, &tmp);
        if (!x || !want_scale || !want_data) continue;
        cq_err err = {0};
        cq_tensor *scale = NULL, *data = NULL, *deq = NULL;
        if (!given) {
            CHECKF(cq_absmax_scale(x, q, axis, &scale, &err) == CQ_OK, "%s: %s", c.name, err.msg);
            snprintf(name, sizeof name, "%s scale", c.name);
            tensors_identical(scale, want_scale, name);
        }
        int eff_axis = want_scale->ndim == 0 ? CQ_AXIS_NONE : axis;
        CHECKF(cq_quantize_symmetric(x, cq_qtype_get(q)->dtype, eff_axis, want_scale, &data, &err) == CQ_OK, "%s: %s",
               c.name, err.msg);
        snprintf(name, sizeof name, "%s data", c.name);
        tensors_identical(data, want_data, name);
        snprintf(name, sizeof name, "%s.deq", c.name);
        const cq_tensor *want_deq = golden_find(f, name);
        if (want_deq) {
            CHECKF(cq_dequantize_symmetric(want_data, want_scale, CQ_DTYPE_INVALID, &deq, &err) == CQ_OK, "%s: %s",
                   c.name, err.msg);
            snprintf(name, sizeof name, "%s deq", c.name);
            tensors_identical(deq, want_deq, name);
        }
        /* The object paths: a weight along an axis, an activation per tensor. */
        if (!given && axis != CQ_AXIS_NONE) {
            cq_qweight *qw = NULL;
            CHECKF(cq_qweight_quantize_ex(x, q, axis, CQ_OPT_DEFAULT, 0, NULL, &qw, &err) == CQ_OK, "%s: %s", c.name,
                   err.msg);
            if (qw) {
                snprintf(name, sizeof name, "%s qweight data", c.name);
                tensors_identical(qw->data, want_data, name);
                cq_tensor *wd = NULL;
                CHECK(cq_qweight_dequantize(qw, CQ_DTYPE_INVALID, &wd, &err) == CQ_OK);
                snprintf(name, sizeof name, "%s qweight deq", c.name);
                if (want_deq) tensors_identical(wd, want_deq, name);
                cq_tensor_free(wd);
            }
            cq_qweight_free(qw);
        } else if (!given) {
            cq_qactivation *a = NULL;
            CHECKF(cq_qactivation_quantize(x, q, NULL, &a, &err) == CQ_OK, "%s: %s", c.name, err.msg);
            if (a) {
                snprintf(name, sizeof name, "%s activation data", c.name);
                tensors_identical(a->data, want_data, name);
                cq_tensor *ad = NULL;
                CHECK(cq_qactivation_dequantize(a, CQ_DTYPE_INVALID, &ad, &err) == CQ_OK);
                snprintf(name, sizeof name, "%s activation deq", c.name);
                if (want_deq) tensors_identical(ad, want_deq, name);
                cq_tensor_free(ad);
            }
            cq_qactivation_free(a);
        }
        cq_tensor_free(scale), cq_tensor_free(data), cq_tensor_free(deq);
        cases++;
    }
    CHECKF(cases >= 3 * 4 * 8, "only %d symmetric cases", cases);
    cq_st_close(f);
}

/* ---- affine ---------------------------------------------------------------------------- */

TST(quant_golden_affine_max_optimizer_codes_packing_deq) {
    cq_st_file *f = golden_open("quant_affine");
    if (!f) return;
    golden_cases c;
    if (!golden_cases_begin(&c, f)) return;
    int cases = 0;
    while (golden_cases_next(&c)) {
        char input[64], name[256];
        golden_case_str(&c, "input", input, sizeof input);
        int axis = golden_case_axis(&c);
        int64_t gs = golden_case_int(&c, "group_size");
        cq_err err = {0};
        if (!strncmp(c.name, "pack.", 5)) {
            int bits = (int)golden_case_int(&c, "bits");
            const cq_tensor *codes = golden_get(f, "%s.codes", c.name), *packed = golden_get(f, "%s.packed", c.name);
            cq_tensor *p = NULL, *u = NULL;
            CHECKF(cq_pack(codes, bits, &p, &err) == CQ_OK, "%s", err.msg);
            tensors_identical(p, packed, c.name);
            CHECKF(cq_unpack(packed, bits, codes->shape[0], &u, &err) == CQ_OK, "%s", err.msg);
            tensors_identical(u, codes, c.name);
            cq_tensor_free(p), cq_tensor_free(u);
            cases++;
            continue;
        }
        const cq_tensor *x = golden_get(f, "%s", input);
        if (!x) continue;
        if (strstr(c.name, ".group.")) {
            const cq_tensor *want = golden_get(f, "%s.grouped", c.name);
            cq_tensor *g = NULL, *u = NULL;
            CHECKF(cq_group(x, axis, gs, &g, &err) == CQ_OK, "%s", err.msg);
            tensors_identical(g, want, c.name);
            CHECKF(cq_ungroup(want, axis, x->ndim, x->shape, &u, &err) == CQ_OK, "%s", err.msg);
            tensors_identical(u, x, c.name);
            cq_tensor_free(g), cq_tensor_free(u);
            cases++;
            continue;
        }
        cq_qtype q = golden_case_qtype(&c);
        int bits = cq_qtype_get(q)->bits;
        const cq_tensor *want_scale = golden_get(f, "%s.scale", c.name), *want_shift = golden_get(f, "%s.shift", c.name),
                        *want_packed = golden_get(f, "%s.packed", c.name);
        snprintf(name, sizeof name, "%s.deq", c.name);
        const cq_tensor *want_deq = golden_find(f, name);
        if (!want_scale || !want_shift || !want_packed) continue;
        cq_tensor *scale = NULL, *shift = NULL, *codes = NULL, *packed = NULL, *deq = NULL;
        CHECKF(cq_affine_optimize(x, q, axis, gs, CQ_OPT_MAX, NULL, &scale, &shift, &err) == CQ_OK, "%s: %s", c.name,
               err.msg);
        snprintf(name, sizeof name, "%s scale", c.name);
        tensors_identical(scale, want_scale, name);
        snprintf(name, sizeof name, "%s shift", c.name);
        tensors_identical(shift, want_shift, name);
        CHECKF(cq_quantize_affine(x, bits, axis, gs, want_scale, want_shift, &codes, &err) == CQ_OK, "%s: %s",
               c.name, err.msg);
        if (codes) CHECK(cq_pack(codes, bits, &packed, &err) == CQ_OK);
        snprintf(name, sizeof name, "%s packed codes", c.name);
        tensors_identical(packed, want_packed, name);
        if (want_deq && codes) {
            CHECKF(cq_dequantize_affine(codes, want_scale, want_shift, axis, x->ndim, x->shape, CQ_DTYPE_INVALID, &deq,
                                        &err) == CQ_OK, "%s: %s", c.name, err.msg);
            snprintf(name, sizeof name, "%s deq", c.name);
            tensors_identical(deq, want_deq, name);
        }
        /* The weight object reaches the same tensors. */
        cq_qweight *qw = NULL;
        CHECKF(cq_qweight_quantize_ex(x, q, axis, CQ_OPT_MAX, gs, NULL, &qw, &err) == CQ_OK, "%s: %s", c.name,
               err.msg);
        if (qw) {
            snprintf(name, sizeof name, "%s qweight", c.name);
            tensors_identical(qw->data, want_packed, name);
            tensors_identical(qw->shift, want_shift, name);
            if (want_deq) {
                cq_tensor *wd = NULL;
                CHECK(cq_qweight_dequantize(qw, CQ_DTYPE_INVALID, &wd, &err) == CQ_OK);
                tensors_identical(wd, want_deq, name);
                cq_tensor_free(wd);
            }
        }
        cq_qweight_free(qw);
        cq_tensor_free(scale), cq_tensor_free(shift), cq_tensor_free(codes), cq_tensor_free(packed),
            cq_tensor_free(deq);
        cases++;
    }
    CHECKF(cases >= 3 * 2 * 11, "only %d affine cases", cases);
    cq_st_close(f);
}

/* ---- ATen's summation order (what HQQ's means depend on) ------------------------------- */

TST(quant_golden_torch_sum_order) {
    cq_st_file *f = golden_open("quant_hqq");
    if (!f) return;
    golden_cases c;
    if (!golden_cases_begin(&c, f)) return;
    int cases = 0;
    while (golden_cases_next(&c)) {
        if (strncmp(c.name, "sum.", 4)) continue;
        char kind[16];
        golden_case_str(&c, "kind", kind, sizeof kind);
        const cq_tensor *x = golden_get(f, "%s.x", c.name), *mean = golden_get(f, "%s.mean", c.name);
        if (!x || !mean) continue;
        const float *xv = x->data, *want = mean->data;
        int bad = 0;
        if (!strcmp(kind, "full")) {
            int64_t n = golden_case_int(&c, "n");
            float sum;
            cq__torch_sum_2d(xv, n, 1, 1, n, &sum);
            bad += sum / (float)n != want[0];
        } else {
            int64_t rows = golden_case_int(&c, "rows"), cols = golden_case_int(&c, "cols");
            bool inner = !strcmp(kind, "inner");
            int64_t nout = inner ? rows : cols;
            float *sums = malloc((size_t)nout * sizeof(float));
            if (inner) cq__torch_sum_2d(xv, cols, 1, rows, cols, sums);
            else cq__torch_sum_2d(xv, rows, cols, cols, 1, sums);
            const float *want_sum = golden_get(f, "%s.sum", c.name)->data;
            for (int64_t j = 0; j < nout; j++) {
                bad += sums[j] != want_sum[j];
                bad += sums[j] / (float)(inner ? cols : rows) != want[j];
            }
            free(sums);
        }
        CHECKF(bad == 0, "%s: %d sums differ from torch", c.name, bad);
        cases++;
    }
    CHECKF(cases >= 12, "only %d sum cases", cases);
    cq_st_close(f);
}

/* ---- HQQ --------------------------------------------------------------------------------- */

/* Distance in units in the last place of dt between two finite values of dt. */
static int64_t ulp_distance(float a, float b, cq_dtype dt) {
    int64_t ia, ib;
    if (dt == CQ_F32) {
        int32_t u, v;
        memcpy(&u, &a, 4), memcpy(&v, &b, 4);
        ia = u < 0 ? INT32_MIN - (int64_t)u : u, ib = v < 0 ? INT32_MIN - (int64_t)v : v;
    } else {
        int16_t u = (int16_t)(dt == CQ_F16 ? cq_f32_to_f16(a) : cq_f32_to_bf16(a));
        int16_t v = (int16_t)(dt == CQ_F16 ? cq_f32_to_f16(b) : cq_f32_to_bf16(b));
        ia = u < 0 ? INT16_MIN - (int64_t)u : u, ib = v < 0 ? INT16_MIN - (int64_t)v : v;
    }
    return ia > ib ? ia - ib : ib - ia;
}

/* Every fixture under the given work-chunk size (HQQ's buffers are chunked; the result must not
 * depend on the chunking). */
static void hqq_golden_check(int64_t chunk) {
    int64_t saved_chunk = cq_experimental_set_hqq_chunk_elems(chunk);
    cq_st_file *f = golden_open("quant_hqq");
    if (!f) return;
    golden_cases c;
    if (!golden_cases_begin(&c, f)) return;
    int cases = 0, exact_cases = 0;
    while (golden_cases_next(&c)) {
        if (!strncmp(c.name, "sum.", 4)) continue;
        char input[64], name[256];
        golden_case_str(&c, "input", input, sizeof input);
        int axis = golden_case_axis(&c);
        int64_t gs = golden_case_int(&c, "group_size");
        cq_qtype q = golden_case_qtype(&c);
        const cq_tensor *x = golden_get(f, "%s", input), *want_scale = golden_get(f, "%s.scale", c.name),
                        *want_shift = golden_get(f, "%s.shift", c.name), *want_codes = golden_get(f, "%s.codes", c.name);
        if (!x || !want_scale || !want_shift || !want_codes) continue;
        cq_err err = {0};
        cq_tensor *scale = NULL, *shift = NULL, *codes = NULL;
        CHECKF(cq_affine_optimize(x, q, axis, gs, CQ_OPT_HQQ, NULL, &scale, &shift, &err) == CQ_OK, "%s: %s", c.name,
               err.msg);
        if (!scale) continue;
        snprintf(name, sizeof name, "%s scale", c.name);
        tensors_identical(scale, want_scale, name); /* HQQ never moves the scale */
        CHECK(cq_quantize_affine(x, cq_qtype_get(q)->bits, axis, gs, scale, shift, &codes, &err) == CQ_OK);
        int64_t n = cq_tensor_numel(shift), nc = cq_tensor_numel(codes), shift_diff = 0, max_ulp = 0, code_diff = 0;
        for (int64_t i = 0; i < n; i++) {
            float a = cq_load_f32(shift->data, shift->dtype, i), b = cq_load_f32(want_shift->data, want_shift->dtype, i);
            int64_t d = ulp_distance(a, b, shift->dtype);
            shift_diff += d != 0;
            max_ulp = d > max_ulp ? d : max_ulp;
        }
        for (int64_t i = 0; i < nc; i++) code_diff += ((uint8_t *)codes->data)[i] != ((uint8_t *)want_codes->data)[i];
        /* The bound (docs/NUMERICS.md): f16/bf16 bit-exact; f32 shifts within 2 ulp and codes
         * differing in at most 1 % of elements (torch's SLEEF powf vs the C library's). */
        bool f32 = shift->dtype == CQ_F32;
        CHECKF(f32 ? max_ulp <= 2 && code_diff * 100 <= nc : max_ulp == 0 && code_diff == 0, "%s: %lld of %lld shifts differ (max %lld ulp), %lld of %lld codes",
               c.name, (long long)shift_diff, (long long)n, (long long)max_ulp, (long long)code_diff, (long long)nc);
        if (getenv("CQ_TEST_VERBOSE"))
            printf("  %s: %lld/%lld shifts differ (max %lld ulp), %lld/%lld codes\n", c.name, (long long)shift_diff,
                   (long long)n, (long long)max_ulp, (long long)code_diff, (long long)nc);
        exact_cases += shift_diff == 0 && code_diff == 0;
        cq_tensor_free(scale), cq_tensor_free(shift), cq_tensor_free(codes);
        cases++;
    }
    CHECKF(cases >= 3 * 2 * 5, "only %d hqq cases", cases);
    printf("  hqq (work chunk %lld): %d of %d cases bit-exact\n", (long long)chunk, exact_cases, cases);
    cq_st_close(f);
    cq_experimental_set_hqq_chunk_elems(saved_chunk);
}

TST(quant_golden_hqq_within_bound) { hqq_golden_check(cq_experimental_set_hqq_chunk_elems(0)); }

TST(quant_golden_hqq_small_work_chunks) {
    hqq_golden_check(1);
    hqq_golden_check(37);
    hqq_golden_check(256);
}

/* torch's flat sum fed in random pieces equals the one-shot replay (which the sum fixtures pin
 * to torch), for sizes around every boundary of its blocks and cascade levels. */
TST(quant_torch_stream_sum_matches_one_shot) {
    static const int64_t sizes[] = {0, 1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 511, 512, 513, 3000, 16 * 32,
                                    16 * 32 + 5, 4096 * 32 + 17, ((int64_t)1 << 16) * 32 + 3, ((int64_t)1 << 17) * 32 + 31};
    uint64_t rng = 42;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int64_t n = sizes[si];
        float *x = malloc((size_t)(n ? n : 1) * sizeof(float));
        for (int64_t i = 0; i < n; i++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((int64_t)(rng >> 40) - (1 << 23)) * 0x1p-20f;
        }
        float want = 0.0f;
        if (n) cq__torch_sum_2d(x, n, 1, 1, n, &want);
        for (int pattern = 0; pattern < 3; pattern++) {
            cq__stream_sum ss;
            cq__stream_sum_init(&ss, n);
            for (int64_t i = 0; i < n;) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                int64_t piece = pattern == 0 ? n : pattern == 1 ? 1 + (int64_t)(rng >> 59) : 1 + (int64_t)(rng >> 48);
                if (piece > n - i) piece = n - i;
                cq__stream_sum_feed(&ss, x + i, piece);
                i += piece;
            }
            float got = cq__stream_sum_finish(&ss);
            CHECKF(memcmp(&got, &want, sizeof got) == 0, "n=%lld pattern %d: streamed %a, one shot %a", (long long)n,
                   pattern, got, want);
        }
        free(x);
    }
}

/* HQQ on tensors that span many work chunks (rows and column blocks, incl. a last column block
 * wider than the rest) gives the same bits as one chunk, for 1 and 2 threads. */
TST(quant_hqq_chunking_and_threads_invariant) {
    static const int64_t shapes[][2] = {{40, 300}, {300, 40}, {9, 1000}, {1000, 9}};
    static const cq_dtype dts[] = {CQ_BF16, CQ_F16, CQ_F32};
    uint64_t rng = 7;
    int64_t saved_chunk = cq_experimental_set_hqq_chunk_elems(0);
    int saved_threads = cq_get_num_threads();
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++)
            for (int axis = 0; axis >= -1; axis--) {
                cq_err err = {0};
                cq_tensor *x = NULL;
                CHECK(cq_tensor_new(&x, dts[di], 2, shapes[si], &err) == CQ_OK);
                for (int64_t i = 0; i < cq_tensor_numel(x); i++) {
                    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                    cq_store_f32(x->data, x->dtype, i, (float)((int64_t)(rng >> 44) - (1 << 19)) * 0x1p-21f);
                }
                cq_tensor *ref_scale = NULL, *ref_shift = NULL;
                cq_experimental_set_hqq_chunk_elems((int64_t)1 << 30);
                cq_set_num_threads(1);
                CHECK(cq_affine_optimize(x, CQ_QINT4, axis, 0, CQ_OPT_HQQ, NULL, &ref_scale, &ref_shift, &err) == CQ_OK);
                static const int64_t chunks[] = {1, 100, 1000, 4096};
                for (size_t ci = 0; ref_shift && ci < sizeof chunks / sizeof chunks[0]; ci++)
                    for (int threads = 1; threads <= 2; threads++) {
                        cq_experimental_set_hqq_chunk_elems(chunks[ci]);
                        cq_set_num_threads(threads);
                        cq_tensor *scale = NULL, *shift = NULL;
                        CHECK(cq_affine_optimize(x, CQ_QINT4, axis, 0, CQ_OPT_HQQ, NULL, &scale, &shift, &err) == CQ_OK);
                        if (shift)
                            CHECKF(!memcmp(shift->data, ref_shift->data, cq_tensor_nbytes(shift)),
                                   "%lldx%lld %s axis %d: chunk %lld, %d threads changes the shifts",
                                   (long long)shapes[si][0], (long long)shapes[si][1], cq_dtype_name(dts[di]), axis,
                                   (long long)chunks[ci], threads);
                        cq_tensor_free(scale), cq_tensor_free(shift);
                    }
                cq_tensor_free(ref_scale), cq_tensor_free(ref_shift), cq_tensor_free(x);
            }
    cq_experimental_set_hqq_chunk_elems(saved_chunk);
    cq_set_num_threads(saved_threads);
}

/* ---- whole modules: quanto's quantize() + freeze() state dicts --------------------------- */

TST(quant_golden_modules_state_dicts) {
    cq_st_file *f = golden_open("quant_modules");
    if (!f) return;
    golden_cases c;
    if (!golden_cases_begin(&c, f)) return;
    int cases = 0, tinygemm = 0;
    while (golden_cases_next(&c)) {
        char opt_name[16], kind[64], name[256];
        golden_case_str(&c, "optimizer", opt_name, sizeof opt_name);
        golden_case_str(&c, "kind", kind, sizeof kind);
        cq_qtype q = golden_case_qtype(&c);
        bool fnuz = golden_case_int(&c, "fnuz_u8") != 0;
        int64_t want_gs = golden_case_int(&c, "group_size");
        cq_optimizer_kind opt = strcmp(opt_name, "hqq") ? CQ_OPT_DEFAULT : CQ_OPT_HQQ;
        const cq_tensor *w = golden_get(f, "%s.w", c.name);
        cq_tensor tmp;
        snprintf(name, sizeof name, "%s.weight.%s", c.name, cq_qweight_data_key(q));
        const cq_tensor *want_data = golden_data(f, name, fnuz, &tmp);
        const cq_tensor *want_scale = golden_get(f, "%s.weight._scale", c.name);
        snprintf(name, sizeof name, "%s.weight._shift", c.name);
        const cq_tensor *want_shift = golden_find(f, name);
        if (!w || !want_data || !want_scale) continue;
        cq_err err = {0};
        cq_qweight *qw = NULL;
        CHECKF(cq_qweight_quantize(w, q, opt, -1, &qw, &err) == CQ_OK, "%s: %s", c.name, err.msg);
        if (!qw) continue;
        CHECKF(qw->group_size == want_gs, "%s: group size %lld, quanto %lld", c.name, (long long)qw->group_size,
               (long long)want_gs);
        /* quanto saved this one through TinyGemm's representation. */
        bool tg = cq_qweight_apply_tinygemm_roundtrip(qw);
        CHECKF(tg == (strstr(kind, "TinyGemm") != NULL), "%s: tinygemm round trip %d for %s", c.name, tg, kind);
        tinygemm += tg;
        snprintf(name, sizeof name, "%s data", c.name);
        tensors_identical(qw->data, want_data, name);
        snprintf(name, sizeof name, "%s scale", c.name);
        tensors_identical(qw->scale, want_scale, name);
        CHECKF((qw->shift != NULL) == (want_shift != NULL), "%s: shift presence", c.name);
        if (want_shift && qw->shift) {
            snprintf(name, sizeof name, "%s shift", c.name);
            tensors_identical(qw->shift, want_shift, name);
        }
        /* Loading the state-dict tensors gives the same weight back (group size inferred). */
        cq_qweight *loaded = NULL;
        CHECKF(cq_qweight_from_tensors(q, w->ndim, w->shape, -1, want_data, want_scale, want_shift, false, &loaded,
                                       &err) == CQ_OK, "%s: %s", c.name, err.msg);
        if (loaded) {
            CHECKF(loaded->group_size == want_gs, "%s: inferred group size %lld", c.name,
                   (long long)loaded->group_size);
            cq_tensor *a = NULL, *b = NULL;
            CHECK(cq_qweight_dequantize(loaded, CQ_DTYPE_INVALID, &a, &err) == CQ_OK);
            CHECK(cq_qweight_dequantize(qw, CQ_DTYPE_INVALID, &b, &err) == CQ_OK);
            snprintf(name, sizeof name, "%s loaded deq", c.name);
            if (a && b) tensors_identical(a, b, name);
            cq_tensor_free(a), cq_tensor_free(b);
        }
        cq_qweight_free(loaded);
        cq_qweight_free(qw);
        cases++;
    }
    CHECKF(cases >= 3 * 14 + 1, "only %d module cases", cases);
    CHECKF(tinygemm == 1, "%d TinyGemm cases", tinygemm);
    cq_st_close(f);
}
