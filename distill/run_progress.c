/* run_progress.c — rate and loss meters and interval tests of the long runs (see
 * run_progress.h). The arithmetic is the loops' own, in the same order, so what they print and
 * log is unchanged by its living here.
 */
#include "distill/run_progress.h"
#include "core/progress.h"
#include "core/util.h"

#include <stdio.h>
#include <string.h>

void rp_init(rp_meter *m, int n_losses, long long images, const double *initial) {
    memset(m, 0, sizeof *m);
    m->n_losses = n_losses < RP_MAX_LOSSES ? n_losses : RP_MAX_LOSSES;
    for (int j = 0; j < m->n_losses; j++) m->mean[j] = initial[j];
    m->rate_head = 1;
    m->rate_count = 1;
    m->rate_t[0] = core_now();
    m->rate_n[0] = images;
}

void rp_record(rp_meter *m, long long images, const double *losses) {
    enum { RING = RP_RATE_WINDOW + 1 };
    for (int j = 0; j < m->n_losses; j++) {
        m->since_sum[j] += losses[j];
        m->ring[j][m->n_seen % RP_LOSS_WINDOW] = losses[j];
    }
    m->since_n++;
    m->n_seen++;
    int k = m->n_seen < RP_LOSS_WINDOW ? m->n_seen : RP_LOSS_WINDOW;
    for (int j = 0; j < m->n_losses; j++) {
        double s = 0;
        for (int i = 0; i < k; i++) s += m->ring[j][i];
        m->mean[j] = s / k;
    }
    double now = core_now();
    m->now = now;
    m->rate_t[m->rate_head] = now;
    m->rate_n[m->rate_head] = images;
    m->rate_head = (m->rate_head + 1) % RING;
    if (m->rate_count < RING) m->rate_count++;
    int oldest = (m->rate_head - m->rate_count + RING) % RING;
    if (now > m->rate_t[oldest])
        m->rate = (double)(images - m->rate_n[oldest]) / (now - m->rate_t[oldest]);
}

double rp_since_mean(const rp_meter *m, int j) { return m->since_sum[j] / m->since_n; }

void rp_since_reset(rp_meter *m) {
    for (int j = 0; j < m->n_losses; j++) m->since_sum[j] = 0;
    m->since_n = 0;
}

int rp_progress_due(rp_meter *m, long long images, long long total) {
    if (!(m->now - m->last_progress >= 1.0 || images >= total)) return 0;
    m->last_progress = m->now;
    return 1;
}

void rp_report(const rp_meter *m, pd_progress *p, const char *what, long long images,
               long long total, double t0) {
    pg_init(p, what, "images");
    p->done = images;
    p->total = total;
    p->seconds = core_now() - t0;
    p->rate = m->rate > 0 ? m->rate : -1;
    p->eta_seconds = m->rate > 0 ? (double)(total - images) / m->rate : -1;
}

int rp_crossed(long long before, long long after, long long every) {
    return every > 0 && before / every != after / every;
}
