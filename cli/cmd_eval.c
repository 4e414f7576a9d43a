/* cmd_eval.c — `pixdiff eval`: sample-quality metrics against the Fashion-MNIST test split.
 *
 * Three sources of images: a model sampled with the same options and seeds as `pixdiff sample`
 * (image i uses seed S + i; a class-conditional model is asked for label i mod label_dim, so the
 * classes are balanced and accuracy means something, unless --class fixes one or
 * --unconditional drops labels); a folder of PNGs (--images DIR, sorted by name; a PNG written by
 * `pixdiff sample` carries its class in the "pixdiff" chunk, and that label is used); or the
 * first N images of a Fashion-MNIST split (--data train|test, a baseline). The images stream
 * through the library's evaluator (pd_eval_*, metrics/eval.c) batch by batch, so memory does not
 * grow with N except for the features. Printed on stdout: n, FD, KID +/- SE, class accuracy,
 * precision and recall (Kynkäänniemi et al. 2019, k = 3), spectral error, optionally the
 * trajectory error against the reference from the same noise (--ref-steps; pd_trajectory_reference,
 * docs/algorithms.md §S0.7, as a sweep's trajectory metric), and the wall time; --json prints one JSON object instead. Progress and the
 * reference-cache log go to stderr. Every flag is checked before any work.
 * Under mpirun (docs/scale-out.md §4) the ranks sample the images pd_dist_part gives them and
 * rank 0 gathers them and measures them in the one-process order and batches, so it prints what
 * one process prints; a folder or a split is read by rank 0 alone.
 *
 * --features inception swaps the classifier for the FID Inception-v3 (cli/eval_inception.c): the
 * same images give FID and KID against --ref (a PNG folder, an .npz of statistics, an .npy of
 * images, or a Fashion-MNIST split), and/or their statistics are written with --save-ref; the
 * classifier-only metrics (accuracy, spectral error) are not computed.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/denoiser_opts.h"
#include "cli/eval_inception.h"
#include "cli/image_folder.h"
#include "cli/names.h"
#include "cli/sampling_opts.h"
#include "pixdiff.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const split_choices[] = {"none", "train", "test", NULL};
static const char *const feature_choices[] = {"classifier", "inception", NULL};

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}
static int abort_cb(void *user) {
    (void)user;
    return interrupted;
}

static int quiet_log;
static void log_line(void *user, const char *line) {
    (void)user;
    if (!quiet_log) fprintf(stderr, "pixdiff eval: %s\n", line);
}

/* pd_generate reports per call, one batch of the run (and its reference solution) each; the
 * run's line counts the sampler steps of all batches, the reference's included. */
typedef struct eval_bar {
    cli_progress ui;
    int b, n_batches;         /* the run's batch in progress (0-based) and their count */
    int steps, ref_steps;     /* per batch: of the sampler and of the reference (0: none) */
    int in_ref;               /* the reference of batch b is running */
    double t0;
} eval_bar;

static void eval_progress(void *user, const pd_progress *pr) {
    eval_bar *e = user;
    if (e->in_ref) e->ref_steps = pr->steps;
    else e->steps = pr->steps;
    pd_progress q = *pr;
    long long per = e->steps + e->ref_steps;
    q.batch = e->b + 1;
    q.batches = e->n_batches;
    q.done = (long long)e->b * per + (e->in_ref ? e->steps : 0) + pr->step;
    q.total = (long long)e->n_batches * per;
    q.seconds = cli_now() - e->t0;
    q.rate = q.seconds > 0 && q.done > 0 ? (double)q.done / q.seconds : -1;
    q.eta_seconds = q.rate > 0 ? (double)(q.total - q.done) / q.rate : -1;
    cli_progress_show(&e->ui, &q);
}

/* The class index in a `pixdiff sample` PNG's "pixdiff" chunk ("class": {"index": K}), or -1. */
static int png_class(const char *path) {
    char **keys = NULL, **vals = NULL;
    int count = 0, cls = -1;
    pd_error err = {{0}};
    if (pd_png_read_text(path, &keys, &vals, &count, &err)) return -1;
    for (int i = 0; i < count; i++) {
        if (strcmp(keys[i], "pixdiff")) continue;
        const char *c = strstr(vals[i], "\"class\": {\"index\": ");
        if (c) cls = atoi(c + strlen("\"class\": {\"index\": "));
    }
    pd_png_text_free(keys, vals, count);
    return cls;
}

typedef struct eval_run {
    const char *cmd;
    pd_eval *ev;              /* classifier features, or */
    cli_fid *fid;             /* Inception features (--features inception) */
    double t_metrics;
    double traj_sq;          /* sum of squared differences against the reference solution */
    double traj_count;
} eval_run;

static void add_batch(eval_run *r, const float *x, int n, int C, int R, const int *labels) {
    pd_error err = {{0}};
    double t = cli_now();
    if (r->fid) cli_fid_add(r->fid, x, n, C, R, R);
    else if (pd_eval_add(r->ev, x, n, C, R, labels, &err)) cli_die(1, r->cmd, "%s", err.msg);
    r->t_metrics += cli_now() - t;
}

/* The class image i is asked for: none, the fixed --class, or i mod label_dim. */
static int class_of(int i, int uncond, int cls, int label_dim) {
    return uncond ? -1 : cls >= 0 ? cls : label_dim > 0 ? i % label_dim : -1;
}

/* The trajectory error of nb images against their reference, summed as one batch. */
static void add_traj(eval_run *r, const float *x, const float *xr, size_t count) {
    double rmse = 0;
    pd_trajectory_error(x, xr, count, &rmse, NULL);
    r->traj_sq += rmse * rmse * (double)count;
    r->traj_count += (double)count;
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    const char *model = NULL, *class_arg = NULL, *classifier = NULL, *ref_cache = NULL,
               *images = NULL, *data_dir = NULL, *inception = NULL, *prep = NULL, *fid_ref = NULL,
               *save_ref = NULL;
    int features = 0;
    int n = 5000, batch = 64, size = 0, threads = 0, quiet = 0, json = 0, uncond = 0, split = 0;
    int ref_steps = 0, kid_subsets = 100, kid_size = 1000, pr_k = 3;
    uint64_t seed = 0, kid_seed = 0;
    cli_sampling_opts so;
    arg_opt srows[CLI_SAMPLING_MAX_ROWS];
    int n_srows = cli_sampling_opts_init(&so, srows, 1, "the model's", "the model's", "the model's trained size");
    cli_denoiser_opts dopt;
    arg_opt drows[CLI_DENOISER_MAX_ROWS];
    int n_drows = cli_denoiser_opts_init(&dopt, drows);

    arg_opt head[] = {
        OPT_DEF("--model", ARG_STR, &model, "FILE|SPEC", "model to sample", "the default model"),
    };
    arg_opt tail[] = {
        OPT_DEF("--class", ARG_STR, &class_arg, "K|NAME",
                "ask every image for this class (index or name)", "label i mod label_dim for image i"),
        OPT("--unconditional", ARG_FLAG, &uncond, NULL,
            "sample a conditional model without labels (no accuracy)"),
        OPT("--seed", ARG_U64, &seed, "S", "image i uses seed S + i (as pixdiff sample)"),
        OPT_DEF("--n", ARG_POS_INT, &n, "N", "number of images evaluated", "5000; --images: all"),
        OPT("--batch", ARG_POS_INT, &batch, "B", "images per denoiser call (does not change results)"),
        OPT("--size", ARG_NONNEG_INT, &size, "R",
            "sampling resolution (0: the trained one); images are average-pooled to 32 for the metrics"),
        OPT_DEF("--ref-steps", ARG_NONNEG_INT, &ref_steps, "N",
                "also solve from the same noise with heun, N karras steps, to where the sampler "
                "ends, and report RMSE/PSNR against it (trajectory error, docs/algorithms.md S0.7)",
                "off"),
        OPT_DEF("--images", ARG_STR, &images, "DIR",
                "evaluate the PNGs of DIR (sorted by name) instead of sampling", "off"),
        OPT_CHOICE("--data", &split,
                   "evaluate the first N images of a Fashion-MNIST split instead (a baseline)",
                   split_choices),
        OPT_CHOICE("--features", &features,
                   "feature space: the Fashion-MNIST classifier (FD, KID, accuracy, spectra) or "
                   "Inception-v3 (FID and KID, comparable with papers)", feature_choices),
        OPT_DEF("--inception", ARG_STR, &inception, "FILE",
                "inception: FID Inception weights (pixdiff convert of pytorch-fid's .pth)",
                "$PIXDIFF_INCEPTION"),
        OPT_DEF("--prep", ARG_STR, &prep, "MODE",
                "inception: preprocessing, pytorch-fid (resize as torch) or edm (as EDM's fid.py)",
                "pytorch-fid"),
        OPT_DEF("--ref", ARG_STR, &fid_ref, "SRC",
                "inception: reference, a PNG folder, FILE.npz statistics, FILE.npy images or "
                "fashion-mnist:test|train", "none"),
        OPT_DEF("--save-ref", ARG_STR, &save_ref, "FILE.npz",
                "inception: write the evaluated images' mu and sigma (pytorch-fid/EDM .npz)", "off"),
        OPT_DEF("--classifier", ARG_STR, &classifier, "FILE", "feature classifier",
                "$PIXDIFF_CLASSIFIER or models/fashion-classifier.safetensors"),
        OPT_DEF("--ref-cache", ARG_STR, &ref_cache, "FILE",
                "reference-statistics cache (made or refreshed when stale)",
                "$XDG_CACHE_HOME/pixdiff/ or ~/.cache/pixdiff/"),
        OPT_DEF("--data-dir", ARG_STR, &data_dir, "DIR", "Fashion-MNIST gzip IDX files",
                PD_FASHION_MNIST_DIR),
        OPT("--kid-subsets", ARG_POS_INT, &kid_subsets, "K", "KID: number of subsets"),
        OPT("--kid-subset-size", ARG_POS_INT, &kid_size, "M", "KID: images per subset (at most n)"),
        OPT("--kid-seed", ARG_U64, &kid_seed, "S", "KID: seed of the subset draws"),
        OPT_DEF("--pr-k", ARG_NONNEG_INT, &pr_k, "K",
                "precision/recall: the k of the k-NN radii (0 skips them)", "3"),
        OPT("--json", ARG_FLAG, &json, NULL, "print one JSON object instead of the table"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T",
                "threads (0: all cores; does not change results)", "$OMP_NUM_THREADS or all cores"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress or log lines on stderr"),
    };
    const int n_head = (int)(sizeof head / sizeof head[0]), n_tail = (int)(sizeof tail / sizeof tail[0]);
    arg_opt opts[sizeof head / sizeof head[0] + CLI_SAMPLING_MAX_ROWS + CLI_DENOISER_MAX_ROWS +
                 sizeof tail / sizeof tail[0]];
    const arg_rows blocks[] = {{head, n_head}, {srows, n_srows}, {drows, n_drows}, {tail, n_tail}};
    int n_opts = args_concat(opts, blocks, 4);
    arg_spec spec = {
        cmd,
        "[options]",
        "Generate N images (or read --images DIR, or take --data train|test) and print FD, KID +/- "
        "SE, class accuracy, precision and recall (Kynkaanniemi et al. 2019, k-NN radii) and "
        "spectral error against the Fashion-MNIST test split, on the "
        "features of the classifier, with n and the wall time. The test split's statistics are "
        "cached and recomputed when the classifier or the data change.",
        opts,
        n_opts,
        NULL,
        0,
        0,
        "Sampler, schedule and denoiser options (Skip-Tuning, upsample guidance) are those of\n"
        "pixdiff sample (see pixdiff sample --help); a one-step generator (SiD) takes none.\n"
        "examples:\n"
        "  pixdiff eval --sampler heun --steps 18 --n 5000\n"
        "  pixdiff eval --images samples/ --json\n"
        "  pixdiff eval --data train --n 5000     (train vs test: the metrics' floor)\n"
        "  pixdiff eval --features inception --data test --n 10000 --save-ref fm-test.npz\n"
        "  pixdiff eval --features inception --ref fm-test.npz --sampler heun --steps 18\n"};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    quiet_log = quiet;

    /* ---- flag combinations (exit 2, before any work) */
    const int sampling = !images && split == 0;
    if (images && split) cli_bad_flag(cmd, "--data", "give --images or --data, not both");
    if (!sampling) {
        static const char *const sampling_only[] = {"--model", "--class", "--unconditional", "--seed",
                                                    "--batch", "--size", "--ref-steps", NULL};
        const char *given = NULL;
        for (int i = 0; !given && sampling_only[i]; i++)
            if (args_given(&spec, sampling_only[i])) given = sampling_only[i];
        for (int i = 0; !given && i < n_srows; i++)
            if (args_given(&spec, srows[i].flag)) given = srows[i].flag;
        for (int i = 0; !given && i < n_drows; i++)
            if (args_given(&spec, drows[i].flag)) given = drows[i].flag;
        if (given)
            cli_bad_flag(cmd, given, "only read when sampling (not with %s)", images ? "--images" : "--data");
    }
    if (images && args_given(&spec, "--n") == 0) n = 0; /* all of them */
    if (class_arg && uncond) cli_bad_flag(cmd, "--unconditional", "give --class or --unconditional, not both");
    if (n == 1) cli_bad_flag(cmd, "--n", "the metrics need at least 2 images");
    cli_sampling_opts_check(&so, &spec, cmd);
    cli_denoiser_opts_check(&dopt, &spec, cmd);
    cli_apply_threads(args_given(&spec, "--threads"), threads);
    const int inc = features == 1;
    if (inc) {
        static const char *const clf_only[] = {"--classifier", "--ref-cache", NULL};
        for (int i = 0; clf_only[i]; i++)
            if (args_given(&spec, clf_only[i]))
                cli_bad_flag(cmd, clf_only[i], "only read with --features classifier");
        if (!fid_ref && !save_ref)
            cli_bad_flag(cmd, "--ref", "--features inception needs a reference (--ref DIR|FILE.npz|"
                         "FILE.npy|fashion-mnist:test) or --save-ref FILE.npz");
        if (save_ref) cli_check_out_path(cmd, "--save-ref", save_ref);
    } else {
        static const char *const inc_only[] = {"--inception", "--prep", "--ref", "--save-ref", NULL};
        for (int i = 0; inc_only[i]; i++)
            if (args_given(&spec, inc_only[i]))
                cli_bad_flag(cmd, inc_only[i], "only read with --features inception");
    }

    /* ---- classifier and reference statistics (may compute them once) */
    char clf_path[1024] = "";
    pd_model *clf = NULL;
    int clf_R = 1, clf_C = 0, clf_K = 0;
    if (inc) {
        /* Inception: no classifier; the network and the reference are loaded below. */
    } else if (classifier) {
        snprintf(clf_path, sizeof clf_path, "%s", classifier);
    } else {
        pd_error cerr = {{0}};
        if (pd_default_classifier_path(clf_path, sizeof clf_path, &cerr)) {
            const char *env = getenv("PIXDIFF_CLASSIFIER");
            cli_die(env && *env ? 2 : 1, cmd, "no --classifier given: %s; train one with `pixdiff "
                    "train --config %s --out runs/fashion-classifier` (then pass --classifier "
                    "runs/fashion-classifier/model.safetensors)", cerr.msg,
                    cli_shipped_config("train/fashion-classifier.yaml"));
        }
    }
    if (!inc) {
        clf = cli_model_load(cmd, clf_path);
        if (pd_classifier_feature_dim(clf) < 1)
            cli_bad_flag(cmd, "--classifier", "%s is a %s model, not a classifier", clf_path,
                         pd_model_config(clf)->kind);
        clf_R = pd_model_config(clf)->img_resolution, clf_C = pd_model_config(clf)->in_channels;
        clf_K = pd_model_config(clf)->label_dim;
    }

    /* The model is opened before the reference statistics, so a bad --model fails at once. */
    cli_model cm;
    memset(&cm, 0, sizeof cm);
    pd_sample_params p;
    memset(&p, 0, sizeof p);
    int cls = -1, label_dim = 0, C = clf_C, H = clf_R;
    char cls_name[32] = "";
    double gen_sigma = 0;
    pd_denoiser *d = NULL;
    if (sampling) {
        cli_model_open(&cm, cmd, model, size);
        C = cm.C;
        H = cm.H;
        label_dim = cm.label_dim;
        if (cm.W != H) cli_die(2, cmd, "%s: the metrics need square images (%dx%d)", cm.name, cm.W, H);
        if (!inc && (C != clf_C || H % clf_R))
            cli_die(2, cmd, "%s makes %dx%dx%d images; the classifier reads %dx%dx%d (the size must be a "
                    "multiple of %d)", cm.name, C, H, H, clf_C, clf_R, clf_R, clf_R);
        cls = cli_parse_class(cmd, "--class", class_arg, &cm, cls_name, sizeof cls_name);
        if (uncond && label_dim <= 0)
            cli_bad_flag(cmd, "--unconditional", "model '%s' is unconditional already", cm.name);
        /* A one-step generator (SiD) is one evaluation at its sigma_init (pd_generator); sampler
         * and schedule options do not apply (as in pixdiff sample). */
        gen_sigma = cm.gen ? cm.gen->sigma_init : 0;
        for (int i = 0; gen_sigma > 0 && i < n_srows; i++)
            if (args_given(&spec, srows[i].flag))
                cli_bad_flag(cmd, srows[i].flag, "%s is a one-step generator (NFE 1 at sigma_init %g); "
                             "sampler and schedule options do not apply", cm.name, gen_sigma);
        if (gen_sigma > 0 && ref_steps > 0)
            cli_bad_flag(cmd, "--ref-steps", "%s is a one-step generator: it has no ODE trajectory",
                         cm.name);
        cli_sampling_opts_params(&so, &spec, cmd, cm.sigma_min, cm.sigma_max, H,
                                 cm.model ? pd_model_config(cm.model)->img_resolution : H, &p);
        if (p.amed && cm.model && H != pd_model_config(cm.model)->img_resolution)
            cli_bad_flag(cmd, "--predictor", "reads the 8x8 feature tap of the trained size %d; "
                         "sampling at %d", pd_model_config(cm.model)->img_resolution, H);
        /* Skip-Tuning / upsample guidance: the denoiser the sampler sees (cli/denoiser_opts.c) */
        d = cli_denoiser_opts_apply(&dopt, &spec, cmd, &cm);
    }

    /* A PNG folder is listed and its first image checked before any reference work. */
    char **names = NULL;
    int count = 0, fc = 0, fh = 0;
    if (images) {
        names = cli_list_pngs(cmd, "--images", images, &count);
        if (n == 0 || n > count) {
            if (args_given(&spec, "--n") && n > count)
                cli_bad_flag(cmd, "--n", "%s has %d PNGs", images, count);
            n = count;
        }
        if (n < 2) cli_bad_flag(cmd, "--images", "%s: the metrics need at least 2 images", images);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", images, names[0]);
        float *img = NULL;
        int w = 0;
        pd_error e0 = {{0}};
        if (pd_png_read(path, &img, &fc, &fh, &w, &e0)) cli_die(2, cmd, "%s", e0.msg);
        free(img);
        if (inc && fc != 1 && fc != 3)
            cli_die(2, cmd, "%s: %d channels; Inception reads gray or RGB", path, fc);
        if (!inc && (fh != w || fc != clf_C || fh % clf_R))
            cli_die(2, cmd, "%s: %dx%dx%d; the classifier reads %dx%dx%d images (square, size a "
                    "multiple of %d)", path, fc, fh, w, clf_C, clf_R, clf_R, clf_R);
    }

    pd_eval_options eo = pd_eval_default_options();
    eo.ref_cache = ref_cache;
    eo.data_dir = data_dir;
    eo.kid.subsets = kid_subsets;
    eo.kid.subset_size = kid_size;
    eo.kid.seed = kid_seed;
    eo.pr_k = pr_k;
    eo.log = log_line;
    pd_eval *ev = NULL;
    pd_error err = {{0}};
    /* Under mpirun rank 0 measures; the others only help sample, then free what they hold. */
    cli_fid fid;
    memset(&fid, 0, sizeof fid);
    const int dist = pd_dist_size() > 1, lead = pd_dist_rank() == 0;
    if (!sampling && !lead) goto done;
    double t0 = cli_now();
    if (lead && inc) cli_fid_open(&fid, cmd, inception, prep, fid_ref, data_dir, quiet);
    else if (lead && pd_eval_create(&ev, clf, &eo, &err)) cli_die(1, cmd, "%s", err.msg);
    eval_run run = {cmd, ev, inc ? &fid : NULL, 0, 0, 0};
    if (lead && inc) {
        fid.progress = !sampling;   /* sampling draws its own progress bar */
        cli_fid_expect(&fid, n);
    }
    double t_ref = cli_now() - t0, t_sample = 0, t_start = cli_now();
    int label_mode_cycle = 0, nfe = 0;

    if (split) {
        /* ---- a Fashion-MNIST split as the "generated" set */
        float *x = NULL;
        uint8_t *lab = NULL;
        int nd = 0;
        if (pd_fashion_mnist_load(data_dir, split == 1, &x, &lab, &nd, &err)) cli_die(1, cmd, "%s", err.msg);
        if (n > nd) cli_bad_flag(cmd, "--n", "the %s split has %d images", split_choices[split], nd);
        int *labels = malloc(sizeof(int) * (size_t)n);
        if (!labels) cli_die(1, cmd, "out of memory");
        for (int i = 0; i < n; i++) labels[i] = lab[i] < clf_K ? lab[i] : -1;
        const int chunk = inc ? 64 : n;   /* Inception: chunks, for the progress line */
        for (int i0 = 0; i0 < n; i0 += chunk)
            add_batch(&run, x + (size_t)i0 * 32 * 32, n - i0 < chunk ? n - i0 : chunk, 1, 32, labels + i0);
        free(labels);
        free(x);
        free(lab);
    } else if (images) {
        /* ---- a folder of PNGs, streamed in batches */
        const int B = 64;
        float *buf = malloc(sizeof(float) * (size_t)B * fc * fh * fh);
        int *labels = malloc(sizeof(int) * B), nb = 0;
        if (!buf || !labels) cli_die(1, cmd, "out of memory");
        cli_progress bar;
        cli_progress_init(&bar, cmd, quiet || inc);   /* Inception draws its own line */
        const double t_read = cli_now();
        for (int i = 0; i < n; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", images, names[i]);
            float *img = NULL;
            int c, h, w;
            if (pd_png_read(path, &img, &c, &h, &w, &err)) cli_die(2, cmd, "%s", err.msg);
            if (c != fc || h != fh || w != fh) {
                cli_die(2, cmd, "%s: %dx%dx%d differs from the first image's %dx%dx%d", path, c, h, w,
                        fc, fh, fh);
            }
            memcpy(buf + (size_t)nb * c * h * w, img, sizeof(float) * (size_t)c * h * w);
            free(img);
            int k = png_class(path);
            labels[nb++] = k >= 0 && k < clf_K ? k : -1;
            if (nb == B || i == n - 1) {
                add_batch(&run, buf, nb, fc, fh, labels);
                nb = 0;
                cli_progress_count(&bar, "", "images", i + 1, n, t_read);
            }
        }
        cli_progress_clear(&bar);
        H = fh;
        cli_free_names(names, count);
        names = NULL;
        free(buf);
        free(labels);
    } else {
        /* ---- sample, as pixdiff sample does (the library's pd_generate): image i from
         * pd_randn(seed + i) with class classes[i]; chunks of --batch images, each followed by its
         * reference solution from the same noise and the metrics' accumulation. */
        const size_t chw = (size_t)C * H * H;
        if (batch > n) batch = n;
        label_mode_cycle = label_dim > 0 && cls < 0 && !uncond;
        /* this rank's images [dlo, dhi); under mpirun all of them are kept for the gather */
        long long dlo, dhi;
        pd_dist_part(n, &dlo, &dhi);
        const size_t held = dist ? (size_t)n : (size_t)batch;
        float *x = malloc(sizeof(float) * chw * held);
        /* xr: the reference each image is compared with; xe: the reference's state at its last
         * nonzero sigma, scratch when the run ends at sigma = 0 (docs/algorithms.md §S0.7). */
        float *xr = ref_steps > 0 ? malloc(sizeof(float) * chw * held) : NULL;
        const int zero_end = ref_steps > 0 && !cm.gen && p.sched.end_at_zero;
        float *xe = zero_end ? malloc(sizeof(float) * chw * (size_t)batch) : NULL;
        int *want = malloc(sizeof(int) * (size_t)batch);
        int *classes = malloc(sizeof(int) * (size_t)n);
        if (!x || (ref_steps > 0 && !xr) || (zero_end && !xe) || !want || !classes)
            cli_die(1, cmd, "out of memory for a batch of %d images of %dx%dx%d", batch, C, H, H);
        for (int i = 0; i < n; i++)
            classes[i] = class_of(i, uncond, cls, label_dim);
        pd_generate_params gp = pd_generate_default_params();
        gp.sample = p;
        gp.seed = seed;
        gp.classes = classes;
        gp.batch = batch;
        gp.progress = eval_progress;
        gp.abort = abort_cb;
        signal(SIGINT, on_sigint);
        int n_batches = (int)((dhi - dlo + batch - 1) / batch);
        eval_bar prog = {.n_batches = n_batches, .ref_steps = ref_steps > 0 ? ref_steps : 0,
                         .t0 = cli_now()};
        cli_progress_init(&prog.ui, cmd, quiet);
        gp.user = &prog;
        float *const x0 = x, *const xr0 = xr;
        for (int b = 0; b < n_batches; b++) {
            int i0 = (int)dlo + b * batch, nb = (int)dhi - i0 < batch ? (int)dhi - i0 : batch;
            if (dist) x = x0 + (size_t)i0 * chw, xr = xr0 ? xr0 + (size_t)i0 * chw : NULL;
            /* Accuracy needs the classifier to know the model's classes. */
            for (int i = 0; i < nb; i++) {
                int k = classes[i0 + i];
                want[i] = k >= 0 && k < clf_K && label_dim == clf_K ? k : -1;
            }
            prog.b = b;
            prog.in_ref = 0;
            pd_sample_stats st = {0};
            double ts = cli_now();
            if (cm.gen ? pd_generator_generate(cm.gen, &gp, i0, nb, x, &st, &err)
                       : pd_generate(d, &gp, i0, nb, x, &st, &err)) {
                cli_progress_clear(&prog.ui);
                if (interrupted) cli_die(130, cmd, "interrupted");
                cli_die(1, cmd, "%s", err.msg);
            }
            nfe = st.nfe;
            if (xr) {
                /* The reference of the same request (samplers/trajectory.c): the sweep's too. */
                prog.in_ref = 1;
                if (pd_trajectory_reference(d, &gp, ref_steps, i0, nb, zero_end ? xe : xr,
                                            zero_end ? xr : NULL, &st, &err)) {
                    cli_progress_clear(&prog.ui);
                    if (interrupted) cli_die(130, cmd, "interrupted");
                    cli_die(1, cmd, "reference solution: %s", err.msg);
                }
                if (!dist) add_traj(&run, x, xr, chw * (size_t)nb);
            }
            t_sample += cli_now() - ts;
            if (!dist) add_batch(&run, x, nb, C, H, want);
        }
        cli_progress_clear(&prog.ui);
        x = x0, xr = xr0;
        if (dist) {
            /* Rank 0 measures all n images in the batches one process uses. */
            pd_dist_gather(x, n, chw * sizeof(float));
            if (xr) pd_dist_gather(xr, n, chw * sizeof(float));
            nfe = pd_dist_max(dhi > dlo ? nfe : -1);
            for (int i0 = 0; lead && i0 < n; i0 += batch) {
                int nb = n - i0 < batch ? n - i0 : batch;
                for (int i = 0; i < nb; i++) {
                    int k = classes[i0 + i];
                    want[i] = k >= 0 && k < clf_K && label_dim == clf_K ? k : -1;
                }
                if (xr) add_traj(&run, x + (size_t)i0 * chw, xr + (size_t)i0 * chw, chw * (size_t)nb);
                add_batch(&run, x + (size_t)i0 * chw, nb, C, H, want);
            }
        }
        free(x), free(xr), free(xe), free(want), free(classes);
        if (!lead) goto done;
    }

    /* ---- metrics */
    pd_eval_result r;
    memset(&r, 0, sizeof r);
    double tm = cli_now();
    if (inc) cli_fid_finish(&fid, save_ref, &eo.kid, pr_k, quiet);
    else if (pd_eval_finish(ev, &r, &err)) cli_die(1, cmd, "%s", err.msg);
    if (!inc && r.n < pd_classifier_feature_dim(clf))
        fprintf(stderr, "pixdiff eval: warning: %d images is fewer than the %d feature dimensions: "
                "the covariance is singular, so FD and KID are not meaningful (KID can come out "
                "negative); use --n %d or more\n", r.n, pd_classifier_feature_dim(clf),
                pd_classifier_feature_dim(clf) * 4);
    run.t_metrics += cli_now() - tm;
    double wall = cli_now() - t_start + t_ref;
    double traj_rmse = NAN, traj_psnr = NAN;
    if (run.traj_count > 0) {
        double mse = run.traj_sq / run.traj_count;
        traj_rmse = sqrt(mse);
        traj_psnr = mse > 0 ? 10 * log10(4 / mse) : INFINITY;
    }
    const char *source = split ? (split == 1 ? "fashion-mnist:train" : "fashion-mnist:test")
                         : images ? images : cm.name;

    if (json) {
        cli_buf b = {0};
        cli_buf_printf(&b, "{\"version\": ");
        cli_buf_json_str(&b, pd_version());
        cli_buf_printf(&b, ", \"source\": ");
        cli_buf_json_str(&b, source);
        if (sampling) {
            cli_buf_printf(&b, ", \"model\": ");
            cli_buf_json_str(&b, cm.spec);
            cli_buf_printf(&b, ", \"model_sha256\": ");
            cli_buf_json_str(&b, cm.sha256);
            cli_buf_printf(&b, ", \"sampler\": ");
            cli_buf_json_str(&b, gen_sigma > 0 ? "generator" : pd_sampler_name(p.sampler));
            cli_buf_printf(&b, ", \"denoiser_transform\": ");
            cli_buf_json_str(&b, dopt.desc);
            cli_buf_printf(&b, ", \"schedule\": ");
            cli_buf_json_str(&b, pd_grid_name(p.sched.grid));
            cli_buf_printf(&b, ", \"steps\": %d, \"nfe\": %d, \"seed\": %" PRIu64 ", \"size\": %d",
                           gen_sigma > 0 ? 1 : p.steps, nfe, seed, H);
            cli_buf_printf(&b, ", \"labels\": \"%s\"",
                           uncond ? "none" : cls >= 0 ? "fixed" : label_mode_cycle ? "cycle" : "none");
        }
        if (inc) cli_fid_json(&fid, &b, save_ref);
        else {
            cli_buf_printf(&b, ", \"n\": %d, \"fd\": ", r.n);
            cli_buf_json_num(&b, r.fd);
            cli_buf_printf(&b, ", \"kid\": ");
            cli_buf_json_num(&b, r.kid.kid);
            cli_buf_printf(&b, ", \"kid_se\": ");
            cli_buf_json_num(&b, r.kid.se);
            cli_buf_printf(&b, ", \"kid_std\": ");
            cli_buf_json_num(&b, r.kid.std);
            cli_buf_printf(&b, ", \"kid_subsets\": %d, \"kid_subset_size\": %d, \"accuracy\": ",
                           r.kid.subsets, r.kid.subset_size);
            cli_buf_json_num(&b, r.accuracy);
            cli_buf_printf(&b, ", \"n_labelled\": %d, \"precision\": ", r.n_labelled);
            cli_buf_json_num(&b, r.precision);
            cli_buf_printf(&b, ", \"recall\": ");
            cli_buf_json_num(&b, r.recall);
            cli_buf_printf(&b, ", \"pr_k\": %d, \"pr_n\": %d, \"spectral_error\": ", r.pr_k, r.pr_n);
            cli_buf_json_num(&b, r.spectral_error);
            cli_buf_printf(&b, ", \"spectrum_bins\": %d", r.spectrum_bins);
            cli_buf_printf(&b, ", \"ref_n\": %d, \"ref_accuracy\": ", r.ref_n);
            cli_buf_json_num(&b, r.ref_accuracy);
            cli_buf_printf(&b, ", \"ref_cache\": ");
            cli_buf_json_str(&b, r.ref_path);
            cli_buf_printf(&b, ", \"classifier\": ");
            cli_buf_json_str(&b, clf_path);
            cli_buf_printf(&b, ", \"classifier_sha256\": ");
            cli_buf_json_str(&b, pd_model_sha256(clf));
        }
        cli_buf_printf(&b, ", \"trajectory_rmse\": ");
        cli_buf_json_num(&b, traj_rmse);
        cli_buf_printf(&b, ", \"trajectory_psnr\": ");
        cli_buf_json_num(&b, traj_psnr);
        cli_buf_printf(&b, ", \"ref_steps\": %d", ref_steps);
        cli_buf_printf(&b, ", \"wall_s\": ");
        cli_buf_json_num(&b, wall);
        cli_buf_printf(&b, ", \"sampling_s\": ");
        cli_buf_json_num(&b, t_sample);
        cli_buf_printf(&b, ", \"metrics_s\": ");
        cli_buf_json_num(&b, run.t_metrics);
        cli_buf_printf(&b, ", \"reference_s\": ");
        cli_buf_json_num(&b, t_ref);
        cli_buf_printf(&b, "}");
        printf("%s\n", b.s);
        cli_buf_free(&b);
    } else {
        if (sampling) {
            if (gen_sigma > 0)
                printf("%s: one-step generator (sigma_init %g), NFE %d, %dx%d, seed %" PRIu64 ", ",
                       source, gen_sigma, nfe, H, H, seed);
            else
                printf("%s: %s, %s, %d steps, NFE %d, %dx%d, seed %" PRIu64 ", ", source,
                       pd_sampler_name(p.sampler), pd_grid_name(p.sched.grid), p.steps, nfe, H, H, seed);
            if (dopt.desc[0]) printf("%s, ", dopt.desc);
            if (cls >= 0) printf("class %d%s%s%s\n", cls, cls_name[0] ? " (" : "", cls_name, cls_name[0] ? ")" : "");
            else if (label_mode_cycle) printf("labels cycle 0..%d\n", label_dim - 1);
            else printf("no labels\n");
        } else {
            printf("%s\n", source);
        }
        if (inc) {
            cli_fid_print(&fid, save_ref);
        } else {
            printf("  n                 %d\n", r.n);
            printf("  FD                %.4f\n", r.fd);
            printf("  KID               %.6f +/- %.6f (SE; %d subsets of %d)\n", r.kid.kid, r.kid.se,
                   r.kid.subsets, r.kid.subset_size);
            if (r.n_labelled > 0)
                printf("  class accuracy    %.4f (%d labelled; the classifier on the test split: %.4f)\n",
                       r.accuracy, r.n_labelled, r.ref_accuracy);
            else printf("  class accuracy    n/a (no requested labels)\n");
            if (r.pr_n > 0)
                printf("  precision/recall  %.4f / %.4f (k = %d, %d images of each set)\n", r.precision,
                       r.recall, r.pr_k, r.pr_n);
            else printf("  precision/recall  n/a (needs more than %d images)\n", r.pr_k);
            printf("  spectral error    %.4f (RMSE of log10 radial power, %d bins)\n", r.spectral_error,
                   r.spectrum_bins - 1);
        }
        if (run.traj_count > 0)
            printf("  trajectory error  RMSE %.5f, PSNR %.2f dB (vs heun, %d steps)\n", traj_rmse,
                   traj_psnr, ref_steps);
        printf("  wall time         %.2f s (sampling %.2f s, metrics %.2f s, reference %.2f s)\n", wall,
               t_sample, run.t_metrics, t_ref);
        if (!inc) printf("  reference         %d test images, %s\n", r.ref_n, r.ref_path);
    }
done:
    if (names) cli_free_names(names, count);
    pd_eval_free(ev);
    cli_fid_close(&fid);
    cli_denoiser_opts_free(&dopt);
    if (sampling) cli_model_close(&cm);
    cli_sampling_opts_free(&so);
    pd_model_free(clf);
    return 0;
}
