/* names_match.h — lookup in a name table (DESIGN.md convention 6): case-insensitive, with '_'
 * and '-' equal, so YAML keys and CLI flags may use either. Returns the index or -1. Shared by
 * the schedule names (schedules/names.c) and the sampler names (samplers/names.c). */
#ifndef PD_NAMES_MATCH_H
#define PD_NAMES_MATCH_H

#include <ctype.h>

static inline int names_lookup(const char *const *table, int count, const char *name) {
    if (!name) return -1;
    for (int k = 0; k < count; k++) {
        const char *a = table[k], *b = name;
        while (*a && *b) {
            char ca = *a == '_' ? '-' : (char)tolower((unsigned char)*a);
            char cb = *b == '_' ? '-' : (char)tolower((unsigned char)*b);
            if (ca != cb) break;
            a++, b++;
        }
        if (!*a && !*b) return k;
    }
    return -1;
}

#endif
