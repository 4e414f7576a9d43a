/* zip.h — a minimal, bounded reader for zip archives held in memory (torch's .pth files:
 * archive/data.pkl plus one raw entry per storage, archive/data/<key>).
 *
 * Contract: zip_open() parses the central directory (zip64 included) and checks every entry's
 * name, sizes and local header against the buffer; zip_data() returns an entry's bytes — a
 * pointer into the buffer for stored entries, a malloc'd copy for deflated ones (inflated with
 * zlib, at most the size the directory claims, which is itself bounded by deflate's maximum
 * ratio) — after checking its CRC-32. Encrypted entries and other compression methods are
 * errors naming the entry. The buffer must outlive the archive.
 */
#ifndef PD_ZIP_H
#define PD_ZIP_H

#include "pixdiff.h"
#include <stddef.h>
#include <stdint.h>

typedef struct zip_entry {
    char *name;
    int method;                 /* 0 stored, 8 deflate */
    uint32_t crc;
    uint64_t csize, usize, data_off;   /* data_off: start of the (compressed) data in the buffer */
} zip_entry;

typedef struct zip_archive {
    const uint8_t *buf;
    size_t len;
    zip_entry *e;
    int n;
    char source[512];
} zip_archive;

/* 1 when buf starts with a zip local-file header. */
int zip_is_zip(const uint8_t *buf, size_t len);
int zip_open(zip_archive *z, const uint8_t *buf, size_t len, const char *source, pd_error *err);
const zip_entry *zip_find(const zip_archive *z, const char *name);
/* *data: the entry's bytes; *owned: what to free() afterwards (NULL for stored entries). */
int zip_data(const zip_archive *z, const zip_entry *e, const uint8_t **data, uint8_t **owned,
             pd_error *err);
void zip_close(zip_archive *z);

#endif
