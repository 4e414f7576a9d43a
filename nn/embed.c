/* embed.c — NCSN++'s Fourier noise embedding (EDM FourierEmbedding; Tancik et al. 2020 random
 * Fourier features as used by Song et al. 2021) and ADM's adaptive scale/shift (Dhariwal &
 * Nichol 2021 §3, "adaptive group normalization"; EDM UNetBlock adaptive_scale), forward and
 * backward. See nn/nn_layers.h for the contracts.
 *
 * The phase 2π·f·c is formed in float as torch does (float(2π)·freqs in float, times c in
 * float), then cos/sin in double rounded once: the phases are large (|f| ~ 16, so up to ~1e3
 * rad at c_noise ~ 10), and matching EDM's float phase keeps the embedding within float
 * rounding of torch's, where a double phase would differ by ~1e-4 rad.
 */
#include "nn/nn_layers.h"
#include "core/pool.h"
#include <math.h>

/* 2π rounded to float, as torch rounds the Python scalar of `2 * np.pi * freqs`. */
#define TWO_PI_F ((float)(2 * M_PI))

void fourier_forward(float *out, const float *c_noise, const float *freqs, int N, int Cn, int flip) {
    int half = Cn / 2;
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * Cn;
        for (int i = 0; i < half; i++) {
            float w = TWO_PI_F * freqs[i];
            float a = c_noise[n] * w;
            o[flip ? half + i : i] = (float)cos((double)a);
            o[flip ? i : half + i] = (float)sin((double)a);
        }
    }
}

void fourier_backward(float *dc_noise, const float *dout, const float *c_noise, const float *freqs,
                      int N, int Cn, int flip) {
    if (!dc_noise) return;
    int half = Cn / 2;
    for (int n = 0; n < N; n++) {
        const float *g = dout + (size_t)n * Cn;
        double s = 0;
        for (int i = 0; i < half; i++) {
            float wf = TWO_PI_F * freqs[i];
            double w = wf, a = (double)(c_noise[n] * wf);
            double gc = g[flip ? half + i : i], gs = g[flip ? i : half + i];
            s += w * (gs * cos(a) - gc * sin(a));
        }
        dc_noise[n] += (float)s;
    }
}

struct modulate_args {
    float *out, *dx, *dparams;
    const float *x, *params, *dout;
    int C, HW;
};

/* Item nc = (sample, channel): writes plane nc of out alone. */
static void modulate_fwd_items(void *p, long nc0, long nc1) {
    const struct modulate_args *m = p;
    const float *x = m->x, *params = m->params;
    float *out = m->out;
    int C = m->C, HW = m->HW;
    for (long nc = nc0; nc < nc1; nc++) {
        long n = nc / C, c = nc % C;
        float sc = params[n * 2 * C + c] + 1.0f, sh = params[n * 2 * C + C + c];
        const float *s = x + (size_t)nc * HW;
        float *o = out + (size_t)nc * HW;
        for (int i = 0; i < HW; i++) o[i] = sh + s[i] * sc;
    }
}

void modulate_forward(float *out, const float *x, const float *params, int N, int C, int HW) {
    struct modulate_args a = {.out = out, .x = x, .params = params, .C = C, .HW = HW};
    core_pool_for((long)N * C, (size_t)N * C * HW > 32768, modulate_fwd_items, &a);
}

/* Item nc = (sample, channel): writes plane nc of dx and that channel's scale and shift
 * gradients of its sample, which no other item touches. */
static void modulate_bwd_items(void *p, long nc0, long nc1) {
    const struct modulate_args *m = p;
    const float *dout = m->dout, *x = m->x, *params = m->params;
    float *dx = m->dx, *dparams = m->dparams;
    int C = m->C, HW = m->HW;
    for (long nc = nc0; nc < nc1; nc++) {
        long n = nc / C, c = nc % C;
        float sc = params[n * 2 * C + c] + 1.0f;
        const float *g = dout + (size_t)nc * HW, *s = x + (size_t)nc * HW;
        if (dx) {
            float *d = dx + (size_t)nc * HW;
            for (int i = 0; i < HW; i++) d[i] += g[i] * sc;
        }
        if (dparams) {
            double a = 0, b = 0;
            for (int i = 0; i < HW; i++) { a += (double)g[i] * s[i]; b += g[i]; }
            dparams[n * 2 * C + c] += (float)a;
            dparams[n * 2 * C + C + c] += (float)b;
        }
    }
}

void modulate_backward(float *dx, float *dparams, const float *dout, const float *x,
                       const float *params, int N, int C, int HW) {
    struct modulate_args a = {.dx = dx, .dparams = dparams, .dout = dout, .x = x,
                              .params = params, .C = C, .HW = HW};
    core_pool_for((long)N * C, (size_t)N * C * HW > 32768, modulate_bwd_items, &a);
}
