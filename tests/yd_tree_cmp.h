/* yd_tree_cmp.h — whether two yd_node trees are the same (kinds, scalars, quoted flags, counts,
 * keys, and the line of every node and key), for the differential checks of core/json.c against
 * the libyaml path: tests/test_json.c and tests/fuzz/fuzz_yamldoc.c. On a difference, why holds
 * the path of the first differing node and what differs. */
#ifndef PD_YD_TREE_CMP_H
#define PD_YD_TREE_CMP_H
#include "core/yamldoc.h"
#include <stdio.h>
#include <string.h>

static int yd_same_tree(const yd_node *a, const yd_node *b, const char *path, char *why,
                        size_t cap) {
    char sub[300];
    if (a->kind != b->kind || a->line != b->line || a->n != b->n) {
        snprintf(why, cap, "%s: kind %d/%d line %d/%d n %d/%d", path, a->kind, b->kind, a->line,
                 b->line, a->n, b->n);
        return 0;
    }
    if (a->kind == YD_SCALAR) {
        if (!strcmp(a->scalar, b->scalar) && a->quoted == b->quoted) return 1;
        snprintf(why, cap, "%s: scalar '%.100s'%s / '%.100s'%s", path, a->scalar,
                 a->quoted ? " quoted" : "", b->scalar, b->quoted ? " quoted" : "");
        return 0;
    }
    for (int i = 0; i < a->n; i++) {
        if (a->kind == YD_MAP) {
            if (strcmp(a->keys[i], b->keys[i]) || a->key_lines[i] != b->key_lines[i]) {
                snprintf(why, cap, "%s: key %d '%.100s' line %d / '%.100s' line %d", path, i,
                         a->keys[i], a->key_lines[i], b->keys[i], b->key_lines[i]);
                return 0;
            }
            snprintf(sub, sizeof sub, "%.200s.%.60s", path, a->keys[i]);
        } else {
            snprintf(sub, sizeof sub, "%.200s[%d]", path, i);
        }
        if (!yd_same_tree(a->items[i], b->items[i], sub, why, cap)) return 0;
    }
    return 1;
}
#endif
