/* generator.c — pd_sample's path for a one-step generator (a SiD model, docs/algorithms.md §M1.2).
 *
 * A generator G is the EDM denoiser of its network evaluated once at a fixed sigma_init on noise
 * of that scale: x = D(sigma_init z; sigma_init, label) (SiD's generate_onestep.py with
 * --sigma_G). There is no grid and no integration, so the sampler, schedule and step settings do
 * not apply; the abort and progress callbacks still run (one step). The initial noise z is the
 * caller's, drawn per image seed as for every sampler, so image i depends only on its seed. One
 * arena per call (input, output, sigmas); the caller's x is written only on success.
 */
#include "core/progress.h"
#include "core/util.h"
#include "samplers/sampler_impl.h"

#include <stdint.h>
#include <string.h>

int pd_sample_generator(pd_denoiser *d, const pd_sample_params *p, float *x, const float *labels,
                        int n, pd_sample_stats *stats, pd_error *err) {
    double t0 = pd_now();
    const double s = d->sigma_init;
    size_t dim = (size_t)d->C * d->H * d->W, total = dim * (size_t)n;
    if (total / (size_t)n != dim || total > SIZE_MAX / 16)
        return pd_fail(err, "generator: batch of %d images of %zu values is too large", n, dim);
    float *xin = pd_alloc(sizeof(float) * (2 * total + (size_t)n));
    if (!xin) return pd_fail(err, "generator: out of memory for a batch of %d", n);
    float *out = xin + total, *sig = out + total;
    if (p->abort && p->abort(p->user)) {
        pd_free(xin);
        return pd_fail(err, "generator: aborted before its one step");
    }
    const float sf = (float)s;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) xin[j] = sf * x[j];
    for (int b = 0; b < n; b++) sig[b] = sf;
    double t1 = pd_now();
    int rc = pd_denoiser_eval(d, out, xin, sig, labels, n, err);
    double t_den = pd_now() - t1;
    if (rc == 0) {
        memcpy(x, out, sizeof(float) * total);
        if (p->progress) {
            pd_progress pr;
            pg_init(&pr, "sample", "steps");
            pr.done = pr.total = pr.step = pr.steps = pr.batch = pr.batches = 1;
            pr.images_done = pr.images = n;
            pg_time(&pr, t0);
            p->progress(p->user, &pr);
        }
        if (stats) {
            stats->steps = 1;
            stats->nfe = 1;
            stats->seconds_total = pd_now() - t0;
            stats->seconds_denoiser = t_den;
        }
    }
    pd_free(xin);
    return rc;
}
