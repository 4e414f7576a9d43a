/* denoiser_net.c — a pd_model as a pd_denoiser D(x; σ, label) (DESIGN.md "The one abstraction").
 *
 * The denoiser owns an inference run (keep = 0) at its resolution, created on the first eval
 * for that batch size and re-created only when a larger batch arrives, so a sampling loop with a
 * fixed batch allocates nothing after its first step. Labels are ignored by unconditional
 * models; a conditional model given NULL sees the zero vector (models.md §4.3). destroy frees
 * the context only; the struct itself is freed by pd_denoiser_free. The model must outlive the
 * denoiser.
 */
#include "unet/songunet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pd_model *m;
    unet_run *run;
    int res, batch;           /* the run's resolution and max batch */
} net_ctx;

static int net_eval(pd_denoiser *self, float *out, const float *x, const float *sigma,
                    const float *labels, int n, pd_error *err) {
    net_ctx *c = self->ctx;
    if (n < 1) return pd_fail(err, "denoiser: batch of %d images", n);
    if (!c->run || n > c->batch) {
        unet_run_free(c->run);
        c->run = NULL;
        if (unet_run_create(&c->run, c->m, n, c->res, 0, err)) return -1;
        c->batch = n;
    }
    return unet_denoise_forward(c->run, out, x, sigma, self->label_dim ? labels : NULL, n, NULL,
                                err);
}

static void net_destroy(pd_denoiser *self) {
    net_ctx *c = self->ctx;
    if (c) unet_run_free(c->run);
    free(c);
    self->ctx = NULL;
}

int pd_denoiser_from_model(pd_denoiser **out, pd_model *m, int res, pd_error *err) {
    *out = NULL;
    const pd_unet_config *cfg = &m->cfg;
    if (res <= 0) res = cfg->img_resolution;
    /* Check the resolution now rather than on the first eval. */
    unet_run *probe;
    if (unet_run_create(&probe, m, 1, res, 0, err)) return -1;
    pd_denoiser *d = calloc(1, sizeof *d);
    net_ctx *c = calloc(1, sizeof *c);
    if (!d || !c) {
        unet_run_free(probe);
        free(d);
        free(c);
        return pd_fail(err, "out of memory");
    }
    c->m = m;
    c->res = res;
    c->run = probe;
    c->batch = 1;
    d->C = cfg->in_channels;
    d->H = d->W = res;
    d->label_dim = cfg->label_dim;
    d->sigma_min = cfg->sigma_min;
    d->sigma_max = cfg->sigma_max;
    d->sigma_data = cfg->sigma_data;
    d->eval = net_eval;
    d->destroy = net_destroy;
    d->ctx = c;
    const char *file = m->path[0] ? strrchr(m->path, '/') : NULL;
    file = file ? file + 1 : m->path[0] ? m->path : "random weights";
    snprintf(d->desc, sizeof d->desc, "songunet %s %dx%d%s, %.2fM params (%.60s)", cfg->precond, res,
             res, res != cfg->img_resolution ? " (upscaled)" : "", pd_model_param_count(m) / 1e6,
             file);
    *out = d;
    return 0;
}
