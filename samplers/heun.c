/* heun.c — Heun's second-order method, EDM Algorithm 1 and, with S_churn > 0, Algorithm 2
 * (docs/algorithms.md §S2.2, docs/algorithms.md §M3.7). Step i (sigmas s0 = sigma_i, s1 = sigma_{i+1}):
 *   gamma = min(S_churn/N, sqrt(2) - 1) if S_tmin <= s0 <= S_tmax else 0   (N = steps)
 *   s_hat = s0 (1 + gamma);  x_hat = x + sqrt(s_hat^2 - s0^2) S_noise z     (z: stream i + 1)
 *   d = (x_hat - D(x_hat; s_hat))/s_hat;  x' = x_hat + (s1 - s_hat) d       (Euler predictor)
 *   if s1 != 0: d' = (x' - D(x'; s1))/s1;  x' = x_hat + (s1 - s_hat)(d + d')/2  (trapezoid)
 * No correction on a step into sigma = 0 (EDM; that step returns D(x_hat; s_hat)), so the EDM
 * convention costs 2N - 1 NFE. Stopping at sigma_min (end_at_zero = 0) corrects every step,
 * including the last, as diff-sampler's Heun does: 2N NFE. */
#include "samplers/sampler_impl.h"
#include <math.h>

static int heun_nfe(const pd_sample_params *p, int steps) {
    return p->sched.end_at_zero ? 2 * steps - 1 : 2 * steps;
}

static double heun_gamma(const pd_sample_params *p, double s0, int steps) {
    if (!(p->s_churn > 0) || s0 < p->s_tmin || s0 > p->s_tmax) return 0.0;
    return fmin(p->s_churn / steps, sqrt(2.0) - 1.0);
}

static int heun_uses_noise(const pd_sample_params *p) {
    /* Any step may churn when S_churn > 0 and the [S_tmin, S_tmax] window is not empty. */
    return p->s_churn > 0 && p->s_noise > 0 && p->s_tmin <= p->s_tmax;
}

static int heun_step(sampler_run *r, int i) {
    const pd_sample_params *p = r->p;
    double s0 = r->sigmas[i], s1 = r->sigmas[i + 1];
    double *x = r->x, *dir = r->work[0], *xp = r->work[1];
    size_t total = r->total;

    double gamma = heun_gamma(p, s0, r->steps);
    double sh = s0;
    if (gamma > 0) {
        /* as EDM: sigma is raised even when S_noise = 0 (then no noise is added) */
        sh = s0 * (1.0 + gamma);
        double amp = sqrt(sh * sh - s0 * s0) * p->s_noise;
        if (amp > 0) {
            sampler_run_noise(r, i, xp);    /* xp is free until the predictor */
            #pragma omp parallel for schedule(static) if (total > 32768)
            for (size_t j = 0; j < total; j++) x[j] += amp * xp[j];
        }
    }

    if (sampler_run_denoise(r, x, sh, i)) return -1;
    const float *den = r->den;
    if (s1 == 0.0) {
        sampler_euler_update(x, den, sh, s1, total);
        return 0;
    }
    double h = s1 - sh;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        dir[j] = (x[j] - den[j]) / sh;
        xp[j] = x[j] + h * dir[j];
    }
    if (sampler_run_denoise(r, xp, s1, i)) return -1;
    den = r->den;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        double d2 = (xp[j] - den[j]) / s1;
        x[j] = x[j] + h * (0.5 * dir[j] + 0.5 * d2);
    }
    return 0;
}

const sampler_impl sampler_heun_impl = {
    .kind = PD_SAMPLER_HEUN,
    .default_grid = PD_GRID_KARRAS,
    .n_work = 2,
    .uses_noise = heun_uses_noise,
    .nfe_for_steps = heun_nfe,
    .step = heun_step,
};
