/* fuzz_yaml_train — a training config (distill/train_config.c tr_config_load): model section
 * (presets and architecture keys), data, optimizer, EMA, training, output. */
#include "distill/train_config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tr_config c;
    pd_error e = {""};
    int rc = tr_config_load(&c, fuzz_file(data, size, ".yaml"), &e);
    fuzz_check_error(rc, &e);
    if (!rc) tr_config_free(&c);
    return 0;
}
