/* plot_draw.c — one figure on PLplot's current stream (plot.h): the axis ranges in world
 * coordinates (log10 for log axes, padded so markers are not cut by the frame), the colour map,
 * a light grid under the frame, fixed-point or power-of-ten tick labels (with labels between the
 * decades of a log axis spanning less than ~2.5 decades), the title and axis labels, one
 * polyline per run of finite points and a marker per point for each series, and the legend
 * outside the plot on the right. It only draws: the stream, the error handlers and the file are
 * plot.c's.
 */
#include "plot/plot.h"

#include <plplot.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static double tr(double v, int log) { return log ? log10(v) : v; }

/* The data range on one axis in world coordinates (log10 for log axes), padded so markers are
 * not cut by the frame; a degenerate range is widened around its value. */
void plot_axis_range(const pd_plot_series *s, int ns, int want_x, int log, double *lo,
                       double *hi) {
    double a = INFINITY, b = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!plot_is_point(&s[k], i)) continue;
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

void plot_set_colors(void) {
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

void plot_draw(const pd_plot_opts *o, const pd_plot_series *s, int ns, double x0, double x1,
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
            if (i < s[k].n && plot_is_point(&s[k], i)) {
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
