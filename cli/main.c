/* main.c — the `pixdiff` binary: dispatches `pixdiff <command> ...` through the command table,
 * and answers `pixdiff --help` (commands, samplers, schedules, model syntax) and `--version`.
 * A new command is a file cli/cmd_<name>.c, its prototype in cli/commands.h and one line below.
 * Under mpirun (docs/scale-out.md) every rank runs the same command line; ranks other than 0 get
 * --quiet, so progress and logs come from rank 0 alone while errors still print on every rank,
 * and a rank that fails ends the whole job with its exit code.
 */
#include "cli/commands.h"
#include "cli/names.h"
#include "pixdiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cli_command commands[] = {
    {"sample", cmd_sample, "generate images: a PNG grid, one PNG per image, or a .npy array"},
    {"denoise", cmd_denoise, "one evaluation of D(x; sigma) on a float32 [N,C,H,W] .npy array"},
    {"info", cmd_info, "a model's architecture, parameters, GFLOP per evaluation and sha256"},
    {"inspect", cmd_inspect, "print the metadata text chunks of a PNG"},
    {"bench", cmd_bench, "time denoiser evaluations at several batch sizes (ms, GFLOP/s, memory)"},
    {"init", cmd_init, "write a model with random weights from a preset or a YAML config"},
    {"train", cmd_train, "train a denoiser with the EDM loss from a YAML config (resumable)"},
    {"eval", cmd_eval, "FD, KID, class accuracy and spectral error of samples vs Fashion-MNIST"},
    {"snr", cmd_snr, "per-frequency SNR of a data set under a sigma grid (CSV and plots)"},
    {"distill", cmd_distill, "distil a teacher: sid (one-step generator), amed (predictor); see distill --help"},
    {"sweep", cmd_sweep, "run a YAML sampler sweep: metrics vs NFE, tables and plots (resumable)"},
    {"convert", cmd_convert, "EDM/SiD .pkl or torch .pth checkpoint -> safetensors (runs no pickled code)"},
    {"plot", cmd_plot, "plot columns of CSV logs (training loss, SiD's FD) against images as a PNG"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void print_help(FILE *f) {
    fprintf(f,
            "pixdiff %s - diffusion-model sampling toolkit\n\n"
            "usage: pixdiff <command> [options]   (pixdiff <command> --help lists its options)\n"
            "       pixdiff --help | --version\n\n"
            "commands:\n",
            pd_version());
    for (int i = 0; i < n_commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputc('\n', f);
    cli_print_names(f);
    fprintf(f,
            "\nexample: pixdiff sample --sampler heun --steps 18 --seed 0 --n 64 --out grid.png\n");
}

/* Threads that wait without burning a core (docs/threads.md §1). The network's layers run on
 * core/pool's workers, which wait their own way; this is for the OpenMP loops around them. libgomp
 * spins a waiting thread for about 300000 pause loops before it sleeps, unless OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT says otherwise; when another process wants the cores, each parallel region's
 * barrier then waits for a thread that lost its time slice to a spinning one, and two pixdiff
 * processes side by side ran 10-30x slower each. libgomp reads those variables once, in its own
 * constructor, before main (a preinit_array hook is too early: glibc resets the environment
 * after it), so the only robust way to change the default is to set the variable and exec
 * ourselves again, once. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone. */
static void omp_wait_passive_by_default(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1)) return;
    execv("/proc/self/exe", argv);
    /* No /proc (or exec refused): go on with libgomp's default; correctness does not depend on it. */
}

/* Commands that take --quiet: what a rank other than 0 runs with. */
static int takes_quiet(const char *c) {
    static const char *const q[] = {"sample", "eval", "train", "distill", "sweep", "snr", "init"};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (strcmp(c, q[i]) == 0) return 1;
    return 0;
}

static int dispatch(int argc, char **argv);

int main(int argc, char **argv) {
    /* Before MPI_Init: the exec must happen while the process is still a plain program (mpirun's
     * environment, which tells the new image it is a rank, survives the exec). */
    omp_wait_passive_by_default(argv);
    int joined = pd_dist_init(&argc, &argv);
    if (joined == -2) {
        fprintf(stderr, "pixdiff: started by mpirun, but this pixdiff was built without MPI "
                "(install libopenmpi-dev and rebuild, or run it without mpirun)\n");
        return 2;
    }
    if (joined) {
        fprintf(stderr, "pixdiff: could not join the MPI job (MPI_Init_thread failed)\n");
        return 1;
    }
    const char *conv = getenv("PIXDIFF_CONV");
    pd_error err = {{0}};
    if (conv && pd_set_conv_algorithm(conv, &err)) {
        fprintf(stderr, "pixdiff: PIXDIFF_CONV: %s\n", err.msg);
        pd_dist_abort(2);
        return 2;
    }
    const char *precision = getenv("PIXDIFF_PRECISION");
    if (precision && pd_set_precision(precision, &err)) {
        fprintf(stderr, "pixdiff: PIXDIFF_PRECISION: %s\n", err.msg);
        pd_dist_abort(2);
        return 2;
    }
    int rc;
    if (pd_dist_rank() > 0 && argc >= 2 && takes_quiet(argv[1])) {
        char **v = malloc(sizeof(char *) * ((size_t)argc + 2));
        if (!v) return 1;
        memcpy(v, argv, sizeof(char *) * (size_t)argc);
        v[argc] = "--quiet";
        v[argc + 1] = NULL;
        rc = dispatch(argc + 1, v);
        free(v);
    } else {
        rc = dispatch(argc, argv);
    }
    if (rc != 0) pd_dist_abort(rc);
    pd_dist_finalize();
    return rc;
}

static int dispatch(int argc, char **argv) {
    if (argc < 2) { /* bad usage: one line, like every other error (exit 2) */
        fprintf(stderr, "pixdiff: missing command; usage: pixdiff <command> [options] (see pixdiff --help)\n");
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        if (strcmp(c, "help") == 0 && argc > 2) {
            /* `pixdiff help sample` is `pixdiff sample --help`. */
            for (int i = 0; i < n_commands; i++)
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return commands[i].fn(2, sub);
                }
        }
        print_help(stdout);
        return 0;
    }
    if (strcmp(c, "--version") == 0 || strcmp(c, "-V") == 0 || strcmp(c, "version") == 0) {
        printf("pixdiff %s\n", pd_version());
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (strcmp(c, commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pixdiff: unknown command '%s' (see pixdiff --help)\n", c);
    return 2;
}
