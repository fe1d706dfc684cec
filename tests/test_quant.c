/*
 * test_quant.c - properties of the quantization math that need no reference: packing round
 * trips for odd row counts, the int8 error bound and idempotence, zero-range rows and groups
 * (scale 0, codes 0, never NaN), the module group-size rule, thread-count independence,
 * cq_qweight/cq_qactivation plumbing, and every error path returning a status with a message.
 * Bit-exactness against optimum-quanto is in test_quant_golden.c.
 */
#include "cquanto.h"
#include "tst.h"

#include <math.h>
#include <stdlib.h>

static uint32_t rng_state = 0x12345678u;

static uint32_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Roughly normal values scaled per row over a few decades, stored in dt. */
static cq_tensor *random_tensor(cq_dtype dt, int ndim, const int64_t *shape) {
    cq_tensor *t = NULL;
    if (cq_tensor_new(&t, dt, ndim, shape, NULL) != CQ_OK) return NULL;
    int64_t n = cq_tensor_numel(t), rows = ndim ? shape[0] : 1, per_row = rows ? n / rows : 0;
    for (int64_t i = 0; i < n; i++) {
        float u = 0;
        for (int k = 0; k < 4; k++) u += (float)(rng_next() & 0xffff) / 65536.0f - 0.5f;
        float row_scale = powf(10.0f, (float)((i / (per_row ? per_row : 1)) % 5) - 2.0f);
        cq_store_f32(t->data, dt, i, u * row_scale);
    }
    return t;
}

static bool has_nan(const cq_tensor *t) {
    for (int64_t i = 0; i < cq_tensor_numel(t); i++) {
        float v = cq_load_f32(t->data, t->dtype, i);
        if (v != v) return true;
    }
    return false;
}

/* ---- packing ---------------------------------------------------------------------------- */

TST(quant_pack_round_trip_odd_rows) {
    for (int bits = 2; bits <= 4; bits += 2) {
        for (int64_t n = 1; n <= 17; n++) {
            int64_t shape[3] = {n, 3, 5};
            cq_tensor *codes = NULL, *packed = NULL, *back = NULL;
            CHECK(cq_tensor_new(&codes, CQ_U8, 3, shape, NULL) == CQ_OK);
            uint8_t *c = codes->data;
            for (int64_t i = 0; i < n * 15; i++) c[i] = (uint8_t)(rng_next() & ((1u << bits) - 1));
            cq_err err = {0};
            CHECKF(cq_pack(codes, bits, &packed, &err) == CQ_OK, "%s", err.msg);
            CHECK(packed->shape[0] == cq_packed_rows(n, bits) && packed->shape[1] == 3 && packed->shape[2] == 5);
            CHECKF(cq_unpack(packed, bits, n, &back, &err) == CQ_OK, "%s", err.msg);
            CHECK_BYTES(back->data, codes->data, (size_t)(n * 15), "unpack(pack(codes))");
            int bad = 0;
            for (int64_t r = 0; r < n; r++)
                for (int64_t k = 0; k < 15; k++)
                    bad += cq_packed_code(packed->data, n, 15, bits, r, k) != c[r * 15 + k];
            CHECKF(bad == 0, "cq_packed_code: %d wrong (bits %d, n %lld)", bad, bits, (long long)n);
            cq_tensor_free(codes), cq_tensor_free(packed), cq_tensor_free(back);
        }
    }
    /* The documented layout: int4, 5 rows -> byte row 0 = c0 | c3 << 4, row 2 = c2. */
    uint8_t codes[5] = {1, 2, 3, 4, 5}, packed[3];
    cq_pack_codes(codes, 5, 1, 4, packed);
    CHECK(packed[0] == (1 | 4 << 4) && packed[1] == (2 | 5 << 4) && packed[2] == 3);
    uint8_t codes2[6] = {1, 2, 3, 0, 1, 2}, packed2[2];
    cq_pack_codes(codes2, 6, 1, 2, packed2); /* R = 2: rows r, r+2, r+4 */
    CHECK(packed2[0] == (1 | 3 << 2 | 1 << 4) && packed2[1] == (2 | 0 << 2 | 2 << 4));
}

TST(quant_pack_errors) {
    int64_t shape[2] = {3, 2};
    cq_tensor *codes = NULL, *out = NULL;
    cq_tensor_new(&codes, CQ_U8, 2, shape, NULL);
    ((uint8_t *)codes->data)[4] = 16;
    cq_err err = {0};
    CHECK(cq_pack(codes, 4, &out, &err) == CQ_E_ARG && out == NULL && strstr(err.msg, "does not fit"));
    CHECK(cq_pack(codes, 3, &out, &err) == CQ_E_ARG && strstr(err.msg, "bits"));
    CHECK(cq_unpack(codes, 4, 9, &out, &err) == CQ_E_SHAPE && strstr(err.msg, "cannot hold"));
    codes->dtype = CQ_I8;
    CHECK(cq_pack(codes, 4, &out, &err) == CQ_E_DTYPE && strstr(err.msg, "U8"));
    cq_tensor_free(codes);
}

/* ---- symmetric properties -------------------------------------------------------------- */

TST(quant_int8_error_bound_and_idempotence) {
    const cq_dtype dts[] = {CQ_F32, CQ_F16, CQ_BF16};
    for (size_t d = 0; d < 3; d++) {
        int64_t shape[2] = {17, 33};
        cq_tensor *x = random_tensor(dts[d], 2, shape), *scale = NULL, *q = NULL, *deq = NULL, *q2 = NULL;
        cq_err err = {0};
        CHECK(cq_absmax_scale(x, CQ_QINT8, 0, &scale, &err) == CQ_OK);
        CHECK(cq_quantize_symmetric(x, CQ_I8, 0, scale, &q, &err) == CQ_OK);
        CHECK(cq_dequantize_symmetric(q, scale, CQ_DTYPE_INVALID, &deq, &err) == CQ_OK);
        int bad = 0;
        for (int64_t r = 0; r < 17; r++) {
            float s = cq_load_f32(scale->data, scale->dtype, r);
            for (int64_t c = 0; c < 33; c++) {
                float xv = cq_load_f32(x->data, x->dtype, r * 33 + c), dv = cq_load_f32(deq->data, deq->dtype, r * 33 + c);
                /* half a step, plus the roundings of x/s and s*q in a 16-bit dtype */
                float tol = s / 2 * (dts[d] == CQ_F32 ? 1.0001f : 1.02f) + fabsf(xv) * (dts[d] == CQ_F32 ? 1e-6f : 1e-2f);
                bad += !(fabsf(xv - dv) <= tol);
            }
        }
        CHECKF(bad == 0, "%s: %d elements beyond scale/2", cq_dtype_name(dts[d]), bad);
        /* Quantizing the dequantized tensor with the same scale gives the same codes. */
        CHECK(cq_quantize_symmetric(deq, CQ_I8, 0, scale, &q2, &err) == CQ_OK);
        CHECK_BYTES(q2->data, q->data, cq_tensor_nbytes(q), "q(deq(q(x)))");
        cq_tensor_free(x), cq_tensor_free(scale), cq_tensor_free(q), cq_tensor_free(deq), cq_tensor_free(q2);
    }
}

TST(quant_zero_rows_give_zero_scale_and_codes_never_nan) {
    const cq_qtype qs[] = {CQ_QINT8, CQ_QFLOAT8_E4M3FN, CQ_QFLOAT8_E5M2, CQ_QFLOAT8_E4M3FNUZ};
    const cq_dtype dts[] = {CQ_F32, CQ_F16, CQ_BF16};
    for (size_t d = 0; d < 3; d++) {
        for (size_t k = 0; k < 4; k++) {
            int64_t shape[2] = {4, 8};
            cq_tensor *x = random_tensor(dts[d], 2, shape);
            for (int64_t c = 0; c < 8; c++) cq_store_f32(x->data, x->dtype, 2 * 8 + c, 0.0f); /* row 2 is zero */
            cq_qweight *w = NULL;
            cq_err err = {0};
            CHECK(cq_qweight_quantize(x, qs[k], CQ_OPT_DEFAULT, -1, &w, &err) == CQ_OK);
            CHECK(cq_load_f32(w->scale->data, w->scale->dtype, 2) == 0.0f);
            bool zero_codes = true;
            for (int64_t c = 0; c < 8; c++) zero_codes &= cq_load_f32(w->data->data, w->data->dtype, 2 * 8 + c) == 0.0f;
            CHECK(zero_codes);
            cq_tensor *deq = NULL;
            CHECK(cq_qweight_dequantize(w, CQ_F32, &deq, &err) == CQ_OK);
            CHECK(!has_nan(deq) && ((float *)deq->data)[2 * 8 + 3] == 0.0f);
            cq_tensor_free(deq), cq_qweight_free(w), cq_tensor_free(x);
        }
    }
    /* A given zero scale: codes 0 even for non-zero inputs (quanto: +-inf -> clamped, 0/0 -> NaN). */
    int64_t shape[1] = {3};
    cq_tensor *x = NULL, *s = NULL, *q = NULL;
    cq_tensor_new(&x, CQ_F32, 1, shape, NULL);
    ((float *)x->data)[0] = 1.0f;
    cq_tensor_new(&s, CQ_F32, 0, NULL, NULL);
    CHECK(cq_quantize_symmetric(x, CQ_I8, CQ_AXIS_NONE, s, &q, NULL) == CQ_OK);
    CHECK(((int8_t *)q->data)[0] == 0 && ((int8_t *)q->data)[1] == 0);
    cq_tensor_free(x), cq_tensor_free(s), cq_tensor_free(q);
}

TST(quant_affine_constant_groups_reproduce_the_constant) {
    const cq_dtype dts[] = {CQ_F32, CQ_F16, CQ_BF16};
    const cq_optimizer_kind opts[] = {CQ_OPT_MAX, CQ_OPT_HQQ};
    for (size_t d = 0; d < 3; d++) {
        for (size_t o = 0; o < 2; o++) {
            for (int q = CQ_QINT2; q <= CQ_QINT4; q++) {
                int64_t shape[2] = {6, 256};
                cq_tensor *x = random_tensor(dts[d], 2, shape);
                /* Group 3 (row 1, second half) is constant 0.3; row 4 is all zero. */
                for (int64_t c = 128; c < 256; c++) cq_store_f32(x->data, x->dtype, 256 + c, 0.3f);
                for (int64_t c = 0; c < 256; c++) cq_store_f32(x->data, x->dtype, 4 * 256 + c, 0.0f);
                float constant = cq_round_to_dtype(0.3f, dts[d]);
                cq_qweight *w = NULL;
                cq_err err = {0};
                CHECKF(cq_qweight_quantize(x, (cq_qtype)q, opts[o], 128, &w, &err) == CQ_OK, "%s", err.msg);
                if (!w) continue;
                CHECK(cq_load_f32(w->scale->data, w->scale->dtype, 3) == 0.0f);
                cq_tensor *codes = NULL, *deq = NULL;
                CHECK(cq_qweight_unpack_codes(w, &codes, &err) == CQ_OK);
                bool zero = true;
                for (int64_t c = 0; c < 128; c++) zero &= ((uint8_t *)codes->data)[3 * 128 + c] == 0;
                CHECK(zero);
                CHECK(cq_qweight_dequantize(w, CQ_F32, &deq, &err) == CQ_OK);
                CHECK(!has_nan(deq));
                bool exact = true;
                for (int64_t c = 128; c < 256; c++) exact &= ((float *)deq->data)[256 + c] == constant;
                for (int64_t c = 0; c < 256; c++) exact &= ((float *)deq->data)[4 * 256 + c] == 0.0f;
                CHECKF(exact, "%s %s opt %d: constant groups not reproduced", cq_dtype_name(dts[d]),
                       cq_qtype_name((cq_qtype)q), (int)opts[o]);
                cq_tensor_free(codes), cq_tensor_free(deq), cq_qweight_free(w), cq_tensor_free(x);
            }
        }
    }
}

TST(quant_affine_error_bound) {
    int64_t shape[2] = {8, 256};
    cq_tensor *x = random_tensor(CQ_F32, 2, shape);
    cq_qweight *w = NULL;
    cq_tensor *deq = NULL;
    CHECK(cq_qweight_quantize(x, CQ_QINT4, CQ_OPT_MAX, 64, &w, NULL) == CQ_OK);
    CHECK(cq_qweight_dequantize(w, CQ_F32, &deq, NULL) == CQ_OK);
    int bad = 0;
    for (int64_t i = 0; i < 8 * 256; i++) {
        float s = ((float *)w->scale->data)[i / 64];
        bad += !(fabsf(((float *)x->data)[i] - ((float *)deq->data)[i]) <= s * 0.5001f + 1e-6f);
    }
    CHECKF(bad == 0, "%d elements beyond scale/2", bad);
    cq_tensor_free(x), cq_tensor_free(deq), cq_qweight_free(w);
}

/* ---- group sizes, grouping ------------------------------------------------------------ */

TST(quant_default_group_size_rule) {
    struct {
        int64_t in, want;
    } cases[] = {{64, 0}, {128, 0}, {129, 0}, {256, 128}, {288, 96}, {320, 64}, {160, 32}, {200, 0}, {4096, 128},
                 {11008, 128}, {96 * 3, 96}, {32 * 5, 32}, {130, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t shape[2] = {7, cases[i].in};
        CHECKF(cq_default_group_size(2, shape) == cases[i].want, "in %lld", (long long)cases[i].in);
    }
    int64_t conv[4] = {8, 24, 4, 4}; /* in = 384 */
    CHECK(cq_default_group_size(4, conv) == 128);
    int64_t out_shape[2];
    int64_t shape[2] = {3, 384};
    CHECK(cq_grouped_shape(2, shape, 0, 96, out_shape, NULL) == CQ_OK && out_shape[0] == 12 && out_shape[1] == 96);
    CHECK(cq_grouped_shape(2, shape, -1, 3, out_shape, NULL) == CQ_OK && out_shape[0] == 3 && out_shape[1] == 384);
    cq_err err = {0};
    CHECK(cq_grouped_shape(2, shape, 0, 100, out_shape, &err) == CQ_E_ARG && strstr(err.msg, "divisor"));
}

TST(quant_group_ungroup_round_trip) {
    int64_t shape[3] = {6, 4, 12};
    cq_tensor *x = random_tensor(CQ_BF16, 3, shape);
    const int axes[] = {0, -1, 2};
    const int64_t sizes[] = {4, 12, 8, 24};
    for (size_t a = 0; a < 3; a++) {
        for (size_t s = 0; s < 4; s++) {
            cq_tensor *g = NULL, *u = NULL;
            cq_err err = {0};
            cq_status st = cq_group(x, axes[a], sizes[s], &g, &err);
            int64_t axis_numel = 6 * 4 * 12 / (axes[a] == 0 ? 6 : 12);
            if (axis_numel % sizes[s]) {
                CHECK(st == CQ_E_ARG && g == NULL);
                continue;
            }
            CHECKF(st == CQ_OK, "%s", err.msg);
            CHECK(cq_ungroup(g, axes[a], 3, shape, &u, &err) == CQ_OK);
            CHECK_BYTES(u->data, x->data, cq_tensor_nbytes(x), "ungroup(group(x))");
            cq_tensor_free(g), cq_tensor_free(u);
        }
    }
    cq_tensor_free(x);
}

/* ---- objects ---------------------------------------------------------------------------- */

TST(quant_qweight_from_tensors_round_trip_and_validation) {
    int64_t shape[2] = {5, 256};
    cq_tensor *x = random_tensor(CQ_F16, 2, shape);
    cq_qweight *w = NULL, *l = NULL;
    cq_err err = {0};
    CHECK(cq_qweight_quantize(x, CQ_QINT4, CQ_OPT_DEFAULT, -1, &w, &err) == CQ_OK && w->group_size == 128);
    CHECK(w->data->shape[0] == 5 && w->data->shape[1] == 128); /* 10 groups -> 5 packed rows */
    CHECK(w->scale->shape[0] == 10 && w->scale->shape[1] == 1);
    CHECK(strcmp(cq_qweight_data_key(CQ_QINT4), "_data._data") == 0 && strcmp(cq_qweight_data_key(CQ_QINT8), "_data") == 0);
    CHECK(cq_qweight_from_tensors(CQ_QINT4, 2, shape, -1, w->data, w->scale, w->shift, true, &l, &err) == CQ_OK);
    CHECK(l && l->group_size == 128 && l->data->owns_data);
    cq_tensor *a = NULL, *b = NULL;
    CHECK(cq_qweight_dequantize(w, CQ_F32, &a, &err) == CQ_OK && a->dtype == CQ_F32);
    CHECK(cq_qweight_dequantize(l, CQ_DTYPE_INVALID, &b, &err) == CQ_OK && b->dtype == CQ_F16);
    bool same = true;
    for (int64_t i = 0; i < 5 * 256; i++) same &= ((float *)a->data)[i] == cq_load_f32(b->data, CQ_F16, i);
    CHECK(same);
    cq_tensor_free(b);
    CHECK(cq_qweight_dequantize(w, CQ_BF16, &b, &err) == CQ_E_DTYPE && b == NULL && strstr(err.msg, "F32"));
    cq_qweight_free(l);
    /* Validation of file tensors. */
    CHECK(cq_qweight_from_tensors(CQ_QINT4, 2, shape, -1, w->data, w->scale, NULL, false, &l, &err) == CQ_E_ARG &&
          strstr(err.msg, "_shift"));
    CHECK(cq_qweight_from_tensors(CQ_QINT2, 2, shape, -1, w->data, w->scale, w->shift, false, &l, &err) == CQ_E_SHAPE &&
          strstr(err.msg, "weight._data._data"));
    CHECK(cq_qweight_from_tensors(CQ_QINT4, 2, shape, 64, w->data, w->scale, w->shift, false, &l, &err) == CQ_E_SHAPE);
    CHECK(cq_qweight_from_tensors(CQ_QINT8, 2, shape, -1, w->data, w->scale, NULL, false, &l, &err) == CQ_E_DTYPE &&
          strstr(err.msg, "I8"));
    int64_t bad_shape[2] = {5, 250};
    CHECK(cq_qweight_from_tensors(CQ_QINT4, 2, bad_shape, -1, w->data, w->scale, w->shift, false, &l, &err) != CQ_OK);
    CHECK(l == NULL);
    cq_tensor_free(a), cq_tensor_free(x), cq_qweight_free(w);
}

TST(quant_qactivation_with_given_and_computed_scale) {
    int64_t shape[3] = {2, 3, 40};
    cq_tensor *x = random_tensor(CQ_BF16, 3, shape), *scale = NULL, *deq = NULL;
    cq_qactivation *a = NULL, *b = NULL;
    cq_err err = {0};
    CHECK(cq_qactivation_quantize(x, CQ_QINT8, NULL, &a, &err) == CQ_OK && a->scale->ndim == 0);
    CHECK(cq_absmax_scale(x, CQ_QINT8, CQ_AXIS_NONE, &scale, &err) == CQ_OK);
    CHECK(cq_qactivation_quantize(x, CQ_QINT8, scale, &b, &err) == CQ_OK);
    CHECK_BYTES(a->data->data, b->data->data, cq_tensor_nbytes(a->data), "given absmax scale");
    CHECK(cq_qactivation_dequantize(a, CQ_F32, &deq, &err) == CQ_OK && deq->ndim == 3);
    cq_qactivation_free(b);
    CHECK(cq_qactivation_quantize(x, CQ_QINT4, NULL, &b, &err) == CQ_E_ARG && strstr(err.msg, "8-bit"));
    cq_qactivation_free(a), cq_tensor_free(x), cq_tensor_free(scale), cq_tensor_free(deq);
    cq_qactivation_free(NULL);
    cq_qweight_free(NULL);
}

/* ---- errors ------------------------------------------------------------------------------ */

TST(quant_errors_have_statuses_and_messages) {
    int64_t shape[3] = {4, 6, 8}, vshape[1] = {8};
    cq_tensor *x = random_tensor(CQ_F32, 3, shape), *v = random_tensor(CQ_F32, 1, vshape), *out = NULL, *out2 = NULL;
    cq_tensor *ix = NULL;
    cq_tensor_new(&ix, CQ_I8, 3, shape, NULL);
    cq_err err = {0};
    /* bad axis */
    CHECK(cq_absmax_scale(x, CQ_QINT8, 1, &out, &err) == CQ_E_ARG && strstr(err.msg, "axis 1"));
    CHECK(cq_affine_optimize(x, CQ_QINT4, CQ_AXIS_NONE, 0, CQ_OPT_MAX, NULL, &out, &out2, &err) == CQ_E_ARG);
    /* group size not dividing */
    CHECK(cq_affine_optimize(x, CQ_QINT4, 0, 5, CQ_OPT_MAX, NULL, &out, &out2, &err) == CQ_E_ARG &&
          strstr(err.msg, "divisor") && out == NULL && out2 == NULL);
    /* wrong dtypes */
    CHECK(cq_absmax_scale(ix, CQ_QINT8, 0, &out, &err) == CQ_E_DTYPE && strstr(err.msg, "I8"));
    CHECK(cq_absmax_scale(x, CQ_QINT4, 0, &out, &err) == CQ_E_ARG && strstr(err.msg, "qint4"));
    CHECK(cq_affine_optimize(x, CQ_QINT8, 0, 0, CQ_OPT_MAX, NULL, &out, &out2, &err) == CQ_E_ARG);
    CHECK(cq_affine_optimize(x, CQ_QINT4, 0, 0, CQ_OPT_ABSMAX, NULL, &out, &out2, &err) == CQ_E_ARG);
    cq_tensor *scale = NULL;
    CHECK(cq_absmax_scale(x, CQ_QINT8, 0, &scale, &err) == CQ_OK);
    CHECK(cq_quantize_symmetric(x, CQ_U8, 0, scale, &out, &err) == CQ_E_DTYPE && strstr(err.msg, "U8"));
    CHECK(cq_quantize_symmetric(x, CQ_I8, CQ_AXIS_NONE, scale, &out, &err) == CQ_E_SHAPE &&
          strstr(err.msg, "scalar"));
    int64_t two_axes[3] = {4, 6, 1};
    cq_tensor *scale2 = NULL;
    cq_tensor_new(&scale2, CQ_F32, 3, two_axes, NULL);
    CHECK(cq_quantize_symmetric(x, CQ_I8, 0, scale2, &out, &err) == CQ_E_SHAPE && strstr(err.msg, "single axis"));
    cq_tensor_free(scale2);
    CHECK(cq_quantize_symmetric(v, CQ_I8, 0, scale, &out, &err) == CQ_E_SHAPE && strstr(err.msg, "1-D"));
    scale->dtype = CQ_F16; /* header lie on purpose: dtype mismatch is checked before data */
    CHECK(cq_quantize_symmetric(x, CQ_I8, 0, scale, &out, &err) == CQ_E_DTYPE && strstr(err.msg, "differs"));
    scale->dtype = CQ_F32;
    /* axis of size 1 */
    int64_t one[2] = {1, 8};
    cq_tensor *row = random_tensor(CQ_F32, 2, one), *rs = NULL;
    CHECK(cq_absmax_scale(row, CQ_QINT8, 0, &rs, &err) == CQ_OK && rs->ndim == 0); /* becomes per tensor */
    cq_tensor *rs2 = NULL;
    int64_t rs_shape[2] = {1, 1};
    cq_tensor_new(&rs2, CQ_F32, 2, rs_shape, NULL);
    CHECK(cq_quantize_symmetric(row, CQ_I8, 0, rs2, &out, &err) == CQ_E_SHAPE && strstr(err.msg, "size 1"));
    /* affine scale/shift mismatches */
    cq_tensor *s4 = NULL, *h4 = NULL;
    CHECK(cq_affine_optimize(x, CQ_QINT4, 0, 0, CQ_OPT_MAX, NULL, &s4, &h4, &err) == CQ_OK);
    CHECK(cq_quantize_affine(x, 4, 0, 0, s4, NULL, &out, &err) == CQ_E_ARG);
    CHECK(cq_quantize_affine(x, 4, 0, 0, s4, scale, &out, &err) == CQ_OK); /* same shape and dtype: fine */
    cq_tensor_free(out);
    out = NULL;
    CHECK(cq_quantize_affine(x, 4, 0, 8, s4, h4, &out, &err) == CQ_E_SHAPE && out == NULL);
    CHECK(cq_quantize_affine(x, 9, 0, 0, s4, h4, &out, &err) == CQ_E_ARG && strstr(err.msg, "bits"));
    CHECK(cq_dequantize_affine(ix, s4, h4, 0, 0, NULL, CQ_DTYPE_INVALID, &out, &err) == CQ_E_DTYPE);
    /* qweight option mismatches */
    cq_qweight *w = NULL;
    CHECK(cq_qweight_quantize(x, CQ_QINT8, CQ_OPT_HQQ, -1, &w, &err) == CQ_E_ARG && strstr(err.msg, "absmax"));
    CHECK(cq_qweight_quantize(x, CQ_QINT8, CQ_OPT_DEFAULT, 32, &w, &err) == CQ_E_ARG && strstr(err.msg, "group"));
    CHECK(cq_qweight_quantize(x, CQ_QINT4, CQ_OPT_ABSMAX, -1, &w, &err) == CQ_E_ARG && strstr(err.msg, "affine"));
    CHECK(cq_qweight_quantize(x, CQ_QNONE, CQ_OPT_DEFAULT, -1, &w, &err) == CQ_E_ARG && w == NULL);
    CHECK(cq_qweight_quantize_ex(x, CQ_QINT4, 1, CQ_OPT_DEFAULT, -1, NULL, &w, &err) == CQ_E_ARG);
    CHECK(cq_qweight_quantize(row, CQ_QINT4, CQ_OPT_HQQ, 0, &w, &err) == CQ_E_SHAPE && strstr(err.msg, "hqq"));
    cq_hqq_opts bad = cq_hqq_default_opts();
    bad.iters = -1;
    CHECK(cq_qweight_quantize_ex(x, CQ_QINT4, 0, CQ_OPT_HQQ, 0, &bad, &w, &err) == CQ_E_ARG && w == NULL);
    cq_tensor_free(x), cq_tensor_free(v), cq_tensor_free(ix), cq_tensor_free(scale), cq_tensor_free(row),
        cq_tensor_free(rs), cq_tensor_free(rs2), cq_tensor_free(s4), cq_tensor_free(h4);
}

/* ---- thread counts ---------------------------------------------------------------------- */

TST(quant_thread_count_does_not_change_results) {
    int64_t shape[2] = {96, 1536}; /* large enough for every parallel region */
    const cq_qtype qs[] = {CQ_QINT8, CQ_QFLOAT8_E4M3FN, CQ_QINT4, CQ_QINT2};
    const cq_optimizer_kind opts[] = {CQ_OPT_DEFAULT, CQ_OPT_DEFAULT, CQ_OPT_HQQ, CQ_OPT_MAX};
    int saved = cq_get_num_threads();
    for (int dt = 0; dt < 2; dt++) {
        cq_tensor *x = random_tensor(dt ? CQ_BF16 : CQ_F32, 2, shape);
        for (size_t k = 0; k < 4; k++) {
            cq_qweight *a = NULL, *b = NULL;
            cq_tensor *da = NULL, *db = NULL;
            cq_set_num_threads(1);
            CHECK(cq_qweight_quantize(x, qs[k], opts[k], -1, &a, NULL) == CQ_OK);
            CHECK(cq_qweight_dequantize(a, CQ_F32, &da, NULL) == CQ_OK);
            cq_set_num_threads(3);
            CHECK(cq_qweight_quantize(x, qs[k], opts[k], -1, &b, NULL) == CQ_OK);
            CHECK(cq_qweight_dequantize(b, CQ_F32, &db, NULL) == CQ_OK);
            CHECK_BYTES(a->data->data, b->data->data, cq_tensor_nbytes(a->data), "data with 1 and 3 threads");
            CHECK_BYTES(a->scale->data, b->scale->data, cq_tensor_nbytes(a->scale), "scale with 1 and 3 threads");
            if (a->shift) CHECK_BYTES(a->shift->data, b->shift->data, cq_tensor_nbytes(a->shift), "shift");
            CHECK_BYTES(da->data, db->data, cq_tensor_nbytes(da), "dequantized with 1 and 3 threads");
            cq_qweight_free(a), cq_qweight_free(b), cq_tensor_free(da), cq_tensor_free(db);
        }
        cq_tensor_free(x);
    }
    cq_set_num_threads(saved);
}

/* quanto's HQQ on an ungrouped N-D weight means over the last dim only: a (O,I,kh,1) shift beside
 * the (O,1,1,1) scale once a step is kept, the Max shift's (O,1,1,1) when none is (iters 0, or
 * an exactly representable weight). Bytes against quanto: tests/data/interop/conv_*_hqq. */
TST(quant_hqq_conv_shift_is_per_kernel_row) {
    int64_t shape[4] = {5, 3, 2, 4};
    cq_tensor *x = random_tensor(CQ_BF16, 4, shape);
    cq_err err = {0};
    cq_qweight *w = NULL, *kept = NULL, *back = NULL;
    CHECKF(cq_qweight_quantize(x, CQ_QINT4, CQ_OPT_HQQ, -1, &w, &err) == CQ_OK, "%s", err.msg);
    cq_hqq_opts none = cq_hqq_default_opts();
    none.iters = 0;
    CHECK(cq_qweight_quantize_ex(x, CQ_QINT2, 0, CQ_OPT_HQQ, -1, &none, &kept, &err) == CQ_OK);
    if (w && kept) {
        CHECK(w->scale->ndim == 4 && w->scale->shape[0] == 5 && w->scale->shape[1] == 1 && w->scale->shape[3] == 1);
        CHECK(w->shift->ndim == 4 && w->shift->shape[0] == 5 && w->shift->shape[1] == 3 && w->shift->shape[2] == 2 &&
              w->shift->shape[3] == 1);
        CHECK(cq_tensor_same_shape(kept->scale, kept->shift));
        /* The file's tensors rebuild the same weight, and it dequantizes the same. */
        CHECKF(cq_qweight_from_tensors(CQ_QINT4, 4, shape, -1, w->data, w->scale, w->shift, true, &back, &err) == CQ_OK,
               "%s", err.msg);
        cq_tensor *a = NULL, *b = NULL;
        CHECK(back && cq_qweight_dequantize(w, CQ_DTYPE_INVALID, &a, &err) == CQ_OK &&
              cq_qweight_dequantize(back, CQ_DTYPE_INVALID, &b, &err) == CQ_OK &&
              !memcmp(a->data, b->data, cq_tensor_nbytes(a)));
        cq_tensor_free(a), cq_tensor_free(b);
        /* A shift that refines along a non-leading run is not quanto's and is refused. */
        cq_qweight_free(back);
        back = NULL;
        int64_t odd[4] = {5, 1, 2, 4};
        cq_tensor *bad = NULL;
        cq_tensor_new(&bad, CQ_BF16, 4, odd, NULL);
        CHECK(cq_qweight_from_tensors(CQ_QINT4, 4, shape, -1, w->data, w->scale, bad, true, &back, &err) ==
                  CQ_E_SHAPE && back == NULL);
        cq_tensor_free(bad);
    }
    cq_qweight_free(w), cq_qweight_free(kept), cq_qweight_free(back);
    cq_tensor_free(x);
}
