/* kid.c — Kernel Inception Distance (Bińkowski et al. 2018) on classifier features (pd_kid).
 *
 * For each of `subsets` rounds, m vectors are drawn without replacement from each set
 * (mt_kid_subset: Philox, so a seed fixes every draw) and the unbiased MMD^2 estimate
 *   MMD^2 = sum_{i != j} k(a_i, a_j) / (m (m-1)) + sum_{i != j} k(b_i, b_j) / (m (m-1))
 *           - 2 sum_{i, j} k(a_i, b_j) / m^2,        k(x, y) = (x.y / dim + 1)^3
 * is taken; KID is the mean over rounds, reported with the standard deviation of the rounds and
 * the standard error std / sqrt(subsets). (The rounds reuse images, so the SE describes the
 * spread of the subset draws, not the sampling error of a fresh set of n images.) The Gram
 * matrices come from double BLAS (dsyrk / dgemm, called outside any OpenMP region); the kernel
 * sums run in a fixed order, so the result does not depend on the thread count.
 */
#include "core/rng.h"
#include "metrics/metrics.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

pd_kid_params pd_kid_default_params(void) {
    pd_kid_params p = {100, 1000, 0};
    return p;
}

void mt_kid_subset(int *idx, int n, int m, uint64_t seed, int subset, int which) {
    for (int i = 0; i < n; i++) idx[i] = i;
    uint64_t stream = ((uint64_t)subset << 1) | (uint64_t)(which & 1);
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t r[4] = {0};
    for (int i = 0; i < m && i < n - 1; i++) {
        if ((i & 3) == 0) {
            uint64_t blk = (uint64_t)i >> 2;
            uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)stream,
                               (uint32_t)(stream >> 32)};
            rng_philox4x32(r, ctr, key);
        }
        /* j uniform on i..n-1 up to a bias below n / 2^32. */
        int j = i + (int)(((uint64_t)r[i & 3] * (uint64_t)(n - i)) >> 32);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static double cube_kernel(double g, double inv_d) {
    double k = g * inv_d + 1.0;
    return k * k * k;
}

int pd_kid(const float *f1, int n1, const float *f2, int n2, int d, const pd_kid_params *p,
           pd_kid_result *res, pd_error *err) {
    pd_kid_params q = p ? *p : pd_kid_default_params();
    memset(res, 0, sizeof *res);
    if (d < 1) return pd_fail(err, "KID: feature dimension %d", d);
    if (q.subsets < 1) return pd_fail(err, "KID: %d subsets (need at least 1)", q.subsets);
    if (q.subset_size < 2) return pd_fail(err, "KID: subset size %d (need at least 2)", q.subset_size);
    int m = q.subset_size;
    if (m > n1) m = n1;
    if (m > n2) m = n2;
    if (m < 2) return pd_fail(err, "KID: needs at least 2 vectors in each set (got %d and %d)", n1, n2);
    int nmax = n1 > n2 ? n1 : n2;
    int *idx = malloc(sizeof(int) * (size_t)nmax);
    double *a = malloc(sizeof(double) * (size_t)m * d), *b = malloc(sizeof(double) * (size_t)m * d);
    double *g = malloc(sizeof(double) * (size_t)m * m);
    double *vals = malloc(sizeof(double) * (size_t)q.subsets);
    if (!idx || !a || !b || !g || !vals) {
        free(idx), free(a), free(b), free(g), free(vals);
        return pd_fail(err, "KID: out of memory for subsets of %d x %d", m, d);
    }
    const double inv_d = 1.0 / d;
    for (int s = 0; s < q.subsets; s++) {
        mt_kid_subset(idx, n1, m, q.seed, s, 0);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d; j++) a[(size_t)i * d + j] = f1[(size_t)idx[i] * d + j];
        mt_kid_subset(idx, n2, m, q.seed, s, 1);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < d; j++) b[(size_t)i * d + j] = f2[(size_t)idx[i] * d + j];
        double saa = 0, sbb = 0, sab = 0;
        /* Off-diagonal sums of the symmetric Grams: the upper triangle, twice. */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, d, 1.0, a, d, 0.0, g, m);
        for (int i = 0; i < m; i++)
            for (int j = i + 1; j < m; j++) saa += cube_kernel(g[(size_t)i * m + j], inv_d);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, d, 1.0, b, d, 0.0, g, m);
        for (int i = 0; i < m; i++)
            for (int j = i + 1; j < m; j++) sbb += cube_kernel(g[(size_t)i * m + j], inv_d);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, m, d, 1.0, a, d, b, d, 0.0, g, m);
        for (size_t k = 0; k < (size_t)m * m; k++) sab += cube_kernel(g[k], inv_d);
        vals[s] = 2.0 * (saa + sbb) / ((double)m * (m - 1)) - 2.0 * sab / ((double)m * m);
    }
    double mean = 0, var = 0;
    for (int s = 0; s < q.subsets; s++) mean += vals[s];
    mean /= q.subsets;
    for (int s = 0; s < q.subsets; s++) var += (vals[s] - mean) * (vals[s] - mean);
    double sd = q.subsets > 1 ? sqrt(var / (q.subsets - 1)) : 0.0;
    free(idx), free(a), free(b), free(g), free(vals);
    if (!isfinite(mean)) return pd_fail(err, "KID: not finite (features out of range?)");
    res->kid = mean;
    res->std = sd;
    res->se = sd / sqrt((double)q.subsets);
    res->subsets = q.subsets;
    res->subset_size = m;
    return 0;
}
