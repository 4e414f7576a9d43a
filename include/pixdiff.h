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

/* Sets the thread count (0 = all cores) of the calling thread's calls: the network's own worker
 * threads (docs/threads.md), OpenMP loops and OpenBLAS. */
void pd_set_threads(int n);
int pd_get_threads(void);

/* The 3x3 convolutions' algorithm: "winograd" (the default: Winograd's F(4x4,3x3) on layers of
 * 16x16 pixels or more, the direct im2col product on smaller ones) or "direct" (im2col + sgemm
 * everywhere, for checking; about 3x less float rounding). The environment variable PIXDIFF_CONV
 * sets the default. Process-wide; set it before evaluations start. */
int pd_set_conv_algorithm(const char *name, pd_error *err);
const char *pd_conv_algorithm(void);
/* The precision of the convolutions' products: "fp32" (the default) or "bf16": the direct
 * path's products (the 3x3 layers below 16x16 pixels and the 1x1 layers; pd_set_conv_algorithm
 * "direct" makes that every 3x3 layer) take bfloat16 operands, the weights and the im2col columns
 * rounded to nearest, with float sums and float everything else (Winograd's products stay float:
 * its transforms would multiply bf16's rounding 10-30x; docs/benchmarks.md "bf16"). bf16 needs an
 * OpenBLAS built with BUILD_BFLOAT16, whose cblas_sbgemm is looked up at run time (Debian 12's
 * 0.3.21 has none: the call then fails and says so). Process-wide, set before evaluations
 * start. It applies to network evaluations that keep nothing for a backward pass (sampling,
 * generation, denoising, bench, a distillation's fixed teacher); training passes and the metric
 * networks (the classifier of eval, Inception) stay float whatever it says. The CLI's
 * --precision and the environment variable PIXDIFF_PRECISION set it. */
int pd_set_precision(const char *name, pd_error *err);
const char *pd_precision(void);
/* Which path the convolutions took: between begin and end, every convolution's shape and path
 * is recorded (one row per distinct shape and path; `images` counts images through it; winograd
 * or bf16 set, or neither for the direct float product). end copies at most cap rows and returns
 * how many there were. */
typedef struct pd_conv_stat {
    int k, C, OC, H, W, winograd, calls, images, bf16;
} pd_conv_stat;
void pd_conv_stats_begin(void);
int pd_conv_stats_end(pd_conv_stat *out, int cap);

/* OpenBLAS kernel family in use ("Haswell", "SkylakeX", ...): detected from the CPU when the
 * library loads, unless the environment variable OPENBLAS_CORETYPE names one. */
const char *pd_blas_core(void);

/* ------------------------------------------------------------------ progress
 * Every long call of the library (pd_sample, pd_generate, pd_train, pd_distill_sid, pd_amed_train,
 * pd_fid_ref_load, pd_sweep_run, pd_convert_read/write) reports through one callback shape,
 *   void (*progress)(void *user, const pd_progress *p);
 * called on the calling thread, between units of its work (never inside an OpenMP region), with
 * the options' `user`. p and everything it points to are valid during the callback only. The
 * first block is filled by every call; the blocks after it hold what one kind of call knows,
 * and read as absent (0, NULL, or NaN for the loss values) in the others. Within one stage done
 * never decreases, and the last report of a call that finishes its work has done == total. */
typedef struct pd_progress {
    /* ---- every call */
    const char *what;         /* the call: "sample", "generate", "train", "sid", "amed", "fid-ref",
                               * "sweep", "convert" */
    const char *stage;        /* the part of the call under way, "" when it has one part: convert
                               * "reading" | "converting" | "writing"; sid "warm-up" (f_psi alone,
                               * a warm start's first phase; loss_psi its mean since the last
                               * warm-up log line) then ""; sweep the cell's or the reference's
                               * description ("heun nfe<=9 (5 steps) [base]") */
    const char *unit;         /* what done, total and rate count: "steps" (sampler steps: sample,
                               * generate), "images" (train, sid, amed: training images or
                               * trajectories; fid-ref), "evals" (sweep: network evaluations of one
                               * image, images x NFE, over the cells this run samples), "values"
                               * (convert: tensor elements), "files" (convert reading, writing) */
    long long done, total;    /* units done and in all (total 0: unknown) */
    double seconds;           /* since the call began */
    double rate;              /* units per second (train, sid: over the last steps; the others:
                               * since the call or its stage began); < 0 while unknown */
    double eta_seconds;       /* seconds left for the call (convert: for the stage; a sweep: for
                               * the run's cells, references left out); < 0 while unknown */
    /* ---- images (sample, generate, sweep: the current cell or reference; fid-ref) */
    long long images_done, images; /* finished and in all; 0, 0 when the call does not count them */
    /* ---- sampling (sample: batch 1 of 1; generate; sweep) */
    int batch, batches;       /* 1-based batch in progress and their count */
    int step, steps;          /* sampler steps done in the batch and per batch */
    /* ---- training: running means of the last steps; NaN when the call has no such value */
    double loss;              /* train: the mean weighted per-pixel EDM loss */
    double loss_psi;          /* sid: EDM-weighted per-pixel loss of f_psi on G's samples */
    double loss_theta;        /* sid: the generator loss per pixel, without loss_scale_g */
    double fd;                /* sid: the latest FD of G_ema's samples; NaN before the first */
    const double *losses;     /* amed: the last batch's per-interval losses [n_losses] */
    int n_losses;             /* amed: the intervals (0 elsewhere) */
    /* ---- sweep (0 elsewhere) */
    int cell, cells;          /* the running cell's 1-based index in the sweep and their count */
    int todo_index, todo;     /* its 1-based index among the cells this run samples, and their count */
    double stage_seconds;     /* seconds since the current cell began (its reference included) */
} pd_progress;

/* ------------------------------------------------------------------ shipped files (core/data_dir.c)
 * The data directory holds the shipped models/ and configs/: $PIXDIFF_DATA when set, else
 * ../share/pixdiff relative to the library (or to the program it is linked into), so a moved
 * install still finds them; the build tree has build/share/pixdiff. */
int pd_data_dir(char *out, size_t cap, pd_error *err);
/* $PIXDIFF_MODEL (an error when it names no file), else <data dir>/models/fashion32.safetensors. */
int pd_default_model_path(char *out, size_t cap, pd_error *err);
/* $PIXDIFF_CLASSIFIER (likewise), else <data dir>/models/fashion-classifier.safetensors. */
int pd_default_classifier_path(char *out, size_t cap, pd_error *err);
/* A path read from config_file (NULL: none): absolute as is; else the first that exists of
 * <config_file's directory>/path, path (from the current directory), <data dir>/path; else path
 * unchanged (so the reader's error names it). Fails only when out is too small. */
int pd_resolve_input(char *out, size_t cap, const char *path, const char *config_file,
                     pd_error *err);

/* ------------------------------------------------------------------ running under mpirun
 * (core/dist.c; docs/scale-out.md). pd_dist_init joins the MPI job when the process was started
 * by mpirun and pixdiff was built with MPI; otherwise there is one process, rank 0 of 1, and the
 * calls change nothing. Call it first in main and pd_dist_finalize last. A rank that fails calls
 * pd_dist_abort, which ends every rank of the job with that code (a lone process just returns). */
int pd_dist_init(int *argc, char ***argv);   /* -1: MPI failed; -2: built without MPI but
                                              started as one of several mpirun processes */
void pd_dist_finalize(void);
int pd_dist_rank(void);
int pd_dist_size(void);
void pd_dist_abort(int code);
/* Work split by index: this rank's part [*lo, *hi) of items 0..n-1 (contiguous, in rank order;
 * the whole range for one process). */
void pd_dist_part(long long n, long long *lo, long long *hi);
/* buf holds n items of item_bytes; each rank has filled its pd_dist_part. On return rank 0's buf
 * holds every item (the other ranks' bufs are unchanged). Collective; a no-op for one process. */
void pd_dist_gather(void *buf, long long n, size_t item_bytes);
/* Rank 0's n bytes at buf into buf on every rank (a seed drawn once). Collective; a no-op for one
 * process. */
void pd_dist_bcast(void *buf, size_t n);
/* The largest v over the ranks, on every rank. Collective. */
int pd_dist_max(int v);

/* ------------------------------------------------------------------ name tables
 * Enums with a _COUNT and a name table (checked by _Static_assert in their .c files), shared by
 * CLI flags, YAML keys and PNG metadata. pd_*_from_name returns -1 for an unknown name. */

typedef enum {
    PD_SAMPLER_EULER,
    PD_SAMPLER_HEUN,
    PD_SAMPLER_DDIM,
    PD_SAMPLER_DPMPP_2M,  /* DPM-Solver++(2M), data prediction in lambda = -ln sigma (docs/algorithms.md §S3.1) */
    PD_SAMPLER_DPMPP_3M,  /* DPM-Solver++(3M)                                                      */
    PD_SAMPLER_IPNDM,     /* fixed-coefficient Adams-Bashforth in sigma, order <= 4 (§S3.2)          */
    PD_SAMPLER_DPM2,      /* DPM-Solver-2, single-step, 2 NFE per step (§S3.4)                       */
    PD_SAMPLER_UNIPC,     /* UniPC bh2 predictor-corrector, 1 NFE per step (§S3.3)                   */
    PD_SAMPLER_AMED,      /* AMED-Solver: learned mean-value step, 2 NFE per step (§S4.2; predictor) */
    PD_SAMPLER_AMED_PLUGIN, /* AMED-Plugin on iPNDM or Euler, 2 NFE per step (§S4.6; predictor)      */
    PD_SAMPLER_COUNT
} pd_sampler_kind;

typedef enum {
    PD_GRID_KARRAS,       /* EDM polynomial, rho (default 7)                     docs/algorithms.md §S0.5 */
    PD_GRID_LOGSNR,       /* uniform in lambda = -ln sigma                                       */
    PD_GRID_VP_TIME,      /* uniform in VP time with exponent rho (1: AMED default)               */
    PD_GRID_DDIM_UNIFORM, /* DDPM linear-beta index grid, tau = 0, k, 2k, ...                     */
    PD_GRID_DDIM_QUAD,    /* DDPM index grid, quadratic                                           */
    PD_GRID_COSINE,       /* uniform t under the logSNR-truncated cosine schedule (docs/algorithms.md §M3.2) */
    PD_GRID_COUNT
} pd_grid_kind;

typedef enum {
    PD_SHIFT_NONE,        /* sigma unchanged                                                      */
    PD_SHIFT_SCALE,       /* simple diffusion: every sigma multiplied by d/base (docs/algorithms.md §M3.3)  */
    PD_SHIFT_INTERP,      /* logSNR interpolated between shift(base_low) and shift(d) (§M3.4)      */
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
    char arch[16];            /* "songunet" | "adm" (DhariwalUNet) | "classifier" */
    char precond[16];         /* "edm" | "vp" | "ve" | "iddpm" | "eps" */
    int img_resolution, in_channels, out_channels, label_dim, augment_dim;
    int model_channels, channel_mult[PD_MAX_LEVELS], n_levels, channel_mult_emb, num_blocks;
    int attn_resolutions[PD_MAX_LEVELS], n_attn;
    float dropout;
    int channel_mult_noise;
    char embedding_type[16], encoder_type[16], decoder_type[16];
    int resample_filter[4], n_resample_filter;
    double sigma_data, sigma_min, sigma_max;
    float label_dropout;      /* EDM's classifier-free-guidance label dropout: the fraction of
                               * labels training replaced by the zero label (pixdiff train records
                               * its loss.label_dropout; pd_denoiser_cfg wants > 0); -1: not
                               * recorded (older files, converted checkpoints) */
    double beta_d, beta_min, epsilon_t;  /* VPPrecond (and "eps") */
    int M;                    /* VPPrecond / iDDPMPrecond: DDPM step count */
    double C_1, C_2;          /* iDDPMPrecond */
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
 * "cifar10", EDM's released networks "edm-cifar10-ddpmpp", "edm-cifar10-ncsnpp",
 * "edm-ffhq64-ddpmpp", "edm-ffhq64-ncsnpp", "edm-imagenet64-adm", and the test-sized
 * "tiny-ncsnpp", "tiny-adm". pd_unet_preset_name(i) is the i-th name, NULL past the end. */
const char *pd_unet_preset_name(int i);
int pd_unet_config_preset(pd_unet_config *cfg, const char *name, pd_error *err);
/* Overlays the keys of a YAML (or JSON) file onto *cfg: the same keys as the pixdiff.config
 * metadata (DESIGN.md "File formats"), plus an optional `preset: NAME` applied first; an unknown
 * key or a wrong type fails naming file:line. */
int pd_unet_config_from_yaml(pd_unet_config *cfg, const char *path, pd_error *err);
/* The config as the JSON object model files carry (DESIGN.md "File formats"); the length written,
 * or -1 when cap is too small. */
int pd_unet_config_json(const pd_unet_config *cfg, char *buf, size_t cap);

/* ------------------------------------------------------------------ classifier
 * The feature classifier (arch "classifier", classifier/classifier.h; models/fashion-classifier
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
 * labels is [n, label_dim] (one-hot, or zeros for "no label"), or NULL for no label. A denoiser
 * is D and nothing else: what a caller needs from inside the network (AMED's feature tap) comes
 * back through the evaluation call, and a wrapper never writes the fields of the denoiser it wraps.
 * A denoiser's own scratch (a network's activation arena, a wrapper's buffers, the evals count)
 * makes one pd_denoiser one thread's run state (see "Threads" below). A one-step generator is not
 * a denoiser (pd_generator below). */

typedef struct pd_denoiser pd_denoiser;
struct pd_denoiser {
    int C, H, W;              /* image shape this denoiser works at */
    int label_dim;
    double sigma_min, sigma_max, sigma_data;
    /* D(x; sigma, labels) -> out for n images. features: NULL, or [n, feature_dim] to receive
     * AMED's feature tap of this very call (docs/algorithms.md §S4.4): a network denoiser writes
     * the channel mean of its U-Net's last 8x8 encoder block (unet_opts.feature); an analytic
     * denoiser has no network and writes nothing (feature_dim 0: its callers read zeros); a
     * wrapper passes the request to the evaluation the features belong to or fails naming itself
     * (pd_denoiser_cfg passes the conditional branch's through, upsample guidance refuses). */
    int (*eval)(pd_denoiser *self, float *out, const float *x, const float *sigma,
                const float *labels, int n, float *features, pd_error *err);
    void (*destroy)(pd_denoiser *self);
    void *ctx;
    long long evals;          /* calls to eval since creation (batched calls count once) */
    char desc[128];           /* human-readable description for metadata */
    int feature_dim;          /* values per image eval writes into features (64 for a network
                               * with an 8x8 level at this resolution; 0: none) */
    /* The denoiser's part of its canonical description (pd_denoiser_describe) into out (cap
     * bytes, NUL-terminated); returns the length, or -1 when it does not fit. A wrapper writes
     * the description of the denoiser it wraps, then its own term. NULL: the denoiser cannot
     * describe itself, and pd_denoiser_describe fails. */
    int (*describe)(const pd_denoiser *self, char *out, size_t cap);
};

/* Checks the arguments, calls d->eval without the feature tap and counts it in d->evals (one per
 * call, any n). */
int pd_denoiser_eval(pd_denoiser *d, float *out, const float *x, const float *sigma,
                     const float *labels, int n, pd_error *err);
/* The same with AMED's feature tap: features [n, d->feature_dim] (see eval above), or NULL. */
int pd_denoiser_eval_features(pd_denoiser *d, float *out, const float *x, const float *sigma,
                              const float *labels, int n, float *features, pd_error *err);
/* Calls d->destroy(d) (which releases ctx and anything else the constructor owns, but not the
 * struct itself), then free(d): constructors allocate the struct with malloc/calloc. NULL is ok. */
void pd_denoiser_free(pd_denoiser *d);
/* The canonical text of what a denoiser stack computes: two stacks with the same text give the
 * same D for the same inputs, and any setting that changes D changes the text. It is the one
 * description a sweep's cell keys, its trajectory-reference cache and the PNG metadata use. Terms
 * "name=value" joined by '|', numbers written shortest round-trip (core/jsonbuf.h), in the order
 * the stack is built, innermost first:
 *   model=sha256:<hex>|size=<H>        a network denoiser (the model file's hash; the model's
 *                                      path for a model never saved), at resolution H;
 *   model=<spec>|size=<H>              an analytic denoiser (its spec as given);
 *   |skip=rho:<bottom>..<top>,sigma:<lo>..<hi>  or  |skip=rho:<r0>,<r1>,...,sigma:<lo>..<hi>
 *                                      Skip-Tuning on the network (docs/algorithms.md §S5);
 *   |ug=w:<w>,eta:<eta>                upsample guidance (§M2) over the stack so far, whose
 *                                      native-size branch is the same stack at the model's size
 *                                      (else ",lo:[<its description>]" follows);
 *   |cfg=<w>                           classifier-free guidance.
 * Fails, naming the denoiser, for one without a describe callback or when cap is too small. */
int pd_denoiser_describe(const pd_denoiser *d, char *out, size_t cap, pd_error *err);

/* The network with its preconditioning, at resolution res (0 = the trained resolution).
 * The model must outlive the denoiser. Activation memory is sized on the first call for a
 * batch size and reused; no allocation inside the sampling loop. Fails, naming the file, for a
 * model of kind "generator" (pd_generator_from_model) or "classifier". */
int pd_denoiser_from_model(pd_denoiser **out, pd_model *m, int res, pd_error *err);

/* Analytic denoisers (exact, for tests and for checking samplers). Spec syntax:
 *   analytic:gaussian[:mu=M][:std=S][:res=R][:ch=C]     data ~ N(mu, S^2 I)
 *   analytic:points[:n=K][:res=R][:ch=C][:seed=S]       K random points in [-1,1] (empirical data)
 *   analytic:points:file=X.npy                          the points of a float32 [K,C,H,W] array
 * Defaults: mu 0, std 0.5, res 32, ch 3, n 16, seed 0; sigma range 0.002..80; an unknown or
 * repeated option fails naming it. ([K,H,W] arrays are read as C = 1.) */
int pd_denoiser_analytic(pd_denoiser **out, const char *spec, pd_error *err);
/* Upsample guidance (docs/algorithms.md §M2, x0 form §M2.3): sampling at m x the resolution of `lo`.
 *   D~(x; sigma) = D_hi(x; sigma) + w Up_m( D_lo(Down_m x; sigma/m) - Down_m D_hi(x; sigma) )
 * Down_m = m x m average pooling, Up_m = nearest. hi and lo wrap the same model at m x and 1 x the
 * resolution (e.g. pd_denoiser_from_model(&hi, m, 64) and (&lo, m, 32)); they are not owned and
 * must outlive the wrapper. The guidance acts per sample on the images whose sigma >= sigma_on:
 * with the EDM VP time t(sigma) (docs/algorithms.md §M3.8, beta_d 19.9, beta_min 0.1) and t_lo, t_hi the
 * times of hi's sigma_min, sigma_max, sigma_on = sigma_VP(t_hi - eta (t_hi - t_lo)), i.e. the first
 * eta fraction of the trajectory in VP time (§M2.4); eta >= 1: always on, eta <= 0 or w = 0: never
 * (then D~ is D_hi bit for bit). The wrapper counts one eval per call like any denoiser; the
 * inner calls are counted by hi and lo and by pd_upsample_guidance_stats. It has no AMED feature
 * tap: an evaluation that asks for one fails naming the wrapper. */
int pd_denoiser_upsample_guidance(pd_denoiser **out, pd_denoiser *hi, pd_denoiser *lo, int m, double w,
                                  double eta, pd_error *err);
/* The sigma at and above which guidance acts (+inf when never); -1 if d is not such a wrapper. */
double pd_upsample_guidance_sigma_on(const pd_denoiser *d);
/* Calls made through the wrapper: hi calls, lo calls, and images the lo branch evaluated (a
 * lo image costs about 1/m^2 of a hi one). -1 if d is not an upsample-guidance wrapper. */
int pd_upsample_guidance_stats(const pd_denoiser *d, long long *hi_calls, long long *lo_calls,
                               long long *lo_images);

/* Classifier-free guidance (Ho & Salimans 2022, Eq. 6, x0 form; samplers/cfg.c):
 *   D~(x; sigma, c) = D(x; sigma, 0) + w (D(x; sigma, c) - D(x; sigma, 0)),
 * the conditional and the unconditional (zero label) evaluations done as one batch of 2n. w = 1 is
 * the conditional model bit for bit, w = 0 the unconditional one. Meaningful only for a model
 * trained with label dropout (pd_unet_config.label_dropout); fails for an unconditional model. AMED's
 * feature tap passes through from the conditional evaluation. inner is not owned and must outlive
 * the wrapper. */
int pd_denoiser_cfg(pd_denoiser **out, pd_denoiser *inner, double w, pd_error *err);

/* Skip-Tuning (docs/algorithms.md §S5): every encoder->decoder skip tensor of the U-Net is multiplied by
 * its own rho_i before the decoder concatenates it. The k + 1 skips are numbered from the bottom
 * (i = 0: innermost, the first one the decoder consumes, i.e. the last the encoder produced) to
 * the top (i = k: the full-resolution enc conv). rho_i = rho_bottom + i (rho_top - rho_bottom)/k
 * (§S5.2), or the explicit list rho[0..n_rho) (bottom first; n_rho must be k + 1). Per sample,
 * the scales act only when sigma_lo <= sigma <= sigma_hi; elsewhere rho = 1. */
#define PD_SKIP_TUNING_MAX 128
typedef struct pd_skip_tuning {
    double rho_bottom, rho_top;      /* 1, 1 */
    int n_rho;                       /* 0: the linear ramp; else the length of rho[] */
    double rho[PD_SKIP_TUNING_MAX];
    double sigma_lo, sigma_hi;       /* 0, +inf: every sigma */
} pd_skip_tuning;
pd_skip_tuning pd_skip_tuning_default(void);
/* Sets (st) or clears (st = NULL) Skip-Tuning on a network denoiser (pd_denoiser_from_model);
 * fails for other denoisers, rho values that are not finite, a list of the wrong length, or an
 * empty window. All rho = 1 gives results bit-identical to no Skip-Tuning. */
int pd_denoiser_set_skip_tuning(pd_denoiser *d, const pd_skip_tuning *st, pd_error *err);
/* k + 1, the number of skips of a network denoiser's U-Net; -1 for other denoisers. */
int pd_denoiser_num_skips(const pd_denoiser *d);
/* The per-skip factors in the U-Net's production order (unet_opts.skip_scale: enc conv first),
 * scale[p] = rho_{k - p}; n_skips = k + 1. Fails as pd_denoiser_set_skip_tuning. */
int pd_skip_tuning_scales(const pd_skip_tuning *st, int n_skips, float *scale, pd_error *err);

/* ------------------------------------------------------------------ one-step generators
 * A one-step generator (model kind "generator": SiD, docs/algorithms.md §M1.2) maps noise to an
 * image in one network call, G(z; label) = D_theta(sigma_init z; sigma_init, label). It is not a
 * denoiser: pd_denoiser_from_model refuses its model, so no sampler (multi-step or AMED), upsample
 * guidance or classifier-free guidance can be put on it (guidance would extrapolate towards
 * G(z; no label), an input the generator was never distilled for). Skip-Tuning, a change inside
 * the network, applies. Like a network denoiser, one pd_generator is one thread's run state. */
typedef struct pd_generator {
    int C, H, W;              /* the image shape it makes */
    int label_dim;
    double sigma_init;        /* the fixed sigma of its one evaluation (SiD: 2.5) */
    char desc[128];           /* human-readable description for metadata */
    void *ctx;                /* the network (internal) */
} pd_generator;

/* The generator of a model of kind "generator" at resolution res (0 = the trained one); fails,
 * naming the file, for a model of another kind. The model must outlive the generator. */
int pd_generator_from_model(pd_generator **out, pd_model *m, int res, pd_error *err);
void pd_generator_free(pd_generator *g);  /* NULL is ok */
/* Skip-Tuning of the generator's network, as pd_denoiser_set_skip_tuning (st = NULL clears). */
int pd_generator_set_skip_tuning(pd_generator *g, const pd_skip_tuning *st, pd_error *err);
/* The generator's network as pd_denoiser_describe writes it ("model=sha256:<hex>|size=<H>" and
 * its Skip-Tuning term): the model file holds sigma_init, so its hash names the generator. */
int pd_generator_describe(const pd_generator *g, char *out, size_t cap, pd_error *err);
/* x: in, the standard-normal noise z [n,C,H,W]; out, G(z; labels) (labels [n, label_dim] or NULL).
 * One network evaluation; an image's result does not depend on n. On failure x is unchanged. */
int pd_generator_run(pd_generator *g, float *x, const float *labels, int n, pd_error *err);

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

typedef struct pd_amed_predictor pd_amed_predictor;   /* AMED's g_phi (below) */

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
                               * k-diffusion; docs/algorithms.md §S3.1), second order (tests/test_multistep.c) */
    double dpm2_r;            /* dpm2: intermediate sigma s = sigma_{i+1}^r sigma_i^(1-r), 0 < r <= 1; 0 = 1/2 */
    int afs;                  /* 1: analytical first step (docs/algorithms.md §S4.3) for any sampler: the first
                               * denoiser call is answered by D = x - sigma x/sqrt(1 + sigma^2); one NFE less */
    /* amed, amed-plugin: the predictor g_phi (pd_amed_predictor_load; not owned; its kind picks
     * the plugin's base solver). NULL: the neutral predictor r = 1/2, c = a = 1, with which amed
     * is DPM-Solver-2 (dpm2 with r = 1/2) and amed-plugin is iPNDM with a geometric midpoint. */
    const pd_amed_predictor *amed;
    /* progress: after each step (what "sample", unit "steps", done = step of steps; images_done =
     * n after the last); abort: return non-zero to stop (pd_sample fails). */
    void (*progress)(void *user, const pd_progress *p);
    int (*abort)(void *user);
    void *user;
    /* trajectory: if non-NULL, called after each step (1-based, as progress's step, same user) with the
     * float64 state x [n, C*H*W] at sigmas[step]: teacher trajectories, trajectory metrics. */
    void (*trajectory)(void *user, int step, const double *x, int n, size_t dim);
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
 * dpm2 (diff-sampler's choices, docs/algorithms.md §S3.5). */
pd_grid_kind pd_sampler_default_grid(pd_sampler_kind k);
/* Steps that fit a budget of nfe evaluations for this sampler (>= 1), or -1 if none fits.
 * With afs = 1 every count is one less than without. */
int pd_sampler_steps_for_nfe(const pd_sample_params *p, int nfe);
int pd_sampler_nfe_for_steps(const pd_sample_params *p, int steps);

/* ------------------------------------------------------------------ sampler options
 * Every setting a sampler reads from pd_sample_params is one row of one table (samplers/options.c,
 * docs/samplers-dev.md "Adding a sampler option"), in a fixed order. The CLI flags, their checks
 * and `--help`, the sweep's YAML keys and their checks, sweep cell keys, series labels and
 * results.jsonl columns, and the PNG metadata are all generated from it. Values travel as double
 * (an INT or BOOL row's field is an int). A name may have several rows with disjoint samplers
 * when the range differs per sampler (max_order). */
typedef enum { PD_OPT_NUM, PD_OPT_INT, PD_OPT_BOOL } pd_option_type;
typedef enum {
    PD_OPT_KEY_ALWAYS,    /* |key=value whenever the sampler reads it */
    PD_OPT_KEY_IF_SET,    /* only when the value is not the default: adding an option keeps old keys */
    PD_OPT_KEY_GROUP,     /* when not the default: |key=v,w,... with the MEMBER rows that follow it */
    PD_OPT_KEY_MEMBER
} pd_option_key;
typedef struct pd_sampler_option {
    const char *name;       /* YAML key under options:; the CLI flag is "--" name with '-' for '_' */
    pd_option_type type;
    const char *field;      /* the pd_sample_params field ("dpm2_r"), for library messages */
    size_t offset;          /* offsetof(pd_sample_params, field): double for NUM, int for INT/BOOL */
    double lo, hi;          /* accepted range (hi may be INFINITY); lo itself refused if lo_open */
    int lo_open;
    double def;             /* what pd_sample_default_params sets */
    double def_means;       /* NAN, or the value the sampler uses while the field holds def (r: 0 = 1/2) */
    unsigned samplers;      /* bit k set: sampler k reads it */
    const char *meta;       /* CLI value name ("R"); BOOL rows take 0 or 1 on the CLI */
    const char *help;       /* one line for --help */
    /* How records show it (NULL: name). */
    const char *key;        /* sweep cell key token */
    pd_option_key key_rule;
    const char *label;      /* series label when not the default: "eta=" adds the value; a bare word
                             * ("exact-d2") stands alone; NULL: not in labels */
    const char *png;        /* PNG "parameters" name, written when not the default (a GROUP row
                             * brings its MEMBER rows); NULL: not written there */
    const char *json;       /* PNG "pixdiff" JSON name */
    const char *record;     /* results.jsonl column */
    int json_block;         /* PNG JSON: 0 after "nfe", 1 after "afs" (pixdiff 0.1's places, always
                             * written); -1: written only when the sampler reads it and not default */
} pd_sampler_option;

/* The table (*n rows, in their fixed order). */
const pd_sampler_option *pd_sampler_options(int *n);
/* The row named name (case-insensitive, '-' = '_') that sampler k reads; NULL when k reads no
 * such option; *exists (may be NULL) says whether any sampler does. */
const pd_sampler_option *pd_sampler_option_find(pd_sampler_kind k, const char *name, int *exists);
double pd_sampler_option_get(const pd_sample_params *p, const pd_sampler_option *o);
/* get, with def replaced by def_means where the row has one: the value the sampler uses. */
double pd_sampler_option_value(const pd_sample_params *p, const pd_sampler_option *o);
void pd_sampler_option_set(pd_sample_params *p, const pd_sampler_option *o, double v);
/* 0 if v is in the row's range (an integer for INT, 0 or 1 for BOOL); else -1 with a message
 * ("0.9 is outside (0, 1]") in msg. */
int pd_sampler_option_check(const pd_sampler_option *o, double v, char *msg, size_t cap);
/* "ddim" or "dpmpp-2m, dpmpp-3m, unipc": the samplers that read any row named name. */
void pd_sampler_option_readers(const char *name, char *out, size_t cap);

/* Runs the sampler on a batch. x: in, the standard-normal noise z [n,C,H,W]; out, the samples.
 * seeds[i] is image i's seed (per-step noise of stochastic samplers uses pd_randn(seeds[i], step+1)).
 * The sigma grid's range defaults to the denoiser's when sched.sigma_min/max <= 0, and
 * sched.shift_res to the denoiser's H when <= 0. seeds may be NULL for a deterministic run.
 * On failure (including abort) x is left unchanged. */
int pd_sample(pd_denoiser *d, const pd_sample_params *p, float *x, const float *labels,
              const uint64_t *seeds, int n, pd_sample_stats *stats, pd_error *err);

/* ------------------------------------------------------------------ generating images
 * pd_generate (samplers/generate.c) is what `pixdiff sample` does: n images from seeds and classes,
 * batched, with a sampler's settings. Minimal use (examples/generate.c):
 *   pd_default_model_path(path, ...); pd_model_load(&m, path, ...);
 *   pd_denoiser_from_model(&d, m, 0, ...);
 *   pd_generate_params p = pd_generate_default_params();   (heun, 18 steps, seed i for image i)
 *   pd_generate(d, &p, 0, n, x, NULL, ...);  pd_png_write_grid("out.png", x, n, ...);
 *
 * Threads. A pd_model is the weights: read-only once loaded (or created), so any number of threads
 * may share one model (the classifier is the exception: pd_classifier_features caches buffers in
 * the model). A pd_denoiser (or pd_generator) is one thread's run state (activation arena, counters):
 * build one per thread with pd_denoiser_from_model on the shared model and never use one from two
 * threads at once. Each call uses threads inside (pd_set_threads): the network's layers run on
 * pixdiff's own workers, one calling thread at a time (a call made while another thread holds
 * them, or inside an OpenMP parallel region, runs its layers on its own thread); the rest uses
 * OpenMP. Results never depend on the thread count or on which thread ran what. The name tables,
 * pd_randn and the schedules are pure functions. pd_set_threads changes process-wide state.
 *
 * Progress: every long call reports through one callback shape, progress(user, const pd_progress *)
 * (the progress section near the top), on the calling thread, between units of its work. */

typedef struct pd_generate_params {
    pd_sample_params sample;  /* pd_sample_default_params(); its progress/abort/user are ignored */
    /* Image i (0-based over the whole request): seed seeds[i], or seed + i when seeds is NULL;
     * class classes[i] (-1: none), or class_all for every image when classes is NULL; initial noise
     * noise[i] ([C,H,W] rows of the request's noise array), or pd_randn(seed_i, stream 0) when
     * noise is NULL. Arrays are indexed by i, so they must cover first + count images. */
    uint64_t seed;            /* 0 */
    const uint64_t *seeds;
    const int *classes;
    int class_all;            /* -1: unconditional */
    const float *noise;
    int batch;                /* images per denoiser call (16); results do not depend on it */
    int use_guidance;         /* 1: classifier-free guidance with weight `guidance` (pd_denoiser_cfg) */
    double guidance;          /* 1 */
    /* progress after every sampler step (what "generate", unit "steps": done of steps x batches;
     * batch, step, images_done of count); abort non-zero stops at the next step (pd_generate fails,
     * "interrupted"); images, when set, receives each finished batch (images first..first+count-1
     * of the request) and may fail with err filled to stop. */
    void (*progress)(void *user, const pd_progress *p);
    int (*abort)(void *user);
    int (*images)(void *user, long long first, int count, const float *x, pd_error *err);
    void *user;
} pd_generate_params;

pd_generate_params pd_generate_default_params(void);
/* Image i's seed and class under p (the rules above). */
uint64_t pd_generate_seed(const pd_generate_params *p, long long i);
int pd_generate_class(const pd_generate_params *p, long long i);
/* Generates images first..first+count-1 of the request into out [count, C, H, W] (image first + k
 * at row k), or, with out NULL, only through p->images. stats (may be NULL): steps and NFE per
 * image, seconds summed over batches. Any (first, count) split of a request gives the same
 * images, so processes can share one request. */
int pd_generate(pd_denoiser *d, const pd_generate_params *p, long long first, int count, float *out,
                pd_sample_stats *stats, pd_error *err);
/* The same request made by a one-step generator: the same seeds, classes, noise, batching, ranges
 * and callbacks (progress reports one step per batch), one evaluation per image (stats: steps =
 * nfe = 1). p->sample does not apply; p->use_guidance fails, naming the generator. */
int pd_generator_generate(pd_generator *g, const pd_generate_params *p, long long first, int count,
                          float *out, pd_sample_stats *stats, pd_error *err);

/* ------------------------------------------------------------------ trajectory reference
 * The trajectory error of a run (pd_trajectory_error) compares its images with the exact solution
 * of the same ODE from the same noise, ending where the run ends (docs/algorithms.md §S0.7;
 * samplers/trajectory.c): one definition for `pixdiff eval --ref-steps` and a sweep's trajectory
 * metric. */

/* The ends of the reference for the sampler settings p on d (sigma range and shift resolution
 * from d where p leaves them 0, as pd_sample does): s_first, the grid's first sigma, and s_last,
 * its smallest nonzero sigma (for a one-step grid into sigma = 0, that of the same grid with two
 * steps). p->steps, or the steps that fit p->nfe. */
int pd_trajectory_span(const pd_denoiser *d, const pd_sample_params *p, double *s_first, double *s_last,
                       pd_error *err);
/* The reference for images first..first+count-1 of the request p (its seeds, classes, noise,
 * batch, guidance and callbacks; p->sample is the run being measured): end [count, C, H, W]
 * receives x(s_last), solved by Heun with ref_steps steps on a Karras grid (rho 7) from s_first
 * to s_last; zero (may be NULL) receives D(x(s_last); s_last), the run's own last step into
 * sigma = 0 taken from the exact state. A run whose grid ends at sigma = 0 (sched.end_at_zero)
 * is compared with zero, one that stops at sigma_min with end. stats: the reference's NFE per
 * image (the final step included) and its time. Any (first, count) split gives the same arrays. */
int pd_trajectory_reference(pd_denoiser *d, const pd_generate_params *p, int ref_steps, long long first,
                            int count, float *end, float *zero, pd_sample_stats *stats, pd_error *err);

/* ------------------------------------------------------------------ AMED (docs/algorithms.md §S4)
 * The predictor g_phi (§S4.4, samplers/amed_predictor.c): from the 64-value feature tap of an
 * interval's first denoiser call (pd_denoiser_eval_features; zeros on an AFS step or for a
 * denoiser without a tap) and the raw sigmas t_n > t_{n+1} it predicts, per image,
 *   r in (0, 1)                     the intermediate sigma s = t_{n+1}^r t_n^(1-r),
 *   c = 1 + s_dir (2 sigmoid - 1)   the scale of the step that uses d(y; s) (1 when s_dir = 0),
 *   a = 1 + s_time (2 sigmoid - 1)  the network is called at a s (1 when s_time = 0).
 * A predictor file is safetensors with the tensor names of the reference AMED_predictor module
 * (map_layer0, enc_layer0, enc_layer1, fc_r, fc_scale_dir, fc_scale_time) and
 * __metadata__["pixdiff.amed"], a JSON object recording what it was trained for (pd_amed_info). */

typedef enum {
    PD_AMED_SOLVER,       /* AMED-Solver (§S4.2): sampler amed */
    PD_AMED_PLUGIN_IPNDM, /* AMED-Plugin on iPNDM (§S4.6): sampler amed-plugin */
    PD_AMED_PLUGIN_EULER, /* AMED-Plugin on Euler (§S4.6): sampler amed-plugin */
    PD_AMED_KIND_COUNT
} pd_amed_kind;
const char *pd_amed_kind_name(pd_amed_kind k);  /* "solver", "plugin-ipndm", "plugin-euler" */
int pd_amed_kind_from_name(const char *name);   /* also accepts "ipndm", "euler"; -1 unknown */
pd_sampler_kind pd_amed_kind_sampler(pd_amed_kind k);

typedef struct pd_amed_info {
    pd_amed_kind kind;
    int steps;                /* intervals of the grid it was trained on (N - 1 timestamps' gaps) */
    int nfe;                  /* 2 steps - afs (stopping at sigma_min, docs/algorithms.md §S4.2) */
    int afs;
    pd_grid_kind grid;
    double rho, sigma_min, sigma_max;
    double s_dir, s_time;     /* head scales: 0 = that head is absent */
    int max_order;            /* plugin-ipndm: the AB order cap (4); 1 for the others */
    char teacher[16];         /* "heun" | "ipndm" */
    int teacher_m;            /* M: teacher steps per student interval = M + 1 */
    char model_sha256[65];    /* the model it was trained for ("" unknown) */
    char model_name[64];      /* its file name, for messages */
    long long images;         /* training trajectories (0: untrained) */
    int batch;
    double lr;
    uint64_t seed;
    double final_loss;        /* mean per-interval loss of the last training batch (0: none) */
} pd_amed_info;

/* A predictor with the init of §S4.4 (W_t Xavier-uniform, other weights N(0, 1/fan_in), biases 0;
 * Philox draws from seed); seed = 0 with zero_init = 1 gives all-zero weights, the neutral
 * predictor r = 1/2, c = a = 1. info->s_dir / s_time decide which heads exist. */
int pd_amed_predictor_create(pd_amed_predictor **out, const pd_amed_info *info, uint64_t seed,
                             int zero_init, pd_error *err);
int pd_amed_predictor_load(pd_amed_predictor **out, const char *path, pd_error *err);
int pd_amed_predictor_save(const pd_amed_predictor *p, const char *path, pd_error *err); /* atomic */
void pd_amed_predictor_free(pd_amed_predictor *p);
const pd_amed_info *pd_amed_predictor_info(const pd_amed_predictor *p);
size_t pd_amed_predictor_param_count(const pd_amed_predictor *p); /* 8950 with the c head */
/* g_phi on n images: feature [n, 64] (NULL: zeros) -> r, c, a [n] (any may be NULL). */
int pd_amed_predict(const pd_amed_predictor *p, const float *feature, int n, double t_cur,
                    double t_next, double *r, double *c, double *a, pd_error *err);
/* Sets sp's sampler, amed, grid, rho, sigma range, end (sigma_min), steps and afs to the
 * predictor's training settings; the rest of sp is left as it is. */
void pd_amed_sample_params(const pd_amed_predictor *p, pd_sample_params *sp);

/* Predictor training (distill/amed_train.c, docs/algorithms.md §S4.5). Per batch: initial noise z
 * (Philox, image g of the run: pd_randn(seed, 0x414D000000000000 + g)) and, for a conditional
 * model, a uniform random class; the teacher (heun for solver and plugin-euler, ipndm max_order 4
 * for plugin-ipndm; no AFS; stopping at sigma_min) runs on the finer grid of (M + 1) steps + 1
 * timestamps; then for each interval n in order the student's step from the teacher's state at
 * t_n (single-step students) or its own previous output (plugin-ipndm), the loss
 *   L_n = (1/B) sum_b sum_pixels (x_stu - x_tea(t_{n+1}))^2,
 * back-propagated through the frozen U-Net (w.r.t. its input and sigma) into g_phi, NaN/Inf
 * guard, one Adam step. The checkpoint (params, Adam state, batch count) is written atomically
 * after every batch; a resumed run is bit-identical to an uninterrupted one. */
typedef struct pd_amed_train_options {
    const char *model_path;   /* the frozen denoiser model */
    pd_amed_kind kind;        /* solver */
    int nfe;                  /* >= 2: odd = AFS with (nfe + 1)/2 steps, even = no AFS, nfe/2 steps */
    int batch;                /* 128 */
    long long images;         /* 10000: ceil(images / batch) batches */
    double lr;                /* 5e-3, Adam betas (0.9, 0.999), eps 1e-8 */
    double s_dir, s_time;     /* 0.01, 0 */
    int grid;                 /* pd_grid_kind, or -1: vp-time (solver), karras (plugins) */
    double rho;               /* <= 0: the grid's default (vp-time 1, karras 7) */
    int teacher_m;            /* 0: 1 (heun teacher), 2 (ipndm teacher) */
    uint64_t seed;            /* 0 */
    int micro_batch;          /* images per U-Net backward (memory only, no effect on results); 0: 32 */
    const char *out_path;     /* the predictor file; required */
    const char *checkpoint;   /* NULL: <out_path>.ckpt */
    int resume;               /* 1: continue from the checkpoint (required if one exists) */
    /* progress: after every batch (what "amed", unit "images": trajectories trained on, rate and
     * ETA of this session; losses[n_losses] the per-interval losses of that batch). */
    void (*progress)(void *user, const pd_progress *p);
    int (*abort)(void *user); /* non-zero: stop after the current batch (checkpoint kept) */
    void (*log)(void *user, const char *line);
    void *user;
} pd_amed_train_options;
pd_amed_train_options pd_amed_train_default_options(void);
int pd_amed_train(const pd_amed_train_options *o, pd_error *err);

/* ------------------------------------------------------------------ files */

/* mkdir -p: creates dir and every missing parent (mode 0777 before the umask); an existing
 * directory is fine, an existing non-directory is an error naming it. */
int pd_make_dirs(const char *dir, pd_error *err);

/* .npy: float32, C order, any rank up to 4 (shape[] filled, *ndim set). *data is malloc'd. */
int pd_npy_read(const char *path, float **data, int shape[4], int *ndim, pd_error *err);
int pd_npy_write(const char *path, const float *data, const int *shape, int ndim, pd_error *err);

/* A numeric CSV table (core/csv.c): the first line names the columns, every later non-empty line
 * has one value per column. Values that are empty or not numbers read as NaN (a gap in a plot);
 * a row with the wrong number of fields is an error naming file:line. */
typedef struct pd_csv {
    char **names;             /* [n_cols] */
    double *v;                /* [n_rows * n_cols], row-major */
    int n_rows, n_cols;
} pd_csv;
int pd_csv_read(const char *path, pd_csv *t, pd_error *err);
int pd_csv_column(const pd_csv *t, const char *name);   /* its index, or -1 */
void pd_csv_free(pd_csv *t);

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
/* The *.png names (any case) in dir, sorted by strcmp; fails naming dir when it cannot be
 * opened or holds none. Free with pd_png_list_free. */
int pd_png_list(const char *dir, char ***names, int *count, pd_error *err);
void pd_png_list_free(char **names, int count);

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
    /* progress: about once a second and at the end (what "train", unit "images": images seen,
     * loss the running mean of the mean weighted per-pixel EDM loss). abort: non-zero stops after
     * the current step, saves a
     * checkpoint and makes pd_train fail with an "interrupted" message. log: one line per event
     * (resumed, checkpoint, snapshot, export). */
    void (*progress)(void *user, const pd_progress *p);
    int (*abort)(void *user);
    void (*log)(void *user, const char *line);
    void *user;
} pd_train_options;

pd_train_options pd_train_default_options(void);
int pd_train(const pd_train_options *o, pd_error *err);
/* Writes the EMA weights of a training checkpoint as a model file (with its model config). */
int pd_train_export(const char *checkpoint, const char *out_model, pd_error *err);

/* ------------------------------------------------------------------ SiD distillation (distill/sid*.c)
 * Score identity Distillation (docs/algorithms.md §M1) of a teacher denoiser into a one-step generator,
 * from a YAML config (configs/distill/sid-*.yaml, distill/sid_config.h). The run's files live in
 * the output directory: checkpoint.safetensors (f_psi, G, G_ema, both Adam states, progress;
 * atomic, every training.checkpoint_images, at the end and on abort; a resumed run is
 * bit-identical to an uninterrupted one), sid-log.csv (one line per checkpoint: images, step,
 * hours, both mean losses, img/s), fd-log.csv (images, step, hours, FD, KID, class accuracy,
 * precision, recall of G_ema's samples, every eval.fd_images and at the start), generator-<images>.safetensors
 * snapshots (training.snapshot_images) and the final G_ema, a model of kind "generator". */

typedef struct pd_sid_options {
    const char *config_path;  /* YAML config; NULL with resume: the checkpoint's own */
    const char *teacher_path; /* overrides the config's teacher (required if the config has none) */
    const char *classifier_path; /* overrides eval.classifier */
    int resume;               /* 1: continue from <dir>/checkpoint.safetensors (required if one exists) */
    const char *out_dir;      /* overrides output.dir */
    const char *export_path;  /* final G_ema; NULL: <dir>/generator.safetensors */
    int threads;              /* > 0 overrides training.threads */
    long long duration_images; /* > 0 overrides training.duration_images */
    /* Warm start of a new run (not with resume): G and G_ema from this generator model (kind
     * "generator", the teacher's architecture), f_psi from the teacher, fitted alone on
     * psi_warmup_images images of G's samples first (< 0: the default, 6400; a multiple of the
     * batch). SiD itself starts G from the teacher; sid.h has the details. init_images: the
     * images the initial generator was distilled on (EDM's and SiD's resume_kimg), from which
     * G_ema's ramp-up continues (half-life ema.rampup × (init_images + images seen), capped);
     * 0 counts from this run's first image, which at first makes G_ema follow G almost exactly. */
    const char *init_generator_path;
    long long psi_warmup_images;
    long long init_images;
    /* progress: about once a second and at the end (what "sid", unit "images": images seen;
     * loss_psi, loss_theta running means, fd). abort: non-zero stops after the current
     * iteration, writes a checkpoint and makes pd_distill_sid fail with "interrupted". log: one
     * line per event (start/resume, checkpoint, FD, snapshot, export). */
    void (*progress)(void *user, const pd_progress *p);
    int (*abort)(void *user);
    void (*log)(void *user, const char *line);
    void *user;
} pd_sid_options;

pd_sid_options pd_sid_default_options(void);
int pd_distill_sid(const pd_sid_options *o, pd_error *err);
/* Writes G_ema of a SiD checkpoint as a generator model file (no teacher needed). */
int pd_sid_export(const char *checkpoint, const char *out_model, pd_error *err);

/* ------------------------------------------------------------------ data (core/fashion_mnist.c) */

#define PD_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Fashion-MNIST from the gzip IDX files in dir (NULL: PD_FASHION_MNIST_DIR; Debian package
 * dataset-fashion-mnist): train = 1 the 60000-image train split, 0 the 10000-image t10k (test)
 * split. *images [n,1,32,32] = u8/127.5 - 1, the 28x28 image padded by 2 pixels of -1 each side;
 * *labels [n] in 0..9 (pass labels = NULL to skip them). Both malloc'd. A missing or corrupt
 * file fails naming it and the package. */
int pd_fashion_mnist_load(const char *dir, int train, float **images, uint8_t **labels, int *n,
                          pd_error *err);

/* ------------------------------------------------------------------ metrics (metrics/)
 * Feature-space metrics on the penultimate features of a classifier (pd_classifier_features),
 * pixel-space trajectory error, and FFTW power spectra. All statistics are accumulated in double
 * in a fixed order, so results do not depend on the thread count. */

/* Mean and covariance (divisor n - 1) of n feature vectors [n, dim], in double. */
typedef struct pd_feature_stats {
    int dim;
    long long n;
    double *mu;               /* [dim] */
    double *sigma;            /* [dim, dim], symmetric */
} pd_feature_stats;
int pd_feature_stats_compute(pd_feature_stats *s, const float *features, int n, int dim,
                             pd_error *err);
void pd_feature_stats_free(pd_feature_stats *s);

/* Frechet distance between N(mu1, S1) and N(mu2, S2):
 *   FD = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt( sqrt(S1) S2 sqrt(S1) )
 * (the symmetric form of tr sqrt(S1 S2), so LAPACK's dsyevd applies twice; eigenvalues below 0,
 * which only rounding produces for PSD inputs, are clamped to 0). pd_fd fits the Gaussians to two
 * feature sets (n1, n2 >= 2) first. */
int pd_fd_gaussian(const double *mu1, const double *sigma1, const double *mu2,
                   const double *sigma2, int dim, double *fd, pd_error *err);
int pd_fd(const float *f1, int n1, const float *f2, int n2, int dim, double *fd, pd_error *err);

/* KID: the unbiased MMD^2 estimate with the kernel k(x, y) = (x.y/dim + 1)^3, averaged over
 * `subsets` pairs of subsets of m = min(subset_size, n1, n2) vectors drawn without replacement
 * from each set (Philox draws from `seed`: the same inputs give the same KID). std is the
 * standard deviation of the subset estimates, se = std / sqrt(subsets). */
typedef struct pd_kid_params {
    int subsets;              /* 100 */
    int subset_size;          /* 1000 */
    uint64_t seed;            /* 0 */
} pd_kid_params;
typedef struct pd_kid_result {
    double kid, std, se;
    int subsets, subset_size; /* as used (subset_size is m) */
} pd_kid_result;
pd_kid_params pd_kid_default_params(void);
int pd_kid(const float *f1, int n1, const float *f2, int n2, int dim, const pd_kid_params *p,
           pd_kid_result *r, pd_error *err);

/* Improved precision and recall (Kynkäänniemi et al. 2019, metrics/precision_recall.c): each
 * set's manifold is the union of balls reaching each point's k-th nearest neighbour in its own
 * set; precision = fraction of the generated vectors inside the real manifold, recall = fraction
 * of the real vectors inside the generated one (boundary inside). Euclidean distances in double;
 * the result does not depend on the thread count. Needs n_real, n_fake > k (the paper: k = 3 and
 * sets of equal size). O((n_real + n_fake)^2 dim). */
int pd_precision_recall(const float *real, int n_real, const float *fake, int n_fake, int dim,
                        int k, double *precision, double *recall, pd_error *err);

/* Fraction of the n rows of logits [n, K] whose argmax (the first on ties) is labels[i]. */
double pd_class_accuracy(const float *logits, const int *labels, int n, int K);
/* Trajectory error of samples x against a reference solution ref (same noise), count values:
 * rmse = sqrt(mean (x - ref)^2) and psnr = 10 log10(2^2 / mse) dB (data range 2: [-1, 1]);
 * psnr is +inf when x == ref. */
void pd_trajectory_error(const float *x, const float *ref, size_t count, double *rmse,
                         double *psnr);

/* s x s average pooling of x [n, C, H, W] (H, W multiples of s) into out [n, C, H/s, W/s]. */
int pd_avg_pool(float *out, const float *x, int n, int C, int H, int W, int s, pd_error *err);

/* Radially averaged power spectrum (FFTW r2c, metrics/spectrum.c) of square images
 * [n, C, N, N]: P(k) = mean over images, channels and the frequencies (ky, kx) with
 * round(sqrt(ky^2 + kx^2)) = k of |F(ky, kx)|^2 / N^2, F the unnormalised DFT. With this
 * normalisation white noise of variance v per pixel has E P(k) = v in every bin. Bins
 * k = 0..N/2 (pd_spectrum_bins(N) of them: the full rings inside the Nyquist radius; the corner
 * frequencies beyond N/2 are left out). power has pd_spectrum_bins(N) entries. */
int pd_spectrum_bins(int N);
int pd_radial_power_spectrum(const float *x, int n, int C, int N, double *power, pd_error *err);
/* The spectral error of generated images against data: the RMSE over bins k = 1..bins-1 (DC
 * left out: mean brightness is FD's business) of log10 P_gen(k) - log10 P_data(k). */
double pd_spectral_error(const double *p_gen, const double *p_data, int bins);

/* ---- evaluation against the Fashion-MNIST test split (metrics/eval.c, metrics/refstats.c)
 * The reference statistics (the classifier's features of the 10000 test images, their mean and
 * covariance, the data's power spectrum and the classifier's test accuracy) are computed once
 * and cached in a safetensors file whose metadata records what they came from: the sha256 of the
 * classifier file and of both data files, n, the feature dimension, the resolution and the
 * pixdiff version. A cache that differs in any of these (or cannot be read) is stale: it is
 * recomputed and rewritten atomically; if it cannot be written, the statistics are used from
 * memory and the log callback says why. Generated images at a resolution R = 32 m are m x m
 * average-pooled to the classifier's 32 x 32 first (upsample-guidance samples at 64 or 128 px),
 * and all metrics, the spectrum included, are taken at 32 x 32. */

typedef struct pd_eval pd_eval;
#define PD_PR_SEED 0x5052u    /* "PR": the subset draw of the precision/recall sets */

typedef struct pd_eval_options {
    const char *ref_cache;    /* NULL: pd_eval_default_cache_path */
    const char *data_dir;     /* Fashion-MNIST directory; NULL: PD_FASHION_MNIST_DIR */
    pd_kid_params kid;
    /* Precision/recall neighbourhood size (3, the paper's; 0 skips them). Both sets are taken at
     * the same size m = min(n, reference images): a fixed draw (Philox, seed PD_PR_SEED) of m of
     * the reference features, or of the generated ones when there are more of those. */
    int pr_k;
    /* one line per event (cache loaded, stale and why, computed, written, not writable) */
    void (*log)(void *user, const char *line);
    void *user;
} pd_eval_options;

typedef struct pd_eval_result {
    int n;                    /* images evaluated */
    double fd;
    pd_kid_result kid;
    int n_labelled;           /* images that came with a requested label */
    double accuracy;          /* classifier argmax == requested label; NaN when n_labelled = 0 */
    double spectral_error;    /* pd_spectral_error against the test split's spectrum */
    double precision, recall; /* pd_precision_recall, k = pr_k, on pr_n vectors of each set;
                                 NaN when pr_k = 0 or n <= pr_k */
    int pr_k, pr_n;
    int spectrum_bins;
    int ref_n;                /* reference images (10000) */
    double ref_accuracy;      /* the classifier's accuracy on the test split */
    char ref_path[1024];      /* the cache file used */
} pd_eval_result;

pd_eval_options pd_eval_default_options(void);
/* $XDG_CACHE_HOME/pixdiff/fashion-mnist-t10k-<first 16 hex of the classifier sha256>.safetensors,
 * or ~/.cache/pixdiff/... when XDG_CACHE_HOME is unset or empty. */
int pd_eval_default_cache_path(char *path, size_t cap, const pd_model *classifier, pd_error *err);
/* Loads (or computes and caches) the reference statistics for the classifier, which must be a
 * classifier loaded from a file (its sha256 keys the cache) and must outlive the evaluator. */
int pd_eval_create(pd_eval **out, pd_model *classifier, const pd_eval_options *o, pd_error *err);
/* Adds n images [n, C, R, R] (C the classifier's channels, R a multiple of its resolution).
 * labels[i] is the class image i was asked to be, or -1 for none; labels may be NULL. */
int pd_eval_add(pd_eval *ev, const float *x, int n, int C, int R, const int *labels,
                pd_error *err);
/* The metrics of everything added so far (needs n >= 2). */
int pd_eval_finish(pd_eval *ev, pd_eval_result *r, pd_error *err);
void pd_eval_reset(pd_eval *ev);   /* forgets the added images, keeps the reference */
void pd_eval_free(pd_eval *ev);

/* ---- Inception-v3 features and FID (metrics/inception*.c, metrics/fid*.c, core/npz.c)
 * The FID network is pytorch-fid's Inception-v3 (the TF inception-2015-12-05 graph; Heusel et al.
 * 2017), forward only, float32 with BatchNorm folded into the convolutions; its 2048 pool3
 * features per image. Weights: a safetensors file with pytorch-fid's state-dict names, made by
 * `pixdiff convert pt_inception-2015-12-05-6726825d.pth inception.safetensors`. An image's
 * features are a function of its pixels alone: not of the batch, its neighbours or the thread
 * count. Images reach the network as 8 bits (float images are quantised exactly as PNGs are,
 * pd_quantise_u8), so a PNG folder and the same samples in memory give the same features. */

/* u8 = trunc(clip(x*127.5 + 128, 0, 255)), NaN -> 0: the PNG writer's quantisation (DESIGN.md). */
uint8_t pd_quantise_u8(float x);

/* How an 8-bit image becomes the 3 x 299 x 299 network input (gray replicated to RGB first):
 *   pytorch-fid: x = u8/255, bilinear resize to 299 x 299 as torch's F.interpolate
 *                (align_corners=False, half-pixel centres, edge clamp), then 2x - 1
 *                (pytorch-fid's resize_input and normalize_input);
 *   edm:         the StyleGAN3 TorchScript detector EDM's and SiD's fid.py call on uint8
 *                images: bilinear resize with TF1's legacy sampling (source = j in/299, no
 *                half-pixel shift, border clamp) on the 0..255 values, then (x - 128)/128.
 * docs/fid.md states what else differs and how close the edm mode can get. */
typedef enum { PD_FID_PREP_PYTORCH_FID, PD_FID_PREP_EDM, PD_FID_PREP_COUNT } pd_fid_prep;
const char *pd_fid_prep_name(pd_fid_prep p);       /* "pytorch-fid", "edm" */
int pd_fid_prep_from_name(const char *name);        /* -1 unknown */

#define PD_INCEPTION_DIM 2048
typedef struct pd_inception pd_inception;
/* Loads the safetensors weights (every convolution and BatchNorm tensor with its shape; errors
 * name the missing or misshapen tensor). */
int pd_inception_load(pd_inception **out, const char *path, pd_error *err);
void pd_inception_free(pd_inception *net);
const char *pd_inception_path(const pd_inception *net);
/* Features [n, 2048] of n 8-bit images u8 [n, C, H, W], C = 1 or 3, any H, W >= 1. */
int pd_inception_features_u8(pd_inception *net, const uint8_t *u8, int n, int C, int H, int W,
                             pd_fid_prep prep, float *features, pd_error *err);
/* The same for float images in [-1, 1], quantised with pd_quantise_u8 first. */
int pd_inception_features(pd_inception *net, const float *x, int n, int C, int H, int W,
                          pd_fid_prep prep, float *features, pd_error *err);

/* FID statistics files: .npz with float64 `mu` [d] and `sigma` [d, d] (EDM's fid-refs/NAME.npz,
 * pytorch-fid --save-stats), entries stored or deflated; other entries are ignored. Reading
 * checks the shapes (and that d matches `dim` when dim > 0); s->n is 0 (the file does not say).
 * Writing is atomic and stores the entries uncompressed, as numpy's savez (readable by
 * numpy.load, pytorch-fid and EDM). */
int pd_npz_stats_read(const char *path, pd_feature_stats *s, int dim, pd_error *err);
int pd_npz_stats_write(const char *path, const pd_feature_stats *s, pd_error *err);

/* FID reference statistics (metrics/fid_eval.c): mean and covariance (double, divisor n - 1, as
 * numpy.cov) of the Inception features of a set, with the features when they were computed here
 * (for KID; none from an .npz). source is one of
 *   FILE.npz                     statistics (pd_npz_stats_read; n = 0);
 *   DIR                          the PNGs of DIR, sorted by name;
 *   FILE.npy                     float32 images [N, C, H, W] (C = 1 or 3) or [N, H, W] in [-1, 1];
 *   fashion-mnist:test|train     the split as pixdiff's models see it (28 x 28 padded to 32 x 32).
 * Images are quantised to 8 bits as PNGs are, then go through the network with `prep`. */
typedef struct pd_fid_ref {
    pd_feature_stats stats;
    float *features;          /* [n, 2048] or NULL */
    int n;                    /* images (0 for an .npz) */
    char source[1024];
} pd_fid_ref;
typedef struct pd_fid_ref_options {
    int max_n;                /* > 0: only the first max_n images */
    const char *data_dir;     /* Fashion-MNIST directory; NULL: PD_FASHION_MNIST_DIR */
    /* after each chunk of images (what "fid-ref", unit "images"); not called for an .npz */
    void (*progress)(void *user, const pd_progress *p);
    void *user;
} pd_fid_ref_options;
int pd_fid_ref_load(pd_fid_ref *r, pd_inception *net, const char *source, pd_fid_prep prep,
                    const pd_fid_ref_options *o, pd_error *err);
void pd_fid_ref_free(pd_fid_ref *r);

/* FID of n feature vectors [n, 2048] against a reference (pd_fd_gaussian on double statistics),
 * and, when the reference has features (else NaN): KID (pd_kid, params kid; NULL skips it) and
 * precision/recall (pd_precision_recall with k = pr_k, 0 skips them) on sets of equal size
 * m = min(n, ref n), drawn as pd_eval draws them (Philox seed PD_PR_SEED). singular = 1 when
 * either set has n <= 2048 images, where the covariance is singular and the FID biased upward
 * (papers use 50,000). */
typedef struct pd_fid_result {
    int n, ref_n;
    double fid;
    pd_kid_result kid;
    double precision, recall;
    int pr_k, pr_n;
    int singular;
} pd_fid_result;
int pd_fid_compute(const float *features, int n, const pd_fid_ref *ref, const pd_kid_params *kid,
                   int pr_k, pd_fid_result *r, pd_error *err);

/* ---- SNR analysis (metrics/snr.c; docs/algorithms.md §M3.1, §M3.3)
 * The data's radially averaged power spectrum at an analysis resolution `size` (the data
 * average-pooled, or nearest-upsampled, from its own N to size; both must divide one another)
 * and after p x p average pooling for each p in pools. For an EDM noise level sigma, white noise
 * has power sigma^2 per bin at the analysis resolution and sigma^2 / p^2 after pooling, so the
 * per-frequency SNR of the noisy image seen through p x p pooling is
 *   SNR_p(k; sigma) = p^2 P_p(k) / sigma^2,
 * and its logSNR is -2 ln sigma + 2 ln p (pooling multiplies SNR by p^2). Bin k of a pooled
 * image of side size/p is the relative frequency f = k / (size/p) cycles per pixel. */
#define PD_SNR_MAX_POOLS 4
typedef struct pd_snr_spectra {
    int size, n_pools;
    int pools[PD_SNR_MAX_POOLS];
    int bins[PD_SNR_MAX_POOLS];        /* pd_spectrum_bins(size / p) (bin 0 = DC) */
    double *power[PD_SNR_MAX_POOLS];   /* [bins] P_p(k) */
} pd_snr_spectra;
int pd_snr_spectra_compute(pd_snr_spectra *s, const float *x, int n, int C, int N, int size,
                           const int *pools, int n_pools, pd_error *err);
void pd_snr_spectra_free(pd_snr_spectra *s);
/* A named sigma grid: its nonzero sigmas in decreasing order (a trailing 0 is ignored). Grid
 * position t runs from 1 at sigma[0] to 0 at the last nonzero sigma: t_i = 1 - i/(n - 1). */
typedef struct pd_snr_schedule {
    const char *name;
    const double *sigma;
    int n;
} pd_snr_schedule;
/* CSV (written atomically), one row per (schedule, grid point, pool, frequency bin k >= 1):
 *   schedule,step,t,sigma,logsnr,pool,logsnr_pooled,bin,freq,data_power,log10_snr
 * logsnr = -2 ln sigma, logsnr_pooled = logsnr + 2 ln p, freq = k / (size/p),
 * data_power = P_p(k), log10_snr = log10(p^2 P_p(k) / sigma^2). */
int pd_snr_write_csv(const char *path, const pd_snr_spectra *s, const pd_snr_schedule *sched,
                     int n_sched, pd_error *err);

/* ------------------------------------------------------------------ plots
 * Line plots as PNG through PLplot's cairo driver (plot/plot.c): axes, ticks, log axes and a
 * legend come from the library, not from pixels drawn by hand. Written atomically. */

typedef struct pd_plot_series {
    const char *label;
    const double *x, *y;      /* n points; NaN y values are skipped (a gap) */
    int n;
    int color;                /* palette colour and marker, 1-based; 0: by the series' position */
    int style;                /* PLplot line style 1..8 (1 solid); 0: by the series' position */
} pd_plot_series;

typedef struct pd_plot_opts {
    const char *title, *xlabel, *ylabel;
    int logx, logy;
    int width, height;        /* pixels; 0 = 800 x 560 */
} pd_plot_opts;

int pd_plot_lines(const char *path, const pd_plot_opts *o, const pd_plot_series *s, int ns,
                  pd_error *err);

/* ------------------------------------------------------------------ sweeps (sweep/)
 * A sweep file (YAML, docs/sweeps.md; configs/sweeps/) names a model, samplers with their options
 * and schedules, NFE budgets, optional variants (SNR shift, sampling size, upsample guidance,
 * Skip-Tuning), n, seed, batch, labels and metrics. pd_sweep_run validates all of it first (one
 * error naming file:line: key), then runs every cell (variant x sampler x budget; a budget means
 * at most that many evaluations, the NFE spent is recorded) that is not already in
 * <output>/results.jsonl, appending one JSON line per cell with fsync and regenerating
 * results.csv, results.md and plot_<metric>.png atomically after each, so a kill loses at most
 * the cell in progress and a re-run resumes. Image i of every cell uses seed + i. */

typedef struct pd_sweep_options {
    const char *out_dir;      /* overrides the file's `output` when non-NULL */
    int dry_run;              /* 1: validate, list the cells through log (done or to do), write nothing */
    int threads;              /* > 0 overrides the file's `threads`; both 0: the current setting */
    /* progress: at each cell's (and reference's) start and after every sampler step (what
     * "sweep", stage the cell, unit "evals"; cell, cells, todo_index, todo; images and step of
     * the cell; eta for the whole run); log: one line per event (plan, cell results, notes);
     * abort: non-zero stops at the next step; the cell in progress is dropped and pd_sweep_run
     * fails with an "interrupted" message. */
    void (*progress)(void *user, const pd_progress *p);
    void (*log)(void *user, const char *line);
    int (*abort)(void *user);
    void *user;
} pd_sweep_options;

typedef struct pd_sweep_summary {
    int cells, already_done, ran;
    double seconds;
    double outside_denoiser_max;  /* the largest fraction of sampling time outside the denoiser
                                   * among the cells run (NaN when none ran) */
    /* The cells run now: their images (n per cell; under mpirun all ranks' together) and the wall
     * time from the first cell's start to the last one's record (references included), so
     * images / cell_seconds is the run's throughput whatever the number of ranks. */
    long long images;
    double cell_seconds;
    char out_dir[1024];
} pd_sweep_summary;

pd_sweep_options pd_sweep_default_options(void);
/* summary may be NULL. */
int pd_sweep_run(const char *path, const pd_sweep_options *o, pd_sweep_summary *summary,
                 pd_error *err);

/* ------------------------------------------------------------------ checkpoint conversion
 * `pixdiff convert` (convert/): EDM/SiD network snapshots (.pkl), torch .pth/.pt state dicts and
 * plain safetensors state dicts into pixdiff's safetensors. Pickles are read by a restricted
 * reader that never executes anything the file embeds (core/pickle.h). Reading and writing are
 * separate calls so a caller can tell a bad input file from a failed write. */

typedef struct pd_converted pd_converted;   /* what was read: tensors + metadata; opaque */

typedef struct pd_convert_params {
    const char *key;          /* the snapshot dict's entry holding the network ("ema") */
    int generator;            /* mark the result as a one-step generator (SiD, SiDA) */
    double sigma_init;        /* its sigma (SiD's init_sigma, 2.5; not stored in the files) */
    const char *config;       /* YAML/JSON architecture (pixdiff.config keys) for a plain state
                               * dict with EDM's names; NULL for snapshots */
    /* progress (what "convert"): stage "reading" (unit "files", 0 then 1 of 1), "converting"
     * (unit "values": tensor elements converted) and "writing" (unit "files"). */
    void (*progress)(void *user, const pd_progress *p);
    void *user;
} pd_convert_params;

pd_convert_params pd_convert_default_params(void);
/* Reads and checks IN; fails (naming the file and what is wrong) for anything it cannot convert. */
int pd_convert_read(pd_converted **out, const char *in, const pd_convert_params *p, pd_error *err);
/* Writes OUT atomically (temporary file + rename); nothing is left behind on failure. */
int pd_convert_write(const pd_converted *c, const char *out, const pd_convert_params *p,
                     pd_error *err);
/* One line saying what was found ("EDMPrecond + SongUNet (DDPM++), 10 classes"). */
const char *pd_converted_summary(const pd_converted *c);
/* The metadata written: keys and values (e.g. "pixdiff.config" and its JSON); NULL past the end. */
const char *pd_converted_meta(const pd_converted *c, int i, const char **value);
int pd_converted_tensor_count(const pd_converted *c);
size_t pd_converted_param_count(const pd_converted *c);   /* values: parameters and buffers */
void pd_converted_free(pd_converted *c);

#ifdef __cplusplus
}
#endif
#endif /* PIXDIFF_H */
