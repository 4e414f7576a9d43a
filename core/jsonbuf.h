/* jsonbuf.h — the one JSON writer: a growable string (jb_buf) with appenders for JSON string
 * literals and numbers, used by the sweep's results.jsonl, the CLI's --json output and PNG
 * metadata, and the model config in safetensors headers. Appends never fail loudly: on an
 * allocation failure the buffer keeps what fit and sets oom, which each writer checks once before
 * it uses the text. One number format everywhere (jb_fmt_double): whole numbers below 1e15 as
 * integers ("80", not "8e+01"), else the shortest %.Ng that reads back to the same double, so
 * every file round-trips exactly and a sweep cell key written once reads the same forever.
 * Objects are written member by member with jb_key and its typed forms, which put the ", "
 * between members themselves. */
#ifndef PD_JSONBUF_H
#define PD_JSONBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct jb_buf {
    char *s;
    size_t len, cap;
    int oom;                 /* an allocation failed: s holds what fit */
} jb_buf;

void jb_printf(jb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void jb_vprintf(jb_buf *b, const char *fmt, va_list ap);
void jb_json_str(jb_buf *b, const char *s);  /* a JSON string literal (NULL: "") */
void jb_json_num(jb_buf *b, double v);       /* jb_fmt_double; null for NaN/inf */
/* jb_fmt_double's text as it is, NaN and inf included ("nan", "inf", "-inf"): not JSON, but
 * what pixdiff's own reader (core/yamldoc.c, strtod) reads back, for a file that must keep a
 * diverged loss (AMED predictors and their checkpoints). */
void jb_num(jb_buf *b, double v);
/* "k": after ", " unless the buffer is empty or ends with "{" (the object's first member). */
void jb_key(jb_buf *b, const char *k);
void jb_key_str(jb_buf *b, const char *k, const char *v);   /* jb_key, jb_json_str */
void jb_key_int(jb_buf *b, const char *k, long long v);     /* jb_key, %lld */
void jb_key_num(jb_buf *b, const char *k, double v);        /* jb_key, jb_json_num */
void jb_free(jb_buf *b);
/* The number format above into out (cap >= 32 holds every double). */
void jb_fmt_double(char *out, size_t cap, double v);
/* printf text appended to a fixed buffer out[cap] at *len, NUL-terminated, for canonical keys and
 * descriptions: once the text does not fit, *len ends past cap - 1 and stays there, so one check
 * at the end (*len < cap) tells whether all of it fit. */
void jb_addf(char *out, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
