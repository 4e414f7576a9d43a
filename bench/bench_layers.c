/* bench_layers — throughput of the conv2d kernels (unet/layers.c) at the U-Net's reference shapes:
 * N = 8, C = OC in 64..256, 32x32 / 16x16 / 8x8, k = 3 (and the 1x1 skip/qkv convs). Prints
 * GFLOP/s (2·N·OC·C·k²·H·W per forward; twice that for backward's dW + din) and OpenBLAS's kernel
 * (best of 5 rounds); checks nothing. Usage: bench_layers [threads] [N]. The environment
 * variables PIXDIFF_CONV and PIXDIFF_PRECISION pick the path and precision, as for pixdiff.
 */
#include "pixdiff.h"
#include <cblas.h>
#include "unet/layers.h"
#include "unet/precision.h"
#include "core/util.h"
#include <stdio.h>
#include <stdlib.h>

static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
}

static void bench(int N, int C, int H, int OC, int k, int backward) {
    size_t ni = (size_t)N * C * H * H, no = (size_t)N * OC * H * H, nw = (size_t)OC * C * k * k;
    float *x = core_alloc(ni * 4), *y = core_alloc(no * 4), *w = core_alloc(nw * 4),
          *b = core_alloc(OC * 4), *col = core_alloc((size_t)C * k * k * H * H * 4),
          *dx = core_alloc(ni * 4), *dw = core_alloc(nw * 4);
    if (!x || !y || !w || !b || !col || !dx || !dw) { printf("out of memory\n"); exit(1); }
    fill(x, ni); fill(w, nw); fill(b, OC);
    double flop = 2.0 * N * OC * C * k * k * H * H * (backward ? 2 : 1);
    int reps = (int)(1e9 / flop) + 2;
    for (int r = 0; r < 2; r++) conv2d_forward(y, x, w, b, N, C, H, H, OC, k, col);
    /* Best of 5 timed rounds: the machine is shared, and the minimum is the least disturbed. */
    double t = 1e30;
    for (int round = 0; round < 5; round++) {
        double t0 = core_now();
        for (int r = 0; r < reps; r++) {
            if (backward) conv2d_backward(dx, dw, NULL, y, x, w, N, C, H, H, OC, k, col);
            else conv2d_forward(y, x, w, b, N, C, H, H, OC, k, col);
        }
        double dt = (core_now() - t0) / reps;
        if (dt < t) t = dt;
    }
    printf("conv2d %-8s N=%d C=%3d OC=%3d %2dx%-2d k=%d  %8.3f ms  %6.1f GFLOP/s\n",
           backward ? "backward" : "forward", N, C, OC, H, H, k, t * 1e3, flop / t * 1e-9);
    core_free(x); core_free(y); core_free(w); core_free(b);
    core_free(col); core_free(dx); core_free(dw);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, N = argc > 2 ? atoi(argv[2]) : 8;
    pd_set_threads(threads);
    const char *precision = getenv("PIXDIFF_PRECISION");
    pd_error err = {{0}};
    if (precision && pd_set_precision(precision, &err)) {
        fprintf(stderr, "bench_layers: PIXDIFF_PRECISION: %s\n", err.msg);
        return 2;
    }
    conv_bf16_scope(1);   /* the layers as inside an evaluation, where bf16 may apply */
    printf("threads %d, OpenBLAS core %s, conv %s, precision %s\n", pd_get_threads(),
           openblas_get_corename(), pd_conv_algorithm(), pd_precision());
    bench(N, 64, 32, 64, 3, 0);
    bench(N, 128, 32, 128, 3, 0);
    bench(N, 128, 16, 128, 3, 0);
    bench(N, 256, 16, 256, 3, 0);
    bench(N, 128, 8, 128, 3, 0);
    bench(N, 256, 8, 256, 3, 0);
    bench(N, 256, 4, 256, 3, 0);
    bench(N, 128, 32, 128, 1, 0);
    bench(N, 256, 8, 256, 1, 0);
    bench(N, 64, 32, 64, 3, 1);
    bench(N, 128, 16, 128, 3, 1);
    return 0;
}
