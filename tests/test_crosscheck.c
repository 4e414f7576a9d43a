/* test_crosscheck.c — pixdiff's samplers against trajectories recorded from zju-pi/diff-sampler's
 * own code (tests/fixtures/crosscheck/regenerate.py; docs/crosscheck.md).
 *
 * A manifest names the model, the initial noise, the labels and one case per line (sampler,
 * steps, grid, AFS, order cap, dynamic thresholding, AMED predictor and its kind, the reference
 * trajectory .npy [steps + 1, n, C, H, W] and the reference's sigma grid). Each case runs
 * through pd_sample with the trajectory callback from the same noise, and every state x_k is
 * compared with the reference's: relative RMSE = ||x_k - ref_k|| / ||ref_k||. The grid pixdiff
 * builds for the case must match the reference's to 1e-6 relative (both float32 in the
 * reference). The committed fixture is a tiny random U-Net (`pixdiff init --preset tiny --seed
 * 1`, recreated here with pd_model_create; pixdiff initialises no layer at zero, so D(x) is far
 * from linear) and a random predictor; pixdiff must reproduce every trajectory to 2e-5 relative RMSE at
 * every step (float32 network arithmetic in both; the largest difference seen is ~1e-6).
 *
 * With a directory argument (`test_crosscheck DIR [TOL]`) it replays another manifest (e.g. the
 * default model, written by the script with --model) and prints the table of docs/crosscheck.md:
 * one row per case with the final and the worst intermediate relative RMSE.
 */
#include "pixdiff.h"
#include "samplers/amed_predictor.h"
#include "unet/songunet.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 64

typedef struct traj_ctx {
    double *states;           /* [(steps + 1), n * dim] */
    size_t count;             /* n * dim */
} traj_ctx;

static void on_traj(void *user, int step, const double *x, int n, size_t dim) {
    traj_ctx *t = user;
    memcpy(t->states + (size_t)step * t->count, x, sizeof(double) * (size_t)n * dim);
}

/* value of key=... in a manifest line ("" when absent) */
static void field(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    out[0] = 0;
    if (!p) return;
    p += strlen(pat);
    size_t k = 0;
    while (p[k] && p[k] != ' ' && p[k] != '\n' && k + 1 < cap) out[k] = p[k], k++;
    out[k] = 0;
}

static int load_model(pd_model **m, const char *dir, const char *line, pd_error *err) {
    char spec[1024] = "";
    sscanf(line, "model %1023s", spec);
    if (!strcmp(spec, "tiny-preset")) {
        pd_unet_config cfg = pd_unet_config_default();
        if (pd_unet_config_preset(&cfg, "tiny", err) || pd_model_create(m, &cfg, 1, err)) return -1;
    } else if (pd_model_load(m, spec, err)) {
        return -1;
    }
    (void)dir;
    return 0;
}

static double rel_rmse(const double *x, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        double d = x[k] - ref[k];
        num += d * d;
        den += (double)ref[k] * ref[k];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

int main(int argc, char **argv) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : PD_SOURCE_DIR "/tests/fixtures/crosscheck");
    const double tol = argc > 2 ? atof(argv[2]) : 2e-5;
    pd_set_threads(2);
    char path[6000], line[8192];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: cannot open\n", path);
        return 1;
    }
    pd_error err = {{0}};
    pd_model *m = NULL;
    pd_denoiser *d = NULL;
    float *z = NULL, *labels = NULL;
    int shape[4] = {0}, nd = 0, n = 0, L = 0;
    double smin = 0.002, smax = 80;
    size_t dim = 0;
    printf("%-26s %-11s %5s %3s %4s %-8s %12s %12s\n", "case", "sampler", "steps", "afs", "nfe",
           "grid", "final rel", "worst step");
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (!strncmp(line, "model ", 6)) {
            tu_check(load_model(&m, dir, line, &err) == 0 && pd_denoiser_from_model(&d, m, 0, &err) == 0,
                     "model: %s", err.msg[0] ? err.msg : line);
            if (!d) return tu_finish();
            continue;
        }
        if (!strncmp(line, "noise ", 6)) {
            char name[256];
            sscanf(line, "noise %255s", name);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            tu_check(pd_npy_read(path, &z, shape, &nd, &err) == 0 && nd == 4, "noise %s", err.msg);
            if (!z) return tu_finish();
            n = shape[0];
            dim = (size_t)shape[1] * shape[2] * shape[3];
            continue;
        }
        if (!strncmp(line, "labels ", 7)) {
            L = m ? m->cfg.label_dim : 0;
            if (strstr(line, "cycle") && L > 0) {
                labels = calloc((size_t)n * L, sizeof(float));
                for (int i = 0; i < n; i++) labels[(size_t)i * L + i % L] = 1.0f;
            }
            continue;
        }
        if (!strncmp(line, "sigma ", 6)) {
            sscanf(line, "sigma %lf %lf", &smin, &smax);
            continue;
        }
        if (strncmp(line, "case ", 5) || !d || !z) continue;

        char name[64] = "", v[4096];
        sscanf(line, "case %63s", name);
        pd_sample_params p = pd_sample_default_params();
        field(line, "sampler", v, sizeof v);
        p.sampler = (pd_sampler_kind)pd_sampler_from_name(v);
        field(line, "steps", v, sizeof v);
        p.steps = atoi(v);
        field(line, "grid", v, sizeof v);
        p.sched.grid = (pd_grid_kind)pd_grid_from_name(v);
        field(line, "rho", v, sizeof v);
        p.sched.rho = atof(v);
        p.sched.sigma_min = smin;
        p.sched.sigma_max = smax;
        p.sched.end_at_zero = 0;   /* diff-sampler stops at sigma_min */
        field(line, "afs", v, sizeof v);
        p.afs = atoi(v);
        field(line, "max_order", v, sizeof v);
        if (v[0]) p.max_order = atoi(v);
        field(line, "thr", v, sizeof v);
        if (v[0]) p.thresholding = atof(v);
        pd_amed_predictor *pred = NULL;
        field(line, "predictor", v, sizeof v);
        if (v[0]) {
            snprintf(path, sizeof path, "%s%s%s", v[0] == '/' ? "" : dir, v[0] == '/' ? "" : "/", v);
            if (pd_amed_predictor_load(&pred, path, &err)) {
                tu_check(0, "%s: predictor %s", name, err.msg);
                continue;
            }
            field(line, "kind", v, sizeof v);
            if (v[0]) pred->info.kind = (pd_amed_kind)pd_amed_kind_from_name(v);
            p.amed = pred;
        }
        if ((int)p.sampler < 0 || (int)p.sched.grid < 0 || p.steps < 1 || p.steps > MAX_STEPS) {
            tu_check(0, "%s: bad case line", name);
            pd_amed_predictor_free(pred);
            continue;
        }
        /* The grid: pixdiff's own against the reference's. */
        double sig[MAX_STEPS + 1], ref_sig[MAX_STEPS + 1];
        int ns = 0;
        field(line, "sigmas", v, sizeof v);
        for (char *s = v, *e; *s && ns <= MAX_STEPS; s = *e ? e + 1 : e) {
            ref_sig[ns++] = strtod(s, &e);
            if (e == s) break;
        }
        double gerr = 0;
        int grc = pd_sigma_grid(sig, p.steps, &p.sched, &err);
        for (int k = 0; k < ns && k <= p.steps; k++) gerr = fmax(gerr, fabs(sig[k] - ref_sig[k]) / ref_sig[k]);
        tu_check(grc == 0 && ns == p.steps + 1 && gerr <= 1e-6, "%s: grid of %d steps matches the "
                 "reference's (max rel diff %.1e)", name, p.steps, gerr);
        /* The trajectory. */
        float *ref = NULL;
        int rs[4] = {0}, rnd = 0;
        field(line, "traj", v, sizeof v);
        snprintf(path, sizeof path, "%s/%s", dir, v);
        /* [steps + 1, n, C, H, W]: pd_npy_read takes up to 4 dims, so read the raw file by hand. */
        FILE *tf = fopen(path, "rb");
        size_t count = (size_t)n * dim, want = (size_t)(p.steps + 1) * count;
        if (tf) {
            unsigned char hdr[10];
            if (fread(hdr, 1, 10, tf) == 10) {
                size_t hl = hdr[8] | (size_t)hdr[9] << 8;
                fseek(tf, (long)(10 + hl), SEEK_SET);
                ref = malloc(sizeof(float) * want);
                if (ref && fread(ref, sizeof(float), want, tf) != want) free(ref), ref = NULL;
            }
            fclose(tf);
        }
        (void)rs, (void)rnd;
        if (!ref) {
            tu_check(0, "%s: cannot read %s as %zu floats", name, path, want);
            pd_amed_predictor_free(pred);
            continue;
        }
        traj_ctx t = {calloc(want, sizeof(double)), count};
        float *x = malloc(sizeof(float) * count);
        memcpy(x, z, sizeof(float) * count);
        for (size_t k = 0; k < count; k++) t.states[k] = (double)sig[0] * z[k];
        p.trajectory = on_traj;
        p.user = &t;
        pd_sample_stats st;
        int rc = pd_sample(d, &p, x, labels, NULL, n, &st, &err);
        double worst = 0, fin = NAN;
        if (rc == 0) {
            for (int k = 1; k <= p.steps; k++) {
                double e = rel_rmse(t.states + (size_t)k * count, ref + (size_t)k * count, count);
                worst = fmax(worst, e);
                if (k == p.steps) fin = e;
            }
        }
        printf("%-26s %-11s %5d %3d %4d %-8s %12.3e %12.3e%s\n", name, pd_sampler_name(p.sampler),
               p.steps, p.afs, rc == 0 ? st.nfe : -1, pd_grid_name(p.sched.grid), fin, worst,
               rc ? "  (failed)" : "");
        tu_check(rc == 0 && worst <= tol, "%s: pixdiff's trajectory within %.0e of diff-sampler's at "
                 "every step (worst %.2e) %s", name, tol, worst, rc ? err.msg : "");
        free(t.states);
        free(x);
        free(ref);
        pd_amed_predictor_free(pred);
    }
    fclose(f);
    free(z);
    free(labels);
    pd_denoiser_free(d);
    pd_model_free(m);
    return tu_finish();
}
