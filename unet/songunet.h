/* songunet.h — EDM's SongUNet (DDPM++) with its preconditioning, as a runtime with backward.
 *
 * A pd_model holds one arena of parameters (tensors named exactly as EDM's EDMPrecond state
 * dict, "model.enc.32x32_conv.weight", ...) and the block structure derived from its config.
 * A unet_run holds the activations for one (batch, resolution): sized once, reused every call,
 * no allocation inside a sampling loop. Several models and runs may be alive at once (SiD keeps
 * a teacher, a fake-score net and a generator), each with its own arena.
 *
 * Gradients live in caller-owned float arrays laid out exactly like pd_model.params (same
 * offsets), so optimisers are plain loops over n_params floats.
 */
#ifndef PD_SONGUNET_H
#define PD_SONGUNET_H

#include "pixdiff.h"
#include "unet/netdef.h"
#include <stddef.h>

typedef struct unet_tensor_info {
    char name[96];
    int shape[4];
    int ndim;
    size_t offset;            /* into pd_model.params, in floats */
    size_t numel;
} unet_tensor_info;

struct pd_model {
    pd_unet_config cfg;
    net_ids ids;              /* cfg's strings, parsed once (unet/netdef.h) */
    net_pc pc;                /* the preconditioner's constants */
    unet_tensor_info *tensors;  /* canonical order (EDM's module order) */
    int n_tensors;
    float *params;            /* the one parameter arena */
    size_t n_params;
    /* Buffers (EDM register_buffer: resample filters, FourierEmbedding freqs, iDDPM's u): not
     * parameters (not counted, never trained); offsets into bufs. buf_fixed[i] holds the values
     * buffer i must have (checked on load, written on save), NULL for one loaded from the file. */
    unet_tensor_info *buffers;
    float **buf_fixed;
    int n_buffers;
    float *bufs;
    size_t n_buf;
    char path[1024];
    char sha256[65];
    void *arch;               /* block structure, owned by the architecture's ops (net_ops.h) */
};

/* Options of one forward call. Zero-initialised = plain inference. */
typedef struct unet_opts {
    int train;                /* dropout on (mask kept for backward) */
    uint64_t dropout_seed;    /* Philox key for dropout masks; block b (encoder blocks, then
                                 decoder blocks, in module order) draws from stream
                                 dropout_stream * 4096 + b */
    uint64_t dropout_stream;
    const float *skip_scale;  /* Skip-Tuning: one factor per encoder->decoder skip, in EDM's
                                 production order (enc conv first); NULL = all 1 (docs/algorithms.md §S5) */
    int n_skip_scale;
    float *feature;           /* if non-NULL: [n, 64] channel mean of the last 8x8 encoder block's
                                 output (AMED's tap, docs/algorithms.md §S4.4), or of the last encoder
                                 block at the lowest resolution when no level runs at 8x8; then
                                 it is [n, h*w] of that level (unet_feature_dim) */
} unet_opts;

typedef struct unet_run unet_run;

/* Builds the block structure from m->cfg and allocates the parameter arena (zeros). */
int unet_model_alloc(pd_model **out, const pd_unet_config *cfg, pd_error *err);
/* The same, but when the config needs more than max_params floats it builds the tensor table
 * and leaves m->params NULL: a file's config is checked against the values the file holds before
 * the arena is allocated (docs/testing.md "Resource rule"), so a small file cannot ask for a
 * huge arena, and the loader can still name the tensor that is missing. */
int unet_model_alloc_within(pd_model **out, const pd_unet_config *cfg, size_t max_params,
                            pd_error *err);
/* The same without the arenas (params and bufs NULL): tensor tables and counts only. */
int unet_model_tables(pd_model **out, const pd_unet_config *cfg, pd_error *err);
/* keep = 1 keeps every activation for backward (training); 0 shares scratch between blocks.
 * res: 0 = the trained resolution, else any multiple of 2^(levels-1). Attention stays on the same
 * *levels* as at the trained resolution (level l attends iff img_resolution >> l is listed in
 * attn_resolutions), so at 2x the size the same blocks attend over 4x the positions. */
int unet_run_create(unet_run **out, const pd_model *m, int max_batch, int res, int keep,
                    pd_error *err);
void unet_run_free(unet_run *r);
/* Bytes of activation memory this run holds. */
size_t unet_run_bytes(const unet_run *r);
/* Number of encoder->decoder skips (Skip-Tuning's k+1). */
int unet_num_skips(const pd_model *m);

/* D(x; sigma, labels) including preconditioning (EDM/VP/VE/eps per cfg.precond).
 * x, out [n,C,res,res]; sigma [n]; labels [n,label_dim] or NULL (zeros). n <= max_batch. */
int unet_denoise_forward(unet_run *r, float *out, const float *x, const float *sigma,
                         const float *labels, int n, const unet_opts *opts, pd_error *err);
/* Reverse pass of the last forward (run must have keep = 1). Accumulates into dx [n,C,H,W],
 * dsigma [n] and dparams [n_params]; any may be NULL. With opts->train the backward uses the
 * dropout masks that forward drew. */
int unet_denoise_backward(unet_run *r, float *dx, float *dsigma, float *dparams,
                          const float *dout, pd_error *err);

/* Preconditioning coefficients for one sigma (EDM Table 1). */
typedef struct { double c_skip, c_out, c_in, c_noise; } unet_precond;
unet_precond unet_precond_eval(const net_pc *pc, double sigma);
/* Their derivatives d/dsigma (same fields), used by the backward for dL/dsigma. */
unet_precond unet_precond_deriv(const net_pc *pc, double sigma);

/* ---- additions (songunet owner): configs, feature tap size ---- */

struct yd_doc;
struct yd_node;
/* Checks a config against what this runtime supports; the message names the offending key. */
int unet_config_validate(const pd_unet_config *cfg, pd_error *err);
/* Overrides *cfg with the keys of a YAML/JSON map (the keys of pd_unet_config, DESIGN.md "File
 * formats"); an unknown key or a wrongly typed value fails naming the key. Does not validate. */
int unet_config_from_node(pd_unet_config *cfg, const struct yd_doc *doc,
                          const struct yd_node *map, pd_error *err);
/* A map of those keys with an optional `preset: NAME` (config_presets.c): the preset as the base,
 * then the other keys on top. A bad preset fails as "source:line: <key_prefix>preset: ...". */
int unet_config_from_preset_map(pd_unet_config *cfg, const struct yd_doc *doc,
                                const struct yd_node *map, const char *key_prefix, pd_error *err);
/* The config as one-line JSON (the __metadata__["pixdiff.config"] value); returns the length,
 * or -1 if it does not fit in cap bytes. */
int unet_config_to_json(const pd_unet_config *cfg, char *buf, size_t cap);

/* Length of the feature tap per image (64 for an 8x8 tap; see unet_opts.feature). */
int unet_feature_dim(const unet_run *r);
/* The tensor's index in m->tensors, or -1. */
int unet_tensor_index(const pd_model *m, const char *name);

#endif
