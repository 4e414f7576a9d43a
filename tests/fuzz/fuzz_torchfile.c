/* fuzz_torchfile — the readers of `pixdiff convert` (core/torchfile.c tf_open_buffer): a pickle
 * (EDM snapshot), a legacy torch.save stream or a torch.save zip archive, through the restricted
 * pickle reader (core/pickle.c) and the zip reader (core/zip.c). */
#include "core/torchfile.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tf_file f;
    pd_error e = {""};
    int rc = tf_open_buffer(&f, data, size, "<fuzz>", &e);
    fuzz_check_error(rc, &e);
    if (!rc) tf_close(&f);
    return 0;
}
