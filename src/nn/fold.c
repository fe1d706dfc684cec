/*
 * fold.c - Conv-BN(-ReLU) folding for inference, as torch.ao.quantization.fuse_modules does
 * with fuse_conv_bn_weights: the BatchNorm's eval statistics are folded into the conv's
 * weight and bias with PyTorch's operation order (f32, one rounding per op), the BatchNorm
 * and ReLU become Identity, and the conv applies the ReLU itself. Training-mode folding
 * (QAT's ConvBn modules) is not provided.
 */
#include "nn/module_internal.h"

static cq_status find_kind(cq_model *model, const char *name, cq_module_kind kind, cq_module **out, cq_err *err) {
    *out = cq_module_find(model->root, name);
    if (!*out) return cq_err_set(err, CQ_E_NOTFOUND, "fold: the %s model has no module '%s'", model->arch, name);
    if ((*out)->kind != kind)
        return cq_err_set(err, CQ_E_ARG, "fold: '%s' is a %s, expected a %s", name, cq_module_kind_name((*out)->kind),
                          cq_module_kind_name(kind));
    if ((*out)->q) return cq_err_set(err, CQ_E_ARG, "fold: '%s' is quantized; fold before quantizing", name);
    return CQ_OK;
}

/* Turns a module into a parameterless Identity in place (its name and position stay). */
static void make_identity(cq_module *m) {
    for (int i = 0; i < m->n_params; i++) cq_var_free(m->params[i].var);
    m->n_params = 0;
    m->kind = CQ_MODULE_IDENTITY;
}

cq_status cq_fold_conv_bn(cq_model *model, const char *conv_name, const char *bn_name, const char *relu_name,
                          cq_err *err) {
    if (!model || !conv_name || !bn_name) return cq_err_set(err, CQ_E_ARG, "cq_fold_conv_bn: NULL argument");
    cq_module *conv, *bn, *relu = NULL;
    cq_status s = find_kind(model, conv_name, CQ_MODULE_CONV2D, &conv, err);
    if (!s) s = find_kind(model, bn_name, CQ_MODULE_BATCH_NORM2D, &bn, err);
    if (!s && relu_name) s = find_kind(model, relu_name, CQ_MODULE_RELU, &relu, err);
    if (s) return s;
    if (conv->fused_relu) return cq_err_set(err, CQ_E_ARG, "fold: '%s' already ends with a ReLU", conv_name);
    if (bn->out_features != conv->out_features)
        return cq_err_set(err, CQ_E_SHAPE, "fold: '%s' has %lld channels but '%s' produces %lld", bn_name,
                          (long long)bn->out_features, conv_name, (long long)conv->out_features);
    if (bn->training || conv->training)
        return cq_err_set(err, CQ_E_ARG, "fold: '%s' is in training mode; folding uses the running statistics "
                          "(call cq_model_set_training(model, false) first)", bn_name);
    if (!cq_module_param(conv, "bias")) {
        s = cq__module_add_param(conv, "bias", 1, &conv->out_features, false, CQ_F32, err);
        if (s) return s;
    }
    const int64_t channels = conv->out_features;
    const float *mean = cq_var_f32(cq_module_param(bn, "running_mean"));
    const float *var = cq_var_f32(cq_module_param(bn, "running_var"));
    const cq_var *gamma_v = cq_module_param(bn, "weight"), *beta_v = cq_module_param(bn, "bias");
    cq_var *w = cq__weight_var(conv);
    float *wd = cq_var_f32(w), *bd = cq_var_f32(cq_module_param(conv, "bias"));
    const int64_t per_channel = cq_var_numel(w) / channels;
    for (int64_t c = 0; c < channels; c++) {
        float gamma = gamma_v ? cq_var_f32(gamma_v)[c] : 1.0f, beta = beta_v ? cq_var_f32(beta_v)[c] : 0.0f;
        float rsqrt = 1.0f / sqrtf(var[c] + bn->eps); /* torch.rsqrt(bn_rv + bn_eps) */
        float w_factor = gamma * rsqrt;                 /* (bn_w * bn_var_rsqrt) */
        for (int64_t i = 0; i < per_channel; i++) wd[c * per_channel + i] = wd[c * per_channel + i] * w_factor;
        float t = bd[c] - mean[c]; /* ((conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b) */
        t = t * rsqrt;
        t = t * gamma;
        bd[c] = t + beta;
    }
    make_identity(bn);
    if (relu) {
        make_identity(relu);
        conv->fused_relu = true;
    }
    return CQ_OK;
}
