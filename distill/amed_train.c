/* amed_train.c — pd_amed_train: AMED predictor training (docs/algorithms.md §S4.5; contract in pixdiff.h).
 *
 * Settings resolved from the options (diff-sampler's train.py / launch.sh recipes):
 *   solver        teacher heun,  M = 1, grid vp-time rho 1, s_dir 0.01, s_time 0
 *   plugin-ipndm  teacher ipndm (max_order 4), M = 2, grid karras rho 7, student AB order cap 4
 *   plugin-euler  teacher heun,  M = 1, grid karras rho 7
 *   NFE: odd = AFS with (nfe + 1)/2 intervals, even = no AFS with nfe/2 (2(N - 1) - AFS, §S4.2).
 * The teacher is pd_sample itself (heun or ipndm stopping at sigma_min, no AFS) on (M + 1) steps,
 * its states at every (M + 1)-th step captured through pd_sample_params.trajectory; for the
 * grids used here those steps are the student's timestamps. The student's first call per
 * interval goes through the network denoiser with its feature tap; the second call and its
 * backward through a keep = 1 U-Net run (distill/amed_student.c). Every batch is a pure function
 * of (seed, image index) and the parameters, and the checkpoint after each batch holds the
 * parameters, Adam's state and the counters, so a resumed run is bit-identical.
 * Each interval's gradient is the sum, in share order, of the gradients of the batch's fixed
 * shares (distill/grad_shares.h's cut); under mpirun every rank runs the teacher and the student
 * on its shares' images only and the shares are gathered, so N ranks train the bits of one
 * process. Rank 0 writes the checkpoint and the predictor.
 */
#include "distill/amed_student.h"
#include "distill/grad_shares.h"
#include "distill/optim.h"
#include "distill/run_dir.h"
#include "core/arena.h"
#include "core/dist.h"
#include "core/jsonbuf.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "core/yamldoc.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STREAM_NOISE 0x414D000000000000ull /* "AM" + image index: z */
#define STREAM_LABEL 0x414C000000000000ull /* "AL" + image index: class */
#define CKPT_FORMAT "1"

pd_amed_train_options pd_amed_train_default_options(void) {
    pd_amed_train_options o;
    memset(&o, 0, sizeof o);
    o.kind = PD_AMED_SOLVER;
    o.nfe = 5;
    o.batch = 128;
    o.images = 10000;
    o.lr = 5e-3;
    o.s_dir = 0.01;
    o.s_time = 0;
    o.grid = -1;
    o.rho = 0;
    o.teacher_m = 0;
    o.seed = 0;
    o.micro_batch = 0;
    return o;
}

/* ------------------------------------------------------------------ the run */

typedef struct trainer {
    const pd_amed_train_options *o;
    pd_amed_info info;          /* what the output file will record */
    pd_model *model;
    pd_denoiser *den;           /* teacher and first calls (keep = 0, feature tap) */
    amed_student *stu;
    pd_amed_predictor *pred;
    int B, steps, K, M, ld;     /* batch, student intervals, teacher steps, M, label_dim */
    size_t dim, np;
    double sig[1024];           /* the student's grid, steps + 1 values */
    char ckpt[1100];
    char settings[1024];        /* everything a resumed run must share */
    /* buffers: one arena (trainer_layout) */
    float *z, *labels, *xin, *den_out, *sigf, *feat, *gradf, *adam_m, *adam_v;
    double *tea, *x, *ring[4], *a1, *kk, *xout, *dsout, *grad;
    int S, s_lo, s_hi;          /* gradient shares of a batch; this rank's shares [s_lo, s_hi) */
    double *shgrad, *shall;     /* [S][np + 2]: per share gradient, loss, r sum; gather space */
    long long batches_done, adam_t;
    double seconds;
} trainer;

typedef struct traj_ctx {
    double *tea;
    size_t total;
    int stride;
} traj_ctx;

static void traj_cb(void *user, int step, const double *x, int n, size_t dim) {
    traj_ctx *c = user;
    if (step % c->stride) return;
    memcpy(c->tea + (size_t)(step / c->stride - 1) * c->total, x, sizeof(double) * (size_t)n * dim);
}

#define logf_(t, ...) pg_log((t)->o->log, (t)->o->user, __VA_ARGS__)

static void trainer_free(trainer *t) {
    pd_denoiser_free(t->den);
    amed_student_free(t->stu);
    pd_amed_predictor_free(t->pred);
    pd_model_free(t->model);
    core_free(t->z);
}

/* Resolves the options into info (kind, steps, AFS, grid, teacher) and checks them. */
static int resolve(trainer *t, pd_error *err) {
    const pd_amed_train_options *o = t->o;
    pd_amed_info *in = &t->info;
    memset(in, 0, sizeof *in);
    if (!o->model_path || !o->model_path[0]) return pd_fail(err, "amed train: no model file given");
    if (!o->out_path || !o->out_path[0]) return pd_fail(err, "amed train: no output path given");
    if ((unsigned)o->kind >= PD_AMED_KIND_COUNT)
        return pd_fail(err, "amed train: unknown predictor kind %d", (int)o->kind);
    if (o->nfe < 2 || o->nfe > 200)
        return pd_fail(err, "amed train: nfe %d out of range (2..200; 2(N - 1) - AFS)", o->nfe);
    if (o->batch < 1 || o->batch > 4096)
        return pd_fail(err, "amed train: batch %d out of range (1..4096)", o->batch);
    if (o->images < 1) return pd_fail(err, "amed train: images %lld < 1", o->images);
    if (!(o->lr > 0) || !isfinite(o->lr)) return pd_fail(err, "amed train: lr %g must be > 0", o->lr);
    if (o->micro_batch < 0) return pd_fail(err, "amed train: micro_batch %d < 0", o->micro_batch);
    in->kind = o->kind;
    in->afs = o->nfe % 2;
    in->steps = (o->nfe + in->afs) / 2;
    in->nfe = 2 * in->steps - in->afs;
    int plugin_ipndm = o->kind == PD_AMED_PLUGIN_IPNDM;
    in->grid = o->grid >= 0 ? (pd_grid_kind)o->grid
                            : o->kind == PD_AMED_SOLVER ? PD_GRID_VP_TIME : PD_GRID_KARRAS;
    if ((unsigned)in->grid >= PD_GRID_COUNT) return pd_fail(err, "amed train: unknown grid %d", o->grid);
    in->rho = o->rho > 0 ? o->rho : in->grid == PD_GRID_KARRAS ? 7 : in->grid == PD_GRID_VP_TIME ? 1 : 0;
    in->s_dir = o->s_dir;
    in->s_time = o->s_time;
    in->max_order = plugin_ipndm ? 4 : 1;
    snprintf(in->teacher, sizeof in->teacher, "%s", plugin_ipndm ? "ipndm" : "heun");
    in->teacher_m = o->teacher_m > 0 ? o->teacher_m : plugin_ipndm ? 2 : 1;
    in->batch = o->batch;
    in->lr = o->lr;
    in->seed = o->seed;
    t->B = o->batch;
    t->steps = in->steps;
    t->M = in->teacher_m;
    t->K = (t->M + 1) * t->steps;
    if (t->steps + 1 > (int)(sizeof t->sig / sizeof t->sig[0]) || t->K > 100000)
        return pd_fail(err, "amed train: %d intervals with M = %d is too many", t->steps, t->M);
    if (o->checkpoint && o->checkpoint[0]) snprintf(t->ckpt, sizeof t->ckpt, "%s", o->checkpoint);
    else snprintf(t->ckpt, sizeof t->ckpt, "%s.ckpt", o->out_path);
    return 0;
}

/* The one arena (core/arena.h; core_alloc zeroes it, so Adam starts from 0): the batch's floats
 * (z first, so it is the allocation), the teacher states, the doubles, and the gradient shares
 * [S][np + 2] twice (this rank's, and the gather space). */
static void trainer_layout(void *ctx, ar_arena *a) {
    trainer *t = ctx;
    const size_t BD = (size_t)t->B * t->dim, B = (size_t)t->B, ld = (size_t)(t->ld > 0 ? t->ld : 1);
    const size_t F = sizeof(float), D = sizeof(double), sw = (size_t)t->S * (t->np + 2);
    t->z = ar_take(a, F * BD);
    t->labels = ar_take(a, F * B * ld);
    t->xin = ar_take(a, F * BD);
    t->den_out = ar_take(a, F * BD);
    t->sigf = ar_take(a, F * B);
    t->feat = ar_take(a, F * B * AMED_FEAT);
    t->gradf = ar_take(a, F * t->np);
    t->adam_m = ar_take(a, F * t->np);
    t->adam_v = ar_take(a, F * t->np);
    t->tea = ar_take(a, D * BD * (size_t)t->steps);
    t->grad = ar_take(a, D * t->np);
    t->x = ar_take(a, D * BD);
    for (int k = 0; k < 4; k++) t->ring[k] = ar_take(a, D * BD);
    t->a1 = ar_take(a, D * BD);
    t->kk = ar_take(a, D * BD);
    t->xout = ar_take(a, D * BD);
    t->dsout = ar_take(a, D * BD);
    t->shgrad = ar_take(a, D * sw);
    t->shall = ar_take(a, D * sw);
}

static int setup(trainer *t, pd_error *err) {
    const pd_amed_train_options *o = t->o;
    pd_amed_info *in = &t->info;
    if (pd_model_load(&t->model, o->model_path, err)) return -1;
    const pd_unet_config *c = pd_model_config(t->model);
    if ((strcmp(c->arch, "songunet") && strcmp(c->arch, "adm")) ||
        (c->kind[0] && strcmp(c->kind, "denoiser")))
        return pd_fail(err, "%s: an AMED predictor needs a denoiser model (arch songunet or adm, "
                       "kind denoiser), this is %s/%s", o->model_path, c->arch,
                       c->kind[0] ? c->kind : "denoiser");
    snprintf(in->model_sha256, sizeof in->model_sha256, "%s", pd_model_sha256(t->model));
    const char *base = strrchr(o->model_path, '/');
    snprintf(in->model_name, sizeof in->model_name, "%s", base ? base + 1 : o->model_path);
    in->sigma_min = c->sigma_min;
    in->sigma_max = c->sigma_max;
    if (pd_denoiser_from_model(&t->den, t->model, 0, err)) return -1;
    if (t->den->feature_dim != AMED_FEAT)
        return pd_fail(err, "%s: the U-Net's feature tap has %d values, AMED reads %d (an 8x8 level "
                       "at the trained resolution)", o->model_path, t->den->feature_dim, AMED_FEAT);
    t->ld = t->den->label_dim;
    t->dim = (size_t)t->den->C * t->den->H * t->den->W;
    int micro = o->micro_batch > 0 ? o->micro_batch : 32;
    if (amed_student_create(&t->stu, t->model, micro, t->B, err)) return -1;
    if (pd_amed_predictor_create(&t->pred, in, o->seed, 0, err)) return -1;
    t->np = pd_amed_predictor_param_count(t->pred);

    pd_schedule_params sp = pd_schedule_default_params();
    sp.grid = in->grid;
    sp.rho = in->rho;
    sp.sigma_min = in->sigma_min;
    sp.sigma_max = in->sigma_max;
    sp.end_at_zero = 0;
    if (pd_sigma_grid(t->sig, t->steps, &sp, err)) return -1;

    /* gradient shares (grad_shares.h): a fixed function of the batch, never of the ranks */
    t->S = gs_shares(t->B, GS_MAX_SHARES);   /* cheap here: the predictor's gradient only */
    long long lo, hi;
    dist_part(t->S, dist_rank(), &lo, &hi);
    t->s_lo = (int)lo;
    t->s_hi = (int)hi;
    if (!ar_build(trainer_layout, t, NULL))
        return pd_fail(err, "amed train: out of memory for a batch of %d and %d gradient shares",
                       t->B, t->S);

    snprintf(t->settings, sizeof t->settings,
             "kind=%s nfe=%d steps=%d afs=%d grid=%s rho=%.17g sigma=[%.17g,%.17g] s_dir=%.17g "
             "s_time=%.17g teacher=%s M=%d batch=%d lr=%.17g seed=%" PRIu64 " model=%s",
             pd_amed_kind_name(in->kind), in->nfe, in->steps, in->afs, pd_grid_name(in->grid),
             in->rho, in->sigma_min, in->sigma_max, in->s_dir, in->s_time, in->teacher, in->teacher_m,
             in->batch, in->lr, in->seed, in->model_sha256);
    return 0;
}

/* ------------------------------------------------------------------ checkpoints */

static int ckpt_save(trainer *t, const double *loss, pd_error *err) {
    const char *names[3] = {"params", "adam_m", "adam_v"};
    int ndims[3] = {1, 1, 1};
    long long shapes[3][8] = {{(long long)t->np}, {(long long)t->np}, {(long long)t->np}};
    const float *data[3] = {t->pred->params, t->adam_m, t->adam_v};
    /* The one JSON writer (core/jsonbuf.h); jb_num keeps a diverged loss (nan) readable. */
    jb_buf state = {0};
    jb_printf(&state, "{\"format\": " CKPT_FORMAT);
    jb_key_int(&state, "batches", t->batches_done);
    jb_key_int(&state, "adam_t", t->adam_t);
    jb_key(&state, "seconds");
    jb_num(&state, t->seconds);
    jb_key(&state, "loss");
    jb_printf(&state, "[");
    for (int n = 0; n < t->steps; n++) {
        if (n) jb_printf(&state, ", ");
        jb_num(&state, loss[n]);
    }
    jb_printf(&state, "]}");
    if (state.oom) {
        jb_free(&state);
        return pd_fail(err, "%s: out of memory for the checkpoint metadata", t->ckpt);
    }
    const char *keys[3] = {"format", "pixdiff.amed_train", "pixdiff.amed_settings"};
    const char *vals[3] = {"pt", state.s, t->settings};
    int rc = st_write(t->ckpt, 3, names, ndims, (const long long(*)[8])shapes, data, 3, keys, vals, err);
    jb_free(&state);
    return rc;
}

/* Restores everything ckpt_save wrote, the last batch's interval losses included: they become
 * the predictor's final_loss even when the run is resumed after its last batch. */
static int ckpt_load(trainer *t, double *loss, pd_error *err) {
    st_file f;
    if (st_read(&f, t->ckpt, err)) return -1;
    int rc = -1;
    yd_doc doc = {0};
    const char *st = st_meta(&f, "pixdiff.amed_train"), *se = st_meta(&f, "pixdiff.amed_settings");
    if (!st || !se) {
        pd_fail(err, "%s: not an AMED training checkpoint (no pixdiff.amed_train metadata)", t->ckpt);
        goto done;
    }
    if (strcmp(se, t->settings)) {
        pd_fail(err, "%s: written with other settings (%s); this run has %s", t->ckpt, se, t->settings);
        goto done;
    }
    float *dst[3] = {t->pred->params, t->adam_m, t->adam_v};
    const char *names[3] = {"params", "adam_m", "adam_v"};
    for (int i = 0; i < 3; i++) {
        const st_tensor *s = st_find(&f, names[i]);
        if (!s || s->numel != t->np) {
            pd_fail(err, "%s: tensor '%s' missing or not %zu values", t->ckpt, names[i], t->np);
            goto done;
        }
        memcpy(dst[i], s->data, sizeof(float) * t->np);
    }
    char src[1200];
    snprintf(src, sizeof src, "%s: pixdiff.amed_train", t->ckpt);
    if (yd_load_json_n(&doc, st, strlen(st), src, YD_JSON_NONFINITE, err)) goto done;
    long long batches = -1, adam_t = -1;
    double secs = 0;
    if (yd_int(&doc, doc.root, "batches", &batches, err) || yd_int(&doc, doc.root, "adam_t", &adam_t, err) ||
        yd_double(&doc, doc.root, "seconds", &secs, err))
        goto done;
    if (batches < 0 || adam_t < 0) {
        pd_fail(err, "%s: batches %lld / adam_t %lld missing or negative", src, batches, adam_t);
        goto done;
    }
    int nl = 0;
    if (yd_double_list(&doc, doc.root, "loss", loss, t->steps, &nl, err)) goto done;
    if (nl != t->steps) {
        pd_fail(err, "%s: %d interval losses, the run has %d intervals", src, nl, t->steps);
        goto done;
    }
    t->batches_done = batches;
    t->adam_t = adam_t;
    t->seconds = secs;
    rc = 0;
done:
    if (doc.root) yd_free(&doc);
    st_free(&f);
    return rc;
}

/* ------------------------------------------------------------------ one batch */

/* D(x; t0) of this rank's nb images into den_out (AFS when afs_now: D = x/(q (q + t0)) as
 * pd_sample computes it), with the feature tap into feat (zeros on the AFS step). */
static int first_eval(trainer *t, const double *x, int nb, double t0, int afs_now, pd_error *err) {
    size_t BD = (size_t)nb * t->dim;
    if (afs_now) {
        double q = sqrt(1.0 + t0 * t0), f = 1.0 / (q * (q + t0));
        for (size_t j = 0; j < BD; j++) t->den_out[j] = (float)(f * x[j]);
        memset(t->feat, 0, sizeof(float) * (size_t)nb * AMED_FEAT);
        return 0;
    }
    for (size_t j = 0; j < BD; j++) t->xin[j] = (float)x[j];
    for (int b = 0; b < nb; b++) t->sigf[b] = (float)t0;
    return pd_denoiser_eval_features(t->den, t->den_out, t->xin, t->sigf, t->ld ? t->labels : NULL,
                                     nb, t->feat, err);
}

/* First image of gradient share j of the batch (distill/grad_shares.h). */
static int share_first(const trainer *t, int j) { return (int)((long long)j * t->B / t->S); }

/* The interval's gradient, loss and mean r over the whole batch: each share's (this rank's
 * shares, computed into shgrad) gathered from every rank and added in share order, so every
 * rank, and a lone process, gets the same bits (docs/scale-out.md §2). */
static void sum_shares(trainer *t, double *loss, double *rmean) {
    const size_t w = t->np + 2;
    if (dist_size() > 1) {
        size_t bytes[dist_size()];
        for (int r = 0; r < dist_size(); r++) {
            long long lo, hi;
            dist_part(t->S, r, &lo, &hi);
            bytes[r] = (size_t)(hi - lo) * w * sizeof(double);
        }
        dist_allgatherv(t->shgrad + (size_t)t->s_lo * w, t->shall, bytes);
        memcpy(t->shgrad, t->shall, sizeof(double) * w * (size_t)t->S);
    }
    for (size_t i = 0; i < w; i++) {
        double acc = 0.0;
        for (int j = 0; j < t->S; j++) acc += t->shgrad[(size_t)j * w + i];
        if (i < t->np) t->grad[i] = acc;
        else if (i == t->np) *loss = acc;
        else *rmean = acc;
    }
}

/* One batch: this rank's images [i0, i0 + nb) (those of its gradient shares) through the
 * teacher and the student; every interval's Adam step on the whole batch's gradient. */
static int run_batch(trainer *t, long long batch_index, double *loss, double *rmean, pd_error *err) {
    const pd_amed_info *in = &t->info;
    const int B = t->B, plugin = in->kind != PD_AMED_SOLVER, multistep = in->kind == PD_AMED_PLUGIN_IPNDM;
    const int i0 = share_first(t, t->s_lo), nb = share_first(t, t->s_hi) - i0;
    const size_t dim = t->dim, BD = (size_t)nb * dim, w = t->np + 2;
    static const double ab[4][4] = {{1, 0, 0, 0}, {3, -1, 0, 0}, {23, -16, 5, 0}, {55, -59, 37, -9}};
    static const double ab_den[4] = {1, 2, 12, 24};

    /* noise and labels of images g = batch_index * B + i0 + b */
    for (int b = 0; b < nb; b++) {
        uint64_t g = (uint64_t)batch_index * (uint64_t)B + (uint64_t)(i0 + b);
        pd_randn(t->z + (size_t)b * dim, dim, t->o->seed, STREAM_NOISE + g);
        if (t->ld > 0) {
            float u;
            rng_randu(&u, 1, t->o->seed, STREAM_LABEL + g);
            int cls = (int)(u * t->ld);
            if (cls >= t->ld) cls = t->ld - 1;
            float *l = t->labels + (size_t)b * t->ld;
            memset(l, 0, sizeof(float) * (size_t)t->ld);
            l[cls] = 1;
        }
    }

    /* the teacher on the finer grid, states at every (M + 1)-th step (each image's trajectory
     * depends on its own noise only, so a rank runs just its images) */
    pd_sample_params tp = pd_sample_default_params();
    tp.sampler = multistep ? PD_SAMPLER_IPNDM : PD_SAMPLER_HEUN;
    tp.sched.grid = in->grid;
    tp.sched.rho = in->rho;
    tp.sched.sigma_min = in->sigma_min;
    tp.sched.sigma_max = in->sigma_max;
    tp.sched.end_at_zero = 0;
    tp.steps = t->K;
    tp.afs = 0;
    tp.max_order = multistep ? 4 : 0;
    traj_ctx tc = {t->tea, BD, t->M + 1};
    tp.trajectory = traj_cb;
    tp.user = &tc;
    memcpy(t->xin, t->z, sizeof(float) * BD);
    if (nb > 0 && pd_sample(t->den, &tp, t->xin, t->ld ? t->labels : NULL, NULL, nb, NULL, err))
        return -1;

    /* the student, interval by interval, one Adam step each */
    double s0 = t->sig[0];
    for (size_t j = 0; j < BD; j++) t->x[j] = s0 * (double)t->z[j];
    long long pushed = 0;
    for (int n = 0; n < t->steps; n++) {
        double t0 = t->sig[n], t1 = t->sig[n + 1];
        if (!multistep && n > 0) memcpy(t->x, t->tea + (size_t)(n - 1) * BD, sizeof(double) * BD);
        if (nb > 0 && first_eval(t, t->x, nb, t0, in->afs && n == 0, err)) return -1;

        const int mo = in->max_order;
        double *d0 = t->ring[pushed % 4];
        const double *d1 = t->ring[(pushed + 3) % 4], *d2 = t->ring[(pushed + 2) % 4],
                     *d3 = t->ring[(pushed + 1) % 4];
        int p1 = pushed + 1 < mo ? (int)pushed + 1 : mo;
        double c1[4];
        for (int q = 0; q < 4; q++) c1[q] = ab[p1 - 1][q] / ab_den[p1 - 1];
        for (size_t j = 0; j < BD; j++) {
            d0[j] = (t->x[j] - t->den_out[j]) / t0;
            /* AB_p(d_n; H) in the sampler's order (amed_plugin.c); p = 1 is d_n itself */
            t->a1[j] = c1[0] * d0[j] + c1[1] * d1[j] + c1[2] * d2[j] + c1[3] * d3[j];
        }
        double alpha0 = 1.0;
        if (multistep) {
            /* after pushing d_n: A2 = c2_0 d_s + (c2_1 d_n + c2_2 H[-1] + c2_3 H[-2]) */
            long long k2 = pushed + 1;
            int p2 = k2 + 1 < mo ? (int)k2 + 1 : mo;
            double c2[4];
            for (int q = 0; q < 4; q++) c2[q] = ab[p2 - 1][q] / ab_den[p2 - 1];
            const double *e1 = t->ring[(k2 + 3) % 4], *e2 = t->ring[(k2 + 2) % 4],
                         *e3 = t->ring[(k2 + 1) % 4];
            for (size_t j = 0; j < BD; j++) t->kk[j] = c2[1] * e1[j] + c2[2] * e2[j] + c2[3] * e3[j];
            alpha0 = c2[0];
        }
        /* each of this rank's shares on its own, its loss normalised by the whole batch */
        int failed = 0;
        for (int j = t->s_lo; j < t->s_hi && !failed; j++) {
            size_t o = (size_t)(share_first(t, j) - i0) * dim;
            double *g = t->shgrad + (size_t)j * w;
            memset(g, 0, sizeof(double) * w);
            amed_interval iv = {0};
            iv.n = share_first(t, j + 1) - share_first(t, j);
            iv.norm = B;
            iv.t0 = t0;
            iv.t1 = t1;
            iv.x = t->x + o;
            iv.feature = t->feat + (size_t)(share_first(t, j) - i0) * AMED_FEAT;
            iv.labels = t->ld ? t->labels + (size_t)(share_first(t, j) - i0) * t->ld : NULL;
            iv.plugin = plugin;
            iv.alpha0 = alpha0;
            iv.a1 = t->a1 + o;
            iv.k = multistep ? t->kk + o : NULL;
            failed = amed_student_interval(t->stu, t->pred, &iv, t->tea + (size_t)n * BD + o,
                                           t->xout + o, t->dsout + o, &g[t->np], g,
                                           &g[t->np + 1], err) != 0;
        }
        if (dist_any(failed))
            return failed ? -1 : pd_fail(err, "another rank failed in batch %lld", batch_index + 1);
        sum_shares(t, &loss[n], &rmean[n]);

        /* NaN/Inf guard (as the reference's nan_to_num), then one Adam step */
        for (size_t i = 0; i < t->np; i++) t->gradf[i] = (float)t->grad[i];
        size_t bad = opt_sanitize(t->gradf, t->np);
        if (bad) logf_(t, "batch %lld interval %d: %zu non-finite gradient values replaced",
                       batch_index + 1, n, bad);
        t->adam_t++;
        opt_adam_step(t->pred->params, t->adam_m, t->adam_v, t->gradf, t->np, t->o->lr, 0.9, 0.999,
                      1e-8, t->adam_t);

        if (multistep) {
            /* the student's own output and history carry on (detached, as the reference) */
            pushed++;
            memcpy(t->ring[pushed % 4], t->dsout, sizeof(double) * BD);
            pushed++;
            memcpy(t->x, t->xout, sizeof(double) * BD);
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ pd_amed_train */

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

int pd_amed_train(const pd_amed_train_options *o, pd_error *err) {
    if (!o) return pd_fail(err, "amed train: NULL options");
    trainer t;
    memset(&t, 0, sizeof t);
    t.o = o;
    int rc = -1;
    double loss[1024] = {0}, rmean[1024] = {0};
    if (resolve(&t, err) || setup(&t, err)) goto done;
    /* What an earlier run killed inside an atomic write left (e2e_faults.sh). */
    rd_remove_stale_tmp_of(t.ckpt);
    rd_remove_stale_tmp_of(o->out_path);
    logf_(&t, "AMED %s: NFE %d = %d intervals%s on %s rho %g, teacher %s M=%d (%d steps), "
              "%zu predictor parameters", pd_amed_kind_name(t.info.kind), t.info.nfe, t.steps,
          t.info.afs ? " with AFS" : "", pd_grid_name(t.info.grid), t.info.rho, t.info.teacher, t.M,
          t.K, t.np);

    if (file_exists(t.ckpt)) {
        if (!o->resume) {
            pd_fail(err, "%s exists: pass resume (--resume) to continue it, or remove it", t.ckpt);
            goto done;
        }
        if (ckpt_load(&t, loss, err)) goto done;
        logf_(&t, "resumed from %s at batch %lld", t.ckpt, t.batches_done);
    } else if (o->resume) {
        logf_(&t, "no checkpoint %s: starting a new run", t.ckpt);
    }

    long long total_batches = (o->images + t.B - 1) / t.B, total = total_batches * t.B;
    long long start_batches = t.batches_done;
    double t_start = core_now();
    while (t.batches_done < total_batches) {
        double tb = core_now();
        if (run_batch(&t, t.batches_done, loss, rmean, err)) goto done;
        t.batches_done++;
        t.seconds += core_now() - tb;
        if (dist_rank() == 0 && ckpt_save(&t, loss, err)) goto done;
        if (o->progress) {
            /* rate and ETA of this session (a resumed run starts its clock again) */
            pd_progress pr;
            pg_init(&pr, "amed", "images");
            pr.done = t.batches_done * t.B - start_batches * t.B;
            pr.total = total - start_batches * t.B;
            pg_time(&pr, t_start);
            pr.done = t.batches_done * t.B;
            pr.total = total;
            pr.losses = loss;
            pr.n_losses = t.steps;
            o->progress(o->user, &pr);
        }
        if (t.batches_done < total_batches && dist_any(o->abort && o->abort(o->user))) {
            pd_fail(err, "interrupted after batch %lld of %lld; %s holds the run (resume to continue)",
                    t.batches_done, total_batches, t.ckpt);
            goto done;
        }
    }

    /* the output: the predictor and what it was trained for */
    double lsum = 0;
    for (int n = 0; n < t.steps; n++) lsum += loss[n];
    t.info.images = t.batches_done * t.B;
    t.info.final_loss = t.steps > 0 ? lsum / t.steps : 0;
    t.pred->info = t.info;
    if (dist_rank() > 0) {   /* rank 0 writes the run's files (docs/scale-out.md) */
        rc = 0;
        goto done;
    }
    if (pd_amed_predictor_save(t.pred, o->out_path, err)) goto done;
    logf_(&t, "wrote %s (%lld trajectories, %.1f s of training; mean interval loss %.6g, mean r "
              "of the last batch %.4f .. %.4f)", o->out_path, t.info.images, t.seconds,
          t.info.final_loss, rmean[0], rmean[t.steps - 1]);
    if (remove(t.ckpt) != 0)
        logf_(&t, "could not remove the finished checkpoint %s: %s", t.ckpt, strerror(errno));
    rc = 0;
done:
    trainer_free(&t);
    return rc;
}
