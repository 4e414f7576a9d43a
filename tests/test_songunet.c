/* test_songunet.c — the SongUNet denoiser's forward against the independent double-precision
 * reference (tests/ref_songunet.c), on small random nets with every weight random (including
 * those EDM zero-initialises):
 *   - EDM, VP, VE and eps preconditioning, with labels, without (NULL = zeros), unconditional,
 *     in_channels 1 and 3, two and three levels, at the trained resolution and at 2x.
 *     Two measures per comparison: per image, normwise max|err|/max|ref| <= 1e-5 (the target is
 *     1e-4; float32 through ~20 layers lands near 1e-6), and elementwise (tu_compare: relative to
 *     |ref| + 1e-3·max|ref|) <= 1e-3, which elements of D near zero need (D = c_skip·x + c_out·F
 *     cancels; the float error there is the same ~1e-6 of the image's scale). The reference
 *     rounds c_noise to float32 as every float32 runtime (EDM included) does: under VP/eps,
 *     c_noise = 999·t(σ) reaches ~1000, and its rounding moves the embedding by ~3e-5;
 *   - Skip-Tuning: all-ones scales bit-identical to NULL; other scales match the reference;
 *   - AMED's feature tap matches the reference's channel mean (1e-4);
 *   - an image's output is bit-identical in batch 1 vs batch 3 and with 1 vs 2 threads;
 *   - pd_denoiser_from_model gives the same numbers as the run it wraps.
 */
#include "pixdiff.h"
#include "ref_songunet.h"
#include "testutil.h"
#include "unet/songunet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Elementwise (tu_compare) and per-sample normwise tolerances; see the file comment. */
#define TOL_ELEM 1e-3
#define TOL_NORM 1e-5

static void compare(const char *tag, const float *got, const double *ref, int n, size_t img) {
    tu_compare(tag, got, ref, n * img, TOL_ELEM);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double e = 0, sc = 0;
        for (size_t j = i * img; j < (i + 1) * img; j++) {
            e = fmax(e, fabs(got[j] - ref[j]));
            sc = fmax(sc, fabs(ref[j]));
        }
        worst = fmax(worst, e / sc);
    }
    tu_check(worst <= TOL_NORM, "%-46s normwise max|err|/max|ref| %.3e (tol %.0e)", tag, worst,
             TOL_NORM);
}

static pd_unet_config small_cfg(int in_ch, int mc, int levels, int nb, int res, int attn,
                                int label_dim, const char *precond) {
    pd_unet_config c = pd_unet_config_default();
    static const int mult[] = {1, 2, 2, 2};
    c.in_channels = c.out_channels = in_ch;
    c.model_channels = mc;
    c.n_levels = levels;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    for (int l = 0; l < levels; l++) c.channel_mult[l] = mult[l];
    c.num_blocks = nb;
    c.img_resolution = res;
    memset(c.attn_resolutions, 0, sizeof c.attn_resolutions);
    c.attn_resolutions[0] = attn;
    c.n_attn = 1;
    c.label_dim = label_dim;
    c.dropout = 0;
    snprintf(c.precond, sizeof c.precond, "%s", precond);
    return c;
}

static pd_model *make(const pd_unet_config *c, uint64_t seed) {
    pd_model *m;
    pd_error err;
    if (pd_model_create(&m, c, seed, &err)) {
        printf("pd_model_create: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static const float sigmas[] = {0.03f, 0.7f, 5.0f, 40.0f};

/* Inputs: x = x0 + sigma·n with x0 in [-1,1]; one-hot labels. */
static void inputs(float *x, float *sig, float *lab, int n, int C, int H, int ld, uint64_t seed) {
    size_t img = (size_t)C * H * H;
    for (int i = 0; i < n; i++) {
        sig[i] = sigmas[(i + seed) % 4];
        float *xi = x + i * img;
        tu_fill(xi, img, seed * 31 + i, 1.0f);
        float *nz = malloc(img * sizeof *nz);
        pd_randn(nz, img, seed * 17 + i, 0);
        for (size_t j = 0; j < img; j++) xi[j] += sig[i] * nz[j];
        free(nz);
        for (int k = 0; k < ld; k++) lab[i * ld + k] = k == (int)((i + seed) % ld);
    }
}

/* Forward of the runtime vs the reference for one model, resolution and label mode. */
static void check_forward(const char *tag, pd_model *m, int res, int n, int use_labels) {
    const pd_unet_config *c = pd_model_config(m);
    int C = c->in_channels, H = res ? res : c->img_resolution, ld = c->label_dim;
    size_t img = (size_t)C * H * H;
    float *x = malloc(n * img * sizeof *x), *out = malloc(n * img * sizeof *out);
    float sig[8], lab[64] = {0};
    inputs(x, sig, lab, n, C, H, ld, 7);
    unet_run *r;
    pd_error err;
    if (unet_run_create(&r, m, n, res, 0, &err)) { printf("%s\n", err.msg); exit(1); }
    int rc = unet_denoise_forward(r, out, x, sig, use_labels ? lab : NULL, n, NULL, &err);
    tu_check(rc == 0, "%s: forward runs%s%s", tag, rc ? ": " : "", rc ? err.msg : "");
    double *xd = malloc(n * img * sizeof *xd), *ref = malloc(n * img * sizeof *ref);
    double sd[8], ldd[64] = {0};
    for (size_t j = 0; j < n * img; j++) xd[j] = x[j];
    for (int i = 0; i < n; i++) sd[i] = sig[i];
    for (int j = 0; j < n * ld; j++) ldd[j] = lab[j];
    ref_opts o = {.res = res, .round_c_noise = 1};
    ref_denoise(m, ref, xd, sd, use_labels ? ldd : NULL, n, &o);
    compare(tag, out, ref, n, img);
    unet_run_free(r);
    free(x); free(out); free(xd); free(ref);
}

int main(void) {
    pd_set_threads(2);
    char tag[128];

    /* 1. Preconditioners x labels on a 3-channel conditional 16x16 net, attention at 8x8. */
    const char *pre[] = {"edm", "vp", "ve", "eps"};
    for (int p = 0; p < 4; p++) {
        pd_unet_config c = small_cfg(3, 16, 2, 1, 16, 8, 3, pre[p]);
        pd_model *m = make(&c, 100 + p);
        snprintf(tag, sizeof tag, "fwd %s 3ch cond labels 16x16", pre[p]);
        check_forward(tag, m, 0, 2, 1);
        snprintf(tag, sizeof tag, "fwd %s 3ch cond no-labels 16x16", pre[p]);
        check_forward(tag, m, 0, 2, 0);
        snprintf(tag, sizeof tag, "fwd %s 3ch cond labels 32x32 (2x)", pre[p]);
        check_forward(tag, m, 32, 2, 1);
        pd_model_free(m);
    }
    /* 2. Unconditional 1-channel nets: two levels (mc 8) and three levels, 2 blocks. */
    {
        pd_unet_config c = small_cfg(1, 8, 2, 1, 16, 8, 0, "edm");
        pd_model *m = make(&c, 7);
        check_forward("fwd edm 1ch uncond 16x16", m, 0, 2, 0);
        check_forward("fwd edm 1ch uncond 32x32 (2x)", m, 32, 2, 0);
        pd_model_free(m);
        pd_unet_config c3 = small_cfg(1, 8, 3, 2, 16, 8, 0, "edm");
        c3.augment_dim = 4;   /* map_augment exists but contributes nothing */
        pd_model *m3 = make(&c3, 8);
        check_forward("fwd edm 1ch 3 levels 2 blocks augment 16x16", m3, 0, 2, 0);
        check_forward("fwd edm 1ch 3 levels 2 blocks augment 32x32", m3, 32, 2, 0);
        pd_model_free(m3);
    }

    /* 3. Skip-Tuning, feature tap, batch and thread independence on one conditional model. */
    pd_unet_config c = small_cfg(3, 16, 2, 1, 16, 8, 3, "edm");
    pd_model *m = make(&c, 55);
    int C = 3, H = 16, n = 3, ns = unet_num_skips(m);
    size_t img = (size_t)C * H * H;
    float *x = malloc(n * img * sizeof *x), sig[3], lab[9];
    inputs(x, sig, lab, n, C, H, 3, 3);
    float *o1 = malloc(n * img * sizeof *o1), *o2 = malloc(n * img * sizeof *o2);
    unet_run *r;
    pd_error err;
    if (unet_run_create(&r, m, n, 0, 0, &err)) { printf("%s\n", err.msg); return 1; }
    tu_check(ns == 2 * (1 + 1), "unet_num_skips = %d (2 levels x (1 block + 1))", ns);
    float ones[16], scales[16];
    double scales_d[16];
    for (int i = 0; i < ns; i++) {
        ones[i] = 1;
        scales[i] = 0.5f + 0.1f * i;
        scales_d[i] = scales[i];
    }
    unet_opts o = {0};
    unet_denoise_forward(r, o1, x, sig, lab, n, NULL, &err);
    o.skip_scale = ones;
    o.n_skip_scale = ns;
    unet_denoise_forward(r, o2, x, sig, lab, n, &o, &err);
    tu_check(!memcmp(o1, o2, n * img * sizeof *o1), "skip_scale all ones bit-identical to NULL");
    o.skip_scale = scales;
    float *feat = malloc(n * 64 * sizeof *feat);
    o.feature = feat;
    unet_denoise_forward(r, o2, x, sig, lab, n, &o, &err);
    tu_check(unet_feature_dim(r) == 64, "feature dim %d (8x8 tap)", unet_feature_dim(r));
    double *xd = malloc(n * img * sizeof *xd), *ref = malloc(n * img * sizeof *ref), sd[3], ld[9];
    double *fref = malloc(n * 64 * sizeof *fref);
    for (size_t j = 0; j < n * img; j++) xd[j] = x[j];
    for (int i = 0; i < n; i++) sd[i] = sig[i];
    for (int j = 0; j < 9; j++) ld[j] = lab[j];
    ref_opts ro = {.skip_scale = scales_d, .feature = fref, .round_c_noise = 1};
    ref_denoise(m, ref, xd, sd, ld, n, &ro);
    compare("skip_scale 0.5..0.8 vs reference", o2, ref, n, img);
    compare("feature tap (8x8 channel mean) vs reference", feat, fref, n, 64);
    double diff = 0;
    for (size_t j = 0; j < n * img; j++) diff = fmax(diff, fabs(o1[j] - o2[j]));
    tu_check(diff > 1e-3, "skip scaling changes the output (max diff %.3g)", diff);
    o.skip_scale = scales;
    o.n_skip_scale = ns - 1;
    tu_check(unet_denoise_forward(r, o2, x, sig, lab, n, &o, &err) != 0,
             "wrong skip_scale count rejected: %s", err.msg);
    float bad = -1;
    tu_check(unet_denoise_forward(r, o2, x, &bad, lab, 1, NULL, &err) != 0,
             "sigma <= 0 rejected: %s", err.msg);

    /* Feature tap at 32x32 on the same net: the 8x8 level does not exist (16x16 is lowest). */
    {
        unet_run *r2;
        unet_run_create(&r2, m, 1, 32, 0, &err);
        tu_check(unet_feature_dim(r2) == 256, "feature dim at 32x32 = %d (lowest level 16x16)",
                 unet_feature_dim(r2));
        unet_run_free(r2);
    }

    /* Batch independence: image 1 alone vs inside the batch of 3; threads 1 vs 2. */
    unet_run *r1;
    unet_run_create(&r1, m, 1, 0, 0, &err);
    float *solo = malloc(img * sizeof *solo);
    unet_denoise_forward(r1, solo, x + img, sig + 1, lab + 3, 1, NULL, &err);
    tu_check(!memcmp(solo, o1 + img, img * sizeof *solo), "image 1: batch 1 == batch 3 (bitwise)");
    pd_set_threads(1);
    unet_denoise_forward(r, o2, x, sig, lab, n, NULL, &err);
    pd_set_threads(2);
    tu_check(!memcmp(o1, o2, n * img * sizeof *o1), "1 thread == 2 threads (bitwise)");
    /* keep = 1 (training layout) computes the same numbers as keep = 0. */
    unet_run *rk;
    unet_run_create(&rk, m, n, 0, 1, &err);
    unet_denoise_forward(rk, o2, x, sig, lab, n, NULL, &err);
    tu_check(!memcmp(o1, o2, n * img * sizeof *o1), "keep=1 == keep=0 (bitwise); %.1f vs %.1f KiB",
             unet_run_bytes(rk) / 1024.0, unet_run_bytes(r) / 1024.0);

    /* pd_denoiser_from_model wraps the same computation. */
    pd_denoiser *d;
    int drc = pd_denoiser_from_model(&d, m, 0, &err);
    tu_check(drc == 0, "pd_denoiser_from_model: %s", drc ? err.msg : d->desc);
    tu_check(d->C == 3 && d->H == 16 && d->W == 16 && d->label_dim == 3, "denoiser shape");
    pd_denoiser_eval(d, o2, x, sig, lab, n, &err);
    tu_check(!memcmp(o1, o2, n * img * sizeof *o1), "denoiser eval == unet forward (bitwise)");
    pd_denoiser_free(d);
    tu_check(pd_denoiser_from_model(&d, m, 15, &err) != 0, "res 15 rejected: %s", err.msg);

    unet_run_free(r);
    unet_run_free(r1);
    unet_run_free(rk);
    pd_model_free(m);
    free(x); free(o1); free(o2); free(feat); free(xd); free(ref); free(fref); free(solo);
    return tu_finish();
}
