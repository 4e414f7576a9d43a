/* fashion.h — where the Fashion-MNIST files of a split live (core/fashion_mnist.c). The loader
 * itself is public (pd_fashion_mnist_load in pixdiff.h); this header adds what the reference
 * statistics cache (metrics/refstats.c) needs to fingerprint the data: the two file paths. */
#ifndef PD_FASHION_H
#define PD_FASHION_H

#include "pixdiff.h"

#define FASHION_MNIST_PACKAGE "dataset-fashion-mnist"

/* The images and labels paths of a split: dir (NULL or "": PD_FASHION_MNIST_DIR) +
 * "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz". */
void fashion_mnist_files(const char *dir, int train, char *images, char *labels, size_t cap);

#endif
