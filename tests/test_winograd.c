/* test_winograd — the F(4x4,3x3) convolutions (unet/winograd.c) against references:
 *   1. the algorithm itself: its double-precision twin equals the direct definition (forward,
 *      input gradient, weight gradient) to 1e-12 of the output's scale, on sizes that are and are
 *      not multiples of the tile (edge tiles, images smaller than two tiles);
 *   2. the double direct backward against the adjoint identities <conv(x), dy> = <x, din> and
 *      <conv_w'(x), dy> = <w', dw> (exact in double: a wrong index breaks them at order 1);
 *   3. the fast float kernels against the double direct definition, normwise: max|err|/max|ref|.
 *      Float Winograd's error is the direct product's times the transforms' growth: B^T, G and
 *      A^T have entries up to 5, 1/4 and 8, and the F(4,3) error bound (Lavin & Gray 2016, and
 *      Barabasz et al. 2020, "Error analysis and improving the accuracy of Winograd convolution",
 *      Table 2) is about 10-100x that of the direct sum; with K = 9·C float terms of random sign
 *      the direct path lands near 1e-7 of the scale here, so 2e-5 (forward) and 5e-5 (weight
 *      gradient, a sum over N·H·W terms more) bound it with room, while an indexing bug gives 1;
 *   4. what the samplers rely on: sample 0 bit-identical in a batch of 1 or 5 and with 1 or 2
 *      threads (forward and input gradient), dW bit-identical with 1 or 2 threads;
 *   5. the switch: PIXDIFF_CONV's direct path gives the im2col kernel's bits;
 *   6. the row kernels' wide (AVX-512 permute) and plain loops give the same bits, on rows of
 *      4, 5, 8, 10, 12, 16 and 20 tiles, some not a whole number of tiles (every mix of 8-tile,
 *      4-tile and single-tile steps, and edge tiles).
 */
#include "unet/gemm.h"
#include "unet/layers.h"
#include "unet/winograd.h"
#include "pixdiff.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* max|got − ref| / max|ref| over n values; prints it and checks it against tol. */
static double normwise(const char *name, const double *got, const float *gotf, const double *ref,
                       size_t n, double tol) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double g = got ? got[i] : (double)gotf[i];
        double e = fabs(g - ref[i]);
        err = isnan(e) ? INFINITY : fmax(err, e);
    }
    double rel = err / (scale + 1e-300);
    tu_check(rel <= tol, "%-58s max|err|/max|ref| %.3e (tol %.0e)", name, rel, tol);
    return rel;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* 1 and 2: the double twins. */
static void test_twins(int N, int C, int H, int W, int OC) {
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * OC * H * W, nw = (size_t)OC * C * 9;
    double *x = malloc(ni * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(OC * sizeof *b),
           *dy = malloc(no * sizeof *dy), *y1 = malloc(no * sizeof *y1),
           *y2 = malloc(no * sizeof *y2), *dx1 = calloc(ni, sizeof *dx1),
           *dx2 = calloc(ni, sizeof *dx2), *dw1 = calloc(nw, sizeof *dw1),
           *dw2 = calloc(nw, sizeof *dw2), *w2 = malloc(nw * sizeof *w2);
    tu_fill_d(x, ni, 1, 1);
    tu_fill_d(w, nw, 2, 0.3);
    tu_fill_d(b, OC, 3, 0.5);
    tu_fill_d(dy, no, 4, 1);
    tu_fill_d(w2, nw, 5, 0.3);
    char name[128];
    conv2d_forward_naive(y1, x, w, b, N, C, H, W, OC, 3);
    winograd_conv3x3_forward_naive(y2, x, w, b, N, C, H, W, OC);
    snprintf(name, sizeof name, "twin forward = direct, N=%d C=%d %dx%d OC=%d", N, C, H, W, OC);
    normwise(name, y2, NULL, y1, no, 1e-12);
    conv3x3_backward_naive(dx1, dw1, dy, x, w, N, C, H, W, OC);
    winograd_conv3x3_backward_naive(dx2, dw2, dy, x, w, N, C, H, W, OC);
    snprintf(name, sizeof name, "twin din = direct din, N=%d C=%d %dx%d OC=%d", N, C, H, W, OC);
    normwise(name, dx2, NULL, dx1, ni, 1e-12);
    snprintf(name, sizeof name, "twin dw = direct dw, N=%d C=%d %dx%d OC=%d", N, C, H, W, OC);
    normwise(name, dw2, NULL, dw1, nw, 1e-12);
    /* adjoints of the direct backward: without bias, <conv(x), dy> = <x, din> = <w, dw> */
    conv2d_forward_naive(y1, x, w, NULL, N, C, H, W, OC, 3);
    double lhs = dot(y1, dy, no), r1 = dot(x, dx1, ni), r2 = dot(w, dw1, nw);
    conv2d_forward_naive(y1, x, w2, NULL, N, C, H, W, OC, 3);
    double lhs2 = dot(y1, dy, no), r3 = dot(w2, dw1, nw);
    double e = fmax(fmax(fabs(lhs - r1), fabs(lhs - r2)), fabs(lhs2 - r3)) /
               (fabs(lhs) + fabs(lhs2) + 1e-300);
    tu_check(e < 1e-12, "direct backward adjoint identities, N=%d C=%d %dx%d OC=%d: rel %.2e", N, C,
             H, W, OC, e);
    free(x); free(w); free(b); free(dy); free(y1); free(y2); free(dx1); free(dx2); free(dw1);
    free(dw2); free(w2);
}

/* 3: the fast kernels against the double direct definition. */
static void test_fast(int N, int C, int H, int W, int OC) {
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * OC * H * W, nw = (size_t)OC * C * 9;
    float *x = tu_randf(ni, 6, 1), *w = tu_randf(nw, 7, 0.3f), *b = tu_randf(OC, 8, 0.5f),
          *dy = tu_randf(no, 9, 1), *y = malloc(no * sizeof *y), *dx = calloc(ni, sizeof *dx),
          *dw = calloc(nw, sizeof *dw);
    double *xd = tu_to_d(x, ni), *wd = tu_to_d(w, nw), *bd = tu_to_d(b, OC), *dyd = tu_to_d(dy, no),
           *yd = malloc(no * sizeof *yd), *dxd = calloc(ni, sizeof *dxd),
           *dwd = calloc(nw, sizeof *dwd);
    char name[128];
    tu_check(winograd_conv3x3_forward(y, x, w, b, N, C, H, W, OC, NULL, 0) == 0, "forward ran");
    conv2d_forward_naive(yd, xd, wd, bd, N, C, H, W, OC, 3);
    snprintf(name, sizeof name, "winograd forward N=%d C=%d %dx%d OC=%d", N, C, H, W, OC);
    normwise(name, NULL, y, yd, no, 2e-5);
    /* backward accumulates: start from a nonzero din/dw and add the reference to the same */
    for (size_t i = 0; i < ni; i++) dxd[i] = dx[i] = 0.25f;
    for (size_t i = 0; i < nw; i++) dwd[i] = dw[i] = -0.5f;
    tu_check(winograd_conv3x3_backward(dx, dw, dy, x, w, N, C, H, W, OC, NULL, 0) == 0, "backward ran");
    conv3x3_backward_naive(dxd, dwd, dyd, xd, wd, N, C, H, W, OC);
    snprintf(name, sizeof name, "winograd din N=%d C=%d %dx%d OC=%d", N, C, H, W, OC);
    normwise(name, NULL, dx, dxd, ni, 2e-5);
    snprintf(name, sizeof name, "winograd dw N=%d C=%d %dx%d OC=%d", N, C, H, W, OC);
    normwise(name, NULL, dw, dwd, nw, 5e-5);
    free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw);
    free(xd); free(wd); free(bd); free(dyd); free(yd); free(dxd); free(dwd);
}

/* 4: batch and thread invariance of the Winograd kernels (called directly: small shapes take the
 * direct path through conv2d_forward). */
static void test_invariance(int C, int H, int W, int OC) {
    int N = 5;
    size_t ni = (size_t)C * H * W, no = (size_t)OC * H * W, nw = (size_t)OC * C * 9;
    float *x = tu_randf(N * ni, 10, 1), *w = tu_randf(nw, 11, 0.2f), *b = tu_randf(OC, 12, 0.1f), *y[4],
          *dx[4], *dw[2];
    for (int t = 0; t < 4; t++) {
        y[t] = malloc(N * no * sizeof **y);
        dx[t] = calloc(N * ni, sizeof **dx);
    }
    for (int t = 0; t < 2; t++) dw[t] = calloc(nw, sizeof **dw);
    int saved = pd_get_threads();
    for (int t = 0; t < 4; t++) {
        pd_set_threads(t / 2 ? 2 : 1);
        int n = t % 2 ? N : 1;
        winograd_conv3x3_forward(y[t], x, w, b, n, C, H, W, OC, NULL, 0);
        winograd_conv3x3_backward(dx[t], t % 2 ? dw[t / 2] : NULL, y[t], x, w, n, C, H, W, OC,
                                  NULL, 0);
    }
    pd_set_threads(saved);
    int sy = 1, sx = 1;
    for (int t = 1; t < 4; t++) {
        sy &= memcmp(y[0], y[t], no * sizeof **y) == 0;
        sx &= memcmp(dx[0], dx[t], ni * sizeof **dx) == 0;
    }
    tu_check(sy && sx,
             "winograd C=%d %dx%d OC=%d: sample 0's output and din bit-identical in batch 1/5, "
             "threads 1/2 (%d %d)", C, H, W, OC, sy, sx);
    tu_check(memcmp(dw[0], dw[1], nw * sizeof **dw) == 0,
             "winograd C=%d %dx%d OC=%d: dW of 5 samples bit-identical with 1/2 threads", C, H, W, OC);
    for (int t = 0; t < 4; t++) { free(y[t]); free(dx[t]); }
    free(dw[0]); free(dw[1]); free(x); free(w); free(b);
}

/* 4b: the caller's work area (conv2d passes its im2col buffer) changes no bit: none, the size
 * conv2d passes, room for exactly one sample (groups of one), two and a half (groups of two and
 * a remainder), one float short of a sample (falls back to the thread's scratch); and the work
 * area is really used for the groups when a sample fits (its sentinel is overwritten). */
static void test_work(int C, int H, int W, int OC) {
    int N = 5, T = ((H + 3) / 4) * ((W + 3) / 4);
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * OC * H * W, nw = (size_t)OC * C * 9;
    size_t per = (size_t)36 * (C + OC) * T, sizes[5] = {0, (size_t)9 * C * H * W, per,
                                                        per * 5 / 2, per - 1};
    float *x = tu_randf(ni, 16, 1), *w = tu_randf(nw, 17, 0.2f), *b = tu_randf(OC, 18, 0.1f),
          *dy = tu_randf(no, 19, 1), *y[5], *dx[5], *dw[5], *work = malloc(per * 3 * sizeof *work);
    int ran = 1, same = 1, used = 1;
    for (int v = 0; v < 5; v++) {
        y[v] = malloc(no * sizeof **y);
        dx[v] = calloc(ni, sizeof **dx);
        dw[v] = calloc(nw, sizeof **dw);
        float *wk = sizes[v] ? work : NULL;
        if (wk) wk[0] = -1234.5f;
        ran &= winograd_conv3x3_forward(y[v], x, w, b, N, C, H, W, OC, wk, sizes[v]) == 0 &&
               winograd_conv3x3_backward(dx[v], dw[v], dy, x, w, N, C, H, W, OC, wk, sizes[v]) == 0;
        if (wk && sizes[v] >= per) used &= wk[0] != -1234.5f;
        if (v)
            same &= !memcmp(y[0], y[v], no * sizeof **y) && !memcmp(dx[0], dx[v], ni * sizeof **dx) &&
                    !memcmp(dw[0], dw[v], nw * sizeof **dw);
    }
    tu_check(ran && same && used,
             "winograd C=%d %dx%d OC=%d: out, din, dw bit-identical with every size of work area, "
             "and the work area used when a sample fits (%d %d %d)", C, H, W, OC, ran, same, used);
    for (int v = 0; v < 5; v++) { free(y[v]); free(dx[v]); free(dw[v]); }
    free(x); free(w); free(b); free(dy); free(work);
}

/* 5: the direct path through the switch is the im2col kernel, and differs from Winograd's bits. */
static void test_switch(void) {
    int N = 2, C = 16, H = 16, W = 16, OC = 24;
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * OC * H * W;
    float *x = tu_randf(ni, 13, 1), *w = tu_randf((size_t)OC * C * 9, 14, 0.2f), *b = tu_randf(OC, 15, 0.1f),
          *col = malloc((size_t)C * 9 * H * W * sizeof *col), *y1 = malloc(no * sizeof *y1),
          *y2 = malloc(no * sizeof *y2);
    conv_set_path(CONV_DIRECT);
    int direct_off = !conv_winograd_applies(C, H, W, OC);
    conv2d_forward(y1, x, w, b, N, C, H, W, OC, 3, col);
    conv_set_path(CONV_AUTO);
    conv2d_forward(y2, x, w, b, N, C, H, W, OC, 3, col);
    tu_check(direct_off && conv_winograd_applies(C, H, W, OC) && memcmp(y1, y2, no * sizeof *y1),
             "conv path switch: direct and winograd are different code paths");
    tu_check(!conv_winograd_applies(C, 3, 3, OC) && !conv_winograd_applies(C, 8, 8, OC) &&
                 conv_winograd_applies(C, 32, 8, OC) && conv_winograd_applies(C, 64, 64, OC) &&
                 !conv_winograd_applies(3, 32, 32, 64) && !conv_winograd_applies(64, 32, 32, 3),
             "shape rule: 3x3 and 8x8 images and 3-channel sides direct, 32x8 and 64x64 Winograd");
    free(x); free(w); free(b); free(col); free(y1); free(y2);
}

/* 6: wide and plain row kernels, forward and backward, bit for bit. On a CPU without AVX-512 both
 * runs take the plain loops and the check holds trivially (it says so). */
static void test_row_kernels(int C, int H, int W, int OC) {
    int N = 2;
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * OC * H * W, nw = (size_t)OC * C * 9;
    float *x = tu_randf(ni, 20, 1), *w = tu_randf(nw, 21, 0.2f), *b = tu_randf(OC, 22, 0.1f),
          *dy = tu_randf(no, 23, 1), *y[2], *dx[2], *dw[2];
    for (int v = 0; v < 2; v++) {
        y[v] = malloc(no * sizeof **y);
        dx[v] = calloc(ni, sizeof **dx);
        dw[v] = calloc(nw, sizeof **dw);
        winograd_force_plain_rows(v);
        winograd_conv3x3_forward(y[v], x, w, b, N, C, H, W, OC, NULL, 0);
        winograd_conv3x3_backward(dx[v], dw[v], dy, x, w, N, C, H, W, OC, NULL, 0);
    }
    winograd_force_plain_rows(0);
    tu_check(!memcmp(y[0], y[1], no * sizeof **y) && !memcmp(dx[0], dx[1], ni * sizeof **dx) &&
                 !memcmp(dw[0], dw[1], nw * sizeof **dw),
             "winograd C=%d %dx%d OC=%d: out, din, dw bit-identical with the wide and the plain "
             "row kernels%s", C, H, W, OC,
             __builtin_cpu_supports("avx512f") ? "" : " (no AVX-512 here: both plain)");
    for (int v = 0; v < 2; v++) { free(y[v]); free(dx[v]); free(dw[v]); }
    free(x); free(w); free(b); free(dy);
}

int main(void) {
    conv_set_path(CONV_AUTO);
    test_twins(1, 3, 8, 8, 4);
    test_twins(2, 2, 5, 7, 3);
    test_twins(1, 4, 9, 6, 2);
    test_twins(1, 2, 3, 2, 2);
    test_fast(2, 3, 5, 7, 4);
    test_fast(1, 5, 6, 9, 3);
    test_fast(2, 32, 16, 16, 24);
    test_fast(1, 256, 8, 8, 256);
    /* Products whole and cut into row blocks (gemm_small_rows: 32 rows at these 64, 15 and 4
     * tiles a sample, so 64, 40 and 48 output channels make two blocks, the last two short, and
     * 6 stays whole), under either kernel family (ctest also runs this test under
     * OPENBLAS_CORETYPE=Haswell). */
    for (int cut = 0; cut < 2; cut++) {
        gemm_force_small_rows(cut);
        printf("products %s\n", cut ? "in row blocks" : "whole");
        tu_check(gemm_small_rows(64, 64, 64) == (cut ? 32 : 64), "row blocks %s",
                 cut ? "on" : "off");
        test_fast(2, 64, 32, 32, 64);
        test_fast(1, 128, 17, 12, 40);
        test_invariance(8, 5, 7, 6);
        test_invariance(64, 32, 32, 64);
        test_invariance(32, 8, 8, 48);
    }
    gemm_force_small_rows(-1);
    test_work(16, 16, 16, 24);
    test_work(48, 17, 12, 16);
    test_switch();
    int rk[][4] = {{3, 8, 16, 5}, {2, 6, 18, 3}, {4, 12, 32, 3}, {3, 7, 30, 4}, {2, 5, 37, 2},
                   {3, 5, 48, 4}, {2, 9, 64, 3}, {2, 4, 80, 2}};
    for (int k = 0; k < 8; k++) test_row_kernels(rk[k][0], rk[k][1], rk[k][2], rk[k][3]);
    return tu_finish();
}
