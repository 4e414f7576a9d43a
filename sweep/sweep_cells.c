/* sweep_cells.c — the grid of cells (variants x samplers x NFE budgets) and each cell's canonical
 * key (sweep.h).
 *
 * A key is the text of every setting that changes a cell's numbers, resolved against the model
 * (its hash, sigma range and resolution), written in a fixed order with shortest round-trip
 * numbers:
 *   model=sha256:<hex>|sampler=heun|grid=karras|rho=7|end=zero|sigma=0.002..80|afs=0|steps=5|
 *   size=32|shift=none|n=5000|seed=0|labels=cycle|metrics=fd,kid|classifier=<path>
 * plus the options the sampler reads and the variant's transforms. The denoiser's part is the
 * variant's stack as it describes itself (pd_denoiser_describe: "model=...|size=N" then one term
 * per transform), spliced in the order keys have always had: its model term first, its size
 * term and transforms after the sampler's part and the grid's shift. So a new transform changes
 * the keys with no change here, and the keys of earlier runs stay as they were. Names (series
 * labels, variant names) are not part of it, so renaming is free; two budgets that give the same
 * step count are one cell; two (sampler, variant) pairs with equal keys are an error in the sweep
 * file. A one-step generator's key starts model=sha256:<its file>|sampler=generator|
 * sigma_init=2.5|steps=1 and every budget maps to that one cell. Without the model file (a dry
 * run) there is no stack to describe: the key then holds the model's path, the variant's size
 * as written and its name.
 */
#include "sweep/sweep.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sw_labels sw_resolved_labels(const sw_spec *s, const sw_model_facts *mf) {
    if (s->labels != SW_LABELS_AUTO) return s->labels;
    if (!mf->known) return SW_LABELS_AUTO;
    return mf->label_dim > 0 ? SW_LABELS_CYCLE : SW_LABELS_NONE;
}

void sw_series_name(char *out, size_t cap, const sw_spec *s, int sampler, int variant) {
    if (s->n_variants > 1)
        snprintf(out, cap, "%s / %s", s->samplers[sampler].label, s->variants[variant].name);
    else snprintf(out, cap, "%s", s->samplers[sampler].label);
}

typedef struct keybuf {
    char *s;
    size_t len, cap;
} keybuf;

#define kadd(k, ...) jb_addf((k)->s, (k)->cap, &(k)->len, __VA_ARGS__)

static const char *num(char *t, double v) {
    jb_fmt_double(t, 40, v);   /* "inf" for infinities */
    return t;
}

/* The options the sampler reads, from the option table (pixdiff.h) in its order: "|key=value"
 * by each row's key rule; a group ("|churn=10,0.05,50,1.003") only when its head is not default. */
static void key_options(keybuf *kb, const pd_sample_params *p) {
    int n;
    const pd_sampler_option *t = pd_sampler_options(&n);
    char a[40];
    for (int i = 0; i < n; i++) {
        const pd_sampler_option *o = &t[i];
        if (!(o->samplers & (1u << p->sampler)) || o->key_rule == PD_OPT_KEY_MEMBER) continue;
        if (o->key_rule != PD_OPT_KEY_ALWAYS && pd_sampler_option_get(p, o) == o->def) continue;
        kadd(kb, "|%s=", o->key ? o->key : o->name);
        for (int j = i; j < n && (j == i || t[j].key_rule == PD_OPT_KEY_MEMBER); j++) {
            double v = pd_sampler_option_value(p, &t[j]);
            if (t[j].type == PD_OPT_NUM) kadd(kb, "%s%s", j > i ? "," : "", num(a, v));
            else kadd(kb, "%s%d", j > i ? "," : "", (int)v);
        }
    }
}

/* The sampler's part of a key: model (the denoiser description's first term, model_term long),
 * sampler, grid and the options the sampler reads. */
static void key_sampler(keybuf *kb, const sw_model_facts *mf, const char *den, size_t model_term,
                        const char *model, const pd_sample_params *p, const char *predictor_sha, int steps) {
    char a[40], b[40];
    if (den) kadd(kb, "%.*s", (int)model_term, den);
    else kadd(kb, "model=%s", model);
    kadd(kb, "|sampler=%s|grid=%s", pd_sampler_name(p->sampler), pd_grid_name(p->sched.grid));
    if (p->sched.grid == PD_GRID_KARRAS || p->sched.grid == PD_GRID_VP_TIME)
        kadd(kb, "|rho=%s", num(a, p->sched.rho > 0 ? p->sched.rho : p->sched.grid == PD_GRID_KARRAS ? 7 : 1));
    kadd(kb, "|end=%s", p->sched.end_at_zero ? "zero" : "sigma-min");
    if (mf->known)
        kadd(kb, "|sigma=%s..%s", num(a, p->sched.sigma_min > 0 ? p->sched.sigma_min : mf->sigma_min),
             num(b, p->sched.sigma_max > 0 ? p->sched.sigma_max : mf->sigma_max));
    else kadd(kb, "|sigma=model");
    key_options(kb, p);
    if (predictor_sha && *predictor_sha) kadd(kb, "|predictor=sha256:%s", predictor_sha);
    kadd(kb, "|afs=%d|steps=%d", p->afs, steps);
}

static int make_key(char *out, const sw_spec *s, const sw_model_facts *mf, const pd_sample_params *p,
                    const sw_budget_override *o, int si, int vi, int steps) {
    const sw_variant *v = &s->variants[vi];
    const char *file_sha = o && o->used ? o->sha256 : NULL;
    char a[40], b[40];
    keybuf kb = {out, 0, SW_KEY_CAP};
    /* The variant's stack: "model=...", then "|size=N", then its transforms' terms. */
    const char *den = mf->known ? mf->den_desc[vi] : NULL;
    const char *size = den ? strstr(den, "|size=") : NULL;
    if (den && !size) return -1;
    const char *transforms = size ? size + 1 + strcspn(size + 1, "|") : NULL;
    if (s->samplers[si].generator[0]) {
        /* A generator: its own file and sigma_init; nothing of the sampler applies. */
        if (file_sha && *file_sha)
            kadd(&kb, "model=sha256:%s|sampler=generator|sigma_init=%s", file_sha, num(a, o->sigma_init));
        else kadd(&kb, "model=%s|sampler=generator", s->samplers[si].generator);
        kadd(&kb, "|steps=1");
    } else
        key_sampler(&kb, mf, den, den ? (size_t)(size - den) : 0, s->model, p, file_sha, steps);
    /* The variant, resolved: sampling size, the grid's shift, then each transform. */
    if (den) kadd(&kb, "%.*s", (int)(transforms - size), size);
    else kadd(&kb, "|size=%d", v->size);
    kadd(&kb, "|shift=%s", pd_shift_name(v->shift));
    if (v->shift != PD_SHIFT_NONE) {
        double base = v->shift_base > 0 ? v->shift_base : mf->known ? mf->res : 0;
        kadd(&kb, ",base=%s", num(a, base));
        if (v->shift == PD_SHIFT_INTERP) kadd(&kb, ",base_low=%s", num(b, v->shift_base_low));
    }
    if (den) kadd(&kb, "%s", transforms);
    else kadd(&kb, "|variant=%s", v->name);
    sw_labels lab = sw_resolved_labels(s, mf);
    kadd(&kb, "|n=%d|seed=%llu|labels=%s|metrics=", s->n, (unsigned long long)s->seed,
         lab == SW_LABELS_CYCLE ? "cycle" : lab == SW_LABELS_NONE ? "none" : "auto");
    /* Metrics in table order, so listing them differently is the same cell. */
    int first = 1, classifier = 0;
    for (int m = 0; m < SW_METRIC_COUNT; m++)
        if (sw_spec_has_metric(s, (sw_metric)m)) {
            kadd(&kb, "%s%s", first ? "" : ",", sw_metric_get((sw_metric)m)->name);
            first = 0;
            classifier |= sw_spec_metric_uses_classifier(s, (sw_metric)m);
        }
    if (sw_spec_has_metric(s, SW_METRIC_TRAJECTORY)) kadd(&kb, "|ref=heun:%d", s->reference_steps);
    if (classifier) kadd(&kb, "|classifier=%s", s->classifier);
    if (sw_spec_needs_inception(s))
        kadd(&kb, "|inception=%s,prep=%s,ref=%s", s->inception, pd_fid_prep_name((pd_fid_prep)s->fid_prep),
             s->fid_ref);
    if (classifier && s->data_dir[0]) kadd(&kb, "|data=%s", s->data_dir); /* only when not the default */
    return kb.len < kb.cap ? 0 : -1;
}

void sw_grid_free(sw_grid *g) {
    free(g->cells);
    free(g->map);
    memset(g, 0, sizeof *g);
}

int sw_grid_build(sw_grid *g, const sw_spec *s, const sw_model_facts *mf,
                  const sw_budget_override *ov, pd_error *err) {
    memset(g, 0, sizeof *g);
    size_t slots = (size_t)s->n_variants * s->n_samplers * s->n_nfe;
    g->cells = calloc(slots, sizeof *g->cells);
    g->map = malloc(slots * sizeof *g->map);
    if (!g->cells || !g->map) {
        sw_grid_free(g);
        return pd_fail(err, "%s: out of memory for %zu cells", s->source, slots);
    }
    for (int v = 0; v < s->n_variants; v++)
        for (int si = 0; si < s->n_samplers; si++)
            for (int b = 0; b < s->n_nfe; b++) {
                const sw_budget_override *o = ov ? &ov[(size_t)si * s->n_nfe + b] : NULL;
                size_t slot = ((size_t)v * s->n_samplers + si) * s->n_nfe + b;
                const sw_variant *vr = &s->variants[v];
                int gen = s->samplers[si].generator[0] != 0;
                if ((o && o->used && o->skip) ||
                    (gen && (vr->size || vr->ug || vr->skip || vr->cfg || vr->shift != PD_SHIFT_NONE))) {
                    g->map[slot] = -1; /* no file for this budget; a generator in a transformed variant */
                    continue;
                }
                const pd_sample_params *p = o && o->used ? &o->p : &s->samplers[si].p;
                int steps = gen ? 1 : o && o->used ? o->p.steps : pd_sampler_steps_for_nfe(p, s->nfe[b]);
                if (steps < 1) { /* sw_spec_load rejects these; kept for callers that skip it */
                    sw_grid_free(g);
                    return pd_fail(err, "%s: budget %d fits no step of %s", s->source, s->nfe[b],
                                   s->samplers[si].label);
                }
                char key[SW_KEY_CAP];
                if (make_key(key, s, mf, p, o, si, v, steps)) {
                    sw_grid_free(g);
                    return pd_fail(err, "%s: the settings of %s are too long for a cell key", s->source,
                                   s->samplers[si].label);
                }
                int found = -1;
                for (int c = 0; c < g->n_cells && found < 0; c++)
                    if (!strcmp(g->cells[c].key, key)) found = c;
                if (found >= 0 && (g->cells[found].sampler != si || g->cells[found].variant != v)) {
                    const sw_cell *o = &g->cells[found];
                    sw_grid_free(g);
                    if (o->variant != v)
                        return pd_fail(err, "%s:%d: variants '%s' and '%s' have the same settings",
                                       s->source, s->variants[v].line, s->variants[o->variant].name,
                                       s->variants[v].name);
                    return pd_fail(err, "%s:%d: samplers '%s' and '%s' have the same settings", s->source,
                                   s->samplers[si].line, s->samplers[o->sampler].label,
                                   s->samplers[si].label);
                }
                if (found < 0) {
                    sw_cell *c = &g->cells[g->n_cells];
                    c->sampler = si;
                    c->variant = v;
                    c->p = *p;
                    c->p.steps = steps;
                    c->budget = s->nfe[b];
                    c->steps = steps;
                    c->nfe = gen ? 1 : pd_sampler_nfe_for_steps(p, steps);
                    memcpy(c->key, key, sizeof key);
                    found = g->n_cells++;
                }
                g->map[slot] = found;
            }
    return 0;
}
