/* dtype.c - placeholder until the dtype layer lands */
#include "internal.h"
size_t cq_dtype_size(cq_dtype t) { switch (t) { case CQ_F32: case CQ_I32: case CQ_U32: return 4; case CQ_F16: case CQ_BF16: case CQ_I16: case CQ_U16: return 2; case CQ_F64: case CQ_I64: case CQ_U64: return 8; case CQ_DTYPE_INVALID: case CQ_DTYPE_COUNT: return 0; default: return 1; } }
