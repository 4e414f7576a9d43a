/* analytic.c — exact denoisers for tests and for checking samplers (pixdiff.h pd_denoiser_analytic),
 * and the exact PF-ODE solution for Gaussian data.
 *
 * Gaussian data N(mu, s^2 I): E[x0 | x0 + sigma n = x] = mu + s^2/(s^2 + sigma^2) (x - mu), and the
 * ODE dx/dsigma = (x - D)/sigma = sigma/(s^2 + sigma^2) (x - mu) integrates to
 * x(sigma') = mu + sqrt((s^2 + sigma'^2)/(s^2 + sigma^2)) (x(sigma) - mu).
 *
 * A finite point set {y_k} (the empirical distribution): D(x; sigma) = sum_k w_k y_k with
 * w = softmax_k(-|x - y_k|^2 / (2 sigma^2)), evaluated with the max subtracted (log-sum-exp) in
 * double, so tiny sigmas give the nearest point instead of 0/0; sigma = 0 is that limit.
 * Per image the distance of each point is one thread's fixed-order sum and every reduction over
 * k runs in ascending k, so the result does not depend on the thread count or the batch.
 *
 * Spec parsing: "analytic:<kind>[:key=value]..." with exactly the keys pixdiff.h documents; an
 * unknown, repeated or malformed option fails naming it. For points, "file=" takes the rest of
 * the spec as the path (so a path may contain ':') and excludes n/res/ch/seed.
 */
#include "core/jsonbuf.h"
#include "core/rng.h"
#include "pixdiff.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RES 4096
#define MAX_CH 64
#define MAX_POINTS_VALUES ((size_t)1 << 31)

/* The spec as given: what pd_denoiser_describe writes (first member of both contexts). */
#define SPEC_MAX 1024
typedef struct {
    char text[SPEC_MAX];
} spec_name;

typedef struct {
    spec_name spec;
    double mu, std;
} gauss_ctx;

typedef struct {
    spec_name spec;
    int K;
    size_t dim;
    float *y;          /* [K, dim] */
    double *w;         /* [K] scratch for one image's weights */
} points_ctx;

void pd_gaussian_ode_exact(float *out, const float *x, double mu, double std, double sigma_from,
                           double sigma_to, size_t n) {
    double s2 = std * std;
    double f = sqrt((s2 + sigma_to * sigma_to) / (s2 + sigma_from * sigma_from));
    for (size_t j = 0; j < n; j++) out[j] = (float)(mu + f * ((double)x[j] - mu));
}

/* ------------------------------------------------------------------ gaussian */

/* features: an analytic denoiser has no network, so it reports nothing (feature_dim 0). */
static int gauss_eval(pd_denoiser *d, float *out, const float *x, const float *sigma,
                      const float *labels, int n, float *features, pd_error *err) {
    const gauss_ctx *g = d->ctx;
    size_t dim = (size_t)d->C * d->H * d->W;
    double s2 = g->std * g->std;
    #pragma omp parallel for schedule(static) if ((size_t)n * dim > 32768)
    for (int b = 0; b < n; b++) {
        double sg = sigma[b];
        double c = s2 / (s2 + sg * sg);
        const float *xb = x + (size_t)b * dim;
        float *ob = out + (size_t)b * dim;
        for (size_t j = 0; j < dim; j++) ob[j] = (float)(g->mu + c * ((double)xb[j] - g->mu));
    }
    return 0;
}

/* pd_denoiser_describe's terms (pixdiff.h): the spec names the data exactly; then the size. */
static int spec_describe(const pd_denoiser *d, char *out, size_t cap) {
    const spec_name *s = d->ctx;
    size_t len = 0;
    jb_addf(out, cap, &len, "model=%s|size=%d", s->text, d->H);
    return len < cap ? (int)len : -1;
}

static void ctx_destroy(pd_denoiser *d) {
    free(d->ctx);
    d->ctx = NULL;
}

/* ------------------------------------------------------------------ points */

static int points_eval(pd_denoiser *d, float *out, const float *x, const float *sigma,
                       const float *labels, int n, float *features, pd_error *err) {
    points_ctx *pc = d->ctx;
    const int K = pc->K;
    const size_t dim = pc->dim;
    const float *y = pc->y;
    double *w = pc->w;
    for (int b = 0; b < n; b++) {
        const float *xb = x + (size_t)b * dim;
        float *ob = out + (size_t)b * dim;
        double sg = sigma[b];
        /* w_k <- squared distance, each by one thread in fixed j order */
        #pragma omp parallel for schedule(static) if ((size_t)K * dim > 65536)
        for (int k = 0; k < K; k++) {
            const float *yk = y + (size_t)k * dim;
            double s = 0;
            for (size_t j = 0; j < dim; j++) {
                double t = (double)xb[j] - (double)yk[j];
                s += t * t;
            }
            w[k] = s;
        }
        int kmin = 0;
        for (int k = 1; k < K; k++)
            if (w[k] < w[kmin]) kmin = k;
        double total = 0;
        if (sg > 0) {
            /* softmax of -dist/(2 sigma^2): subtract the max logit (smallest distance) */
            double inv = 1.0 / (2.0 * sg * sg), dmin = w[kmin];
            for (int k = 0; k < K; k++) {
                w[k] = exp(-(w[k] - dmin) * inv);
                total += w[k];
            }
        } else {
            for (int k = 0; k < K; k++) w[k] = k == kmin;
            total = 1;
        }
        double inv_total = 1.0 / total;
        const size_t CH = 256;
        size_t nchunk = (dim + CH - 1) / CH;
        #pragma omp parallel for schedule(static) if ((size_t)K * dim > 65536)
        for (size_t c = 0; c < nchunk; c++) {
            double acc[256];
            size_t j0 = c * CH, len = dim - j0 < CH ? dim - j0 : CH;
            for (size_t jj = 0; jj < len; jj++) acc[jj] = 0;
            for (int k = 0; k < K; k++) {
                double wk = w[k];
                if (wk == 0.0) continue;   /* adds exactly nothing */
                const float *yk = y + (size_t)k * dim + j0;
                for (size_t jj = 0; jj < len; jj++) acc[jj] += wk * (double)yk[jj];
            }
            for (size_t jj = 0; jj < len; jj++) ob[j0 + jj] = (float)(acc[jj] * inv_total);
        }
    }
    return 0;
}

static void points_destroy(pd_denoiser *d) {
    points_ctx *pc = d->ctx;
    if (pc) {
        free(pc->y);
        free(pc->w);
        free(pc);
    }
    d->ctx = NULL;
}

/* ------------------------------------------------------------------ parsing */

static int parse_double(const char *spec, const char *key, const char *v, double *out, pd_error *err) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || !isfinite(x))
        return pd_fail(err, "%s: option '%s' needs a number, got '%s'", spec, key, v);
    *out = x;
    return 0;
}

static int parse_int(const char *spec, const char *key, const char *v, long lo, long hi, long *out,
                     pd_error *err) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi)
        return pd_fail(err, "%s: option '%s' needs an integer in [%ld, %ld], got '%s'", spec, key, lo,
                       hi, v);
    *out = x;
    return 0;
}

static int parse_u64(const char *spec, const char *key, const char *v, uint64_t *out, pd_error *err) {
    char *end;
    errno = 0;
    if (*v == '-' || *v == '+' || *v == ' ')
        return pd_fail(err, "%s: option '%s' needs an unsigned integer, got '%s'", spec, key, v);
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || errno)
        return pd_fail(err, "%s: option '%s' needs an unsigned integer, got '%s'", spec, key, v);
    *out = x;
    return 0;
}

static pd_denoiser *new_denoiser(int C, int H, int W, const char *spec) {
    pd_denoiser *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->C = C;
    d->H = H;
    d->W = W;
    d->label_dim = 0;
    d->sigma_min = 0.002;   /* EDM's range (docs/algorithms.md §S0.1) */
    d->sigma_max = 80.0;
    snprintf(d->desc, sizeof d->desc, "%s", spec);
    return d;
}

enum { K_MU, K_STD, K_RES, K_CH, K_N, K_SEED, K_FILE, K_COUNT };
static const char *const key_names[K_COUNT] = {"mu", "std", "res", "ch", "n", "seed", "file"};

int pd_denoiser_analytic(pd_denoiser **out, const char *spec, pd_error *err) {
    if (!out) return pd_fail(err, "pd_denoiser_analytic: NULL output");
    *out = NULL;
    if (!spec) return pd_fail(err, "pd_denoiser_analytic: NULL spec");
    const char *prefix = "analytic:";
    if (strncmp(spec, prefix, strlen(prefix)))
        return pd_fail(err, "%s: an analytic spec starts with 'analytic:'", spec);
    if (strlen(spec) >= SPEC_MAX) return pd_fail(err, "%.60s...: an analytic spec is at most %d bytes", spec, SPEC_MAX - 1);
    const char *kind = spec + strlen(prefix);
    size_t klen = strcspn(kind, ":");
    int gaussian = klen == 8 && !strncmp(kind, "gaussian", 8);
    int points = klen == 6 && !strncmp(kind, "points", 6);
    if (!gaussian && !points)
        return pd_fail(err, "%s: unknown analytic kind '%.*s' (gaussian, points)", spec, (int)klen, kind);

    double mu = 0.0, std = 0.5;
    long res = 32, ch = 3, npts = 16;
    uint64_t seed = 0;
    char path[1024] = "";
    int seen[K_COUNT] = {0};
    const char *opt = kind + klen;
    while (*opt == ':') {
        opt++;
        size_t len = strcspn(opt, ":");
        const char *eq = memchr(opt, '=', len);
        if (!eq) return pd_fail(err, "%s: option '%.*s' is not key=value", spec, (int)len, opt);
        size_t keylen = (size_t)(eq - opt);
        int key = -1;
        for (int k = 0; k < K_COUNT; k++)
            if (strlen(key_names[k]) == keylen && !strncmp(opt, key_names[k], keylen)) key = k;
        int allowed = key >= 0 && (gaussian ? key <= K_CH : key >= K_RES);
        if (!allowed)
            return pd_fail(err, "%s: unknown option '%.*s' for analytic:%s (%s)", spec, (int)keylen, opt,
                           gaussian ? "gaussian" : "points",
                           gaussian ? "mu, std, res, ch" : "n, res, ch, seed, file");
        if (seen[key]) return pd_fail(err, "%s: option '%s' given twice", spec, key_names[key]);
        seen[key] = 1;
        if (key == K_FILE) {
            /* the rest of the spec is the path */
            const char *v = eq + 1;
            if (!*v) return pd_fail(err, "%s: option 'file' needs a path", spec);
            if (snprintf(path, sizeof path, "%s", v) >= (int)sizeof path)
                return pd_fail(err, "%s: option 'file': path too long", spec);
            opt = v + strlen(v);
            break;
        }
        char val[128];
        size_t vlen = len - keylen - 1;
        if (vlen >= sizeof val) return pd_fail(err, "%s: option '%s': value too long", spec, key_names[key]);
        memcpy(val, eq + 1, vlen);
        val[vlen] = '\0';
        int rc = 0;
        switch (key) {
        case K_MU: rc = parse_double(spec, "mu", val, &mu, err); break;
        case K_STD:
            rc = parse_double(spec, "std", val, &std, err);
            if (!rc && !(std > 0)) rc = pd_fail(err, "%s: option 'std' must be > 0, got %s", spec, val);
            break;
        case K_RES: rc = parse_int(spec, "res", val, 1, MAX_RES, &res, err); break;
        case K_CH: rc = parse_int(spec, "ch", val, 1, MAX_CH, &ch, err); break;
        case K_N: rc = parse_int(spec, "n", val, 1, 100000000, &npts, err); break;
        case K_SEED: rc = parse_u64(spec, "seed", val, &seed, err); break;
        default: break;
        }
        if (rc) return -1;
        opt += len;
    }
    if (*opt) return pd_fail(err, "%s: cannot parse '%s'", spec, opt);

    if (gaussian) {
        pd_denoiser *d = new_denoiser((int)ch, (int)res, (int)res, spec);
        gauss_ctx *g = calloc(1, sizeof *g);
        if (!d || !g) {
            free(d);
            free(g);
            return pd_fail(err, "%s: out of memory", spec);
        }
        snprintf(g->spec.text, sizeof g->spec.text, "%s", spec);
        g->mu = mu;
        g->std = std;
        d->ctx = g;
        d->describe = spec_describe;
        d->sigma_data = std;
        d->eval = gauss_eval;
        d->destroy = ctx_destroy;
        *out = d;
        return 0;
    }

    /* points */
    float *y = NULL;
    int C, H, W, K;
    if (seen[K_FILE]) {
        for (int k = K_RES; k <= K_SEED; k++)
            if (seen[k])
                return pd_fail(err, "%s: option '%s' cannot be combined with 'file'", spec, key_names[k]);
        int shape[4], nd;
        if (pd_npy_read(path, &y, shape, &nd, err)) return -1;
        if (nd == 4) {
            K = shape[0], C = shape[1], H = shape[2], W = shape[3];
        } else if (nd == 3) {
            K = shape[0], C = 1, H = shape[1], W = shape[2];
        } else {
            free(y);
            return pd_fail(err, "%s: points need a [K,C,H,W] or [K,H,W] array, got rank %d", path, nd);
        }
        if (K < 1 || C < 1 || H < 1 || W < 1) {
            free(y);
            return pd_fail(err, "%s: empty points array", path);
        }
        size_t nv = (size_t)K * C * H * W;
        for (size_t i = 0; i < nv; i++)
            if (!isfinite(y[i])) {
                free(y);
                return pd_fail(err, "%s: value %zu is not finite", path, i);
            }
    } else {
        K = (int)npts, C = (int)ch, H = W = (int)res;
        size_t nv = (size_t)K * C * H * W;
        if (nv > MAX_POINTS_VALUES)
            return pd_fail(err, "%s: %d points of %ldx%ldx%ld is too many values", spec, K, ch, res, res);
        y = malloc(nv * sizeof *y);
        if (!y) return pd_fail(err, "%s: out of memory", spec);
        /* uniform in [-1, 1]: element j of the Philox stream (seed, 0) */
        rng_randu(y, nv, seed, 0);
        for (size_t i = 0; i < nv; i++) y[i] = 2.0f * y[i] - 1.0f;
    }
    size_t dim = (size_t)C * H * W;
    pd_denoiser *d = new_denoiser(C, H, W, spec);
    points_ctx *pc = calloc(1, sizeof *pc);
    double *w = malloc((size_t)K * sizeof *w);
    if (!d || !pc || !w) {
        free(d);
        free(pc);
        free(w);
        free(y);
        return pd_fail(err, "%s: out of memory", spec);
    }
    snprintf(pc->spec.text, sizeof pc->spec.text, "%s", spec);
    pc->K = K;
    pc->dim = dim;
    pc->y = y;
    pc->w = w;
    /* sigma_data: the std of all point values (EDM's data std) */
    double m = 0, v = 0;
    size_t nv = (size_t)K * dim;
    for (size_t i = 0; i < nv; i++) m += y[i];
    m /= (double)nv;
    for (size_t i = 0; i < nv; i++) v += (y[i] - m) * (y[i] - m);
    d->sigma_data = sqrt(v / (double)nv);
    if (!(d->sigma_data > 0)) d->sigma_data = 0.5;
    d->ctx = pc;
    d->eval = points_eval;
    d->describe = spec_describe;
    d->destroy = points_destroy;
    *out = d;
    return 0;
}
