/* test_classifier.c — the feature classifier (classifier/classifier.c) and its training objective
 * (distill/objective_classify.c).
 *
 * Checks, with their tolerances:
 *   - forward: logits and features of a small net (2 channels, 16x16, widths 8/16/24, 2 convs
 *     per stage, F 16, 5 classes, every weight random) and of the shipped architecture (32x32,
 *     32/64/128) against the independent double reference tests/ref_classifier.c: max rel err
 *     <= 1e-4 (float vs double, tu_compare);
 *   - backward, L = sum w * logits: dL/dx at 48 pixels and dL/dtheta at 3 entries of every tensor
 *     against central differences of the reference (step 1e-5; per tensor max|g - fd| over
 *     max|fd|, floored at 1e-3 of the largest FD) <= 2e-3; with dropout (p = 0.3, train) against
 *     float central differences of the float forward with the same masks <= 2e-2;
 *   - cross-entropy: value and gradient against central differences (<= 1e-3), log K for equal
 *     logits, finite for logits of 1e4, argmax count;
 *   - features and logits bit-identical in any batch size, on 1 or 2 threads, and through
 *     pd_classifier_features (64-image chunks);
 *   - save/load round trip (config, tensor names, bits, outputs), strict loading, config errors,
 *     and a classifier refused as a denoiser;
 *   - training through the base trainer on synthetic 3-class data: the eval loss must fall below
 *     a third of its start and the accuracy reach 90%; a checkpoint resumes bit-exactly;
 *   - the shipped models/fashion-classifier.safetensors, when present: >= 89% on the first 3000
 *     t10k images.
 */
#include "pixdiff.h"
#include "ref_classifier.h"
#include "testutil.h"
#include "core/safetensors.h"
#include "distill/objective_classify.h"
#include "distill/train.h"
#include "classifier/classifier.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 2
#define SC 2
#define SR 16
#define K 5
#define IMG (SC * SR * SR)

static pd_unet_config small_cfg(float dropout) {
    pd_unet_config c = pd_unet_config_default();
    snprintf(c.arch, sizeof c.arch, "classifier");
    snprintf(c.kind, sizeof c.kind, "classifier");
    c.img_resolution = SR;
    c.in_channels = SC;
    c.label_dim = c.out_channels = K;
    c.model_channels = 8;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    c.channel_mult[0] = 1;
    c.channel_mult[1] = 2;
    c.channel_mult[2] = 3;
    c.n_levels = 3;
    c.num_blocks = 2;
    c.channel_mult_emb = 2;
    memset(c.attn_resolutions, 0, sizeof c.attn_resolutions);
    c.n_attn = 0;
    c.augment_dim = 0;
    c.dropout = dropout;
    return c;
}

/* The shipped architecture (configs/train/fashion-classifier.yaml). */
static pd_unet_config fashion_cfg(void) {
    pd_unet_config c = small_cfg(0.1f);
    c.img_resolution = 32;
    c.in_channels = 1;
    c.label_dim = c.out_channels = 10;
    c.model_channels = 32;
    c.channel_mult[2] = 4;
    c.channel_mult_emb = 4;
    return c;
}

static pd_model *create(const pd_unet_config *c, uint64_t seed) {
    pd_model *m;
    pd_error err;
    if (pd_model_create(&m, c, seed, &err)) {
        printf("pd_model_create: %s\n", err.msg);
        exit(1);
    }
    return m;
}

static float x[N * IMG], w[N * K];
static double xd[N * IMG], wd[N * K];

static double ref_loss(const pd_model *m, const double *params, const double *xx) {
    double lg[N * K];
    if (ref_classifier(m, params, xx, N, lg, NULL)) exit(1);
    double L = 0;
    for (int j = 0; j < N * K; j++) L += wd[j] * lg[j];
    return L;
}

/* ------------------------------------------------------------------ forward */

static void check_forward(const pd_unet_config *c, const char *tag, int n) {
    pd_model *m = create(c, 5);
    int F = clf_feature_dim(m), Kc = clf_num_classes(m);
    size_t img = (size_t)c->in_channels * c->img_resolution * c->img_resolution;
    float *xi = malloc(n * img * sizeof *xi), *lg = malloc((size_t)n * Kc * sizeof *lg);
    float *ft = malloc((size_t)n * F * sizeof *ft);
    double *xr = malloc(n * img * sizeof *xr), *lr = malloc((size_t)n * Kc * sizeof *lr);
    double *fr = malloc((size_t)n * F * sizeof *fr);
    tu_fill(xi, n * img, 3, 1.0f);
    for (size_t j = 0; j < n * img; j++) xr[j] = xi[j];
    clf_run *r;
    pd_error err;
    if (clf_run_create(&r, m, n, 0, &err) || clf_forward(r, lg, ft, xi, n, NULL, &err)) {
        printf("forward: %s\n", err.msg);
        exit(1);
    }
    ref_classifier(m, NULL, xr, n, lr, fr);
    char name[96];
    snprintf(name, sizeof name, "%s: logits vs double reference", tag);
    tu_compare(name, lg, lr, (size_t)n * Kc, 1e-4);
    snprintf(name, sizeof name, "%s: features vs double reference", tag);
    tu_compare(name, ft, fr, (size_t)n * F, 1e-4);
    /* keep = 1 (training layout) gives the same numbers as the inference layout */
    clf_run *rk;
    float *lg2 = malloc((size_t)n * Kc * sizeof *lg2);
    clf_run_create(&rk, m, n, 1, &err);
    clf_forward(rk, lg2, NULL, xi, n, NULL, &err);
    tu_check(!memcmp(lg, lg2, (size_t)n * Kc * sizeof *lg), "%s: keep=1 run gives the same bits "
             "as keep=0", tag);
    printf("%s: %zu parameters, %.4f GFLOP/image, run %.1f MiB (keep 0, batch %d)\n", tag,
           pd_model_param_count(m), pd_model_gflops(m, 0), clf_run_bytes(r) / 1048576.0, n);
    clf_run_free(r);
    clf_run_free(rk);
    free(xi), free(lg), free(ft), free(xr), free(lr), free(fr), free(lg2);
    pd_model_free(m);
}

/* ------------------------------------------------------------------ backward */

static void check_backward(void) {
    pd_unet_config c = small_cfg(0);
    pd_model *m = create(&c, 11);
    size_t np = pd_model_param_count(m);
    float *dx = calloc(N * IMG, sizeof *dx), *dp = calloc(np, sizeof *dp);
    clf_run *r;
    pd_error err;
    float lg[N * K];
    if (clf_run_create(&r, m, N, 1, &err) || clf_forward(r, lg, NULL, x, N, NULL, &err) ||
        clf_backward(r, dx, dp, w, &err)) {
        printf("backward: %s\n", err.msg);
        exit(1);
    }
    clf_run_free(r);
    {   /* a keep = 0 run refuses the backward */
        clf_run *ri;
        clf_run_create(&ri, m, N, 0, &err);
        clf_forward(ri, lg, NULL, x, N, NULL, &err);
        tu_check(clf_backward(ri, dx, NULL, w, &err) != 0, "keep=0 backward refused: %s", err.msg);
        clf_run_free(ri);
    }

    enum { NX = 48 };
    float gx[NX];
    double fx[NX], *xp = malloc(sizeof(double) * N * IMG);
    for (int k = 0; k < NX; k++) {
        size_t at = (size_t)((k * 2654435761u) % (N * IMG));
        memcpy(xp, xd, sizeof(double) * N * IMG);
        double h = 1e-5;
        xp[at] = xd[at] + h;
        double lp = ref_loss(m, NULL, xp);
        xp[at] = xd[at] - h;
        double lm = ref_loss(m, NULL, xp);
        fx[k] = (lp - lm) / (2 * h);
        gx[k] = dx[at];
    }
    tu_compare("dL/dx (48 pixels) vs FD", gx, fx, NX, 2e-3);
    free(xp);

    int nt = m->n_tensors, ns = 3 * nt;
    double *pd = malloc(sizeof(double) * np), *fd = malloc(sizeof(double) * ns);
    float *g = malloc(sizeof(float) * ns);
    for (size_t j = 0; j < np; j++) pd[j] = m->params[j];
    for (int t = 0; t < nt; t++)
        for (int q = 0; q < 3; q++) {
            const unet_tensor_info *ti = &m->tensors[t];
            size_t at = ti->offset + (q == 0 ? 0 : q == 1 ? ti->numel - 1
                                                          : (t * 7919u + 17) % ti->numel);
            double h = 1e-5, keep = pd[at];
            pd[at] = keep + h;
            double lp = ref_loss(m, pd, xd);
            pd[at] = keep - h;
            double lm = ref_loss(m, pd, xd);
            pd[at] = keep;
            fd[3 * t + q] = (lp - lm) / (2 * h);
            g[3 * t + q] = dp[at];
        }
    double gmax = 0;
    for (int k = 0; k < ns; k++) gmax = fmax(gmax, fabs(fd[k]));
    double worst = 0;
    int wt = 0;
    for (int t = 0; t < nt; t++) {
        double e = 0, s = 1e-3 * gmax;
        for (int q = 0; q < 3; q++) {
            e = fmax(e, fabs(g[3 * t + q] - fd[3 * t + q]));
            s = fmax(s, fabs(fd[3 * t + q]));
        }
        if (e / s > worst) { worst = e / s; wt = t; }
    }
    tu_check(worst <= 2e-3 && gmax > 0, "dL/dtheta vs FD, 3 entries of each of %d tensors: worst "
             "rel err %.3e in %s (tol 2e-3)", nt, worst, m->tensors[wt].name);
    free(pd), free(fd), free(g), free(dx), free(dp);
    pd_model_free(m);
}

/* Float loss of the float forward with fixed dropout masks (seed/stream fixed per call). */
static double float_loss(pd_model *m, clf_run *r, const float *xx, const clf_opts *o) {
    float lg[N * K];
    pd_error err;
    clf_forward(r, lg, NULL, xx, N, o, &err);
    double L = 0;
    for (int j = 0; j < N * K; j++) L += wd[j] * lg[j];
    (void)m;
    return L;
}

static void check_dropout(void) {
    pd_unet_config c = small_cfg(0.3f);
    pd_model *m = create(&c, 12);
    size_t np = pd_model_param_count(m);
    float *dx = calloc(N * IMG, sizeof *dx), *dp = calloc(np, sizeof *dp);
    clf_run *r;
    pd_error err;
    clf_opts o = {1, 99, 7};
    float lg[N * K], li[N * K];
    clf_run_create(&r, m, N, 1, &err);
    clf_forward(r, li, NULL, x, N, NULL, &err);
    clf_forward(r, lg, NULL, x, N, &o, &err);
    int differs = memcmp(lg, li, sizeof lg) != 0;
    tu_check(differs, "dropout (p 0.3, train) changes the logits; inference does not drop");
    clf_backward(r, dx, dp, w, &err);
    /* FD on x and on fc/stem weights, in float with the same masks. */
    enum { NS = 24 };
    float got[NS];
    double fd[NS];
    float *xp = malloc(sizeof x);
    int fc = unet_tensor_index(m, "clf.fc.weight"), stem = unet_tensor_index(m, "clf.stem.weight");
    for (int k = 0; k < NS; k++) {
        if (k < 8) {
            size_t at = (size_t)((k * 2654435761u) % (N * IMG));
            const float h = 5e-2f;
            memcpy(xp, x, sizeof x);
            xp[at] = x[at] + h;
            double lp = float_loss(m, r, xp, &o);
            xp[at] = x[at] - h;
            double lm = float_loss(m, r, xp, &o);
            fd[k] = (lp - lm) / (2 * h);
            got[k] = dx[at];
        } else {
            const unet_tensor_info *ti = &m->tensors[k < 16 ? fc : stem];
            size_t at = ti->offset + (k * 7919u) % ti->numel;
            const float h = 1e-2f, keep = m->params[at];
            m->params[at] = keep + h;
            double lp = float_loss(m, r, x, &o);
            m->params[at] = keep - h;
            double lm = float_loss(m, r, x, &o);
            m->params[at] = keep;
            fd[k] = (lp - lm) / (2 * h);
            got[k] = dp[at];
        }
    }
    tu_compare("dropout: dL/dx, dL/d(fc, stem) vs float FD, same masks", got, fd, NS, 2e-2);
    free(xp), free(dx), free(dp);
    clf_run_free(r);
    pd_model_free(m);
}

/* ------------------------------------------------------------------ cross-entropy */

static void check_cross_entropy(void) {
    enum { n = 4, Kc = 5 };
    float z[n * Kc], g[n * Kc];
    int y[n] = {0, 3, 4, 2};
    tu_fill(z, n * Kc, 21, 3.0f);
    int correct;
    double L = tr_cross_entropy(g, z, y, n, Kc, &correct);
    /* value in double from the definition */
    double ref = 0;
    int hits = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        int best = 0;
        for (int k = 0; k < Kc; k++) {
            s += exp((double)z[i * Kc + k]);
            if (z[i * Kc + k] > z[i * Kc + best]) best = k;
        }
        ref += (log(s) - z[i * Kc + y[i]]) / n;
        hits += best == y[i];
    }
    float Lf = (float)L;
    tu_compare("cross-entropy value vs definition", &Lf, &ref, 1, 1e-6);
    tu_check(correct == hits, "cross-entropy: %d of %d argmax hits (expected %d)", correct, n, hits);
    double fd[n * Kc];
    for (int j = 0; j < n * Kc; j++) {
        float keep = z[j];
        const float h = 1e-2f;
        z[j] = keep + h;
        double lp = tr_cross_entropy(NULL, z, y, n, Kc, NULL);
        z[j] = keep - h;
        double lm = tr_cross_entropy(NULL, z, y, n, Kc, NULL);
        z[j] = keep;
        fd[j] = (lp - lm) / (2.0 * (double)h);
    }
    tu_compare("cross-entropy gradient vs FD", g, fd, n * Kc, 1e-3);
    float eq[Kc] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    int y0 = 2;
    double Le = tr_cross_entropy(NULL, eq, &y0, 1, Kc, NULL);
    tu_check(fabs(Le - log(5.0)) < 1e-12, "equal logits: CE = log K (%.12f)", Le);
    float big[Kc] = {1e4f, -1e4f, 0, 0, 3e4f};
    float gb[Kc];
    int y4 = 4, y1 = 1;
    double Lb = tr_cross_entropy(gb, big, &y4, 1, Kc, NULL);
    double Lw = tr_cross_entropy(NULL, big, &y1, 1, Kc, NULL);
    int fin = 1;
    for (int k = 0; k < Kc; k++) fin &= isfinite(gb[k]);
    tu_check(Lb == 0 && fabs(Lw - 4e4) < 1e-6 && fin, "logits of 1e4: CE %g and %g, finite "
             "gradient", Lb, Lw);
}

/* ------------------------------------------------------------------ batch invariance */

static void check_batch_invariance(void) {
    pd_unet_config c = small_cfg(0);
    pd_model *m = create(&c, 13);
    enum { B = 70 };
    int F = clf_feature_dim(m);
    float *xs = malloc(sizeof(float) * B * IMG);
    float *fa = malloc(sizeof(float) * B * F), *fb = malloc(sizeof(float) * B * F);
    float *la = malloc(sizeof(float) * B * K), *lb = malloc(sizeof(float) * B * K);
    tu_fill(xs, (size_t)B * IMG, 31, 1.0f);
    pd_error err;
    /* one image at a time, 1 thread */
    pd_set_threads(1);
    clf_run *r1;
    clf_run_create(&r1, m, 1, 0, &err);
    for (int i = 0; i < B; i++)
        clf_forward(r1, la + i * K, fa + (size_t)i * F, xs + (size_t)i * IMG, 1, NULL, &err);
    clf_run_free(r1);
    /* batches of 7, 2 threads */
    pd_set_threads(2);
    clf_run *r7;
    clf_run_create(&r7, m, 7, 1, &err);
    for (int i = 0; i < B; i += 7)
        clf_forward(r7, lb + i * K, fb + (size_t)i * F, xs + (size_t)i * IMG, 7, NULL, &err);
    clf_run_free(r7);
    tu_check(!memcmp(fa, fb, sizeof(float) * B * F) && !memcmp(la, lb, sizeof(float) * B * K),
             "features and logits: batch 1 on 1 thread == batch 7 on 2 threads, bit for bit");
    memset(fb, 0, sizeof(float) * B * F);
    memset(lb, 0, sizeof(float) * B * K);
    int rc = pd_classifier_features(m, xs, B, lb, fb, &err);
    tu_check(rc == 0 && !memcmp(fa, fb, sizeof(float) * B * F) &&
             !memcmp(la, lb, sizeof(float) * B * K),
             "pd_classifier_features (%d images, 64-image chunks) == batch 1, bit for bit", B);
    rc = pd_classifier_features(m, xs, 3, NULL, fb, &err);
    tu_check(rc == 0 && !memcmp(fa, fb, sizeof(float) * 3 * F), "pd_classifier_features with "
             "logits NULL, 3 images");
    free(xs), free(fa), free(fb), free(la), free(lb);
    pd_model_free(m);
}

/* ------------------------------------------------------------------ files and configs */

static void check_files(void) {
    pd_unet_config c = fashion_cfg();
    pd_model *m = create(&c, 17);
    pd_error err;
    char path[] = "test_classifier_model.safetensors";
    int rc = pd_model_save(m, path, &err);
    tu_check(rc == 0, "save a classifier model%s%s", rc ? ": " : "", rc ? err.msg : "");
    pd_model *l = NULL;
    rc = pd_model_load(&l, path, &err);
    tu_check(rc == 0, "load it back%s%s", rc ? ": " : "", rc ? err.msg : "");
    if (rc) return;
    tu_check(pd_model_param_count(l) == pd_model_param_count(m) &&
             !memcmp(l->params, m->params, m->n_params * sizeof(float)),
             "round trip: %zu parameters bit-identical", pd_model_param_count(l));
    char j1[4096], j2[4096];
    unet_config_to_json(&m->cfg, j1, sizeof j1);
    unet_config_to_json(&l->cfg, j2, sizeof j2);
    tu_check(!strcmp(j1, j2) && !strcmp(l->cfg.arch, "classifier"), "round trip: config equal");
    static const char *const names[] = {
        "clf.stem.weight", "clf.stem.bias", "clf.s0.b0.norm.weight", "clf.s0.b0.norm.bias",
        "clf.s0.b0.conv.weight", "clf.s0.b0.conv.bias", "clf.s0.b1.norm.weight",
        "clf.s0.b1.norm.bias", "clf.s0.b1.conv.weight", "clf.s0.b1.conv.bias",
        "clf.s1.b0.norm.weight", "clf.s1.b0.norm.bias", "clf.s1.b0.conv.weight",
        "clf.s1.b0.conv.bias", "clf.s1.b1.norm.weight", "clf.s1.b1.norm.bias",
        "clf.s1.b1.conv.weight", "clf.s1.b1.conv.bias", "clf.s2.b0.norm.weight",
        "clf.s2.b0.norm.bias", "clf.s2.b0.conv.weight", "clf.s2.b0.conv.bias",
        "clf.s2.b1.norm.weight", "clf.s2.b1.norm.bias", "clf.s2.b1.conv.weight",
        "clf.s2.b1.conv.bias", "clf.out_norm.weight", "clf.out_norm.bias", "clf.fc.weight",
        "clf.fc.bias", "clf.head.weight", "clf.head.bias", NULL};
    int ok = 1, shape[4], nd, i = 0;
    for (; names[i]; i++) {
        const char *nm = pd_model_tensor(l, i, shape, &nd);
        ok &= nm && !strcmp(nm, names[i]);
    }
    ok &= pd_model_tensor(l, i, shape, &nd) == NULL;
    pd_model_tensor(l, 4, shape, &nd);
    ok &= nd == 4 && shape[0] == 32 && shape[1] == 32 && shape[2] == 3;
    pd_model_tensor(l, 28, shape, &nd);
    ok &= nd == 2 && shape[0] == 128 && shape[1] == 128;
    tu_check(ok, "tensor table: the 32 documented names in order, conv [32,32,3,3], fc [128,128]");
    size_t np = pd_model_param_count(l);
    tu_check(np > 200000 && np < 500000 && pd_classifier_feature_dim(l) == 128,
             "shipped architecture: %zu parameters (0.2-0.5 M), F = %d", np,
             pd_classifier_feature_dim(l));
    double gf = pd_model_gflops(l, 0);
    double want = 2e-9 * (9.0 * 32 * 1024 + 9.0 * 32 * 32 * 1024 * 2 + 9.0 * 32 * 64 * 256 +
                          9.0 * 64 * 64 * 256 + 9.0 * 64 * 128 * 64 + 9.0 * 128 * 128 * 64 +
                          128.0 * 128 + 128.0 * 10);
    tu_check(fabs(gf - want) < 1e-12, "GFLOP %.6f (counted by hand %.6f)", gf, want);
    float xi[2 * 1024], f1[2 * 128], f2[2 * 128];
    tu_fill(xi, 2 * 1024, 41, 1.0f);
    rc = pd_classifier_features(m, xi, 2, NULL, f1, &err) ||
         pd_classifier_features(l, xi, 2, NULL, f2, &err);
    tu_check(rc == 0 && !memcmp(f1, f2, sizeof f1), "loaded model: same features bit for bit");

    /* strict loading: a missing tensor, an extra tensor */
    st_file f;
    if (st_read(&f, path, &err) == 0) {
        const char *nm[64];
        int ndims[64];
        long long shp[64][8];
        const float *data[64];
        int n = 0;
        for (int k = 0; k < f.n_tensors && n < 63; k++) {
            if (!strcmp(f.tensors[k].name, "clf.fc.bias")) continue;
            nm[n] = f.tensors[k].name;
            ndims[n] = f.tensors[k].ndim;
            memcpy(shp[n], f.tensors[k].shape, sizeof shp[n]);
            data[n++] = f.tensors[k].data;
        }
        const char *keys[1] = {"pixdiff.config"}, *vals[1] = {st_meta(&f, "pixdiff.config")};
        st_write("test_classifier_bad.safetensors", n, nm, ndims, (const long long(*)[8])shp, data,
                 1, keys, vals, &err);
        pd_model *b = NULL;
        rc = pd_model_load(&b, "test_classifier_bad.safetensors", &err);
        tu_check(rc != 0 && strstr(err.msg, "clf.fc.bias") && strstr(err.msg, "missing"),
                 "a file without clf.fc.bias is refused: %s", err.msg);
        pd_model_free(b);
        static float extra[4];
        nm[n] = "clf.extra.resample_filter";
        ndims[n] = 1;
        shp[n][0] = 4;
        data[n++] = extra;
        /* put the bias back so only the extra tensor is wrong */
        const st_tensor *bias = st_find(&f, "clf.fc.bias");
        nm[n] = bias->name;
        ndims[n] = 1;
        shp[n][0] = bias->shape[0];
        data[n++] = bias->data;
        st_write("test_classifier_bad.safetensors", n, nm, ndims, (const long long(*)[8])shp, data,
                 1, keys, vals, &err);
        rc = pd_model_load(&b, "test_classifier_bad.safetensors", &err);
        tu_check(rc != 0 && strstr(err.msg, "unexpected tensor"),
                 "a file with an extra tensor is refused: %s", err.msg);
        pd_model_free(b);
        st_free(&f);
        unlink("test_classifier_bad.safetensors");
    }
    unlink(path);

    /* a classifier is not a denoiser, a denoiser is not a classifier */
    pd_denoiser *d = NULL;
    rc = pd_denoiser_from_model(&d, l, 0, &err);
    tu_check(rc != 0, "pd_denoiser_from_model refuses a classifier: %s", err.msg);
    pd_denoiser_free(d);
    pd_unet_config sc;
    pd_unet_config_preset(&sc, "tiny", &err);
    pd_model *u = create(&sc, 1);
    float lg[10];
    rc = pd_classifier_features(u, xi, 1, lg, NULL, &err);
    tu_check(rc != 0 && pd_classifier_feature_dim(u) == -1,
             "pd_classifier_features refuses a SongUNet: %s", err.msg);
    pd_model_free(u);
    pd_model_free(l);
    pd_model_free(m);

    /* config errors name their key */
    struct { const char *key; pd_unet_config c; } bad[6];
    for (int k = 0; k < 6; k++) bad[k].c = fashion_cfg();
    bad[0].key = "attn_resolutions"; bad[0].c.n_attn = 1; bad[0].c.attn_resolutions[0] = 8;
    bad[1].key = "out_channels"; bad[1].c.out_channels = 3;
    bad[2].key = "kind"; snprintf(bad[2].c.kind, sizeof bad[2].c.kind, "denoiser");
    bad[3].key = "img_resolution"; bad[3].c.img_resolution = 30;
    /* widths 52, 104, 208: the last has 32 groups, and 208 is not a multiple of 32 */
    bad[4].key = "model_channels"; bad[4].c.model_channels = 52;
    bad[5].key = "kind";
    pd_unet_config sk = pd_unet_config_default();
    snprintf(sk.kind, sizeof sk.kind, "classifier");
    bad[5].c = sk;
    for (int k = 0; k < 6; k++) {
        pd_model *b = NULL;
        rc = pd_model_create(&b, &bad[k].c, 1, &err);
        tu_check(rc != 0 && strstr(err.msg, bad[k].key), "bad config (%s) refused: %s", bad[k].key,
                 err.msg);
        pd_model_free(b);
    }
}

/* ------------------------------------------------------------------ training */

static const char *train_yaml =
    "model:\n"
    "  arch: classifier\n"
    "  kind: classifier\n"
    "  img_resolution: 8\n"
    "  in_channels: 1\n"
    "  out_channels: 3\n"
    "  label_dim: 3\n"
    "  model_channels: 8\n"
    "  channel_mult: [1, 2]\n"
    "  num_blocks: 1\n"
    "  channel_mult_emb: 2\n"
    "  attn_resolutions: []\n"
    "  augment_dim: 0\n"
    "  dropout: 0.1\n"
    "data:\n"
    "  kind: png-folder\n"
    "  path: unused\n"
    "  flip: true\n"
    "optimizer:\n"
    "  lr: 0.01\n"
    "  warmup_images: 64\n"
    "ema:\n"
    "  halflife_images: 100\n"
    "training:\n"
    "  batch: 16\n"
    "  seed: 3\n";

/* n 8x8 images of 3 classes (horizontal bars, vertical bars, a box), shifted, varied contrast. */
static void synthetic(ds_dataset *ds, int n) {
    memset(ds, 0, sizeof *ds);
    ds->n = n;
    ds->C = 1;
    ds->H = ds->W = 8;
    ds->images = malloc((size_t)n * 64 * sizeof(float));
    ds->labels = malloc(n);
    ds->n_classes = 3;
    snprintf(ds->source, sizeof ds->source, "synthetic");
    for (int i = 0; i < n; i++) {
        int cls = i % 3, s = (i / 3) % 3;
        float amp = 0.4f + 0.15f * (i % 5);
        ds->labels[i] = (uint8_t)cls;
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++) {
                int on = cls == 0   ? ((r + s) % 4 < 2)
                         : cls == 1 ? ((c + s) % 4 < 2)
                                    : (r >= 1 + s && r < 5 + s && c >= 2 && c < 6);
                ds->images[i * 64 + r * 8 + c] = on ? amp : -amp;
            }
    }
}

static void check_training(void) {
    tr_config cfg;
    pd_error err;
    if (tr_config_parse(&cfg, train_yaml, "classifier.yaml", &err)) {
        tu_check(0, "parse the classifier training config: %s", err.msg);
        return;
    }
    ds_dataset ds;
    synthetic(&ds, 96);
    tr_trainer *t = NULL;
    if (tr_create(&t, &cfg, &ds, &err)) {
        tu_check(0, "tr_create (classifier): %s", err.msg);
        return;
    }
    tu_check(t->cls != NULL && t->run == NULL, "a classifier model gets the classify objective");
    double l0, l1, acc0, acc1;
    tr_eval_loss(t, 16, 1, &l0, &err);
    tr_classify_accuracy(t->cls, &ds, &acc0, NULL, &err);
    for (int s = 0; s < 60; s++)
        if (tr_step(t, NULL, &err)) {
            tu_check(0, "tr_step: %s", err.msg);
            return;
        }
    tr_eval_loss(t, 16, 1, &l1, &err);
    tr_classify_accuracy(t->cls, &ds, &acc1, NULL, &err);
    tu_check(l1 < l0 / 3 && acc1 >= 0.9, "60 steps of batch 16: eval cross-entropy %.4f -> %.4f, "
             "accuracy %.1f%% -> %.1f%%", l0, l1, 100 * acc0, 100 * acc1);

    /* checkpoint, resume in a fresh trainer, one more step on both: the same bits */
    const char *ck = "test_classifier_ckpt.safetensors";
    tr_trainer *r = NULL;
    int rc = tr_save_checkpoint(t, ck, &err) || tr_create(&r, &cfg, &ds, &err) ||
             tr_load_checkpoint(r, ck, &err) || tr_step(t, NULL, &err) || tr_step(r, NULL, &err);
    tu_check(rc == 0 && !memcmp(t->model->params, r->model->params, t->n_params * sizeof(float)) &&
             !memcmp(t->ema, r->ema, t->n_params * sizeof(float)),
             "classifier checkpoint resumes bit-exactly%s%s", rc ? ": " : "", rc ? err.msg : "");
    /* the export is a loadable classifier holding the EMA weights */
    const char *ex = "test_classifier_export.safetensors";
    pd_model *e = NULL;
    rc = tr_export(t, ex, &err) || pd_model_load(&e, ex, &err);
    tu_check(rc == 0 && !memcmp(e->params, t->ema, t->n_params * sizeof(float)) &&
             pd_classifier_feature_dim(e) == 16, "export: a classifier model with the EMA weights");
    pd_model_free(e);
    unlink(ck);
    unlink(ex);
    tr_free(r);
    tr_free(t);
    tr_config_free(&cfg);
    ds_free(&ds);

    /* a classifier with a wrong class count for the data is refused before training */
    const char *bad = "model:\n  arch: classifier\n  kind: classifier\n  img_resolution: 8\n"
                      "  in_channels: 1\n  out_channels: 4\n  label_dim: 4\n  model_channels: 8\n"
                      "  channel_mult: [1, 2]\n  attn_resolutions: []\n"
                      "data:\n  kind: png-folder\n  path: unused\n";
    synthetic(&ds, 9);
    rc = tr_config_parse(&cfg, bad, "bad.yaml", &err) || tr_create(&t, &cfg, &ds, &err);
    tu_check(rc != 0 && strstr(err.msg, "label_dim"), "4 classes on 3-class data refused: %s",
             err.msg);
    tr_config_free(&cfg);
    ds_free(&ds);
}

/* ------------------------------------------------------------------ the shipped model */

/* models/fashion-classifier.safetensors on the first 3000 t10k images (the whole split is
 * measured by the trainer and reported in docs; 3000 keep this test to a few seconds): at least
 * 89%, the F = 128 features finite. Skipped when the file or the data is absent. */
static void check_shipped(void) {
    const char *path = PD_SOURCE_DIR "/models/fashion-classifier.safetensors";
    if (access(path, R_OK)) {
        printf("shipped classifier %s: not present, skipped\n", path);
        return;
    }
    pd_error err;
    ds_dataset test;
    if (ds_load_fashion_mnist(&test, NULL, 0, &err)) {
        printf("shipped classifier: no Fashion-MNIST (%s), skipped\n", err.msg);
        return;
    }
    pd_model *m = NULL;
    int rc = pd_model_load(&m, path, &err);
    tu_check(rc == 0, "load %s%s%s", path, rc ? ": " : "", rc ? err.msg : "");
    if (rc) {
        ds_free(&test);
        return;
    }
    enum { NT = 3000 };
    int F = pd_classifier_feature_dim(m);
    float *lg = malloc(sizeof(float) * NT * 10), *ft = malloc(sizeof(float) * NT * (F > 0 ? F : 1));
    rc = pd_classifier_features(m, test.images, NT, lg, ft, &err);
    int hits = 0, finite = 1;
    for (int i = 0; i < NT && !rc; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (lg[i * 10 + k] > lg[i * 10 + best]) best = k;
        hits += best == test.labels[i];
    }
    for (size_t j = 0; j < (size_t)NT * F && !rc; j++) finite &= isfinite(ft[j]);
    tu_check(rc == 0 && F == 128 && finite && hits >= 0.89 * NT, "shipped classifier: %.2f%% of "
             "the first %d t10k images right (>= 89%%), %d finite features each", 100.0 * hits / NT,
             NT, F);
    free(lg), free(ft);
    pd_model_free(m);
    ds_free(&test);
}

int main(void) {
    pd_set_threads(2);
    tu_fill(x, N * IMG, 1, 1.0f);
    tu_fill(w, N * K, 2, 1.0f);
    for (int j = 0; j < N * IMG; j++) xd[j] = x[j];
    for (int j = 0; j < N * K; j++) wd[j] = w[j];
    pd_unet_config s = small_cfg(0), f = fashion_cfg();
    check_forward(&s, "small net", 3);
    check_forward(&f, "fashion-classifier net", 2);
    check_backward();
    check_dropout();
    check_cross_entropy();
    check_batch_invariance();
    check_files();
    check_training();
    check_shipped();
    return tu_finish();
}
