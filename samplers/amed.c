/* amed.c — AMED-Solver (docs/algorithms.md §S4.2; zju-pi/diff-sampler amed_sampler). Interval
 * t0 = sigma_i -> t1 = sigma_{i+1}, per image b with (r_b, c_b, a_b) = g_phi(feature, t0, t1):
 *   d = (x - D(x; t0))/t0                 (AFS on the first interval: d = x/sqrt(1 + t0^2))
 *   s = t1^r t0^(1-r),  y = x + (s - t0) d,  d_s = (y - D(y; a s))/s   (net at a s, divide by s)
 *   x' = x + c (t1 - t0) d_s              (restarts from x, not from y)
 * Conventions: the default grid is vp-time with rho 1 and the run stops at sigma_min (diff-sampler,
 * §S0.6); N timestamps = steps + 1, NFE = 2 steps - AFS = 2(N - 1) - AFS, so NFE 3/5/7/9 are
 * N = 3/4/5/6 with AFS. With end_at_zero the step into sigma = 0 has no intermediate time and is
 * the Euler step that returns D(x; t0) (as dpm2.c): 2 steps - 1 - AFS. With r = 1/2, c = a = 1
 * (the neutral or an all-zero predictor) every operation is DPM-Solver-2's (dpm2.c, r = 1/2) in
 * the same order, so the two agree bit for bit (tests/test_amed.c). */
#include "samplers/amed_step.h"

static int amed_nfe(const pd_sample_params *p, int steps) {
    return p->sched.end_at_zero ? 2 * steps - 1 : 2 * steps;
}

static int amed_solver_begin(sampler_run *r) { return amed_begin(r, 0); }

static int amed_step(sampler_run *r, int i) {
    amed_state *st = r->state;
    double t0 = r->sigmas[i], t1 = r->sigmas[i + 1];
    double *x = r->x, *dir = r->work[0], *y = r->work[1];
    size_t dim = r->dim, total = r->total;
    int n = r->n;
    if (amed_first_eval(r, x, t0, i)) return -1;
    if (t1 == 0.0) {
        sampler_euler_update(x, r->den, t0, t1, total);
        return 0;
    }
    amed_predict_interval(r, t0, t1);
    const float *den = r->den;
    const double *s = st->s;
    #pragma omp parallel for schedule(static) if (n > 1 && total > 32768)
    for (int b = 0; b < n; b++)
        for (size_t j = (size_t)b * dim; j < (size_t)(b + 1) * dim; j++) {
            dir[j] = (x[j] - den[j]) / t0;
            y[j] = x[j] + (s[b] - t0) * dir[j];
        }
    if (sampler_run_denoise_each(r, y, st->sig, i)) return -1;
    den = r->den;
    const double *c = st->c;
    #pragma omp parallel for schedule(static) if (n > 1 && total > 32768)
    for (int b = 0; b < n; b++) {
        double h = c[b] * (t1 - t0);
        for (size_t j = (size_t)b * dim; j < (size_t)(b + 1) * dim; j++) {
            double ds = (y[j] - den[j]) / s[b];
            x[j] = x[j] + h * ds;
        }
    }
    return 0;
}

const sampler_impl sampler_amed_impl = {
    .kind = PD_SAMPLER_AMED,
    .default_grid = PD_GRID_VP_TIME,
    .n_work = 2,
    .uses_noise = NULL,
    .nfe_for_steps = amed_nfe,
    .begin = amed_solver_begin,
    .step = amed_step,
    .end = amed_end,
};
