/* arena.h — carving one allocation into a run's buffers (DESIGN.md convention 1: one arena per
 * (batch, resolution), a pointer walk, no malloc in the loop). The one way every room does it.
 *
 * Contract: a layout is a function that makes a sequence of ar_take calls. ar_build walks it once
 * with base NULL to measure (every take returns NULL and only counts), allocates that many bytes
 * with core_alloc, then walks it again from that base to set the pointers: the same takes in the
 * same order give the same offsets. Every piece starts 64-byte aligned (cache lines, and the
 * widest vector loads). A layout that shares memory between buffers (songunet's slots) sets the
 * base and the starting offset itself and uses ar_take for what it does not share. */
#ifndef PD_ARENA_H
#define PD_ARENA_H

#include <stddef.h>

typedef struct ar_arena {
    char *base;              /* NULL: measuring */
    size_t off;              /* bytes taken so far (the arena's size after a measuring walk) */
} ar_arena;

/* The next piece of `bytes` bytes (rounded up to 64): base + off, or NULL while measuring. */
static inline void *ar_take(ar_arena *a, size_t bytes) {
    void *p = a->base ? a->base + a->off : NULL;
    a->off += (bytes + 63) & ~(size_t)63;
    return p;
}

/* Measures layout(ctx, .), allocates and lays out again. Returns the arena (free it with core_free)
 * and its size in *bytes (may be NULL), or NULL when the allocation fails (the layout's pointers
 * are then NULL from the measuring walk). */
void *ar_build(void (*layout)(void *ctx, ar_arena *a), void *ctx, size_t *bytes);

#endif
