/* test_csv.c — pd_csv_read (core/csv.c) on small files written here: names and values, RFC 4180
 * quoting (commas and "" inside quotes), non-numbers as NaN, \r\n line ends, blank lines, and the
 * errors (wrong field count with file:line, an unclosed quote, an empty file, a missing file). */
#include "pixdiff.h"
#include "tests/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static void write_text(const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

static void expect_error(const char *name, const char *text, const char *want) {
    write_text(text);
    pd_csv t;
    pd_error err = {{0}};
    int rc = pd_csv_read(path, &t, &err);
    tu_check(rc == -1 && strstr(err.msg, want) != NULL, "%s: '%s'", name, err.msg);
    if (rc == 0) pd_csv_free(&t);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/pd-test-csv.%d.csv", (int)getpid());
    write_text("images,label,loss\r\n64,\"euler, karras\",0.5\r\n\r\n128,\"say \"\"hi\"\"\",-1.25e-3\n"
               "192,,nan-ish\n");
    pd_csv t;
    pd_error err = {{0}};
    int rc = pd_csv_read(path, &t, &err);
    tu_check(rc == 0 && t.n_cols == 3 && t.n_rows == 3, "3 columns, 3 rows (blank line skipped): %s",
             rc ? err.msg : "ok");
    if (rc == 0) {
        tu_check(!strcmp(t.names[0], "images") && !strcmp(t.names[2], "loss") && pd_csv_column(&t, "label") == 1 &&
                     pd_csv_column(&t, "nope") == -1,
                 "column names and lookup");
        tu_check(t.v[0] == 64 && t.v[2] == 0.5 && t.v[3] == 128 && t.v[5] == -1.25e-3 && t.v[6] == 192,
                 "numbers read exactly");
        tu_check(isnan(t.v[1]) && isnan(t.v[4]) && isnan(t.v[7]) && isnan(t.v[8]),
                 "quoted strings, empty fields and non-numbers are NaN");
        pd_csv_free(&t);
    }
    expect_error("wrong field count", "a,b\n1,2\n3,4,5\n", ":3: 3 fields, the header has 2");
    expect_error("unclosed quote", "a,b\n1,\"open\n", ":2: a quoted field does not close");
    expect_error("empty file", "", "empty (no header line)");
    expect_error("header without a name", "a,,c\n", ":1: column 2 of the header has no name");
    unlink(path);
    rc = pd_csv_read(path, &t, &err);
    tu_check(rc == -1 && strstr(err.msg, "No such file"), "missing file: '%s'", err.msg);
    return tu_finish();
}
