/* dist.c — the process group (contract in core/dist.h): MPI when built with it (PD_HAVE_MPI) and
 * started by mpirun, else one process.
 *
 * Joining: only a process that mpirun (or another PMI launcher) started calls MPI_Init_thread;
 * a plain `pixdiff ...` never touches MPI, so it starts as fast as before and cannot fail on a
 * machine without a working MPI runtime. FUNNELED is all we need: OpenMP threads compute, the
 * main thread alone talks to other ranks. Large buffers go in pieces of at most 1 GiB, because
 * MPI counts are ints.
 * Waiting: OpenMPI's blocking calls poll at full speed, so a rank that waits for rank 0 (which
 * writes a checkpoint, or measures a sweep cell) burns a core that rank 0 or another job could
 * use; on the 2-core development machine two ranks ran several times slower than one process.
 * Every call here is therefore non-blocking, completed by polling MPI_Test with a sleep that
 * grows from 20 us to 2 ms: at most a few milliseconds of latency per exchange, negligible
 * against pixdiff's exchanges (one per training step, one per sweep cell).
 */
#include "core/dist.h"
#include "pixdiff.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef PD_HAVE_MPI
#include <mpi.h>
#include <time.h>
#endif

static int g_rank = 0, g_size = 1;

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int pd_dist_rank(void) { return g_rank; }
int pd_dist_size(void) { return g_size; }

void dist_part(long long n, int r, long long *lo, long long *hi) {
    *lo = n * r / g_size;
    *hi = n * (r + 1) / g_size;
}

/* Started by a launcher: OpenMPI's mpirun sets OMPI_COMM_WORLD_SIZE, PMIx and Hydra set theirs. */
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

#ifdef PD_HAVE_MPI
#define CHUNK ((size_t)1 << 30)
static int g_mpi = 0;   /* MPI_Init_thread done */

/* Completes r, sleeping between polls (see the header comment). */
static void wait_req(MPI_Request *r) {
    long ns = 20000;
    for (int polls = 0;; polls++) {
        int done = 0;
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (done) return;
        if (polls < 64) continue;   /* a fast partner: answer within microseconds */
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        if (ns < 2000000) ns *= 2;
    }
}


int pd_dist_init(int *argc, char ***argv) {
    if (!launched()) return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return -1;
    g_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    return 0;
}

void pd_dist_finalize(void) {
    if (g_mpi) MPI_Finalize();
    g_mpi = 0;
}

void pd_dist_abort(int code) {
    if (g_mpi && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void dist_barrier(void) {
    if (g_size == 1) return;
    MPI_Request r;
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    wait_req(&r);
}

void dist_bcast(void *buf, size_t n, int root) {
    if (g_size == 1) return;
    for (size_t o = 0; o < n; o += CHUNK) {
        size_t k = n - o < CHUNK ? n - o : CHUNK;
        MPI_Request r;
        MPI_Ibcast((char *)buf + o, (int)k, MPI_BYTE, root, MPI_COMM_WORLD, &r);
        wait_req(&r);
    }
}

void dist_send(const void *buf, size_t n, int to) {
    for (size_t o = 0; o < n; o += CHUNK) {
        size_t k = n - o < CHUNK ? n - o : CHUNK;
        MPI_Request r;
        MPI_Isend((const char *)buf + o, (int)k, MPI_BYTE, to, 0, MPI_COMM_WORLD, &r);
        wait_req(&r);
    }
}

void dist_recv(void *buf, size_t n, int from) {
    for (size_t o = 0; o < n; o += CHUNK) {
        size_t k = n - o < CHUNK ? n - o : CHUNK;
        MPI_Request r;
        MPI_Irecv((char *)buf + o, (int)k, MPI_BYTE, from, 0, MPI_COMM_WORLD, &r);
        wait_req(&r);
    }
}

/* Each rank's part broadcast from its owner: simple, and right for the sizes pixdiff gathers
 * (per-image results, per-share losses), whatever their total. */
void dist_allgatherv(const void *mine, void *all, const size_t *bytes) {
    size_t off = 0;
    for (int r = 0; r < g_size; r++) {
        if (r == g_rank && bytes[r]) memmove((char *)all + off, mine, bytes[r]);
        dist_bcast((char *)all + off, bytes[r], r);
        off += bytes[r];
    }
}

void dist_gatherv(const void *mine, void *all, const size_t *bytes, int root) {
    size_t off = 0;
    for (int r = 0; r < g_size; r++) {
        if (r == root && g_rank == root) {
            if (bytes[r] && (const char *)all + off != mine) memmove((char *)all + off, mine, bytes[r]);
        } else if (g_rank == root) {
            dist_recv((char *)all + off, bytes[r], r);
        } else if (r == g_rank) {
            dist_send(mine, bytes[r], root);
        }
        off += bytes[r];
    }
}

int dist_any(int flag) {
    if (g_size == 1) return flag != 0;
    int in = flag != 0, out = 0;
    MPI_Request r;
    MPI_Iallreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &r);
    wait_req(&r);
    return out;
}
#else
/* Started by mpirun but built without MPI: the copies would not know of each other and would
 * all write the same files, so refuse (-2) when the job has more than one process. */
int pd_dist_init(int *argc, char ***argv) {
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    return launched() && n && atoi(n) > 1 ? -2 : 0;
}
void pd_dist_finalize(void) {}
void pd_dist_abort(int code) {}
void dist_barrier(void) {}
void dist_bcast(void *buf, size_t n, int root) {}
/* With one rank there is no partner: a send or receive is a caller's bug, caught here. */
void dist_send(const void *buf, size_t n, int to) { abort(); }
void dist_recv(void *buf, size_t n, int from) { abort(); }
void dist_allgatherv(const void *mine, void *all, const size_t *bytes) {
    if (bytes[0]) memmove(all, mine, bytes[0]);
}
void dist_gatherv(const void *mine, void *all, const size_t *bytes, int root) {
    if (bytes[0] && all != mine) memmove(all, mine, bytes[0]);
}
int dist_any(int flag) { return flag != 0; }
#endif

void pd_dist_part(long long n, long long *lo, long long *hi) { dist_part(n, g_rank, lo, hi); }

void pd_dist_bcast(void *buf, size_t n) {
    if (g_size > 1) dist_bcast(buf, n, 0);
}

void pd_dist_gather(void *buf, long long n, size_t item_bytes) {
    if (g_size == 1) return;
    size_t *bytes = malloc(sizeof(size_t) * (size_t)g_size);
    if (!bytes) abort();
    long long lo, hi, mine = 0;
    for (int r = 0; r < g_size; r++) {
        dist_part(n, r, &lo, &hi);
        bytes[r] = (size_t)(hi - lo) * item_bytes;
        if (r == g_rank) mine = lo;
    }
    dist_gatherv((char *)buf + (size_t)mine * item_bytes, buf, bytes, 0);
    free(bytes);
}

int pd_dist_max(int v) {
    if (g_size == 1) return v;
    int *all = malloc(sizeof(int) * (size_t)g_size);
    size_t *bytes = malloc(sizeof(size_t) * (size_t)g_size);
    if (!all || !bytes) abort();
    for (int r = 0; r < g_size; r++) bytes[r] = sizeof(int);
    dist_allgatherv(&v, all, bytes);
    for (int r = 0; r < g_size; r++) v = all[r] > v ? all[r] : v;
    free(all);
    free(bytes);
    return v;
}

void dist_sum_ordered(double *x, size_t n) {
    if (g_size == 1 || n == 0) return;
    size_t *bytes = malloc(sizeof(size_t) * (size_t)g_size);
    double *all = malloc(sizeof(double) * n * (size_t)g_size);
    if (!bytes || !all) abort();
    for (int r = 0; r < g_size; r++) bytes[r] = n * sizeof(double);
    dist_allgatherv(x, all, bytes);
    for (size_t i = 0; i < n; i++) {
        double s = all[i];
        for (int r = 1; r < g_size; r++) s += all[(size_t)r * n + i];
        x[i] = s;
    }
    free(all);
    free(bytes);
}
