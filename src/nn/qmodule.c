/*
 * qmodule.c - optimum-quanto's quantized modules on a cquanto module tree: quantize() with
 * fnmatch selection, the quantized forward (dynamic weight quantization with a
 * straight-through backward, per-tensor activation quantization), Calibration with momentum,
 * and freeze(). The quantization math is the quant layer's (cq_qweight_*, cq_qactivation_*);
 * this file decides when it is applied, as quanto's QModuleMixin and hooks do (spec 5-6).
 * Serialization of the result is in state.c.
 */
#include "nn/module_internal.h"

#include <fnmatch.h>

void cq__qstate_free(cq__qstate *q) {
    if (!q) return;
    cq_qweight_free(q->frozen);
    cq_var_free(q->frozen_dequant);
    free(q);
}

cq_quantize_opts cq_quantize_default_opts(void) {
    return (cq_quantize_opts){.weights = CQ_QINT8, .activations = CQ_QNONE, .optimizer = CQ_OPT_DEFAULT};
}

static bool is_8bit(cq_qtype q) { return q != CQ_QNONE && cq_qtype_get(q)->bits == 8; }

/* The checks quanto makes when a module is created or first run (spec 2.8, 5.2). */
static cq_status check_qtypes(cq_qtype weights, cq_qtype activations, cq_optimizer_kind opt, cq_err *err) {
    if (weights != CQ_QNONE && !cq_qtype_get(weights))
        return cq_err_set(err, CQ_E_ARG, "quantize: invalid weights qtype %d", (int)weights);
    if (activations != CQ_QNONE && (!cq_qtype_get(activations) || !is_8bit(activations)))
        return cq_err_set(err, CQ_E_ARG, "quantize: activations must be none, qint8 or a float8 qtype, not %s",
                          cq_qtype_name(activations));
    if (opt == CQ_OPT_ABSMAX && weights != CQ_QNONE && !is_8bit(weights))
        return cq_err_set(err, CQ_E_ARG, "quantize: the absmax optimizer is symmetric and cannot quantize %s weights "
                          "(they need a shift: use max or hqq)", cq_qtype_name(weights));
    if ((opt == CQ_OPT_MAX || opt == CQ_OPT_HQQ) && is_8bit(weights))
        return cq_err_set(err, CQ_E_ARG, "quantize: the %s optimizer is affine and cannot quantize %s weights "
                          "(use absmax)", opt == CQ_OPT_MAX ? "max" : "hqq", cq_qtype_name(weights));
    if (opt < CQ_OPT_DEFAULT || opt > CQ_OPT_HQQ)
        return cq_err_set(err, CQ_E_ARG, "quantize: invalid optimizer %d", (int)opt);
    return CQ_OK;
}

cq_status cq__qmodule_quantize(cq_module *m, cq_qtype weights, cq_qtype activations, cq_optimizer_kind opt,
                               cq_err *err) {
    cq_status s = check_qtypes(weights, activations, opt, err);
    if (s) return s;
    if (m->q) return cq_err_set(err, CQ_E_ARG, "%s is already quantized", m->name);
    bool weighted = m->kind == CQ_MODULE_LINEAR || m->kind == CQ_MODULE_CONV2D;
    if (!weighted && m->kind != CQ_MODULE_LAYER_NORM)
        return cq_err_set(err, CQ_E_UNSUPPORTED, "%s: a %s cannot be quantized (Linear, Conv2d and LayerNorm can)",
                          m->name, cq_module_kind_name(m->kind));
    if (m->kind == CQ_MODULE_LAYER_NORM && (weights != CQ_QNONE || activations == CQ_QNONE))
        return cq_err_set(err, CQ_E_ARG, "%s: a LayerNorm only takes activation quantization (weights none)",
                          m->name);
    if (weighted && weights == CQ_QNONE && activations == CQ_QNONE)
        return cq_err_set(err, CQ_E_ARG, "%s: nothing to quantize (weights and activations are none)", m->name);
    cq__qstate *q = cq__calloc(1, sizeof *q, err, "quantization state");
    if (!q) return CQ_E_NOMEM;
    q->weights = weights;
    q->activations = activations;
    q->optimizer = opt;
    q->input_scale = q->output_scale = 1.0f;
    q->quantize_input = m->kind == CQ_MODULE_LINEAR && activations != CQ_QNONE;
    cq_var *w = cq__weight_var(m);
    if (weights != CQ_QNONE && !is_8bit(weights) && w)
        q->group_size = cq_default_group_size(w->data->ndim, w->data->shape);
    m->q = q;
    return CQ_OK;
}

/* Python's fnmatch on POSIX is case-sensitive shell matching of the whole name. */
static bool matches_any(const char *name, const char *const *patterns) {
    for (; *patterns; patterns++)
        if (fnmatch(*patterns, name, 0) == 0) return true;
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
        if (weighted && opts->weights == CQ_QNONE && !cq__weight_var(m)) continue;
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
} act_ctx;

/* quantize(x, scale) then dequantize, per tensor (quanto's ActivationQBytesQuantizer). */
static cq_status act_fake_quant(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err) {
    const act_ctx *c = ctx;
    float scale = c->scale;
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

cq_status cq__qmodule_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err) {
    cq__qstate *q = m->q;
    cq_model *model = cq__module_model(m);
    bool calibrating = model && model->calibrating && q->activations != CQ_QNONE;
    cq_status s = CQ_OK;
    cq_var *in = x, *y = NULL;
    if (calibrating) {
        /* quanto calibrates every quantized module's input scale, even where (Conv2d,
         * LayerNorm) the input is then not quantized */
        s = observe(model, q->activations, x, &q->input_scale, err);
        if (s) return s;
    }
    if (q->quantize_input) {
        act_ctx c = {q->activations, q->input_scale};
        s = cq_ste(t, x, act_fake_quant, &c, &in, err);
        if (s) return s;
    }
    if (m->kind == CQ_MODULE_LAYER_NORM) {
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
        act_ctx c = {q->activations, q->output_scale};
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
    cq_qweight_free(m->q->frozen);
    cq_var_free(m->q->frozen_dequant);
    m->q->frozen_dequant = NULL;
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
        if (s) return cq_err_prefix(err, "freezing %s: ", m->name);
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
