/*
 * test_err_null.c - the error contract: a failing call returns the same error status whether
 * or not the caller passed a cq_err record (the status travels by return value only), and the
 * record, when given, explains the failure. Each case below is one failure path of the public
 * API; it is run twice, with a record and with err == NULL. Every object a case passes with
 * ownership is freed by the call (the ownership rule), so the cases run leak-free under ASan.
 */
#include "tst.h"

#include "cquanto.h"
#include "cquanto/experimental.h" /* cq_fs_read_file */

#include <stdlib.h>

/* A one-layer MLP (layers.0: Linear 4 -> 3) with frozen qint8 weights. */
static cq_model *frozen_mlp(void) {
    const int64_t sizes[2] = {4, 3};
    cq_model *m = NULL;
    cq_quantize_opts q = cq_quantize_default_opts();
    if (cq_mlp_new(&m, 1, sizes, 1, NULL) || cq_quantize(m, &q, NULL) || cq_freeze(m, NULL)) {
        cq_model_free(m);
        return NULL;
    }
    return m;
}

/* Loading a frozen Linear whose weight._data has the wrong shape must fail. */
static cq_status frozen_linear_wrong_shape(cq_err *err) {
    cq_model *m = frozen_mlp();
    cq_state_dict *sd = NULL, *bad = NULL;
    cq_status s = m ? cq_model_state_dict(m, &sd, NULL) : CQ_E_NOMEM;
    if (!s) s = cq_state_dict_new(&bad, NULL);
    for (int64_t i = 0; !s && i < cq_state_dict_count(sd); i++) {
        const char *key = cq_state_dict_key(sd, i);
        cq_tensor *t = NULL;
        const int64_t wrong[2] = {3, 5};
        if (!strcmp(key, "layers.0.weight._data")) s = cq_tensor_new(&t, CQ_I8, 2, wrong, NULL);
        else s = cq_tensor_clone(&t, cq_state_dict_tensor(sd, i), NULL);
        if (!s) s = cq_state_dict_add(bad, key, t, NULL);
    }
    CHECK(s == CQ_OK && cq_state_dict_find(bad, "layers.0.weight._data"));
    if (!s) s = cq_model_load_state_dict(m, bad, NULL, "bad.safetensors", err);
    else s = CQ_OK; /* the setup failed: report success so the case fails */
    cq_state_dict_free(bad);
    cq_state_dict_free(sd);
    cq_model_free(m);
    return s;
}

static cq_status tensor_negative_dim(cq_err *err) {
    const int64_t shape[2] = {2, -1};
    cq_tensor *t = NULL;
    cq_status s = cq_tensor_new(&t, CQ_F32, 2, shape, err);
    cq_tensor_free(t);
    return s;
}

static cq_status qtype_unknown(cq_err *err) {
    cq_qtype q;
    return cq_qtype_parse("qint3", &q, err);
}

static cq_status st_open_missing(cq_err *err) {
    cq_st_file *f = NULL;
    cq_status s = cq_st_open("tests/data/no-such-file.safetensors", &f, err);
    cq_st_close(f);
    return s;
}

static cq_status ckpt_open_missing(cq_err *err) {
    cq_ckpt *c = NULL;
    cq_status s = cq_ckpt_open("tests/data/no-such-folder", &c, err);
    cq_ckpt_close(c);
    return s;
}

static cq_status qmap_bad_json(cq_err *err) {
    cq_qmap *m = NULL;
    const char text[] = "{\"fc1\": {\"weights\": ";
    cq_status s = cq_qmap_parse(text, sizeof text - 1, "quanto_qmap.json", &m, err);
    cq_qmap_free(m);
    return s;
}

static cq_status hfconfig_bad_json(cq_err *err) {
    cq_hfconfig *c = NULL;
    const char text[] = "{\"model_type\": }";
    cq_status s = cq_hfconfig_parse(text, sizeof text - 1, "config.json", &c, err);
    cq_hfconfig_free(c);
    return s;
}

static cq_status model_load_missing(cq_err *err) {
    cq_model *m = NULL;
    cq_status s = cq_lenet_new(&m, NULL);
    if (!s) s = cq_model_load_safetensors(m, "tests/data/no-such-file.safetensors", err);
    else s = CQ_OK;
    cq_model_free(m);
    return s;
}

/* cq_module_add frees a refused child: no leak although the caller never frees it. */
static cq_status module_add_duplicate(cq_err *err) {
    cq_module *root = NULL, *a = NULL, *b = NULL;
    cq_status s = cq_module_new_container(&root, NULL);
    if (!s) s = cq_module_new_linear(&a, 2, 2, true, NULL);
    if (!s) s = cq_module_add(root, "fc", a, NULL);
    if (!s) s = cq_module_new_linear(&b, 2, 2, true, NULL);
    if (!s) s = cq_module_add(root, "fc", b, err);
    else s = CQ_OK;
    cq_module_free(root);
    return s;
}

/* cq_model_new takes root also when it refuses it. */
static cq_status model_new_needs_forward(cq_err *err) {
    cq_module *root = NULL;
    cq_model *m = NULL;
    if (cq_module_new_container(&root, NULL)) return CQ_OK;
    cq_status s = cq_model_new(&m, "x", root, NULL, err);
    cq_model_free(m);
    return s;
}

/* cq_state_dict_add takes t also when it refuses it. */
static cq_status state_dict_duplicate_key(cq_err *err) {
    cq_state_dict *sd = NULL;
    cq_tensor *a = NULL, *b = NULL;
    const int64_t shape[1] = {2};
    cq_status s = cq_state_dict_new(&sd, NULL);
    if (!s) s = cq_tensor_new(&a, CQ_F32, 1, shape, NULL);
    if (!s) s = cq_state_dict_add(sd, "w", a, NULL);
    if (!s) s = cq_tensor_new(&b, CQ_F32, 1, shape, NULL);
    if (!s) s = cq_state_dict_add(sd, "w", b, err);
    else s = CQ_OK;
    cq_state_dict_free(sd);
    return s;
}

/* The same tensor given twice: the second time it is already the dict's, not the caller's to
 * give, so it is refused and left as it is (once it was freed, or held twice: a double free). */
static cq_status state_dict_same_tensor(const char *second_key, cq_err *err) {
    cq_state_dict *sd = NULL;
    cq_tensor *a = NULL;
    const int64_t shape[1] = {2};
    cq_status s = cq_state_dict_new(&sd, NULL);
    if (!s) s = cq_tensor_new(&a, CQ_F32, 1, shape, NULL);
    if (!s) s = cq_state_dict_add(sd, "w", a, NULL);
    if (!s) s = cq_state_dict_add(sd, second_key, a, err);
    else s = CQ_OK;
    if (s && cq_state_dict_count(sd) != 1) s = CQ_OK; /* refused, but not left as it was */
    cq_state_dict_free(sd);
    return s;
}
static cq_status state_dict_same_tensor_new_key(cq_err *err) { return state_dict_same_tensor("v", err); }
static cq_status state_dict_same_tensor_same_key(cq_err *err) { return state_dict_same_tensor("w", err); }

/* An nn op whose inputs disagree, and a backward nothing asked for. */
static cq_status linear_shape_mismatch(cq_err *err) {
    cq_tape *t = NULL;
    cq_var *x = NULL, *w = NULL, *y = NULL;
    const int64_t xs[2] = {2, 3}, ws[2] = {4, 5};
    cq_status s = cq_tape_new(&t, NULL);
    if (!s) s = cq_tape_zeros(t, 2, xs, &x, NULL);
    if (!s) s = cq_tape_zeros(t, 2, ws, &w, NULL);
    if (!s) s = cq_linear(t, x, w, NULL, &y, err);
    else s = CQ_OK;
    cq_tape_free(t);
    return s;
}

static cq_status backward_without_grad(cq_err *err) {
    cq_tape *t = NULL;
    cq_var *x = NULL, *y = NULL;
    const int64_t xs[1] = {3};
    cq_status s = cq_tape_new(&t, NULL);
    if (!s) s = cq_tape_zeros(t, 1, xs, &x, NULL);
    if (!s) s = cq_sum(t, x, &y, NULL);
    if (!s) s = cq_backward(t, y, err);
    else s = CQ_OK;
    cq_tape_free(t);
    return s;
}

static cq_status cross_entropy_bad_target(cq_err *err) {
    cq_tape *t = NULL;
    cq_var *x = NULL, *y = NULL;
    const int64_t xs[2] = {2, 3}, targets[2] = {0, 7};
    cq_status s = cq_tape_new(&t, NULL);
    if (!s) s = cq_tape_zeros(t, 2, xs, &x, NULL);
    if (!s) s = cq_cross_entropy(t, x, targets, &y, err);
    else s = CQ_OK;
    cq_tape_free(t);
    return s;
}

static cq_status qweight_wrong_shape(cq_err *err) {
    const int64_t ws[2] = {3, 4}, ds[2] = {3, 5}, ss[2] = {3, 1};
    cq_tensor *data = NULL, *scale = NULL;
    cq_qweight *qw = NULL;
    cq_status s = cq_tensor_new(&data, CQ_I8, 2, ds, NULL);
    if (!s) s = cq_tensor_new(&scale, CQ_F32, 2, ss, NULL);
    if (!s) s = cq_qweight_from_tensors(CQ_QINT8, 2, ws, -1, data, scale, NULL, true, &qw, err);
    else s = CQ_OK;
    cq_qweight_free(qw);
    cq_tensor_free(data);
    cq_tensor_free(scale);
    return s;
}

static cq_status convert_quantize_missing(cq_err *err) {
    cq_convert_opts o = cq_convert_default_opts();
    return cq_convert_quantize("tests/data/no-such-folder", "/tmp/cq-err-null-never-written", &o, NULL, err);
}

static cq_status read_file_missing(cq_err *err) {
    char *text = NULL;
    size_t n = 0;
    cq_status s = cq_fs_read_file("tests/data/no-such-file", 1024, &text, &n, err);
    free(text);
    return s;
}

static cq_status requantize_missing(cq_err *err) {
    cq_model *m = NULL;
    cq_status s = cq_lenet_new(&m, NULL);
    if (!s) s = cq_model_requantize(m, "tests/data/no-such-folder", err);
    else s = CQ_OK;
    cq_model_free(m);
    return s;
}

static cq_status quantize_bad_activations(cq_err *err) {
    cq_model *m = NULL;
    cq_status s = cq_lenet_new(&m, NULL);
    cq_quantize_opts q = cq_quantize_default_opts();
    q.activations = CQ_QINT4;
    if (!s) s = cq_quantize(m, &q, err);
    else s = CQ_OK;
    cq_model_free(m);
    return s;
}

typedef struct failure_case {
    const char *name;
    cq_status (*run)(cq_err *err);
} failure_case;

static const failure_case cases[] = {
    {"frozen Linear, weight._data of the wrong shape", frozen_linear_wrong_shape},
    {"cq_tensor_new, negative dimension", tensor_negative_dim},
    {"cq_qtype_parse, unknown qtype", qtype_unknown},
    {"cq_st_open, missing file", st_open_missing},
    {"cq_ckpt_open, missing folder", ckpt_open_missing},
    {"cq_qmap_parse, truncated JSON", qmap_bad_json},
    {"cq_hfconfig_parse, bad JSON", hfconfig_bad_json},
    {"cq_model_load_safetensors, missing file", model_load_missing},
    {"cq_module_add, duplicate name", module_add_duplicate},
    {"cq_model_new, no forward and no Sequential root", model_new_needs_forward},
    {"cq_state_dict_add, duplicate key", state_dict_duplicate_key},
    {"cq_state_dict_add, a tensor already in it, new key", state_dict_same_tensor_new_key},
    {"cq_state_dict_add, a tensor already in it, same key", state_dict_same_tensor_same_key},
    {"cq_linear, shapes disagree", linear_shape_mismatch},
    {"cq_backward, no gradient asked for", backward_without_grad},
    {"cq_cross_entropy, target out of range", cross_entropy_bad_target},
    {"cq_qweight_from_tensors, data of the wrong shape", qweight_wrong_shape},
    {"cq_convert_quantize, missing input", convert_quantize_missing},
    {"cq_fs_read_file, missing file", read_file_missing},
    {"cq_model_requantize, missing folder", requantize_missing},
    {"cq_quantize, int4 activations", quantize_bad_activations},
};

TST(err_null_failures_keep_their_status) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cq_err err = {0};
        cq_status with = cases[i].run(&err);
        cq_status without = cases[i].run(NULL);
        CHECKF(with != CQ_OK && err.msg[0], "%s: status %s, message '%s'", cases[i].name, cq_status_str(with),
               err.msg);
        CHECKF(without == with, "%s: err == NULL gives %s, a record gives %s", cases[i].name,
               cq_status_str(without), cq_status_str(with));
    }
}

TST(err_null_frozen_linear_wrong_shape) {
    cq_err err = {0};
    CHECK(frozen_linear_wrong_shape(NULL) == CQ_E_SHAPE);
    CHECK(frozen_linear_wrong_shape(&err) == CQ_E_SHAPE && strstr(err.msg, "layers.0.weight"));
}
