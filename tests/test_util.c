/* test_util — core/util.c: sha256 known answers (FIPS 180-2 "abc", the empty string, the
 * one-million-'a' message, read in one chunk, and three million 'a's, read in three 1 MiB chunks,
 * checked against Python's hashlib), aligned zeroed allocation, atomic
 * writes (commit replaces the target, abort keeps the old file and removes the temporary one),
 * and a monotonic clock. */
#include "core/util.h"
#include "testutil.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_file(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

static int read_is(const char *path, const char *want) {
    char buf[64] = "";
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return !strcmp(buf, want);
}

int main(void) {
    pd_error e = {""};
    char hex[65];
    const char *path = "test_util.tmp.bin";
    write_file(path, "abc", 3);
    int rc = core_sha256_file(path, hex, &e);
    tu_check(rc == 0 && !strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
             "sha256(\"abc\") = %.16s...", hex);
    write_file(path, "", 0);
    rc = core_sha256_file(path, hex, &e);
    tu_check(rc == 0 && !strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
             "sha256(\"\") = %.16s...", hex);
    char *a = malloc(3000000);
    memset(a, 'a', 3000000);
    write_file(path, a, 1000000);
    rc = core_sha256_file(path, hex, &e);
    tu_check(rc == 0 && !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
             "sha256(10^6 x 'a') = %.16s...", hex);
    /* Larger than the 1 MiB read buffer: three chunks (value from Python's hashlib). */
    write_file(path, a, 3000000);
    free(a);
    rc = core_sha256_file(path, hex, &e);
    tu_check(rc == 0 && !strcmp(hex, "2a152c894398719c0570f83fac34ac03a0f6e8e474b995c2403aa5434f7b9dd4"),
             "sha256(3 x 10^6 x 'a'), read in 1 MiB chunks = %.16s...", hex);
    tu_check(core_sha256_file("no/such/file", hex, &e) == -1 && hex[0] == '\0' &&
             !strcmp(e.msg, "no/such/file: No such file or directory"), "sha256 of a missing file");

    int ok = 1;
    size_t sizes[5] = {0, 1, 63, 64, 100000};
    for (int i = 0; i < 5; i++) {
        unsigned char *p = core_alloc(sizes[i]);
        ok &= p != NULL && ((uintptr_t)p & 63) == 0;
        for (size_t k = 0; ok && k < sizes[i]; k++) ok &= p[k] == 0;
        core_free(p);
    }
    tu_check(ok, "core_alloc: 64-byte aligned and zeroed (0, 1, 63, 64, 100000 bytes)");
    tu_check(core_alloc(SIZE_MAX - 10) == NULL, "core_alloc of SIZE_MAX - 10 fails with NULL");

    core_atomic_file af;
    write_file(path, "old", 3);
    rc = core_atomic_open(&af, path, &e);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    tu_check(rc == 0 && !strcmp(af.tmp, tmp) && access(tmp, F_OK) == 0 && read_is(path, "old"),
             "atomic open: writes to %s, target untouched", af.tmp);
    fputs("new", af.f);
    rc = core_atomic_commit(&af, &e);
    tu_check(rc == 0 && read_is(path, "new") && access(tmp, F_OK) != 0, "commit renames over target");
    rc = core_atomic_open(&af, path, &e);
    fputs("half-writ", af.f);
    core_atomic_abort(&af);
    tu_check(rc == 0 && read_is(path, "new") && access(tmp, F_OK) != 0,
             "abort keeps the old file and removes the temporary one");
    remove(path);

    double t0 = core_now();
    usleep(20000);
    double dt = core_now() - t0;
    tu_check(dt >= 0.019 && dt < 2.0, "core_now is monotonic seconds (slept 20 ms, measured %.4f s)", dt);
    return tu_finish();
}
