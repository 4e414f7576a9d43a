/* common.h — helpers shared by the CLI commands: opening a model (file, default model or
 * `analytic:` spec) as a denoiser, resolving --class, a growable string for metadata, output-path
 * checks, interrupts and durations (the progress printer is cli/progress.h). Everything
 * here may print and exit: it is CLI.
 */
#ifndef PD_CLI_COMMON_H
#define PD_CLI_COMMON_H

#include "cli/progress.h"
#include "pixdiff.h"
#include <stddef.h>
#include <stdio.h>

/* ------------------------------------------------------------------ models */

typedef struct cli_model {
    pd_model *model; /* NULL for analytic denoisers */
    pd_denoiser *den; /* NULL for a one-step generator, which is not a denoiser: */
    pd_generator *gen; /* the generator of a model of kind "generator", else NULL */
    int C, H, W, label_dim;        /* the images it makes (den's or gen's) */
    double sigma_min, sigma_max;   /* den's, or the generator network's config */
    char spec[1024]; /* the file path or the analytic spec */
    char name[1024]; /* file name without directory and extension, or the spec */
    char sha256[65]; /* "" for analytic denoisers */
    int is_default;  /* 1 when found by the default-model search */
} cli_model;

/* The default model (pd_default_model_path: $PIXDIFF_MODEL or the shipped one); exits 2 when
 * $PIXDIFF_MODEL names no file, 1 with a hint when there is no default model. */
void cli_default_model(const char *cmd, char *path, size_t cap);
/* Loads spec (NULL: the default model) and builds its denoiser (or, for a model of kind
 * "generator", its generator) at resolution res (0: trained).
 * Exits 1 with one line naming the file on failure, or 2 for a malformed analytic spec. */
void cli_model_open(cli_model *cm, const char *cmd, const char *spec, int res);
void cli_model_close(cli_model *cm);
/* Loads only the model file (no denoiser); exits like cli_model_open. */
pd_model *cli_model_load(const char *cmd, const char *path);

/* --class: an index in [0, label_dim) or one of the model's class names (case-insensitive).
 * Returns -1 when val is NULL; exits 2 naming flag when the value is not a class of the model.
 * name (if non-NULL) receives the class name, or "" if the model has none. */
int cli_parse_class(const char *cmd, const char *flag, const char *val, const cli_model *cm,
                    char *name, size_t cap);
/* labels[n, label_dim]: one-hot at cls, or all zeros when cls < 0 (unconditional). */
void cli_fill_labels(float *labels, int n, int label_dim, int cls);

/* --threads: T when given (0 = all cores); otherwise $OMP_NUM_THREADS when set, else all cores.
 * OpenMP and OpenBLAS always get the same count (pd_set_threads). */
void cli_apply_threads(int given, int threads);

/* ------------------------------------------------------------------ clock */

/* Monotonic seconds. The progress printer is cli/progress.h. */
double cli_now(void);

/* ------------------------------------------------------------------ strings */

typedef struct cli_buf {
    char *s;
    size_t len, cap;
} cli_buf;

void cli_buf_printf(cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quoted and escaped). */
void cli_buf_json_str(cli_buf *b, const char *s);
/* Appends a double as JSON ("null" for NaN/inf), shortest round-tripping form. */
void cli_buf_json_num(cli_buf *b, double v);
void cli_buf_free(cli_buf *b);

/* ------------------------------------------------------------------ files */

/* Exits 2 naming flag when path's directory does not exist (checked before any work, so a
 * typo does not cost a sampling run). */
void cli_check_out_path(const char *cmd, const char *flag, const char *path);
/* mkdir -p; exits 1 naming flag on failure. */
void cli_mkdir_p(const char *cmd, const char *flag, const char *dir);

/* Ctrl-C / SIGTERM set a flag that long commands (train, distill, sweep) hand to the library as
 * its abort callback, so the library stops after its current step with its files intact; a
 * second signal kills at once (checkpoints and results are replaced atomically either way). */
void cli_catch_interrupts(void);
int cli_interrupted(void *user);
/* A remaining time as "3d 04:12:33", "04:12:33", or "--" when unknown. */
void cli_fmt_eta(char *b, size_t cap, double seconds);

/* ------------------------------------------------------------------ long runs */

/* A count of images given as a number (--duration): a whole count >= 1, or 0 (when at_least_one
 * is 0: --duration not given, or a count where 0 means none); exits 2 naming the flag otherwise. */
long long cli_duration_images(const char *cmd, const char *flag, int at_least_one, double images);

/* ------------------------------------------------------------------ shipped files */

/* <data dir>/configs/<rel> when it exists, else "configs/<rel>" (for hints and help). */
const char *cli_shipped_config(const char *rel);
/* An input file named on the command line (a --config): as given when it exists from the current
 * directory, else <data dir>/<path> when that exists (so `--config configs/train/tiny.yaml` works
 * from any directory), else as given. Returns one of four rotating static buffers. */
const char *cli_input_path(const char *path);

#endif
