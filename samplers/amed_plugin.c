/* amed_plugin.c — AMED-Plugin (docs/algorithms.md §S4.6; diff-sampler ipndm_sampler / euler_sampler with
 * an AMED_predictor): one learned intermediate time s in every interval of the base solver, the
 * second half-step scaled by c. The base is the predictor's: iPNDM (fixed-coefficient
 * Adams–Bashforth, ipndm.c, order cap max_order, default the predictor's 4) or Euler (order 1).
 * Interval t0 -> t1, per image b, H the direction history (most recent last, at most 3 used):
 *   d_n = (x - D(x; t0))/t0             (AFS while H is empty: d_n = x/sqrt(1 + t0^2))
 *   y   = x + (s - t0) AB_p(d_n; H),    p = min(max_order, |H| + 1);  push d_n
 *   d_s = (y - D(y; a s))/s
 *   x'  = y + c (t1 - s) AB_p(d_s; H),  p = min(max_order, |H| + 1);  push d_s
 * (the intermediate directions join the history as if the grid were uniform, as the reference
 * does). Conventions as amed.c: default grid karras rho 7 (the plugin recipe), stop at
 * sigma_min, NFE = 2 steps - AFS; with end_at_zero the step into 0 is the base solver's own step
 * without an intermediate time (iPNDM's AB step; Euler's returns D), one NFE. Directions sit in
 * four ring buffers, d number k of the run in work[k % 4]. */
#include "samplers/amed_predictor.h"
#include "samplers/amed_step.h"
#include "samplers/multistep.h"

/* AB coefficients, newest first, and their common denominator (docs/algorithms.md §S3.2, as ipndm.c) */
static const double ab[4][4] = {{1, 0, 0, 0}, {3, -1, 0, 0}, {23, -16, 5, 0}, {55, -59, 37, -9}};
static const double ab_den[4] = {1, 2, 12, 24};

static int plugin_nfe(const pd_sample_params *p, int steps) {
    return p->sched.end_at_zero ? 2 * steps - 1 : 2 * steps;
}

static int plugin_begin(sampler_run *r) {
    if (amed_begin(r, 1)) return -1;
    amed_state *st = r->state;
    const pd_amed_predictor *pred = r->p->amed;
    if (pred && pred->info.kind == PD_AMED_PLUGIN_EULER) {
        st->max_order = 1;
    } else {
        int def = pred && pred->info.max_order >= 1 ? pred->info.max_order : 4;
        st->max_order = ms_max_order(r, def, 4);
        if (st->max_order < 0) {
            amed_end(r);
            return -1;
        }
    }
    return 0;
}

/* AB_p's coefficients (newest first) for the direction about to be pushed, p = min(max_order,
 * |H| + 1) with |H| = min(pushed, max_order - 1). */
static void ab_setup(const amed_state *st, double coef[4]) {
    long long have = st->pushed;
    int p = have + 1 < st->max_order ? (int)have + 1 : st->max_order;
    for (int q = 0; q < 4; q++) coef[q] = ab[p - 1][q] / ab_den[p - 1];
}

static int plugin_step(sampler_run *r, int i) {
    amed_state *st = r->state;
    double t0 = r->sigmas[i], t1 = r->sigmas[i + 1];
    double *x = r->x, *y = r->work[4];
    size_t dim = r->dim, total = r->total;
    int n = r->n;
    if (amed_first_eval(r, x, t0, i)) return -1;

    /* first half: d_n into its ring slot, y = x + (s - t0) AB_p(d_n; H) */
    long long k = st->pushed;
    double *d0 = r->work[k % 4];
    const double *d1 = r->work[(k + 3) % 4], *d2 = r->work[(k + 2) % 4], *d3 = r->work[(k + 1) % 4];
    double co[4];
    ab_setup(st, co);
    const float *den = r->den;
    if (t1 == 0.0) {
        /* the base step into sigma = 0: Euler returns D exactly, iPNDM takes its AB step */
        if (st->max_order == 1) {
            sampler_euler_update(x, den, t0, t1, total);
        } else {
            double h = t1 - t0;
            #pragma omp parallel for schedule(static) if (total > 32768)
            for (size_t j = 0; j < total; j++) {
                d0[j] = (x[j] - den[j]) / t0;
                x[j] = x[j] + h * (co[0] * d0[j] + co[1] * d1[j] + co[2] * d2[j] + co[3] * d3[j]);
            }
        }
        st->pushed++;
        return 0;
    }
    amed_predict_interval(r, t0, t1);
    const double *s = st->s, *c = st->c;
    #pragma omp parallel for schedule(static) if (n > 1 && total > 32768)
    for (int b = 0; b < n; b++) {
        double h = s[b] - t0;
        for (size_t j = (size_t)b * dim; j < (size_t)(b + 1) * dim; j++) {
            d0[j] = (x[j] - den[j]) / t0;
            y[j] = x[j] + h * (co[0] * d0[j] + co[1] * d1[j] + co[2] * d2[j] + co[3] * d3[j]);
        }
    }
    st->pushed++;

    /* second half from y: d_s at the net's a s, x' = y + c (t1 - s) AB_p(d_s; H) */
    if (sampler_run_denoise_each(r, y, st->sig, i)) return -1;
    den = r->den;
    k = st->pushed;
    d0 = r->work[k % 4];
    d1 = r->work[(k + 3) % 4], d2 = r->work[(k + 2) % 4], d3 = r->work[(k + 1) % 4];
    ab_setup(st, co);
    #pragma omp parallel for schedule(static) if (n > 1 && total > 32768)
    for (int b = 0; b < n; b++) {
        double h = c[b] * (t1 - s[b]);
        for (size_t j = (size_t)b * dim; j < (size_t)(b + 1) * dim; j++) {
            d0[j] = (y[j] - den[j]) / s[b];
            x[j] = y[j] + h * (co[0] * d0[j] + co[1] * d1[j] + co[2] * d2[j] + co[3] * d3[j]);
        }
    }
    st->pushed++;
    return 0;
}

const sampler_impl sampler_amed_plugin_impl = {
    .kind = PD_SAMPLER_AMED_PLUGIN,
    .default_grid = PD_GRID_KARRAS,
    .n_work = 5,
    .uses_noise = NULL,
    .nfe_for_steps = plugin_nfe,
    .begin = plugin_begin,
    .step = plugin_step,
    .end = amed_end,
};
