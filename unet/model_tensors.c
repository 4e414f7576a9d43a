/* model_tensors.c — read-only access to a model's tensor table through the public API
 * (pd_model_tensor), so tools outside the library (`pixdiff info --tensors`) can list names and
 * shapes without seeing struct pd_model. */
#include "unet/songunet.h"

const char *pd_model_tensor(const pd_model *m, int i, int shape[4], int *ndim) {
    if (!m || i < 0 || i >= m->n_tensors) return NULL;
    const unet_tensor_info *t = &m->tensors[i];
    int nd = t->ndim < 0 ? 0 : t->ndim > 4 ? 4 : t->ndim;
    for (int k = 0; k < 4; k++) shape[k] = k < nd ? t->shape[k] : 0;
    *ndim = nd;
    return t->name;
}
