/* eval_inception.h — the Inception side of `pixdiff eval --features inception` (cmd_eval.c feeds
 * it the same batches it would give the classifier evaluator): the network, the reference, the
 * features of the evaluated images, the progress line, and the result lines / JSON fields. It is
 * CLI: errors exit (2 naming the flag for bad input, 1 for failed work). */
#ifndef PD_CLI_EVAL_INCEPTION_H
#define PD_CLI_EVAL_INCEPTION_H

#include "cli/common.h"
#include "pixdiff.h"

typedef struct cli_fid {
    const char *cmd;
    pd_inception *net;
    pd_fid_prep prep;
    pd_fid_ref ref;
    int have_ref;
    float *feat;              /* [n, 2048] of the evaluated images */
    int n, cap, total;
    int progress;             /* draw the progress line (cli_fid_open sets 1) */
    double t0, t_features;
    cli_progress ui;
    pd_fid_result r;
    char inception_path[1024];
} cli_fid;

/* Loads the weights (--inception FILE, else $PIXDIFF_INCEPTION) and, when ref is non-NULL, the
 * reference (DIR, FILE.npz, FILE.npy or fashion-mnist:SPLIT; progress on stderr). */
void cli_fid_open(cli_fid *f, const char *cmd, const char *inception, const char *prep,
                  const char *ref, const char *data_dir, int quiet);
/* The number of images that will be added (for the progress line). */
void cli_fid_expect(cli_fid *f, int total);
/* Features of n images [n, C, H, W] in [-1, 1] (quantised to 8 bits as PNGs are). */
void cli_fid_add(cli_fid *f, const float *x, int n, int C, int H, int W);
/* Writes the statistics of the added images to save_ref (if non-NULL, atomically) and computes
 * FID, KID and precision/recall (k = pr_k) against the reference (if any); warns on stderr when
 * n <= 2048. */
void cli_fid_finish(cli_fid *f, const char *save_ref, const pd_kid_params *kid, int pr_k, int quiet);
/* The result as JSON fields (", \"fid\": ...") or as the text table's lines. */
void cli_fid_json(const cli_fid *f, cli_buf *b, const char *save_ref);
void cli_fid_print(const cli_fid *f, const char *save_ref);
void cli_fid_close(cli_fid *f);

#endif
