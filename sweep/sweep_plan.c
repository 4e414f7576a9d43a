/* sweep_plan.c — what a sweep settles before its first cell (sweep_run.h): the model (a file,
 * or an analytic spec) and the facts the cell keys need; labels and metrics checked against it;
 * each variant's denoiser, built now so that a bad size, guidance or Skip-Tuning setting fails
 * before any sampling; AMED predictors and one-step generators per (sampler, budget), a missing
 * file meaning no cell for that budget; the classifier (checked against every variant's image
 * shape), the FID Inception network and reference, and the evaluator. Then, per cell, its
 * denoiser, its sampler parameters resolved against the model (sigma range, SNR shift) and the
 * ends of its sigma grid, and the one-line description the log and progress use.
 */
#include "core/util.h"
#include "sweep/sweep_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void eval_log(void *user, const char *line) {
    sw_run *R = user;
    sw_log(R, "metrics: %s", line);
}

/* ------------------------------------------------------------------ model and variants */

int sw_open_model(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    sw_model_facts *mf = &R->mf;
    memset(mf, 0, sizeof *mf);
    if (!strncmp(s->model, "analytic:", 9)) {
        pd_error e2;
        if (pd_denoiser_analytic(&R->analytic, s->model, &e2))
            return pd_fail(err, "%s:%d: model: %s", s->source, s->model_line, e2.msg);
        pd_denoiser *d = R->analytic;
        mf->known = 1;
        mf->is_analytic = 1;
        snprintf(mf->identity, sizeof mf->identity, "%.150s", s->model);
        mf->res = d->H;
        mf->C = d->C;
        mf->label_dim = d->label_dim;
        mf->sigma_min = d->sigma_min;
        mf->sigma_max = d->sigma_max;
        return 0;
    }
    struct stat st;
    if (stat(s->model_file, &st)) {
        if (R->o->dry_run) {
            sw_log(R, "model %s: %s; a run would stop here (paths resolve against the sweep file's "
                     "folder, the current directory, then pixdiff's data directory)", s->model,
                  strerror(errno));
            snprintf(R->dry_missing, sizeof R->dry_missing, "model %s", s->model);
            return 0;
        }
        return pd_fail(err, "%s:%d: model: %s: %s (paths resolve against the sweep file's folder, "
                       "the current directory, then pixdiff's data directory)",
                       s->source, s->model_line, s->model, strerror(errno));
    }
    pd_error e2;
    if (pd_model_load(&R->model, s->model_file, &e2))
        return pd_fail(err, "%s:%d: model: %s", s->source, s->model_line, e2.msg);
    const pd_unet_config *cfg = pd_model_config(R->model);
    if (cfg->kind[0] && strcmp(cfg->kind, "denoiser"))
        return pd_fail(err, "%s:%d: model: %s is a %s, not a denoiser; a sweep compares samplers "
                            "of a denoiser",
                       s->source, s->model_line, s->model, cfg->kind);
    mf->known = 1;
    snprintf(mf->identity, sizeof mf->identity, "sha256:%s", pd_model_sha256(R->model));
    mf->res = cfg->img_resolution;
    mf->C = cfg->in_channels;
    mf->label_dim = cfg->label_dim;
    mf->sigma_min = cfg->sigma_min;
    mf->sigma_max = cfg->sigma_max;
    return 0;
}

/* The variant's stack describes itself once: the cell keys and reference keys read the text. */
static int describe_variant(sw_run *R, int vi, const char *where, pd_error *err) {
    sw_run_variant *rv = &R->var[vi];
    pd_error e2;
    if (pd_denoiser_describe(rv->den, rv->desc, sizeof rv->desc, &e2)) return pd_fail(err, "%s: %s", where, e2.msg);
    R->mf.den_desc[vi] = rv->desc;
    return 0;
}

/* Builds each variant's denoiser now, so every size, guidance or Skip-Tuning problem shows up
 * before the first cell. */
int sw_build_variants(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    for (int vi = 0; vi < s->n_variants; vi++) {
        const sw_variant *v = &s->variants[vi];
        sw_run_variant *rv = &R->var[vi];
        char where[700];
        snprintf(where, sizeof where, "%s:%d: variants[%d] '%s'", s->source, v->line, vi, v->name);
        if (R->analytic) {
            if (v->cfg) return pd_fail(err, "%s: guidance needs a class-conditional model file", where);
            /* An analytic denoiser has one size and no network to tune or guide. */
            if (v->ug || v->skip || (v->size && v->size != R->mf.res))
                return pd_fail(err, "%s: %s needs a model file; %s is analytic", where,
                               v->ug ? "upsample guidance" : v->skip ? "Skip-Tuning" : "a sampling size",
                               s->model);
            rv->den = R->analytic;
            if (describe_variant(R, vi, where, err)) return -1;
            continue;
        }
        int res = R->mf.res, size = v->size ? v->size : res;
        pd_error e2;
        pd_denoiser *hi = NULL, *lo = NULL, *w = NULL;
        if (v->ug) {
            if (size % res || size / res < 2)
                return pd_fail(err, "%s: upsample guidance samples at m x the model's %d px (m >= 2); "
                                    "size %d is not",
                               where, res, size);
            if (pd_denoiser_from_model(&hi, R->model, size, &e2))
                return pd_fail(err, "%s: size %d: %s", where, size, e2.msg);
            rv->own[rv->n_own++] = hi;
            if (pd_denoiser_from_model(&lo, R->model, res, &e2))
                return pd_fail(err, "%s: %s", where, e2.msg);
            rv->own[rv->n_own++] = lo;
            if (pd_denoiser_upsample_guidance(&w, hi, lo, size / res, v->ug_w, v->ug_eta, &e2))
                return pd_fail(err, "%s: upsample_guidance: %s", where, e2.msg);
            rv->own[rv->n_own++] = w;
            rv->den = w;
        } else {
            if (pd_denoiser_from_model(&hi, R->model, size, &e2))
                return pd_fail(err, "%s: size %d: %s", where, size, e2.msg);
            rv->own[rv->n_own++] = hi;
            rv->den = hi;
        }
        if (v->skip) {
            /* Both branches of a guided denoiser are the same network: both get the scales. */
            if (pd_denoiser_set_skip_tuning(hi, &v->skip_tuning, &e2) ||
                (lo && pd_denoiser_set_skip_tuning(lo, &v->skip_tuning, &e2)))
                return pd_fail(err, "%s: skip_tuning: %s", where, e2.msg);
        }
        if (v->cfg) { /* classifier-free guidance, outermost: it batches both labels through all */
            if (R->labels == SW_LABELS_NONE)
                return pd_fail(err, "%s: guidance needs labels (labels: cycle)", where);
            if (pd_model_config(R->model)->label_dropout == 0)
                return pd_fail(err, "%s: guidance: the model was trained without label dropout", where);
            if (pd_denoiser_cfg(&w, rv->den, v->cfg_w, &e2))
                return pd_fail(err, "%s: guidance: %s", where, e2.msg);
            rv->own[rv->n_own++] = w;
            rv->den = w;
        }
        if (describe_variant(R, vi, where, err)) return -1;
    }
    return 0;
}

void sw_free_variants(sw_run *R) {
    for (int vi = 0; vi < SW_MAX_VARIANTS; vi++) {
        sw_run_variant *rv = &R->var[vi];
        for (int k = rv->n_own - 1; k >= 0; k--) pd_denoiser_free(rv->own[k]);
        memset(rv, 0, sizeof *rv);
    }
}

/* AMED predictors named by a "{nfe}" template: one file per budget. A missing file means no cell
 * for that budget (logged); a file trained for another sampler, NFE or model is an error. */
int sw_load_predictors(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    size_t slots = (size_t)s->n_samplers * s->n_nfe;
    R->ov = calloc(slots, sizeof *R->ov);
    R->preds = calloc(slots, sizeof *R->preds);
    if (!R->ov || !R->preds) return pd_fail(err, "out of memory");
    for (int si = 0; si < s->n_samplers; si++) {
        const sw_sampler *sm = &s->samplers[si];
        if (!sm->predictor[0]) continue;
        char missing[300] = "";
        size_t mlen = 0;
        for (int b = 0; b < s->n_nfe; b++) {
            sw_budget_override *o = &R->ov[(size_t)si * s->n_nfe + b];
            char path[600], where[700];
            o->used = 1;
            snprintf(where, sizeof where, "%s:%d: samplers[%d].predictor", s->source, sm->predictor_line, si);
            if (sw_predictor_path(path, sizeof path, sm, s->nfe[b]))
                return pd_fail(err, "%s: path too long", where);
            struct stat st;
            if (stat(path, &st)) {
                o->skip = 1;
                if (mlen < sizeof missing)
                    mlen += (size_t)snprintf(missing + mlen, sizeof missing - mlen, "%s%d", mlen ? ", " : "", s->nfe[b]);
                continue;
            }
            pd_error e2;
            pd_amed_predictor **pp = &R->preds[(size_t)si * s->n_nfe + b];
            if (pd_amed_predictor_load(pp, path, &e2)) return pd_fail(err, "%s: %s", where, e2.msg);
            const pd_amed_info *info = pd_amed_predictor_info(*pp);
            if (pd_amed_kind_sampler(info->kind) != sm->p.sampler)
                return pd_fail(err, "%s: %s is an AMED %s predictor, for the %s sampler, not %s", where, path,
                               pd_amed_kind_name(info->kind), pd_sampler_name(pd_amed_kind_sampler(info->kind)),
                               pd_sampler_name(sm->p.sampler));
            if (info->nfe != s->nfe[b])
                return pd_fail(err, "%s: %s was trained for NFE %d, not the budget %d", where, path, info->nfe,
                               s->nfe[b]);
            if (R->model && info->model_sha256[0] && strcmp(info->model_sha256, pd_model_sha256(R->model)))
                return pd_fail(err, "%s: %s was trained for another model (%s, sha256 %.12s...), not %s", where,
                               path, info->model_name, info->model_sha256, s->model);
            o->p = sm->p;
            pd_amed_sample_params(*pp, &o->p);
            int nfe = pd_sampler_nfe_for_steps(&o->p, o->p.steps);
            if (nfe != s->nfe[b] || o->p.steps < 1)
                return pd_fail(err, "%s: %s: %d steps spend %d evaluations, not the budget %d", where, path,
                               o->p.steps, nfe, s->nfe[b]);
            if (core_sha256_file(path, o->sha256, &e2)) return pd_fail(err, "%s: %s", where, e2.msg);
        }
        if (missing[0])
            sw_log(R, "%s: no predictor file %s for NFE %s: those budgets have no cell", sm->label,
                  sm->predictor, missing);
    }
    return 0;
}

/* One-step generators named by sampler entries: a missing file means no cell (logged, as for a
 * predictor: the sweep runs before the distillation has finished); a file that is not a
 * generator, or one that makes images another size or for other classes than the model's, is an
 * error naming the file. */
int sw_load_generators(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    for (int si = 0; si < s->n_samplers; si++) {
        const sw_sampler *sm = &s->samplers[si];
        if (!sm->generator[0]) continue;
        char where[700];
        snprintf(where, sizeof where, "%s:%d: samplers[%d].generator", s->source, sm->generator_line, si);
        sw_budget_override *o = &R->ov[(size_t)si * s->n_nfe];
        struct stat st;
        if (stat(sm->generator, &st)) {
            sw_log(R, "%s: no generator file %s: no cell", sm->label, sm->generator);
            for (int b = 0; b < s->n_nfe; b++) o[b].used = o[b].skip = 1;
            continue;
        }
        pd_error e2;
        if (pd_model_load(&R->gen_model[si], sm->generator, &e2)) return pd_fail(err, "%s: %s", where, e2.msg);
        const pd_unet_config *cfg = pd_model_config(R->gen_model[si]);
        if (strcmp(cfg->kind, "generator") || !(cfg->sigma_init > 0))
            return pd_fail(err, "%s: %s is a %s, not a one-step generator (pixdiff distill sid makes those)",
                           where, sm->generator, cfg->kind[0] ? cfg->kind : "denoiser");
        if (R->mf.known && (cfg->img_resolution != R->mf.res || cfg->in_channels != R->mf.C ||
                            cfg->label_dim != R->mf.label_dim))
            return pd_fail(err, "%s: %s makes %dx%dx%d images for %d classes; the model %s makes "
                                "%dx%dx%d for %d",
                           where, sm->generator, cfg->img_resolution, cfg->img_resolution, cfg->in_channels,
                           cfg->label_dim, s->model, R->mf.res, R->mf.res, R->mf.C, R->mf.label_dim);
        if (pd_generator_from_model(&R->gen[si], R->gen_model[si], 0, &e2))
            return pd_fail(err, "%s: %s", where, e2.msg);
        for (int b = 0; b < s->n_nfe; b++) {
            o[b].used = 1;
            o[b].p = sm->p;
            o[b].p.steps = 1;
            o[b].sigma_init = cfg->sigma_init;
            snprintf(o[b].sha256, sizeof o[b].sha256, "%s", pd_model_sha256(R->gen_model[si]));
        }
    }
    return 0;
}

/* The denoiser of a cell's variant. A generator's cell (R->gen) makes its images without it, but
 * exists only in a variant without transforms, whose denoiser has the generator's image shape
 * (load_generators checks it against the model). */
pd_denoiser *sw_cell_denoiser(const sw_run *R, const sw_cell *c) { return R->var[c->variant].den; }

/* What a sweep file alone could not check: labels against the model's classes, metrics against
 * the classifier's input size. */
int sw_check_against_model(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    R->labels = sw_resolved_labels(s, &R->mf);
    if (!R->mf.known) return 0;
    if (R->labels == SW_LABELS_CYCLE && R->mf.label_dim == 0)
        return pd_fail(err, "%s:%d: labels: cycle needs a class-conditional model; %s has no labels",
                       s->source, s->labels_line, s->model);
    if (sw_spec_has_metric(s, SW_METRIC_ACCURACY) && R->labels != SW_LABELS_CYCLE)
        return pd_fail(err, "%s:%d: metrics: accuracy needs a class-conditional model; %s has no labels",
                       s->source, s->metrics_line, s->model);
    return 0;
}

int sw_needs_classifier(const sw_spec *s) {
    for (int i = 0; i < s->n_metrics; i++)
        if (sw_spec_metric_uses_classifier(s, s->metrics[i])) return 1;
    return 0;
}

/* features: inception: the FID network, checked before any writing. */
int sw_open_inception(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    struct stat st;
    if (R->o->dry_run && stat(s->inception, &st)) {
        sw_log(R, "inception %s: %s; a run would stop here", s->inception, strerror(errno));
        return 0;
    }
    pd_error e2;
    if (pd_inception_load(&R->inc, s->inception, &e2))
        return pd_fail(err, "%s:%d: inception: %s", s->source, s->features_line, e2.msg);
    return 0;
}

/* The FID reference, once there are cells to run. */
int sw_open_fid_ref(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    pd_error e2;
    double t0 = core_now();
    pd_fid_ref_options fo = {0, s->data_dir[0] ? s->data_dir : NULL, NULL, NULL};
    if (pd_fid_ref_load(&R->fid_ref, R->inc, s->fid_ref, (pd_fid_prep)s->fid_prep, &fo, &e2))
        return pd_fail(err, "%s:%d: fid_ref: %s", s->source, s->features_line, e2.msg);
    sw_log(R, "FID reference %s: %s (%.1f s)", s->fid_ref,
          R->fid_ref.n ? "statistics of its images" : "statistics from the file", core_now() - t0);
    return 0;
}

/* Loads the classifier and checks every variant's samples fit it (cheap, before any writing). */
int sw_open_classifier(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    struct stat st;
    if (R->o->dry_run && stat(s->classifier_file, &st)) {
        sw_log(R, "classifier %s: %s; a run would stop here", s->classifier, strerror(errno));
        snprintf(R->dry_missing, sizeof R->dry_missing, "classifier %s", s->classifier);
        return 0;
    }
    pd_error e2;
    if (pd_model_load(&R->clf, s->classifier_file, &e2))
        return pd_fail(err, "%s:%d: classifier (for fd/kid/accuracy/spectral): %s", s->source,
                       s->classifier_line, e2.msg);
    const pd_unet_config *c = pd_model_config(R->clf);
    if (pd_classifier_feature_dim(R->clf) < 0)
        return pd_fail(err, "%s:%d: classifier: %s is not a classifier model", s->source,
                       s->classifier_line, s->classifier);
    for (int vi = 0; vi < s->n_variants && R->mf.known; vi++) {
        const pd_denoiser *d = R->var[vi].den;
        if (d->C != c->in_channels || d->H % c->img_resolution || d->W != d->H)
            return pd_fail(err, "%s:%d: variants[%d] '%s': %dx%dx%d samples do not fit the classifier "
                                "%s (%d channels, %d px or a multiple)",
                           s->source, s->variants[vi].line, vi, s->variants[vi].name, d->C, d->H, d->W,
                           s->classifier, c->in_channels, c->img_resolution);
    }
    return 0;
}

/* The evaluator: loads or computes the Fashion-MNIST reference statistics (metrics/). */
int sw_open_evaluator(sw_run *R, pd_error *err) {
    const sw_spec *s = R->s;
    pd_eval_options eo = pd_eval_default_options();
    eo.log = eval_log;
    eo.user = R;
    /* Precision/recall cost O(n^2): only when the sweep asks for them. */
    if (!sw_spec_has_metric(s, SW_METRIC_PRECISION_RECALL)) eo.pr_k = 0;
    if (s->data_dir[0]) eo.data_dir = s->data_dir;
    pd_error e2;
    if (pd_eval_create(&R->ev, R->clf, &eo, &e2))
        return pd_fail(err, "%s:%d: metrics: %s", s->source, s->metrics_line, e2.msg);
    return 0;
}

/* ------------------------------------------------------------------ one cell */

static void cell_params(sw_run *R, const sw_cell *c, pd_sample_params *q) {
    const sw_spec *s = R->s;
    const sw_variant *v = &s->variants[c->variant];
    const pd_denoiser *d = sw_cell_denoiser(R, c);
    /* a generator's cell: the sigma range of the generator's network */
    const pd_unet_config *gc = R->gen[c->sampler] ? pd_model_config(R->gen_model[c->sampler]) : NULL;
    *q = c->p;
    if (q->sched.sigma_min <= 0) q->sched.sigma_min = gc ? gc->sigma_min : d->sigma_min;
    if (q->sched.sigma_max <= 0) q->sched.sigma_max = gc ? gc->sigma_max : d->sigma_max;
    q->sched.shift = v->shift;
    q->sched.shift_res = d->H;
    q->sched.shift_base = v->shift_base > 0 ? v->shift_base : R->mf.res;
    q->sched.shift_base_low = v->shift_base_low;
    q->steps = c->steps;
    q->nfe = 0;
}

/* The cell's parameters and the ends of its trajectory reference (pd_trajectory_span): its grid's
 * first sigma (where the noise starts) and its smallest nonzero sigma. */
int sw_cell_sigmas(sw_run *R, const sw_cell *c, const char *what, pd_sample_params *q, double *s_first,
                   double *s_last, pd_error *err) {
    cell_params(R, c, q);
    pd_error e2;
    if (pd_trajectory_span(sw_cell_denoiser(R, c), q, s_first, s_last, &e2))
        return pd_fail(err, "%s: %s: %s", R->s->source, what, e2.msg);
    return 0;
}

void sw_describe_cell(char *out, size_t cap, const sw_spec *s, const sw_cell *c) {
    if (s->samplers[c->sampler].generator[0]) {
        snprintf(out, cap, "%s (one-step generator, NFE 1) [%s]", s->samplers[c->sampler].label,
                 s->variants[c->variant].name);
        return;
    }
    snprintf(out, cap, "%s nfe<=%d (%d step%s, NFE %d) [%s]", s->samplers[c->sampler].label, c->budget,
             c->steps, c->steps == 1 ? "" : "s", c->nfe, s->variants[c->variant].name);
}

