/* sid_config.h — the YAML configuration of a SiD distillation run (configs/distill/sid-*.yaml).
 *
 * Contract: a config has the top-level key `teacher` (the model file; the CLI's --teacher
 * overrides it) and the sections sid, optimizer, ema, training, eval and output, all optional,
 * with the defaults of mingyuanzhou/SiD's CIFAR-10 runs (docs/algorithms.md §M1.6) where they apply.
 * Parsing is strict like the training config's (train_config.h): an unknown section or key fails
 * with "file:line: section: unknown key 'x'", a wrongly typed or out-of-range value names its key.
 * The config keeps its YAML text so a checkpoint carries it and a run resumes from it alone.
 *
 *   teacher:    path of the pretrained denoiser f_phi (EDM preconditioning)
 *   sid:        alpha, tmax (theta-step sigma cap, in 1/1000 of the Karras schedule), sigma_init,
 *               loss_scale_g (lsg), p_mean, p_std (the psi-step log-normal sigma)
 *   optimizer:  lr_psi, lr_theta, betas [b1, b2] (both), betas_theta (overrides for G), eps
 *   ema:        halflife_images, rampup
 *   training:   batch, duration_images, checkpoint_images, snapshot_images (0 = none), seed,
 *               shares (the most gradient shares of a step, distill/grad_shares.h; default 8),
 *               threads (0 = all cores)
 *   eval:       fd_images (FD of G_ema every this many images; 0 = never), fd_n (samples),
 *               fd_seed (image k uses seed fd_seed + k, label k mod classes), classifier (the
 *               feature classifier model file; the CLI's --classifier overrides it)
 *   output:     dir
 */
#ifndef PD_SID_CONFIG_H
#define PD_SID_CONFIG_H

#include "pixdiff.h"
#include <stdint.h>

typedef struct sid_config {
    char teacher[1024];
    double alpha, tmax, sigma_init, loss_scale_g, p_mean, p_std;
    double lr_psi, lr_theta;
    double beta1_psi, beta2_psi, beta1_theta, beta2_theta, eps;
    double ema_halflife_images, ema_rampup;
    int batch;
    int shares;                   /* the most gradient shares of a step (distill/grad_shares.h) */
    long long duration_images, checkpoint_images, snapshot_images;
    uint64_t seed;
    int threads;
    long long fd_images;
    int fd_n;
    uint64_t fd_seed;
    char classifier[1024];
    char out_dir[1024];
    char source[512];             /* file name the config came from */
    char *text;                   /* the YAML text (malloc'd), stored in checkpoints */
} sid_config;

/* SiD's CIFAR-10 defaults (sid_train.py / run_sid.sh; docs/algorithms.md §M1.6), sized for a CPU. */
sid_config sid_config_default(void);
int sid_config_parse(sid_config *c, const char *text, const char *source, pd_error *err);
int sid_config_load(sid_config *c, const char *path, pd_error *err);
int sid_config_copy(sid_config *dst, const sid_config *src, pd_error *err);
void sid_config_free(sid_config *c);

/* Checks that a checkpoint made under `old` can continue under `cur`: batch, seed and sigma_init
 * must match (they fix the meaning of the state and the draws); the teacher is checked by hash
 * when the checkpoint is loaded. Fails naming the first key that differs. */
int sid_config_compatible(const sid_config *old, const sid_config *cur, const char *ckpt,
                          pd_error *err);

#endif
