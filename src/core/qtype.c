/*
 * qtype.c - the qtype traits table, the one place that says what each qtype is: its family,
 * bits, range, storage, state-dict key, the roles it may take and the optimizers that apply
 * (optimum-quanto's qtype.py and the checks of its quantize(), QModuleMixin and optimizers).
 * Every layer reads it: quant for the math, nn and convert for their checks, the kernels for
 * the fp8 ranges, the CLI for its choices. qfloat8 is an alias of qfloat8_e4m3fn and never
 * written to files.
 */
#include "core/internal.h"

#define W CQ_QROLE_WEIGHTS
#define A CQ_QROLE_ACTIVATIONS
#define SYMMETRIC_OPTS CQ_QOPT_BIT(CQ_OPT_ABSMAX)
#define AFFINE_OPTS (CQ_QOPT_BIT(CQ_OPT_MAX) | CQ_QOPT_BIT(CQ_OPT_HQQ))

static const cq_qtype_info g_qtypes[CQ_QTYPE_COUNT] = {
    [CQ_QNONE] = {.name = "none", .short_name = "none"},
    /* name, short name, family, bits, dtype, storage, packed, qmin, qmax, data key, roles, in files, optimizers */
    [CQ_QINT2] = {"qint2", "int2", CQ_QFAMILY_AFFINE, 2, CQ_I8, CQ_U8, true, -2, 1, "_data._data", W, true, AFFINE_OPTS},
    [CQ_QINT4] = {"qint4", "int4", CQ_QFAMILY_AFFINE, 4, CQ_I8, CQ_U8, true, -8, 7, "_data._data", W, true, AFFINE_OPTS},
    [CQ_QINT8] = {"qint8", "int8", CQ_QFAMILY_SYMMETRIC, 8, CQ_I8, CQ_I8, false, -128, 127, "_data", W | A, true,
                  SYMMETRIC_OPTS},
    [CQ_QFLOAT8_E4M3FN] = {"qfloat8_e4m3fn", "float8", CQ_QFAMILY_FLOAT, 8, CQ_F8_E4M3FN, CQ_F8_E4M3FN, false, -448,
                           448, "_data", W | A, true, SYMMETRIC_OPTS},
    [CQ_QFLOAT8_E5M2] = {"qfloat8_e5m2", "float8_e5m2", CQ_QFAMILY_FLOAT, 8, CQ_F8_E5M2, CQ_F8_E5M2, false, -57344,
                         57344, "_data", W | A, true, SYMMETRIC_OPTS},
    /* the reference safetensors (0.5.3) has no F8_E4M3FNUZ: never in converted checkpoints */
    [CQ_QFLOAT8_E4M3FNUZ] = {"qfloat8_e4m3fnuz", "float8_e4m3fnuz", CQ_QFAMILY_FLOAT, 8, CQ_F8_E4M3FNUZ,
                             CQ_F8_E4M3FNUZ, false, -240, 240, "_data", W | A, false, SYMMETRIC_OPTS},
};

const cq_qtype_info *cq_qtype_get(cq_qtype q) {
    return (q > CQ_QNONE && q < CQ_QTYPE_COUNT) ? &g_qtypes[q] : NULL;
}

const char *cq_qtype_name(cq_qtype q) {
    return (q >= CQ_QNONE && q < CQ_QTYPE_COUNT) ? g_qtypes[q].name : "invalid";
}

cq_qtype_family cq_qtype_family_of(cq_qtype q) {
    const cq_qtype_info *qi = cq_qtype_get(q);
    return qi ? qi->family : CQ_QFAMILY_NONE;
}

bool cq_qtype_takes(cq_qtype q, unsigned role, bool in_files) {
    const cq_qtype_info *qi = cq_qtype_get(q);
    return qi && (qi->roles & role) == role && (!in_files || qi->in_files);
}

bool cq_qtype_optimizer_applies(cq_qtype q, cq_optimizer_kind opt) {
    const cq_qtype_info *qi = cq_qtype_get(q);
    if (!qi || opt < CQ_OPT_DEFAULT || opt > CQ_OPT_HQQ) return false;
    return opt == CQ_OPT_DEFAULT || (qi->optimizers & CQ_QOPT_BIT(opt));
}

const char *cq_qtype_choices(unsigned role, bool in_files, bool with_none, const char *sep, const char *last,
                             char *buf, size_t n) {
    const char *names[CQ_QTYPE_COUNT];
    int k = 0;
    if (with_none) names[k++] = g_qtypes[CQ_QNONE].short_name;
    for (int q = CQ_QNONE + 1; q < CQ_QTYPE_COUNT; q++)
        if (cq_qtype_takes((cq_qtype)q, role, in_files)) names[k++] = g_qtypes[q].short_name;
    size_t used = 0;
    if (!buf || !n) return "";
    if (!sep) sep = "";
    if (!last) last = sep;
    buf[0] = '\0';
    for (int i = 0; i < k && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i == 0 ? "" : i == k - 1 ? last : sep, names[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

const cq_qtype_info *cq__qtype_storing(cq_dtype dt) {
    for (int q = CQ_QNONE + 1; q < CQ_QTYPE_COUNT; q++)
        if (!g_qtypes[q].packed && g_qtypes[q].storage == dt) return &g_qtypes[q];
    return NULL;
}

cq_status cq_qtype_parse(const char *s, cq_qtype *out, cq_err *err) {
    CQ__ARG(out);
    CQ__ARG(s);
    static const struct {
        const char *name;
        cq_qtype q;
    } aliases[] = {{"qfloat8", CQ_QFLOAT8_E4M3FN}, {"float8_e4m3fn", CQ_QFLOAT8_E4M3FN}};
    if (s) {
        for (int q = CQ_QNONE; q < CQ_QTYPE_COUNT; q++)
            if (!strcmp(s, g_qtypes[q].name) || !strcmp(s, g_qtypes[q].short_name)) return *out = (cq_qtype)q, CQ_OK;
        for (size_t i = 0; i < CQ_ARRAY_LEN(aliases); i++)
            if (!strcmp(s, aliases[i].name)) return *out = aliases[i].q, CQ_OK;
    }
    return cq_err_set(err, CQ_E_ARG,
                      "unknown qtype '%s' (expected int2, int4, int8, float8, float8_e5m2, "
                      "float8_e4m3fnuz, their q-prefixed names, or none)",
                      s ? s : "(null)");
}
