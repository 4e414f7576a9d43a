/* bf16.h — bfloat16 (the top 16 bits of an IEEE float: 8 exponent bits, 7 stored mantissa bits),
 * the operand format of OpenBLAS's cblas_sbgemm (unet/gemm.h) and of AVX512-BF16's vdpbf16ps.
 * Rounding is to nearest, ties to even, as cblas_sbstobf16 and PyTorch's float->bfloat16
 * conversion do; a NaN stays a NaN (quiet), whatever its payload bits. Header-only: the im2col
 * loops inline it, and bench/bf16_emulate.c rounds with the same code. */
#ifndef PD_BF16_H
#define PD_BF16_H

#include <stdint.h>
#include <string.h>

/* Branch-free, so that a loop over it vectorizes (unet/layers.c's round_bf16). */
static inline uint16_t bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;   /* ties to even: up past half,
                                                                      or at half when odd */
    uint32_t quiet = (u >> 16) | 0x0040u;   /* a NaN stays one, however low its payload bits */
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

#endif
