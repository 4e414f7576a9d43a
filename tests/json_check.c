/* json_check.c — a strict JSON checker for the end-to-end tests (no python needed): reads one JSON
 * text (RFC 8259: objects, arrays, strings with escapes, numbers, true/false/null, nothing after
 * the value but whitespace) from stdin, exits 1 naming the byte offset if it is not valid JSON,
 * and with an argument KEY.KEY... prints the value at that path (a string without its quotes,
 * anything else as written) and exits 3 when the path does not exist.
 *   pixdiff info --json | json_check config.label_dim    ->  10
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s0, *p;
static const char *want;     /* the rest of the path being looked for, or NULL */
static const char *found_at; /* start of the value at the path */
static const char *found_end;

static void fail(const char *what) {
    fprintf(stderr, "json_check: invalid JSON at byte %ld: %s\n", (long)(p - s0), what);
    exit(1);
}
static void ws(void) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
}
static void value(const char *path);

/* A string; its raw text (between the quotes) in [*a, *b). */
static void string(const char **a, const char **b) {
    if (*p != '"') fail("expected a string");
    p++;
    *a = p;
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == 0) fail("unterminated string");
        if (c < 0x20) fail("control character in a string");
        if (c == '"') break;
        if (c == '\\') {
            p++;
            if (*p == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (!isxdigit((unsigned char)p[k])) fail("bad \\u escape");
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p) || !*p) {
                fail("bad escape");
            }
        }
        p++;
    }
    *b = p++;
}

static void number(void) {
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (isdigit((unsigned char)*p)) p++;
    else fail("expected a value");
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) fail("bad number");
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) fail("bad exponent");
        while (isdigit((unsigned char)*p)) p++;
    }
}

/* path: the remaining dotted path when this value lies on it ("" = this is the value), else NULL */
static void value(const char *path) {
    ws();
    const char *start = p;
    if (*p == '{') {
        p++;
        ws();
        if (*p != '}')
            for (;;) {
                const char *a, *b;
                ws();
                string(&a, &b);
                ws();
                if (*p != ':') fail("expected ':'");
                p++;
                const char *sub = NULL;
                if (path && *path) {
                    const char *dot = strchr(path, '.');
                    size_t len = dot ? (size_t)(dot - path) : strlen(path);
                    if ((size_t)(b - a) == len && !strncmp(a, path, len)) sub = dot ? dot + 1 : "";
                }
                value(sub);
                ws();
                if (*p == ',') { p++; continue; }
                if (*p == '}') break;
                fail("expected ',' or '}'");
            }
        p++;
    } else if (*p == '[') {
        p++;
        ws();
        if (*p != ']')
            for (;;) {
                value(NULL);
                ws();
                if (*p == ',') { p++; continue; }
                if (*p == ']') break;
                fail("expected ',' or ']'");
            }
        p++;
    } else if (*p == '"') {
        const char *a, *b;
        string(&a, &b);
        if (path && !*path) found_at = a, found_end = b;
        return;
    } else if (!strncmp(p, "true", 4)) p += 4;
    else if (!strncmp(p, "false", 5)) p += 5;
    else if (!strncmp(p, "null", 4)) p += 4;
    else number();
    if (path && !*path) found_at = start, found_end = p;
}

int main(int argc, char **argv) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
        n += got;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    if (!buf) return 2;
    buf[n] = 0;
    if (strlen(buf) != n) return fprintf(stderr, "json_check: NUL byte in the input\n"), 1;
    s0 = p = buf;
    want = argc > 1 ? argv[1] : NULL;
    value(want);
    ws();
    if (*p) fail("text after the value");
    if (want) {
        if (!found_at) return fprintf(stderr, "json_check: no value at '%s'\n", want), 3;
        printf("%.*s\n", (int)(found_end - found_at), found_at);
    }
    free(buf);
    return 0;
}
