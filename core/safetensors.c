/* safetensors.c — reads and writes the safetensors format (docs/algorithms.md §M5, safetensors.h).
 *
 * Layout: u64 little-endian N, an N-byte JSON header (possibly padded with trailing spaces), then
 * the data buffer; every tensor's data_offsets [BEGIN, END) are relative to the buffer. The reader
 * validates the whole header before reading any data (the §M5 loader checklist: N <= 100 MB,
 * 8+N <= file size, known dtype, prod(shape)*size == END-BEGIN, END <= buffer size, contiguous
 * coverage of the buffer without holes or overlaps, no duplicate names, __metadata__ string ->
 * string), then converts F32/F16/BF16 to float32: all of it (st_read), or tensor by tensor into
 * the caller's memory (st_open + st_load, so a model's weights are held once). The header is
 * JSON, read by pixdiff's strict reader (core/json.c; surrogate pairs as Python's json.dumps
 * writes them included). The writer emits F32 only, pads the header with spaces to an 8-byte
 * boundary and writes atomically. The host is assumed little-endian, like the format.
 */
#include "core/safetensors.h"
#include "core/util.h"
#include "core/yamldoc.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads raw little-endian data and needs a little-endian host"
#endif

#define ST_MAX_HEADER (100LL * 1000 * 1000)   /* the reference reader's cap (docs/algorithms.md §M5) */

static const struct { const char *name; int size; } st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2},
    {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8},
};
#define ST_N_DTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

/* IEEE binary16 -> binary32, exact for every input (normals, subnormals, inf, NaN). */
float st_f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0x1f) u = s | 0x7f800000u | (m << 13);
    else if (e) u = s | ((e + 112) << 23) | (m << 13);     /* rebias 15 -> 127 */
    else {
        float f = (float)m * 0x1p-24f;                       /* subnormal: m * 2^-24, exact */
        memcpy(&u, &f, 4);
        u |= s;
    }
    float out;
    memcpy(&out, &u, 4);
    return out;
}

/* bfloat16 is the top half of a binary32. */
float st_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float out;
    memcpy(&out, &u, 4);
    return out;
}

/* One tensor entry of the header while validating. */
typedef struct { const char *name; int dtype, index; unsigned long long begin, end; } st_entry;

static int entry_cmp(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* qsort has no context argument; st_read sets this before sorting its name index. */
static _Thread_local const st_tensor *sort_tensors;

static int index_cmp(const void *a, const void *b) {
    return strcmp(sort_tensors[*(const int *)a].name, sort_tensors[*(const int *)b].name);
}

/* A non-negative JSON integer (unquoted scalar). */
static int parse_u64(const yd_node *n, unsigned long long *out) {
    if (!n || n->kind != YD_SCALAR || n->quoted || n->scalar[0] < '0' || n->scalar[0] > '9')
        return -1;
    char *end;
    errno = 0;
    *out = strtoull(n->scalar, &end, 10);
    return errno || *end ? -1 : 0;
}

/* Checks one tensor entry against the checklist; fills e and the st_tensor's shape. */
static int check_entry(const char *path, const yd_doc *doc, const char *name, const yd_node *v,
                       unsigned long long buf_len, st_entry *e, st_tensor *t, pd_error *err) {
    static const char *const keys[] = {"dtype", "shape", "data_offsets", NULL};
    if (v->kind != YD_MAP)
        return pd_fail(err, "%s: tensor '%s': header entry is not a JSON object", path, name);
    if (yd_check_keys(doc, v, keys, name, err)) return -1;
    const yd_node *dt = yd_get(v, "dtype"), *sh = yd_get(v, "shape"), *of = yd_get(v, "data_offsets");
    if (!dt || !sh || !of)
        return pd_fail(err, "%s: tensor '%s': needs dtype, shape and data_offsets", path, name);
    if (dt->kind != YD_SCALAR)
        return pd_fail(err, "%s: tensor '%s': dtype is not a string", path, name);
    e->name = name;
    e->dtype = -1;
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (!strcmp(dt->scalar, st_dtypes[i].name)) e->dtype = i;
    if (e->dtype < 0)
        return pd_fail(err, "%s: tensor '%s': unknown dtype '%.32s'", path, name, dt->scalar);
    if (sh->kind != YD_SEQ)
        return pd_fail(err, "%s: tensor '%s': shape is not a list", path, name);
    if (sh->n > 8)
        return pd_fail(err, "%s: tensor '%s': %d dimensions (at most 8 supported)", path, name,
                       sh->n);
    unsigned long long numel = 1, bytes;
    t->ndim = sh->n;
    for (int i = 0; i < sh->n; i++) {
        unsigned long long d;
        if (parse_u64(sh->items[i], &d) || d > (1ULL << 62))
            return pd_fail(err, "%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                           name, i);
        if (__builtin_mul_overflow(numel, d, &numel))
            return pd_fail(err, "%s: tensor '%s': shape overflows", path, name);
        t->shape[i] = (long long)d;
    }
    if (of->kind != YD_SEQ || of->n != 2 || parse_u64(of->items[0], &e->begin) ||
        parse_u64(of->items[1], &e->end))
        return pd_fail(err, "%s: tensor '%s': data_offsets must be [BEGIN, END]", path, name);
    if (e->begin > e->end || e->end > buf_len)
        return pd_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] outside the %llu-byte "
                       "data buffer", path, name, e->begin, e->end, buf_len);
    if (__builtin_mul_overflow(numel, (unsigned long long)st_dtypes[e->dtype].size, &bytes) ||
        bytes != e->end - e->begin)
        return pd_fail(err, "%s: tensor '%s': shape has %llu %s elements (%llu bytes) but "
                       "data_offsets span %llu bytes", path, name, numel,
                       st_dtypes[e->dtype].name, numel * st_dtypes[e->dtype].size,
                       e->end - e->begin);
    t->numel = (size_t)numel;
    return 0;
}

static int read_meta(st_file *out, const char *path, const yd_node *m, pd_error *err) {
    if (m->kind != YD_MAP)
        return pd_fail(err, "%s: __metadata__ is not a JSON object", path);
    out->meta_keys = calloc(m->n + 1, sizeof *out->meta_keys);
    out->meta_values = calloc(m->n + 1, sizeof *out->meta_values);
    if (!out->meta_keys || !out->meta_values) return pd_fail(err, "%s: out of memory", path);
    for (int i = 0; i < m->n; i++) {
        const yd_node *v = m->items[i];
        if (v->kind != YD_SCALAR || !v->quoted)
            return pd_fail(err, "%s: __metadata__ value of '%s' is not a string", path, m->keys[i]);
        out->meta_keys[i] = strdup(m->keys[i]);
        out->meta_values[i] = strdup(v->scalar);
        out->n_meta = i + 1;
        if (!out->meta_keys[i] || !out->meta_values[i]) return pd_fail(err, "%s: out of memory", path);
    }
    return 0;
}

/* Reads tensor t's bytes into dst and converts them to float32 in place: 16-bit values fill the
 * first half of dst; converting from the last element down never overwrites an input that is
 * still needed (out[i] covers in[2i..]). */
int st_load(const st_file *f, const st_tensor *t, float *dst, pd_error *err) {
    size_t bytes = t->numel * (size_t)t->dtype_size;
    if (!bytes) return 0;
    if (!f->fp) return pd_fail(err, "%s: tensor '%s': file not open", f->path, t->name);
    if (fseeko(f->fp, (off_t)t->file_offset, SEEK_SET) || fread(dst, 1, bytes, f->fp) != bytes)
        return pd_fail(err, "%s: tensor '%s': file truncated", f->path, t->name);
    if (t->dtype_size == 4) return 0;
    const uint16_t *in = (const uint16_t *)dst;
    for (size_t i = t->numel; i-- > 0;) {
        uint16_t h = in[i];
        dst[i] = t->is_bf16 ? st_bf16_to_f32(h) : st_f16_to_f32(h);
    }
    return 0;
}

/* Every tensor into its own float32 buffer, in file order (sequential reads). */
static int read_data(st_file *out, const st_entry *sorted, int n, pd_error *err) {
    for (int k = 0; k < n; k++) {
        st_tensor *t = &out->tensors[sorted[k].index];
        if (!(t->data = core_alloc(t->numel * sizeof(float))))
            return pd_fail(err, "%s: tensor '%s': out of memory (%zu elements)", out->path,
                           t->name, t->numel);
        if (st_load(out, t, t->data, err)) return -1;
    }
    return 0;
}

/* st_open, and with sorted_out the entries in file order (st_read reads in that order). */
static int open_file(st_file *out, const char *path, st_entry **sorted_out, pd_error *err) {

    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    char *hdr = NULL;
    yd_doc doc = {0};
    st_entry *ents = NULL;
    int rc = -1;
    struct stat stt;
    unsigned char n8[8];
    if (fstat(fileno(f), &stt)) { pd_fail(err, "%s: %s", path, strerror(errno)); goto done; }
    unsigned long long fsize = (unsigned long long)stt.st_size, N = 0;
    if (fsize < 8 || fread(n8, 1, 8, f) != 8) {
        pd_fail(err, "%s: %llu bytes is too short for a safetensors file", path, fsize);
        goto done;
    }
    for (int i = 7; i >= 0; i--) N = N << 8 | n8[i];
    if (N > ST_MAX_HEADER) {
        pd_fail(err, "%s: header length %llu exceeds the 100 MB limit (not a safetensors file?)",
                path, N);
        goto done;
    }
    if (8 + N > fsize) {
        pd_fail(err, "%s: header length %llu exceeds the file size %llu (truncated?)", path, N,
                fsize);
        goto done;
    }
    if (!(hdr = malloc(N + 1))) { pd_fail(err, "%s: out of memory", path); goto done; }
    if (fread(hdr, 1, N, f) != N) { pd_fail(err, "%s: cannot read header", path); goto done; }
    hdr[N] = '\0';
    if (strlen(hdr) != N) { pd_fail(err, "%s: header contains NUL bytes", path); goto done; }
    const char *p = hdr;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (*p != '{') { pd_fail(err, "%s: header is not a JSON object", path); goto done; }
    char src[600];
    snprintf(src, sizeof src, "%s (JSON header)", path);
    if (yd_load_json(&doc, p, src, err)) goto done;
    const yd_node *root = doc.root;
    if (root->kind != YD_MAP) { pd_fail(err, "%s: header is not a JSON object", path); goto done; }

    unsigned long long buf_len = fsize - 8 - N;
    int nt = 0;
    out->tensors = calloc(root->n + 1, sizeof *out->tensors);
    ents = calloc(root->n + 1, sizeof *ents);
    if (!out->tensors || !ents) { pd_fail(err, "%s: out of memory", path); goto done; }
    for (int i = 0; i < root->n; i++) {
        if (!strcmp(root->keys[i], "__metadata__")) {
            if (read_meta(out, path, root->items[i], err)) goto done;
            continue;
        }
        st_tensor *t = &out->tensors[nt];
        if (check_entry(path, &doc, root->keys[i], root->items[i], buf_len, &ents[nt], t, err))
            goto done;
        if (!(t->name = strdup(root->keys[i]))) { pd_fail(err, "%s: out of memory", path); goto done; }
        ents[nt].name = t->name;
        ents[nt].index = nt;
        out->n_tensors = ++nt;
    }
    /* The name index (core/json.c already rejected duplicate keys). */
    if (!(out->by_name = malloc((nt + 1) * sizeof *out->by_name))) {
        pd_fail(err, "%s: out of memory", path);
        goto done;
    }
    for (int k = 0; k < nt; k++) out->by_name[k] = k;
    sort_tensors = out->tensors;
    qsort(out->by_name, nt, sizeof *out->by_name, index_cmp);
    /* Contiguous coverage: sorted by BEGIN, each tensor starts where the previous ended and the
     * last ends at the buffer's end (zero-byte tensors sit anywhere on that chain). */
    qsort(ents, nt, sizeof *ents, entry_cmp);
    unsigned long long pos = 0;
    for (int k = 0; k < nt; k++) {
        if (ents[k].begin < pos) {
            pd_fail(err, "%s: tensors '%s' and '%s' overlap in the data buffer", path,
                    ents[k - 1].name, ents[k].name);
            goto done;
        }
        if (ents[k].begin > pos) {
            pd_fail(err, "%s: hole in the data buffer: bytes [%llu, %llu) before tensor '%s' "
                    "belong to no tensor", path, pos, ents[k].begin, ents[k].name);
            goto done;
        }
        pos = ents[k].end;
    }
    if (pos != buf_len) {
        pd_fail(err, "%s: data buffer has %llu bytes but the tensors cover %llu", path, buf_len,
                pos);
        goto done;
    }
    for (int k = 0; k < nt; k++) {
        const char *dt = st_dtypes[ents[k].dtype].name;
        if (strcmp(dt, "F32") && strcmp(dt, "F16") && strcmp(dt, "BF16")) {
            pd_fail(err, "%s: tensor '%s': dtype %s not supported (pixdiff reads F32, F16 and "
                    "BF16)", path, ents[k].name, dt);
            goto done;
        }
    }
    for (int k = 0; k < nt; k++) {
        st_tensor *t = &out->tensors[ents[k].index];
        t->file_offset = 8 + N + ents[k].begin;
        t->dtype_size = st_dtypes[ents[k].dtype].size;
        t->is_bf16 = !strcmp(st_dtypes[ents[k].dtype].name, "BF16");
    }
    out->fp = f;
    f = NULL;
    rc = 0;
done:
    if (f) fclose(f);
    free(hdr);
    yd_free(&doc);
    if (rc) {
        free(ents);
        st_free(out);
    } else if (sorted_out) {
        *sorted_out = ents;
    } else {
        free(ents);
    }
    return rc;
}

int st_open(st_file *out, const char *path, pd_error *err) {
    return open_file(out, path, NULL, err);
}

int st_read(st_file *out, const char *path, pd_error *err) {
    st_entry *sorted = NULL;
    if (open_file(out, path, &sorted, err)) return -1;
    int rc = read_data(out, sorted, out->n_tensors, err);
    free(sorted);
    fclose(out->fp);
    out->fp = NULL;
    if (rc) st_free(out);
    return rc;
}

void st_free(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_tensors; i++) {
        free(f->tensors[i].name);
        core_free(f->tensors[i].data);
    }
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->by_name);
    free(f->meta_keys);
    free(f->meta_values);
    if (f->fp) fclose(f->fp);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    if (!f->by_name) {   /* an st_file built by hand (no index): a plain scan */
        for (int i = 0; i < f->n_tensors; i++)
            if (f->tensors[i].name && !strcmp(f->tensors[i].name, name)) return &f->tensors[i];
        return NULL;
    }
    int lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, r = strcmp(f->tensors[f->by_name[mid]].name, name);
        if (!r) return &f->tensors[f->by_name[mid]];
        if (r < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

/* ------------------------------------------------------------------ writing */

typedef struct { char *s; size_t len, cap; int oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Decodes one UTF-8 code point; returns its length, or 0 if the bytes are not valid UTF-8. */
static int utf8_next(const unsigned char *s, uint32_t *cp) {
    int len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 :
              (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len) return 0;
    uint32_t c = len == 1 ? s[0] : s[0] & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return len;
}

/* A JSON string literal. Control characters, and the code points YAML may not carry raw
 * (DEL, C1 controls, U+FFFE/U+FFFF), are \u-escaped, so a YAML reader (libyaml) reads back
 * the same string as core/json.c does. */
static int sb_json(sbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t c;
        int len = utf8_next(p, &c);
        if (!len) return -1;
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; sb_add(b, esc, 2); }
        else if (c == '\n') sb_str(b, "\\n");
        else if (c == '\t') sb_str(b, "\\t");
        else if (c == '\r') sb_str(b, "\\r");
        else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0xfffe || c == 0xffff) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)c);
            sb_str(b, esc);
        } else sb_add(b, (const char *)p, len);
        p += len;
    }
    sb_add(b, "\"", 1);
    return 0;
}

int st_write(const char *path, int n, const char *const *names, const int *ndims,
             const long long (*shapes)[8], const float *const *data, int n_meta,
             const char *const *meta_keys, const char *const *meta_values, pd_error *err) {
    sbuf h = {0};
    char num[64];
    unsigned long long off = 0;
    int rc = -1;
    sb_str(&h, "{");
    if (n_meta > 0) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            for (int j = 0; j < i; j++)
                if (!strcmp(meta_keys[i], meta_keys[j])) {
                    pd_fail(err, "%s: duplicate metadata key '%s'", path, meta_keys[i]);
                    goto done;
                }
            if (i) sb_str(&h, ",");
            if (sb_json(&h, meta_keys[i]) || (sb_str(&h, ":"), sb_json(&h, meta_values[i]))) {
                pd_fail(err, "%s: metadata '%s' is not valid UTF-8", path, meta_keys[i]);
                goto done;
            }
        }
        sb_str(&h, "}");
    }
    for (int i = 0; i < n; i++) {
        if (!names[i][0] || !strcmp(names[i], "__metadata__") || ndims[i] < 0 || ndims[i] > 8) {
            pd_fail(err, "%s: tensor '%s': invalid name or rank %d", path, names[i], ndims[i]);
            goto done;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j])) {
                pd_fail(err, "%s: duplicate tensor name '%s'", path, names[i]);
                goto done;
            }
        unsigned long long numel = 1;
        if (n_meta > 0 || i) sb_str(&h, ",");
        if (sb_json(&h, names[i])) {
            pd_fail(err, "%s: tensor name is not valid UTF-8", path);
            goto done;
        }
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < ndims[i]; d++) {
            if (shapes[i][d] < 0) {
                pd_fail(err, "%s: tensor '%s': negative dimension", path, names[i]);
                goto done;
            }
            numel *= (unsigned long long)shapes[i][d];
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", shapes[i][d]);
            sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", off, off + 4 * numel);
        sb_str(&h, num);
        off += 4 * numel;
    }
    sb_str(&h, "}");
    while (h.len % 8) sb_str(&h, " ");   /* data starts 8-byte aligned (8 + N ≡ 0 mod 8) */
    if (h.oom) { pd_fail(err, "%s: out of memory", path); goto done; }
    if ((long long)h.len > ST_MAX_HEADER) { pd_fail(err, "%s: header too large", path); goto done; }

    core_atomic_file af;
    if (core_atomic_open(&af, path, err)) goto done;
    unsigned char n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (unsigned char)((unsigned long long)h.len >> (8 * i));
    int ok = fwrite(n8, 1, 8, af.f) == 8 && fwrite(h.s, 1, h.len, af.f) == h.len;
    for (int i = 0; i < n && ok; i++) {
        size_t numel = 1;
        for (int d = 0; d < ndims[i]; d++) numel *= (size_t)shapes[i][d];
        /* An empty tensor's data may be NULL, which fwrite may not be given (UBSan). */
        ok = !numel || fwrite(data[i], sizeof(float), numel, af.f) == numel;
    }
    if (!ok) {
        core_atomic_abort(&af);
        pd_fail(err, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    rc = core_atomic_commit(&af, err);
done:
    free(h.s);
    return rc;
}
