/*
 * qweight.c - the quantized tensor objects: cq_qweight (quanto's WeightQBytesTensor for 8-bit
 * qtypes, WeightQBitsTensor for qint2/qint4, always in the canonical on-disk layout) and
 * cq_qactivation (ActivationQBytesTensor). Built by quantizing a float weight the way a
 * quanto module does at freeze(), or from the state-dict tensors of a file. The arithmetic
 * lives in symmetric.c, affine.c, max_optimizer.c, hqq.c and pack.c; this file only wires and validates.
 */
#include "quant_internal.h"

const char *cq_qweight_data_key(cq_qtype q) {
    const cq_qtype_info *qi = cq_qtype_get(q);
    return qi ? qi->data_key : "_data";
}

void cq_qweight_free(cq_qweight *w) {
    if (!w) return;
    cq_tensor_free(w->data);
    cq_tensor_free(w->scale);
    cq_tensor_free(w->shift);
    free(w);
}

static cq_qweight *qweight_new(cq_qtype q, int axis, int64_t group_size, int ndim, const int64_t *shape,
                               cq_err *err) {
    cq_qweight *w = cq__calloc(1, sizeof *w, err, "a quantized weight");
    if (!w) return NULL;
    w->qtype = q;
    w->axis = axis;
    w->group_size = group_size;
    w->ndim = ndim;
    memcpy(w->shape, shape, (size_t)ndim * sizeof(int64_t));
    return w;
}

/* Logical shape of a qbits weight's codes: grouped (G, gs), or the weight's shape. */
static void codes_shape(const cq_qweight *w, int *ndim, int64_t *shape) {
    if (w->group_size > 0) {
        int64_t numel = cq_shape_numel(w->ndim, w->shape);
        if (w->axis == 0) shape[0] = numel / w->group_size, shape[1] = w->group_size;
        else shape[0] = w->group_size, shape[1] = numel / w->group_size;
        *ndim = 2;
    } else {
        *ndim = w->ndim;
        memcpy(shape, w->shape, (size_t)w->ndim * sizeof(int64_t));
    }
}

cq_status cq_qweight_quantize(const cq_tensor *w, cq_qtype q, cq_optimizer_kind opt, int64_t group_size,
                              cq_qweight **out, cq_err *err) {
    return cq_qweight_quantize_ex(w, q, 0, opt, group_size, NULL, out, err);
}

cq_status cq_qweight_quantize_ex(const cq_tensor *w, cq_qtype q, int axis, cq_optimizer_kind opt,
                                 int64_t group_size, const cq_hqq_opts *hqq, cq_qweight **out,
                                 cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(w);
    const cq_qtype_info *qi = cq_qtype_get(q);
    if (!qi) return cq_err_set(err, CQ_E_ARG, "quantize weight: invalid qtype %d", (int)q);
    cq_status s = cq__check_float(w, "weight", err);
    if (s) return s;
    s = cq__check_axis(&axis, w->ndim, false, "quantize weight", err);
    if (s) return s;
    cq_qweight *qw = NULL;
    if (qi->family != CQ_QFAMILY_AFFINE) {
        if (!cq_qtype_optimizer_applies(q, opt))
            return cq_err_set(err, CQ_E_ARG, "quantize weight: %s needs the absmax optimizer", qi->name);
        if (group_size > 0)
            return cq_err_set(err, CQ_E_ARG, "quantize weight: group size cannot be set for 8-bit qtype %s",
                              qi->name);
        cq_tensor *scale = NULL, *data = NULL;
        s = cq_absmax_scale(w, q, axis, &scale, err);
        /* quantize_weight: an axis of size 1 means per tensor (the scale is then 0-dim). */
        int eff_axis = scale && scale->ndim == 0 ? CQ_AXIS_NONE : axis;
        if (!s) s = cq_quantize_symmetric(w, qi->dtype, eff_axis, scale, &data, err);
        if (!s && !(qw = qweight_new(q, axis, 0, w->ndim, w->shape, err))) s = CQ_E_NOMEM;
        if (s) {
            cq_tensor_free(scale), cq_tensor_free(data);
            return s;
        }
        qw->scale = scale, qw->data = data;
        *out = qw;
        return CQ_OK;
    }
    if (opt == CQ_OPT_ABSMAX)
        return cq_err_set(err, CQ_E_ARG, "quantize weight: %s needs an affine optimizer (max or hqq), not absmax",
                          qi->name);
    if (group_size < 0) group_size = cq_default_group_size(w->ndim, w->shape);
    cq_tensor *scale = NULL, *shift = NULL, *codes = NULL, *packed = NULL;
    s = cq_affine_optimize(w, q, axis, group_size, opt, hqq, &scale, &shift, err);
    if (!s) s = cq_quantize_affine(w, qi->bits, axis, group_size, scale, shift, &codes, err);
    if (!s) {
        /* The codes are in range by construction: pack without cq_pack's check. */
        int64_t pshape[CQ_MAX_DIMS];
        memcpy(pshape, codes->shape, sizeof pshape);
        pshape[0] = cq_packed_rows(codes->shape[0], qi->bits);
        s = cq_tensor_new(&packed, CQ_U8, codes->ndim, pshape, err);
        if (!s)
            cq_pack_codes(codes->data, codes->shape[0], cq_shape_numel(codes->ndim - 1, codes->shape + 1), qi->bits,
                          packed->data);
    }
    cq_tensor_free(codes);
    if (!s && !(qw = qweight_new(q, axis, group_size, w->ndim, w->shape, err))) s = CQ_E_NOMEM;
    if (s) {
        cq_tensor_free(scale), cq_tensor_free(shift), cq_tensor_free(packed);
        return s;
    }
    qw->data = packed, qw->scale = scale, qw->shift = shift;
    *out = qw;
    return CQ_OK;
}

cq_status cq_qweight_unpack_codes(const cq_qweight *w, cq_tensor **codes, cq_err *err) {
    CQ__ARG(codes);
    *codes = NULL;
    CQ__ARG(w);
    const cq_qtype_info *qi = cq_qtype_get(w->qtype);
    if (!qi) return cq_err_set(err, CQ_E_ARG, "unpack codes: invalid qtype %d", (int)w->qtype);
    if (!qi->packed) return cq_tensor_clone(codes, w->data, err);
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    codes_shape(w, &ndim, shape);
    return cq_unpack(w->data, qi->bits, shape[0], codes, err);
}

cq_status cq_qweight_dequantize(const cq_qweight *w, cq_dtype out_dtype, cq_tensor **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(w);
    const cq_qtype_info *qi = cq_qtype_get(w->qtype);
    if (!qi) return cq_err_set(err, CQ_E_ARG, "dequantize weight: invalid qtype %d", (int)w->qtype);
    if (qi->family != CQ_QFAMILY_AFFINE) return cq_dequantize_symmetric(w->data, w->scale, out_dtype, out, err);
    cq_tensor *codes;
    cq_status s = cq_qweight_unpack_codes(w, &codes, err);
    if (s) return s;
    s = cq_dequantize_affine(codes, w->scale, w->shift, w->axis, w->ndim, w->shape, out_dtype, out, err);
    cq_tensor_free(codes);
    return s;
}

/* A header for t: a copy of its data, or a view over it. */
static cq_status adopt(const cq_tensor *t, bool copy, cq_tensor **out, cq_err *err) {
    if (copy) return cq_tensor_clone(out, t, err);
    return cq_tensor_view(out, t->dtype, t->ndim, t->shape, t->data, err);
}

static cq_status expect_shape(const cq_tensor *t, int ndim, const int64_t *shape, const char *what, cq_err *err) {
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (same) return CQ_OK;
    char b1[96], b2[96];
    return cq_err_set(err, CQ_E_SHAPE, "%s has shape %s; expected %s", what,
                      cq_shape_str(t->ndim, t->shape, b1, sizeof b1), cq_shape_str(ndim, shape, b2, sizeof b2));
}

cq_status cq_qweight_from_tensors(cq_qtype q, int ndim, const int64_t *shape, int64_t group_size,
                                  const cq_tensor *data, const cq_tensor *scale, const cq_tensor *shift,
                                  bool copy, cq_qweight **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(shape);
    CQ__ARG(data);
    CQ__ARG(scale);
    const cq_qtype_info *qi = cq_qtype_get(q);
    if (!qi) return cq_err_set(err, CQ_E_ARG, "quantized weight: invalid qtype %d", (int)q);
    if (ndim < 1 || ndim > CQ_MAX_DIMS)
        return cq_err_set(err, CQ_E_SHAPE, "quantized weight: rank %d outside 1..%d", ndim, CQ_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (shape[d] <= 0) return cq_err_set(err, CQ_E_SHAPE, "quantized weight: dimension %d is %lld", d,
                                             (long long)shape[d]);
    if (!data || !scale) return cq_err_set(err, CQ_E_ARG, "quantized weight: data and scale are required");
    cq_status s = cq__check_float(scale, "weight._scale", err);
    if (s) return s;
    int cndim = ndim;
    int64_t cshape[CQ_MAX_DIMS];
    memcpy(cshape, shape, (size_t)ndim * sizeof(int64_t));
    if (qi->family != CQ_QFAMILY_AFFINE) {
        if (shift) return cq_err_set(err, CQ_E_ARG, "quantized weight: %s has no shift", qi->name);
        if (group_size > 0)
            return cq_err_set(err, CQ_E_ARG, "quantized weight: %s is never grouped", qi->name);
        group_size = 0;
        if (data->dtype != qi->dtype)
            return cq_err_set(err, CQ_E_DTYPE, "weight._data has dtype %s; %s stores %s", cq_dtype_name(data->dtype),
                              qi->name, cq_dtype_name(qi->dtype));
        s = expect_shape(data, ndim, shape, "weight._data", err);
        if (s) return s;
    } else {
        if (!shift) return cq_err_set(err, CQ_E_ARG, "quantized weight: %s needs weight._shift", qi->name);
        if (shift->dtype != scale->dtype)
            return cq_err_set(err, CQ_E_DTYPE, "weight._shift has dtype %s; expected the scale dtype %s (float "
                              "shift)", cq_dtype_name(shift->dtype), cq_dtype_name(scale->dtype));
        /* The shift has the scale's shape, except after quanto's HQQ on an ungrouped N-D weight:
         * (O,I,kh,1) beside a (O,1,1,1) scale (checked against the data below). */
        bool refined = shift->ndim == scale->ndim && shift->ndim > 2 && scale->shape[0] == shift->shape[0] &&
                       shift->shape[shift->ndim - 1] == 1;
        for (int d = 1; refined && d < scale->ndim; d++) refined = scale->shape[d] == 1;
        if (!refined) s = expect_shape(shift, scale->ndim, scale->shape, "weight._shift", err);
        if (s) return s;
        if (data->dtype != CQ_U8)
            return cq_err_set(err, CQ_E_DTYPE, "weight._data._data has dtype %s; expected U8",
                              cq_dtype_name(data->dtype));
        if (group_size < 0) {
            /* quanto does not store the group size; one scale per output row means none. */
            if (scale->ndim == 0) return cq_err_set(err, CQ_E_SHAPE, "weight._scale of %s must not be 0-dim", qi->name);
            group_size = scale->shape[0] == shape[0] ? 0 : cq_shape_numel(ndim, shape) / scale->shape[0];
        }
        if (group_size > 0) {
            s = cq_grouped_shape(ndim, shape, 0, group_size, cshape, err);
            if (s) return s;
            cndim = 2;
        }
        int64_t pshape[CQ_MAX_DIMS];
        memcpy(pshape, cshape, sizeof pshape);
        pshape[0] = cq_packed_rows(cshape[0], qi->bits);
        s = expect_shape(data, cndim, pshape, "weight._data._data", err);
        if (s) return s;
    }
    /* The scale must broadcast over the (grouped) data. */
    cq_tensor probe = {.dtype = CQ_U8, .ndim = cndim};
    memcpy(probe.shape, cshape, sizeof cshape);
    cq__layout lay;
    s = cq__param_layout(&probe, scale, "weight._scale", &lay, err);
    if (!s && shift) s = cq__param_layout_run(&probe, shift, "weight._shift", &lay, err);
    if (s) return s;
    cq_qweight *w = qweight_new(q, 0, group_size, ndim, shape, err);
    if (!w) return CQ_E_NOMEM;
    s = adopt(data, copy, &w->data, err);
    if (!s) s = adopt(scale, copy, &w->scale, err);
    if (!s && shift) s = adopt(shift, copy, &w->shift, err);
    if (s) {
        cq_qweight_free(w);
        return s;
    }
    *out = w;
    return CQ_OK;
}

bool cq_qweight_apply_tinygemm_roundtrip(cq_qweight *w) {
    if (!w || w->qtype != CQ_QINT4 || w->axis != 0 || w->group_size != 128 || w->ndim != 2 || !w->shift ||
        w->scale->dtype != CQ_BF16 || w->shift->dtype != CQ_BF16)
        return false;
    /* TinyGemm stores shift' = -shift + 8*scale and converts back with 8*scale - shift'. */
    int64_t n = cq_tensor_numel(w->scale);
    for (int64_t i = 0; i < n; i++) {
        float half_range = cq__round_bf16(8.0f * cq__ld(w->scale->data, CQ_BF16, i));
        float stored = cq__round_bf16(-cq__ld(w->shift->data, CQ_BF16, i) + half_range);
        cq__st(w->shift->data, CQ_BF16, i, cq__round_bf16(half_range - stored));
    }
    return true;
}

/* ---- activations ---------------------------------------------------------------------------- */

void cq_qactivation_free(cq_qactivation *a) {
    if (!a) return;
    cq_tensor_free(a->data);
    cq_tensor_free(a->scale);
    free(a);
}

cq_status cq_qactivation_quantize(const cq_tensor *x, cq_qtype q, const cq_tensor *scale,
                                  cq_qactivation **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    const cq_qtype_info *qi = cq_qtype_get(q);
    if (!qi || !(qi->roles & CQ_QROLE_ACTIVATIONS))
        return cq_err_set(err, CQ_E_ARG, "quantize activation: qtype %s is not an 8-bit qtype", cq_qtype_name(q));
    cq_qactivation *a = cq__calloc(1, sizeof *a, err, "a quantized activation");
    if (!a) return CQ_E_NOMEM;
    a->qtype = q;
    cq_status s = scale ? cq_tensor_clone(&a->scale, scale, err) : cq_absmax_scale(x, q, CQ_AXIS_NONE, &a->scale, err);
    if (!s) s = cq_quantize_symmetric(x, qi->dtype, CQ_AXIS_NONE, a->scale, &a->data, err);
    if (s) {
        cq_qactivation_free(a);
        return s;
    }
    *out = a;
    return CQ_OK;
}

cq_status cq_qactivation_dequantize(const cq_qactivation *a, cq_dtype out_dtype, cq_tensor **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    CQ__ARG(a);
    return cq_dequantize_symmetric(a->data, a->scale, out_dtype, out, err);
}
