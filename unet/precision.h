/* precision.h — the precision of the convolutions' products (pd_set_precision, include/pixdiff.h):
 * float, or bf16 operands through OpenBLAS's cblas_sbgemm (unet/gemm.h) on the direct path. */
#ifndef PD_PRECISION_H
#define PD_PRECISION_H

typedef enum { PRECISION_FP32 = 0, PRECISION_BF16 = 1, PRECISION_COUNT } conv_precision;
extern const char *const conv_precision_names[PRECISION_COUNT];
conv_precision conv_get_precision(void);
/* Sets it unchecked (tests, with their own sbgemm through gemm_set_sbgemm); pd_set_precision
 * refuses bf16 when no sbgemm is there. */
void conv_set_precision(conv_precision p);

/* Where bf16 may apply: inside a scope that unet_denoise_forward opens on its thread for a run
 * that keeps no activations (an evaluation). Training passes, the classifier of `pixdiff eval`
 * and Inception never open one, so gradients and metrics stay float whatever the setting.
 * conv_bf16_scope(on) sets the calling thread's scope and returns the one it replaces (to be
 * put back). */
int conv_bf16_scope(int on);

/* Whether a k x k convolution of this shape that takes the direct path runs its products in bf16:
 * the precision is bf16, the calling thread is in a bf16 scope and sbgemm is there. Reads the
 * shape and the settings only, so the choice, like the bits, never depends on batch or threads. */
int conv_bf16_applies(int k, int C, int H, int W, int OC);

#endif
