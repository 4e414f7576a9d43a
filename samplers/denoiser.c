/* denoiser.c — the generic half of the denoiser interface (pixdiff.h): argument checks and the
 * evaluation count around d->eval (with or without AMED's feature tap), the stack's canonical
 * description around d->describe, and destruction. Every concrete denoiser (network, analytic,
 * wrappers) only fills the struct's fields and function pointers. */
#include "pixdiff.h"
#include <stdlib.h>

int pd_denoiser_eval_features(pd_denoiser *d, float *out, const float *x, const float *sigma,
                              const float *labels, int n, float *features, pd_error *err) {
    if (!d || !d->eval) return pd_fail(err, "denoiser: NULL denoiser or eval function");
    if (!out || !x || !sigma) return pd_fail(err, "denoiser '%s': NULL buffer", d->desc);
    if (n < 1) return pd_fail(err, "denoiser '%s': batch size %d < 1", d->desc, n);
    /* One count per batched call: "NFE" is network evaluations per image (docs/algorithms.md §S0.6). */
    d->evals++;
    return d->eval(d, out, x, sigma, labels, n, features, err);
}

int pd_denoiser_eval(pd_denoiser *d, float *out, const float *x, const float *sigma,
                     const float *labels, int n, pd_error *err) {
    return pd_denoiser_eval_features(d, out, x, sigma, labels, n, NULL, err);
}

int pd_denoiser_describe(const pd_denoiser *d, char *out, size_t cap, pd_error *err) {
    if (!d || !out || cap == 0) return pd_fail(err, "denoiser: NULL denoiser or buffer");
    out[0] = 0;
    if (!d->describe) return pd_fail(err, "denoiser '%s' cannot describe itself (no describe function)", d->desc);
    if (d->describe(d, out, cap) < 0) {
        out[0] = 0;
        return pd_fail(err, "denoiser '%s': no description (a denoiser it wraps cannot describe "
                       "itself, or the text is longer than %zu bytes)", d->desc, cap - 1);
    }
    return 0;
}

void pd_denoiser_free(pd_denoiser *d) {
    if (!d) return;
    if (d->destroy) d->destroy(d);
    free(d);
}
