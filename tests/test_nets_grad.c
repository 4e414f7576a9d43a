/* test_nets_grad — NCSN++ and DhariwalUNet (ADM), and the iDDPM preconditioner, against the
 * independent double-precision reference (tests/ref_songunet.c), forward and backward, on small
 * random configurations with every weight random (pd_model_create: nothing zero-initialised; the
 * Fourier freqs N(0, 16²)).
 *
 *   NCSN++: 3 channels, 16x16, model_channels 8, channel_mult [1,2], Fourier embedding
 *     (channel_mult_noise 2), residual encoder, resample_filter [1,3,3,1], attention at 8x8,
 *     label_dim 3, EDM preconditioning.
 *   ADM: 3 channels, 8x8, model_channels 16, channel_mult [1,4] (64 channels = 1 head at 4x4),
 *     attention at 4x4, label_dim 3, EDM preconditioning; and the same net unconditional with
 *     iDDPM preconditioning (6 output channels).
 * Loss L = Σ w ⊙ D(x; σ, label), batch 2 (σ 0.4 and 3). Forward: per image max|D − D_ref| /
 * max|D_ref| <= 1e-5. Backward against central differences of the reference (step 1e-5): dL/dx at
 * 24 pixels and dL/dσ, tu_compare <= 2e-3; dL/dθ at one entry of every tensor (the last or an
 * inner one, alternating), |g − fd| / |fd| (floored at 1e-3 of the largest FD) <= 2e-3. The freqs buffer gets no
 * gradient (it is not a parameter).
 */
#include "pixdiff.h"
#include "ref_songunet.h"
#include "testutil.h"
#include "unet/songunet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 2
#define LD 3

static pd_unet_config base(int res, int mc, int attn) {
    pd_unet_config c = pd_unet_config_default();
    c.in_channels = c.out_channels = 3;
    c.model_channels = mc;
    c.n_levels = 2;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    c.channel_mult[0] = 1;
    c.channel_mult[1] = 2;
    c.num_blocks = 1;
    c.img_resolution = res;
    c.attn_resolutions[0] = attn;
    c.n_attn = 1;
    c.label_dim = LD;
    c.dropout = 0;
    return c;
}

typedef struct {
    const pd_model *m;
    int img;
    const double *x, *w, *lab;
} prob;

static double ref_loss(const prob *p, const double *params, const double *xx, const double *s,
                       int i0, int n) {
    double *out = malloc(sizeof(double) * N * p->img);
    ref_opts o = {.params = params};
    if (ref_denoise(p->m, out, xx + (size_t)i0 * p->img, s + i0,
                    p->lab ? p->lab + i0 * LD : NULL, n, &o))
        printf("reference failed\n");
    double L = 0;
    for (int j = 0; j < n * p->img; j++) L += p->w[i0 * p->img + j] * out[j];
    free(out);
    return L;
}

static void check(const char *tag, const pd_unet_config *c, int cond, uint64_t seed) {
    pd_model *m;
    pd_error err;
    if (pd_model_create(&m, c, seed, &err)) { tu_check(0, "%s: %s", tag, err.msg); return; }
    int H = c->img_resolution, img = c->in_channels * H * H;
    size_t np = m->n_params;
    float *x = malloc(sizeof(float) * N * img), *w = malloc(sizeof(float) * N * img);
    float *out = malloc(sizeof(float) * N * img), lab[N * LD], sig[N] = {0.4f, 3.0f};
    double *xd = malloc(sizeof(double) * N * img), *wd = malloc(sizeof(double) * N * img);
    double *ref = malloc(sizeof(double) * N * img), labd[N * LD], sigd[N];
    tu_fill(x, N * img, seed + 1, 1.5f);
    tu_fill(w, N * img, seed + 2, 1.0f);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < LD; k++) lab[i * LD + k] = labd[i * LD + k] = k == i;
    for (int j = 0; j < N * img; j++) { xd[j] = x[j]; wd[j] = w[j]; }
    for (int i = 0; i < N; i++) sigd[i] = sig[i];
    prob p = {m, img, xd, wd, cond ? labd : NULL};

    /* Forward. */
    unet_run *r;
    float *dx = calloc(N * img, sizeof(float)), ds[N] = {0}, *dp = calloc(np, sizeof(float));
    int ok = !unet_run_create(&r, m, N, 0, 1, &err) &&
             !unet_denoise_forward(r, out, x, sig, cond ? lab : NULL, N, NULL, &err) &&
             !unet_denoise_backward(r, dx, ds, dp, w, &err);
    tu_check(ok, "%s: forward + backward run %s", tag, ok ? "" : err.msg);
    if (!ok) return;
    unet_run_free(r);
    ref_opts ro = {.round_c_noise = 1};
    ref_denoise(m, ref, xd, sigd, cond ? labd : NULL, N, &ro);
    for (int i = 0; i < N; i++) {
        double e = 0, s = 0;
        for (int j = 0; j < img; j++) {
            e = fmax(e, fabs(out[i * img + j] - ref[i * img + j]));
            s = fmax(s, fabs(ref[i * img + j]));
        }
        tu_check(e / s <= 1e-5, "%s: forward vs double reference, sigma %g: %.2e", tag,
                 (double)sig[i], e / s);
    }

    /* dL/dx at 24 pixels. */
    enum { NX = 24 };
    float gx[NX];
    double fx[NX], *xp = malloc(sizeof(double) * N * img);
    for (int k = 0; k < NX; k++) {
        int i = k % N, j = (int)((k * 2654435761u) % img);
        size_t at = (size_t)i * img + j;
        memcpy(xp, xd, sizeof(double) * N * img);
        double h = 1e-5;
        xp[at] = xd[at] + h;
        double lp = ref_loss(&p, NULL, xp, sigd, i, 1);
        xp[at] = xd[at] - h;
        double lm = ref_loss(&p, NULL, xp, sigd, i, 1);
        fx[k] = (lp - lm) / (2 * h);
        gx[k] = dx[at];
    }
    char name[128];
    snprintf(name, sizeof name, "%s: dL/dx (24 pixels) vs FD", tag);
    tu_compare(name, gx, fx, NX, 2e-3);
    free(xp);

    /* dL/dsigma. */
    double fd[N];
    for (int i = 0; i < N; i++) {
        double s[N], h = 1e-5 * sigd[i];
        memcpy(s, sigd, sizeof s);
        s[i] = sigd[i] + h;
        double lp = ref_loss(&p, NULL, xd, s, i, 1);
        s[i] = sigd[i] - h;
        double lm = ref_loss(&p, NULL, xd, s, i, 1);
        fd[i] = (lp - lm) / (2 * h);
    }
    snprintf(name, sizeof name, "%s: dL/dsigma vs FD", tag);
    tu_compare(name, ds, fd, N, 2e-3);

    /* dL/dparams: one entry of every tensor. */
    int nt = m->n_tensors, ns = nt;
    double *pd = malloc(sizeof(double) * np), *fdp = malloc(sizeof(double) * ns);
    float *g = malloc(sizeof(float) * ns);
    for (size_t j = 0; j < np; j++) pd[j] = m->params[j];
    for (int t = 0; t < nt; t++) {
        const unet_tensor_info *ti = &m->tensors[t];
        size_t at = ti->offset + (t % 2 == 0 ? ti->numel - 1 : (t * 7919u) % ti->numel);
        double h = 1e-5, keep = pd[at];
        pd[at] = keep + h;
        double lp = ref_loss(&p, pd, xd, sigd, 0, N);
        pd[at] = keep - h;
        double lm = ref_loss(&p, pd, xd, sigd, 0, N);
        pd[at] = keep;
        fdp[t] = (lp - lm) / (2 * h);
        g[t] = dp[at];
    }
    double gmax = 0, worst = 0;
    int wt = 0;
    for (int k = 0; k < ns; k++) gmax = fmax(gmax, fabs(fdp[k]));
    for (int t = 0; t < nt; t++) {
        double e = fabs(g[t] - fdp[t]) / fmax(1e-3 * gmax, fabs(fdp[t]));
        if (e > worst) { worst = e; wt = t; }
    }
    tu_check(worst <= 2e-3, "%s: dL/dparams, one entry x %d tensors vs FD: worst %s %.2e", tag, nt,
             m->tensors[wt].name, worst);
    free(pd); free(fdp); free(g);
    free(x); free(w); free(out); free(xd); free(wd); free(ref); free(dx); free(dp);
    pd_model_free(m);
}

int main(void) {
    pd_set_threads(2);
    pd_unet_config c = base(16, 8, 8);
    snprintf(c.embedding_type, sizeof c.embedding_type, "fourier");
    snprintf(c.encoder_type, sizeof c.encoder_type, "residual");
    c.channel_mult_noise = 2;
    c.n_resample_filter = 4;
    c.resample_filter[0] = c.resample_filter[3] = 1;
    c.resample_filter[1] = c.resample_filter[2] = 3;
    check("ncsnpp", &c, 1, 40);

    c = base(8, 16, 4);
    c.channel_mult[1] = 4;
    snprintf(c.arch, sizeof c.arch, "adm");
    check("adm", &c, 1, 50);
    c.label_dim = 0;
    snprintf(c.precond, sizeof c.precond, "iddpm");
    c.out_channels = 6;
    check("adm iddpm", &c, 0, 60);
    return tu_finish();
}
