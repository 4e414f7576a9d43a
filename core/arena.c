/* arena.c — ar_build: measure a layout, allocate it once, lay it out (arena.h). */
#include "core/arena.h"
#include "core/util.h"

void *ar_build(void (*layout)(void *ctx, ar_arena *a), void *ctx, size_t *bytes) {
    ar_arena a = {NULL, 0};
    layout(ctx, &a);
    if (bytes) *bytes = a.off;
    a.base = core_alloc(a.off ? a.off : 64);
    if (!a.base) return NULL;
    a.off = 0;
    layout(ctx, &a);
    return a.base;
}
