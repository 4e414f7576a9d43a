/* test_denoiser_seams.c — the denoiser is D(x; sigma, label) and nothing else (pixdiff.h,
 * "denoisers" and "one-step generators"):
 *   - a one-step generator is its own object: pd_denoiser_from_model refuses a generator model
 *     (so no sampler, AMED, upsample guidance or CFG can be stacked on it) and
 *     pd_generator_from_model a denoiser model; G(z) == D(sigma_init z; sigma_init) of a denoiser
 *     with the same weights, bit for bit, through pd_generator_generate (NFE 1), also with
 *     Skip-Tuning on both; guidance on a generator fails naming it;
 *   - AMED's feature tap comes back through the evaluation call: classifier-free guidance passes
 *     the conditional branch's through (AMED with a predictor on CFG w = 1 == AMED on the bare
 *     conditional denoiser, bit for bit), upsample guidance refuses it naming itself (AMED with a
 *     predictor fails, without one it runs), and AMED runs on a Skip-Tuned network (the tap is
 *     the encoder's, which the skip scales leave alone; the images change);
 *   - two threads, each with its own denoiser stack (network + CFG) on ONE shared model, running
 *     AMED with the tap at once, give the single-thread images bit for bit.
 * Small random-weight models (the "tiny" preset, 16x16 with an 8x8 level) keep it fast. */
#include "pixdiff.h"
#include "ref_sampling.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 4, L = 4 };

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static pd_model *make_model(const char *kind, uint64_t seed) {
    pd_error err = {{0}};
    pd_unet_config c;
    pd_model *m = NULL;
    if (pd_unet_config_preset(&c, "tiny", &err)) return printf("preset: %s\n", err.msg), NULL;
    c.label_dim = L;
    snprintf(c.kind, sizeof c.kind, "%s", kind);
    c.sigma_init = 2.5;
    if (pd_model_create(&m, &c, seed, &err)) return printf("model: %s\n", err.msg), NULL;
    return m;
}

static void one_hot(float *lab, const int *cls, int n) {
    memset(lab, 0, sizeof(float) * (size_t)n * L);
    for (int b = 0; b < n; b++) lab[b * L + cls[b]] = 1;
}

/* ------------------------------------------------------------------ 1. generators */

static void test_generator(void) {
    pd_error err = {{0}};
    pd_model *mg = make_model("generator", 5), *md = make_model("denoiser", 5);
    if (!mg || !md) {
        tu_check(0, "models");
        return;
    }
    pd_denoiser *d = NULL, *dn = NULL;
    pd_generator *g = NULL, *gn = NULL;
    tu_check(pd_denoiser_from_model(&dn, mg, 0, &err) != 0 && !dn &&
                 strstr(err.msg, "one-step generator"),
             "pd_denoiser_from_model refuses a generator model: %s", err.msg);
    tu_check(pd_generator_from_model(&gn, md, 0, &err) != 0 && !gn &&
                 strstr(err.msg, "not a one-step generator"),
             "pd_generator_from_model refuses a denoiser model: %s", err.msg);
    if (pd_generator_from_model(&g, mg, 0, &err) || pd_denoiser_from_model(&d, md, 0, &err)) {
        tu_check(0, "open: %s", err.msg);
        return;
    }
    err.msg[0] = 0;
    tu_check(g->sigma_init == 2.5 && g->C == d->C && g->H == d->H && g->label_dim == L,
             "generator: sigma_init %g, %dx%dx%d, %d classes", g->sigma_init, g->C, g->H, g->W,
             g->label_dim);
    const size_t chw = (size_t)d->C * d->H * d->W;
    float *x = malloc(sizeof(float) * N * chw), *y = malloc(sizeof(float) * N * chw);
    float *xt = malloc(sizeof(float) * N * chw), lab[N * L], sig[N];
    int cls[N] = {0, 3, 1, 2};
    one_hot(lab, cls, N);
    /* the twin: D(2.5 z; 2.5, label) of the denoiser with the generator's weights */
    for (int b = 0; b < N; b++) {
        pd_randn(y + b * chw, chw, 70 + (uint64_t)b, 0);
        sig[b] = 2.5f;
    }
    for (size_t j = 0; j < N * chw; j++) xt[j] = 2.5f * y[j];
    pd_generate_params p = pd_generate_default_params();
    p.seed = 70;
    p.classes = cls;
    p.batch = 3; /* two batches: the loop is the same as the samplers' */
    pd_sample_stats st = {0};
    int rc = pd_generator_generate(g, &p, 0, N, x, &st, &err) ||
             pd_denoiser_eval(d, y, xt, sig, lab, N, &err);
    tu_check(rc == 0 && st.nfe == 1 && st.steps == 1 && same(x, y, N * chw),
             "G(z) == D(2.5 z; 2.5) bit for bit, NFE %d, steps %d (%s)", st.nfe, st.steps, err.msg);
    /* Skip-Tuning applies to a generator (it is a change inside the network) */
    pd_skip_tuning sk = pd_skip_tuning_default();
    sk.rho_bottom = 0.7;
    float *xs = malloc(sizeof(float) * N * chw);
    rc = pd_generator_set_skip_tuning(g, &sk, &err) || pd_denoiser_set_skip_tuning(d, &sk, &err) ||
         pd_generator_generate(g, &p, 0, N, xs, NULL, &err) ||
         pd_denoiser_eval(d, y, xt, sig, lab, N, &err);
    tu_check(rc == 0 && same(xs, y, N * chw) && !same(xs, x, N * chw),
             "Skip-Tuning on the generator == on its twin denoiser, and changes the images (%s)",
             err.msg);
    p.use_guidance = 1;
    p.guidance = 2;
    tu_check(pd_generator_generate(g, &p, 0, N, xs, NULL, &err) != 0 &&
                 strstr(err.msg, "classifier-free guidance") && strstr(err.msg, "one-step generator"),
             "guidance on a generator fails naming both: %s", err.msg);
    free(x), free(y), free(xt), free(xs);
    pd_generator_free(g);
    pd_denoiser_free(d);
    pd_model_free(mg);
    pd_model_free(md);
}

/* ------------------------------------------------------------------ 2. AMED through wrappers */

static pd_amed_predictor *predictor(void) {
    pd_error err = {{0}};
    pd_amed_info in = rs_amed_info(PD_AMED_SOLVER, 0.3, 0.2);
    pd_amed_predictor *pr = NULL;
    if (pd_amed_predictor_create(&pr, &in, 9, 0, &err)) printf("predictor: %s\n", err.msg);
    return pr;
}

/* AMED (with pred, or neutral) on d from the noise of seeds s0.. into x. */
static int amed_run(pd_denoiser *d, const pd_amed_predictor *pred, const float *lab, uint64_t s0,
                    float *x, pd_error *err) {
    pd_sample_params p = pd_sample_default_params();
    if (pred) pd_amed_sample_params(pred, &p);
    else p.sampler = PD_SAMPLER_AMED, p.steps = 3;
    const size_t chw = (size_t)d->C * d->H * d->W;
    for (int b = 0; b < N; b++) pd_randn(x + b * chw, chw, s0 + (uint64_t)b, 0);
    return pd_sample(d, &p, x, lab, NULL, N, NULL, err);
}

static void test_amed_wrappers(pd_model *m) {
    pd_error err = {{0}};
    pd_amed_predictor *pred = predictor();
    pd_denoiser *d = NULL, *d2 = NULL, *cfg = NULL, *hi = NULL, *lo = NULL, *ug = NULL;
    if (!pred || pd_denoiser_from_model(&d, m, 0, &err) || pd_denoiser_from_model(&d2, m, 0, &err) ||
        pd_denoiser_cfg(&cfg, d2, 1.0, &err)) {
        tu_check(0, "open: %s", err.msg);
        return;
    }
    const size_t chw = (size_t)d->C * d->H * d->W;
    float *xa = malloc(sizeof(float) * N * chw), *xb = malloc(sizeof(float) * N * chw);
    float lab[N * L];
    int cls[N] = {2, 0, 3, 1};
    one_hot(lab, cls, N);
    tu_check(d->feature_dim == 64 && cfg->feature_dim == 64, "feature_dim: network %d, CFG %d",
             d->feature_dim, cfg->feature_dim);

    /* the tap through CFG (any w) is the conditional branch's */
    float *xin = malloc(sizeof(float) * N * chw), *o1 = malloc(sizeof(float) * N * chw);
    float *o2 = malloc(sizeof(float) * N * chw), f1[N * 64], f2[N * 64], sig[N] = {0.3f, 2, 9, 40};
    for (int b = 0; b < N; b++) pd_randn(xin + b * chw, chw, 90 + (uint64_t)b, 0);
    pd_denoiser *cfg3 = NULL;
    int rc = pd_denoiser_cfg(&cfg3, d2, 3.0, &err) ||
             pd_denoiser_eval_features(d, o1, xin, sig, lab, N, f1, &err) ||
             pd_denoiser_eval_features(cfg3, o2, xin, sig, lab, N, f2, &err);
    tu_check(rc == 0 && same(f1, f2, N * 64) && !same(o1, o2, N * chw),
             "CFG w = 3: the tap is the conditional branch's, bitwise (the output is guided) (%s)",
             err.msg);
    pd_denoiser_free(cfg3);

    rc = amed_run(d, pred, lab, 300, xa, &err) || amed_run(cfg, pred, lab, 300, xb, &err);
    tu_check(rc == 0 && same(xa, xb, N * chw),
             "AMED with a predictor through CFG w = 1 == on the bare denoiser, bit for bit (%s)", err.msg);

    /* upsample guidance refuses the tap, naming itself */
    if (pd_denoiser_from_model(&hi, m, 2 * d->H, &err) || pd_denoiser_from_model(&lo, m, 0, &err) ||
        pd_denoiser_upsample_guidance(&ug, hi, lo, 2, 1.0, 0.6, &err)) {
        tu_check(0, "upsample guidance: %s", err.msg);
        return;
    }
    float *xu = malloc(sizeof(float) * N * 4 * chw), *ou = malloc(sizeof(float) * N * 4 * chw);
    float fu[N * 256];
    for (int b = 0; b < N; b++) pd_randn(xu + b * 4 * chw, 4 * chw, 50 + (uint64_t)b, 0);
    tu_check(pd_denoiser_eval_features(ug, ou, xu, sig, lab, N, fu, &err) != 0 &&
                 strstr(err.msg, "upsample guidance") && strstr(err.msg, "feature tap"),
             "upsample guidance refuses the feature tap: %s", err.msg);
    tu_check(amed_run(ug, pred, lab, 300, xu, &err) != 0 && strstr(err.msg, "upsample guidance"),
             "AMED with a predictor through upsample guidance fails naming it: %s", err.msg);
    err.msg[0] = 0;
    tu_check(amed_run(ug, NULL, lab, 300, xu, &err) == 0,
             "AMED without a predictor (no tap read) runs through upsample guidance (%s)", err.msg);

    /* Skip-Tuning is inside the network: the tap sees it */
    pd_skip_tuning sk = pd_skip_tuning_default();
    sk.rho_bottom = 0.6;
    float f3[N * 64];
    err.msg[0] = 0;
    rc = pd_denoiser_set_skip_tuning(d, &sk, &err) ||
         pd_denoiser_eval_features(d, o2, xin, sig, lab, N, f3, &err) ||
         amed_run(d, pred, lab, 300, xb, &err);
    tu_check(rc == 0 && same(f1, f3, N * 64) && !same(xa, xb, N * chw),
             "AMED with Skip-Tuning runs: the tap (encoder side) is the untuned one, the images "
             "(decoder side) differ (%s)", err.msg);
    free(xa), free(xb), free(xin), free(o1), free(o2), free(xu), free(ou);
    pd_denoiser_free(ug), pd_denoiser_free(hi), pd_denoiser_free(lo);
    pd_denoiser_free(cfg), pd_denoiser_free(d2), pd_denoiser_free(d);
    pd_amed_predictor_free(pred);
}

/* ------------------------------------------------------------------ 3. two threads */

typedef struct {
    pd_model *m;
    const pd_amed_predictor *pred;
    const float *lab;
    uint64_t s0;
    float *x, *feat;
    int rc;
} job;

/* One thread's whole stack on the shared model: network + CFG, AMED with the tap, then one
 * evaluation with the tap. */
static void *run_job(void *arg) {
    job *j = arg;
    pd_error err = {{0}};
    pd_denoiser *d = NULL, *c = NULL;
    j->rc = pd_denoiser_from_model(&d, j->m, 0, &err) || pd_denoiser_cfg(&c, d, 1.5, &err);
    if (!j->rc) j->rc = amed_run(c, j->pred, j->lab, j->s0, j->x, &err);
    if (!j->rc) {
        const size_t chw = (size_t)d->C * d->H * d->W;
        float *o = malloc(sizeof(float) * N * chw), sig[N] = {0.5f, 1, 5, 20};
        j->rc = pd_denoiser_eval_features(c, o, j->x, sig, j->lab, N, j->feat, &err);
        free(o);
    }
    if (j->rc) printf("  thread: %s\n", err.msg);
    pd_denoiser_free(c);
    pd_denoiser_free(d);
    return NULL;
}

static void test_threads(pd_model *m) {
    pd_amed_predictor *pred = predictor();
    const pd_unet_config *c = pd_model_config(m);
    const size_t chw = (size_t)c->in_channels * c->img_resolution * c->img_resolution;
    float lab[N * L];
    int cls[N] = {1, 1, 0, 3};
    one_hot(lab, cls, N);
    job ref[2], par[2];
    for (int t = 0; t < 2; t++) {
        ref[t] = (job){m, pred, lab, 1000 + 10 * (uint64_t)t, malloc(sizeof(float) * N * chw),
                       malloc(sizeof(float) * N * 64), -1};
        par[t] = ref[t];
        par[t].x = malloc(sizeof(float) * N * chw);
        par[t].feat = malloc(sizeof(float) * N * 64);
        run_job(&ref[t]); /* one after the other */
    }
    pthread_t th[2];
    for (int t = 0; t < 2; t++) pthread_create(&th[t], NULL, run_job, &par[t]);
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    int ok = 1;
    for (int t = 0; t < 2; t++)
        ok &= ref[t].rc == 0 && par[t].rc == 0 && same(ref[t].x, par[t].x, N * chw) &&
              same(ref[t].feat, par[t].feat, N * 64);
    tu_check(ok && !same(ref[0].x, ref[1].x, N * chw),
             "two threads (own network + CFG on one shared model, AMED with the tap) == one after "
             "the other, images and taps bit for bit");
    for (int t = 0; t < 2; t++) free(ref[t].x), free(ref[t].feat), free(par[t].x), free(par[t].feat);
    pd_amed_predictor_free(pred);
}

int main(void) {
    pd_set_threads(2);
    test_generator();
    pd_model *m = make_model("denoiser", 11);
    if (!m) return 1;
    test_amed_wrappers(m);
    test_threads(m);
    pd_model_free(m);
    return tu_finish();
}
