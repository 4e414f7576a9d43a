/* unet_arch.h — the block structure and canonical tensor table of EDM's U-Nets (SongUNet in its
 * DDPM++ and NCSN++ forms, DhariwalUNet/ADM), derived from a config (internal to unet/; samplers
 * and trainers see only songunet.h).
 *
 * Each architecture's builder (songunet_arch.c, adm_arch.c) walks its EDM constructor in module
 * order and records, for every UNetBlock, its channel counts, resampling and EDM's own switches
 * (adaptive scale, heads, skip scale, eps, resample projection), and the index of each weight in
 * the model's tensor table (the bias, where there is one, is the next entry). The same walk yields
 * the state-dict names and shapes, so the tensor table, the forward pass and the FLOP count can
 * never disagree about the architecture. One driver (songunet.c) runs every builder's result.
 */
#ifndef PD_UNET_ARCH_H
#define PD_UNET_ARCH_H

#include "unet/songunet.h"

#define UNET_MAX_SKIPS 128

/* One EDM UNetBlock (training/networks.py UNetBlock) with its switches. */
typedef struct unet_block {
    char name[48];            /* "enc.16x16_block0", without the "model." prefix */
    int cin, cout;            /* cin includes the concatenated skip for decoder blocks */
    int up, down, attn;
    int heads;                /* attention heads (SongUNet 1; ADM cout/64) */
    int adaptive;             /* adaptive_scale: affine gives [scale | shift], 2·cout wide */
    float skip_scale;         /* SongUNet sqrt(1/2) as float32; ADM 1 */
    float eps;                /* GroupNorm eps: SongUNet 1e-6, ADM 1e-5 */
    int resample_proj;        /* SongUNet 1: an up/down skip with equal widths still has a 1x1 conv */
    int level_in, level_out;  /* level of the input / output (resolution = res >> level) */
    int has_skip;             /* skip path is not the identity: cout != cin or up or down */
    int pop;                  /* decoder: production index of the skip it concatenates, else -1 */
    int t_norm0, t_conv0, t_affine, t_norm1, t_conv1, t_skip, t_norm2, t_qkv, t_proj;
                              /* -1 absent; t_skip = -1 with has_skip: kernel-0 skip (resample only) */
    int t_aux_residual;       /* NCSN++ residual encoder: the aux conv after this down block, or -1 */
    int aux_cin;              /* its input channels */
} unet_block;

typedef struct unet_arch {
    net_arch kind;
    int n_levels, emb_ch, noise_ch;
    /* resampling: fir = 0 is [1,1] (2x2 average / nearest); else fir_K taps of fir_f, pad fir_pad */
    int fir, fir_K, fir_pad;
    float fir_f[4];
    /* mapping network */
    int fourier;              /* 1: FourierEmbedding (freqs = buffer b_freqs); 0: positional */
    int pe_endpoint, pe_flip; /* positional embedding endpoint; [sin|cos] swap (SongUNet, both) */
    int b_freqs;              /* index in m->buffers, or -1 */
    int label_late;           /* ADM: map_label (no bias) added after map_layer1, input unscaled */
    int t_map_label, t_map_label_b, t_map_augment, t_map0, t_map1;  /* -1 when absent */
    int t_enc_conv, enc_conv_out;                       /* enc.{R}x{R}_conv */
    unet_block *enc; int n_enc;                         /* encoder UNetBlocks (down + blocks) */
    unet_block *dec; int n_dec;                         /* decoder UNetBlocks (in0/in1/up + blocks) */
    int t_out_norm, t_out_conv;                         /* aux_norm/aux_conv or out_norm/out_conv */
    float out_eps;
    int n_skips;
    int skip_ch[UNET_MAX_SKIPS], skip_level[UNET_MAX_SKIPS];
    int skip_src[UNET_MAX_SKIPS];                       /* -1: enc conv; else index into enc[] */
} unet_arch;

/* ---- the tensor-table builder shared by the architecture walks (unet_arch.c) ---- */
typedef struct arch_table {
    unet_tensor_info *t;
    int n, cap;
    size_t off;
    unet_tensor_info *b;        /* buffers (not parameters): resample filters, freqs, iDDPM's u */
    float **bdata;            /* fixed contents of each buffer (NULL: loaded from the file) */
    int nb, bcap;
    size_t boff;
    int oom;
} arch_table;

/* "model.<module>.<leaf>"; returns the tensor's index. */
int at_add(arch_table *tb, const char *module, const char *leaf, int ndim, int d0, int d1, int d2,
           int d3);
int at_linear(arch_table *tb, const char *module, int in, int out, int bias);
int at_conv(arch_table *tb, const char *module, int in, int out, int k);
int at_norm(arch_table *tb, const char *module, int c);
/* A buffer "<prefix><module>.<leaf>" of n floats (shape from ndim/d*); data == NULL: loaded from
 * the file; else the values it must hold (copied). Returns its index in the buffer table. */
int at_buffer(arch_table *tb, const char *name, int ndim, int d0, int d1, int d2, int d3,
              const float *data);
/* resample_filter buffer of a resampling Conv2d at module `module` (f⊗f/(Σf)², as EDM). */
void at_filter(arch_table *tb, const unet_arch *a, const char *module);
/* UNetBlock.__init__: tensors in PyTorch's registration order (norm0, conv0 [+filter], affine,
 * norm1, conv1, skip [+filter], norm2, qkv, proj). b's switches must be set. */
void at_block(arch_table *tb, const unet_arch *a, unet_block *b);
/* Level l has attention (EDM `res in attn_resolutions`). */
int arch_has_attn(const pd_unet_config *c, int level);

/* What distinguishes one EDM U-Net's encoder/decoder walk from another's. */
typedef struct walk_spec {
    void (*block)(unet_block *b);  /* sets a block's switches (cin, cout, attn already set; it may
                                      clear attn, as ADM does below 64 channels) */
    int enc_conv_out;              /* width of enc.{R}x{R}_conv */
    int residual;                  /* NCSN++ residual encoder (aux_residual after each down block) */
    int dec_attn_all;              /* attention on every decoder block of a level (ADM), not
                                      only the last (SongUNet) */
} walk_spec;

/* The shared walk (EDM SongUNet/DhariwalUNet __init__ encoder and decoder loops): level-0 conv,
 * then per level a down block (levels > 0, with the aux_residual conv for a residual encoder) and
 * num_blocks blocks, every module pushing one skip; decoder in0 (attention) + in1 at the lowest
 * level, up elsewhere, then num_blocks + 1 blocks each popping one skip. */
void arch_walk(unet_arch *a, arch_table *tb, const pd_unet_config *c, const walk_spec *ws);

/* The architectures' builders (mapping network, arch_walk, output head). */
int songunet_arch_build(unet_arch *a, arch_table *tb, const pd_unet_config *c,
                        const net_ids *ids, pd_error *err);
int adm_arch_build(unet_arch *a, arch_table *tb, const pd_unet_config *c, pd_error *err);

/* Builds the arch of a validated config and fills m's tensor and buffer tables (m->cfg, m->ids
 * set). */
int unet_arch_build(pd_model *m, pd_error *err);
void unet_arch_free(void *a);

#endif
