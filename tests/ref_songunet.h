/* ref_songunet.h — an independent double-precision reference of the whole EDM U-Net denoiser
 * (SongUNet DDPM++/NCSN++, DhariwalUNet; EDM, VP, VE, iDDPM preconditioning),
 * written from models.md §4.1–4.5 with naive loops. It shares nothing with unet/ but the
 * model's config and tensor table (names, offsets): its own module walk, its own parameter
 * lookup by state-dict name, its own layers and preconditioning. Tests only. */
#ifndef PD_REF_SONGUNET_H
#define PD_REF_SONGUNET_H

#include "unet/songunet.h"

typedef struct ref_opts {
    int res;                  /* 0 = the trained resolution */
    const double *params;     /* NULL = the model's float params; else doubles at the same offsets */
    const double *skip_scale; /* Skip-Tuning factors in production order, or NULL */
    double *feature;          /* if non-NULL: [n, h*w] channel mean of the tapped encoder output */
    int round_c_noise;        /* 1: round c_noise to float32 first, as a float32 runtime (and EDM) does */
} ref_opts;

/* D(x; sigma, labels) for n images; labels [n, label_dim] or NULL (zeros). Returns 0, or -1 if a
 * tensor it looks up is missing or misshaped (message on stderr: tests only). */
int ref_denoise(const pd_model *m, double *out, const double *x, const double *sigma,
                const double *labels, int n, const ref_opts *o);

#endif
