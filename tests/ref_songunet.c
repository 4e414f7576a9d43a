/* ref_songunet.c — naive double-precision SongUNet denoiser for tests (see ref_songunet.h).
 *
 * One image at a time, every tensor a fresh malloc'd [C][H][W] array, every layer a plain loop
 * written from the spec: GroupNorm min(32, C/4) groups with biased variance (§4.1), PyTorch
 * cross-correlation with zero padding, 2x2 average pooling / nearest x2 for resample_filter
 * [1,1], UNetBlock exactly as the pseudo-code of §4.4 (one head, skip_scale √½, eps 1e-6), the
 * SongUNet walk of §4.5 with its skip stack, and the preconditioners of §4.3.
 */
#include "ref_songunet.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { double *d; int C, H; } ten;   /* [C][H][H] */

typedef struct {
    const pd_model *m;
    const double *params;
    double *own;              /* params converted from float when o->params is NULL */
    int fail;
} ctx;

static ten mk(int C, int H) {
    ten t = {calloc((size_t)C * H * H, sizeof(double)), C, H};
    return t;
}

/* The tensor named exactly `model.<fmt...>`, checked against the expected element count. */
static const double *P(ctx *c, size_t numel, const char *fmt, ...) {
    char name[160] = "model.";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name + 6, sizeof name - 6, fmt, ap);
    va_end(ap);
    for (int i = 0; i < c->m->n_tensors; i++) {
        const pd_tensor_info *t = &c->m->tensors[i];
        if (strcmp(t->name, name)) continue;
        if (t->numel != numel) {
            fprintf(stderr, "ref: tensor %s has %zu elements, expected %zu\n", name, t->numel, numel);
            c->fail = 1;
            return NULL;
        }
        return c->params + t->offset;
    }
    fprintf(stderr, "ref: tensor %s missing\n", name);
    c->fail = 1;
    return NULL;
}

static double silu(double v) { return v / (1 + exp(-v)); }

static ten groupnorm(ctx *c, const ten *x, const char *mod) {
    const double *g = P(c, x->C, "%s.weight", mod), *b = P(c, x->C, "%s.bias", mod);
    ten o = mk(x->C, x->H);
    if (!g || !b) return o;
    int G = x->C / 4 < 32 ? x->C / 4 : 32, cpg = x->C / G, L = x->H * x->H;
    for (int k = 0; k < G; k++) {
        double mu = 0, var = 0;
        int cnt = cpg * L;
        const double *s = x->d + (size_t)k * cpg * L;
        for (int i = 0; i < cnt; i++) mu += s[i];
        mu /= cnt;
        for (int i = 0; i < cnt; i++) var += (s[i] - mu) * (s[i] - mu);
        var /= cnt;
        for (int ch = k * cpg; ch < (k + 1) * cpg; ch++)
            for (int i = 0; i < L; i++)
                o.d[ch * L + i] = (x->d[ch * L + i] - mu) / sqrt(var + 1e-6) * g[ch] + b[ch];
    }
    return o;
}

static void silu_inplace(ten *t) {
    for (size_t i = 0; i < (size_t)t->C * t->H * t->H; i++) t->d[i] = silu(t->d[i]);
}

static ten conv(ctx *c, const ten *x, int OC, int k, const char *mod) {
    const double *w = P(c, (size_t)OC * x->C * k * k, "%s.weight", mod);
    const double *b = P(c, OC, "%s.bias", mod);
    ten o = mk(OC, x->H);
    if (!w || !b) return o;
    int H = x->H, p = k / 2;
    /* out[oc,y,x] = b[oc] + Σ_{ic,ki,kj} w[oc,ic,ki,kj]·in[ic, y+ki-p, x+kj-p] (zero outside). */
    for (int oc = 0; oc < OC; oc++) {
        double *dst = o.d + (size_t)oc * H * H;
        for (int i = 0; i < H * H; i++) dst[i] = b[oc];
        for (int ic = 0; ic < x->C; ic++)
            for (int ki = 0; ki < k; ki++)
                for (int kj = 0; kj < k; kj++) {
                    double wv = w[((oc * x->C + ic) * k + ki) * k + kj];
                    int x0 = p - kj > 0 ? p - kj : 0, x1 = H + p - kj < H ? H + p - kj : H;
                    for (int y = 0; y < H; y++) {
                        int yy = y + ki - p;
                        if (yy < 0 || yy >= H) continue;
                        const double *src = x->d + ((size_t)ic * H + yy) * H + kj - p;
                        for (int xx = x0; xx < x1; xx++) dst[y * H + xx] += wv * src[xx];
                    }
                }
    }
    return o;
}

/* resample_filter [1,1]: down = depthwise conv with [[.25,.25],[.25,.25]], stride 2; up = the
 * transposed conv with 4x that filter, i.e. each pixel copied to a 2x2 block. */
static ten resample(const ten *x, int up) {
    int H = x->H, Ho = up ? 2 * H : H / 2;
    ten o = mk(x->C, Ho);
    for (int ch = 0; ch < x->C; ch++)
        for (int y = 0; y < Ho; y++)
            for (int xx = 0; xx < Ho; xx++) {
                const double *s = x->d + (size_t)ch * H * H;
                o.d[((size_t)ch * Ho + y) * Ho + xx] =
                    up ? s[(y / 2) * H + xx / 2]
                       : 0.25 * (s[2 * y * H + 2 * xx] + s[2 * y * H + 2 * xx + 1] +
                                 s[(2 * y + 1) * H + 2 * xx] + s[(2 * y + 1) * H + 2 * xx + 1]);
            }
    return o;
}

static ten copy(const ten *x) {
    ten o = mk(x->C, x->H);
    memcpy(o.d, x->d, sizeof(double) * x->C * x->H * x->H);
    return o;
}

/* UNetBlock forward, models.md §4.4 (adaptive_scale false, 1 head). */
static ten unet_block(ctx *c, const ten *x, int cout, const double *emb, int E, int up, int down,
                      int attn, const char *name) {
    char mod[96];
    const double s = sqrt(0.5);
    snprintf(mod, sizeof mod, "%s.norm0", name);
    ten h = groupnorm(c, x, mod);
    silu_inplace(&h);
    if (up || down) { ten t = resample(&h, up); free(h.d); h = t; }
    snprintf(mod, sizeof mod, "%s.conv0", name);
    ten h1 = conv(c, &h, cout, 3, mod);
    free(h.d);
    const double *aw = P(c, (size_t)cout * E, "%s.affine.weight", name);
    const double *ab = P(c, cout, "%s.affine.bias", name);
    int L = h1.H * h1.H;
    for (int o = 0; aw && ab && o < cout; o++) {
        double p = ab[o];
        for (int j = 0; j < E; j++) p += aw[o * E + j] * emb[j];
        for (int i = 0; i < L; i++) h1.d[o * L + i] += p;
    }
    snprintf(mod, sizeof mod, "%s.norm1", name);
    ten h2 = groupnorm(c, &h1, mod);
    free(h1.d);
    silu_inplace(&h2);
    snprintf(mod, sizeof mod, "%s.conv1", name);
    ten y = conv(c, &h2, cout, 3, mod);
    free(h2.d);
    ten sk;
    if (cout != x->C || up || down) {
        ten rs = (up || down) ? resample(x, up) : copy(x);
        snprintf(mod, sizeof mod, "%s.skip", name);
        sk = conv(c, &rs, cout, 1, mod);
        free(rs.d);
    } else {
        sk = copy(x);
    }
    for (int i = 0; i < cout * L; i++) y.d[i] = (y.d[i] + sk.d[i]) * s;
    free(sk.d);
    if (!attn) return y;
    snprintf(mod, sizeof mod, "%s.norm2", name);
    ten n2 = groupnorm(c, &y, mod);
    snprintf(mod, sizeof mod, "%s.qkv", name);
    ten qkv = conv(c, &n2, 3 * cout, 1, mod);
    free(n2.d);
    /* One head: q, k, v of channel ch are qkv channels 3ch, 3ch+1, 3ch+2. */
    ten a = mk(cout, y.H);
    double *w = malloc(sizeof(double) * L);
    for (int i = 0; i < L; i++) {
        double mx = -INFINITY, z = 0;
        for (int l = 0; l < L; l++) {
            double dot = 0;
            for (int ch = 0; ch < cout; ch++)
                dot += qkv.d[(3 * ch) * L + i] * qkv.d[(3 * ch + 1) * L + l];
            w[l] = dot / sqrt((double)cout);
            if (w[l] > mx) mx = w[l];
        }
        for (int l = 0; l < L; l++) z += (w[l] = exp(w[l] - mx));
        for (int ch = 0; ch < cout; ch++) {
            double acc = 0;
            for (int l = 0; l < L; l++) acc += w[l] / z * qkv.d[(3 * ch + 2) * L + l];
            a.d[ch * L + i] = acc;
        }
    }
    free(w);
    free(qkv.d);
    snprintf(mod, sizeof mod, "%s.proj", name);
    ten o = conv(c, &a, cout, 1, mod);
    free(a.d);
    for (int i = 0; i < cout * L; i++) o.d[i] = (o.d[i] + y.d[i]) * s;
    free(y.d);
    return o;
}

static int in_list(const int *v, int n, int x) {
    for (int i = 0; i < n; i++)
        if (v[i] == x) return 1;
    return 0;
}

/* F(x_in, c_noise, label) for one image, models.md §4.5. */
static ten songunet(ctx *c, const ten *xin, double cnoise, const double *label, const ref_opts *o,
                    double *feature) {
    const pd_unet_config *cf = &c->m->cfg;
    int mc = cf->model_channels, Cn = mc * cf->channel_mult_noise, E = mc * cf->channel_mult_emb;
    int R = cf->img_resolution, L = cf->n_levels;
    /* Mapping: [cos | sin] with endpoint frequencies, halves swapped to [sin | cos]. */
    double *e = calloc(Cn, sizeof(double)), *e1 = calloc(E, sizeof(double));
    double *emb = calloc(E, sizeof(double));
    int half = Cn / 2;
    for (int i = 0; i < half; i++) {
        double f = pow(1.0 / 10000, (double)i / (half - 1));
        e[i] = sin(cnoise * f);
        e[half + i] = cos(cnoise * f);
    }
    if (cf->label_dim) {
        int ld = cf->label_dim;
        const double *w = P(c, (size_t)Cn * ld, "map_label.weight"), *b = P(c, Cn, "map_label.bias");
        for (int j = 0; w && b && j < Cn; j++) {
            double acc = b[j];
            for (int k = 0; k < ld; k++) acc += w[j * ld + k] * (label ? label[k] * sqrt((double)ld) : 0);
            e[j] += acc;
        }
    }
    const double *w0 = P(c, (size_t)E * Cn, "map_layer0.weight"), *b0 = P(c, E, "map_layer0.bias");
    const double *w1 = P(c, (size_t)E * E, "map_layer1.weight"), *b1 = P(c, E, "map_layer1.bias");
    for (int j = 0; w0 && b0 && j < E; j++) {
        double acc = b0[j];
        for (int k = 0; k < Cn; k++) acc += w0[j * Cn + k] * e[k];
        e1[j] = silu(acc);
    }
    for (int j = 0; w1 && b1 && j < E; j++) {
        double acc = b1[j];
        for (int k = 0; k < E; k++) acc += w1[j * E + k] * e1[k];
        emb[j] = silu(acc);
    }
    free(e);
    free(e1);

    /* Encoder with the skip stack. */
    ten skips[128];
    int ns = 0;
    char name[96];
    ten x;
    int cout = cf->in_channels;
    for (int l = 0; l < L; l++) {
        int r = R >> l;
        if (l == 0) {
            snprintf(name, sizeof name, "enc.%dx%d_conv", r, r);
            x = conv(c, xin, mc, 3, name);
            cout = mc;
        } else {
            snprintf(name, sizeof name, "enc.%dx%d_down", r, r);
            ten t = unet_block(c, &x, cout, emb, E, 0, 1, 0, name);
            x = t;
        }
        skips[ns++] = x;
        for (int i = 0; i < cf->num_blocks; i++) {
            snprintf(name, sizeof name, "enc.%dx%d_block%d", r, r, i);
            cout = mc * cf->channel_mult[l];
            x = unet_block(c, &x, cout, emb, E, 0, 0, in_list(cf->attn_resolutions, cf->n_attn, r),
                           name);
            skips[ns++] = x;
        }
    }
    int nskips = ns;
    /* Feature tap: the last encoder output of the level running at 8x8, else of the lowest. */
    if (feature) {
        int tl = L - 1;
        for (int l = 0; l < L; l++)
            if ((xin->H >> l) == 8) tl = l;
        int s = -1, h = xin->H >> tl;
        /* Skips per level: level 0 has 1 + nb, every other level 1 + nb. */
        s = (tl + 1) * (cf->num_blocks + 1) - 1;
        const ten *t = &skips[s];
        for (int q = 0; q < h * h; q++) {
            double acc = 0;
            for (int ch = 0; ch < t->C; ch++) acc += t->d[ch * h * h + q];
            feature[q] = acc / t->C;
        }
    }
    /* Decoder: x still aliases the last skip; copy it so freeing stays simple. */
    x = copy(&x);
    for (int l = L - 1; l >= 0; l--) {
        int r = R >> l;
        if (l == L - 1) {
            snprintf(name, sizeof name, "dec.%dx%d_in0", r, r);
            ten t = unet_block(c, &x, cout, emb, E, 0, 0, 1, name);
            free(x.d);
            snprintf(name, sizeof name, "dec.%dx%d_in1", r, r);
            x = unet_block(c, &t, cout, emb, E, 0, 0, 0, name);
            free(t.d);
        } else {
            snprintf(name, sizeof name, "dec.%dx%d_up", r, r);
            ten t = unet_block(c, &x, cout, emb, E, 1, 0, 0, name);
            free(x.d);
            x = t;
        }
        for (int i = 0; i <= cf->num_blocks; i++) {
            ten sk = skips[--ns];
            double sc = o->skip_scale ? o->skip_scale[ns] : 1.0;
            ten cat = mk(x.C + sk.C, x.H);
            size_t hw = (size_t)x.H * x.H;
            memcpy(cat.d, x.d, sizeof(double) * x.C * hw);
            for (size_t j = 0; j < sk.C * hw; j++) cat.d[x.C * hw + j] = sc * sk.d[j];
            free(x.d);
            snprintf(name, sizeof name, "dec.%dx%d_block%d", r, r, i);
            cout = mc * cf->channel_mult[l];
            x = unet_block(c, &cat, cout, emb, E, 0, 0,
                           i == cf->num_blocks && in_list(cf->attn_resolutions, cf->n_attn, r), name);
            free(cat.d);
        }
        if (l == 0) {
            snprintf(name, sizeof name, "dec.%dx%d_aux_norm", r, r);
            ten t = groupnorm(c, &x, name);
            silu_inplace(&t);
            free(x.d);
            snprintf(name, sizeof name, "dec.%dx%d_aux_conv", r, r);
            x = conv(c, &t, cf->out_channels, 3, name);
            free(t.d);
        }
    }
    for (int i = 0; i < nskips; i++) free(skips[i].d);
    free(emb);
    return x;
}

int ref_denoise(const pd_model *m, double *out, const double *x, const double *sigma,
                const double *labels, int n, const ref_opts *o) {
    static const ref_opts none;
    if (!o) o = &none;
    ctx c = {m, o->params, NULL, 0};
    if (!c.params) {
        c.own = malloc(sizeof(double) * m->n_params);
        for (size_t i = 0; i < m->n_params; i++) c.own[i] = m->params[i];
        c.params = c.own;
    }
    const pd_unet_config *cf = &m->cfg;
    int H = o->res ? o->res : cf->img_resolution, C = cf->in_channels;
    size_t img = (size_t)C * H * H;
    int fdim = 0;
    for (int l = 0, tl = cf->n_levels - 1; l <= cf->n_levels; l++) {
        if (l < cf->n_levels && (H >> l) == 8) tl = l;
        if (l == cf->n_levels) fdim = (H >> tl) * (H >> tl);
    }
    for (int i = 0; i < n; i++) {
        double s = sigma[i], c_skip, c_out, c_in, c_noise;
        /* models.md §4.3; "eps" is the ε-net form of §3.9 = VPPrecond's coefficients. */
        if (!strcmp(cf->precond, "edm")) {
            double sd = cf->sigma_data;
            c_skip = sd * sd / (s * s + sd * sd);
            c_out = s * sd / sqrt(s * s + sd * sd);
            c_in = 1 / sqrt(s * s + sd * sd);
            c_noise = log(s) / 4;
        } else if (!strcmp(cf->precond, "ve")) {
            c_skip = 1, c_out = s, c_in = 1, c_noise = log(s / 2);
        } else {
            double t = (sqrt(0.1 * 0.1 + 2 * 19.9 * log(1 + s * s)) - 0.1) / 19.9;
            c_skip = 1, c_out = -s, c_in = 1 / sqrt(s * s + 1), c_noise = 999 * t;
        }
        if (o->round_c_noise) c_noise = (float)c_noise;
        ten xin = mk(C, H);
        for (size_t j = 0; j < img; j++) xin.d[j] = c_in * x[i * img + j];
        ten F = songunet(&c, &xin, c_noise, labels ? labels + (size_t)i * cf->label_dim : NULL, o,
                         o->feature ? o->feature + (size_t)i * fdim : NULL);
        for (size_t j = 0; j < img; j++) out[i * img + j] = c_skip * x[i * img + j] + c_out * F.d[j];
        free(xin.d);
        free(F.d);
    }
    free(c.own);
    return c.fail ? -1 : 0;
}
