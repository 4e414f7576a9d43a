/* winograd.h — 3x3 convolutions (stride 1, zero padding 1, PyTorch cross-correlation) by Winograd's
 * minimal filtering F(4x4, 3x3) (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
 * Networks", Eq. 7-8), forward and backward, and the switch between it and the direct im2col path.
 *
 * Each 4x4 output tile is Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A for a 6x6 input tile d: 36 products
 * per tile and (input, output) channel pair instead of 144. Over channels the ⊙ becomes 36
 * independent matrix products, one per point ξ of the 6x6 transform domain,
 *   M_ξ [OC, T] = U_ξ [OC, C] · V_ξ [C, T],   T = number of tiles of one sample,
 * and these are single-threaded OpenBLAS sgemm calls (unet/gemm.h), one per (sample, ξ): their
 * shapes depend on the layer only, never on the batch or the thread count, so an image's bits do
 * not either (DESIGN.md convention 7). Transforms are plain float code (no FMA contraction), the
 * filter transform in double.
 *
 * Backward: the input gradient is the same algorithm run on dout with the filters rotated by 180°
 * and their channel axes swapped (a 3x3 pad-1 convolution's adjoint); the weight gradient is the
 * adjoint of the bilinear map above, dg = G^T [ Σ_tiles (A dY A^T) ⊙ (B^T d B) ] G, whose sum over
 * tiles and samples is again 36 products dU_ξ [OC, C] += dM_ξ [OC, T] · V_ξ^T, samples in order.
 *
 * Layout: float32 NCHW, weights [OC, C, 3, 3]; argument order as unet/layers.h (outputs, inputs,
 * parameters, sizes); backward accumulates into din and dw. Filters are transformed on every call,
 * once for the whole batch (see winograd.c for why they are not cached). Scratch is a per-thread
 * buffer kept for reuse. The double-precision twins (winograd_naive.c) run the same algorithm
 * with no BLAS, no threads and no tiling cleverness, for the tests.
 */
#ifndef PD_WINOGRAD_H
#define PD_WINOGRAD_H

#include <stddef.h>

/* Which algorithm the 3x3 convolutions use. CONV_AUTO: Winograd where conv_winograd_applies says
 * so, else direct; CONV_DIRECT: im2col + sgemm everywhere (for checking). The default is read once
 * from the environment variable PIXDIFF_CONV ("direct", "winograd" or "auto"); conv_set_path
 * overrides it (pixdiff bench --conv). */
typedef enum { CONV_AUTO = 0, CONV_DIRECT = 1, CONV_PATH_COUNT } conv_path;
void conv_set_path(conv_path p);
conv_path conv_get_path(void);
extern const char *const conv_path_names[CONV_PATH_COUNT];

/* Recording which path each convolution took (pixdiff bench): while on, conv2d_forward notes
 * every call's shape and path in a small table of distinct (k, C, OC, H, W, path) rows; N counts
 * images. The table is process-wide and meant for one thread driving evaluations. */
enum { CONV_NOTE_DIRECT, CONV_NOTE_WINOGRAD, CONV_NOTE_BF16 /* direct, bf16 products */ };
void conv_note(int k, int C, int H, int W, int OC, int N, int path);

/* Whether a 3x3 convolution of this shape runs on Winograd under the current path. The rule reads
 * the shape only (so the choice, like the bits, never depends on batch or threads). */
int conv_winograd_applies(int C, int H, int W, int OC);

/* out[N,OC,H,W] = conv3x3(in[N,C,H,W], w) + b (b may be NULL). work (may be NULL): work_floats
 * floats the call may overwrite, used for its per-sample buffers when one sample's fit (the
 * caller's im2col buffer); the result does not depend on it. Returns 0, or -1 with nothing
 * written when its scratch cannot be allocated (the caller then takes the direct path). */
int winograd_conv3x3_forward(float *out, const float *in, const float *w, const float *b, int N,
                             int C, int H, int W, int OC, float *work, size_t work_floats);
/* din += dL/din, dw += dL/dw (either may be NULL); the bias gradient is the caller's (it does not
 * depend on the algorithm); work as in the forward. Returns 0, or -1 with nothing touched when
 * out of memory. */
int winograd_conv3x3_backward(float *din, float *dw, const float *dout, const float *in,
                              const float *w, int N, int C, int H, int W, int OC, float *work,
                              size_t work_floats);

/* Tests only: on = 1 makes the transforms' row kernels take their plain loops even where the CPU
 * has AVX-512 (winograd.c, "Which row kernels run"), to check that both give the same bits. */
void winograd_force_plain_rows(int on);

/* ---- naive double-precision twins (tests only): the same F(4x4,3x3) algorithm as plain loops,
 * tile by tile, straight from the matrices B^T, G, A^T. ---- */
void winograd_conv3x3_forward_naive(double *out, const double *in, const double *w,
                                    const double *b, int N, int C, int H, int W, int OC);
void winograd_conv3x3_backward_naive(double *din, double *dw, const double *dout, const double *in,
                                     const double *w, int N, int C, int H, int W, int OC);
/* The direct definition's backward in double (tests only): din += Σ w·dout, dw += Σ dout·in. */
void conv3x3_backward_naive(double *din, double *dw, const double *dout, const double *in,
                            const double *w, int N, int C, int H, int W, int OC);

#endif
