/* convert.c — `pixdiff convert`'s library half (pixdiff.h "checkpoint conversion"): opens the
 * input (pickle / torch file, or safetensors with --config), hands the value tree to the reader
 * of what it holds (edm_net.c for networks, state_dict.c for state dicts), then writes float32
 * safetensors with the collected metadata atomically (core/safetensors.h).
 */
#include "convert/convert_int.h"
#include "core/progress.h"
#include "core/util.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pd_convert_params pd_convert_default_params(void) {
    pd_convert_params p;
    memset(&p, 0, sizeof p);
    p.key = "ema";
    p.sigma_init = 2.5;
    return p;
}

int cv_add_tensor(pd_converted *c, const char *name, const pk_tensor *pt, const float *f32,
                  int ndim, const long long *shape, pd_error *err) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 256;
        cv_tensor *t = realloc(c->t, (size_t)cap * sizeof *t);
        if (!t) return pd_fail(err, "out of memory");
        c->t = t;
        c->cap = cap;
    }
    cv_tensor *t = &c->t[c->n];
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > 8 || !(t->name = strdup(name))) return pd_fail(err, "out of memory");
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->pt = pt;
    t->f32 = f32;
    c->n++;
    c->n_params += (size_t)cv_numel(t);
    return 0;
}

const cv_tensor *cv_find(const pd_converted *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->t[i].name, name)) return &c->t[i];
    return NULL;
}

int cv_set_meta(pd_converted *c, const char *key, const char *value, pd_error *err) {
    if (c->n_meta == CV_MAX_META) return pd_fail(err, "too many metadata keys");
    if (!(c->meta_k[c->n_meta] = strdup(key)) || !(c->meta_v[c->n_meta] = strdup(value)))
        return pd_fail(err, "out of memory");
    c->n_meta++;
    return 0;
}

long long cv_numel(const cv_tensor *t) {
    long long n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

static float element(const uint8_t *p, pk_dtype dt) {
    uint16_t h;
    float f;
    double d;
    switch (dt) {
    case PK_F32: memcpy(&f, p, 4); return f;
    case PK_F16: memcpy(&h, p, 2); return st_f16_to_f32(h);
    case PK_BF16: memcpy(&h, p, 2); return st_bf16_to_f32(h);
    default: memcpy(&d, p, 8); return (float)d;   /* PK_F64 */
    }
}

int cv_tensor_f32(const cv_tensor *t, float *out, pd_error *err) {
    long long n = cv_numel(t);
    if (t->f32) {
        memcpy(out, t->f32, (size_t)n * sizeof *out);
    } else {
        const pk_tensor *pt = t->pt;
        const pk_storage *st = pt->storage->st;
        if (st->dtype != PK_F32 && st->dtype != PK_F16 && st->dtype != PK_BF16 &&
            st->dtype != PK_F64)
            return pd_fail(err, "tensor '%s' has dtype %s (float tensors only)", t->name,
                           pk_dtype_names[st->dtype]);
        size_t es = (size_t)pk_dtype_size[st->dtype];
        /* Row-major walk over the index space; the offset follows the strides. */
        long long idx[8] = {0}, off = pt->offset;
        for (long long i = 0; i < n; i++) {
            out[i] = element(st->data + (size_t)off * es, st->dtype);
            for (int d = pt->ndim - 1; d >= 0; d--) {
                off += pt->stride[d];
                if (++idx[d] < pt->shape[d]) break;
                off -= pt->stride[d] * pt->shape[d];
                idx[d] = 0;
            }
        }
    }
    for (long long i = 0; i < n; i++)
        if (!isfinite(out[i]))
            return pd_fail(err, "tensor '%s' holds a non-finite value at element %lld", t->name, i);
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* EDM's Conv2d: f = outer(f, f) / sum(f)^2, shape [1, 1, k, k] (training/networks.py). */
int cv_check_resample_filters(const pd_converted *c, const int *f, int nf, pd_error *err) {
    double sum = 0;
    for (int i = 0; i < nf; i++) sum += f[i];
    float buf[16];
    for (int i = 0; i < c->n; i++) {
        const cv_tensor *t = &c->t[i];
        if (!ends_with(t->name, ".resample_filter")) continue;
        if (t->ndim != 4 || t->shape[0] != 1 || t->shape[1] != 1 || t->shape[2] != nf ||
            t->shape[3] != nf || nf > 4)
            return pd_fail(err, "'%s' has the wrong shape for the resample filter of %d taps",
                           t->name, nf);
        if (cv_tensor_f32(t, buf, err)) return -1;
        for (int a = 0; a < nf; a++)
            for (int b = 0; b < nf; b++) {
                double want = f[a] * f[b] / (sum * sum);
                if (fabs(buf[a * nf + b] - want) > 1e-6 * fabs(want) + 1e-12)
                    return pd_fail(err, "'%s' does not match the config's resample_filter "
                                   "(element [%d, %d] is %g, expected %g)", t->name, a, b,
                                   (double)buf[a * nf + b], want);
            }
    }
    return 0;
}

static int has_ext(const char *path, const char *ext) { return ends_with(path, ext); }

/* One report of stage (unit "files" or "values"): done of total, the rate over the stage (begun
 * at t_stage), seconds since the call began (t_call). */
static void report(const pd_convert_params *p, const char *stage, const char *unit, long long done,
                   long long total, double t_call, double t_stage) {
    if (!p->progress) return;
    pd_progress pr;
    pg_init(&pr, "convert", unit);
    pr.stage = stage;
    pr.done = done;
    pr.total = total;
    pg_time(&pr, t_stage);
    pr.seconds = core_now() - t_call;
    if (!strcmp(unit, "files")) pr.rate = pr.eta_seconds = -1;   /* one file: no rate to speak of */
    p->progress(p->user, &pr);
}

int pd_convert_read(pd_converted **out, const char *in, const pd_convert_params *p,
                    pd_error *err) {
    *out = NULL;
    pd_converted *c = calloc(1, sizeof *c);
    if (!c) return pd_fail(err, "out of memory");
    snprintf(c->path, sizeof c->path, "%s", in);
    int rc;
    const double t0 = core_now();
    report(p, "reading", "files", 0, 1, t0, t0);
    if (has_ext(in, ".safetensors")) {
        if (!p->config) {
            rc = pd_fail(err, "%s: a safetensors state dict needs --config ARCH.yaml", in);
        } else if (!(rc = st_read(&c->st, in, err))) {
            c->have_st = 1;
            rc = cv_safetensors_state_dict(c, p, err);
        }
    } else {
        rc = tf_open(&c->tf, in, err);
        if (!rc) {
            c->have_tf = 1;
            const pk_value *root = c->tf.root;
            /* A dict of tensors is a state dict; anything else holds a network. */
            int sd = root->kind == PK_DICT && root->n >= 2;
            for (size_t i = 1; sd && i < root->n; i += 2) sd = root->items[i]->kind == PK_TENSOR;
            rc = sd ? cv_pickled_state_dict(c, root, p, err) : cv_edm_network(c, root, p, err);
        }
    }
    report(p, "reading", "files", 1, 1, t0, t0);
    if (rc) {
        pd_converted_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int pd_convert_write(const pd_converted *c, const char *path, const pd_convert_params *p,
                     pd_error *err) {
    const char **names = calloc((size_t)c->n + 1, sizeof *names);
    int *ndims = calloc((size_t)c->n + 1, sizeof *ndims);
    long long (*shapes)[8] = calloc((size_t)c->n + 1, sizeof *shapes);
    const float **data = calloc((size_t)c->n + 1, sizeof *data);
    float **owned = calloc((size_t)c->n + 1, sizeof *owned);
    int rc = -1;
    if (!names || !ndims || !shapes || !data || !owned) {
        pd_fail(err, "out of memory");
        goto done;
    }
    long long total = 0, done_n = 0;
    const double t0 = core_now();
    for (int i = 0; i < c->n; i++) total += cv_numel(&c->t[i]);
    for (int i = 0; i < c->n; i++) {
        const cv_tensor *t = &c->t[i];
        long long n = cv_numel(t);
        names[i] = t->name;
        ndims[i] = t->ndim;
        memcpy(shapes[i], t->shape, sizeof shapes[i]);
        if (t->f32) {
            data[i] = t->f32;
        } else {
            if (!(owned[i] = malloc((size_t)(n ? n : 1) * sizeof(float)))) {
                pd_fail(err, "out of memory converting '%s'", t->name);
                goto done;
            }
            pd_error e2;
            if (cv_tensor_f32(t, owned[i], &e2)) {
                pd_fail(err, "%s: %s", c->path, e2.msg);
                goto done;
            }
            data[i] = owned[i];
        }
        done_n += n;
        report(p, "converting", "values", done_n, total, t0, t0);
    }
    const double t1 = core_now();
    report(p, "writing", "files", 0, 1, t0, t1);
    rc = st_write(path, c->n, names, ndims, (const long long (*)[8])shapes, data, c->n_meta,
                  (const char *const *)c->meta_k, (const char *const *)c->meta_v, err);
    if (!rc) report(p, "writing", "files", 1, 1, t0, t1);
done:
    for (int i = 0; owned && i < c->n; i++) free(owned[i]);
    free(owned);
    free(names);
    free(ndims);
    free(shapes);
    free(data);
    return rc;
}

const char *pd_converted_summary(const pd_converted *c) { return c->summary; }

const char *pd_converted_meta(const pd_converted *c, int i, const char **value) {
    if (i < 0 || i >= c->n_meta) return NULL;
    *value = c->meta_v[i];
    return c->meta_k[i];
}

int pd_converted_tensor_count(const pd_converted *c) { return c->n; }
size_t pd_converted_param_count(const pd_converted *c) { return c->n_params; }

void pd_converted_free(pd_converted *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free(c->t[i].name);
    free(c->t);
    for (int i = 0; i < c->n_meta; i++) {
        free(c->meta_k[i]);
        free(c->meta_v[i]);
    }
    if (c->have_tf) tf_close(&c->tf);
    if (c->have_st) st_free(&c->st);
    free(c);
}
