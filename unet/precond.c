/* precond.c — the preconditioning D(x;σ) = c_skip·x + c_out·F(c_in·x, c_noise) (Karras et al.
 * 2022, EDM Table 1; training/networks.py) and the coefficients' derivatives in σ for the
 * backward pass, for the preconditioner parsed into a net_pc (unet/netdef.h).
 *
 * "edm": EDMPrecond (σ_data). "vp": VPPrecond, c_noise = (M−1)·t(σ) with the continuous VP time
 * t(σ) = (sqrt(β_min² + 2β_d ln(1+σ²)) − β_min)/β_d (Song et al. 2021; noise_vp_time, schedules/noise.c). "ve": VEPrecond,
 * c_noise = ln(σ/2). "iddpm": iDDPMPrecond, c_noise = M−1−j with j the index of the nearest σ
 * in its table u (Nichol & Dhariwal 2021), piecewise constant in σ (derivative 0); its network
 * outputs 2·C channels of which D uses the first C. "eps": an ε-prediction network used as a
 * denoiser, D = x − σ·ε(x/√(1+σ²), (M−1)·t(σ)): VPPrecond's coefficients under a separate name,
 * so files say which objective the weights came from.
 */
#include "schedules/noise.h"
#include "unet/songunet.h"
#include <math.h>
#include <string.h>

/* EDM round_sigma(return_index=True): argmin over j of |σ − u_j| in float32, first on ties. */
static int iddpm_index(const net_pc *pc, double s) {
    float sf = (float)s, best = INFINITY;
    int j = 0;
    for (int i = 0; i <= pc->M; i++) {
        float d = fabsf(sf - pc->u[i]);
        if (d < best) { best = d; j = i; }
    }
    return j;
}

unet_precond unet_precond_eval(const net_pc *pc, double s) {
    unet_precond p;
    switch (pc->id) {
    case PC_VP:
    case PC_EPS:
    case PC_IDDPM:
        p.c_skip = 1;
        p.c_out = -s;
        p.c_in = 1 / sqrt(s * s + 1);
        p.c_noise = pc->id == PC_IDDPM ? (double)(pc->M - 1 - iddpm_index(pc, s))
                                       : (pc->M - 1) * noise_vp_time(s, pc->beta_d, pc->beta_min);
        break;
    case PC_VE:
        p.c_skip = 1;
        p.c_out = s;
        p.c_in = 1;
        p.c_noise = log(0.5 * s);
        break;
    default: { /* edm */
        double sd = pc->sigma_data, s2 = s * s + sd * sd;
        p.c_skip = sd * sd / s2;
        p.c_out = s * sd / sqrt(s2);
        p.c_in = 1 / sqrt(s2);
        p.c_noise = log(s) / 4;
    }
    }
    return p;
}

unet_precond unet_precond_deriv(const net_pc *pc, double s) {
    unet_precond d;
    switch (pc->id) {
    case PC_VP:
    case PC_EPS:
    case PC_IDDPM: {
        double q = 1 + s * s;
        d.c_skip = 0;
        d.c_out = -1;
        d.c_in = -s / (q * sqrt(q));
        /* dt/dσ = 2σ / ((1+σ²) sqrt(β_min² + 2β_d ln(1+σ²))); iDDPM's index is a step function. */
        d.c_noise = pc->id == PC_IDDPM
                        ? 0
                        : (pc->M - 1) * 2 * s /
                              (q * sqrt(pc->beta_min * pc->beta_min + 2 * pc->beta_d * log1p(s * s)));
        break;
    }
    case PC_VE:
        d.c_skip = 0;
        d.c_out = 1;
        d.c_in = 0;
        d.c_noise = 1 / s;
        break;
    default: {
        double sd = pc->sigma_data, s2 = s * s + sd * sd, r = sqrt(s2);
        d.c_skip = -2 * s * sd * sd / (s2 * s2);
        d.c_out = sd * sd * sd / (s2 * r);
        d.c_in = -s / (s2 * r);
        d.c_noise = 1 / (4 * s);
    }
    }
    return d;
}
