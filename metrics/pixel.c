/* pixel.c — pixel-space metrics and resizing: class accuracy of requested labels, trajectory
 * error (RMSE, PSNR with data range 2) against a reference solution from the same noise, s x s
 * average pooling (docs/algorithms.md §M2.1 Down_m) and nearest-neighbour upsampling (Up_m). Sums are in
 * double, in index order (so pooling a nearest-upsampled image returns it bit for bit). */
#include "metrics/metrics.h"

#include <math.h>

double pd_class_accuracy(const float *logits, const int *labels, int n, int K) {
    if (n < 1 || K < 1) return NAN;
    long long hit = 0;
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (l[k] > l[best]) best = k;
        hit += best == labels[i];
    }
    return (double)hit / n;
}

void pd_trajectory_error(const float *x, const float *ref, size_t count, double *rmse,
                         double *psnr) {
    double acc = 0;
    for (size_t i = 0; i < count; i++) {
        double e = (double)x[i] - ref[i];
        acc += e * e;
    }
    double mse = count ? acc / count : 0.0;
    if (rmse) *rmse = sqrt(mse);
    /* PSNR = 10 log10(range^2 / MSE), range 2 for data in [-1, 1]. */
    if (psnr) *psnr = mse > 0 ? 10.0 * log10(4.0 / mse) : INFINITY;
}

int pd_avg_pool(float *out, const float *x, int n, int C, int H, int W, int s, pd_error *err) {
    if (s < 1 || H % s || W % s)
        return pd_fail(err, "average pooling: %d x %d images do not split into %d x %d blocks", H, W, s, s);
    const int h = H / s, w = W / s;
    const double inv = 1.0 / ((double)s * s);
    #pragma omp parallel for schedule(static)
    for (long long p = 0; p < (long long)n * C; p++) {
        const float *src = x + (size_t)p * H * W;
        float *dst = out + (size_t)p * h * w;
        for (int r = 0; r < h; r++)
            for (int c = 0; c < w; c++) {
                double acc = 0;   /* exact for s <= 2^14: a pooled constant is that constant */
                for (int i = 0; i < s; i++)
                    for (int j = 0; j < s; j++) acc += src[(size_t)(r * s + i) * W + c * s + j];
                dst[r * w + c] = (float)(acc * inv);
            }
    }
    return 0;
}

void mt_upsample_nearest(float *out, const float *x, int n, int C, int N, int u) {
    const int M = N * u;
    #pragma omp parallel for schedule(static)
    for (long long p = 0; p < (long long)n * C; p++) {
        const float *src = x + (size_t)p * N * N;
        float *dst = out + (size_t)p * M * M;
        for (int r = 0; r < M; r++)
            for (int c = 0; c < M; c++) dst[(size_t)r * M + c] = src[(r / u) * N + c / u];
    }
}
