/* plot.h — the plot room's internal pieces (pd_plot_lines, include/pixdiff.h "plots", is its
 * public face). plot/ is the one room that calls PLplot: plot.c owns PLplot's process-global
 * state for the length of one call (a mutex, a stream of its own, the error handlers, the
 * temporary file and the rename); plot_draw.c draws one figure on the open stream.
 */
#ifndef PD_PLOT_H
#define PD_PLOT_H

#include "pixdiff.h"

#include <math.h>

/* Point i of a series is drawn when both coordinates are finite (NaN is a gap by contract). */
static inline int plot_is_point(const pd_plot_series *s, int i) {
    return isfinite(s->x[i]) && isfinite(s->y[i]);
}

/* The range of the series' x (want_x 1) or y values in world coordinates (log10 when log),
 * padded by 5 %; no points at all gives 0..1, a single value is widened around itself. */
void plot_axis_range(const pd_plot_series *s, int ns, int want_x, int log, double *lo, double *hi);
/* The colour map (cmap0) the figure uses: white background, black text, grey grid, the palette. */
void plot_set_colors(void);
/* The figure: frame, grid, labels, the series and the legend, in world coordinates x0..x1,
 * y0..y1. wx, wy: scratch for the longest series (points). Call between plinit and plend1. */
void plot_draw(const pd_plot_opts *o, const pd_plot_series *s, int ns, double x0, double x1,
               double y0, double y1, double *wx, double *wy);

#endif
