/* fuzz_model_config — the pixdiff.config JSON of a model file on its own: the input is the
 * metadata value of an otherwise empty safetensors file, so every mutation reaches the config
 * parser, the validation and the arena bound (unet_model_alloc_within) of pd_model_load. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The value becomes a JSON string: escape what JSON needs; NUL ends it (as the reader would). */
    size_t cap = 64 + 6 * size, n = 0;
    char *h = malloc(cap + 16);
    n += snprintf(h + 8, cap, "{\"__metadata__\":{\"pixdiff.config\":\"");
    for (size_t i = 0; i < size && data[i]; i++) {
        unsigned char c = data[i];
        if (c == '"' || c == '\\') n += snprintf(h + 8 + n, cap - n, "\\%c", c);
        else if (c < 0x20) n += snprintf(h + 8 + n, cap - n, "\\u%04x", c);
        else h[8 + n++] = (char)c;
    }
    n += snprintf(h + 8 + n, cap - n, "\"}}");
    for (int i = 0; i < 8; i++) h[i] = (char)((unsigned long long)n >> (8 * i));
    pd_error e = {""};
    pd_model *m = NULL;
    int rc = pd_model_load(&m, fuzz_file((const uint8_t *)h, n + 8, ".safetensors"), &e);
    free(h);
    fuzz_check_error(rc, &e);
    if (!rc) pd_model_free(m);
    return 0;
}
