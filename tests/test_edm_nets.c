/* test_edm_nets — pixdiff's U-Nets against EDM's own code (NVlabs/edm training/networks.py),
 * through the fixtures of tests/fixtures/edm_nets (made by make_fixtures.py there, with torch; CI
 * needs only the committed files): NCSN++ with EDMPrecond (conditional, augment_dim 9) and with
 * VEPrecond, DDPM++ with VPPrecond, DhariwalUNet (ADM) with EDMPrecond (1 and 2 attention heads)
 * and with iDDPMPrecond (2·C output channels, c_noise an index into its σ table), at six σ from
 * 0.002 to 80.
 *
 * Weights are a closed-form function of each tensor's state-dict name and element index (fill(),
 * the same formula as make_fixtures.py), so the fixtures hold only configs, inputs and EDM's
 * D(x; σ). Pass: per image, max |D − D_EDM| / max |D_EDM| ≤ 1e-4 (float32 on both sides; the
 * errors seen are ~1e-6). A fixture that does not load, or a tensor the formula cannot fill, fails.
 */
#include "unet/songunet.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIR PD_SOURCE_DIR "/tests/fixtures/edm_nets/"

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* make_fixtures.py fill(): v_j = sin(0.7 j + 0.013 (h mod 9973) + 0.1); freqs 16 v; norm weights
 * 1 + 0.1 v, norm biases 0.1 v; other weights v·sqrt(2/fan_in); other biases 0.1 v. */
static void fill(float *p, const unet_tensor_info *t) {
    const char *leaf = strrchr(t->name, '.') + 1;
    char module[96];
    snprintf(module, sizeof module, "%.*s", (int)(leaf - 1 - t->name), t->name);
    const char *last = strrchr(module, '.');
    last = last ? last + 1 : module;
    double h = fnv1a(t->name) % 9973;
    double fan_in = t->ndim >= 2 ? (double)(t->numel / (size_t)t->shape[0]) : 1;
    for (size_t j = 0; j < t->numel; j++) {
        double v = sin(0.7 * (double)j + 0.013 * h + 0.1), o;
        if (!strcmp(leaf, "freqs")) o = 16 * v;
        else if (strstr(last, "norm")) o = !strcmp(leaf, "weight") ? 1 + 0.1 * v : 0.1 * v;
        else if (!strcmp(leaf, "weight")) o = v * sqrt(2.0 / fan_in);
        else o = 0.1 * v;
        p[j] = (float)o;
    }
}

static float *load(const char *name, const char *what, int shape[4], int *ndim, int optional) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s.%s.npy", name, what);
    float *d = NULL;
    pd_error err;
    if (pd_npy_read(path, &d, shape, ndim, &err)) {
        if (!optional) tu_check(0, "%s: %s", name, err.msg);
        return NULL;
    }
    return d;
}

static void run_case(const char *name) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s.json", name);
    pd_unet_config c = pd_unet_config_default();
    pd_error err;
    if (pd_unet_config_from_yaml(&c, path, &err)) { tu_check(0, "%s: %s", name, err.msg); return; }
    pd_model *m;
    if (unet_model_alloc(&m, &c, &err)) { tu_check(0, "%s: %s", name, err.msg); return; }
    for (int i = 0; i < m->n_tensors; i++) fill(m->params + m->tensors[i].offset, &m->tensors[i]);
    for (int i = 0; i < m->n_buffers; i++)
        if (!m->buf_fixed[i]) fill(m->bufs + m->buffers[i].offset, &m->buffers[i]);
    int xs[4], ss[4], ls[4], ds[4], nd;
    float *x = load(name, "x", xs, &nd, 0), *sig = load(name, "sigma", ss, &nd, 0);
    float *lab = load(name, "labels", ls, &nd, 1), *ref = load(name, "d", ds, &nd, 0);
    int n = xs[0];
    size_t img = (size_t)xs[1] * xs[2] * xs[3];
    float *out = malloc(n * img * sizeof(float));
    unet_run *r;
    int ok = x && sig && ref && !unet_run_create(&r, m, n, 0, 0, &err);
    ok = ok && !unet_denoise_forward(r, out, x, sig, lab, n, NULL, &err);
    tu_check(ok, "%s: %d params, forward runs %s", name, (int)m->n_params, ok ? "" : err.msg);
    for (int i = 0; ok && i < n; i++) {
        double e = 0, s = 0;
        for (size_t j = 0; j < img; j++) {
            e = fmax(e, fabs((double)out[i * img + j] - ref[i * img + j]));
            s = fmax(s, fabs((double)ref[i * img + j]));
        }
        tu_check(e / s <= 1e-4, "%s: sigma %-6g max|D - D_EDM| / max|D_EDM| = %.2e (max|D| %.3g)",
                 name, (double)sig[i], e / s, s);
    }
    if (ok) unet_run_free(r);
    free(out); free(x); free(sig); free(lab); free(ref);
    pd_model_free(m);
}

int main(void) {
    static const char *const cases[] = {"ncsnpp_edm_cond", "ncsnpp_ve_uncond", "ddpmpp_vp_cond",
                                        "adm_edm_cond", "adm_iddpm_uncond"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(cases[i]);
    return tu_finish();
}
