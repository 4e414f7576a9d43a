/* model.c — pd_model, the architecture-neutral container: create (random weights), load/save as
 * safetensors, free, FLOP count; what differs between architectures goes through the ops table
 * (unet/net_ops.h).
 *
 * Files hold the parameters under EDM's state-dict names (DESIGN.md "File formats") and the config
 * as __metadata__["pixdiff.config"] (JSON, read by core/json.c). Loading is strict: the
 * config must be supported (unet_config_validate), every parameter of the configured net must be
 * present with its exact shape and finite values, and nothing else may be there but the net's
 * buffers: a buffer with fixed contents (resample_filter, iDDPM's u) is checked against them when
 * present, a loaded one (FourierEmbedding's freqs) is required. Saving writes every buffer, so a
 * pixdiff file loads into EDM's network with load_state_dict(strict=True). Writes are atomic
 * (st_write).
 */
#include "unet/songunet.h"
#include "unet/net_ops.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "core/yamldoc.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The arenas are allocated when wanted and the net needs at most max_params parameters. */
static int model_new(pd_model **out, const pd_unet_config *cfg, int arenas, size_t max_params,
                     pd_error *err) {
    *out = NULL;
    net_ids ids;
    if (net_ids_parse(&ids, cfg, err)) return -1;
    const net_ops *ops = net_ops_of(ids.arch);
    if (ops->validate(cfg, &ids, err)) return -1;
    pd_model *m = calloc(1, sizeof *m);
    if (!m) return pd_fail(err, "out of memory");
    m->cfg = *cfg;
    m->ids = ids;
    if (net_pc_init(&m->pc, &ids, cfg, err) || ops->build(m, err)) {
        pd_model_free(m);
        return -1;
    }
    if (!arenas || m->n_params > max_params) {   /* the tables alone: see songunet.h */
        *out = m;
        return 0;
    }
    m->params = core_alloc(m->n_params * sizeof(float));
    m->bufs = core_alloc((m->n_buf ? m->n_buf : 1) * sizeof(float));
    if (!m->params || !m->bufs) {
        pd_fail(err, "out of memory for %zu parameters", m->n_params);
        pd_model_free(m);
        return -1;
    }
    for (int i = 0; i < m->n_buffers; i++) {
        const unet_tensor_info *t = &m->buffers[i];
        if (m->buf_fixed[i]) memcpy(m->bufs + t->offset, m->buf_fixed[i], t->numel * sizeof(float));
        else memset(m->bufs + t->offset, 0, t->numel * sizeof(float));
    }
    *out = m;
    return 0;
}

int unet_model_alloc(pd_model **out, const pd_unet_config *cfg, pd_error *err) {
    return model_new(out, cfg, 1, SIZE_MAX, err);
}

int unet_model_alloc_within(pd_model **out, const pd_unet_config *cfg, size_t max_params,
                            pd_error *err) {
    return model_new(out, cfg, 1, max_params, err);
}

int unet_model_tables(pd_model **out, const pd_unet_config *cfg, pd_error *err) {
    return model_new(out, cfg, 0, 0, err);
}

static int is_norm(const unet_tensor_info *t) {
    return strstr(t->name, ".norm") || strstr(t->name, "_norm.");
}

/* Weights and biases ~ N(0, 1/fan_in) of their module; GroupNorm scale 1 + N(0, 0.1²) and shift
 * N(0, 0.1²). Nothing is zero-initialised (unlike EDM's conv1/proj/aux_conv), so a fresh model
 * exercises every path. Tensor i uses Philox stream i + 1 of the seed. */
int pd_model_create(pd_model **out, const pd_unet_config *cfg, uint64_t seed, pd_error *err) {
    pd_model *m;
    if (unet_model_alloc(&m, cfg, err)) return -1;
    for (int i = 0; i < m->n_tensors; i++) {
        unet_tensor_info *t = &m->tensors[i];
        float *p = m->params + t->offset;
        pd_randn(p, t->numel, seed, (uint64_t)i + 1);
        if (is_norm(t)) {
            int scale = strstr(t->name, ".weight") != NULL;
            for (size_t j = 0; j < t->numel; j++) p[j] = (scale ? 1.0f : 0.0f) + 0.1f * p[j];
            continue;
        }
        /* A bias follows its weight in the table; both scale by the weight's fan-in. */
        const unet_tensor_info *w = t->ndim >= 2 ? t : &m->tensors[i - 1];
        size_t fan_in = w->numel / (size_t)w->shape[0];
        float sd = (float)(1.0 / sqrt((double)fan_in));
        for (size_t j = 0; j < t->numel; j++) p[j] *= sd;
    }
    /* Loaded buffers (FourierEmbedding freqs): N(0, 16²) as EDM draws them, stream after the
     * parameters'. */
    for (int i = 0; i < m->n_buffers; i++) {
        if (m->buf_fixed[i]) continue;
        const unet_tensor_info *t = &m->buffers[i];
        float *p = m->bufs + t->offset;
        pd_randn(p, t->numel, seed, (uint64_t)(m->n_tensors + 1 + i));
        for (size_t j = 0; j < t->numel; j++) p[j] *= 16.0f;
    }
    *out = m;
    return 0;
}

void pd_model_free(pd_model *m) {
    if (!m) return;
    free(m->tensors);
    core_free(m->params);
    for (int i = 0; i < m->n_buffers; i++) free(m->buf_fixed[i]);
    free(m->buf_fixed);
    free(m->buffers);
    core_free(m->bufs);
    net_pc_free(&m->pc);
    if (m->arch) net_ops_of(m->ids.arch)->free_arch(m->arch);
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


/* Checks that tensor s has t's shape; the message names the file and the tensor. */
static int check_shape(const st_tensor *s, const unet_tensor_info *t, const char *path, pd_error *err) {
    long long want[8];
    for (int d = 0; d < t->ndim; d++) want[d] = t->shape[d];
    int same = s->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = s->shape[d] == want[d];
    if (same) return 0;
    char ws[96], gs[96];
    shape_str(ws, sizeof ws, t->ndim, want);
    shape_str(gs, sizeof gs, s->ndim, s->shape);
    return pd_fail(err, "%s: tensor '%s' has shape %s, the config needs %s", path, t->name, gs, ws);
}

static int buffer_index(const pd_model *m, const char *name) {
    for (int i = 0; i < m->n_buffers; i++)
        if (!strcmp(m->buffers[i].name, name)) return i;
    return -1;
}

/* Checks every parameter's presence and shape first, then copies: m->params is NULL when the
 * file holds fewer values than the config needs, and then some tensor is missing or misshaped. */
static int load_tensors(pd_model *m, const st_file *f, const char *path, pd_error *err) {
    for (int i = 0; i < m->n_tensors; i++) {
        const unet_tensor_info *t = &m->tensors[i];
        const st_tensor *s = st_find(f, t->name);
        if (!s) {
            long long want[8];
            char ws[96];
            for (int d = 0; d < t->ndim; d++) want[d] = t->shape[d];
            shape_str(ws, sizeof ws, t->ndim, want);
            return pd_fail(err, "%s: tensor '%s' %s is missing (the file's config needs it)", path,
                           t->name, ws);
        }
        if (check_shape(s, t, path, err)) return -1;
    }
    if (!m->params)   /* cannot happen: the tensors checked above hold n_params values */
        return pd_fail(err, "%s: the config needs more values than the file holds", path);
    /* Straight from the file into the arena (st_open): the weights are never held twice. */
    for (int i = 0; i < m->n_tensors; i++) {
        const unet_tensor_info *t = &m->tensors[i];
        float *dst = m->params + t->offset;
        if (st_load(f, st_find(f, t->name), dst, err)) return -1;
        for (size_t j = 0; j < t->numel; j++)
            if (!isfinite(dst[j]))
                return pd_fail(err, "%s: tensor '%s' holds a non-finite value at element %zu", path,
                               t->name, j);
    }
    for (int i = 0; i < m->n_buffers; i++) {
        const unet_tensor_info *t = &m->buffers[i];
        const st_tensor *s = st_find(f, t->name);
        if (!s) {
            if (m->buf_fixed[i]) continue;   /* fixed contents: the runtime knows them */
            return pd_fail(err, "%s: buffer '%s' is missing (the file's config needs it)", path,
                           t->name);
        }
        if (check_shape(s, t, path, err)) return -1;
        float *v = malloc((t->numel ? t->numel : 1) * sizeof *v);   /* buffers are small */
        if (!v) return pd_fail(err, "%s: out of memory", path);
        if (st_load(f, s, v, err)) { free(v); return -1; }
        int is_u = m->pc.u && !strcmp(t->name, "u"), bad = 0;
        for (size_t j = 0; j < t->numel && !bad; j++) {
            if (!isfinite(v[j])) {
                pd_fail(err, "%s: buffer '%s' holds a non-finite value at element %zu", path,
                        t->name, j);
                bad = 1;
                break;
            }
            /* A fixed buffer that differs is a different network (e.g. another resample_filter
             * than the config's); 1e-6 relative allows the writer's own float rounding. iDDPM's u
             * comes from a 1000-step float recursion whose sin/sqrt rounding may differ by a few
             * ulps per step: 1e-4 relative, and the file's own table is used (EDM's exact
             * nearest-σ choices). */
            float tol = is_u ? 1e-4f : 1e-6f;
            if (m->buf_fixed[i] && fabsf(v[j] - m->buf_fixed[i][j]) > tol * (1 + fabsf(v[j]))) {
                pd_fail(err, "%s: buffer '%s' element %zu is %g, the config implies %g", path,
                        t->name, j, (double)v[j], (double)m->buf_fixed[i][j]);
                bad = 1;
            }
        }
        if (!bad && (!m->buf_fixed[i] || is_u))
            memcpy(m->bufs + t->offset, v, t->numel * sizeof(float));
        if (!bad && is_u) memcpy(m->pc.u, v, t->numel * sizeof(float));
        free(v);
        if (bad) return -1;
    }
    for (int i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[i].name;
        if (unet_tensor_index(m, name) < 0 && buffer_index(m, name) < 0)
            return pd_fail(err, "%s: unexpected tensor '%s' (not part of the configured %s)",
                           path, name, net_ops_of(m->ids.arch)->title);
    }
    return 0;
}

int pd_model_load(pd_model **out, const char *path, pd_error *err) {
    *out = NULL;
    st_file f;
    if (st_open(&f, path, err)) return -1;
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
    if (yd_load_json(&doc, js, src, err)) { st_free(&f); return -1; }
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
    if (!rc) rc = core_sha256_file(path, m->sha256, err);
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
    int cap = m->n_tensors + m->n_buffers;
    const char **names = calloc(cap, sizeof *names);
    int *ndims = calloc(cap, sizeof *ndims);
    long long (*shapes)[8] = calloc(cap, sizeof *shapes);
    const float **data = calloc(cap, sizeof *data);
    int n = 0, rc;
    if (!names || !ndims || !shapes || !data) {
        rc = pd_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < cap; i++) {
        const unet_tensor_info *t = i < m->n_tensors ? &m->tensors[i] : &m->buffers[i - m->n_tensors];
        names[n] = t->name;
        ndims[n] = t->ndim;
        for (int d = 0; d < t->ndim; d++) shapes[n][d] = t->shape[d];
        data[n++] = (i < m->n_tensors ? m->params : m->bufs) + t->offset;
    }
    const char *keys[2] = {"format", "pixdiff.config"};
    const char *vals[2] = {"pt", json};
    rc = st_write(path, n, names, ndims, (const long long (*)[8])shapes, data, 2, keys, vals, err);
done:
    free(names);
    free(ndims);
    free(shapes);
    free(data);
    free(json);
    return rc;
}

double pd_model_gflops(const pd_model *m, int res) { return net_ops_of(m->ids.arch)->gflops(m, res); }
