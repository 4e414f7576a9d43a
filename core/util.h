/* util.h — small shared helpers: aligned allocation, atomic file writes, sha256, timing. */
#ifndef PD_UTIL_H
#define PD_UTIL_H

#include "pixdiff.h"
#include <stdio.h>

/* 64-byte aligned, zeroed; NULL on failure. Free with core_free. */
void *core_alloc(size_t bytes);
void core_free(void *p);

/* Atomic writes: open "<path>.tmp.<pid>", write, then core_atomic_commit fsyncs, closes and renames
 * over path; core_atomic_abort closes and removes the temporary file. */
typedef struct core_atomic_file { FILE *f; char tmp[1100]; char path[1024]; } core_atomic_file;
int core_atomic_open(core_atomic_file *af, const char *path, pd_error *err);
int core_atomic_commit(core_atomic_file *af, pd_error *err);
void core_atomic_abort(core_atomic_file *af);

/* Hex sha256 of a file (65 bytes incl. NUL) via OpenSSL's libcrypto. */
int core_sha256_file(const char *path, char hex[65], pd_error *err);

double core_now(void);          /* monotonic seconds */

#endif
