/* sweep_report.c — the files regenerated from results.jsonl after every cell (sweep.h
 * sw_report_write), each written atomically (tmp + fsync + rename), so a reader or a kill never
 * sees half a file:
 *   results.csv  every record of results.jsonl (all sweeps that used this folder), one column per
 *                field name in first-seen order;
 *   results.md   the cells of the sweep file as it is now: the headline metric against the NFE
 *                budget (rows sampler/variant, columns budgets), then the long table of cells;
 *   plot_<column>.png  each plotted metric column against the NFE actually spent, one line per
 *                sampler/variant, log x-axis (log y where every value is positive and lower is
 *                better), through pd_plot_lines.
 * Records come from results.jsonl only, so these files can always be rebuilt from it.
 */
#include "core/util.h"
#include "sweep/sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ results.csv */

static void csv_cell(FILE *f, const char *v) {
    if (!strpbrk(v, ",\"\n\r")) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"') fputc('"', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

static int write_csv(const sw_results *r, const char *out_dir, pd_error *err) {
    /* Columns: the union of field names, in the order they first appear. */
    int cap = 64, nc = 0;
    const char **cols = malloc((size_t)cap * sizeof *cols);
    if (!cols) return pd_fail(err, "%s/results.csv: out of memory", out_dir);
    for (int i = 0; i < r->n; i++)
        for (int k = 0; k < r->recs[i].n_fields; k++) {
            const char *name = r->recs[i].fields[k].name;
            int seen = 0;
            for (int c = 0; c < nc && !seen; c++) seen = !strcmp(cols[c], name);
            if (seen) continue;
            if (nc == cap) {
                const char **n = realloc(cols, (size_t)(cap *= 2) * sizeof *n);
                if (!n) {
                    free(cols);
                    return pd_fail(err, "%s/results.csv: out of memory", out_dir);
                }
                cols = n;
            }
            cols[nc++] = name;
        }
    char path[1100];
    snprintf(path, sizeof path, "%s/results.csv", out_dir);
    core_atomic_file af;
    if (core_atomic_open(&af, path, err)) {
        free(cols);
        return -1;
    }
    for (int c = 0; c < nc; c++) {
        if (c) fputc(',', af.f);
        csv_cell(af.f, cols[c]);
    }
    fputc('\n', af.f);
    for (int i = 0; i < r->n; i++) {
        for (int c = 0; c < nc; c++) {
            if (c) fputc(',', af.f);
            const char *v = sw_record_get(&r->recs[i], cols[c]);
            csv_cell(af.f, v ? v : "");
        }
        fputc('\n', af.f);
    }
    free(cols);
    return core_atomic_commit(&af, err);
}

/* ------------------------------------------------------------------ results.md */

static const char *column_title(const char *col) {
    static const struct { const char *col, *title; } t[] = {
        {"fd", "FD (classifier features)"},
        {"kid", "KID"},
        {"kid_se", "KID standard error"},
        {"accuracy", "class accuracy"},
        {"spectral", "spectral error (RMSE of log10 power)"},
        {"traj_rmse", "trajectory RMSE vs the Heun reference"},
        {"traj_psnr", "trajectory PSNR vs the Heun reference (dB)"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].col, col)) return t[i].title;
    return col;
}

static void fmt_val(char *out, size_t cap, double v) {
    if (isnan(v)) snprintf(out, cap, "–");
    else if (isinf(v)) snprintf(out, cap, "%sinf", v < 0 ? "-" : "");
    else snprintf(out, cap, "%.4g", v);
}

/* A name inside a Markdown table cell: '|' would end the cell. */
static void md_name(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

/* The cell's record, or NULL when it has not run yet. */
static const sw_record *rec_of(const sw_results *r, const sw_grid *g, int cell) {
    return cell >= 0 ? sw_results_find(r, g->cells[cell].key) : NULL;
}

static int write_md(const sw_spec *s, const sw_grid *g, const sw_results *r, const char *out_dir,
                    pd_error *err) {
    char path[1100];
    snprintf(path, sizeof path, "%s/results.md", out_dir);
    core_atomic_file af;
    if (core_atomic_open(&af, path, err)) return -1;
    FILE *f = af.f;
    int done = 0;
    for (int c = 0; c < g->n_cells; c++) done += rec_of(r, g, c) != NULL;
    const sw_metric_info *head = sw_metric_get(s->metrics[0]);
    const char *hcol = head->columns[0];
    const sw_record *any = NULL;
    for (int c = 0; c < g->n_cells && !any; c++) any = rec_of(r, g, c);
    const char *sha = any ? sw_record_get(any, "model_sha256") : NULL;

    fprintf(f, "# Sweep %s\n\n", s->name);
    fprintf(f, "Model `%s`%s%.16s%s; %d images per cell, seed %llu (image i uses seed %llu + i, so "
               "every cell starts from the same noise); labels: %s; metrics:",
            s->model, sha && *sha ? " (sha256 " : "", sha ? sha : "", sha && *sha ? "…)" : "", s->n,
            (unsigned long long)s->seed, (unsigned long long)s->seed,
            any ? (sw_record_get(any, "labels") ? sw_record_get(any, "labels") : "?") : "?");
    for (int m = 0; m < s->n_metrics; m++) fprintf(f, "%s %s", m ? "," : "", sw_metric_get(s->metrics[m])->name);
    fprintf(f, ".\n%d of %d cells done. Generated from `results.jsonl` by pixdiff %s after every "
               "cell; `pixdiff sweep %s` resumes where it stopped.\n\n",
            done, g->n_cells, pd_version(), s->source);

    fprintf(f, "## %s%s against the NFE budget\n\n", column_title(hcol),
            head->lower_is_better[0] ? " (lower is better)" : " (higher is better)");
    fprintf(f, "| sampler |");
    for (int b = 0; b < s->n_nfe; b++) fprintf(f, " %d |", s->nfe[b]);
    fprintf(f, "\n|---|");
    for (int b = 0; b < s->n_nfe; b++) fprintf(f, "---:|");
    fputc('\n', f);
    int shown_actual = 0;
    for (int v = 0; v < s->n_variants; v++)
        for (int si = 0; si < s->n_samplers; si++) {
            char name[160];
            sw_series_name(name, sizeof name, s, si, v);
            fprintf(f, "| ");
            md_name(f, name);
            fprintf(f, " |");
            for (int b = 0; b < s->n_nfe; b++) {
                int cell = g->map[((size_t)v * s->n_samplers + si) * s->n_nfe + b];
                const sw_record *rec = rec_of(r, g, cell);
                char t[48];
                if (cell < 0) { /* no cell for this budget (no predictor file) */
                    fprintf(f, " n/a |");
                    continue;
                }
                if (!rec) {
                    fprintf(f, " … |");
                    continue;
                }
                fmt_val(t, sizeof t, sw_record_num(rec, hcol));
                double nfe = sw_record_num(rec, "nfe");
                if (nfe != s->nfe[b]) {
                    fprintf(f, " %s (%g) |", t, nfe);
                    shown_actual = 1;
                } else {
                    fprintf(f, " %s |", t);
                }
            }
            fputc('\n', f);
        }
    fprintf(f, "\nA budget means at most that many network evaluations per image: each sampler runs "
               "the most steps that fit.%s \"…\": not run yet; \"n/a\": no cell (an AMED budget "
               "without a predictor file).\n\n",
            shown_actual ? " Where they spend fewer, the NFE spent is in parentheses." : "");
    for (int m = 0; m < s->n_metrics; m++) {
        const sw_metric_info *mi = sw_metric_get(s->metrics[m]);
        for (int k = 0; mi->columns[k]; k++)
            if (mi->plotted[k]) fprintf(f, "![%s](plot_%s.png)\n", mi->columns[k], mi->columns[k]);
    }

    fprintf(f, "\n## All cells\n\n| sampler | variant | budget | steps | NFE |");
    for (int m = 0; m < s->n_metrics; m++) {
        const sw_metric_info *mi = sw_metric_get(s->metrics[m]);
        for (int k = 0; mi->columns[k]; k++) fprintf(f, " %s |", mi->columns[k]);
    }
    fprintf(f, " seconds | images/s | outside denoiser |\n|---|---|---:|---:|---:|");
    for (int m = 0; m < s->n_metrics; m++) {
        const sw_metric_info *mi = sw_metric_get(s->metrics[m]);
        for (int k = 0; mi->columns[k]; k++) fprintf(f, "---:|");
    }
    fprintf(f, "---:|---:|---:|\n");
    for (int c = 0; c < g->n_cells; c++) {
        const sw_cell *cl = &g->cells[c];
        const sw_record *rec = rec_of(r, g, c);
        fprintf(f, "| ");
        md_name(f, s->samplers[cl->sampler].label);
        fprintf(f, " | %s | %d | %d | %d |", s->variants[cl->variant].name, cl->budget, cl->steps, cl->nfe);
        char t[48];
        for (int m = 0; m < s->n_metrics; m++) {
            const sw_metric_info *mi = sw_metric_get(s->metrics[m]);
            for (int k = 0; mi->columns[k]; k++) {
                if (rec) fmt_val(t, sizeof t, sw_record_num(rec, mi->columns[k]));
                fprintf(f, " %s |", rec ? t : "…");
            }
        }
        if (rec) {
            fprintf(f, " %.3g | %.4g | %.1f%% |\n", sw_record_num(rec, "seconds"),
                    sw_record_num(rec, "samples_per_s"), 100 * sw_record_num(rec, "outside_denoiser"));
        } else {
            fprintf(f, " … | … | … |\n");
        }
    }
    fprintf(f, "\n\"outside denoiser\": the fraction of the cell's sampling time not spent inside "
               "denoiser evaluations (sampler arithmetic, noise, conversions).\n");
    return core_atomic_commit(&af, err);
}

/* ------------------------------------------------------------------ plots */

static int write_plot(const sw_spec *s, const sw_grid *g, const sw_results *r, const char *out_dir,
                      const char *col, int lower_is_better, pd_error *err) {
    int ns = s->n_variants * s->n_samplers;
    pd_plot_series *series = calloc((size_t)ns, sizeof *series);
    double *xs = malloc(sizeof(double) * (size_t)ns * (size_t)s->n_nfe * 2);
    char (*names)[160] = malloc((size_t)ns * sizeof *names);
    if (!series || !xs || !names) {
        free(series);
        free(xs);
        free(names);
        return pd_fail(err, "%s: out of memory for plots", out_dir);
    }
    int all_positive = 1, any = 0;
    for (int v = 0; v < s->n_variants; v++)
        for (int si = 0; si < s->n_samplers; si++) {
            int k = v * s->n_samplers + si;
            double *x = xs + (size_t)k * s->n_nfe * 2, *y = x + s->n_nfe;
            int n = 0, last_cell = -1;
            for (int b = 0; b < s->n_nfe; b++) {
                int cell = g->map[((size_t)v * s->n_samplers + si) * s->n_nfe + b];
                if (cell < 0 || cell == last_cell) continue; /* two budgets, one cell: one point */
                last_cell = cell;
                const sw_record *rec = rec_of(r, g, cell);
                x[n] = g->cells[cell].nfe;
                y[n] = rec ? sw_record_num(rec, col) : NAN;
                if (isinf(y[n])) y[n] = NAN; /* PSNR of an exact match: no point to draw */
                if (!isnan(y[n])) {
                    any = 1;
                    if (!(y[n] > 0)) all_positive = 0;
                }
                if (!(x[n] > 0)) x[n] = NAN; /* AFS with one step spends 0 evaluations: off a log axis */
                n++;
            }
            sw_series_name(names[k], sizeof names[k], s, si, v);
            series[k].label = names[k];
            series[k].x = x;
            series[k].y = y;
            series[k].n = n;
            series[k].color = si + 1; /* a sampler keeps its colour and marker in every variant */
            series[k].style = 1 + v % 8; /* and a variant its line style */
        }
    char title[300], path[1100];
    snprintf(title, sizeof title, "%s: %s (n = %d)", s->name, column_title(col), s->n);
    snprintf(path, sizeof path, "%s/plot_%s.png", out_dir, col);
    pd_plot_opts o = {title, "NFE (network evaluations per image)", column_title(col), 1,
                      any && all_positive && lower_is_better, 0, 0};
    int rc = pd_plot_lines(path, &o, series, ns, err);
    free(series);
    free(xs);
    free(names);
    return rc;
}

int sw_report_write(const sw_spec *s, const sw_grid *g, const sw_results *r, const char *out_dir,
                    pd_error *err) {
    if (write_csv(r, out_dir, err) || write_md(s, g, r, out_dir, err)) return -1;
    for (int m = 0; m < s->n_metrics; m++) {
        const sw_metric_info *mi = sw_metric_get(s->metrics[m]);
        for (int k = 0; mi->columns[k]; k++)
            if (mi->plotted[k] && write_plot(s, g, r, out_dir, mi->columns[k], mi->lower_is_better[k], err))
                return -1;
    }
    return 0;
}
