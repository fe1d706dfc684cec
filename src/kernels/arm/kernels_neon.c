/*
 * kernels_neon.c - the neon level (AArch64 Advanced SIMD + dot product): the shared SIMD
 * kernel sources compiled with the NEON vocabulary (16 lanes as four 128-bit registers). Only
 * this translation unit gets the -march=armv8.2-a+dotprod flags.
 */
#include "kernels/arm/simd_neon.h"

#define SIMD_EXACT_MR 2 /* f32 prefill: 2 rows x 2 tiles x 4 registers */
#define SIMD_INT_MR 2   /* integer prefill: 2 rows x 2 tiles, plus the float block sums */
#define SIMD_EXACT_DECODE_NT 2 /* f32 decode: 2 tiles x (sum, scale, shift) x 4 = 24 of 32 registers */
#define UNROLL_CODES           /* the codes of a chunk looped, not unrolled (matmul_simd.inc) */

#include "kernels/simd_common.inc"
#include "kernels/vec_simd.inc"
#include "kernels/matmul_simd.inc"

#define SIMD_LIST_NAME cq__kernels_neon
#define SIMD_ISA CQ_ISA_NEON
#define SIMD_ISA_NAME "neon"
#include "kernels/simd_table.inc"
