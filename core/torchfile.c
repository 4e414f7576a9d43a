/* torchfile.c — pickle / legacy torch.save / torch zip containers (torchfile.h).
 *
 * Layouts follow torch/serialization.py: _legacy_save writes five consecutive protocol-2
 * pickles' worth of data (magic 0x1950a86a20f9469cfc6c, protocol version 1001, a sys-info dict,
 * the object with storages replaced by persistent ids ('storage', torch.XStorage, key, location,
 * numel, view), the sorted list of keys) followed by each storage as an int64 element count and
 * its raw little-endian elements; _save (zip) writes <prefix>/data.pkl with persistent ids
 * ('storage', torch.XStorage, key, location, numel) and the storage bytes in <prefix>/data/<key>.
 */
#include "core/torchfile.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The magic number as LONG1's little-endian bytes. */
static const uint8_t legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

const char *tf_format_name(tf_format f) {
    return f == TF_ZIP ? "torch zip archive" : f == TF_LEGACY ? "legacy torch.save stream"
                                                              : "pickle";
}

int tf_sniff(const uint8_t *buf, size_t len) {
    return zip_is_zip(buf, len) || (len >= 2 && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5);
}

/* The storages of one legacy stream, by key. */
typedef struct legacy {
    pk_value **st;
    int n, cap;
} legacy;

typedef struct zipctx {
    tf_file *f;
    char prefix[256];
} zipctx;

/* Common checks of a persistent id ('storage', torch.XStorage, key, location, numel, ...). */
static int storage_pid(pk_ctx *ctx, pk_value *pid, int n_expected, pk_value **out, pd_error *err) {
    const char *src = pk_ctx_source(ctx);
    if (pid->kind != PK_TUPLE || (int)pid->n < n_expected || pid->n > 6 ||
        !pk_is_str(pid->items[0], "storage"))
        return pd_fail(err, "%s: persistent id is not ('storage', type, key, location, numel)", src);
    pk_value *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
    int dt = -1;
    if (type->kind == PK_GLOBAL) {
        static const char *const cls[PK_DTYPE_COUNT] = {
            "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage",
            "torch.DoubleStorage", "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage",
            "torch.CharStorage", "torch.ByteStorage", "torch.BoolStorage"};
        for (int d = 0; d < PK_DTYPE_COUNT; d++)
            if (!strcmp(type->s, cls[d])) dt = d;
    }
    if (dt < 0) return pd_fail(err, "%s: storage of unknown type", src);
    if (key->kind != PK_STR || numel->kind != PK_INT || numel->i < 0 || numel->i > (1LL << 40))
        return pd_fail(err, "%s: storage key or element count is invalid", src);
    if (pid->n == 6 && pid->items[5]->kind != PK_NONE)
        return pd_fail(err, "%s: storage '%s' is a view (pre-1.0 torch files are not read)", src,
                       key->s);
    pk_value *v = pk_new(ctx, PK_STORAGE, err);
    if (!v) return -1;
    if (!(v->st = calloc(1, sizeof *v->st)) || !(v->st->key = strdup(key->s)))
        return pd_fail(err, "%s: out of memory", src);
    v->st->dtype = (pk_dtype)dt;
    v->st->numel = numel->i;
    *out = v;
    return 0;
}

static int legacy_persid(pk_ctx *ctx, void *user, pk_value *pid, pk_value **out, pd_error *err) {
    legacy *L = user;
    if (pid->kind == PK_TUPLE && pid->n >= 3 && pid->items[2]->kind == PK_STR)
        for (int i = 0; i < L->n; i++)   /* one storage per key, as torch's deserialized_objects */
            if (!strcmp(L->st[i]->st->key, pid->items[2]->s)) {
                *out = L->st[i];
                return 0;
            }
    if (storage_pid(ctx, pid, 6, out, err)) return -1;
    if (L->n == L->cap) {
        int cap = L->cap ? 2 * L->cap : 16;
        pk_value **a = realloc(L->st, (size_t)cap * sizeof *a);
        if (!a) return pd_fail(err, "%s: out of memory", pk_ctx_source(ctx));
        L->st = a;
        L->cap = cap;
    }
    L->st[L->n++] = *out;
    return 0;
}

/* Reads a legacy torch.save stream of len bytes at buf (file offset base). */
static int read_legacy(pk_ctx *ctx, const uint8_t *buf, size_t len, size_t base, pk_value **out,
                       pd_error *err) {
    const char *src = pk_ctx_source(ctx);
    legacy L = {0};
    pk_value *magic, *proto, *info, *keys;
    size_t pos = 0, used;
    int rc = -1;
    if (pk_parse(ctx, buf, len, base, NULL, NULL, &magic, &used, err)) goto done;
    pos += used;
    if (magic->kind != PK_BIGINT || magic->n != 10 || memcmp(magic->s, legacy_magic, 10)) {
        pd_fail(err, "%s: not a torch.save stream (wrong magic number)", src);
        goto done;
    }
    if (pk_parse(ctx, buf + pos, len - pos, base + pos, NULL, NULL, &proto, &used, err)) goto done;
    pos += used;
    if (proto->kind != PK_INT || proto->i != 1001) {
        pd_fail(err, "%s: torch.save protocol is not 1001", src);
        goto done;
    }
    if (pk_parse(ctx, buf + pos, len - pos, base + pos, NULL, NULL, &info, &used, err)) goto done;
    pos += used;
    pk_value *le = pk_dict_get(info, "little_endian");
    if (!le || le->kind != PK_BOOL || !le->i) {
        pd_fail(err, "%s: torch.save stream is not little-endian", src);
        goto done;
    }
    if (pk_parse(ctx, buf + pos, len - pos, base + pos, legacy_persid, &L, out, &used, err))
        goto done;
    pos += used;
    if (pk_parse(ctx, buf + pos, len - pos, base + pos, NULL, NULL, &keys, &used, err)) goto done;
    pos += used;
    if (keys->kind != PK_LIST) {
        pd_fail(err, "%s: torch.save storage key list is missing", src);
        goto done;
    }
    for (size_t k = 0; k < keys->n; k++) {
        pk_storage *st = NULL;
        for (int i = 0; i < L.n && keys->items[k]->kind == PK_STR; i++)
            if (!strcmp(L.st[i]->st->key, keys->items[k]->s)) st = L.st[i]->st;
        if (!st || st->data) {
            pd_fail(err, "%s: storage key %zu names no storage of the object", src, k);
            goto done;
        }
        if (len - pos < 8) {
            pd_fail(err, "%s: truncated at storage '%s' (byte %zu)", src, st->key, base + pos);
            goto done;
        }
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | buf[pos + i];
        pos += 8;
        size_t es = (size_t)pk_dtype_size[st->dtype];
        if (n != (uint64_t)st->numel || n > (len - pos) / es) {
            pd_fail(err, "%s: storage '%s' claims %llu elements of %zu bytes; %zu bytes remain and "
                    "the object expects %lld", src, st->key, (unsigned long long)n, es, len - pos,
                    st->numel);
            goto done;
        }
        st->data = buf + pos;
        pos += n * es;
    }
    for (int i = 0; i < L.n; i++)
        if (!L.st[i]->st->data) {
            pd_fail(err, "%s: storage '%s' has no data", src, L.st[i]->st->key);
            goto done;
        }
    rc = 0;
done:
    free(L.st);
    return rc;
}

/* torch.storage._load_from_bytes(b): a storage pickled inside a snapshot. */
static int load_from_bytes(pk_ctx *ctx, void *user, const uint8_t *b, size_t n, pk_value **out,
                           pd_error *err) {
    tf_file *f = user;
    size_t base = b >= f->map && b < f->map + f->len ? (size_t)(b - f->map) : 0;
    if (read_legacy(ctx, b, n, base, out, err)) return -1;
    if ((*out)->kind != PK_STORAGE)
        return pd_fail(err, "%s: _load_from_bytes at byte %zu holds a %s, not a storage",
                       pk_ctx_source(ctx), base, pk_kind_name((*out)->kind));
    return 0;
}

static int zip_persid(pk_ctx *ctx, void *user, pk_value *pid, pk_value **out, pd_error *err) {
    zipctx *z = user;
    tf_file *f = z->f;
    if (storage_pid(ctx, pid, 5, out, err)) return -1;
    pk_storage *st = (*out)->st;
    char name[600];
    snprintf(name, sizeof name, "%sdata/%s", z->prefix, st->key);
    const zip_entry *e = zip_find(&f->zip, name);
    if (!e) return pd_fail(err, "%s: storage '%s' has no zip entry '%s'", f->path, st->key, name);
    if (e->usize / (uint64_t)pk_dtype_size[st->dtype] < (uint64_t)st->numel)
        return pd_fail(err, "%s: zip entry '%s' holds %llu bytes, fewer than the %lld elements "
                       "its storage claims", f->path, name, (unsigned long long)e->usize,
                       st->numel);
    uint8_t *owned;
    if (zip_data(&f->zip, e, &st->data, &owned, err)) return -1;
    if (owned) {
        uint8_t **a = realloc(f->owned, (size_t)(f->n_owned + 1) * sizeof *a);
        if (!a) {
            free(owned);
            return pd_fail(err, "%s: out of memory", f->path);
        }
        f->owned = a;
        f->owned[f->n_owned++] = owned;
    }
    return 0;
}

static int open_zip(tf_file *f, pd_error *err) {
    if (zip_open(&f->zip, f->map, f->len, f->path, err)) return -1;
    zipctx z = {.f = f};
    const zip_entry *pkl = NULL;
    for (int i = 0; i < f->zip.n; i++) {
        const char *nm = f->zip.e[i].name, *slash = strrchr(nm, '/');
        if (!strcmp(slash ? slash + 1 : nm, "data.pkl") && (!slash || slash - nm < 255) &&
            (!slash || !memchr(nm, '/', (size_t)(slash - nm)))) {
            pkl = &f->zip.e[i];
            snprintf(z.prefix, sizeof z.prefix, "%.*s", slash ? (int)(slash - nm + 1) : 0, nm);
            break;
        }
    }
    if (!pkl) return pd_fail(err, "%s: zip archive without a data.pkl (not a torch file)", f->path);
    const uint8_t *data;
    uint8_t *owned;
    if (zip_data(&f->zip, pkl, &data, &owned, err)) return -1;
    size_t used;
    int rc = pk_parse(f->ctx, data, pkl->usize, 0, zip_persid, &z, &f->root, &used, err);
    free(owned);   /* nothing borrows from data.pkl: strings are copied, storages are entries */
    return rc;
}

int tf_open(tf_file *f, const char *path, pd_error *err) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return pd_fail(err, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return pd_fail(err, "%s: not a regular file", path);
    }
    f->len = (size_t)sb.st_size;
    if (f->len < 2) {
        close(fd);
        return pd_fail(err, "%s: too short for a pickle or torch file", path);
    }
    void *p = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return pd_fail(err, "%s: mmap: %s", path, strerror(errno));
    f->map = p;
    if (!tf_sniff(f->map, f->len)) {
        tf_close(f);
        return pd_fail(err, "%s: neither a pickle (protocol 2-5) nor a torch zip archive", path);
    }
    if (!(f->ctx = pk_ctx_new(path))) {
        tf_close(f);
        return pd_fail(err, "%s: out of memory", path);
    }
    pk_ctx_set_load_from_bytes(f->ctx, load_from_bytes, f);
    int rc;
    if (zip_is_zip(f->map, f->len)) {
        f->format = TF_ZIP;
        rc = open_zip(f, err);
    } else if (f->len > 4 && f->map[2] == 0x8a && f->map[3] == 10) {
        /* A stream that opens with LONG1 of 10 bytes: torch.save's magic number. */
        f->format = TF_LEGACY;
        rc = read_legacy(f->ctx, f->map, f->len, 0, &f->root, err);
    } else {
        f->format = TF_PICKLE;
        size_t used;
        rc = pk_parse(f->ctx, f->map, f->len, 0, NULL, NULL, &f->root, &used, err);
    }
    if (rc) tf_close(f);
    return rc;
}

void tf_close(tf_file *f) {
    pk_ctx_free(f->ctx);
    zip_close(&f->zip);
    for (int i = 0; i < f->n_owned; i++) free(f->owned[i]);
    free(f->owned);
    if (f->map) munmap((void *)f->map, f->len);
    memset(f, 0, sizeof *f);
}
