/* fd.c — feature statistics and the Fréchet distance (pd_feature_stats_*, pd_fd_gaussian,
 * pd_fd).
 *
 * Means and covariances are accumulated in double in a fixed order (samples in index order;
 * rows of the covariance split over OpenMP threads, each entry summed by one thread), so the
 * statistics do not depend on the thread count. The FD is the symmetric form
 *   FD = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr sqrt( sqrt(S1) S2 sqrt(S1) ),
 * equal to the usual tr sqrt(S1 S2) because S1 S2 and sqrt(S1) S2 sqrt(S1) are similar. Both
 * square roots come from LAPACK's dsyevd (symmetric eigendecomposition, double) in the OpenBLAS
 * library already linked: sqrt(S1) = V diag(sqrt w) V^T, and tr sqrt(M) = sum sqrt(lambda(M)).
 * Covariances are positive semi-definite, so negative eigenvalues can only come from rounding
 * (about 1e-16 of the largest); they are clamped to 0. For the same reason an FD of two
 * identical sets may come out as -1e-13: the result is clamped at 0 as well. LAPACK and BLAS run
 * on one thread here, so the FD does not depend on the thread count.
 */
#include "metrics/metrics.h"

#include <cblas.h>
#include <lapack.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void pd_feature_stats_free(pd_feature_stats *s) {
    if (!s) return;
    free(s->mu);
    free(s->sigma);
    memset(s, 0, sizeof *s);
}

int pd_feature_stats_compute(pd_feature_stats *s, const float *f, int n, int d, pd_error *err) {
    memset(s, 0, sizeof *s);
    if (n < 2 || d < 1) return pd_fail(err, "feature statistics: need n >= 2 and dim >= 1 (got n %d, dim %d)", n, d);
    double *mu = calloc((size_t)d, sizeof(double));
    double *sg = calloc((size_t)d * d, sizeof(double));
    /* Centred features, transposed [d, n], so each covariance entry is one contiguous dot. */
    double *xt = malloc(sizeof(double) * (size_t)d * n);
    if (!mu || !sg || !xt) {
        free(mu), free(sg), free(xt);
        return pd_fail(err, "feature statistics: out of memory for %d x %d features", n, d);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) {
            double v = f[(size_t)i * d + j];
            if (!isfinite(v)) {
                free(mu), free(sg), free(xt);
                return pd_fail(err, "feature statistics: feature %d of vector %d is not finite", j, i);
            }
            mu[j] += v;
        }
    for (int j = 0; j < d; j++) mu[j] /= n;
    #pragma omp parallel for schedule(static)
    for (int j = 0; j < d; j++)
        for (int i = 0; i < n; i++) xt[(size_t)j * n + i] = f[(size_t)i * d + j] - mu[j];
    #pragma omp parallel for schedule(dynamic, 4)
    for (int a = 0; a < d; a++) {
        const double *xa = xt + (size_t)a * n;
        for (int b = 0; b <= a; b++) {
            const double *xb = xt + (size_t)b * n;
            double acc = 0;
            for (int i = 0; i < n; i++) acc += xa[i] * xb[i];
            sg[(size_t)a * d + b] = sg[(size_t)b * d + a] = acc / (n - 1);
        }
    }
    free(xt);
    s->dim = d;
    s->n = n;
    s->mu = mu;
    s->sigma = sg;
    return 0;
}

/* Eigenvalues (ascending) and, with vectors = 1, eigenvectors (column-major, in a) of the
 * symmetric d x d matrix a, which dsyevd overwrites. */
static int sym_eig(double *a, double *w, int d, int vectors, pd_error *err) {
    lapack_int n = d, lda = d, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double wq = 0;
    const char jobz = vectors ? 'V' : 'N', uplo = 'U';
    LAPACK_dsyevd(&jobz, &uplo, &n, a, &lda, w, &wq, &lwork, &iwq, &liwork, &info);
    if (info != 0) return pd_fail(err, "FD: dsyevd workspace query failed (info %d)", (int)info);
    lwork = (lapack_int)wq;
    liwork = iwq;
    double *work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
    lapack_int *iwork = malloc(sizeof(lapack_int) * (size_t)(liwork > 1 ? liwork : 1));
    if (!work || !iwork) {
        free(work), free(iwork);
        return pd_fail(err, "FD: out of memory for the eigendecomposition of a %d x %d matrix", d, d);
    }
    LAPACK_dsyevd(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info);
    free(work);
    free(iwork);
    if (info != 0)
        return pd_fail(err, "FD: dsyevd did not converge on a %d x %d matrix (info %d)", d, d, (int)info);
    return 0;
}

static int fd_gaussian(const double *mu1, const double *s1, const double *mu2, const double *s2,
                       int d, double *fd, pd_error *err) {
    if (d < 1) return pd_fail(err, "FD: dimension %d", d);
    size_t dd = (size_t)d * d;
    double *v = malloc(sizeof(double) * dd), *b = malloc(sizeof(double) * dd),
           *r = malloc(sizeof(double) * dd), *m = malloc(sizeof(double) * dd),
           *w = malloc(sizeof(double) * (size_t)d);
    int rc = -1;
    if (!v || !b || !r || !m || !w) {
        pd_fail(err, "FD: out of memory for %d x %d matrices", d, d);
        goto done;
    }
    for (size_t k = 0; k < dd; k++)
        if (!isfinite(s1[k]) || !isfinite(s2[k])) {
            pd_fail(err, "FD: covariance entry %zu is not finite", k);
            goto done;
        }
    /* sqrt(S1) = V diag(sqrt(max(w, 0))) V^T; V column-major from dsyevd. */
    memcpy(v, s1, sizeof(double) * dd);
    if (sym_eig(v, w, d, 1, err)) goto done;
    for (int k = 0; k < d; k++) {
        double sk = w[k] > 0 ? sqrt(w[k]) : 0.0;   /* clamp rounding negatives */
        for (int i = 0; i < d; i++) b[(size_t)k * d + i] = v[(size_t)k * d + i] * sk;
    }
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, d, d, d, 1.0, b, d, v, d, 0.0, r, d);
    /* M = sqrt(S1) S2 sqrt(S1), symmetrised against rounding before dsyevd reads its upper half. */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, r, d, s2, d, 0.0, b, d);
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, b, d, r, d, 0.0, m, d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++) {
            double a = 0.5 * (m[(size_t)i * d + j] + m[(size_t)j * d + i]);
            m[(size_t)i * d + j] = m[(size_t)j * d + i] = a;
        }
    if (sym_eig(m, w, d, 0, err)) goto done;
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, dmu = 0;
    for (int k = 0; k < d; k++) tr_sqrt += w[k] > 0 ? sqrt(w[k]) : 0.0;
    for (int k = 0; k < d; k++) {
        tr1 += s1[(size_t)k * d + k];
        tr2 += s2[(size_t)k * d + k];
        dmu += (mu1[k] - mu2[k]) * (mu1[k] - mu2[k]);
    }
    double v_fd = dmu + tr1 + tr2 - 2.0 * tr_sqrt;
    *fd = v_fd > 0 ? v_fd : 0.0;
    rc = 0;
done:
    free(v), free(b), free(r), free(m), free(w);
    return rc;
}

/* LAPACK's reductions (dsytrd inside dsyevd) and BLAS split their work by the thread count,
 * which moves the last bits of the FD; one BLAS thread makes the FD a function of its inputs
 * alone. The matrices are F x F (128 here), so this costs milliseconds. The thread count is
 * restored afterwards (in the OpenMP build of OpenBLAS this also sets OpenMP's, which
 * pd_set_threads keeps equal anyway). */
int pd_fd_gaussian(const double *mu1, const double *s1, const double *mu2, const double *s2,
                   int d, double *fd, pd_error *err) {
    int nt = openblas_get_num_threads();
    openblas_set_num_threads(1);
    int rc = fd_gaussian(mu1, s1, mu2, s2, d, fd, err);
    openblas_set_num_threads(nt);
    return rc;
}

int pd_fd(const float *f1, int n1, const float *f2, int n2, int d, double *fd, pd_error *err) {
    pd_feature_stats a, b;
    if (pd_feature_stats_compute(&a, f1, n1, d, err)) return -1;
    if (pd_feature_stats_compute(&b, f2, n2, d, err)) {
        pd_feature_stats_free(&a);
        return -1;
    }
    int rc = pd_fd_gaussian(a.mu, a.sigma, b.mu, b.sigma, d, fd, err);
    pd_feature_stats_free(&a);
    pd_feature_stats_free(&b);
    return rc;
}
