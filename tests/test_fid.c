/* test_fid.c — FID statistics files, references and the FID (core/npz.c, metrics/fid_eval.c).
 *
 * Checks, with their tolerances:
 *   - .npz files written by numpy (tests/fixtures/make_npz_fixtures.py): np.savez (stored, as
 *     EDM's fid-refs) and np.savez_compressed (deflated, as pytorch-fid --save-stats) read back
 *     the exact float64 values;
 *   - bad input fails with one line naming the file and the fault: mu [3] with sigma [4, 4], an
 *     int64 mu, no sigma, a file that is no zip, statistics of the wrong dimension;
 *   - pd_npz_stats_write then pd_npz_stats_read returns the same bits (d = 64);
 *   - the FID (pd_fd_gaussian) against a brute-force double reference written here: the
 *     Denman-Beavers iteration for sqrt(S1 S2) (non-symmetric, as scipy.linalg.sqrtm takes it),
 *     on small random statistics: full-rank <= 1e-9 relative; rank-deficient (the iteration
 *     run on S2 + 1e-12 I) <= 1e-4;
 *   - references from a PNG folder and from an .npy of the same images give bit-identical
 *     features and statistics; saved as .npz and read back, the same statistics; the FID of a set
 *     against its own reference is 0 and flagged singular (n <= 2048), and KID is computed only
 *     when the reference has features.
 */
#include "pixdiff.h"
#include "testutil.h"
#include "metrics/inception.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX PD_SOURCE_DIR "/tests/fixtures/"

static void fixture_stats(double *mu, double *sigma) {
    const int d = 4;
    double A[16];
    for (int i = 0; i < d; i++) {
        mu[i] = i / 8.0 - 0.25;
        for (int j = 0; j < d; j++) A[i * d + j] = ((3 * i + 5 * j) % 7) / 7.0 - 0.5;
    }
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += A[i * d + k] * A[j * d + k];
            sigma[i * d + j] = s / 4 + (i == j) * 0.5;
        }
}

static void check_numpy_files(void) {
    double mu[4], sg[16];
    fixture_stats(mu, sg);
    const char *files[2] = {FIX "npz_savez.npz", FIX "npz_savez_compressed.npz"};
    for (int f = 0; f < 2; f++) {
        pd_feature_stats s;
        pd_error err = {{0}};
        int rc = pd_npz_stats_read(files[f], &s, 0, &err);
        if (rc) printf("error: %s\n", err.msg);
        double dmax = 0;
        for (int i = 0; !rc && i < 4; i++) dmax = fmax(dmax, fabs(s.mu[i] - mu[i]));
        for (int i = 0; !rc && i < 16; i++) dmax = fmax(dmax, fabs(s.sigma[i] - sg[i]));
        tu_check(!rc && s.dim == 4 && dmax <= 1e-15, "%s: d = %d, max deviation %.1e",
                 strrchr(files[f], '/') + 1, s.dim, dmax);
        pd_feature_stats_free(&s);
    }
}

static void expect_fail(const char *path, int dim, const char *want) {
    pd_feature_stats s;
    pd_error err = {{0}};
    int rc = pd_npz_stats_read(path, &s, dim, &err);
    tu_check(rc && strstr(err.msg, want) && strstr(err.msg, path), "%s -> %s",
             strrchr(path, '/') + 1, err.msg);
    if (!rc) pd_feature_stats_free(&s);
}

static void check_bad_files(void) {
    expect_fail(FIX "npz_bad_shape.npz", 0, "mu is [3] but sigma is [4, 4]");
    expect_fail(FIX "npz_bad_dtype.npz", 0, "dtype '<i8'");
    expect_fail(FIX "npz_no_sigma.npz", 0, "no 'sigma.npy'");
    expect_fail(FIX "npz_savez.npz", 2048, "statistics of 4 features, need 2048");
    expect_fail(FIX "make_npz_fixtures.py", 0, "not an .npz");
}

static void check_round_trip(void) {
    const int d = 64;
    pd_feature_stats s = {d, 0, malloc(sizeof(double) * d), malloc(sizeof(double) * d * d)};
    tu_fill_d(s.mu, d, 1, 3.0);
    tu_fill_d(s.sigma, (size_t)d * d, 2, 1.0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/pd_test_fid_%d.npz", (int)getpid());
    pd_error err = {{0}};
    pd_feature_stats r;
    int rc = pd_npz_stats_write(path, &s, &err) || pd_npz_stats_read(path, &r, d, &err);
    if (rc) printf("error: %s\n", err.msg);
    tu_check(!rc && r.dim == d && !memcmp(r.mu, s.mu, sizeof(double) * d) &&
             !memcmp(r.sigma, s.sigma, sizeof(double) * d * d),
             "npz round trip (d = %d): the same bits", d);
    unlink(path);
    if (!rc) pd_feature_stats_free(&r);
    pd_feature_stats_free(&s);
}

/* ---- brute-force FID: tr sqrt(S1 S2) by the Denman-Beavers iteration Y <- (Y + Z^-1)/2,
 * Z <- (Z + Y^-1)/2 from Y = A, Z = I (Y -> sqrt A), with Gauss-Jordan inverses. */
static void inverse(const double *a, double *inv, int d) {
    double *m = malloc(sizeof(double) * d * d);
    memcpy(m, a, sizeof(double) * d * d);
    for (int i = 0; i < d * d; i++) inv[i] = (i % (d + 1)) == 0;
    for (int c = 0; c < d; c++) {
        int p = c;
        for (int r = c + 1; r < d; r++)
            if (fabs(m[r * d + c]) > fabs(m[p * d + c])) p = r;
        for (int k = 0; k < d; k++) {
            double t = m[c * d + k]; m[c * d + k] = m[p * d + k]; m[p * d + k] = t;
            t = inv[c * d + k]; inv[c * d + k] = inv[p * d + k]; inv[p * d + k] = t;
        }
        double piv = m[c * d + c];
        for (int k = 0; k < d; k++) m[c * d + k] /= piv, inv[c * d + k] /= piv;
        for (int r = 0; r < d; r++) {
            if (r == c) continue;
            double f = m[r * d + c];
            for (int k = 0; k < d; k++) m[r * d + k] -= f * m[c * d + k], inv[r * d + k] -= f * inv[c * d + k];
        }
    }
    free(m);
}

static double fid_brute(const double *mu1, const double *s1, const double *mu2, const double *s2, int d) {
    double *y = calloc((size_t)d * d, sizeof(double)), *z = calloc((size_t)d * d, sizeof(double));
    double *yi = malloc(sizeof(double) * d * d), *zi = malloc(sizeof(double) * d * d);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += s1[i * d + k] * s2[k * d + j];
            y[i * d + j] = s;
            z[i * d + j] = i == j;
        }
    for (int it = 0; it < 60; it++) {
        inverse(y, yi, d);
        inverse(z, zi, d);
        for (int i = 0; i < d * d; i++) y[i] = 0.5 * (y[i] + zi[i]), z[i] = 0.5 * (z[i] + yi[i]);
    }
    double fid = 0;
    for (int i = 0; i < d; i++) fid += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + s1[i * d + i] + s2[i * d + i] - 2 * y[i * d + i];
    free(y), free(z), free(yi), free(zi);
    return fid;
}

static void random_cov(double *s, int d, int rank, uint64_t seed) {
    double *a = malloc(sizeof(double) * d * rank);
    tu_fill_d(a, (size_t)d * rank, seed, 1.0);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            double v = 0;
            for (int k = 0; k < rank; k++) v += a[i * rank + k] * a[j * rank + k];
            s[i * d + j] = v / rank + (rank < d ? 0 : 0.05 * (i == j));
        }
    free(a);
}

static void check_fid_brute(void) {
    /* Full-rank pairs at two sizes; then S2 of rank d - 4, where sqrt(S1 S2) is singular and the
     * iteration needs S2 + 1e-12 I (a shift that moves tr sqrt by about 4e-6: tolerance 1e-4). */
    static const struct { int d, rank2; double tol; } cases[] = {{12, 12, 1e-9}, {40, 40, 1e-9}, {12, 8, 1e-4}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int d = cases[t].d;
        double *mu1 = malloc(sizeof(double) * d), *mu2 = malloc(sizeof(double) * d);
        double *s1 = malloc(sizeof(double) * d * d), *s2 = malloc(sizeof(double) * d * d);
        double *s2r = malloc(sizeof(double) * d * d);
        tu_fill_d(mu1, d, 5 + t, 1.0);
        tu_fill_d(mu2, d, 6 + t, 1.0);
        random_cov(s1, d, d, 7 + t);
        random_cov(s2, d, cases[t].rank2, 8 + t);
        for (int i = 0; i < d * d; i++) s2r[i] = s2[i] + (i % (d + 1) == 0 && cases[t].rank2 < d ? 1e-12 : 0);
        double fid = 0, ref = fid_brute(mu1, s1, mu2, s2r, d);
        pd_error err = {{0}};
        pd_fd_gaussian(mu1, s1, mu2, s2, d, &fid, &err);
        double rel = fabs(fid - ref) / fabs(ref);
        tu_check(rel <= cases[t].tol, "FID vs Denman-Beavers sqrt(S1 S2), d = %d, rank S2 = %d: %.12g vs "
                 "%.12g (rel %.1e, tol %.0e)", d, cases[t].rank2, fid, ref, rel, cases[t].tol);
        free(mu1), free(mu2), free(s1), free(s2), free(s2r);
    }
}

/* References from PNGs and from an .npy of the same images, with the synthetic network. */
static void check_references(void) {
    char dir[64], npy[80], npz[80], wpath[80];
    snprintf(dir, sizeof dir, "/tmp/pd_test_fid_%d", (int)getpid());
    snprintf(npy, sizeof npy, "%s.npy", dir);
    snprintf(npz, sizeof npz, "%s.npz", dir);
    snprintf(wpath, sizeof wpath, "%s.safetensors", dir);
    mkdir(dir, 0755);
    const int n = 5, R = 28;
    float *x = malloc(sizeof(float) * n * R * R);
    uint8_t u8[28 * 28];
    pd_error err = {{0}};
    int rc = 0;
    for (int i = 0; i < n; i++) {
        mt_synthetic_image(u8, 50 + i, R * R);
        for (int j = 0; j < R * R; j++) x[i * R * R + j] = u8[j] / 127.5f - 1.0f;
        char p[128];
        snprintf(p, sizeof p, "%s/img%02d.png", dir, i);
        rc |= pd_png_write_grid(p, x + i * R * R, 1, 1, R, R, 1, NULL, &err);
    }
    const int shape[4] = {n, 1, R, R};
    rc |= pd_npy_write(npy, x, shape, 4, &err);
    pd_inception *net = NULL;
    rc |= mt_inception_synthetic_write(wpath, &err) || pd_inception_load(&net, wpath, &err);
    pd_fid_ref a, b, c;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    if (!rc) rc |= pd_fid_ref_load(&a, net, dir, PD_FID_PREP_PYTORCH_FID, NULL, &err);
    if (!rc) rc |= pd_fid_ref_load(&b, net, npy, PD_FID_PREP_PYTORCH_FID, NULL, &err);
    if (rc) printf("error: %s\n", err.msg);
    tu_check(!rc && a.n == n && b.n == n &&
             !memcmp(a.features, b.features, sizeof(float) * n * PD_INCEPTION_DIM) &&
             !memcmp(a.stats.sigma, b.stats.sigma, sizeof(double) * PD_INCEPTION_DIM * PD_INCEPTION_DIM),
             "reference from %d PNGs == from the .npy of the same images (features, sigma; bit for bit)", n);
    if (!rc) rc |= pd_npz_stats_write(npz, &a.stats, &err) ||
                   pd_fid_ref_load(&c, net, npz, PD_FID_PREP_PYTORCH_FID, NULL, &err);
    tu_check(!rc && c.n == 0 && !c.features && !memcmp(c.stats.mu, a.stats.mu, sizeof(double) * PD_INCEPTION_DIM),
             "reference saved as .npz and read back: the same statistics, no features");
    pd_fid_result r1, r2;
    pd_kid_params kp = pd_kid_default_params();
    if (!rc) rc |= pd_fid_compute(a.features, n, &a, &kp, 3, &r1, &err) ||
                   pd_fid_compute(a.features, n, &c, &kp, 3, &r2, &err);
    if (rc) printf("error: %s\n", err.msg);
    tu_check(!rc && fabs(r1.fid) < 1e-6 && r1.singular && isfinite(r1.kid.kid) && isnan(r2.kid.kid) &&
             r2.fid == r1.fid,
             "FID of a set against itself %.2e (singular flagged: %d); KID %.2e from features, NaN "
             "from an .npz", r1.fid, r1.singular, r1.kid.kid);
    pd_fid_ref_free(&a), pd_fid_ref_free(&b), pd_fid_ref_free(&c);
    pd_inception_free(net);
    for (int i = 0; i < n; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/img%02d.png", dir, i);
        unlink(p);
    }
    rmdir(dir), unlink(npy), unlink(npz), unlink(wpath);
    free(x);
}

int main(void) {
    check_numpy_files();
    check_bad_files();
    check_round_trip();
    check_fid_brute();
    check_references();
    return tu_finish();
}
