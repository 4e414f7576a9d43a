/* gemm.c — a deterministic scheduler over OpenBLAS (contract in gemm.h): the tile rule, the
 * single-threaded call wrappers, and pool loops (core/pool.h) over tiles (and batch items). No
 * kernels and no packing of our own: every flop is OpenBLAS's.
 *
 * Tile rule. Rows are cut into ceil(M / 64) tiles and columns into ceil(N / 256) tiles (one more
 * column tile, or else row tile, when that count is odd and above one), each as even as possible
 * and rounded up to a multiple of 16 (whole OpenBLAS micro-tiles; the last tile takes the rest).
 * Why these sizes: measured single-threaded on the U-Net's conv shapes (OpenBLAS
 * 0.3.21, Haswell kernels, AMD EPYC, e.g. 64x1024x576, 128x256x1152, 576x1024x64), tiles from
 * 64x128 up to the whole product all run at 95-110 GFLOP/s, within measurement noise of each
 * other (each call packs its own panels of A and B, an overhead of about 1/rows + 1/columns of a
 * tile's work), while 64-row tiles give a 16x16 or 8x8 layer with 128 channels two tiles per
 * sample and a 32x32 layer four, enough for two threads at batch 1. The rule reads only (M, N):
 * the same layer gives the same tiles, hence the same bits, at any batch size and thread count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* RTLD_DEFAULT */
#endif
#include "unet/gemm.h"
#include "core/pool.h"
#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#define ALIGN 16

/* Size and count of `pieces` nearly equal pieces of n, rounded up to ALIGN (the last one smaller;
 * rounding can leave fewer pieces than asked for). */
static void cut(int n, int pieces, int *size, int *count) {
    int s = (n + pieces - 1) / pieces;
    s = (s + ALIGN - 1) / ALIGN * ALIGN;
    if (s > n) s = n;
    *size = s;
    *count = (n + s - 1) / s;
}

void gemm_tiles(int M, int N, int K, int *mt, int *nt, int *mt_count, int *nt_count) {
    (void)K;
    if (M <= 0 || N <= 0) {
        *mt = *nt = 1;
        *mt_count = *nt_count = 0;
        return;
    }
    int rp = (M + GEMM_MT - 1) / GEMM_MT, cp = (N + GEMM_NT - 1) / GEMM_NT;
    /* An even number of tiles keeps two threads equally busy (a 64 x 576 weight gradient: four
     * tiles of 144 columns rather than three of 192). */
    if (rp * cp > 1 && (rp * cp) % 2) {
        if (N >= (cp + 1) * ALIGN) cp++;
        else if (M >= (rp + 1) * ALIGN) rp++;
    }
    cut(M, rp, mt, mt_count);
    cut(N, cp, nt, nt_count);
}

/* Row blocks. OpenBLAS 0.3.21's SkylakeX-family cores (SkylakeX, Cooperlake, SapphireRapids) run
 * a non-transposed call with M·N·K <= 10^6 through "small-matrix" kernels that read A and B where
 * they lie (its sgemm_small_kernel_permit_skylakex.c); larger calls first pack both operands. Our
 * products are mostly thin: a Winograd product [OC, C] x [C, T] packs the whole OC x C block of
 * transformed filters for only T = 16 or 64 columns of work (packing was 21 % of a CIFAR-10
 * DDPM++ profile at batch 8), an 8x8 layer's im2col product packs the weights for 64 columns.
 * Cut into blocks of r rows with r·N·K <= 10^6, the same products ran 10-36 % faster (single
 * thread, Cooperlake kernels, docs/benchmarks.md "Session 18"), e.g. [256, 256] x [256, 64]
 * 80 -> 88 GFLOP/s, [256, 2304] x [2304, 64] 75 -> 94, a 64 x 256 tile with K = 256 89 -> 114.
 * The block that did best shrinks as N grows: 32 rows up to N = 64, 8 from N = 256 (32 rows there:
 * 25 % slower than whole products); then as K grows, down to 4 rows (2 rows were slower than whole
 * products). Packing kernels gain nothing from the cut (blocks of 16 rows or fewer were 18-45 %
 * slower under the Haswell kernels), so other cores keep whole products. */
static int small_rows_forced = -1, small_rows_core = -1;

void gemm_force_small_rows(int on) { __atomic_store_n(&small_rows_forced, on, __ATOMIC_RELAXED); }

static int core_has_small_kernels(void) {
    int f = __atomic_load_n(&small_rows_forced, __ATOMIC_RELAXED);
    if (f >= 0) return f;
    int c = __atomic_load_n(&small_rows_core, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *name = openblas_get_corename();
        c = name && (!strcasecmp(name, "SkylakeX") || !strcasecmp(name, "Cooperlake") ||
                     !strcasecmp(name, "SapphireRapids"));
        __atomic_store_n(&small_rows_core, c, __ATOMIC_RELAXED);
    }
    return c;
}

int gemm_small_rows(int M, int N, int K) {
    if (M <= 0 || N <= 0 || K <= 0 || !core_has_small_kernels()) return M;
    int r = 32;
    while (r > 8 && (long)r * N > 2048) r /= 2;
    while (r >= 4 && (double)r * N * K > 1e6) r /= 2;
    return r < 4 || r >= M ? M : r;
}

/* OpenBLAS's OpenMP build threads a call only when it is made outside an active parallel region
 * with more than one OpenMP thread available (its num_cpu_avail()); there we lower the calling
 * task's nthreads ICV to 1 for the call and put it back (it affects no other thread). The pool's
 * workers hold 1 already (core/pool.c), so this costs nothing there. core_pool_in_loop() must not
 * skip it: the thread that called core_pool_for runs items too, outside any OpenMP region and with
 * its own ICV (2 on two cores), and without the set OpenBLAS threads its calls (measured: a
 * 100x200x3001 gemm_sgemm then changed thousands of its 20,000 elements' bits with the thread
 * count). */
#define SINGLE_THREADED(call)                                                                      \
    do {                                                                                           \
        int saved_ = omp_in_parallel() ? 1 : omp_get_max_threads();                                \
        if (saved_ > 1) omp_set_num_threads(1);                                                    \
        call;                                                                                      \
        if (saved_ > 1) omp_set_num_threads(saved_);                                               \
    } while (0)

void gemm_sgemm_st(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                   int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    int r = transA || transB ? M : gemm_small_rows(M, N, K);
    for (int i = 0; i < M; i += r) {
        int m = M - i < r ? M - i : r;
        const float *a = transA ? A + i : A + (size_t)i * lda;
        SINGLE_THREADED(cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                                    transB ? CblasTrans : CblasNoTrans, m, N, K, alpha, a, lda, B,
                                    ldb, beta, C + (size_t)i * ldc, ldc));
    }
}

void gemm_sgemv_st(int transA, int rows, int cols, float alpha, const float *A, int lda,
                   const float *x, float beta, float *y) {
    if (rows <= 0 || cols <= 0) return;
    SINGLE_THREADED(cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, rows, cols,
                                alpha, A, lda, x, 1, beta, y, 1));
}

void gemm_sgemm_tile(int t, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc) {
    int mt, nt, mc, nc;
    gemm_tiles(M, N, K, &mt, &nt, &mc, &nc);
    int i0 = t / nc * mt, j0 = t % nc * nt;
    int m = M - i0 < mt ? M - i0 : mt, n = N - j0 < nt ? N - j0 : nt;
    /* op(A) rows i0.. start at row i0 of A, or column i0 of A^T; op(B) columns likewise. */
    const float *a = transA ? A + i0 : A + (size_t)i0 * lda;
    const float *b = transB ? B + (size_t)j0 * ldb : B + j0;
    gemm_sgemm_st(transA, transB, m, n, K, alpha, a, lda, b, ldb, beta, C + (size_t)i0 * ldc + j0, ldc);
}

void gemm_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    gemm_sgemm_batch(transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

struct batch_args {
    int transA, transB, M, N, K;
    float alpha;
    const float *A;
    int lda;
    size_t strideA;
    const float *B;
    int ldb;
    size_t strideB;
    float beta;
    float *C;
    int ldc;
    size_t strideC;
    int tiles;
};

/* Items it: tile it % tiles of batch item it / tiles; each writes its own tile of its own C_b. */
static void batch_items(void *p, long i0, long i1) {
    const struct batch_args *a = p;
    for (long it = i0; it < i1; it++) {
        int b = (int)(it / a->tiles);
        gemm_sgemm_tile((int)(it % a->tiles), a->transA, a->transB, a->M, a->N, a->K, a->alpha,
                        a->A + (size_t)b * a->strideA, a->lda, a->B + (size_t)b * a->strideB,
                        a->ldb, a->beta, a->C + (size_t)b * a->strideC, a->ldc);
    }
}

void gemm_sgemm_batch(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                      int lda, size_t strideA, const float *B, int ldb, size_t strideB, float beta,
                      float *C, int ldc, size_t strideC, int batch) {
    int mt, nt, mc, nc;
    gemm_tiles(M, N, K, &mt, &nt, &mc, &nc);
    int tiles = mc * nc, items = tiles * batch;
    if (items <= 0) return;
    struct batch_args a = {transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB,
                           beta, C, ldc, strideC, tiles};
    /* One tile, or little work, runs on the caller: no worker is woken for nothing. */
    core_pool_for(items, items > 1 && 2.0 * M * N * K * batch >= GEMM_PAR_FLOPS, batch_items, &a);
}

/* ---- bf16 products */

static gemm_sbgemm_fn sbgemm_test, sbgemm_blas;
static pthread_once_t sbgemm_once = PTHREAD_ONCE_INIT;

/* dlsym, not a link: Debian 12's OpenBLAS has no cblas_sbgemm, and a build that named it would not
 * load there. The cast goes through void * as POSIX's dlsym requires. */
static void sbgemm_lookup(void) {
    void *f = dlsym(RTLD_DEFAULT, "cblas_sbgemm");
    if (f) memcpy(&sbgemm_blas, &f, sizeof f);
}

static gemm_sbgemm_fn sbgemm_now(void) {
    gemm_sbgemm_fn t = __atomic_load_n(&sbgemm_test, __ATOMIC_ACQUIRE);
    if (t) return t;
    pthread_once(&sbgemm_once, sbgemm_lookup);
    return sbgemm_blas;
}

void gemm_set_sbgemm(gemm_sbgemm_fn fn) { __atomic_store_n(&sbgemm_test, fn, __ATOMIC_RELEASE); }

int gemm_bf16_available(void) { return sbgemm_now() != NULL; }

void gemm_sbgemm_tile(int t, int M, int N, int K, const uint16_t *A, int lda, const uint16_t *B,
                      int ldb, float beta, float *C, int ldc) {
    int mt, nt, mc, nc;
    gemm_tiles(M, N, K, &mt, &nt, &mc, &nc);
    int i0 = t / nc * mt, j0 = t % nc * nt;
    int m = M - i0 < mt ? M - i0 : mt, n = N - j0 < nt ? N - j0 : nt;
    if (m <= 0 || n <= 0) return;
    gemm_sbgemm_fn f = sbgemm_now();
    /* Whole tiles: OpenBLAS's Cooperlake sbgemm has small-matrix kernels too, for calls of 8, 16
     * or 32 rows, but 32-row blocks of an 8x8 layer's 64 x 64 tiles, 1.5x faster alone, ran no
     * faster in the layer (docs/benchmarks.md "bf16"). */
    SINGLE_THREADED(f(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, K, 1.0f,
                      A + (size_t)i0 * lda, lda, B + j0, ldb, beta, C + (size_t)i0 * ldc + j0, ldc));
}
