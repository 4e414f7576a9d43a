/* train_loop.c — pd_train and pd_train_export, the public face of the trainer (pixdiff.h).
 *
 * The loop owns the run's files in output.dir: checkpoint.safetensors (every
 * training.checkpoint_images, at the end and on abort; atomic), snapshot-<images>.safetensors
 * (EMA model every training.snapshot_images, if set), training-log.csv (one line per checkpoint:
 * images, step, hours, mean loss since the previous line, img/s, lr, gradient norm) and the final
 * EMA model. A run never overwrites an existing checkpoint unless asked to resume from it.
 * For a classifier, every checkpoint also logs the EMA weights' accuracy on the t10k split.
 * Under mpirun (docs/scale-out.md) every rank runs this loop on the same state (tr_step's
 * gradient is the same on all of them); rank 0 alone writes files, and an interrupt seen by any
 * rank stops all of them after the same step.
 */
#include "distill/train.h"
#include "distill/objective_classify.h"
#include "distill/run_dir.h"
#include "distill/run_progress.h"
#include "core/dist.h"
#include "core/progress.h"
#include "core/util.h"

#include <stdio.h>
#include <string.h>

pd_train_options pd_train_default_options(void) {
    pd_train_options o;
    memset(&o, 0, sizeof o);
    return o;
}

static void append_log_csv(const char *dir, const tr_trainer *t, double loss_mean, double rate,
                           double lr) {
    char line[300];
    snprintf(line, sizeof line, "%lld,%lld,%.4f,%.6f,%.2f,%.6g,%.4g", t->images_seen, t->step,
             t->seconds / 3600.0, loss_mean, rate, lr, t->grad_norm);
    rd_append_csv(dir, "training-log.csv", "images,step,hours,loss,img_per_s,lr,grad_norm", line);
}

int pd_train(const pd_train_options *o, pd_error *err) {
    const double t_call = core_now();
    tr_config cfg;
    if (o->config_path) {
        if (tr_config_load(&cfg, o->config_path, err)) return -1;
    } else if (o->checkpoint) {
        if (tr_checkpoint_config(o->checkpoint, &cfg, err)) return -1;
    } else {
        return pd_fail(err, "pd_train: give a config file (or a checkpoint to resume)");
    }
    if (o->out_dir) snprintf(cfg.out_dir, sizeof cfg.out_dir, "%s", o->out_dir);
    if (o->threads > 0) cfg.threads = o->threads;
    if (o->duration_images > 0) cfg.duration_images = o->duration_images;
    pd_set_threads(cfg.threads);

    char ckpt[1200];
    if (o->checkpoint) snprintf(ckpt, sizeof ckpt, "%s", o->checkpoint);
    else snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", cfg.out_dir);
    tr_trainer *t = NULL;
    int rc = -1;
    if (rd_check_checkpoint(ckpt, o->resume, "output.dir (--out)", err)) goto done;
    if (pd_make_dirs(cfg.out_dir, err)) goto done;
    if (dist_rank() == 0) rd_remove_stale_tmp(ckpt);
    if (tr_create(&t, &cfg, NULL, err)) goto done;
    if (o->resume) {
        if (tr_load_checkpoint(t, ckpt, err)) goto done;
        pg_log(o->log, o->user, "resumed %s at %lld images (step %lld, %.2f h trained)", ckpt,
               t->images_seen, t->step, t->seconds / 3600.0);
    } else {
        pg_log(o->log, o->user, "new run: %zu parameters, %d images of %dx%dx%d, batch %d (%.0f MB "
               "of activations), %lld images -> %s", t->n_params, t->data->n, t->H, t->H, t->C,
               t->B, (t->cls ? tr_classify_bytes(t->cls) : unet_run_bytes(t->run)) / 1048576.0,
               cfg.duration_images, cfg.out_dir);
    }

    const long long total = cfg.duration_images;
    rp_meter pm;
    rp_init(&pm, 1, t->images_seen, &t->last_loss);
    /* What the checkpoint on disk holds; a new run has none yet, so a Ctrl-C even before the first
     * step writes one and --resume works as the message says. */
    long long saved_at = o->resume ? t->images_seen : -1;
    const int writer = dist_rank() == 0;   /* the rank that writes the run's files */
    opt_adam a = {cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.warmup_images, cfg.grad_clip};

    while (t->images_seen < total) {
        if (dist_any(o->abort && o->abort(o->user))) {
            if (t->images_seen != saved_at && writer && tr_save_checkpoint(t, ckpt, err)) goto done;
            pd_fail(err, "interrupted at %lld images; checkpoint %s (continue with --resume)",
                    t->images_seen, ckpt);
            goto done;
        }
        long long before = t->images_seen;
        double loss;
        if (tr_step(t, &loss, err)) goto done;
        rp_record(&pm, t->images_seen, &loss);

        if (writer && rp_crossed(before, t->images_seen, cfg.checkpoint_images)) {
            if (tr_save_checkpoint(t, ckpt, err)) goto done;
            saved_at = t->images_seen;
            append_log_csv(cfg.out_dir, t, rp_since_mean(&pm, 0), pm.rate,
                           opt_lr(&a, t->images_seen));
            rp_since_reset(&pm);
            pg_log(o->log, o->user, "checkpoint %s at %lld images", ckpt, t->images_seen);
            if (t->cls && tr_classify_report(t, o, NULL, err)) goto done;
        }
        if (writer && rp_crossed(before, t->images_seen, cfg.snapshot_images)) {
            char snap[1200];
            snprintf(snap, sizeof snap, "%s/snapshot-%09lld.safetensors", cfg.out_dir,
                     t->images_seen);
            if (tr_export(t, snap, err)) goto done;
            pg_log(o->log, o->user, "snapshot %s", snap);
        }
        if (o->progress && rp_progress_due(&pm, t->images_seen, total)) {
            pd_progress pr;
            rp_report(&pm, &pr, "train", t->images_seen, total, t_call);
            pr.loss = pm.mean[0];
            o->progress(o->user, &pr);
        }
    }
    if (!writer) {
        rc = 0;
        goto done;
    }
    if (t->images_seen != saved_at) {
        if (tr_save_checkpoint(t, ckpt, err)) goto done;
        if (pm.since_n) append_log_csv(cfg.out_dir, t, rp_since_mean(&pm, 0), pm.rate,
                                       opt_lr(&a, t->images_seen));
        pg_log(o->log, o->user, "checkpoint %s at %lld images", ckpt, t->images_seen);
        if (t->cls && tr_classify_report(t, o, NULL, err)) goto done;
    }
    char model_path[1200];
    if (o->export_path) snprintf(model_path, sizeof model_path, "%s", o->export_path);
    else snprintf(model_path, sizeof model_path, "%s/model.safetensors", cfg.out_dir);
    if (tr_export(t, model_path, err)) goto done;
    pg_log(o->log, o->user, "exported the EMA weights (%lld images, %.2f h) to %s", t->images_seen,
           t->seconds / 3600.0, model_path);
    if (t->t_step > 0)
        pg_log(o->log, o->user, "this session: %.1f%% of the step time in the U-Net "
               "forward/backward", 100.0 * t->t_fwdbwd / t->t_step);
    if (t->nonfinite)
        pg_log(o->log, o->user, "note: %zu non-finite gradient entries were replaced (docs/algorithms.md "
               "§M1.4 guard)", t->nonfinite);
    rc = 0;
done:
    tr_free(t);
    tr_config_free(&cfg);
    return rc;
}

int pd_train_export(const char *checkpoint, const char *out_model, pd_error *err) {
    return tr_export_checkpoint(checkpoint, out_model, err);
}
