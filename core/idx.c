/* idx.c — training-data readers (idx.h). IDX (LeCun's MNIST format, also Fashion-MNIST): a
 * big-endian u32 magic 0x000008DD (0x08 = unsigned byte, DD = number of dimensions), DD big-endian
 * u32 sizes, then prod(sizes) bytes. Files are read through zlib's gzread, which also passes
 * plain files through. The header is validated and the payload must be exactly prod(sizes)
 * bytes, so truncated or padded files are errors; the payload buffer grows with the bytes that
 * really arrive, so a declared size is never allocated up front (docs/testing.md). The PNG-folder reader loads every *.png of a
 * directory in strcmp order of the names, all of one size, into one [n,C,H,W] float array. */
#include "core/idx.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_BYTES (1LL << 31)

/* "No such file or directory (install the Debian package dataset-NAME)" under
 * /usr/share/datasets/NAME/, plain strerror otherwise. */
static int open_error(const char *path, int e, pd_error *err) {
    static const char root[] = "/usr/share/datasets/";
    if (e == ENOENT && !strncmp(path, root, sizeof root - 1)) {
        const char *name = path + sizeof root - 1, *slash = strchr(name, '/');
        int len = slash ? (int)(slash - name) : (int)strlen(name);
        return pd_fail(err, "%s: %s (install the Debian package dataset-%.*s)", path, strerror(e),
                       len, name);
    }
    return pd_fail(err, "%s: %s", path, strerror(e));
}

/* Reads exactly n bytes; returns the count read (less at end of data) or -1 on a zlib error. */
static long long gz_read_all(gzFile gz, unsigned char *buf, long long n) {
    long long got = 0;
    while (got < n) {
        unsigned chunk = n - got > (1 << 30) ? (1u << 30) : (unsigned)(n - got);
        int r = gzread(gz, buf + got, chunk);
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

/* A short read: plain truncation, a gzip stream that ends early, or corrupt gzip data. */
static int gz_fail(gzFile gz, const char *path, const char *what, pd_error *err) {
    int zerr = Z_OK;
    const char *m = gzerror(gz, &zerr), *colon = m ? strstr(m, ": ") : NULL;
    if (colon) m = colon + 2;                    /* drop zlib's "<fd:N>: " prefix */
    if (zerr == Z_OK) return pd_fail(err, "%s: %s", path, what);
    if (zerr == Z_BUF_ERROR) return pd_fail(err, "%s: %s (gzip stream ends early)", path, what);
    return pd_fail(err, "%s: corrupt gzip data (%s)", path, m && m[0] ? m : "zlib error");
}

int idx_read_u8(const char *path, uint8_t **data, int dims[4], int *ndim, pd_error *err) {
    *data = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return open_error(path, errno, err);
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) { close(fd); return pd_fail(err, "%s: cannot open (out of memory)", path); }
    unsigned char hdr[4 + 4 * 4], extra;
    uint8_t *buf = NULL;
    int rc = -1;
    if (gz_read_all(gz, hdr, 4) != 4) { gz_fail(gz, path, "truncated IDX header", err); goto done; }
    unsigned magic = (unsigned)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
    if (magic != 0x00000803 && magic != 0x00000801) {
        pd_fail(err, "%s: bad IDX magic 0x%08x (expected 0x00000803 for idx3-ubyte images or "
                "0x00000801 for idx1-ubyte labels)", path, magic);
        goto done;
    }
    int nd = hdr[3];
    if (gz_read_all(gz, hdr + 4, 4 * nd) != 4 * nd) {
        gz_fail(gz, path, "truncated IDX header", err);
        goto done;
    }
    long long total = 1;
    for (int i = 0; i < nd; i++) {
        const unsigned char *p = hdr + 4 + 4 * i;
        long long d = (long long)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
        if (d < 1 || d > IDX_MAX_BYTES) {
            pd_fail(err, "%s: implausible IDX dimension %d = %lld", path, i, d);
            goto done;
        }
        dims[i] = (int)d;
        total *= d;                              /* <= 2^31 * 2^31: no overflow */
        if (total > IDX_MAX_BYTES) {
            pd_fail(err, "%s: IDX data of more than %lld bytes not supported", path, IDX_MAX_BYTES);
            goto done;
        }
    }
    /* The buffer grows as data arrives (at most twice what the file really holds), so a small
     * file that declares 2 GB fails at its real end, not after a 2 GB allocation. */
    long long got = 0, cap = 0;
    while (got < total) {
        long long want = cap ? 2 * cap : (1LL << 20);
        if (want > total) want = total;
        uint8_t *b = realloc(buf, want);
        if (!b) { pd_fail(err, "%s: out of memory (%lld bytes)", path, want); goto done; }
        buf = b, cap = want;
        long long r = gz_read_all(gz, buf + got, cap - got);
        if (r < 0) { got = -1; break; }
        got += r;
        if (got < cap) break;
    }
    if (got != total) {
        char what[96];
        snprintf(what, sizeof what, "truncated: %lld of %lld data bytes", got < 0 ? 0 : got, total);
        gz_fail(gz, path, what, err);
        goto done;
    }
    got = gz_read_all(gz, &extra, 1);            /* also checks the gzip CRC at the end */
    if (got != 0) {
        if (got < 0) gz_fail(gz, path, "read error", err);
        else pd_fail(err, "%s: trailing bytes after the %lld bytes of IDX data", path, total);
        goto done;
    }
    *ndim = nd;
    *data = buf;
    buf = NULL;
    rc = 0;
done:
    gzclose(gz);
    free(buf);
    return rc;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int core_png_folder_read(const char *dir, float **data, int *n, int *C, int *H, int *W,
                         pd_error *err) {
    *data = NULL;
    DIR *d = opendir(dir);
    if (!d) return pd_fail(err, "%s: %s", dir, strerror(errno));
    char **names = NULL;
    int count = 0, cap = 0, rc = -1;
    float *all = NULL, *img = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcasecmp(de->d_name + len - 4, ".png")) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) { pd_fail(err, "%s: out of memory", dir); goto done; }
            names = p;
        }
        if (!(names[count] = strdup(de->d_name))) { pd_fail(err, "%s: out of memory", dir); goto done; }
        count++;
    }
    if (!count) { pd_fail(err, "%s: no .png files", dir); goto done; }
    qsort(names, count, sizeof *names, name_cmp);
    size_t per = 0;
    int c0 = 0, h0 = 0, w0 = 0;
    for (int i = 0; i < count; i++) {
        char path[4096];
        int c, h, w;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (pd_png_read(path, &img, &c, &h, &w, err)) goto done;
        if (i == 0) {
            c0 = c, h0 = h, w0 = w;
            per = (size_t)c * h * w;
            if (!(all = malloc(per * count * sizeof *all))) {
                pd_fail(err, "%s: out of memory (%d images of %dx%dx%d)", dir, count, c, h, w);
                goto done;
            }
        } else if (c != c0 || h != h0 || w != w0) {
            pd_fail(err, "%s: %dx%dx%d (CxHxW), but %s/%s is %dx%dx%d; all images must match",
                    path, c, h, w, dir, names[0], c0, h0, w0);
            goto done;
        }
        memcpy(all + per * i, img, per * sizeof *all);
        free(img);
        img = NULL;
    }
    *data = all;
    all = NULL;
    *n = count, *C = c0, *H = h0, *W = w0;
    rc = 0;
done:
    closedir(d);
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
    free(all);
    free(img);
    return rc;
}
