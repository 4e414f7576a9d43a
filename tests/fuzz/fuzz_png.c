/* fuzz_png — core/png.c pd_png_read (pixels, through libpng with its limits set) and
 * core/png_text.c pd_png_read_text (the chunk walker) on the same bytes. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, ".png");
    pd_error e = {""};
    float *x = NULL;
    int C, H, W;
    int rc = pd_png_read(path, &x, &C, &H, &W, &e);
    fuzz_check_error(rc, &e);
    free(x);
    char **k, **v;
    int n;
    rc = pd_png_read_text(path, &k, &v, &n, &e);
    fuzz_check_error(rc, &e);
    if (!rc) pd_png_text_free(k, v, n);
    return 0;
}
