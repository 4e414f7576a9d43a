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

/* The path of a file holding data[0..size), named with the given extension. */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *ext) {
    static char path[512];
    const char *dir = getenv("PD_FUZZ_DIR");
    snprintf(path, sizeof path, "%s/pdfuzz.%ld%s", dir && dir[0] ? dir : "/dev/shm",
             (long)getpid(), ext);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f)) abort();
    return path;
}

/* A failed call must say why. */
static inline void fuzz_check_error(int rc, const pd_error *e) {
    if (rc && !e->msg[0]) abort();
}
#endif
