/* classifier.c — the feature classifier's structure, forward and backward (see classifier.h),
 * and the public pd_classifier_* calls.
 *
 * The stage walk below is the single description of the network: the tensor table, the run's
 * buffers, the forward, the backward and the FLOP count all read the same clf_block list, so
 * they cannot disagree. Heavy math is the layers' (conv2d/linear through gemm_sgemm, GroupNorm,
 * SiLU, pooling, dropout); the only loops of our own are the global average pool (a fixed-order
 * double sum per (image, channel)) and buffer clears, so an image's result never depends on its
 * batch or the thread count.
 */
#include "classifier/classifier.h"
#include "unet/layers.h"
#include "core/arena.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLF_MAX_BLOCKS (PD_MAX_LEVELS * 16)
/* pd_classifier_features works in chunks of at most this many images (features do not depend on
 * the chunking), so its cached inference run stays small whatever n the caller passes. */
#define CLF_API_CHUNK 64
#define PAR_MIN 32768

typedef struct clf_block {
    int stage, cin, cout;
    int res;                  /* spatial side of the block's input and output */
    int pool;                 /* a 2x2 average pool (from 2*res) comes before the block */
    int t_norm, t_conv;       /* tensor indices of the weights (bias = index + 1) */
} clf_block;

typedef struct clf_arch {
    clf_block blocks[CLF_MAX_BLOCKS];
    int n_blocks;
    int cin, R, w0, clast, rlast, F, K;
    int t_stem, t_out_norm, t_fc, t_head;
    clf_run *api_run;         /* cached inference run of pd_classifier_features */
} clf_arch;

int clf_config_is(const pd_unet_config *c) { return !strcmp(c->arch, "classifier"); }

/* ------------------------------------------------------------------ config */

int clf_config_validate(const pd_unet_config *c, pd_error *err) {
    if (!clf_config_is(c))
        return pd_fail(err, "config key 'arch': '%s' is not 'classifier'", c->arch);
    if (strcmp(c->kind, "classifier"))
        return pd_fail(err, "config key 'kind': '%s' must be 'classifier' for arch 'classifier'",
                       c->kind);
    if (c->in_channels < 1 || c->in_channels > 64)
        return pd_fail(err, "config key 'in_channels': %d is out of range 1..64", c->in_channels);
    if (c->label_dim < 2 || c->label_dim > 1000)
        return pd_fail(err, "config key 'label_dim': a classifier needs 2..1000 classes, got %d",
                       c->label_dim);
    if (c->out_channels != c->label_dim)
        return pd_fail(err, "config key 'out_channels': %d differs from label_dim %d (a classifier "
                       "outputs one logit per class)", c->out_channels, c->label_dim);
    if (c->augment_dim != 0)
        return pd_fail(err, "config key 'augment_dim': must be 0 for a classifier, got %d",
                       c->augment_dim);
    if (c->n_attn != 0)
        return pd_fail(err, "config key 'attn_resolutions': a classifier has no attention; use []");
    if (c->model_channels < 1 || c->model_channels > 4096)
        return pd_fail(err, "config key 'model_channels': %d is out of range 1..4096",
                       c->model_channels);
    if (c->n_levels < 1 || c->n_levels > PD_MAX_LEVELS)
        return pd_fail(err, "config key 'channel_mult': needs 1..%d stages, got %d", PD_MAX_LEVELS,
                       c->n_levels);
    for (int s = 0; s < c->n_levels; s++) {
        if (c->channel_mult[s] < 1 || c->channel_mult[s] > 64)
            return pd_fail(err, "config key 'channel_mult': entry %d (%d) is out of range 1..64", s,
                           c->channel_mult[s]);
        int w = c->model_channels * c->channel_mult[s];
        if (w % groupnorm_groups(w))
            return pd_fail(err, "config key 'model_channels': stage %d has %d channels, not "
                           "divisible by GroupNorm's %d groups", s, w, groupnorm_groups(w));
    }
    if (c->num_blocks < 1 || c->num_blocks > 16)
        return pd_fail(err, "config key 'num_blocks': %d is out of range 1..16 (convs per stage)",
                       c->num_blocks);
    if (c->channel_mult_emb < 1 || c->channel_mult_emb > 64)
        return pd_fail(err, "config key 'channel_mult_emb': %d is out of range 1..64 (features = "
                       "model_channels x channel_mult_emb)", c->channel_mult_emb);
    if (c->img_resolution < 1 || c->img_resolution > 4096 ||
        c->img_resolution % (1 << (c->n_levels - 1)))
        return pd_fail(err, "config key 'img_resolution': %d is not a positive multiple of 2^%d "
                       "(one 2x2 pool per extra stage of channel_mult)", c->img_resolution,
                       c->n_levels - 1);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return pd_fail(err, "config key 'dropout': %g is not in [0, 1)", c->dropout);
    return 0;
}

/* ------------------------------------------------------------------ structure */

typedef struct table {
    unet_tensor_info *t;
    int n, cap, oom;
    size_t off;
} table;

static int add(table *tb, const char *module, const char *leaf, int ndim, int d0, int d1, int d2,
               int d3) {
    if (tb->n == tb->cap) {
        int cap = tb->cap ? 2 * tb->cap : 64;
        unet_tensor_info *t = realloc(tb->t, (size_t)cap * sizeof *t);
        if (!t) { tb->oom = 1; return -1; }
        tb->t = t;
        tb->cap = cap;
    }
    unet_tensor_info *ti = &tb->t[tb->n];
    memset(ti, 0, sizeof *ti);
    snprintf(ti->name, sizeof ti->name, "clf.%s.%s", module, leaf);
    int d[4] = {d0, d1, d2, d3};
    ti->ndim = ndim;
    ti->numel = 1;
    for (int i = 0; i < ndim; i++) { ti->shape[i] = d[i]; ti->numel *= (size_t)d[i]; }
    ti->offset = tb->off;
    tb->off += ti->numel;
    return tb->n++;
}

/* weight then bias: conv [out, in, k, k], linear [out, in], norm [c] (scale, shift) */
static int add_pair(table *tb, const char *module, int ndim, int out, int in, int k) {
    int w = ndim == 4 ? add(tb, module, "weight", 4, out, in, k, k)
            : ndim == 2 ? add(tb, module, "weight", 2, out, in, 0, 0)
                        : add(tb, module, "weight", 1, out, 0, 0, 0);
    add(tb, module, "bias", 1, out, 0, 0, 0);
    return w;
}

void clf_arch_free(void *arch) {
    clf_arch *a = arch;
    if (!a) return;
    clf_run_free(a->api_run);
    free(a);
}

int clf_build(pd_model *m, pd_error *err) {
    const pd_unet_config *cfg = &m->cfg;
    if (cfg->n_levels * cfg->num_blocks > CLF_MAX_BLOCKS)
        return pd_fail(err, "classifier: %d stages x %d blocks is too many", cfg->n_levels,
                       cfg->num_blocks);
    clf_arch *a = calloc(1, sizeof *a);
    table tb = {0};
    if (!a) return pd_fail(err, "out of memory");
    a->cin = cfg->in_channels;
    a->R = cfg->img_resolution;
    a->w0 = cfg->model_channels * cfg->channel_mult[0];
    a->F = cfg->model_channels * cfg->channel_mult_emb;
    a->K = cfg->label_dim;
    a->t_stem = add_pair(&tb, "stem", 4, a->w0, a->cin, 3);
    int w = a->w0;
    char name[64];
    for (int s = 0; s < cfg->n_levels; s++) {
        int ws = cfg->model_channels * cfg->channel_mult[s];
        for (int j = 0; j < cfg->num_blocks; j++) {
            clf_block *b = &a->blocks[a->n_blocks++];
            b->stage = s;
            b->cin = w;
            b->cout = ws;
            b->res = a->R >> s;
            b->pool = s > 0 && j == 0;
            snprintf(name, sizeof name, "s%d.b%d.norm", s, j);
            b->t_norm = add_pair(&tb, name, 1, w, 0, 0);
            snprintf(name, sizeof name, "s%d.b%d.conv", s, j);
            b->t_conv = add_pair(&tb, name, 4, ws, w, 3);
            w = ws;
        }
    }
    a->clast = w;
    a->rlast = a->R >> (cfg->n_levels - 1);
    a->t_out_norm = add_pair(&tb, "out_norm", 1, w, 0, 0);
    a->t_fc = add_pair(&tb, "fc", 2, a->F, w, 0);
    a->t_head = add_pair(&tb, "head", 2, a->K, a->F, 0);
    if (tb.oom) {
        free(tb.t);
        free(a);
        return pd_fail(err, "out of memory");
    }
    m->tensors = tb.t;
    m->n_tensors = tb.n;
    m->n_params = tb.off;
    m->arch = a;
    return 0;
}

double clf_gflops_res(const pd_model *m, int res) {
    (void)res;   /* the classifier runs at its trained size */
    return clf_gflops(m);
}

double clf_gflops(const pd_model *m) {
    const clf_arch *a = m->arch;
    double macs = 9.0 * a->cin * a->w0 * a->R * a->R;
    for (int k = 0; k < a->n_blocks; k++) {
        const clf_block *b = &a->blocks[k];
        macs += 9.0 * b->cin * b->cout * b->res * b->res;
    }
    macs += (double)a->clast * a->F + (double)a->F * a->K;
    return 2 * macs / 1e9;
}

int clf_feature_dim(const pd_model *m) { return ((const clf_arch *)m->arch)->F; }
int clf_num_classes(const pd_model *m) { return ((const clf_arch *)m->arch)->K; }

/* ------------------------------------------------------------------ runs */

struct clf_run {
    const pd_model *m;
    const clf_arch *a;
    int max_batch, keep;
    char *arena;
    size_t bytes;
    float *x, *stem_out;
    float *in[CLF_MAX_BLOCKS], *pooled[CLF_MAX_BLOCKS], *nrm[CLF_MAX_BLOCKS], *out[CLF_MAX_BLOCKS];
    float *mean[CLF_MAX_BLOCKS], *rstd[CLF_MAX_BLOCKS];
    float *act;               /* SiLU(norm) fed to a conv: scratch (keep) or the norm in place */
    float *col;
    float *tn, *tmean, *trstd, *tact, *gap, *fcpre, *feat, *drop;
    uint8_t *mask;
    /* backward (keep = 1 only) */
    float *ga, *gb, *dact, *dnrm, *dgap, *dfcpre, *dfeat, *ddrop;
    /* the last forward */
    int n, have_fwd, dropout_on;
};

#define PW(t) (r->m->params + r->m->tensors[(t)].offset)
#define PB(t) (r->m->params + r->m->tensors[(t) + 1].offset)
#define DW(t) (dp ? dp + r->m->tensors[(t)].offset : NULL)
#define DB(t) (dp ? dp + r->m->tensors[(t) + 1].offset : NULL)

/* The run's buffers in one arena (core/arena.h; NULL base: just measures). */
static void layout(void *ctx, ar_arena *ar) {
    clf_run *r = ctx;
    const char *base = ar->base;
    const clf_arch *a = r->a;
    size_t N = (size_t)r->max_batch, R2 = (size_t)a->R * a->R;
    size_t maxact = a->w0 * R2, maxcol = (size_t)a->cin * 9 * R2;
    int gmax = groupnorm_groups(a->clast);
    for (int k = 0; k < a->n_blocks; k++) {
        const clf_block *b = &a->blocks[k];
        size_t hw = (size_t)b->res * b->res;
        if (b->cin * hw > maxact) maxact = b->cin * hw;
        if (b->cout * hw > maxact) maxact = b->cout * hw;
        if ((size_t)b->cin * 9 * hw > maxcol) maxcol = (size_t)b->cin * 9 * hw;
        if (groupnorm_groups(b->cin) > gmax) gmax = groupnorm_groups(b->cin);
    }
    size_t rl2 = (size_t)a->rlast * a->rlast, F = a->F;
    float *dummy;
#define TAKE(ptr, n) do { dummy = ar_take(ar, sizeof(float) * (n)); if (base) (ptr) = dummy; } while (0)
    TAKE(r->x, N * a->cin * R2);
    TAKE(r->col, maxcol);
    TAKE(r->gap, N * a->clast);
    TAKE(r->fcpre, N * F);
    TAKE(r->feat, N * F);
    if (r->keep) {
        TAKE(r->stem_out, N * a->w0 * R2);
        const float *h = r->stem_out;
        for (int k = 0; k < a->n_blocks; k++) {
            const clf_block *b = &a->blocks[k];
            size_t hw = (size_t)b->res * b->res, g = groupnorm_groups(b->cin);
            if (b->pool) TAKE(r->pooled[k], N * b->cin * hw);
            if (base) r->in[k] = b->pool ? r->pooled[k] : (float *)h;
            TAKE(r->nrm[k], N * b->cin * hw);
            TAKE(r->mean[k], N * g);
            TAKE(r->rstd[k], N * g);
            TAKE(r->out[k], N * b->cout * hw);
            h = r->out[k];
        }
        TAKE(r->act, N * maxact);
        TAKE(r->tn, N * a->clast * rl2);
        TAKE(r->tact, N * a->clast * rl2);
        TAKE(r->tmean, N * groupnorm_groups(a->clast));
        TAKE(r->trstd, N * groupnorm_groups(a->clast));
        TAKE(r->drop, N * F);
        uint8_t *mask = ar_take(ar, N * F);
        if (base) r->mask = mask;
        TAKE(r->ga, N * maxact);
        TAKE(r->gb, N * maxact);
        TAKE(r->dact, N * maxact);
        TAKE(r->dnrm, N * maxact);
        TAKE(r->dgap, N * a->clast);
        TAKE(r->dfcpre, N * F);
        TAKE(r->dfeat, N * F);
        TAKE(r->ddrop, N * F);
    } else {
        /* Inference: block outputs alternate between two buffers (an output never lands on its
         * own input), norms share one buffer and SiLU runs in place on it. */
        float *A = NULL, *B = NULL, *Nb = NULL, *M = NULL, *S = NULL;
        TAKE(A, N * maxact);
        TAKE(B, N * maxact);
        TAKE(Nb, N * maxact);
        TAKE(M, N * gmax);
        TAKE(S, N * gmax);
        if (base) {
            r->stem_out = A;
            float *h = A;
            for (int k = 0; k < a->n_blocks; k++) {
                const clf_block *b = &a->blocks[k];
                float *other = h == A ? B : A;
                if (b->pool) { r->pooled[k] = other; r->in[k] = other; }
                else r->in[k] = h;
                r->nrm[k] = Nb;
                r->mean[k] = M;
                r->rstd[k] = S;
                r->out[k] = r->in[k] == A ? B : A;
                h = r->out[k];
            }
            r->act = NULL;
            r->tn = r->tact = Nb;
            r->tmean = M;
            r->trstd = S;
            r->drop = r->feat;
        }
    }
#undef TAKE
}

int clf_run_create(clf_run **out, const pd_model *m, int max_batch, int keep, pd_error *err) {
    *out = NULL;
    if (!clf_config_is(&m->cfg))
        return pd_fail(err, "classifier: model arch '%s' is not a classifier", m->cfg.arch);
    if (max_batch < 1) return pd_fail(err, "classifier: batch size %d must be >= 1", max_batch);
    clf_run *r = calloc(1, sizeof *r);
    if (!r) return pd_fail(err, "out of memory");
    r->m = m;
    r->a = m->arch;
    r->max_batch = max_batch;
    r->keep = keep ? 1 : 0;
    r->arena = ar_build(layout, r, &r->bytes);
    if (!r->arena) {
        double mib = r->bytes / 1048576.0;
        free(r);
        return pd_fail(err, "classifier: out of memory for %.1f MiB of activations (batch %d)",
                       mib, max_batch);
    }
    *out = r;
    return 0;
}

void clf_run_free(clf_run *r) {
    if (!r) return;
    core_free(r->arena);
    free(r);
}

size_t clf_run_bytes(const clf_run *r) { return r->bytes; }
int clf_run_max_batch(const clf_run *r) { return r->max_batch; }

/* ------------------------------------------------------------------ forward / backward */

static void clear(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }

int clf_forward(clf_run *r, float *logits, float *features, const float *x, int n,
                const clf_opts *opts, pd_error *err) {
    const clf_arch *a = r->a;
    const float p = r->m->cfg.dropout;
    if (n < 1 || n > r->max_batch)
        return pd_fail(err, "classifier: batch of %d images, the run holds 1..%d", n,
                       r->max_batch);
    int train = opts && opts->train;
    if (train && !r->keep)
        return pd_fail(err, "classifier: a training forward needs a run made with keep = 1");
    r->have_fwd = 0;
    const int R = a->R;
    const size_t R2 = (size_t)R * R, F = a->F;
    memcpy(r->x, x, (size_t)n * a->cin * R2 * sizeof(float));
    conv2d_forward(r->stem_out, r->x, PW(a->t_stem), PB(a->t_stem), n, a->cin, R, R, a->w0, 3,
                   r->col);
    const float *h = r->stem_out;
    for (int k = 0; k < a->n_blocks; k++) {
        const clf_block *b = &a->blocks[k];
        size_t hw = (size_t)b->res * b->res;
        if (b->pool) avgpool2_forward(r->pooled[k], h, n, b->cin, 2 * b->res, 2 * b->res);
        groupnorm_forward(r->nrm[k], r->mean[k], r->rstd[k], r->in[k], PW(b->t_norm),
                          PB(b->t_norm), n, b->cin, (int)hw, groupnorm_groups(b->cin), CLF_GN_EPS);
        float *act = r->keep ? r->act : r->nrm[k];
        silu_forward(act, r->nrm[k], (size_t)n * b->cin * hw);
        conv2d_forward(r->out[k], act, PW(b->t_conv), PB(b->t_conv), n, b->cin, b->res, b->res,
                       b->cout, 3, r->col);
        h = r->out[k];
    }
    const int C = a->clast;
    const size_t hw = (size_t)a->rlast * a->rlast;
    groupnorm_forward(r->tn, r->tmean, r->trstd, h, PW(a->t_out_norm), PB(a->t_out_norm), n, C,
                      (int)hw, groupnorm_groups(C), CLF_GN_EPS);
    silu_forward(r->tact, r->tn, (size_t)n * C * hw);
    /* Global average pool: one fixed-order double sum per (image, channel). */
    #pragma omp parallel for schedule(static) if ((size_t)n * C * hw > PAR_MIN)
    for (int nc = 0; nc < n * C; nc++) {
        const float *v = r->tact + (size_t)nc * hw;
        double s = 0;
        for (size_t i = 0; i < hw; i++) s += v[i];
        r->gap[nc] = (float)(s / (double)hw);
    }
    linear_forward(r->fcpre, r->gap, PW(a->t_fc), PB(a->t_fc), n, C, (int)F);
    silu_forward(r->feat, r->fcpre, (size_t)n * F);
    if (features) memcpy(features, r->feat, (size_t)n * F * sizeof(float));
    r->dropout_on = train && p > 0;
    if (r->keep) {
        if (r->dropout_on)
            dropout_forward(r->drop, r->mask, r->feat, (size_t)n * F, p, opts->dropout_seed,
                            opts->dropout_stream);
        else
            memcpy(r->drop, r->feat, (size_t)n * F * sizeof(float));
    }
    if (logits) linear_forward(logits, r->drop, PW(a->t_head), PB(a->t_head), n, (int)F, a->K);
    r->n = n;
    r->have_fwd = 1;
    return 0;
}

int clf_backward(clf_run *r, float *dx, float *dp, const float *dlogits, pd_error *err) {
    if (!r->keep) return pd_fail(err, "classifier: backward needs a run made with keep = 1");
    if (!r->have_fwd) return pd_fail(err, "classifier: backward without a forward");
    const clf_arch *a = r->a;
    const int n = r->n, C = a->clast, F = a->F;
    const size_t hw = (size_t)a->rlast * a->rlast, nF = (size_t)n * F;
    /* Head, dropout (the forward's mask), SiLU, fc: dL/d(pooled features). */
    clear(r->ddrop, nF);
    linear_backward(r->ddrop, DW(a->t_head), DB(a->t_head), dlogits, r->drop, PW(a->t_head), n, F,
                    a->K);
    clear(r->dfeat, nF);
    dropout_backward(r->dfeat, r->ddrop, r->mask, nF, r->dropout_on ? r->m->cfg.dropout : 0.0f);
    clear(r->dfcpre, nF);
    silu_backward(r->dfcpre, r->dfeat, r->fcpre, nF);
    clear(r->dgap, (size_t)n * C);
    linear_backward(r->dgap, DW(a->t_fc), DB(a->t_fc), r->dfcpre, r->gap, PW(a->t_fc), n, C, F);
    /* Average pool: every position gets dgap / hw. */
    const float inv = (float)(1.0 / (double)hw);
    #pragma omp parallel for schedule(static) if ((size_t)n * C * hw > PAR_MIN)
    for (int nc = 0; nc < n * C; nc++) {
        float g = r->dgap[nc] * inv, *d = r->dact + (size_t)nc * hw;
        for (size_t i = 0; i < hw; i++) d[i] = g;
    }
    clear(r->dnrm, (size_t)n * C * hw);
    silu_backward(r->dnrm, r->dact, r->tn, (size_t)n * C * hw);
    const float *hlast = a->n_blocks ? r->out[a->n_blocks - 1] : r->stem_out;
    float *g = r->ga, *spare = r->gb;
    clear(g, (size_t)n * C * hw);
    groupnorm_backward(g, DW(a->t_out_norm), DB(a->t_out_norm), r->dnrm, hlast, r->tmean,
                       r->trstd, PW(a->t_out_norm), n, C, (int)hw, groupnorm_groups(C));
    /* Blocks in reverse; g holds dL/d(block output), spare receives dL/d(block input). */
    for (int k = a->n_blocks - 1; k >= 0; k--) {
        const clf_block *b = &a->blocks[k];
        size_t bhw = (size_t)b->res * b->res, nin = (size_t)n * b->cin * bhw;
        silu_forward(r->act, r->nrm[k], nin);      /* the conv's input, recomputed */
        clear(r->dact, nin);
        conv2d_backward(r->dact, DW(b->t_conv), DB(b->t_conv), g, r->act, PW(b->t_conv), n,
                        b->cin, b->res, b->res, b->cout, 3, r->col);
        clear(r->dnrm, nin);
        silu_backward(r->dnrm, r->dact, r->nrm[k], nin);
        clear(spare, nin);
        groupnorm_backward(spare, DW(b->t_norm), DB(b->t_norm), r->dnrm, r->in[k], r->mean[k],
                           r->rstd[k], PW(b->t_norm), n, b->cin, (int)bhw,
                           groupnorm_groups(b->cin));
        if (b->pool) {
            /* g is free again: it takes dL/d(previous output) at twice the side. */
            clear(g, nin * 4);
            avgpool2_backward(g, spare, n, b->cin, 2 * b->res, 2 * b->res);
        } else {
            float *t = g;
            g = spare;
            spare = t;
        }
    }
    conv2d_backward(dx, DW(a->t_stem), DB(a->t_stem), g, r->x, PW(a->t_stem), n, a->cin, a->R,
                    a->R, a->w0, 3, r->col);
    return 0;
}

/* ------------------------------------------------------------------ public API */

int pd_classifier_feature_dim(const pd_model *m) {
    return m && clf_config_is(&m->cfg) ? clf_feature_dim(m) : -1;
}

int pd_classifier_features(pd_model *m, const float *x, int n, float *logits, float *features,
                           pd_error *err) {
    if (!m || !clf_config_is(&m->cfg))
        return pd_fail(err, "%s: a %s model (arch '%s') is not a classifier",
                       m && m->path[0] ? m->path : "model", m ? m->cfg.kind : "NULL",
                       m ? m->cfg.arch : "");
    if (n < 1) return pd_fail(err, "classifier: batch of %d images", n);
    clf_arch *a = m->arch;
    int want = n < CLF_API_CHUNK ? n : CLF_API_CHUNK;
    if (!a->api_run || clf_run_max_batch(a->api_run) < want) {
        clf_run_free(a->api_run);
        a->api_run = NULL;
        if (clf_run_create(&a->api_run, m, want, 0, err)) return -1;
    }
    const size_t img = (size_t)a->cin * a->R * a->R;
    for (int i0 = 0; i0 < n; i0 += want) {
        int c = n - i0 < want ? n - i0 : want;
        if (clf_forward(a->api_run, logits ? logits + (size_t)i0 * a->K : NULL,
                        features ? features + (size_t)i0 * a->F : NULL, x + (size_t)i0 * img, c,
                        NULL, err))
            return -1;
    }
    return 0;
}
