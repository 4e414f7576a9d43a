/* train_loop.c — pd_train and pd_train_export, the public face of the trainer (pixdiff.h).
 *
 * The loop owns the run's files in output.dir: checkpoint.safetensors (every
 * training.checkpoint_images, at the end and on abort; atomic), snapshot-<images>.safetensors
 * (EMA model every training.snapshot_images, if set), training-log.csv (one line per checkpoint:
 * images, step, hours, mean loss since the previous line, img/s, lr, gradient norm) and the final
 * EMA model. A run never overwrites an existing checkpoint unless asked to resume from it.
 * For a classifier, every checkpoint also logs the EMA weights' accuracy on the t10k split.
 */
#include "distill/train.h"
#include "distill/objective_classify.h"
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RATE_WINDOW 16   /* steps in the img/s window */
#define LOSS_WINDOW 32   /* steps in the running-mean loss */

pd_train_options pd_train_default_options(void) {
    pd_train_options o;
    memset(&o, 0, sizeof o);
    return o;
}

static void logf_(const pd_train_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(const pd_train_options *o, const char *fmt, ...) {
    if (!o->log) return;
    char line[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->log(o->user, line);
}

/* mkdir -p */
static int make_dirs(const char *dir, pd_error *err) {
    char p[1024];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return pd_fail(err, "%s: path too long", dir);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return pd_fail(err, "%s: cannot create directory: %s", p, strerror(errno));
            *s = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pd_fail(err, "%s: not a directory", dir);
    return 0;
}

/* A run killed inside st_write leaves "<checkpoint>.tmp.<pid>" behind (the checkpoint itself is
 * intact). Remove those whose writer is gone, so repeated kills do not pile up files. */
static void remove_stale_tmp(const char *ckpt) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", ckpt);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : ckpt;
    char prefix[1300];
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    size_t pl = strlen(prefix);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl)) continue;
        char *end;
        long pid = strtol(e->d_name + pl, &end, 10);
        if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char path[2600];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static void append_log_csv(const char *dir, const tr_trainer *t, double loss_mean, double rate,
                           double lr) {
    char path[1100];
    snprintf(path, sizeof path, "%s/training-log.csv", dir);
    int fresh = access(path, F_OK) != 0;
    FILE *f = fopen(path, "a");
    if (!f) return;   /* the log is a convenience; the checkpoint is the record */
    if (fresh) fprintf(f, "images,step,hours,loss,img_per_s,lr,grad_norm\n");
    fprintf(f, "%lld,%lld,%.4f,%.6f,%.2f,%.6g,%.4g\n", t->images_seen, t->step,
            t->seconds / 3600.0, loss_mean, rate, lr, t->grad_norm);
    fclose(f);
}

int pd_train(const pd_train_options *o, pd_error *err) {
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
    int exists = access(ckpt, F_OK) == 0;
    tr_trainer *t = NULL;
    int rc = -1;
    if (exists && !o->resume) {
        pd_fail(err, "%s already exists: pass --resume to continue that run, or choose another "
                "output.dir (--out)", ckpt);
        goto done;
    }
    if (!exists && o->resume) {
        pd_fail(err, "--resume: no checkpoint at %s", ckpt);
        goto done;
    }
    if (make_dirs(cfg.out_dir, err)) goto done;
    remove_stale_tmp(ckpt);
    if (tr_create(&t, &cfg, NULL, err)) goto done;
    if (o->resume) {
        if (tr_load_checkpoint(t, ckpt, err)) goto done;
        logf_(o, "resumed %s at %lld images (step %lld, %.2f h trained)", ckpt, t->images_seen,
              t->step, t->seconds / 3600.0);
    } else {
        logf_(o, "new run: %zu parameters, %d images of %dx%dx%d, batch %d (%.0f MB of "
              "activations), %lld images -> %s", t->n_params, t->data->n, t->H, t->H, t->C, t->B,
              (t->cls ? tr_classify_bytes(t->cls) : unet_run_bytes(t->run)) / 1048576.0,
              cfg.duration_images, cfg.out_dir);
    }

    const long long total = cfg.duration_images;
    /* img/s over the last RATE_WINDOW steps: a ring of (time, images) at step ends, seeded with
     * the start, so the rate needs no special case for the first steps. */
    double rate_t[RATE_WINDOW + 1], loss_ring[LOSS_WINDOW];
    long long rate_n[RATE_WINDOW + 1];
    int rate_head = 1, rate_count = 1, n_loss = 0;
    double since_sum = 0.0;     /* loss sum since the last log line */
    long long since_n = 0;
    double last_progress = 0.0, rate = 0.0, loss_mean = t->last_loss;
    long long saved_at = t->images_seen;
    rate_t[0] = pd_now();
    rate_n[0] = t->images_seen;
    opt_adam a = {cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.warmup_images, cfg.grad_clip};

    while (t->images_seen < total) {
        if (o->abort && o->abort(o->user)) {
            if (t->images_seen != saved_at && tr_save_checkpoint(t, ckpt, err)) goto done;
            pd_fail(err, "interrupted at %lld images; checkpoint %s (continue with --resume)",
                    t->images_seen, ckpt);
            goto done;
        }
        long long before = t->images_seen;
        double loss;
        if (tr_step(t, &loss, err)) goto done;
        since_sum += loss;
        since_n++;
        loss_ring[n_loss % LOSS_WINDOW] = loss;
        n_loss++;
        int k = n_loss < LOSS_WINDOW ? n_loss : LOSS_WINDOW;
        loss_mean = 0;
        for (int i = 0; i < k; i++) loss_mean += loss_ring[i];
        loss_mean /= k;
        double now = pd_now();
        rate_t[rate_head] = now;
        rate_n[rate_head] = t->images_seen;
        rate_head = (rate_head + 1) % (RATE_WINDOW + 1);
        if (rate_count < RATE_WINDOW + 1) rate_count++;
        int oldest = (rate_head - rate_count + RATE_WINDOW + 1) % (RATE_WINDOW + 1);
        if (now > rate_t[oldest])
            rate = (double)(t->images_seen - rate_n[oldest]) / (now - rate_t[oldest]);

        if (cfg.checkpoint_images > 0 &&
            before / cfg.checkpoint_images != t->images_seen / cfg.checkpoint_images) {
            if (tr_save_checkpoint(t, ckpt, err)) goto done;
            saved_at = t->images_seen;
            append_log_csv(cfg.out_dir, t, since_sum / since_n, rate, opt_lr(&a, t->images_seen));
            since_sum = 0;
            since_n = 0;
            logf_(o, "checkpoint %s at %lld images", ckpt, t->images_seen);
            if (t->cls && tr_classify_report(t, o, NULL, err)) goto done;
        }
        if (cfg.snapshot_images > 0 &&
            before / cfg.snapshot_images != t->images_seen / cfg.snapshot_images) {
            char snap[1200];
            snprintf(snap, sizeof snap, "%s/snapshot-%09lld.safetensors", cfg.out_dir,
                     t->images_seen);
            if (tr_export(t, snap, err)) goto done;
            logf_(o, "snapshot %s", snap);
        }
        if (o->progress && (now - last_progress >= 1.0 || t->images_seen >= total)) {
            double eta = rate > 0 ? (double)(total - t->images_seen) / rate : 0.0;
            o->progress(o->user, t->images_seen, total, rate, loss_mean, eta);
            last_progress = now;
        }
    }
    if (t->images_seen != saved_at) {
        if (tr_save_checkpoint(t, ckpt, err)) goto done;
        if (since_n) append_log_csv(cfg.out_dir, t, since_sum / since_n, rate,
                                    opt_lr(&a, t->images_seen));
        logf_(o, "checkpoint %s at %lld images", ckpt, t->images_seen);
        if (t->cls && tr_classify_report(t, o, NULL, err)) goto done;
    }
    char model_path[1200];
    if (o->export_path) snprintf(model_path, sizeof model_path, "%s", o->export_path);
    else snprintf(model_path, sizeof model_path, "%s/model.safetensors", cfg.out_dir);
    if (tr_export(t, model_path, err)) goto done;
    logf_(o, "exported the EMA weights (%lld images, %.2f h) to %s", t->images_seen,
          t->seconds / 3600.0, model_path);
    if (t->t_step > 0)
        logf_(o, "this session: %.1f%% of the step time in the U-Net forward/backward",
              100.0 * t->t_fwdbwd / t->t_step);
    if (t->nonfinite)
        logf_(o, "note: %zu non-finite gradient entries were replaced (models.md §1.4 guard)",
              t->nonfinite);
    rc = 0;
done:
    tr_free(t);
    tr_config_free(&cfg);
    return rc;
}

int pd_train_export(const char *checkpoint, const char *out_model, pd_error *err) {
    return tr_export_checkpoint(checkpoint, out_model, err);
}
