/* noise.h — the noise schedules of docs/algorithms.md §M3, as EDM sigmas (x = x0 + sigma n), in double.
 *
 * Every schedule maps its own time variable to an EDM sigma (and back where a closed form
 * exists), using the VP <-> EDM conversion sigma = sqrt((1 - abar)/abar) = exp(-lambda/2)
 * (docs/algorithms.md §M0). They are pure functions with no state; the sigma grids (grid.c), the SNR
 * shift (shift.c) and any preconditioner that needs a model's time input share them.
 */
#ifndef PD_NOISE_H
#define PD_NOISE_H

#include <stddef.h>

/* ---- continuous VP (score-SDE / EDM "VP", docs/algorithms.md §S0.2, docs/algorithms.md §M3.8) ----
 * sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1); the defaults are beta_d = 19.9,
 * beta_min = 0.1 (then sigma(1) ~ 152.2, sigma(1e-5) ~ 1.0e-3). */
#define NOISE_VP_BETA_D 19.9
#define NOISE_VP_BETA_MIN 0.1
double noise_vp_sigma(double t, double beta_d, double beta_min);
double noise_vp_time(double sigma, double beta_d, double beta_min); /* inverse of noise_vp_sigma */
/* beta_d, beta_min with sigma(1) = sigma_max and sigma(eps_s) = sigma_min (docs/algorithms.md §S0.5). */
void noise_vp_fit(double sigma_min, double sigma_max, double eps_s, double *beta_d, double *beta_min);

/* ---- discrete DDPM linear-beta table (docs/algorithms.md §M3.5) ----
 * beta_i = 1e-4 + (0.02 - 1e-4)(i-1)/(T-1), i = 1..T; index j = i - 1 in 0..T-1 is the model's
 * timestep input. Fills sigma[j] = sqrt((1 - abar_j)/abar_j), increasing in j
 * (T = 1000: sigma[0] ~ 0.0100, sigma[999] ~ 157.4). */
#define NOISE_DDPM_T 1000
void noise_ddpm_linear_sigmas(double *sigma, int T);

/* ---- improved-DDPM cosine (docs/algorithms.md §M3.6) ----
 * abar_t = f(t)/f(0), f(t) = cos^2(((t/T) + s)/(1 + s) pi/2), s = 0.008, with the beta clip
 * beta_t = min(1 - abar_t/abar_{t-1}, 0.999); fills sigma[j] for j = t - 1 = 0..T-1. */
void noise_iddpm_cosine_sigmas(double *sigma, int T);
/* EDM's iDDPMPrecond table u_0 > ... > u_M = 0 (M + 1 values; docs/algorithms.md §S0.5, docs/algorithms.md §M3.6):
 * abar(j) = sin^2(pi j / (2 M (1 + C2))), u_{j-1} = sqrt((u_j^2 + 1)/max(abar(j-1)/abar(j), C1) - 1),
 * M = 1000, C1 = 0.001, C2 = 0.008. */
void noise_iddpm_u_table(double *u, int M);

/* ---- cosine schedule in logSNR form, truncated to [lambda_min, lambda_max] (docs/algorithms.md §M3.2) ----
 * lambda(t) = -2 ln tan(a0 + t (a1 - a0)), a0 = atan(exp(-lambda_max/2)), a1 = atan(exp(-lambda_min/2)),
 * t in [0, 1], t = 0 clean. pixdiff uses simple diffusion's truncation lambda in [-15, 15]. */
#define NOISE_COSINE_LAMBDA_MIN (-15.0)
#define NOISE_COSINE_LAMBDA_MAX 15.0
double noise_cosine_sigma(double t);    /* = exp(-lambda(t)/2) = tan(a0 + t (a1 - a0)) */
double noise_cosine_time(double sigma); /* inverse, not clamped: < 0 below / > 1 above the range */

/* ---- EDM: sigma(t) = t, s(t) = 1 (docs/algorithms.md §M3.7) — the identity, so no function. ---- */

#endif
