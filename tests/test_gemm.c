/* test_gemm — the OpenBLAS scheduler of unet/gemm.h. (1) gemm_sgemm and gemm_sgemm_batch against a
 * double-precision triple loop for every transpose combination, edge sizes (one element, sizes
 * that are not multiples of the 16-aligned tiles, several row and column tiles), alpha/beta
 * (beta = 0 must not read C: it is filled with NaN) and padded leading dimensions (the padding of
 * C must stay untouched); gemm_sgemv_st likewise. (2) The tile rule covers M x N exactly with
 * tiles no larger than GEMM_MT x GEMM_NT. (3) The properties the layers' bit-identity rests on, checked
 * bitwise: 1 vs 2 threads, a batch item vs a lone call, a call from inside an OpenMP region vs
 * outside, and operands moved to other addresses and leading dimensions (a conv sample's im2col
 * matrix lives in the caller's col or in a per-thread buffer, a linear row anywhere in the batch),
 * also for shapes that OpenBLAS's small-matrix kernels take. (4) The row-block rule.
 *
 * Tolerance: tu_compare's relative error has a floor of 1e-3·max|ref|, so an output near zero that
 * is a sum of K terms of size ~max|ref| carries ~K·2^-24·max|ref| of rounding from the partial
 * sums; the bound used is 1e-4 + 4e-7·K (1.0e-3 at K = 2304). A wrong index gives O(1).
 */
#include "unet/gemm.h"
#include "pixdiff.h"
#include "testutil.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double tol(int K) { return 1e-4 + 4e-7 * K; }

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

/* gemm_sgemm (batch = 0) or item 1 of a 3-item gemm_sgemm_batch vs the double reference. */
static void one(int tA, int tB, int M, int N, int K, float alpha, float beta, int pad, int batch) {
    int lda = (tA ? M : K) + pad, ldb = (tB ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb, nc = (size_t)M * ldc;
    int items = batch ? 3 : 1;
    float *A = malloc(na * items * sizeof *A), *B = malloc(nb * items * sizeof *B),
          *C = malloc(nc * items * sizeof *C), *C0 = malloc(nc * items * sizeof *C0),
          *got = malloc((size_t)M * N * sizeof *got);
    double *ref = malloc((size_t)M * N * sizeof *ref);
    tu_fill(A, na * items, 1, 1);
    tu_fill(B, nb * items, 2, 1);
    tu_fill(C0, nc * items, 3, 1);
    memcpy(C, C0, nc * items * sizeof *C);
    if (beta == 0)   /* C must not be read when beta = 0 */
        for (size_t i = 0; i < nc * items; i++) C[i] = NAN;
    size_t off_a = batch ? na : 0, off_b = batch ? nb : 0, off_c = batch ? nc : 0;
    ref_gemm(ref, tA, tB, M, N, K, alpha, A + off_a, lda, B + off_b, ldb, beta, C0 + off_c, ldc);
    if (batch)
        gemm_sgemm_batch(tA, tB, M, N, K, alpha, A, lda, na, B, ldb, nb, beta, C, ldc, nc, items);
    else
        gemm_sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    for (int i = 0; i < M; i++)
        memcpy(got + (size_t)i * N, C + off_c + (size_t)i * ldc, (size_t)N * sizeof *got);
    int pad_ok = 1;   /* the padding columns of C stay untouched */
    for (int i = 0; i < M && beta != 0; i++)
        for (int j = N; j < ldc; j++)
            pad_ok &= C[off_c + (size_t)i * ldc + j] == C0[off_c + (size_t)i * ldc + j];
    char name[128];
    snprintf(name, sizeof name, "%s %c%c M=%d N=%d K=%d a=%g b=%g pad=%d",
             batch ? "batch item 1" : "gemm_sgemm", tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K, alpha,
             beta, pad);
    tu_compare(name, got, ref, (size_t)M * N, tol(K));
    if (!pad_ok) tu_check(0, "%s: wrote outside the N columns", name);
    free(A); free(B); free(C); free(C0); free(got); free(ref);
}

static void gemv(int tA, int rows, int cols, float alpha, float beta) {
    int n_in = tA ? rows : cols, n_out = tA ? cols : rows;
    float *A = malloc((size_t)rows * cols * sizeof *A), *x = malloc(n_in * sizeof *x),
          *y = malloc(n_out * sizeof *y), *y0 = malloc(n_out * sizeof *y0);
    double *ref = malloc(n_out * sizeof *ref);
    tu_fill(A, (size_t)rows * cols, 11, 1);
    tu_fill(x, n_in, 12, 1);
    tu_fill(y0, n_out, 13, 1);
    for (int o = 0; o < n_out; o++) {
        double s = 0;
        for (int i = 0; i < n_in; i++)
            s += (double)(tA ? A[(size_t)i * cols + o] : A[(size_t)o * cols + i]) * x[i];
        ref[o] = alpha * s + beta * y0[o];
    }
    memcpy(y, y0, n_out * sizeof *y);
    gemm_sgemv_st(tA, rows, cols, alpha, A, cols, x, beta, y);
    char name[96];
    snprintf(name, sizeof name, "gemm_sgemv_st %c rows=%d cols=%d a=%g b=%g", tA ? 'T' : 'N', rows,
             cols, alpha, beta);
    tu_compare(name, y, ref, n_out, tol(n_in));
    free(A); free(x); free(y); free(y0); free(ref);
}

/* Tiles cover M x N once, each at most GEMM_MT x GEMM_NT, sizes multiples of 16 unless the
 * whole dimension. */
static void tile_rule(void) {
    int bad = 0;
    for (int M = 1; M <= 700; M += 37)
        for (int N = 1; N <= 1100; N += 53) {
            int mt, nt, mc, nc;
            gemm_tiles(M, N, 576, &mt, &nt, &mc, &nc);
            bad += mt > GEMM_MT || nt > GEMM_NT || (mt % 16 && mt != M) || (nt % 16 && nt != N);
            bad += (mc - 1) * mt >= M || mc * mt < M || (nc - 1) * nt >= N || nc * nt < N;
        }
    int mt, nt, mc, nc, mt2, nt2, mc2, nc2;
    gemm_tiles(64, 1024, 576, &mt, &nt, &mc, &nc);
    gemm_tiles(64, 576, 1024, &mt2, &nt2, &mc2, &nc2);   /* 3 tiles would be odd: 4 */
    tu_check(bad == 0 && mt == 64 && nt == 256 && mc == 1 && nc == 4 && mc2 == 1 && nc2 == 4 &&
                 nt2 == 144,
             "tile rule: exact cover, <= %d x %d, 16-aligned (%d bad); 64x1024 -> %d x %d tiles "
             "of %d x %d; 64x576 -> %d x %d of %d x %d", GEMM_MT, GEMM_NT, bad, mc, nc, mt,
             nt, mc2, nc2, mt2, nt2);
}

/* Threads, batching, OpenMP nesting and addresses change no bit. */
static void invariance(int tA, int tB, int M, int N, int K) {
    int lda = tA ? M : K, ldb = tB ? K : N, nb = 3;
    size_t sa = (size_t)M * K, sb = (size_t)K * N, sc = (size_t)M * N;
    float *A = malloc(sa * nb * sizeof *A), *B = malloc(sb * nb * sizeof *B);
    float *c[6];
    for (int i = 0; i < 6; i++) c[i] = malloc(sc * nb * sizeof *c[i]);
    tu_fill(A, sa * nb, 4, 1);
    tu_fill(B, sb * nb, 5, 1);
    tu_fill(c[0], sc * nb, 6, 1);
    for (int i = 1; i < 6; i++) memcpy(c[i], c[0], sc * nb * sizeof *c[i]);
    int saved = pd_get_threads();
    pd_set_threads(1);
    for (int b = 0; b < nb; b++)
        gemm_sgemm(tA, tB, M, N, K, 0.7f, A + b * sa, lda, B + b * sb, ldb, 1.0f, c[0] + b * sc, N);
    pd_set_threads(2);
    for (int b = 0; b < nb; b++)
        gemm_sgemm(tA, tB, M, N, K, 0.7f, A + b * sa, lda, B + b * sb, ldb, 1.0f, c[1] + b * sc, N);
    gemm_sgemm_batch(tA, tB, M, N, K, 0.7f, A, lda, sa, B, ldb, sb, 1.0f, c[2], N, sc, nb);
    /* each item from its own thread of an enclosing region (the inner loops run single-threaded) */
    #pragma omp parallel for num_threads(2) schedule(static)
    for (int b = 0; b < nb; b++)
        gemm_sgemm(tA, tB, M, N, K, 0.7f, A + b * sa, lda, B + b * sb, ldb, 1.0f, c[3] + b * sc, N);
    /* item 1 again, from operands copied to odd addresses with padded leading dimensions */
    int pad = 3, lda2 = lda + pad, ldb2 = ldb + pad, ldc2 = N + pad;
    int ra = tA ? K : M, rb = tB ? N : K;
    float *A2 = calloc((size_t)ra * lda2 + 1, sizeof *A2), *B2 = calloc((size_t)rb * ldb2 + 1, sizeof *B2),
          *C2 = calloc((size_t)M * ldc2 + 1, sizeof *C2);
    for (int r = 0; r < ra; r++) memcpy(A2 + 1 + (size_t)r * lda2, A + sa + (size_t)r * lda, (size_t)lda * 4);
    for (int r = 0; r < rb; r++) memcpy(B2 + 1 + (size_t)r * ldb2, B + sb + (size_t)r * ldb, (size_t)ldb * 4);
    for (int r = 0; r < M; r++)   /* item 1's starting C (c[5] is never written) */
        memcpy(C2 + 1 + (size_t)r * ldc2, c[5] + sc + (size_t)r * N, (size_t)N * 4);
    gemm_sgemm(tA, tB, M, N, K, 0.7f, A2 + 1, lda2, B2 + 1, ldb2, 1.0f, C2 + 1, ldc2);
    for (int r = 0; r < M; r++) memcpy(c[4] + sc + (size_t)r * N, C2 + 1 + (size_t)r * ldc2, (size_t)N * 4);
    pd_set_threads(saved);
    int thr = !memcmp(c[0], c[1], sc * nb * 4), bat = !memcmp(c[0], c[2], sc * nb * 4),
        nest = !memcmp(c[0], c[3], sc * nb * 4), addr = !memcmp(c[0] + sc, c[4] + sc, sc * 4);
    tu_check(thr && bat && nest && addr,
             "%c%c M=%d N=%d K=%d bitwise: 1 vs 2 threads %s, lone vs batch of 3 %s, inside an "
             "OpenMP region %s, other addresses/ld %s", tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K,
             thr ? "yes" : "NO", bat ? "yes" : "NO", nest ? "yes" : "NO", addr ? "yes" : "NO");
    for (int i = 0; i < 6; i++) free(c[i]);
    free(A); free(B); free(A2); free(B2); free(C2);
}

/* gemm_sgemm_st outside any parallel region with 2 OpenMP threads must still run single-threaded:
 * same bits as the call made from inside a region (where OpenBLAS never threads). The raw
 * cblas_sgemm with 2 threads is shown for information (it may or may not differ). */
static void single_threaded(void) {
    int M = 256, N = 1024, K = 576;
    float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)K * N * 4), *c1 = malloc((size_t)M * N * 4),
          *c2 = malloc((size_t)M * N * 4), *c3 = malloc((size_t)M * N * 4);
    tu_fill(A, (size_t)M * K, 9, 1);
    tu_fill(B, (size_t)K * N, 10, 1);
    int saved = pd_get_threads();
    pd_set_threads(2);
    gemm_sgemm_st(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, c1, N);
    int after = omp_get_max_threads();
    #pragma omp parallel num_threads(2)
    {
        #pragma omp single
        gemm_sgemm_st(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, c2, N);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, c3, N);
    pd_set_threads(saved);
    int same = !memcmp(c1, c2, (size_t)M * N * 4);
    tu_check(same && after == 2,
             "gemm_sgemm_st single-threaded outside a region: same bits as inside one (%s), thread "
             "count restored (%d); raw 2-thread cblas_sgemm %s", same ? "yes" : "NO", after,
             memcmp(c1, c3, (size_t)M * N * 4) ? "differs" : "happens to agree");
    free(A); free(B); free(c1); free(c2); free(c3);
}

/* (4) gemm_small_rows: whole products when the core has no small-matrix kernels; otherwise row
 * blocks of a power of two between 4 and 32 rows with rows·N·K <= 10^6 (OpenBLAS's limit for
 * them), the block sizes documented in gemm.c, or whole when no block fits. */
static void small_rows_rule(void) {
    int Ns[] = {1, 4, 15, 16, 25, 64, 100, 256, 1024}, Ks[] = {1, 16, 128, 256, 576, 1152, 4096},
        Ms[] = {1, 7, 16, 40, 64, 256, 1000};
    int off = 1, on = 1;
    gemm_force_small_rows(0);
    for (int i = 0; i < 9; i++)
        for (int k = 0; k < 7; k++)
            for (int m = 0; m < 7; m++) off &= gemm_small_rows(Ms[m], Ns[i], Ks[k]) == Ms[m];
    gemm_force_small_rows(1);
    for (int i = 0; i < 9; i++)
        for (int k = 0; k < 7; k++)
            for (int m = 0; m < 7; m++) {
                int M = Ms[m], N = Ns[i], K = Ks[k], r = gemm_small_rows(M, N, K);
                on &= r == M || (r >= 4 && r <= 32 && r < M && !(r & (r - 1)) &&
                                 (double)r * N * K <= 1e6);
            }
    int known = gemm_small_rows(256, 64, 256) == 32 && gemm_small_rows(256, 16, 1152) == 32 &&
                gemm_small_rows(256, 256, 256) == 8 && gemm_small_rows(192, 256, 576) == 4 &&
                gemm_small_rows(192, 256, 1024) == 192 && gemm_small_rows(16, 64, 256) == 16 &&
                gemm_small_rows(40, 15, 128) == 32;
    gemm_force_small_rows(-1);
    tu_check(off && on && known,
             "gemm_small_rows: whole without small kernels %s, blocks within OpenBLAS's limit %s, "
             "the documented sizes %s", off ? "yes" : "NO", on ? "yes" : "NO", known ? "yes" : "NO");
}

/* A gemv's bits do not depend on where x and y sit (a linear layer's sample n of a batch). */
static void gemv_invariance(void) {
    int rows = 512, cols = 300;
    float *A = malloc((size_t)rows * cols * 4), *x = malloc((cols + 5) * 4), *y1 = calloc(rows + 5, 4),
          *y2 = calloc(rows + 5, 4);
    tu_fill(A, (size_t)rows * cols, 14, 1);
    tu_fill(x, cols, 15, 1);
    gemm_sgemv_st(0, rows, cols, 1.0f, A, cols, x, 0.0f, y1);
    memmove(x + 3, x, cols * 4);
    gemm_sgemv_st(0, rows, cols, 1.0f, A, cols, x + 3, 0.0f, y2 + 1);
    tu_check(!memcmp(y1, y2 + 1, rows * 4), "gemm_sgemv_st bitwise with x, y at other addresses");
    free(A); free(x); free(y1); free(y2);
}

int main(void) {
    printf("OpenBLAS: %s, core %s\n", openblas_get_config(), openblas_get_corename());
    for (int tA = 0; tA < 2; tA++)
        for (int tB = 0; tB < 2; tB++) {
            one(tA, tB, 13, 37, 29, 1.0f, 0.0f, 0, 0);
            one(tA, tB, 200, 300, 600, 0.5f, 1.0f, 3, 0);   /* 2 x 2 tiles, uneven */
            one(tA, tB, 70, 530, 40, -1.5f, 0.25f, 1, 1);  /* 1 x 3 tiles, batched */
            invariance(tA, tB, 150, 280, 96);
        }
    one(0, 0, 1, 1, 1, 1.0f, 0.0f, 0, 0);
    one(0, 0, 1, 1, 1, 2.0f, 1.0f, 0, 1);
    one(0, 0, 64, 1024, 576, 1.0f, 1.0f, 0, 0);
    one(1, 0, 9, 64, 700, 1.0f, 0.3f, 2, 0);
    one(0, 1, 256, 64, 2304, 1.0f, 0.0f, 0, 1);
    one(1, 0, 576, 1024, 64, 1.0f, 0.0f, 0, 0);
    one(0, 0, 17, 33, 0, 1.0f, 0.5f, 0, 0);   /* K = 0: C = beta·C */
    gemv(0, 37, 29, 1.0f, 0.0f);
    gemv(1, 37, 29, 0.5f, 1.0f);
    gemv(0, 512, 512, 1.0f, 1.0f);
    gemv(1, 512, 128, -1.0f, 1.0f);
    tile_rule();
    invariance(0, 0, 64, 1024, 576);
    invariance(0, 1, 128, 1152, 256);
    /* shapes of the Winograd products' row blocks: OpenBLAS's small-matrix kernels where the core
     * has them, which read the operands where they lie */
    invariance(0, 0, 32, 64, 256);
    invariance(0, 0, 8, 256, 256);
    invariance(0, 0, 32, 15, 128);
    small_rows_rule();
    single_threaded();
    gemv_invariance();
    return tu_finish();
}
