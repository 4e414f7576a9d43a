/* metrics.h — internals shared by the metrics room: the KID subset draw, the spectrum
 * accumulator (sums, so a stream of batches gives the same spectrum as one call), resizing, and
 * the reference statistics of the Fashion-MNIST test split with their cache (refstats.c).
 * The public entry points are in pixdiff.h ("metrics"); tests include this header to check the
 * pieces against naive twins. */
#ifndef PD_METRICS_H
#define PD_METRICS_H

#include "pixdiff.h"

/* Reference-cache format version: bump when the file's tensors or their meaning change. */
#define MT_REF_FORMAT "1"

/* The first m entries of idx are a uniform draw without replacement from 0..n-1 for KID subset
 * `subset` of set `which` (0 or 1): a partial Fisher-Yates shuffle of the identity driven by
 * Philox(seed, stream (subset << 1 | which)), word k of the draw being word k % 4 of block k / 4.
 * idx holds n entries (it is the shuffle's scratch). */
void mt_kid_subset(int *idx, int n, int m, uint64_t seed, int subset, int which);

/* Precision/recall pieces (precision_recall.c). r2[i] = squared distance from x[i] to its k-th
 * nearest neighbour among the other n - 1 rows of x [n, dim] (needs 1 <= k < n). */
int mt_knn_radii2(double *r2, const float *x, int n, int dim, int k, pd_error *err);
/* Fraction of the nq rows of q inside the union of the balls (p[j], squared radius r2[j]),
 * boundary inside. */
double mt_manifold_coverage(const float *q, int nq, const float *p, const double *r2, int np,
                            int dim);

/* Adds the radially averaged power spectrum of each of the n images [n, C, N, N] (averaged over
 * its channels) to sum[0..pd_spectrum_bins(N)), in image order, so sums over batches in order
 * equal one call on the concatenation (bit for bit). Plans are made once per N under a lock. */
int mt_spectrum_accumulate(const float *x, int n, int C, int N, double *sum, pd_error *err);

/* Nearest-neighbour upsampling by an integer factor u: x [n, C, N, N] -> out [n, C, uN, uN]. */
void mt_upsample_nearest(float *out, const float *x, int n, int C, int N, int u);

/* The reference statistics: features [n, F] of the data under the classifier, their double
 * mean and covariance, the data's power spectrum at the classifier's resolution R, and the
 * classifier's accuracy on the data. */
typedef struct mt_ref {
    int n, F, R, bins;
    float *features;
    pd_feature_stats stats;
    double *spectrum;         /* [bins] */
    double accuracy;
    char path[1024];          /* the cache file */
} mt_ref;

/* Loads the cache at path when it matches (classifier sha256, data sha256s, R, F, format and
 * pixdiff version); otherwise computes from the Fashion-MNIST test split in data_dir and writes
 * the cache (atomically; a write failure is logged, not fatal). log may be NULL. */
int mt_ref_get(mt_ref *ref, pd_model *clf, const char *path, const char *data_dir,
               void (*log)(void *user, const char *line), void *user, pd_error *err);
void mt_ref_free(mt_ref *ref);

#endif
