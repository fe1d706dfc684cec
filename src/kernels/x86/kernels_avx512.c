/*
 * kernels_avx512.c - the avx512 level (AVX-512 F/BW/VL/DQ + VNNI): the shared SIMD kernel
 * sources compiled with the AVX-512 vocabulary. Only this translation unit (and the AMX one)
 * gets the AVX-512 flags.
 */
#include "kernels/x86/simd_avx512.h"

#define SIMD_EXACT_MR 12 /* f32 prefill: 12 rows x 2 tiles = 24 accumulators of 32 registers */
#define SIMD_INT_MR 6    /* integer prefill: 6 rows x 2 tiles, plus the float block sums */

#include "kernels/simd_common.inc"
#include "kernels/vec_simd.inc"
#include "kernels/matmul_simd.inc"

#define SIMD_LIST_NAME cq__kernels_avx512
#define SIMD_ISA CQ_ISA_AVX512
#define SIMD_ISA_NAME "avx512"
#include "kernels/simd_table.inc"
