/* edm_init.h — EDM's initialisation of a SongUNet for training from scratch.
 *
 * Contract: overwrites every weight and bias of m by its state-dict name, as EDM's SongUNet
 * constructor does (training/networks.py): Xavier-uniform weights, bound sqrt(6/(fan_in+fan_out))
 * times a gain (1e-5 for the last conv of each residual branch `conv1`, the attention output
 * `proj` and the final `aux_conv`, so every block starts close to the identity and the output
 * close to zero; sqrt(0.2) for `qkv`; 1 elsewhere), zero biases, GroupNorm scale 1 and shift 0.
 * Draws come from Philox(seed, TR_STREAM_INIT + tensor index), so the init is reproducible.
 */
#ifndef PD_EDM_INIT_H
#define PD_EDM_INIT_H

#include "unet/songunet.h"

#define TR_STREAM_INIT 0x494E000000000000ull /* "IN" + tensor index */

int tr_init_edm(pd_model *m, uint64_t seed, pd_error *err);

#endif
