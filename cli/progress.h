/* progress.h — the CLI's one progress printer: any pd_progress (pixdiff.h "progress"), from any
 * long call (sample, eval, train, distill sid, distill amed, sweep, convert), becomes one stderr
 * line of at most 79 columns that names what its rate counts ("img/s", "steps/s", "evals/s"):
 *   <prefix>[ cell c/C[ (t/T)]][ <stage>]: <position>[ (<pct>%)][  <rate>][  <losses>]  ETA <eta>
 * (the rate once it is known; a sweep's percentage is left to its ETA)
 * On a terminal the line redraws in place (at most ten times a second, and at every new stage
 * and the last report); to a file or pipe (a log) it is printed about once a minute, at every
 * new stage (a sweep: every new cell), and at the end when the run printed a timed line, so a
 * short run's log holds no progress lines and a long one's stays short. Event lines (the
 * library's log callback) erase a drawn line first. --quiet silences all of it.
 */
#ifndef PD_CLI_PROGRESS_H
#define PD_CLI_PROGRESS_H

#include "pixdiff.h"
#include <stddef.h>

#define CLI_PROGRESS_COLUMNS 79     /* the longest line: below 80, so a terminal never wraps it */
#define CLI_PROGRESS_LOG_EVERY 60.0 /* seconds between the timed lines of a log */

typedef struct cli_progress {
    const char *prefix;       /* the line's first word: "sample", "train", "sid", ... */
    int quiet, tty;
    int drawn;                /* a line stands on the terminal, without its newline */
    int timed;                /* a log got a timed line in this stage */
    double last_draw;         /* of the last line drawn or printed */
    char key[160];            /* the stage (a sweep: its cell) of the last report */
} cli_progress;

/* tty from isatty(2). */
void cli_progress_init(cli_progress *ui, const char *prefix, int quiet);
/* The callback for every library call: user is the cli_progress. */
void cli_progress_show(void *user, const pd_progress *p);
/* The line for p (no "\r", no newline), at most CLI_PROGRESS_COLUMNS characters; returns its
 * length. */
int cli_progress_format(char *line, size_t cap, const char *prefix, const pd_progress *p);
/* A count the CLI measures itself (done of total in unit, timed from t0) through the same line. */
void cli_progress_count(cli_progress *ui, const char *stage, const char *unit, long long done,
                        long long total, double t0);
/* An event line "<prefix>: <line>" (the library's log callback; user is the cli_progress). */
void cli_progress_log(void *user, const char *line);
/* An event line as it is, after erasing a drawn progress line. */
void cli_progress_print(cli_progress *ui, const char *line);
/* Erases a drawn line (before other output, or at the end of a command whose bar goes away). */
void cli_progress_clear(cli_progress *ui);
/* Ends a drawn line with a newline, so it stays (the last state of a training run). */
void cli_progress_end(cli_progress *ui);
/* The end of a long run: cli_progress_end, then exits 130 when interrupted or 1 with msg when
 * rc != 0. */
void cli_progress_finish(cli_progress *ui, const char *cmd, int rc, const char *msg);

#endif
