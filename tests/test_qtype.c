/*
 * test_qtype.c - the qtype traits table (src/core/qtype.c), walked entry by entry: each
 * entry's facts agree with each other and with what the layers do with that qtype (names
 * parse back, ranges match the dtypes, quantized weights have the storage, keys, packing and
 * shift the table gives, the optimizers and roles it lists are exactly those accepted). A new
 * qtype is tested by adding its row to the table; nothing here names one.
 */
#include "tst.h"
#include "core/internal.h"
#include "core/elem.h" /* cq__affine_code_max */

#include <math.h>

static float max_finite(cq_dtype dt) {
    float best = 0.0f;
    for (int b = 0; b < 256; b++) {
        uint8_t x = (uint8_t)b;
        float v = dt == CQ_F8_E4M3FN ? cq_f8_e4m3fn_to_f32(x) : dt == CQ_F8_E5M2 ? cq_f8_e5m2_to_f32(x)
                                                                                 : cq_f8_e4m3fnuz_to_f32(x);
        if (isfinite(v) && v > best) best = v;
    }
    return best;
}

TST(qtype_table_entries_agree) {
    int n = 0;
    for (int i = CQ_QNONE + 1; i < CQ_QTYPE_COUNT; i++, n++) {
        cq_qtype q = (cq_qtype)i, back;
        const cq_qtype_info *qi = cq_qtype_get(q);
        CHECKF(qi && qi->name && qi->short_name && qi->data_key, "qtype %d has no entry", i);
        if (!qi) continue;
        CHECKF(!strcmp(cq_qtype_name(q), qi->name), "%s", qi->name);
        CHECKF(cq_qtype_parse(qi->name, &back, NULL) == CQ_OK && back == q, "%s parses back", qi->name);
        CHECKF(cq_qtype_parse(qi->short_name, &back, NULL) == CQ_OK && back == q, "%s parses", qi->short_name);
        CHECKF(cq_qtype_family_of(q) == qi->family && qi->family != CQ_QFAMILY_NONE, "%s family", qi->name);
        CHECKF(qi->bits == 2 || qi->bits == 4 || qi->bits == 8, "%s bits %d", qi->name, qi->bits);
        CHECKF(qi->packed == (qi->bits < 8), "%s: packed exactly when codes are narrower than a byte", qi->name);
        CHECKF(qi->storage == (qi->packed ? CQ_U8 : qi->dtype) && cq_dtype_size(qi->storage) == 1, "%s storage",
               qi->name);
        CHECKF(!strcmp(qi->data_key, qi->packed ? "_data._data" : "_data") &&
                   !strcmp(cq_qweight_data_key(q), qi->data_key),
               "%s data key %s", qi->name, qi->data_key);
        if (qi->family == CQ_QFAMILY_FLOAT) {
            CHECKF(cq_dtype_is_float(qi->dtype) && qi->qmax == max_finite(qi->dtype) && qi->qmin == -qi->qmax,
                   "%s: range is +-the dtype's largest finite value", qi->name);
        } else {
            CHECKF(qi->dtype == CQ_I8 && qi->qmin == -ldexp(1, qi->bits - 1) && qi->qmax == ldexp(1, qi->bits - 1) - 1,
                   "%s: a signed %d-bit range", qi->name, qi->bits);
        }
        /* affine qtypes are the packed ones, the only ones with a shift and an affine optimizer */
        CHECKF((qi->family == CQ_QFAMILY_AFFINE) == qi->packed, "%s", qi->name);
        unsigned want_opts = qi->family == CQ_QFAMILY_AFFINE ? CQ_QOPT_BIT(CQ_OPT_MAX) | CQ_QOPT_BIT(CQ_OPT_HQQ)
                                                            : CQ_QOPT_BIT(CQ_OPT_ABSMAX);
        CHECKF(qi->optimizers == want_opts, "%s optimizers %#x", qi->name, qi->optimizers);
        CHECKF((qi->roles & CQ_QROLE_WEIGHTS) && ((qi->roles & CQ_QROLE_ACTIVATIONS) != 0) == (qi->bits == 8),
               "%s roles %#x", qi->name, qi->roles);
        if (!qi->packed) CHECKF(cq__qtype_storing(qi->storage) == qi, "%s is the qtype of %s", qi->name,
                                cq_dtype_name(qi->storage));
    }
    CHECK(n >= 6 && !cq_qtype_get(CQ_QNONE) && cq_qtype_family_of(CQ_QNONE) == CQ_QFAMILY_NONE);
    CHECK(!cq_qtype_takes(CQ_QNONE, CQ_QROLE_WEIGHTS, false) && !cq_qtype_optimizer_applies(CQ_QNONE, CQ_OPT_DEFAULT));
}

/* Every entry through the quant layer: what a quantized weight holds is what the table says,
 * and the optimizers accepted are exactly the listed ones. */
TST(qtype_table_drives_quantization) {
    int64_t shape[2] = {24, 256};
    cq_tensor *w = NULL;
    cq_err err = {0};
    if (cq_tensor_new(&w, CQ_F32, 2, shape, &err) != CQ_OK) {
        CHECKF(false, "%s", err.msg);
        return;
    }
    float *d = w->data;
    for (int64_t i = 0; i < 24 * 256; i++) d[i] = (float)((i * 7919 % 1001) - 500) / 97.0f;
    for (int i = CQ_QNONE + 1; i < CQ_QTYPE_COUNT; i++) {
        cq_qtype q = (cq_qtype)i;
        const cq_qtype_info *qi = cq_qtype_get(q);
        for (int opt = CQ_OPT_DEFAULT; opt <= CQ_OPT_HQQ; opt++) {
            cq_qweight *qw = NULL;
            cq_status s = cq_qweight_quantize(w, q, (cq_optimizer_kind)opt, -1, &qw, &err);
            bool listed = opt == CQ_OPT_DEFAULT || (qi->optimizers & CQ_QOPT_BIT(opt));
            CHECKF((s == CQ_OK) == listed && cq_qtype_optimizer_applies(q, (cq_optimizer_kind)opt) == listed,
                   "%s with optimizer %d: %s", qi->name, opt, s ? err.msg : "accepted");
            if (s) continue;
            CHECKF(qw->data->dtype == qi->storage, "%s data %s", qi->name, cq_dtype_name(qw->data->dtype));
            CHECKF((qw->shift != NULL) == (qi->family == CQ_QFAMILY_AFFINE), "%s shift", qi->name);
            int64_t rows = qw->group_size > 0 ? 24 * 256 / qw->group_size : 24;
            CHECKF(qw->data->shape[0] == (qi->packed ? cq_packed_rows(rows, qi->bits) : rows), "%s rows %lld",
                   qi->name, (long long)qw->data->shape[0]);
            cq_tensor *codes = NULL;
            CHECKF(cq_qweight_unpack_codes(qw, &codes, &err) == CQ_OK, "%s: %s", qi->name, err.msg);
            int bad = 0;
            for (int64_t k = 0; codes && k < cq_tensor_numel(codes); k++) {
                uint8_t b = ((const uint8_t *)codes->data)[k];
                if (qi->family == CQ_QFAMILY_AFFINE) bad += b > cq__affine_code_max(qi->bits);
                else if (qi->family == CQ_QFAMILY_SYMMETRIC) bad += (int8_t)b < qi->qmin || (int8_t)b > qi->qmax;
            }
            CHECKF(bad == 0, "%s: %d codes outside the range", qi->name, bad);
            cq_tensor_free(codes);
            cq_qweight_free(qw);
        }
        cq_qactivation *a = NULL;
        cq_status s = cq_qactivation_quantize(w, q, NULL, &a, &err);
        CHECKF((s == CQ_OK) == cq_qtype_takes(q, CQ_QROLE_ACTIVATIONS, false), "%s as activations", qi->name);
        cq_qactivation_free(a);
    }
    cq_tensor_free(w);
}

/* The module quantizer accepts exactly the roles the table lists. */
TST(qtype_table_drives_cq_quantize) {
    for (int i = CQ_QNONE + 1; i < CQ_QTYPE_COUNT; i++) {
        cq_qtype q = (cq_qtype)i;
        for (int as_act = 0; as_act < 2; as_act++) {
            cq_err err = {0};
            cq_model *m = NULL;
            /* a Sequential root holding the Linear */
            cq_module *seq = NULL, *l2 = NULL;
            if (cq_module_new_sequential(&seq, &err) || cq_module_new_linear(&l2, 64, 8, true, &err) ||
                cq_module_add(seq, "fc", l2, &err) || cq_model_new(&m, "t", seq, NULL, &err)) {
                CHECKF(false, "%s", err.msg);
                return;
            }
            cq_quantize_opts o = cq_quantize_default_opts();
            o.weights = as_act ? CQ_QINT8 : q;
            o.activations = as_act ? q : CQ_QNONE;
            bool want = cq_qtype_takes(q, as_act ? CQ_QROLE_ACTIVATIONS : CQ_QROLE_WEIGHTS, false);
            cq_status s = cq_quantize(m, &o, &err);
            CHECKF((s == CQ_OK) == want, "%s as %s: %s", cq_qtype_name(q), as_act ? "activations" : "weights",
                   s ? err.msg : "accepted");
            cq_model_free(m);
        }
    }
}

TST(qtype_choices_from_the_table) {
    char buf[128];
    CHECK(!strcmp(cq_qtype_choices(CQ_QROLE_WEIGHTS, true, false, ", ", " or ", buf, sizeof buf),
                  "int2, int4, int8, float8 or float8_e5m2"));
    CHECK(!strcmp(cq_qtype_choices(CQ_QROLE_ACTIVATIONS, true, true, ",", ",", buf, sizeof buf),
                  "none,int8,float8,float8_e5m2"));
    CHECK(!strcmp(cq_qtype_choices(CQ_QROLE_ACTIVATIONS, false, false, ", ", " or ", buf, sizeof buf),
                  "int8, float8, float8_e5m2 or float8_e4m3fnuz"));
    CHECK(strlen(cq_qtype_choices(CQ_QROLE_WEIGHTS, false, true, ", ", " or ", buf, 8)) == 7); /* truncated */
}
