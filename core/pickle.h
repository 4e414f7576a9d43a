/* pickle.h — a restricted, non-executing reader for Python pickles (protocols 2 to 4), enough
 * for NVlabs/edm network snapshots and torch.save files (docs/formats.md "Converting
 * checkpoints").
 *
 * Contract: pk_parse() reads one pickle from a byte buffer into a small tree of values (None,
 * bool, int, float, str, bytes, tuple, list, dict, objects of a known class, tensors and storage
 * references). It implements only the opcodes those files use and interprets a fixed whitelist of
 * globals itself (EDM's persistence hook, torch's tensor/parameter/storage rebuilders,
 * OrderedDict, set, numpy scalars); any other global, opcode or construction fails with one line
 * naming it, and nothing in the file is ever executed. Every size the file claims is checked
 * against the bytes that remain, and the value count, memo, mark stack and container nesting are
 * bounded, so a truncated, corrupt or hostile file gives an error, never a crash or a huge
 * allocation. Values live until pk_ctx_free(); byte strings and storage data point into the
 * caller's buffer, which must outlive the context.
 */
#ifndef PD_PICKLE_H
#define PD_PICKLE_H

#include "pixdiff.h"
#include <stddef.h>
#include <stdint.h>

typedef enum pk_kind {
    PK_NONE, PK_BOOL, PK_INT, PK_BIGINT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST, PK_DICT,
    PK_GLOBAL, PK_OBJECT, PK_DTYPE, PK_STORAGE, PK_TENSOR
} pk_kind;

/* Element types of torch storages (torch.FloatStorage, ...). */
typedef enum pk_dtype {
    PK_F32, PK_F16, PK_BF16, PK_F64, PK_I64, PK_I32, PK_I16, PK_I8, PK_U8, PK_BOOLT, PK_DTYPE_COUNT
} pk_dtype;
extern const char *const pk_dtype_names[PK_DTYPE_COUNT];
extern const int pk_dtype_size[PK_DTYPE_COUNT];

typedef struct pk_value pk_value;

typedef struct pk_storage {
    pk_dtype dtype;
    long long numel;            /* elements the persistent id claims */
    char *key;                  /* torch's storage key */
    const uint8_t *data;        /* numel elements, little-endian; NULL until the data is found */
} pk_storage;

typedef struct pk_tensor {
    pk_value *storage;          /* a PK_STORAGE */
    long long offset;           /* in elements */
    int ndim;
    long long shape[8], stride[8];
} pk_tensor;

struct pk_value {
    pk_kind kind;
    size_t n, cap;              /* STR/BYTES/BIGINT/GLOBAL/OBJECT/DTYPE: length of s;
                                 * TUPLE/LIST: items; DICT: keys + values (2 per entry) */
    long long i;                /* BOOL, INT */
    double f;                   /* FLOAT */
    char *s;                    /* STR (NUL-terminated UTF-8), BIGINT (little-endian two's
                                 * complement bytes), GLOBAL ("module.name"), OBJECT (class name),
                                 * DTYPE (numpy type string) */
    const uint8_t *bytes;       /* BYTES: borrowed from the buffer or owned by the context */
    pk_value **items;           /* TUPLE/LIST items; DICT k0, v0, k1, v1, ... */
    pk_value *state;            /* OBJECT: its attribute dict (None until BUILD) */
    int global;                 /* GLOBAL: index in the whitelist */
    int depth;                  /* container nesting at creation, bounded */
    pk_storage *st;             /* STORAGE */
    pk_tensor *t;               /* TENSOR */
};

typedef struct pk_ctx pk_ctx;

/* Maps a persistent id (BINPERSID; torch's ('storage', type, key, location, numel[, view])) to
 * a value; NULL callback: persistent ids are errors. */
typedef int (*pk_persid_fn)(pk_ctx *ctx, void *user, pk_value *pid, pk_value **out, pd_error *err);
/* torch.storage._load_from_bytes(b): the callback parses b (a legacy torch.save stream) into a
 * storage; NULL callback: the global is refused. */
typedef int (*pk_bytes_fn)(pk_ctx *ctx, void *user, const uint8_t *b, size_t n, pk_value **out,
                           pd_error *err);

pk_ctx *pk_ctx_new(const char *source);   /* source names the file in messages */
void pk_ctx_free(pk_ctx *ctx);
const char *pk_ctx_source(const pk_ctx *ctx);
void pk_ctx_set_load_from_bytes(pk_ctx *ctx, pk_bytes_fn fn, void *user);

/* Parses the pickle starting at buf[0]; *used = bytes up to and including STOP. `base` is the
 * offset of buf in the file, for messages. */
int pk_parse(pk_ctx *ctx, const uint8_t *buf, size_t len, size_t base, pk_persid_fn persid,
             void *user, pk_value **out, size_t *used, pd_error *err);

/* Values the callbacks create. */
pk_value *pk_new(pk_ctx *ctx, pk_kind kind, pd_error *err);

/* Lookups (NULL when absent or of another kind). */
pk_value *pk_dict_get(const pk_value *d, const char *key);
int pk_is_str(const pk_value *v, const char *s);
const char *pk_kind_name(pk_kind k);

#endif
