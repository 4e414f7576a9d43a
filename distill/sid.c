/* sid.c — the SiD distiller: networks, per-image draws, the psi and theta losses with their
 * gradients, the optimiser steps, G_ema sampling, checkpoints and export (see sid.h).
 *
 * The heavy work is six U-Net passes per iteration: G forward (eval) and f_psi forward+backward
 * for the psi step; G forward, f_phi and f_psi forward and input-backward, G backward for the
 * theta step. Everything else is per-sample loops, threaded over the batch, each sample's
 * reductions in a fixed order, so an iteration is bit-reproducible.
 */
#include "distill/sid.h"
#include "distill/checkpoint.h"
#include "distill/optim.h"
#include "core/arena.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "core/yamldoc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ create / free */

void sid_free(sid_distiller *s) {
    if (!s) return;
    unet_run_free(s->run_t);
    unet_run_free(s->run_psi);
    unet_run_free(s->run_g);
    for (int k = 1; k < GS_MAX_SHARES; k++)
        for (int j = 0; j < 3; j++) unet_run_free(s->wrun[k][j]);
    pd_model_free(s->teacher);
    pd_model_free(s->psi);
    pd_model_free(s->gen);
    core_free(s->theta_ema);
    core_free(s->z);
    gs_plan_free(&s->shares);
    sid_config_free(&s->cfg);
    free(s);
}

/* A network of the teacher's architecture holding a copy of its weights. */
static int clone_teacher(pd_model **out, const pd_model *t, const pd_unet_config *cfg,
                         pd_error *err) {
    if (unet_model_alloc(out, cfg, err)) return -1;
    if ((*out)->n_params != t->n_params) {
        size_t np = (*out)->n_params;
        pd_model_free(*out);
        *out = NULL;
        return pd_fail(err, "sid: the generator's config gives %zu parameters, the teacher has %zu",
                       np, t->n_params);
    }
    memcpy((*out)->params, t->params, t->n_params * sizeof(float));
    return 0;
}

/* The two arenas (core/arena.h): G_ema, both Adam states and both gradients (np floats each;
 * theta_ema first, so it is the allocation), and the batch buffers (z first). */
static void state_layout(void *ctx, ar_arena *a) {
    sid_distiller *s = ctx;
    float **arr[] = {&s->theta_ema, &s->psi_m, &s->psi_v, &s->theta_m, &s->theta_v, &s->grad_psi,
                     &s->grad_theta};
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++) *arr[i] = ar_take(a, sizeof(float) * s->n_params);
}

static void batch_layout(void *ctx, ar_arena *a) {
    sid_distiller *s = ctx;
    const size_t bc = sizeof(float) * (size_t)s->B * s->chw, b = sizeof(float) * (size_t)s->B;
    float **bufs[] = {&s->z, &s->noise, &s->xin, &s->xg, &s->xt, &s->Dr, &s->Df, &s->gDr, &s->gDf,
                      &s->gxg, &s->gxt};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) *bufs[i] = ar_take(a, bc);
    s->sigma = ar_take(a, b);
    s->sig_init = ar_take(a, b);
    s->w = ar_take(a, b);
    s->labels = ar_take(a, b * (size_t)(s->label_dim > 0 ? s->label_dim : 1));
}

int sid_create(sid_distiller **out, const sid_config *cfg, pd_model *teacher, pd_error *err) {
    *out = NULL;
    sid_distiller *s = calloc(1, sizeof *s);
    if (!s) {
        pd_model_free(teacher);
        return pd_fail(err, "out of memory");
    }
    s->teacher = teacher;
    if (sid_config_copy(&s->cfg, cfg, err)) goto fail;
    const pd_unet_config *tc = &teacher->cfg;
    const char *tname = teacher->path[0] ? teacher->path : "the teacher";
    /* docs/algorithms.md §M1.1: SiD distils EDM-preconditioned denoisers (sid_train.py asserts it); the
     * psi loss weighting lambda(sigma) and G's definition assume that form. */
    if ((strcmp(tc->arch, "songunet") && strcmp(tc->arch, "adm")) || strcmp(tc->kind, "denoiser")) {
        pd_fail(err, "%s: a SiD teacher must be a U-Net denoiser, songunet or adm (this is %s, "
                "kind %s)", tname, tc->arch, tc->kind);
        goto fail;
    }
    if (strcmp(tc->precond, "edm")) {
        pd_fail(err, "%s: a SiD teacher must use EDM preconditioning (precond is '%s')", tname,
                tc->precond);
        goto fail;
    }

    pd_unet_config gc = *tc;
    snprintf(gc.kind, sizeof gc.kind, "generator");
    gc.sigma_init = cfg->sigma_init;
    if (clone_teacher(&s->psi, teacher, tc, err) || clone_teacher(&s->gen, teacher, &gc, err))
        goto fail;
    snprintf(s->teacher_sha256, sizeof s->teacher_sha256, "%s", teacher->sha256);
    size_t np = s->n_params = teacher->n_params;
    if (!ar_build(state_layout, s, NULL)) {
        pd_fail(err, "out of memory for the optimiser state (7 x %zu floats)", np);
        goto fail;
    }
    memcpy(s->theta_ema, teacher->params, np * sizeof(float));

    s->B = cfg->batch;
    s->C = tc->in_channels;
    s->H = tc->img_resolution;
    s->label_dim = tc->label_dim;
    s->chw = (size_t)s->C * s->H * s->H;
    if (unet_run_create(&s->run_t, teacher, s->B, s->H, 1, err) ||
        unet_run_create(&s->run_psi, s->psi, s->B, s->H, 1, err) ||
        unet_run_create(&s->run_g, s->gen, s->B, s->H, 1, err))
        goto fail;

    if (!ar_build(batch_layout, s, NULL)) {
        pd_fail(err, "out of memory for the batch buffers");
        goto fail;
    }
    /* The shares run on parallel workers (sid.h "Workers"), one per thread; worker k >= 1 gets
     * its own three runs sized for one share. */
    if (gs_plan_init(&s->shares, s->B, s->cfg.shares, pd_get_threads(), np, err)) goto fail;
    const int share_max = (s->B + s->shares.S - 1) / s->shares.S;
    pd_model *const nets[3] = {teacher, s->psi, s->gen};
    for (int k = 1; k < s->shares.workers; k++)
        for (int j = 0; j < 3; j++)
            if (unet_run_create(&s->wrun[k][j], nets[j], share_max, s->H, 1, err)) goto fail;
    *out = s;
    return 0;
fail:
    sid_free(s);
    return -1;
}

/* ------------------------------------------------------------------ draws */

double sid_karras_sigma(double u) {
    /* docs/algorithms.md §M1.4: u = 0 is sigma_min = 0.002, u = 1 is sigma_max = 80, rho = 7. */
    const double rho = 7.0, a = pow(80.0, 1.0 / rho), b = pow(0.002, 1.0 / rho);
    return pow(a + (1.0 - u) * (b - a), rho);
}

/* One share's working set (sid.h "Workers"): the batch buffers from image `first` on and the runs
 * of the worker computing it. The public loss functions use worker 0's view from image 0. */
typedef struct sid_view {
    unet_run *run_t, *run_psi, *run_g;
    float *z, *noise, *xin, *xg, *xt, *Dr, *Df, *gDr, *gDf, *gxg, *gxt;
    float *sigma, *sig_init, *w, *labels;    /* labels: NULL for an unconditional teacher */
} sid_view;

static sid_view view_of(const sid_distiller *s, int worker, int first) {
    const size_t o = (size_t)first * s->chw;
    unet_run *const *wr = s->wrun[worker];
    sid_view v = {worker ? wr[0] : s->run_t, worker ? wr[1] : s->run_psi,
                  worker ? wr[2] : s->run_g,
                  s->z + o, s->noise + o, s->xin + o, s->xg + o, s->xt + o, s->Dr + o, s->Df + o,
                  s->gDr + o, s->gDf + o, s->gxg + o, s->gxt + o,
                  s->sigma + first, s->sig_init + first, s->w + first,
                  s->label_dim > 0 ? s->labels + (size_t)first * s->label_dim : NULL};
    return v;
}

/* sid_draw into a view: its image i is image first + i of the stream. */
static void draw(const sid_distiller *s, const sid_view *v, long long first, int n, int theta) {
    const sid_config *c = &s->cfg;
    const uint64_t sz = theta ? SID_STREAM_TH_Z : SID_STREAM_PSI_Z;
    const uint64_t sn = theta ? SID_STREAM_TH_N : SID_STREAM_PSI_N;
    const uint64_t sa = theta ? SID_STREAM_TH_AUX : SID_STREAM_PSI_AUX;
    const int L = s->label_dim;
    const size_t chw = s->chw;
    const float si = (float)c->sigma_init;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        uint64_t g = (uint64_t)(first + i);
        float u[4];
        rng_randu(u, 4, c->seed, sa + g);
        if (theta) {
            /* u ~ U(0, tmax/1000) on the Karras schedule (§M1.4). */
            v->sigma[i] = (float)sid_karras_sigma((double)u[0] * c->tmax / 1000.0);
        } else {
            /* ln sigma ~ N(p_mean, p_std^2) by Box-Muller (§M1.3). */
            double zz = sqrt(-2.0 * log((double)u[0])) * cos(6.283185307179586 * u[1]);
            v->sigma[i] = (float)exp(c->p_mean + c->p_std * zz);
        }
        if (L > 0) {
            /* Data-free SiD draws labels from the data's label distribution (§M1.6); the
             * classes of the teacher's data are balanced, so uniform. */
            float *lab = v->labels + (size_t)i * L;
            memset(lab, 0, (size_t)L * sizeof(float));
            int k = (int)(u[2] * (float)L);
            lab[k < L ? k : L - 1] = 1.0f;
        }
        float *z = v->z + i * chw, *xin = v->xin + i * chw;
        pd_randn(z, chw, c->seed, sz + g);
        pd_randn(v->noise + i * chw, chw, c->seed, sn + g);
        for (size_t k = 0; k < chw; k++) xin[k] = si * z[k];
        v->sig_init[i] = si;
    }
}

void sid_draw(sid_distiller *s, long long first, int n, int theta) {
    sid_view v = view_of(s, 0, 0);
    draw(s, &v, first, n, theta);
}

static int all_finite(const float *x, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k])) return 0;
    return 1;
}

/* x_t = x_g + sigma n for the samples whose x_g is finite; a non-finite sample gets x_t = 0 (any
 * finite input: it is dropped from the loss) and drop[i] = 1. */
static void make_xt(const sid_distiller *s, const sid_view *v, int n, unsigned char *drop) {
    const size_t chw = s->chw;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *xg = v->xg + i * chw, *nz = v->noise + i * chw;
        float *xt = v->xt + i * chw;
        drop[i] = !all_finite(xg, chw);
        float sg = v->sigma[i];
        for (size_t k = 0; k < chw; k++) xt[k] = drop[i] ? 0.0f : xg[k] + sg * nz[k];
    }
}

/* ------------------------------------------------------------------ psi loss (§M1.3) */

/* sid_psi_loss on a view, the loss divided by norm (the global batch when this is one share of
 * it); *n_dropped: the samples dropped for non-finite values. */
static int psi_loss(const sid_distiller *s, const sid_view *v, int n, int norm,
                    const unet_opts *opts, float *grad, double *loss, int *n_dropped,
                    pd_error *err) {
    const size_t chw = s->chw;
    /* G in eval mode, no gradient: its samples are the psi network's data. */
    if (unet_denoise_forward(v->run_g, v->xg, v->xin, v->sig_init, v->labels, n, NULL, err))
        return -1;
    unsigned char drop[n];
    make_xt(s, v, n, drop);
    if (unet_denoise_forward(v->run_psi, v->Df, v->xt, v->sigma, v->labels, n, opts, err))
        return -1;
    double per[n];
    const double sd2 = s->psi->cfg.sigma_data * s->psi->cfg.sigma_data;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *d = v->Df + i * chw, *y = v->xg + i * chw;
        float *g = v->gDf + i * chw;
        if (!drop[i]) drop[i] = !all_finite(d, chw);
        if (drop[i]) {
            memset(g, 0, chw * sizeof(float));
            per[i] = 0.0;
            continue;
        }
        double sg = v->sigma[i], lambda = (sg * sg + sd2) / (sg * sg * sd2);
        /* dL/dD = 2 lambda (D - x_g) / norm: L is summed over pixels, averaged over the batch. */
        float scale = (float)(2.0 * lambda / norm);
        double acc = 0.0;
        for (size_t k = 0; k < chw; k++) {
            float r = d[k] - y[k];
            acc += (double)r * r;
            g[k] = scale * r;
        }
        per[i] = lambda * acc;
    }
    double total = 0.0;
    int nd = 0;
    for (int i = 0; i < n; i++) total += per[i], nd += drop[i];
    if (loss) *loss = total / norm;
    *n_dropped = nd;
    return grad ? unet_denoise_backward(v->run_psi, NULL, NULL, grad, v->gDf, err) : 0;
}

int sid_psi_loss(sid_distiller *s, int n, const unet_opts *opts, float *grad, double *loss,
                 pd_error *err) {
    if (n < 1 || n > s->B) return pd_fail(err, "sid: batch of %d, the distiller holds 1..%d", n, s->B);
    sid_view v = view_of(s, 0, 0);
    int nd;
    if (psi_loss(s, &v, n, n, opts, grad, loss, &nd, err)) return -1;
    if (grad) s->dropped += nd;
    return 0;
}

/* ------------------------------------------------------------------ theta loss (§M1.4, §M1.5) */

/* sid_theta_loss on a view, the batch loss divided by norm (see psi_loss). */
static int theta_loss(const sid_distiller *s, const sid_view *v, int n, int norm,
                      const unet_opts *g_opts, const float *w_fixed, float *grad, double *loss,
                      int *n_dropped, pd_error *err) {
    const size_t chw = s->chw;
    const double alpha = s->cfg.alpha;
    const float *lab = v->labels;
    if (unet_denoise_forward(v->run_g, v->xg, v->xin, v->sig_init, lab, n, g_opts, err)) return -1;
    unsigned char drop[n];
    make_xt(s, v, n, drop);
    /* Both score networks in eval mode with frozen parameters; their runs keep the activations
     * for the input gradients below. */
    if (unet_denoise_forward(v->run_t, v->Dr, v->xt, v->sigma, lab, n, NULL, err) ||
        unet_denoise_forward(v->run_psi, v->Df, v->xt, v->sigma, lab, n, NULL, err))
        return -1;
    double per[n];
    /* The batch loss is sum_i L_i * lsg / norm (docs/algorithms.md §M1.4; not unscaled before
     * Adam), norm the global batch when this is one share of it. */
    const double k_scale = s->cfg.loss_scale_g / norm;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *a = v->Dr + i * chw, *b = v->Df + i * chw, *x = v->xg + i * chw;
        float *ga = v->gDr + i * chw, *gb = v->gDf + i * chw, *gx = v->gxg + i * chw;
        if (!drop[i]) drop[i] = !all_finite(a, chw) || !all_finite(b, chw);
        if (drop[i]) {
            memset(ga, 0, chw * sizeof(float));
            memset(gb, 0, chw * sizeof(float));
            memset(gx, 0, chw * sizeof(float));
            per[i] = 0.0;
            v->w[i] = 0.0f;
            continue;
        }
        double w;
        if (w_fixed) {
            w = w_fixed[i];
        } else {
            /* w = sg(1 / max(meanpix |x_g - D_real|, 1e-5)): a number, not a function of theta. */
            double l1 = 0.0;
            for (size_t k = 0; k < chw; k++) l1 += fabs((double)x[k] - a[k]);
            l1 /= (double)chw;
            w = 1.0 / (l1 > 1e-5 ? l1 : 1e-5);
        }
        v->w[i] = (float)w;
        /* L = w sum d ((a - x) - alpha d), d = a - b:
         *   dL/da = w ((a - x) + (1 - 2 alpha) d), dL/db = w (2 alpha d - (a - x)),
         *   dL/dx (explicit) = -w d. */
        const float fa = (float)(k_scale * w), c1 = (float)(1.0 - 2.0 * alpha),
                    c2 = (float)(2.0 * alpha);
        double acc = 0.0;
        for (size_t k = 0; k < chw; k++) {
            float d = a[k] - b[k], e = a[k] - x[k];
            acc += (double)d * ((double)e - alpha * (double)d);
            ga[k] = fa * (e + c1 * d);
            gb[k] = fa * (c2 * d - e);
            gx[k] = -fa * d;
        }
        per[i] = w * acc;
    }
    double total = 0.0;
    int nd = 0;
    for (int i = 0; i < n; i++) total += per[i], nd += drop[i];
    if (loss) *loss = total * k_scale;
    *n_dropped = nd;
    if (!grad) return 0;
    /* x_t = x_g + sigma n, so dL/dx_g collects both networks' input gradients (dparams NULL:
     * their parameters are frozen in this step), then flows into G. */
    memset(v->gxt, 0, (size_t)n * chw * sizeof(float));
    if (unet_denoise_backward(v->run_t, v->gxt, NULL, NULL, v->gDr, err) ||
        unet_denoise_backward(v->run_psi, v->gxt, NULL, NULL, v->gDf, err))
        return -1;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *gx = v->gxg + i * chw;
        const float *gt = v->gxt + i * chw;
        if (drop[i]) continue;
        for (size_t k = 0; k < chw; k++) gx[k] += gt[k];
    }
    return unet_denoise_backward(v->run_g, NULL, NULL, grad, v->gxg, err);
}

int sid_theta_loss(sid_distiller *s, int n, const unet_opts *g_opts, const float *w_fixed,
                   float *grad, double *loss, pd_error *err) {
    if (n < 1 || n > s->B) return pd_fail(err, "sid: batch of %d, the distiller holds 1..%d", n, s->B);
    sid_view v = view_of(s, 0, 0);
    int nd;
    if (theta_loss(s, &v, n, n, g_opts, w_fixed, grad, loss, &nd, err)) return -1;
    if (grad) s->dropped += nd;
    return 0;
}

/* ------------------------------------------------------------------ steps */

/* One gradient share of a psi or theta step (grad_shares.h): its images of the step's stream
 * drawn into their place in the batch buffers, its worker's runs, its own dropout key, losses
 * over the global batch. values: [0] the share's loss, [1] the samples it dropped. Shares on
 * different workers run at once: nothing here writes the distiller itself. */
typedef struct share_ctx {
    sid_distiller *s;
    int theta;
    long long image0;        /* the step's first image of its stream */
    uint64_t stream;         /* the step's dropout stream */
} share_ctx;

static int step_share(void *user, int share, int worker, int first, int n, float *grad,
                      double *values, pd_error *err) {
    share_ctx *x = user;
    const sid_distiller *s = x->s;
    sid_view v = view_of(s, worker, first);
    draw(s, &v, x->image0 + first, n, x->theta);
    unet_opts o;
    memset(&o, 0, sizeof o);
    o.train = 1;   /* f_psi in the psi step, G in the theta step (§M1.5) */
    o.dropout_seed = gs_dropout_seed(s->cfg.seed, share);
    o.dropout_stream = x->stream;
    int nd = 0;
    int rc = x->theta ? theta_loss(s, &v, n, s->B, &o, NULL, grad, &values[0], &nd, err)
                      : psi_loss(s, &v, n, s->B, &o, grad, &values[0], &nd, err);
    values[1] = (double)nd;
    return rc;
}

/* The step's gradient over all ranks (the same bits on each), its loss and dropped samples. */
static int step_gradient(sid_distiller *s, int theta, long long image0, uint64_t stream,
                         float *grad, double *loss, pd_error *err) {
    share_ctx x = {s, theta, image0, stream};
    double v[2];
    if (gs_run(&s->shares, step_share, &x, grad, v, 2, err)) return -1;
    s->dropped += (long long)v[1];
    *loss = v[0];
    return 0;
}

/* The psi step on the B images of the psi stream from image0, dropout stream `stream`; f_psi's
 * Adam step count runs on through a warm-up. */
static int psi_update(sid_distiller *s, long long image0, uint64_t stream, double *loss,
                      pd_error *err) {
    const sid_config *c = &s->cfg;
    double L;
    if (step_gradient(s, 0, image0, stream, s->grad_psi, &L, err)) return -1;
    s->nonfinite += opt_sanitize(s->grad_psi, s->n_params);   /* §M1.4 nan_to_num */
    opt_adam_step(s->psi->params, s->psi_m, s->psi_v, s->grad_psi, s->n_params, c->lr_psi,
                  c->beta1_psi, c->beta2_psi, c->eps, s->step + s->warm_seen / s->B + 1);
    s->last_loss_psi = L / (double)s->chw;
    if (loss) *loss = s->last_loss_psi;
    return 0;
}

int sid_psi_update(sid_distiller *s, double *loss, pd_error *err) {
    return psi_update(s, s->images_seen, SID_STREAM_DROP_PSI + (uint64_t)s->step, loss, err);
}

int sid_init_generator(sid_distiller *s, const pd_model *g, long long warmup_images,
                       long long init_images, pd_error *err) {
    const pd_unet_config *tc = &s->teacher->cfg, *gc = &g->cfg;
    const char *name = g->path[0] ? g->path : "the initial generator";
    if (s->images_seen || s->warm_seen)
        return pd_fail(err, "sid: a warm start needs a fresh run (this one has seen %lld images)",
                       s->images_seen + s->warm_seen);
    if (strcmp(gc->kind, "generator"))
        return pd_fail(err, "%s: kind '%s', not a one-step generator (kind 'generator')", name,
                       gc->kind);
    if (strcmp(gc->arch, tc->arch) || strcmp(gc->precond, tc->precond) ||
        gc->img_resolution != tc->img_resolution || gc->in_channels != tc->in_channels ||
        gc->label_dim != tc->label_dim || g->n_params != s->n_params)
        return pd_fail(err, "%s: not the teacher's architecture (%s/%s %dx%dx%d, %d classes, %zu "
                       "parameters; the teacher: %s/%s %dx%dx%d, %d classes, %zu parameters)",
                       name, gc->arch, gc->precond, gc->in_channels, gc->img_resolution,
                       gc->img_resolution, gc->label_dim, g->n_params, tc->arch, tc->precond,
                       tc->in_channels, tc->img_resolution, tc->img_resolution, tc->label_dim,
                       s->n_params);
    if (gc->sigma_init != s->cfg.sigma_init)
        return pd_fail(err, "%s: sigma_init %g, but the config's sid.sigma_init is %g", name,
                       gc->sigma_init, s->cfg.sigma_init);
    if (warmup_images < 0 || warmup_images % s->B)
        return pd_fail(err, "sid: the fake-score warm-up (%lld images) must be a non-negative "
                       "multiple of training.batch (%d)", warmup_images, s->B);
    if (init_images < 0 || init_images > SID_MAX_INIT_IMAGES)
        return pd_fail(err, "sid: the initial generator's image count (%lld) must be between 0 "
                       "and %lld", init_images, SID_MAX_INIT_IMAGES);
    memcpy(s->gen->params, g->params, s->n_params * sizeof(float));
    memcpy(s->theta_ema, g->params, s->n_params * sizeof(float));
    s->warm_total = warmup_images;
    s->init_images = init_images;
    snprintf(s->init_path, sizeof s->init_path, "%s", g->path);
    snprintf(s->init_sha256, sizeof s->init_sha256, "%s", g->sha256);
    return 0;
}

int sid_warmup_iteration(sid_distiller *s, double *loss_psi, pd_error *err) {
    if (s->warm_seen >= s->warm_total)
        return pd_fail(err, "sid: the fake-score warm-up is done (%lld images)", s->warm_total);
    double t0 = core_now();
    long long it = s->warm_seen / s->B;
    if (psi_update(s, SID_WARM_IMAGE0 + s->warm_seen, SID_STREAM_DROP_WARM + (uint64_t)it,
                   loss_psi, err))
        return -1;
    s->warm_seen += s->B;
    s->seconds += core_now() - t0;
    return 0;
}

int sid_theta_update(sid_distiller *s, double *loss, pd_error *err) {
    const sid_config *c = &s->cfg;
    double L;
    if (step_gradient(s, 1, s->images_seen, SID_STREAM_DROP_G + (uint64_t)s->step, s->grad_theta,
                      &L, err))
        return -1;
    s->nonfinite += opt_sanitize(s->grad_theta, s->n_params);
    opt_adam_step(s->gen->params, s->theta_m, s->theta_v, s->grad_theta, s->n_params, c->lr_theta,
                  c->beta1_theta, c->beta2_theta, c->eps, s->step + 1);
    /* EDM EMA with ramp-up from the image count before this iteration (§M1.6), counted from the
     * initial generator's images on a warm start (sid_init_generator). */
    double beta = opt_ema_beta(c->ema_halflife_images, c->ema_rampup,
                               s->init_images + s->images_seen, s->B);
    opt_ema_update(s->theta_ema, s->gen->params, s->n_params, beta);
    s->last_loss_theta = L / (c->loss_scale_g * (double)s->chw);
    if (loss) *loss = s->last_loss_theta;
    return 0;
}

int sid_iteration(sid_distiller *s, double *loss_psi, double *loss_theta, pd_error *err) {
    double t0 = core_now();
    if (sid_psi_update(s, loss_psi, err) || sid_theta_update(s, loss_theta, err)) return -1;
    s->images_seen += s->B;
    s->step++;
    s->seconds += core_now() - t0;
    return 0;
}

int sid_generate_ema(sid_distiller *s, float *out, int n, uint64_t seed0, pd_error *err) {
    /* The library's "n images from seeds" loop (pd_generator_generate) on G with theta_ema
     * swapped in: the same noise, labels and batching as `pixdiff sample` of the exported model. */
    const int L = s->label_dim;
    int *classes = L > 0 ? malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)) : NULL;
    if (L > 0 && !classes) return pd_fail(err, "out of memory for %d FD labels", n);
    for (int k = 0; L > 0 && k < n; k++) classes[k] = k % L;
    pd_generate_params p = pd_generate_default_params();
    p.seed = seed0;
    p.classes = classes;
    p.batch = s->B;
    float *live = s->gen->params;
    s->gen->params = s->theta_ema;
    pd_generator *g = NULL;
    int rc = pd_generator_from_model(&g, s->gen, s->H, err) ||
             pd_generator_generate(g, &p, 0, n, out, NULL, err) ? -1 : 0;
    pd_generator_free(g);
    s->gen->params = live;
    free(classes);
    return rc;
}

/* ------------------------------------------------------------------ checkpoints */

static const ck_kind sid_kind = {"pixdiff.sid", SID_CHECKPOINT_FORMAT, "SiD", "SiD checkpoint",
                                 "iterations", "the teacher"};
#define N_CK 7
static const char *const ck_names[N_CK] = {"sid.psi",         "sid.theta",       "sid.theta_ema",
                                           "sid.psi_adam_m",  "sid.psi_adam_v",  "sid.theta_adam_m",
                                           "sid.theta_adam_v"};

static void ck_arrays(const sid_distiller *s, float *a[N_CK]) {
    a[0] = s->psi->params;
    a[1] = s->gen->params;
    a[2] = s->theta_ema;
    a[3] = s->psi_m;
    a[4] = s->psi_v;
    a[5] = s->theta_m;
    a[6] = s->theta_v;
}

int sid_save_checkpoint(const sid_distiller *s, const char *path, pd_error *err) {
    ck_meta m;
    ck_meta_init(&m, &sid_kind);
    ck_meta_position(&m, s->images_seen, s->step, s->seconds, s->cfg.seed);
    ck_meta_real(&m, "loss_psi", s->last_loss_psi, 9);
    ck_meta_real(&m, "loss_theta", s->last_loss_theta, 9);
    ck_meta_count(&m, "dropped", s->dropped);
    ck_meta_count(&m, "shares", s->cfg.shares);
    ck_meta_config(&m, s->cfg.text, s->cfg.source);
    ck_meta_str(&m, "teacher", s->teacher->path);
    ck_meta_str(&m, "teacher_sha256", s->teacher_sha256);
    if (s->init_path[0] || s->warm_total) {
        ck_meta_str(&m, "init_generator", s->init_path);
        ck_meta_str(&m, "init_generator_sha256", s->init_sha256);
        ck_meta_count(&m, "psi_warmup_images", s->warm_total);
        ck_meta_count(&m, "warmup_seen", s->warm_seen);
        ck_meta_count(&m, "init_images", s->init_images);
    }
    if (ck_meta_model(&m, &s->gen->cfg, path, err)) return -1;
    float *arr[N_CK];
    ck_arrays(s, arr);
    const float *data[N_CK];
    for (int i = 0; i < N_CK; i++) data[i] = arr[i];
    return ck_write(path, N_CK, ck_names, data, s->n_params, &m, err);
}

/* The format check and the embedded config of an opened checkpoint, with the share count the
 * run was made with (ck_get_shares). */
static int ck_config(const ck_file *c, sid_config *cfg, pd_error *err) {
    const char *text;
    char name[1200];
    if (ck_config_text(c, &text, name, sizeof name, err) || sid_config_parse(cfg, text, name, err))
        return -1;
    if (ck_get_shares(c, &cfg->shares, err)) {
        sid_config_free(cfg);
        return -1;
    }
    return 0;
}

int sid_checkpoint_config(const char *path, sid_config *cfg, pd_error *err) {
    ck_file c;
    if (ck_open(&c, path, &sid_kind, err)) return -1;
    int rc = ck_config(&c, cfg, err);
    ck_close(&c);
    return rc;
}

int sid_load_checkpoint(sid_distiller *s, const char *path, pd_error *err) {
    ck_file c;
    if (ck_open(&c, path, &sid_kind, err)) return -1;
    int rc = -1;
    sid_config old;
    if (ck_config(&c, &old, err)) goto done;
    rc = sid_config_compatible(&old, &s->cfg, path, err);
    sid_config_free(&old);
    if (rc) goto done;
    rc = -1;
    const char *tsha = ck_get(&c, "teacher_sha256");
    const char *tpath = ck_get(&c, "teacher");
    if (tsha && tsha[0] && s->teacher_sha256[0] && strcmp(tsha, s->teacher_sha256)) {
        pd_fail(err, "%s: distilled from teacher %s (sha256 %.12s...), but the teacher given is %s "
                "(sha256 %.12s...)", path, tpath ? tpath : "?", tsha, s->teacher->path,
                s->teacher_sha256);
        goto done;
    }
    ck_position pos;
    long long dropped = 0, wtot = 0, wseen = 0, init_images = 0;
    float *dst[N_CK];
    ck_arrays(s, dst);
    int warm = ck_get(&c, "psi_warmup_images") != NULL;
    if (ck_read_position(&c, s->cfg.seed, s->B, &pos, err) ||
        (ck_get(&c, "dropped") && ck_get_count(&c, "dropped", &dropped, err)) ||
        (warm && (ck_get_count(&c, "psi_warmup_images", &wtot, err) ||
                  ck_get_count(&c, "warmup_seen", &wseen, err))) ||
        (ck_get(&c, "init_images") && ck_get_count(&c, "init_images", &init_images, err)))
        goto done;
    if (init_images > SID_MAX_INIT_IMAGES) {
        pd_fail(err, "%s: corrupt checkpoint: init_images %lld is more than %lld", path,
                init_images, SID_MAX_INIT_IMAGES);
        goto done;
    }
    if (wseen > wtot || wseen % s->B || (wseen < wtot && pos.images_seen)) {
        pd_fail(err, "%s: inconsistent warm-up position (%lld of %lld fake-score images, %lld "
                "images seen, batch %d)", path, wseen, wtot, pos.images_seen, s->B);
        goto done;
    }
    if (ck_read_arrays(&c, N_CK, ck_names, dst, s->n_params, err)) goto done;
    s->warm_total = wtot;
    s->warm_seen = wseen;
    s->init_images = init_images;   /* absent (written before it existed): counted from 0 */
    const char *ip = ck_get(&c, "init_generator"), *ih = ck_get(&c, "init_generator_sha256");
    snprintf(s->init_path, sizeof s->init_path, "%s", ip ? ip : "");
    snprintf(s->init_sha256, sizeof s->init_sha256, "%s", ih ? ih : "");
    /* ck_read_arrays copied only after every array passed its checks; now the counters. */
    s->images_seen = pos.images_seen;
    s->step = pos.step;
    s->dropped = dropped;
    s->seconds = pos.seconds;
    s->last_loss_psi = ck_get_real(&c, "loss_psi");
    s->last_loss_theta = ck_get_real(&c, "loss_theta");
    rc = 0;
done:
    ck_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ export */

int sid_export(sid_distiller *s, const char *path, pd_error *err) {
    /* gen carries kind "generator" and sigma_init; hand pd_model_save the EMA arena. */
    float *live = s->gen->params;
    s->gen->params = s->theta_ema;
    int rc = pd_model_save(s->gen, path, err);
    s->gen->params = live;
    return rc;
}

int sid_export_checkpoint(const char *ckpt, const char *out_model, pd_error *err) {
    ck_file c;
    if (ck_open(&c, ckpt, &sid_kind, err)) return -1;
    int rc = -1;
    pd_model *m = NULL;
    sid_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (ck_config(&c, &cfg, err)) goto done;
    const char *js = st_meta(&c.f, "pixdiff.config");
    if (!js) {
        pd_fail(err, "%s: no pixdiff.config metadata (not a SiD checkpoint)", ckpt);
        goto done;
    }
    char src[1100];
    snprintf(src, sizeof src, "%s: pixdiff.config", ckpt);
    yd_doc doc;
    pd_unet_config mc = pd_unet_config_default();
    if (yd_load_json(&doc, js, src, err)) goto done;
    int bad = unet_config_from_node(&mc, &doc, doc.root, err);
    yd_free(&doc);
    /* The arena is bounded by the EMA tensor the file holds, checked before allocating
     * (docs/testing.md "Resource rule"); too few values leave m->params NULL and fail below. */
    const st_tensor *held = st_find(&c.f, "sid.theta_ema");
    if (bad || unet_config_validate(&mc, err) ||
        unet_model_alloc_within(&m, &mc, held ? held->numel : 0, err))
        goto done;
    if (strcmp(mc.kind, "generator")) {
        pd_fail(err, "%s: the checkpoint's model config has kind '%s', not 'generator'", ckpt,
                mc.kind);
        goto done;
    }
    const st_tensor *ema = ck_tensor(&c, "sid.theta_ema", m->n_params, err);
    if (!ema) goto done;
    memcpy(m->params, ema->data, m->n_params * sizeof(float));
    rc = pd_model_save(m, out_model, err);
done:
    pd_model_free(m);
    sid_config_free(&cfg);
    ck_close(&c);
    return rc;
}
