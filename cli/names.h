/* names.h — the library's name tables (samplers, σ grids, SNR shifts, presets) as the CLI shows
 * them: NULL-terminated choice lists for the option parser, built by iterating each table to its
 * _COUNT, and the help block that describes every name with the options it reads. */
#ifndef PD_CLI_NAMES_H
#define PD_CLI_NAMES_H

#include <stdio.h>

const char *const *cli_sampler_choices(void);
const char *const *cli_grid_choices(void);
const char *const *cli_shift_choices(void);
const char *const *cli_preset_choices(void);

/* Prints the samplers, schedules, shifts and model-spec syntax with their options. */
void cli_print_names(FILE *f);

#endif
