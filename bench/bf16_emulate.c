/* bf16_emulate — an LD_PRELOAD shim that makes every cblas_sgemm of the program it is loaded
 * into compute as OpenBLAS's cblas_sbgemm would: both operands rounded to bfloat16 (round to
 * nearest, ties to even: the top 16 bits of the float), products accumulated in float, alpha,
 * beta and C in float. It measures what bf16 products would do to a network's outputs and to
 * sample quality (issue 17, docs/benchmarks.md "bf16"), which Debian's OpenBLAS, built without
 * sbgemm, cannot show; it says nothing about speed (it adds two copies per call).
 *
 *   LD_PRELOAD=build/libbf16_emulate.so build/pixdiff sample ...
 *
 * Only calls through the dynamic symbol are caught: pixdiff links OpenBLAS as a shared library,
 * so all of its products (the Winograd path's 36 per sample, im2col, 1x1 convolutions, linear
 * layers through gemm_sgemm_st) are. cblas_sgemv stays in float, as OpenBLAS 0.3.21 has no bf16
 * matrix-vector product either. Accumulation order: sbgemm's AVX512-BF16 kernel adds products
 * in pairs (vdpbf16ps), this shim in OpenBLAS's float order; both keep float's 24 bits in the
 * sums, so the difference is far below the operands' rounding (2^-9 relative). Not part of the
 * library, not used by any test; it has its own check (bench/bf16_emulate_check.sh).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_NEXT */
#endif
#include <cblas.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unet/bf16.h"

typedef void (*sgemm_fn)(const enum CBLAS_ORDER, const enum CBLAS_TRANSPOSE,
                         const enum CBLAS_TRANSPOSE, const blasint, const blasint, const blasint,
                         const float, const float *, const blasint, const float *, const blasint,
                         const float, float *, const blasint);

/* x rounded to the nearest bfloat16 (ties to even), returned as a float; NaN stays NaN. */
static float to_bf16(float x) { return bf16_to_float(bf16_from_float(x)); }

/* Per-thread copies (the pool's workers call concurrently), grown on demand. */
static __thread float *copy_buf[2];
static __thread size_t copy_cap[2];

/* `outer` runs of `inner` floats, ld apart, rounded into a packed copy (ld = inner). */
static const float *rounded(int which, const float *src, blasint outer, blasint inner, blasint ld) {
    size_t n = (size_t)outer * inner;
    if (n > copy_cap[which]) {
        float *p = realloc(copy_buf[which], n * sizeof *p);
        if (!p) {
            fprintf(stderr, "bf16_emulate: out of memory\n");
            abort();
        }
        copy_buf[which] = p;
        copy_cap[which] = n;
    }
    float *dst = copy_buf[which];
    for (blasint o = 0; o < outer; o++)
        for (blasint i = 0; i < inner; i++)
            dst[(size_t)o * inner + i] = to_bf16(src[(size_t)o * ld + i]);
    return dst;
}

void cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                 const enum CBLAS_TRANSPOSE tb, const blasint M, const blasint N, const blasint K,
                 const float alpha, const float *A, const blasint lda, const float *B,
                 const blasint ldb, const float beta, float *C, const blasint ldc) {
    static sgemm_fn real;
    if (!real) {
        real = (sgemm_fn)dlsym(RTLD_NEXT, "cblas_sgemm");
        if (!real) {
            fprintf(stderr, "bf16_emulate: no cblas_sgemm after this library\n");
            abort();
        }
    }
    if (M <= 0 || N <= 0 || K <= 0) {
        real(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* The stored shapes: row-major op(A) = A is M rows of K, A^T is K rows of M; column-major
     * stores columns, so the roles swap. */
    int row = order == CblasRowMajor, na = ta == CblasNoTrans, nb = tb == CblasNoTrans;
    blasint a_outer = row == na ? M : K, a_inner = row == na ? K : M;
    blasint b_outer = row == nb ? K : N, b_inner = row == nb ? N : K;
    const float *a = rounded(0, A, a_outer, a_inner, lda), *b = rounded(1, B, b_outer, b_inner, ldb);
    real(order, ta, tb, M, N, K, alpha, a, a_inner, b, b_inner, beta, C, ldc);
}
