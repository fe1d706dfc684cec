/*
 * test_optim.c - optimizer steps against PyTorch 2.6 (tests/data/nn_golden/optim.safetensors,
 * from tools/gen_nn_golden.py): SGD (plain, momentum with dampening and weight decay,
 * nesterov), Adam (plain; amsgrad with weight decay), AdamW and Adadelta (defaults; rho and
 * weight decay), two parameters fed the same gradients for five steps. Bound per step and
 * parameter: max |ours - torch| <= 1e-6 * max |torch|. Adam, AdamW and Adadelta measure bit-exact;
 * SGD differs by an ulp where PyTorch's vectorized add fuses the multiply-add (worst 1.0e-7). Also: defaults equal torch's, argument checks,
 * params without a gradient are skipped.
 */
#include "test_nn_util.h"

#define OPTIM_PATH "tests/data/nn_golden/optim.safetensors"
#define OPTIM_TOL 1e-6

static double jnum(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static cq_optim_opts opts_from_json(const json_t *p) {
    const char *kind = json_string_value(json_object_get(p, "kind"));
    cq_optim_kind k = strcmp(kind, "sgd") == 0 ? CQ_OPTIM_SGD
                      : strcmp(kind, "adam") == 0 ? CQ_OPTIM_ADAM
                      : strcmp(kind, "adamw") == 0 ? CQ_OPTIM_ADAMW
                                                    : CQ_OPTIM_ADADELTA;
    cq_optim_opts o = cq_optim_default_opts(k);
    o.lr = jnum(p, "lr");
    o.weight_decay = jnum(p, "weight_decay");
    o.maximize = json_is_true(json_object_get(p, "maximize"));
    if (k == CQ_OPTIM_SGD) {
        o.momentum = jnum(p, "momentum");
        o.dampening = jnum(p, "dampening");
        o.nesterov = json_is_true(json_object_get(p, "nesterov"));
    } else if (k == CQ_OPTIM_ADADELTA) {
        o.rho = jnum(p, "rho");
        o.eps = jnum(p, "eps");
    } else {
        o.beta1 = json_number_value(json_array_get(json_object_get(p, "betas"), 0));
        o.beta2 = json_number_value(json_array_get(json_object_get(p, "betas"), 1));
        o.eps = jnum(p, "eps");
        o.amsgrad = json_is_true(json_object_get(p, "amsgrad"));
    }
    return o;
}

static void run_optim_case(cq_st_file *f, const char *cname) {
    cq_err err = {0};
    json_t *p = golden_params(f, cname);
    if (!p) return;
    cq_optim_opts o = opts_from_json(p);
    cq_var *params[2] = {0};
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof name, "p0.%d", i);
        CHECK(cq_var_from_tensor(&params[i], golden_get(f, "fixture", name), true, &err) == CQ_OK);
        CHECK(cq_var_ensure_grad(NULL, params[i], &err) == CQ_OK);
    }
    cq_optim *opt = NULL;
    CHECKF(cq_optim_new(&opt, &o, params, 2, &err) == CQ_OK, "%s: %s", cname, err.msg);
    for (int s = 0; s < 5 && opt; s++) {
        cq_optim_zero_grad(opt);
        for (int i = 0; i < 2; i++) {
            char name[32];
            snprintf(name, sizeof name, "grad.%d.%d", s, i);
            const cq_tensor *g = golden_get(f, "fixture", name);
            CHECK(g && cq_tensor_numel(g) == cq_var_numel(params[i]));
            if (g) memcpy(params[i]->grad->data, g->data, cq_tensor_nbytes(g));
        }
        CHECK(cq_optim_step(opt, &err) == CQ_OK);
        for (int i = 0; i < 2; i++) {
            char name[48], what[48];
            snprintf(name, sizeof name, "p.%d.%d", s, i);
            snprintf(what, sizeof what, "step %d param %d", s, i);
            golden_compare(cname, what, cq_var_f32(params[i]), cq_var_numel(params[i]), golden_get(f, cname, name),
                           OPTIM_TOL);
        }
    }
    cq_optim_free(opt);
    for (int i = 0; i < 2; i++) cq_var_free(params[i]);
    json_decref(p);
}

TST(optim_steps_match_pytorch) {
    cq_st_file *f = golden_open(OPTIM_PATH);
    if (!f) return;
    const char *cases[] = {"sgd_plain", "sgd_momentum", "sgd_nesterov", "adam", "adam_amsgrad_wd", "adamw", "adadelta",
                           "adadelta_wd"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) run_optim_case(f, cases[c]);
    cq_st_close(f);
}

/* The golden "adam", "adamw" and "adadelta" cases were made with torch's defaults (except lr
 * for Adam/AdamW and weight_decay for AdamW), so our defaults must equal the recorded values. */
TST(optim_defaults_match_pytorch) {
    cq_st_file *f = golden_open(OPTIM_PATH);
    if (!f) return;
    json_t *adam = golden_params(f, "adam"), *adadelta = golden_params(f, "adadelta");
    cq_optim_opts a = cq_optim_default_opts(CQ_OPTIM_ADAM), d = cq_optim_default_opts(CQ_OPTIM_ADADELTA);
    cq_optim_opts w = cq_optim_default_opts(CQ_OPTIM_ADAMW), s = cq_optim_default_opts(CQ_OPTIM_SGD);
    CHECK(a.beta1 == json_number_value(json_array_get(json_object_get(adam, "betas"), 0)));
    CHECK(a.beta2 == json_number_value(json_array_get(json_object_get(adam, "betas"), 1)));
    CHECK(a.eps == jnum(adam, "eps") && a.weight_decay == 0.0 && !a.amsgrad);
    CHECK(d.lr == jnum(adadelta, "lr") && d.rho == jnum(adadelta, "rho") && d.eps == jnum(adadelta, "eps"));
    CHECK(w.weight_decay == 1e-2 && w.beta1 == a.beta1 && w.eps == a.eps && w.lr == 1e-3); /* torch AdamW */
    CHECK(s.lr == 1e-3 && s.momentum == 0.0 && !s.nesterov);                                /* torch 2.x SGD */
    json_decref(adam);
    json_decref(adadelta);
    cq_st_close(f);
}

TST(optim_rejects_bad_options_and_skips_params_without_grad) {
    cq_err err = {0};
    const int64_t shape[1] = {3};
    cq_var *p = tnn_var(1, shape, true), *q = tnn_var(1, shape, true);
    cq_optim *o = NULL;
    cq_optim_opts bad = cq_optim_default_opts(CQ_OPTIM_SGD);
    bad.nesterov = true; /* without momentum */
    CHECK(cq_optim_new(&o, &bad, &p, 1, &err) == CQ_E_ARG && o == NULL && strstr(err.msg, "nesterov"));
    bad = cq_optim_default_opts(CQ_OPTIM_ADAM);
    bad.beta2 = 1.0;
    CHECK(cq_optim_new(&o, &bad, &p, 1, &err) == CQ_E_ARG && strstr(err.msg, "betas"));
    bad.beta2 = 0.999;
    bad.lr = -1;
    CHECK(cq_optim_new(&o, &bad, &p, 1, &err) == CQ_E_ARG && strstr(err.msg, "learning rate"));

    cq_optim_opts ok = cq_optim_default_opts(CQ_OPTIM_ADAM);
    cq_var *both[2] = {p, q};
    for (int i = 0; i < 3; i++) cq_var_f32(p)[i] = cq_var_f32(q)[i] = 1.0f;
    CHECK(cq_optim_new(&o, &ok, both, 2, &err) == CQ_OK);
    CHECK(cq_var_ensure_grad(NULL, p, &err) == CQ_OK);
    for (int i = 0; i < 3; i++) ((float *)p->grad->data)[i] = 0.5f;
    CHECK(cq_optim_step(o, &err) == CQ_OK);
    CHECK(cq_var_f32(p)[0] < 1.0f && q->grad == NULL && cq_var_f32(q)[0] == 1.0f); /* q had no grad: untouched */
    cq_optim_zero_grad(o);
    CHECK(((float *)p->grad->data)[0] == 0.0f);
    cq_optim_free(o);
    cq_var_free(p);
    cq_var_free(q);
}
