/* cmd_plot.c — `pixdiff plot`: columns of CSV files against one column, as a PNG line plot
 * (pd_plot_lines, PLplot). Made for the logs pixdiff writes while it trains and distils
 * (training-log.csv: loss against images; fd-log.csv of `pixdiff distill sid`: FD against images)
 * and for comparing runs: every (file, column) pair is one series. A series is named by its
 * column when there is one file, by its file when there is one column, else "file: column";
 * --labels names them explicitly.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "pixdiff.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 16
#define MAX_COLS 16

/* Splits a comma-separated list in place; returns the count, or -1 when more than cap or an
 * item is empty. */
static int split_list(char *s, char **items, int cap) {
    int n = 0;
    for (char *p = s;;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (!*p || n == cap) return -1;
        items[n++] = p;
        if (!c) return n;
        p = c + 1;
    }
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

int cmd_plot(int argc, char **argv) {
    const char *cmd = "plot";
    const char *xcol = "images", *ycols_arg = NULL, *out = "plot.png", *title = NULL, *xlabel = NULL,
               *ylabel = NULL, *labels_arg = NULL;
    int logx = 0, logy = 0;
    arg_opt opts[] = {
        OPT("--x", ARG_STR, &xcol, "COL", "column on the x-axis"),
        OPT_DEF("--y", ARG_STR, &ycols_arg, "COL,...", "columns on the y-axis, one series each per file",
                "required"),
        OPT("--out", ARG_STR, &out, "FILE.png", "the plot"),
        OPT_DEF("--title", ARG_STR, &title, "TEXT", "plot title", "the file names"),
        OPT_DEF("--xlabel", ARG_STR, &xlabel, "TEXT", "x-axis label", "the --x column"),
        OPT_DEF("--ylabel", ARG_STR, &ylabel, "TEXT", "y-axis label", "the --y columns"),
        OPT_DEF("--labels", ARG_STR, &labels_arg, "A,B,...", "series names, one per (file, column), files outer",
                "from the files and columns"),
        OPT("--logx", ARG_FLAG, &logx, NULL, "logarithmic x-axis"),
        OPT("--logy", ARG_FLAG, &logy, NULL, "logarithmic y-axis"),
    };
    arg_spec spec = {cmd,
                     "[options] FILE.csv [FILE.csv ...]",
                     "Plot columns of CSV files (a header line of names, then numbers) against one of "
                     "their columns, one line per file and column, as a PNG made with PLplot. Fields "
                     "that are not numbers are left out of the lines.",
                     opts,
                     (int)(sizeof opts / sizeof opts[0]),
                     "FILE.csv",
                     1,
                     MAX_FILES,
                     "examples:\n"
                     "  pixdiff plot runs/fashion32/training-log.csv --y loss --logx --out loss.png\n"
                     "  pixdiff plot runs/sid32/fd-log.csv --y fd --out sid-fd.png\n"};
    const char *files[MAX_FILES];
    int nfiles = 0;
    args_parse(&spec, argc, argv, files, &nfiles);

    if (!ycols_arg) cli_bad_flag(cmd, "--y", "required: the columns to plot");
    char ybuf[1024], lbuf[4096];
    char *ycols[MAX_COLS], *labels[MAX_FILES * MAX_COLS];
    snprintf(ybuf, sizeof ybuf, "%s", ycols_arg);
    int ny = split_list(ybuf, ycols, MAX_COLS);
    if (ny < 0) cli_bad_flag(cmd, "--y", "expected 1 to %d column names separated by commas", MAX_COLS);
    int ns = nfiles * ny, nl = 0;
    if (labels_arg) {
        snprintf(lbuf, sizeof lbuf, "%s", labels_arg);
        nl = split_list(lbuf, labels, MAX_FILES * MAX_COLS);
        if (nl != ns) cli_bad_flag(cmd, "--labels", "expected %d names (files x columns), got '%s'", ns, labels_arg);
    }
    cli_check_out_path(cmd, "--out", out);

    pd_error err = {{0}};
    pd_csv tables[MAX_FILES];
    pd_plot_series series[MAX_FILES * MAX_COLS];
    double *cols[MAX_FILES * MAX_COLS + MAX_FILES];
    char names[MAX_FILES * MAX_COLS][256];
    int ncols = 0;
    for (int f = 0; f < nfiles; f++) {
        if (pd_csv_read(files[f], &tables[f], &err)) cli_die(2, cmd, "%s", err.msg);
        const pd_csv *t = &tables[f];
        int xi = pd_csv_column(t, xcol);
        if (xi < 0) cli_die(2, cmd, "%s: no column '%s' (--x)", files[f], xcol);
        if (t->n_rows == 0) cli_die(2, cmd, "%s: no rows", files[f]);
        double *x = malloc(sizeof(double) * (size_t)t->n_rows);
        if (!x) cli_die(1, cmd, "out of memory");
        cols[ncols++] = x;
        for (int r = 0; r < t->n_rows; r++) x[r] = t->v[(size_t)r * t->n_cols + xi];
        for (int c = 0; c < ny; c++) {
            int yi = pd_csv_column(t, ycols[c]);
            if (yi < 0) cli_die(2, cmd, "%s: no column '%s' (--y)", files[f], ycols[c]);
            double *y = malloc(sizeof(double) * (size_t)t->n_rows);
            if (!y) cli_die(1, cmd, "out of memory");
            cols[ncols++] = y;
            int points = 0;
            for (int r = 0; r < t->n_rows; r++) {
                y[r] = t->v[(size_t)r * t->n_cols + yi];
                points += isfinite(y[r]) && isfinite(x[r]);
            }
            /* An empty plot says nothing: a column without one number is an error. */
            if (points == 0)
                cli_die(2, cmd, "%s: column '%s' has no number (against '%s') to plot", files[f],
                        ycols[c], xcol);
            int k = f * ny + c;
            if (nl) snprintf(names[k], sizeof names[k], "%s", labels[k]);
            else if (nfiles == 1) snprintf(names[k], sizeof names[k], "%s", ycols[c]);
            else if (ny == 1) snprintf(names[k], sizeof names[k], "%s", files[f]);
            else snprintf(names[k], sizeof names[k], "%s: %s", files[f], ycols[c]);
            series[k] = (pd_plot_series){names[k], x, y, t->n_rows, 0, 0};
        }
    }
    char title_buf[512] = "", ylabel_buf[512];
    if (!title) {
        for (int f = 0; f < nfiles; f++)
            snprintf(title_buf + strlen(title_buf), sizeof title_buf - strlen(title_buf), "%s%s", f ? ", " : "",
                     base_name(files[f]));
        title = title_buf;
    }
    if (!ylabel) {
        snprintf(ylabel_buf, sizeof ylabel_buf, "%s", ycols_arg);
        ylabel = ylabel_buf;
    }
    pd_plot_opts po = {title, xlabel ? xlabel : xcol, ylabel, logx, logy, 0, 0};
    if (pd_plot_lines(out, &po, series, ns, &err)) cli_die(1, cmd, "%s", err.msg);
    printf("wrote %s (%d series)\n", out, ns);
    for (int i = 0; i < ncols; i++) free(cols[i]);
    for (int f = 0; f < nfiles; f++) pd_csv_free(&tables[f]);
    return 0;
}
