#include "testutil.h"
#include "core/rng.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tu_failures = 0;
static int tu_passes = 0;

static int report(const char *name, double max_abs, double max_rel, double tol) {
    int ok = max_rel <= tol && !isnan(max_rel);
    printf("%-48s max abs err %.3e  max rel err %.3e  (tol %.1e)  %s\n", name, max_abs, max_rel,
           tol, ok ? "ok" : "FAIL");
    if (ok) tu_passes++; else tu_failures++;
    return ok;
}

/* Relative error against the reference's scale: |got-ref| / (|ref| + 1e-3*max|ref| + 1e-12). */
int tu_compare(const char *name, const float *got, const double *ref, size_t n, double tol) {
    double scale = 0, max_abs = 0, max_rel = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (isnan(got[i])) e = INFINITY;
        max_abs = fmax(max_abs, e);
        max_rel = fmax(max_rel, e / (fabs(ref[i]) + 1e-3 * scale + 1e-12));
    }
    return report(name, max_abs, max_rel, tol);
}

int tu_compare_f(const char *name, const float *got, const float *ref, size_t n, double tol) {
    double *r = malloc(n * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = ref[i];
    int ok = tu_compare(name, got, r, n, tol);
    free(r);
    return ok;
}

void tu_check(int cond, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("  %s\n", cond ? "ok" : "FAIL");
    if (cond) tu_passes++; else tu_failures++;
}

void tu_fill(float *x, size_t n, uint64_t seed, float scale) {
    rng_randu(x, n, seed, 12345);
    for (size_t i = 0; i < n; i++) x[i] = (2 * x[i] - 1) * scale;
}

float *tu_randf(size_t n, uint64_t seed, float scale) {
    float *x = malloc(n * sizeof *x);
    tu_fill(x, n, seed, scale);
    return x;
}

double *tu_to_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

void tu_fill_d(double *x, size_t n, uint64_t seed, double scale) {
    float *t = malloc(n * sizeof *t);
    tu_fill(t, n, seed, 1.0f);
    for (size_t i = 0; i < n; i++) x[i] = t[i] * scale;
    free(t);
}

int tu_finish(void) {
    printf("%d passed, %d failed\n", tu_passes, tu_failures);
    return tu_failures ? 1 : 0;
}

int tu_forget_key(const char *path, const char *key) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n);
    int rc = b && fread(b, 1, (size_t)n, f) == (size_t)n ? 0 : -1;
    fclose(f);
    size_t k = strlen(key);
    char *at = rc || k < 3 ? NULL : memmem(b, (size_t)n, key, k);
    if (at) {
        at[k - 2] = 'z';
        f = fopen(path, "wb");
        rc = f && fwrite(b, 1, (size_t)n, f) == (size_t)n ? 0 : -1;
        if (f) fclose(f);
    }
    free(b);
    return at ? rc : -1;
}
