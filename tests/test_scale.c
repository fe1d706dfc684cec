/*
 * test_scale.c - cost grows linearly with the number of tensors, modules and keys. Each test
 * builds its input in memory or in a temporary folder (nothing big is committed) at a size where
 * a per-item linear scan (quadratic in all) would take minutes, and checks that it takes seconds.
 * Costs are CPU seconds; the bound is generous (the sanitizers) yet far below the quadratic cost.
 */
#include "test_io_util.h"

#include <time.h>

/* The sanitizers make each item several times dearer: there the sizes shrink tenfold (memory
 * safety is what those runs check; the release suite checks the cost). */
#if defined(__SANITIZE_ADDRESS__)
enum { MANY_TENSORS = 10000, MANY_ENTRIES = 100000 };
#else
enum { MANY_TENSORS = 100000, MANY_ENTRIES = 1000000 };
#endif
#define SECONDS_BOUND 30.0

/* CPU seconds of the process (all threads): what the work costs, whatever else the machine runs. */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* n tiny Linear weights "layers.<i>.weight" [2, 4] F32 in dir/model.safetensors. */
static cq_status write_many_linears(const char *dir, int64_t n, cq_err *err) {
    char *path = cq_path_join(dir, "model.safetensors");
    cq_st_writer *w = NULL;
    cq_status s = cq_st_writer_open(path, &w, err);
    char name[64];
    const int64_t shape[2] = {2, 4};
    for (int64_t i = 0; !s && i < n; i++) {
        snprintf(name, sizeof name, "layers.%lld.weight", (long long)i);
        s = cq_st_writer_declare(w, name, CQ_F32, 2, shape, err);
    }
    const float values[8] = {0.5f, -1, 2, 0.25f, 1, 3, -2, 0.125f};
    for (int64_t i = 0; !s && i < n; i++) {
        snprintf(name, sizeof name, "layers.%lld.weight", (long long)i);
        s = cq_st_writer_write(w, name, values, sizeof values, err);
    }
    if (!s) s = cq_st_writer_commit(w, err);
    cq_st_writer_free(w);
    free(path);
    return s;
}

TST(scale_100k_tensors_quantize_dequantize_report) {
    /* The input is the file: an output inside the input folder would be refused. */
    char *dir = io_tmpdir(), *in = cq_path_join(dir, "model.safetensors"), *out = cq_path_join(dir, "q"),
         *back = cq_path_join(dir, "back.safetensors");
    cq_err err = {0};
    double t0 = now();
    CHECKF(write_many_linears(dir, MANY_TENSORS, &err) == CQ_OK, "%s", err.msg);
    double t_write = now() - t0;
    cq_convert_opts o = cq_convert_default_opts();
    cq_convert_stats st;
    t0 = now();
    CHECKF(cq_convert_quantize(in, out, &o, &st, &err) == CQ_OK, "%s", err.msg);
    double t_quant = now() - t0;
    CHECK(st.modules == MANY_TENSORS && st.tensors == MANY_TENSORS);
    t0 = now();
    CHECKF(cq_convert_dequantize(out, back, &o, &st, &err) == CQ_OK, "%s", err.msg);
    double t_deq = now() - t0;
    CHECK(st.modules == MANY_TENSORS);
    cq_report *r = NULL;
    t0 = now();
    CHECKF(cq_report_build(dir, out, &o, &r, &err) == CQ_OK, "%s", err.msg);
    double t_report = now() - t0;
    CHECK(cq_report_count(r) == MANY_TENSORS);
    cq_report_free(r);
    printf("  %d tensors: write %.2f s, quantize %.2f s, dequantize %.2f s, report %.2f s\n", MANY_TENSORS, t_write,
           t_quant, t_deq, t_report);
    CHECKF(t_write < SECONDS_BOUND && t_quant < SECONDS_BOUND && t_deq < SECONDS_BOUND && t_report < SECONDS_BOUND,
           "write %.1f s, quantize %.1f s, dequantize %.1f s, report %.1f s", t_write, t_quant, t_deq, t_report);
    free(in);
    free(out);
    free(back);
    io_rmtree(dir);
}

TST(scale_1m_entry_qmap_set_write_parse) {
    cq_err err = {0};
    cq_qmap *m = NULL;
    char name[64];
    double t0 = now();
    CHECK(cq_qmap_new(&m, &err) == CQ_OK);
    cq_status s = CQ_OK;
    for (int64_t i = 0; m && !s && i < MANY_ENTRIES; i++) {
        snprintf(name, sizeof name, "model.layers.%lld.proj", (long long)i);
        s = cq_qmap_set(m, name, i % 2 ? CQ_QINT4 : CQ_QINT8, CQ_QNONE, &err);
    }
    CHECKF(s == CQ_OK, "%s", err.msg);
    /* Setting a module again replaces its entry. */
    CHECK(cq_qmap_set(m, "model.layers.7.proj", CQ_QINT2, CQ_QINT8, &err) == CQ_OK && cq_qmap_count(m) == MANY_ENTRIES);
    char *text = NULL;
    CHECK(cq_qmap_to_json(m, &text, &err) == CQ_OK);
    double t_build = now() - t0;
    cq_qmap *back = NULL;
    t0 = now();
    CHECKF(text && cq_qmap_parse(text, strlen(text), "big map", &back, &err) == CQ_OK, "%s", err.msg);
    double t_parse = now() - t0;
    CHECK(cq_qmap_count(back) == MANY_ENTRIES);
    snprintf(name, sizeof name, "model.layers.%d.proj", MANY_ENTRIES - 1);
    int64_t i7 = cq_qmap_find(back, "model.layers.7.proj"), last = cq_qmap_find(back, name);
    CHECK(i7 == 7 && cq_qmap_weights(back, i7) == CQ_QINT2 && cq_qmap_activations(back, i7) == CQ_QINT8);
    CHECK(last == MANY_ENTRIES - 1 && cq_qmap_weights(back, last) == CQ_QINT4);
    snprintf(name, sizeof name, "model.layers.%d.proj", MANY_ENTRIES);
    CHECK(cq_qmap_find(back, name) == -1);
    printf("  %d-entry map: set + write %.2f s, parse %.2f s\n", MANY_ENTRIES, t_build, t_parse);
    CHECKF(t_build < SECONDS_BOUND && t_parse < SECONDS_BOUND, "set + write %.1f s, parse %.1f s", t_build, t_parse);
    free(text);
    cq_qmap_free(back);
    cq_qmap_free(m);
}

/* A model whose root (a Sequential) holds 100k Linear children: adding, finding by name, walking, and the state
 * dict round trip by key. */
TST(scale_100k_modules_tree_and_state_dict) {
    cq_err err = {0};
    cq_module *root = NULL;
    char name[64];
    double t0 = now();
    CHECK(cq_module_new_sequential(&root, &err) == CQ_OK);
    cq_status s = CQ_OK;
    for (int64_t i = 0; root && !s && i < MANY_TENSORS; i++) {
        cq_module *lin = NULL;
        snprintf(name, sizeof name, "l%lld", (long long)i);
        s = cq_module_new_linear(&lin, 2, 2, false, &err);
        if (!s) s = cq_module_add(root, name, lin, &err); /* takes lin, also on failure */
    }
    CHECKF(s == CQ_OK, "%s", err.msg);
    cq_model *model = NULL;
    CHECKF(cq_model_new(&model, "Many", root, NULL, &err) == CQ_OK, "%s", err.msg);
    int64_t found = 0, walked = 0;
    for (int64_t i = 0; model && i < MANY_TENSORS; i++) {
        snprintf(name, sizeof name, "l%lld", (long long)i);
        cq_module *m = cq_module_find(root, name);
        found += m && !strcmp(cq_module_name(m), name);
    }
    for (cq_module *m = root; model && m; m = cq_module_next(root, m)) walked++;
    CHECK(found == MANY_TENSORS && walked == MANY_TENSORS + 1 && cq_module_find(root, "l-1") == NULL);
    cq_state_dict *sd = NULL;
    CHECKF(model && cq_model_state_dict(model, &sd, &err) == CQ_OK, "%s", err.msg);
    CHECK(cq_state_dict_count(sd) == MANY_TENSORS && cq_state_dict_find(sd, "l9999.weight") != NULL);
    CHECKF(model && cq_model_load_state_dict(model, sd, NULL, "its own state", &err) == CQ_OK, "%s", err.msg);
    double t = now() - t0;
    printf("  %d modules: build, find, walk, state dict and load %.2f s\n", MANY_TENSORS, t);
    CHECKF(t < SECONDS_BOUND, "%.1f s", t);
    cq_state_dict_free(sd);
    cq_model_free(model); /* it owns root, also when cq_model_new failed */
}
