/* fuzz_yaml_sweep — a sweep config (sweep/sweep_config.c sw_spec_load): samplers, option
 * variants, NFE lists, metrics, labels, reuse folders; parsing and validation only. */
#include "fuzz_common.h"
#include "sweep/sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sw_spec s;
    pd_error e = {""};
    fuzz_check_error(sw_spec_load(&s, fuzz_file(data, size, ".yaml"), &e), &e);
    return 0;
}
