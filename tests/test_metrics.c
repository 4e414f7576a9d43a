/* test_metrics.c — the metrics room (metrics/): FD, KID, accuracy, trajectory error, spectra,
 * pooling, the reference-statistics cache and the evaluator, and the SNR analysis.
 *
 * Checks, with their tolerances:
 *   - FD against a naive double twin written here (mean/covariance loops, matrix square roots by
 *     cyclic Jacobi eigendecomposition): relative error <= 1e-9; against the closed-form FD of the
 *     true Gaussians from 200000 samples each (d = 6): relative error <= 3%; diagonal
 *     (commuting) covariances against sum (sqrt a - sqrt b)^2 <= 1e-12; FD(x, x) <= 1e-10 tr S;
 *     statistics and FD (d = 64) bit-identical on 1 and 2 threads;
 *   - KID against a naive O(n^2) double unbiased MMD^2 with the cubic kernel, on full sets
 *     (every subset is a permutation) and on subsets reproduced with mt_kid_subset: relative
 *     error <= 1e-9; subset draws are without replacement and uniform (chi-square); two samples
 *     of one distribution give |KID| < 4 SE, shifted sets KID > 10 SE; the same seed gives the
 *     same KID, on 1 or 2 threads;
 *   - accuracy, RMSE and PSNR on hand-computed cases;
 *   - spectra against a naive O(N^4) double DFT with its own binning (<= 1e-5 relative); a
 *     cosine puts all its power in its radial bin (others < 1e-9 of it); white noise is flat
 *     (every bin within 15% of 1, the mean within 3%); batch sums equal one call bit for bit;
 *   - average pooling against a naive loop; nearest upsampling then pooling is the identity;
 *   - the reference cache: computed, then loaded, then recomputed when the data, the classifier
 *     or the file changes (the log names the reason); an unwritable cache still evaluates;
 *     default path from XDG_CACHE_HOME / HOME; the evaluator on the reference images themselves
 *     gives FD ~ 0, spectral error ~ 0, precision = recall = 1 (fewer images: a drawn reference
 *     subset, the same on a fresh evaluator) and the reference accuracy, the same at 64 px (pooled) and
 *     in batches;
 *   - SNR: white noise has p^2 P_p(k) ~ 1 at every pooling; pooling a nearest-upsampled set
 *     gives the native spectrum bit for bit; the CSV has the documented rows and values.
 */
#include "pixdiff.h"
#include "testutil.h"
#include "core/rng.h"
#include "metrics/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------ naive double twins */

/* Cyclic Jacobi eigendecomposition of the symmetric d x d matrix a (destroyed): eigenvalues in
 * w, eigenvectors in the columns of v (row-major v[i*d + k] = component i of vector k). */
static void jacobi_eig(double *a, double *w, double *v, int d) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) v[i * d + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, tot = 0;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                tot += a[i * d + j] * a[i * d + j];
                if (i != j) off += a[i * d + j] * a[i * d + j];
            }
        if (off <= 1e-30 * tot) break;
        for (int p = 0; p < d; p++)
            for (int q = p + 1; q < d; q++) {
                double apq = a[p * d + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < d; k++) { /* A <- A J (columns p, q) */
                    double akp = a[k * d + p], akq = a[k * d + q];
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for (int k = 0; k < d; k++) { /* A <- J^T A (rows p, q) */
                    double apk = a[p * d + k], aqk = a[q * d + k];
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for (int k = 0; k < d; k++) {
                    double vkp = v[k * d + p], vkq = v[k * d + q];
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < d; i++) w[i] = a[i * d + i];
}

/* out = sqrt(s) for symmetric PSD s (negative eigenvalues clamped), by Jacobi. */
static void naive_sqrtm(double *out, const double *s, int d) {
    double *a = malloc(sizeof(double) * d * d), *v = malloc(sizeof(double) * d * d),
           *w = malloc(sizeof(double) * d);
    memcpy(a, s, sizeof(double) * d * d);
    jacobi_eig(a, w, v, d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double acc = 0;
            for (int k = 0; k < d; k++) acc += v[i * d + k] * (w[k] > 0 ? sqrt(w[k]) : 0) * v[j * d + k];
            out[i * d + j] = acc;
        }
    free(a), free(v), free(w);
}

static void naive_matmul(double *c, const double *a, const double *b, int d) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double acc = 0;
            for (int k = 0; k < d; k++) acc += a[i * d + k] * b[k * d + j];
            c[i * d + j] = acc;
        }
}

static double naive_fd_gauss(const double *mu1, const double *s1, const double *mu2,
                             const double *s2, int d) {
    double *r = malloc(sizeof(double) * d * d), *t = malloc(sizeof(double) * d * d),
           *m = malloc(sizeof(double) * d * d), *q = malloc(sizeof(double) * d * d);
    naive_sqrtm(r, s1, d);
    naive_matmul(t, r, s2, d);
    naive_matmul(m, t, r, d);
    naive_sqrtm(q, m, d);
    double fd = 0;
    for (int i = 0; i < d; i++)
        fd += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + s1[i * d + i] + s2[i * d + i] - 2 * q[i * d + i];
    free(r), free(t), free(m), free(q);
    return fd;
}

static void naive_stats(const float *f, int n, int d, double *mu, double *s) {
    for (int j = 0; j < d; j++) {
        mu[j] = 0;
        for (int i = 0; i < n; i++) mu[j] += f[(size_t)i * d + j];
        mu[j] /= n;
    }
    for (int a = 0; a < d; a++)
        for (int b = 0; b < d; b++) {
            double acc = 0;
            for (int i = 0; i < n; i++)
                acc += (f[(size_t)i * d + a] - mu[a]) * (f[(size_t)i * d + b] - mu[b]);
            s[a * d + b] = acc / (n - 1);
        }
}

static double naive_fd(const float *f1, int n1, const float *f2, int n2, int d) {
    double *m1 = malloc(sizeof(double) * d), *m2 = malloc(sizeof(double) * d),
           *s1 = malloc(sizeof(double) * d * d), *s2 = malloc(sizeof(double) * d * d);
    naive_stats(f1, n1, d, m1, s1);
    naive_stats(f2, n2, d, m2, s2);
    double fd = naive_fd_gauss(m1, s1, m2, s2, d);
    free(m1), free(m2), free(s1), free(s2);
    return fd;
}

/* Correlated Gaussian features: f = mu + A z, z standard normal (Philox seed). */
static void gauss_features(float *f, int n, int d, const double *mu, const double *A, uint64_t seed) {
    double *z = malloc(sizeof(double) * (size_t)n * d);
    rng_randn_double(z, (size_t)n * d, seed, 0);
    for (int i = 0; i < n; i++)
        for (int a = 0; a < d; a++) {
            double acc = mu[a];
            for (int b = 0; b < d; b++) acc += A[a * d + b] * z[(size_t)i * d + b];
            f[(size_t)i * d + a] = (float)acc;
        }
    free(z);
}

static double relerr(double got, double want) { return fabs(got - want) / fmax(fabs(want), 1e-300); }

static void test_fd(void) {
    /* Naive twin on correlated features. */
    const int d = 16, n1 = 300, n2 = 400;
    double mu1[16], mu2[16], A1[256], A2[256];
    tu_fill_d(mu1, d, 1, 1.0);
    tu_fill_d(mu2, d, 2, 1.0);
    tu_fill_d(A1, d * d, 3, 0.5);
    tu_fill_d(A2, d * d, 4, 0.7);
    float *f1 = malloc(sizeof(float) * n1 * d), *f2 = malloc(sizeof(float) * n2 * d);
    gauss_features(f1, n1, d, mu1, A1, 10);
    gauss_features(f2, n2, d, mu2, A2, 11);
    double fd = -1, ref = naive_fd(f1, n1, f2, n2, d);
    pd_error err = {{0}};
    int rc = pd_fd(f1, n1, f2, n2, d, &fd, &err);
    tu_check(rc == 0 && relerr(fd, ref) <= 1e-9, "FD vs naive Jacobi twin (d 16, n 300/400): %.12g vs "
             "%.12g, rel err %.2e (tol 1e-9) %s", fd, ref, relerr(fd, ref), err.msg);

    /* FD(x, x) = 0. */
    pd_feature_stats s;
    pd_feature_stats_compute(&s, f1, n1, d, &err);
    double tr = 0;
    for (int i = 0; i < d; i++) tr += s.sigma[i * d + i];
    double fd0 = -1;
    rc = pd_fd(f1, n1, f1, n1, d, &fd0, &err);
    tu_check(rc == 0 && fd0 >= 0 && fd0 <= 1e-10 * tr, "FD(x, x) = %.3e (tol 1e-10 tr S = %.2e)", fd0, 1e-10 * tr);

    /* Stats on 1 and 2 threads: bit for bit. */
    int t0 = pd_get_threads();
    pd_set_threads(1);
    pd_feature_stats s1;
    pd_feature_stats_compute(&s1, f2, n2, d, &err);
    pd_set_threads(2);
    pd_feature_stats s2;
    pd_feature_stats_compute(&s2, f2, n2, d, &err);
    pd_set_threads(t0);
    tu_check(!memcmp(s1.mu, s2.mu, sizeof(double) * d) && !memcmp(s1.sigma, s2.sigma, sizeof(double) * d * d),
             "feature statistics bit-identical on 1 and 2 threads");
    /* FD on 1 and 2 threads: bit for bit (d = 64, where LAPACK's blocking matters). */
    {
        const int e = 64, m = 500;
        float *g1 = malloc(sizeof(float) * m * e), *g2 = malloc(sizeof(float) * m * e);
        tu_fill(g1, (size_t)m * e, 91, 1.0f);
        tu_fill(g2, (size_t)m * e, 92, 1.0f);
        for (int i = 0; i < m * e; i++) g2[i] = g2[i] * (1 + 0.01f * (i % e)) + 0.1f * g1[i];
        double fa = -1, fb = -2;
        pd_set_threads(1);
        rc = pd_fd(g1, m, g2, m, e, &fa, &err);
        pd_set_threads(2);
        rc |= pd_fd(g1, m, g2, m, e, &fb, &err);
        pd_set_threads(t0);
        double fn = naive_fd(g1, m, g2, m, e);
        tu_check(rc == 0 && fa == fb && relerr(fa, fn) <= 1e-9,
                 "FD (d 64) on 1 thread == on 2 threads (%.17g vs %.17g); vs naive %.2e (tol 1e-9)", fa,
                 fb, relerr(fa, fn));
        free(g1), free(g2);
    }
    pd_feature_stats_free(&s);
    pd_feature_stats_free(&s1);
    pd_feature_stats_free(&s2);
    free(f1), free(f2);

    /* Diagonal covariances commute: FD = |dmu|^2 + sum (sqrt a - sqrt b)^2 exactly. */
    {
        const int e = 5;
        double m1[5] = {0, 1, 2, 3, 4}, m2[5] = {1, 1, 0, 3, 5}, a[25] = {0}, b[25] = {0}, want = 0;
        for (int i = 0; i < e; i++) {
            a[i * e + i] = 0.5 + i;
            b[i * e + i] = 2.0 / (1 + i);
            want += (m1[i] - m2[i]) * (m1[i] - m2[i]) +
                    (sqrt(a[i * e + i]) - sqrt(b[i * e + i])) * (sqrt(a[i * e + i]) - sqrt(b[i * e + i]));
        }
        double got = -1;
        rc = pd_fd_gaussian(m1, a, m2, b, e, &got, &err);
        tu_check(rc == 0 && relerr(got, want) <= 1e-12, "FD of diagonal Gaussians %.15g vs closed form "
                 "%.15g (tol 1e-12)", got, want);
    }

    /* Samples of two known Gaussians vs the FD of the true Gaussians (large n). */
    {
        const int e = 6, n = 200000;
        double m1[6], m2[6], B1[36], B2[36], S1[36], S2[36];
        tu_fill_d(m1, e, 21, 1.0);
        tu_fill_d(m2, e, 22, 1.0);
        tu_fill_d(B1, e * e, 23, 0.8);
        tu_fill_d(B2, e * e, 24, 0.8);
        for (int i = 0; i < e; i++)
            for (int j = 0; j < e; j++) {
                S1[i * e + j] = S2[i * e + j] = 0;
                for (int k = 0; k < e; k++) {
                    S1[i * e + j] += B1[i * e + k] * B1[j * e + k];
                    S2[i * e + j] += B2[i * e + k] * B2[j * e + k];
                }
            }
        double truth = naive_fd_gauss(m1, S1, m2, S2, e);
        float *g1 = malloc(sizeof(float) * n * e), *g2 = malloc(sizeof(float) * n * e);
        gauss_features(g1, n, e, m1, B1, 31);
        gauss_features(g2, n, e, m2, B2, 32);
        double got = -1;
        rc = pd_fd(g1, n, g2, n, e, &got, &err);
        tu_check(rc == 0 && relerr(got, truth) <= 0.03, "FD of 2 x %d samples %.5f vs the true "
                 "Gaussians' %.5f: rel err %.2e (tol 3e-2)", n, got, truth, relerr(got, truth));
        free(g1), free(g2);
    }
    /* Errors: too few vectors, non-finite features. */
    float bad[4] = {0, 1, NAN, 2};
    rc = pd_fd(bad, 2, bad, 2, 2, &fd, &err);
    tu_check(rc == -1 && strstr(err.msg, "not finite"), "non-finite feature fails: %s", err.msg);
    rc = pd_fd(bad, 1, bad, 2, 2, &fd, &err);
    tu_check(rc == -1 && strstr(err.msg, "n >= 2"), "one vector fails: %s", err.msg);
}

/* ------------------------------------------------------------------ KID */

static double kern(const float *x, const float *y, int d) {
    double dot = 0;
    for (int k = 0; k < d; k++) dot += (double)x[k] * y[k];
    double v = dot / d + 1;
    return v * v * v;
}

/* The unbiased MMD^2 of the m rows ia of f1 and ib of f2. */
static double naive_mmd(const float *f1, const int *ia, const float *f2, const int *ib, int m, int d) {
    double xx = 0, yy = 0, xy = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            if (i != j) {
                xx += kern(f1 + (size_t)ia[i] * d, f1 + (size_t)ia[j] * d, d);
                yy += kern(f2 + (size_t)ib[i] * d, f2 + (size_t)ib[j] * d, d);
            }
            xy += kern(f1 + (size_t)ia[i] * d, f2 + (size_t)ib[j] * d, d);
        }
    return xx / ((double)m * (m - 1)) + yy / ((double)m * (m - 1)) - 2 * xy / ((double)m * m);
}

static void test_kid(void) {
    const int d = 12, n = 60;
    float *a = malloc(sizeof(float) * 800 * d), *b = malloc(sizeof(float) * 800 * d);
    tu_fill(a, (size_t)800 * d, 51, 1.0f);
    tu_fill(b, (size_t)800 * d, 52, 1.0f);
    for (size_t k = 0; k < (size_t)800 * d; k++) b[k] = 0.8f * b[k] + 0.2f;
    pd_error err = {{0}};
    int ident[800];
    for (int i = 0; i < 800; i++) ident[i] = i;

    /* Full sets: every subset is a permutation, and MMD^2 does not see the order. */
    double ref = naive_mmd(a, ident, b, ident, n, d);
    pd_kid_params p = {3, n, 7};
    pd_kid_result r;
    int rc = pd_kid(a, n, b, n, d, &p, &r, &err);
    tu_check(rc == 0 && relerr(r.kid, ref) <= 1e-9 && r.std <= 1e-9 * fabs(ref) && r.subset_size == n,
             "KID of full sets vs naive MMD^2: %.12g vs %.12g (rel err %.2e, tol 1e-9), std %.2e",
             r.kid, ref, relerr(r.kid, ref), r.std);

    /* Subsets of 50 from 300 and 250: the naive twin on the same draws. */
    p = (pd_kid_params){5, 50, 99};
    rc = pd_kid(a, 300, b, 250, d, &p, &r, &err);
    double mean = 0, var = 0, v[5];
    int ia[300], ib[300];
    for (int s = 0; s < 5; s++) {
        mt_kid_subset(ia, 300, 50, 99, s, 0);
        mt_kid_subset(ib, 250, 50, 99, s, 1);
        v[s] = naive_mmd(a, ia, b, ib, 50, d);
        mean += v[s] / 5;
    }
    for (int s = 0; s < 5; s++) var += (v[s] - mean) * (v[s] - mean) / 4;
    tu_check(rc == 0 && relerr(r.kid, mean) <= 1e-9 && relerr(r.std, sqrt(var)) <= 1e-6 &&
                 relerr(r.se, sqrt(var / 5)) <= 1e-6,
             "KID of 5 subsets of 50 vs naive: %.12g vs %.12g (rel err %.2e, tol 1e-9), std %.4g vs %.4g",
             r.kid, mean, relerr(r.kid, mean), r.std, sqrt(var));

    /* The draws: without replacement, in range, uniform (chi-square over 2000 draws of 10 from 40). */
    {
        int idx[40], hist[40] = {0}, ok = 1;
        for (int s = 0; s < 2000; s++) {
            mt_kid_subset(idx, 40, 10, 5, s, s & 1);
            int seen[40] = {0};
            for (int i = 0; i < 10; i++) {
                ok &= idx[i] >= 0 && idx[i] < 40 && !seen[idx[i]];
                seen[idx[i]] = 1;
                hist[idx[i]]++;
            }
        }
        double chi = 0, e = 2000.0 * 10 / 40;
        for (int i = 0; i < 40; i++) chi += (hist[i] - e) * (hist[i] - e) / e;
        /* 39 degrees of freedom: P(chi2 > 80) ~ 1e-4. */
        tu_check(ok && chi < 80, "subset draws distinct and in range; chi-square %.1f over 39 dof (< 80)", chi);
    }

    /* Two samples of one distribution ~ 0 within the SE; shifted sets clearly > 0; reproducible.
     * (Subsets of the very same set overlap, and a shared vector adds k(x, x) to the cross term:
     * KID(x, x) is slightly negative, so the check uses an independent second sample. The subset
     * means are correlated, so 16 subsets of 200 from 800 keep 4 SE above the full-sample spread.) */
    p = (pd_kid_params){16, 200, 3};
    pd_kid_result same, shifted, again;
    float *a2 = malloc(sizeof(float) * 800 * d);
    tu_fill(a2, (size_t)800 * d, 53, 1.0f);
    rc = pd_kid(a, 800, a2, 800, d, &p, &same, &err);
    free(a2);
    float *c = malloc(sizeof(float) * 800 * d);
    for (size_t k = 0; k < (size_t)800 * d; k++) c[k] = a[k] + 0.5f;
    rc |= pd_kid(a, 800, c, 800, d, &p, &shifted, &err);
    rc |= pd_kid(a, 800, c, 800, d, &p, &again, &err);
    tu_check(rc == 0 && fabs(same.kid) < 4 * same.se, "KID(x, x') = %.3e +- %.3e for two samples of one distribution (|KID| < 4 SE)", same.kid, same.se);
    tu_check(shifted.kid > 0 && shifted.kid > 10 * shifted.se, "KID(x, x + 0.5) = %.4g +- %.2g (> 10 SE)",
             shifted.kid, shifted.se);
    tu_check(!memcmp(&shifted, &again, sizeof again), "KID with the same seed: the same result");
    int t0 = pd_get_threads();
    pd_set_threads(1);
    rc = pd_kid(a, 800, c, 800, d, &p, &again, &err);
    pd_set_threads(t0);
    tu_check(rc == 0 && again.kid == shifted.kid, "KID on 1 thread == on %d threads (%.17g vs %.17g)", t0,
             again.kid, shifted.kid);
    p.subset_size = 1;
    rc = pd_kid(a, 800, c, 800, d, &p, &again, &err);
    tu_check(rc == -1 && strstr(err.msg, "subset size"), "subset size 1 fails: %s", err.msg);
    free(a), free(b), free(c);
}

/* ------------------------------------------------------------------ accuracy, PSNR */

static void test_pixel(void) {
    float logits[4 * 3] = {1, 2, 3, /**/ 5, 1, 1, /**/ 0, 0, 0, /**/ -1, 4, 2};
    int labels[4] = {2, 0, 0, 2};
    double acc = pd_class_accuracy(logits, labels, 4, 3);
    tu_check(acc == 0.75, "accuracy 3/4 (a tie goes to the first class): %g", acc);
    float x[100], r[100];
    tu_fill(r, 100, 3, 1.0f);
    for (int i = 0; i < 100; i++) x[i] = r[i] + (i % 2 ? 0.1f : -0.1f);
    double rmse, psnr;
    pd_trajectory_error(x, r, 100, &rmse, &psnr);
    tu_check(fabs(rmse - 0.1) < 1e-6 && fabs(psnr - 10 * log10(4 / 0.01)) < 1e-4,
             "RMSE %.7f (0.1), PSNR %.5f dB (%.5f)", rmse, psnr, 10 * log10(4 / 0.01));
    pd_trajectory_error(r, r, 100, &rmse, &psnr);
    tu_check(rmse == 0 && isinf(psnr) && psnr > 0, "identical: RMSE 0, PSNR +inf");

    /* pooling vs a naive loop; nearest upsampling then pooling is the identity */
    const int n = 3, C = 2, H = 8;
    float *img = malloc(sizeof(float) * n * C * H * H), *pool = malloc(sizeof(float) * n * C * 4 * 4);
    double *want = malloc(sizeof(double) * n * C * 4 * 4);
    tu_fill(img, (size_t)n * C * H * H, 8, 1.0f);
    pd_error err = {{0}};
    int rc = pd_avg_pool(pool, img, n, C, H, H, 2, &err);
    for (int p = 0; p < n * C; p++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                double acc = 0;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) acc += img[p * 64 + (2 * i + a) * 8 + 2 * j + b];
                want[p * 16 + i * 4 + j] = acc / 4;
            }
    tu_compare("2x2 average pooling vs naive", pool, want, (size_t)n * C * 16, 1e-6);
    float *up = malloc(sizeof(float) * n * C * 32 * 32), *back = malloc(sizeof(float) * n * C * H * H);
    mt_upsample_nearest(up, img, n, C, H, 4);
    rc |= pd_avg_pool(back, up, n, C, 32, 32, 4, &err);
    tu_check(rc == 0 && !memcmp(back, img, sizeof(float) * n * C * H * H),
             "nearest x4 upsampling then 4x4 pooling returns the images bit for bit");
    rc = pd_avg_pool(pool, img, n, C, H, H, 3, &err);
    tu_check(rc == -1 && strstr(err.msg, "3 x 3"), "pooling 8x8 by 3 fails: %s", err.msg);
    free(img), free(pool), free(want), free(up), free(back);
}

/* ------------------------------------------------------------------ spectra */

/* The naive twin: an O(N^4) double DFT and the binning written out again. */
static void naive_spectrum(const float *x, int n, int N, double *p) {
    int nb = N / 2 + 1;
    double *cnt = calloc(nb, sizeof(double));
    for (int k = 0; k < nb; k++) p[k] = 0;
    for (int i = 0; i < n; i++)
        for (int u = 0; u < N; u++)
            for (int v = 0; v < N; v++) {
                double re = 0, im = 0;
                for (int r = 0; r < N; r++)
                    for (int c = 0; c < N; c++) {
                        double ang = -2 * M_PI * ((double)u * r + (double)v * c) / N;
                        re += x[(size_t)i * N * N + r * N + c] * cos(ang);
                        im += x[(size_t)i * N * N + r * N + c] * sin(ang);
                    }
                int su = u <= N / 2 ? u : u - N, sv = v <= N / 2 ? v : v - N;
                int k = (int)floor(sqrt((double)su * su + (double)sv * sv) + 0.5);
                if (k >= nb) continue;
                p[k] += (re * re + im * im) / ((double)N * N);
                if (i == 0) cnt[k] += 1;
            }
    for (int k = 0; k < nb; k++) p[k] /= cnt[k] * n;
    free(cnt);
}

static void test_spectrum(void) {
    pd_error err = {{0}};
    /* vs the naive DFT on random 16x16 images */
    {
        const int n = 3, N = 16, nb = pd_spectrum_bins(N);
        float x[3 * 256];
        tu_fill(x, 3 * 256, 61, 1.0f);
        for (int k = 0; k < 256; k++) x[256 + k] += 0.3f * (float)cos(2 * M_PI * 2 * (k % 16) / 16.0);
        double want[9];
        double got_d[9];
        naive_spectrum(x, n, N, want);
        int rc = pd_radial_power_spectrum(x, n, 1, N, got_d, &err);
        float got[9];
        for (int k = 0; k < nb; k++) got[k] = (float)got_d[k];
        tu_check(rc == 0 && nb == 9, "16x16: %d bins (0..8)", nb);
        tu_compare("radial power spectrum vs naive double DFT", got, want, nb, 1e-5);
    }
    /* a cosine: all its power in its radial bin; Parseval */
    {
        const int N = 32, nb = pd_spectrum_bins(N);
        float *x = malloc(sizeof(float) * N * N);
        for (int r = 0; r < N; r++)
            for (int c = 0; c < N; c++) x[r * N + c] = (float)cos(2 * M_PI * 3 * c / N);
        double p[17];
        int rc = pd_radial_power_spectrum(x, 1, 1, N, p, &err);
        double other = 0;
        for (int k = 0; k < nb; k++)
            if (k != 3) other = fmax(other, p[k]);
        tu_check(rc == 0 && p[3] > 0 && other < 1e-9 * p[3],
                 "cos(2 pi 3 x / 32): power %.4g in bin 3, at most %.2e elsewhere", p[3], other);
        for (int r = 0; r < N; r++)
            for (int c = 0; c < N; c++) x[r * N + c] = (float)sin(2 * M_PI * 5 * r / N);
        rc = pd_radial_power_spectrum(x, 1, 1, N, p, &err);
        other = 0;
        for (int k = 0; k < nb; k++)
            if (k != 5) other = fmax(other, p[k]);
        tu_check(rc == 0 && p[5] > 0 && other < 1e-9 * p[5],
                 "sin(2 pi 5 y / 32): power %.4g in bin 5, at most %.2e elsewhere", p[5], other);
        free(x);
    }
    /* white noise: flat at its variance */
    {
        const int n = 256, N = 32, nb = pd_spectrum_bins(N);
        float *x = malloc(sizeof(float) * n * 2 * N * N);
        pd_randn(x, (size_t)n * 2 * N * N, 77, 0);
        double p[17], mean = 0, worst = 0;
        int rc = pd_radial_power_spectrum(x, n, 2, N, p, &err);
        for (int k = 1; k < nb; k++) {
            mean += p[k] / (nb - 1);
            worst = fmax(worst, fabs(p[k] - 1));
        }
        tu_check(rc == 0 && worst < 0.15 && fabs(mean - 1) < 0.03,
                 "white noise (256 x 2 ch): bins 1..16 within %.3f of 1 (tol 0.15), mean %.4f (tol 3%%)",
                 worst, mean);
        /* batch sums == one call */
        double s1[17] = {0}, s2[17] = {0};
        rc = mt_spectrum_accumulate(x, n, 2, N, s1, &err);
        rc |= mt_spectrum_accumulate(x, 100, 2, N, s2, &err);
        rc |= mt_spectrum_accumulate(x + (size_t)100 * 2 * N * N, n - 100, 2, N, s2, &err);
        tu_check(rc == 0 && !memcmp(s1, s2, sizeof s1), "spectrum sums over two batches == one call, bit for bit");
        double e0 = pd_spectral_error(p, p, nb);
        double q[17];
        for (int k = 0; k < nb; k++) q[k] = 10 * p[k];
        double e1 = pd_spectral_error(q, p, nb);
        tu_check(e0 == 0 && fabs(e1 - 1) < 1e-12, "spectral error: 0 for the same spectrum, %.15f for 10x "
                 "the power (1)", e1);
        free(x);
    }
}

/* ------------------------------------------------------------------ reference cache, evaluator */

static int write_idx(const char *path, const uint8_t *data, const int *dims, int ndim) {
    gzFile g = gzopen(path, "wb");
    if (!g) return -1;
    uint8_t hdr[16] = {0, 0, 8, (uint8_t)ndim};
    for (int i = 0; i < ndim; i++) {
        hdr[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        hdr[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        hdr[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        hdr[7 + 4 * i] = (uint8_t)dims[i];
    }
    size_t total = 1;
    for (int i = 0; i < ndim; i++) total *= (size_t)dims[i];
    gzwrite(g, hdr, 4 + 4 * ndim);
    gzwrite(g, data, (unsigned)total);
    return gzclose(g) == Z_OK ? 0 : -1;
}

/* A fake Fashion-MNIST test split of n images in dir. */
static int write_fake_fashion(const char *dir, int n, uint64_t seed, int label_shift) {
    uint8_t *img = malloc((size_t)n * 784), lab[256];
    float *u = malloc(sizeof(float) * (size_t)n * 784);
    rng_randu(u, (size_t)n * 784, seed, 0);
    for (int i = 0; i < n * 784; i++) {
        int r = (i % 784) / 28, c = i % 28;
        double blob = exp(-((r - 14) * (r - 14) + (c - 14) * (c - 14)) / (30.0 + 4 * (i / 784 % 5)));
        img[i] = (uint8_t)fmin(255, 255 * blob * (0.5 + 0.5 * u[i]));
    }
    for (int i = 0; i < n; i++) lab[i] = (uint8_t)((i + label_shift) % 10);
    char p[512];
    int di[3] = {n, 28, 28}, dl[1] = {n};
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    int rc = write_idx(p, img, di, 3);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    rc |= write_idx(p, lab, dl, 1);
    free(img), free(u);
    return rc;
}

static pd_unet_config tiny_clf_cfg(void) {
    pd_unet_config c = pd_unet_config_default();
    snprintf(c.arch, sizeof c.arch, "classifier");
    snprintf(c.kind, sizeof c.kind, "classifier");
    c.img_resolution = 32;
    c.in_channels = 1;
    c.label_dim = c.out_channels = 10;
    c.model_channels = 4;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    c.channel_mult[0] = 1;
    c.channel_mult[1] = 2;
    c.n_levels = 2;
    c.num_blocks = 1;
    c.channel_mult_emb = 2;
    c.n_attn = 0;
    c.augment_dim = 0;
    c.dropout = 0;
    return c;
}

static pd_model *make_clf(const char *path, uint64_t seed) {
    pd_error err = {{0}};
    pd_unet_config c = tiny_clf_cfg();
    pd_model *m = NULL, *l = NULL;
    if (pd_model_create(&m, &c, seed, &err) || pd_model_save(m, path, &err) || pd_model_load(&l, path, &err)) {
        printf("classifier: %s\n", err.msg);
        pd_model_free(m);
        return NULL;
    }
    pd_model_free(m);
    return l;
}

static char logbuf[8192];
static void capture(void *user, const char *line) {
    (void)user;
    size_t len = strlen(logbuf);
    snprintf(logbuf + len, sizeof logbuf - len, "%s\n", line);
}

static int eval_once(pd_model *clf, const char *cache, const char *data, pd_eval **out) {
    pd_eval_options o = pd_eval_default_options();
    o.ref_cache = cache;
    o.data_dir = data;
    o.kid.subsets = 10;
    o.log = capture;
    logbuf[0] = 0;
    pd_error err = {{0}};
    int rc = pd_eval_create(out, clf, &o, &err);
    if (rc) printf("pd_eval_create: %s\n", err.msg);
    return rc;
}

static void test_cache_and_eval(void) {
    char dir[] = "/tmp/pd_test_metricsXXXXXX";
    if (!mkdtemp(dir)) {
        tu_check(0, "mkdtemp");
        return;
    }
    char data[600], clfp[600], cache[600], cmd[1400];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(clfp, sizeof clfp, "%s/clf.safetensors", dir);
    snprintf(cache, sizeof cache, "%s/cache/sub/ref.safetensors", dir);
    mkdir(data, 0755);
    const int n = 48;
    int rc = write_fake_fashion(data, n, 5, 0);
    pd_model *clf = make_clf(clfp, 1);
    tu_check(rc == 0 && clf != NULL, "fake 48-image test split and a tiny classifier (F = %d)",
             clf ? pd_classifier_feature_dim(clf) : -1);
    if (rc || !clf) return;

    pd_eval *ev = NULL;
    rc = eval_once(clf, cache, data, &ev);
    struct stat st;
    tu_check(rc == 0 && strstr(logbuf, "not there yet") && strstr(logbuf, "cached in") && stat(cache, &st) == 0,
             "first use: computed and cached (creating the directories)\n%s", logbuf);
    /* The reference images themselves, in two batches, at 32 px and at 64 px (pooled back). */
    float *x = NULL;
    uint8_t *lab = NULL;
    int nx = 0;
    pd_error err = {{0}};
    rc = pd_fashion_mnist_load(data, 0, &x, &lab, &nx, &err);
    int labels[48];
    for (int i = 0; i < n; i++) labels[i] = lab[i];
    pd_eval_result r1, r2, r3;
    rc |= pd_eval_add(ev, x, 20, 1, 32, labels, &err);
    rc |= pd_eval_add(ev, x + 20 * 1024, n - 20, 1, 32, labels + 20, &err);
    rc |= pd_eval_finish(ev, &r1, &err);
    tu_check(rc == 0 && r1.n == n && r1.fd < 1e-6 && r1.spectral_error < 1e-9 &&
                 r1.accuracy == r1.ref_accuracy && r1.ref_n == n && r1.n_labelled == n,
             "the reference images against themselves: FD %.2e, spectral error %.2e, accuracy %.4f "
             "(reference %.4f), KID %.3e +- %.1e %s", r1.fd, r1.spectral_error, r1.accuracy,
             r1.ref_accuracy, r1.kid.kid, r1.kid.se, err.msg);
    tu_check(rc == 0 && r1.precision == 1.0 && r1.recall == 1.0 && r1.pr_k == 3 && r1.pr_n == n,
             "the reference images against themselves: precision %g, recall %g (k %d, %d of each)",
             r1.precision, r1.recall, r1.pr_k, r1.pr_n);
    /* Fewer images than the reference: a drawn reference subset of the same size; a second finish
     * (the reference radii kept) gives the same numbers as a fresh evaluator's. */
    {
        pd_eval_result a, b, c;
        pd_eval *ev2 = NULL;
        pd_eval_reset(ev);
        int r_ = pd_eval_add(ev, x + 7 * 1024, 20, 1, 32, NULL, &err) || pd_eval_finish(ev, &a, &err) ||
                 pd_eval_finish(ev, &b, &err) || eval_once(clf, cache, data, &ev2) ||
                 pd_eval_add(ev2, x + 7 * 1024, 20, 1, 32, NULL, &err) || pd_eval_finish(ev2, &c, &err);
        tu_check(r_ == 0 && a.pr_n == 20 && a.precision >= 0 && a.precision <= 1 && a.recall >= 0 &&
                     a.recall <= 1 && b.precision == a.precision && b.recall == a.recall &&
                     c.precision == a.precision && c.recall == a.recall,
                 "20 images against a drawn 20 of the reference: precision %g, recall %g; repeated "
                 "and fresh evaluators agree (%s)", a.precision, a.recall, err.msg);
        pd_eval_free(ev2);
        /* More images than the reference: a drawn n of the 2n (each a copy of a reference image,
         * so every one lies on the reference manifold: precision exactly 1). */
        pd_eval_result d;
        pd_eval_reset(ev);
        r_ = pd_eval_add(ev, x, n, 1, 32, NULL, &err) || pd_eval_add(ev, x, n, 1, 32, NULL, &err) ||
             pd_eval_finish(ev, &d, &err);
        tu_check(r_ == 0 && d.n == 2 * n && d.pr_n == n && d.precision == 1.0 && d.recall > 0 &&
                     d.recall <= 1, "%d copies of the %d reference images: a drawn %d of them, "
                 "precision %g, recall %g (%s)", 2 * n, n, d.pr_n, d.precision, d.recall, err.msg);
    }
    pd_eval_reset(ev);
    float *up = malloc(sizeof(float) * n * 64 * 64);
    mt_upsample_nearest(up, x, n, 1, 32, 2);
    rc = pd_eval_add(ev, up, n, 1, 64, labels, &err) || pd_eval_finish(ev, &r2, &err);
    tu_check(rc == 0 && r2.fd == r1.fd && r2.kid.kid == r1.kid.kid && r2.spectral_error == r1.spectral_error &&
                 r2.precision == r1.precision && r2.recall == r1.recall,
             "64-px images pooled to 32: the same FD, KID and spectral error as in 32-px batches");
    rc = pd_eval_add(ev, up, n, 1, 48, labels, &err);
    tu_check(rc == -1 && strstr(err.msg, "multiple of 32"), "48-px images fail: %s", err.msg);
    labels[3] = 10;
    rc = pd_eval_add(ev, x, n, 1, 32, labels, &err);
    labels[3] = lab[3];
    tu_check(rc == -1 && strstr(err.msg, "label 10"), "label out of range fails: %s", err.msg);
    pd_eval_free(ev);

    /* Second use: loaded. Then shifted data (labels), another classifier, a damaged file. */
    rc = eval_once(clf, cache, data, &ev);
    rc |= pd_eval_add(ev, x, n, 1, 32, labels, &err) || pd_eval_finish(ev, &r3, &err);
    tu_check(rc == 0 && !strstr(logbuf, "computing") && r3.fd == r1.fd && r3.kid.kid == r1.kid.kid &&
                 r3.accuracy == r1.accuracy,
             "second use: loaded from the cache, the same FD/KID/accuracy\n%s", logbuf);
    pd_eval_free(ev);
    write_fake_fashion(data, n, 5, 1);
    rc = eval_once(clf, cache, data, &ev);
    tu_check(rc == 0 && strstr(logbuf, "data labels (sha256) changed") && strstr(logbuf, "cached in"),
             "edited labels file: stale, recomputed\n%s", logbuf);
    pd_eval_free(ev);
    rc = eval_once(clf, cache, data, &ev);
    tu_check(rc == 0 && !strstr(logbuf, "computing"), "then loaded again");
    pd_eval_free(ev);
    pd_model_free(clf);
    clf = make_clf(clfp, 2);
    rc = eval_once(clf, cache, data, &ev);
    tu_check(rc == 0 && strstr(logbuf, "classifier (sha256) changed"), "retrained classifier: stale\n%s", logbuf);
    pd_eval_free(ev);
    if (truncate(cache, 100) == 0) {
        rc = eval_once(clf, cache, data, &ev);
        tu_check(rc == 0 && strstr(logbuf, "unreadable") && strstr(logbuf, "cached in"),
                 "truncated cache: unreadable, recomputed\n%s", logbuf);
        pd_eval_free(ev);
    }
    rc = eval_once(clf, "/proc/pd_no_such_dir/ref.safetensors", data, &ev);
    tu_check(rc == 0 && strstr(logbuf, "not cached, using them from memory"),
             "unwritable cache: evaluates from memory\n%s", logbuf);
    pd_eval_free(ev);
    rc = eval_once(clf, cache, "/nonexistent/fmnist", &ev);
    tu_check(rc == -1, "missing data directory fails");

    /* Default cache path. */
    char path[1024], want[1100];
    char *old_xdg = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
    rc = pd_eval_default_cache_path(path, sizeof path, clf, &err);
    snprintf(want, sizeof want, "/tmp/xdg/pixdiff/fashion-mnist-t10k-%.16s.safetensors", pd_model_sha256(clf));
    tu_check(rc == 0 && !strcmp(path, want), "default cache under $XDG_CACHE_HOME: %s", path);
    setenv("XDG_CACHE_HOME", "", 1);
    setenv("HOME", "/tmp/home", 1);
    rc = pd_eval_default_cache_path(path, sizeof path, clf, &err);
    snprintf(want, sizeof want, "/tmp/home/.cache/pixdiff/fashion-mnist-t10k-%.16s.safetensors",
             pd_model_sha256(clf));
    tu_check(rc == 0 && !strcmp(path, want), "default cache under ~/.cache: %s", path);
    if (old_xdg) setenv("XDG_CACHE_HOME", old_xdg, 1); else unsetenv("XDG_CACHE_HOME");
    if (old_home) setenv("HOME", old_home, 1); else unsetenv("HOME");
    free(old_xdg), free(old_home);

    pd_model_free(clf);
    free(x), free(lab), free(up);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
}

/* ------------------------------------------------------------------ SNR */

static void test_snr(void) {
    pd_error err = {{0}};
    const int n = 128, N = 32;
    float *x = malloc(sizeof(float) * n * N * N);
    pd_randn(x, (size_t)n * N * N, 5, 0);
    int pools[3] = {1, 2, 4};
    pd_snr_spectra s;
    int rc = pd_snr_spectra_compute(&s, x, n, 1, N, 0, pools, 3, &err);
    double worst = 0;
    for (int p = 0; rc == 0 && p < 3; p++)
        for (int k = 1; k < s.bins[p]; k++)
            worst = fmax(worst, fabs(pools[p] * pools[p] * s.power[p][k] - 1));
    tu_check(rc == 0 && s.bins[0] == 17 && s.bins[1] == 9 && s.bins[2] == 5 && worst < 0.2,
             "white noise: p^2 P_p(k) within %.3f of 1 at pools 1, 2, 4 (tol 0.2)", worst);
    /* At size 64 (nearest-upsampled), 2x2 pooling gives back the native spectrum exactly. */
    pd_snr_spectra u;
    rc = pd_snr_spectra_compute(&u, x, n, 1, N, 64, pools, 3, &err);
    tu_check(rc == 0 && u.bins[1] == 17 && !memcmp(u.power[1], s.power[0], sizeof(double) * 17) &&
                 !memcmp(u.power[2], s.power[1], sizeof(double) * 9),
             "size 64: pool 2 == native pool 1, pool 4 == native pool 2, bit for bit");
    pd_snr_spectra_free(&u);
    rc = pd_snr_spectra_compute(&u, x, n, 1, N, 48, pools, 3, &err);
    tu_check(rc == -1 && strstr(err.msg, "--size 48"), "size 48 fails: %s", err.msg);

    char path[] = "/tmp/pd_test_snrXXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    double g1[4] = {80, 5, 0.5, 0}, g2[3] = {160, 10, 1};
    pd_snr_schedule sc[2] = {{"base", g1, 4}, {"shift-scale", g2, 3}};
    rc = pd_snr_write_csv(path, &s, sc, 2, &err);
    FILE *f = fopen(path, "r");
    char line[512];
    int rows = 0, hdr = 0, val_ok = 0;
    if (f) {
        hdr = fgets(line, sizeof line, f) &&
              !strcmp(line, "schedule,step,t,sigma,logsnr,pool,logsnr_pooled,bin,freq,data_power,log10_snr\n");
        while (fgets(line, sizeof line, f)) {
            rows++;
            char name[32];
            int step, pool, bin;
            double t, sg, ls, lsp, fr, pw, l10;
            if (sscanf(line, "%31[^,],%d,%lf,%lf,%lf,%d,%lf,%d,%lf,%lf,%lf", name, &step, &t, &sg, &ls,
                       &pool, &lsp, &bin, &fr, &pw, &l10) == 11 &&
                !strcmp(name, "shift-scale") && step == 1 && pool == 2 && bin == 3)
                val_ok = fabs(t - 0.5) < 1e-9 && sg == 10 && fabs(ls + 2 * log(10)) < 1e-7 &&
                         fabs(lsp - ls - 2 * log(2)) < 1e-7 && fabs(fr - 3.0 / 16) < 1e-9 &&
                         fabs(l10 - log10(4 * s.power[1][3] / 100)) < 1e-6;
        }
        fclose(f);
    }
    /* rows: (3 nonzero + 3) grid points x (16 + 8 + 4) bins */
    tu_check(rc == 0 && hdr && rows == 6 * 28 && val_ok,
             "CSV: header, %d rows (want 168), and the row (shift-scale, step 1, pool 2, bin 3) holds "
             "t 0.5, logsnr -2 ln 10, +2 ln 2 pooled, freq 3/16, log10(4 P / sigma^2)", rows);
    unlink(path);
    pd_snr_spectra_free(&s);
    free(x);
}

int main(void) {
    test_fd();
    test_kid();
    test_pixel();
    test_spectrum();
    test_cache_and_eval();
    test_snr();
    return tu_finish();
}
