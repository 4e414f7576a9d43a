/* test_nn_layers — the layers of nn/nn_layers.h (FIR down/up resampling, Fourier embedding,
 * adaptive scale/shift, one-pixel padding) against their naive double twins (forward, max rel
 * err <= 1e-5 via tu_compare) and their backward against central finite differences of those
 * twins (step 1e-6·max(1,|v|), tolerance 1e-4 + 4e-7 per summed term), for the input, the
 * modulation parameters and c_noise. Every backward must also accumulate (two calls = 2x).
 * Shapes include odd widths and a non-square plane so index mix-ups show.
 */
#include "nn/nn_layers.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L_DOWN, L_UP, L_FOURIER, L_MOD, L_PAD };

typedef struct {
    int kind, N, C, H, W, K, pad, Cn, flip;
    double f[4];
    double *x, *p, *g, *out;     /* input, params (modulate: [N,2C]; fourier: freqs), dout, out */
    size_t nout;
} prob;

static void pad1_naive(double *out, const double *in, int N, int C, int H, int W) {
    memset(out, 0, sizeof(double) * (size_t)N * C * (H + 2) * (W + 2));
    for (int p = 0; p < N * C; p++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                out[((size_t)p * (H + 2) + y + 1) * (W + 2) + x + 1] = in[((size_t)p * H + y) * W + x];
}

static double loss(prob *p) {
    switch (p->kind) {
    case L_DOWN: fir_down_forward_naive(p->out, p->x, p->f, p->K, p->pad, p->N, p->C, p->H, p->W); break;
    case L_UP: fir_up_forward_naive(p->out, p->x, p->f, p->K, p->pad, p->N, p->C, p->H, p->W); break;
    case L_FOURIER: fourier_forward_naive(p->out, p->x, p->p, p->N, p->Cn, p->flip); break;
    case L_MOD: modulate_forward_naive(p->out, p->x, p->p, p->N, p->C, p->H * p->W); break;
    case L_PAD: pad1_naive(p->out, p->x, p->N, p->C, p->H, p->W); break;
    }
    double s = 0;
    for (size_t i = 0; i < p->nout; i++) s += p->g[i] * p->out[i];
    return s;
}

static void fd(double *grad, double *v, size_t n, prob *p) {
    for (size_t i = 0; i < n; i++) {
        double v0 = v[i], h = 1e-6 * fmax(1.0, fabs(v0));
        v[i] = v0 + h;
        double lp = loss(p);
        v[i] = v0 - h;
        double lm = loss(p);
        v[i] = v0;
        grad[i] = (lp - lm) / (2 * h);
    }
}

static float *rnd(size_t n, uint64_t seed, float sc) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    tu_fill(x, n, seed, sc);
    return x;
}
static double *dbl(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void check_grad(const char *what, const char *lab, const float *got, double *v, size_t n,
                       prob *p, double tol) {
    double *ref = malloc(n * sizeof *ref);
    fd(ref, v, n, p);
    char name[160];
    snprintf(name, sizeof name, "%s: %s vs FD", what, lab);
    tu_compare(name, got, ref, n, tol);
    free(ref);
}

static void check_twice(const char *what, const float *a1, const float *a2, size_t n) {
    float *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) want[i] = 2 * a1[i];
    char name[160];
    snprintf(name, sizeof name, "%s: backward accumulates", what);
    tu_compare_f(name, a2, want, n, 1e-6);
    free(want);
}

static void t_fir(int up, int N, int C, int H, int W, const float *f, int K, int pad) {
    char what[96];
    snprintf(what, sizeof what, "fir_%s K=%d pad=%d %dx%dx%dx%d", up ? "up" : "down", K, pad, N, C, H, W);
    int Ho = up ? fir_up_size(H, K, pad) : fir_down_size(H, K, pad);
    int Wo = up ? fir_up_size(W, K, pad) : fir_down_size(W, K, pad);
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * C * Ho * Wo;
    float *x = rnd(ni, 1, 1), *g = rnd(no, 2, 1), *out = malloc(no * sizeof(float));
    prob p = {.kind = up ? L_UP : L_DOWN, .N = N, .C = C, .H = H, .W = W, .K = K, .pad = pad,
              .x = dbl(x, ni), .g = dbl(g, no), .out = malloc(no * sizeof(double)), .nout = no};
    for (int i = 0; i < K; i++) p.f[i] = f[i];
    if (up) fir_up_forward(out, x, f, K, pad, N, C, H, W);
    else fir_down_forward(out, x, f, K, pad, N, C, H, W);
    loss(&p);
    char name[160];
    snprintf(name, sizeof name, "%s: forward vs naive", what);
    tu_compare(name, out, p.out, no, 1e-5);
    float *dx = calloc(ni, sizeof(float)), *dx2 = calloc(ni, sizeof(float));
    for (int r = 0; r < 3; r++) {   /* once into dx, twice into dx2 */
        if (up) fir_up_backward(r ? dx2 : dx, g, f, K, pad, N, C, H, W);
        else fir_down_backward(r ? dx2 : dx, g, f, K, pad, N, C, H, W);
    }
    check_grad(what, "din", dx, p.x, ni, &p, 1e-4 + 4e-7 * K * K);
    check_twice(what, dx, dx2, ni);
    free(x); free(g); free(out); free(p.x); free(p.g); free(p.out); free(dx); free(dx2);
}

static void t_fourier(int N, int Cn, int flip) {
    char what[64];
    snprintf(what, sizeof what, "fourier N=%d Cn=%d flip=%d", N, Cn, flip);
    float *c = rnd(N, 3, 1.5f), *fr = rnd(Cn / 2, 4, 16), *g = rnd((size_t)N * Cn, 5, 1);
    float *out = malloc(sizeof(float) * N * Cn);
    prob p = {.kind = L_FOURIER, .N = N, .Cn = Cn, .flip = flip, .x = dbl(c, N), .p = dbl(fr, Cn / 2),
              .g = dbl(g, (size_t)N * Cn), .out = malloc(sizeof(double) * N * Cn), .nout = (size_t)N * Cn};
    fourier_forward(out, c, fr, N, Cn, flip);
    loss(&p);
    char name[160];
    /* torch forms the phase in float (|phase| up to ~1e2 here): ~1e-5 absolute from rounding. */
    snprintf(name, sizeof name, "%s: forward vs naive (float phase)", what);
    double e = 0;
    for (size_t i = 0; i < p.nout; i++) e = fmax(e, fabs(out[i] - p.out[i]));
    tu_check(e < 5e-5, "%s: max abs err %.2e (tol 5e-5)", name, e);
    float dc[8] = {0}, dc2[8] = {0};
    fourier_backward(dc, g, c, fr, N, Cn, flip);
    fourier_backward(dc2, g, c, fr, N, Cn, flip);
    fourier_backward(dc2, g, c, fr, N, Cn, flip);
    /* d/dc: the float phase rounds c·w, so compare with a looser 1e-3. */
    check_grad(what, "dc_noise", dc, p.x, N, &p, 1e-3);
    check_twice(what, dc, dc2, N);
    free(c); free(fr); free(g); free(out); free(p.x); free(p.p); free(p.g); free(p.out);
}

static void t_modulate(int N, int C, int H, int W) {
    char what[64];
    snprintf(what, sizeof what, "modulate %dx%dx%dx%d", N, C, H, W);
    size_t n = (size_t)N * C * H * W, np = (size_t)N * 2 * C;
    float *x = rnd(n, 6, 2), *pr = rnd(np, 7, 0.7f), *g = rnd(n, 8, 1), *out = malloc(n * sizeof(float));
    prob p = {.kind = L_MOD, .N = N, .C = C, .H = H, .W = W, .x = dbl(x, n), .p = dbl(pr, np),
              .g = dbl(g, n), .out = malloc(n * sizeof(double)), .nout = n};
    modulate_forward(out, x, pr, N, C, H * W);
    loss(&p);
    char name[160];
    snprintf(name, sizeof name, "%s: forward vs naive", what);
    tu_compare(name, out, p.out, n, 1e-6);
    float *dx = calloc(n, sizeof(float)), *dp = calloc(np, sizeof(float));
    float *dx2 = calloc(n, sizeof(float)), *dp2 = calloc(np, sizeof(float));
    modulate_backward(dx, dp, g, x, pr, N, C, H * W);
    modulate_backward(dx2, dp2, g, x, pr, N, C, H * W);
    modulate_backward(dx2, dp2, g, x, pr, N, C, H * W);
    check_grad(what, "dx", dx, p.x, n, &p, 1e-4);
    check_grad(what, "dparams", dp, p.p, np, &p, 1e-4 + 4e-7 * H * W);
    check_twice(what, dx, dx2, n);
    check_twice(what, dp, dp2, np);
    free(x); free(pr); free(g); free(out); free(p.x); free(p.p); free(p.g); free(p.out);
    free(dx); free(dp); free(dx2); free(dp2);
}

static void t_pad(int N, int C, int H, int W) {
    char what[64];
    snprintf(what, sizeof what, "pad1 %dx%dx%dx%d", N, C, H, W);
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * C * (H + 2) * (W + 2);
    float *x = rnd(ni, 9, 1), *g = rnd(no, 10, 1), *out = malloc(no * sizeof(float));
    prob p = {.kind = L_PAD, .N = N, .C = C, .H = H, .W = W, .x = dbl(x, ni), .g = dbl(g, no),
              .out = malloc(no * sizeof(double)), .nout = no};
    pad1_forward(out, x, N, C, H, W);
    loss(&p);
    char name[160];
    snprintf(name, sizeof name, "%s: forward vs naive", what);
    tu_compare(name, out, p.out, no, 0);
    float *dx = calloc(ni, sizeof(float));
    pad1_backward(dx, g, N, C, H, W);
    check_grad(what, "din", dx, p.x, ni, &p, 1e-6);
    free(x); free(g); free(out); free(p.x); free(p.g); free(p.out); free(dx);
}

int main(void) {
    static const float f4[4] = {1, 3, 3, 1}, f2[2] = {1, 1};
    t_fir(0, 2, 3, 8, 8, f4, 4, 1);
    t_fir(0, 1, 2, 10, 6, f4, 4, 0);    /* NCSN++'s fused aux conv: no padding on H+2 */
    t_fir(0, 2, 2, 8, 8, f2, 2, 0);
    t_fir(1, 2, 3, 4, 4, f4, 4, 1);
    t_fir(1, 1, 2, 5, 3, f4, 4, 1);
    t_fir(1, 2, 2, 4, 4, f2, 2, 0);
    /* [1,1] FIR equals the 2x2 average and nearest x2 that DDPM++ runs on. */
    {
        float x[64], a[16], b[16], u[256], v[256];
        tu_fill(x, 64, 11, 1);
        fir_down_forward(a, x, f2, 2, 0, 1, 1, 8, 8);
        for (int y = 0; y < 4; y++)
            for (int z = 0; z < 4; z++)
                b[y * 4 + z] = 0.25f * (x[16 * y + 2 * z] + x[16 * y + 2 * z + 1] +
                                        x[16 * y + 8 + 2 * z] + x[16 * y + 9 + 2 * z]);
        double e = 0;
        for (int i = 0; i < 16; i++) e = fmax(e, fabs(a[i] - b[i]));
        fir_up_forward(u, x, f2, 2, 0, 1, 1, 8, 8);
        for (int y = 0; y < 16; y++)
            for (int z = 0; z < 16; z++) v[y * 16 + z] = x[(y / 2) * 8 + z / 2];
        for (int i = 0; i < 256; i++) e = fmax(e, fabs(u[i] - v[i]));
        tu_check(e < 1e-6, "[1,1] FIR = 2x2 average / nearest x2 (max err %.1e)", e);
    }
    t_fourier(3, 16, 1);
    t_fourier(2, 8, 0);
    t_modulate(2, 3, 5, 4);
    t_pad(2, 3, 4, 5);
    return tu_finish();
}
