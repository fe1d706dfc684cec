/*
 * module_internal.h - the module tree's private layout, shared by module.c (tree, params,
 * the float computations), module_forward.c (running a tree), qmodule.c (quantize /
 * calibrate / freeze / quantized forward), state.c (state dicts, save, requantize) and
 * fold.c. Not part of the public API.
 */
#ifndef CQ_MODULE_INTERNAL_H
#define CQ_MODULE_INTERNAL_H

#include "core/internal.h"
#include "core/strmap.h"

#include <math.h>

#define CQ__MAX_PARAMS 5

/* A parameter or buffer slot. var is NULL when absent (no bias, a frozen weight). */
typedef struct cq__param {
    const char *name;     /* local name, a string literal */
    cq_var *var;          /* owned, f32 */
    cq_dtype file_dtype;  /* dtype in state dicts: F32, or I64 for num_batches_tracked */
    bool is_buffer;       /* buffers never take gradients */
} cq__param;

/* Quantization state of a module (quanto's QModuleMixin). */
typedef struct cq__qstate {
    cq_qtype weights, activations;
    cq_optimizer_kind optimizer;
    int64_t group_size;       /* the module rule for 2/4-bit weights, 0 = none */
    float input_scale, output_scale;
    bool quantize_input;      /* Linear only (QUANTO-FORMAT.md 5.1) */
    cq_qweight *frozen;       /* set by freeze; the float weight is then gone */
    /* Derived from `frozen` on first use and dropped with it: */
    cq_var *frozen_dequant;   /* the weight dequantized to f32, for the float paths */
    cq_mm_weight *mm;         /* the kernels' packed weight, for a frozen Linear */
    bool mm_unavailable;      /* the kernels have no matmul for this weight */
} cq__qstate;

struct cq_module {
    char *name;  /* full dotted name */
    char *local; /* local name */
    cq_module_kind kind;
    cq_module *parent;
    int index; /* in parent->children */
    cq_module **children;
    int n_children, cap_children;
    cq__strmap by_local; /* child local name -> index in children */
    cq__param params[CQ__MAX_PARAMS];
    int n_params;
    bool training;
    /* configuration, by kind */
    int64_t in_features, out_features;                /* Linear; Conv2d channels */
    int64_t kernel[2];                                /* Conv2d */
    cq_conv2d_opts conv;
    bool fused_relu;                                  /* Conv2d after folding a ReLU */
    int norm_ndim;                                    /* LayerNorm */
    int64_t norm_shape[CQ_MAX_DIMS];
    float eps, momentum;                              /* norms; BatchNorm momentum */
    cq__qstate *q;                                    /* NULL unless quantized */
    struct cq_model *model;                           /* set on the root only */
};

struct cq_model {
    char *arch;
    cq_module *root;
    cq_model_forward_fn forward;
    bool calibrating;
    float calib_momentum, calib_one_minus; /* f32 of m and of (1 - m) computed in double */
};

/* The slot of a param by local name, NULL if the module has no such slot. */
cq__param *cq__module_slot(const cq_module *m, const char *local_name);
/* Adds a slot with a new f32 var of the given shape (zeros). */
cq_status cq__module_add_param(cq_module *m, const char *name, int ndim, const int64_t *shape,
                               bool is_buffer, cq_dtype file_dtype, cq_err *err);
/* The model a module belongs to (through its root), NULL if detached. */
cq_model *cq__module_model(const cq_module *m);
/* The float computation of a Linear/Conv2d with the given weight var (the module's own, a
 * straight-through dequantized one, or a frozen dequantized one). */
cq_status cq__weighted_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var *w, cq_var **out, cq_err *err);
/* The float forward of a LayerNorm module. */
cq_status cq__layer_norm_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err);

/* Frees a module's quantization state (module.c: it goes with the module). */
void cq__qstate_free(cq__qstate *q);
/* Drops the frozen weight and what was derived from it. */
void cq__qstate_drop_frozen(cq__qstate *q);

/* qmodule.c: the forward of a quantized module. */
cq_status cq__qmodule_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err);
/* Whether a module can be quantized with these qtypes (nothing changes). */
cq_status cq__qmodule_check(const cq_module *m, cq_qtype weights, cq_qtype activations, cq_optimizer_kind opt,
                            cq_err *err);
/* Quantizes one module with the given qtypes (used by cq_quantize and requantize). */
cq_status cq__qmodule_quantize(cq_module *m, cq_qtype weights, cq_qtype activations, cq_optimizer_kind opt,
                               cq_err *err);
/* Installs a frozen weight (ownership taken, also on failure) in place of the float one. */
cq_status cq__qmodule_set_frozen(cq_module *m, cq_qweight *qw, cq_err *err);

/* The float weight tensor a module's "weight" slot holds, NULL if absent. */
static inline cq_var *cq__weight_var(const cq_module *m) {
    cq__param *p = cq__module_slot(m, "weight");
    return p ? p->var : NULL;
}

#endif
