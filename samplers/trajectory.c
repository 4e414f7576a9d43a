/* trajectory.c — the reference solution a sampler's images are measured against
 * (pixdiff.h pd_trajectory_span / pd_trajectory_reference; docs/algorithms.md §S0.7): the one
 * definition of the trajectory error, shared by `pixdiff eval --ref-steps` and a sweep's
 * trajectory metric.
 *
 * The reference solves the same probability-flow ODE, with the same denoiser, from the same noise
 * (pd_generate's image i: pd_randn(seed_i, 0) at the sampler grid's first sigma s_first) and ends
 * where the sampler ends. Heun with ref_steps steps on a Karras grid (rho 7, no SNR shift: both
 * ends are already the sampler's) from s_first to s_last, the smallest nonzero sigma of the
 * sampler's grid, gives the "end" state x(s_last): what a sampler that stops at sigma_min returns.
 * A sampler whose grid ends at sigma = 0 returns, from its last step, D(x_{N-1}; sigma_{N-1}) (an
 * ODE step into 0 lands on D, §S0.6); the reference takes that same step from the exact state:
 * "zero" = D(x(s_last); s_last). So a sampler that solved the ODE exactly along its grid has no
 * trajectory error, and what remains is its discretisation error alone. A one-step grid into 0
 * has no nonzero sigma but its first; s_last is then that of the same grid with two steps (its
 * smallest nonzero sigma, which no grid's step count changes), so a one-step sampler is measured
 * against the solution rather than against itself.
 */
#include "core/util.h"
#include "pixdiff.h"

#include <stdlib.h>
#include <string.h>

int pd_trajectory_span(const pd_denoiser *d, const pd_sample_params *p, double *s_first, double *s_last,
                       pd_error *err) {
    if (!d || !p || !s_first || !s_last) return pd_fail(err, "trajectory reference: NULL argument");
    /* The grid pd_sample would build: sigma range and shift resolution from the denoiser. */
    pd_schedule_params sc = p->sched;
    if (sc.sigma_min <= 0) sc.sigma_min = d->sigma_min;
    if (sc.sigma_max <= 0) sc.sigma_max = d->sigma_max;
    if (sc.shift != PD_SHIFT_NONE && sc.shift_res <= 0) sc.shift_res = d->H;
    int steps = p->steps > 0 ? p->steps : p->nfe > 0 ? pd_sampler_steps_for_nfe(p, p->nfe) : 0;
    if (steps < 1)
        return pd_fail(err, "trajectory reference: the sampler's run has no step (steps %d, NFE %d)",
                       p->steps, p->nfe);
    const int gsteps = steps > 1 ? steps : 2;
    double *sig = malloc(sizeof(double) * (size_t)(gsteps + 2));
    if (!sig) return pd_fail(err, "trajectory reference: out of memory");
    int rc = pd_sigma_grid(sig, steps, &sc, err);
    if (rc == 0) {
        *s_first = sig[0];
        *s_last = sig[steps];
        /* Into sigma = 0: the grid's smallest nonzero sigma, from a grid of at least two steps. */
        if (sc.end_at_zero) rc = pd_sigma_grid(sig, gsteps, &sc, err);
        if (rc == 0 && sc.end_at_zero) *s_last = sig[gsteps - 1];
    }
    free(sig);
    return rc;
}

/* zero = D(end; s_last) for images first..first+count-1, batch by batch, labels as pd_generate
 * gives them (guided when p asks for guidance, as the sampler's denoiser was). */
static int final_step(pd_denoiser *d, const pd_generate_params *p, double s_last, long long first,
                      int count, const float *end, float *zero, pd_sample_stats *st, pd_error *err) {
    const int L = d->label_dim;
    const int batch = p->batch > 0 ? (p->batch < count ? p->batch : count) : (count < 16 ? count : 16);
    const size_t chw = (size_t)d->C * d->H * d->W;
    pd_denoiser *den = d, *guided = NULL;
    if (p->use_guidance && pd_denoiser_cfg(&guided, d, p->guidance, err)) return -1;
    if (guided) den = guided;
    float *sig = malloc(sizeof(float) * (size_t)batch);
    float *labels = L > 0 ? calloc((size_t)batch * (size_t)L, sizeof(float)) : NULL;
    int rc = 0;
    if (!sig || (L > 0 && !labels)) rc = pd_fail(err, "trajectory reference: out of memory");
    const double t0 = core_now();
    for (int k0 = 0; rc == 0 && k0 < count; k0 += batch) {
        const int nb = count - k0 < batch ? count - k0 : batch;
        if (p->abort && p->abort(p->user)) {
            rc = pd_fail(err, "interrupted");
            break;
        }
        for (int k = 0; k < nb; k++) {
            sig[k] = (float)s_last;
            if (L > 0) {
                float *row = labels + (size_t)k * L;
                memset(row, 0, sizeof(float) * (size_t)L);
                int c = pd_generate_class(p, first + k0 + k);
                if (c >= 0 && c < L) row[c] = 1.0f;
            }
        }
        rc = pd_denoiser_eval(den, zero + (size_t)k0 * chw, end + (size_t)k0 * chw, sig, labels, nb, err);
    }
    if (rc == 0 && st) {
        st->nfe += 1;
        st->seconds_denoiser += core_now() - t0;
        st->seconds_total += core_now() - t0;
    }
    free(sig);
    free(labels);
    pd_denoiser_free(guided);
    return rc;
}

int pd_trajectory_reference(pd_denoiser *d, const pd_generate_params *p, int ref_steps, long long first,
                            int count, float *end, float *zero, pd_sample_stats *stats, pd_error *err) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!d || !p || !end) return pd_fail(err, "trajectory reference: NULL argument");
    if (ref_steps < 1) return pd_fail(err, "trajectory reference: %d steps (need >= 1)", ref_steps);
    double s_first, s_last;
    if (pd_trajectory_span(d, &p->sample, &s_first, &s_last, err)) return -1;
    pd_generate_params q = *p;
    pd_sample_params *r = &q.sample;
    *r = pd_sample_default_params();
    r->sampler = PD_SAMPLER_HEUN;
    r->sched.grid = PD_GRID_KARRAS;
    r->sched.rho = 7;
    r->sched.sigma_min = s_last;
    r->sched.sigma_max = s_first;
    r->sched.end_at_zero = 0;
    r->sched.shift = PD_SHIFT_NONE;
    r->steps = ref_steps;
    q.images = NULL;          /* the reference's states are not the caller's images */
    if (pd_generate(d, &q, first, count, end, stats, err)) return -1;
    return zero && count > 0 ? final_step(d, p, s_last, first, count, end, zero, stats, err) : 0;
}
