/* sweep_run.c — pd_sweep_run (include/pixdiff.h "sweeps"): validate, plan, then run each cell
 * that results.jsonl does not have yet.
 *
 * Order of work: the sweep file (sweep_config.c); the model and everything that needs it (labels,
 * sizes, upsample guidance, Skip-Tuning: each variant's denoiser is built now, so a bad variant
 * fails before any sampling; sweep_plan.c); the grid and its keys (sweep_cells.c); results.jsonl (a torn last
 * line from a kill is cut off); a lock on the output folder (two sweeps appending to one file
 * would duplicate cells); the classifier evaluator if a metric needs it. Then per cell: the
 * cell's sigma grid, the trajectory reference if asked (sweep_reference.c: memory, disk cache, or
 * Heun with reference_steps steps from the same noise), all n images in batches through pd_generate
 * (image i: noise pd_randn(seed + i, 0), seeds[i] = seed + i, label i mod K), the metrics
 * (sweep_metrics.c), an optional grid PNG of the first 64 images and one JSON line appended with
 * fsync (sweep_record.c), and the report files regenerated (sweep_report.c). A kill at any point loses at most the cell in progress.
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
#include "sweep/sweep_run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

pd_sweep_options pd_sweep_default_options(void) {
    pd_sweep_options o;
    memset(&o, 0, sizeof o);
    return o;
}

/* ------------------------------------------------------------------ sampling */

static int abort_cb(void *user) {
    sw_run *R = user;
    return R->o->abort && R->o->abort(R->o->user);
}

/* done: the finished cells' evaluations plus the running cell's share (none while its reference
 * is computed); the rate is that of the finished cells, references left out (one-off costs). */
static void report_progress(sw_run *R) {
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

static void generate_cb(void *user, const pd_progress *p) {
    sw_run *R = user;
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
int sw_agree(int failed, pd_error *err) {
    if (!dist_any(failed)) return 0;
    return failed ? -1 : pd_fail(err, "interrupted");
}

/* agree, or, while a rank runs a whole cell alone, its own verdict (no exchange). */
static int settle(sw_run *R, int failed, pd_error *err) {
    if (R->solo) return failed ? -1 : 0;
    return sw_agree(failed, err);
}

/* This rank's images [*lo, *hi) of a cell's n. */
void sw_my_images(int n, int *lo, int *hi) {
    long long a, b;
    dist_part(n, dist_rank(), &a, &b);
    *lo = (int)a;
    *hi = (int)b;
}

/* Rank 0 collects every rank's images [lo, hi) of x [n, dim] into place. */
void sw_gather_images(float *x, int n, size_t dim) { pd_dist_gather(x, n, dim * sizeof(float)); }

/* All n images of one run of d with parameters q (or of the one-step generator g, when not NULL)
 * into out [n, dim] (on rank 0), through the library's loop (pd_generate, pd_generator_generate:
 * image i from pd_randn(seed + i, 0), class classes[i]). Under mpirun
 * each rank generates its pd_dist_part of the images (pd_generate's (first, count) range gives
 * the images one process makes) and rank 0 gathers them. Seconds of wall time, of this rank's
 * denoiser time, and the NFE per image as pd_sample counted it (the same on every rank). */
pd_generate_params sw_generate_params(sw_run *R, pd_sample_params q) {
    pd_generate_params gp = pd_generate_default_params();
    gp.sample = q;
    gp.seed = R->s->seed;
    gp.classes = R->classes;
    gp.batch = R->s->batch;
    gp.progress = generate_cb;
    gp.abort = abort_cb;
    gp.user = R;
    return gp;
}

static int sample_all(sw_run *R, pd_denoiser *d, pd_generator *g, pd_sample_params q, float *out,
                      double *sec, double *sec_den, int *nfe, pd_error *err) {
    const size_t dim = (size_t)d->C * d->H * d->W;
    pd_generate_params gp = sw_generate_params(R, q);
    double t0 = core_now();
    pd_sample_stats st = {0};
    int lo = 0, hi = R->s->n;   /* alone: all of them */
    if (!R->solo) sw_my_images(R->s->n, &lo, &hi);
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
    if (!R->solo) sw_gather_images(out, R->s->n, dim);
    R->pr.images_done = R->s->n;
    *sec = core_now() - t0;
    *sec_den = st.seconds_denoiser;
    *nfe = seen;
    return 0;
}

/* Runs cell ci: sample, measure, append, regenerate the report (alone: sample and measure; the
 * result waits in R->solo_res for run_round). */
static int run_cell(sw_run *R, int ci, int todo_index, pd_sweep_summary *sum, pd_error *err) {
    const sw_spec *s = R->s;
    const sw_cell *c = &R->g.cells[ci];
    pd_denoiser *d = sw_cell_denoiser(R, c);
    const size_t dim = (size_t)d->C * d->H * d->W;
    char what[256];
    sw_describe_cell(what, sizeof what, s, c);
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
    if (sw_cell_sigmas(R, c, what, &q, &s_first, &s_last, err)) return -1;

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
        sw_get_reference(R, c->variant, &q, s_first, s_last, err))
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
    sw_make_record(&rec, R, c, &q, nfe, &mv, sec, sec_den, sec_metrics);
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
    int rc = sw_commit_cell(R, &res, sum, err);
    sw_cell_result_free(&res);
    if (rc || sw_report_write(s, &R->g, &R->res, R->out, err)) return -1;
    R->secs_done += core_now() - R->t_cell - t_ref;
    return 0;
}

/* A round of whole cells (sweep_dist.c sw_dist_whole_cells): the next dist_size() cells to run
 * from cell `first` on, rank r's being the r-th. Their trajectory references are made first, all
 * ranks together and in the cells' order (as one process makes them, so the cache holds the same
 * files), each handed to its cell's rank; then every rank samples and scores its cell alone, and
 * rank 0 writes the finished ones in order, up to the first that failed, and the report once. A
 * failure anywhere stops every rank after that. */
static int run_round(sw_run *R, int first, int todo_index, pd_sweep_summary *sum, pd_error *err) {
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
        if (sw_agree(!R->solo_ref, err)) return -1;
        for (int r = 0; r < N; r++) {
            const sw_cell *c = &R->g.cells[cells[r]];
            const pd_denoiser *d = R->var[c->variant].den;
            char what[256];
            pd_sample_params q;
            double s_first, s_last;
            sw_describe_cell(what, sizeof what, s, c);
            /* the same on every rank: a grid that fails, fails everywhere */
            if (sw_cell_sigmas(R, c, what, &q, &s_first, &s_last, err) ||
                sw_get_reference(R, c->variant, &q, s_first, s_last, err))
                return -1;
            sw_hand_reference(R, r, q.sched.end_at_zero, (size_t)s->n * d->C * d->H * d->W);
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
            if (sw_commit_cell(R, &R->round[committed], sum, err)) {
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
    return sw_agree(failed || wrote, err);
}

/* ------------------------------------------------------------------ pd_sweep_run */

/* Before rounds of whole cells: every rank scores cells, so every rank opens the evaluator (after
 * rank 0 did, so that on one machine they read the reference statistics it cached rather than
 * compute them again) and takes rank 0's FID reference; and the round's bookkeeping. */
static int prepare_whole(sw_run *R, pd_error *err) {
    int bad = 0;
    if (dist_rank() > 0 && R->clf) bad = sw_open_evaluator(R, err);
    if (sw_agree(bad, err)) return -1;
    if (R->inc && sw_dist_share_fid_ref(&R->fid_ref, err)) return -1;
    R->round_cells = malloc(sizeof(int) * (size_t)dist_size());
    if (dist_rank() == 0) R->round = calloc((size_t)dist_size(), sizeof *R->round);
    bad = !R->round_cells || (dist_rank() == 0 && !R->round);
    if (bad) pd_fail(err, "out of memory");
    return sw_agree(bad, err);
}

/* Temporary files ("<name>.tmp.<pid>") left by a sweep killed while it wrote a report file, a
 * grid or a reference; called with the folder's lock held, so none of them is being written. */
static void remove_stale_tmp(sw_run *R) {
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
        if (removed) sw_log(R, "%s: removed %d temporary file%s of an interrupted run", d, removed,
                           removed == 1 ? "" : "s");
    }
}

static void list_cells(sw_run *R) {
    const sw_spec *s = R->s;
    int done = 0;
    double units = 0;
    for (int c = 0; c < R->g.n_cells; c++) {
        const sw_cell *cl = &R->g.cells[c];
        char what[256];
        sw_describe_cell(what, sizeof what, s, cl);
        sw_log(R, "cell %d/%d %s%s", c + 1, R->g.n_cells, what, cl->done ? "  (done)" : "");
        done += cl->done;
        if (!cl->done) units += (double)s->n * cl->nfe;
    }
    sw_log(R, "dry run: %d of %d cells to run, %.3g image evaluations%s; nothing sampled or written",
          R->g.n_cells - done, R->g.n_cells, units,
          sw_spec_has_metric(s, SW_METRIC_TRAJECTORY) ? " plus the trajectory references" : "");
}

static void cleanup(sw_run *R) {
    sw_grid_free(&R->g);
    sw_results_free(&R->res);
    if (R->ev) pd_eval_free(R->ev);
    if (R->clf) pd_model_free(R->clf);
    pd_inception_free(R->inc);
    pd_fid_ref_free(&R->fid_ref);
    sw_free_variants(R);
    pd_denoiser_free(R->analytic);
    if (R->model) pd_model_free(R->model);
    free(R->classes);
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
    sw_run *R = calloc(1, sizeof *R);
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
    if (sw_open_model(R, err) || sw_check_against_model(R, err)) goto done;
    if (R->mf.known && sw_build_variants(R, err)) goto done;
    if (sw_needs_classifier(s) && sw_open_classifier(R, err)) goto done;
    if (sw_spec_needs_inception(s) && sw_open_inception(R, err)) goto done;
    if (sw_load_predictors(R, err) || sw_load_generators(R, err) || sw_grid_build(&R->g, s, &R->mf, R->ov, err)) goto done;
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
        sw_log(R, "%s: %s the torn last line of a killed run", R->res.path,
              o->dry_run ? "will cut" : "cut");
    if (writer && R->mf.known && sw_reuse_cells(R, err)) goto agreed;
    rc = 0;
agreed:
    if (sw_agree(rc != 0, err)) {
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
        sw_log(R, "sweep %s: %d cells (%d sampler%s x %d budget%s x %d variant%s), n %d, seed %llu, "
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
    if (writer && R->clf && todo) bad = sw_open_evaluator(R, err);
    if (!bad && writer && R->inc && todo) bad = sw_open_fid_ref(R, err);
    if (sw_agree(bad, err)) goto done;
    if (dist_size() > 1 && todo) {
        const int N = dist_size(), whole = sw_dist_whole_cells(s->n, s->batch, N, todo);
        if (whole) sw_log(R, "%d ranks: cells go whole to the ranks, %d at a time (n %d < %d x ranks x batch)%s",
                         N, N, s->n, SW_DIST_LARGE, todo % N ? "; the last ones are split" : "");
        else if (todo < N) sw_log(R, "%d ranks: each cell's images are split over the ranks (fewer cells "
                                    "to run than ranks)", N);
        else sw_log(R, "%d ranks: each cell's images are split over the ranks (large cells: n %d >= %d x "
                      "ranks x batch)", N, s->n, SW_DIST_LARGE);
        if (whole && prepare_whole(R, err)) goto done;
    }

    /* The class of each image (labels: cycle). */
    int label_dim = R->mf.label_dim;
    if (R->labels == SW_LABELS_CYCLE) {
        R->classes = malloc(sizeof(int) * (size_t)s->n);
        if (R->classes)
            for (int i = 0; i < s->n; i++) R->classes[i] = i % label_dim;
    }
    if (R->labels == SW_LABELS_CYCLE && !R->classes) {
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
                else sw_describe_cell(what, sizeof what, s, &R->g.cells[c]);
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
