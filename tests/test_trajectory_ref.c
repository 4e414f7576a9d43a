/* test_trajectory_ref.c — pd_trajectory_span and pd_trajectory_reference (samplers/trajectory.c,
 * docs/algorithms.md §S0.7) against exact answers. The span: a Karras grid into 0 ends at
 * sigma_min, one that stops at sigma_min too, a one-step grid into 0 at the two-step grid's
 * sigma_min (not its own sigma_max), a DDIM table grid starts below sigma_max at the table's
 * sigma, an SNR shift moves both ends, an NFE budget gives the steps. The reference: on Gaussian
 * data (analytic:gaussian, an exact denoiser) the probability-flow ODE has a closed form
 * (pd_gaussian_ode_exact), so "end" must be x(s_last) from the same noise (Heun's error at 1000
 * steps is far below the tolerance) and "zero" must be D(x(s_last); s_last) = mu + std^2/(std^2
 * + s_last^2)(x - mu) in double; any (first, count) split of the request gives the same bits.
 */
#include "pixdiff.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 5 };

static void span(const pd_denoiser *d, pd_sample_params p, double *a, double *b) {
    pd_error err = {{0}};
    *a = *b = NAN;
    if (pd_trajectory_span(d, &p, a, b, &err)) printf("span: %s\n", err.msg);
}

int main(void) {
    pd_error err = {{0}};
    pd_denoiser *d = NULL;
    const double mu = 0.1, std = 0.5;
    if (pd_denoiser_analytic(&d, "analytic:gaussian:mu=0.1:std=0.5:res=4:ch=2", &err))
        return printf("%s\n", err.msg), 1;
    const size_t dim = (size_t)d->C * d->H * d->W;

    /* ---- the span */
    double a, b;
    pd_sample_params p = pd_sample_default_params();
    p.sampler = PD_SAMPLER_EULER;
    p.sched.grid = PD_GRID_KARRAS;
    p.steps = 5;
    span(d, p, &a, &b);
    tu_check(a == 80 && b == 0.002, "karras into 0, 5 steps: %g .. %g (80 .. 0.002)", a, b);
    p.steps = 1;
    span(d, p, &a, &b);
    tu_check(a == 80 && b == 0.002, "karras into 0, 1 step: %g .. %g (the two-step grid's 0.002)", a, b);
    p.steps = 3;
    p.sched.end_at_zero = 0;
    span(d, p, &a, &b);
    tu_check(a == 80 && b == 0.002, "karras to sigma_min: %g .. %g", a, b);
    p.sched.end_at_zero = 1;
    p.steps = 0;
    p.nfe = 4;
    span(d, p, &a, &b);
    tu_check(a == 80 && b == 0.002, "an NFE budget instead of steps: %g .. %g", a, b);
    p.nfe = 0;
    p.steps = 4;
    p.sched.grid = PD_GRID_DDIM_UNIFORM;
    double grid[8];
    pd_schedule_params sc = p.sched;
    sc.sigma_min = 0.002, sc.sigma_max = 80;
    pd_sigma_grid(grid, 4, &sc, &err);
    span(d, p, &a, &b);
    tu_check(a == grid[0] && a < 80 && b == grid[3], "ddim-uniform: %g .. %g (its grid: %g .. %g)", a, b, grid[0], grid[3]);
    p.sched.grid = PD_GRID_KARRAS;
    p.sched.shift = PD_SHIFT_SCALE;
    p.sched.shift_base = 2;   /* the 4-px images at base 2: every sigma x 2 */
    span(d, p, &a, &b);
    tu_check(fabs(a - 160) < 1e-9 && fabs(b - 0.004) < 1e-12, "shifted x2: %g .. %g (160 .. 0.004)", a, b);
    p.sched.shift = PD_SHIFT_NONE;

    /* ---- the reference on Gaussian data, against the closed form */
    pd_generate_params gp = pd_generate_default_params();
    gp.sample = p;
    gp.sample.sched.grid = PD_GRID_LOGSNR;
    gp.sample.sched.sigma_max = 20;
    gp.sample.sched.sigma_min = 0.05;   /* a large last sigma: the final step matters */
    gp.sample.steps = 6;
    gp.seed = 11;
    gp.batch = 2;
    span(d, gp.sample, &a, &b);
    float *end = malloc(sizeof(float) * N * dim), *zero = malloc(sizeof(float) * N * dim);
    float *end2 = malloc(sizeof(float) * N * dim), *zero2 = malloc(sizeof(float) * N * dim);
    double *want_end = malloc(sizeof(double) * N * dim), *want_zero = malloc(sizeof(double) * N * dim);
    float *z = malloc(sizeof(float) * dim), *xe = malloc(sizeof(float) * dim);
    pd_sample_stats st;
    if (pd_trajectory_reference(d, &gp, 1000, 0, N, end, zero, &st, &err)) return printf("%s\n", err.msg), 1;
    tu_check(st.nfe == 2 * 1000 + 1, "NFE: 1000 Heun steps to sigma_min and the final step: %d", st.nfe);
    for (int i = 0; i < N; i++) {
        pd_randn(z, dim, gp.seed + (uint64_t)i, 0);
        for (size_t j = 0; j < dim; j++) z[j] *= (float)a;
        pd_gaussian_ode_exact(xe, z, mu, std, a, b, dim);
        double c = std * std / (std * std + b * b);
        for (size_t j = 0; j < dim; j++) {
            /* the exact state in double, from the same float noise */
            double xs = mu + sqrt((std * std + b * b) / (std * std + a * a)) * ((double)z[j] - mu);
            want_end[(size_t)i * dim + j] = xs;
            want_zero[(size_t)i * dim + j] = mu + c * (xs - mu);
        }
    }
    tu_compare("end = x(s_last), closed form", end, want_end, N * dim, 1e-4);
    tu_compare("zero = D(x(s_last); s_last)", zero, want_zero, N * dim, 1e-4);

    /* ---- any split of the request, the same bits; zero NULL skips the final step */
    if (pd_trajectory_reference(d, &gp, 1000, 0, 3, end2, zero2, NULL, &err) ||
        pd_trajectory_reference(d, &gp, 1000, 3, N - 3, end2 + 3 * dim, zero2 + 3 * dim, NULL, &err))
        return printf("%s\n", err.msg), 1;
    tu_check(!memcmp(end, end2, sizeof(float) * N * dim) && !memcmp(zero, zero2, sizeof(float) * N * dim),
             "images 0..2 and 3..4 as two requests: the same bits");
    if (pd_trajectory_reference(d, &gp, 1000, 0, N, end2, NULL, &st, &err)) return printf("%s\n", err.msg), 1;
    tu_check(st.nfe == 2000 && !memcmp(end, end2, sizeof(float) * N * dim), "zero NULL: no final step (NFE %d)", st.nfe);
    int rc = pd_trajectory_reference(d, &gp, 0, 0, N, end2, NULL, NULL, &err);
    tu_check(rc == -1 && strstr(err.msg, "steps"), "0 reference steps fail: %s", err.msg);

    free(end), free(zero), free(end2), free(zero2), free(want_end), free(want_zero), free(z), free(xe);
    pd_denoiser_free(d);
    return tu_finish();
}
