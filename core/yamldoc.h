/* yamldoc.h — a YAML or JSON document as a small tree: YAML parsed with libyaml
 * (core/yamldoc.c), JSON with pixdiff's own strict reader (core/json.c) into the same tree.
 *
 * Every node remembers its line, so configuration errors can name "file:line: key". Lookups are
 * strict: yd_check_keys() rejects keys a caller does not know, and the typed getters fail with a
 * message naming the key when the value has the wrong type.
 */
#ifndef PD_YAMLDOC_H
#define PD_YAMLDOC_H

#include "pixdiff.h"

/* Bounds of every document (docs/testing.md "Resource rule"). */
#define YD_MAX_DEPTH 200
#define YD_MAX_NODES (1L << 21)

typedef enum { YD_SCALAR, YD_SEQ, YD_MAP } yd_kind;

typedef struct yd_node yd_node;
struct yd_node {
    yd_kind kind;
    int line;                 /* 1-based */
    char *scalar;             /* YD_SCALAR */
    int quoted;               /* scalar was quoted (so "7" is a string, not a number) */
    int n;                    /* YD_SEQ: items; YD_MAP: pairs */
    yd_node **items;          /* YD_SEQ items, YD_MAP values */
    char **keys;              /* YD_MAP keys */
    int *key_lines;           /* YD_MAP: 1-based line of each key (for error messages) */
};

typedef struct yd_doc {
    yd_node *root;
    char source[512];         /* file name, or "<string>" */
    void *arena;              /* JSON: the one arena holding the whole tree (core/json.c) */
} yd_doc;

int yd_load_file(yd_doc *doc, const char *path, pd_error *err);
/* Reads a configuration file as one NUL-terminated string (*text malloc'd): at most 1 MiB, no
 * NUL bytes inside. Used where the text itself is kept too (training checkpoints store it). */
int yd_read_text(const char *path, char **text, pd_error *err);
int yd_load_string(yd_doc *doc, const char *text, const char *source_name, pd_error *err);
/* JSON text (a safetensors header, a metadata value, a results.jsonl line), strict RFC 8259,
 * through core/json.c: the tree yd_load_string would build for it, in one arena. */
int yd_load_json(yd_doc *doc, const char *text, const char *source_name, pd_error *err);
/* The same on text[0..len) (a NUL byte inside is an error); flags: YD_JSON_NONFINITE also reads
 * the bare words nan, -nan, inf, -inf that jb_num (core/jsonbuf.h) writes for a diverged loss. */
#define YD_JSON_NONFINITE 1
int yd_load_json_n(yd_doc *doc, const char *text, size_t len, const char *source_name, int flags,
                   pd_error *err);
/* JSON through libyaml (anchors and aliases refused): the reader before core/json.c, kept only as
 * the reference of tests/test_json.c and fuzz_yamldoc's differential check. */
int yd_load_json_libyaml(yd_doc *doc, const char *text, const char *source_name, pd_error *err);
void yd_free(yd_doc *doc);                                 /* either kind of document */
void yd_arena_free(void *arena);                           /* core/json.c, for yd_free */

yd_node *yd_get(const yd_node *map, const char *key);      /* NULL if absent or not a map */
/* Fails naming the first key of map not in the NULL-terminated list `known`. */
int yd_check_keys(const yd_doc *doc, const yd_node *map, const char *const *known,
                  const char *where, pd_error *err);
/* Typed getters: absent key leaves *out unchanged and returns 0 (defaults stay);
 * present with a wrong type fails with "source:line: key: expected ...". */
int yd_int(const yd_doc *doc, const yd_node *map, const char *key, long long *out, pd_error *err);
int yd_double(const yd_doc *doc, const yd_node *map, const char *key, double *out, pd_error *err);
int yd_bool(const yd_doc *doc, const yd_node *map, const char *key, int *out, pd_error *err);
int yd_str(const yd_doc *doc, const yd_node *map, const char *key, char *out, size_t cap,
           pd_error *err);
/* Sequence of numbers -> ints/doubles (up to cap); *n set. */
int yd_int_list(const yd_doc *doc, const yd_node *map, const char *key, int *out, int cap,
                int *n, pd_error *err);
int yd_double_list(const yd_doc *doc, const yd_node *map, const char *key, double *out, int cap,
                   int *n, pd_error *err);

#endif
