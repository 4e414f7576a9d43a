/* nn_layers.h — layers that EDM's NCSN++ and ADM networks add to unet/layers.h, as
 * forward/backward pairs with naive double twins (same conventions as unet/layers.h: float32
 * NCHW, argument order outputs, inputs, parameters, sizes; backward ACCUMULATES into every d*
 * buffer it is given and skips NULL ones).
 *
 * - FIR resampling (EDM Conv2d with resample_filter f, Karras et al. 2022 training/networks.py):
 *   the 2-D filter is f⊗f/(Σf)². Down: depthwise conv with it, stride 2, zero padding `pad`
 *   (output (H + 2·pad − K)/2 + 1). Up: depthwise transposed conv with 4·(f⊗f)/(Σf)², stride 2,
 *   padding `pad` (output 2(H − 1) − 2·pad + K). For [1,3,3,1] and pad 1 both halve/double.
 * - Fourier embedding (EDM FourierEmbedding, Song et al. 2021 NCSN++): out = [cos(2π f c) |
 *   sin(2π f c)] with the fixed random freqs buffer; flip = 1 swaps to [sin | cos] as SongUNet
 *   does after map_noise.
 * - Adaptive scale/shift (EDM UNetBlock adaptive_scale, Dhariwal & Nichol 2021 "AdaGN"):
 *   out = shift + x·(scale + 1) with [scale | shift] = params [N, 2C], broadcast over HW.
 * - Zero padding by one pixel and its crop (the fused 3x3 conv of NCSN++'s aux_residual pads 2).
 */
#ifndef PD_NN_LAYERS_H
#define PD_NN_LAYERS_H

#include <stddef.h>

#define FIR_MAX_TAPS 4

/* Output size of the FIR resampling of an H-wide input. */
int fir_down_size(int H, int K, int pad);
int fir_up_size(int H, int K, int pad);

/* f: K taps (integers in the config, e.g. 1 3 3 1), normalised inside. */
void fir_down_forward(float *out, const float *in, const float *f, int K, int pad, int N, int C,
                      int H, int W);
void fir_down_backward(float *din, const float *dout, const float *f, int K, int pad, int N, int C,
                       int H, int W);
void fir_up_forward(float *out, const float *in, const float *f, int K, int pad, int N, int C,
                    int H, int W);
void fir_up_backward(float *din, const float *dout, const float *f, int K, int pad, int N, int C,
                     int H, int W);

/* freqs [Cn/2]; out [N, Cn]; backward gives d c_noise [N] (freqs are a fixed buffer). */
void fourier_forward(float *out, const float *c_noise, const float *freqs, int N, int Cn, int flip);
void fourier_backward(float *dc_noise, const float *dout, const float *c_noise, const float *freqs,
                      int N, int Cn, int flip);

/* out [N,C,HW] = shift + x·(scale + 1); params [N, 2C] = [scale | shift]. out may alias x.
 * Backward: dx += dout·(scale + 1); dparams[scale] += Σ_HW dout·x, dparams[shift] += Σ_HW dout. */
void modulate_forward(float *out, const float *x, const float *params, int N, int C, int HW);
void modulate_backward(float *dx, float *dparams, const float *dout, const float *x,
                       const float *params, int N, int C, int HW);

/* out [N,C,H+2,W+2] = in zero-padded by one pixel; the backward crops (din += the interior). */
void pad1_forward(float *out, const float *in, int N, int C, int H, int W);
void pad1_backward(float *din, const float *dout, int N, int C, int H, int W);

/* ---- naive double twins (tests only) ---- */
void fir_down_forward_naive(double *out, const double *in, const double *f, int K, int pad, int N,
                            int C, int H, int W);
void fir_up_forward_naive(double *out, const double *in, const double *f, int K, int pad, int N,
                          int C, int H, int W);
void fourier_forward_naive(double *out, const double *c_noise, const double *freqs, int N, int Cn,
                           int flip);
void modulate_forward_naive(double *out, const double *x, const double *params, int N, int C,
                            int HW);

#endif
