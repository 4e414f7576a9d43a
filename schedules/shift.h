/* shift.h — the SNR shift of docs/algorithms.md §M3.3/§M3.4 as a factor on EDM sigma (internal to
 * schedules/; pd_sigma_grid applies it to the nonzero sigmas of a grid). */
#ifndef PD_SHIFT_H
#define PD_SHIFT_H

#include "pixdiff.h"

/* Checks the shift's parameters (resolution and bases > 0 and finite); 0 or -1 with err. */
int shift_check(const pd_schedule_params *p, pd_error *err);
/* The factor the unshifted sigma is multiplied by (1 for PD_SHIFT_NONE). */
double shift_factor(double sigma, const pd_schedule_params *p);

#endif
