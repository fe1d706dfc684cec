/*
 * qmodule.c - optimum-quanto's quantized modules on a cquanto module tree: quantize() with
 * fnmatch selection, the quantized forward (dynamic weight quantization with a
 * straight-through backward, per-tensor activation quantization), Calibration with momentum,
 * and freeze(). The quantization math is the quant layer's (cq_qweight_*, cq_qactivation_*);
 * this file decides when it is applied, as quanto's QModuleMixin and hooks do (QUANTO-FORMAT.md 5-6).
 * Serialization of the result is in state.c.
 */
#include "nn/module_internal.h"

cq_quantize_opts cq_quantize_default_opts(void) {
    return (cq_quantize_opts){.weights = CQ_QINT8, .activations = CQ_QNONE, .optimizer = CQ_OPT_DEFAULT};
}

/* The checks quanto makes when a module is created or first run (QUANTO-FORMAT.md 2.8, 5.2);
 * the rules are the qtype table's. */
static cq_status check_qtypes(cq_qtype weights, cq_qtype activations, cq_optimizer_kind opt, cq_err *err) {
    if (weights != CQ_QNONE && !cq_qtype_takes(weights, CQ_QROLE_WEIGHTS, false))
        return cq_err_set(err, CQ_E_ARG, "quantize: invalid weights qtype %d", (int)weights);
    if (activations != CQ_QNONE && !cq_qtype_takes(activations, CQ_QROLE_ACTIVATIONS, false))
        return cq_err_set(err, CQ_E_ARG, "quantize: activations must be none, qint8 or a float8 qtype, not %s",
                          cq_qtype_name(activations));
    bool valid_opt = opt >= CQ_OPT_DEFAULT && opt <= CQ_OPT_HQQ;
    if (valid_opt && weights != CQ_QNONE && !cq_qtype_optimizer_applies(weights, opt)) {
        if (opt == CQ_OPT_ABSMAX)
            return cq_err_set(err, CQ_E_ARG, "quantize: the absmax optimizer is symmetric and cannot quantize %s "
                              "weights (they need a shift: use max or hqq)", cq_qtype_name(weights));
        return cq_err_set(err, CQ_E_ARG, "quantize: the %s optimizer is affine and cannot quantize %s weights "
                          "(use absmax)", opt == CQ_OPT_MAX ? "max" : "hqq", cq_qtype_name(weights));
    }
    if (!valid_opt)
        return cq_err_set(err, CQ_E_ARG, "quantize: invalid optimizer %d", (int)opt);
    return CQ_OK;
}

cq_status cq__qmodule_check(const cq_module *m, cq_qtype weights, cq_qtype activations, cq_optimizer_kind opt,
                            cq_err *err) {
    cq_status s = check_qtypes(weights, activations, opt, err);
    if (s) return s;
    if (m->q) return cq_err_set(err, CQ_E_ARG, "%s is already quantized", m->name);
    bool weighted = m->kind == CQ_MODULE_LINEAR || m->kind == CQ_MODULE_CONV2D;
    if (!weighted && m->kind != CQ_MODULE_LAYER_NORM)
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: a %s cannot be quantized (Linear, Conv2d and LayerNorm can)",
                          m->name, cq_module_kind_name(m->kind));
    if (m->kind == CQ_MODULE_LAYER_NORM && weights != CQ_QNONE)
        return cq_err_set(err, CQ_E_ARG, "%s: a LayerNorm only takes activation quantization (weights none)",
                          m->name);
    if (weighted && weights != CQ_QNONE && !cq__weight_var(m) && !(m->q && m->q->frozen))
        return cq_err_set(err, CQ_E_ARG, "%s has no weight to quantize", m->name);
    return CQ_OK;
}

cq_status cq__qmodule_quantize(cq_module *m, cq_qtype weights, cq_qtype activations, cq_optimizer_kind opt,
                               cq_err *err) {
    cq_status s = cq__qmodule_check(m, weights, activations, opt, err);
    if (s) return s;
    cq__qstate *q = cq__calloc(1, sizeof *q, err, "quantization state");
    if (!q) return CQ_E_NOMEM;
    q->weights = weights;
    q->activations = activations;
    q->optimizer = opt;
    q->input_scale = q->output_scale = 1.0f;
    q->quantize_input = m->kind == CQ_MODULE_LINEAR && activations != CQ_QNONE;
    cq_var *w = cq__weight_var(m);
    if (cq_qtype_family_of(weights) == CQ_QFAMILY_AFFINE && w)
        q->group_size = cq_default_group_size(w->data->ndim, w->data->shape);
    m->q = q;
    return CQ_OK;
}

/* quanto selects modules with Python's fnmatch (case-sensitive on POSIX). */
static bool matches_any(const char *name, const char *const *patterns) {
    for (; *patterns; patterns++)
        if (cq__fnmatchcase(*patterns, name)) return true;
    return false;
}

cq_status cq_quantize(cq_model *model, const cq_quantize_opts *opts, cq_err *err) {
    if (!model || !opts) return cq_err_set(err, CQ_E_ARG, "cq_quantize: NULL argument");
    if (opts->weights == CQ_QNONE && opts->activations == CQ_QNONE)
        return cq_err_set(err, CQ_E_ARG, "cq_quantize: weights and activations are both none");
    cq_status s = check_qtypes(opts->weights, opts->activations, opts->optimizer, err);
    if (s) return s;
    for (cq_module *m = model->root; m; m = cq_module_next(model->root, m)) {
        if (opts->include && !matches_any(m->name, opts->include)) continue;
        if (opts->exclude && matches_any(m->name, opts->exclude)) continue;
        if (m->q) continue; /* quanto converts only float torch modules */
        bool weighted = m->kind == CQ_MODULE_LINEAR || m->kind == CQ_MODULE_CONV2D;
        bool norm = m->kind == CQ_MODULE_LAYER_NORM && opts->activations != CQ_QNONE;
        if (!weighted && !norm) continue;
        s = cq__qmodule_quantize(m, norm ? CQ_QNONE : opts->weights, opts->activations, opts->optimizer, err);
        if (s) return s;
    }
    return CQ_OK;
}

/* ---- straight-through transforms -------------------------------------------------------- */

typedef struct act_ctx {
    cq_qtype qtype;
    float scale;
    cq_tape *tape; /* scratch for the int8 codes */
} act_ctx;

/* quantize(x, scale) then dequantize, per tensor (quanto's ActivationQBytesQuantizer). */
static cq_status act_fake_quant(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err) {
    const act_ctx *c = ctx;
    float scale = c->scale;
    if (c->qtype == CQ_QINT8 && in->dtype == CQ_F32) { /* the vectorised kernels, same numbers */
        int64_t n = cq_tensor_numel(in);
        int8_t *codes = cq_tape_alloc(c->tape, (size_t)n, err);
        if (!codes) return CQ_E_NOMEM;
        cq_vec_quantize_i8(in->data, CQ_F32, n, scale, codes);
        cq_vec_dequantize_i8(codes, n, scale, out->data, CQ_F32);
        return CQ_OK;
    }
    cq_tensor *scale_t = NULL, *deq = NULL;
    cq_qactivation *a = NULL;
    cq_status s = cq_tensor_view(&scale_t, CQ_F32, 0, NULL, &scale, err);
    if (!s) s = cq_qactivation_quantize(in, c->qtype, scale_t, &a, err);
    if (!s) s = cq_qactivation_dequantize(a, CQ_F32, &deq, err);
    if (!s) memcpy(out->data, deq->data, cq_tensor_nbytes(out));
    cq_tensor_free(deq);
    cq_qactivation_free(a);
    cq_tensor_free(scale_t);
    return s;
}

/* quantize the float weight as the module would at freeze, then dequantize (qweight). */
static cq_status weight_fake_quant(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err) {
    const cq__qstate *q = ctx;
    cq_qweight *qw = NULL;
    cq_tensor *deq = NULL;
    cq_status s = cq_qweight_quantize(in, q->weights, q->optimizer, -1, &qw, err);
    if (!s) s = cq_qweight_dequantize(qw, CQ_F32, &deq, err);
    if (!s) memcpy(out->data, deq->data, cq_tensor_nbytes(out));
    cq_tensor_free(deq);
    cq_qweight_free(qw);
    return s;
}

/* ---- calibration -------------------------------------------------------------------------- */

cq_status cq_calibrate_begin(cq_model *m, double momentum, cq_err *err) {
    if (!m) return cq_err_set(err, CQ_E_ARG, "cq_calibrate_begin: model is NULL");
    if (!(momentum >= 0.0 && momentum <= 1.0))
        return cq_err_set(err, CQ_E_ARG, "cq_calibrate_begin: momentum %g outside [0, 1]", momentum);
    m->calibrating = true;
    /* torch multiplies an f32 tensor by Python floats: each factor is rounded to f32 once,
     * and (1 - momentum) is computed in double first. */
    m->calib_momentum = (float)momentum;
    m->calib_one_minus = (float)(1.0 - momentum);
    return CQ_OK;
}

void cq_calibrate_end(cq_model *m) {
    if (m) m->calibrating = false;
}

/* calibrate.py's _updated_scale with absmax_scale(x, qtype) as the new observation. */
static cq_status observe(const cq_model *model, cq_qtype qtype, const cq_var *x, float *scale, cq_err *err) {
    cq_tensor *s_t = NULL;
    cq_status s = cq_absmax_scale(x->data, qtype, CQ_AXIS_NONE, &s_t, err);
    if (s) return s;
    float fresh = ((const float *)s_t->data)[0];
    cq_tensor_free(s_t);
    if (*scale == 1.0f) *scale = fresh; /* "all elements equal 1": the first observation */
    else *scale = model->calib_momentum * *scale + fresh * model->calib_one_minus;
    return CQ_OK;
}

/* ---- the quantized forward ------------------------------------------------------------------ */

static cq_status frozen_dequant_var(cq__qstate *q, cq_err *err) {
    if (q->frozen_dequant) return CQ_OK;
    cq_tensor *deq = NULL;
    cq_status s = cq_qweight_dequantize(q->frozen, CQ_F32, &deq, err);
    if (!s) s = cq_var_from_tensor(&q->frozen_dequant, deq, false, err);
    cq_tensor_free(deq);
    return s;
}

/* The kernels' packed form of a frozen 2-D weight, made once; false when they have none
 * (float8 e4m3fnuz), and the float path runs instead. */
static bool kernel_weight(cq__qstate *q, cq_err *err, cq_status *s) {
    *s = CQ_OK;
    if (q->mm || q->mm_unavailable) return q->mm != NULL;
    const cq_qweight *w = q->frozen;
    bool supported = w->ndim == 2 && (w->qtype == CQ_QINT8 || w->qtype == CQ_QFLOAT8_E4M3FN ||
                                      w->qtype == CQ_QFLOAT8_E5M2 || w->qtype == CQ_QINT4 || w->qtype == CQ_QINT2);
    if (!supported) {
        q->mm_unavailable = true;
        return false;
    }
    cq_mm_weight_src src = {
        .qtype = w->qtype,
        .out_features = w->shape[0],
        .in_features = w->shape[1],
        .group_size = w->group_size,
        .data = w->data->data,
        .scale = w->scale->data,
        .shift = w->shift ? w->shift->data : NULL,
        .scale_dtype = w->scale->dtype,
    };
    *s = cq_mm_weight_new(&q->mm, &src, err);
    return *s == CQ_OK;
}

/* A frozen Linear at inference through the quantized kernels, as quanto dispatches it
 * (QUANTO-FORMAT.md 4.2): int8 weights with int8 activations are an integer matmul with quanto's
 * qbytes_int_mm epilogue; other weights are weight-only matmuls on the (already quantized
 * and dequantized, when activations are set) f32 input. Returns false in *used when the
 * kernels cannot take this weight. */
static cq_status frozen_linear_kernel(cq_tape *t, cq_module *m, cq_var *x, cq_var *in, bool *used, cq_var **out,
                                      cq_err *err) {
    cq__qstate *q = m->q;
    cq_status s;
    *used = kernel_weight(q, err, &s);
    if (s || !*used) return s;
    const cq_tensor *xt = x->data;
    const int64_t K = q->frozen->shape[1], N = q->frozen->shape[0];
    if (xt->ndim < 1 || xt->shape[xt->ndim - 1] != K) {
        char buf[96];
        return cq_err_set(err, CQ_E_SHAPE, "input of shape %s for a Linear with %lld inputs",
                          cq_shape_str(xt->ndim, xt->shape, buf, sizeof buf), (long long)K);
    }
    const int64_t M = cq_tensor_numel(xt) / K;
    int64_t shape[CQ_MAX_DIMS];
    memcpy(shape, xt->shape, sizeof shape);
    shape[xt->ndim - 1] = N;
    cq_var *y = NULL;
    s = cq_tape_zeros(t, xt->ndim, shape, &y, err);
    if (s) return s;
    cq_var *bias = cq_module_param(m, "bias");
    cq_matmul_opts o = cq_matmul_default_opts();
    o.bias = bias ? cq_var_f32(bias) : NULL;
    const void *xdata = cq_var_f32(in);
    cq_dtype xdtype = CQ_F32;
    if (q->weights == CQ_QINT8 && q->activations == CQ_QINT8) {
        int8_t *codes = cq_tape_alloc(t, (size_t)(M * K), err);
        if (!codes) return CQ_E_NOMEM;
        cq_vec_quantize_i8(cq_var_f32(x), CQ_F32, M * K, q->input_scale, codes);
        xdata = codes;
        xdtype = CQ_I8;
        o.x_scale = q->input_scale;
    }
    o.work_size = cq_matmul_work_size(q->mm, M, xdtype, o.mode);
    o.work = o.work_size ? cq_tape_alloc(t, o.work_size, err) : NULL;
    if (o.work_size && !o.work) return CQ_E_NOMEM;
    s = cq_matmul(q->mm, M, xdata, xdtype, K, cq_var_f32(y), CQ_F32, N, &o, err);
    *out = s ? NULL : y;
    return s;
}

cq_status cq__qmodule_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err) {
    cq__qstate *q = m->q;
    cq_model *model = cq__module_model(m);
    bool calibrating = model && model->calibrating && q->activations != CQ_QNONE;
    /* Frozen Linears run on the quantized kernels when nothing needs a gradient; the float
     * path (dequantized weight, sgemm) serves training and the weights the kernels lack. */
    bool kernel = q->frozen && m->kind == CQ_MODULE_LINEAR && !cq_tape_grad_enabled(t);
    bool int8_kernel = kernel && q->weights == CQ_QINT8 && q->activations == CQ_QINT8;
    cq_status s = CQ_OK;
    cq_var *in = x, *y = NULL;
    if (calibrating) {
        /* quanto calibrates every quantized module's input scale, even where (Conv2d,
         * LayerNorm) the input is then not quantized */
        s = observe(model, q->activations, x, &q->input_scale, err);
        if (s) return s;
    }
    if (q->quantize_input && !int8_kernel) { /* the int8 kernel quantizes its input itself */
        act_ctx c = {q->activations, q->input_scale, t};
        s = cq_ste(t, x, act_fake_quant, &c, &in, err);
        if (s) return s;
    }
    bool used = false;
    if (kernel) {
        s = frozen_linear_kernel(t, m, x, in, &used, &y, err);
        if (s) return s;
        if (!used && int8_kernel) { /* the kernels refused after all: quantize the input here */
            act_ctx c = {q->activations, q->input_scale, t};
            s = cq_ste(t, x, act_fake_quant, &c, &in, err);
            if (s) return s;
        }
    }
    if (used) {
        /* y came from the kernels */
    } else if (m->kind == CQ_MODULE_LAYER_NORM) {
        s = cq__layer_norm_forward(t, m, in, &y, err);
    } else if (q->frozen) {
        s = frozen_dequant_var(q, err);
        if (!s) s = cq__weighted_forward(t, m, in, q->frozen_dequant, &y, err);
    } else if (q->weights != CQ_QNONE) {
        cq_var *w_hat = NULL;
        s = cq_ste(t, cq__weight_var(m), weight_fake_quant, q, &w_hat, err);
        if (!s) s = cq__weighted_forward(t, m, in, w_hat, &y, err);
    } else {
        s = cq__weighted_forward(t, m, in, cq__weight_var(m), &y, err);
    }
    if (s) return s;
    if (q->activations != CQ_QNONE) {
        if (calibrating) {
            s = observe(model, q->activations, y, &q->output_scale, err);
            if (s) return s;
        }
        act_ctx c = {q->activations, q->output_scale, t};
        s = cq_ste(t, y, act_fake_quant, &c, &y, err);
        if (s) return s;
    }
    *out = y;
    return CQ_OK;
}

/* ---- freeze ------------------------------------------------------------------------------------ */

cq_status cq__qmodule_set_frozen(cq_module *m, cq_qweight *qw, cq_err *err) {
    cq__param *slot = cq__module_slot(m, "weight");
    if (!m->q || !slot) {
        cq_qweight_free(qw);
        return cq_err_set(err, CQ_E_ARG, "%s: not a quantized module with a weight", m->name);
    }
    cq__qstate_drop_frozen(m->q);
    m->q->frozen = qw;
    cq_var_free(slot->var);
    slot->var = NULL;
    return CQ_OK;
}

cq_status cq_freeze(cq_model *model, cq_err *err) {
    if (!model) return cq_err_set(err, CQ_E_ARG, "cq_freeze: model is NULL");
    for (cq_module *m = model->root; m; m = cq_module_next(model->root, m)) {
        cq__qstate *q = m->q;
        if (!q || q->frozen || q->weights == CQ_QNONE || !cq__weight_var(m)) continue;
        cq_qweight *qw = NULL;
        cq_status s = cq_qweight_quantize(cq__weight_var(m)->data, q->weights, q->optimizer, -1, &qw, err);
        if (!s) s = cq__qmodule_set_frozen(m, qw, err);
        if (s) return cq_err_prefix(err, s, "freezing %s: ", m->name);
    }
    return CQ_OK;
}

/* ---- introspection ---------------------------------------------------------------------------- */

cq_module_qinfo cq_module_get_qinfo(const cq_module *m) {
    cq_module_qinfo info = {0};
    if (!m || !m->q) return info;
    info.quantized = true;
    info.frozen = m->q->frozen != NULL;
    info.weights = m->q->weights;
    info.activations = m->q->activations;
    info.optimizer = m->q->optimizer;
    info.group_size = m->q->group_size;
    info.input_scale = m->q->input_scale;
    info.output_scale = m->q->output_scale;
    info.qweight = m->q->frozen;
    return info;
}

cq_status cq_model_qmap(const cq_model *model, cq_qmap **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_model_qmap: out is NULL");
    *out = NULL;
    if (!model) return cq_err_set(err, CQ_E_ARG, "cq_model_qmap: model is NULL");
    cq_qmap *map = NULL;
    cq_status s = cq_qmap_new(&map, err);
    for (cq_module *m = model->root; !s && m; m = cq_module_next(model->root, m))
        if (m->q) s = cq_qmap_set(map, m->name, m->q->weights, m->q->activations, err);
    if (s) {
        cq_qmap_free(map);
        return s;
    }
    *out = map;
    return CQ_OK;
}
