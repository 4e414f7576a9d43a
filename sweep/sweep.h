/* sweep.h — the sweep runner's internal pieces (pd_sweep_run in include/pixdiff.h is the public
 * face): the parsed and validated sweep file (sweep_config.c), the grid of cells and their
 * canonical keys (sweep_cells.c), results.jsonl and the files regenerated from it
 * (sweep_results.c, sweep_report.c), the metrics adapter with the trajectory reference cache
 * (sweep_metrics.c), and what moves between the ranks of an mpirun job when cells go whole to
 * them (sweep_dist.c). JSON text is written with the one JSON writer, core/jsonbuf.h.
 *
 * The grid is variants x samplers x NFE budgets. A budget means "at most N evaluations": each
 * sampler runs the most steps that fit (pd_sampler_steps_for_nfe) and the NFE it actually spends
 * is recorded. A cell's key is the canonical text of every setting that changes its numbers
 * (model hash, sampler and schedule settings, steps, variant, n, seed, labels, metrics, the
 * trajectory reference), so budgets that give the same step count share one cell and a changed
 * sweep file makes new cells only where settings changed.
 */
#ifndef PD_SWEEP_H
#define PD_SWEEP_H

#include "core/jsonbuf.h"
#include "core/yamldoc.h"
#include "pixdiff.h"

#include <stddef.h>
#include <stdint.h>

#define SW_MAX_SAMPLERS 32
#define SW_MAX_NFE 64
#define SW_MAX_VARIANTS 16
#define SW_KEY_CAP 1024

/* ------------------------------------------------------------------ metrics */

typedef enum {
    SW_METRIC_FD,
    SW_METRIC_KID,
    SW_METRIC_ACCURACY,
    SW_METRIC_PRECISION_RECALL,
    SW_METRIC_SPECTRAL,
    SW_METRIC_TRAJECTORY,
    SW_METRIC_COUNT
} sw_metric;

#define SW_MAX_COLUMNS 4
typedef struct sw_metric_info {
    const char *name;                     /* YAML spelling */
    const char *columns[SW_MAX_COLUMNS];  /* result columns, NULL-terminated; [0] is the headline */
    int plotted[SW_MAX_COLUMNS];          /* 1: plotted against NFE (standard errors are not) */
    int lower_is_better[SW_MAX_COLUMNS];
    int needs_classifier, needs_labels, needs_reference;
} sw_metric_info;

const sw_metric_info *sw_metric_get(sw_metric m);
int sw_metric_from_name(const char *name);

/* ------------------------------------------------------------------ the sweep file */

typedef enum { SW_LABELS_AUTO, SW_LABELS_CYCLE, SW_LABELS_NONE } sw_labels;

typedef struct sw_sampler {
    char label[64];          /* series name in tables and plots (unique) */
    int line;                /* line of the list item, for messages */
    pd_sample_params p;      /* sampler, schedule and options; sigma range 0 = the model's */
    char predictor[512];     /* amed, amed-plugin: predictor file per budget, "{nfe}" in it
                              * replaced by the budget; "" = the neutral predictor */
    int predictor_line;
    /* A one-step generator model (SiD, kind "generator") in place of a sampler: one cell of NFE 1
     * that every budget maps to, in each variant without transforms (a transformed variant has no
     * cell for it); its key holds the generator's hash. "" for a sampler. */
    char generator[512];
    int generator_line;
} sw_sampler;

/* A transform of the denoiser or grid applied to every sampler. A new kind is one more field
 * group here, one more key in sweep_config.c and one more step where sweep_plan.c builds the
 * cell's denoiser; the denoiser stack describes itself (pd_denoiser_describe), so the cell keys
 * and the reference keys follow without a change here. */
typedef struct sw_variant {
    char name[48];
    int line;
    pd_shift_kind shift;     /* SNR shift of the grid (docs/algorithms.md §M3.3-3.4) */
    double shift_base;       /* 0 = the model's trained resolution */
    double shift_base_low;
    int size;                /* sampling resolution, 0 = the trained one */
    int ug;                  /* upsample guidance (docs/algorithms.md §M2): size = m x trained */
    double ug_w, ug_eta;
    int skip;                /* Skip-Tuning (docs/algorithms.md §S5) */
    pd_skip_tuning skip_tuning;
    int cfg;                 /* classifier-free guidance (pd_denoiser_cfg) with weight cfg_w */
    double cfg_w;
} sw_variant;

typedef struct sw_spec {
    char source[512];        /* the YAML path, as given */
    char name[128];
    char model[1024];
    int model_line;
    char classifier[1024];
    /* features: inception (0: the classifier) — fd, kid and precision_recall are taken on the FID
     * Inception-v3's features (fd is then FID) (metrics/inception.c) against fid_ref (a PNG folder, FILE.npz
     * statistics, FILE.npy images or fashion-mnist:SPLIT), preprocessed as fid_prep. inception:
     * the weights, "" = $PIXDIFF_INCEPTION (resolved when the file is read). */
    int inception_features;
    char inception[1024], fid_ref[1024];
    int fid_prep;            /* pd_fid_prep */
    int features_line;
    /* model and classifier as files to open: a relative path resolved against the sweep file's
     * folder, the current directory, then pixdiff's data directory (pd_resolve_input), so shipped
     * sweeps work from anywhere; the fields above keep the text as written (it is part of the
     * cell keys, which must not change with the directory a sweep runs from). */
    char model_file[1024], classifier_file[1024];
    char data_dir[1024];     /* Fashion-MNIST folder; "" = PD_FASHION_MNIST_DIR */
    int labels_line, metrics_line, classifier_line; /* for errors found once the model is known */
    sw_sampler samplers[SW_MAX_SAMPLERS];
    int n_samplers;
    int nfe[SW_MAX_NFE];
    int n_nfe;
    sw_variant variants[SW_MAX_VARIANTS];
    int n_variants;
    int n, batch;
    uint64_t seed;
    sw_labels labels;
    sw_metric metrics[SW_METRIC_COUNT];
    int n_metrics;
    int reference_steps;
    int save_grid;
    int threads;
    char out_dir[1024];
    /* Other sweeps' output folders: a cell whose key is in one of their results.jsonl is copied
     * from there instead of being run again (same key = same settings = same numbers). */
#define SW_MAX_REUSE 8
    char reuse[SW_MAX_REUSE][1024];
    int n_reuse, reuse_line;
} sw_spec;

/* Parses and validates the whole file before any work: unknown keys, wrong types, unknown names,
 * options a sampler does not read, impossible budgets; errors read "file:line: key: why". */
int sw_spec_load(sw_spec *s, const char *path, pd_error *err);
int sw_spec_has_metric(const sw_spec *s, sw_metric m);
/* Whether metric m of this sweep goes through the classifier (fd, kid and precision_recall do
 * not with features: inception), and whether any asked metric needs the Inception network. */
int sw_spec_metric_uses_classifier(const sw_spec *s, sw_metric m);
int sw_spec_needs_inception(const sw_spec *s);

/* ------------------------------------------------------------------ cells */

typedef struct sw_cell {
    int sampler, variant;
    pd_sample_params p;      /* the sampler's parameters for this cell (a predictor's settings
                              * included); sigma range 0 = the model's */
    int budget;              /* the smallest NFE budget that maps to this cell */
    int steps, nfe;          /* steps that fit, and the NFE they spend */
    char key[SW_KEY_CAP];
    int done;                /* already in results.jsonl */
} sw_cell;

typedef struct sw_grid {
    sw_cell *cells;
    int n_cells;
    /* map[(v * n_samplers + s) * n_nfe + b] = cell index of budget b for sampler s, variant v,
     * or -1 when that budget has no cell (an AMED budget without a predictor file) */
    int *map;
} sw_grid;

/* Per (sampler, budget): what a predictor or generator file decides. skip: no cell for this
 * budget (the file does not exist). */
typedef struct sw_budget_override {
    int used, skip;
    pd_sample_params p;      /* replaces the sampler's parameters (steps set) */
    char sha256[65];         /* of the predictor or generator file, part of the key */
    double sigma_init;       /* a generator's sigma_init (part of its key) */
} sw_budget_override;

/* What the model contributes to keys and checks; from the loaded model, or from the spec alone
 * when the model is missing (a dry run still lists the cells). */
typedef struct sw_model_facts {
    int known;               /* 0: the model file is missing; keys use its path */
    char identity[160];      /* "sha256:<hex>" of the file, or the analytic spec */
    int res, C, label_dim;   /* trained resolution, channels, classes */
    double sigma_min, sigma_max;
    int is_analytic;
    /* each variant's denoiser stack as it describes itself (pd_denoiser_describe): the one text
     * behind the cell keys and the trajectory-reference keys; NULL entries when not known */
    const char *den_desc[SW_MAX_VARIANTS];
} sw_model_facts;

/* ov: NULL, or [n_samplers * n_nfe] overrides (index s * n_nfe + b). */
int sw_grid_build(sw_grid *g, const sw_spec *s, const sw_model_facts *mf,
                  const sw_budget_override *ov, pd_error *err);
/* The predictor path of sampler si for budget nfe ("{nfe}" replaced); 0, or -1 if too long. */
int sw_predictor_path(char *out, size_t cap, const sw_sampler *sm, int nfe);
void sw_grid_free(sw_grid *g);
/* The labels setting as resolved for this model ("cycle" or "none"). */
sw_labels sw_resolved_labels(const sw_spec *s, const sw_model_facts *mf);
/* Human-readable series name: "heun", or "heun / shift-scale" when there are several variants. */
void sw_series_name(char *out, size_t cap, const sw_spec *s, int sampler, int variant);

/* ------------------------------------------------------------------ results */

typedef struct sw_field {
    char *name, *value;      /* value as text: numbers as written, strings unquoted, "" = null */
    int is_string;
} sw_field;

typedef struct sw_record {
    sw_field *fields;
    int n_fields;
    const char *key;         /* the "key" field */
} sw_record;

typedef struct sw_results {
    sw_record *recs;
    int n, cap;
    char path[1100];         /* <out>/results.jsonl */
} sw_results;

/* Reads results.jsonl (a missing file is empty). A torn last line (no newline: the process
 * was killed while appending) is cut off the file; *dropped tells the caller. Any other line
 * that is not a JSON object with a "key" fails naming file:line. repair 0 (dry runs) leaves
 * the file alone and only ignores the torn tail. */
int sw_results_load(sw_results *r, const char *out_dir, int repair, int *dropped, pd_error *err);
/* Appends one JSON object (a single line, no newline) with one write() and fsyncs the file. */
int sw_results_append(sw_results *r, const char *json_line, pd_error *err);
const sw_record *sw_results_find(const sw_results *r, const char *key);
/* The record as one JSON line (no newline), fields in their order, the string fields named in
 * set_names given set_values instead: what sw_results_append takes. */
int sw_record_json(const sw_record *rec, const char *const *set_names, const char *const *set_values,
                   int n_set, jb_buf *out);
const char *sw_record_get(const sw_record *rec, const char *name); /* NULL when absent */
double sw_record_num(const sw_record *rec, const char *name);      /* NaN when absent/null */
void sw_results_free(sw_results *r);

/* results.csv (every record of results.jsonl), results.md (the cells of this sweep file: the
 * headline table and the long table) and one plot per metric column, all written atomically. */
int sw_report_write(const sw_spec *s, const sw_grid *g, const sw_results *r, const char *out_dir,
                    pd_error *err);

/* ------------------------------------------------------------------ trajectory reference cache
 * <out>/reference/<hash>.key (the reference's settings, written last), <hash>-end.npy (the
 * solution at the last nonzero sigma) and <hash>-zero.npy (one more denoiser call: sigma = 0),
 * each [n, C, H, W]. */

int sw_ref_load(const char *out_dir, const char *key, int n, int C, int H, int W, float **end,
                float **zero, pd_error *err);   /* 1 loaded, 0 not cached (or stale), -1 error */
int sw_ref_save(const char *out_dir, const char *key, int n, int C, int H, int W, const float *end,
                const float *zero, pd_error *err);
uint64_t sw_hash(const char *s);   /* FNV-1a 64 */

/* ------------------------------------------------------------------ metrics adapter */

typedef struct sw_metric_values {
    double v[SW_METRIC_COUNT][SW_MAX_COLUMNS]; /* NaN = not computed */
} sw_metric_values;

typedef struct sw_eval_ctx {
    const sw_spec *spec;
    pd_eval *ev;             /* the Fashion-MNIST evaluator; NULL unless a classifier metric is asked */
    pd_inception *inc;       /* features: inception: the network and the reference, else NULL */
    const pd_fid_ref *fid_ref;
    const float *reference;  /* trajectory reference at the cell's last sigma, [n, C, H, W], or NULL */
    const int *labels;       /* [n] class each image was asked to be, or NULL (unconditional) */
    int n, C, H, W;
} sw_eval_ctx;

/* Every metric of the spec on the samples x [n, C, H, W]: the one place that calls metric code. */
int sw_metrics_compute(const sw_eval_ctx *e, const float *x, sw_metric_values *out, pd_error *err);

/* ------------------------------------------------------------------ cells over ranks (sweep_dist.c)
 * Under mpirun, small cells go whole to one rank each, in rounds of one cell per rank, and rank 0
 * writes them in the one-process order (docs/scale-out.md §3). */

/* What one cell produced, for the writer: its record line, what the log line and summary need,
 * and the grid's images. */
typedef struct sw_cell_result {
    int cell;                /* index in the grid */
    int failed;              /* the cell failed on its rank (that rank holds the message) */
    int nfe;                 /* as pd_sample counted it */
    double sec, sec_den, sec_metrics;
    sw_metric_values mv;
    char *record;            /* the JSON line, or NULL */
    const float *grid;       /* the first grid_n images [grid_n, dim], or NULL */
    int grid_n;
    size_t dim;
    void *own;               /* what a received result owns (record and grid), freed by sw_cell_result_free */
} sw_cell_result;

/* 1 when the next cells go whole to the ranks: more than one rank, at least `ranks` cells left,
 * and cells small (n < SW_DIST_LARGE x ranks x batch, batch capped at n); else the cell's images
 * are split over the ranks. The same answer on every rank. */
#define SW_DIST_LARGE 8
int sw_dist_whole_cells(int n, int batch, int ranks, int cells_left);
/* Collective: every rank's result (mine) to rank 0, into all[0 .. size-1] in rank order (all[0]
 * is a copy of rank 0's own, which it keeps owning). Other ranks leave all untouched. */
int sw_dist_collect(const sw_cell_result *mine, sw_cell_result *all, pd_error *err);
void sw_cell_result_free(sw_cell_result *r);
/* Collective: rank 0's FID reference (statistics and features) to every other rank. */
int sw_dist_share_fid_ref(pd_fid_ref *r, pd_error *err);

#endif
