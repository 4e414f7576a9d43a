/* inception.c — the FID Inception-v3 network (contract in inception.h): the architecture table,
 * loading with BatchNorm folded, and the fast float forward.
 *
 * Each convolution is an explicit im2col of one image into a [C kh kw, OH OW] matrix (none for a
 * 1x1 stride-1 convolution, whose input already is that matrix), one single-threaded OpenBLAS
 * sgemm with the folded weights [OC, C kh kw], then bias and ReLU. A single-threaded sgemm of a
 * given shape gives the same bits whatever the pointers or the calling thread (unet/gemm.h), and
 * every other loop here runs in a fixed order, so an image's features depend on its pixels only.
 * Threads work on whole images (OpenMP over the batch, DESIGN.md convention 8), each with its own
 * workspace sized once per input size by a dry run of the shapes: two block buffers, two branch
 * buffers and the im2col matrix (about 40 MB per thread at 299 x 299, the im2col of
 * Conv2d_2a_3x3 being the largest).
 */
#include "metrics/inception.h"
#include "unet/gemm.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the architecture */

static int add_conv(mt_inception *net, const char *blk, const char *name, int C, int OC, int kh,
                    int kw, int s, int ph, int pw) {
    inc_conv *c = &net->conv[net->n_convs];
    if (*blk) snprintf(c->name, sizeof c->name, "%s.%s", blk, name);
    else snprintf(c->name, sizeof c->name, "%s", name);
    c->C = C, c->OC = OC, c->kh = kh, c->kw = kw, c->s = s, c->ph = ph, c->pw = pw;
    c->w = c->b = NULL;
    return net->n_convs++;
}

static void step(inc_branch *b, inc_op op, int c1, int c2) {
    b->step[b->n].op = op;
    b->step[b->n].conv = c1;
    b->step[b->n].conv2 = c2;
    b->n++;
}

static inc_block *new_block(mt_inception *net, const char *name, int nb) {
    inc_block *k = &net->block[net->n_blocks++];
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->nb = nb;
    return k;
}

/* torchvision Inception3: Conv2d_1a_3x3 .. maxpool2 (pytorch-fid's blocks 0 and 1). */
static void build_stem(mt_inception *net) {
    inc_branch *b = &new_block(net, "stem", 1)->br[0];
    step(b, INC_CONV, add_conv(net, "", "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0), 0);
    step(b, INC_CONV, add_conv(net, "", "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0), 0);
    step(b, INC_CONV, add_conv(net, "", "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1), 0);
    step(b, INC_MAX3S2, 0, 0);
    step(b, INC_CONV, add_conv(net, "", "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0), 0);
    step(b, INC_CONV, add_conv(net, "", "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0), 0);
    step(b, INC_MAX3S2, 0, 0);
}

/* FIDInceptionA: InceptionA with the pool branch's average excluding padding. */
static void build_a(mt_inception *net, const char *n, int C, int pool_features) {
    inc_block *k = new_block(net, n, 4);
    step(&k->br[0], INC_CONV, add_conv(net, n, "branch1x1", C, 64, 1, 1, 1, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch5x5_1", C, 48, 1, 1, 1, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch3x3dbl_1", C, 64, 1, 1, 1, 0, 0), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1), 0);
    step(&k->br[3], INC_AVG3, 0, 0);
    step(&k->br[3], INC_CONV, add_conv(net, n, "branch_pool", C, pool_features, 1, 1, 1, 0, 0), 0);
}

/* InceptionB (Mixed_6a, unpatched): grid reduction 35 -> 17. */
static void build_b(mt_inception *net, const char *n, int C) {
    inc_block *k = new_block(net, n, 3);
    step(&k->br[0], INC_CONV, add_conv(net, n, "branch3x3", C, 384, 3, 3, 2, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch3x3dbl_1", C, 64, 1, 1, 1, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0), 0);
    step(&k->br[2], INC_MAX3S2, 0, 0);
}

/* FIDInceptionC: factorised 7x7 branches, average pool excluding padding. */
static void build_c(mt_inception *net, const char *n, int C, int c7) {
    inc_block *k = new_block(net, n, 4);
    step(&k->br[0], INC_CONV, add_conv(net, n, "branch1x1", C, 192, 1, 1, 1, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch7x7_1", C, c7, 1, 1, 1, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch7x7dbl_1", C, c7, 1, 1, 1, 0, 0), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3), 0);
    step(&k->br[3], INC_AVG3, 0, 0);
    step(&k->br[3], INC_CONV, add_conv(net, n, "branch_pool", C, 192, 1, 1, 1, 0, 0), 0);
}

/* InceptionD (Mixed_7a, unpatched): grid reduction 17 -> 8. */
static void build_d(mt_inception *net, const char *n, int C) {
    inc_block *k = new_block(net, n, 3);
    step(&k->br[0], INC_CONV, add_conv(net, n, "branch3x3_1", C, 192, 1, 1, 1, 0, 0), 0);
    step(&k->br[0], INC_CONV, add_conv(net, n, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch7x7x3_1", C, 192, 1, 1, 1, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0), 0);
    step(&k->br[2], INC_MAX3S2, 0, 0);
}

/* FIDInceptionE_1 (pool INC_AVG3) and FIDInceptionE_2 (pool INC_MAX3S1). */
static void build_e(mt_inception *net, const char *n, int C, inc_op pool) {
    inc_block *k = new_block(net, n, 4);
    step(&k->br[0], INC_CONV, add_conv(net, n, "branch1x1", C, 320, 1, 1, 1, 0, 0), 0);
    step(&k->br[1], INC_CONV, add_conv(net, n, "branch3x3_1", C, 384, 1, 1, 1, 0, 0), 0);
    int a = add_conv(net, n, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
    int b = add_conv(net, n, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
    step(&k->br[1], INC_FORK, a, b);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch3x3dbl_1", C, 448, 1, 1, 1, 0, 0), 0);
    step(&k->br[2], INC_CONV, add_conv(net, n, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1), 0);
    a = add_conv(net, n, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
    b = add_conv(net, n, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
    step(&k->br[2], INC_FORK, a, b);
    step(&k->br[3], pool, 0, 0);
    step(&k->br[3], INC_CONV, add_conv(net, n, "branch_pool", C, 192, 1, 1, 1, 0, 0), 0);
}

void mt_inception_arch(mt_inception *net) {
    memset(net, 0, sizeof *net);
    build_stem(net);
    build_a(net, "Mixed_5b", 192, 32);
    build_a(net, "Mixed_5c", 256, 64);
    build_a(net, "Mixed_5d", 288, 64);
    build_b(net, "Mixed_6a", 288);
    build_c(net, "Mixed_6b", 768, 128);
    build_c(net, "Mixed_6c", 768, 160);
    build_c(net, "Mixed_6d", 768, 160);
    build_c(net, "Mixed_6e", 768, 192);
    build_d(net, "Mixed_7a", 768);
    build_e(net, "Mixed_7b", 1280, INC_AVG3);
    build_e(net, "Mixed_7c", 2048, INC_MAX3S1);
}

/* ------------------------------------------------------------------ weights */

static const st_tensor *want(const st_file *f, const char *conv, const char *suffix, int ndim,
                             const long long *shape, pd_error *err) {
    char name[80];
    snprintf(name, sizeof name, "%s.%s", conv, suffix);
    const st_tensor *t = st_find(f, name);
    if (!t) {
        pd_fail(err, "Inception weights: tensor '%s' missing (not pytorch-fid's FID Inception?)", name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[96] = "", exp[96] = "";
        for (int i = 0; i < t->ndim && i < 8; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "", t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "", shape[i]);
        pd_fail(err, "Inception weights: tensor '%s' has shape [%s], expected [%s]", name, got, exp);
        return NULL;
    }
    return t;
}

int mt_inception_from_st(mt_inception *net, const st_file *f, pd_error *err) {
    mt_inception_arch(net);
    size_t total = 0;
    for (int i = 0; i < net->n_convs; i++) {
        const inc_conv *c = &net->conv[i];
        total += (size_t)c->OC * c->C * c->kh * c->kw + (size_t)c->OC;
    }
    net->params = malloc(sizeof(float) * total);
    if (!net->params) return pd_fail(err, "Inception weights: out of memory for %zu parameters", total);
    float *p = net->params;
    for (int i = 0; i < net->n_convs; i++) {
        inc_conv *c = &net->conv[i];
        const long long ws[4] = {c->OC, c->C, c->kh, c->kw}, vs[1] = {c->OC};
        const st_tensor *w = want(f, c->name, "conv.weight", 4, ws, err);
        const st_tensor *g = w ? want(f, c->name, "bn.weight", 1, vs, err) : NULL;
        const st_tensor *be = g ? want(f, c->name, "bn.bias", 1, vs, err) : NULL;
        const st_tensor *m = be ? want(f, c->name, "bn.running_mean", 1, vs, err) : NULL;
        const st_tensor *v = m ? want(f, c->name, "bn.running_var", 1, vs, err) : NULL;
        if (!v) {
            mt_inception_release(net);
            return -1;
        }
        const size_t k = (size_t)c->C * c->kh * c->kw;
        c->w = p;
        c->b = p + (size_t)c->OC * k;
        p += (size_t)c->OC * k + (size_t)c->OC;
        for (int o = 0; o < c->OC; o++) {
            /* BatchNorm in eval mode: y = (x - m) g / sqrt(v + eps) + beta, folded in double. */
            double var = v->data[o];
            if (!(var >= 0) || !isfinite(g->data[o]) || !isfinite(be->data[o]) || !isfinite(m->data[o])) {
                mt_inception_release(net);
                return pd_fail(err, "Inception weights: %s.bn has a negative or non-finite entry at "
                                    "channel %d", c->name, o);
            }
            double sc = g->data[o] / sqrt(var + INC_BN_EPS);
            for (size_t j = 0; j < k; j++) {
                double wj = w->data[(size_t)o * k + j];
                if (!isfinite(wj)) {
                    mt_inception_release(net);
                    return pd_fail(err, "Inception weights: %s.conv.weight is not finite", c->name);
                }
                c->w[(size_t)o * k + j] = (float)(wj * sc);
            }
            c->b[o] = (float)(be->data[o] - m->data[o] * sc);
        }
    }
    return 0;
}

struct inc_ws;
static void ws_free(struct inc_ws *w);

void mt_inception_release(mt_inception *net) {
    if (!net) return;
    free(net->params);
    for (int i = 0; i < net->n_ws; i++) ws_free(net->ws[i]);   /* the buffers, then the struct */
    free(net->ws);
    net->params = NULL;
    net->ws = NULL;
    net->n_ws = 0;
    for (int i = 0; i < net->n_convs; i++) net->conv[i].w = net->conv[i].b = NULL;
}

/* ------------------------------------------------------------------ shapes */

static int conv_shape(const inc_conv *c, int H, int W, int *OH, int *OW) {
    *OH = (H + 2 * c->ph - c->kh) / c->s + 1;
    *OW = (W + 2 * c->pw - c->kw) / c->s + 1;
    return H + 2 * c->ph >= c->kh && W + 2 * c->pw >= c->kw ? 0 : -1;
}

/* Shape after one step; -1 when the input is too small or has the wrong channel count. */
static int step_shape(const mt_inception *net, const inc_branch *b, int i, int *C, int *H, int *W) {
    int op = b->step[i].op;
    if (op == INC_AVG3 || op == INC_MAX3S1) return 0;
    if (op == INC_MAX3S2) {
        if (*H < 3 || *W < 3) return -1;
        *H = (*H - 3) / 2 + 1;
        *W = (*W - 3) / 2 + 1;
        return 0;
    }
    const inc_conv *c = &net->conv[b->step[i].conv];
    if (c->C != *C || conv_shape(c, *H, *W, H, W)) return -1;
    *C = c->OC;
    if (op == INC_FORK) *C += net->conv[b->step[i].conv2].OC;
    return 0;
}

int mt_inception_block_shape(const mt_inception *net, int k, int C, int H, int W, int *OC,
                             int *OH, int *OW) {
    const inc_block *blk = &net->block[k];
    *OC = 0;
    for (int r = 0; r < blk->nb; r++) {
        int c = C, h = H, w = W;
        for (int i = 0; i < blk->br[r].n; i++)
            if (step_shape(net, &blk->br[r], i, &c, &h, &w)) return -1;
        if (r > 0 && (h != *OH || w != *OW)) return -1;
        *OH = h, *OW = w;
        *OC += c;
    }
    return 0;
}

/* ------------------------------------------------------------------ fast kernels (one image) */

/* One BasicConv2d (folded): out [OC, OH, OW] = relu(W * in + b). col: scratch for im2col. */
static void conv_run(float *out, const float *in, const inc_conv *c, int H, int W, float *col) {
    int OH, OW;
    conv_shape(c, H, W, &OH, &OW);
    const int P = OH * OW, K = c->C * c->kh * c->kw;
    const float *B = in;
    if (c->kh != 1 || c->kw != 1 || c->s != 1 || c->ph || c->pw) {
        for (int ci = 0; ci < c->C; ci++)
            for (int ky = 0; ky < c->kh; ky++)
                for (int kx = 0; kx < c->kw; kx++) {
                    float *row = col + (size_t)((ci * c->kh + ky) * c->kw + kx) * P;
                    const float *src = in + (size_t)ci * H * W;
                    for (int oy = 0; oy < OH; oy++) {
                        int iy = oy * c->s - c->ph + ky;
                        float *r = row + (size_t)oy * OW;
                        if (iy < 0 || iy >= H) {
                            memset(r, 0, sizeof(float) * (size_t)OW);
                            continue;
                        }
                        const float *s = src + (size_t)iy * W;
                        for (int ox = 0; ox < OW; ox++) {
                            int ix = ox * c->s - c->pw + kx;
                            r[ox] = ix >= 0 && ix < W ? s[ix] : 0.0f;
                        }
                    }
                }
        B = col;
    }
    gemm_sgemm_st(0, 0, c->OC, P, K, 1.0f, c->w, K, B, P, 0.0f, out, P);
    for (int o = 0; o < c->OC; o++) {
        float *r = out + (size_t)o * P, bo = c->b[o];
        for (int p = 0; p < P; p++) {
            float v = r[p] + bo;
            r[p] = v > 0.0f ? v : 0.0f;
        }
    }
}

/* 3x3 pools on [C, H, W]. avg3: stride 1, padding 1, mean over the taps inside the image
 * (count_include_pad=False); max3 stride 1 padding 1 (padding is -inf); max3 stride 2 no pad. */
static void pool_run(float *out, const float *in, int op, int C, int H, int W) {
    const int s = op == INC_MAX3S2 ? 2 : 1, p = op == INC_MAX3S2 ? 0 : 1;
    const int OH = (H + 2 * p - 3) / s + 1, OW = (W + 2 * p - 3) / s + 1;
    for (int c = 0; c < C; c++) {
        const float *x = in + (size_t)c * H * W;
        float *y = out + (size_t)c * OH * OW;
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int y0 = oy * s - p, x0 = ox * s - p;
                float acc = op == INC_AVG3 ? 0.0f : -INFINITY;
                int cnt = 0;
                for (int dy = 0; dy < 3; dy++) {
                    int iy = y0 + dy;
                    if (iy < 0 || iy >= H) continue;
                    for (int dx = 0; dx < 3; dx++) {
                        int ix = x0 + dx;
                        if (ix < 0 || ix >= W) continue;
                        float v = x[(size_t)iy * W + ix];
                        if (op == INC_AVG3) acc += v;
                        else if (v > acc) acc = v;
                        cnt++;
                    }
                }
                y[(size_t)oy * OW + ox] = op == INC_AVG3 ? acc / (float)cnt : acc;
            }
    }
}

/* Per-thread buffers (sizes in floats from the dry run). */
typedef struct inc_ws {
    size_t blk, tmp, col;
    float *x[2], *t[2], *col_buf;
} inc_ws;

typedef struct inc_sizes { size_t blk, tmp, col; } inc_sizes;

static void size_max(size_t *m, size_t v) {
    if (v > *m) *m = v;
}

/* The largest block output, branch intermediate and im2col matrix of an H x W input. */
static int dry_run(const mt_inception *net, int H, int W, inc_sizes *sz) {
    memset(sz, 0, sizeof *sz);
    int C = 3;
    for (int k = 0; k < net->n_blocks; k++) {
        const inc_block *blk = &net->block[k];
        for (int r = 0; r < blk->nb; r++) {
            int c = C, h = H, w = W;
            for (int i = 0; i < blk->br[r].n; i++) {
                int op = blk->br[r].step[i].op;
                if (op == INC_CONV || op == INC_FORK) {
                    const inc_conv *cv = &net->conv[blk->br[r].step[i].conv];
                    int oh, ow;
                    if (conv_shape(cv, h, w, &oh, &ow)) return -1;
                    size_max(&sz->col, (size_t)cv->C * cv->kh * cv->kw * oh * ow);
                }
                if (step_shape(net, &blk->br[r], i, &c, &h, &w)) return -1;
                if (i < blk->br[r].n - 1) size_max(&sz->tmp, (size_t)c * h * w);
            }
        }
        int OC, OH, OW;
        if (mt_inception_block_shape(net, k, C, H, W, &OC, &OH, &OW)) return -1;
        size_max(&sz->blk, (size_t)OC * OH * OW);
        C = OC, H = OH, W = OW;
    }
    return 0;
}

static void ws_free(inc_ws *w) {
    if (!w) return;
    free(w->x[0]), free(w->x[1]), free(w->t[0]), free(w->t[1]), free(w->col_buf);
    free(w);
}

static inc_ws *ws_new(const inc_sizes *sz) {
    inc_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->blk = sz->blk, w->tmp = sz->tmp, w->col = sz->col;
    w->x[0] = malloc(sizeof(float) * (sz->blk ? sz->blk : 1));
    w->x[1] = malloc(sizeof(float) * (sz->blk ? sz->blk : 1));
    w->t[0] = malloc(sizeof(float) * (sz->tmp ? sz->tmp : 1));
    w->t[1] = malloc(sizeof(float) * (sz->tmp ? sz->tmp : 1));
    w->col_buf = malloc(sizeof(float) * (sz->col ? sz->col : 1));
    if (!w->x[0] || !w->x[1] || !w->t[0] || !w->t[1] || !w->col_buf) {
        ws_free(w);
        return NULL;
    }
    return w;
}

/* Workspaces for `count` threads at H x W (kept while the size does not change). */
static int ws_ensure(mt_inception *net, int count, int H, int W, pd_error *err) {
    if (net->n_ws >= count && net->ws_h == H && net->ws_w == W) return 0;
    inc_sizes sz;
    if (dry_run(net, H, W, &sz))
        return pd_fail(err, "Inception: a %dx%d input is too small for the network (75x75 at least)", H, W);
    for (int i = 0; i < net->n_ws; i++) ws_free(net->ws[i]);
    free(net->ws);
    net->n_ws = 0;
    net->ws = calloc((size_t)count, sizeof(void *));
    if (!net->ws) return pd_fail(err, "Inception: out of memory");
    for (int i = 0; i < count; i++)
        if (!(net->ws[i] = ws_new(&sz))) {
            for (int j = 0; j < i; j++) ws_free(net->ws[j]);
            free(net->ws);
            net->ws = NULL;
            return pd_fail(err, "Inception: out of memory for the workspace of a %dx%d input", H, W);
        }
    net->n_ws = count, net->ws_h = H, net->ws_w = W;
    return 0;
}

/* Block k on x [C, H, W] into out, with workspace w (its t buffers and im2col). */
static void block_run(const mt_inception *net, int k, const float *x, int C, int H, int W,
                      float *out, inc_ws *w) {
    const inc_block *blk = &net->block[k];
    int OC, OH, OW;
    mt_inception_block_shape(net, k, C, H, W, &OC, &OH, &OW);
    const size_t P = (size_t)OH * OW;
    int choff = 0;
    for (int r = 0; r < blk->nb; r++) {
        const inc_branch *b = &blk->br[r];
        const float *cur = x;
        int c = C, h = H, wd = W;
        for (int i = 0; i < b->n; i++) {
            const int last = i == b->n - 1, op = b->step[i].op;
            float *dst = last ? out + (size_t)choff * P : w->t[i & 1];
            if (op == INC_CONV) {
                conv_run(dst, cur, &net->conv[b->step[i].conv], h, wd, w->col_buf);
            } else if (op == INC_FORK) {
                const inc_conv *ca = &net->conv[b->step[i].conv], *cb = &net->conv[b->step[i].conv2];
                int oh, ow;
                conv_shape(ca, h, wd, &oh, &ow);
                conv_run(dst, cur, ca, h, wd, w->col_buf);
                conv_run(dst + (size_t)ca->OC * oh * ow, cur, cb, h, wd, w->col_buf);
            } else {
                pool_run(dst, cur, op, c, h, wd);
            }
            step_shape(net, b, i, &c, &h, &wd);
            cur = dst;
        }
        choff += c;
    }
}

int mt_inception_block(mt_inception *net, int k, const float *x, int C, int H, int W, float *out,
                       pd_error *err) {
    int OC, OH, OW;
    if (k < 0 || k >= net->n_blocks || mt_inception_block_shape(net, k, C, H, W, &OC, &OH, &OW))
        return pd_fail(err, "Inception: block %d cannot take a %dx%dx%d input", k, C, H, W);
    /* A workspace for this block alone: the branch buffers and im2col of one input. */
    inc_sizes sz = {0, 0, 0};
    const inc_block *blk = &net->block[k];
    for (int r = 0; r < blk->nb; r++) {
        int c = C, h = H, w = W;
        for (int i = 0; i < blk->br[r].n; i++) {
            int op = blk->br[r].step[i].op, oh, ow;
            if (op == INC_CONV || op == INC_FORK) {
                const inc_conv *cv = &net->conv[blk->br[r].step[i].conv];
                conv_shape(cv, h, w, &oh, &ow);
                size_max(&sz.col, (size_t)cv->C * cv->kh * cv->kw * oh * ow);
            }
            step_shape(net, &blk->br[r], i, &c, &h, &w);
            size_max(&sz.tmp, (size_t)c * h * w);
        }
    }
    inc_ws *w = ws_new(&sz);
    if (!w) return pd_fail(err, "Inception: out of memory");
    block_run(net, k, x, C, H, W, out, w);
    ws_free(w);
    return 0;
}

/* One image: every block, then the channel means (summed in double, in order). */
static void forward_one(const mt_inception *net, const float *x, int H, int W, float *feat,
                        inc_ws *w) {
    const float *cur = x;
    int C = 3;
    for (int k = 0; k < net->n_blocks; k++) {
        int OC, OH, OW;
        mt_inception_block_shape(net, k, C, H, W, &OC, &OH, &OW);
        float *dst = w->x[k & 1];
        block_run(net, k, cur, C, H, W, dst, w);
        cur = dst;
        C = OC, H = OH, W = OW;
    }
    const size_t P = (size_t)H * W;
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (size_t p = 0; p < P; p++) s += cur[(size_t)c * P + p];
        feat[c] = (float)(s / (double)P);
    }
}

int mt_inception_forward(mt_inception *net, const float *x, int n, int H, int W, float *feat,
                         pd_error *err) {
    if (!net->params) return pd_fail(err, "Inception: no weights loaded");
    const int T = omp_get_max_threads();
    if (ws_ensure(net, T, H, W, err)) return -1;
    const size_t img = (size_t)3 * H * W;
    #pragma omp parallel for schedule(dynamic, 1) if (n > 1)
    for (int i = 0; i < n; i++)
        forward_one(net, x + (size_t)i * img, H, W, feat + (size_t)i * INC_FEATURES,
                    net->ws[omp_get_thread_num()]);
    return 0;
}
