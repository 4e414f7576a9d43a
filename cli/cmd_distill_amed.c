/* cmd_distill_amed.c — `pixdiff distill amed`: train an AMED predictor g_phi (docs/algorithms.md §S4.5)
 * for a model, a sampler (AMED-Solver or AMED-Plugin on iPNDM / Euler) and an NFE, into a small
 * predictor file for `pixdiff sample --sampler amed|amed-plugin --predictor FILE`.
 *
 * NFE convention (diff-sampler's, stopping at sigma_min): odd NFE = AFS with (NFE + 1)/2
 * intervals, even NFE = no AFS with NFE/2. The checkpoint <out>.ckpt is rewritten after every
 * batch; Ctrl-C (or SIGTERM) stops after the current batch and exits 1, and --resume continues
 * bit-exactly. The progress line redraws in place on a terminal and is printed once a minute
 * otherwise (a run logging to a file).
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/names.h"
#include "pixdiff.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const plugin_choices[] = {"none", "ipndm", "euler", NULL};

int cmd_distill_amed(int argc, char **argv) {
    const char *cmd = "distill amed";
    pd_amed_train_options o = pd_amed_train_default_options();
    const char *model = NULL, *out = NULL, *checkpoint = NULL;
    int nfe = 0, plugin = 0, batch = o.batch, resume = 0, threads = 0, quiet = 0, grid = 0;
    int micro = 32, teacher_m = 0;
    double images = (double)o.images, lr = o.lr, s_dir = o.s_dir, s_time = o.s_time, rho = 0;
    uint64_t seed = 0;
    arg_opt opts[] = {
        OPT_DEF("--model", ARG_STR, &model, "FILE", "the (frozen) denoiser model", "the default model"),
        OPT_DEF("--nfe", ARG_POS_INT, &nfe, "N",
                "network evaluations of the sampler: odd = AFS with (N+1)/2 steps, even = N/2 steps",
                "required"),
        OPT_CHOICE("--plugin", &plugin,
                   "none: AMED-Solver (sampler amed); ipndm or euler: AMED-Plugin (amed-plugin)",
                   plugin_choices),
        OPT("--batch", ARG_POS_INT, &batch, "B", "trajectories per Adam step (per interval)"),
        OPT("--images", ARG_POS_DOUBLE, &images, "N", "training trajectories in all (ceil(N/B) batches)"),
        OPT("--lr", ARG_POS_DOUBLE, &lr, "LR", "Adam learning rate (betas 0.9, 0.999)"),
        OPT("--s-dir", ARG_NONNEG_DOUBLE, &s_dir, "S", "range of the step scale c = 1 +- S (0: no c head)"),
        OPT_DEF("--s-time", ARG_NONNEG_DOUBLE, &s_time, "S", "range of the time scale a = 1 +- S (0: no a head)",
                "0.2 for --plugin ipndm (the CIFAR-10 plugin recipe), else 0"),
        {"--schedule", ARG_CHOICE, &grid, NULL, "sigma grid", "vp-time (solver), karras (plugins)",
         cli_grid_choices(), 0},
        OPT_DEF("--rho", ARG_POS_DOUBLE, &rho, "R", "grid exponent", "vp-time 1, karras 7"),
        OPT_DEF("--teacher-m", ARG_POS_INT, &teacher_m, "M",
                "teacher steps inserted per interval", "1 (heun teacher), 2 (ipndm teacher)"),
        OPT("--seed", ARG_U64, &seed, "S", "seed of the noise, the labels and the init"),
        OPT_DEF("--out", ARG_STR, &out, "FILE", "the predictor file",
                "amed-<solver|ipndm|euler>-nfe<N>.safetensors"),
        OPT_DEF("--checkpoint", ARG_STR, &checkpoint, "FILE", "the checkpoint", "<out>.ckpt"),
        OPT("--resume", ARG_FLAG, &resume, NULL, "continue from the checkpoint (required when one exists)"),
        OPT("--micro-batch", ARG_POS_INT, &micro, "M", "images per U-Net backward (memory only)"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T", "threads (0: all cores)",
                "$OMP_NUM_THREADS or all cores"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress or event lines"),
    };
    arg_spec spec = {cmd,
                     "--nfe N [--model FILE] [--plugin ipndm|euler] [--out FILE] [--resume]",
                     "Train an AMED predictor (docs/algorithms.md §S4.5): teacher trajectories on a finer grid "
                     "(Heun with M = 1 for the solver and the Euler plugin, iPNDM with M = 2 for the "
                     "iPNDM plugin), the student's squared error at every teacher timestamp, back-"
                     "propagated through the frozen U-Net into g_phi, one Adam step per interval. "
                     "The result records what it was trained for; pixdiff sample --predictor FILE "
                     "uses those settings.",
                     opts,
                     (int)(sizeof opts / sizeof opts[0]),
                     NULL,
                     0,
                     0,
                     "examples:\n"
                     "  pixdiff distill amed --model models/fashion32.safetensors --nfe 5 \\\n"
                     "      --out models/fashion32-amed-nfe5.safetensors\n"
                     "  pixdiff distill amed --nfe 5 --plugin ipndm --out amed-ipndm-nfe5.safetensors "
                     "--resume\n"};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    if (!args_given(&spec, "--nfe")) cli_bad_flag(cmd, "--nfe", "required (e.g. --nfe 5)");
    if (nfe < 2) cli_bad_flag(cmd, "--nfe", "AMED spends 2 evaluations per step, so at least 2, got %d", nfe);
    if (images < 1 || images > 1e12 || images != floor(images))
        cli_bad_flag(cmd, "--images", "expected a whole number of trajectories, got %g", images);
    if (s_dir >= 1) cli_bad_flag(cmd, "--s-dir", "must be below 1, got %g", s_dir);
    if (s_time >= 1) cli_bad_flag(cmd, "--s-time", "must be below 1, got %g", s_time);
    /* docs/algorithms.md §S4.6: the iPNDM plugin's 32-px recipe (CIFAR-10) trains the a head with 0.2; on
     * the default model it lowered the NFE-5 FD from 3.22 to 2.55 (docs/models.md). */
    if (!args_given(&spec, "--s-time")) s_time = plugin == 1 ? 0.2 : 0;
    if (args_given(&spec, "--rho") && grid != PD_GRID_KARRAS && grid != PD_GRID_VP_TIME)
        cli_bad_flag(cmd, "--rho", "the %s schedule has no rho", pd_grid_name((pd_grid_kind)grid));
    cli_apply_threads(args_given(&spec, "--threads"), threads);

    char model_path[1024], out_def[256];
    if (model) {
        snprintf(model_path, sizeof model_path, "%s", model);
    } else {
        cli_default_model(cmd, model_path, sizeof model_path);
    }
    if (access(model_path, R_OK) != 0) cli_bad_flag(cmd, "--model", "%s: cannot read the file", model_path);
    o.kind = plugin == 1 ? PD_AMED_PLUGIN_IPNDM : plugin == 2 ? PD_AMED_PLUGIN_EULER : PD_AMED_SOLVER;
    if (!out) {
        snprintf(out_def, sizeof out_def, "amed-%s-nfe%d.safetensors",
                 plugin == 1 ? "ipndm" : plugin == 2 ? "euler" : "solver", nfe);
        out = out_def;
    }
    cli_check_out_path(cmd, "--out", out);
    o.model_path = model_path;
    o.nfe = nfe;
    o.batch = batch;
    o.images = (long long)images;
    o.lr = lr;
    o.s_dir = s_dir;
    o.s_time = s_time;
    o.grid = args_given(&spec, "--schedule") ? grid : -1;
    o.rho = rho;
    o.teacher_m = teacher_m;
    o.seed = seed;
    o.micro_batch = micro;
    o.out_path = out;
    o.checkpoint = checkpoint;
    o.resume = resume;
    cli_progress ui;
    cli_progress_init(&ui, "amed", quiet);
    o.progress = cli_progress_show;
    o.abort = cli_interrupted;
    o.log = cli_progress_log;
    o.user = &ui;
    cli_catch_interrupts();
    pd_error err = {{0}};
    cli_progress_finish(&ui, cmd, pd_amed_train(&o, &err), err.msg);
    return 0;
}
