/* test_sid — SiD distillation (distill/sid*.c, docs/algorithms.md §M1) on tiny 8x8 networks:
 * the Karras sigma map of the theta step against the spec's table; the generator loss and its
 * stop-gradient weight against a naive double computation from independent U-Net calls; the
 * generator-loss gradient w.r.t. a sample of G's parameters against central finite differences
 * of the loss (w held fixed, as the stop-gradient says; dropout off), which checks all three
 * gradient paths (explicit -x_g, f_phi and f_psi w.r.t. their input); that one psi step and one
 * theta step lower their losses on a fixed batch; the NaN guard (a non-finite sample is dropped,
 * the rest of the loss is unchanged); bit-exact resume (K iterations vs K/2 + checkpoint + K/2:
 * psi, theta, theta_ema and both Adam states) also through the public pd_distill_sid; share
 * workers (1 and 2 threads, 8 and 3 shares, bit-identical state); a checkpoint from before
 * `training.shares` resumes with its own share count; export of
 * G_ema -> load -> pd_generator_generate with NFE 1 equal to D(sigma_init z; sigma_init) bit for bit
 * (and pd_denoiser_from_model refuses it: a generator is not a denoiser); the
 * warm start from a generator with its fake-score-only warm-up (what moves, resume); the
 * YAML config's strictness and the shipped config. A few seconds in all.
 */
#include "distill/sid.h"
#include "distill/sid_config.h"
#include "distill/optim.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An 8x8 gray, 3-class net: two levels, attention at 4x4. */
static pd_unet_config tiny_cfg(float dropout) {
    pd_unet_config c = pd_unet_config_default();
    static const int mult[] = {1, 2};
    c.img_resolution = 8;
    c.in_channels = c.out_channels = 1;
    c.label_dim = 3;
    c.augment_dim = 0;
    c.model_channels = 8;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    for (int i = 0; i < 2; i++) c.channel_mult[i] = mult[i];
    c.n_levels = 2;
    c.channel_mult_emb = 2;
    c.num_blocks = 1;
    memset(c.attn_resolutions, 0, sizeof c.attn_resolutions);
    c.attn_resolutions[0] = 4;
    c.n_attn = 1;
    c.dropout = dropout;
    return c;
}

/* A parsed config (so checkpoints carry its text, as in a real run). */
static sid_config test_config(int batch, double lr_psi, double lr_theta) {
    char text[512];
    snprintf(text, sizeof text,
             "optimizer:\n  lr_psi: %.17g\n  lr_theta: %.17g\nema:\n  halflife_images: 16\n"
             "training:\n  batch: %d\n  seed: 11\n", lr_psi, lr_theta, batch);
    sid_config c;
    pd_error err = {""};
    if (sid_config_parse(&c, text, "test-config", &err)) {
        tu_check(0, "test config: %s", err.msg);
        c = sid_config_default();
    }
    return c;
}

/* A distiller around a random tiny teacher (seed tseed). */
static sid_distiller *make(const sid_config *c, float dropout, uint64_t tseed) {
    pd_error err = {""};
    pd_unet_config mc = tiny_cfg(dropout);
    pd_model *t = NULL;
    sid_distiller *s = NULL;
    if (pd_model_create(&t, &mc, tseed, &err) || sid_create(&s, c, t, &err)) {
        tu_check(0, "tiny SiD distiller: %s", err.msg);
        return NULL;
    }
    return s;
}

/* f_psi made different from the teacher: at initialisation psi = phi, D_real = D_fake and the
 * generator gradient is exactly zero (nothing to test). */
static void perturb_psi(sid_distiller *s, uint64_t seed) {
    size_t n = s->n_params;
    float *u = malloc(n * sizeof(float));
    tu_fill(u, n, seed, 0.3f);
    for (size_t k = 0; k < n; k++) s->psi->params[k] *= 1.0f + u[k];
    free(u);
}

/* ------------------------------------------------------------------ karras map */

static void test_karras(void) {
    /* docs/algorithms.md §M1.4 table (3-4 significant digits). */
    const double u[] = {0, 0.1, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8};
    const double ref[] = {0.002, 0.0167, 0.0851, 0.965, 2.515, 5.84, 12.38, 24.41};
    float got[8];
    for (int i = 0; i < 8; i++) got[i] = (float)sid_karras_sigma(u[i]);
    tu_compare("Karras sigma(u) vs docs/algorithms.md §M1.4 table", got, ref, 8, 3e-3);
    tu_check(fabs(sid_karras_sigma(1.0) - 80.0) < 1e-9, "Karras sigma(1) = %.9g (80)",
             sid_karras_sigma(1.0));
}

/* ------------------------------------------------------------------ loss vs naive */

static void test_loss_reference(void) {
    sid_config c = test_config(4, 1e-3, 1e-3);
    sid_distiller *s = make(&c, 0.0f, 1);
    sid_config_free(&c);
    if (!s) return;
    perturb_psi(s, 5);
    pd_error err = {""};
    enum { B = 4 };
    sid_draw(s, 0, B, 1);
    double L;
    int rc = sid_theta_loss(s, B, NULL, NULL, NULL, &L, &err);
    tu_check(rc == 0 && isfinite(L), "theta loss of a tiny batch: %.6g (%s)", L, err.msg);
    if (rc) goto out;
    /* Independent inference runs of the three networks, then the loss in double. */
    size_t chw = s->chw;
    unet_run *rg = NULL, *rt = NULL, *rp = NULL;
    float *xg = malloc(B * chw * sizeof(float)), *xt = malloc(B * chw * sizeof(float)),
          *Dr = malloc(B * chw * sizeof(float)), *Df = malloc(B * chw * sizeof(float));
    if (unet_run_create(&rg, s->gen, B, 8, 0, &err) || unet_run_create(&rt, s->teacher, B, 8, 0, &err) ||
        unet_run_create(&rp, s->psi, B, 8, 0, &err) ||
        unet_denoise_forward(rg, xg, s->xin, s->sig_init, s->labels, B, NULL, &err)) {
        tu_check(0, "reference runs: %s", err.msg);
        goto out2;
    }
    for (int i = 0; i < B; i++)
        for (size_t k = 0; k < chw; k++)
            xt[i * chw + k] = xg[i * chw + k] + s->sigma[i] * s->noise[i * chw + k];
    if (unet_denoise_forward(rt, Dr, xt, s->sigma, s->labels, B, NULL, &err) ||
        unet_denoise_forward(rp, Df, xt, s->sigma, s->labels, B, NULL, &err)) {
        tu_check(0, "reference forwards: %s", err.msg);
        goto out2;
    }
    double ref = 0, wref[B];
    float wgot[B];
    for (int i = 0; i < B; i++) {
        double l1 = 0, acc = 0;
        for (size_t k = 0; k < chw; k++) l1 += fabs((double)xg[i * chw + k] - Dr[i * chw + k]);
        wref[i] = 1.0 / fmax(l1 / chw, 1e-5);
        wgot[i] = s->w[i];
        for (size_t k = 0; k < chw; k++) {
            double a = Dr[i * chw + k], b = Df[i * chw + k], x = xg[i * chw + k];
            acc += (a - b) * ((a - x) - c.alpha * (a - b));
        }
        ref += wref[i] * acc;
    }
    ref *= c.loss_scale_g / B;
    float got = (float)L;
    tu_compare("SiD weights w = 1/max(meanpix|x_g - D_r|, 1e-5)", wgot, wref, B, 1e-5);
    tu_compare("SiD generator loss vs naive double", &got, &ref, 1, 1e-5);
out2:
    unet_run_free(rg);
    unet_run_free(rt);
    unet_run_free(rp);
    free(xg);
    free(xt);
    free(Dr);
    free(Df);
out:
    sid_free(s);
}

/* ------------------------------------------------------------------ gradient */

/* Relative step of the central differences. The loss is a float32 network's output summed over
 * pixels, so rounding, not truncation, limits small steps: max rel err 5e-2 at 1e-2, 1.8e-2 at
 * 3e-2, 6e-3 at 1e-1 (the O(h^2) truncation is still below the rounding there). */
#define FD_H 1e-1

static void test_gradient(void) {
    sid_config c = test_config(4, 1e-3, 1e-3);
    sid_distiller *s = make(&c, 0.0f, 2);
    sid_config_free(&c);
    if (!s) return;
    perturb_psi(s, 6);
    pd_error err = {""};
    enum { B = 4, MAXP = 300 };
    sid_draw(s, 0, B, 1);
    float *grad = calloc(s->n_params, sizeof(float)), wfix[B];
    double L0;
    int rc = sid_theta_loss(s, B, NULL, NULL, grad, &L0, &err);
    tu_check(rc == 0 && isfinite(L0), "theta loss and gradient: L = %.6g (%s)", L0, err.msg);
    if (rc) goto out;
    memcpy(wfix, s->w, sizeof wfix);
    /* The finite differences are ~300 tiny evaluations: one thread avoids the OpenMP barrier
     * overhead that dominates such small work (results do not depend on the thread count). */
    int threads = pd_get_threads();
    pd_set_threads(1);
    pd_model *m = s->gen;
    float got[MAXP];
    double ref[MAXP];
    int np = 0;
    /* Three entries of every weight tensor (largest |grad| of a strided scan), as in test_train. */
    for (int ti = 0; ti < m->n_tensors && np + 3 <= MAXP; ti++) {
        const unet_tensor_info *t = &m->tensors[ti];
        if (!strstr(t->name, ".weight") || strstr(t->name, "norm")) continue;
        for (int k = 0; k < 3; k++) {
            size_t lo = t->offset + (k * t->numel) / 3, hi = t->offset + ((k + 1) * t->numel) / 3;
            size_t best = lo;
            for (size_t j = lo; j < hi; j += 1 + t->numel / 97)
                if (fabsf(grad[j]) > fabsf(grad[best])) best = j;
            float keep = m->params[best];
            double h = FD_H * fmax(fabs(keep), 0.05), lp, lm;
            m->params[best] = (float)(keep + h);
            double hp = (double)m->params[best] - keep;
            sid_theta_loss(s, B, NULL, wfix, NULL, &lp, &err);
            m->params[best] = (float)(keep - h);
            double hm = keep - (double)m->params[best];
            sid_theta_loss(s, B, NULL, wfix, NULL, &lm, &err);
            m->params[best] = keep;
            got[np] = grad[best];
            ref[np] = (lp - lm) / (hp + hm);
            np++;
        }
    }
    pd_set_threads(threads);
    tu_compare("SiD dL/dtheta vs central differences (w fixed)", got, ref, np, 2e-2);
    double dot = 0, nr = 0, ng = 0;
    for (int i = 0; i < np; i++)
        dot += got[i] * ref[i], nr += ref[i] * ref[i], ng += (double)got[i] * got[i];
    tu_check(fabs(sqrt(ng / nr) - 1) < 5e-3 && dot / sqrt(ng * nr) > 0.9999,
             "gradient scale |g|/|fd| = %.5f, cosine %.6f over %d params", sqrt(ng / nr),
             dot / sqrt(ng * nr), np);

    /* Each path matters: dropping the score networks' input gradients (what a detached x_t
     * would give) changes the gradient by far more than the tolerance above. */
    float *g2 = calloc(s->n_params, sizeof(float));
    double L2;
    rc = sid_theta_loss(s, B, NULL, NULL, NULL, &L2, &err);   /* fresh D_r, D_f, w and G run */
    for (int i = 0; i < B; i++)
        for (size_t k = 0; k < s->chw; k++) {
            size_t j = i * s->chw + k;
            s->gxg[j] = (float)(-c.loss_scale_g / B * s->w[i] * (s->Dr[j] - s->Df[j]));
        }
    rc = rc || unet_denoise_backward(s->run_g, NULL, NULL, g2, s->gxg, &err);
    double diff = 0, nn = 0;
    for (size_t k = 0; k < s->n_params; k++)
        diff += (double)(g2[k] - grad[k]) * (g2[k] - grad[k]), nn += (double)grad[k] * grad[k];
    tu_check(sqrt(diff / nn) > 0.05,
             "the score networks' input gradients carry %.1f%% of the gradient (relative L2 of "
             "the difference when they are left out)", 100 * sqrt(diff / nn));
    free(g2);
out:
    free(grad);
    sid_free(s);
}

/* ------------------------------------------------------------------ one step lowers the loss */

static void test_steps(void) {
    pd_error err = {""};
    enum { B = 8 };
    {
        sid_config c = test_config(B, 2e-3, 1e-3);
        sid_distiller *s = make(&c, 0.0f, 3);
        sid_config_free(&c);
        if (!s) return;
        /* psi starts as the teacher, so its loss here is the teacher's denoising loss on G's
         * samples, which one step of its own must lower. */
        sid_draw(s, 0, B, 0);
        double L0, L1, l;
        int rc = sid_psi_loss(s, B, NULL, NULL, &L0, &err) || sid_psi_update(s, &l, &err);
        sid_draw(s, 0, B, 0);   /* the update's passes overwrote the intermediates */
        rc = rc || sid_psi_loss(s, B, NULL, NULL, &L1, &err);
        tu_check(rc == 0 && L1 < L0 * 0.999,
                 "one psi step lowers the psi loss on its batch: %.6g -> %.6g (%.3f%%)", L0, L1,
                 100 * (L1 - L0) / L0);
        sid_free(s);
    }
    {
        sid_config c = test_config(B, 1e-3, 3e-4);
        sid_distiller *s = make(&c, 0.0f, 4);
        sid_config_free(&c);
        if (!s) return;
        perturb_psi(s, 7);
        sid_draw(s, 0, B, 1);
        double L0, L1, L1w, l;
        float wfix[B];
        int rc = sid_theta_loss(s, B, NULL, NULL, NULL, &L0, &err);
        memcpy(wfix, s->w, sizeof wfix);
        rc = rc || sid_theta_update(s, &l, &err);
        sid_draw(s, 0, B, 1);
        rc = rc || sid_theta_loss(s, B, NULL, wfix, NULL, &L1, &err) ||
             sid_theta_loss(s, B, NULL, NULL, NULL, &L1w, &err);
        /* The loss whose gradient the step followed is the one with w fixed (stop-gradient). */
        tu_check(rc == 0 && L1 < L0 - 1e-3 * fabs(L0),
                 "one theta step lowers the SiD loss on its batch (w fixed): %.6g -> %.6g "
                 "(with w recomputed: %.6g)", L0, L1, L1w);
        sid_free(s);
    }
}

/* ------------------------------------------------------------------ NaN guard */

static void test_nan_guard(void) {
    sid_config c = test_config(4, 1e-3, 1e-3);
    sid_distiller *s = make(&c, 0.0f, 8);
    sid_config_free(&c);
    if (!s) return;
    perturb_psi(s, 9);
    pd_error err = {""};
    enum { B = 4 };
    size_t chw = s->chw;
    sid_draw(s, 0, B, 1);
    double Lclean, L1, Lnan;
    int rc = sid_theta_loss(s, B, NULL, NULL, NULL, &Lclean, &err);
    /* Sample 2 alone, in slot 0 (an image's result does not depend on its batch): its share
     * of the batch loss is L_2 lsg / B = (its n = 1 loss) / B. */
    float *keep_in = malloc(chw * sizeof(float)), *keep_nz = malloc(chw * sizeof(float));
    float ks = s->sigma[0], kl[3];
    memcpy(keep_in, s->xin, chw * sizeof(float));
    memcpy(keep_nz, s->noise, chw * sizeof(float));
    memcpy(kl, s->labels, sizeof kl);
    memcpy(s->xin, s->xin + 2 * chw, chw * sizeof(float));
    memcpy(s->noise, s->noise + 2 * chw, chw * sizeof(float));
    s->sigma[0] = s->sigma[2];
    memcpy(s->labels, s->labels + 6, sizeof kl);
    rc = rc || sid_theta_loss(s, 1, NULL, NULL, NULL, &L1, &err);
    memcpy(s->xin, keep_in, chw * sizeof(float));
    memcpy(s->noise, keep_nz, chw * sizeof(float));
    s->sigma[0] = ks;
    memcpy(s->labels, kl, sizeof kl);
    free(keep_in);
    free(keep_nz);
    s->xin[2 * chw + 5] = NAN;   /* G's output for sample 2 becomes non-finite */
    float *grad = calloc(s->n_params, sizeof(float));
    long long d0 = s->dropped;
    rc = rc || sid_theta_loss(s, B, NULL, NULL, grad, &Lnan, &err);
    float got = (float)Lnan;
    double ref = Lclean - L1 / B;
    tu_check(rc == 0 && s->dropped == d0 + 1, "a non-finite generator sample is dropped (%lld)",
             s->dropped - d0);
    tu_compare("loss without the dropped sample", &got, &ref, 1, 1e-5);
    size_t bad = 0;
    for (size_t k = 0; k < s->n_params; k++) bad += !isfinite(grad[k]);
    size_t fixed = opt_sanitize(grad, s->n_params), left = 0;
    for (size_t k = 0; k < s->n_params; k++) left += !isfinite(grad[k]);
    tu_check(fixed == bad && left == 0, "nan_to_num guard: %zu non-finite gradient entries "
             "replaced, %zu left", fixed, left);
    free(grad);
    sid_free(s);
}

/* ------------------------------------------------------------------ resume, export */

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

static void test_resume_export(const char *dir) {
    pd_error err = {""};
    enum { B = 4, K = 6 };
    char tpath[1200], ckpt[1200], gpath[1200], gpath2[1200];
    snprintf(tpath, sizeof tpath, "%s/teacher.safetensors", dir);
    snprintf(ckpt, sizeof ckpt, "%s/ck.safetensors", dir);
    snprintf(gpath, sizeof gpath, "%s/g.safetensors", dir);
    snprintf(gpath2, sizeof gpath2, "%s/g2.safetensors", dir);
    /* A teacher file, so the checkpoint's teacher hash check runs. Dropout on: masks are part
     * of what must be reproduced. */
    pd_unet_config mc = tiny_cfg(0.2f);
    pd_model *t0 = NULL;
    if (pd_model_create(&t0, &mc, 21, &err) || pd_model_save(t0, tpath, &err)) {
        tu_check(0, "teacher file: %s", err.msg);
        pd_model_free(t0);
        return;
    }
    pd_model_free(t0);
    sid_config c = test_config(B, 1e-3, 1e-3);
    sid_distiller *a = NULL, *b = NULL;
    pd_model *ta = NULL, *tb = NULL;
    if (pd_model_load(&ta, tpath, &err) || sid_create(&a, &c, ta, &err)) {
        tu_check(0, "distiller A: %s", err.msg);
        return;
    }
    int rc = 0;
    for (int k = 0; k < K && !rc; k++) rc = sid_iteration(a, NULL, NULL, &err);
    for (int k = 0; k < K / 2 && !rc; k++) {
        if (!b && (pd_model_load(&tb, tpath, &err) || sid_create(&b, &c, tb, &err))) rc = -1;
        if (!rc) rc = sid_iteration(b, NULL, NULL, &err);
    }
    rc = rc || sid_save_checkpoint(b, ckpt, &err);
    sid_free(b);
    b = NULL;
    tb = NULL;
    rc = rc || pd_model_load(&tb, tpath, &err) || sid_create(&b, &c, tb, &err) ||
         sid_load_checkpoint(b, ckpt, &err);
    for (int k = K / 2; k < K && !rc; k++) rc = sid_iteration(b, NULL, NULL, &err);
    tu_check(rc == 0, "%d iterations vs %d + checkpoint + %d (%s)", K, K / 2, K - K / 2, err.msg);
    if (rc) goto out;
    size_t n = a->n_params;
    tu_check(!same(a->gen->params, a->teacher->params, n) && !same(a->psi->params, a->teacher->params, n),
             "the run moved psi and theta away from the teacher");
    tu_check(same(a->psi->params, b->psi->params, n) && same(a->gen->params, b->gen->params, n) &&
                 same(a->theta_ema, b->theta_ema, n),
             "resume: psi, theta, theta_ema bit-identical");
    tu_check(same(a->psi_m, b->psi_m, n) && same(a->psi_v, b->psi_v, n) &&
                 same(a->theta_m, b->theta_m, n) && same(a->theta_v, b->theta_v, n) &&
                 a->images_seen == b->images_seen && a->step == b->step,
             "resume: both Adam states, images seen (%lld) and step bit-identical", a->images_seen);

    /* Mismatches fail cleanly: another batch size; another teacher. */
    {
        sid_config c2 = test_config(B + 1, 1e-3, 1e-3);
        sid_distiller *x = NULL;
        pd_model *tx = NULL;
        pd_error e2 = {""};
        int bad = pd_model_load(&tx, tpath, &e2) || sid_create(&x, &c2, tx, &e2);
        int fails = !bad && sid_load_checkpoint(x, ckpt, &e2) != 0;
        tu_check(fails && strstr(e2.msg, "training.batch"), "other batch refused: %s", e2.msg);
        sid_free(x);
        sid_config_free(&c2);
        char t2[1200];
        snprintf(t2, sizeof t2, "%s/teacher2.safetensors", dir);
        pd_model *o = NULL;
        memset(&e2, 0, sizeof e2);
        bad = pd_model_create(&o, &mc, 22, &e2) || pd_model_save(o, t2, &e2);
        pd_model_free(o);
        x = NULL;
        bad = bad || pd_model_load(&tx, t2, &e2) || sid_create(&x, &c, tx, &e2);
        fails = !bad && sid_load_checkpoint(x, ckpt, &e2) != 0;
        tu_check(fails && strstr(e2.msg, "sha256"), "other teacher refused: %s", e2.msg);
        sid_free(x);
        unlink(t2);
    }

    /* Export G_ema -> load -> pd_generator_generate (NFE 1) == D(sigma_init z; sigma_init) on the
     * loaded model == G_ema's own samples inside the distiller. */
    enum { N = 3 };
    pd_model *g = NULL;
    pd_generator *d = NULL;
    unet_run *run = NULL;
    float x[N * 64], xin[N * 64], sig[N], lab[N * 3] = {0}, direct[N * 64], inside[N * 64];
    uint64_t seeds[N];
    int classes[N];
    rc = sid_export(a, gpath, &err) || pd_model_load(&g, gpath, &err) ||
         pd_generator_from_model(&d, g, 0, &err) || unet_run_create(&run, g, N, 0, 0, &err);
    tu_check(rc == 0 && !strcmp(g->cfg.kind, "generator") && g->cfg.sigma_init == 2.5 &&
                 d->sigma_init == 2.5,
             "exported G_ema loads as kind '%s', sigma_init %g (%s)", g ? g->cfg.kind : "?",
             g ? g->cfg.sigma_init : 0.0, err.msg);
    if (rc) goto out2;
    tu_check(same(g->params, a->theta_ema, n), "exported weights are theta_ema");
    for (int i = 0; i < N; i++) {
        seeds[i] = 500 + i;
        pd_randn(x + i * 64, 64, seeds[i], 0);
        for (int k = 0; k < 64; k++) xin[i * 64 + k] = 2.5f * x[i * 64 + k];
        sig[i] = 2.5f;
        lab[i * 3 + i % 3] = 1;
        classes[i] = i % 3;
    }
    pd_generate_params p = pd_generate_default_params();
    p.seeds = seeds;
    p.classes = classes;
    pd_sample_stats st;
    memset(&st, 0, sizeof st);
    rc = pd_generator_generate(d, &p, 0, N, x, &st, &err) ||
         unet_denoise_forward(run, direct, xin, sig, lab, N, NULL, &err) ||
         sid_generate_ema(a, inside, N, 500, &err);
    tu_check(rc == 0 && st.nfe == 1 && st.steps == 1,
             "pd_generator_generate: NFE %d, steps %d (%s)", st.nfe, st.steps, err.msg);
    tu_check(rc == 0 && same(x, direct, N * 64) && same(x, inside, N * 64),
             "generator sample == D(2.5 z; 2.5) == G_ema inside the distiller, bit for bit");
    pd_denoiser *dn = NULL;
    tu_check(pd_denoiser_from_model(&dn, g, 0, &err) != 0 && !dn && strstr(err.msg, "generator"),
             "a generator is not a denoiser: %s", err.msg);
    /* The same export from the checkpoint file alone. */
    pd_model *g2 = NULL;
    rc = sid_save_checkpoint(a, ckpt, &err) || sid_export_checkpoint(ckpt, gpath2, &err) ||
         pd_model_load(&g2, gpath2, &err);
    tu_check(rc == 0 && same(g2->params, g->params, n) && !strcmp(g2->cfg.kind, "generator"),
             "export from the checkpoint file gives the same generator (%s)", err.msg);
    pd_model_free(g2);
out2:
    unet_run_free(run);
    pd_generator_free(d);
    pd_model_free(g);
out:
    sid_free(a);
    sid_free(b);
    sid_config_free(&c);
    unlink(ckpt);
    unlink(gpath);
    unlink(gpath2);
    unlink(tpath);
}

/* ------------------------------------------------------------------ share workers */

/* Shares on parallel workers (sid.h "Workers") distil the bits of one share at a time: a batch of
 * 8 in 8 shares and in 3 uneven ones (2, 3, 3 images, cut 1 + 2 over the workers), dropout on,
 * a few iterations on 1 thread and on 2: psi, theta, theta_ema, both Adam states, the losses and
 * the dropped count bit-identical. */
static void test_workers(void) {
    pd_error err = {""};
    enum { B = 8, K = 3 };
    int threads = pd_get_threads();
    for (int variant = 0; variant < 2; variant++) {
        char text[512];
        snprintf(text, sizeof text,
                 "optimizer:\n  lr_psi: 1e-3\n  lr_theta: 1e-3\nema:\n  halflife_images: 16\n"
                 "training:\n  batch: %d\n  seed: 13\n  shares: %d\n", B, variant ? 3 : 8);
        sid_config c;
        if (sid_config_parse(&c, text, "workers-config", &err)) {
            tu_check(0, "workers config: %s", err.msg);
            return;
        }
        sid_distiller *w[2] = {NULL, NULL};
        int rc = 0;
        for (int k = 0; k < 2 && !rc; k++) {
            pd_set_threads(k + 1);
            w[k] = make(&c, 0.2f, 41);
            rc = !w[k];
            for (int i = 0; i < K && !rc; i++) rc = sid_iteration(w[k], NULL, NULL, &err);
        }
        pd_set_threads(threads);
        if (!rc) {
            const sid_distiller *a = w[0], *b = w[1];
            size_t n = a->n_params;
            tu_check(a->shares.workers == 1 && b->shares.workers == 2 &&
                         a->shares.S == (variant ? 3 : 8),
                     "%d shares: the runs used %d and %d workers", a->shares.S, a->shares.workers,
                     b->shares.workers);
            tu_check(same(a->psi->params, b->psi->params, n) && same(a->gen->params, b->gen->params, n) &&
                         same(a->theta_ema, b->theta_ema, n) && same(a->psi_m, b->psi_m, n) &&
                         same(a->psi_v, b->psi_v, n) && same(a->theta_m, b->theta_m, n) &&
                         same(a->theta_v, b->theta_v, n) && !same(a->gen->params, a->teacher->params, n),
                     "%d shares: 2 workers distil the bits of 1 (psi, theta, theta_ema, Adam)",
                     a->shares.S);
            tu_check(a->last_loss_psi == b->last_loss_psi &&
                         a->last_loss_theta == b->last_loss_theta && a->dropped == b->dropped,
                     "%d shares: the same losses (%.9g, %.9g) on 1 and 2 workers", a->shares.S,
                     a->last_loss_psi, a->last_loss_theta);
        } else {
            tu_check(0, "share workers, %d shares: %s", variant ? 3 : 8, err.msg);
        }
        sid_free(w[0]);
        sid_free(w[1]);
        sid_config_free(&c);
    }
}

/* ------------------------------------------------------------------ pre-`shares` checkpoints */

/* A checkpoint without a recorded share count was made with one share per image (at most 64): a
 * plain --resume (the checkpoint's own config, whose text has no `shares`) continues it with that
 * many shares, bit-identical to a run that never stopped, and its next checkpoint records the
 * count; the default 8 shares would give other bits; a config file giving another count is
 * refused. Batch 12: 12 shares against the default 8. */
static void test_old_checkpoint(const char *dir) {
    pd_error err = {""};
    enum { B = 12, K = 4 };
    char tpath[1200], run[1200], ckpt[1300], gen[1300], cpath[1200];
    snprintf(tpath, sizeof tpath, "%s/old-teacher.safetensors", dir);
    snprintf(run, sizeof run, "%s/old-run", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run);
    snprintf(gen, sizeof gen, "%s/generator.safetensors", run);
    snprintf(cpath, sizeof cpath, "%s/old.yaml", dir);
    const char *text = "optimizer:\n  lr_psi: 1e-3\n  lr_theta: 1e-3\nema:\n  halflife_images: 16\n"
                       "training:\n  batch: 12\n  seed: 17\n  threads: 2\n";
    pd_unet_config mc = tiny_cfg(0.2f);
    pd_model *t = NULL;
    sid_config c;
    sid_distiller *d[3] = {NULL, NULL, NULL};   /* all shares straight, all shares to K/2, 8 */
    int rc = pd_model_create(&t, &mc, 51, &err) || pd_model_save(t, tpath, &err);
    pd_model_free(t);
    if (rc || sid_config_parse(&c, text, "old-config", &err)) {
        tu_check(0, "old checkpoint setup: %s", err.msg);
        return;
    }
    for (int k = 0; k < 3 && !rc; k++) {
        c.shares = k < 2 ? GS_MAX_SHARES : GS_DEFAULT_SHARES;
        rc = pd_model_load(&t, tpath, &err) || sid_create(&d[k], &c, t, &err);
        for (int i = 0; i < (k == 1 ? K / 2 : K) && !rc; i++)
            rc = sid_iteration(d[k], NULL, NULL, &err);
    }
    rc = rc || pd_make_dirs(run, &err) || sid_save_checkpoint(d[1], ckpt, &err);
    tu_check(rc == 0 && tu_forget_key(ckpt, "\"pixdiff.sid.shares\"") == 0 &&
                 d[0]->shares.S == B,
             "a checkpoint of %d iterations in %d shares, without its share count (%s)", K / 2,
             d[0] ? d[0]->shares.S : 0, err.msg);
    if (rc) goto out;
    FILE *f = fopen(cpath, "w");
    fputs(text, f);
    fclose(f);
    pd_sid_options o = pd_sid_default_options();
    o.out_dir = run;
    o.resume = 1;
    o.config_path = cpath;   /* a config file that gives the default 8 shares */
    o.duration_images = K * B;
    pd_error e2 = {""};
    tu_check(pd_distill_sid(&o, &e2) != 0 && strstr(e2.msg, "training.shares"),
             "resuming it under a config with 8 shares is refused: %s", e2.msg);
    o.config_path = NULL;    /* its own config and teacher */
    pd_model *g = NULL;
    sid_config back;
    size_t n = d[0]->n_params;
    rc = pd_distill_sid(&o, &err) || pd_model_load(&g, gen, &err) ||
         sid_checkpoint_config(ckpt, &back, &err);
    tu_check(rc == 0 && same(g->params, d[0]->theta_ema, n) &&
                 !same(g->params, d[2]->theta_ema, n) && back.shares == GS_MAX_SHARES,
             "--resume continues it with %d shares: G_ema of %d iterations straight (not of 8 "
             "shares), and the new checkpoint records the count (%s)", B, K, err.msg);
    if (!rc) sid_config_free(&back);
    pd_model_free(g);
out:
    for (int k = 0; k < 3; k++) sid_free(d[k]);
    sid_config_free(&c);
    const char *files[] = {"checkpoint.safetensors", "generator.safetensors", "sid-log.csv", NULL};
    for (int k = 0; files[k]; k++) {
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", run, files[k]);
        unlink(p);
    }
    rmdir(run);
    unlink(tpath);
    unlink(cpath);
}

/* ------------------------------------------------------------------ warm start */

/* sid_init_generator + the fake-score-only warm-up: G and G_ema are the given generator's weights
 * and f_psi the teacher's; the warm-up moves f_psi only (G, G_ema, the theta Adam state, images
 * seen and step stay), and lowers the psi loss on a fixed batch of G's samples; a checkpoint in
 * the middle of the warm-up resumes bit-exactly through the warm-up and into the alternating
 * iterations; a denoiser, another sigma_init or a warm-up not a multiple of the batch is refused. */
static void test_warm_start(const char *dir) {
    pd_error err = {""};
    enum { B = 4, W = 12 };
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/warm.safetensors", dir);
    sid_config c = test_config(B, 1e-3, 1e-3);
    /* The "shipped generator": G_ema of a distiller trained a few iterations (not the teacher). */
    sid_distiller *a = make(&c, 0.1f, 31), *b = NULL, *x = NULL;
    pd_model *g = NULL;
    int rc = !a;
    for (int k = 0; k < 3 && !rc; k++) rc = sid_iteration(a, NULL, NULL, &err);
    if (!rc) {
        pd_unet_config gc = a->gen->cfg;
        rc = unet_model_alloc(&g, &gc, &err);
        if (!rc) memcpy(g->params, a->theta_ema, a->n_params * sizeof(float));
    }
    tu_check(rc == 0, "a trained tiny generator (%s)", err.msg);
    if (rc) goto out;
    const size_t n = a->n_params;

    /* Refusals. */
    b = make(&c, 0.1f, 31);
    if (!b) goto out;
    tu_check(sid_init_generator(b, b->teacher, 8, 0, &err) != 0 && strstr(err.msg, "generator"),
             "a denoiser as the initial generator refused: %s", err.msg);
    g->cfg.sigma_init = 1.0;
    tu_check(sid_init_generator(b, g, 8, 0, &err) != 0 && strstr(err.msg, "sigma_init"),
             "another sigma_init refused: %s", err.msg);
    g->cfg.sigma_init = c.sigma_init;
    tu_check(sid_init_generator(b, g, 6, 0, &err) != 0 && strstr(err.msg, "multiple"),
             "a warm-up of 6 images at batch 4 refused: %s", err.msg);

    err.msg[0] = 0;
    rc = sid_init_generator(b, g, W, 0, &err);
    tu_check(rc == 0 && same(b->gen->params, g->params, n) && same(b->theta_ema, g->params, n) &&
                 same(b->psi->params, b->teacher->params, n) && !same(g->params, b->teacher->params, n),
             "warm start: G = G_ema = the generator, f_psi = the teacher (%s)", err.msg);
    if (rc) goto out;
    /* The psi loss on one fixed batch of G's samples, before and after the warm-up. */
    double l0 = 0, l1 = 0;
    unet_opts eval;
    memset(&eval, 0, sizeof eval);
    sid_draw(b, SID_WARM_IMAGE0, B, 0);
    rc = sid_psi_loss(b, B, &eval, NULL, &l0, &err);
    x = make(&c, 0.1f, 31);
    rc = rc || !x || sid_init_generator(x, g, W, 0, &err);
    for (int k = 0; k < W / B && !rc; k++) {
        rc = sid_warmup_iteration(b, NULL, &err);
        if (!rc && k == 0) rc = sid_warmup_iteration(x, NULL, &err) || sid_save_checkpoint(x, ckpt, &err);
    }
    tu_check(rc == 0 && b->warm_seen == W && b->images_seen == 0 && b->step == 0 &&
                 same(b->gen->params, g->params, n) && same(b->theta_ema, g->params, n) &&
                 !same(b->psi->params, b->teacher->params, n),
             "warm-up of %d images moved f_psi only (images seen %lld, step %lld) (%s)", W,
             b->images_seen, b->step, err.msg);
    int zero = 1;
    for (size_t k = 0; k < n; k++) zero &= b->theta_m[k] == 0 && b->theta_v[k] == 0;
    tu_check(zero, "warm-up: the theta Adam state untouched");
    sid_draw(b, SID_WARM_IMAGE0, B, 0);
    rc = rc || sid_psi_loss(b, B, &eval, NULL, &l1, &err);
    tu_check(rc == 0 && l1 < l0, "warm-up lowers the psi loss on G's samples: %.6g -> %.6g", l0, l1);
    tu_check(sid_warmup_iteration(b, NULL, &err) != 0, "no warm-up step past its end: %s", err.msg);
    err.msg[0] = 0;
    /* Resume from the checkpoint written after the first warm-up iteration: the rest of the
     * warm-up and two alternating iterations, bit-identical to b continuing. */
    sid_free(x);
    x = make(&c, 0.1f, 31);
    rc = !x || sid_load_checkpoint(x, ckpt, &err);
    tu_check(rc == 0 && x->warm_seen == B && x->warm_total == W, "warm-up checkpoint loads at "
             "%lld of %lld (%s)", x ? x->warm_seen : -1, x ? x->warm_total : -1, err.msg);
    while (!rc && x->warm_seen < x->warm_total) rc = sid_warmup_iteration(x, NULL, &err);
    for (int k = 0; k < 2 && !rc; k++)
        rc = sid_iteration(x, NULL, NULL, &err) || sid_iteration(b, NULL, NULL, &err);
    tu_check(rc == 0 && same(x->psi->params, b->psi->params, n) && same(x->gen->params, b->gen->params, n) &&
                 same(x->theta_ema, b->theta_ema, n) && same(x->psi_m, b->psi_m, n) &&
                 same(x->psi_v, b->psi_v, n) && same(x->theta_v, b->theta_v, n) &&
                 x->images_seen == b->images_seen && !same(b->gen->params, g->params, n),
             "warm-up resumed mid-way, then 2 iterations: bit-identical to the uninterrupted run (%s)",
             err.msg);
    /* The checkpoint after the warm-up records it; one of a plain run says nothing about it. */
    rc = sid_save_checkpoint(b, ckpt, &err);
    st_file f;
    rc = rc || st_read(&f, ckpt, &err);
    if (!rc) {
        const char *w = st_meta(&f, "pixdiff.sid.psi_warmup_images");
        tu_check(w && !strcmp(w, "12"), "checkpoint records psi_warmup_images %s", w ? w : "(none)");
        st_free(&f);
    }
out:
    pd_model_free(g);
    sid_free(a);
    sid_free(b);
    sid_free(x);
    sid_config_free(&c);
    unlink(ckpt);
}

/* The EMA ramp-up of a warm start continues from the initial generator's image count
 * (init_images, EDM's resume_kimg): after the warm-up and one alternating iteration, G is the same
 * whatever init_images says, and G_ema = G + beta·(g − G) with beta of opt_ema_beta at
 * init_images + 0 images seen; counted from 0 instead, beta is tiny and G_ema ≈ G. The count is
 * checkpointed; a negative one is refused. */
static void test_warm_start_ema(const char *dir) {
    pd_error err = {""};
    enum { B = 4, W = 4, N = 400 };
    char ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%s/warm-ema.safetensors", dir);
    sid_config c = test_config(B, 1e-3, 1e-3);
    sid_distiller *a = make(&c, 0.1f, 31), *z = make(&c, 0.1f, 31), *k = make(&c, 0.1f, 31),
                  *x = make(&c, 0.1f, 31);
    pd_model *g = NULL;
    float *want = NULL;
    int rc = !a || !z || !k || !x;
    for (int i = 0; i < 3 && !rc; i++) rc = sid_iteration(a, NULL, NULL, &err);
    if (!rc) {
        pd_unet_config gc = a->gen->cfg;
        rc = unet_model_alloc(&g, &gc, &err);
        if (!rc) memcpy(g->params, a->theta_ema, a->n_params * sizeof(float));
    }
    if (rc) {
        tu_check(0, "setup (%s)", err.msg);
        goto out;
    }
    const size_t n = a->n_params;
    tu_check(sid_init_generator(z, g, W, -1, &err) != 0 && strstr(err.msg, "between 0"),
             "a negative initial image count refused: %s", err.msg);
    tu_check(sid_init_generator(z, g, W, SID_MAX_INIT_IMAGES + 1, &err) != 0 &&
                 strstr(err.msg, "between 0"), "an initial image count past 10^15 refused: %s", err.msg);
    err.msg[0] = 0;
    rc = sid_init_generator(z, g, W, 0, &err) || sid_init_generator(k, g, W, N, &err);
    while (!rc && z->warm_seen < W) rc = sid_warmup_iteration(z, NULL, &err) || sid_warmup_iteration(k, NULL, &err);
    rc = rc || sid_iteration(z, NULL, NULL, &err) || sid_iteration(k, NULL, NULL, &err);
    want = malloc(n * sizeof *want);
    if (rc || !want) {
        tu_check(0, "warm starts with init_images 0 and %d (%s)", N, err.msg);
        goto out;
    }
    tu_check(same(z->gen->params, k->gen->params, n) && !same(z->gen->params, g->params, n),
             "init_images changes nothing but G_ema: the same G after one iteration");
    double bk = opt_ema_beta(c.ema_halflife_images, c.ema_rampup, N, B),
           bz = opt_ema_beta(c.ema_halflife_images, c.ema_rampup, 0, B);
    memcpy(want, g->params, n * sizeof *want);
    opt_ema_update(want, k->gen->params, n, bk);
    tu_check(same(k->theta_ema, want, n) && !same(k->theta_ema, z->theta_ema, n),
             "G_ema of a warm start from %d images: beta %.6g (from 0 images: %.3g)", N, bk, bz);
    memcpy(want, g->params, n * sizeof *want);
    opt_ema_update(want, z->gen->params, n, bz);
    tu_check(same(z->theta_ema, want, n), "G_ema of a warm start counted from 0: beta %.3g", bz);
    rc = sid_save_checkpoint(k, ckpt, &err) || sid_load_checkpoint(x, ckpt, &err);
    tu_check(rc == 0 && x->init_images == N, "init_images checkpointed: %lld (%s)",
             x ? x->init_images : -1, err.msg);
    k->init_images = SID_MAX_INIT_IMAGES + 1;   /* as a hostile checkpoint would say */
    rc = sid_save_checkpoint(k, ckpt, &err);
    sid_free(x);
    x = make(&c, 0.1f, 31);
    tu_check(rc == 0 && x && sid_load_checkpoint(x, ckpt, &err) != 0 &&
                 strstr(err.msg, "init_images"), "a checkpoint's init_images past 10^15 refused: %s",
             err.msg);
out:
    free(want);
    pd_model_free(g);
    sid_free(a);
    sid_free(z);
    sid_free(k);
    sid_free(x);
    sid_config_free(&c);
    unlink(ckpt);
}

/* ------------------------------------------------------------------ public loop */

static void test_public(const char *dir) {
    char tpath[1200], cpath[1200], d1[1200], d2[1200], g1[1300], g2[1300];
    snprintf(tpath, sizeof tpath, "%s/pt.safetensors", dir);
    snprintf(cpath, sizeof cpath, "%s/sid.yaml", dir);
    snprintf(d1, sizeof d1, "%s/run1", dir);
    snprintf(d2, sizeof d2, "%s/run2", dir);
    snprintf(g1, sizeof g1, "%s/generator.safetensors", d1);
    snprintf(g2, sizeof g2, "%s/generator.safetensors", d2);
    pd_error err = {""};
    pd_unet_config mc = tiny_cfg(0.1f);
    pd_model *t = NULL;
    if (pd_model_create(&t, &mc, 31, &err) || pd_model_save(t, tpath, &err)) {
        tu_check(0, "teacher: %s", err.msg);
        pd_model_free(t);
        return;
    }
    pd_model_free(t);
    FILE *f = fopen(cpath, "w");
    fprintf(f, "sid:\n  alpha: 1.2\noptimizer:\n  lr_psi: 1e-3\n  lr_theta: 1e-3\n"
               "ema:\n  halflife_images: 16\ntraining:\n  batch: 4\n  duration_images: 24\n"
               "  checkpoint_images: 8\n  seed: 5\n  threads: 2\n");
    fclose(f);
    pd_sid_options o = pd_sid_default_options();
    o.config_path = cpath;
    o.teacher_path = tpath;
    o.out_dir = d1;
    int rc = pd_distill_sid(&o, &err);
    tu_check(rc == 0, "pd_distill_sid: 24 images in one go (%s)", err.msg);
    o.out_dir = d2;
    o.duration_images = 12;
    rc = pd_distill_sid(&o, &err);
    pd_error e2 = {""};
    int again = pd_distill_sid(&o, &e2);
    tu_check(again != 0 && strstr(e2.msg, "--resume"), "an existing run needs --resume: %s", e2.msg);
    o.duration_images = 0;
    o.resume = 1;
    o.config_path = NULL;     /* resume from the checkpoint's own config and teacher */
    o.teacher_path = NULL;
    rc = rc || pd_distill_sid(&o, &err);
    pd_model *m1 = NULL, *m2 = NULL;
    rc = rc || pd_model_load(&m1, g1, &err) || pd_model_load(&m2, g2, &err);
    tu_check(rc == 0 && same(m1->params, m2->params, m1->n_params),
             "12 images + resume to 24 exports the same generator as 24 in one go (%s)", err.msg);
    pd_model_free(m1);
    pd_model_free(m2);
    const char *files[] = {"checkpoint.safetensors", "generator.safetensors", "sid-log.csv", NULL};
    for (int k = 0; files[k]; k++) {
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", d1, files[k]);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s", d2, files[k]);
        unlink(p);
    }
    rmdir(d1);
    rmdir(d2);
    unlink(tpath);
    unlink(cpath);
}

/* ------------------------------------------------------------------ config */

static void test_config_files(void) {
    sid_config c;
    pd_error err = {""};
    int rc = sid_config_parse(&c, "sid:\n  alpha: 1.0\n  tmax: 700\noptimizer:\n  betas: [0.5, 0.99]\n"
                                  "  betas_theta: [0.9, 0.999]\n", "t.yaml", &err);
    tu_check(rc == 0 && c.alpha == 1.0 && c.tmax == 700 && c.beta1_psi == 0.5 && c.beta2_psi == 0.99 &&
                 c.beta1_theta == 0.9, "config values and betas_theta override (%s)", err.msg);
    if (!rc) sid_config_free(&c);
    rc = sid_config_parse(&c, "sid:\n  alpha: 1.2\n  alhpa: 1\n", "t.yaml", &err);
    tu_check(rc != 0 && strstr(err.msg, "t.yaml:3") && strstr(err.msg, "alhpa"),
             "unknown key names file:line: %s", err.msg);
    rc = sid_config_parse(&c, "sid:\n  tmax: 1200\n", "t.yaml", &err);
    tu_check(rc != 0 && strstr(err.msg, "sid.tmax"), "out of range: %s", err.msg);
    rc = sid_config_parse(&c, "training:\n  batch: many\n", "t.yaml", &err);
    tu_check(rc != 0 && strstr(err.msg, "batch"), "wrong type: %s", err.msg);
    memset(&err, 0, sizeof err);
    rc = sid_config_load(&c, PD_SOURCE_DIR "/configs/distill/sid-fashion32.yaml", &err);
    tu_check(rc == 0 && c.alpha == 1.2 && c.tmax == 800 && c.sigma_init == 2.5 &&
                 c.beta1_theta == 0.0 && c.fd_images > 0,
             "configs/distill/sid-fashion32.yaml parses (batch %d) (%s)", c.batch, err.msg);
    if (!rc) sid_config_free(&c);
}

int main(void) {
    pd_set_threads(2);
    char dir[] = "/tmp/test_sid_XXXXXX";
    if (!mkdtemp(dir)) {
        printf("cannot create a temporary directory\n");
        return 1;
    }
    double t0 = core_now();
    double t;
#define TIMED(call) t = core_now(); call; printf("  [%.2f s] %s\n", core_now() - t, #call)
    TIMED(test_karras());
    TIMED(test_loss_reference());
    TIMED(test_gradient());
    TIMED(test_steps());
    TIMED(test_nan_guard());
    TIMED(test_resume_export(dir));
    TIMED(test_workers());
    TIMED(test_old_checkpoint(dir));
    TIMED(test_warm_start(dir));
    TIMED(test_warm_start_ema(dir));
    TIMED(test_public(dir));
    TIMED(test_config_files());
    rmdir(dir);
    printf("test_sid: %.1f s\n", core_now() - t0);
    return tu_finish();
}
