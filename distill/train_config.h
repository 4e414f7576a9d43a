/* train_config.h — the YAML configuration of a training run (configs/train/NAME.yaml).
 *
 * Contract: a config file has the sections model, data, optimizer, ema, loss, training and
 * output (all optional; defaults below follow EDM). Parsing is strict: an unknown section or key
 * fails with "file:line: section: unknown key 'x'", a wrongly typed value names its key, and the
 * values are range-checked before any work starts. The config keeps its own YAML text so a
 * checkpoint can carry it and a run can be resumed from the checkpoint alone.
 *
 *   model:     the pd_unet_config keys (DESIGN.md "File formats"), or `preset: NAME` and
 *              overrides (pd_unet_config_preset)
 *   data:      kind (fashion-mnist | png-folder), path, flip (horizontal-flip augmentation)
 *   optimizer: lr, betas [b1, b2], eps, warmup_images, grad_clip (0 = off)
 *   ema:       halflife_images, rampup (EDM ema_rampup ratio; 0 = no ramp-up)
 *   loss:      p_mean, p_std, sigma_data (default: the model's), label_dropout
 *   training:  batch, duration_images, checkpoint_images, snapshot_images (0 = none), seed,
 *              shares (the most gradient shares of a step, distill/grad_shares.h; default 8),
 *              threads (0 = all cores)
 *   output:    dir (relative paths are relative to the working directory)
 */
#ifndef PD_TRAIN_CONFIG_H
#define PD_TRAIN_CONFIG_H

#include "pixdiff.h"
#include <stdint.h>

typedef struct tr_config {
    pd_unet_config model;
    char data_kind[32];           /* "fashion-mnist" | "png-folder" */
    char data_path[1024];         /* "" = the default (DS_FASHION_DIR) for fashion-mnist */
    int flip;
    double lr, beta1, beta2, eps, grad_clip;
    long long warmup_images;
    double ema_halflife_images, ema_rampup;
    double p_mean, p_std, sigma_data, label_dropout;
    int batch;
    int shares;                   /* the most gradient shares of a step (distill/grad_shares.h) */
    long long duration_images, checkpoint_images, snapshot_images;
    uint64_t seed;
    int threads;
    char out_dir[1024];
    char source[512];             /* file name the config came from */
    char *text;                   /* the YAML text (malloc'd), stored in checkpoints */
} tr_config;

/* EDM's defaults (train.py / training_loop.py) where they apply; see train_config.c. */
tr_config tr_config_default(void);
int tr_config_parse(tr_config *c, const char *text, const char *source, pd_error *err);
int tr_config_load(tr_config *c, const char *path, pd_error *err);
/* A deep copy (text duplicated). */
int tr_config_copy(tr_config *dst, const tr_config *src, pd_error *err);
void tr_config_free(tr_config *c);

/* Checks that a checkpoint made under `old` can be continued under `cur`: the model, the data,
 * the batch size and the seed must be the same (they decide what the saved state means and the
 * batch order); duration, intervals, threads, output and the optimizer/EMA/loss settings may
 * change. Fails naming the first key that differs. */
int tr_config_compatible(const tr_config *old, const tr_config *cur, const char *ckpt,
                         pd_error *err);

#endif
