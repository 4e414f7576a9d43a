/* torchfile.h — opens a pickled checkpoint as a value tree: a plain pickle (EDM/SiD network
 * snapshots), a legacy torch.save stream, or a torch.save zip archive (.pth/.pt).
 *
 * Contract: tf_open() maps the file read-only, recognises the container, and parses it with the
 * restricted pickle reader (pickle.h), resolving torch's persistent storage ids to their raw
 * bytes: in a legacy stream (magic number, protocol 1001, sys info, the object, the sorted
 * storage keys, then per key an int64 element count and the elements — torch/serialization.py
 * _legacy_save) or in the zip's <prefix>/data/<key> entries. Storages pickled inside a snapshot
 * through torch.storage._load_from_bytes are legacy streams too and are read the same way. Every
 * storage a tensor uses has its data checked to be present and long enough. Nothing is executed.
 */
#ifndef PD_TORCHFILE_H
#define PD_TORCHFILE_H

#include "core/pickle.h"
#include "core/zip.h"

typedef enum tf_format { TF_PICKLE, TF_LEGACY, TF_ZIP } tf_format;

typedef struct tf_file {
    char path[512];
    tf_format format;
    pk_ctx *ctx;
    pk_value *root;
    const uint8_t *map;
    size_t len;
    zip_archive zip;
    uint8_t **owned;            /* inflated zip entries */
    int n_owned;
} tf_file;

/* 1 when the file looks like a pickle or a torch file (by its first bytes). */
int tf_sniff(const uint8_t *buf, size_t len);
int tf_open(tf_file *f, const char *path, pd_error *err);
void tf_close(tf_file *f);
const char *tf_format_name(tf_format f);

#endif
