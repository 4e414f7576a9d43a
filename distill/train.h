/* train.h — the base trainer: EDM's denoising loss, one optimiser step, checkpoints, export.
 *
 * Contract: a tr_trainer owns a model (pd_model_create + EDM init), its EMA copy, Adam's m and v,
 * a gradient buffer (all laid out like pd_model.params), one keep=1 unet_run sized for the batch,
 * and the batch buffers; nothing is allocated inside tr_step. Every random draw is a pure
 * function of the run seed and a position (Philox, core/rng.h):
 *   image g of the run (g = images_seen + i): its dataset index (dataset.h epoch shuffle), its
 *     noise n (pd_randn stream TR_STREAM_NOISE + g), and its ln sigma, label drop and flip
 *     (rng_randu stream TR_STREAM_AUX + g, words 0-1 Box-Muller, 2, 3);
 *   step s: the dropout masks (unet_opts.dropout_stream = TR_STREAM_DROPOUT + s, from which the
 *     U-Net derives one stream per block; key gs_dropout_seed(seed, share) for each of the
 *     step's gradient shares, distill/grad_shares.h).
 * The step's gradient is the fixed-tree sum of its shares' gradients (grad_shares.h), so N ranks
 * of an mpirun job train the bits one process trains with the same batch.
 * So the state (params, EMA, m, v, images_seen, step) saved in a checkpoint determines the rest
 * of the run exactly, and a resumed run is bit-identical to an uninterrupted one (checked in
 * tests/test_train.c and, through kill -9, tests/e2e_train.sh; it holds across thread counts as
 * long as the U-Net's results do not depend on them, which is its contract).
 *
 * Loss (docs/algorithms.md §M1.3, EDM Alg. "training"): ln sigma ~ N(p_mean, p_std^2),
 * lambda = (sigma^2 + sigma_d^2) / (sigma sigma_d)^2,
 *   L = (1/B) sum_i lambda_i sum_pix (D(y_i + sigma_i n_i; sigma_i, label_i) - y_i)^2,
 * the sum over pixels and mean over the batch that EDM optimises. Progress reports L / (C H W),
 * the mean weighted per-pixel loss (about 1 at the start whatever the image size).
 * A classifier model (arch "classifier") trains with the classify objective instead: cross-entropy
 * on the clean images' labels (distill/objective_classify.h); the loss reported is its mean.
 */
#ifndef PD_TRAIN_H
#define PD_TRAIN_H

#include "distill/dataset.h"
#include "distill/grad_shares.h"
#include "distill/optim.h"
#include "distill/train_config.h"
#include "unet/songunet.h"

#define TR_STREAM_NOISE   0x4E4F000000000000ull /* "NO" + global image index */
#define TR_STREAM_AUX     0x4158000000000000ull /* "AX" + global image index */
/* "DP" + step. Kept below 2^48 because songunet.c multiplies it by 4096 to make per-block streams. */
#define TR_STREAM_DROPOUT 0x0000445000000000ull
#define TR_CHECKPOINT_FORMAT "1"

typedef struct tr_trainer {
    tr_config cfg;
    pd_model *model;
    float *ema, *adam_m, *adam_v, *grad;   /* [n_params] each, one arena */
    size_t n_params;
    unet_run *run;                         /* the denoiser's run; NULL for a classifier */
    unet_run *wrun[GS_MAX_SHARES];         /* runs of gradient-share workers 1.. (0 uses run) */
    struct tr_classify *cls;               /* a classifier's objective (objective_classify.h) */
    ds_dataset *data;
    ds_dataset data_owned;
    int owns_data;
    ds_sampler sampler;
    long long images_seen, step;
    double seconds;                        /* training wall time so far, across resumes */
    int B, C, H, label_dim;
    size_t chw;
    float *y, *x, *sigma, *labels, *D, *dD; /* batch buffers */
    int *idx;
    gs_plan shares;                        /* the step's gradient shares (grad_shares.h) */
    double last_loss;                      /* mean weighted per-pixel loss of the last step */
    double grad_norm;                      /* global norm of the last gradient, before clipping */
    size_t nonfinite;                      /* gradient entries the NaN/Inf guard replaced, total */
    double t_fwdbwd, t_step;               /* seconds in forward+backward / in tr_step, totals */
} tr_trainer;

/* Builds a fresh run (step 0) from cfg. data: NULL loads cfg's data; otherwise it is borrowed and
 * must outlive the trainer (tests pass synthetic sets). */
int tr_create(tr_trainer **out, const tr_config *cfg, ds_dataset *data, pd_error *err);
void tr_free(tr_trainer *t);

/* One optimiser step on the next batch of the stream: loss, backward, NaN/Inf guard, clipping,
 * Adam with warm-up, EMA. *loss (may be NULL) gets the mean weighted per-pixel loss. */
int tr_step(tr_trainer *t, double *loss, pd_error *err);

/* EDM loss of n prepared samples: D = D(x; sigma, labels), L as in the header comment (summed
 * over pixels, divided by norm: n for a whole batch, the global batch for one share of it). With
 * grad != NULL runs the backward with dL/dD = 2 lambda (D - y) / norm and accumulates dL/dparams
 * into grad. D and dD are n*chw scratch. */
int tr_edm_loss(unet_run *run, const float *x, const float *y, const float *sigma,
                const float *labels, int n, int norm, size_t chw, double sigma_data,
                const unet_opts *opts, float *D, float *dD, float *grad, double *loss,
                pd_error *err);

/* The loss (mean weighted per-pixel) of the current params with dropout off, on the first
 * min(n, batch) dataset images in order with draws from eval_seed: a fixed yardstick for tests. */
int tr_eval_loss(tr_trainer *t, int n, uint64_t eval_seed, double *loss, pd_error *err);

/* Checkpoint: one safetensors file with train.params, train.ema, train.adam_m, train.adam_v
 * (1-D, n_params) and __metadata__ holding the format, images seen, step, seconds, seed, the
 * YAML text and the model config (pixdiff.config), in the container of distill/checkpoint.h.
 * Written atomically (st_write: temporary file, fsync, rename), so a crash leaves the old or the
 * new file, never a mix. */
int tr_save_checkpoint(const tr_trainer *t, const char *path, pd_error *err);
/* Restores a checkpoint into a trainer built from a compatible config (tr_config_compatible). */
int tr_load_checkpoint(tr_trainer *t, const char *path, pd_error *err);
/* Reads only the config embedded in a checkpoint. */
int tr_checkpoint_config(const char *path, tr_config *cfg, pd_error *err);

/* Writes the EMA weights as a normal model file (pd_model_save: config in pixdiff.config). */
int tr_export(tr_trainer *t, const char *path, pd_error *err);
/* The same straight from a checkpoint file, without data or a run. */
int tr_export_checkpoint(const char *ckpt, const char *out_model, pd_error *err);

#endif
