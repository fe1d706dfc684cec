/*
 * kernels_avx512.c - the avx512 level's kernel table (work in progress: ops not yet written fall
 * back to the next lower level through the dispatcher).
 */
#include "kernels/kernels_internal.h"

const cq__kernels cq__kernels_avx512 = {0};
