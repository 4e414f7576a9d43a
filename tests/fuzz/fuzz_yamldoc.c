/* fuzz_yamldoc — core/yamldoc.c on its own: any text through yd_load_string and yd_load_json
 * (alias budget, depth limit, duplicate keys), then the typed getters on the root. */
#include "core/yamldoc.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    for (int json = 0; json < 2; json++) {
        yd_doc d;
        pd_error e = {""};
        int rc = json ? yd_load_json(&d, text, "<fuzz>", &e) : yd_load_string(&d, text, "<fuzz>", &e);
        fuzz_check_error(rc, &e);
        if (rc) continue;
        long long i;
        double x;
        int b, ints[8], n;
        char s[64];
        const yd_node *r = d.root;
        static const char *const known[] = {"a", "b", NULL};
        yd_check_keys(&d, r, known, "root", &e);
        yd_int(&d, r, "a", &i, &e);
        yd_double(&d, r, "a", &x, &e);
        yd_bool(&d, r, "b", &b, &e);
        yd_str(&d, r, "b", s, sizeof s, &e);
        yd_int_list(&d, r, "a", ints, 8, &n, &e);
        yd_free(&d);
    }
    free(text);
    return 0;
}
