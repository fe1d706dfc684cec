/*
 * qtype.c - the qtype table (bits, range, storage dtype) and name parsing, following
 * optimum-quanto's qtype.py. qfloat8 is an alias of qfloat8_e4m3fn and never written to files.
 */
#include "core/internal.h"

static const cq_qtype_info g_qtypes[CQ_QTYPE_COUNT] = {
    [CQ_QNONE] = {"none", 0, false, CQ_DTYPE_INVALID, 0, 0},
    [CQ_QINT2] = {"qint2", 2, false, CQ_I8, -2, 1},
    [CQ_QINT4] = {"qint4", 4, false, CQ_I8, -8, 7},
    [CQ_QINT8] = {"qint8", 8, false, CQ_I8, -128, 127},
    [CQ_QFLOAT8_E4M3FN] = {"qfloat8_e4m3fn", 8, true, CQ_F8_E4M3FN, -448, 448},
    [CQ_QFLOAT8_E5M2] = {"qfloat8_e5m2", 8, true, CQ_F8_E5M2, -57344, 57344},
    [CQ_QFLOAT8_E4M3FNUZ] = {"qfloat8_e4m3fnuz", 8, true, CQ_F8_E4M3FNUZ, -240, 240},
};

const cq_qtype_info *cq_qtype_get(cq_qtype q) {
    return (q > CQ_QNONE && q < CQ_QTYPE_COUNT) ? &g_qtypes[q] : NULL;
}

const char *cq_qtype_name(cq_qtype q) {
    return (q >= CQ_QNONE && q < CQ_QTYPE_COUNT) ? g_qtypes[q].name : "invalid";
}

cq_status cq_qtype_parse(const char *s, cq_qtype *out, cq_err *err) {
    static const struct {
        const char *name;
        cq_qtype q;
    } aliases[] = {
        {"none", CQ_QNONE},          {"qfloat8", CQ_QFLOAT8_E4M3FN}, {"float8", CQ_QFLOAT8_E4M3FN},
        {"int2", CQ_QINT2},          {"int4", CQ_QINT4},             {"int8", CQ_QINT8},
        {"float8_e4m3fn", CQ_QFLOAT8_E4M3FN}, {"float8_e5m2", CQ_QFLOAT8_E5M2},
        {"float8_e4m3fnuz", CQ_QFLOAT8_E4M3FNUZ},
    };
    if (s) {
        for (int q = CQ_QINT2; q < CQ_QTYPE_COUNT; q++)
            if (!strcmp(s, g_qtypes[q].name)) return *out = (cq_qtype)q, CQ_OK;
        for (size_t i = 0; i < CQ_ARRAY_LEN(aliases); i++)
            if (!strcmp(s, aliases[i].name)) return *out = aliases[i].q, CQ_OK;
    }
    return cq_err_set(err, CQ_E_ARG,
                      "unknown qtype '%s' (expected int2, int4, int8, float8, float8_e5m2, "
                      "float8_e4m3fnuz, their q-prefixed names, or none)",
                      s ? s : "(null)");
}
