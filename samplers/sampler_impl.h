/* sampler_impl.h — the interface every sampler implements (internal to samplers/).
 *
 * pd_sample (sample.c) owns the run: it resolves the parameters, builds the sigma grid, allocates
 * one arena for the whole call (state, denoiser I/O, the sampler's scratch buffers) and drives
 * the step loop with its progress/abort callbacks and timing. A sampler is a small vtable
 * (sampler_impl) in its own file: how many NFE it spends for a number of steps, how many
 * full-size double scratch buffers it needs (they persist across steps, so multistep methods
 * keep their history there), and a step function that advances the state from sigmas[i] to
 * sigmas[i+1]. begin/end hooks let a sampler with extra state (a learned predictor, say) set it
 * up before the loop and release it after; nothing is allocated inside the loop.
 *
 * Adding a sampler: a PD_SAMPLER_* value before PD_SAMPLER_COUNT (pixdiff.h), its name in
 * names.c, a file with its sampler_impl, and its entry in sample.c's table; the _Static_asserts
 * catch a missing name or vtable. Parameters it needs go into pd_sample_params (additively).
 *
 * The state is float64 like EDM's reference sampler (docs/algorithms.md §S0.1); the denoiser sees float32
 * (sampler_run_denoise converts). Every update below is elementwise, so an image's result does not
 * depend on the batch it is in or on the thread count.
 */
#ifndef PD_SAMPLER_IMPL_H
#define PD_SAMPLER_IMPL_H

#include "pixdiff.h"
#include <stddef.h>

#define SAMPLER_RUN_MAX_WORK 8

typedef struct sampler_run {
    pd_denoiser *d;
    const pd_sample_params *p;   /* resolved: sigma range, steps, shift_res filled in */
    const double *sigmas;        /* [steps + 1], decreasing; sigmas[steps] = 0 or sigma_min */
    int steps;
    int n;                       /* images in the batch */
    size_t dim;                  /* C*H*W of one image */
    size_t total;                /* n * dim */
    const float *labels;         /* [n, label_dim] or NULL */
    const uint64_t *seeds;       /* [n], or NULL when the sampler draws no noise */
    double *x;                   /* [total] the state */
    float *xin, *den;            /* [total] denoiser input / output */
    float *sig;                  /* [n] per-sample sigma for the denoiser */
    double *work[SAMPLER_RUN_MAX_WORK]; /* [total] each, impl->n_work of them */
    void *state;                 /* the sampler's own, set by begin, released by end */
    int nfe;                     /* denoiser calls so far */
    int afs_pending;             /* p->afs and no denoiser call yet: the next one is analytic */
    int last_afs;                /* 1 if the latest sampler_run_denoise was answered by AFS */
    double seconds_denoiser;
    pd_error *err;
} sampler_run;

typedef struct sampler_impl {
    pd_sampler_kind kind;
    pd_grid_kind default_grid;   /* what a user expects when no grid is named */
    int n_work;                  /* scratch buffers wanted, <= SAMPLER_RUN_MAX_WORK */
    int (*uses_noise)(const pd_sample_params *p); /* 1 if a run draws noise (needs seeds); NULL: never */
    int (*nfe_for_steps)(const pd_sample_params *p, int steps);
    int (*begin)(sampler_run *r);     /* optional */
    int (*step)(sampler_run *r, int i);  /* sigmas[i] -> sigmas[i+1]; 0 or -1 with r->err */
    void (*end)(sampler_run *r);      /* optional; called whenever begin succeeded */
} sampler_impl;

extern const sampler_impl sampler_euler_impl;
extern const sampler_impl sampler_heun_impl;
extern const sampler_impl sampler_ddim_impl;
extern const sampler_impl sampler_dpmpp_2m_impl;
extern const sampler_impl sampler_dpmpp_3m_impl;
extern const sampler_impl sampler_ipndm_impl;
extern const sampler_impl sampler_dpm2_impl;
extern const sampler_impl sampler_unipc_impl;
extern const sampler_impl sampler_amed_impl;
extern const sampler_impl sampler_amed_plugin_impl;

/* The vtable of a sampler kind, or NULL for an unknown kind. */
const sampler_impl *sampler_impl_get(pd_sampler_kind k);

/* One batched denoiser call at a single sigma for every image: D(x; sigma) -> r->den.
 * Counts the NFE and the time inside the denoiser; on failure names the step. With AFS
 * (docs/algorithms.md §S4.3) the first call of a run is answered without the network by
 * D = x - sigma x/sqrt(1 + sigma^2) (so d = x/sqrt(1 + sigma^2)), counts no NFE and sets
 * r->last_afs; every sampler thereby gets AFS on its first evaluation, and multistep samplers
 * store that D/d in their history like any other. */
int sampler_run_denoise(sampler_run *r, const double *x, double sigma, int step);
/* The same with AMED's feature tap of the call into features [n, feature_dim] (NULL: none);
 * an AFS answer writes nothing there. */
int sampler_run_denoise_features(sampler_run *r, const double *x, double sigma, int step,
                                 float *features);
/* The same with a sigma per image, sigma[n] (AMED calls the network at a_b s_b,
 * docs/algorithms.md §S4.2); one NFE. AFS, when pending, uses each image's sigma. */
int sampler_run_denoise_each(sampler_run *r, const double *x, const double *sigma, int step);

/* Per-image step noise into eps[total]: image b gets rng_randn_double(seeds[b], step + 1)
 * (stream 0 is the initial noise z; rng.h's double twin of pd_randn, same elements before the
 * float rounding), so image b's noise depends only on its own seed. */
void sampler_run_noise(sampler_run *r, int step, double *eps);

/* The Euler step of the PF-ODE dx/dsigma = (x - D)/sigma (docs/algorithms.md §S2.1), in place:
 * x += (s1 - s0) (x - D)/s0. When s1 == 0 the result is D itself: x + (0 - s0)(x - D)/s0 = D
 * exactly in real arithmetic, and assigning D avoids the cancellation (EDM §S0.6: the step into
 * sigma = 0 "returns D"). Shared by Euler and DDIM so that DDIM(eta = 0) is bit-identical. */
void sampler_euler_update(double *x, const float *den, double s0, double s1, size_t total);

/* Steps that fit nfe evaluations, from impl->nfe_for_steps (largest steps >= 1, or -1). */
int sampler_impl_steps_for_nfe(const sampler_impl *impl, const pd_sample_params *p, int nfe);
/* impl->nfe_for_steps less the one evaluation AFS saves (p->afs); what a run really spends. */
int sampler_impl_nfe_for_steps(const sampler_impl *impl, const pd_sample_params *p, int steps);


#endif
