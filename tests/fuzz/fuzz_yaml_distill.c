/* fuzz_yaml_distill — a SiD distillation config (distill/sid_config.c sid_config_load). */
#include "distill/sid_config.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sid_config c;
    pd_error e = {""};
    int rc = sid_config_load(&c, fuzz_file(data, size, ".yaml"), &e);
    fuzz_check_error(rc, &e);
    if (!rc) sid_config_free(&c);
    return 0;
}
