/* png_text.c — pd_png_read_text: the text chunks (tEXt, zTXt, iTXt) of a PNG, read by walking
 * the chunk list without decoding a pixel (PNG spec, 2nd ed., sections 5.3 and 11.3.4).
 *
 * Every chunk's length is checked against the bytes left in the file before anything is read or
 * allocated, and every chunk's CRC is verified (so a damaged file is an error here, as it is for
 * pd_png_read); the image data is only checksummed, in fixed 64 KiB blocks. A text value is
 * returned as its raw bytes (Latin-1 for tEXt/zTXt, UTF-8 for iTXt); compressed values are
 * inflated with zlib under a budget: all values together may hold at most PNG_TEXT_BUDGET bytes
 * plus 16 times the file size (docs/testing.md "Resource rule"), at most PNG_TEXT_MAX_CHUNKS
 * chunks. Only regular files are read. Keys and values keep the order of the file.
 */
#include "core/util.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define PNG_TEXT_BUDGET ((size_t)1 << 20)
#define PNG_TEXT_MAX_CHUNKS 4096

typedef struct {
    const char *path;
    char **keys, **values;
    int count;
    size_t budget;            /* bytes of values still allowed */
    pd_error *err;
} text_out;

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Inflates a zlib stream into a new NUL-terminated buffer of at most o->budget bytes. */
static int inflate_value(text_out *o, const unsigned char *in, size_t n, char **out, size_t *len) {
    z_stream z = {0};
    size_t cap = n * 4 + 64 < o->budget ? n * 4 + 64 : o->budget, got = 0;
    char *buf = malloc(cap + 1);
    if (!buf || inflateInit(&z) != Z_OK) {
        free(buf);
        return pd_fail(o->err, "%s: out of memory", o->path);
    }
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    int r = Z_OK;
    while (r != Z_STREAM_END) {
        if (got == cap) {
            if (cap >= o->budget) break;
            size_t nc = cap * 2 < o->budget ? cap * 2 : o->budget;
            char *b = realloc(buf, nc + 1);
            if (!b) { r = Z_MEM_ERROR; break; }
            buf = b, cap = nc;
        }
        z.next_out = (unsigned char *)buf + got;
        z.avail_out = (uInt)(cap - got);
        r = inflate(&z, Z_NO_FLUSH);
        got = cap - z.avail_out;
        if (r != Z_OK && r != Z_STREAM_END) break;
        if (r == Z_OK && z.avail_in == 0 && z.avail_out > 0) { r = Z_DATA_ERROR; break; }
    }
    inflateEnd(&z);
    if (r != Z_STREAM_END) {
        free(buf);
        if (r == Z_MEM_ERROR) return pd_fail(o->err, "%s: out of memory", o->path);
        if (got == cap && cap >= o->budget)
            return pd_fail(o->err, "%s: compressed text chunks expand to more than %zu bytes",
                           o->path, o->budget);
        return pd_fail(o->err, "%s: not a valid PNG (corrupt compressed text chunk)", o->path);
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* Parses one text chunk's data d[0..n) (d[n] is a NUL the caller added) into a key/value pair. */
static int add_text(text_out *o, const char *type, unsigned char *d, size_t n) {
    unsigned char *nul = memchr(d, 0, n);
    if (!nul || nul == d || nul - d > 79)
        return pd_fail(o->err, "%s: not a valid PNG (%s chunk without a 1-79 byte keyword)",
                       o->path, type);
    unsigned char *p = nul + 1, *end = d + n;
    int compressed = 0;
    if (!strcmp(type, "zTXt")) {
        if (p >= end || *p != 0) return pd_fail(o->err, "%s: not a valid PNG (malformed zTXt chunk)", o->path);
        compressed = 1, p++;
    } else if (!strcmp(type, "iTXt")) {
        /* flag, method, language tag \0, translated keyword \0, text */
        if (end - p < 2 || p[0] > 1 || (p[0] && p[1] != 0))
            return pd_fail(o->err, "%s: not a valid PNG (malformed iTXt chunk)", o->path);
        compressed = p[0];
        p += 2;
        for (int k = 0; k < 2; k++) {
            unsigned char *z = memchr(p, 0, (size_t)(end - p));
            if (!z) return pd_fail(o->err, "%s: not a valid PNG (malformed iTXt chunk)", o->path);
            p = z + 1;
        }
    }
    char *val = NULL;
    size_t len = (size_t)(end - p);
    if (compressed) {
        if (inflate_value(o, p, len, &val, &len)) return -1;
    } else {
        if (len > o->budget)
            return pd_fail(o->err, "%s: text chunks hold more than %zu bytes", o->path, o->budget);
        if (!(val = malloc(len + 1))) return pd_fail(o->err, "%s: out of memory", o->path);
        memcpy(val, p, len);
        val[len] = '\0';
    }
    o->budget -= len;
    char *key = strdup((const char *)d);
    char **k = realloc(o->keys, (o->count + 1) * sizeof *k);
    if (k) o->keys = k;
    char **v = k ? realloc(o->values, (o->count + 1) * sizeof *v) : NULL;
    if (v) o->values = v;
    if (!key || !k || !v) {
        free(key), free(val);
        return pd_fail(o->err, "%s: out of memory", o->path);
    }
    o->keys[o->count] = key;
    o->values[o->count++] = val;
    return 0;
}

static int walk(text_out *o, FILE *f, unsigned long long size) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char h[8], buf[1 << 16];
    if (size < 8 || fread(h, 1, 8, f) != 8 || memcmp(h, sig, 8))
        return pd_fail(o->err, "%s: not a valid PNG (no PNG signature)", o->path);
    unsigned long long pos = 8;
    for (int first = 1;; first = 0) {
        if (size - pos < 12 || fread(h, 1, 8, f) != 8)
            return pd_fail(o->err, "%s: not a valid PNG (truncated: no IEND chunk)", o->path);
        uint32_t n = be32(h);
        char type[5] = {(char)h[4], (char)h[5], (char)h[6], (char)h[7], 0};
        pos += 12;
        if (n > 0x7fffffffu || n > size - pos)
            return pd_fail(o->err, "%s: not a valid PNG (%s chunk of %u bytes, %llu left in the "
                           "file)", o->path, type, n, size - pos);
        pos += n;
        if (first && strcmp(type, "IHDR"))
            return pd_fail(o->err, "%s: not a valid PNG (IHDR is not the first chunk)", o->path);
        int text = !strcmp(type, "tEXt") || !strcmp(type, "zTXt") || !strcmp(type, "iTXt");
        uLong crc = crc32(crc32(0, Z_NULL, 0), h + 4, 4);
        unsigned char *d = NULL;
        if (text) {
            if (o->count >= PNG_TEXT_MAX_CHUNKS)
                return pd_fail(o->err, "%s: more than %d text chunks", o->path, PNG_TEXT_MAX_CHUNKS);
            if (!(d = malloc((size_t)n + 1))) return pd_fail(o->err, "%s: out of memory", o->path);
            if (fread(d, 1, n, f) != n) {
                free(d);
                return pd_fail(o->err, "%s: read error", o->path);
            }
            d[n] = 0;
            crc = crc32(crc, d, n);
        } else {
            for (uint32_t left = n; left;) {
                uint32_t k = left < sizeof buf ? left : (uint32_t)sizeof buf;
                if (fread(buf, 1, k, f) != k) return pd_fail(o->err, "%s: read error", o->path);
                crc = crc32(crc, buf, k);
                left -= k;
            }
        }
        if (fread(h, 1, 4, f) != 4 || be32(h) != (uint32_t)crc) {
            free(d);
            return pd_fail(o->err, "%s: not a valid PNG (CRC error in a %s chunk)", o->path, type);
        }
        int rc = text ? add_text(o, type, d, n) : 0;
        free(d);
        if (rc) return -1;
        if (!strcmp(type, "IEND")) return 0;
    }
}

int pd_png_read_text(const char *path, char ***keys, char ***values, int *count, pd_error *err) {
    *keys = NULL, *values = NULL, *count = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    text_out o = {path, NULL, NULL, 0, 0, err};
    int rc;
    if (fstat(fileno(f), &st)) rc = pd_fail(err, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode)) rc = pd_fail(err, "%s: not a regular file", path);
    else {
        o.budget = PNG_TEXT_BUDGET + 16 * (size_t)st.st_size;
        rc = walk(&o, f, (unsigned long long)st.st_size);
    }
    fclose(f);
    if (rc) {
        pd_png_text_free(o.keys, o.values, o.count);
        return -1;
    }
    *keys = o.keys, *values = o.values, *count = o.count;
    return 0;
}
