/* sweep_dist.c — what a sweep moves between the ranks of an mpirun job when its cells go whole to
 * the ranks (sweep.h "cells over ranks"; docs/scale-out.md §3).
 *
 * Contract: sw_dist_whole_cells is the rule that picks, the same on every rank, between a round
 * of whole cells (rank r samples and scores the round's r-th cell on its own) and today's split
 * of one cell's images. sw_dist_collect brings every rank's finished cell (record line, timings,
 * metric values, the grid's images) to rank 0, which alone writes; sw_dist_share_fid_ref gives
 * every rank rank 0's FID reference, so the Inception reference set is read and featurised once.
 * Messages are the structs below copied byte for byte: every rank runs the same binary on the
 * same kind of machine (docs/scale-out.md §5). With one process every call is a copy or a no-op.
 * A rank that dies makes MPI end the job (core/dist.h); rank 0 out of memory fails the call and,
 * with it, the job.
 */
#include "core/dist.h"
#include "sweep/sweep.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int sw_dist_whole_cells(int n, int batch, int ranks, int cells_left) {
    if (ranks <= 1 || cells_left < ranks) return 0;
    /* A large cell keeps the image split: each rank then samples at least SW_DIST_LARGE full
     * batches of it (little lost to a partial batch), and a kill loses one cell, not one per
     * rank. A small one is better whole: no rank waits while rank 0 alone scores it. */
    long long b = batch < n ? batch : n;
    return (long long)n < (long long)SW_DIST_LARGE * ranks * b;
}

/* One finished cell on the wire; record and grid follow as two messages. */
typedef struct wire_result {
    int32_t cell, failed, nfe, grid_n;
    double sec, sec_den, sec_metrics;
    sw_metric_values mv;
    uint64_t rec_len, dim;
} wire_result;

void sw_cell_result_free(sw_cell_result *r) {
    if (!r) return;
    free(r->own);
    memset(r, 0, sizeof *r);
}

int sw_dist_collect(const sw_cell_result *mine, sw_cell_result *all, pd_error *err) {
    const int me = dist_rank(), size = dist_size();
    if (me > 0) {
        wire_result w = {mine->cell, mine->failed, mine->nfe, mine->record ? mine->grid_n : 0,
                         mine->sec, mine->sec_den, mine->sec_metrics, mine->mv,
                         mine->record ? strlen(mine->record) : 0, mine->dim};
        dist_send(&w, sizeof w, 0);
        if (w.rec_len) dist_send(mine->record, w.rec_len, 0);
        if (w.grid_n) dist_send(mine->grid, sizeof(float) * (size_t)w.grid_n * w.dim, 0);
        return 0;
    }
    all[0] = *mine;
    all[0].own = NULL;
    for (int r = 1; r < size; r++) {
        wire_result w;
        dist_recv(&w, sizeof w, r);
        sw_cell_result *o = &all[r];
        memset(o, 0, sizeof *o);
        o->cell = w.cell;
        o->failed = w.failed;
        o->nfe = w.nfe;
        o->sec = w.sec;
        o->sec_den = w.sec_den;
        o->sec_metrics = w.sec_metrics;
        o->mv = w.mv;
        o->dim = (size_t)w.dim;
        if (!w.rec_len) continue;
        /* One block: the grid's floats first (aligned), then the record and its terminator. */
        size_t grid_bytes = sizeof(float) * (size_t)w.grid_n * (size_t)w.dim;
        char *block = malloc(grid_bytes + (size_t)w.rec_len + 1);
        if (!block) return pd_fail(err, "out of memory for the result of cell %d from rank %d", w.cell + 1, r);
        o->own = block;
        o->record = block + grid_bytes;
        dist_recv(o->record, (size_t)w.rec_len, r);
        o->record[w.rec_len] = 0;
        if (w.grid_n) {
            dist_recv(block, grid_bytes, r);
            o->grid = (const float *)block;
            o->grid_n = w.grid_n;
        }
    }
    return 0;
}

/* The reference's sizes, then mu, sigma and the features (when it has them). */
typedef struct wire_ref {
    int64_t stats_n;
    int32_t dim, n, has_features;
    char source[1024];
} wire_ref;

int sw_dist_share_fid_ref(pd_fid_ref *r, pd_error *err) {
    if (dist_size() == 1) return 0;
    const int me = dist_rank();
    wire_ref w;
    memset(&w, 0, sizeof w);
    if (me == 0) {
        w.stats_n = r->stats.n;
        w.dim = r->stats.dim;
        w.n = r->n;
        w.has_features = r->features != NULL;
        memcpy(w.source, r->source, sizeof w.source);
    }
    dist_bcast(&w, sizeof w, 0);
    size_t d = (size_t)w.dim, nf = w.has_features ? (size_t)w.n * PD_INCEPTION_DIM : 0;
    int failed = 0;
    if (me > 0) {
        pd_fid_ref_free(r);
        r->stats.dim = w.dim;
        r->stats.n = w.stats_n;
        r->n = w.n;
        memcpy(r->source, w.source, sizeof r->source);
        r->stats.mu = malloc(sizeof(double) * d);
        r->stats.sigma = malloc(sizeof(double) * d * d);
        r->features = nf ? malloc(sizeof(float) * nf) : NULL;
        failed = !r->stats.mu || !r->stats.sigma || (nf && !r->features);
    }
    /* Every rank must know before the large messages whether all can take them. */
    if (dist_any(failed)) {
        if (failed) pd_fid_ref_free(r);
        return pd_fail(err, failed ? "out of memory for the FID reference (%d features)"
                                   : "another rank could not hold the FID reference (%d features)",
                       w.n);
    }
    dist_bcast(r->stats.mu, sizeof(double) * d, 0);
    dist_bcast(r->stats.sigma, sizeof(double) * d * d, 0);
    if (nf) dist_bcast(r->features, sizeof(float) * nf, 0);
    return 0;
}
