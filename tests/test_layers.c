/* test_layers — every fast layer forward (unet/layers.c) against its double-precision naive twin
 * on random inputs, including awkward sizes (odd spatial sizes, C not a multiple of 32), the
 * general resampling factors, dropout's mask against rng_randu, and the batch/thread invariance
 * the samplers rely on: an image's conv2d output is bit-identical in a batch of 1 or 5 and with 1
 * or 2 threads, and conv2d backward's din, dW and db are bit-identical with 1 or 2 threads.
 *
 * Tolerances (tu_compare: |got − ref| / (|ref| + 1e-3·max|ref|)): elementwise kernels 1e-6 (one or
 * two float roundings); a float reduction over K terms leaves ~K·2^-24·max|ref| on outputs near
 * zero, so reductions get 1e-4 + 4e-7·K (GroupNorm also pays the float rounding of its mean, which
 * grows with the data's offset: 5e-5 + 2e-5·|offset|). An indexing bug gives errors of order 1.
 */
#include "unet/layers.h"
#include "unet/winograd.h"
#include "core/rng.h"
#include "pixdiff.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_ELEM 1e-6
static double tol_red(int K) { return 1e-4 + 4e-7 * K; }

static float *randf(size_t n, uint64_t seed, float scale) {
    float *x = malloc(n * sizeof *x);
    tu_fill(x, n, seed, scale);
    return x;
}

static double *to_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void test_linear(int N, int IN, int OUT, int bias) {
    float *x = randf((size_t)N * IN, 1, 1), *w = randf((size_t)OUT * IN, 2, 0.5f),
          *b = randf(OUT, 3, 0.5f), *y = malloc((size_t)N * OUT * sizeof *y);
    double *xd = to_d(x, (size_t)N * IN), *wd = to_d(w, (size_t)OUT * IN), *bd = to_d(b, OUT),
           *yd = malloc((size_t)N * OUT * sizeof *yd);
    linear_forward(y, x, w, bias ? b : NULL, N, IN, OUT);
    linear_forward_naive(yd, xd, wd, bias ? bd : NULL, N, IN, OUT);
    char name[96];
    snprintf(name, sizeof name, "linear N=%d IN=%d OUT=%d bias=%d", N, IN, OUT, bias);
    tu_compare(name, y, yd, (size_t)N * OUT, tol_red(IN));
    free(x); free(w); free(b); free(y); free(xd); free(wd); free(bd); free(yd);
}

/* The vectorised exp must give each element the same bits wherever it sits (vector body or
 * tail): silu of x[1..] equals silu of x shifted by one. */
static void test_silu_position(void) {
    size_t n = 1000;
    float *x = randf(n, 30, 100), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    silu_forward(a, x, n);
    silu_forward(b, x + 1, n - 1);
    tu_check(memcmp(a + 1, b, (n - 1) * sizeof *a) == 0,
             "silu: an element's value does not depend on its position in the array");
    free(x); free(a); free(b);
}

static void test_silu(size_t n, float scale) {
    float *x = randf(n, 4, scale), *y = malloc(n * sizeof *y);
    double *xd = to_d(x, n), *yd = malloc(n * sizeof *yd);
    silu_forward(y, x, n);
    silu_forward_naive(yd, xd, n);
    char name[96];
    snprintf(name, sizeof name, "silu n=%zu |x|<=%g", n, scale);
    tu_compare(name, y, yd, n, TOL_ELEM);
    free(x); free(y); free(xd); free(yd);
}

/* offset shifts the data's mean, which a one-pass variance would get wrong. */
static void test_groupnorm(int N, int C, int HW, float offset, int alias) {
    int G = groupnorm_groups(C);
    size_t n = (size_t)N * C * HW;
    float *x = randf(n, 5, 1), *ga = randf(C, 6, 1), *be = randf(C, 7, 1);
    for (size_t i = 0; i < n; i++) x[i] += offset;
    float *y = malloc(n * sizeof *y), *mean = malloc((size_t)N * G * sizeof *mean),
          *rstd = malloc((size_t)N * G * sizeof *rstd);
    double *xd = to_d(x, n), *gd = to_d(ga, C), *bd = to_d(be, C), *yd = malloc(n * sizeof *yd);
    groupnorm_forward_naive(yd, xd, gd, bd, N, C, HW, G, 1e-6);
    if (alias) {
        memcpy(y, x, n * sizeof *y);
        groupnorm_forward(y, mean, rstd, y, ga, be, N, C, HW, G, 1e-6f);
    } else {
        groupnorm_forward(y, mean, rstd, x, ga, be, N, C, HW, G, 1e-6f);
    }
    char name[96];
    snprintf(name, sizeof name, "groupnorm N=%d C=%d G=%d HW=%d off=%g%s", N, C, G, HW, offset,
             alias ? " in-place" : "");
    tu_compare(name, y, yd, n, 5e-5 + 2e-5 * fabs(offset));
    free(x); free(ga); free(be); free(y); free(mean); free(rstd); free(xd); free(gd); free(bd);
    free(yd);
}

static void test_conv(int N, int C, int H, int W, int OC, int k, int bias) {
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * OC * H * W, nw = (size_t)OC * C * k * k;
    float *x = randf(ni, 8, 1), *w = randf(nw, 9, 0.3f), *b = randf(OC, 10, 0.5f),
          *y = malloc(no * sizeof *y), *col = malloc((size_t)C * k * k * H * W * sizeof *col);
    double *xd = to_d(x, ni), *wd = to_d(w, nw), *bd = to_d(b, OC), *yd = malloc(no * sizeof *yd);
    conv2d_forward(y, x, w, bias ? b : NULL, N, C, H, W, OC, k, col);
    conv2d_forward_naive(yd, xd, wd, bias ? bd : NULL, N, C, H, W, OC, k);
    char name[96];
    snprintf(name, sizeof name, "conv2d N=%d C=%d %dx%d OC=%d k=%d bias=%d", N, C, H, W, OC, k, bias);
    tu_compare(name, y, yd, no, tol_red(C * k * k));
    free(x); free(w); free(b); free(y); free(col); free(xd); free(wd); free(bd); free(yd);
}

static void test_resample(int N, int C, int H, int W) {
    size_t n = (size_t)N * C * H * W;
    float *x = randf(n, 11, 1), *y = malloc(16 * n * sizeof *y);
    double *xd = to_d(x, n), *yd = malloc(16 * n * sizeof *yd);
    char name[96];

    avgpool2_forward(y, x, N, C, H, W);
    avgpool2_forward_naive(yd, xd, N, C, H, W);
    snprintf(name, sizeof name, "avgpool2 %dx%d", H, W);
    tu_compare(name, y, yd, n / 4, TOL_ELEM);
    upsample2_forward(y, x, N, C, H, W);
    upsample2_forward_naive(yd, xd, N, C, H, W);
    snprintf(name, sizeof name, "upsample2 %dx%d", H, W);
    tu_compare(name, y, yd, 4 * n, 0);
    free(x); free(y); free(xd); free(yd);
}

/* amp: the inputs' scale; 6 spreads a row's scores over about ±100, so that many of its exp terms
 * fall below exp_ieee's clamp at -87.3 (softmax_row in unet/layers.c). A score's float rounding
 * (about |score|·2⁻²⁴·√Ch) enters its exp as a relative error, so the tolerance grows with amp
 * (measured: 2.2e-4 at amp 1.5, 7.6e-4 at amp 6, where libm's expf gave the same 7.6e-4: the error
 * is the scores', not the exp's). */
static void test_attention(int N, int C, int L, int heads, float amp) {
    size_t nq = (size_t)N * 3 * C * L, no = (size_t)N * C * L;
    int Ch = C / heads;
    float *qkv = randf(nq, 12, amp), *y = malloc(no * sizeof *y),
          *att = malloc((size_t)N * heads * L * L * sizeof *att),
          *scr = malloc(((size_t)3 * L * L + (size_t)3 * Ch * L) * sizeof *scr);
    double *qd = to_d(qkv, nq), *yd = malloc(no * sizeof *yd);
    attention_forward(y, att, qkv, N, C, L, heads, scr);
    attention_forward_naive(yd, qd, N, C, L, heads);
    char name[96];
    snprintf(name, sizeof name, "attention N=%d C=%d L=%d heads=%d amp=%g", N, C, L, heads, amp);
    double grow = amp > 1.5f ? amp / 1.5 : 1.0;
    tu_compare(name, y, yd, no, tol_red(L > Ch ? L : Ch) * grow);
    /* The kept probabilities are a softmax: rows sum to 1. */
    double worst = 0;
    for (size_t r = 0; r < (size_t)N * heads * L; r++) {
        double s = 0;
        for (int l = 0; l < L; l++) s += att[r * L + l];
        worst = fmax(worst, fabs(s - 1));
    }
    tu_check(worst < 1e-5, "attention rows of att sum to 1: max |sum-1| %.2e", worst);
    free(qkv); free(y); free(att); free(scr); free(qd); free(yd);
}

static void test_posemb(int N, int Cn, int endpoint, int flip, float cscale) {
    float *c = randf(N, 13, cscale), *y = malloc((size_t)N * Cn * sizeof *y);
    double *cd = to_d(c, N), *yd = malloc((size_t)N * Cn * sizeof *yd);
    posemb_forward(y, c, N, Cn, endpoint, flip);
    posemb_forward_naive(yd, cd, N, Cn, endpoint, flip);
    char name[96];
    snprintf(name, sizeof name, "posemb Cn=%d endpoint=%d flip=%d |c|<=%g", Cn, endpoint, flip, cscale);
    tu_compare(name, y, yd, (size_t)N * Cn, TOL_ELEM);
    free(c); free(y); free(cd); free(yd);
}

/* Known values: SongUNet flavour puts sin first; freq_0 = 1 and the last frequency is 1e-4 exactly
 * with endpoint, (1e-4)^((half-1)/half) without. */
static void test_posemb_values(void) {
    float c = 0.75f, y[16];
    posemb_forward(y, &c, 1, 16, 1, 1);
    int ok = fabs(y[0] - sin(0.75)) < 1e-7 && fabs(y[8] - cos(0.75)) < 1e-7 &&
             fabs(y[7] - sin(0.75e-4)) < 1e-7 && fabs(y[15] - cos(0.75e-4)) < 1e-7;
    tu_check(ok, "posemb SongUNet flavour: [sin|cos], freqs 1 .. 1e-4");
    posemb_forward(y, &c, 1, 16, 0, 0);
    double fl = pow(1e-4, 7.0 / 8.0);
    ok = fabs(y[0] - cos(0.75)) < 1e-7 && fabs(y[8] - sin(0.75)) < 1e-7 &&
         fabs(y[7] - cos(0.75 * fl)) < 1e-7 && fabs(y[15] - sin(0.75 * fl)) < 1e-7;
    tu_check(ok, "posemb Dhariwal flavour: [cos|sin], last freq 1e-4^(7/8)");
}

/* Dropout against its definition through rng_randu (one scalar Philox block per 4 elements; the
 * kernel draws RNG_LANES blocks at a time): masks and outputs bit for bit for lengths around the
 * group size, in place and without a mask; the backward pass against the scalar loop. */
static void test_dropout(void) {
    size_t n = 100003;
    float p = 0.3f;
    float *x = randf(n, 14, 1), *y = malloc(n * sizeof *y), *u = malloc(n * sizeof *u),
          *z = malloc(n * sizeof *z), *d = malloc(n * sizeof *d), *dw = malloc(n * sizeof *dw);
    uint8_t *mask = malloc(n);
    size_t lens[] = {1, 3, 4, 63, 64, 65, 129, 100003}, bad = 0, kept = 0;
    uint64_t seed = 0x9E3779B97F4A7C15ull, stream = 0x00000F0000000005ull;
    for (int t = 0; t < 8; t++) {
        size_t m = lens[t];
        dropout_forward(y, mask, x, m, p, seed, stream);
        rng_randu(u, m, seed, stream);
        memcpy(z, x, m * sizeof *z);
        dropout_forward(z, NULL, z, m, p, seed, stream);   /* in place, no mask */
        for (size_t i = 0; i < m; i++) {
            int keep = u[i] >= p;
            float want = keep ? x[i] * (float)(1.0 / (1.0 - p)) : 0.0f;
            if (mask[i] != keep || y[i] != want || z[i] != want) bad++;
            if (t == 7) kept += mask[i];
        }
    }
    tu_check(bad == 0, "dropout mask = (rng_randu >= p) and out = in*mask/(1-p), 8 lengths 1..100003, "
             "in place too: %zu mismatches", bad);
    double frac = (double)kept / n;
    tu_check(fabs(frac - (1 - p)) < 0.01, "dropout keep fraction %.4f (want %.2f)", frac, 1 - p);
    for (size_t i = 0; i < n; i++) d[i] = dw[i] = x[(i * 7) % n] - 0.25f;
    dropout_backward(d, y, mask, n, p);
    bad = 0;
    for (size_t i = 0; i < n; i++) {
        float want = dw[i];
        if (mask[i]) want += y[i] * (float)(1.0 / (1.0 - p));
        bad += memcmp(&d[i], &want, sizeof want) != 0;
    }
    tu_check(bad == 0, "dropout backward: din += dout/(1-p) where kept, untouched elsewhere: %zu "
             "mismatches", bad);
    dropout_forward(y, mask, x, n, 0.0f, 77, 5);
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += y[i] != x[i] || mask[i] != 1;
    tu_check(bad == 0, "dropout p=0 copies and keeps all: %zu mismatches", bad);
    /* other rates, down to the edges of the uniform's range, and NaN, against rng_randu */
    float ps[] = {0.1f, 1.0f / 3, 0.5f, 0.9f, 1e-9f, 0.99999994f, 1.0f, 1.5f, NAN};
    bad = 0;
    rng_randu(u, n, seed, stream);
    for (int t = 0; t < 9; t++) {
        dropout_forward(y, mask, x, n, ps[t], seed, stream);
        float scale = ps[t] < 1.0f ? (float)(1.0 / (1.0 - ps[t])) : 0.0f;
        for (size_t i = 0; i < n; i++) {
            int keep = u[i] >= ps[t];
            float want = keep ? x[i] * scale : 0.0f;
            bad += mask[i] != keep || memcmp(&y[i], &want, sizeof want) != 0;
        }
    }
    tu_check(bad == 0, "dropout at p = 0.1, 1/3, 0.5, 0.9, 1e-9, 1 - 2^-24, 1, 1.5, NaN: masks and "
             "outputs = rng_randu's, %zu mismatches", bad);
    /* the backward's recomputation from the mask gives the forward's output bit for bit */
    bad = 0;
    float pr[] = {0.1f, 0.13f, 0.3f, 1.0f / 3, 0.77f, 0.0f};
    for (int t = 0; t < 6; t++) {
        dropout_forward(y, mask, x, n, pr[t], seed, stream);
        dropout_reapply(z, x, mask, n, pr[t]);
        bad += memcmp(y, z, n * sizeof *y) != 0;
    }
    tu_check(bad == 0, "dropout_reapply = dropout_forward's output at 6 rates: %zu differ", bad);
    /* the backward's fusions give the composed calls' bits, lengths with and without a tail */
    float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g), *ref = malloc(n * sizeof *ref);
    size_t badf = 0, badb = 0, fl[] = {n, 4097, 5};
    for (int t = 0; t < 6; t++)
        for (int k = 0; k < 3; k++) {
            size_t m = fl[k];
            dropout_forward(y, mask, x, m, pr[t], seed, stream);
            silu_forward(u, x, m);
            dropout_reapply(z, u, mask, m, pr[t]);
            silu_dropout_reapply(w, x, mask, m, pr[t]);
            badf += memcmp(z, w, m * sizeof *z) != 0;
            for (size_t i = 0; i < m; i++) g[i] = x[(i * 5 + 3) % n] * (i % 7 == 0 ? -0.0f : 1.5f);
            memset(d, 0, m * sizeof *d);
            dropout_backward(d, g, mask, m, pr[t]);
            memset(ref, 0, m * sizeof *ref);
            silu_backward(ref, d, x, m);
            memset(dw, 0, m * sizeof *dw);
            dropout_silu_backward(dw, g, mask, x, m, pr[t]);
            badb += memcmp(ref, dw, m * sizeof *ref) != 0;
        }
    tu_check(badf == 0 && badb == 0, "silu_dropout_reapply = silu then dropout_reapply (%zu differ), "
             "dropout_silu_backward = dropout_backward then silu_backward (%zu differ), 6 rates",
             badf, badb);
    free(w); free(g); free(ref);
    /* the threshold word is exact: every word within 2^12 of it on either side falls on its side
     * (an off-by-one, or a threshold a few words off, fails here and nowhere else) */
    bad = 0;
    for (int t = 0; t < 9; t++) {
        uint64_t th = dropout_keep_threshold(ps[t]);
        for (int64_t d = -4096; d <= 4096; d++) {
            int64_t r = (int64_t)th + d;
            if (r < 0 || r > (int64_t)UINT32_MAX) continue;
            float uni = (float)(((double)r + 0.5) * (1.0 / 4294967296.0));
            bad += (uni >= ps[t]) != (r >= (int64_t)th);
        }
    }
    tu_check(bad == 0, "dropout_keep_threshold: words on either side of it keep/drop as their "
             "uniform says, %zu mismatches", bad);
    free(x); free(y); free(u); free(z); free(d); free(dw); free(mask);
}

/* Sample 0 of a batch of 5 and alone, with 1 and 2 threads: all four must agree bit for bit. */
static void test_conv_invariance(int C, int H, int W, int OC, int k) {
    int N = 5;
    size_t ni = (size_t)C * H * W, no = (size_t)OC * H * W;
    float *x = randf(N * ni, 15, 1), *w = randf((size_t)OC * C * k * k, 16, 0.2f),
          *b = randf(OC, 17, 0.1f), *col = malloc((size_t)C * k * k * H * W * sizeof *col);
    float *y[4];
    for (int t = 0; t < 4; t++) y[t] = malloc(N * no * sizeof **y);
    int saved = pd_get_threads();
    for (int t = 0; t < 4; t++) {
        pd_set_threads(t / 2 ? 2 : 1);
        conv2d_forward(y[t], x, w, b, t % 2 ? N : 1, C, H, W, OC, k, col);
    }
    pd_set_threads(saved);
    int same = 1;
    for (int t = 1; t < 4; t++) same &= memcmp(y[0], y[t], no * sizeof **y) == 0;
    tu_check(same, "conv2d C=%d %dx%d OC=%d k=%d: sample 0 bit-identical in batch 1/5, threads 1/2",
             C, H, W, OC, k);
    for (int t = 0; t < 4; t++) free(y[t]);
    free(x); free(w); free(b); free(col);
}

/* The same property for the other per-sample kernels, batch 1 vs 4 with 2 threads. */
static void test_other_invariance(void) {
    int N = 4, C = 64, HW = 256, L = 256, IN = 128, OUT = 512, G = groupnorm_groups(C);
    size_t n = (size_t)N * 3 * C * HW;
    float *x = randf(n, 18, 1), *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    float *p = randf((size_t)OUT * IN, 19, 0.1f), *st = malloc(2 * N * G * sizeof *st);
    float *att = malloc((size_t)N * L * L * sizeof *att),
          *scr = malloc(((size_t)3 * L * L + (size_t)3 * C * L) * sizeof *scr);
    groupnorm_forward(a, st, st + N * G, x, p, p + C, N, C, HW, G, 1e-6f);
    groupnorm_forward(b, st, st + N * G, x, p, p + C, 1, C, HW, G, 1e-6f);
    tu_check(memcmp(a, b, (size_t)C * HW * sizeof *a) == 0, "groupnorm sample 0 bit-identical in batch 1/4");
    linear_forward(a, x, p, p, N, IN, OUT);
    linear_forward(b, x, p, p, 1, IN, OUT);
    tu_check(memcmp(a, b, (size_t)OUT * sizeof *a) == 0, "linear sample 0 bit-identical in batch 1/4");
    attention_forward(a, att, x, N, C, L, 1, scr);
    attention_forward(b, att, x, 1, C, L, 1, scr);
    tu_check(memcmp(a, b, (size_t)C * L * sizeof *a) == 0, "attention sample 0 bit-identical in batch 1/4");
    /* conv2d input gradient: batch 1 vs 4, and 1 vs 2 threads */
    int Cc = 32, Hc = 16, OCc = 48;
    size_t nxc = (size_t)Cc * Hc * Hc;   /* dout reads x as [N, OCc, Hc, Hc]: 48·256 < 3·64·256 per sample */
    float *wc = randf((size_t)OCc * Cc * 9, 20, 0.1f), *col = malloc(nxc * 9 * sizeof *col);
    float *d1 = calloc(N * nxc, sizeof *d1), *d4 = calloc(N * nxc, sizeof *d4);
    int saved = pd_get_threads();
    pd_set_threads(1);
    conv2d_backward(d1, NULL, NULL, x, x, wc, 1, Cc, Hc, Hc, OCc, 3, col);
    pd_set_threads(2);
    conv2d_backward(d4, NULL, NULL, x, x, wc, N, Cc, Hc, Hc, OCc, 3, col);
    pd_set_threads(saved);
    tu_check(memcmp(d1, d4, nxc * sizeof *d1) == 0,
             "conv2d backward din sample 0 bit-identical in batch 1/4, threads 1/2");
    free(x); free(a); free(b); free(p); free(st); free(att); free(scr); free(wc); free(col);
    free(d1); free(d4);
}

/* conv2d backward's parameter gradients sum the samples in a fixed order: dW, db and din are
 * bit-identical with 1 thread (samples one at a time) and 2 (in groups of two). */
static void test_conv_backward_threads(int N, int C, int H, int OC, int k) {
    size_t nx = (size_t)N * C * H * H, no = (size_t)N * OC * H * H, nw = (size_t)OC * C * k * k;
    float *x = randf(nx, 21, 1), *g = randf(no, 22, 1), *w = randf(nw, 23, 0.2f),
          *col = malloc((size_t)C * k * k * H * H * sizeof *col);
    float *dx[2], *dw[2], *db[2];
    int saved = pd_get_threads();
    for (int t = 0; t < 2; t++) {
        dx[t] = calloc(nx, sizeof *dx[t]);
        dw[t] = calloc(nw, sizeof *dw[t]);
        db[t] = calloc(OC, sizeof *db[t]);
        pd_set_threads(t + 1);
        conv2d_backward(dx[t], dw[t], db[t], g, x, w, N, C, H, H, OC, k, col);
    }
    pd_set_threads(saved);
    int sx = !memcmp(dx[0], dx[1], nx * 4), sw = !memcmp(dw[0], dw[1], nw * 4),
        sb = !memcmp(db[0], db[1], OC * 4);
    tu_check(sx && sw && sb, "conv2d backward N=%d C=%d %dx%d OC=%d k=%d, 1 vs 2 threads bitwise: "
             "din %s, dW %s, db %s", N, C, H, H, OC, k, sx ? "yes" : "NO", sw ? "yes" : "NO",
             sb ? "yes" : "NO");
    for (int t = 0; t < 2; t++) { free(dx[t]); free(dw[t]); free(db[t]); }
    free(x); free(g); free(w); free(col);
}

int main(void) {
    test_linear(3, 37, 19, 1);
    test_linear(5, 128, 512, 0);
    test_silu(1000, 8);
    test_silu(200001, 8);
    test_silu(5000, 120);   /* past exp's clamps at ±87 */
    test_silu_position();
    test_groupnorm(2, 8, 35, 0, 0);
    test_groupnorm(2, 96, 20, 0, 0);
    test_groupnorm(3, 64, 64, 10, 0);
    test_groupnorm(2, 128, 256, 0, 1);
    tu_check(groupnorm_groups(8) == 2 && groupnorm_groups(96) == 24 && groupnorm_groups(64) == 16 &&
                 groupnorm_groups(256) == 32 && groupnorm_groups(2) == 1,
             "groupnorm_groups = min(32, C/4): 8->%d 96->%d 64->%d 256->%d 2->%d", groupnorm_groups(8),
             groupnorm_groups(96), groupnorm_groups(64), groupnorm_groups(256), groupnorm_groups(2));
    /* The direct (im2col) kernel at these tolerances; the 3x3 Winograd path has its own
     * reference test with the tolerances its transforms call for (test_winograd.c). */
    conv_set_path(CONV_DIRECT);
    test_conv(2, 3, 5, 7, 4, 1, 1);
    test_conv(2, 3, 5, 7, 4, 3, 1);
    test_conv(1, 5, 7, 5, 3, 3, 0);
    test_conv(2, 32, 16, 16, 24, 3, 1);
    test_conv(1, 4, 1, 1, 6, 3, 1);
    test_conv(1, 2, 6, 4, 3, 5, 1);
    /* several GEMM tiles per sample (unet/gemm.h: 64-row x 256-column tiles) and edge tiles */
    test_conv(2, 16, 8, 8, 8, 3, 1);
    test_conv(2, 8, 16, 16, 12, 3, 1);
    test_conv(1, 6, 9, 20, 5, 3, 0);
    test_conv(3, 8, 24, 20, 200, 3, 1);
    test_conv(2, 40, 20, 20, 136, 1, 1);
    test_resample(2, 3, 12, 24);
    test_attention(2, 16, 16, 1, 1.5f);
    test_attention(2, 16, 16, 2, 1.5f);
    test_attention(2, 32, 64, 1, 1.5f);
    test_attention(1, 32, 64, 2, 1.5f);
    test_attention(2, 16, 100, 2, 1.5f);   /* two query tiles (64 + 36) */
    test_attention(1, 16, 1027, 2, 1.5f);  /* ADM's row length, and a lane tail of 3 */
    test_attention(1, 16, 1027, 2, 6.0f);
    test_posemb(5, 16, 1, 1, 2);
    test_posemb(5, 128, 1, 1, 2);
    test_posemb(5, 16, 0, 0, 2);
    test_posemb(5, 128, 0, 0, 1000);
    test_posemb_values();
    test_dropout();
    for (int path = 0; path < CONV_PATH_COUNT; path++) {   /* both 3x3 paths */
        conv_set_path((conv_path)path);
        printf("-- conv path %s\n", conv_path_names[path]);
        test_conv_invariance(8, 5, 7, 6, 3);
        test_conv_invariance(64, 32, 32, 64, 3);
        test_conv_backward_threads(3, 32, 16, 48, 3);
        test_conv_backward_threads(3, 64, 32, 64, 3);
    }
    test_conv_invariance(128, 16, 16, 128, 1);
    test_other_invariance();
    test_conv_backward_threads(3, 96, 8, 80, 1);
    return tu_finish();
}
