/* test_amed — the AMED samplers (docs/algorithms.md §S4.2, §S4.6): amed (AMED-Solver) and amed-plugin.
 *
 *   - with an all-zero ("constant") predictor, r = 1/2, c = a = 1, and with no predictor, amed is
 *     BIT-IDENTICAL to dpm2 (DPM-Solver-2, r = 1/2) on the analytic Gaussian (karras and vp-time
 *     grids, stopping at sigma_min and ending at 0, with and without AFS) and on a tiny random
 *     U-Net (whose feature tap is then read but has no effect);
 *   - NFE accounting: 2 steps - AFS stopping at sigma_min, 2 steps - 1 - AFS ending at 0, equal to
 *     the denoiser's own call count, for amed and amed-plugin;
 *   - with a random predictor (both heads) on the tiny U-Net, amed, amed-plugin on iPNDM and on
 *     Euler equal an independent double reference written here from the spec (feature tap via
 *     pd_denoiser_eval_features, zeros on the AFS step, per-image r, c, a, the network at a s, the
 *     iPNDM history with the intermediate directions), and an image's result is the same alone or
 *     in a batch (bitwise) although every image has its own s;
 *   - convergence order on the Gaussian (exact solution) with the neutral predictor: amed ~2
 *     (= DPM-Solver-2), plugin-euler ~1 (Euler on the merged grid), plugin-ipndm ~2 (fixed AB
 *     coefficients on the non-uniform merged grid lose the nominal order, as iPNDM's do);
 *   - pd_sample_params.trajectory (the trainer's teacher capture) reports every step's state and
 *     the last one is the returned sample;
 *   - a predictor of the wrong kind, and a U-Net sampled without an 8x8 level, fail with a message.
 */
#include "pixdiff.h"
#include "samplers/amed_predictor.h"
#include "ref_sampling.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GAUSS "analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1"

static pd_sample_params params(pd_sampler_kind k, pd_grid_kind g, int steps, int end0, int afs) {
    pd_sample_params p = pd_sample_default_params();
    p.sampler = k;
    p.sched.grid = g;
    p.sched.end_at_zero = end0;
    p.steps = steps;
    p.afs = afs;
    return p;
}

static pd_model *tiny(void) {
    pd_unet_config c;
    pd_error err;
    pd_model *m = NULL;
    if (pd_unet_config_preset(&c, "tiny", &err) || pd_model_create(&m, &c, 11, &err)) {
        printf("model: %s\n", err.msg);
        exit(1);
    }
    return m;
}

/* ---------------------------------------------------------------- 1. constant predictor == dpm2 */

static void test_equals_dpm2(pd_denoiser *d, const char *what, int n, int all_variants) {
    pd_error err;
    pd_amed_info in = rs_amed_info(PD_AMED_SOLVER, 0.01, 0.2);
    pd_amed_predictor *zero;
    pd_amed_predictor_create(&zero, &in, 0, 1, &err);
    size_t total = (size_t)n * d->C * d->H * d->W;
    float *z = malloc(total * sizeof *z), *xa = malloc(total * sizeof *xa), *xb = malloc(total * sizeof *xb);
    for (int b = 0; b < n; b++) pd_randn(z + (size_t)b * total / n, total / n, 100 + b, 0);
    pd_grid_kind grids[2] = {PD_GRID_KARRAS, PD_GRID_VP_TIME};
    int ok = 1, cases = 0;
    for (int gi = 0; gi < 2; gi++)
        for (int end0 = 0; end0 < 2; end0++)
            for (int afs = 0; afs < 2; afs++)
                for (int pred = 0; pred < 2; pred++) {
                    if (!all_variants && (gi == 0 || end0 == 1)) continue;
                    pd_sample_params pa = params(PD_SAMPLER_AMED, grids[gi], 4, end0, afs);
                    pa.amed = pred ? zero : NULL;
                    pd_sample_params pb = params(PD_SAMPLER_DPM2, grids[gi], 4, end0, afs);
                    memcpy(xa, z, total * sizeof *z);
                    memcpy(xb, z, total * sizeof *z);
                    pd_sample_stats sa, sb;
                    ok &= rs_sample(d, &pa, xa, NULL, n, &sa) == 0 && rs_sample(d, &pb, xb, NULL, n, &sb) == 0;
                    ok &= !memcmp(xa, xb, total * sizeof *xa) && sa.nfe == sb.nfe;
                    cases++;
                }
    tu_check(ok, "%s: amed with r = 1/2, c = a = 1 (zero weights and no predictor) == dpm2, bitwise "
             "(%d cases: grids, end, AFS)", what, cases);
    pd_amed_predictor_free(zero);
    free(z), free(xa), free(xb);
}

/* ---------------------------------------------------------------- 2. NFE */

static void test_nfe(void) {
    pd_error err;
    pd_denoiser *d;
    pd_denoiser_analytic(&d, GAUSS, &err);
    float x[2 * 64];
    int ok = 1;
    char tab[512];
    int len = 0;
    pd_sampler_kind ks[2] = {PD_SAMPLER_AMED, PD_SAMPLER_AMED_PLUGIN};
    for (int k = 0; k < 2; k++)
        for (int end0 = 0; end0 < 2; end0++)
            for (int afs = 0; afs < 2; afs++)
                for (int steps = 1; steps <= 5; steps += 2) {
                    pd_sample_params p = params(ks[k], pd_sampler_default_grid(ks[k]), steps, end0, afs);
                    tu_fill(x, 2 * 64, 5, 1.0f);
                    long long e0 = d->evals;
                    pd_sample_stats st = {0};
                    int want = 2 * steps - afs - end0;
                    ok &= rs_sample(d, &p, x, NULL, 2, &st) == 0 && st.nfe == want && d->evals - e0 == want &&
                          pd_sampler_nfe_for_steps(&p, steps) == want;
                    if (steps == 3)
                        len += snprintf(tab + len, sizeof tab - len, " %s/%s/%s:%d", pd_sampler_name(ks[k]),
                                        end0 ? "zero" : "min", afs ? "afs" : "-", st.nfe);
                }
    tu_check(ok, "NFE = 2 steps - AFS (- 1 ending at 0) = denoiser calls; at 3 steps:%s", tab);
    /* budgets: NFE 3/5/7/9 with AFS <-> N = 3/4/5/6 timestamps; even NFE without AFS */
    int nfes[4] = {3, 5, 7, 9}, ok2 = 1;
    for (int i = 0; i < 4; i++) {
        pd_sample_params p = params(PD_SAMPLER_AMED, PD_GRID_VP_TIME, 0, 0, 1);
        ok2 &= pd_sampler_steps_for_nfe(&p, nfes[i]) == i + 2;
        p.afs = 0;
        ok2 &= pd_sampler_steps_for_nfe(&p, nfes[i] + 1) == i + 2;
    }
    tu_check(ok2, "steps_for_nfe: NFE 3/5/7/9 with AFS and 4/6/8/10 without -> 2/3/4/5 steps");
    pd_denoiser_free(d);
}

/* ---------------------------------------------------------------- 3. independent reference */

/* D(x; sigma_b) of n images at per-image sigmas (double in, float through the denoiser), with the
 * tap into feat when feat != NULL. */
static void D(pd_denoiser *d, float *out, const double *x, const double *sig, int n, size_t dim,
              float *feat) {
    float *xin = malloc((size_t)n * dim * sizeof *xin), s[16];
    for (size_t j = 0; j < (size_t)n * dim; j++) xin[j] = (float)x[j];
    for (int b = 0; b < n; b++) s[b] = (float)sig[b];
    pd_error err;
    if (pd_denoiser_eval_features(d, out, xin, s, NULL, n, feat, &err)) printf("  eval: %s\n", err.msg);
    free(xin);
}

/* AMED by the book: kind solver / plugin-ipndm / plugin-euler, stopping at sigma_min. */
static void reference(pd_denoiser *d, const pd_amed_predictor *pred, pd_amed_kind kind,
                      const double *sig, int steps, int afs, const float *z, int n, double *x) {
    size_t dim = (size_t)d->C * d->H * d->W, tot = (size_t)n * dim;
    float *den = malloc(tot * sizeof *den), feat[16 * 64];
    double *dn = malloc(tot * sizeof *dn), *y = malloc(tot * sizeof *y), *ds = malloc(tot * sizeof *ds);
    double *hist[3];   /* most recent last: hist[nh - 1] */
    for (int q = 0; q < 3; q++) hist[q] = malloc(tot * sizeof(double));
    int nh = 0, max_order = kind == PD_AMED_PLUGIN_IPNDM ? 4 : 1;
    for (size_t j = 0; j < tot; j++) x[j] = sig[0] * (double)z[j];
    for (int i = 0; i < steps; i++) {
        double t0 = sig[i], t1 = sig[i + 1], tv[16], r[16], c[16], a[16], s[16];
        if (afs && i == 0) {
            double q = sqrt(1 + t0 * t0);
            for (size_t j = 0; j < tot; j++) den[j] = (float)(x[j] / (q * (q + t0)));
            memset(feat, 0, sizeof feat);
        } else {
            for (int b = 0; b < n; b++) tv[b] = t0;
            D(d, den, x, tv, n, dim, feat);
        }
        for (size_t j = 0; j < tot; j++) dn[j] = (x[j] - den[j]) / t0;
        pd_error err;
        pd_amed_predict(pred, d->feature_dim ? feat : NULL, n, t0, t1, r, c, a, &err);
        for (int b = 0; b < n; b++) s[b] = pow(t1, r[b]) * pow(t0, 1 - r[b]), tv[b] = a[b] * s[b];
        /* AB combination of a new direction with the history (order min(max_order, nh + 1)) */
        #define AB(dnew, j) (p == 1 ? dnew[j] \
            : p == 2 ? (3 * dnew[j] - hist[nh - 1][j]) / 2 \
            : p == 3 ? (23 * dnew[j] - 16 * hist[nh - 1][j] + 5 * hist[nh - 2][j]) / 12 \
            : (55 * dnew[j] - 59 * hist[nh - 1][j] + 37 * hist[nh - 2][j] - 9 * hist[nh - 3][j]) / 24)
        int p = nh + 1 < max_order ? nh + 1 : max_order;
        for (int b = 0; b < n; b++)
            for (size_t j = b * dim; j < (b + 1) * dim; j++) y[j] = x[j] + (s[b] - t0) * AB(dn, j);
        if (kind != PD_AMED_SOLVER) {   /* push d_n */
            if (nh == 3) memmove(hist, (double *[]){hist[1], hist[2], hist[0]}, sizeof hist);
            else nh++;
            memcpy(hist[nh - 1], dn, tot * sizeof *dn);
        }
        D(d, den, y, tv, n, dim, NULL);
        for (int b = 0; b < n; b++)
            for (size_t j = b * dim; j < (b + 1) * dim; j++) ds[j] = (y[j] - den[j]) / s[b];
        p = nh + 1 < max_order ? nh + 1 : max_order;
        for (int b = 0; b < n; b++)
            for (size_t j = b * dim; j < (b + 1) * dim; j++) {
                if (kind == PD_AMED_SOLVER) x[j] = x[j] + c[b] * (t1 - t0) * ds[j];
                else x[j] = y[j] + c[b] * (t1 - s[b]) * AB(ds, j);
            }
        if (kind != PD_AMED_SOLVER) {   /* push d_s */
            if (nh == 3) memmove(hist, (double *[]){hist[1], hist[2], hist[0]}, sizeof hist);
            else nh++;
            memcpy(hist[nh - 1], ds, tot * sizeof *ds);
        }
        #undef AB
    }
    for (int q = 0; q < 3; q++) free(hist[q]);
    free(den), free(dn), free(y), free(ds);
}

static void test_reference(pd_model *m) {
    pd_error err;
    pd_denoiser *d;
    pd_denoiser_from_model(&d, m, 0, &err);
    enum { N = 3, STEPS = 4 };
    size_t dim = 256, tot = N * dim;
    float z[N * 256], xs[N * 256];
    for (int b = 0; b < N; b++) pd_randn(z + b * dim, dim, 40 + b, 0);
    pd_amed_kind kinds[3] = {PD_AMED_SOLVER, PD_AMED_PLUGIN_IPNDM, PD_AMED_PLUGIN_EULER};
    for (int k = 0; k < 3; k++)
        for (int afs = 0; afs < 2; afs++) {
            pd_amed_info in = rs_amed_info(kinds[k], 0.3, 0.2);
            pd_amed_predictor *pred;
            pd_amed_predictor_create(&pred, &in, 5 + k, 0, &err);
            pd_sample_params p = pd_sample_default_params();
            pd_amed_sample_params(pred, &p);
            p.steps = STEPS;
            p.afs = afs;
            double sig[STEPS + 1], ref[N * 256];
            pd_schedule_params sp = p.sched;
            pd_sigma_grid(sig, STEPS, &sp, &err);
            memcpy(xs, z, sizeof z);
            int rc = rs_sample(d, &p, xs, NULL, N, NULL);
            reference(d, pred, kinds[k], sig, STEPS, afs, z, N, ref);
            char name[96];
            snprintf(name, sizeof name, "%s %s vs reference", pd_amed_kind_name(kinds[k]),
                     afs ? "(AFS)" : "(no AFS)");
            tu_compare(name, xs, ref, tot, rc ? -1 : 1e-5);
            /* the predictions really vary per image (so per-image sigmas are exercised) */
            if (k == 0 && afs == 0) {
                float feat[N * 64];
                float xin[N * 256], out[N * 256], sg[N];
                for (int b = 0; b < N; b++) sg[b] = (float)sig[1];
                for (size_t j = 0; j < tot; j++) xin[j] = z[j] * 10;
                pd_denoiser_eval_features(d, out, xin, sg, NULL, N, feat, &err);
                double r[N];
                pd_amed_predict(pred, feat, N, sig[1], sig[2], r, NULL, NULL, &err);
                tu_check(fabs(r[0] - r[1]) > 1e-6 && fabs(r[1] - r[2]) > 1e-6,
                         "  per-image r from the feature tap: %.5f %.5f %.5f", r[0], r[1], r[2]);
                /* batch independence with per-image sigmas */
                float solo[256];
                memcpy(solo, z + dim, sizeof solo);
                rs_sample(d, &p, solo, NULL, 1, NULL);
                tu_check(!memcmp(solo, xs + dim, sizeof solo), "  image 1 alone == in the batch of 3 (bitwise)");
            }
            pd_amed_predictor_free(pred);
        }
    pd_denoiser_free(d);
}

/* ---------------------------------------------------------------- 4. convergence order */

static void test_order(void) {
    pd_error err;
    pd_denoiser *d;
    pd_denoiser_analytic(&d, GAUSS, &err);
    enum { N = 4, DIM = 64 };
    float z[N * DIM], x[N * DIM], ex[N * DIM];
    for (int b = 0; b < N; b++) pd_randn(z + b * DIM, DIM, 7 + b, 0);
    for (size_t j = 0; j < N * DIM; j++) ex[j] = 80 * z[j];
    pd_gaussian_ode_exact(ex, ex, 0.3, 0.5, 80, 0.002, N * DIM);
    struct { pd_sampler_kind k; pd_amed_kind base; const char *name; double lo, hi; } cases[3] = {
        {PD_SAMPLER_AMED, PD_AMED_SOLVER, "amed (neutral = DPM-Solver-2)", 1.7, 2.5},
        {PD_SAMPLER_AMED_PLUGIN, PD_AMED_PLUGIN_EULER, "amed-plugin euler (neutral)", 0.8, 1.3},
        {PD_SAMPLER_AMED_PLUGIN, PD_AMED_PLUGIN_IPNDM, "amed-plugin ipndm (neutral)", 1.7, 2.5},
    };
    int steps[4] = {16, 32, 64, 128};
    for (int c = 0; c < 3; c++) {
        pd_amed_info in = rs_amed_info(cases[c].base, 0.01, 0);
        pd_amed_predictor *zero;
        pd_amed_predictor_create(&zero, &in, 0, 1, &err);
        double e[4];
        for (int s = 0; s < 4; s++) {
            pd_sample_params p = params(cases[c].k, PD_GRID_KARRAS, steps[s], 0, 0);
            p.amed = zero;
            memcpy(x, z, sizeof z);
            rs_sample(d, &p, x, NULL, N, NULL);
            e[s] = 0;
            for (int j = 0; j < N * DIM; j++) e[s] = fmax(e[s], fabs((double)x[j] - ex[j]));
        }
        /* least-squares slope of log e against log steps */
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (int s = 0; s < 4; s++) {
            double lx = log(steps[s]), ly = log(e[s]);
            sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
        }
        double order = -(4 * sxy - sx * sy) / (4 * sxx - sx * sx);
        tu_check(order > cases[c].lo && order < cases[c].hi,
                 "order %-30s %.2f (errors %.2e .. %.2e at 16..128 steps, karras, want %.1f..%.1f)",
                 cases[c].name, order, e[0], e[3], cases[c].lo, cases[c].hi);
        pd_amed_predictor_free(zero);
    }
    pd_denoiser_free(d);
}

/* ---------------------------------------------------------------- 5. trajectory callback */

typedef struct {
    int calls, last_step, n;
    double last[2 * 64];
} traj_rec;

static void on_traj(void *user, int step, const double *x, int n, size_t dim) {
    traj_rec *t = user;
    t->calls++;
    t->last_step = step;
    t->n = n;
    memcpy(t->last, x, sizeof(double) * (size_t)n * dim);
}

static void test_trajectory(void) {
    pd_error err;
    pd_denoiser *d;
    pd_denoiser_analytic(&d, GAUSS, &err);
    float x[2 * 64];
    tu_fill(x, 2 * 64, 3, 1.0f);
    traj_rec t = {0};
    pd_sample_params p = params(PD_SAMPLER_HEUN, PD_GRID_KARRAS, 6, 0, 0);
    p.trajectory = on_traj;
    p.user = &t;
    rs_sample(d, &p, x, NULL, 2, NULL);
    int same = 1;
    for (int j = 0; j < 2 * 64; j++) same &= x[j] == (float)t.last[j];
    tu_check(t.calls == 6 && t.last_step == 6 && t.n == 2 && same,
             "trajectory callback: %d calls for 6 steps, last = the returned sample", t.calls);
    pd_denoiser_free(d);
}

/* ---------------------------------------------------------------- 6. errors */

static void test_errors(pd_model *m) {
    pd_error err;
    pd_denoiser *g;
    pd_denoiser_analytic(&g, GAUSS, &err);
    float x[64];
    pd_amed_info in = rs_amed_info(PD_AMED_SOLVER, 0.01, 0), ip = rs_amed_info(PD_AMED_PLUGIN_IPNDM, 0.01, 0);
    pd_amed_predictor *ps, *pp;
    pd_amed_predictor_create(&ps, &in, 1, 0, &err);
    pd_amed_predictor_create(&pp, &ip, 1, 0, &err);
    pd_sample_params p = params(PD_SAMPLER_AMED_PLUGIN, PD_GRID_KARRAS, 3, 0, 0);
    p.amed = ps;
    tu_fill(x, 64, 1, 1);
    tu_check(pd_sample(g, &p, x, NULL, NULL, 1, NULL, &err) != 0, "solver predictor on amed-plugin: %s",
             err.msg);
    p.sampler = PD_SAMPLER_AMED;
    p.amed = pp;
    tu_check(pd_sample(g, &p, x, NULL, NULL, 1, NULL, &err) != 0, "plugin predictor on amed: %s", err.msg);
    pd_denoiser *up;
    pd_denoiser_from_model(&up, m, 32, &err);
    float xu[1024];
    tu_fill(xu, 1024, 2, 1);
    p.amed = ps;
    tu_check(pd_sample(up, &p, xu, NULL, NULL, 1, NULL, &err) != 0, "tiny U-Net at 32x32: %s", err.msg);
    p.amed = NULL;
    tu_check(pd_sample(up, &p, xu, NULL, NULL, 1, NULL, &err) == 0,
             "  ... the neutral predictor reads no feature and runs");
    pd_denoiser_free(up);
    pd_denoiser_free(g);
    pd_amed_predictor_free(ps);
    pd_amed_predictor_free(pp);
}

int main(void) {
    pd_set_threads(2);
    pd_error err;
    pd_denoiser *g;
    pd_denoiser_analytic(&g, GAUSS, &err);
    test_equals_dpm2(g, "Gaussian 8x8", 3, 1);
    pd_denoiser_free(g);
    pd_model *m = tiny();
    pd_denoiser *d;
    pd_denoiser_from_model(&d, m, 0, &err);
    test_equals_dpm2(d, "tiny U-Net 16x16", 2, 0);
    pd_denoiser_free(d);
    test_nfe();
    test_reference(m);
    test_order();
    test_trajectory();
    test_errors(m);
    pd_model_free(m);
    return tu_finish();
}
