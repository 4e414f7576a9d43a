/* unet_arch.h — SongUNet's block structure and canonical tensor table, derived from a config
 * (internal to unet/; samplers and trainers see only songunet.h).
 *
 * unet_arch_build walks EDM's SongUNet constructor (models.md §4.5) in module order and records,
 * for every module, its channel counts, resampling, attention flag and the index of its weight
 * tensor in the model's tensor table (bias = weight index + 1; every SongUNet conv/linear has a
 * bias except map_augment). The same walk yields the state-dict names and shapes, so the tensor
 * table, the forward pass and the FLOP count can never disagree about the architecture.
 */
#ifndef PD_UNET_ARCH_H
#define PD_UNET_ARCH_H

#include "unet/songunet.h"

#define UNET_MAX_SKIPS 128

/* One EDM UNetBlock (models.md §4.4) with SongUNet's settings: 1 head, skip_scale sqrt(1/2),
 * eps 1e-6, resample_proj (skip conv is 1x1), adaptive_scale off. */
typedef struct unet_block {
    char name[48];            /* "enc.16x16_block0", without the "model." prefix */
    int cin, cout;            /* cin includes the concatenated skip for decoder blocks */
    int up, down, attn;
    int level_in, level_out;  /* level of the input / output (resolution = res >> level) */
    int has_skip;             /* skip conv exists: cout != cin or up or down */
    int pop;                  /* decoder: production index of the skip it concatenates, else -1 */
    int t_norm0, t_conv0, t_affine, t_norm1, t_conv1, t_skip, t_norm2, t_qkv, t_proj; /* -1 absent */
} unet_block;

typedef struct unet_arch {
    int n_levels, emb_ch, noise_ch;
    int t_map_label, t_map_augment, t_map0, t_map1;     /* -1 when absent */
    int t_enc_conv;                                     /* enc.{R}x{R}_conv */
    unet_block *enc; int n_enc;                         /* encoder UNetBlocks (down + blocks) */
    unet_block *dec; int n_dec;                         /* decoder UNetBlocks (in0/in1/up + blocks) */
    int t_aux_norm, t_aux_conv;
    int n_skips;                                        /* = n_levels * (num_blocks + 1) */
    int skip_ch[UNET_MAX_SKIPS], skip_level[UNET_MAX_SKIPS];
    int skip_src[UNET_MAX_SKIPS];                       /* -1: enc conv; else index into enc[] */
} unet_arch;

/* Builds the arch and the tensor table (names, shapes, offsets) of a validated config. The
 * tensor table is malloc'd into *tensors, the arch into *out. */
int unet_arch_build(unet_arch **out, pd_tensor_info **tensors, int *n_tensors, size_t *n_params,
                    const pd_unet_config *cfg, pd_error *err);
void unet_arch_free(unet_arch *a);

/* EDM GroupNorm group count, min(32, C/4) (models.md §4.1). */
static inline int unet_groups(int C) { int g = C / 4; return g < 32 ? g : 32; }

#endif
