/* train.c — the base trainer's step, loss, checkpoints and export (see train.h).
 *
 * One step: build the batch from the seeded stream (dataset.h order, Philox draws per image),
 * run the EDM loss forward and backward through the U-Net (the only heavy work), guard and clip
 * the gradient, Adam with warm-up, EMA. Per-image work is threaded over the batch; everything
 * per image is computed in a fixed order so the step is bit-reproducible.
 */
#include "distill/train.h"
#include "distill/checkpoint.h"
#include "distill/edm_init.h"
#include "distill/grad_shares.h"
#include "distill/objective_classify.h"
#include "core/arena.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ create / free */

void tr_free(tr_trainer *t) {
    if (!t) return;
    unet_run_free(t->run);
    for (int k = 1; k < GS_MAX_SHARES; k++) unet_run_free(t->wrun[k]);
    tr_classify_free(t->cls);
    pd_model_free(t->model);
    core_free(t->ema);
    core_free(t->y);
    free(t->idx);
    ds_sampler_free(&t->sampler);
    gs_plan_free(&t->shares);
    if (t->owns_data) ds_free(&t->data_owned);
    tr_config_free(&t->cfg);
    free(t);
}

static int load_data(tr_trainer *t, pd_error *err) {
    const tr_config *c = &t->cfg;
    int rc = !strcmp(c->data_kind, "png-folder")
                 ? ds_load_png_folder(&t->data_owned, c->data_path, err)
                 : ds_load_fashion_mnist(&t->data_owned, c->data_path, 1, err);
    if (rc) return -1;
    t->owns_data = 1;
    t->data = &t->data_owned;
    return 0;
}

/* The data must be what the model eats: channels, square resolution, and labels when the model
 * is conditional. */
static int check_data(const tr_trainer *t, pd_error *err) {
    const ds_dataset *d = t->data;
    const pd_unet_config *m = &t->cfg.model;
    if (d->C != m->in_channels || d->H != m->img_resolution || d->W != m->img_resolution)
        return pd_fail(err, "%s: data %s is %dx%dx%d (HxWxC) but the model takes %dx%dx%d "
                       "(model.img_resolution, model.in_channels)", t->cfg.source, d->source, d->H,
                       d->W, d->C, m->img_resolution, m->img_resolution, m->in_channels);
    if (m->label_dim > 0 && !d->labels)
        return pd_fail(err, "%s: model.label_dim is %d but data %s has no labels; set "
                       "model.label_dim: 0 for unconditional training", t->cfg.source,
                       m->label_dim, d->source);
    if (m->label_dim > 0 && m->label_dim != d->n_classes)
        return pd_fail(err, "%s: model.label_dim is %d but data %s has %d classes", t->cfg.source,
                       m->label_dim, d->source, d->n_classes);
    return 0;
}

/* The two arenas (core/arena.h; core_alloc zeroes them): EMA, Adam's m and v and the gradient
 * (n_params each; the EMA first, so it is the allocation), and the batch buffers (y first). */
static void state_layout(void *ctx, ar_arena *a) {
    tr_trainer *t = ctx;
    float **arr[] = {&t->ema, &t->adam_m, &t->adam_v, &t->grad};
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++) *arr[i] = ar_take(a, sizeof(float) * t->n_params);
}

static void batch_layout(void *ctx, ar_arena *a) {
    tr_trainer *t = ctx;
    const size_t bc = sizeof(float) * (size_t)t->B * t->chw, b = sizeof(float) * (size_t)t->B;
    float **bufs[] = {&t->y, &t->x, &t->D, &t->dD};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) *bufs[i] = ar_take(a, bc);
    t->sigma = ar_take(a, b);
    t->labels = ar_take(a, b * (size_t)(t->label_dim > 0 ? t->label_dim : 1));
}

int tr_create(tr_trainer **out, const tr_config *cfg, ds_dataset *data, pd_error *err) {
    *out = NULL;
    tr_trainer *t = calloc(1, sizeof *t);
    if (!t) return pd_fail(err, "out of memory");
    if (tr_config_copy(&t->cfg, cfg, err)) goto fail;
    const tr_config *c = &t->cfg;
    if (data) t->data = data;
    else if (load_data(t, err)) goto fail;
    if (check_data(t, err)) goto fail;

    if (pd_model_create(&t->model, &c->model, c->seed, err)) goto fail;
    if (tr_init_edm(t->model, c->seed, err)) goto fail;
    t->n_params = t->model->n_params;
    size_t np = t->n_params;
    if (!ar_build(state_layout, t, NULL)) {
        pd_fail(err, "out of memory for the optimiser state (%zu params)", np);
        goto fail;
    }
    memcpy(t->ema, t->model->params, np * sizeof(float));

    t->B = c->batch;
    t->C = c->model.in_channels;
    t->H = c->model.img_resolution;
    t->label_dim = c->model.label_dim;
    t->chw = (size_t)t->C * t->H * t->H;
    if (clf_config_is(&c->model) ? tr_classify_create(&t->cls, t->model, t->B, err)
                                 : unet_run_create(&t->run, t->model, t->B, t->H, 1, err))
        goto fail;

    ar_build(batch_layout, t, NULL);
    t->idx = malloc((size_t)t->B * sizeof(int));
    if (!t->y || !t->idx) { pd_fail(err, "out of memory for the batch buffers"); goto fail; }
    if (ds_sampler_init(&t->sampler, t->data->n, c->seed, err)) goto fail;
    /* A denoiser's shares run on parallel workers, each with a run sized for one share; the
     * classifier's objective keeps one share at a time. */
    if (gs_plan_init(&t->shares, t->B, c->shares, t->cls ? 1 : pd_get_threads(), np, err))
        goto fail;
    for (int k = 1; k < t->shares.workers; k++)
        if (unet_run_create(&t->wrun[k], t->model, (t->B + t->shares.S - 1) / t->shares.S, t->H, 1,
                            err))
            goto fail;
    *out = t;
    return 0;
fail:
    tr_free(t);
    return -1;
}

/* ------------------------------------------------------------------ loss */

int tr_edm_loss(unet_run *run, const float *x, const float *y, const float *sigma,
                const float *labels, int n, int norm, size_t chw, double sigma_data,
                const unet_opts *opts, float *D, float *dD, float *grad, double *loss,
                pd_error *err) {
    if (unet_denoise_forward(run, D, x, sigma, labels, n, opts, err)) return -1;
    double per[n > 0 ? n : 1];
    const double sd2 = sigma_data * sigma_data;
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const float *d = D + (size_t)i * chw, *t = y + (size_t)i * chw;
        float *g = dD + (size_t)i * chw;
        double s = sigma[i], lambda = (s * s + sd2) / (s * s * sd2);
        /* dL/dD = 2 lambda (D - y) / norm: L averages the per-sample sums over the batch. */
        double acc = 0.0;
        float scale = (float)(2.0 * lambda / norm);
        for (size_t k = 0; k < chw; k++) {
            float r = d[k] - t[k];
            acc += (double)r * r;
            g[k] = scale * r;
        }
        per[i] = lambda * acc;
    }
    double total = 0.0;
    for (int i = 0; i < n; i++) total += per[i];
    if (loss) *loss = total / norm;
    if (grad && unet_denoise_backward(run, NULL, NULL, grad, dD, err)) return -1;
    return 0;
}

/* ------------------------------------------------------------------ the batch */

/* Draws of global image g under seed: ln sigma ~ N(p_mean, p_std^2) by Box-Muller on words 0-1,
 * label drop on word 2, flip on word 3 (train.h). */
static void image_draws(const tr_config *c, uint64_t seed, long long g, float *sigma, int *drop,
                        int *flip) {
    float u[4];
    rng_randu(u, 4, seed, TR_STREAM_AUX + (uint64_t)g);
    double z = sqrt(-2.0 * log((double)u[0])) * cos(6.283185307179586 * u[1]);
    *sigma = (float)exp(c->p_mean + c->p_std * z);
    *drop = u[2] < c->label_dropout;
    *flip = c->flip && u[3] < 0.5f;
}

/* Dataset indices of images first .. first+n-1 into t->idx[at ..]: the shuffled stream, or
 * (ordered = 1, evaluation) the dataset in index order. Not thread-safe (the sampler caches an
 * epoch), so a step fills the whole batch's before its shares run. */
static void batch_indices(tr_trainer *t, long long first, int n, int ordered, int at) {
    for (int i = 0; i < n; i++)
        t->idx[at + i] = ordered ? (int)((first + i) % t->data->n)
                                 : ds_sampler_index(&t->sampler, first + i);
}

/* Fills y, x = y + sigma n, sigma and labels for images first .. first+n-1 of the stream, from
 * the indices t->idx[at ..], into the batch buffers from position `at` on (a share writes its
 * own part of the batch, so parallel shares do not meet). */
static void build_batch(tr_trainer *t, long long first, int n, uint64_t seed, int train, int at) {
    const tr_config *c = &t->cfg;
    const int L = t->label_dim;
    #pragma omp parallel for schedule(static)
    for (int i = at; i < at + n; i++) {
        long long g = first + (i - at);
        int drop, flip;
        image_draws(c, seed, g, &t->sigma[i], &drop, &flip);
        if (!train) drop = flip = 0;
        float *y = t->y + (size_t)i * t->chw, *x = t->x + (size_t)i * t->chw;
        ds_get(t->data, y, t->idx[i], flip);
        if (L > 0) {
            float *lab = t->labels + (size_t)i * L;
            memset(lab, 0, (size_t)L * sizeof(float));
            /* Label dropout: the zero vector is the "no label" input (docs/algorithms.md §M4.3). */
            if (!drop) lab[t->data->labels[t->idx[i]]] = 1.0f;
        }
        pd_randn(x, t->chw, seed, TR_STREAM_NOISE + (uint64_t)g);
        float s = t->sigma[i];
        for (size_t k = 0; k < t->chw; k++) x[k] = y[k] + s * x[k];
    }
}

/* One share of the step (grad_shares.h): its images of the batch stream, its dropout key, the
 * loss normalised by the global batch. */
static int step_share(void *user, int share, int worker, int first, int n, float *grad,
                      double *values, pd_error *err) {
    tr_trainer *t = user;
    const tr_config *c = &t->cfg;
    unet_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.train = 1;
    opts.dropout_seed = gs_dropout_seed(c->seed, share);
    opts.dropout_stream = TR_STREAM_DROPOUT + (uint64_t)t->step;
    if (t->cls) {   /* one worker (tr_create); its buffers from position 0 */
        batch_indices(t, t->images_seen + first, n, 0, 0);
        build_batch(t, t->images_seen + first, n, c->seed, 1, 0);
        t->cls->norm = t->B;
        int rc = tr_classify_batch(t->cls, t->y, t->data, t->idx, n, &opts, grad, &values[0], err);
        t->cls->norm = 0;
        return rc;
    }
    build_batch(t, t->images_seen + first, n, c->seed, 1, first);
    size_t o = (size_t)first * t->chw;
    return tr_edm_loss(worker ? t->wrun[worker] : t->run, t->x + o, t->y + o, t->sigma + first,
                       t->label_dim > 0 ? t->labels + (size_t)first * t->label_dim : NULL, n, t->B,
                       t->chw, c->sigma_data, &opts, t->D + o, t->dD + o, grad, &values[0], err);
}

int tr_step(tr_trainer *t, double *loss, pd_error *err) {
    double t0 = core_now();
    const tr_config *c = &t->cfg;
    double L = 0, t1 = core_now();
    /* The batch's gradient: its shares summed along a fixed tree, over the ranks of an mpirun
     * job or in this process alone, the same bits either way (grad_shares.h). */
    if (!t->cls) batch_indices(t, t->images_seen, t->B, 0, 0);
    if (gs_run(&t->shares, step_share, t, t->grad, &L, 1, err)) return -1;
    t->t_fwdbwd += core_now() - t1;

    /* docs/algorithms.md §M1.4: nan -> 0, +-inf -> +-1e5 before the optimiser, then optional clipping. */
    t->nonfinite += opt_sanitize(t->grad, t->n_params);
    t->grad_norm = opt_clip(t->grad, t->n_params, c->grad_clip);
    opt_adam a = {c->lr, c->beta1, c->beta2, c->eps, c->warmup_images, c->grad_clip};
    double lr = opt_lr(&a, t->images_seen + t->B);
    opt_adam_step(t->model->params, t->adam_m, t->adam_v, t->grad, t->n_params, lr, c->beta1,
                  c->beta2, c->eps, t->step + 1);
    double beta = opt_ema_beta(c->ema_halflife_images, c->ema_rampup, t->images_seen, t->B);
    opt_ema_update(t->ema, t->model->params, t->n_params, beta);
    t->images_seen += t->B;
    t->step++;
    t->last_loss = t->cls ? L : L / (double)t->chw;   /* cross-entropy, or EDM per pixel */
    if (loss) *loss = t->last_loss;
    double dt = core_now() - t0;
    t->t_step += dt;
    t->seconds += dt;
    return 0;
}

int tr_eval_loss(tr_trainer *t, int n, uint64_t eval_seed, double *loss, pd_error *err) {
    if (n > t->B) n = t->B;
    if (n < 1) return pd_fail(err, "tr_eval_loss: n must be >= 1");
    batch_indices(t, 0, n, 1, 0);
    build_batch(t, 0, n, eval_seed, 0, 0);
    unet_opts opts;
    memset(&opts, 0, sizeof opts);
    double L;
    if (t->cls ? tr_classify_batch(t->cls, t->y, t->data, t->idx, n, &opts, NULL, &L, err)
               : tr_edm_loss(t->run, t->x, t->y, t->sigma, t->label_dim > 0 ? t->labels : NULL, n,
                             n, t->chw, t->cfg.sigma_data, &opts, t->D, t->dD, NULL, &L, err))
        return -1;
    *loss = t->cls ? L : L / (double)t->chw;
    return 0;
}

/* ------------------------------------------------------------------ checkpoints */

static const ck_kind tr_kind = {"pixdiff.train", TR_CHECKPOINT_FORMAT, "training", "checkpoint",
                                "steps", "this model"};
static const char *const ck_names[4] = {"train.params", "train.ema", "train.adam_m", "train.adam_v"};

int tr_save_checkpoint(const tr_trainer *t, const char *path, pd_error *err) {
    ck_meta m;
    ck_meta_init(&m, &tr_kind);
    ck_meta_position(&m, t->images_seen, t->step, t->seconds, t->cfg.seed);
    ck_meta_real(&m, "last_loss", t->last_loss, 9);
    ck_meta_count(&m, "shares", t->cfg.shares);
    ck_meta_config(&m, t->cfg.text, t->cfg.source);
    if (ck_meta_model(&m, &t->cfg.model, path, err)) return -1;
    const float *data[4] = {t->model->params, t->ema, t->adam_m, t->adam_v};
    return ck_write(path, 4, ck_names, data, t->n_params, &m, err);
}

/* The format check and the embedded config of an opened checkpoint, with the share count the
 * run was made with (ck_get_shares): a plain --resume of a checkpoint written before
 * `training.shares` existed continues it with its own share count. */
static int ck_config(const ck_file *c, tr_config *cfg, pd_error *err) {
    const char *text;
    char name[1200];
    if (ck_config_text(c, &text, name, sizeof name, err) || tr_config_parse(cfg, text, name, err))
        return -1;
    if (ck_get_shares(c, &cfg->shares, err)) {
        tr_config_free(cfg);
        return -1;
    }
    return 0;
}

int tr_checkpoint_config(const char *path, tr_config *cfg, pd_error *err) {
    ck_file c;
    if (ck_open(&c, path, &tr_kind, err)) return -1;
    int rc = ck_config(&c, cfg, err);
    ck_close(&c);
    return rc;
}

int tr_load_checkpoint(tr_trainer *t, const char *path, pd_error *err) {
    ck_file c;
    if (ck_open(&c, path, &tr_kind, err)) return -1;
    int rc = -1;
    tr_config old;
    if (ck_config(&c, &old, err)) goto done;
    rc = tr_config_compatible(&old, &t->cfg, path, err);
    tr_config_free(&old);
    if (rc) goto done;
    rc = -1;
    ck_position pos;
    float *const dst[4] = {t->model->params, t->ema, t->adam_m, t->adam_v};
    if (ck_read_position(&c, t->cfg.seed, t->B, &pos, err) ||
        ck_read_arrays(&c, 4, ck_names, dst, t->n_params, err))
        goto done;
    /* ck_read_arrays copied only after every array passed its checks; now the counters. */
    t->images_seen = pos.images_seen;
    t->step = pos.step;
    t->seconds = pos.seconds;
    t->last_loss = ck_get_real(&c, "last_loss");
    rc = 0;
done:
    ck_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ export */

int tr_export(tr_trainer *t, const char *path, pd_error *err) {
    /* The model file format lives in unet/ (pd_model_save); hand it the EMA arena as params. */
    float *live = t->model->params;
    const double drop = t->model->cfg.label_dropout;
    t->model->params = t->ema;
    /* A conditional denoiser records its label dropout: classifier-free guidance needs it. */
    if (!t->cls && t->model->cfg.label_dim > 0) t->model->cfg.label_dropout = t->cfg.label_dropout;
    int rc = pd_model_save(t->model, path, err);
    t->model->params = live;
    t->model->cfg.label_dropout = drop;
    return rc;
}

int tr_export_checkpoint(const char *ckpt, const char *out_model, pd_error *err) {
    tr_config cfg;
    if (tr_checkpoint_config(ckpt, &cfg, err)) return -1;
    pd_model *m = NULL;
    st_file f;
    int rc = -1, have_file = 0;
    if (st_read(&f, ckpt, err)) goto done;
    have_file = 1;
    /* The arena is bounded by the EMA tensor the file holds, checked before allocating
     * (docs/testing.md "Resource rule"); too few values leave m->params NULL and fail below. */
    const st_tensor *ema = st_find(&f, "train.ema");
    if (unet_model_alloc_within(&m, &cfg.model, ema ? ema->numel : 0, err)) goto done;
    if (!ema || ema->ndim != 1 || ema->numel != m->n_params) {
        pd_fail(err, "%s: tensor 'train.ema' is missing or does not hold the model's %zu "
                "parameters", ckpt, m->n_params);
        goto done;
    }
    memcpy(m->params, ema->data, m->n_params * sizeof(float));
    if (strcmp(cfg.model.arch, "classifier") && cfg.model.label_dim > 0)
        m->cfg.label_dropout = cfg.label_dropout;
    rc = pd_model_save(m, out_model, err);
done:
    if (have_file) st_free(&f);
    pd_model_free(m);
    tr_config_free(&cfg);
    return rc;
}
