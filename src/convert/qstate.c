/*
 * qstate.c - finds optimum-quanto module state in a checkpoint (the modules its
 * quanto_qmap.json names, with their weight._data[._data] / _scale / _shift / input_scale /
 * output_scale tensors) and works out each quantized weight's float shape.
 *
 * The shape is only implicit in quanto's files: 8-bit data keeps it, per-channel int2/int4 data
 * keeps all but the first dim (the scale gives that), but grouped int2/int4 data is stored as
 * (groups, group_size) and any (out, in) with out*in = groups*group_size fits. It is resolved,
 * in order, from: a reference checkpoint holding "<m>.weight" (--like, or the float model of a
 * report); the "cquanto_weight_shapes" metadata cquanto writes; the only interpretation that
 * quanto's group-size rule allows, narrowed by the module's bias and config.json's dimensions,
 * and taken only where it is known to be 2-D (see interpretations). Otherwise the caller is told
 * to give a reference: a wrong shape is never guessed.
 */
#include "convert_internal.h"

#include <inttypes.h>
#include <jansson.h>

static const char *const STATE_SUFFIXES[] = {"weight._data._data", "weight._data", "weight._scale", "weight._shift",
                                             "input_scale", "output_scale"};

void cq__qmodules_free(cq__qmodules *q) {
    if (!q) return;
    for (int64_t i = 0; i < q->n; i++) free(q->mods[i].module);
    free(q->mods);
    free(q->owner);
    cq_qmap_free(q->qmap);
    memset(q, 0, sizeof *q);
}

static int64_t find_tensor(const cq_ckpt *c, const char *prefix, const char *suffix) {
    return cq__ckpt_find_member(c, prefix, strlen(prefix), suffix);
}

/* ---- shape resolution --------------------------------------------------------------------------- */

/* The per-module shapes cquanto records in its own files: one JSON object per shard, parsed once
 * (NULL where a shard has none). */
static json_t **load_shape_records(const cq_ckpt *c) {
    int n = cq_ckpt_shard_count(c);
    json_t **recs = calloc((size_t)(n ? n : 1), sizeof *recs);
    for (int s = 0; recs && s < n; s++) {
        const char *text = cq__src_meta_string(cq__ckpt_source(c, s), CQ__SHAPES_METADATA_KEY);
        if (text) recs[s] = json_loads(text, 0, NULL);
    }
    return recs;
}

static void free_shape_records(const cq_ckpt *c, json_t **recs) {
    for (int s = 0; recs && s < cq_ckpt_shard_count(c); s++) json_decref(recs[s]);
    free(recs);
}

static bool shape_from_metadata(const cq_ckpt *c, json_t *const *recs, const char *module, int *ndim, int64_t *shape) {
    for (int s = 0; recs && s < cq_ckpt_shard_count(c); s++) {
        json_t *arr = recs[s] ? json_object_get(recs[s], module) : NULL;
        bool ok = json_is_array(arr) && json_array_size(arr) >= 1 && json_array_size(arr) <= CQ_MAX_DIMS;
        for (size_t i = 0; ok && i < json_array_size(arr); i++) {
            json_t *v = json_array_get(arr, i);
            ok = json_is_integer(v) && json_integer_value(v) > 0;
            if (ok) shape[i] = json_integer_value(v);
        }
        if (ok) *ndim = (int)json_array_size(arr);
        if (ok) return true;
    }
    return false;
}

/* Integer values of config.json that name model widths (hidden_size, intermediate_size ...). */
static bool is_config_dim(const cq_hfconfig *cfg, int64_t v) {
    static const char *const keys[] = {"hidden_size", "intermediate_size", "d_model", "n_embd", "ffn_dim", "d_ff",
                                       "n_inner", "encoder_ffn_dim", "decoder_ffn_dim", "vocab_size", "dim",
                                       "hidden_dim", "word_embed_proj_dim", "d_kv", "head_dim"};
    if (!cfg) return false;
    for (size_t i = 0; i < CQ_ARRAY_LEN(keys); i++) {
        int64_t x;
        if (cq_hfconfig_int(cfg, keys[i], &x, NULL) == CQ_OK && x == v) return true;
    }
    /* Attention widths: heads * head size. */
    int64_t heads, kv, hidden, head_dim = 0;
    if (cq_hfconfig_int(cfg, "num_attention_heads", &heads, NULL) == CQ_OK && heads > 0 &&
        cq_hfconfig_int(cfg, "hidden_size", &hidden, NULL) == CQ_OK) {
        if (cq_hfconfig_int(cfg, "head_dim", &head_dim, NULL) != CQ_OK || head_dim <= 0) head_dim = hidden / heads;
        if (heads * head_dim == v) return true;
        if (cq_hfconfig_int(cfg, "num_key_value_heads", &kv, NULL) == CQ_OK && kv * head_dim == v) return true;
    }
    return false;
}

/* Codes of rows x cols (scale rows x 1) came from a weight of which shape? Per channel means
 * (rows, cols); grouped means (out, in) with in > 128, quanto's rule picking cols for it, and
 * out * in = rows * cols. Returns how many interpretations survive (the first in *shape).
 * *proven says whether that first one is also known to be 2-D: grouped codes are the same bytes
 * for a Linear (out, in) and a Conv2d (out, c, kh, kw) with c*kh*kw = in (quanto groups both
 * the same way), so only per-channel codes (a per-channel Conv2d keeps its dims in the data) or
 * a width that config.json names prove a Linear. */
static int interpretations(int64_t rows, int64_t cols, int64_t bias_out, const cq_hfconfig *cfg, int64_t out[2],
                           bool *proven) {
    /* With config.json's widths first (they settle most cases), then without. */
    for (int pass = cfg ? 0 : 1; pass < 2; pass++) {
        int n = 0;
        for (int64_t k = 1; k <= rows; k++) {
            if (rows % k) continue;
            int64_t shp[2] = {rows / k, cols * k};
            bool ok = cq_default_group_size(2, shp) == (k == 1 ? 0 : cols);
            if (ok && bias_out > 0) ok = shp[0] == bias_out;
            if (ok && pass == 0) ok = is_config_dim(cfg, shp[1]);
            if (!ok) continue;
            if (!n) out[0] = shp[0], out[1] = shp[1], *proven = pass == 0 || k == 1;
            n++;
        }
        if (n) return n;
    }
    *proven = false;
    return 0;
}

bool cq__shape_needs_record(const cq_plan_entry *e, int64_t bias_out) {
    if (e->action != CQ_PLAN_QUANTIZE || cq_qtype_family_of(e->weights) != CQ_QFAMILY_AFFINE) return false;
    if (e->ndim != 2) return e->group_size > 0; /* a per-channel Conv2d keeps its dims in the data */
    int64_t rows, cols, shape[2];
    bool proven;
    cq__plan_code_layout(e, &rows, &cols);
    return interpretations(rows, cols, bias_out, NULL, shape, &proven) != 1 || !proven || shape[0] != e->shape[0] ||
           shape[1] != e->shape[1];
}

static cq_status resolve_shape(const cq_ckpt *c, const cq_ckpt *like, const cq_hfconfig *cfg, json_t *const *recs,
                               cq__qmodule *m, cq_err *err) {
    const cq_tensor *data = cq_ckpt_tensor(c, m->data_idx), *scale = cq_ckpt_tensor(c, m->scale_idx);
    const cq_qtype_info *qi = cq_qtype_get(m->weights);
    char wname[2048];
    snprintf(wname, sizeof wname, "%sweight", m->prefix);
    /* A reference wins: it is the model the weights came from. */
    int64_t li = like ? cq_ckpt_find(like, wname) : -1;
    if (li >= 0) {
        const cq_tensor *ref = cq_ckpt_tensor(like, li);
        m->ndim = ref->ndim;
        memcpy(m->shape, ref->shape, sizeof m->shape);
        return CQ_OK;
    }
    if (!qi->packed) {
        m->ndim = data->ndim;
        memcpy(m->shape, data->shape, sizeof m->shape);
        return CQ_OK;
    }
    if (shape_from_metadata(c, recs, m->module, &m->ndim, m->shape)) return CQ_OK;
    if (scale->ndim == 0 || data->ndim < 2)
        return cq_err_set(err, CQ_E_FORMAT, "%s: weight._scale %dd / weight._data._data %dd is not quanto's layout",
                          m->module, scale->ndim, data->ndim);
    int64_t rows = scale->shape[0];
    if (data->ndim != 2 || scale->ndim != 2) {
        /* Per-channel Conv2d: scale (O,1,1,1), data (ceil(O/vpi), in, kh, kw). */
        m->ndim = data->ndim;
        memcpy(m->shape, data->shape, sizeof m->shape);
        m->shape[0] = rows;
        return CQ_OK;
    }
    int64_t bias_out = -1;
    int64_t bi = find_tensor(c, m->prefix, "bias");
    if (bi >= 0 && cq_ckpt_tensor(c, bi)->ndim == 1) bias_out = cq_ckpt_tensor(c, bi)->shape[0];
    int64_t shape[2];
    bool proven;
    int n = interpretations(rows, data->shape[1], bias_out, cfg, shape, &proven);
    if (n == 1 && proven) {
        m->ndim = 2;
        m->shape[0] = shape[0];
        m->shape[1] = shape[1];
        return CQ_OK;
    }
    return cq_err_set(err, CQ_E_NOTFOUND,
                      "%s: the file does not say the weight's shape (optimum-quanto stores int2/int4 groups as "
                      "[%" PRId64 ", %" PRId64 "]%s); give the float checkpoint with --like",
                      m->module, rows, data->shape[1],
                      n > 1 ? ", which fits several shapes" : n ? ", which fits a Linear and a Conv2d alike" : "");
}

/* ---- discovery ---------------------------------------------------------------------------------- */

cq_status cq__qmodules_find(const cq_ckpt *c, const cq_ckpt *like, cq__qmodules *out, cq_err *err) {
    memset(out, 0, sizeof *out);
    char *path = NULL;
    cq_status s = cq_ckpt_folder_file(c, "quanto_qmap.json", &path, err);
    if (s) return s;
    if (!path)
        s = cq_err_set(err, CQ_E_NOTFOUND, "%s: no quanto_qmap.json beside the weights: not an optimum-quanto checkpoint",
                       cq_ckpt_dir(c));
    if (!s) s = cq_qmap_load(path, &out->qmap, err);
    free(path);
    cq_hfconfig *cfg = NULL;
    char *cpath = NULL;
    if (!s) s = cq_ckpt_folder_file(c, "config.json", &cpath, err);
    if (cpath && cq_hfconfig_load(cpath, &cfg, NULL) != CQ_OK) cfg = NULL;
    free(cpath);
    int64_t n = s ? 0 : cq_qmap_count(out->qmap);
    if (!s) {
        out->mods = cq__calloc((size_t)(n ? n : 1), sizeof *out->mods, err, "the module list");
        out->owner = cq__malloc((size_t)(cq_ckpt_count(c) ? cq_ckpt_count(c) : 1) * sizeof *out->owner, err, "a map");
        if (!out->mods || !out->owner) s = CQ_E_NOMEM;
    }
    for (int64_t i = 0; !s && i < cq_ckpt_count(c); i++) out->owner[i] = -1;
    json_t **recs = s ? NULL : load_shape_records(c);
    if (!s && !recs) s = cq_err_set(err, CQ_E_NOMEM, "out of memory");
    for (int64_t i = 0; !s && i < n; i++) {
        cq__qmodule *m = &out->mods[out->n];
        const char *name = cq_qmap_module(out->qmap, i);
        size_t len = strlen(name);
        m->module = cq__malloc(2 * len + 3, err, "a module name"); /* "name\0name.\0" */
        if (!m->module) {
            s = CQ_E_NOMEM;
            break;
        }
        memcpy(m->module, name, len + 1);
        m->prefix = m->module + len + 1;
        snprintf(m->prefix, len + 1 + (len ? 1 : 0), "%s%s", name, len ? "." : "");
        out->n++;
        m->weights = cq_qmap_weights(out->qmap, i);
        m->activations = cq_qmap_activations(out->qmap, i);
        const cq_qtype_info *qi = cq_qtype_get(m->weights);
        char data_key[24];
        snprintf(data_key, sizeof data_key, "weight.%s", cq_qweight_data_key(m->weights));
        m->data_idx = find_tensor(c, m->prefix, data_key);
        m->scale_idx = find_tensor(c, m->prefix, "weight._scale");
        m->shift_idx = find_tensor(c, m->prefix, "weight._shift");
        m->weight_idx = find_tensor(c, m->prefix, "weight");
        for (size_t k = 0; k < CQ_ARRAY_LEN(STATE_SUFFIXES); k++) {
            int64_t t = find_tensor(c, m->prefix, STATE_SUFFIXES[k]);
            if (t >= 0) out->owner[t] = out->n - 1;
        }
        if (!qi) continue; /* weights "none": a QLayerNorm; its float weight stays as it is */
        if (m->data_idx < 0 || m->scale_idx < 0 || (qi->family == CQ_QFAMILY_AFFINE && m->shift_idx < 0))
            s = cq_err_set(err, CQ_E_NOTFOUND, "%s: quanto_qmap.json says %s is %s but its weight.%s%s is missing",
                           cq_ckpt_dir(c), name, qi->name, m->data_idx < 0 ? cq_qweight_data_key(m->weights) : "",
                           m->data_idx < 0 ? "" : (m->scale_idx < 0 ? "_scale" : "_shift"));
        if (!s) s = resolve_shape(c, like, cfg, recs, m, err);
    }
    free_shape_records(c, recs);
    cq_hfconfig_free(cfg);
    if (s) cq__qmodules_free(out);
    return s;
}

static cq_status view_of(const cq_ckpt *c, int64_t i, cq_tensor **out, cq_err *err) {
    const cq_tensor *t = cq_ckpt_tensor(c, i);
    return cq_tensor_view(out, t->dtype, t->ndim, t->shape, t->data, err);
}

cq_status cq__qmodule_weight(const cq_ckpt *c, const cq__qmodule *m, cq_qweight **out, cq_err *err) {
    *out = NULL;
    bool qbits = cq_qtype_family_of(m->weights) == CQ_QFAMILY_AFFINE;
    cq_tensor *data = NULL, *scale = NULL, *shift = NULL;
    cq_status s = view_of(c, m->data_idx, &data, err);
    if (!s) s = view_of(c, m->scale_idx, &scale, err);
    if (!s && qbits) s = view_of(c, m->shift_idx, &shift, err);
    /* copy = false: the views' memory stays the checkpoint's; the weight owns only headers. */
    if (!s) s = cq_qweight_from_tensors(m->weights, m->ndim, m->shape, -1, data, scale, shift, false, out, err);
    if (s) cq_err_prefix(err, s, "%s: ", m->module);
    cq_tensor_free(data);
    cq_tensor_free(scale);
    cq_tensor_free(shift);
    return s;
}
