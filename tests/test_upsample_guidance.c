/* test_upsample_guidance — the upsample-guidance denoiser wrapper (docs/algorithms.md §M2, pixdiff.h).
 *
 * On Gaussian data, which is resolution-free (the analytic denoiser works at any size), the
 * guided D at w = 1 and w = 2.5 is compared with a double-precision evaluation of
 * D_hi + w Up_m(D_lo(Down_m x; sigma/m) - Down_m D_hi) written here (m = 2 and m = 4), with a batch
 * that mixes active and inactive noise levels. The activity threshold must be the documented
 * sigma_on = sigma_VP(t_hi - eta (t_hi - t_lo)) and the guidance must switch exactly there. With
 * w = 0 (or eta = 0) whole sampling runs must be bit-identical to sampling the hi denoiser
 * itself, for the Gaussian and for a small random U-Net run at 32x32 (hi) and 16x16 (lo); for the
 * U-Net the guided D must also equal the combination of separate hi and lo calls, and an image's
 * result must not depend on the rest of the batch. Counts: the wrapper's evals are the sampler's
 * NFE, the lo branch is called only while active and only on active images. Bad arguments fail. */
#include "pixdiff.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MU 0.3
#define STD 0.5

static double gauss_D(double x, double s) { return MU + STD * STD / (STD * STD + s * s) * (x - MU); }

static pd_denoiser *gauss(int res, int ch) {
    char spec[128];
    snprintf(spec, sizeof spec, "analytic:gaussian:mu=0.3:std=0.5:res=%d:ch=%d", res, ch);
    pd_error err;
    pd_denoiser *d;
    if (pd_denoiser_analytic(&d, spec, &err)) {
        printf("cannot open %s: %s\n", spec, err.msg);
        exit(1);
    }
    return d;
}

static double vp_t(double s) { return (sqrt(0.01 + 2 * 19.9 * log(1 + s * s)) - 0.1) / 19.9; }
static double vp_s(double t) { return sqrt(exp(0.5 * 19.9 * t * t + 0.1 * t) - 1); }

/* D~ for Gaussian data in double, image by image: C channels of (m h) x (m w) */
static void guided_ref(double *ref, const float *x, const float *sig, int n, int C, int h, int w, int m, double wt,
                       double sigma_on) {
    int H = h * m, W = w * m;
    for (int b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * C * H * W;
        double *rb = ref + (size_t)b * C * H * W, s = sig[b];
        /* the denoiser evaluates in double from float inputs and rounds its output to float */
        for (int j = 0; j < C * H * W; j++) rb[j] = (float)gauss_D(xb[j], s);
        if (!(s >= sigma_on)) continue;
        for (int c = 0; c < C; c++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    double px = 0, pd = 0;
                    for (int dy = 0; dy < m; dy++)
                        for (int dx = 0; dx < m; dx++) {
                            size_t k = ((size_t)c * H + y * m + dy) * W + xx * m + dx;
                            px += xb[k], pd += rb[k];
                        }
                    px /= m * m, pd /= m * m;
                    double lo = (float)gauss_D((float)px, (float)(s / m));
                    for (int dy = 0; dy < m; dy++)
                        for (int dx = 0; dx < m; dx++) rb[((size_t)c * H + y * m + dy) * W + xx * m + dx] += wt * (lo - pd);
                }
    }
}

static void test_errors(void) {
    pd_denoiser *hi = gauss(16, 2), *lo = gauss(8, 2), *lo3 = gauss(8, 3), *lo5 = gauss(5, 2), *u;
    pd_error err;
    struct { const char *what, *must; pd_denoiser *h, *l; int m; double w, eta; } bad[] = {
        {"m = 1", "factor", hi, lo, 1, 1, 0.5},
        {"channels differ", "not 2 x", hi, lo3, 2, 1, 0.5},
        {"16 is not 2 x 5", "not 2 x", hi, lo5, 2, 1, 0.5},
        {"16 is not 4 x 8", "not 4 x", hi, lo, 4, 1, 0.5},
        {"w = inf", "weight", hi, lo, 2, INFINITY, 0.5},
        {"eta = -0.1", "eta", hi, lo, 2, 1, -0.1},
        {"NULL lo", "NULL", hi, NULL, 2, 1, 0.5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&err, 0, sizeof err);
        u = (pd_denoiser *)1;
        int rc = pd_denoiser_upsample_guidance(&u, bad[i].h, bad[i].l, bad[i].m, bad[i].w, bad[i].eta, &err);
        tu_check(rc == -1 && u == NULL && strstr(err.msg, bad[i].must), "error on %-16s: %s", bad[i].what, err.msg);
    }
    tu_check(pd_upsample_guidance_sigma_on(hi) == -1 && pd_upsample_guidance_stats(hi, NULL, NULL, NULL) == -1,
             "the accessors refuse a denoiser that is not a wrapper");
    pd_denoiser_free(hi), pd_denoiser_free(lo), pd_denoiser_free(lo3), pd_denoiser_free(lo5);
}

static void test_window(void) {
    pd_denoiser *hi = gauss(16, 1), *lo = gauss(8, 1), *u;
    pd_error err;
    double etas[4] = {0.6, 0.3, 0.95, 0.05};
    for (int e = 0; e < 4; e++) {
        pd_denoiser_upsample_guidance(&u, hi, lo, 2, 1.0, etas[e], &err);
        double tl = vp_t(0.002), th = vp_t(80), want = vp_s(th - etas[e] * (th - tl)), got = pd_upsample_guidance_sigma_on(u);
        tu_check(fabs(got - want) <= 1e-12 * want, "eta %.2f: sigma_on %.6f = sigma_VP(t(80) - eta (t(80) - t(0.002))) "
                 "= %.6f (t(80) = %.4f)", etas[e], got, want, th);
        /* just above and just below, in one batch: only the first image is guided */
        enum { D = 256 };
        float x[2 * D], out[2 * D], plain[2 * D], sg[2] = {(float)(want * (1 + 1e-6)), (float)(want * (1 - 1e-6))};
        tu_fill(x, 2 * D, 90 + e, 2.0f);
        pd_denoiser_eval(u, out, x, sg, NULL, 2, &err);
        pd_denoiser_eval(hi, plain, x, sg, NULL, 2, &err);
        long long lc, li;
        pd_upsample_guidance_stats(u, NULL, &lc, &li);
        tu_check(memcmp(out, plain, D * sizeof *out) && !memcmp(out + D, plain + D, D * sizeof *out) && lc == 1 && li == 1,
                 "  guided at sigma_on (1 + 1e-6), plain D_hi at sigma_on (1 - 1e-6); lo called once for 1 image");
        pd_denoiser_free(u);
    }
    /* eta >= 1: always on; eta = 0 or w = 0: never */
    struct { double w, eta, on; } ends[3] = {{1, 1, 0}, {1, 0, INFINITY}, {0, 0.6, INFINITY}};
    for (int i = 0; i < 3; i++) {
        pd_denoiser_upsample_guidance(&u, hi, lo, 2, ends[i].w, ends[i].eta, &err);
        tu_check(pd_upsample_guidance_sigma_on(u) == ends[i].on, "w %g, eta %g: sigma_on %g", ends[i].w, ends[i].eta,
                 pd_upsample_guidance_sigma_on(u));
        pd_denoiser_free(u);
    }
    pd_denoiser_free(hi), pd_denoiser_free(lo);
}

static void test_gaussian_formula(void) {
    int ms[2] = {2, 4};
    double ws[2] = {1.0, 2.5};
    for (int mi = 0; mi < 2; mi++)
        for (int wi = 0; wi < 2; wi++) {
            int m = ms[mi], C = 2, h = 4, w = 4, H = h * m, n = 4;
            pd_denoiser *hi = gauss(H, C), *lo = gauss(h, C), *u;
            pd_error err;
            if (pd_denoiser_upsample_guidance(&u, hi, lo, m, ws[wi], 0.6, &err)) {
                tu_check(0, "create: %s", err.msg);
                continue;
            }
            size_t dim = (size_t)C * H * H;
            float *x = malloc(n * dim * sizeof *x), *out = malloc(n * dim * sizeof *out);
            double *ref = malloc(n * dim * sizeof *ref);
            tu_fill(x, n * dim, 7 + mi, 3.0f);
            float sg[4] = {80.0f, 0.5f, 5.0f, 0.01f};   /* active, inactive, active, inactive */
            pd_denoiser_eval(u, out, x, sg, NULL, n, &err);
            guided_ref(ref, x, sg, n, C, h, w, m, ws[wi], pd_upsample_guidance_sigma_on(u));
            char name[128];
            snprintf(name, sizeof name, "gaussian m=%d w=%.1f, sigma 80/0.5/5/0.01: D~ vs hand formula", m, ws[wi]);
            tu_compare(name, out, ref, n * dim, 2e-6);
            long long hc, lc, li;
            pd_upsample_guidance_stats(u, &hc, &lc, &li);
            /* the guided part is really there: compare with plain D_hi at sigma 5 */
            double moved = 0;
            for (size_t j = 2 * dim; j < 3 * dim; j++) moved = fmax(moved, fabs(out[j] - (float)gauss_D(x[j], 5.0)));
            tu_check(hc == 1 && lc == 1 && li == 2 && u->evals == 1 && hi->evals == 1 && lo->evals == 1 && moved > 1e-3,
                     "  one outer eval = one hi call + one lo call on the 2 active images (max guidance term %.3f)",
                     moved);
            free(x), free(out), free(ref);
            pd_denoiser_free(u), pd_denoiser_free(hi), pd_denoiser_free(lo);
        }
}

static int run(pd_denoiser *d, pd_sampler_kind k, int steps, float *x, const uint64_t *seeds, int n,
               pd_sample_stats *st) {
    pd_sample_params p = pd_sample_default_params();
    p.sampler = k;
    p.sched.grid = pd_sampler_default_grid(k);
    p.steps = steps;
    pd_error err = {{0}};
    int rc = pd_sample(d, &p, x, NULL, seeds, n, st, &err);
    if (rc) printf("  pd_sample failed: %s\n", err.msg);
    return rc;
}

static void test_w0_sampling_gaussian(void) {
    enum { N = 3, R = 16, DIM = 3 * R * R };
    uint64_t seeds[N] = {5, 6, 7};
    float *z = malloc(N * DIM * sizeof *z), *a = malloc(N * DIM * sizeof *a), *b = malloc(N * DIM * sizeof *b);
    for (int i = 0; i < N; i++) pd_randn(z + i * DIM, DIM, seeds[i], 0);
    pd_denoiser *hi = gauss(R, 3), *lo = gauss(R / 2, 3), *u0, *u1;
    pd_error err;
    pd_denoiser_upsample_guidance(&u0, hi, lo, 2, 0.0, 0.6, &err);
    pd_denoiser_upsample_guidance(&u1, hi, lo, 2, 1.0, 0.6, &err);
    pd_sampler_kind ks[3] = {PD_SAMPLER_HEUN, PD_SAMPLER_DPMPP_2M, PD_SAMPLER_EULER};
    for (int k = 0; k < 3; k++) {
        pd_sample_stats sa, sb, sc;
        memcpy(a, z, N * DIM * sizeof *a);
        memcpy(b, z, N * DIM * sizeof *b);
        long long e0 = u0->evals, l0 = lo->evals;
        int ok = !run(hi, ks[k], 12, a, seeds, N, &sa) && !run(u0, ks[k], 12, b, seeds, N, &sb);
        tu_check(ok && !memcmp(a, b, N * DIM * sizeof *a) && u0->evals - e0 == sb.nfe && lo->evals == l0,
                 "gaussian %-8s 12 steps: w = 0 bit-identical to plain hi sampling (NFE %d = wrapper evals, lo never called)",
                 pd_sampler_name(ks[k]), sb.nfe);
        memcpy(b, z, N * DIM * sizeof *b);
        long long h0, lc0, li0, h1, lc1, li1;
        pd_upsample_guidance_stats(u1, &h0, &lc0, &li0);
        ok = !run(u1, ks[k], 12, b, seeds, N, &sc);
        pd_upsample_guidance_stats(u1, &h1, &lc1, &li1);
        double diff = 0;
        for (int j = 0; j < N * DIM; j++) diff = fmax(diff, fabs(a[j] - b[j]));
        tu_check(ok && diff > 1e-4 && h1 - h0 == sc.nfe && lc1 - lc0 > 0 && lc1 - lc0 < sc.nfe && li1 - li0 == N * (lc1 - lc0),
                 "  w = 1, eta 0.6: differs (max %.3g); NFE %d hi calls, %lld lo calls (the active part)", diff, sc.nfe,
                 lc1 - lc0);
    }
    pd_denoiser_free(u0), pd_denoiser_free(u1), pd_denoiser_free(hi), pd_denoiser_free(lo);
    free(z), free(a), free(b);
}

static void test_unet(void) {
    pd_error err;
    pd_unet_config cfg;
    pd_model *model;
    if (pd_unet_config_preset(&cfg, "tiny", &err) || pd_model_create(&model, &cfg, 1234, &err)) {
        tu_check(0, "tiny model: %s", err.msg);
        return;
    }
    pd_denoiser *hi, *lo, *u0, *u1;
    if (pd_denoiser_from_model(&hi, model, 32, &err) || pd_denoiser_from_model(&lo, model, 16, &err)) {
        tu_check(0, "model denoisers at 32 and 16: %s", err.msg);
        pd_model_free(model);
        return;
    }
    pd_denoiser_upsample_guidance(&u0, hi, lo, 2, 0.0, 0.6, &err);
    pd_denoiser_upsample_guidance(&u1, hi, lo, 2, 1.5, 0.6, &err);
    enum { N = 3, DIM = 32 * 32, DLO = 16 * 16 };
    uint64_t seeds[N] = {11, 12, 13};
    float z[N * DIM], a[N * DIM], b[N * DIM];
    for (int i = 0; i < N; i++) pd_randn(z + i * DIM, DIM, seeds[i], 0);
    /* w = 0: whole runs bit-identical */
    pd_sampler_kind ks[2] = {PD_SAMPLER_EULER, PD_SAMPLER_DPMPP_2M};
    for (int k = 0; k < 2; k++) {
        memcpy(a, z, sizeof a);
        memcpy(b, z, sizeof b);
        pd_sample_stats sa, sb;
        int ok = !run(hi, ks[k], 4, a, seeds, N, &sa) && !run(u0, ks[k], 4, b, seeds, N, &sb);
        tu_check(ok && !memcmp(a, b, sizeof a) && sa.nfe == sb.nfe,
                 "tiny U-Net 32x32 %-8s 4 steps: w = 0 bit-identical to plain hi sampling", pd_sampler_name(ks[k]));
    }
    /* w = 1.5: D~ = D_hi + 1.5 Up(D_lo(Down x, sigma/2) - Down D_hi) from separate calls */
    float x[N * DIM], out[N * DIM], dh[N * DIM], xl[N * DLO], dl[N * DLO];
    float sg[N] = {40.0f, 0.2f, 3.0f}, sl[N];
    double ref[N * DIM];
    for (int j = 0; j < N * DIM; j++) x[j] = sg[j / DIM] * z[j];
    pd_denoiser_eval(u1, out, x, sg, NULL, N, &err);
    pd_denoiser_eval(hi, dh, x, sg, NULL, N, &err);
    for (int bb = 0; bb < N; bb++) {
        sl[bb] = sg[bb] / 2;
        for (int y = 0; y < 16; y++)
            for (int xx = 0; xx < 16; xx++) {
                const float *p = x + bb * DIM + (2 * y) * 32 + 2 * xx;
                xl[bb * DLO + y * 16 + xx] = (float)(((double)p[0] + p[1] + p[32] + p[33]) / 4);
            }
    }
    pd_denoiser_eval(lo, dl, xl, sl, NULL, N, &err);
    double on = pd_upsample_guidance_sigma_on(u1);
    for (int bb = 0; bb < N; bb++)
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++) {
                int k = bb * DIM + y * 32 + xx, y0 = y & ~1, x0 = xx & ~1;
                const float *p = dh + bb * DIM + y0 * 32 + x0;
                double pool = ((double)p[0] + p[1] + p[32] + p[33]) / 4;
                ref[k] = dh[k] + (sg[bb] >= on ? 1.5 * (dl[bb * DLO + (y / 2) * 16 + xx / 2] - pool) : 0.0);
            }
    tu_compare("tiny U-Net m=2 w=1.5, sigma 40/0.2/3 (0.2 inactive): D~ vs separate hi and lo calls", out, ref,
               N * DIM, 1e-5);
    /* an image alone gives the same bits as in the batch (the lo batch holds only active images) */
    float one[DIM];
    pd_denoiser_eval(u1, one, x + 2 * DIM, sg + 2, NULL, 1, &err);
    tu_check(!memcmp(one, out + 2 * DIM, sizeof one), "  image 2 alone = image 2 in the batch (bit-identical)");
    pd_denoiser_free(u0), pd_denoiser_free(u1), pd_denoiser_free(hi), pd_denoiser_free(lo);
    pd_model_free(model);
}

int main(void) {
    test_errors();
    test_window();
    test_gaussian_formula();
    test_w0_sampling_gaussian();
    test_unet();
    return tu_finish();
}
