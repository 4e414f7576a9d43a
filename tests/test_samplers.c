/* test_samplers — samplers against exact answers on analytic data (docs/algorithms.md §S1, §S2, §S0.6).
 *
 * Gaussian data N(0.3, 0.5^2) on 8x8x1 images has a closed-form PF-ODE solution
 * (pd_gaussian_ode_exact, checked here against its formula), so Euler / DDIM(eta=0) / Heun stopping
 * at sigma_min are compared with the exact x(sigma_min) for 8..64 steps and their fitted
 * convergence orders asserted (~1, ~1, ~2). DDIM(eta=0) must be bit-identical to Euler; the step
 * into sigma = 0 must return D; NFE must match the accounting (2N-1 for EDM Heun, 2N when stopping
 * at sigma_min); Heun with churn must be deterministic and independent of the batch and thread
 * count; DDIM(eta=1) sample moments must match both the moments its discretisation implies
 * (computed here by a scalar recursion over the grid) and, with 1000 steps, the data
 * distribution. The point-set denoiser is compared with a brute-force long-double softmax. */
#include "pixdiff.h"
#include "core/rng.h"
#include "ref_sampling.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MU 0.3
#define STD 0.5

/* ---------------------------------------------------------------- tests */

static void test_gaussian_denoiser(void) {
    pd_error err;
    pd_denoiser *d;
    tu_check(pd_denoiser_analytic(&d, "analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", &err) == 0,
             "open analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1");
    tu_check(d->C == 1 && d->H == 8 && d->W == 8 && d->sigma_min == 0.002 && d->sigma_max == 80 &&
             d->sigma_data == 0.5, "  shape 1x8x8, sigma range [0.002, 80], sigma_data 0.5");
    float x[4 * 64], out[4 * 64], sig[4] = {0.01f, 0.5f, 3.0f, 80.0f};
    double ref[4 * 64];
    tu_fill(x, 4 * 64, 7, 3.0f);
    pd_denoiser_eval(d, out, x, sig, NULL, 4, &err);
    for (int b = 0; b < 4; b++)
        for (int j = 0; j < 64; j++) {
            double s = sig[b];
            ref[b * 64 + j] = MU + STD * STD / (STD * STD + s * s) * (x[b * 64 + j] - MU);
        }
    tu_compare("gaussian D = mu + s^2/(s^2+sigma^2)(x-mu)", out, ref, 4 * 64, 1e-6);
    tu_check(d->evals == 1, "  one batched call counts one eval (%lld)", d->evals);
    /* exact ODE solution: formula and the semigroup property x(a->c) = x(b->c)(x(a->b)) */
    float y[64], y2[64], y3[64];
    pd_gaussian_ode_exact(y, x, MU, STD, 80, 0.002, 64);
    double f = sqrt((0.25 + 0.002 * 0.002) / (0.25 + 6400.0));
    for (int j = 0; j < 64; j++) ref[j] = MU + f * (x[j] - MU);
    tu_compare("gaussian exact ODE 80 -> 0.002", y, ref, 64, 1e-6);
    pd_gaussian_ode_exact(y2, x, MU, STD, 80, 1.5, 64);
    pd_gaussian_ode_exact(y3, y2, MU, STD, 1.5, 0.002, 64);
    tu_compare_f("  exact ODE composes (80 -> 1.5 -> 0.002)", y3, y, 64, 1e-6);
    pd_denoiser_free(d);

    tu_check(pd_denoiser_analytic(&d, "analytic:gaussian", &err) == 0 && d->C == 3 && d->H == 32 && d->W == 32,
             "analytic:gaussian defaults: 3x32x32");
    pd_denoiser_free(d);
}

static void test_spec_errors(void) {
    struct { const char *spec, *must; } bad[] = {
        {"analytic:gaussian:foo=1", "foo"},
        {"analytic:gaussian:std=-1", "std"},
        {"analytic:gaussian:res=abc", "res"},
        {"analytic:gaussian:mu=1:mu=2", "twice"},
        {"analytic:gaussian:seed=3", "seed"},
        {"analytic:points:n=0", "'n'"},
        {"analytic:points:mu=0", "mu"},
        {"analytic:points:n=3:file=x.npy", "'n'"},
        {"analytic:points:file=/nonexistent/pts.npy", "/nonexistent/pts.npy"},
        {"analytic:cauchy", "cauchy"},
        {"analytic:gaussian:res", "res"},
        {"gaussian:mu=0", "analytic:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pd_error err = {{0}};
        pd_denoiser *d = (pd_denoiser *)1;
        int rc = pd_denoiser_analytic(&d, bad[i].spec, &err);
        tu_check(rc == -1 && d == NULL && strstr(err.msg, bad[i].must), "bad spec %-40s -> %s", bad[i].spec, err.msg);
    }
}

/* brute force: softmax over points of -|x-y|^2/(2 sigma^2) in long double */
static void points_ref(double *ref, const float *x, const float *y, int K, int dim, double sigma) {
    long double *l = malloc(K * sizeof *l), mx = -INFINITY, tot = 0;
    for (int k = 0; k < K; k++) {
        long double s = 0;
        for (int j = 0; j < dim; j++) s += ((long double)x[j] - y[k * dim + j]) * ((long double)x[j] - y[k * dim + j]);
        l[k] = -s / (2.0L * sigma * sigma);
        if (l[k] > mx) mx = l[k];
    }
    for (int k = 0; k < K; k++) tot += (l[k] = expl(l[k] - mx));
    for (int j = 0; j < dim; j++) {
        long double a = 0;
        for (int k = 0; k < K; k++) a += l[k] * y[k * dim + j];
        ref[j] = (double)(a / tot);
    }
    free(l);
}

static void test_points(void) {
    enum { K = 40, C = 2, R = 6, DIM = C * R * R, NB = 5 };
    float *y = malloc(K * DIM * sizeof *y), x[NB * DIM], out[NB * DIM];
    double ref[NB * DIM];
    tu_fill(y, K * DIM, 21, 0.9f);
    pd_error err;
    const char *path = "test_samplers_points.npy";
    int shape[4] = {K, C, R, R};
    if (pd_npy_write(path, y, shape, 4, &err)) {
        tu_check(0, "write %s: %s", path, err.msg);
        free(y);
        return;
    }
    pd_denoiser *d;
    char spec[256];
    snprintf(spec, sizeof spec, "analytic:points:file=%s", path);
    if (pd_denoiser_analytic(&d, spec, &err)) {
        tu_check(0, "open %s: %s", spec, err.msg);
        free(y);
        return;
    }
    tu_check(d->C == C && d->H == R && d->W == R, "points from file: shape %dx%dx%d", d->C, d->H, d->W);
    double sigmas[] = {80, 5, 0.7, 0.2, 0.05};
    for (int si = 0; si < 5; si++) {
        float sg[NB];
        for (int b = 0; b < NB; b++) sg[b] = (float)sigmas[si];
        /* x near point b plus noise of that sigma: the interesting, non-trivial softmax region */
        tu_fill(x, NB * DIM, 100 + si, 1.0f);
        for (int b = 0; b < NB; b++)
            for (int j = 0; j < DIM; j++) x[b * DIM + j] = y[b * DIM + j] + (float)(sigmas[si] * x[b * DIM + j]);
        pd_denoiser_eval(d, out, x, sg, NULL, NB, &err);
        for (int b = 0; b < NB; b++) points_ref(ref + b * DIM, x + b * DIM, y, K, DIM, sg[b]);
        char name[64];
        snprintf(name, sizeof name, "points D vs brute force, sigma=%g", sigmas[si]);
        tu_compare(name, out, ref, NB * DIM, 1e-5);
    }
    /* at a tiny sigma, D(y_k) = y_k */
    float sg[NB];
    for (int b = 0; b < NB; b++) sg[b] = 1e-3f;
    memcpy(x, y + 7 * DIM, NB * DIM * sizeof *x);
    pd_denoiser_eval(d, out, x, sg, NULL, NB, &err);
    tu_compare_f("points D(y_k; 1e-3) = y_k", out, x, NB * DIM, 1e-6);
    pd_denoiser_free(d);
    remove(path);
    free(y);

    /* generated points: K uniform in [-1,1] from Philox (seed, stream 0), as analytic.c states */
    tu_check(pd_denoiser_analytic(&d, "analytic:points:n=16:res=8:ch=1:seed=3", &err) == 0 && d->C == 1 && d->H == 8,
             "open analytic:points:n=16:res=8:ch=1:seed=3");
    float g[16 * 64], o[16 * 64], s16[16];
    rng_randu(g, 16 * 64, 3, 0);
    for (int i = 0; i < 16 * 64; i++) g[i] = 2 * g[i] - 1;
    for (int b = 0; b < 16; b++) s16[b] = 1e-3f;
    pd_denoiser_eval(d, o, g, s16, NULL, 16, &err);
    tu_compare_f("generated points: D(y_k; 1e-3) = y_k for all 16", o, g, 16 * 64, 1e-6);
    pd_denoiser_free(d);
}

/* least-squares slope of log err against log steps: the observed order is -slope */
static void test_convergence(void) {
    enum { N = 4, DIM = 64 };
    uint64_t seeds[N] = {1, 2, 3, 4};
    float z[N * DIM], x[N * DIM], exact[N * DIM], z80[N * DIM];
    rs_noise(z, N, DIM, seeds);
    pd_denoiser *d = rs_open_rec("analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", N * DIM);
    enum { NS = 5 };
    int steps[NS] = {8, 16, 32, 64, 128};
    struct { pd_sampler_kind k; double lo, hi; } cases[] = {
        {PD_SAMPLER_EULER, 0.85, 1.15}, {PD_SAMPLER_DDIM, 0.85, 1.15}, {PD_SAMPLER_HEUN, 1.8, 2.2}};
    pd_grid_kind grids[2] = {PD_GRID_LOGSNR, PD_GRID_KARRAS};
    for (int gi = 0; gi < 2; gi++)
        for (int c = 0; c < 3; c++) {
            double e[NS];
            for (int s = 0; s < NS; s++) {
                pd_sample_params p = rs_params(cases[c].k, grids[gi], steps[s], 0);
                memcpy(x, z, sizeof x);
                pd_sample_stats st;
                if (rs_sample(d, &p, x, seeds, N, &st)) { e[s] = NAN; continue; }
                /* the exact solution from x(80) = 80 z (as the sampler starts) to sigma_min */
                for (int j = 0; j < N * DIM; j++) z80[j] = 80.0f * z[j];
                pd_gaussian_ode_exact(exact, z80, MU, STD, 80, 0.002, N * DIM);
                e[s] = 0;
                for (int j = 0; j < N * DIM; j++) e[s] = fmax(e[s], fabs((double)x[j] - exact[j]));
            }
            /* the fitted order over 8..128 steps and the local order of the finest pair */
            double ord = rs_fit_order(steps, e, NS), last = log2(e[NS - 2] / e[NS - 1]);
            tu_check(ord >= cases[c].lo && ord <= cases[c].hi && last >= cases[c].lo && last <= cases[c].hi,
                     "%-5s %-6s stop at sigma_min: max err %.2e %.2e %.2e %.2e %.2e (8..128 steps), order %.3f, "
                     "64->128: %.3f, in [%.2f, %.2f]",
                     pd_sampler_name(cases[c].k), pd_grid_name(grids[gi]), e[0], e[1], e[2], e[3], e[4], ord, last,
                     cases[c].lo, cases[c].hi);
        }
    pd_denoiser_free(d);
}

static void test_ddim_is_euler(void) {
    enum { N = 3, DIM = 64 };
    uint64_t seeds[N] = {5, 6, 7};
    float z[N * DIM], a[N * DIM], b[N * DIM];
    rs_noise(z, N, DIM, seeds);
    pd_denoiser *d = rs_open_rec("analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", N * DIM);
    pd_grid_kind grids[3] = {PD_GRID_KARRAS, PD_GRID_DDIM_UNIFORM, PD_GRID_LOGSNR};
    for (int gi = 0; gi < 3; gi++)
        for (int end0 = 0; end0 < 2; end0++) {
            pd_sample_params pe = rs_params(PD_SAMPLER_EULER, grids[gi], 10, end0);
            pd_sample_params pdd = rs_params(PD_SAMPLER_DDIM, grids[gi], 10, end0);
            memcpy(a, z, sizeof a);
            memcpy(b, z, sizeof b);
            int ok = !rs_sample(d, &pe, a, seeds, N, NULL) && !rs_sample(d, &pdd, b, NULL, N, NULL);
            tu_check(ok && !memcmp(a, b, sizeof a), "ddim(eta=0) bit-identical to euler: %s, end_at_zero=%d",
                     pd_grid_name(grids[gi]), end0);
        }
    pd_denoiser_free(d);
}

static void test_last_step(void) {
    enum { N = 4, DIM = 64 };
    uint64_t seeds[N] = {9, 10, 11, 12};
    float z[N * DIM], x[N * DIM];
    rs_noise(z, N, DIM, seeds);
    pd_denoiser *d = rs_open_rec("analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", N * DIM);
    rs_rec *rc = d->ctx;
    pd_sampler_kind ks[3] = {PD_SAMPLER_HEUN, PD_SAMPLER_EULER, PD_SAMPLER_DDIM};
    for (int i = 0; i < 3; i++) {
        int steps = 18;
        pd_sample_params p = rs_params(ks[i], PD_GRID_KARRAS, steps, 1);
        memcpy(x, z, sizeof x);
        long long e0 = d->evals;
        pd_sample_stats st;
        int ok = !rs_sample(d, &p, x, seeds, N, &st);
        int want = ks[i] == PD_SAMPLER_HEUN ? 2 * steps - 1 : steps;
        tu_check(ok && st.nfe == want && d->evals - e0 == want && st.steps == steps,
                 "%s end_at_zero=1, %d steps: NFE %d (denoiser counted %lld, expected %d)", pd_sampler_name(ks[i]),
                 steps, st.nfe, d->evals - e0, want);
        tu_check(ok && !memcmp(x, rc->last, sizeof x), "  output equals D at the last step (bit-identical)");
    }
    pd_denoiser_free(d);
}

static void test_nfe_accounting(void) {
    enum { N = 2, DIM = 64 };
    uint64_t seeds[N] = {1, 2};
    float z[N * DIM], x[N * DIM];
    rs_noise(z, N, DIM, seeds);
    pd_denoiser *d = rs_open_rec("analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", N * DIM);
    for (int k = 0; k < PD_SAMPLER_COUNT; k++)
        for (int end0 = 0; end0 < 2; end0++)
            for (int steps = 1; steps <= 7; steps += 3) {
                pd_sample_params p = rs_params(k, pd_sampler_default_grid(k), steps, end0);
                p.eta = k == PD_SAMPLER_DDIM ? 0.5 : 0;
                p.s_churn = k == PD_SAMPLER_HEUN ? 10 : 0;
                memcpy(x, z, sizeof x);
                long long e0 = d->evals;
                pd_sample_stats st = {0};
                int ok = !rs_sample(d, &p, x, seeds, N, &st);
                int want = pd_sampler_nfe_for_steps(&p, steps);
                tu_check(ok && st.nfe == want && d->evals - e0 == want && st.seconds_total >= st.seconds_denoiser &&
                         st.seconds_denoiser >= 0,
                         "NFE accounting %-5s end_at_zero=%d steps=%d: stats %d, denoiser %lld, nfe_for_steps %d",
                         pd_sampler_name(k), end0, steps, st.nfe, d->evals - e0, want);
            }
    /* steps = 0 takes the NFE budget */
    pd_sample_params p = rs_params(PD_SAMPLER_HEUN, PD_GRID_KARRAS, 0, 1);
    p.nfe = 35;
    memcpy(x, z, sizeof x);
    pd_sample_stats st = {0};
    int ok = !rs_sample(d, &p, x, seeds, N, &st);
    tu_check(ok && st.steps == 18 && st.nfe == 35, "heun with steps=0, nfe=35 runs 18 steps, NFE 35 (got %d, %d)",
             st.steps, st.nfe);
    pd_denoiser_free(d);
}

static void test_steps_for_nfe(void) {
    struct { pd_sampler_kind k; int end0, nfe, want; } t[] = {
        {PD_SAMPLER_EULER, 1, 10, 10}, {PD_SAMPLER_EULER, 0, 1, 1}, {PD_SAMPLER_EULER, 1, 0, -1},
        {PD_SAMPLER_DDIM, 1, 7, 7},    {PD_SAMPLER_DDIM, 0, 50, 50}, {PD_SAMPLER_DDIM, 1, -2, -1},
        {PD_SAMPLER_HEUN, 1, 35, 18},  {PD_SAMPLER_HEUN, 1, 36, 18}, {PD_SAMPLER_HEUN, 1, 79, 40},
        {PD_SAMPLER_HEUN, 1, 1, 1},    {PD_SAMPLER_HEUN, 1, 2, 1},   {PD_SAMPLER_HEUN, 1, 0, -1},
        {PD_SAMPLER_HEUN, 0, 35, 17},  {PD_SAMPLER_HEUN, 0, 36, 18}, {PD_SAMPLER_HEUN, 0, 1, -1},
        {PD_SAMPLER_HEUN, 0, 2, 1},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        pd_sample_params p = rs_params(t[i].k, PD_GRID_KARRAS, 0, t[i].end0);
        int got = pd_sampler_steps_for_nfe(&p, t[i].nfe);
        printf("  steps_for_nfe(%-5s, end_at_zero=%d, nfe=%2d) = %2d (want %2d)\n", pd_sampler_name(t[i].k),
               t[i].end0, t[i].nfe, got, t[i].want);
        ok &= got == t[i].want;
    }
    tu_check(ok, "steps_for_nfe table");
    int rt = 1;
    for (int k = 0; k < PD_SAMPLER_COUNT; k++)
        for (int end0 = 0; end0 < 2; end0++)
            for (int s = 1; s <= 100; s++) {
                pd_sample_params p = rs_params(k, PD_GRID_KARRAS, 0, end0);
                int nfe = pd_sampler_nfe_for_steps(&p, s);
                rt &= pd_sampler_steps_for_nfe(&p, nfe) == s && pd_sampler_steps_for_nfe(&p, nfe - 1) == s - (s > 1 ? 1 : 2);
            }
    tu_check(rt, "steps_for_nfe(nfe_for_steps(s)) = s, and one NFE less gives s - 1 (s = 1..100, all samplers)");
    pd_sample_params p = rs_params(PD_SAMPLER_HEUN, PD_GRID_KARRAS, 0, 1);
    tu_check(pd_sampler_nfe_for_steps(&p, 18) == 35 && pd_sampler_nfe_for_steps(&p, 0) == -1,
             "nfe_for_steps(heun, 18) = 35; steps 0 -> -1");
}

static void test_churn(void) {
    enum { N = 4, DIM = 3 * 64 * 64 };
    uint64_t seeds[N] = {11, 12, 13, 14};
    float *z = malloc(N * DIM * sizeof *z), *a = malloc(N * DIM * sizeof *a), *b = malloc(N * DIM * sizeof *b);
    float *one = malloc(DIM * sizeof *one), *plain = malloc(N * DIM * sizeof *plain);
    rs_noise(z, N, DIM, seeds);
    pd_error err;
    pd_denoiser *d;
    pd_denoiser_analytic(&d, "analytic:gaussian:mu=0.3:std=0.5:res=64:ch=3", &err);
    pd_sample_params p = rs_params(PD_SAMPLER_HEUN, PD_GRID_KARRAS, 32, 1);
    p.s_churn = 40, p.s_tmin = 0.05, p.s_tmax = 50, p.s_noise = 1.003; /* EDM ImageNet-64 */
    int threads = pd_get_threads();
    pd_set_threads(2);
    memcpy(a, z, N * DIM * sizeof *a);
    memcpy(b, z, N * DIM * sizeof *b);
    int ok = !rs_sample(d, &p, a, seeds, N, NULL) && !rs_sample(d, &p, b, seeds, N, NULL);
    tu_check(ok && !memcmp(a, b, N * DIM * sizeof *a), "heun churn (S_churn 40): two runs bit-identical");
    pd_set_threads(1);
    memcpy(one, z + 2 * DIM, DIM * sizeof *one);
    ok = !rs_sample(d, &p, one, seeds + 2, 1, NULL);
    tu_check(ok && !memcmp(one, a + 2 * DIM, DIM * sizeof *one),
             "  image 2 (seed 13) alone on 1 thread = in a batch of 4 on 2 threads (bit-identical)");
    pd_set_threads(threads);
    pd_sample_params q = p;
    q.s_churn = 0;
    memcpy(plain, z, N * DIM * sizeof *plain);
    rs_sample(d, &q, plain, seeds, N, NULL);
    double diff = 0;
    for (int j = 0; j < N * DIM; j++) diff = fmax(diff, fabs(plain[j] - a[j]));
    tu_check(diff > 1e-3, "  churn changes the samples (max diff vs Alg. 1: %.3f)", diff);
    uint64_t other[N] = {11, 12, 99, 14};
    memcpy(b, z, N * DIM * sizeof *b);
    rs_sample(d, &p, b, other, N, NULL);
    tu_check(!memcmp(a, b, 2 * DIM * sizeof *a) && memcmp(a + 2 * DIM, b + 2 * DIM, DIM * sizeof *a),
             "  changing image 2's seed changes only image 2");
    memcpy(b, z, N * DIM * sizeof *b);
    pd_error e2 = {{0}};
    tu_check(pd_sample(d, &p, b, NULL, NULL, N, NULL, &e2) == -1 && strstr(e2.msg, "seed"),
             "  churn without seeds fails: %s", e2.msg);
    pd_denoiser_free(d);
    free(z), free(a), free(b), free(one), free(plain);
}

/* Mean and variance per pixel of DDIM's output for Gaussian data, by the scalar recursion the
 * sigma-form update implies (docs/algorithms.md §S1.3): x' = mu + a (x - mu) + sigma_up z with
 * a = 1 + (sigma_down - s0)/s0 (1 - c), c = s^2/(s^2 + s0^2); the step into 0 returns D. */
static void ddim_moments(const double *sig, int steps, double eta, double *mean, double *var) {
    double m = 0, v = sig[0] * sig[0];
    for (int i = 0; i < steps; i++) {
        double s0 = sig[i], s1 = sig[i + 1], c = STD * STD / (STD * STD + s0 * s0);
        if (s1 == 0) {
            m = MU + c * (m - MU), v = c * c * v;
            continue;
        }
        double up = fmin(s1, eta * sqrt(s1 * s1 * (s0 * s0 - s1 * s1) / (s0 * s0)));
        double down = sqrt(s1 * s1 - up * up), a = 1 + (down - s0) / s0 * (1 - c);
        m = MU + a * (m - MU), v = a * a * v + up * up;
    }
    *mean = m, *var = v;
}

static void test_ddim_stochastic(void) {
    enum { N = 256, DIM = 64 };
    uint64_t seeds[N];
    for (int i = 0; i < N; i++) seeds[i] = 1000 + i;
    float *z = malloc(N * DIM * sizeof *z), *x = malloc(N * DIM * sizeof *x);
    rs_noise(z, N, DIM, seeds);
    pd_error err;
    pd_denoiser *d;
    pd_denoiser_analytic(&d, "analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", &err);
    struct { pd_grid_kind g; int steps; } runs[2] = {{PD_GRID_KARRAS, 10}, {PD_GRID_LOGSNR, 1000}};
    const double cnt = (double)N * DIM;
    for (int r = 0; r < 2; r++) {
        pd_sample_params p = rs_params(PD_SAMPLER_DDIM, runs[r].g, runs[r].steps, 1);
        p.eta = 1;
        memcpy(x, z, N * DIM * sizeof *x);
        if (rs_sample(d, &p, x, seeds, N, NULL)) { tu_check(0, "ddim eta=1 run"); continue; }
        double m = 0, v = 0;
        for (int j = 0; j < N * DIM; j++) m += x[j];
        m /= cnt;
        for (int j = 0; j < N * DIM; j++) v += (x[j] - m) * (x[j] - m);
        v /= cnt - 1;
        double sig[1001], em, ev, em0, ev0;
        pd_schedule_params sp = p.sched;
        sp.sigma_min = 0.002, sp.sigma_max = 80;
        pd_sigma_grid(sig, runs[r].steps, &sp, &err);
        ddim_moments(sig, runs[r].steps, 1.0, &em, &ev);
        ddim_moments(sig, runs[r].steps, 0.0, &em0, &ev0);
        /* 5 standard errors; pixels are independent draws (isotropic denoiser, iid noise) */
        double tm = 5 * sqrt(ev / cnt), tv = 5 * ev * sqrt(2 / cnt);
        tu_check(fabs(m - em) < tm && fabs(v - ev) < tv,
                 "ddim eta=1 %s %d steps: sample mean %.4f var %.4f; discretisation implies %.4f, %.4f (tol %.4f, %.4f)",
                 pd_grid_name(runs[r].g), runs[r].steps, m, v, em, ev, tm, tv);
        if (r == 0)
            tu_check(fabs(v - ev0) > 4 * tv, "  clearly not the eta=0 (ODE) variance %.4f", ev0);
        else
            tu_check(fabs(m - MU) < tm && fabs(v - STD * STD) < tv + fabs(ev - STD * STD),
                     "  matches the data N(0.3, 0.25) (bias of 1000 ancestral steps %.4f)", ev - STD * STD);
    }
    /* the noise convention by hand: 2 steps into 0, step 0 adds sigma_up * pd_randn(seed, 1) */
    {
        pd_sample_params p = rs_params(PD_SAMPLER_DDIM, PD_GRID_KARRAS, 2, 1);
        p.eta = 1;
        memcpy(x, z, 2 * DIM * sizeof *x);
        rs_sample(d, &p, x, seeds, 2, NULL);
        double sig[3];
        pd_schedule_params sp = p.sched;
        sp.sigma_min = 0.002, sp.sigma_max = 80;
        pd_sigma_grid(sig, 2, &sp, &err);
        double s0 = sig[0], s1 = sig[1], ref[2 * DIM];
        double up = s1 * sqrt(1 - s1 * s1 / (s0 * s0)), down = sqrt(s1 * s1 - up * up);
        double c0 = STD * STD / (STD * STD + s0 * s0), c1 = STD * STD / (STD * STD + s1 * s1);
        for (int b = 0; b < 2; b++) {
            float n1[DIM];
            pd_randn(n1, DIM, seeds[b], 1);
            for (int j = 0; j < DIM; j++) {
                double x0 = s0 * z[b * DIM + j], den = MU + c0 * (x0 - MU);
                double x1 = den + down * (x0 - den) / s0 + up * n1[j];
                ref[b * DIM + j] = MU + c1 * (x1 - MU);
            }
        }
        tu_compare("ddim eta=1 by hand: step i adds noise pd_randn(seed, i+1)", x, ref, 2 * DIM, 1e-5);
    }
    pd_denoiser_free(d);
    free(z), free(x);
}

static int n_progress, abort_after;
static void on_progress(void *u, const pd_progress *pr) {
    (void)u;
    if (pr->step == n_progress + 1 && pr->steps == 10 && pr->done == pr->step && pr->total == 10 &&
        !strcmp(pr->what, "sample") && !strcmp(pr->unit, "steps"))
        n_progress = pr->step;
}
static int on_abort(void *u) { return n_progress >= abort_after; }

static void test_callbacks_and_errors(void) {
    enum { N = 2, DIM = 64 };
    uint64_t seeds[N] = {1, 2};
    float z[N * DIM], x[N * DIM];
    rs_noise(z, N, DIM, seeds);
    pd_error err;
    pd_denoiser *d;
    pd_denoiser_analytic(&d, "analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", &err);
    pd_sample_params p = rs_params(PD_SAMPLER_HEUN, PD_GRID_KARRAS, 10, 1);
    p.progress = on_progress, p.abort = on_abort;
    n_progress = 0, abort_after = 1000;
    memcpy(x, z, sizeof x);
    tu_check(!rs_sample(d, &p, x, seeds, N, NULL) && n_progress == 10, "progress called after each of 10 steps");
    n_progress = 0, abort_after = 3;
    memcpy(x, z, sizeof x);
    long long e0 = d->evals;
    memset(&err, 0, sizeof err);
    int rc = pd_sample(d, &p, x, NULL, seeds, N, NULL, &err);
    tu_check(rc == -1 && strstr(err.msg, "abort") && n_progress == 3 && d->evals - e0 == 6 && !memcmp(x, z, sizeof x),
             "abort after 3 steps: fails (%s), 6 NFE spent, x untouched", err.msg);

    struct { const char *what; pd_sample_params p; const uint64_t *seeds; } bad[6];
    for (int i = 0; i < 6; i++) bad[i].p = rs_params(PD_SAMPLER_HEUN, PD_GRID_KARRAS, 10, 1), bad[i].seeds = seeds;
    bad[0].what = "steps 0 and nfe 0", bad[0].p.steps = 0;
    bad[1].what = "heun stop at sigma_min, nfe 1", bad[1].p.steps = 0, bad[1].p.nfe = 1, bad[1].p.sched.end_at_zero = 0;
    bad[2].what = "ddim eta=1 without seeds", bad[2].p.sampler = PD_SAMPLER_DDIM, bad[2].p.eta = 1, bad[2].seeds = NULL;
    bad[3].what = "sampler kind 77", bad[3].p.sampler = (pd_sampler_kind)77;
    bad[4].what = "eta = -1", bad[4].p.sampler = PD_SAMPLER_DDIM, bad[4].p.eta = -1;
    bad[5].what = "sigma_min above the denoiser's sigma_max", bad[5].p.sched.sigma_min = 100;
    for (int i = 0; i < 6; i++) {
        memset(&err, 0, sizeof err);
        memcpy(x, z, sizeof x);
        rc = pd_sample(d, &bad[i].p, x, NULL, bad[i].seeds, N, NULL, &err);
        tu_check(rc == -1 && err.msg[0] && !memcmp(x, z, sizeof x), "error on %-40s: %s", bad[i].what, err.msg);
    }
    /* names and defaults */
    int ok = 1;
    for (int k = 0; k < PD_SAMPLER_COUNT; k++) ok &= pd_sampler_from_name(pd_sampler_name(k)) == k;
    ok &= pd_sampler_from_name("HEUN") == PD_SAMPLER_HEUN && pd_sampler_from_name("dpm") == -1;
    ok &= pd_sampler_name(PD_SAMPLER_COUNT) == NULL;
    tu_check(ok, "sampler names round-trip");
    pd_sample_params def = pd_sample_default_params();
    tu_check(def.sampler == PD_SAMPLER_HEUN && def.sched.grid == PD_GRID_KARRAS && def.steps == 18 &&
             def.sched.end_at_zero == 1 && def.eta == 0 && def.s_churn == 0 && def.s_noise == 1 &&
             pd_sampler_default_grid(PD_SAMPLER_DDIM) == PD_GRID_DDIM_UNIFORM &&
             pd_sampler_default_grid(PD_SAMPLER_EULER) == PD_GRID_KARRAS,
             "defaults: heun, karras, 18 steps, end at 0; ddim's default grid is ddim-uniform");
    /* the denoiser's range is used when sched.sigma_min/max are 0; shift_res from its H */
    double sig[19];
    pd_schedule_params sp = def.sched;
    sp.sigma_min = d->sigma_min, sp.sigma_max = d->sigma_max;
    pd_sigma_grid(sig, 18, &sp, &err);
    tu_check(def.sched.sigma_min == 0 && def.sched.sigma_max == 0 && sig[0] == 80,
             "default sigma range 0 = the denoiser's [%g, %g]", d->sigma_min, d->sigma_max);
    /* shift_res 0 -> the denoiser's H (8): base 4 doubles every sigma, like shift_res = 8 */
    {
        float a[N * DIM], b2[N * DIM], c2[N * DIM];
        pd_sample_params q = rs_params(PD_SAMPLER_EULER, PD_GRID_KARRAS, 6, 1);
        memcpy(c2, z, sizeof c2);
        rs_sample(d, &q, c2, seeds, N, NULL);
        q.sched.shift = PD_SHIFT_SCALE, q.sched.shift_base = 4, q.sched.shift_res = 0;
        memcpy(a, z, sizeof a);
        rs_sample(d, &q, a, seeds, N, NULL);
        q.sched.shift_res = 8;
        memcpy(b2, z, sizeof b2);
        rs_sample(d, &q, b2, seeds, N, NULL);
        tu_check(!memcmp(a, b2, sizeof a) && memcmp(a, c2, sizeof a),
                 "scale shift with shift_res 0 uses the denoiser's resolution (and changes the result)");
    }
    pd_denoiser_free(d);
}

int main(void) {
    test_gaussian_denoiser();
    test_spec_errors();
    test_points();
    test_convergence();
    test_ddim_is_euler();
    test_last_step();
    test_nfe_accounting();
    test_steps_for_nfe();
    test_churn();
    test_ddim_stochastic();
    test_callbacks_and_errors();
    return tu_finish();
}
