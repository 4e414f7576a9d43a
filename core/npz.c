/* npz.c — FID statistics in numpy .npz archives (pd_npz_stats_read / pd_npz_stats_write).
 *
 * An .npz is a zip archive of .npy files named <key>.npy. EDM's fid-refs/NAME.npz (np.savez:
 * stored entries) and pytorch-fid's --save-stats files (np.savez_compressed: deflated entries)
 * hold `mu` (float64 [d]) and `sigma` (float64 [d, d]). Reading goes through the bounded zip
 * reader (core/zip.c: CRC-checked, zip64 as numpy writes it) and the .npy header parser
 * (core/npy.c); `mu` and `sigma` must be C-order '<f8' (or '<f4', widened) with matching shapes
 * and finite values; other entries are ignored. Writing produces what np.savez does: two stored
 * entries mu.npy and sigma.npy ('<f8', version 1.0 headers), a central directory and its end
 * record, written atomically (temporary file + rename).
 */
#include "core/npy.h"
#include "core/util.h"
#include "core/zip.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define NPZ_MAX_BYTES ((size_t)1 << 32)

/* One float64 (or float32) array entry `key`.npy of rank `rank` into a malloc'd double array. */
static int read_entry(const zip_archive *z, const char *path, const char *key, int rank,
                      int shape[4], double **out, pd_error *err) {
    char name[32], what[1100];
    snprintf(name, sizeof name, "%s.npy", key);
    snprintf(what, sizeof what, "%s: entry '%s'", path, name);
    const zip_entry *e = zip_find(z, name);
    if (!e) return pd_fail(err, "%s: no '%s' in the archive (not FID statistics?)", path, name);
    const uint8_t *data;
    uint8_t *owned;
    if (zip_data(z, e, &data, &owned, err)) return -1;
    char descr[16];
    int nd = 0, rc = -1;
    size_t off = 0;
    if (npy_parse(what, data, (size_t)e->usize, descr, shape, &nd, &off, err)) goto done;
    const int f8 = !strcmp(descr, "<f8"), f4 = !strcmp(descr, "<f4");
    if (!f8 && !f4) {
        pd_fail(err, "%s: dtype '%s', need float64 ('<f8') or float32", what, descr);
        goto done;
    }
    if (nd != rank) {
        pd_fail(err, "%s: rank %d, need %d", what, nd, rank);
        goto done;
    }
    size_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= (size_t)shape[i];
    const size_t esz = f8 ? 8 : 4;
    if (numel > NPZ_MAX_BYTES / 8 || (size_t)e->usize - off != numel * esz) {
        pd_fail(err, "%s: %zu bytes of data for %zu values", what, (size_t)e->usize - off, numel);
        goto done;
    }
    double *x = malloc(sizeof(double) * (numel ? numel : 1));
    if (!x) {
        pd_fail(err, "%s: out of memory", what);
        goto done;
    }
    for (size_t i = 0; i < numel; i++) {
        if (f8) memcpy(&x[i], data + off + 8 * i, 8);
        else {
            float v;
            memcpy(&v, data + off + 4 * i, 4);
            x[i] = v;
        }
        if (!isfinite(x[i])) {
            free(x);
            pd_fail(err, "%s: value %zu is not finite", what, i);
            goto done;
        }
    }
    *out = x;
    rc = 0;
done:
    free(owned);
    return rc;
}

int pd_npz_stats_read(const char *path, pd_feature_stats *s, int dim, pd_error *err) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    uint8_t *buf = NULL;
    int rc = -1;
    zip_archive z;
    memset(&z, 0, sizeof z);
    if (fstat(fileno(f), &st) || (size_t)st.st_size > NPZ_MAX_BYTES) {
        pd_fail(err, "%s: cannot read (or larger than 4 GiB)", path);
        goto done;
    }
    buf = malloc((size_t)st.st_size ? (size_t)st.st_size : 1);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        pd_fail(err, "%s: read error", path);
        goto done;
    }
    if (!zip_is_zip(buf, (size_t)st.st_size)) {
        pd_fail(err, "%s: not an .npz (zip) archive", path);
        goto done;
    }
    if (zip_open(&z, buf, (size_t)st.st_size, path, err)) goto done;
    int ms[4], ss[4];
    double *mu = NULL, *sg = NULL;
    if (read_entry(&z, path, "mu", 1, ms, &mu, err)) goto done;
    if (read_entry(&z, path, "sigma", 2, ss, &sg, err)) {
        free(mu);
        goto done;
    }
    if (ss[0] != ms[0] || ss[1] != ms[0] || ms[0] < 1) {
        pd_fail(err, "%s: mu is [%d] but sigma is [%d, %d] (need [d] and [d, d])", path, ms[0], ss[0], ss[1]);
        free(mu), free(sg);
        goto done;
    }
    if (dim > 0 && ms[0] != dim) {
        pd_fail(err, "%s: statistics of %d features, need %d", path, ms[0], dim);
        free(mu), free(sg);
        goto done;
    }
    s->dim = ms[0];
    s->n = 0;
    s->mu = mu;
    s->sigma = sg;
    rc = 0;
done:
    zip_close(&z);
    free(buf);
    fclose(f);
    return rc;
}

static void put(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int pd_npz_stats_write(const char *path, const pd_feature_stats *s, pd_error *err) {
    if (!s || s->dim < 1 || !s->mu || !s->sigma) return pd_fail(err, "%s: no statistics to write", path);
    const long long d = s->dim, shapes[2][2] = {{d, 0}, {d, d}};
    const char *names[2] = {"mu.npy", "sigma.npy"};
    const double *vals[2] = {s->mu, s->sigma};
    const size_t counts[2] = {(size_t)d, (size_t)d * d};
    if (counts[1] * 8 > 0xffffffffu - 4096) return pd_fail(err, "%s: %lld features is too many for a zip32 .npz", path, d);
    uint8_t hdr[2][320], local[30 + 16], central[2][46 + 16];
    size_t hlen[2], pos = 0;
    core_atomic_file af;
    if (core_atomic_open(&af, path, err)) return -1;
    for (int k = 0; k < 2; k++) {
        hlen[k] = npy_header(hdr[k], sizeof hdr[k], "<f8", shapes[k], k + 1);
        const size_t size = hlen[k] + 8 * counts[k], nlen = strlen(names[k]);
        uLong crc = crc32_z(0, hdr[k], hlen[k]);
        crc = crc32_z(crc, (const Bytef *)vals[k], 8 * counts[k]);
        /* Local file header (APPNOTE 4.3.7): stored, 1980-01-01 00:00, no extra field. */
        memset(local, 0, sizeof local);
        put(local, 0x04034b50, 4);
        put(local + 4, 20, 2);
        put(local + 12, 0x21, 2);
        put(local + 14, crc, 4);
        put(local + 18, size, 4);
        put(local + 22, size, 4);
        put(local + 26, nlen, 2);
        memcpy(local + 30, names[k], nlen);
        /* Its central directory header (4.3.12). */
        uint8_t *c = central[k];
        memset(c, 0, sizeof central[k]);
        put(c, 0x02014b50, 4);
        put(c + 4, 20, 2);
        put(c + 6, 20, 2);
        put(c + 14, 0x21, 2);
        put(c + 16, crc, 4);
        put(c + 20, size, 4);
        put(c + 24, size, 4);
        put(c + 28, nlen, 2);
        put(c + 42, pos, 4);
        memcpy(c + 46, names[k], nlen);
        if (fwrite(local, 1, 30 + nlen, af.f) != 30 + nlen || fwrite(hdr[k], 1, hlen[k], af.f) != hlen[k] ||
            fwrite(vals[k], 8, counts[k], af.f) != counts[k])
            goto fail;
        pos += 30 + nlen + size;
    }
    size_t cd_size = 0;
    for (int k = 0; k < 2; k++) {
        size_t n = 46 + strlen(names[k]);
        if (fwrite(central[k], 1, n, af.f) != n) goto fail;
        cd_size += n;
    }
    uint8_t eocd[22];
    memset(eocd, 0, sizeof eocd);
    put(eocd, 0x06054b50, 4);
    put(eocd + 8, 2, 2);
    put(eocd + 10, 2, 2);
    put(eocd + 12, cd_size, 4);
    put(eocd + 16, pos, 4);
    if (fwrite(eocd, 1, 22, af.f) != 22) goto fail;
    return core_atomic_commit(&af, err);
fail:;
    int e = errno;
    core_atomic_abort(&af);
    return pd_fail(err, "%s: write failed: %s", path, strerror(e));
}
