/*
 * kernels_avx2.c - the avx2 level's kernel table (work in progress: ops not yet written fall
 * back to the ref level through the dispatcher).
 */
#include "kernels/kernels_internal.h"

const cq__kernels cq__kernels_avx2 = {0};
