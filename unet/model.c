/* model.c — pd_model: create with random weights, load/save as safetensors, FLOP count.
 *
 * Files hold the tensors under EDM's EDMPrecond state-dict names (DESIGN.md "File formats") and
 * the config as __metadata__["pixdiff.config"] (JSON, parsed with the YAML reader). Loading is
 * strict: the config must be supported (unet_config_validate), every tensor of the configured
 * net must be present with its exact shape and finite values, and nothing else may be there
 * except EDM's resample_filter buffers (ignored: only the [1,1] filter is supported, and the
 * runtime synthesises it). Saving writes those buffers too, so a pixdiff file loads into EDM's
 * EDMPrecond with load_state_dict(strict=True). Writes are atomic (st_write). The feature
 * classifier (arch "classifier", unet/classifier.h) uses the same file layout with its own
 * tensor table and no buffers; the functions here dispatch on cfg.arch where the two differ.
 */
#include "unet/songunet.h"
#include "unet/unet_arch.h"
#include "unet/classifier.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "core/yamldoc.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_norm(const pd_tensor_info *t) {
    return strstr(t->name, ".norm") || strstr(t->name, "_norm.");
}

/* Weights and biases ~ N(0, 1/fan_in) of their module; GroupNorm scale 1 + N(0, 0.1²) and shift
 * N(0, 0.1²). Nothing is zero-initialised (unlike EDM's conv1/proj/aux_conv), so a fresh model
 * exercises every path. Tensor i uses Philox stream i + 1 of the seed. */
int pd_model_create(pd_model **out, const pd_unet_config *cfg, uint64_t seed, pd_error *err) {
    pd_model *m;
    if (unet_model_alloc(&m, cfg, err)) return -1;
    for (int i = 0; i < m->n_tensors; i++) {
        pd_tensor_info *t = &m->tensors[i];
        float *p = m->params + t->offset;
        pd_randn(p, t->numel, seed, (uint64_t)i + 1);
        if (is_norm(t)) {
            int scale = strstr(t->name, ".weight") != NULL;
            for (size_t j = 0; j < t->numel; j++) p[j] = (scale ? 1.0f : 0.0f) + 0.1f * p[j];
            continue;
        }
        /* A bias follows its weight in the table; both scale by the weight's fan-in. */
        const pd_tensor_info *w = t->ndim >= 2 ? t : &m->tensors[i - 1];
        size_t fan_in = w->numel / (size_t)w->shape[0];
        float sd = (float)(1.0 / sqrt((double)fan_in));
        for (size_t j = 0; j < t->numel; j++) p[j] *= sd;
    }
    *out = m;
    return 0;
}

void pd_model_free(pd_model *m) {
    if (!m) return;
    free(m->tensors);
    pd_free(m->params);
    if (clf_config_is(&m->cfg)) clf_arch_free(m->arch);
    else unet_arch_free(m->arch);
    free(m);
}

const pd_unet_config *pd_model_config(const pd_model *m) { return &m->cfg; }
size_t pd_model_param_count(const pd_model *m) { return m->n_params; }
const char *pd_model_sha256(const pd_model *m) { return m->sha256; }
const char *pd_model_path(const pd_model *m) { return m->path; }

static void shape_str(char *b, size_t cap, int ndim, const long long *s) {
    size_t len = snprintf(b, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += snprintf(b + len, cap - len, "%s%lld", i ? ", " : "", s[i]);
    if (len < cap) snprintf(b + len, cap - len, "]");
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Checks every tensor's presence and shape first, then copies: m->params is NULL when the file
 * holds fewer values than the config needs, and then some tensor is missing or misshaped. */
static int load_tensors(pd_model *m, const st_file *f, const char *path, pd_error *err) {
    for (int i = 0; i < m->n_tensors; i++) {
        const pd_tensor_info *t = &m->tensors[i];
        long long want[8];
        for (int d = 0; d < t->ndim; d++) want[d] = t->shape[d];
        char ws[96], gs[96];
        shape_str(ws, sizeof ws, t->ndim, want);
        const st_tensor *s = st_find(f, t->name);
        if (!s)
            return pd_fail(err, "%s: tensor '%s' %s is missing (the file's config needs it)", path,
                           t->name, ws);
        int same = s->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = s->shape[d] == want[d];
        if (!same) {
            shape_str(gs, sizeof gs, s->ndim, s->shape);
            return pd_fail(err, "%s: tensor '%s' has shape %s, the config needs %s", path, t->name,
                           gs, ws);
        }
    }
    if (!m->params)   /* cannot happen: the tensors checked above hold n_params values */
        return pd_fail(err, "%s: the config needs more values than the file holds", path);
    for (int i = 0; i < m->n_tensors; i++) {
        const pd_tensor_info *t = &m->tensors[i];
        const st_tensor *s = st_find(f, t->name);
        for (size_t j = 0; j < t->numel; j++)
            if (!isfinite(s->data[j]))
                return pd_fail(err, "%s: tensor '%s' holds a non-finite value at element %zu", path,
                               t->name, j);
        memcpy(m->params + t->offset, s->data, t->numel * sizeof(float));
    }
    for (int i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[i].name;
        if (ends_with(name, ".resample_filter") && !clf_config_is(&m->cfg)) continue;
        if (unet_tensor_index(m, name) < 0)
            return pd_fail(err, "%s: unexpected tensor '%s' (not part of the configured %s)",
                           path, name, clf_config_is(&m->cfg) ? "classifier" : "SongUNet");
    }
    return 0;
}

int pd_model_load(pd_model **out, const char *path, pd_error *err) {
    *out = NULL;
    st_file f;
    if (st_read(&f, path, err)) return -1;
    const char *js = st_meta(&f, "pixdiff.config");
    const char *kind = st_pixdiff_other_kind(&f, "pixdiff.config");
    if (kind) {
        pd_fail(err, "%s: not a model: it is %s", path, kind);
        st_free(&f);
        return -1;
    }
    if (!js) {
        st_free(&f);
        return pd_fail(err, "%s: no __metadata__ \"pixdiff.config\" (not a pixdiff model file)",
                       path);
    }
    char src[1100];
    snprintf(src, sizeof src, "%s: pixdiff.config", path);
    yd_doc doc;
    pd_unet_config cfg = pd_unet_config_default();
    if (yd_load_string(&doc, js, src, err)) { st_free(&f); return -1; }
    int rc = unet_config_from_node(&cfg, &doc, doc.root, err);
    yd_free(&doc);
    pd_error e2;
    if (!rc && unet_config_validate(&cfg, &e2)) rc = pd_fail(err, "%s: %s", path, e2.msg);
    /* Every parameter must come from a tensor of the file, so the file's values bound the arena:
     * checked before allocating it (docs/testing.md "Resource rule"). */
    size_t file_values = 0;
    for (int i = 0; i < f.n_tensors; i++) file_values += f.tensors[i].numel;
    pd_model *m = NULL;
    if (!rc && unet_model_alloc_within(&m, &cfg, file_values, &e2))
        rc = pd_fail(err, "%s: %s", path, e2.msg);
    if (!rc) rc = load_tensors(m, &f, path, err);
    st_free(&f);
    if (!rc) rc = pd_sha256_file(path, m->sha256, err);
    if (rc) { pd_model_free(m); return -1; }
    snprintf(m->path, sizeof m->path, "%s", path);
    *out = m;
    return 0;
}

int pd_model_save(const pd_model *m, const char *path, pd_error *err) {
    pd_error e2;
    if (unet_config_validate(&m->cfg, &e2)) return pd_fail(err, "%s: not saved: %s", path, e2.msg);
    char *json = malloc(16384);
    if (!json) return pd_fail(err, "out of memory");
    if (unet_config_to_json(&m->cfg, json, 16384) < 0) {
        free(json);
        return pd_fail(err, "%s: not saved: config too large", path);
    }
    const unet_arch *a = m->arch;
    /* EDM registers a resample_filter buffer after the weight/bias of every resampling Conv2d
     * (conv0 and skip of up/down blocks); the state dict lists it right after the bias. */
    int cap = m->n_tensors + (clf_config_is(&m->cfg) ? 0 : 4 * (a->n_enc + a->n_dec));
    const char **names = calloc(cap, sizeof *names);
    int *ndims = calloc(cap, sizeof *ndims);
    long long (*shapes)[8] = calloc(cap, sizeof *shapes);
    const float **data = calloc(cap, sizeof *data);
    char (*fnames)[112] = calloc(cap, sizeof *fnames);
    static const float filter[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    int n = 0, rc;
    if (!names || !ndims || !shapes || !data || !fnames) {
        rc = pd_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const pd_tensor_info *t = &m->tensors[i];
        names[n] = t->name;
        ndims[n] = t->ndim;
        for (int d = 0; d < t->ndim; d++) shapes[n][d] = t->shape[d];
        data[n++] = m->params + t->offset;
        if (clf_config_is(&m->cfg) ||
            (!ends_with(t->name, ".conv0.bias") && !ends_with(t->name, ".skip.bias")))
            continue;
        for (int k = 0; k < a->n_enc + a->n_dec; k++) {
            const unet_block *b = k < a->n_enc ? &a->enc[k] : &a->dec[k - a->n_enc];
            if (!(b->up || b->down) || (i != b->t_conv0 + 1 && i != b->t_skip + 1)) continue;
            snprintf(fnames[n], sizeof fnames[n], "%.*s.resample_filter",
                     (int)(strlen(t->name) - 5), t->name);
            names[n] = fnames[n];
            ndims[n] = 4;
            shapes[n][0] = shapes[n][1] = 1;
            shapes[n][2] = shapes[n][3] = 2;
            data[n++] = filter;
        }
    }
    const char *keys[2] = {"format", "pixdiff.config"};
    const char *vals[2] = {"pt", json};
    rc = st_write(path, n, names, ndims, (const long long (*)[8])shapes, data, 2, keys, vals, err);
done:
    free(names);
    free(ndims);
    free(shapes);
    free(data);
    free(fnames);
    free(json);
    return rc;
}

/* 2·MACs of one evaluation of one image at res (0 = trained): convolutions, linears and the two
 * attention matmuls (QᵀK and AV). Elementwise work (norms, SiLU, softmax) is not counted. */
double pd_model_gflops(const pd_model *m, int res) {
    const pd_unet_config *c = &m->cfg;
    if (clf_config_is(c)) return clf_gflops(m);   /* the classifier runs at its trained size */
    const unet_arch *a = m->arch;
    if (res <= 0) res = c->img_resolution;
    double macs = 0, L0 = (double)res * res, E = a->emb_ch, Cn = a->noise_ch;
    macs += (double)c->label_dim * Cn + Cn * E + E * E;
    macs += 9.0 * c->in_channels * c->model_channels * L0;
    for (int k = 0; k < a->n_enc + a->n_dec; k++) {
        const unet_block *b = k < a->n_enc ? &a->enc[k] : &a->dec[k - a->n_enc];
        double h = res >> b->level_out, Lo = h * h, ci = b->cin, co = b->cout;
        macs += 9 * ci * co * Lo + E * co + 9 * co * co * Lo;
        if (b->has_skip) macs += ci * co * Lo;
        if (b->attn) macs += 3 * co * co * Lo + 2 * Lo * Lo * co + co * co * Lo;
    }
    macs += 9.0 * a->dec[a->n_dec - 1].cout * c->out_channels * L0;
    return 2 * macs / 1e9;
}
