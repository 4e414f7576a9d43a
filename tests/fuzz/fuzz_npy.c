/* fuzz_npy — pd_npy_read (core/npy.c): the .npy header dictionary and the data size check. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_error e = {""};
    float *x = NULL;
    int shape[4], nd;
    int rc = pd_npy_read(fuzz_file(data, size, ".npy"), &x, shape, &nd, &e);
    fuzz_check_error(rc, &e);
    free(x);
    return 0;
}
