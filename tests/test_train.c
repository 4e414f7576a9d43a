/* test_train — the base trainer (distill/): Adam against a naive double twin, warm-up, the NaN/Inf
 * guard, clipping, EDM's EMA formula; the EDM loss gradient (including its 2 lambda (D - y) / B
 * factor) against central finite differences of the loss on a tiny model; that a tiny model's
 * loss falls on a synthetic set; bit-exact resume (K steps vs K/2 + checkpoint + K/2); corrupt or
 * mismatched checkpoints failing cleanly; strict YAML errors naming file, line and key; the
 * shipped configs; the data loaders (Fashion-MNIST when installed, a PNG folder) and the shuffle;
 * export of the EMA weights as a loadable model. Tiny 8x8 nets keep it to a few seconds.
 */
#include "distill/dataset.h"
#include "distill/edm_init.h"
#include "distill/optim.h"
#include "distill/train.h"
#include "distill/train_config.h"
#include "core/rng.h"
#include "core/util.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An 8x8 gray, 3-class model: two levels, attention at 4x4, dropout on (masks are part of the
 * reproducibility being tested). */
static const char *tiny_yaml =
    "model:\n"                                   /* 1 */
    "  img_resolution: 8\n"                      /* 2 */
    "  in_channels: 1\n"                         /* 3 */
    "  out_channels: 1\n"                        /* 4 */
    "  label_dim: 3\n"                           /* 5 */
    "  model_channels: 8\n"                      /* 6 */
    "  channel_mult: [1, 2]\n"                   /* 7 */
    "  channel_mult_emb: 2\n"                    /* 8 */
    "  num_blocks: 1\n"                          /* 9 */
    "  attn_resolutions: [4]\n"                  /* 10 */
    "  dropout: 0.2\n"                           /* 11 */
    "  augment_dim: 0\n"                         /* 12 */
    "data:\n"                                    /* 13 */
    "  kind: png-folder\n"                       /* 14 */
    "  path: /synthetic\n"                       /* 15 (the test passes its own data) */
    "  flip: true\n"                             /* 16 */
    "optimizer:\n"                               /* 17 */
    "  lr: 0.004\n"                              /* 18 */
    "  warmup_images: 64\n"                      /* 19 */
    "  grad_clip: 100\n"                         /* 20 */
    "ema:\n"                                     /* 21 */
    "  halflife_images: 200\n"                   /* 22 */
    "training:\n"                                /* 23 */
    "  batch: 8\n"                               /* 24 */
    "  seed: 7\n";                               /* 25 */

/* ------------------------------------------------------------------ optimiser */

/* The naive double twin of opt_adam_step: Kingma & Ba Alg. 1 with bias-corrected moments. */
static void adam_naive(double *p, double *m, double *v, const double *g, size_t n, double lr,
                       double b1, double b2, double eps, long long t) {
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        double mh = m[i] / (1 - pow(b1, (double)t)), vh = v[i] / (1 - pow(b2, (double)t));
        p[i] -= lr * mh / (sqrt(vh) + eps);
    }
}

static void test_optim(void) {
    enum { N = 4096, T = 5 };
    float *p = malloc(N * sizeof(float)), *m = calloc(N, sizeof(float)),
          *v = calloc(N, sizeof(float)), *g = malloc(N * sizeof(float));
    double *pd = malloc(N * sizeof(double)), *md = calloc(N, sizeof(double)),
           *vd = calloc(N, sizeof(double)), *gd = malloc(N * sizeof(double));
    tu_fill(p, N, 1, 1.0f);
    for (int i = 0; i < N; i++) pd[i] = p[i];
    for (int t = 1; t <= T; t++) {
        tu_fill(g, N, 100 + t, 0.5f);
        for (int i = 0; i < 7; i++) g[i * 97] *= 1e-4f;    /* tiny gradients: eps matters */
        for (int i = 0; i < N; i++) gd[i] = g[i];
        opt_adam_step(p, m, v, g, N, 1e-2, 0.9, 0.999, 1e-8, t);
        adam_naive(pd, md, vd, gd, N, 1e-2, 0.9, 0.999, 1e-8, t);
    }
    tu_compare("adam: params after 5 steps vs double twin", p, pd, N, 1e-5);
    /* m cancels where g changes sign between steps: float rounding of b1 m + (1-b1) g is then
     * large relative to a small m, hence the looser tolerance (still ~100 float ulps). */
    tu_compare("adam: first moment m", m, md, N, 1e-4);
    tu_compare("adam: second moment v", v, vd, N, 1e-5);

    /* Warm-up: linear in the images after the step, then flat. */
    opt_adam a = {1e-3, 0.9, 0.999, 1e-8, 1000, 0};
    tu_check(fabs(opt_lr(&a, 250) - 2.5e-4) < 1e-15 && opt_lr(&a, 1000) == 1e-3 &&
             opt_lr(&a, 5000) == 1e-3, "warm-up lr: 2.5e-4 at 250/1000 images, 1e-3 after");
    a.warmup_images = 0;
    tu_check(opt_lr(&a, 1) == 1e-3, "no warm-up: full lr from the first step");

    /* NaN/Inf guard (docs/algorithms.md §M1.4) and clipping. */
    float bad[6] = {NAN, INFINITY, -INFINITY, 2.0f, -3.0f, 0.0f};
    size_t nb = opt_sanitize(bad, 6);
    tu_check(nb == 3 && bad[0] == 0 && bad[1] == 1e5f && bad[2] == -1e5f && bad[3] == 2.0f,
             "nan_to_num: NaN->0, +Inf->1e5, -Inf->-1e5 (%zu replaced)", nb);
    double ref = 0;
    for (int i = 0; i < N; i++) ref += (double)g[i] * g[i];
    ref = sqrt(ref);
    double nrm = opt_global_norm(g, N);
    tu_check(fabs(nrm - ref) <= 1e-12 * ref, "global norm %.12g vs double %.12g", nrm, ref);
    double before = opt_clip(g, N, ref / 4);
    double after = opt_global_norm(g, N);
    tu_check(fabs(before - ref) < 1e-9 && fabs(after - ref / 4) < 1e-5 * ref,
             "clip to norm/4: %.6g -> %.6g", before, after);

    /* EDM EMA (docs/algorithms.md §M1.6): halflife = min(h, rampup * cur_nimg), beta = 0.5^(B/halflife). */
    double b0 = opt_ema_beta(500000, 0.05, 0, 64);
    double b1 = opt_ema_beta(500000, 0.05, 1000000, 64);     /* 0.05 * 1e6 = 5e4 < 5e5 */
    double b2 = opt_ema_beta(500000, 0.05, 100000000, 64);   /* 5e6 > 5e5: the half-life caps */
    double b3 = opt_ema_beta(1000, 0, 0, 10);                /* no ramp-up */
    tu_check(b0 == 0.0 && fabs(b1 - pow(0.5, 64 / 5e4)) < 1e-15 &&
                 fabs(b2 - pow(0.5, 64 / 5e5)) < 1e-15 && fabs(b3 - pow(0.5, 0.01)) < 1e-15,
             "EMA beta: %.3g (first step copies), %.12f, %.12f, %.12f", b0, b1, b2, b3);
    float e[3] = {1, 2, 3}, w[3] = {3, 2, 1};
    opt_ema_update(e, w, 3, 0.25);
    tu_check(e[0] == 2.5f && e[1] == 2 && e[2] == 1.5f,
             "EMA update: ema = p + beta (ema - p)");
    /* Half-life meaning: after halflife/B steps of beta the old weight has halved. */
    double bb = opt_ema_beta(640, 0, 0, 64), rem = pow(bb, 640 / 64);
    tu_check(fabs(rem - 0.5) < 1e-12, "EMA: weight of the past after one half-life = %.12f", rem);
    free(p); free(m); free(v); free(g); free(pd); free(md); free(vd); free(gd);
}

/* ------------------------------------------------------------------ data */

/* n 8x8 images of 3 classes (horizontal bars, vertical bars, a box) with per-image shifts and
 * contrast, so there is structure to learn but not just three points. */
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
        int cls = i % 3, s = (i / 3) % 2;
        float amp = 0.6f + 0.1f * (i % 4);
        ds->labels[i] = (uint8_t)cls;
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++) {
                int on = cls == 0 ? ((r + s) % 4 < 2) : cls == 1 ? ((c + s) % 4 < 2)
                                                                 : (r >= 2 + s && r < 6 && c >= 2 && c < 6 + s);
                ds->images[i * 64 + r * 8 + c] = on ? amp : -amp;
            }
    }
}

static void test_shuffle(void) {
    enum { N = 1000 };
    uint32_t a[N], b[N], c[N];
    int seen[N] = {0}, ok = 1;
    ds_epoch_permutation(a, N, 42, 0);
    ds_epoch_permutation(b, N, 42, 0);
    ds_epoch_permutation(c, N, 42, 1);
    for (int i = 0; i < N; i++) seen[a[i]]++;
    for (int i = 0; i < N; i++) ok &= seen[i] == 1;
    int same = !memcmp(a, b, sizeof a), diff = 0, fixed = 0;
    for (int i = 0; i < N; i++) diff += a[i] != c[i], fixed += a[i] == (uint32_t)i;
    tu_check(ok && same && diff > N / 2 && fixed < 10,
             "epoch shuffle: a permutation, reproducible, new per epoch (%d/%d moved, %d fixed)",
             diff, N, fixed);
    ds_sampler s;
    pd_error err;
    ds_sampler_init(&s, 7, 3, &err);
    uint32_t p1[7];
    ds_epoch_permutation(p1, 7, 3, 1);
    int i9 = ds_sampler_index(&s, 9), i2 = ds_sampler_index(&s, 2);
    uint32_t p0[7];
    ds_epoch_permutation(p0, 7, 3, 0);
    tu_check(i9 == (int)p1[2] && i2 == (int)p0[2], "sampler: global sample g -> perm_{g/n}[g%%n]");
    ds_sampler_free(&s);
}

static void test_fashion(void) {
    ds_dataset ds;
    pd_error err = {""};
    struct stat st;
    if (stat(DS_FASHION_DIR "/t10k-images-idx3-ubyte.gz", &st) == 0) {
        double t0 = core_now();
        int rc = ds_load_fashion_mnist(&ds, NULL, 0, &err);
        double dt = core_now() - t0;
        tu_check(rc == 0 && ds.n == 10000 && ds.C == 1 && ds.H == 32 && ds.W == 32 && ds.labels,
                 "Fashion-MNIST t10k: 10000 x 1x32x32 in %.2f s (%s)", dt, err.msg);
        if (rc == 0) {
            float mn = 1e9f, mx = -1e9f;
            int border = 1, hist[10] = {0};
            for (size_t k = 0; k < (size_t)ds.n * 1024; k++) {
                mn = fminf(mn, ds.images[k]);
                mx = fmaxf(mx, ds.images[k]);
            }
            for (int i = 0; i < ds.n; i += 97)
                for (int r = 0; r < 32; r++)
                    for (int c = 0; c < 32; c++)
                        if (r < 2 || r >= 30 || c < 2 || c >= 30)
                            border &= ds.images[(size_t)i * 1024 + r * 32 + c] == -1.0f;
            for (int i = 0; i < ds.n; i++) hist[ds.labels[i]]++;
            int balanced = 1;
            for (int k = 0; k < 10; k++) balanced &= hist[k] == 1000;
            tu_check(mn == -1.0f && mx == 1.0f && border && balanced && ds.labels[0] == 9,
                     "values in [-1,1], 2-pixel border = -1, 1000 per class, item 0 is class 9 "
                     "(ankle boot)");
            ds_free(&ds);
        }
    } else {
        printf("Fashion-MNIST not installed: skipping the real-data check\n");
    }
    int rc = ds_load_fashion_mnist(&ds, "/nonexistent/fmnist", 1, &err);
    tu_check(rc == -1 && strstr(err.msg, "/nonexistent/fmnist/train-images-idx3-ubyte.gz") &&
                 strstr(err.msg, "dataset-fashion-mnist"),
             "missing Fashion-MNIST names the file and the package: %s", err.msg);
    /* A corrupt (truncated) gzip file. */
    char dir[] = "/tmp/pd_test_train_fmnistXXXXXX";
    if (mkdtemp(dir)) {
        char p[256];
        const char *names[2] = {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
        for (int i = 0; i < 2; i++) {
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            FILE *f = fopen(p, "wb");
            fputs("\x1f\x8b\x08\x00garbage", f);
            fclose(f);
        }
        rc = ds_load_fashion_mnist(&ds, dir, 0, &err);
        tu_check(rc == -1 && strstr(err.msg, "t10k-images-idx3-ubyte.gz"),
                 "corrupt IDX file fails naming it: %s", err.msg);
        for (int i = 0; i < 2; i++) {
            snprintf(p, sizeof p, "%s/%s", dir, names[i]);
            unlink(p);
        }
        rmdir(dir);
    }
}

static void test_png_folder(void) {
    char dir[] = "/tmp/pd_test_train_pngXXXXXX";
    if (!mkdtemp(dir)) return;
    float img[3][3 * 4 * 4];
    char p[3][256];
    pd_error err = {""};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        tu_fill(img[i], 48, 50 + i, 1.0f);
        snprintf(p[i], sizeof p[i], "%s/img%d.png", dir, i);
        ok &= pd_png_write_grid(p[i], img[i], 1, 3, 4, 4, 1, NULL, &err) == 0;
    }
    ds_dataset ds;
    int rc = ok ? ds_load_png_folder(&ds, dir, &err) : -1;
    double maxe = 0;
    if (rc == 0)
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 48; k++) maxe = fmax(maxe, fabs(ds.images[i * 48 + k] - img[i][k]));
    tu_check(rc == 0 && ds.n == 3 && ds.C == 3 && ds.H == 4 && !ds.labels && maxe <= 1.0 / 127.5 + 1e-6,
             "PNG folder: 3 unlabelled RGB 4x4 images, 8-bit error %.4f (%s)", maxe, err.msg);
    if (rc == 0) ds_free(&ds);
    for (int i = 0; i < 3; i++) unlink(p[i]);
    rmdir(dir);
    rc = ds_load_png_folder(&ds, "/nonexistent/pngs", &err);
    tu_check(rc == -1 && strstr(err.msg, "/nonexistent/pngs"), "missing PNG folder: %s", err.msg);
}

/* ------------------------------------------------------------------ configs */

static int parse_fails(const char *text, const char *n1, const char *n2, const char *n3) {
    tr_config c;
    pd_error err = {""};
    int rc = tr_config_parse(&c, text, "bad.yaml", &err);
    if (rc == 0) tr_config_free(&c);
    int ok = rc == -1 && strstr(err.msg, n1) && (!n2 || strstr(err.msg, n2)) &&
             (!n3 || strstr(err.msg, n3));
    printf("    message: %s\n", err.msg);
    return ok;
}

static void test_configs(void) {
    tu_check(parse_fails("training:\n  batch: 8\n  bacth: 3\n", "bad.yaml:3", "unknown key 'bacth'",
                         NULL), "unknown key names file:line and key");
    tu_check(parse_fails("model:\n  preset: fashion32\ntrainig:\n  batch: 8\n", "bad.yaml:3",
                         "unknown key 'trainig'", NULL), "unknown section names file:line");
    tu_check(parse_fails("model:\n  model_chanels: 8\n", "bad.yaml:2", "model_chanels", NULL),
             "unknown model key names file:line");
    tu_check(parse_fails("optimizer:\n  lr: fast\n", "bad.yaml:2", "lr", NULL),
             "wrong type names the key");
    tu_check(parse_fails("optimizer:\n  betas: [0.9, 1.5]\n", "bad.yaml:2", "betas", NULL),
             "betas out of range");
    tu_check(parse_fails("data:\n  kind: imagenet\n", "bad.yaml:2", "data.kind", "imagenet"),
             "unknown data kind");
    tu_check(parse_fails("training:\n  batch: 0\n", "bad.yaml:2", "batch", NULL), "batch 0");
    tu_check(parse_fails("training:\n  shares: 0\n", "bad.yaml:2", "shares", NULL), "shares 0");
    tu_check(parse_fails("training:\n  shares: 65\n", "bad.yaml:2", "shares", NULL),
             "shares above GS_MAX_SHARES");
    tu_check(parse_fails("model:\n  preset: huge\n", "bad.yaml:2", "huge", NULL), "unknown preset");
    tu_check(parse_fails("data:\n  kind: png-folder\n", "bad.yaml:2", "data.path", NULL),
             "png-folder without a path");

    const char *files[2] = {PD_SOURCE_DIR "/configs/train/fashion32.yaml",
                            PD_SOURCE_DIR "/configs/train/tiny.yaml"};
    for (int i = 0; i < 2; i++) {
        tr_config c;
        pd_error err = {""};
        int rc = tr_config_load(&c, files[i], &err);
        tu_check(rc == 0, "%s parses (%s)", strrchr(files[i], '/') + 1, err.msg);
        if (rc) continue;
        if (i == 0) {
            pd_model *m = NULL;
            rc = pd_model_create(&m, &c.model, 0, &err);
            size_t np = rc ? 0 : pd_model_param_count(m);
            double gf = rc ? 0 : pd_model_gflops(m, 32);
            tu_check(rc == 0 && np >= 1000000 && np <= 2500000 && gf <= 1.0 &&
                         c.model.label_dim == 10 && !strcmp(c.model.class_names[7], "sneaker"),
                     "fashion32: %zu parameters, %.3f GFLOP/eval, 10 named classes", np, gf);
            pd_model_free(m);
        }
        tr_config_free(&c);
    }
}

/* ------------------------------------------------------------------ gradient */

/* Finite-difference step, relative to the weight. The forward is float32 and the summed loss is
 * ~100 (lambda is ~400 at sigma 0.05), so rounding noise of ~1e-4 in L needs a step this large to
 * stay below the differences (1e-3 gives ~5% noise, 3e-2 ~0.3%); curvature error stays O(h^2). */
#define FD_H 3e-2

/* dL/dparam from tr_edm_loss's backward against central differences of L itself, for a few
 * parameters of every kind (first conv, block convs, affine, attention, map layers, output).
 * Dropout stays on with fixed masks (same seed and stream every call), so L is deterministic. */
static void test_gradient(void) {
    tr_config c;
    pd_error err = {""};
    if (tr_config_parse(&c, tiny_yaml, "tiny", &err)) {
        tu_check(0, "parse tiny config: %s", err.msg);
        return;
    }
    pd_model *m = NULL;
    unet_run *run = NULL;
    if (pd_model_create(&m, &c.model, 3, &err) || unet_run_create(&run, m, 4, 8, 1, &err)) {
        tu_check(0, "tiny model: %s", err.msg);
        return;
    }
    enum { B = 4, CHW = 64 };
    float y[B * CHW], x[B * CHW], sigma[B] = {0.05f, 0.4f, 1.5f, 6.0f}, labels[B * 3] = {0};
    float D[B * CHW], dD[B * CHW];
    tu_fill(y, B * CHW, 11, 0.8f);
    pd_randn(x, B * CHW, 12, 0);
    for (int i = 0; i < B * CHW; i++) x[i] = y[i] + sigma[i / CHW] * x[i];
    labels[0 * 3 + 1] = 1;
    labels[1 * 3 + 0] = 1;
    labels[3 * 3 + 2] = 1;             /* sample 2: the zero "no label" vector */
    unet_opts o;
    memset(&o, 0, sizeof o);
    o.train = 1;
    o.dropout_seed = 5;
    o.dropout_stream = 9;
    float *grad = calloc(m->n_params, sizeof(float));
    double L0;
    int rc = tr_edm_loss(run, x, y, sigma, labels, B, B, CHW, 0.5, &o, D, dD, grad, &L0, &err);
    tu_check(rc == 0 && isfinite(L0), "EDM loss of a tiny batch: %.6f (%s)", L0, err.msg);
    if (rc) goto out;

    /* Three entries of every weight tensor (largest |grad| of a strided scan), in double. */
    enum { MAXP = 400 };
    float got[MAXP];
    double ref[MAXP];
    int np = 0;
    for (int ti = 0; ti < m->n_tensors && np + 3 <= MAXP; ti++) {
        const unet_tensor_info *t = &m->tensors[ti];
        if (!strstr(t->name, ".weight") || strstr(t->name, "norm")) continue;
        for (int k = 0; k < 3; k++) {
            size_t best = t->offset + (k * t->numel) / 3;
            for (size_t j = t->offset + (k * t->numel) / 3; j < t->offset + ((k + 1) * t->numel) / 3;
                 j += 1 + t->numel / 97)
                if (fabsf(grad[j]) > fabsf(grad[best])) best = j;
            float keep = m->params[best];
            double h = FD_H * fmax(fabs(keep), 0.05), lp, lm;
            m->params[best] = (float)(keep + h);
            double hp = (double)m->params[best] - keep;
            tr_edm_loss(run, x, y, sigma, labels, B, B, CHW, 0.5, &o, D, dD, NULL, &lp, &err);
            m->params[best] = (float)(keep - h);
            double hm = keep - (double)m->params[best];
            tr_edm_loss(run, x, y, sigma, labels, B, B, CHW, 0.5, &o, D, dD, NULL, &lm, &err);
            m->params[best] = keep;
            got[np] = grad[best];
            ref[np] = (lp - lm) / (hp + hm);
            np++;
        }
    }
    /* Central differences of the float32 loss are good to a few 1e-3 here. A wrong factor in
     * dL/dD (the 2, lambda or 1/B) would be off by 100% or more. */
    tu_compare("EDM loss dL/dparams vs central differences", got, ref, np, 1e-2);
    double dot = 0, nr = 0, ng = 0;
    for (int i = 0; i < np; i++) dot += got[i] * ref[i], nr += ref[i] * ref[i], ng += (double)got[i] * got[i];
    tu_check(fabs(sqrt(ng / nr) - 1) < 5e-3 && dot / sqrt(ng * nr) > 0.9999,
             "gradient scale |g|/|fd| = %.5f over %d params (checks 2 lambda (D - y)/B)",
             sqrt(ng / nr), np);
out:
    free(grad);
    unet_run_free(run);
    pd_model_free(m);
    tr_config_free(&c);
}

/* ------------------------------------------------------------------ training */

static void test_init(void) {
    tr_config c;
    pd_error err = {""};
    tr_config_parse(&c, tiny_yaml, "tiny", &err);
    pd_model *m = NULL;
    if (pd_model_create(&m, &c.model, 1, &err) || tr_init_edm(m, 1, &err)) {
        tu_check(0, "EDM init: %s", err.msg);
        tr_config_free(&c);
        return;
    }
    int ok = 1, n_zero = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const unet_tensor_info *t = &m->tensors[i];
        const float *p = m->params + t->offset;
        float mx = 0;
        for (size_t k = 0; k < t->numel; k++) mx = fmaxf(mx, fabsf(p[k]));
        if (strstr(t->name, ".bias")) ok &= mx == 0;
        else if (strstr(t->name, "norm")) ok &= p[0] == 1 && mx == 1;
        else if (strstr(t->name, "conv1.weight") || strstr(t->name, "proj.weight") ||
                 strstr(t->name, "aux_conv.weight")) ok &= mx > 0 && mx < 1e-5f, n_zero++;
        else {
            double bound = sqrt(6.0 / ((t->shape[0] + t->shape[1]) *
                                       (t->ndim == 4 ? t->shape[2] * t->shape[3] : 1)));
            if (strstr(t->name, "qkv")) bound *= sqrt(0.2);
            ok &= mx <= bound && mx > 0.5 * bound;
        }
    }
    tu_check(ok && n_zero >= 3, "EDM init: xavier bounds, %d near-zero output convs, zero biases, "
             "unit norms", n_zero);
    pd_model_free(m);
    tr_config_free(&c);
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

static void test_training(void) {
    tr_config c;
    pd_error err = {""};
    if (tr_config_parse(&c, tiny_yaml, "tiny", &err)) {
        tu_check(0, "parse: %s", err.msg);
        return;
    }
    ds_dataset ds;
    synthetic(&ds, 20);   /* 20 is not a multiple of 8: batches straddle epochs */

    /* The loss falls: a fixed evaluation batch (dropout off) before and after 120 steps. */
    tr_trainer *t = NULL;
    if (tr_create(&t, &c, &ds, &err)) {
        tu_check(0, "tr_create: %s", err.msg);
        goto out;
    }
    double e0, e1, first = 0, last = 0, t0 = core_now();
    tr_eval_loss(t, 8, 99, &e0, &err);
    const int steps = 120;
    for (int s = 0; s < steps; s++) {
        double l;
        if (tr_step(t, &l, &err)) break;
        if (s < 10) first += l / 10;
        if (s >= steps - 10) last += l / 10;
    }
    tr_eval_loss(t, 8, 99, &e1, &err);
    double dt = core_now() - t0;
    tu_check(e1 < 0.6 * e0 && last < first,
             "tiny model learns: eval loss %.4f -> %.4f, train loss %.4f -> %.4f (%d steps, "
             "%.2f s, %.0f%% in forward/backward)", e0, e1, first, last, steps, dt,
             100 * t->t_fwdbwd / t->t_step);
    tr_free(t);
    t = NULL;

    /* Resume is bit-exact: K steps straight vs K/2, checkpoint, a fresh trainer, K/2 more. */
    char dir[] = "/tmp/pd_test_trainXXXXXX", ck[300], ck2[300], model[300];
    if (!mkdtemp(dir)) goto out;
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
    snprintf(ck2, sizeof ck2, "%s/bad.safetensors", dir);
    snprintf(model, sizeof model, "%s/model.safetensors", dir);
    enum { K = 8 };
    tr_trainer *a = NULL, *b = NULL, *r = NULL;
    int rc = tr_create(&a, &c, &ds, &err);
    for (int s = 0; s < K && !rc; s++) rc = tr_step(a, NULL, &err);
    rc = rc || tr_create(&b, &c, &ds, &err);
    for (int s = 0; s < K / 2 && !rc; s++) rc = tr_step(b, NULL, &err);
    rc = rc || tr_save_checkpoint(b, ck, &err);
    tr_free(b);
    b = NULL;
    rc = rc || tr_create(&r, &c, &ds, &err) || tr_load_checkpoint(r, ck, &err);
    int at_half = !rc && r->images_seen == K / 2 * 8 && r->step == K / 2;
    for (int s = 0; s < K / 2 && !rc; s++) rc = tr_step(r, NULL, &err);
    tu_check(rc == 0 && at_half, "train %d steps straight and %d + checkpoint + %d (%s)", K, K / 2,
             K / 2, err.msg);
    if (rc) goto out2;
    size_t np = a->n_params;
    tu_check(same(a->model->params, r->model->params, np) && same(a->ema, r->ema, np) &&
                 same(a->adam_m, r->adam_m, np) && same(a->adam_v, r->adam_v, np) &&
                 a->images_seen == r->images_seen && a->step == r->step,
             "resume: params, EMA, Adam m and v bit-identical after %d steps (%zu params)", K, np);
    tu_check(!same(a->model->params, a->ema, np), "EMA differs from the live weights");

    /* Shares computed on parallel workers (grad_shares.h) give the bits of one share at a time:
     * the batch of 8 in 8 shares, and in 3 uneven shares (2, 3, 3 images) cut 1 + 2. */
    for (int variant = 0; variant < 2; variant++) {
        tr_config cv;
        char text[2048];
        snprintf(text, sizeof text, "%s%s", tiny_yaml, variant ? "  shares: 3\n" : "");
        tr_trainer *w1 = NULL, *w2 = NULL;
        pd_set_threads(1);
        int rv = tr_config_parse(&cv, text, "tiny", &err) || tr_create(&w1, &cv, &ds, &err);
        for (int s = 0; s < 3 && !rv; s++) rv = tr_step(w1, NULL, &err);
        pd_set_threads(2);
        rv = rv || tr_create(&w2, &cv, &ds, &err);
        for (int s = 0; s < 3 && !rv; s++) rv = tr_step(w2, NULL, &err);
        tu_check(rv == 0 && w1->shares.workers == 1 && w2->shares.workers == 2 &&
                     same(w1->model->params, w2->model->params, np) &&
                     same(w1->adam_v, w2->adam_v, np) && w1->last_loss == w2->last_loss,
                 "%d shares: 2 workers train the bits of 1 (%s)", variant ? 3 : 8, err.msg);
        tr_free(w1);
        tr_free(w2);
        if (!rv) tr_config_free(&cv);
    }

    /* Export: the EMA weights as a model that loads like any other. */
    pd_model *loaded = NULL;
    rc = tr_export(a, model, &err) || pd_model_load(&loaded, model, &err);
    tu_check(rc == 0 && loaded && loaded->n_params == np && same(loaded->params, a->ema, np) &&
                 pd_model_config(loaded)->label_dim == 3,
             "export: EMA weights round-trip through pd_model_save/pd_model_load (%s)", err.msg);
    pd_model_free(loaded);
    loaded = NULL;
    rc = tr_save_checkpoint(a, ck, &err) || tr_export_checkpoint(ck, model, &err) ||
         pd_model_load(&loaded, model, &err);
    tu_check(rc == 0 && loaded && same(loaded->params, a->ema, np),
             "export from a checkpoint file gives the same model (%s)", err.msg);
    pd_model_free(loaded);

    /* Corrupt and mismatched checkpoints fail with a message and leave the trainer intact. */
    float *keep = malloc(np * sizeof(float));
    memcpy(keep, r->model->params, np * sizeof(float));
    long long keep_seen = r->images_seen;
    FILE *f = fopen(ck, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *bytes = malloc(size);
    size_t got = fread(bytes, 1, size, f);
    fclose(f);
    struct { const char *what; long len; long flip_at; } cases[] = {
        {"truncated to half", size / 2, -1},
        {"truncated to 5 bytes", 5, -1},
        {"header byte flipped", size, 20},
        {"empty file", 0, -1},
    };
    for (int i = 0; i < 4 && got == (size_t)size; i++) {
        f = fopen(ck2, "wb");
        char save = 0;
        if (cases[i].flip_at >= 0) save = bytes[cases[i].flip_at], bytes[cases[i].flip_at] = '}';
        fwrite(bytes, 1, cases[i].len, f);
        if (cases[i].flip_at >= 0) bytes[cases[i].flip_at] = save;
        fclose(f);
        pd_error e2 = {""};
        rc = tr_load_checkpoint(r, ck2, &e2);
        tu_check(rc == -1 && strstr(e2.msg, "bad.safetensors") && same(keep, r->model->params, np) &&
                     r->images_seen == keep_seen,
                 "corrupt checkpoint (%s): %s", cases[i].what, e2.msg);
    }
    free(bytes);
    free(keep);
    /* A checkpoint of another model. */
    tr_config c2;
    char *text2 = malloc(strlen(tiny_yaml) + 1);
    strcpy(text2, tiny_yaml);
    memcpy(strstr(text2, "model_channels: 8"), "model_channels: 4", 17);
    tr_trainer *o = NULL;
    rc = tr_config_parse(&c2, text2, "other", &err) || tr_create(&o, &c2, &ds, &err) ||
         tr_save_checkpoint(o, ck2, &err);
    pd_error e3 = {""};
    tu_check(rc == 0 && tr_load_checkpoint(r, ck2, &e3) == -1 && strstr(e3.msg, "model"),
             "checkpoint of a different model: %s", e3.msg);
    tr_free(o);
    tr_config_free(&c2);
    o = NULL;
    /* A checkpoint whose step was cut into other gradient shares: the same model, other bits. */
    strcpy(text2, tiny_yaml);
    char *text3 = malloc(strlen(tiny_yaml) + 32);
    char *at = strstr(text2, "  batch: 8\n") + strlen("  batch: 8\n");
    snprintf(text3, strlen(tiny_yaml) + 32, "%.*s  shares: 2\n%s", (int)(at - text2), text2, at);
    rc = tr_config_parse(&c2, text3, "shares2", &err) || tr_create(&o, &c2, &ds, &err) ||
         tr_save_checkpoint(o, ck2, &err);
    pd_error e4 = {""};
    tu_check(rc == 0 && o->shares.S == 2 && tr_load_checkpoint(r, ck2, &e4) == -1 &&
                 strstr(e4.msg, "training.shares"),
             "checkpoint with other gradient shares: %s", e4.msg);
    tr_free(o);
    tr_config_free(&c2);
    free(text3);
    free(text2);
    unlink(ck2);
    unlink(ck);
    unlink(model);
out2:
    rmdir(dir);
    tr_free(a);
    tr_free(r);
out:
    ds_free(&ds);
    tr_config_free(&c);
}

/* A checkpoint without a recorded share count was made with one share per image (at most 64):
 * its own config (tr_checkpoint_config, what a plain --resume uses) continues it with that many
 * shares, bit-identical to a run that never stopped; the default 8 shares would give other bits
 * and are refused. Batch 12: 12 shares against the default 8. */
static void test_old_checkpoint(void) {
    pd_error err = {""};
    char text[2048], dir[] = "/tmp/pd_test_train_oldXXXXXX", ck[300];
    const char *b8 = strstr(tiny_yaml, "  batch: 8\n");
    snprintf(text, sizeof text, "%.*s  batch: 12\n%s", (int)(b8 - tiny_yaml), tiny_yaml,
             b8 + strlen("  batch: 8\n"));
    tr_config c, back = {0};
    if (!mkdtemp(dir) || tr_config_parse(&c, text, "tiny-12", &err)) {
        tu_check(0, "old checkpoint setup: %s", err.msg);
        return;
    }
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
    ds_dataset ds;
    synthetic(&ds, 20);
    enum { K = 4 };
    tr_trainer *t[4] = {NULL, NULL, NULL, NULL};   /* 64 straight, 64 to K/2, 8 straight, resumed */
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        c.shares = k < 2 ? GS_MAX_SHARES : GS_DEFAULT_SHARES;
        rc = tr_create(&t[k], &c, &ds, &err);
        for (int s = 0; s < (k == 1 ? K / 2 : K) && !rc; s++) rc = tr_step(t[k], NULL, &err);
    }
    rc = rc || tr_save_checkpoint(t[1], ck, &err) ||
         tu_forget_key(ck, "\"pixdiff.train.shares\"");
    c.shares = GS_DEFAULT_SHARES;
    rc = rc || tr_create(&t[3], &c, &ds, &err);
    pd_error e2 = {""};
    tu_check(rc == 0 && tr_load_checkpoint(t[3], ck, &e2) != 0 &&
                 strstr(e2.msg, "training.shares"),
             "a checkpoint without its share count is refused under 8 shares: %s",
             rc ? err.msg : e2.msg);
    tr_free(t[3]);
    t[3] = NULL;
    rc = rc || tr_checkpoint_config(ck, &back, &err) || tr_create(&t[3], &back, &ds, &err) ||
         tr_load_checkpoint(t[3], ck, &err);
    for (int s = 0; s < K / 2 && !rc; s++) rc = tr_step(t[3], NULL, &err);
    size_t np = rc ? 0 : t[0]->n_params;
    tu_check(rc == 0 && back.shares == GS_MAX_SHARES &&
                 same(t[3]->model->params, t[0]->model->params, np) &&
                 same(t[3]->adam_v, t[0]->adam_v, np) &&
                 !same(t[2]->model->params, t[0]->model->params, np),
             "its own config resumes it with %d shares: the bits of %d steps straight, not of "
             "8 shares (%s)", rc ? 0 : t[3]->shares.S, K, err.msg);
    for (int k = 0; k < 4; k++) tr_free(t[k]);
    if (back.shares) tr_config_free(&back);
    tr_config_free(&c);
    ds_free(&ds);
    remove(ck);
    rmdir(dir);
}

int main(void) {
    pd_set_threads(2);
    test_optim();
    test_shuffle();
    test_configs();
    test_fashion();
    test_png_folder();
    test_init();
    test_gradient();
    test_training();
    test_old_checkpoint();
    return tu_finish();
}
