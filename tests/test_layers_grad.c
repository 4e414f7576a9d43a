/* test_layers_grad — every layer backward (unet/layers.c) against central finite differences of
 * the naive DOUBLE forward (unet/layers_naive.c), for the input and every parameter (and c_noise
 * for the positional embedding). The loss is a random linear functional L = Σ g ⊙ out, so the
 * backward is called with dout = g. Float inputs are converted exactly to double, so both sides
 * see the same point. FD step h = 1e-6·max(1, |x|): truncation O(h²) and double rounding
 * O(1e-16/h) are both far below float precision.
 *
 * Tolerance 1e-4 (tu_compare's relative error, floor 1e-3·max|ref|) plus 4e-7 per term of the
 * longest float reduction in the backward, as in test_layers. Also checked: backward accumulates
 * (a second call doubles every gradient, to 1e-4 since the GEMMs add their product into C with
 * beta = 1; an overwrite would be off by 0.5) and NULL d-buffers are skipped without changing the
 * others (bitwise).
 */
#include "unet/layers.h"
#include "unet/winograd.h"
#include "testutil.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_LINEAR, P_SILU, P_GN, P_CONV, P_POOL, P_UP, P_ATT, P_POSEMB };

typedef struct {
    int kind;
    int N, C, H, W, OC, k, IN, OUT, G, L, heads, Cn, endpoint, flip;
    double eps;
    double *x, *w, *b, *g, *out;
    size_t nout;
} prob;

static double loss(prob *p) {
    switch (p->kind) {
    case P_LINEAR: linear_forward_naive(p->out, p->x, p->w, p->b, p->N, p->IN, p->OUT); break;
    case P_SILU: silu_forward_naive(p->out, p->x, p->nout); break;
    case P_GN: groupnorm_forward_naive(p->out, p->x, p->w, p->b, p->N, p->C, p->H * p->W, p->G, p->eps); break;
    case P_CONV: conv2d_forward_naive(p->out, p->x, p->w, p->b, p->N, p->C, p->H, p->W, p->OC, p->k); break;
    case P_POOL: avgpool2_forward_naive(p->out, p->x, p->N, p->C, p->H, p->W); break;
    case P_UP: upsample2_forward_naive(p->out, p->x, p->N, p->C, p->H, p->W); break;
    case P_ATT: attention_forward_naive(p->out, p->x, p->N, p->C, p->L, p->heads); break;
    case P_POSEMB: posemb_forward_naive(p->out, p->x, p->N, p->Cn, p->endpoint, p->flip); break;
    }
    double s = 0;
    for (size_t i = 0; i < p->nout; i++) s += p->g[i] * p->out[i];
    return s;
}

/* Central differences of the loss with respect to each element of v (a member of p). */
static void fd_grad(double *grad, double *v, size_t n, prob *p) {
    for (size_t i = 0; i < n; i++) {
        double v0 = v[i], h = 1e-6 * fmax(1.0, fabs(v0));
        v[i] = v0 + h;
        double lp = loss(p);
        v[i] = v0 - h;
        double lm = loss(p);
        v[i] = v0;
        grad[i] = (lp - lm) / (2 * h);
    }
}

static float *randf(size_t n, uint64_t seed, float scale) {
    float *x = malloc(n * sizeof *x);
    tu_fill(x, n, seed, scale);
    return x;
}
static double *to_d(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void check_fd(const char *what, const char *label, const float *got, double *v, size_t n,
                     prob *p, double tol) {
    double *ref = malloc(n * sizeof *ref);
    fd_grad(ref, v, n, p);
    char name[128];
    snprintf(name, sizeof name, "%s: %s vs FD", what, label);
    tu_compare(name, got, ref, n, tol);
    free(ref);
}

/* got2 (after two backward calls) must be 2·got1 (after one). */
static void check_twice(const char *what, const char *label, const float *got2, const float *got1,
                        size_t n) {
    float *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) want[i] = 2 * got1[i];
    char name[128];
    snprintf(name, sizeof name, "%s: %s accumulates (2 calls = 2x)", what, label);
    tu_compare_f(name, got2, want, n, 1e-4);
    free(want);
}

static int same(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static double tol_red(int K) { return 1e-4 + 4e-7 * K; }

/* ------------------------------------------------------------------ per layer */

static void t_linear(int N, int IN, int OUT) {
    char what[64];
    snprintf(what, sizeof what, "linear N=%d IN=%d OUT=%d", N, IN, OUT);
    size_t nx = (size_t)N * IN, nw = (size_t)OUT * IN, no = (size_t)N * OUT;
    float *x = randf(nx, 1, 1), *w = randf(nw, 2, 0.5f), *b = randf(OUT, 3, 0.5f), *g = randf(no, 4, 1);
    prob p = {.kind = P_LINEAR, .N = N, .IN = IN, .OUT = OUT, .x = to_d(x, nx), .w = to_d(w, nw),
              .b = to_d(b, OUT), .g = to_d(g, no), .out = malloc(no * sizeof(double)), .nout = no};
    float *dx = zeros(nx), *dw = zeros(nw), *db = zeros(OUT);
    linear_backward(dx, dw, db, g, x, w, N, IN, OUT);
    check_fd(what, "din", dx, p.x, nx, &p, tol_red(OUT));
    check_fd(what, "dw", dw, p.w, nw, &p, tol_red(N));
    check_fd(what, "db", db, p.b, OUT, &p, tol_red(N));
    float *dx2 = zeros(nx), *dw2 = zeros(nw), *db2 = zeros(OUT);
    linear_backward(dx2, dw2, db2, g, x, w, N, IN, OUT);
    linear_backward(dx2, dw2, db2, g, x, w, N, IN, OUT);
    check_twice(what, "din", dx2, dx, nx);
    check_twice(what, "dw", dw2, dw, nw);
    check_twice(what, "db", db2, db, OUT);
    float *dx3 = zeros(nx), *dw3 = zeros(nw), *db3 = zeros(OUT);
    linear_backward(dx3, NULL, NULL, g, x, w, N, IN, OUT);
    linear_backward(NULL, dw3, NULL, g, x, w, N, IN, OUT);
    linear_backward(NULL, NULL, db3, g, x, w, N, IN, OUT);
    tu_check(same(dx3, dx, nx) && same(dw3, dw, nw) && same(db3, db, OUT),
             "%s: NULL d-buffers skipped, the others unchanged", what);
    free(x); free(w); free(b); free(g); free(p.x); free(p.w); free(p.b); free(p.g); free(p.out);
    free(dx); free(dw); free(db); free(dx2); free(dw2); free(db2); free(dx3); free(dw3); free(db3);
}

static void t_silu(size_t n) {
    const char *what = "silu";
    float *x = randf(n, 5, 5), *g = randf(n, 6, 1);
    prob p = {.kind = P_SILU, .x = to_d(x, n), .g = to_d(g, n), .out = malloc(n * sizeof(double)), .nout = n};
    float *dx = zeros(n), *dx2 = zeros(n);
    silu_backward(dx, g, x, n);
    check_fd(what, "din", dx, p.x, n, &p, 1e-5);
    silu_backward(dx2, g, x, n);
    silu_backward(dx2, g, x, n);
    check_twice(what, "din", dx2, dx, n);
    free(x); free(g); free(p.x); free(p.g); free(p.out); free(dx); free(dx2);
}

static void t_groupnorm(int N, int C, int HW) {
    int G = groupnorm_groups(C);
    char what[64];
    snprintf(what, sizeof what, "groupnorm N=%d C=%d G=%d HW=%d", N, C, G, HW);
    size_t n = (size_t)N * C * HW;
    float *x = randf(n, 7, 1), *ga = randf(C, 8, 1), *be = randf(C, 9, 1), *g = randf(n, 10, 1);
    for (int c = 0; c < C; c++) ga[c] += 1.5f;   /* away from zero, like trained scales */
    prob p = {.kind = P_GN, .N = N, .C = C, .H = HW, .W = 1, .G = G, .eps = 1e-5, .x = to_d(x, n),
              .w = to_d(ga, C), .b = to_d(be, C), .g = to_d(g, n), .out = malloc(n * sizeof(double)), .nout = n};
    float *y = zeros(n), *mean = zeros(N * G), *rstd = zeros(N * G);
    groupnorm_forward(y, mean, rstd, x, ga, be, N, C, HW, G, 1e-5f);
    float *dx = zeros(n), *dga = zeros(C), *dbe = zeros(C);
    groupnorm_backward(dx, dga, dbe, g, x, mean, rstd, ga, N, C, HW, G);
    int red = (C / G) * HW;
    check_fd(what, "din", dx, p.x, n, &p, tol_red(red));
    check_fd(what, "dgamma", dga, p.w, C, &p, tol_red(N * HW));
    check_fd(what, "dbeta", dbe, p.b, C, &p, tol_red(N * HW));
    float *dx2 = zeros(n), *dga2 = zeros(C), *dbe2 = zeros(C);
    groupnorm_backward(dx2, dga2, dbe2, g, x, mean, rstd, ga, N, C, HW, G);
    groupnorm_backward(dx2, dga2, dbe2, g, x, mean, rstd, ga, N, C, HW, G);
    check_twice(what, "din", dx2, dx, n);
    check_twice(what, "dgamma", dga2, dga, C);
    check_twice(what, "dbeta", dbe2, dbe, C);
    float *dx3 = zeros(n), *dga3 = zeros(C), *dbe3 = zeros(C);
    groupnorm_backward(dx3, NULL, NULL, g, x, mean, rstd, ga, N, C, HW, G);
    groupnorm_backward(NULL, dga3, NULL, g, x, mean, rstd, ga, N, C, HW, G);
    groupnorm_backward(NULL, NULL, dbe3, g, x, mean, rstd, ga, N, C, HW, G);
    tu_check(same(dx3, dx, n) && same(dga3, dga, C) && same(dbe3, dbe, C),
             "%s: NULL d-buffers skipped, the others unchanged", what);
    free(x); free(ga); free(be); free(g); free(p.x); free(p.w); free(p.b); free(p.g); free(p.out);
    free(y); free(mean); free(rstd); free(dx); free(dga); free(dbe); free(dx2); free(dga2);
    free(dbe2); free(dx3); free(dga3); free(dbe3);
}

static void t_conv(int N, int C, int H, int W, int OC, int k) {
    char what[64];
    snprintf(what, sizeof what, "conv2d N=%d C=%d %dx%d OC=%d k=%d", N, C, H, W, OC, k);
    size_t nx = (size_t)N * C * H * W, nw = (size_t)OC * C * k * k, no = (size_t)N * OC * H * W;
    float *x = randf(nx, 11, 1), *w = randf(nw, 12, 0.5f), *b = randf(OC, 13, 0.5f), *g = randf(no, 14, 1);
    float *col = zeros((size_t)C * k * k * H * W);
    prob p = {.kind = P_CONV, .N = N, .C = C, .H = H, .W = W, .OC = OC, .k = k, .x = to_d(x, nx),
              .w = to_d(w, nw), .b = to_d(b, OC), .g = to_d(g, no), .out = malloc(no * sizeof(double)), .nout = no};
    float *dx = zeros(nx), *dw = zeros(nw), *db = zeros(OC);
    conv2d_backward(dx, dw, db, g, x, w, N, C, H, W, OC, k, col);
    check_fd(what, "din", dx, p.x, nx, &p, tol_red(OC * k * k));
    check_fd(what, "dw", dw, p.w, nw, &p, tol_red(N * H * W));
    check_fd(what, "db", db, p.b, OC, &p, tol_red(N * H * W));
    float *dx2 = zeros(nx), *dw2 = zeros(nw), *db2 = zeros(OC);
    conv2d_backward(dx2, dw2, db2, g, x, w, N, C, H, W, OC, k, col);
    conv2d_backward(dx2, dw2, db2, g, x, w, N, C, H, W, OC, k, col);
    check_twice(what, "din", dx2, dx, nx);
    check_twice(what, "dw", dw2, dw, nw);
    check_twice(what, "db", db2, db, OC);
    float *dx3 = zeros(nx), *dw3 = zeros(nw), *db3 = zeros(OC);
    conv2d_backward(dx3, NULL, NULL, g, x, w, N, C, H, W, OC, k, col);
    conv2d_backward(NULL, dw3, NULL, g, x, w, N, C, H, W, OC, k, col);
    conv2d_backward(NULL, NULL, db3, g, x, w, N, C, H, W, OC, k, col);
    tu_check(same(dx3, dx, nx) && same(dw3, dw, nw) && same(db3, db, OC),
             "%s: NULL d-buffers skipped, the others unchanged", what);
    free(x); free(w); free(b); free(g); free(col); free(p.x); free(p.w); free(p.b); free(p.g);
    free(p.out); free(dx); free(dw); free(db); free(dx2); free(dw2); free(db2); free(dx3);
    free(dw3); free(db3);
}

static void t_resample(int up, int N, int C, int H, int W) {
    const char *what = up ? "upsample2" : "avgpool2";
    size_t nx = (size_t)N * C * H * W, no = up ? 4 * nx : nx / 4;
    float *x = randf(nx, 15, 1), *g = randf(no, 16, 1), *dx = zeros(nx), *dx2 = zeros(nx);
    prob p = {.kind = up ? P_UP : P_POOL, .N = N, .C = C, .H = H, .W = W, .x = to_d(x, nx),
              .g = to_d(g, no), .out = malloc(no * sizeof(double)), .nout = no};
    if (up) upsample2_backward(dx, g, N, C, H, W);
    else avgpool2_backward(dx, g, N, C, H, W);
    check_fd(what, "din", dx, p.x, nx, &p, 1e-5);
    for (int r = 0; r < 2; r++) {
        if (up) upsample2_backward(dx2, g, N, C, H, W);
        else avgpool2_backward(dx2, g, N, C, H, W);
    }
    check_twice(what, "din", dx2, dx, nx);
    free(x); free(g); free(dx); free(dx2); free(p.x); free(p.g); free(p.out);
}

static void t_attention(int N, int C, int L, int heads) {
    char what[64];
    snprintf(what, sizeof what, "attention N=%d C=%d L=%d heads=%d", N, C, L, heads);
    int Ch = C / heads;
    size_t nq = (size_t)N * 3 * C * L, no = (size_t)N * C * L;
    float *qkv = randf(nq, 17, 1.5f), *g = randf(no, 18, 1), *y = zeros(no),
          *att = zeros((size_t)N * heads * L * L), *scr = zeros((size_t)3 * L * L + (size_t)3 * Ch * L);
    prob p = {.kind = P_ATT, .N = N, .C = C, .L = L, .heads = heads, .x = to_d(qkv, nq),
              .g = to_d(g, no), .out = malloc(no * sizeof(double)), .nout = no};
    attention_forward(y, att, qkv, N, C, L, heads, scr);
    float *d = zeros(nq), *d2 = zeros(nq);
    attention_backward(d, g, qkv, att, N, C, L, heads, scr);
    check_fd(what, "dqkv", d, p.x, nq, &p, tol_red(L > Ch ? L : Ch));
    attention_backward(d2, g, qkv, att, N, C, L, heads, scr);
    attention_backward(d2, g, qkv, att, N, C, L, heads, scr);
    check_twice(what, "dqkv", d2, d, nq);
    attention_backward(NULL, g, qkv, att, N, C, L, heads, scr);
    tu_check(1, "%s: NULL dqkv is a no-op", what);
    free(qkv); free(g); free(y); free(att); free(scr); free(d); free(d2); free(p.x); free(p.g); free(p.out);
}

static void t_posemb(int N, int Cn, int endpoint, int flip) {
    char what[64];
    snprintf(what, sizeof what, "posemb Cn=%d endpoint=%d flip=%d", Cn, endpoint, flip);
    size_t no = (size_t)N * Cn;
    float *c = randf(N, 19, 2), *g = randf(no, 20, 1), *dc = zeros(N), *dc2 = zeros(N);
    prob p = {.kind = P_POSEMB, .N = N, .Cn = Cn, .endpoint = endpoint, .flip = flip,
              .x = to_d(c, N), .g = to_d(g, no), .out = malloc(no * sizeof(double)), .nout = no};
    posemb_backward(dc, g, c, N, Cn, endpoint, flip);
    check_fd(what, "d c_noise", dc, p.x, N, &p, tol_red(Cn));
    posemb_backward(dc2, g, c, N, Cn, endpoint, flip);
    posemb_backward(dc2, g, c, N, Cn, endpoint, flip);
    check_twice(what, "d c_noise", dc2, dc, N);
    free(c); free(g); free(dc); free(dc2); free(p.x); free(p.g); free(p.out);
}

/* Dropout is linear with a fixed mask: din = dout·mask/(1−p) exactly. */
static void t_dropout(void) {
    size_t n = 4099;
    float p = 0.25f;
    float *x = randf(n, 21, 1), *y = zeros(n), *g = randf(n, 22, 1), *dx = zeros(n);
    uint8_t *mask = malloc(n);
    dropout_forward(y, mask, x, n, p, 3, 9);
    dropout_backward(dx, g, mask, n, p);
    dropout_backward(dx, g, mask, n, p);
    size_t bad = 0;
    float s = (float)(1.0 / (1.0 - p));
    for (size_t i = 0; i < n; i++) {
        float once = mask[i] ? g[i] * s : 0.0f;
        bad += dx[i] != once + once;
    }
    tu_check(bad == 0, "dropout: din = 2 x dout*mask/(1-p) after two calls: %zu mismatches", bad);
    dropout_backward(NULL, g, mask, n, p);
    free(x); free(y); free(g); free(dx); free(mask);
}

int main(void) {
    /* The direct conv kernels against FD; the Winograd path's backward is checked against the
     * exact double backward in test_winograd.c. */
    conv_set_path(CONV_DIRECT);
    t_linear(3, 7, 5);
    t_silu(64);
    t_groupnorm(2, 8, 6);
    t_groupnorm(2, 12, 5);
    t_conv(2, 3, 5, 7, 4, 3);
    t_conv(2, 5, 3, 4, 3, 1);
    t_conv(1, 2, 6, 5, 3, 5);    /* 5x5 kernel */
    t_conv(2, 1, 4, 4, 16, 3);   /* OC >> C */
    t_conv(1, 15, 17, 17, 4, 3); /* dcol [135, 289]: 2 x 2 GEMM tiles */
    t_resample(0, 2, 2, 4, 6);
    t_resample(1, 2, 2, 3, 5);
    t_attention(2, 8, 16, 1);
    t_attention(2, 8, 16, 2);
    t_attention(1, 8, 64, 2);
    t_attention(1, 4, 100, 2);   /* two query / key tiles (64 + 36) */
    t_posemb(4, 16, 1, 1);
    t_posemb(4, 128, 0, 0);
    t_dropout();
    return tu_finish();
}
