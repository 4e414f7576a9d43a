/* unet_config.c — the U-Net config: EDM's defaults, validation, and its JSON form.
 *
 * The config holds EDM's SongUNet/EDMPrecond constructor arguments plus pixdiff's keys (kind,
 * sigma_init, class_names), DESIGN.md "File formats". It travels inside model files as
 * __metadata__["pixdiff.config"], a one-line JSON object written here and read back with the
 * strict JSON reader (core/json.c). Validation (the validate entries of unet/net_ops.h) rejects what
 * this runtime does not implement (EDM's unused skip encoder/decoder, other resample filters) with
 * a message naming the key, instead of running a different network than the one that was trained.
 */
#include "core/jsonbuf.h"
#include "unet/layers.h"
#include "unet/songunet.h"
#include "unet/unet_arch.h"
#include "unet/net_ops.h"
#include "core/yamldoc.h"
#include "schedules/noise.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

/* EDM DDPM++ CIFAR-10 (train.py --arch=ddpmpp, docs/algorithms.md §M4.5), unconditional. augment_dim is
 * 0 because pixdiff never trains with EDM's augmentation pipe (the layer would stay unused). */
pd_unet_config pd_unet_config_default(void) {
    pd_unet_config c;
    memset(&c, 0, sizeof c);
    strcpy(c.arch, "songunet");
    strcpy(c.precond, "edm");
    c.img_resolution = 32;
    c.in_channels = c.out_channels = 3;
    c.label_dim = 0;
    c.augment_dim = 0;
    c.model_channels = 128;
    c.n_levels = 3;
    c.channel_mult[0] = c.channel_mult[1] = c.channel_mult[2] = 2;
    c.channel_mult_emb = 4;
    c.num_blocks = 4;
    c.n_attn = 1;
    c.attn_resolutions[0] = 16;
    c.dropout = 0.13f;
    c.channel_mult_noise = 1;
    strcpy(c.embedding_type, "positional");
    strcpy(c.encoder_type, "standard");
    strcpy(c.decoder_type, "standard");
    c.n_resample_filter = 2;
    c.resample_filter[0] = c.resample_filter[1] = 1;
    c.sigma_data = 0.5;
    c.sigma_min = 0.002;
    c.sigma_max = 80;
    strcpy(c.kind, "denoiser");
    c.sigma_init = 2.5;
    c.label_dropout = -1; /* not recorded (pixdiff.h); pixdiff train records its loss.label_dropout */
    /* VPPrecond / iDDPMPrecond defaults (EDM training/networks.py). */
    c.beta_d = NOISE_VP_BETA_D;
    c.beta_min = NOISE_VP_BETA_MIN;
    c.M = 1000;
    c.epsilon_t = 1e-5;
    c.C_1 = 0.001;
    c.C_2 = 0.008;
    return c;
}

/* Architecture-independent part of the U-Net checks; every message names the key. */
int unet_validate_common(const pd_unet_config *c, const net_ids *ids, pd_error *err) {
    if (ids->kind == KIND_CLASSIFIER)
        return pd_fail(err, "config key 'kind': 'classifier' needs arch 'classifier' (a U-Net "
                       "is a denoiser or a generator)");
    if (c->in_channels < 1 || c->in_channels > 64)
        return pd_fail(err, "config key 'in_channels': %d is out of range 1..64", c->in_channels);
    if (c->out_channels < 1 || c->out_channels > 128)
        return pd_fail(err, "config key 'out_channels': %d is out of range 1..128", c->out_channels);
    if (c->label_dim < 0 || c->label_dim > 100000)
        return pd_fail(err, "config key 'label_dim': %d is out of range 0..100000", c->label_dim);
    if (c->augment_dim < 0 || c->augment_dim > 1000)
        return pd_fail(err, "config key 'augment_dim': %d is out of range 0..1000", c->augment_dim);
    if (c->model_channels < 4 || c->model_channels > 4096)
        return pd_fail(err, "config key 'model_channels': %d is out of range 4..4096",
                       c->model_channels);
    if (c->n_levels < 1 || c->n_levels > PD_MAX_LEVELS)
        return pd_fail(err, "config key 'channel_mult': needs 1..%d levels, got %d", PD_MAX_LEVELS,
                       c->n_levels);
    for (int l = 0; l < c->n_levels; l++)
        if (c->channel_mult[l] < 1 || c->channel_mult[l] > 64)
            return pd_fail(err, "config key 'channel_mult': entry %d (%d) is out of range 1..64", l,
                           c->channel_mult[l]);
    if (c->channel_mult_emb < 1 || c->channel_mult_emb > 64)
        return pd_fail(err, "config key 'channel_mult_emb': %d is out of range 1..64",
                       c->channel_mult_emb);
    if (c->channel_mult_noise < 1 || c->channel_mult_noise > 64)
        return pd_fail(err, "config key 'channel_mult_noise': %d is out of range 1..64",
                       c->channel_mult_noise);
    if (c->num_blocks < 1 || c->num_blocks > 16)
        return pd_fail(err, "config key 'num_blocks': %d is out of range 1..16", c->num_blocks);
    if (c->img_resolution < 1 || c->img_resolution > 4096 ||
        c->img_resolution % (1 << (c->n_levels - 1)))
        return pd_fail(err, "config key 'img_resolution': %d is not a positive multiple of 2^%d "
                       "(one halving per extra level of channel_mult)", c->img_resolution,
                       c->n_levels - 1);
    /* An attention resolution that matches no level would silently drop attention (EDM's
     * `res in attn_resolutions`); here it is reported, since it is almost always a typo. */
    for (int i = 0; i < c->n_attn; i++) {
        int ok = 0;
        for (int l = 0; l < c->n_levels; l++) ok |= (c->img_resolution >> l) == c->attn_resolutions[i];
        if (!ok)
            return pd_fail(err, "config key 'attn_resolutions': %d is not the resolution of any "
                           "level (img_resolution %d halved per level)", c->attn_resolutions[i],
                           c->img_resolution);
    }
    if (!(c->dropout >= 0 && c->dropout < 1))
        return pd_fail(err, "config key 'dropout': %g is not in [0, 1)", c->dropout);
    if (!((c->label_dropout >= 0 && c->label_dropout < 1) || c->label_dropout == -1))
        return pd_fail(err, "config key 'label_dropout': %g is not in [0, 1)", c->label_dropout);
    if (!(c->sigma_data > 0 && isfinite(c->sigma_data)))
        return pd_fail(err, "config key 'sigma_data': %g must be positive", c->sigma_data);
    if (!(c->sigma_min > 0 && c->sigma_max > c->sigma_min && isfinite(c->sigma_max)))
        return pd_fail(err, "config keys 'sigma_min'/'sigma_max': need 0 < sigma_min < sigma_max "
                       "< inf, got %g, %g", c->sigma_min, c->sigma_max);
    if (ids->kind == KIND_GENERATOR && !(c->sigma_init > 0 && isfinite(c->sigma_init)))
        return pd_fail(err, "config key 'sigma_init': %g must be positive for a generator",
                       c->sigma_init);
    if (ids->precond == PC_VP || ids->precond == PC_EPS) {
        if (!(c->beta_d > 0 && isfinite(c->beta_d)) || !(c->beta_min >= 0 && isfinite(c->beta_min)))
            return pd_fail(err, "config keys 'beta_d'/'beta_min': need beta_d > 0 and beta_min >= "
                           "0, got %g, %g", c->beta_d, c->beta_min);
    }
    if ((ids->precond == PC_VP || ids->precond == PC_EPS || ids->precond == PC_IDDPM) &&
        (c->M < 2 || c->M > 100000))
        return pd_fail(err, "config key 'M': %d is out of range 2..100000", c->M);
    if (ids->precond == PC_IDDPM && !(c->C_1 > 0 && c->C_1 < 1 && c->C_2 >= 0 && c->C_2 < 1))
        return pd_fail(err, "config keys 'C_1'/'C_2': need 0 < C_1 < 1 and 0 <= C_2 < 1, got %g, %g",
                       c->C_1, c->C_2);
    /* iDDPM's network predicts ε and a variance: 2·C channels, D uses the first C. */
    int want_out = c->in_channels * (ids->precond == PC_IDDPM ? 2 : 1);
    if (c->out_channels != want_out)
        return pd_fail(err, "config key 'out_channels': %d, precond '%s' with in_channels %d needs "
                       "%d", c->out_channels, c->precond, c->in_channels, want_out);
    return 0;
}

/* GroupNorm needs C divisible by its group count min(32, C/4); checks every norm's width. */
static int check_widths(const pd_unet_config *c, int with_mc, pd_error *err) {
    int widths[PD_MAX_LEVELS + 1], nw = 0;
    if (with_mc) widths[nw++] = c->model_channels;
    for (int l = 0; l < c->n_levels; l++) widths[nw++] = c->model_channels * c->channel_mult[l];
    for (int i = 0; i < nw; i++)
        if (widths[i] % groupnorm_groups(widths[i]))
            return pd_fail(err, "config key 'model_channels': %d channels are not divisible by "
                           "GroupNorm's %d groups", widths[i], groupnorm_groups(widths[i]));
    return 0;
}

int songunet_validate(const pd_unet_config *c, const net_ids *ids, pd_error *err) {
    if (unet_validate_common(c, ids, err)) return -1;
    /* EDM also accepts encoder 'skip' and decoder 'skip'; no released network uses them. */
    if (ids->encoder == ENC_SKIP)
        return pd_fail(err, "config key 'encoder_type': 'skip' is not supported (only 'standard' "
                       "and 'residual')");
    if (ids->decoder != DEC_STANDARD)
        return pd_fail(err, "config key 'decoder_type': '%s' is not supported (only 'standard')",
                       c->decoder_type);
    int one = c->n_resample_filter == 2 && c->resample_filter[0] == 1 && c->resample_filter[1] == 1;
    int fir = c->n_resample_filter == 4 && c->resample_filter[0] == 1 &&
              c->resample_filter[1] == 3 && c->resample_filter[2] == 3 && c->resample_filter[3] == 1;
    if (!one && !fir)
        return pd_fail(err, "config key 'resample_filter': only [1, 1] and [1, 3, 3, 1] are "
                       "supported");
    /* Positional embedding with endpoint: Cn/2 - 1 frequencies in the exponent's denominator. */
    int cn = c->model_channels * c->channel_mult_noise;
    if (cn % 2 || cn < 4)
        return pd_fail(err, "config keys 'model_channels'*'channel_mult_noise' = %d must be even "
                       "and >= 4 (noise embedding)", cn);
    return check_widths(c, 1, err);
}

int adm_validate(const pd_unet_config *c, const net_ids *ids, pd_error *err) {
    if (unet_validate_common(c, ids, err)) return -1;
    /* DhariwalUNet has none of SongUNet's variant switches: they must keep their defaults. */
    if (ids->embedding != EMB_POSITIONAL || ids->encoder != ENC_STANDARD ||
        ids->decoder != DEC_STANDARD || c->channel_mult_noise != 1 || c->n_resample_filter != 2 ||
        c->resample_filter[0] != 1 || c->resample_filter[1] != 1)
        return pd_fail(err, "config keys 'embedding_type'/'encoder_type'/'decoder_type'/"
                       "'channel_mult_noise'/'resample_filter': arch 'adm' has none of these "
                       "(leave them at positional/standard/standard/1/[1, 1])");
    if (c->model_channels % 2)
        return pd_fail(err, "config key 'model_channels': %d must be even (positional embedding)",
                       c->model_channels);
    return check_widths(c, 0, err);
}

int unet_config_validate(const pd_unet_config *c, pd_error *err) {
    net_ids ids;
    if (net_ids_parse(&ids, c, err)) return -1;
    return net_ops_of(ids.arch)->validate(c, &ids, err);
}

static const char *const config_keys[] = {
    "arch", "precond", "img_resolution", "in_channels", "out_channels", "label_dim",
    "augment_dim", "model_channels", "channel_mult", "channel_mult_emb", "num_blocks",
    "attn_resolutions", "dropout", "channel_mult_noise", "embedding_type", "encoder_type",
    "decoder_type", "resample_filter", "sigma_data", "sigma_min", "sigma_max", "kind",
    "sigma_init", "class_names", "label_dropout", "beta_d", "beta_min", "M", "epsilon_t", "C_1",
    "C_2", NULL};

static int get_int(const yd_doc *d, const yd_node *m, const char *key, int *out, pd_error *err) {
    long long v = *out;
    if (yd_int(d, m, key, &v, err)) return -1;
    if (v < -2147483647LL || v > 2147483647LL)
        return pd_fail(err, "%s: config key '%s': %lld is out of range", d->source, key, v);
    *out = (int)v;
    return 0;
}

int unet_config_from_node(pd_unet_config *c, const yd_doc *d, const yd_node *m, pd_error *err) {
    if (!m || m->kind != YD_MAP)
        return pd_fail(err, "%s: the model config is not a mapping of keys", d->source);
    if (yd_check_keys(d, m, config_keys, "model config", err)) return -1;
    double dropout = c->dropout, label_dropout = c->label_dropout;
    if (yd_str(d, m, "arch", c->arch, sizeof c->arch, err) ||
        yd_str(d, m, "precond", c->precond, sizeof c->precond, err) ||
        get_int(d, m, "img_resolution", &c->img_resolution, err) ||
        get_int(d, m, "in_channels", &c->in_channels, err) ||
        get_int(d, m, "out_channels", &c->out_channels, err) ||
        get_int(d, m, "label_dim", &c->label_dim, err) ||
        get_int(d, m, "augment_dim", &c->augment_dim, err) ||
        get_int(d, m, "model_channels", &c->model_channels, err) ||
        yd_int_list(d, m, "channel_mult", c->channel_mult, PD_MAX_LEVELS, &c->n_levels, err) ||
        get_int(d, m, "channel_mult_emb", &c->channel_mult_emb, err) ||
        get_int(d, m, "num_blocks", &c->num_blocks, err) ||
        yd_int_list(d, m, "attn_resolutions", c->attn_resolutions, PD_MAX_LEVELS, &c->n_attn,
                    err) ||
        yd_double(d, m, "dropout", &dropout, err) ||
        get_int(d, m, "channel_mult_noise", &c->channel_mult_noise, err) ||
        yd_str(d, m, "embedding_type", c->embedding_type, sizeof c->embedding_type, err) ||
        yd_str(d, m, "encoder_type", c->encoder_type, sizeof c->encoder_type, err) ||
        yd_str(d, m, "decoder_type", c->decoder_type, sizeof c->decoder_type, err) ||
        yd_int_list(d, m, "resample_filter", c->resample_filter, 4, &c->n_resample_filter, err) ||
        yd_double(d, m, "sigma_data", &c->sigma_data, err) ||
        yd_double(d, m, "sigma_min", &c->sigma_min, err) ||
        yd_double(d, m, "sigma_max", &c->sigma_max, err) ||
        yd_str(d, m, "kind", c->kind, sizeof c->kind, err) ||
        yd_double(d, m, "sigma_init", &c->sigma_init, err) ||
        yd_double(d, m, "label_dropout", &label_dropout, err) ||
        yd_double(d, m, "beta_d", &c->beta_d, err) ||
        yd_double(d, m, "beta_min", &c->beta_min, err) || get_int(d, m, "M", &c->M, err) ||
        yd_double(d, m, "epsilon_t", &c->epsilon_t, err) ||
        yd_double(d, m, "C_1", &c->C_1, err) || yd_double(d, m, "C_2", &c->C_2, err))
        return -1;
    c->dropout = (float)dropout;
    c->label_dropout = (float)label_dropout;
    /* Entries past a list's length are zero, so equal configs compare equal field by field. */
    for (int l = c->n_levels; l < PD_MAX_LEVELS; l++) c->channel_mult[l] = 0;
    for (int l = c->n_attn; l < PD_MAX_LEVELS; l++) c->attn_resolutions[l] = 0;
    for (int l = c->n_resample_filter; l < 4; l++) c->resample_filter[l] = 0;
    const yd_node *names = yd_get(m, "class_names");
    if (names) {
        if (names->kind != YD_SEQ || names->n > 16)
            return pd_fail(err, "%s:%d: config key 'class_names': expected a list of at most 16 "
                           "strings", d->source, names->line);
        memset(c->class_names, 0, sizeof c->class_names);
        for (int i = 0; i < names->n; i++) {
            const yd_node *s = names->items[i];
            if (s->kind != YD_SCALAR || strlen(s->scalar) >= sizeof c->class_names[0])
                return pd_fail(err, "%s:%d: config key 'class_names': entry %d is not a string "
                               "of at most %zu characters", d->source, s->line, i,
                               sizeof c->class_names[0] - 1);
            strcpy(c->class_names[i], s->scalar);
        }
    }
    return 0;
}

static void key_ints(jb_buf *b, const char *k, const int *v, int n) {
    jb_key(b, k);
    jb_printf(b, "[");
    for (int i = 0; i < n; i++) jb_printf(b, "%s%d", i ? ", " : "", v[i]);
    jb_printf(b, "]");
}

int unet_config_to_json(const pd_unet_config *c, char *out, size_t cap) {
    jb_buf j = {0}, *b = &j;
    jb_printf(b, "{");
    jb_key_str(b, "arch", c->arch);
    jb_key_str(b, "precond", c->precond);
    jb_key_int(b, "img_resolution", c->img_resolution);
    jb_key_int(b, "in_channels", c->in_channels);
    jb_key_int(b, "out_channels", c->out_channels);
    jb_key_int(b, "label_dim", c->label_dim);
    jb_key_int(b, "augment_dim", c->augment_dim);
    jb_key_int(b, "model_channels", c->model_channels);
    key_ints(b, "channel_mult", c->channel_mult, c->n_levels);
    jb_key_int(b, "channel_mult_emb", c->channel_mult_emb);
    jb_key_int(b, "num_blocks", c->num_blocks);
    key_ints(b, "attn_resolutions", c->attn_resolutions, c->n_attn);
    /* dropout is a float: %.9g round-trips it exactly. */
    jb_printf(b, ", \"dropout\": %.9g", (double)c->dropout);
    jb_key_int(b, "channel_mult_noise", c->channel_mult_noise);
    jb_key_str(b, "embedding_type", c->embedding_type);
    jb_key_str(b, "encoder_type", c->encoder_type);
    jb_key_str(b, "decoder_type", c->decoder_type);
    key_ints(b, "resample_filter", c->resample_filter, c->n_resample_filter);
    jb_key_num(b, "sigma_data", c->sigma_data);
    jb_key_num(b, "sigma_min", c->sigma_min);
    jb_key_num(b, "sigma_max", c->sigma_max);
    jb_key_str(b, "kind", c->kind);
    jb_key_num(b, "sigma_init", c->sigma_init);
    /* Keys only some configs use are written only there, so older files' JSON is unchanged;
     * label_dropout only when recorded (>= 0; -1 = not recorded). */
    if (c->label_dropout >= 0) jb_printf(b, ", \"label_dropout\": %.9g", (double)c->label_dropout);
    if (!strcmp(c->precond, "vp") || !strcmp(c->precond, "eps")) {
        jb_key_num(b, "beta_d", c->beta_d);
        jb_key_num(b, "beta_min", c->beta_min);
        jb_key_int(b, "M", c->M);
        jb_key_num(b, "epsilon_t", c->epsilon_t);
    } else if (!strcmp(c->precond, "iddpm")) {
        jb_key_num(b, "C_1", c->C_1);
        jb_key_num(b, "C_2", c->C_2);
        jb_key_int(b, "M", c->M);
    }
    int n_names = 0;
    while (n_names < 16 && c->class_names[n_names][0]) n_names++;
    if (n_names) {
        jb_printf(b, ", \"class_names\": [");
        for (int i = 0; i < n_names; i++) {
            if (i) jb_printf(b, ", ");
            jb_json_str(b, c->class_names[i]);
        }
        jb_printf(b, "]");
    }
    jb_printf(b, "}");
    int rc = -1;
    if (!j.oom && j.len < cap) {
        memcpy(out, j.s, j.len + 1);
        rc = (int)j.len;
    }
    jb_free(&j);
    return rc;
}

int pd_unet_config_json(const pd_unet_config *c, char *buf, size_t cap) {
    return unet_config_to_json(c, buf, cap);
}
