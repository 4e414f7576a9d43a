/* dataset.h — training data held in memory, and the deterministic order the trainer reads it in.
 *
 * Contract: a ds_dataset is n images [n,C,H,W] in [-1,1] (x = u8/127.5 - 1, docs/algorithms.md §M0) with
 * optional class labels. Fashion-MNIST comes from the gzip IDX files of the Debian package
 * dataset-fashion-mnist, padded 28x28 -> 32x32 with the background value -1 (2 pixels each side,
 * so the model's resolution halves cleanly three times); a PNG folder gives an unlabelled set of
 * same-size images. Missing or corrupt files fail with a message naming the file (and, for
 * Fashion-MNIST, the package to install). The stream order is a pure function of the run seed:
 * global sample g of the run is image perm_e[g mod n] of epoch e = g / n, with perm_e a
 * Fisher-Yates shuffle drawn from Philox(seed, stream DS_STREAM_SHUFFLE + e). So a resumed run
 * reads exactly the batches an uninterrupted one would, whatever the batch boundaries.
 */
#ifndef PD_DATASET_H
#define PD_DATASET_H

#include "pixdiff.h"
#include <stdint.h>

#define DS_FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define DS_FASHION_PACKAGE "dataset-fashion-mnist"
#define DS_STREAM_SHUFFLE 0x5348000000000000ull /* "SH" */

typedef struct ds_dataset {
    int n, C, H, W;
    float *images;            /* [n,C,H,W] in [-1,1], malloc'd */
    uint8_t *labels;          /* [n] class indices, or NULL when unlabelled */
    int n_classes;            /* 10 for Fashion-MNIST, 0 when unlabelled */
    char source[1024];        /* where it came from, for messages and metadata */
} ds_dataset;

/* Fashion-MNIST from dir (NULL: DS_FASHION_DIR): train = 1 the 60000-image train split,
 * 0 the 10000-image t10k split. Images come out [n,1,32,32]. */
int ds_load_fashion_mnist(ds_dataset *ds, const char *dir, int train, pd_error *err);
/* Every PNG in dir (same size, gray or RGB), unlabelled, via core/idx.h's core_png_folder_read. */
int ds_load_png_folder(ds_dataset *ds, const char *dir, pd_error *err);
void ds_free(ds_dataset *ds);

/* The Fashion-MNIST class names in label order, as the models' class_names (CLI-friendly:
 * lower case, no spaces). */
extern const char *const ds_fashion_class_names[10];

/* perm[0..n) = the shuffled order of epoch `epoch` (Fisher-Yates with Philox draws). */
void ds_epoch_permutation(uint32_t *perm, int n, uint64_t seed, long long epoch);

/* Reads the global sample stream; caches one epoch's permutation. */
typedef struct ds_sampler {
    uint32_t *perm;
    int n;
    long long epoch;          /* the epoch perm holds, -1 before the first use */
    uint64_t seed;
} ds_sampler;

int ds_sampler_init(ds_sampler *s, int n, uint64_t seed, pd_error *err);
/* Dataset index of global sample g (g >= 0). Recomputes the permutation on an epoch change, so
 * call it in increasing g for speed (any order is correct). */
int ds_sampler_index(ds_sampler *s, long long g);
void ds_sampler_free(ds_sampler *s);

/* Copies image idx into out [C,H,W], mirrored left-right when flip is set. */
void ds_get(const ds_dataset *ds, float *out, int idx, int flip);

#endif
