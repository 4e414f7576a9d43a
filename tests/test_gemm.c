/* test_gemm — pd_sgemm (unet/gemm.h) against a double-precision triple loop for every transpose
 * combination, edge sizes (not multiples of the tile, K over several k-blocks, N over several
 * column tasks), alpha/beta, padded leading dimensions, and every micro-kernel this CPU can run.
 * Then the property the layers are built on: each element is the same FMA chain whatever the
 * thread count, the other rows of the product or the other items of a batch (bitwise checks).
 *
 * Tolerance: tu_compare's relative error has a floor of 1e-3·max|ref|, so an output near zero that
 * is a sum of K terms of size ~max|ref| carries ~K·2^-24·max|ref| of rounding from the partial
 * sums; the bound used is 1e-4 + 4e-7·K (1.0e-3 at K = 2304). A wrong index gives O(1).
 */
#include "unet/gemm.h"
#include "pixdiff.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ref_gemm(double *out, int tA, int tB, int M, int N, int K, double alpha,
                     const float *A, int lda, const float *B, int ldb, double beta, const float *C,
                     int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            out[(size_t)i * N + j] = alpha * s + (beta != 0 ? beta * C[(size_t)i * ldc + j] : 0);
        }
}

static void one(int tA, int tB, int M, int N, int K, float alpha, float beta, int pad) {
    int lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C = malloc(nc * sizeof *C),
          *C0 = malloc(nc * sizeof *C0), *got = malloc((size_t)M * N * sizeof *got);
    double *ref = malloc((size_t)M * N * sizeof *ref);
    tu_fill(A, na, 1, 1);
    tu_fill(B, nb, 2, 1);
    tu_fill(C0, nc, 3, 1);
    memcpy(C, C0, nc * sizeof *C);
    if (beta == 0)   /* C must not be read when beta = 0 */
        for (size_t i = 0; i < nc; i++) C[i] = NAN;
    ref_gemm(ref, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc);
    pd_sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++) memcpy(got + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof *got);
    int pad_ok = 1;   /* the padding columns of C stay untouched */
    for (int i = 0; i < M && beta != 0; i++)
        for (int j = N; j < ldc; j++) pad_ok &= C[(size_t)i * ldc + j] == C0[(size_t)i * ldc + j];
    char name[128];
    snprintf(name, sizeof name, "%s %c%c M=%d N=%d K=%d a=%g b=%g pad=%d", pd_gemm_kernel_name(),
             tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K, alpha, beta, pad);
    tu_compare(name, got, ref, (size_t)M * N, 1e-4 + 4e-7 * K);
    if (!pad_ok) tu_check(0, "%s: wrote outside the N columns", name);
    free(A); free(B); free(C); free(C0); free(got); free(ref);
}

/* Row 5 of an M-row product vs the same row computed alone; 1 vs 2 threads. */
static void invariance(int tA, int tB, int M, int N, int K) {
    int lda = tA ? M : K, ldb = tB ? K : N;
    float *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
    float *c1 = malloc((size_t)M * N * sizeof *c1), *c2 = malloc((size_t)M * N * sizeof *c2),
          *c3 = malloc((size_t)N * sizeof *c3), *arow = malloc((size_t)K * sizeof *arow);
    tu_fill(A, (size_t)M * K, 4, 1);
    tu_fill(B, (size_t)K * N, 5, 1);
    int saved = pd_get_threads();
    pd_set_threads(1);
    pd_sgemm(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, c1, N);
    pd_set_threads(2);
    pd_sgemm(tA, tB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, c2, N);
    pd_set_threads(saved);
    for (int k = 0; k < K; k++) arow[k] = tA ? A[(size_t)k * lda + 5] : A[(size_t)5 * lda + k];
    pd_sgemm(0, tB, 1, N, K, 1.0f, arow, K, B, ldb, 0.0f, c3, N);
    int same_thr = memcmp(c1, c2, (size_t)M * N * sizeof *c1) == 0;
    int same_row = memcmp(c1 + (size_t)5 * N, c3, (size_t)N * sizeof *c3) == 0;
    tu_check(same_thr && same_row,
             "%s %c%c M=%d N=%d K=%d: bit-identical with 1/2 threads (%s) and row 5 alone (%s)",
             pd_gemm_kernel_name(), tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K,
             same_thr ? "yes" : "no", same_row ? "yes" : "no");
    free(A); free(B); free(c1); free(c2); free(c3); free(arow);
}

/* pd_sgemm_batch item b = pd_sgemm on item b, bitwise; with a shared A (strideA = 0) and not. */
static void batched(int tA, int tB, int M, int N, int K, int shareA) {
    int lda = tA ? M : K, ldb = tB ? K : N, nbatch = 5;
    size_t sa = shareA ? 0 : (size_t)M * K, sb = (size_t)K * N, sc = (size_t)M * N;
    float *A = malloc((size_t)M * K * nbatch * sizeof *A), *B = malloc(sb * nbatch * sizeof *B),
          *c1 = malloc(sc * nbatch * sizeof *c1), *c2 = malloc(sc * nbatch * sizeof *c2);
    tu_fill(A, (size_t)M * K * nbatch, 6, 1);
    tu_fill(B, sb * nbatch, 7, 1);
    tu_fill(c1, sc * nbatch, 8, 1);
    memcpy(c2, c1, sc * nbatch * sizeof *c2);
    pd_sgemm_batch(tA, tB, M, N, K, 0.7f, A, lda, sa, B, ldb, sb, 1.0f, c1, N, sc, nbatch);
    for (int b = 0; b < nbatch; b++)
        pd_sgemm(tA, tB, M, N, K, 0.7f, A + b * sa, lda, B + b * sb, ldb, 1.0f, c2 + b * sc, N);
    tu_check(memcmp(c1, c2, sc * nbatch * sizeof *c1) == 0,
             "%s %c%c M=%d N=%d K=%d batch of 5 (%s A) = 5 single calls, bitwise",
             pd_gemm_kernel_name(), tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K,
             shareA ? "shared" : "per-item");
    free(A); free(B); free(c1); free(c2);
}

int main(void) {
    const char *names[] = {"avx512", "avx2-fma", "portable"};
    for (int kern = PD_GEMM_AVX512; kern <= PD_GEMM_PORTABLE; kern++) {
        if (!pd_gemm_use_kernel(kern)) {
            printf("kernel %s: not supported by this CPU, skipped\n", names[kern]);
            continue;
        }
        for (int tA = 0; tA < 2; tA++)
            for (int tB = 0; tB < 2; tB++) {
                one(tA, tB, 13, 37, 29, 1.0f, 0.0f, 0);
                one(tA, tB, 70, 300, 600, 0.5f, 1.0f, 3);
            }
        one(0, 0, 1, 1, 1, 1.0f, 0.0f, 0);
        one(0, 0, 64, 1024, 576, 1.0f, 1.0f, 0);
        one(1, 0, 9, 64, 700, 1.0f, 0.3f, 2);
        one(0, 1, 256, 64, 2304, 1.0f, 0.0f, 0);
        invariance(0, 0, 64, 1024, 576);
        invariance(1, 1, 48, 200, 300);
        batched(0, 0, 20, 70, 300, 1);
        batched(1, 1, 16, 64, 40, 0);
    }
    pd_gemm_use_kernel(PD_GEMM_AUTO);
    printf("auto-selected kernel: %s\n", pd_gemm_kernel_name());
    return tu_finish();
}
