/*
 * kernels_amx_avx512.c - the amx level's kernel table (work in progress: ops not yet written
 * fall back to the avx512 level through the dispatcher).
 */
#include "kernels/kernels_internal.h"

const cq__kernels cq__kernels_amx = {0};
