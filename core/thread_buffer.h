/* thread_buffer.h — scratch that belongs to the calling thread, grown on demand and kept for reuse
 * (no allocation once the largest layer has run), as the layers' im2col slots, Winograd's
 * transforms and the bf16 weights use it. CORE_THREAD_BUFFER(name, T) defines, in the including
 * file:
 *   static _Thread_local T *name_buf;  static _Thread_local size_t name_cap;   (in elements)
 *   static T *name_grow(size_t n): at least n elements of the calling thread's buffer (its old
 *     contents are not kept when it grows); NULL when memory runs out, the old buffer and
 *     name_cap left as they were (callers may fall back to what it holds).
 * A thread that exits (an embedding program's own threads) frees its buffer through a pthread
 * key's destructor; the pool's workers, OpenMP's threads and the main thread keep theirs for the
 * process's life. */
#ifndef PD_THREAD_BUFFER_H
#define PD_THREAD_BUFFER_H

#include "core/util.h"
#include <pthread.h>

#define CORE_THREAD_BUFFER(name, T)                                                                \
    static _Thread_local T *name##_buf;                                                            \
    static _Thread_local size_t name##_cap;                                                        \
    static pthread_key_t name##_key;                                                               \
    static pthread_once_t name##_once = PTHREAD_ONCE_INIT;                                         \
    static void name##_key_init(void) { pthread_key_create(&name##_key, core_free); }              \
    static T *name##_grow(size_t n) {                                                              \
        if (n > name##_cap) {                                                                      \
            T *p_ = core_alloc(n * sizeof *p_);                                                    \
            if (!p_) return NULL;                                                                  \
            core_free(name##_buf);                                                                 \
            name##_buf = p_;                                                                       \
            name##_cap = n;                                                                        \
            pthread_once(&name##_once, name##_key_init);                                           \
            pthread_setspecific(name##_key, p_);                                                   \
        }                                                                                          \
        return name##_buf;                                                                         \
    }

#endif
