/* cfg.c — the classifier-free guidance denoiser wrapper (Ho & Salimans 2022, "Classifier-Free
 * Diffusion Guidance", Eq. 6 in x0 form; contract in pixdiff.h pd_denoiser_cfg). For a call on n
 * images the inner denoiser is evaluated once on 2n: the n images with their labels, then the same
 * n images with the zero label (the "no label" input a model trained with label dropout learned),
 * and
 *   D = D_u + w (D_c - D_u),  computed as  D_c + (w - 1) (D_c - D_u)  in double,
 * the same value, whose second form is exactly D_c at w = 1 (the term is 0), so guidance 1 gives
 * the conditional model bit for bit (an image's result never depends on its batch neighbours:
 * DESIGN.md convention 7). AMED's feature tap, when asked for, is the conditional branch's (the
 * first n rows of the 2n call), as the AMED reference reads the conditional half of its guided
 * batch (zju-pi/diff-sampler, amed-solver-main/solvers_amed.py, get_amed_prediction). Scratch is
 * sized on the first call and regrown only for a larger batch, so the sampling loop allocates
 * nothing after its first step. */
#include "core/util.h"
#include "core/jsonbuf.h"
#include "pixdiff.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pd_denoiser *inner;
    double w;
    int cap;             /* images the scratch below holds (2 cap rows) */
    float *x2, *s2, *l2, *d2, *f2;  /* f2: the 2n-row feature tap (inner->feature_dim > 0) */
} cfg_ctx;

static void cfg_free_scratch(cfg_ctx *c) {
    core_free(c->x2), core_free(c->s2), core_free(c->l2), core_free(c->d2), core_free(c->f2);
    c->x2 = c->s2 = c->l2 = c->d2 = c->f2 = NULL;
}

static int cfg_grow(cfg_ctx *c, int n, size_t dim, int L, int fd, pd_error *err) {
    if (n <= c->cap) return 0;
    cfg_free_scratch(c);
    c->x2 = core_alloc(sizeof(float) * 2 * (size_t)n * dim);
    c->d2 = core_alloc(sizeof(float) * 2 * (size_t)n * dim);
    c->s2 = core_alloc(sizeof(float) * 2 * (size_t)n);
    c->l2 = core_alloc(sizeof(float) * 2 * (size_t)n * (size_t)L);
    c->f2 = core_alloc(sizeof(float) * 2 * (size_t)n * (size_t)(fd > 0 ? fd : 1));
    if (!c->x2 || !c->d2 || !c->s2 || !c->l2 || !c->f2) {
        c->cap = 0;
        return pd_fail(err, "guidance: out of memory for a batch of %d", n);
    }
    c->cap = n;
    return 0;
}

static int cfg_eval(pd_denoiser *self, float *out, const float *x, const float *sigma,
                    const float *labels, int n, float *features, pd_error *err) {
    cfg_ctx *c = self->ctx;
    const int L = self->label_dim, fd = self->feature_dim;
    const size_t dim = (size_t)self->C * self->H * self->W;
    if (cfg_grow(c, n, dim, L, fd, err)) return -1;
    memcpy(c->x2, x, sizeof(float) * (size_t)n * dim);
    memcpy(c->x2 + (size_t)n * dim, x, sizeof(float) * (size_t)n * dim);
    memcpy(c->s2, sigma, sizeof(float) * (size_t)n);
    memcpy(c->s2 + n, sigma, sizeof(float) * (size_t)n);
    memset(c->l2, 0, sizeof(float) * 2 * (size_t)n * (size_t)L);
    if (labels) memcpy(c->l2, labels, sizeof(float) * (size_t)n * (size_t)L);
    if (pd_denoiser_eval_features(c->inner, c->d2, c->x2, c->s2, c->l2, 2 * n,
                                  features ? c->f2 : NULL, err))
        return -1;
    if (features && fd > 0) memcpy(features, c->f2, sizeof(float) * (size_t)n * (size_t)fd);
    const float *dc = c->d2, *du = c->d2 + (size_t)n * dim;
    const double wm1 = c->w - 1.0;
    const size_t total = (size_t)n * dim;
    #pragma omp parallel for schedule(static) if (total > 65536)
    for (size_t j = 0; j < total; j++)
        out[j] = (float)((double)dc[j] + wm1 * ((double)dc[j] - (double)du[j]));
    return 0;
}

static void cfg_destroy(pd_denoiser *self) {
    cfg_ctx *c = self->ctx;
    if (c) {
        cfg_free_scratch(c);
        free(c);
    }
    self->ctx = NULL;
}

/* pd_denoiser_describe: the guided denoiser's description, then "|cfg=<w>". */
static int cfg_describe(const pd_denoiser *self, char *out, size_t cap) {
    const cfg_ctx *c = self->ctx;
    if (!c->inner->describe) return -1;
    int n = c->inner->describe(c->inner, out, cap);
    if (n < 0) return -1;
    size_t len = (size_t)n;
    char w[40];
    jb_fmt_double(w, sizeof w, c->w);
    jb_addf(out, cap, &len, "|cfg=%s", w);
    return len < cap ? (int)len : -1;
}

int pd_denoiser_cfg(pd_denoiser **out, pd_denoiser *inner, double w, pd_error *err) {
    if (!out) return pd_fail(err, "guidance: NULL output");
    *out = NULL;
    if (!inner) return pd_fail(err, "guidance: NULL denoiser");
    if (!isfinite(w)) return pd_fail(err, "guidance: weight must be finite, got %g", w);
    if (inner->label_dim <= 0)
        return pd_fail(err, "guidance: the model is unconditional (label_dim 0); classifier-free "
                            "guidance needs a class-conditional model");
    pd_denoiser *d = calloc(1, sizeof *d);
    cfg_ctx *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d), free(c);
        return pd_fail(err, "guidance: out of memory");
    }
    c->inner = inner;
    c->w = w;
    d->C = inner->C, d->H = inner->H, d->W = inner->W;
    d->label_dim = inner->label_dim;
    d->sigma_min = inner->sigma_min, d->sigma_max = inner->sigma_max;
    d->sigma_data = inner->sigma_data;
    d->feature_dim = inner->feature_dim;
    d->eval = cfg_eval;
    d->describe = cfg_describe;
    d->destroy = cfg_destroy;
    d->ctx = c;
    snprintf(d->desc, sizeof d->desc, "cfg(w=%g) of %.100s", w, inner->desc);
    *out = d;
    return 0;
}
