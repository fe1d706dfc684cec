/*
 * test_workflow_quanto.c - cquanto's checkpoints against optimum-quanto 0.2.7's own, made by
 * tools/gen_lenet_ref.py from the bundled LeNet: the same quantization gives the same keys,
 * dtypes, shapes and bytes in model.safetensors and the same quanto_qmap.json text; calibrated
 * activation scales agree; and requantize reads quanto's files.
 */
#include "tst.h"

#include "cquanto.h"
#include "cquanto/experimental.h"

#include <math.h>
#include <stdlib.h>

#define LENET "data/lenet_mnist.safetensors"
#define MIXED_DIR "tests/data/lenet_ref/quanto_mixed"
#define W8A8_DIR "tests/data/lenet_ref/quanto_w8a8"

static cq_model *float_lenet(void) {
    cq_err err = {0};
    cq_model *m = NULL;
    if (cq_lenet_new(&m, &err) || cq_model_load_safetensors(m, LENET, &err)) {
        CHECKF(0, "%s", err.msg);
        cq_model_free(m);
        return NULL;
    }
    return m;
}

/* conv1 qfloat8, conv2 and fc1 qint4, fc2 qint2, as the generator quantizes. */
static bool quantize_mixed(cq_model *m, cq_err *err) {
    cq_quantize_opts q = cq_quantize_default_opts();
    const char *conv1[] = {"conv1", NULL}, *int4[] = {"conv2", "fc1", NULL}, *fc2[] = {"fc2", NULL};
    q.weights = CQ_QFLOAT8, q.include = conv1;
    if (cq_quantize(m, &q, err)) return false;
    q.weights = CQ_QINT4, q.include = int4;
    if (cq_quantize(m, &q, err)) return false;
    q.weights = CQ_QINT2, q.include = fc2;
    return cq_quantize(m, &q, err) == CQ_OK;
}

/* Every tensor of quanto's file equals ours bit for bit, except the keys in `skip`; returns how
 * many keys matched. Extra keys on our side fail. */
static int compare_with_file(const cq_model *m, const char *path, const char *const *skip) {
    cq_err err = {0};
    cq_st_file *f = NULL;
    cq_state_dict *sd = NULL;
    int matched = 0;
    if (cq_st_open(path, &f, &err) || cq_model_state_dict(m, &sd, &err)) {
        CHECKF(0, "%s", err.msg);
        goto done;
    }
    CHECKF(cq_st_count(f) == cq_state_dict_count(sd), "%lld keys in %s, %lld in ours", (long long)cq_st_count(f), path,
           (long long)cq_state_dict_count(sd));
    for (int64_t i = 0; i < cq_st_count(f); i++) {
        const char *key = cq_st_name(f, i);
        bool skipped = false;
        for (const char *const *s = skip; s && *s; s++) skipped |= !strcmp(*s, key);
        if (skipped) continue;
        const cq_tensor *theirs = cq_st_tensor(f, i), *ours = cq_state_dict_find(sd, key);
        if (!ours) {
            CHECKF(0, "we have no '%s'", key);
            continue;
        }
        char a[64], b[64];
        CHECKF(ours->dtype == theirs->dtype && cq_tensor_same_shape(ours, theirs), "%s: %s %s vs quanto's %s %s", key,
               cq_dtype_name(ours->dtype), cq_shape_str(ours->ndim, ours->shape, a, sizeof a),
               cq_dtype_name(theirs->dtype), cq_shape_str(theirs->ndim, theirs->shape, b, sizeof b));
        if (ours->dtype == theirs->dtype && cq_tensor_same_shape(ours, theirs) &&
            CHECK_BYTES(ours->data, theirs->data, cq_tensor_nbytes(ours), key))
            matched++;
    }
done:
    cq_state_dict_free(sd);
    cq_st_close(f);
    return matched;
}

TST(workflow_quanto_weight_checkpoint_matches) {
    cq_model *m = float_lenet();
    if (!m) return;
    cq_err err = {0};
    bool ok = quantize_mixed(m, &err) && cq_freeze(m, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    CHECK(compare_with_file(m, MIXED_DIR "/model.safetensors", NULL) == 23);
    /* the quantization map, byte for byte as json.dump(indent=4) wrote it */
    cq_qmap *map = NULL;
    char *ours = NULL, *theirs = NULL;
    size_t n = 0;
    ok = cq_model_qmap(m, &map, &err) == CQ_OK && cq_qmap_to_json(map, &ours, &err) == CQ_OK &&
         cq_fs_read_file(MIXED_DIR "/quanto_qmap.json", 1 << 20, &theirs, &n, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    if (ok) CHECKF(strlen(ours) == n && !memcmp(ours, theirs, n), "ours:\n%s\nquanto's:\n%s", ours, theirs);
    free(ours);
    free(theirs);
    cq_qmap_free(map);
    cq_model_free(m);
}

TST(workflow_quanto_w8a8_calibration_matches) {
    cq_model *m = float_lenet();
    cq_dataset *ds = NULL;
    cq_err err = {0};
    if (!m) return;
    cq_quantize_opts q = cq_quantize_default_opts();
    q.activations = CQ_QINT8;
    /* quanto's Calibration() over one batch: the first 250 images */
    bool ok = cq_dataset_load_mnist(&ds, "data/mnist-t10k-images-idx3-ubyte.gz",
                                    "data/mnist-t10k-labels-idx1-ubyte.gz", &err) == CQ_OK &&
              cq_quantize(m, &q, &err) == CQ_OK && cq_model_calibrate(m, ds, 0, 250, 250, 0.9, &err) == CQ_OK &&
              cq_freeze(m, &err) == CQ_OK;
    CHECKF(ok, "%s", err.msg);
    /* Weights and biases are bit-identical; the scales come from float convolutions and matmuls
     * whose summation order differs from PyTorch's, so they agree to a few ulps. fc2's input
     * scale differs by design: quanto adopts fc1's output scale because fc1's quantized output
     * reaches fc2 through relu unchanged, cquanto calibrates fc2's input itself
     * (docs/WORKFLOW.md). */
    const char *scales[] = {"conv1.input_scale", "conv1.output_scale", "conv2.input_scale", "conv2.output_scale",
                            "fc1.input_scale",   "fc1.output_scale",   "fc2.input_scale",   "fc2.output_scale",
                            NULL};
    CHECK(compare_with_file(m, W8A8_DIR "/model.safetensors", scales) == 12);
    cq_st_file *f = NULL;
    cq_state_dict *sd = NULL;
    if (ok && cq_st_open(W8A8_DIR "/model.safetensors", &f, &err) == CQ_OK && cq_model_state_dict(m, &sd, &err) == CQ_OK) {
        for (int i = 0; scales[i]; i++) {
            const cq_tensor *theirs = NULL, *ours = cq_state_dict_find(sd, scales[i]);
            if (cq_st_get(f, scales[i], &theirs, &err) || !ours) {
                CHECKF(0, "%s", scales[i]);
                continue;
            }
            float a = *(const float *)ours->data, b = *(const float *)theirs->data;
            if (!strcmp(scales[i], "fc2.input_scale")) /* absmax(relu(y)) <= absmax(y) */
                CHECKF(a <= b && a > 0.5f * b, "%s: ours %.9g, quanto %.9g", scales[i], a, b);
            else if (!strcmp(scales[i], "fc2.output_scale")) /* fed by the input quantized differently */
                CHECKF(fabs(a - b) <= 1e-2 * fabs(b), "%s: ours %.9g, quanto %.9g", scales[i], a, b);
            else
                CHECKF(fabs(a - b) <= 1e-5 * fabs(b), "%s: ours %.9g, quanto %.9g", scales[i], a, b);
        }
    }
    cq_state_dict_free(sd);
    cq_st_close(f);
    cq_dataset_free(ds);
    cq_model_free(m);
}

TST(workflow_quanto_requantize_reads_quanto_checkpoint) {
    cq_err err = {0};
    cq_model *m = NULL;
    CHECKF(cq_lenet_new(&m, &err) == CQ_OK && cq_model_requantize(m, MIXED_DIR, &err) == CQ_OK, "%s", err.msg);
    if (!m) return;
    cq_module_qinfo fc1 = cq_module_get_qinfo(cq_module_find(cq_model_root(m), "fc1"));
    CHECK(fc1.frozen && fc1.weights == CQ_QINT4 && fc1.group_size == 64);
    CHECK(cq_module_get_qinfo(cq_module_find(cq_model_root(m), "conv1")).weights == CQ_QFLOAT8_E4M3FN);
    CHECK(compare_with_file(m, MIXED_DIR "/model.safetensors", NULL) == 23);
    /* the same weights quantized here give the same outputs */
    cq_model *ours = float_lenet();
    cq_dataset *ds = NULL;
    int64_t a = -1, b = -2;
    bool ok = ours && quantize_mixed(ours, &err) && cq_freeze(ours, &err) == CQ_OK &&
              cq_dataset_load_mnist(&ds, "data/mnist-t10k-images-idx3-ubyte.gz", "data/mnist-t10k-labels-idx1-ubyte.gz",
                                    &err) == CQ_OK &&
              cq_model_evaluate(m, ds, 5000, 5000, 500, &a, NULL, &err) == CQ_OK &&
              cq_model_evaluate(ours, ds, 5000, 5000, 500, &b, NULL, &err) == CQ_OK;
    CHECKF(ok && a == b && a > 4800, "%s (%lld vs %lld)", err.msg, (long long)a, (long long)b);
    cq_dataset_free(ds);
    cq_model_free(ours);
    cq_model_free(m);
}
