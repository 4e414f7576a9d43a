/* test_idx — IDX readers on small files made here (gzip and plain; images and labels), corrupt
 * magic, zero dimensions, truncated data, a truncated gzip stream and trailing bytes as clean
 * errors, the Debian-package hint for a missing file under /usr/share/datasets, the real
 * Fashion-MNIST files when installed (60000x28x28 train, 10000 test, labels 0..9, 6000 per class),
 * and the PNG-folder reader (sorted names, non-PNG files skipped, mismatched sizes named). */
#include "core/idx.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define GZ "test_idx.tmp.gz"

static size_t make_idx(unsigned char *buf, unsigned magic, const int *dims, int nd, int payload) {
    size_t n = 0;
    for (int s = 24; s >= 0; s -= 8) buf[n++] = (unsigned char)(magic >> s);
    for (int i = 0; i < nd; i++)
        for (int s = 24; s >= 0; s -= 8) buf[n++] = (unsigned char)((unsigned)dims[i] >> s);
    for (int i = 0; i < payload; i++) buf[n++] = (unsigned char)(i * 7 + 3);
    return n;
}

static void write_gz(const char *path, const unsigned char *buf, size_t n) {
    gzFile g = gzopen(path, "wb");
    gzwrite(g, buf, (unsigned)n);
    gzclose(g);
}

static void expect_fail(const char *what, const char *path, const char *needle) {
    uint8_t *d = (uint8_t *)1;
    int dims[4], nd;
    pd_error e = {""};
    int rc = idx_read_u8(path, &d, dims, &nd, &e);
    tu_check(rc == -1 && d == NULL && strstr(e.msg, needle) != NULL, "%-28s -> %s", what, e.msg);
    if (!rc) free(d);
}

static void real_set(const char *img, const char *lab, int n) {
    uint8_t *x = NULL, *y = NULL;
    int dx[4], dy[4], nx, ny;
    pd_error e = {""};
    double t0 = clock() / (double)CLOCKS_PER_SEC;
    int rc = idx_read_u8(img, &x, dx, &nx, &e);
    rc |= idx_read_u8(lab, &y, dy, &ny, &e);
    tu_check(rc == 0 && nx == 3 && dx[0] == n && dx[1] == 28 && dx[2] == 28 && ny == 1 && dy[0] == n,
             "%s: %dx%dx%d, labels %d (%.2f s) %s", img, dx[0], dx[1], dx[2], dy[0],
             clock() / (double)CLOCKS_PER_SEC - t0, rc ? e.msg : "");
    if (!rc) {
        int count[10] = {0}, bad = 0, maxpix = 0;
        for (int i = 0; i < n; i++) bad += y[i] > 9, count[y[i] % 10]++;
        for (long i = 0; i < (long)n * 784; i++) maxpix = x[i] > maxpix ? x[i] : maxpix;
        int balanced = 1;
        for (int k = 0; k < 10; k++) balanced &= count[k] == n / 10;
        tu_check(bad == 0 && balanced && maxpix == 255, "labels in 0..9, %d per class, pixels up to %d",
                 count[0], maxpix);
    }
    free(x), free(y);
}

int main(void) {
    unsigned char buf[512];
    int dims[4] = {3, 4, 5}, got[4], nd = 0;
    uint8_t *d = NULL;
    pd_error e = {""};

    size_t n = make_idx(buf, 0x803, dims, 3, 60);
    write_gz(GZ, buf, n);
    int rc = idx_read_u8(GZ, &d, got, &nd, &e);
    tu_check(rc == 0 && nd == 3 && got[0] == 3 && got[1] == 4 && got[2] == 5 && !memcmp(d, buf + 16, 60),
             "gzip idx3-ubyte 3x4x5 read exactly (%s)", rc ? e.msg : "");
    free(d);
    n = make_idx(buf, 0x801, dims, 1, 3);
    write_gz(GZ, buf, n);
    rc = idx_read_u8(GZ, &d, got, &nd, &e);
    tu_check(rc == 0 && nd == 1 && got[0] == 3 && d[2] == 17, "gzip idx1-ubyte labels [3]");
    free(d);
    FILE *f = fopen("test_idx.tmp.raw", "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    rc = idx_read_u8("test_idx.tmp.raw", &d, got, &nd, &e);
    tu_check(rc == 0 && nd == 1 && got[0] == 3 && d[1] == 10, "uncompressed IDX also read");
    free(d);
    remove("test_idx.tmp.raw");

    n = make_idx(buf, 0x802, dims, 2, 12);
    write_gz(GZ, buf, n);
    expect_fail("magic 0x802", GZ, "bad IDX magic 0x00000802");
    n = make_idx(buf, 0x0d03, dims, 3, 60);
    write_gz(GZ, buf, n);
    expect_fail("magic 0xd03 (float IDX)", GZ, "bad IDX magic 0x00000d03");
    int zero[3] = {3, 0, 5};
    n = make_idx(buf, 0x803, zero, 3, 0);
    write_gz(GZ, buf, n);
    expect_fail("zero dimension", GZ, "implausible IDX dimension 1 = 0");
    int huge[3] = {0x7fffffff, 28, 28};
    n = make_idx(buf, 0x803, huge, 3, 0);
    write_gz(GZ, buf, n);
    expect_fail("2^31 x 28 x 28", GZ, "more than 2147483648 bytes");
    n = make_idx(buf, 0x803, dims, 3, 59);
    write_gz(GZ, buf, n);
    expect_fail("data one byte short", GZ, "truncated: 59 of 60 data bytes");
    n = make_idx(buf, 0x803, dims, 3, 61);
    write_gz(GZ, buf, n);
    expect_fail("one trailing byte", GZ, "trailing bytes");
    write_gz(GZ, buf, 6);
    expect_fail("truncated header", GZ, "truncated IDX header");
    /* A gzip stream cut in half: zlib reports the damage, we report it cleanly. */
    n = make_idx(buf, 0x803, dims, 3, 60);
    unsigned char z[512];
    uLongf zl = sizeof z;
    gzFile g = gzopen(GZ, "wb");
    gzwrite(g, buf, (unsigned)n);
    gzclose(g);
    f = fopen(GZ, "rb");
    zl = fread(z, 1, sizeof z, f);
    fclose(f);
    f = fopen(GZ, "wb");
    fwrite(z, 1, zl / 2, f);
    fclose(f);
    expect_fail("gzip stream cut in half", GZ, "(gzip stream ends early)");
    z[zl - 6] ^= 0xff;                                /* corrupt the CRC32 trailer */
    f = fopen(GZ, "wb");
    fwrite(z, 1, zl, f);
    fclose(f);
    expect_fail("gzip CRC corrupted", GZ, GZ ": corrupt gzip data (incorrect data check)");
    remove(GZ);
    expect_fail("missing file", GZ, GZ ": No such file or directory");
    expect_fail("missing dataset file", "/usr/share/datasets/fashion-mnist/nope-idx3-ubyte.gz",
                "No such file or directory (install the Debian package dataset-fashion-mnist)");

    const char *fm = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(fm, &st) == 0) {
        real_set("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
                 "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", 60000);
        real_set("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                 "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", 10000);
    } else {
        printf("%s not installed: real-data checks skipped\n", fm);
    }

    /* ---- PNG folder: names sorted, non-PNG skipped, sizes must match */
    const char *dir = "test_idx.tmp.pngdir";
    mkdir(dir, 0755);
    const char *names[3] = {"b.png", "a.png", "c.PNG"};
    float vals[3] = {0.5f, -0.5f, 1.0f}, img[2 * 3 * 4];
    char path[256];
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 24; k++) img[k] = vals[i];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        pd_png_write_grid(path, img, 1, 3, 2, 4, 1, NULL, &e);
    }
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    fclose(fopen(path, "w"));
    float *all = NULL;
    int cnt = 0, C = 0, H = 0, W = 0;
    rc = core_png_folder_read(dir, &all, &cnt, &C, &H, &W, &e);
    /* a.png (-0.5) < b.png (0.5) < c.PNG (1.0) in strcmp order ("a" < "b" < "c") */
    int ok = rc == 0 && cnt == 3 && C == 3 && H == 2 && W == 4;
    float want[3] = {-0.5f, 0.5f, 1.0f};
    for (int i = 0; ok && i < 3; i++)
        for (int k = 0; k < 24; k++) ok &= fabsf(all[i * 24 + k] - want[i]) < 0.01f;
    tu_check(ok, "PNG folder: 3 images 3x2x4 in name order, .txt skipped (%s)", rc ? e.msg : "");
    free(all);
    snprintf(path, sizeof path, "%s/d.png", dir);
    pd_png_write_grid(path, img, 1, 1, 2, 4, 1, NULL, &e);
    rc = core_png_folder_read(dir, &all, &cnt, &C, &H, &W, &e);
    tu_check(rc == -1 && all == NULL && strstr(e.msg, "d.png") && strstr(e.msg, "a.png"),
             "mismatched image named -> %s", e.msg);
    const char *rm[5] = {"a.png", "b.png", "c.PNG", "d.png", "notes.txt"};
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, rm[i]);
        remove(path);
    }
    rc = core_png_folder_read(dir, &all, &cnt, &C, &H, &W, &e);
    tu_check(rc == -1 && strstr(e.msg, "no .png files"), "empty folder -> %s", e.msg);
    rmdir(dir);
    rc = core_png_folder_read(dir, &all, &cnt, &C, &H, &W, &e);
    tu_check(rc == -1 && strstr(e.msg, "No such file"), "missing folder -> %s", e.msg);
    return tu_finish();
}
