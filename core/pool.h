/* pool.h — the layers' fork-join threads: one parallel loop at a time over [0, n), on the calling
 * thread and up to pd_get_threads() - 1 workers of our own (docs/threads.md).
 *
 * Why not OpenMP's loops: an evaluation of a small network runs about 200 of them, and libgomp's
 * waiting is either passive (each loop wakes a sleeping thread: 22-28 % of fashion32's time) or
 * spinning (two processes side by side then wait on each other's descheduled threads and run
 * 10-100x slower). Here the caller never waits for a thread that has not started: each thread
 * claims items from its own home range, then from the others' (a worker that wakes late finds
 * its range taken and the loop done, and goes back to waiting), and the caller waits only for
 * workers inside a claimed block. When no thread is late, thread t of T runs items
 * [t·n/T, (t+1)·n/T): a loop body whose items are sample-major keeps each sample on one thread
 * from loop to loop (docs/threads.md §5). Idle workers spin briefly, then wait with sched_yield
 * (which hands the core to any other runnable thread), then sleep on a futex.
 *
 * Bits: fn must give each item a result that depends on the item alone (no per-thread scratch
 * indexed by a thread number, no cross-item reduction): which thread runs an item varies from
 * run to run, its bits do not. */
#ifndef PD_POOL_H
#define PD_POOL_H

/* fn(ctx, begin, end): items [begin, end), begin < end. */
typedef void (*core_pool_fn)(void *ctx, long begin, long end);

/* Runs fn over [0, n) and returns when every item is done. Runs on the calling thread alone when
 * `parallel` is 0, the thread count is 1, n < 2, the caller is inside a pool loop or an OpenMP
 * parallel region, or another thread holds the pool. */
void core_pool_for(long n, int parallel, core_pool_fn fn, void *ctx);

/* 1 inside fn of a pool loop (on any of its threads), else 0. */
int core_pool_in_loop(void);

#endif
