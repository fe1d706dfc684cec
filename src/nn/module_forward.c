/*
 * module_forward.c - running a module tree: cq_module_forward picks a module's quantized
 * forward (qmodule.c) or its float one (below, by kind; a Sequential runs its children in
 * order through cq_module_forward again), and cq_model_forward calls the model's forward
 * function or its root. It sits above module.c and qmodule.c, so neither calls the other back.
 */
#include "nn/module_internal.h"

static cq_status float_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err) {
    switch (m->kind) {
    case CQ_MODULE_LINEAR:
    case CQ_MODULE_CONV2D: return cq__weighted_forward(t, m, x, cq__weight_var(m), out, err);
    case CQ_MODULE_LAYER_NORM: return cq__layer_norm_forward(t, m, x, out, err);
    case CQ_MODULE_RMS_NORM: return cq_rms_norm(t, x, cq__weight_var(m), m->eps, out, err);
    case CQ_MODULE_BATCH_NORM2D: {
        cq_status s = cq_batch_norm2d(t, x, cq__weight_var(m), cq_module_param(m, "bias"),
                                      cq_module_param(m, "running_mean"), cq_module_param(m, "running_var"),
                                      m->training, m->momentum, m->eps, out, err);
        if (!s && m->training) cq_var_f32(cq_module_param(m, "num_batches_tracked"))[0] += 1.0f;
        return s;
    }
    case CQ_MODULE_RELU: return cq_relu(t, x, out, err);
    case CQ_MODULE_FLATTEN: return cq_flatten(t, x, 1, -1, out, err);
    case CQ_MODULE_IDENTITY: *out = x; return CQ_OK;
    case CQ_MODULE_SEQUENTIAL: {
        cq_var *cur = x;
        for (int i = 0; i < m->n_children; i++) {
            cq_status s = cq_module_forward(t, m->children[i], cur, &cur, err);
            if (s) return s;
        }
        *out = cur;
        return CQ_OK;
    }
    case CQ_MODULE_EMBEDDING:
        return cq_err_set(err, CQ_E_ARG, "%s: an Embedding takes ids: use cq_module_forward_ids", m->name);
    case CQ_MODULE_CONTAINER: break;
    }
    return cq_err_set(err, CQ_E_UNSUPPORTED, "module '%s' (%s) has no forward of its own: its model's forward "
                      "calls its children", m->name, cq_module_kind_name(m->kind));
}

cq_status cq_module_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_forward: out is NULL");
    *out = NULL;
    if (!t || !m || !x) return cq_err_set(err, CQ_E_ARG, "cq_module_forward: NULL argument");
    cq_status s = m->q ? cq__qmodule_forward(t, m, x, out, err) : float_forward(t, m, x, out, err);
    if (s && m->kind != CQ_MODULE_SEQUENTIAL && m->name[0] && !strstr(err ? err->msg : "", m->name))
        cq_err_prefix(err, s, "%s: ", m->name);
    return s;
}

cq_status cq_module_forward_ids(cq_tape *t, cq_module *m, const int64_t *ids, int ids_ndim, const int64_t *ids_shape,
                                cq_var **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_forward_ids: out is NULL");
    *out = NULL;
    if (!t || !m || m->kind != CQ_MODULE_EMBEDDING)
        return cq_err_set(err, CQ_E_ARG, "cq_module_forward_ids: needs a tape and an Embedding module");
    return cq_embedding(t, cq__weight_var(m), ids, ids_ndim, ids_shape, out, err);
}

cq_status cq_model_forward(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_model_forward: out is NULL");
    *out = NULL;
    if (!m || !t || !x) return cq_err_set(err, CQ_E_ARG, "cq_model_forward: NULL argument");
    if (m->forward) return m->forward(m, t, x, out, err);
    return cq_module_forward(t, m->root, x, out, err);
}
