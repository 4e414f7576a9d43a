/* run_progress.h — what a long run (pd_train, pd_distill_sid) reports while it runs: img/s over
 * a window, running-mean losses, per-interval loss means for the CSV logs, when a progress
 * callback is due (and its pd_progress report) and when an image count crosses an interval; and
 * log lines through the caller's callback.
 *
 * Contract: an rp_meter follows up to RP_MAX_LOSSES loss series. rp_record, called once after
 * each step with the images seen so far and the step's losses, updates
 *   rate:    images per second over the last RP_RATE_WINDOW steps (a ring of (time, images) at
 *            step ends, seeded with the start, so the first steps need no special case);
 *   mean[j]: the mean of series j over the last RP_LOSS_WINDOW steps, summed in ring order;
 *   since:   the sums and count since rp_since_reset (one CSV line per checkpoint).
 * Until the first step, mean[j] is the value given to rp_init (the checkpoint's last loss).
 * None of this feeds back into training: it only decides what is printed and logged.
 */
#ifndef PD_DISTILL_RUN_PROGRESS_H
#define PD_DISTILL_RUN_PROGRESS_H

#include "pixdiff.h"

#define RP_RATE_WINDOW 16   /* steps in the img/s window */
#define RP_LOSS_WINDOW 32   /* steps in the running-mean losses */
#define RP_MAX_LOSSES 2

typedef struct rp_meter {
    int n_losses;
    double rate_t[RP_RATE_WINDOW + 1];
    long long rate_n[RP_RATE_WINDOW + 1];
    int rate_head, rate_count;
    double ring[RP_MAX_LOSSES][RP_LOSS_WINDOW];
    int n_seen;                          /* steps recorded (ring fill) */
    double since_sum[RP_MAX_LOSSES];
    long long since_n;
    double now, last_progress;
    double rate;                         /* img/s; 0 until measurable */
    double mean[RP_MAX_LOSSES];          /* running means */
} rp_meter;

/* images: the run's count now (a resumed run starts where its checkpoint left off);
 * initial[j]: the means to show before the first step. */
void rp_init(rp_meter *m, int n_losses, long long images, const double *initial);
void rp_record(rp_meter *m, long long images, const double *losses);
/* The mean of series j since the last reset (only meaningful when since_n > 0). */
double rp_since_mean(const rp_meter *m, int j);
void rp_since_reset(rp_meter *m);
/* 1 when a progress report is due: a second since the last one, or the run's end reached. Marks
 * it as made. */
int rp_progress_due(rp_meter *m, long long images, long long total);
/* A pd_progress report (what, unit "images") of images out of total at the meter's rate: losses
 * absent, seconds since t0; the caller fills its loss fields. */
void rp_report(const rp_meter *m, pd_progress *p, const char *what, long long images,
               long long total, double t0);

/* 1 when going from `before` to `after` images passes a multiple of `every` (every > 0). */
int rp_crossed(long long before, long long after, long long every);

/* Formats one line and hands it to log(user, line); nothing when log is NULL. */
void rp_log(void (*log)(void *user, const char *line), void *user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
