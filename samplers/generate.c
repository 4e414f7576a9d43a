/* generate.c — n images from seeds and classes (contract in pixdiff.h, pd_generate): the batching
 * loop of `pixdiff sample` and `pixdiff eval`, for embedding programs and the CLI alike.
 *
 * Image i of a request (0-based, over the whole request) starts from its own noise, pd_randn(seed_i,
 * stream 0) or row i of the caller's noise, asks for class_i, and uses seed_i for every per-step
 * noise of a stochastic sampler (pd_sample's seeds[]), so its result depends only on (seed_i,
 * class_i, the settings): not on the batch size, the thread count, its neighbours, or which
 * (first, count) range it was generated in (EDM's StackedRandomGenerator; DESIGN.md convention 7).
 * A range lets processes split one request (image i always lands in the same place). Classifier-
 * free guidance wraps the denoiser for the call (samplers/cfg.c). A one-step generator
 * (pd_generator_generate) runs the same loop with its one evaluation in place of the sampler.
 * Buffers are allocated once per call, before the first batch.
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

/* What makes one batch: a sampler on a denoiser, or a one-step generator. */
typedef struct {
    pd_denoiser *den;         /* the sampler's denoiser (guided when asked), or NULL */
    pd_generator *gen;        /* or the generator */
    int C, H, W, label_dim;
} gen_source;

/* One batch of nb images from their noise in x: pd_sample with the step callbacks, or the
 * generator's one evaluation (abort checked before it, progress after it, as for one step). */
static int run_batch(const gen_source *src, const pd_sample_params *sp, gen_state *g, float *x,
                     const float *labels, const uint64_t *seeds, int nb, pd_sample_stats *st,
                     pd_error *err) {
    if (src->den) return pd_sample(src->den, sp, x, labels, seeds, nb, st, err);
    double t0 = core_now();
    if (abort_cb(g)) return pd_fail(err, "generator: aborted before its one step");
    if (pd_generator_run(src->gen, x, labels, nb, err)) return -1;
    double t = core_now() - t0;
    pd_progress one;          /* as pd_sample reports its last step */
    pg_init(&one, "sample", "steps");
    one.done = one.total = one.step = one.steps = one.batch = one.batches = 1;
    one.images_done = one.images = nb;
    step_cb(g, &one);
    st->steps = st->nfe = 1;
    st->seconds_total = st->seconds_denoiser = t;
    return 0;
}

static int generate(const gen_source *src, const pd_generate_params *p, long long first, int count,
                    float *out, pd_sample_stats *stats, pd_error *err) {
    const int L = src->label_dim;
    for (int k = 0; k < count; k++) {
        int c = pd_generate_class(p, first + k);
        if (c >= 0 && c >= L)
            return pd_fail(err, "generate: image %lld asks for class %d; the model has %d classes",
                           first + k, c, L);
    }
    const int batch = p->batch > 0 ? (p->batch < count ? p->batch : count) : (count < 16 ? count : 16);
    const size_t chw = (size_t)src->C * src->H * src->W;

    float *xbuf = out ? NULL : malloc(sizeof(float) * chw * (size_t)batch);
    float *labels = L > 0 ? calloc((size_t)batch * (size_t)L, sizeof(float)) : NULL;
    uint64_t *seeds = malloc(sizeof(uint64_t) * (size_t)batch);
    int rc = 0;
    if ((!out && !xbuf) || (L > 0 && !labels) || !seeds) {
        rc = pd_fail(err, "generate: out of memory for a batch of %d images", batch);
        goto done;
    }

    gen_state g = {p, {0}, core_now(), 0};
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
        if (run_batch(src, &sp, &g, x, labels, seeds, nb, &st, err)) {
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
    return rc;
}

/* The checks every request gets; 1 when there is nothing to do. */
static int check_request(const void *src, const pd_generate_params *p, long long first, int count,
                         float *out, pd_sample_stats *stats, pd_error *err) {
    if (stats) memset(stats, 0, sizeof *stats);
    if (!src || !p) return pd_fail(err, "generate: NULL model or parameters");
    if (first < 0 || count < 0)
        return pd_fail(err, "generate: bad image range (first %lld, count %d)", first, count);
    if (!out && !p->images) return pd_fail(err, "generate: no output buffer and no images callback");
    return count == 0;
}

int pd_generate(pd_denoiser *d, const pd_generate_params *p, long long first, int count, float *out,
                pd_sample_stats *stats, pd_error *err) {
    int rc = check_request(d, p, first, count, out, stats, err);
    if (rc) return rc < 0 ? -1 : 0;
    gen_source src = {d, NULL, d->C, d->H, d->W, d->label_dim};
    pd_denoiser *guided = NULL;
    if (p->use_guidance) {
        if (pd_denoiser_cfg(&guided, d, p->guidance, err)) return -1;
        src.den = guided;
    }
    rc = generate(&src, p, first, count, out, stats, err);
    pd_denoiser_free(guided);
    return rc;
}

int pd_generator_generate(pd_generator *g, const pd_generate_params *p, long long first, int count,
                          float *out, pd_sample_stats *stats, pd_error *err) {
    int rc = check_request(g, p, first, count, out, stats, err);
    if (rc) return rc < 0 ? -1 : 0;
    if (p->use_guidance)
        return pd_fail(err, "classifier-free guidance: '%s' is a one-step generator, not a denoiser; "
                       "guidance does not apply", g->desc);
    gen_source src = {NULL, g, g->C, g->H, g->W, g->label_dim};
    return generate(&src, p, first, count, out, stats, err);
}
