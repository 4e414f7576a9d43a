/* test_songunet_grad.c — unet_denoise_backward against central finite differences.
 *
 * Loss L = Σ w ⊙ D(x; σ, label) with fixed random w, on a small conditional net (3 channels,
 * 16x16, model_channels 8, channel_mult [1,2], 1 block, attention at 8x8, label_dim 3, batch 2,
 * every weight random). The float backward's dL/dx, dL/dσ and dL/dθ are compared with central
 * differences of the double-precision reference (tests/ref_songunet.c; step 1e-5, so the FD
 * error is ~1e-9 and what is measured is the float backward's own error):
 *   dL/dx (48 sampled pixels) and dL/dσ: max rel err <= 2e-3 (tu_compare);
 *   dL/dθ, 2 entries of every tensor: per tensor max|g - fd| / max|fd| over the tensor's
 *   samples (floored at 1e-3 of the largest FD over all tensors) <= 2e-3.
 * dL/dσ is also checked under VP and VE preconditioning (different c_* derivatives).
 * Dropout (train = 1, p = 0.3): the backward must use the forward's masks. The reference has no
 * dropout, so FD runs on the float forward with the same dropout seed (masks identical per call),
 * steps HX/HP in float with double loss accumulation: tolerance 2e-2 (a wrong mask is O(1)).
 */
#include "pixdiff.h"
#include "ref_songunet.h"
#include "testutil.h"
#include "unet/songunet.h"
#include "unet/winograd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 2
#define C 3
#define H 16
#define LD 3
#define IMG (C * H * H)
/* Float FD steps under dropout: x enters smoothly (larger step, less rounding noise); a conv1
 * weight reaches GroupNorm and SiLU directly (smaller step, less curvature). */
#define HX 5e-2f
#define HP 1e-2f

static pd_unet_config cfg(const char *precond, float dropout) {
    pd_unet_config c = pd_unet_config_default();
    c.in_channels = c.out_channels = C;
    c.model_channels = 8;
    c.n_levels = 2;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    c.channel_mult[0] = 1;
    c.channel_mult[1] = 2;
    c.num_blocks = 1;
    c.img_resolution = H;
    c.attn_resolutions[0] = 8;
    c.n_attn = 1;
    c.label_dim = LD;
    c.dropout = dropout;
    snprintf(c.precond, sizeof c.precond, "%s", precond);
    return c;
}

static float x[N * IMG], w[N * IMG], lab[N * LD];
static float sig[N] = {0.4f, 3.0f};
static double xd[N * IMG], wd[N * IMG], labd[N * LD], sigd[N];

static void setup(void) {
    tu_fill(x, N * IMG, 1, 1.5f);
    tu_fill(w, N * IMG, 2, 1.0f);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < LD; k++) lab[i * LD + k] = k == i;
    for (int j = 0; j < N * IMG; j++) { xd[j] = x[j]; wd[j] = w[j]; }
    for (int j = 0; j < N * LD; j++) labd[j] = lab[j];
    for (int i = 0; i < N; i++) sigd[i] = sig[i];
}

/* Reference loss of samples [i0, i0+n) with the given double params. */
static double ref_loss(const pd_model *m, const double *params, const double *xx, const double *s,
                       int i0, int n) {
    double out[N * IMG];
    ref_opts o = {.params = params};
    ref_denoise(m, out, xx + (size_t)i0 * IMG, s + i0, labd + i0 * LD, n, &o);
    double L = 0;
    for (int j = 0; j < n * IMG; j++) L += wd[i0 * IMG + j] * out[j];
    return L;
}

static void run_backward(pd_model *m, float *dx, float *ds, float *dp, const unet_opts *o) {
    unet_run *r;
    pd_error err;
    float out[N * IMG];
    if (unet_run_create(&r, m, N, 0, 1, &err) || unet_denoise_forward(r, out, x, sig, lab, N, o, &err) ||
        unet_denoise_backward(r, dx, ds, dp, w, &err)) {
        printf("backward failed: %s\n", err.msg);
        exit(1);
    }
    unet_run_free(r);
}

static void check_sigma(const char *precond) {
    pd_unet_config c = cfg(precond, 0);
    pd_model *m;
    pd_error err;
    pd_model_create(&m, &c, 21, &err);
    float ds[N] = {0};
    run_backward(m, NULL, ds, NULL, NULL);
    double fd[N];
    for (int i = 0; i < N; i++) {
        double s[N], h = 1e-5 * sigd[i];
        memcpy(s, sigd, sizeof s);
        s[i] = sigd[i] + h;
        double lp = ref_loss(m, NULL, xd, s, i, 1);
        s[i] = sigd[i] - h;
        double lm = ref_loss(m, NULL, xd, s, i, 1);
        fd[i] = (lp - lm) / (2 * h);
    }
    char tag[64];
    snprintf(tag, sizeof tag, "dL/dsigma (%s) vs FD", precond);
    tu_compare(tag, ds, fd, N, 2e-3);
    pd_model_free(m);
}

int main(void) {
    pd_set_threads(2);
    setup();
    pd_unet_config c = cfg("edm", 0);
    pd_model *m;
    pd_error err;
    if (pd_model_create(&m, &c, 20, &err)) { printf("%s\n", err.msg); return 1; }
    size_t np = pd_model_param_count(m);
    float *dx = calloc(N * IMG, sizeof *dx), ds[N] = {0}, *dp = calloc(np, sizeof *dp);
    run_backward(m, dx, ds, dp, NULL);

    /* backward without keep fails cleanly */
    {
        unet_run *r;
        float out[N * IMG];
        unet_run_create(&r, m, N, 0, 0, &err);
        unet_denoise_forward(r, out, x, sig, lab, N, NULL, &err);
        tu_check(unet_denoise_backward(r, dx, NULL, NULL, w, &err) != 0, "keep=0 backward refused: %s",
                 err.msg);
        unet_run_free(r);
    }

    /* dL/dx at 48 pixels (24 per sample), each FD on its own sample. */
    enum { NX = 48 };
    float gx[NX];
    double fx[NX];
    double *xp = malloc(sizeof(double) * N * IMG);
    for (int k = 0; k < NX; k++) {
        int i = k % N, j = (int)((k * 2654435761u) % IMG);
        size_t at = (size_t)i * IMG + j;
        memcpy(xp, xd, sizeof(double) * N * IMG);
        double h = 1e-5;
        xp[at] = xd[at] + h;
        double lp = ref_loss(m, NULL, xp, sigd, i, 1);
        xp[at] = xd[at] - h;
        double lm = ref_loss(m, NULL, xp, sigd, i, 1);
        fx[k] = (lp - lm) / (2 * h);
        gx[k] = dx[at];
    }
    tu_compare("dL/dx (48 pixels) vs FD", gx, fx, NX, 2e-3);
    free(xp);

    /* dL/dsigma under three preconditioners. */
    {
        double fd[N];
        for (int i = 0; i < N; i++) {
            double s[N], h = 1e-5 * sigd[i];
            memcpy(s, sigd, sizeof s);
            s[i] = sigd[i] + h;
            double lp = ref_loss(m, NULL, xd, s, i, 1);
            s[i] = sigd[i] - h;
            double lm = ref_loss(m, NULL, xd, s, i, 1);
            fd[i] = (lp - lm) / (2 * h);
        }
        tu_compare("dL/dsigma (edm) vs FD", ds, fd, N, 2e-3);
    }
    check_sigma("vp");
    check_sigma("ve");

    /* dL/dparams: two entries of every tensor. */
    {
        int nt = m->n_tensors, ns = 2 * nt;
        double *pd = malloc(sizeof(double) * np), *fd = malloc(sizeof(double) * ns);
        float *g = malloc(sizeof(float) * ns);
        for (size_t j = 0; j < np; j++) pd[j] = m->params[j];
        for (int t = 0; t < nt; t++)
            for (int q = 0; q < 2; q++) {
                const unet_tensor_info *ti = &m->tensors[t];
                size_t at = ti->offset + (q == 0 ? ti->numel - 1 : (t * 7919u) % ti->numel);
                double h = 1e-5, keep = pd[at];
                pd[at] = keep + h;
                double lp = ref_loss(m, pd, xd, sigd, 0, N);
                pd[at] = keep - h;
                double lm = ref_loss(m, pd, xd, sigd, 0, N);
                pd[at] = keep;
                fd[2 * t + q] = (lp - lm) / (2 * h);
                g[2 * t + q] = dp[at];
            }
        double gmax = 0;
        for (int k = 0; k < ns; k++) gmax = fmax(gmax, fabs(fd[k]));
        double worst = 0;
        int wt = 0;
        for (int t = 0; t < nt; t++) {
            double e = 0, s = 1e-3 * gmax;
            for (int q = 0; q < 2; q++) {
                e = fmax(e, fabs(g[2 * t + q] - fd[2 * t + q]));
                s = fmax(s, fabs(fd[2 * t + q]));
            }
            if (e / s > worst) { worst = e / s; wt = t; }
        }
        tu_check(worst <= 2e-3, "dL/dparams, 2 entries x %d tensors vs FD: worst tensor %s rel err "
                 "%.2e (tol 2e-3)", nt, m->tensors[wt].name, worst);
        tu_compare("dL/dparams (all samples) vs FD", g, fd, ns, 2e-3);
        free(pd); free(fd); free(g);
    }
    pd_model_free(m);

    /* Dropout: backward uses the forward's masks. The float FD's noise grows with the forward's
     * rounding, and Winograd's is ~10x the direct path's (test_winograd.c); what is checked
     * here is the masks, so the direct path keeps the tolerance where it was. */
    conv_set_path(CONV_DIRECT);
    {
        pd_unet_config cd = cfg("edm", 0.3f);
        pd_model *md;
        pd_model_create(&md, &cd, 33, &err);
        unet_opts o = {.train = 1, .dropout_seed = 99, .dropout_stream = 5};
        unet_run *r;
        unet_run_create(&r, md, N, 0, 1, &err);
        float out[N * IMG], out2[N * IMG], oe[N * IMG];
        unet_denoise_forward(r, out, x, sig, lab, N, &o, &err);
        unet_denoise_forward(r, out2, x, sig, lab, N, &o, &err);
        tu_check(!memcmp(out, out2, sizeof out), "dropout: same seed, same output (bitwise)");
        unet_denoise_forward(r, oe, x, sig, lab, N, NULL, &err);
        double dd = 0;
        for (int j = 0; j < N * IMG; j++) dd = fmax(dd, fabs(out[j] - oe[j]));
        tu_check(dd > 1e-3, "dropout changes the output (max diff %.3g)", dd);
        size_t npd = pd_model_param_count(md);
        float *gdx = calloc(N * IMG, sizeof *gdx), *gdp = calloc(npd, sizeof *gdp);
        unet_denoise_forward(r, out, x, sig, lab, N, &o, &err);
        unet_denoise_backward(r, gdx, NULL, gdp, w, &err);
        /* FD of the float forward under the same masks. */
        enum { K = 12 };
        float gx2[K];
        double fx2[K];
        float *xx = malloc(sizeof x);
        for (int k = 0; k < K; k++) {
            int at = (int)((k * 2654435761u + 11) % (N * IMG));
            double L2[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                memcpy(xx, x, sizeof x);
                xx[at] += sgn ? -HX : HX;
                unet_denoise_forward(r, out2, xx, sig, lab, N, &o, &err);
                L2[sgn] = 0;
                for (int j = 0; j < N * IMG; j++) L2[sgn] += (double)w[j] * out2[j];
            }
            fx2[k] = (L2[0] - L2[1]) / (2.0 * HX);
            gx2[k] = gdx[at];
        }
        tu_compare("dropout: dL/dx vs float FD (same masks)", gx2, fx2, K, 2e-2);
        /* conv1 weights of an encoder block: their input is the dropped-out activation. */
        int t = unet_tensor_index(md, "model.enc.16x16_block0.conv1.weight");
        float gp2[K];
        double fp2[K];
        for (int k = 0; k < K; k++) {
            size_t at = md->tensors[t].offset + (k * 37) % md->tensors[t].numel;
            float keep = md->params[at];
            double L2[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                md->params[at] = keep + (sgn ? -HP : HP);
                unet_denoise_forward(r, out2, x, sig, lab, N, &o, &err);
                L2[sgn] = 0;
                for (int j = 0; j < N * IMG; j++) L2[sgn] += (double)w[j] * out2[j];
            }
            md->params[at] = keep;
            fp2[k] = (L2[0] - L2[1]) / (2.0 * HP);
            gp2[k] = gdp[at];
        }
        tu_compare("dropout: dL/d(enc block0 conv1.weight) vs float FD", gp2, fp2, K, 2e-2);
        free(xx); free(gdx); free(gdp);
        unet_run_free(r);
        pd_model_free(md);
    }
    free(dx);
    free(dp);
    return tu_finish();
}
