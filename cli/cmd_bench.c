/* cmd_bench.c — `pixdiff bench`: time one denoiser evaluation at several batch sizes. For each
 * batch size: one warm-up call (sizes the activation arena), then --repeat timed calls; prints
 * the median ms per batch and per image, GFLOP/s from pd_model_gflops, and the process's peak
 * resident memory so far (getrusage ru_maxrss; batch sizes run in ascending order so the peak
 * belongs to the largest batch run yet). Without --model it benchmarks the issue's reference net
 * (preset ref64, random weights), the one docs/benchmarks.md compares with PyTorch.
 * Before timing, one evaluation of one image records which algorithm each convolution took
 * (--conv picks the 3x3 one); GFLOP/s are effective: the direct algorithm's multiply-adds x 2
 * (pd_model_gflops) over the time, whichever algorithm ran. The last column is the process's
 * CPU time per image (median), which a shared machine disturbs far less than wall time. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/names.h"
#include "pixdiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* CPU seconds of the process so far (all threads, user + system): with waiting threads asleep
 * this is the work done, a figure a shared machine disturbs far less than wall time. */
static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * ru.ru_stime.tv_usec;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* One evaluation of one image with the convolution record on: a row per distinct layer shape
 * and algorithm, with its share of the convolutions' (direct-algorithm) flops. */
/* What bench times: one network evaluation of a batch, as the denoiser D(x; sigma) or, for a
 * one-step generator (which is not a denoiser), as G(z) = D(sigma_init z; sigma_init). */
typedef struct {
    pd_denoiser *d;
    pd_generator *g;
    size_t chw;
} bench_net;

static int bench_eval(const bench_net *n, float *out, const float *x, const float *sig,
                      const float *labels, int b, pd_error *err) {
    if (n->d) return pd_denoiser_eval(n->d, out, x, sig, labels, b, err);
    memcpy(out, x, sizeof(float) * n->chw * (size_t)b);
    return pd_generator_run(n->g, out, labels, b, err);
}

static void print_conv_paths(const char *cmd, const bench_net *net, const float *x, const float *sig,
                             const float *labels) {
    pd_error err = {{0}};
    pd_conv_stat st[64];
    float *out = malloc(sizeof(float) * net->chw);
    if (!out) cli_die(1, cmd, "out of memory");
    pd_conv_stats_begin();
    int rc = bench_eval(net, out, x, sig, labels, 1, &err);
    int n = pd_conv_stats_end(st, 64);
    free(out);
    if (rc) cli_die(1, cmd, "%s", err.msg);
    if (n > 64) n = 64;
    double total = 0, fast = 0;
    for (int i = 0; i < n; i++) {
        double g = 2.0 * st[i].C * st[i].OC * st[i].k * st[i].k * st[i].H * st[i].W * st[i].calls;
        total += g;
        if (st[i].winograd) fast += g;
    }
    printf("convolutions of one evaluation (batch 1): %6s %5s %5s %8s %6s %-11s %7s\n", "kernel",
           "C", "OC", "HxW", "calls", "algorithm", "% flops");
    for (int i = 0; i < n; i++) {
        double g = 2.0 * st[i].C * st[i].OC * st[i].k * st[i].k * st[i].H * st[i].W * st[i].calls;
        char hw[32];
        snprintf(hw, sizeof hw, "%dx%d", st[i].H, st[i].W);
        printf("%42s %4dx%d %5d %5d %8s %6d %-11s %7.1f\n", "", st[i].k, st[i].k, st[i].C, st[i].OC,
               hw, st[i].calls,
               st[i].winograd ? "winograd" : st[i].bf16 ? "direct-bf16" : "direct",
               100 * g / total);
    }
    printf("%.1f %% of the convolution flops on Winograd F(4x4,3x3)\n",
           total > 0 ? 100 * fast / total : 0.0);
}

int cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    const char *model = NULL;
    int preset = -1, repeat = 5, threads = 0, size = 0;
    double sigma = 1.0;
    const char *conv = NULL, *precision = NULL;
    arg_int_list batches = {{1, 8, 64}, 3};
    arg_opt opts[] = {
        OPT_DEF("--model", ARG_STR, &model, "FILE", "model file to time", "--preset ref64"),
        OPT_DEF("--preset", ARG_CHOICE, &preset, NULL,
                "time a random-weight model of this architecture", "ref64 when no --model"),
        OPT("--batches", ARG_INT_LIST, &batches, "B1,B2,...", "batch sizes"),
        OPT("--repeat", ARG_POS_INT, &repeat, "R",
            "timed evaluations per batch size (median reported)"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T", "threads (0: all cores)",
                "$OMP_NUM_THREADS or all cores"),
        OPT("--size", ARG_NONNEG_INT, &size, "R", "resolution (0: the trained one)"),
        OPT("--sigma", ARG_POS_DOUBLE, &sigma, "S",
            "noise level of the evaluations (does not change the cost; a one-step generator "
            "evaluates at its sigma_init)"),
        OPT_DEF("--conv", ARG_STR, &conv, "ALG",
                "3x3 convolution algorithm: winograd (F(4x4,3x3) from 16x16 up) or direct",
                "$PIXDIFF_CONV or winograd"),
        OPT_DEF("--precision", ARG_STR, &precision, "P",
                "products of the direct convolutions: fp32 or bf16 (needs an OpenBLAS with "
                "cblas_sbgemm)", "$PIXDIFF_PRECISION or fp32"),
    };
    opts[1].choices = cli_preset_choices();
    arg_spec spec = {
        cmd,
        "[--model FILE | --preset NAME] [options]",
        "Time denoiser evaluations (network + preconditioning) at several batch sizes.",
        opts,
        (int)(sizeof opts / sizeof opts[0]),
        NULL,
        0,
        0,
        NULL};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    if (model && preset >= 0) cli_bad_flag(cmd, "--preset", "give --model or --preset, not both");
    cli_apply_threads(args_given(&spec, "--threads"), threads);

    pd_error err = {{0}};
    if (conv && pd_set_conv_algorithm(conv, &err)) cli_bad_flag(cmd, "--conv", "%s", err.msg);
    if (precision && pd_set_precision(precision, &err))
        cli_bad_flag(cmd, "--precision", "%s", err.msg);
    pd_model *m = NULL;
    char what[1200];
    if (model) {
        m = cli_model_load(cmd, model);
        snprintf(what, sizeof what, "%s", model);
    } else {
        const char *name = preset >= 0 ? pd_unet_preset_name(preset) : "ref64";
        pd_unet_config cfg;
        if (pd_unet_config_preset(&cfg, name, &err)) cli_die(2, cmd, "%s", err.msg);
        if (pd_model_create(&m, &cfg, 0, &err)) cli_die(1, cmd, "%s", err.msg);
        snprintf(what, sizeof what, "preset %s (random weights)", name);
    }
    bench_net net = {NULL, NULL, 0};
    const int gen = !strcmp(pd_model_config(m)->kind, "generator");
    if (gen ? pd_generator_from_model(&net.g, m, size, &err)
            : pd_denoiser_from_model(&net.d, m, size, &err)) {
        if (size) cli_bad_flag(cmd, "--size", "%s", err.msg);
        cli_die(1, cmd, "%s", err.msg);
    }
    const int C = gen ? net.g->C : net.d->C, H = gen ? net.g->H : net.d->H;
    const int W = gen ? net.g->W : net.d->W, L = gen ? net.g->label_dim : net.d->label_dim;
    const size_t chw = (size_t)C * H * W;
    net.chw = chw;
    const double gflop = pd_model_gflops(m, H);
    qsort(batches.v, (size_t)batches.n, sizeof(int), cmp_int);
    int bmax = batches.v[batches.n - 1];
    float *x = malloc(sizeof(float) * chw * (size_t)bmax);
    float *out = malloc(sizeof(float) * chw * (size_t)bmax);
    float *sig = malloc(sizeof(float) * (size_t)bmax);
    float *labels = L > 0 ? calloc((size_t)L * (size_t)bmax, sizeof(float)) : NULL;
    double *t = malloc(sizeof(double) * (size_t)repeat), *tc = malloc(sizeof(double) * (size_t)repeat);
    if (!x || !out || !sig || !t || !tc || (L > 0 && !labels)) cli_die(1, cmd, "out of memory");
    for (int i = 0; i < bmax; i++) {
        pd_randn(x + (size_t)i * chw, chw, (uint64_t)i, 0);
        sig[i] = (float)sigma;
    }
    printf("model: %s, %dx%dx%d, %.4f GFLOP per image per evaluation, %zu parameters, threads %d, "
           "OpenBLAS kernels %s, conv %s, precision %s, pixdiff %s\n",
           what, W, H, C, gflop, pd_model_param_count(m), pd_get_threads(), pd_blas_core(),
           pd_conv_algorithm(), pd_precision(), pd_version());
    print_conv_paths(cmd, &net, x, sig, labels);
    printf("%6s %12s %12s %10s %14s %14s\n", "batch", "ms/batch", "ms/image", "eff GFLOP/s",
           "peak RSS MiB", "CPU ms/image");
    for (int k = 0; k < batches.n; k++) {
        int b = batches.v[k];
        if (k && b == batches.v[k - 1]) continue;
        if (bench_eval(&net, out, x, sig, labels, b, &err)) cli_die(1, cmd, "%s", err.msg);
        for (int r = 0; r < repeat; r++) {
            double t0 = cli_now(), c0 = cpu_seconds();
            if (bench_eval(&net, out, x, sig, labels, b, &err)) cli_die(1, cmd, "%s", err.msg);
            t[r] = cli_now() - t0;
            tc[r] = cpu_seconds() - c0;
        }
        qsort(t, (size_t)repeat, sizeof(double), cmp_double);
        qsort(tc, (size_t)repeat, sizeof(double), cmp_double);
        double med = repeat % 2 ? t[repeat / 2] : 0.5 * (t[repeat / 2 - 1] + t[repeat / 2]);
        double cmed = repeat % 2 ? tc[repeat / 2] : 0.5 * (tc[repeat / 2 - 1] + tc[repeat / 2]);
        printf("%6d %12.2f %12.2f %10.1f %14.1f %14.2f\n", b, med * 1e3, med * 1e3 / b,
               gflop * b / med, peak_rss_mib(), cmed * 1e3 / b);
        fflush(stdout);
    }
    free(x);
    free(out);
    free(sig);
    free(labels);
    free(t);
    free(tc);
    pd_denoiser_free(net.d);
    pd_generator_free(net.g);
    pd_model_free(m);
    return 0;
}
