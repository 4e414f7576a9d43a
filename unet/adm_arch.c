/* adm_arch.c — EDM DhariwalUNet's module walk (training/networks.py DhariwalUNet.__init__; the
 * ADM network of Dhariwal & Nichol 2021): the block list and the canonical tensor table.
 *
 * Mapping: PositionalEmbedding(model_channels) without endpoint and without the [sin|cos] swap,
 * map_augment (no bias) iff augment_dim > 0, map_layer0/1, then map_label (no bias) iff
 * label_dim > 0, added after map_layer1 to the unscaled labels. Encoder: level-0 conv to
 * model_channels·channel_mult[0], a down block per level > 0, num_blocks blocks with attention
 * wherever the level's resolution is in attn_resolutions; every module pushes a skip. Decoder:
 * in0 (attention) + in1 at the lowest level, up elsewhere, num_blocks + 1 blocks each popping a
 * skip, attention on every block of an attention level; then out_norm (eps 1e-5) and out_conv.
 * Block switches: adaptive scale/shift, cout/64 heads (channels_per_head 64), skip_scale 1,
 * eps 1e-5, no resample_proj (an up/down block's skip is the [1,1] resampling alone).
 */
#include "unet/unet_arch.h"
#include <stdio.h>

/* Call after cout and attn are set: EDM gives cout/64 heads, and a block asked for attention
 * with fewer than 64 channels gets 0 heads, i.e. no attention layers at all. */
static void adm_block(unet_block *b) {
    b->heads = b->cout / 64;
    b->attn = b->attn && b->heads > 0;
    if (!b->attn) b->heads = 1;
    b->adaptive = 1;
    b->skip_scale = 1.0f;
    b->eps = 1e-5f;
    b->resample_proj = 0;
}

int adm_arch_build(unet_arch *a, arch_table *tb, const pd_unet_config *c, pd_error *err) {
    int mc = c->model_channels;
    a->emb_ch = mc * c->channel_mult_emb;
    a->noise_ch = mc;
    a->fourier = 0;
    a->pe_endpoint = 0;
    a->pe_flip = 0;
    a->label_late = 1;
    a->out_eps = 1e-5f;

    /* Mapping network, in registration order (map_label last). */
    a->t_map_augment = c->augment_dim ? at_linear(tb, "map_augment", c->augment_dim, mc, 0) : -1;
    a->t_map0 = at_linear(tb, "map_layer0", mc, a->emb_ch, 1);
    a->t_map1 = at_linear(tb, "map_layer1", a->emb_ch, a->emb_ch, 1);
    a->t_map_label = c->label_dim ? at_linear(tb, "map_label", c->label_dim, a->emb_ch, 0) : -1;
    a->t_map_label_b = -1;

    walk_spec ws = {adm_block, mc * c->channel_mult[0], 0, 1};
    arch_walk(a, tb, c, &ws);
    int cout = a->dec[a->n_dec - 1].cout;
    /* out_norm/out_conv are top-level modules: "model.out_norm.weight". */
    a->t_out_norm = at_norm(tb, "out_norm", cout);
    a->t_out_conv = at_conv(tb, "out_conv", cout, c->out_channels, 3);
    (void)err;
    return 0;
}
