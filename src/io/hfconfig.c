/*
 * hfconfig.c - a Hugging Face config.json held whole (a jansson tree), with typed getters for
 * the top-level fields the models and the CLI need (model_type, vocab_size,
 * tie_word_embeddings, ...), and a writer for a copy with changes such as a
 * "quantization_config" in transformers' QuantoConfig form. Saved text follows transformers'
 * to_json_string (indent 2, sorted keys, Python float repr, trailing newline). This is not a
 * model-config schema: no field is required here; each model checks what it needs.
 */
#include "io/io_internal.h"

#include <math.h>

#define MAX_CONFIG_BYTES ((size_t)64 << 20)

struct cq_hfconfig {
    json_t *root;
    char *label;
};

void cq_hfconfig_free(cq_hfconfig *c) {
    if (!c) return;
    json_decref(c->root);
    free(c->label);
    free(c);
}

cq_status cq_hfconfig_parse(const char *text, size_t n, const char *label, cq_hfconfig **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_hfconfig_parse: out is NULL");
    *out = NULL;
    if (!label) label = "<config>";
    if (!text && n) return cq_err_set(err, CQ_E_ARG, "cq_hfconfig_parse: text is NULL");
    json_t *root;
    cq_status s = cq__json_parse_object(text ? text : "", n, label, &root, err);
    if (s) {
        cq__err_one_line(err);
        return s;
    }
    cq_hfconfig *c = cq__calloc(1, sizeof *c, err, "a config");
    if (c) c->label = cq__strdup(label, err);
    if (!c || !c->label) {
        free(c);
        json_decref(root);
        return CQ_E_NOMEM;
    }
    c->root = root;
    *out = c;
    return CQ_OK;
}

cq_status cq_hfconfig_load(const char *path, cq_hfconfig **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_hfconfig_load: out is NULL");
    *out = NULL;
    char *text;
    size_t n;
    cq_status s = cq_fs_read_file(path, MAX_CONFIG_BYTES, &text, &n, err);
    if (s) return s;
    s = cq_hfconfig_parse(text, n, path, out, err);
    free(text);
    return s;
}

/* The value of key, or NULL when the key is absent or null. */
static const json_t *field(const cq_hfconfig *c, const char *key) {
    if (!c || !key) return NULL;
    const json_t *v = json_object_get(c->root, key);
    return json_is_null(v) ? NULL : v;
}

bool cq_hfconfig_has(const cq_hfconfig *c, const char *key) { return c && key && json_object_get(c->root, key); }

const char *cq_hfconfig_str(const cq_hfconfig *c, const char *key) {
    const json_t *v = field(c, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static cq_status missing_or_wrong(const cq_hfconfig *c, const char *key, const json_t *v, const char *want,
                                  cq_err *err) {
    if (!v)
        return cq_err_set(err, CQ_E_NOTFOUND, "%s: no \"%s\"", c ? c->label : "config", key ? key : "(null)");
    return cq_err_set(err, CQ_E_FORMAT, "%s: \"%s\" is not %s", c->label, key, want);
}

cq_status cq_hfconfig_int(const cq_hfconfig *c, const char *key, int64_t *out, cq_err *err) {
    const json_t *v = field(c, key);
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return CQ_OK;
    }
    /* Python writes 4096.0 for an int that went through a float; accept whole numbers. */
    if (json_is_real(v) && nearbyint(json_real_value(v)) == json_real_value(v) && fabs(json_real_value(v)) < 9e15) {
        *out = (int64_t)json_real_value(v);
        return CQ_OK;
    }
    return missing_or_wrong(c, key, v, "an integer", err);
}

cq_status cq_hfconfig_real(const cq_hfconfig *c, const char *key, double *out, cq_err *err) {
    const json_t *v = field(c, key);
    if (!json_is_number(v)) return missing_or_wrong(c, key, v, "a number", err);
    *out = json_number_value(v);
    return CQ_OK;
}

cq_status cq_hfconfig_bool(const cq_hfconfig *c, const char *key, bool *out, cq_err *err) {
    const json_t *v = field(c, key);
    if (!json_is_boolean(v)) return missing_or_wrong(c, key, v, "true or false", err);
    *out = json_is_true(v);
    return CQ_OK;
}

const char *cq_hfconfig_model_type(const cq_hfconfig *c) { return cq_hfconfig_str(c, "model_type"); }

const char *cq__hfconfig_str_at(const cq_hfconfig *c, const char *key, size_t i) {
    const json_t *v = json_array_get(field(c, key), i);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int cq__hfconfig_ints(const cq_hfconfig *c, const char *key, int64_t *out, int cap) {
    const json_t *v = field(c, key);
    if (json_is_integer(v) && cap > 0) return out[0] = json_integer_value(v), 1;
    int n = 0;
    for (size_t i = 0; n < cap && i < json_array_size(v); i++)
        if (json_is_integer(json_array_get(v, i))) out[n++] = json_integer_value(json_array_get(v, i));
    return n;
}

bool cq_hfconfig_tie_word_embeddings(const cq_hfconfig *c) {
    bool tie = true;
    return cq_hfconfig_bool(c, "tie_word_embeddings", &tie, NULL) == CQ_OK ? tie : true;
}

/* transformers' QuantoConfig spells qtypes as int2/int4/int8/float8 (float8 = e4m3fn). */
static const char *quanto_config_name(cq_qtype q) {
    switch (q) {
    case CQ_QINT2: return "int2";
    case CQ_QINT4: return "int4";
    case CQ_QINT8: return "int8";
    case CQ_QFLOAT8_E4M3FN: return "float8";
    default: return NULL;
    }
}

cq_status cq_hfconfig_set_quantization(cq_hfconfig *c, cq_qtype weights, cq_qtype activations,
                                       const char *const *modules_to_not_convert, cq_err *err) {
    if (!c) return cq_err_set(err, CQ_E_ARG, "cq_hfconfig_set_quantization: config is NULL");
    const char *w = quanto_config_name(weights);
    if (!w)
        return cq_err_set(err, CQ_E_ARG, "transformers' QuantoConfig cannot express weights %s (int2, int4, int8, float8)",
                          cq_qtype_name(weights));
    const char *a = NULL;
    if (activations != CQ_QNONE && (!cq_qtype_takes(activations, CQ_QROLE_ACTIVATIONS, false) ||
                                    !(a = quanto_config_name(activations))))
        return cq_err_set(err, CQ_E_ARG, "transformers' QuantoConfig cannot express activations %s (none, int8, float8)",
                          cq_qtype_name(activations));
    json_t *q = json_object(), *mods = modules_to_not_convert ? json_array() : json_null();
    bool ok = q && mods;
    for (size_t i = 0; ok && modules_to_not_convert && modules_to_not_convert[i]; i++)
        ok = !json_array_append_new(mods, json_string(modules_to_not_convert[i]));
    ok = ok && !json_object_set_new(q, "quant_method", json_string("quanto")) &&
         !json_object_set_new(q, "weights", json_string(w)) &&
         !json_object_set_new(q, "activations", a ? json_string(a) : json_null()) &&
         !json_object_set(q, "modules_to_not_convert", mods);
    json_decref(mods);
    if (ok) ok = !json_object_set_new(c->root, "quantization_config", q);
    else json_decref(q);
    if (!ok) return cq_err_set(err, CQ_E_ARG, "%s: cannot set quantization_config (out of memory or bad UTF-8)", c->label);
    return CQ_OK;
}

cq_status cq_hfconfig_set_bool(cq_hfconfig *c, const char *key, bool value, cq_err *err) {
    if (!c || !key) return cq_err_set(err, CQ_E_ARG, "cq_hfconfig_set_bool: NULL argument");
    if (json_object_set_new(c->root, key, json_boolean(value)))
        return cq_err_set(err, CQ_E_ARG, "%s: cannot set \"%.100s\"", c->label, key);
    return CQ_OK;
}

cq_status cq_hfconfig_to_json(const cq_hfconfig *c, char **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_hfconfig_to_json: out is NULL");
    *out = NULL;
    if (!c) return cq_err_set(err, CQ_E_ARG, "cq_hfconfig_to_json: config is NULL");
    char *text;
    size_t n;
    cq_status s = cq__json_emit(c->root, &cq__json_python_indent2_sorted, &text, &n, err);
    if (s) return s;
    char *t = realloc(text, n + 2);
    if (!t) {
        free(text);
        return cq_err_set(err, CQ_E_NOMEM, "out of memory");
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    *out = t;
    return CQ_OK;
}

cq_status cq_hfconfig_save(const cq_hfconfig *c, const char *path, cq_err *err) {
    char *text;
    cq_status s = cq_hfconfig_to_json(c, &text, err);
    if (s) return s;
    s = cq_fs_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return s;
}
