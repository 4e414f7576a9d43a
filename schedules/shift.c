/* shift.c — SNR shift of a sigma grid (docs/algorithms.md §M3.3, §M3.4), as a factor on each EDM sigma.
 *
 * Scale (simple diffusion, §M3.3): lambda_shift = lambda + 2 ln(base/d), i.e. sigma * d/base, so
 * a d x d image gets the SNR its base-resolution average-pooled version would have (§M3.1).
 *
 * Interp (§M3.4): lambda(t) = t lambda_shift(base)(t) + (1 - t) lambda_shift(base_low)(t), where t
 * is the time of the *unshifted* sigma under the truncated cosine schedule (§M3.2, lambda in
 * [-15, 15]), clamped to [0, 1]. In sigma terms the factor is (d/base)^t (d/base_low)^(1-t): near
 * t = 0 (little noise) the base_low shift dominates, near t = 1 the base shift. This is the
 * direction two independent sources agree on (the study notes' transcription of simple diffusion
 * Eq. 6 and k-diffusion's lerp(lambda_low, lambda_high, t)); with base = d it is exactly
 * k-diffusion's form (noise_d_high = image size), and with base 256 / base_low 32 at d = 512 it is
 * simple diffusion's example. Taking t from the sigma itself (rather than from the step index)
 * makes the shift a fixed re-labelling of noise levels, the same on every grid.
 *
 * Truncation variant: the plain one (§M3.3) — the grid is built on [sigma_min, sigma_max] and then
 * every nonzero sigma is multiplied, so the shifted range moves to [sigma_min f, sigma_max f] and
 * nothing is clipped afterwards. Reasons: the public contract says "every sigma multiplied by
 * d/base"; clipping back into the model's range would undo the extra noise the shift exists to
 * add at high resolution and would collapse the top steps onto one sigma (zero-length steps that
 * still cost NFE); and EDM-preconditioned nets accept any sigma > 0 (table-based nets round sigma
 * to their own table). k-diffusion's variant (truncate at [lambda_min - shift, lambda_max - shift])
 * is meant for a training density; on scale-free grids (karras, logsnr) it would turn the shift
 * into a no-op.
 */
#include "schedules/shift.h"
#include "schedules/noise.h"
#include <math.h>

static int positive(double v) { return isfinite(v) && v > 0; }

int shift_check(const pd_schedule_params *p, pd_error *err) {
    if (p->shift == PD_SHIFT_NONE) return 0;
    if ((unsigned)p->shift >= PD_SHIFT_COUNT)
        return pd_fail(err, "schedule: unknown shift kind %d", (int)p->shift);
    const char *name = pd_shift_name(p->shift);
    if (!positive(p->shift_res))
        return pd_fail(err, "schedule: shift '%s' needs shift_res (the image resolution d) > 0, got %g",
                       name, p->shift_res);
    if (!positive(p->shift_base))
        return pd_fail(err, "schedule: shift '%s' needs shift_base > 0, got %g", name, p->shift_base);
    if (p->shift == PD_SHIFT_INTERP && !positive(p->shift_base_low))
        return pd_fail(err, "schedule: shift 'interp' needs shift_base_low > 0, got %g",
                       p->shift_base_low);
    return 0;
}

double shift_factor(double sigma, const pd_schedule_params *p) {
    switch (p->shift) {
    case PD_SHIFT_SCALE:
        return p->shift_res / p->shift_base;
    case PD_SHIFT_INTERP: {
        double t = fmin(fmax(noise_cosine_time(sigma), 0.0), 1.0);
        return exp(t * log(p->shift_res / p->shift_base) +
                   (1.0 - t) * log(p->shift_res / p->shift_base_low));
    }
    default:
        return 1.0;
    }
}
