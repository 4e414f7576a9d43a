/* fuzz_idx — idx_read_u8 (core/idx.c): IDX headers, plain or through gzip. */
#include "core/idx.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_error e = {""};
    uint8_t *x = NULL;
    int dims[4], nd;
    int rc = idx_read_u8(fuzz_file(data, size, ".idx.gz"), &x, dims, &nd, &e);
    fuzz_check_error(rc, &e);
    free(x);
    return 0;
}
