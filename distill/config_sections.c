/* config_sections.c — shared readers of the run configs' YAML (see config_sections.h), on top
 * of the strict yamldoc getters (which already name the key for a wrongly typed value).
 */
#include "distill/config_sections.h"

#include <math.h>
#include <stdio.h>

int cs_real(const yd_doc *d, const yd_node *m, const char *key, double *out, double lo,
            int lo_open, double hi, int hi_open, const char *section, pd_error *err) {
    if (yd_double(d, m, key, out, err)) return -1;
    const yd_node *v = yd_get(m, key);
    if (!v) return 0;
    double x = *out;
    if (!(isfinite(x) && (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi)))
        return pd_fail(err, "%s:%d: %s.%s: %g is outside %c%g, %g%c", d->source, v->line, section,
                       key, x, lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    return 0;
}

int cs_count(const yd_doc *d, const yd_node *m, const char *key, long long *out, long long lo,
             long long hi, const char *section, pd_error *err) {
    if (yd_int(d, m, key, out, err)) return -1;
    const yd_node *v = yd_get(m, key);
    if (!v || (*out >= lo && *out <= hi)) return 0;
    if (hi == CS_NO_MAX)
        return pd_fail(err, "%s:%d: %s.%s: %lld is below the minimum %lld", d->source, v->line,
                       section, key, *out, lo);
    return pd_fail(err, "%s:%d: %s.%s: %lld is outside [%lld, %lld]", d->source, v->line,
                   section, key, *out, lo, hi);
}

int cs_betas(const yd_doc *d, const yd_node *m, const char *key, double *beta1, double *beta2,
             pd_error *err) {
    double b[2] = {*beta1, *beta2};
    int nb = 2;
    if (yd_double_list(d, m, key, b, 2, &nb, err)) return -1;
    const yd_node *v = yd_get(m, key);
    if (!v) return 0;
    if (nb != 2 || !(b[0] >= 0 && b[0] < 1 && b[1] >= 0 && b[1] < 1))
        return pd_fail(err, "%s:%d: optimizer.%s: expected two numbers in [0, 1)", d->source,
                       v->line, key);
    *beta1 = b[0];
    *beta2 = b[1];
    return 0;
}

int cs_ema(const yd_doc *d, const yd_node *s, double *halflife_images, double *rampup,
           pd_error *err) {
    static const char *const keys[] = {"halflife_images", "rampup", NULL};
    return yd_check_keys(d, s, keys, "ema", err) ||
                   cs_real(d, s, "halflife_images", halflife_images, 0, 0, 1e15, 0, "ema", err) ||
                   cs_real(d, s, "rampup", rampup, 0, 0, 1e6, 0, "ema", err)
               ? -1
               : 0;
}

int cs_output(const yd_doc *d, const yd_node *s, char *dir, size_t cap, pd_error *err) {
    static const char *const keys[] = {"dir", NULL};
    if (yd_check_keys(d, s, keys, "output", err) || yd_str(d, s, "dir", dir, cap, err)) return -1;
    if (!dir[0]) return pd_fail(err, "%s:%d: output.dir: must not be empty", d->source, s->line);
    return 0;
}
