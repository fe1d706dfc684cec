/*
 * state.c - state dicts: the ordered (name, tensor) list, a model's state under PyTorch and
 * optimum-quanto key names (QUANTO-FORMAT.md 8.1), strict loading by name with errors that name the key,
 * and the quanto checkpoint pair: save (model.safetensors + quanto_qmap.json) and requantize.
 * Loading validates everything before changing anything, so a failed load leaves the model
 * as it was. File formats themselves are the io layer's (cq_st_*, cq_qmap_*).
 */
#include "core/strmap.h"
#include "nn/module_internal.h"

#include <inttypes.h>

struct cq_state_dict {
    int64_t n, cap;
    char **keys;
    cq_tensor **tensors;
    cq__strmap by_key;    /* key -> index */
    cq__strmap by_tensor; /* the tensor's address (as text, after its key's bytes) -> index */
};

cq_status cq_state_dict_new(cq_state_dict **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_state_dict_new: out is NULL");
    *out = cq__calloc(1, sizeof **out, err, "a state dict");
    return *out ? CQ_OK : CQ_E_NOMEM;
}

void cq_state_dict_free(cq_state_dict *sd) {
    if (!sd) return;
    for (int64_t i = 0; i < sd->n; i++) {
        free(sd->keys[i]);
        cq_tensor_free(sd->tensors[i]);
    }
    free(sd->keys);
    free(sd->tensors);
    cq__strmap_free(&sd->by_key);
    cq__strmap_free(&sd->by_tensor);
    free(sd);
}

int64_t cq_state_dict_count(const cq_state_dict *sd) { return sd ? sd->n : 0; }
const char *cq_state_dict_key(const cq_state_dict *sd, int64_t i) {
    return sd && i >= 0 && i < sd->n ? sd->keys[i] : NULL;
}
const cq_tensor *cq_state_dict_tensor(const cq_state_dict *sd, int64_t i) {
    return sd && i >= 0 && i < sd->n ? sd->tensors[i] : NULL;
}

static int64_t find_index(const cq_state_dict *sd, const char *key) { return sd ? cq__strmap_get(&sd->by_key, key) : -1; }

const cq_tensor *cq_state_dict_find(const cq_state_dict *sd, const char *key) {
    int64_t i = key ? find_index(sd, key) : -1;
    return i < 0 ? NULL : sd->tensors[i];
}

cq_status cq_state_dict_add(cq_state_dict *sd, const char *key, cq_tensor *t, cq_err *err) {
    cq_status s = CQ_OK;
    char addr[32], *k = NULL;
    snprintf(addr, sizeof addr, "%p", (void *)t);
    size_t klen = key ? strlen(key) + 1 : 0;
    if (!sd || !key || !t) s = cq_err_set(err, CQ_E_ARG, "cq_state_dict_add: NULL argument");
    /* Already the dict's, so not the caller's to give: refused and left as it is (freeing it,
     * or holding it twice, would free it twice). */
    else if (cq__strmap_get(&sd->by_tensor, addr) >= 0)
        return cq_err_set(err, CQ_E_ARG, "cq_state_dict_add: the tensor for '%s' is already in the state dict as '%s'",
                          key, sd->keys[cq__strmap_get(&sd->by_tensor, addr)]);
    else if (find_index(sd, key) >= 0) s = cq_err_set(err, CQ_E_ARG, "state dict already has key '%s'", key);
    else if (!(k = cq__malloc(klen + strlen(addr) + 1, err, "a state dict key"))) s = CQ_E_NOMEM;
    if (k) memcpy(k, key, klen), memcpy(k + klen, addr, strlen(addr) + 1); /* "key\0addr\0": one lifetime */
    if (!s && sd->n == sd->cap) {
        int64_t cap = sd->cap ? 2 * sd->cap : 16;
        char **nk = realloc(sd->keys, (size_t)cap * sizeof *nk);
        if (nk) sd->keys = nk;
        cq_tensor **nt = nk ? realloc(sd->tensors, (size_t)cap * sizeof *nt) : NULL;
        if (nt) sd->tensors = nt;
        if (!nk || !nt) s = cq_err_set(err, CQ_E_NOMEM, "out of memory growing a state dict");
        else sd->cap = cap;
    }
    /* Room in both maps first, so that neither put can fail and leave the other holding k. */
    if (!s) s = cq__strmap_reserve(&sd->by_key, (size_t)sd->n + 1, err);
    if (!s) s = cq__strmap_reserve(&sd->by_tensor, (size_t)sd->n + 1, err);
    if (!s) s = cq__strmap_put(&sd->by_key, k, sd->n, NULL, err);
    if (!s) s = cq__strmap_put(&sd->by_tensor, k + klen, sd->n, NULL, err);
    if (s) {
        free(k);
        cq_tensor_free(t);
        return s;
    }
    sd->keys[sd->n] = k;
    sd->tensors[sd->n++] = t;
    return CQ_OK;
}

/* Adds a copy of src converted to dtype under "<prefix><name>". */
static cq_status add_copy(cq_state_dict *sd, const char *prefix, const char *name, const cq_tensor *src,
                          cq_dtype dtype, cq_err *err) {
    char key[512];
    if ((size_t)snprintf(key, sizeof key, "%s%s", prefix, name) >= sizeof key)
        return cq_err_set(err, CQ_E_ARG, "state dict key '%s%s' is too long", prefix, name);
    cq_tensor *t = NULL;
    cq_status s = cq_tensor_new(&t, dtype, src->ndim, src->shape, err);
    if (!s) s = cq_convert(src->data, src->dtype, t->data, dtype, cq_tensor_numel(src), err);
    if (s) {
        cq_tensor_free(t);
        return s;
    }
    return cq_state_dict_add(sd, key, t, err);
}

static cq_status add_scalar(cq_state_dict *sd, const char *prefix, const char *name, float value, cq_err *err) {
    cq_tensor view = {.dtype = CQ_F32, .ndim = 0, .data = &value};
    return add_copy(sd, prefix, name, &view, CQ_F32, err);
}

static void module_prefix(const cq_module *m, char *buf, size_t n) {
    snprintf(buf, n, "%s%s", m->name, m->name[0] ? "." : "");
}

cq_status cq_model_state_dict(const cq_model *model, cq_state_dict **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_model_state_dict: out is NULL");
    *out = NULL;
    if (!model) return cq_err_set(err, CQ_E_ARG, "cq_model_state_dict: model is NULL");
    cq_state_dict *sd = NULL;
    cq_status s = cq_state_dict_new(&sd, err);
    for (cq_module *m = model->root; !s && m; m = cq_module_next(model->root, m)) {
        char prefix[400];
        module_prefix(m, prefix, sizeof prefix);
        for (int i = 0; !s && i < m->n_params; i++) {
            const cq__param *p = &m->params[i];
            if (p->var) {
                s = add_copy(sd, prefix, p->name, p->var->data, p->file_dtype, err);
            } else if (!strcmp(p->name, "weight") && m->q && m->q->frozen) {
                /* QTensor.save_to_state_dict: inner tensors flattened under "weight." */
                const cq_qweight *w = m->q->frozen;
                char wprefix[416];
                snprintf(wprefix, sizeof wprefix, "%sweight.", prefix);
                s = add_copy(sd, wprefix, cq_qweight_data_key(w->qtype), w->data, w->data->dtype, err);
                if (!s) s = add_copy(sd, wprefix, "_scale", w->scale, w->scale->dtype, err);
                if (!s && w->shift) s = add_copy(sd, wprefix, "_shift", w->shift, w->shift->dtype, err);
            }
        }
        if (!s && m->q) s = add_scalar(sd, prefix, "input_scale", m->q->input_scale, err);
        if (!s && m->q) s = add_scalar(sd, prefix, "output_scale", m->q->output_scale, err);
    }
    if (s) {
        cq_state_dict_free(sd);
        return s;
    }
    *out = sd;
    return CQ_OK;
}

/* ---- loading ---------------------------------------------------------------------------------- */

cq_load_opts cq_load_default_opts(void) { return (cq_load_opts){.strict = true, .convert_dtypes = false}; }

typedef enum load_kind { LOAD_FLOAT, LOAD_QWEIGHT, LOAD_INPUT_SCALE, LOAD_OUTPUT_SCALE } load_kind;

typedef struct load_item {
    load_kind kind;
    cq_module *m;
    cq__param *slot;
    const cq_tensor *src;
    cq_qweight *qw; /* LOAD_QWEIGHT, built during validation */
} load_item;

typedef struct loader {
    const cq_state_dict *sd;
    const cq_load_opts *opts;
    const char *label;
    bool *used;
    load_item *items;
    int64_t n, cap;
} loader;

static cq_status push(loader *L, load_item it, cq_err *err) {
    if (L->n == L->cap) {
        int64_t cap = L->cap ? 2 * L->cap : 32;
        load_item *p = realloc(L->items, (size_t)cap * sizeof *p);
        if (!p) {
            cq_qweight_free(it.qw);
            return cq_err_set(err, CQ_E_NOMEM, "out of memory loading a state dict");
        }
        L->items = p;
        L->cap = cap;
    }
    L->items[L->n++] = it;
    return CQ_OK;
}

/* The tensor under key, marked used; NULL if absent. */
static const cq_tensor *take(loader *L, const char *key) {
    int64_t i = find_index(L->sd, key);
    if (i < 0) return NULL;
    L->used[i] = true;
    return L->sd->tensors[i];
}

static cq_status check_float(loader *L, const char *key, const cq_tensor *src, int ndim, const int64_t *shape,
                             cq_dtype want, cq_err *err) {
    char a[128], b[128];
    bool same = src->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = src->shape[i] == shape[i];
    if (!same)
        return cq_err_set(err, CQ_E_SHAPE, "%s: shape %s in the model, %s in %s", key,
                          cq_shape_str(ndim, shape, a, sizeof a), cq_shape_str(src->ndim, src->shape, b, sizeof b),
                          L->label);
    bool convertible = src->dtype != CQ_BOOL && cq_dtype_size(src->dtype) > 0 &&
                       (cq_dtype_is_float(src->dtype) || !cq_dtype_is_float(want));
    if (src->dtype != want && !(L->opts->convert_dtypes && convertible))
        return cq_err_set(err, CQ_E_DTYPE, "%s: dtype %s in the model, %s in %s", key, cq_dtype_name(want),
                          cq_dtype_name(src->dtype), L->label);
    return CQ_OK;
}

static cq_status plan_scale(loader *L, cq_module *m, const char *prefix, const char *name, load_kind kind,
                            cq_err *err) {
    char key[512];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    const cq_tensor *src = take(L, key);
    if (!src) return L->opts->strict ? cq_err_set(err, CQ_E_NOTFOUND, "missing key '%s' in %s", key, L->label) : CQ_OK;
    cq_status s = check_float(L, key, src, 0, NULL, CQ_F32, err);
    return s ? s : push(L, (load_item){kind, m, NULL, src, NULL}, err);
}

/* A quantized module's weight from quanto's flattened keys (QUANTO-FORMAT.md 5.5). */
static cq_status plan_qweight(loader *L, cq_module *m, const char *prefix, const int64_t *shape, int ndim,
                              bool *found, cq_err *err) {
    cq__qstate *q = m->q;
    char dkey[512], skey[512], hkey[512];
    snprintf(dkey, sizeof dkey, "%sweight.%s", prefix, cq_qweight_data_key(q->weights));
    snprintf(skey, sizeof skey, "%sweight._scale", prefix);
    snprintf(hkey, sizeof hkey, "%sweight._shift", prefix);
    const cq_tensor *data = take(L, dkey);
    *found = data != NULL;
    if (!data) return CQ_OK;
    const cq_tensor *scale = take(L, skey);
    bool affine = cq_qtype_family_of(q->weights) == CQ_QFAMILY_AFFINE;
    const cq_tensor *shift = affine ? take(L, hkey) : NULL;
    if (!scale) return cq_err_set(err, CQ_E_NOTFOUND, "missing key '%s' in %s", skey, L->label);
    if (affine && !shift) return cq_err_set(err, CQ_E_NOTFOUND, "missing key '%s' in %s", hkey, L->label);
    if (scale->dtype != CQ_F32 && !L->opts->convert_dtypes)
        return cq_err_set(err, CQ_E_DTYPE, "%s: dtype F32 in the model, %s in %s", skey, cq_dtype_name(scale->dtype),
                          L->label);
    cq_qweight *qw = NULL;
    cq_status s = cq_qweight_from_tensors(q->weights, ndim, shape, q->group_size, data, scale, shift, true, &qw, err);
    if (s) return cq_err_prefix(err, s, "%sweight in %s: ", prefix, L->label);
    return push(L, (load_item){LOAD_QWEIGHT, m, cq__module_slot(m, "weight"), NULL, qw}, err);
}

static cq_status plan_module(loader *L, cq_module *m, cq_err *err) {
    char prefix[400];
    module_prefix(m, prefix, sizeof prefix);
    for (int i = 0; i < m->n_params; i++) {
        cq__param *p = &m->params[i];
        char key[512];
        snprintf(key, sizeof key, "%s%s", prefix, p->name);
        int ndim = 0;
        const int64_t *shape = NULL;
        if (p->var) {
            ndim = p->var->data->ndim;
            shape = p->var->data->shape;
        } else if (m->q && m->q->frozen && !strcmp(p->name, "weight")) {
            ndim = m->q->frozen->ndim;
            shape = m->q->frozen->shape;
        } else {
            continue;
        }
        const cq_tensor *src = take(L, key);
        bool quantized_weight = !strcmp(p->name, "weight") && m->q && m->q->weights != CQ_QNONE;
        if (!src && quantized_weight) {
            bool found;
            cq_status s = plan_qweight(L, m, prefix, shape, ndim, &found, err);
            if (s || found) {
                if (s) return s;
                continue;
            }
        }
        if (!src) {
            if (!L->opts->strict) continue;
            if (quantized_weight)
                return cq_err_set(err, CQ_E_NOTFOUND, "missing key '%s' (or its quantized form '%s.%s') in %s", key,
                                  key, cq_qweight_data_key(m->q->weights), L->label);
            return cq_err_set(err, CQ_E_NOTFOUND, "missing key '%s' in %s", key, L->label);
        }
        cq_status s = check_float(L, key, src, ndim, shape, p->file_dtype, err);
        if (!s) s = push(L, (load_item){LOAD_FLOAT, m, p, src, NULL}, err);
        if (s) return s;
    }
    if (m->q) {
        cq_status s = plan_scale(L, m, prefix, "input_scale", LOAD_INPUT_SCALE, err);
        if (!s) s = plan_scale(L, m, prefix, "output_scale", LOAD_OUTPUT_SCALE, err);
        if (s) return s;
    }
    return CQ_OK;
}

static float read_scalar(const cq_tensor *t) { return cq_load_f32(t->data, t->dtype, 0); }

static cq_status apply(load_item *it, cq_err *err) {
    cq_module *m = it->m;
    switch (it->kind) {
    case LOAD_FLOAT: {
        cq__param *p = it->slot;
        if (!p->var) { /* a frozen weight given back as float: the module is unfrozen again */
            cq_qweight *qw = m->q->frozen;
            cq_status s = cq_var_new(&p->var, qw->ndim, qw->shape, true, err);
            if (s) return s;
            cq__qstate_drop_frozen(m->q);
        }
        return cq_convert(it->src->data, it->src->dtype, p->var->data->data, CQ_F32, cq_tensor_numel(it->src), err);
    }
    case LOAD_QWEIGHT: {
        cq_qweight *qw = it->qw;
        it->qw = NULL;
        return cq__qmodule_set_frozen(m, qw, err);
    }
    case LOAD_INPUT_SCALE: m->q->input_scale = read_scalar(it->src); return CQ_OK;
    case LOAD_OUTPUT_SCALE: m->q->output_scale = read_scalar(it->src); return CQ_OK;
    }
    return CQ_OK;
}

cq_status cq_model_load_state_dict(cq_model *model, const cq_state_dict *sd, const cq_load_opts *opts,
                                   const char *source_label, cq_err *err) {
    if (!model || !sd) return cq_err_set(err, CQ_E_ARG, "cq_model_load_state_dict: NULL argument");
    cq_load_opts defaults = cq_load_default_opts();
    loader L = {sd, opts ? opts : &defaults, source_label ? source_label : "the state dict", NULL, NULL, 0, 0};
    L.used = cq__calloc((size_t)sd->n + 1, sizeof *L.used, err, "a state dict load");
    if (!L.used) return CQ_E_NOMEM;
    cq_status s = CQ_OK;
    for (cq_module *m = model->root; !s && m; m = cq_module_next(model->root, m)) s = plan_module(&L, m, err);
    for (int64_t i = 0; !s && L.opts->strict && i < sd->n; i++)
        if (!L.used[i]) s = cq_err_set(err, CQ_E_FORMAT, "unexpected key '%s' in %s (the %s model has no such "
                                       "parameter)", sd->keys[i], L.label, model->arch);
    /* Only allocation can fail from here on, and only when unfreezing a weight. */
    for (int64_t i = 0; !s && i < L.n; i++) s = apply(&L.items[i], err);
    for (int64_t i = 0; i < L.n; i++) cq_qweight_free(L.items[i].qw);
    free(L.items);
    free(L.used);
    return s;
}

/* A state dict of views over an open safetensors file (valid until it is closed). */
static cq_status views_of(const cq_st_file *f, cq_state_dict **out, cq_err *err) {
    cq_state_dict *sd = NULL;
    cq_status s = cq_state_dict_new(&sd, err);
    for (int64_t i = 0; !s && i < cq_st_count(f); i++) {
        const cq_tensor *t = cq_st_tensor(f, i);
        cq_tensor *v = NULL;
        s = cq_tensor_view(&v, t->dtype, t->ndim, t->shape, t->data, err);
        if (!s) s = cq_state_dict_add(sd, cq_st_name(f, i), v, err);
    }
    if (s) {
        cq_state_dict_free(sd);
        return s;
    }
    *out = sd;
    return CQ_OK;
}

static cq_status load_file(cq_model *model, const char *path, const cq_load_opts *opts, cq_err *err) {
    cq_st_file *f = NULL;
    cq_state_dict *sd = NULL;
    cq_status s = cq_st_open(path, &f, err);
    if (!s) s = views_of(f, &sd, err);
    if (!s) s = cq_model_load_state_dict(model, sd, opts, path, err);
    cq_state_dict_free(sd);
    cq_st_close(f);
    return s;
}

cq_status cq_model_load_safetensors(cq_model *model, const char *path, cq_err *err) {
    if (!model || !path) return cq_err_set(err, CQ_E_ARG, "cq_model_load_safetensors: NULL argument");
    cq_load_opts opts = cq_load_default_opts();
    return load_file(model, path, &opts, err);
}

cq_status cq_state_dict_load_safetensors(const char *path, cq_state_dict **out, cq_err *err) {
    if (!out || !path) return cq_err_set(err, CQ_E_ARG, "cq_state_dict_load_safetensors: NULL argument");
    *out = NULL;
    cq_st_file *f = NULL;
    cq_state_dict *sd = NULL;
    cq_status s = cq_st_open(path, &f, err);
    if (!s) s = cq_state_dict_new(&sd, err);
    for (int64_t i = 0; !s && i < cq_st_count(f); i++) {
        cq_tensor *t = NULL;
        s = cq_tensor_clone(&t, cq_st_tensor(f, i), err);
        if (!s) s = cq_state_dict_add(sd, cq_st_name(f, i), t, err);
    }
    cq_st_close(f);
    if (s) {
        cq_state_dict_free(sd);
        return s;
    }
    *out = sd;
    return CQ_OK;
}

cq_status cq_state_dict_save_safetensors(const cq_state_dict *sd, const char *path, cq_err *err) {
    if (!sd || !path) return cq_err_set(err, CQ_E_ARG, "cq_state_dict_save_safetensors: NULL argument");
    return cq_st_save(path, sd->n, (const char *const *)sd->keys, (const cq_tensor *const *)sd->tensors, NULL, err);
}

/* ---- the quanto checkpoint pair -------------------------------------------------------------------- */

#define MODEL_FILE "model.safetensors"
#define QMAP_FILE "quanto_qmap.json"

cq_status cq_model_save(const cq_model *model, const char *dir, cq_err *err) {
    if (!model || !dir) return cq_err_set(err, CQ_E_ARG, "cq_model_save: NULL argument");
    char *st_path = cq_path_join(dir, MODEL_FILE), *qmap_path = cq_path_join(dir, QMAP_FILE);
    cq_state_dict *sd = NULL;
    cq_qmap *map = NULL;
    cq_status s = st_path && qmap_path ? CQ_OK : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (!s) s = cq_fs_mkdir_p(dir, err);
    if (!s) s = cq_model_state_dict(model, &sd, err);
    if (!s) s = cq_model_qmap(model, &map, err);
    if (!s) s = cq_state_dict_save_safetensors(sd, st_path, err);
    if (!s) s = cq_qmap_save(map, qmap_path, err);
    cq_qmap_free(map);
    cq_state_dict_free(sd);
    free(st_path);
    free(qmap_path);
    return s;
}

cq_status cq_model_requantize(cq_model *model, const char *dir, cq_err *err) {
    if (!model || !dir) return cq_err_set(err, CQ_E_ARG, "cq_model_requantize: NULL argument");
    char *st_path = cq_path_join(dir, MODEL_FILE), *qmap_path = cq_path_join(dir, QMAP_FILE);
    cq_qmap *map = NULL;
    cq_status s = st_path && qmap_path ? CQ_OK : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    if (!s) s = cq_qmap_load(qmap_path, &map, err);
    /* Check every entry before quantizing anything. */
    for (int64_t i = 0; !s && i < cq_qmap_count(map); i++) {
        const char *name = cq_qmap_module(map, i);
        cq_module *m = cq_module_find(model->root, name);
        if (!m) {
            s = cq_err_set(err, CQ_E_NOTFOUND, "%s names module '%s', which the %s model does not have", qmap_path,
                           name, model->arch);
        } else if (m->q) {
            s = cq_err_set(err, CQ_E_ARG, "cq_model_requantize: module '%s' is already quantized (requantize "
                           "needs a float model)", name);
        } else if ((s = cq__qmodule_check(m, cq_qmap_weights(map, i), cq_qmap_activations(map, i), CQ_OPT_DEFAULT,
                                          err))) {
            cq_err_prefix(err, s, "%s: ", qmap_path);
        }
    }
    for (int64_t i = 0; !s && i < cq_qmap_count(map); i++) {
        cq_module *m = cq_module_find(model->root, cq_qmap_module(map, i));
        s = cq__qmodule_quantize(m, cq_qmap_weights(map, i), cq_qmap_activations(map, i), CQ_OPT_DEFAULT, err);
        if (s) cq_err_prefix(err, s, "%s: ", qmap_path);
    }
    if (!s) {
        cq_load_opts opts = cq_load_default_opts();
        s = load_file(model, st_path, &opts, err);
    }
    cq_qmap_free(map);
    free(st_path);
    free(qmap_path);
    return s;
}
