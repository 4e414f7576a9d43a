/* refstats.c — the reference statistics of the Fashion-MNIST test split under a classifier, and
 * their cache file (mt_ref_get, pd_eval_default_cache_path).
 *
 * The cache is a safetensors file (F32 tensors):
 *   features [n, F]  the classifier's penultimate features of every test image (KID needs them)
 *   mu [F], sigma [F, F]  their mean and covariance, for other tools (FD here recomputes both in
 *                    double from the features: float32 sigma would round at 1e-7 relative)
 *   spectrum [R/2+1] the data's radially averaged power spectrum at the classifier's R
 * and its __metadata__ records what they came from: pixdiff.ref (format MT_REF_FORMAT), version
 * (pixdiff), classifier.sha256 / classifier.path, data.images / data.labels (paths) with their
 * .sha256, n, feature_dim, resolution, accuracy (the classifier's on the split). A cache is used
 * only if the format, version, classifier and data hashes, feature_dim and resolution all match
 * and the tensors have the recorded shapes; anything else (missing, unreadable, stale) is logged
 * with its reason and recomputed, then written atomically (st_write: temporary file + rename), so
 * a concurrent reader sees the old file or the new one, never a torn one. A cache that cannot be
 * written (read-only directory) is not an error: the statistics are used from memory, and the
 * log says so. The data are hashed, not dated: a copied or touched file is not stale, an edited
 * one is.
 */
#include "core/fashion.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "metrics/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void mt_ref_free(mt_ref *r) {
    if (!r) return;
    free(r->features);
    free(r->spectrum);
    pd_feature_stats_free(&r->stats);
    memset(r, 0, sizeof *r);
}

int pd_eval_default_cache_path(char *path, size_t cap, const pd_model *clf, pd_error *err) {
    const char *sha = clf ? pd_model_sha256(clf) : "";
    if (!sha || strlen(sha) < 16)
        return pd_fail(err, "reference cache: the classifier has no file hash (load it from a file)");
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && *xdg)
        n = snprintf(path, cap, "%s/pixdiff/fashion-mnist-t10k-%.16s.safetensors", xdg, sha);
    else if (home && *home)
        n = snprintf(path, cap, "%s/.cache/pixdiff/fashion-mnist-t10k-%.16s.safetensors", home, sha);
    else
        return pd_fail(err, "reference cache: neither XDG_CACHE_HOME nor HOME is set; name a cache file");
    if (n < 0 || (size_t)n >= cap) return pd_fail(err, "reference cache: path too long");
    return 0;
}

/* mkdir -p of path's directory. */
static int make_parent(const char *path, pd_error *err) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = 0;
    return pd_make_dirs(dir, err);
}

/* What the statistics depend on, as the cache's metadata records it. */
typedef struct fingerprint {
    char clf_sha[65], clf_path[1024];
    char img_path[1100], lab_path[1100], img_sha[65], lab_sha[65];
    char n_s[32], f_s[32], r_s[32];
} fingerprint;

/* The reason a cache does not match, or NULL. */
static const char *mismatch(const st_file *f, const fingerprint *fp, char *why, size_t cap) {
    struct {
        const char *key, *want, *what;
    } checks[] = {
        {"pixdiff.ref", MT_REF_FORMAT, "cache format"},
        {"version", pd_version(), "pixdiff version"},
        {"classifier.sha256", fp->clf_sha, "classifier (sha256)"},
        {"data.images.sha256", fp->img_sha, "data images (sha256)"},
        {"data.labels.sha256", fp->lab_sha, "data labels (sha256)"},
        {"feature_dim", fp->f_s, "feature dimension"},
        {"resolution", fp->r_s, "resolution"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        const char *v = st_meta(f, checks[i].key);
        if (!v) {
            snprintf(why, cap, "no '%s' in its metadata", checks[i].key);
            return why;
        }
        if (strcmp(v, checks[i].want)) {
            snprintf(why, cap, "%s changed ('%.24s' in the cache, now '%.24s')", checks[i].what, v,
                     checks[i].want);
            return why;
        }
    }
    return NULL;
}

/* Fills r from a matching cache file; returns 0, or -1 with the reason in why. */
static int try_load(mt_ref *r, const char *path, const fingerprint *fp, int F, int R, char *why,
                    size_t cap) {
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(why, cap, "not there yet");
        return -1;
    }
    st_file f;
    pd_error e = {{0}};
    if (st_read(&f, path, &e)) {
        snprintf(why, cap, "unreadable (%.300s)", e.msg);
        return -1;
    }
    int rc = -1;
    if (mismatch(&f, fp, why, cap)) goto done;
    const char *ns = st_meta(&f, "n"), *acc = st_meta(&f, "accuracy");
    long n = ns ? strtol(ns, NULL, 10) : 0;
    const st_tensor *tf = st_find(&f, "features"), *ts = st_find(&f, "spectrum");
    int bins = pd_spectrum_bins(R);
    if (n < 2 || !acc || !tf || tf->ndim != 2 || tf->shape[0] != n || tf->shape[1] != F || !ts ||
        ts->ndim != 1 || ts->shape[0] != bins) {
        snprintf(why, cap, "its tensors do not have the recorded shapes");
        goto done;
    }
    r->features = malloc(sizeof(float) * (size_t)n * F);
    r->spectrum = malloc(sizeof(double) * (size_t)bins);
    if (!r->features || !r->spectrum) {
        snprintf(why, cap, "out of memory");
        goto done;
    }
    memcpy(r->features, tf->data, sizeof(float) * (size_t)n * F);
    for (int k = 0; k < bins; k++) r->spectrum[k] = ts->data[k];
    r->n = (int)n;
    r->accuracy = strtod(acc, NULL);
    rc = 0;
done:
    st_free(&f);
    if (rc) {
        free(r->features), free(r->spectrum);
        r->features = NULL, r->spectrum = NULL;
    }
    return rc;
}

/* Features, accuracy and spectrum of the test split under the classifier. */
static int compute(mt_ref *r, pd_model *clf, const char *data_dir, int F, int R, int K,
                   pd_error *err) {
    float *x = NULL, *logits = NULL;
    uint8_t *lab = NULL;
    int n = 0, rc = -1;
    if (pd_fashion_mnist_load(data_dir, 0, &x, &lab, &n, err)) return -1;
    const int N = 32;
    if (R > N || N % R) {
        pd_fail(err, "reference statistics: a %dx%d classifier cannot read the %dx%d data", R, R, N, N);
        goto done;
    }
    if (R < N) { /* a smaller classifier sees the data pooled, as it sees generated images */
        float *p = malloc(sizeof(float) * (size_t)n * R * R);
        if (!p || pd_avg_pool(p, x, n, 1, N, N, N / R, err)) {
            free(p);
            if (!p) pd_fail(err, "reference statistics: out of memory");
            goto done;
        }
        free(x);
        x = p;
    }
    r->features = malloc(sizeof(float) * (size_t)n * F);
    logits = malloc(sizeof(float) * (size_t)n * K);
    r->spectrum = calloc((size_t)pd_spectrum_bins(R), sizeof(double));
    if (!r->features || !logits || !r->spectrum) {
        pd_fail(err, "reference statistics: out of memory for %d images", n);
        goto done;
    }
    if (pd_classifier_features(clf, x, n, logits, r->features, err)) goto done;
    int *labels = malloc(sizeof(int) * (size_t)n);
    if (!labels) {
        pd_fail(err, "reference statistics: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) labels[i] = lab[i];
    r->accuracy = pd_class_accuracy(logits, labels, n, K);
    free(labels);
    if (pd_radial_power_spectrum(x, n, 1, R, r->spectrum, err)) goto done;
    r->n = n;
    rc = 0;
done:
    free(x), free(lab), free(logits);
    if (rc) {
        free(r->features), free(r->spectrum);
        r->features = NULL, r->spectrum = NULL;
    }
    return rc;
}

static int write_cache(const mt_ref *r, const char *path, const fingerprint *fp, pd_error *err) {
    if (make_parent(path, err)) return -1;
    const int F = r->F, bins = r->bins;
    float *mu = malloc(sizeof(float) * (size_t)F), *sg = malloc(sizeof(float) * (size_t)F * F);
    float *sp = malloc(sizeof(float) * (size_t)bins);
    if (!mu || !sg || !sp) {
        free(mu), free(sg), free(sp);
        return pd_fail(err, "%s: out of memory", path);
    }
    for (int i = 0; i < F; i++) mu[i] = (float)r->stats.mu[i];
    for (size_t i = 0; i < (size_t)F * F; i++) sg[i] = (float)r->stats.sigma[i];
    for (int k = 0; k < bins; k++) sp[k] = (float)r->spectrum[k];
    const char *names[4] = {"features", "mu", "sigma", "spectrum"};
    const int ndims[4] = {2, 1, 2, 1};
    const long long shapes[4][8] = {{r->n, F}, {F}, {F, F}, {bins}};
    const float *data[4] = {r->features, mu, sg, sp};
    char acc[64];
    snprintf(acc, sizeof acc, "%.17g", r->accuracy);
    const char *keys[] = {"pixdiff.ref", "version", "classifier.sha256", "classifier.path",
                          "data.images", "data.images.sha256", "data.labels",
                          "data.labels.sha256", "n", "feature_dim", "resolution", "accuracy"};
    const char *vals[] = {MT_REF_FORMAT, pd_version(), fp->clf_sha, fp->clf_path, fp->img_path,
                          fp->img_sha, fp->lab_path, fp->lab_sha, fp->n_s, fp->f_s, fp->r_s, acc};
    int rc = st_write(path, 4, names, ndims, shapes, data, (int)(sizeof keys / sizeof keys[0]),
                      keys, vals, err);
    free(mu), free(sg), free(sp);
    return rc;
}

int mt_ref_get(mt_ref *r, pd_model *clf, const char *path, const char *data_dir,
               void (*log)(void *, const char *), void *user, pd_error *err) {
    memset(r, 0, sizeof *r);
    const int F = pd_classifier_feature_dim(clf);
    if (F < 1) return pd_fail(err, "reference statistics: the model is not a classifier");
    const pd_unet_config *cfg = pd_model_config(clf);
    const int R = cfg->img_resolution, K = cfg->label_dim;
    if (cfg->in_channels != 1)
        return pd_fail(err, "reference statistics: the classifier reads %d channels; Fashion-MNIST has 1",
                       cfg->in_channels);
    fingerprint fp;
    memset(&fp, 0, sizeof fp);
    const char *sha = pd_model_sha256(clf);
    if (!sha || !*sha)
        return pd_fail(err, "reference statistics: the classifier has no file hash (load it from a file)");
    snprintf(fp.clf_sha, sizeof fp.clf_sha, "%s", sha);
    snprintf(fp.clf_path, sizeof fp.clf_path, "%s", pd_model_path(clf) ? pd_model_path(clf) : "");
    fashion_mnist_files(data_dir, 0, fp.img_path, fp.lab_path, sizeof fp.img_path);
    pd_error e = {{0}};
    if (core_sha256_file(fp.img_path, fp.img_sha, &e) || core_sha256_file(fp.lab_path, fp.lab_sha, &e))
        return pd_fail(err, "%s (Fashion-MNIST comes from the Debian package %s)", e.msg,
                       FASHION_MNIST_PACKAGE);
    snprintf(fp.f_s, sizeof fp.f_s, "%d", F);
    snprintf(fp.r_s, sizeof fp.r_s, "%d", R);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->F = F;
    r->R = R;
    r->bins = pd_spectrum_bins(R);

    char why[400] = "";
    double t0 = core_now();
    if (try_load(r, path, &fp, F, R, why, sizeof why) == 0) {
        if (pd_feature_stats_compute(&r->stats, r->features, r->n, F, err)) {
            mt_ref_free(r);
            return -1;
        }
        pg_log(log, user, "reference statistics: %s (%d images, %d features, %.2f s)", path, r->n,
              F, core_now() - t0);
        return 0;
    }
    pg_log(log, user, "reference statistics: computing them for %s: the cache %s is %s", fp.img_path,
          path, why);
    if (compute(r, clf, data_dir, F, R, K, err) ||
        pd_feature_stats_compute(&r->stats, r->features, r->n, F, err)) {
        mt_ref_free(r);
        return -1;
    }
    snprintf(fp.n_s, sizeof fp.n_s, "%d", r->n);
    pg_log(log, user, "reference statistics: %d images in %.1f s (classifier accuracy %.4f)", r->n,
          core_now() - t0, r->accuracy);
    if (write_cache(r, path, &fp, &e))
        pg_log(log, user, "reference statistics: not cached, using them from memory: %s", e.msg);
    else
        pg_log(log, user, "reference statistics: cached in %s", path);
    return 0;
}
