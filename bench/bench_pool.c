/* bench_pool — what one parallel loop costs: core/pool's loops against OpenMP's, over loops as
 * short as a small network's layers (docs/threads.md). Each loop has `items` items of `work`
 * dependent multiply-adds each; prints microseconds per loop, the median of `repeat` rounds of
 * `loops` loops. OpenMP's waiting follows OMP_WAIT_POLICY as usual (unset: libgomp spins). Checks
 * nothing. Run two at once to see what sharing the cores does to each.
 * Usage: bench_pool pool|omp [threads] [loops] [items] [work] [repeat]
 */
#include "core/pool.h"
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile float sink[4096];   /* read by no one: volatile keeps the work */
static int work;

static void item(long i) {
    float a = (float)i;
    for (int k = 0; k < work; k++) a = a * 0.999f + 1.0f;
    sink[i & 4095] = a;
}

static void items(void *ctx, long b, long e) {
    (void)ctx;
    for (long i = b; i < e; i++) item(i);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "pool") && strcmp(argv[1], "omp"))) {
        fprintf(stderr, "usage: bench_pool pool|omp [threads] [loops] [items] [work] [repeat]\n");
        return 2;
    }
    int use_pool = strcmp(argv[1], "pool") == 0;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    long loops = argc > 3 ? atol(argv[3]) : 20000;
    int n = argc > 4 ? atoi(argv[4]) : 16;
    work = argc > 5 ? atoi(argv[5]) : 2000;
    int repeat = argc > 6 ? atoi(argv[6]) : 5;
    if (threads < 1 || loops < 1 || n < 1 || work < 0 || repeat < 1 || repeat > 100) {
        fprintf(stderr, "bench_pool: bad argument\n");
        return 2;
    }
    omp_set_num_threads(threads);
    double t[100];
    for (int r = 0; r < repeat; r++) {
        double t0 = now();
        for (long l = 0; l < loops; l++) {
            if (use_pool) {
                core_pool_for(n, 1, items, NULL);
            } else {
                #pragma omp parallel for schedule(static)
                for (int i = 0; i < n; i++) item(i);
            }
        }
        t[r] = 1e6 * (now() - t0) / (double)loops;
    }
    qsort(t, (size_t)repeat, sizeof *t, cmp);
    printf("%s, %d threads, %d items x %d: %.2f us per loop (median of %d; min %.2f)\n",
           use_pool ? "pool" : "omp", threads, n, work, t[repeat / 2], repeat, t[0]);
    return 0;
}
