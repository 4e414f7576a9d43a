/* bench_sbgemm — one thread, OpenBLAS's cblas_sbgemm (bf16 operands) against cblas_sgemm on the
 * direct path's product shapes [OC, 9C] x [9C, HW], for docs/benchmarks.md "bf16": best of 5
 * rounds, GFLOP/s. cblas_sbgemm is looked up at run time as pixdiff does (unet/gemm.c): with
 * Debian 12's OpenBLAS, which has none, it says so and exits 0. Checks nothing.
 *   LD_LIBRARY_PATH=/path/to/openblas-with-bf16 build/bench_sbgemm
 */
#include "core/util.h"
#include "unet/bf16.h"
#include "unet/gemm.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

/* Each product three ways, one thread: one cblas_sgemm call for the whole product, and the
 * 64-row tiles pixdiff runs (gemm_tiles) in float (gemm_sgemm_tile) and in bf16
 * (gemm_sbgemm_tile, cblas_sbgemm found at run time). */
int main(void) {
    if (!gemm_bf16_available()) {
        printf("skipped: the loaded OpenBLAS (%s) has no cblas_sbgemm\n", openblas_get_config());
        return 0;
    }
    openblas_set_num_threads(1);
    static const int shapes[][3] = {{256, 64, 2304}, {128, 64, 1152}, {128, 256, 1152},
                                    {64, 1024, 576},  {256, 16, 2304}, {256, 64, 256}};
    printf("%s, 1 thread, GFLOP/s, best of 5\n", openblas_get_config());
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
              *C = malloc(sizeof(float) * M * N);
        uint16_t *a = malloc(2 * (size_t)M * K), *b = malloc(2 * (size_t)K * N);
        if (!A || !B || !C || !a || !b) return 1;
        for (int i = 0; i < M * K; i++) a[i] = bf16_from_float(A[i] = (float)(i % 17) / 17 - .5f);
        for (int i = 0; i < K * N; i++) b[i] = bf16_from_float(B[i] = (float)(i % 13) / 13 - .5f);
        int mt, nt, mc, nc;
        gemm_tiles(M, N, K, &mt, &nt, &mc, &nc);
        double flop = 2.0 * M * N * K, best[3] = {1e30, 1e30, 1e30};
        int reps = (int)(1e9 / flop) + 1;
        for (int round = 0; round < 5; round++) {
            double t[4];
            t[0] = core_now();
            for (int r = 0; r < reps; r++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, A, K, B, N, 0,
                            C, N);
            t[1] = core_now();
            for (int r = 0; r < reps; r++)
                for (int i = 0; i < mc * nc; i++)
                    gemm_sgemm_tile(i, 0, 0, M, N, K, 1, A, K, B, N, 0, C, N);
            t[2] = core_now();
            for (int r = 0; r < reps; r++)
                for (int i = 0; i < mc * nc; i++) gemm_sbgemm_tile(i, M, N, K, a, K, b, N, 0, C, N);
            t[3] = core_now();
            for (int k = 0; k < 3; k++)
                if ((t[k + 1] - t[k]) / reps < best[k]) best[k] = (t[k + 1] - t[k]) / reps;
        }
        printf("M %3d N %4d K %5d   sgemm whole %6.1f   tiles: sgemm %6.1f   sbgemm %6.1f\n", M, N,
               K, flop / best[0] * 1e-9, flop / best[1] * 1e-9, flop / best[2] * 1e-9);
        free(A), free(B), free(C), free(a), free(b);
    }
    return 0;
}
