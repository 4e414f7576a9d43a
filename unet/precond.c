/* precond.c — the preconditioning D(x;σ) = c_skip·x + c_out·F(c_in·x, c_noise) (models.md §4.3,
 * samplers.md §0.3) and the coefficients' derivatives in σ for the backward pass.
 *
 * "edm": EDMPrecond (σ_data from the config). "vp": EDM's VPPrecond (β_d 19.9, β_min 0.1,
 * M 1000). "ve": VEPrecond. "eps": an ε-prediction network used as a denoiser (models.md §3.9,
 * samplers.md §0.2): D = x − σ·ε(x/√(1+σ²), 999·t(σ)) with t(σ) the continuous VP time, i.e.
 * the VPPrecond coefficients; it is a separate name so files say which training objective the
 * weights came from, and a DDPM-trained net with continuous time input loads under it.
 */
#include "unet/songunet.h"
#include <math.h>
#include <string.h>

#define VP_BETA_D 19.9
#define VP_BETA_MIN 0.1
#define VP_M 1000.0

/* t(σ) = (sqrt(β_min² + 2β_d ln(1+σ²)) − β_min)/β_d (models.md §3.8). */
static double vp_t(double s) {
    return (sqrt(VP_BETA_MIN * VP_BETA_MIN + 2 * VP_BETA_D * log1p(s * s)) - VP_BETA_MIN) / VP_BETA_D;
}

static int is_vp(const pd_unet_config *cfg) {
    return !strcmp(cfg->precond, "vp") || !strcmp(cfg->precond, "eps");
}

unet_precond unet_precond_eval(const pd_unet_config *cfg, double s) {
    unet_precond p;
    if (is_vp(cfg)) {
        p.c_skip = 1;
        p.c_out = -s;
        p.c_in = 1 / sqrt(s * s + 1);
        p.c_noise = (VP_M - 1) * vp_t(s);
    } else if (!strcmp(cfg->precond, "ve")) {
        p.c_skip = 1;
        p.c_out = s;
        p.c_in = 1;
        p.c_noise = log(0.5 * s);
    } else { /* edm */
        double sd = cfg->sigma_data, s2 = s * s + sd * sd;
        p.c_skip = sd * sd / s2;
        p.c_out = s * sd / sqrt(s2);
        p.c_in = 1 / sqrt(s2);
        p.c_noise = log(s) / 4;
    }
    return p;
}

unet_precond unet_precond_deriv(const pd_unet_config *cfg, double s) {
    unet_precond d;
    if (is_vp(cfg)) {
        double q = 1 + s * s;
        d.c_skip = 0;
        d.c_out = -1;
        d.c_in = -s / (q * sqrt(q));
        /* dt/dσ = 2σ / ((1+σ²) sqrt(β_min² + 2β_d ln(1+σ²))) */
        d.c_noise = (VP_M - 1) * 2 * s /
                    (q * sqrt(VP_BETA_MIN * VP_BETA_MIN + 2 * VP_BETA_D * log1p(s * s)));
    } else if (!strcmp(cfg->precond, "ve")) {
        d.c_skip = 0;
        d.c_out = 1;
        d.c_in = 0;
        d.c_noise = 1 / s;
    } else {
        double sd = cfg->sigma_data, s2 = s * s + sd * sd, r = sqrt(s2);
        d.c_skip = -2 * s * sd * sd / (s2 * s2);
        d.c_out = sd * sd * sd / (s2 * r);
        d.c_in = -s / (s2 * r);
        d.c_noise = 1 / (4 * s);
    }
    return d;
}
