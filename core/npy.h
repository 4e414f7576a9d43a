/* npy.h — the .npy header, shared by the .npy files (npy.c) and the .npy entries of .npz
 * archives (npz.c). */
#ifndef PD_NPY_H
#define PD_NPY_H

#include "pixdiff.h"
#include <stddef.h>
#include <stdint.h>

/* Parses the preamble and header of the .npy bytes buf[0..len): descr (e.g. "<f8"), C order
 * required, rank 1..4 (shape[0..ndim)), *data_off the offset of the data. `what` names the
 * file or entry in errors. The caller checks descr and the data's length. */
int npy_parse(const char *what, const uint8_t *buf, size_t len, char descr[16], int shape[4],
              int *ndim, size_t *data_off, pd_error *err);
/* Writes a version 1.0 preamble and header for a C-order array of dtype descr into out (padded
 * so the data starts 64-byte aligned, as numpy does); returns its length, 0 if cap is too small. */
size_t npy_header(uint8_t *out, size_t cap, const char *descr, const long long *shape, int ndim);

#endif
