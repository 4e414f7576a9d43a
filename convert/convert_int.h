/* convert_int.h — the converter's internals (convert/): the list of tensors to write, each
 * either a reference into a pickled torch storage or a float32 array from a safetensors input,
 * and the metadata strings. convert.c owns the public calls; edm_net.c reads EDM networks;
 * state_dict.c reads plain state dicts (torch .pth, safetensors with --config).
 */
#ifndef PD_CONVERT_INT_H
#define PD_CONVERT_INT_H

#include "core/safetensors.h"
#include "core/torchfile.h"
#include "pixdiff.h"

typedef struct cv_tensor {
    char *name;
    int ndim;
    long long shape[8];
    const pk_tensor *pt;        /* from a pickle (any float dtype, any strides), or NULL */
    const float *f32;           /* from a safetensors input (contiguous float32) */
} cv_tensor;

#define CV_MAX_META 4

struct pd_converted {
    char path[512];             /* the input, for messages */
    tf_file tf;
    int have_tf;
    st_file st;
    int have_st;
    cv_tensor *t;
    int n, cap;
    char *meta_k[CV_MAX_META], *meta_v[CV_MAX_META];
    int n_meta;
    char summary[512];
    size_t n_params;
};

int cv_add_tensor(pd_converted *c, const char *name, const pk_tensor *pt, const float *f32,
                  int ndim, const long long *shape, pd_error *err);
const cv_tensor *cv_find(const pd_converted *c, const char *name);
int cv_set_meta(pd_converted *c, const char *key, const char *value, pd_error *err);
/* Copies t into out (numel floats) as float32, following its strides; non-finite values and
 * non-float dtypes fail naming the tensor. */
int cv_tensor_f32(const cv_tensor *t, float *out, pd_error *err);
long long cv_numel(const cv_tensor *t);

/* The network of an EDM/SiD snapshot (the `key` entry of the pickled dict, or the pickled
 * network itself): tensors with their state-dict names and the pixdiff.config. */
int cv_edm_network(pd_converted *c, const pk_value *root, const pd_convert_params *p,
                   pd_error *err);
/* A pickled state dict (name -> tensor), e.g. a torch .pth: Inception weights, or EDM names
 * with p->config. */
int cv_pickled_state_dict(pd_converted *c, const pk_value *root, const pd_convert_params *p,
                          pd_error *err);
/* A safetensors state dict with EDM's names and the architecture in p->config. */
int cv_safetensors_state_dict(pd_converted *c, const pd_convert_params *p, pd_error *err);
/* Checks the tensors against the config's network (names, shapes, resample filters) and sets
 * the model metadata; used for state dicts given --config. */
int cv_config_model(pd_converted *c, const pd_convert_params *p, pd_error *err);
/* Checks every "*.resample_filter" buffer equals outer(f, f) / sum(f)^2 for the config's f. */
int cv_check_resample_filters(const pd_converted *c, const int *f, int nf, pd_error *err);

#endif
