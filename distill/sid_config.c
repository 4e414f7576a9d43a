/* sid_config.c — parses and checks the YAML of a SiD distillation run (see sid_config.h).
 *
 * Every key goes through the strict yamldoc getters plus a range check (config_sections.h, shared
 * with the training config), so a typo or an impossible value stops the run before the teacher
 * is even loaded.
 */
#include "distill/sid_config.h"
#include "distill/config_sections.h"
#include "distill/grad_shares.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


sid_config sid_config_default(void) {
    sid_config c;
    memset(&c, 0, sizeof c);
    /* docs/algorithms.md §M1.4–1.6: alpha 1.2, tmax 800, sigma_init 2.5, lsg 100, the EDM log-normal
     * (P_mean -1.2, P_std 1.2) for the psi loss, Adam betas (0, 0.999), eps 1e-8, lr 1e-5 for
     * both networks, EMA half-life 0.5 Mimg with EDM's 5% ramp-up. */
    c.alpha = 1.2;
    c.tmax = 800;
    c.sigma_init = 2.5;
    c.loss_scale_g = 100;
    c.p_mean = -1.2;
    c.p_std = 1.2;
    c.lr_psi = 1e-5;
    c.lr_theta = 1e-5;
    c.beta1_psi = c.beta1_theta = 0.0;
    c.beta2_psi = c.beta2_theta = 0.999;
    c.eps = 1e-8;
    c.ema_halflife_images = 500000;
    c.ema_rampup = 0.05;
    c.batch = 64;
    c.shares = GS_DEFAULT_SHARES;
    c.duration_images = 1000000;
    c.checkpoint_images = 12800;
    c.snapshot_images = 0;
    c.seed = 0;
    c.threads = 0;
    c.fd_images = 0;
    c.fd_n = 1000;
    c.fd_seed = 1000000;
    strcpy(c.out_dir, "runs/sid");
    strcpy(c.source, "<default>");
    return c;
}

void sid_config_free(sid_config *c) {
    if (!c) return;
    free(c->text);
    c->text = NULL;
}

int sid_config_copy(sid_config *dst, const sid_config *src, pd_error *err) {
    *dst = *src;
    dst->text = NULL;
    if (src->text && !(dst->text = strdup(src->text))) return pd_fail(err, "out of memory");
    return 0;
}

int sid_config_parse(sid_config *c, const char *text, const char *source, pd_error *err) {
    *c = sid_config_default();
    snprintf(c->source, sizeof c->source, "%s", source ? source : "<string>");
    yd_doc doc;
    if (yd_load_string(&doc, text, c->source, err)) return -1;
    int rc = -1;
    const yd_node *root = doc.root, *s;
    static const char *const top[] = {"teacher", "sid", "optimizer", "ema", "training", "eval",
                                      "output", NULL};
    static const char *const k_sid[] = {"alpha", "tmax", "sigma_init", "loss_scale_g", "p_mean",
                                        "p_std", NULL};
    static const char *const k_opt[] = {"lr_psi", "lr_theta", "betas", "betas_theta", "eps",
                                        NULL};
    static const char *const k_train[] = {"batch", "duration_images", "checkpoint_images",
                                          "snapshot_images", "seed", "threads", "shares", NULL};
    static const char *const k_eval[] = {"fd_images", "fd_n", "fd_seed", "classifier", NULL};
    if (root && root->kind == YD_SCALAR && root->scalar && !root->scalar[0]) root = NULL;
    if (root && root->kind != YD_MAP) {
        pd_fail(err, "%s:%d: expected a mapping of sections", doc.source, root->line);
        goto done;
    }
    if (root && yd_check_keys(&doc, root, top, NULL, err)) goto done;
    if (root && yd_str(&doc, root, "teacher", c->teacher, sizeof c->teacher, err)) goto done;

    if ((s = yd_get(root, "sid"))) {
        if (yd_check_keys(&doc, s, k_sid, "sid", err) ||
            cs_real(&doc, s, "alpha", &c->alpha, 0, 0, 100, 0, "sid", err) ||
            cs_real(&doc, s, "tmax", &c->tmax, 0, 1, 1000, 0, "sid", err) ||
            cs_real(&doc, s, "sigma_init", &c->sigma_init, 0, 1, 1e4, 0, "sid", err) ||
            cs_real(&doc, s, "loss_scale_g", &c->loss_scale_g, 0, 1, 1e12, 0, "sid", err) ||
            cs_real(&doc, s, "p_mean", &c->p_mean, -20, 0, 20, 0, "sid", err) ||
            cs_real(&doc, s, "p_std", &c->p_std, 0, 1, 20, 0, "sid", err))
            goto done;
    }
    if ((s = yd_get(root, "optimizer"))) {
        if (yd_check_keys(&doc, s, k_opt, "optimizer", err) ||
            cs_real(&doc, s, "lr_psi", &c->lr_psi, 0, 1, 10, 0, "optimizer", err) ||
            cs_real(&doc, s, "lr_theta", &c->lr_theta, 0, 1, 10, 0, "optimizer", err) ||
            cs_real(&doc, s, "eps", &c->eps, 0, 1, 1, 0, "optimizer", err) ||
            cs_betas(&doc, s, "betas", &c->beta1_psi, &c->beta2_psi, err))
            goto done;
        /* `betas` sets both optimizers; `betas_theta` then overrides G's (SiD's --g_beta1). */
        c->beta1_theta = c->beta1_psi;
        c->beta2_theta = c->beta2_psi;
        if (cs_betas(&doc, s, "betas_theta", &c->beta1_theta, &c->beta2_theta, err)) goto done;
    }
    if ((s = yd_get(root, "ema")) && cs_ema(&doc, s, &c->ema_halflife_images, &c->ema_rampup, err))
        goto done;
    if ((s = yd_get(root, "training"))) {
        long long batch = c->batch, seed = 0, threads = c->threads, shares = c->shares;
        if (yd_check_keys(&doc, s, k_train, "training", err) ||
            cs_count(&doc, s, "batch", &batch, 1, 65536, "training", err) ||
            cs_count(&doc, s, "duration_images", &c->duration_images, 1, (long long)4e18,
                     "training", err) ||
            cs_count(&doc, s, "checkpoint_images", &c->checkpoint_images, 0, (long long)4e18,
                     "training", err) ||
            cs_count(&doc, s, "snapshot_images", &c->snapshot_images, 0, (long long)4e18,
                     "training", err) ||
            cs_count(&doc, s, "seed", &seed, 0, (long long)4e18, "training", err) ||
            cs_count(&doc, s, "threads", &threads, 0, 4096, "training", err) ||
            cs_count(&doc, s, "shares", &shares, 1, GS_MAX_SHARES, "training", err))
            goto done;
        c->batch = (int)batch;
        c->shares = (int)shares;
        c->seed = (uint64_t)seed;
        c->threads = (int)threads;
    }
    if ((s = yd_get(root, "eval"))) {
        long long n = c->fd_n, seed = (long long)c->fd_seed;
        if (yd_check_keys(&doc, s, k_eval, "eval", err) ||
            cs_count(&doc, s, "fd_images", &c->fd_images, 0, (long long)4e18, "eval", err) ||
            cs_count(&doc, s, "fd_n", &n, 2, 1000000, "eval", err) ||
            cs_count(&doc, s, "fd_seed", &seed, 0, (long long)4e18, "eval", err) ||
            yd_str(&doc, s, "classifier", c->classifier, sizeof c->classifier, err))
            goto done;
        c->fd_n = (int)n;
        c->fd_seed = (uint64_t)seed;
    }
    if ((s = yd_get(root, "output")) && cs_output(&doc, s, c->out_dir, sizeof c->out_dir, err))
        goto done;
    /* Input files resolve against the config's folder, the current directory, then pixdiff's data
     * directory (pd_resolve_input), so the shipped configs work from any directory. */
    char resolved[sizeof c->teacher > sizeof c->classifier ? sizeof c->teacher : sizeof c->classifier];
    if (c->teacher[0]) {
        if (pd_resolve_input(resolved, sizeof c->teacher, c->teacher, source, err)) goto done;
        memcpy(c->teacher, resolved, strlen(resolved) + 1);
    }
    if (c->classifier[0]) {
        if (pd_resolve_input(resolved, sizeof c->classifier, c->classifier, source, err)) goto done;
        memcpy(c->classifier, resolved, strlen(resolved) + 1);
    }
    if (!(c->text = strdup(text))) {
        pd_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    yd_free(&doc);
    return rc;
}

int sid_config_load(sid_config *c, const char *path, pd_error *err) {
    *c = sid_config_default();
    char *text;
    if (yd_read_text(path, &text, err)) return -1;
    int rc = sid_config_parse(c, text, path, err);
    free(text);
    return rc;
}

int sid_config_compatible(const sid_config *old, const sid_config *cur, const char *ckpt,
                          pd_error *err) {
    const char *key = NULL;
    if (old->batch != cur->batch) key = "training.batch";
    else if (gs_shares(old->batch, old->shares) != gs_shares(cur->batch, cur->shares))
        key = "training.shares";
    else if (old->seed != cur->seed) key = "training.seed";
    else if (old->sigma_init != cur->sigma_init) key = "sid.sigma_init";
    if (key)
        return pd_fail(err, "%s: the checkpoint was made with a different %s than %s gives; "
                       "resume with the same config or start a new output directory", ckpt, key,
                       cur->source);
    return 0;
}
