/* fashion_mnist.c — the Fashion-MNIST loader shared by training (distill/dataset.c) and the
 * metrics' reference statistics (metrics/refstats.c): gzip IDX files of the Debian package
 * dataset-fashion-mnist, checked (3-D u8 images [n,28,28], 1-D u8 labels [n] with the same n,
 * labels in 0..9) and converted to [n,1,32,32] floats x = u8/127.5 - 1 (docs/algorithms.md §M0), padded
 * 28 -> 32 with the background value -1 (2 pixels each side, so a 32-pixel model halves cleanly
 * three times). Missing or corrupt files fail naming the file and the package.
 */
#include "core/fashion.h"
#include "core/idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FASHION_SIDE 28
#define FASHION_PAD 2   /* 28 + 2*2 = 32 */

void fashion_mnist_files(const char *dir, int train, char *images, char *labels, size_t cap) {
    if (!dir || !*dir) dir = PD_FASHION_MNIST_DIR;
    const char *split = train ? "train" : "t10k";
    snprintf(images, cap, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(labels, cap, "%s/%s-labels-idx1-ubyte.gz", dir, split);
}

/* Fails with the package hint appended: the usual cause of a missing or unreadable file is that
 * dataset-fashion-mnist is not installed (or was only partly downloaded). */
static int fashion_fail(pd_error *err, const char *what) {
    return pd_fail(err, "%s (Fashion-MNIST comes from the Debian package %s: "
                        "`sudo apt-get install %s`, or `make deps`)",
                   what, FASHION_MNIST_PACKAGE, FASHION_MNIST_PACKAGE);
}

int pd_fashion_mnist_load(const char *dir, int train, float **images, uint8_t **labels, int *n_out,
                          pd_error *err) {
    *images = NULL;
    if (labels) *labels = NULL;
    *n_out = 0;
    char ipath[1100], lpath[1100];
    fashion_mnist_files(dir, train, ipath, lpath, sizeof ipath);

    /* Name the missing file ourselves, so the message is right whatever the IDX reader says. */
    const char *paths[2] = {ipath, lpath};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            char what[2400];
            snprintf(what, sizeof what, "%s: %s", paths[i], strerror(errno));
            return fashion_fail(err, what);
        }
    }

    uint8_t *img = NULL, *lab = NULL;
    int idims[4] = {0}, ldims[4] = {0}, indim = 0, lndim = 0;
    pd_error sub = {{0}};
    char what[2400] = "";
    if (idx_read_u8(ipath, &img, idims, &indim, &sub) != 0) {
        snprintf(what, sizeof what, "%s", sub.msg);
        return fashion_fail(err, what);
    }
    if (idx_read_u8(lpath, &lab, ldims, &lndim, &sub) != 0) {
        free(img);
        snprintf(what, sizeof what, "%s", sub.msg);
        return fashion_fail(err, what);
    }
    if (indim != 3 || idims[1] != FASHION_SIDE || idims[2] != FASHION_SIDE || idims[0] <= 0)
        snprintf(what, sizeof what, "%s: corrupt: expected u8 images [n,28,28], got %d dims",
                 ipath, indim);
    else if (lndim != 1 || ldims[0] != idims[0])
        snprintf(what, sizeof what, "%s: corrupt: expected %d labels to match %s", lpath,
                 idims[0], ipath);
    else
        for (int i = 0; i < ldims[0]; i++)
            if (lab[i] > 9) {
                snprintf(what, sizeof what, "%s: corrupt: label %d of item %d is not in 0..9",
                         lpath, lab[i], i);
                break;
            }
    if (what[0]) {
        free(img);
        free(lab);
        return fashion_fail(err, what);
    }

    int n = idims[0], S = FASHION_SIDE + 2 * FASHION_PAD;
    float *x = malloc((size_t)n * S * S * sizeof(float));
    if (!x) {
        free(img);
        free(lab);
        return pd_fail(err, "%s: out of memory for %d images", ipath, n);
    }
    /* x = u8/127.5 - 1 (docs/algorithms.md §M0); the 2-pixel border takes the background value -1, which
     * is what a 0 (black) Fashion-MNIST pixel maps to. */
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *o = x + (size_t)i * S * S;
        const uint8_t *s = img + (size_t)i * FASHION_SIDE * FASHION_SIDE;
        for (int k = 0; k < S * S; k++) o[k] = -1.0f;
        for (int r = 0; r < FASHION_SIDE; r++)
            for (int c = 0; c < FASHION_SIDE; c++)
                o[(r + FASHION_PAD) * S + c + FASHION_PAD] =
                    (float)(s[r * FASHION_SIDE + c] / 127.5 - 1.0);
    }
    free(img);
    *images = x;
    if (labels) *labels = lab;
    else free(lab);
    *n_out = n;
    return 0;
}
