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

const cq__kernels cq__kernels_avx512 = {
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
