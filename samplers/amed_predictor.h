/* amed_predictor.h — AMED's predictor g_phi inside the library (docs/algorithms.md §S4.4): the parameter
 * arena, one image's forward with the activations backward needs, and the backward that the
 * trainer (distill/amed_train.c) uses. pixdiff.h has the public face (load, save, predict).
 *
 * Layout: one float arena in the reference module's state-dict order (map_layer0, enc_layer0,
 * enc_layer1, fc_r, fc_scale_dir, fc_scale_time; weight before bias, weights [out, in]); a head
 * whose scale is 0 is absent. The arithmetic is double throughout (the net is 9k parameters; the
 * U-Net call it steers costs a million times more), so float parameters are the only rounding.
 */
#ifndef PD_AMED_PREDICTOR_H
#define PD_AMED_PREDICTOR_H

#include "pixdiff.h"
#include <stddef.h>

#define AMED_FEAT 64   /* 8x8 channel mean of the tap */
#define AMED_HID 128   /* bottleneck MLP hidden width */
#define AMED_BOT 4     /* bottleneck output */
#define AMED_EMB 8     /* time embedding: 4 frequencies x (sin, cos) */
#define AMED_U 20      /* [z, e(t_n), e(t_{n+1})] */
#define AMED_NO_HEAD ((size_t)-1)

struct pd_amed_predictor {
    pd_amed_info info;
    float *params;     /* n_params floats */
    size_t n_params;
    /* offsets into params, in floats; c_w/c_b, a_w/a_b are AMED_NO_HEAD when absent */
    size_t map_w, map_b, enc0_w, enc0_b, enc1_w, enc1_b, r_w, r_b, c_w, c_b, a_w, a_b;
};

/* One image's forward: inputs, pre-activations and outputs (all backward needs). */
typedef struct amed_cache {
    double f[AMED_FEAT];
    double h1[AMED_HID];          /* enc_layer0 pre-activation */
    double e[2][AMED_EMB];        /* [sin, cos] embedding of t_n, t_{n+1} */
    double q[2][AMED_EMB];        /* map_layer0 pre-activation */
    double u[AMED_U];
    double pre_r, pre_c, pre_a;   /* head pre-activations */
    double r, c, a;
} amed_cache;

/* Builds the offsets for info's heads and allocates a zeroed arena. */
int amed_predictor_alloc(pd_amed_predictor **out, const pd_amed_info *info, pd_error *err);

/* g_phi on one image: feature [64] (NULL: zeros, the AFS step) and the raw sigmas. */
void amed_forward(const pd_amed_predictor *p, const float *feature, double t_cur, double t_next,
                  amed_cache *k);
/* Accumulates into grad [n_params] (double, laid out like params) the gradient of a loss whose
 * derivatives with respect to this image's outputs are dr, dc, da. */
void amed_backward(const pd_amed_predictor *p, const amed_cache *k, double dr, double dc, double da,
                   double *grad);

#endif
