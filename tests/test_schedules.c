/* test_schedules — every sigma grid against its closed form, evaluated here independently in
 * double / long double (docs/algorithms.md §S0.5, docs/algorithms.md §M3): karras, logsnr (equal ratios), vp-time
 * (beta fit solved by Cramer's rule), ddim-uniform / ddim-quad (DDPM linear-beta abar table as a
 * direct product), cosine (lambda range and uniform t); the end conventions (EDM: steps nonzero
 * sigmas + 0; AMED: steps + 1 sigmas down to sigma_min); strict monotonicity; the SNR shift
 * (scale multiplies by d/base; interp equals each shifted schedule at the t endpoints and the
 * geometric blend between); the noise schedules of schedules/noise.h (VP values from
 * docs/algorithms.md §M3.8, the iDDPM cosine table equal to EDM's u table reversed, cosine round trips); name tables;
 * and that bad inputs fail. */
#include "pixdiff.h"
#include "schedules/noise.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 2048

/* max relative error of got vs ref (both double), printed, failing above tol */
static void cmp_d(const char *name, const double *got, const double *ref, int n, double tol) {
    double m = 0;
    for (int i = 0; i < n; i++) {
        double e = ref[i] == 0 ? fabs(got[i]) : fabs(got[i] - ref[i]) / fabs(ref[i]);
        if (isnan(got[i]) || isnan(e)) e = INFINITY;
        if (e > m) m = e;
    }
    tu_check(m <= tol, "%-46s max rel err %.3e (tol %.0e)", name, m, tol);
}

static pd_schedule_params sched(pd_grid_kind g, double smin, double smax, int end0) {
    pd_schedule_params p = pd_schedule_default_params();
    p.grid = g;
    p.sigma_min = smin;
    p.sigma_max = smax;
    p.end_at_zero = end0;
    return p;
}

static int grid(double *s, int steps, const pd_schedule_params *p) {
    pd_error err = {{0}};
    int rc = pd_sigma_grid(s, steps, p, &err);
    if (rc) printf("  unexpected error: %s\n", err.msg);
    return rc;
}

/* ---------------------------------------------------------------- closed forms */

static void test_names(void) {
    int ok = 1;
    for (int k = 0; k < PD_GRID_COUNT; k++) ok &= pd_grid_from_name(pd_grid_name(k)) == k;
    for (int k = 0; k < PD_SHIFT_COUNT; k++) ok &= pd_shift_from_name(pd_shift_name(k)) == k;
    ok &= pd_grid_from_name("DDIM_Uniform") == PD_GRID_DDIM_UNIFORM;
    ok &= pd_grid_from_name("vp_time") == PD_GRID_VP_TIME;
    ok &= pd_grid_from_name("karras7") == -1 && pd_grid_from_name("") == -1 && pd_grid_from_name(NULL) == -1;
    ok &= pd_shift_from_name("interp") == PD_SHIFT_INTERP && pd_shift_from_name("shift") == -1;
    ok &= pd_grid_name(PD_GRID_COUNT) == NULL && pd_shift_name(PD_SHIFT_COUNT) == NULL;
    ok &= !strcmp(pd_grid_name(PD_GRID_VP_TIME), "vp-time");
    tu_check(ok, "grid/shift name tables round-trip, unknown -> -1");
    pd_schedule_params p = pd_schedule_default_params();
    tu_check(p.grid == PD_GRID_KARRAS && p.sigma_min == 0.002 && p.sigma_max == 80 && p.end_at_zero == 1 &&
             p.shift == PD_SHIFT_NONE && p.rho <= 0,
             "default schedule: karras, [0.002, 80], end at zero, no shift");
}

static void test_karras(void) {
    double s[MAXN], r[MAXN], s7[MAXN];
    for (int end0 = 1; end0 >= 0; end0--) {
        for (int ti = 0; ti < 2; ti++) {
            double rho = ti ? 3.0 : 7.0;
            int steps = end0 ? 18 : 10, m = end0 ? steps : steps + 1;
            pd_schedule_params p = sched(PD_GRID_KARRAS, 0.002, 80, end0);
            p.rho = ti ? 3.0 : 0.0; /* 0 -> default 7 */
            if (grid(s, steps, &p)) { tu_check(0, "karras grid"); continue; }
            for (int i = 0; i < m; i++)
                r[i] = pow(pow(80, 1 / rho) + (double)i / (m - 1) * (pow(0.002, 1 / rho) - pow(80, 1 / rho)), rho);
            if (end0) r[steps] = 0;
            char name[96];
            snprintf(name, sizeof name, "karras rho=%g end_at_zero=%d steps=%d", rho, end0, steps);
            cmp_d(name, s, r, steps + 1, 1e-12);
            tu_check(s[0] == 80 && s[m - 1] == 0.002 && (!end0 || s[steps] == 0),
                     "  endpoints exactly sigma_max=%g, sigma_min=%g%s", s[0], s[m - 1], end0 ? ", then 0" : "");
        }
    }
    pd_schedule_params p = sched(PD_GRID_KARRAS, 0.002, 80, 1);
    p.rho = 7;
    grid(s7, 18, &p);
    p.rho = 0;
    grid(s, 18, &p);
    tu_check(!memcmp(s, s7, 19 * sizeof *s), "karras rho <= 0 is rho = 7 (bit-identical)");
    p.rho = -3;
    grid(s, 18, &p);
    tu_check(!memcmp(s, s7, 19 * sizeof *s), "karras rho < 0 is rho = 7 too");
}

static void test_logsnr(void) {
    double s[MAXN];
    for (int end0 = 1; end0 >= 0; end0--) {
        int steps = 12, m = end0 ? steps : steps + 1;
        pd_schedule_params p = sched(PD_GRID_LOGSNR, 0.002, 80, end0);
        if (grid(s, steps, &p)) { tu_check(0, "logsnr grid"); continue; }
        double r0 = pow(0.002 / 80, 1.0 / (m - 1)), m_err = 0;
        for (int i = 0; i + 1 < m; i++) m_err = fmax(m_err, fabs(s[i + 1] / s[i] - r0) / r0);
        tu_check(m_err < 1e-12 && s[0] == 80 && s[m - 1] == 0.002 && (!end0 || s[steps] == 0),
                 "logsnr end_at_zero=%d: equal ratios (max rel dev %.2e from (smin/smax)^(1/%d)), exact endpoints",
                 end0, m_err, m - 1);
    }
}

/* beta_d, beta_min from sigma(1) = smax, sigma(eps) = smin: the 2x2 linear system in
 * (beta_d, beta_min) [1/2, 1; eps^2/2, eps] [bd; bm] = [ln(1+smax^2); ln(1+smin^2)], by Cramer. */
static void vp_fit_cramer(double smin, double smax, double eps, double *bd, double *bm) {
    double a11 = 0.5, a12 = 1, a21 = 0.5 * eps * eps, a22 = eps;
    double b1 = log(1 + smax * smax), b2 = log(1 + smin * smin);
    double det = a11 * a22 - a12 * a21;
    *bd = (b1 * a22 - a12 * b2) / det;
    *bm = (a11 * b2 - a21 * b1) / det;
}

static void test_vp_time(void) {
    double s[MAXN], r[MAXN];
    for (int ri = 0; ri < 2; ri++) {
        double rho = ri ? 2.0 : 1.0;
        int steps = 10, m = steps + 1;
        pd_schedule_params p = sched(PD_GRID_VP_TIME, 0.002, 80, 0);
        p.rho = ri ? 2.0 : 0.0; /* 0 -> default 1 */
        if (grid(s, steps, &p)) { tu_check(0, "vp-time grid"); continue; }
        double bd, bm, eps = 1e-3;
        vp_fit_cramer(0.002, 80, eps, &bd, &bm);
        for (int i = 0; i < m; i++) {
            double t = pow(1 + (double)i / (m - 1) * (pow(eps, 1 / rho) - 1), rho);
            r[i] = sqrt(exp(0.5 * bd * t * t + bm * t) - 1);
        }
        char name[96];
        snprintf(name, sizeof name, "vp-time rho=%g (end_at_zero=0, 10 steps)", rho);
        cmp_d(name, s, r, m, 1e-9);
        tu_check(s[0] == 80 && s[m - 1] == 0.002 && fabs(r[0] / 80 - 1) < 1e-12 && fabs(r[m - 1] / 0.002 - 1) < 1e-9,
                 "  fitted VP hits sigma(1)=%.12g, sigma(eps_s)=%.12g", r[0], r[m - 1]);
    }
    pd_schedule_params p = sched(PD_GRID_VP_TIME, 0.002, 80, 1);
    double a[MAXN], b[MAXN];
    grid(a, 10, &p);
    p.rho = 2;
    grid(b, 10, &p);
    tu_check(a[10] == 0 && b[10] == 0 && a[5] != b[5], "vp-time end at zero; rho=2 differs from rho=1");
}

/* DDPM linear-beta table (docs/algorithms.md §M3.5) as a direct product in long double. */
static void ddpm_table(double *sig) {
    long double abar = 1;
    for (int i = 1; i <= 1000; i++) {
        long double beta = 1e-4L + (0.02L - 1e-4L) * (i - 1) / 999.0L;
        abar *= 1 - beta;
        sig[i - 1] = (double)sqrtl((1 - abar) / abar);
    }
}

static void test_ddim(void) {
    double tab[1000], s[MAXN], r[MAXN];
    ddpm_table(tab);
    tu_check(fabs(tab[0] - 0.0100005) < 1e-6 && fabs(tab[999] - 157.4) < 0.1,
             "DDPM table sigma(0)=%.7f sigma(999)=%.3f (docs/algorithms.md §M3.5: 0.0100, 157.4)", tab[0], tab[999]);
    /* the whole table inside the range: exactly the DDIM paper's index grids */
    {
        int S = 10;
        pd_schedule_params p = sched(PD_GRID_DDIM_UNIFORM, 0.005, 200, 1);
        if (!grid(s, S, &p)) {
            for (int i = 0; i < S; i++) r[S - 1 - i] = tab[i * 100]; /* tau = 0, 100, ..., 900 */
            r[S] = 0;
            cmp_d("ddim-uniform S=10, T=1000: tau = 0,100..900", s, r, S + 1, 1e-10);
        } else tu_check(0, "ddim-uniform grid");
        p.grid = PD_GRID_DDIM_QUAD;
        if (!grid(s, S, &p)) {
            int taus[10] = {0, 9, 39, 88, 158, 246, 355, 483, 632, 800}; /* floor((i sqrt(800)/9)^2) */
            for (int i = 0; i < S; i++) r[S - 1 - i] = tab[taus[i]];
            r[S] = 0;
            cmp_d("ddim-quad S=10, T=1000: tau = 0,9,39,..,632,800", s, r, S + 1, 1e-10);
        } else tu_check(0, "ddim-quad grid");
        p.grid = PD_GRID_DDIM_UNIFORM;
        p.end_at_zero = 0;
        if (!grid(s, 7, &p)) { /* 8 timestamps: k = 125 */
            for (int i = 0; i < 8; i++) r[7 - i] = tab[i * 125];
            cmp_d("ddim-uniform end_at_zero=0, 7 steps: 8 indices, k=125", s, r, 8, 1e-10);
        } else tu_check(0, "ddim-uniform end_at_zero=0");
    }
    /* EDM's range: only the table part inside [0.002, 80] is used, j0 = 0, T' = count */
    {
        int teff = 0;
        for (int j = 0; j < 1000; j++) teff += tab[j] >= 0.002 && tab[j] <= 80;
        int S = 20, k = teff / S;
        pd_schedule_params p = sched(PD_GRID_DDIM_UNIFORM, 0.002, 80, 1);
        if (!grid(s, S, &p)) {
            for (int i = 0; i < S; i++) r[S - 1 - i] = tab[i * k];
            r[S] = 0;
            char name[96];
            snprintf(name, sizeof name, "ddim-uniform in [0.002,80]: T'=%d, k=%d", teff, k);
            cmp_d(name, s, r, S + 1, 1e-10);
            tu_check(s[0] <= 80, "  top sigma %.4f <= sigma_max (no clamping onto sigma_max)", s[0]);
        } else tu_check(0, "ddim-uniform restricted");
        /* quad with repeated indices pushed up: 100 steps, strictly increasing table indices */
        p.grid = PD_GRID_DDIM_QUAD;
        int S2 = 100, ok = !grid(s, S2, &p);
        for (int i = 0; ok && i < S2 - 1; i++) ok &= s[i] > s[i + 1];
        int last = ok ? S2 - 1 : 0;
        tu_check(ok && s[last] == tab[0] && s[last - 1] == tab[1] && s[last - 2] == tab[2],
                 "ddim-quad 100 steps: no repeated sigma; smallest are table 0, 1, 2");
    }
}

static void test_cosine(void) {
    const double a0 = atan(exp(-7.5)), a1 = atan(exp(7.5));
    double s[MAXN];
    /* the whole truncated range inside [sigma_min, sigma_max]: lambda from -15 to 15, t uniform */
    for (int end0 = 1; end0 >= 0; end0--) {
        int steps = 16, m = end0 ? steps : steps + 1;
        pd_schedule_params p = sched(PD_GRID_COSINE, 1e-4, 5000, end0);
        if (grid(s, steps, &p)) { tu_check(0, "cosine grid"); continue; }
        double me = 0;
        for (int i = 0; i < m; i++) {
            double t = 1 - (double)i / (m - 1);
            double lam = -2 * log(tan(a0 + t * (a1 - a0)));
            me = fmax(me, fabs(-2 * log(s[i]) - lam));
        }
        tu_check(fabs(-2 * log(s[0]) + 15) < 1e-9 && fabs(-2 * log(s[m - 1]) - 15) < 1e-9 && me < 1e-9 &&
                 (!end0 || s[steps] == 0),
                 "cosine full range end_at_zero=%d: lambda %.6f .. %.6f, uniform t (max |dlambda| %.1e)", end0,
                 -2 * log(s[0]), -2 * log(s[m - 1]), me);
    }
    /* EDM's range: t from t(80) to t(0.002), endpoints exact, lambda inside [-15, 15] */
    {
        int steps = 20, m = steps;
        pd_schedule_params p = sched(PD_GRID_COSINE, 0.002, 80, 1);
        if (!grid(s, steps, &p)) {
            double thi = (atan(80.0) - a0) / (a1 - a0), tlo = (atan(0.002) - a0) / (a1 - a0), me = 0;
            for (int i = 1; i < m - 1; i++) {
                double t = thi + (double)i / (m - 1) * (tlo - thi);
                me = fmax(me, fabs(s[i] / tan(a0 + t * (a1 - a0)) - 1));
            }
            tu_check(s[0] == 80 && s[m - 1] == 0.002 && me < 1e-12,
                     "cosine in [0.002,80]: exact endpoints, t uniform in [%.5f, %.5f] (max rel %.1e)", tlo, thi, me);
        } else tu_check(0, "cosine restricted");
        /* fine grids never repeat sigma_max (value clipping would from ~132 steps) */
        int ok = !grid(s, 400, &p);
        for (int i = 0; ok && i < 399; i++) ok &= s[i] > s[i + 1];
        tu_check(ok, "cosine 400 steps strictly decreasing");
    }
}

/* The noise schedules themselves (docs/algorithms.md §M3): published values and cross-checks. */
static void test_noise_schedules(void) {
    double v0 = noise_vp_sigma(1e-5, NOISE_VP_BETA_D, NOISE_VP_BETA_MIN),
           v1 = noise_vp_sigma(1, NOISE_VP_BETA_D, NOISE_VP_BETA_MIN);
    double rt = 0;
    for (int i = 0; i <= 20; i++) {
        double t = 1e-5 + i * (1 - 1e-5) / 20;
        rt = fmax(rt, fabs(noise_vp_time(noise_vp_sigma(t, 19.9, 0.1), 19.9, 0.1) / t - 1));
    }
    tu_check(fabs(v0 / 0.0010005 - 1) < 1e-4 && fabs(v1 / 152.17 - 1) < 1e-4 && rt < 1e-9,
             "VP: sigma(1e-5) = %.7f, sigma(1) = %.3f (docs/algorithms.md §M3.8: 0.0010005, 152.17), t(sigma(t)) rel err %.1e",
             v0, v1, rt);
    double tab[1000], ref[1000];
    noise_ddpm_linear_sigmas(tab, 1000);
    ddpm_table(ref);
    cmp_d("DDPM linear-beta sigmas vs direct long double product", tab, ref, 1000, 1e-12);
    /* iDDPM cosine (betas clipped) and EDM's iDDPMPrecond u table are the same table reversed:
     * abar_EDM(j) = sin^2(pi j/(2M(1+C2))) = f(M - j) and the C1 clip is the 0.999 beta clip. */
    double ic[1000], u[1001], ur[1000];
    noise_iddpm_cosine_sigmas(ic, 1000);
    noise_iddpm_u_table(u, 1000);
    for (int j = 0; j < 1000; j++) ur[j] = u[999 - j];
    cmp_d("iDDPM cosine sigmas = EDM u table reversed", ic, ur, 1000, 1e-9);
    double abar_t = 1 / (1 + ic[999] * ic[999]);
    tu_check(fabs(ic[0] - 0.0064) < 5e-5 && fabs(abar_t / 2.4e-9 - 1) < 0.02 && u[1000] == 0,
             "  sigma(t=1) = %.5f (~0.0064), abar_T = %.3e (~2.4e-9), u_M = 0 (docs/algorithms.md §M3.6)", ic[0], abar_t);
    double ct = 0;
    for (int i = 0; i <= 10; i++)
        ct = fmax(ct, fabs(noise_cosine_time(noise_cosine_sigma(i / 10.0)) - i / 10.0));
    tu_check(fabs(-2 * log(noise_cosine_sigma(0)) - 15) < 1e-9 &&
             fabs(-2 * log(noise_cosine_sigma(1)) + 15) < 1e-9 && ct < 1e-12, "truncated cosine: lambda(0) = 15, lambda(1) = -15, t(sigma(t)) = t (err %.1e)", ct);
}

/* ---------------------------------------------------------------- conventions */

static void test_monotone(void) {
    int steps_list[] = {1, 2, 3, 7, 18, 64, 256};
    int bad = 0, total = 0;
    for (int g = 0; g < PD_GRID_COUNT; g++)
        for (int end0 = 0; end0 < 2; end0++)
            for (size_t si = 0; si < sizeof steps_list / sizeof *steps_list; si++) {
                int steps = steps_list[si], m = end0 ? steps : steps + 1;
                double s[MAXN];
                s[steps + 1] = -12345.0; /* sentinel: nothing written past sigmas[steps] */
                pd_schedule_params p = sched(g, 0.002, 80, end0);
                int ok = !grid(s, steps, &p);
                for (int i = 0; ok && i < m; i++) ok &= s[i] > 0 && s[i] <= 80 && s[i] >= 0.002 && (i == 0 || s[i] < s[i - 1]);
                int table = g == PD_GRID_DDIM_UNIFORM || g == PD_GRID_DDIM_QUAD;
                if (ok && !table) ok &= s[0] == 80 && (m == 1 || s[m - 1] == 0.002);
                if (ok && end0) ok &= s[steps] == 0;
                ok &= s[steps + 1] == -12345.0;
                total++;
                if (!ok) {
                    bad++;
                    printf("  %s end_at_zero=%d steps=%d: not a valid grid\n", pd_grid_name(g), end0, steps);
                }
            }
    tu_check(bad == 0, "%d grids (6 kinds x 2 ends x 7 step counts): strictly decreasing in range, "
             "end = 0 / sigma_min, steps+1 values", total);
}

static void test_shift(void) {
    double a[MAXN], b[MAXN], r[MAXN];
    for (int end0 = 1; end0 >= 0; end0--)
        for (int g = 0; g < PD_GRID_COUNT; g++) {
            int steps = 12;
            pd_schedule_params p = sched(g, 0.002, 80, end0);
            if (grid(a, steps, &p)) continue;
            p.shift = PD_SHIFT_SCALE;
            p.shift_res = 64;
            p.shift_base = 32;
            if (grid(b, steps, &p)) { tu_check(0, "scale shift grid"); continue; }
            for (int i = 0; i <= steps; i++) r[i] = a[i] * 64 / 32;
            char name[96];
            snprintf(name, sizeof name, "scale shift d=64 base=32 (x2): %s end_at_zero=%d", pd_grid_name(g), end0);
            cmp_d(name, b, r, steps + 1, 1e-15);
        }
    /* interp on the full-range cosine grid, where t_i = 1 - i/(m-1) exactly:
     * factor (d/base)^t (d/base_low)^(1-t); d = 512, base = 256 (x2), base_low = 32 (x16) */
    {
        int steps = 10, m = steps + 1;
        pd_schedule_params p = sched(PD_GRID_COSINE, 1e-4, 5000, 0);
        grid(a, steps, &p);
        p.shift = PD_SHIFT_INTERP;
        p.shift_res = 512;
        p.shift_base = 256;
        p.shift_base_low = 32;
        if (!grid(b, steps, &p)) {
            tu_check(fabs(b[0] / (a[0] * 2) - 1) < 1e-12 && fabs(b[m - 1] / (a[m - 1] * 16) - 1) < 1e-12,
                     "interp at t=1 equals shift(base=256): x%.6f; at t=0 equals shift(base_low=32): x%.6f",
                     b[0] / a[0], b[m - 1] / a[m - 1]);
            for (int i = 0; i < m; i++) {
                double t = 1 - (double)i / (m - 1);
                /* lambda_interp = t lambda_shift(256) + (1 - t) lambda_shift(32), docs/algorithms.md §M3.4 */
                double lam = -2 * log(a[i]);
                double li = t * (lam + 2 * log(256.0 / 512)) + (1 - t) * (lam + 2 * log(32.0 / 512));
                r[i] = exp(-li / 2);
            }
            cmp_d("interp = t*lambda_shift(256) + (1-t)*lambda_shift(32)", b, r, m, 1e-9);
        } else tu_check(0, "interp grid");
        /* with base = d it is k-diffusion's form: no shift at t = 1 */
        p.shift_base = 512;
        if (!grid(b, steps, &p))
            tu_check(fabs(b[0] / a[0] - 1) < 1e-12 && fabs(b[m - 1] / a[m - 1] - 16) < 1e-9,
                     "interp with base = d: x%.6f at t=1, x%.6f at t=0", b[0] / a[0], b[m - 1] / a[m - 1]);
    }
}

static void test_errors(void) {
    double s[MAXN];
    pd_error err;
    struct { const char *what; pd_schedule_params p; int steps; } cases[16];
    int n = 0;
    pd_schedule_params ok = sched(PD_GRID_KARRAS, 0.002, 80, 1);
#define CASE(desc, expr, st) do { cases[n].what = desc; cases[n].p = ok; { pd_schedule_params *q = &cases[n].p; (void)q; expr; } cases[n].steps = st; n++; } while (0)
    CASE("steps = 0", (void)0, 0);
    CASE("steps = -3", (void)0, -3);
    CASE("steps = 2e6", (void)0, 2000000);
    CASE("sigma_min = sigma_max", (q->sigma_min = 1, q->sigma_max = 1), 10);
    CASE("sigma_min > sigma_max", (q->sigma_min = 2, q->sigma_max = 1), 10);
    CASE("sigma_min < 0", (q->sigma_min = -0.002), 10);
    CASE("sigma_min = 0", (q->sigma_min = 0), 10);
    CASE("sigma_max = inf", (q->sigma_max = INFINITY), 10);
    CASE("sigma_min = NaN", (q->sigma_min = NAN), 10);
    CASE("grid kind 99", (q->grid = (pd_grid_kind)99), 10);
    CASE("scale shift, shift_res 0", (q->shift = PD_SHIFT_SCALE, q->shift_res = 0), 10);
    CASE("interp shift, shift_base_low -1", (q->shift = PD_SHIFT_INTERP, q->shift_res = 64, q->shift_base_low = -1), 10);
    CASE("cosine outside its truncated range", (q->grid = PD_GRID_COSINE, q->sigma_min = 2000, q->sigma_max = 3000), 10);
    CASE("ddim with no table sigma in range", (q->grid = PD_GRID_DDIM_UNIFORM, q->sigma_min = 1e-4, q->sigma_max = 5e-3), 5);
    CASE("ddim with more steps than table sigmas", (q->grid = PD_GRID_DDIM_QUAD), 1000);
    CASE("rho = NaN", (q->rho = NAN), 10);
#undef CASE
    for (int i = 0; i < n; i++) {
        memset(&err, 0, sizeof err);
        int rc = pd_sigma_grid(s, cases[i].steps, &cases[i].p, &err);
        tu_check(rc == -1 && err.msg[0], "error on %-38s: %s", cases[i].what, err.msg);
    }
    memset(&err, 0, sizeof err);
    tu_check(pd_sigma_grid(NULL, 5, &ok, &err) == -1 && pd_sigma_grid(s, 5, NULL, &err) == -1,
             "error on NULL arguments");
}

int main(void) {
    test_names();
    test_karras();
    test_logsnr();
    test_vp_time();
    test_ddim();
    test_cosine();
    test_noise_schedules();
    test_monotone();
    test_shift();
    test_errors();
    return tu_finish();
}
