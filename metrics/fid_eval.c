/* fid_eval.c — FID reference statistics and the FID of a feature set against them
 * (pd_fid_ref_*, pd_fid_compute in pixdiff.h).
 *
 * A reference is the mean and covariance (double, divisor n - 1: pd_feature_stats_compute, as
 * numpy.cov) of the Inception features of a set of images, with the features kept when they were
 * computed here (KID needs them; an .npz of statistics has none). Images come from a folder of
 * PNGs (sorted by name), an .npy array [N, C, H, W] (or [N, H, W]) of floats in [-1, 1], or a
 * Fashion-MNIST split as pixdiff's models see it (28 x 28 padded to 32 x 32); all of them reach
 * the network as 8 bits (pd_inception_features quantises as PNGs are written). The FID is
 * pd_fd_gaussian (metrics/fd.c: double, LAPACK), the one implementation of the Fréchet distance
 * in pixdiff. With n <= 2048 images a 2048 x 2048 covariance is singular (rank <= n - 1): the
 * FID is still defined and computed (eigenvalues clamped at 0) but is biased upward and far
 * from the 50,000-image values papers report; the result flags it so callers can warn. KID and
 * precision/recall (Kynkäänniemi et al. 2019) need the reference's features.
 */
#include "core/progress.h"
#include "core/util.h"
#include "metrics/inception.h"
#include "metrics/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REF_CHUNK 64

void pd_fid_ref_free(pd_fid_ref *r) {
    if (!r) return;
    pd_feature_stats_free(&r->stats);
    free(r->features);
    memset(r, 0, sizeof *r);
}

/* Reports done of n images (t0: when the call began). */
static void report(const pd_fid_ref_options *o, long long done, long long n, double t0) {
    if (!o || !o->progress) return;
    pd_progress p;
    pg_init(&p, "fid-ref", "images");
    p.done = p.images_done = done;
    p.total = p.images = n;
    pg_time(&p, t0);
    o->progress(o->user, &p);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

static int finish(pd_fid_ref *r, float *feat, int n, pd_error *err) {
    if (pd_feature_stats_compute(&r->stats, feat, n, INC_FEATURES, err)) {
        free(feat);
        return -1;
    }
    r->features = feat;
    r->n = n;
    return 0;
}

/* Features of images x [n, C, H, W] in [-1, 1], in chunks, with progress. */
static int features_of(pd_inception *net, const float *x, int n, int C, int H, int W,
                       pd_fid_prep prep, const pd_fid_ref_options *o, double t0, float **out,
                       pd_error *err) {
    float *feat = malloc(sizeof(float) * (size_t)n * INC_FEATURES);
    if (!feat) return pd_fail(err, "FID reference: out of memory for %d feature vectors", n);
    const size_t img = (size_t)C * H * W;
    for (int i0 = 0; i0 < n; i0 += REF_CHUNK) {
        int c = n - i0 < REF_CHUNK ? n - i0 : REF_CHUNK;
        if (pd_inception_features(net, x + (size_t)i0 * img, c, C, H, W, prep,
                                  feat + (size_t)i0 * INC_FEATURES, err)) {
            free(feat);
            return -1;
        }
        report(o, i0 + c, n, t0);
    }
    *out = feat;
    return 0;
}

static int from_pngs(pd_fid_ref *r, pd_inception *net, const char *dir, pd_fid_prep prep,
                     const pd_fid_ref_options *o, double t0, pd_error *err) {
    char **names = NULL;
    int count = 0, C = 0, H = 0, W = 0;
    if (pd_png_list(dir, &names, &count, err)) return -1;
    int n = o && o->max_n > 0 && o->max_n < count ? o->max_n : count;
    float *feat = malloc(sizeof(float) * (size_t)n * INC_FEATURES), *buf = NULL;
    int rc = -1, nb = 0, done = 0;
    if (!feat) {
        pd_fail(err, "FID reference: out of memory for %d feature vectors", n);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        float *x = NULL;
        int c, h, w;
        if (pd_png_read(path, &x, &c, &h, &w, err)) goto out;
        if (i == 0) {
            C = c, H = h, W = w;
            buf = malloc(sizeof(float) * (size_t)C * H * W * REF_CHUNK);
            if (!buf) {
                free(x);
                pd_fail(err, "FID reference: out of memory");
                goto out;
            }
        } else if (c != C || h != H || w != W) {
            free(x);
            pd_fail(err, "%s: %dx%dx%d differs from the first image's %dx%dx%d", path, c, h, w, C, H, W);
            goto out;
        }
        memcpy(buf + (size_t)nb * C * H * W, x, sizeof(float) * (size_t)C * H * W);
        free(x);
        if (++nb == REF_CHUNK || i == n - 1) {
            if (pd_inception_features(net, buf, nb, C, H, W, prep, feat + (size_t)done * INC_FEATURES, err))
                goto out;
            done += nb;
            nb = 0;
            report(o, done, n, t0);
        }
    }
    rc = finish(r, feat, n, err);
    feat = NULL;
out:
    free(feat);
    free(buf);
    pd_png_list_free(names, count);
    return rc;
}

int pd_fid_ref_load(pd_fid_ref *r, pd_inception *net, const char *source, pd_fid_prep prep,
                    const pd_fid_ref_options *o, pd_error *err) {
    const double t0 = core_now();
    memset(r, 0, sizeof *r);
    if (!source || !*source) return pd_fail(err, "FID reference: no source given");
    snprintf(r->source, sizeof r->source, "%s", source);
    if (ends_with(source, ".npz")) return pd_npz_stats_read(source, &r->stats, INC_FEATURES, err);
    if (!net) return pd_fail(err, "%s: computing reference statistics needs the Inception weights", source);
    const int max_n = o && o->max_n > 0 ? o->max_n : 0;
    float *x = NULL, *feat = NULL;
    int n = 0, C = 1, H = 0, W = 0;
    if (!strncmp(source, "fashion-mnist:", 14)) {
        const char *split = source + 14;
        int train = !strcmp(split, "train");
        if (!train && strcmp(split, "test"))
            return pd_fail(err, "%s: the split is 'train' or 'test'", source);
        if (pd_fashion_mnist_load(o ? o->data_dir : NULL, train, &x, NULL, &n, err)) return -1;
        H = W = 32;
    } else if (ends_with(source, ".npy")) {
        int shape[4], nd = 0;
        if (pd_npy_read(source, &x, shape, &nd, err)) return -1;
        if (nd == 3) n = shape[0], C = 1, H = shape[1], W = shape[2];
        else if (nd == 4) n = shape[0], C = shape[1], H = shape[2], W = shape[3];
        if ((nd != 3 && nd != 4) || (C != 1 && C != 3)) {
            free(x);
            return pd_fail(err, "%s: need images [N, C, H, W] (C = 1 or 3) or [N, H, W]", source);
        }
    } else {
        return from_pngs(r, net, source, prep, o, t0, err);
    }
    if (max_n && max_n < n) n = max_n;
    if (n < 2) {
        free(x);
        return pd_fail(err, "%s: need at least 2 images", source);
    }
    int rc = features_of(net, x, n, C, H, W, prep, o, t0, &feat, err);
    free(x);
    return rc ? -1 : finish(r, feat, n, err);
}

/* The first m vectors of the PD_PR_SEED draw of set `which` (0 reference, 1 generated; as
 * metrics/eval.c draws them), or f itself when m is all of it. */
static const float *pr_set(const float *f, int n, int m, int which, int *idx, float **own) {
    *own = NULL;
    if (m == n) return f;
    float *s = malloc(sizeof(float) * (size_t)m * INC_FEATURES);
    if (!s) return NULL;
    mt_kid_subset(idx, n, m, PD_PR_SEED, 0, which);
    for (int i = 0; i < m; i++)
        memcpy(s + (size_t)i * INC_FEATURES, f + (size_t)idx[i] * INC_FEATURES, sizeof(float) * INC_FEATURES);
    *own = s;
    return s;
}

static int fid_precision_recall(const float *features, int n, const pd_fid_ref *ref, int k,
                                pd_fid_result *res, pd_error *err) {
    const int m = n < ref->n ? n : ref->n;
    res->pr_k = k;
    if (m <= k) return 0;   /* too few images for a k-th neighbour: NaN */
    int *idx = malloc(sizeof(int) * (size_t)(n > ref->n ? n : ref->n));
    float *own_r = NULL, *own_g = NULL;
    const float *r = idx ? pr_set(ref->features, ref->n, m, 0, idx, &own_r) : NULL;
    const float *g = r ? pr_set(features, n, m, 1, idx, &own_g) : NULL;
    int rc = g ? pd_precision_recall(r, m, g, m, INC_FEATURES, k, &res->precision, &res->recall, err)
               : pd_fail(err, "precision/recall: out of memory");
    if (!rc) res->pr_n = m;
    free(idx), free(own_r), free(own_g);
    return rc;
}

int pd_fid_compute(const float *features, int n, const pd_fid_ref *ref, const pd_kid_params *kid,
                   int pr_k, pd_fid_result *res, pd_error *err) {
    memset(res, 0, sizeof *res);
    res->kid.kid = res->kid.std = res->kid.se = NAN;
    res->precision = res->recall = NAN;
    if (!ref || ref->stats.dim != INC_FEATURES)
        return pd_fail(err, "FID: the reference has no %d-d statistics", INC_FEATURES);
    pd_feature_stats g;
    if (pd_feature_stats_compute(&g, features, n, INC_FEATURES, err)) return -1;
    int rc = pd_fd_gaussian(g.mu, g.sigma, ref->stats.mu, ref->stats.sigma, INC_FEATURES, &res->fid, err);
    pd_feature_stats_free(&g);
    if (rc) return -1;
    res->n = n;
    res->ref_n = ref->n;
    res->singular = n <= INC_FEATURES || (ref->n > 0 && ref->n <= INC_FEATURES);
    if (ref->features && kid && pd_kid(features, n, ref->features, ref->n, INC_FEATURES, kid, &res->kid, err))
        return -1;
    if (ref->features && pr_k > 0 && fid_precision_recall(features, n, ref, pr_k, res, err)) return -1;
    return 0;
}
