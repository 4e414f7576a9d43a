/* gemm.h — pixdiff's own single-precision GEMM, used by the layers instead of cblas_sgemm.
 *
 * Why not OpenBLAS: OpenBLAS 0.3.21 (Debian 12) gives results that change with its thread count
 * (its edge micro-kernels accumulate differently, and the thread split moves the edges), it
 * barely scales from 1 to 2 threads at the U-Net's per-sample shapes (measured: 99 -> 91 GFLOP/s
 * for 64x1024x576), and it runs its AVX2 Haswell kernels on CPUs it does not know (Zen 5) even
 * when they have AVX-512. Here every element of C is
 * one fused-multiply-add chain over k in increasing order, starting from beta·C (beta 0 or 1) or
 * zero, whatever the tiling, the thread count or the neighbouring rows and columns: a row of a
 * batched product, or an image's convolution, is bit-identical in any batch on any thread count
 * (for one CPU kernel; AVX-512, AVX2+FMA and a portable kernel differ from each other).
 *
 * Row-major, cblas_sgemm's meaning: C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C.
 * alpha is folded into A when it is packed. Threads: one OpenMP region inside the call; call it
 * from outside OpenMP regions (inside one, it runs on the calling thread alone). Packing buffers
 * are per calling thread, grown on demand and kept for reuse, so there is no allocation once the
 * largest shape has been seen; pd_gemm_release frees them.
 */
#ifndef PD_GEMM_H
#define PD_GEMM_H

#include <stddef.h>

void pd_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);

/* Batched: for b < batch, C_b = alpha·op(A_b)·op(B_b) + beta·C_b with X_b = X + b·strideX.
 * strideA = 0 shares one A (packed once for the whole batch, e.g. a layer's weights). One
 * parallel region covers all items; item b's result is the one pd_sgemm would give for it. */
void pd_sgemm_batch(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                    int lda, size_t strideA, const float *B, int ldb, size_t strideB, float beta,
                    float *C, int ldc, size_t strideC, int batch);

/* The same with op(B_b) produced on the fly (e.g. an implicit im2col) instead of read from a
 * matrix: pack(dst, nr, k0, kc, j0, w, b, ctx) writes rows k0..k0+kc-1, columns j0..j0+w-1 of
 * op(B_b) (K x N) as dst[k·nr + j] for k < kc, j < w, and zeros in columns w..nr-1. It runs on
 * several threads at once, on disjoint panels. */
typedef void (*pd_gemm_bpack)(float *dst, int nr, int k0, int kc, int j0, int w, int b,
                              const void *ctx);
void pd_sgemm_packb(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                    size_t strideA, pd_gemm_bpack pack, const void *ctx, float beta, float *C,
                    int ldc, size_t strideC, int batch);

/* Both operands produced on the fly: apack(dst, mr, i0, rows, k0, kc, b, ctx) writes
 * op(A_b)[i0 + r, k0 + k] (alpha already applied) as dst[k·mr + r] for r < rows, k < kc, and zeros
 * in rows rows..mr-1. a_shared = 1: every item uses the A of b = 0, packed once; a_shared = 2: the
 * same, and A is the very one the previous a_shared call on this thread packed (same M, K and
 * contents), so its packed copy is reused when still there (a conv layer's weights across sample
 * groups). */
typedef void (*pd_gemm_apack)(float *dst, int mr, int i0, int rows, int k0, int kc, int b,
                              const void *ctx);
void pd_sgemm_custom(int M, int N, int K, pd_gemm_apack apack, const void *actx, int a_shared,
                     pd_gemm_bpack bpack, const void *bctx, float beta, float *C, int ldc,
                     size_t strideC, int batch);

/* Frees the calling thread's packing buffers (the next call allocates them again). */
void pd_gemm_release(void);

/* Micro-kernels, best first. pd_gemm_use_kernel selects one for the whole process (tests compare
 * them); it returns 0 if the CPU cannot run it. pd_gemm_kernel_name names the one in use. */
enum { PD_GEMM_AUTO = -1, PD_GEMM_AVX512 = 0, PD_GEMM_AVX2 = 1, PD_GEMM_PORTABLE = 2 };
int pd_gemm_use_kernel(int kernel);
const char *pd_gemm_kernel_name(void);

#endif
