/* generator_net.c — a model of kind "generator" as a pd_generator (contract in pixdiff.h, "one-step
 * generators").
 *
 * A generator G is the EDM denoiser of its network evaluated once at a fixed sigma_init on noise
 * of that scale: G(z; label) = D(sigma_init z; sigma_init, label) (SiD, docs/algorithms.md §M1.2;
 * SiD's generate_onestep.py with --sigma_G). There is no grid and no integration, so nothing of a
 * sampler applies; the network inside is a network denoiser (unet/denoiser_net.c) that nobody
 * outside this file can reach, so no sampler or denoiser wrapper can be stacked on it. What does
 * apply is a change inside the network: Skip-Tuning. One arena per pd_generator_run call (input,
 * output, sigmas); the caller's x is written only on success.
 */
#include "core/pool.h"
#include "core/util.h"
#include "unet/denoiser_net.h"
#include "unet/songunet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pd_generator_from_model(pd_generator **out, pd_model *m, int res, pd_error *err) {
    if (!out) return pd_fail(err, "generator: NULL output");
    *out = NULL;
    if (!m) return pd_fail(err, "generator: NULL model");
    if (m->ids.kind != KIND_GENERATOR)
        return pd_fail(err, "model '%s' is a %s, not a one-step generator (kind \"generator\": "
                       "pixdiff distill sid makes those)", net_model_file(m), m->cfg.kind);
    pd_generator *g = calloc(1, sizeof *g);
    if (!g) return pd_fail(err, "generator: out of memory");
    pd_denoiser *net;
    if (net_denoiser_create(&net, m, res, err)) {
        free(g);
        return -1;
    }
    g->C = net->C;
    g->H = net->H;
    g->W = net->W;
    g->label_dim = net->label_dim;
    g->sigma_init = m->cfg.sigma_init;
    g->ctx = net;
    snprintf(g->desc, sizeof g->desc, "one-step generator, sigma_init %g: %.70s", g->sigma_init,
             net->desc);
    *out = g;
    return 0;
}

void pd_generator_free(pd_generator *g) {
    if (!g) return;
    pd_denoiser_free(g->ctx);
    free(g);
}

int pd_generator_set_skip_tuning(pd_generator *g, const pd_skip_tuning *st, pd_error *err) {
    if (!g) return pd_fail(err, "skip-tuning: NULL generator");
    return pd_denoiser_set_skip_tuning(g->ctx, st, err);
}

int pd_generator_describe(const pd_generator *g, char *out, size_t cap, pd_error *err) {
    if (!g) return pd_fail(err, "generator: NULL generator");
    return pd_denoiser_describe(g->ctx, out, cap, err);
}

struct scale_args {
    float *out;
    const float *in;
    float s;
};

/* out[j] = s · in[j] for items j. */
static void scale_items(void *ctx, long j0, long j1) {
    const struct scale_args *a = ctx;
    for (long j = j0; j < j1; j++) a->out[j] = a->s * a->in[j];
}

int pd_generator_run(pd_generator *g, float *x, const float *labels, int n, pd_error *err) {
    if (!g || !x) return pd_fail(err, "generator: NULL argument");
    if (n < 1) return pd_fail(err, "generator: batch size %d < 1", n);
    size_t dim = (size_t)g->C * g->H * g->W, total = dim * (size_t)n;
    if (total / (size_t)n != dim || total > SIZE_MAX / 16)
        return pd_fail(err, "generator: batch of %d images of %zu values is too large", n, dim);
    float *xin = core_alloc(sizeof(float) * (2 * total + (size_t)n));
    if (!xin) return pd_fail(err, "generator: out of memory for a batch of %d", n);
    float *out = xin + total, *sig = out + total;
    const float sf = (float)g->sigma_init;
    struct scale_args a = {xin, x, sf};
    core_pool_for((long)total, total > 32768, scale_items, &a);
    for (int b = 0; b < n; b++) sig[b] = sf;
    int rc = pd_denoiser_eval(g->ctx, out, xin, sig, labels, n, err);
    if (rc == 0) memcpy(x, out, sizeof(float) * total);
    core_free(xin);
    return rc;
}
