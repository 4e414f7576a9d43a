/* sample.c — pd_sample, the driver every sampler runs under (sampler_impl.h), plus the default
 * parameters and the steps <-> NFE accounting.
 *
 * pd_sample resolves the parameters (sigma range and shift resolution from the denoiser, steps
 * from an NFE budget), builds the sigma grid, allocates one arena for the whole call (grid,
 * float64 state, denoiser input/output in float32, the sampler's scratch), starts from
 * x = sigma_0 z (docs/algorithms.md §S0.1) and runs the sampler's step function once per grid interval,
 * checking the abort callback before and reporting progress after each step. The caller's x is
 * written only on success. Statistics: NFE counts batched denoiser calls (one per image), time
 * is wall-clock in total and inside the denoiser. AFS (params.afs) lives in sampler_run_denoise, so
 * it applies to every sampler's first evaluation and its NFE saving to every count here.
 * params.trajectory, when set, sees the float64 state after every step (AMED's teacher capture,
 * distill/amed_train.c); sampler_run_denoise_each is the per-image-sigma call AMED needs.
 */
#include "core/arena.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/util.h"
#include "samplers/sampler_impl.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_STEPS 1000000

static const sampler_impl *const impls[] = {
    [PD_SAMPLER_EULER] = &sampler_euler_impl,
    [PD_SAMPLER_HEUN] = &sampler_heun_impl,
    [PD_SAMPLER_DDIM] = &sampler_ddim_impl,
    [PD_SAMPLER_DPMPP_2M] = &sampler_dpmpp_2m_impl,
    [PD_SAMPLER_DPMPP_3M] = &sampler_dpmpp_3m_impl,
    [PD_SAMPLER_IPNDM] = &sampler_ipndm_impl,
    [PD_SAMPLER_DPM2] = &sampler_dpm2_impl,
    [PD_SAMPLER_UNIPC] = &sampler_unipc_impl,
    [PD_SAMPLER_AMED] = &sampler_amed_impl,
    [PD_SAMPLER_AMED_PLUGIN] = &sampler_amed_plugin_impl,
};
_Static_assert(sizeof impls / sizeof impls[0] == PD_SAMPLER_COUNT, "sampler vtable table");

const sampler_impl *sampler_impl_get(pd_sampler_kind k) {
    return (unsigned)k < PD_SAMPLER_COUNT ? impls[k] : NULL;
}

pd_grid_kind pd_sampler_default_grid(pd_sampler_kind k) {
    const sampler_impl *impl = sampler_impl_get(k);
    return impl ? impl->default_grid : PD_GRID_KARRAS;
}

pd_sample_params pd_sample_default_params(void) {
    pd_sample_params p;
    memset(&p, 0, sizeof p);
    p.sampler = PD_SAMPLER_HEUN;           /* EDM Alg. 1, the CLI default */
    p.sched = pd_schedule_default_params();
    p.sched.sigma_min = 0;                 /* 0: the denoiser's range (resolved by pd_sample) */
    p.sched.sigma_max = 0;
    p.steps = 18;                          /* EDM's CIFAR-10 setting, NFE 35 (docs/algorithms.md §S2.2) */
    p.nfe = 0;
    /* The sampler options' defaults come from their table (samplers/options.c). */
    int n_opts;
    const pd_sampler_option *opts = pd_sampler_options(&n_opts);
    for (int i = 0; i < n_opts; i++) pd_sampler_option_set(&p, &opts[i], opts[i].def);
    p.afs = 0;
    return p;
}

int sampler_impl_nfe_for_steps(const sampler_impl *impl, const pd_sample_params *p, int steps) {
    /* AFS replaces exactly one evaluation: the first of step 0, which every sampler makes. */
    return impl->nfe_for_steps(p, steps) - (p->afs ? 1 : 0);
}

int pd_sampler_nfe_for_steps(const pd_sample_params *p, int steps) {
    const sampler_impl *impl = p ? sampler_impl_get(p->sampler) : NULL;
    if (!impl || steps < 1) return -1;
    return sampler_impl_nfe_for_steps(impl, p, steps);
}

int sampler_impl_steps_for_nfe(const sampler_impl *impl, const pd_sample_params *p, int nfe) {
    /* Every sampler spends at least one evaluation per step, less the one AFS saves, so
     * steps <= nfe + 1; NFE is non-decreasing in steps, so the scan stops at the first step
     * count over budget. */
    int best = -1;
    for (int s = 1; s <= nfe + 1 && s <= MAX_STEPS; s++) {
        if (sampler_impl_nfe_for_steps(impl, p, s) > nfe) break;
        best = s;
    }
    return best;
}

int pd_sampler_steps_for_nfe(const pd_sample_params *p, int nfe) {
    const sampler_impl *impl = p ? sampler_impl_get(p->sampler) : NULL;
    if (!impl) return -1;
    return sampler_impl_steps_for_nfe(impl, p, nfe);
}

/* ------------------------------------------------------------------ run helpers */

int sampler_run_denoise_features(sampler_run *r, const double *x, double sigma, int step,
                                 float *features) {
    size_t total = r->total;
    if (r->afs_pending) {
        /* AFS (docs/algorithms.md §S4.3): at sigma_max, x ~ sigma z, so x/sqrt(1 + sigma^2) is the
         * epsilon estimate and D = x - sigma x/sqrt(1 + sigma^2) = x/(q (q + sigma)) with
         * q = sqrt(1 + sigma^2), the second form free of cancellation at large sigma. */
        r->afs_pending = 0;
        r->last_afs = 1;
        double q = sqrt(1.0 + sigma * sigma), f = 1.0 / (q * (q + sigma));
        float *den = r->den;
        #pragma omp parallel for schedule(static) if (total > 32768)
        for (size_t j = 0; j < total; j++) den[j] = (float)(f * x[j]);
        return 0;
    }
    r->last_afs = 0;
    float *xin = r->xin;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) xin[j] = (float)x[j];
    for (int b = 0; b < r->n; b++) r->sig[b] = (float)sigma;
    double t0 = core_now();
    int rc = pd_denoiser_eval_features(r->d, r->den, r->xin, r->sig, r->labels, r->n, features,
                                       r->err);
    r->seconds_denoiser += core_now() - t0;
    r->nfe++;
    if (rc) {
        char msg[sizeof r->err->msg];
        memcpy(msg, r->err->msg, sizeof msg);
        msg[sizeof msg - 1] = '\0';
        return pd_fail(r->err, "%s step %d/%d (sigma %.6g): %s", pd_sampler_name(r->p->sampler),
                       step + 1, r->steps, sigma, msg);
    }
    return 0;
}

int sampler_run_denoise(sampler_run *r, const double *x, double sigma, int step) {
    return sampler_run_denoise_features(r, x, sigma, step, NULL);
}

int sampler_run_denoise_each(sampler_run *r, const double *x, const double *sigma, int step) {
    size_t total = r->total, dim = r->dim;
    int n = r->n;
    if (r->afs_pending) {
        /* AFS as in sampler_run_denoise, with each image's own sigma. */
        r->afs_pending = 0;
        r->last_afs = 1;
        float *den = r->den;
        for (int b = 0; b < n; b++) {
            double q = sqrt(1.0 + sigma[b] * sigma[b]), f = 1.0 / (q * (q + sigma[b]));
            for (size_t j = (size_t)b * dim; j < (size_t)(b + 1) * dim; j++) den[j] = (float)(f * x[j]);
        }
        return 0;
    }
    r->last_afs = 0;
    float *xin = r->xin;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) xin[j] = (float)x[j];
    for (int b = 0; b < n; b++) r->sig[b] = (float)sigma[b];
    double t0 = core_now();
    int rc = pd_denoiser_eval(r->d, r->den, r->xin, r->sig, r->labels, n, r->err);
    r->seconds_denoiser += core_now() - t0;
    r->nfe++;
    if (rc) {
        char msg[sizeof r->err->msg];
        memcpy(msg, r->err->msg, sizeof msg);
        msg[sizeof msg - 1] = '\0';
        return pd_fail(r->err, "%s step %d/%d (per-image sigma, first %.6g): %s",
                       pd_sampler_name(r->p->sampler), step + 1, r->steps, sigma[0], msg);
    }
    return 0;
}

void sampler_run_noise(sampler_run *r, int step, double *eps) {
    /* One image at a time: rng_randn_double parallelises inside for large images. */
    for (int b = 0; b < r->n; b++)
        rng_randn_double(eps + (size_t)b * r->dim, r->dim, r->seeds[b], (uint64_t)step + 1);
}

void sampler_euler_update(double *x, const float *den, double s0, double s1, size_t total) {
    if (s1 == 0.0) {
        #pragma omp parallel for schedule(static) if (total > 32768)
        for (size_t j = 0; j < total; j++) x[j] = den[j];
        return;
    }
    double h = s1 - s0;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        double d = (x[j] - den[j]) / s0;
        x[j] = x[j] + h * d;
    }
}

/* ------------------------------------------------------------------ pd_sample */

/* pd_sample's one arena (core/arena.h): grid, state, work buffers, denoiser I/O, per-image
 * sigma. The grid is the arena's first piece, so it is also the allocation. */
typedef struct {
    sampler_run *r;
    double *grid;
    int n_work;
} run_arena;

static void run_layout(void *ctx, ar_arena *a) {
    run_arena *ra = ctx;
    sampler_run *r = ra->r;
    r->sigmas = ra->grid = ar_take(a, sizeof(double) * ((size_t)r->steps + 1));
    r->x = ar_take(a, sizeof(double) * r->total);
    for (int k = 0; k < ra->n_work; k++) r->work[k] = ar_take(a, sizeof(double) * r->total);
    r->xin = ar_take(a, sizeof(float) * r->total);
    r->den = ar_take(a, sizeof(float) * r->total);
    r->sig = ar_take(a, sizeof(float) * (size_t)r->n);
}

/* Each option the sampler reads is in its table's range, or holds its default (samplers/options.c). */
static int check_params(const pd_sample_params *q, pd_error *err) {
    const char *name = pd_sampler_name(q->sampler);
    if (q->afs != 0 && q->afs != 1) return pd_fail(err, "%s: afs must be 0 or 1, got %d", name, q->afs);
    int n_opts;
    const pd_sampler_option *opts = pd_sampler_options(&n_opts);
    for (int i = 0; i < n_opts; i++) {
        const pd_sampler_option *o = &opts[i];
        double v = pd_sampler_option_get(q, o);
        char msg[120];
        if ((o->samplers & (1u << q->sampler)) && v != o->def && pd_sampler_option_check(o, v, msg, sizeof msg))
            return pd_fail(err, "%s: %s: %s", name, o->field, msg);
    }
    return 0;
}

int pd_sample(pd_denoiser *d, const pd_sample_params *p, float *x, const float *labels,
              const uint64_t *seeds, int n, pd_sample_stats *stats, pd_error *err) {
    double t_start = core_now();
    if (!d || !p || !x) return pd_fail(err, "pd_sample: NULL argument");
    if (n < 1) return pd_fail(err, "pd_sample: batch size %d < 1", n);
    if (d->C < 1 || d->H < 1 || d->W < 1)
        return pd_fail(err, "pd_sample: denoiser '%s' has no image shape (%dx%dx%d)", d->desc, d->C,
                       d->H, d->W);
    const sampler_impl *impl = sampler_impl_get(p->sampler);
    if (!impl) return pd_fail(err, "pd_sample: unknown sampler kind %d", (int)p->sampler);
    const char *name = pd_sampler_name(p->sampler);

    pd_sample_params q = *p;
    if (q.sched.sigma_min <= 0) q.sched.sigma_min = d->sigma_min;
    if (q.sched.sigma_max <= 0) q.sched.sigma_max = d->sigma_max;
    if (q.sched.shift != PD_SHIFT_NONE && q.sched.shift_res <= 0) q.sched.shift_res = d->H;
    if (q.steps < 0) return pd_fail(err, "%s: steps must be >= 0, got %d", name, q.steps);
    if (q.steps == 0) {
        if (q.nfe <= 0)
            return pd_fail(err, "%s: give steps or an NFE budget (both are 0)", name);
        q.steps = sampler_impl_steps_for_nfe(impl, &q, q.nfe);
        if (q.steps < 1)
            return pd_fail(err, "%s: an NFE budget of %d fits no step (one step costs %d)", name,
                           q.nfe, sampler_impl_nfe_for_steps(impl, &q, 1));
    }
    if (q.steps > MAX_STEPS) return pd_fail(err, "%s: %d steps is too many", name, q.steps);
    if (check_params(&q, err)) return -1;
    int noisy = impl->uses_noise && impl->uses_noise(&q);
    if (noisy && !seeds)
        return pd_fail(err, "%s: this run draws noise (eta or s_churn > 0) and needs per-image seeds",
                       name);
    if (impl->n_work > SAMPLER_RUN_MAX_WORK) return pd_fail(err, "%s: too many work buffers", name);

    size_t dim = (size_t)d->C * d->H * d->W, total = dim * (size_t)n;
    if (total / (size_t)n != dim || total > SIZE_MAX / 64)
        return pd_fail(err, "%s: batch of %d images of %zu values is too large", name, n, dim);

    sampler_run r;
    memset(&r, 0, sizeof r);
    r.d = d;
    r.p = &q;
    r.steps = q.steps;
    r.n = n;
    r.dim = dim;
    r.total = total;
    r.labels = labels;
    r.seeds = seeds;
    r.err = err;
    r.afs_pending = q.afs;
    run_arena ra = {&r, NULL, impl->n_work};
    size_t bytes;
    double *arena = ar_build(run_layout, &ra, &bytes);
    if (!arena) return pd_fail(err, "%s: out of memory (%zu bytes for a batch of %d)", name, bytes, n);
    double *sigmas = ra.grid;

    int rc = pd_sigma_grid(sigmas, q.steps, &q.sched, err);
    if (rc) {
        core_free(arena);
        return -1;
    }
    double s0 = sigmas[0];
    double *xs = r.x;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) xs[j] = s0 * (double)x[j];

    rc = impl->begin ? impl->begin(&r) : 0;
    pd_progress pr;
    pg_init(&pr, "sample", "steps");
    pr.total = pr.steps = q.steps;
    pr.images = n;
    pr.batch = pr.batches = 1;
    if (rc == 0) {
        for (int i = 0; i < q.steps; i++) {
            if (q.abort && q.abort(q.user)) {
                rc = pd_fail(err, "%s: aborted before step %d of %d", name, i + 1, q.steps);
                break;
            }
            rc = impl->step(&r, i);
            if (rc) break;
            if (q.progress) {
                pr.done = pr.step = i + 1;
                pr.images_done = i + 1 == q.steps ? n : 0;
                pg_time(&pr, t_start);
                q.progress(q.user, &pr);
            }
            if (q.trajectory) q.trajectory(q.user, i + 1, r.x, n, dim);
        }
        if (impl->end) impl->end(&r);
    }
    if (rc == 0) {
        #pragma omp parallel for schedule(static) if (total > 32768)
        for (size_t j = 0; j < total; j++) x[j] = (float)xs[j];
        if (stats) {
            stats->steps = q.steps;
            stats->nfe = r.nfe;
            stats->seconds_total = core_now() - t_start;
            stats->seconds_denoiser = r.seconds_denoiser;
        }
    }
    core_free(arena);
    return rc;
}
