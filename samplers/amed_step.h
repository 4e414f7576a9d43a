/* amed_step.h — what the AMED-Solver (amed.c) and the AMED-Plugin (amed_plugin.c) share: the
 * predictor state of a run, the interval's first denoiser call with the feature tap, and the
 * per-image prediction of r, c, a with the intermediate sigma (docs/algorithms.md §S4.2, §S4.4).
 *
 * Feature tap: when a predictor is in use, the first call of interval n asks the denoiser for its
 * tap through the evaluation call (pd_denoiser_eval_features). An AFS answer (no network call) and
 * an analytic denoiser (no network, feature_dim 0) give zeros, as the reference does on its AFS
 * step; a wrapper passes the request on or fails naming itself (pixdiff.h, pd_denoiser.eval). A tap of another size (a U-Net sampled away from its
 * trained resolution has no 8x8 level) fails when a predictor is in use: g_phi reads 64 values.
 * The neutral predictor (pd_sample_params.amed = NULL) reads nothing and gives r = 1/2, c = a = 1.
 */
#ifndef PD_AMED_STEP_H
#define PD_AMED_STEP_H

#include "samplers/sampler_impl.h"

typedef struct amed_state {
    const pd_amed_predictor *pred; /* NULL: neutral */
    int ask;                       /* a predictor is in use: request the tap on first calls */
    int tap;                       /* ... and the denoiser reports the 64-value tap */
    int max_order;                 /* plugin: AB order cap (1 for the Euler base) */
    long long pushed;              /* plugin: directions pushed to the history so far */
    float *feat;                   /* [n, 64] */
    double *r, *c, *a, *s, *sig;   /* [n]: predictions, s = t1^r t0^(1-r), sig = a s */
} amed_state;

/* Allocates the state (r->state) and checks that the predictor's kind fits the sampler
 * (plugin = 0: a solver predictor; 1: a plugin one). */
int amed_begin(sampler_run *r, int plugin);
void amed_end(sampler_run *r);
/* D(x; t0) into r->den (AFS when pending), with the tap into st->feat when a predictor reads it. */
int amed_first_eval(sampler_run *r, const double *x, double t0, int i);
/* st->r, c, a, s, sig for every image of the interval t0 -> t1 (t1 > 0). */
void amed_predict_interval(sampler_run *r, double t0, double t1);

#endif
