/* common.h — helpers shared by the CLI commands: opening a model (file, default model or
 * `analytic:` spec) as a denoiser, resolving --class, the stderr progress bar, a growable
 * string for metadata, and output-path checks. Everything here may print and exit: it is CLI.
 */
#ifndef PD_CLI_COMMON_H
#define PD_CLI_COMMON_H

#include "pixdiff.h"
#include <stddef.h>
#include <stdio.h>

/* ------------------------------------------------------------------ models */

typedef struct cli_model {
    pd_model *model; /* NULL for analytic denoisers */
    pd_denoiser *den;
    char spec[1024]; /* the file path or the analytic spec */
    char name[1024]; /* file name without directory and extension, or the spec */
    char sha256[65]; /* "" for analytic denoisers */
    int is_default;  /* 1 when found by the default-model search */
} cli_model;

/* The first existing of $PIXDIFF_MODEL, <source>/models/fashion32.safetensors and
 * <install>/fashion32.safetensors; 0 and path filled, or -1 if none exists. */
int cli_default_model(char *path, size_t cap);
/* The explanation printed when no default model exists (one line). */
const char *cli_no_model_hint(void);
/* Loads spec (NULL: the default model) and builds its denoiser at resolution res (0: trained).
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

/* ------------------------------------------------------------------ progress */

typedef struct cli_progress {
    int enabled;          /* stderr is a terminal and not --quiet */
    int batch, n_batches; /* current batch (1-based) */
    int steps;            /* steps per batch */
    double t_start;       /* of the whole run */
    double t_batch;       /* of the current batch */
    double last_draw;
} cli_progress;

void cli_progress_init(cli_progress *p, int enabled, int n_batches, int steps);
void cli_progress_batch(cli_progress *p, int batch);     /* 1-based, call before pd_sample */
void cli_progress_step(void *user, int step, int steps); /* pd_sample_params.progress */
void cli_progress_done(cli_progress *p);                 /* clears the line */

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

#endif
