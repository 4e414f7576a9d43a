/* test_safetensors — docs/algorithms.md §M5: F32 round trip with awkward metadata (quotes, backslashes,
 * newlines, control characters, UTF-8, a JSON object as a string); exhaustive F16 and BF16
 * decoding of all 65536 bit patterns against a double-precision reference built from the
 * IEEE definitions; a hand-built mixed file (tensor order != offset order, padded header,
 * zero-size tensor); and malformed files, each of which must fail with a specific message. */
#include "core/safetensors.h"
#include "testutil.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP "test_safetensors.tmp.st"

/* Writes u64 N (n_override if >= 0, else strlen(header)), the header and raw data bytes. */
static void write_raw(const char *path, const char *header, long long n_override,
                      const void *data, size_t nbytes) {
    FILE *f = fopen(path, "wb");
    unsigned long long n = n_override >= 0 ? (unsigned long long)n_override : strlen(header);
    for (int i = 0; i < 8; i++) fputc((int)(n >> (8 * i)) & 0xff, f);
    fwrite(header, 1, strlen(header), f);
    if (nbytes) fwrite(data, 1, nbytes, f);
    fclose(f);
}

/* Reference decoders straight from the bit layouts (sign, exponent, mantissa), in double. */
static double ref_half(unsigned h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 31 ? (m ? NAN : INFINITY) : e ? ldexp(1 + m / 1024.0, e - 15) : ldexp(m, -24);
    return s ? -v : v;
}
static double ref_bf16(unsigned h) {
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v = e == 255 ? (m ? NAN : INFINITY) : e ? ldexp(1 + m / 128.0, e - 127) : ldexp(m, -133);
    return s ? -v : v;
}

static int same_value(float got, double ref) {
    if (isnan(ref)) return isnan(got);
    return (double)got == ref && !signbit(got) == !signbit(ref);
}

/* Must fail, with a message containing `needle`, and leave the st_file empty. */
static void expect_fail(const char *what, const char *needle) {
    st_file f;
    pd_error e = {""};
    int rc = st_read(&f, TMP, &e);
    int ok = rc == -1 && strstr(e.msg, needle) && f.n_tensors == 0 && f.tensors == NULL;
    tu_check(ok, "malformed: %-34s -> %s", what, e.msg);
    if (!rc) st_free(&f);
}

static void malformed(const char *what, const char *header, size_t nbytes, const char *needle) {
    static unsigned char zeros[256];
    write_raw(TMP, header, -1, zeros, nbytes);
    expect_fail(what, needle);
}

static int no_tmp_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, prefix, strlen(prefix)) && strstr(de->d_name, ".tmp.")) n++;
    closedir(d);
    return n == 0;
}

int main(void) {
    pd_error e = {""};
    st_file f;

    /* ---- F32 round trip with metadata that needs escaping */
    float a[6], b[5], c[1] = {3.25f};
    tu_fill(a, 6, 1, 2.0f);
    tu_fill(b, 5, 2, 1e-3f);
    b[4] = -0.0f;
    const char *names[4] = {"model.enc.32x32_conv.weight", "b \"quoted\\name\"", "scalar", "empty"};
    int ndims[4] = {2, 1, 0, 2};
    const long long shapes[4][8] = {{2, 3}, {5}, {0}, {0, 4}};
    const float *data[4] = {a, b, c, NULL};
    const char *mk[3] = {"pixdiff.config", "note", "u"};
    const char *mv[3] = {"{\"arch\": \"songunet\", \"channel_mult\": [1, 2, 2]}",
                         "line1\nline2\t\"q\" back\\slash \x01 ctl \x7f del",
                         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"};
    int rc = st_write(TMP, 4, names, ndims, shapes, data, 3, mk, mv, &e);
    tu_check(rc == 0, "st_write 4 tensors + 3 metadata (%s)", rc ? e.msg : "");
    FILE *fp = fopen(TMP, "rb");
    unsigned char n8[8];
    tu_check(fread(n8, 1, 8, fp) == 8, "read header length");
    unsigned long long N = 0;
    for (int i = 7; i >= 0; i--) N = N << 8 | n8[i];
    char *hdr = calloc(N + 1, 1);
    tu_check(fread(hdr, 1, N, fp) == N, "read header");
    fclose(fp);
    tu_check((8 + N) % 8 == 0 && hdr[0] == '{', "header padded to 8-byte alignment (N = %llu)", N);
    free(hdr);
    rc = st_read(&f, TMP, &e);
    tu_check(rc == 0 && f.n_tensors == 4 && f.n_meta == 3, "st_read round trip (%s)", rc ? e.msg : "");
    if (!rc) {
        const st_tensor *t0 = st_find(&f, names[0]), *t1 = st_find(&f, names[1]),
                        *t2 = st_find(&f, "scalar"), *t3 = st_find(&f, "empty");
        tu_check(t0 && t1 && t2 && t3 && !st_find(&f, "nope"), "st_find by name (escaped name too)");
        if (t0 && t1 && t2 && t3) {
            tu_check(t0->ndim == 2 && t0->shape[0] == 2 && t0->shape[1] == 3 && t0->numel == 6 &&
                     !memcmp(t0->data, a, sizeof a), "tensor [2,3] bit-exact");
            tu_check(t1->numel == 5 && !memcmp(t1->data, b, sizeof b), "tensor [5] bit-exact (-0 kept)");
            tu_check(t2->ndim == 0 && t2->numel == 1 && t2->data[0] == 3.25f, "scalar shape []");
            tu_check(t3->ndim == 2 && t3->numel == 0 && t3->shape[1] == 4, "zero-size tensor [0,4]");
        }
        for (int i = 0; i < 3; i++) {
            const char *v = st_meta(&f, mk[i]);
            tu_check(v && !strcmp(v, mv[i]), "metadata '%s' round-trips exactly", mk[i]);
        }
        st_free(&f);
    }

    /* ---- exhaustive F16 and BF16: all 65536 patterns in one file, against ref_half/ref_bf16 */
    uint16_t *h = malloc(65536 * 2 * 2);
    for (unsigned i = 0; i < 65536; i++) h[i] = (uint16_t)i, h[65536 + i] = (uint16_t)i;
    write_raw(TMP, "{\"bf\":{\"dtype\":\"BF16\",\"shape\":[256,256],\"data_offsets\":[131072,262144]},"
              "\"hf\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}   ",
              -1, h, 65536 * 4);
    free(h);
    rc = st_read(&f, TMP, &e);
    tu_check(rc == 0, "F16 + BF16 file reads (%s)", rc ? e.msg : "");
    if (!rc) {
        const st_tensor *hf = st_find(&f, "hf"), *bf = st_find(&f, "bf");
        int bad_h = 0, bad_b = 0, first_h = -1;
        for (unsigned i = 0; i < 65536; i++) {
            if (!same_value(hf->data[i], ref_half(i)) && !bad_h++) first_h = (int)i;
            if (!same_value(bf->data[i], ref_bf16(i))) bad_b++;
        }
        tu_check(bad_h == 0, "F16 all 65536 patterns exact (incl. subnormals 2^-24, inf, -0, NaN): "
                 "%d wrong (first 0x%04x)", bad_h, first_h);
        tu_check(hf->data[1] == 0x1p-24f && hf->data[0x3ff] == 1023 * 0x1p-24f &&
                 hf->data[0x7bff] == 65504.0f && isinf(hf->data[0x7c00]) && hf->data[0xc000] == -2.0f,
                 "F16 spot values: 2^-24, largest subnormal, 65504, inf, -2");
        tu_check(bad_b == 0 && bf->shape[0] == 256, "BF16 all 65536 patterns exact: %d wrong", bad_b);
        st_free(&f);
    }

    /* ---- mixed dtypes, header order != offset order, trailing-space padding, metadata */
    unsigned char buf[32];
    float fv[3] = {1.5f, -2.0f, 1e30f};
    uint16_t hv[2] = {0x3c00, 0xfc00}, bv[2] = {0x3f80, 0x0001};   /* 1, -inf | 1, 2^-133 */
    memcpy(buf, hv, 4), memcpy(buf + 4, fv, 12), memcpy(buf + 16, bv, 4);
    write_raw(TMP, "{\"z\":{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[16,20]},"
              "\"__metadata__\":{\"format\":\"pt\"},"
              "\"y\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]},"
              "\"e\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[4,4]},"
              "\"x\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}        ", -1, buf, 20);
    rc = st_read(&f, TMP, &e);
    tu_check(rc == 0 && f.n_tensors == 4, "mixed F16/F32/BF16 file (%s)", rc ? e.msg : "");
    if (!rc) {
        const st_tensor *x = st_find(&f, "x"), *y = st_find(&f, "y"), *z = st_find(&f, "z");
        tu_check(x->data[0] == 1.0f && isinf(x->data[1]) && x->data[1] < 0, "F16 [1, -inf]");
        tu_check(y->data[0] == 1.5f && y->data[1] == -2.0f && y->data[2] == 1e30f, "F32 values");
        tu_check(z->data[0] == 1.0f && z->data[1] == 0x1p-133f && z->ndim == 2, "BF16 [1, 2^-133]");
        tu_check(!strcmp(f.tensors[0].name, "z") && !strcmp(st_meta(&f, "format"), "pt") &&
                 !st_meta(&f, "nope"), "header order kept, metadata lookup");
        st_free(&f);
    }
    /* st_open reads no data; st_load gives each tensor exactly what st_read gives, in any order */
    rc = st_open(&f, TMP, &e);
    tu_check(rc == 0 && f.n_tensors == 4, "st_open of the mixed file (%s)", rc ? e.msg : "");
    if (!rc) {
        int nulls = 0, same = 1;
        for (int i = 0; i < f.n_tensors; i++) nulls += f.tensors[i].data == NULL;
        tu_check(nulls == 4, "st_open leaves every tensor's data NULL (%d of 4)", nulls);
        st_file g;
        pd_error e2;
        if (st_read(&g, TMP, &e2) == 0) {
            const char *order[4] = {"y", "z", "e", "x"};
            for (int k = 0; k < 4; k++) {
                const st_tensor *a = st_find(&f, order[k]), *b = st_find(&g, order[k]);
                float got[3] = {0};
                same = same && a && b && st_load(&f, a, got, &e) == 0 &&
                       (b->numel == 0 || !memcmp(got, b->data, b->numel * sizeof(float)));
            }
            st_free(&g);
        } else {
            same = 0;
        }
        tu_check(same, "st_load of F32/F16/BF16/empty tensors equals st_read's data");
        st_free(&f);
    }
    rc = st_open(&f, TMP, &e);
    if (!rc) {   /* the file shrinks after st_open: st_load fails with a message, not garbage */
        FILE *tr = fopen(TMP, "r+b");
        tu_check(tr && ftruncate(fileno(tr), 20) == 0, "truncate the opened file");
        if (tr) fclose(tr);
        float got[3];
        rc = st_load(&f, st_find(&f, "y"), got, &e);
        tu_check(rc != 0 && strstr(e.msg, "'y'") && strstr(e.msg, "truncated"),
                 "st_load of a file truncated after st_open fails naming the tensor (%s)", e.msg);
        st_free(&f);
    }

    /* ---- a header as Python's json.dumps writes it: spaces, \u escapes, a surrogate pair for
     * U+1F600, and an escaped backslash before "ud83d" that must stay literal text */
    write_raw(TMP, "{\"__metadata__\": {\"s\": \"\\ud83d\\ude00 \\u00e9 \\\\ud83d\"}, "
              "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", -1, fv, 4);
    rc = st_read(&f, TMP, &e);
    tu_check(rc == 0 && !strcmp(st_meta(&f, "s"), "\xf0\x9f\x98\x80 \xc3\xa9 \\ud83d") &&
             f.tensors[0].data[0] == 1.5f, "json.dumps-style header with surrogate pair (%s)",
             rc ? e.msg : "");
    if (!rc) st_free(&f);

    /* ---- malformed files: all must fail cleanly with a message naming the problem */
    const char *T8 = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
    char hb[512];
    fclose(fopen(TMP, "wb"));
    expect_fail("empty file", "too short");
    write_raw(TMP, "{\"a\":{", 100, NULL, 0);
    expect_fail("truncated header", "exceeds the file size");
    write_raw(TMP, "{}", 200LL * 1000 * 1000, NULL, 0);
    expect_fail("header length 200 MB", "100 MB");
    write_raw(TMP, "", 1LL << 62, NULL, 0);
    expect_fail("header length 2^62", "100 MB");
    malformed("not JSON", "hello world", 0, "not a JSON object");
    malformed("broken JSON", "{\"a\": {\"dtype\": ", 0, "JSON syntax error");
    malformed("JSON array", "[1, 2]", 0, "not a JSON object");
    malformed("empty header", "", 0, "not a JSON object");
    snprintf(hb, sizeof hb, "{\"a\":{%s}}", T8);
    malformed("data shorter than offsets", hb, 4, "outside the 4-byte data buffer");
    malformed("offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
              8, "outside");
    malformed("BEGIN > END", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
              "outside");
    malformed("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    malformed("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "hole");
    malformed("hole at start", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
              "hole");
    snprintf(hb, sizeof hb, "{\"a\":{%s}}", T8);
    malformed("unused bytes at end", hb, 12, "tensors cover 8");
    malformed("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
              "span 8 bytes");
    malformed("shape overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],"
              "\"data_offsets\":[0,8]}}", 8, "overflow");
    malformed("unknown dtype", "{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
              "tensor 'a': unknown dtype 'F7'");
    malformed("unsupported dtype", "{\"w\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
              8, "tensor 'w': dtype I64 not supported");
    snprintf(hb, sizeof hb, "{\"a\":{%s},\"a\":{%s}}", T8, T8);
    malformed("duplicate key", hb, 8, "duplicate key 'a'");
    snprintf(hb, sizeof hb, "{\"__metadata__\":{\"k\":5},\"a\":{%s}}", T8);
    malformed("metadata value not a string", hb, 8, "not a string");
    snprintf(hb, sizeof hb, "{\"__metadata__\":[1],\"a\":{%s}}", T8);
    malformed("metadata not an object", hb, 8, "__metadata__ is not a JSON object");
    malformed("negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
              8, "data_offsets must be");
    malformed("string dimension", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}",
              8, "shape[0]");
    malformed("missing field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "needs dtype");
    snprintf(hb, sizeof hb, "{\"a\":{%s,\"extra\":1}}", T8);
    malformed("extra field", hb, 8, "unknown key 'extra'");
    malformed("tensor entry not object", "{\"a\":[0,8]}", 8, "not a JSON object");
    malformed("9 dimensions", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],"
              "\"data_offsets\":[0,8]}}", 8, "9 dimensions");
    fp = fopen(TMP, "wb");
    fwrite("\x04\0\0\0\0\0\0\0{\0}  ", 1, 13, fp);
    fclose(fp);
    expect_fail("NUL in header", "NUL");
    snprintf(hb, sizeof hb, "{\"a\":{%s}}", T8);
    write_raw(TMP, hb, -1, "12345678", 8);
    fp = fopen(TMP, "r+b");   /* cut the last data byte: now the buffer is 7 bytes */
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fclose(fp);
    tu_check(truncate(TMP, sz - 1) == 0, "truncate file");
    expect_fail("truncated data", "outside the 7-byte data buffer");
    remove(TMP);
    tu_check(st_read(&f, "no_such_file.safetensors", &e) == -1 &&
             !strcmp(e.msg, "no_such_file.safetensors: No such file or directory"), "missing file");

    /* ---- writer errors: duplicate names, and a failed commit leaves no temporary file */
    const char *dup[2] = {"a", "a"};
    const long long sh1[2][8] = {{1}, {1}};
    const int nd1[2] = {1, 1};
    const float *d1[2] = {c, c};
    tu_check(st_write(TMP, 2, dup, nd1, sh1, d1, 0, NULL, NULL, &e) == -1 && strstr(e.msg, "duplicate"),
             "writer rejects duplicate names (%s)", e.msg);
    const char *bad_utf8 = "\xff\xfe";
    const char *k1[1] = {"k"};
    tu_check(st_write(TMP, 1, dup, nd1, sh1, d1, 1, k1, &bad_utf8, &e) == -1 &&
             strstr(e.msg, "UTF-8"), "writer rejects invalid UTF-8 metadata (%s)", e.msg);
    mkdir("test_safetensors.dir", 0755);
    rc = st_write("test_safetensors.dir", 1, dup, nd1, sh1, d1, 0, NULL, NULL, &e);
    struct stat stt;
    tu_check(rc == -1 && stat("test_safetensors.dir", &stt) == 0 && S_ISDIR(stt.st_mode) &&
             no_tmp_files(".", "test_safetensors.dir"),
             "write over a directory fails, leaves no temporary file (%s)", e.msg);
    rmdir("test_safetensors.dir");
    tu_check(st_write("no/such/dir/x.safetensors", 1, dup, nd1, sh1, d1, 0, NULL, NULL, &e) == -1,
             "write into a missing directory fails (%s)", e.msg);
    tu_check(no_tmp_files(".", TMP), "no temporary files left behind");
    return tu_finish();
}
