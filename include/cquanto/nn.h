/*
 * cquanto/nn.h - autograd tape and ops, losses, optimizers, named module trees, models,
 * state dicts, and optimum-quanto's quantize / calibrate / freeze / save / requantize.
 */
#ifndef CQUANTO_NN_H
#define CQUANTO_NN_H

#include "cquanto/quant.h"
#include "cquanto/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================================
 * nn: autograd tape, ops (forward and backward), losses, optimizers
 * ====================================================================================== */

/* --- tape and variables ---------------------------------------------------------------
 * A cq_var is an f32 value that can carry a gradient. Two lifetimes exist:
 *  - long-lived vars (parameters, buffers such as running stats, constants) are made with
 *    cq_var_new / cq_var_from_tensor and freed by the caller with cq_var_free;
 *  - intermediates are made by ops on a cq_tape and owned by it: they stay valid until the
 *    next cq_tape_reset or cq_tape_free, which release all of them at once. Never free them.
 * The tape's memory is kept across resets and reused, so a training loop that resets after
 * every step stops allocating after its first step.
 *
 * When the tape's grad mode is on and any input requires a gradient, an op records a node;
 * cq_backward replays the nodes in reverse and ADDS into .grad of every var that requires a
 * gradient (zero them with cq_var_zero_grad or cq_optim_zero_grad). With grad mode off (for
 * inference) nothing is recorded and outputs never require a gradient.
 *
 * Op signature: cq_status cq_OP(cq_tape *t, inputs..., cq_var **out, cq_err *err). Inputs are
 * never modified (except the running stats cq_batch_norm2d updates in training). *out is NULL
 * on failure. A tape belongs to one thread at a time. Results never depend on the thread
 * count. docs/NN.md has the PyTorch correspondence and the measured accuracy. */
typedef struct cq_tape cq_tape;

typedef struct cq_var {
    cq_tensor *data;     /* f32, contiguous. Long-lived vars own it; the user may write it
                            (an optimizer does), but not while a recorded step still needs it */
    cq_tensor *grad;     /* f32, same shape; NULL until a backward reaches it. Owned like data */
    bool requires_grad;  /* parameters: true; buffers, constants and inputs: false */
    bool on_tape;        /* owned by a tape (an intermediate); false for long-lived vars */
    void *node;          /* private: the tape node that produced it, NULL for leaves */
} cq_var;

/* Long-lived var of zeros; pair with cq_var_free. */
CQ_API cq_status cq_var_new(cq_var **out, int ndim, const int64_t *shape, bool requires_grad, cq_err *err);
/* Long-lived var holding a copy of src converted to f32 (any float or integer dtype). */
CQ_API cq_status cq_var_from_tensor(cq_var **out, const cq_tensor *src, bool requires_grad, cq_err *err);
CQ_API void cq_var_free(cq_var *v); /* accepts NULL; refuses (does nothing) for on_tape vars */
static inline float *cq_var_f32(const cq_var *v) { return v && v->data ? (float *)v->data->data : NULL; }
static inline int64_t cq_var_numel(const cq_var *v) { return cq_tensor_numel(v ? v->data : NULL); }
/* Sets every element of v->grad to zero (no-op when it has none). */
CQ_API void cq_var_zero_grad(cq_var *v);

CQ_API cq_status cq_tape_new(cq_tape **out, cq_err *err);
CQ_API void cq_tape_free(cq_tape *t); /* accepts NULL */
/* Releases every intermediate and node recorded so far; keeps the memory for reuse. */
CQ_API void cq_tape_reset(cq_tape *t);
/* Grad mode (on for a new tape). Returns the previous setting, so a no-grad block is
 *     bool was = cq_tape_set_grad_enabled(t, false); ... ; cq_tape_set_grad_enabled(t, was); */
CQ_API bool cq_tape_set_grad_enabled(cq_tape *t, bool on);
CQ_API bool cq_tape_grad_enabled(const cq_tape *t);
/* Bytes of intermediates currently in use on the tape (0 after a reset). */
CQ_API size_t cq_tape_bytes(const cq_tape *t);

/* A tape-owned var copying src (converted to f32): how a batch of inputs enters a step. */
CQ_API cq_status cq_tape_input(cq_tape *t, const cq_tensor *src, cq_var **out, cq_err *err);
/* A tape-owned var of zeros that requires no gradient (for custom ops and the frozen paths). */
CQ_API cq_status cq_tape_zeros(cq_tape *t, int ndim, const int64_t *shape, cq_var **out, cq_err *err);
/* Scratch memory (64-byte aligned, uninitialised) valid until the next reset; NULL (err set)
 * when it cannot be had, which callers report as CQ_E_NOMEM. */
CQ_API void *cq_tape_alloc(cq_tape *t, size_t nbytes, cq_err *err);

/* Custom ops: compute `out` yourself (from cq_tape_zeros), then record how its gradient flows
 * back. The backward gets out->grad filled and must ADD into inputs[i]->grad for each input
 * that requires a gradient, after cq_var_ensure_grad(t, inputs[i], err). ctx (ctx_size bytes)
 * is copied onto the tape. Records nothing when grad mode is off or no input requires a
 * gradient; otherwise out->requires_grad becomes true. */
typedef cq_status (*cq_backward_fn)(cq_tape *t, const void *ctx, cq_var *out, cq_var *const *inputs,
                                    int n_inputs, cq_err *err);
CQ_API cq_status cq_tape_record(cq_tape *t, cq_var *out, cq_var *const *inputs, int n_inputs,
                                cq_backward_fn backward, const void *ctx, size_t ctx_size, cq_err *err);
/* Allocates a zeroed v->grad if v has none (on the tape for intermediates, owned by v for
 * long-lived vars). */
CQ_API cq_status cq_var_ensure_grad(cq_tape *t, cq_var *v, cq_err *err);

/* Seeds d(loss)/d(loss) = 1 (loss must have one element) and replays the tape in reverse,
 * accumulating into .grad. Intermediate grads are zeroed first, so a second call adds the
 * same gradients to the parameters again (like retain_graph=True). */
CQ_API cq_status cq_backward(cq_tape *t, cq_var *loss, cq_err *err);
/* The same with an explicit upstream gradient (numel(out) floats) for a non-scalar output. */
CQ_API cq_status cq_backward_with(cq_tape *t, cq_var *out, const float *grad_out, cq_err *err);

/* --- ops (forward and backward). Shapes are PyTorch's. ----------------------------------- */

/* y = x W^T + b. x [..., in], W [out, in], b [out] or NULL -> y [..., out]. CBLAS sgemm. */
CQ_API cq_status cq_linear(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, cq_var **out, cq_err *err);

typedef struct cq_conv2d_opts {
    int64_t stride[2], padding[2], dilation[2]; /* (h, w) */
    int64_t groups;
} cq_conv2d_opts;
CQ_API cq_conv2d_opts cq_conv2d_default_opts(void); /* stride 1, padding 0, dilation 1, groups 1 */
/* x [N, C, H, W], w [OC, C/groups, KH, KW], b [OC] or NULL; opts NULL means defaults.
 * im2col + sgemm; zero padding. */
CQ_API cq_status cq_conv2d(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, const cq_conv2d_opts *opts,
                           cq_var **out, cq_err *err);

/* Normalizes over the last n_norm_dims dims; w and b (either may be NULL) have those dims'
 * shape. PyTorch eps default 1e-5. Biased variance, as PyTorch. */
CQ_API cq_status cq_layer_norm(cq_tape *t, cq_var *x, int n_norm_dims, cq_var *w, cq_var *b, float eps,
                               cq_var **out, cq_err *err);
/* y = x / sqrt(mean(x^2 over the last dim) + eps) * w; w [D] or NULL. */
CQ_API cq_status cq_rms_norm(cq_tape *t, cq_var *x, cq_var *w, float eps, cq_var **out, cq_err *err);
/* x [N, C, H, W] or [N, C]; w, b [C] or NULL (affine=False). Training: normalizes with the
 * batch mean and biased variance and, when running_mean/running_var are given, updates them
 * in place as PyTorch does: r = (1-momentum) r + momentum * stat, with the unbiased variance.
 * Eval: normalizes with the running stats (with batch stats when they are NULL, as PyTorch's
 * track_running_stats=False). PyTorch defaults: momentum 0.1,
 * eps 1e-5. The running stats are buffers (long-lived vars); they never get gradients. */
CQ_API cq_status cq_batch_norm2d(cq_tape *t, cq_var *x, cq_var *w, cq_var *b, cq_var *running_mean,
                                 cq_var *running_var, bool training, float momentum, float eps,
                                 cq_var **out, cq_err *err);
/* weight [V, D]; ids (n_ids = product of ids_shape) in [0, V) -> [ids_shape..., D]. */
CQ_API cq_status cq_embedding(cq_tape *t, cq_var *weight, const int64_t *ids, int ids_ndim,
                              const int64_t *ids_shape, cq_var **out, cq_err *err);

CQ_API cq_status cq_relu(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
/* tanh_approx false: x/2 (1 + erf(x/sqrt 2)); true: PyTorch's approximate='tanh'. */
CQ_API cq_status cq_gelu(cq_tape *t, cq_var *x, bool tanh_approx, cq_var **out, cq_err *err);
CQ_API cq_status cq_silu(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
/* Over the last dim. */
CQ_API cq_status cq_softmax(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
CQ_API cq_status cq_log_softmax(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);

typedef struct cq_pool2d_opts {
    int64_t kernel[2], stride[2], padding[2], dilation[2]; /* stride 0 means = kernel */
    bool ceil_mode;
    bool count_include_pad; /* avg pool only; PyTorch default true */
} cq_pool2d_opts;
/* kernel k x k, stride = kernel, padding 0, dilation 1, floor mode, count_include_pad. */
CQ_API cq_pool2d_opts cq_pool2d_default_opts(int64_t k);
/* x [N, C, H, W]. Max pool pads with -inf; ties take the first maximum (gradient to it). */
CQ_API cq_status cq_max_pool2d(cq_tape *t, cq_var *x, const cq_pool2d_opts *opts, cq_var **out, cq_err *err);
CQ_API cq_status cq_avg_pool2d(cq_tape *t, cq_var *x, const cq_pool2d_opts *opts, cq_var **out, cq_err *err);
/* PyTorch's bins: start = floor(i*H/OH), end = ceil((i+1)*H/OH). */
CQ_API cq_status cq_adaptive_avg_pool2d(cq_tape *t, cq_var *x, int64_t out_h, int64_t out_w, cq_var **out,
                                        cq_err *err);

/* Training: zeroes each element with probability p and scales the rest by 1/(1-p); the mask
 * comes from *rng_state (a caller-held seed, advanced by the call), so runs are reproducible
 * (the masks are not PyTorch's). Not training or p == 0: the identity. */
CQ_API cq_status cq_dropout(cq_tape *t, cq_var *x, float p, bool training, uint64_t *rng_state, cq_var **out,
                            cq_err *err);
/* Views sharing x's data (no copy). reshape accepts one -1. end_dim may be -1. */
CQ_API cq_status cq_flatten(cq_tape *t, cq_var *x, int start_dim, int end_dim, cq_var **out, cq_err *err);
CQ_API cq_status cq_reshape(cq_tape *t, cq_var *x, int ndim, const int64_t *shape, cq_var **out, cq_err *err);
/* Elementwise a+b, a-b, a*b. Shapes equal, or the smaller one's shape is a suffix of the
 * other's (so [N, C] + [C] and any + one-element work); the result has the larger shape. */
CQ_API cq_status cq_add(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
CQ_API cq_status cq_sub(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
CQ_API cq_status cq_mul(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
/* y = x * s for a constant s. */
CQ_API cq_status cq_scale(cq_tape *t, cq_var *x, float s, cq_var **out, cq_err *err);
/* a [..., M, K] @ b [..., K, N]: b is 2-D (shared) or has a's batch dims. */
CQ_API cq_status cq_var_matmul(cq_tape *t, cq_var *a, cq_var *b, cq_var **out, cq_err *err);
/* Sum and mean of all elements (one-element result, shape []). Summed in double. */
CQ_API cq_status cq_sum(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
CQ_API cq_status cq_mean(cq_tape *t, cq_var *x, cq_var **out, cq_err *err);

/* Mean over the rows whose target is not -100 (PyTorch's ignore_index), as PyTorch's
 * reduction='mean'. logits / log_probs [N, C]; targets: N values in [0, C) or -100. */
CQ_API cq_status cq_cross_entropy(cq_tape *t, cq_var *logits, const int64_t *targets, cq_var **out,
                                  cq_err *err);
CQ_API cq_status cq_nll_loss(cq_tape *t, cq_var *log_probs, const int64_t *targets, cq_var **out,
                             cq_err *err);

/* Straight-through estimator: forward out = transform(x) (same shape, f32), backward passes
 * the gradient to x unchanged, as optimum-quanto's quantizer autograd Functions do. Apply it to
 * a weight var to run an op on the dequantized weight while the float weight gets the
 * gradient. transform writes all numel(in) elements of out; ctx is the caller's and must
 * outlive the call only. */
typedef cq_status (*cq_transform_fn)(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err);
CQ_API cq_status cq_ste(cq_tape *t, cq_var *x, cq_transform_fn transform, void *ctx, cq_var **out,
                        cq_err *err);

/* --- optimizers: PyTorch's update rules (single-tensor, CPU), f32 state ----------------- */
typedef enum cq_optim_kind { CQ_OPTIM_SGD = 0, CQ_OPTIM_ADAM, CQ_OPTIM_ADAMW, CQ_OPTIM_ADADELTA } cq_optim_kind;

/* Hyper-parameters are doubles because PyTorch's are Python floats: scalar expressions such
 * as 1 - beta2 are formed in double and rounded to f32 where they meet a tensor, as in torch. */
typedef struct cq_optim_opts {
    cq_optim_kind kind;
    double lr;
    double weight_decay;
    double momentum, dampening; bool nesterov;  /* SGD */
    double beta1, beta2, eps; bool amsgrad;     /* Adam, AdamW (eps also Adadelta) */
    double rho;                                 /* Adadelta */
    bool maximize;
} cq_optim_opts;
/* PyTorch 2.x defaults for kind: SGD lr 1e-3, momentum 0; Adam lr 1e-3, betas (0.9, 0.999),
 * eps 1e-8, weight_decay 0; AdamW the same with weight_decay 1e-2; Adadelta lr 1, rho 0.9,
 * eps 1e-6, weight_decay 0. */
CQ_API cq_optim_opts cq_optim_default_opts(cq_optim_kind kind);

typedef struct cq_optim cq_optim;
/* params: n long-lived vars (borrowed; they must outlive the optimizer). Vars whose grad is
 * NULL at a step are skipped, as PyTorch skips params whose .grad is None. */
CQ_API cq_status cq_optim_new(cq_optim **out, const cq_optim_opts *opts, cq_var *const *params, int n,
                              cq_err *err);
CQ_API void cq_optim_free(cq_optim *o);
CQ_API cq_status cq_optim_step(cq_optim *o, cq_err *err);
CQ_API void cq_optim_zero_grad(cq_optim *o);
CQ_API void cq_optim_set_lr(cq_optim *o, double lr);

/* ======================================================================================
 * nn: modules, quantized modules, quantize/calibrate/freeze/save/requantize
 * ====================================================================================== */

/* ---- modules: named trees of layers ---------------------------------------------------
 * A module is a node of a tree with a local name; its full name joins the local names from
 * the root with dots ("layer1.0.conv1"), the root's being "". Leaf modules hold their
 * parameters and buffers as long-lived f32 vars under PyTorch's names ("weight", "bias",
 * "running_mean", "running_var", "num_batches_tracked"), so a state dict key is
 * "<module>.<param>". A module is owned by its parent once added; freeing the root (or the
 * model) frees the tree. New modules are in training mode, as in PyTorch. Constructors
 * initialise like PyTorch's reset_parameters except that Linear/Conv2d weights and biases
 * start at zero: call cq_module_init_params for a random start, or load a state dict. */
typedef enum cq_module_kind {
    CQ_MODULE_CONTAINER = 0, /* children only; its forward is the model's code */
    CQ_MODULE_SEQUENTIAL,    /* forward runs the children in order */
    CQ_MODULE_LINEAR,        /* weight [out, in], bias [out] */
    CQ_MODULE_CONV2D,        /* weight [oc, ic/groups, kh, kw], bias [oc] */
    CQ_MODULE_LAYER_NORM,    /* weight, bias [normalized shape] (none when not affine) */
    CQ_MODULE_RMS_NORM,      /* weight [dim] */
    CQ_MODULE_BATCH_NORM2D,  /* weight, bias, running_mean, running_var [C], num_batches_tracked [] I64 */
    CQ_MODULE_EMBEDDING,     /* weight [num, dim]; forward with cq_module_forward_ids */
    CQ_MODULE_RELU,
    CQ_MODULE_FLATTEN,       /* flatten(x, 1, -1) */
    CQ_MODULE_IDENTITY       /* what a folded BatchNorm / ReLU becomes */
} cq_module_kind;

typedef struct cq_module cq_module;

CQ_API cq_status cq_module_new_container(cq_module **out, cq_err *err);
CQ_API cq_status cq_module_new_sequential(cq_module **out, cq_err *err);
CQ_API cq_status cq_module_new_linear(cq_module **out, int64_t in_features, int64_t out_features, bool bias,
                                      cq_err *err);
/* opts NULL = stride 1, padding 0, dilation 1, groups 1. */
CQ_API cq_status cq_module_new_conv2d(cq_module **out, int64_t in_channels, int64_t out_channels, int64_t kh,
                                      int64_t kw, const cq_conv2d_opts *opts, bool bias, cq_err *err);
/* Normalizes over the last n_dims dims of the given shape; weight 1, bias 0 when affine. */
CQ_API cq_status cq_module_new_layer_norm(cq_module **out, int n_dims, const int64_t *shape, float eps,
                                          bool affine, cq_err *err);
CQ_API cq_status cq_module_new_rms_norm(cq_module **out, int64_t dim, float eps, cq_err *err);
/* PyTorch defaults: eps 1e-5, momentum 0.1; running stats 0 and 1. */
CQ_API cq_status cq_module_new_batch_norm2d(cq_module **out, int64_t channels, float eps, float momentum,
                                            bool affine, cq_err *err);
/* weight ~ N(0, 1) from cq_module_init_params; zeros until then. */
CQ_API cq_status cq_module_new_embedding(cq_module **out, int64_t num_embeddings, int64_t dim, cq_err *err);
/* kind CQ_MODULE_RELU, CQ_MODULE_FLATTEN or CQ_MODULE_IDENTITY. */
CQ_API cq_status cq_module_new_simple(cq_module **out, cq_module_kind kind, cq_err *err);
/* Attaches child under parent with a local name (non-empty, no '.', unique among the
 * parent's children). Takes ownership of child (see Conventions). */
CQ_API cq_status cq_module_add(cq_module *parent, const char *local_name, cq_module *child, cq_err *err);
/* Frees a module that was never added (or a root) and its subtree. Accepts NULL. */
CQ_API void cq_module_free(cq_module *m);

CQ_API const char *cq_module_name(const cq_module *m);       /* full dotted name, "" for a root */
CQ_API const char *cq_module_local_name(const cq_module *m); /* "" for a root */
CQ_API cq_module_kind cq_module_get_kind(const cq_module *m);
CQ_API const char *cq_module_kind_name(cq_module_kind k);    /* PyTorch's class name: "Linear" ... */
CQ_API int cq_module_num_children(const cq_module *m);
CQ_API cq_module *cq_module_child(const cq_module *m, int i); /* NULL out of range */
/* By dotted name relative to m ("" is m itself); NULL if absent. */
CQ_API cq_module *cq_module_find(const cq_module *m, const char *dotted_name);
/* Depth-first pre-order walk, PyTorch's named_modules() order: for (x = root; x; x =
 * cq_module_next(root, x)). */
CQ_API cq_module *cq_module_next(const cq_module *root, const cq_module *m);
/* A parameter or buffer by local name ("weight", "running_mean"); NULL if the module has none
 * (a frozen quantized module has no float "weight"). */
CQ_API cq_var *cq_module_param(const cq_module *m, const char *local_name);
/* Training mode for m and its subtree (BatchNorm uses batch statistics when training). */
CQ_API void cq_module_set_training(cq_module *m, bool training);
CQ_API bool cq_module_is_training(const cq_module *m);
/* PyTorch-style random init of every Linear/Conv2d (weight and bias ~ U(-1/sqrt(fan_in),
 * +1/sqrt(fan_in))) and Embedding (N(0,1)) in the subtree, from a seed (not PyTorch's
 * generator, so the numbers differ from PyTorch's). */
CQ_API void cq_module_init_params(cq_module *m, uint64_t seed);

/* Runs one module: Linear, Conv2d, the norms, ReLU, Flatten, Identity, and Sequential (its
 * children in order). Quantized modules quantize as described under cq_quantize. Training
 * mode and grad mode are independent: BatchNorm follows the former, recording the latter. */
CQ_API cq_status cq_module_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err);
/* Embedding lookup. */
CQ_API cq_status cq_module_forward_ids(cq_tape *t, cq_module *m, const int64_t *ids, int ids_ndim,
                                       const int64_t *ids_shape, cq_var **out, cq_err *err);

/* ---- models: a module tree plus its forward function ----------------------------------- */
typedef struct cq_model cq_model;
typedef cq_status (*cq_model_forward_fn)(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err);

/* Takes ownership of root (see Conventions). forward NULL: the root must be a Sequential and runs as one. arch names the model
 * in messages ("LeNet"); copied. */
CQ_API cq_status cq_model_new(cq_model **out, const char *arch, cq_module *root, cq_model_forward_fn forward,
                              cq_err *err);
CQ_API void cq_model_free(cq_model *m); /* accepts NULL */
CQ_API cq_module *cq_model_root(const cq_model *m);
CQ_API const char *cq_model_arch(const cq_model *m);
CQ_API cq_status cq_model_forward(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err);
CQ_API void cq_model_set_training(cq_model *m, bool training);
/* The vars that take gradients (float weights and biases), in state-dict order: writes up to
 * cap of them and returns how many there are. Frozen quantized weights are not among them. */
CQ_API int cq_model_parameters(const cq_model *m, cq_var **params, int cap);
/* Number of weight elements of the Linear/Conv2d/Embedding modules (what bits-per-weight
 * divides by) and the bytes their stored weights take (data, scales and shifts when frozen). */
CQ_API int64_t cq_model_weight_count(const cq_model *m);
CQ_API size_t cq_model_weight_bytes(const cq_model *m);

/* ---- state dicts ------------------------------------------------------------------------
 * An ordered list of named tensors. Keys follow PyTorch ("fc1.weight") and, for quantized
 * modules, optimum-quanto (QUANTO-FORMAT.md 8.1): frozen weights as "weight._data" (+ "weight._scale") for
 * int8/float8 and "weight._data._data", "weight._scale", "weight._shift" for int2/int4, plus
 * "input_scale" and "output_scale" (F32, shape []) on every quantized module. */
typedef struct cq_state_dict cq_state_dict;

CQ_API cq_status cq_state_dict_new(cq_state_dict **out, cq_err *err);
CQ_API void cq_state_dict_free(cq_state_dict *sd); /* accepts NULL */
/* Takes ownership of t (see Conventions). Keys must be unique; a tensor already in sd is not
 * the caller's to give: it is refused (CQ_E_ARG) and left in sd as it is. */
CQ_API cq_status cq_state_dict_add(cq_state_dict *sd, const char *key, cq_tensor *t, cq_err *err);
CQ_API int64_t cq_state_dict_count(const cq_state_dict *sd);
CQ_API const char *cq_state_dict_key(const cq_state_dict *sd, int64_t i);       /* NULL out of range */
CQ_API const cq_tensor *cq_state_dict_tensor(const cq_state_dict *sd, int64_t i); /* NULL out of range */
CQ_API const cq_tensor *cq_state_dict_find(const cq_state_dict *sd, const char *key); /* NULL if absent */
/* Copies of every tensor in a safetensors file, in file order. */
CQ_API cq_status cq_state_dict_load_safetensors(const char *path, cq_state_dict **out, cq_err *err);
CQ_API cq_status cq_state_dict_save_safetensors(const cq_state_dict *sd, const char *path, cq_err *err);

/* The model's state: float params and buffers in module order, quantized modules as above. */
CQ_API cq_status cq_model_state_dict(const cq_model *m, cq_state_dict **out, cq_err *err);

typedef struct cq_load_opts {
    bool strict;          /* missing or unexpected keys are errors (default true) */
    bool convert_dtypes;  /* accept F16/BF16/F64 (and integer buffers) for F32 entries by
                             converting; default false: a dtype mismatch is an error */
} cq_load_opts;
CQ_API cq_load_opts cq_load_default_opts(void);
/* Loads by name. Errors (nothing is changed then): CQ_E_NOTFOUND "missing key 'fc1.bias'",
 * CQ_E_FORMAT "unexpected key 'fc3.weight'", CQ_E_SHAPE "fc1.weight: shape [50, 320] in the
 * model, [50, 321] in <source>", CQ_E_DTYPE likewise. Frozen quantized modules take their
 * quanto keys and rebuild the integer weight. */
CQ_API cq_status cq_model_load_state_dict(cq_model *m, const cq_state_dict *sd, const cq_load_opts *opts,
                                          const char *source_label, cq_err *err);
/* Strict load of a safetensors file (no dtype conversion). */
CQ_API cq_status cq_model_load_safetensors(cq_model *m, const char *path, cq_err *err);

/* ---- quantization: optimum-quanto's quantize / Calibration / freeze / requantize ---------
 * cq_quantize walks the tree in named_modules() order and quantizes each module whose full
 * name matches (Python's fnmatch.fnmatchcase, as quanto: '*', '?', '[seq]', '[!seq]', no
 * backslash escapes, an unclosed '[' literal) at least one include
 * pattern (all when include is NULL) and no exclude pattern. "a" does not match "a.b": use
 * "a*". Modules already quantized are left as they are. As in quanto:
 *  - Linear: weight quantized (per output channel; 2/4-bit grouped by the module rule,
 *    cq_default_group_size), input and output quantized when activations is set;
 *  - Conv2d: weight and output quantized, never its input (quanto's QConv2d asks for no
 *    input hook, QUANTO-FORMAT.md 9.4);
 *  - LayerNorm: output quantization only, and only when activations is set;
 *  - the bias is never quantized; activation scales are per tensor and start at 1.0.
 * Until cq_freeze the weight is re-quantized on every forward and the float weight receives
 * the gradient of the dequantized weight (straight-through), so training is QAT. With
 * activations, quantized values flow through a straight-through quantize-dequantize. */
typedef struct cq_quantize_opts {
    cq_qtype weights;               /* CQ_QNONE: leave weights in float */
    cq_qtype activations;           /* CQ_QNONE, CQ_QINT8 or a float8 qtype */
    cq_optimizer_kind optimizer;    /* CQ_OPT_DEFAULT: Absmax for 8-bit, Max below */
    const char *const *include;     /* NULL-terminated fnmatch patterns; NULL = every module */
    const char *const *exclude;     /* NULL-terminated; NULL = none */
} cq_quantize_opts;
CQ_API cq_quantize_opts cq_quantize_default_opts(void); /* qint8 weights, no activations, default optimizer */
CQ_API cq_status cq_quantize(cq_model *m, const cq_quantize_opts *opts, cq_err *err);

/* Calibration: between begin and end every forward updates the input and output scales of
 * quantized modules with activations: new = absmax(x) / qmax (127 or the float8 max); the
 * first observation replaces the initial 1.0, later ones give m*old + (1-m)*new. quanto uses
 * momentum 0.9 for input scales whatever it is given (QUANTO-FORMAT.md 6.3); cquanto uses `momentum` for
 * both (docs/WORKFLOW.md). Pass 0.9 (a double) to match quanto's arithmetic exactly. */
CQ_API cq_status cq_calibrate_begin(cq_model *m, double momentum, cq_err *err);
CQ_API void cq_calibrate_end(cq_model *m);

/* Replaces each quantized module's float weight by its integer weight (cq_qweight), which the
 * quantized kernels then use. The float weight var is freed: drop optimizers holding it first. */
CQ_API cq_status cq_freeze(cq_model *m, cq_err *err);

/* What quantization a module has (all CQ_QNONE / false for a float module). */
typedef struct cq_module_qinfo {
    bool quantized, frozen;
    cq_qtype weights, activations;
    cq_optimizer_kind optimizer;
    int64_t group_size;             /* 2/4-bit weights: the module rule's choice, 0 = none */
    float input_scale, output_scale;
    const cq_qweight *qweight;      /* the frozen weight, NULL until frozen */
} cq_module_qinfo;
CQ_API cq_module_qinfo cq_module_get_qinfo(const cq_module *m);

/* The quanto map of the model's quantized modules (insertion in module order). */
CQ_API cq_status cq_model_qmap(const cq_model *m, cq_qmap **out, cq_err *err);
/* Writes dir/model.safetensors (cq_model_state_dict) and dir/quanto_qmap.json, each
 * atomically; creates dir if needed and replaces those two files if present. */
CQ_API cq_status cq_model_save(const cq_model *m, const char *dir, cq_err *err);
/* quanto's requantize on a freshly built float model: quantizes the modules named in
 * dir/quanto_qmap.json with their qtypes, then loads dir/model.safetensors strictly (frozen
 * modules from their quanto keys, unfrozen ones from "weight"). Outputs are then bit-identical
 * to those of the model that was saved. */
CQ_API cq_status cq_model_requantize(cq_model *m, const char *dir, cq_err *err);

/* ---- Conv-BN(-ReLU) folding, as torch.ao.quantization.fuse_modules for inference ----------
 * Folds BatchNorm2d `bn` (eval statistics) into Conv2d `conv` with PyTorch's
 * fuse_conv_bn_weights arithmetic: w' = w * (gamma * rsqrt(var + eps)), b' = (b - mean) *
 * rsqrt(var + eps) * gamma + beta; the conv gains a bias if it had none. bn (and relu, a ReLU
 * module or NULL) become Identity; with relu the conv applies ReLU itself. Names are full
 * dotted names. Only float (not quantized) modules; the keys of the folded modules vanish
 * from the state dict while the conv keeps its own names. */
CQ_API cq_status cq_fold_conv_bn(cq_model *m, const char *conv, const char *bn, const char *relu, cq_err *err);

/* ---- training and evaluation on a data set --------------------------------------------------
 * The loops the demo, the examples and the tests share. Batches are samples of a cq_dataset
 * fed as [B, sample shape...] f32 (pixel / pixel_max). Each call uses its own tape. */
typedef enum cq_loss_kind {
    CQ_LOSS_NLL = 0,       /* the model returns log-probabilities (LeNet) */
    CQ_LOSS_CROSS_ENTROPY  /* the model returns logits (the MLP) */
} cq_loss_kind;

/* Top-1 accuracy over samples [start, start + count): eval mode, grad off. Writes the number
 * of correct predictions; predictions (count entries) may be NULL. */
CQ_API cq_status cq_model_evaluate(cq_model *m, const cq_dataset *ds, int64_t start, int64_t count, int64_t batch,
                                   int64_t *correct, uint8_t *predictions, cq_err *err);
/* Runs the model over samples [start, start + count) under cq_calibrate_begin/end (eval mode,
 * grad off), so every quantized module's activation scales are calibrated. */
CQ_API cq_status cq_model_calibrate(cq_model *m, const cq_dataset *ds, int64_t start, int64_t count, int64_t batch,
                                    double momentum, cq_err *err);

typedef struct cq_train_opts {
    int64_t batch;          /* samples per step (default 64) */
    cq_loss_kind loss;
    uint64_t shuffle_seed;  /* the sample order of the epoch; 0 keeps the data set's order */
    /* Called after each step with the steps done, the steps in the epoch and the step's
     * loss (NULL: silent). */
    void (*progress)(void *ctx, int64_t step, int64_t steps, float loss);
    void *progress_ctx;
} cq_train_opts;
CQ_API cq_train_opts cq_train_default_opts(void);
/* One epoch over samples [start, start + count) in training mode: forward, loss, backward,
 * optimizer step (quantized, unfrozen modules train through their straight-through weights:
 * QAT). The last partial batch is used as well. Writes the mean loss (may be NULL). */
CQ_API cq_status cq_model_train_epoch(cq_model *m, cq_optim *optim, const cq_dataset *ds, int64_t start, int64_t count,
                                      const cq_train_opts *opts, float *mean_loss, cq_err *err);

#ifdef __cplusplus
}
#endif
#endif /* CQUANTO_NN_H */
