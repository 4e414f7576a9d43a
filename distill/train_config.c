/* train_config.c — parses and checks the YAML of a training run (see train_config.h).
 *
 * The model section goes through the U-Net's own config reader (unet_config_from_node), after an
 * optional `preset` key picks the starting point, so a training config accepts exactly the keys
 * a model file's pixdiff.config holds. Everything else is read with the strict yamldoc getters;
 * the readers SiD's config shares (ranges, betas, ema, output) live in config_sections.c.
 */
#include "distill/train_config.h"
#include "distill/config_sections.h"
#include "distill/grad_shares.h"
#include "distill/dataset.h"
#include "unet/songunet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


tr_config tr_config_default(void) {
    tr_config c;
    memset(&c, 0, sizeof c);
    c.model = pd_unet_config_default();
    strcpy(c.data_kind, "fashion-mnist");
    c.flip = 0;
    /* EDM train.py: lr 1e-3, Adam betas (0.9, 0.999), eps 1e-8, ema 0.5 Mimg, ema_rampup 0.05,
     * P_mean -1.2, P_std 1.2. Label dropout 0.1 keeps an unconditional model inside a
     * conditional one (classifier-free guidance practice). */
    c.lr = 1e-3;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.grad_clip = 0;
    c.warmup_images = 0;
    c.ema_halflife_images = 500000;
    c.ema_rampup = 0.05;
    c.p_mean = -1.2;
    c.p_std = 1.2;
    c.sigma_data = NAN;           /* NAN = take the model's sigma_data */
    c.label_dropout = 0.1;
    c.batch = 64;
    c.shares = GS_DEFAULT_SHARES;
    c.duration_images = 1000000;
    c.checkpoint_images = 50000;
    c.snapshot_images = 0;
    c.seed = 0;
    c.threads = 0;
    strcpy(c.out_dir, "runs/train");
    strcpy(c.source, "<default>");
    return c;
}

void tr_config_free(tr_config *c) {
    if (!c) return;
    free(c->text);
    c->text = NULL;
}

int tr_config_copy(tr_config *dst, const tr_config *src, pd_error *err) {
    *dst = *src;
    dst->text = NULL;
    if (src->text) {
        dst->text = strdup(src->text);
        if (!dst->text) return pd_fail(err, "out of memory");
    }
    return 0;
}

/* The model section: optional `preset`, then the pd_unet_config keys on top of it. */
static int parse_model(tr_config *c, const yd_doc *d, const yd_node *m, pd_error *err) {
    if (m->kind != YD_MAP)
        return pd_fail(err, "%s:%d: model: expected a mapping of keys", d->source, m->line);
    if (unet_config_from_preset_map(&c->model, d, m, "model.", err)) return -1;
    if (unet_config_validate(&c->model, err)) {
        char inner[sizeof err->msg];
        snprintf(inner, sizeof inner, "%s", err->msg);
        return pd_fail(err, "%s:%d: model: %s", d->source, m->line, inner);
    }
    return 0;
}

static const yd_node *section(const yd_node *root, const char *name) {
    return root ? yd_get(root, name) : NULL;
}

int tr_config_parse(tr_config *c, const char *text, const char *source, pd_error *err) {
    *c = tr_config_default();
    snprintf(c->source, sizeof c->source, "%s", source ? source : "<string>");
    yd_doc doc;
    if (yd_load_string(&doc, text, c->source, err)) return -1;
    int rc = -1;
    const yd_node *root = doc.root;
    static const char *const top[] = {"model", "data", "optimizer", "ema", "loss", "training",
                                      "output", NULL};
    static const char *const k_data[] = {"kind", "path", "flip", NULL};
    static const char *const k_opt[] = {"lr", "betas", "eps", "warmup_images", "grad_clip", NULL};
    static const char *const k_loss[] = {"p_mean", "p_std", "sigma_data", "label_dropout", NULL};
    static const char *const k_train[] = {"batch", "duration_images", "checkpoint_images",
                                          "snapshot_images", "seed", "threads", "shares", NULL};
    if (root && root->kind == YD_SCALAR && root->scalar && !root->scalar[0]) root = NULL;
    if (root && yd_check_keys(&doc, root, top, NULL, err)) goto done;

    const yd_node *s;
    if ((s = section(root, "model")) && parse_model(c, &doc, s, err)) goto done;

    if ((s = section(root, "data"))) {
        if (yd_check_keys(&doc, s, k_data, "data", err) ||
            yd_str(&doc, s, "kind", c->data_kind, sizeof c->data_kind, err) ||
            yd_str(&doc, s, "path", c->data_path, sizeof c->data_path, err) ||
            yd_bool(&doc, s, "flip", &c->flip, err))
            goto done;
        if (strcmp(c->data_kind, "fashion-mnist") && strcmp(c->data_kind, "png-folder")) {
            const yd_node *v = yd_get(s, "kind");
            pd_fail(err, "%s:%d: data.kind: '%s' is not one of fashion-mnist, png-folder",
                    doc.source, v ? v->line : s->line, c->data_kind);
            goto done;
        }
    }
    if (!strcmp(c->data_kind, "png-folder") && !c->data_path[0]) {
        const yd_node *d = section(root, "data");
        pd_fail(err, "%s:%d: data.path: required for kind png-folder (the folder of PNGs)",
                doc.source, d ? d->line : 1);
        goto done;
    }
    if ((s = section(root, "optimizer"))) {
        if (yd_check_keys(&doc, s, k_opt, "optimizer", err) ||
            cs_real(&doc, s, "lr", &c->lr, 0, 1, 10, 0, "optimizer", err) ||
            cs_real(&doc, s, "eps", &c->eps, 0, 1, 1, 0, "optimizer", err) ||
            cs_real(&doc, s, "grad_clip", &c->grad_clip, 0, 0, 1e30, 0, "optimizer", err) ||
            cs_count(&doc, s, "warmup_images", &c->warmup_images, 0, CS_NO_MAX, "optimizer",
                     err) ||
            cs_betas(&doc, s, "betas", &c->beta1, &c->beta2, err))
            goto done;
    }
    if ((s = section(root, "ema")) && cs_ema(&doc, s, &c->ema_halflife_images, &c->ema_rampup, err))
        goto done;
    if ((s = section(root, "loss"))) {
        if (yd_check_keys(&doc, s, k_loss, "loss", err) ||
            cs_real(&doc, s, "p_mean", &c->p_mean, -20, 0, 20, 0, "loss", err) ||
            cs_real(&doc, s, "p_std", &c->p_std, 0, 1, 20, 0, "loss", err) ||
            cs_real(&doc, s, "sigma_data", &c->sigma_data, 0, 1, 1e6, 0, "loss", err) ||
            cs_real(&doc, s, "label_dropout", &c->label_dropout, 0, 0, 1, 0, "loss", err))
            goto done;
    }
    if ((s = section(root, "training"))) {
        long long batch = c->batch, seed = 0, threads = c->threads, shares = c->shares;
        if (yd_check_keys(&doc, s, k_train, "training", err) ||
            cs_count(&doc, s, "batch", &batch, 1, CS_NO_MAX, "training", err) ||
            cs_count(&doc, s, "duration_images", &c->duration_images, 1, CS_NO_MAX, "training",
                     err) ||
            cs_count(&doc, s, "checkpoint_images", &c->checkpoint_images, 0, CS_NO_MAX,
                     "training", err) ||
            cs_count(&doc, s, "snapshot_images", &c->snapshot_images, 0, CS_NO_MAX, "training",
                     err) ||
            cs_count(&doc, s, "seed", &seed, 0, CS_NO_MAX, "training", err) ||
            cs_count(&doc, s, "threads", &threads, 0, CS_NO_MAX, "training", err) ||
            cs_count(&doc, s, "shares", &shares, 1, GS_MAX_SHARES, "training", err))
            goto done;
        if (batch > 65536 || threads > 4096) {
            pd_fail(err, "%s:%d: training: batch (%lld) or threads (%lld) is unreasonably large",
                    doc.source, s->line, batch, threads);
            goto done;
        }
        c->batch = (int)batch;
        c->shares = (int)shares;
        c->seed = (uint64_t)seed;
        c->threads = (int)threads;
    }
    if ((s = section(root, "output")) && cs_output(&doc, s, c->out_dir, sizeof c->out_dir, err))
        goto done;

    if (isnan(c->sigma_data)) c->sigma_data = c->model.sigma_data;
    /* The objective follows from the model: EDM loss for a denoiser, cross-entropy for a
     * classifier (objective_classify.h). */
    if (strcmp(c->model.kind, "denoiser") && strcmp(c->model.kind, "classifier")) {
        pd_fail(err, "%s: model.kind '%s': pixdiff train trains denoisers (EDM loss) and "
                "classifiers (cross-entropy) only", doc.source, c->model.kind);
        goto done;
    }
    /* Fashion-MNIST's class names travel in the model so `--class sneaker` works. */
    if (!strcmp(c->data_kind, "fashion-mnist") && c->model.label_dim == 10 &&
        !c->model.class_names[0][0])
        for (int i = 0; i < 10; i++)
            snprintf(c->model.class_names[i], sizeof c->model.class_names[i], "%s",
                     ds_fashion_class_names[i]);
    c->text = strdup(text);
    if (!c->text) {
        pd_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    yd_free(&doc);
    return rc;
}

int tr_config_load(tr_config *c, const char *path, pd_error *err) {
    *c = tr_config_default();
    char *text;
    if (yd_read_text(path, &text, err)) return -1;
    int rc = tr_config_parse(c, text, path, err);
    free(text);
    return rc;
}

int tr_config_compatible(const tr_config *old, const tr_config *cur, const char *ckpt,
                         pd_error *err) {
    char a[4096], b[4096];
    if (unet_config_to_json(&old->model, a, sizeof a) < 0 ||
        unet_config_to_json(&cur->model, b, sizeof b) < 0)
        return pd_fail(err, "%s: model config too large to compare", ckpt);
    const char *key = NULL;
    if (strcmp(a, b)) key = "model";
    else if (strcmp(old->data_kind, cur->data_kind)) key = "data.kind";
    else if (strcmp(old->data_path, cur->data_path)) key = "data.path";
    else if (old->flip != cur->flip) key = "data.flip";
    else if (old->batch != cur->batch) key = "training.batch";
    else if (gs_shares(old->batch, old->shares) != gs_shares(cur->batch, cur->shares))
        key = "training.shares";
    else if (old->seed != cur->seed) key = "training.seed";
    if (key)
        return pd_fail(err, "%s: the checkpoint was made with a different %s than %s gives; resume "
                       "with the checkpoint's config (pixdiff train --resume --checkpoint %s) or "
                       "start a new output.dir", ckpt, key, cur->source, ckpt);
    return 0;
}
