/* test_pool — core/pool's contract: every item runs exactly once whatever the thread count, the
 * `parallel` switch and nesting run on the caller, the workers really take items, a worker that
 * slept through loops wakes for the next, two threads calling at once both get correct loops
 * (one of them on its own thread), and a worker starts on its home range (the second half of
 * the items, with two threads). */
#include "core/pool.h"
#include "testutil.h"
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct count_args {
    _Atomic int *hits;
    long n;
    _Atomic int calls, bad_range, off_caller;
    pthread_t caller;
    int spin;   /* busy work per item, so a loop lasts long enough for a worker to join */
};

static void count_items(void *p, long b, long e) {
    struct count_args *a = p;
    atomic_fetch_add(&a->calls, 1);
    if (b < 0 || e > a->n || b >= e) atomic_fetch_add(&a->bad_range, 1);
    if (!pthread_equal(pthread_self(), a->caller)) atomic_fetch_add(&a->off_caller, 1);
    for (long i = b; i < e; i++) {
        volatile float x = 1.0f;
        for (int k = 0; k < a->spin; k++) x = x * 0.999f + 0.5f;
        atomic_fetch_add(&a->hits[i], 1);
    }
}

/* Runs one loop of n items; returns the number of items not run exactly once (or -1 on a range
 * outside [0, n)). *off_caller gets the calls made on another thread. */
static long run_loop(long n, int parallel, int spin, int *off_caller, int *calls) {
    struct count_args a = {.n = n, .caller = pthread_self(), .spin = spin};
    a.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *a.hits);
    core_pool_for(n, parallel, count_items, &a);
    long wrong = 0;
    for (long i = 0; i < n; i++) wrong += atomic_load(&a.hits[i]) != 1;
    free(a.hits);
    if (off_caller) *off_caller = atomic_load(&a.off_caller);
    if (calls) *calls = atomic_load(&a.calls);
    return atomic_load(&a.bad_range) ? -1 : wrong;
}

struct nest_args {
    _Atomic int inner_calls, inner_not_whole, outer_not_in_loop;
};

static void nested_inner(void *p, long b, long e) {
    struct nest_args *a = p;
    atomic_fetch_add(&a->inner_calls, 1);
    if (b != 0 || e != 100) atomic_fetch_add(&a->inner_not_whole, 1);
}

static void nested_outer(void *p, long b, long e) {
    struct nest_args *a = p;
    if (!core_pool_in_loop()) atomic_fetch_add(&a->outer_not_in_loop, 1);
    for (long i = b; i < e; i++) core_pool_for(100, 1, nested_inner, p);
}

/* The first block a worker ran: its begin and end (-1 until one runs). */
struct home_args {
    _Atomic long first_b, first_e;
    pthread_t caller;
};

static void home_items(void *p, long b, long e) {
    struct home_args *a = p;
    long none = -1;
    if (!pthread_equal(pthread_self(), a->caller) &&
        atomic_compare_exchange_strong(&a->first_b, &none, b))
        atomic_store(&a->first_e, e);
    for (long i = b; i < e; i++) {
        volatile float x = 1.0f;
        for (int k = 0; k < 2000; k++) x = x * 0.999f + 0.5f;
    }
}

static void *concurrent_caller(void *arg) {
    long *wrong = arg;
    for (int r = 0; r < 200; r++) *wrong += run_loop(1000 + r, 1, 20, NULL, NULL) != 0;
    return NULL;
}

int main(void) {
    /* Home ranges: a worker that joins in time takes its first block from the front of its own
     * range, items 32-47 of 64 (half of its 32), where a shared counter's blocks start at 0, 16,
     * 28, 37, ... Some loop of 200 must show it (a worker may be late for any one loop). First,
     * while the pool has one worker: later tests start more, and idle workers beyond a loop's
     * team still take turns on the two cores. */
    omp_set_num_threads(2);
    int homed = 0;
    long fb = -1, fe = -1;
    for (int r = 0; r < 200 && !homed; r++) {
        struct home_args h = {.first_b = -1, .first_e = -1, .caller = pthread_self()};
        core_pool_for(64, 1, home_items, &h);
        fb = atomic_load(&h.first_b);
        fe = atomic_load(&h.first_e);
        homed = fb == 32 && fe == 48;
    }
    tu_check(homed, "with 2 threads a worker's first block is the front half of its home range "
             "(last seen: [%ld, %ld))", fb, fe);

    /* Exactly once, for shapes around the block size, at 1, 2 and 4 threads (4 > cores: workers
     * share them, and a descheduled worker must not hold the loop up forever). */
    long shapes[] = {1, 2, 3, 7, 8, 9, 63, 1000, 100003};
    for (int t = 1; t <= 4; t *= 2) {
        omp_set_num_threads(t);
        long wrong = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int r = 0; r < 20; r++) wrong += labs(run_loop(shapes[s], 1, 0, NULL, NULL));
        tu_check(wrong == 0, "%d threads: every item of 9 shapes x 20 loops ran exactly once (%ld "
                             "wrong)", t, wrong);
    }
    omp_set_num_threads(2);

    /* Many short loops in a row: the generation / close protocol under stress. */
    long wrong = 0;
    for (int r = 0; r < 100000; r++) wrong += labs(run_loop(2 + r % 5, 1, 0, NULL, NULL));
    tu_check(wrong == 0, "100000 loops of 2-6 items back to back: %ld wrong", wrong);

    /* parallel = 0 and n = 0. */
    int off = -1, calls = -1;
    long w = run_loop(5000, 0, 0, &off, &calls);
    tu_check(w == 0 && off == 0 && calls == 1, "parallel=0: one call on the caller (%d calls, %d off "
             "it, %ld wrong)", calls, off, w);
    w = run_loop(0, 1, 0, &off, &calls);
    tu_check(w == 0 && calls == 0, "n=0: fn is not called (%d calls)", calls);

    /* The workers take items: over loops long enough to wake one, some item runs off the caller. */
    int joined = 0;
    for (int r = 0; r < 2000 && !joined; r++) {
        w = run_loop(64, 1, 2000, &off, NULL);
        joined = off > 0;
        if (w) break;
    }
    tu_check(joined && w == 0, "with 2 threads a worker runs items (%s)",
             joined ? "yes" : "never in 2000 loops");


    /* A worker asleep on its futex (idle past the yield phase) wakes for the next loop. */
    struct timespec nap = {0, 5000000};
    wrong = 0;
    int woke = 0;
    for (int r = 0; r < 40; r++) {
        nanosleep(&nap, NULL);
        wrong += labs(run_loop(64, 1, 2000, &off, NULL));
        woke += off > 0;
    }
    tu_check(wrong == 0 && woke > 0, "after 5 ms idle: loops correct (%ld wrong), a worker joined "
             "%d of 40", wrong, woke);

    /* Nesting: an inner loop runs whole on the thread of the outer item. */
    struct nest_args na = {0};
    core_pool_for(16, 1, nested_outer, &na);
    tu_check(na.inner_calls == 16 && na.inner_not_whole == 0 && na.outer_not_in_loop == 0,
             "nested loops run serially: %d inner calls (16), %d split, %d outer calls not in a "
             "loop", na.inner_calls, na.inner_not_whole, na.outer_not_in_loop);
    tu_check(!core_pool_in_loop(), "core_pool_in_loop() is 0 outside a loop");

    /* Inside an OpenMP region, each thread's loop runs on that thread. */
    long omp_wrong = 0, omp_off = 0;
    #pragma omp parallel num_threads(2) reduction(+ : omp_wrong, omp_off)
    {
        int o = 0;
        omp_wrong += labs(run_loop(1000, 1, 0, &o, NULL));
        omp_off += o;
    }
    tu_check(omp_wrong == 0 && omp_off == 0, "inside an OpenMP region: serial and correct (%ld "
             "wrong, %ld calls off their thread)", omp_wrong, omp_off);

    /* Two threads calling at once: one holds the pool, the other runs its loop alone. */
    pthread_t th[2];
    long cw[2] = {0, 0};
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, concurrent_caller, &cw[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    tu_check(cw[0] + cw[1] == 0, "two threads calling at once: %ld + %ld wrong loops", cw[0], cw[1]);
    return tu_finish();
}
