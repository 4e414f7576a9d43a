/* test_plot.c — pd_plot_lines (plot/plot.c): a plot with a log x-axis, three series and a NaN gap
 * is written, read back with pd_png_read and checked for its size, for ink (neither blank nor
 * flooded), for the series' palette colours and for many distinct colours (anti-aliased text,
 * grid, legend); series that name a colour draw in it; a second plot overwrites it atomically
 * (no temporary file left behind); custom sizes and empty plots work; log axes with non-positive
 * values, infinities and unwritable paths fail cleanly with a message naming the problem and
 * write nothing; and nothing reaches stderr.
 */
#include "pixdiff.h"
#include "tests/testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int u8(float v) { return (int)lrintf((v + 1.0f) * 127.5f); }

/* Counts files in dir whose name contains needle. */
static int count_files(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, needle)) n++;
    closedir(d);
    return n;
}

typedef struct png_facts {
    int C, H, W;
    double ink;          /* fraction of pixels that are not white */
    int colours;         /* distinct colours, quantised to 4 bits per channel */
    int has[3];          /* a pixel within 30 of each of the first three palette colours */
} png_facts;

static int inspect(const char *path, png_facts *f) {
    pd_error err = {{0}};
    float *x = NULL;
    memset(f, 0, sizeof *f);
    if (pd_png_read(path, &x, &f->C, &f->H, &f->W, &err)) {
        printf("pd_png_read: %s\n", err.msg);
        return -1;
    }
    static const int pal[3][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}};
    static unsigned char seen[4096];
    memset(seen, 0, sizeof seen);
    size_t hw = (size_t)f->H * f->W, ink = 0;
    for (size_t p = 0; p < hw; p++) {
        int r = u8(x[p]), g = f->C == 3 ? u8(x[hw + p]) : r, b = f->C == 3 ? u8(x[2 * hw + p]) : r;
        if (r < 250 || g < 250 || b < 250) ink++;
        seen[(r >> 4) << 8 | (g >> 4) << 4 | (b >> 4)] = 1;
        for (int k = 0; k < 3; k++)
            if (abs(r - pal[k][0]) < 30 && abs(g - pal[k][1]) < 30 && abs(b - pal[k][2]) < 30)
                f->has[k] = 1;
    }
    for (int i = 0; i < 4096; i++) f->colours += seen[i];
    f->ink = (double)ink / (double)hw;
    free(x);
    return 0;
}

int main(void) {
    char dir[] = "/tmp/pd-test-plot.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[256], errpath[256];
    snprintf(path, sizeof path, "%s/plot.png", dir);
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);

    /* The library does not touch stderr (plot/plot.c): the test itself points fd 2 at a file for
     * the plots below, which must leave it empty: PLplot's errors come back in pd_error, and a
     * normal plot prints nothing. */
    fflush(stderr);
    int saved = dup(2);
    FILE *ef = fopen(errpath, "w");
    if (!ef || saved < 0 || dup2(fileno(ef), 2) < 0) {
        perror("redirect stderr");
        return 1;
    }

    const double nfe[] = {3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 35};
    double y0[11], y1[11], y2[11];
    for (int i = 0; i < 11; i++) {
        y0[i] = 40.0 / nfe[i];
        y1[i] = 60.0 / (nfe[i] * nfe[i]) + 0.2;
        y2[i] = 5.0 * exp(-nfe[i] / 10.0);
    }
    y1[4] = NAN; /* a gap: the line breaks, no error */
    pd_plot_series s[3] = {
        {"euler", nfe, y0, 11, 0, 0}, {"heun", nfe, y1, 11, 0, 0}, {"dpmpp-2m", nfe, y2, 11, 0, 0}};
    pd_plot_opts o = {"FD against NFE", "NFE", "FD", 1, 0, 0, 0};
    pd_error err = {{0}};

    int rc = pd_plot_lines(path, &o, s, 3, &err);
    tu_check(rc == 0, "plot with log x and a NaN gap: %s", rc ? err.msg : "ok");
    png_facts f;
    if (rc == 0 && inspect(path, &f) == 0) {
        printf("plot: %dx%dx%d, ink %.3f, %d colours, palette %d%d%d\n", f.C, f.W, f.H, f.ink,
               f.colours, f.has[0], f.has[1], f.has[2]);
        tu_check(f.C == 3 && f.W == 800 && f.H == 560, "default size 800x560 RGB (got %dx%dx%d)",
                 f.C, f.W, f.H);
        tu_check(f.ink > 0.01 && f.ink < 0.5, "ink fraction %.3f in (0.01, 0.5)", f.ink);
        tu_check(f.colours >= 12, "%d distinct colours >= 12", f.colours);
        tu_check(f.has[0] && f.has[1] && f.has[2], "all three series colours present");
    }
    tu_check(count_files(dir, ".tmp.") == 0, "no temporary file left after success");

    /* Series that name their colour draw in it, whatever their position: all three in the
     * palette's third colour (and a dashed style), none in the first two. */
    pd_plot_series sc[3] = {s[0], s[1], s[2]};
    for (int k = 0; k < 3; k++) {
        sc[k].color = 3;
        sc[k].style = 2;
    }
    rc = pd_plot_lines(path, &o, sc, 3, &err);
    tu_check(rc == 0, "plot with named colours: %s", rc ? err.msg : "ok");
    if (rc == 0 && inspect(path, &f) == 0)
        tu_check(!f.has[0] && !f.has[1] && f.has[2], "named colour 3 only (palette %d%d%d)",
                 f.has[0], f.has[1], f.has[2]);

    /* Overwrite with log-log and a custom size; the old file is replaced atomically. */
    pd_plot_opts o2 = {"log-log", "NFE", "RMSE", 1, 1, 400, 300};
    rc = pd_plot_lines(path, &o2, s, 3, &err);
    tu_check(rc == 0, "log-log 400x300: %s", rc ? err.msg : "ok");
    if (rc == 0 && inspect(path, &f) == 0)
        tu_check(f.W == 400 && f.H == 300 && f.ink > 0.01, "custom size 400x300 (got %dx%d), ink %.3f",
                 f.W, f.H, f.ink);

    /* An empty plot (no series) and a one-point series are still valid plots. */
    char p2[256];
    snprintf(p2, sizeof p2, "%s/empty.png", dir);
    rc = pd_plot_lines(p2, &o, NULL, 0, &err);
    tu_check(rc == 0 && exists(p2), "empty plot: %s", rc ? err.msg : "ok");
    double one_x = 10, one_y = 2;
    pd_plot_series one = {"single", &one_x, &one_y, 1, 0, 0};
    rc = pd_plot_lines(p2, &o2, &one, 1, &err);
    tu_check(rc == 0, "one point on log-log: %s", rc ? err.msg : "ok");

    /* Errors: each leaves no file, and names what is wrong. */
    char p3[256];
    snprintf(p3, sizeof p3, "%s/bad.png", dir);
    double ybad[11];
    memcpy(ybad, y0, sizeof ybad);
    ybad[3] = 0.0;
    pd_plot_series sb[2] = {{"ok", nfe, y0, 11, 0, 0}, {"has-zero", nfe, ybad, 11, 0, 0}};
    pd_plot_opts ology = {"t", "x", "y", 0, 1, 0, 0};
    err.msg[0] = 0;
    rc = pd_plot_lines(p3, &ology, sb, 2, &err);
    printf("log y with a zero: rc %d: %s\n", rc, err.msg);
    tu_check(rc == -1 && strstr(err.msg, "has-zero") && strstr(err.msg, "log axis"),
             "log y with y = 0 fails naming the series and the log axis");
    double xneg[2] = {-1, 2}, yy[2] = {1, 2};
    pd_plot_series sn = {"neg-x", xneg, yy, 2, 0, 0};
    err.msg[0] = 0;
    rc = pd_plot_lines(p3, &o, &sn, 1, &err);
    printf("log x with x = -1: rc %d: %s\n", rc, err.msg);
    tu_check(rc == -1 && strstr(err.msg, "neg-x") && strstr(err.msg, "x = -1"),
             "log x with x < 0 fails naming the series and value");
    /* The same values on linear axes are fine. */
    pd_plot_opts olin = {"linear", "x", "y", 0, 0, 0, 0};
    rc = pd_plot_lines(p3, &olin, &sn, 1, &err);
    tu_check(rc == 0, "linear axes accept negative values: %s", rc ? err.msg : "ok");
    unlink(p3);
    double yinf[2] = {1, INFINITY};
    pd_plot_series si = {"inf", yy, yinf, 2, 0, 0};
    err.msg[0] = 0;
    rc = pd_plot_lines(p3, &olin, &si, 1, &err);
    tu_check(rc == -1 && strstr(err.msg, "infinite"), "an infinite value fails: %s", err.msg);
    char p4[300];
    snprintf(p4, sizeof p4, "%s/no-such-dir/plot.png", dir);
    err.msg[0] = 0;
    rc = pd_plot_lines(p4, &o, s, 3, &err);
    printf("missing directory: rc %d: %s\n", rc, err.msg);
    tu_check(rc == -1 && strstr(err.msg, "no-such-dir"), "unwritable path fails naming it");
    pd_plot_opts otiny = {"t", "x", "y", 0, 0, 10, 10};
    rc = pd_plot_lines(p3, &otiny, s, 3, &err);
    tu_check(rc == -1 && strstr(err.msg, "size"), "10x10 is refused: %s", err.msg);
    tu_check(!exists(p3), "failed plots write nothing");
    tu_check(count_files(dir, ".tmp.") == 0, "no temporary file left after failures");

    /* Back to the real stderr: the capture file must be empty. */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(ef);
    struct stat st;
    stat(errpath, &st);
    if (st.st_size > 0) {
        FILE *rf = fopen(errpath, "r");
        char buf[600] = "";
        size_t n = rf ? fread(buf, 1, sizeof buf - 1, rf) : 0;
        buf[n] = 0;
        if (rf) fclose(rf);
        printf("stderr got: %s\n", buf);
    }
    tu_check(st.st_size == 0, "nothing printed on stderr (%lld bytes)", (long long)st.st_size);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (getenv("PD_KEEP_PLOT")) printf("kept %s\n", dir);
    else if (system(cmd) != 0) printf("could not remove %s\n", dir);
    return tu_finish();
}
