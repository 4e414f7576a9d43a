/* checkpoint.c — the checkpoint container of the trainer and SiD (see checkpoint.h).
 *
 * The bytes of a checkpoint are fixed by what the caller adds and in which order: this file
 * formats values exactly as the first checkpoints did (%lld counts, %.17g seconds, %llu seed,
 * the rng line) and writes tensors and keys in the given order, so checkpoints written before
 * this module existed and after it are the same bytes for the same state. Reading never changes
 * the caller's state: it checks everything and hands values back.
 */
#include "distill/checkpoint.h"
#include "distill/grad_shares.h"
#include "unet/songunet.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ writing */

void ck_meta_init(ck_meta *m, const ck_kind *kind) {
    m->kind = kind;
    m->n = 0;
    m->overflow = 0;
}

/* The next slot, its key set to `key` (already prefixed or global); NULL when full. */
static int add_key(ck_meta *m, const char *prefix, const char *name) {
    if (m->n >= CK_META_MAX) {
        m->overflow = 1;
        return -1;
    }
    if (prefix) snprintf(m->key[m->n], sizeof m->key[m->n], "%s.%s", prefix, name);
    else snprintf(m->key[m->n], sizeof m->key[m->n], "%s", name);
    return m->n++;
}

void ck_meta_str(ck_meta *m, const char *name, const char *value) {
    int i = add_key(m, m->kind->prefix, name);
    if (i >= 0) m->val[i] = value;
}

void ck_meta_count(ck_meta *m, const char *name, long long v) {
    int i = add_key(m, m->kind->prefix, name);
    if (i < 0) return;
    snprintf(m->num[i], sizeof m->num[i], "%lld", v);
    m->val[i] = m->num[i];
}

void ck_meta_real(ck_meta *m, const char *name, double v, int digits) {
    int i = add_key(m, m->kind->prefix, name);
    if (i < 0) return;
    snprintf(m->num[i], sizeof m->num[i], "%.*g", digits, v);
    m->val[i] = m->num[i];
}

void ck_meta_position(ck_meta *m, long long images_seen, long long step, double seconds,
                      uint64_t seed) {
    ck_meta_str(m, "format", m->kind->format);
    ck_meta_count(m, "images_seen", images_seen);
    ck_meta_count(m, "step", step);
    ck_meta_real(m, "seconds", seconds, 17);
    int i = add_key(m, m->kind->prefix, "seed");
    if (i >= 0) {
        snprintf(m->num[i], sizeof m->num[i], "%llu", (unsigned long long)seed);
        m->val[i] = m->num[i];
    }
    if ((i = add_key(m, m->kind->prefix, "rng")) >= 0) {
        snprintf(m->num[i], sizeof m->num[i],
                 "philox4x32-10 key=%llu next_image=%lld next_step=%lld",
                 (unsigned long long)seed, images_seen, step);
        m->val[i] = m->num[i];
    }
}

void ck_meta_config(ck_meta *m, const char *yaml_text, const char *source) {
    ck_meta_str(m, "config_yaml", yaml_text ? yaml_text : "");
    ck_meta_str(m, "config_source", source);
}

int ck_meta_model(ck_meta *m, const pd_unet_config *model, const char *path, pd_error *err) {
    if (unet_config_to_json(model, m->json, sizeof m->json) < 0)
        return pd_fail(err, "%s: model config too large for the checkpoint metadata", path);
    int i = add_key(m, NULL, "pixdiff.config");
    if (i >= 0) m->val[i] = m->json;
    if ((i = add_key(m, NULL, "pixdiff.version")) >= 0) m->val[i] = pd_version();
    return 0;
}

int ck_write(const char *path, int n_arrays, const char *const *names,
             const float *const *arrays, size_t n, const ck_meta *m, pd_error *err) {
    enum { MAX_ARRAYS = 16 };
    if (m->overflow || n_arrays > MAX_ARRAYS)
        return pd_fail(err, "%s: checkpoint layout exceeds %d metadata keys or %d arrays", path,
                       CK_META_MAX, MAX_ARRAYS);
    int ndims[MAX_ARRAYS];
    long long shapes[MAX_ARRAYS][8];
    const char *keys[CK_META_MAX];
    for (int i = 0; i < n_arrays; i++) {
        ndims[i] = 1;
        memset(shapes[i], 0, sizeof shapes[i]);
        shapes[i][0] = (long long)n;
    }
    for (int i = 0; i < m->n; i++) keys[i] = m->key[i];
    return st_write(path, n_arrays, names, ndims, (const long long(*)[8])shapes, arrays, m->n,
                    keys, m->val, err);
}

/* ------------------------------------------------------------------ reading */

int ck_open(ck_file *c, const char *path, const ck_kind *kind, pd_error *err) {
    c->path = path;
    c->kind = kind;
    return st_read(&c->f, path, err);
}

void ck_close(ck_file *c) { st_free(&c->f); }

const char *ck_get(const ck_file *c, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->kind->prefix, name);
    return st_meta(&c->f, key);
}

int ck_get_count(const ck_file *c, const char *name, long long *out, pd_error *err) {
    const char *v = ck_get(c, name);
    if (!v)
        return pd_fail(err, "%s: not a pixdiff %s checkpoint (no %s.%s)", c->path, c->kind->name,
                       c->kind->prefix, name);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < 0)
        return pd_fail(err, "%s: corrupt checkpoint: %s.%s = '%.40s' is not a count", c->path,
                       c->kind->prefix, name, v);
    *out = x;
    return 0;
}

int ck_get_shares(const ck_file *c, int *shares, pd_error *err) {
    long long n = GS_MAX_SHARES;
    if (ck_get(c, "shares") && ck_get_count(c, "shares", &n, err)) return -1;
    if (n < 1 || n > GS_MAX_SHARES)
        return pd_fail(err, "%s: %lld gradient shares recorded (1..%d)", c->path, n, GS_MAX_SHARES);
    *shares = (int)n;
    return 0;
}

double ck_get_real(const ck_file *c, const char *name) {
    const char *v = ck_get(c, name);
    return v ? strtod(v, NULL) : 0.0;
}

int ck_config_text(const ck_file *c, const char **text, char *source, size_t cap, pd_error *err) {
    const ck_kind *k = c->kind;
    const char *fmt = ck_get(c, "format"), *src = ck_get(c, "config_source");
    *text = ck_get(c, "config_yaml");
    if (!fmt || !*text)
        return pd_fail(err, "%s: not a pixdiff %s checkpoint (no %s.* metadata)", c->path, k->name,
                       k->prefix);
    if (strcmp(fmt, k->format))
        return pd_fail(err, "%s: %s format '%s' is not the supported '%s'", c->path,
                       k->format_label, fmt, k->format);
    snprintf(source, cap, "%s (config of checkpoint %s)", src ? src : "config", c->path);
    return 0;
}

int ck_read_position(const ck_file *c, uint64_t seed, int batch, ck_position *pos, pd_error *err) {
    long long images, step, saved_seed;
    if (ck_get_count(c, "images_seen", &images, err) || ck_get_count(c, "step", &step, err) ||
        ck_get_count(c, "seed", &saved_seed, err))
        return -1;
    if ((uint64_t)saved_seed != seed)
        return pd_fail(err, "%s: checkpoint seed %lld differs from training.seed %llu", c->path,
                       saved_seed, (unsigned long long)seed);
    if (step * (long long)batch != images)
        return pd_fail(err, "%s: corrupt checkpoint: %lld %s of batch %d is not %lld images",
                       c->path, step, c->kind->steps, batch, images);
    double secs = ck_get_real(c, "seconds");
    pos->images_seen = images;
    pos->step = step;
    pos->seconds = isfinite(secs) && secs >= 0 ? secs : 0.0;
    return 0;
}

const st_tensor *ck_tensor(const ck_file *c, const char *name, size_t n, pd_error *err) {
    const st_tensor *t = st_find(&c->f, name);
    if (!t) {
        pd_fail(err, "%s: corrupt checkpoint: tensor '%s' is missing", c->path, name);
        return NULL;
    }
    if (t->ndim != 1 || t->numel != n) {
        pd_fail(err, "%s: tensor '%s' holds %zu values but %s has %zu parameters", c->path, name,
                t->numel, c->kind->owner, n);
        return NULL;
    }
    for (size_t k = 0; k < n; k++)
        if (!isfinite(t->data[k])) {
            pd_fail(err, "%s: corrupt checkpoint: tensor '%s' has a non-finite value at %zu",
                    c->path, name, k);
            return NULL;
        }
    return t;
}

int ck_read_arrays(const ck_file *c, int n_arrays, const char *const *names, float *const *dst,
                   size_t n, pd_error *err) {
    const st_tensor *src[16];
    if (n_arrays > 16) return pd_fail(err, "%s: too many checkpoint arrays", c->path);
    for (int i = 0; i < n_arrays; i++)
        if (!(src[i] = ck_tensor(c, names[i], n, err))) return -1;
    for (int i = 0; i < n_arrays; i++) memcpy(dst[i], src[i]->data, n * sizeof(float));
    return 0;
}
