/* fir.c — EDM's FIR resampling (Conv2d with resample_filter and no weight, or its up/down step
 * before a weight; Karras et al. 2022, training/networks.py Conv2d) as depthwise stride-2 loops,
 * forward and backward, plus the one-pixel zero padding of the fused NCSN++ aux conv.
 *
 * The 2-D filter g = f⊗f/(Σf)² is built in double and rounded once to float (exact for the
 * integer taps EDM uses: [1,3,3,1]/8 squared has denominators 64). Each (sample, channel) plane is
 * independent and summed in a fixed tap order, so results do not depend on threads or batch.
 *
 * All four public loops are one kernel, fir_apply, in one of two directions. The down-resample
 * is the stride-2 correlation A (output y reads source 2y − pad + i through tap i); the
 * up-resample is its transpose Aᵀ with the gain-4 filter (output y reads source (y + pad − i)/2
 * through the taps i ≡ y + pad mod 2). So down forward = A, up backward = A (gain 4), up
 * forward = Aᵀ (gain 4), down backward = Aᵀ. Each output is one gather over its taps in a fixed
 * order (fir_plane's modes), so the four give exactly the bits of the four loops they replaced.
 */
#include "nn/nn_layers.h"
#include "core/pool.h"
#include <string.h>

int fir_down_size(int H, int K, int pad) { return (H + 2 * pad - K) / 2 + 1; }
int fir_up_size(int H, int K, int pad) { return 2 * (H - 1) - 2 * pad + K; }

static void filter2d(float *g, const float *f, int K, float gain) {
    double s = 0;
    for (int i = 0; i < K; i++) s += f[i];
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) g[i * K + j] = (float)(gain * f[i] * f[j] / (s * s));
}

/* The source coordinate that tap i reads for output coordinate y (A, or Aᵀ when transposed;
 * Aᵀ uses only the taps of y + pad's parity, so the division is exact). */
static inline int src(int transposed, int y, int i, int pad) {
    return transposed ? (y + pad - i) / 2 : 2 * y - pad + i;
}

/* The first tap output coordinate y visits: all taps for A, those of y + pad's parity for Aᵀ;
 * from the lowest, or from the highest when rev. */
static inline int tap0(int transposed, int rev, int y, int pad, int K) {
    int par = transposed ? (y + pad) & 1 : 0;
    if (!rev) return par;
    return transposed ? K - 1 - ((K - 1 - par) & 1) : K - 1;
}

/* How a plane's outputs are written: SET stores each output's sum (taps in ascending order from
 * 0), ADD adds that sum to what is there (a backward accumulates), CHAIN adds the taps to what is
 * there one by one, last tap first: the order of the scatter loop the down backward was, which
 * keeps NCSN++ gradients bit-identical to it. */
enum { SET, ADD, CHAIN };

/* One plane: o [Ho, Wo] (mode) A·s or Aᵀ·s, s [Hi, Wi], filter g [K, K]. Always inlined with
 * constant transposed and mode, so each use compiles to its own plain loop. */
static inline __attribute__((always_inline)) void fir_plane(float *o, const float *s,
                                                            const float *g, int K, int pad,
                                                            int Hi, int Wi, int Ho, int Wo,
                                                            int transposed, int mode) {
    const int rev = mode == CHAIN, step = (transposed ? 2 : 1) * (rev ? -1 : 1);
    for (int y = 0; y < Ho; y++)
        for (int x = 0; x < Wo; x++) {
            float acc = rev ? o[(size_t)y * Wo + x] : 0;
            for (int i = tap0(transposed, rev, y, pad, K); i >= 0 && i < K; i += step) {
                int yy = src(transposed, y, i, pad);
                if (yy < 0 || yy >= Hi) continue;
                for (int j = tap0(transposed, rev, x, pad, K); j >= 0 && j < K; j += step) {
                    int xx = src(transposed, x, j, pad);
                    if (xx >= 0 && xx < Wi) acc += g[i * K + j] * s[(size_t)yy * Wi + xx];
                }
            }
            if (mode == ADD) o[(size_t)y * Wo + x] += acc;
            else o[(size_t)y * Wo + x] = acc;
        }
}

struct fir_args {
    float *out;
    const float *in, *g;
    int K, pad, Hi, Wi, Ho, Wo, transposed, mode;
};

/* Item p = plane p: reads plane p of in, writes plane p of out alone. */
static void fir_items(void *ctx, long p0, long p1) {
    const struct fir_args *a = ctx;
    const float *in = a->in, *g = a->g;
    float *out = a->out;
    int K = a->K, pad = a->pad, Hi = a->Hi, Wi = a->Wi, Ho = a->Ho, Wo = a->Wo;
    int transposed = a->transposed, mode = a->mode;
    for (long p = p0; p < p1; p++) {
        const float *s = in + (size_t)p * Hi * Wi;
        float *o = out + (size_t)p * Ho * Wo;
        if (!transposed && mode == SET) fir_plane(o, s, g, K, pad, Hi, Wi, Ho, Wo, 0, SET);
        else if (!transposed) fir_plane(o, s, g, K, pad, Hi, Wi, Ho, Wo, 0, ADD);
        else if (mode == SET) fir_plane(o, s, g, K, pad, Hi, Wi, Ho, Wo, 1, SET);
        else fir_plane(o, s, g, K, pad, Hi, Wi, Ho, Wo, 1, CHAIN);
    }
}

/* fir_plane over planes (sample, channel) planes of in [.., Hi, Wi] into out [.., Ho, Wo]. */
static void fir_apply(float *out, const float *in, const float *g, int K, int pad, long planes,
                      int Hi, int Wi, int Ho, int Wo, int transposed, int mode) {
    const size_t big = (size_t)(Hi > Ho ? Hi : Ho) * (Wi > Wo ? Wi : Wo);
    struct fir_args a = {out, in, g, K, pad, Hi, Wi, Ho, Wo, transposed, mode};
    core_pool_for(planes, (size_t)planes * big > 32768, fir_items, &a);
}

void fir_down_forward(float *out, const float *in, const float *f, int K, int pad, int N, int C,
                      int H, int W) {
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 1.0);
    fir_apply(out, in, g, K, pad, (long)N * C, H, W, fir_down_size(H, K, pad),
              fir_down_size(W, K, pad), 0, SET);
}

void fir_down_backward(float *din, const float *dout, const float *f, int K, int pad, int N, int C,
                       int H, int W) {
    if (!din) return;
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 1.0);
    fir_apply(din, dout, g, K, pad, (long)N * C, fir_down_size(H, K, pad),
              fir_down_size(W, K, pad), H, W, 1, CHAIN);
}

void fir_up_forward(float *out, const float *in, const float *f, int K, int pad, int N, int C,
                    int H, int W) {
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 4.0);
    fir_apply(out, in, g, K, pad, (long)N * C, H, W, fir_up_size(H, K, pad),
              fir_up_size(W, K, pad), 1, SET);
}

void fir_up_backward(float *din, const float *dout, const float *f, int K, int pad, int N, int C,
                     int H, int W) {
    if (!din) return;
    float g[FIR_MAX_TAPS * FIR_MAX_TAPS];
    filter2d(g, f, K, 4.0);
    fir_apply(din, dout, g, K, pad, (long)N * C, fir_up_size(H, K, pad), fir_up_size(W, K, pad),
              H, W, 0, ADD);
}

struct pad1_args {
    float *out;
    const float *in;
    int H, W;
};

/* Item p = plane p: writes padded plane p of out alone. */
static void pad1_fwd_items(void *ctx, long p0, long p1) {
    const struct pad1_args *a = ctx;
    int H = a->H, W = a->W, Wp = W + 2;
    for (long p = p0; p < p1; p++) {
        float *o = a->out + (size_t)p * (H + 2) * Wp;
        memset(o, 0, sizeof(float) * (size_t)(H + 2) * Wp);
        for (int y = 0; y < H; y++)
            memcpy(o + (size_t)(y + 1) * Wp + 1, a->in + ((size_t)p * H + y) * W,
                   sizeof(float) * W);
    }
}

void pad1_forward(float *out, const float *in, int N, int C, int H, int W) {
    struct pad1_args a = {out, in, H, W};
    core_pool_for((long)N * C, (size_t)N * C * H * W > 32768, pad1_fwd_items, &a);
}

/* Item p = plane p: adds the interior of padded plane p of in into plane p of out alone. */
static void pad1_bwd_items(void *ctx, long p0, long p1) {
    const struct pad1_args *a = ctx;
    int H = a->H, W = a->W, Wp = W + 2;
    for (long p = p0; p < p1; p++)
        for (int y = 0; y < H; y++) {
            const float *s = a->in + (size_t)p * (H + 2) * Wp + (size_t)(y + 1) * Wp + 1;
            float *d = a->out + ((size_t)p * H + y) * W;
            for (int x = 0; x < W; x++) d[x] += s[x];
        }
}

void pad1_backward(float *din, const float *dout, int N, int C, int H, int W) {
    if (!din) return;
    struct pad1_args a = {din, dout, H, W};
    core_pool_for((long)N * C, (size_t)N * C * H * W > 32768, pad1_bwd_items, &a);
}
