/*
 * dtype.c - the dtype table: element size and the safetensors spelling of each dtype.
 * Float conversions live in dtype_convert.c.
 */
#include "internal.h"

typedef struct {
    const char *name; /* safetensors header spelling */
    size_t size;
    bool is_float;
} dtype_info;

static const dtype_info g_dtypes[CQ_DTYPE_COUNT] = {
    [CQ_DTYPE_INVALID] = {"INVALID", 0, false},
    [CQ_F32] = {"F32", 4, true},
    [CQ_F16] = {"F16", 2, true},
    [CQ_BF16] = {"BF16", 2, true},
    [CQ_F8_E4M3FN] = {"F8_E4M3", 1, true},
    [CQ_F8_E5M2] = {"F8_E5M2", 1, true},
    [CQ_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 1, true},
    [CQ_I8] = {"I8", 1, false},
    [CQ_U8] = {"U8", 1, false},
    [CQ_I16] = {"I16", 2, false},
    [CQ_I32] = {"I32", 4, false},
    [CQ_I64] = {"I64", 8, false},
    [CQ_U16] = {"U16", 2, false},
    [CQ_U32] = {"U32", 4, false},
    [CQ_U64] = {"U64", 8, false},
    [CQ_F64] = {"F64", 8, true},
    [CQ_BOOL] = {"BOOL", 1, false},
};

static bool valid(cq_dtype t) { return t > CQ_DTYPE_INVALID && t < CQ_DTYPE_COUNT; }

size_t cq_dtype_size(cq_dtype t) { return valid(t) ? g_dtypes[t].size : 0; }

const char *cq_dtype_name(cq_dtype t) { return valid(t) ? g_dtypes[t].name : "INVALID"; }

bool cq_dtype_is_float(cq_dtype t) { return valid(t) && g_dtypes[t].is_float; }

cq_dtype cq_dtype_from_name(const char *s) {
    if (!s) return CQ_DTYPE_INVALID;
    for (int t = CQ_DTYPE_INVALID + 1; t < CQ_DTYPE_COUNT; t++)
        if (!strcmp(s, g_dtypes[t].name)) return (cq_dtype)t;
    return CQ_DTYPE_INVALID;
}
