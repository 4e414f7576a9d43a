/* pingpong — the round trip of one cache line between CPU 0 and CPU 1, in ns (median of 5 runs
 * of 100,000 round trips, two threads pinned with pthread_setaffinity_np). On this VM it tells
 * the two states apart that decide how much a second thread buys (docs/threads.md §5): about
 * 60 ns when the vCPUs share a cache, about 330 ns when they do not. bench/alternate.sh prints
 * it before each measurement. Checks nothing. Usage: pingpong [CPU_A CPU_B]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* pthread_setaffinity_np */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TRIPS 100000L

static _Atomic long flag __attribute__((aligned(64)));
static int cpu_b;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *answer(void *arg) {
    (void)arg;
    pin(cpu_b);
    for (long i = 0; i < TRIPS; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) {
        }
        atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static double one_run(void) {
    pthread_t t;
    atomic_store(&flag, 0);
    if (pthread_create(&t, NULL, answer, NULL)) return -1;
    double t0 = now();
    for (long i = 0; i < TRIPS; i++) {
        atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) {
        }
    }
    double t1 = now();
    pthread_join(t, NULL);
    return (t1 - t0) / TRIPS * 1e9;
}

int main(int argc, char **argv) {
    int cpu_a = argc > 2 ? atoi(argv[1]) : 0;
    cpu_b = argc > 2 ? atoi(argv[2]) : 1;
    if (pin(cpu_a)) {
        fprintf(stderr, "pingpong: cannot run on CPU %d\n", cpu_a);
        return 1;
    }
    double r[5];
    for (int k = 0; k < 5; k++) r[k] = one_run();
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (r[j] < r[i]) {
                double x = r[i];
                r[i] = r[j];
                r[j] = x;
            }
    printf("round trip CPU %d <-> %d: %.0f ns\n", cpu_a, cpu_b, r[2]);
    return 0;
}
