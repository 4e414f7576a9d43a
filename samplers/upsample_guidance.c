/* upsample_guidance.c — the upsample-guidance denoiser wrapper (docs/algorithms.md §M2; contract in
 * pixdiff.h pd_denoiser_upsample_guidance). For each call on [n, C, mH, mW]:
 *   out = D_hi(x; sigma)                                           (one hi call, the whole batch)
 *   for the images with sigma_b >= sigma_on (gathered into a compact batch, so the lo branch
 *   spends nothing on the others and an image's result does not depend on its neighbours):
 *     lo_b = D_lo(Down_m x_b; sigma_b/m)                           (§M2.2: pooling divides the
 *                                                                   noise std by m, EDM form)
 *     out_b += w Up_m(lo_b - Down_m out_b)                          (§M2.3, x0 form)
 * Down_m is the mean of each m x m block, summed in double in a fixed order; Up_m copies a
 * low-resolution pixel into its block. The activity threshold is fixed at construction from the
 * hi denoiser's sigma range (VP time, docs/algorithms.md §M2.4 and §M3.8; the formula is in pixdiff.h).
 * Scratch for the lo branch is sized on the first call and regrown only for a larger batch, as
 * the network denoisers do, so a sampling loop allocates nothing after its first step. */
#include "core/jsonbuf.h"
#include "core/util.h"
#include "pixdiff.h"
#include "schedules/noise.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pd_denoiser *hi, *lo;
    int m;
    double w, eta, sigma_on;
    int cap;                   /* batch capacity of the scratch below */
    float *xlo, *dlo, *slo, *llo;  /* [cap, lo dim], [cap, lo dim], [cap], [cap, label_dim] */
    int *idx;                  /* [cap] batch index of each active image */
    long long hi_calls, lo_calls, lo_images;
} ug_ctx;

static int ug_grow(ug_ctx *c, int n, size_t dlo_dim, int label_dim, pd_error *err) {
    if (n <= c->cap) return 0;
    core_free(c->xlo), core_free(c->dlo), core_free(c->slo), core_free(c->llo), free(c->idx);
    c->xlo = core_alloc(sizeof(float) * (size_t)n * dlo_dim);
    c->dlo = core_alloc(sizeof(float) * (size_t)n * dlo_dim);
    c->slo = core_alloc(sizeof(float) * (size_t)n);
    c->llo = label_dim ? core_alloc(sizeof(float) * (size_t)n * label_dim) : NULL;
    c->idx = malloc(sizeof(int) * (size_t)n);
    if (!c->xlo || !c->dlo || !c->slo || (label_dim && !c->llo) || !c->idx) {
        c->cap = 0;
        return pd_fail(err, "upsample guidance: out of memory for a batch of %d", n);
    }
    c->cap = n;
    return 0;
}

/* out += w Up_m(lo - Down_m out) for one image, in double per block. */
static void guide_one(float *out, const float *lo, int C, int h, int w, int m, double wt) {
    int W = w * m;
    double inv = 1.0 / ((double)m * m);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float *blk = out + ((size_t)c * h * m + (size_t)y * m) * W + (size_t)x * m;
                double s = 0;
                for (int dy = 0; dy < m; dy++)
                    for (int dx = 0; dx < m; dx++) s += blk[(size_t)dy * W + dx];
                double delta = wt * ((double)lo[((size_t)c * h + y) * w + x] - s * inv);
                for (int dy = 0; dy < m; dy++)
                    for (int dx = 0; dx < m; dx++) {
                        float *v = blk + (size_t)dy * W + dx;
                        *v = (float)((double)*v + delta);
                    }
            }
}

static int ug_eval(pd_denoiser *self, float *out, const float *x, const float *sigma,
                   const float *labels, int n, float *features, pd_error *err) {
    ug_ctx *c = self->ctx;
    /* AMED's predictor reads the 8x8 tap of the network at its trained size; the guided D mixes
     * two resolutions, neither of which is that tap at the sampled size. */
    if (features)
        return pd_fail(err, "upsample guidance: '%s' has no AMED feature tap (the predictor reads "
                       "the 8x8 level of the network at its trained size)", self->desc);
    pd_denoiser *lo = c->lo;
    c->hi_calls++;
    if (pd_denoiser_eval(c->hi, out, x, sigma, labels, n, err)) return -1;
    if (c->w == 0.0) return 0;
    int na = 0;
    for (int b = 0; b < n; b++) na += (double)sigma[b] >= c->sigma_on;
    if (na == 0) return 0;

    const int C = self->C, m = c->m, h = lo->H, w = lo->W, L = self->label_dim;
    const size_t dim = (size_t)C * self->H * self->W, dlo = (size_t)C * h * w;
    if (ug_grow(c, na, dlo, L, err)) return -1;
    na = 0;
    for (int b = 0; b < n; b++)
        if ((double)sigma[b] >= c->sigma_on) c->idx[na++] = b;
    /* Down_m (pd_avg_pool: block means in double, fixed order), one image at a time since the
     * images that get guidance need not be contiguous. */
    for (int k = 0; k < na; k++) {
        int b = c->idx[k];
        if (pd_avg_pool(c->xlo + (size_t)k * dlo, x + (size_t)b * dim, 1, C, h * m, w * m, m, err))
            return -1;
        c->slo[k] = (float)((double)sigma[b] / m);
        if (L && labels) memcpy(c->llo + (size_t)k * L, labels + (size_t)b * L, sizeof(float) * L);
    }
    c->lo_calls++;
    c->lo_images += na;
    if (pd_denoiser_eval(lo, c->dlo, c->xlo, c->slo, L && labels ? c->llo : NULL, na, err)) {
        if (!err) return -1;
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return pd_fail(err, "upsample guidance: low-resolution branch: %s", msg);
    }
    #pragma omp parallel for schedule(static) if ((size_t)na * dim > 32768)
    for (int k = 0; k < na; k++)
        guide_one(out + (size_t)c->idx[k] * dim, c->dlo + (size_t)k * dlo, C, h, w, m, c->w);
    return 0;
}

static void ug_destroy(pd_denoiser *self) {
    ug_ctx *c = self->ctx;
    if (c) {
        core_free(c->xlo), core_free(c->dlo), core_free(c->slo), core_free(c->llo), free(c->idx);
        free(c);
    }
    self->ctx = NULL;
}

/* Whether two descriptions differ only in their "|size=" term (the native-size branch of the
 * guidance is then the guided stack itself at the model's size). */
static int same_but_size(const char *a, const char *b) {
    const char *sa = strstr(a, "|size="), *sb = strstr(b, "|size=");
    if (!sa || !sb || sa - a != sb - b || strncmp(a, b, (size_t)(sa - a))) return 0;
    sa = strchr(sa + 1, '|');
    sb = strchr(sb + 1, '|');
    return !strcmp(sa ? sa : "", sb ? sb : "");
}

/* pd_denoiser_describe: hi's description, then "|ug=w:<w>,eta:<eta>", and ",lo:[...]" with the
 * native-size branch's own description when it is not hi's stack at the model's size. */
static int ug_describe(const pd_denoiser *self, char *out, size_t cap) {
    const ug_ctx *c = self->ctx;
    if (!c->hi->describe || !c->lo->describe) return -1;
    int n = c->hi->describe(c->hi, out, cap);
    char *lo = malloc(cap);
    if (n < 0 || !lo || c->lo->describe(c->lo, lo, cap) < 0) {
        free(lo);
        return -1;
    }
    int same = same_but_size(out, lo);
    size_t len = (size_t)n;
    char a[40], b[40];
    jb_fmt_double(a, sizeof a, c->w);
    jb_fmt_double(b, sizeof b, c->eta);
    jb_addf(out, cap, &len, "|ug=w:%s,eta:%s", a, b);
    if (!same) jb_addf(out, cap, &len, ",lo:[%s]", lo);
    free(lo);
    return len < cap ? (int)len : -1;
}

int pd_denoiser_upsample_guidance(pd_denoiser **out, pd_denoiser *hi, pd_denoiser *lo, int m, double w,
                                  double eta, pd_error *err) {
    if (!out) return pd_fail(err, "upsample guidance: NULL output");
    *out = NULL;
    if (!hi || !lo) return pd_fail(err, "upsample guidance: NULL denoiser");
    if (m < 2 || m > 64) return pd_fail(err, "upsample guidance: factor m must be 2..64, got %d", m);
    if (!isfinite(w)) return pd_fail(err, "upsample guidance: weight w must be finite, got %g", w);
    if (isnan(eta) || eta < 0)
        return pd_fail(err, "upsample guidance: eta must be >= 0, got %g", eta);
    if (hi->C != lo->C || hi->H != m * lo->H || hi->W != m * lo->W)
        return pd_fail(err,
                       "upsample guidance: '%s' is %dx%dx%d, which is not %d x '%s' (%dx%dx%d)",
                       hi->desc, hi->C, hi->H, hi->W, m, lo->desc, lo->C, lo->H, lo->W);
    if (hi->label_dim != lo->label_dim)
        return pd_fail(err, "upsample guidance: label_dim %d of '%s' differs from %d of '%s'",
                       hi->label_dim, hi->desc, lo->label_dim, lo->desc);
    if (!(hi->sigma_min > 0 && hi->sigma_max > hi->sigma_min))
        return pd_fail(err, "upsample guidance: '%s' has no sigma range (%g, %g)", hi->desc,
                       hi->sigma_min, hi->sigma_max);
    pd_denoiser *d = calloc(1, sizeof *d);
    ug_ctx *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d);
        free(c);
        return pd_fail(err, "upsample guidance: out of memory");
    }
    c->hi = hi;
    c->lo = lo;
    c->m = m;
    c->w = w;
    c->eta = eta;
    /* docs/algorithms.md §M2.4: on during the first eta of the trajectory in VP time, t(sigma_max) -> t(sigma_min) */
    if (eta >= 1) c->sigma_on = 0;
    else if (eta <= 0) c->sigma_on = INFINITY;
    else {
        double t_lo = noise_vp_time(hi->sigma_min, NOISE_VP_BETA_D, NOISE_VP_BETA_MIN);
        double t_hi = noise_vp_time(hi->sigma_max, NOISE_VP_BETA_D, NOISE_VP_BETA_MIN);
        c->sigma_on = noise_vp_sigma(t_hi - eta * (t_hi - t_lo), NOISE_VP_BETA_D, NOISE_VP_BETA_MIN);
    }
    d->C = hi->C;
    d->H = hi->H;
    d->W = hi->W;
    d->label_dim = hi->label_dim;
    d->sigma_min = hi->sigma_min;
    d->sigma_max = hi->sigma_max;
    d->sigma_data = hi->sigma_data;
    d->eval = ug_eval;
    d->describe = ug_describe;
    d->destroy = ug_destroy;
    d->ctx = c;
    snprintf(d->desc, sizeof d->desc, "upsample-guidance(m=%d,w=%.4g,eta=%.4g) %.64s", m, w, eta, hi->desc);
    *out = d;
    return 0;
}

double pd_upsample_guidance_sigma_on(const pd_denoiser *d) {
    if (!d || d->eval != ug_eval) return -1;
    const ug_ctx *c = d->ctx;
    return c->w == 0.0 ? INFINITY : c->sigma_on;
}

int pd_upsample_guidance_stats(const pd_denoiser *d, long long *hi_calls, long long *lo_calls,
                               long long *lo_images) {
    if (!d || d->eval != ug_eval) return -1;
    const ug_ctx *c = d->ctx;
    if (hi_calls) *hi_calls = c->hi_calls;
    if (lo_calls) *lo_calls = c->lo_calls;
    if (lo_images) *lo_images = c->lo_images;
    return 0;
}
