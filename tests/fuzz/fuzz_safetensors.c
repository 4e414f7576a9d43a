/* fuzz_safetensors — core/safetensors.c st_read on arbitrary bytes, then every lookup a loader
 * does: st_find by each name (and an absent one), st_meta, st_pixdiff_other_kind. */
#include "core/safetensors.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_error e = {""};
    st_file f;
    int rc = st_read(&f, fuzz_file(data, size, ".safetensors"), &e);
    fuzz_check_error(rc, &e);
    if (rc) return 0;
    for (int i = 0; i < f.n_tensors; i++)
        if (st_find(&f, f.tensors[i].name) != &f.tensors[i]) abort();
    if (st_find(&f, "\x01 absent")) abort();
    (void)st_meta(&f, "pixdiff.config");
    (void)st_pixdiff_other_kind(&f, "pixdiff.config");
    st_free(&f);
    return 0;
}
