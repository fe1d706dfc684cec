/*
 * symmetric.c - 8-bit symmetric quantization as optimum-quanto does it: the AbsmaxOptimizer
 * scale, quanto::quantize_symmetric (int8 and the three fp8 types) and QBytesDequantizer
 * (x_hat = scale * data in the scale dtype). Each op rounds to the input dtype, so results
 * are bit-exact with quanto for F32, F16 and BF16. Divergence: a zero scale gives code 0
 * where quanto produces NaN (docs/NUMERICS.md).
 */
#include "quant_internal.h"

/* Elements are processed in fixed flat chunks; each element depends only on itself and its
 * scale, so any thread count gives the same bytes. */
#define SYM_CHUNK ((int64_t)1 << 14)

/* quanto's qmax of the qtype whose data has dtype `dtype`; 0 when none has. */
static double qtype_qmax(cq_dtype dtype) {
    const cq_qtype_info *qi = cq__qtype_storing(dtype);
    return qi ? qi->qmax : 0;
}

cq_status cq_absmax_scale(const cq_tensor *x, cq_qtype q, int axis, cq_tensor **scale, cq_err *err) {
    CQ__ARG(scale);
    *scale = NULL;
    const cq_qtype_info *qi = cq_qtype_get(q);
    if (!qi || !(qi->optimizers & CQ_QOPT_BIT(CQ_OPT_ABSMAX)))
        return cq_err_set(err, CQ_E_ARG, "absmax scale: qtype %s is not an 8-bit qtype", cq_qtype_name(q));
    cq_status s = cq__check_float(x, "absmax scale input", err);
    if (s) return s;
    s = cq__check_axis(&axis, x->ndim, true, "absmax scale", err);
    if (s) return s;
    /* SymmetricOptimizer: an axis of size 1 means per tensor. */
    if (axis != CQ_AXIS_NONE && x->shape[axis == 0 ? 0 : x->ndim - 1] == 1) axis = CQ_AXIS_NONE;
    int ndim;
    int64_t shape[CQ_MAX_DIMS];
    cq__keepdim_shape(x->ndim, x->shape, axis, &ndim, shape);
    s = cq_tensor_new(scale, x->dtype, ndim, shape, err);
    if (s) return s;
    cq__layout l = cq__axis_layout(x->ndim, x->shape, axis);
    float *mx = cq__malloc((size_t)(l.n ? l.n : 1) * sizeof(float), err, "absmax maxima");
    if (!mx) {
        cq_tensor_free(*scale);
        *scale = NULL;
        return CQ_E_NOMEM;
    }
    cq__reduce_minmax(x->data, x->dtype, l, NULL, mx);
    float qmax = (float)qi->qmax;
    for (int64_t j = 0; j < l.n; j++) cq__st((*scale)->data, x->dtype, j, cq__rnd(mx[j] / qmax, x->dtype));
    free(mx);
    return CQ_OK;
}

/* q = x / scale in dt, then int8: round half to even, clamp to [-128, 127] (NaN -> 0, where
 * torch's cast is undefined); fp8: clamp to +-max, then the fp8 cast. One segment of
 * elements whose scales are s[0] (ps 0) or s[0..] (ps 1). */
static inline __attribute__((always_inline)) void quantize_i8_seg(const void *x, cq_dtype dt, const float *s, int ps,
                                                                  int64_t i0, int64_t i1, float lo, float hi,
                                                                  int8_t *o) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        float sv = s[(i - i0) * ps];
        float v = cq__rnd(cq__ld(x, dt, i) / sv, dt);
        /* Clamp, then round (the same as round then clamp, the bounds being integers); quiet
         * comparisons and selects keep the loop vectorizable (so do bounds that are not
         * compile-time constants, oddly, with GCC 12). */
        v = __builtin_isless(v, lo) ? lo : v;
        v = __builtin_isgreater(v, hi) ? hi : v;
        v = cq__rint_small(v);
        o[i] = (int8_t)(int32_t)(((sv != 0.0f) & (v == v)) ? v : 0.0f);
    }
}

static inline __attribute__((always_inline)) void quantize_f8_seg(const void *x, cq_dtype dt, const float *s, int ps,
                                                                  int64_t i0, int64_t i1, cq_dtype out_dt, uint8_t *o) {
    float qmax = (float)qtype_qmax(out_dt);
    for (int64_t i = i0; i < i1; i++) {
        float sv = s[(i - i0) * ps];
        float v = sv != 0.0f ? cq__rnd(cq__ld(x, dt, i) / sv, dt) : 0.0f;
        v = v < -qmax ? -qmax : v > qmax ? qmax : v;
        o[i] = out_dt == CQ_F8_E4M3FN ? cq_f32_to_f8_e4m3fn(v)
               : out_dt == CQ_F8_E5M2 ? cq_f32_to_f8_e5m2(v)
                                      : cq_f32_to_f8_e4m3fnuz(v);
    }
}

static inline __attribute__((always_inline)) void quantize_walk(const void *x, cq_dtype dt, const float *s,
                                                                cq__layout l, int64_t lo, int64_t hi,
                                                                cq_dtype out_dt, const float bounds[2], void *out) {
    for (int64_t i = lo, e; i < hi; i = e) {
        int64_t j = cq__segment(l, i, hi, &e);
        if (out_dt == CQ_I8) {
            if (l.inner == 1) quantize_i8_seg(x, dt, s + j, 1, i, e, bounds[0], bounds[1], out);
            else quantize_i8_seg(x, dt, s + j, 0, i, e, bounds[0], bounds[1], out);
        } else {
            /* runs sharing one scale go to the vectorised kernel */
            if (l.inner == 1) quantize_f8_seg(x, dt, s + j, 1, i, e, out_dt, out);
            else cq_vec_quantize_f8((const uint8_t *)x + (size_t)i * cq_dtype_size(dt), dt, e - i, s[j], out_dt,
                                    (uint8_t *)out + i);
        }
    }
}

static void quantize_range(const void *x, cq_dtype dt, const float *s, cq__layout l, int64_t lo, int64_t hi,
                           cq_dtype out_dt, const float bounds[2], void *out) {
    /* int8 (the common case) gets loops specialised on a constant target. */
    bool i8 = out_dt == CQ_I8;
    switch (dt) {
    case CQ_F16:
        if (i8) quantize_walk(x, CQ_F16, s, l, lo, hi, CQ_I8, bounds, out);
        else quantize_walk(x, CQ_F16, s, l, lo, hi, out_dt, bounds, out);
        break;
    case CQ_BF16:
        if (i8) quantize_walk(x, CQ_BF16, s, l, lo, hi, CQ_I8, bounds, out);
        else quantize_walk(x, CQ_BF16, s, l, lo, hi, out_dt, bounds, out);
        break;
    default:
        if (i8) quantize_walk(x, CQ_F32, s, l, lo, hi, CQ_I8, bounds, out);
        else quantize_walk(x, CQ_F32, s, l, lo, hi, out_dt, bounds, out);
        break;
    }
}

cq_status cq_quantize_symmetric(const cq_tensor *x, cq_dtype dtype, int axis, const cq_tensor *scale,
                                cq_tensor **data, cq_err *err) {
    CQ__ARG(data);
    *data = NULL;
    cq_status s = cq__check_float(x, "quantize_symmetric input", err);
    if (s) return s;
    if (qtype_qmax(dtype) == 0)
        return cq_err_set(err, CQ_E_DTYPE, "quantize_symmetric: target dtype %s is not I8 or an F8 dtype",
                          cq_dtype_name(dtype));
    if (!scale) return cq_err_set(err, CQ_E_ARG, "quantize_symmetric: scale is NULL");
    if (scale->dtype != x->dtype)
        return cq_err_set(err, CQ_E_DTYPE, "quantize_symmetric: scale dtype %s differs from input dtype %s",
                          cq_dtype_name(scale->dtype), cq_dtype_name(x->dtype));
    /* quanto's validation, in its order. */
    if (axis == CQ_AXIS_NONE) {
        if (scale->ndim != 0)
            return cq_err_set(err, CQ_E_SHAPE, "quantize_symmetric: scale must be a scalar (0-dim) when "
                              "quantizing per tensor");
    } else {
        if (x->ndim <= 1)
            return cq_err_set(err, CQ_E_SHAPE, "quantize_symmetric: %d-D tensors cannot be quantized per axis",
                              x->ndim);
        s = cq__check_axis(&axis, x->ndim, false, "quantize_symmetric", err);
        if (s) return s;
        if (x->shape[axis == 0 ? 0 : x->ndim - 1] == 1)
            return cq_err_set(err, CQ_E_SHAPE, "quantize_symmetric: cannot quantize along axis %d of size 1",
                              axis);
        if (scale->ndim != x->ndim)
            return cq_err_set(err, CQ_E_SHAPE, "quantize_symmetric: per-axis scale must have the input's %d "
                              "dims, got %d", x->ndim, scale->ndim);
    }
    cq__layout l;
    s = cq__param_layout(x, scale, "quantize_symmetric scale", &l, err);
    if (s) return s;
    float *sv = cq__params_f32(scale, l.n, err);
    if (!sv) return CQ_E_NOMEM;
    s = cq_tensor_new(data, dtype, x->ndim, x->shape, err);
    if (s) {
        free(sv);
        return s;
    }
    /* int8's [-128, 127], read from the qtype table at run time (see quantize_i8_seg). */
    const cq_qtype_info *i8 = cq_qtype_get(CQ_QINT8);
    const float bounds[2] = {(float)i8->qmin, (float)i8->qmax};
    int64_t n = cq_tensor_numel(x), chunks = (n + SYM_CHUNK - 1) / SYM_CHUNK;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * SYM_CHUNK, hi = lo + SYM_CHUNK < n ? lo + SYM_CHUNK : n;
        quantize_range(x->data, x->dtype, sv, l, lo, hi, dtype, bounds, (*data)->data);
    }
    free(sv);
    return CQ_OK;
}

/* The f32 value of each of the 256 byte patterns of an 8-bit data dtype. */
static bool byte_values(cq_dtype dt, float table[256]) {
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        switch (dt) {
        case CQ_I8: table[b] = (float)(int8_t)byte; break;
        case CQ_U8: table[b] = (float)byte; break;
        case CQ_F8_E4M3FN: table[b] = cq_f8_e4m3fn_to_f32(byte); break;
        case CQ_F8_E5M2: table[b] = cq_f8_e5m2_to_f32(byte); break;
        case CQ_F8_E4M3FNUZ: table[b] = cq_f8_e4m3fnuz_to_f32(byte); break;
        default: return false;
        }
    }
    return true;
}

static inline __attribute__((always_inline)) void dequant_seg(const uint8_t *data, const float *table, const float *s,
                                                              int ps, cq_dtype dt, int64_t i0, int64_t i1, void *out,
                                                              bool out_f32) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        float v = cq__rnd(s[(i - i0) * ps] * table[data[i]], dt);
        if (out_f32) ((float *)out)[i] = v;
        else cq__st(out, dt, i, v);
    }
}

static inline __attribute__((always_inline)) void dequant_walk(const uint8_t *data, const float *table, const float *s,
                                                               cq_dtype dt, cq__layout l, int64_t lo, int64_t hi,
                                                               void *out, bool out_f32) {
    for (int64_t i = lo, e; i < hi; i = e) {
        int64_t j = cq__segment(l, i, hi, &e);
        if (l.inner == 1) dequant_seg(data, table, s + j, 1, dt, i, e, out, out_f32);
        else dequant_seg(data, table, s + j, 0, dt, i, e, out, out_f32);
    }
}

cq_status cq__check_out_dtype(cq_dtype out_dtype, cq_dtype scale_dtype, cq_dtype *resolved, cq_err *err) {
    if (out_dtype == CQ_DTYPE_INVALID) out_dtype = scale_dtype;
    if (out_dtype != scale_dtype && out_dtype != CQ_F32)
        return cq_err_set(err, CQ_E_DTYPE, "dequantize: output dtype %s must be the scale dtype %s or F32",
                          cq_dtype_name(out_dtype), cq_dtype_name(scale_dtype));
    *resolved = out_dtype;
    return CQ_OK;
}

cq_status cq_dequantize_symmetric(const cq_tensor *data, const cq_tensor *scale, cq_dtype out_dtype,
                                  cq_tensor **out, cq_err *err) {
    CQ__ARG(out);
    *out = NULL;
    float table[256];
    if (!data || !byte_values(data->dtype, table))
        return cq_err_set(err, CQ_E_DTYPE, "dequantize_symmetric: data dtype %s is not I8, U8 or an F8 dtype",
                          data ? cq_dtype_name(data->dtype) : "(null)");
    cq_status s = cq__check_float(scale, "dequantize_symmetric scale", err);
    if (s) return s;
    s = cq__check_out_dtype(out_dtype, scale->dtype, &out_dtype, err);
    if (s) return s;
    cq__layout l;
    s = cq__param_layout(data, scale, "dequantize_symmetric scale", &l, err);
    if (s) return s;
    float *sv = cq__params_f32(scale, l.n, err);
    if (!sv) return CQ_E_NOMEM;
    s = cq_tensor_new(out, out_dtype, data->ndim, data->shape, err);
    if (s) {
        free(sv);
        return s;
    }
    int64_t n = cq_tensor_numel(data), chunks = (n + SYM_CHUNK - 1) / SYM_CHUNK;
    bool out_f32 = out_dtype == CQ_F32;
    cq_dtype dt = scale->dtype;
#pragma omp parallel for schedule(static) num_threads(cq_get_num_threads()) if (chunks > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t lo = c * SYM_CHUNK, hi = lo + SYM_CHUNK < n ? lo + SYM_CHUNK : n;
        switch (dt) {
        case CQ_F16: dequant_walk(data->data, table, sv, CQ_F16, l, lo, hi, (*out)->data, out_f32); break;
        case CQ_BF16: dequant_walk(data->data, table, sv, CQ_BF16, l, lo, hi, (*out)->data, out_f32); break;
        default: dequant_walk(data->data, table, sv, CQ_F32, l, lo, hi, (*out)->data, out_f32); break;
        }
    }
    free(sv);
    return CQ_OK;
}
