/* ref_sampling.c — sampler-test plumbing (see ref_sampling.h). */
#include "ref_sampling.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rec_eval(pd_denoiser *self, float *out, const float *x, const float *sigma,
                    const float *labels, int n, float *features, pd_error *err) {
    rs_rec *c = self->ctx;
    if (pd_denoiser_eval_features(c->inner, out, x, sigma, labels, n, features, err)) return -1;
    size_t m = (size_t)n * self->C * self->H * self->W;
    if (m <= c->cap) memcpy(c->last, out, m * sizeof *out);
    if (c->calls < RS_REC_MAX) c->sig[c->calls] = sigma[0];
    c->calls++;
    return 0;
}

static void rec_destroy(pd_denoiser *self) {
    rs_rec *c = self->ctx;
    pd_denoiser_free(c->inner);
    free(c->last);
    free(c);
}

pd_denoiser *rs_open_rec(const char *spec, size_t cap) {
    pd_error err;
    pd_denoiser *inner;
    if (pd_denoiser_analytic(&inner, spec, &err)) {
        printf("cannot open %s: %s\n", spec, err.msg);
        exit(1);
    }
    pd_denoiser *d = calloc(1, sizeof *d);
    rs_rec *c = calloc(1, sizeof *c);
    *d = *inner;
    d->evals = 0;
    d->ctx = c;
    d->eval = rec_eval;
    d->destroy = rec_destroy;
    c->inner = inner;
    c->cap = cap;
    c->last = calloc(cap, sizeof *c->last);
    return d;
}

void rs_noise(float *z, int n, size_t dim, const uint64_t *seeds) {
    for (int b = 0; b < n; b++) pd_randn(z + (size_t)b * dim, dim, seeds[b], 0);
}

int rs_sample(pd_denoiser *d, const pd_sample_params *p, float *x, const uint64_t *seeds, int n,
              pd_sample_stats *st) {
    pd_error err = {{0}};
    pd_sample_stats tmp;
    int rc = pd_sample(d, p, x, NULL, seeds, n, st ? st : &tmp, &err);
    if (rc) printf("  pd_sample failed: %s\n", err.msg);
    return rc;
}

pd_amed_info rs_amed_info(pd_amed_kind k, double s_dir, double s_time) {
    pd_amed_info in;
    memset(&in, 0, sizeof in);
    in.kind = k;
    in.steps = 3;
    in.nfe = 5;
    in.afs = 1;
    in.grid = k == PD_AMED_SOLVER ? PD_GRID_VP_TIME : PD_GRID_KARRAS;
    in.rho = k == PD_AMED_SOLVER ? 1 : 7;
    in.sigma_min = 0.002;
    in.sigma_max = 80;
    in.s_dir = s_dir;
    in.s_time = s_time;
    in.max_order = k == PD_AMED_PLUGIN_IPNDM ? 4 : 1;
    snprintf(in.teacher, sizeof in.teacher, "heun");
    in.teacher_m = 1;
    snprintf(in.model_sha256, sizeof in.model_sha256, "%064d", 7);
    snprintf(in.model_name, sizeof in.model_name, "tiny.safetensors");
    in.images = 1000;
    in.batch = 64;
    in.lr = 5e-3;
    in.seed = 12345678901234567ull;
    in.final_loss = 0.25;
    return in;
}

pd_sample_params rs_params(pd_sampler_kind k, pd_grid_kind g, int steps, int end_at_zero) {
    pd_sample_params p = pd_sample_default_params();
    p.sampler = k;
    p.sched.grid = g;
    p.sched.end_at_zero = end_at_zero;
    p.steps = steps;
    return p;
}

double rs_fit_order(const int *steps, const double *err, int n) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        double a = log(steps[i]), b = log(err[i]);
        sx += a, sy += b, sxx += a * a, sxy += a * b;
    }
    return -(n * sxy - sx * sy) / (n * sxx - sx * sx);
}
