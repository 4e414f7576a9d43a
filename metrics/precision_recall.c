/* precision_recall.c — improved precision and recall (Kynkäänniemi et al. 2019, "Improved
 * Precision and Recall Metric for Assessing Generative Models", Sec. 2, Eqs. 1-2) of a generated
 * feature set against a real one (pd_precision_recall).
 *
 * Each set's manifold is the union of balls around its points whose radius is the distance to
 * the point's k-th nearest neighbour in the same set (the point itself not counted; the paper
 * uses k = 3). precision = the fraction of generated points inside the real manifold, recall =
 * the fraction of real points inside the generated one; a point on a ball's boundary is inside
 * (f(phi, Phi) = 1 iff ||phi - phi'|| <= NN_k(phi') for some phi' in Phi, Eq. 1).
 *
 * Distances are squared Euclidean distances of the float features accumulated in double, each
 * over the dimensions in a fixed order (4 interleaved partial sums, added in a fixed order), and
 * every comparison uses exactly these numbers, so the result is a pure function of the inputs:
 * it does not depend on the thread count (OpenMP splits rows; each row is one thread's) or on
 * the order of evaluation. The whole computation is O((n_real + n_fake)^2 dim) without an n^2
 * matrix in memory: the radii keep only the k smallest distances of a row; the membership tests
 * stop at the first ball that holds the point.
 */
#include "metrics/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Squared distance of a and b (dim floats) in double, in a fixed order. */
static double dist2(const float *a, const float *b, int dim) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
    for (; j + 4 <= dim; j += 4) {
        double d0 = (double)a[j] - b[j], d1 = (double)a[j + 1] - b[j + 1];
        double d2 = (double)a[j + 2] - b[j + 2], d3 = (double)a[j + 3] - b[j + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; j < dim; j++) {
        double d = (double)a[j] - b[j];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

int mt_knn_radii2(double *r2, const float *x, int n, int dim, int k, pd_error *err) {
    if (k < 1 || k >= n)
        return pd_fail(err, "k-NN radii: k = %d needs at least k + 1 = %d points (got %d)", k,
                       k + 1, n);
    double *best = malloc(sizeof(double) * (size_t)n * k);
    if (!best) return pd_fail(err, "k-NN radii: out of memory for %d x %d distances", n, k);
    #pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < n; i++) {
        /* The k smallest distances to the other points, ascending (insertion). */
        double *b = best + (size_t)i * k;
        for (int q = 0; q < k; q++) b[q] = INFINITY;
        const float *xi = x + (size_t)i * dim;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double d = dist2(xi, x + (size_t)j * dim, dim);
            if (d >= b[k - 1]) continue;
            int q = k - 1;
            while (q > 0 && b[q - 1] > d) {
                b[q] = b[q - 1];
                q--;
            }
            b[q] = d;
        }
        r2[i] = b[k - 1];
    }
    free(best);
    return 0;
}

double mt_manifold_coverage(const float *q, int nq, const float *p, const double *r2, int np,
                            int dim) {
    long long inside = 0;
    #pragma omp parallel for schedule(dynamic, 16) reduction(+ : inside)
    for (int i = 0; i < nq; i++) {
        const float *qi = q + (size_t)i * dim;
        for (int j = 0; j < np; j++)
            if (dist2(qi, p + (size_t)j * dim, dim) <= r2[j]) {
                inside++;
                break;
            }
    }
    return nq > 0 ? (double)inside / nq : NAN;
}

int pd_precision_recall(const float *real, int n_real, const float *fake, int n_fake, int dim,
                        int k, double *precision, double *recall, pd_error *err) {
    *precision = *recall = NAN;
    if (dim < 1) return pd_fail(err, "precision/recall: feature dimension %d", dim);
    if (k < 1) return pd_fail(err, "precision/recall: k = %d (need k >= 1)", k);
    if (n_real <= k || n_fake <= k)
        return pd_fail(err, "precision/recall: k = %d needs more than %d vectors in each set (got "
                       "%d real, %d generated)", k, k, n_real, n_fake);
    for (size_t t = 0; t < (size_t)n_real * dim; t++)
        if (!isfinite(real[t])) return pd_fail(err, "precision/recall: a non-finite real feature");
    for (size_t t = 0; t < (size_t)n_fake * dim; t++)
        if (!isfinite(fake[t]))
            return pd_fail(err, "precision/recall: a non-finite generated feature");
    double *rr = malloc(sizeof(double) * (size_t)n_real), *rf = malloc(sizeof(double) * (size_t)n_fake);
    int rc = -1;
    if (!rr || !rf) {
        pd_fail(err, "precision/recall: out of memory");
        goto done;
    }
    if (mt_knn_radii2(rr, real, n_real, dim, k, err) || mt_knn_radii2(rf, fake, n_fake, dim, k, err))
        goto done;
    *precision = mt_manifold_coverage(fake, n_fake, real, rr, n_real, dim);
    *recall = mt_manifold_coverage(real, n_real, fake, rf, n_fake, dim);
    rc = 0;
done:
    free(rr);
    free(rf);
    return rc;
}
