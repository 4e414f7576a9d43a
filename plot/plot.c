/* plot.c — pd_plot_lines: line plots as PNG through PLplot's "pngcairo" device.
 *
 * Contract (include/pixdiff.h "plots"): one plot per call, a title, axis labels, linear or log
 * axes, one coloured line with markers per series, a legend outside the plot on the right, NaN
 * points left out (the line breaks there). The PNG is written to "<path>.tmp.<pid>" and renamed
 * over path, so a reader sees the old plot or the new one, never half of one. PLplot is a
 * library with process-global state that prints its errors to stderr and calls exit() on fatal
 * ones, so every call here (1) holds one mutex, (2) uses its own PLplot stream (plmkstrm/plend1),
 * (3) routes recoverable errors into a buffer (plsError, and plsabort's handler instead of
 * PLplot's own printing), and (4) turns fatal ones into a longjmp out of plexit (plsexit) instead
 * of exit(): PLplot's two hooks, so its errors come back in the returned message and nothing of
 * them is printed. It does not redirect the process's stderr: fd 2 belongs to the embedding
 * application (and to its other threads, whose messages a redirection would swallow). What PLplot
 * still prints by itself, plwarn()'s warnings (it has no hook), only follows misuse that the checks
 * below rule out before plinit; cairo and fontconfig print only about a broken environment (fonts
 * or their cache missing), which the application should see. A normal plot prints nothing
 * (tests/test_plot.c). Log axes take log10 of the data (PLplot plots in world coordinates and
 * only labels the axis as logarithmic); a value <= 0 on a log axis is an error naming the series
 * and point, checked before PLplot starts.
 */
#include "plot/plot.h"

#include <plplot.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEVICE "pngcairo"

static pthread_mutex_t plot_lock = PTHREAD_MUTEX_INITIALIZER;
static jmp_buf *exit_jump;          /* where plexit() returns to (under plot_lock) */
static char fatal_msg[512];
static char abort_msg[512];         /* first plabort() message of the call */

static int on_plexit(const char *msg) {
    snprintf(fatal_msg, sizeof fatal_msg, "%s", msg && *msg ? msg : "fatal PLplot error");
    if (exit_jump) longjmp(*exit_jump, 1);
    return 1; /* unreachable while a plot is being drawn: exit_jump is set for the whole call */
}

static void on_plabort(const char *msg) {
    if (!abort_msg[0]) snprintf(abort_msg, sizeof abort_msg, "%s", msg && *msg ? msg : "error");
}

/* ------------------------------------------------------------------ checks */

static int check_args(const char *path, const pd_plot_opts *o, const pd_plot_series *s, int ns,
                      pd_error *err) {
    if (!path || !*path) return pd_fail(err, "plot: empty output path");
    if (!o) return pd_fail(err, "%s: plot: no options", path);
    if (ns < 0 || (ns > 0 && !s)) return pd_fail(err, "%s: plot: bad series list (%d)", path, ns);
    int w = o->width ? o->width : 800, h = o->height ? o->height : 560;
    if (w < 200 || h < 150 || w > 8000 || h > 8000)
        return pd_fail(err, "%s: plot: size %dx%d is outside 200x150 .. 8000x8000", path, w, h);
    for (int k = 0; k < ns; k++) {
        const char *name = s[k].label ? s[k].label : "(unnamed)";
        if (s[k].n < 0 || (s[k].n > 0 && (!s[k].x || !s[k].y)))
            return pd_fail(err, "%s: plot: series '%s': bad point array (n = %d)", path, name,
                           s[k].n);
        for (int i = 0; i < s[k].n; i++) {
            /* NaN is a gap by contract; an infinity is a bug upstream, not a gap. */
            if (isinf(s[k].x[i]) || isinf(s[k].y[i]))
                return pd_fail(err, "%s: plot: series '%s' point %d is infinite", path, name, i);
            if (!plot_is_point(&s[k], i)) continue;
            if (o->logx && !(s[k].x[i] > 0))
                return pd_fail(err, "%s: plot: series '%s' point %d: x = %g cannot go on a log axis",
                               path, name, i, s[k].x[i]);
            if (o->logy && !(s[k].y[i] > 0))
                return pd_fail(err, "%s: plot: series '%s' point %d: y = %g cannot go on a log axis",
                               path, name, i, s[k].y[i]);
        }
    }
    return 0;
}

static int device_available(void) {
    const char *menu[128], *names[128];
    const char **pm = menu, **pn = names; /* plgDevs fills caller-owned arrays of n entries */
    int n = 128;
    plgDevs(&pm, &pn, &n);
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], DEVICE)) return 1;
    return 0;
}

/* ------------------------------------------------------------------ pd_plot_lines */

int pd_plot_lines(const char *path, const pd_plot_opts *o, const pd_plot_series *s, int ns,
                  pd_error *err) {
    if (check_args(path, o, s, ns, err)) return -1;
    int width = o->width ? o->width : 800, height = o->height ? o->height : 560;
    int maxn = 1;
    for (int k = 0; k < ns; k++)
        if (s[k].n > maxn) maxn = s[k].n;
    double *wx = malloc(sizeof(double) * (size_t)maxn), *wy = malloc(sizeof(double) * (size_t)maxn);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (!wx || !wy) {
        free(wx);
        free(wy);
        return pd_fail(err, "%s: plot: out of memory", path);
    }
    /* Fail on an unwritable destination here, with errno's words, not inside PLplot. */
    {
        FILE *f = fopen(tmp, "wb");
        if (!f) {
            int e = errno;
            free(wx);
            free(wy);
            return pd_fail(err, "%s: cannot write: %s", path, strerror(e));
        }
        fclose(f);
    }
    double x0, x1, y0, y1;
    plot_axis_range(s, ns, 1, o->logx, &x0, &x1);
    plot_axis_range(s, ns, 0, o->logy, &y0, &y1);

    pthread_mutex_lock(&plot_lock);
    volatile int rc = 0, filled = 0;
    static char errmsg[2048]; /* plabort sprintf()s into it, unbounded: keep it large */
    PLINT errcode = 0;
    abort_msg[0] = fatal_msg[0] = errmsg[0] = 0;
    jmp_buf jb;
    volatile int stage = 0; /* 0 before plinit, 1 stream open, 2 ended */
    PLINT old_strm = 0;
    exit_jump = &jb;
    if (setjmp(jb) == 0) {
        plsexit(on_plexit);
        plsabort(on_plabort);
        plgstrm(&old_strm);
        PLINT strm;
        plmkstrm(&strm);
        plsError(&errcode, errmsg);
        stage = 1;
        if (!device_available()) {
            rc = pd_fail(err, "%s: plot: PLplot has no '%s' device (install plplot-driver-cairo)",
                         path, DEVICE);
            filled = 1;
        } else {
            plsdev(DEVICE);
            plsfnam(tmp);
            plspage(0, 0, width, height, 0, 0);
            plot_set_colors();
            plinit();
            if (!errcode) plot_draw(o, s, ns, x0, x1, y0, y1, wx, wy);
        }
        plend1(); /* the cairo driver writes the PNG and closes the file here */
        stage = 2;
    } else {
        /* plexit() jumped here: PLplot's stream is in an unknown state; try to close it under
         * a second guard so a failure while closing cannot exit the process either. */
        jmp_buf jb2;
        exit_jump = &jb2;
        if (stage == 1 && setjmp(jb2) == 0) plend1();
        rc = -1;
    }
    exit_jump = NULL;
    plsexit(NULL);
    plsabort(NULL);
    plsstrm(old_strm);
    if (errcode || abort_msg[0] || fatal_msg[0]) rc = -1;
    pthread_mutex_unlock(&plot_lock);
    free(wx);
    free(wy);

    if (rc == 0) {
        /* The file must be a PNG now; then fsync and rename (the atomic step). */
        unsigned char sig[8] = {0};
        FILE *f = fopen(tmp, "rb");
        size_t got = f ? fread(sig, 1, 8, f) : 0;
        if (f) fclose(f);
        static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        if (got != 8 || memcmp(sig, png_sig, 8)) {
            rc = pd_fail(err, "%s: plot: PLplot's %s device wrote no PNG", path, DEVICE);
            filled = 1;
        } else {
            int fd = open(tmp, O_RDONLY);
            if (fd >= 0) {
                fsync(fd);
                close(fd);
            }
            if (rename(tmp, path)) {
                rc = pd_fail(err, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
                filled = 1;
            }
        }
    }
    if (rc) {
        if (!filled) {
            const char *why = fatal_msg[0] ? fatal_msg : abort_msg[0] ? abort_msg : errmsg;
            pd_fail(err, "%s: plot: PLplot failed: %s", path, why[0] ? why : "unknown error");
        }
        unlink(tmp);
        return -1;
    }
    return 0;
}
