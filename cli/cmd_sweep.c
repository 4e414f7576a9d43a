/* cmd_sweep.c — `pixdiff sweep FILE.yaml`: run a YAML-configured sampler sweep (pd_sweep_run).
 *
 * The file is validated completely before any work (errors name file:line: key and exit 2). The
 * progress line (cli/progress.h) shows the cell, its settings, images and steps done, evaluations
 * per second and the ETA of the run; on a terminal it redraws in place, otherwise one line per
 * cell start and one a minute are printed (log files). Each
 * finished cell prints one line with its metrics and the fraction of time outside the denoiser.
 * Ctrl-C (or SIGTERM) drops the cell in progress and exits 130; everything finished is kept and
 * a re-run resumes. --dry-run lists the cells on stdout, each marked done or not, and writes
 * nothing.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "pixdiff.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct sweep_ui {
    cli_progress bar;
    int dry;
} sweep_ui;

static void on_progress(void *user, const pd_progress *p) {
    cli_progress_show(&((sweep_ui *)user)->bar, p);
}

static void on_log(void *user, const char *line) {
    sweep_ui *ui = user;
    if (ui->dry) { /* the listing is the command's output */
        printf("%s\n", line);
        return;
    }
    cli_progress_print(&ui->bar, line);
}

int cmd_sweep(int argc, char **argv) {
    const char *cmd = "sweep";
    const char *out_dir = NULL;
    int dry = 0, threads = 0, quiet = 0;
    arg_opt opts[] = {
        OPT_DEF("--out", ARG_STR, &out_dir, "DIR", "output folder (overrides the file's output)",
                "the file's, or runs/sweeps/<name>"),
        OPT("--dry-run", ARG_FLAG, &dry, NULL,
            "validate, list the cells (done or to run) and write nothing"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T",
                "threads (0: all cores; does not change results)",
                "the file's, $OMP_NUM_THREADS or all cores"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress line and no per-cell lines"),
    };
    arg_spec spec = {
        cmd,
        "[options] FILE.yaml",
        "Run a sampler sweep: every sampler of the file at every NFE budget (and variant), "
        "measuring the file's metrics on n images per cell, image i from seed + i. Results go "
        "to results.jsonl (one line per cell, appended and synced as each cell finishes), "
        "results.csv, results.md and plot_<metric>.png in the output folder. Re-running skips "
        "cells already in results.jsonl, so a stopped sweep resumes; cells whose settings "
        "changed in the file are new cells.",
        opts,
        (int)(sizeof opts / sizeof opts[0]),
        "FILE.yaml",
        1,
        1,
        "examples:\n"
        "  pixdiff sweep configs/sweeps/quick.yaml\n"
        "  pixdiff sweep configs/sweeps/fashion32-nfe.yaml --dry-run\n"
        "  pixdiff sweep configs/sweeps/fashion32-nfe.yaml --out runs/nfe --threads 8\n"
        "The sweep file format is described in docs/sweeps.md.\n"};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    if (out_dir && !*out_dir) cli_bad_flag(cmd, "--out", "expected a directory name");
    /* --threads wins over the file's `threads`, which wins over $OMP_NUM_THREADS / all cores. */
    cli_apply_threads(args_given(&spec, "--threads"), threads);

    sweep_ui ui;
    cli_progress_init(&ui.bar, "sweep", quiet);
    ui.dry = dry;
    pd_sweep_options o = pd_sweep_default_options();
    o.out_dir = out_dir;
    o.dry_run = dry;
    o.threads = args_given(&spec, "--threads") ? pd_get_threads() : 0;
    o.progress = on_progress;
    o.log = on_log;
    o.abort = cli_interrupted;
    o.user = &ui;
    cli_catch_interrupts();
    pd_sweep_summary sum;
    pd_error err = {{0}};
    const char *path = cli_input_path(pos[0]);
    int rc = pd_sweep_run(path, &o, &sum, &err);
    cli_progress_clear(&ui.bar);
    if (rc) {
        if (cli_interrupted(NULL)) cli_die(130, cmd, "%s", err.msg);
        /* A problem in the sweep file (the message starts "FILE:") is bad input, exit 2; the
         * rest is failed work, exit 1. */
        size_t plen = strlen(path);
        int usage = sum.ran == 0 && !strncmp(err.msg, path, plen) && err.msg[plen] == ':';
        cli_die(usage ? 2 : 1, cmd, "%s", err.msg);
    }
    if (!quiet && !dry) {
        fprintf(stderr, "pixdiff sweep: %d cells: %d run now, %d already done; %.1f s", sum.cells,
                sum.ran, sum.already_done, sum.seconds);
        /* All ranks' images over the cells' wall time: the rate of the whole job. */
        if (sum.ran > 0 && sum.cell_seconds > 0) {
            fprintf(stderr, "; %lld images sampled and scored at %.1f images/s", sum.images,
                    sum.images / sum.cell_seconds);
            if (pd_dist_size() > 1) fprintf(stderr, " (%d ranks)", pd_dist_size());
        }
        if (sum.ran > 0 && !isnan(sum.outside_denoiser_max))
            fprintf(stderr, "; at most %.1f%% of sampling time outside the denoiser",
                    100 * sum.outside_denoiser_max);
        fprintf(stderr, " -> %s/results.md\n", sum.out_dir);
    }
    return 0;
}
