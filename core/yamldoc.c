/* yamldoc.c — parses one YAML (or JSON) document with libyaml's event API into the yd_node tree
 * of yamldoc.h, remembering the 1-based line of every node and map key. Duplicate map keys, a
 * second document, and nesting deeper than YD_MAX_DEPTH are errors; aliases are expanded by copy
 * under a node budget and a byte budget: the copies may add at most YD_ALIAS_SLACK bytes plus as
 * many bytes as the tree parsed from the text so far, so an "alias bomb" fails after a few MB
 * whatever its depth or scalar sizes (docs/testing.md "Resource rule"). JSON has its own reader
 * (core/json.c); yd_load_json_libyaml, the reference its tests compare with, refuses anchors and
 * aliases outright: JSON has none. The typed getters are strict:
 * a present key with the wrong type fails with "source:line: key: expected ..., got ...". */
#include "core/yamldoc.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define YD_ALIAS_SLACK ((size_t)1 << 20)

typedef struct { char *name; yd_node *node; } yd_anchor;

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;
    int have_ev;
    const char *src;
    pd_error *err;
    long nodes;
    yd_anchor *anchors;
    int n_anchors;
    int json;                 /* refuse anchors and aliases */
    size_t parsed, copied;    /* bytes of the tree built from the text / by alias copies */
} yd_ctx;

/* Bytes a node holds besides its children: the struct, its scalar, its slots and its keys. */
static size_t node_bytes(const yd_node *n) {
    size_t b = sizeof *n + (n->scalar ? strlen(n->scalar) + 1 : 0) + (size_t)n->n * sizeof(void *);
    if (n->kind == YD_MAP)
        for (int i = 0; i < n->n; i++) b += sizeof(char *) + sizeof(int) + strlen(n->keys[i]) + 1;
    return b;
}

static void node_free(yd_node *n) {
    if (!n) return;
    free(n->scalar);
    for (int i = 0; i < n->n; i++) {
        node_free(n->items[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->key_lines);
    free(n);
}

static yd_node *node_new(yd_ctx *c, yd_kind kind, int line) {
    if (++c->nodes > YD_MAX_NODES) {
        pd_fail(c->err, "%s:%d: document too large (more than %ld nodes)", c->src, line,
                YD_MAX_NODES);
        return NULL;
    }
    yd_node *n = calloc(1, sizeof *n);
    if (!n) { pd_fail(c->err, "%s: out of memory", c->src); return NULL; }
    n->kind = kind;
    n->line = line;
    return n;
}

/* Fetches the next event into c->ev, releasing the previous one. */
static int next_event(yd_ctx *c) {
    if (c->have_ev) yaml_event_delete(&c->ev);
    c->have_ev = 0;
    if (!yaml_parser_parse(&c->parser, &c->ev)) {
        yaml_parser_t *p = &c->parser;
        const char *prob = p->problem ? p->problem : "parse error";
        if (p->context)
            return pd_fail(c->err, "%s:%zu: YAML syntax error: %s (%s, line %zu)", c->src,
                           p->problem_mark.line + 1, prob, p->context, p->context_mark.line + 1);
        return pd_fail(c->err, "%s:%zu: YAML syntax error: %s", c->src, p->problem_mark.line + 1,
                       prob);
    }
    c->have_ev = 1;
    return 0;
}

static yd_node *node_copy(yd_ctx *c, const yd_node *s) {
    c->copied += node_bytes(s);
    if (c->copied > YD_ALIAS_SLACK + c->parsed) {
        pd_fail(c->err, "%s:%d: document too large (aliases expand to more than %zu bytes)",
                c->src, s->line, YD_ALIAS_SLACK + c->parsed);
        return NULL;
    }
    yd_node *d = node_new(c, s->kind, s->line);
    if (!d) return NULL;
    d->quoted = s->quoted;
    if (s->scalar && !(d->scalar = strdup(s->scalar))) goto oom;
    if (s->n) {
        d->items = calloc(s->n, sizeof *d->items);
        if (!d->items) goto oom;
        if (s->kind == YD_MAP) {
            d->keys = calloc(s->n, sizeof *d->keys);
            d->key_lines = malloc(s->n * sizeof *d->key_lines);
            if (!d->keys || !d->key_lines) goto oom;
            memcpy(d->key_lines, s->key_lines, s->n * sizeof *d->key_lines);
        }
        for (int i = 0; i < s->n; i++) {
            d->n = i + 1;
            if (d->keys && !(d->keys[i] = strdup(s->keys[i]))) goto oom;
            if (!(d->items[i] = node_copy(c, s->items[i]))) { node_free(d); return NULL; }
        }
    }
    return d;
oom:
    node_free(d);
    pd_fail(c->err, "%s: out of memory", c->src);
    return NULL;
}

typedef struct { const char *key; int line; } yd_keyref;

static int keyref_cmp(const void *a, const void *b) {
    const yd_keyref *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : (x->line > y->line) - (x->line < y->line);
}

/* Sorting is O(n log n), so a 100 MB safetensors header with many keys stays cheap to check. */
static int check_duplicates(yd_ctx *c, const yd_node *m) {
    if (m->n < 2) return 0;
    yd_keyref *r = malloc(m->n * sizeof *r);
    if (!r) return pd_fail(c->err, "%s: out of memory", c->src);
    for (int i = 0; i < m->n; i++) r[i] = (yd_keyref){m->keys[i], m->key_lines[i]};
    qsort(r, m->n, sizeof *r, keyref_cmp);
    int rc = 0;
    for (int i = 1; i < m->n && !rc; i++)
        if (!strcmp(r[i].key, r[i - 1].key))
            rc = pd_fail(c->err, "%s:%d: duplicate key '%s' (first at line %d)", c->src,
                         r[i].line, r[i].key, r[i - 1].line);
    free(r);
    return rc;
}

static int add_anchor(yd_ctx *c, const unsigned char *name, yd_node *n) {
    if (!name) return 0;
    yd_anchor *a = realloc(c->anchors, (c->n_anchors + 1) * sizeof *a);
    if (!a) return pd_fail(c->err, "%s: out of memory", c->src);
    c->anchors = a;
    if (!(a[c->n_anchors].name = strdup((const char *)name)))
        return pd_fail(c->err, "%s: out of memory", c->src);
    a[c->n_anchors++].node = n;
    return 0;
}

/* Builds the node that starts at the current event; on return c->ev is its last event. */
static yd_node *parse_node(yd_ctx *c, int depth) {
    yaml_event_t *e = &c->ev;
    int line = (int)e->start_mark.line + 1;
    if (depth > YD_MAX_DEPTH) {
        pd_fail(c->err, "%s:%d: nesting deeper than %d levels", c->src, line, YD_MAX_DEPTH);
        return NULL;
    }
    if (c->json && (e->type == YAML_ALIAS_EVENT ||
                    (e->type == YAML_SCALAR_EVENT && e->data.scalar.anchor) ||
                    (e->type == YAML_MAPPING_START_EVENT && e->data.mapping_start.anchor) ||
                    (e->type == YAML_SEQUENCE_START_EVENT && e->data.sequence_start.anchor))) {
        pd_fail(c->err, "%s:%d: YAML anchors and aliases are not JSON", c->src, line);
        return NULL;
    }
    if (e->type == YAML_ALIAS_EVENT) {
        /* The anchor is registered only once its node is complete, so self-references fail. */
        for (int i = c->n_anchors - 1; i >= 0; i--)
            if (!strcmp(c->anchors[i].name, (const char *)e->data.alias.anchor))
                return node_copy(c, c->anchors[i].node);
        pd_fail(c->err, "%s:%d: unknown alias '*%s'", c->src, line, e->data.alias.anchor);
        return NULL;
    }
    if (e->type == YAML_SCALAR_EVENT) {
        yd_node *n = node_new(c, YD_SCALAR, line);
        if (!n) return NULL;
        const char *tag = (const char *)e->data.scalar.tag;
        n->quoted = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
                    (tag && !strcmp(tag, YAML_STR_TAG));
        n->scalar = malloc(e->data.scalar.length + 1);
        if (!n->scalar) { node_free(n); pd_fail(c->err, "%s: out of memory", c->src); return NULL; }
        memcpy(n->scalar, e->data.scalar.value, e->data.scalar.length);
        n->scalar[e->data.scalar.length] = '\0';
        c->parsed += node_bytes(n);
        if (add_anchor(c, e->data.scalar.anchor, n)) { node_free(n); return NULL; }
        return n;
    }
    int is_map = e->type == YAML_MAPPING_START_EVENT;
    if (!is_map && e->type != YAML_SEQUENCE_START_EVENT) {
        pd_fail(c->err, "%s:%d: unexpected YAML event", c->src, line);
        return NULL;
    }
    char *anchor = NULL;
    const unsigned char *a = is_map ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
    if (a && !(anchor = strdup((const char *)a))) {
        pd_fail(c->err, "%s: out of memory", c->src);
        return NULL;
    }
    yd_node *n = node_new(c, is_map ? YD_MAP : YD_SEQ, line);
    int cap = 0;
    yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    while (n) {
        if (next_event(c)) goto fail;
        if (e->type == end) break;
        if (n->n == cap) {
            cap = cap ? 2 * cap : 8;
            yd_node **it = realloc(n->items, cap * sizeof *it);
            if (it) n->items = it;
            if (is_map) {
                char **k = realloc(n->keys, cap * sizeof *k);
                if (k) n->keys = k;
                int *kl = realloc(n->key_lines, cap * sizeof *kl);
                if (kl) n->key_lines = kl;
                if (!k || !kl) it = NULL;
            }
            if (!it) { pd_fail(c->err, "%s: out of memory", c->src); goto fail; }
        }
        if (is_map) {
            int kline = (int)e->start_mark.line + 1;
            if (e->type != YAML_SCALAR_EVENT) {
                pd_fail(c->err, "%s:%d: mapping keys must be plain strings", c->src, kline);
                goto fail;
            }
            char *k = malloc(e->data.scalar.length + 1);
            if (!k) { pd_fail(c->err, "%s: out of memory", c->src); goto fail; }
            memcpy(k, e->data.scalar.value, e->data.scalar.length);
            k[e->data.scalar.length] = '\0';
            n->keys[n->n] = k;
            n->key_lines[n->n] = kline;
            n->items[n->n] = NULL;
            n->n++;
            if (next_event(c)) goto fail;
            if (!(n->items[n->n - 1] = parse_node(c, depth + 1))) goto fail;
        } else {
            yd_node *item = parse_node(c, depth + 1);
            if (!item) goto fail;
            n->items[n->n++] = item;
        }
    }
    if (!n) goto fail;
    c->parsed += node_bytes(n);   /* children were counted as they were parsed or copied */
    if (is_map && check_duplicates(c, n)) goto fail;
    if (add_anchor(c, (const unsigned char *)anchor, n)) goto fail;
    free(anchor);
    return n;
fail:
    free(anchor);
    node_free(n);
    return NULL;
}

static int load(yd_doc *doc, yd_ctx *c) {
    int rc = -1;
    if (next_event(c) || c->ev.type != YAML_STREAM_START_EVENT) goto done;
    if (next_event(c)) goto done;
    if (c->ev.type == YAML_STREAM_END_EVENT) {     /* empty input: an empty mapping */
        if ((doc->root = node_new(c, YD_MAP, 1))) rc = 0;
        goto done;
    }
    if (next_event(c)) goto done;                  /* DOCUMENT_START -> the root node */
    if (!(doc->root = parse_node(c, 0))) goto done;
    if (next_event(c)) goto done;                  /* DOCUMENT_END */
    if (next_event(c)) goto done;
    if (c->ev.type != YAML_STREAM_END_EVENT) {
        pd_fail(c->err, "%s:%zu: more than one YAML document", c->src, c->ev.start_mark.line + 1);
        goto done;
    }
    rc = 0;
done:
    if (c->have_ev) yaml_event_delete(&c->ev);
    for (int i = 0; i < c->n_anchors; i++) free(c->anchors[i].name);
    free(c->anchors);
    yaml_parser_delete(&c->parser);
    if (rc) { node_free(doc->root); doc->root = NULL; }
    return rc;
}

static int start(yd_doc *doc, yd_ctx *c, const char *source, pd_error *err) {
    memset(doc, 0, sizeof *doc);
    memset(c, 0, sizeof *c);
    snprintf(doc->source, sizeof doc->source, "%s", source);
    c->src = doc->source;
    c->err = err;
    if (!yaml_parser_initialize(&c->parser)) return pd_fail(err, "%s: out of memory", source);
    return 0;
}

/* Through yd_read_text, so a file is at most 1 MiB whatever it is (a pipe, /dev/zero). */
int yd_load_file(yd_doc *doc, const char *path, pd_error *err) {
    char *text;
    memset(doc, 0, sizeof *doc);
    if (yd_read_text(path, &text, err)) return -1;
    int rc = yd_load_string(doc, text, path, err);
    free(text);
    return rc;
}

static int load_string(yd_doc *doc, const char *text, const char *source_name, int json,
                       pd_error *err) {
    yd_ctx c;
    if (start(doc, &c, source_name ? source_name : "<string>", err)) return -1;
    c.json = json;
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, strlen(text));
    return load(doc, &c);
}

int yd_load_string(yd_doc *doc, const char *text, const char *source_name, pd_error *err) {
    return load_string(doc, text, source_name, 0, err);
}

int yd_load_json_libyaml(yd_doc *doc, const char *text, const char *source_name,
                         pd_error *err) {
    return load_string(doc, text, source_name, 1, err);
}

void yd_free(yd_doc *doc) {
    if (!doc) return;
    if (doc->arena) yd_arena_free(doc->arena);
    else node_free(doc->root);
    doc->root = NULL;
    doc->arena = NULL;
}

/* ------------------------------------------------------------------ lookups */

static int find(const yd_node *map, const char *key) {
    if (!map || map->kind != YD_MAP) return -1;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return i;
    return -1;
}

yd_node *yd_get(const yd_node *map, const char *key) {
    int i = find(map, key);
    return i < 0 ? NULL : map->items[i];
}

int yd_check_keys(const yd_doc *doc, const yd_node *map, const char *const *known,
                  const char *where, pd_error *err) {
    const char *w = where && where[0] ? where : "";
    const char *sep = where && where[0] ? ": " : "";
    if (!map) return 0;
    if (map->kind != YD_MAP)
        return pd_fail(err, "%s:%d: %s%sexpected a mapping of keys", doc->source, map->line, w, sep);
    for (int i = 0; i < map->n; i++) {
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) ok = !strcmp(known[k], map->keys[i]);
        if (ok) continue;
        char list[400] = "";
        size_t len = 0;
        for (int k = 0; known[k] && len < sizeof list; k++)
            len += snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", known[k]);
        return pd_fail(err, "%s:%d: %s%sunknown key '%s' (known keys: %s)", doc->source,
                       map->key_lines[i], w, sep, map->keys[i], list);
    }
    return 0;
}

/* "'abc'", "the quoted string '7'", "a list" or "a mapping", for "expected X, got Y". */
static const char *describe(const yd_node *n, char *buf, size_t cap) {
    if (n->kind == YD_SEQ) return "a list";
    if (n->kind == YD_MAP) return "a mapping";
    snprintf(buf, cap, "%s'%.60s%s'", n->quoted ? "the quoted string " : "", n->scalar,
             strlen(n->scalar) > 60 ? "..." : "");
    return buf;
}

static int type_error(const yd_doc *doc, int line, const char *key, const char *want,
                      const yd_node *n, pd_error *err) {
    char buf[128];
    return pd_fail(err, "%s:%d: %s: expected %s, got %s", doc->source, line, key, want,
                   describe(n, buf, sizeof buf));
}

static int parse_ll(const yd_node *n, long long *out) {
    if (n->kind != YD_SCALAR || n->quoted || !n->scalar[0]) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(n->scalar, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int parse_double(const yd_node *n, double *out) {
    if (n->kind != YD_SCALAR || n->quoted || !n->scalar[0]) return -1;
    const char *s = n->scalar;
    /* YAML's spellings of infinity and NaN (YAML 1.2 core schema). */
    static const char *const inf[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nan[] = {".nan", ".NaN", ".NAN", NULL};
    int sign = (*s == '-') ? -1 : 1;
    const char *t = (*s == '-' || *s == '+') ? s + 1 : s;
    for (int i = 0; inf[i]; i++)
        if (!strcmp(t, inf[i])) { *out = sign * (1.0 / 0.0); return 0; }
    for (int i = 0; nan[i]; i++)
        if (!strcmp(s, nan[i])) { *out = 0.0 / 0.0; return 0; }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || (errno == ERANGE && v != 0)) return -1;
    *out = v;
    return 0;
}

int yd_int(const yd_doc *doc, const yd_node *map, const char *key, long long *out, pd_error *err) {
    int i = find(map, key);
    if (i < 0) return 0;
    if (parse_ll(map->items[i], out))
        return type_error(doc, map->key_lines[i], key, "an integer", map->items[i], err);
    return 0;
}

int yd_double(const yd_doc *doc, const yd_node *map, const char *key, double *out,
              pd_error *err) {
    int i = find(map, key);
    if (i < 0) return 0;
    if (parse_double(map->items[i], out))
        return type_error(doc, map->key_lines[i], key, "a number", map->items[i], err);
    return 0;
}

int yd_bool(const yd_doc *doc, const yd_node *map, const char *key, int *out, pd_error *err) {
    int i = find(map, key);
    if (i < 0) return 0;
    const yd_node *n = map->items[i];
    static const char *const t[] = {"true", "yes", "on", NULL}, *const f[] = {"false", "no", "off", NULL};
    if (n->kind == YD_SCALAR && !n->quoted)
        for (int k = 0; t[k]; k++) {
            if (!strcasecmp(n->scalar, t[k])) { *out = 1; return 0; }
            if (!strcasecmp(n->scalar, f[k])) { *out = 0; return 0; }
        }
    return type_error(doc, map->key_lines[i], key, "true or false", n, err);
}

int yd_str(const yd_doc *doc, const yd_node *map, const char *key, char *out, size_t cap,
           pd_error *err) {
    int i = find(map, key);
    if (i < 0) return 0;
    const yd_node *n = map->items[i];
    if (n->kind != YD_SCALAR) return type_error(doc, map->key_lines[i], key, "a string", n, err);
    size_t len = strlen(n->scalar);
    if (len >= cap)
        return pd_fail(err, "%s:%d: %s: value too long (%zu characters, at most %zu)",
                       doc->source, map->key_lines[i], key, len, cap ? cap - 1 : 0);
    memcpy(out, n->scalar, len + 1);
    return 0;
}

/* Shared body of the list getters: is_int selects integers (ints) or numbers (doubles). */
static int number_list(const yd_doc *doc, const yd_node *map, const char *key, int *iout,
                       double *dout, int cap, int *n, pd_error *err) {
    int i = find(map, key);
    if (i < 0) return 0;
    const yd_node *s = map->items[i];
    const char *want = iout ? "an integer" : "a number";
    if (s->kind != YD_SEQ)
        return type_error(doc, map->key_lines[i], key, iout ? "a list of integers" :
                          "a list of numbers", s, err);
    if (s->n > cap)
        return pd_fail(err, "%s:%d: %s: at most %d values, got %d", doc->source,
                       map->key_lines[i], key, cap, s->n);
    for (int k = 0; k < s->n; k++) {
        long long v;
        double d;
        char name[160];
        snprintf(name, sizeof name, "%s[%d]", key, k);
        if (iout) {
            if (parse_ll(s->items[k], &v) || v < -2147483647LL - 1 || v > 2147483647LL)
                return type_error(doc, s->items[k]->line, name, want, s->items[k], err);
            iout[k] = (int)v;
        } else {
            if (parse_double(s->items[k], &d))
                return type_error(doc, s->items[k]->line, name, want, s->items[k], err);
            dout[k] = d;
        }
    }
    *n = s->n;
    return 0;
}

int yd_int_list(const yd_doc *doc, const yd_node *map, const char *key, int *out, int cap,
                int *n, pd_error *err) {
    return number_list(doc, map, key, out, NULL, cap, n, err);
}

int yd_double_list(const yd_doc *doc, const yd_node *map, const char *key, double *out, int cap,
                   int *n, pd_error *err) {
    return number_list(doc, map, key, NULL, out, cap, n, err);
}

int yd_read_text(const char *path, char **out, pd_error *err) {
    const size_t max = (size_t)1 << 20;
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    /* The buffer starts at the size of a regular file (a pipe: 64 KiB) and grows only while bytes
     * keep coming, so no input allocates more than twice what it holds, and never over 1 MiB. */
    struct stat st;
    size_t cap = 65536, n = 0;
    if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode))
        cap = (unsigned long long)st.st_size < max ? (size_t)st.st_size + 1 : max + 1;
    char *text = malloc(cap + 1);
    int bad = !text;
    while (!bad) {
        n += fread(text + n, 1, cap - n, f);
        if (n < cap || cap > max) break;                /* end of file, or past the cap */
        size_t nc = 2 * cap < max + 1 ? 2 * cap : max + 1;
        char *t = realloc(text, nc + 1);
        if (!t) bad = 1; else text = t, cap = nc;
    }
    int rerr = !bad && ferror(f);
    fclose(f);
    if (bad || rerr || n > max) {
        free(text);
        return pd_fail(err, "%s: %s", path, bad ? "out of memory" : rerr ? "read error" :
                       "larger than 1 MiB");
    }
    text[n] = 0;
    if (strlen(text) != n) {
        free(text);
        return pd_fail(err, "%s: contains a NUL byte (not a YAML text file)", path);
    }
    *out = text;
    return 0;
}
