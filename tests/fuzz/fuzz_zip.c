/* fuzz_zip — core/zip.c on its own: the central directory, then every entry's data (stored or
 * inflated, CRC checked). */
#include "core/zip.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zip_archive z;
    pd_error e = {""};
    int rc = zip_open(&z, data, size, "<fuzz>", &e);
    fuzz_check_error(rc, &e);
    if (rc) return 0;
    for (int i = 0; i < z.n; i++) {
        const uint8_t *d;
        uint8_t *owned = NULL;
        fuzz_check_error(zip_data(&z, &z.e[i], &d, &owned, &e), &e);
        free(owned);
    }
    zip_close(&z);
    return 0;
}
