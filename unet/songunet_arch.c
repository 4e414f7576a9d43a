/* songunet_arch.c — EDM SongUNet's module walk (training/networks.py SongUNet.__init__; Song et
 * al. 2021 DDPM++ and NCSN++): the block list and the canonical tensor table.
 *
 * The walk mirrors the constructor line by line: mapping (map_noise — FourierEmbedding's freqs
 * buffer for embedding_type fourier — map_label iff label_dim > 0, map_augment iff
 * augment_dim > 0, map_layer0/1), encoder (level-0 conv, then per level a down block for
 * levels > 0, for encoder_type residual its aux_residual conv, and num_blocks blocks; every
 * UNetBlock/conv pushes one skip, aux modules push none), decoder (in0 with attention + in1 at
 * the lowest level, up elsewhere; num_blocks + 1 blocks that each pop one skip, attention only on
 * the last of a level), then aux_norm/aux_conv at level 0 (decoder_type standard). Block
 * switches: 1 head, skip_scale sqrt(1/2), eps 1e-6, resample_proj, no adaptive scale.
 */
#include "unet/unet_arch.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static void song_block(unet_block *b) {
    b->heads = 1;
    b->adaptive = 0;
    b->skip_scale = (float)0.70710678118654752440;   /* np.sqrt(0.5) applied as a float32 scalar */
    b->eps = 1e-6f;
    b->resample_proj = 1;
}

int songunet_arch_build(unet_arch *a, arch_table *tb, const pd_unet_config *c,
                        const net_ids *ids, pd_error *err) {
    a->emb_ch = c->model_channels * c->channel_mult_emb;
    a->noise_ch = c->model_channels * c->channel_mult_noise;
    a->fourier = ids->embedding == EMB_FOURIER;
    a->pe_endpoint = 1;
    a->pe_flip = 1;
    a->label_late = 0;
    a->out_eps = 1e-6f;

    /* Mapping network. */
    if (a->fourier)
        a->b_freqs = at_buffer(tb, "model.map_noise.freqs", 1, a->noise_ch / 2, 0, 0, 0, NULL);
    a->t_map_label = c->label_dim ? at_linear(tb, "map_label", c->label_dim, a->noise_ch, 1) : -1;
    a->t_map_label_b = c->label_dim ? a->t_map_label + 1 : -1;
    a->t_map_augment = c->augment_dim ? at_linear(tb, "map_augment", c->augment_dim, a->noise_ch, 0)
                                      : -1;
    a->t_map0 = at_linear(tb, "map_layer0", a->noise_ch, a->emb_ch, 1);
    a->t_map1 = at_linear(tb, "map_layer1", a->emb_ch, a->emb_ch, 1);

    walk_spec ws = {song_block, c->model_channels, ids->encoder == ENC_RESIDUAL, 0};
    arch_walk(a, tb, c, &ws);
    /* decoder_type standard: aux_norm/aux_conv at level 0 only (the last decoder modules). */
    char name[64];
    int r = c->img_resolution, cout = a->dec[a->n_dec - 1].cout;
    snprintf(name, sizeof name, "dec.%dx%d_aux_norm", r, r);
    a->t_out_norm = at_norm(tb, name, cout);
    snprintf(name, sizeof name, "dec.%dx%d_aux_conv", r, r);
    a->t_out_conv = at_conv(tb, name, cout, c->out_channels, 3);
    (void)err;
    return 0;
}
