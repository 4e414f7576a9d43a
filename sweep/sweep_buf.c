/* sweep_buf.c — a growable string for the sweep's JSON lines, CSV and Markdown (sweep.h sw_buf).
 * Appends never fail loudly: on an allocation failure the buffer keeps what fit and sets oom,
 * which writers check once before committing a file. Numbers are written in the shortest form
 * that reads back to the same double, so results.jsonl round-trips exactly. */
#include "sweep/sweep.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(sw_buf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = 1;
        return -1;
    }
    b->s = s;
    b->cap = cap;
    return 0;
}

void sw_printf(sw_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sw_json_str(sw_buf *b, const char *s) {
    sw_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') sw_printf(b, "\\%c", *p);
        else if (*p == '\n') sw_printf(b, "\\n");
        else if (*p == '\t') sw_printf(b, "\\t");
        else if (*p < 0x20) sw_printf(b, "\\u%04x", *p);
        else sw_printf(b, "%c", *p);
    }
    sw_printf(b, "\"");
}

void sw_fmt_double(char *out, size_t cap, double v) {
    /* Whole numbers as integers ("80", not "8e+01"); else the shortest %.Ng that parses back
     * to v (N = 1..17). */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, cap, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

void sw_json_num(sw_buf *b, double v) {
    if (!isfinite(v)) {
        sw_printf(b, "null");
        return;
    }
    char t[40];
    sw_fmt_double(t, sizeof t, v);
    sw_printf(b, "%s", t);
}

void sw_free(sw_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}
