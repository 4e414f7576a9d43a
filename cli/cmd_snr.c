/* cmd_snr.c — `pixdiff snr`: how much of each spatial frequency of the data survives the noise
 * at each point of a sigma grid (docs/algorithms.md §M3.1, §M3.3).
 *
 * Data: the Fashion-MNIST test split (or --data train, or --images DIR), brought to the analysis
 * size d (--size; nearest-upsampled or average-pooled), optionally only the first --n images.
 * Schedule: the sigma-grid options of `pixdiff sample` (cli/sampling_opts.c) with the EDM range
 * 0.002..80 by default. The unshifted grid is always analysed; with --shift scale|interp the
 * grid shifted for resolution d (base --shift-base, default the data's size) is analysed too.
 * For every grid point and every pooling p of --pools (default 1,2,4) the library
 * (metrics/snr.c) gives logSNR = -2 ln sigma (+ 2 ln p after pooling) and the per-frequency
 * SNR p^2 P_p(k) / sigma^2, P_p the data's radially averaged power spectrum after p x p pooling
 * (|F|^2/N^2 per frequency, so white noise has power sigma^2 per bin, sigma^2/p^2 pooled). The
 * CSV holds every value (pd_snr_write_csv); two PNGs (pd_plot_lines) show log10 SNR against
 * frequency at the grid point nearest --t, and logSNR against the grid position t.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/image_folder.h"
#include "cli/sampling_opts.h"
#include "pixdiff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const split_choices[] = {"test", "train", NULL};

/* "dir/name.png" -> "dir/name-logsnr.png" */
static void derived_path(char *out, size_t cap, const char *path, const char *suffix) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) dot = path + strlen(path);
    snprintf(out, cap, "%.*s%s%s", (int)(dot - path), path, suffix, dot);
}

int cmd_snr(int argc, char **argv) {
    const char *cmd = "snr";
    const char *images = NULL, *data_dir = NULL, *out = "snr.csv", *plot = "snr.png",
               *plot_logsnr = NULL;
    int split = 0, n = 0, size = 0, threads = 0, quiet = 0;
    double t_at = 0.5;
    arg_int_list pools = {{1, 2, 4}, 3};
    cli_sampling_opts so;
    arg_opt srows[CLI_SAMPLING_MAX_ROWS];
    int n_srows = cli_sampling_opts_init(&so, srows, 0, "0.002 (EDM)", "80 (EDM)", "the data's size");

    arg_opt head[] = {
        OPT_CHOICE("--data", &split, "Fashion-MNIST split analysed", split_choices),
        OPT_DEF("--images", ARG_STR, &images, "DIR", "analyse the PNGs of DIR instead", "off"),
        OPT_DEF("--data-dir", ARG_STR, &data_dir, "DIR", "Fashion-MNIST gzip IDX files",
                PD_FASHION_MNIST_DIR),
        OPT_DEF("--n", ARG_NONNEG_INT, &n, "N", "use the first N images", "all"),
        OPT_DEF("--size", ARG_NONNEG_INT, &size, "D",
                "analysis resolution d (the data up- or down-sampled) and the shift's resolution",
                "the data's"),
    };
    arg_opt tail[] = {
        OPT_DEF("--pools", ARG_INT_LIST, &pools, "P,...", "average-pooling factors (at most 4)", "1,2,4"),
        OPT("--t", ARG_NONNEG_DOUBLE, &t_at, "T",
            "grid position (1 = sigma_max, 0 = the last nonzero sigma) of the frequency plot"),
        OPT("--out", ARG_STR, &out, "FILE.csv", "CSV of every value"),
        OPT("--plot", ARG_STR, &plot, "FILE.png", "plot: log10 SNR against frequency at --t"),
        OPT_DEF("--plot-logsnr", ARG_STR, &plot_logsnr, "FILE.png",
                "plot: logSNR against the grid position t", "the --plot name with -logsnr"),
        OPT_DEF("--threads", ARG_NONNEG_INT, &threads, "T", "threads (0: all cores)",
                "$OMP_NUM_THREADS or all cores"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no summary line"),
    };
    const int n_head = (int)(sizeof head / sizeof head[0]), n_tail = (int)(sizeof tail / sizeof tail[0]);
    arg_opt opts[sizeof head / sizeof head[0] + CLI_SAMPLING_MAX_ROWS + sizeof tail / sizeof tail[0]];
    int n_opts = 0;
    for (int i = 0; i < n_head; i++) opts[n_opts++] = head[i];
    for (int i = 0; i < n_srows; i++) opts[n_opts++] = srows[i];
    for (int i = 0; i < n_tail; i++) opts[n_opts++] = tail[i];
    arg_spec spec = {
        cmd,
        "[options]",
        "Per-frequency SNR of a data set under a sigma grid: logSNR = -2 ln sigma against the grid "
        "position t, and SNR(k) = p^2 P_p(k) / sigma^2 from the data's radially averaged power "
        "spectrum at the native size and after p x p average pooling (which multiplies the SNR "
        "by p^2), for the grid as given and, with --shift, shifted for --size. Writes a CSV and "
        "two PNG plots.",
        opts,
        n_opts,
        NULL,
        0,
        0,
        "example: pixdiff snr --size 64 --shift scale --steps 40 --out snr.csv --plot snr.png\n"};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);

    /* ---- flags (exit 2, before any work) */
    if (images && args_given(&spec, "--data")) cli_bad_flag(cmd, "--data", "give --data or --images, not both");
    if (images && args_given(&spec, "--data-dir")) cli_bad_flag(cmd, "--data-dir", "not read with --images");
    if (pools.n > PD_SNR_MAX_POOLS)
        cli_bad_flag(cmd, "--pools", "at most %d factors, got %d", PD_SNR_MAX_POOLS, pools.n);
    if (t_at > 1) cli_bad_flag(cmd, "--t", "%g is not in [0, 1]", t_at);
    cli_sampling_opts_check(&so, &spec, cmd);
    cli_check_out_path(cmd, "--out", out);
    cli_check_out_path(cmd, "--plot", plot);
    char logsnr_path[2048];
    if (plot_logsnr) snprintf(logsnr_path, sizeof logsnr_path, "%s", plot_logsnr);
    else derived_path(logsnr_path, sizeof logsnr_path, plot, "-logsnr");
    cli_check_out_path(cmd, "--plot-logsnr", logsnr_path);
    cli_apply_threads(args_given(&spec, "--threads"), threads);

    /* ---- data */
    pd_error err = {{0}};
    float *x = NULL;
    int nd = 0, C = 1, N = 32;
    char source[1200];
    if (images) {
        int H = 0, W = 0;
        x = cli_read_png_folder(cmd, "--images", images, n, &nd, &C, &H, &W);
        if (H != W) cli_die(2, cmd, "%s: the images are %dx%d; the spectrum needs square images", images, W, H);
        N = H;
        snprintf(source, sizeof source, "%s", images);
    } else {
        if (pd_fashion_mnist_load(data_dir, split == 1, &x, NULL, &nd, &err)) cli_die(1, cmd, "%s", err.msg);
        snprintf(source, sizeof source, "fashion-mnist:%s", split_choices[split]);
    }
    if (n > 0 && n < nd) nd = n;
    if (size == 0) size = N;

    /* ---- schedules: as given, and shifted for d when --shift asks */
    pd_sample_params p, pbase;
    cli_sampling_opts_params(&so, &spec, cmd, 0.002, 80, size, N, &p);
    pbase = p;
    pbase.sched.shift = PD_SHIFT_NONE;
    const int steps = p.steps, n_sched = p.sched.shift != PD_SHIFT_NONE ? 2 : 1;
    double *grid[2];
    pd_snr_schedule sched[2];
    char shifted_name[64];
    snprintf(shifted_name, sizeof shifted_name, "shift-%s-%d", pd_shift_name(p.sched.shift), size);
    for (int j = 0; j < n_sched; j++) {
        grid[j] = malloc(sizeof(double) * (size_t)(steps + 1));
        if (!grid[j]) cli_die(1, cmd, "out of memory");
        if (pd_sigma_grid(grid[j], steps, j ? &p.sched : &pbase.sched, &err)) cli_die(2, cmd, "%s", err.msg);
        sched[j].name = j ? shifted_name : "unshifted";
        sched[j].sigma = grid[j];
        sched[j].n = steps + 1;
    }

    /* ---- spectra, CSV */
    double t0 = cli_now();
    pd_snr_spectra s;
    if (pd_snr_spectra_compute(&s, x, nd, C, N, size, pools.v, pools.n, &err)) {
        const char *flag = strstr(err.msg, "pooling") ? "--pools" : "--size";
        cli_bad_flag(cmd, flag, "%s", err.msg);
    }
    free(x);
    if (pd_snr_write_csv(out, &s, sched, n_sched, &err)) cli_die(1, cmd, "%s", err.msg);

    /* ---- plots. Frequency plot: the grid point nearest t of each schedule. */
    int m[2];
    for (int j = 0; j < n_sched; j++) {
        m[j] = sched[j].n;
        while (m[j] > 0 && sched[j].sigma[m[j] - 1] == 0) m[j]--;
    }
    int at = m[0] > 1 ? (int)floor((1.0 - t_at) * (m[0] - 1) + 0.5) : 0;
    int ns = n_sched * s.n_pools;
    pd_plot_series *series = calloc((size_t)ns, sizeof *series);
    double **xs = calloc((size_t)ns, sizeof(double *)), **ys = calloc((size_t)ns, sizeof(double *));
    char (*labels)[96] = calloc((size_t)ns, sizeof *labels);
    if (!series || !xs || !ys || !labels) cli_die(1, cmd, "out of memory");
    for (int j = 0, q = 0; j < n_sched; j++)
        for (int pi = 0; pi < s.n_pools; pi++, q++) {
            int pp = s.pools[pi], side = s.size / pp, nb = s.bins[pi] - 1;
            double sg = sched[j].sigma[at < m[j] ? at : m[j] - 1];
            xs[q] = malloc(sizeof(double) * (size_t)nb);
            ys[q] = malloc(sizeof(double) * (size_t)nb);
            if (!xs[q] || !ys[q]) cli_die(1, cmd, "out of memory");
            for (int k = 1; k <= nb; k++) {
                double pw = s.power[pi][k];
                xs[q][k - 1] = (double)k / side;
                ys[q][k - 1] = pw > 0 ? log10((double)pp * pp * pw / (sg * sg)) : NAN;
            }
            snprintf(labels[q], sizeof labels[q], "%s, pool %d (%d px)", sched[j].name, pp, side);
            series[q] = (pd_plot_series){labels[q], xs[q], ys[q], nb, 0, 0};
        }
    char title[256];
    int tl = snprintf(title, sizeof title, "%.60s at %d px, t = %.2f: sigma %.3g", source, s.size,
                      m[0] > 1 ? 1.0 - (double)at / (m[0] - 1) : 1.0, sched[0].sigma[at < m[0] ? at : m[0] - 1]);
    if (n_sched > 1 && tl > 0 && tl < (int)sizeof title)
        snprintf(title + tl, sizeof title - (size_t)tl, " (shifted %.3g)", sched[1].sigma[at < m[1] ? at : m[1] - 1]);
    pd_plot_opts po = {title, "frequency (cycles per pixel of the pooled image)",
                       "log10 SNR = log10(p^2 P(k) / sigma^2)", 1, 0, 960, 600};
    if (pd_plot_lines(plot, &po, series, ns, &err)) cli_die(1, cmd, "%s", err.msg);
    for (int q = 0; q < ns; q++) free(xs[q]), free(ys[q]);

    /* logSNR against t: one line per (schedule, pool) — pooling adds 2 ln p. */
    for (int j = 0, q = 0; j < n_sched; j++)
        for (int pi = 0; pi < s.n_pools; pi++, q++) {
            int pp = s.pools[pi];
            xs[q] = malloc(sizeof(double) * (size_t)m[j]);
            ys[q] = malloc(sizeof(double) * (size_t)m[j]);
            if (!xs[q] || !ys[q]) cli_die(1, cmd, "out of memory");
            for (int i = 0; i < m[j]; i++) {
                xs[q][i] = m[j] > 1 ? 1.0 - (double)i / (m[j] - 1) : 1.0;
                ys[q][i] = -2.0 * log(sched[j].sigma[i]) + 2.0 * log((double)pp);
            }
            snprintf(labels[q], sizeof labels[q], "%s, pool %d", sched[j].name, pp);
            series[q] = (pd_plot_series){labels[q], xs[q], ys[q], m[j], 0, 0};
        }
    snprintf(title, sizeof title, "logSNR of the %s grid (%d steps) at %d px", pd_grid_name(p.sched.grid),
             steps, s.size);
    pd_plot_opts pl = {title, "grid position t (1 = sigma_max)", "logSNR = -2 ln sigma + 2 ln p", 0, 0, 960, 600};
    if (pd_plot_lines(logsnr_path, &pl, series, ns, &err)) cli_die(1, cmd, "%s", err.msg);
    for (int q = 0; q < ns; q++) free(xs[q]), free(ys[q]);

    if (!quiet)
        fprintf(stderr, "pixdiff snr: %d images of %s at %d px, %d schedule%s x %d grid points x %d "
                        "pooling%s, %.2f s -> %s, %s, %s\n",
                nd, source, s.size, n_sched, n_sched > 1 ? "s" : "", m[0], s.n_pools,
                s.n_pools > 1 ? "s" : "", cli_now() - t0, out, plot, logsnr_path);
    free(series), free(xs), free(ys), free(labels);
    for (int j = 0; j < n_sched; j++) free(grid[j]);
    pd_snr_spectra_free(&s);
    return 0;
}
