/* fuzz_predictor — pd_amed_predictor_load (samplers/amed_predictor.c): an AMED predictor file,
 * its pixdiff.amed JSON and its twelve tensors. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_error e = {""};
    pd_amed_predictor *p = NULL;
    int rc = pd_amed_predictor_load(&p, fuzz_file(data, size, ".safetensors"), &e);
    fuzz_check_error(rc, &e);
    if (!rc) pd_amed_predictor_free(p);
    return 0;
}
