/* cmd_distill_sid.c — `pixdiff distill sid`: Score identity Distillation (docs/algorithms.md §M1) of a
 * teacher denoiser into a one-step generator, from a YAML config (configs/distill/sid-*.yaml),
 * resumable; and `pixdiff distill sid --export OUT --checkpoint CKPT` to turn a checkpoint's EMA
 * generator into a model file without distilling. Ctrl-C (or SIGTERM) finishes the current
 * iteration, writes a checkpoint and exits 1; a second one exits at once, which is safe too
 * (checkpoints are replaced atomically). The progress line redraws in place on a terminal and is
 * printed once a minute otherwise (a background run logging to a file).
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "pixdiff.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cmd_distill_sid(int argc, char **argv) {
    const char *cmd = "distill sid";
    const char *teacher = NULL, *config = NULL, *out_dir = NULL, *export_path = NULL,
               *checkpoint = NULL, *classifier = NULL;
    const char *init_generator = NULL;
    double psi_warmup_d = -1, init_images_d = -1;
    int resume = 0, threads = 0, quiet = 0;
    double duration = 0;
    arg_opt opts[] = {
        OPT_DEF("--teacher", ARG_STR, &teacher, "FILE",
                "the teacher denoiser (overrides the config's teacher)", "the config's"),
        OPT_DEF("--config", ARG_STR, &config, "FILE",
                "distillation config (configs/distill/sid-*.yaml)", "none"),
        OPT("--resume", ARG_FLAG, &resume, NULL,
            "continue from <out>/checkpoint.safetensors (required when one exists)"),
        OPT_DEF("--out", ARG_STR, &out_dir, "DIR", "output directory (overrides output.dir)",
                "the config's"),
        OPT_DEF("--export", ARG_STR, &export_path, "G.safetensors",
                "where the final EMA generator goes; with --checkpoint alone: export and exit",
                "<out>/generator.safetensors"),
        OPT_DEF("--checkpoint", ARG_STR, &checkpoint, "CKPT",
                "with --export: the checkpoint to export", "none"),
        OPT_DEF("--classifier", ARG_STR, &classifier, "FILE",
                "feature classifier for the periodic FD (overrides eval.classifier)",
                "the config's"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T", "threads (overrides training.threads)",
                "the config's"),
        OPT_DEF("--duration", ARG_NONNEG_DOUBLE, &duration, "IMAGES",
                "distil until this many images (overrides training.duration_images)",
                "the config's"),
        OPT_DEF("--init-generator", ARG_STR, &init_generator, "G.safetensors",
                "warm start: G and G_ema from this generator (f_psi from the teacher, fitted "
                "alone first); a new run only", "G from the teacher"),
        OPT_DEF("--psi-warmup", ARG_NONNEG_DOUBLE, &psi_warmup_d, "IMAGES",
                "with --init-generator: images of G's samples f_psi is fitted on alone before "
                "the first generator step (a multiple of the batch)", "6400"),
        OPT_DEF("--init-images", ARG_NONNEG_DOUBLE, &init_images_d, "IMAGES",
                "with --init-generator: the images it was distilled on (EDM's resume_kimg); "
                "G_ema's ramp-up continues from there", "0"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress or event lines"),
    };
    arg_spec spec = {cmd,
                     "--config FILE [--teacher FILE] [--resume] [--out DIR] [--export G.safetensors] "
                     "[--init-generator G.safetensors [--psi-warmup IMAGES] [--init-images IMAGES]]"
                     "  |  --export OUT --checkpoint CKPT",
                     "Distil a teacher denoiser into a one-step generator with Score identity "
                     "Distillation (SiD): a fake-score network and the generator, both initialised "
                     "from the teacher, trained in turns (Adam, EMA of the generator). Checkpoints "
                     "are written atomically to the output directory every "
                     "training.checkpoint_images; a run killed at any moment continues with "
                     "--resume bit-exactly. The progress line shows images seen, img/s, both "
                     "running mean losses, the latest FD and the ETA. The result is a model of "
                     "kind \"generator\": pixdiff sample --model G.safetensors draws images with "
                     "one network evaluation.",
                     opts,
                     (int)(sizeof opts / sizeof opts[0]),
                     NULL,
                     0,
                     0,
                     "examples:\n"
                     "  pixdiff distill sid --teacher models/fashion32.safetensors \\\n"
                     "      --config configs/distill/sid-fashion32.yaml --out runs/sid32\n"
                     "  pixdiff distill sid --config configs/distill/sid-fashion32.yaml --out "
                     "runs/sid32 --resume\n"
                     "  pixdiff distill sid --teacher models/fashion32.safetensors --config "
                     "configs/distill/sid-fashion32.yaml \\\n      --out runs/sid-warm "
                     "--init-generator models/fashion32-sid.safetensors --init-images 226400\n"
                     "  pixdiff distill sid --export models/fashion32-sid.safetensors --checkpoint "
                     "runs/sid32/checkpoint.safetensors\n"};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    pd_error err = {{0}};

    if (checkpoint) {
        /* Export only: a checkpoint and an output, nothing to distil. */
        if (!export_path || config || resume)
            cli_bad_flag(cmd, "--checkpoint", "only with --export OUT (and nothing to distil)");
        cli_check_out_path(cmd, "--export", export_path);
        if (pd_sid_export(checkpoint, export_path, &err)) cli_die(1, cmd, "%s", err.msg);
        if (!quiet)
            fprintf(stderr, "sid: exported the EMA generator of %s to %s\n", checkpoint,
                    export_path);
        return 0;
    }
    if (!config && !(resume && out_dir))
        cli_die(2, cmd, "give --config FILE (or --resume --out DIR, or --export OUT --checkpoint "
                        "CKPT); see pixdiff distill sid --help");
    long long duration_images = cli_duration_images(cmd, "--duration", args_given(&spec, "--duration"), duration);
    if (export_path) cli_check_out_path(cmd, "--export", export_path);
    if (init_generator && resume)
        cli_bad_flag(cmd, "--init-generator", "starts a new run; not with --resume");
    if (psi_warmup_d >= 0 && !init_generator)
        cli_bad_flag(cmd, "--psi-warmup", "only with --init-generator");
    if (init_images_d >= 0 && !init_generator)
        cli_bad_flag(cmd, "--init-images", "only with --init-generator");
    if (init_generator && access(init_generator, R_OK) != 0)
        cli_bad_flag(cmd, "--init-generator", "%s: cannot read the file", init_generator);
    long long psi_warmup = psi_warmup_d >= 0 ? cli_duration_images(cmd, "--psi-warmup", 0,
                                                                     psi_warmup_d) : -1;
    long long init_images = init_images_d >= 0 ? cli_duration_images(cmd, "--init-images", 0,
                                                                       init_images_d) : 0;
    if (teacher && access(teacher, R_OK) != 0)
        cli_bad_flag(cmd, "--teacher", "%s: cannot read the file", teacher);

    cli_progress ui;
    cli_progress_init(&ui, "sid", quiet);
    pd_sid_options o = pd_sid_default_options();
    o.config_path = config ? cli_input_path(config) : NULL;
    o.teacher_path = teacher;
    o.classifier_path = classifier;
    o.resume = resume;
    o.out_dir = out_dir;
    o.export_path = export_path;
    o.threads = threads;
    o.duration_images = duration_images;
    o.init_generator_path = init_generator;
    o.psi_warmup_images = psi_warmup;
    o.init_images = init_images;
    o.progress = cli_progress_show;
    o.abort = cli_interrupted;
    o.log = cli_progress_log;
    o.user = &ui;
    cli_catch_interrupts();
    cli_progress_finish(&ui, cmd, pd_distill_sid(&o, &err), err.msg);
    return 0;
}
