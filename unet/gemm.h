/* gemm.h — the layers' matrix products: OpenBLAS cblas_sgemm / cblas_sgemv on a fixed, shape-only
 * decomposition, scheduled by our own pool loops (core/pool.h; DESIGN.md convention 8).
 *
 * Why a scheduler and not one cblas_sgemm call: OpenBLAS's multithreaded GEMM splits the work by
 * its thread count, and its edge kernels accumulate differently from its main kernel, so a
 * product's bits change with the thread count. A single-threaded call, though, is bit-reproducible
 * for a given (M, N, K, transposes) whatever the pointers, leading dimensions or calling thread.
 * So every product here is cut into tiles whose sizes depend only on (M, N, K) (gemm_tiles),
 * and each tile is one single-threaded product (gemm_sgemm_st: one cblas_sgemm, or row blocks of a
 * shape-only size); a pool loop hands tiles to threads. An element's value then depends only on
 * the shape, never on the thread count or the batch size.
 *
 * Single-threaded BLAS: CMake links Debian's OpenMP build of OpenBLAS, which runs a call on the
 * calling thread alone when omp_in_parallel() is true or omp_get_max_threads() is 1. gemm_sgemm_st
 * and gemm_sgemv_st make sure of it everywhere (outside an active OpenMP region they set the calling
 * task's thread count to 1 for the call; the pool's workers hold 1 already, but the thread that
 * called core_pool_for, which runs items too, need not), so they may be called from any loop, pool
 * or OpenMP, nested or not.
 *
 * Row-major, cblas_sgemm's meaning: C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C (beta = 0:
 * C is not read).
 */
#ifndef PD_GEMM_H
#define PD_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* Tile rule (gemm.c explains the sizes): C is cut into *mt_count x *nt_count tiles of at most
 * *mt <= GEMM_MT rows and *nt <= GEMM_NT columns, multiples of 16 unless the whole M or N;
 * tile t covers rows from (t / nt_count)·mt and columns from (t % nt_count)·nt, clipped at M and
 * N. Depends on M and N only (K is not used today). */
#define GEMM_MT 64
#define GEMM_NT 256
void gemm_tiles(int M, int N, int K, int *mt, int *nt, int *mt_count, int *nt_count);

/* Below this many flops in one pool loop of products, waking the workers costs more than it saves
 * (and on a loaded machine a worker can lose its core for a whole time slice): such loops run on
 * the calling thread, through the very same tiles. */
#define GEMM_PAR_FLOPS 4e6

/* Rows per call when gemm_sgemm_st runs a product C[M, N] = A[M, K] · B[K, N] (row-major, neither
 * transposed) as row blocks of one shape, so that OpenBLAS's small-matrix kernels, which skip
 * packing, take each block (gemm.c, "Row blocks"); M when the running OpenBLAS core has no such
 * kernels or the product is too large for them. Reads (M, N, K) and the core only: a product is
 * cut the same way at any batch size and thread count, hence has the same bits. */
int gemm_small_rows(int M, int N, int K);
/* Tests only: on = 1 / 0 makes gemm_small_rows cut as if the core had / had not the small-matrix
 * kernels; -1 (the default): the core decides. */
void gemm_force_small_rows(int on);

/* One single-threaded product on the calling thread (see above): one OpenBLAS call, or, when
 * neither operand is transposed, row blocks of gemm_small_rows(M, N, K) rows, one call each. */
void gemm_sgemm_st(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* y[M] = alpha · op(A) · x + beta · y, A [rows x cols] row-major, op(A) A or A^T. */
void gemm_sgemv_st(int transA, int rows, int cols, float alpha, const float *A, int lda,
                   const float *x, float beta, float *y);

/* One tile of a product: tile t of gemm_tiles(M, N, K), single-threaded on the calling
 * thread. For layers that run tiles inside their own pool loops. */
void gemm_sgemm_tile(int t, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc);

/* The whole product: a pool loop over its tiles. */
void gemm_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);

/* Batched: for b < batch, C_b = alpha·op(A_b)·op(B_b) + beta·C_b with X_b = X + b·strideX
 * (strideA = 0: one A for every item, e.g. a layer's weights). One pool loop over (item, tile);
 * item b's bits equal those of gemm_sgemm on it alone. */
void gemm_sgemm_batch(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                      int lda, size_t strideA, const float *B, int ldb, size_t strideB, float beta,
                      float *C, int ldc, size_t strideC, int batch);

/* ---- bf16 products (pixdiff's --precision bf16; docs/benchmarks.md "bf16")
 *
 * OpenBLAS's cblas_sbgemm: bf16 operands (the top 16 bits of a float, unet/bf16.h), float sums,
 * float alpha, beta and C. It exists only in an OpenBLAS built with BUILD_BFLOAT16 (Debian 12's
 * 0.3.21 is not), so it is looked up when first needed, from whichever OpenBLAS the process loaded,
 * and never linked against: the same binary runs on both. */
typedef void (*gemm_sbgemm_fn)(int order, int transA, int transB, int M, int N, int K,
                               float alpha, const uint16_t *A, int lda, const uint16_t *B, int ldb,
                               float beta, float *C, int ldc);
/* Whether bf16 products can run: the loaded OpenBLAS exports cblas_sbgemm (or a test set one). */
int gemm_bf16_available(void);
/* Tests only: products through fn (CBLAS's row-major convention, order = 101) instead of
 * OpenBLAS's; NULL: back to the lookup. */
void gemm_set_sbgemm(gemm_sbgemm_fn fn);
/* Tile t of gemm_tiles(M, N, K) of C[M, N] = A[M, K] · B[K, N] + beta · C, both operands bf16,
 * neither transposed, one single-threaded call on the calling thread (the tiles, and so the bits,
 * are those of the float product's shape). gemm_bf16_available() must be true. */
void gemm_sbgemm_tile(int t, int M, int N, int K, const uint16_t *A, int lda, const uint16_t *B,
                      int ldb, float beta, float *C, int ldc);

#endif
