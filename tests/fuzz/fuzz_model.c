/* fuzz_model — pd_model_load (unet/model.c): a safetensors model file, its pixdiff.config JSON
 * checked and its tensors matched against the configured SongUNet or classifier. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_error e = {""};
    pd_model *m = NULL;
    int rc = pd_model_load(&m, fuzz_file(data, size, ".safetensors"), &e);
    fuzz_check_error(rc, &e);
    if (!rc) pd_model_free(m);
    return 0;
}
