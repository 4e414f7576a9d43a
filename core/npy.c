/* npy.c — numpy .npy arrays (pixdiff.h pd_npy_read / pd_npy_write): float32 ('<f4'), C order,
 * rank 1..4. Reading accepts format versions 1.0 (u16 header length), 2.0 and 3.0 (u32); the
 * header is a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...), } that is
 * parsed by hand, strictly. The data must be exactly prod(shape) floats: a truncated file or
 * trailing bytes are errors, checked against the file size before the array is allocated (only
 * regular files are read). Writing emits version 1.0 with the header padded by spaces and a
 * newline so the data starts 64-byte aligned (as numpy does), atomically (tmp + rename).
 */
#include "core/npy.h"
#include "core/util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads '<f4' data raw and needs a little-endian host"
#endif

typedef struct { const char *p, *end; } npy_lex;

static void skip_ws(npy_lex *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        l->p++;
}

static int expect(npy_lex *l, char c) {
    skip_ws(l);
    if (l->p < l->end && *l->p == c) { l->p++; return 0; }
    return -1;
}

/* A Python string literal in single or double quotes (no escapes: numpy never writes any). */
static int quoted(npy_lex *l, char *out, size_t cap) {
    skip_ws(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return -1;
    char q = *l->p++;
    size_t n = 0;
    while (l->p < l->end && *l->p != q) {
        if (n + 1 >= cap) return -1;
        out[n++] = *l->p++;
    }
    out[n] = '\0';
    return l->p < l->end ? (l->p++, 0) : -1;
}

static int parse_header(const char *path, const char *h, size_t len, int shape[4], int *ndim,
                        char descr[16], pd_error *err) {
    npy_lex l = {h, h + len};
    char key[32];
    descr[0] = 0;
    int have = 0, fortran = -1;
    if (expect(&l, '{')) return pd_fail(err, "%s: malformed .npy header", path);
    for (;;) {
        skip_ws(&l);
        if (!expect(&l, '}')) break;
        if (quoted(&l, key, sizeof key) || expect(&l, ':'))
            return pd_fail(err, "%s: malformed .npy header", path);
        skip_ws(&l);
        if (!strcmp(key, "descr")) {
            if (quoted(&l, descr, 16))
                return pd_fail(err, "%s: dtype is not a simple type (need float32 ('<f4'))", path);
            have |= 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (l.end - l.p >= 4 && !memcmp(l.p, "True", 4)) fortran = 1, l.p += 4;
            else if (l.end - l.p >= 5 && !memcmp(l.p, "False", 5)) fortran = 0, l.p += 5;
            else return pd_fail(err, "%s: malformed fortran_order in .npy header", path);
            have |= 2;
        } else if (!strcmp(key, "shape")) {
            if (expect(&l, '(')) return pd_fail(err, "%s: malformed shape in .npy header", path);
            *ndim = 0;
            for (;;) {
                skip_ws(&l);
                if (!expect(&l, ')')) break;
                char *e;
                errno = 0;
                long long d = strtoll(l.p, &e, 10);
                if (e == l.p || errno || d < 0 || d > 0x7fffffff)
                    return pd_fail(err, "%s: malformed shape in .npy header", path);
                l.p = e;
                if (*ndim >= 4)
                    return pd_fail(err, "%s: arrays of rank > 4 are not supported", path);
                shape[(*ndim)++] = (int)d;
                skip_ws(&l);
                if (expect(&l, ',') && (l.p >= l.end || *l.p != ')'))
                    return pd_fail(err, "%s: malformed shape in .npy header", path);
            }
            have |= 4;
        } else {
            return pd_fail(err, "%s: unexpected key '%s' in .npy header", path, key);
        }
        if (expect(&l, ',')) {
            if (expect(&l, '}')) return pd_fail(err, "%s: malformed .npy header", path);
            break;
        }
    }
    if (have != 7) return pd_fail(err, "%s: .npy header lacks descr, fortran_order or shape", path);
    if (fortran)
        return pd_fail(err, "%s: fortran_order arrays not supported, need C order "
                       "(save np.ascontiguousarray(x))", path);
    if (*ndim < 1)
        return pd_fail(err, "%s: rank 0 (scalar) arrays not supported, need rank 1..4", path);
    return 0;
}

int npy_parse(const char *what, const uint8_t *buf, size_t len, char descr[16], int shape[4],
              int *ndim, size_t *data_off, pd_error *err) {
    if (len < 8 || memcmp(buf, "\x93NUMPY", 6)) return pd_fail(err, "%s: not a .npy file (bad magic)", what);
    if (len < 10) return pd_fail(err, "%s: truncated .npy header", what);
    int major = buf[6];
    size_t hlen, pos;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        pos = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return pd_fail(err, "%s: truncated .npy header", what);
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        pos = 12;
    } else {
        return pd_fail(err, "%s: .npy format version %d.%d not supported", what, buf[6], buf[7]);
    }
    if (hlen > len - pos || hlen > (1u << 24)) return pd_fail(err, "%s: truncated .npy header", what);
    char *hdr = malloc(hlen + 1);
    if (!hdr) return pd_fail(err, "%s: out of memory", what);
    memcpy(hdr, buf + pos, hlen);
    hdr[hlen] = '\0';
    int rc = parse_header(what, hdr, hlen, shape, ndim, descr, err);
    free(hdr);
    *data_off = pos + hlen;
    return rc;
}

int pd_npy_read(const char *path, float **data, int shape[4], int *ndim, pd_error *err) {
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    uint8_t *pre = NULL;
    float *x = NULL;
    int rc = -1, s[4] = {0}, nd = 0;
    char descr[16];
    struct stat st;
    if (fstat(fileno(f), &st)) { pd_fail(err, "%s: %s", path, strerror(errno)); goto done; }
    /* The size checks below need a regular file: a pipe or device is refused, not read. */
    if (!S_ISREG(st.st_mode)) { pd_fail(err, "%s: not a regular file", path); goto done; }
    /* The preamble and header: at most 12 + 2^24 bytes, read whole. */
    size_t want = (size_t)st.st_size < 12 + (1u << 24) ? (size_t)st.st_size : 12 + (1u << 24), pos;
    if (!(pre = malloc(want ? want : 1)) || fread(pre, 1, want, f) != want) {
        pd_fail(err, "%s: cannot read .npy header", path);
        goto done;
    }
    if (npy_parse(path, pre, want, descr, s, &nd, &pos, err)) goto done;
    if (strcmp(descr, "<f4")) {
        pd_fail(err, "%s: dtype '%s' not supported, need float32 ('<f4')", path, descr);
        goto done;
    }
    size_t numel = 1;
    for (int i = 0; i < nd; i++)
        if (__builtin_mul_overflow(numel, (size_t)s[i], &numel) || numel > ((size_t)1 << 40)) {
            pd_fail(err, "%s: array too large", path);
            goto done;
        }
    size_t avail = (size_t)st.st_size - pos;
    if (avail != numel * 4) {
        pd_fail(err, "%s: shape needs %zu bytes of float32 data but the file has %zu (%s)", path,
                numel * 4, avail, avail < numel * 4 ? "truncated" : "trailing bytes");
        goto done;
    }
    if (!(x = malloc(numel ? numel * 4 : 4))) { pd_fail(err, "%s: out of memory", path); goto done; }
    if (fseek(f, (long)pos, SEEK_SET) || fread(x, 4, numel, f) != numel) {
        pd_fail(err, "%s: read error (truncated?)", path);
        goto done;
    }
    memcpy(shape, s, sizeof s);
    *ndim = nd;
    *data = x;
    x = NULL;
    rc = 0;
done:
    fclose(f);
    free(pre);
    free(x);
    return rc;
}

size_t npy_header(uint8_t *out, size_t cap, const char *descr, const long long *shape, int ndim) {
    char h[256];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) n += snprintf(h + n, sizeof h - n, "%s%lld", i ? ", " : "", shape[i]);
    n += snprintf(h + n, sizeof h - n, "%s), }", ndim == 1 ? "," : "");
    /* Pad with spaces and end with '\n' so 10 + len is a multiple of 64 (numpy's alignment). */
    int total = (10 + n + 1 + 63) / 64 * 64;
    while (10 + n + 1 < total) h[n++] = ' ';
    h[n++] = '\n';
    if ((size_t)n + 10 > cap) return 0;
    const uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    memcpy(out, pre, 10);
    memcpy(out + 10, h, (size_t)n);
    return (size_t)n + 10;
}

int pd_npy_write(const char *path, const float *data, const int *shape, int ndim, pd_error *err) {
    if (ndim < 1 || ndim > 4) return pd_fail(err, "%s: rank %d not supported (1..4)", path, ndim);
    long long sh[4];
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return pd_fail(err, "%s: negative dimension %d", path, shape[i]);
        numel *= (size_t)shape[i];
        sh[i] = shape[i];
    }
    uint8_t h[320];
    size_t n = npy_header(h, sizeof h, "<f4", sh, ndim);
    core_atomic_file af;
    if (core_atomic_open(&af, path, err)) return -1;
    if (fwrite(h, 1, n, af.f) != n || fwrite(data, 4, numel, af.f) != numel) {
        int e = errno;
        core_atomic_abort(&af);
        return pd_fail(err, "%s: write failed: %s", path, strerror(e));
    }
    return core_atomic_commit(&af, err);
}
