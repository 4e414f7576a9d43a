/* test_precision_recall.c — improved precision and recall (metrics/precision_recall.c,
 * Kynkäänniemi et al. 2019) against a brute-force double-precision reference written here: every
 * pairwise distance of both sets in double (plain sequential sums), each point's distances to
 * the others sorted (qsort) and the k-th taken as its radius, then the membership of every point
 * tested against every ball. On small random Gaussian feature sets (shifted and scaled so that
 * precision and recall lie strictly between 0 and 1), for k = 1, 3, 5 and sets of different and
 * equal size, the library's precision and recall must equal the reference's exactly (they are
 * counts over n), and its k-NN radii must agree to 1e-12 relative. Also: hand-made 1-D sets with
 * known answers (boundary counted inside; a collapsed generator has full precision and low
 * recall); identical sets give 1 and 1; duplicated points; results bit-identical on 1 and 2
 * threads; errors for k too large, dimension 0 and non-finite features. Well under a second.
 */
#include "pixdiff.h"
#include "metrics/metrics.h"
#include "core/rng.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double naive_d2(const float *a, const float *b, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) s += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
    return s;
}

/* r2[i]: the k-th smallest squared distance from x[i] to the other points (sort all of them). */
static void naive_radii(double *r2, const float *x, int n, int d, int k) {
    double *row = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        int m = 0;
        for (int j = 0; j < n; j++)
            if (j != i) row[m++] = naive_d2(x + (size_t)i * d, x + (size_t)j * d, d);
        qsort(row, (size_t)m, sizeof(double), cmp_double);
        r2[i] = row[k - 1];
    }
    free(row);
}

static double naive_coverage(const float *q, int nq, const float *p, const double *r2, int np, int d) {
    int in = 0;
    for (int i = 0; i < nq; i++) {
        int any = 0;
        for (int j = 0; j < np; j++) any |= naive_d2(q + (size_t)i * d, p + (size_t)j * d, d) <= r2[j];
        in += any;
    }
    return (double)in / nq;
}

static void naive_pr(const float *real, int nr, const float *fake, int nf, int d, int k,
                     double *prec, double *rec) {
    double *rr = malloc(sizeof(double) * (size_t)nr), *rf = malloc(sizeof(double) * (size_t)nf);
    naive_radii(rr, real, nr, d, k);
    naive_radii(rf, fake, nf, d, k);
    *prec = naive_coverage(fake, nf, real, rr, nr, d);
    *rec = naive_coverage(real, nr, fake, rf, nf, d);
    free(rr);
    free(rf);
}

/* n Gaussian vectors of dimension d: mean `shift` in every coordinate, standard deviation scale. */
static float *gauss(int n, int d, uint64_t seed, float shift, float scale) {
    float *x = malloc(sizeof(float) * (size_t)n * d);
    pd_randn(x, (size_t)n * d, seed, 0);
    for (size_t t = 0; t < (size_t)n * d; t++) x[t] = shift + scale * x[t];
    return x;
}

static void test_random_sets(void) {
    pd_error err = {""};
    const struct { int nr, nf, d, k; float shift, scale; } cs[] = {
        {200, 150, 16, 3, 0.3f, 1.3f}, {120, 120, 8, 1, 0.5f, 0.7f}, {150, 90, 5, 5, -0.4f, 1.0f},
        {64, 64, 33, 3, 0.2f, 0.9f},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        float *r = gauss(cs[c].nr, cs[c].d, 10 + c, 0.0f, 1.0f);
        float *f = gauss(cs[c].nf, cs[c].d, 20 + c, cs[c].shift, cs[c].scale);
        double p, q, np_, nq;
        int rc = pd_precision_recall(r, cs[c].nr, f, cs[c].nf, cs[c].d, cs[c].k, &p, &q, &err);
        naive_pr(r, cs[c].nr, f, cs[c].nf, cs[c].d, cs[c].k, &np_, &nq);
        tu_check(rc == 0 && p == np_ && q == nq && p > 0 && p < 1 && q > 0 && q < 1,
                 "random sets %d x %d, dim %d, k %d: precision %.4f (reference %.4f), recall %.4f "
                 "(reference %.4f) (%s)", cs[c].nr, cs[c].nf, cs[c].d, cs[c].k, p, np_, q, nq, err.msg);
        /* The radii themselves. */
        double *a = malloc(sizeof(double) * (size_t)cs[c].nr), *b = malloc(sizeof(double) * (size_t)cs[c].nr);
        rc = mt_knn_radii2(a, r, cs[c].nr, cs[c].d, cs[c].k, &err);
        naive_radii(b, r, cs[c].nr, cs[c].d, cs[c].k);
        double worst = 0;
        for (int i = 0; i < cs[c].nr; i++) worst = fmax(worst, fabs(a[i] - b[i]) / b[i]);
        tu_check(rc == 0 && worst <= 1e-12, "k-NN radii vs sorted distances: max rel error %.2e", worst);
        /* 1 and 2 threads: bit-identical. */
        double p1, q1;
        pd_set_threads(1);
        rc = pd_precision_recall(r, cs[c].nr, f, cs[c].nf, cs[c].d, cs[c].k, &p1, &q1, &err);
        double *a1 = malloc(sizeof(double) * (size_t)cs[c].nr);
        rc = rc || mt_knn_radii2(a1, r, cs[c].nr, cs[c].d, cs[c].k, &err);
        pd_set_threads(2);
        tu_check(rc == 0 && p1 == p && q1 == q && !memcmp(a1, a, sizeof(double) * (size_t)cs[c].nr),
                 "1 thread gives the same precision, recall and radii as 2");
        free(a), free(b), free(a1), free(r), free(f);
    }
}

static void test_hand_cases(void) {
    pd_error err = {""};
    double p, q;
    /* 1-D, k = 1. Real {0, 1, 2, 3}: radii 1 each. Fake {3.5, 4, 10, 11}: radii 0.5, 0.5, 1, 1.
     * Precision: 3.5 (|3.5-3| <= 1) and 4 (|4-3| <= 1, boundary) in, 10 and 11 out: 2/4.
     * Recall: 3 (|3-3.5| <= 0.5) in; 0, 1, 2 out (nearest fake 3.5, radius 0.5): 1/4. */
    const float real[] = {0, 1, 2, 3}, fake[] = {3.5f, 4, 10, 11};
    int rc = pd_precision_recall(real, 4, fake, 4, 1, 1, &p, &q, &err);
    tu_check(rc == 0 && p == 0.5 && q == 0.25, "1-D hand case: precision %g (2/4), recall %g (1/4)", p, q);
    /* A collapsed generator: every fake near real point 0 -> precision 1, recall 1/4 at k = 1
     * (only real 0 lies in a fake ball: fake radii are 0.01). */
    const float col[] = {0, 0.01f, 0.02f, 0.03f};
    rc = pd_precision_recall(real, 4, col, 4, 1, 1, &p, &q, &err);
    tu_check(rc == 0 && p == 1.0 && q == 0.25, "collapsed generator: precision %g (1), recall %g (1/4)", p, q);
    /* Identical sets: 1 and 1. Duplicated points (radius 0 at k = 1) still count themselves. */
    float *x = gauss(50, 6, 7, 0, 1);
    rc = pd_precision_recall(x, 50, x, 50, 6, 3, &p, &q, &err);
    tu_check(rc == 0 && p == 1.0 && q == 1.0, "identical sets: precision %g, recall %g", p, q);
    float dup[8] = {1, 1, 1, 1, 5, 5, 5, 5};   /* four 2-D points, two pairs of duplicates */
    rc = pd_precision_recall(dup, 4, dup, 4, 2, 1, &p, &q, &err);
    tu_check(rc == 0 && p == 1.0 && q == 1.0, "duplicated points (zero radii): %g, %g", p, q);
    /* Errors. */
    tu_check(pd_precision_recall(real, 4, fake, 4, 1, 4, &p, &q, &err) != 0 && strstr(err.msg, "k = 4"),
             "k = n refused: %s", err.msg);
    tu_check(pd_precision_recall(real, 4, fake, 4, 0, 1, &p, &q, &err) != 0, "dimension 0 refused: %s", err.msg);
    x[17] = NAN;
    tu_check(pd_precision_recall(x, 50, fake, 4, 1, 1, &p, &q, &err) != 0 && strstr(err.msg, "non-finite"),
             "non-finite features refused: %s", err.msg);
    free(x);
}

int main(void) {
    pd_set_threads(2);
    test_random_sets();
    test_hand_cases();
    return tu_finish();
}
