/* grad_shares.h — a step's gradient as a fixed sum of per-share gradients, over the MPI ranks.
 *
 * Contract (docs/scale-out.md §2): the global batch of B images is cut into S = gs_shares(B, max)
 * shares (max: the config's `training.shares`), share j holding images floor(j B / S) .. floor((j+1) B / S) - 1 of the batch. A share's
 * gradient is computed on its own (a U-Net call on its images only, with the loss normalised by
 * the global B), and the step's gradient is the sum of the S share gradients along one fixed
 * binary tree (node [lo, hi) = [lo, mid) + [mid, hi), mid = lo + (hi - lo) / 2, leaves the shares).
 * S and the tree depend on B and the config only, never on the number of ranks: with N ranks, rank r computes
 * the shares dist_part(S, r) (core/dist.h), the subtrees that lie inside one rank's shares are
 * added where they were computed, and the nodes that span ranks are added by the rank that owns
 * their first share after receiving the right half from its owner; the root is then broadcast.
 * Float addition is the same operation in every case, so every rank ends with the bits that a
 * single process computes, for any N (and a run may resume on a different N). Ranks beyond S
 * have no share and only receive.
 * Per-share scalars (loss sums, counts) come back summed over the shares in share order, again
 * the same on every rank for any N.
 * Memory: the one-process sum needs depth(S) + 1 gradient-sized buffers besides the output.
 *
 * Workers: in one process, up to `workers` threads compute disjoint subtrees at once, each
 * share on one thread (the U-Net's own parallel loops then run single-threaded inside it), and
 * the subtrees' roots are added along the same tree afterwards. A share's gradient has the same
 * bits on one thread as on several (the U-Net is thread-count invariant), so the sum is the one
 * a single worker computes. This is how training uses both cores: a share of a few images is
 * too little work per parallel loop for two threads (docs/benchmarks.md, "Training step").
 * Each worker beyond the first costs depth(S) + 2 gradient-sized buffers; gs_plan_init uses
 * fewer workers when they would exceed GS_WORKER_BYTES.
 */
#ifndef PD_GRAD_SHARES_H
#define PD_GRAD_SHARES_H

#include "pixdiff.h"
#include <stddef.h>

#define GS_MAX_SHARES 64     /* the most shares (so ranks) a step can have */
#define GS_DEFAULT_SHARES 8  /* `training.shares` when a config does not say: each share is one
                              * U-Net call, and a call on 8 images runs near batch-64 speed per
                              * image while one on 1 image runs ~1.5x slower (docs/benchmarks.md,
                              * "Training step"); 8 ranks can still share a step */
#define GS_MAX_VALUES 4    /* per-share scalars */
#define GS_WORKER_BYTES ((size_t)512 << 20)   /* the most extra buffer memory for workers */

/* The shares of a batch of B images when the config allows at most max_shares:
 * min(B, max_shares, GS_MAX_SHARES). */
int gs_shares(int B, int max_shares);

/* Computes share `share` (images first .. first + n - 1 of the batch): its gradient into grad
 * (zeroed by the caller, length np) and its scalars into values[GS_MAX_VALUES]. `worker`
 * (0 .. workers - 1) says which of the plan's workers runs it: calls with different workers
 * run at the same time and must use separate scratch (for example one U-Net run each). */
typedef int (*gs_share_fn)(void *user, int share, int worker, int first, int n, float *grad,
                           double *values, pd_error *err);

typedef struct gs_plan {
    int B, S, lo, hi;        /* batch, shares, this rank's shares [lo, hi) */
    size_t np;
    int depth, slots;        /* tree depth; subtrees this rank computes */
    int workers;             /* threads computing shares at once (one process only) */
    float *buf;              /* (depth + 1 + slots) * np, then (workers - 1) * (depth + 2) * np */
} gs_plan;

/* max_workers: the most threads that may compute shares at once (1: one share at a time, each
 * using every thread). The plan may use fewer (see GS_WORKER_BYTES; several ranks: 1). */
int gs_plan_init(gs_plan *p, int B, int max_shares, int max_workers, size_t np, pd_error *err);
void gs_plan_free(gs_plan *p);

/* One step's gradient into grad [np] (every rank) and the share scalars, summed in share order,
 * into values[n_values] (every rank). Collective. When a share fn fails on any rank, every rank
 * returns -1 (the failing one with its message) before any gradient is exchanged. */
int gs_run(gs_plan *p, gs_share_fn fn, void *user, float *grad, double *values, int n_values,
           pd_error *err);

/* The dropout key of a share: the run seed for share 0 (what a one-share step always used), a
 * different Philox key per share otherwise, so masks depend on (seed, step, share) only. */
uint64_t gs_dropout_seed(uint64_t seed, int share);

#endif
