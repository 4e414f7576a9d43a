/* amed_predictor.c — AMED's predictor g_phi (docs/algorithms.md §S4.4): create, load, save, forward and
 * backward, and the kind name table.
 *
 * Forward for one image (feature f, 64 values; raw sigmas t_n, t_{n+1}):
 *   z = W2 SiLU(W1 f + b1) + b2                                    (64 -> 128 -> 4)
 *   e(t) = [sin(t f_k), cos(t f_k)], f_k = 10^(-4k/3), k = 0..3;   e~(t) = SiLU(W_t e(t) + b_t)
 *   u = [z, e~(t_n), e~(t_{n+1})]                                  (20 values, this order)
 *   r = sigmoid(w_r u + b_r),  c = 1 + s_dir (2 sigmoid(w_c u + b_c) - 1),  a likewise (s_time)
 * exactly as the reference AMED_predictor (zju-pi/diff-sampler training/networks.py: its
 * PositionalEmbedding with endpoint=True gives these frequencies, and its sin/cos flip this
 * order). The backward is the chain rule through the same steps; tests/test_amed_predictor.c
 * checks it against finite differences and the forward against an independent double twin.
 *
 * File: safetensors, tensors named as the reference module's state dict, and
 * __metadata__["pixdiff.amed"] = JSON of pd_amed_info (read back with core/json.c, which also
 * takes the nan/inf a diverged final_loss is written as). Loading checks every tensor's shape
 * and that the heads match s_dir / s_time.
 */
#include "samplers/amed_predictor.h"
#include "core/jsonbuf.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/yamldoc.h"
#include "schedules/names_match.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AMED_FORMAT "1"

static const char *const kind_names[] = {
    [PD_AMED_SOLVER] = "solver",
    [PD_AMED_PLUGIN_IPNDM] = "plugin-ipndm",
    [PD_AMED_PLUGIN_EULER] = "plugin-euler",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == PD_AMED_KIND_COUNT, "amed kind names");

const char *pd_amed_kind_name(pd_amed_kind k) {
    return (unsigned)k < PD_AMED_KIND_COUNT ? kind_names[k] : NULL;
}

int pd_amed_kind_from_name(const char *name) {
    if (!name) return -1;
    int k = names_lookup(kind_names, PD_AMED_KIND_COUNT, name);
    if (k >= 0) return k;
    /* the CLI's --plugin takes the base solver's name alone */
    static const char *const short_names[] = {"amed", "ipndm", "euler"};
    return names_lookup(short_names, 3, name);
}

pd_sampler_kind pd_amed_kind_sampler(pd_amed_kind k) {
    return k == PD_AMED_SOLVER ? PD_SAMPLER_AMED : PD_SAMPLER_AMED_PLUGIN;
}

/* ------------------------------------------------------------------ arena */

typedef struct {
    const char *name;
    int rows, cols;           /* cols 0: a bias vector [rows] */
} tensor_def;

/* In state-dict order; index 8..11 are the optional heads. */
static const tensor_def defs[12] = {
    {"map_layer0.weight", AMED_EMB, AMED_EMB},   {"map_layer0.bias", AMED_EMB, 0},
    {"enc_layer0.weight", AMED_HID, AMED_FEAT},  {"enc_layer0.bias", AMED_HID, 0},
    {"enc_layer1.weight", AMED_BOT, AMED_HID},   {"enc_layer1.bias", AMED_BOT, 0},
    {"fc_r.weight", 1, AMED_U},                  {"fc_r.bias", 1, 0},
    {"fc_scale_dir.weight", 1, AMED_U},          {"fc_scale_dir.bias", 1, 0},
    {"fc_scale_time.weight", 1, AMED_U},         {"fc_scale_time.bias", 1, 0},
};

static size_t def_numel(const tensor_def *t) { return (size_t)t->rows * (t->cols ? t->cols : 1); }

static int present(const pd_amed_info *info, int t) {
    if (t >= 10) return info->s_time > 0;
    if (t >= 8) return info->s_dir > 0;
    return 1;
}

/* The offsets of the tensors in defs order (AMED_NO_HEAD when absent). */
static void offsets(const pd_amed_predictor *p, size_t off[12]) {
    const size_t *o[12] = {&p->map_w, &p->map_b, &p->enc0_w, &p->enc0_b, &p->enc1_w, &p->enc1_b,
                           &p->r_w,   &p->r_b,   &p->c_w,    &p->c_b,    &p->a_w,    &p->a_b};
    for (int t = 0; t < 12; t++) off[t] = *o[t];
}

static int check_info(const pd_amed_info *info, pd_error *err) {
    if ((unsigned)info->kind >= PD_AMED_KIND_COUNT)
        return pd_fail(err, "amed predictor: unknown kind %d", (int)info->kind);
    if (!(info->s_dir >= 0 && info->s_dir < 1) || !(info->s_time >= 0 && info->s_time < 1))
        return pd_fail(err, "amed predictor: s_dir %g and s_time %g must be in [0, 1)", info->s_dir,
                       info->s_time);
    return 0;
}

int amed_predictor_alloc(pd_amed_predictor **out, const pd_amed_info *info, pd_error *err) {
    *out = NULL;
    if (check_info(info, err)) return -1;
    pd_amed_predictor *p = calloc(1, sizeof *p);
    if (!p) return pd_fail(err, "amed predictor: out of memory");
    p->info = *info;
    size_t *o[12] = {&p->map_w, &p->map_b, &p->enc0_w, &p->enc0_b, &p->enc1_w, &p->enc1_b,
                     &p->r_w,   &p->r_b,   &p->c_w,    &p->c_b,    &p->a_w,    &p->a_b};
    size_t n = 0;
    for (int t = 0; t < 12; t++) {
        if (!present(info, t)) {
            *o[t] = AMED_NO_HEAD;
            continue;
        }
        *o[t] = n;
        n += def_numel(&defs[t]);
    }
    p->n_params = n;
    p->params = calloc(n, sizeof(float));
    if (!p->params) {
        free(p);
        return pd_fail(err, "amed predictor: out of memory");
    }
    *out = p;
    return 0;
}

void pd_amed_predictor_free(pd_amed_predictor *p) {
    if (!p) return;
    free(p->params);
    free(p);
}

const pd_amed_info *pd_amed_predictor_info(const pd_amed_predictor *p) { return p ? &p->info : NULL; }

size_t pd_amed_predictor_param_count(const pd_amed_predictor *p) { return p ? p->n_params : 0; }

int pd_amed_predictor_create(pd_amed_predictor **out, const pd_amed_info *info, uint64_t seed,
                             int zero_init, pd_error *err) {
    pd_amed_predictor *p;
    if (amed_predictor_alloc(&p, info, err)) return -1;
    if (!zero_init) {
        size_t off[12];
        offsets(p, off);
        /* §S4.4 init: W_t Xavier-uniform, the other weights N(0, 1/fan_in), biases 0. Tensor t
         * draws from its own Philox stream, so adding a head never changes the others. */
        for (int t = 0; t < 12; t += 2) {
            if (off[t] == AMED_NO_HEAD) continue;
            const tensor_def *d = &defs[t];
            size_t numel = def_numel(d);
            float *w = p->params + off[t];
            if (t == 0) {
                double lim = sqrt(6.0 / (d->rows + d->cols));
                rng_randu(w, numel, seed, 0x414D4900u + (uint64_t)t);
                for (size_t i = 0; i < numel; i++) w[i] = (float)(lim * (2.0 * w[i] - 1.0));
            } else {
                double sd = sqrt(1.0 / d->cols);
                pd_randn(w, numel, seed, 0x414D4900u + (uint64_t)t);
                for (size_t i = 0; i < numel; i++) w[i] = (float)(sd * w[i]);
            }
        }
    }
    *out = p;
    return 0;
}

/* ------------------------------------------------------------------ forward / backward */

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double silu(double x) { return x * sigmoid(x); }
static double silu_grad(double x) {
    double s = sigmoid(x);
    return s * (1.0 + x * (1.0 - s));
}

static void embed(const pd_amed_predictor *p, double t, double e[AMED_EMB], double q[AMED_EMB],
                  double out[AMED_EMB]) {
    for (int k = 0; k < 4; k++) {
        double f = pow(10.0, -4.0 * k / 3.0);
        e[k] = sin(t * f);
        e[4 + k] = cos(t * f);
    }
    const float *W = p->params + p->map_w, *b = p->params + p->map_b;
    for (int o = 0; o < AMED_EMB; o++) {
        double acc = b[o];
        for (int i = 0; i < AMED_EMB; i++) acc += (double)W[o * AMED_EMB + i] * e[i];
        q[o] = acc;
        out[o] = silu(acc);
    }
}

static double head(const pd_amed_predictor *p, size_t w, size_t b, const double *u) {
    double acc = p->params[b];
    for (int i = 0; i < AMED_U; i++) acc += (double)p->params[w + i] * u[i];
    return acc;
}

void amed_forward(const pd_amed_predictor *p, const float *feature, double t_cur, double t_next,
                  amed_cache *k) {
    const pd_amed_info *in = &p->info;
    for (int i = 0; i < AMED_FEAT; i++) k->f[i] = feature ? feature[i] : 0.0;
    const float *W0 = p->params + p->enc0_w, *b0 = p->params + p->enc0_b;
    const float *W1 = p->params + p->enc1_w, *b1 = p->params + p->enc1_b;
    double g[AMED_HID];
    for (int j = 0; j < AMED_HID; j++) {
        double acc = b0[j];
        for (int i = 0; i < AMED_FEAT; i++) acc += (double)W0[j * AMED_FEAT + i] * k->f[i];
        k->h1[j] = acc;
        g[j] = silu(acc);
    }
    for (int m = 0; m < AMED_BOT; m++) {
        double acc = b1[m];
        for (int j = 0; j < AMED_HID; j++) acc += (double)W1[m * AMED_HID + j] * g[j];
        k->u[m] = acc;
    }
    embed(p, t_cur, k->e[0], k->q[0], k->u + AMED_BOT);
    embed(p, t_next, k->e[1], k->q[1], k->u + AMED_BOT + AMED_EMB);
    k->pre_r = head(p, p->r_w, p->r_b, k->u);
    k->r = sigmoid(k->pre_r);
    k->pre_c = p->c_w != AMED_NO_HEAD ? head(p, p->c_w, p->c_b, k->u) : 0.0;
    k->c = p->c_w != AMED_NO_HEAD ? 1.0 + in->s_dir * (2.0 * sigmoid(k->pre_c) - 1.0) : 1.0;
    k->pre_a = p->a_w != AMED_NO_HEAD ? head(p, p->a_w, p->a_b, k->u) : 0.0;
    k->a = p->a_w != AMED_NO_HEAD ? 1.0 + in->s_time * (2.0 * sigmoid(k->pre_a) - 1.0) : 1.0;
}

void amed_backward(const pd_amed_predictor *p, const amed_cache *k, double dr, double dc, double da,
                   double *grad) {
    const pd_amed_info *in = &p->info;
    double du[AMED_U] = {0};
    /* heads: d sigmoid = s (1 - s); c and a carry the factor 2 s_dir, 2 s_time */
    double dpre[3] = {dr * k->r * (1.0 - k->r), 0, 0};
    if (p->c_w != AMED_NO_HEAD) {
        double s = sigmoid(k->pre_c);
        dpre[1] = dc * 2.0 * in->s_dir * s * (1.0 - s);
    }
    if (p->a_w != AMED_NO_HEAD) {
        double s = sigmoid(k->pre_a);
        dpre[2] = da * 2.0 * in->s_time * s * (1.0 - s);
    }
    size_t hw[3] = {p->r_w, p->c_w, p->a_w}, hb[3] = {p->r_b, p->c_b, p->a_b};
    for (int h = 0; h < 3; h++) {
        if (hw[h] == AMED_NO_HEAD) continue;
        for (int i = 0; i < AMED_U; i++) {
            grad[hw[h] + i] += dpre[h] * k->u[i];
            du[i] += dpre[h] * p->params[hw[h] + i];
        }
        grad[hb[h]] += dpre[h];
    }
    /* time embeddings (shared map_layer0) */
    for (int t = 0; t < 2; t++) {
        const double *de = du + AMED_BOT + t * AMED_EMB;
        for (int o = 0; o < AMED_EMB; o++) {
            double dq = de[o] * silu_grad(k->q[t][o]);
            for (int i = 0; i < AMED_EMB; i++) grad[p->map_w + o * AMED_EMB + i] += dq * k->e[t][i];
            grad[p->map_b + o] += dq;
        }
    }
    /* bottleneck MLP */
    const float *W1 = p->params + p->enc1_w;
    double dg[AMED_HID] = {0};
    for (int m = 0; m < AMED_BOT; m++) {
        double dz = du[m];
        for (int j = 0; j < AMED_HID; j++) {
            grad[p->enc1_w + m * AMED_HID + j] += dz * silu(k->h1[j]);
            dg[j] += (double)W1[m * AMED_HID + j] * dz;
        }
        grad[p->enc1_b + m] += dz;
    }
    for (int j = 0; j < AMED_HID; j++) {
        double dh = dg[j] * silu_grad(k->h1[j]);
        for (int i = 0; i < AMED_FEAT; i++) grad[p->enc0_w + j * AMED_FEAT + i] += dh * k->f[i];
        grad[p->enc0_b + j] += dh;
    }
}

int pd_amed_predict(const pd_amed_predictor *p, const float *feature, int n, double t_cur,
                    double t_next, double *r, double *c, double *a, pd_error *err) {
    if (!p) return pd_fail(err, "amed predictor: NULL predictor");
    if (n < 0) return pd_fail(err, "amed predictor: %d images", n);
    if (!(t_cur > 0) || !(t_next > 0) || !isfinite(t_cur) || !isfinite(t_next))
        return pd_fail(err, "amed predictor: sigmas %g, %g must be positive and finite", t_cur, t_next);
    for (int b = 0; b < n; b++) {
        amed_cache k;
        amed_forward(p, feature ? feature + (size_t)b * AMED_FEAT : NULL, t_cur, t_next, &k);
        if (r) r[b] = k.r;
        if (c) c[b] = k.c;
        if (a) a[b] = k.a;
    }
    return 0;
}

void pd_amed_sample_params(const pd_amed_predictor *p, pd_sample_params *sp) {
    const pd_amed_info *in = &p->info;
    sp->sampler = pd_amed_kind_sampler(in->kind);
    sp->amed = p;
    sp->sched.grid = in->grid;
    sp->sched.rho = in->rho;
    sp->sched.sigma_min = in->sigma_min;
    sp->sched.sigma_max = in->sigma_max;
    sp->sched.end_at_zero = 0;
    sp->steps = in->steps;
    sp->nfe = 0;
    sp->afs = in->afs;
}

/* ------------------------------------------------------------------ file */

/* pixdiff.amed through the one JSON writer (core/jsonbuf.h), keys in docs/formats.md's order.
 * final_loss keeps a diverged run's nan/inf (jb_num), which the reader gives back. */
static void info_json(const pd_amed_info *in, jb_buf *b) {
    jb_printf(b, "{\"format\": " AMED_FORMAT);
    jb_key_str(b, "kind", pd_amed_kind_name(in->kind));
    jb_key_int(b, "steps", in->steps);
    jb_key_int(b, "nfe", in->nfe);
    jb_key(b, "afs");
    jb_printf(b, "%s", in->afs ? "true" : "false");
    jb_key_str(b, "grid", pd_grid_name(in->grid));
    jb_key_num(b, "rho", in->rho);
    jb_key_num(b, "sigma_min", in->sigma_min);
    jb_key_num(b, "sigma_max", in->sigma_max);
    jb_key_str(b, "end", "sigma-min");
    jb_key_num(b, "s_dir", in->s_dir);
    jb_key_num(b, "s_time", in->s_time);
    jb_key_int(b, "max_order", in->max_order);
    jb_key_str(b, "teacher", in->teacher);
    jb_key_int(b, "teacher_m", in->teacher_m);
    jb_key_int(b, "feature_dim", AMED_FEAT);
    jb_key_str(b, "model_sha256", in->model_sha256);
    jb_key_str(b, "model_name", in->model_name);
    jb_key_int(b, "images", in->images);
    jb_key_int(b, "batch", in->batch);
    jb_key_num(b, "lr", in->lr);
    jb_key(b, "seed");
    jb_printf(b, "\"%" PRIu64 "\"", in->seed);
    jb_key(b, "final_loss");
    jb_num(b, in->final_loss);
    jb_printf(b, "}");
}

int pd_amed_predictor_save(const pd_amed_predictor *p, const char *path, pd_error *err) {
    const char *names[12];
    int ndims[12];
    long long shapes[12][8];
    const float *data[12];
    size_t off[12];
    offsets(p, off);
    int n = 0;
    for (int t = 0; t < 12; t++) {
        if (off[t] == AMED_NO_HEAD) continue;
        names[n] = defs[t].name;
        memset(shapes[n], 0, sizeof shapes[n]);
        shapes[n][0] = defs[t].rows;
        shapes[n][1] = defs[t].cols;
        ndims[n] = defs[t].cols ? 2 : 1;
        data[n] = p->params + off[t];
        n++;
    }
    jb_buf json = {0};
    info_json(&p->info, &json);
    int rc = json.oom ? pd_fail(err, "%s: out of memory for the predictor metadata", path) : 0;
    const char *keys[2] = {"format", "pixdiff.amed"};
    const char *vals[2] = {"pt", json.s};
    if (!rc) rc = st_write(path, n, names, ndims, (const long long(*)[8])shapes, data, 2, keys, vals, err);
    jb_free(&json);
    return rc;
}

static int parse_info(pd_amed_info *in, const char *json, const char *path, pd_error *err) {
    yd_doc doc;
    char src[1100];
    snprintf(src, sizeof src, "%s: pixdiff.amed", path);
    if (yd_load_json_n(&doc, json, strlen(json), src, YD_JSON_NONFINITE, err)) return -1;
    static const char *const known[] = {
        "format", "kind",    "steps",     "nfe",         "afs",          "grid",       "rho",
        "sigma_min", "sigma_max", "end", "s_dir",   "s_time", "max_order", "teacher", "teacher_m",
        "feature_dim", "model_sha256", "model_name", "images", "batch", "lr", "seed", "final_loss",
        NULL};
    const yd_node *m = doc.root;
    int rc = -1;
    char kind[32] = "", grid[32] = "", end[32] = "sigma-min", seed[32] = "0";
    long long steps = 0, nfe = 0, max_order = 1, tm = 0, fdim = AMED_FEAT, images = 0, batch = 0;
    if (!m || m->kind != YD_MAP) {
        pd_fail(err, "%s: expected a JSON object", src);
        goto done;
    }
    if (yd_check_keys(&doc, m, known, "predictor metadata", err) || yd_str(&doc, m, "kind", kind, sizeof kind, err) ||
        yd_int(&doc, m, "steps", &steps, err) || yd_int(&doc, m, "nfe", &nfe, err) ||
        yd_bool(&doc, m, "afs", &in->afs, err) || yd_str(&doc, m, "grid", grid, sizeof grid, err) ||
        yd_double(&doc, m, "rho", &in->rho, err) ||
        yd_double(&doc, m, "sigma_min", &in->sigma_min, err) ||
        yd_double(&doc, m, "sigma_max", &in->sigma_max, err) ||
        yd_str(&doc, m, "end", end, sizeof end, err) ||
        yd_double(&doc, m, "s_dir", &in->s_dir, err) ||
        yd_double(&doc, m, "s_time", &in->s_time, err) ||
        yd_int(&doc, m, "max_order", &max_order, err) ||
        yd_str(&doc, m, "teacher", in->teacher, sizeof in->teacher, err) ||
        yd_int(&doc, m, "teacher_m", &tm, err) || yd_int(&doc, m, "feature_dim", &fdim, err) ||
        yd_str(&doc, m, "model_sha256", in->model_sha256, sizeof in->model_sha256, err) ||
        yd_str(&doc, m, "model_name", in->model_name, sizeof in->model_name, err) ||
        yd_int(&doc, m, "images", &images, err) || yd_int(&doc, m, "batch", &batch, err) ||
        yd_double(&doc, m, "lr", &in->lr, err) || yd_str(&doc, m, "seed", seed, sizeof seed, err) ||
        yd_double(&doc, m, "final_loss", &in->final_loss, err))
        goto done;
    int k = pd_amed_kind_from_name(kind);
    if (k < 0 || !yd_get(m, "kind")) {
        pd_fail(err, "%s: kind '%s' is not one of solver, plugin-ipndm, plugin-euler", src, kind);
        goto done;
    }
    int g = pd_grid_from_name(grid);
    if (g < 0) {
        pd_fail(err, "%s: unknown grid '%s'", src, grid);
        goto done;
    }
    if (strcmp(end, "sigma-min") || fdim != AMED_FEAT) {
        pd_fail(err, "%s: end '%s' and feature_dim %lld are not the supported sigma-min and %d", src,
                end, fdim, AMED_FEAT);
        goto done;
    }
    if (steps < 1 || steps > 100000 || max_order < 1 || max_order > 4 || tm < 0 || tm > 1000 ||
        batch < 0 || images < 0 || !(in->sigma_min > 0) || !(in->sigma_max > in->sigma_min)) {
        pd_fail(err, "%s: steps %lld, max_order %lld, teacher_m %lld, batch %lld, images %lld or the "
                "sigma range [%g, %g] is out of range", src, steps, max_order, tm, batch, images,
                in->sigma_min, in->sigma_max);
        goto done;
    }
    in->kind = (pd_amed_kind)k;
    in->grid = (pd_grid_kind)g;
    in->steps = (int)steps;
    in->nfe = (int)nfe;
    in->max_order = (int)max_order;
    in->teacher_m = (int)tm;
    in->images = images;
    in->batch = (int)batch;
    in->seed = strtoull(seed, NULL, 10);
    rc = 0;
done:
    yd_free(&doc);
    return rc;
}

int pd_amed_predictor_load(pd_amed_predictor **out, const char *path, pd_error *err) {
    *out = NULL;
    st_file f;
    if (st_read(&f, path, err)) return -1;
    int rc = -1;
    pd_amed_predictor *p = NULL;
    pd_amed_info in;
    memset(&in, 0, sizeof in);
    const char *js = st_meta(&f, "pixdiff.amed");
    if (!js) {
        const char *kind = st_pixdiff_other_kind(&f, "pixdiff.amed");
        if (kind) pd_fail(err, "%s: not an AMED predictor: it is %s", path, kind);
        else pd_fail(err, "%s: no __metadata__ \"pixdiff.amed\" (not a pixdiff AMED predictor file)",
                     path);
        goto done;
    }
    if (parse_info(&in, js, path, err)) goto done;
    if (amed_predictor_alloc(&p, &in, err)) goto done;
    size_t off[12];
    offsets(p, off);
    int expected = 0;
    for (int t = 0; t < 12; t++) {
        const st_tensor *s = st_find(&f, defs[t].name);
        if (off[t] == AMED_NO_HEAD) {
            if (s) {
                pd_fail(err, "%s: tensor '%s' present but its scale (s_dir / s_time) is 0", path,
                        defs[t].name);
                goto done;
            }
            continue;
        }
        expected++;
        int nd = defs[t].cols ? 2 : 1;
        if (!s) {
            pd_fail(err, "%s: tensor '%s' missing", path, defs[t].name);
            goto done;
        }
        if (s->ndim != nd || s->shape[0] != defs[t].rows || (nd == 2 && s->shape[1] != defs[t].cols) ||
            s->numel != def_numel(&defs[t])) {
            char want[32];
            if (nd == 2) snprintf(want, sizeof want, "[%d, %d]", defs[t].rows, defs[t].cols);
            else snprintf(want, sizeof want, "[%d]", defs[t].rows);
            pd_fail(err, "%s: tensor '%s': shape mismatch (want %s)", path, defs[t].name, want);
            goto done;
        }
        memcpy(p->params + off[t], s->data, sizeof(float) * s->numel);
        for (size_t i = 0; i < s->numel; i++)
            if (!isfinite(s->data[i])) {
                pd_fail(err, "%s: tensor '%s' holds a non-finite value", path, defs[t].name);
                goto done;
            }
    }
    if (f.n_tensors != expected) {
        pd_fail(err, "%s: %d tensors, an AMED predictor has %d", path, f.n_tensors, expected);
        goto done;
    }
    rc = 0;
done:
    st_free(&f);
    if (rc) pd_amed_predictor_free(p);
    else *out = p;
    return rc;
}
