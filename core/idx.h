/* idx.h — training-data readers: gzip-compressed IDX files (MNIST / Fashion-MNIST layout) and
 * folders of PNG images. Both return malloc'd buffers the caller frees with free(). */
#ifndef PD_IDX_H
#define PD_IDX_H

#include "pixdiff.h"

/* Reads an IDX file of unsigned bytes (magic 0x00000803 for idx3-ubyte images [n,rows,cols],
 * 0x00000801 for idx1-ubyte labels [n]); gzip-compressed or plain. dims[0..ndim) are the sizes,
 * big-endian in the file; the payload must be exactly prod(dims) bytes. A missing file under
 * /usr/share/datasets names the Debian package that installs it. */
int idx_read_u8(const char *path, uint8_t **data, int dims[4], int *ndim, pd_error *err);

/* Reads every *.png of dir (sorted by name) into [n,C,H,W] floats in [-1,1] (pd_png_read); all
 * images must have the same C, H and W. */
int core_png_folder_read(const char *dir, float **data, int *n, int *C, int *H, int *W,
                         pd_error *err);

#endif
