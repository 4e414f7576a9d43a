/* net_ops.c — the table of architectures (unet/net_ops.h). */
#include "unet/net_ops.h"
#include "unet/unet_arch.h"
#include "classifier/classifier.h"

static int clf_validate(const pd_unet_config *c, const net_ids *ids, pd_error *err) {
    (void)ids;
    return clf_config_validate(c, err);
}

static const net_ops ops[NET_COUNT] = {
    [NET_SONGUNET] = {"SongUNet", songunet_validate, unet_arch_build, unet_arch_free, unet_gflops, 1},
    [NET_ADM] = {"DhariwalUNet", adm_validate, unet_arch_build, unet_arch_free, unet_gflops, 1},
    [NET_CLASSIFIER] = {"classifier", clf_validate, clf_build, clf_arch_free, clf_gflops_res, 0},
};

const net_ops *net_ops_of(net_arch a) { return &ops[a]; }
