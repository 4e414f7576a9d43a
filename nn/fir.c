/* fir.c — EDM's FIR resampling (Conv2d with resample_filter and no weight, or its up/down step
 * before a weight; Karras et al. 2022, training/networks.py Conv2d) as depthwise stride-2 loops,
 * forward and backward, plus the one-pixel zero padding of the fused NCSN++ aux conv.
 *
 * The 2-D filter g = f⊗f/(Σf)² is built in double and rounded once to float (exact for the
 * integer taps EDM uses: [1,3,3,1]/8 squared has denominators 64). Each (sample, channel) plane is
 * independent and summed in a fixed tap order, so results do not depend on threads or batch.
 */
#include "nn/nn_layers.h"
#include <string.h>

int fir_down_size(int H, int K, int pad) { return (H + 2 * pad - K) / 2 + 1; }
int fir_up_size(int H, int K, int pad) { return 2 * (H - 1) - 2 * pad + K; }

static void filter2d(float *g, const float *f, int K, float gain) {
    double s = 0;
    for (int i = 0; i < K; i++) s += f[i];
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) g[i * K + j] = (float)(gain * f[i] * f[j] / (s * s));
}

void fir_down_forward(float *out, const float *in, const float *f, int K, int pad, int N, int C,
                      int H, int W) {
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 1.0);
    int Ho = fir_down_size(H, K, pad), Wo = fir_down_size(W, K, pad);
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 32768)
    for (long p = 0; p < (long)N * C; p++) {
        const float *s = in + (size_t)p * H * W;
        float *o = out + (size_t)p * Ho * Wo;
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                float acc = 0;
                for (int i = 0; i < K; i++) {
                    int yy = 2 * y - pad + i;
                    if (yy < 0 || yy >= H) continue;
                    for (int j = 0; j < K; j++) {
                        int xx = 2 * x - pad + j;
                        if (xx >= 0 && xx < W) acc += g[i * K + j] * s[(size_t)yy * W + xx];
                    }
                }
                o[(size_t)y * Wo + x] = acc;
            }
    }
}

void fir_down_backward(float *din, const float *dout, const float *f, int K, int pad, int N, int C,
                       int H, int W) {
    if (!din) return;
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 1.0);
    int Ho = fir_down_size(H, K, pad), Wo = fir_down_size(W, K, pad);
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 32768)
    for (long p = 0; p < (long)N * C; p++) {
        float *d = din + (size_t)p * H * W;
        const float *o = dout + (size_t)p * Ho * Wo;
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                float go = o[(size_t)y * Wo + x];
                for (int i = 0; i < K; i++) {
                    int yy = 2 * y - pad + i;
                    if (yy < 0 || yy >= H) continue;
                    for (int j = 0; j < K; j++) {
                        int xx = 2 * x - pad + j;
                        if (xx >= 0 && xx < W) d[(size_t)yy * W + xx] += g[i * K + j] * go;
                    }
                }
            }
    }
}

/* Transposed conv: input pixel i lands on output 2i − pad + k with weight 4·g[k]. Written as a
 * gather (for each output, the taps k ≡ y + pad mod 2) so each output is one ordered sum. */
void fir_up_forward(float *out, const float *in, const float *f, int K, int pad, int N, int C,
                    int H, int W) {
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 4.0);
    int Ho = fir_up_size(H, K, pad), Wo = fir_up_size(W, K, pad);
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 8192)
    for (long p = 0; p < (long)N * C; p++) {
        const float *s = in + (size_t)p * H * W;
        float *o = out + (size_t)p * Ho * Wo;
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                float acc = 0;
                for (int i = (y + pad) & 1; i < K; i += 2) {
                    int yy = (y + pad - i) / 2;
                    if (yy < 0 || yy >= H) continue;
                    for (int j = (x + pad) & 1; j < K; j += 2) {
                        int xx = (x + pad - j) / 2;
                        if (xx >= 0 && xx < W) acc += g[i * K + j] * s[(size_t)yy * W + xx];
                    }
                }
                o[(size_t)y * Wo + x] = acc;
            }
    }
}

void fir_up_backward(float *din, const float *dout, const float *f, int K, int pad, int N, int C,
                     int H, int W) {
    if (!din) return;
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 4.0);
    int Ho = fir_up_size(H, K, pad), Wo = fir_up_size(W, K, pad);
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 8192)
    for (long p = 0; p < (long)N * C; p++) {
        float *d = din + (size_t)p * H * W;
        const float *o = dout + (size_t)p * Ho * Wo;
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++) {
                float acc = 0;
                for (int i = 0; i < K; i++) {
                    int y = 2 * yy - pad + i;
                    if (y < 0 || y >= Ho) continue;
                    for (int j = 0; j < K; j++) {
                        int x = 2 * xx - pad + j;
                        if (x >= 0 && x < Wo) acc += g[i * K + j] * o[(size_t)y * Wo + x];
                    }
                }
                d[(size_t)yy * W + xx] += acc;
            }
    }
}

void pad1_forward(float *out, const float *in, int N, int C, int H, int W) {
    int Wp = W + 2;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 32768)
    for (long p = 0; p < (long)N * C; p++) {
        float *o = out + (size_t)p * (H + 2) * Wp;
        memset(o, 0, sizeof(float) * (size_t)(H + 2) * Wp);
        for (int y = 0; y < H; y++)
            memcpy(o + (size_t)(y + 1) * Wp + 1, in + ((size_t)p * H + y) * W, sizeof(float) * W);
    }
}

void pad1_backward(float *din, const float *dout, int N, int C, int H, int W) {
    if (!din) return;
    int Wp = W + 2;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > 32768)
    for (long p = 0; p < (long)N * C; p++)
        for (int y = 0; y < H; y++) {
            const float *s = dout + (size_t)p * (H + 2) * Wp + (size_t)(y + 1) * Wp + 1;
            float *d = din + ((size_t)p * H + y) * W;
            for (int x = 0; x < W; x++) d[x] += s[x];
        }
}
