/* safetensors.h — read and write the safetensors format (docs/algorithms.md §M5).
 *
 * Reading validates the header before touching data: N <= 100 MB and 8+N <= file size, known
 * dtypes, prod(shape)*size == END-BEGIN, offsets inside the buffer, contiguous coverage, no
 * duplicate names. F32, F16 and BF16 tensors are converted to float32. Writing is atomic
 * (temporary file, fsync, rename) and pads the header with spaces to an 8-byte boundary.
 */
#ifndef PD_SAFETENSORS_H
#define PD_SAFETENSORS_H

#include "pixdiff.h"
#include <stdio.h>

typedef struct st_tensor {
    char *name;
    int ndim;
    long long shape[8];
    float *data;              /* converted to float32, owned by the st_file; NULL after st_open */
    size_t numel;
    unsigned long long file_offset;   /* of its bytes in the file (st_load) */
    int dtype_size;                   /* 4 (F32) or 2 (F16, BF16) */
    int is_bf16;
} st_tensor;

typedef struct st_file {
    st_tensor *tensors;       /* in header order */
    int n_tensors;
    int *by_name;             /* tensor indices sorted by name (st_read): st_find is a binary
                                 search; NULL in a file built by hand: a linear scan */
    char **meta_keys, **meta_values;   /* __metadata__ (string -> string) */
    int n_meta;
    FILE *fp;                 /* open between st_open and st_free (st_load reads from it) */
    char path[1024];
} st_file;

int st_read(st_file *out, const char *path, pd_error *err);
/* Validates the whole file as st_read does but reads no tensor data (every data is NULL): a model
 * loads its tensors straight into its arena with st_load, so a file is never held twice in
 * memory (issue 17: ADM's 1.18 GB). The file stays open until st_free. */
int st_open(st_file *out, const char *path, pd_error *err);
/* Reads tensor t of an st_open'ed file into dst[0..t->numel), converted to float32. */
int st_load(const st_file *f, const st_tensor *t, float *dst, pd_error *err);
void st_free(st_file *f);
/* O(log n): a file of many tensors is looked up n times while loading (n log n in all). */
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);
/* When f is a pixdiff file of another kind than the one whose metadata carries expected_key, what
 * it is ("a training checkpoint (export its model: …)"); otherwise NULL (file_kind.c). */
const char *st_pixdiff_other_kind(const st_file *f, const char *expected_key);

/* IEEE binary16 and bfloat16 to binary32, exact for every input (also used by convert/). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

/* Writes F32 tensors in the given order. names[i], shapes[i][0..ndims[i]), data[i]. */
int st_write(const char *path, int n, const char *const *names, const int *ndims,
             const long long (*shapes)[8], const float *const *data, int n_meta,
             const char *const *meta_keys, const char *const *meta_values, pd_error *err);

#endif
