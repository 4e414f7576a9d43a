/* test_convert.c — `pixdiff convert` on snapshots in NVlabs/edm's exact pickle format
 * (tests/fixtures/convert/, made by tests/fixtures/make_pickles.py with EDM's own code).
 *
 * DDPM++ networks pixdiff runs today are checked end to end: D(x; sigma) of the converted file
 * against D recorded from EDM's forward, sigma 0.002 .. 80, class 1 and no label, within 1e-4 of
 * the reference's largest value per sigma (EDMPrecond in float32 and float16 storage, VPPrecond
 * in bfloat16). For NCSN++ and ADM (and iDDPMPrecond) the config and the tensors the networks
 * need are checked. Also: Inception-named torch .pth state dicts in both torch.save formats
 * (strided tensors, num_batches_tracked dropped), --config on .pth and .safetensors state dicts
 * (equal to the snapshot's conversion; a wrong architecture fails), --generator, and an
 * unknown class or missing --key failing with a message that names it.
 */
#include "core/safetensors.h"
#include "core/yamldoc.h"
#include "pixdiff.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FIX PD_SOURCE_DIR "/tests/fixtures/convert/"

static const char *gunzip_to(const char *name) {
    static char out[4][256];
    static int k;
    char in[512];
    snprintf(in, sizeof in, FIX "%s.gz", name);
    char *o = out[k++ % 4];
    snprintf(o, 256, "cv_%s", name);
    gzFile g = gzopen(in, "rb");
    FILE *f = fopen(o, "wb");
    char buf[65536];
    int r;
    while (g && f && (r = gzread(g, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)r, f);
    if (g) gzclose(g);
    if (f) fclose(f);
    return o;
}

static int convert(const char *in, const char *out, const pd_convert_params *p, pd_error *err) {
    pd_converted *c;
    if (pd_convert_read(&c, in, p, err)) return -1;
    int rc = pd_convert_write(c, out, p, err);
    pd_converted_free(c);
    return rc;
}

/* The pixdiff.config of a written file as a YAML tree. */
static int read_config(const char *path, st_file *st, yd_doc *doc) {
    pd_error err;
    if (st_read(st, path, &err)) {
        printf("  %s\n", err.msg);
        return -1;
    }
    const char *json = st_meta(st, "pixdiff.config");
    if (!json || yd_load_string(doc, json, path, &err)) {
        st_free(st);
        return -1;
    }
    return 0;
}

static double cfg_num(const yd_doc *d, const char *key) {
    const yd_node *n = yd_get(d->root, key);
    return n && n->kind == YD_SCALAR ? atof(n->scalar) : NAN;
}

static int cfg_is(const yd_doc *d, const char *key, const char *want) {
    const yd_node *n = yd_get(d->root, key);
    return n && n->kind == YD_SCALAR && !strcmp(n->scalar, want);
}

static int cfg_ints(const yd_doc *d, const char *key, const int *want, int n) {
    const yd_node *s = yd_get(d->root, key);
    if (!s || s->kind != YD_SEQ || s->n != n) return 0;
    for (int i = 0; i < n; i++)
        if (atoi(s->items[i]->scalar) != want[i]) return 0;
    return 1;
}

static int has_shape(const st_file *st, const char *name, int nd, long long a, long long b,
                     long long c, long long d) {
    const st_tensor *t = st_find(st, name);
    long long want[4] = {a, b, c, d};
    if (!t || t->ndim != nd) return 0;
    for (int i = 0; i < nd; i++)
        if (t->shape[i] != want[i]) return 0;
    return 1;
}

/* D of the model file against EDM's D (d_<ref>.npy), per sigma, cond (class 1) and no label. */
static void check_denoiser(const char *file, const char *ref) {
    pd_error err;
    pd_model *m;
    pd_denoiser *d;
    if (pd_model_load(&m, file, &err) || pd_denoiser_from_model(&d, m, 0, &err)) {
        tu_check(0, "%s: loads as a denoiser (%s)", file, err.msg);
        return;
    }
    float *x, *sig, *dref;
    int xs[4], ss[4], ds[4], xn, sn, dn;
    char path[512];
    snprintf(path, sizeof path, FIX "d_%s.npy", ref);
    if (pd_npy_read(FIX "x.npy", &x, xs, &xn, &err) ||
        pd_npy_read(FIX "sigmas.npy", &sig, ss, &sn, &err) ||
        pd_npy_read(path, &dref, ds, &dn, &err)) {
        tu_check(0, "reference arrays read (%s)", err.msg);
        return;
    }
    int n = xs[0], L = d->label_dim;
    size_t chw = (size_t)xs[1] * xs[2] * xs[3];
    float *out = malloc(chw * n * sizeof *out), *labels = calloc((size_t)n * (L ? L : 1), 4);
    int passes = ds[0] / n;
    for (int pass = 0; pass < passes; pass++) {
        /* Conditional references: class 1 first, then no label (zeros). */
        for (int i = 0; i < n && L; i++) labels[i * L + 1] = pass == 0 && passes == 2;
        if (pd_denoiser_eval(d, out, x, sig, L ? labels : NULL, n, &err)) {
            tu_check(0, "%s: eval (%s)", file, err.msg);
            break;
        }
        for (int s = 0; s < n; s += 2) {
            const float *r = dref + ((size_t)pass * n + s) * chw;
            double scale = 0, e = 0;
            for (size_t k = 0; k < 2 * chw; k++) {
                scale = fmax(scale, fabs(r[k]));
                e = fmax(e, fabs((double)out[s * chw + k] - r[k]));
            }
            tu_check(e <= 1e-4 * scale, "%s %s sigma %-6g: max |D - D_edm| / max |D_edm| = %.2e "
                     "(tol 1e-4)", ref, passes == 2 && pass == 0 ? "class 1 " : "no label",
                     (double)sig[s], e / scale);
        }
    }
    free(out);
    free(labels);
    free(x);
    free(sig);
    free(dref);
    pd_denoiser_free(d);
    pd_model_free(m);
}

/* pixdiff's built-in "vp" is EDM's VPPrecond with its default beta_d, beta_min, M, epsilon_t:
 * the file's config is written back without the extra keys so today's loader runs it. */
static void check_vp(const char *file) {
    st_file st;
    yd_doc doc;
    if (read_config(file, &st, &doc)) {
        tu_check(0, "%s read", file);
        return;
    }
    tu_check(cfg_is(&doc, "precond", "vp") && cfg_num(&doc, "beta_d") == 19.9 &&
                 cfg_num(&doc, "beta_min") == 0.1 && cfg_num(&doc, "M") == 1000 &&
                 cfg_num(&doc, "epsilon_t") == 1e-5,
             "VPPrecond: precond vp, beta_d 19.9, beta_min 0.1, M 1000, epsilon_t 1e-5");
    char json[8192];
    snprintf(json, sizeof json, "%s", st_meta(&st, "pixdiff.config"));
    char *cut = strstr(json, ", \"beta_d\"");
    if (cut) strcpy(cut, "}");
    const char **names = malloc(st.n_tensors * sizeof *names);
    int *nd = malloc(st.n_tensors * sizeof *nd);
    long long (*sh)[8] = malloc(st.n_tensors * sizeof *sh);
    const float **data = malloc(st.n_tensors * sizeof *data);
    for (int i = 0; i < st.n_tensors; i++) {
        names[i] = st.tensors[i].name;
        nd[i] = st.tensors[i].ndim;
        memcpy(sh[i], st.tensors[i].shape, sizeof sh[i]);
        data[i] = st.tensors[i].data;
    }
    const char *k[1] = {"pixdiff.config"}, *v[1] = {json};
    pd_error err;
    int rc = st_write("cv_vp_plain.safetensors", st.n_tensors, names, nd,
                      (const long long (*)[8])sh, data, 1, k, v, &err);
    free(names); free(nd); free(sh); free(data);
    yd_free(&doc);
    st_free(&st);
    if (!rc) check_denoiser("cv_vp_plain.safetensors", "ddpmpp-vp");
    remove("cv_vp_plain.safetensors");
}

static void check_ncsnpp(const char *file) {
    st_file st;
    yd_doc doc;
    if (read_config(file, &st, &doc)) {
        tu_check(0, "%s read", file);
        return;
    }
    static const int filt[4] = {1, 3, 3, 1}, mult[2] = {1, 1}, attn[1] = {4};
    tu_check(cfg_is(&doc, "arch", "songunet") && cfg_is(&doc, "precond", "ve") &&
                 cfg_is(&doc, "embedding_type", "fourier") &&
                 cfg_is(&doc, "encoder_type", "residual") &&
                 cfg_is(&doc, "decoder_type", "standard") &&
                 cfg_num(&doc, "channel_mult_noise") == 2 &&
                 cfg_ints(&doc, "resample_filter", filt, 4) &&
                 cfg_ints(&doc, "channel_mult", mult, 2) &&
                 cfg_ints(&doc, "attn_resolutions", attn, 1) &&
                 cfg_num(&doc, "model_channels") == 4 && cfg_num(&doc, "num_blocks") == 1 &&
                 cfg_num(&doc, "sigma_min") == 0.02 && cfg_num(&doc, "sigma_max") == 80 &&
                 cfg_num(&doc, "label_dim") == 0 && fabs(cfg_num(&doc, "dropout") - 0.13) < 1e-7,
             "NCSN++/VEPrecond config: fourier, residual, [1,3,3,1], noise x2, sigma 0.02..80");
    const st_tensor *f = st_find(&st, "model.enc.4x4_down.conv0.resample_filter");
    int filt_ok = f && f->numel == 16;
    for (int i = 0; filt_ok && i < 16; i++)
        filt_ok = fabs(f->data[i] - filt[i / 4] * filt[i % 4] / 64.0) < 1e-7;
    tu_check(filt_ok, "NCSN++ resample_filter buffer = outer([1,3,3,1]) / 64");
    tu_check(has_shape(&st, "model.map_noise.freqs", 1, 4, 0, 0, 0) &&
                 has_shape(&st, "model.map_layer0.weight", 2, 16, 8, 0, 0) &&
                 has_shape(&st, "model.enc.4x4_aux_residual.weight", 4, 4, 3, 3, 3) &&
                 has_shape(&st, "model.dec.8x8_aux_conv.weight", 4, 3, 4, 3, 3) &&
                 st.n_tensors == 148,
             "NCSN++ tensors: Fourier freqs [4], map_layer0 [16, 8], aux_residual, 148 in all");
    yd_free(&doc);
    st_free(&st);
}

static void check_adm(const char *file, int iddpm) {
    st_file st;
    yd_doc doc;
    if (read_config(file, &st, &doc)) {
        tu_check(0, "%s read", file);
        return;
    }
    tu_check(cfg_is(&doc, "arch", "dhariwalunet") &&
                 cfg_is(&doc, "precond", iddpm ? "iddpm" : "edm") &&
                 cfg_num(&doc, "label_dim") == (iddpm ? 0 : 3) &&
                 cfg_num(&doc, "out_channels") == (iddpm ? 6 : 3) &&
                 cfg_num(&doc, "in_channels") == 3 && cfg_num(&doc, "channel_mult_emb") == 4 &&
                 fabs(cfg_num(&doc, "dropout") - 0.1) < 1e-7,
             "ADM config (%s): dhariwalunet, out_channels %d", iddpm ? "iDDPMPrecond" : "EDMPrecond",
             iddpm ? 6 : 3);
    tu_check(has_shape(&st, "model.map_layer0.weight", 2, 16, 4, 0, 0) &&
                 has_shape(&st, "model.out_conv.weight", 4, iddpm ? 6 : 3, 4, 3, 3) &&
                 has_shape(&st, "model.dec.4x4_in0.conv0.weight", 4, 4, 4, 3, 3) &&
                 (iddpm || (has_shape(&st, "model.map_label.weight", 2, 16, 3, 0, 0) &&
                            !st_find(&st, "model.map_label.bias"))),
             "ADM tensors: map_layer0 [16, 4], out_conv, dec in0%s",
             iddpm ? "" : ", map_label [16, 3] without bias");
    if (iddpm) {
        const st_tensor *u = st_find(&st, "u");
        tu_check(u && u->numel == 1001 && cfg_num(&doc, "C_1") == 0.001 &&
                     cfg_num(&doc, "C_2") == 0.008 && cfg_num(&doc, "M") == 1000 &&
                     cfg_num(&doc, "sigma_min") == (double)u->data[999] &&
                     cfg_num(&doc, "sigma_max") == 80 && u->data[0] > 80,
                 "iDDPMPrecond: u[1001] kept, C_1, C_2, M; sigma_min = u[M-1] = %g",
                 u ? u->data[999] : 0.0);
    }
    yd_free(&doc);
    st_free(&st);
}

static int same_tensors(const char *a, const char *b) {
    st_file x, y;
    pd_error err;
    if (st_read(&x, a, &err)) return 0;
    if (st_read(&y, b, &err)) {
        st_free(&x);
        return 0;
    }
    int ok = x.n_tensors == y.n_tensors;
    for (int i = 0; ok && i < x.n_tensors; i++) {
        const st_tensor *t = st_find(&y, x.tensors[i].name);
        ok = t && t->numel == x.tensors[i].numel &&
             !memcmp(t->data, x.tensors[i].data, t->numel * sizeof(float));
    }
    st_free(&x);
    st_free(&y);
    return ok;
}

static void check_inception(void) {
    pd_convert_params p = pd_convert_default_params();
    pd_error err = {{0}};
    int rc1 = convert(FIX "inception-zip.pth", "cv_inc_zip.safetensors", &p, &err);
    tu_check(!rc1, "Inception .pth (torch zip) converts (%s)", rc1 ? err.msg : "");
    int rc2 = convert(FIX "inception-legacy.pth", "cv_inc_legacy.safetensors", &p, &err);
    tu_check(!rc2, "Inception .pth (legacy torch.save) converts (%s)", rc2 ? err.msg : "");
    if (rc1 || rc2) return;
    tu_check(same_tensors("cv_inc_zip.safetensors", "cv_inc_legacy.safetensors"),
             "both torch.save formats give the same tensors");
    st_file st;
    st_read(&st, "cv_inc_zip.safetensors", &err);
    float *t;
    int sh[4], nd;
    pd_npy_read(FIX "inception-fc.t.npy", &t, sh, &nd, &err);
    const st_tensor *ft = st_find(&st, "fc.t");
    tu_check(ft && ft->ndim == 2 && ft->shape[0] == 3 && ft->shape[1] == 2 &&
                 !memcmp(ft->data, t, 6 * sizeof(float)),
             "a transposed (strided) tensor is written in row-major order");
    int counters = 0;
    for (int i = 0; i < st.n_tensors; i++) counters += strstr(st.tensors[i].name, "num_batches") != 0;
    tu_check(st.n_tensors == 13 && !counters && st_meta(&st, "pixdiff.inception") &&
                 !strcmp(st_meta(&st, "pixdiff.inception"), "1") &&
                 has_shape(&st, "Conv2d_1a_3x3.conv.weight", 4, 4, 3, 3, 3),
             "13 tensors, no num_batches_tracked, __metadata__ pixdiff.inception = 1");
    free(t);
    st_free(&st);
}

/* A protocol-2 snapshot dict(ema=<persistent object of class cls>) written by hand. */
static void write_unknown_class(const char *path, const char *cls) {
    FILE *f = fopen(path, "wb");
    fprintf(f, "\x80\x02}(X\x03%c%c%cemactorch_utils.persistence\n_reconstruct_persistent_obj\n"
            "}(X\x04%c%c%ctypeX\x05%c%c%cclassX\x0a%c%c%cclass_nameX%c%c%c%c%sX\x05%c%c%cstate}u"
            "\x85Ru.", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (int)strlen(cls), 0, 0, 0, cls, 0, 0, 0);
    fclose(f);
}

int main(void) {
    pd_convert_params p = pd_convert_default_params();
    pd_error err = {{0}};
    struct { const char *name; } nets[] = {{"ddpmpp-edm"}, {"ddpmpp-vp"}, {"ncsnpp-ve"},
                                           {"adm-edm"}, {"adm-iddpm"}, {"sid-generator"}};
    char out[6][128];
    for (int i = 0; i < 6; i++) {
        char gz[128];
        snprintf(gz, sizeof gz, "%s.pkl", nets[i].name);
        snprintf(out[i], sizeof out[i], "cv_%s.safetensors", nets[i].name);
        int rc = convert(gunzip_to(gz), out[i], &p, &err);
        tu_check(!rc, "%s.pkl converts (%s)", nets[i].name, rc ? err.msg : "");
    }
    check_denoiser(out[0], "ddpmpp-edm");
    check_denoiser(out[5], "sid-generator");
    check_vp(out[1]);
    check_ncsnpp(out[2]);
    check_adm(out[3], 0);
    check_adm(out[4], 1);

    /* --generator and --sigma-init. */
    p.generator = 1;
    p.sigma_init = 3.25;
    st_file st;
    yd_doc doc;
    int rc = convert("cv_sid-generator.pkl", "cv_gen.safetensors", &p, &err);
    tu_check(!rc && !read_config("cv_gen.safetensors", &st, &doc) && cfg_is(&doc, "kind", "generator") &&
                 cfg_num(&doc, "sigma_init") == 3.25,
             "--generator --sigma-init 3.25: kind generator, sigma_init 3.25");
    if (!rc) {
        yd_free(&doc);
        st_free(&st);
    }
    p = pd_convert_default_params();

    /* --config: a .pth state dict and a safetensors state dict with EDM's names. */
    p.config = FIX "ddpmpp.yaml";
    rc = convert(gunzip_to("ddpmpp-state.pth"), "cv_state.safetensors", &p, &err);
    tu_check(!rc && same_tensors("cv_state.safetensors", out[0]),
             "ddpmpp-state.pth --config ddpmpp.yaml = the snapshot's conversion (%s)", rc ? err.msg : "");
    rc = convert(out[0], "cv_state2.safetensors", &p, &err);
    tu_check(!rc && same_tensors("cv_state2.safetensors", out[0]),
             "a safetensors state dict with --config converts unchanged (%s)", rc ? err.msg : "");
    FILE *f = fopen("cv_wrong.yaml", "w");
    fprintf(f, "img_resolution: 8\nin_channels: 3\nout_channels: 3\nlabel_dim: 3\naugment_dim: 9\n"
               "model_channels: 8\nchannel_mult: [1, 1]\nnum_blocks: 1\nattn_resolutions: [4]\n");
    fclose(f);
    p.config = "cv_wrong.yaml";
    rc = convert(out[0], "cv_state3.safetensors", &p, &err);
    tu_check(rc && (strstr(err.msg, "missing") || strstr(err.msg, "shape") ||
                    strstr(err.msg, "not part")),
             "a state dict with another architecture than --config fails: %s", err.msg);
    p.config = NULL;
    rc = convert(out[0], "cv_state3.safetensors", &p, &err);
    tu_check(rc && strstr(err.msg, "--config"), "a safetensors input without --config fails: %s",
             err.msg);

    /* Unknown class, missing key. */
    write_unknown_class("cv_edm2.pkl", "EDM2Precond");
    rc = convert("cv_edm2.pkl", "cv_edm2.safetensors", &p, &err);
    tu_check(rc && strstr(err.msg, "class 'EDM2Precond'"), "unknown class fails naming it: %s",
             err.msg);
    p.key = "net";
    rc = convert("cv_ddpmpp-edm.pkl", "cv_x.safetensors", &p, &err);
    tu_check(rc && strstr(err.msg, "no 'net' entry") && strstr(err.msg, "ema, loss_fn"),
             "--key net on an EDM snapshot fails listing its keys: %s", err.msg);
    FILE *g = fopen("cv_x.safetensors", "rb");
    tu_check(!g, "nothing written for a failed conversion");
    if (g) fclose(g);
    check_inception();
    return tu_finish();
}
