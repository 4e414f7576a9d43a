/* test_npy — .npy float32 arrays: round trips at rank 1 and 4 (bit-exact, numpy's v1.0 header
 * layout with 64-byte alignment), a hand-built v2.0 file, and malformed inputs (other dtypes,
 * Fortran order, bad magic, truncated header or data, trailing bytes, bad ranks), each a clean
 * error naming the file. Writes are atomic: a failed write leaves no temporary file. */
#include "pixdiff.h"
#include "testutil.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP "test_npy.tmp.npy"

/* A .npy with the given version, header dict (padded to 64 with spaces + '\n'), n data bytes. */
static void write_npy(int major, const char *dict, const void *data, size_t n, long hlen_delta) {
    FILE *f = fopen(TMP, "wb");
    size_t pre = major == 1 ? 10 : 12, len = strlen(dict);
    size_t hlen = (pre + len + 1 + 63) / 64 * 64 - pre;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f), fputc(0, f);
    size_t stored = hlen + hlen_delta;
    for (size_t i = 0; i < pre - 8; i++) fputc((int)(stored >> (8 * i)) & 0xff, f);
    fputs(dict, f);
    for (size_t i = len; i + 1 < hlen; i++) fputc(' ', f);
    fputc('\n', f);
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void expect_fail(const char *what, const char *needle) {
    float *x = (float *)1;
    int shape[4], nd;
    pd_error e = {""};
    int rc = pd_npy_read(TMP, &x, shape, &nd, &e);
    tu_check(rc == -1 && x == NULL && strstr(e.msg, needle) && !strncmp(e.msg, TMP, strlen(TMP)),
             "%-26s -> %s", what, e.msg);
    if (!rc) free(x);
}

static int tmp_files(void) {
    DIR *d = opendir(".");
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) n += strstr(de->d_name, "test_npy") && strstr(de->d_name, ".tmp.") &&
                                 strcmp(de->d_name, TMP);
    closedir(d);
    return n;
}

int main(void) {
    pd_error e = {""};
    float src[120], *x = NULL;
    tu_fill(src, 120, 7, 3.0f);
    int shp4[4] = {2, 3, 4, 5}, shape[4] = {0}, nd = 0;

    int rc = pd_npy_write(TMP, src, shp4, 4, &e);
    tu_check(rc == 0, "write [2,3,4,5] (%s)", rc ? e.msg : "");
    FILE *f = fopen(TMP, "rb");
    unsigned char head[128] = {0};
    size_t got = fread(head, 1, 128, f);
    fclose(f);
    int hlen = head[8] | head[9] << 8;
    tu_check(got == 128 && !memcmp(head, "\x93NUMPY\x01\x00", 8) && (10 + hlen) % 64 == 0 &&
             head[10 + hlen - 1] == '\n' &&
             strstr((char *)head + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4, 5), }"),
             "v1.0 header as numpy writes it, 64-byte aligned (header %d bytes)", hlen);
    rc = pd_npy_read(TMP, &x, shape, &nd, &e);
    tu_check(rc == 0 && nd == 4 && !memcmp(shape, shp4, sizeof shp4) && !memcmp(x, src, sizeof src),
             "read back [2,3,4,5] bit-exact (%s)", rc ? e.msg : "");
    free(x);

    int shp1[1] = {7};
    rc = pd_npy_write(TMP, src, shp1, 1, &e);
    rc |= pd_npy_read(TMP, &x, shape, &nd, &e);
    tu_check(rc == 0 && nd == 1 && shape[0] == 7 && !memcmp(x, src, 7 * 4), "rank 1 (7,) round trip");
    free(x);
    int shp0[2] = {0, 3};
    rc = pd_npy_write(TMP, src, shp0, 2, &e);
    rc |= pd_npy_read(TMP, &x, shape, &nd, &e);
    tu_check(rc == 0 && nd == 2 && shape[0] == 0 && shape[1] == 3, "empty (0, 3) round trip");
    free(x);

    /* numpy >= 1.9 writes version 2.0 when the header exceeds 65535 bytes; read one by hand. */
    write_npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", src, 24, 0);
    rc = pd_npy_read(TMP, &x, shape, &nd, &e);
    tu_check(rc == 0 && nd == 2 && shape[0] == 3 && shape[1] == 2 && !memcmp(x, src, 24),
             "hand-built v2.0 file (%s)", rc ? e.msg : "");
    free(x);
    write_npy(1, "{'shape':(6,),'fortran_order':False,'descr':'<f4'}", src, 24, 0);
    rc = pd_npy_read(TMP, &x, shape, &nd, &e);
    tu_check(rc == 0 && nd == 1 && shape[0] == 6, "keys in another order, no spaces (%s)",
             rc ? e.msg : "");
    free(x);

    double d8[6] = {0};
    write_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", d8, 48, 0);
    expect_fail("float64", TMP ": dtype '<f8' not supported, need float32 ('<f4')");
    write_npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", src, 24, 0);
    expect_fail("big-endian float32", "dtype '>f4' not supported");
    write_npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", src, 24, 0);
    expect_fail("structured dtype", "not a simple type");
    write_npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", src, 24, 0);
    expect_fail("Fortran order", "fortran_order");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", src, 4, 0);
    expect_fail("rank 0", "rank 0");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2), }", src, 8, 0);
    expect_fail("rank 5", "rank > 4");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", src, 20, 0);
    expect_fail("truncated data", "truncated");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", src, 28, 0);
    expect_fail("trailing bytes", "trailing");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", src, 0, 4000);
    expect_fail("header longer than file", "truncated .npy header");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", src, 24, 0);
    expect_fail("bad shape", "malformed shape");
    write_npy(1, "{'descr': '<f4', 'shape': (2, 3), }", src, 24, 0);
    expect_fail("missing key", "lacks");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", src, 24, 0);
    expect_fail("unknown key", "unexpected key 'x'");
    write_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)", src, 24, 0);
    expect_fail("unterminated dict", "malformed");
    write_npy(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", src, 24, 0);
    expect_fail("version 4.0", "version 4.0 not supported");
    f = fopen(TMP, "wb");
    fputs("PK\x03\x04 this is an npz", f);
    fclose(f);
    expect_fail("bad magic", "bad magic");
    f = fopen(TMP, "wb");
    fwrite("\x93NUMPY\x01\x00\x76", 1, 9, f);
    fclose(f);
    expect_fail("truncated preamble", "truncated .npy header");
    fclose(fopen(TMP, "wb"));
    expect_fail("empty file", "bad magic");
    remove(TMP);
    expect_fail("missing file", "No such file or directory");

    int shp5[5] = {1, 1, 1, 1, 1};
    tu_check(pd_npy_write(TMP, src, shp5, 5, &e) == -1 && strstr(e.msg, "rank 5"), "write rank 5 fails");
    mkdir("test_npy.dir", 0755);
    rc = pd_npy_write("test_npy.dir", src, shp1, 1, &e);
    tu_check(rc == -1 && tmp_files() == 0, "write over a directory fails, no temporary file left (%s)",
             e.msg);
    rmdir("test_npy.dir");
    tu_check(pd_npy_write("no/such/dir/a.npy", src, shp1, 1, &e) == -1 && tmp_files() == 0,
             "write into a missing directory fails (%s)", e.msg);
    return tu_finish();
}
