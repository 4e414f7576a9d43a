/* test_pickle.c — the restricted pickle reader (core/pickle.h), torch containers
 * (core/torchfile.h) and zip reader (core/zip.h).
 *
 * Values: pickles written by CPython 3.11's pickle.dumps at protocols 2 and 4 (bytes below)
 * read back to the same tree. Hostile input: a non-whitelisted global (GLOBAL and STACK_GLOBAL),
 * huge claimed lengths, a recursion bomb (nested tuples, an open-MARK flood), memo abuse, a
 * tensor reaching past its storage, a whitelisted name called the wrong way, and every
 * truncation and many single-byte corruptions of a real EDM snapshot fixture — each must fail
 * with a message (and never crash or succeed on a truncated file).
 */
#include "core/pickle.h"
#include "core/torchfile.h"
#include "core/zip.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* {'a': [1, 2.5, 'x', None, True], 'b': (1 << 40, -3, b'\x00\xff'), 'c': 'é'} */
static const char p2[] =
    "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x28\x4b\x01\x47\x40"
    "\x04\x00\x00\x00\x00\x00\x00\x58\x01\x00\x00\x00\x78\x71\x03\x4e\x88\x65\x58\x01\x00\x00"
    "\x00\x62\x71\x04\x8a\x06\x00\x00\x00\x00\x00\x01\x4a\xfd\xff\xff\xff\x63\x5f\x63\x6f\x64"
    "\x65\x63\x73\x0a\x65\x6e\x63\x6f\x64\x65\x0a\x71\x05\x58\x03\x00\x00\x00\x00\xc3\xbf\x71"
    "\x06\x58\x06\x00\x00\x00\x6c\x61\x74\x69\x6e\x31\x71\x07\x86\x71\x08\x52\x71\x09\x87\x71"
    "\x0a\x58\x01\x00\x00\x00\x63\x71\x0b\x58\x02\x00\x00\x00\xc3\xa9\x71\x0c\x75\x2e";
static const char p4[] =
    "\x80\x04\x95\x3f\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b"
    "\x01\x47\x40\x04\x00\x00\x00\x00\x00\x00\x8c\x01\x78\x94\x4e\x88\x65\x8c\x01\x62\x94\x8a"
    "\x06\x00\x00\x00\x00\x00\x01\x4a\xfd\xff\xff\xff\x43\x02\x00\xff\x94\x87\x94\x8c\x01\x63"
    "\x94\x8c\x02\xc3\xa9\x94\x75\x2e";

static void check_values(const char *what, const char *buf, size_t len) {
    pk_ctx *ctx = pk_ctx_new(what);
    pk_value *v;
    size_t used;
    pd_error err = {{0}};
    int rc = pk_parse(ctx, (const uint8_t *)buf, len, 0, NULL, NULL, &v, &used, &err);
    tu_check(rc == 0 && used == len, "%s: parses (%s)", what, rc ? err.msg : "");
    if (rc) {
        pk_ctx_free(ctx);
        return;
    }
    pk_value *a = pk_dict_get(v, "a"), *b = pk_dict_get(v, "b"), *c = pk_dict_get(v, "c");
    tu_check(a && a->kind == PK_LIST && a->n == 5 && a->items[0]->i == 1 &&
                 a->items[1]->f == 2.5 && pk_is_str(a->items[2], "x") &&
                 a->items[3]->kind == PK_NONE && a->items[4]->kind == PK_BOOL && a->items[4]->i,
             "%s: list [1, 2.5, 'x', None, True]", what);
    tu_check(b && b->kind == PK_TUPLE && b->n == 3 && b->items[0]->i == 1LL << 40 &&
                 b->items[1]->i == -3 && b->items[2]->kind == PK_BYTES && b->items[2]->n == 2 &&
                 b->items[2]->bytes[0] == 0 && b->items[2]->bytes[1] == 0xff,
             "%s: tuple (1 << 40, -3, b'\\x00\\xff')", what);
    tu_check(pk_is_str(c, "\xc3\xa9"), "%s: str 'é' (UTF-8)", what);
    pk_ctx_free(ctx);
}

/* A growable byte buffer for hand-written pickles. */
typedef struct bb { uint8_t *b; size_t n, cap; } bb;
static void put(bb *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 64;
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void op(bb *o, int c) { uint8_t x = (uint8_t)c; put(o, &x, 1); }
static void str(bb *o, const char *s) { /* SHORT_BINUNICODE */
    op(o, 0x8c);
    op(o, (int)strlen(s));
    put(o, s, strlen(s));
}
static void glob(bb *o, const char *mod, const char *name) {
    op(o, 'c');
    put(o, mod, strlen(mod));
    op(o, '\n');
    put(o, name, strlen(name));
    op(o, '\n');
}

/* Parses o and checks it fails with a message containing `needle`. */
static void expect_fail(const char *what, const bb *o, const char *needle) {
    pk_ctx *ctx = pk_ctx_new("hostile.pkl");
    pk_value *v;
    size_t used;
    pd_error err = {{0}};
    int rc = pk_parse(ctx, o->b, o->n, 0, NULL, NULL, &v, &used, &err);
    tu_check(rc != 0 && strstr(err.msg, needle), "%s: fails: %s", what, rc ? err.msg : "(parsed!)");
    pk_ctx_free(ctx);
}

static void hostile(void) {
    bb o = {0};
    /* os.system('echo pwned') the classic way, at protocol 2 ... */
    op(&o, 0x80); op(&o, 2);
    glob(&o, "os", "system");
    str(&o, "echo pwned");
    op(&o, 0x85); op(&o, 'R'); op(&o, '.');
    expect_fail("GLOBAL os.system", &o, "global 'os.system' is not allowed");
    /* ... and through STACK_GLOBAL (protocol 4) */
    o.n = 0;
    op(&o, 0x80); op(&o, 4);
    str(&o, "builtins"); str(&o, "eval"); op(&o, 0x93);
    str(&o, "1"); op(&o, 0x85); op(&o, 'R'); op(&o, '.');
    expect_fail("STACK_GLOBAL builtins.eval", &o, "global 'builtins.eval' is not allowed");
    /* A whitelisted class used as a callable. */
    o.n = 0;
    op(&o, 0x80); op(&o, 2);
    glob(&o, "torch", "FloatStorage"); op(&o, ')'); op(&o, 'R'); op(&o, '.');
    expect_fail("calling torch.FloatStorage", &o, "cannot be called");
    /* Huge claimed sizes. */
    o.n = 0;
    op(&o, 0x80); op(&o, 4); op(&o, 0x8e);
    uint64_t huge = 1ULL << 60;
    put(&o, &huge, 8);
    put(&o, "abc", 3);
    expect_fail("BINBYTES8 of 2^60 bytes", &o, "truncated");
    o.n = 0;
    op(&o, 0x80); op(&o, 4); op(&o, 0x95);
    put(&o, &huge, 8);
    op(&o, 'N'); op(&o, '.');
    expect_fail("FRAME of 2^60 bytes", &o, "frame longer than the file");
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, 0x8b);
    uint32_t big = 0x7fffffff;
    put(&o, &big, 4);
    expect_fail("LONG4 of 2 GB", &o, "integer of");
    /* Recursion bombs: 100000 nested 1-tuples; 100000 open MARKs. */
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, ')');
    for (int i = 0; i < 100000; i++) op(&o, 0x85);
    op(&o, '.');
    expect_fail("100000 nested tuples", &o, "nested deeper");
    o.n = 0;
    op(&o, 0x80); op(&o, 2);
    for (int i = 0; i < 100000; i++) op(&o, '(');
    op(&o, '.');
    expect_fail("100000 MARKs", &o, "open MARKs");
    /* A list that contains itself (memo + APPEND): the cycle is bounded where it is walked. */
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, ']'); op(&o, 'q'); op(&o, 0);
    for (int i = 0; i < 600; i++) { op(&o, 'h'); op(&o, 0); op(&o, 'a'); }
    op(&o, '.');
    expect_fail("self-appending list", &o, "nested deeper");
    /* Memo abuse. */
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, 'N'); op(&o, 'r');
    uint32_t idx = 0xfffffff0u;
    put(&o, &idx, 4);
    op(&o, '.');
    expect_fail("LONG_BINPUT at 4e9", &o, "memo index");
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, 'h'); op(&o, 7); op(&o, '.');
    expect_fail("BINGET of nothing", &o, "never stored");
    /* Unknown opcode, stack underflow, missing STOP, protocol 0 text opcodes. */
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, 'N'); op(&o, 0xff);
    expect_fail("opcode 0xff", &o, "opcode 0xff");
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, 'a');
    expect_fail("APPEND on an empty stack", &o, "underflow");
    o.n = 0;
    op(&o, 0x80); op(&o, 2); op(&o, 'N');
    expect_fail("no STOP", &o, "without STOP");
    o.n = 0;
    op(&o, 'I'); put(&o, "1\n.", 3);
    expect_fail("protocol 0 INT", &o, "opcode 0x49");
    /* A tensor whose strides reach past its storage (persistent ids need a torch file; here the
     * storage comes from a _rebuild_tensor_v2 call on a non-storage). */
    o.n = 0;
    op(&o, 0x80); op(&o, 2);
    glob(&o, "torch._utils", "_rebuild_tensor_v2");
    op(&o, '('); op(&o, 'N'); op(&o, 'K'); op(&o, 0); op(&o, ')'); op(&o, ')'); op(&o, 't');
    op(&o, 'R'); op(&o, '.');
    expect_fail("_rebuild_tensor_v2 without a storage", &o, "not a storage");
    free(o.b);
}

/* Reads a gzipped fixture into memory. */
static uint8_t *gunzip(const char *path, size_t *n) {
    gzFile g = gzopen(path, "rb");
    if (!g) return NULL;
    size_t cap = 1 << 20, len = 0;
    uint8_t *b = malloc(cap);
    int r;
    while ((r = gzread(g, b + len, (unsigned)(cap - len))) > 0) {
        len += (size_t)r;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    gzclose(g);
    *n = len;
    return b;
}

static int write_file(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(b, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Every truncation and a sweep of single-byte corruptions of a real snapshot: clean errors. */
static void corrupt_snapshot(void) {
    size_t n = 0;
    uint8_t *b = gunzip(PD_SOURCE_DIR "/tests/fixtures/convert/ddpmpp-edm.pkl.gz", &n);
    tu_check(b != NULL && n > 1000, "snapshot fixture read (%zu bytes)", n);
    if (!b) return;
    tf_file f;
    pd_error err;
    tu_check(write_file("pickle_whole.pkl", b, n) == 0 && tf_open(&f, "pickle_whole.pkl", &err) == 0,
             "whole snapshot opens");
    tf_close(&f);
    int truncated_ok = 1, corrupt_done = 0, tested = 0;
    for (size_t cut = 0; cut < n; cut += 1 + cut / 64) {
        if (write_file("pickle_cut.pkl", b, cut)) break;
        if (tf_open(&f, "pickle_cut.pkl", &err) == 0) {
            truncated_ok = 0;
            printf("  truncation at %zu parsed!\n", cut);
            tf_close(&f);
        }
        tested++;
    }
    tu_check(truncated_ok, "%d truncations of the snapshot all fail", tested);
    uint64_t s = 88172645463325252ULL;
    for (int k = 0; k < 400; k++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        size_t at = (size_t)(s % n);
        uint8_t keep = b[at];
        b[at] ^= (uint8_t)(1 + (s >> 32) % 255);
        if (!write_file("pickle_bad.pkl", b, n) && tf_open(&f, "pickle_bad.pkl", &err) == 0)
            tf_close(&f);
        b[at] = keep;
        corrupt_done++;
    }
    tu_check(corrupt_done == 400, "400 single-byte corruptions handled without a crash");
    remove("pickle_whole.pkl");
    remove("pickle_cut.pkl");
    remove("pickle_bad.pkl");
    free(b);
}

/* A stored zip with one entry, hand-built, then broken. */
static void zip_tests(void) {
    bb o = {0};
    const char *name = "a/data.pkl", *data = "hello";
    uint32_t crc = (uint32_t)crc32(0, (const uint8_t *)data, 5);
    uint8_t lh[30] = {0x50, 0x4b, 0x03, 0x04, 20, 0};
    memcpy(lh + 14, &crc, 4);
    lh[18] = lh[22] = 5;
    lh[26] = (uint8_t)strlen(name);
    put(&o, lh, 30); put(&o, name, strlen(name)); put(&o, data, 5);
    size_t cd = o.n;
    uint8_t ch[46] = {0x50, 0x4b, 0x01, 0x02, 20, 0, 20, 0};
    memcpy(ch + 16, &crc, 4);
    ch[20] = ch[24] = 5;
    ch[28] = (uint8_t)strlen(name);
    put(&o, ch, 46); put(&o, name, strlen(name));
    uint8_t eo[22] = {0x50, 0x4b, 0x05, 0x06};
    eo[8] = eo[10] = 1;
    uint32_t cds = (uint32_t)(o.n - cd), cdo = (uint32_t)cd;
    memcpy(eo + 12, &cds, 4);
    memcpy(eo + 16, &cdo, 4);
    put(&o, eo, 22);
    zip_archive z;
    pd_error err = {{0}};
    const uint8_t *d;
    uint8_t *owned;
    int rc = zip_open(&z, o.b, o.n, "t.zip", &err);
    const zip_entry *e = rc ? NULL : zip_find(&z, name);
    tu_check(e && !zip_data(&z, e, &d, &owned, &err) && !memcmp(d, "hello", 5) && !owned,
             "stored zip entry read back (%s)", err.msg);
    zip_close(&z);
    o.b[cd - 1] ^= 1;   /* corrupt the data: CRC */
    rc = zip_open(&z, o.b, o.n, "t.zip", &err);
    e = rc ? NULL : zip_find(&z, name);
    tu_check(e && zip_data(&z, e, &d, &owned, &err) && strstr(err.msg, "CRC"),
             "corrupted zip entry fails its CRC: %s", err.msg);
    zip_close(&z);
    o.b[cd - 1] ^= 1;
    uint32_t bad = 0x7fffffff;   /* an entry size past the end of the file */
    memcpy(o.b + cd + 20, &bad, 4);
    memcpy(o.b + cd + 24, &bad, 4);
    tu_check(zip_open(&z, o.b, o.n, "t.zip", &err) != 0 && strstr(err.msg, "claims"),
             "zip entry claiming 2 GB fails: %s", err.msg);
    memcpy(o.b + o.n - 22 + 16, &bad, 4);   /* central directory offset past the end */
    tu_check(zip_open(&z, o.b, o.n, "t.zip", &err) != 0, "central directory past the end fails: %s",
             err.msg);
    tu_check(zip_open(&z, o.b, 10, "t.zip", &err) != 0, "10-byte zip fails: %s", err.msg);
    free(o.b);
}

int main(void) {
    check_values("protocol 2", p2, sizeof p2 - 1);
    check_values("protocol 4", p4, sizeof p4 - 1);
    hostile();
    zip_tests();
    corrupt_snapshot();
    return tu_finish();
}
