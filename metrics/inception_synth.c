/* inception_synth.c — synthetic FID Inception weights and images for tests and benchmarks
 * (inception.h): every value comes from an integer hash, so tests/fixtures/
 * make_inception_fixture.py builds the same network in torch without the 24M parameters being
 * stored anywhere. Convolution i (in the architecture's order) draws stream 8i for its weight
 * (He-uniform: u sqrt(6 / fan_in)) and 8i + 1..4 for its BatchNorm (weight 1 + u/8, bias u/8,
 * running_mean u/8, running_var 1 + u/2), u uniform in [-1, 1) with 24 bits, exact in float32.
 * The activations stay of order 1 through the network (features of mean about 2). Not a
 * trained network: its FID values mean nothing beyond checking the computation.
 */
#include "core/util.h"
#include "metrics/inception.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* lowbias32 (C. Wellons' integer hash). */
static uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static uint32_t hash_u32(uint32_t stream, uint32_t j) {
    return mix32(j * 0x9E3779B9u + mix32(stream + 1));
}

static float hash_uniform(uint32_t stream, uint32_t j) {
    return (float)((double)(hash_u32(stream, j) >> 8) / 16777216.0 * 2.0 - 1.0);
}

void mt_synthetic_image(uint8_t *u8, int k, int n) {
    for (int j = 0; j < n; j++) u8[j] = (uint8_t)(hash_u32(1000 + (uint32_t)k, (uint32_t)j) >> 24);
}

int mt_inception_synthetic(st_file *f, const mt_inception *arch) {
    memset(f, 0, sizeof *f);
    f->tensors = calloc((size_t)5 * arch->n_convs, sizeof(st_tensor));
    if (!f->tensors) return -1;
    static const char *const suf[5] = {"conv.weight", "bn.weight", "bn.bias", "bn.running_mean",
                                       "bn.running_var"};
    for (int i = 0; i < arch->n_convs; i++) {
        const inc_conv *c = &arch->conv[i];
        const int fan = c->C * c->kh * c->kw;
        const float scale = (float)sqrt(6.0 / fan);
        for (int s = 0; s < 5; s++) {
            st_tensor *t = &f->tensors[f->n_tensors];
            char name[96];
            snprintf(name, sizeof name, "%s.%s", c->name, suf[s]);
            t->ndim = s == 0 ? 4 : 1;
            t->shape[0] = c->OC;
            if (s == 0) t->shape[1] = c->C, t->shape[2] = c->kh, t->shape[3] = c->kw;
            t->numel = s == 0 ? (size_t)c->OC * fan : (size_t)c->OC;
            t->name = strdup(name);
            t->data = core_alloc(sizeof(float) * t->numel);
            if (!t->name || !t->data) {
                free(t->name);
                core_free(t->data);
                st_free(f);
                return -1;
            }
            f->n_tensors++;
            for (size_t j = 0; j < t->numel; j++) {
                float u = hash_uniform((uint32_t)(8 * i + s), (uint32_t)j);
                t->data[j] = s == 0 ? u * scale : s == 1 ? 1.0f + u * 0.125f
                           : s == 4 ? 1.0f + u * 0.5f : u * 0.125f;
            }
        }
    }
    return 0;
}

int mt_inception_synthetic_write(const char *path, pd_error *err) {
    mt_inception arch;
    mt_inception_arch(&arch);
    st_file w;
    if (mt_inception_synthetic(&w, &arch)) return pd_fail(err, "%s: out of memory", path);
    const int n = w.n_tensors;
    const char **names = malloc(sizeof(char *) * n);
    int *nd = malloc(sizeof(int) * n);
    long long(*shapes)[8] = calloc((size_t)n, sizeof *shapes);
    const float **data = malloc(sizeof(float *) * n);
    int rc = -1;
    if (!names || !nd || !shapes || !data) {
        pd_fail(err, "%s: out of memory", path);
    } else {
        for (int i = 0; i < n; i++) {
            names[i] = w.tensors[i].name;
            nd[i] = w.tensors[i].ndim;
            memcpy(shapes[i], w.tensors[i].shape, sizeof shapes[i]);
            data[i] = w.tensors[i].data;
        }
        const char *key = "pixdiff.inception", *val = "synthetic (metrics/inception_synth.c): not trained";
        rc = st_write(path, n, names, nd, (const long long(*)[8])shapes, data, 1, &key, &val, err);
    }
    free(names), free(nd), free(shapes), free(data);
    st_free(&w);
    return rc;
}
