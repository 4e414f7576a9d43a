/* winograd_naive.c — double-precision twins of unet/winograd.c for the tests (contract in
 * winograd.h): the F(4x4, 3x3) algorithm (Lavin & Gray 2016, Eq. 7-8) tile by tile with the
 * matrices written out as tables and applied by plain matrix loops, and the direct definition's
 * backward. No BLAS, no threads, no cleverness; nothing in the sampling path calls them.
 */
#include "unet/winograd.h"
#include <stdlib.h>
#include <string.h>

static const double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const double G[6][3] = {{1.0 / 4, 0, 0},
                               {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                               {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                               {1.0 / 24, 1.0 / 12, 1.0 / 6},
                               {1.0 / 24, -1.0 / 12, 1.0 / 6},
                               {0, 0, 1}};
static const double AT[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

/* U = G g G^T for one 3x3 filter g (rot = 1: g rotated by 180°). */
static void filt(double U[6][6], const double *g, int rot) {
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            double s = 0;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++)
                    s += G[i][a] * (rot ? g[(2 - a) * 3 + 2 - b] : g[a * 3 + b]) * G[j][b];
            U[i][j] = s;
        }
}

/* The 6x6 input tile at (ty, tx) of plane x [H,W], zero outside; V = B^T d B. */
static void data(double V[6][6], const double *x, int H, int W, int ty, int tx) {
    double d[6][6];
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            int y = 4 * ty - 1 + a, z = 4 * tx - 1 + b;
            d[a][b] = y >= 0 && y < H && z >= 0 && z < W ? x[(size_t)y * W + z] : 0.0;
        }
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            double s = 0;
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) s += BT[i][a] * d[a][b] * BT[j][b];
            V[i][j] = s;
        }
}

/* out = conv(in) with filters w [OC,C,3,3] (+ b, or accumulated onto out). adj = 1: the adjoint
 * convolution of w [C,OC,3,3] instead (its input channels are w's outputs, its filters w's
 * rotated by 180°). */
static void forward(double *out, const double *in, const double *w, const double *b, int N, int C,
                    int H, int W, int OC, int adj, int accumulate) {
    int th = (H + 3) / 4, tw = (W + 3) / 4;
    double U[6][6], V[6][6], M[6][6];
    double *acc = malloc((size_t)th * tw * 36 * sizeof *acc);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            memset(acc, 0, (size_t)th * tw * 36 * sizeof *acc);
            for (int c = 0; c < C; c++) {
                /* adjoint: output o is the forward's input channel, input c its output channel */
                filt(U, adj ? w + ((size_t)c * OC + o) * 9 : w + ((size_t)o * C + c) * 9, adj);
                for (int t = 0; t < th * tw; t++) {
                    data(V, in + ((size_t)n * C + c) * H * W, H, W, t / tw, t % tw);
                    for (int e = 0; e < 36; e++) acc[t * 36 + e] += U[e / 6][e % 6] * V[e / 6][e % 6];
                }
            }
            double *y = out + ((size_t)n * OC + o) * H * W;
            for (int t = 0; t < th * tw; t++) {
                memcpy(M, acc + t * 36, sizeof M);
                for (int k = 0; k < 4; k++)
                    for (int l = 0; l < 4; l++) {
                        int yy = 4 * (t / tw) + k, xx = 4 * (t % tw) + l;
                        if (yy >= H || xx >= W) continue;
                        double s = 0;
                        for (int i = 0; i < 6; i++)
                            for (int j = 0; j < 6; j++) s += AT[k][i] * M[i][j] * AT[l][j];
                        double *d = y + (size_t)yy * W + xx;
                        *d = accumulate ? *d + s : s + (b ? b[o] : 0.0);
                    }
            }
        }
    free(acc);
}

void winograd_conv3x3_forward_naive(double *out, const double *in, const double *w,
                                    const double *b, int N, int C, int H, int W, int OC) {
    forward(out, in, w, b, N, C, H, W, OC, 0, 0);
}

/* din: the adjoint convolution (dout's OC channels in, C out, filters rotated). dw: for every
 * sample and tile, dU += (A dY A^T) ⊙ (B^T d B); then dw += G^T dU G. */
void winograd_conv3x3_backward_naive(double *din, double *dw, const double *dout, const double *in,
                                     const double *w, int N, int C, int H, int W, int OC) {
    if (din) forward(din, dout, w, NULL, N, OC, H, W, C, 1, 1);
    if (!dw) return;
    int th = (H + 3) / 4, tw = (W + 3) / 4;
    double V[6][6], dM[6][6];
    for (int o = 0; o < OC; o++)
        for (int c = 0; c < C; c++) {
            double dU[6][6] = {{0}};
            for (int n = 0; n < N; n++)
                for (int t = 0; t < th * tw; t++) {
                    int ty = t / tw, tx = t % tw;
                    data(V, in + ((size_t)n * C + c) * H * W, H, W, ty, tx);
                    const double *dy = dout + ((size_t)n * OC + o) * H * W;
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            double s = 0;
                            for (int k = 0; k < 4; k++)
                                for (int l = 0; l < 4; l++) {
                                    int yy = 4 * ty + k, xx = 4 * tx + l;
                                    if (yy < H && xx < W)
                                        s += AT[k][i] * dy[(size_t)yy * W + xx] * AT[l][j];
                                }
                            dM[i][j] = s;
                            dU[i][j] += dM[i][j] * V[i][j];
                        }
                }
            double *g = dw + ((size_t)o * C + c) * 9;
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    double s = 0;
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) s += G[i][a] * dU[i][j] * G[j][b];
                    g[a * 3 + b] += s;
                }
        }
}

void conv3x3_backward_naive(double *din, double *dw, const double *dout, const double *in,
                            const double *w, int N, int C, int H, int W, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++)
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) {
                        double wv = w[((size_t)o * C + c) * 9 + a * 3 + b], s = 0;
                        const double *x = in + ((size_t)n * C + c) * H * W;
                        const double *dy = dout + ((size_t)n * OC + o) * H * W;
                        for (int y = 0; y < H; y++)
                            for (int z = 0; z < W; z++) {
                                int sy = y + a - 1, sz = z + b - 1;
                                if (sy < 0 || sy >= H || sz < 0 || sz >= W) continue;
                                s += dy[(size_t)y * W + z] * x[(size_t)sy * W + sz];
                                if (din) din[((size_t)n * C + c) * H * W + (size_t)sy * W + sz] +=
                                    dy[(size_t)y * W + z] * wv;
                            }
                        if (dw) dw[((size_t)o * C + c) * 9 + a * 3 + b] += s;
                    }
}
