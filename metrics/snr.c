/* snr.c — per-frequency SNR analysis of a data set under a noise schedule (pd_snr_spectra_*,
 * pd_snr_write_csv; docs/algorithms.md §M3.1 and §M3.3).
 *
 * The data are brought to the analysis resolution `size` (average pooling down, nearest
 * upsampling up: an upsampled image is what a model sampling at m x its trained size is asked
 * to draw) and their radially averaged power spectrum (spectrum.c, |F|^2 / N^2 per frequency)
 * is taken at size and after p x p average pooling for each requested p, in chunks so that
 * memory stays bounded. Noise: x = x0 + sigma n with white n of unit variance per pixel has power
 * sigma^2 in every bin in this normalisation; p x p pooling divides its variance, hence its power
 * per bin, by p^2. So the SNR at bin k of the pooled image is p^2 P_p(k) / sigma^2 and, per pixel,
 * pooling adds 2 ln p to the logSNR (docs/algorithms.md §M3.1). A shifted schedule multiplies sigma by
 * d/base (§M3.3), lowering every SNR by (d/base)^2: for d = 2 base it undoes one 2x2 pooling.
 */
#include "core/util.h"
#include "metrics/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SNR_CHUNK 128

void pd_snr_spectra_free(pd_snr_spectra *s) {
    if (!s) return;
    for (int i = 0; i < PD_SNR_MAX_POOLS; i++) free(s->power[i]);
    memset(s, 0, sizeof *s);
}

int pd_snr_spectra_compute(pd_snr_spectra *s, const float *x, int n, int C, int N, int size,
                           const int *pools, int n_pools, pd_error *err) {
    memset(s, 0, sizeof *s);
    if (n < 1 || C < 1 || N < 2) return pd_fail(err, "SNR: no data (%d images of %dx%d)", n, N, N);
    if (size <= 0) size = N;
    if (size % N && N % size)
        return pd_fail(err, "SNR: --size %d: the data are %dx%d; one size must divide the other", size, N, N);
    if (n_pools < 1 || n_pools > PD_SNR_MAX_POOLS)
        return pd_fail(err, "SNR: %d pooling factors (1..%d)", n_pools, PD_SNR_MAX_POOLS);
    for (int i = 0; i < n_pools; i++)
        if (pools[i] < 1 || size % pools[i] || size / pools[i] < 2)
            return pd_fail(err, "SNR: pooling %d does not divide size %d into at least 2x2 pixels",
                           pools[i], size);
    s->size = size;
    s->n_pools = n_pools;
    for (int i = 0; i < n_pools; i++) {
        s->pools[i] = pools[i];
        s->bins[i] = pd_spectrum_bins(size / pools[i]);
        s->power[i] = calloc((size_t)s->bins[i], sizeof(double));
        if (!s->power[i]) {
            pd_snr_spectra_free(s);
            return pd_fail(err, "SNR: out of memory");
        }
    }
    const size_t big = (size_t)SNR_CHUNK * C * (size_t)(size > N ? size : N) * (size > N ? size : N);
    float *resized = malloc(sizeof(float) * big), *pooled = malloc(sizeof(float) * big);
    int rc = resized && pooled ? 0 : pd_fail(err, "SNR: out of memory for %dx%d images", size, size);
    for (int i0 = 0; !rc && i0 < n; i0 += SNR_CHUNK) {
        int c = n - i0 < SNR_CHUNK ? n - i0 : SNR_CHUNK;
        const float *xi = x + (size_t)i0 * C * N * N, *at = xi;
        if (size > N) mt_upsample_nearest(resized, xi, c, C, N, size / N), at = resized;
        else if (size < N) rc = pd_avg_pool(resized, xi, c, C, N, N, N / size, err), at = resized;
        for (int p = 0; !rc && p < n_pools; p++) {
            const float *in = at;
            if (pools[p] > 1) {
                rc = pd_avg_pool(pooled, at, c, C, size, size, pools[p], err);
                in = pooled;
            }
            if (!rc) rc = mt_spectrum_accumulate(in, c, C, size / pools[p], s->power[p], err);
        }
    }
    free(resized);
    free(pooled);
    if (rc) {
        pd_snr_spectra_free(s);
        return -1;
    }
    for (int p = 0; p < n_pools; p++)
        for (int k = 0; k < s->bins[p]; k++) s->power[p][k] /= n;
    return 0;
}

int pd_snr_write_csv(const char *path, const pd_snr_spectra *s, const pd_snr_schedule *sched,
                     int n_sched, pd_error *err) {
    for (int j = 0; j < n_sched; j++) {
        int m = sched[j].n;
        while (m > 0 && sched[j].sigma[m - 1] == 0) m--;
        if (m < 1) return pd_fail(err, "SNR: schedule '%s' has no nonzero sigma", sched[j].name);
        for (int i = 0; i < m; i++)
            if (!(sched[j].sigma[i] > 0) || !isfinite(sched[j].sigma[i]))
                return pd_fail(err, "SNR: schedule '%s': sigma %d is %g", sched[j].name, i, sched[j].sigma[i]);
    }
    core_atomic_file af;
    if (core_atomic_open(&af, path, err)) return -1;
    fprintf(af.f, "schedule,step,t,sigma,logsnr,pool,logsnr_pooled,bin,freq,data_power,log10_snr\n");
    for (int j = 0; j < n_sched; j++) {
        int m = sched[j].n;
        while (m > 0 && sched[j].sigma[m - 1] == 0) m--;
        for (int i = 0; i < m; i++) {
            double sg = sched[j].sigma[i], t = m > 1 ? 1.0 - (double)i / (m - 1) : 1.0;
            double lsnr = -2.0 * log(sg);
            for (int p = 0; p < s->n_pools; p++) {
                int pp = s->pools[p], side = s->size / pp;
                for (int k = 1; k < s->bins[p]; k++) {
                    double pw = s->power[p][k];
                    double l10 = pw > 0 ? log10((double)pp * pp * pw / (sg * sg)) : -INFINITY;
                    fprintf(af.f, "%s,%d,%.6g,%.9g,%.9g,%d,%.9g,%d,%.6g,%.9g,%.9g\n", sched[j].name,
                            i, t, sg, lsnr, pp, lsnr + 2.0 * log((double)pp), k, (double)k / side,
                            pw, l10);
                }
            }
        }
    }
    if (ferror(af.f)) {
        core_atomic_abort(&af);
        return pd_fail(err, "%s: write failed", path);
    }
    return core_atomic_commit(&af, err);
}
