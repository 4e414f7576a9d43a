/* fuzz_checkpoint — training and SiD checkpoints (distill/checkpoint.c): the embedded YAML
 * config of each kind, then the export path (the model arena bounded by the EMA tensor the file
 * holds; the exported model goes to a scratch file that is removed). */
#include "distill/sid.h"
#include "distill/train.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".ckpt");
    char out[600];
    snprintf(out, sizeof out, "%s.out.safetensors", path);
    pd_error e = {""};
    tr_config tc;
    int rc = tr_checkpoint_config(path, &tc, &e);
    fuzz_check_error(rc, &e);
    if (!rc) {
        tr_config_free(&tc);
        fuzz_check_error(tr_export_checkpoint(path, out, &e), &e);
    }
    sid_config sc;
    rc = sid_checkpoint_config(path, &sc, &e);
    fuzz_check_error(rc, &e);
    if (!rc) {
        sid_config_free(&sc);
        fuzz_check_error(sid_export_checkpoint(path, out, &e), &e);
    }
    remove(out);
    return 0;
}
