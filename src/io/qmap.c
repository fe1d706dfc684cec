/*
 * qmap.c - optimum-quanto's quantization map, quanto_qmap.json:
 * {"<module>": {"weights": "<qtype>|none", "activations": "<qtype>|none"}, ...}.
 * Reading accepts exactly the names quanto's requantize looks up (the q-prefixed qtype names,
 * the alias qfloat8, and "none"); writing spells the canonical names the way Python's
 * json.dump(qmap, f, indent=4) does, so our files and quanto's are byte-identical. Modules keep
 * their insertion order. Nothing here knows what a qtype means beyond its name.
 */
#include "core/strmap.h"
#include "io/io_internal.h"

#define MAX_QMAP_BYTES ((size_t)64 << 20)

typedef struct qmap_entry {
    char *module;
    cq_qtype weights, activations;
} qmap_entry;

struct cq_qmap {
    qmap_entry *entries;
    int64_t count, cap;
    cq__strmap by_module; /* module -> index into entries */
};

cq_status cq_qmap_new(cq_qmap **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_qmap_new: out is NULL");
    *out = cq__calloc(1, sizeof **out, err, "a quantization map");
    return *out ? CQ_OK : CQ_E_NOMEM;
}

void cq_qmap_free(cq_qmap *m) {
    if (!m) return;
    for (int64_t i = 0; i < m->count; i++) free(m->entries[i].module);
    free(m->entries);
    cq__strmap_free(&m->by_module);
    free(m);
}

int64_t cq_qmap_count(const cq_qmap *m) { return m ? m->count : 0; }

const char *cq_qmap_module(const cq_qmap *m, int64_t i) {
    return m && i >= 0 && i < m->count ? m->entries[i].module : NULL;
}
cq_qtype cq_qmap_weights(const cq_qmap *m, int64_t i) {
    return m && i >= 0 && i < m->count ? m->entries[i].weights : CQ_QNONE;
}
cq_qtype cq_qmap_activations(const cq_qmap *m, int64_t i) {
    return m && i >= 0 && i < m->count ? m->entries[i].activations : CQ_QNONE;
}

int64_t cq_qmap_find(const cq_qmap *m, const char *module) {
    return m ? cq__strmap_get(&m->by_module, module) : -1;
}

static bool valid_qtype(cq_qtype q) { return q == CQ_QNONE || cq_qtype_get(q) != NULL; }

cq_status cq_qmap_set(cq_qmap *m, const char *module, cq_qtype weights, cq_qtype activations, cq_err *err) {
    if (!m || !module) return cq_err_set(err, CQ_E_ARG, "cq_qmap_set: NULL argument");
    if (!valid_qtype(weights) || !valid_qtype(activations))
        return cq_err_set(err, CQ_E_ARG, "module '%s': invalid qtype value", module);
    if (!cq__utf8_valid(module, strlen(module), NULL))
        return cq_err_set(err, CQ_E_ARG, "module name '%.100s' is not valid UTF-8", module);
    int64_t i = cq_qmap_find(m, module);
    if (i < 0) {
        if (m->count == m->cap) {
            int64_t cap = m->cap ? m->cap * 2 : 16;
            qmap_entry *e = realloc(m->entries, (size_t)cap * sizeof *e);
            if (!e) return cq_err_set(err, CQ_E_NOMEM, "out of memory");
            m->entries = e;
            m->cap = cap;
        }
        char *name = cq__strdup(module, err);
        if (!name) return CQ_E_NOMEM;
        cq_status s = cq__strmap_put(&m->by_module, name, m->count, NULL, err);
        if (s) {
            free(name);
            return s;
        }
        i = m->count++;
        m->entries[i].module = name;
    }
    m->entries[i].weights = weights;
    m->entries[i].activations = activations;
    return CQ_OK;
}

/* A qtype name as quanto's requantize reads it: "none" or a key of quanto's qtypes dict. */
static cq_status parse_qtype_field(const json_t *conf, const char *field, const char *label, const char *module,
                                   cq_qtype *out, cq_err *err) {
    const json_t *v = json_object_get(conf, field);
    if (!json_is_string(v))
        return cq_err_set(err, CQ_E_FORMAT, "%s: module '%.100s': \"%s\" is %s", label, module, field,
                          v ? "not a string" : "missing");
    const char *name = json_string_value(v);
    if (!strcmp(name, "none")) {
        *out = CQ_QNONE;
        return CQ_OK;
    }
    if (name[0] != 'q' || cq_qtype_parse(name, out, NULL) != CQ_OK || *out == CQ_QNONE)
        return cq_err_set(err, CQ_E_FORMAT, "%s: module '%.100s': unknown %s qtype \"%.40s\"", label, module, field,
                          name);
    return CQ_OK;
}

cq_status cq_qmap_parse(const char *text, size_t n, const char *label, cq_qmap **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_qmap_parse: out is NULL");
    *out = NULL;
    if (!label) label = "<quantization map>";
    if (!text && n) return cq_err_set(err, CQ_E_ARG, "cq_qmap_parse: text is NULL");
    json_t *root;
    cq_status s = cq__json_parse_object(text ? text : "", n, label, &root, err);
    if (s) {
        cq__err_one_line(err);
        return s;
    }
    cq_qmap *m;
    s = cq_qmap_new(&m, err);
    const char *module;
    json_t *conf;
    if (!s) json_object_foreach(root, module, conf) {
        if (!json_is_object(conf)) {
            s = cq_err_set(err, CQ_E_FORMAT, "%s: module '%.100s': value is not an object", label, module);
            break;
        }
        cq_qtype w, a;
        if ((s = parse_qtype_field(conf, "weights", label, module, &w, err))) break;
        if ((s = parse_qtype_field(conf, "activations", label, module, &a, err))) break;
        if ((s = cq_qmap_set(m, module, w, a, err))) break;
    }
    json_decref(root);
    if (s) {
        cq__err_one_line(err);
        cq_qmap_free(m);
        return s;
    }
    *out = m;
    return CQ_OK;
}

cq_status cq_qmap_load(const char *path, cq_qmap **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_qmap_load: out is NULL");
    *out = NULL;
    char *text;
    size_t n;
    cq_status s = cq_fs_read_file(path, MAX_QMAP_BYTES, &text, &n, err);
    if (s) return s;
    s = cq_qmap_parse(text, n, path, out, err);
    free(text);
    return s;
}

cq_status cq_qmap_to_json(const cq_qmap *m, char **out, cq_err *err) {
    if (!out) return cq_err_set(err, CQ_E_ARG, "cq_qmap_to_json: out is NULL");
    *out = NULL;
    if (!m) return cq_err_set(err, CQ_E_ARG, "cq_qmap_to_json: map is NULL");
    json_t *root = json_object();
    bool ok = root != NULL;
    for (int64_t i = 0; ok && i < m->count; i++) {
        json_t *conf = json_object();
        if (!conf) {
            ok = false;
        } else if (json_object_set_new(conf, "weights", json_string(cq_qtype_name(m->entries[i].weights))) ||
                   json_object_set_new(conf, "activations", json_string(cq_qtype_name(m->entries[i].activations)))) {
            json_decref(conf);
            ok = false;
        } else {
            ok = !json_object_set_new(root, m->entries[i].module, conf); /* steals conf, even on failure */
        }
    }
    cq_status s = ok ? cq__json_emit(root, &cq__json_python_indent4, out, NULL, err)
                     : cq_err_set(err, CQ_E_NOMEM, "out of memory");
    json_decref(root);
    return s;
}

cq_status cq_qmap_save(const cq_qmap *m, const char *path, cq_err *err) {
    char *text;
    cq_status s = cq_qmap_to_json(m, &text, err);
    if (s) return s;
    s = cq_fs_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return s;
}
