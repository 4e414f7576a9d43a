/* jsonbuf.c — the one JSON writer (jsonbuf.h): a growable string, JSON string literals with
 * quotes, backslashes and control bytes escaped, numbers in the shortest form that reads back
 * to the same double, and object members. */
#include "core/jsonbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(jb_buf *b, size_t extra) {
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

void jb_vprintf(jb_buf *b, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n >= 0 && !reserve(b, (size_t)n)) {
        vsnprintf(b->s + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void jb_printf(jb_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    jb_vprintf(b, fmt, ap);
    va_end(ap);
}

void jb_json_str(jb_buf *b, const char *s) {
    jb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') jb_printf(b, "\\%c", *p);
        else if (*p == '\n') jb_printf(b, "\\n");
        else if (*p == '\t') jb_printf(b, "\\t");
        else if (*p < 0x20) jb_printf(b, "\\u%04x", *p);
        else jb_printf(b, "%c", *p);
    }
    jb_printf(b, "\"");
}

void jb_fmt_double(char *out, size_t cap, double v) {
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

void jb_addf(char *out, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len = n < 0 ? cap : *len + (size_t)n;
}

void jb_num(jb_buf *b, double v) {
    char t[40];
    jb_fmt_double(t, sizeof t, v);
    jb_printf(b, "%s", t);
}

void jb_json_num(jb_buf *b, double v) {
    if (isfinite(v)) jb_num(b, v);
    else jb_printf(b, "null");
}

void jb_key(jb_buf *b, const char *k) {
    jb_printf(b, "%s\"%s\": ", b->len && b->s[b->len - 1] != '{' ? ", " : "", k);
}

void jb_key_str(jb_buf *b, const char *k, const char *v) {
    jb_key(b, k);
    jb_json_str(b, v);
}

void jb_key_int(jb_buf *b, const char *k, long long v) {
    jb_key(b, k);
    jb_printf(b, "%lld", v);
}

void jb_key_num(jb_buf *b, const char *k, double v) {
    jb_key(b, k);
    jb_json_num(b, v);
}

void jb_free(jb_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}
