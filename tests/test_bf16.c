/* test_bf16 — the bf16 products of --precision bf16 (unet/bf16.h, gemm_sbgemm_tile, conv2d_forward
 * with the precision at bf16; docs/benchmarks.md "bf16").
 *
 * (1) bf16_from_float against a naive twin that picks, in double, the nearer of the two bf16
 * values around x (ties to the even one), on chosen edge cases and a million random bit patterns;
 * NaNs stay NaNs, infinities and signed zeros stay themselves.
 * (2) conv2d_forward in bf16 against conv2d_forward_naive (double) run on the operands rounded to
 * bf16: the products must use rounded inputs AND rounded weights (the references that round only
 * one of them must be clearly off, so the test fails if either rounding is skipped) and nothing
 * else may lose more than float sums do. 3x3 layers on the direct path (8x8, odd sizes, several row
 * tiles, and 32x32 with --conv direct: several column tiles), 1x1 layers (no col buffer), with and
 * without bias.
 * (3) Bits: a sample's output is the same alone or in a batch of 3, on 1 or 2 threads, with or
 * without the caller's col buffer. Winograd layers keep float products: bit-identical to fp32.
 * (4) pd_conv_stats_begin/end record the bf16 path; pd_set_precision refuses unknown names, and
 * bf16 when the loaded OpenBLAS has no cblas_sbgemm.
 * (5) Where it applies: outside a bf16 scope a layer keeps float bits; a whole network in bf16
 * rounds on a run that keeps no activations (an evaluation) and not on one that keeps them (a
 * training pass), whose output stays bit-identical to fp32's; the evaluation moves by bf16's
 * rounding only (normwise 1e-4 to 2e-2 of the fp32 output) and is the same alone and in a batch.
 *
 * Which sbgemm: Debian 12's OpenBLAS has none, so (2)-(3) run through a naive twin set with
 * gemm_set_sbgemm (bf16 operands, double sums), which checks everything of ours: rounding,
 * layouts, tiles, slots. When the loaded OpenBLAS exports cblas_sbgemm (one built with
 * BUILD_BFLOAT16, e.g. LD_LIBRARY_PATH to it), they run a second time through it.
 *
 * Tolerance: against the rounded-operand reference, tu_compare's relative error (floor
 * 1e-3·max|ref|) within 1e-4 + 4e-7·K as test_gemm (float sums of K terms); the twin's double sums
 * are far inside it. The one-operand-rounded references are off by ~2^-9 relative per operand;
 * required: a normwise error above 1e-4.
 */
#include "pixdiff.h"
#include "testutil.h"
#include "unet/bf16.h"
#include "unet/gemm.h"
#include "unet/layers.h"
#include "unet/precision.h"
#include "unet/songunet.h"
#include "unet/winograd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ (1) rounding */

static uint32_t bits_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* The twin: lo = x truncated to bf16, hi = the next bf16 away from zero (as a double, so that
 * the largest finite bf16's successor is +-inf's value 2^128 exactly); the nearer, ties to even. */
static uint16_t bf16_naive(float x) {
    if (isnan(x)) return 0x7fc0;   /* compared as "a NaN", below */
    uint32_t u = bits_of(x);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    if ((u & 0xffffu) == 0) return lo;
    double dlo = fabs((double)float_of((uint32_t)lo << 16));
    double dhi = (hi & 0x7fffu) == 0x7f80u ? ldexp(1.0, 128)
                                           : fabs((double)float_of((uint32_t)hi << 16));
    double ax = fabs((double)x);
    if (ax - dlo < dhi - ax) return lo;
    if (ax - dlo > dhi - ax) return hi;
    return (lo & 1u) ? hi : lo;
}

static void check_rounding(void) {
    const uint32_t edge[] = {0x3f800000u, 0x3f808000u, 0x3f818000u, 0x3f808001u, 0x3f807fffu,
                             0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7f7fffffu,
                             0xff7fffffu, 0x7f7f7fffu, 0x00000001u, 0x00008000u, 0x00018000u,
                             0x807fffffu, 0x3effffffu};
    int bad = 0;
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        float x = float_of(edge[i]);
        uint16_t got = bf16_from_float(x), want = bf16_naive(x);
        if (got != want) {
            if (bad < 5) printf("  bf16(0x%08x) = 0x%04x, expected 0x%04x\n", edge[i], got, want);
            bad++;
        }
    }
    tu_check(bad == 0, "bf16 rounding: %d edge cases wrong", bad);
    tu_check(bf16_from_float(1.0f) == 0x3f80 && bf16_from_float(float_of(0x3f808000u)) == 0x3f80 &&
                 bf16_from_float(float_of(0x3f818000u)) == 0x3f82 &&
                 bf16_from_float(float_of(0x7f7fffffu)) == 0x7f80,
             "bf16 rounding: 1, the two ties, overflow to inf");
    const uint32_t nans[] = {0x7f800001u, 0xff800001u, 0x7fc00000u, 0x7fffffffu, 0x7f80ffffu};
    int nan_bad = 0;
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++)
        nan_bad += !isnan(bf16_to_float(bf16_from_float(float_of(nans[i]))));
    tu_check(nan_bad == 0, "bf16 rounding: NaNs stay NaN (%d did not)", nan_bad);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int rbad = 0;
    for (int i = 0; i < 1000000; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        float x = float_of((uint32_t)(s >> 11));
        if (isnan(x)) continue;
        rbad += bf16_from_float(x) != bf16_naive(x);
    }
    tu_check(rbad == 0, "bf16 rounding: %d of 1e6 random floats differ from the naive twin", rbad);
}

/* ------------------------------------------------------------------ the sbgemm twin */

static int twin_calls;

/* CBLAS row-major (101), no transposes (111): C = alpha·A·B + beta·C, double sums. */
static void sbgemm_twin(int order, int transA, int transB, int M, int N, int K, float alpha,
                        const uint16_t *A, int lda, const uint16_t *B, int ldb, float beta,
                        float *C, int ldc) {
    if (order != 101 || transA != 111 || transB != 111) {
        printf("  sbgemm twin: unexpected order %d / transposes %d %d\n", order, transA, transB);
        abort();
    }
    __atomic_add_fetch(&twin_calls, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++)
                acc += (double)bf16_to_float(A[(size_t)i * lda + k]) *
                       bf16_to_float(B[(size_t)k * ldb + j]);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta != 0 ? (double)beta * *c : 0.0));
        }
}

/* ------------------------------------------------------------------ (2)-(3) the layers */

static double *rounded_d(const float *x, size_t n, int round) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = round ? bf16_to_float(bf16_from_float(x[i])) : x[i];
    return d;
}

static double normwise(const float *got, const double *ref, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - ref[i]));
        m = fmax(m, fabs(ref[i]));
    }
    return e / m;
}

static void conv_case(const char *sbg, int N, int C, int H, int W, int OC, int k, int bias,
                      int direct) {
    size_t HW = (size_t)H * W, ni = (size_t)N * C * HW, no = (size_t)N * OC * HW,
           nw = (size_t)OC * C * k * k, ncol = (size_t)C * k * k * HW;
    float *x = tu_randf(ni, 11, 1.0f), *w = tu_randf(nw, 12, 0.2f);
    float *b = bias ? tu_randf((size_t)OC, 13, 0.5f) : NULL;
    float *y = malloc(no * sizeof *y), *y1 = malloc(no * sizeof *y1), *y2 = malloc(no * sizeof *y2);
    float *col = malloc(ncol * sizeof *col);
    double *bd = bias ? rounded_d(b, (size_t)OC, 0) : NULL;
    double *ref = malloc(no * sizeof *ref), *ref_x = malloc(no * sizeof *ref),
           *ref_w = malloc(no * sizeof *ref);
    char name[160];
    snprintf(name, sizeof name, "%s: %dx%d conv, N=%d C=%d OC=%d %dx%d%s%s", sbg, k, k, N, C, OC,
             H, W, bias ? ", bias" : "", direct ? ", --conv direct" : "");
    conv_set_path(direct ? CONV_DIRECT : CONV_AUTO);
    int K = C * k * k;
    tu_check(k == 1 || !conv_winograd_applies(C, H, W, OC), "%s takes the direct path", name);

    /* (2) against the rounded-operand reference, and not against the half-rounded ones */
    double *xr = rounded_d(x, ni, 1), *wr = rounded_d(w, nw, 1), *xf = rounded_d(x, ni, 0),
           *wf = rounded_d(w, nw, 0);
    conv2d_forward_naive(ref, xr, wr, bd, N, C, H, W, OC, k);
    conv2d_forward_naive(ref_x, xr, wf, bd, N, C, H, W, OC, k);
    conv2d_forward_naive(ref_w, xf, wr, bd, N, C, H, W, OC, k);
    pd_set_threads(2);
    conv2d_forward(y, x, w, b, N, C, H, W, OC, k, k == 1 ? NULL : col);
    tu_compare(name, y, ref, no, 1e-4 + 4e-7 * K);
    double ex = normwise(y, ref_x, no), ew = normwise(y, ref_w, no);
    tu_check(ex > 1e-4 && ew > 1e-4,
             "%s: the weights and the inputs are both rounded (off from the float-weight "
             "reference by %.1e, from the float-input one by %.1e)", name, ex, ew);

    /* (3) bits: each sample alone, 1 thread, col or none */
    int same = 1;
    for (int n = 0; n < N; n++) {
        conv2d_forward(y1 + (size_t)n * OC * HW, x + (size_t)n * C * HW, w, b, 1, C, H, W, OC, k,
                       col);
    }
    same &= !memcmp(y, y1, no * sizeof *y);
    pd_set_threads(1);
    conv2d_forward(y2, x, w, b, N, C, H, W, OC, k, NULL);
    same &= !memcmp(y, y2, no * sizeof *y);
    pd_set_threads(2);
    tu_check(same, "%s: bit-identical alone / in the batch, 1 / 2 threads, col / none", name);

    conv_set_path(CONV_AUTO);
    free(xr), free(wr), free(xf), free(wf), free(ref), free(ref_x), free(ref_w), free(bd);
    free(x), free(w), free(b), free(y), free(y1), free(y2), free(col);
}

/* A Winograd layer: float products, the same bits in bf16 as in fp32. */
static void winograd_untouched(const char *sbg) {
    int N = 2, C = 16, H = 16, W = 16, OC = 24;
    size_t ni = (size_t)N * C * H * W, no = (size_t)N * OC * H * W, nw = (size_t)OC * C * 9;
    float *x = tu_randf(ni, 21, 1.0f), *w = tu_randf(nw, 22, 0.2f), *b = tu_randf(OC, 23, 0.1f);
    float *y32 = malloc(no * sizeof *y32), *y16 = malloc(no * sizeof *y16);
    float *col = malloc((size_t)C * 9 * H * W * sizeof *col);
    tu_check(conv_winograd_applies(C, H, W, OC), "%s: the 16x16 layer is a Winograd one", sbg);
    conv_set_precision(PRECISION_FP32);
    conv2d_forward(y32, x, w, b, N, C, H, W, OC, 3, col);
    conv_set_precision(PRECISION_BF16);
    conv2d_forward(y16, x, w, b, N, C, H, W, OC, 3, col);
    tu_check(!memcmp(y32, y16, no * sizeof *y32),
             "%s: a Winograd layer's bits are the same in bf16 as in fp32", sbg);
    free(x), free(w), free(b), free(y32), free(y16), free(col);
}

/* pd_conv_stats_begin/end: the direct 8x8 layer's row says bf16. */
static void stats_record_bf16(const char *sbg) {
    int C = 16, H = 8, W = 8, OC = 16;
    float *x = tu_randf((size_t)C * H * W, 31, 1.0f), *w = tu_randf((size_t)OC * C * 9, 32, 0.2f);
    float *y = malloc((size_t)OC * H * W * sizeof *y), *col = malloc((size_t)C * 9 * H * W * 4);
    pd_conv_stat st[4];
    pd_conv_stats_begin();
    conv2d_forward(y, x, w, NULL, 1, C, H, W, OC, 3, col);
    int n = pd_conv_stats_end(st, 4);
    tu_check(n == 1 && st[0].bf16 == 1 && st[0].winograd == 0 && st[0].images == 1,
             "%s: pd_conv_stats_end records the bf16 path (%d rows, bf16 %d)", sbg, n,
             n ? st[0].bf16 : -1);
    free(x), free(w), free(y), free(col);
}

/* (5) a float layer outside the scope */
static void outside_scope_is_float(const char *sbg) {
    int C = 16, H = 8, W = 8, OC = 16;
    size_t no = (size_t)OC * H * W;
    float *x = tu_randf((size_t)C * H * W, 41, 1.0f), *w = tu_randf((size_t)OC * C * 9, 42, 0.2f);
    float *y32 = malloc(no * sizeof *y32), *y16 = malloc(no * sizeof *y16),
          *col = malloc((size_t)C * 9 * H * W * 4);
    int outer = conv_bf16_scope(0);
    conv_set_precision(PRECISION_FP32);
    conv2d_forward(y32, x, w, NULL, 1, C, H, W, OC, 3, col);
    conv_set_precision(PRECISION_BF16);
    conv2d_forward(y16, x, w, NULL, 1, C, H, W, OC, 3, col);
    tu_check(!memcmp(y32, y16, no * sizeof *y32), "%s: outside a bf16 scope a layer stays float",
             sbg);
    conv_bf16_scope(outer);
    free(x), free(w), free(y32), free(y16), free(col);
}

/* (5) a whole network: evaluation runs round, training runs do not */
static void network_scope(const char *sbg) {
    pd_unet_config c = pd_unet_config_default();
    c.in_channels = c.out_channels = 1;
    c.model_channels = 16;
    c.n_levels = 2;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    c.channel_mult[0] = 1, c.channel_mult[1] = 2;
    c.num_blocks = 1;
    c.img_resolution = 16;   /* 16x16 (Winograd) and 8x8 (direct) levels */
    memset(c.attn_resolutions, 0, sizeof c.attn_resolutions);
    c.attn_resolutions[0] = 8;
    c.n_attn = 1;
    c.dropout = 0;
    pd_model *m;
    pd_error err = {{0}};
    if (pd_model_create(&m, &c, 5, &err)) {
        printf("pd_model_create: %s\n", err.msg);
        exit(1);
    }
    int n = 3;
    size_t img = 16 * 16;
    float *x = tu_randf(n * img, 51, 1.0f), sig[3] = {0.5f, 2.0f, 10.0f};
    float *e32 = malloc(n * img * 4), *e16 = malloc(n * img * 4), *t16 = malloc(n * img * 4),
          *one = malloc(img * 4);
    unet_run *ev, *tr;
    if (unet_run_create(&ev, m, n, 0, 0, &err) || unet_run_create(&tr, m, n, 0, 1, &err)) {
        printf("unet_run_create: %s\n", err.msg);
        exit(1);
    }
    conv_set_precision(PRECISION_FP32);
    int rc = unet_denoise_forward(ev, e32, x, sig, NULL, n, NULL, &err);
    conv_set_precision(PRECISION_BF16);
    pd_conv_stat st[32];
    pd_conv_stats_begin();
    rc |= unet_denoise_forward(ev, e16, x, sig, NULL, n, NULL, &err);
    int rows = pd_conv_stats_end(st, 32), bf16_rows = 0;
    for (int i = 0; i < rows && i < 32; i++) bf16_rows += st[i].bf16;
    rc |= unet_denoise_forward(tr, t16, x, sig, NULL, n, NULL, &err);
    rc |= unet_denoise_forward(ev, one, x + img, sig + 1, NULL, 1, NULL, &err);
    tu_check(rc == 0, "%s: the network runs (%s)", sbg, err.msg);
    double d = 0, scale = 0;
    for (size_t i = 0; i < n * img; i++) {
        d = fmax(d, fabs(e16[i] - e32[i]));
        scale = fmax(scale, fabs(e32[i]));
    }
    tu_check(bf16_rows > 0 && d / scale > 1e-4 && d / scale < 2e-2,
             "%s: an evaluation run rounds (%d bf16 layer shapes; output off fp32's by %.1e "
             "normwise)", sbg, bf16_rows, d / scale);
    tu_check(!memcmp(t16, e32, n * img * 4),
             "%s: a training run (keep = 1) stays float: bit-identical to fp32", sbg);
    tu_check(!memcmp(one, e16 + img, img * 4),
             "%s: the evaluation in bf16 gives a sample the same bits alone and in the batch", sbg);
    tu_check(conv_bf16_scope(0) == 0, "%s: the scope is closed after the network", sbg);
    conv_set_precision(PRECISION_FP32);
    unet_run_free(ev), unet_run_free(tr), pd_model_free(m);
    free(x), free(e32), free(e16), free(t16), free(one);
}

static void layer_checks(const char *sbg) {
    outside_scope_is_float(sbg);
    network_scope(sbg);
    int outer = conv_bf16_scope(1);   /* the layers alone, as inside an evaluation */
    conv_set_precision(PRECISION_BF16);
    conv_case(sbg, 3, 16, 8, 8, 32, 3, 1, 0);
    conv_case(sbg, 3, 20, 5, 7, 72, 3, 0, 0);    /* odd sizes, two row tiles */
    conv_case(sbg, 2, 12, 32, 32, 20, 3, 1, 1);  /* --conv direct: four column tiles */
    conv_case(sbg, 3, 24, 8, 8, 40, 1, 1, 0);
    conv_case(sbg, 2, 64, 16, 16, 80, 1, 0, 0);  /* 1x1: two row tiles */
    winograd_untouched(sbg);
    stats_record_bf16(sbg);
    conv_set_precision(PRECISION_FP32);
    conv_bf16_scope(outer);
}

/* ------------------------------------------------------------------ (4) the setting */

static void setting_checks(void) {
    pd_error err = {{0}};
    tu_check(pd_set_precision("fp16", &err) != 0 && strstr(err.msg, "fp16") &&
                 strstr(err.msg, "fp32, bf16"),
             "pd_set_precision refuses an unknown name: %s", err.msg);
    tu_check(pd_set_precision("fp32", &err) == 0 && !strcmp(pd_precision(), "fp32"),
             "pd_set_precision(fp32)");
    gemm_set_sbgemm(NULL);
    if (!gemm_bf16_available()) {
        memset(&err, 0, sizeof err);
        tu_check(pd_set_precision("bf16", &err) != 0 && strstr(err.msg, "cblas_sbgemm") &&
                     !strcmp(pd_precision(), "fp32"),
                 "pd_set_precision(bf16) without cblas_sbgemm fails, says why, changes nothing: %s",
                 err.msg);
    } else {
        tu_check(pd_set_precision("bf16", &err) == 0 && !strcmp(pd_precision(), "bf16"),
                 "pd_set_precision(bf16) with the loaded OpenBLAS's cblas_sbgemm");
        pd_set_precision("fp32", &err);
    }
}

int main(void) {
    check_rounding();
    setting_checks();

    gemm_set_sbgemm(sbgemm_twin);
    layer_checks("twin sbgemm");
    tu_check(twin_calls > 0, "the twin ran (%d calls)", twin_calls);

    gemm_set_sbgemm(NULL);
    if (gemm_bf16_available()) {
        layer_checks("OpenBLAS cblas_sbgemm");
    } else {
        printf("skipped: the loaded OpenBLAS has no cblas_sbgemm (built without BUILD_BFLOAT16); "
               "the layer checks ran through the twin only\n");
    }
    return tu_finish();
}
