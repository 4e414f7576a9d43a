/* fuzz_yamldoc — core/yamldoc.c and core/json.c on their own: any text through yd_load_string
 * (libyaml: alias budget, depth limit, duplicate keys) and through core/json.c on the raw bytes
 * (no terminating NUL, so an over-read is a sanitizer finding; nan/inf admitted for odd sizes),
 * then the typed getters on the root. Differential: where core/json.c and the libyaml path
 * (yd_load_json_libyaml) both accept a text, their trees must be the same (tests/yd_tree_cmp.h),
 * else abort. Texts holding U+0085, U+2028 or U+2029 are left out of that comparison: YAML counts
 * them as line breaks and folds them inside quoted strings, JSON keeps them as characters. */
#include "core/yamldoc.h"
#include "fuzz_common.h"
#include "tests/yd_tree_cmp.h"

static void getters(yd_doc *d) {
    pd_error e = {""};
    long long i;
    double x;
    int b, ints[8], n;
    char s[64];
    const yd_node *r = d->root;
    static const char *const known[] = {"a", "b", NULL};
    yd_check_keys(d, r, known, "root", &e);
    yd_int(d, r, "a", &i, &e);
    yd_double(d, r, "a", &x, &e);
    yd_bool(d, r, "b", &b, &e);
    yd_str(d, r, "b", s, sizeof s, &e);
    yd_int_list(d, r, "a", ints, 8, &n, &e);
}

static int has_yaml_break(const char *t) {
    return strstr(t, "\xc2\x85") || strstr(t, "\xe2\x80\xa8") || strstr(t, "\xe2\x80\xa9");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    yd_doc y, j, l;
    pd_error e = {""};
    int rc = yd_load_string(&y, text, "<fuzz>", &e);
    fuzz_check_error(rc, &e);
    if (!rc) {
        getters(&y);
        yd_free(&y);
    }
    e.msg[0] = 0;
    int rj = yd_load_json_n(&j, (const char *)data, size, "<fuzz>", size & 1 ? YD_JSON_NONFINITE : 0,
                            &e);
    fuzz_check_error(rj, &e);
    if (!rj) {
        getters(&j);
        if (strlen(text) == size && !has_yaml_break(text) &&
            !yd_load_json_libyaml(&l, text, "<fuzz>", &e)) {
            char why[600];
            if (!yd_same_tree(j.root, l.root, "$", why, sizeof why)) {
                fprintf(stderr, "core/json.c and libyaml differ: %s\n", why);
                abort();
            }
            yd_free(&l);
        }
        yd_free(&j);
    }
    free(text);
    return 0;
}
