/* config_presets.c — named architectures and YAML architecture files for `pixdiff init`.
 *
 * A preset starts from EDM's SongUNet defaults (pd_unet_config_default) and changes only what
 * differs. "ref64" is the 3.33 GFLOP net of the speed reference (PyTorch comparison in
 * docs/benchmarks.md); "cifar10" is EDM's DDPM++ CIFAR-10 net exactly, augment_dim 9 included, so
 * its parameter count is the published 55,733,891 (docs/algorithms.md §M4.8). The edm-* presets are the
 * released EDM networks (Karras et al. 2022, train.py --arch ddpmpp|ncsnpp|adm with the README's
 * per-dataset options), unconditional except ImageNet; their parameter counts are those of EDM's
 * own constructors (docs/architectures.md). tiny-ncsnpp and tiny-adm are test-sized versions of
 * the two new architectures (ADM's attention needs 64 channels per head). A YAML file uses the keys of
 * the pixdiff.config metadata and is parsed by the model loader's own key parser
 * (unet_config_from_node), so a key means the same thing in both places; an optional
 * `preset: NAME` key starts from that preset, as in a training config's model section.
 */
#include "unet/songunet.h"
#include "core/yamldoc.h"

#include <stdio.h>
#include <string.h>

/* One row per preset, every architecture field spelled out (the rest stay EDM's defaults). */
typedef struct preset {
    const char *name;
    enum { P_DDPMPP, P_NCSNPP, P_ADM } arch;
    int res, channels, label_dim, augment_dim, model_channels, num_blocks;
    int n_levels, mult[4];   /* channel_mult */
    int n_attn, attn[3];     /* attn_resolutions */
    float dropout;
} preset;

static const preset presets[] = {
    /* The test model: 16x16 gray, two levels, attention at 8x8; milliseconds per image. */
    {"tiny", P_DDPMPP, 16, 1, 0, 0, 16, 1, 2, {1, 2}, 1, {8}, 0},
    /* The shipped default model's architecture: class-conditional Fashion-MNIST at 32x32. */
    {"fashion32", P_DDPMPP, 32, 1, 10, 0, 32, 2, 3, {1, 2, 2}, 1, {8}, 0.1f},
    /* The 3.33 GFLOP reference net (PyTorch 1.13 CPU timings in the issue). */
    {"ref64", P_DDPMPP, 32, 1, 0, 0, 64, 2, 3, {1, 2, 2}, 1, {8}, 0},
    /* EDM DDPM++ CIFAR-10 (train.py --arch=ddpmpp): the defaults plus EDM's augment labels. */
    {"cifar10", P_DDPMPP, 32, 3, 0, 9, 128, 4, 3, {2, 2, 2}, 1, {16}, 0.13f},
    /* EDM's released networks (train.py and its README's commands). CIFAR-10 32x32: --cres
     * 2,2,2 (default), dropout 0.13, augment 0.12; FFHQ 64x64: --cres=1,2,2,2 --dropout=0.05
     * --augment=0.15; augmentation gives augment_dim 9. ImageNet: --arch=adm --cond=1, the
     * DhariwalUNet defaults, 1000 classes, no augmentation. */
    {"edm-cifar10-ddpmpp", P_DDPMPP, 32, 3, 0, 9, 128, 4, 3, {2, 2, 2}, 1, {16}, 0.13f},
    {"edm-cifar10-ncsnpp", P_NCSNPP, 32, 3, 0, 9, 128, 4, 3, {2, 2, 2}, 1, {16}, 0.13f},
    {"edm-ffhq64-ddpmpp", P_DDPMPP, 64, 3, 0, 9, 128, 4, 4, {1, 2, 2, 2}, 1, {16}, 0.05f},
    {"edm-ffhq64-ncsnpp", P_NCSNPP, 64, 3, 0, 9, 128, 4, 4, {1, 2, 2, 2}, 1, {16}, 0.05f},
    {"edm-imagenet64-adm", P_ADM, 64, 3, 1000, 0, 192, 3, 4, {1, 2, 3, 4}, 3, {32, 16, 8}, 0.1f},
    /* Test-sized NCSN++ (16x16 gray, as tiny) and ADM (widths 16 and 64: one head at 8x8). */
    {"tiny-ncsnpp", P_NCSNPP, 16, 1, 0, 0, 16, 1, 2, {1, 2}, 1, {8}, 0},
    {"tiny-adm", P_ADM, 16, 1, 0, 0, 16, 1, 2, {1, 4}, 1, {8}, 0},
};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

static const char *const fashion_classes[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                                "sandal",  "shirt",   "sneaker",  "bag",   "ankle-boot"};

const char *pd_unet_preset_name(int i) { return i >= 0 && i < N_PRESETS ? presets[i].name : NULL; }

/* EDM train.py --arch=ncsnpp: Fourier embedding, residual encoder, [1,3,3,1] resampling. */
static void set_ncsnpp(pd_unet_config *c) {
    snprintf(c->embedding_type, sizeof c->embedding_type, "fourier");
    snprintf(c->encoder_type, sizeof c->encoder_type, "residual");
    c->channel_mult_noise = 2;
    c->n_resample_filter = 4;
    c->resample_filter[0] = c->resample_filter[3] = 1;
    c->resample_filter[1] = c->resample_filter[2] = 3;
}

int pd_unet_config_preset(pd_unet_config *cfg, const char *name, pd_error *err) {
    const preset *p = NULL;
    for (int i = 0; i < N_PRESETS && !p; i++)
        if (name && !strcmp(name, presets[i].name)) p = &presets[i];
    if (!p) {
        char list[512] = "";
        for (int i = 0; i < N_PRESETS; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, presets[i].name, sizeof list - strlen(list) - 1);
        }
        return pd_fail(err, "unknown preset '%s' (choose from: %s)", name ? name : "", list);
    }
    pd_unet_config c = pd_unet_config_default();
    if (p->arch == P_ADM) snprintf(c.arch, sizeof c.arch, "adm");
    if (p->arch == P_NCSNPP) set_ncsnpp(&c);
    c.img_resolution = p->res;
    c.in_channels = c.out_channels = p->channels;
    c.label_dim = p->label_dim;
    c.augment_dim = p->augment_dim;
    c.model_channels = p->model_channels;
    c.num_blocks = p->num_blocks;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    memcpy(c.channel_mult, p->mult, sizeof p->mult);
    c.n_levels = p->n_levels;
    memset(c.attn_resolutions, 0, sizeof c.attn_resolutions);
    memcpy(c.attn_resolutions, p->attn, sizeof p->attn);
    c.n_attn = p->n_attn;
    c.dropout = p->dropout;
    if (!strcmp(p->name, "fashion32"))
        for (int i = 0; i < 10; i++)
            snprintf(c.class_names[i], sizeof c.class_names[i], "%s", fashion_classes[i]);
    *cfg = c;
    return 0;
}

/* The optional `preset: NAME` of map m as the base of *c, then m's other keys on top: the keys go
 * through a shallow copy of m without `preset`, so the strict key check of unet_config_from_node
 * sees only config keys. */
int unet_config_from_preset_map(pd_unet_config *c, const yd_doc *doc, const yd_node *m,
                                const char *key_prefix, pd_error *err) {
    char preset[64] = "";
    if (yd_str(doc, m, "preset", preset, sizeof preset, err)) return -1;
    if (preset[0] && pd_unet_config_preset(c, preset, err)) {
        char inner[sizeof err->msg];
        snprintf(inner, sizeof inner, "%s", err->msg);
        const yd_node *v = yd_get(m, "preset");
        return pd_fail(err, "%s:%d: %spreset: %s", doc->source, v ? v->line : m->line, key_prefix,
                       inner);
    }
    int cap = m->n > 0 ? m->n : 1;
    yd_node rest = *m;
    yd_node *items[cap];
    char *keys[cap];
    int lines[cap];
    rest.n = 0;
    for (int i = 0; i < m->n; i++) {
        if (!strcmp(m->keys[i], "preset")) continue;
        items[rest.n] = m->items[i];
        keys[rest.n] = m->keys[i];
        lines[rest.n] = m->key_lines ? m->key_lines[i] : m->line;
        rest.n++;
    }
    rest.items = items;
    rest.keys = keys;
    rest.key_lines = lines;
    return unet_config_from_node(c, doc, &rest, err);
}

int pd_unet_config_from_yaml(pd_unet_config *cfg, const char *path, pd_error *err) {
    yd_doc doc;
    if (yd_load_file(&doc, path, err)) return -1;
    const yd_node *m = doc.root;
    pd_unet_config c = *cfg;
    int rc = 0;
    if (!m || m->kind != YD_MAP) {
        rc = pd_fail(err, "%s: expected a mapping of architecture keys", path);
    } else if (unet_config_from_preset_map(&c, &doc, m, "", err)) {
        /* An optional `preset: NAME` (as in a training config's model section) is the base. */
        rc = -1;
    } else {
        /* Messages from the validator name the key; add the file so the line stands alone. */
        pd_error verr;
        if (unet_config_validate(&c, &verr)) rc = pd_fail(err, "%s: %s", path, verr.msg);
    }
    yd_free(&doc);
    if (rc == 0) *cfg = c;
    return rc;
}
