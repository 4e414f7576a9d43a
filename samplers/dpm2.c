/* dpm2.c — DPM-Solver-2 in sigma form (docs/algorithms.md §S3.4; diff-sampler's dpm_2_sampler), the
 * single-step second-order method that AMED-Solver generalises (§S4.2). Step i, s0 = sigma_i,
 * s1 = sigma_{i+1}, r = params.dpm2_r (0 means 1/2, the geometric midpoint):
 *   d = (x - D(x; s0))/s0,  s = s1^r s0^(1-r),  y = x + (s - s0) d,  d_s = (y - D(y; s))/s,
 *   x' = x + (s1 - s0) [ d_s/(2r) + (1 - 1/(2r)) d ]        (r = 1/2: x' = x + (s1 - s0) d_s)
 * A step into sigma = 0 would put s at 0, where d is undefined, so it is an Euler step instead,
 * which returns D(x; s0) (the EDM convention, §S0.6, as Heun's last step): the end-at-zero
 * convention costs 2N - 1 NFE, stopping at sigma_min 2N. With AFS the first d is analytic. */
#include "samplers/sampler_impl.h"
#include <math.h>

static int dpm2_nfe(const pd_sample_params *p, int steps) {
    return p->sched.end_at_zero ? 2 * steps - 1 : 2 * steps;
}

static int dpm2_step(sampler_run *r, int i) {
    double s0 = r->sigmas[i], s1 = r->sigmas[i + 1];
    double rr = r->p->dpm2_r > 0 ? r->p->dpm2_r : 0.5;
    double *x = r->x, *dir = r->work[0], *y = r->work[1];
    size_t total = r->total;
    if (sampler_run_denoise(r, x, s0, i)) return -1;
    if (s1 == 0.0) {
        sampler_euler_update(x, r->den, s0, s1, total);
        return 0;
    }
    double s = pow(s1, rr) * pow(s0, 1.0 - rr);
    const float *den = r->den;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        dir[j] = (x[j] - den[j]) / s0;
        y[j] = x[j] + (s - s0) * dir[j];
    }
    if (sampler_run_denoise(r, y, s, i)) return -1;
    den = r->den;
    double h = s1 - s0, a = 1.0 / (2.0 * rr), b = 1.0 - a;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        double ds = (y[j] - den[j]) / s;
        x[j] = x[j] + h * (a * ds + b * dir[j]);
    }
    return 0;
}

const sampler_impl sampler_dpm2_impl = {
    .kind = PD_SAMPLER_DPM2,
    .default_grid = PD_GRID_KARRAS,
    .n_work = 2,
    .uses_noise = NULL,
    .nfe_for_steps = dpm2_nfe,
    .step = dpm2_step,
};
