/* csv.c — pd_csv_read: the numeric CSV files pixdiff writes (training-log.csv, fd-log.csv,
 * sid-log.csv, results.csv, snr.csv) read back for plotting (include/pixdiff.h "csv").
 *
 * The format is the one those writers produce: a header line of column names, then one line per
 * row, fields separated by commas, a field in double quotes when it holds a comma or a quote
 * (RFC 4180, as results.csv writes its strings; no line breaks inside fields). A field that does
 * not parse completely as a number (a name, an empty field) reads as NaN, so string columns
 * simply plot as nothing. Lines may end in \r\n.
 *
 * Bounds (docs/testing.md "Resource rule"): a line may hold at most CSV_MAX_LINE bytes, and a
 * file that is not a regular file (a pipe, /dev/zero) at most CSV_MAX_STREAM bytes in all; past
 * either the read fails with a message saying so, having allocated no more than that.
 */
#include "pixdiff.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CSV_MAX_LINE ((size_t)1 << 20)
#define CSV_MAX_STREAM ((unsigned long long)4 << 20)

/* Reads one line (without its '\n') into *line, growing it up to 2 * CSV_MAX_LINE bytes.
 * Returns its length, -1 at the end of the file, -2 for a line over the limit, -3 out of memory. */
static long read_line(FILE *f, char **line, size_t *cap, unsigned long long *total) {
    size_t n = 0;
    int c = EOF;
    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
        if (n >= CSV_MAX_LINE) return -2;
        if (n + 1 >= *cap) {
            size_t nc = *cap ? 2 * *cap : 256;
            char *p = realloc(*line, nc);
            if (!p) return -3;
            *line = p, *cap = nc;
        }
        (*line)[n++] = (char)c;
    }
    *total += n + (c == '\n');
    if (c == EOF && n == 0) return -1;
    if (!*line && !(*line = malloc(*cap = 1))) return -3;
    (*line)[n] = 0;
    return (long)n;
}

void pd_csv_free(pd_csv *t) {
    if (!t) return;
    for (int i = 0; i < t->n_cols; i++) free(t->names[i]);
    free(t->names);
    free(t->v);
    memset(t, 0, sizeof *t);
}

int pd_csv_column(const pd_csv *t, const char *name) {
    for (int i = 0; i < t->n_cols; i++)
        if (!strcmp(t->names[i], name)) return i;
    return -1;
}

/* Splits line in place into fields (RFC 4180: a field in double quotes may hold commas, and ""
 * inside it is one quote); fields[] receives at most cap of them. Returns the field count, or -1
 * for a quoted field that does not close before the end of the line. */
static int split(char *line, char **fields, int cap) {
    int n = 0;
    char *r = line, *w = line;
    for (;;) {
        char *start = w;
        if (*r == '"') {
            r++;
            for (;;) {
                if (!*r) return -1;
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
            while (*r && *r != ',') *w++ = *r++;   /* text after the closing quote: kept */
        } else {
            while (*r && *r != ',') *w++ = *r++;
        }
        int more = *r == ',';
        r += more;
        *w++ = 0;
        if (n < cap) fields[n] = start;
        n++;
        if (!more) return n;
    }
}

static double parse_value(const char *s) {
    while (*s == ' ') s++;
    if (!*s) return NAN;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ') end++;
    return *end || errno == ERANGE ? NAN : v;
}

int pd_csv_read(const char *path, pd_csv *t, pd_error *err) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    long len;
    int line_no = 0, rc = 0, rows_cap = 0;
    char **fields = NULL;
    struct stat st;
    int stream = fstat(fileno(f), &st) || !S_ISREG(st.st_mode);
    unsigned long long total = 0;
    while ((len = read_line(f, &line, &cap, &total)) >= -1) {
        if (len == -1) break;
        line_no++;
        if (stream && total > CSV_MAX_STREAM) {
            rc = pd_fail(err, "%s: more than %llu MiB read from a file that is not a regular file",
                         path, CSV_MAX_STREAM >> 20);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (!t->names) {
            /* the header: count, then copy the names */
            int n = 1;
            for (const char *p = line; *p; p++) n += *p == ',';   /* an upper bound */
            t->names = calloc((size_t)n, sizeof *t->names);
            fields = calloc((size_t)n, sizeof *fields);
            if (!t->names || !fields) {
                rc = pd_fail(err, "%s: out of memory", path);
                break;
            }
            n = split(line, fields, n);
            if (n < 0) {
                rc = pd_fail(err, "%s:%d: a quoted field does not close", path, line_no);
                break;
            }
            for (int k = 0; k < n; k++) {
                if (!fields[k][0]) {
                    rc = pd_fail(err, "%s:%d: column %d of the header has no name", path, line_no, k + 1);
                    break;
                }
                t->names[k] = strdup(fields[k]);
                if (!t->names[k]) {
                    rc = pd_fail(err, "%s: out of memory", path);
                    break;
                }
                t->n_cols = k + 1;
            }
            if (rc) break;
            continue;
        }
        int n = split(line, fields, t->n_cols);
        if (n < 0) {
            rc = pd_fail(err, "%s:%d: a quoted field does not close", path, line_no);
            break;
        }
        if (n != t->n_cols) {
            rc = pd_fail(err, "%s:%d: %d fields, the header has %d", path, line_no, n, t->n_cols);
            break;
        }
        if (t->n_rows == rows_cap) {
            rows_cap = rows_cap ? 2 * rows_cap : 256;
            double *v = realloc(t->v, sizeof(double) * (size_t)rows_cap * (size_t)t->n_cols);
            if (!v) {
                rc = pd_fail(err, "%s: out of memory", path);
                break;
            }
            t->v = v;
        }
        for (int k = 0; k < n; k++) t->v[(size_t)t->n_rows * t->n_cols + k] = parse_value(fields[k]);
        t->n_rows++;
    }
    if (rc == 0 && len == -2)
        rc = pd_fail(err, "%s:%d: line longer than %zu MiB (not a CSV file?)", path, line_no + 1,
                     CSV_MAX_LINE >> 20);
    if (rc == 0 && len == -3) rc = pd_fail(err, "%s: out of memory", path);
    if (rc == 0 && ferror(f)) rc = pd_fail(err, "%s: read error", path);
    if (rc == 0 && !t->names) rc = pd_fail(err, "%s: empty (no header line)", path);
    free(line);
    free(fields);
    fclose(f);
    if (rc) pd_csv_free(t);
    return rc;
}
