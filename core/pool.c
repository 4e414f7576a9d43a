/* pool.c — the layers' fork-join threads (contract in pool.h, design in docs/threads.md).
 *
 * One loop at a time (pool_lock). The caller publishes the loop in `job`, rings `bell` (the word
 * idle workers sleep on), claims blocks of items like any worker (each thread from its own home
 * range first, then from the others'), then closes the loop and waits only for the workers that
 * entered it before it closed. A worker enters by one compare-and-swap on `job`, which fails
 * once the loop is closed or replaced, so a worker that wakes late never touches a finished
 * loop's arguments (they live on the caller's stack). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/pool.h"
#include <linux/futex.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX_WORKERS 255
/* An idle worker spins this many pause instructions (a few microseconds: the gap between two
 * layers' loops), then yields the core for YIELD_NS (the gap between two network evaluations, or
 * a sampler's own work between them), then sleeps. Spinning only while nothing else wants the
 * core is what sched_yield gives: it returns at once on an idle core. */
#define SPIN_PAUSES 1000
#define YIELD_NS 2000000LL
/* Home ranges. Thread t of a team of T (the caller is 0) owns items [t·n/T, (t+1)·n/T) and claims
 * them from the front, half of what is left of its range at a time; with its range empty it
 * steals half of what is left of another's, from the back. So the last blocks are short, and a
 * thread which lost its core to another process, or drew slower items, leaves the rest to the
 * others (first block n/(2T), as the shared counter's guided claims before). And when nothing
 * goes wrong each thread runs its own range: the same items of every loop of the same length go
 * to the same thread, and an item's data (a sample of the batch: the layers' loops run over
 * (sample, ...) in sample-major order) stays in that thread's caches from one layer to the next.
 * Why it matters: on this VM the two vCPUs at times sit far apart (a cache line's round trip
 * between them 330 ns, against 60 ns), and with a shared counter each loop's items went to
 * whichever thread came first, so most of a layer's input had been written by the other thread:
 * ref64 at batch 8 then ran at 19.4 ms per image, against 11.0 when close, while two 1-thread
 * processes ran at full speed side by side (docs/threads.md §5). */
#define HOME_MAX 64
static _Atomic uint64_t home[HOME_MAX];   /* lo << 32 | hi, per thread of the loop */

/* job = generation << 32 | CLOSED | team << 16 | threads inside (workers in the loop). */
#define CLOSED 0x80000000u
#define INSIDE_MASK 0xffffu
#define TEAM(s) ((int)(((s) >> 16) & 0x7fffu))

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int n_workers;   /* started so far (under pool_lock) */

/* The loop being run: written by its caller before it publishes `job`, read by a worker only after
 * it has entered the loop (the CAS orders the reads after the caller's writes). */
static core_pool_fn job_fn;
static void *job_ctx;
static int job_team;

static _Atomic uint64_t job;
static _Atomic uint32_t bell;    /* the generation's low 32 bits */
static _Atomic int sleepers;     /* workers in (or about to enter) FUTEX_WAIT */
static _Thread_local int in_loop;

int core_pool_in_loop(void) { return in_loop; }

static inline void cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static long futex(_Atomic uint32_t *word, int op, uint32_t val) {
    return syscall(SYS_futex, (uint32_t *)word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Takes half of what is left of range r (at least one item): from the front when r is the
 * thread's own (back = 0), else from the back. Returns 0 when the range is empty. */
static int claim(int r, int back, long *b, long *e) {
    uint64_t v = atomic_load_explicit(&home[r], memory_order_relaxed);
    for (;;) {
        long lo = (long)(v >> 32), hi = (long)(v & 0xffffffffu);
        if (lo >= hi) return 0;
        long take = (hi - lo + 1) / 2;
        uint64_t w = back ? (uint64_t)lo << 32 | (uint64_t)(hi - take)
                          : (uint64_t)(lo + take) << 32 | (uint64_t)hi;
        if (atomic_compare_exchange_weak_explicit(&home[r], &v, w, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *b = back ? hi - take : lo;
            *e = back ? hi : lo + take;
            return 1;
        }
    }
}

/* Thread t's share of the loop: its own range, then the others' (t+1, t+2, ... around). */
static void run_items(int t) {
    int T = job_team;
    long b, e;
    in_loop = 1;
    for (int k = 0; k < T; k++)
        while (claim((t + k) % T, k > 0, &b, &e)) job_fn(job_ctx, b, e);
    in_loop = 0;
}

/* Returns the first bell value other than `seen`: spin, then yield, then sleep. */
static uint32_t wait_bell(uint32_t seen) {
    uint32_t b;
    for (int i = 0; i < SPIN_PAUSES; i++) {
        if ((b = atomic_load(&bell)) != seen) return b;
        cpu_pause();
    }
    long long t0 = now_ns();
    do {
        if ((b = atomic_load(&bell)) != seen) return b;
        sched_yield();
    } while (now_ns() - t0 < YIELD_NS);
    /* Sequentially consistent: either the caller sees us in `sleepers` and wakes us, or we see
     * its new bell here (and FUTEX_WAIT itself returns at once if the bell moved since). */
    atomic_fetch_add(&sleepers, 1);
    while ((b = atomic_load(&bell)) == seen) futex(&bell, FUTEX_WAIT, seen);
    atomic_fetch_sub(&sleepers, 1);
    return b;
}

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;   /* 1, 2, ...: the caller is 0 */
    /* OpenMP loops met on this thread (outside unet/) and OpenBLAS calls run on it alone. */
    omp_set_num_threads(1);
    uint32_t seen = atomic_load(&bell);
    for (;;) {
        seen = wait_bell(seen);
        uint64_t s = atomic_load_explicit(&job, memory_order_acquire);
        while (!(s & CLOSED) && id < TEAM(s)) {
            if (atomic_compare_exchange_weak_explicit(&job, &s, s + 1, memory_order_acquire,
                                                      memory_order_acquire)) {
                run_items(id);
                atomic_fetch_sub_explicit(&job, 1, memory_order_release);
                break;
            }
        }
        seen = (uint32_t)(s >> 32);
    }
    return NULL;
}

/* Starts workers up to `want` (under pool_lock); returns how many there are. */
static int grow(int want) {
    if (want > POOL_MAX_WORKERS) want = POOL_MAX_WORKERS;
    while (n_workers < want) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &a, worker_main, (void *)(intptr_t)(n_workers + 1));
        pthread_attr_destroy(&a);
        if (rc) break;
        n_workers++;
    }
    return n_workers;
}

void core_pool_for(long n, int parallel, core_pool_fn fn, void *ctx) {
    if (n <= 0) return;
    /* A home range holds 32-bit bounds; no layer's loop comes near 2^31 items (they count
     * samples, channels, tiles or chunks of floats), and one that did would run serially. */
    int T = parallel && n > 1 && n <= 0x7fffffffL && !in_loop && !omp_in_parallel()
                ? omp_get_max_threads() : 1;
    if (T > HOME_MAX) T = HOME_MAX;
    if (T < 2 || pthread_mutex_trylock(&pool_lock)) {
        fn(ctx, 0, n);
        return;
    }
    T = 1 + grow(T - 1);
    if (T < 2) {
        pthread_mutex_unlock(&pool_lock);
        fn(ctx, 0, n);
        return;
    }
    job_fn = fn;
    job_ctx = ctx;
    job_team = T;
    for (int t = 0; t < T; t++)
        atomic_store_explicit(&home[t], (uint64_t)(n * t / T) << 32 | (uint64_t)(n * (t + 1) / T),
                              memory_order_relaxed);
    uint64_t gen = (atomic_load(&job) >> 32) + 1;
    atomic_store(&job, gen << 32 | (uint64_t)T << 16);
    atomic_store(&bell, (uint32_t)gen);
    if (atomic_load(&sleepers) > 0) futex(&bell, FUTEX_WAKE, (uint32_t)(T - 1));
    run_items(0);
    /* Close, then wait for the workers that got in; each is inside one claimed block at most. */
    uint64_t s = atomic_fetch_or(&job, CLOSED) | CLOSED;
    for (int i = 0; s & INSIDE_MASK; i++) {
        if (i < SPIN_PAUSES) cpu_pause();
        else sched_yield();
        s = atomic_load_explicit(&job, memory_order_acquire);
    }
    pthread_mutex_unlock(&pool_lock);
}
