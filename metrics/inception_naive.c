/* inception_naive.c — the naive double-precision twin of the FID Inception network (tests only;
 * inception.h). Plain loops, no BLAS, no threads, and no folding: each BasicConv2d is a direct
 * convolution with the raw conv.weight, then BatchNorm as written (x - mean) / sqrt(var + 1e-3)
 * * weight + bias, then ReLU, all in double from the tensors of the safetensors file, so the
 * tests compare the fast path's im2col, sgemm, folding and pooling against an independent
 * computation. Buffers are allocated per step (speed does not matter here).
 */
#include "metrics/inception.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const float *raw(const st_file *f, const char *conv, const char *suffix) {
    char name[80];
    snprintf(name, sizeof name, "%s.%s", conv, suffix);
    const st_tensor *t = st_find(f, name);
    return t ? t->data : NULL;
}

static int conv_naive(double *out, const double *in, const inc_conv *c, const st_file *f, int H,
                      int W, pd_error *err) {
    const float *w = raw(f, c->name, "conv.weight"), *g = raw(f, c->name, "bn.weight"),
                *be = raw(f, c->name, "bn.bias"), *m = raw(f, c->name, "bn.running_mean"),
                *v = raw(f, c->name, "bn.running_var");
    if (!w || !g || !be || !m || !v) return pd_fail(err, "naive Inception: %s is missing tensors", c->name);
    const int OH = (H + 2 * c->ph - c->kh) / c->s + 1, OW = (W + 2 * c->pw - c->kw) / c->s + 1;
    for (int o = 0; o < c->OC; o++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double acc = 0;
                for (int ci = 0; ci < c->C; ci++)
                    for (int ky = 0; ky < c->kh; ky++)
                        for (int kx = 0; kx < c->kw; kx++) {
                            int iy = oy * c->s - c->ph + ky, ix = ox * c->s - c->pw + kx;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            acc += (double)w[((o * c->C + ci) * c->kh + ky) * c->kw + kx] *
                                   in[((size_t)ci * H + iy) * W + ix];
                        }
                double y = (acc - m[o]) / sqrt((double)v[o] + INC_BN_EPS) * g[o] + be[o];
                out[((size_t)o * OH + oy) * OW + ox] = y > 0 ? y : 0;
            }
    return 0;
}

static void pool_naive(double *out, const double *in, int op, int C, int H, int W) {
    const int s = op == INC_MAX3S2 ? 2 : 1, p = op == INC_MAX3S2 ? 0 : 1;
    const int OH = (H + 2 * p - 3) / s + 1, OW = (W + 2 * p - 3) / s + 1;
    for (int c = 0; c < C; c++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                double sum = 0, mx = -INFINITY;
                int cnt = 0;
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) {
                        int iy = oy * s - p + dy, ix = ox * s - p + dx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        double v = in[((size_t)c * H + iy) * W + ix];
                        sum += v;
                        mx = v > mx ? v : mx;
                        cnt++;
                    }
                out[((size_t)c * OH + oy) * OW + ox] = op == INC_AVG3 ? sum / cnt : mx;
            }
}

int mt_inception_block_naive(const mt_inception *arch, const st_file *f, int k, const double *x,
                             int C, int H, int W, double *out, pd_error *err) {
    int OC, OH, OW;
    if (k < 0 || k >= arch->n_blocks || mt_inception_block_shape(arch, k, C, H, W, &OC, &OH, &OW))
        return pd_fail(err, "naive Inception: block %d cannot take a %dx%dx%d input", k, C, H, W);
    const inc_block *blk = &arch->block[k];
    int choff = 0;
    for (int r = 0; r < blk->nb; r++) {
        const inc_branch *b = &blk->br[r];
        double *cur = malloc(sizeof(double) * (size_t)C * H * W);
        if (!cur) return pd_fail(err, "naive Inception: out of memory");
        memcpy(cur, x, sizeof(double) * (size_t)C * H * W);
        int c = C, h = H, w = W;
        for (int i = 0; i < b->n; i++) {
            const int op = b->step[i].op;
            int nc = c, nh = h, nw = w;
            if (op == INC_MAX3S2) nh = (h - 3) / 2 + 1, nw = (w - 3) / 2 + 1;
            if (op == INC_CONV || op == INC_FORK) {
                const inc_conv *ca = &arch->conv[b->step[i].conv];
                nh = (h + 2 * ca->ph - ca->kh) / ca->s + 1;
                nw = (w + 2 * ca->pw - ca->kw) / ca->s + 1;
                nc = ca->OC + (op == INC_FORK ? arch->conv[b->step[i].conv2].OC : 0);
            }
            double *nxt = malloc(sizeof(double) * (size_t)nc * nh * nw);
            if (!nxt) {
                free(cur);
                return pd_fail(err, "naive Inception: out of memory");
            }
            int rc = 0;
            if (op == INC_CONV) {
                rc = conv_naive(nxt, cur, &arch->conv[b->step[i].conv], f, h, w, err);
            } else if (op == INC_FORK) {
                const inc_conv *ca = &arch->conv[b->step[i].conv];
                rc = conv_naive(nxt, cur, ca, f, h, w, err);
                if (!rc)
                    rc = conv_naive(nxt + (size_t)ca->OC * nh * nw, cur, &arch->conv[b->step[i].conv2],
                                    f, h, w, err);
            } else {
                pool_naive(nxt, cur, op, c, h, w);
            }
            free(cur);
            cur = nxt;
            if (rc) {
                free(cur);
                return -1;
            }
            c = nc, h = nh, w = nw;
        }
        memcpy(out + (size_t)choff * OH * OW, cur, sizeof(double) * (size_t)c * h * w);
        free(cur);
        choff += c;
    }
    return 0;
}

int mt_inception_forward_naive(const mt_inception *arch, const st_file *f, const double *x, int H,
                               int W, double *feat, pd_error *err) {
    double *cur = malloc(sizeof(double) * (size_t)3 * H * W);
    if (!cur) return pd_fail(err, "naive Inception: out of memory");
    memcpy(cur, x, sizeof(double) * (size_t)3 * H * W);
    int C = 3;
    for (int k = 0; k < arch->n_blocks; k++) {
        int OC, OH, OW;
        if (mt_inception_block_shape(arch, k, C, H, W, &OC, &OH, &OW)) {
            free(cur);
            return pd_fail(err, "naive Inception: block %d cannot take a %dx%dx%d input", k, C, H, W);
        }
        double *nxt = malloc(sizeof(double) * (size_t)OC * OH * OW);
        if (!nxt || mt_inception_block_naive(arch, f, k, cur, C, H, W, nxt, err)) {
            free(cur), free(nxt);
            return nxt ? -1 : pd_fail(err, "naive Inception: out of memory");
        }
        free(cur);
        cur = nxt;
        C = OC, H = OH, W = OW;
    }
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int p = 0; p < H * W; p++) s += cur[(size_t)c * H * W + p];
        feat[c] = s / (H * W);
    }
    free(cur);
    return 0;
}
