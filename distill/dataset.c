/* dataset.c — Fashion-MNIST (gzip IDX) and PNG-folder loaders, and the seeded epoch shuffle.
 *
 * Fashion-MNIST is read and checked by core/fashion_mnist.c (pd_fashion_mnist_load: 3-D u8
 * images [n,28,28], 1-D u8 labels [n] with the same n, labels in 0..9; anything else is reported
 * as corrupt, naming the file and the package). The shuffle
 * is Fisher-Yates driven by Philox4x32 blocks keyed by the run seed with the epoch in the stream
 * word of the counter, so it needs no state beyond (seed, epoch).
 */
#include "distill/dataset.h"
#include "core/idx.h"
#include "core/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ds_fashion_class_names[10] = {
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle-boot",
};

void ds_free(ds_dataset *ds) {
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* The loading and its checks live in core/fashion_mnist.c (shared with the metrics' reference
 * statistics); this wraps the arrays as a labelled ds_dataset. */
int ds_load_fashion_mnist(ds_dataset *ds, const char *dir, int train, pd_error *err) {
    memset(ds, 0, sizeof *ds);
    if (!dir || !*dir) dir = DS_FASHION_DIR;
    float *x = NULL;
    uint8_t *lab = NULL;
    int n = 0;
    if (pd_fashion_mnist_load(dir, train, &x, &lab, &n, err)) return -1;
    ds->n = n;
    ds->C = 1;
    ds->H = ds->W = 32;
    ds->images = x;
    ds->labels = lab;
    ds->n_classes = 10;
    snprintf(ds->source, sizeof ds->source, "fashion-mnist:%s:%s", dir, train ? "train" : "t10k");
    return 0;
}

int ds_load_png_folder(ds_dataset *ds, const char *dir, pd_error *err) {
    memset(ds, 0, sizeof *ds);
    float *x = NULL;
    int n = 0, C = 0, H = 0, W = 0;
    if (core_png_folder_read(dir, &x, &n, &C, &H, &W, err) != 0) return -1;
    if (n <= 0) {
        free(x);
        return pd_fail(err, "%s: no PNG images found", dir);
    }
    ds->n = n;
    ds->C = C;
    ds->H = H;
    ds->W = W;
    ds->images = x;
    ds->labels = NULL;
    ds->n_classes = 0;
    snprintf(ds->source, sizeof ds->source, "png-folder:%s", dir);
    return 0;
}

void ds_epoch_permutation(uint32_t *perm, int n, uint64_t seed, long long epoch) {
    for (int i = 0; i < n; i++) perm[i] = (uint32_t)i;
    uint64_t stream = DS_STREAM_SHUFFLE + (uint64_t)epoch;
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t r[4];
    /* Draw k (k = 0, 1, ...) is word k%4 of block k/4. j = floor(r (i+1) / 2^32) is uniform on
     * 0..i up to a bias below 2^-32 * n, far under anything a training run can notice. */
    long long k = 0;
    for (int i = n - 1; i > 0; i--, k++) {
        if ((k & 3) == 0) {
            uint64_t blk = (uint64_t)k >> 2;
            uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)stream,
                               (uint32_t)(stream >> 32)};
            rng_philox4x32(r, ctr, key);
        }
        uint32_t j = (uint32_t)(((uint64_t)r[k & 3] * (uint64_t)(i + 1)) >> 32);
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int ds_sampler_init(ds_sampler *s, int n, uint64_t seed, pd_error *err) {
    memset(s, 0, sizeof *s);
    if (n <= 0) return pd_fail(err, "dataset is empty");
    s->perm = malloc((size_t)n * sizeof(uint32_t));
    if (!s->perm) return pd_fail(err, "out of memory for a %d-image shuffle", n);
    s->n = n;
    s->seed = seed;
    s->epoch = -1;
    return 0;
}

int ds_sampler_index(ds_sampler *s, long long g) {
    long long e = g / s->n;
    if (e != s->epoch) {
        ds_epoch_permutation(s->perm, s->n, s->seed, e);
        s->epoch = e;
    }
    return (int)s->perm[g % s->n];
}

void ds_sampler_free(ds_sampler *s) {
    if (!s) return;
    free(s->perm);
    memset(s, 0, sizeof *s);
}

void ds_get(const ds_dataset *ds, float *out, int idx, int flip) {
    size_t plane = (size_t)ds->H * ds->W;
    const float *src = ds->images + (size_t)idx * ds->C * plane;
    if (!flip) {
        memcpy(out, src, ds->C * plane * sizeof(float));
        return;
    }
    for (int c = 0; c < ds->C; c++)
        for (int r = 0; r < ds->H; r++) {
            const float *a = src + c * plane + (size_t)r * ds->W;
            float *b = out + c * plane + (size_t)r * ds->W;
            for (int q = 0; q < ds->W; q++) b[q] = a[ds->W - 1 - q];
        }
}
