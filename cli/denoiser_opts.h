/* denoiser_opts.h — the options that change the denoiser rather than the sampler, shared by the
 * commands that sample: Skip-Tuning (docs/algorithms.md §S5: --skip-tuning, --skip-window) and upsample
 * guidance at a larger --size (docs/algorithms.md §M2: --upsample-guidance, --ug-eta). A command puts the
 * rows into its option table, checks them after parsing and, once its model is open, applies
 * them to get the denoiser to sample with.
 */
#ifndef PD_CLI_DENOISER_OPTS_H
#define PD_CLI_DENOISER_OPTS_H

#include "cli/args.h"
#include "cli/common.h"
#include "pixdiff.h"

#define CLI_DENOISER_MAX_ROWS 4

typedef struct cli_denoiser_opts {
    const char *skip_tuning;  /* "RB[:RT]" or a comma list rho_0,...,rho_k (bottom first) */
    const char *skip_window;  /* "LO:HI" */
    double ug_w, ug_eta;
    pd_skip_tuning st;        /* parsed by cli_denoiser_opts_check */
    int st_on;
    pd_denoiser *lo, *ug;     /* upsample guidance: the native-size branch and the wrapper (owned) */
    char desc[1024];          /* for metadata: the transforms' terms of the stack's description
                               * (pd_denoiser_describe), "" when nothing applies */
} cli_denoiser_opts;

/* Writes the rows (room for CLI_DENOISER_MAX_ROWS) and returns their count. */
int cli_denoiser_opts_init(cli_denoiser_opts *o, arg_opt *rows);
/* Parses --skip-tuning / --skip-window (exit 2 naming the flag). */
void cli_denoiser_opts_check(cli_denoiser_opts *o, arg_spec *spec, const char *cmd);
/* Applies the options to an open model (cm->den at the sampling size) and returns the denoiser
 * to sample with: cm->den itself, or the upsample-guidance wrapper around it and a native-size
 * branch. For a one-step generator (cm->gen) Skip-Tuning goes to the generator and NULL is
 * returned; upsample guidance exits 2 naming both. Exit 2 when an option does not fit the model
 * (analytic, size not a multiple). */
pd_denoiser *cli_denoiser_opts_apply(cli_denoiser_opts *o, arg_spec *spec, const char *cmd,
                                     cli_model *cm);
/* Frees what apply built (before cli_model_close). */
void cli_denoiser_opts_free(cli_denoiser_opts *o);

#endif
