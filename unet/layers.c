/* layers.c — the fast float32 kernels behind unet/layers.h (EDM primitives, models.md §4.1, §4.2,
 * §4.4), each a forward/backward pair in llm.c's style. Heavy math is pd_sgemm (unet/gemm.h) on
 * per-sample matrices, called from outside any OpenMP region (it threads itself); the light
 * loops (im2col/col2im, normalisation, elementwise) are OpenMP loops over (sample, channel) or
 * rows. Every per-sample value is produced by the same operations in the same order whatever the
 * batch size or thread count (pd_sgemm's elements are fixed FMA chains; our reductions run in a
 * fixed order inside one loop iteration), so an image is bit-identical in any batch.
 * Backward functions accumulate into their d* buffers and skip the NULL ones.
 */
#include "unet/layers.h"
#include "core/rng.h"
#include "unet/gemm.h"
#include <math.h>
#include <string.h>

/* Below this many elements an OpenMP region costs more than the loop it splits. */
#define PAR_MIN 32768

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Fixed-order double sum of n floats: four interleaved accumulators (for instruction-level
 * parallelism) combined in a fixed way, so the result depends only on the data. */
static double sum_f(const float *x, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i]; s1 += x[i + 1]; s2 += x[i + 2]; s3 += x[i + 3];
    }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

/* ------------------------------------------------------------------ linear */

/* One GEMM over the batch: every output element is a single FMA chain over IN (unet/gemm.h),
 * so a row's result does not depend on the other rows of the batch. */
void linear_forward(float *out, const float *in, const float *w, const float *b, int N, int IN,
                    int OUT) {
    if (b)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OUT, b, (size_t)OUT * sizeof *out);
    pd_sgemm(0, 1, N, OUT, IN, 1.0f, in, IN, w, IN, b ? 1.0f : 0.0f, out, OUT);
}

void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int N, int IN, int OUT) {
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) db[o] += dout[(size_t)n * OUT + o];
    /* dW[OUT,IN] += dout^T[OUT,N] · in[N,IN]; din[N,IN] += dout[N,OUT] · W[OUT,IN]. */
    if (dw) pd_sgemm(1, 0, OUT, IN, N, 1.0f, dout, OUT, in, IN, 1.0f, dw, IN);
    if (din) pd_sgemm(0, 0, N, IN, OUT, 1.0f, dout, OUT, w, IN, 1.0f, din, IN);
}

/* ------------------------------------------------------------------ SiLU */

/* exp(x) for the elementwise kernels: Cephes' expf (range reduction by ln 2 split in two, a
 * degree-6 polynomial, then 2^n through the exponent bits), about 1 ulp. It is written with
 * plain IEEE operations only (no libm call, no FMA: the build has -ffp-contract=off), so the
 * scalar, SSE and AVX-512 compilations of a loop give bit-identical values, and an element's
 * result cannot depend on where it sits in the array (vector body or tail). */
static inline float exp_ieee(float x) {
    x = x < -87.3f ? -87.3f : x;   /* keeps 2^n normal; exp(-87.3) ~ 1e-38 */
    x = x > 88.3f ? 88.3f : x;
    /* n = round(x·log2 e): adding 1.5·2^23 rounds to an integer, which lands in the low bits */
    float tm = x * 1.44269504088896341f + 12582912.0f;
    float n = tm - 12582912.0f;
    uint32_t bits;
    memcpy(&bits, &tm, sizeof bits);
    x = x - n * 0.693359375f;
    x = x - n * -2.12194440e-4f;
    float z = x * x, y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    uint32_t e = (bits - 0x4B400000u + 127u) << 23;   /* 2^n */
    float two_n;
    memcpy(&two_n, &e, sizeof two_n);
    return y * two_n;
}

/* Chunks of the elementwise loops, compiled for AVX-512 and the baseline and picked at load time;
 * both give the same bits (see exp_ieee). (Only AVX-512's masked operations let GCC vectorize the
 * clamps without -fno-trapping-math; the baseline clone runs them scalar.) */
#define PD_CLONES __attribute__((target_clones("avx512f", "default")))
#define CHUNK 4096

PD_CLONES static void silu_chunk(float *out, const float *in, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = x / (1.0f + exp_ieee(-x));
    }
}

/* d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))). */
PD_CLONES static void silu_bwd_chunk(float *din, const float *dout, const float *in, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float s = 1.0f / (1.0f + exp_ieee(-x));
        din[i] += dout[i] * (s * (1.0f + x * (1.0f - s)));
    }
}

void silu_forward(float *out, const float *in, size_t n) {
    size_t nch = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t c = 0; c < nch; c++) {
        size_t i = c * CHUNK;
        silu_chunk(out + i, in + i, n - i < CHUNK ? n - i : CHUNK);
    }
}

void silu_backward(float *din, const float *dout, const float *in, size_t n) {
    size_t nch = (n + CHUNK - 1) / CHUNK;
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t c = 0; c < nch; c++) {
        size_t i = c * CHUNK;
        silu_bwd_chunk(din + i, dout + i, in + i, n - i < CHUNK ? n - i : CHUNK);
    }
}

/* ------------------------------------------------------------------ GroupNorm */

/* EDM: num_groups = min(32, C // 4) (models.md §4.1). C < 4 would give 0 groups, which torch
 * rejects; one group is the only meaningful reading, so that is what we return. */
int groupnorm_groups(int C) {
    int g = imin(32, C / 4);
    return g < 1 ? 1 : g;
}

/* Sums for GroupNorm in double over eight explicit lanes (lane l takes elements l, l+8, ...,
 * combined pairwise at the end): vectorisable, yet the order is fixed by the code alone, not by
 * alignment, threads or ISA. With a = x: Σ x and Σ x² (a float squared is exact in double).
 * gn_sums2: Σ dy·ga and Σ (dy·ga)·((x − m)·r), the two reductions of the backward. */
#define LANES 8
static double lanes_total(const double *v) {
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

PD_CLONES static void gn_stats(const float *x, size_t n, double *sum, double *sumsq) {
    double s[LANES] = {0}, q[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double v = x[i + l];
            s[l] += v;
            q[l] += v * v;
        }
    for (int l = 0; i < n; i++, l++) {
        double v = x[i];
        s[l] += v;
        q[l] += v * v;
    }
    *sum = lanes_total(s);
    *sumsq = lanes_total(q);
}

PD_CLONES static void gn_sums2(const float *dy, const float *x, size_t n, float ga, float m,
                               float r, double *s1, double *s2) {
    double a[LANES] = {0}, b[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            float dxh = dy[i + l] * ga;
            a[l] += dxh;
            b[l] += (double)dxh * ((x[i + l] - m) * r);
        }
    for (int l = 0; i < n; i++, l++) {
        float dxh = dy[i] * ga;
        a[l] += dxh;
        b[l] += (double)dxh * ((x[i] - m) * r);
    }
    *s1 += lanes_total(a);
    *s2 += lanes_total(b);
}

/* y = ((x − m)·r)·γ + β; y may alias x. */
PD_CLONES static void gn_apply(float *y, const float *x, size_t n, float m, float r, float ga,
                               float be) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = ((x[i] - m) * r) * ga + be;
}

/* dx += r·((dy·γ − m1) − x̂·m2), x̂ = (x − m)·r. */
PD_CLONES static void gn_apply_bwd(float *dx, const float *dy, const float *x, size_t n, float m,
                                   float r, float ga, float m1, float m2) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) dx[i] += r * ((dy[i] * ga - m1) - ((x[i] - m) * r) * m2);
}

/* Statistics per (n, g) in double, each in one loop iteration, so they do not depend on the
 * thread count: biased variance = E[x²] − E[x]² (in double the cancellation costs nothing at
 * float precision unless |mean|/std > 1e4). mean/rstd are stored as float and the normalisation
 * uses exactly those floats, which backward reuses. */
void groupnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
                       const float *beta, int N, int C, int HW, int G, float eps) {
    int cg = C / G;
    size_t gs = (size_t)cg * HW;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * HW > PAR_MIN)
    for (int ng = 0; ng < N * G; ng++) {
        int n = ng / G, g = ng % G;
        size_t off = ((size_t)n * C + (size_t)g * cg) * HW;
        double sum, sumsq;
        gn_stats(in + off, gs, &sum, &sumsq);
        double mu = sum / (double)gs, var = sumsq / (double)gs - mu * mu;
        if (var < 0) var = 0;
        float m = (float)mu, r = (float)(1.0 / sqrt(var + (double)eps));
        mean[ng] = m;
        rstd[ng] = r;
        for (int c = 0; c < cg; c++) {
            int ch = g * cg + c;
            gn_apply(out + off + (size_t)c * HW, in + off + (size_t)c * HW, (size_t)HW, m, r,
                     gamma ? gamma[ch] : 1.0f, beta ? beta[ch] : 0.0f);
        }
    }
}

/* With x̂ = (x−μ)·r and dx̂ = dout·γ, over the m = (C/G)·HW elements of a group:
 * dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)); dγ = Σ dout·x̂, dβ = Σ dout over (n, hw). */
void groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                        const float *mean, const float *rstd, const float *gamma, int N, int C,
                        int HW, int G) {
    int cg = C / G;
    size_t gs = (size_t)cg * HW;
    int big = (size_t)N * C * HW > PAR_MIN;
    if (dgamma || dbeta) {
        /* Per channel, samples in order: a fixed reduction order for the parameter gradients. */
        #pragma omp parallel for schedule(static) if (big)
        for (int ch = 0; ch < C; ch++) {
            int g = ch / cg;
            double sb = 0, sg = 0;
            for (int n = 0; n < N; n++) {
                size_t off = ((size_t)n * C + ch) * HW;
                gn_sums2(dout + off, in + off, (size_t)HW, 1.0f, mean[n * G + g], rstd[n * G + g],
                         &sb, &sg);
            }
            if (dgamma) dgamma[ch] += (float)sg;
            if (dbeta) dbeta[ch] += (float)sb;
        }
    }
    if (!din) return;
    #pragma omp parallel for schedule(static) if (big)
    for (int ng = 0; ng < N * G; ng++) {
        int g = ng % G;
        size_t off = ((size_t)(ng / G) * C + (size_t)g * cg) * HW;
        float m = mean[ng], r = rstd[ng];
        double s1 = 0, s2 = 0;
        for (int c = 0; c < cg; c++)
            gn_sums2(dout + off + (size_t)c * HW, in + off + (size_t)c * HW, (size_t)HW,
                     gamma ? gamma[g * cg + c] : 1.0f, m, r, &s1, &s2);
        float m1 = (float)(s1 / (double)gs), m2 = (float)(s2 / (double)gs);
        for (int c = 0; c < cg; c++)
            gn_apply_bwd(din + off + (size_t)c * HW, dout + off + (size_t)c * HW,
                         in + off + (size_t)c * HW, (size_t)HW, m, r,
                         gamma ? gamma[g * cg + c] : 1.0f, m1, m2);
    }
}

/* ------------------------------------------------------------------ conv2d */

/* Valid output columns x for kernel column kj under zero padding p: 0 <= x + kj − p < W. */
static inline void col_range(int kj, int p, int W, int *x0, int *x1) {
    *x0 = imax(0, p - kj);
    *x1 = imin(W, W + p - kj);
    if (*x1 < *x0) *x1 = *x0;
}

/* The im2col matrix of one sample, col[(c·k + ki)·k + kj, y·W + x] = in[c, y+ki−p, x+kj−p] (zero
 * outside), is never stored: the GEMM packs its panels straight from a zero-padded copy of the
 * image, P[c, y', x'] = in[c, y'−p, x'−p] ((H+2p) x (W+2p) per channel), where every row of the
 * im2col matrix is a plain strided copy: col[(c,ki,kj), (y,x)] = P[c, y+ki, x+kj]. That saves
 * writing and re-reading C·k²·H·W floats per sample, and all edge tests. k²·H·W >= (H+k−1)·(W+k−1)
 * for H, W >= 1, so the caller's col scratch holds at least one padded sample. */
typedef struct {
    const float *xp;          /* padded samples */
    size_t stride;            /* floats per padded sample, C·Hp·Wp */
    int W, Hp, Wp, k;
} conv_src;

/* P for samples [0, n) of x into dst, one (sample, channel) plane per iteration. */
static void pad_images(float *dst, const float *x, int n, int C, int H, int W, int k) {
    int p = k / 2, Hp = H + 2 * p, Wp = W + 2 * p;
    #pragma omp parallel for schedule(static) if ((size_t)n * C * Hp * Wp > PAR_MIN)
    for (int nc = 0; nc < n * C; nc++) {
        float *d = dst + (size_t)nc * Hp * Wp;
        const float *s = x + (size_t)nc * H * W;
        memset(d, 0, (size_t)p * Wp * sizeof *d);
        for (int y = 0; y < H; y++) {
            float *r = d + (size_t)(y + p) * Wp;
            for (int i = 0; i < p; i++) r[i] = r[p + W + i] = 0.0f;
            memcpy(r + p, s + (size_t)y * W, (size_t)W * sizeof *r);
        }
        memset(d + (size_t)(p + H) * Wp, 0, (size_t)p * Wp * sizeof *d);
    }
}

/* n consecutive entries of row r of sample b's im2col matrix, from column hw0. */
static void col_row(float *d, const conv_src *s, int b, int r, int hw0, int n) {
    int k = s->k, W = s->W, kk = k * k;
    int c = r / kk, ki = (r / k) % k, kj = r % k;
    const float *img = s->xp + (size_t)b * s->stride + ((size_t)c * s->Hp + ki) * s->Wp + kj;
    int y = hw0 / W, x = hw0 % W, j = 0;
    while (j < n) {
        int seg = imin(W - x, n - j);   /* output row y, columns x .. x+seg-1 */
        memcpy(d + j, img + (size_t)y * s->Wp + x, (size_t)seg * sizeof *d);
        j += seg;
        x = 0;
        y++;
    }
}

/* Forward: op(B) = col [C·k², HW]; a panel is kc rows of nr consecutive pixels. This is the hot
 * packing loop, so (c, ki, kj) and the panel's first pixel (y0, x0) are stepped, not divided. */
static void pack_conv_fwd(float *dst, int nr, int k0, int kc, int j0, int w, int b,
                          const void *ctx) {
    const conv_src *s = ctx;
    int k = s->k, W = s->W, Wp = s->Wp;
    int y0 = j0 / W, x0 = j0 % W, one_row = x0 + w <= W;
    int c = k0 / (k * k), ki = (k0 / k) % k, kj = k0 % k;
    const float *plane = s->xp + (size_t)b * s->stride + (size_t)c * s->Hp * Wp;
    for (int t = 0; t < kc; t++) {
        float *d = dst + (size_t)t * nr;
        const float *src = plane + (size_t)(y0 + ki) * Wp + x0 + kj;
        if (one_row) {
            memcpy(d, src, (size_t)w * sizeof *d);
        } else if (x0 == 0 && w == nr && nr % 8 == 0 && W == 8) {   /* whole rows, fixed-size copies */
            for (int j = 0; j < w; j += 8, src += Wp) memcpy(d + j, src, 8 * sizeof *d);
        } else if (x0 == 0 && w == nr && nr % 16 == 0 && W == 16) {
            for (int j = 0; j < w; j += 16, src += Wp) memcpy(d + j, src, 16 * sizeof *d);
        } else {
            for (int j = 0, y = y0, x = x0; j < w; y++) {   /* output rows y0, y0+1, ... */
                int seg = imin(W - x, w - j);
                memcpy(d + j, plane + (size_t)(y + ki) * Wp + x + kj, (size_t)seg * sizeof *d);
                j += seg;
                x = 0;
            }
        }
        for (int j = w; j < nr; j++) d[j] = 0.0f;
        if (++kj == k) {
            kj = 0;
            if (++ki == k) {
                ki = 0;
                plane += (size_t)s->Hp * Wp;
            }
        }
    }
}

/* Weight gradient: op(B) = col^T [HW, C·k²]; column j of a panel is a stretch of col row j. */
static void pack_conv_wgrad(float *dst, int nr, int k0, int kc, int j0, int w, int b,
                            const void *ctx) {
    float tmp[256];
    for (int j = 0; j < w; j++)
        for (int t0 = 0; t0 < kc; t0 += 256) {
            int n = imin(256, kc - t0);
            col_row(tmp, ctx, b, j0 + j, k0 + t0, n);
            for (int t = 0; t < n; t++) dst[(size_t)(t0 + t) * nr + j] = tmp[t];
        }
    for (int j = w; j < nr; j++)
        for (int t = 0; t < kc; t++) dst[(size_t)t * nr + j] = 0.0f;
}

/* Data gradient as a convolution: din[c, y, x] = Σ_{o,ki,kj} W[o, c, ki, kj]·dout[o, y−ki+p, x−kj+p]
 * = Σ W'[c, o, ki', kj']·dout[o, y+ki'−p, x+kj'−p] with W'[c, o, ki', kj'] = W[o, c, k−1−ki', k−1−kj']
 * (k = 2p+1): a forward conv of dout with the flipped, transposed kernel, which this packs as the
 * GEMM's A [C, OC·k²] straight from W. */
typedef struct { const float *w; int C, kk; } flipped_w;

static void pack_a_flipped(float *d, int mr, int i0, int rows, int k0, int kc, int b,
                           const void *ctx) {
    const flipped_w *f = ctx;
    int kk = f->kk;
    for (int t = 0; t < kc; t++) {
        int m = k0 + t, o = m / kk, q = m % kk;
        const float *src = f->w + ((size_t)o * f->C + i0) * kk + (kk - 1 - q);
        float *dt = d + (size_t)t * mr;
        for (int r = 0; r < rows; r++) dt[r] = src[(size_t)r * kk];
        for (int r = rows; r < mr; r++) dt[r] = 0.0f;
    }
}

/* Adjoint of im2col, accumulated: din[c, ·] += scatter of its k·k rows. One channel per
 * iteration, rows in fixed (ki, kj, y) order, so no two threads touch one element. */
static void col2im_add(float *din, const float *col, int C, int H, int W, int k) {
    int p = k / 2, kk = k * k;
    size_t HW = (size_t)H * W;
    #pragma omp parallel for schedule(static) if ((size_t)C * kk * HW > PAR_MIN)
    for (int c = 0; c < C; c++) {
        float *dst = din + (size_t)c * HW;
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *src = col + ((size_t)c * kk + (size_t)ki * k + kj) * HW;
                int x0, x1;
                col_range(kj, p, W, &x0, &x1);
                for (int y = 0; y < H; y++) {
                    int sy = y + ki - p;
                    if (sy < 0 || sy >= H) continue;
                    float *d = dst + (size_t)sy * W;   /* d[x + kj − p], x >= x0 keeps it >= 0 */
                    const float *s = src + (size_t)y * W;
                    for (int x = x0; x < x1; x++) d[x + kj - p] += s[x];
                }
            }
    }
}

/* Groups of at most `fit` samples, as even as possible (8 in groups of 5 would be 5 + 3; 4 + 4
 * keeps two threads equally busy). */
static int balanced_group(int fit, int N) {
    if (fit < 1) fit = 1;
    int ngroups = (N + fit - 1) / fit;
    return ngroups ? (N + ngroups - 1) / ngroups : 1;
}

/* The weights [OC, C·k²] as the GEMM's A (rows of a row-major matrix, alpha = 1). */
typedef struct { const float *w; int K; } mat_a_w;

static void pack_a_rows(float *d, int mr, int i0, int rows, int k0, int kc, int b, const void *ctx) {
    const mat_a_w *m = ctx;
    for (int k = 0; k < kc; k++) {
        float *dk = d + (size_t)k * mr;
        for (int r = 0; r < rows; r++) dk[r] = m->w[(size_t)(i0 + r) * m->K + k0 + k];
        for (int r = rows; r < mr; r++) dk[r] = 0.0f;
    }
}

/* Per sample: out_n[OC, HW] = W[OC, C·k·k] · col_n[C·k·k, HW] (+ b), col_n implicit, as batched
 * GEMMs over as many samples as the col scratch holds padded copies of; W is packed once per
 * batch. Sample n's result is what a batch of one would give. The bias is written first and the
 * GEMM accumulates onto it (beta = 1). */
void conv2d_forward(float *out, const float *in, const float *w, const float *b, int N, int C,
                    int H, int W, int OC, int k, float *col) {
    size_t HW = (size_t)H * W;
    int K = C * k * k;
    if (b) {
        #pragma omp parallel for schedule(static) if ((size_t)N * OC * HW > PAR_MIN)
        for (int no = 0; no < N * OC; no++)
            for (size_t j = 0; j < HW; j++) out[(size_t)no * HW + j] = b[no % OC];
    }
    float beta = b ? 1.0f : 0.0f;
    if (k == 1) {   /* a 1x1 conv reads the input as [C, HW] directly */
        pd_sgemm_batch(0, 0, OC, (int)HW, K, 1.0f, w, K, 0, in, (int)HW, (size_t)C * HW, beta, out,
                       (int)HW, (size_t)OC * HW, N);
        return;
    }
    int Hp = H + k - 1, Wp = W + k - 1;
    size_t padded = (size_t)C * Hp * Wp;
    int group = balanced_group((int)(((size_t)K * HW) / padded), N);
    mat_a_w wa = {w, K};
    for (int n0 = 0; n0 < N; n0 += group) {
        int gn = imin(group, N - n0);
        pad_images(col, in + (size_t)n0 * C * HW, gn, C, H, W, k);
        conv_src src = {col, padded, W, Hp, Wp, k};
        pd_sgemm_custom(OC, (int)HW, K, pack_a_rows, &wa, n0 ? 2 : 1, pack_conv_fwd, &src, beta,
                        out + (size_t)n0 * OC * HW, (int)HW, (size_t)OC * HW, gn);
    }
}

/* db += Σ_{n,hw} dout; dW += dout_n · col_n^T (col_n implicit, from the padded sample in col),
 * samples in order so dW and db reduce in a fixed order; din += the flipped-kernel convolution of
 * dout (per sample, batched like the forward), or col2im(W^T · dout_n) when col is too small to
 * hold a padded dout. */
void conv2d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int N, int C, int H, int W, int OC, int k, float *col) {
    size_t HW = (size_t)H * W;
    int K = C * k * k;
    if (db) {
        #pragma omp parallel for schedule(static) if ((size_t)N * OC * HW > PAR_MIN)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += sum_f(dout + ((size_t)n * OC + o) * HW, HW);
            db[o] += (float)s;
        }
    }
    if (!dw && !din) return;
    if (dw)
        for (int n = 0; n < N; n++) {
            const float *x = in + (size_t)n * C * HW;
            const float *g = dout + (size_t)n * OC * HW;
            if (k == 1) {
                pd_sgemm(0, 1, OC, K, (int)HW, 1.0f, g, (int)HW, x, (int)HW, 1.0f, dw, K);
            } else {
                pad_images(col, x, 1, C, H, W, k);
                conv_src src = {col, 0, W, H + k - 1, W + k - 1, k};
                pd_sgemm_packb(0, OC, K, (int)HW, 1.0f, g, (int)HW, 0, pack_conv_wgrad, &src, 1.0f,
                               dw, K, 0, 1);
            }
        }
    if (!din) return;
    if (k == 1) {   /* din_n += W^T · dout_n */
        pd_sgemm_batch(1, 0, C, (int)HW, OC, 1.0f, w, C, 0, dout, (int)HW, (size_t)OC * HW, 1.0f,
                       din, (int)HW, (size_t)C * HW, N);
        return;
    }
    int Hp = H + k - 1, Wp = W + k - 1;
    size_t padded = (size_t)OC * Hp * Wp;
    int fit = (int)(((size_t)K * HW) / padded);
    if (fit >= 1) {   /* the flipped-kernel convolution, batched like the forward */
        int group = balanced_group(fit, N);
        flipped_w f = {w, C, k * k};
        for (int n0 = 0; n0 < N; n0 += group) {
            int gn = imin(group, N - n0);
            pad_images(col, dout + (size_t)n0 * OC * HW, gn, OC, H, W, k);
            conv_src src = {col, padded, W, Hp, Wp, k};
            pd_sgemm_custom(C, (int)HW, OC * k * k, pack_a_flipped, &f, n0 ? 2 : 1, pack_conv_fwd,
                            &src, 1.0f, din + (size_t)n0 * C * HW, (int)HW, (size_t)C * HW, gn);
        }
        return;
    }
    /* col cannot hold a padded dout (OC much larger than C·k²): dcol = W^T · dout_n, col2im. */
    for (int n = 0; n < N; n++) {
        pd_sgemm(1, 0, K, (int)HW, OC, 1.0f, w, K, dout + (size_t)n * OC * HW, (int)HW, 0.0f, col,
                 (int)HW);
        col2im_add(din + (size_t)n * C * HW, col, C, H, W, k);
    }
}

/* ------------------------------------------------------------------ resampling */

/* EDM's down-resample with filter [1,1] is depthwise conv with outer([1,1],[1,1])/4, stride 2:
 * a 2x2 mean (models.md §4.1). H, W are input sizes. */
void avgpool2_forward(float *out, const float *in, int N, int C, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > PAR_MIN)
    for (int nc = 0; nc < N * C; nc++) {
        const float *x = in + (size_t)nc * H * W;
        float *y = out + (size_t)nc * Ho * Wo;
        for (int i = 0; i < Ho; i++) {
            const float *r0 = x + (size_t)(2 * i) * W, *r1 = r0 + W;
            for (int j = 0; j < Wo; j++)
                y[(size_t)i * Wo + j] = 0.25f * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]));
        }
    }
}

void avgpool2_backward(float *din, const float *dout, int N, int C, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > PAR_MIN)
    for (int nc = 0; nc < N * C; nc++) {
        float *dx = din + (size_t)nc * H * W;
        const float *dy = dout + (size_t)nc * Ho * Wo;
        for (int i = 0; i < Ho; i++) {
            float *r0 = dx + (size_t)(2 * i) * W, *r1 = r0 + W;
            for (int j = 0; j < Wo; j++) {
                float g = 0.25f * dy[(size_t)i * Wo + j];
                r0[2 * j] += g; r0[2 * j + 1] += g;
                r1[2 * j] += g; r1[2 * j + 1] += g;
            }
        }
    }
}

/* Up-resample with [1,1]: transposed depthwise conv with 4·outer/4, stride 2 = nearest x2. */
void upsample2_forward(float *out, const float *in, int N, int C, int H, int W) {
    int Wo = 2 * W;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W * 4 > PAR_MIN)
    for (int nc = 0; nc < N * C; nc++) {
        const float *x = in + (size_t)nc * H * W;
        float *y = out + (size_t)nc * 4 * H * W;
        for (int i = 0; i < H; i++) {
            float *r0 = y + (size_t)(2 * i) * Wo;
            for (int j = 0; j < W; j++) r0[2 * j] = r0[2 * j + 1] = x[(size_t)i * W + j];
            memcpy(r0 + Wo, r0, (size_t)Wo * sizeof *r0);
        }
    }
}

void upsample2_backward(float *din, const float *dout, int N, int C, int H, int W) {
    int Wo = 2 * W;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W * 4 > PAR_MIN)
    for (int nc = 0; nc < N * C; nc++) {
        float *dx = din + (size_t)nc * H * W;
        const float *dy = dout + (size_t)nc * 4 * H * W;
        for (int i = 0; i < H; i++) {
            const float *r0 = dy + (size_t)(2 * i) * Wo, *r1 = r0 + Wo;
            for (int j = 0; j < W; j++)
                dx[(size_t)i * W + j] += (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
}

/* Upsample guidance's Down_m / Up_m (models.md §2.1): m x m block mean and m x m copy. */
void avgpool_forward(float *out, const float *in, int N, int C, int H, int W, int m) {
    int Ho = H / m, Wo = W / m;
    float inv = (float)(1.0 / ((double)m * m));
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W > PAR_MIN)
    for (int nc = 0; nc < N * C; nc++) {
        const float *x = in + (size_t)nc * H * W;
        float *y = out + (size_t)nc * Ho * Wo;
        for (int i = 0; i < Ho; i++)
            for (int j = 0; j < Wo; j++) {
                float s = 0.0f;
                for (int a = 0; a < m; a++) {
                    const float *r = x + (size_t)(i * m + a) * W + (size_t)j * m;
                    for (int b = 0; b < m; b++) s += r[b];
                }
                y[(size_t)i * Wo + j] = s * inv;
            }
    }
}

void upsample_nearest_forward(float *out, const float *in, int N, int C, int H, int W, int m) {
    int Wo = W * m;
    #pragma omp parallel for schedule(static) if ((size_t)N * C * H * W * m * m > PAR_MIN)
    for (int nc = 0; nc < N * C; nc++) {
        const float *x = in + (size_t)nc * H * W;
        float *y = out + (size_t)nc * H * W * m * m;
        for (int i = 0; i < H; i++) {
            float *r0 = y + (size_t)i * m * Wo;
            for (int j = 0; j < W; j++)
                for (int b = 0; b < m; b++) r0[(size_t)j * m + b] = x[(size_t)i * W + j];
            for (int a = 1; a < m; a++) memcpy(r0 + (size_t)a * Wo, r0, (size_t)Wo * sizeof *r0);
        }
    }
}

/* ------------------------------------------------------------------ attention */

/* Item b = n·heads + h (sample n, head h) of qkv starts at b·3·Ch·L: rows c·3 + j (j = q, k, v)
 * of length L, so q, k and v are [Ch, L] matrices with row stride 3L at offsets 0, L and 2L
 * (models.md §4.4). Its output rows start at b·Ch·L in out [N, C, L] (head-major channels). */

/* S = q^T k / sqrt(Ch) into att; row softmax in place; out = v · A^T. Every (sample, head) item
 * sits at a uniform stride (3·Ch·L in qkv, L·L in att, Ch·L in out), so each product is one
 * batched GEMM. The softmax subtracts the row max, exponentiates in float and sums in double
 * (then one float reciprocal): torch's fp32 softmax up to rounding. */
void attention_forward(float *out, float *att, const float *qkv, int N, int C, int L, int heads,
                       float *scratch) {
    int Ch = C / heads, items = N * heads;
    size_t LL = (size_t)L * L, hs = (size_t)3 * Ch * L;
    float scale = (float)(1.0 / sqrt((double)Ch));
    pd_sgemm_batch(1, 0, L, L, Ch, scale, qkv, 3 * L, hs, qkv + L, 3 * L, hs, 0.0f, att, L, LL, items);
    int rows = items * L;
    #pragma omp parallel for schedule(static) if ((size_t)rows * L > PAR_MIN)
    for (int r = 0; r < rows; r++) {
        float *a = att + (size_t)r * L;
        float mx = a[0];
        for (int l = 1; l < L; l++) mx = a[l] > mx ? a[l] : mx;
        double s = 0;
        for (int l = 0; l < L; l++) { a[l] = expf(a[l] - mx); s += a[l]; }
        float inv = (float)(1.0 / s);
        for (int l = 0; l < L; l++) a[l] *= inv;
    }
    pd_sgemm_batch(0, 1, Ch, L, L, 1.0f, qkv + 2 * (size_t)L, 3 * L, hs, att, L, LL, 0.0f, out, L,
                   (size_t)Ch * L, items);
}

/* With a = v·A^T, A = softmax(S), S = s·q^T k (s = 1/sqrt(Ch)), da = dout:
 * dv += da·A; dA = da^T·v; dS = A ⊙ (dA − rowsum(A ⊙ dA)); dq += s·k·dS^T; dk += s·q·dS.
 * dv is one batched GEMM over all (sample, head) items; dA/dS live in the scratch, which holds
 * three L x L blocks, so the rest runs three items at a time. */
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int N,
                        int C, int L, int heads, float *scratch) {
    if (!dqkv) return;
    int Ch = C / heads, items = N * heads;
    size_t LL = (size_t)L * L, hs = (size_t)3 * Ch * L, os = (size_t)Ch * L;
    float scale = (float)(1.0 / sqrt((double)Ch));
    float *dS = scratch;
    pd_sgemm_batch(0, 0, Ch, L, L, 1.0f, dout, L, os, att, L, LL, 1.0f, dqkv + 2 * (size_t)L,
                   3 * L, hs, items);
    for (int i0 = 0; i0 < items; i0 += 3) {
        int g = imin(3, items - i0);
        const float *q = qkv + (size_t)i0 * hs;
        float *dq = dqkv + (size_t)i0 * hs;
        pd_sgemm_batch(1, 0, L, L, Ch, 1.0f, dout + (size_t)i0 * os, L, os, q + 2 * (size_t)L, 3 * L,
                       hs, 0.0f, dS, L, LL, g);
        #pragma omp parallel for schedule(static) if ((size_t)g * LL > PAR_MIN)
        for (int r = 0; r < g * L; r++) {
            const float *ar = att + (size_t)i0 * LL + (size_t)r * L;
            float *dr = dS + (size_t)r * L;
            double s = 0;
            for (int l = 0; l < L; l++) s += (double)ar[l] * dr[l];
            float sf = (float)s;
            for (int l = 0; l < L; l++) dr[l] = ar[l] * (dr[l] - sf);
        }
        pd_sgemm_batch(0, 1, Ch, L, L, scale, q + L, 3 * L, hs, dS, L, LL, 1.0f, dq, 3 * L, hs, g);
        pd_sgemm_batch(0, 0, Ch, L, L, scale, q, 3 * L, hs, dS, L, LL, 1.0f, dq + L, 3 * L, hs, g);
    }
}

/* ------------------------------------------------------------------ positional embedding */

/* freq_i = (1/10000)^(i / (Cn/2 − endpoint)) (models.md §4.2). Phases and cos/sin are taken in
 * double and rounded once, slightly more accurate than torch's fp32 ger + cos. A one-frequency
 * embedding with endpoint has a zero denominator; its single frequency is then 1. */
static inline double pe_freq(int i, int half, int endpoint) {
    int den = half - (endpoint ? 1 : 0);
    return den > 0 ? pow(1e-4, (double)i / den) : 1.0;
}

void posemb_forward(float *out, const float *c_noise, int N, int Cn, int endpoint, int flip) {
    int half = Cn / 2;
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * Cn;
        for (int i = 0; i < half; i++) {
            double a = (double)c_noise[n] * pe_freq(i, half, endpoint);
            o[flip ? half + i : i] = (float)cos(a);
            o[flip ? i : half + i] = (float)sin(a);
        }
    }
}

void posemb_backward(float *dc_noise, const float *dout, const float *c_noise, int N, int Cn,
                     int endpoint, int flip) {
    if (!dc_noise) return;
    int half = Cn / 2;
    for (int n = 0; n < N; n++) {
        const float *g = dout + (size_t)n * Cn;
        double s = 0;
        for (int i = 0; i < half; i++) {
            double f = pe_freq(i, half, endpoint), a = (double)c_noise[n] * f;
            double gc = g[flip ? half + i : i], gs = g[flip ? i : half + i];
            s += f * (gs * cos(a) - gc * sin(a));
        }
        dc_noise[n] += (float)s;
    }
}

/* ------------------------------------------------------------------ dropout */

/* mask[i] = (u_i >= p) with u_i element i of pd_randu(seed, stream): the same Philox block
 * (i/4, stream) under key seed and the same (v + 0.5)/2^32 map as core/rng.c, computed here per
 * block so no n-float scratch is needed. P(keep) = 1 − p. */
void dropout_forward(float *out, uint8_t *mask, const float *in, size_t n, float p, uint64_t seed,
                     uint64_t stream) {
    if (p <= 0.0f) {
        if (out != in) memcpy(out, in, n * sizeof *out);
        if (mask) memset(mask, 1, n);
        return;
    }
    float scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
    size_t nblk = (n + 3) / 4;
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t b = 0; b < nblk; b++) {
        uint32_t ctr[4] = {(uint32_t)b, (uint32_t)((uint64_t)b >> 32), (uint32_t)stream,
                           (uint32_t)(stream >> 32)};
        uint32_t r[4];
        pd_philox4x32(r, ctr, key);
        for (size_t j = 0; j < 4 && 4 * b + j < n; j++) {
            size_t i = 4 * b + j;
            float u = (float)(((double)r[j] + 0.5) * (1.0 / 4294967296.0));
            int keep = u >= p;
            if (mask) mask[i] = (uint8_t)keep;
            out[i] = keep ? in[i] * scale : 0.0f;
        }
    }
}

void dropout_backward(float *din, const float *dout, const uint8_t *mask, size_t n, float p) {
    if (!din) return;
    if (p <= 0.0f) {
        #pragma omp parallel for schedule(static) if (n > PAR_MIN)
        for (size_t i = 0; i < n; i++) din[i] += dout[i];
        return;
    }
    float scale = p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f;
    #pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++)
        if (mask[i]) din[i] += dout[i] * scale;
}
