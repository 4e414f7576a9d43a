/* sweep_reference.c — the trajectory reference of a cell (sweep_run.h): the probability-flow
 * ODE of the cell's denoiser from the cells' own noise, solved by Heun with reference_steps steps,
 * kept in memory for the next cell with the same key, cached on disk by rank 0
 * (sweep_metrics.c sw_ref_load/sw_ref_save) and, under mpirun, computed by all ranks together
 * (each on its part of the images) and handed to the rank whose cell needs it.
 */
#include "core/dist.h"
#include "core/util.h"
#include "sweep/sweep_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ trajectory reference */

/* The reference for a cell: pd_trajectory_reference (docs/algorithms.md §S0.7, as `pixdiff eval
 * --ref-steps`) of the cell's request, the probability-flow ODE of the cell's denoiser from the
 * same noise solved by Heun with reference_steps steps from the grid's first sigma to s_last
 * ("end"), and one more denoiser call into sigma = 0 ("zero"); both are kept, for the cells that
 * stop at sigma_min and those that end at 0. */
int sw_get_reference(sw_run *R, int vi, const pd_sample_params *q, double s_first, double s_last,
                     pd_error *err) {
    const sw_spec *s = R->s;
    pd_denoiser *d = R->var[vi].den;
    char key[SW_KEY_CAP], a[40], b[40];
    jb_fmt_double(a, sizeof a, s_first);
    jb_fmt_double(b, sizeof b, s_last);
    /* Everything that changes the ODE or its start: the denoiser stack as it describes itself
     * (model, size, every transform: sw_run_variant.desc), the grid's ends, noise, labels. */
    size_t len = 0;
    jb_addf(key, sizeof key, &len, "reference=heun:%d|%s|sigma=%s..%s|n=%d|seed=%llu|labels=%s",
            s->reference_steps, R->var[vi].desc, a, b, s->n, (unsigned long long)s->seed,
            R->labels == SW_LABELS_CYCLE ? "cycle" : "none");
    if (len >= sizeof key) return pd_fail(err, "reference key too long");
    if (R->ref_key[0] && !strcmp(R->ref_key, key)) return 0;
    free(R->ref_end);
    free(R->ref_zero);
    R->ref_end = R->ref_zero = NULL;
    R->ref_key[0] = 0;

    const int n = s->n;
    const size_t dim = (size_t)d->C * d->H * d->W;
    float *end = NULL, *zero = NULL;
    /* Rank 0 reads the cache; the other ranks only help compute a missing reference. */
    int got = dist_rank() == 0 ? sw_ref_load(R->out, key, n, d->C, d->H, d->W, &end, &zero, err) : 0;
    if (sw_agree(got < 0, err)) return -1;
    dist_bcast(&got, sizeof got, 0);
    if (got == 1) {
        sw_log(R, "reference %016llx: read from %s/reference (heun %d steps, sigma %g .. %g)",
              (unsigned long long)sw_hash(key), R->out, s->reference_steps, s_first, s_last);
    } else {
        end = malloc(sizeof(float) * (size_t)n * dim);
        zero = malloc(sizeof(float) * (size_t)n * dim);
        if (sw_agree(!end || !zero, err)) {
            if (!end || !zero) pd_fail(err, "out of memory for the trajectory reference (%d images)", n);
            free(end);
            free(zero);
            return -1;
        }
        char what[160];
        snprintf(what, sizeof what, "reference: heun %d steps, sigma %.4g .. %.4g", s->reference_steps,
                 s_first, s_last);
        sw_log(R, "reference %016llx: computing (heun %d steps from sigma %g to %g, %d images from the "
                 "cells' noise; cached in %s/reference)",
              (unsigned long long)sw_hash(key), s->reference_steps, s_first, s_last, n, R->out);
        const char *saved_what = R->pr.stage;
        R->pr.stage = what;
        R->pr.images = n;
        R->in_reference = 1;
        double t0 = core_now();
        /* Each rank its images of the cells' request; rank 0 gathers both arrays. */
        int lo, hi;
        sw_my_images(n, &lo, &hi);
        pd_generate_params gp = sw_generate_params(R, *q);
        pd_sample_stats st = {0};
        R->pr.images_done = 0;
        R->pr.step = R->pr.batch = 0;
        int rc = pd_trajectory_reference(d, &gp, s->reference_steps, lo, hi - lo, end + (size_t)lo * dim,
                                         zero + (size_t)lo * dim, &st, err);
        R->pr.stage = saved_what;
        R->in_reference = 0;
        rc = sw_agree(rc != 0, err);
        /* A rank may hold no image (n below the ranks): the NFE is the largest any rank saw. */
        int nfe = pd_dist_max(hi > lo ? st.nfe : -1);
        if (rc == 0) {
            sw_gather_images(end, n, dim);
            sw_gather_images(zero, n, dim);
        }
        if (rc == 0 && dist_rank() == 0)
            rc = sw_ref_save(R->out, key, n, d->C, d->H, d->W, end, zero, err);
        if (rc) {
            free(end);
            free(zero);
            return -1;
        }
        sw_log(R, "reference %016llx: heun %d steps (NFE %d), sigma %g .. %g, %d images: %.1f s",
              (unsigned long long)sw_hash(key), s->reference_steps, nfe, s_first, s_last, n,
              core_now() - t0);
    }
    R->ref_end = end;
    R->ref_zero = zero;
    snprintf(R->ref_key, sizeof R->ref_key, "%s", key);
    return 0;
}

/* The round's reference for rank r's cell, from rank 0 (which holds the whole of every reference)
 * into that rank's solo_ref. */
void sw_hand_reference(sw_run *R, int r, int end_at_zero, size_t count) {
    const float *src = end_at_zero ? R->ref_zero : R->ref_end;
    if (r == dist_rank() && r == 0) memcpy(R->solo_ref, src, sizeof(float) * count);
    else if (r == dist_rank()) dist_recv(R->solo_ref, sizeof(float) * count, 0);
    else if (dist_rank() == 0) dist_send(src, sizeof(float) * count, r);
}
