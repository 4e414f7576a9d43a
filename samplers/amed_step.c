/* amed_step.c — the predictor plumbing shared by the AMED samplers (contract in amed_step.h). */
#include "samplers/amed_step.h"
#include "samplers/amed_predictor.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

int amed_begin(sampler_run *r, int plugin) {
    const pd_amed_predictor *pred = r->p->amed;
    const char *name = pd_sampler_name(r->p->sampler);
    if (pred) {
        pd_amed_kind k = pred->info.kind;
        if ((k == PD_AMED_SOLVER) == plugin)
            return pd_fail(r->err, "%s: the predictor was trained for AMED %s; use --sampler %s", name,
                           pd_amed_kind_name(k), plugin ? "amed" : "amed-plugin");
        if (r->d->feature_dim != 0 && r->d->feature_dim != AMED_FEAT)
            return pd_fail(r->err,
                           "%s: denoiser '%s' reports a %d-value feature tap, the predictor reads %d "
                           "(an 8x8 level): sample at the model's trained resolution",
                           name, r->d->desc, r->d->feature_dim, AMED_FEAT);
    }
    amed_state *st = calloc(1, sizeof *st);
    size_t n = (size_t)r->n;
    if (st) {
        st->feat = calloc(n * AMED_FEAT, sizeof(float));
        st->r = calloc(5 * n, sizeof(double));
    }
    if (!st || !st->feat || !st->r) {
        if (st) free(st->feat), free(st->r);
        free(st);
        return pd_fail(r->err, "%s: out of memory", name);
    }
    st->c = st->r + n;
    st->a = st->c + n;
    st->s = st->a + n;
    st->sig = st->s + n;
    st->pred = pred;
    st->ask = pred != NULL;
    st->tap = pred && r->d->feature_dim == AMED_FEAT;
    r->state = st;
    return 0;
}

void amed_end(sampler_run *r) {
    amed_state *st = r->state;
    if (st) {
        free(st->feat);
        free(st->r);
        free(st);
    }
    r->state = NULL;
}

int amed_first_eval(sampler_run *r, const double *x, double t0, int i) {
    amed_state *st = r->state;
    if (!st->ask) return sampler_run_denoise(r, x, t0, i);
    int rc = sampler_run_denoise_features(r, x, t0, i, st->feat);
    /* the reference's AFS step feeds zeros (no network call, nothing captured) */
    if (rc == 0 && r->last_afs) memset(st->feat, 0, sizeof(float) * (size_t)r->n * AMED_FEAT);
    return rc;
}

void amed_predict_interval(sampler_run *r, double t0, double t1) {
    amed_state *st = r->state;
    for (int b = 0; b < r->n; b++) {
        double rr = 0.5, c = 1.0, a = 1.0;
        if (st->pred) {
            amed_cache k;
            amed_forward(st->pred, st->tap ? st->feat + (size_t)b * AMED_FEAT : NULL, t0, t1, &k);
            rr = k.r, c = k.c, a = k.a;
        }
        st->r[b] = rr;
        st->c[b] = c;
        st->a[b] = a;
        /* docs/algorithms.md §S4.1: s = t_{n+1}^r t_n^(1-r), written as DPM-Solver-2 writes it (dpm2.c), so the
         * neutral predictor reproduces it bit for bit */
        st->s[b] = pow(t1, rr) * pow(t0, 1.0 - rr);
        st->sig[b] = a * st->s[b];
    }
}
