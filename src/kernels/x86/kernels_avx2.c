/*
 * kernels_avx2.c - the avx2 level (AVX2 + FMA + F16C): the shared SIMD kernel sources
 * compiled with the AVX2 vocabulary (16 lanes as register pairs). Only this translation unit
 * gets the AVX2 flags.
 */
#include "kernels/x86/simd_avx2.h"

#define SIMD_EXACT_MR 3 /* f32 prefill: 3 rows x 2 tiles x 2 halves = 12 of 16 registers */
#define SIMD_INT_MR 2   /* integer prefill: 2 rows x 2 tiles x 2 halves */

#include "kernels/simd_common.inc"
#include "kernels/vec_simd.inc"
#include "kernels/matmul_simd.inc"

#define SIMD_LIST_NAME cq__kernels_avx2
#define SIMD_ISA CQ_ISA_AVX2
#define SIMD_ISA_NAME "avx2"
#include "kernels/simd_table.inc"
