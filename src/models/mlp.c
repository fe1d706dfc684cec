/*
 * mlp.c - a multilayer perceptron: Linear layers named "layers.0", "layers.1", ... with ReLU
 * between them and raw logits out (pair it with cq_cross_entropy). Randomly initialised the
 * PyTorch way (U(+-1/sqrt(fan_in))) from a seed; the digits example trains one from scratch.
 */
#include "cquanto.h"

#include <stdio.h>

static cq_status mlp_forward(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err) {
    cq_module *layers = cq_module_find(cq_model_root(m), "layers");
    int n = cq_module_num_children(layers);
    cq_var *y = x;
    cq_status s = CQ_OK;
    for (int i = 0; !s && i < n; i++) {
        s = cq_module_forward(t, cq_module_child(layers, i), y, &y, err);
        if (!s && i + 1 < n) s = cq_relu(t, y, &y, err);
    }
    *out = s ? NULL : y;
    return s;
}

cq_status cq_mlp_new(cq_model **out, int n_layers, const int64_t *sizes, uint64_t seed, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_mlp_new: out is NULL");
    *out = NULL;
    if (n_layers < 1 || n_layers > 1000 || !sizes)
        return cq_err_set(err, CQ_E_ARG, "cq_mlp_new: needs 1..1000 layers and their sizes");
    cq_module *root = NULL, *layers = NULL;
    cq_status s = cq_module_new_container(&root, err);
    if (!s) s = cq_module_new_container(&layers, err);
    if (!s) s = cq_module_add(root, "layers", layers, err);
    for (int i = 0; !s && i < n_layers; i++) {
        cq_module *fc = NULL;
        char name[16];
        snprintf(name, sizeof name, "%d", i);
        s = cq_module_new_linear(&fc, sizes[i], sizes[i + 1], true, err);
        if (!s) s = cq_module_add(layers, name, fc, err);
    }
    if (s) {
        cq_module_free(root);
        return s;
    }
    cq_module_init_params(root, seed);
    return cq_model_new(out, "MLP", root, mlp_forward, err);
}
