/* sid_loop.c — pd_distill_sid and pd_sid_export, the public face of the SiD distiller (pixdiff.h).
 *
 * The loop owns the run's files in the output directory (pixdiff.h lists them). It loads the
 * teacher (the config's, the option's, or on resume the checkpoint's), builds the distiller,
 * resumes if asked, and iterates: progress about once a second, a checkpoint every
 * training.checkpoint_images (atomic), an FD evaluation of G_ema every eval.fd_images through
 * the metrics room's evaluator (pd_eval_*: classifier features against the Fashion-MNIST test
 * split), snapshots, and at the end the export of G_ema as a generator model. FD runs on its own
 * seeds and leaves the training state alone, so it never changes the trajectory of a run.
 * Under mpirun (docs/scale-out.md) every rank iterates on the same state (sid_iteration's
 * gradients are the same on all of them); rank 0 alone writes files and runs the FD evaluation,
 * and an interrupt seen by any rank stops all of them after the same iteration.
 */
#include "distill/sid.h"
#include "distill/run_dir.h"
#include "distill/run_progress.h"
#include "core/dist.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pd_sid_options pd_sid_default_options(void) {
    pd_sid_options o;
    memset(&o, 0, sizeof o);
    o.psi_warmup_images = -1;
    return o;
}

/* The FD hook: n samples of G_ema (seeds fd_seed + k, label k mod classes) through the metrics
 * evaluator; FD comes back, and FD, KID, accuracy (NaN for an unconditional model), precision and
 * recall (k = 3, n of each set) go to fd-log.csv. */
typedef struct fd_ctx {
    pd_model *clf;
    pd_eval *ev;
    float *x;
    int *labels;
} fd_ctx;

static int fd_open(fd_ctx *f, const sid_distiller *s, const pd_sid_options *o, pd_error *err) {
    memset(f, 0, sizeof *f);
    const sid_config *c = &s->cfg;
    if (c->fd_images <= 0) return 0;
    if (!c->classifier[0])
        return pd_fail(err, "%s: eval.fd_images is %lld but no classifier is given (eval.classifier "
                       "or --classifier)", c->source, c->fd_images);
    if (pd_model_load(&f->clf, c->classifier, err)) {
        char inner[sizeof err->msg];
        snprintf(inner, sizeof inner, "%s", err->msg);
        return pd_fail(err, "the FD classifier (eval.classifier or --classifier): %s; set "
                       "eval.fd_images: 0 to distil without FD", inner);
    }
    pd_eval_options eo = pd_eval_default_options();
    eo.kid.subsets = 10;      /* a progress yardstick, not a benchmark: keep it cheap */
    eo.log = o->log;
    eo.user = o->user;
    if (pd_eval_create(&f->ev, f->clf, &eo, err)) return -1;
    f->x = malloc(sizeof(float) * s->chw * (size_t)c->fd_n);
    f->labels = malloc(sizeof(int) * (size_t)c->fd_n);
    if (!f->x || !f->labels) return pd_fail(err, "out of memory for %d FD samples", c->fd_n);
    return 0;
}

static void fd_close(fd_ctx *f) {
    if (f->ev) pd_eval_free(f->ev);
    if (f->clf) pd_model_free(f->clf);
    free(f->x);
    free(f->labels);
}

static int fd_run(fd_ctx *f, sid_distiller *s, const pd_sid_options *o, double *fd,
                  pd_error *err) {
    const sid_config *c = &s->cfg;
    double t0 = core_now();
    if (sid_generate_ema(s, f->x, c->fd_n, c->fd_seed, err)) return -1;
    for (int k = 0; k < c->fd_n; k++) f->labels[k] = s->label_dim > 0 ? k % s->label_dim : -1;
    pd_eval_reset(f->ev);
    pd_eval_result r;
    if (pd_eval_add(f->ev, f->x, c->fd_n, s->C, s->H, f->labels, err) ||
        pd_eval_finish(f->ev, &r, err))
        return -1;
    *fd = r.fd;
    char line[300];
    snprintf(line, sizeof line, "%lld,%lld,%.4f,%.6g,%.6g,%.4f,%.4f,%.4f", s->images_seen, s->step,
             s->seconds / 3600.0, r.fd, r.kid.kid, r.accuracy, r.precision, r.recall);
    rd_append_csv(c->out_dir, "fd-log.csv", "images,step,hours,fd,kid,accuracy,precision,recall",
                  line);
    pg_log(o->log, o->user, "FD %.4g, KID %.4g, class accuracy %.3f, precision %.3f, recall %.3f "
           "of G_ema at %lld images (%d samples, %.1f s)", r.fd, r.kid.kid, r.accuracy,
           r.precision, r.recall, s->images_seen, c->fd_n, core_now() - t0);
    return 0;
}

/* The config: the file's, else (resuming) the checkpoint's; then the option overrides. */
static int load_config(const pd_sid_options *o, sid_config *cfg, char *ckpt, size_t cap,
                       pd_error *err) {
    if (o->config_path) {
        if (sid_config_load(cfg, o->config_path, err)) return -1;
    } else if (o->resume && o->out_dir) {
        snprintf(ckpt, cap, "%s/checkpoint.safetensors", o->out_dir);
        if (sid_checkpoint_config(ckpt, cfg, err)) return -1;
    } else {
        return pd_fail(err, "pd_distill_sid: give a config file (or --resume with the output "
                       "directory)");
    }
    if (o->out_dir) snprintf(cfg->out_dir, sizeof cfg->out_dir, "%s", o->out_dir);
    if (o->teacher_path) snprintf(cfg->teacher, sizeof cfg->teacher, "%s", o->teacher_path);
    if (o->classifier_path)
        snprintf(cfg->classifier, sizeof cfg->classifier, "%s", o->classifier_path);
    if (o->threads > 0) cfg->threads = o->threads;
    if (o->duration_images > 0) cfg->duration_images = o->duration_images;
    snprintf(ckpt, cap, "%s/checkpoint.safetensors", cfg->out_dir);
    return 0;
}

/* The teacher path when neither the config nor the options name one: the checkpoint's. */
static int checkpoint_teacher(const char *ckpt, char *out, size_t cap, pd_error *err) {
    st_file f;
    if (st_read(&f, ckpt, err)) return -1;
    const char *t = st_meta(&f, "pixdiff.sid.teacher");
    int rc = t && t[0] ? (snprintf(out, cap, "%s", t), 0)
                       : pd_fail(err, "%s: records no teacher; give --teacher", ckpt);
    st_free(&f);
    return rc;
}

/* One line of sid-log.csv: the loss means since the previous line. */
static void append_log_csv(const sid_distiller *s, const rp_meter *pm) {
    char line[300];
    snprintf(line, sizeof line, "%lld,%lld,%.4f,%.6f,%.6f,%.2f", s->images_seen, s->step,
             s->seconds / 3600.0, rp_since_mean(pm, 0), rp_since_mean(pm, 1), pm->rate);
    rd_append_csv(s->cfg.out_dir, "sid-log.csv", "images,step,hours,loss_psi,loss_theta,img_per_s",
                  line);
}

/* The fake-score-only warm-up of a warm-started run (sid_init_generator): psi steps until
 * warm_total images, a checkpoint every training.checkpoint_images and one at the end (so the
 * alternating phase always starts from a checkpoint on disk); Ctrl-C checkpoints and stops. */
static int run_warmup(sid_distiller *s, const pd_sid_options *o, const char *ckpt, double t_call,
                      pd_error *err) {
    if (s->warm_seen >= s->warm_total) return 0;
    const int writer = dist_rank() == 0;   /* rank 0 writes the checkpoints */
    long long saved_at = o->resume ? s->warm_seen : -1;
    double t0 = core_now(), mean = 0;
    int nmean = 0;
    /* progress (stage "warm-up"): about once a second and at the end, rate over this session */
    const double t_warm = core_now();
    const long long warm_from = s->warm_seen;
    double last_report = t_warm;
    while (s->warm_seen < s->warm_total) {
        if (dist_any(o->abort && o->abort(o->user))) {
            if (s->warm_seen != saved_at && writer && sid_save_checkpoint(s, ckpt, err)) return -1;
            return pd_fail(err, "interrupted in the fake-score warm-up at %lld of %lld images; "
                           "checkpoint %s (continue with --resume)", s->warm_seen, s->warm_total,
                           ckpt);
        }
        long long before = s->warm_seen;
        double lp;
        if (sid_warmup_iteration(s, &lp, err)) return -1;
        mean += lp;
        nmean++;
        if (o->progress && (core_now() - last_report >= 1.0 || s->warm_seen >= s->warm_total)) {
            pd_progress p;
            pg_init(&p, "sid", "images");
            p.stage = "warm-up";
            p.done = s->warm_seen - warm_from;
            p.total = s->warm_total - warm_from;
            pg_time(&p, t_warm);
            p.done = s->warm_seen;
            p.total = s->warm_total;
            p.seconds = core_now() - t_call;
            p.loss_psi = mean / nmean;
            o->progress(o->user, &p);
            last_report = core_now();
        }
        int save = writer && (rp_crossed(before, s->warm_seen, s->cfg.checkpoint_images) ||
                              s->warm_seen >= s->warm_total);
        /* a line every tenth of the warm-up too: it can be long on a busy machine */
        long long tenth = s->warm_total / 10 > s->B ? s->warm_total / 10 : s->B;
        if (save || rp_crossed(before, s->warm_seen, tenth)) {
            if (save && sid_save_checkpoint(s, ckpt, err)) return -1;
            if (save) saved_at = s->warm_seen;
            pg_log(o->log, o->user, "warm-up: f_psi alone at %lld of %lld images, loss psi %.4f "
                   "(mean since the last line), %.1f img/s%s%s", s->warm_seen, s->warm_total,
                   mean / nmean, (double)s->B * nmean / (core_now() - t0),
                   save ? "; checkpoint " : "", save ? ckpt : "");
            mean = 0;
            nmean = 0;
            t0 = core_now();
        }
    }
    return 0;
}

int pd_distill_sid(const pd_sid_options *o, pd_error *err) {
    const double t_call = core_now();
    sid_config cfg;
    char ckpt[1200];
    if (load_config(o, &cfg, ckpt, sizeof ckpt, err)) return -1;
    pd_set_threads(cfg.threads);
    sid_distiller *s = NULL;
    fd_ctx fdc;
    memset(&fdc, 0, sizeof fdc);
    int rc = -1;
    if (rd_check_checkpoint(ckpt, o->resume, "output directory (--out)", err)) goto done;
    if (!cfg.teacher[0] && (!o->resume || checkpoint_teacher(ckpt, cfg.teacher, sizeof cfg.teacher,
                                                             err))) {
        if (!o->resume) pd_fail(err, "%s: no teacher: set `teacher:` or pass --teacher", cfg.source);
        goto done;
    }
    const int writer = dist_rank() == 0;   /* the rank that writes the run's files */
    pd_model *teacher;
    if (pd_model_load(&teacher, cfg.teacher, err)) goto done;
    if (sid_create(&s, &cfg, teacher, err)) goto done;
    if (o->resume && o->init_generator_path) {
        pd_fail(err, "--init-generator starts a new run; a resumed run continues from its "
                "checkpoint's generator");
        goto done;
    }
    if (o->init_generator_path) {
        pd_model *g;
        if (pd_model_load(&g, o->init_generator_path, err)) goto done;
        int bad = sid_init_generator(s, g, o->psi_warmup_images < 0 ? SID_DEFAULT_WARMUP_IMAGES
                                                                     : o->psi_warmup_images,
                                     o->init_images, err);
        pd_model_free(g);
        if (bad) goto done;
        pg_log(o->log, o->user, "warm start: G and G_ema from %s (distilled on %lld images, where "
               "G_ema's ramp-up continues), f_psi from the teacher, fitted alone on %lld images "
               "first", o->init_generator_path, s->init_images, s->warm_total);
    }
    /* The directory only once the networks are known to fit together (no empty run folder
     * left behind by a refused teacher or initial generator). */
    if (pd_make_dirs(cfg.out_dir, err)) goto done;
    if (writer) rd_remove_stale_tmp(ckpt);
    if (o->resume) {
        if (sid_load_checkpoint(s, ckpt, err)) goto done;
        pg_log(o->log, o->user, "resumed %s at %lld images (iteration %lld, %.2f h distilled)",
               ckpt, s->images_seen, s->step, s->seconds / 3600.0);
    } else {
        size_t act = unet_run_bytes(s->run_t) + unet_run_bytes(s->run_psi) + unet_run_bytes(s->run_g);
        for (int k = 1; k < s->shares.workers; k++)
            for (int j = 0; j < 3; j++) act += unet_run_bytes(s->wrun[k][j]);
        pg_log(o->log, o->user, "new SiD run: teacher %s (%zu parameters%s), batch %d (%d "
               "shares, %d at once), alpha %g, sigma_init %g, %.0f MB of activations, %lld "
               "images -> %s", cfg.teacher, s->n_params, s->label_dim > 0 ? ", class-conditional"
               : "", s->B, s->shares.S, s->shares.workers, cfg.alpha, cfg.sigma_init,
               act / 1048576.0, cfg.duration_images, cfg.out_dir);
    }
    if (writer && fd_open(&fdc, s, o, err)) goto done;

    const long long total = cfg.duration_images;
    double fd = NAN;
    if (fdc.ev && s->images_seen == 0 && fd_run(&fdc, s, o, &fd, err)) goto done;
    if (run_warmup(s, o, ckpt, t_call, err)) goto done;
    rp_meter pm;
    const double last[2] = {s->last_loss_psi, s->last_loss_theta};
    rp_init(&pm, 2, s->images_seen, last);
    /* What the checkpoint on disk holds; a new run has none yet, so a Ctrl-C even before the first
     * step writes one and --resume works as the message says. */
    long long saved_at = o->resume ? s->images_seen : -1;

    while (s->images_seen < total) {
        if (dist_any(o->abort && o->abort(o->user))) {
            if (s->images_seen != saved_at && writer && sid_save_checkpoint(s, ckpt, err))
                goto done;
            pd_fail(err, "interrupted at %lld images; checkpoint %s (continue with --resume)",
                    s->images_seen, ckpt);
            goto done;
        }
        long long before = s->images_seen;
        double losses[2];
        if (sid_iteration(s, &losses[0], &losses[1], err)) goto done;
        rp_record(&pm, s->images_seen, losses);

        if (writer && rp_crossed(before, s->images_seen, cfg.checkpoint_images)) {
            if (sid_save_checkpoint(s, ckpt, err)) goto done;
            saved_at = s->images_seen;
            append_log_csv(s, &pm);
            rp_since_reset(&pm);
            pg_log(o->log, o->user, "checkpoint %s at %lld images", ckpt, s->images_seen);
        }
        if (writer && rp_crossed(before, s->images_seen, cfg.snapshot_images)) {
            char snap[1200];
            snprintf(snap, sizeof snap, "%s/generator-%09lld.safetensors", cfg.out_dir,
                     s->images_seen);
            if (sid_export(s, snap, err)) goto done;
            pg_log(o->log, o->user, "snapshot %s", snap);
        }
        if (fdc.ev && rp_crossed(before, s->images_seen, cfg.fd_images) &&
            fd_run(&fdc, s, o, &fd, err))
            goto done;
        if (o->progress && rp_progress_due(&pm, s->images_seen, total)) {
            pd_progress p;
            rp_report(&pm, &p, "sid", s->images_seen, total, t_call);
            p.loss_psi = pm.mean[0];
            p.loss_theta = pm.mean[1];
            p.fd = fd;
            o->progress(o->user, &p);
        }
    }
    if (!writer) {
        rc = 0;
        goto done;
    }
    if (s->images_seen != saved_at) {
        if (sid_save_checkpoint(s, ckpt, err)) goto done;
        if (pm.since_n) append_log_csv(s, &pm);
        pg_log(o->log, o->user, "checkpoint %s at %lld images", ckpt, s->images_seen);
    }
    char model_path[1200];
    if (o->export_path) snprintf(model_path, sizeof model_path, "%s", o->export_path);
    else snprintf(model_path, sizeof model_path, "%s/generator.safetensors", cfg.out_dir);
    if (sid_export(s, model_path, err)) goto done;
    pg_log(o->log, o->user, "exported G_ema (%lld images, %.2f h) to %s", s->images_seen,
           s->seconds / 3600.0, model_path);
    if (s->nonfinite || s->dropped)
        pg_log(o->log, o->user, "note: %zu non-finite gradient entries replaced, %lld samples "
               "dropped for non-finite values (docs/algorithms.md §M1.4 guards)", s->nonfinite, s->dropped);
    rc = 0;
done:
    fd_close(&fdc);
    sid_free(s);
    sid_config_free(&cfg);
    return rc;
}

int pd_sid_export(const char *checkpoint, const char *out_model, pd_error *err) {
    return sid_export_checkpoint(checkpoint, out_model, err);
}
