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

const cq__kernels cq__kernels_avx2 = {
    .f32_to_f16 = simd_f32_to_f16,
    .f16_to_f32 = simd_f16_to_f32,
    .f32_to_bf16 = simd_f32_to_bf16,
    .bf16_to_f32 = simd_bf16_to_f32,
    .f32_to_e4m3 = simd_f32_to_e4m3,
    .e4m3_to_f32 = simd_e4m3_to_f32,
    .f32_to_e5m2 = simd_f32_to_e5m2,
    .e5m2_to_f32 = simd_e5m2_to_f32,
    .absmax = simd_absmax,
    .quantize_i8 = simd_quantize_i8,
    .dequantize_i8 = simd_dequantize_i8,
    .sum_i8 = simd_sum_i8,
    .quantize_rows = simd_quantize_rows,
    .matmul_w8a8 = simd_matmul_w8a8,
    .matmul_exact = simd_matmul_exact,
    .matmul_fast = simd_matmul_fast,
    .scratch_exact = simd_scratch_exact,
    .scratch_fast = simd_scratch_fast,
};
