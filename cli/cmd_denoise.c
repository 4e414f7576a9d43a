/* cmd_denoise.c — `pixdiff denoise`: one evaluation of D(x; sigma, label) on a float32
 * [N,C,H,W] .npy array, written as .npy of the same shape; for checking pixdiff against other
 * implementations (e.g. EDM's PyTorch code on a converted checkpoint). The denoiser is built at
 * the input's resolution, so any size the architecture allows works. Images are evaluated in
 * batches of --batch; each image's result does not depend on the batch it was in.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "pixdiff.h"

#include <stdlib.h>
#include <string.h>

int cmd_denoise(int argc, char **argv) {
    const char *cmd = "denoise";
    const char *model = NULL, *input = NULL, *output = NULL, *class_arg = NULL;
    double sigma = 0;
    int batch = 16, threads = 0;
    arg_opt opts[] = {
        OPT_DEF("--model", ARG_STR, &model, "FILE|SPEC", "model file or analytic:... spec",
                "the default model"),
        OPT_DEF("--input", ARG_STR, &input, "X.npy", "noisy images x, float32 [N,C,H,W]",
                "required"),
        OPT_DEF("--sigma", ARG_POS_DOUBLE, &sigma, "S", "noise level (EDM sigma) of every image",
                "required"),
        OPT_DEF("--class", ARG_STR, &class_arg, "K|NAME", "class label of a conditional model",
                "none (zeros)"),
        OPT_DEF("--output", ARG_STR, &output, "D.npy",
                "where to write D(x; sigma), float32 [N,C,H,W]", "required"),
        OPT("--batch", ARG_POS_INT, &batch, "B", "images per evaluation (does not change results)"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T", "threads (0: all cores)",
                "$OMP_NUM_THREADS or all cores"),
    };
    arg_spec spec = {cmd,
                     "--model FILE --input X.npy --sigma S --output D.npy [options]",
                     "Evaluate the denoiser D(x; sigma) once on every image of X.npy.",
                     opts,
                     (int)(sizeof opts / sizeof opts[0]),
                     NULL,
                     0,
                     0,
                     NULL};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    if (!input) cli_bad_flag(cmd, "--input", "required (a float32 [N,C,H,W] .npy file)");
    if (!args_given(&spec, "--sigma")) cli_bad_flag(cmd, "--sigma", "required (a positive number)");
    if (!output) cli_bad_flag(cmd, "--output", "required (a .npy file name)");
    cli_check_out_path(cmd, "--output", output);
    cli_apply_threads(args_given(&spec, "--threads"), threads);

    pd_error err = {{0}};
    float *x = NULL;
    int shape[4] = {0}, ndim = 0;
    if (pd_npy_read(input, &x, shape, &ndim, &err)) cli_die(2, cmd, "--input: %s", err.msg);
    if (ndim != 4)
        cli_die(2, cmd, "--input %s: expected 4 dimensions [N,C,H,W], got %d", input, ndim);
    const int n = shape[0], C = shape[1], H = shape[2], W = shape[3];
    if (n < 1) cli_die(2, cmd, "--input %s: no images (N = 0)", input);

    cli_model cm;
    /* Analytic denoisers have a fixed size; models are built at the input's size. */
    int res = (model && strncmp(model, "analytic:", 9) == 0) ? 0 : H;
    if (H != W) cli_die(2, cmd, "--input %s: images must be square, got %dx%d", input, H, W);
    cli_model_open(&cm, cmd, model, res);
    if (cm.gen)
        cli_bad_flag(cmd, "--model", "%s is a one-step generator (kind generator), not a denoiser: "
                     "pixdiff sample runs it", cm.name);
    pd_denoiser *d = cm.den;
    if (d->C != C || d->H != H || d->W != W)
        cli_die(2, cmd, "--input %s: shape [%d,%d,%d,%d] does not fit the model (C,H,W = %d,%d,%d)",
                input, n, C, H, W, d->C, d->H, d->W);
    int cls = cli_parse_class(cmd, "--class", class_arg, &cm, NULL, 0);

    if (batch > n) batch = n;
    const size_t chw = (size_t)C * H * W;
    float *out = malloc(sizeof(float) * chw * (size_t)n);
    float *sig = malloc(sizeof(float) * (size_t)batch);
    float *labels = d->label_dim > 0 ? malloc(sizeof(float) * (size_t)d->label_dim * batch) : NULL;
    if (!out || !sig || (d->label_dim > 0 && !labels)) cli_die(1, cmd, "out of memory");
    for (int i = 0; i < batch; i++) sig[i] = (float)sigma;
    cli_fill_labels(labels, batch, d->label_dim, cls);
    for (int i0 = 0; i0 < n; i0 += batch) {
        int nb = n - i0 < batch ? n - i0 : batch;
        if (pd_denoiser_eval(d, out + (size_t)i0 * chw, x + (size_t)i0 * chw, sig, labels, nb,
                             &err))
            cli_die(1, cmd, "%s", err.msg);
    }
    if (pd_npy_write(output, out, shape, 4, &err)) cli_die(1, cmd, "%s", err.msg);
    free(out);
    free(sig);
    free(labels);
    free(x);
    cli_model_close(&cm);
    return 0;
}
