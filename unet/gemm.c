/* gemm.c — a packed, cache-blocked SGEMM (Goto/BLIS structure) whose per-element arithmetic does
 * not depend on tiling or threads (contract in gemm.h).
 *
 * op(A)·alpha is packed once into MR-row panels [K][MR]; each task (a block of columns × a block
 * of row panels) packs its KC x (up to NCT) slice of op(B) into NR-column panels [kc][NR] and runs
 * the MR x NR micro-kernel over it. A micro-kernel keeps its C tile in registers and does
 * acc = fma(a[i,k], b[k,j], acc) for k in order; between KC blocks the tile goes through C in
 * memory, which is exact, so each element is one FMA chain over k = 0..K-1. Edge tiles are padded
 * with zeros and run through the same kernel on a copy. Work is split over tasks in any way that
 * suits the thread count, since that no longer changes a single bit of the result.
 */
#include "unet/gemm.h"
#include <math.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef KC
#define KC 256          /* k-block: a KC x NR panel of B (32 KiB for NR = 32) stays in L1 */
#endif
#ifndef NCT
#define NCT 256         /* columns per task: a KC x NCT slice of B (256 KiB) stays in L2 */
#endif
#define MR_MAX 8
#define NR_MAX 32
#define PAR_FLOPS 2e6   /* below this a parallel region costs more than it saves */

typedef void (*ukr_fn)(int kc, const float *a, const float *b, float *c, int ldc, int load_c);

/* ------------------------------------------------------------------ micro-kernels */

/* AVX-512: 8 rows x 32 columns = 16 zmm accumulators; per k two loads of B, eight broadcasts of
 * A and sixteen FMAs. */
__attribute__((target("avx512f")))
static void ukr_avx512(int kc, const float *a, const float *b, float *c, int ldc, int load_c) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
#define LD(r)                                                                                       \
    do {                                                                                            \
        if (load_c) {                                                                               \
            c##r##0 = _mm512_loadu_ps(c + (size_t)(r) * ldc);                                       \
            c##r##1 = _mm512_loadu_ps(c + (size_t)(r) * ldc + 16);                                  \
        } else {                                                                                    \
            c##r##0 = _mm512_setzero_ps();                                                          \
            c##r##1 = _mm512_setzero_ps();                                                          \
        }                                                                                           \
    } while (0)
    LD(0); LD(1); LD(2); LD(3); LD(4); LD(5); LD(6); LD(7);
#undef LD
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), ar;
#define FM(r)                                                                                       \
    ar = _mm512_set1_ps(a[r]);                                                                      \
    c##r##0 = _mm512_fmadd_ps(ar, b0, c##r##0);                                                     \
    c##r##1 = _mm512_fmadd_ps(ar, b1, c##r##1);
        FM(0) FM(1) FM(2) FM(3) FM(4) FM(5) FM(6) FM(7)
#undef FM
        a += 8;
        b += 32;
    }
#define ST(r)                                                                                       \
    _mm512_storeu_ps(c + (size_t)(r) * ldc, c##r##0);                                               \
    _mm512_storeu_ps(c + (size_t)(r) * ldc + 16, c##r##1);
    ST(0) ST(1) ST(2) ST(3) ST(4) ST(5) ST(6) ST(7)
#undef ST
}

/* AVX2 + FMA: 6 rows x 16 columns = 12 ymm accumulators (the classic Haswell shape). */
__attribute__((target("avx2,fma")))
static void ukr_avx2(int kc, const float *a, const float *b, float *c, int ldc, int load_c) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
#define LD(r)                                                                                       \
    do {                                                                                            \
        if (load_c) {                                                                               \
            c##r##0 = _mm256_loadu_ps(c + (size_t)(r) * ldc);                                       \
            c##r##1 = _mm256_loadu_ps(c + (size_t)(r) * ldc + 8);                                   \
        } else {                                                                                    \
            c##r##0 = _mm256_setzero_ps();                                                          \
            c##r##1 = _mm256_setzero_ps();                                                          \
        }                                                                                           \
    } while (0)
    LD(0); LD(1); LD(2); LD(3); LD(4); LD(5);
#undef LD
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), ar;
#define FM(r)                                                                                       \
    ar = _mm256_broadcast_ss(a + (r));                                                              \
    c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0);                                                     \
    c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1);
        FM(0) FM(1) FM(2) FM(3) FM(4) FM(5)
#undef FM
        a += 6;
        b += 16;
    }
#define ST(r)                                                                                       \
    _mm256_storeu_ps(c + (size_t)(r) * ldc, c##r##0);                                               \
    _mm256_storeu_ps(c + (size_t)(r) * ldc + 8, c##r##1);
    ST(0) ST(1) ST(2) ST(3) ST(4) ST(5)
#undef ST
}

/* Portable: 4 x 8, multiply then add (no FMA instruction is assumed). */
static void ukr_portable(int kc, const float *a, const float *b, float *c, int ldc, int load_c) {
    float acc[4][8];
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 8; j++) acc[r][j] = load_c ? c[(size_t)r * ldc + j] : 0.0f;
    for (int k = 0; k < kc; k++) {
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 8; j++) acc[r][j] += a[r] * b[j];
        a += 4;
        b += 8;
    }
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 8; j++) c[(size_t)r * ldc + j] = acc[r][j];
}

typedef struct { const char *name; int mr, nr; ukr_fn fn; } kernel_desc;
static const kernel_desc kernels[] = {
    {"avx512", 8, 32, ukr_avx512},
    {"avx2-fma", 6, 16, ukr_avx2},
    {"portable", 4, 8, ukr_portable},
};

static int cpu_can(int k) {
    __builtin_cpu_init();
    if (k == PD_GEMM_AVX512) return __builtin_cpu_supports("avx512f");
    if (k == PD_GEMM_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return k == PD_GEMM_PORTABLE;
}

static int g_kernel = -1;   /* chosen on first use; set again only by pd_gemm_use_kernel */

static const kernel_desc *current(void) {
    int k = __atomic_load_n(&g_kernel, __ATOMIC_RELAXED);
    if (k < 0) {
        k = cpu_can(PD_GEMM_AVX512) ? PD_GEMM_AVX512 : cpu_can(PD_GEMM_AVX2) ? PD_GEMM_AVX2
                                                                             : PD_GEMM_PORTABLE;
        __atomic_store_n(&g_kernel, k, __ATOMIC_RELAXED);
    }
    return &kernels[k];
}

int pd_gemm_use_kernel(int kernel) {
    if (kernel == PD_GEMM_AUTO) {
        __atomic_store_n(&g_kernel, -1, __ATOMIC_RELAXED);
        return 1;
    }
    if (kernel < 0 || kernel > PD_GEMM_PORTABLE || !cpu_can(kernel)) return 0;
    __atomic_store_n(&g_kernel, kernel, __ATOMIC_RELAXED);
    return 1;
}

const char *pd_gemm_kernel_name(void) { return current()->name; }

/* ------------------------------------------------------------------ packing */

/* The matrix A packer: dst[k·mr + r] = alpha·op(A_b)[i0 + r, k0 + k], zero for r >= rows. */
typedef struct { const float *A; int lda, transA; size_t strideA; float alpha; } mat_a;

static void pack_a_matrix(float *d, int mr, int i0, int rows, int k0, int kc, int b,
                          const void *ctx) {
    const mat_a *m = ctx;
    const float *A = m->A + (size_t)b * m->strideA;
    float alpha = m->alpha;
    for (int k = 0; k < kc; k++) {
        float *dk = d + (size_t)k * mr;
        if (m->transA) {
            const float *s = A + (size_t)(k0 + k) * m->lda + i0;
            for (int r = 0; r < rows; r++) dk[r] = alpha * s[r];
        } else {
            for (int r = 0; r < rows; r++) dk[r] = alpha * A[(size_t)(i0 + r) * m->lda + k0 + k];
        }
        for (int r = rows; r < mr; r++) dk[r] = 0.0f;
    }
}

/* The matrix packer: rows k0..k0+kc-1, columns j0..j0+w-1 of op(B_b) into dst[k·nr + j]. */
typedef struct { const float *B; int ldb, transB; size_t strideB; } mat_src;

static void pack_b_matrix(float *d, int nr, int k0, int kc, int j0, int w, int b, const void *ctx) {
    const mat_src *m = ctx;
    const float *B = m->B + (size_t)b * m->strideB;
    if (!m->transB) {
        for (int k = 0; k < kc; k++) {
            memcpy(d + (size_t)k * nr, B + (size_t)(k0 + k) * m->ldb + j0, (size_t)w * sizeof *d);
            for (int j = w; j < nr; j++) d[(size_t)k * nr + j] = 0.0f;
        }
    } else {
        for (int j = 0; j < w; j++) {
            const float *s = B + (size_t)(j0 + j) * m->ldb + k0;
            for (int k = 0; k < kc; k++) d[(size_t)k * nr + j] = s[k];
        }
        for (int j = w; j < nr; j++)
            for (int k = 0; k < kc; k++) d[(size_t)k * nr + j] = 0.0f;
    }
}

/* ------------------------------------------------------------------ driver */

/* Per calling thread: packed A, then one B slice per OpenMP thread. */
static _Thread_local float *ws;
static _Thread_local size_t ws_cap;

/* What the A region of ws holds: a shared A packed for (M, K, mr), reusable by a call that passes
 * a_shared = 2 (the caller vouches that A has not changed since). */
static _Thread_local struct { int valid, M, K, mr; } ws_a;

static float *workspace(size_t nfloat) {
    if (nfloat <= ws_cap) return ws;
    ws_a.valid = 0;
    free(ws);
    size_t bytes = (nfloat * sizeof(float) + 63) & ~(size_t)63;
    ws = aligned_alloc(64, bytes);
    ws_cap = ws ? nfloat : 0;
    return ws;
}

void pd_gemm_release(void) {
    ws_a.valid = 0;
    free(ws);
    ws = NULL;
    ws_cap = 0;
}

static void scale_c(float *C, int M, int N, int ldc, float beta) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float *p = C + (size_t)i * ldc + j;
            *p = beta == 0.0f ? 0.0f : beta * *p;
        }
}

/* Without workspace: one element at a time through 1-wide panels, each element the same FMA
 * chain the vector kernels compute (the portable kernel's multiply-add differs, as it does
 * anyway). Slow, but right. */
static void slow_gemm(int M, int N, int K, pd_gemm_apack apack, const void *actx,
                      pd_gemm_bpack bpack, const void *bctx, float beta, float *C, int ldc,
                      size_t strideC, int batch) {
    float arow[64], bcol[64];
    for (int b = 0; b < batch; b++) {
        float *Cb = C + (size_t)b * strideC;
        for (int j = 0; j < N; j++)
            for (int i = 0; i < M; i++) {
                float acc = beta == 0.0f ? 0.0f : Cb[(size_t)i * ldc + j];
                for (int k0 = 0; k0 < K; k0 += 64) {
                    int kc = K - k0 < 64 ? K - k0 : 64;
                    apack(arow, 1, i, 1, k0, kc, b, actx);
                    bpack(bcol, 1, k0, kc, j, 1, b, bctx);
                    for (int k = 0; k < kc; k++) acc = fmaf(arow[k], bcol[k], acc);
                }
                Cb[(size_t)i * ldc + j] = acc;
            }
    }
}

void pd_sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    pd_sgemm_batch(transA, transB, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

void pd_sgemm_batch(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                    int lda, size_t strideA, const float *B, int ldb, size_t strideB, float beta,
                    float *C, int ldc, size_t strideC, int batch) {
    mat_a ma = {A, lda, transA, strideA, alpha};
    mat_src mb = {B, ldb, transB, strideB};
    if (alpha == 0.0f) K = 0;
    pd_sgemm_custom(M, N, K, pack_a_matrix, &ma, strideA == 0, pack_b_matrix, &mb, beta, C, ldc,
                    strideC, batch);
}

void pd_sgemm_packb(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                    size_t strideA, pd_gemm_bpack packb, const void *ctx, float beta, float *C,
                    int ldc, size_t strideC, int batch) {
    mat_a ma = {A, lda, transA, strideA, alpha};
    if (alpha == 0.0f) K = 0;
    pd_sgemm_custom(M, N, K, pack_a_matrix, &ma, strideA == 0, packb, ctx, beta, C, ldc, strideC,
                    batch);
}

void pd_sgemm_custom(int M, int N, int K, pd_gemm_apack apack, const void *actx, int a_shared,
                     pd_gemm_bpack packb, const void *ctx, float beta, float *C, int ldc,
                     size_t strideC, int batch) {
    if (M <= 0 || N <= 0 || batch <= 0) return;
    if (K <= 0 || (beta != 0.0f && beta != 1.0f)) {
        for (int b = 0; b < batch; b++) scale_c(C + (size_t)b * strideC, M, N, ldc, beta);
        if (K <= 0) return;
        beta = 1.0f;
    }
    const kernel_desc *kd = current();
    int mr = kd->mr, nr = kd->nr;
    int mp = (M + mr - 1) / mr;
    int na = a_shared ? 1 : batch;   /* distinct A matrices to pack */
    int nth = omp_get_max_threads();
    int par = nth > 1 && 2.0 * M * N * K * batch > PAR_FLOPS;
    /* Tasks: (batch item, block of NCT columns, block of row panels); rows are split only when
     * there are too few column blocks to keep every thread busy. */
    int nb = (N + NCT - 1) / NCT, mb = 1;
    if (par && batch * nb < 2 * nth) mb = (2 * nth + batch * nb - 1) / (batch * nb);
    else if (par && (batch * nb) % nth && batch * nb < 4 * nth) mb = 2;   /* evens out 5 on 2 */
    if (mb > mp) mb = mp;
    int mpb = (mp + mb - 1) / mb;
    mb = (mp + mpb - 1) / mpb;
    int ntask = batch * nb * mb;
    size_t a_one = (size_t)mp * mr * K, a_sz = ((size_t)na * a_one + 15) & ~(size_t)15;
    size_t b_sz = ((size_t)KC * ((NCT + nr - 1) / nr) * nr + 15) & ~(size_t)15;
    float *w = workspace(a_sz + (size_t)(par ? nth : 1) * b_sz);
    if (!w) {
        slow_gemm(M, N, K, apack, actx, packb, ctx, beta, C, ldc, strideC, batch);
        return;
    }
    float *ap_all = w, *bp_all = w + a_sz;
    int pack_a = !(a_shared == 2 && ws_a.valid && ws_a.M == M && ws_a.K == K && ws_a.mr == mr);
    ws_a.valid = a_shared != 0;
    ws_a.M = M;
    ws_a.K = K;
    ws_a.mr = mr;
    #pragma omp parallel if (par)
    {
        #pragma omp for schedule(static)
        for (int t = 0; t < (pack_a ? na * mp : 0); t++) {
            int b = t / mp, ip = t % mp, i0 = ip * mr;
            apack(ap_all + (size_t)b * a_one + (size_t)ip * mr * K, mr, i0,
                  M - i0 < mr ? M - i0 : mr, 0, K, b, actx);
        }
        float *bp = bp_all + (size_t)omp_get_thread_num() * b_sz;
        float tile[MR_MAX * NR_MAX] __attribute__((aligned(64))) = {0};
        #pragma omp for schedule(static)
        for (int t = 0; t < ntask; t++) {
            int jb = t % nb, ib = (t / nb) % mb, b = t / (nb * mb);
            int j0 = jb * NCT, ncols = N - j0 < NCT ? N - j0 : NCT;
            int ip0 = ib * mpb, ip1 = ip0 + mpb < mp ? ip0 + mpb : mp;
            const float *ap = ap_all + (a_shared ? 0 : (size_t)b * a_one);
            float *Cb = C + (size_t)b * strideC;
            for (int pc = 0; pc < K; pc += KC) {
                int kc = K - pc < KC ? K - pc : KC;
                for (int jp = 0; jp * nr < ncols; jp++) {
                    int w_ = ncols - jp * nr < nr ? ncols - jp * nr : nr;
                    packb(bp + (size_t)jp * kc * nr, nr, pc, kc, j0 + jp * nr, w_, b, ctx);
                }
                int load_c = beta != 0.0f || pc > 0;
                for (int jp = 0; jp * nr < ncols; jp++) {
                    int jj = j0 + jp * nr, w_ = ncols - jp * nr < nr ? ncols - jp * nr : nr;
                    const float *bpan = bp + (size_t)jp * kc * nr;
                    for (int ip = ip0; ip < ip1; ip++) {
                        int i0 = ip * mr, h = M - i0 < mr ? M - i0 : mr;
                        const float *a = ap + ((size_t)ip * K + pc) * mr;
                        float *c = Cb + (size_t)i0 * ldc + jj;
                        if (h == mr && w_ == nr) {
                            kd->fn(kc, a, bpan, c, ldc, load_c);
                            continue;
                        }
                        /* Edge tile: same kernel on a padded copy, so the same arithmetic. */
                        if (load_c)
                            for (int r = 0; r < h; r++)
                                memcpy(tile + r * nr, c + (size_t)r * ldc, (size_t)w_ * sizeof *c);
                        kd->fn(kc, a, bpan, tile, nr, load_c);
                        for (int r = 0; r < h; r++)
                            memcpy(c + (size_t)r * ldc, tile + r * nr, (size_t)w_ * sizeof *c);
                    }
                }
            }
        }
    }
}
