/* multistep.h — what the multistep samplers (DPM-Solver++ 2M/3M, UniPC, iPNDM) share: the
 * order rule with warm-up and lower-order final steps, the max_order option, and dynamic
 * thresholding of data predictions (docs/algorithms.md §S3.1, §S3.3).
 *
 * Order of step i of `steps` (sigma_i -> sigma_{i+1}), with p = max_order:
 *   lower_order_final = 1 (default): diff-sampler's expression, verbatim,
 *       order = (i + 1 < p) ? i + 1 : min(p, steps - i),
 *     so the warm-up ramps 1, 2, ... and the last step is first order, the one before it at
 *     most second order. (It differs from min(p, i + 1, steps - i) only when steps < p, e.g.
 *     3M over 2 steps runs orders 1, 2.)
 *   lower_order_final = 0: order = min(p, i + 1), full order to the end.
 * In both, a step that lands on sigma = 0 is first order: lambda = -ln 0 is infinite, the
 * exponential-integrator terms of order >= 2 have no limit there, and the first-order update
 * returns D(x_i; sigma_i) exactly (k-diffusion's rule).
 */
#ifndef PD_MULTISTEP_H
#define PD_MULTISTEP_H

#include "samplers/sampler_impl.h"

int ms_order(const sampler_run *r, int i, int max_order);

/* r->p->max_order resolved: 0 gives def; a value outside 1..hi fails naming the sampler.
 * Returns the order, or -1 with r->err. */
int ms_max_order(const sampler_run *r, int def, int hi);

/* Dynamic thresholding (docs/algorithms.md §S3.1, diff-sampler's dynamic_thresholding_fn): per image,
 * s = max(1, quantile_q |m|) with torch.quantile's linear interpolation between order
 * statistics (position q (dim - 1)), then m <- clip(m, -s, s)/s. m is [n, dim]; scratch is
 * n * dim doubles. The quantile is an exact order statistic, so the result does not depend on
 * the thread count. */
void ms_threshold(double *m, double *scratch, int n, size_t dim, double q);

#endif
