/*
 * test_io_json.c - quanto_qmap.json and config.json: reading what optimum-quanto and
 * transformers wrote, writing it back byte for byte (json.dump indent=4; to_json_string's
 * indent=2 + sorted keys + Python float repr), the QuantoConfig block, and the errors.
 */
#include "test_io_util.h"

#include <stdio.h>
#include <unistd.h> /* ftruncate */

TST(io_qmap_reads_and_rewrites_quanto_files_byte_identical) {
    const char *files[] = {"tests/data/st/quanto_mlp/quanto_qmap.json", "tests/data/st/quanto_llama_sharded/quanto_qmap.json",
                           "tests/data/st/json/qmap_all_qtypes.json"};
    char *dir = io_tmpdir();
    char *out = cq_path_join(dir, "quanto_qmap.json");
    for (int k = 0; k < 3; k++) {
        cq_err err = {0};
        cq_qmap *m = NULL;
        CHECKF(cq_qmap_load(files[k], &m, &err) == CQ_OK, "%s", err.msg);
        CHECK(cq_qmap_count(m) > 0);
        CHECK(cq_qmap_save(m, out, &err) == CQ_OK);
        IO_CHECK_SAME_FILE(files[k], out);
        cq_qmap_free(m);
    }
    cq_err err = {0};
    cq_qmap *m = NULL;
    CHECK(cq_qmap_load(files[0], &m, &err) == CQ_OK);
    CHECK(cq_qmap_count(m) == 5 && !strcmp(cq_qmap_module(m, 0), "fc1"));
    CHECK(cq_qmap_weights(m, 0) == CQ_QINT4 && cq_qmap_activations(m, 0) == CQ_QNONE);
    int64_t i4 = cq_qmap_find(m, "fc4"), i5 = cq_qmap_find(m, "fc5");
    CHECK(cq_qmap_weights(m, i4) == CQ_QINT8 && cq_qmap_activations(m, i4) == CQ_QINT8);
    CHECK(cq_qmap_weights(m, i5) == CQ_QFLOAT8_E4M3FN);
    CHECK(cq_qmap_find(m, "head") == -1 && cq_qmap_module(m, 5) == NULL);
    cq_qmap_free(m);
    CHECK(cq_qmap_load(files[2], &m, &err) == CQ_OK && cq_qmap_count(m) == 7);
    CHECK(cq_qmap_weights(m, 5) == CQ_QFLOAT8_E4M3FNUZ && cq_qmap_weights(m, 6) == CQ_QNONE);
    CHECK(strstr(cq_qmap_module(m, 0), "caf\xc3\xa9") != NULL); /* \u00e9 decoded to UTF-8 */
    cq_qmap_free(m);
    free(out);
    io_rmtree(dir);
}

TST(io_qmap_built_in_code_matches_python_text) {
    cq_err err = {0};
    cq_qmap *m = NULL;
    CHECK(cq_qmap_new(&m, &err) == CQ_OK);
    char *text = NULL;
    CHECK(cq_qmap_to_json(m, &text, &err) == CQ_OK && !strcmp(text, "{}"));
    free(text);
    CHECK(cq_qmap_set(m, "fc1", CQ_QINT8, CQ_QNONE, &err) == CQ_OK);
    CHECK(cq_qmap_set(m, "fc2", CQ_QINT2, CQ_QFLOAT8, &err) == CQ_OK);
    CHECK(cq_qmap_set(m, "fc1", CQ_QINT4, CQ_QINT8, &err) == CQ_OK); /* replace keeps position */
    CHECK(cq_qmap_set(m, "bad", (cq_qtype)99, CQ_QNONE, &err) == CQ_E_ARG);
    CHECK(cq_qmap_to_json(m, &text, &err) == CQ_OK);
    const char *want = "{\n    \"fc1\": {\n        \"weights\": \"qint4\",\n        \"activations\": \"qint8\"\n    },\n"
                       "    \"fc2\": {\n        \"weights\": \"qint2\",\n        \"activations\": \"qfloat8_e4m3fn\"\n    }\n}";
    CHECKF(text && !strcmp(text, want), "got:\n%s", text);
    free(text);
    cq_qmap_free(m);
}

TST(io_qmap_parse_errors_name_file_and_module) {
    const char *bad[][2] = {
        {"{\"m\": {\"weights\": \"qint3\", \"activations\": \"none\"}}", "unknown weights qtype \"qint3\""},
        {"{\"m\": {\"weights\": \"int8\", \"activations\": \"none\"}}", "unknown weights qtype \"int8\""},
        {"{\"m\": {\"weights\": \"qint8\"}}", "\"activations\" is missing"},
        {"{\"m\": {\"weights\": null, \"activations\": \"none\"}}", "\"weights\" is not a string"},
        {"{\"m\": [\"qint8\", \"none\"]}", "value is not an object"},
        {"{\"m\": {\"weights\": \"qint8\", \"activations\": \"qint8\"}, \"m\": {}}", "duplicate key"},
        {"[1]", "not a JSON object"},
        {"{\"m\": ", "not valid JSON"},
        {"", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cq_err err = {0};
        cq_qmap *m = (cq_qmap *)1;
        CHECKF(cq_qmap_parse(bad[i][0], strlen(bad[i][0]), "q.json", &m, &err) == CQ_E_FORMAT && m == NULL, "case %zu",
               i);
        CHECKF(strstr(err.msg, "q.json: ") == err.msg && strstr(err.msg, bad[i][1]), "case %zu: %s", i, err.msg);
    }
    cq_err err = {0};
    cq_qmap *m = NULL;
    const char *alias = "{\"m\": {\"weights\": \"qfloat8\", \"activations\": \"qfloat8_e5m2\"}}";
    CHECK(cq_qmap_parse(alias, strlen(alias), NULL, &m, &err) == CQ_OK);
    CHECK(cq_qmap_weights(m, 0) == CQ_QFLOAT8_E4M3FN && cq_qmap_activations(m, 0) == CQ_QFLOAT8_E5M2);
    cq_qmap_free(m);
    CHECK(cq_qmap_load("tests/data/st/nope.json", &m, &err) == CQ_E_IO && strstr(err.msg, "nope.json"));
    /* Over the documented 64 MiB (docs/CLI.md, "Files read and written"): refused by its size
     * before a byte is read (a sparse file, so the test costs nothing), naming the file. */
    char *dir = io_tmpdir(), *big = cq_path_join(dir, "quanto_qmap.json");
    FILE *f = fopen(big, "wb");
    CHECK(f && ftruncate(fileno(f), ((off_t)64 << 20) + 1) == 0);
    if (f) fclose(f);
    CHECK(cq_qmap_load(big, &m, &err) == CQ_E_FORMAT && m == NULL && strstr(err.msg, big) &&
          strstr(err.msg, "67108864"));
    free(big);
    io_rmtree(dir);
}

TST(io_config_getters) {
    cq_err err = {0};
    cq_hfconfig *c = NULL;
    CHECK(cq_hfconfig_load("data/stories260K/config.json", &c, &err) == CQ_OK);
    if (!c) return;
    CHECK(!strcmp(cq_hfconfig_model_type(c), "llama"));
    int64_t v = 0;
    CHECK(cq_hfconfig_int(c, "vocab_size", &v, &err) == CQ_OK && v == 512);
    CHECK(cq_hfconfig_int(c, "hidden_size", &v, &err) == CQ_OK && v == 64);
    double d = 0;
    CHECK(cq_hfconfig_real(c, "rms_norm_eps", &d, &err) == CQ_OK && d == 1e-05);
    CHECK(cq_hfconfig_real(c, "vocab_size", &d, &err) == CQ_OK && d == 512.0);
    CHECK(cq_hfconfig_tie_word_embeddings(c));
    bool b = false;
    CHECK(cq_hfconfig_bool(c, "tie_word_embeddings", &b, &err) == CQ_OK && b);
    CHECK(cq_hfconfig_int(c, "model_type", &v, &err) == CQ_E_FORMAT && strstr(err.msg, "config.json") &&
          strstr(err.msg, "model_type"));
    CHECK(cq_hfconfig_int(c, "absent_key", &v, &err) == CQ_E_NOTFOUND && strstr(err.msg, "absent_key"));
    CHECK(cq_hfconfig_str(c, "vocab_size") == NULL && cq_hfconfig_str(c, "absent") == NULL);
    CHECK(cq_hfconfig_has(c, "rope_theta") && !cq_hfconfig_has(c, "nope"));
    CHECK(cq_hfconfig_set_bool(c, "tie_word_embeddings", false, &err) == CQ_OK && !cq_hfconfig_tie_word_embeddings(c));
    cq_hfconfig_free(c);
    const char *t = "{\"rope_scaling\": null, \"n\": 4096.0, \"x\": 1.5}";
    CHECK(cq_hfconfig_parse(t, strlen(t), "t", &c, &err) == CQ_OK);
    CHECK(cq_hfconfig_tie_word_embeddings(c)); /* absent: transformers' default True */
    CHECK(cq_hfconfig_int(c, "rope_scaling", &v, &err) == CQ_E_NOTFOUND);
    CHECK(cq_hfconfig_int(c, "n", &v, &err) == CQ_OK && v == 4096);
    CHECK(cq_hfconfig_int(c, "x", &v, &err) == CQ_E_FORMAT);
    CHECK(cq_hfconfig_model_type(c) == NULL);
    cq_hfconfig_free(c);
    CHECK(cq_hfconfig_parse("[]", 2, "arr", &c, &err) == CQ_E_FORMAT && c == NULL && strstr(err.msg, "arr: "));
    CHECK(cq_hfconfig_parse("{", 1, "trunc", &c, &err) == CQ_E_FORMAT && strstr(err.msg, "not valid JSON"));
}

TST(io_config_rewrite_and_quantization_match_transformers) {
    cq_err err = {0};
    cq_hfconfig *c = NULL;
    const char *src = "tests/data/st/quanto_llama_sharded/config.json";
    CHECK(cq_hfconfig_load(src, &c, &err) == CQ_OK);
    if (!c) return;
    char *dir = io_tmpdir();
    char *out = cq_path_join(dir, "config.json");
    CHECK(cq_hfconfig_save(c, out, &err) == CQ_OK);
    IO_CHECK_SAME_FILE(src, out);
    const char *keep[] = {"lm_head", NULL};
    CHECK(cq_hfconfig_set_quantization(c, CQ_QINT4, CQ_QNONE, keep, &err) == CQ_OK);
    CHECK(cq_hfconfig_save(c, out, &err) == CQ_OK);
    IO_CHECK_SAME_FILE("tests/data/st/json/config_quantized.json", out);
    CHECK(cq_hfconfig_set_quantization(c, CQ_QFLOAT8_E5M2, CQ_QNONE, NULL, &err) == CQ_E_ARG &&
          strstr(err.msg, "qfloat8_e5m2"));
    CHECK(cq_hfconfig_set_quantization(c, CQ_QINT8, CQ_QINT4, NULL, &err) == CQ_E_ARG);
    CHECK(cq_hfconfig_set_quantization(c, CQ_QFLOAT8, CQ_QINT8, NULL, &err) == CQ_OK);
    char *text = NULL;
    CHECK(cq_hfconfig_to_json(c, &text, &err) == CQ_OK);
    CHECK(text && strstr(text, "\"quantization_config\": {\n    \"activations\": \"int8\",\n"
                               "    \"modules_to_not_convert\": null,\n    \"quant_method\": \"quanto\",\n"
                               "    \"weights\": \"float8\"\n  }"));
    free(text);
    cq_hfconfig_free(c);
    free(out);
    io_rmtree(dir);
}

/* 2,000 doubles of every magnitude, written by Python: parse + write gives the same text. */
TST(io_json_float_repr_matches_python) {
    cq_err err = {0};
    cq_hfconfig *c = NULL;
    const char *src = "tests/data/st/json/floats.json";
    CHECK(cq_hfconfig_load(src, &c, &err) == CQ_OK);
    char *text = NULL;
    CHECK(cq_hfconfig_to_json(c, &text, &err) == CQ_OK);
    size_t n = 0;
    unsigned char *want = io_slurp(src, &n);
    CHECK(text && want && strlen(text) == n);
    if (text && want && strlen(text) == n) CHECK_BYTES(text, want, n, "floats.json");
    free(want);
    free(text);
    cq_hfconfig_free(c);
}

/* A config.json nested 2,040 deep is 4 KB, and re-written with transformers' indent=2 it would
 * be 8 MB: JSON inputs nest at most 64 deep (docs/FORMATS.md), refused in one line naming the
 * place. Strings holding brackets do not count. */
static char *nested(int depth, const char *inner) {
    size_t n = strlen(inner) + 2 * (size_t)depth + 64;
    char *t = malloc(n), *p = t;
    p += sprintf(p, "{\"model_type\": \"x\", \"a\": ");
    for (int i = 1; i < depth; i++) *p++ = '[';
    p += sprintf(p, "%s", inner);
    for (int i = 1; i < depth; i++) *p++ = ']';
    sprintf(p, "}");
    return t;
}

TST(io_json_nesting_is_capped) {
    cq_err err = {0};
    cq_hfconfig *c = NULL;
    char *ok = nested(64, "\"[[[[{{{{\""), *deep = nested(65, "0"), *huge = nested(2040, "0");
    CHECKF(cq_hfconfig_parse(ok, strlen(ok), "config.json", &c, &err) == CQ_OK, "%s", err.msg);
    cq_hfconfig_free(c);
    c = NULL;
    CHECK(cq_hfconfig_parse(deep, strlen(deep), "config.json", &c, &err) == CQ_E_FORMAT && c == NULL);
    CHECKF(strstr(err.msg, "config.json: JSON nested deeper than 64 levels (line 1, column 89)") && !strchr(err.msg, '\n'),
           "%s", err.msg);
    CHECK(cq_hfconfig_parse(huge, strlen(huge), "config.json", &c, &err) == CQ_E_FORMAT && c == NULL);
    cq_qmap *m = NULL;
    CHECK(cq_qmap_parse(deep, strlen(deep), "quanto_qmap.json", &m, &err) == CQ_E_FORMAT && m == NULL &&
          strstr(err.msg, "nested deeper than 64"));
    free(ok);
    free(deep);
    free(huge);
}
