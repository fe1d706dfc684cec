/*
 * lenet.c - the PyTorch tutorial LeNet for MNIST, the network behind
 * data/lenet_mnist.safetensors: conv1 (1->10, 5x5), conv2 (10->20, 5x5), fc1 (320->50),
 * fc2 (50->10). Its forward is plain C over the module tree, which is how any model is
 * written for cquanto. The tutorial's dropout layers only act in training and are left out.
 */
#include "cquanto.h"

#include <string.h>

static cq_status lenet_forward(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err) {
    const cq_tensor *in = x->data;
    if (in->ndim != 4 || in->shape[1] != 1 || in->shape[2] != 28 || in->shape[3] != 28) {
        char buf[96];
        return cq_err_set(err, CQ_E_SHAPE, "LeNet: input of shape %s, expected [N, 1, 28, 28]",
                          cq_shape_str(in->ndim, in->shape, buf, sizeof buf));
    }
    cq_module *root = cq_model_root(m);
    cq_pool2d_opts pool = cq_pool2d_default_opts(2);
    cq_var *y = NULL;
    cq_status s = cq_module_forward(t, cq_module_find(root, "conv1"), x, &y, err);
    if (!s) s = cq_max_pool2d(t, y, &pool, &y, err);
    if (!s) s = cq_relu(t, y, &y, err);
    if (!s) s = cq_module_forward(t, cq_module_find(root, "conv2"), y, &y, err);
    if (!s) s = cq_max_pool2d(t, y, &pool, &y, err);
    if (!s) s = cq_relu(t, y, &y, err);
    if (!s) s = cq_flatten(t, y, 1, -1, &y, err);
    if (!s) s = cq_module_forward(t, cq_module_find(root, "fc1"), y, &y, err);
    if (!s) s = cq_relu(t, y, &y, err);
    if (!s) s = cq_module_forward(t, cq_module_find(root, "fc2"), y, &y, err);
    if (!s) s = cq_log_softmax(t, y, &y, err);
    *out = s ? NULL : y;
    return s;
}

/* Attaches a just-made leaf (made: its constructor's status). The child is passed by address
 * because it is written by the constructor call that is evaluated as another argument of the
 * same call. */
static cq_status attach(cq_module *parent, const char *name, cq_status made, cq_module **child, cq_err *err) {
    return made ? made : cq_module_add(parent, name, *child, err);
}

cq_status cq_lenet_new(cq_model **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_lenet_new: out is NULL");
    *out = NULL;
    cq_module *root = NULL, *c = NULL;
    cq_status s = cq_module_new_container(&root, err);
    if (s) return s;
    s = attach(root, "conv1", cq_module_new_conv2d(&c, 1, 10, 5, 5, NULL, true, err), &c, err);
    if (!s) s = attach(root, "conv2", cq_module_new_conv2d(&c, 10, 20, 5, 5, NULL, true, err), &c, err);
    if (!s) s = attach(root, "fc1", cq_module_new_linear(&c, 320, 50, true, err), &c, err);
    if (!s) s = attach(root, "fc2", cq_module_new_linear(&c, 50, 10, true, err), &c, err);
    if (s) {
        cq_module_free(root);
        return s;
    }
    return cq_model_new(out, "LeNet", root, lenet_forward, err);
}
