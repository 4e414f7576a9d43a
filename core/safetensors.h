/* safetensors.h — read and write the safetensors format (models.md §5).
 *
 * Reading validates the header before touching data: N <= 100 MB and 8+N <= file size, known
 * dtypes, prod(shape)*size == END-BEGIN, offsets inside the buffer, contiguous coverage, no
 * duplicate names. F32, F16 and BF16 tensors are converted to float32. Writing is atomic
 * (temporary file, fsync, rename) and pads the header with spaces to an 8-byte boundary.
 */
#ifndef PD_SAFETENSORS_H
#define PD_SAFETENSORS_H

#include "pixdiff.h"

typedef struct st_tensor {
    char *name;
    int ndim;
    long long shape[8];
    float *data;              /* converted to float32, owned by the st_file */
    size_t numel;
} st_tensor;

typedef struct st_file {
    st_tensor *tensors;
    int n_tensors;
    char **meta_keys, **meta_values;   /* __metadata__ (string -> string) */
    int n_meta;
} st_file;

int st_read(st_file *out, const char *path, pd_error *err);
void st_free(st_file *f);
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
