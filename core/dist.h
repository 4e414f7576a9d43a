/* dist.h — the process group pixdiff runs in: one process, or the ranks of an `mpirun` job.
 *
 * Contract: the only door to MPI (docs/scale-out.md). Everything else asks rank and size, and
 * moves bytes through the calls below; none of it includes mpi.h. Built without MPI, or started
 * without mpirun, there is one rank (rank 0 of size 1) and every call is a copy or a no-op, so
 * the one binary behaves exactly as a plain program. Calls are collective where they say so:
 * every rank makes them in the same order (MPI's rule). A failed MPI call aborts the whole job
 * (MPI's default error handler), so a rank never waits forever for a partner that died: mpirun
 * tears the job down and exits non-zero.
 */
#ifndef PD_DIST_H
#define PD_DIST_H

#include <stddef.h>

int dist_rank(void);
int dist_size(void);
void dist_barrier(void);                                   /* collective */

/* Every rank's bytes[r] bytes (from mine on rank r) laid end to end, in rank order, into all on
 * every rank. bytes[] is the same array on every rank. Collective. */
void dist_allgatherv(const void *mine, void *all, const size_t *bytes);
/* The same into all on root only (all may be NULL elsewhere); root's own part is not copied
 * when it already lies in place in all. Collective. */
void dist_gatherv(const void *mine, void *all, const size_t *bytes, int root);
/* root's n bytes into buf on every rank. Collective. */
void dist_bcast(void *buf, size_t n, int root);
/* Point to point, blocking. */
void dist_send(const void *buf, size_t n, int to);
void dist_recv(void *buf, size_t n, int from);
/* 1 on every rank when flag is non-zero on any rank (an abort request seen by one rank stops all
 * of them at the same step). Collective. */
int dist_any(int flag);
/* The ordered reduce: x [n] of every rank summed element-wise as ((x_0 + x_1) + x_2) + ... in
 * rank order, the same bits on every rank whatever the timing. Collective. */
void dist_sum_ordered(double *x, size_t n);

/* The contiguous part [*lo, *hi) of 0..n-1 that rank r owns: floor(r n / size) .. floor((r+1) n
 * / size) — a fixed function of n and the group size. */
void dist_part(long long n, int r, long long *lo, long long *hi);

#endif
