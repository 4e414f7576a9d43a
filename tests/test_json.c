/* test_json — core/json.c, pixdiff's strict JSON reader, against the libyaml path it replaced
 * (yd_load_json_libyaml) and against RFC 8259.
 *
 * Differential: every JSON text in the repository (the safetensors headers and JSON metadata
 * values of tests/fuzz/corpus, tests/fixtures and models, the JSON files there) and 3,000
 * generated documents (nesting, every escape, surrogate pairs, raw UTF-8, numbers of every form,
 * CR/LF/CRLF line ends, random duplicate keys) must give the same tree from both readers: kinds,
 * scalars, quoted flags, keys, and the line of every node and key; where a generated document has
 * a duplicate key both must refuse it with the same message. Hostile and invalid inputs (nesting
 * 10^6 deep, a number of 10^6 digits, every prefix of a document, bad escapes, lone surrogates,
 * invalid UTF-8, a NUL inside, too many nodes) must fail fast with a one-line message naming the
 * source, the line and what is wrong. */
#include "core/yamldoc.h"
#include "core/util.h"
#include "testutil.h"
#include "yd_tree_cmp.h"
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char why[600];

/* libyaml rejects \uD8xx\uDCxx escapes; give it the pair as raw UTF-8, as safetensors.c did
 * before it read headers with core/json.c. */
static char *for_libyaml(const char *s) {
    char *out = malloc(strlen(s) + 1), *w = out;
    for (const char *r = s; *r;) {
        unsigned hi, lo;
        if (r[0] == '\\' && r[1] == 'u' && sscanf(r + 2, "%4x", &hi) == 1 && hi >= 0xd800 &&
            hi <= 0xdbff && r[6] == '\\' && r[7] == 'u' && sscanf(r + 8, "%4x", &lo) == 1 &&
            lo >= 0xdc00 && lo <= 0xdfff) {
            unsigned c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
            *w++ = (char)(0xf0 | c >> 18);
            *w++ = (char)(0x80 | ((c >> 12) & 0x3f));
            *w++ = (char)(0x80 | ((c >> 6) & 0x3f));
            *w++ = (char)(0x80 | (c & 0x3f));
            r += 12;
        } else if (r[0] == '\\' && r[1]) {
            *w++ = *r++;
            *w++ = *r++;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    return out;
}

static int n_compared;

/* Both readers on text: 1 if both accept with equal trees, 2 if both refuse with the same message
 * (or at all, unless same_refusal), 0 otherwise (why says what differs). */
static int differential(const char *text, int flags, int same_refusal) {
    yd_doc a, b;
    pd_error ea = {""}, eb = {""};
    char *ly = for_libyaml(text);
    int ra = yd_load_json_n(&a, text, strlen(text), "<d>", flags, &ea);
    int rb = yd_load_json_libyaml(&b, ly, "<d>", &eb);
    free(ly);
    int ok = 0;
    if (!ra && !rb) {
        ok = yd_same_tree(a.root, b.root, "$", why, sizeof why);
    } else if (ra && rb) {
        ok = !same_refusal || !strcmp(ea.msg, eb.msg) ? 2 : 0;
        if (!ok) snprintf(why, sizeof why, "messages differ: '%s' / '%s'", ea.msg, eb.msg);
    } else {
        snprintf(why, sizeof why, "json.c: %s / libyaml: %s", ra ? ea.msg : "accepted",
                 rb ? eb.msg : "accepted");
    }
    if (!ra) yd_free(&a);
    if (!rb) yd_free(&b);
    n_compared++;
    return ok;
}

/* ------------------------------------------------------------------ the repository's JSON */

static int n_files, n_texts, n_bad;

/* Both must accept, except the hostile fixtures, which both may refuse (for different reasons:
 * libyaml sees the anchors of alias-header.safetensors, json.c an '&' that is no JSON value). */
static void check_text(const char *what, const char *text, int flags) {
    n_texts++;
    int r = differential(text, flags, 0);
    if (r != 1 && !(r == 2 && strstr(what, "/hostile/"))) {
        n_bad++;
        printf("  %s: %s\n", what, why);
    }
}

/* A safetensors file's header and each of its metadata values that is JSON. */
static void check_safetensors(const char *path, const unsigned char *buf, size_t len) {
    unsigned long long n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > len - 8) return;
    char *hdr = malloc(n + 1);
    memcpy(hdr, buf + 8, n);
    hdr[n] = 0;
    char what[1200];
    snprintf(what, sizeof what, "%s (header)", path);
    check_text(what, hdr, 0);
    yd_doc d;
    pd_error e;
    if (!yd_load_json(&d, hdr, path, &e)) {
        const yd_node *m = yd_get(d.root, "__metadata__");
        for (int i = 0; m && m->kind == YD_MAP && i < m->n; i++) {
            const char *v = m->items[i]->scalar;
            if (!v || (v[strspn(v, " \t\r\n")] != '{' && v[strspn(v, " \t\r\n")] != '[')) continue;
            snprintf(what, sizeof what, "%s (%s)", path, m->keys[i]);
            check_text(what, v, YD_JSON_NONFINITE);
        }
        yd_free(&d);
    }
    free(hdr);
}

static void check_file(const char *path) {
    size_t len = 0;
    unsigned char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return;
    struct stat st;
    if (!fstat(fileno(f), &st) && st.st_size >= 9 && st.st_size < (64 << 20)) {
        len = (size_t)st.st_size;
        buf = malloc(len + 1);
        if (fread(buf, 1, len, f) != len) len = 0;
        buf[len] = 0;
    }
    fclose(f);
    if (len >= 9 && buf[8] == '{') {
        n_files++;
        check_safetensors(path, buf, len);
    } else if (len && (buf[0] == '{' || buf[0] == '[') && strlen((char *)buf) == len) {
        n_files++;
        /* A JSON document, or JSON lines. */
        yd_doc d;
        pd_error e;
        if (!yd_load_json(&d, (char *)buf, path, &e)) {
            yd_free(&d);
            check_text(path, (char *)buf, 0);
        } else {
            for (char *line = strtok((char *)buf, "\n"); line; line = strtok(NULL, "\n"))
                check_text(path, line, 0);
        }
    }
    free(buf);
}

static void walk(const char *dir, int depth) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < 4) walk(p, depth + 1);
        } else if (strstr(de->d_name, ".safetensors") || strstr(de->d_name, ".json")) {
            check_file(p);
        }
    }
    closedir(d);
}

/* ------------------------------------------------------------------ generated documents */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng % n);
}

typedef struct { char *s; size_t len, cap; } sbuf;
static void put(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char t[64];
    int n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    if (b->len + n + 1 > b->cap) {
        b->cap = 2 * (b->len + n + 1);
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, t, n + 1);
    b->len += n;
}

/* Whitespace between tokens: spaces, tabs, and LF, CRLF or lone CR line ends. */
static void ws(sbuf *b) {
    static const char *const w[] = {"", "", "", " ", "  ", "\t", "\n", "\r\n", "\r", "\n  "};
    put(b, "%s", w[rnd(10)]);
}

static void gen_string(sbuf *b, int key) {
    put(b, "\"");
    int n = key ? 1 + rnd(key > 1 ? 2 : 6) : rnd(12);
    for (int i = 0; i < n; i++) {
        switch (key ? 0 : rnd(9)) {
        case 0: put(b, "%c", key > 1 ? 'a' + rnd(3) : 'a' + rnd(26)); break;
        case 1: put(b, "%c", " !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~"[rnd(37)]); break;
        case 2: put(b, "\\%c", "\"\\/bfnrt"[rnd(8)]); break;
        case 3: {               /* \uXXXX of a BMP character, no surrogate, no NUL */
            unsigned u = 1 + rnd(0xfffe);
            if (u >= 0xd800 && u <= 0xdfff) u -= 0x800;
            put(b, rnd(2) ? "\\u%04x" : "\\u%04X", u);
            break;
        }
        case 4: {               /* a surrogate pair */
            unsigned c = 0x10000 + rnd(0x100000);
            put(b, "\\u%04X\\u%04x", 0xd800 + ((c - 0x10000) >> 10), 0xdc00 + (c & 0x3ff));
            break;
        }
        case 5: put(b, "%s", (const char *[]){"é", "ß", "\xc2\xa0"}[rnd(3)]); break;
        case 6: put(b, "%s", (const char *[]){"€", "中", "\xef\xbf\xbd", "\xee\x80\x80"}[rnd(4)]); break;
        case 7: put(b, "%s", (const char *[]){"😀", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbd"}[rnd(3)]); break;
        default: put(b, "\\u00%02x", rnd(32) ? rnd(0x20) | 1 : 0x7f); break;   /* a control */
        }
    }
    put(b, "\"");
}

static void gen_digits(sbuf *b, int first_nonzero) {
    int n = 1 + rnd(rnd(4) ? 3 : 20);
    for (int i = 0; i < n; i++) put(b, "%c", '0' + (i == 0 && first_nonzero ? 1 + rnd(9) : rnd(10)));
}

static void gen_number(sbuf *b) {
    if (rnd(2)) put(b, "-");
    if (rnd(4)) gen_digits(b, 1); else put(b, "0");
    if (rnd(2)) { put(b, "."); gen_digits(b, 0); }
    if (rnd(3) == 0) {
        put(b, "%c%s", rnd(2) ? 'e' : 'E', (const char *[]){"", "+", "-"}[rnd(3)]);
        gen_digits(b, 0);
    }
}

static void gen_value(sbuf *b, int depth, int dup_keys) {
    unsigned r = rnd(depth > 6 ? 6 : 10);
    if (r < 2) gen_string(b, 0);
    else if (r < 4) gen_number(b);
    else if (r < 6) put(b, "%s", (const char *[]){"true", "false", "null"}[rnd(3)]);
    else {
        int map = r < 8, n = rnd(6);
        put(b, map ? "{" : "[");
        for (int i = 0; i < n; i++) {
            if (i) put(b, ",");
            ws(b);
            if (map) {
                /* Keys stay on one line with their colon: a YAML "simple key" must. */
                gen_string(b, dup_keys ? 2 : 1);
                put(b, "%s:", rnd(3) ? "" : " ");
                ws(b);
            }
            gen_value(b, depth + 1, dup_keys);
            ws(b);
        }
        put(b, map ? "}" : "]");
    }
}

/* Keys are random letters, so a map of several short keys sometimes repeats one: both readers
 * must then refuse it with the same message (and its lines). In every fourth document the keys
 * are drawn from "a".."c", so most of its maps repeat one. */
static void generated(void) {
    int same = 0, refused = 0, bad = 0;
    sbuf b = {0};
    for (int i = 0; i < 3000; i++) {
        b.len = 0;
        put(&b, "");
        if (rnd(4)) put(&b, "%s", "{\"x\": ");
        int top = b.len > 0;
        gen_value(&b, 0, i % 4 == 3);
        if (top) put(&b, "}");
        if (rnd(3) == 0) put(&b, "%s", (const char *[]){" ", "\n", "\r\n", "\t\n "}[rnd(4)]);
        int r = differential(b.s, 0, 1);
        same += r == 1, refused += r == 2;
        if (!r && bad++ < 5) printf("  generated %d: %s\n    %.300s\n", i, why, b.s);
    }
    free(b.s);
    printf("generated: %d equal trees, %d refused alike (duplicate keys), %d differ\n", same,
           refused, bad);
    tu_check(!bad && same > 2000 && refused > 100,
             "3000 generated documents: json.c and libyaml agree (trees, lines, duplicates)");
}

/* ------------------------------------------------------------------ invalid and hostile */

static int fails_n(const char *text, size_t len, int flags, const char *want, double max_s) {
    yd_doc d;
    pd_error e = {""};
    double t = core_now();
    int rc = yd_load_json_n(&d, text, len, "h.json", flags, &e);
    t = core_now() - t;
    if (!rc) yd_free(&d);
    int ok = rc == -1 && strstr(e.msg, want) && !strchr(e.msg, '\n') && t < max_s;
    printf("  %-60.60s -> %s (%.3f s)%s\n", len < 60 ? text : "(long)", rc ? e.msg : "accepted",
           t, ok ? "" : "  FAIL");
    return ok;
}

static int fails(const char *text, const char *want) {
    return fails_n(text, strlen(text), 0, want, 1.0);
}

static void invalid(void) {
    int ok = 1;
    /* Structure. */
    ok &= fails("", "h.json:1: JSON syntax error: expected a value, got end of text");
    ok &= fails(" \n\t ", "h.json:2: JSON syntax error: expected a value, got end of text");
    ok &= fails("{\"a\": 1,}", "h.json:1: JSON syntax error: expected a string key, got '}'");
    ok &= fails("[1, 2,]", "h.json:1: JSON syntax error: expected a value, got ']'");
    ok &= fails("[1 2]", "expected ',' or ']' after an array element, got '2'");
    ok &= fails("{\"a\" 1}", "expected ':' after key 'a', got '1'");
    ok &= fails("{\"a\": 1 \"b\": 2}", "expected ',' or '}' after an object member, got '\"'");
    ok &= fails("{a: 1}", "expected a string key, got 'a'");
    ok &= fails("{1: 1}", "expected a string key, got '1'");
    ok &= fails("{'a': 1}", "expected a string key, got '''");
    ok &= fails("// c\n{}", "h.json:1: JSON syntax error: expected a value, got '/'");
    ok &= fails("{} // c", "expected the end of the text after the JSON value, got '/'");
    ok &= fails("{}\n{}", "h.json:2: JSON syntax error: expected the end of the text");
    ok &= fails("1 2", "expected the end of the text after the JSON value, got '2'");
    ok &= fails("\xef\xbb\xbf{}", "expected a value, got byte 0xef");
    ok &= fails("{\n\"a\": [1,\n2,\r\n x]}", "h.json:4: JSON syntax error: expected a value, got 'x'");
    ok &= fails("{\"a\": yes}", "expected a value, got 'yes'");
    ok &= fails("[True]", "expected a value, got 'True'");
    ok &= fails("[nul]", "expected a value, got 'nul'");
    ok &= fails("[truex]", "expected a value, got 'truex'");
    ok &= fails("{\"a\": {\"b\": 1}, \"c\": [1, 2}", "expected ',' or ']' after an array element, got '}'");
    ok &= fails("[1, 2", "expected ',' or ']' after an array element, got end of text");
    /* Numbers (RFC 8259 section 6). */
    static const char *const nums[] = {"01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10",
                                       "1.5.2", "--1", "1ee2", "Infinity", "NaN"};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        char t[64], w[64];
        snprintf(t, sizeof t, "[%s]", nums[i]);
        snprintf(w, sizeof w, nums[i][0] == '-' || (nums[i][0] >= '0' && nums[i][0] <= '9') ?
                 "invalid number '%s'" : "got '%s'", nums[i]);
        ok &= fails(t, w);
    }
    ok &= fails("[nan]", "expected a value, got 'nan'");
    ok &= fails("[-inf]", "invalid number '-inf'");
    ok &= fails_n("[nans]", 6, YD_JSON_NONFINITE, "expected a value, got 'nans'", 1);
    /* Strings. */
    ok &= fails("[\"abc", "h.json:1: JSON syntax error: unterminated string");
    ok &= fails("[\"abc\\\"]", "unterminated string");
    ok &= fails("[\"a\tb\"]", "control character in a string (must be escaped)");
    ok &= fails("[\"a\nb\"]", "control character in a string");
    ok &= fails("[\"\\x41\"]", "invalid escape '\\' followed by 'x'");
    ok &= fails("[\"\\'\"]", "invalid escape '\\' followed by '''");
    ok &= fails("[\"\\u12\"]", "\\u needs four hex digits");
    ok &= fails("[\"\\uZZZZ\"]", "\\u needs four hex digits");
    ok &= fails("[\"\\u00e\"]", "\\u needs four hex digits");
    ok &= fails("[\"\\uD83D\"]", "lone surrogate \\uD83D in a string (no low surrogate after it)");
    ok &= fails("[\"\\uD83Dx\"]", "lone surrogate \\uD83D");
    ok &= fails("[\"\\uD83D\\u0041\"]", "lone surrogate \\uD83D");
    ok &= fails("[\"\\uD83D\\uD83D\"]", "lone surrogate \\uD83D");
    ok &= fails("[\"\\uDE00\"]", "lone surrogate \\uDE00 in a string (no high surrogate before it)");
    ok &= fails("[\"\\u0000\"]", "\\u0000 (NUL) in a string is not supported");
    static const char *const utf8[] = {"\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xed\xa0\x80",
                                       "\xf0\x80\x80\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
                                       "\xff", "\x80", "\xe2\x82", "\xc3"};
    for (size_t i = 0; i < sizeof utf8 / sizeof *utf8; i++) {
        char t[32];
        snprintf(t, sizeof t, "[\"a%s\"]", utf8[i]);
        ok &= fails(t, "invalid UTF-8 in a string (byte 0x");
    }
    ok &= fails("[\xc3\xa9]", "expected a value, got byte 0xc3");
    /* A NUL inside the text (yd_load_json_n takes a length). */
    ok &= fails_n("{\"a\": \"x\0y\"}", 12, 0, "h.json:1: JSON syntax error: NUL byte in a string", 1);
    ok &= fails_n("{\"a\": 1}\0", 9, 0, "expected the end of the text after the JSON value, got a NUL byte", 1);
    ok &= fails_n("{\"a\":\0 1}", 9, 0, "expected a value, got a NUL byte", 1);
    /* Duplicate keys as core/yamldoc.c reports them. */
    ok &= fails("{\"b\": 1,\n \"a\": 2,\n \"b\": 3,\n \"a\": 4}", "h.json:4: duplicate key 'a' (first at line 2)");
    tu_check(ok, "invalid JSON refused with a one-line message naming line and problem");

    /* Truncation: every proper prefix of a document fails with a message, none is accepted. */
    const char *doc = "{\"a\": [1, -2.5e3, \"x\\u00e9\\uD83D\\uDE00\"], \"b\": {\"c\": null, "
                      "\"d\": true}, \"e\": false}";
    int trunc_ok = 1;
    for (size_t n = 0; n < strlen(doc); n++) {
        yd_doc d;
        pd_error e = {""};
        int rc = yd_load_json_n(&d, doc, n, "t.json", 0, &e);
        if (!rc) yd_free(&d);
        trunc_ok &= rc == -1 && !strncmp(e.msg, "t.json:1: ", 10);
    }
    tu_check(trunc_ok, "all %zu prefixes of a document refused", strlen(doc));
}

static void hostile(void) {
    size_t n = 1000000;
    char *t = malloc(4 * n + 8);
    memset(t, '[', n);
    t[n] = 0;
    tu_check(fails_n(t, n, 0, "h.json:1: nesting deeper than 200 levels", 0.05),
             "10^6 '[' fail at level 201, fast");
    for (size_t i = 0; i < n / 5; i++) memcpy(t + 5 * i, "{\"a\":", 5);
    tu_check(fails_n(t, n, 0, "nesting deeper than 200 levels", 0.05), "10^6 / 5 '{\"a\":' fail fast");
    t[0] = '[';
    memset(t + 1, '7', n);
    memcpy(t + 1 + n, "]", 2);
    tu_check(fails_n(t, n + 2, 0, "number or word longer than 128 characters", 0.05),
             "a number of 10^6 digits fails fast");
    /* 2^21 nodes are the limit (the root and 2^21 - 1 zeros); one more fails. */
    size_t k = (size_t)YD_MAX_NODES;
    t = realloc(t, 2 * k + 8);
    t[0] = '[';
    for (size_t i = 0; i < k; i++) memcpy(t + 1 + 2 * i, "0,", 2);
    t[2 * k - 2] = ']';                                   /* 2^21 - 1 zeros */
    yd_doc d;
    pd_error e = {""};
    double t0 = core_now();
    int rc = yd_load_json_n(&d, t, 2 * k - 1, "n.json", 0, &e);
    double t1 = core_now();
    tu_check(!rc && d.root->n == (int)k - 1, "2^21 nodes accepted (%.2f s)%s%s", t1 - t0,
             rc ? ": " : "", rc ? e.msg : "");
    if (!rc) yd_free(&d);
    t[2 * k - 2] = ',';
    t[2 * k] = ']';                                       /* 2^21 zeros */
    tu_check(fails_n(t, 2 * k + 1, 0, "h.json:1: document too large (more than 2097152 nodes)", 5),
             "2^21 + 1 nodes refused");
    free(t);
    /* Depth 200 is the deepest allowed, as in core/yamldoc.c: compared with libyaml. */
    char deep[1000];
    for (int depth = 199; depth <= 201; depth++) {
        memset(deep, '[', depth + 1);
        memset(deep + depth + 1, ']', depth + 1);
        deep[2 * depth + 2] = 0;
        int r = differential(deep, 0, 1);
        tu_check(r == (depth <= 200 ? 1 : 2), "%d nested arrays below the root: %s alike%s%s",
                 depth, depth <= 200 ? "accepted" : "refused", r ? "" : ": ", r ? "" : why);
    }
}

static void features(void) {
    yd_doc d;
    pd_error e = {""};
    const char *t = "{\"s\": \"7\", \"n\": 7, \"f\": -0.5e-3, \"t\": true, \"z\": null,\n"
                    " \"u\": \"\\u00e9\\u20AC\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\"\\\\\", \"e\": [], \"o\": {}}";
    int rc = yd_load_json(&d, t, "f.json", &e);
    tu_check(!rc, "features parse%s%s", rc ? ": " : "", e.msg);
    if (rc) return;
    long long v = 0;
    char s[64] = "";
    double x = 0;
    const yd_node *u = yd_get(d.root, "u");
    tu_check(yd_int(&d, d.root, "s", &v, &e) == -1 && strstr(e.msg, "the quoted string '7'"),
             "\"7\" stays a string (%s)", e.msg);
    tu_check(!yd_int(&d, d.root, "n", &v, &e) && v == 7 && !yd_double(&d, d.root, "f", &x, &e) &&
             x == -0.5e-3, "numbers read back");
    tu_check(!yd_str(&d, d.root, "u", s, sizeof s, &e) &&
             !strcmp(s, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/\b\f\n\r\t\"\\") && u->quoted,
             "escapes and a surrogate pair decode to UTF-8");
    tu_check(yd_get(d.root, "e")->kind == YD_SEQ && yd_get(d.root, "e")->n == 0 &&
             yd_get(d.root, "o")->kind == YD_MAP && yd_get(d.root, "o")->n == 0 &&
             u->line == 2 && d.root->key_lines[5] == 2, "empty containers, lines");
    yd_free(&d);
    rc = yd_load_json_n(&d, "[nan, -nan, inf, -inf, 1]", 25, "nf", YD_JSON_NONFINITE, &e);
    tu_check(!rc && d.root->n == 5 && !strcmp(d.root->items[3]->scalar, "-inf"),
             "YD_JSON_NONFINITE reads jb_num's nan and inf");
    if (!rc) yd_free(&d);
    rc = yd_load_json(&d, "\"top\"", "s", &e);
    tu_check(!rc && d.root->kind == YD_SCALAR && d.root->quoted, "a scalar document");
    if (!rc) yd_free(&d);
    yd_free(&d);   /* a second free is harmless */
}

int main(void) {
    features();
    invalid();
    hostile();
    generated();
    n_compared = 0;
    walk(PD_SOURCE_DIR "/tests/fuzz/corpus", 0);
    walk(PD_SOURCE_DIR "/tests/fixtures", 0);
    walk(PD_SOURCE_DIR "/models", 0);
    printf("repository: %d files, %d JSON texts, %d differ\n", n_files, n_texts, n_bad);
    tu_check(n_bad == 0 && n_texts >= 40,
             "every JSON text of the repository: json.c and libyaml build the same tree");
    return tu_finish();
}
