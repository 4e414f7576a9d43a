/* fuzz_common.h — what every libFuzzer harness of tests/fuzz/ shares (docs/testing.md
 * "Fuzzing"). pixdiff's readers take a path, as the CLI hands them one, so each input is written
 * to a per-process file on /dev/shm (memory, not disk; $PD_FUZZ_DIR overrides) and the reader
 * opens it. A harness only checks what the sanitizers and libFuzzer's limits cannot: that a
 * failing call left a message. Memory and time are bounded by libFuzzer's -rss_limit_mb,
 * -malloc_limit_mb and -timeout (set in tests/fuzz/run.sh). */
#ifndef PD_FUZZ_COMMON_H
#define PD_FUZZ_COMMON_H
#include "pixdiff.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[512];

/* libFuzzer ends a run with exit(): the input file goes then, so /dev/shm does not fill up with
 * one file per fuzzing process. */
static inline void fuzz_remove_file(void) { remove(fuzz_path); }

/* The path of a file holding data[0..size), named with the given extension. */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *ext) {
    const char *dir = getenv("PD_FUZZ_DIR");
    if (!fuzz_path[0]) atexit(fuzz_remove_file);
    snprintf(fuzz_path, sizeof fuzz_path, "%s/pdfuzz.%ld%s", dir && dir[0] ? dir : "/dev/shm",
             (long)getpid(), ext);
    const char *path = fuzz_path;
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) abort();
    return path;
}

/* A failed call must say why. */
static inline void fuzz_check_error(int rc, const pd_error *e) {
    if (rc && !e->msg[0]) abort();
}
#endif
