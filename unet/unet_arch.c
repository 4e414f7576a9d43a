/* unet_arch.c — EDM SongUNet's module walk (models.md §4.5): the block list and the canonical
 * tensor table (EDMPrecond state-dict names with the "model." prefix, shapes, arena offsets).
 *
 * The walk mirrors SongUNet.__init__ line by line: mapping (map_label iff label_dim > 0,
 * map_augment iff augment_dim > 0, map_layer0/1), encoder (level-0 conv, then per level a down
 * block for levels > 0 and num_blocks blocks; every module pushes one skip), decoder (in0 with
 * attention + in1 at the lowest level, up elsewhere; num_blocks + 1 blocks that each pop one
 * skip, attention only on the last of a level), then aux_norm/aux_conv at level 0. Within a
 * block the tensor order is PyTorch's registration order: norm0, conv0, affine, norm1, conv1,
 * skip, norm2, qkv, proj. Buffers (resample_filter) are not parameters and are not in the table.
 */
#include "unet/unet_arch.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pd_tensor_info *t;
    int n, cap;
    size_t off;
    int oom;
} table;

/* Adds "model.<module>.<leaf>" with the given shape; returns its index. */
static int add(table *tb, const char *module, const char *leaf, int ndim, int d0, int d1, int d2,
               int d3) {
    if (tb->n == tb->cap) {
        int cap = tb->cap ? 2 * tb->cap : 256;
        pd_tensor_info *t = realloc(tb->t, cap * sizeof *t);
        if (!t) { tb->oom = 1; return -1; }
        tb->t = t;
        tb->cap = cap;
    }
    pd_tensor_info *ti = &tb->t[tb->n];
    memset(ti, 0, sizeof *ti);
    snprintf(ti->name, sizeof ti->name, "model.%s.%s", module, leaf);
    int d[4] = {d0, d1, d2, d3};
    ti->ndim = ndim;
    ti->numel = 1;
    for (int i = 0; i < ndim; i++) { ti->shape[i] = d[i]; ti->numel *= (size_t)d[i]; }
    ti->offset = tb->off;
    tb->off += ti->numel;
    return tb->n++;
}

static int add_linear(table *tb, const char *module, int in, int out, int bias) {
    int w = add(tb, module, "weight", 2, out, in, 0, 0);
    if (bias) add(tb, module, "bias", 1, out, 0, 0, 0);
    return w;
}

static int add_conv(table *tb, const char *module, int in, int out, int k) {
    int w = add(tb, module, "weight", 4, out, in, k, k);
    add(tb, module, "bias", 1, out, 0, 0, 0);
    return w;
}

static int add_norm(table *tb, const char *module, int c) {
    int w = add(tb, module, "weight", 1, c, 0, 0, 0);
    add(tb, module, "bias", 1, c, 0, 0, 0);
    return w;
}

/* UNetBlock.__init__ (models.md §4.4) with SongUNet's block_kwargs. */
static void add_block(table *tb, unet_block *b, int emb_ch) {
    char m[96];
#define SUB(s) (snprintf(m, sizeof m, "%s.%s", b->name, s), m)
    b->has_skip = b->cout != b->cin || b->up || b->down;
    b->t_norm0 = add_norm(tb, SUB("norm0"), b->cin);
    b->t_conv0 = add_conv(tb, SUB("conv0"), b->cin, b->cout, 3);
    b->t_affine = add_linear(tb, SUB("affine"), emb_ch, b->cout, 1);
    b->t_norm1 = add_norm(tb, SUB("norm1"), b->cout);
    b->t_conv1 = add_conv(tb, SUB("conv1"), b->cout, b->cout, 3);
    b->t_skip = b->has_skip ? add_conv(tb, SUB("skip"), b->cin, b->cout, 1) : -1;
    b->t_norm2 = b->t_qkv = b->t_proj = -1;
    if (b->attn) {
        b->t_norm2 = add_norm(tb, SUB("norm2"), b->cout);
        b->t_qkv = add_conv(tb, SUB("qkv"), b->cout, 3 * b->cout, 1);
        b->t_proj = add_conv(tb, SUB("proj"), b->cout, b->cout, 1);
    }
#undef SUB
}

static int has_attn(const pd_unet_config *c, int level) {
    for (int i = 0; i < c->n_attn; i++)
        if (c->attn_resolutions[i] == (c->img_resolution >> level)) return 1;
    return 0;
}

int unet_arch_build(unet_arch **out, pd_tensor_info **tensors, int *n_tensors, size_t *n_params,
                    const pd_unet_config *c, pd_error *err) {
    *out = NULL;
    *tensors = NULL;
    unet_arch *a = calloc(1, sizeof *a);
    int L = c->n_levels, nb = c->num_blocks;
    if (!a) return pd_fail(err, "out of memory building the U-Net");
    a->n_levels = L;
    a->emb_ch = c->model_channels * c->channel_mult_emb;
    a->noise_ch = c->model_channels * c->channel_mult_noise;
    a->n_skips = L * (nb + 1);
    if (a->n_skips > UNET_MAX_SKIPS) {
        int ns = a->n_skips;
        free(a);
        return pd_fail(err, "config: %d skips exceed the supported %d", ns, UNET_MAX_SKIPS);
    }
    a->enc = calloc(L * (nb + 1), sizeof *a->enc);
    a->dec = calloc(L * (nb + 2) + 1, sizeof *a->dec);
    table tb = {0};
    if (!a->enc || !a->dec) goto oom;

    /* Mapping network. */
    a->t_map_label = c->label_dim ? add_linear(&tb, "map_label", c->label_dim, a->noise_ch, 1) : -1;
    a->t_map_augment = c->augment_dim ? add_linear(&tb, "map_augment", c->augment_dim, a->noise_ch, 0)
                                      : -1;
    a->t_map0 = add_linear(&tb, "map_layer0", a->noise_ch, a->emb_ch, 1);
    a->t_map1 = add_linear(&tb, "map_layer1", a->emb_ch, a->emb_ch, 1);

    /* Encoder. */
    char name[64];
    int cout = c->in_channels, ns = 0;
    for (int l = 0; l < L; l++) {
        int r = c->img_resolution >> l;
        if (l == 0) {
            snprintf(name, sizeof name, "enc.%dx%d_conv", r, r);
            a->t_enc_conv = add_conv(&tb, name, cout, c->model_channels, 3);
            cout = c->model_channels;
            a->skip_src[ns] = -1;
        } else {
            unet_block *b = &a->enc[a->n_enc];
            snprintf(b->name, sizeof b->name, "enc.%dx%d_down", r, r);
            b->cin = b->cout = cout;
            b->down = 1;
            b->level_in = l - 1;
            b->level_out = l;
            b->pop = -1;
            add_block(&tb, b, a->emb_ch);
            a->skip_src[ns] = a->n_enc++;
        }
        a->skip_ch[ns] = cout;
        a->skip_level[ns++] = l;
        for (int i = 0; i < nb; i++) {
            unet_block *b = &a->enc[a->n_enc];
            snprintf(b->name, sizeof b->name, "enc.%dx%d_block%d", r, r, i);
            b->cin = cout;
            b->cout = cout = c->model_channels * c->channel_mult[l];
            b->attn = has_attn(c, l);
            b->level_in = b->level_out = l;
            b->pop = -1;
            add_block(&tb, b, a->emb_ch);
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
                b->cin = b->cout = cout;
                b->attn = k == 0;
                b->level_in = b->level_out = l;
                b->pop = -1;
                add_block(&tb, b, a->emb_ch);
            }
        } else {
            unet_block *b = &a->dec[a->n_dec++];
            snprintf(b->name, sizeof b->name, "dec.%dx%d_up", r, r);
            b->cin = b->cout = cout;
            b->up = 1;
            b->level_in = l + 1;
            b->level_out = l;
            b->pop = -1;
            add_block(&tb, b, a->emb_ch);
        }
        for (int i = 0; i <= nb; i++) {
            unet_block *b = &a->dec[a->n_dec++];
            snprintf(b->name, sizeof b->name, "dec.%dx%d_block%d", r, r, i);
            b->pop = --top;
            b->cin = cout + a->skip_ch[b->pop];
            b->cout = cout = c->model_channels * c->channel_mult[l];
            b->attn = i == nb && has_attn(c, l);
            b->level_in = b->level_out = l;
            add_block(&tb, b, a->emb_ch);
        }
        if (l == 0) {
            snprintf(name, sizeof name, "dec.%dx%d_aux_norm", r, r);
            a->t_aux_norm = add_norm(&tb, name, cout);
            snprintf(name, sizeof name, "dec.%dx%d_aux_conv", r, r);
            a->t_aux_conv = add_conv(&tb, name, cout, c->out_channels, 3);
        }
    }
    if (tb.oom) goto oom;
    *out = a;
    *tensors = tb.t;
    *n_tensors = tb.n;
    *n_params = tb.off;
    return 0;
oom:
    free(tb.t);
    unet_arch_free(a);
    return pd_fail(err, "out of memory building the U-Net");
}

void unet_arch_free(unet_arch *a) {
    if (!a) return;
    free(a->enc);
    free(a->dec);
    free(a);
}
