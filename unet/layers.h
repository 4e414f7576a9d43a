/* layers.h — the U-Net's layers as forward/backward pairs (llm.c style).
 *
 * Layout: float32 NCHW, contiguous. Argument order: outputs, inputs, parameters, sizes, scratch.
 * Backward functions ACCUMULATE (+=) into every d* buffer they are given; a NULL d* buffer is
 * skipped (e.g. dw/db for frozen weights, din for the first layer). Backward reuses what the
 * forward cached (GroupNorm mean/rstd, attention probabilities) instead of recomputing.
 * Each fast kernel has a naive double-precision twin (*_naive) that the tests compare against.
 *
 * Threading: pool loops (core/pool.h) over outer items (sample, channel, row, GEMM tile); every
 * matrix product is OpenBLAS cut into tiles of a shape-only size, each tile a single-threaded call
 * inside our loops (unet/gemm.h). Every per-sample result is computed in an order that does not depend on the
 * batch size or the thread count, so an image is bit-identical whatever batch it is in.
 */
#ifndef PD_LAYERS_H
#define PD_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* y[N,OUT] = x[N,IN] W^T + b, W [OUT,IN] (PyTorch Linear); b may be NULL. */
void linear_forward(float *out, const float *in, const float *w, const float *b, int N, int IN, int OUT);
void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int N, int IN, int OUT);

void silu_forward(float *out, const float *in, size_t n);
void silu_backward(float *din, const float *dout, const float *in, size_t n);

/* EDM GroupNorm: G groups of contiguous channels, biased variance over (C/G, H, W) per sample.
 * mean/rstd: [N*G], written by forward, read by backward. out may alias in. */
void groupnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
                       const float *beta, int N, int C, int HW, int G, float eps);
void groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                        const float *mean, const float *rstd, const float *gamma, int N, int C,
                        int HW, int G);
/* EDM's group count: min(32, C/4). */
int groupnorm_groups(int C);

/* k x k convolution, stride 1, zero padding k/2 (PyTorch cross-correlation), via an explicit im2col
 * per sample into col, then OpenBLAS sgemm (unet/gemm.h); a 1x1 conv needs no im2col.
 * w [OC,C,k,k], b [OC] or NULL. col: scratch of C*k*k*H*W floats, one sample's im2col matrix
 * (unused when k == 1); more samples at once use a per-thread buffer the layers keep. */
void conv2d_forward(float *out, const float *in, const float *w, const float *b, int N, int C,
                    int H, int W, int OC, int k, float *col);
void conv2d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int N, int C, int H, int W, int OC, int k, float *col);

/* EDM resample_filter [1,1]: down = 2x2 average pool, up = nearest x2 (docs/algorithms.md §M4.1).
 * H, W are the INPUT sizes in both directions. */
void avgpool2_forward(float *out, const float *in, int N, int C, int H, int W);
void avgpool2_backward(float *din, const float *dout, int N, int C, int H, int W);
void upsample2_forward(float *out, const float *in, int N, int C, int H, int W);
void upsample2_backward(float *din, const float *dout, int N, int C, int H, int W);

/* EDM UNetBlock self-attention core (docs/algorithms.md §M4.4). qkv [N,3C,L] in EDM's interleaved layout:
 * channel index = head*(3*Ch) + c*3 + j (j = 0 q, 1 k, 2 v), Ch = C/heads.
 * out [N,C,L] (head-major), att [N,heads,L,L] the softmax probabilities kept for backward.
 * scratch: at least 3*L*L + 3*Ch*L floats. */
void attention_forward(float *out, float *att, const float *qkv, int N, int C, int L, int heads,
                       float *scratch);
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int N,
                        int C, int L, int heads, float *scratch);

/* EDM PositionalEmbedding: freq_i = (1/10000)^(i/(Cn/2 - endpoint)), [cos | sin];
 * flip = 1 swaps to [sin | cos] (SongUNet). out [N,Cn]; backward gives d c_noise [N]. */
void posemb_forward(float *out, const float *c_noise, int N, int Cn, int endpoint, int flip);
void posemb_backward(float *dc_noise, const float *dout, const float *c_noise, int N, int Cn,
                     int endpoint, int flip);

/* Inverted dropout with probability p: mask[i] in {0,1} drawn from Philox(seed, stream) and kept;
 * out = in * mask / (1-p). p == 0 copies and sets the mask to 1. */
void dropout_forward(float *out, uint8_t *mask, const float *in, size_t n, float p, uint64_t seed,
                     uint64_t stream);
void dropout_backward(float *din, const float *dout, const uint8_t *mask, size_t n, float p);
/* out = the forward's output again from its input and mask (in·1/(1 − p) where kept, else 0),
 * bit for bit: a backward pass that did not keep the output recomputes it. */
void dropout_reapply(float *out, const float *in, const uint8_t *mask, size_t n, float p);
/* Fused for a training step's backward, each bit for bit the composition it replaces:
 * silu_dropout_reapply: out = dropout_reapply(silu_forward(in)), conv1's input recomputed;
 * dropout_silu_backward: din += silu'(in) · g, where g = dropout_backward(dout) into a zeroed
 * buffer (with din zeroed, exactly the two calls in turn). p <= 0: no dropout (mask unread). */
void silu_dropout_reapply(float *out, const float *in, const uint8_t *mask, size_t n, float p);
void dropout_silu_backward(float *din, const float *dout, const uint8_t *mask, const float *in,
                           size_t n, float p);
/* The least Philox word r whose uniform (float)((r + 0.5)·2^-32) is >= p, or 2^32 when none is:
 * the uniform is non-decreasing in r, so an element is kept exactly when its word is >= this
 * (what dropout_forward compares, one integer compare per element). */
uint64_t dropout_keep_threshold(float p);

/* ---- naive double-precision twins (tests only; plain loops, no BLAS, no threads) ---- */
void linear_forward_naive(double *out, const double *in, const double *w, const double *b, int N,
                          int IN, int OUT);
void groupnorm_forward_naive(double *out, const double *in, const double *gamma,
                             const double *beta, int N, int C, int HW, int G, double eps);
void conv2d_forward_naive(double *out, const double *in, const double *w, const double *b, int N,
                          int C, int H, int W, int OC, int k);
void avgpool2_forward_naive(double *out, const double *in, int N, int C, int H, int W);
void upsample2_forward_naive(double *out, const double *in, int N, int C, int H, int W);
void attention_forward_naive(double *out, const double *qkv, int N, int C, int L, int heads);
void posemb_forward_naive(double *out, const double *c_noise, int N, int Cn, int endpoint, int flip);
void silu_forward_naive(double *out, const double *in, size_t n);

#endif
