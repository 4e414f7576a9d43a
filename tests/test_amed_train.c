/* test_amed_train — AMED predictor training (docs/algorithms.md §S4.5; distill/amed_student.c,
 * distill/amed_train.c) on the tiny preset with random weights.
 *
 *   - the gradient of one student interval's loss with respect to g_phi's parameters, back-
 *     propagated through the frozen U-Net (its input and sigma), matches central differences of
 *     the whole interval (predictor -> s -> y -> U-Net at a s -> scaled step) for the AMED-Solver
 *     form and the iPNDM-plugin form, on every head and time-embedding parameter and a sample of
 *     the bottleneck MLP's; and it is the same (bitwise) with micro-batches of 1 and of 3;
 *   - the finer teacher grid's every (M + 1)-th point is the student's grid (vp-time, karras);
 *   - training lowers every per-interval loss (mean over the first vs the last 8 of 30 batches of 8)
 *     for the solver and the iPNDM plugin, on a tiny net whose output layer is scaled by 0.1 (a
 *     smooth random perturbation of the exact Gaussian denoiser, so trajectories are sane);
 *   - an interrupted run resumed from its checkpoint ends bit-identical to an uninterrupted one;
 *     the output file records the settings; a stale checkpoint without resume, or with other
 *     settings, is refused.
 */
#include "pixdiff.h"
#include "distill/amed_student.h"
#include "samplers/amed_predictor.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *MODEL = "test_amed_train_tiny.safetensors";

/* ---------------------------------------------------------------- 1. gradient vs FD */

static double interval_loss(amed_student *s, const pd_amed_predictor *p, const amed_interval *iv,
                            const double *tg, double *grad) {
    double L;
    pd_error err;
    if (amed_student_interval(s, p, iv, tg, NULL, NULL, &L, grad, NULL, &err)) {
        printf("  interval: %s\n", err.msg);
        return NAN;
    }
    return L;
}

static void test_gradient(pd_model *m, int plugin) {
    pd_error err;
    enum { N = 3 };
    const size_t dim = 256, tot = N * dim;
    pd_amed_info in;
    memset(&in, 0, sizeof in);
    in.kind = plugin ? PD_AMED_PLUGIN_IPNDM : PD_AMED_SOLVER;
    in.s_dir = 0.2;
    in.s_time = 0.2;   /* both heads, large enough to matter */
    in.max_order = 4;
    pd_amed_predictor *p;
    pd_amed_predictor_create(&p, &in, 3, 0, &err);
    amed_student *s1, *s3;
    amed_student_create(&s1, m, 1, N, &err);
    amed_student_create(&s3, m, 3, N, &err);
    double *x = malloc(tot * sizeof *x), *a1 = malloc(tot * sizeof *a1), *k = malloc(tot * sizeof *k),
           *tg = malloc(tot * sizeof *tg);
    float feat[N * 64];
    tu_fill_d(x, tot, 1, 2.0);
    tu_fill_d(a1, tot, 2, 1.0);
    tu_fill_d(k, tot, 3, 0.5);
    tu_fill_d(tg, tot, 4, 1.0);
    tu_fill(feat, N * 64, 5, 1.0f);
    amed_interval iv = {0};
    iv.n = N;
    iv.t0 = 2.0;
    iv.t1 = 0.7;
    iv.x = x;
    iv.a1 = a1;
    iv.k = plugin ? k : NULL;
    iv.alpha0 = plugin ? 23.0 / 12.0 : 1.0;
    iv.plugin = plugin;
    iv.feature = feat;
    double *g = calloc(p->n_params, sizeof *g), *g1 = calloc(p->n_params, sizeof *g1);
    interval_loss(s3, p, &iv, tg, g);
    interval_loss(s1, p, &iv, tg, g1);
    tu_check(!memcmp(g, g1, p->n_params * sizeof *g), "%s: gradient with micro-batches of 1 == of 3 (bitwise)",
             plugin ? "plugin" : "solver");
    /* parameters to check: all heads, the time embedding, every 61st of the MLP */
    double gmax = 0, worst = 0;
    int checked = 0;
    for (size_t i = 0; i < p->n_params; i++) gmax = fmax(gmax, fabs(g[i]));
    for (size_t i = 0; i < p->n_params; i++) {
        int mlp = i >= p->enc0_w && i < p->r_w;
        if (mlp && i % 61) continue;
        float v = p->params[i], h = 2e-3f * fmaxf(1.0f, fabsf(v));
        float vp = v + h, vm = v - h;
        p->params[i] = vp;
        double Lp = interval_loss(s3, p, &iv, tg, NULL);
        p->params[i] = vm;
        double Lm = interval_loss(s3, p, &iv, tg, NULL);
        p->params[i] = v;
        double fd = (Lp - Lm) / ((double)vp - (double)vm);
        worst = fmax(worst, fabs(fd - g[i]) / (fabs(g[i]) + 1e-2 * gmax));
        checked++;
    }
    tu_check(worst < 2e-2, "%s interval: dL/dphi through the U-Net vs central differences, %d parameters "
             "(max |g| %.3g): max rel %.2e", plugin ? "plugin (iPNDM AB, alpha0 23/12, K)" : "solver", checked,
             gmax, worst);
    free(g), free(g1), free(x), free(a1), free(k), free(tg);
    amed_student_free(s1);
    amed_student_free(s3);
    pd_amed_predictor_free(p);
}

/* ---------------------------------------------------------------- 2. grids */

static void test_grids(void) {
    pd_error err;
    pd_grid_kind gs[2] = {PD_GRID_VP_TIME, PD_GRID_KARRAS};
    double worst = 0;
    for (int gi = 0; gi < 2; gi++)
        for (int steps = 2; steps <= 5; steps++)
            for (int M = 1; M <= 2; M++) {
                pd_schedule_params sp = pd_schedule_default_params();
                sp.grid = gs[gi];
                sp.sigma_min = 0.002;
                sp.sigma_max = 80;
                sp.end_at_zero = 0;
                double a[8], b[32];
                pd_sigma_grid(a, steps, &sp, &err);
                pd_sigma_grid(b, (M + 1) * steps, &sp, &err);
                for (int n = 0; n <= steps; n++) worst = fmax(worst, fabs(b[(M + 1) * n] - a[n]) / a[n]);
            }
    tu_check(worst < 1e-12, "teacher grid point (M+1) n == student t_n (vp-time, karras; M 1, 2): max rel %.2e",
             worst);
}

/* ---------------------------------------------------------------- 3. training */

typedef struct {
    double loss[256][8];
    int batches, steps, stop_after;
} rec;

static void on_progress(void *user, const pd_progress *p) {
    rec *r = user;
    if (r->batches < 256) memcpy(r->loss[r->batches], p->losses, sizeof(double) * (size_t)p->n_losses);
    r->batches++;
    r->steps = p->n_losses;
}

static int on_abort(void *user) {
    rec *r = user;
    return r->stop_after > 0 && r->batches >= r->stop_after;
}

static pd_amed_train_options opts(pd_amed_kind kind, const char *out, rec *r) {
    pd_amed_train_options o = pd_amed_train_default_options();
    o.model_path = MODEL;
    o.kind = kind;
    o.nfe = 5;
    o.batch = 8;
    o.images = 8 * 30;
    o.lr = 1e-2;
    o.s_dir = 0.01;
    o.s_time = 0;
    o.out_path = out;
    o.micro_batch = 8;
    o.progress = on_progress;
    o.abort = on_abort;
    o.user = r;
    return o;
}

static void test_training(pd_amed_kind kind) {
    pd_error err;
    char out[128];
    snprintf(out, sizeof out, "test_amed_train_%s.safetensors", pd_amed_kind_name(kind));
    rec r = {0};
    pd_amed_train_options o = opts(kind, out, &r);
    int rc = pd_amed_train(&o, &err);
    tu_check(rc == 0, "%s: train 30 batches of 8: %s", pd_amed_kind_name(kind), rc ? err.msg : "ok");
    if (rc) return;
    double first = 0, last = 0, fi[8] = {0}, la[8] = {0};
    for (int b = 0; b < 8; b++)
        for (int n = 0; n < r.steps; n++) {
            fi[n] += r.loss[b][n] / 8, la[n] += r.loss[r.batches - 1 - b][n] / 8;
            first += r.loss[b][n], last += r.loss[r.batches - 1 - b][n];
        }
    printf("  mean per-interval loss, first 8 batches: %.4g %.4g %.4g; last 8: %.4g %.4g %.4g\n", fi[0],
           fi[1], fi[2], la[0], la[1], la[2]);
    printf("  per-interval loss, batch 1: %.4g %.4g %.4g; batch %d: %.4g %.4g %.4g\n", r.loss[0][0],
           r.loss[0][1], r.loss[0][2], r.batches, r.loss[r.batches - 1][0], r.loss[r.batches - 1][1],
           r.loss[r.batches - 1][2]);
    int each = 1;
    for (int n = 0; n < r.steps; n++) each &= la[n] < fi[n];
    tu_check(last < 0.8 * first && each,
             "%s: every interval's loss lower over the last 8 batches than the first 8; sum %.4g < 0.8 x %.4g",
             pd_amed_kind_name(kind), last, first);
    pd_amed_predictor *p;
    rc = pd_amed_predictor_load(&p, out, &err);
    tu_check(rc == 0, "  output loads: %s", rc ? err.msg : out);
    if (rc == 0) {
        const pd_amed_info *in = pd_amed_predictor_info(p);
        pd_model *m;
        pd_model_load(&m, MODEL, &err);
        int ok = in->kind == kind && in->nfe == 5 && in->steps == 3 && in->afs == 1 && in->images == 240 &&
                 in->batch == 8 && !strcmp(in->model_sha256, pd_model_sha256(m)) &&
                 in->teacher_m == (kind == PD_AMED_PLUGIN_IPNDM ? 2 : 1) &&
                 !strcmp(in->teacher, kind == PD_AMED_PLUGIN_IPNDM ? "ipndm" : "heun") &&
                 in->grid == (kind == PD_AMED_SOLVER ? PD_GRID_VP_TIME : PD_GRID_KARRAS);
        tu_check(ok, "  info: %s NFE %d steps %d AFS %d teacher %s M=%d grid %s images %lld, model sha256",
                 pd_amed_kind_name(in->kind), in->nfe, in->steps, in->afs, in->teacher, in->teacher_m,
                 pd_grid_name(in->grid), in->images);
        pd_model_free(m);
        pd_amed_predictor_free(p);
    }
    remove(out);
}

static void test_resume(void) {
    pd_error err;
    const char *a = "test_amed_train_a.safetensors", *b = "test_amed_train_b.safetensors";
    rec ra = {0}, rb = {0};
    pd_amed_train_options o = opts(PD_AMED_PLUGIN_IPNDM, a, &ra);
    o.images = 8 * 4;
    int ok = pd_amed_train(&o, &err) == 0;
    o = opts(PD_AMED_PLUGIN_IPNDM, b, &rb);
    o.images = 8 * 4;
    rb.stop_after = 2;
    int rc = pd_amed_train(&o, &err);
    tu_check(rc != 0 && strstr(err.msg, "interrupted"), "interrupted after 2 batches: %s", err.msg);
    rc = pd_amed_train(&o, &err);
    tu_check(rc != 0 && strstr(err.msg, "resume"), "checkpoint without resume refused: %s", err.msg);
    pd_amed_train_options o2 = o;
    o2.lr = 2e-2;
    o2.resume = 1;
    rc = pd_amed_train(&o2, &err);
    tu_check(rc != 0 && strstr(err.msg, "other settings"), "resume with another lr refused: %.120s...", err.msg);
    rb.stop_after = 0;
    o.resume = 1;
    rc = pd_amed_train(&o, &err);
    tu_check(ok && rc == 0, "resumed to the end: %s", rc ? err.msg : "ok");
    pd_amed_predictor *pa = NULL, *pb = NULL;
    pd_amed_predictor_load(&pa, a, &err);
    pd_amed_predictor_load(&pb, b, &err);
    tu_check(pa && pb && pa->n_params == pb->n_params &&
                 !memcmp(pa->params, pb->params, pa->n_params * sizeof(float)) &&
                 pa->info.final_loss == pb->info.final_loss,
             "interrupted + resumed == uninterrupted (parameters bitwise, final loss %.6g)",
             pa ? pa->info.final_loss : NAN);
    char ck[256];
    snprintf(ck, sizeof ck, "%s.ckpt", b);
    FILE *f = fopen(ck, "rb");
    tu_check(!f, "finished run removed its checkpoint");
    if (f) fclose(f);
    pd_amed_predictor_free(pa);
    pd_amed_predictor_free(pb);
    remove(a);
    remove(b);
}

/* A class-conditional tiny model: labels reach the teacher, the first call and the student. */
static void test_conditional(void) {
    pd_error err;
    pd_unet_config c;
    pd_model *m;
    const char *path = "test_amed_train_cond.safetensors", *out = "test_amed_train_cond_p.safetensors";
    pd_unet_config_preset(&c, "tiny", &err);
    c.label_dim = 3;
    if (pd_model_create(&m, &c, 5, &err) || pd_model_save(m, path, &err)) {
        printf("%s\n", err.msg);
        tu_check(0, "conditional model");
        return;
    }
    rec r = {0};
    pd_amed_train_options o = opts(PD_AMED_SOLVER, out, &r);
    o.model_path = path;
    o.nfe = 4;
    o.images = 8;
    int rc = pd_amed_train(&o, &err);
    pd_amed_predictor *p = NULL;
    if (rc == 0) rc = pd_amed_predictor_load(&p, out, &err);
    tu_check(rc == 0 && p && p->info.afs == 0 && p->info.steps == 2 && isfinite(r.loss[0][0]) &&
                 isfinite(r.loss[0][1]),
             "conditional model (label_dim 3), NFE 4 = 2 steps without AFS: %s (losses %.4g %.4g)",
             rc ? err.msg : "trained", r.loss[0][0], r.loss[0][1]);
    pd_amed_predictor_free(p);
    pd_model_free(m);
    remove(path);
    remove(out);
}

int main(void) {
    /* one thread: the tiny net's kernels are too small to gain from two, and on a loaded machine
     * the synchronisation costs more than the work */
    pd_set_threads(1);
    pd_error err;
    pd_unet_config c;
    pd_model *m;
    if (pd_unet_config_preset(&c, "tiny", &err) || pd_model_create(&m, &c, 21, &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    /* A small output layer makes D = c_skip x + c_out F close to the exact denoiser of
     * N(0, sigma_data^2) data (F = 0), a random but smooth perturbation of it: trajectories
     * behave like a trained model's, so "training lowers the loss" is a fair question. */
    int ti = unet_tensor_index(m, "model.dec.16x16_aux_conv.weight");
    if (ti < 0) {
        printf("no aux_conv tensor\n");
        return 1;
    }
    for (size_t j = 0; j < m->tensors[ti].numel; j++) m->params[m->tensors[ti].offset + j] *= 0.1f;
    if (pd_model_save(m, MODEL, &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    clock_t c0 = clock();
    test_gradient(m, 0);
    test_gradient(m, 1);
    printf("  [gradient checks: %.1f s CPU]\n", (double)(clock() - c0) / CLOCKS_PER_SEC);
    test_grids();
    c0 = clock();
    test_training(PD_AMED_SOLVER);
    test_training(PD_AMED_PLUGIN_IPNDM);
    printf("  [training: %.1f s CPU]\n", (double)(clock() - c0) / CLOCKS_PER_SEC);
    c0 = clock();
    test_resume();
    test_conditional();
    printf("  [resume: %.1f s CPU]\n", (double)(clock() - c0) / CLOCKS_PER_SEC);
    pd_model_free(m);
    remove(MODEL);
    return tu_finish();
}
