/* cmd_train.c — `pixdiff train`: EDM training from a YAML config, resumable, with a progress line
 * on stderr; and `pixdiff train --export OUT --checkpoint CKPT` to turn a checkpoint's EMA weights
 * into a model file without training. Ctrl-C (or SIGTERM) finishes the current step, writes a
 * checkpoint and exits 1; a second Ctrl-C exits at once, which is safe too because checkpoints
 * are replaced atomically. On a terminal the progress line redraws in place; otherwise (a run in
 * the background with its output in a log file) one line is printed per minute.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "pixdiff.h"

#include <stdio.h>
#include <string.h>

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    const char *config = NULL, *checkpoint = NULL, *export_path = NULL, *out_dir = NULL;
    int resume = 0, threads = 0, quiet = 0;
    double duration = 0;
    arg_opt opts[] = {
        OPT_DEF("--config", ARG_STR, &config, "FILE", "training config (configs/train/*.yaml)",
                "none"),
        OPT("--resume", ARG_FLAG, &resume, NULL,
            "continue from the run's checkpoint (required when one exists)"),
        OPT_DEF("--checkpoint", ARG_STR, &checkpoint, "CKPT",
                "checkpoint to resume or export", "<output.dir>/checkpoint.safetensors"),
        OPT_DEF("--export", ARG_STR, &export_path, "OUT.safetensors",
                "where the final EMA model goes; with --checkpoint alone: export and exit",
                "<output.dir>/model.safetensors"),
        OPT_DEF("--out", ARG_STR, &out_dir, "DIR", "output directory (overrides output.dir)",
                "the config's"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T", "threads (overrides training.threads)",
                "the config's"),
        OPT_DEF("--duration", ARG_NONNEG_DOUBLE, &duration, "IMAGES",
                "train until this many images (overrides training.duration_images)",
                "the config's"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress or event lines"),
    };
    arg_spec spec = {cmd,
                     "--config FILE [--resume] [options]  |  --export OUT --checkpoint CKPT",
                     "Train a denoiser with the EDM loss (Adam, EMA, class labels with label "
                     "dropout) on Fashion-MNIST or a folder of PNGs, as the YAML config says. "
                     "Checkpoints are written atomically to output.dir every "
                     "training.checkpoint_images; a run killed at any moment continues with "
                     "--resume exactly where its last checkpoint left it. The progress line shows "
                     "images seen, img/s, the running mean loss (EDM-weighted, per pixel) and the "
                     "ETA. A classifier config (model.arch: classifier) trains with cross-entropy "
                     "instead and logs the test-split accuracy at every checkpoint.",
                     opts,
                     (int)(sizeof opts / sizeof opts[0]),
                     NULL,
                     0,
                     0,
                     "examples:\n"
                     "  pixdiff train --config configs/train/fashion32.yaml --out runs/f32\n"
                     "  pixdiff train --config configs/train/fashion32.yaml --out runs/f32 --resume\n"
                     "  pixdiff train --config configs/train/fashion-classifier.yaml\n"
                     "  pixdiff train --export models/fashion32.safetensors --checkpoint "
                     "runs/f32/checkpoint.safetensors\n"};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    pd_error err = {{0}};

    /* Export only: a checkpoint and an output, nothing to train. */
    if (export_path && checkpoint && !config && !resume) {
        cli_check_out_path(cmd, "--export", export_path);
        if (pd_train_export(checkpoint, export_path, &err)) cli_die(1, cmd, "%s", err.msg);
        if (!quiet) fprintf(stderr, "train: exported the EMA weights of %s to %s\n", checkpoint,
                            export_path);
        return 0;
    }
    if (!config && !(resume && checkpoint))
        cli_die(2, cmd, "give --config FILE (or --resume --checkpoint CKPT, or --export OUT "
                        "--checkpoint CKPT); see pixdiff train --help");
    long long duration_images = cli_duration_images(cmd, "--duration", args_given(&spec, "--duration"), duration);
    if (export_path) cli_check_out_path(cmd, "--export", export_path);

    cli_progress ui;
    cli_progress_init(&ui, "train", quiet);
    pd_train_options o = pd_train_default_options();
    o.config_path = config ? cli_input_path(config) : NULL;
    o.resume = resume;
    o.checkpoint = checkpoint;
    o.export_path = export_path;
    o.out_dir = out_dir;
    o.threads = threads;
    o.duration_images = duration_images;
    o.progress = cli_progress_show;
    o.abort = cli_interrupted;
    o.log = cli_progress_log;
    o.user = &ui;
    cli_catch_interrupts();
    cli_progress_finish(&ui, cmd, pd_train(&o, &err), err.msg);
    return 0;
}
