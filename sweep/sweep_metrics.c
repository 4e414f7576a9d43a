/* sweep_metrics.c — the one place where a sweep calls metric code (sweep.h sw_metrics_compute),
 * and the cache of trajectory references on disk (sw_ref_load / sw_ref_save).
 *
 * FD, KID (with its standard error), class accuracy, precision/recall (k = 3, sets of equal
 * size; metrics/precision_recall.c) and the spectral error all come from one
 * pd_eval pass over the cell's samples (metrics/: classifier features against the Fashion-MNIST
 * test split, spectra from FFTW); the trajectory error is pd_trajectory_error against the
 * reference solution from the same noise. A metric the spec does not ask for stays NaN, which
 * the report writes as null.
 *
 * A reference is written as two .npy files and then a .key file holding its settings; it is
 * used only when the .key matches exactly and both arrays have the expected shape, so a reference
 * from other settings, or one whose writer was killed before the .key, is recomputed.
 */
#include "core/util.h"
#include "sweep/sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int sw_metrics_compute(const sw_eval_ctx *e, const float *x, sw_metric_values *out, pd_error *err) {
    for (int m = 0; m < SW_METRIC_COUNT; m++)
        for (int k = 0; k < SW_MAX_COLUMNS; k++) out->v[m][k] = NAN;
    const sw_spec *s = e->spec;
    size_t count = (size_t)e->n * e->C * e->H * e->W;
    if (sw_spec_has_metric(s, SW_METRIC_TRAJECTORY)) {
        if (!e->reference) return pd_fail(err, "trajectory metric: no reference solution");
        pd_trajectory_error(x, e->reference, count, &out->v[SW_METRIC_TRAJECTORY][0],
                            &out->v[SW_METRIC_TRAJECTORY][1]);
    }
    int classifier = 0;
    for (int i = 0; i < s->n_metrics; i++) classifier |= sw_spec_metric_uses_classifier(s, s->metrics[i]);
    if (sw_spec_needs_inception(s)) {
        /* FID, KID and precision/recall on Inception features (metrics/fid_eval.c) */
        if (!e->inc || !e->fid_ref) return pd_fail(err, "inception metrics: no network or reference");
        float *f = malloc(sizeof(float) * (size_t)e->n * PD_INCEPTION_DIM);
        if (!f) return pd_fail(err, "inception metrics: out of memory");
        pd_kid_params kp = pd_kid_default_params();
        pd_fid_result r;
        int rc = pd_inception_features(e->inc, x, e->n, e->C, e->H, e->W, (pd_fid_prep)s->fid_prep, f, err) ||
                 pd_fid_compute(f, e->n, e->fid_ref, &kp,
                                sw_spec_has_metric(s, SW_METRIC_PRECISION_RECALL) ? 3 : 0, &r, err);
        free(f);
        if (rc) return -1;
        if (sw_spec_has_metric(s, SW_METRIC_FD)) out->v[SW_METRIC_FD][0] = r.fid;
        if (sw_spec_has_metric(s, SW_METRIC_KID)) {
            out->v[SW_METRIC_KID][0] = r.kid.kid;
            out->v[SW_METRIC_KID][1] = r.kid.se;
        }
        if (sw_spec_has_metric(s, SW_METRIC_PRECISION_RECALL)) {
            out->v[SW_METRIC_PRECISION_RECALL][0] = r.precision;
            out->v[SW_METRIC_PRECISION_RECALL][1] = r.recall;
        }
    }
    if (classifier) {
        if (!e->ev) return pd_fail(err, "classifier metrics: no evaluator");
        if (e->H != e->W) return pd_fail(err, "classifier metrics need square images, got %dx%d", e->W, e->H);
        pd_eval_reset(e->ev);
        pd_eval_result r;
        if (pd_eval_add(e->ev, x, e->n, e->C, e->H, e->labels, err) || pd_eval_finish(e->ev, &r, err))
            return -1;
        if (sw_spec_metric_uses_classifier(s, SW_METRIC_FD)) out->v[SW_METRIC_FD][0] = r.fd;
        if (sw_spec_metric_uses_classifier(s, SW_METRIC_KID)) {
            out->v[SW_METRIC_KID][0] = r.kid.kid;
            out->v[SW_METRIC_KID][1] = r.kid.se;
        }
        if (sw_spec_has_metric(s, SW_METRIC_ACCURACY)) out->v[SW_METRIC_ACCURACY][0] = r.accuracy;
        if (sw_spec_metric_uses_classifier(s, SW_METRIC_PRECISION_RECALL)) {
            out->v[SW_METRIC_PRECISION_RECALL][0] = r.precision;
            out->v[SW_METRIC_PRECISION_RECALL][1] = r.recall;
        }
        if (sw_spec_has_metric(s, SW_METRIC_SPECTRAL)) out->v[SW_METRIC_SPECTRAL][0] = r.spectral_error;
    }
    return 0;
}

/* ------------------------------------------------------------------ reference cache */

uint64_t sw_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void ref_paths(char *key_path, char *end_path, char *zero_path, size_t cap,
                      const char *out_dir, const char *key) {
    unsigned long long h = (unsigned long long)sw_hash(key);
    snprintf(key_path, cap, "%s/reference/%016llx.key", out_dir, h);
    snprintf(end_path, cap, "%s/reference/%016llx-end.npy", out_dir, h);
    snprintf(zero_path, cap, "%s/reference/%016llx-zero.npy", out_dir, h);
}

static int read_array(const char *path, int n, int C, int H, int W, float **out, pd_error *err) {
    int shape[4] = {0}, nd = 0;
    float *a = NULL;
    if (pd_npy_read(path, &a, shape, &nd, err)) return -1;
    if (nd != 4 || shape[0] != n || shape[1] != C || shape[2] != H || shape[3] != W) {
        free(a);
        return 0;
    }
    *out = a;
    return 1;
}

int sw_ref_load(const char *out_dir, const char *key, int n, int C, int H, int W, float **end,
                float **zero, pd_error *err) {
    char kp[1200], ep[1200], zp[1200];
    ref_paths(kp, ep, zp, sizeof kp, out_dir, key);
    *end = *zero = NULL;
    FILE *f = fopen(kp, "rb");
    if (!f) return 0;
    size_t klen = strlen(key);
    char *text = malloc(klen + 2);
    size_t got = text ? fread(text, 1, klen + 1, f) : 0;
    fclose(f);
    int match = text && got == klen && !memcmp(text, key, klen);
    free(text);
    if (!match) return 0; /* another reference with the same hash, or a torn file: recompute */
    pd_error e2;
    int a = read_array(ep, n, C, H, W, end, &e2);
    int b = a == 1 ? read_array(zp, n, C, H, W, zero, &e2) : 0;
    if (a == 1 && b == 1) return 1;
    free(*end);
    free(*zero);
    *end = *zero = NULL;
    (void)err;
    return 0; /* unreadable or wrong shape: recompute and overwrite */
}

int sw_ref_save(const char *out_dir, const char *key, int n, int C, int H, int W, const float *end,
                const float *zero, pd_error *err) {
    char dir[1100], kp[1200], ep[1200], zp[1200];
    snprintf(dir, sizeof dir, "%s/reference", out_dir);
    if (mkdir(dir, 0755) && errno != EEXIST) return pd_fail(err, "%s: %s", dir, strerror(errno));
    ref_paths(kp, ep, zp, sizeof kp, out_dir, key);
    remove(kp); /* the arrays change below: the old key must not vouch for them */
    int shape[4] = {n, C, H, W};
    if (pd_npy_write(ep, end, shape, 4, err) || pd_npy_write(zp, zero, shape, 4, err)) return -1;
    core_atomic_file af;
    if (core_atomic_open(&af, kp, err)) return -1;
    fputs(key, af.f);
    return core_atomic_commit(&af, err);
}
