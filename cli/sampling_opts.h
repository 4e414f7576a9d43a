/* sampling_opts.h — the sampler and sigma-grid options shared by `pixdiff sample`, `pixdiff
 * eval` (sampler + grid) and `pixdiff snr` (grid only): one table fragment, one set of
 * flag-combination checks, one conversion to pd_sample_params, so the commands cannot drift
 * apart. A command puts the fragment's rows into its own option table where it wants them.
 */
#ifndef PD_CLI_SAMPLING_OPTS_H
#define PD_CLI_SAMPLING_OPTS_H

#include "cli/args.h"
#include "pixdiff.h"

/* Up to CLI_SAMPLER_OPTS_MAX distinct option names in the sampler option table (pixdiff.h). */
#define CLI_SAMPLER_OPTS_MAX 18
#define CLI_SAMPLING_MAX_ROWS (14 + CLI_SAMPLER_OPTS_MAX)

/* One flag of the sampler option table: its first row, the text given, and the help strings. */
typedef struct cli_sampler_flag {
    const pd_sampler_option *row;
    const char *given;            /* the value text, or NULL */
    char flag[40], help[240], def[32];
} cli_sampler_flag;

typedef struct cli_sampling_opts {
    int with_sampler;         /* 0: only the sigma-grid options (snr) */
    int sampler, grid, shift, end, steps, nfe;
    double rho, sigma_min, sigma_max, shift_base, shift_base_low;
    /* The sampler option table's flags (--eta, --churn, --max-order, ...; pixdiff.h). */
    cli_sampler_flag flags[CLI_SAMPLER_OPTS_MAX];
    int n_flags;
    pd_sample_params opt_values;  /* the table's fields, parsed and checked by cli_sampling_opts_check */
    /* --afs / --no-afs, --predictor (amed, amed-plugin) */
    int afs, no_afs;
    const char *predictor_path;
    pd_amed_predictor *predictor;   /* loaded by cli_sampling_opts_check; cli_sampling_opts_free */
} cli_sampling_opts;

/* Sets the defaults (pd_sample_default_params) and writes the option rows into rows (room for
 * CLI_SAMPLING_MAX_ROWS); returns their count. With a sampler: --sampler --steps --nfe
 * --schedule --rho --sigma-min --sigma-max --end --shift --shift-base --shift-base-low, one flag
 * per name of the sampler option table, --afs --no-afs --predictor; without: the grid ones (--schedule --steps --rho
 * --sigma-min --sigma-max --end --shift --shift-base --shift-base-low). The *_def strings are the
 * help texts of the sigma-range and shift-base defaults ("the model's", ...). */
int cli_sampling_opts_init(cli_sampling_opts *o, arg_opt *rows, int with_sampler,
                           const char *sigma_min_def, const char *sigma_max_def,
                           const char *base_def);
/* After args_parse: picks the sampler's own grid when --schedule was not given, and checks the
 * flag combinations (exits 2 naming the flag). With --predictor it loads the predictor (exit 1
 * on a bad file) and takes from it whatever was not given on the command line: the sampler
 * (amed or amed-plugin), the grid and rho, the steps, --end sigma-min and the AFS setting. */
void cli_sampling_opts_check(cli_sampling_opts *o, arg_spec *spec, const char *cmd);
/* The sample parameters: the sigma range defaults to [smin, smax] (the denoiser's), the shift's
 * resolution is res and its base defaults to base; --nfe becomes steps; the grid is built once
 * to fail early on an impossible one (exit 2). p->steps holds the step count. */
void cli_sampling_opts_params(const cli_sampling_opts *o, arg_spec *spec, const char *cmd,
                              double smin, double smax, int res, int base, pd_sample_params *p);
/* The rho the grid uses (for metadata), or 0 when the grid has none. */
double cli_sampling_opts_rho(const cli_sampling_opts *o);
/* Releases the predictor (NULL-safe for commands that load none). */
void cli_sampling_opts_free(cli_sampling_opts *o);

#endif
