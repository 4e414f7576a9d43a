/* sweep_record.c — what a finished cell leaves in the output folder (sweep_run.h): its line in
 * results.jsonl (every setting, the metric columns, timings, version and time; numbers through
 * the one JSON writer, core/jsonbuf.h), its grid PNG of the first GRID_IMAGES samples (named by
 * sampler, variant, NFE and the key's hash, the record in its text chunk), the count and the log
 * line; and the cells copied from the reuse folders, whose keys say they are the cells this sweep
 * would compute.
 */
#include "core/util.h"
#include "sweep/sweep_run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void json_kv_str(jb_buf *b, const char *k, const char *v) {
    jb_printf(b, ", \"%s\": ", k);
    jb_json_str(b, v);
}
static void json_kv_num(jb_buf *b, const char *k, double v) {
    jb_printf(b, ", \"%s\": ", k);
    jb_json_num(b, v);
}

void sw_make_record(jb_buf *b, sw_run *R, const sw_cell *c, const pd_sample_params *q, int nfe,
                        const sw_metric_values *mv, double sec, double sec_den, double sec_metrics) {
    const sw_spec *s = R->s;
    const sw_variant *v = &s->variants[c->variant];
    const pd_denoiser *d = sw_cell_denoiser(R, c);
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

static int save_grid(sw_run *R, const sw_cell *c, const pd_denoiser *d, const float *x, const char *record,
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
int sw_reuse_cells(sw_run *R, pd_error *err) {
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
        if (copied) sw_log(R, "%s %d cell%s from %s", R->o->dry_run ? "would reuse" : "reused", copied,
                          copied == 1 ? "" : "s", other.path);
        sw_results_free(&other);
    }
    return 0;
}

/* Rank 0: a finished cell into the folder (its grid, then its line in results.jsonl), counted and
 * logged; the caller regenerates the report files. */
int sw_commit_cell(sw_run *R, const sw_cell_result *res, pd_sweep_summary *sum, pd_error *err) {
    const sw_spec *s = R->s;
    const int ci = res->cell;
    const sw_cell *c = &R->g.cells[ci];
    if (s->save_grid && save_grid(R, c, sw_cell_denoiser(R, c), res->grid, res->record, err)) return -1;
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
    sw_describe_cell(what, sizeof what, s, c);
    sw_log(R, "cell %d/%d %s: %s | %d images in %.2f s (%.1f/s), %.1f%% outside the denoiser%s",
          ci + 1, R->g.n_cells, what, vals, s->n, sec, sec > 0 ? s->n / sec : 0.0, 100 * outside,
          res->nfe != c->nfe ? " (NFE differs from the plan)" : "");
    return 0;
}
