/* sid.h — Score identity Distillation (docs/algorithms.md §M1): a one-step generator G_theta distilled from
 * a pretrained EDM denoiser f_phi with the help of a fake-score network f_psi.
 *
 * Contract: a sid_distiller owns three networks of the teacher's architecture (the frozen teacher
 * f_phi, f_psi and G_theta, both initialised from the teacher), G_theta's EMA, both Adam states
 * and gradients (one arena, all laid out like pd_model.params), three keep = 1 unet_runs sized for
 * the batch (one per network, because the theta step keeps the activations of all three alive
 * for its backward) and the batch buffers; nothing is allocated inside sid_iteration.
 *
 * G (§M1.2): x_g = D_theta(sigma_init z; sigma_init, label), one evaluation of the EDM denoiser.
 *
 * One iteration (§M1.8) = one psi step on B fresh generator samples, then one theta step on B
 * other fresh ones; images_seen advances by B. Every random draw is a pure function of the run
 * seed and a position (Philox, core/rng.h), so the saved state (psi, theta, theta_ema, both Adam
 * states, images_seen) determines the rest of the run and a resumed run is bit-identical:
 *   psi step, image g = images_seen + i:  z  stream SID_STREAM_PSI_Z + g, n stream
 *     SID_STREAM_PSI_N + g (pd_randn), words of rng_randu stream SID_STREAM_PSI_AUX + g:
 *     0-1 Box-Muller for ln sigma ~ N(p_mean, p_std^2), 2 the label (uniform over the classes);
 *   theta step, image g: streams SID_STREAM_TH_Z/N/AUX + g, aux word 0 u ~ U(0, tmax/1000),
 *     word 2 the label;
 *   dropout masks: f_psi in the psi step SID_STREAM_DROP_PSI + iteration, G in the theta step
 *     SID_STREAM_DROP_G + iteration (unet_opts.dropout_stream; the U-Net derives per-block
 *     streams), key gs_dropout_seed(seed, share) for each gradient share of the step.
 * Each step's gradient is the fixed-tree sum of its shares' gradients (distill/grad_shares.h),
 * so the ranks of an mpirun job distil the bits one process distils with the same batch.
 * Workers: in one process the shares run on up to pd_get_threads() share workers at once
 * (grad_shares.h "Workers"), each share single-threaded inside; a share uses the batch buffers
 * of its own images (first .. first + n - 1, disjoint from every other share's) and its worker's
 * three runs (worker 0: run_t, run_psi, run_g; worker k >= 1: wrun[k], sized for one share).
 * The tree and every share's bits are unchanged, so any worker count gives the bits of one.
 *
 * psi loss (§M1.3): L_psi = (1/B) sum_i lambda(sigma_i) sum_pix (f_psi(x_g + sigma n) - x_g)^2,
 *   G in eval mode without gradient, f_psi in train mode (dropout).
 * theta loss (§M1.4): sigma = Karras(u), x_t = x_g + sigma n (not detached),
 *   D_r = f_phi(x_t), D_f = f_psi(x_t) (eval, frozen, input gradients on),
 *   w = sg(1 / max(meanpix |x_g - D_r|, 1e-5)),
 *   L_i = w sum_pix (D_r - D_f) (.) ((D_r - x_g) - alpha (D_r - D_f)),
 *   L_theta = (lsg / B) sum_i L_i, its gradient reaching theta through the explicit -x_g and
 *   through f_phi and f_psi with respect to their input (§M1.5), then G's backward.
 * Both gradients pass the NaN/Inf guard (opt_sanitize) before Adam; a sample whose x_g, D_r or
 * D_f (or prediction, in the psi step) holds a non-finite value is dropped from its loss.
 * Reported losses: psi, the mean EDM-weighted per-pixel loss (as the base trainer reports);
 * theta, (1/B) sum_i L_i / (C H W) (without lsg).
 */
#ifndef PD_SID_H
#define PD_SID_H

#include "distill/grad_shares.h"
#include "distill/sid_config.h"
#include "unet/songunet.h"

#define SID_STREAM_PSI_Z   0x535A000000000000ull /* "SZ" + global image index */
#define SID_STREAM_PSI_N   0x534E000000000000ull /* "SN" */
#define SID_STREAM_PSI_AUX 0x5341000000000000ull /* "SA" */
#define SID_STREAM_TH_Z    0x545A000000000000ull /* "TZ" */
#define SID_STREAM_TH_N    0x544E000000000000ull /* "TN" */
#define SID_STREAM_TH_AUX  0x5441000000000000ull /* "TA" */
/* Dropout streams stay below 2^48: the U-Net multiplies them by 4096 for per-block streams. */
#define SID_STREAM_DROP_PSI 0x0000535000000000ull /* "SP" + iteration */
#define SID_STREAM_DROP_G   0x0000534700000000ull /* "SG" + iteration */
/* Warm start (sid_init_generator): the fake-score-only warm-up draws its psi-step images from the
 * psi streams at SID_WARM_IMAGE0 + warm-up image index (never reached by a run's own images) and
 * its dropout masks from SID_STREAM_DROP_WARM + warm-up iteration. */
#define SID_WARM_IMAGE0 (1ll << 44)
#define SID_STREAM_DROP_WARM 0x0000535700000000ull /* "SW" + warm-up iteration */
#define SID_DEFAULT_WARMUP_IMAGES 6400
/* The largest initial image count a warm start takes (far beyond any run; keeps the EMA count
 * init_images + images seen from overflowing, also for a hostile checkpoint). */
#define SID_MAX_INIT_IMAGES 1000000000000000ll
#define SID_CHECKPOINT_FORMAT "1"

typedef struct sid_distiller {
    sid_config cfg;
    pd_model *teacher, *psi, *gen;           /* gen: kind "generator", sigma_init */
    size_t n_params;
    float *theta_ema, *psi_m, *psi_v, *theta_m, *theta_v, *grad_psi, *grad_theta; /* one arena */
    unet_run *run_t, *run_psi, *run_g;
    unet_run *wrun[GS_MAX_SHARES][3];        /* share workers 1..: f_phi, f_psi and G runs */
    int B, C, H, label_dim;
    size_t chw;
    /* batch buffers [B*chw] unless noted */
    float *z, *noise, *xin, *xg, *xt;        /* G's noise, x_t's noise, sigma_init z, G(.), x_t */
    float *Dr, *Df, *gDr, *gDf, *gxg, *gxt;  /* f_phi, f_psi outputs; dL/dD_r, dL/dD_f, dL/dx_g,
                                                dL/dx_t (the psi step uses Df, gDf) */
    float *sigma, *sig_init, *w;             /* [B] */
    float *labels;                           /* [B*label_dim] (or [B] unused) */
    long long images_seen, step;
    double seconds;                          /* distillation wall time, across resumes */
    double last_loss_psi, last_loss_theta;
    size_t nonfinite;                        /* gradient entries the guard replaced, total */
    long long dropped;                       /* samples dropped for non-finite values, total */
    gs_plan shares;                          /* the steps' gradient shares (grad_shares.h) */
    /* Warm start: G and G_ema copied from init_path; f_psi fitted alone for warm_total images
     * (warm_seen done so far) before the first theta step; init_images, the images the initial
     * generator was distilled on, where G_ema's ramp-up continues from. 0 / "" for a run from
     * the teacher. */
    long long warm_total, warm_seen, init_images;
    char init_path[1024], init_sha256[65];
    char teacher_sha256[65];
} sid_distiller;

/* Loads nothing: builds the distiller around an already loaded teacher, which it takes over (it
 * is freed with the distiller, also on failure). The teacher must be an EDM-preconditioned
 * SongUNet denoiser of square images. */
int sid_create(sid_distiller **out, const sid_config *cfg, pd_model *teacher, pd_error *err);
void sid_free(sid_distiller *s);

/* Warm start from an already distilled generator g (a model of kind "generator" of the teacher's
 * architecture and this config's sigma_init; not taken over): G and G_ema become copies of g, f_psi
 * stays the teacher, and the run first fits f_psi alone on warmup_images images of G's samples
 * (sid_warmup_iteration) before the alternating iterations. G_ema's EMA ramp-up then counts
 * init_images + images seen (>= 0; EDM's and SiD's resume_kimg: a run continued from a snapshot
 * averages over as many images as the run that made it would have): counted from 0 instead, the
 * half-life (ema.rampup × images) starts at a fraction of one batch and G_ema drops the average
 * the initial generator carries within the first iteration. Only on a fresh distiller. */
int sid_init_generator(sid_distiller *s, const pd_model *g, long long warmup_images,
                       long long init_images, pd_error *err);
/* One fake-score-only iteration of the warm-up: a psi step (sid_psi_update's loss and Adam, with
 * the warm-up's own draws and dropout masks) on the next B warm-up images; G, G_ema, the theta
 * Adam state, images_seen and step stay as they are; warm_seen advances by B. f_psi's Adam counts
 * its steps across the warm-up and the run (step + warm_seen / B), so its bias correction is
 * that of one continuous optimiser. */
int sid_warmup_iteration(sid_distiller *s, double *loss_psi, pd_error *err);

/* Fills z, noise, sigma, labels (and sig_init, xin = sigma_init z) for images first .. first+n-1
 * of the psi stream (theta = 0) or the theta stream (theta = 1), with the draws of the header. */
void sid_draw(sid_distiller *s, long long first, int n, int theta);

/* Karras position u in [0, 1] -> sigma: (smax^(1/rho) + (1-u)(smin^(1/rho) - smax^(1/rho)))^rho
 * with rho 7, smin 0.002, smax 80 (§M1.4, u = 0 the clean end). */
double sid_karras_sigma(double u);

/* The psi loss on the buffers sid_draw filled (n images): x_g = G(xin) in eval mode, then the
 * EDM loss of f_psi under opts (train for dropout). With grad != NULL accumulates dL/dpsi. */
int sid_psi_loss(sid_distiller *s, int n, const unet_opts *opts, float *grad, double *loss,
                 pd_error *err);
/* The theta loss on the buffers sid_draw filled: x_g = G(xin) under g_opts, L_theta as in the
 * header. w_fixed != NULL uses those weights instead of computing them (the stop-gradient made
 * explicit, for finite-difference checks); the weights used end up in s->w. With grad != NULL
 * runs the three backward passes and accumulates dL/dtheta. *loss = L_theta (with lsg / n). */
int sid_theta_loss(sid_distiller *s, int n, const unet_opts *g_opts, const float *w_fixed,
                   float *grad, double *loss, pd_error *err);

/* The optimiser halves of an iteration on the next B images of their stream (from images_seen),
 * each share drawn into its own images' place in the buffers (which hold the whole batch after,
 * the losses' intermediates of each share's last pass): gradient, guard, Adam. sid_theta_update also updates the EMA of G from images_seen. Neither
 * advances images_seen or step. */
int sid_psi_update(sid_distiller *s, double *loss, pd_error *err);
int sid_theta_update(sid_distiller *s, double *loss, pd_error *err);

/* One full iteration (psi step, theta step, EMA) on the next B images of each stream. */
int sid_iteration(sid_distiller *s, double *loss_psi, double *loss_theta, pd_error *err);

/* G_ema's samples for the images with seeds seed0 .. seed0+n-1 (z = pd_randn(seed, 0), label of
 * image k = k mod label_dim), written to out [n, chw] by pd_generator_generate (batch B). */
int sid_generate_ema(sid_distiller *s, float *out, int n, uint64_t seed0, pd_error *err);

/* Checkpoint: one safetensors file with sid.psi, sid.theta, sid.theta_ema, sid.psi_adam_m/v,
 * sid.theta_adam_m/v (1-D, n_params each) and metadata: format, images seen, step, seconds,
 * seed, RNG position, last losses, the YAML text, the teacher's path and sha256, and the
 * generator's model config, in the container of distill/checkpoint.h; a warm-started run adds
 * init_generator, init_generator_sha256, psi_warmup_images and warmup_seen. Atomic (st_write). */
int sid_save_checkpoint(const sid_distiller *s, const char *path, pd_error *err);
/* Restores a checkpoint into a distiller built from a compatible config and the same teacher. */
int sid_load_checkpoint(sid_distiller *s, const char *path, pd_error *err);
/* Reads only the config embedded in a checkpoint. */
int sid_checkpoint_config(const char *path, sid_config *cfg, pd_error *err);

/* Writes G_ema as a normal model file: the teacher's architecture with kind "generator" and
 * sigma_init in pixdiff.config, so pd_generator_from_model opens it (one evaluation per image). */
int sid_export(sid_distiller *s, const char *path, pd_error *err);
/* The same from a checkpoint file alone (no teacher needed). */
int sid_export_checkpoint(const char *ckpt, const char *out_model, pd_error *err);

#endif
