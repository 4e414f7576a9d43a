/* sweep_run.h — the state of one pd_sweep_run and the functions its four files share (internal
 * to the sweep room; sweep.h has the sweep file, cells, results and metrics):
 *   sweep_plan.c       the model and what depends on it: each variant's denoiser, AMED predictors,
 *                      one-step generators, the classifier, Inception and the evaluator; a cell's
 *                      sampler parameters and the ends of its sigma grid;
 *   sweep_reference.c  the trajectory reference of a cell (memory, disk cache, or computed);
 *   sweep_record.c     a finished cell's JSON line, its grid PNG, and the cells copied from the
 *                      reuse folders;
 *   sweep_run.c        pd_sweep_run: the order of work, sampling, one cell, rounds of whole cells
 *                      under mpirun.
 * Functions returning int return 0 or -1 with err filled, as everywhere in the library.
 */
#ifndef PD_SWEEP_RUN_H
#define PD_SWEEP_RUN_H

#include "core/progress.h"
#include "sweep/sweep.h"

#include <stddef.h>

#define GRID_IMAGES 64       /* images in a cell's grid PNG (save_grid) */

typedef struct sw_run_variant {
    pd_denoiser *den;        /* what the cells sample with (the wrapper for upsample guidance) */
    pd_denoiser *own[4];     /* denoisers this variant owns (freed in reverse order) */
    int n_own;
    char desc[SW_KEY_CAP];   /* den's canonical description (pd_denoiser_describe) */
} sw_run_variant;

typedef struct sw_run {
    const sw_spec *s;
    const pd_sweep_options *o;
    sw_model_facts mf;
    pd_model *model;
    pd_denoiser *analytic;   /* the analytic denoiser, shared by all variants */
    sw_run_variant var[SW_MAX_VARIANTS];
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
} sw_run;

#define sw_log(R, ...) pg_log((R)->o->log, (R)->o->user, __VA_ARGS__)

/* ---- sweep_plan.c: before any cell */
int sw_open_model(sw_run *R, pd_error *err);
int sw_check_against_model(sw_run *R, pd_error *err);
int sw_build_variants(sw_run *R, pd_error *err);
void sw_free_variants(sw_run *R);
int sw_load_predictors(sw_run *R, pd_error *err);
int sw_load_generators(sw_run *R, pd_error *err);
int sw_needs_classifier(const sw_spec *s);
int sw_open_classifier(sw_run *R, pd_error *err);
int sw_open_inception(sw_run *R, pd_error *err);
int sw_open_fid_ref(sw_run *R, pd_error *err);
int sw_open_evaluator(sw_run *R, pd_error *err);
/* a cell's denoiser, parameters and the ends of its grid; its one-line description */
pd_denoiser *sw_cell_denoiser(const sw_run *R, const sw_cell *c);
int sw_cell_sigmas(sw_run *R, const sw_cell *c, const char *what, pd_sample_params *q, double *s_first,
                   double *s_last, pd_error *err);
void sw_describe_cell(char *out, size_t cap, const sw_spec *s, const sw_cell *c);

/* ---- sweep_reference.c */
/* The reference of variant vi for the sampler settings q (sw_cell_sigmas gave s_first, s_last)
 * into R->ref_end / R->ref_zero. */
int sw_get_reference(sw_run *R, int vi, const pd_sample_params *q, double s_first, double s_last,
                     pd_error *err);
void sw_hand_reference(sw_run *R, int r, int end_at_zero, size_t count);

/* ---- sweep_record.c */
void sw_make_record(jb_buf *b, sw_run *R, const sw_cell *c, const pd_sample_params *q, int nfe,
                    const sw_metric_values *mv, double sec, double sec_den, double sec_metrics);
int sw_commit_cell(sw_run *R, const sw_cell_result *res, pd_sweep_summary *sum, pd_error *err);
int sw_reuse_cells(sw_run *R, pd_error *err);

/* ---- sweep_run.c: what the other files borrow of the sampling loop */
int sw_agree(int failed, pd_error *err);
void sw_my_images(int n, int *lo, int *hi);
void sw_gather_images(float *x, int n, size_t dim);
/* The cells' request (seed, classes, batch, progress and abort through R) with sampler settings q. */
pd_generate_params sw_generate_params(sw_run *R, pd_sample_params q);

#endif
