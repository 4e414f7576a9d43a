/* test_model_io.c — model files (DESIGN.md "File formats", docs/algorithms.md §M5) and model bookkeeping:
 *   - create → save → load gives bit-identical params and an identical config (class names with
 *     JSON-special characters included), the EDM resample_filter buffers are written and ignored;
 *   - an F16 file (written here by hand) loads to the half-rounded values exactly;
 *   - a missing tensor, a wrong shape, an extra tensor, an unknown config key, an unsupported
 *     config value, a missing config, a truncated file and a non-safetensors file all fail with a
 *     message naming the tensor / key / file;
 *   - a failed save (bad directory, unsupported config) writes nothing;
 *   - parameter and tensor counts of EDM's published nets (docs/algorithms.md §M4.8) from the tensor table;
 *   - pd_model_gflops against a count written out by hand, module by module.
 */
#include "pixdiff.h"
#include "testutil.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "unet/songunet.h"
#include "unet/unet_arch.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pd_unet_config small(void) {
    pd_unet_config c = pd_unet_config_default();
    c.in_channels = c.out_channels = 1;
    c.model_channels = 8;
    c.n_levels = 2;
    memset(c.channel_mult, 0, sizeof c.channel_mult);
    c.channel_mult[0] = 1;
    c.channel_mult[1] = 2;
    c.num_blocks = 1;
    c.img_resolution = 16;
    c.attn_resolutions[0] = 8;
    c.n_attn = 1;
    c.label_dim = 3;
    c.dropout = 0.1f;
    snprintf(c.precond, sizeof c.precond, "vp");
    snprintf(c.class_names[0], sizeof c.class_names[0], "cat");
    snprintf(c.class_names[1], sizeof c.class_names[1], "say \"hi\"\\n");
    snprintf(c.class_names[2], sizeof c.class_names[2], "t-shirt/top");
    return c;
}

static int same_config(const pd_unet_config *a, const pd_unet_config *b) {
    int ok = !strcmp(a->arch, b->arch) && !strcmp(a->precond, b->precond) &&
             a->img_resolution == b->img_resolution && a->in_channels == b->in_channels &&
             a->out_channels == b->out_channels && a->label_dim == b->label_dim &&
             a->augment_dim == b->augment_dim && a->model_channels == b->model_channels &&
             a->n_levels == b->n_levels && a->channel_mult_emb == b->channel_mult_emb &&
             a->num_blocks == b->num_blocks && a->n_attn == b->n_attn &&
             a->dropout == b->dropout && a->channel_mult_noise == b->channel_mult_noise &&
             !strcmp(a->embedding_type, b->embedding_type) &&
             !strcmp(a->encoder_type, b->encoder_type) && !strcmp(a->decoder_type, b->decoder_type) &&
             a->n_resample_filter == b->n_resample_filter && a->sigma_data == b->sigma_data &&
             a->sigma_min == b->sigma_min && a->sigma_max == b->sigma_max &&
             !strcmp(a->kind, b->kind) && a->sigma_init == b->sigma_init;
    for (int l = 0; ok && l < a->n_levels; l++) ok = a->channel_mult[l] == b->channel_mult[l];
    for (int l = 0; ok && l < a->n_attn; l++) ok = a->attn_resolutions[l] == b->attn_resolutions[l];
    for (int l = 0; ok && l < a->n_resample_filter; l++) ok = a->resample_filter[l] == b->resample_filter[l];
    for (int i = 0; ok && i < 16; i++) ok = !strcmp(a->class_names[i], b->class_names[i]);
    return ok;
}

/* Writes the model's tensors with st_write, with edits: skip tensor `drop`, reshape tensor
 * `reshape` to 1-D, add an extra tensor, or replace the config JSON. */
static int write_variant(const char *path, const pd_model *m, int drop, int reshape, int extra,
                         const char *json) {
    int n = 0, cap = m->n_tensors + 1;
    const char **names = calloc(cap, sizeof *names);
    int *nd = calloc(cap, sizeof *nd);
    long long (*sh)[8] = calloc(cap, sizeof *sh);
    const float **data = calloc(cap, sizeof *data);
    for (int i = 0; i < m->n_tensors; i++) {
        if (i == drop) continue;
        const unet_tensor_info *t = &m->tensors[i];
        names[n] = t->name;
        nd[n] = t->ndim;
        for (int d = 0; d < t->ndim; d++) sh[n][d] = t->shape[d];
        if (i == reshape) { nd[n] = 1; sh[n][0] = (long long)t->numel; }
        data[n++] = m->params + t->offset;
    }
    if (extra) {
        names[n] = "model.enc.16x16_block0.extra.weight";
        nd[n] = 1;
        sh[n][0] = 4;
        data[n++] = m->params;
    }
    char cj[16384];
    if (!json) { unet_config_to_json(&m->cfg, cj, sizeof cj); json = cj; }
    const char *k[1] = {"pixdiff.config"}, *v[1] = {json};
    pd_error err;
    int rc = st_write(path, n, names, nd, (const long long (*)[8])sh, data, 1, k, v, &err);
    if (rc) printf("write_variant: %s\n", err.msg);
    free(names); free(nd); free(sh); free(data);
    return rc;
}

/* IEEE half <-> float, round to nearest even (test-local, independent of safetensors.c). */
static uint16_t f2h(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    int e = (int)((x >> 23) & 0xff) - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {                       /* subnormal half */
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static float h2f(uint16_t h) {
    int e = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v = e == 0 ? ldexp(mant, -24) : ldexp(mant + 1024, e - 25);
    return (float)((h & 0x8000) ? -v : v);
}

/* A safetensors file with every tensor in F16, written byte by byte. */
static void write_f16(const char *path, const pd_model *m) {
    char cj[8192], esc[16384];
    unet_config_to_json(&m->cfg, cj, sizeof cj);
    size_t e = 0;
    for (const char *p = cj; *p; p++) {
        if (*p == '"' || *p == '\\') esc[e++] = '\\';
        esc[e++] = *p;
    }
    esc[e] = 0;
    size_t cap = 1 << 20, len = 0;
    char *hdr = malloc(cap);
    len += snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"pixdiff.config\":\"%s\"}", esc);
    size_t off = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const unet_tensor_info *t = &m->tensors[i];
        len += snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"F16\",\"shape\":[", t->name);
        for (int d = 0; d < t->ndim; d++) len += snprintf(hdr + len, cap - len, "%s%d", d ? "," : "", t->shape[d]);
        len += snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + 2 * t->numel);
        off += 2 * t->numel;
    }
    len += snprintf(hdr + len, cap - len, "}");
    while (len % 8) hdr[len++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t n = len;
    fwrite(&n, 8, 1, f);
    fwrite(hdr, 1, len, f);
    for (size_t j = 0; j < m->n_params; j++) {
        uint16_t h = f2h(m->params[j]);
        fwrite(&h, 2, 1, f);
    }
    fclose(f);
    free(hdr);
}

static void expect_fail(const char *what, const char *path, const char *must1, const char *must2) {
    pd_model *m = NULL;
    pd_error err = {{0}};
    int rc = pd_model_load(&m, path, &err);
    int ok = rc != 0 && !m && strstr(err.msg, must1) && (!must2 || strstr(err.msg, must2));
    tu_check(ok, "%s: \"%s\"", what, err.msg);
    pd_model_free(m);
}

static long long counts(const pd_unet_config *c, int *n_tensors) {
    pd_model *m;
    pd_error err;
    if (unet_model_tables(&m, c, &err)) { printf("%s\n", err.msg); return -1; }
    *n_tensors = m->n_tensors;
    long long np = (long long)m->n_params;
    pd_model_free(m);
    return np;
}

int main(void) {
    char dir[] = "/tmp/pd_model_io_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char p_ok[256], p_bad[256], p_f16[256];
    snprintf(p_ok, sizeof p_ok, "%s/m.safetensors", dir);
    snprintf(p_bad, sizeof p_bad, "%s/bad.safetensors", dir);
    snprintf(p_f16, sizeof p_f16, "%s/f16.safetensors", dir);
    pd_error err;

    /* Round trip. */
    pd_unet_config c = small();
    pd_model *m, *l;
    if (pd_model_create(&m, &c, 42, &err)) { printf("%s\n", err.msg); return 1; }
    tu_check(!strcmp(pd_model_sha256(m), "") && !strcmp(pd_model_path(m), ""),
             "created model: no path, no sha256");
    tu_check(pd_model_save(m, p_ok, &err) == 0, "save %s", p_ok);
    int rc = pd_model_load(&l, p_ok, &err);
    tu_check(rc == 0, "load: %s", rc ? err.msg : "ok");
    if (rc) return tu_finish();
    tu_check(pd_model_param_count(l) == pd_model_param_count(m) &&
             !memcmp(l->params, m->params, m->n_params * sizeof(float)),
             "params bit-identical after save/load (%zu)", pd_model_param_count(m));
    tu_check(same_config(pd_model_config(l), pd_model_config(m)), "config identical (class name '%s')",
             pd_model_config(l)->class_names[1]);
    char hex[65];
    core_sha256_file(p_ok, hex, &err);
    tu_check(strlen(pd_model_sha256(l)) == 64 && !strcmp(hex, pd_model_sha256(l)) &&
             !strcmp(pd_model_path(l), p_ok), "loaded model: path and sha256 %.16s...", hex);
    {
        st_file f;
        st_read(&f, p_ok, &err);
        int nf = 0;
        for (int i = 0; i < f.n_tensors; i++) nf += strstr(f.tensors[i].name, "resample_filter") != NULL;
        const st_tensor *t = st_find(&f, "model.enc.8x8_down.conv0.resample_filter");
        tu_check(nf == 4 && t && t->numel == 4 && t->data[0] == 0.25f,
                 "EDM resample_filter buffers written (%d: down/up conv0 + skip)", nf);
        st_free(&f);
    }
    pd_model_free(l);

    /* F16. */
    for (size_t j = 0; j < m->n_params; j++) m->params[j] = h2f(f2h(m->params[j]));
    write_f16(p_f16, m);
    rc = pd_model_load(&l, p_f16, &err);
    tu_check(rc == 0 && !memcmp(l->params, m->params, m->n_params * sizeof(float)),
             "F16 file loads to the half-rounded params exactly%s%s", rc ? ": " : "", rc ? err.msg : "");
    if (!rc) pd_model_free(l);

    /* Broken files. */
    int t_drop = unet_tensor_index(m, "model.dec.8x8_in0.qkv.weight");
    int t_shape = unet_tensor_index(m, "model.enc.16x16_conv.weight");
    write_variant(p_bad, m, t_drop, -1, 0, NULL);
    expect_fail("missing tensor", p_bad, "model.dec.8x8_in0.qkv.weight", p_bad);
    write_variant(p_bad, m, -1, t_shape, 0, NULL);
    expect_fail("wrong shape", p_bad, "model.enc.16x16_conv.weight", "[8, 1, 3, 3]");
    write_variant(p_bad, m, -1, -1, 1, NULL);
    expect_fail("extra tensor", p_bad, "model.enc.16x16_block0.extra.weight", p_bad);
    char js[16384], js2[16400 + 16];
    unet_config_to_json(&m->cfg, js, sizeof js);
    snprintf(js2, sizeof js2, "{\"frobnicate\": 1, %s", js + 1);
    write_variant(p_bad, m, -1, -1, 0, js2);
    expect_fail("unknown config key", p_bad, "frobnicate", p_bad);
    {
        pd_unet_config c2 = m->cfg;
        snprintf(c2.embedding_type, sizeof c2.embedding_type, "fourier");
        unet_config_to_json(&c2, js, sizeof js);
        write_variant(p_bad, m, -1, -1, 0, js);
        expect_fail("fourier embedding without its freqs buffer", p_bad, "map_noise.freqs", p_bad);
        c2 = m->cfg;
        snprintf(c2.embedding_type, sizeof c2.embedding_type, "spherical");
        unet_config_to_json(&c2, js, sizeof js);
        write_variant(p_bad, m, -1, -1, 0, js);
        expect_fail("unknown embedding_type", p_bad, "embedding_type", "fourier");
        c2 = m->cfg;
        c2.resample_filter[1] = 2;
        c2.resample_filter[2] = 1;
        c2.n_resample_filter = 3;
        unet_config_to_json(&c2, js, sizeof js);
        write_variant(p_bad, m, -1, -1, 0, js);
        expect_fail("resample_filter [1,2,1]", p_bad, "resample_filter", NULL);
    }
    {
        const char *names[1] = {"model.map_layer0.weight"};
        int nd[1] = {1};
        long long sh[1][8] = {{1}};
        const float *d[1] = {m->params};
        st_write(p_bad, 1, names, nd, (const long long (*)[8])sh, d, 0, NULL, NULL, &err);
        expect_fail("no pixdiff.config", p_bad, "pixdiff.config", p_bad);
    }
    {
        FILE *f = fopen(p_ok, "rb");
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fclose(f);
        if (truncate(p_ok, sz / 2)) return 1;
        expect_fail("truncated file", p_ok, p_ok, NULL);
        f = fopen(p_bad, "wb");
        fputs("this is not a safetensors file", f);
        fclose(f);
        expect_fail("not safetensors", p_bad, p_bad, NULL);
        expect_fail("no such file", "/nonexistent/none.safetensors", "/nonexistent/none.safetensors", NULL);
    }

    /* Failed saves write nothing. */
    {
        char p_new[300];
        snprintf(p_new, sizeof p_new, "%s/new.safetensors", dir);
        rc = pd_model_save(m, "/nonexistent-dir/x.safetensors", &err);
        tu_check(rc != 0 && access("/nonexistent-dir/x.safetensors", F_OK) != 0,
                 "save into a missing directory fails: %s", err.msg);
        snprintf(m->cfg.encoder_type, sizeof m->cfg.encoder_type, "skip");
        rc = pd_model_save(m, p_new, &err);
        tu_check(rc != 0 && access(p_new, F_OK) != 0 && strstr(err.msg, "encoder_type"),
                 "save of an unsupported config fails, nothing written: %s", err.msg);
        snprintf(m->cfg.encoder_type, sizeof m->cfg.encoder_type, "standard");
    }

    /* Counts of EDM's published nets (docs/algorithms.md §M4.8), from the tensor table alone. */
    {
        pd_unet_config e = pd_unet_config_default();
        e.augment_dim = 9;
        int nt;
        long long np = counts(&e, &nt);
        tu_check(np == 55733891 && nt == 417, "EDM DDPM++ CIFAR-10 uncond: %lld params, %d tensors "
                 "(published 55,733,891 / 417)", np, nt);
        e.label_dim = 10;
        np = counts(&e, &nt);
        tu_check(np == 55735299 && nt == 419, "EDM DDPM++ CIFAR-10 cond: %lld params, %d tensors "
                 "(published 55,735,299 / 419)", np, nt);
        e.label_dim = 0;
        e.img_resolution = 64;
        e.n_levels = 4;
        e.channel_mult[0] = 1;
        e.channel_mult[1] = e.channel_mult[2] = e.channel_mult[3] = 2;
        np = counts(&e, &nt);
        tu_check(np == 61805571 && nt == 541, "EDM DDPM++ FFHQ-64: %lld params, %d tensors "
                 "(published 61,805,571 / 541)", np, nt);
        /* The presets of EDM's released networks: counts of EDM's own constructors
         * (sum(p.numel() for p in net.parameters()), len(list(net.named_parameters()))). */
        static const struct { const char *preset; long long np; int nt; } pr[] = {
            {"edm-cifar10-ddpmpp", 55733891, 417}, {"edm-cifar10-ncsnpp", 56397827, 421},
            {"edm-ffhq64-ddpmpp", 61805571, 541},  {"edm-ffhq64-ncsnpp", 62761091, -1},
            {"edm-imagenet64-adm", 295899267, 541}};
        for (size_t i = 0; i < sizeof pr / sizeof *pr; i++) {
            pd_unet_config q;
            pd_error perr;
            int ok = !pd_unet_config_preset(&q, pr[i].preset, &perr);
            np = ok ? counts(&q, &nt) : -1;
            tu_check(np == pr[i].np && (pr[i].nt < 0 || nt == pr[i].nt),
                     "preset %s: %lld params, %d tensors (EDM: %lld)", pr[i].preset, np, nt, pr[i].np);
        }
    }

    /* GFLOPs of the small net at 16x16, counted by hand (MACs per module, L = H·W):
     *   mapping: label 3·8 + layer0 8·32 + layer1 32·32                           =    1,304
     *   enc.16x16_conv 9·1·8·256                                                   =   18,432
     *   enc.16x16_block0 (8→8): conv0 9·8·8·256, affine 32·8, conv1 9·8·8·256      =  295,168
     *   enc.8x8_down (8→8): conv0 9·8·8·64, affine 256, conv1 9·8·8·64, skip 8·8·64=   78,080
     *   enc.8x8_block0 (8→16, attn): 73,728 + 512 + 147,456 + skip 8,192
     *       + qkv 16·48·64 + QK 64·64·16 + AV 64·64·16 + proj 16·16·64             =  426,496
     *   dec.8x8_in0 (16, attn): 147,456 + 512 + 147,456 + 196,608                  =  492,032
     *   dec.8x8_in1 (16): 147,456 + 512 + 147,456                                  =  295,424
     *   dec.8x8_block0 (32→16): 9·32·16·64 + 512 + 147,456 + 32·16·64              =  475,648
     *   dec.8x8_block1 (24→16, attn): 9·24·16·64 + 512 + 147,456 + 24·16·64 + 196,608 = 590,336
     *   dec.16x16_up (16, up): 9·16·16·256 ·2 + 512 + 16·16·256                    = 1,245,696
     *   dec.16x16_block0 (24→8): 9·24·8·256 + 256 + 9·8·8·256 + 24·8·256           =  639,232
     *   dec.16x16_block1 (16→8): 9·16·8·256 + 256 + 9·8·8·256 + 16·8·256           =  475,392
     *   dec.16x16_aux_conv 9·8·1·256                                               =   18,432
     *   total 5,051,672 MACs → 0.010103344 GFLOP. */
    {
        double g = pd_model_gflops(m, 0), want = 2 * 5051672 / 1e9;
        tu_check(fabs(g - want) < 1e-12, "pd_model_gflops %.9f vs hand count %.9f", g, want);
        double g2 = pd_model_gflops(m, 32);
        tu_check(g2 > 4 * g, "gflops at 32x32 %.6f > 4x (attention grows with L^2)", g2);
    }

    pd_model_free(m);
    remove(p_ok);
    remove(p_bad);
    remove(p_f16);
    rmdir(dir);
    return tu_finish();
}
