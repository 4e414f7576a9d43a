/* grid.c — sigma grids (docs/algorithms.md §S0.5, §S0.6): pd_schedule_default_params and pd_sigma_grid.
 *
 * A grid is built in two stages. First the m nonzero sigmas, decreasing from sigma_max to
 * sigma_min, where m = steps when end_at_zero = 1 (EDM: sigma = 0 is then appended, so there are
 * `steps` steps and the last one lands on 0) and m = steps + 1 when end_at_zero = 0 (AMED /
 * diff-sampler: steps + 1 timestamps, the last one sigma_min). The closed-form grids (karras,
 * logsnr, vp-time, cosine) hit sigma_max and sigma_min exactly (the endpoints are assigned, not
 * recomputed through pow/exp, so a sampler stopping at sigma_min stops at exactly sigma_min).
 * Second, the SNR shift multiplies every nonzero sigma (shift.c, which explains the truncation
 * variant and why nothing is clipped afterwards). The result is checked to be finite and
 * strictly decreasing.
 *
 * The table grids (ddim-uniform, ddim-quad) take sigmas from the DDPM linear-beta table
 * (docs/algorithms.md §M3.5, T = 1000). DDIM's index formulas are applied to the part of the table that
 * lies inside [sigma_min, sigma_max]: with T' such indices starting at j0,
 *   uniform: tau_i = j0 + i k, k = floor(T'/m);   quad: tau_i = j0 + floor((i sqrt(0.8 T')/(m-1))^2),
 * with quad's repeated indices (m > ~0.3 sqrt(T')) pushed up by one so no step has zero length.
 * For a DDPM model's own range (sigma(0) ~ 0.0100 .. sigma(999) ~ 157.4) this is exactly the DDIM
 * paper's grid; for a narrower range (EDM's [0.002, 80] keeps indices 0..~933) every sigma is
 * still a table sigma and none is clamped onto another. The endpoints are therefore table
 * values: the largest index used is below sigma_max (DDIM's "leading" spacing starts at 900 of
 * 1000 for 10 steps) and the smallest is the first table sigma >= sigma_min, also when
 * end_at_zero = 0. Clamping each value into range instead would repeat sigma_max for fine grids.
 *
 * The cosine grid is uniform in t of the truncated cosine schedule (docs/algorithms.md §M3.2, lambda in
 * [-15, 15]) over the part of t in [0, 1] whose sigma lies in [sigma_min, sigma_max]:
 * t from min(1, t(sigma_max)) down to max(0, t(sigma_min)). Clipping the *schedule* this way,
 * rather than clipping sigma(t_i) for t_i uniform on [0, 1], keeps every step distinct for any
 * step count (value clipping repeats sigma_max once steps >= ~132 at the default range).
 */
#include "pixdiff.h"
#include "schedules/noise.h"
#include "schedules/shift.h"
#include <math.h>

/* docs/algorithms.md §S0.5: diff-sampler's time_uniform fits the VP schedule with eps_s = 1e-3. */
#define VP_EPS_S 1e-3
/* Above this many steps a grid is certainly a mistake (and would be memory for nothing). */
#define MAX_STEPS 1000000

pd_schedule_params pd_schedule_default_params(void) {
    pd_schedule_params p = {0};
    p.grid = PD_GRID_KARRAS;
    p.rho = 0;                 /* the grid's default: 7 for karras, 1 for vp-time */
    p.sigma_min = 0.002;       /* EDM's range (docs/algorithms.md §S0.1) */
    p.sigma_max = 80.0;
    p.end_at_zero = 1;         /* EDM convention */
    p.shift = PD_SHIFT_NONE;
    p.shift_res = 0;           /* pd_sample fills the denoiser's resolution when <= 0 */
    p.shift_base = 64;         /* simple diffusion's reference resolution (docs/algorithms.md §M3.3) */
    p.shift_base_low = 32;     /* simple diffusion / k-diffusion's low base (docs/algorithms.md §M3.4) */
    return p;
}

/* docs/algorithms.md §S0.5 Karras: (smax^(1/rho) + f (smin^(1/rho) - smax^(1/rho)))^rho, f = i/(m-1). */
static void grid_karras(double *s, int m, double smin, double smax, double rho) {
    double a = pow(smax, 1.0 / rho), b = pow(smin, 1.0 / rho);
    for (int i = 1; i < m - 1; i++) s[i] = pow(a + (double)i / (m - 1) * (b - a), rho);
}

/* lambda = -ln sigma uniform: equal ratios sigma_{i+1}/sigma_i. */
static void grid_logsnr(double *s, int m, double smin, double smax) {
    double a = log(smax), b = log(smin);
    for (int i = 1; i < m - 1; i++) s[i] = exp(a + (double)i / (m - 1) * (b - a));
}

/* docs/algorithms.md §S0.5 VP time-uniform: t_i = (1 + f (eps^(1/rho) - 1))^rho under the VP schedule
 * fitted so that sigma(1) = sigma_max and sigma(eps) = sigma_min. */
static void grid_vp_time(double *s, int m, double smin, double smax, double rho) {
    double bd, bmin;
    noise_vp_fit(smin, smax, VP_EPS_S, &bd, &bmin);
    double e = pow(VP_EPS_S, 1.0 / rho);
    for (int i = 1; i < m - 1; i++) {
        double t = pow(1.0 + (double)i / (m - 1) * (e - 1.0), rho);
        s[i] = noise_vp_sigma(t, bd, bmin);
    }
}

static int grid_cosine(double *s, int m, double smin, double smax, pd_error *err) {
    double thi = fmin(1.0, noise_cosine_time(smax)), tlo = fmax(0.0, noise_cosine_time(smin));
    double hi = thi >= 1.0 ? noise_cosine_sigma(1.0) : smax;
    double lo = tlo <= 0.0 ? noise_cosine_sigma(0.0) : smin;
    if (!(hi > lo))
        return pd_fail(err, "schedule 'cosine': [%g, %g] does not overlap the truncated cosine range "
                       "[%g, %g]", smin, smax, noise_cosine_sigma(0.0), noise_cosine_sigma(1.0));
    s[0] = hi;
    for (int i = 1; i < m - 1; i++) s[i] = noise_cosine_sigma(thi + (double)i / (m - 1) * (tlo - thi));
    if (m > 1) s[m - 1] = lo;
    return 0;
}

static int grid_ddim(double *s, int m, double smin, double smax, int quad, pd_error *err) {
    const char *name = quad ? "ddim-quad" : "ddim-uniform";
    double tab[NOISE_DDPM_T];
    noise_ddpm_linear_sigmas(tab, NOISE_DDPM_T);
    int j0 = 0, j1 = NOISE_DDPM_T - 1;
    while (j0 < NOISE_DDPM_T && tab[j0] < smin) j0++;
    while (j1 >= 0 && tab[j1] > smax) j1--;
    int teff = j1 - j0 + 1;
    if (teff < 1)
        return pd_fail(err, "schedule '%s': no DDPM timestep has sigma in [%g, %g] (the table spans "
                       "[%.4g, %.4g])", name, smin, smax, tab[0], tab[NOISE_DDPM_T - 1]);
    if (m > teff)
        return pd_fail(err, "schedule '%s': %d sigmas needed but only %d DDPM timesteps lie in "
                       "[%g, %g]", name, m, teff, smin, smax);
    int prev = -1;
    for (int i = 0; i < m; i++) {
        int tau;
        if (!quad) {
            tau = i * (teff / m);
        } else {
            /* DDIM code: (linspace(0, sqrt(0.8 T), S))^2 truncated; the guard absorbs the last
             * point's rounding (sqrt(800)^2 = 800.0000000000001 in numpy, not 799.99...). */
            double v = m > 1 ? (double)i * (sqrt(0.8 * teff) / (m - 1)) : 0.0;
            tau = (int)floor(v * v + 1e-9);
            if (tau <= prev) tau = prev + 1;
        }
        prev = tau;
        s[m - 1 - i] = tab[j0 + tau];
    }
    return 0;
}

int pd_sigma_grid(double *sigmas, int steps, const pd_schedule_params *p, pd_error *err) {
    if (!sigmas || !p) return pd_fail(err, "pd_sigma_grid: NULL argument");
    if (steps < 1 || steps > MAX_STEPS)
        return pd_fail(err, "schedule: steps must be in [1, %d], got %d", MAX_STEPS, steps);
    if ((unsigned)p->grid >= PD_GRID_COUNT)
        return pd_fail(err, "schedule: unknown grid kind %d", (int)p->grid);
    const char *name = pd_grid_name(p->grid);
    double smin = p->sigma_min, smax = p->sigma_max;
    if (!isfinite(smin) || !isfinite(smax) || !(smin > 0) || !(smax > smin))
        return pd_fail(err, "schedule '%s': need 0 < sigma_min < sigma_max (finite), got sigma_min %g, "
                       "sigma_max %g", name, smin, smax);
    if (isnan(p->rho) || isinf(p->rho))
        return pd_fail(err, "schedule '%s': rho must be finite, got %g", name, p->rho);
    if (shift_check(p, err)) return -1;

    int m = p->end_at_zero ? steps : steps + 1; /* nonzero sigmas */
    double *s = sigmas;
    s[0] = smax;
    if (m > 1) s[m - 1] = smin;
    switch (p->grid) {
    case PD_GRID_KARRAS: grid_karras(s, m, smin, smax, p->rho > 0 ? p->rho : 7.0); break;
    case PD_GRID_LOGSNR: grid_logsnr(s, m, smin, smax); break;
    case PD_GRID_VP_TIME: grid_vp_time(s, m, smin, smax, p->rho > 0 ? p->rho : 1.0); break;
    case PD_GRID_DDIM_UNIFORM:
    case PD_GRID_DDIM_QUAD:
        if (grid_ddim(s, m, smin, smax, p->grid == PD_GRID_DDIM_QUAD, err)) return -1;
        break;
    case PD_GRID_COSINE:
        if (grid_cosine(s, m, smin, smax, err)) return -1;
        break;
    default: break;
    }
    for (int i = 0; i < m; i++) s[i] *= shift_factor(s[i], p);
    if (p->end_at_zero) s[steps] = 0.0;

    for (int i = 0; i < m; i++)
        if (!isfinite(s[i]) || !(s[i] > 0) || (i > 0 && !(s[i] < s[i - 1])))
            return pd_fail(err, "schedule '%s': sigma[%d] = %g breaks the strictly decreasing grid "
                           "(sigma_min %g, sigma_max %g, %d steps)", name, i, s[i], smin, smax, steps);
    return 0;
}
