/* nn_naive.c — double-precision twins of nn/fir.c and nn/embed.c, written straight from EDM's
 * definitions (training/networks.py Conv2d, FourierEmbedding, UNetBlock adaptive_scale): scatter
 * form for the transposed conv (the fast kernel gathers), no threads. Tests only. */
#include "nn/nn_layers.h"
#include <math.h>
#include <string.h>

static void filt(double *g, const double *f, int K, double gain) {
    double s = 0;
    for (int i = 0; i < K; i++) s += f[i];
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) g[i * K + j] = gain * f[i] * f[j] / (s * s);
}

void fir_down_forward_naive(double *out, const double *in, const double *f, int K, int pad, int N,
                            int C, int H, int W) {
    double g[16];
    filt(g, f, K, 1);
    int Ho = (H + 2 * pad - K) / 2 + 1, Wo = (W + 2 * pad - K) / 2 + 1;
    for (int p = 0; p < N * C; p++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                double acc = 0;
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) {
                        int yy = 2 * y - pad + i, xx = 2 * x - pad + j;
                        if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                            acc += g[i * K + j] * in[((size_t)p * H + yy) * W + xx];
                    }
                out[((size_t)p * Ho + y) * Wo + x] = acc;
            }
}

void fir_up_forward_naive(double *out, const double *in, const double *f, int K, int pad, int N,
                          int C, int H, int W) {
    double g[16];
    filt(g, f, K, 4);
    int Ho = 2 * (H - 1) - 2 * pad + K, Wo = 2 * (W - 1) - 2 * pad + K;
    memset(out, 0, sizeof(double) * (size_t)N * C * Ho * Wo);
    for (int p = 0; p < N * C; p++)
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++)
                for (int i = 0; i < K; i++)
                    for (int j = 0; j < K; j++) {
                        int y = 2 * yy - pad + i, x = 2 * xx - pad + j;
                        if (y >= 0 && y < Ho && x >= 0 && x < Wo)
                            out[((size_t)p * Ho + y) * Wo + x] +=
                                g[i * K + j] * in[((size_t)p * H + yy) * W + xx];
                    }
}

void fourier_forward_naive(double *out, const double *c_noise, const double *freqs, int N, int Cn,
                           int flip) {
    int half = Cn / 2;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < half; i++) {
            double a = 2 * M_PI * freqs[i] * c_noise[n];
            out[n * Cn + (flip ? half + i : i)] = cos(a);
            out[n * Cn + (flip ? i : half + i)] = sin(a);
        }
}

void modulate_forward_naive(double *out, const double *x, const double *params, int N, int C,
                            int HW) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                out[((size_t)n * C + c) * HW + i] =
                    params[n * 2 * C + C + c] + x[((size_t)n * C + c) * HW + i] * (params[n * 2 * C + c] + 1);
}
