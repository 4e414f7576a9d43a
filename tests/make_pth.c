/* make_pth.c — writes a float32 state dict as a legacy torch.save stream, for the tests that need
 * a torch file larger than a committed fixture (e2e_faults.sh kills `pixdiff convert` while it
 * reads and writes one of ~90 MB). No python needed:
 *
 *   make_pth --inception OUT.pth          the synthetic FID Inception weights (metrics/inception.h)
 *                                         and a made-up fc layer, as pytorch-fid's file has one
 *   make_pth IN.safetensors OUT.pth       any float32 safetensors file, tensors in header order
 *
 * The stream is what torch/serialization.py's _legacy_save writes (the layout core/torchfile.c
 * reads): five protocol-2 pickles — the magic number, protocol version 1001, a sys-info dict,
 * collections.OrderedDict([(name, torch._utils._rebuild_tensor_v2(storage, 0, size, stride,
 * False, OrderedDict())), ...]) with each storage replaced by the persistent id ('storage',
 * torch.FloatStorage, key, 'cpu', numel, None), and the list of keys — then per key the int64
 * element count and the raw little-endian floats. Exit 0 on success, 1 on failure. */
#include "core/safetensors.h"
#include "metrics/inception.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *out;

static void bytes(const void *p, size_t n) { fwrite(p, 1, n, out); }
static void op(int c) { fputc(c, out); }
static void u32(uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bytes(b, 4);
}
static void str(const char *s) {   /* BINUNICODE */
    op('X');
    u32((uint32_t)strlen(s));
    bytes(s, strlen(s));
}
static void global(const char *module, const char *name) {
    fprintf(out, "c%s\n%s\n", module, name);
}
static void integer(long long v) {   /* BININT when it fits, else LONG1 with 8 bytes */
    if (v >= INT32_MIN && v <= INT32_MAX) {
        op('J');
        u32((uint32_t)(int32_t)v);
        return;
    }
    op(0x8a);
    op(8);
    for (int i = 0; i < 8; i++) op((int)(((unsigned long long)v >> (8 * i)) & 0xff));
}
static void proto(void) {
    op(0x80);
    op(2);
}

static int write_pth(const st_tensor *ts, int n_tensors, const char *path) {
    out = fopen(path, "wb");
    if (!out) return perror(path), 1;
    /* 1. magic number 0x1950a86a20f9469cfc6c as LONG1 */
    static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    proto();
    op(0x8a);
    op(10);
    bytes(magic, 10);
    op('.');
    /* 2. protocol version */
    proto();
    integer(1001);
    op('.');
    /* 3. sys info */
    proto();
    op('}');
    op('(');
    str("protocol_version");
    integer(1001);
    str("little_endian");
    op(0x88);
    op('u');
    op('.');
    /* 4. the state dict */
    proto();
    global("collections", "OrderedDict");
    op(')');
    op('R');
    op('(');
    char key[32];
    for (int t = 0; t < n_tensors; t++) {
        const st_tensor *x = &ts[t];
        snprintf(key, sizeof key, "%d", t);
        str(x->name);
        global("torch._utils", "_rebuild_tensor_v2");
        op('(');
        op('(');
        str("storage");
        global("torch", "FloatStorage");
        str(key);
        str("cpu");
        integer((long long)x->numel);
        op('N');
        op('t');
        op('Q');           /* BINPERSID */
        integer(0);        /* storage offset */
        op('(');
        for (int d = 0; d < x->ndim; d++) integer(x->shape[d]);
        op('t');
        op('(');
        long long stride = 1, strides[8];
        for (int d = x->ndim - 1; d >= 0; d--) strides[d] = stride, stride *= x->shape[d];
        for (int d = 0; d < x->ndim; d++) integer(strides[d]);
        op('t');
        op(0x89);          /* requires_grad False */
        global("collections", "OrderedDict");
        op(')');
        op('R');
        op('t');
        op('R');
    }
    op('u');
    op('.');
    /* 5. the storage keys, then each storage */
    proto();
    op(']');
    op('(');
    for (int t = 0; t < n_tensors; t++) {
        snprintf(key, sizeof key, "%d", t);
        str(key);
    }
    op('e');
    op('.');
    for (int t = 0; t < n_tensors; t++) {
        int64_t n = (int64_t)ts[t].numel;
        bytes(&n, 8);
        bytes(ts[t].data, ts[t].numel * sizeof(float));
    }
    int bad = ferror(out);
    bad |= fclose(out) != 0;
    if (bad) fprintf(stderr, "make_pth: %s: write failed\n", path);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: make_pth --inception|IN.safetensors OUT.pth\n");
        return 1;
    }
    pd_error err = {0};
    const char *in = argv[1];
    char tmp[4096];
    if (!strcmp(in, "--inception")) {   /* the synthetic weights, through a safetensors file */
        snprintf(tmp, sizeof tmp, "%s.st", argv[2]);
        if (mt_inception_synthetic_write(tmp, &err)) {
            fprintf(stderr, "make_pth: %s\n", err.msg);
            return 1;
        }
        in = tmp;
    }
    st_file f;
    if (st_read(&f, in, &err)) {
        fprintf(stderr, "make_pth: %s\n", err.msg);
        return 1;
    }
    /* pytorch-fid's file also holds the 1008-class logits layer (fc), which the converter uses to
     * recognise it; the synthetic weights stop at pool3, so add one with made-up values. */
    int n = f.n_tensors, fc = in == tmp;
    st_tensor *ts = calloc((size_t)n + 2, sizeof *ts);
    float *w = fc ? calloc(1008 * 2048 + 1008, sizeof *w) : NULL;
    if (!ts || (fc && !w)) {
        fprintf(stderr, "make_pth: out of memory\n");
        return 1;
    }
    memcpy(ts, f.tensors, (size_t)n * sizeof *ts);
    if (fc) {
        for (int i = 0; i < 1008 * 2048 + 1008; i++) w[i] = (float)(i % 13 - 6) * 1e-3f;
        ts[n++] = (st_tensor){.name = "fc.weight", .ndim = 2, .shape = {1008, 2048},
                              .data = w, .numel = 1008 * 2048};
        ts[n++] = (st_tensor){.name = "fc.bias", .ndim = 1, .shape = {1008},
                              .data = w + 1008 * 2048, .numel = 1008};
    }
    int rc = write_pth(ts, n, argv[2]);
    free(ts);
    free(w);
    st_free(&f);
    if (in == tmp) remove(tmp);
    return rc;
}
