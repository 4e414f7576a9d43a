/* cmd_distill_sid.c — `pixdiff distill sid`: Score identity Distillation (models.md §1) of a
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

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct sid_ui {
    int tty, quiet, drawn;
    double last_line;
} sid_ui;

static void on_progress(void *user, const pd_sid_progress *p) {
    sid_ui *ui = user;
    if (ui->quiet) return;
    double now = cli_now();
    if (!ui->tty && now - ui->last_line < 60 && p->images_seen < p->total) return;
    ui->last_line = now;
    char e[32], fd[32] = "";
    cli_fmt_eta(e, sizeof e, p->eta_s);
    if (!isnan(p->fd)) snprintf(fd, sizeof fd, "  FD %.3g", p->fd);
    fprintf(stderr, "%ssid: %lld/%lld images (%.1f%%)  %.1f img/s  loss psi %.4f theta %.4f%s  "
            "ETA %s%s", ui->tty ? "\r\033[K" : "", p->images_seen, p->total,
            p->total ? 100.0 * p->images_seen / p->total : 0.0, p->img_per_s, p->loss_psi,
            p->loss_theta, fd, e, ui->tty ? "" : "\n");
    ui->drawn = ui->tty;
    fflush(stderr);
}

static void on_log(void *user, const char *line) {
    sid_ui *ui = user;
    if (ui->quiet) return;
    fprintf(stderr, "%ssid: %s\n", ui->drawn ? "\r\033[K" : "", line);
    ui->drawn = 0;
    fflush(stderr);
}

int cmd_distill_sid(int argc, char **argv) {
    const char *cmd = "distill sid";
    const char *teacher = NULL, *config = NULL, *out_dir = NULL, *export_path = NULL,
               *checkpoint = NULL, *classifier = NULL;
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
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress or event lines"),
    };
    arg_spec spec = {cmd,
                     "--config FILE [--teacher FILE] [--resume] [--out DIR] [--export G.safetensors]"
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
    if (duration != 0 && (duration < 1 || duration > 9e18 || duration != (long long)duration))
        cli_bad_flag(cmd, "--duration", "expected a whole number of images, got %g", duration);
    if (export_path) cli_check_out_path(cmd, "--export", export_path);
    if (teacher && access(teacher, R_OK) != 0)
        cli_bad_flag(cmd, "--teacher", "%s: cannot read the file", teacher);

    sid_ui ui = {isatty(2), quiet, 0, -1e9};
    pd_sid_options o = pd_sid_default_options();
    o.config_path = config;
    o.teacher_path = teacher;
    o.classifier_path = classifier;
    o.resume = resume;
    o.out_dir = out_dir;
    o.export_path = export_path;
    o.threads = threads;
    o.duration_images = (long long)duration;
    o.progress = on_progress;
    o.abort = cli_interrupted;
    o.log = on_log;
    o.user = &ui;
    cli_catch_interrupts();
    int rc = pd_distill_sid(&o, &err);
    if (ui.drawn) fputc('\n', stderr);
    if (rc) cli_die(1, cmd, "%s", err.msg);
    return 0;
}
