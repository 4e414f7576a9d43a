/* layers_naive.c — double-precision twins of the fast layer kernels (unet/layers.h), written as
 * plain loops straight from the definitions in docs/algorithms.md §M4.1, §M4.2, §M4.4 (llm.c's
 * matmul_forward_naive): no BLAS, no threads, no cleverness. They exist so tests can compare the
 * fast float kernels against them and take finite differences through them; nothing in the
 * sampling path calls them.
 */
#include "unet/layers.h"
#include <math.h>
#include <stdlib.h>

void linear_forward_naive(double *out, const double *in, const double *w, const double *b, int N,
                          int IN, int OUT) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < IN; i++) s += in[(size_t)n * IN + i] * w[(size_t)o * IN + i];
            out[(size_t)n * OUT + o] = s;
        }
}

void silu_forward_naive(double *out, const double *in, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] / (1.0 + exp(-in[i]));
}

/* Mean and biased variance over the (C/G)·HW elements of group g of sample n. */
void groupnorm_forward_naive(double *out, const double *in, const double *gamma,
                             const double *beta, int N, int C, int HW, int G, double eps) {
    int cg = C / G;
    double cnt = (double)cg * HW;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            const double *x = in + ((size_t)n * C + (size_t)g * cg) * HW;
            double mu = 0, var = 0;
            for (size_t i = 0; i < (size_t)cg * HW; i++) mu += x[i];
            mu /= cnt;
            for (size_t i = 0; i < (size_t)cg * HW; i++) var += (x[i] - mu) * (x[i] - mu);
            var /= cnt;
            for (int c = 0; c < cg; c++) {
                int ch = g * cg + c;
                for (int j = 0; j < HW; j++) {
                    size_t i = (size_t)c * HW + j;
                    double xh = (x[i] - mu) / sqrt(var + eps);
                    out[((size_t)n * C + ch) * HW + j] =
                        xh * (gamma ? gamma[ch] : 1.0) + (beta ? beta[ch] : 0.0);
                }
            }
        }
}

/* out[n,o,y,x] = b[o] + Σ_{c,i,j} w[o,c,i,j]·in[n,c,y+i−k/2,x+j−k/2], zero outside. */
void conv2d_forward_naive(double *out, const double *in, const double *w, const double *b, int N,
                          int C, int H, int W, int OC, int k) {
    int p = k / 2;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    double s = b ? b[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < k; i++)
                            for (int j = 0; j < k; j++) {
                                int sy = y + i - p, sx = x + j - p;
                                if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
                                s += w[(((size_t)o * C + c) * k + i) * k + j] *
                                     in[(((size_t)n * C + c) * H + sy) * W + sx];
                            }
                    out[(((size_t)n * OC + o) * H + y) * W + x] = s;
                }
}

void avgpool2_forward_naive(double *out, const double *in, int N, int C, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    for (int nc = 0; nc < N * C; nc++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                double s = 0;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) s += in[((size_t)nc * H + 2 * y + i) * W + 2 * x + j];
                out[((size_t)nc * Ho + y) * Wo + x] = s / 4.0;
            }
}

void upsample2_forward_naive(double *out, const double *in, int N, int C, int H, int W) {
    for (int nc = 0; nc < N * C; nc++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++)
                out[((size_t)nc * 2 * H + y) * 2 * W + x] = in[((size_t)nc * H + y / 2) * W + x / 2];
}

/* EDM UNetBlock attention (docs/algorithms.md §M4.4): q, k, v of head h are channels h·3Ch + 3c + j. */
void attention_forward_naive(double *out, const double *qkv, int N, int C, int L, int heads) {
    int Ch = C / heads;
    double *w = malloc((size_t)L * sizeof *w);
    if (!w) return;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < heads; h++) {
            const double *base = qkv + (size_t)n * 3 * C * L + (size_t)h * 3 * Ch * L;
#define QKV(c, j, l) base[((size_t)(c) * 3 + (j)) * L + (l)]
            for (int i = 0; i < L; i++) {
                double mx = -INFINITY, s = 0;
                for (int l = 0; l < L; l++) {
                    double d = 0;
                    for (int c = 0; c < Ch; c++) d += QKV(c, 0, i) * QKV(c, 1, l);
                    w[l] = d / sqrt((double)Ch);
                    if (w[l] > mx) mx = w[l];
                }
                for (int l = 0; l < L; l++) { w[l] = exp(w[l] - mx); s += w[l]; }
                for (int c = 0; c < Ch; c++) {
                    double a = 0;
                    for (int l = 0; l < L; l++) a += w[l] / s * QKV(c, 2, l);
                    out[((size_t)n * C + (size_t)h * Ch + c) * L + i] = a;
                }
            }
#undef QKV
        }
    free(w);
}

/* EDM PositionalEmbedding (docs/algorithms.md §M4.2): [cos | sin], or [sin | cos] when flip. */
void posemb_forward_naive(double *out, const double *c_noise, int N, int Cn, int endpoint, int flip) {
    int half = Cn / 2;
    int den = half - (endpoint ? 1 : 0);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < half; i++) {
            double f = den > 0 ? pow(1.0 / 10000.0, (double)i / den) : 1.0;
            double a = c_noise[n] * f;
            out[(size_t)n * Cn + (flip ? half + i : i)] = cos(a);
            out[(size_t)n * Cn + (flip ? i : half + i)] = sin(a);
        }
}
