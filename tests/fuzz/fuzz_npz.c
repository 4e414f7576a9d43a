/* fuzz_npz — pd_npz_stats_read (core/npz.c): FID statistics archives (zip of .npy entries). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_feature_stats s;
    memset(&s, 0, sizeof s);
    pd_error e = {""};
    int rc = pd_npz_stats_read(fuzz_file(data, size, ".npz"), &s, 0, &e);
    fuzz_check_error(rc, &e);
    if (!rc) pd_feature_stats_free(&s);
    return 0;
}
