/* edm_net.c — an EDM/SiD network snapshot into tensors + pixdiff.config (convert_int.h).
 *
 * NVlabs/edm pickles every network module through torch_utils.persistence: the pickle reader
 * turns each into an object with its class name and attribute dict, whose `_parameters`,
 * `_buffers` and `_modules` give the state dict (torch.nn.Module.state_dict: parameters, then
 * persistent buffers, then submodules, names joined by '.'), and whose `_init_kwargs` record the
 * constructor arguments that were passed. The preconditioner is the top object's class
 * (training/networks.py EDMPrecond, VPPrecond, VEPrecond, iDDPMPrecond), the architecture its
 * `model` submodule's class (SongUNet, DhariwalUNet); each's kwargs are completed with the
 * constructor defaults of training/networks.py, copied into the tables below.
 */
#include "convert/convert_int.h"
#include "schedules/noise.h"
#include "unet/songunet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CV_MAX_MODULE_DEPTH 64
#define CV_MAX_VISITS 1000000

typedef struct walk {
    pd_converted *c;
    const char *src;
    long visits;
    pd_error *err;
} walk;

static int is_name_in(const pk_value *list, const char *name) {
    if (!list || (list->kind != PK_LIST && list->kind != PK_TUPLE)) return 0;
    for (size_t i = 0; i < list->n; i++)
        if (pk_is_str(list->items[i], name)) return 1;
    return 0;
}

/* Adds the (name -> tensor or None) entries of a module's _parameters or _buffers. */
static int add_tensors(walk *w, const pk_value *dict, const char *prefix, const pk_value *skip) {
    if (!dict) return 0;
    if (dict->kind != PK_DICT)
        return pd_fail(w->err, "%s: module '%s' has a malformed parameter dict", w->src, prefix);
    for (size_t i = 0; i + 1 < dict->n; i += 2) {
        const pk_value *k = dict->items[i], *v = dict->items[i + 1];
        if (k->kind != PK_STR) return pd_fail(w->err, "%s: a non-string tensor name", w->src);
        if (v->kind == PK_NONE || is_name_in(skip, k->s)) continue;
        if (v->kind != PK_TENSOR)
            return pd_fail(w->err, "%s: '%s%s' is a %s, not a tensor", w->src, prefix, k->s,
                           pk_kind_name(v->kind));
        char name[512];
        if (snprintf(name, sizeof name, "%s%s", prefix, k->s) >= (int)sizeof name)
            return pd_fail(w->err, "%s: tensor name too long", w->src);
        if (cv_find(w->c, name)) return pd_fail(w->err, "%s: tensor '%s' twice", w->src, name);
        if (cv_add_tensor(w->c, name, v->t, NULL, v->t->ndim, v->t->shape, w->err)) return -1;
    }
    return 0;
}

/* torch.nn.Module.state_dict order: own parameters, own persistent buffers, then submodules. */
static int walk_module(walk *w, const pk_value *obj, const char *prefix, int depth) {
    if (++w->visits > CV_MAX_VISITS || depth > CV_MAX_MODULE_DEPTH)
        return pd_fail(w->err, "%s: module tree deeper than %d or larger than %d modules", w->src,
                       CV_MAX_MODULE_DEPTH, CV_MAX_VISITS);
    if (obj->kind != PK_OBJECT || !obj->state || obj->state->kind != PK_DICT)
        return pd_fail(w->err, "%s: module '%s' is a %s without state", w->src, prefix,
                       pk_kind_name(obj->kind));
    const pk_value *st = obj->state;
    if (add_tensors(w, pk_dict_get(st, "_parameters"), prefix, NULL) ||
        add_tensors(w, pk_dict_get(st, "_buffers"), prefix,
                    pk_dict_get(st, "_non_persistent_buffers_set")))
        return -1;
    const pk_value *mods = pk_dict_get(st, "_modules");
    if (!mods) return 0;
    if (mods->kind != PK_DICT)
        return pd_fail(w->err, "%s: module '%s' has a malformed _modules", w->src, prefix);
    for (size_t i = 0; i + 1 < mods->n; i += 2) {
        const pk_value *k = mods->items[i], *v = mods->items[i + 1];
        if (k->kind != PK_STR) return pd_fail(w->err, "%s: a non-string module name", w->src);
        if (v->kind == PK_NONE) continue;
        char sub[512];
        if (snprintf(sub, sizeof sub, "%s%s.", prefix, k->s) >= (int)sizeof sub)
            return pd_fail(w->err, "%s: module name too long", w->src);
        if (walk_module(w, v, sub, depth + 1)) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ kwargs */

typedef enum { KW_INT, KW_FLOAT, KW_STR, KW_INTS } kw_type;
typedef struct kwarg {
    const char *name;
    kw_type type;
    const char *def;            /* EDM's default, as text ("[1,2,2,2]", "0.1"); NULL: required */
} kwarg;

/* training/networks.py SongUNet.__init__ */
static const kwarg songunet_kw[] = {
    {"img_resolution", KW_INT, NULL}, {"in_channels", KW_INT, NULL},
    {"out_channels", KW_INT, NULL}, {"label_dim", KW_INT, "0"}, {"augment_dim", KW_INT, "0"},
    {"model_channels", KW_INT, "128"}, {"channel_mult", KW_INTS, "1,2,2,2"},
    {"channel_mult_emb", KW_INT, "4"}, {"num_blocks", KW_INT, "4"},
    {"attn_resolutions", KW_INTS, "16"}, {"dropout", KW_FLOAT, "0.10"},
    {"label_dropout", KW_FLOAT, "0"}, {"embedding_type", KW_STR, "positional"},
    {"channel_mult_noise", KW_INT, "1"}, {"encoder_type", KW_STR, "standard"},
    {"decoder_type", KW_STR, "standard"}, {"resample_filter", KW_INTS, "1,1"}, {NULL, 0, NULL}};
/* training/networks.py DhariwalUNet.__init__ */
static const kwarg dhariwal_kw[] = {
    {"img_resolution", KW_INT, NULL}, {"in_channels", KW_INT, NULL},
    {"out_channels", KW_INT, NULL}, {"label_dim", KW_INT, "0"}, {"augment_dim", KW_INT, "0"},
    {"model_channels", KW_INT, "192"}, {"channel_mult", KW_INTS, "1,2,3,4"},
    {"channel_mult_emb", KW_INT, "4"}, {"num_blocks", KW_INT, "3"},
    {"attn_resolutions", KW_INTS, "32,16,8"}, {"dropout", KW_FLOAT, "0.10"},
    {"label_dropout", KW_FLOAT, "0"}, {NULL, 0, NULL}};

/* The preconditioners, their pixdiff names and their own kwargs (the rest go to the model). */
typedef struct precond_def {
    const char *cls, *name, *model_type;
    kwarg kw[5];
} precond_def;
static const precond_def preconds[] = {
    {"EDMPrecond", "edm", "DhariwalUNet",
     {{"sigma_min", KW_FLOAT, "0"}, {"sigma_max", KW_FLOAT, "inf"}, {"sigma_data", KW_FLOAT, "0.5"},
      {NULL, 0, NULL}}},
    {"VPPrecond", "vp", "SongUNet",
     {{"beta_d", KW_FLOAT, "19.9"}, {"beta_min", KW_FLOAT, "0.1"}, {"M", KW_INT, "1000"},
      {"epsilon_t", KW_FLOAT, "1e-5"}, {NULL, 0, NULL}}},
    {"VEPrecond", "ve", "SongUNet",
     {{"sigma_min", KW_FLOAT, "0.02"}, {"sigma_max", KW_FLOAT, "100"}, {NULL, 0, NULL}}},
    {"iDDPMPrecond", "iddpm", "DhariwalUNet",
     {{"C_1", KW_FLOAT, "0.001"}, {"C_2", KW_FLOAT, "0.008"}, {"M", KW_INT, "1000"},
      {NULL, 0, NULL}}},
};
#define N_PRECONDS ((int)(sizeof preconds / sizeof preconds[0]))

/* A kwarg's value: from the pickled kwargs when present, else the default text. */
typedef struct kwval {
    long long i;
    double f;
    char s[32];
    int ints[PD_MAX_LEVELS + 4], n;
} kwval;

static int parse_default(const kwarg *k, kwval *v) {
    memset(v, 0, sizeof *v);
    switch (k->type) {
    case KW_INT: v->i = atoll(k->def); break;
    case KW_FLOAT: v->f = !strcmp(k->def, "inf") ? INFINITY : atof(k->def); break;
    case KW_STR: snprintf(v->s, sizeof v->s, "%s", k->def); break;
    case KW_INTS:
        for (const char *p = k->def; *p && v->n < PD_MAX_LEVELS + 4; p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
            v->ints[v->n++] = atoi(p);
        break;
    }
    return 0;
}

static int kw_get(const char *src, const char *cls, const pk_value *kwargs, const kwarg *k,
                  kwval *v, pd_error *err) {
    const pk_value *x = pk_dict_get(kwargs, k->name);
    if (!x) {
        if (!k->def) return pd_fail(err, "%s: %s was built without '%s'", src, cls, k->name);
        return parse_default(k, v);
    }
    memset(v, 0, sizeof *v);
    switch (k->type) {
    case KW_INT:
        if (x->kind != PK_INT && x->kind != PK_BOOL) break;
        if (x->i < -(1LL << 31) || x->i > (1LL << 31)) break;
        v->i = x->i;
        return 0;
    case KW_FLOAT:
        if (x->kind == PK_FLOAT) v->f = x->f;
        else if (x->kind == PK_INT) v->f = (double)x->i;
        else break;
        return 0;
    case KW_STR:
        if (x->kind != PK_STR || x->n >= sizeof v->s) break;
        strcpy(v->s, x->s);
        return 0;
    case KW_INTS:
        if ((x->kind != PK_LIST && x->kind != PK_TUPLE) || x->n > PD_MAX_LEVELS + 4) break;
        for (size_t i = 0; i < x->n; i++) {
            if (x->items[i]->kind != PK_INT || x->items[i]->i < 0 || x->items[i]->i > 1 << 20)
                return pd_fail(err, "%s: %s argument '%s' is not a list of small ints", src, cls,
                               k->name);
            v->ints[v->n++] = (int)x->items[i]->i;
        }
        return 0;
    }
    return pd_fail(err, "%s: %s argument '%s' has an unexpected type (%s)", src, cls, k->name,
                   pk_kind_name(x->kind));
}

/* Every kwarg the model was built with must be one of EDM's (else it is another class). */
static int check_known(const char *src, const char *cls, const pk_value *kwargs,
                       const kwarg *table, pd_error *err) {
    for (size_t i = 0; i + 1 < kwargs->n; i += 2) {
        const pk_value *k = kwargs->items[i];
        int ok = 0;
        for (const kwarg *t = table; t->name && !ok; t++) ok = pk_is_str(k, t->name);
        if (!ok)
            return pd_fail(err, "%s: %s argument '%s' is not one of EDM's (training/networks.py)",
                           src, cls, k->kind == PK_STR ? k->s : "?");
    }
    return 0;
}

static const pk_value *init_kwargs(const char *src, const pk_value *obj, pd_error *err) {
    const pk_value *kw = pk_dict_get(obj->state, "_init_kwargs");
    const pk_value *args = pk_dict_get(obj->state, "_init_args");
    if (!kw || kw->kind != PK_DICT) {
        pd_fail(err, "%s: %s has no recorded constructor arguments (_init_kwargs)", src, obj->s);
        return NULL;
    }
    if (args && args->kind == PK_TUPLE && args->n) {
        pd_fail(err, "%s: %s was built with positional arguments; only keyword arguments (as "
                "EDM's training code passes them) are understood", src, obj->s);
        return NULL;
    }
    return kw;
}

static int set_str(char *dst, size_t cap, const char *s, const char *src, const char *key,
                   pd_error *err) {
    if (strlen(s) >= cap) return pd_fail(err, "%s: '%s' value '%s' too long", src, key, s);
    strcpy(dst, s);
    return 0;
}

/* Model kwargs into the config; the SongUNet-only keys keep their defaults for DhariwalUNet. */
static int model_config(pd_unet_config *cfg, const char *src, const pk_value *model, int adm,
                        pd_error *err) {
    const kwarg *table = adm ? dhariwal_kw : songunet_kw;
    const pk_value *kw = init_kwargs(src, model, err);
    if (!kw || check_known(src, model->s, kw, table, err)) return -1;
    kwval v;
    for (const kwarg *k = table; k->name; k++) {
        if (kw_get(src, model->s, kw, k, &v, err)) return -1;
        const char *n = k->name;
        if (!strcmp(n, "img_resolution")) cfg->img_resolution = (int)v.i;
        else if (!strcmp(n, "in_channels")) cfg->in_channels = (int)v.i;
        else if (!strcmp(n, "out_channels")) cfg->out_channels = (int)v.i;
        else if (!strcmp(n, "label_dim")) cfg->label_dim = (int)v.i;
        else if (!strcmp(n, "augment_dim")) cfg->augment_dim = (int)v.i;
        else if (!strcmp(n, "model_channels")) cfg->model_channels = (int)v.i;
        else if (!strcmp(n, "channel_mult_emb")) cfg->channel_mult_emb = (int)v.i;
        else if (!strcmp(n, "num_blocks")) cfg->num_blocks = (int)v.i;
        else if (!strcmp(n, "channel_mult_noise")) cfg->channel_mult_noise = (int)v.i;
        else if (!strcmp(n, "dropout")) cfg->dropout = (float)v.f;
        else if (!strcmp(n, "label_dropout")) cfg->label_dropout = (float)v.f;
        else if (!strcmp(n, "embedding_type")) {
            if (set_str(cfg->embedding_type, sizeof cfg->embedding_type, v.s, src, n, err)) return -1;
        } else if (!strcmp(n, "encoder_type")) {
            if (set_str(cfg->encoder_type, sizeof cfg->encoder_type, v.s, src, n, err)) return -1;
        } else if (!strcmp(n, "decoder_type")) {
            if (set_str(cfg->decoder_type, sizeof cfg->decoder_type, v.s, src, n, err)) return -1;
        } else if (!strcmp(n, "channel_mult") || !strcmp(n, "attn_resolutions") ||
                   !strcmp(n, "resample_filter")) {
            int *dst = n[0] == 'c' ? cfg->channel_mult : n[0] == 'a' ? cfg->attn_resolutions
                                                                     : cfg->resample_filter;
            int *cnt = n[0] == 'c' ? &cfg->n_levels : n[0] == 'a' ? &cfg->n_attn
                                                                  : &cfg->n_resample_filter;
            int cap = n[0] == 'r' ? 4 : PD_MAX_LEVELS;
            if (v.n > cap || (n[0] == 'c' && v.n < 1))
                return pd_fail(err, "%s: %s argument '%s' has %d entries (1 to %d are supported)",
                               src, model->s, n, v.n, cap);
            memcpy(dst, v.ints, (size_t)v.n * sizeof *dst);
            *cnt = v.n;
        }
    }
    return 0;
}

int cv_edm_network(pd_converted *c, const pk_value *root, const pd_convert_params *p,
                   pd_error *err) {
    const char *src = c->path;
    const pk_value *net = root;
    if (root->kind == PK_DICT) {
        net = pk_dict_get(root, p->key);
        if (!net) {
            char keys[256] = "";
            for (size_t i = 0; i + 1 < root->n; i += 2)
                if (root->items[i]->kind == PK_STR && strlen(keys) + root->items[i]->n + 3 < sizeof keys)
                    snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s",
                             keys[0] ? ", " : "", root->items[i]->s);
            return pd_fail(err, "%s: the snapshot has no '%s' entry (it has: %s); choose one with "
                           "--key", src, p->key, keys);
        }
    }
    if (net->kind != PK_OBJECT)
        return pd_fail(err, "%s: '%s' is a %s, not a network", src, p->key, pk_kind_name(net->kind));
    const precond_def *pd = NULL;
    for (int i = 0; i < N_PRECONDS; i++)
        if (!strcmp(net->s, preconds[i].cls)) pd = &preconds[i];
    if (!pd)
        return pd_fail(err, "%s: class '%s' is not a network pixdiff converts (EDMPrecond, "
                       "VPPrecond, VEPrecond or iDDPMPrecond of NVlabs/edm)", src, net->s);
    const pk_value *kw = init_kwargs(src, net, err);
    if (!kw) return -1;
    const pk_value *mods = pk_dict_get(net->state, "_modules");
    const pk_value *model = pk_dict_get(mods, "model");
    if (!model || model->kind != PK_OBJECT)
        return pd_fail(err, "%s: %s has no 'model' submodule", src, net->s);
    int adm = !strcmp(model->s, "DhariwalUNet");
    if (!adm && strcmp(model->s, "SongUNet"))
        return pd_fail(err, "%s: class '%s' (the %s's model) is not SongUNet or DhariwalUNet",
                       src, model->s, net->s);
    kwarg mt = {"model_type", KW_STR, pd->model_type};
    kwval v;
    if (kw_get(src, net->s, kw, &mt, &v, err)) return -1;
    if (strcmp(v.s, model->s))
        return pd_fail(err, "%s: %s says model_type '%s' but holds a %s", src, net->s, v.s, model->s);

    pd_unet_config cfg = pd_unet_config_default();
    strcpy(cfg.arch, adm ? "adm" : "songunet");
    strcpy(cfg.precond, pd->name);
    if (model_config(&cfg, src, model, adm, err)) return -1;

    /* The preconditioner's own values, and EDM generate.py's sampling range
     * max(0.002, net.sigma_min) .. min(80, net.sigma_max). */
    double pv[4] = {0};
    for (int i = 0; pd->kw[i].name; i++) {
        if (kw_get(src, net->s, kw, &pd->kw[i], &v, err)) return -1;
        pv[i] = pd->kw[i].type == KW_INT ? (double)v.i : v.f;
    }
    double smin = 0, smax = INFINITY;
    if (!strcmp(pd->name, "edm")) {
        smin = pv[0], smax = pv[1], cfg.sigma_data = pv[2];
    } else if (!strcmp(pd->name, "vp")) {
        cfg.beta_d = pv[0], cfg.beta_min = pv[1], cfg.M = (int)pv[2], cfg.epsilon_t = pv[3];
        smin = noise_vp_sigma(pv[3], pv[0], pv[1]);
        smax = noise_vp_sigma(1, pv[0], pv[1]);
    } else if (!strcmp(pd->name, "ve")) {
        smin = pv[0], smax = pv[1];
    } else {
        cfg.C_1 = pv[0], cfg.C_2 = pv[1], cfg.M = (int)pv[2];
    }

    walk w = {.c = c, .src = src, .err = err};
    if (walk_module(&w, net, "", 0)) return -1;
    if (!strcmp(pd->name, "iddpm")) {
        /* iDDPMPrecond's u buffer: u[M-1] and u[0] are its sigma_min and sigma_max. */
        const cv_tensor *u = cv_find(c, "u");
        long long M = (long long)pv[2];
        float ends[2];
        if (!u || u->ndim != 1 || u->shape[0] != M + 1)
            return pd_fail(err, "%s: iDDPMPrecond without its u buffer of M + 1 = %lld values",
                           src, M + 1);
        float *uu = malloc((size_t)(M + 1) * sizeof *uu);
        if (!uu) return pd_fail(err, "out of memory");
        int rc = cv_tensor_f32(u, uu, err);
        ends[0] = uu[M - 1];
        ends[1] = uu[0];
        free(uu);
        if (rc) return -1;
        smin = ends[0], smax = ends[1];
    }
    cfg.sigma_min = smin > 0.002 ? smin : 0.002;
    cfg.sigma_max = smax < 80 ? smax : 80;
    if (p->generator) {
        strcpy(cfg.kind, "generator");
        cfg.sigma_init = p->sigma_init;
    }
    if (cv_check_resample_filters(c, cfg.resample_filter, cfg.n_resample_filter, err)) return -1;

    char json[16384];
    if (unet_config_to_json(&cfg, json, sizeof json) < 0)
        return pd_fail(err, "%s: config too large", src);
    if (cv_set_meta(c, "format", "pt", err) || cv_set_meta(c, "pixdiff.config", json, err))
        return -1;
    const char *family = adm ? "ADM" : !strcmp(cfg.embedding_type, "positional") &&
                                               !strcmp(cfg.encoder_type, "standard") ? "DDPM++"
                                       : !strcmp(cfg.embedding_type, "fourier") &&
                                               !strcmp(cfg.encoder_type, "residual") ? "NCSN++"
                                       : "custom";
    snprintf(c->summary, sizeof c->summary, "%s + %s (%s), %dx%d, %d channels, %s%s", net->s,
             model->s, family, cfg.img_resolution, cfg.img_resolution, cfg.in_channels,
             cfg.label_dim ? "conditional" : "unconditional",
             p->generator ? ", one-step generator" : "");
    return 0;
}
