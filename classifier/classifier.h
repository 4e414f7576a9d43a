/* classifier.h — the feature classifier: a small GroupNorm/SiLU CNN built from unet/layers.h,
 * with forward and backward, living in the same pd_model as the U-Nets (one parameter arena, a
 * canonical tensor table, safetensors with the config in pixdiff.config). It is not a U-Net, so
 * it has its own room (classifier/); it shares the layers, the model container and the file
 * format, and joins the container as one more row of unet/net_ops.c's architecture table.
 *
 * Architecture (config arch = kind = "classifier"; W_s = model_channels * channel_mult[s],
 * R = img_resolution, S = the number of channel_mult entries):
 *   x [N, in_channels, R, R] in [-1, 1]
 *   -> clf.stem: conv3x3 (in_channels -> W_0)
 *   -> stage s = 0..S-1 at R >> s pixels (a 2x2 average pool before every stage but the first),
 *      num_blocks times: clf.s{s}.b{j}.norm GroupNorm -> SiLU -> clf.s{s}.b{j}.conv conv3x3
 *      (the first conv of a stage maps W_{s-1} -> W_s, the others W_s -> W_s)
 *   -> clf.out_norm GroupNorm -> SiLU -> global average pool [N, W_{S-1}]
 *   -> clf.fc linear (W_{S-1} -> F) -> SiLU  = the FEATURES [N, F], F = model_channels *
 *      channel_mult_emb (the penultimate layer: the feature space of the quality metrics)
 *   -> dropout (p = dropout, training only) -> clf.head linear (F -> K) = the logits [N, K],
 *      K = label_dim = out_channels (the classes).
 * GroupNorm uses min(32, C/4) groups (as the U-Net) and eps 1e-5; every conv and linear has a
 * bias. Tensor order (the file order): stem, then per stage and block norm, conv, then out_norm,
 * fc, head; each module's weight before its bias. Config keys a classifier has no use for
 * (precond, sigma_*, embedding/encoder/decoder types, channel_mult_noise, resample_filter) keep
 * their defaults and are ignored; attn_resolutions must be empty and augment_dim 0.
 *
 * A clf_run holds the activations of one batch size: sized once, reused, no allocation per call.
 * keep = 1 keeps what the backward needs; keep = 0 (inference) shares two ping-pong buffers.
 * Every per-image value is computed in an order that does not depend on the batch or the thread
 * count (layers.h), so an image's features are bit-identical in any batch.
 */
#ifndef PD_CLASSIFIER_H
#define PD_CLASSIFIER_H

#include "unet/songunet.h"
#include <stdint.h>

#define CLF_GN_EPS 1e-5f

/* 1 if the config (or model) is a classifier (arch "classifier"). */
int clf_config_is(const pd_unet_config *cfg);
/* What this runtime supports of a classifier config; the message names the key. */
int clf_config_validate(const pd_unet_config *cfg, pd_error *err);
/* Builds the tensor table of m->cfg (validated); m->arch holds the stage structure (freed by
 * clf_arch_free). The classifier's entry in unet/net_ops.c. */
int clf_build(pd_model *m, pd_error *err);
void clf_arch_free(void *arch);
/* 2 x multiply-adds of one forward of one image, in GFLOP (convolutions and linears). */
double clf_gflops(const pd_model *m);
double clf_gflops_res(const pd_model *m, int res);
int clf_feature_dim(const pd_model *m);   /* F */
int clf_num_classes(const pd_model *m);   /* K */

typedef struct clf_run clf_run;

/* Options of one forward call; NULL = inference (no dropout). With train = 1 the dropout mask
 * of element j of the batch's [n, F] features is Philox(dropout_seed, dropout_stream) word j
 * (layers.h dropout_forward), kept for the backward. */
typedef struct clf_opts {
    int train;
    uint64_t dropout_seed, dropout_stream;
} clf_opts;

int clf_run_create(clf_run **out, const pd_model *m, int max_batch, int keep, pd_error *err);
void clf_run_free(clf_run *r);
size_t clf_run_bytes(const clf_run *r);
int clf_run_max_batch(const clf_run *r);

/* x [n, in_channels, R, R] -> logits [n, K] and features [n, F]; either output may be NULL.
 * n <= max_batch. The input is copied, so x need not outlive the call. */
int clf_forward(clf_run *r, float *logits, float *features, const float *x, int n,
                const clf_opts *opts, pd_error *err);
/* Reverse pass of the last forward (keep = 1): accumulates dL/dx into dx [n, C, R, R] and
 * dL/dparams into dparams [n_params] (laid out like m->params); either may be NULL. */
int clf_backward(clf_run *r, float *dx, float *dparams, const float *dlogits, pd_error *err);

#endif
