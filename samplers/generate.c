/* generate.c — n images from seeds and classes (contract in pixdiff.h, pd_generate): the batching
 * loop of `pixdiff sample` and `pixdiff eval`, for embedding programs and the CLI alike.
 *
 * Image i of a request (0-based, over the whole request) starts from its own noise, pd_randn(seed_i,
 * stream 0) or row i of the caller's noise, asks for class_i, and uses seed_i for every per-step
 * noise of a stochastic sampler (pd_sample's seeds[]), so its result depends only on (seed_i,
 * class_i, the settings): not on the batch size, the thread count, its neighbours, or which
 * (first, count) range it was generated in (EDM's StackedRandomGenerator; DESIGN.md convention 7).
 * A range lets processes split one request (image i always lands in the same place). Classifier-
 * free guidance wraps the denoiser for the call (samplers/cfg.c). Buffers are allocated once per
 * call, before the first batch.
 */
#include "core/progress.h"
#include "core/util.h"
#include "pixdiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pd_generate_params pd_generate_default_params(void) {
    pd_generate_params p;
    memset(&p, 0, sizeof p);
    p.sample = pd_sample_default_params();
    p.class_all = -1;
    p.batch = 16;
    p.guidance = 1.0;
    return p;
}

uint64_t pd_generate_seed(const pd_generate_params *p, long long i) {
    return p->seeds ? p->seeds[i] : p->seed + (uint64_t)i;
}

int pd_generate_class(const pd_generate_params *p, long long i) {
    return p->classes ? p->classes[i] : p->class_all;
}

/* pd_sample's per-step callbacks, turned into the one pd_progress shape. */
typedef struct {
    const pd_generate_params *p;
    pd_progress pr;
    double t0;
    long long k0;             /* images of the call before the running batch */
} gen_state;

static void step_cb(void *user, const pd_progress *sp) {
    gen_state *g = user;
    if (!g->p->progress) return;
    g->pr.step = sp->step;
    g->pr.images_done = g->k0 + sp->images_done;
    g->pr.steps = sp->steps;
    g->pr.total = (long long)g->pr.batches * sp->steps;
    g->pr.done = (long long)(g->pr.batch - 1) * sp->steps + sp->step;
    pg_time(&g->pr, g->t0);
    g->p->progress(g->p->user, &g->pr);
}

static int abort_cb(void *user) {
    gen_state *g = user;
    return g->p->abort ? g->p->abort(g->p->user) : 0;
}

int pd_generate(pd_denoiser *d, const pd_generate_params *p, long long first, int count, float *out,
                pd_sample_stats *stats, pd_error *err) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!d || !p) return pd_fail(err, "generate: NULL denoiser or parameters");
    if (first < 0 || count < 0)
        return pd_fail(err, "generate: bad image range (first %lld, count %d)", first, count);
    if (!out && !p->images) return pd_fail(err, "generate: no output buffer and no images callback");
    if (count == 0) return 0;
    const int L = d->label_dim;
    for (int k = 0; k < count; k++) {
        int c = pd_generate_class(p, first + k);
        if (c >= 0 && c >= L)
            return pd_fail(err, "generate: image %lld asks for class %d; the model has %d classes",
                           first + k, c, L);
    }
    const int batch = p->batch > 0 ? (p->batch < count ? p->batch : count) : (count < 16 ? count : 16);
    const size_t chw = (size_t)d->C * d->H * d->W;

    pd_denoiser *den = d, *guided = NULL;
    if (p->use_guidance) {
        if (pd_denoiser_cfg(&guided, d, p->guidance, err)) return -1;
        den = guided;
    }
    float *xbuf = out ? NULL : malloc(sizeof(float) * chw * (size_t)batch);
    float *labels = L > 0 ? calloc((size_t)batch * (size_t)L, sizeof(float)) : NULL;
    uint64_t *seeds = malloc(sizeof(uint64_t) * (size_t)batch);
    int rc = 0;
    if ((!out && !xbuf) || (L > 0 && !labels) || !seeds) {
        rc = pd_fail(err, "generate: out of memory for a batch of %d images", batch);
        goto done;
    }

    gen_state g = {p, {0}, pd_now(), 0};
    pg_init(&g.pr, "generate", "steps");
    g.pr.batches = (count + batch - 1) / batch;
    g.pr.images = count;
    pd_sample_params sp = p->sample;
    sp.progress = step_cb;
    sp.abort = abort_cb;
    sp.user = &g;
    for (int b = 0; b < g.pr.batches; b++) {
        const int k0 = b * batch, nb = count - k0 < batch ? count - k0 : batch;
        float *x = out ? out + (size_t)k0 * chw : xbuf;
        for (int k = 0; k < nb; k++) {
            const long long i = first + k0 + k;
            seeds[k] = pd_generate_seed(p, i);
            if (p->noise) memcpy(x + (size_t)k * chw, p->noise + (size_t)i * chw, sizeof(float) * chw);
            else pd_randn(x + (size_t)k * chw, chw, seeds[k], 0);
            if (L > 0) {
                float *row = labels + (size_t)k * L;
                memset(row, 0, sizeof(float) * (size_t)L);
                int c = pd_generate_class(p, i);
                if (c >= 0) row[c] = 1.0f;
            }
        }
        g.pr.batch = b + 1;
        g.k0 = g.pr.images_done = k0;
        pd_sample_stats st = {0};
        if (pd_sample(den, &sp, x, labels, seeds, nb, &st, err)) {
            rc = -1;
            goto done;
        }
        if (stats) {
            stats->steps = st.steps;
            stats->nfe = st.nfe;
            stats->seconds_total += st.seconds_total;
            stats->seconds_denoiser += st.seconds_denoiser;
        }
        g.pr.images_done = k0 + nb;
        if (p->images && p->images(p->user, first + k0, nb, x, err)) {
            rc = -1;
            goto done;
        }
    }
done:
    free(xbuf);
    free(labels);
    free(seeds);
    pd_denoiser_free(guided);
    return rc;
}
