/* ref_songunet.c — naive double-precision EDM U-Net denoiser for tests (see ref_songunet.h).
 *
 * One image at a time, every tensor a fresh malloc'd [C][H][W] array, every layer a plain loop
 * written from EDM's training/networks.py: GroupNorm min(32, C/4) groups with biased variance,
 * PyTorch cross-correlation with zero padding, resampling as the depthwise (transposed) conv with
 * the resample_filter f⊗f/(Σf)² ([1,1]: 2x2 average / nearest x2), UNetBlock with its switches
 * (SongUNet: one head, skip_scale √½, eps 1e-6, resample_proj; ADM: adaptive scale/shift,
 * C/64 heads, skip_scale 1, eps 1e-5, kernel-0 resampling skips), the SongUNet walk (positional
 * or Fourier embedding, standard or residual encoder) and the DhariwalUNet walk with their skip
 * stacks, and the EDM/VP/VE/iDDPM preconditioners (iDDPM's σ table in double).
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
    /* block switches of the architecture being evaluated */
    int adaptive, resample_proj, adm;
    double skip_scale, eps;
    double f[4];
    int K;
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
        const unet_tensor_info *t = &c->m->tensors[i];
        if (strcmp(t->name, name)) continue;
        if (t->numel != numel) {
            fprintf(stderr, "ref: tensor %s has %zu elements, expected %zu\n", name, t->numel, numel);
            c->fail = 1;
            return NULL;
        }
        return c->params + t->offset;
    }
    for (int i = 0; i < c->m->n_buffers; i++) {   /* FourierEmbedding freqs: a buffer */
        const unet_tensor_info *t = &c->m->buffers[i];
        if (strcmp(t->name, name) || t->numel != numel) continue;
        static double buf[4096];
        for (size_t j = 0; j < numel && j < 4096; j++) buf[j] = c->m->bufs[t->offset + j];
        return buf;
    }
    fprintf(stderr, "ref: tensor %s missing\n", name);
    c->fail = 1;
    return NULL;
}

static double silu(double v) { return v / (1 + exp(-v)); }

static ten groupnorm(ctx *c, const ten *x, const char *mod, double eps) {
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
                o.d[ch * L + i] = (x->d[ch * L + i] - mu) / sqrt(var + eps) * g[ch] + b[ch];
    }
    return o;
}

static void silu_inplace(ten *t) {
    for (size_t i = 0; i < (size_t)t->C * t->H * t->H; i++) t->d[i] = silu(t->d[i]);
}

/* Conv with zero padding p (output H + 2p − k + 1). */
static ten conv_pad(ctx *c, const ten *x, int OC, int k, int p, const char *mod) {
    const double *w = P(c, (size_t)OC * x->C * k * k, "%s.weight", mod);
    const double *b = P(c, OC, "%s.bias", mod);
    int H = x->H, Ho = H + 2 * p - k + 1;
    ten o = mk(OC, Ho);
    if (!w || !b) return o;
    /* out[oc,y,x] = b[oc] + Σ_{ic,ki,kj} w[oc,ic,ki,kj]·in[ic, y+ki-p, x+kj-p] (zero outside). */
    for (int oc = 0; oc < OC; oc++) {
        double *dst = o.d + (size_t)oc * Ho * Ho;
        for (int i = 0; i < Ho * Ho; i++) dst[i] = b[oc];
        for (int ic = 0; ic < x->C; ic++)
            for (int ki = 0; ki < k; ki++)
                for (int kj = 0; kj < k; kj++) {
                    double wv = w[((oc * x->C + ic) * k + ki) * k + kj];
                    for (int y = 0; y < Ho; y++) {
                        int yy = y + ki - p;
                        if (yy < 0 || yy >= H) continue;
                        for (int xx = 0; xx < Ho; xx++) {
                            int xs = xx + kj - p;
                            if (xs >= 0 && xs < H) dst[y * Ho + xx] += wv * x->d[((size_t)ic * H + yy) * H + xs];
                        }
                    }
                }
    }
    return o;
}

static ten conv(ctx *c, const ten *x, int OC, int k, const char *mod) {
    return conv_pad(c, x, OC, k, k / 2, mod);
}

/* EDM Conv2d resampling with g = f⊗f/(Σf)²: down = depthwise conv with g, stride 2, padding
 * pad; up = depthwise transposed conv with 4g, stride 2, padding pad (scatter form). */
static ten resample_pad(const ctx *c, const ten *x, int up, int pad) {
    int K = c->K, H = x->H;
    double g[16], s = 0;
    for (int i = 0; i < K; i++) s += c->f[i];
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) g[i * K + j] = (up ? 4 : 1) * c->f[i] * c->f[j] / (s * s);
    int Ho = up ? 2 * (H - 1) - 2 * pad + K : (H + 2 * pad - K) / 2 + 1;
    ten o = mk(x->C, Ho);
    for (int ch = 0; ch < x->C; ch++) {
        const double *src = x->d + (size_t)ch * H * H;
        double *dst = o.d + (size_t)ch * Ho * Ho;
        if (up) {
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < H; xx++)
                    for (int i = 0; i < K; i++)
                        for (int j = 0; j < K; j++) {
                            int y = 2 * yy - pad + i, xo = 2 * xx - pad + j;
                            if (y >= 0 && y < Ho && xo >= 0 && xo < Ho)
                                dst[y * Ho + xo] += g[i * K + j] * src[yy * H + xx];
                        }
        } else {
            for (int y = 0; y < Ho; y++)
                for (int xo = 0; xo < Ho; xo++)
                    for (int i = 0; i < K; i++)
                        for (int j = 0; j < K; j++) {
                            int yy = 2 * y - pad + i, xx = 2 * xo - pad + j;
                            if (yy >= 0 && yy < H && xx >= 0 && xx < H)
                                dst[y * Ho + xo] += g[i * K + j] * src[yy * H + xx];
                        }
        }
    }
    return o;
}

static ten resample(const ctx *c, const ten *x, int up) { return resample_pad(c, x, up, (c->K - 1) / 2); }

static ten copy(const ten *x) {
    ten o = mk(x->C, x->H);
    memcpy(o.d, x->d, sizeof(double) * x->C * x->H * x->H);
    return o;
}

/* EDM UNetBlock.forward with the context's switches. */
static ten unet_block(ctx *c, const ten *x, int cout, const double *emb, int E, int up, int down,
                      int attn, const char *name) {
    char mod[96];
    const double s = c->skip_scale;
    int heads = c->adm ? cout / 64 : 1;
    if (heads == 0) attn = 0;   /* EDM: num_heads = cout // 64 = 0 means no attention */
    snprintf(mod, sizeof mod, "%s.norm0", name);
    ten h = groupnorm(c, x, mod, c->eps);
    silu_inplace(&h);
    if (up || down) { ten t = resample(c, &h, up); free(h.d); h = t; }
    snprintf(mod, sizeof mod, "%s.conv0", name);
    ten h1 = conv(c, &h, cout, 3, mod);
    free(h.d);
    int np = cout * (c->adaptive ? 2 : 1);
    const double *aw = P(c, (size_t)np * E, "%s.affine.weight", name);
    const double *ab = P(c, np, "%s.affine.bias", name);
    double *pr = calloc(np, sizeof(double));
    for (int o = 0; aw && ab && o < np; o++) {
        pr[o] = ab[o];
        for (int j = 0; j < E; j++) pr[o] += aw[o * E + j] * emb[j];
    }
    int L = h1.H * h1.H;
    ten h2;
    snprintf(mod, sizeof mod, "%s.norm1", name);
    if (c->adaptive) {
        /* silu(shift + norm1(x)·(scale + 1)), [scale | shift] = affine(emb). */
        h2 = groupnorm(c, &h1, mod, c->eps);
        for (int o = 0; o < cout; o++)
            for (int i = 0; i < L; i++) h2.d[o * L + i] = pr[cout + o] + h2.d[o * L + i] * (pr[o] + 1);
    } else {
        for (int o = 0; o < cout; o++)
            for (int i = 0; i < L; i++) h1.d[o * L + i] += pr[o];
        h2 = groupnorm(c, &h1, mod, c->eps);
    }
    free(pr);
    free(h1.d);
    silu_inplace(&h2);
    snprintf(mod, sizeof mod, "%s.conv1", name);
    ten y = conv(c, &h2, cout, 3, mod);
    free(h2.d);
    ten sk;
    if (cout != x->C || up || down) {
        ten rs = (up || down) ? resample(c, x, up) : copy(x);
        if (c->resample_proj || cout != x->C) {
            snprintf(mod, sizeof mod, "%s.skip", name);
            sk = conv(c, &rs, cout, 1, mod);
            free(rs.d);
        } else {
            sk = rs;
        }
    } else {
        sk = copy(x);
    }
    for (int i = 0; i < cout * L; i++) y.d[i] = (y.d[i] + sk.d[i]) * s;
    free(sk.d);
    if (!attn) return y;
    snprintf(mod, sizeof mod, "%s.norm2", name);
    ten n2 = groupnorm(c, &y, mod, c->eps);
    snprintf(mod, sizeof mod, "%s.qkv", name);
    ten qkv = conv(c, &n2, 3 * cout, 1, mod);
    free(n2.d);
    /* qkv.reshape(heads, Ch, 3, L): q, k, v of channel ch of head hd are qkv channels
     * hd·3Ch + 3ch + {0,1,2}; output channel hd·Ch + ch. */
    int Ch = cout / heads;
    ten a = mk(cout, y.H);
    double *w = malloc(sizeof(double) * L);
    for (int hd = 0; hd < heads; hd++) {
        const double *q = qkv.d + (size_t)hd * 3 * Ch * L;
        for (int i = 0; i < L; i++) {
            double mx = -INFINITY, z = 0;
            for (int l = 0; l < L; l++) {
                double dot = 0;
                for (int ch = 0; ch < Ch; ch++) dot += q[(3 * ch) * L + i] * q[(3 * ch + 1) * L + l];
                w[l] = dot / sqrt((double)Ch);
                if (w[l] > mx) mx = w[l];
            }
            for (int l = 0; l < L; l++) z += (w[l] = exp(w[l] - mx));
            for (int ch = 0; ch < Ch; ch++) {
                double acc = 0;
                for (int l = 0; l < L; l++) acc += w[l] / z * q[(3 * ch + 2) * L + l];
                a.d[(hd * Ch + ch) * L + i] = acc;
            }
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

static double lin(ctx *c, double *out, const double *in, int IN, int OUT, int bias, const char *mod) {
    const double *w = P(c, (size_t)OUT * IN, "%s.weight", mod);
    const double *b = bias ? P(c, OUT, "%s.bias", mod) : NULL;
    for (int j = 0; w && j < OUT; j++) {
        double acc = b ? b[j] : 0;
        for (int k = 0; k < IN; k++) acc += w[j * IN + k] * in[k];
        out[j] = acc;
    }
    return 0;
}

/* The mapping network of SongUNet (adm = 0) or DhariwalUNet (adm = 1): emb [E]. */
static void mapping(ctx *c, double *emb, double cnoise, const double *label) {
    const pd_unet_config *cf = &c->m->cfg;
    int mc = cf->model_channels, E = mc * cf->channel_mult_emb, ld = cf->label_dim;
    int Cn = c->adm ? mc : mc * cf->channel_mult_noise, half = Cn / 2;
    double *e = calloc(Cn, sizeof(double)), *e1 = calloc(E, sizeof(double));
    double *t = calloc(E > Cn ? E : Cn, sizeof(double)), *lab = calloc(ld ? ld : 1, sizeof(double));
    if (!strcmp(cf->embedding_type, "fourier")) {
        /* FourierEmbedding: [cos(2π f c) | sin(2π f c)], then SongUNet's swap to [sin | cos]. */
        const double *fr = P(c, half, "map_noise.freqs");
        for (int i = 0; fr && i < half; i++) {
            e[i] = sin(2 * M_PI * fr[i] * cnoise);
            e[half + i] = cos(2 * M_PI * fr[i] * cnoise);
        }
    } else {
        /* PositionalEmbedding: [cos | sin] of freqs (1/10000)^(i/(half − endpoint)); SongUNet
         * (endpoint) swaps the halves, ADM (no endpoint) does not. */
        for (int i = 0; i < half; i++) {
            double f = pow(1.0 / 10000, (double)i / (half - (c->adm ? 0 : 1)));
            e[c->adm ? i : half + i] = cos(cnoise * f);
            e[c->adm ? half + i : i] = sin(cnoise * f);
        }
    }
    for (int k = 0; k < ld; k++) lab[k] = label ? label[k] : 0;
    if (!c->adm && ld) {
        for (int k = 0; k < ld; k++) lab[k] *= sqrt((double)ld);
        lin(c, t, lab, ld, Cn, 1, "map_label");
        for (int j = 0; j < Cn; j++) e[j] += t[j];
    }
    lin(c, e1, e, Cn, E, 1, "map_layer0");
    for (int j = 0; j < E; j++) e1[j] = silu(e1[j]);
    lin(c, emb, e1, E, E, 1, "map_layer1");
    if (c->adm && ld) {
        lin(c, t, lab, ld, E, 0, "map_label");
        for (int j = 0; j < E; j++) emb[j] += t[j];
    }
    for (int j = 0; j < E; j++) emb[j] = silu(emb[j]);
    free(e); free(e1); free(t); free(lab);
}

/* F(x_in, c_noise, label) for one image: EDM SongUNet.forward / DhariwalUNet.forward. */
static ten unet(ctx *c, const ten *xin, double cnoise, const double *label, const ref_opts *o,
                double *feature) {
    const pd_unet_config *cf = &c->m->cfg;
    int mc = cf->model_channels, E = mc * cf->channel_mult_emb;
    int R = cf->img_resolution, L = cf->n_levels;
    int residual = !strcmp(cf->encoder_type, "residual");
    double *emb = calloc(E, sizeof(double));
    mapping(c, emb, cnoise, label);

    /* Encoder with the skip stack. */
    ten skips[128];
    int ns = 0;
    char name[96];
    ten x, aux = copy(xin);
    int cout = cf->in_channels;
    for (int l = 0; l < L; l++) {
        int r = R >> l;
        if (l == 0) {
            snprintf(name, sizeof name, "enc.%dx%d_conv", r, r);
            cout = c->adm ? mc * cf->channel_mult[0] : mc;
            x = conv(c, xin, cout, 3, name);
        } else {
            snprintf(name, sizeof name, "enc.%dx%d_down", r, r);
            ten t = unet_block(c, &x, cout, emb, E, 0, 1, 0, name);
            x = t;
            if (residual) {
                /* aux_residual: 3x3 conv padded 2, then the filter with stride 2, no padding. */
                snprintf(name, sizeof name, "enc.%dx%d_aux_residual", r, r);
                ten cv = conv_pad(c, &aux, cout, 3, 2, name);
                ten rs = resample_pad(c, &cv, 0, 0);
                for (size_t j = 0; j < (size_t)cout * x.H * x.H; j++)
                    x.d[j] = (x.d[j] + rs.d[j]) / sqrt(2.0);
                free(cv.d); free(rs.d); free(aux.d);
                aux = copy(&x);
            }
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
    free(aux.d);
    int nskips = ns;
    /* Feature tap: the last encoder output of the level running at 8x8, else of the lowest. */
    if (feature) {
        int tl = L - 1;
        for (int l = 0; l < L; l++)
            if ((xin->H >> l) == 8) tl = l;
        int h = xin->H >> tl;
        int s = (tl + 1) * (cf->num_blocks + 1) - 1;
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
        int at = in_list(cf->attn_resolutions, cf->n_attn, r);
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
            /* SongUNet attends on a level's last block only, ADM on every block. */
            x = unet_block(c, &cat, cout, emb, E, 0, 0, at && (c->adm || i == cf->num_blocks), name);
            free(cat.d);
        }
    }
    snprintf(name, sizeof name, c->adm ? "out_norm" : "dec.%dx%d_aux_norm", R, R);
    ten t = groupnorm(c, &x, name, c->adm ? 1e-5 : 1e-6);
    silu_inplace(&t);
    free(x.d);
    snprintf(name, sizeof name, c->adm ? "out_conv" : "dec.%dx%d_aux_conv", R, R);
    x = conv(c, &t, cf->out_channels, 3, name);
    free(t.d);
    for (int i = 0; i < nskips; i++) free(skips[i].d);
    free(emb);
    return x;
}

/* iDDPM's σ table (Nichol & Dhariwal 2021; EDM iDDPMPrecond), in double. */
static int iddpm_index(const pd_unet_config *cf, double s) {
    int M = cf->M, best = M;
    double u = 0, bd = fabs(s);
    for (int j = M; j > 0; j--) {
        double a0 = sin(0.5 * M_PI * (j - 1) / M / (cf->C_2 + 1)), a1 = sin(0.5 * M_PI * j / M / (cf->C_2 + 1));
        double r = fmax(a0 * a0 / (a1 * a1), cf->C_1);
        u = sqrt((u * u + 1) / r - 1);
        if (fabs(s - u) <= bd) { bd = fabs(s - u); best = j - 1; }
    }
    return best;
}

int ref_denoise(const pd_model *m, double *out, const double *x, const double *sigma,
                const double *labels, int n, const ref_opts *o) {
    static const ref_opts none;
    if (!o) o = &none;
    const pd_unet_config *cf = &m->cfg;
    int adm = !strcmp(cf->arch, "adm");
    ctx c = {m, o->params, NULL, 0, adm, !adm, adm, adm ? 1.0 : sqrt(0.5), adm ? 1e-5 : 1e-6,
             {0}, cf->n_resample_filter};
    for (int i = 0; i < c.K; i++) c.f[i] = cf->resample_filter[i];
    if (!c.params) {
        c.own = malloc(sizeof(double) * m->n_params);
        for (size_t i = 0; i < m->n_params; i++) c.own[i] = m->params[i];
        c.params = c.own;
    }
    int H = o->res ? o->res : cf->img_resolution, C = cf->in_channels;
    size_t img = (size_t)C * H * H;
    int fdim = 0;
    for (int l = 0, tl = cf->n_levels - 1; l <= cf->n_levels; l++) {
        if (l < cf->n_levels && (H >> l) == 8) tl = l;
        if (l == cf->n_levels) fdim = (H >> tl) * (H >> tl);
    }
    for (int i = 0; i < n; i++) {
        double s = sigma[i], c_skip, c_out, c_in, c_noise;
        /* EDM Table 1; "eps" is the ε-net form = VPPrecond's coefficients. */
        if (!strcmp(cf->precond, "edm")) {
            double sd = cf->sigma_data;
            c_skip = sd * sd / (s * s + sd * sd);
            c_out = s * sd / sqrt(s * s + sd * sd);
            c_in = 1 / sqrt(s * s + sd * sd);
            c_noise = log(s) / 4;
        } else if (!strcmp(cf->precond, "ve")) {
            c_skip = 1, c_out = s, c_in = 1, c_noise = log(s / 2);
        } else if (!strcmp(cf->precond, "iddpm")) {
            c_skip = 1, c_out = -s, c_in = 1 / sqrt(s * s + 1);
            c_noise = cf->M - 1 - iddpm_index(cf, s);
        } else {
            double bm = cf->beta_min, bd = cf->beta_d;
            double t = (sqrt(bm * bm + 2 * bd * log(1 + s * s)) - bm) / bd;
            c_skip = 1, c_out = -s, c_in = 1 / sqrt(s * s + 1), c_noise = (cf->M - 1) * t;
        }
        if (o->round_c_noise) c_noise = (float)c_noise;
        ten xin = mk(C, H);
        for (size_t j = 0; j < img; j++) xin.d[j] = c_in * x[i * img + j];
        ten F = unet(&c, &xin, c_noise, labels ? labels + (size_t)i * cf->label_dim : NULL, o,
                     o->feature ? o->feature + (size_t)i * fdim : NULL);
        /* iDDPM's F has 2·C channels; D uses the first C. */
        for (size_t j = 0; j < img; j++) out[i * img + j] = c_skip * x[i * img + j] + c_out * F.d[j];
        free(xin.d);
        free(F.d);
    }
    free(c.own);
    return c.fail ? -1 : 0;
}
