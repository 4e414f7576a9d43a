/* net_ops.h — the architecture-neutral model container's table of architectures (DESIGN.md
 * "Rooms": an architecture is one entry here). pd_model (songunet.h) knows no architecture;
 * everything that differs between SongUNet, DhariwalUNet and the feature classifier goes through
 * its entry: config validation, building the tensor table (and the block structure kept in
 * m->arch), freeing that structure, the FLOP count, and whether the net runs as a denoiser through
 * the U-Net driver (songunet.c: forward, backward, the AMED feature tap and the Skip-Tuning skip
 * list, all derived from the block list that build records in unet_arch).
 *
 * Adding a network: write its walk (a build that fills unet_arch from its constructor, like
 * adm_arch.c) and its validate, and add one entry to the table in net_ops.c; a network whose
 * blocks are not EDM UNetBlocks supplies its own forward instead (docs/architectures.md).
 */
#ifndef PD_NET_OPS_H
#define PD_NET_OPS_H

#include "unet/songunet.h"

typedef struct net_ops {
    const char *title;        /* in messages: "SongUNet", "DhariwalUNet", "classifier" */
    /* Architecture-specific checks of a config whose strings parsed (the key is named). */
    int (*validate)(const pd_unet_config *c, const net_ids *ids, pd_error *err);
    /* Fills m->tensors/n_tensors/n_params, m->buffers and m->arch from m->cfg (m->ids, m->pc set). */
    int (*build)(pd_model *m, pd_error *err);
    void (*free_arch)(void *arch);
    /* 2 x multiply-adds of one evaluation of one image at res (0 = trained), in GFLOP. */
    double (*gflops)(const pd_model *m, int res);
    int unet;                 /* 1: runs through the U-Net driver as a denoiser */
} net_ops;

const net_ops *net_ops_of(net_arch a);

/* The checks every EDM U-Net config shares (sizes, levels, widths, σ range, preconditioner). */
int unet_validate_common(const pd_unet_config *c, const net_ids *ids, pd_error *err);
int songunet_validate(const pd_unet_config *c, const net_ids *ids, pd_error *err);
int adm_validate(const pd_unet_config *c, const net_ids *ids, pd_error *err);
double unet_gflops(const pd_model *m, int res);

#endif
