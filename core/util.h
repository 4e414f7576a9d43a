/* util.h — small shared helpers: aligned allocation, atomic file writes, sha256, timing. */
#ifndef PD_UTIL_H
#define PD_UTIL_H

#include "pixdiff.h"
#include <stdio.h>

/* 64-byte aligned, zeroed; NULL on failure. Free with pd_free. */
void *pd_alloc(size_t bytes);
void pd_free(void *p);

/* Atomic writes: open "<path>.tmp.<pid>", write, then pd_atomic_commit fsyncs, closes and renames
 * over path; pd_atomic_abort closes and removes the temporary file. */
typedef struct pd_atomic_file { FILE *f; char tmp[1100]; char path[1024]; } pd_atomic_file;
int pd_atomic_open(pd_atomic_file *af, const char *path, pd_error *err);
int pd_atomic_commit(pd_atomic_file *af, pd_error *err);
void pd_atomic_abort(pd_atomic_file *af);

/* Hex sha256 of a file (65 bytes incl. NUL) via OpenSSL's libcrypto. */
int pd_sha256_file(const char *path, char hex[65], pd_error *err);

double pd_now(void);          /* monotonic seconds */

#endif
