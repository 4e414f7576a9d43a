/* test_amed_predictor — AMED's g_phi (docs/algorithms.md §S4.4): forward against a naive double twin,
 * backward against finite differences, parameter counts, the file format and its failures.
 *
 *   - parameter counts 8929 (r only), 8950 (with c, the AMED-Solver default), 8971 (both heads);
 *   - the forward of pd_amed_predict equals a naive double twin written here from the spec's
 *     formulas, reading the tensors by their reference names from the saved file (so the file
 *     layout is checked too), to 1e-12 relative;
 *   - amed_backward's gradient of L = sum_b (w_r r_b + w_c c_b + w_a a_b) matches central
 *     differences over EVERY parameter (steps taken as the float-rounded perturbation actually
 *     applied), relative error < 1e-5;
 *   - all-zero weights give r = 1/2, c = a = 1 exactly; feature NULL equals zero features;
 *   - save/load round trip is bitwise with the info; malformed files fail with a message.
 */
#include "pixdiff.h"
#include "core/safetensors.h"
#include "samplers/amed_predictor.h"
#include "ref_sampling.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the naive double twin */

static double sg(double v) { return 1 / (1 + exp(-v)); }

static const float *T(const st_file *f, const char *name) {
    const st_tensor *t = st_find(f, name);
    return t ? t->data : NULL;
}

static void twin(const st_file *f, double s_dir, double s_time, const float *feat, double tc, double tn,
                 double out[3]) {
    const float *W0 = T(f, "enc_layer0.weight"), *b0 = T(f, "enc_layer0.bias");
    const float *W1 = T(f, "enc_layer1.weight"), *b1 = T(f, "enc_layer1.bias");
    const float *Wt = T(f, "map_layer0.weight"), *bt = T(f, "map_layer0.bias");
    double u[20];
    for (int m = 0; m < 4; m++) {
        double z = b1[m];
        for (int j = 0; j < 128; j++) {
            double h = b0[j];
            for (int i = 0; i < 64; i++) h += (double)W0[j * 64 + i] * (feat ? feat[i] : 0);
            z += (double)W1[m * 128 + j] * h * sg(h);
        }
        u[m] = z;
    }
    double ts[2] = {tc, tn};
    for (int t = 0; t < 2; t++) {
        double e[8];
        for (int k = 0; k < 4; k++) {
            e[k] = sin(ts[t] * pow(10, -4.0 * k / 3));
            e[k + 4] = cos(ts[t] * pow(10, -4.0 * k / 3));
        }
        for (int o = 0; o < 8; o++) {
            double q = bt[o];
            for (int i = 0; i < 8; i++) q += (double)Wt[o * 8 + i] * e[i];
            u[4 + 8 * t + o] = q * sg(q);
        }
    }
    const char *heads[3][2] = {{"fc_r.weight", "fc_r.bias"},
                               {"fc_scale_dir.weight", "fc_scale_dir.bias"},
                               {"fc_scale_time.weight", "fc_scale_time.bias"}};
    double scale[3] = {0, s_dir, s_time};
    for (int h = 0; h < 3; h++) {
        const float *w = T(f, heads[h][0]), *b = T(f, heads[h][1]);
        if (!w) {
            out[h] = h ? 1 : NAN;
            continue;
        }
        double v = b[0];
        for (int i = 0; i < 20; i++) v += (double)w[i] * u[i];
        out[h] = h == 0 ? sg(v) : 1 + scale[h] * (2 * sg(v) - 1);
    }
}

/* ---------------------------------------------------------------- tests */

static double loss_of(const pd_amed_predictor *p, const float *feat, int n, const double *w) {
    double L = 0;
    for (int b = 0; b < n; b++) {
        amed_cache k;
        amed_forward(p, feat + b * 64, 3.7 + b, 1.1 + 0.2 * b, &k);
        L += w[0] * k.r + w[1] * k.c + w[2] * k.a;
    }
    return L;
}

int main(void) {
    pd_error err;
    /* 1. counts */
    size_t want[3] = {8929, 8950, 8971};
    double sd[3] = {0, 0.01, 0.01}, st[3] = {0, 0, 0.2};
    for (int i = 0; i < 3; i++) {
        pd_amed_info in = rs_amed_info(PD_AMED_SOLVER, sd[i], st[i]);
        pd_amed_predictor *p;
        pd_amed_predictor_create(&p, &in, 1, 0, &err);
        tu_check(pd_amed_predictor_param_count(p) == want[i], "parameters with s_dir %g s_time %g: %zu",
                 sd[i], st[i], pd_amed_predictor_param_count(p));
        pd_amed_predictor_free(p);
    }

    /* 2. forward vs the twin, through a saved file; both heads, large scales to see them */
    pd_amed_info in = rs_amed_info(PD_AMED_SOLVER, 0.3, 0.2);
    pd_amed_predictor *p;
    if (pd_amed_predictor_create(&p, &in, 42, 0, &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    enum { N = 5 };
    float feat[N * 64];
    tu_fill(feat, N * 64, 9, 2.0f);
    const char *path = "test_amed_predictor.safetensors";
    tu_check(pd_amed_predictor_save(p, path, &err) == 0, "save %s", path);
    st_file f;
    if (st_read(&f, path, &err)) {
        printf("%s\n", err.msg);
        return 1;
    }
    double r[N], c[N], a[N], maxe = 0;
    double rt[N * 3], rr[N * 3];
    for (int b = 0; b < N; b++) {
        pd_amed_predict(p, feat + b * 64, 1, 80.0 - 7 * b, 20.0 - 3 * b, r + b, c + b, a + b, &err);
        twin(&f, 0.3, 0.2, feat + b * 64, 80.0 - 7 * b, 20.0 - 3 * b, rt + 3 * b);
        rr[3 * b] = r[b], rr[3 * b + 1] = c[b], rr[3 * b + 2] = a[b];
    }
    for (int i = 0; i < 3 * N; i++) maxe = fmax(maxe, fabs(rr[i] - rt[i]) / fabs(rt[i]));
    printf("  r %.4f %.4f, c %.4f %.4f, a %.4f %.4f\n", r[0], r[1], c[0], c[1], a[0], a[1]);
    tu_check(maxe < 1e-12, "forward vs naive double twin (from the file's named tensors): max rel %.2e", maxe);
    int spread = fabs(r[0] - r[1]) > 1e-4 && fabs(c[0] - c[1]) > 1e-4 && fabs(a[0] - a[1]) > 1e-4;
    tu_check(spread, "outputs vary with the inputs (r, c, a differ between images)");
    st_free(&f);

    /* 3. backward vs central differences over every parameter */
    double w[3] = {0.7, -1.3, 0.9};
    double *g = calloc(p->n_params, sizeof *g);
    for (int b = 0; b < N; b++) {
        amed_cache k;
        amed_forward(p, feat + b * 64, 3.7 + b, 1.1 + 0.2 * b, &k);
        amed_backward(p, &k, w[0], w[1], w[2], g);
    }
    double worst = 0, gmax = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < p->n_params; i++) gmax = fmax(gmax, fabs(g[i]));
    for (size_t i = 0; i < p->n_params; i++) {
        float v = p->params[i];
        float vp = v + 1e-3f * fmaxf(1.0f, fabsf(v)), vm = v - 1e-3f * fmaxf(1.0f, fabsf(v));
        p->params[i] = vp;
        double Lp = loss_of(p, feat, N, w);
        p->params[i] = vm;
        double Lm = loss_of(p, feat, N, w);
        p->params[i] = v;
        double fd = (Lp - Lm) / ((double)vp - (double)vm);
        double e = fabs(fd - g[i]) / (fabs(g[i]) + 1e-3 * gmax);
        if (e > worst) worst = e, worst_i = i;
    }
    tu_check(worst < 1e-4, "backward vs central differences, all %zu parameters: max rel %.2e (at %zu)",
             p->n_params, worst, worst_i);
    free(g);

    /* 4. zero weights: the neutral predictor, exactly */
    pd_amed_predictor *z;
    pd_amed_predictor_create(&z, &in, 0, 1, &err);
    pd_amed_predict(z, feat, N, 80, 10, r, c, a, &err);
    int exact = 1;
    for (int b = 0; b < N; b++) exact &= r[b] == 0.5 && c[b] == 1.0 && a[b] == 1.0;
    tu_check(exact, "all-zero weights: r = 1/2, c = a = 1 exactly");
    pd_amed_predictor_free(z);
    float zeros[64] = {0};
    double r0, r1;
    pd_amed_predict(p, zeros, 1, 5, 2, &r0, NULL, NULL, &err);
    pd_amed_predict(p, NULL, 1, 5, 2, &r1, NULL, NULL, &err);
    tu_check(r0 == r1, "feature NULL == zeros (the AFS step)");

    /* 5. round trip */
    pd_amed_predictor *q;
    int rc = pd_amed_predictor_load(&q, path, &err);
    tu_check(rc == 0, "load: %s", rc ? err.msg : "ok");
    if (rc == 0) {
        const pd_amed_info *i2 = pd_amed_predictor_info(q);
        int same = q->n_params == p->n_params && !memcmp(q->params, p->params, p->n_params * sizeof(float));
        same &= i2->kind == in.kind && i2->steps == in.steps && i2->nfe == in.nfe && i2->afs == in.afs &&
                i2->grid == in.grid && i2->rho == in.rho && i2->sigma_min == in.sigma_min &&
                i2->sigma_max == in.sigma_max && i2->s_dir == in.s_dir && i2->s_time == in.s_time &&
                !strcmp(i2->teacher, in.teacher) && i2->teacher_m == in.teacher_m &&
                !strcmp(i2->model_sha256, in.model_sha256) && !strcmp(i2->model_name, in.model_name) &&
                i2->images == in.images && i2->batch == in.batch && i2->lr == in.lr &&
                i2->seed == in.seed && i2->final_loss == in.final_loss;
        tu_check(same, "round trip: parameters bitwise, every info field");
        pd_sample_params sp = pd_sample_default_params();
        pd_amed_sample_params(q, &sp);
        tu_check(sp.sampler == PD_SAMPLER_AMED && sp.amed == q && sp.steps == 3 && sp.afs == 1 &&
                     sp.sched.grid == PD_GRID_VP_TIME && sp.sched.end_at_zero == 0 &&
                     pd_sampler_nfe_for_steps(&sp, sp.steps) == 5,
                 "pd_amed_sample_params: amed, vp-time, 3 steps, AFS, stop at sigma_min: NFE %d",
                 pd_sampler_nfe_for_steps(&sp, sp.steps));
        pd_amed_predictor_free(q);
    }

    /* 5b. what the JSON writer must carry: a diverged run's final_loss (nan, kept as pixdiff
     * reads it back) and a model name with a quote, a backslash and a tab (escaped) */
    {
        pd_amed_info i4 = rs_amed_info(PD_AMED_SOLVER, 0.01, 0);
        i4.final_loss = NAN;
        snprintf(i4.model_name, sizeof i4.model_name, "a \"b\" \\ c\td.safetensors");
        pd_amed_predictor *w = NULL, *w2 = NULL;
        const char *p4 = "test_amed_predictor_nan.safetensors";
        int ok4 = pd_amed_predictor_create(&w, &i4, 3, 0, &err) == 0 &&
                  pd_amed_predictor_save(w, p4, &err) == 0 && pd_amed_predictor_load(&w2, p4, &err) == 0;
        tu_check(ok4 && isnan(pd_amed_predictor_info(w2)->final_loss) &&
                     !strcmp(pd_amed_predictor_info(w2)->model_name, i4.model_name),
                 "round trip of final_loss nan and model name '%s': %s", i4.model_name,
                 ok4 ? "read back" : err.msg);
        pd_amed_predictor_free(w);
        pd_amed_predictor_free(w2);
        remove(p4);
    }

    /* 6. malformed files */
    {
        const char *bad = "test_amed_predictor_bad.safetensors";
        float wbuf[128 * 64] = {0};
        const char *names[1] = {"map_layer0.weight"};
        int nd[1] = {2};
        long long sh[1][8] = {{8, 7}};
        const float *data[1] = {wbuf};
        st_write(bad, 1, names, nd, (const long long(*)[8])sh, data, 0, NULL, NULL, &err);
        tu_check(pd_amed_predictor_load(&q, bad, &err) != 0, "no metadata: %s", err.msg);
        char json[2048];
        pd_amed_info i3 = rs_amed_info(PD_AMED_SOLVER, 0.01, 0);
        (void)i3;
        snprintf(json, sizeof json,
                 "{\"kind\": \"solver\", \"steps\": 3, \"nfe\": 5, \"afs\": true, \"grid\": \"vp-time\", "
                 "\"rho\": 1, \"sigma_min\": 0.002, \"sigma_max\": 80, \"s_dir\": 0.01, \"s_time\": 0, "
                 "\"teacher\": \"heun\", \"teacher_m\": 1}");
        const char *keys[1] = {"pixdiff.amed"}, *vals[1] = {json};
        st_write(bad, 1, names, nd, (const long long(*)[8])sh, data, 1, keys, vals, &err);
        tu_check(pd_amed_predictor_load(&q, bad, &err) != 0 && strstr(err.msg, "shape"),
                 "wrong shape: %s", err.msg);
        sh[0][1] = 8;
        st_write(bad, 1, names, nd, (const long long(*)[8])sh, data, 1, keys, vals, &err);
        tu_check(pd_amed_predictor_load(&q, bad, &err) != 0 && strstr(err.msg, "missing"),
                 "missing tensor: %s", err.msg);
        snprintf(json, sizeof json, "{\"kind\": \"heun\", \"steps\": 3}");
        st_write(bad, 1, names, nd, (const long long(*)[8])sh, data, 1, keys, vals, &err);
        tu_check(pd_amed_predictor_load(&q, bad, &err) != 0, "bad kind: %s", err.msg);
        snprintf(json, sizeof json, "{\"kind\": \"solver\", \"steps\": 3, \"colour\": 1}");
        st_write(bad, 1, names, nd, (const long long(*)[8])sh, data, 1, keys, vals, &err);
        tu_check(pd_amed_predictor_load(&q, bad, &err) != 0, "unknown key: %s", err.msg);
        remove(bad);
    }
    tu_check(pd_amed_kind_from_name("plugin-ipndm") == PD_AMED_PLUGIN_IPNDM &&
                 pd_amed_kind_from_name("euler") == PD_AMED_PLUGIN_EULER &&
                 pd_amed_kind_from_name("solver") == PD_AMED_SOLVER && pd_amed_kind_from_name("x") == -1 &&
                 !strcmp(pd_amed_kind_name(PD_AMED_PLUGIN_EULER), "plugin-euler"),
             "kind name table");
    remove(path);
    pd_amed_predictor_free(p);
    return tu_finish();
}
