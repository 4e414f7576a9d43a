/* test_progress.c — the one progress shape (pd_progress, pixdiff.h "progress") as every kind of
 * long call fills it: pd_sample and pd_generate (an analytic denoiser), pd_train (a tiny net on
 * 16 PNGs), pd_amed_train (the tiny preset), pd_distill_sid is left to test_sid/e2e_sid (it needs
 * a teacher and a classifier), pd_sweep_run (an analytic denoiser) and pd_convert_read/write (an
 * EDM snapshot of test_convert's fixtures). For each call, every report is checked:
 *   - what and unit are the call's, stage is never NULL;
 *   - within a stage, done never decreases and total does not change; 0 <= done <= total;
 *   - seconds never decrease; rate is > 0 or -1 (unknown), eta_seconds >= 0 or -1;
 *   - the last report has done == total (the call finished its work);
 *   - the call's own fields: a sampling call's batch/step arithmetic, train's loss, AMED's
 *     per-interval losses, a sweep's cells (done monotone across cells); the others' absent.
 */
#include "pixdiff.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef struct rec {
    const char *what, *unit;   /* expected */
    int calls, failed;
    char why[256];             /* the first violation */
    char stage[160];
    long long done, total;     /* of the last report */
    double seconds;
    int across;                /* 1: done never decreases across stages either (a sweep) */
    void (*own)(struct rec *r, const pd_progress *p);   /* the call's own fields */
    int n;                     /* a count the own-check keeps */
} rec;

static void violate(rec *r, const char *fmt, long long a, long long b) {
    if (r->failed++) return;
    snprintf(r->why, sizeof r->why, fmt, a, b);
}

static void on_progress(void *user, const pd_progress *p) {
    rec *r = user;
    if (!p->what || strcmp(p->what, r->what)) violate(r, "what is not the call's (%lld, %lld)", 0, 0);
    if (!p->unit || !p->stage) violate(r, "no unit or stage (%lld, %lld)", 0, 0);
    if (r->unit && p->unit && strcmp(p->unit, r->unit)) violate(r, "unexpected unit (%lld %lld)", 0, 0);
    int same = r->calls > 0 && p->stage && !strcmp(p->stage, r->stage);
    if ((same || (r->across && r->calls > 0)) && p->done < r->done)
        violate(r, "done went back from %lld to %lld", r->done, p->done);
    if (same && p->total != r->total) violate(r, "total changed from %lld to %lld", r->total, p->total);
    if (p->done < 0 || p->total <= 0 || p->done > p->total)
        violate(r, "done %lld of total %lld", p->done, p->total);
    if (p->seconds < r->seconds || p->seconds < 0) violate(r, "seconds went back (%lld, %lld)", 0, 0);
    if (!(p->rate > 0 || p->rate == -1)) violate(r, "rate neither > 0 nor -1 (%lld, %lld)", 0, 0);
    if (!(p->eta_seconds >= 0 || p->eta_seconds == -1)) violate(r, "eta neither >= 0 nor -1 (%lld, %lld)", 0, 0);
    snprintf(r->stage, sizeof r->stage, "%s", p->stage ? p->stage : "");
    r->done = p->done;
    r->total = p->total;
    r->seconds = p->seconds;
    r->calls++;
    if (r->own) r->own(r, p);
}

/* Prints and checks the tally of one call. */
static void verdict(const char *name, int rc, const pd_error *err, const rec *r) {
    tu_check(rc == 0 && r->calls > 0 && !r->failed && r->done == r->total,
             "%s: %d reports, the last %lld of %lld %s%s%s%s", name, r->calls, r->done, r->total,
             r->unit ? r->unit : "", rc ? "; failed: " : "", rc ? err->msg : "",
             r->failed ? r->why : "");
}

static int absent_training(const pd_progress *p) {
    return isnan(p->loss) && isnan(p->loss_psi) && isnan(p->loss_theta) && isnan(p->fd) && !p->losses &&
           p->n_losses == 0;
}

/* ---------------------------------------------------------------- sample, generate */

static void own_sample(rec *r, const pd_progress *p) {
    if (p->done != p->step || p->total != p->steps || p->batch != 1 || p->batches != 1 ||
        p->images != r->n || p->images_done != (p->step == p->steps ? r->n : 0) || !absent_training(p) ||
        p->cells)
        violate(r, "sample: step %lld of %lld, images or batch wrong", p->step, p->steps);
}

static void own_generate(rec *r, const pd_progress *p) {
    if (p->done != (long long)(p->batch - 1) * p->steps + p->step ||
        p->total != (long long)p->batches * p->steps || p->images != r->n ||
        p->images_done > p->images || (p->done == p->total && p->images_done != p->images) ||
        !absent_training(p) || p->cells)
        violate(r, "generate: batch %lld step %lld inconsistent with done", p->batch, p->step);
}

static void test_sampling(void) {
    pd_error err = {{0}};
    pd_denoiser *d = NULL;
    if (pd_denoiser_analytic(&d, "analytic:gaussian:mu=0.3:std=0.5:res=8:ch=1", &err)) {
        tu_check(0, "analytic denoiser: %s", err.msg);
        return;
    }
    enum { N = 7 };
    float x[N * 64];
    uint64_t seeds[N];
    for (int i = 0; i < N; i++) seeds[i] = (uint64_t)i, pd_randn(x + i * 64, 64, seeds[i], 0);

    rec r = {.what = "sample", .unit = "steps"};
    r.own = own_sample;
    r.n = N;
    pd_sample_params sp = pd_sample_default_params();
    sp.steps = 6;
    sp.progress = on_progress;
    sp.user = &r;
    int rc = pd_sample(d, &sp, x, NULL, seeds, N, NULL, &err);
    verdict("pd_sample (6 steps)", rc, &err, &r);

    rec g = {.what = "generate", .unit = "steps"};
    g.own = own_generate;
    g.n = N;
    pd_generate_params gp = pd_generate_default_params();
    gp.sample.steps = 5;
    gp.batch = 3;   /* batches of 3, 3, 1 */
    gp.progress = on_progress;
    gp.user = &g;
    rc = pd_generate(d, &gp, 0, N, x, NULL, &err);
    verdict("pd_generate (3 batches x 5 steps)", rc, &err, &g);
    tu_check(g.calls == 15, "pd_generate: one report per step of each batch (%d of 15)", g.calls);
    pd_denoiser_free(d);
}

/* ---------------------------------------------------------------- train */

static void own_train(rec *r, const pd_progress *p) {
    if (!isfinite(p->loss) || !(p->loss >= 0) || !isnan(p->loss_psi) || p->losses || p->batches || p->cells)
        violate(r, "train: loss %lld missing or others present (%lld)", 0, 0);
}

static void test_train(const char *dir) {
    char png_dir[300], yaml[300], out[300], line[400];
    snprintf(png_dir, sizeof png_dir, "%s/pngs", dir);
    snprintf(yaml, sizeof yaml, "%s/tiny.yaml", dir);
    snprintf(out, sizeof out, "%s/train", dir);
    pd_error err = {{0}};
    int ok = mkdir(png_dir, 0777) == 0;
    for (int i = 0; ok && i < 16; i++) {
        float img[64];
        tu_fill(img, 64, 100 + (uint64_t)i, 1.0f);
        snprintf(line, sizeof line, "%s/%02d.png", png_dir, i);
        ok = pd_png_write_grid(line, img, 1, 1, 8, 8, 1, NULL, &err) == 0;
    }
    FILE *f = fopen(yaml, "w");
    if (f) {
        fprintf(f, "model:\n  img_resolution: 8\n  in_channels: 1\n  out_channels: 1\n  label_dim: 0\n"
                   "  model_channels: 8\n  channel_mult: [1, 2]\n  channel_mult_emb: 2\n  num_blocks: 1\n"
                   "  attn_resolutions: [4]\n  augment_dim: 0\n"
                   "data:\n  kind: png-folder\n  path: %s\n"
                   "training:\n  batch: 8\n  duration_images: 64\n  checkpoint_images: 64\n  seed: 1\n"
                   "  threads: 1\noutput:\n  dir: %s\n", png_dir, out);
        fclose(f);
    }
    if (!ok || !f) {
        tu_check(0, "train fixtures in %s: %s", dir, err.msg);
        return;
    }
    rec r = {.what = "train", .unit = "images"};
    r.own = own_train;
    pd_train_options o = pd_train_default_options();
    o.config_path = yaml;
    o.progress = on_progress;
    o.user = &r;
    int rc = pd_train(&o, &err);
    verdict("pd_train (tiny net, 64 images)", rc, &err, &r);
}

/* ---------------------------------------------------------------- AMED */

static void own_amed(rec *r, const pd_progress *p) {
    int finite = p->losses && p->n_losses == r->n;
    for (int k = 0; finite && k < p->n_losses; k++) finite = isfinite(p->losses[k]);
    if (!finite || !isnan(p->loss) || p->batches || p->cells)
        violate(r, "amed: %lld per-interval losses (want %lld), or others present", p->n_losses, r->n);
}

static void test_amed(const char *dir) {
    char model[300], out[300];
    snprintf(model, sizeof model, "%s/tiny.safetensors", dir);
    snprintf(out, sizeof out, "%s/pred.safetensors", dir);
    pd_error err = {{0}};
    pd_unet_config c;
    pd_model *m = NULL;
    if (pd_unet_config_preset(&c, "tiny", &err) || pd_model_create(&m, &c, 5, &err) ||
        pd_model_save(m, model, &err)) {
        tu_check(0, "tiny model: %s", err.msg);
        pd_model_free(m);
        return;
    }
    pd_model_free(m);
    rec r = {.what = "amed", .unit = "images"};
    r.own = own_amed;
    r.n = 2;   /* NFE 3: AFS with 2 intervals */
    pd_amed_train_options o = pd_amed_train_default_options();
    o.model_path = model;
    o.nfe = 3;
    o.batch = 4;
    o.images = 12;
    o.micro_batch = 4;
    o.out_path = out;
    o.progress = on_progress;
    o.user = &r;
    int rc = pd_amed_train(&o, &err);
    verdict("pd_amed_train (tiny, 3 batches of 4)", rc, &err, &r);
    tu_check(r.calls == 3, "pd_amed_train: one report per batch (%d of 3)", r.calls);
}

/* ---------------------------------------------------------------- sweep */

static void own_sweep(rec *r, const pd_progress *p) {
    if (p->cells != 4 || p->cell < 1 || p->cell > p->cells || p->todo != 4 || p->todo_index != p->cell ||
        !p->stage[0] || p->cell < r->n || !absent_training(p) || p->stage_seconds < 0)
        violate(r, "sweep: cell %lld of %lld, or a cell field wrong", p->cell, p->cells);
    r->n = p->cell;
}

static void test_sweep(const char *dir) {
    char yaml[300], out[300];
    snprintf(yaml, sizeof yaml, "%s/sweep.yaml", dir);
    snprintf(out, sizeof out, "%s/sweep", dir);
    FILE *f = fopen(yaml, "w");
    if (!f) {
        tu_check(0, "cannot write %s", yaml);
        return;
    }
    fprintf(f, "model: analytic:gaussian:res=8:ch=1:std=0.5\nsamplers: [euler, heun]\nnfe: [3, 5]\n"
               "n: 10\nbatch: 4\nmetrics: [trajectory]\noutput: %s\n", out);
    fclose(f);
    rec r = {.what = "sweep", .unit = "evals"};
    r.own = own_sweep;
    r.across = 1;
    pd_sweep_options o = pd_sweep_default_options();
    o.progress = on_progress;
    o.user = &r;
    pd_error err = {{0}};
    pd_sweep_summary sum;
    int rc = pd_sweep_run(yaml, &o, &sum, &err);
    verdict("pd_sweep_run (4 cells)", rc, &err, &r);
    /* euler nfe 3, 5: 3 and 5 steps; heun nfe 3, 5: 2 and 3 steps (NFE 3, 5): 10 images each */
    tu_check(r.total == 10LL * (3 + 5 + 3 + 5), "sweep: total = images x NFE over the cells (%lld of %d)",
             r.total, 10 * 16);
}

/* ---------------------------------------------------------------- convert */

static void own_convert(rec *r, const pd_progress *p) {
    const char *want = r->n == 0 ? "reading" : r->n == 1 ? "converting" : "writing";
    if (strcmp(p->stage, want)) r->n++;   /* stages come in this order, each at least once */
    want = r->n == 0 ? "reading" : r->n == 1 ? "converting" : "writing";
    if (strcmp(p->stage, want) || strcmp(p->unit, r->n == 1 ? "values" : "files"))
        violate(r, "convert: stage out of order (%lld, %lld)", r->n, 0);
}

static void test_convert(const char *dir) {
    /* The smallest EDM snapshot of test_convert's fixtures, unpacked here. */
    char pkl[300], out[300], buf[65536];
    snprintf(pkl, sizeof pkl, "%s/adm-edm.pkl", dir);
    snprintf(out, sizeof out, "%s/converted.safetensors", dir);
    gzFile g = gzopen(PD_SOURCE_DIR "/tests/fixtures/convert/adm-edm.pkl.gz", "rb");
    FILE *f = fopen(pkl, "wb");
    int n;
    while (g && f && (n = gzread(g, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, f);
    if (g) gzclose(g);
    if (f) fclose(f);
    rec r = {.what = "convert", .unit = NULL};
    r.own = own_convert;
    pd_convert_params cp = pd_convert_default_params();
    cp.progress = on_progress;
    cp.user = &r;
    pd_error err = {{0}};
    pd_converted *c = NULL;
    int rc = pd_convert_read(&c, pkl, &cp, &err);
    r.seconds = 0;   /* a second call: its clock starts again */
    if (rc == 0) rc = pd_convert_write(c, out, &cp, &err);
    pd_converted_free(c);
    verdict("pd_convert_read + write (ADM snapshot)", rc, &err, &r);
    tu_check(r.n == 2 && !strcmp(r.stage, "writing"), "convert: reading, converting, writing in order");
}

int main(void) {
    pd_set_threads(1);
    char dir[] = "/tmp/pd-test-progress.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_sampling();
    test_train(dir);
    test_amed(dir);
    test_sweep(dir);
    test_convert(dir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return tu_finish();
}
