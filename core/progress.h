/* progress.h — filling the library's one progress shape (pd_progress, pixdiff.h "progress").
 *
 * Contract: pg_init gives a report that says nothing yet: the call's name and unit, counts 0,
 * every optional field absent (0, NULL, NaN losses) and rate and ETA unknown (-1). pg_time sets
 * the elapsed seconds since t0 and, from done over that time, the rate and the ETA of what is
 * left of total; a call that measures its rate otherwise overwrites rate and eta_seconds after.
 */
#ifndef PD_CORE_PROGRESS_H
#define PD_CORE_PROGRESS_H

#include "pixdiff.h"

void pg_init(pd_progress *p, const char *what, const char *unit);
/* seconds = now - t0; rate = done / seconds; eta = (total - done) / rate (-1 while unknown). */
void pg_time(pd_progress *p, double t0);

#endif
