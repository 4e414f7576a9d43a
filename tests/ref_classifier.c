/* ref_classifier.c — naive double-precision feature classifier for tests (see ref_classifier.h).
 *
 * Straight from classifier/classifier.h: stem conv3x3; per stage (2x2 mean pool before stages > 0)
 * num_blocks x [GroupNorm(min(32, C/4) groups, eps 1e-5) -> SiLU -> conv3x3]; GroupNorm -> SiLU
 * -> global mean -> linear -> SiLU (features) -> linear (logits). Plain loops, no BLAS, no
 * threads, everything in double.
 */
#include "ref_classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const pd_model *m; const double *dp; double *tmp; int bad; } ctx;

/* The tensor `name` as doubles, checking its element count. */
static const double *T(ctx *c, const char *name, size_t numel) {
    for (int i = 0; i < c->m->n_tensors; i++) {
        const unet_tensor_info *t = &c->m->tensors[i];
        if (strcmp(t->name, name)) continue;
        if (t->numel != numel) {
            fprintf(stderr, "ref_classifier: %s has %zu values, expected %zu\n", name, t->numel,
                    numel);
            c->bad = 1;
            return NULL;
        }
        if (c->dp) return c->dp + t->offset;
        double *d = malloc(numel * sizeof *d);   /* a double copy, freed by release() */
        for (size_t k = 0; k < numel; k++) d[k] = c->m->params[t->offset + k];
        return d;
    }
    fprintf(stderr, "ref_classifier: tensor %s is missing\n", name);
    c->bad = 1;
    return NULL;
}

static void release(ctx *c, const double *p) {
    if (!c->dp) free((void *)p);
}

static double silu(double v) { return v / (1.0 + exp(-v)); }

/* out [n, O, H, H] = conv3x3(in [n, I, H, H]) with zero padding 1. */
static void conv3(double *out, const double *in, const double *w, const double *b, int n, int I,
                  int O, int H) {
    for (int s = 0; s < n; s++)
        for (int o = 0; o < O; o++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < H; x++) {
                    double acc = b[o];
                    for (int i = 0; i < I; i++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int yy = y + ky - 1, xx = x + kx - 1;
                                if (yy < 0 || yy >= H || xx < 0 || xx >= H) continue;
                                acc += w[((o * I + i) * 3 + ky) * 3 + kx] *
                                       in[(((size_t)s * I + i) * H + yy) * H + xx];
                            }
                    out[(((size_t)s * O + o) * H + y) * H + x] = acc;
                }
}

/* GroupNorm then SiLU, in place on v [n, C, HW]. */
static void norm_silu(double *v, const double *g, const double *b, int n, int C, int HW) {
    int G = C / 4 < 32 ? C / 4 : 32;
    if (G < 1) G = 1;
    int cg = C / G;
    for (int s = 0; s < n; s++)
        for (int q = 0; q < G; q++) {
            double *p = v + ((size_t)s * C + (size_t)q * cg) * HW;
            size_t cnt = (size_t)cg * HW;
            double mean = 0, var = 0;
            for (size_t k = 0; k < cnt; k++) mean += p[k];
            mean /= cnt;
            for (size_t k = 0; k < cnt; k++) var += (p[k] - mean) * (p[k] - mean);
            var /= cnt;
            double rs = 1.0 / sqrt(var + 1e-5);
            for (int c = 0; c < cg; c++)
                for (int k = 0; k < HW; k++) {
                    int ch = q * cg + c;
                    double z = (p[(size_t)c * HW + k] - mean) * rs * g[ch] + b[ch];
                    p[(size_t)c * HW + k] = silu(z);
                }
        }
}

int ref_classifier(const pd_model *m, const double *params, const double *x, int n,
                   double *logits, double *features) {
    const pd_unet_config *cfg = &m->cfg;
    ctx c = {m, params, NULL, 0};
    int R = cfg->img_resolution, Cin = cfg->in_channels, S = cfg->n_levels;
    int F = cfg->model_channels * cfg->channel_mult_emb, K = cfg->label_dim;
    int w = cfg->model_channels * cfg->channel_mult[0];
    /* Every activation fits in n x R x R x (the widest channel count). */
    int wmax = Cin;
    for (int s = 0; s < S; s++)
        if (cfg->model_channels * cfg->channel_mult[s] > wmax)
            wmax = cfg->model_channels * cfg->channel_mult[s];
    if (wmax > 4096 || F > 4096) {
        fprintf(stderr, "ref_classifier: widths above 4096 are not supported\n");
        return -1;
    }
    size_t big = (size_t)n * wmax * R * R;
    double *h = malloc(big * sizeof *h), *t = malloc(big * sizeof *t);
    char name[96];
    const double *W = T(&c, "clf.stem.weight", (size_t)w * Cin * 9);
    const double *B = T(&c, "clf.stem.bias", w);
    if (c.bad) goto fail;
    conv3(h, x, W, B, n, Cin, w, R);
    release(&c, W), release(&c, B);
    int H = R;
    for (int s = 0; s < S; s++) {
        int ws = cfg->model_channels * cfg->channel_mult[s];
        if (s > 0) {   /* 2x2 mean pool */
            int Ho = H / 2;
            for (int q = 0; q < n * w; q++)
                for (int y = 0; y < Ho; y++)
                    for (int xx = 0; xx < Ho; xx++) {
                        const double *p = h + (size_t)q * H * H;
                        t[((size_t)q * Ho + y) * Ho + xx] =
                            (p[2 * y * H + 2 * xx] + p[2 * y * H + 2 * xx + 1] +
                             p[(2 * y + 1) * H + 2 * xx] + p[(2 * y + 1) * H + 2 * xx + 1]) / 4;
                    }
            H = Ho;
            memcpy(h, t, (size_t)n * w * H * H * sizeof *h);
        }
        for (int j = 0; j < cfg->num_blocks; j++) {
            snprintf(name, sizeof name, "clf.s%d.b%d.norm.weight", s, j);
            const double *g = T(&c, name, w);
            snprintf(name, sizeof name, "clf.s%d.b%d.norm.bias", s, j);
            const double *be = T(&c, name, w);
            snprintf(name, sizeof name, "clf.s%d.b%d.conv.weight", s, j);
            W = T(&c, name, (size_t)ws * w * 9);
            snprintf(name, sizeof name, "clf.s%d.b%d.conv.bias", s, j);
            B = T(&c, name, ws);
            if (c.bad) goto fail;
            norm_silu(h, g, be, n, w, H * H);
            conv3(t, h, W, B, n, w, ws, H);
            memcpy(h, t, (size_t)n * ws * H * H * sizeof *h);
            release(&c, g), release(&c, be), release(&c, W), release(&c, B);
            w = ws;
        }
    }
    const double *g = T(&c, "clf.out_norm.weight", w), *be = T(&c, "clf.out_norm.bias", w);
    const double *fw = T(&c, "clf.fc.weight", (size_t)F * w), *fb = T(&c, "clf.fc.bias", F);
    const double *hw_ = T(&c, "clf.head.weight", (size_t)K * F), *hb = T(&c, "clf.head.bias", K);
    if (c.bad) goto fail;
    norm_silu(h, g, be, n, w, H * H);
    for (int s = 0; s < n; s++) {
        double pool[4096], feat[4096];
        for (int ch = 0; ch < w; ch++) {
            double acc = 0;
            for (int k = 0; k < H * H; k++) acc += h[((size_t)s * w + ch) * H * H + k];
            pool[ch] = acc / (H * H);
        }
        for (int f = 0; f < F; f++) {
            double acc = fb[f];
            for (int ch = 0; ch < w; ch++) acc += fw[(size_t)f * w + ch] * pool[ch];
            feat[f] = silu(acc);
            if (features) features[(size_t)s * F + f] = feat[f];
        }
        if (logits)
            for (int k = 0; k < K; k++) {
                double acc = hb[k];
                for (int f = 0; f < F; f++) acc += hw_[(size_t)k * F + f] * feat[f];
                logits[(size_t)s * K + k] = acc;
            }
    }
    release(&c, g), release(&c, be), release(&c, fw), release(&c, fb), release(&c, hw_),
        release(&c, hb);
    free(h);
    free(t);
    return 0;
fail:
    free(h);
    free(t);
    return -1;
}
