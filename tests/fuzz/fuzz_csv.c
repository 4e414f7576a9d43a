/* fuzz_csv — pd_csv_read (core/csv.c): header, quoted fields, numbers, ragged rows. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_error e = {""};
    pd_csv t;
    int rc = pd_csv_read(fuzz_file(data, size, ".csv"), &t, &e);
    fuzz_check_error(rc, &e);
    if (!rc) {
        (void)pd_csv_column(&t, "images");
        pd_csv_free(&t);
    }
    return 0;
}
