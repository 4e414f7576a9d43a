/* json.c — pixdiff's strict JSON reader (RFC 8259) into the yd_node tree of core/yamldoc.h. Every
 * JSON text pixdiff reads comes through it (yd_load_json): safetensors headers, the metadata
 * values pixdiff.config, pixdiff.amed and pixdiff.amed_train, the sweep's results.jsonl lines.
 * YAML configs stay on libyaml (core/yamldoc.c).
 *
 * Contract: the tree is the one core/yamldoc.c's libyaml path builds from the same text
 * (tests/test_json.c checks it differentially): strings are scalars with quoted = 1 (so "7" stays
 * a string), numbers, true, false and null are unquoted scalars holding their text verbatim, and
 * every node and map key keeps its 1-based line ("\n", "\r\n" and a lone "\r" end a line). Strict:
 * one value with only whitespace around it; no comments, trailing commas, single quotes, bare
 * words or byte order mark; numbers by the RFC's grammar and at most JSON_MAX_NUMBER characters;
 * strings valid UTF-8 without raw control characters, escapes \" \\ \/ \b \f \n \r \t and \uXXXX
 * with surrogate pairs joined, lone surrogates and \u0000 refused (a C string cannot hold NUL).
 * Keys must be strings; duplicate keys fail as in core/yamldoc.c ("duplicate key 'k' (first at
 * line N)", the same key and lines). Every error is one line, "source:line: what is wrong".
 * YD_JSON_NONFINITE also admits the bare words nan, -nan, inf and -inf, which core/jsonbuf.h's
 * jb_num writes for a diverged loss.
 *
 * Bounds (docs/testing.md "Resource rule"): at most YD_MAX_NODES nodes and YD_MAX_DEPTH levels,
 * parsed without recursion (an explicit stack of open containers). The whole tree lives in one
 * arena: a first chunk of 8 bytes per byte of text, later ones (rarely needed) doubling, so
 * memory stays a small multiple of the text: a node is 48 bytes plus its slot, so "[0,0,...]"
 * costs 29 bytes of tree per byte of text, the worst case, and a safetensors header 5-7; the
 * chunks hold at most 8 bytes per byte of text plus twice the tree. A document costs two
 * allocations, the arena and the scratch stack of pending children, instead of libyaml's several
 * per token (docs/testing.md "Executions and findings"). yd_free releases it. */
#include "core/yamldoc.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_NUMBER 128

typedef struct yd_chunk {
    struct yd_chunk *next;    /* the chunk allocated before this one */
    size_t cap, used;
} yd_chunk;

typedef struct { const char *key; int key_line; yd_node *val; } jslot;   /* a pending child */
typedef struct {
    yd_node *node;
    size_t base;              /* its first child's slot */
    const char *key;          /* a map: the key of the value being parsed */
    int key_line;
} jframe;

typedef struct {
    const char *p, *end;
    int line;
    int flags;
    const char *src;
    pd_error *err;
    long nodes;
    yd_chunk *arena;          /* newest chunk first */
    size_t next_cap;
    jslot *slots;
    size_t n_slots, cap_slots;
    int depth;                /* open containers */
    jframe frames[YD_MAX_DEPTH + 1];
} jparser;

void yd_arena_free(void *arena) {
    for (yd_chunk *c = arena; c;) {
        yd_chunk *next = c->next;
        free(c);
        c = next;
    }
}

static int fail(jparser *c, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(jparser *c, int line, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return pd_fail(c->err, "%s:%d: %s", c->src, line, what);
}

/* What stands at q, for "expected X, got Y". */
static const char *describe(const jparser *c, const char *q, char *buf, size_t cap) {
    if (q >= c->end) return "end of text";
    unsigned char ch = (unsigned char)*q;
    if (!ch) return "a NUL byte";
    if (ch > 0x20 && ch < 0x7f) snprintf(buf, cap, "'%c'", ch);
    else snprintf(buf, cap, "byte 0x%02x", ch);
    return buf;
}

static int syntax(jparser *c, const char *want) {
    char b[32];
    return fail(c, c->line, "JSON syntax error: expected %s, got %s", want,
                describe(c, c->p, b, sizeof b));
}

static void *take(jparser *c, size_t bytes, size_t align) {
    yd_chunk *h = c->arena;
    size_t off = h ? (h->used + align - 1) & ~(align - 1) : 0;
    if (!h || off + bytes > h->cap) {
        size_t cap = bytes > c->next_cap ? bytes : c->next_cap;
        yd_chunk *n = malloc(sizeof *n + cap);
        if (!n) return NULL;
        n->next = h;
        n->cap = cap;
        n->used = 0;
        c->arena = h = n;
        c->next_cap = 2 * cap;
        off = 0;
    }
    h->used = off + bytes;
    return (char *)(h + 1) + off;
}

static yd_node *new_node(jparser *c, yd_kind kind) {
    if (++c->nodes > YD_MAX_NODES) {
        fail(c, c->line, "document too large (more than %ld nodes)", (long)YD_MAX_NODES);
        return NULL;
    }
    yd_node *n = take(c, sizeof *n, sizeof(void *));
    if (!n) { pd_fail(c->err, "%s: out of memory", c->src); return NULL; }
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = c->line;
    return n;
}

static void skip_ws(jparser *c) {
    const char *p = c->p, *e = c->end;
    for (; p < e; p++) {
        if (*p == '\n') c->line++;
        else if (*p == '\r') c->line += !(p + 1 < e && p[1] == '\n');
        else if (*p != ' ' && *p != '\t') break;
    }
    c->p = p;
}

/* Length of the valid UTF-8 sequence at s (< e), 0 if invalid: no overlong forms, no surrogates,
 * nothing past U+10FFFF (RFC 3629 section 4). */
static int utf8_len(const unsigned char *s, const unsigned char *e) {
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    int n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        if (b == 0xe0) lo = 0xa0;
        if (b == 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        if (b == 0xf0) lo = 0x90;
        if (b == 0xf4) hi = 0x8f;
    } else return 0;
    if (e - s < n || s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char h = s[i];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 :
                h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return 0;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 1;
}

static char *put_utf8(char *w, unsigned cp) {
    if (cp < 0x80) *w++ = (char)cp;
    else if (cp < 0x800) {
        *w++ = (char)(0xc0 | cp >> 6);
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *w++ = (char)(0xe0 | cp >> 12);
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *w++ = (char)(0xf0 | cp >> 18);
        *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *w++ = (char)(0x80 | (cp & 0x3f));
    }
    return w;
}

/* The string at c->p (its opening quote) decoded into the arena. Its end is found first (the
 * decoded text is never longer than the quoted one), then it is decoded and checked. */
static int parse_string(jparser *c, char **out) {
    const char *s = c->p + 1, *q = s;
    while (q < c->end && *q != '"') q += *q == '\\' ? 2 : 1;
    if (q >= c->end) return fail(c, c->line, "JSON syntax error: unterminated string");
    char *w = take(c, (size_t)(q - s) + 1, 1);
    if (!w) return pd_fail(c->err, "%s: out of memory", c->src);
    *out = w;
    while (s < q) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x80 && ch != '\\') {
            *w++ = *s++;
            continue;
        }
        if (ch >= 0x80) {
            int n = utf8_len((const unsigned char *)s, (const unsigned char *)q);
            if (!n) return fail(c, c->line, "invalid UTF-8 in a string (byte 0x%02x)", ch);
            memcpy(w, s, n);
            w += n, s += n;
            continue;
        }
        if (ch != '\\')
            return fail(c, c->line, "JSON syntax error: %s in a string (must be escaped)",
                        ch ? "control character" : "NUL byte");
        char e = s[1];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(from, e) : NULL;
        if (k) {
            *w++ = to[k - from];
            s += 2;
            continue;
        }
        unsigned u, lo;
        if (e != 'u') {
            char b[32];
            return fail(c, c->line, "JSON syntax error: invalid escape '\\' followed by %s",
                        describe(c, s + 1, b, sizeof b));
        }
        if (q - s < 6 || !hex4(s + 2, &u))
            return fail(c, c->line, "JSON syntax error: \\u needs four hex digits");
        s += 6;
        if (u >= 0xdc00 && u <= 0xdfff)
            return fail(c, c->line, "lone surrogate \\u%04X in a string (no high surrogate "
                        "before it)", u);
        if (u >= 0xd800 && u <= 0xdbff) {
            if (q - s < 6 || s[0] != '\\' || s[1] != 'u' || !hex4(s + 2, &lo) || lo < 0xdc00 ||
                lo > 0xdfff)
                return fail(c, c->line, "lone surrogate \\u%04X in a string (no low surrogate "
                            "after it)", u);
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            s += 6;
        }
        if (!u) return fail(c, c->line, "\\u0000 (NUL) in a string is not supported");
        w = put_utf8(w, u);
    }
    *w = '\0';
    c->p = q + 1;
    return 0;
}

static int is_word(char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           ch == '.' || ch == '+' || ch == '-' || ch == '_';
}

/* RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and nothing else. */
static int is_number(const char *s, const char *e) {
#define DIGITS(min) do { const char *d0 = s; while (s < e && *s >= '0' && *s <= '9') s++; \
                         if (s - d0 < (min)) return 0; } while (0)
    if (s < e && *s == '-') s++;
    if (s < e && *s == '0') s++;
    else DIGITS(1);
    if (s < e && *s == '.') { s++; DIGITS(1); }
    if (s < e && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < e && (*s == '+' || *s == '-')) s++;
        DIGITS(1);
    }
#undef DIGITS
    return s == e;
}

/* A number, true, false or null (and nan/inf with YD_JSON_NONFINITE): the word at c->p, kept
 * verbatim in an unquoted scalar. */
static yd_node *parse_word(jparser *c) {
    const char *s = c->p, *t = s;
    while (t < c->end && is_word(*t) && t - s <= JSON_MAX_NUMBER) t++;
    size_t len = (size_t)(t - s);
    if (len > JSON_MAX_NUMBER) {
        fail(c, c->line, "JSON syntax error: number or word longer than %d characters",
             JSON_MAX_NUMBER);
        return NULL;
    }
    static const char *const words[] = {"true", "false", "null", "nan", "-nan", "inf", "-inf"};
    int nwords = c->flags & YD_JSON_NONFINITE ? 7 : 3, ok = is_number(s, t);
    for (int i = 0; i < nwords && !ok; i++) ok = strlen(words[i]) == len && !memcmp(words[i], s, len);
    if (!ok) {
        if (!len) syntax(c, "a value");
        else if (*s == '-' || (*s >= '0' && *s <= '9'))
            fail(c, c->line, "JSON syntax error: invalid number '%.*s'", (int)len, s);
        else fail(c, c->line, "JSON syntax error: expected a value, got '%.*s'", (int)len, s);
        return NULL;
    }
    yd_node *n = new_node(c, YD_SCALAR);
    if (!n) return NULL;
    if (!(n->scalar = take(c, len + 1, 1))) {
        pd_fail(c->err, "%s: out of memory", c->src);
        return NULL;
    }
    memcpy(n->scalar, s, len);
    n->scalar[len] = '\0';
    c->p = t;
    return n;
}

static int push_slot(jparser *c, const char *key, int key_line, yd_node *v) {
    if (c->n_slots == c->cap_slots) {
        size_t cap = 2 * c->cap_slots;
        jslot *s = realloc(c->slots, cap * sizeof *s);
        if (!s) return pd_fail(c->err, "%s: out of memory", c->src);
        c->slots = s;
        c->cap_slots = cap;
    }
    c->slots[c->n_slots++] = (jslot){key, key_line, v};
    return 0;
}

static int slot_cmp(const void *a, const void *b) {
    const jslot *x = a, *y = b;
    int r = strcmp(x->key, y->key);
    return r ? r : (x->key_line > y->key_line) - (x->key_line < y->key_line);
}

/* core/yamldoc.c's rule and message: the smallest duplicated key (strcmp order), at its second
 * occurrence, naming its first. Small maps compare pairs; large ones sort their (now copied)
 * slots, O(n log n), so a header with 10^5 tensors stays cheap. */
static int check_duplicates(jparser *c, jslot *s, size_t n) {
    const jslot *first = NULL, *dup = NULL;
    if (n <= 16) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (!strcmp(s[i].key, s[j].key)) {
                    if (!first || strcmp(s[i].key, first->key) < 0) first = &s[i], dup = &s[j];
                    break;
                }
    } else {
        qsort(s, n, sizeof *s, slot_cmp);
        for (size_t i = 1; i < n && !dup; i++)
            if (!strcmp(s[i].key, s[i - 1].key)) first = &s[i - 1], dup = &s[i];
    }
    if (!dup) return 0;
    return fail(c, dup->key_line, "duplicate key '%s' (first at line %d)", dup->key,
                first->key_line);
}

/* The open container on top closes: its children move from the slot stack into the arena. */
static yd_node *close_container(jparser *c) {
    jframe *f = &c->frames[--c->depth];
    yd_node *m = f->node;
    size_t k = c->n_slots - f->base;
    jslot *s = c->slots + f->base;
    if (k) {
        m->items = take(c, k * sizeof *m->items, sizeof(void *));
        if (m->kind == YD_MAP) {
            m->keys = take(c, k * sizeof *m->keys, sizeof(void *));
            m->key_lines = take(c, k * sizeof *m->key_lines, sizeof(int));
        }
        if (!m->items || (m->kind == YD_MAP && (!m->keys || !m->key_lines))) {
            pd_fail(c->err, "%s: out of memory", c->src);
            return NULL;
        }
        for (size_t i = 0; i < k; i++) {
            m->items[i] = s[i].val;
            if (m->keys) m->keys[i] = (char *)s[i].key, m->key_lines[i] = s[i].key_line;
        }
        m->n = (int)k;
        if (m->kind == YD_MAP && check_duplicates(c, s, k)) return NULL;
    }
    c->n_slots = f->base;
    return m;
}

/* A map's next key and its colon, c->p at the key's quote (whitespace skipped). */
static int parse_key(jparser *c) {
    jframe *f = &c->frames[c->depth - 1];
    if (c->p >= c->end || *c->p != '"') return syntax(c, "a string key");
    f->key_line = c->line;
    char *k;
    if (parse_string(c, &k)) return -1;
    f->key = k;
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') {
        char b[32];
        return fail(c, c->line, "JSON syntax error: expected ':' after key '%.60s', got %s", k,
                    describe(c, c->p, b, sizeof b));
    }
    c->p++;
    return 0;
}

static yd_node *parse(jparser *c) {
    yd_node *v;
    for (;;) {
        /* A value starts here. */
        skip_ws(c);
        if (c->depth > YD_MAX_DEPTH) {
            fail(c, c->line, "nesting deeper than %d levels", YD_MAX_DEPTH);
            return NULL;
        }
        char ch = c->p < c->end ? *c->p : 0;
        if (ch == '{' || ch == '[') {
            if (!(v = new_node(c, ch == '{' ? YD_MAP : YD_SEQ))) return NULL;
            c->frames[c->depth++] = (jframe){v, c->n_slots, NULL, 0};
            c->p++;
            skip_ws(c);
            if (c->p < c->end && *c->p == (ch == '{' ? '}' : ']')) {
                c->p++;
                if (!(v = close_container(c))) return NULL;
            } else {
                if (ch == '{' && parse_key(c)) return NULL;
                continue;
            }
        } else if (ch == '"') {
            if (!(v = new_node(c, YD_SCALAR))) return NULL;
            v->quoted = 1;
            if (parse_string(c, &v->scalar)) return NULL;
        } else if (!(v = parse_word(c))) {
            return NULL;
        }
        /* v is complete: it is the document, or the next child of the open container, after
         * which come a comma or the container's end (which completes the container in turn). */
        for (;;) {
            if (!c->depth) {
                skip_ws(c);
                if (c->p < c->end) {
                    syntax(c, "the end of the text after the JSON value");
                    return NULL;
                }
                return v;
            }
            jframe *f = &c->frames[c->depth - 1];
            int is_map = f->node->kind == YD_MAP;
            if (push_slot(c, f->key, f->key_line, v)) return NULL;
            skip_ws(c);
            char close = is_map ? '}' : ']';
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                if (is_map) {
                    skip_ws(c);
                    if (parse_key(c)) return NULL;
                }
                break;
            }
            if (c->p >= c->end || *c->p != close) {
                syntax(c, is_map ? "',' or '}' after an object member" :
                       "',' or ']' after an array element");
                return NULL;
            }
            c->p++;
            if (!(v = close_container(c))) return NULL;
        }
    }
}

int yd_load_json_n(yd_doc *doc, const char *text, size_t len, const char *source_name, int flags,
                   pd_error *err) {
    memset(doc, 0, sizeof *doc);
    snprintf(doc->source, sizeof doc->source, "%s", source_name ? source_name : "<string>");
    jparser cs, *c = &cs;
    memset(c, 0, offsetof(jparser, frames));
    c->p = text;
    c->end = text + len;
    c->line = 1;
    c->flags = flags;
    c->src = doc->source;
    c->err = err;
    /* A safetensors header needs 5-7 bytes of tree per byte of text (every header in models/ and
     * tests/fuzz/corpus), so one chunk usually holds it; 64 MiB caps the first guess for a huge
     * text, and later chunks double. */
    size_t guess = len < ((size_t)8 << 20) ? 8 * len + 1024 : (size_t)64 << 20;
    c->next_cap = guess;
    c->cap_slots = len / 16 < 4096 ? len / 16 + 16 : 4096;
    c->slots = malloc(c->cap_slots * sizeof *c->slots);
    yd_node *root = c->slots ? parse(c) : NULL;
    if (!c->slots) pd_fail(err, "%s: out of memory", doc->source);
    free(c->slots);
    if (root) {
        doc->root = root;
        doc->arena = c->arena;
    } else {
        yd_arena_free(c->arena);
    }
    return root ? 0 : -1;
}

int yd_load_json(yd_doc *doc, const char *text, const char *source_name, pd_error *err) {
    return yd_load_json_n(doc, text, strlen(text), source_name, 0, err);
}
