/* layers.c — the fast float32 kernels behind unet/layers.h (EDM primitives, docs/algorithms.md §M4.1, §M4.2,
 * §M4.4), each a forward/backward pair in llm.c's style. Every matrix product is OpenBLAS
 * (cblas_sgemm / cblas_sgemv through unet/gemm.h): convolutions as an explicit im2col then sgemm
 * per sample, attention as sgemm per (sample, head, query tile), linear as sgemv per sample.
 * Determinism (DESIGN.md conventions 7-8): each product is cut into tiles whose sizes depend only
 * on the layer's shape, and each tile is one single-threaded OpenBLAS call (gemm.h); our pool
 * loops (core/pool.h) over (sample, tile), (sample, channel) or rows hand tiles to threads. A
 * single-threaded call's bits depend only on its shape, and every reduction of ours (GroupNorm
 * statistics, bias sums, dW over samples) runs in a fixed order inside one loop item, so an image
 * is bit-identical in any batch on any thread count, whichever thread runs an item. Each loop's
 * arguments travel in a struct to its *_items function, whose body is the loop's. Backward
 * functions accumulate into their d* buffers and skip the NULL ones.
 */
#include "unet/layers.h"
#include "core/pool.h"
#include "core/rng.h"
#include "core/thread_buffer.h"
#include "core/util.h"
#include "unet/bf16.h"
#include "unet/gemm.h"
#include "unet/precision.h"
#include "unet/winograd.h"
#include <math.h>
#include <omp.h>
#include <string.h>

/* Below this many elements a parallel loop costs more than the loop it splits. */
#define PAR_MIN 32768

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline size_t imin_size(size_t a, size_t b) { return a < b ? a : b; }

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

/* Items: samples. Forward: out = y, in = x; backward: out = din, in = dout. */
struct linear_args {
    float *out;
    const float *in, *w, *b;
    int IN, OUT;
};

static void linear_fwd_items(void *p, long n0, long n1) {
    const struct linear_args *a = p;
    float *out = a->out;
    const float *in = a->in, *w = a->w, *b = a->b;
    int IN = a->IN, OUT = a->OUT;
    for (int n = (int)n0; n < (int)n1; n++) {
        float *y = out + (size_t)n * OUT;
        if (b) memcpy(y, b, (size_t)OUT * sizeof *y);
        gemm_sgemv_st(0, OUT, IN, 1.0f, w, IN, in + (size_t)n * IN, b ? 1.0f : 0.0f, y);
    }
}

/* Per sample, y_n = W x_n (+ b) as one single-threaded sgemv of shape [OUT, IN]: a row's bits
 * depend on that shape alone, not on N (one GEMM over the batch would tile, and round, by N). */
void linear_forward(float *out, const float *in, const float *w, const float *b, int N, int IN,
                    int OUT) {
    struct linear_args a = {out, in, w, b, IN, OUT};
    core_pool_for(N, 2.0 * N * IN * OUT >= GEMM_PAR_FLOPS, linear_fwd_items, &a);
}

static void linear_bwd_items(void *p, long n0, long n1) {
    const struct linear_args *a = p;
    float *din = a->out;
    const float *dout = a->in, *w = a->w;
    int IN = a->IN, OUT = a->OUT;
    for (int n = (int)n0; n < (int)n1; n++)
        gemm_sgemv_st(1, OUT, IN, 1.0f, w, IN, dout + (size_t)n * OUT, 1.0f, din + (size_t)n * IN);
}

/* db += Σ_n dout_n (samples in order); dW[OUT,IN] += dout^T[OUT,N] · in[N,IN], one tiled GEMM
 * whose reduction over the batch has a fixed order for a given N; din_n += W^T dout_n per sample
 * (sgemv, like the forward). */
void linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int N, int IN, int OUT) {
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++) db[o] += dout[(size_t)n * OUT + o];
    if (dw) gemm_sgemm(1, 0, OUT, IN, N, 1.0f, dout, OUT, in, IN, 1.0f, dw, IN);
    if (!din) return;
    struct linear_args a = {din, dout, w, NULL, IN, OUT};
    core_pool_for(N, 2.0 * N * IN * OUT >= GEMM_PAR_FLOPS, linear_bwd_items, &a);
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
#define UNET_CLONES __attribute__((target_clones("avx512f", "default")))
#define CHUNK 4096

/* The elementwise loops' items are chunks: item c is elements [c·CHUNK, min(n, (c+1)·CHUNK)).
 * One args struct serves them all; each *_items function reads the fields its kernel takes
 * (out is din for the backward kernels). */
struct ew_args {
    float *out;
    const float *in, *dout;
    const uint8_t *mask;
    size_t n;
    float scale;
};

static inline size_t ew_len(const struct ew_args *a, size_t i) {
    return a->n - i < CHUNK ? a->n - i : CHUNK;
}

/* Parallel above PAR_MIN elements (not chunks). */
static void ew_run(core_pool_fn fn, struct ew_args *a) {
    core_pool_for((long)((a->n + CHUNK - 1) / CHUNK), a->n > PAR_MIN, fn, a);
}

UNET_CLONES static void silu_chunk(float *out, const float *in, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = x / (1.0f + exp_ieee(-x));
    }
}

/* d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))). */
UNET_CLONES static void silu_bwd_chunk(float *din, const float *dout, const float *in, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float s = 1.0f / (1.0f + exp_ieee(-x));
        din[i] += dout[i] * (s * (1.0f + x * (1.0f - s)));
    }
}

static void silu_fwd_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    for (long c = c0; c < c1; c++) {
        size_t i = (size_t)c * CHUNK;
        silu_chunk(a->out + i, a->in + i, ew_len(a, i));
    }
}

static void silu_bwd_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    for (long c = c0; c < c1; c++) {
        size_t i = (size_t)c * CHUNK;
        silu_bwd_chunk(a->out + i, a->dout + i, a->in + i, ew_len(a, i));
    }
}

void silu_forward(float *out, const float *in, size_t n) {
    struct ew_args a = {.out = out, .in = in, .n = n};
    ew_run(silu_fwd_items, &a);
}

void silu_backward(float *din, const float *dout, const float *in, size_t n) {
    struct ew_args a = {.out = din, .in = in, .dout = dout, .n = n};
    ew_run(silu_bwd_items, &a);
}

/* ------------------------------------------------------------------ GroupNorm */

/* EDM: num_groups = min(32, C // 4) (docs/algorithms.md §M4.1). C < 4 would give 0 groups, which torch
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

UNET_CLONES static void gn_stats(const float *x, size_t n, double *sum, double *sumsq) {
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

UNET_CLONES static void gn_sums2(const float *dy, const float *x, size_t n, float ga, float m,
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
UNET_CLONES static void gn_apply(float *y, const float *x, size_t n, float m, float r, float ga,
                                 float be) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) y[i] = ((x[i] - m) * r) * ga + be;
}

/* dx += r·((dy·γ − m1) − x̂·m2), x̂ = (x − m)·r. */
UNET_CLONES static void gn_apply_bwd(float *dx, const float *dy, const float *x, size_t n, float m,
                                     float r, float ga, float m1, float m2) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) dx[i] += r * ((dy[i] * ga - m1) - ((x[i] - m) * r) * m2);
}

/* Items: (n, g). */
struct gn_fwd_args {
    float *out, *mean, *rstd;
    const float *in, *gamma, *beta;
    int C, HW, G;
    float eps;
};

static void gn_fwd_items(void *p, long b0, long b1) {
    const struct gn_fwd_args *a = p;
    float *out = a->out, *mean = a->mean, *rstd = a->rstd;
    const float *in = a->in, *gamma = a->gamma, *beta = a->beta;
    int C = a->C, HW = a->HW, G = a->G, cg = C / G;
    size_t gs = (size_t)cg * HW;
    float eps = a->eps;
    for (int ng = (int)b0; ng < (int)b1; ng++) {
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

/* Statistics per (n, g) in double, each in one loop item, so they do not depend on the thread
 * count: biased variance = E[x²] − E[x]² (in double the cancellation costs nothing at float
 * precision unless |mean|/std > 1e4). mean/rstd are stored as float and the normalisation uses
 * exactly those floats, which backward reuses. */
void groupnorm_forward(float *out, float *mean, float *rstd, const float *in, const float *gamma,
                       const float *beta, int N, int C, int HW, int G, float eps) {
    struct gn_fwd_args a = {out, mean, rstd, in, gamma, beta, C, HW, G, eps};
    core_pool_for((long)N * G, (size_t)N * C * HW > PAR_MIN, gn_fwd_items, &a);
}

/* Items: channels for dgamma/dbeta, (n, g) for din. */
struct gn_bwd_args {
    float *din, *dgamma, *dbeta;
    const float *dout, *in, *mean, *rstd, *gamma;
    int N, C, HW, G;
};

/* Per channel, samples in order: a fixed reduction order for the parameter gradients. */
static void gn_param_items(void *p, long c0, long c1) {
    const struct gn_bwd_args *a = p;
    float *dgamma = a->dgamma, *dbeta = a->dbeta;
    const float *dout = a->dout, *in = a->in, *mean = a->mean, *rstd = a->rstd;
    int N = a->N, C = a->C, HW = a->HW, G = a->G, cg = C / G;
    for (int ch = (int)c0; ch < (int)c1; ch++) {
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

static void gn_bwd_items(void *p, long b0, long b1) {
    const struct gn_bwd_args *a = p;
    float *din = a->din;
    const float *dout = a->dout, *in = a->in, *mean = a->mean, *rstd = a->rstd,
                *gamma = a->gamma;
    int C = a->C, HW = a->HW, G = a->G, cg = C / G;
    size_t gs = (size_t)cg * HW;
    for (int ng = (int)b0; ng < (int)b1; ng++) {
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

/* With x̂ = (x−μ)·r and dx̂ = dout·γ, over the m = (C/G)·HW elements of a group:
 * dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)); dγ = Σ dout·x̂, dβ = Σ dout over (n, hw). */
void groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout, const float *in,
                        const float *mean, const float *rstd, const float *gamma, int N, int C,
                        int HW, int G) {
    struct gn_bwd_args a = {din, dgamma, dbeta, dout, in, mean, rstd, gamma, N, C, HW, G};
    int big = (size_t)N * C * HW > PAR_MIN;
    if (dgamma || dbeta) core_pool_for(C, big, gn_param_items, &a);
    if (!din) return;
    core_pool_for((long)N * G, big, gn_bwd_items, &a);
}

/* ------------------------------------------------------------------ conv2d */

/* Valid output columns x for kernel column kj under zero padding p: 0 <= x + kj − p < W. */
static inline void col_range(int kj, int p, int W, int *x0, int *x1) {
    *x0 = imax(0, p - kj);
    *x1 = imin(W, W + p - kj);
    if (*x1 < *x0) *x1 = *x0;
}

/* dst[i] = src[i] rounded to bf16 (unet/bf16.h), vectorized. */
UNET_CLONES static void round_bf16(uint16_t *dst, const float *src, size_t n) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) dst[i] = bf16_from_float(src[i]);
}

/* The k·k im2col rows of channel c of one sample: col[(c·k + ki)·k + kj, y·W + x] =
 * in[c, y+ki−p, x+kj−p], zero outside the image. One body for both element types: T the
 * column's type, COPY(d, s, n) storing n input floats at d (float: a memcpy; bf16: rounded,
 * unet/bf16.h). A zero is 0 in both. */
#define COPY_F32(d, s, n) memcpy(d, s, (size_t)(n) * sizeof *(d))
#define COPY_BF16(d, s, n) round_bf16(d, s, (size_t)(n))
#define DEFINE_IM2COL_CHANNEL(NAME, T, COPY)                                                       \
    static void NAME(T *col, const float *in, int c, int H, int W, int k) {                        \
        int p = k / 2;                                                                             \
        size_t HW = (size_t)H * W;                                                                 \
        const float *src = in + (size_t)c * HW;                                                    \
        for (int ki = 0; ki < k; ki++)                                                             \
            for (int kj = 0; kj < k; kj++) {                                                       \
                T *row = col + ((size_t)c * k * k + (size_t)ki * k + kj) * HW;                     \
                int x0, x1;                                                                        \
                col_range(kj, p, W, &x0, &x1);                                                     \
                for (int y = 0; y < H; y++) {                                                      \
                    T *d = row + (size_t)y * W;                                                    \
                    int sy = y + ki - p;                                                           \
                    if (sy < 0 || sy >= H) {                                                       \
                        memset(d, 0, (size_t)W * sizeof *d);                                       \
                        continue;                                                                  \
                    }                                                                              \
                    for (int x = 0; x < x0; x++) d[x] = 0;                                         \
                    COPY(d + x0, src + (size_t)sy * W + x0 + kj - p, x1 - x0);                     \
                    for (int x = x1; x < W; x++) d[x] = 0;                                         \
                }                                                                                  \
            }                                                                                      \
    }
DEFINE_IM2COL_CHANNEL(im2col_channel, float, COPY_F32)
DEFINE_IM2COL_CHANNEL(im2col_channel_bf16, uint16_t, COPY_BF16)

/* Adjoint of im2col for channel c, accumulated: din[c, ·] += the scatter of its k·k rows, in a
 * fixed (ki, kj, y) order. Cloned, with `omp simd` on the row loop (din and col never overlap):
 * GCC's -O2 had left it scalar, 1.7 % of a training step (perf, session 14). */
UNET_CLONES static void col2im_channel(float *din, const float *col, int c, int H, int W, int k) {
    int p = k / 2, kk = k * k;
    size_t HW = (size_t)H * W;
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
                #pragma omp simd
                for (int x = x0; x < x1; x++) d[x + kj - p] += s[x];
            }
        }
}

/* Samples go through im2col and the GEMMs in groups, one im2col matrix ("slot") per sample of the
 * group, so that a group's (sample, tile) products fill all threads even when one sample has few
 * tiles (a 16x16 or 8x8 layer). The group is as large as the thread count; slot 0 is the caller's
 * col, the others a per-calling-thread buffer, grown on demand and kept for reuse (no allocation
 * once the largest layer has run). Which slot or group a sample lands in changes no bit: a tile's
 * product depends only on its shape and operands. */
#define MAX_SLOTS 64
CORE_THREAD_BUFFER(slot, float)

/* col NULL (a 1x1 layer's caller passes none, but its bf16 product needs a converted copy): every
 * slot comes from the buffer. Returns the group size, 0 when not even one slot can be had. */
static int conv_slots(float **slot, float *col, size_t colsize, int N) {
    /* Nested in a parallel loop, ours or OpenMP's, our loops run serially: one slot is enough. */
    int G = (omp_in_parallel() || core_pool_in_loop()) ? 1 : omp_get_max_threads();
    G = imax(1, imin(imin(G, N), MAX_SLOTS));
    int own = col ? 1 : 0;   /* slots the caller's col provides */
    if (G > own && !slot_grow((size_t)(G - own) * colsize)) {
        /* out of memory: fewer slots, one sample at a time at worst (same bits) */
        G = imin(G, own + (int)(slot_cap / colsize));
        if (G == 0) return 0;
    }
    if (own) slot[0] = col;
    for (int s = own; s < G; s++) slot[s] = slot_buf + (size_t)(s - own) * colsize;
    return G;
}

/* Items: (sample, channel) of im2col_group (reads x, the group's input) and of conv2d_backward's
 * col2im (adds into dx, the group's din); the group's samples lie `stride` samples apart. */
struct im2col_args {
    float **slot;
    float *dx;
    const float *x;
    int C, H, W, k, stride, bf16;
};

static void im2col_items(void *p, long i0, long i1) {
    const struct im2col_args *a = p;
    float **slot = a->slot;
    const float *x = a->x;
    int C = a->C, H = a->H, W = a->W, k = a->k;
    size_t HW = (size_t)H * W;
    for (int sc = (int)i0; sc < (int)i1; sc++) {
        const float *xs = x + (size_t)(sc / C) * a->stride * C * HW;
        if (a->bf16) im2col_channel_bf16((uint16_t *)slot[sc / C], xs, sc % C, H, W, k);
        else im2col_channel(slot[sc / C], xs, sc % C, H, W, k);
    }
}

/* im2col of samples x_0..x_{g-1} (stride·C·HW floats apart) into slots, one (sample, channel)
 * per item; bf16: the slots hold bf16 columns (half a float each). */
static void im2col_group(float **slot, const float *x, int g, int stride, int C, int H, int W,
                         int k, int bf16) {
    size_t HW = (size_t)H * W;
    struct im2col_args a = {slot, NULL, x, C, H, W, k, stride, bf16};
    core_pool_for((long)g * C, (size_t)g * C * k * k * HW > PAR_MIN, im2col_items, &a);
}

static void col2im_items(void *p, long i0, long i1) {
    const struct im2col_args *a = p;
    float **slot = a->slot, *dx = a->dx;
    int C = a->C, H = a->H, W = a->W, k = a->k;
    size_t HW = (size_t)H * W;
    for (int sc = (int)i0; sc < (int)i1; sc++)
        col2im_channel(dx + (size_t)(sc / C) * a->stride * C * HW, slot[sc / C], sc % C, H, W, k);
}

/* conv2d_forward's loops: items (sample, output channel) of the bias fill, (sample, tile) of the
 * product; out is y of the group's first sample while the products run, the group's samples
 * `stride` samples apart. */
struct conv_fwd_args {
    float *out, **slot;
    const float *w, *b;
    const uint16_t *wb;   /* bf16 products: the weights rounded (the slots then hold bf16) */
    size_t HW;
    int OC, K, tiles, stride;
    float beta;
};

static void bias_fill_items(void *p, long i0, long i1) {
    const struct conv_fwd_args *a = p;
    float *out = a->out;
    const float *b = a->b;
    size_t HW = a->HW;
    int OC = a->OC;
    for (int no = (int)i0; no < (int)i1; no++)
        for (size_t j = 0; j < HW; j++) out[(size_t)no * HW + j] = b[no % OC];
}

static void conv_fwd_items(void *p, long i0, long i1) {
    const struct conv_fwd_args *a = p;
    float *out = a->out, **slot = a->slot;
    const float *w = a->w;
    size_t HW = a->HW;
    int OC = a->OC, K = a->K, tiles = a->tiles;
    float beta = a->beta;
    for (int it = (int)i0; it < (int)i1; it++) {
        int s = it / tiles;
        float *y = out + (size_t)s * a->stride * OC * HW;
        if (a->wb)
            gemm_sbgemm_tile(it % tiles, OC, (int)HW, K, a->wb, K, (const uint16_t *)slot[s],
                             (int)HW, beta, y, (int)HW);
        else
            gemm_sgemm_tile(it % tiles, 0, 0, OC, (int)HW, K, 1.0f, w, K, slot[s], (int)HW, beta,
                            y, (int)HW);
    }
}

/* The weights rounded to bf16 once per call, like Winograd's filter transform (winograd.c says
 * why nothing is cached per model), into a per-calling-thread buffer kept for reuse. Items:
 * chunks of ROUND_CHUNK weights. */
CORE_THREAD_BUFFER(wbf, uint16_t)

struct round_args {
    uint16_t *dst;
    const float *src;
    size_t n;
};
#define ROUND_CHUNK 4096

static void round_items(void *p, long i0, long i1) {
    const struct round_args *a = p;
    size_t j0 = (size_t)i0 * ROUND_CHUNK, j1 = imin_size((size_t)i1 * ROUND_CHUNK, a->n);
    round_bf16(a->dst + j0, a->src + j0, j1 - j0);
}

static const uint16_t *weights_bf16(const float *w, size_t n) {
    uint16_t *wb = wbf_grow(n);
    if (!wb) return NULL;
    struct round_args a = {wb, w, n};
    core_pool_for((long)((n + ROUND_CHUNK - 1) / ROUND_CHUNK), n > PAR_MIN, round_items, &a);
    return wb;
}

/* Per sample: out_n[OC, HW] = W[OC, C·k·k] · col_n[C·k·k, HW] (+ b). The bias is written first
 * and the GEMM accumulates onto it (beta = 1). A 1x1 conv reads the input as [C, HW] directly
 * (in float; in bf16 through a rounded copy). */
void conv2d_forward(float *out, const float *in, const float *w, const float *b, int N, int C,
                    int H, int W, int OC, int k, float *col) {
    /* 3x3 layers take Winograd's F(4x4,3x3) unless the path says direct (unet/winograd.h). */
    int wino = k == 3 && conv_winograd_applies(C, H, W, OC);
    if (wino && winograd_conv3x3_forward(out, in, w, b, N, C, H, W, OC, col,
                                         col ? (size_t)9 * C * H * W : 0) == 0) {
        conv_note(k, C, H, W, OC, N, CONV_NOTE_WINOGRAD);
        return;
    }
    size_t HW = (size_t)H * W;
    int K = C * k * k;
    struct conv_fwd_args a = {.out = out, .w = w, .b = b, .HW = HW, .OC = OC, .K = K};
    /* bf16 products (unet/precision.h): the weights and each sample's columns rounded, a 1x1
     * layer's too (its columns are its input, converted), so a slot needs K·HW bf16s, half as
     * many floats. Out of memory: the float product, as below. */
    float *slot[MAX_SLOTS];
    int G = 0;
    if (conv_bf16_applies(k, C, H, W, OC)) {
        a.wb = weights_bf16(w, (size_t)OC * K);
        if (a.wb) G = conv_slots(slot, k == 1 ? NULL : col, ((size_t)K * HW + 1) / 2, N);
        if (!G) a.wb = NULL;
    }
    conv_note(k, C, H, W, OC, N, a.wb ? CONV_NOTE_BF16 : CONV_NOTE_DIRECT);
    if (b) core_pool_for((long)N * OC, (size_t)N * OC * HW > PAR_MIN, bias_fill_items, &a);
    float beta = b ? 1.0f : 0.0f;
    if (k == 1 && !a.wb) {
        gemm_sgemm_batch(0, 0, OC, (int)HW, K, 1.0f, w, K, 0, in, (int)HW, (size_t)C * HW, beta, out,
                         (int)HW, (size_t)OC * HW, N);
        return;
    }
    if (!a.wb) G = conv_slots(slot, col, (size_t)K * HW, N);
    int mt, nt, mc, nc;
    gemm_tiles(OC, (int)HW, K, &mt, &nt, &mc, &nc);
    a.slot = slot;
    a.tiles = mc * nc;
    a.beta = beta;
    /* Strided groups, as in unet/winograd.c's forward_pass: group j holds samples j, j + ng, ...,
     * so that the pool's home ranges keep each sample on one thread from layer to layer. */
    int ng = (N + G - 1) / G;
    a.stride = ng;
    for (int j = 0; j < ng; j++) {
        int g = (N - 1 - j) / ng + 1;
        im2col_group(slot, in + (size_t)j * C * HW, g, ng, C, H, W, k, a.wb != NULL);
        a.out = out + (size_t)j * OC * HW;
        core_pool_for((long)g * a.tiles,
                    g * a.tiles > 1 && 2.0 * g * OC * HW * K >= GEMM_PAR_FLOPS, conv_fwd_items,
                    &a);
    }
}

/* conv2d_backward's loops: items output channels of db, tiles of dW, (sample, tile) of dcol; dy
 * is dout of the group's first sample. */
struct conv_bwd_args {
    float *dw, *db, **slot;
    const float *dout, *dy, *w;
    size_t HW;
    int N, g, OC, K, tiles, wtiles;
};

static void conv_db_items(void *p, long o0, long o1) {
    const struct conv_bwd_args *a = p;
    float *db = a->db;
    const float *dout = a->dout;
    size_t HW = a->HW;
    int N = a->N, OC = a->OC;
    for (int o = (int)o0; o < (int)o1; o++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += sum_f(dout + ((size_t)n * OC + o) * HW, HW);
        db[o] += (float)s;
    }
}

static void conv_dw_items(void *p, long t0, long t1) {
    const struct conv_bwd_args *a = p;
    float *dw = a->dw, **slot = a->slot;
    const float *dy = a->dy;
    size_t HW = a->HW;
    int g = a->g, OC = a->OC, K = a->K;
    for (int t = (int)t0; t < (int)t1; t++)
        for (int s = 0; s < g; s++)
            gemm_sgemm_tile(t, 0, 1, OC, K, (int)HW, 1.0f, dy + (size_t)s * OC * HW, (int)HW,
                            slot[s], (int)HW, 1.0f, dw, K);
}

static void conv_dcol_items(void *p, long i0, long i1) {
    const struct conv_bwd_args *a = p;
    float **slot = a->slot;
    const float *dy = a->dy, *w = a->w;
    size_t HW = a->HW;
    int OC = a->OC, K = a->K, tiles = a->tiles;
    for (int it = (int)i0; it < (int)i1; it++) {
        int s = it / tiles;
        gemm_sgemm_tile(it % tiles, 1, 0, K, (int)HW, OC, 1.0f, w, K, dy + (size_t)s * OC * HW,
                        (int)HW, 0.0f, slot[s], (int)HW);
    }
}

/* db += Σ_{n,hw} dout (per channel, samples in order); dW += dout_n · col_n^T for n = 0..N-1 in
 * order, each a GEMM tiled over dW (threads split dW, never the samples, so every dW element
 * sums the samples in the same order); din_n += col2im(W^T · dout_n), the dcol product tiled per
 * sample and col2im run per input channel. */
void conv2d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                     const float *w, int N, int C, int H, int W, int OC, int k, float *col) {
    size_t HW = (size_t)H * W;
    int K = C * k * k;
    struct conv_bwd_args a = {.dw = dw, .db = db, .dout = dout, .w = w, .HW = HW, .N = N,
                              .OC = OC, .K = K};
    if (db) core_pool_for(OC, (size_t)N * OC * HW > PAR_MIN, conv_db_items, &a);
    if (k == 3 && conv_winograd_applies(C, H, W, OC) &&
        winograd_conv3x3_backward(din, dw, dout, in, w, N, C, H, W, OC, col,
                                  col ? (size_t)9 * C * H * W : 0) == 0)
        return;
    if (k == 1) {   /* col_n is x_n itself */
        if (dw)
            for (int n = 0; n < N; n++)
                gemm_sgemm(0, 1, OC, K, (int)HW, 1.0f, dout + (size_t)n * OC * HW, (int)HW,
                           in + (size_t)n * C * HW, (int)HW, 1.0f, dw, K);
        if (din)
            gemm_sgemm_batch(1, 0, C, (int)HW, OC, 1.0f, w, C, 0, dout, (int)HW, (size_t)OC * HW,
                             1.0f, din, (int)HW, (size_t)C * HW, N);
        return;
    }
    if (!dw && !din) return;
    float *slot[MAX_SLOTS];
    int G = conv_slots(slot, col, (size_t)K * HW, N);
    int mt, nt, mc, nc;
    gemm_tiles(K, (int)HW, OC, &mt, &nt, &mc, &nc);
    int tiles = mc * nc;                         /* of dcol [K, HW] */
    gemm_tiles(OC, K, (int)HW, &mt, &nt, &mc, &nc);
    int wtiles = mc * nc;                        /* of dW [OC, K] */
    a.slot = slot;
    a.tiles = tiles;
    a.wtiles = wtiles;
    struct im2col_args c2i = {slot, NULL, NULL, C, H, W, k, 1, 0};
    for (int n0 = 0; n0 < N; n0 += G) {
        int g = imin(G, N - n0);
        a.g = g;
        a.dy = dout + (size_t)n0 * OC * HW;
        if (dw) {   /* each dW tile adds the group's samples in order: gemm_sgemm per sample, bitwise */
            im2col_group(slot, in + (size_t)n0 * C * HW, g, 1, C, H, W, k, 0);
            core_pool_for(wtiles, wtiles > 1 && 2.0 * g * OC * HW * K >= GEMM_PAR_FLOPS,
                        conv_dw_items, &a);
        }
        if (!din) continue;
        /* dcol_n[C·k·k, HW] = W^T · dout_n into the slots (their im2col is no longer needed) */
        core_pool_for((long)g * tiles, g * tiles > 1 && 2.0 * g * OC * HW * K >= GEMM_PAR_FLOPS,
                    conv_dcol_items, &a);
        c2i.dx = din + (size_t)n0 * C * HW;
        core_pool_for((long)g * C, (size_t)g * K * HW > PAR_MIN, col2im_items, &c2i);
    }
}

/* ------------------------------------------------------------------ resampling */

/* Items: (sample, channel) planes. out: the output (forward) or din (backward); in: the input
 * (forward) or dout (backward). H, W: the full-resolution plane's size for avgpool2, the low one
 * for upsample2, as in the functions' arguments. */
struct resample_args {
    float *out;
    const float *in;
    int H, W;
};

static void avgpool2_fwd_items(void *p, long i0, long i1) {
    const struct resample_args *a = p;
    float *out = a->out;
    const float *in = a->in;
    int H = a->H, W = a->W, Ho = H / 2, Wo = W / 2;
    for (int nc = (int)i0; nc < (int)i1; nc++) {
        const float *x = in + (size_t)nc * H * W;
        float *y = out + (size_t)nc * Ho * Wo;
        for (int i = 0; i < Ho; i++) {
            const float *r0 = x + (size_t)(2 * i) * W, *r1 = r0 + W;
            for (int j = 0; j < Wo; j++)
                y[(size_t)i * Wo + j] = 0.25f * ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]));
        }
    }
}

/* EDM's down-resample with filter [1,1] is depthwise conv with outer([1,1],[1,1])/4, stride 2:
 * a 2x2 mean (docs/algorithms.md §M4.1). H, W are input sizes. */
void avgpool2_forward(float *out, const float *in, int N, int C, int H, int W) {
    struct resample_args a = {out, in, H, W};
    core_pool_for((long)N * C, (size_t)N * C * H * W > PAR_MIN, avgpool2_fwd_items, &a);
}

static void avgpool2_bwd_items(void *p, long i0, long i1) {
    const struct resample_args *a = p;
    float *din = a->out;
    const float *dout = a->in;
    int H = a->H, W = a->W, Ho = H / 2, Wo = W / 2;
    for (int nc = (int)i0; nc < (int)i1; nc++) {
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

void avgpool2_backward(float *din, const float *dout, int N, int C, int H, int W) {
    struct resample_args a = {din, dout, H, W};
    core_pool_for((long)N * C, (size_t)N * C * H * W > PAR_MIN, avgpool2_bwd_items, &a);
}

static void upsample2_fwd_items(void *p, long i0, long i1) {
    const struct resample_args *a = p;
    float *out = a->out;
    const float *in = a->in;
    int H = a->H, W = a->W, Wo = 2 * W;
    for (int nc = (int)i0; nc < (int)i1; nc++) {
        const float *x = in + (size_t)nc * H * W;
        float *y = out + (size_t)nc * 4 * H * W;
        for (int i = 0; i < H; i++) {
            float *r0 = y + (size_t)(2 * i) * Wo;
            for (int j = 0; j < W; j++) r0[2 * j] = r0[2 * j + 1] = x[(size_t)i * W + j];
            memcpy(r0 + Wo, r0, (size_t)Wo * sizeof *r0);
        }
    }
}

/* Up-resample with [1,1]: transposed depthwise conv with 4·outer/4, stride 2 = nearest x2. */
void upsample2_forward(float *out, const float *in, int N, int C, int H, int W) {
    struct resample_args a = {out, in, H, W};
    core_pool_for((long)N * C, (size_t)N * C * H * W * 4 > PAR_MIN, upsample2_fwd_items, &a);
}

static void upsample2_bwd_items(void *p, long i0, long i1) {
    const struct resample_args *a = p;
    float *din = a->out;
    const float *dout = a->in;
    int H = a->H, W = a->W, Wo = 2 * W;
    for (int nc = (int)i0; nc < (int)i1; nc++) {
        float *dx = din + (size_t)nc * H * W;
        const float *dy = dout + (size_t)nc * 4 * H * W;
        for (int i = 0; i < H; i++) {
            const float *r0 = dy + (size_t)(2 * i) * Wo, *r1 = r0 + Wo;
            for (int j = 0; j < W; j++)
                dx[(size_t)i * W + j] += (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
}

void upsample2_backward(float *din, const float *dout, int N, int C, int H, int W) {
    struct resample_args a = {din, dout, H, W};
    core_pool_for((long)N * C, (size_t)N * C * H * W * 4 > PAR_MIN, upsample2_bwd_items, &a);
}

/* ------------------------------------------------------------------ attention */

/* Item b = n·heads + h (sample n, head h) of qkv starts at b·3·Ch·L: rows c·3 + j (j = q, k, v)
 * of length L, so q, k and v are [Ch, L] matrices with row stride 3L at offsets 0, L and 2L
 * (docs/algorithms.md §M4.4). Its output rows start at b·Ch·L in out [N, C, L] (head-major channels).
 * Each item is cut into query tiles of at most ATT_QT positions (a fixed size, so the products'
 * shapes depend on (Ch, L) alone); a query tile's scores, softmax and output columns need no
 * other tile, so one pool loop over (item, query tile) does everything. */
#define ATT_QT 64

/* a = softmax(a) over one row of L scores: the maximum subtracted (exact: the maximum of floats
 * does not depend on the order it is taken in), exp_ieee, the sum in double over the explicit
 * lanes of the GroupNorm sums, then one float reciprocal: torch's fp32 softmax up to rounding.
 * Vectorised: libm's expf one score at a time with a sequential sum was 12.5 % of ADM
 * ImageNet-64's batch-1 profile (48 million scores an evaluation: 6 heads of 1024 x 1024 in seven
 * attention layers at 32x32), this 1.1 % (docs/benchmarks.md "Session 13"). The bits are the same
 * on every ISA's clone (exp_ieee, fixed lanes). */
UNET_CLONES static void softmax_row(float *a, int L) {
    float mx = a[0];
    #pragma omp simd reduction(max : mx)
    for (int l = 1; l < L; l++) mx = a[l] > mx ? a[l] : mx;
    #pragma omp simd
    for (int l = 0; l < L; l++) a[l] = exp_ieee(a[l] - mx);
    double s[LANES] = {0};
    int l = 0;
    for (; l + LANES <= L; l += LANES)
        for (int k = 0; k < LANES; k++) s[k] += a[l + k];
    for (int k = 0; l < L; l++, k++) s[k] += a[l];
    float inv = (float)(1.0 / lanes_total(s));
    #pragma omp simd
    for (int k = 0; k < L; k++) a[k] *= inv;
}

/* Items: (item, query tile). */
struct att_fwd_args {
    float *out, *att;
    const float *qkv;
    int L, Ch, qt;
    size_t LL, hs;
    float scale;
};

static void att_fwd_items(void *p, long t0, long t1) {
    const struct att_fwd_args *arg = p;
    float *out = arg->out, *att = arg->att;
    const float *qkv = arg->qkv;
    int L = arg->L, Ch = arg->Ch, qt = arg->qt;
    size_t LL = arg->LL, hs = arg->hs;
    float scale = arg->scale;
    for (int it = (int)t0; it < (int)t1; it++) {
        int b = it / qt, i0 = it % qt * ATT_QT, m = imin(ATT_QT, L - i0);
        const float *q = qkv + (size_t)b * hs;
        float *a = att + (size_t)b * LL + (size_t)i0 * L;
        gemm_sgemm_st(1, 0, m, L, Ch, scale, q + i0, 3 * L, q + L, 3 * L, 0.0f, a, L);
        for (int r = 0; r < m; r++) softmax_row(a + (size_t)r * L, L);
        gemm_sgemm_st(0, 1, Ch, m, L, 1.0f, q + 2 * (size_t)L, 3 * L, a, L, 0.0f,
                      out + (size_t)b * Ch * L + i0, L);
    }
}

/* S = s·q^T k into att (s = 1/sqrt(Ch)); row softmax in place (softmax_row); out = v · A^T. */
void attention_forward(float *out, float *att, const float *qkv, int N, int C, int L, int heads,
                       float *scratch) {
    int Ch = C / heads, items = N * heads, qt = (L + ATT_QT - 1) / ATT_QT;
    size_t LL = (size_t)L * L, hs = (size_t)3 * Ch * L;
    struct att_fwd_args a = {out, att, qkv, L, Ch, qt, LL, hs, (float)(1.0 / sqrt((double)Ch))};
    core_pool_for((long)items * qt, 4.0 * items * LL * Ch >= GEMM_PAR_FLOPS, att_fwd_items, &a);
}

/* Items: (item i0 + s of the group, query or key tile); item i0 + s's dS is scratch's block s. */
struct att_bwd_args {
    float *dqkv, *scratch;
    const float *qkv, *dout, *att;
    int L, Ch, qt, i0;
    size_t LL, hs, os;
    float scale;
};

/* dS of each query tile, then dq (per query row: a query tile's dq needs its dS rows alone). */
static void att_bwd_q_items(void *p, long t0, long t1) {
    const struct att_bwd_args *arg = p;
    float *dqkv = arg->dqkv, *scratch = arg->scratch;
    const float *qkv = arg->qkv, *dout = arg->dout, *att = arg->att;
    int L = arg->L, Ch = arg->Ch, qt = arg->qt, i0 = arg->i0;
    size_t LL = arg->LL, hs = arg->hs, os = arg->os;
    float scale = arg->scale;
    for (int it = (int)t0; it < (int)t1; it++) {
        int s = it / qt, b = i0 + s, r0 = it % qt * ATT_QT, m = imin(ATT_QT, L - r0);
        const float *q = qkv + (size_t)b * hs, *A = att + (size_t)b * LL + (size_t)r0 * L;
        float *dS = scratch + (size_t)s * LL + (size_t)r0 * L;
        gemm_sgemm_st(1, 0, m, L, Ch, 1.0f, dout + (size_t)b * os + r0, L, q + 2 * (size_t)L,
                      3 * L, 0.0f, dS, L);
        for (int r = 0; r < m; r++) {
            const float *ar = A + (size_t)r * L;
            float *dr = dS + (size_t)r * L;
            double sum = 0;
            for (int l = 0; l < L; l++) sum += (double)ar[l] * dr[l];
            float sf = (float)sum;
            for (int l = 0; l < L; l++) dr[l] = ar[l] * (dr[l] - sf);
        }
        gemm_sgemm_st(0, 1, Ch, m, L, scale, q + L, 3 * L, dS, L, 1.0f,
                      dqkv + (size_t)b * hs + r0, 3 * L);
    }
}

/* dk and dv per key tile (sums over every query: after the whole dS is known). */
static void att_bwd_kv_items(void *p, long t0, long t1) {
    const struct att_bwd_args *arg = p;
    float *dqkv = arg->dqkv, *scratch = arg->scratch;
    const float *qkv = arg->qkv, *dout = arg->dout, *att = arg->att;
    int L = arg->L, Ch = arg->Ch, qt = arg->qt, i0 = arg->i0;
    size_t LL = arg->LL, hs = arg->hs, os = arg->os;
    float scale = arg->scale;
    for (int it = (int)t0; it < (int)t1; it++) {
        int s = it / qt, b = i0 + s, j0 = it % qt * ATT_QT, m = imin(ATT_QT, L - j0);
        const float *q = qkv + (size_t)b * hs;
        float *dq = dqkv + (size_t)b * hs;
        gemm_sgemm_st(0, 0, Ch, m, L, scale, q, 3 * L, scratch + (size_t)s * LL + j0, L, 1.0f,
                      dq + L + j0, 3 * L);
        gemm_sgemm_st(0, 0, Ch, m, L, 1.0f, dout + (size_t)b * os, L, att + (size_t)b * LL + j0,
                      L, 1.0f, dq + 2 * (size_t)L + j0, 3 * L);
    }
}

/* With a = v·A^T, A = softmax(S), S = s·q^T k (s = 1/sqrt(Ch)), da = dout:
 * dA = da^T·v; dS = A ⊙ (dA − rowsum(A ⊙ dA)); dq += s·k·dS^T (per query row: query tiles);
 * dk += s·q·dS and dv += da·A (sums over queries: key tiles, after every dS row is known).
 * dS lives in the scratch, which holds three L x L blocks, so items go three at a time. */
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int N,
                        int C, int L, int heads, float *scratch) {
    if (!dqkv) return;
    int Ch = C / heads, items = N * heads, qt = (L + ATT_QT - 1) / ATT_QT;
    size_t LL = (size_t)L * L, hs = (size_t)3 * Ch * L, os = (size_t)Ch * L;
    struct att_bwd_args a = {dqkv, scratch, qkv, dout, att, L, Ch, qt, 0, LL, hs, os,
                             (float)(1.0 / sqrt((double)Ch))};
    for (int i0 = 0; i0 < items; i0 += 3) {
        int g = imin(3, items - i0), par = 4.0 * g * LL * Ch >= GEMM_PAR_FLOPS;
        a.i0 = i0;
        core_pool_for((long)g * qt, par, att_bwd_q_items, &a);
        core_pool_for((long)g * qt, par, att_bwd_kv_items, &a);
    }
}

/* ------------------------------------------------------------------ positional embedding */

/* freq_i = (1/10000)^(i / (Cn/2 − endpoint)) (docs/algorithms.md §M4.2). Phases and cos/sin are taken in
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

/* mask[i] = (u_i >= p) with u_i element i of rng_randu(seed, stream): the same Philox block
 * (i/4, stream) under key seed and the same (v + 0.5)/2^32 map as core/rng.c, computed here
 * RNG_LANES blocks at a time (rng_philox4x32_lanes, vectorised; the same bits as one block at a
 * time, dropout_forward_ref in layers_naive.c) so no n-float scratch is needed. P(keep) = 1 − p.
 * The map is compared through its threshold word (dropout_keep_threshold), the same answer for
 * every word: converting each word to double and back to float had made this loop 3 % of a
 * training step (perf, fashion32, session 14).
 * One group: the m <= 4·RNG_LANES elements whose words are r[0..m); keep_from <= 2^32 - 1 (the
 * caller handles "none kept"). */
static float word_uniform(uint64_t r) { return (float)(((double)r + 0.5) * (1.0 / 4294967296.0)); }

uint64_t dropout_keep_threshold(float p) {
    uint64_t lo = 0, hi = (uint64_t)1 << 32;   /* the answer lies in [lo, hi] */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (word_uniform(mid) >= p) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

UNET_CLONES static void dropout_group(float *out, uint8_t *mask, const float *in, const uint32_t *r,
                                      size_t m, uint32_t keep_from, float scale) {
    if (mask) {
        #pragma omp simd
        for (size_t k = 0; k < m; k++) mask[k] = r[k] >= keep_from;
    }
    #pragma omp simd
    for (size_t k = 0; k < m; k++) out[k] = r[k] >= keep_from ? in[k] * scale : 0.0f;
}

/* The kept elements' factor 1/(1 − p), rounded once from double: the one place it is computed,
 * so the forward, the backward and dropout_reapply scale by the same float. */
static float dropout_scale(float p) { return p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f; }

/* Items: groups of 4·RNG_LANES elements (r, the group's words, is the item's own). */
struct dropout_args {
    float *out;
    uint8_t *mask;
    const float *in;
    size_t n;
    uint64_t seed, stream;
    uint32_t keep_from;
    float scale;
};

static void dropout_fwd_items(void *p, long g0, long g1) {
    const struct dropout_args *a = p;
    const size_t per = 4 * RNG_LANES, n = a->n;
    for (size_t g = (size_t)g0; g < (size_t)g1; g++) {
        uint32_t r[4 * RNG_LANES];
        rng_philox4x32_lanes(r, g * RNG_LANES, a->seed, a->stream);
        size_t i = g * per;
        dropout_group(a->out + i, a->mask ? a->mask + i : NULL, a->in + i, r,
                      n - i < per ? n - i : per, a->keep_from, a->scale);
    }
}

void dropout_forward(float *out, uint8_t *mask, const float *in, size_t n, float p, uint64_t seed,
                     uint64_t stream) {
    if (p <= 0.0f) {
        if (out != in) memcpy(out, in, n * sizeof *out);
        if (mask) memset(mask, 1, n);
        return;
    }
    uint64_t keep_from = dropout_keep_threshold(p);
    if (keep_from > UINT32_MAX) {   /* no word is kept (p > the largest uniform, or NaN) */
        memset(out, 0, n * sizeof *out);
        if (mask) memset(mask, 0, n);
        return;
    }
    struct dropout_args a = {out, mask, in, n, seed, stream, (uint32_t)keep_from,
                             dropout_scale(p)};
    const size_t per = 4 * RNG_LANES, ngrp = (n + per - 1) / per;
    core_pool_for((long)ngrp, n > PAR_MIN, dropout_fwd_items, &a);
}

/* din += dout·scale where the mask kept the element, as a select so that it vectorises (din
 * unchanged elsewhere, bit for bit). */
UNET_CLONES static void dropout_bwd_chunk(float *din, const float *dout, const uint8_t *mask,
                                          size_t n, float scale) {
    for (size_t i = 0; i < n; i++) din[i] = mask[i] ? din[i] + dout[i] * scale : din[i];
}

UNET_CLONES static void reapply_chunk(float *out, const float *in, const uint8_t *mask, size_t n,
                                      float scale) {
    #pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = mask[i] ? in[i] * scale : 0.0f;
}

static void reapply_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    for (long c = c0; c < c1; c++) {
        size_t i = (size_t)c * CHUNK;
        reapply_chunk(a->out + i, a->in + i, a->mask + i, ew_len(a, i), a->scale);
    }
}

void dropout_reapply(float *out, const float *in, const uint8_t *mask, size_t n, float p) {
    if (p <= 0.0f) {
        if (out != in) memcpy(out, in, n * sizeof *out);
        return;
    }
    struct ew_args a = {.out = out, .in = in, .mask = mask, .n = n, .scale = dropout_scale(p)};
    ew_run(reapply_items, &a);
}

/* The two fusions a training step's backward uses (one pass instead of two or three, and no
 * zeroed temporary): the composed functions' bits, element by element. */
UNET_CLONES static void silu_reapply_chunk(float *out, const float *in, const uint8_t *mask,
                                           size_t n, float scale) {
    uint32_t keep[CHUNK];   /* the mask widened to the floats' width: GCC vectorises a select
                             * on uint8_t beside floats in neither clone */
    #pragma omp simd
    for (size_t i = 0; i < n; i++) keep[i] = mask[i];
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        float y = (x / (1.0f + exp_ieee(-x))) * scale;
        out[i] = keep[i] ? y : 0.0f;
    }
}

/* t = 0 + dout·scale where kept, else 0 (dropout_backward into a zeroed buffer); din += t·silu'. */
UNET_CLONES static void dropout_silu_bwd_chunk(float *din, const float *dout, const uint8_t *mask,
                                               const float *in, size_t n, float scale) {
    uint32_t keep[CHUNK];   /* as in silu_reapply_chunk */
    #pragma omp simd
    for (size_t i = 0; i < n; i++) keep[i] = mask[i];
    #pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float x = in[i], g = 0.0f + dout[i] * scale;
        float s = 1.0f / (1.0f + exp_ieee(-x));
        float t = keep[i] ? g : 0.0f;
        din[i] += t * (s * (1.0f + x * (1.0f - s)));
    }
}

static void silu_reapply_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    for (long c = c0; c < c1; c++) {
        size_t i = (size_t)c * CHUNK;
        silu_reapply_chunk(a->out + i, a->in + i, a->mask + i, ew_len(a, i), a->scale);
    }
}

static void dropout_silu_bwd_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    for (long c = c0; c < c1; c++) {
        size_t i = (size_t)c * CHUNK;
        dropout_silu_bwd_chunk(a->out + i, a->dout + i, a->mask + i, a->in + i, ew_len(a, i),
                               a->scale);
    }
}

void silu_dropout_reapply(float *out, const float *in, const uint8_t *mask, size_t n, float p) {
    if (p <= 0.0f) {
        silu_forward(out, in, n);
        return;
    }
    struct ew_args a = {.out = out, .in = in, .mask = mask, .n = n, .scale = dropout_scale(p)};
    ew_run(silu_reapply_items, &a);
}

void dropout_silu_backward(float *din, const float *dout, const uint8_t *mask, const float *in,
                           size_t n, float p) {
    if (p <= 0.0f) {
        silu_backward(din, dout, in, n);
        return;
    }
    struct ew_args a = {.out = din, .in = in, .dout = dout, .mask = mask, .n = n,
                        .scale = dropout_scale(p)};
    ew_run(dropout_silu_bwd_items, &a);
}

/* din += dout (p = 0: every element kept, scale 1), a chunk at a time like the others: one add
 * per element, so the chunking changes no bit. */
static void add_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    for (long c = c0; c < c1; c++) {
        size_t i = (size_t)c * CHUNK, m = ew_len(a, i);
        float *din = a->out + i;
        const float *dout = a->dout + i;
        #pragma omp simd
        for (size_t k = 0; k < m; k++) din[k] += dout[k];
    }
}

static void dropout_bwd_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    for (long c = c0; c < c1; c++) {
        size_t i = (size_t)c * CHUNK;
        dropout_bwd_chunk(a->out + i, a->dout + i, a->mask + i, ew_len(a, i), a->scale);
    }
}

void dropout_backward(float *din, const float *dout, const uint8_t *mask, size_t n, float p) {
    if (!din) return;
    struct ew_args a = {.out = din, .dout = dout, .mask = mask, .n = n};
    if (p <= 0.0f) {
        ew_run(add_items, &a);
        return;
    }
    a.scale = dropout_scale(p);
    ew_run(dropout_bwd_items, &a);
}
