/* util.c — small shared helpers (util.h): 64-byte aligned zeroed allocation, atomic file writes,
 * mkdir -p, sha256 of a file and a monotonic clock. An atomic write goes to "<path>.tmp.<pid>" in the same
 * directory (so rename stays on one file system), is flushed and fsync'd, then renamed over the
 * target: readers see either the old file or the complete new one, never half of it. */
#include "core/util.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *core_alloc(size_t bytes) {
    /* Round up so a zero-byte request still returns a unique pointer that core_free accepts. */
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (sz < bytes) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, sz ? sz : 64)) return NULL;
    memset(p, 0, sz ? sz : 64);
    return p;
}

void core_free(void *p) { free(p); }

int pd_make_dirs(const char *dir, pd_error *err) {
    char p[1024];
    if (!dir || !*dir) return pd_fail(err, "empty directory name");
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return pd_fail(err, "%s: path too long", dir);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return pd_fail(err, "%s: cannot create directory: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return pd_fail(err, "%s: not a directory", dir);
    return 0;
}

int core_atomic_open(core_atomic_file *af, const char *path, pd_error *err) {
    memset(af, 0, sizeof *af);
    if (snprintf(af->path, sizeof af->path, "%s", path) >= (int)sizeof af->path)
        return pd_fail(err, "%s: path too long", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) return pd_fail(err, "%s: cannot create %s: %s", path, af->tmp, strerror(errno));
    return 0;
}

int core_atomic_commit(core_atomic_file *af, pd_error *err) {
    if (!af->f) return pd_fail(err, "%s: file is not open", af->path);
    int bad = fflush(af->f) != 0 || ferror(af->f);
    int e = errno;
    if (!bad && fsync(fileno(af->f)) != 0) bad = 1, e = errno;
    if (fclose(af->f) != 0 && !bad) bad = 1, e = errno;
    af->f = NULL;
    if (!bad && rename(af->tmp, af->path) != 0) bad = 1, e = errno;
    if (bad) {
        remove(af->tmp);
        return pd_fail(err, "%s: write failed: %s", af->path, strerror(e));
    }
    /* Make the rename itself durable; failure here (e.g. unusual file systems) is not fatal. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", af->path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0'; else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
    return 0;
}

void core_atomic_abort(core_atomic_file *af) {
    if (af->f) fclose(af->f);
    af->f = NULL;
    if (af->tmp[0]) remove(af->tmp);
}

int core_sha256_file(const char *path, char hex[65], pd_error *err) {
    hex[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    /* Chunks of 1 MiB, or one chunk the size of a smaller regular file (+1 to see its end):
     * a model of a few KB, loaded many times (the fuzzers), should not cost a 1 MiB buffer. */
    size_t cap = (size_t)1 << 20;
    struct stat st;
    if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode) && (unsigned long long)st.st_size < cap)
        cap = (size_t)st.st_size + 1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *buf = malloc(cap);
    int ok = ctx && buf && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    size_t got;
    while (ok && (got = fread(buf, 1, cap, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, got);
    int rerr = ferror(f);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (ok && !rerr) ok = EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
    free(buf);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    if (rerr) return pd_fail(err, "%s: read error", path);
    if (!ok) return pd_fail(err, "%s: sha256 failed", path);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

double core_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
