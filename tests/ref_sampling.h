/* ref_sampling.h — plumbing shared by the sampler tests (test_samplers, test_multistep): a
 * recording denoiser wrapper, seeded test noise, a pd_sample call that reports its error, sampler
 * parameters in one line, the log-log fit that turns errors into a convergence order, and the
 * AMED predictor description the AMED tests build their predictors from.
 *
 * Contract: rs_open_rec wraps the analytic denoiser `spec` (exits 1 when it cannot be opened) and
 * passes every call through unchanged, recording in its rs_rec (d->ctx) the last output (when it
 * fits in `cap` floats), the number of calls and the sigma of image 0 of the first RS_REC_MAX
 * calls; pd_denoiser_free releases both. rs_noise draws image b from pd_randn(seeds[b], stream 0),
 * the sampler's own starting noise. Tests only.
 */
#ifndef PD_REF_SAMPLING_H
#define PD_REF_SAMPLING_H

#include "pixdiff.h"
#include <stddef.h>
#include <stdint.h>

#define RS_REC_MAX 64

typedef struct rs_rec {
    pd_denoiser *inner;
    float *last;             /* copy of the last output */
    size_t cap;
    int calls;
    double sig[RS_REC_MAX];  /* sigma of image 0 in each call */
} rs_rec;

pd_denoiser *rs_open_rec(const char *spec, size_t cap);
void rs_noise(float *z, int n, size_t dim, const uint64_t *seeds);
/* pd_sample with no labels; prints the error on failure. seeds may be NULL (the sampler then
 * needs none); st may be NULL. */
int rs_sample(pd_denoiser *d, const pd_sample_params *p, float *x, const uint64_t *seeds, int n,
              pd_sample_stats *st);
pd_sample_params rs_params(pd_sampler_kind k, pd_grid_kind g, int steps, int end_at_zero);
/* An AMED predictor's info: kind k on 3 steps with AFS (NFE 5), vp-time rho 1 for the solver and
 * karras rho 7 for the plugins, sigma in [0.002, 80], the given head ranges, max_order 4 for
 * plugin-ipndm (else 1), and a fixed training record (teacher heun, M 1, tiny.safetensors, ...). */
pd_amed_info rs_amed_info(pd_amed_kind k, double s_dir, double s_time);
/* Least-squares slope of log err against log steps, negated: the order p in err ~ steps^-p. */
double rs_fit_order(const int *steps, const double *err, int n);

#endif
