/* sweep_run.c — pd_sweep_run (include/pixdiff.h "sweeps"): validate, plan, then run each cell
 * that results.jsonl does not have yet.
 *
 * Order of work: the sweep file (sweep_config.c); the model and everything that needs it (labels,
 * sizes, upsample guidance, Skip-Tuning: each variant's denoiser is built now, so a bad variant
 * fails before any sampling); the grid and its keys (sweep_cells.c); results.jsonl (a torn last
 * line from a kill is cut off); a lock on the output folder (two sweeps appending to one file
 * would duplicate cells); the classifier evaluator if a metric needs it. Then per cell: the
 * cell's sigma grid, the trajectory reference if asked (memory, disk cache, or Heun with
 * reference_steps steps from the same noise), all n images in batches through pd_generate
 * (image i: noise pd_randn(seed + i, 0), seeds[i] = seed + i, label i mod K), the metrics
 * (sweep_metrics.c), an optional grid PNG of the first 64 images, one JSON line appended with fsync, and the report
 * files regenerated (sweep_report.c). A kill at any point loses at most the cell in progress.
 *
 * Time: "seconds" is the wall time of sampling the cell (noise, labels, pd_sample over all
 * batches); "seconds_denoiser" the part pd_sample spent inside denoiser calls; their ratio gives
 * "outside_denoiser", the sampler's own overhead, which issue 4 wants at a few percent.
 *
 * Under mpirun (docs/scale-out.md §3) every rank walks the same cells in the same order. Small
 * cells go whole to the ranks in rounds of one per rank (sweep_dist.c: the rule, and what moves):
 * the round's trajectory references are made first, together, each handed to the rank whose cell
 * needs it; then rank r samples and scores the round's r-th cell alone (R->solo), and rank 0
 * collects the records and writes them in the cells' order. A large cell, or one of the last
 * cells when fewer are left than ranks, is split instead: each rank samples its part of the
 * images (core/dist.h dist_part of the n indices; an image depends only on its index), rank 0
 * gathers them and computes the metrics. Rank 0 alone holds the lock, reads and writes the
 * folder: records, reports, grids and references. So the outputs are the one-process outputs
 * (timing fields aside), results.jsonl grows in the same order, and a job that loses a rank dies
 * as a whole (MPI) leaving at most the cells in flight (one round) to redo.
 */
#include "core/dist.h"
#include "core/progress.h"
#include "core/util.h"
#include "sweep/sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GRID_IMAGES 64

typedef struct run_variant {
    pd_denoiser *den;        /* what the cells sample with (the wrapper for upsample guidance) */
    pd_denoiser *own[4];     /* denoisers this variant owns (freed in reverse order) */
    int n_own;
} run_variant;

typedef struct run {
    const sw_spec *s;
    const pd_sweep_options *o;
    sw_model_facts mf;
    pd_model *model;
    pd_denoiser *analytic;   /* the analytic denoiser, shared by all variants */
    run_variant var[SW_MAX_VARIANTS];
    sw_grid g;
    sw_results res;
    pd_model *clf;
    pd_eval *ev;
    pd_inception *inc;              /* features: inception */
    pd_fid_ref fid_ref;
    pd_amed_predictor **preds;      /* [n_samplers * n_nfe], AMED predictors the cells use */
    sw_budget_override *ov;         /* [n_samplers * n_nfe] */
    pd_model *gen_model[SW_MAX_SAMPLERS];    /* one-step generators (sw_sampler.generator) */
    pd_generator *gen[SW_MAX_SAMPLERS];
    char out[1024];
    int lock_fd;
    sw_labels labels;
    int *classes;            /* [n] or NULL */
    float *onehot;           /* [batch, label_dim] */
    float *x;                /* [n, dim] samples of the current cell */
    size_t x_cap;            /* floats */
    /* the trajectory reference in memory */
    char ref_key[SW_KEY_CAP];
    float *ref_end, *ref_zero;
    /* progress (pd_progress, unit "evals": image evaluations, images x NFE) */
    pd_progress pr;
    double t_run, t_cell;
    int batch_i0;
    double units_done, secs_done, units_todo; /* of the cells this run samples */
    double cell_units;
    /* whole cells (run_round): this rank runs its cell alone, with the reference handed to it */
    int solo;
    float *solo_ref;         /* the reference at the cell's last sigma, [n, dim] */
    size_t solo_ref_cap;     /* floats */
    sw_cell_result solo_res; /* what the cell produced, until rank 0 has it */
    sw_cell_result *round;   /* rank 0: the round's results, one per rank */
    int *round_cells;        /* the round's cells, one per rank */
    double cell_frac;        /* the share of the running cell's sampling done */
    int in_reference;        /* 1 while a trajectory reference is computed (no cell progress) */
    char dry_missing[1100];  /* dry run: the input a real run would stop at ("" none) */
} run;

#define logf_(R, ...) pg_log((R)->o->log, (R)->o->user, __VA_ARGS__)

static void eval_log(void *user, const char *line) {
    run *R = user;
    logf_(R, "metrics: %s", line);
}

pd_sweep_options pd_sweep_default_options(void) {
    pd_sweep_options o;
    memset(&o, 0, sizeof o);
    return o;
}

/* ------------------------------------------------------------------ model and variants */

static int open_model(run *R, pd_error *err) {
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
            logf_(R, "model %s: %s; a run would stop here (paths resolve against the sweep file's "
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

/* Builds each variant's denoiser now, so every size, guidance or Skip-Tuning problem shows up
 * before the first cell. */
static int build_variants(run *R, pd_error *err) {
    const sw_spec *s = R->s;
    for (int vi = 0; vi < s->n_variants; vi++) {
        const sw_variant *v = &s->variants[vi];
        run_variant *rv = &R->var[vi];
        char where[700];
        snprintf(where, sizeof where, "%s:%d: variants[%d] '%s'", s->source, v->line, vi, v->name);
        if (R->analytic) {
            if (v->cfg) return pd_fail(err, "%s: guidance needs a class-conditional model file", where);
            rv->den = R->analytic;
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
    }
    return 0;
}

static void free_variants(run *R) {
    for (int vi = 0; vi < SW_MAX_VARIANTS; vi++) {
        run_variant *rv = &R->var[vi];
        for (int k = rv->n_own - 1; k >= 0; k--) pd_denoiser_free(rv->own[k]);
        memset(rv, 0, sizeof *rv);
    }
}

/* AMED predictors named by a "{nfe}" template: one file per budget. A missing file means no cell
 * for that budget (logged); a file trained for another sampler, NFE or model is an error. */
static int load_predictors(run *R, pd_error *err) {
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
            logf_(R, "%s: no predictor file %s for NFE %s: those budgets have no cell", sm->label,
                  sm->predictor, missing);
    }
    return 0;
}

/* One-step generators named by sampler entries: a missing file means no cell (logged, as for a
 * predictor: the sweep runs before the distillation has finished); a file that is not a
 * generator, or one that makes images another size or for other classes than the model's, is an
 * error naming the file. */
static int load_generators(run *R, pd_error *err) {
    const sw_spec *s = R->s;
    for (int si = 0; si < s->n_samplers; si++) {
        const sw_sampler *sm = &s->samplers[si];
        if (!sm->generator[0]) continue;
        char where[700];
        snprintf(where, sizeof where, "%s:%d: samplers[%d].generator", s->source, sm->generator_line, si);
        sw_budget_override *o = &R->ov[(size_t)si * s->n_nfe];
        struct stat st;
        if (stat(sm->generator, &st)) {
            logf_(R, "%s: no generator file %s: no cell", sm->label, sm->generator);
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
static pd_denoiser *cell_denoiser(const run *R, const sw_cell *c) { return R->var[c->variant].den; }

/* What a sweep file alone could not check: labels against the model's classes, metrics against
 * the classifier's input size. */
static int check_against_model(run *R, pd_error *err) {
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

static int needs_classifier(const sw_spec *s) {
    for (int i = 0; i < s->n_metrics; i++)
        if (sw_spec_metric_uses_classifier(s, s->metrics[i])) return 1;
    return 0;
}

/* features: inception: the FID network, checked before any writing. */
static int open_inception(run *R, pd_error *err) {
    const sw_spec *s = R->s;
    struct stat st;
    if (R->o->dry_run && stat(s->inception, &st)) {
        logf_(R, "inception %s: %s; a run would stop here", s->inception, strerror(errno));
        return 0;
    }
    pd_error e2;
    if (pd_inception_load(&R->inc, s->inception, &e2))
        return pd_fail(err, "%s:%d: inception: %s", s->source, s->features_line, e2.msg);
    return 0;
}

/* The FID reference, once there are cells to run. */
static int open_fid_ref(run *R, pd_error *err) {
    const sw_spec *s = R->s;
    pd_error e2;
    double t0 = core_now();
    pd_fid_ref_options fo = {0, s->data_dir[0] ? s->data_dir : NULL, NULL, NULL};
    if (pd_fid_ref_load(&R->fid_ref, R->inc, s->fid_ref, (pd_fid_prep)s->fid_prep, &fo, &e2))
        return pd_fail(err, "%s:%d: fid_ref: %s", s->source, s->features_line, e2.msg);
    logf_(R, "FID reference %s: %s (%.1f s)", s->fid_ref,
          R->fid_ref.n ? "statistics of its images" : "statistics from the file", core_now() - t0);
    return 0;
}

/* Loads the classifier and checks every variant's samples fit it (cheap, before any writing). */
static int open_classifier(run *R, pd_error *err) {
    const sw_spec *s = R->s;
    struct stat st;
    if (R->o->dry_run && stat(s->classifier_file, &st)) {
        logf_(R, "classifier %s: %s; a run would stop here", s->classifier, strerror(errno));
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
static int open_evaluator(run *R, pd_error *err) {
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

/* ------------------------------------------------------------------ sampling */

static int abort_cb(void *user) {
    run *R = user;
    return R->o->abort && R->o->abort(R->o->user);
}

/* done: the finished cells' evaluations plus the running cell's share (none while its reference
 * is computed); the rate is that of the finished cells, references left out (one-off costs). */
static void report_progress(run *R) {
    if (!R->o->progress) return;
    double now = core_now();
    R->pr.seconds = now - R->t_run;
    R->pr.stage_seconds = now - R->t_cell;
    double frac = R->in_reference ? 0 : R->cell_frac;
    R->pr.done = llround(R->units_done + R->cell_units * frac);
    R->pr.total = llround(R->units_done + R->units_todo);
    R->pr.rate = R->units_done > 0 && R->secs_done > 0 ? R->units_done / R->secs_done : -1;
    R->pr.eta_seconds = R->pr.rate > 0 ? (double)(R->pr.total - R->pr.done) / R->pr.rate : -1;
    R->o->progress(R->o->user, &R->pr);
}

static void fill_labels(run *R, int i0, int nb, int label_dim) {
    if (!R->classes) return;
    memset(R->onehot, 0, sizeof(float) * (size_t)nb * label_dim);
    for (int i = 0; i < nb; i++) R->onehot[(size_t)i * label_dim + R->classes[i0 + i]] = 1;
}

static void generate_cb(void *user, const pd_progress *p) {
    run *R = user;
    R->pr.images_done = p->images_done;
    R->pr.images = p->images;
    R->pr.batch = p->batch;
    R->pr.batches = p->batches;
    R->pr.step = p->step;
    R->pr.steps = p->steps;
    if (!R->in_reference && p->total > 0) R->cell_frac = (double)p->done / (double)p->total;
    report_progress(R);
}

/* Any rank's failure stops every rank here, before the next exchange: the failing rank keeps its
 * message, the others say what happened. */
static int agree(int failed, pd_error *err) {
    if (!dist_any(failed)) return 0;
    return failed ? -1 : pd_fail(err, "interrupted");
}

/* agree, or, while a rank runs a whole cell alone, its own verdict (no exchange). */
static int settle(run *R, int failed, pd_error *err) {
    if (R->solo) return failed ? -1 : 0;
    return agree(failed, err);
}

/* This rank's images [*lo, *hi) of a cell's n. */
static void my_images(int n, int *lo, int *hi) {
    long long a, b;
    dist_part(n, dist_rank(), &a, &b);
    *lo = (int)a;
    *hi = (int)b;
}

/* Rank 0 collects every rank's images [lo, hi) of x [n, dim] into place. */
static void gather_images(float *x, int n, size_t dim) { pd_dist_gather(x, n, dim * sizeof(float)); }

/* All n images of one run of d with parameters q (or of the one-step generator g, when not NULL)
 * into out [n, dim] (on rank 0), through the library's loop (pd_generate, pd_generator_generate:
 * image i from pd_randn(seed + i, 0), class classes[i]). Under mpirun
 * each rank generates its pd_dist_part of the images (pd_generate's (first, count) range gives
 * the images one process makes) and rank 0 gathers them. Seconds of wall time, of this rank's
 * denoiser time, and the NFE per image as pd_sample counted it (the same on every rank). */
static int sample_all(run *R, pd_denoiser *d, pd_generator *g, pd_sample_params q, float *out,
                      double *sec, double *sec_den, int *nfe, pd_error *err) {
    const size_t dim = (size_t)d->C * d->H * d->W;
    pd_generate_params gp = pd_generate_default_params();
    gp.sample = q;
    gp.seed = R->s->seed;
    gp.classes = R->classes;
    gp.batch = R->s->batch;
    gp.progress = generate_cb;
    gp.abort = abort_cb;
    gp.user = R;
    double t0 = core_now();
    pd_sample_stats st = {0};
    int lo = 0, hi = R->s->n;   /* alone: all of them */
    if (!R->solo) my_images(R->s->n, &lo, &hi);
    R->pr.images_done = 0;
    R->pr.step = R->pr.batch = 0;
    int rc = 0;
    if (abort_cb(R)) rc = pd_fail(err, "interrupted");
    else if (g ? pd_generator_generate(g, &gp, lo, hi - lo, out + (size_t)lo * dim, &st, err)
               : pd_generate(d, &gp, lo, hi - lo, out + (size_t)lo * dim, &st, err))
        rc = abort_cb(R) ? pd_fail(err, "interrupted") : -1;
    if (settle(R, rc != 0, err)) return -1;
    /* A rank may hold no image (n below the ranks): the NFE is the largest any rank saw. */
    int seen = R->solo ? st.nfe : pd_dist_max(hi > lo ? st.nfe : -1);
    if (!R->solo) gather_images(out, R->s->n, dim);
    R->pr.images_done = R->s->n;
    *sec = core_now() - t0;
    *sec_den = st.seconds_denoiser;
    *nfe = seen;
    return 0;
}

/* ------------------------------------------------------------------ trajectory reference */

/* The reference for a cell: the probability-flow ODE of the cell's denoiser from the same noise,
 * solved by Heun with reference_steps steps on a Karras grid from the cell's first sigma down to
 * s_last, then one denoiser call for sigma = 0 (what the last step of an EDM sampler does). */
static int get_reference(run *R, int vi, double s_first, double s_last, pd_error *err) {
    const sw_spec *s = R->s;
    const sw_variant *v = &s->variants[vi];
    pd_denoiser *d = R->var[vi].den;
    char key[SW_KEY_CAP], a[40], b[40];
    jb_fmt_double(a, sizeof a, s_first);
    jb_fmt_double(b, sizeof b, s_last);
    /* Everything that changes the ODE or its start: model, denoiser transforms, noise, labels. */
    int len = snprintf(key, sizeof key, "reference=heun:%d|model=%s|size=%d|sigma=%s..%s|n=%d|seed=%llu|labels=%s",
                       s->reference_steps, R->mf.identity, d->H, a, b, s->n, (unsigned long long)s->seed,
                       R->labels == SW_LABELS_CYCLE ? "cycle" : "none");
    if (v->ug) {
        jb_fmt_double(a, sizeof a, v->ug_w);
        jb_fmt_double(b, sizeof b, v->ug_eta);
        len += snprintf(key + len, sizeof key - (size_t)len, "|ug=w:%s,eta:%s", a, b);
    }
    if (v->skip) {
        const pd_skip_tuning *t = &v->skip_tuning;
        len += snprintf(key + len, sizeof key - (size_t)len, "|skip=");
        for (int i = 0; i < (t->n_rho ? t->n_rho : 2) && len < (int)sizeof key; i++) {
            jb_fmt_double(a, sizeof a, t->n_rho ? t->rho[i] : i ? t->rho_top : t->rho_bottom);
            len += snprintf(key + len, sizeof key - (size_t)len, "%s%s", i ? "," : "", a);
        }
        jb_fmt_double(a, sizeof a, t->sigma_lo);
        jb_fmt_double(b, sizeof b, t->sigma_hi);
        len += snprintf(key + len, sizeof key - (size_t)len, ",sigma:%s..%s", a, b);
    }
    if (v->cfg && len < (int)sizeof key) {
        jb_fmt_double(a, sizeof a, v->cfg_w);
        len += snprintf(key + len, sizeof key - (size_t)len, "|cfg=%s", a);
    }
    if (len >= (int)sizeof key) return pd_fail(err, "reference key too long");
    if (R->ref_key[0] && !strcmp(R->ref_key, key)) return 0;
    free(R->ref_end);
    free(R->ref_zero);
    R->ref_end = R->ref_zero = NULL;
    R->ref_key[0] = 0;

    const int n = s->n;
    const size_t dim = (size_t)d->C * d->H * d->W;
    float *end = NULL, *zero = NULL;
    /* Rank 0 reads the cache; the other ranks only help compute a missing reference. */
    int got = dist_rank() == 0 ? sw_ref_load(R->out, key, n, d->C, d->H, d->W, &end, &zero, err) : 0;
    if (agree(got < 0, err)) return -1;
    dist_bcast(&got, sizeof got, 0);
    if (got == 1) {
        logf_(R, "reference %016llx: read from %s/reference (heun %d steps, sigma %g .. %g)",
              (unsigned long long)sw_hash(key), R->out, s->reference_steps, s_first, s_last);
    } else {
        end = malloc(sizeof(float) * (size_t)n * dim);
        zero = malloc(sizeof(float) * (size_t)n * dim);
        if (agree(!end || !zero, err)) {
            if (!end || !zero) pd_fail(err, "out of memory for the trajectory reference (%d images)", n);
            free(end);
            free(zero);
            return -1;
        }
        char what[160];
        snprintf(what, sizeof what, "reference: heun %d steps, sigma %.4g .. %.4g", s->reference_steps,
                 s_first, s_last);
        logf_(R, "reference %016llx: computing (heun %d steps from sigma %g to %g, %d images from the "
                 "cells' noise; cached in %s/reference)",
              (unsigned long long)sw_hash(key), s->reference_steps, s_first, s_last, n, R->out);
        const char *saved_what = R->pr.stage;
        R->pr.stage = what;
        R->pr.images = n;
        R->in_reference = 1;
        double t0 = core_now(), sec = 0, sec_den = 0;
        int nfe = 0, rc = 0;
        if (s_last < s_first) {
            pd_sample_params q = pd_sample_default_params();
            q.sampler = PD_SAMPLER_HEUN;
            q.sched.grid = PD_GRID_KARRAS;
            q.sched.rho = 7;
            q.sched.sigma_min = s_last;
            q.sched.sigma_max = s_first;
            q.sched.end_at_zero = 0;
            q.sched.shift = PD_SHIFT_NONE;
            q.steps = s->reference_steps;
            rc = sample_all(R, d, NULL, q, end, &sec, &sec_den, &nfe, err);
        } else {
            /* A one-point grid (one step into sigma = 0): the state at s_last is the start. */
            for (int i = 0; i < n; i++) pd_randn(end + (size_t)i * dim, dim, s->seed + (uint64_t)i, 0);
            for (size_t j = 0; j < (size_t)n * dim; j++) end[j] *= (float)s_first;
        }
        /* sigma = 0: D(x(s_last); s_last), batch by batch, each rank on its images. */
        const int batch = s->batch < n ? s->batch : n;
        int lo, hi;
        my_images(n, &lo, &hi);
        float *sig = malloc(sizeof(float) * (size_t)batch);
        if (!sig) rc = pd_fail(err, "out of memory");
        for (int i0 = lo; rc == 0 && i0 < hi; i0 += batch) {
            int nb = hi - i0 < batch ? hi - i0 : batch;
            for (int i = 0; i < nb; i++) sig[i] = (float)s_last;
            fill_labels(R, i0, nb, d->label_dim);
            rc = pd_denoiser_eval(d, zero + (size_t)i0 * dim, end + (size_t)i0 * dim, sig,
                                  R->classes ? R->onehot : NULL, nb, err);
        }
        free(sig);
        R->pr.stage = saved_what;
        R->in_reference = 0;
        rc = agree(rc != 0, err);
        if (rc == 0) gather_images(zero, n, dim);
        if (rc == 0 && dist_rank() == 0)
            rc = sw_ref_save(R->out, key, n, d->C, d->H, d->W, end, zero, err);
        if (rc) {
            free(end);
            free(zero);
            return -1;
        }
        logf_(R, "reference %016llx: heun %d steps (NFE %d), sigma %g .. %g, %d images: %.1f s",
              (unsigned long long)sw_hash(key), s->reference_steps, nfe + 1, s_first, s_last, n,
              core_now() - t0);
    }
    R->ref_end = end;
    R->ref_zero = zero;
    snprintf(R->ref_key, sizeof R->ref_key, "%s", key);
    return 0;
}

/* ------------------------------------------------------------------ one cell */

static void cell_params(run *R, const sw_cell *c, pd_sample_params *q) {
    const sw_spec *s = R->s;
    const sw_variant *v = &s->variants[c->variant];
    const pd_denoiser *d = cell_denoiser(R, c);
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

/* The cell's parameters and the ends of its grid: its first sigma (where the noise starts) and
 * the last one its samples are compared at. */
static int cell_sigmas(run *R, const sw_cell *c, const char *what, pd_sample_params *q, double *s_first,
                       double *s_last, pd_error *err) {
    cell_params(R, c, q);
    int gsteps = c->steps > 1 ? c->steps : 2;
    double *sig = malloc(sizeof(double) * (size_t)(gsteps + 1));
    if (!sig) return pd_fail(err, "out of memory");
    pd_error e2;
    if (pd_sigma_grid(sig, c->steps, &q->sched, &e2)) {
        free(sig);
        return pd_fail(err, "%s: %s: %s", R->s->source, what, e2.msg);
    }
    *s_first = sig[0];
    *s_last = sig[c->steps];
    if (q->sched.end_at_zero) {
        /* Compared with the solution at sigma = 0, reached through the grid's smallest nonzero
         * sigma: the last nonzero point of the same grid with at least two steps. */
        if (pd_sigma_grid(sig, gsteps, &q->sched, &e2)) {
            free(sig);
            return pd_fail(err, "%s: %s: %s", R->s->source, what, e2.msg);
        }
        *s_last = sig[gsteps - 1];
    }
    free(sig);
    return 0;
}

static void describe_cell(char *out, size_t cap, const sw_spec *s, const sw_cell *c) {
    if (s->samplers[c->sampler].generator[0]) {
        snprintf(out, cap, "%s (one-step generator, NFE 1) [%s]", s->samplers[c->sampler].label,
                 s->variants[c->variant].name);
        return;
    }
    snprintf(out, cap, "%s nfe<=%d (%d step%s, NFE %d) [%s]", s->samplers[c->sampler].label, c->budget,
             c->steps, c->steps == 1 ? "" : "s", c->nfe, s->variants[c->variant].name);
}

static void json_kv_str(jb_buf *b, const char *k, const char *v) {
    jb_printf(b, ", \"%s\": ", k);
    jb_json_str(b, v);
}
static void json_kv_num(jb_buf *b, const char *k, double v) {
    jb_printf(b, ", \"%s\": ", k);
    jb_json_num(b, v);
}

static void make_record(jb_buf *b, run *R, const sw_cell *c, const pd_sample_params *q, int nfe,
                        const sw_metric_values *mv, double sec, double sec_den, double sec_metrics) {
    const sw_spec *s = R->s;
    const sw_variant *v = &s->variants[c->variant];
    const pd_denoiser *d = cell_denoiser(R, c);
    const pd_model *gm = R->gen_model[c->sampler];
    jb_printf(b, "{\"key\": ");
    jb_json_str(b, c->key);
    json_kv_str(b, "sweep", s->name);
    json_kv_str(b, "label", s->samplers[c->sampler].label);
    json_kv_str(b, "variant", v->name);
    json_kv_str(b, "sampler", gm ? "generator" : pd_sampler_name(q->sampler));
    json_kv_str(b, "schedule", gm ? "" : pd_grid_name(q->sched.grid));
    /* A generator has no sampler: its sampler fields are null. */
    int has_rho = q->sched.grid == PD_GRID_KARRAS || q->sched.grid == PD_GRID_VP_TIME;
    json_kv_num(b, "rho", gm || !has_rho ? NAN : q->sched.rho > 0 ? q->sched.rho : q->sched.grid == PD_GRID_KARRAS ? 7 : 1);
    json_kv_str(b, "end", gm ? "" : q->sched.end_at_zero ? "zero" : "sigma-min");
    json_kv_num(b, "sigma_min", gm ? NAN : q->sched.sigma_min);
    json_kv_num(b, "sigma_max", gm ? NAN : q->sched.sigma_max);
    int n_opts;   /* the sampler option table's columns (pixdiff.h), one per record name */
    const pd_sampler_option *opts = pd_sampler_options(&n_opts);
    for (int i = 0; i < n_opts; i++) {
        const char *col = opts[i].record ? opts[i].record : opts[i].name;
        if (!i || strcmp(col, opts[i - 1].record ? opts[i - 1].record : opts[i - 1].name))
            json_kv_num(b, col, gm ? NAN : pd_sampler_option_value(q, &opts[i]));
    }
    json_kv_num(b, "afs", gm ? NAN : q->afs);
    json_kv_str(b, "shift", pd_shift_name(v->shift));
    json_kv_num(b, "shift_base", v->shift != PD_SHIFT_NONE ? q->sched.shift_base : NAN);
    json_kv_num(b, "shift_base_low", v->shift == PD_SHIFT_INTERP ? q->sched.shift_base_low : NAN);
    json_kv_num(b, "size", d->H);
    json_kv_num(b, "ug_w", v->ug ? v->ug_w : NAN);
    json_kv_num(b, "ug_eta", v->ug ? v->ug_eta : NAN);
    json_kv_num(b, "guidance", v->cfg ? v->cfg_w : NAN);
    if (v->skip && v->skip_tuning.n_rho) {
        jb_buf t = {0};
        for (int i = 0; i < v->skip_tuning.n_rho; i++) {
            if (i) jb_printf(&t, " ");
            jb_json_num(&t, v->skip_tuning.rho[i]);
        }
        json_kv_str(b, "skip_rho", t.s ? t.s : "");
        jb_free(&t);
    } else {
        json_kv_str(b, "skip_rho", "");
    }
    json_kv_num(b, "skip_rho_bottom", v->skip && !v->skip_tuning.n_rho ? v->skip_tuning.rho_bottom : NAN);
    json_kv_num(b, "skip_rho_top", v->skip && !v->skip_tuning.n_rho ? v->skip_tuning.rho_top : NAN);
    json_kv_num(b, "nfe_budget", c->budget);
    json_kv_num(b, "steps", c->steps);
    json_kv_num(b, "nfe", nfe);
    json_kv_num(b, "n", s->n);
    json_kv_num(b, "seed", (double)s->seed);
    json_kv_str(b, "labels", R->labels == SW_LABELS_CYCLE ? "cycle" : "none");
    json_kv_str(b, "model", gm ? s->samplers[c->sampler].generator : s->model);
    json_kv_str(b, "model_sha256", gm ? pd_model_sha256(gm) : R->model ? pd_model_sha256(R->model) : "");
    json_kv_num(b, "sigma_init", gm ? R->gen[c->sampler]->sigma_init : NAN);
    for (int m = 0; m < s->n_metrics; m++) {
        const sw_metric_info *mi = sw_metric_get(s->metrics[m]);
        for (int k = 0; mi->columns[k]; k++) json_kv_num(b, mi->columns[k], mv->v[s->metrics[m]][k]);
    }
    if (sw_spec_has_metric(s, SW_METRIC_TRAJECTORY)) json_kv_num(b, "reference_steps", s->reference_steps);
    json_kv_num(b, "seconds", sec);
    json_kv_num(b, "seconds_denoiser", sec_den);
    json_kv_num(b, "seconds_metrics", sec_metrics);
    json_kv_num(b, "samples_per_s", sec > 0 ? s->n / sec : NAN);
    json_kv_num(b, "outside_denoiser", sec > 0 ? 1 - sec_den / sec : NAN);
    json_kv_num(b, "batch", s->batch);
    json_kv_num(b, "threads", pd_get_threads());
    json_kv_str(b, "version", pd_version());
    char when[32];
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    json_kv_str(b, "finished", when);
    jb_printf(b, "}");
}

static void slug(char *out, size_t cap, const char *in) {
    size_t k = 0;
    for (; *in && k + 1 < cap; in++) {
        char ch = *in;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '.' || ch == '+';
        out[k++] = ok ? ch : '_';
    }
    out[k] = 0;
}

static int save_grid(run *R, const sw_cell *c, const pd_denoiser *d, const float *x, const char *record,
                     pd_error *err) {
    const sw_spec *s = R->s;
    char dir[1100], a[80], b[64], path[1400];
    snprintf(dir, sizeof dir, "%s/grids", R->out);
    if (mkdir(dir, 0755) && errno != EEXIST) return pd_fail(err, "%s: %s", dir, strerror(errno));
    slug(a, sizeof a, s->samplers[c->sampler].label);
    slug(b, sizeof b, s->variants[c->variant].name);
    /* The key's hash keeps grids of changed settings apart. */
    snprintf(path, sizeof path, "%s/%s_%s_nfe%d_%08llx.png", dir, a, b, c->nfe,
             (unsigned long long)(sw_hash(c->key) & 0xffffffffull));
    int n = s->n < GRID_IMAGES ? s->n : GRID_IMAGES;
    const char *text[] = {"pixdiff", record, NULL};
    return pd_png_write_grid(path, x, n, d->C, d->H, d->W, 0, text, err);
}

/* The spec's reuse folders: a cell not in our results.jsonl whose key is in theirs is copied
 * into ours (a dry run only counts them). The key holds every setting that changes a cell's
 * numbers, so the copy is the cell this sweep would have computed. */
static int reuse_cells(run *R, pd_error *err) {
    const sw_spec *s = R->s;
    for (int k = 0; k < s->n_reuse; k++) {
        sw_results other;
        if (sw_results_load(&other, s->reuse[k], 0, NULL, err)) return -1;
        int copied = 0;
        for (int c = 0; c < R->g.n_cells; c++) {
            const char *key = R->g.cells[c].key;
            if (sw_results_find(&R->res, key)) continue;
            const sw_record *rec = sw_results_find(&other, key);
            if (!rec) continue;
            if (!R->o->dry_run) {
                /* The copy carries this sweep's names for the cell (names are not in the key). */
                const sw_cell *cell = &R->g.cells[c];
                const char *names[] = {"sweep", "label", "variant"};
                const char *values[] = {s->name, s->samplers[cell->sampler].label, s->variants[cell->variant].name};
                jb_buf line = {0};
                int rc = sw_record_json(rec, names, values, 3, &line);
                if (rc) pd_fail(err, "%s: out of memory", other.path);
                else rc = sw_results_append(&R->res, line.s, err);
                jb_free(&line);
                if (rc) {
                    sw_results_free(&other);
                    return -1;
                }
            } else {
                R->g.cells[c].done = 1;
            }
            copied++;
        }
        if (copied) logf_(R, "%s %d cell%s from %s", R->o->dry_run ? "would reuse" : "reused", copied,
                          copied == 1 ? "" : "s", other.path);
        sw_results_free(&other);
    }
    return 0;
}

static int commit_cell(run *R, const sw_cell_result *res, pd_sweep_summary *sum, pd_error *err);

/* Runs cell ci: sample, measure, append, regenerate the report (alone: sample and measure; the
 * result waits in R->solo_res for run_round). */
static int run_cell(run *R, int ci, int todo_index, pd_sweep_summary *sum, pd_error *err) {
    const sw_spec *s = R->s;
    const sw_cell *c = &R->g.cells[ci];
    pd_denoiser *d = cell_denoiser(R, c);
    const size_t dim = (size_t)d->C * d->H * d->W;
    char what[256];
    describe_cell(what, sizeof what, s, c);
    R->pr.cell = ci + 1;
    R->pr.cells = R->g.n_cells;
    R->pr.todo_index = todo_index;
    R->pr.stage = what;
    R->pr.images = s->n;
    R->pr.images_done = 0;
    R->pr.step = R->pr.steps = R->pr.batch = R->pr.batches = 0;
    R->cell_frac = 0;
    R->t_cell = core_now();
    R->cell_units = (double)s->n * (c->nfe > 0 ? c->nfe : 1);
    report_progress(R);

    pd_sample_params q;
    double s_first, s_last;
    pd_error e2;
    if (cell_sigmas(R, c, what, &q, &s_first, &s_last, err)) return -1;

    size_t need = (size_t)s->n * dim;
    if (need > R->x_cap) {
        free(R->x);
        R->x = malloc(sizeof(float) * need);
        R->x_cap = R->x ? need : 0;
        if (!R->x) pd_fail(err, "out of memory for %d samples of %dx%dx%d", s->n, d->C, d->H, d->W);
    }
    if (settle(R, !R->x, err)) return -1;
    double t_ref = core_now();
    /* Alone, the reference was made before the round (run_round). */
    if (sw_spec_has_metric(s, SW_METRIC_TRAJECTORY) && !R->solo &&
        get_reference(R, c->variant, s_first, s_last, err))
        return -1;
    t_ref = core_now() - t_ref; /* kept out of the ETA's rate: references are one-off costs */
    R->pr.stage = what;
    R->pr.images = s->n;

    double sec = 0, sec_den = 0;
    int nfe = 0;
    if (sample_all(R, d, R->gen[c->sampler], q, R->x, &sec, &sec_den, &nfe, err)) return -1;
    if (dist_rank() > 0 && !R->solo) {   /* rank 0 measures and writes; the others go on */
        R->g.cells[ci].done = 1;
        sum->ran++;
        return 0;
    }

    double tm = core_now();
    sw_metric_values mv;
    const float *ref = R->solo ? R->solo_ref : q.sched.end_at_zero ? R->ref_zero : R->ref_end;
    sw_eval_ctx ec = {s, R->ev, R->inc, &R->fid_ref, ref, R->classes, s->n, d->C, d->H, d->W};
    if (sw_metrics_compute(&ec, R->x, &mv, &e2)) return pd_fail(err, "%s: metrics: %s", what, e2.msg);
    double sec_metrics = core_now() - tm;

    jb_buf rec = {0};
    make_record(&rec, R, c, &q, nfe, &mv, sec, sec_den, sec_metrics);
    if (rec.oom) {
        jb_free(&rec);
        return pd_fail(err, "out of memory for a result line");
    }
    sw_cell_result res = {ci, 0, nfe, sec, sec_den, sec_metrics, mv, rec.s,
                          R->x, s->save_grid ? (s->n < GRID_IMAGES ? s->n : GRID_IMAGES) : 0, dim, rec.s};
    if (R->solo) { /* run_round hands it to rank 0 */
        R->solo_res = res;
        return 0;
    }
    int rc = commit_cell(R, &res, sum, err);
    sw_cell_result_free(&res);
    if (rc || sw_report_write(s, &R->g, &R->res, R->out, err)) return -1;
    R->secs_done += core_now() - R->t_cell - t_ref;
    return 0;
}

/* Rank 0: a finished cell into the folder (its grid, then its line in results.jsonl), counted and
 * logged; the caller regenerates the report files. */
static int commit_cell(run *R, const sw_cell_result *res, pd_sweep_summary *sum, pd_error *err) {
    const sw_spec *s = R->s;
    const int ci = res->cell;
    const sw_cell *c = &R->g.cells[ci];
    if (s->save_grid && save_grid(R, c, cell_denoiser(R, c), res->grid, res->record, err)) return -1;
    if (sw_results_append(&R->res, res->record, err)) return -1;
    R->g.cells[ci].done = 1;

    double sec = res->sec, outside = sec > 0 ? 1 - res->sec_den / sec : NAN;
    double units = (double)s->n * (c->nfe > 0 ? c->nfe : 1);
    R->units_done += units;
    R->units_todo -= units;
    sum->ran++;
    if (!(outside <= sum->outside_denoiser_max)) sum->outside_denoiser_max = outside;
    char vals[400] = "", what[256];
    size_t len = 0;
    for (int m = 0; m < s->n_metrics; m++) {
        const sw_metric_info *mi = sw_metric_get(s->metrics[m]);
        for (int k = 0; mi->columns[k] && len < sizeof vals; k++)
            len += (size_t)snprintf(vals + len, sizeof vals - len, "%s%s %.4g", len ? ", " : "",
                                    mi->columns[k], res->mv.v[s->metrics[m]][k]);
    }
    describe_cell(what, sizeof what, s, c);
    logf_(R, "cell %d/%d %s: %s | %d images in %.2f s (%.1f/s), %.1f%% outside the denoiser%s",
          ci + 1, R->g.n_cells, what, vals, s->n, sec, sec > 0 ? s->n / sec : 0.0, 100 * outside,
          res->nfe != c->nfe ? " (NFE differs from the plan)" : "");
    return 0;
}

/* The round's reference for rank r's cell, from rank 0 (which holds the whole of every reference)
 * into that rank's solo_ref. */
static void hand_reference(run *R, int r, int end_at_zero, size_t count) {
    const float *src = end_at_zero ? R->ref_zero : R->ref_end;
    if (r == dist_rank() && r == 0) memcpy(R->solo_ref, src, sizeof(float) * count);
    else if (r == dist_rank()) dist_recv(R->solo_ref, sizeof(float) * count, 0);
    else if (dist_rank() == 0) dist_send(src, sizeof(float) * count, r);
}

/* A round of whole cells (sweep_dist.c sw_dist_whole_cells): the next dist_size() cells to run
 * from cell `first` on, rank r's being the r-th. Their trajectory references are made first, all
 * ranks together and in the cells' order (as one process makes them, so the cache holds the same
 * files), each handed to its cell's rank; then every rank samples and scores its cell alone, and
 * rank 0 writes the finished ones in order, up to the first that failed, and the report once. A
 * failure anywhere stops every rank after that. */
static int run_round(run *R, int first, int todo_index, pd_sweep_summary *sum, pd_error *err) {
    const sw_spec *s = R->s;
    const int N = dist_size(), me = dist_rank();
    int *cells = R->round_cells;
    for (int c = first, k = 0; k < N; c++)
        if (!R->g.cells[c].done) cells[k++] = c;
    double t0 = core_now(), t_ref = 0;
    if (sw_spec_has_metric(s, SW_METRIC_TRAJECTORY)) {
        R->pr.what = "trajectory references";
        const pd_denoiser *dm = R->var[R->g.cells[cells[me]].variant].den;
        size_t cap = (size_t)s->n * dm->C * dm->H * dm->W;
        if (cap > R->solo_ref_cap) {
            free(R->solo_ref);
            R->solo_ref = malloc(sizeof(float) * cap);
            R->solo_ref_cap = R->solo_ref ? cap : 0;
            if (!R->solo_ref) pd_fail(err, "out of memory for the trajectory reference (%d images)", s->n);
        }
        if (agree(!R->solo_ref, err)) return -1;
        for (int r = 0; r < N; r++) {
            const sw_cell *c = &R->g.cells[cells[r]];
            const pd_denoiser *d = R->var[c->variant].den;
            char what[256];
            pd_sample_params q;
            double s_first, s_last;
            describe_cell(what, sizeof what, s, c);
            /* the same on every rank: a grid that fails, fails everywhere */
            if (cell_sigmas(R, c, what, &q, &s_first, &s_last, err) ||
                get_reference(R, c->variant, s_first, s_last, err))
                return -1;
            hand_reference(R, r, q.sched.end_at_zero, (size_t)s->n * d->C * d->H * d->W);
        }
        t_ref = core_now() - t0;
    }

    R->solo = 1;
    int failed = run_cell(R, cells[me], todo_index + me, sum, err) != 0;
    R->solo = 0;
    if (failed) sw_cell_result_free(&R->solo_res);
    R->solo_res.cell = cells[me];
    R->solo_res.failed = failed;
    /* Rank 0 short of memory for a result cannot take the rest: it fails, and the job with it. */
    if (sw_dist_collect(&R->solo_res, R->round, err)) return -1;
    int committed = 0, wrote = 0;
    if (me == 0) {
        while (committed < N && !R->round[committed].failed && R->round[committed].record) {
            if (commit_cell(R, &R->round[committed], sum, err)) {
                wrote = -1;
                break;
            }
            committed++;
        }
        if (committed && sw_report_write(s, &R->g, &R->res, R->out, err)) wrote = -1;
        for (int r = 1; r < N; r++) sw_cell_result_free(&R->round[r]);
    }
    sw_cell_result_free(&R->solo_res);
    dist_bcast(&committed, sizeof committed, 0);
    for (int r = 0; me > 0 && r < committed; r++) {
        R->g.cells[cells[r]].done = 1;
        sum->ran++;
    }
    R->secs_done += core_now() - t0 - t_ref;
    return agree(failed || wrote, err);
}

/* ------------------------------------------------------------------ pd_sweep_run */

/* Before rounds of whole cells: every rank scores cells, so every rank opens the evaluator (after
 * rank 0 did, so that on one machine they read the reference statistics it cached rather than
 * compute them again) and takes rank 0's FID reference; and the round's bookkeeping. */
static int prepare_whole(run *R, pd_error *err) {
    int bad = 0;
    if (dist_rank() > 0 && R->clf) bad = open_evaluator(R, err);
    if (agree(bad, err)) return -1;
    if (R->inc && sw_dist_share_fid_ref(&R->fid_ref, err)) return -1;
    R->round_cells = malloc(sizeof(int) * (size_t)dist_size());
    if (dist_rank() == 0) R->round = calloc((size_t)dist_size(), sizeof *R->round);
    bad = !R->round_cells || (dist_rank() == 0 && !R->round);
    if (bad) pd_fail(err, "out of memory");
    return agree(bad, err);
}

/* Temporary files ("<name>.tmp.<pid>") left by a sweep killed while it wrote a report file, a
 * grid or a reference; called with the folder's lock held, so none of them is being written. */
static void remove_stale_tmp(run *R) {
    static const char *const sub[] = {"", "/grids", "/reference"};
    for (int k = 0; k < 3; k++) {
        char d[1100];
        snprintf(d, sizeof d, "%s%s", R->out, sub[k]);
        DIR *dd = opendir(d);
        if (!dd) continue;
        struct dirent *e;
        int removed = 0;
        while ((e = readdir(dd))) {
            if (!strstr(e->d_name, ".tmp.")) continue;
            char p[1400];
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            removed += unlink(p) == 0;
        }
        closedir(dd);
        if (removed) logf_(R, "%s: removed %d temporary file%s of an interrupted run", d, removed,
                           removed == 1 ? "" : "s");
    }
}

static void list_cells(run *R) {
    const sw_spec *s = R->s;
    int done = 0;
    double units = 0;
    for (int c = 0; c < R->g.n_cells; c++) {
        const sw_cell *cl = &R->g.cells[c];
        char what[256];
        describe_cell(what, sizeof what, s, cl);
        logf_(R, "cell %d/%d %s%s", c + 1, R->g.n_cells, what, cl->done ? "  (done)" : "");
        done += cl->done;
        if (!cl->done) units += (double)s->n * cl->nfe;
    }
    logf_(R, "dry run: %d of %d cells to run, %.3g image evaluations%s; nothing sampled or written",
          R->g.n_cells - done, R->g.n_cells, units,
          sw_spec_has_metric(s, SW_METRIC_TRAJECTORY) ? " plus the trajectory references" : "");
}

static void cleanup(run *R) {
    sw_grid_free(&R->g);
    sw_results_free(&R->res);
    if (R->ev) pd_eval_free(R->ev);
    if (R->clf) pd_model_free(R->clf);
    pd_inception_free(R->inc);
    pd_fid_ref_free(&R->fid_ref);
    free_variants(R);
    pd_denoiser_free(R->analytic);
    if (R->model) pd_model_free(R->model);
    free(R->classes);
    free(R->onehot);
    free(R->x);
    free(R->ref_end);
    free(R->ref_zero);
    free(R->solo_ref);
    free(R->round);
    free(R->round_cells);
    if (R->preds)
        for (int i = 0; i < R->s->n_samplers * R->s->n_nfe; i++) pd_amed_predictor_free(R->preds[i]);
    free(R->preds);
    free(R->ov);
    for (int si = 0; si < SW_MAX_SAMPLERS; si++) {
        pd_generator_free(R->gen[si]);
        if (R->gen_model[si]) pd_model_free(R->gen_model[si]);
    }
    if (R->lock_fd >= 0) close(R->lock_fd);
}

int pd_sweep_run(const char *path, const pd_sweep_options *opts, pd_sweep_summary *summary,
                 pd_error *err_out) {
    pd_error err_local = {{0}}, *err = &err_local; /* read back below ("interrupted") */
    pd_sweep_options defaults = pd_sweep_default_options();
    const pd_sweep_options *o = opts ? opts : &defaults;
    pd_sweep_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.outside_denoiser_max = NAN;
    if (summary) *summary = sum;
    if (!path) return pd_fail(err_out, "sweep: no file");
    sw_spec *s = malloc(sizeof *s);
    if (!s) return pd_fail(err_out, "%s: out of memory", path);
    run *R = calloc(1, sizeof *R);
    if (!R) {
        free(s);
        return pd_fail(err_out, "%s: out of memory", path);
    }
    R->lock_fd = -1;
    R->o = o;
    R->s = s;
    R->t_run = core_now();
    pg_init(&R->pr, "sweep", "evals");
    double t0 = core_now();
    int rc = -1;
    if (sw_spec_load(s, path, err)) goto done;
    if (o->out_dir && *o->out_dir) snprintf(s->out_dir, sizeof s->out_dir, "%s", o->out_dir);
    snprintf(R->out, sizeof R->out, "%s", s->out_dir);
    snprintf(sum.out_dir, sizeof sum.out_dir, "%s", s->out_dir);
    if (o->threads > 0) pd_set_threads(o->threads);
    else if (s->threads > 0) pd_set_threads(s->threads);

    /* A reuse folder that does not exist yet (its sweep has not run) is fine: nothing to copy. */
    for (int k = 0; k < s->n_reuse; k++) {
        struct stat st;
        if (stat(s->reuse[k], &st) == 0 && !S_ISDIR(st.st_mode)) {
            pd_fail(err, "%s:%d: reuse: %s is not a folder (another sweep's output)", s->source, s->reuse_line,
                    s->reuse[k]);
            goto done;
        }
    }
    if (open_model(R, err) || check_against_model(R, err)) goto done;
    if (R->mf.known && build_variants(R, err)) goto done;
    if (needs_classifier(s) && open_classifier(R, err)) goto done;
    if (sw_spec_needs_inception(s) && open_inception(R, err)) goto done;
    if (load_predictors(R, err) || load_generators(R, err) || sw_grid_build(&R->g, s, &R->mf, R->ov, err)) goto done;
    /* Under mpirun rank 0 alone touches the folder: the lock, results.jsonl, reuse; the others
     * learn which cells are done from it. */
    const int writer = dist_rank() == 0;
    if (!o->dry_run && writer) {
        /* From here on the folder is ours: nothing else appends to or repairs results.jsonl. */
        if (pd_make_dirs(R->out, err)) goto agreed;
        char lock[1100];
        snprintf(lock, sizeof lock, "%s/.sweep.lock", R->out);
        R->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (R->lock_fd < 0) {
            pd_fail(err, "%s: %s", lock, strerror(errno));
            goto agreed;
        }
        if (flock(R->lock_fd, LOCK_EX | LOCK_NB)) {
            pd_fail(err, "%s: another pixdiff sweep is writing to this folder", R->out);
            goto agreed;
        }
        remove_stale_tmp(R);
    }
    int dropped = 0;
    if (writer && sw_results_load(&R->res, R->out, !o->dry_run, &dropped, err)) goto agreed;
    if (dropped)
        logf_(R, "%s: %s the torn last line of a killed run", R->res.path,
              o->dry_run ? "will cut" : "cut");
    if (writer && R->mf.known && reuse_cells(R, err)) goto agreed;
    rc = 0;
agreed:
    if (agree(rc != 0, err)) {
        rc = -1;
        goto done;
    }
    rc = -1;
    sum.cells = R->g.n_cells;
    for (int c = 0; c < R->g.n_cells; c++) {
        int d = R->g.cells[c].done || (R->mf.known && sw_results_find(&R->res, R->g.cells[c].key));
        dist_bcast(&d, sizeof d, 0);
        R->g.cells[c].done = d;
        sum.already_done += d;
    }
    {
        char mets[200] = "";
        size_t len = 0;
        for (int m = 0; m < s->n_metrics; m++)
            len += (size_t)snprintf(mets + len, sizeof mets - len, "%s%s", m ? "," : "",
                                    sw_metric_get(s->metrics[m])->name);
        logf_(R, "sweep %s: %d cells (%d sampler%s x %d budget%s x %d variant%s), n %d, seed %llu, "
                 "metrics %s -> %s; %d already in results.jsonl",
              s->name, R->g.n_cells, s->n_samplers, s->n_samplers == 1 ? "" : "s", s->n_nfe,
              s->n_nfe == 1 ? "" : "s", s->n_variants, s->n_variants == 1 ? "" : "s", s->n,
              (unsigned long long)s->seed, mets, R->out, sum.already_done);
    }
    if (o->dry_run) {
        list_cells(R);
        /* A dry run that found a missing input says so in its status, not only in its log. */
        rc = R->dry_missing[0] ? pd_fail(err, "dry run: %s is missing; a run would stop there",
                                         R->dry_missing)
                               : 0;
        goto done;
    }

    int todo = sum.cells - sum.already_done, k = 0, bad = 0;
    if (writer && R->clf && todo) bad = open_evaluator(R, err);
    if (!bad && writer && R->inc && todo) bad = open_fid_ref(R, err);
    if (agree(bad, err)) goto done;
    if (dist_size() > 1 && todo) {
        const int N = dist_size(), whole = sw_dist_whole_cells(s->n, s->batch, N, todo);
        if (whole) logf_(R, "%d ranks: cells go whole to the ranks, %d at a time (n %d < %d x ranks x batch)%s",
                         N, N, s->n, SW_DIST_LARGE, todo % N ? "; the last ones are split" : "");
        else if (todo < N) logf_(R, "%d ranks: each cell's images are split over the ranks (fewer cells "
                                    "to run than ranks)", N);
        else logf_(R, "%d ranks: each cell's images are split over the ranks (large cells: n %d >= %d x "
                      "ranks x batch)", N, s->n, SW_DIST_LARGE);
        if (whole && prepare_whole(R, err)) goto done;
    }

    /* Per-image buffers: classes, and one batch of one-hot labels (the trajectory reference). */
    int label_dim = R->mf.label_dim, batch = s->batch < s->n ? s->batch : s->n;
    if (R->labels == SW_LABELS_CYCLE) {
        R->classes = malloc(sizeof(int) * (size_t)s->n);
        R->onehot = malloc(sizeof(float) * (size_t)batch * label_dim);
        if (R->classes)
            for (int i = 0; i < s->n; i++) R->classes[i] = i % label_dim;
    }
    if (R->labels == SW_LABELS_CYCLE && (!R->classes || !R->onehot)) {
        pd_fail(err, "out of memory");
        goto done;
    }
    /* Always regenerate the report once, so a changed sweep file shows its plan at once. */
    if (writer && sw_report_write(s, &R->g, &R->res, R->out, err)) goto done;

    R->pr.todo = todo;
    const double t_cells = core_now();
    for (int c = 0; c < R->g.n_cells; c++)
        if (!R->g.cells[c].done) R->units_todo += (double)s->n * (R->g.cells[c].nfe > 0 ? R->g.cells[c].nfe : 1);
    for (int c = 0; c < R->g.n_cells; c++) {
        if (R->g.cells[c].done) continue;
        /* A round of whole cells (one per rank) while the rule allows, else one split cell. */
        const int whole = sw_dist_whole_cells(s->n, s->batch, dist_size(), todo - k);
        if (whole ? run_round(R, c, k + 1, &sum, err) : run_cell(R, c, k + 1, &sum, err)) {
            if (!strcmp(err->msg, "interrupted") || abort_cb(R)) {
                char what[256];
                if (whole) snprintf(what, sizeof what, "the %d cells in flight", dist_size());
                else describe_cell(what, sizeof what, s, &R->g.cells[c]);
                pd_fail(err, "interrupted: %d of %d cells done, %s dropped; run again to resume", sum.already_done + sum.ran,
                        sum.cells, what);
            }
            goto done;
        }
        k += whole ? dist_size() : 1;
        sum.images = (long long)sum.ran * s->n;
        sum.cell_seconds = core_now() - t_cells;
    }
    rc = 0;
done:
    sum.seconds = core_now() - t0;
    if (summary) *summary = sum;
    cleanup(R);
    free(R);
    free(s);
    if (rc && err_out) *err_out = err_local;
    return rc;
}
