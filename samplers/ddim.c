/* ddim.c — DDIM in sigma form (docs/algorithms.md §S1): with eta = 0 it is exactly Euler on the sigma
 * grid (§S1.2; the same sampler_euler_update, so the results are bit-identical), and with eta > 0 the
 * ancestral split of §S1.3:
 *   sigma_up = min(s1, eta sqrt(s1^2 (s0^2 - s1^2)/s0^2)),  sigma_down = sqrt(s1^2 - sigma_up^2),
 *   x' = x + (sigma_down - s0) (x - D)/s0 + sigma_up z,
 * z = image b's noise stream step + 1. eta = 1 is DDPM ancestral sampling (posterior variance).
 * The step into sigma = 0 adds no noise and returns D, which is DDIM's abar_{-1} = 1 rule: the
 * last output is x0-hat at the smallest index (§S1.1). NFE = steps.
 *
 * Default grid: ddim-uniform, the DDIM paper's index grid, because a user who names "ddim"
 * expects DDIM's time steps (on karras it would be the euler sampler under another name). */
#include "samplers/sampler_impl.h"
#include <math.h>

static int ddim_nfe(const pd_sample_params *p, int steps) { return steps; }

static int ddim_uses_noise(const pd_sample_params *p) { return p->eta > 0; }

static int ddim_step(sampler_run *r, int i) {
    double s0 = r->sigmas[i], s1 = r->sigmas[i + 1];
    if (sampler_run_denoise(r, r->x, s0, i)) return -1;
    double up = 0.0;
    if (r->p->eta > 0 && s1 > 0)
        up = fmin(s1, r->p->eta * sqrt(s1 * s1 * (s0 * s0 - s1 * s1) / (s0 * s0)));
    if (up <= 0.0) {
        sampler_euler_update(r->x, r->den, s0, s1, r->total);
        return 0;
    }
    double down = sqrt(fmax(s1 * s1 - up * up, 0.0));
    sampler_euler_update(r->x, r->den, s0, down, r->total);
    double *eps = r->work[0], *x = r->x;
    size_t total = r->total;
    sampler_run_noise(r, i, eps);
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) x[j] += up * eps[j];
    return 0;
}

const sampler_impl sampler_ddim_impl = {
    .kind = PD_SAMPLER_DDIM,
    .default_grid = PD_GRID_DDIM_UNIFORM,
    .n_work = 1,
    .uses_noise = ddim_uses_noise,
    .nfe_for_steps = ddim_nfe,
    .step = ddim_step,
};
