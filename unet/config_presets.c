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

static const char *const preset_names[] = {
    "tiny", "fashion32", "ref64", "cifar10", "edm-cifar10-ddpmpp", "edm-cifar10-ncsnpp",
    "edm-ffhq64-ddpmpp", "edm-ffhq64-ncsnpp", "edm-imagenet64-adm", "tiny-ncsnpp", "tiny-adm",
    NULL};

const char *pd_unet_preset_name(int i) {
    return i >= 0 && i < (int)(sizeof preset_names / sizeof preset_names[0]) ? preset_names[i]
                                                                             : NULL;
}

static void set_levels(pd_unet_config *c, const int *mult, int n) {
    memset(c->channel_mult, 0, sizeof c->channel_mult);
    for (int i = 0; i < n; i++) c->channel_mult[i] = mult[i];
    c->n_levels = n;
}

static void set_attn(pd_unet_config *c, int res) {
    memset(c->attn_resolutions, 0, sizeof c->attn_resolutions);
    c->attn_resolutions[0] = res;
    c->n_attn = 1;
}

/* EDM train.py --arch=ncsnpp: Fourier embedding, residual encoder, [1,3,3,1] resampling. */
static void set_ncsnpp(pd_unet_config *c) {
    snprintf(c->embedding_type, sizeof c->embedding_type, "fourier");
    snprintf(c->encoder_type, sizeof c->encoder_type, "residual");
    c->channel_mult_noise = 2;
    c->n_resample_filter = 4;
    c->resample_filter[0] = c->resample_filter[3] = 1;
    c->resample_filter[1] = c->resample_filter[2] = 3;
}

/* EDM's released networks (train.py and its README's commands). */
static int edm_preset(pd_unet_config *c, const char *name) {
    static const int m222[] = {2, 2, 2}, m1222[] = {1, 2, 2, 2}, m1234[] = {1, 2, 3, 4};
    int cifar = !strncmp(name, "edm-cifar10-", 12), ffhq = !strncmp(name, "edm-ffhq64-", 11);
    if (cifar || ffhq) {
        /* CIFAR-10 32x32: --cres 2,2,2 (default), dropout 0.13, augment 0.12; FFHQ 64x64:
         * --cres=1,2,2,2 --dropout=0.05 --augment=0.15. Augmentation gives augment_dim 9. */
        const char *fam = name + (cifar ? 12 : 11);
        if (strcmp(fam, "ddpmpp") && strcmp(fam, "ncsnpp")) return -1;
        c->img_resolution = cifar ? 32 : 64;
        set_levels(c, cifar ? m222 : m1222, cifar ? 3 : 4);
        c->dropout = cifar ? 0.13f : 0.05f;
        c->augment_dim = 9;
        if (!strcmp(fam, "ncsnpp")) set_ncsnpp(c);
        return 0;
    }
    if (!strcmp(name, "edm-imagenet64-adm")) {
        /* --arch=adm --cond=1: DhariwalUNet defaults, 1000 classes, no augmentation. */
        snprintf(c->arch, sizeof c->arch, "adm");
        c->img_resolution = 64;
        c->label_dim = 1000;
        c->model_channels = 192;
        set_levels(c, m1234, 4);
        c->num_blocks = 3;
        memset(c->attn_resolutions, 0, sizeof c->attn_resolutions);
        c->attn_resolutions[0] = 32;
        c->attn_resolutions[1] = 16;
        c->attn_resolutions[2] = 8;
        c->n_attn = 3;
        c->dropout = 0.1f;
        return 0;
    }
    return -1;
}

int pd_unet_config_preset(pd_unet_config *cfg, const char *name, pd_error *err) {
    pd_unet_config c = pd_unet_config_default();
    if (!name) name = "";
    if (!strcmp(name, "tiny")) {
        /* The test model: 16x16 gray, two levels, attention at 8x8; milliseconds per image. */
        static const int mult[] = {1, 2};
        c.model_channels = 16;
        set_levels(&c, mult, 2);
        c.num_blocks = 1;
        set_attn(&c, 8);
        c.img_resolution = 16;
        c.in_channels = c.out_channels = 1;
        c.label_dim = 0;
        c.augment_dim = 0;
        c.dropout = 0;
    } else if (!strcmp(name, "fashion32")) {
        /* The shipped default model's architecture: class-conditional Fashion-MNIST at 32x32. */
        static const int mult[] = {1, 2, 2};
        static const char *const names[10] = {"t-shirt", "trouser",   "pullover", "dress",
                                              "coat",    "sandal",    "shirt",    "sneaker",
                                              "bag",     "ankle-boot"};
        c.model_channels = 32;
        set_levels(&c, mult, 3);
        c.num_blocks = 2;
        set_attn(&c, 8);
        c.img_resolution = 32;
        c.in_channels = c.out_channels = 1;
        c.label_dim = 10;
        c.augment_dim = 0;
        c.dropout = 0.1f;
        memset(c.class_names, 0, sizeof c.class_names);
        for (int i = 0; i < 10; i++)
            snprintf(c.class_names[i], sizeof c.class_names[i], "%s", names[i]);
    } else if (!strcmp(name, "ref64")) {
        /* The 3.33 GFLOP reference net (PyTorch 1.13 CPU timings in the issue). */
        static const int mult[] = {1, 2, 2};
        c.model_channels = 64;
        set_levels(&c, mult, 3);
        c.num_blocks = 2;
        set_attn(&c, 8);
        c.img_resolution = 32;
        c.in_channels = c.out_channels = 1;
        c.label_dim = 0;
        c.augment_dim = 0;
        c.dropout = 0;
    } else if (!strcmp(name, "cifar10")) {
        /* EDM DDPM++ CIFAR-10 (train.py --arch=ddpmpp): the defaults plus EDM's augment labels. */
        static const int mult[] = {2, 2, 2};
        c.model_channels = 128;
        set_levels(&c, mult, 3);
        c.num_blocks = 4;
        set_attn(&c, 16);
        c.img_resolution = 32;
        c.in_channels = c.out_channels = 3;
        c.augment_dim = 9;
        c.dropout = 0.13f;
    } else if (!strcmp(name, "tiny-ncsnpp") || !strcmp(name, "tiny-adm")) {
        /* Test-sized NCSN++ (16x16 gray, as tiny) and ADM (widths 16 and 64: one head at 8x8). */
        static const int m12[] = {1, 2}, m14[] = {1, 4};
        int adm = !strcmp(name, "tiny-adm");
        c.model_channels = 16;
        set_levels(&c, adm ? m14 : m12, 2);
        c.num_blocks = 1;
        set_attn(&c, 8);
        c.img_resolution = 16;
        c.in_channels = c.out_channels = 1;
        c.augment_dim = 0;
        c.dropout = 0;
        if (adm) snprintf(c.arch, sizeof c.arch, "adm");
        else set_ncsnpp(&c);
    } else if (edm_preset(&c, name)) {
        char list[512] = "";
        for (int i = 0; preset_names[i]; i++) {
            strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
            strncat(list, preset_names[i], sizeof list - strlen(list) - 1);
        }
        return pd_fail(err, "unknown preset '%s' (choose from: %s)", name, list);
    }
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
