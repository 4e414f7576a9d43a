/* amed_student.c — one AMED student interval with its gradient (contract and equations in
 * amed_student.h). Buffers are sized once at creation; nothing is allocated per interval. */
#include "distill/amed_student.h"
#include "core/arena.h"
#include "core/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct amed_student {
    pd_model *m;
    unet_run *run;
    int micro, max_n, label_dim;
    size_t dim;
    void *arena;
    double *y, *xo, *ds;                       /* [micro, dim] */
    double *s, *sum_ga2, *sum_gdds;            /* [micro] */
    float *yf, *Df, *dout, *dx;                /* [micro, dim] U-Net I/O */
    float *sigf, *dsig;                        /* [micro] */
    amed_cache *cache;                         /* [micro] */
};

void amed_student_free(amed_student *s) {
    if (!s) return;
    unet_run_free(s->run);
    core_free(s->arena);
    free(s->cache);
    free(s);
}

/* The micro-batch buffers in one arena (core/arena.h). */
static void layout(void *ctx, ar_arena *a) {
    amed_student *s = ctx;
    const size_t md = (size_t)s->micro * s->dim, mi = (size_t)s->micro;
    s->y = ar_take(a, sizeof(double) * md);
    s->xo = ar_take(a, sizeof(double) * md);
    s->ds = ar_take(a, sizeof(double) * md);
    s->s = ar_take(a, sizeof(double) * mi);
    s->sum_ga2 = ar_take(a, sizeof(double) * mi);
    s->sum_gdds = ar_take(a, sizeof(double) * mi);
    s->yf = ar_take(a, sizeof(float) * md);
    s->Df = ar_take(a, sizeof(float) * md);
    s->dout = ar_take(a, sizeof(float) * md);
    s->dx = ar_take(a, sizeof(float) * md);
    s->sigf = ar_take(a, sizeof(float) * mi);
    s->dsig = ar_take(a, sizeof(float) * mi);
}

int amed_student_create(amed_student **out, pd_model *m, int micro, int max_n, pd_error *err) {
    *out = NULL;
    if (micro < 1 || max_n < 1)
        return pd_fail(err, "amed student: micro-batch %d, batch %d", micro, max_n);
    if (micro > max_n) micro = max_n;
    amed_student *s = calloc(1, sizeof *s);
    if (!s) return pd_fail(err, "amed student: out of memory");
    const pd_unet_config *c = pd_model_config(m);
    s->m = m;
    s->micro = micro;
    s->max_n = max_n;
    s->label_dim = c->label_dim;
    s->dim = (size_t)c->in_channels * c->img_resolution * c->img_resolution;
    if (unet_run_create(&s->run, m, micro, 0, 1, err)) {
        free(s);
        return -1;
    }
    s->arena = ar_build(layout, s, NULL);
    s->cache = calloc((size_t)micro, sizeof(amed_cache));
    if (!s->arena || !s->cache) {
        amed_student_free(s);
        return pd_fail(err, "amed student: out of memory for a micro-batch of %d", micro);
    }
    *out = s;
    return 0;
}

int amed_student_interval(amed_student *s, const pd_amed_predictor *pred, const amed_interval *iv,
                          const double *target, double *x_out, double *ds_out, double *loss,
                          double *grad, double *r_mean, pd_error *err) {
    int n = iv->n;
    const double norm = iv->norm > 0 ? iv->norm : n;
    if (n < 1 || n > s->max_n)
        return pd_fail(err, "amed student: batch of %d images (1..%d)", n, s->max_n);
    if (!(iv->t0 > iv->t1) || !(iv->t1 > 0))
        return pd_fail(err, "amed student: interval %g -> %g is not decreasing and positive", iv->t0,
                       iv->t1);
    const size_t dim = s->dim;
    const double t0 = iv->t0, t1 = iv->t1, lnq = log(t1 / t0), alpha0 = iv->alpha0;
    const int back = target && grad;
    double L = 0, rsum = 0;
    for (int b0 = 0; b0 < n; b0 += s->micro) {
        int m = n - b0 < s->micro ? n - b0 : s->micro;

        /* g_phi, the intermediate sigma and the Euler half-step to y (per image) */
        for (int i = 0; i < m; i++) {
            int b = b0 + i;
            amed_cache *k = &s->cache[i];
            amed_forward(pred, iv->feature ? iv->feature + (size_t)b * AMED_FEAT : NULL, t0, t1, k);
            rsum += k->r;
            double sb = pow(t1, k->r) * pow(t0, 1.0 - k->r);
            s->s[i] = sb;
            s->sigf[i] = (float)(k->a * sb);
            const double *x = iv->x + (size_t)b * dim, *a1 = iv->a1 + (size_t)b * dim;
            double *y = s->y + (size_t)i * dim;
            float *yf = s->yf + (size_t)i * dim;
            for (size_t j = 0; j < dim; j++) {
                y[j] = x[j] + (sb - t0) * a1[j];
                yf[j] = (float)y[j];
            }
        }
        const float *lab = iv->labels && s->label_dim ? iv->labels + (size_t)b0 * s->label_dim : NULL;
        if (unet_denoise_forward(s->run, s->Df, s->yf, s->sigf, lab, m, NULL, err)) return -1;

        /* d_s, A2, x' and the loss; dL/dD for the U-Net's backward */
        for (int i = 0; i < m; i++) {
            int b = b0 + i;
            const amed_cache *k = &s->cache[i];
            double sb = s->s[i], h2 = iv->plugin ? t1 - sb : t1 - t0, ch = k->c * h2;
            const double *x = iv->x + (size_t)b * dim, *y = s->y + (size_t)i * dim;
            const double *kk = iv->k ? iv->k + (size_t)b * dim : NULL;
            const double *base = iv->plugin ? y : x;
            const float *D = s->Df + (size_t)i * dim;
            double *xo = s->xo + (size_t)i * dim, *ds = s->ds + (size_t)i * dim;
            const double *tg = target ? target + (size_t)b * dim : NULL;
            float *dout = s->dout + (size_t)i * dim;
            double lb = 0, ga2 = 0, gdds = 0;
            for (size_t j = 0; j < dim; j++) {
                ds[j] = (y[j] - D[j]) / sb;
                double a2 = alpha0 * ds[j] + (kk ? kk[j] : 0.0);
                xo[j] = base[j] + ch * a2;
                if (!tg) continue;
                double diff = xo[j] - tg[j];
                lb += diff * diff;
                double g = 2.0 * diff / norm, gd = alpha0 * ch * g;
                ga2 += g * a2;
                gdds += gd * ds[j];
                dout[j] = (float)(-gd / sb);
            }
            L += lb;
            s->sum_ga2[i] = ga2;
            s->sum_gdds[i] = gdds;
            if (x_out) memcpy(x_out + (size_t)b * dim, xo, sizeof(double) * dim);
            if (ds_out) memcpy(ds_out + (size_t)b * dim, ds, sizeof(double) * dim);
        }
        if (!back) continue;

        /* the frozen U-Net in reverse: dL/dy through D and dL/d(a s) */
        memset(s->dx, 0, sizeof(float) * (size_t)m * dim);
        memset(s->dsig, 0, sizeof(float) * (size_t)m);
        if (unet_denoise_backward(s->run, s->dx, s->dsig, NULL, s->dout, err)) return -1;
        for (int i = 0; i < m; i++) {
            int b = b0 + i;
            const amed_cache *k = &s->cache[i];
            double sb = s->s[i], h2 = iv->plugin ? t1 - sb : t1 - t0, ch = k->c * h2;
            const double *a1 = iv->a1 + (size_t)b * dim, *tg = target + (size_t)b * dim;
            const double *xo = s->xo + (size_t)i * dim;
            const float *dx = s->dx + (size_t)i * dim;
            double dyds = 0;   /* <dL/dy, dy/ds> with dy/ds = A1 */
            for (size_t j = 0; j < dim; j++) {
                double g = 2.0 * (xo[j] - tg[j]) / norm, gd = alpha0 * ch * g;
                double dly = gd / sb + dx[j] + (iv->plugin ? g : 0.0);
                dyds += dly * a1[j];
            }
            double dsig = s->dsig[i];
            double dlds = dyds + k->a * dsig - s->sum_gdds[i] / sb -
                          (iv->plugin ? k->c * s->sum_ga2[i] : 0.0);
            double dlc = h2 * s->sum_ga2[i], dla = sb * dsig, dlr = dlds * sb * lnq;
            amed_backward(pred, k, dlr, dlc, dla, grad);
        }
    }
    if (loss) *loss = L / norm;
    if (r_mean) *r_mean = rsum / norm;
    return 0;
}
