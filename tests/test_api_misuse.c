/*
 * test_api_misuse.c - the C API never crashes on misuse. Every function declared in the public
 * headers has a row below; a row's call marks each pointer argument that must not be NULL with
 * N(i, valid value), and the test runs the call once per marked argument with that one argument
 * NULL (the others valid). Calls that return a cq_status must return an error and explain it;
 * the others (free functions, getters, void kernels) must return without crashing. A second
 * table passes wrong shapes and must get an error. Each row runs in a child process, so a crash
 * is reported as that row's failure, and under ASan a leak in a failure path fails the row too.
 * The test reads the headers and fails when a declared function has no row (or a row names no
 * declared function), so a new function cannot be forgotten.
 */
#include "tst.h"

#include "cquanto.h"
#include "cquanto/experimental.h" /* rows for the file helpers, data set readers and SVG chart */

#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the NULL-substitution machinery ------------------------------------------------------ */

static int g_null = -1; /* the argument passed as NULL in this run */
static int g_max = -1;  /* the highest marked argument seen */
static cq_err g_err;

static int note(int i) {
    if (i > g_max) g_max = i;
    return i;
}
#define N(i, ...) (g_null == note(i) ? NULL : (__VA_ARGS__))
#define E (&g_err)

/* ---- valid objects the rows pass (made once; children only read or fail on them) ---------- */

static struct {
    cq_tensor *w, *i8, *scale, *u8;
    cq_qweight *qw;
    cq_qactivation *qa;
    cq_mm_weight *mm;
    cq_st_file *st;
    cq_st_writer *stw;
    cq_ckpt *ckpt;
    cq_gguf *gguf;
    cq_qmap *qmap;
    cq_hfconfig *hfc;
    cq_plan *plan;
    cq_report *report;
    cq_tape *tape;
    cq_var *x, *w2, *img, *vec3;
    cq_model *model;
    cq_module *mod;
    cq_state_dict *sd;
    cq_optim *optim;
    cq_dataset *ds;
    cq_tokenizer *tok;
    cq_lm *lm;
    float buf[64];
    int64_t ids[2], shape[2];
    char tmp[64];
    cq_convert_opts copts;
    bool ready;
    cq_err err;
} F;

#define FLOAT_CKPT "tests/data/interop/tiny_bf16.safetensors"
#define QUANT_CKPT "tests/data/interop/tiny_bf16_int8"
#define LM_DIR "data/stories260K"
#define GGUF_FILE "tests/data/gguf_golden/quants.gguf"

static bool make_fixtures(void) {
    if (F.ready) return true;
    const int64_t ws[2] = {3, 4}, ss[2] = {3, 1}, xs[2] = {2, 4}, is[4] = {1, 1, 4, 4}, vs[1] = {3};
    cq_status s = cq_tensor_new(&F.w, CQ_F32, 2, ws, &F.err);
    for (int i = 0; !s && i < 12; i++) ((float *)F.w->data)[i] = (float)i - 5.5f;
    if (!s) s = cq_tensor_new(&F.i8, CQ_I8, 2, ws, &F.err);
    if (!s) s = cq_tensor_new(&F.u8, CQ_U8, 2, ws, &F.err);
    if (!s) s = cq_tensor_new(&F.scale, CQ_F32, 2, ss, &F.err);
    for (int i = 0; !s && i < 3; i++) ((float *)F.scale->data)[i] = 0.5f;
    if (!s) s = cq_qweight_quantize(F.w, CQ_QINT8, CQ_OPT_DEFAULT, -1, &F.qw, &F.err);
    if (!s) {
        const int64_t one[1] = {1};
        cq_tensor *as = NULL;
        s = cq_tensor_new(&as, CQ_F32, 0, one, &F.err);
        if (!s) ((float *)as->data)[0] = 0.1f;
        if (!s) s = cq_qactivation_quantize(F.w, CQ_QINT8, as, &F.qa, &F.err);
        cq_tensor_free(as);
    }
    if (!s) {
        float sc[3] = {0.5f, 0.5f, 0.5f};
        cq_mm_weight_src src = {.qtype = CQ_QINT8, .out_features = 3, .in_features = 4, .data = F.i8->data,
                                .scale = sc, .scale_dtype = CQ_F32};
        s = cq_mm_weight_new(&F.mm, &src, &F.err);
    }
    if (!s) s = cq_st_open(FLOAT_CKPT, &F.st, &F.err);
    snprintf(F.tmp, sizeof F.tmp, "/tmp/cq-misuse-%d", (int)getpid());
    if (!s) s = cq_fs_mkdir_p(F.tmp, &F.err);
    if (!s) {
        char path[96];
        snprintf(path, sizeof path, "%s/w.safetensors", F.tmp);
        s = cq_st_writer_open(path, &F.stw, &F.err);
    }
    if (!s) s = cq_ckpt_open(FLOAT_CKPT, &F.ckpt, &F.err);
    if (!s) s = cq_gguf_open(GGUF_FILE, &F.gguf, &F.err);
    if (!s) s = cq_qmap_new(&F.qmap, &F.err);
    if (!s) s = cq_qmap_set(F.qmap, "fc", CQ_QINT8, CQ_QNONE, &F.err);
    if (!s) s = cq_hfconfig_parse("{\"model_type\": \"x\"}", 19, "config.json", &F.hfc, &F.err);
    F.copts = cq_convert_default_opts();
    if (!s) s = cq_plan_build(FLOAT_CKPT, &F.copts, &F.plan, &F.err);
    if (!s) s = cq_report_build(FLOAT_CKPT, QUANT_CKPT, &F.copts, &F.report, &F.err);
    if (!s) s = cq_tape_new(&F.tape, &F.err);
    if (!s) s = cq_tape_zeros(F.tape, 2, xs, &F.x, &F.err);
    if (!s) s = cq_tape_zeros(F.tape, 2, xs, &F.w2, &F.err);
    if (!s) s = cq_tape_zeros(F.tape, 4, is, &F.img, &F.err);
    if (!s) s = cq_tape_zeros(F.tape, 1, vs, &F.vec3, &F.err);
    if (!s) s = cq_lenet_new(&F.model, &F.err);
    if (!s) s = cq_module_new_linear(&F.mod, 4, 3, true, &F.err);
    if (!s) s = cq_model_state_dict(F.model, &F.sd, &F.err);
    if (!s) {
        cq_var *params[8];
        int n = cq_model_parameters(F.model, params, 8);
        cq_optim_opts o = cq_optim_default_opts(CQ_OPTIM_SGD);
        s = cq_optim_new(&F.optim, &o, params, n, &F.err);
    }
    if (!s) s = cq_dataset_load_digits(&F.ds, "data/digits.csv.gz", &F.err);
    if (!s) s = cq_tokenizer_load(LM_DIR "/tok512.bin", &F.tok, &F.err);
    if (!s) s = cq_lm_load(LM_DIR, NULL, &F.lm, &F.err);
    F.shape[0] = 3, F.shape[1] = 4;
    F.ready = !s;
    if (s) fprintf(stderr, "  fixtures: %s\n", F.err.msg);
    return F.ready;
}

static cq_module *fresh_linear(void) {
    cq_module *m = NULL;
    cq_module_new_linear(&m, 4, 3, true, NULL);
    return m;
}

static cq_tensor *fresh_tensor(void) {
    cq_tensor *t = NULL;
    cq_tensor_clone(&t, F.w, NULL);
    return t;
}

static cq_status identity_fn(void *ctx, const cq_tensor *in, cq_tensor *out, cq_err *err) {
    (void)ctx;
    return cq_convert(in->data, in->dtype, out->data, out->dtype, cq_tensor_numel(in), err);
}

static cq_status no_backward(cq_tape *t, const void *ctx, cq_var *out, cq_var *const *in, int n, cq_err *err) {
    (void)t, (void)ctx, (void)out, (void)in, (void)n, (void)err;
    return CQ_OK;
}

static cq_status no_forward(cq_model *m, cq_tape *t, cq_var *x, cq_var **out, cq_err *err) {
    (void)m, (void)t, (void)x, (void)out;
    return cq_err_set(err, CQ_E_UNSUPPORTED, "no forward");
}

/* Where the outputs go; everything in it is freed after each call. */
static struct {
    cq_tensor *t, *t2;
    const cq_tensor *ct;
    cq_qweight *qw;
    cq_qactivation *qa;
    cq_mm_weight *mm;
    cq_st_file *st;
    cq_st_writer *stw;
    cq_ckpt *ckpt;
    cq_gguf *gguf;
    cq_qmap *qmap;
    cq_hfconfig *hfc;
    cq_plan *plan;
    cq_report *report;
    cq_tape *tape;
    cq_var *v;
    cq_model *model;
    cq_module *mod;
    cq_state_dict *sd;
    cq_optim *optim;
    cq_dataset *ds;
    cq_tokenizer *tok;
    cq_lm *lm;
    int32_t *ids;
    cq_lm_info lminfo;
    cq_ppl_result ppl;
    const char *cstr;
    char *str;
    size_t n;
    int64_t i64, shape2[2];
    uint64_t u64;
    double real;
    bool flag;
    cq_qtype qtype;
    cq_layer_kind kind;
    cq_isa isa;
    cq_error_stats stats;
    cq_convert_stats cstats;
    cq_mm_weight_info info;
    float f[64];
    uint8_t b[64];
    int8_t c[64];
    uint16_t h[64];
} O;

static void free_outputs(void) {
    cq_tensor_free(O.t);
    cq_tensor_free(O.t2);
    cq_qweight_free(O.qw);
    cq_qactivation_free(O.qa);
    cq_mm_weight_free(O.mm);
    cq_st_close(O.st);
    cq_st_writer_free(O.stw);
    cq_ckpt_close(O.ckpt);
    cq_gguf_close(O.gguf);
    cq_qmap_free(O.qmap);
    cq_hfconfig_free(O.hfc);
    cq_plan_free(O.plan);
    cq_report_free(O.report);
    cq_tape_free(O.tape);
    cq_var_free(O.v);
    cq_model_free(O.model);
    cq_module_free(O.mod);
    cq_state_dict_free(O.sd);
    cq_optim_free(O.optim);
    cq_dataset_free(O.ds);
    cq_tokenizer_free(O.tok);
    cq_lm_free(O.lm);
    free(O.ids);
    free(O.str);
    memset(&O, 0, sizeof O);
}

/* ---- the rows -------------------------------------------------------------------------------
 * S: returns a cq_status that must be an error with a message when an argument is NULL.
 * V: returns nothing or a value; it must not crash (free functions, getters, kernels). */
#define ROWS(S, V)                                                                                          \
    V(cq_status_str, cq_status_str((cq_status)999))                                                         \
    V(cq_err_set, cq_err_set(E, CQ_E_ARG, NULL))                                                       \
    V(cq_err_prefix, cq_err_prefix(E, CQ_E_ARG, NULL))                                                 \
    V(cq_err_clear, cq_err_clear(NULL))                                                                     \
    V(cq_dtype_size, cq_dtype_size((cq_dtype)999))                                                          \
    V(cq_dtype_name, cq_dtype_name((cq_dtype)999))                                                          \
    V(cq_dtype_from_name, cq_dtype_from_name(NULL))                                                         \
    V(cq_dtype_is_float, cq_dtype_is_float((cq_dtype)999))                                                  \
    V(cq_f32_to_f16, cq_f32_to_f16(1.0f))                                                                   \
    V(cq_f16_to_f32, cq_f16_to_f32(0))                                                                      \
    V(cq_f32_to_bf16, cq_f32_to_bf16(1.0f))                                                                 \
    V(cq_bf16_to_f32, cq_bf16_to_f32(0))                                                                    \
    V(cq_f32_to_f8_e4m3fn, cq_f32_to_f8_e4m3fn(1.0f))                                                       \
    V(cq_f8_e4m3fn_to_f32, cq_f8_e4m3fn_to_f32(0))                                                          \
    V(cq_f32_to_f8_e5m2, cq_f32_to_f8_e5m2(1.0f))                                                           \
    V(cq_f8_e5m2_to_f32, cq_f8_e5m2_to_f32(0))                                                              \
    V(cq_f32_to_f8_e4m3fnuz, cq_f32_to_f8_e4m3fnuz(1.0f))                                                   \
    V(cq_f8_e4m3fnuz_to_f32, cq_f8_e4m3fnuz_to_f32(0))                                                      \
    V(cq_round_to_dtype, cq_round_to_dtype(1.0f, (cq_dtype)999))                                            \
    V(cq_load_f32, cq_load_f32(NULL, CQ_F32, 0))                                                            \
    V(cq_store_f32, cq_store_f32(NULL, CQ_F32, 0, 1.0f))                                                    \
    S(cq_convert, cq_convert(N(0, F.buf), CQ_F32, N(1, O.f), CQ_F16, 4, E))                                 \
    V(cq_shape_numel, cq_shape_numel(2, NULL))                                                              \
    V(cq_tensor_numel, cq_tensor_numel(NULL))                                                               \
    V(cq_tensor_nbytes, cq_tensor_nbytes(NULL))                                                             \
    S(cq_tensor_new, cq_tensor_new(N(0, &O.t), CQ_F32, 2, N(1, F.shape), E))                                \
    S(cq_tensor_view, cq_tensor_view(N(0, &O.t), CQ_F32, 2, N(1, F.shape), N(2, F.buf), E))                 \
    S(cq_tensor_clone, cq_tensor_clone(N(0, &O.t), N(1, F.w), E))                                           \
    V(cq_tensor_free, cq_tensor_free(NULL))                                                                 \
    V(cq_tensor_same_shape, cq_tensor_same_shape(N(0, F.w), N(1, F.w)))                                     \
    V(cq_shape_str, cq_shape_str(2, N(0, F.shape), N(1, (char *)O.b), 64))                                  \
    V(cq_aligned_alloc, cq_aligned_free(cq_aligned_alloc(0)))                                               \
    V(cq_aligned_free, cq_aligned_free(NULL))                                                               \
    V(cq_set_num_threads, cq_set_num_threads(1))                                                            \
    V(cq_get_num_threads, cq_get_num_threads())                                                             \
    V(cq_qtype_get, cq_qtype_get((cq_qtype)999))                                                            \
    V(cq_qtype_name, cq_qtype_name((cq_qtype)999))                                                          \
    V(cq_qtype_family_of, cq_qtype_family_of((cq_qtype)999))                                               \
    V(cq_qtype_takes, cq_qtype_takes((cq_qtype)999, 1, true))                                               \
    V(cq_qtype_optimizer_applies, cq_qtype_optimizer_applies((cq_qtype)999, (cq_optimizer_kind)999))        \
    V(cq_qtype_choices, cq_qtype_choices(1, false, true, N(0, ", "), N(1, " or "), N(2, (char *)O.b), 64))  \
    S(cq_qtype_parse, cq_qtype_parse(N(0, "qint8"), N(1, &O.qtype), E))                                     \
    V(cq_default_group_size, cq_default_group_size(2, NULL))                                                \
    S(cq_grouped_shape, cq_grouped_shape(2, N(0, F.shape), 0, 2, N(1, O.shape2), E))                        \
    S(cq_group, cq_group(N(0, F.w), 0, 2, N(1, &O.t), E))                                                   \
    S(cq_ungroup, cq_ungroup(N(0, F.w), 0, 2, N(1, F.shape), N(2, &O.t), E))                                \
    S(cq_absmax_scale, cq_absmax_scale(N(0, F.w), CQ_QINT8, 0, N(1, &O.t), E))                              \
    S(cq_quantize_symmetric, cq_quantize_symmetric(N(0, F.w), CQ_I8, 0, N(1, F.scale), N(2, &O.t), E))      \
    S(cq_dequantize_symmetric, cq_dequantize_symmetric(N(0, F.i8), N(1, F.scale), CQ_F32, N(2, &O.t), E))   \
    V(cq_hqq_default_opts, cq_hqq_default_opts())                                                           \
    S(cq_affine_optimize,                                                                                   \
      cq_affine_optimize(N(0, F.w), CQ_QINT4, 0, 4, CQ_OPT_DEFAULT, NULL, N(1, &O.t), N(2, &O.t2), E))      \
    S(cq_quantize_affine, cq_quantize_affine(N(0, F.w), 4, 0, 4, N(1, F.scale), N(2, F.scale), N(3, &O.t), E)) \
    S(cq_dequantize_affine, cq_dequantize_affine(N(0, F.u8), N(1, F.scale), N(2, F.scale), 0, 2,            \
                                                 NULL, CQ_F32, N(3, &O.t), E))                     \
    V(cq_packed_rows, cq_packed_rows(-1, 3))                                                                \
    V(cq_packed_byte_row, cq_packed_byte_row(5, 2))                                                         \
    V(cq_packed_field, cq_packed_field(5, 2))                                                               \
    V(cq_packed_row_of, cq_packed_row_of(1, 2, 2))                                                          \
    V(cq_pack_codes, cq_pack_codes(N(0, O.b), 4, 4, 4, N(1, O.b + 32)))                                     \
    V(cq_unpack_codes, cq_unpack_codes(N(0, O.b), 4, 4, 4, N(1, O.b + 32)))                                 \
    V(cq_packed_code, O.b[0] = cq_packed_code(NULL, 4, 4, 4, 0, 0))                                                  \
    S(cq_pack, cq_pack(N(0, F.u8), 4, N(1, &O.t), E))                                                       \
    S(cq_unpack, cq_unpack(N(0, F.u8), 4, 3, N(1, &O.t), E))                                                \
    S(cq_qweight_quantize, cq_qweight_quantize(N(0, F.w), CQ_QINT8, CQ_OPT_DEFAULT, -1, N(1, &O.qw), E))    \
    S(cq_qweight_quantize_ex,                                                                               \
      cq_qweight_quantize_ex(N(0, F.w), CQ_QINT4, 0, CQ_OPT_DEFAULT, -1, NULL, N(1, &O.qw), E))             \
    S(cq_qweight_from_tensors, cq_qweight_from_tensors(CQ_QINT8, 2, N(0, F.shape), -1, N(1, F.i8),          \
                                                       N(2, F.scale), NULL, true, N(3, &O.qw), E))          \
    V(cq_qweight_free, cq_qweight_free(NULL))                                                               \
    S(cq_qweight_dequantize, cq_qweight_dequantize(N(0, F.qw), CQ_F32, N(1, &O.t), E))                      \
    S(cq_qweight_unpack_codes, cq_qweight_unpack_codes(N(0, F.qw), N(1, &O.t), E))                          \
    V(cq_qweight_data_key, cq_qweight_data_key((cq_qtype)999))                                              \
    V(cq_qweight_apply_tinygemm_roundtrip, cq_qweight_apply_tinygemm_roundtrip(NULL))                       \
    S(cq_qactivation_quantize, cq_qactivation_quantize(N(0, F.w), CQ_QINT8, NULL, N(1, &O.qa), E)) \
    S(cq_qactivation_dequantize, cq_qactivation_dequantize(N(0, F.qa), CQ_F32, N(1, &O.t), E))              \
    V(cq_qactivation_free, cq_qactivation_free(NULL))                                                       \
    V(cq_isa_name, cq_isa_name((cq_isa)999))                                                                \
    S(cq_isa_parse, cq_isa_parse(N(0, "ref"), N(1, &O.isa), E))                                             \
    V(cq_isa_supported, cq_isa_supported((cq_isa)999))                                                      \
    V(cq_isa_best, cq_isa_best())                                                                           \
    V(cq_isa_active, cq_isa_active())                                                                       \
    V(cq_set_isa_cap, cq_set_isa_cap((cq_isa)999, E))                                                       \
    V(cq_get_isa_cap, cq_get_isa_cap())                                                                     \
    V(cq_cpu_get_info, cq_cpu_get_info())                                                                   \
    V(cq_kernel_count, cq_kernel_count())                                                                   \
    V(cq_kernel_slot_count, cq_kernel_slot_count())                                                         \
    S(cq_kernel_get, cq_kernel_get(0, N(0, &(cq_kernel_info){0}), E))                                       \
    V(cq_vec_f32_to_f16, cq_vec_f32_to_f16(N(0, F.buf), N(1, O.h), 4))                                      \
    V(cq_vec_f16_to_f32, cq_vec_f16_to_f32(N(0, O.h), N(1, O.f), 4))                                        \
    V(cq_vec_f32_to_bf16, cq_vec_f32_to_bf16(N(0, F.buf), N(1, O.h), 4))                                    \
    V(cq_vec_bf16_to_f32, cq_vec_bf16_to_f32(N(0, O.h), N(1, O.f), 4))                                      \
    V(cq_vec_f32_to_f8_e4m3fn, cq_vec_f32_to_f8_e4m3fn(N(0, F.buf), N(1, O.b), 4))                          \
    V(cq_vec_f8_e4m3fn_to_f32, cq_vec_f8_e4m3fn_to_f32(N(0, O.b), N(1, O.f), 4))                            \
    V(cq_vec_f32_to_f8_e5m2, cq_vec_f32_to_f8_e5m2(N(0, F.buf), N(1, O.b), 4))                              \
    V(cq_vec_f8_e5m2_to_f32, cq_vec_f8_e5m2_to_f32(N(0, O.b), N(1, O.f), 4))                                \
    V(cq_vec_absmax, cq_vec_absmax(NULL, CQ_F32, 4))                                                        \
    V(cq_vec_quantize_i8, cq_vec_quantize_i8(N(0, F.buf), CQ_F32, 4, 1.0f, N(1, O.c)))                      \
    V(cq_vec_quantize_f8, cq_vec_quantize_f8(N(0, F.buf), CQ_F32, 4, 1.0f, CQ_F8_E4M3FN, N(1, O.b)))        \
    V(cq_vec_dequantize_i8, cq_vec_dequantize_i8(N(0, O.c), 4, 1.0f, N(1, O.f), CQ_F32))                    \
    V(cq_vec_minmax, cq_vec_minmax(N(0, F.buf), CQ_F32, 4, N(1, O.f), N(2, O.f + 1)))                       \
    V(cq_vec_affine_codes, cq_vec_affine_codes(N(0, F.buf), CQ_F32, 4, 1.0f, 0.0f, 4, N(1, O.b)))           \
    S(cq_mm_weight_new, cq_mm_weight_new(N(0, &O.mm), NULL, E))                                             \
    V(cq_mm_weight_free, cq_mm_weight_free(NULL))                                                           \
    S(cq_mm_weight_clone, cq_mm_weight_clone(N(0, F.mm), N(1, &O.mm), E))                                   \
    V(cq_mm_weight_get_info, cq_mm_weight_get_info(N(0, F.mm), N(1, &O.info)))                              \
    S(cq_mm_weight_unpack, cq_mm_weight_unpack(N(0, F.mm), false, N(1, O.b), N(2, O.f), NULL, E))           \
    V(cq_matmul_default_opts, cq_matmul_default_opts())                                                     \
    V(cq_matmul_work_size, cq_matmul_work_size(NULL, 2, CQ_F32, CQ_MATMUL_EXACT))                           \
    S(cq_matmul, cq_matmul(N(0, F.mm), 1, N(1, F.buf), CQ_F32, 4, N(2, O.f), CQ_F32, 3, NULL, E))           \
    S(cq_st_open, cq_st_open(N(0, FLOAT_CKPT), N(1, &O.st), E))                                             \
    S(cq_st_open_memory, cq_st_open_memory(N(0, F.buf), 8, NULL, N(1, &O.st), E))                           \
    V(cq_st_close, cq_st_close(NULL))                                                                       \
    V(cq_st_path, cq_st_path(NULL))                                                                         \
    V(cq_st_count, cq_st_count(NULL))                                                                       \
    V(cq_st_name, cq_st_name(NULL, 0))                                                                      \
    V(cq_st_tensor, cq_st_tensor(NULL, 0))                                                                  \
    V(cq_st_file_offset, cq_st_file_offset(NULL, 0))                                                        \
    V(cq_st_find, cq_st_find(N(0, F.st), N(1, "x")))                                                        \
    S(cq_st_get, cq_st_get(N(0, F.st), N(1, "x"), N(2, &O.ct), E))                                          \
    V(cq_st_metadata, cq_st_metadata(N(0, F.st), N(1, "format")))                                           \
    V(cq_st_metadata_count, cq_st_metadata_count(NULL))                                                     \
    V(cq_st_metadata_key, cq_st_metadata_key(NULL, 0))                                                      \
    V(cq_st_metadata_value, cq_st_metadata_value(NULL, 0))                                                  \
    V(cq_st_header_size, cq_st_header_size(NULL))                                                           \
    V(cq_st_data_size, cq_st_data_size(NULL))                                                               \
    S(cq_st_writer_open, cq_st_writer_open(N(0, "/tmp/cq-misuse-never.safetensors"), N(1, &O.stw), E))      \
    S(cq_st_writer_add_metadata, cq_st_writer_add_metadata(N(0, F.stw), N(1, "k"), N(2, "v"), E))           \
    S(cq_st_writer_declare, cq_st_writer_declare(N(0, F.stw), N(1, "t"), CQ_F32, 2, N(2, F.shape), E))      \
    S(cq_st_writer_write, cq_st_writer_write(N(0, F.stw), N(1, "t"), N(2, F.buf), 48, E))                   \
    S(cq_st_writer_write_tensor, cq_st_writer_write_tensor(N(0, F.stw), N(1, "t"), N(2, F.w), E))           \
    S(cq_st_writer_commit, cq_st_writer_commit(N(0, F.stw), E))                                             \
    V(cq_st_writer_free, cq_st_writer_free(NULL))                                                           \
    S(cq_st_save, cq_st_save(N(0, "/tmp/cq-misuse-never.safetensors"), 1, N(1, (const char *const[]){"t"}), \
                             N(2, (const cq_tensor *const[]){F.w}), NULL, E))                               \
    S(cq_ckpt_open, cq_ckpt_open(N(0, FLOAT_CKPT), N(1, &O.ckpt), E))                                       \
    V(cq_ckpt_close, cq_ckpt_close(NULL))                                                                   \
    V(cq_ckpt_count, cq_ckpt_count(NULL))                                                                   \
    V(cq_ckpt_name, cq_ckpt_name(NULL, 0))                                                                  \
    V(cq_ckpt_tensor, cq_ckpt_tensor(NULL, 0))                                                              \
    V(cq_ckpt_tensor_shard, cq_ckpt_tensor_shard(NULL, 0))                                                  \
    V(cq_ckpt_find, cq_ckpt_find(N(0, F.ckpt), N(1, "x")))                                                  \
    S(cq_ckpt_get, cq_ckpt_get(N(0, F.ckpt), N(1, "x"), N(2, &O.ct), E))                                    \
    V(cq_ckpt_dir, cq_ckpt_dir(NULL))                                                                       \
    V(cq_ckpt_index_path, cq_ckpt_index_path(NULL))                                                         \
    V(cq_ckpt_index_total_size, cq_ckpt_index_total_size(NULL))                                             \
    V(cq_ckpt_shard_count, cq_ckpt_shard_count(NULL))                                                       \
    V(cq_ckpt_shard, cq_ckpt_shard(NULL, 0))                                                                \
    V(cq_ckpt_shard_file, cq_ckpt_shard_file(NULL, 0))                                                      \
    S(cq_ckpt_folder_file, cq_ckpt_folder_file(N(0, F.ckpt), N(1, "config.json"), N(2, &O.str), E))        \
    V(cq_shard_file_name, cq_shard_file_name(N(0, (char *)O.b), 64, N(1, "model"), 0, 2))                   \
    S(cq_ckpt_write_index, cq_ckpt_write_index(N(0, "/tmp/cq-misuse-never.json"), 48, 1,                    \
                                               N(1, (const char *const[]){"t"}),                            \
                                               N(2, (const char *const[]){"a.safetensors"}), E))            \
    S(cq_gguf_open, cq_gguf_open(N(0, GGUF_FILE), N(1, &O.gguf), E))                                         \
    S(cq_gguf_open_memory, cq_gguf_open_memory(N(0, F.buf), 8, NULL, N(1, &O.gguf), E))                     \
    V(cq_gguf_close, cq_gguf_close(NULL))                                                                   \
    V(cq_gguf_path, cq_gguf_path(NULL))                                                                     \
    V(cq_gguf_version, cq_gguf_version(NULL))                                                               \
    V(cq_gguf_alignment, cq_gguf_alignment(NULL))                                                           \
    V(cq_gguf_data_offset, cq_gguf_data_offset(NULL))                                                       \
    V(cq_gguf_type_name, cq_gguf_type_name((cq_gguf_type)999))                                              \
    V(cq_gguf_kv_count, cq_gguf_kv_count(NULL))                                                             \
    V(cq_gguf_kv_key, cq_gguf_kv_key(NULL, 0))                                                              \
    V(cq_gguf_kv_find, cq_gguf_kv_find(N(0, F.gguf), N(1, "test.u8")))                                      \
    V(cq_gguf_kv_type, cq_gguf_kv_type(NULL, 0))                                                            \
    V(cq_gguf_kv_elem_type, cq_gguf_kv_elem_type(NULL, 0))                                                  \
    V(cq_gguf_kv_len, cq_gguf_kv_len(NULL, 0))                                                              \
    V(cq_gguf_kv_str, cq_gguf_kv_str(NULL, 0, 0))                                                           \
    V(cq_gguf_kv_int, cq_gguf_kv_int(N(0, F.gguf), 1, 0, N(1, &O.i64)))                                     \
    V(cq_gguf_kv_real, cq_gguf_kv_real(N(0, F.gguf), 1, 0, N(1, &O.real)))                                  \
    S(cq_gguf_get_int, cq_gguf_get_int(N(0, F.gguf), N(1, "test.u8"), N(2, &O.i64), E))                     \
    S(cq_gguf_get_real, cq_gguf_get_real(N(0, F.gguf), N(1, "test.f32"), N(2, &O.real), E))                 \
    S(cq_gguf_get_bool, cq_gguf_get_bool(N(0, F.gguf), N(1, "test.bool"), N(2, &O.flag), E))                \
    V(cq_gguf_get_str, cq_gguf_get_str(N(0, F.gguf), N(1, "general.architecture")))                         \
    V(cq_gguf_tensor_count, cq_gguf_tensor_count(NULL))                                                     \
    V(cq_gguf_tensor_at, cq_gguf_tensor_at(NULL, 0))                                                        \
    V(cq_gguf_tensor_find, cq_gguf_tensor_find(N(0, F.gguf), N(1, "f32")))                                  \
    V(cq_ggml_type_name, cq_ggml_type_name(-5))                                                             \
    V(cq_ggml_block_size, cq_ggml_block_size(999))                                                          \
    V(cq_ggml_type_size, cq_ggml_type_size(-1))                                                             \
    V(cq_ggml_can_dequantize, cq_ggml_can_dequantize(999))                                                  \
    S(cq_ggml_dequantize, cq_ggml_dequantize(CQ_GGML_Q8_0, N(0, F.buf), 32, N(1, O.f), E))                  \
    S(cq_qmap_new, cq_qmap_new(N(0, &O.qmap), E))                                                           \
    V(cq_qmap_free, cq_qmap_free(NULL))                                                                     \
    S(cq_qmap_set, cq_qmap_set(N(0, F.qmap), N(1, "fc2"), CQ_QINT8, CQ_QNONE, E))                           \
    V(cq_qmap_count, cq_qmap_count(NULL))                                                                   \
    V(cq_qmap_module, cq_qmap_module(NULL, 0))                                                              \
    V(cq_qmap_weights, cq_qmap_weights(NULL, 0))                                                            \
    V(cq_qmap_activations, cq_qmap_activations(NULL, 0))                                                    \
    V(cq_qmap_find, cq_qmap_find(N(0, F.qmap), N(1, "fc")))                                                 \
    S(cq_qmap_load, cq_qmap_load(N(0, QUANT_CKPT "/quanto_qmap.json"), N(1, &O.qmap), E))                   \
    S(cq_qmap_parse, cq_qmap_parse(N(0, "{}"), 2, NULL, N(1, &O.qmap), E))                                  \
    S(cq_qmap_to_json, cq_qmap_to_json(N(0, F.qmap), N(1, &O.str), E))                                      \
    S(cq_qmap_save, cq_qmap_save(N(0, F.qmap), N(1, "/tmp/cq-misuse-never.json"), E))                       \
    S(cq_hfconfig_load, cq_hfconfig_load(N(0, "tests/data/no-such-config.json"), N(1, &O.hfc), E))          \
    S(cq_hfconfig_parse, cq_hfconfig_parse(N(0, "{}"), 2, NULL, N(1, &O.hfc), E))                           \
    V(cq_hfconfig_free, cq_hfconfig_free(NULL))                                                             \
    V(cq_hfconfig_has, cq_hfconfig_has(N(0, F.hfc), N(1, "model_type")))                                    \
    V(cq_hfconfig_str, cq_hfconfig_str(N(0, F.hfc), N(1, "model_type")))                                    \
    S(cq_hfconfig_int, cq_hfconfig_int(N(0, F.hfc), N(1, "model_type"), N(2, &O.i64), E))                   \
    S(cq_hfconfig_real, cq_hfconfig_real(N(0, F.hfc), N(1, "model_type"), N(2, &O.real), E))                \
    S(cq_hfconfig_bool, cq_hfconfig_bool(N(0, F.hfc), N(1, "model_type"), N(2, &O.flag), E))                \
    V(cq_hfconfig_model_type, cq_hfconfig_model_type(NULL))                                                 \
    V(cq_hfconfig_tie_word_embeddings, cq_hfconfig_tie_word_embeddings(NULL))                               \
    S(cq_hfconfig_set_quantization, cq_hfconfig_set_quantization(N(0, F.hfc), CQ_QINT8, CQ_QNONE, NULL, E)) \
    S(cq_hfconfig_set_bool, cq_hfconfig_set_bool(N(0, F.hfc), N(1, "b"), true, E))                          \
    S(cq_hfconfig_to_json, cq_hfconfig_to_json(N(0, F.hfc), N(1, &O.str), E))                               \
    S(cq_hfconfig_save, cq_hfconfig_save(N(0, F.hfc), N(1, "/tmp/cq-misuse-never.json"), E))                \
    V(cq_layer_kind_name, cq_layer_kind_name((cq_layer_kind)999))                                           \
    S(cq_layer_kind_parse, cq_layer_kind_parse(N(0, "linear"), N(1, &O.kind), E))                           \
    V(cq_path_join, free(cq_path_join(N(0, "a"), N(1, "b"))))                                               \
    V(cq_fs_exists, cq_fs_exists(NULL))                                                                     \
    V(cq_experimental_set_hqq_chunk_elems, cq_experimental_set_hqq_chunk_elems(0))                          \
    V(cq_experimental_set_convert_item_bytes, cq_experimental_set_convert_item_bytes(0))                    \
    V(cq_fs_is_dir, cq_fs_is_dir(NULL))                                                                     \
    S(cq_fs_file_size, cq_fs_file_size(N(0, FLOAT_CKPT), N(1, &O.u64), E))                                  \
    S(cq_fs_mkdir_p, cq_fs_mkdir_p(NULL, E))                                                                \
    S(cq_fs_read_file, cq_fs_read_file(N(0, FLOAT_CKPT), 1 << 20, N(1, &O.str), &O.n, E))             \
    S(cq_fs_write_file_atomic, cq_fs_write_file_atomic(N(0, "/tmp/cq-misuse-never"), N(1, F.buf), 4, E))    \
    S(cq_fs_copy_file, cq_fs_copy_file(N(0, FLOAT_CKPT), N(1, "/tmp/cq-misuse-never"), E))                  \
    S(cq_fs_temp_dir, cq_fs_temp_dir(N(0, "/tmp/cq-misuse-never"), N(1, &O.str), E))                        \
    S(cq_fs_commit_dir, cq_fs_commit_dir(N(0, "/tmp/cq-misuse-a"), N(1, "/tmp/cq-misuse-b"), false, E))     \
    S(cq_fs_remove_tree, cq_fs_remove_tree(NULL, E))                                                        \
    V(cq_convert_default_opts, cq_convert_default_opts())                                                   \
    V(cq_plan_action_name, cq_plan_action_name((cq_plan_action)999))                                        \
    S(cq_plan_build, cq_plan_build(N(0, FLOAT_CKPT), &F.copts, N(1, &O.plan), E))                               \
    V(cq_plan_free, cq_plan_free(NULL))                                                                     \
    V(cq_plan_count, cq_plan_count(NULL))                                                                   \
    V(cq_plan_entry_at, cq_plan_entry_at(NULL, 0))                                                          \
    V(cq_plan_totals, cq_plan_totals(N(0, F.plan), N(1, &O.u64), N(2, &O.u64), N(3, &O.i64)))               \
    S(cq_convert_quantize, cq_convert_quantize(N(0, FLOAT_CKPT), N(1, "/tmp/cq-misuse-never"), &F.copts, NULL, E)) \
    S(cq_convert_dequantize,                                                                                \
      cq_convert_dequantize(N(0, QUANT_CKPT), N(1, "/tmp/cq-misuse-never.safetensors"), &F.copts, NULL, E))     \
    V(cq_gguf_convert_default_opts, cq_gguf_convert_default_opts())                                         \
    S(cq_gguf_convert, cq_gguf_convert(N(0, GGUF_FILE), N(1, "/tmp/cq-misuse-never"), NULL, E))             \
    S(cq_convert_check_output, cq_convert_check_output(N(0, "/tmp/cq-misuse-never"),                       \
                                                       N(1, (const char *const[]){FLOAT_CKPT}), 1, E))      \
    V(cq_error_stats_add, cq_error_stats_add(N(0, &O.stats), N(1, F.buf), CQ_F32, N(2, F.buf), CQ_F32, 4))  \
    V(cq_error_stats_finish, cq_error_stats_finish(NULL))                                                   \
    S(cq_error_stats_tensors, cq_error_stats_tensors(N(0, F.w), N(1, F.w), N(2, &O.stats), E))              \
    S(cq_report_build, cq_report_build(N(0, FLOAT_CKPT), N(1, QUANT_CKPT), &F.copts, N(2, &O.report), E))       \
    V(cq_report_free, cq_report_free(NULL))                                                                 \
    V(cq_report_count, cq_report_count(NULL))                                                               \
    V(cq_report_entry_at, cq_report_entry_at(NULL, 0))                                                      \
    V(cq_report_overall, cq_report_overall(N(0, F.report), N(1, &O.stats), N(2, &O.real)))                  \
    S(cq_report_write_svg, cq_report_write_svg(N(0, F.report), NULL, N(1, "/tmp/cq-misuse-never.svg"), E))  \
    S(cq_var_new, cq_var_new(N(0, &O.v), 2, N(1, F.shape), true, E))                                        \
    S(cq_var_from_tensor, cq_var_from_tensor(N(0, &O.v), N(1, F.w), true, E))                               \
    V(cq_var_free, cq_var_free(NULL))                                                                       \
    V(cq_var_f32, cq_var_f32(NULL))                                                                         \
    V(cq_var_numel, cq_var_numel(NULL))                                                                     \
    V(cq_var_zero_grad, cq_var_zero_grad(NULL))                                                             \
    S(cq_tape_new, cq_tape_new(N(0, &O.tape), E))                                                           \
    V(cq_tape_free, cq_tape_free(NULL))                                                                     \
    V(cq_tape_reset, cq_tape_reset(NULL))                                                                   \
    V(cq_tape_set_grad_enabled, cq_tape_set_grad_enabled(NULL, true))                                       \
    V(cq_tape_grad_enabled, cq_tape_grad_enabled(NULL))                                                     \
    V(cq_tape_bytes, cq_tape_bytes(NULL))                                                                   \
    S(cq_tape_input, cq_tape_input(N(0, F.tape), N(1, F.w), N(2, &O.v), E))                                 \
    S(cq_tape_zeros, cq_tape_zeros(N(0, F.tape), 2, N(1, F.shape), N(2, &O.v), E))                          \
    V(cq_tape_alloc, cq_tape_alloc(NULL, 8, E))                                                             \
    S(cq_tape_record, cq_tape_record(N(0, F.tape), N(1, F.x), N(2, (cq_var *const[]){F.w2}), 1,             \
                                     N(3, no_backward), NULL, 0, E))                                        \
    S(cq_var_ensure_grad, cq_var_ensure_grad(F.tape, N(0, F.x), E))                                         \
    S(cq_backward, cq_backward(N(0, F.tape), N(1, F.x), E))                                                 \
    S(cq_backward_with, cq_backward_with(N(0, F.tape), N(1, F.x), N(2, F.buf), E))                          \
    S(cq_linear, cq_linear(N(0, F.tape), N(1, F.x), N(2, F.w2), NULL, N(3, &O.v), E))                       \
    V(cq_conv2d_default_opts, cq_conv2d_default_opts())                                                     \
    S(cq_conv2d, cq_conv2d(N(0, F.tape), N(1, F.img), N(2, F.img), NULL, NULL, N(3, &O.v), E))              \
    S(cq_layer_norm, cq_layer_norm(N(0, F.tape), N(1, F.x), 1, NULL, NULL, 1e-5f, N(2, &O.v), E))           \
    S(cq_rms_norm, cq_rms_norm(N(0, F.tape), N(1, F.x), NULL, 1e-5f, N(2, &O.v), E))                        \
    S(cq_batch_norm2d, cq_batch_norm2d(N(0, F.tape), N(1, F.img), NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, \
                                       N(2, &O.v), E))                                                      \
    S(cq_embedding, cq_embedding(N(0, F.tape), N(1, F.x), N(2, F.ids), 1, N(3, (const int64_t[]){2}),       \
                                 N(4, &O.v), E))                                                            \
    S(cq_relu, cq_relu(N(0, F.tape), N(1, F.x), N(2, &O.v), E))                                             \
    S(cq_gelu, cq_gelu(N(0, F.tape), N(1, F.x), false, N(2, &O.v), E))                                      \
    S(cq_silu, cq_silu(N(0, F.tape), N(1, F.x), N(2, &O.v), E))                                             \
    S(cq_softmax, cq_softmax(N(0, F.tape), N(1, F.x), N(2, &O.v), E))                                       \
    S(cq_log_softmax, cq_log_softmax(N(0, F.tape), N(1, F.x), N(2, &O.v), E))                               \
    V(cq_pool2d_default_opts, cq_pool2d_default_opts(-1))                                                   \
    S(cq_max_pool2d, cq_max_pool2d(N(0, F.tape), N(1, F.img), N(2, &(cq_pool2d_opts){0}), N(3, &O.v), E))   \
    S(cq_avg_pool2d, cq_avg_pool2d(N(0, F.tape), N(1, F.img), N(2, &(cq_pool2d_opts){0}), N(3, &O.v), E))   \
    S(cq_adaptive_avg_pool2d, cq_adaptive_avg_pool2d(N(0, F.tape), N(1, F.img), 1, 1, N(2, &O.v), E))       \
    S(cq_dropout, cq_dropout(N(0, F.tape), N(1, F.x), 0.5f, true, N(2, &O.u64), N(3, &O.v), E))             \
    S(cq_flatten, cq_flatten(N(0, F.tape), N(1, F.img), 1, -1, N(2, &O.v), E))                              \
    S(cq_reshape, cq_reshape(N(0, F.tape), N(1, F.x), 1, N(2, (const int64_t[]){8}), N(3, &O.v), E))        \
    S(cq_add, cq_add(N(0, F.tape), N(1, F.x), N(2, F.w2), N(3, &O.v), E))                                   \
    S(cq_sub, cq_sub(N(0, F.tape), N(1, F.x), N(2, F.w2), N(3, &O.v), E))                                   \
    S(cq_mul, cq_mul(N(0, F.tape), N(1, F.x), N(2, F.w2), N(3, &O.v), E))                                   \
    S(cq_scale, cq_scale(N(0, F.tape), N(1, F.x), 2.0f, N(2, &O.v), E))                                     \
    S(cq_var_matmul, cq_var_matmul(N(0, F.tape), N(1, F.x), N(2, F.w2), N(3, &O.v), E))                     \
    S(cq_sum, cq_sum(N(0, F.tape), N(1, F.x), N(2, &O.v), E))                                               \
    S(cq_mean, cq_mean(N(0, F.tape), N(1, F.x), N(2, &O.v), E))                                             \
    S(cq_cross_entropy, cq_cross_entropy(N(0, F.tape), N(1, F.x), N(2, F.ids), N(3, &O.v), E))              \
    S(cq_nll_loss, cq_nll_loss(N(0, F.tape), N(1, F.x), N(2, F.ids), N(3, &O.v), E))                        \
    S(cq_ste, cq_ste(N(0, F.tape), N(1, F.x), N(2, identity_fn), NULL, N(3, &O.v), E))                      \
    V(cq_optim_default_opts, cq_optim_default_opts((cq_optim_kind)999))                                     \
    S(cq_optim_new, cq_optim_new(N(0, &O.optim), N(1, &(cq_optim_opts){.kind = CQ_OPTIM_SGD, .lr = 0.1}),   \
                                 N(2, (cq_var *const[]){F.x}), 1, E))                                       \
    V(cq_optim_free, cq_optim_free(NULL))                                                                   \
    S(cq_optim_step, cq_optim_step(NULL, E))                                                                \
    V(cq_optim_zero_grad, cq_optim_zero_grad(NULL))                                                         \
    V(cq_optim_set_lr, cq_optim_set_lr(NULL, 0.1))                                                          \
    S(cq_dataset_load_mnist, cq_dataset_load_mnist(N(0, &O.ds), N(1, "data/mnist-t10k-images-idx3-ubyte.gz"), \
                                                   N(2, "data/mnist-t10k-labels-idx1-ubyte.gz"), E))        \
    S(cq_dataset_load_digits, cq_dataset_load_digits(N(0, &O.ds), N(1, "data/digits.csv.gz"), E))           \
    V(cq_dataset_free, cq_dataset_free(NULL))                                                               \
    V(cq_dataset_sample_numel, cq_dataset_sample_numel(NULL))                                               \
    S(cq_dataset_batch, cq_dataset_batch(N(0, F.ds), 0, 1, O.f, &O.i64, E))                     \
    S(cq_dataset_batch_indexed, cq_dataset_batch_indexed(N(0, F.ds), N(1, F.ids), 1, O.f, &O.i64, E))                                  \
    S(cq_module_new_container, cq_module_new_container(N(0, &O.mod), E))                                    \
    S(cq_module_new_sequential, cq_module_new_sequential(N(0, &O.mod), E))                                  \
    S(cq_module_new_linear, cq_module_new_linear(N(0, &O.mod), 4, 3, true, E))                              \
    S(cq_module_new_conv2d, cq_module_new_conv2d(N(0, &O.mod), 1, 1, 3, 3, NULL, true, E))                  \
    S(cq_module_new_layer_norm, cq_module_new_layer_norm(N(0, &O.mod), 1, N(1, F.shape), 1e-5f, true, E))   \
    S(cq_module_new_rms_norm, cq_module_new_rms_norm(N(0, &O.mod), 4, 1e-5f, E))                            \
    S(cq_module_new_batch_norm2d, cq_module_new_batch_norm2d(N(0, &O.mod), 4, 1e-5f, 0.1f, true, E))        \
    S(cq_module_new_embedding, cq_module_new_embedding(N(0, &O.mod), 4, 3, E))                              \
    S(cq_module_new_simple, cq_module_new_simple(N(0, &O.mod), CQ_MODULE_RELU, E))                          \
    S(cq_module_add, cq_module_add(N(0, F.mod), N(1, "child"), N(2, fresh_linear()), E))                    \
    V(cq_module_free, cq_module_free(NULL))                                                                 \
    V(cq_module_name, cq_module_name(NULL))                                                                 \
    V(cq_module_local_name, cq_module_local_name(NULL))                                                     \
    V(cq_module_get_kind, cq_module_get_kind(NULL))                                                         \
    V(cq_module_kind_name, cq_module_kind_name((cq_module_kind)999))                                        \
    V(cq_module_num_children, cq_module_num_children(NULL))                                                 \
    V(cq_module_child, cq_module_child(NULL, 0))                                                            \
    V(cq_module_find, cq_module_find(N(0, F.mod), N(1, "")))                                                \
    V(cq_module_next, cq_module_next(N(0, F.mod), N(1, F.mod)))                                             \
    V(cq_module_param, cq_module_param(N(0, F.mod), N(1, "weight")))                                        \
    V(cq_module_set_training, cq_module_set_training(NULL, true))                                           \
    V(cq_module_is_training, cq_module_is_training(NULL))                                                   \
    V(cq_module_init_params, cq_module_init_params(NULL, 1))                                                \
    S(cq_module_forward, cq_module_forward(N(0, F.tape), N(1, F.mod), N(2, F.x), N(3, &O.v), E))            \
    S(cq_module_forward_ids, cq_module_forward_ids(N(0, F.tape), N(1, F.mod), N(2, F.ids), 1,               \
                                                   N(3, (const int64_t[]){2}), N(4, &O.v), E))              \
    S(cq_model_new, cq_model_new(N(0, &O.model), NULL, N(1, fresh_linear()), no_forward, E))                \
    V(cq_model_free, cq_model_free(NULL))                                                                   \
    V(cq_model_root, cq_model_root(NULL))                                                                   \
    V(cq_model_arch, cq_model_arch(NULL))                                                                   \
    S(cq_model_forward, cq_model_forward(N(0, F.model), N(1, F.tape), N(2, F.img), N(3, &O.v), E))          \
    V(cq_model_set_training, cq_model_set_training(NULL, true))                                             \
    V(cq_model_parameters, cq_model_parameters(NULL, NULL, 4))                                              \
    V(cq_model_weight_count, cq_model_weight_count(NULL))                                                   \
    V(cq_model_weight_bytes, cq_model_weight_bytes(NULL))                                                   \
    S(cq_state_dict_new, cq_state_dict_new(N(0, &O.sd), E))                                                 \
    V(cq_state_dict_free, cq_state_dict_free(NULL))                                                         \
    S(cq_state_dict_add, cq_state_dict_add(N(0, F.sd), N(1, "new"), N(2, fresh_tensor()), E))               \
    V(cq_state_dict_count, cq_state_dict_count(NULL))                                                       \
    V(cq_state_dict_key, cq_state_dict_key(NULL, 0))                                                        \
    V(cq_state_dict_tensor, cq_state_dict_tensor(NULL, 0))                                                  \
    V(cq_state_dict_find, cq_state_dict_find(N(0, F.sd), N(1, "fc1.weight")))                               \
    S(cq_state_dict_load_safetensors, cq_state_dict_load_safetensors(N(0, FLOAT_CKPT), N(1, &O.sd), E))     \
    S(cq_state_dict_save_safetensors,                                                                       \
      cq_state_dict_save_safetensors(N(0, F.sd), N(1, "/tmp/cq-misuse-never.safetensors"), E))              \
    S(cq_model_state_dict, cq_model_state_dict(N(0, F.model), N(1, &O.sd), E))                              \
    V(cq_load_default_opts, cq_load_default_opts())                                                         \
    S(cq_model_load_state_dict, cq_model_load_state_dict(N(0, F.model), N(1, F.sd), NULL, NULL, E))         \
    S(cq_model_load_safetensors, cq_model_load_safetensors(N(0, F.model), N(1, "data/lenet_mnist.safetensors"), E)) \
    V(cq_quantize_default_opts, cq_quantize_default_opts())                                                 \
    S(cq_quantize, cq_quantize(NULL, NULL, E))                                                              \
    S(cq_calibrate_begin, cq_calibrate_begin(NULL, 0.9, E))                                                 \
    V(cq_calibrate_end, cq_calibrate_end(NULL))                                                             \
    S(cq_freeze, cq_freeze(NULL, E))                                                                        \
    V(cq_module_get_qinfo, cq_module_get_qinfo(NULL))                                                       \
    S(cq_model_qmap, cq_model_qmap(N(0, F.model), N(1, &O.qmap), E))                                        \
    S(cq_model_save, cq_model_save(N(0, F.model), N(1, "/tmp/cq-misuse-never"), E))                         \
    S(cq_model_requantize, cq_model_requantize(N(0, F.model), N(1, QUANT_CKPT), E))                         \
    S(cq_fold_conv_bn, cq_fold_conv_bn(N(0, F.model), N(1, "conv1"), N(2, "bn1"), NULL, E))                 \
    S(cq_model_evaluate, cq_model_evaluate(N(0, F.model), N(1, F.ds), 0, 1, 1, N(2, &O.i64), NULL, E))      \
    S(cq_model_calibrate, cq_model_calibrate(N(0, F.model), N(1, F.ds), 0, 1, 1, 0.9, E))                   \
    V(cq_train_default_opts, cq_train_default_opts())                                                       \
    S(cq_model_train_epoch, cq_model_train_epoch(N(0, F.model), N(1, F.optim), N(2, F.ds), 0, 1, NULL,      \
                                                 NULL, E))                                                  \
    S(cq_lenet_new, cq_lenet_new(NULL, E))                                                                  \
    S(cq_mlp_new, cq_mlp_new(N(0, &O.model), 1, N(1, F.shape), 1, E))                                      \
    S(cq_tokenizer_load, cq_tokenizer_load(N(0, LM_DIR "/tok512.bin"), N(1, &O.tok), E))                     \
    S(cq_tokenizer_parse, cq_tokenizer_parse(N(0, F.buf), 4, NULL, N(1, &O.tok), E))                        \
    V(cq_tokenizer_free, cq_tokenizer_free(NULL))                                                           \
    V(cq_tokenizer_vocab_size, cq_tokenizer_vocab_size(NULL))                                               \
    V(cq_tokenizer_bos, cq_tokenizer_bos(NULL))                                                             \
    V(cq_tokenizer_eos, cq_tokenizer_eos(NULL))                                                             \
    V(cq_tokenizer_token, cq_tokenizer_token(N(0, F.tok), 5, N(1, &O.n)))                                   \
    S(cq_tokenizer_encode, cq_tokenizer_encode(N(0, F.tok), N(1, "ab"), 2, true, N(2, &O.ids), N(3, &O.i64), E)) \
    V(cq_tokenizer_piece, cq_tokenizer_piece(N(0, F.tok), -1, 5, N(1, &O.n)))                               \
    S(cq_tokenizer_decode, cq_tokenizer_decode(N(0, F.tok), N(1, (const int32_t[]){5, 6}), 2, N(2, &O.str), &O.n, E)) \
    V(cq_lm_default_opts, cq_lm_default_opts())                                                             \
    S(cq_lm_load, cq_lm_load(N(0, LM_DIR), NULL, N(1, &O.lm), E))                                           \
    V(cq_lm_free, cq_lm_free(NULL))                                                                         \
    V(cq_lm_get_info, cq_lm_get_info(N(0, F.lm), N(1, &O.lminfo)))                                          \
    V(cq_lm_tokenizer, cq_lm_tokenizer(NULL))                                                               \
    V(cq_lm_reset, cq_lm_reset(NULL))                                                                       \
    V(cq_lm_position, cq_lm_position(NULL))                                                                 \
    S(cq_lm_forward, cq_lm_forward(N(0, F.lm), N(1, (const int32_t[]){1}), 1, N(2, F.buf), 0, E))             \
    V(cq_lm_sample, cq_lm_sample(N(0, F.buf), 8, 1.0f, 4, 0.5f, N(1, &O.u64)))                               \
    V(cq_ppl_default_opts, cq_ppl_default_opts())                                                           \
    V(cq_calib_default_opts, cq_calib_default_opts())                                                       \
    S(cq_lm_calibrate, cq_lm_calibrate(N(0, F.lm), N(1, (const int32_t[4]){1, 5, 6, 7}), 4,                  \
                                       &(cq_calib_opts){.n_ctx = 4, .momentum = 0.9}, E))                     \
    V(cq_lm_activation_scales, cq_lm_activation_scales(N(0, F.lm), 0, N(1, &O.cstr), N(2, &O.f[0]), N(3, &O.f[1]))) \
    S(cq_lm_save_calibrated, cq_lm_save_calibrated(N(0, F.lm), N(1, "/tmp/cq-misuse-never"), false, E))       \
    S(cq_lm_perplexity, cq_lm_perplexity(N(0, F.lm), NULL, N(1, (const int32_t[8]){1, 5, 6, 7, 8, 9, 10, 11}), 8, \
                                         &(cq_ppl_opts){.n_ctx = 4, .bos = 1}, N(2, &O.ppl), E))

/* Wrong shapes (and sizes) where shapes apply: each must be refused with a message. */
#define SHAPE_ROWS(W)                                                                                       \
    W(gguf_dequantize_partial_block, cq_ggml_dequantize(CQ_GGML_Q4_K, F.buf, 100, O.f, E))                 \
    W(gguf_dequantize_unknown_type, cq_ggml_dequantize(4, F.buf, 32, O.f, E))                                \
    W(gguf_open_memory_garbage, cq_gguf_open_memory(F.buf, sizeof F.buf, NULL, &O.gguf, E))                 \
    W(tensor_rank_9, cq_tensor_new(&O.t, CQ_F32, 9, (const int64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 1}, E))       \
    W(tensor_rank_negative, cq_tensor_new(&O.t, CQ_F32, -1, F.shape, E))                                    \
    W(tensor_view_negative_dim, cq_tensor_view(&O.t, CQ_F32, 1, (const int64_t[]){-4}, F.buf, E))           \
    W(group_size_not_dividing, cq_group(F.w, 0, 5, &O.t, E))                                                \
    W(symmetric_scale_shape, cq_quantize_symmetric(F.w, CQ_I8, 0, F.w, &O.t, E))                            \
    W(dequantize_symmetric_shape, cq_dequantize_symmetric(F.i8, F.w, CQ_F32, &O.t, E))                      \
    W(qweight_data_shape, cq_qweight_from_tensors(CQ_QINT8, 2, (const int64_t[]){4, 3}, -1, F.i8, F.scale,  \
                                                  NULL, true, &O.qw, E))                                    \
    W(qweight_1d, cq_qweight_quantize(F.scale, CQ_QINT4, CQ_OPT_DEFAULT, 7, &O.qw, E))                      \
    W(unpack_rows, cq_unpack(F.u8, 4, 1000, &O.t, E))                                                       \
    W(mm_weight_no_features, cq_mm_weight_new(&O.mm, &(cq_mm_weight_src){.qtype = CQ_QINT8, .data = F.buf,  \
                                                                         .scale = F.buf}, E))               \
    W(matmul_negative_rows, cq_matmul(F.mm, -1, F.buf, CQ_F32, 4, O.f, CQ_F32, 3, NULL, E))                 \
    W(matmul_short_rows, cq_matmul(F.mm, 1, F.buf, CQ_F32, 2, O.f, CQ_F32, 3, NULL, E))                     \
    W(writer_negative_dim, cq_st_writer_declare(F.stw, "neg", CQ_F32, 1, (const int64_t[]){-1}, E))         \
    W(linear_shapes, cq_linear(F.tape, F.x, F.vec3, NULL, &O.v, E))                                         \
    W(add_shapes, cq_add(F.tape, F.x, F.vec3, &O.v, E))                                                     \
    W(matmul_shapes, cq_var_matmul(F.tape, F.x, F.w2, &O.v, E))                                             \
    W(reshape_numel, cq_reshape(F.tape, F.x, 1, (const int64_t[]){7}, &O.v, E))                             \
    W(conv2d_rank, cq_conv2d(F.tape, F.x, F.img, NULL, NULL, &O.v, E))                                      \
    W(pool_rank, cq_max_pool2d(F.tape, F.x, &(cq_pool2d_opts){0}, &O.v, E))                                 \
    W(layer_norm_dims, cq_layer_norm(F.tape, F.x, 3, NULL, NULL, 1e-5f, &O.v, E))                           \
    W(embedding_ids, cq_embedding(F.tape, F.x, (const int64_t[]){0, 9}, 1, (const int64_t[]){2}, &O.v, E))  \
    W(lenet_input, cq_model_forward(F.model, F.tape, F.x, &O.v, E))                                         \
    W(linear_module_input, cq_module_forward(F.tape, F.mod, F.vec3, &O.v, E))                                \
    W(error_stats_numel, cq_error_stats_tensors(F.w, F.scale, &O.stats, E))                                 \
    W(mlp_sizes, cq_mlp_new(&O.model, 1, (const int64_t[]){4, -3}, 1, E))                                   \
    W(layer_norm_module_shape, cq_module_new_layer_norm(&O.mod, 1, (const int64_t[]){-2}, 1e-5f, true, E))  \
    W(convert_include_null, cq_convert_quantize(FLOAT_CKPT, "/tmp/cq-misuse-never",                       \
                                                &(cq_convert_opts){.weights = CQ_QINT8, .group_size = -1,     \
                                                                   .n_include = 3, .include = NULL},          \
                                                NULL, E))                                                     \
    W(dataset_batch_range, cq_dataset_batch(F.ds, -1, 1, O.f, &O.i64, E))                                  \
    W(lm_forward_bad_id, cq_lm_forward(F.lm, (const int32_t[]){1, 99999}, 2, NULL, 2, E))               \
    W(lm_forward_past_context, cq_lm_forward(F.lm, (const int32_t[]){1}, 0, NULL, 0, E))                 \
    W(lm_perplexity_too_short, cq_lm_perplexity(F.lm, NULL, (const int32_t[4]){1, 5, 6, 7}, 4,                \
                                                &(cq_ppl_opts){.n_ctx = 4}, &O.ppl, E))                           \
    W(lm_forward_bad_logits_from, cq_lm_forward(F.lm, (const int32_t[]){1}, 1, F.buf, 2, E))                \
    W(lm_load_not_a_model, cq_lm_load(FLOAT_CKPT, NULL, &O.lm, E))                                          \
    W(tokenizer_truncated, cq_tokenizer_parse((const int32_t[]){8, 0, 5}, 12, "t", &O.tok, E))              \
    W(tokenizer_decode_bad_id, cq_tokenizer_decode(F.tok, (const int32_t[]){-2}, 1, &O.str, &O.n, E))

/* ---- running the rows ----------------------------------------------------------------------- */

typedef enum { ROW_STATUS, ROW_VOID, ROW_SHAPE } row_kind;
typedef struct row {
    const char *name;
    row_kind kind;
    cq_status (*call)(void);
} row;

#define DEF_S(name, ...) static cq_status row_##name(void) { return (__VA_ARGS__); }
#define DEF_V(name, ...) static cq_status row_##name(void) { (void)(__VA_ARGS__); return CQ_E_ARG; }
#define DEF_W(name, ...) static cq_status shape_##name(void) { return (__VA_ARGS__); }
ROWS(DEF_S, DEF_V)
SHAPE_ROWS(DEF_W)

#define ROW_S(name, ...) {#name, ROW_STATUS, row_##name},
#define ROW_V(name, ...) {#name, ROW_VOID, row_##name},
#define ROW_W(name, ...) {#name, ROW_SHAPE, shape_##name},
static const row rows[] = {ROWS(ROW_S, ROW_V) SHAPE_ROWS(ROW_W)};

/* Runs one row (all its NULL variants) in this process; returns the number of failures. */
static int run_row(const row *r) {
    int failures = 0;
    g_max = -1;
    for (g_null = 0; g_null == 0 || g_null <= g_max; g_null++) {
        memset(&g_err, 0, sizeof g_err);
        cq_status s = r->call();
        if (r->kind != ROW_VOID && (s == CQ_OK || !g_err.msg[0])) {
            fprintf(stderr, "  %s: argument %d NULL (or wrong shape) gave %s with message '%s'\n", r->name, g_null,
                    cq_status_str(s), g_err.msg);
            failures++;
        }
        free_outputs();
        if (r->kind == ROW_SHAPE) break;
    }
    return failures;
}

TST(api_misuse_null_and_wrong_shapes_never_crash) {
    bool ok = make_fixtures();
    CHECKF(ok, "the fixtures could not be made");
    if (!ok) return;
    int saved = cq_get_num_threads();
    cq_set_num_threads(1); /* a forked child must not need the parent's thread pools */
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) _exit(run_row(&rows[i]) ? 1 : 0);
        int st = 0;
        CHECKF(pid > 0 && waitpid(pid, &st, 0) == pid, "%s: fork failed", rows[i].name);
        if (WIFSIGNALED(st)) fprintf(stderr, "  %s: crashed with signal %d\n", rows[i].name, WTERMSIG(st));
        if (WIFSIGNALED(st)) CHECKF(0, "%s: crashed with signal %d", rows[i].name, WTERMSIG(st));
        else CHECKF(WEXITSTATUS(st) == 0, "%s: exit status %d", rows[i].name, WEXITSTATUS(st));
    }
    cq_set_num_threads(saved);
}

/* ---- every declared function has a row ----------------------------------------------------- */

/* The cq_ function names declared at the start of a line in one header (CQ_API and the
 * return type before the name, no typedefs, macros or comments). */
static int header_names(const char *path, char names[][64], int n, int cap) {
    FILE *fp = fopen(path, "r");
    if (!fp) return n;
    char line[1024];
    while (fgets(line, sizeof line, fp) && n < cap) {
        if (!((line[0] >= 'a' && line[0] <= 'z') || (line[0] >= 'A' && line[0] <= 'Z'))) continue;
        if (!strncmp(line, "typedef", 7)) continue;
        char *paren = strchr(line, '(');
        if (!paren) continue;
        char *end = paren;
        while (end > line && end[-1] == ' ') end--;
        char *start = end;
        while (start > line && (start[-1] == '_' || (start[-1] >= 'a' && start[-1] <= 'z') ||
                                (start[-1] >= '0' && start[-1] <= '9')))
            start--;
        if (end - start < 4 || strncmp(start, "cq_", 3) || end - start >= 64) continue;
        memcpy(names[n], start, (size_t)(end - start));
        names[n][end - start] = '\0';
        n++;
    }
    fclose(fp);
    return n;
}

TST(api_misuse_every_declared_function_has_a_row) {
    static char names[1024][64];
    int n = header_names("include/cquanto.h", names, 0, 1024);
    DIR *d = opendir("include/cquanto");
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 2, ".h")) continue;
        char path[512];
        snprintf(path, sizeof path, "include/cquanto/%s", e->d_name);
        n = header_names(path, names, n, 1024);
    }
    if (d) closedir(d);
    CHECKF(n > 200, "only %d functions found in the public headers", n);
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; !found && k < sizeof rows / sizeof rows[0]; k++)
            found = rows[k].kind != ROW_SHAPE && !strcmp(rows[k].name, names[i]);
        CHECKF(found, "%s is declared in the public headers but has no row in test_api_misuse.c", names[i]);
    }
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        bool found = rows[k].kind == ROW_SHAPE;
        for (int i = 0; !found && i < n; i++) found = !strcmp(rows[k].name, names[i]);
        CHECKF(found, "row %s names no function of the public headers", rows[k].name);
    }
}
