/* denoiser_net.c — a pd_model as a pd_denoiser D(x; σ, label) (DESIGN.md "The one abstraction").
 *
 * The denoiser owns an inference run (keep = 0) at its resolution, created on the first eval
 * for that batch size and re-created only when a larger batch arrives, so a sampling loop with a
 * fixed batch allocates nothing after its first step. Labels are ignored by unconditional
 * models; a conditional model given NULL sees the zero vector (docs/algorithms.md §M4.3). destroy frees
 * the context only; the struct itself is freed by pd_denoiser_free. The model must outlive the
 * denoiser. A model of kind "generator" is refused: a one-step generator is not a denoiser
 * (unet/generator_net.c builds its pd_generator on net_denoiser_create, the constructor without
 * that check).
 *
 * Two optional per-call features reach the U-Net through unet_opts. The feature tap (AMED
 * docs/algorithms.md §S4.4) is filled when the eval call passes a features buffer. Skip-Tuning (pd_denoiser_set_skip_tuning, docs/algorithms.md §S5) scales the skips of the images whose sigma
 * lies in the window; a batch whose sigmas straddle the window is split into the images inside
 * and those outside, each group evaluated on its own through gather buffers (allocated on the
 * first split batch of a size and kept, as the run is), which is exact because an image's result
 * does not depend on the batch it is in (songunet's contract); a batch wholly inside or outside
 * the window runs as one call.
 */
#include "core/jsonbuf.h"
#include "unet/denoiser_net.h"
#include "unet/songunet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pd_model *m;
    unet_run *run;
    int res, batch;           /* the run's resolution and max batch */
    /* Skip-Tuning: factors in the U-Net's production order and the sigma window */
    int st_on, n_skips;
    float st_scale[PD_SKIP_TUNING_MAX];
    double st_lo, st_hi;
    pd_skip_tuning st;        /* the settings as given, for the description */
    /* gather buffers for a batch that straddles the window: gcap images */
    int gcap;
    float *gx, *gout, *gsig, *glab, *gfeat;
    int *gidx;
} net_ctx;

static void free_gather(net_ctx *c) {
    free(c->gx), free(c->gout), free(c->gsig), free(c->glab), free(c->gfeat), free(c->gidx);
    c->gx = c->gout = c->gsig = c->glab = c->gfeat = NULL;
    c->gidx = NULL;
    c->gcap = 0;
}

static int ensure_gather(net_ctx *c, const pd_denoiser *d, int n, pd_error *err) {
    if (c->gcap >= n) return 0;
    free_gather(c);
    size_t img = (size_t)d->C * d->H * d->W, fd = d->feature_dim > 0 ? (size_t)d->feature_dim : 1;
    size_t ld = d->label_dim > 0 ? (size_t)d->label_dim : 1;
    c->gx = malloc(sizeof(float) * img * (size_t)n);
    c->gout = malloc(sizeof(float) * img * (size_t)n);
    c->gsig = malloc(sizeof(float) * (size_t)n);
    c->glab = malloc(sizeof(float) * ld * (size_t)n);
    c->gfeat = malloc(sizeof(float) * fd * (size_t)n);
    c->gidx = malloc(sizeof(int) * (size_t)n);
    if (!c->gx || !c->gout || !c->gsig || !c->glab || !c->gfeat || !c->gidx) {
        free_gather(c);
        return pd_fail(err, "denoiser: out of memory for Skip-Tuning buffers (%d images)", n);
    }
    c->gcap = n;
    return 0;
}

static int forward(net_ctx *c, float *out, const float *x, const float *sigma, const float *labels,
                   int n, int tuned, float *feature, pd_error *err) {
    unet_opts o;
    memset(&o, 0, sizeof o);
    if (tuned) {
        o.skip_scale = c->st_scale;
        o.n_skip_scale = c->n_skips;
    }
    o.feature = feature;
    return unet_denoise_forward(c->run, out, x, sigma, labels, n, &o, err);
}

static int in_window(const net_ctx *c, float sigma) {
    return (double)sigma >= c->st_lo && (double)sigma <= c->st_hi;
}

static int net_eval(pd_denoiser *self, float *out, const float *x, const float *sigma,
                    const float *labels, int n, float *features, pd_error *err) {
    net_ctx *c = self->ctx;
    if (n < 1) return pd_fail(err, "denoiser: batch of %d images", n);
    if (!c->run || n > c->batch) {
        unet_run_free(c->run);
        c->run = NULL;
        if (unet_run_create(&c->run, c->m, n, c->res, 0, err)) return -1;
        c->batch = n;
    }
    const float *lab = self->label_dim ? labels : NULL;
    float *feat = self->feature_dim > 0 ? features : NULL;
    if (!c->st_on) return forward(c, out, x, sigma, lab, n, 0, feat, err);
    int inside = 0;
    for (int b = 0; b < n; b++) inside += in_window(c, sigma[b]);
    if (inside == 0 || inside == n) return forward(c, out, x, sigma, lab, n, inside == n, feat, err);

    /* Mixed batch: the images inside the window (pass 1), then those outside (pass 0). */
    if (ensure_gather(c, self, n, err)) return -1;
    size_t img = (size_t)self->C * self->H * self->W, ld = (size_t)self->label_dim;
    size_t fd = feat ? (size_t)self->feature_dim : 0;
    for (int pass = 1; pass >= 0; pass--) {
        int m = 0;
        for (int b = 0; b < n; b++) {
            if (in_window(c, sigma[b]) != pass) continue;
            memcpy(c->gx + (size_t)m * img, x + (size_t)b * img, sizeof(float) * img);
            c->gsig[m] = sigma[b];
            if (lab) memcpy(c->glab + (size_t)m * ld, lab + (size_t)b * ld, sizeof(float) * ld);
            c->gidx[m++] = b;
        }
        if (forward(c, c->gout, c->gx, c->gsig, lab ? c->glab : NULL, m, pass,
                    feat ? c->gfeat : NULL, err))
            return -1;
        for (int i = 0; i < m; i++) {
            int b = c->gidx[i];
            memcpy(out + (size_t)b * img, c->gout + (size_t)i * img, sizeof(float) * img);
            if (feat) memcpy(feat + (size_t)b * fd, c->gfeat + (size_t)i * fd, sizeof(float) * fd);
        }
    }
    return 0;
}

static void net_destroy(pd_denoiser *self) {
    net_ctx *c = self->ctx;
    if (c) {
        unet_run_free(c->run);
        free_gather(c);
    }
    free(c);
    self->ctx = NULL;
}

/* pd_denoiser_describe's terms of a network (pixdiff.h): the model file's hash, the resolution,
 * then Skip-Tuning as given (a ramp or the list, and the sigma window). */
static int net_describe(const pd_denoiser *self, char *out, size_t cap) {
    const net_ctx *c = self->ctx;
    const char *sha = pd_model_sha256(c->m);
    size_t len = 0;
    if (sha && sha[0]) jb_addf(out, cap, &len, "model=sha256:%s", sha);
    else jb_addf(out, cap, &len, "model=%s", c->m->path[0] ? c->m->path : "unsaved");
    jb_addf(out, cap, &len, "|size=%d", self->H);
    if (c->st_on) {
        const pd_skip_tuning *t = &c->st;
        char a[40], b[40];
        if (t->n_rho) {
            jb_addf(out, cap, &len, "|skip=rho:");
            for (int i = 0; i < t->n_rho; i++) {
                jb_fmt_double(a, sizeof a, t->rho[i]);
                jb_addf(out, cap, &len, "%s%s", i ? "," : "", a);
            }
        } else {
            jb_fmt_double(a, sizeof a, t->rho_bottom);
            jb_fmt_double(b, sizeof b, t->rho_top);
            jb_addf(out, cap, &len, "|skip=rho:%s..%s", a, b);
        }
        jb_fmt_double(a, sizeof a, t->sigma_lo);
        jb_fmt_double(b, sizeof b, t->sigma_hi);
        jb_addf(out, cap, &len, ",sigma:%s..%s", a, b);
    }
    return len < cap ? (int)len : -1;
}

const char *net_model_file(const pd_model *m) {
    const char *file = m->path[0] ? strrchr(m->path, '/') : NULL;
    return file ? file + 1 : m->path[0] ? m->path : "random weights";
}

int pd_denoiser_from_model(pd_denoiser **out, pd_model *m, int res, pd_error *err) {
    *out = NULL;
    /* A one-step generator is not a denoiser (DESIGN.md "The one abstraction"): refusing it here
     * is what keeps it out of every sampler and denoiser wrapper. */
    if (m->ids.kind == KIND_GENERATOR)
        return pd_fail(err, "model '%s' is a one-step generator (kind \"generator\"), not a denoiser: "
                       "it makes an image in one call (pd_generator_from_model), no sampler or "
                       "denoiser transform applies", net_model_file(m));
    return net_denoiser_create(out, m, res, err);
}

int net_denoiser_create(pd_denoiser **out, pd_model *m, int res, pd_error *err) {
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
    d->feature_dim = unet_feature_dim(probe);
    d->eval = net_eval;
    d->describe = net_describe;
    d->destroy = net_destroy;
    d->ctx = c;
    const char *file = net_model_file(m);
    snprintf(d->desc, sizeof d->desc, "songunet %s %dx%d%s, %.2fM params (%.60s)", cfg->precond, res,
             res, res != cfg->img_resolution ? " (upscaled)" : "", pd_model_param_count(m) / 1e6,
             file);
    *out = d;
    return 0;
}

int pd_denoiser_num_skips(const pd_denoiser *d) {
    if (!d || d->eval != net_eval || !d->ctx) return -1;
    return unet_num_skips(((const net_ctx *)d->ctx)->m);
}

int pd_denoiser_set_skip_tuning(pd_denoiser *d, const pd_skip_tuning *st, pd_error *err) {
    if (!d || d->eval != net_eval || !d->ctx)
        return pd_fail(err, "skip-tuning: denoiser '%s' is not a U-Net (no skip connections)",
                       d ? d->desc : "(null)");
    net_ctx *c = d->ctx;
    if (!st) {
        c->st_on = 0;
        return 0;
    }
    int k1 = unet_num_skips(c->m);
    float scale[PD_SKIP_TUNING_MAX];
    if (pd_skip_tuning_scales(st, k1, scale, err)) return -1;
    memcpy(c->st_scale, scale, sizeof(float) * (size_t)k1);
    c->n_skips = k1;
    c->st_lo = st->sigma_lo;
    c->st_hi = st->sigma_hi;
    c->st = *st;
    c->st_on = 1;
    return 0;
}
