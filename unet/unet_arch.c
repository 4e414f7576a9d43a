/* unet_arch.c — the tensor-table builder shared by the U-Net walks (songunet_arch.c,
 * adm_arch.c): state-dict names ("model." prefix), shapes and arena offsets of parameters, the
 * buffer table (resample filters, FourierEmbedding freqs, iDDPM's u), and EDM's UNetBlock in
 * registration order (training/networks.py UNetBlock.__init__).
 */
#include "unet/unet_arch.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unet_tensor_info *grow(unet_tensor_info **t, int n, int *cap, arch_table *tb) {
    if (n == *cap) {
        int c = *cap ? 2 * *cap : 256;
        unet_tensor_info *p = realloc(*t, c * sizeof *p);
        if (!p) { tb->oom = 1; return NULL; }
        *t = p;
        *cap = c;
    }
    memset(&(*t)[n], 0, sizeof **t);
    return &(*t)[n];
}

static void set_shape(unet_tensor_info *ti, int ndim, int d0, int d1, int d2, int d3) {
    int d[4] = {d0, d1, d2, d3};
    ti->ndim = ndim;
    ti->numel = 1;
    for (int i = 0; i < ndim; i++) { ti->shape[i] = d[i]; ti->numel *= (size_t)d[i]; }
}

int at_add(arch_table *tb, const char *module, const char *leaf, int ndim, int d0, int d1, int d2,
           int d3) {
    unet_tensor_info *ti = grow(&tb->t, tb->n, &tb->cap, tb);
    if (!ti) return -1;
    snprintf(ti->name, sizeof ti->name, "model.%s.%s", module, leaf);
    set_shape(ti, ndim, d0, d1, d2, d3);
    ti->offset = tb->off;
    tb->off += ti->numel;
    return tb->n++;
}

int at_linear(arch_table *tb, const char *module, int in, int out, int bias) {
    int w = at_add(tb, module, "weight", 2, out, in, 0, 0);
    if (bias) at_add(tb, module, "bias", 1, out, 0, 0, 0);
    return w;
}

int at_conv(arch_table *tb, const char *module, int in, int out, int k) {
    int w = at_add(tb, module, "weight", 4, out, in, k, k);
    at_add(tb, module, "bias", 1, out, 0, 0, 0);
    return w;
}

int at_norm(arch_table *tb, const char *module, int c) {
    int w = at_add(tb, module, "weight", 1, c, 0, 0, 0);
    at_add(tb, module, "bias", 1, c, 0, 0, 0);
    return w;
}

int at_buffer(arch_table *tb, const char *name, int ndim, int d0, int d1, int d2, int d3,
              const float *data) {
    int bcap = tb->bcap;
    unet_tensor_info *ti = grow(&tb->b, tb->nb, &bcap, tb);
    if (!ti) return -1;
    if (bcap != tb->bcap) {
        float **p = realloc(tb->bdata, bcap * sizeof *p);
        if (!p) { tb->oom = 1; return -1; }
        tb->bdata = p;
        tb->bcap = bcap;
    }
    snprintf(ti->name, sizeof ti->name, "%s", name);
    set_shape(ti, ndim, d0, d1, d2, d3);
    ti->offset = tb->boff;
    tb->boff += ti->numel;
    tb->bdata[tb->nb] = NULL;
    if (data) {
        tb->bdata[tb->nb] = malloc(ti->numel * sizeof(float));
        if (!tb->bdata[tb->nb]) { tb->oom = 1; return -1; }
        memcpy(tb->bdata[tb->nb], data, ti->numel * sizeof(float));
    }
    return tb->nb++;
}

void at_filter(arch_table *tb, const unet_arch *a, const char *module) {
    float f[16];
    int K = a->fir ? a->fir_K : 2;
    double s = 0;
    const float *taps = a->fir_f;
    static const float one[2] = {1, 1};
    if (!a->fir) taps = one;
    for (int i = 0; i < K; i++) s += taps[i];
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) f[i * K + j] = (float)(taps[i] * taps[j] / (s * s));
    char name[128];
    snprintf(name, sizeof name, "model.%s.resample_filter", module);
    at_buffer(tb, name, 4, 1, 1, K, K, f);
}

void at_block(arch_table *tb, const unet_arch *a, unet_block *b) {
    char m[96];
#define SUB(s) (snprintf(m, sizeof m, "%s.%s", b->name, s), m)
    b->has_skip = b->cout != b->cin || b->up || b->down;
    b->t_norm0 = at_norm(tb, SUB("norm0"), b->cin);
    b->t_conv0 = at_conv(tb, SUB("conv0"), b->cin, b->cout, 3);
    if (b->up || b->down) at_filter(tb, a, SUB("conv0"));
    b->t_affine = at_linear(tb, SUB("affine"), a->emb_ch, b->cout * (b->adaptive ? 2 : 1), 1);
    b->t_norm1 = at_norm(tb, SUB("norm1"), b->cout);
    b->t_conv1 = at_conv(tb, SUB("conv1"), b->cout, b->cout, 3);
    b->t_skip = -1;
    if (b->has_skip) {
        /* EDM: kernel = 1 if resample_proj or out != in, else 0 (resampling only, no weight). */
        if (b->resample_proj || b->cout != b->cin)
            b->t_skip = at_conv(tb, SUB("skip"), b->cin, b->cout, 1);
        if (b->up || b->down) at_filter(tb, a, SUB("skip"));
    }
    b->t_norm2 = b->t_qkv = b->t_proj = -1;
    if (b->attn) {
        b->t_norm2 = at_norm(tb, SUB("norm2"), b->cout);
        b->t_qkv = at_conv(tb, SUB("qkv"), b->cout, 3 * b->cout, 1);
        b->t_proj = at_conv(tb, SUB("proj"), b->cout, b->cout, 1);
    }
#undef SUB
}

int arch_has_attn(const pd_unet_config *c, int level) {
    for (int i = 0; i < c->n_attn; i++)
        if (c->attn_resolutions[i] == (c->img_resolution >> level)) return 1;
    return 0;
}

void arch_walk(unet_arch *a, arch_table *tb, const pd_unet_config *c, const walk_spec *ws) {
    int L = c->n_levels, nb = c->num_blocks, mc = c->model_channels;
    char name[64];
    int cout = c->in_channels, caux = c->in_channels, ns = 0;
#define BLOCK(b, ci, co, at, lin, lout, popi)                                                    \
    do {                                                                                          \
        (b)->cin = (ci);                                                                          \
        (b)->cout = (co);                                                                         \
        (b)->attn = (at);                                                                         \
        (b)->level_in = (lin);                                                                    \
        (b)->level_out = (lout);                                                                  \
        (b)->pop = (popi);                                                                        \
        (b)->t_aux_residual = -1;                                                                 \
        ws->block(b);                                                                             \
        at_block(tb, a, b);                                                                       \
    } while (0)
    for (int l = 0; l < L; l++) {
        int r = c->img_resolution >> l;
        if (l == 0) {
            snprintf(name, sizeof name, "enc.%dx%d_conv", r, r);
            a->enc_conv_out = ws->enc_conv_out;
            a->t_enc_conv = at_conv(tb, name, cout, ws->enc_conv_out, 3);
            cout = ws->enc_conv_out;
            a->skip_src[ns] = -1;
        } else {
            unet_block *b = &a->enc[a->n_enc];
            snprintf(b->name, sizeof b->name, "enc.%dx%d_down", r, r);
            b->down = 1;
            BLOCK(b, cout, cout, 0, l - 1, l, -1);
            if (ws->residual) {
                /* Conv2d(caux, cout, kernel 3, down, fused_resample): 3x3 padded 2, then the FIR. */
                snprintf(name, sizeof name, "enc.%dx%d_aux_residual", r, r);
                b->t_aux_residual = at_conv(tb, name, caux, cout, 3);
                at_filter(tb, a, name);
                b->aux_cin = caux;
                caux = cout;
            }
            a->skip_src[ns] = a->n_enc++;
        }
        a->skip_ch[ns] = cout;
        a->skip_level[ns++] = l;
        for (int i = 0; i < nb; i++) {
            unet_block *b = &a->enc[a->n_enc];
            snprintf(b->name, sizeof b->name, "enc.%dx%d_block%d", r, r, i);
            BLOCK(b, cout, mc * c->channel_mult[l], arch_has_attn(c, l), l, l, -1);
            cout = b->cout;
            a->skip_src[ns] = a->n_enc++;
            a->skip_ch[ns] = cout;
            a->skip_level[ns++] = l;
        }
    }
    /* Decoder: skips are popped last-in-first-out. */
    int top = ns;
    for (int l = L - 1; l >= 0; l--) {
        int r = c->img_resolution >> l;
        if (l == L - 1) {
            for (int k = 0; k < 2; k++) {
                unet_block *b = &a->dec[a->n_dec++];
                snprintf(b->name, sizeof b->name, "dec.%dx%d_in%d", r, r, k);
                BLOCK(b, cout, cout, k == 0, l, l, -1);
            }
        } else {
            unet_block *b = &a->dec[a->n_dec++];
            snprintf(b->name, sizeof b->name, "dec.%dx%d_up", r, r);
            b->up = 1;
            BLOCK(b, cout, cout, 0, l + 1, l, -1);
        }
        for (int i = 0; i <= nb; i++) {
            unet_block *b = &a->dec[a->n_dec++];
            snprintf(b->name, sizeof b->name, "dec.%dx%d_block%d", r, r, i);
            --top;
            BLOCK(b, cout + a->skip_ch[top], mc * c->channel_mult[l],
                  (ws->dec_attn_all || i == nb) && arch_has_attn(c, l), l, l, top);
            cout = b->cout;
        }
    }
#undef BLOCK
}

int unet_arch_build(pd_model *m, pd_error *err) {
    const pd_unet_config *c = &m->cfg;
    unet_arch *a = calloc(1, sizeof *a);
    int L = c->n_levels, nb = c->num_blocks;
    if (!a) return pd_fail(err, "out of memory building the U-Net");
    a->kind = m->ids.arch;
    a->n_levels = L;
    a->n_skips = L * (nb + 1);
    a->b_freqs = -1;
    if (a->n_skips > UNET_MAX_SKIPS) {
        int ns = a->n_skips;
        free(a);
        return pd_fail(err, "config: %d skips exceed the supported %d", ns, UNET_MAX_SKIPS);
    }
    /* resample_filter: [1,1] runs on the 2x2 average / nearest kernels; others on nn/fir.c. */
    int one_one = c->n_resample_filter == 2 && c->resample_filter[0] == 1 &&
                  c->resample_filter[1] == 1;
    a->fir = !one_one;
    a->fir_K = c->n_resample_filter;
    a->fir_pad = (c->n_resample_filter - 1) / 2;
    for (int i = 0; i < c->n_resample_filter && i < 4; i++) a->fir_f[i] = (float)c->resample_filter[i];
    a->enc = calloc(L * (nb + 1), sizeof *a->enc);
    a->dec = calloc(L * (nb + 2) + 1, sizeof *a->dec);
    arch_table tb = {0};
    int rc = 0;
    if (!a->enc || !a->dec) tb.oom = 1;
    else if (a->kind == NET_ADM) rc = adm_arch_build(a, &tb, c, err);
    else rc = songunet_arch_build(a, &tb, c, &m->ids, err);
    /* iDDPM registers its σ table as the top-level buffer "u" (EDM iDDPMPrecond). */
    if (!rc && !tb.oom && m->pc.u) at_buffer(&tb, "u", 1, m->pc.M + 1, 0, 0, 0, m->pc.u);
    if (!rc && tb.oom) rc = pd_fail(err, "out of memory building the U-Net");
    if (rc) {
        free(tb.t);
        for (int i = 0; i < tb.nb; i++) free(tb.bdata[i]);
        free(tb.b);
        free(tb.bdata);
        unet_arch_free(a);
        return -1;
    }
    m->arch = a;
    m->tensors = tb.t;
    m->n_tensors = tb.n;
    m->n_params = tb.off;
    m->buffers = tb.b;
    m->buf_fixed = tb.bdata;
    m->n_buffers = tb.nb;
    m->n_buf = tb.boff;
    return 0;
}

void unet_arch_free(void *p) {
    unet_arch *a = p;
    if (!a) return;
    free(a->enc);
    free(a->dec);
    free(a);
}
