/* edm_init.c — EDM's SongUNet initialisation, applied by tensor name (see edm_init.h).
 *
 * Why not keep pd_model_create's 1/sqrt(fan_in) weights: with the residual branches and the
 * output conv near zero, the initial network is close to "each block passes its input through",
 * D starts near c_skip x, and the EDM loss starts at its well-conditioned value; EDM trains every
 * published model from this init.
 */
#include "distill/edm_init.h"
#include "core/rng.h"

#include <math.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int tr_init_edm(pd_model *m, uint64_t seed, pd_error *err) {
    for (int i = 0; i < m->n_tensors; i++) {
        const unet_tensor_info *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (ends_with(t->name, ".bias")) {
            memset(p, 0, t->numel * sizeof(float));
            continue;
        }
        if (!ends_with(t->name, ".weight"))
            return pd_fail(err, "tensor '%s': no EDM init rule for it", t->name);
        if (t->ndim == 1 && strstr(t->name, "norm")) {
            for (size_t k = 0; k < t->numel; k++) p[k] = 1.0f;
            continue;
        }
        if (t->ndim != 2 && t->ndim != 4)
            return pd_fail(err, "tensor '%s': no EDM init rule for a %d-D weight", t->name, t->ndim);
        /* fan_in = in * k * k, fan_out = out * k * k (EDM weight_init for Linear and Conv2d). */
        double kk = t->ndim == 4 ? (double)t->shape[2] * t->shape[3] : 1.0;
        double fan_in = t->shape[1] * kk, fan_out = t->shape[0] * kk;
        double gain = 1.0;
        if (ends_with(t->name, ".conv1.weight") || ends_with(t->name, ".proj.weight") ||
            ends_with(t->name, "_aux_conv.weight"))
            gain = 1e-5;                       /* init_zero */
        else if (ends_with(t->name, ".qkv.weight"))
            gain = sqrt(0.2);                  /* init_attn */
        double bound = sqrt(6.0 / (fan_in + fan_out)) * gain;
        rng_randu(p, t->numel, seed, TR_STREAM_INIT + (uint64_t)i);
        for (size_t k = 0; k < t->numel; k++) p[k] = (float)(bound * (2.0 * p[k] - 1.0));
    }
    return 0;
}
