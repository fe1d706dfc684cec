/* test_core.c - the tensor descriptor and error record. */
#include "tst.h"
#include "cquanto.h"
#include "core/strmap.h"

TST(core_tensor_new_and_shape) {
    cq_err err = {0};
    cq_tensor *t = NULL;
    int64_t shape[2] = {3, 5};
    CHECK(cq_tensor_new(&t, CQ_F32, 2, shape, &err) == CQ_OK);
    CHECK(t && cq_tensor_numel(t) == 15 && cq_tensor_nbytes(t) == 60);
    CHECK(((uintptr_t)t->data & 63) == 0);
    char buf[64];
    CHECK(strcmp(cq_shape_str(2, shape, buf, sizeof buf), "[3, 5]") == 0);
    cq_tensor_free(t);
}

TST(core_tensor_rejects_bad_shapes) {
    cq_err err = {0};
    cq_tensor *t = NULL;
    int64_t neg[1] = {-1};
    CHECK(cq_tensor_new(&t, CQ_F32, 1, neg, &err) == CQ_E_SHAPE && t == NULL);
    int64_t huge[3] = {INT64_MAX / 2, 4, 4};
    CHECK(cq_tensor_new(&t, CQ_F32, 3, huge, &err) == CQ_E_OVERFLOW && t == NULL);
    CHECK(strstr(err.msg, "overflow") != NULL);
}

TST(core_err_prefix) {
    cq_err err = {0};
    cq_status s = cq_err_set(&err, CQ_E_NOTFOUND, "no tensor '%s'", "fc1.weight");
    CHECK(cq_err_prefix(&err, s, "loading %s: ", "model.safetensors") == CQ_E_NOTFOUND);
    CHECK(strcmp(err.msg, "loading model.safetensors: no tensor 'fc1.weight'") == 0);
    /* without a record the status still comes back unchanged */
    CHECK(cq_err_prefix(NULL, CQ_E_SHAPE, "loading %s: ", "x") == CQ_E_SHAPE);
}

TST(core_dtype_names_round_trip) {
    for (int t = CQ_DTYPE_INVALID + 1; t < CQ_DTYPE_COUNT; t++)
        CHECKF(cq_dtype_from_name(cq_dtype_name((cq_dtype)t)) == (cq_dtype)t, "dtype %d", t);
    CHECK(cq_dtype_from_name("F8_E4M3") == CQ_F8_E4M3FN);
    CHECK(cq_dtype_from_name("f32") == CQ_DTYPE_INVALID);
    CHECK(cq_dtype_size(CQ_BF16) == 2 && cq_dtype_size(CQ_I64) == 8 && cq_dtype_size(CQ_BOOL) == 1);
}

TST(core_qtype_parse) {
    cq_qtype q;
    cq_err err = {0};
    CHECK(cq_qtype_parse("int4", &q, &err) == CQ_OK && q == CQ_QINT4);
    CHECK(cq_qtype_parse("qfloat8", &q, &err) == CQ_OK && q == CQ_QFLOAT8_E4M3FN);
    CHECK(!strcmp(cq_qtype_name(q), "qfloat8_e4m3fn"));
    CHECK(cq_qtype_parse("float8_e5m2", &q, &err) == CQ_OK && q == CQ_QFLOAT8_E5M2);
    CHECK(cq_qtype_get(CQ_QINT2)->qmin == -2 && cq_qtype_get(CQ_QINT2)->qmax == 1);
    CHECK(cq_qtype_parse("int3", &q, &err) == CQ_E_ARG && strstr(err.msg, "int3"));
}

/* The name index: stored values come back, a second put keeps the first value and reports it,
 * absent keys (and NULL) are -1, and growth keeps every key. */
TST(core_strmap_puts_and_gets) {
    cq__strmap m = {0};
    cq_err err = {0};
    enum { N = 5000 };
    static char keys[N][16];
    bool ok = true;
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        int64_t existing = 0;
        ok = ok && cq__strmap_put(&m, keys[i], 10 * i, &existing, &err) == CQ_OK && existing == -1;
    }
    CHECK(ok && m.n == N && m.cap >= 2 * N);
    for (int i = 0; i < N; i++) ok = ok && cq__strmap_get(&m, keys[i]) == 10 * i;
    CHECK(ok);
    int64_t existing = 0;
    CHECK(cq__strmap_put(&m, "k7", 1, &existing, &err) == CQ_OK && existing == 70 && cq__strmap_get(&m, "k7") == 70);
    CHECK(cq__strmap_get(&m, "k5000") == -1 && cq__strmap_get(&m, "") == -1 && cq__strmap_get(&m, NULL) == -1);
    CHECK(cq__strmap_put(&m, "", 3, NULL, &err) == CQ_OK && cq__strmap_get(&m, "") == 3);
    cq__strmap_free(&m);
    CHECK(m.n == 0 && m.cap == 0 && cq__strmap_get(&m, "k1") == -1);
}
