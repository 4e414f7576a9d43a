/* bench_nets — one denoiser evaluation of a model file, timed by wall clock and by this process's
 * CPU time (CLOCK_PROCESS_CPUTIME_ID), so that on a shared machine the single-thread CPU time
 * still measures the work (bench/torch_edm_nets.py reports the same two numbers for PyTorch).
 * Prints, per batch size, the median over `repeat` evaluations of ms per image (wall and CPU) and
 * the peak resident memory. Checks nothing.
 * Usage: bench_nets MODEL.safetensors [threads] [repeat] [batches, e.g. 1,8]
 */
#include "pixdiff.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_nets MODEL [threads] [repeat] [batches]\n"); return 2; }
    int threads = argc > 2 ? atoi(argv[2]) : 1, repeat = argc > 3 ? atoi(argv[3]) : 3;
    char batches[64] = "1,8";
    if (argc > 4) snprintf(batches, sizeof batches, "%s", argv[4]);
    pd_set_threads(threads);
    pd_error err;
    pd_model *m;
    pd_denoiser *d;
    if (pd_model_load(&m, argv[1], &err) || pd_denoiser_from_model(&d, m, 0, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const pd_unet_config *c = pd_model_config(m);
    printf("%s: %s, %zu parameters, %.2f GFLOP per image, threads %d\n", argv[1], c->arch,
           pd_model_param_count(m), pd_model_gflops(m, 0), threads);
    for (char *tok = strtok(batches, ","); tok; tok = strtok(NULL, ",")) {
        int n = atoi(tok);
        size_t img = (size_t)d->C * d->H * d->W;
        float *x = malloc(n * img * sizeof(float)), *out = malloc(n * img * sizeof(float));
        float *sig = malloc(n * sizeof(float)), *lab = calloc((size_t)n * (d->label_dim + 1), sizeof(float));
        for (size_t j = 0; j < n * img; j++) x[j] = (float)((j * 2654435761u) % 2000) * 1e-3f - 1;
        for (int i = 0; i < n; i++) { sig[i] = 2.0f; if (d->label_dim) lab[(size_t)i * d->label_dim] = 1; }
        double *w = malloc(sizeof(double) * repeat), *cpu = malloc(sizeof(double) * repeat);
        for (int r = -1; r < repeat; r++) {   /* r = -1: warm-up (sizes the activation arena) */
            double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            if (pd_denoiser_eval(d, out, x, sig, d->label_dim ? lab : NULL, n, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            if (r >= 0) {
                w[r] = (now(CLOCK_MONOTONIC) - t0) * 1e3 / n;
                cpu[r] = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) * 1e3 / n;
            }
        }
        qsort(w, repeat, sizeof *w, cmp);
        qsort(cpu, repeat, sizeof *cpu, cmp);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("batch %3d: wall %9.1f ms/image, CPU %9.1f ms/image, peak RSS %.0f MiB\n", n,
               w[repeat / 2], cpu[repeat / 2], ru.ru_maxrss / 1024.0);
        free(x); free(out); free(sig); free(lab); free(w); free(cpu);
    }
    pd_denoiser_free(d);
    pd_model_free(m);
    return 0;
}
