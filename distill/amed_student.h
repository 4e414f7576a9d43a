/* amed_student.h — one AMED student interval, forward and backward into g_phi (docs/algorithms.md §S4.5).
 *
 * The interval t0 -> t1 of n images starts from x (the teacher's state for single-step students,
 * the student's own for the iPNDM plugin) whose first denoiser call is already made: its feature
 * f and the first half's direction A1 (d_n, or the plugin's AB_p(d_n; H)) are constants (no
 * gradient flows into the first call, as in the reference, where the hooked feature is detached
 * and x_n does not depend on phi). With (r, c, a) = g_phi(f, t0, t1) per image:
 *   s = t1^r t0^(1-r),  y = x + (s - t0) A1,  d_s = (y - D(y; a s))/s,  A2 = alpha0 d_s + K
 *   solver / single-step:  x' = x + c (t1 - t0) A2       (alpha0 = 1, K = 0)
 *   plugin:                x' = y + c (t1 - s) A2        (alpha0, K: AB_p's newest coefficient
 *                                                          and the history part, §S4.6)
 * and the loss L = (1/n) sum_b sum_pixels (x'_b - target_b)^2. The backward runs the frozen U-Net
 * in reverse for dL/dy and dL/d(sigma) (unet_denoise_backward, dparams = NULL), then
 *   dL/dc = H2 <g, A2>,  dL/da = s dL/dsigma,  dL/dr = dL/ds s ln(t1/t0), with
 *   dL/ds = <dL/dy, A1> + a dL/dsigma - <gd, d_s>/s - [plugin] c <g, A2>,
 * g = dL/dx', gd = alpha0 c H2 g (H2 = t1 - t0 or t1 - s), dL/dy = gd/s + J_D^T(-gd/s) + [plugin] g,
 * and g_phi's backward accumulates the parameter gradient (double) image by image in order.
 *
 * The U-Net runs in micro-batches of the student's run (memory only): every quantity above is
 * per image, and the U-Net's result for an image does not depend on its batch, so the gradient
 * does not depend on the micro-batch size.
 */
#ifndef PD_AMED_STUDENT_H
#define PD_AMED_STUDENT_H

#include "samplers/amed_predictor.h"
#include "unet/songunet.h"

typedef struct amed_interval {
    int n;                     /* images */
    double t0, t1;             /* t0 > t1 > 0 */
    const double *x;           /* [n, dim] start state */
    const double *a1;          /* [n, dim] the first half's direction */
    const double *k;           /* [n, dim] the plugin's history part K, or NULL (0) */
    double alpha0;             /* AB coefficient of d_s (1 for solver and Euler plugin) */
    int plugin;                /* 0: x' = x + c (t1 - t0) A2;  1: x' = y + c (t1 - s) A2 */
    const float *feature;      /* [n, 64], or NULL for zeros (the AFS step) */
    const float *labels;       /* [n, label_dim] or NULL */
    int norm;                  /* the loss divides by this (0: n); the global batch when these n
                                  images are one gradient share of it */
} amed_interval;

typedef struct amed_student amed_student;

/* A student for model m at its trained resolution, running the U-Net (keep = 1) on micro-batches
 * of at most `micro` images, for batches of at most max_n images. */
int amed_student_create(amed_student **out, pd_model *m, int micro, int max_n, pd_error *err);
void amed_student_free(amed_student *s);

/* The interval's output x_out [n, dim] and d_s [n, dim] (either may be NULL) with the current
 * predictor. With target [n, dim] non-NULL also *loss (L above) and, when grad [n_params] is
 * non-NULL, accumulates dL/dphi into it. r_mean (may be NULL) gets the sum of the predicted r
 * over the norm (the mean when norm is n). */
int amed_student_interval(amed_student *s, const pd_amed_predictor *pred, const amed_interval *iv,
                          const double *target, double *x_out, double *ds_out, double *loss,
                          double *grad, double *r_mean, pd_error *err);

#endif
