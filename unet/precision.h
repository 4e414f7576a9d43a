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

/* Whether a k x k convolution of this shape that takes the direct path runs its products in bf16:
 * the precision is bf16 and sbgemm is there. Reads the shape and the settings only, so the
 * choice, like the bits, never depends on batch or threads. */
int conv_bf16_applies(int k, int C, int H, int W, int OC);

#endif
