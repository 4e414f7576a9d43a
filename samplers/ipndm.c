/* ipndm.c — iPNDM (DEIS paper's improved PNDM; docs/algorithms.md §S3.2): Adams–Bashforth in sigma on
 * the direction d_i = (x_i - D(x_i; sigma_i))/sigma_i with the fixed equal-step coefficients
 *   p = 1: d_i    p = 2: (3 d_i - d_{i-1})/2    p = 3: (23 d_i - 16 d_{i-1} + 5 d_{i-2})/12
 *   p = 4: (55 d_i - 59 d_{i-1} + 37 d_{i-2} - 9 d_{i-3})/24,
 * x_{i+1} = x_i + (sigma_{i+1} - sigma_i) AB_p, p = min(max_order, i + 1): a lower-order AB
 * warm-up and no lower-order final step (diff-sampler's ipndm_sampler). The coefficients ignore
 * the grid's non-uniform spacing, so the nominal order holds only for equal steps; on a smooth
 * grid such as karras the varying step costs one order (AB_p's h(h_i - h_{i-1}) f' defect), see
 * tests/test_multistep.c for the measured orders. A step into sigma = 0 uses the same formula:
 * the direction at the current sigma is well defined. One denoiser call per step; the
 * directions sit in four scratch buffers used as a ring (d_k in work[k % 4]). max_order 1..4,
 * default 4; default grid karras. With AFS, d_0 = x_0/sqrt(1 + sigma_0^2) joins the history. */
#include "samplers/multistep.h"
#include <stdint.h>

static int ipndm_nfe(const pd_sample_params *p, int steps) { return steps; }

/* AB coefficients, newest first, and their common denominator */
static const double ab[4][4] = {{1, 0, 0, 0}, {3, -1, 0, 0}, {23, -16, 5, 0}, {55, -59, 37, -9}};
static const double ab_den[4] = {1, 2, 12, 24};

static int ipndm_begin(sampler_run *r) {
    int p = ms_max_order(r, 4, 4);
    if (p < 0) return -1;
    r->state = (void *)(intptr_t)p;   /* the whole state is one small int */
    return 0;
}

static int ipndm_step(sampler_run *r, int i) {
    int max_order = (int)(intptr_t)r->state;
    double s0 = r->sigmas[i], s1 = r->sigmas[i + 1];
    if (sampler_run_denoise(r, r->x, s0, i)) return -1;
    int p = i + 1 < max_order ? i + 1 : max_order;
    double *x = r->x, *d0 = r->work[i % 4];
    const double *d1 = r->work[(i + 3) % 4], *d2 = r->work[(i + 2) % 4], *d3 = r->work[(i + 1) % 4];
    const float *den = r->den;
    size_t total = r->total;
    double h = s1 - s0;
    double c0 = h * ab[p - 1][0] / ab_den[p - 1], c1 = h * ab[p - 1][1] / ab_den[p - 1];
    double c2 = h * ab[p - 1][2] / ab_den[p - 1], c3 = h * ab[p - 1][3] / ab_den[p - 1];
    /* the unused history terms have coefficient 0 and their buffers hold finite values
     * (zeroed arena or older directions), so one loop serves every order */
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        d0[j] = (x[j] - den[j]) / s0;
        x[j] = x[j] + (c0 * d0[j] + c1 * d1[j] + c2 * d2[j] + c3 * d3[j]);
    }
    return 0;
}

const sampler_impl sampler_ipndm_impl = {
    .kind = PD_SAMPLER_IPNDM,
    .default_grid = PD_GRID_KARRAS,
    .n_work = 4,
    .uses_noise = NULL,
    .nfe_for_steps = ipndm_nfe,
    .begin = ipndm_begin,
    .step = ipndm_step,
};
