/* plot.c — pd_plot_lines: line plots as PNG through PLplot's "pngcairo" device.
 *
 * Contract (include/pixdiff.h "plots"): one plot per call, a title, axis labels, linear or log
 * axes, one coloured line with markers per series, a legend outside the plot on the right, NaN
 * points left out (the line breaks there). The PNG is written to "<path>.tmp.<pid>" and renamed
 * over path, so a reader sees the old plot or the new one, never half of one. PLplot is a
 * library with process-global state that prints to stderr and calls exit() on fatal errors, so
 * every call here (1) holds one mutex, (2) uses its own PLplot stream (plmkstrm/plend1), (3) routes
 * recoverable errors into a buffer (plsError, plsabort), (4) turns fatal ones into a longjmp out of
 * plexit (plsexit) instead of exit(), and (5) points file descriptor 2 at a temporary file while
 * PLplot runs, so nothing it or cairo/fontconfig prints reaches the terminal; that text is
 * appended to the error message on failure and dropped on success. Log axes take log10 of the
 * data (PLplot plots in world coordinates and only labels the axis as logarithmic); a value
 * <= 0 on a log axis is an error naming the series and point, checked before PLplot starts.
 */
#include "pixdiff.h"

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

/* A qualitative palette (distinct hues, readable on white) and markers from DejaVu Sans, the
 * cairo driver's default font family. Series past the palette change line style as well. */
static const int palette[][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
    {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
};
#define N_COLORS ((int)(sizeof palette / sizeof palette[0]))
static const char *const markers[] = {"●", "■", "▲", "◆", "▼", "○", "□", "△", "◇", "▽"};
#define N_MARKERS ((int)(sizeof markers / sizeof markers[0]))
/* cmap0 slots: 0 background, 1 axes and text, 2 grid, then the series colours. */
enum { COL_BG = 0, COL_FG = 1, COL_GRID = 2, COL_SERIES = 3 };

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

/* ------------------------------------------------------------------ checks and ranges */

static int is_point(const pd_plot_series *s, int i) { return isfinite(s->x[i]) && isfinite(s->y[i]); }

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
            if (!is_point(&s[k], i)) continue;
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

static double tr(double v, int log) { return log ? log10(v) : v; }

/* The data range on one axis in world coordinates (log10 for log axes), padded so markers are
 * not cut by the frame; a degenerate range is widened around its value. */
static void axis_range(const pd_plot_series *s, int ns, int want_x, int log, double *lo,
                       double *hi) {
    double a = INFINITY, b = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!is_point(&s[k], i)) continue;
            double v = tr(want_x ? s[k].x[i] : s[k].y[i], log);
            if (v < a) a = v;
            if (v > b) b = v;
        }
    if (!(a <= b)) { /* no points at all: an empty frame (0..1, or 1..10 on a log axis) */
        a = 0;
        b = 1;
    }
    if (b - a < 1e-12 * (fabs(a) + fabs(b)) || b == a) {
        double d = log ? 0.5 : (a != 0 ? 0.1 * fabs(a) : 1);
        a -= d;
        b += d;
    }
    double pad = 0.05 * (b - a);
    *lo = a - pad;
    *hi = b + pad;
}

/* ------------------------------------------------------------------ axes */

/* Labels between the decades of a log axis: PLplot labels only powers of ten, which leaves an
 * axis spanning less than a decade or two (NFE 3..35) with one label or none. Mantissas 2..9
 * under half a decade, 2, 3, 5 under one and a half, else 2, 5; written with plmtex at their
 * minor ticks, in the style of PLplot's fixed-point labels. */
static void log_axis_labels(int is_x, double lo, double hi) {
    static const int all[] = {2, 3, 4, 5, 6, 7, 8, 9}, some[] = {2, 3, 5}, few[] = {2, 5};
    double span = hi - lo;
    if (span > 2.5) return; /* plenty of decades: PLplot's own labels suffice */
    const int *m = span < 0.5 ? all : span < 1.5 ? some : few;
    int nm = span < 0.5 ? 8 : span < 1.5 ? 3 : 2;
    for (int e = (int)floor(lo) - 1; e <= (int)ceil(hi); e++)
        for (int j = 0; j < nm; j++) {
            double v = log10((double)m[j]) + e;
            if (v < lo || v > hi) continue;
            char txt[32];
            snprintf(txt, sizeof txt, "%.3g", pow(10.0, v));
            double pos = (v - lo) / span;
            if (is_x) plmtex("b", 1.5, pos, 0.5, txt);
            else plmtex("lv", 1.0, pos, 1.0, txt);
        }
}

/* Fixed-point labels ("0.01", "100") while they stay short; powers of ten beyond. */
static int fixed_ok(double lo, double hi) { return lo >= -3 && hi <= 5; }

/* ------------------------------------------------------------------ drawing */

/* PLplot reads '#' as its text escape ("#u" superscript ...); "##" is a literal '#'. */
static const char *pl_text(char *buf, size_t cap, const char *s) {
    size_t k = 0;
    for (; s && *s && k + 2 < cap; s++) {
        if (*s == '#') buf[k++] = '#';
        buf[k++] = *s;
    }
    buf[k] = 0;
    return buf;
}

static void set_colors(void) {
    plscmap0n(COL_SERIES + N_COLORS);
    plscol0(COL_BG, 255, 255, 255);
    plscol0(COL_FG, 0, 0, 0);
    plscol0(COL_GRID, 215, 215, 215);
    for (int k = 0; k < N_COLORS; k++)
        plscol0(COL_SERIES + k, palette[k][0], palette[k][1], palette[k][2]);
}

/* A series' look: its own colour and style when it names them (a sweep gives each sampler one
 * colour and each variant one style), else by position; past the palette's end the colours
 * repeat with the next line style. */
static int series_slot(const pd_plot_series *s, int k) {
    return s[k].color > 0 ? s[k].color - 1 : k;
}
static int series_color(const pd_plot_series *s, int k) {
    return COL_SERIES + series_slot(s, k) % N_COLORS;
}
static const char *series_marker(const pd_plot_series *s, int k) {
    return markers[series_slot(s, k) % N_MARKERS];
}
static int line_style(const pd_plot_series *s, int k) { /* PLplot styles 1..8 */
    int base = s[k].style >= 1 && s[k].style <= 8 ? s[k].style - 1 : 0;
    return 1 + (base + series_slot(s, k) / N_COLORS) % 8;
}

static void draw(const pd_plot_opts *o, const pd_plot_series *s, int ns, double x0, double x1,
                 double y0, double y1, double *wx, double *wy) {
    pladv(0);
    plcol0(COL_FG);
    plschr(0, 0.9);
    /* Room on the right for the legend: the longest label at the current character size
     * (about 0.6 em per character), plus the line sample and margins. */
    PLFLT def_ht, ht, pxmin, pxmax, pymin, pymax;
    plgchr(&def_ht, &ht);
    plgspa(&pxmin, &pxmax, &pymin, &pymax);
    size_t longest = 0;
    for (int k = 0; k < ns; k++) {
        size_t len = s[k].label ? strlen(s[k].label) : 0;
        if (len > longest) longest = len;
    }
    double legend_w = ns > 0 ? (0.62 * ht * (double)longest + 7 * ht) / (pxmax - pxmin) : 0;
    if (legend_w > 0.45) legend_w = 0.45;
    plvpor(0.11, 0.97 - legend_w, 0.12, 0.91);
    plwind(x0, x1, y0, y1);

    const char *xo = !o->logx ? "bcnst" : fixed_ok(x0, x1) ? "bcnstlf" : "bcnstl";
    const char *yo = !o->logy ? "bcnstv" : fixed_ok(y0, y1) ? "bcnstvlf" : "bcnstvl";
    /* Light grid first, then the frame, ticks and labels over it. */
    plcol0(COL_GRID);
    plwidth(1);
    plbox(o->logx ? "gl" : "g", 0, 0, o->logy ? "gl" : "g", 0, 0);
    plcol0(COL_FG);
    plbox(xo, 0, 0, yo, 0, 0);
    if (o->logx) log_axis_labels(1, x0, x1);
    if (o->logy) log_axis_labels(0, y0, y1);
    char xl[256], yl[256], tl[512];
    pllab(pl_text(xl, sizeof xl, o->xlabel), pl_text(yl, sizeof yl, o->ylabel),
          pl_text(tl, sizeof tl, o->title));

    /* Series: a polyline per run of finite points (NaN breaks the line), a marker per point. */
    for (int k = 0; k < ns; k++) {
        plcol0(series_color(s, k));
        pllsty(line_style(s, k));
        plwidth(2);
        int run = 0;
        for (int i = 0; i <= s[k].n; i++) {
            if (i < s[k].n && is_point(&s[k], i)) {
                wx[run] = tr(s[k].x[i], o->logx);
                wy[run] = tr(s[k].y[i], o->logy);
                run++;
                continue;
            }
            if (run > 1) plline(run, wx, wy);
            if (run > 0) plstring(run, wx, wy, series_marker(s, k));
            run = 0;
        }
    }
    pllsty(1);
    plwidth(1);

    if (ns > 0) {
        PLINT opt[ns], tcol[ns], lcol[ns], lsty[ns], scol[ns], snum[ns];
        PLFLT lwid[ns], sscale[ns];
        const char *text[ns], *sym[ns];
        char *texts = malloc((size_t)ns * 256);
        for (int k = 0; k < ns; k++) {
            opt[k] = PL_LEGEND_LINE | PL_LEGEND_SYMBOL;
            tcol[k] = COL_FG;
            lcol[k] = scol[k] = series_color(s, k);
            lsty[k] = line_style(s, k);
            lwid[k] = 2;
            sscale[k] = 1;
            snum[k] = 1;
            text[k] = texts ? pl_text(texts + (size_t)k * 256, 256, s[k].label) : "";
            sym[k] = series_marker(s, k);
        }
        PLFLT lw, lh;
        pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
                 PL_POSITION_RIGHT | PL_POSITION_OUTSIDE, 0.02, 0.0, 0.06,
                 COL_BG, COL_FG, 1, 0, 0, ns, opt, 0.8, 0.9, 1.8, 0.0, tcol, text, NULL, NULL,
                 NULL, NULL, lcol, lsty, lwid, scol, sscale, snum, sym);
        free(texts);
    }
}

/* ------------------------------------------------------------------ stderr capture */

typedef struct capture { int saved; FILE *f; } capture;

static void capture_begin(capture *c) {
    c->saved = -1;
    c->f = tmpfile();
    fflush(stderr);
    if (!c->f) return;
    c->saved = dup(2);
    if (c->saved < 0 || dup2(fileno(c->f), 2) < 0) {
        if (c->saved >= 0) close(c->saved);
        c->saved = -1;
    }
}

/* Restores fd 2 and copies what was captured (one line, trimmed) into text. */
static void capture_end(capture *c, char *text, size_t cap) {
    if (text && cap) text[0] = 0;
    fflush(stderr);
    if (c->saved >= 0) {
        dup2(c->saved, 2);
        close(c->saved);
    }
    if (!c->f) return;
    if (text && cap > 1) {
        rewind(c->f);
        size_t n = fread(text, 1, cap - 1, c->f);
        text[n] = 0;
        /* Join PLplot's multi-line messages ("*** PLPLOT ERROR ***\nwhy") into one line. */
        for (size_t i = 0; i < n; i++)
            if (text[i] == '\n' || text[i] == '\r') text[i] = ' ';
        size_t a = 0;
        while (text[a] == ' ') a++;
        memmove(text, text + a, strlen(text + a) + 1);
        for (size_t len = strlen(text); len > 0 && text[len - 1] == ' '; len--) text[len - 1] = 0;
    }
    fclose(c->f);
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
    axis_range(s, ns, 1, o->logx, &x0, &x1);
    axis_range(s, ns, 0, o->logy, &y0, &y1);

    pthread_mutex_lock(&plot_lock);
    volatile int rc = 0, filled = 0;
    char captured[400] = "";
    static char errmsg[2048]; /* plabort sprintf()s into it, unbounded: keep it large */
    PLINT errcode = 0;
    abort_msg[0] = fatal_msg[0] = errmsg[0] = 0;
    jmp_buf jb;
    volatile int stage = 0; /* 0 before plinit, 1 stream open, 2 ended */
    PLINT old_strm = 0;
    capture cap;
    capture_begin(&cap);
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
            set_colors();
            plinit();
            if (!errcode) draw(o, s, ns, x0, x1, y0, y1, wx, wy);
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
    capture_end(&cap, captured, sizeof captured);
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
            rc = pd_fail(err, "%s: plot: PLplot's %s device wrote no PNG%s%s", path, DEVICE,
                         captured[0] ? ": " : "", captured);
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
            pd_fail(err, "%s: plot: PLplot failed: %s%s%s", path, why[0] ? why : "unknown error",
                    captured[0] ? "; it said: " : "", captured);
        }
        unlink(tmp);
        return -1;
    }
    return 0;
}
