/*
 * module.c - named module trees: construction, dotted names, parameter slots (and freeing
 * their quantization state), random init, the float Linear/Conv2d/LayerNorm computations
 * that quantized modules reuse, and cq_model (a tree plus its forward function). Running a
 * tree is module_forward.c, quantized behaviour qmodule.c, state dicts state.c: all built on
 * this file, which calls none of them. The numerical ops themselves are the nn layer's
 * (cq_linear, cq_conv2d, ...). A module never copies the ops' results: everything a forward
 * makes belongs to the tape.
 */
#include "nn/module_internal.h"

/* ---- construction ---------------------------------------------------------------------- */

static cq_module *module_alloc(cq_module_kind kind, cq_err *err) {
    cq_module *m = cq__calloc(1, sizeof *m, err, "a module");
    if (!m) return NULL;
    m->kind = kind;
    m->training = true; /* as a new torch.nn.Module */
    m->name = cq__strdup("", err);
    m->local = cq__strdup("", err);
    if (!m->name || !m->local) {
        cq_module_free(m);
        return NULL;
    }
    return m;
}

void cq__qstate_drop_frozen(cq__qstate *q) {
    cq_qweight_free(q->frozen);
    cq_var_free(q->frozen_dequant);
    cq_mm_weight_free(q->mm);
    q->frozen = NULL;
    q->frozen_dequant = NULL;
    q->mm = NULL;
    q->mm_unavailable = false;
}

void cq__qstate_free(cq__qstate *q) {
    if (!q) return;
    cq__qstate_drop_frozen(q);
    free(q);
}

void cq_module_free(cq_module *m) {
    if (!m) return;
    for (int i = 0; i < m->n_children; i++) cq_module_free(m->children[i]);
    free(m->children);
    cq__strmap_free(&m->by_local);
    for (int i = 0; i < m->n_params; i++) cq_var_free(m->params[i].var);
    cq__qstate_free(m->q);
    free(m->name);
    free(m->local);
    free(m);
}

cq__param *cq__module_slot(const cq_module *m, const char *local_name) {
    if (!m || !local_name) return NULL;
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, local_name)) return (cq__param *)&m->params[i];
    return NULL;
}

cq_status cq__module_add_param(cq_module *m, const char *name, int ndim, const int64_t *shape, bool is_buffer,
                               cq_dtype file_dtype, cq_err *err) {
    CQ_ASSERT(m->n_params < CQ__MAX_PARAMS);
    cq_var *v = NULL;
    cq_status s = cq_var_new(&v, ndim, shape, !is_buffer, err);
    if (s) return s;
    m->params[m->n_params++] = (cq__param){name, v, file_dtype, is_buffer};
    return CQ_OK;
}

static void fill(cq_var *v, float value) {
    float *d = cq_var_f32(v);
    for (int64_t i = 0; i < cq_var_numel(v); i++) d[i] = value;
}

cq_status cq_module_new_container(cq_module **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_container: out is NULL");
    *out = module_alloc(CQ_MODULE_CONTAINER, err);
    return *out ? CQ_OK : CQ_E_NOMEM;
}

cq_status cq_module_new_sequential(cq_module **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_sequential: out is NULL");
    *out = module_alloc(CQ_MODULE_SEQUENTIAL, err);
    return *out ? CQ_OK : CQ_E_NOMEM;
}

cq_status cq_module_new_simple(cq_module **out, cq_module_kind kind, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_simple: out is NULL");
    *out = NULL;
    if (kind != CQ_MODULE_RELU && kind != CQ_MODULE_FLATTEN && kind != CQ_MODULE_IDENTITY)
        return cq_err_set(err, CQ_E_ARG, "cq_module_new_simple: kind %d has parameters or children", (int)kind);
    *out = module_alloc(kind, err);
    return *out ? CQ_OK : CQ_E_NOMEM;
}

/* Finishes a constructor: on failure frees the half-built module. */
static cq_status finish(cq_module **out, cq_module *m, cq_status s) {
    if (s) {
        cq_module_free(m);
        *out = NULL;
        return s;
    }
    *out = m;
    return CQ_OK;
}

cq_status cq_module_new_linear(cq_module **out, int64_t in_features, int64_t out_features, bool bias, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_linear: out is NULL");
    *out = NULL;
    if (in_features <= 0 || out_features <= 0)
        return cq_err_set(err, CQ_E_ARG, "cq_module_new_linear: features must be positive (in %lld, out %lld)",
                          (long long)in_features, (long long)out_features);
    cq_module *m = module_alloc(CQ_MODULE_LINEAR, err);
    if (!m) return CQ_E_NOMEM;
    m->in_features = in_features;
    m->out_features = out_features;
    int64_t wshape[2] = {out_features, in_features};
    cq_status s = cq__module_add_param(m, "weight", 2, wshape, false, CQ_F32, err);
    if (!s && bias) s = cq__module_add_param(m, "bias", 1, &out_features, false, CQ_F32, err);
    return finish(out, m, s);
}

cq_status cq_module_new_conv2d(cq_module **out, int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                               const cq_conv2d_opts *opts, bool bias, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_conv2d: out is NULL");
    *out = NULL;
    cq_conv2d_opts o = opts ? *opts : cq_conv2d_default_opts();
    if (in_channels <= 0 || out_channels <= 0 || kh <= 0 || kw <= 0 || o.groups <= 0 ||
        in_channels % o.groups || out_channels % o.groups)
        return cq_err_set(err, CQ_E_ARG,
                          "cq_module_new_conv2d: channels %lld -> %lld, kernel %lldx%lld, groups %lld are invalid",
                          (long long)in_channels, (long long)out_channels, (long long)kh, (long long)kw,
                          (long long)o.groups);
    for (int i = 0; i < 2; i++)
        if (o.stride[i] <= 0 || o.dilation[i] <= 0 || o.padding[i] < 0)
            return cq_err_set(err, CQ_E_ARG, "cq_module_new_conv2d: stride and dilation must be positive, "
                                             "padding non-negative");
    cq_module *m = module_alloc(CQ_MODULE_CONV2D, err);
    if (!m) return CQ_E_NOMEM;
    m->in_features = in_channels;
    m->out_features = out_channels;
    m->kernel[0] = kh;
    m->kernel[1] = kw;
    m->conv = o;
    int64_t wshape[4] = {out_channels, in_channels / o.groups, kh, kw};
    cq_status s = cq__module_add_param(m, "weight", 4, wshape, false, CQ_F32, err);
    if (!s && bias) s = cq__module_add_param(m, "bias", 1, &out_channels, false, CQ_F32, err);
    return finish(out, m, s);
}

cq_status cq_module_new_layer_norm(cq_module **out, int n_dims, const int64_t *shape, float eps, bool affine,
                                   cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_layer_norm: out is NULL");
    *out = NULL;
    if (n_dims < 1 || n_dims > CQ_MAX_DIMS || !shape)
        return cq_err_set(err, CQ_E_ARG, "cq_module_new_layer_norm: normalized shape must have 1..%d dims",
                          CQ_MAX_DIMS);
    for (int i = 0; i < n_dims; i++)
        if (shape[i] <= 0) return cq_err_set(err, CQ_E_ARG, "cq_module_new_layer_norm: non-positive dimension");
    if (!(eps >= 0.0f)) return cq_err_set(err, CQ_E_ARG, "cq_module_new_layer_norm: eps must be >= 0");
    cq_module *m = module_alloc(CQ_MODULE_LAYER_NORM, err);
    if (!m) return CQ_E_NOMEM;
    m->norm_ndim = n_dims;
    memcpy(m->norm_shape, shape, (size_t)n_dims * sizeof *shape);
    m->eps = eps;
    cq_status s = CQ_OK;
    if (affine) {
        s = cq__module_add_param(m, "weight", n_dims, shape, false, CQ_F32, err);
        if (!s) fill(m->params[0].var, 1.0f);
        if (!s) s = cq__module_add_param(m, "bias", n_dims, shape, false, CQ_F32, err);
    }
    return finish(out, m, s);
}

cq_status cq_module_new_rms_norm(cq_module **out, int64_t dim, float eps, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_rms_norm: out is NULL");
    *out = NULL;
    if (dim <= 0 || !(eps >= 0.0f))
        return cq_err_set(err, CQ_E_ARG, "cq_module_new_rms_norm: dim must be positive and eps >= 0");
    cq_module *m = module_alloc(CQ_MODULE_RMS_NORM, err);
    if (!m) return CQ_E_NOMEM;
    m->norm_ndim = 1;
    m->norm_shape[0] = dim;
    m->eps = eps;
    cq_status s = cq__module_add_param(m, "weight", 1, &dim, false, CQ_F32, err);
    if (!s) fill(m->params[0].var, 1.0f);
    return finish(out, m, s);
}

cq_status cq_module_new_batch_norm2d(cq_module **out, int64_t channels, float eps, float momentum, bool affine,
                                     cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_batch_norm2d: out is NULL");
    *out = NULL;
    if (channels <= 0 || !(eps >= 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
        return cq_err_set(err, CQ_E_ARG, "cq_module_new_batch_norm2d: channels > 0, eps >= 0 and momentum in "
                                         "[0, 1] required");
    cq_module *m = module_alloc(CQ_MODULE_BATCH_NORM2D, err);
    if (!m) return CQ_E_NOMEM;
    m->in_features = m->out_features = channels;
    m->eps = eps;
    m->momentum = momentum;
    cq_status s = CQ_OK;
    if (affine) {
        s = cq__module_add_param(m, "weight", 1, &channels, false, CQ_F32, err);
        if (!s) fill(cq__module_slot(m, "weight")->var, 1.0f);
        if (!s) s = cq__module_add_param(m, "bias", 1, &channels, false, CQ_F32, err);
    }
    if (!s) s = cq__module_add_param(m, "running_mean", 1, &channels, true, CQ_F32, err);
    if (!s) s = cq__module_add_param(m, "running_var", 1, &channels, true, CQ_F32, err);
    if (!s) fill(cq__module_slot(m, "running_var")->var, 1.0f);
    if (!s) s = cq__module_add_param(m, "num_batches_tracked", 0, NULL, true, CQ_I64, err);
    return finish(out, m, s);
}

cq_status cq_module_new_embedding(cq_module **out, int64_t num_embeddings, int64_t dim, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_module_new_embedding: out is NULL");
    *out = NULL;
    if (num_embeddings <= 0 || dim <= 0)
        return cq_err_set(err, CQ_E_ARG, "cq_module_new_embedding: sizes must be positive");
    cq_module *m = module_alloc(CQ_MODULE_EMBEDDING, err);
    if (!m) return CQ_E_NOMEM;
    m->in_features = num_embeddings;
    m->out_features = dim;
    int64_t shape[2] = {num_embeddings, dim};
    return finish(out, m, cq__module_add_param(m, "weight", 2, shape, false, CQ_F32, err));
}

/* ---- the tree ------------------------------------------------------------------------------ */

/* Recomputes the full names of c and everything below it from c's parent's name. */
static cq_status update_names(cq_module *c, cq_err *err) {
    const cq_module *m = c->parent;
    size_t n = strlen(m->name) + strlen(c->local) + 2;
    char *name = cq__malloc(n, err, "a module name");
    if (!name) return CQ_E_NOMEM;
    snprintf(name, n, "%s%s%s", m->name, m->name[0] ? "." : "", c->local);
    free(c->name);
    c->name = name;
    for (int i = 0; i < c->n_children; i++) {
        cq_status s = update_names(c->children[i], err);
        if (s) return s;
    }
    return CQ_OK;
}

/* cq_module_add's checks; the caller frees child on failure unless it is not the caller's. */
static cq_status module_add(cq_module *parent, const char *local_name, cq_module *child, cq_err *err) {
    if (!parent || !local_name) return cq_err_set(err, CQ_E_ARG, "cq_module_add: NULL argument");
    if (!local_name[0] || strchr(local_name, '.'))
        return cq_err_set(err, CQ_E_ARG, "cq_module_add: module name '%s' must be non-empty and have no '.'",
                          local_name);
    if (cq__strmap_get(&parent->by_local, local_name) >= 0)
        return cq_err_set(err, CQ_E_ARG, "cq_module_add: '%s' already has a child named '%s'", parent->name,
                          local_name);
    if (parent->n_children == parent->cap_children) {
        int cap = parent->cap_children ? 2 * parent->cap_children : 4;
        cq_module **c = realloc(parent->children, (size_t)cap * sizeof *c);
        if (!c) return cq_err_set(err, CQ_E_NOMEM, "out of memory adding module '%s'", local_name);
        parent->children = c;
        parent->cap_children = cap;
    }
    char *local = cq__strdup(local_name, err);
    if (!local) return CQ_E_NOMEM;
    cq_status s = cq__strmap_put(&parent->by_local, local, parent->n_children, NULL, err);
    if (s) {
        free(local);
        return s;
    }
    free(child->local);
    child->local = local;
    child->index = parent->n_children;
    parent->children[parent->n_children++] = child;
    child->parent = parent;
    return update_names(child, err);
}

cq_status cq_module_add(cq_module *parent, const char *local_name, cq_module *child, cq_err *err) {
    if (!child) return cq_err_set(err, CQ_E_ARG, "cq_module_add: child is NULL");
    /* A module that already has an owner, or that contains parent, is not the caller's to give:
     * it is refused and left as it is. */
    if (child->parent || child->model || child == parent)
        return cq_err_set(err, CQ_E_ARG, "cq_module_add: '%s' already belongs to a tree",
                          local_name ? local_name : "");
    for (const cq_module *a = parent; a; a = a->parent)
        if (a == child)
            return cq_err_set(err, CQ_E_ARG, "cq_module_add: '%s' would contain itself", local_name ? local_name : "");
    cq_status s = module_add(parent, local_name, child, err);
    if (s && !child->parent) cq_module_free(child);
    return s;
}

const char *cq_module_name(const cq_module *m) { return m ? m->name : ""; }
const char *cq_module_local_name(const cq_module *m) { return m ? m->local : ""; }
cq_module_kind cq_module_get_kind(const cq_module *m) { return m ? m->kind : CQ_MODULE_CONTAINER; }
int cq_module_num_children(const cq_module *m) { return m ? m->n_children : 0; }
cq_module *cq_module_child(const cq_module *m, int i) {
    return m && i >= 0 && i < m->n_children ? m->children[i] : NULL;
}

const char *cq_module_kind_name(cq_module_kind k) {
    switch (k) {
    case CQ_MODULE_CONTAINER: return "Module";
    case CQ_MODULE_SEQUENTIAL: return "Sequential";
    case CQ_MODULE_LINEAR: return "Linear";
    case CQ_MODULE_CONV2D: return "Conv2d";
    case CQ_MODULE_LAYER_NORM: return "LayerNorm";
    case CQ_MODULE_RMS_NORM: return "RMSNorm";
    case CQ_MODULE_BATCH_NORM2D: return "BatchNorm2d";
    case CQ_MODULE_EMBEDDING: return "Embedding";
    case CQ_MODULE_RELU: return "ReLU";
    case CQ_MODULE_FLATTEN: return "Flatten";
    case CQ_MODULE_IDENTITY: return "Identity";
    }
    return "?";
}

cq_module *cq_module_find(const cq_module *m, const char *dotted_name) {
    if (!m || !dotted_name) return NULL;
    const char *p = dotted_name;
    const cq_module *cur = m;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char small[256], *part = n < sizeof small ? small : malloc(n + 1);
        if (!part) return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        int64_t i = cq__strmap_get(&cur->by_local, part);
        if (part != small) free(part);
        if (i < 0) return NULL;
        const cq_module *next = cur->children[i];
        cur = next;
        p += n;
        if (*p == '.') {
            p++;
            if (!*p) return NULL; /* a trailing dot names nothing */
        }
    }
    return (cq_module *)cur;
}

cq_module *cq_module_next(const cq_module *root, const cq_module *m) {
    if (!m) return NULL;
    if (m->n_children) return m->children[0];
    while (m && m != root) {
        const cq_module *p = m->parent;
        if (p && m->index + 1 < p->n_children) return p->children[m->index + 1];
        m = p;
    }
    return NULL;
}

cq_var *cq_module_param(const cq_module *m, const char *local_name) {
    cq__param *p = cq__module_slot(m, local_name);
    return p ? p->var : NULL;
}

void cq_module_set_training(cq_module *m, bool training) {
    for (cq_module *x = m; x; x = cq_module_next(m, x)) x->training = training;
}
bool cq_module_is_training(const cq_module *m) { return m && m->training; }

cq_model *cq__module_model(const cq_module *m) {
    while (m && m->parent) m = m->parent;
    return m ? m->model : NULL;
}

/* ---- random init ------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *state) { /* splitmix64 */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_uniform(uint64_t *state) { return (double)(rng_next(state) >> 11) * 0x1p-53; }

void cq_module_init_params(cq_module *root, uint64_t seed) {
    uint64_t state = seed;
    for (cq_module *m = root; m; m = cq_module_next(root, m)) {
        cq_var *w = cq__weight_var(m);
        if (!w) continue;
        if (m->kind == CQ_MODULE_LINEAR || m->kind == CQ_MODULE_CONV2D) {
            int64_t fan_in = cq_var_numel(w) / w->data->shape[0];
            double bound = 1.0 / sqrt((double)fan_in);
            float *d = cq_var_f32(w);
            for (int64_t i = 0; i < cq_var_numel(w); i++) d[i] = (float)((2.0 * rng_uniform(&state) - 1.0) * bound);
            cq_var *b = cq_module_param(m, "bias");
            if (b)
                for (int64_t i = 0; i < cq_var_numel(b); i++)
                    cq_var_f32(b)[i] = (float)((2.0 * rng_uniform(&state) - 1.0) * bound);
        } else if (m->kind == CQ_MODULE_EMBEDDING) {
            float *d = cq_var_f32(w);
            for (int64_t i = 0; i < cq_var_numel(w); i++) { /* Box-Muller */
                double u1 = 1.0 - rng_uniform(&state), u2 = rng_uniform(&state);
                d[i] = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
            }
        }
    }
}

/* ---- the float computations a quantized module shares (module_forward.c runs a tree) ------ */

cq_status cq__weighted_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var *w, cq_var **out, cq_err *err) {
    cq_var *b = cq_module_param(m, "bias");
    if (m->kind == CQ_MODULE_LINEAR) return cq_linear(t, x, w, b, out, err);
    cq_var *y = NULL;
    cq_status s = cq_conv2d(t, x, w, b, &m->conv, &y, err);
    if (!s && m->fused_relu) s = cq_relu(t, y, &y, err);
    *out = s ? NULL : y;
    return s;
}

cq_status cq__layer_norm_forward(cq_tape *t, cq_module *m, cq_var *x, cq_var **out, cq_err *err) {
    if (x->data->ndim < m->norm_ndim)
        return cq_err_set(err, CQ_E_SHAPE, "%s: input of rank %d for a LayerNorm over %d dims", m->name,
                          x->data->ndim, m->norm_ndim);
    for (int i = 0; i < m->norm_ndim; i++)
        if (x->data->shape[x->data->ndim - m->norm_ndim + i] != m->norm_shape[i])
            return cq_err_set(err, CQ_E_SHAPE, "%s: input's trailing dims do not match the normalized shape",
                              m->name);
    return cq_layer_norm(t, x, m->norm_ndim, cq_module_param(m, "weight"), cq_module_param(m, "bias"), m->eps, out,
                         err);
}

/* ---- models ------------------------------------------------------------------------------ */

cq_status cq_model_new(cq_model **out, const char *arch, cq_module *root, cq_model_forward_fn forward, cq_err *err) {
    if (!out) {
        cq_module_free(root);
        return cq_err_set(err, CQ_E_ARG, "cq_model_new: out is NULL");
    }
    *out = NULL;
    if (!root) return cq_err_set(err, CQ_E_ARG, "cq_model_new: root is NULL");
    if (root->parent || root->model) return cq_err_set(err, CQ_E_ARG, "cq_model_new: root already has an owner");
    if (!forward && root->kind != CQ_MODULE_SEQUENTIAL) {
        cq_module_free(root);
        return cq_err_set(err, CQ_E_ARG, "cq_model_new: a model without a forward function needs a Sequential root");
    }
    cq_model *m = cq__calloc(1, sizeof *m, err, "a model");
    char *a = m ? cq__strdup(arch ? arch : "model", err) : NULL;
    if (!a) {
        free(m);
        cq_module_free(root);
        return CQ_E_NOMEM;
    }
    m->arch = a;
    m->root = root;
    m->forward = forward;
    root->model = m;
    *out = m;
    return CQ_OK;
}

void cq_model_free(cq_model *m) {
    if (!m) return;
    cq_module_free(m->root);
    free(m->arch);
    free(m);
}

cq_module *cq_model_root(const cq_model *m) { return m ? m->root : NULL; }
const char *cq_model_arch(const cq_model *m) { return m ? m->arch : ""; }
void cq_model_set_training(cq_model *m, bool training) {
    if (m) cq_module_set_training(m->root, training);
}

int cq_model_parameters(const cq_model *m, cq_var **params, int cap) {
    int n = 0;
    if (!m) return 0;
    for (cq_module *x = m->root; x; x = cq_module_next(m->root, x))
        for (int i = 0; i < x->n_params; i++) {
            cq__param *p = &x->params[i];
            if (p->is_buffer || !p->var || !p->var->requires_grad) continue;
            if (params && n < cap) params[n] = p->var;
            n++;
        }
    return n;
}

static bool has_counted_weight(const cq_module *x) {
    return x->kind == CQ_MODULE_LINEAR || x->kind == CQ_MODULE_CONV2D || x->kind == CQ_MODULE_EMBEDDING;
}

int64_t cq_model_weight_count(const cq_model *m) {
    int64_t n = 0;
    if (!m) return 0;
    for (cq_module *x = m->root; x; x = cq_module_next(m->root, x)) {
        if (!has_counted_weight(x)) continue;
        if (x->q && x->q->frozen) n += cq_shape_numel(x->q->frozen->ndim, x->q->frozen->shape);
        else if (cq__weight_var(x)) n += cq_var_numel(cq__weight_var(x));
    }
    return n;
}

size_t cq_model_weight_bytes(const cq_model *m) {
    size_t n = 0;
    if (!m) return 0;
    for (cq_module *x = m->root; x; x = cq_module_next(m->root, x)) {
        if (!has_counted_weight(x)) continue;
        if (x->q && x->q->frozen) {
            const cq_qweight *w = x->q->frozen;
            n += cq_tensor_nbytes(w->data) + cq_tensor_nbytes(w->scale) + (w->shift ? cq_tensor_nbytes(w->shift) : 0);
        } else if (cq__weight_var(x)) {
            n += (size_t)cq_var_numel(cq__weight_var(x)) * sizeof(float);
        }
    }
    return n;
}
