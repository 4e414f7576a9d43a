/* eval.c — evaluation of generated images against the Fashion-MNIST test split (pd_eval_*).
 *
 * An evaluator holds the reference statistics (refstats.c) and accumulates, batch by batch, what
 * the metrics need from the generated images: their classifier features (for FD and KID), the
 * count of images whose argmax class is the requested label (accuracy), and the sum of their
 * power spectra (spectral error). Images larger than the classifier's R x R (R m x R m, e.g.
 * upsample-guidance samples) are m x m average-pooled first, in chunks, so memory stays bounded
 * whatever the resolution. Each image contributes independently of its batch, so a stream of
 * batches gives the same result as one call. pd_eval_finish computes FD (double statistics of
 * both sets), KID (pd_kid, reference features as the second set), precision and recall
 * (precision_recall.c, on sets of equal size; the reference side's k-NN radii are kept for the
 * next finish of the same size) and the spectral error.
 */
#include "metrics/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_CHUNK 256   /* images pooled and classified per step */

struct pd_eval {
    pd_model *clf;
    int R, C, F, K;
    mt_ref ref;
    pd_kid_params kid;
    float *feat;              /* [cap, F] features of the added images */
    int n, cap;
    long long labelled, correct;
    double *spec_sum;         /* [bins] */
    float *pooled, *logits, *chunk_feat;
    /* Precision/recall: k, and the reference side for the last size m (kept, since a sweep
     * evaluates many cells of the same n): the drawn features and their k-NN radii. */
    int pr_k, pr_m;
    float *pr_ref;            /* [pr_m, F] */
    double *pr_ref_r2;        /* [pr_m] */
};

pd_eval_options pd_eval_default_options(void) {
    pd_eval_options o;
    memset(&o, 0, sizeof o);
    o.kid = pd_kid_default_params();
    o.pr_k = 3;
    return o;
}

void pd_eval_free(pd_eval *ev) {
    if (!ev) return;
    mt_ref_free(&ev->ref);
    free(ev->feat);
    free(ev->spec_sum);
    free(ev->pooled);
    free(ev->logits);
    free(ev->chunk_feat);
    free(ev->pr_ref);
    free(ev->pr_ref_r2);
    free(ev);
}

int pd_eval_create(pd_eval **out, pd_model *clf, const pd_eval_options *o, pd_error *err) {
    *out = NULL;
    pd_eval_options opt = o ? *o : pd_eval_default_options();
    if (!clf || pd_classifier_feature_dim(clf) < 1)
        return pd_fail(err, "evaluation: %s is not a classifier",
                       clf && pd_model_path(clf) && *pd_model_path(clf) ? pd_model_path(clf) : "the model");
    if (opt.kid.subsets < 1 || opt.kid.subset_size < 2)
        return pd_fail(err, "evaluation: KID needs at least 1 subset of at least 2 images (got %d of %d)",
                       opt.kid.subsets, opt.kid.subset_size);
    char path[1024];
    if (opt.ref_cache && *opt.ref_cache) snprintf(path, sizeof path, "%s", opt.ref_cache);
    else if (pd_eval_default_cache_path(path, sizeof path, clf, err)) return -1;
    pd_eval *ev = calloc(1, sizeof *ev);
    if (!ev) return pd_fail(err, "evaluation: out of memory");
    const pd_unet_config *cfg = pd_model_config(clf);
    ev->clf = clf;
    ev->R = cfg->img_resolution;
    ev->C = cfg->in_channels;
    ev->F = pd_classifier_feature_dim(clf);
    ev->K = cfg->label_dim;
    ev->kid = opt.kid;
    if (opt.pr_k < 0) {
        pd_eval_free(ev);
        return pd_fail(err, "evaluation: precision/recall k = %d (0 skips them)", opt.pr_k);
    }
    ev->pr_k = opt.pr_k;
    const size_t img = (size_t)ev->C * ev->R * ev->R;
    ev->spec_sum = calloc((size_t)pd_spectrum_bins(ev->R), sizeof(double));
    ev->pooled = malloc(sizeof(float) * img * EVAL_CHUNK);
    ev->logits = malloc(sizeof(float) * (size_t)(ev->K > 0 ? ev->K : 1) * EVAL_CHUNK);
    ev->chunk_feat = malloc(sizeof(float) * (size_t)ev->F * EVAL_CHUNK);
    if (!ev->spec_sum || !ev->pooled || !ev->logits || !ev->chunk_feat) {
        pd_eval_free(ev);
        return pd_fail(err, "evaluation: out of memory");
    }
    if (mt_ref_get(&ev->ref, clf, path, opt.data_dir, opt.log, opt.user, err)) {
        pd_eval_free(ev);
        return -1;
    }
    *out = ev;
    return 0;
}

void pd_eval_reset(pd_eval *ev) {
    ev->n = 0;
    ev->labelled = ev->correct = 0;
    memset(ev->spec_sum, 0, sizeof(double) * (size_t)pd_spectrum_bins(ev->R));
}

int pd_eval_add(pd_eval *ev, const float *x, int n, int C, int R, const int *labels,
                pd_error *err) {
    if (n < 0) return pd_fail(err, "evaluation: %d images", n);
    if (C != ev->C)
        return pd_fail(err, "evaluation: images have %d channels, the classifier reads %d", C, ev->C);
    if (R < ev->R || R % ev->R)
        return pd_fail(err, "evaluation: %dx%d images cannot be pooled to the classifier's %dx%d "
                            "(the size must be a multiple of %d)", R, R, ev->R, ev->R, ev->R);
    if (labels)
        for (int i = 0; i < n; i++)
            if (labels[i] >= ev->K || labels[i] < -1)
                return pd_fail(err, "evaluation: label %d of image %d is not a class of the "
                                    "classifier (0..%d, or -1 for none)", labels[i], i, ev->K - 1);
    if (ev->n + (long long)n > ev->cap) {
        long long cap = ev->cap ? ev->cap : 1024;
        while (cap < ev->n + (long long)n) cap *= 2;
        if (cap > 0x7fffffff) return pd_fail(err, "evaluation: more than 2^31 images");
        float *f = realloc(ev->feat, sizeof(float) * (size_t)cap * ev->F);
        if (!f) return pd_fail(err, "evaluation: out of memory for %lld feature vectors", cap);
        ev->feat = f;
        ev->cap = (int)cap;
    }
    const size_t src_img = (size_t)C * R * R;
    for (int i0 = 0; i0 < n; i0 += EVAL_CHUNK) {
        int c = n - i0 < EVAL_CHUNK ? n - i0 : EVAL_CHUNK;
        const float *xi = x + (size_t)i0 * src_img;
        for (size_t k = 0; k < (size_t)c * src_img; k++)
            if (!isfinite(xi[k]))
                return pd_fail(err, "evaluation: image %d has a non-finite pixel", i0 + (int)(k / src_img));
        const float *in = xi;
        if (R != ev->R) {
            if (pd_avg_pool(ev->pooled, xi, c, C, R, R, R / ev->R, err)) return -1;
            in = ev->pooled;
        }
        if (pd_classifier_features(ev->clf, in, c, ev->logits, ev->chunk_feat, err)) return -1;
        if (mt_spectrum_accumulate(in, c, C, ev->R, ev->spec_sum, err)) return -1;
        memcpy(ev->feat + (size_t)(ev->n + i0) * ev->F, ev->chunk_feat, sizeof(float) * (size_t)c * ev->F);
        if (labels)
            for (int i = 0; i < c; i++) {
                int want = labels[i0 + i];
                if (want < 0) continue;
                const float *l = ev->logits + (size_t)i * ev->K;
                int best = 0;
                for (int k = 1; k < ev->K; k++)
                    if (l[k] > l[best]) best = k;
                ev->labelled++;
                ev->correct += best == want;
            }
    }
    ev->n += n;
    return 0;
}

/* The reference side of precision/recall at size m: m reference features (all of them, in
 * order, when m is their count; else the first m of the PD_PR_SEED draw) and their radii. */
static int pr_reference(pd_eval *ev, int m, int *idx, pd_error *err) {
    if (ev->pr_m == m) return 0;
    free(ev->pr_ref);
    free(ev->pr_ref_r2);
    ev->pr_m = 0;
    ev->pr_ref = malloc(sizeof(float) * (size_t)m * ev->F);
    ev->pr_ref_r2 = malloc(sizeof(double) * (size_t)m);
    if (!ev->pr_ref || !ev->pr_ref_r2) return pd_fail(err, "evaluation: out of memory");
    if (m < ev->ref.n) mt_kid_subset(idx, ev->ref.n, m, PD_PR_SEED, 0, 0);
    for (int i = 0; i < m; i++)
        memcpy(ev->pr_ref + (size_t)i * ev->F,
               ev->ref.features + (size_t)(m < ev->ref.n ? idx[i] : i) * ev->F,
               sizeof(float) * (size_t)ev->F);
    if (mt_knn_radii2(ev->pr_ref_r2, ev->pr_ref, m, ev->F, ev->pr_k, err)) return -1;
    ev->pr_m = m;
    return 0;
}

/* Precision and recall (Kynkäänniemi et al. 2019) on sets of equal size m = min(n, ref n). */
static int eval_precision_recall(pd_eval *ev, pd_eval_result *r, pd_error *err) {
    r->precision = r->recall = NAN;
    r->pr_k = ev->pr_k;
    if (!ev->pr_k) return 0;
    const int m = ev->n < ev->ref.n ? ev->n : ev->ref.n;
    if (m <= ev->pr_k) return 0;   /* too few images for a k-th neighbour: NaN */
    int nmax = ev->n > ev->ref.n ? ev->n : ev->ref.n;
    int *idx = malloc(sizeof(int) * (size_t)nmax);
    float *gen = NULL;
    double *r2 = malloc(sizeof(double) * (size_t)m);
    int rc = -1;
    if (!idx || !r2) {
        pd_fail(err, "evaluation: out of memory");
        goto done;
    }
    if (pr_reference(ev, m, idx, err)) goto done;
    const float *g = ev->feat;
    if (m < ev->n) {
        gen = malloc(sizeof(float) * (size_t)m * ev->F);
        if (!gen) {
            pd_fail(err, "evaluation: out of memory");
            goto done;
        }
        mt_kid_subset(idx, ev->n, m, PD_PR_SEED, 0, 1);
        for (int i = 0; i < m; i++)
            memcpy(gen + (size_t)i * ev->F, ev->feat + (size_t)idx[i] * ev->F,
                   sizeof(float) * (size_t)ev->F);
        g = gen;
    }
    if (mt_knn_radii2(r2, g, m, ev->F, ev->pr_k, err)) goto done;
    r->precision = mt_manifold_coverage(g, m, ev->pr_ref, ev->pr_ref_r2, m, ev->F);
    r->recall = mt_manifold_coverage(ev->pr_ref, m, g, r2, m, ev->F);
    r->pr_n = m;
    rc = 0;
done:
    free(idx);
    free(gen);
    free(r2);
    return rc;
}

int pd_eval_finish(pd_eval *ev, pd_eval_result *r, pd_error *err) {
    memset(r, 0, sizeof *r);
    if (ev->n < 2) return pd_fail(err, "evaluation: needs at least 2 images (got %d)", ev->n);
    pd_feature_stats g;
    if (pd_feature_stats_compute(&g, ev->feat, ev->n, ev->F, err)) return -1;
    int rc = pd_fd_gaussian(g.mu, g.sigma, ev->ref.stats.mu, ev->ref.stats.sigma, ev->F, &r->fd, err);
    pd_feature_stats_free(&g);
    if (rc) return -1;
    if (pd_kid(ev->feat, ev->n, ev->ref.features, ev->ref.n, ev->F, &ev->kid, &r->kid, err)) return -1;
    if (eval_precision_recall(ev, r, err)) return -1;
    const int bins = pd_spectrum_bins(ev->R);
    double *p = malloc(sizeof(double) * (size_t)bins);
    if (!p) return pd_fail(err, "evaluation: out of memory");
    for (int k = 0; k < bins; k++) p[k] = ev->spec_sum[k] / ev->n;
    r->spectral_error = pd_spectral_error(p, ev->ref.spectrum, bins);
    free(p);
    r->spectrum_bins = bins;
    r->n = ev->n;
    r->n_labelled = (int)ev->labelled;
    r->accuracy = ev->labelled ? (double)ev->correct / ev->labelled : NAN;
    r->ref_n = ev->ref.n;
    r->ref_accuracy = ev->ref.accuracy;
    snprintf(r->ref_path, sizeof r->ref_path, "%s", ev->ref.path);
    return 0;
}
