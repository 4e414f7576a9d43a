/* test_skip_tuning — Skip-Tuning at the denoiser level (docs/algorithms.md §S5; pd_denoiser_set_skip_tuning).
 *
 * On the tiny preset (16x16 gray, 2 levels, 4 skips) with random weights:
 *   - the numbering: skip i = 0 (bottom) is the LAST skip the encoder produces, at the lowest
 *     resolution (checked on the architecture), and the denoiser with rho = (0.6, 1, 1, 1) from the
 *     bottom equals the U-Net with skip_scale[3] = 0.6 set by hand (bitwise), and differs from
 *     scaling the top skip instead; the linear ramp equals its hand-computed production-order array;
 *   - all rho = 1 (ramp or list) is bit-identical to no Skip-Tuning, and clearing restores it;
 *   - a sigma window applies per sample: in a batch with sigmas on both sides of it each image
 *     equals its own single-image evaluation with or without the scales (bitwise), features too;
 *   - bad input (analytic denoiser, wrong list length, NaN, empty window) fails with a message;
 *   - the feature tap through pd_denoiser_eval_features equals unet_opts.feature; analytic: dim 0.
 */
#include "pixdiff.h"
#include "unet/songunet.h"
#include "unet/unet_arch.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pd_model *tiny(uint64_t seed) {
    pd_unet_config c;
    pd_error err;
    pd_model *m = NULL;
    if (pd_unet_config_preset(&c, "tiny", &err) || pd_model_create(&m, &c, seed, &err)) {
        printf("model: %s\n", err.msg);
        exit(1);
    }
    return m;
}

/* One forward of the raw U-Net with a hand-set production-order skip_scale (NULL: none). */
static void hand(pd_model *m, float *out, const float *x, const float *sig, int n, const float *scale,
                 float *feat) {
    unet_run *r;
    pd_error err;
    if (unet_run_create(&r, m, n, 0, 0, &err)) {
        printf("run: %s\n", err.msg);
        exit(1);
    }
    unet_opts o = {0};
    o.skip_scale = scale;
    o.n_skip_scale = scale ? unet_num_skips(m) : 0;
    o.feature = feat;
    if (unet_denoise_forward(r, out, x, sig, NULL, n, &o, &err)) printf("forward: %s\n", err.msg);
    unet_run_free(r);
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }

int main(void) {
    pd_set_threads(2);
    pd_error err;
    pd_model *m = tiny(7);
    const int n = 4, ns = unet_num_skips(m);
    const size_t img = 16 * 16;
    float *x = malloc(n * img * sizeof *x), *o1 = malloc(n * img * sizeof *o1),
          *o2 = malloc(n * img * sizeof *o2), *o3 = malloc(n * img * sizeof *o3);
    tu_fill(x, n * img, 3, 1.5f);
    float sig[4] = {0.1f, 1.0f, 5.0f, 20.0f};

    /* 1. numbering on the architecture: production index k = ns - 1 is the innermost skip */
    const unet_arch *a = m->arch;
    tu_check(ns == 4 && a->skip_level[ns - 1] == a->n_levels - 1 && a->skip_level[0] == 0,
             "4 skips; production index %d (bottom, i = 0) at level %d, index 0 (top) at level %d",
             ns - 1, a->skip_level[ns - 1], a->skip_level[0]);
    /* and the decoder consumes it first (LIFO) */
    int first_pop = -1;
    for (int k = 0; k < a->n_dec && first_pop < 0; k++)
        if (a->dec[k].pop >= 0) first_pop = a->dec[k].pop;
    tu_check(first_pop == ns - 1, "the decoder's first concatenated skip is production index %d",
             first_pop);

    pd_denoiser *d;
    if (pd_denoiser_from_model(&d, m, 0, &err)) {
        printf("denoiser: %s\n", err.msg);
        return 1;
    }
    tu_check(pd_denoiser_num_skips(d) == ns, "pd_denoiser_num_skips = %d", pd_denoiser_num_skips(d));

    /* 2. bottom-only list vs scaling production index ns - 1 by hand */
    pd_skip_tuning st = pd_skip_tuning_default();
    st.n_rho = ns;
    for (int i = 0; i < ns; i++) st.rho[i] = i == 0 ? 0.6 : 1.0;
    tu_check(pd_denoiser_set_skip_tuning(d, &st, &err) == 0, "set list (0.6, 1, 1, 1)");
    pd_denoiser_eval(d, o1, x, sig, NULL, n, &err);
    float hs[8];
    for (int p = 0; p < ns; p++) hs[p] = p == ns - 1 ? 0.6f : 1.0f;
    hand(m, o2, x, sig, n, hs, NULL);
    tu_check(same(o1, o2, n * img), "rho bottom 0.6 == skip_scale[%d] = 0.6 by hand (bitwise)", ns - 1);
    for (int p = 0; p < ns; p++) hs[p] = p == 0 ? 0.6f : 1.0f;
    hand(m, o3, x, sig, n, hs, NULL);
    double dmax = 0;
    for (size_t j = 0; j < n * img; j++) dmax = fmax(dmax, fabs(o1[j] - o3[j]));
    tu_check(dmax > 1e-4, "scaling the top skip instead gives another output (max diff %.3g)", dmax);

    /* ramp rho_bottom 0.5 -> rho_top 1 vs the hand-computed production-order array */
    st = pd_skip_tuning_default();
    st.rho_bottom = 0.5;
    st.rho_top = 1.0;
    float sc[8];
    pd_skip_tuning_scales(&st, ns, sc, &err);
    int ok = 1;
    for (int p = 0; p < ns; p++) {
        double want = 0.5 + (ns - 1 - p) * 0.5 / (ns - 1);
        ok &= fabs(sc[p] - want) < 1e-7;
        hs[p] = (float)want;
    }
    tu_check(ok, "ramp 0.5..1: production order %.3f %.3f %.3f %.3f (enc conv first)", sc[0], sc[1],
             sc[2], sc[3]);
    pd_denoiser_set_skip_tuning(d, &st, &err);
    pd_denoiser_eval(d, o1, x, sig, NULL, n, &err);
    hand(m, o2, x, sig, n, hs, NULL);
    tu_check(same(o1, o2, n * img), "ramp through the denoiser == by hand (bitwise)");

    /* 3. all rho = 1 is bit-identical to no Skip-Tuning */
    pd_denoiser *plain;
    pd_denoiser_from_model(&plain, m, 0, &err);
    pd_denoiser_eval(plain, o2, x, sig, NULL, n, &err);
    st = pd_skip_tuning_default();
    pd_denoiser_set_skip_tuning(d, &st, &err);
    pd_denoiser_eval(d, o1, x, sig, NULL, n, &err);
    tu_check(same(o1, o2, n * img), "rho_bottom = rho_top = 1 == no Skip-Tuning (bitwise)");
    st.n_rho = ns;
    for (int i = 0; i < ns; i++) st.rho[i] = 1.0;
    st.sigma_lo = 0.5, st.sigma_hi = 8;
    pd_denoiser_set_skip_tuning(d, &st, &err);
    pd_denoiser_eval(d, o1, x, sig, NULL, n, &err);
    tu_check(same(o1, o2, n * img), "list of ones with a window (mixed batch) == no Skip-Tuning (bitwise)");
    pd_denoiser_set_skip_tuning(d, NULL, &err);
    pd_denoiser_eval(d, o1, x, sig, NULL, n, &err);
    tu_check(same(o1, o2, n * img), "cleared == no Skip-Tuning (bitwise)");

    /* 4. window [0.5, 8]: images 1, 2 tuned, 0 and 3 not; each vs its own single evaluation */
    st = pd_skip_tuning_default();
    st.rho_bottom = 0.4;
    st.sigma_lo = 0.5;
    st.sigma_hi = 8;
    pd_denoiser_set_skip_tuning(d, &st, &err);
    pd_skip_tuning_scales(&st, ns, sc, &err);
    float *feat = malloc(n * 64 * sizeof *feat), *fref = malloc(64 * sizeof *fref);
    pd_denoiser_eval_features(d, o1, x, sig, NULL, n, feat, &err);
    ok = 1;
    int okf = 1;
    for (int b = 0; b < n; b++) {
        int tuned = sig[b] >= 0.5f && sig[b] <= 8.0f;
        hand(m, o2, x + b * img, sig + b, 1, tuned ? sc : NULL, fref);
        ok &= same(o1 + b * img, o2, img);
        okf &= same(feat + b * 64, fref, 64);
        /* and the other choice differs, so the check can fail */
        hand(m, o3, x + b * img, sig + b, 1, tuned ? NULL : sc, NULL);
        ok &= !same(o1 + b * img, o3, img);
    }
    tu_check(ok, "window [0.5, 8], sigmas 0.1 1 5 20: images 1, 2 tuned, 0, 3 not (bitwise, per image)");
    tu_check(okf, "feature tap scattered back per image in a split batch (bitwise)");
    /* whole batch inside: one call, same as the hand scales */
    float sin4[4] = {1, 2, 3, 4};
    pd_denoiser_eval(d, o1, x, sin4, NULL, n, &err);
    hand(m, o2, x, sin4, n, sc, NULL);
    tu_check(same(o1, o2, n * img), "batch wholly inside the window == hand scales (bitwise)");

    /* 5. bad input */
    pd_denoiser *an;
    pd_denoiser_analytic(&an, "analytic:gaussian:res=16:ch=1", &err);
    st = pd_skip_tuning_default();
    tu_check(pd_denoiser_set_skip_tuning(an, &st, &err) != 0 && pd_denoiser_num_skips(an) == -1,
             "analytic denoiser rejected: %s", err.msg);
    st.n_rho = ns + 1;
    tu_check(pd_denoiser_set_skip_tuning(d, &st, &err) != 0, "list of %d rejected: %s", ns + 1, err.msg);
    st = pd_skip_tuning_default();
    st.rho_bottom = NAN;
    tu_check(pd_denoiser_set_skip_tuning(d, &st, &err) != 0, "NaN rho rejected: %s", err.msg);
    st = pd_skip_tuning_default();
    st.sigma_lo = 5, st.sigma_hi = 1;
    tu_check(pd_denoiser_set_skip_tuning(d, &st, &err) != 0, "empty window rejected: %s", err.msg);

    /* 6. feature tap through the denoiser interface */
    tu_check(d->feature_dim == 64 && an->feature_dim == 0, "feature_dim: U-Net %d, analytic %d",
             d->feature_dim, an->feature_dim);
    pd_denoiser_set_skip_tuning(d, NULL, &err);
    pd_denoiser_eval_features(d, o1, x, sig, NULL, n, feat, &err);
    float *fall = malloc(n * 64 * sizeof *fall);
    hand(m, o2, x, sig, n, NULL, fall);
    tu_check(same(feat, fall, n * 64) && same(o1, o2, n * img),
             "features out == unet_opts.feature, output unchanged (bitwise)");
    pd_denoiser *up;
    pd_denoiser_from_model(&up, m, 32, &err);
    tu_check(up->feature_dim == 256, "tiny at 32x32: tap of %d values (no 8x8 level)", up->feature_dim);

    pd_denoiser_free(up);
    pd_denoiser_free(an);
    pd_denoiser_free(plain);
    pd_denoiser_free(d);
    pd_model_free(m);
    free(x), free(o1), free(o2), free(o3), free(feat), free(fref), free(fall);
    return tu_finish();
}
