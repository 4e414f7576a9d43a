/* unipc.c — UniPC with the bh2 coefficients, data prediction in lambda = -ln sigma (docs/algorithms.md
 * §S3.3; diff-sampler's unipc_sampler / unipc_update in the VE form). Step i (sigma_i ->
 * sigma_{i+1}), order p from multistep.h's rule, h = ln(sigma_i/sigma_{i+1}), hh = -h,
 * phi1 = B = e^{hh} - 1 (bh2), r_k = ln(sigma_i/sigma_{i-k})/h < 0 and
 * D_k = (M_{i-k} - M_i)/r_k for k = 1..p-1:
 *   b_k = g_k k!/B with g_1 = phi1/hh - 1, g_{k+1} = g_k/hh - 1/(k+1)!;  R_{jk} = rks_k^j
 *   (j = 0..p-1, rks = r_1..r_{p-1}, 1);
 *   predictor (UniP-p): x^p = (sigma_{i+1}/sigma_i) x - phi1 M_i - B sum_k rho^p_k D_k,
 *     rho^p = [1/2] for p = 2, else the solution of the leading (p-1)x(p-1) system R rho = b;
 *   corrector (UniC):   M_{i+1} = D(x^p; sigma_{i+1}), rho^c = [1/2] for p = 1, else R rho = b,
 *     x_{i+1} = (sigma_{i+1}/sigma_i) x - phi1 M_i - B (sum_{k<p} rho^c_k D_k + rho^c_p (M_{i+1} - M_i)).
 * M_{i+1}, evaluated at the predictor's point, is kept as the next step's model value, so a
 * step costs one call; step 0 also evaluates M_0 (or takes AFS's analytic D_0) and the final
 * step has no corrector: NFE = steps. (diff-sampler also corrects the final step while still
 * in warm-up, i.e. when steps < max_order, at one extra NFE; here the final step is never
 * corrected.) A step into sigma = 0 is first order without corrector and returns M_i.
 * Optional dynamic thresholding of every M (params.thresholding), off by default. History:
 * M_k in work[k % 4] (four, because M_{i+1} arrives while M_{i-2} is still needed), the
 * predictor in work[4]. max_order 1..3, default 3; default grid logsnr. */
#include "core/util.h"
#include "samplers/multistep.h"
#include <math.h>
#include <stdlib.h>

typedef struct {
    int max_order;
    double *scratch;   /* [total] for thresholding, or NULL */
} unipc_state;

static int unipc_nfe(const pd_sample_params *p, int steps) { return steps; }

static int unipc_begin(sampler_run *r) {
    int order = ms_max_order(r, 3, 3);
    if (order < 0) return -1;
    unipc_state *st = calloc(1, sizeof *st);
    if (!st) return pd_fail(r->err, "unipc: out of memory");
    st->max_order = order;
    if (r->p->thresholding > 0) {
        st->scratch = core_alloc(sizeof(double) * r->total);
        if (!st->scratch) {
            free(st);
            return pd_fail(r->err, "unipc: out of memory for thresholding");
        }
    }
    r->state = st;
    return 0;
}

static void unipc_end(sampler_run *r) {
    unipc_state *st = r->state;
    if (st) core_free(st->scratch);
    free(st);
    r->state = NULL;
}

/* Solves the k x k system A z = b (k <= 3) by Gaussian elimination with partial pivoting. */
static void solve_small(int k, double A[3][3], double *b, double *z) {
    for (int c = 0; c < k; c++) {
        int piv = c;
        for (int rr = c + 1; rr < k; rr++)
            if (fabs(A[rr][c]) > fabs(A[piv][c])) piv = rr;
        if (piv != c) {
            for (int q = 0; q < k; q++) {
                double t = A[c][q];
                A[c][q] = A[piv][q];
                A[piv][q] = t;
            }
            double t = b[c];
            b[c] = b[piv];
            b[piv] = t;
        }
        for (int rr = c + 1; rr < k; rr++) {
            double f = A[rr][c] / A[c][c];
            for (int q = c; q < k; q++) A[rr][q] -= f * A[c][q];
            b[rr] -= f * b[c];
        }
    }
    for (int c = k - 1; c >= 0; c--) {
        double s = b[c];
        for (int q = c + 1; q < k; q++) s -= A[c][q] * z[q];
        z[c] = s / A[c][c];
    }
}

/* Copies the denoiser output to m (double) and thresholds it if asked. */
static void take_model(sampler_run *r, double *m) {
    unipc_state *st = r->state;
    const float *den = r->den;
    size_t total = r->total;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) m[j] = den[j];
    if (r->p->thresholding > 0) ms_threshold(m, st->scratch, r->n, r->dim, r->p->thresholding);
}

static int unipc_step(sampler_run *r, int i) {
    unipc_state *st = r->state;
    const double *sg = r->sigmas;
    double s0 = sg[i], s1 = sg[i + 1];
    double *x = r->x, *xp = r->work[4];
    size_t total = r->total;
    if (i == 0) {
        if (sampler_run_denoise(r, x, s0, i)) return -1;
        take_model(r, r->work[0]);
    }
    const double *m0 = r->work[i % 4];
    int p = ms_order(r, i, st->max_order);
    int last = i == r->steps - 1;
    if (s1 == 0.0) {
        #pragma omp parallel for schedule(static) if (total > 32768)
        for (size_t j = 0; j < total; j++) x[j] = m0[j];
        return 0;
    }

    double h = log(s0 / s1), hh = -h, ratio = s1 / s0, phi1 = expm1(hh), B = phi1;
    /* rks and the b vector (diff-sampler's unipc_update loop, bh2) */
    double rks[3], b[3], g = phi1 / hh - 1.0, fact = 1.0;
    for (int k = 1; k < p; k++) rks[k - 1] = log(s0 / sg[i - k]) / h;
    rks[p - 1] = 1.0;
    for (int k = 1; k <= p; k++) {
        b[k - 1] = g * fact / B;
        fact *= k + 1;
        g = g / hh - 1.0 / fact;
    }
    double R[3][3];
    for (int j = 0; j < p; j++)
        for (int k = 0; k < p; k++) R[j][k] = pow(rks[k], j);
    double rho_p[3] = {0, 0, 0}, rho_c[3] = {0, 0, 0};
    if (p == 2) rho_p[0] = 0.5;
    else if (p == 3) {
        double A[3][3], bb[3] = {b[0], b[1]};
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < 2; k++) A[j][k] = R[j][k];
        solve_small(2, A, bb, rho_p);
    }
    if (p == 1) rho_c[0] = 0.5;
    else {
        double bb[3] = {b[0], b[1], b[2]};
        solve_small(p, R, bb, rho_c);
    }
    const double *mk[3] = {NULL, NULL, NULL};   /* M_{i-1}, M_{i-2} */
    for (int k = 1; k < p; k++) mk[k - 1] = r->work[(i - k) % 4];
    double inv_r[2] = {p > 1 ? 1.0 / rks[0] : 0, p > 2 ? 1.0 / rks[1] : 0};

    /* predictor: straight into x on the final step, else into xp */
    double *dst = last ? x : xp;
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        double res = 0;
        for (int k = 0; k < p - 1; k++) res += rho_p[k] * ((mk[k][j] - m0[j]) * inv_r[k]);
        dst[j] = ratio * x[j] - phi1 * m0[j] - B * res;
    }
    if (last) return 0;

    /* corrector: M_{i+1} at the predictor's point, kept for the next step */
    if (sampler_run_denoise(r, xp, s1, i)) return -1;
    double *mt = r->work[(i + 1) % 4];
    take_model(r, mt);
    #pragma omp parallel for schedule(static) if (total > 32768)
    for (size_t j = 0; j < total; j++) {
        double res = 0;
        for (int k = 0; k < p - 1; k++) res += rho_c[k] * ((mk[k][j] - m0[j]) * inv_r[k]);
        res += rho_c[p - 1] * (mt[j] - m0[j]);
        x[j] = ratio * x[j] - phi1 * m0[j] - B * res;
    }
    return 0;
}

const sampler_impl sampler_unipc_impl = {
    .kind = PD_SAMPLER_UNIPC,
    .default_grid = PD_GRID_LOGSNR,
    .n_work = 5,
    .uses_noise = NULL,
    .nfe_for_steps = unipc_nfe,
    .begin = unipc_begin,
    .step = unipc_step,
    .end = unipc_end,
};
