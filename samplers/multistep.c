/* multistep.c — the order rule, the max_order option and dynamic thresholding shared by the
 * multistep samplers (contract in multistep.h; docs/algorithms.md §S3.1, §S3.3). */
#include "samplers/multistep.h"
#include <math.h>

int ms_order(const sampler_run *r, int i, int max_order) {
    if (r->sigmas[i + 1] == 0.0) return 1;   /* k-diffusion: the step into 0 returns D */
    if (!r->p->lower_order_final) return i + 1 < max_order ? i + 1 : max_order;
    /* diff-sampler (solvers.py dpm_pp_sampler): i + 1 < p ? i + 1 : min(p, steps - i) */
    if (i + 1 < max_order) return i + 1;
    int left = r->steps - i;
    return left < max_order ? left : max_order;
}

int ms_max_order(const sampler_run *r, int def, int hi) {
    int p = r->p->max_order;
    if (p == 0) return def;
    if (p < 1 || p > hi)
        return pd_fail(r->err, "%s: max_order must be 1..%d (0 = %d), got %d",
                       pd_sampler_name(r->p->sampler), hi, def, p);
    return p;
}

static void swap(double *a, long i, long j) {
    double t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* The k-th smallest of a[0..n) (0-based), partially reordering a so that every element after
 * position k is >= a[k]: quickselect with a median-of-three pivot and Hoare partition. */
static double select_kth(double *a, long n, long k) {
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) swap(a, lo, mid);
        if (a[hi] < a[lo]) swap(a, lo, hi);
        if (a[hi] < a[mid]) swap(a, mid, hi);
        double pivot = a[mid];
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) swap(a, i++, j--);
        }
        /* now a[lo..j] <= pivot, a[i..hi] >= pivot, and a[j+1..i-1] == pivot */
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

void ms_threshold(double *m, double *scratch, int n, size_t dim, double q) {
    double pos = q * (double)(dim - 1);
    long k = (long)floor(pos);
    double frac = pos - (double)k;
    #pragma omp parallel for schedule(static) if ((size_t)n * dim > 32768)
    for (int b = 0; b < n; b++) {
        double *mb = m + (size_t)b * dim, *a = scratch + (size_t)b * dim;
        /* NaN sorts last (as +inf) so the comparisons stay a total order */
        for (size_t j = 0; j < dim; j++) a[j] = isnan(mb[j]) ? INFINITY : fabs(mb[j]);
        double v = select_kth(a, (long)dim, k);
        if (frac > 0 && k + 1 < (long)dim) {
            double next = a[k + 1];
            for (size_t j = (size_t)k + 2; j < dim; j++) next = fmin(next, a[j]);
            v = v + frac * (next - v);
        }
        double s = v > 1.0 ? v : 1.0;
        if (!isfinite(s)) continue;           /* nothing sensible to scale by: leave m alone */
        for (size_t j = 0; j < dim; j++) mb[j] = fmin(fmax(mb[j], -s), s) / s;
    }
}
