/* euler.c — Euler on the probability-flow ODE dx/dsigma = (x - D(x;sigma))/sigma
 * (docs/algorithms.md §S2.1): one denoiser call per step, first order. The step into sigma = 0 returns
 * D (EDM convention, §S0.6); stopping at sigma_min (end_at_zero = 0) just takes the last Euler
 * step to sigma_min. NFE = steps either way. */
#include "samplers/sampler_impl.h"

static int euler_nfe(const pd_sample_params *p, int steps) { return steps; }

static int euler_step(sampler_run *r, int i) {
    double s0 = r->sigmas[i], s1 = r->sigmas[i + 1];
    if (sampler_run_denoise(r, r->x, s0, i)) return -1;
    sampler_euler_update(r->x, r->den, s0, s1, r->total);
    return 0;
}

const sampler_impl sampler_euler_impl = {
    .kind = PD_SAMPLER_EULER,
    .default_grid = PD_GRID_KARRAS,
    .n_work = 0,
    .uses_noise = NULL,
    .nfe_for_steps = euler_nfe,
    .step = euler_step,
};
