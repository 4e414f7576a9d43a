/* test_sweep.c — pd_sweep_run (sweep/) on analytic:gaussian, where the probability-flow ODE has a
 * closed-form solution (pd_gaussian_ode_exact):
 *   - a sweep writes results.jsonl (one line per cell), results.csv, results.md and the plots;
 *   - the cached Heun-500 reference matches the exact ODE solution, and each cell's traj_rmse
 *     matches an independent run of pd_sample scored against the exact solution;
 *   - budgets are "at most N": heun's recorded NFE is 2 steps - 1 <= budget;
 *   - a re-run samples nothing and leaves results.jsonl byte-identical; a torn last line (a kill
 *     while appending) is cut off; an abort mid-cell loses only that cell and a re-run finishes;
 *   - a changed sweep file runs only the cells whose settings are new;
 *   - a dry run lists the cells and writes nothing;
 *   - validation errors name file:line and the key, before anything is written.
 */
#include "pixdiff.h"
#include "tests/testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    if (len) *len = got;
    return s;
}

static int count_lines(const char *path) {
    size_t len = 0;
    char *s = read_all(path, &len);
    if (!s) return -1;
    int n = 0;
    for (size_t i = 0; i < len; i++) n += s[i] == '\n';
    free(s);
    return n;
}

/* The number in `"name": <number>` of the first line of text containing all of `needles`. */
static double field_of_line(const char *text, const char *const *needles, const char *name) {
    const char *line = text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *l = strndup(line, len);
        int ok = 1;
        for (int k = 0; needles[k] && ok; k++) ok = strstr(l, needles[k]) != NULL;
        if (ok) {
            char pat[64];
            snprintf(pat, sizeof pat, "\"%s\": ", name);
            const char *p = strstr(l, pat);
            double v = p ? strtod(p + strlen(pat), NULL) : NAN;
            free(l);
            return v;
        }
        free(l);
        line = end ? end + 1 : NULL;
    }
    return NAN;
}

typedef struct logbuf {
    int lines, cells_listed;
    int abort_after;   /* progress calls before abort (<= 0: never) */
    int progress_calls;
} logbuf;

static void on_log(void *user, const char *line) {
    logbuf *b = user;
    b->lines++;
    if (!strncmp(line, "cell ", 5)) b->cells_listed++;
}
static void on_progress(void *user, const pd_progress *p) {
    logbuf *b = user;
    (void)p;
    b->progress_calls++;
}
static int on_abort(void *user) {
    logbuf *b = user;
    return b->abort_after > 0 && b->progress_calls >= b->abort_after;
}

static int run(const char *yaml, logbuf *lb, int dry, pd_sweep_summary *sum, pd_error *err) {
    pd_sweep_options o = pd_sweep_default_options();
    o.dry_run = dry;
    o.log = on_log;
    o.progress = on_progress;
    o.abort = on_abort;
    o.user = lb;
    err->msg[0] = 0;
    return pd_sweep_run(yaml, &o, sum, err);
}

static const char *base_yaml =
    "# test sweep\n"
    "model: analytic:gaussian:res=8:ch=1:std=0.5\n"
    "samplers:\n"
    "  - euler\n"
    "  - name: heun\n"
    "  - name: dpmpp-2m\n"
    "    options: {max_order: 2}\n"
    "nfe: [3, 5, 8]\n"
    "n: 12\n"
    "batch: 5\n"
    "seed: 7\n"
    "metrics: [trajectory]\n"
    "output: %s/out\n";

/* Euler with `steps` steps on the Karras grid against the exact solution: the RMSE a correct
 * trajectory metric must report for the euler cell. */
static double euler_rmse_exact(int steps, int n, uint64_t seed) {
    pd_error err;
    pd_denoiser *d = NULL;
    if (pd_denoiser_analytic(&d, "analytic:gaussian:res=8:ch=1:std=0.5", &err)) return NAN;
    size_t dim = 64;
    float *x = malloc(sizeof(float) * dim * n), *z = malloc(sizeof(float) * dim * n),
          *ex = malloc(sizeof(float) * dim * n);
    uint64_t *seeds = malloc(sizeof(uint64_t) * n);
    for (int i = 0; i < n; i++) {
        seeds[i] = seed + (uint64_t)i;
        pd_randn(z + i * dim, dim, seeds[i], 0);
    }
    memcpy(x, z, sizeof(float) * dim * n);
    pd_sample_params p = pd_sample_default_params();
    p.sampler = PD_SAMPLER_EULER;
    p.sched.grid = PD_GRID_KARRAS;
    p.steps = steps;
    double r = NAN;
    if (pd_sample(d, &p, x, NULL, seeds, n, NULL, &err) == 0) {
        /* x(0) from x(sigma_max) = sigma_max z: the closed form. */
        for (size_t j = 0; j < dim * n; j++) z[j] *= (float)d->sigma_max;
        pd_gaussian_ode_exact(ex, z, 0, 0.5, d->sigma_max, 0, dim * n);
        double s = 0;
        for (size_t j = 0; j < dim * n; j++) s += ((double)x[j] - ex[j]) * ((double)x[j] - ex[j]);
        r = sqrt(s / (double)(dim * n));
    }
    free(x);
    free(z);
    free(ex);
    free(seeds);
    pd_denoiser_free(d);
    return r;
}

/* The reference's sigma = 0 array for the Karras grid (the .key naming sigma 80 and 0.002)
 * against the exact solution; returns the max abs error, or NaN if not found. */
static double reference_error(const char *out, int n, uint64_t seed) {
    char rdir[256];
    snprintf(rdir, sizeof rdir, "%s/reference", out);
    DIR *dd = opendir(rdir);
    if (!dd) return NAN;
    struct dirent *e;
    double worst = NAN;
    while ((e = readdir(dd))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".key")) continue;
        char kp[512];
        snprintf(kp, sizeof kp, "%s/%s", rdir, e->d_name);
        char *key = read_all(kp, NULL);
        int karras = key && strstr(key, "sigma=80..0.002|");
        free(key);
        if (!karras) continue;
        char zp[512];
        snprintf(zp, sizeof zp, "%s/%.*s-zero.npy", rdir, (int)(l - 4), e->d_name);
        float *ref = NULL;
        int shape[4], nd;
        pd_error err;
        if (pd_npy_read(zp, &ref, shape, &nd, &err)) break;
        size_t dim = 64;
        float *z = malloc(sizeof(float) * dim * n), *ex = malloc(sizeof(float) * dim * n);
        for (int i = 0; i < n; i++) pd_randn(z + i * dim, dim, seed + (uint64_t)i, 0);
        for (size_t j = 0; j < dim * n; j++) z[j] *= 80.0f;
        pd_gaussian_ode_exact(ex, z, 0, 0.5, 80, 0, dim * n);
        worst = 0;
        for (size_t j = 0; j < dim * n; j++) worst = fmax(worst, fabs((double)ref[j] - ex[j]));
        free(z);
        free(ex);
        free(ref);
        break;
    }
    closedir(dd);
    return worst;
}

/* A bad sweep file must fail with "FILE:LINE: KEY..." and create nothing. */
static void expect_invalid(const char *name, const char *body, int line, const char *key) {
    char path[128], want[256], out[128];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    snprintf(out, sizeof out, "%s/bad-out", dir);
    char text[2048];
    snprintf(text, sizeof text, "%soutput: %s\n", body, out);
    write_file(path, text);
    logbuf lb = {0};
    pd_error err;
    pd_sweep_summary sum;
    int rc = run(path, &lb, 0, &sum, &err);
    snprintf(want, sizeof want, "%s:%d: %s", path, line, key);
    int ok = rc == -1 && strstr(err.msg, want) == err.msg && !exists(out);
    if (exists(out)) { /* keep the next case independent of this failure */
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
        if (system(cmd) != 0) printf("could not remove %s\n", out);
    }
    tu_check(ok, "%s: %s", name, err.msg);
    if (!ok) printf("     wanted a message starting '%s'\n", want);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/pd-test-sweep.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char yaml[128], out[128], jsonl[192], csv[192], md[192], plot[192];
    snprintf(yaml, sizeof yaml, "%s/sweep.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(jsonl, sizeof jsonl, "%s/results.jsonl", out);
    snprintf(csv, sizeof csv, "%s/results.csv", out);
    snprintf(md, sizeof md, "%s/results.md", out);
    snprintf(plot, sizeof plot, "%s/plot_traj_rmse.png", out);
    char text[2048];
    snprintf(text, sizeof text, base_yaml, dir);
    write_file(yaml, text);
    pd_error err;
    pd_sweep_summary sum;

    /* ---- dry run: lists 3 + 2 + 3 cells (heun: budgets 3 and 5 give 2 and 3 steps, 8 gives 4
     * steps, NFE 7), writes nothing */
    logbuf lb = {0};
    int rc = run(yaml, &lb, 1, &sum, &err);
    tu_check(rc == 0 && lb.cells_listed == 9 && sum.cells == 9 && !exists(out),
             "dry run: %d cells listed (want 9), output folder %s: %s", lb.cells_listed,
             exists(out) ? "created" : "absent", rc ? err.msg : "ok");

    /* ---- the sweep */
    memset(&lb, 0, sizeof lb);
    rc = run(yaml, &lb, 0, &sum, &err);
    tu_check(rc == 0 && sum.ran == 9 && sum.already_done == 0, "sweep runs 9 cells: %s (ran %d)",
             rc ? err.msg : "ok", sum.ran);
    tu_check(count_lines(jsonl) == 9, "results.jsonl has 9 lines (%d)", count_lines(jsonl));
    tu_check(count_lines(csv) == 10, "results.csv has a header and 9 rows (%d lines)", count_lines(csv));
    char *mdtext = read_all(md, NULL);
    tu_check(mdtext && strstr(mdtext, "| sampler | 3 | 5 | 8 |") && strstr(mdtext, "| heun |") &&
                 strstr(mdtext, "9 of 9 cells done"),
             "results.md has the headline table and counts");
    free(mdtext);
    {
        float *img = NULL;
        int C, H, W;
        tu_check(pd_png_read(plot, &img, &C, &H, &W, &err) == 0 && W == 800 && H == 560,
                 "plot_traj_rmse.png is an 800x560 PNG");
        free(img);
        char p2[192];
        snprintf(p2, sizeof p2, "%s/plot_traj_psnr.png", out);
        tu_check(exists(p2), "plot_traj_psnr.png written");
    }

    char *jtext = read_all(jsonl, NULL);
    /* heun: budget 8 -> 4 steps, NFE 7 recorded; budget 3 -> 2 steps, NFE 3. */
    const char *heun8[] = {"\"sampler\": \"heun\"", "\"nfe_budget\": 8,", NULL};
    double heun_nfe = field_of_line(jtext, heun8, "nfe"), heun_steps = field_of_line(jtext, heun8, "steps");
    tu_check(heun_nfe == 7 && heun_steps == 4, "heun budget 8: 4 steps, NFE 7 (got %g, %g)", heun_steps,
             heun_nfe);
    /* The reference is the exact ODE solution to within Heun-500's error. */
    double ref_err = reference_error(out, 12, 7);
    printf("reference (heun 500, karras) vs exact ODE solution: max abs err %.3g (tol 2e-3)\n", ref_err);
    tu_check(ref_err < 2e-3, "Heun-500 reference matches the closed form");
    /* Each euler cell's traj_rmse equals an independent computation against the exact solution. */
    int steps_list[] = {3, 5, 8};
    for (int k = 0; k < 3; k++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"nfe_budget\": %d,", steps_list[k]);
        const char *eul[] = {"\"sampler\": \"euler\"", needle, NULL};
        double got = field_of_line(jtext, eul, "traj_rmse");
        double want = euler_rmse_exact(steps_list[k], 12, 7);
        printf("euler %d steps: traj_rmse %.6g, against the exact solution %.6g (abs err %.2g, tol 2e-3)\n",
               steps_list[k], got, want, fabs(got - want));
        tu_check(fabs(got - want) < 2e-3, "euler %d steps: trajectory RMSE matches", steps_list[k]);
    }
    const char *e3[] = {"\"sampler\": \"euler\"", "\"nfe_budget\": 3,", NULL};
    const char *e8[] = {"\"sampler\": \"euler\"", "\"nfe_budget\": 8,", NULL};
    tu_check(field_of_line(jtext, e8, "traj_rmse") < field_of_line(jtext, e3, "traj_rmse"),
             "euler: more steps, smaller error");
    double outside = field_of_line(jtext, e8, "outside_denoiser");
    tu_check(outside >= 0 && outside <= 1, "outside_denoiser is a fraction (%g)", outside);
    free(jtext);

    /* ---- re-run: nothing sampled, results.jsonl unchanged */
    size_t len0 = 0, len1 = 0;
    char *before = read_all(jsonl, &len0);
    memset(&lb, 0, sizeof lb);
    rc = run(yaml, &lb, 0, &sum, &err);
    char *after = read_all(jsonl, &len1);
    tu_check(rc == 0 && sum.ran == 0 && sum.already_done == 9 && len0 == len1 && !memcmp(before, after, len0),
             "re-run skips all 9 cells and leaves results.jsonl as it was: %s", rc ? err.msg : "ok");
    free(after);

    /* ---- a torn last line (killed while appending) is cut off */
    FILE *f = fopen(jsonl, "a");
    fputs("{\"key\": \"model=analytic:gaussian|sampler=eu", f);
    fclose(f);
    rc = run(yaml, &lb, 0, &sum, &err);
    after = read_all(jsonl, &len1);
    tu_check(rc == 0 && sum.ran == 0 && len1 == len0 && !memcmp(before, after, len0),
             "a torn last line is cut and nothing re-runs: %s", rc ? err.msg : "ok");
    free(after);

    /* ---- abort in the middle of a cell: that cell is lost, the rest kept; a re-run finishes */
    char yaml2[2048];
    snprintf(yaml2, sizeof yaml2, base_yaml, dir);
    char *p = strstr(yaml2, "nfe: [3, 5, 8]");
    memcpy(p, "nfe: [3, 5, 9]", 14); /* budget 9: euler 9, heun 5 steps, dpmpp-2m 9: 3 new cells */
    write_file(yaml, yaml2);
    memset(&lb, 0, sizeof lb);
    lb.abort_after = 12; /* after the first new cell (9 steps x 3 batches = 27 calls) starts */
    rc = run(yaml, &lb, 0, &sum, &err);
    int lines_after_abort = count_lines(jsonl);
    tu_check(rc == -1 && strstr(err.msg, "interrupted") && lines_after_abort == 9,
             "abort mid-cell: fails '%s', %d lines kept (9)", err.msg, lines_after_abort);
    memset(&lb, 0, sizeof lb);
    rc = run(yaml, &lb, 0, &sum, &err);
    /* Budget 8's cells left the grid (they stay in results.jsonl); 6 cells are done already. */
    tu_check(rc == 0 && sum.ran == 3 && sum.already_done == 6 && count_lines(jsonl) == 12,
             "changed sweep: only the 3 new cells run (ran %d, done %d, %d lines): %s", sum.ran,
             sum.already_done, count_lines(jsonl), rc ? err.msg : "ok");
    /* Every key appears once. */
    {
        char *t = read_all(jsonl, NULL);
        int dup = 0, n = 0;
        char *keys[64];
        for (char *l = t; l && *l && n < 64;) {
            char *nl = strchr(l, '\n');
            *nl = 0;
            char *k = strstr(l, "\"key\": \"");
            char *e = k ? strchr(k + 8, '"') : NULL;
            keys[n] = k && e ? strndup(k + 8, (size_t)(e - k - 8)) : strdup("");
            for (int j = 0; j < n; j++) dup += !strcmp(keys[j], keys[n]);
            n++;
            l = nl + 1;
        }
        tu_check(dup == 0 && n == 12, "12 lines, no key twice (%d duplicates)", dup);
        for (int j = 0; j < n; j++) free(keys[j]);
        free(t);
    }
    free(before);

    /* ---- reuse: another folder's cells with the same key are copied, not run again. Budgets 3, 5
     * and 9 are done in out/ (9 cells); budget 10 adds euler 10 and dpmpp-2m 10 (heun's 10 is its
     * 9: 5 steps). The copies carry the same numbers. */
    {
        char ryaml[160], rout[160], rj[200];
        snprintf(ryaml, sizeof ryaml, "%s/reuse.yaml", dir);
        snprintf(rout, sizeof rout, "%s/reuse-out", dir);
        /* base_yaml with budget 10 added, another output folder, and reuse of out/ */
        snprintf(text, sizeof text,
                 "name: reuse\nmodel: analytic:gaussian:res=8:ch=1:std=0.5\nsamplers:\n  - euler\n  - name: heun\n"
                 "  - name: dpmpp-2m\n    options: {max_order: 2}\nnfe: [3, 5, 9, 10]\nn: 12\nbatch: 5\nseed: 7\n"
                 "metrics: [trajectory]\nreuse: [%s]\noutput: %s\n",
                 out, rout);
        write_file(ryaml, text);
        memset(&lb, 0, sizeof lb);
        rc = run(ryaml, &lb, 1, &sum, &err);
        tu_check(rc == 0 && sum.cells == 11 && sum.already_done == 9 && !exists(rout),
                 "reuse, dry run: 9 of 11 cells would be copied, nothing written (%d of %d): %s", sum.already_done,
                 sum.cells, rc ? err.msg : "ok");
        memset(&lb, 0, sizeof lb);
        rc = run(ryaml, &lb, 0, &sum, &err);
        snprintf(rj, sizeof rj, "%s/results.jsonl", rout);
        char *t = read_all(rj, NULL), *orig = read_all(jsonl, NULL);
        const char *e5[] = {"\"sampler\": \"euler\"", "\"nfe_budget\": 5,", NULL};
        double copied = t ? field_of_line(t, e5, "traj_rmse") : NAN, first = orig ? field_of_line(orig, e5, "traj_rmse") : NAN;
        tu_check(rc == 0 && sum.ran == 2 && sum.already_done == 9 && count_lines(rj) == 11 && copied == first &&
                     t && strstr(t, "\"sweep\": \"reuse\""),
                 "reuse: 9 cells copied (euler 5: %.6g = %.6g), 2 run, 11 lines: %s", copied, first, rc ? err.msg : "ok");
        free(t);
        free(orig);
    }

    /* ---- AMED with a predictor per budget: budget 4 has a file, 6 has none (no cell, "n/a"),
     * and a file trained for another NFE is an error */
    {
        pd_amed_info info;
        memset(&info, 0, sizeof info);
        info.kind = PD_AMED_SOLVER;
        info.steps = 2;
        info.nfe = 4;
        info.afs = 0;
        info.grid = PD_GRID_VP_TIME;
        info.rho = 1;
        info.sigma_min = 0.002;
        info.sigma_max = 80;
        info.s_dir = 0.01;
        info.max_order = 1;
        snprintf(info.teacher, sizeof info.teacher, "heun");
        info.teacher_m = 1;
        pd_amed_predictor *pr = NULL;
        char ppath[160], ayaml[160], aout[160], amd[200];
        snprintf(ppath, sizeof ppath, "%s/amed-nfe4.safetensors", dir);
        int ok = pd_amed_predictor_create(&pr, &info, 0, 1, &err) == 0 &&
                 pd_amed_predictor_save(pr, ppath, &err) == 0;
        pd_amed_predictor_free(pr);
        tu_check(ok, "AMED predictor written: %s", ok ? "ok" : err.msg);
        snprintf(ayaml, sizeof ayaml, "%s/amed.yaml", dir);
        snprintf(aout, sizeof aout, "%s/amed-out", dir);
        snprintf(text, sizeof text,
                 "model: analytic:gaussian:res=8:ch=1:std=0.5\nsamplers:\n  - name: amed\n"
                 "    predictor: %s/amed-nfe{nfe}.safetensors\n  - dpm2\nnfe: [4, 6]\nn: 6\n"
                 "metrics: [trajectory]\noutput: %s\n",
                 dir, aout);
        write_file(ayaml, text);
        memset(&lb, 0, sizeof lb);
        rc = run(ayaml, &lb, 0, &sum, &err);
        snprintf(amd, sizeof amd, "%s/results.md", aout);
        char *t = read_all(amd, NULL);
        tu_check(rc == 0 && sum.cells == 3 && sum.ran == 3 && t && strstr(t, "| amed | ") && strstr(t, " n/a |"),
                 "amed: budget 4 from its predictor, budget 6 without one is n/a (%d cells): %s", sum.cells,
                 rc ? err.msg : "ok");
        free(t);
        snprintf(jsonl, sizeof jsonl, "%s/results.jsonl", aout);
        t = read_all(jsonl, NULL);
        const char *am[] = {"\"sampler\": \"amed\"", NULL};
        tu_check(t && field_of_line(t, am, "nfe") == 4 && field_of_line(t, am, "steps") == 2 && strstr(t, "predictor=sha256:"),
                 "amed cell: 2 steps, NFE 4, the predictor's hash in the key");
        free(t);
        char p6[160];
        snprintf(p6, sizeof p6, "%s/amed-nfe6.safetensors", dir);
        if (rename(ppath, p6) == 0) {
            rc = run(ayaml, &lb, 0, &sum, &err);
            tu_check(rc == -1 && strstr(err.msg, "trained for NFE 4, not the budget 6") && strstr(err.msg, "samplers[0].predictor"),
                     "a predictor for another NFE fails: %s", err.msg);
        }
    }

    /* ---- variants: an SNR-shifted grid (every sigma x 8/4) is a second series with its own cell
     * and its own reference (from sigma 160); both errors are Heun's at 8 steps, ~0.2 here */
    {
        char vyaml[160], vout[160], vj[200];
        snprintf(vyaml, sizeof vyaml, "%s/var.yaml", dir);
        snprintf(vout, sizeof vout, "%s/var-out", dir);
        snprintf(text, sizeof text,
                 "model: analytic:gaussian:res=8:ch=1:std=0.5\nsamplers: [heun]\nnfe: [15]\nn: 4\n"
                 "metrics: [trajectory]\nvariants:\n  - name: plain\n  - name: shifted\n"
                 "    shift: {kind: scale, base: 4}\noutput: %s\n",
                 vout);
        write_file(vyaml, text);
        memset(&lb, 0, sizeof lb);
        rc = run(vyaml, &lb, 0, &sum, &err);
        snprintf(vj, sizeof vj, "%s/results.jsonl", vout);
        char *t = read_all(vj, NULL);
        const char *pl[] = {"\"variant\": \"plain\"", NULL}, *sh[] = {"\"variant\": \"shifted\"", NULL};
        double e_plain = t ? field_of_line(t, pl, "traj_rmse") : NAN, e_shift = t ? field_of_line(t, sh, "traj_rmse") : NAN;
        printf("heun 8 steps: traj_rmse plain %.4g, shifted grid %.4g\n", e_plain, e_shift);
        tu_check(rc == 0 && sum.ran == 2 && t && strstr(t, "\"shift\": \"scale\"") && strstr(t, "\"shift_base\": 4,") &&
                     e_plain > 0 && e_plain < 0.5 && e_shift > 0 && e_shift < 0.5 && e_plain != e_shift,
                 "two variants, two cells with different settings and small errors: %s", rc ? err.msg : "ok");
        free(t);
    }

    /* ---- validation: file:line: key, nothing written */
    const char *head = "model: analytic:gaussian:res=8:ch=1\n";
    char b[1024];
    snprintf(b, sizeof b, "%ssamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\nbogus: 1\n", head);
    expect_invalid("unknown top-level key", b, 6, "bogus: unknown key");
    snprintf(b, sizeof b, "%ssamplers:\n  - name: hune\nnfe: [3]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("unknown sampler", b, 3, "samplers[0].name: unknown sampler 'hune'");
    snprintf(b, sizeof b, "%ssamplers: [euler]\nnfe: [3]\nn: many\nmetrics: [trajectory]\n", head);
    expect_invalid("wrong type", b, 4, "n: expected an integer");
    snprintf(b, sizeof b, "%ssamplers:\n  - name: heun\n    options:\n      eta: 0.5\nnfe: [3]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("option the sampler does not read", b, 5, "samplers[0].options.eta: not read by the heun sampler");
    /* Stopping at sigma_min, one heun step costs 2 evaluations (into sigma = 0 it costs 1). */
    snprintf(b, sizeof b, "%ssamplers:\n  - euler\n  - {name: heun, end: sigma-min}\nnfe: [4,\n  1]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("impossible budget", b, 6, "nfe[1]: budget 1 fits no step of samplers[1] 'heun end=sigma-min'");
    snprintf(b, sizeof b, "%ssamplers:\n  - name: euler\n    schedule: karas\nnfe: [3]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("unknown schedule", b, 4, "samplers[0].schedule: unknown schedule 'karas'");
    snprintf(b, sizeof b, "%ssamplers:\n  - name: dpmpp-2m\n    rho: 3\nnfe: [3]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("rho on a grid without one", b, 4, "samplers[0].rho: the logsnr schedule has no rho");
    snprintf(b, sizeof b, "%ssamplers: [euler, euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("duplicate labels", b, 2, "samplers: items 0 and 1 have the same label");
    snprintf(b, sizeof b, "%ssamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory, fid]\n", head);
    expect_invalid("unknown metric", b, 5, "metrics: unknown metric 'fid'");
    snprintf(b, sizeof b, "%ssamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [fd]\n", head);
    expect_invalid("classifier metric on an analytic model", b, 5, "metrics: 'fd' compares");
    snprintf(b, sizeof b, "%ssamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\nvariants:\n  - name: s\n    shift: {kind: sideways}\n", head);
    expect_invalid("unknown shift kind", b, 8, "variants[0].shift: unknown shift kind 'sideways'");
    snprintf(b, sizeof b, "samplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\n");
    expect_invalid("missing model", b, 1, "model: missing");
    snprintf(b, sizeof b, "%ssamplers:\n  - name: amed\n    predictor: amed.safetensors\nnfe: [4]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("predictor without {nfe}", b, 4, "samplers[0].predictor: must contain {nfe}");
    snprintf(b, sizeof b, "%ssamplers:\n  - name: amed\n    predictor: a{nfe}.st\n    schedule: karras\nnfe: [4]\nn: 4\nmetrics: [trajectory]\n", head);
    expect_invalid("schedule with a predictor", b, 5, "samplers[0].schedule: set by the predictor file");
    snprintf(b, sizeof b, "%ssamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\nreuse: %s\n", head, yaml);
    expect_invalid("reuse of a file", b, 6, "reuse: ");
    snprintf(b, sizeof b, "model: no-such-model.safetensors\nsamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\n");
    expect_invalid("model file not found", b, 1, "model: no-such-model.safetensors: No such file");
    /* features: inception (FID/KID on Inception features) and its keys */
    unsetenv("PIXDIFF_INCEPTION");
    const char *fdbody = "samplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [fd]\n";
    snprintf(b, sizeof b, "%s%sfeatures: inceptoin\n", head, fdbody);
    expect_invalid("unknown feature space", b, 6, "features: expected classifier or inception, got 'inceptoin'");
    snprintf(b, sizeof b, "%s%sinception: w.safetensors\n", head, fdbody);
    expect_invalid("inception key without features: inception", b, 6,
                   "inception: only read with features: inception");
    snprintf(b, sizeof b, "%s%sfeatures: inception\ninception: w.safetensors\n", head, fdbody);
    expect_invalid("features: inception without fid_ref", b, 6, "fid_ref: features: inception needs a reference");
    snprintf(b, sizeof b, "%s%sfeatures: inception\nfid_ref: ref.npz\n", head, fdbody);
    expect_invalid("features: inception without weights", b, 6,
                   "inception: features: inception needs the FID Inception weights");
    snprintf(b, sizeof b, "%s%sfeatures: inception\nfid_ref: ref.npz\nfid_prep: tf\n", head, fdbody);
    expect_invalid("unknown fid_prep", b, 8, "fid_prep: expected pytorch-fid or edm, got 'tf'");
    snprintf(b, sizeof b, "%s%sfeatures: inception\ninception: no-such-inception.safetensors\nfid_ref: r.npz\n",
             head, fdbody);
    expect_invalid("missing Inception weights", b, 6, "inception: no-such-inception.safetensors: No such file");

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (getenv("PD_KEEP_SWEEP")) printf("kept %s\n", dir);
    else if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return tu_finish();
}
