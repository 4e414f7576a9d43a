/* denoiser_net.h — the network denoiser's constructor without the model-kind check, for the other
 * object built on the same network: the one-step generator (unet/generator_net.c), whose model is
 * refused by pd_denoiser_from_model because a generator is not a denoiser. Internal to unet/.
 */
#ifndef PD_UNET_DENOISER_NET_H
#define PD_UNET_DENOISER_NET_H

#include "pixdiff.h"

/* pd_denoiser_from_model for a model of any denoising kind ("denoiser" or "generator"). */
int net_denoiser_create(pd_denoiser **out, pd_model *m, int res, pd_error *err);
/* The model's file name without its directory, or "random weights" for a created model. */
const char *net_model_file(const pd_model *m);

#endif
