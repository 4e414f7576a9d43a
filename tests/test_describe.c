/* test_describe.c — pd_denoiser_describe / pd_generator_describe (pixdiff.h), the one canonical
 * description of a denoiser stack that sweep cell keys, trajectory-reference keys and PNG
 * metadata use. Checked against the exact texts pixdiff.h documents: a network denoiser (its
 * file's sha256 and size), Skip-Tuning as a ramp and as a list with a window, upsample guidance
 * over a tuned stack (native branch the same stack: no lo part; a different one: its own
 * description in brackets), classifier-free guidance outermost, an analytic denoiser, a
 * generator; every setting that changes D changes the text; a stack containing a denoiser that
 * cannot describe itself, or a buffer too small, fails with a message and an empty text.
 */
#include "pixdiff.h"
#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pd_model *saved_model(const char *path, const char *kind, int label_dim) {
    pd_error err = {{0}};
    pd_unet_config c;
    pd_model *m = NULL, *l = NULL;
    if (pd_unet_config_preset(&c, "tiny", &err)) return printf("preset: %s\n", err.msg), NULL;
    c.label_dim = label_dim;
    snprintf(c.kind, sizeof c.kind, "%s", kind);
    c.sigma_init = 2.5;
    if (pd_model_create(&m, &c, 7, &err) || pd_model_save(m, path, &err) || pd_model_load(&l, path, &err)) {
        printf("model: %s\n", err.msg);
        l = NULL;
    }
    pd_model_free(m);
    return l;
}

/* The description of d, or "(error: ...)" */
static const char *describe(const pd_denoiser *d, char *buf, size_t cap) {
    pd_error err = {{0}};
    if (pd_denoiser_describe(d, buf, cap, &err)) snprintf(buf, cap, "(error: %s)", err.msg);
    return buf;
}

static void expect(const char *what, const char *got, const char *want) {
    tu_check(!strcmp(got, want), "%s:\n      got  %s\n      want %s", what, got, want);
}

/* A denoiser without a describe function, as an embedding program might write one. */
static int plain_eval(pd_denoiser *self, float *out, const float *x, const float *sigma, const float *labels,
                      int n, float *features, pd_error *err) {
    (void)labels, (void)features, (void)err, (void)sigma;
    memcpy(out, x, sizeof(float) * (size_t)n * self->C * self->H * self->W);
    return 0;
}

int main(void) {
    char dir[] = "/tmp/pd-test-describe.XXXXXX";
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    char path[256], gpath[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(gpath, sizeof gpath, "%s/gen.safetensors", dir);
    pd_model *m = saved_model(path, "denoiser", 4), *mg = saved_model(gpath, "generator", 4);
    if (!m || !mg) return 1;
    const int res = pd_model_config(m)->img_resolution;
    pd_error err = {{0}};
    char buf[2048], want[2048], other[2048];
    const char *sha = pd_model_sha256(m);
    tu_check(strlen(sha) == 64, "the loaded model has a sha256 (%s)", sha);

    /* ---- a network denoiser, then Skip-Tuning on it */
    pd_denoiser *d = NULL, *hi = NULL, *lo = NULL, *ug = NULL, *cfg = NULL;
    if (pd_denoiser_from_model(&d, m, 0, &err)) return printf("%s\n", err.msg), 1;
    snprintf(want, sizeof want, "model=sha256:%s|size=%d", sha, res);
    expect("network denoiser", describe(d, buf, sizeof buf), want);
    pd_skip_tuning st = pd_skip_tuning_default();
    st.rho_bottom = 0.4;
    if (pd_denoiser_set_skip_tuning(d, &st, &err)) return printf("%s\n", err.msg), 1;
    snprintf(want, sizeof want, "model=sha256:%s|size=%d|skip=rho:0.4..1,sigma:0..inf", sha, res);
    expect("Skip-Tuning ramp", describe(d, buf, sizeof buf), want);
    pd_skip_tuning sl = pd_skip_tuning_default();
    sl.n_rho = pd_denoiser_num_skips(d);
    for (int i = 0; i < sl.n_rho; i++) sl.rho[i] = i ? 1.0 : 0.75;
    sl.sigma_lo = 0.5;
    sl.sigma_hi = 10;
    if (pd_denoiser_set_skip_tuning(d, &sl, &err)) return printf("%s\n", err.msg), 1;
    int len = snprintf(want, sizeof want, "model=sha256:%s|size=%d|skip=rho:0.75", sha, res);
    for (int i = 1; i < sl.n_rho; i++) len += snprintf(want + len, sizeof want - (size_t)len, ",1");
    snprintf(want + len, sizeof want - (size_t)len, ",sigma:0.5..10");
    expect("Skip-Tuning list and window", describe(d, buf, sizeof buf), want);
    pd_denoiser_set_skip_tuning(d, NULL, &err);
    snprintf(want, sizeof want, "model=sha256:%s|size=%d", sha, res);
    expect("Skip-Tuning cleared", describe(d, buf, sizeof buf), want);

    /* ---- upsample guidance over a tuned stack, then guidance */
    if (pd_denoiser_from_model(&hi, m, 2 * res, &err) || pd_denoiser_from_model(&lo, m, res, &err) ||
        pd_denoiser_set_skip_tuning(hi, &st, &err) || pd_denoiser_set_skip_tuning(lo, &st, &err) ||
        pd_denoiser_upsample_guidance(&ug, hi, lo, 2, 0.5, 0.6, &err) || pd_denoiser_cfg(&cfg, ug, 2, &err))
        return printf("%s\n", err.msg), 1;
    snprintf(want, sizeof want, "model=sha256:%s|size=%d|skip=rho:0.4..1,sigma:0..inf|ug=w:0.5,eta:0.6",
             sha, 2 * res);
    expect("upsample guidance, both branches tuned", describe(ug, buf, sizeof buf), want);
    snprintf(want + strlen(want), sizeof want - strlen(want), "|cfg=2");
    expect("guidance outermost", describe(cfg, buf, sizeof buf), want);
    pd_denoiser_set_skip_tuning(lo, NULL, &err);
    snprintf(want, sizeof want,
             "model=sha256:%s|size=%d|skip=rho:0.4..1,sigma:0..inf|ug=w:0.5,eta:0.6,lo:[model=sha256:%s|size=%d]",
             sha, 2 * res, sha, res);
    expect("upsample guidance, native branch untuned", describe(ug, buf, sizeof buf), want);

    /* every setting is in the text: another w, eta or guidance weight is another text */
    pd_denoiser *ug2 = NULL, *cfg2 = NULL;
    if (pd_denoiser_upsample_guidance(&ug2, hi, lo, 2, 0.5, 0.7, &err) || pd_denoiser_cfg(&cfg2, ug, 2.5, &err))
        return printf("%s\n", err.msg), 1;
    describe(ug, buf, sizeof buf);
    tu_check(strcmp(describe(ug2, other, sizeof other), buf) != 0, "eta 0.7 is another text: %s", other);
    describe(cfg, buf, sizeof buf);
    tu_check(strcmp(describe(cfg2, other, sizeof other), buf) != 0, "cfg 2.5 is another text: %s", other);

    /* ---- analytic, generator */
    pd_denoiser *an = NULL;
    if (pd_denoiser_analytic(&an, "analytic:gaussian:res=8:ch=1:std=0.5", &err)) return printf("%s\n", err.msg), 1;
    expect("analytic", describe(an, buf, sizeof buf), "model=analytic:gaussian:res=8:ch=1:std=0.5|size=8");
    pd_generator *g = NULL;
    if (pd_generator_from_model(&g, mg, 0, &err) || pd_generator_set_skip_tuning(g, &st, &err))
        return printf("%s\n", err.msg), 1;
    snprintf(want, sizeof want, "model=sha256:%s|size=%d|skip=rho:0.4..1,sigma:0..inf", pd_model_sha256(mg), res);
    if (pd_generator_describe(g, buf, sizeof buf, &err)) snprintf(buf, sizeof buf, "(error: %s)", err.msg);
    expect("generator with Skip-Tuning", buf, want);

    /* ---- failures: a denoiser that cannot describe itself, a wrapper over it, a short buffer */
    pd_denoiser *plain = calloc(1, sizeof *plain), *pcfg = NULL;
    plain->C = 1, plain->H = plain->W = 8, plain->label_dim = 4, plain->sigma_min = 0.002, plain->sigma_max = 80;
    plain->eval = plain_eval;
    snprintf(plain->desc, sizeof plain->desc, "plain");
    if (pd_denoiser_cfg(&pcfg, plain, 2, &err)) return printf("%s\n", err.msg), 1;
    int rc = pd_denoiser_describe(plain, buf, sizeof buf, &err);
    tu_check(rc == -1 && buf[0] == 0 && strstr(err.msg, "plain"), "no describe function: fails naming it (%s)", err.msg);
    rc = pd_denoiser_describe(pcfg, buf, sizeof buf, &err);
    tu_check(rc == -1 && buf[0] == 0, "a wrapper over it fails too (%s)", err.msg);
    rc = pd_denoiser_describe(cfg, buf, 40, &err);
    tu_check(rc == -1 && buf[0] == 0 && strstr(err.msg, "longer than 39"), "a short buffer fails (%s)", err.msg);

    pd_denoiser_free(pcfg), pd_denoiser_free(plain);
    pd_generator_free(g), pd_denoiser_free(an);
    pd_denoiser_free(cfg2), pd_denoiser_free(ug2), pd_denoiser_free(cfg), pd_denoiser_free(ug);
    pd_denoiser_free(lo), pd_denoiser_free(hi), pd_denoiser_free(d);
    pd_model_free(m), pd_model_free(mg);
    unlink(path), unlink(gpath), rmdir(dir);
    return tu_finish();
}
