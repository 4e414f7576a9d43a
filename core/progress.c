/* progress.c — the defaults and timing arithmetic of pd_progress reports (progress.h). */
#include "core/progress.h"
#include "core/util.h"

#include <math.h>
#include <string.h>

void pg_init(pd_progress *p, const char *what, const char *unit) {
    memset(p, 0, sizeof *p);
    p->what = what;
    p->stage = "";
    p->unit = unit;
    p->rate = -1;
    p->eta_seconds = -1;
    p->loss = p->loss_psi = p->loss_theta = p->fd = NAN;
}

void pg_time(pd_progress *p, double t0) {
    p->seconds = pd_now() - t0;
    p->rate = p->seconds > 0 && p->done > 0 ? (double)p->done / p->seconds : -1;
    p->eta_seconds = p->rate > 0 && p->total > 0
                         ? (double)(p->total > p->done ? p->total - p->done : 0) / p->rate
                         : -1;
}
