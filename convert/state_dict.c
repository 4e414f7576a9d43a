/* state_dict.c — plain state dicts (name -> tensor) into pixdiff files (convert_int.h).
 *
 * Two cases. (1) With --config: the tensors carry EDM's names and the YAML/JSON gives the
 * architecture (pixdiff.config keys, docs/formats.md); the config must be one pixdiff runs, and
 * the tensors must be exactly the network's (names and shapes, as pd_model_create builds it),
 * plus EDM's resample_filter buffers, which must match the config's filter. (2) Without: a torch
 * .pth holding pytorch-fid's FID Inception-v3 weights (pt_inception-2015-12-05-6726825d.pth,
 * recognised by its layer names) is written as float32 tensors under the same names, without
 * BatchNorm's num_batches_tracked counters, with __metadata__ "pixdiff.inception" = "1".
 */
#include "convert/convert_int.h"
#include "unet/songunet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int cv_config_model(pd_converted *c, const pd_convert_params *p, pd_error *err) {
    const char *src = c->path;
    pd_unet_config cfg = pd_unet_config_default();
    if (pd_unet_config_from_yaml(&cfg, p->config, err)) return -1;
    if (p->generator) {
        strcpy(cfg.kind, "generator");
        cfg.sigma_init = p->sigma_init;
    }
    pd_model *m;
    pd_error e2;
    if (pd_model_create(&m, &cfg, 0, &e2))
        return pd_fail(err, "%s: %s", p->config, e2.msg);
    int rc = 0, shape[4], nd;
    const char *name;
    for (int i = 0; (name = pd_model_tensor(m, i, shape, &nd)) && !rc; i++) {
        const cv_tensor *t = cv_find(c, name);
        if (!t) {
            rc = pd_fail(err, "%s: tensor '%s' of the network in %s is missing", src, name,
                         p->config);
            break;
        }
        int same = t->ndim == nd;
        for (int d = 0; d < nd && same; d++) same = t->shape[d] == shape[d];
        if (!same)
            rc = pd_fail(err, "%s: tensor '%s' has another shape than the network in %s needs",
                         src, name, p->config);
    }
    for (int i = 0; i < c->n && !rc; i++) {
        int found = ends_with(c->t[i].name, ".resample_filter");
        for (int k = 0; !found && (name = pd_model_tensor(m, k, shape, &nd)); k++)
            found = !strcmp(name, c->t[i].name);
        if (!found)
            rc = pd_fail(err, "%s: tensor '%s' is not part of the network in %s", src,
                         c->t[i].name, p->config);
    }
    pd_model_free(m);
    if (rc || cv_check_resample_filters(c, cfg.resample_filter, cfg.n_resample_filter, err))
        return -1;
    char json[16384];
    if (unet_config_to_json(&cfg, json, sizeof json) < 0)
        return pd_fail(err, "%s: config too large", p->config);
    snprintf(c->summary, sizeof c->summary, "state dict with the architecture of %s (%s, %s)",
             base_name(p->config), cfg.arch, cfg.precond);
    return cv_set_meta(c, "format", "pt", err) || cv_set_meta(c, "pixdiff.config", json, err);
}

int cv_safetensors_state_dict(pd_converted *c, const pd_convert_params *p, pd_error *err) {
    for (int i = 0; i < c->st.n_tensors; i++) {
        const st_tensor *t = &c->st.tensors[i];
        if (cv_add_tensor(c, t->name, NULL, t->data, t->ndim, t->shape, err)) return -1;
    }
    return cv_config_model(c, p, err);
}

int cv_pickled_state_dict(pd_converted *c, const pk_value *root, const pd_convert_params *p,
                          pd_error *err) {
    const char *src = c->path;
    int inception = pk_dict_get(root, "Conv2d_1a_3x3.conv.weight") &&
                    pk_dict_get(root, "Mixed_7c.branch_pool.conv.weight") &&
                    pk_dict_get(root, "fc.weight");
    if (!p->config && !inception)
        return pd_fail(err, "%s: a state dict of a network pixdiff does not recognise; for EDM's "
                       "tensor names pass its architecture with --config ARCH.yaml", src);
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const pk_value *k = root->items[i], *v = root->items[i + 1];
        if (k->kind != PK_STR) return pd_fail(err, "%s: a state dict key is not a string", src);
        if (cv_find(c, k->s)) return pd_fail(err, "%s: tensor '%s' twice", src, k->s);
        if (inception && ends_with(k->s, ".num_batches_tracked")) continue;
        if (cv_add_tensor(c, k->s, v->t, NULL, v->t->ndim, v->t->shape, err)) return -1;
    }
    if (p->config) return cv_config_model(c, p, err);
    if (p->generator)
        return pd_fail(err, "%s: --generator applies to diffusion networks, not Inception", src);
    snprintf(c->summary, sizeof c->summary, "FID Inception-v3 weights (pytorch-fid), %d tensors",
             c->n);
    return cv_set_meta(c, "format", "pt", err) || cv_set_meta(c, "pixdiff.inception", "1", err) ||
           cv_set_meta(c, "source", base_name(src), err);
}
