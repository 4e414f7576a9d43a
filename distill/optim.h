/* optim.h — the optimiser pieces of the trainers: Adam with linear learning-rate warm-up, global-norm
 * gradient clipping, the NaN/Inf gradient guard and EDM's EMA of the weights.
 *
 * Contract: every function is a plain loop over n floats laid out like pd_model.params (songunet.h),
 * so one implementation serves the base trainer, AMED and SiD. Elementwise updates are threaded
 * with OpenMP; the one reduction (the gradient norm) sums fixed 64 Ki-element chunks in double and
 * then adds the chunk sums in index order, so the result never depends on the thread count.
 * Nothing here allocates.
 */
#ifndef PD_OPTIM_H
#define PD_OPTIM_H

#include <stddef.h>

typedef struct opt_adam {
    double lr;                /* peak learning rate */
    double beta1, beta2, eps; /* PyTorch Adam (with bias correction) */
    long long warmup_images;  /* lr ramps linearly from 0 to lr over this many images (0: none) */
    double grad_clip;         /* max global L2 norm of the gradient; <= 0: no clipping */
} opt_adam;

/* The guard of docs/algorithms.md §M1.4 (SiD's nan_to_num): NaN -> 0, +Inf -> 1e5, -Inf -> -1e5.
 * Returns how many elements were replaced. */
size_t opt_sanitize(float *g, size_t n);

/* sqrt(sum g^2), accumulated in double in a thread-count-independent order. */
double opt_global_norm(const float *g, size_t n);

/* If max_norm > 0 and the norm exceeds it, scales g by max_norm / norm. Returns the norm before
 * clipping. */
double opt_clip(float *g, size_t n, double max_norm);

/* Learning rate for the step that brings the run to `images_after` images:
 * lr * min(images_after / warmup_images, 1) (EDM's lr_rampup, counted after the step so the very
 * first step is not wasted with lr = 0). */
double opt_lr(const opt_adam *a, long long images_after);

/* One Adam step (Kingma & Ba Alg. 1, PyTorch's arithmetic): t is the 1-based step count,
 *   m = b1 m + (1-b1) g,  v = b2 v + (1-b2) g^2,
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps). */
void opt_adam_step(float *p, float *m, float *v, const float *g, size_t n, double lr,
                   double beta1, double beta2, double eps, long long t);

/* EDM EMA decay (docs/algorithms.md §M1.6): halflife = min(halflife_images, rampup * cur_nimg) when
 * rampup > 0, beta = 0.5^(batch / max(halflife, 1e-8)). cur_nimg is the image count BEFORE the
 * step, as in EDM's training loop, so the first update copies the weights (beta = 0). */
double opt_ema_beta(double halflife_images, double rampup, long long cur_nimg, int batch);

/* ema = p + beta (ema - p)  (torch.lerp(p, ema, beta)). */
void opt_ema_update(float *ema, const float *p, size_t n, double beta);

#endif
