/* test_yamldoc — the YAML/JSON tree: nesting, line numbers of nodes and keys, strict typed
 * getters and their exact messages, unknown-key errors, JSON (compact, escaped), duplicate keys,
 * syntax errors, aliases, and hostile inputs (deep nesting) failing cleanly. */
#include "core/yamldoc.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cfg =
    "model: edm\n"                 /* 1 */
    "steps: abc\n"                 /* 2 */
    "sampler:\n"                   /* 3 */
    "  name: heun\n"               /* 4 */
    "  rho: 7.5\n"                 /* 5 */
    "  bogus: 1\n"                 /* 6 */
    "grid: [1, 2, 3]\n"            /* 7 */
    "sigmas:\n"                    /* 8 */
    "  - 80\n"                     /* 9 */
    "  - 0.002\n"                  /* 10 */
    "quoted: \"7\"\n"              /* 11 */
    "flag: yes\n"                  /* 12 */
    "bad_list: [1, x, 3]\n";       /* 13 */

static int msg_is(const pd_error *e, const char *want) {
    int ok = !strcmp(e->msg, want);
    if (!ok) printf("    got:  %s\n    want: %s\n", e->msg, want);
    return ok;
}

static int fails_with(const char *text, const char *needle) {
    yd_doc d;
    pd_error e = {""};
    int rc = yd_load_string(&d, text, "<t>", &e);
    if (!rc) yd_free(&d);
    int ok = rc == -1 && strstr(e.msg, needle) != NULL;
    if (!ok) printf("    message: %s\n", e.msg);
    return ok;
}

int main(void) {
    yd_doc d;
    pd_error e = {""};
    int rc = yd_load_string(&d, cfg, "cfg.yaml", &e);
    tu_check(rc == 0 && d.root && d.root->kind == YD_MAP, "load nested YAML (%s)", e.msg);
    if (rc) return tu_finish();
    yd_node *s = yd_get(d.root, "sampler");
    tu_check(s && s->kind == YD_MAP && s->n == 3 && s->line == 4 && s->key_lines[2] == 6,
             "nested map: 3 keys, node line 4, key 'bogus' on line 6");
    yd_node *sig = yd_get(d.root, "sigmas");
    tu_check(sig && sig->kind == YD_SEQ && sig->n == 2 && sig->items[1]->line == 10 &&
             !strcmp(sig->items[1]->scalar, "0.002"), "block sequence: item 2 on line 10");
    tu_check(yd_get(d.root, "nothing") == NULL && yd_get(sig, "x") == NULL, "absent key / non-map");

    long long iv = 42;
    tu_check(yd_int(&d, d.root, "steps", &iv, &e) == -1 &&
             msg_is(&e, "cfg.yaml:2: steps: expected an integer, got 'abc'") && iv == 42,
             "int getter error text, value untouched");
    tu_check(yd_int(&d, d.root, "absent", &iv, &e) == 0 && iv == 42, "absent key keeps default");
    tu_check(yd_int(&d, d.root, "quoted", &iv, &e) == -1 &&
             msg_is(&e, "cfg.yaml:11: quoted: expected an integer, got the quoted string '7'"),
             "quoted \"7\" is a string, not an integer");
    tu_check(yd_int(&d, d.root, "grid", &iv, &e) == -1 &&
             msg_is(&e, "cfg.yaml:7: grid: expected an integer, got a list"), "list is not an int");
    double dv = 0;
    tu_check(yd_double(&d, s, "rho", &dv, &e) == 0 && dv == 7.5, "double getter");
    tu_check(yd_double(&d, s, "name", &dv, &e) == -1 &&
             msg_is(&e, "cfg.yaml:4: name: expected a number, got 'heun'"), "double getter error");
    char str[8];
    tu_check(yd_str(&d, s, "name", str, sizeof str, &e) == 0 && !strcmp(str, "heun"), "str getter");
    tu_check(yd_str(&d, d.root, "quoted", str, sizeof str, &e) == 0 && !strcmp(str, "7"),
             "quoted scalar as string");
    tu_check(yd_str(&d, d.root, "model", str, 3, &e) == -1 && strstr(e.msg, "too long"),
             "str getter: value longer than buffer fails (%s)", e.msg);
    int b = -1;
    tu_check(yd_bool(&d, d.root, "flag", &b, &e) == 0 && b == 1, "bool getter (yes)");
    tu_check(yd_bool(&d, d.root, "model", &b, &e) == -1 &&
             msg_is(&e, "cfg.yaml:1: model: expected true or false, got 'edm'"), "bool error");
    int il[4], n = -1;
    tu_check(yd_int_list(&d, d.root, "grid", il, 4, &n, &e) == 0 && n == 3 && il[2] == 3,
             "int list");
    tu_check(yd_int_list(&d, d.root, "grid", il, 2, &n, &e) == -1 &&
             msg_is(&e, "cfg.yaml:7: grid: at most 2 values, got 3"), "int list over capacity");
    tu_check(yd_int_list(&d, d.root, "bad_list", il, 4, &n, &e) == -1 &&
             msg_is(&e, "cfg.yaml:13: bad_list[1]: expected an integer, got 'x'"), "bad list item");
    double dl[4];
    tu_check(yd_double_list(&d, d.root, "sigmas", dl, 4, &n, &e) == 0 && n == 2 && dl[0] == 80 &&
             dl[1] == 0.002, "double list");
    tu_check(yd_int_list(&d, d.root, "model", il, 4, &n, &e) == -1 &&
             msg_is(&e, "cfg.yaml:1: model: expected a list of integers, got 'edm'"),
             "scalar is not a list");

    static const char *const known[] = {"name", "rho", NULL};
    tu_check(yd_check_keys(&d, s, known, "sampler", &e) == -1 &&
             msg_is(&e, "cfg.yaml:6: sampler: unknown key 'bogus' (known keys: name, rho)"),
             "unknown key names key, line and known keys");
    static const char *const known2[] = {"name", "rho", "bogus", NULL};
    tu_check(yd_check_keys(&d, s, known2, "sampler", &e) == 0, "all keys known");
    yd_free(&d);

    /* JSON, compact as serde_json / json.dumps(separators=(',',':')) write it, with escapes. */
    const char *json = "{\"__metadata__\":{\"cfg\":\"{\\\"a\\\": [1, 2]}\",\"s\":\"q\\\"b\\\\n\\n"
                       "t\\t\\u00e9\\u0001\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                       "\"data_offsets\":[0,24]},\"empty\":[],\"x\":-1.5e-3,\"t\":true,\"z\":null}";
    rc = yd_load_string(&d, json, "h.json", &e);
    tu_check(rc == 0, "compact JSON parses (%s)", rc ? e.msg : "");
    if (!rc) {
        yd_node *m = yd_get(d.root, "__metadata__");
        yd_node *w = yd_get(d.root, "w");
        const char *sv = m ? yd_get(m, "s")->scalar : "";
        tu_check(m && !strcmp(yd_get(m, "cfg")->scalar, "{\"a\": [1, 2]}") && yd_get(m, "cfg")->quoted,
                 "JSON string holding a JSON object");
        tu_check(!strcmp(sv, "q\"b\\n\nt\t\xc3\xa9\x01"), "JSON escapes (quote, backslash, \\n, \\t, "
                 "\\u00e9, \\u0001)");
        tu_check(w && yd_get(w, "shape")->n == 2 && !strcmp(yd_get(w, "shape")->items[1]->scalar, "3"),
                 "nested JSON shape");
        double x = 0;
        tu_check(yd_double(&d, d.root, "x", &x, &e) == 0 && x == -1.5e-3, "JSON number");
        tu_check(yd_get(d.root, "empty")->kind == YD_SEQ && yd_get(d.root, "empty")->n == 0,
                 "empty JSON array");
        yd_free(&d);
    }

    tu_check(fails_with("a: 1\nb: 2\na: 3\n", "<t>:3: duplicate key 'a' (first at line 1)"),
             "duplicate key rejected with both lines");
    tu_check(fails_with("{\"a\":1,\"a\":2}", "duplicate key 'a'"), "duplicate JSON key rejected");
    tu_check(fails_with("a: 1\n  b: [1, 2\nc: 3\n", "<t>:"), "syntax error has a line number");
    tu_check(fails_with("a: 1\n---\nb: 2\n", "more than one YAML document"), "two documents");
    tu_check(fails_with("a: *nope\n", "unknown alias"), "unknown alias");
    tu_check(fails_with("{[1]: 2}", "mapping keys must be plain strings"), "complex key");
    char *deep = malloc(20001);
    for (int i = 0; i < 10000; i++) deep[i] = '[', deep[19999 - i] = ']';
    deep[20000] = '\0';
    tu_check(fails_with(deep, "nesting deeper"), "10000-deep nesting fails cleanly");
    free(deep);
    /* An alias bomb: 9 levels of 10 copies = 10^9 nodes; must hit the node budget, not the RAM. */
    char bomb[2048] = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i <= 9; i++) {
        char line[160];
        snprintf(line, sizeof line, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
                 i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
        strcat(bomb, line);
    }
    tu_check(fails_with(bomb, "document too large"), "alias bomb hits the node budget");

    rc = yd_load_string(&d, "base: &b {x: 1, y: [2, 3]}\nother: *b\n", "<a>", &e);
    tu_check(rc == 0 && yd_get(yd_get(d.root, "other"), "y")->n == 2, "alias expands to a copy");
    if (!rc) yd_free(&d);
    rc = yd_load_string(&d, "", "<e>", &e);
    tu_check(rc == 0 && d.root->kind == YD_MAP && d.root->n == 0, "empty input is an empty map");
    if (!rc) yd_free(&d);

    const char *path = "test_yamldoc.tmp.yaml";
    FILE *f = fopen(path, "w");
    fputs("# comment\n\nk:\n  v: 2.5\n  w: oops\n", f);
    fclose(f);
    rc = yd_load_file(&d, path, &e);
    tu_check(rc == 0, "load from file");
    if (!rc) {
        yd_node *k = yd_get(d.root, "k");
        tu_check(yd_double(&d, k, "w", &dv, &e) == -1 &&
                 msg_is(&e, "test_yamldoc.tmp.yaml:5: w: expected a number, got 'oops'"),
                 "file name and line in getter errors");
        yd_free(&d);
    }
    remove(path);
    tu_check(yd_load_file(&d, "no/such/file.yaml", &e) == -1 &&
             msg_is(&e, "no/such/file.yaml: No such file or directory"), "missing file");
    return tu_finish();
}
