/* pixdiff.h — the public API of the pixdiff library.
 *
 * Contract: every function that can fail returns 0 on success and -1 on failure, and fills the
 * caller's pd_error with a one-line message naming the file, key or flag at fault. The library
 * never prints (except through callbacks the caller installs) and never exits; only cli/ does.
 * Images are float32 NCHW in [-1, 1]; noise levels are EDM sigmas (x = x0 + sigma * n).
 */
#ifndef PIXDIFF_H
#define PIXDIFF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ errors */

typedef struct pd_error {
    char msg[512];
} pd_error;

/* Formats a message into err (if non-NULL) and returns -1, so callers write `return pd_fail(...)`. */
int pd_fail(pd_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *pd_version(void);

/* Sets the thread count for OpenMP loops and OpenBLAS (0 = all cores). */
void pd_set_threads(int n);
int pd_get_threads(void);

/* ------------------------------------------------------------------ name tables
 * Enums with a _COUNT and a name table (checked by _Static_assert in their .c files), shared by
 * CLI flags, YAML keys and PNG metadata. pd_*_from_name returns -1 for an unknown name. */

typedef enum {
    PD_SAMPLER_EULER,
    PD_SAMPLER_HEUN,
    PD_SAMPLER_DDIM,
    PD_SAMPLER_DPMPP_2M,  /* DPM-Solver++(2M), data prediction in lambda = -ln sigma (samplers.md §3.1) */
    PD_SAMPLER_DPMPP_3M,  /* DPM-Solver++(3M)                                                      */
    PD_SAMPLER_IPNDM,     /* fixed-coefficient Adams-Bashforth in sigma, order <= 4 (§3.2)          */
    PD_SAMPLER_DPM2,      /* DPM-Solver-2, single-step, 2 NFE per step (§3.4)                       */
    PD_SAMPLER_UNIPC,     /* UniPC bh2 predictor-corrector, 1 NFE per step (§3.3)                   */
    PD_SAMPLER_COUNT
} pd_sampler_kind;

typedef enum {
    PD_GRID_KARRAS,       /* EDM polynomial, rho (default 7)                     samplers.md §0.5 */
    PD_GRID_LOGSNR,       /* uniform in lambda = -ln sigma                                       */
    PD_GRID_VP_TIME,      /* uniform in VP time with exponent rho (1: AMED default)               */
    PD_GRID_DDIM_UNIFORM, /* DDPM linear-beta index grid, tau = 0, k, 2k, ...                     */
    PD_GRID_DDIM_QUAD,    /* DDPM index grid, quadratic                                           */
    PD_GRID_COSINE,       /* uniform t under the logSNR-truncated cosine schedule (models.md §3.2) */
    PD_GRID_COUNT
} pd_grid_kind;

typedef enum {
    PD_SHIFT_NONE,        /* sigma unchanged                                                      */
    PD_SHIFT_SCALE,       /* simple diffusion: every sigma multiplied by d/base (models.md §3.3)  */
    PD_SHIFT_INTERP,      /* logSNR interpolated between shift(base_low) and shift(d) (§3.4)      */
    PD_SHIFT_COUNT
} pd_shift_kind;

const char *pd_sampler_name(pd_sampler_kind k);
int pd_sampler_from_name(const char *name);
const char *pd_grid_name(pd_grid_kind k);
int pd_grid_from_name(const char *name);
const char *pd_shift_name(pd_shift_kind k);
int pd_shift_from_name(const char *name);

/* ------------------------------------------------------------------ models */

#define PD_MAX_LEVELS 8

/* The architecture, as EDM's constructor arguments (DESIGN.md "File formats"), plus pixdiff's keys. */
typedef struct pd_unet_config {
    char arch[16];            /* "songunet" */
    char precond[16];         /* "edm" | "vp" | "ve" | "eps" */
    int img_resolution, in_channels, out_channels, label_dim, augment_dim;
    int model_channels, channel_mult[PD_MAX_LEVELS], n_levels, channel_mult_emb, num_blocks;
    int attn_resolutions[PD_MAX_LEVELS], n_attn;
    float dropout;
    int channel_mult_noise;
    char embedding_type[16], encoder_type[16], decoder_type[16];
    int resample_filter[4], n_resample_filter;
    double sigma_data, sigma_min, sigma_max;
    /* pixdiff's own keys */
    char kind[16];            /* "denoiser" (default) | "generator" (one-step SiD) | "classifier" */
    double sigma_init;        /* generator only: the fixed sigma G is evaluated at (SiD: 2.5) */
    char class_names[16][24]; /* optional names for labels (e.g. Fashion-MNIST), "" if unset */
} pd_unet_config;

typedef struct pd_model pd_model;   /* weights + config; opaque */

/* A config filled with EDM's SongUNet defaults (DDPM++ CIFAR-10 settings). */
pd_unet_config pd_unet_config_default(void);
/* Builds a model with random weights (std 1/sqrt(fan_in), no zero-initialised layers). */
int pd_model_create(pd_model **out, const pd_unet_config *cfg, uint64_t seed, pd_error *err);
int pd_model_load(pd_model **out, const char *path, pd_error *err);
int pd_model_save(const pd_model *m, const char *path, pd_error *err); /* atomic: tmp + rename */
void pd_model_free(pd_model *m);
const pd_unet_config *pd_model_config(const pd_model *m);
size_t pd_model_param_count(const pd_model *m);
/* Multiply-adds x 2 of one denoiser evaluation of one image at resolution res, in GFLOP. */
double pd_model_gflops(const pd_model *m, int res);
/* Hex sha256 of the file the model was loaded from ("" for created models). */
const char *pd_model_sha256(const pd_model *m);
const char *pd_model_path(const pd_model *m);
/* The i-th tensor in file order (EDM's state-dict names): its name, shape[0..*ndim) (ndim <= 4);
 * NULL when i is out of range (unet/model_tensors.c). */
const char *pd_model_tensor(const pd_model *m, int i, int shape[4], int *ndim);

/* Named architectures for `pixdiff init` (unet/config_presets.c): "tiny", "fashion32", "ref64",
 * "cifar10". pd_unet_preset_name(i) is the i-th name, NULL past the end. */
const char *pd_unet_preset_name(int i);
int pd_unet_config_preset(pd_unet_config *cfg, const char *name, pd_error *err);
/* Overlays the keys of a YAML (or JSON) file onto *cfg: the same keys as the pixdiff.config
 * metadata (DESIGN.md "File formats"), plus an optional `preset: NAME` applied first; an unknown
 * key or a wrong type fails naming file:line. */
int pd_unet_config_from_yaml(pd_unet_config *cfg, const char *path, pd_error *err);

/* ------------------------------------------------------------------ classifier
 * The feature classifier (arch "classifier", unet/classifier.h; models/fashion-classifier
 * .safetensors): x [n, in_channels, img_resolution, img_resolution] in [-1, 1], at exactly the
 * trained size (callers pool or pad other sizes themselves). Fills logits [n, K] (K = label_dim)
 * and/or features [n, F], the penultimate layer (the metrics' feature space); either may be NULL.
 * An image's outputs do not depend on n or the thread count. Not thread-safe per model (the model
 * caches its inference buffers). Fails for a model that is not a classifier. */
int pd_classifier_features(pd_model *m, const float *x, int n, float *logits, float *features,
                           pd_error *err);
/* F, or -1 when m is not a classifier. */
int pd_classifier_feature_dim(const pd_model *m);

/* ------------------------------------------------------------------ denoisers
 * Every model is seen by samplers as D(x; sigma, label) -> x0 estimate. sigma is per sample.
 * labels is [n, label_dim] (one-hot, or zeros for "no label"), or NULL for no label. */

typedef struct pd_denoiser pd_denoiser;
struct pd_denoiser {
    int C, H, W;              /* image shape this denoiser works at */
    int label_dim;
    double sigma_min, sigma_max, sigma_data;
    int (*eval)(pd_denoiser *self, float *out, const float *x, const float *sigma,
                const float *labels, int n, pd_error *err);
    void (*destroy)(pd_denoiser *self);
    void *ctx;
    long long evals;          /* calls to eval since creation (batched calls count once) */
    char desc[128];           /* human-readable description for metadata */
};

/* Checks the arguments, calls d->eval and counts it in d->evals (one per call, any n). */
int pd_denoiser_eval(pd_denoiser *d, float *out, const float *x, const float *sigma,
                     const float *labels, int n, pd_error *err);
/* Calls d->destroy(d) (which releases ctx and anything else the constructor owns, but not the
 * struct itself), then free(d): constructors allocate the struct with malloc/calloc. NULL is ok. */
void pd_denoiser_free(pd_denoiser *d);

/* The network with its preconditioning, at resolution res (0 = the trained resolution).
 * The model must outlive the denoiser. Activation memory is sized on the first call for a
 * batch size and reused; no allocation inside the sampling loop. */
int pd_denoiser_from_model(pd_denoiser **out, pd_model *m, int res, pd_error *err);

/* Analytic denoisers (exact, for tests and for checking samplers). Spec syntax:
 *   analytic:gaussian[:mu=M][:std=S][:res=R][:ch=C]     data ~ N(mu, S^2 I)
 *   analytic:points[:n=K][:res=R][:ch=C][:seed=S]       K random points in [-1,1] (empirical data)
 *   analytic:points:file=X.npy                          the points of a float32 [K,C,H,W] array
 * Defaults: mu 0, std 0.5, res 32, ch 3, n 16, seed 0; sigma range 0.002..80; an unknown or
 * repeated option fails naming it. ([K,H,W] arrays are read as C = 1.) */
int pd_denoiser_analytic(pd_denoiser **out, const char *spec, pd_error *err);
/* Upsample guidance (models.md §2, x0 form §2.3): sampling at m x the resolution of `lo`.
 *   D~(x; sigma) = D_hi(x; sigma) + w Up_m( D_lo(Down_m x; sigma/m) - Down_m D_hi(x; sigma) )
 * Down_m = m x m average pooling, Up_m = nearest. hi and lo wrap the same model at m x and 1 x the
 * resolution (e.g. pd_denoiser_from_model(&hi, m, 64) and (&lo, m, 32)); they are not owned and
 * must outlive the wrapper. The guidance acts per sample on the images whose sigma >= sigma_on:
 * with the EDM VP time t(sigma) (models.md §3.8, beta_d 19.9, beta_min 0.1) and t_lo, t_hi the
 * times of hi's sigma_min, sigma_max, sigma_on = sigma_VP(t_hi - eta (t_hi - t_lo)), i.e. the first
 * eta fraction of the trajectory in VP time (§2.4); eta >= 1: always on, eta <= 0 or w = 0: never
 * (then D~ is D_hi bit for bit). The wrapper counts one eval per call like any denoiser; the
 * inner calls are counted by hi and lo and by pd_upsample_guidance_stats. */
int pd_denoiser_upsample_guidance(pd_denoiser **out, pd_denoiser *hi, pd_denoiser *lo, int m, double w,
                                  double eta, pd_error *err);
/* The sigma at and above which guidance acts (+inf when never); -1 if d is not such a wrapper. */
double pd_upsample_guidance_sigma_on(const pd_denoiser *d);
/* Calls made through the wrapper: hi calls, lo calls, and images the lo branch evaluated (a
 * lo image costs about 1/m^2 of a hi one). -1 if d is not an upsample-guidance wrapper. */
int pd_upsample_guidance_stats(const pd_denoiser *d, long long *hi_calls, long long *lo_calls,
                               long long *lo_images);

/* Exact probability-flow ODE solution for Gaussian data: x(sigma_to) from x(sigma_from). */
void pd_gaussian_ode_exact(float *out, const float *x, double mu, double std,
                           double sigma_from, double sigma_to, size_t n);

/* ------------------------------------------------------------------ noise */

/* Counter-based normal noise (Philox4x32-10 + Box-Muller): element j of stream `stream` of
 * image seed `seed` is a pure function of (seed, stream, j). Stream 0 is the initial noise z;
 * sampler step i uses stream i + 1. */
void pd_randn(float *out, size_t n, uint64_t seed, uint64_t stream);

/* ------------------------------------------------------------------ schedules */

typedef struct pd_schedule_params {
    pd_grid_kind grid;
    double rho;               /* karras (7) and vp-time (1) exponent; <= 0 picks the grid's default */
    double sigma_min, sigma_max;
    int end_at_zero;          /* 1: EDM convention, append sigma = 0; 0: stop at sigma_min (AMED) */
    pd_shift_kind shift;
    double shift_res, shift_base, shift_base_low; /* d, base (and the low base for interp) */
} pd_schedule_params;

/* karras, sigma 0.002..80, end_at_zero 1, no shift (shift_res 0 = the image's resolution in
 * pd_sample; shift_base 64, shift_base_low 32 as in simple diffusion). */
pd_schedule_params pd_schedule_default_params(void);
/* Fills sigmas[0..steps] (steps + 1 values, decreasing, sigmas[steps] = 0 or sigma_min).
 * end_at_zero 1: `steps` nonzero sigmas sigma_max..sigma_min, then 0; 0: steps + 1 sigmas
 * sigma_max..sigma_min. Needs 0 < sigma_min < sigma_max. ddim-* grids use DDPM table sigmas
 * inside [sigma_min, sigma_max] (so their endpoints are table values). A shift multiplies every
 * nonzero sigma afterwards, and the shifted grid is not clipped (schedules/shift.c): scale by
 * d/base; interp by (d/base)^t (d/base_low)^(1-t), t the unshifted sigma's cosine time. */
int pd_sigma_grid(double *sigmas, int steps, const pd_schedule_params *p, pd_error *err);

/* ------------------------------------------------------------------ samplers */

typedef struct pd_sample_params {
    pd_sampler_kind sampler;
    pd_schedule_params sched;
    int steps;                /* intervals of the grid; 0 = derive from nfe */
    int nfe;                  /* budget of network evaluations; used when steps == 0 */
    double eta;               /* DDIM stochasticity (0 = deterministic) */
    double s_churn, s_tmin, s_tmax, s_noise; /* EDM Alg. 2 */
    /* multistep samplers (samplers/multistep.h) */
    int max_order;            /* dpmpp-2m/3m, unipc: 1..3; ipndm: 1..4; 0 = the sampler's own (2, 3, 3, 4) */
    int lower_order_final;    /* dpmpp, unipc: 1 = diff-sampler's rule, the last step first order (default);
                               * 0 = full order to the end (a step into sigma = 0 is first order anyway) */
    double thresholding;      /* dpmpp, unipc: dynamic-thresholding quantile of |D| per image (diff-sampler:
                               * 0.995; for data in [-1, 1]); 0 = off (default) */
    int dpmpp_exact_d2;       /* dpmpp-3m: 1 = twice the reference codes' D2 term, which makes the update the
                               * exact quadrature of the quadratic through M_i, M_{i-1}, M_{i-2} (third
                               * order); 0 (default) = the reference coefficient (DPM-Solver, diff-sampler,
                               * k-diffusion; samplers.md §3.1), second order (tests/test_multistep.c) */
    double dpm2_r;            /* dpm2: intermediate sigma s = sigma_{i+1}^r sigma_i^(1-r), 0 < r <= 1; 0 = 1/2 */
    int afs;                  /* 1: analytical first step (samplers.md §4.3) for any sampler: the first
                               * denoiser call is answered by D = x - sigma x/sqrt(1 + sigma^2); one NFE less */
    /* progress: called after each step; abort: return non-zero to stop (pd_sample fails). */
    void (*progress)(void *user, int step, int steps);
    int (*abort)(void *user);
    void *user;
} pd_sample_params;

typedef struct pd_sample_stats {
    int steps;
    int nfe;                  /* network evaluations per image */
    double seconds_total, seconds_denoiser;
} pd_sample_stats;

/* heun, karras, 18 steps (EDM CIFAR-10: NFE 35), eta 0, no churn (s_tmax = inf, s_noise 1),
 * end_at_zero 1, sigma range 0 = the denoiser's; max_order 0 (the sampler's), lower_order_final 1,
 * no thresholding, dpm2_r 1/2, no AFS. */
pd_sample_params pd_sample_default_params(void);
/* The grid a user expects for a sampler when none is named: karras for euler/heun (EDM), the
 * DDIM paper's ddim-uniform for ddim; logsnr for dpmpp-2m/3m and unipc, karras for ipndm and
 * dpm2 (diff-sampler's choices, samplers.md §3.5). */
pd_grid_kind pd_sampler_default_grid(pd_sampler_kind k);
/* Steps that fit a budget of nfe evaluations for this sampler (>= 1), or -1 if none fits.
 * With afs = 1 every count is one less than without. */
int pd_sampler_steps_for_nfe(const pd_sample_params *p, int nfe);
int pd_sampler_nfe_for_steps(const pd_sample_params *p, int steps);

/* Runs the sampler on a batch. x: in, the standard-normal noise z [n,C,H,W]; out, the samples.
 * seeds[i] is image i's seed (per-step noise of stochastic samplers uses pd_randn(seeds[i], step+1)).
 * The sigma grid's range defaults to the denoiser's when sched.sigma_min/max <= 0, and
 * sched.shift_res to the denoiser's H when <= 0. seeds may be NULL for a deterministic run.
 * On failure (including abort) x is left unchanged. */
int pd_sample(pd_denoiser *d, const pd_sample_params *p, float *x, const float *labels,
              const uint64_t *seeds, int n, pd_sample_stats *stats, pd_error *err);

/* ------------------------------------------------------------------ files */

/* .npy: float32, C order, any rank up to 4 (shape[] filled, *ndim set). *data is malloc'd. */
int pd_npy_read(const char *path, float **data, int shape[4], int *ndim, pd_error *err);
int pd_npy_write(const char *path, const float *data, const int *shape, int ndim, pd_error *err);

/* PNG, 8-bit gray or RGB from [-1,1] floats as clip(x*127.5 + 128, 0, 255) (DESIGN.md).
 * text: NULL-terminated key/value pairs written as tEXt/iTXt chunks (e.g. "parameters", "pixdiff").
 * Writes atomically (tmp + rename). A grid tiles n images in rows of `cols` (0 = ceil(sqrt n)),
 * with 2 black pixels between tiles and none around the border. */
int pd_png_write_grid(const char *path, const float *x, int n, int C, int H, int W, int cols,
                      const char *const *text, pd_error *err);
/* Reads the text chunks: keys[i]/values[i], *count set; free with pd_png_text_free. */
int pd_png_read_text(const char *path, char ***keys, char ***values, int *count, pd_error *err);
void pd_png_text_free(char **keys, char **values, int count);
/* Reads an 8-bit gray/RGB PNG to floats in [-1,1], [C,H,W]; *data malloc'd. */
int pd_png_read(const char *path, float **data, int *C, int *H, int *W, pd_error *err);

/* ------------------------------------------------------------------ training (distill/train*.c)
 * EDM training of a denoiser from a YAML config (configs/train/NAME.yaml). Checkpoints go to
 * <output.dir>/checkpoint.safetensors (atomic: the old or the new file survives a kill -9); a
 * run resumes from it bit-exactly. At the end the EMA weights are exported as a model file. */

typedef struct pd_train_options {
    const char *config_path;  /* YAML config; NULL: use the config inside `checkpoint` */
    int resume;               /* 1: continue from the checkpoint (required if one exists) */
    const char *checkpoint;   /* checkpoint to resume from; NULL: <output.dir>/checkpoint.safetensors */
    const char *export_path;  /* final EMA model; NULL: <output.dir>/model.safetensors */
    const char *out_dir;      /* overrides output.dir when non-NULL */
    int threads;              /* > 0 overrides training.threads */
    long long duration_images; /* > 0 overrides training.duration_images */
    /* progress: about once a second and at the end. loss is the running mean of the mean
     * weighted per-pixel EDM loss. abort: non-zero stops after the current step, saves a
     * checkpoint and makes pd_train fail with an "interrupted" message. log: one line per event
     * (resumed, checkpoint, snapshot, export). */
    void (*progress)(void *user, long long images_seen, long long total, double img_per_s,
                     double loss, double eta_s);
    int (*abort)(void *user);
    void (*log)(void *user, const char *line);
    void *user;
} pd_train_options;

pd_train_options pd_train_default_options(void);
int pd_train(const pd_train_options *o, pd_error *err);
/* Writes the EMA weights of a training checkpoint as a model file (with its model config). */
int pd_train_export(const char *checkpoint, const char *out_model, pd_error *err);

#ifdef __cplusplus
}
#endif
#endif /* PIXDIFF_H */
