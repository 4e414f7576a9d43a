/* optim.c — Adam, warm-up, clipping, the NaN/Inf guard and EDM's EMA (see optim.h).
 *
 * Per-element arithmetic is float32 with the step's scalars computed once in double, so an update
 * is a pure function of (p, m, v, g, scalars) and bit-identical whatever the thread count. The
 * naive double twin of opt_adam_step lives in tests/test_train.c.
 */
#include "distill/optim.h"

#include <math.h>
#include <stdint.h>

#define OPT_CHUNK 65536

size_t opt_sanitize(float *g, size_t n) {
    size_t bad = 0;
    #pragma omp parallel for schedule(static) reduction(+ : bad)
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        if (isnan(x)) { g[i] = 0.0f; bad++; }
        else if (isinf(x)) { g[i] = x > 0 ? 1e5f : -1e5f; bad++; }
    }
    return bad;
}

double opt_global_norm(const float *g, size_t n) {
    size_t nchunk = (n + OPT_CHUNK - 1) / OPT_CHUNK;
    double total = 0.0;
    /* Chunk sums land in a small stack array in blocks of 256 chunks (16 Mi floats) so nothing is
     * allocated; each block is then added in chunk order. */
    for (size_t c0 = 0; c0 < nchunk; c0 += 256) {
        double part[256];
        size_t cn = nchunk - c0 < 256 ? nchunk - c0 : 256;
        #pragma omp parallel for schedule(static)
        for (size_t c = 0; c < cn; c++) {
            size_t lo = (c0 + c) * OPT_CHUNK, hi = lo + OPT_CHUNK < n ? lo + OPT_CHUNK : n;
            double s = 0.0;
            for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
            part[c] = s;
        }
        for (size_t c = 0; c < cn; c++) total += part[c];
    }
    return sqrt(total);
}

double opt_clip(float *g, size_t n, double max_norm) {
    double norm = opt_global_norm(g, n);
    if (max_norm > 0 && norm > max_norm) {
        float s = (float)(max_norm / norm);
        #pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    return norm;
}

double opt_lr(const opt_adam *a, long long images_after) {
    if (a->warmup_images <= 0) return a->lr;
    double r = (double)images_after / (double)a->warmup_images;
    return a->lr * (r < 1.0 ? r : 1.0);
}

void opt_adam_step(float *p, float *m, float *v, const float *g, size_t n, double lr,
                   double beta1, double beta2, double eps, long long t) {
    /* Bias corrections of Adam Alg. 1, folded into the step size and the denominator exactly as
     * torch.optim.Adam does (step_size = lr/bc1, denom = sqrt(v)/sqrt(bc2) + eps). */
    double bc1 = 1.0 - pow(beta1, (double)t), bc2 = 1.0 - pow(beta2, (double)t);
    const float b1 = (float)beta1, c1 = (float)(1.0 - beta1);
    const float b2 = (float)beta2, c2 = (float)(1.0 - beta2);
    const float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2)), e = (float)eps;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        p[i] -= step * (mi / (sqrtf(vi) * inv_sqrt_bc2 + e));
    }
}

double opt_ema_beta(double halflife_images, double rampup, long long cur_nimg, int batch) {
    double h = halflife_images;
    if (rampup > 0) {
        double r = rampup * (double)cur_nimg;
        if (r < h) h = r;
    }
    return pow(0.5, (double)batch / (h > 1e-8 ? h : 1e-8));
}

void opt_ema_update(float *ema, const float *p, size_t n, double beta) {
    const float b = (float)beta;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) ema[i] = p[i] + b * (ema[i] - p[i]);
}
