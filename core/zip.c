/* zip.c — the bounded in-memory zip reader (zip.h), after PKWARE's APPNOTE.TXT: the end of
 * central directory record (§4.3.16) is found in the last 64 KiB + 22 bytes, the zip64 end
 * record through its locator (§4.3.14-15) when a field is saturated, then each central
 * directory header (§4.3.12) and its local header (§4.3.7) are checked against the buffer.
 */
#include "core/zip.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ZIP_MAX_ENTRIES (1 << 20)

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int zip_is_zip(const uint8_t *buf, size_t len) {
    return len >= 4 && le(buf, 4) == 0x04034b50;
}

void zip_close(zip_archive *z) {
    if (!z) return;
    for (int i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    memset(z, 0, sizeof *z);
}

/* Zip64 extended information (APPNOTE §4.5.3): the saturated fields, in order. */
static int zip64_extra(const uint8_t *x, size_t n, uint64_t *usize, uint64_t *csize,
                       uint64_t *off) {
    size_t p = 0;
    while (p + 4 <= n) {
        unsigned id = (unsigned)le(x + p, 2), sz = (unsigned)le(x + p + 2, 2);
        if (p + 4 + sz > n) return -1;
        if (id == 1) {
            const uint8_t *d = x + p + 4;
            size_t q = 0;
            uint64_t *f[3] = {usize, csize, off};
            for (int k = 0; k < 3; k++)
                if (*f[k] == 0xffffffffu) {
                    if (q + 8 > sz) return -1;
                    *f[k] = le(d + q, 8);
                    q += 8;
                }
            return 0;
        }
        p += 4 + sz;
    }
    return 0;
}

int zip_open(zip_archive *z, const uint8_t *buf, size_t len, const char *source, pd_error *err) {
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->len = len;
    snprintf(z->source, sizeof z->source, "%s", source);
    if (len < 22) return pd_fail(err, "%s: too short for a zip archive", source);
    size_t eocd = 0;
    int found = 0;
    for (size_t back = 22; back <= len && back <= 22 + 65535; back++)
        if (le(buf + len - back, 4) == 0x06054b50) {
            eocd = len - back;
            found = 1;
            break;
        }
    if (!found) return pd_fail(err, "%s: zip end-of-central-directory record not found", source);
    uint64_t count = le(buf + eocd + 10, 2), cd_size = le(buf + eocd + 12, 4),
             cd_off = le(buf + eocd + 16, 4);
    if ((count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) && eocd >= 20 &&
        le(buf + eocd - 20, 4) == 0x07064b50) {
        uint64_t e64 = le(buf + eocd - 20 + 8, 8);
        if (len < 56 || e64 > len - 56 || le(buf + e64, 4) != 0x06064b50)   /* no wrap-around */
            return pd_fail(err, "%s: bad zip64 end-of-central-directory record", source);
        count = le(buf + e64 + 32, 8);
        cd_size = le(buf + e64 + 40, 8);
        cd_off = le(buf + e64 + 48, 8);
    }
    if (cd_off > len || cd_size > len - cd_off || count > ZIP_MAX_ENTRIES || count * 46 > cd_size)
        return pd_fail(err, "%s: zip central directory (%llu entries at %llu) does not fit the file",
                       source, (unsigned long long)count, (unsigned long long)cd_off);
    z->e = calloc(count ? count : 1, sizeof *z->e);
    if (!z->e) return pd_fail(err, "%s: out of memory", source);
    size_t p = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (p + 46 > end || le(buf + p, 4) != 0x02014b50) {
            zip_close(z);
            return pd_fail(err, "%s: zip central directory entry %llu is corrupt", source,
                           (unsigned long long)i);
        }
        zip_entry *e = &z->e[z->n];
        unsigned flags = (unsigned)le(buf + p + 8, 2);
        size_t nlen = (size_t)le(buf + p + 28, 2), xlen = (size_t)le(buf + p + 30, 2),
               clen = (size_t)le(buf + p + 32, 2);
        e->method = (int)le(buf + p + 10, 2);
        e->crc = (uint32_t)le(buf + p + 16, 4);
        e->csize = le(buf + p + 20, 4);
        e->usize = le(buf + p + 24, 4);
        uint64_t loc = le(buf + p + 42, 4);
        if (p + 46 + nlen + xlen + clen > end || !(e->name = malloc(nlen + 1))) {
            zip_close(z);
            return pd_fail(err, "%s: zip central directory entry %llu is corrupt", source,
                           (unsigned long long)i);
        }
        z->n++;
        memcpy(e->name, buf + p + 46, nlen);
        e->name[nlen] = 0;
        if (memchr(e->name, 0, nlen) ||
            zip64_extra(buf + p + 46 + nlen, xlen, &e->usize, &e->csize, &loc)) {
            int rc = pd_fail(err, "%s: zip entry %llu has a bad name or zip64 field", source,
                             (unsigned long long)i);
            zip_close(z);
            return rc;
        }
        if (flags & 1) {
            int rc = pd_fail(err, "%s: zip entry '%s' is encrypted", source, e->name);
            zip_close(z);
            return rc;
        }
        if (e->method != 0 && e->method != 8) {
            int rc = pd_fail(err, "%s: zip entry '%s' uses compression method %d (only stored "
                             "and deflate are read)", source, e->name, e->method);
            zip_close(z);
            return rc;
        }
        /* The local header repeats name and extra field (their lengths may differ). */
        if (loc > len || len - loc < 30 || le(buf + loc, 4) != 0x04034b50) {
            int rc = pd_fail(err, "%s: zip entry '%s': local header outside the file", source,
                             e->name);
            zip_close(z);
            return rc;
        }
        uint64_t data = loc + 30 + le(buf + loc + 26, 2) + le(buf + loc + 28, 2);
        if (data > len || e->csize > len - data ||
            (e->method == 0 && e->csize != e->usize) ||
            (e->method == 8 && e->usize / 1032 > e->csize + 1)) {
            int rc = pd_fail(err, "%s: zip entry '%s' claims %llu bytes that the file does not "
                             "hold", source, e->name, (unsigned long long)e->usize);
            zip_close(z);
            return rc;
        }
        e->data_off = data;
        p += 46 + nlen + xlen + clen;
    }
    return 0;
}

const zip_entry *zip_find(const zip_archive *z, const char *name) {
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name)) return &z->e[i];
    return NULL;
}

int zip_data(const zip_archive *z, const zip_entry *e, const uint8_t **data, uint8_t **owned,
             pd_error *err) {
    *owned = NULL;
    *data = z->buf + e->data_off;
    if (e->method == 8) {
        uint8_t *out = malloc(e->usize ? e->usize : 1);
        if (!out) return pd_fail(err, "%s: out of memory inflating '%s'", z->source, e->name);
        z_stream s;
        memset(&s, 0, sizeof s);
        if (inflateInit2(&s, -MAX_WBITS) != Z_OK) {
            free(out);
            return pd_fail(err, "%s: zlib init failed", z->source);
        }
        /* zlib's avail fields are 32-bit: feed and drain in chunks. */
        uint64_t in_left = e->csize, out_left = e->usize;
        s.next_in = (uint8_t *)(uintptr_t)*data;
        s.next_out = out;
        int rc = Z_OK;
        while (rc == Z_OK) {
            uInt ai = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            uInt ao = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
            s.avail_in = ai;
            s.avail_out = ao;
            rc = inflate(&s, Z_NO_FLUSH);
            in_left -= ai - s.avail_in;
            out_left -= ao - s.avail_out;
            if (rc == Z_OK && ai == s.avail_in && ao == s.avail_out) rc = Z_BUF_ERROR;
        }
        inflateEnd(&s);
        if (rc != Z_STREAM_END || out_left) {
            free(out);
            return pd_fail(err, "%s: zip entry '%s' does not inflate to its %llu bytes", z->source,
                           e->name, (unsigned long long)e->usize);
        }
        *data = *owned = out;
    }
    /* crc32_z takes a size_t length (zlib >= 1.2.9). A stored CRC of 0 is skipped: torch can be
     * told not to compute CRCs (torch.serialization.set_crc32_options) and then writes 0. */
    if (e->crc && (uint32_t)crc32_z(0, *data, (size_t)e->usize) != e->crc) {
        free(*owned);
        *owned = NULL;
        return pd_fail(err, "%s: zip entry '%s' fails its CRC-32 check", z->source, e->name);
    }
    return 0;
}
