/*
 * test_module.c - module trees (dotted names, lookup, walk order, errors), quantize's fnmatch
 * selection and per-kind rules, the quanto state-dict layout (QUANTO-FORMAT.md 8.1 table), state-dict
 * loading errors (missing, unexpected, shape, dtype; nothing changes on failure), the
 * Conv-BN(-ReLU) fold, and a QAT training loop that must run leak-free under ASan.
 */
#include "tst.h"

#include "cquanto.h"
#include "cquanto/experimental.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

/* Builds parent.<name> = child, failing the test on error. */
static cq_module *add(cq_module *parent, const char *name, cq_module *child) {
    cq_err err = {0};
    if (!child) return NULL;
    if (cq_module_add(parent, name, child, &err)) {
        CHECKF(0, "add %s: %s", name, err.msg);
        return NULL;
    }
    return child;
}

static cq_module *linear(int64_t in, int64_t out) {
    cq_module *m = NULL;
    cq_module_new_linear(&m, in, out, true, NULL);
    return m;
}
static cq_module *container(void) {
    cq_module *m = NULL;
    cq_module_new_container(&m, NULL);
    return m;
}

static cq_status no_forward(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err) {
    (void)m, (void)t, (void)x, (void)out;
    return cq_err_set(err, CQ_E_UNSUPPORTED, "no forward");
}

/* fc, block.{a, ab, norm}, block2.a, layer1.0.conv1 */
static cq_model *pattern_model(void) {
    cq_module *root = container();
    add(root, "fc", linear(8, 8));
    cq_module *block = add(root, "block", container());
    add(block, "a", linear(8, 8));
    add(block, "ab", linear(8, 8));
    cq_module *norm = NULL;
    int64_t d = 8;
    cq_module_new_layer_norm(&norm, 1, &d, 1e-5f, true, NULL);
    add(block, "norm", norm);
    add(add(root, "block2", container()), "a", linear(8, 8));
    cq_module *conv = NULL;
    cq_module_new_conv2d(&conv, 2, 4, 3, 3, NULL, false, NULL);
    add(add(add(root, "layer1", container()), "0", container()), "conv1", conv);
    cq_model *m = NULL;
    CHECK(cq_model_new(&m, "patterns", root, no_forward, NULL) == CQ_OK);
    return m;
}

TST(module_tree_names_lookup_and_order) {
    cq_model *m = pattern_model();
    if (!m) return;
    cq_module *root = cq_model_root(m);
    cq_module *conv = cq_module_find(root, "layer1.0.conv1");
    CHECK(conv && !strcmp(cq_module_name(conv), "layer1.0.conv1") && !strcmp(cq_module_local_name(conv), "conv1"));
    CHECK(cq_module_get_kind(conv) == CQ_MODULE_CONV2D && !strcmp(cq_module_kind_name(CQ_MODULE_CONV2D), "Conv2d"));
    CHECK(cq_module_find(root, "") == root && cq_module_find(root, "layer1.0") != NULL);
    CHECK(cq_module_find(root, "layer1.") == NULL && cq_module_find(root, "layer1.1") == NULL &&
          cq_module_find(root, "layer") == NULL);
    CHECK(cq_module_find(cq_module_find(root, "layer1"), "0.conv1") == conv);
    /* named_modules() order */
    const char *want[] = {"", "fc", "block", "block.a", "block.ab", "block.norm", "block2", "block2.a", "layer1",
                          "layer1.0", "layer1.0.conv1"};
    int i = 0;
    for (cq_module *x = root; x; x = cq_module_next(root, x), i++)
        CHECKF(i < 11 && !strcmp(cq_module_name(x), want[i]), "module %d is '%s'", i, cq_module_name(x));
    CHECK(i == 11);
    CHECK(cq_module_param(conv, "weight") && cq_module_param(conv, "weight")->data->shape[1] == 2 &&
          !cq_module_param(conv, "bias"));
    /* invalid names and re-parenting */
    cq_err err = {0};
    /* a refused child is freed by cq_module_add (the ownership rule), so each try makes one */
    CHECK(cq_module_add(root, "fc", linear(2, 2), &err) == CQ_E_ARG && strstr(err.msg, "fc"));
    CHECK(cq_module_add(root, "a.b", linear(2, 2), &err) == CQ_E_ARG);
    CHECK(cq_module_add(root, "", linear(2, 2), &err) == CQ_E_ARG);
    /* one that already has an owner is left to it */
    CHECK(cq_module_add(root, "again", conv, &err) == CQ_E_ARG);
    CHECK(cq_model_parameters(m, NULL, 0) == 4 * 2 + 2 + 1);
    CHECK(cq_model_weight_count(m) == 4 * 64 + 4 * 2 * 9);
    cq_model_free(m);
}

/* The names of the quantized modules, comma-separated. */
static void quantized_names(const cq_model *m, char *buf, size_t n) {
    buf[0] = '\0';
    cq_module *root = cq_model_root(m);
    for (cq_module *x = root; x; x = cq_module_next(root, x))
        if (cq_module_get_qinfo(x).quantized)
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? "," : "", cq_module_name(x));
}

static void expect_selection(const char *const *include, const char *const *exclude, cq_qtype act, const char *want) {
    cq_model *m = pattern_model();
    if (!m) return;
    cq_quantize_opts q = cq_quantize_default_opts();
    q.include = include;
    q.exclude = exclude;
    q.activations = act;
    cq_err err = {0};
    CHECKF(cq_quantize(m, &q, &err) == CQ_OK, "%s", err.msg);
    char got[256];
    quantized_names(m, got, sizeof got);
    CHECKF(!strcmp(got, want), "quantized '%s', expected '%s'", got, want);
    cq_model_free(m);
}

TST(module_quantize_fnmatch_selection) {
    const char *all_weighted = "fc,block.a,block.ab,block2.a,layer1.0.conv1";
    expect_selection(NULL, NULL, CQ_QNONE, all_weighted);
    expect_selection(NULL, NULL, CQ_QINT8, "fc,block.a,block.ab,block.norm,block2.a,layer1.0.conv1");
    expect_selection((const char *[]){"block.a", NULL}, NULL, CQ_QNONE, "block.a");
    expect_selection((const char *[]){"block*", NULL}, NULL, CQ_QNONE, "block.a,block.ab,block2.a");
    expect_selection((const char *[]){"block*", NULL}, (const char *[]){"block.a*", NULL}, CQ_QNONE, "block2.a");
    /* excluding a parent's name does not exclude its children (as quanto) */
    expect_selection(NULL, (const char *[]){"block", "layer1", NULL}, CQ_QNONE, all_weighted);
    expect_selection(NULL, (const char *[]){"block.*", "*conv*", NULL}, CQ_QNONE, "fc,block2.a");
    expect_selection((const char *[]){"block?.a", NULL}, NULL, CQ_QNONE, "block2.a");
    expect_selection((const char *[]){"block.[a]", "fc", NULL}, NULL, CQ_QNONE, "fc,block.a");
    expect_selection((const char *[]){"*.[!a]*", NULL}, NULL, CQ_QINT8, "block.norm,layer1.0.conv1");
    expect_selection((const char *[]){"FC", NULL}, NULL, CQ_QNONE, ""); /* case-sensitive */
    /* Python's fnmatchcase, not fnmatch(3): no backslash escapes (fnmatch(3) would select
     * block.a and fc), an unclosed '[' is literal, a reversed range matches nothing */
    expect_selection((const char *[]){"block\\.a", "f\\c", NULL}, NULL, CQ_QNONE, "");
    expect_selection((const char *[]){"block.[a-", "*[b-a]*", "fc[", NULL}, NULL, CQ_QNONE, "");
    expect_selection((const char *[]){"nothing", NULL}, NULL, CQ_QNONE, "");
}

TST(module_quantize_rules_and_errors) {
    cq_model *m = pattern_model();
    if (!m) return;
    cq_err err = {0};
    cq_quantize_opts q = cq_quantize_default_opts();
    q.weights = CQ_QINT4;
    q.optimizer = CQ_OPT_ABSMAX;
    CHECK(cq_quantize(m, &q, &err) == CQ_E_ARG && strstr(err.msg, "absmax"));
    q.weights = CQ_QINT8, q.optimizer = CQ_OPT_MAX;
    CHECK(cq_quantize(m, &q, &err) == CQ_E_ARG);
    q.optimizer = CQ_OPT_DEFAULT, q.activations = CQ_QINT4;
    CHECK(cq_quantize(m, &q, &err) == CQ_E_ARG && strstr(err.msg, "activations"));
    q.weights = CQ_QNONE, q.activations = CQ_QNONE;
    CHECK(cq_quantize(m, &q, &err) == CQ_E_ARG);
    char names[256];
    quantized_names(m, names, sizeof names);
    CHECK(names[0] == '\0'); /* failed calls changed nothing */

    q.weights = CQ_QINT4, q.activations = CQ_QFLOAT8;
    CHECKF(cq_quantize(m, &q, &err) == CQ_OK, "%s", err.msg);
    cq_module *root = cq_model_root(m);
    cq_module_qinfo fc = cq_module_get_qinfo(cq_module_find(root, "fc"));
    cq_module_qinfo norm = cq_module_get_qinfo(cq_module_find(root, "block.norm"));
    CHECK(fc.quantized && !fc.frozen && fc.weights == CQ_QINT4 && fc.activations == CQ_QFLOAT8_E4M3FN &&
          fc.group_size == 0 && fc.input_scale == 1.0f && fc.output_scale == 1.0f);
    CHECK(norm.quantized && norm.weights == CQ_QNONE && norm.activations == CQ_QFLOAT8_E4M3FN);
    /* a second quantize leaves quantized modules alone, as quanto does */
    q.weights = CQ_QINT8, q.activations = CQ_QNONE;
    CHECK(cq_quantize(m, &q, &err) == CQ_OK && cq_module_get_qinfo(cq_module_find(root, "fc")).weights == CQ_QINT4);
    cq_qmap *map = NULL;
    CHECK(cq_model_qmap(m, &map, &err) == CQ_OK && cq_qmap_count(map) == 6);
    int64_t i = cq_qmap_find(map, "block.norm");
    CHECK(i >= 0 && cq_qmap_weights(map, i) == CQ_QNONE && cq_qmap_activations(map, i) == CQ_QFLOAT8_E4M3FN);
    CHECK(cq_calibrate_begin(m, 1.5, &err) == CQ_E_ARG);
    cq_qmap_free(map);
    cq_model_free(m);
}

/* QUANTO-FORMAT.md 8.1: keys, dtypes and shapes of frozen modules, including the grouped and packed cases */
TST(module_state_dict_quanto_layout) {
    cq_module *root = container();
    add(root, "fc1", linear(320, 50)); /* int4, 320 -> group 64: G = 250 */
    add(root, "fc2", linear(50, 10));  /* int2, 50 -> per channel */
    add(root, "fc3", linear(288, 3));  /* int4, 288 -> group 96: G = 9 */
    cq_module *conv = NULL;
    cq_module_new_conv2d(&conv, 10, 20, 5, 5, NULL, true, NULL);
    add(root, "conv", conv); /* int4, 250 -> no group */
    add(root, "fc4", linear(16, 1)); /* int8, one output: per-tensor scale () */
    cq_module_init_params(root, 7);
    cq_model *m = NULL;
    cq_err err = {0};
    CHECK(cq_model_new(&m, "layout", root, no_forward, &err) == CQ_OK);
    cq_quantize_opts q = cq_quantize_default_opts();
    q.weights = CQ_QINT4, q.include = (const char *[]){"fc1", "fc3", "conv", NULL};
    CHECK(cq_quantize(m, &q, &err) == CQ_OK);
    q.weights = CQ_QINT2, q.include = (const char *[]){"fc2", NULL}, q.activations = CQ_QINT8;
    CHECK(cq_quantize(m, &q, &err) == CQ_OK);
    q.weights = CQ_QINT8, q.include = (const char *[]){"fc4", NULL}, q.activations = CQ_QNONE;
    CHECK(cq_quantize(m, &q, &err) == CQ_OK);
    CHECK(cq_module_get_qinfo(cq_module_find(root, "fc3")).group_size == 96);
    CHECKF(cq_freeze(m, &err) == CQ_OK, "%s", err.msg);
    cq_state_dict *sd = NULL;
    CHECKF(cq_model_state_dict(m, &sd, &err) == CQ_OK, "%s", err.msg);
    struct {
        const char *key;
        cq_dtype dt;
        int ndim;
        int64_t shape[4];
    } want[] = {
        {"fc1.weight._data._data", CQ_U8, 2, {125, 64}},   {"fc1.weight._scale", CQ_F32, 2, {250, 1}},
        {"fc1.weight._shift", CQ_F32, 2, {250, 1}},        {"fc1.bias", CQ_F32, 1, {50}},
        {"fc1.input_scale", CQ_F32, 0, {0}},               {"fc1.output_scale", CQ_F32, 0, {0}},
        {"fc2.weight._data._data", CQ_U8, 2, {3, 50}},     {"fc2.weight._scale", CQ_F32, 2, {10, 1}},
        {"fc2.weight._shift", CQ_F32, 2, {10, 1}},         {"fc3.weight._data._data", CQ_U8, 2, {5, 96}},
        {"fc3.weight._scale", CQ_F32, 2, {9, 1}},          {"conv.weight._data._data", CQ_U8, 4, {10, 10, 5, 5}},
        {"conv.weight._scale", CQ_F32, 4, {20, 1, 1, 1}},  {"conv.weight._shift", CQ_F32, 4, {20, 1, 1, 1}},
        {"fc4.weight._data", CQ_I8, 2, {1, 16}},           {"fc4.weight._scale", CQ_F32, 0, {0}},
    };
    for (size_t i = 0; sd && i < sizeof want / sizeof want[0]; i++) {
        const cq_tensor *t = cq_state_dict_find(sd, want[i].key);
        bool ok = t && t->dtype == want[i].dt && t->ndim == want[i].ndim;
        for (int d = 0; ok && d < want[i].ndim; d++) ok = t->shape[d] == want[i].shape[d];
        char buf[64];
        CHECKF(ok, "%s: %s %s", want[i].key, t ? cq_dtype_name(t->dtype) : "missing",
               t ? cq_shape_str(t->ndim, t->shape, buf, sizeof buf) : "");
    }
    CHECK(cq_state_dict_count(sd) == 6 + 6 + 6 + 6 + 5);
    CHECK(!cq_state_dict_find(sd, "fc1.weight"));
    CHECK(cq_model_weight_bytes(m) == 125 * 64 + 2 * 250 * 4 + 3 * 50 + 2 * 10 * 4 + 5 * 96 + 2 * 9 * 4 +
                                          10 * 250 + 2 * 20 * 4 + 16 + 4);
    cq_state_dict_free(sd);
    cq_model_free(m);
}

static cq_model *small_float_model(void) {
    cq_model *m = NULL;
    cq_module *root = container();
    add(root, "fc1", linear(4, 3));
    cq_module *bn = NULL;
    cq_module_new_batch_norm2d(&bn, 3, 1e-5f, 0.1f, true, NULL);
    add(root, "bn", bn);
    cq_module_init_params(root, 1);
    CHECK(cq_model_new(&m, "small", root, no_forward, NULL) == CQ_OK);
    return m;
}

/* Loads sd into a fresh small model and checks the status and message. */
static void expect_load(const cq_state_dict *sd, const cq_load_opts *opts, cq_status want, const char *needle) {
    cq_model *m = small_float_model();
    if (!m) return;
    cq_err err = {0};
    float before = cq_var_f32(cq_module_param(cq_module_find(cq_model_root(m), "fc1"), "weight"))[0];
    cq_status s = cq_model_load_state_dict(m, sd, opts, "test.safetensors", &err);
    CHECKF(s == want && (!needle || strstr(err.msg, needle)), "status %d (%s), wanted %d with '%s'", s, err.msg, want,
           needle ? needle : "");
    if (s) /* nothing changed */
        CHECK(cq_var_f32(cq_module_param(cq_module_find(cq_model_root(m), "fc1"), "weight"))[0] == before);
    cq_model_free(m);
}

/* A copy of sd with key `drop` left out, `add_key` added (F32 [1]) and `replace` given tensor t. */
static cq_state_dict *edited(const cq_state_dict *sd, const char *drop, const char *add_key, const char *replace,
                             cq_tensor *t) {
    cq_state_dict *out = NULL;
    cq_state_dict_new(&out, NULL);
    for (int64_t i = 0; i < cq_state_dict_count(sd); i++) {
        const char *k = cq_state_dict_key(sd, i);
        if (drop && !strcmp(k, drop)) continue;
        cq_tensor *c = NULL;
        if (replace && !strcmp(k, replace)) c = t, t = NULL;
        else cq_tensor_clone(&c, cq_state_dict_tensor(sd, i), NULL);
        cq_state_dict_add(out, k, c, NULL);
    }
    if (add_key) {
        cq_tensor *x = NULL;
        cq_tensor_new(&x, CQ_F32, 1, (int64_t[]){1}, NULL);
        cq_state_dict_add(out, add_key, x, NULL);
    }
    cq_tensor_free(t);
    return out;
}

TST(module_state_dict_load_errors) {
    cq_model *src = small_float_model();
    cq_state_dict *sd = NULL;
    cq_err err = {0};
    if (!src || cq_model_state_dict(src, &sd, &err)) {
        CHECKF(0, "%s", err.msg);
        cq_model_free(src);
        return;
    }
    const char *keys[] = {"fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                          "bn.num_batches_tracked"};
    CHECK(cq_state_dict_count(sd) == 7);
    for (int i = 0; i < 7; i++) CHECKF(!strcmp(cq_state_dict_key(sd, i), keys[i]), "key %d", i);
    CHECK(cq_state_dict_tensor(sd, 6)->dtype == CQ_I64 && cq_state_dict_tensor(sd, 6)->ndim == 0);
    expect_load(sd, NULL, CQ_OK, NULL);

    cq_state_dict *e = edited(sd, "fc1.bias", NULL, NULL, NULL);
    expect_load(e, NULL, CQ_E_NOTFOUND, "missing key 'fc1.bias' in test.safetensors");
    cq_load_opts lax = cq_load_default_opts();
    lax.strict = false;
    expect_load(e, &lax, CQ_OK, NULL);
    cq_state_dict_free(e);

    e = edited(sd, NULL, "fc3.weight", NULL, NULL);
    expect_load(e, NULL, CQ_E_FORMAT, "unexpected key 'fc3.weight'");
    expect_load(e, &lax, CQ_OK, NULL);
    cq_state_dict_free(e);

    cq_tensor *wrong = NULL;
    cq_tensor_new(&wrong, CQ_F32, 2, (int64_t[]){3, 5}, NULL);
    e = edited(sd, NULL, NULL, "fc1.weight", wrong);
    expect_load(e, NULL, CQ_E_SHAPE, "fc1.weight: shape [3, 4] in the model, [3, 5] in test.safetensors");
    cq_state_dict_free(e);

    cq_tensor *half = NULL;
    cq_tensor_new(&half, CQ_F16, 1, (int64_t[]){3}, NULL);
    for (int i = 0; i < 3; i++) ((uint16_t *)half->data)[i] = cq_f32_to_f16(0.5f * (float)i);
    e = edited(sd, NULL, NULL, "fc1.bias", half);
    expect_load(e, NULL, CQ_E_DTYPE, "fc1.bias: dtype F32 in the model, F16 in test.safetensors");
    cq_load_opts convert = cq_load_default_opts();
    convert.convert_dtypes = true;
    cq_model *m = small_float_model();
    CHECK(m && cq_model_load_state_dict(m, e, &convert, "x", &err) == CQ_OK &&
          cq_var_f32(cq_module_param(cq_module_find(cq_model_root(m), "fc1"), "bias"))[2] == 1.0f);
    cq_model_free(m);
    cq_state_dict_free(e);

    /* the bundled LeNet file is not this model's */
    m = small_float_model();
    CHECK(cq_model_load_safetensors(m, "data/lenet_mnist.safetensors", &err) == CQ_E_SHAPE &&
          strstr(err.msg, "fc1.weight: shape [3, 4] in the model, [50, 320] in data/lenet_mnist.safetensors"));
    CHECK(cq_model_load_safetensors(m, "/nonexistent.safetensors", &err) != CQ_OK);
    cq_model_free(m);

    /* through a file and back */
    char path[] = "/tmp/cqsdXXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        close(fd);
        cq_state_dict *back = NULL;
        CHECK(cq_state_dict_save_safetensors(sd, path, &err) == CQ_OK &&
              cq_state_dict_load_safetensors(path, &back, &err) == CQ_OK && cq_state_dict_count(back) == 7);
        expect_load(back, NULL, CQ_OK, NULL);
        cq_state_dict_free(back);
        remove(path);
    }
    cq_state_dict_free(sd);
    cq_model_free(src);
}

TST(module_requantize_errors) {
    cq_err err = {0};
    cq_model *m = NULL;
    CHECK(cq_lenet_new(&m, &err) == CQ_OK);
    /* the mixed quanto checkpoint names fc2, which the small model lacks */
    cq_model *small = small_float_model();
    CHECK(cq_model_requantize(small, "tests/data/lenet_ref/quanto_mixed", &err) == CQ_E_NOTFOUND &&
          strstr(err.msg, "conv1"));
    CHECK(cq_model_requantize(m, "/nonexistent", &err) != CQ_OK);
    CHECK(cq_model_requantize(m, "tests/data/lenet_ref/quanto_mixed", &err) == CQ_OK);
    CHECK(cq_model_requantize(m, "tests/data/lenet_ref/quanto_mixed", &err) == CQ_E_ARG); /* already quantized */
    /* a map naming a module that cannot be quantized fails before anything changes */
    char dir[] = "/tmp/cqrqXXXXXX";
    cq_qmap *map = NULL;
    char *path = NULL;
    if (mkdtemp(dir) && (path = cq_path_join(dir, "quanto_qmap.json")) && cq_qmap_new(&map, &err) == CQ_OK &&
        cq_qmap_set(map, "fc1", CQ_QINT8, CQ_QNONE, &err) == CQ_OK &&
        cq_qmap_set(map, "bn", CQ_QINT8, CQ_QNONE, &err) == CQ_OK && cq_qmap_save(map, path, &err) == CQ_OK) {
        CHECK(cq_model_requantize(small, dir, &err) == CQ_E_UNSUPPORTED && strstr(err.msg, "BatchNorm2d"));
        CHECK(!cq_module_get_qinfo(cq_module_find(cq_model_root(small), "fc1")).quantized);
    }
    cq_qmap_free(map);
    free(path);
    cq_fs_remove_tree(dir, NULL);
    cq_model_free(small);
    cq_model_free(m);
}

/* Fills a var with values in [lo, hi) from a seed. */
static void fill_uniform(cq_var *v, uint64_t seed, float lo, float hi) {
    for (int64_t i = 0; i < cq_var_numel(v); i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        cq_var_f32(v)[i] = lo + (hi - lo) * (float)(seed >> 40) / 16777216.0f;
    }
}

static bool forward_once(cq_model *m, const cq_tensor *x, float *out, int64_t n) {
    cq_err err = {0};
    cq_tape *t = NULL;
    cq_var *in = NULL, *y = NULL;
    bool ok = cq_tape_new(&t, &err) == CQ_OK;
    if (ok) cq_tape_set_grad_enabled(t, false);
    ok = ok && cq_tape_input(t, x, &in, &err) == CQ_OK && cq_model_forward(m, t, in, &y, &err) == CQ_OK &&
         cq_var_numel(y) == n;
    if (ok) memcpy(out, cq_var_f32(y), (size_t)n * sizeof *out);
    CHECKF(ok, "forward: %s", err.msg);
    cq_tape_free(t);
    return ok;
}

TST(module_fold_conv_bn_relu) {
    cq_err err = {0};
    cq_module *seq = NULL, *conv = NULL, *bn = NULL, *relu = NULL;
    cq_conv2d_opts o = cq_conv2d_default_opts();
    o.padding[0] = o.padding[1] = 1;
    o.stride[0] = 2;
    cq_module_new_sequential(&seq, &err);
    cq_module_new_conv2d(&conv, 3, 4, 3, 3, &o, false, &err);
    cq_module_new_batch_norm2d(&bn, 4, 1e-3f, 0.1f, true, &err);
    cq_module_new_simple(&relu, CQ_MODULE_RELU, &err);
    add(seq, "conv", conv);
    add(seq, "bn", bn);
    add(seq, "relu", relu);
    cq_model *m = NULL;
    CHECK(cq_model_new(&m, "convbn", seq, NULL, &err) == CQ_OK);
    if (!m) return;
    cq_module_init_params(seq, 3);
    fill_uniform(cq_module_param(bn, "weight"), 1, 0.5f, 1.5f);
    fill_uniform(cq_module_param(bn, "bias"), 2, -0.5f, 0.5f);
    fill_uniform(cq_module_param(bn, "running_mean"), 3, -0.2f, 0.2f);
    fill_uniform(cq_module_param(bn, "running_var"), 4, 0.5f, 2.0f);
    float xs[2 * 3 * 7 * 6];
    cq_tensor x = {.dtype = CQ_F32, .ndim = 4, .shape = {2, 3, 7, 6}, .data = xs};
    for (int i = 0; i < 2 * 3 * 7 * 6; i++) xs[i] = sinf(0.37f * (float)i);
    enum { N = 2 * 4 * 4 * 6 };
    float before[N], after[N];
    CHECK(cq_fold_conv_bn(m, "conv", "bn", "relu", &err) == CQ_E_ARG && strstr(err.msg, "training")); /* new modules train */
    cq_model_set_training(m, false);
    CHECK(forward_once(m, &x, before, N));
    CHECK(cq_fold_conv_bn(m, "bn", "conv", NULL, &err) == CQ_E_ARG);
    CHECK(cq_fold_conv_bn(m, "conv", "nope", NULL, &err) == CQ_E_NOTFOUND);
    CHECKF(cq_fold_conv_bn(m, "conv", "bn", "relu", &err) == CQ_OK, "%s", err.msg);
    CHECK(cq_module_get_kind(bn) == CQ_MODULE_IDENTITY && cq_module_get_kind(relu) == CQ_MODULE_IDENTITY);
    CHECK(forward_once(m, &x, after, N));
    double worst = 0, scale = 0;
    int negatives = 0;
    for (int i = 0; i < N; i++) {
        worst = fmax(worst, fabs(before[i] - after[i]));
        scale = fmax(scale, fabs(before[i]));
        negatives += after[i] < 0;
    }
    CHECKF(worst <= 1e-5 * scale && scale > 0.1, "folded output differs by %g (scale %g)", worst, scale);
    CHECK(negatives == 0);
    cq_state_dict *sd = NULL;
    CHECK(cq_model_state_dict(m, &sd, &err) == CQ_OK && cq_state_dict_count(sd) == 2 &&
          cq_state_dict_find(sd, "conv.weight") && cq_state_dict_find(sd, "conv.bias"));
    cq_state_dict_free(sd);
    CHECK(cq_fold_conv_bn(m, "conv", "bn", NULL, &err) == CQ_E_ARG); /* bn is gone */
    cq_model_free(m);
}

static float target_fn(const float *x) { return x[0] - 0.5f * x[1] + x[2] * x[3] > 0 ? 1.0f : 0.0f; }

/* A whole QAT loop: quantize (int4 weights, int8 activations), calibrate, train with Adam
 * through the straight-through weights, freeze, save, requantize. Under `make asan` the
 * harness's leak check covers every allocation made here. */
TST(module_qat_training_loop_leak_free) {
    cq_err err = {0};
    cq_model *m = NULL, *re = NULL;
    const int64_t sizes[] = {8, 32, 2};
    CHECK(cq_mlp_new(&m, 2, sizes, 11, &err) == CQ_OK);
    if (!m) return;
    cq_quantize_opts q = cq_quantize_default_opts();
    q.weights = CQ_QINT4, q.activations = CQ_QINT8;
    CHECK(cq_quantize(m, &q, &err) == CQ_OK);
    enum { B = 64 };
    float xs[B * 8];
    int64_t ys[B];
    cq_tensor x = {.dtype = CQ_F32, .ndim = 2, .shape = {B, 8}, .data = xs};
    cq_var *params[8];
    int n = cq_model_parameters(m, params, 8);
    cq_optim_opts oo = cq_optim_default_opts(CQ_OPTIM_ADAM);
    oo.lr = 0.01f;
    cq_optim *opt = NULL;
    cq_tape *t = NULL;
    CHECK(n == 4 && cq_optim_new(&opt, &oo, params, n, &err) == CQ_OK && cq_tape_new(&t, &err) == CQ_OK);
    float first = 0, last = 0;
    uint64_t seed = 5;
    size_t tape_bytes = 0;
    for (int step = 0; opt && t && step < 60; step++) {
        for (int i = 0; i < B * 8; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            xs[i] = (float)(seed >> 40) / 8388608.0f - 1.0f;
        }
        for (int i = 0; i < B; i++) ys[i] = (int64_t)target_fn(xs + 8 * i);
        if (step == 0) CHECK(cq_calibrate_begin(m, 0.9, &err) == CQ_OK);
        cq_var *in = NULL, *out = NULL, *loss = NULL;
        cq_optim_zero_grad(opt);
        bool ok = cq_tape_input(t, &x, &in, &err) == CQ_OK && cq_model_forward(m, t, in, &out, &err) == CQ_OK &&
                  cq_cross_entropy(t, out, ys, &loss, &err) == CQ_OK && cq_backward(t, loss, &err) == CQ_OK &&
                  cq_optim_step(opt, &err) == CQ_OK;
        if (step == 0) cq_calibrate_end(m);
        if (!ok) {
            CHECKF(0, "step %d: %s", step, err.msg);
            break;
        }
        if (step == 0) first = cq_var_f32(loss)[0];
        if (step >= 50) last += cq_var_f32(loss)[0] / 10.0f;
        if (step == 1) tape_bytes = cq_tape_bytes(t);
        if (step == 59) CHECKF(cq_tape_bytes(t) == tape_bytes, "tape grew from %zu to %zu", tape_bytes, cq_tape_bytes(t));
        cq_tape_reset(t);
    }
    CHECKF(last < 0.8f * first, "loss %g -> %g", first, last);
    CHECK(cq_module_param(cq_module_find(cq_model_root(m), "layers.0"), "weight")->grad != NULL);
    cq_optim_free(opt);
    char dir[] = "/tmp/cqqatXXXXXX";
    bool ok = mkdtemp(dir) && cq_freeze(m, &err) == CQ_OK && cq_model_save(m, dir, &err) == CQ_OK &&
              cq_mlp_new(&re, 2, sizes, 99, &err) == CQ_OK && cq_model_requantize(re, dir, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    float a[B * 2], b[B * 2];
    if (ok && forward_once(m, &x, a, B * 2) && forward_once(re, &x, b, B * 2)) CHECK_BYTES(a, b, sizeof a, "reloaded");
    cq_fs_remove_tree(dir, NULL);
    cq_tape_free(t);
    cq_model_free(re);
    cq_model_free(m);
}
