/* cmd_sample.c — `pixdiff sample`: draw images with a sampler and write a PNG grid, one PNG per
 * image, and/or the float32 samples as .npy.
 *
 * Reproducibility contract (issue "Noise and reproducibility"; EDM's generate.py): image i uses
 * its seed, the i-th of --seeds (0-63,100,...) or S + i for --seed S, for its initial noise
 * (pd_randn(seed, stream 0)) and every per-step noise, so an image is bit-identical whatever
 * --batch, --threads or the other images in the request; with neither flag a seed is drawn,
 * printed and recorded. --outdir files are named by seed (000123.png). The batching loop is the
 * library's pd_generate. Every flag is validated, the model loaded and --noise checked before any
 * sampling, and every output is written under a temporary name and renamed into place only when
 * all of them succeeded (cli/outputs.c), so an error or Ctrl-C (exit 130) writes nothing. PNGs
 * carry an A1111-style "parameters" chunk and a "pixdiff" JSON chunk holding every setting
 * (DESIGN.md "File formats"); --json prints the same settings and the outputs on stdout.
 * Under mpirun (docs/scale-out.md §4) rank r generates the images pd_dist_part gives it (one
 * pd_generate range), rank 0 gathers them and writes every output, so the files are those of one
 * process; a drawn seed is rank 0's, sent to the others.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/denoiser_opts.h"
#include "cli/names.h"
#include "cli/outputs.h"
#include "cli/sampling_opts.h"
#include "cli/seeds.h"
#include "pixdiff.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Everything the metadata needs, resolved once. */
typedef struct run_info {
    const cli_model *cm;
    const pd_sample_params *p;
    int steps, nfe, n, C, H, W, cols;
    const uint64_t *seeds;  /* image i's seed */
    char seeds_desc[256];   /* the list syntax of all seeds ("5-68") */
    int seed_drawn;         /* 1: no --seed/--seeds, the seed was drawn */
    int guided;             /* --guidance given */
    double guidance;
    int cls;                /* the class asked for (-1: none); with cycle, of the image written */
    int cycle;              /* --class cycle: image i asks for class i mod label_dim */
    char cls_name[32];
    const char *noise_path;
    double rho; /* effective rho, or 0 when the grid has none */
    double gen_sigma; /* > 0: a one-step generator evaluated at this sigma_init (no sampler) */
    const char *predictor;  /* AMED predictor file, or NULL */
    const char *transform;  /* Skip-Tuning / upsample guidance description, "" when none */
} run_info;

static const char *kind_of(const cli_model *cm) {
    if (!cm->model) return "analytic";
    const char *k = pd_model_config(cm->model)->kind;
    return k[0] ? k : "denoiser";
}

/* The sampler options in the "parameters" text (the option table, pixdiff.h): each row with a
 * PNG name that the sampler reads, when not its default; a key group (S_churn) with its members. */
static void options_parameters(cli_buf *b, const pd_sample_params *p) {
    int n;
    const pd_sampler_option *t = pd_sampler_options(&n);
    for (int i = 0; i < n; i++) {
        const pd_sampler_option *o = &t[i];
        if (!o->png || o->key_rule == PD_OPT_KEY_MEMBER || !(o->samplers & (1u << p->sampler)) ||
            pd_sampler_option_get(p, o) == o->def)
            continue;
        for (int j = i; j < n && (j == i || t[j].key_rule == PD_OPT_KEY_MEMBER); j++)
            if (t[j].png) cli_buf_printf(b, ", %s: %g", t[j].png, pd_sampler_option_value(p, &t[j]));
    }
}

/* The sampler options in the JSON chunk: block 0 and 1 hold what pixdiff 0.1 always wrote there
 * (one key per JSON name); block -1 the later options, only those the sampler reads that are
 * not at their defaults, so the files of earlier settings stay the same byte for byte. */
static void options_json(cli_buf *b, const pd_sample_params *p, int block) {
    int n;
    const pd_sampler_option *t = pd_sampler_options(&n);
    for (int i = 0; i < n; i++) {
        const pd_sampler_option *o = &t[i];
        const char *name = o->json ? o->json : o->name;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(name, t[j].json ? t[j].json : t[j].name);
        if (o->json_block != block || seen) continue;
        if (block < 0 && (!(o->samplers & (1u << p->sampler)) || pd_sampler_option_get(p, o) == o->def))
            continue;
        cli_buf_printf(b, ", \"%s\": ", name);
        if (o->type == PD_OPT_NUM) cli_buf_json_num(b, pd_sampler_option_value(p, o));
        else cli_buf_printf(b, "%d", (int)pd_sampler_option_value(p, o));
    }
}

/* A1111-style one-line "parameters" text: "Steps: 18, Sampler: heun, ...". index < 0: a grid. */
static void make_parameters(cli_buf *b, const run_info *r, int index) {
    const pd_sample_params *p = r->p;
    uint64_t seed = r->seeds[index < 0 ? 0 : index];
    if (r->gen_sigma > 0) {
        cli_buf_printf(b, "Steps: 1, Sampler: generator, Sigma init: %g", r->gen_sigma);
    } else {
        cli_buf_printf(b, "Steps: %d, Sampler: %s, Schedule: %s", r->steps,
                       pd_sampler_name(p->sampler), pd_grid_name(p->sched.grid));
        if (r->rho > 0) cli_buf_printf(b, ", Rho: %g", r->rho);
        cli_buf_printf(b, ", Sigma min: %g, Sigma max: %g, End: %s", p->sched.sigma_min,
                       p->sched.sigma_max, p->sched.end_at_zero ? "zero" : "sigma-min");
    }
    if (r->gen_sigma <= 0 && p->sched.shift != PD_SHIFT_NONE) {
        cli_buf_printf(b, ", Shift: %s, Shift base: %g", pd_shift_name(p->sched.shift),
                       p->sched.shift_base);
        if (p->sched.shift == PD_SHIFT_INTERP)
            cli_buf_printf(b, ", Shift base low: %g", p->sched.shift_base_low);
    }
    options_parameters(b, p);
    if (r->gen_sigma <= 0 && p->afs) cli_buf_printf(b, ", AFS: on");
    if (r->predictor) cli_buf_printf(b, ", Predictor: %s", r->predictor);
    /* quoted, as A1111 writes a value holding commas */
    if (r->transform && r->transform[0]) cli_buf_printf(b, ", Denoiser: \"%s\"", r->transform);
    if (r->guided) cli_buf_printf(b, ", CFG scale: %g", r->guidance);
    if (r->cycle && index < 0) {
        cli_buf_printf(b, ", Class: cycle (image i: i mod %d)", r->cm->label_dim);
    } else if (r->cls >= 0) {
        cli_buf_printf(b, ", Class: %d", r->cls);
        if (r->cls_name[0]) cli_buf_printf(b, " (%s)", r->cls_name);
    }
    cli_buf_printf(b, ", Seed: %" PRIu64, seed);
    if (index < 0 && r->n > 1) cli_buf_printf(b, ", Seeds: %s, Images: %d", r->seeds_desc, r->n);
    if (r->noise_path) cli_buf_printf(b, ", Noise: %s", r->noise_path);
    cli_buf_printf(b, ", NFE: %d, Model: %s", r->nfe, r->cm->name);
    if (r->cm->sha256[0]) cli_buf_printf(b, ", Model hash: %.10s", r->cm->sha256);
    /* only when not the default, so that fp32 files stay as they were byte for byte */
    if (strcmp(pd_precision(), "fp32")) cli_buf_printf(b, ", Precision: %s", pd_precision());
    cli_buf_printf(b, ", Size: %dx%d, Version: pixdiff %s", r->W, r->H, pd_version());
}

/* The "pixdiff" JSON chunk: every setting, machine-readable. index < 0: a grid of all images. */
static void make_json(cli_buf *b, const run_info *r, int index) {
    const pd_sample_params *p = r->p;
    const cli_model *cm = r->cm;
    cli_buf_printf(b, "{\"version\": ");
    cli_buf_json_str(b, pd_version());
    cli_buf_printf(b, ", \"model\": {\"path\": ");
    cli_buf_json_str(b, cm->spec);
    cli_buf_printf(b, ", \"name\": ");
    cli_buf_json_str(b, cm->name);
    cli_buf_printf(b, ", \"sha256\": ");
    cli_buf_json_str(b, cm->sha256);
    cli_buf_printf(b, ", \"kind\": ");
    cli_buf_json_str(b, kind_of(cm));
    cli_buf_printf(b, ", \"default\": %s}", cm->is_default ? "true" : "false");
    cli_buf_printf(b, ", \"sampler\": ");
    cli_buf_json_str(b, r->gen_sigma > 0 ? "generator" : pd_sampler_name(p->sampler));
    if (r->gen_sigma > 0) {
        cli_buf_printf(b, ", \"sigma_init\": ");
        cli_buf_json_num(b, r->gen_sigma);
    }
    cli_buf_printf(b, ", \"schedule\": ");
    cli_buf_json_str(b, pd_grid_name(p->sched.grid));
    cli_buf_printf(b, ", \"rho\": ");
    if (r->rho > 0) cli_buf_json_num(b, r->rho);
    else cli_buf_printf(b, "null");
    cli_buf_printf(b, ", \"sigma_min\": ");
    cli_buf_json_num(b, p->sched.sigma_min);
    cli_buf_printf(b, ", \"sigma_max\": ");
    cli_buf_json_num(b, p->sched.sigma_max);
    cli_buf_printf(b,
                   ", \"end\": \"%s\", \"shift\": ", p->sched.end_at_zero ? "zero" : "sigma-min");
    cli_buf_json_str(b, pd_shift_name(p->sched.shift));
    cli_buf_printf(b, ", \"shift_res\": ");
    cli_buf_json_num(b, p->sched.shift_res);
    cli_buf_printf(b, ", \"shift_base\": ");
    cli_buf_json_num(b, p->sched.shift_base);
    cli_buf_printf(b, ", \"shift_base_low\": ");
    cli_buf_json_num(b, p->sched.shift_base_low);
    cli_buf_printf(b, ", \"steps\": %d, \"nfe\": %d", r->steps, r->nfe);
    options_json(b, p, 0);
    cli_buf_printf(b, ", \"class\": ");
    if (r->cycle && index < 0) {
        cli_buf_printf(b, "\"cycle\"");
    } else if (r->cls < 0) {
        cli_buf_printf(b, "null");
    } else {
        cli_buf_printf(b, "{\"index\": %d, \"name\": ", r->cls);
        cli_buf_json_str(b, r->cls_name);
        cli_buf_printf(b, "}");
    }
    cli_buf_printf(b, ", \"seed\": %" PRIu64 ", \"seeds\": ", r->seeds[index < 0 ? 0 : index]);
    cli_buf_json_str(b, r->seeds_desc);
    cli_buf_printf(b, ", \"seed_drawn\": %s, \"guidance\": ", r->seed_drawn ? "true" : "false");
    if (r->guided) cli_buf_json_num(b, r->guidance);
    else cli_buf_printf(b, "null");
    cli_buf_printf(b, ", \"image_index\": %d, \"image_count\": %d", index < 0 ? 0 : index, r->n);
    if (index < 0) cli_buf_printf(b, ", \"grid\": {\"images\": %d, \"cols\": %d}", r->n, r->cols);
    cli_buf_printf(b, ", \"noise\": ");
    if (r->noise_path) cli_buf_json_str(b, r->noise_path);
    else cli_buf_printf(b, "\"philox: image i uses pd_randn(seed of image i, 0)\"");
    cli_buf_printf(b, ", \"afs\": %s", p->afs ? "true" : "false");
    options_json(b, p, 1);
    options_json(b, p, -1);
    cli_buf_printf(b, ", \"predictor\": ");
    if (r->predictor) cli_buf_json_str(b, r->predictor);
    else cli_buf_printf(b, "null");
    cli_buf_printf(b, ", \"denoiser_transform\": ");
    cli_buf_json_str(b, r->transform ? r->transform : "");
    if (strcmp(pd_precision(), "fp32")) {   /* as in the parameters text */
        cli_buf_printf(b, ", \"precision\": ");
        cli_buf_json_str(b, pd_precision());
    }
    cli_buf_printf(b, ", \"size\": [%d, %d, %d]}", r->C, r->H, r->W);
}

/* path: where to write (a temporary name, cli/outputs.c); shown: the name errors give. */
static void write_png(const char *cmd, const char *path, const char *shown, const float *x, int n,
                      int cols, const run_info *r, int index) {
    cli_buf params = {0}, json = {0};
    make_parameters(&params, r, index);
    make_json(&json, r, index);
    const char *text[] = {"parameters", params.s, "pixdiff", json.s, NULL};
    pd_error err = {{0}};
    if (pd_png_write_grid(path, x, n, r->C, r->H, r->W, cols, text, &err))
        cli_die(1, cmd, "%s: cannot write: %s", shown, err.msg);
    cli_buf_free(&params);
    cli_buf_free(&json);
}

/* pd_generate's images callback for --outdir: one PNG per image, named by its seed, into the
 * staging directory (moved into --outdir on success). */
typedef struct outdir_writer {
    const char *cmd, *stage;
    run_info *r;
    const int *classes;     /* the class of each image, or NULL */
    const cli_model *cm;
    cli_progress *prog;
} outdir_writer;

static int write_images(void *user, long long first, int count, const float *x, pd_error *err) {
    outdir_writer *w = user;
    run_info *r = w->r;
    const size_t chw = (size_t)r->C * r->H * r->W;
    cli_progress_clear(w->prog);
    for (int k = 0; k < count; k++) {
        const long long i = first + k;
        char path[4300];
        snprintf(path, sizeof path, "%s/%06" PRIu64 ".png", w->stage, r->seeds[i]);
        if (w->classes) { /* each file records the class its image was asked for */
            char cls[16];
            snprintf(cls, sizeof cls, "%d", w->classes[i]);
            r->cls = cli_parse_class(w->cmd, "--class", cls, w->cm, r->cls_name, sizeof r->cls_name);
        }
        write_png(w->cmd, path, path, x + (size_t)k * chw, 1, 1, r, (int)i);
    }
    (void)err;
    return 0;
}

static void sample_progress(void *user, const pd_progress *pr) {
    cli_progress_show(((outdir_writer *)user)->prog, pr);
}

/* --out: the format its extension names (.png grid or .npy array); anything else is refused. */
static int out_is_npy(const char *cmd, const char *flag, const char *path) {
    const char *dot = strrchr(path, '.');
    if (dot && !strcasecmp(dot, ".npy")) return 1;
    if (dot && !strcasecmp(dot, ".png")) return 0;
    cli_bad_flag(cmd, flag, "%s: name a .png (image grid) or .npy (float32 array) file", path);
}

int cmd_sample(int argc, char **argv) {
    const char *cmd = "sample";
    pd_sample_params p;
    const char *model = NULL, *class_arg = NULL, *out = NULL, *outdir = NULL, *noise_path = NULL,
               *out_npy = NULL, *seeds_arg = NULL, *precision = NULL;
    int n = 64, batch = 16, size = 0, threads = 0;
    int cols = 0, quiet = 0, json = 0, force_guidance = 0;
    uint64_t seed = 0;
    double guidance = 1;
    cli_sampling_opts so;
    arg_opt srows[CLI_SAMPLING_MAX_ROWS];
    int n_srows = cli_sampling_opts_init(&so, srows, 1, "the model's", "the model's", "the model's trained size");
    cli_denoiser_opts dopt;
    arg_opt drows[CLI_DENOISER_MAX_ROWS];
    int n_drows = cli_denoiser_opts_init(&dopt, drows);

    arg_opt head[] = {
        OPT_DEF("--model", ARG_STR, &model, "FILE|SPEC", "model file or analytic:... spec",
                "the default model"),
    };
    arg_opt tail[] = {
        OPT_DEF("--class", ARG_STR, &class_arg, "K|NAME",
                "class label (index or name) of a conditional model; cycle: image i asks for class i mod "
                "the class count (with --cols 10, one column per class)", "none (unconditional)"),
        OPT_DEF("--guidance", ARG_DOUBLE, &guidance, "W",
                "classifier-free guidance: D = D_uncond + W (D_cond - D_uncond), both in one batch "
                "(1: the conditional model; needs --class and a model trained with label dropout)",
                "off"),
        OPT("--force-guidance", ARG_FLAG, &force_guidance, NULL,
            "allow --guidance for a model that records no label dropout"),
        OPT_DEF("--seed", ARG_U64, &seed, "S", "image i uses seed S + i", "drawn at random, printed"),
        OPT_DEF("--seeds", ARG_STR, &seeds_arg, "LIST",
                "image i uses the i-th seed of LIST, e.g. 0-63,100,200-210 (not with --n or --seed)",
                "off"),
        OPT_DEF("--n", ARG_POS_INT, &n, "N", "number of images", "64, or the N of --noise"),
        OPT("--batch", ARG_POS_INT, &batch, "B",
            "images per denoiser call (does not change results)"),
        OPT_DEF("--out", ARG_STR, &out, "FILE.png|FILE.npy",
                "write a PNG grid, or the float32 samples [N,C,H,W] for a .npy name",
                "samples.png if no other output"),
        OPT("--cols", ARG_NONNEG_INT, &cols, "N", "grid columns (0: ceil(sqrt(n)))"),
        OPT_DEF("--outdir", ARG_STR, &outdir, "DIR",
                "write one PNG per image named by its seed, DIR/000123.png (creates DIR)", "off"),
        OPT_DEF("--noise", ARG_STR, &noise_path, "Z.npy",
                "initial noise z, float32 [N,C,H,W], instead of drawn noise", "off"),
        OPT_DEF("--output-npy", ARG_STR, &out_npy, "X.npy",
                "write the final samples as float32 [N,C,H,W]", "off"),
        OPT("--size", ARG_NONNEG_INT, &size, "R",
            "sampling resolution: the trained one times 1, 2, 4, ... (0: the trained one)"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T",
                "threads (0: all cores; does not change results)", "$OMP_NUM_THREADS or all cores"),
        OPT_DEF("--precision", ARG_STR, &precision, "P",
                "products of the direct convolutions: fp32, or bf16 (opt-in; needs an OpenBLAS "
                "with cblas_sbgemm; changes images slightly, not FD: docs/benchmarks.md)",
                "$PIXDIFF_PRECISION or fp32"),
        OPT("--json", ARG_FLAG, &json, NULL, "print a JSON summary (settings, seeds, outputs) on stdout"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress bar and no summary line"),
    };
    /* --model, then the shared sampler/grid options (cli/sampling_opts.c), then the rest. */
    const int n_head = (int)(sizeof head / sizeof head[0]), n_tail = (int)(sizeof tail / sizeof tail[0]);
    arg_opt opts[sizeof head / sizeof head[0] + CLI_SAMPLING_MAX_ROWS + CLI_DENOISER_MAX_ROWS +
                 sizeof tail / sizeof tail[0]];
    const arg_rows blocks[] = {{head, n_head}, {srows, n_srows}, {drows, n_drows}, {tail, n_tail}};
    int n_opts = args_concat(opts, blocks, 4);
    char epilog[8192];
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *mf = open_memstream(&buf, &len);
        if (mf) {
            cli_print_names(mf);
            fclose(mf);
            snprintf(epilog, sizeof epilog, "%s", buf);
            free(buf);
        } else {
            epilog[0] = 0;
        }
    }
    arg_spec spec = {
        cmd,
        "[options]",
        "Generate images by solving the diffusion ODE/SDE with a sampler. Image i uses its own "
        "seed (--seed S: S + i; --seeds LIST: the i-th listed), so results do not depend on "
        "--batch or --threads.",
        opts,
        n_opts,
        NULL,
        0,
        0,
        epilog};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);

    /* ---- flag combinations (exit 2, before any work) */
    cli_sampling_opts_check(&so, &spec, cmd);
    cli_denoiser_opts_check(&dopt, &spec, cmd);
    const int guided = args_given(&spec, "--guidance");
    if (force_guidance && !guided) cli_bad_flag(cmd, "--force-guidance", "only with --guidance");
    uint64_t *seeds = NULL;
    int n_seeds = 0;
    if (seeds_arg) {
        if (args_given(&spec, "--n")) cli_bad_flag(cmd, "--seeds", "give --n or --seeds, not both");
        if (args_given(&spec, "--seed")) cli_bad_flag(cmd, "--seeds", "give --seed or --seeds, not both");
        n_seeds = cli_parse_seeds(cmd, "--seeds", seeds_arg, &seeds);
        n = n_seeds;
    }
    if (!out && !outdir && !out_npy) out = "samples.png";
    const char *out_png = out;
    if (out && out_is_npy(cmd, "--out", out)) {
        if (out_npy) cli_bad_flag(cmd, "--out", "%s is a .npy name and --output-npy is given too", out);
        out_npy = out, out_png = NULL;
    }
    if (out_png) cli_check_out_path(cmd, "--out", out_png);
    if (out_npy) cli_check_out_path(cmd, args_given(&spec, "--output-npy") ? "--output-npy" : "--out", out_npy);
    if (outdir && !*outdir) cli_bad_flag(cmd, "--outdir", "expected a directory name");

    cli_apply_threads(args_given(&spec, "--threads"), threads);
    if (precision) {
        pd_error err = {{0}};
        if (pd_set_precision(precision, &err)) cli_bad_flag(cmd, "--precision", "%s", err.msg);
    }

    /* ---- model, shapes, class, noise (still nothing written) */
    cli_model cm;
    cli_model_open(&cm, cmd, model, size);
    pd_denoiser *d = cm.den;   /* NULL for a one-step generator (cm.gen) */
    const int C = cm.C, H = cm.H, W = cm.W, label_dim = cm.label_dim;
    const size_t chw = (size_t)C * H * W;
    char cls_name[32];
    const int cycle = class_arg && !strcmp(class_arg, "cycle");
    if (cycle && label_dim <= 0)
        cli_bad_flag(cmd, "--class", "model '%s' is unconditional (label_dim 0), got 'cycle'", cm.name);
    int cls = cycle ? -1 : cli_parse_class(cmd, "--class", class_arg, &cm, cls_name, sizeof cls_name);
    /* A one-step generator (SiD, kind "generator") is one evaluation at its sigma_init
     * (pd_generator), so there is no sampler, grid or step count to choose. */
    const double gen_sigma = cm.gen ? cm.gen->sigma_init : 0;
    for (int i = 0; gen_sigma > 0 && i < n_srows; i++)
        if (args_given(&spec, srows[i].flag))
            cli_bad_flag(cmd, srows[i].flag, "%s is a one-step generator (NFE 1 at sigma_init %g); "
                         "sampler and schedule options do not apply", cm.name, gen_sigma);
    if (guided) {
        const pd_unet_config *mc = cm.model ? pd_model_config(cm.model) : NULL;
        if (label_dim <= 0 || gen_sigma > 0)
            cli_bad_flag(cmd, "--guidance", "model '%s' is %s; classifier-free guidance needs a "
                         "class-conditional denoiser", cm.name,
                         gen_sigma > 0 ? "a one-step generator" : "unconditional");
        if (!class_arg)
            cli_bad_flag(cmd, "--guidance", "guides towards a class: give --class K (or cycle)");
        if (mc && mc->label_dropout == 0 && !force_guidance)
            cli_bad_flag(cmd, "--guidance", "model '%s' was trained without label dropout, so its "
                         "unconditional output means nothing (--force-guidance to use it anyway)",
                         cm.name);
        if (mc && mc->label_dropout < 0 && !force_guidance && !quiet)
            fprintf(stderr, "pixdiff sample: note: model '%s' does not record its label dropout; "
                    "guidance assumes it was trained with some (configs/train/fashion32.yaml: 0.1)\n",
                    cm.name);
    }

    float *noise = NULL;
    if (noise_path) {
        pd_error err = {{0}};
        int shape[4] = {0}, ndim = 0;
        if (pd_npy_read(noise_path, &noise, shape, &ndim, &err))
            cli_die(2, cmd, "--noise: %s", err.msg);
        if (!args_given(&spec, "--n") && !seeds_arg && ndim == 4) n = shape[0];
        if (ndim != 4 || shape[0] != n || shape[1] != C || shape[2] != H || shape[3] != W) {
            char got[96] = "";
            size_t len = 0;
            for (int i = 0; i < ndim && len < sizeof got; i++)
                len +=
                    (size_t)snprintf(got + len, sizeof got - len, "%s%d", i ? "," : "", shape[i]);
            cli_die(2, cmd, "--noise %s: shape [%s] does not match [%d,%d,%d,%d] (n, C, H, W)",
                    noise_path, got, n, C, H, W);
        }
        size_t finite = 0;
        for (size_t j = 0; j < (size_t)n * chw; j++) finite += isfinite(noise[j]) != 0;
        if (finite < (size_t)n * chw)
            cli_die(2, cmd, "--noise %s: %zu of %zu values are NaN or infinite", noise_path,
                    (size_t)n * chw - finite, (size_t)n * chw);
    }

    /* ---- seeds: --seeds, --seed S (S + i), or one drawn and printed */
    const int seed_drawn = !seeds_arg && !args_given(&spec, "--seed");
    if (seed_drawn) seed = cli_random_seed();
    if (seed_drawn) pd_dist_bcast(&seed, sizeof seed);   /* every rank samples rank 0's draw */
    if (!seeds) {
        seeds = malloc(sizeof(uint64_t) * (size_t)n);
        if (!seeds) cli_die(1, cmd, "out of memory for %d seeds", n);
        for (int i = 0; i < n; i++) seeds[i] = seed + (uint64_t)i;
    }
    if (outdir) /* one file per seed: a repeated seed would overwrite its own image */
        for (int i = 1; i < n; i++)
            for (int j = 0; j < i && j < 4096; j++)
                if (seeds[i] == seeds[j])
                    cli_bad_flag(cmd, "--seeds", "seed %" PRIu64 " is listed twice (--outdir names "
                                 "files by seed)", seeds[i]);

    cli_sampling_opts_params(&so, &spec, cmd, cm.sigma_min, cm.sigma_max, H,
                             cm.model ? pd_model_config(cm.model)->img_resolution : H, &p);
    /* Skip-Tuning / upsample guidance: the denoiser the sampler sees (cli/denoiser_opts.c) */
    d = cli_denoiser_opts_apply(&dopt, &spec, cmd, &cm);
    if (p.amed) {
        const pd_amed_info *ai = pd_amed_predictor_info(p.amed);
        if (cm.model && H != pd_model_config(cm.model)->img_resolution)
            cli_bad_flag(cmd, "--predictor", "reads the 8x8 feature tap of the trained size %d; "
                         "sampling at %d", pd_model_config(cm.model)->img_resolution, H);
        if (!quiet && ai->model_sha256[0] && cm.sha256[0] && strcmp(ai->model_sha256, cm.sha256))
            fprintf(stderr, "pixdiff sample: warning: --predictor was trained for %s (sha256 %.10s), "
                    "not for %s (%.10s)\n", ai->model_name, ai->model_sha256, cm.name, cm.sha256);
    } else if (!quiet && gen_sigma <= 0 &&
               (p.sampler == PD_SAMPLER_AMED || p.sampler == PD_SAMPLER_AMED_PLUGIN)) {
        fprintf(stderr, "pixdiff sample: note: %s without --predictor uses r = 1/2, c = 1 "
                "(amed is then DPM-Solver-2); train one with pixdiff distill amed\n",
                pd_sampler_name(p.sampler));
    }
    const int steps = gen_sigma > 0 ? 1 : p.steps;

    /* ---- buffers: all images when a grid or .npy is wanted, else one batch at a time */
    if (batch > n) batch = n;
    /* The grid's column count as pd_png_write_grid resolves 0, so the metadata records it. */
    if (cols <= 0)
        while ((long long)cols * cols < n) cols++;
    /* Under mpirun: this rank's images [dlo, dhi); rank 0 holds them all to write them. */
    const int dist = pd_dist_size() > 1;
    long long dlo, dhi;
    pd_dist_part(n, &dlo, &dhi);
    const int keep_all = out_png || out_npy || dist;
    float *all = NULL;
    int *classes = NULL;
    if (keep_all) all = malloc(sizeof(float) * chw * (size_t)n);
    if (cycle) classes = malloc(sizeof(int) * (size_t)n);
    if ((keep_all && !all) || (cycle && !classes))
        cli_die(1, cmd, "out of memory for %d images of %dx%dx%d", n, C, H, W);
    for (int i = 0; cycle && i < n; i++) classes[i] = i % label_dim;

    run_info r = {
        &cm, &p,         steps, gen_sigma > 0 ? 1 : pd_sampler_nfe_for_steps(&p, steps), n, C, H, W,
        cols, seeds, "", seed_drawn, guided, guidance, cls, cycle, "", noise_path, 0, gen_sigma,
        NULL, NULL};
    snprintf(r.cls_name, sizeof r.cls_name, "%s", cls_name);
    cli_seeds_describe(r.seeds_desc, sizeof r.seeds_desc, seeds, n);
    r.rho = cli_sampling_opts_rho(&so);
    r.predictor = p.amed ? so.predictor_path : NULL;
    r.transform = dopt.desc;
    if (seed_drawn && !quiet)
        fprintf(stderr, "pixdiff sample: seed %" PRIu64 " (drawn; --seed %" PRIu64 " repeats this run)\n",
                seed, seed);

    /* ---- sample (pd_generate: the library's batching loop) */
    cli_progress prog;
    outdir_writer ow = {cmd, NULL, &r, classes, &cm, &prog};
    if (dist && pd_dist_rank() > 0) out_png = out_npy = outdir = NULL, quiet = 1, json = 0;
    cli_progress_init(&prog, "sample", quiet);
    if (outdir) ow.stage = cli_outputs_dir(cmd, "--outdir", outdir);
    cli_catch_interrupts();
    pd_generate_params gp = pd_generate_default_params();
    gp.sample = p;
    gp.seeds = seeds;
    gp.classes = classes;
    gp.class_all = cls;
    gp.noise = noise;
    gp.batch = batch;
    gp.use_guidance = guided;
    gp.guidance = guidance;
    gp.progress = sample_progress;
    gp.abort = cli_interrupted;
    gp.images = outdir && !dist ? write_images : NULL;
    gp.user = &ow;
    double t0 = cli_now();
    pd_sample_stats st = {0};
    pd_error err = {{0}};
    float *mine = all ? all + (size_t)dlo * chw : NULL;
    if (cm.gen ? pd_generator_generate(cm.gen, &gp, dlo, (int)(dhi - dlo), mine, &st, &err)
               : pd_generate(d, &gp, dlo, (int)(dhi - dlo), mine, &st, &err)) {
        cli_progress_clear(&prog);
        if (cli_interrupted(NULL)) cli_die(130, cmd, "interrupted; nothing written");
        cli_die(1, cmd, "%s", err.msg);
    }
    cli_progress_clear(&prog);
    r.nfe = st.nfe;
    /* The rate counts every image made: one process's sampling time, or under mpirun the wall
     * time until the last rank's images have reached rank 0 (st is rank 0's share alone). */
    double t_sampling = st.seconds_total;
    if (dist) {
        pd_dist_gather(all, n, chw * sizeof(float));
        t_sampling = cli_now() - t0;
        int nfe = pd_dist_max(dhi > dlo ? r.nfe : -1);   /* a rank may have had no image */
        if (nfe >= 0) r.nfe = nfe;
        if (outdir && write_images(&ow, 0, n, all, &err)) cli_die(1, cmd, "%s", err.msg);
    }

    /* ---- outputs: temporaries first, then all renamed into place */
    if (cycle) { /* the grid records "cycle", not the last image's class */
        r.cls = -1;
        r.cls_name[0] = 0;
    }
    if (out_npy) {
        int shape[4] = {n, C, H, W};
        if (pd_npy_write(cli_outputs_file(cmd, out_npy), all, shape, 4, &err))
            cli_die(1, cmd, "%s: cannot write: %s", out_npy, err.msg);
    }
    if (out_png) write_png(cmd, cli_outputs_file(cmd, out_png), out_png, all, n, cols, &r, -1);
    if (cli_interrupted(NULL)) cli_die(130, cmd, "interrupted; nothing written");
    cli_outputs_commit(cmd);
    double secs = cli_now() - t0;
    if (!quiet) {
        char ranks[32] = "";
        if (dist) snprintf(ranks, sizeof ranks, " on %d ranks", pd_dist_size());
        fprintf(stderr,
                "pixdiff sample: %d image%s %dx%d, %s, %d step%s, NFE %d, %.2f s (%.2f images/s%s)", n,
                n == 1 ? "" : "s", W, H, gen_sigma > 0 ? "one-step generator" : pd_sampler_name(p.sampler),
                steps, steps == 1 ? "" : "s", r.nfe, secs, t_sampling > 0 ? n / t_sampling : 0.0, ranks);
        if (out_png) fprintf(stderr, " -> %s", out_png);
        if (outdir) fprintf(stderr, " -> %s/", outdir);
        if (out_npy) fprintf(stderr, " -> %s", out_npy);
        fputc('\n', stderr);
    }
    if (json) {
        cli_buf b = {0};
        cli_buf_printf(&b, "{\"command\": \"sample\", \"images\": %d, \"seconds\": ", n);
        cli_buf_json_num(&b, secs);
        cli_buf_printf(&b, ", \"outputs\": {\"grid\": ");
        if (out_png) cli_buf_json_str(&b, out_png);
        else cli_buf_printf(&b, "null");
        cli_buf_printf(&b, ", \"npy\": ");
        if (out_npy) cli_buf_json_str(&b, out_npy);
        else cli_buf_printf(&b, "null");
        cli_buf_printf(&b, ", \"outdir\": ");
        if (outdir) cli_buf_json_str(&b, outdir);
        else cli_buf_printf(&b, "null");
        cli_buf_printf(&b, "}, \"settings\": ");
        make_json(&b, &r, -1);
        cli_buf_printf(&b, "}\n");
        fputs(b.s, stdout);
        cli_buf_free(&b);
    }
    free(all);
    free(classes);
    free(seeds);
    free(noise);
    cli_denoiser_opts_free(&dopt);
    cli_sampling_opts_free(&so);
    cli_model_close(&cm);
    return 0;
}
