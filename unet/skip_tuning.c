/* skip_tuning.c — Skip-Tuning's per-skip factors (docs/algorithms.md §S5.2) in the order the U-Net
 * stores its skips.
 *
 * The paper numbers the k + 1 skips from the bottom (i = 0, the innermost, next to the
 * bottleneck) to the top (i = k, full resolution). SongUNet's decoder pops its skip list last in,
 * first out (EDM `skips.pop()`), so the first skip it consumes, i = 0, is the LAST one the encoder
 * produced, and unet_opts.skip_scale, indexed in production order p (enc conv = 0), gets
 * scale[p] = rho_{k - p}. Checked against scaling one skip by hand in tests/test_skip_tuning.c.
 */
#include "pixdiff.h"
#include <math.h>
#include <string.h>

pd_skip_tuning pd_skip_tuning_default(void) {
    pd_skip_tuning st;
    memset(&st, 0, sizeof st);
    st.rho_bottom = 1;
    st.rho_top = 1;
    st.n_rho = 0;
    st.sigma_lo = 0;
    st.sigma_hi = INFINITY;
    return st;
}

int pd_skip_tuning_scales(const pd_skip_tuning *st, int n_skips, float *scale, pd_error *err) {
    if (!st || !scale) return pd_fail(err, "skip-tuning: NULL argument");
    if (n_skips < 1 || n_skips > PD_SKIP_TUNING_MAX)
        return pd_fail(err, "skip-tuning: %d skips (1..%d supported)", n_skips, PD_SKIP_TUNING_MAX);
    if (isnan(st->sigma_lo) || isnan(st->sigma_hi) || st->sigma_lo < 0 || st->sigma_lo > st->sigma_hi)
        return pd_fail(err, "skip-tuning: sigma window [%g, %g] is empty or invalid", st->sigma_lo,
                       st->sigma_hi);
    int k = n_skips - 1;
    if (st->n_rho) {
        if (st->n_rho != n_skips)
            return pd_fail(err, "skip-tuning: %d rho values given, the U-Net has %d skips", st->n_rho,
                           n_skips);
        for (int i = 0; i < n_skips; i++)
            if (!isfinite(st->rho[i]))
                return pd_fail(err, "skip-tuning: rho[%d] = %g is not finite", i, st->rho[i]);
        for (int p = 0; p < n_skips; p++) scale[p] = (float)st->rho[k - p];
        return 0;
    }
    if (!isfinite(st->rho_bottom) || !isfinite(st->rho_top))
        return pd_fail(err, "skip-tuning: rho_bottom %g and rho_top %g must be finite",
                       st->rho_bottom, st->rho_top);
    /* rho_i = rho_bottom + i (rho_top - rho_bottom)/k; a single skip (k = 0) takes rho_bottom. */
    for (int p = 0; p < n_skips; p++) {
        int i = k - p;
        double rho = k > 0 ? st->rho_bottom + i * (st->rho_top - st->rho_bottom) / k : st->rho_bottom;
        scale[p] = (float)rho;
    }
    return 0;
}
