/*
 * affine.c - 2/4-bit affine quantization with a float shift, as optimum-quanto does it:
 * AffineOptimizer.__call__ (grouping, the axis-of-size-1 fallback, then the Max or HQQ
 * optimizer), quanto::quantize_affine (codes = clamp(round((x + shift) / scale))) and
 * QBitsDequantizer (scale * code - shift, then ungroup). Each op rounds to the input dtype.
 * Divergence: a zero scale (a constant group) gives code 0, which dequantizes to -shift = the
 * constant, where quanto produces NaN. The optimizers are max_optimizer.c and hqq.c (which
 * starts from the Max one); packing is pack.c.
 */
#include "quant_internal.h"

#define AFFINE_CHUNK ((int64_t)1 << 14)

/* ---- codes and dequantization ------------------------------------------------------------- */

/* One segment of elements with parameters s[0], sh[0] (ps 0) or s[0..], sh[0..] (ps 1). */
static inline __attribute__((always_inline)) void codes_seg(const void *x, cq_dtype dt, const float *s,
                                                            const float *sh, int ps, int64_t i0, int64_t i1,
                                                            float qmax, uint8_t *codes) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++)
        codes[i] = (uint8_t)cq__affine_code(cq__ld(x, dt, i), s[(i - i0) * ps], sh[(i - i0) * ps], qmax, dt);
}

/* Runs sharing one parameter (inner > 1: axis 0, groups, per tensor) go to the vectorised
 * kernel; per-column parameters (inner == 1) to the loop above. */
static inline __attribute__((always_inline)) void codes_walk(const void *x, cq_dtype dt, const float *s,
                                                             const float *sh, cq__layout l, int64_t lo, int64_t hi,
                                                             int bits, uint8_t *codes) {
    size_t es = cq_dtype_size(dt);
    for (int64_t i = lo, e; i < hi; i = e) {
        int64_t j = cq__segment(l, i, hi, &e);
        if (l.inner == 1) codes_seg(x, dt, s + j, sh + j, 1, i, e, cq__affine_code_max(bits), codes);
        else cq_vec_affine_codes((const uint8_t *)x + (size_t)i * es, dt, e - i, s[j], sh[j], bits, codes + i);
    }
}

cq_status cq__affine_codes(const cq_tensor *x, const cq_tensor *scale, const cq_tensor *shift, cq__layout lay,
                           int bits, uint8_t *codes, cq_err *err) {
    float *s = cq__params_f32(scale, lay.n, err), *sh = cq__params_f32(shift, lay.n, err);
    if (!s || !sh) {
        free(s), free(sh);
        return CQ_E_NOMEM;
    }
    int64_t n = cq_tensor_numel(x), chunks = (n + AFFINE_CHUNK - 1) / AFFINE_CHUNK;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * AFFINE_CHUNK, hi = lo + AFFINE_CHUNK < n ? lo + AFFINE_CHUNK : n;
        switch (x->dtype) {
        case CQ_F16: codes_walk(x->data, CQ_F16, s, sh, lay, lo, hi, bits, codes); break;
        case CQ_BF16: codes_walk(x->data, CQ_BF16, s, sh, lay, lo, hi, bits, codes); break;
        default: codes_walk(x->data, CQ_F32, s, sh, lay, lo, hi, bits, codes); break;
        }
    }
    free(s), free(sh);
    return CQ_OK;
}

static inline __attribute__((always_inline)) void dequant_seg(const uint8_t *codes, const float *s, const float *sh,
                                                              int ps, cq_dtype dt, int64_t i0, int64_t i1, void *out,
                                                              bool out_f32) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        float v = cq__affine_value((float)codes[i], s[(i - i0) * ps], sh[(i - i0) * ps], dt);
        if (out_f32) ((float *)out)[i] = v;
        else cq__st(out, dt, i, v);
    }
}

static inline __attribute__((always_inline)) void dequant_walk(const uint8_t *codes, const float *s, const float *sh,
                                                               cq_dtype dt, cq__layout l, int64_t lo, int64_t hi,
                                                               void *out, bool out_f32) {
    for (int64_t i = lo, e; i < hi; i = e) {
        int64_t j = cq__segment(l, i, hi, &e);
        if (l.inner == 1) dequant_seg(codes, s + j, sh + j, 1, dt, i, e, out, out_f32);
        else dequant_seg(codes, s + j, sh + j, 0, dt, i, e, out, out_f32);
    }
}

static cq_status affine_dequant_into(const uint8_t *codes, int64_t n, const cq_tensor *scale,
                                     const cq_tensor *shift, cq__layout lay, void *out, bool out_f32, cq_err *err) {
    float *s = cq__params_f32(scale, lay.n, err), *sh = cq__params_f32(shift, lay.n, err);
    if (!s || !sh) {
        free(s), free(sh);
        return CQ_E_NOMEM;
    }
    int64_t chunks = (n + AFFINE_CHUNK - 1) / AFFINE_CHUNK;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * AFFINE_CHUNK, hi = lo + AFFINE_CHUNK < n ? lo + AFFINE_CHUNK : n;
        switch (scale->dtype) {
        case CQ_F16: dequant_walk(codes, s, sh, CQ_F16, lay, lo, hi, out, out_f32); break;
        case CQ_BF16: dequant_walk(codes, s, sh, CQ_BF16, lay, lo, hi, out, out_f32); break;
        default: dequant_walk(codes, s, sh, CQ_F32, lay, lo, hi, out, out_f32); break;
        }
    }
    free(s), free(sh);
    return CQ_OK;
}

cq_status cq__affine_dequant(const uint8_t *codes, const cq_tensor *scale, const cq_tensor *shift, cq__layout lay,
                             void *out, cq_err *err) {
    return affine_dequant_into(codes, lay.outer * lay.n * lay.inner, scale, shift, lay, out, false, err);
}

/* ---- public entry points ------------------------------------------------------------------ */

/* scale and shift: float, same dtype (as `dt` when given); the scale's shape is the shift's or
 * broadcasts onto it (quanto's HQQ gives an ungrouped Conv2d a (O,I,kh,1) shift beside its
 * (O,1,1,1) scale). */
static cq_status check_scale_shift(const cq_tensor *scale, const cq_tensor *shift, cq_dtype dt, const char *fn,
                                   cq_err *err) {
    if (!scale || !shift) return cq_err_set(err, CQ_E_ARG, "%s: scale and shift are required", fn);
    cq_status s = cq__check_float(scale, "scale", err);
    if (s) return s;
    if (shift->dtype != scale->dtype)
        return cq_err_set(err, CQ_E_DTYPE, "%s: shift dtype %s differs from scale dtype %s (only float shifts "
                          "are supported)", fn, cq_dtype_name(shift->dtype), cq_dtype_name(scale->dtype));
    if (dt != CQ_DTYPE_INVALID && scale->dtype != dt)
        return cq_err_set(err, CQ_E_DTYPE, "%s: scale dtype %s differs from input dtype %s", fn,
                          cq_dtype_name(scale->dtype), cq_dtype_name(dt));
    bool fits = cq_tensor_same_shape(scale, shift) || (scale->ndim == shift->ndim && scale->ndim > 0);
    for (int d = 0; fits && d < scale->ndim; d++) fits = scale->shape[d] == 1 || scale->shape[d] == shift->shape[d];
    if (!fits) {
        char b1[96], b2[96];
        return cq_err_set(err, CQ_E_SHAPE, "%s: scale shape %s does not broadcast onto shift shape %s", fn,
                          cq_shape_str(scale->ndim, scale->shape, b1, sizeof b1),
                          cq_shape_str(shift->ndim, shift->shape, b2, sizeof b2));
    }
    return CQ_OK;
}

cq_status cq__expand_scale(const cq_tensor *scale, const cq_tensor *shift, cq_tensor **tmp, const cq_tensor **out,
                           cq_err *err) {
    *tmp = NULL;
    *out = scale;
    if (cq_tensor_same_shape(scale, shift)) return CQ_OK;
    cq_status s = cq_tensor_new(tmp, scale->dtype, shift->ndim, shift->shape, err);
    if (s) return s;
    /* Element j of the shift's shape takes the scale at j's coordinates, clamped to 0 where the
     * scale's dim is 1. */
    size_t es = cq_dtype_size(scale->dtype);
    int64_t n = cq_tensor_numel(shift);
    for (int64_t j = 0; j < n; j++) {
        int64_t rest = j, src = 0, stride = 1;
        for (int d = shift->ndim - 1; d >= 0; d--) {
            int64_t c = rest % shift->shape[d];
            rest /= shift->shape[d];
            if (scale->shape[d] != 1) src += c * stride;
            stride *= scale->shape[d];
        }
        memcpy((uint8_t *)(*tmp)->data + (size_t)j * es, (const uint8_t *)scale->data + (size_t)src * es, es);
    }
    *out = *tmp;
    return CQ_OK;
}

/* x grouped when group_size > 0 (a new tensor in *tmp), else x itself. */
static cq_status maybe_group(const cq_tensor *x, int axis, int64_t group_size, const cq_tensor **g,
                             cq_tensor **tmp, cq_err *err) {
    *tmp = NULL;
    *g = x;
    if (group_size <= 0) return CQ_OK;
    if (axis == 0) {
        /* A reshape: a header over x's data, no copy. */
        int64_t gshape[2];
        cq_status s = cq_grouped_shape(x->ndim, x->shape, axis, group_size, gshape, err);
        if (!s) s = cq_tensor_view(tmp, x->dtype, 2, gshape, x->data, err);
        if (!s) *g = *tmp;
        return s;
    }
    cq_status s = cq_group(x, axis, group_size, tmp, err);
    if (!s) *g = *tmp;
    return s;
}

cq_status cq_affine_optimize(const cq_tensor *x, cq_qtype q, int axis, int64_t group_size,
                             cq_optimizer_kind opt, const cq_hqq_opts *hqq, cq_tensor **scale,
                             cq_tensor **shift, cq_err *err) {
    CQ__ARG(scale);
    CQ__ARG(shift);
    *scale = *shift = NULL;
    CQ__ARG(x);
    const cq_qtype_info *qi = cq_qtype_get(q);
    if (!qi || qi->family != CQ_QFAMILY_AFFINE)
        return cq_err_set(err, CQ_E_ARG, "affine optimizer: qtype %s is not qint2 or qint4", cq_qtype_name(q));
    if (!cq_qtype_optimizer_applies(q, opt))
        return cq_err_set(err, CQ_E_ARG, "affine optimizer: optimizer %d is not max or hqq (absmax is symmetric)",
                          (int)opt);
    cq_status s = cq__check_float(x, "affine optimizer input", err);
    if (s) return s;
    if (x->ndim < 2) return cq_err_set(err, CQ_E_SHAPE, "affine optimizer: input must have at least 2 dims");
    s = cq__check_axis(&axis, x->ndim, false, "affine optimizer", err);
    if (s) return s;
    const cq_tensor *g;
    cq_tensor *tmp;
    s = maybe_group(x, axis, group_size, &g, &tmp, err);
    if (s) return s;
    /* AffineOptimizer: an axis of size 1 becomes None (then reduced per last dim). */
    int eff_axis = g->shape[axis == 0 ? 0 : g->ndim - 1] == 1 ? CQ_AXIS_NONE : axis;
    if (opt == CQ_OPT_HQQ) {
        if (eff_axis == CQ_AXIS_NONE)
            s = cq_err_set(err, CQ_E_SHAPE, "hqq optimizer: needs more than one %s along axis %d (quanto fails "
                           "here too)", group_size > 0 ? "group" : "index", axis);
        else s = cq__hqq_optimize(g, qi->bits, eff_axis, hqq, scale, shift, err);
    } else {
        s = cq__max_optimize(g, qi->bits, eff_axis, scale, shift, err);
    }
    cq_tensor_free(tmp);
    return s;
}

cq_status cq_quantize_affine(const cq_tensor *x, int bits, int axis, int64_t group_size,
                             const cq_tensor *scale, const cq_tensor *shift, cq_tensor **codes,
                             cq_err *err) {
    CQ__ARG(codes);
    *codes = NULL;
    if (bits < 1 || bits > 8) return cq_err_set(err, CQ_E_ARG, "quantize_affine: bits %d outside 1..8", bits);
    cq_status s = cq__check_float(x, "quantize_affine input", err);
    if (s) return s;
    s = cq__check_axis(&axis, x->ndim, false, "quantize_affine", err);
    if (s) return s;
    s = check_scale_shift(scale, shift, x->dtype, "quantize_affine", err);
    if (s) return s;
    const cq_tensor *g;
    cq_tensor *tmp;
    s = maybe_group(x, axis, group_size, &g, &tmp, err);
    if (s) return s;
    cq__layout lay;
    const cq_tensor *sc;
    cq_tensor *sc_tmp = NULL;
    s = cq__expand_scale(scale, shift, &sc_tmp, &sc, err);
    if (!s) s = cq__param_layout_run(g, shift, "quantize_affine shift", &lay, err);
    if (!s) s = cq_tensor_new(codes, CQ_U8, g->ndim, g->shape, err);
    if (!s) s = cq__affine_codes(g, sc, shift, lay, bits, (*codes)->data, err);
    if (s) {
        cq_tensor_free(*codes);
        *codes = NULL;
    }
    cq_tensor_free(sc_tmp);
    cq_tensor_free(tmp);
    return s;
}

cq_status cq_dequantize_affine(const cq_tensor *codes, const cq_tensor *scale, const cq_tensor *shift,
                               int axis, int orig_ndim, const int64_t *orig_shape, cq_dtype out_dtype,
                               cq_tensor **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    if (!codes || codes->dtype != CQ_U8)
        return cq_err_set(err, CQ_E_DTYPE, "dequantize_affine: codes must be U8, got %s",
                          codes ? cq_dtype_name(codes->dtype) : "(null)");
    cq_status s = check_scale_shift(scale, shift, CQ_DTYPE_INVALID, "dequantize_affine", err);
    if (s) return s;
    s = cq__check_out_dtype(out_dtype, scale->dtype, &out_dtype, err);
    if (s) return s;
    cq__layout lay;
    const cq_tensor *sc;
    cq_tensor *sc_tmp = NULL;
    s = cq__param_layout_run(codes, shift, "dequantize_affine shift", &lay, err);
    if (!s) s = cq__expand_scale(scale, shift, &sc_tmp, &sc, err);
    if (s) return s;
    if (orig_shape && cq_shape_numel(orig_ndim, orig_shape) != cq_tensor_numel(codes)) {
        char b1[96], b2[96];
        cq_tensor_free(sc_tmp);
        return cq_err_set(err, CQ_E_SHAPE, "dequantize_affine: codes of shape %s cannot be ungrouped to %s",
                          cq_shape_str(codes->ndim, codes->shape, b1, sizeof b1),
                          cq_shape_str(orig_ndim, orig_shape, b2, sizeof b2));
    }
    cq_tensor *flat = NULL;
    s = cq_tensor_new(&flat, out_dtype, codes->ndim, codes->shape, err);
    if (!s) s = affine_dequant_into(codes->data, cq_tensor_numel(codes), sc, shift, lay, flat->data,
                                    out_dtype == CQ_F32, err);
    cq_tensor_free(sc_tmp);
    if (s) {
        cq_tensor_free(flat);
        return s;
    }
    if (!orig_shape) {
        *out = flat;
        return CQ_OK;
    }
    bool axis_last = axis == -1 || (orig_ndim >= 1 && axis == orig_ndim - 1);
    if (axis != 0 && !axis_last) {
        cq_tensor_free(flat);
        return cq_err_set(err, CQ_E_ARG, "dequantize_affine: axis %d is not supported (0 or -1)", axis);
    }
    if (!axis_last) {
        /* Axis 0 grouping is a reshape: relabel the buffer. */
        if (orig_ndim < 0 || orig_ndim > CQ_MAX_DIMS) {
            cq_tensor_free(flat);
            return cq_err_set(err, CQ_E_SHAPE, "dequantize_affine: original rank %d outside 0..%d", orig_ndim,
                              CQ_MAX_DIMS);
        }
        flat->ndim = orig_ndim;
        memcpy(flat->shape, orig_shape, (size_t)orig_ndim * sizeof(int64_t));
        *out = flat;
        return CQ_OK;
    }
    s = cq_ungroup(flat, -1, orig_ndim, orig_shape, out, err);
    cq_tensor_free(flat);
    return s;
}
