/* test_generate.c — pd_generate (samplers/generate.c) and the guidance wrapper (samplers/cfg.c):
 *   - any (first, count) split of a request, any batch size, gives the same images bit for bit
 *     as one call (what lets processes share a request);
 *   - image i uses seeds[i] / seed + i and classes[i]: image 2 of a request equals image 0 of a
 *     request whose first seed and class are image 2's;
 *   - the images callback sees every image once, in order, with out = NULL;
 *   - two threads, each with its own denoiser on ONE shared model, give the single-thread images
 *     (the header's thread-safety statement);
 *   - guidance W = 1 equals the conditional model bit for bit, W = 0 the unconditional model up to
 *     float rounding of the combination (against a double-precision twin of D_u + W (D_c - D_u)
 *     computed from two plain evaluations), and W = 2.5 matches that twin too;
 *   - the progress callback's counts reach total; an abort makes the call fail.
 * A small random-weight conditional model keeps it fast. */
#include "pixdiff.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pd_model *model;
enum { N = 7 };

static pd_generate_params params(void) {
    pd_generate_params p = pd_generate_default_params();
    p.sample.sampler = PD_SAMPLER_EULER;
    p.sample.sched.grid = PD_GRID_KARRAS;
    p.sample.steps = 3;
    p.sample.s_churn = 10; /* per-step noise: the hardest case for batch invariance */
    p.seed = 40;
    return p;
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

typedef struct { pd_denoiser *d; const pd_generate_params *p; float *x; int rc; } job;
static void *run_job(void *arg) {
    job *j = arg;
    pd_error err = {{0}};
    j->rc = pd_generate(j->d, j->p, 0, N, j->x, NULL, &err);
    return NULL;
}

typedef struct { long long next; int bad; const float *ref; size_t chw; } seen;
static int on_images(void *user, long long first, int count, const float *x, pd_error *err) {
    seen *s = user;
    if (first != s->next || !same(x, s->ref + (size_t)first * s->chw, (size_t)count * s->chw)) s->bad = 1;
    s->next = first + count;
    (void)err;
    return 0;
}

static long long last_done, last_total;
static void on_progress(void *user, const pd_progress *pr) {
    (void)user;
    last_done = pr->done, last_total = pr->total;
}
static int abort_now(void *user) { (void)user; return 1; }

int main(void) {
    pd_error err = {{0}};
    pd_unet_config cfg;
    if (pd_unet_config_preset(&cfg, "tiny", &err)) return printf("%s\n", err.msg), 1;
    cfg.label_dim = 4;
    if (pd_model_create(&model, &cfg, 3, &err)) return printf("%s\n", err.msg), 1;
    pd_denoiser *d = NULL, *d2 = NULL;
    if (pd_denoiser_from_model(&d, model, 0, &err) || pd_denoiser_from_model(&d2, model, 0, &err))
        return printf("%s\n", err.msg), 1;
    pd_set_threads(2);
    const size_t chw = (size_t)d->C * d->H * d->W;
    float *ref = malloc(sizeof(float) * N * chw), *x = malloc(sizeof(float) * N * chw);
    float *y = malloc(sizeof(float) * N * chw);
    int classes[N] = {0, 1, 2, 3, -1, 2, 1};

    pd_generate_params p = params();
    p.classes = classes;
    p.batch = N;
    tu_check(pd_generate(d, &p, 0, N, ref, NULL, &err) == 0, "one call: %s", err.msg);

    /* splits and batch sizes */
    p.batch = 2;
    tu_check(pd_generate(d, &p, 0, 3, x, NULL, &err) == 0 && pd_generate(d, &p, 3, 4, x + 3 * chw, NULL, &err) == 0,
             "split calls: %s", err.msg);
    tu_check(same(x, ref, N * chw), "ranges (0,3)+(3,4) with batch 2 = one call with batch %d", N);
    p.batch = 1;
    tu_check(pd_generate(d, &p, 0, N, x, NULL, &err) == 0 && same(x, ref, N * chw), "batch 1 = batch %d", N);

    /* image 2 alone: first seed 42, class 2 */
    pd_generate_params q = params();
    q.seed = 42;
    q.class_all = 2;
    tu_check(pd_generate(d, &q, 0, 1, x, NULL, &err) == 0 && same(x, ref + 2 * chw, chw),
             "image 2 = a request of one image with seed 42, class 2");
    uint64_t seeds[2] = {99, 44};
    q.seeds = seeds;
    q.class_all = -1;
    q.seed = 0;
    tu_check(pd_generate(d, &q, 1, 1, x, NULL, &err) == 0 && same(x, ref + 4 * chw, chw),
             "seeds[i]: image 1 of seeds {99, 44} = image 4 (seed 44, unconditional)");

    /* the images callback with out = NULL */
    seen s = {0, 0, ref, chw};
    p.batch = 3;
    p.images = on_images;
    p.user = &s;
    tu_check(pd_generate(d, &p, 0, N, NULL, NULL, &err) == 0 && !s.bad && s.next == N,
             "images callback: every image once, in order (out = NULL)");
    p.images = NULL;

    /* two threads, one shared model */
    p.batch = 4;
    job j1 = {d, &p, x, -1}, j2 = {d2, &p, y, -1};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, run_job, &j1);
    pthread_create(&t2, NULL, run_job, &j2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    tu_check(j1.rc == 0 && j2.rc == 0 && same(x, ref, N * chw) && same(y, ref, N * chw),
             "two threads sharing one model (a denoiser each) = one thread");

    /* progress and abort */
    p.progress = on_progress;
    int rc = pd_generate(d, &p, 0, N, x, NULL, &err);
    tu_check(rc == 0 && last_total == 2 * 3 && last_done == last_total,
             "progress reaches done == total (%lld of %lld: 2 batches x 3 steps)", last_done, last_total);
    p.abort = abort_now;
    tu_check(pd_generate(d, &p, 0, N, x, NULL, &err) != 0, "an abort makes pd_generate fail (%s)", err.msg);
    p.abort = NULL;
    p.progress = NULL;

    /* guidance */
    p.sample.s_churn = 0;
    p.classes = NULL;
    p.class_all = 1;
    p.batch = N;
    tu_check(pd_generate(d, &p, 0, N, ref, NULL, &err) == 0, "conditional: %s", err.msg);
    p.use_guidance = 1;
    p.guidance = 1;
    tu_check(pd_generate(d, &p, 0, N, x, NULL, &err) == 0 && same(x, ref, N * chw),
             "guidance 1 = the conditional model, bit for bit");
    /* one evaluation against the double twin */
    float *xin = malloc(sizeof(float) * N * chw), *dc = malloc(sizeof(float) * N * chw);
    float *du = malloc(sizeof(float) * N * chw), *dg = malloc(sizeof(float) * N * chw);
    float *lab = calloc((size_t)N * 4, sizeof(float)), *zero = calloc((size_t)N * 4, sizeof(float));
    float sig[N];
    double *twin = malloc(sizeof(double) * N * chw);
    tu_fill(xin, N * chw, 7, 1.5f);
    for (int i = 0; i < N; i++) sig[i] = 0.1f + 0.7f * (float)i, lab[i * 4 + 1] = 1;
    tu_check(pd_denoiser_eval(d, dc, xin, sig, lab, N, &err) == 0 &&
             pd_denoiser_eval(d, du, xin, sig, zero, N, &err) == 0, "plain evaluations");
    const double ws[3] = {0, 2.5, 1};
    for (int k = 0; k < 3; k++) {
        pd_denoiser *g = NULL;
        tu_check(pd_denoiser_cfg(&g, d, ws[k], &err) == 0, "cfg wrapper: %s", err.msg);
        if (!g) continue;
        tu_check(pd_denoiser_eval(g, dg, xin, sig, lab, N, &err) == 0, "cfg eval");
        for (size_t j = 0; j < N * chw; j++) twin[j] = (double)du[j] + ws[k] * ((double)dc[j] - (double)du[j]);
        char name[64];
        snprintf(name, sizeof name, "D_u + w (D_c - D_u), w = %g", ws[k]);
        tu_compare(name, dg, twin, N * chw, 1e-6);
        if (ws[k] == 1) tu_check(same(dg, dc, N * chw), "w = 1: exactly D_c");
        pd_denoiser_free(g);
    }
    pd_denoiser *bad = NULL;
    pd_denoiser *an = NULL;
    tu_check(pd_denoiser_analytic(&an, "analytic:gaussian:res=8:ch=1", &err) == 0 &&
             pd_denoiser_cfg(&bad, an, 2, &err) != 0, "guidance refuses an unconditional denoiser (%s)", err.msg);
    pd_denoiser_free(an);

    free(xin), free(dc), free(du), free(dg), free(lab), free(zero), free(twin);
    free(ref), free(x), free(y);
    pd_denoiser_free(d);
    pd_denoiser_free(d2);
    pd_model_free(model);
    return tu_finish();
}
