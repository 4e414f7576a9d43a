/* spectrum.c — radially averaged power spectra with FFTW (pd_radial_power_spectrum,
 * mt_spectrum_accumulate) and the spectral error (pd_spectral_error).
 *
 * Each channel of an N x N image is transformed by a single-precision real-to-complex 2-D DFT
 * (FFTW, unnormalised). The power of frequency (ky, kx) is |F|^2 / N^2, so by Parseval white
 * noise of variance v per pixel has expected power v at every frequency. Frequencies are binned
 * by k = round(sqrt(ky^2 + kx^2)) with ky, kx signed; only k <= N/2 is kept (the rings that
 * lie whole inside the Nyquist square), and each bin's value is the mean over its frequencies
 * (the half-spectrum columns 0 < kx < N/2 stand for two conjugate frequencies and count twice).
 *
 * FFTW's planner is not thread-safe: plans are made once per N with FFTW_ESTIMATE (no timing,
 * so the same plan every run) under a mutex and cached for the process; executing a plan on new
 * arrays (fftwf_execute_dft_r2c) is thread-safe, so images are transformed in an OpenMP loop with
 * per-thread fftwf_malloc'd buffers (the alignment FFTW planned for). Per-image spectra are
 * summed in image order after the loop, so results do not depend on the thread count.
 */
#include "metrics/metrics.h"

#include <fftw3.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLANS 16
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int N;
    fftwf_plan plan;
    int *bin;          /* [N, N/2+1] bin of each half-spectrum entry, -1 outside the disc */
    double *weight;    /* [N, N/2+1] 1 or 2 (conjugate pair) */
    double *count;     /* [N/2+1] frequencies per bin */
} plans[MAX_PLANS];
static int n_plans;

int pd_spectrum_bins(int N) { return N / 2 + 1; }

/* The cached plan and bin tables for N, made on first use. */
static int get_plan(int N, int *slot, pd_error *err) {
    pthread_mutex_lock(&plan_lock);
    for (int i = 0; i < n_plans; i++)
        if (plans[i].N == N) {
            *slot = i;
            pthread_mutex_unlock(&plan_lock);
            return 0;
        }
    if (n_plans == MAX_PLANS) {
        pthread_mutex_unlock(&plan_lock);
        return pd_fail(err, "spectrum: more than %d image sizes in one process", MAX_PLANS);
    }
    int hw = N / 2 + 1, nb = pd_spectrum_bins(N);
    float *in = fftwf_malloc(sizeof(float) * (size_t)N * N);
    fftwf_complex *out = fftwf_malloc(sizeof(fftwf_complex) * (size_t)N * hw);
    int *bin = malloc(sizeof(int) * (size_t)N * hw);
    double *weight = malloc(sizeof(double) * (size_t)N * hw), *count = calloc((size_t)nb, sizeof(double));
    fftwf_plan plan = in && out ? fftwf_plan_dft_r2c_2d(N, N, in, out, FFTW_ESTIMATE) : NULL;
    fftwf_free(in);
    fftwf_free(out);
    if (!plan || !bin || !weight || !count) {
        if (plan) fftwf_destroy_plan(plan);
        free(bin), free(weight), free(count);
        pthread_mutex_unlock(&plan_lock);
        return pd_fail(err, "spectrum: cannot make an FFTW plan for %d x %d images", N, N);
    }
    for (int ky = 0; ky < N; ky++)
        for (int kx = 0; kx < hw; kx++) {
            int sy = ky <= N / 2 ? ky : ky - N;
            int k = (int)floor(sqrt((double)sy * sy + (double)kx * kx) + 0.5);
            /* Column kx stands for kx and N - kx, except kx = 0 and (N even) kx = N/2. */
            double w = (kx == 0 || 2 * kx == N) ? 1.0 : 2.0;
            size_t e = (size_t)ky * hw + kx;
            bin[e] = k < nb ? k : -1;
            weight[e] = w;
            if (k < nb) count[k] += w;
        }
    plans[n_plans].N = N;
    plans[n_plans].plan = plan;
    plans[n_plans].bin = bin;
    plans[n_plans].weight = weight;
    plans[n_plans].count = count;
    *slot = n_plans++;
    pthread_mutex_unlock(&plan_lock);
    return 0;
}

int mt_spectrum_accumulate(const float *x, int n, int C, int N, double *sum, pd_error *err) {
    if (n < 0 || C < 1 || N < 2) return pd_fail(err, "spectrum: bad shape [%d,%d,%d,%d]", n, C, N, N);
    if (n == 0) return 0;
    int slot = 0;
    if (get_plan(N, &slot, err)) return -1;
    const int hw = N / 2 + 1, nb = pd_spectrum_bins(N);
    fftwf_plan plan = plans[slot].plan;
    const int *bin = plans[slot].bin;
    const double *weight = plans[slot].weight, *count = plans[slot].count;
    double *per = calloc((size_t)n * nb, sizeof(double));
    int nt = omp_get_max_threads();
    float **bin_in = calloc((size_t)nt, sizeof(float *));
    fftwf_complex **bout = calloc((size_t)nt, sizeof(fftwf_complex *));
    int ok = per && bin_in && bout;
    for (int t = 0; ok && t < nt; t++) {
        bin_in[t] = fftwf_malloc(sizeof(float) * (size_t)N * N);
        bout[t] = fftwf_malloc(sizeof(fftwf_complex) * (size_t)N * hw);
        ok = bin_in[t] && bout[t];
    }
    if (ok) {
        const double norm = 1.0 / ((double)N * N * C);
        #pragma omp parallel for schedule(static) num_threads(nt)
        for (int i = 0; i < n; i++) {
            int t = omp_get_thread_num();
            double *p = per + (size_t)i * nb;
            for (int c = 0; c < C; c++) {
                memcpy(bin_in[t], x + ((size_t)i * C + c) * N * N, sizeof(float) * (size_t)N * N);
                fftwf_execute_dft_r2c(plan, bin_in[t], bout[t]);
                for (size_t e = 0; e < (size_t)N * hw; e++) {
                    if (bin[e] < 0) continue;
                    double re = bout[t][e][0], im = bout[t][e][1];
                    p[bin[e]] += weight[e] * (re * re + im * im);
                }
            }
            for (int k = 0; k < nb; k++) p[k] *= norm / count[k];
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < nb; k++) sum[k] += per[(size_t)i * nb + k];
    }
    for (int t = 0; bin_in && bout && t < nt; t++) {
        fftwf_free(bin_in[t]);
        fftwf_free(bout[t]);
    }
    free(bin_in);
    free(bout);
    free(per);
    if (!ok) return pd_fail(err, "spectrum: out of memory for %d images of %d x %d", n, N, N);
    return 0;
}

int pd_radial_power_spectrum(const float *x, int n, int C, int N, double *power, pd_error *err) {
    if (n < 1) return pd_fail(err, "spectrum: no images");
    int nb = pd_spectrum_bins(N);
    memset(power, 0, sizeof(double) * (size_t)nb);
    if (mt_spectrum_accumulate(x, n, C, N, power, err)) return -1;
    for (int k = 0; k < nb; k++) power[k] /= n;
    return 0;
}

/* Powers are floored at 1e-12 so that a constant image (zero power off DC) gives a large,
 * finite error instead of infinity. */
double pd_spectral_error(const double *p_gen, const double *p_data, int bins) {
    const double floor_p = 1e-12;
    double acc = 0;
    int m = 0;
    for (int k = 1; k < bins; k++) {
        double a = p_gen[k] > floor_p ? p_gen[k] : floor_p;
        double b = p_data[k] > floor_p ? p_data[k] : floor_p;
        double dl = log10(a) - log10(b);
        acc += dl * dl;
        m++;
    }
    return m ? sqrt(acc / m) : 0.0;
}
