/* noise.c — the noise schedules of docs/algorithms.md §M3 (noise.h) as EDM sigmas, in double.
 *
 * Everything converts through sigma = sqrt((1 - abar)/abar) (docs/algorithms.md §M0), computed as
 * sqrt(expm1(-log abar)) so that tiny noise levels (abar -> 1) keep their relative precision.
 */
#include "schedules/noise.h"
#include <math.h>

#define PI 3.14159265358979323846

/* VP: sigma^2 = exp(beta_d t^2/2 + beta_min t) - 1 (docs/algorithms.md §S0.2); expm1 keeps small t exact. */
double noise_vp_sigma(double t, double beta_d, double beta_min) {
    return sqrt(expm1(0.5 * beta_d * t * t + beta_min * t));
}

/* Inverse: solve beta_d t^2/2 + beta_min t = ln(1 + sigma^2) for the positive root. */
double noise_vp_time(double sigma, double beta_d, double beta_min) {
    double l = log1p(sigma * sigma);
    return (sqrt(beta_min * beta_min + 2.0 * beta_d * l) - beta_min) / beta_d;
}

/* docs/algorithms.md §S0.5: two conditions sigma(1) = sigma_max, sigma(eps) = sigma_min, linear in
 * (beta_d, beta_min): beta_d/2 + beta_min = L_max and beta_d eps^2/2 + beta_min eps = L_min. */
void noise_vp_fit(double sigma_min, double sigma_max, double eps_s, double *beta_d, double *beta_min) {
    double lmin = log1p(sigma_min * sigma_min), lmax = log1p(sigma_max * sigma_max);
    *beta_d = 2.0 * (lmin / eps_s - lmax) / (eps_s - 1.0);
    *beta_min = lmax - 0.5 * *beta_d;
}

/* docs/algorithms.md §M3.5. The cumulative product is kept as a sum of log1p(-beta) so the small-index
 * sigmas (abar ~ 0.9999) are not lost to cancellation in 1 - abar. */
void noise_ddpm_linear_sigmas(double *sigma, int T) {
    double logabar = 0.0;
    for (int j = 0; j < T; j++) {
        double beta = 1e-4 + (0.02 - 1e-4) * (T > 1 ? (double)j / (T - 1) : 0.0);
        logabar += log1p(-beta);
        sigma[j] = sqrt(expm1(-logabar));
    }
}

/* docs/algorithms.md §M3.6 (iDDPM): betas from the ratio of f, clipped at 0.999, then abar is the product
 * of (1 - beta) again, as the iDDPM code does; the clip is what makes abar_T ~ 2.4e-9. */
void noise_iddpm_cosine_sigmas(double *sigma, int T) {
    const double s = 0.008;
    double f0 = cos(s / (1.0 + s) * PI / 2);
    f0 *= f0;
    double prev = 1.0, logabar = 0.0;
    for (int t = 1; t <= T; t++) {
        double c = cos(((double)t / T + s) / (1.0 + s) * PI / 2);
        double abar = c * c / f0;
        double beta = fmin(1.0 - abar / prev, 0.999);
        prev = abar;
        logabar += log1p(-beta);
        sigma[t - 1] = sqrt(expm1(-logabar));
    }
}

/* EDM iDDPMPrecond (docs/algorithms.md §S0.5): built from u_M = 0 downwards in j. */
void noise_iddpm_u_table(double *u, int M) {
    const double C1 = 0.001, C2 = 0.008;
    u[M] = 0.0;
    for (int j = M; j > 0; j--) {
        double a1 = sin(0.5 * PI * j / M / (C2 + 1.0)), a0 = sin(0.5 * PI * (j - 1) / M / (C2 + 1.0));
        double ratio = fmax((a0 * a0) / (a1 * a1), C1);
        u[j - 1] = sqrt((u[j] * u[j] + 1.0) / ratio - 1.0);
    }
}

/* docs/algorithms.md §M3.2: with a = a0 + t (a1 - a0), tan(a) = exp(-lambda/2) = sigma. */
static double cos_a0(void) { return atan(exp(-0.5 * NOISE_COSINE_LAMBDA_MAX)); }
static double cos_a1(void) { return atan(exp(-0.5 * NOISE_COSINE_LAMBDA_MIN)); }

double noise_cosine_sigma(double t) {
    double a0 = cos_a0(), a1 = cos_a1();
    return tan(a0 + t * (a1 - a0));
}

double noise_cosine_time(double sigma) {
    double a0 = cos_a0(), a1 = cos_a1();
    return (atan(sigma) - a0) / (a1 - a0);
}
