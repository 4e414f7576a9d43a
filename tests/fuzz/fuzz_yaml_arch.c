/* fuzz_yaml_arch — an architecture config (`pixdiff init --config`, unet/config_presets.c
 * pd_unet_config_from_yaml), then the arena it would need, built without allocating it. */
#include "fuzz_common.h"
#include "unet/songunet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_unet_config c = pd_unet_config_default();
    pd_error e = {""};
    int rc = pd_unet_config_from_yaml(&c, fuzz_file(data, size, ".yaml"), &e);
    fuzz_check_error(rc, &e);
    if (rc) return 0;
    pd_model *m = NULL;
    rc = unet_model_alloc_within(&m, &c, 0, &e);
    fuzz_check_error(rc, &e);
    if (!rc) pd_model_free(m);
    return 0;
}
