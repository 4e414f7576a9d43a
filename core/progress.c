/* progress.c — the defaults and timing arithmetic of pd_progress reports, and log lines
 * (progress.h). */
#include "core/progress.h"
#include "core/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
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
    p->seconds = core_now() - t0;
    p->rate = p->seconds > 0 && p->done > 0 ? (double)p->done / p->seconds : -1;
    p->eta_seconds = p->rate > 0 && p->total > 0
                         ? (double)(p->total > p->done ? p->total - p->done : 0) / p->rate
                         : -1;
}

void pg_log(void (*log)(void *user, const char *line), void *user, const char *fmt, ...) {
    if (!log) return;
    char line[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log(user, line);
}
