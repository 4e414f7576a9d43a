/* winograd.c — F(4x4, 3x3) convolutions, forward and backward (contract in winograd.h), and the
 * direct/Winograd switch.
 *
 * The matrices (Lavin & Gray 2016, interpolation points 0, ±1, ±2, ∞):
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * Tile (ty, tx) of a sample reads input rows 4ty-1 .. 4ty+4 and columns 4tx-1 .. 4tx+4 (zero
 * outside the image) and writes output rows 4ty .. 4ty+3, columns 4tx .. 4tx+3 (clipped at H, W).
 *
 * One call: (1) the filters go to the transform domain, U [OC][36][C], in double rounded once;
 * (2) per group of samples, the input transform V [C][36][T] per sample (a pool loop over
 * (sample, channel)), the 36 products per sample (a pool loop over (sample, ξ), each one
 * single-threaded OpenBLAS call), the output transform with the bias (a pool loop over (sample,
 * output channel)); core/pool.h.
 * A group holds as many samples as fit the caller's im2col buffer, or else a fixed scratch budget
 * (buffers()): which group a sample is in changes
 * no bit, since every value a sample gets is computed from that sample alone by code whose
 * operation order is fixed (transforms: scalar IEEE operations, no contraction; products: one
 * sgemm shape per layer).
 *
 * Why the filters are transformed on every call rather than cached per model: a model's weights
 * change under the runtime's feet in several ways (Adam steps, EMA swaps of the params pointer,
 * memcpy from checkpoints), and a stale cache would be silently wrong; and a cache would hold 4x
 * the 3x3 weights (about 480 MB more for EDM's CIFAR-10 network). The transform costs about 160
 * flops per (output, input) channel pair, once per call for the whole batch, against 72·T flops
 * per pair per sample in the products (T = 64 tiles at 32x32): 3.5 % at batch 1 there by flops,
 * but in time it was 26 % of a CIFAR-10 DDPM++ forward at batch 1 (perf, one thread) until its
 * loops were made to vectorise (filter_rows); it now runs near the speed of writing its 36 floats
 * per pair (9.4 MB for a 256x256 layer), which the products read straight back.
 */
#include "unet/winograd.h"
#include "core/pool.h"
#include "core/thread_buffer.h"
#include "core/util.h"
#include "pixdiff.h"
#include "unet/gemm.h"
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <immintrin.h>

/* Transform loops compiled for AVX-512 and the baseline, picked at load time; the same IEEE
 * operations in the same order in both (-ffp-contract=off), hence the same bits. */
#define UNET_CLONES __attribute__((target_clones("avx512f", "default")))

/* ------------------------------------------------------------------ the switch */

const char *const conv_path_names[CONV_PATH_COUNT] = {"winograd", "direct"};

static int path_now = -1;   /* -1: not yet read from PIXDIFF_CONV */

void conv_set_path(conv_path p) { __atomic_store_n(&path_now, (int)p, __ATOMIC_RELAXED); }

conv_path conv_get_path(void) {
    int p = __atomic_load_n(&path_now, __ATOMIC_RELAXED);
    if (p < 0) {
        const char *e = getenv("PIXDIFF_CONV");
        p = e && !strcmp(e, "direct") ? CONV_DIRECT : CONV_AUTO;
        __atomic_store_n(&path_now, p, __ATOMIC_RELAXED);
    }
    return (conv_path)p;
}

/* Winograd for 3x3 layers of 16x16 pixels or more (T >= 16 tiles per sample). Below that a
 * sample's 36 products [OC, C] x [C, T] are too thin: OpenBLAS packs the whole U_ξ for T columns
 * of work, and at 8x8 (T = 4) a 256-channel layer ran 3x slower than the direct product at batch
 * 1 and only level at batch 8; at 16x16 Winograd is level at batch 1 (the filter transform, once
 * per call, is most of its cost there) and 2x faster at batch 8; at 32x32 and 64x64 it is
 * 1.6-2.3x faster at batch 1 (single thread, CPU time, OpenBLAS Haswell kernels, AMD EPYC).
 * Layers with fewer than 16 input or output channels (the image-facing first and last convs)
 * stay direct: their products degenerate to a few rows, the transforms are all the cost, they
 * carry under 0.1 % of the flops, and the last one writes the denoised image, which keeps the
 * direct path's smaller rounding. The rule reads the shape only, so the choice never depends on
 * batch or threads. */
int conv_winograd_applies(int C, int H, int W, int OC) {
    return conv_get_path() == CONV_AUTO && H >= 4 && W >= 4 && H * W >= 256 && C >= 16 &&
           OC >= 16;
}

/* ------------------------------------------------------------------ the path record */

#define MAX_NOTES 64
static int notes_on, n_notes;
static pd_conv_stat notes[MAX_NOTES];

void pd_conv_stats_begin(void) {
    n_notes = 0;
    notes_on = 1;
}

int pd_conv_stats_end(pd_conv_stat *out, int cap) {
    notes_on = 0;
    int n = n_notes < cap ? n_notes : cap;
    if (out && n > 0) memcpy(out, notes, (size_t)n * sizeof *out);
    return n_notes;
}

void conv_note(int k, int C, int H, int W, int OC, int N, int path) {
    if (!notes_on) return;
    int winograd = path == CONV_NOTE_WINOGRAD, bf16 = path == CONV_NOTE_BF16;
    for (int i = 0; i < n_notes; i++) {
        pd_conv_stat *t = &notes[i];
        if (t->k == k && t->C == C && t->OC == OC && t->H == H && t->W == W &&
            t->winograd == winograd && t->bf16 == bf16) {
            t->calls++;
            t->images += N;
            return;
        }
    }
    if (n_notes == MAX_NOTES) return;
    notes[n_notes++] = (pd_conv_stat){.k = k, .C = C, .OC = OC, .H = H, .W = W,
                                      .winograd = winograd, .bf16 = bf16, .calls = 1,
                                      .images = N};
}

int pd_set_conv_algorithm(const char *name, pd_error *err) {
    for (int p = 0; p < CONV_PATH_COUNT; p++)
        if (name && !strcmp(name, conv_path_names[p])) {
            conv_set_path((conv_path)p);
            return 0;
        }
    return pd_fail(err, "unknown convolution algorithm '%s' (choose from: winograd, direct)",
                   name ? name : "");
}

const char *pd_conv_algorithm(void) { return conv_path_names[conv_get_path()]; }

/* ------------------------------------------------------------------ scratch */

/* A per-calling-thread buffer of floats (core/thread_buffer.h); scratch(n): NULL when memory runs
 * out. */
CORE_THREAD_BUFFER(scr, float)
static float *scratch(size_t n) { return scr_grow(n); }

/* Scratch budget per group of samples, in floats (8 MiB; a group of one always goes ahead
 * whatever its size): groups only save barriers, and peak memory matters more. */
#define GROUP_FLOATS ((size_t)2 << 20)

/* ------------------------------------------------------------------ transforms */

/* u_i = (G g)_i for the rows i of G, in double, for CB channels at once (the loops over cc
 * vectorise). Multiplications by the reciprocals rather than divisions (a division costs ~15
 * cycles; the reciprocals' rounding is far below float's). */
#define CB 16
#define R6 (1.0 / 6)
#define R12 (1.0 / 12)
#define R24 (1.0 / 24)
static inline void g_rows(double u[6][CB], const double *g0, const double *g1, const double *g2) {
    for (int cc = 0; cc < CB; cc++) {
        double p = g0[cc] + g2[cc], e = g0[cc] * R24 + g2[cc] * R6;
        u[0][cc] = g0[cc] * 0.25;
        u[1][cc] = -(p + g1[cc]) * R6;
        u[2][cc] = -(p - g1[cc]) * R6;
        u[3][cc] = e + g1[cc] * R12;
        u[4][cc] = e - g1[cc] * R12;
        u[5][cc] = g2[cc];
    }
}

/* d[0..CB) = (float)u[0..CB) through non-temporal stores (d 64-byte aligned); see filter_rows. */
__attribute__((target("avx512f"))) static inline void store_stream(float *d, const double *u) {
    for (int h = 0; h < CB; h += 16) {
        __m256 lo = _mm512_cvtpd_ps(_mm512_loadu_pd(u + h)),
               hi = _mm512_cvtpd_ps(_mm512_loadu_pd(u + h + 8));
        __m512d both = _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                                          _mm256_castps_pd(hi), 1);
        _mm512_stream_ps(d + h, _mm512_castpd_ps(both));
    }
}

/* Row r of the transformed filters, U [R][36][Q] with U[r][ξ][q] = (G g G^T)[i][j], ξ = 6i + j:
 * flip = 0: R = OC, Q = C, g = w[r][q]; flip = 1: R = C, Q = OC, g = w[q][r] rotated by 180°
 * (the filters of the adjoint convolution, dout -> din). Columns go CB at a time: their 9·CB
 * weights are read in memory order into g [9][CB] (for flip = 0 one contiguous run), and each
 * full block's 36 results go out as 36 runs of CB floats within the row's contiguous 36·Q floats
 * (single floats scattered over 36 planes far apart thrash the cache sets: measured 20x slower).
 * Loops of constant trip count throughout, so every one vectorises: a version that read g with
 * a per-element bounds test and wrote runs of variable length took 3x as long (0.72 against
 * 2.1 ms of arithmetic for a 256x256 layer, one thread), with the same bits.
 *
 * Writing U is then most of the cost (9.4 MB for a 256x256 layer, more than the caches hold):
 * plain stores first read every line they write. With AVX-512 the full runs go out as
 * non-temporal stores, which skip that read: 1.47 -> 0.54-0.81 ms for the 256x256 layer, and the
 * products that read U next took the same time either way (4.0 against 4.1 ms). Same values,
 * so the same bits; filter_transform fences the stores before the products read them. */
static inline __attribute__((always_inline)) void filter_rows_body(float *U, const float *w, int C,
                                                                    int OC, int r, int flip,
                                                                    int stream) {
    int Q = flip ? OC : C;
    double g[9][CB], t[3][6][CB], u[6][CB];
    float blk[36][CB];
    float *dst = U + (size_t)r * 36 * Q;
    for (int q0 = 0; q0 < Q; q0 += CB) {
        int qn = Q - q0 < CB ? Q - q0 : CB;
        if (qn < CB) memset(g, 0, sizeof g);
        for (int qq = 0; qq < qn; qq++) {
            const float *src = flip ? w + ((size_t)(q0 + qq) * C + r) * 9
                                    : w + ((size_t)r * C + q0 + qq) * 9;
            if (flip)
                for (int k = 0; k < 9; k++) g[k][qq] = src[8 - k];
            else
                for (int k = 0; k < 9; k++) g[k][qq] = src[k];
        }
        for (int b = 0; b < 3; b++) g_rows(t[b], g[b], g[3 + b], g[6 + b]);   /* column b of G g */
        for (int i = 0; i < 6; i++) {   /* row i of (G g) G^T */
            g_rows(u, t[0][i], t[1][i], t[2][i]);
            for (int j = 0; j < 6; j++) {
                float *d = dst + (size_t)(6 * i + j) * Q + q0;
                if (qn == CB && stream && ((uintptr_t)d & 63) == 0)
                    store_stream(d, u[j]);
                else if (qn == CB)
                    for (int qq = 0; qq < CB; qq++) d[qq] = (float)u[j][qq];
                else
                    for (int qq = 0; qq < CB; qq++) blk[6 * i + j][qq] = (float)u[j][qq];
            }
        }
        if (qn < CB)
            for (int e = 0; e < 36; e++) {
                float *d = dst + (size_t)e * Q + q0;
                for (int qq = 0; qq < qn; qq++) d[qq] = blk[e][qq];
            }
    }
}

__attribute__((target("avx512f"))) static void filter_rows_avx512(float *U, const float *w, int C,
                                                                  int OC, int r, int flip) {
    filter_rows_body(U, w, C, OC, r, flip, 1);
}

static void filter_rows_plain(float *U, const float *w, int C, int OC, int r, int flip) {
    filter_rows_body(U, w, C, OC, r, flip, 0);
}

struct filter_args {
    float *U;
    const float *w;
    int C, OC, flip;
    void (*rows)(float *, const float *, int, int, int, int);
};

/* Item r = row r of U, written by this item alone. */
static void filter_items(void *p, long r0, long r1) {
    const struct filter_args *a = p;
    for (long r = r0; r < r1; r++) a->rows(a->U, a->w, a->C, a->OC, (int)r, a->flip);
    /* Non-temporal stores are weakly ordered: drain this thread's before the loop ends, so the
     * products, on any thread, read them once core_pool_for has returned. */
    _mm_sfence();
}

static void filter_transform(float *U, const float *w, int C, int OC, int flip) {
    struct filter_args a = {U, w, C, OC, flip,
                            __builtin_cpu_supports("avx512f") ? filter_rows_avx512
                                                              : filter_rows_plain};
    core_pool_for(flip ? C : OC, (size_t)C * OC >= 4096, filter_items, &a);
}

/* Vectors of 4, 8 and 16 floats (GCC's vector extensions: the same IEEE operations as the scalar
 * code, lane by lane, in every clone) and their unaligned forms for loads and stores. */
typedef float f4 __attribute__((vector_size(16)));
typedef float f8 __attribute__((vector_size(32)));
typedef float f16 __attribute__((vector_size(64)));
typedef float f4u __attribute__((vector_size(16), aligned(4)));
typedef float f8u __attribute__((vector_size(32), aligned(4)));
typedef float f16u __attribute__((vector_size(64), aligned(4)));

/* The six values of B^T x for one column x0..x5 (B^T as in the header), to v[k], v[vs + k], ...,
 * v[5·vs + k]: the one place the input transform's arithmetic is written (down and across).
 * T is float, f4u or f8u (the wide loops handle 4 or 8 tiles at once); a vector goes to
 * v[k .. k + lanes) of each plane. */
#define BT6(T, v, vs, k, x0, x1, x2, x3, x4, x5)                                                  \
    do {                                                                                           \
        *(T *)((v) + (k)) = (4 * (x0) - 5 * (x2)) + (x4);                                          \
        *(T *)((v) + (vs) + (k)) = -4 * ((x1) + (x2)) + ((x3) + (x4));                              \
        *(T *)((v) + 2 * (vs) + (k)) = 4 * ((x1) - (x2)) - ((x3) - (x4));                           \
        *(T *)((v) + 3 * (vs) + (k)) = 2 * ((x3) - (x1)) + ((x4) - (x2));                           \
        *(T *)((v) + 4 * (vs) + (k)) = 2 * ((x1) - (x3)) + ((x4) - (x2));                           \
        *(T *)((v) + 5 * (vs) + (k)) = (4 * (x1) - 5 * (x3)) + (x5);                                \
    } while (0)

/* Eight tiles' columns b = 0..3 from the 32 floats at d (column 4t + b of tile t): two loads and
 * one two-source permute per column (vpermt2ps), where the strided loads they replace went one
 * float at a time. */
#define DEINTERLEAVE8(d, x0, x1, x2, x3)                                                           \
    do {                                                                                           \
        f16 lo_ = *(const f16u *)(d), hi_ = *(const f16u *)((d) + 16);                             \
        x0 = __builtin_shufflevector(lo_, hi_, 0, 4, 8, 12, 16, 20, 24, 28);                       \
        x1 = __builtin_shufflevector(lo_, hi_, 1, 5, 9, 13, 17, 21, 25, 29);                       \
        x2 = __builtin_shufflevector(lo_, hi_, 2, 6, 10, 14, 18, 22, 26, 30);                      \
        x3 = __builtin_shufflevector(lo_, hi_, 3, 7, 11, 15, 19, 23, 27, 31);                      \
    } while (0)
#define DEINTERLEAVE4(d, x0, x1, x2, x3)                                                           \
    do {                                                                                           \
        f16 a_ = *(const f16u *)(d);                                                               \
        x0 = __builtin_shufflevector(a_, a_, 0, 4, 8, 12);                                         \
        x1 = __builtin_shufflevector(a_, a_, 1, 5, 9, 13);                                         \
        x2 = __builtin_shufflevector(a_, a_, 2, 6, 10, 14);                                        \
        x3 = __builtin_shufflevector(a_, a_, 3, 7, 11, 15);                                        \
    } while (0)

/* Which row kernels run: the permute versions (wide = 1) where the CPU has AVX-512, whose
 * two-source permutes they are written for (compiled for AVX2 or SSE, GCC lowers the 16-float
 * shuffles to long sequences: 2-3x slower than the plain loops, measured); the plain loops
 * elsewhere. The same operations in the same order, so the same bits (test_winograd runs both). */
static int rows_plain_forced;
void winograd_force_plain_rows(int on) { __atomic_store_n(&rows_plain_forced, on, __ATOMIC_RELAXED); }
static int rows_wide(void) {
    return !__atomic_load_n(&rows_plain_forced, __ATOMIC_RELAXED) && __builtin_cpu_supports("avx512f");
}

/* B^T applied down six input rows (t_i = Σ_a B^T[i][a] r_a; r[a] holds the W pixels of row a, or
 * zeros for a row outside the image) into the padded rows t_i of width pw = 4·tw + 2 (column 0
 * and columns past W are the zero padding, whose B^T is zero), and across: for each of the six
 * rows of t, six values per tile from columns 4tx .. 4tx+5, stored at V[(6i + j)·vs + tx]. t holds
 * 6·pw floats, then two that the wide loop may read (never used), then e, 4·(tw + 1) floats of
 * scratch for the plain loop. The rows are read where they lie: copying them into a padded
 * buffer first cost a memset and a memcpy of a few dozen floats per row (with the gradient
 * transform's, 2 % of a training step).
 * Across, a tile's six columns overlap the next tile's by two, which no compiler vectorises.
 * Wide: 8 (then 4) tiles at a time are de-interleaved with permutes and the arithmetic runs on
 * vectors. Per call, one thread: 112 -> 60 ns at 8 tiles a row, 152 -> 81 at 16, 65 -> 35 at 4
 * (session 14, against the plain loop's AVX-512 clone). Plain: from 8 tiles a row the columns
 * are first split into four arrays by column mod 4 with scalar copies, and the arithmetic then
 * runs on unit-stride vectors (130 -> 104 ns at 8 tiles, 259 -> 148 at 16; at 4 tiles the copy
 * costs more than it saves, 68 -> 84, so 16x16 layers keep the scalar loop). */
static inline __attribute__((always_inline)) void input_rows_body(float *V, size_t vs,
                                                                   const float *const r[6], int W,
                                                                   int pw, int tw, float *t,
                                                                   int wide) {
    const float *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3], *r4 = r[4], *r5 = r[5];
    for (int i = 0; i < 6; i++) {
        float *ti = t + (size_t)i * pw;
        ti[0] = 0;
        for (int x = W + 1; x < pw; x++) ti[x] = 0;
    }
    #pragma omp simd
    for (int x = 0; x < W; x++)
        BT6(float, t, (size_t)pw, (size_t)x + 1, r0[x], r1[x], r2[x], r3[x], r4[x], r5[x]);
    float *e0 = t + 6 * pw + 2, *e1 = e0 + tw + 1, *e2 = e1 + tw + 1, *e3 = e2 + tw + 1;
    for (int i = 0; i < 6; i++) {
        const float *s = t + (size_t)i * pw;
        float *v = V + (size_t)(6 * i) * vs;
        int tx = 0;
        if (wide) {
            for (; tx + 8 <= tw; tx += 8) {   /* columns 4tx .. 4tx+35: two past the last row */
                f8 x0, x1, x2, x3, x4, x5, unused2, unused3;
                DEINTERLEAVE8(s + 4 * tx, x0, x1, x2, x3);
                DEINTERLEAVE8(s + 4 * tx + 4, x4, x5, unused2, unused3);
                (void)unused2, (void)unused3;
                BT6(f8u, v, vs, (size_t)tx, x0, x1, x2, x3, x4, x5);
            }
            for (; tx + 4 <= tw; tx += 4) {
                f4 x0, x1, x2, x3, x4, x5, unused2, unused3;
                DEINTERLEAVE4(s + 4 * tx, x0, x1, x2, x3);
                DEINTERLEAVE4(s + 4 * tx + 4, x4, x5, unused2, unused3);
                (void)unused2, (void)unused3;
                BT6(f4u, v, vs, (size_t)tx, x0, x1, x2, x3, x4, x5);
            }
        } else if (tw >= 8) {
            for (int k = 0; k < tw; k++) {
                e0[k] = s[4 * k];
                e1[k] = s[4 * k + 1];
                e2[k] = s[4 * k + 2];
                e3[k] = s[4 * k + 3];
            }
            e0[tw] = s[4 * tw];
            e1[tw] = s[4 * tw + 1];
            #pragma omp simd
            for (int k = 0; k < tw; k++)
                BT6(float, v, vs, (size_t)k, e0[k], e1[k], e2[k], e3[k], e0[k + 1], e1[k + 1]);
            tx = tw;
        }
        for (; tx < tw; tx++) {
            const float *d = s + 4 * tx;
            BT6(float, v, vs, (size_t)tx, d[0], d[1], d[2], d[3], d[4], d[5]);
        }
    }
}

typedef void (*input_rows_fn)(float *, size_t, const float *const[6], int, int, int, float *);
__attribute__((target("avx512f"))) static void input_rows_wide(float *V, size_t vs,
                                                               const float *const r[6], int W,
                                                               int pw, int tw, float *t) {
    input_rows_body(V, vs, r, W, pw, tw, t, 1);
}
UNET_CLONES static void input_rows_plain(float *V, size_t vs, const float *const r[6], int W,
                                         int pw, int tw, float *t) {
    input_rows_body(V, vs, r, W, pw, tw, t, 0);
}

/* V[c][ξ][t] = (B^T d B)[i][j] for every tile t of channel c of one sample x [C,H,W];
 * V [C][36][T] (channel-major: one channel's transform is one contiguous run of 36·T floats). */
static void input_transform(float *V, const float *x, int c, int C, int H, int W) {
    int th = (H + 3) / 4, tw = (W + 3) / 4, T = th * tw, pw = 4 * tw + 2;
    /* six rows of B^T d, the two floats past them, the plain loop's scratch, a row of zeros */
    float buf[6 * pw + 2 + 4 * (tw + 1) + W];
    float *zero = buf + 6 * pw + 2 + 4 * (tw + 1);
    buf[6 * pw] = buf[6 * pw + 1] = 0;
    memset(zero, 0, (size_t)W * sizeof *zero);
    input_rows_fn rows_fn = rows_wide() ? input_rows_wide : input_rows_plain;
    const float *src = x + (size_t)c * H * W, *rows[6];
    for (int ty = 0; ty < th; ty++) {
        for (int a = 0; a < 6; a++) {
            int y = 4 * ty - 1 + a;
            rows[a] = y >= 0 && y < H ? src + (size_t)y * W : zero;
        }
        rows_fn(V + (size_t)c * 36 * T + (size_t)ty * tw, (size_t)T, rows, W, pw, tw, buf);
    }
}

/* The four values of A^T m for one column m0..m5 (A^T as in the header) into y0..y3: the one place
 * the output transform's arithmetic is written (down and across); T is float, f4 or f8. */
#define AT4(T, m0, m1, m2, m3, m4, m5, y0, y1, y2, y3)                                             \
    do {                                                                                           \
        T p_ = (m1) + (m2), q_ = (m1) - (m2), r_ = (m3) + (m4), s_ = (m3) - (m4);                  \
        y0 = ((m0) + p_) + r_;                                                                     \
        y1 = q_ + 2 * s_;                                                                          \
        y2 = p_ + 4 * r_;                                                                          \
        y3 = (q_ + 8 * s_) + (m5);                                                                 \
    } while (0)

/* A^T applied down the 36 planes m_ξ (ξ = 6i + j, planes vs apart, tw values each) and across:
 * out rows k = 0..3 of width 4·tw. Across, the four values of a tile go to interleaved places.
 * Wide: 8 (then 4) tiles at a time, interleaved into the row with permutes (as in input_rows):
 * 39 -> 37 ns per call at 8 tiles a row, 67 -> 56 at 16, 64 -> 51 at 4 (session 14). Plain: an
 * `omp simd` loop 8 lanes wide, which pays from 8 tiles a row (77 -> 41 ns per call at 8 tiles,
 * 133 -> 56 at 16; at 4 tiles no change, so the scalar loop stays there; 16 lanes left 8 tiles
 * scalar). The same bits every way. */
static inline __attribute__((always_inline)) void output_rows_body(float *o, const float *m,
                                                                    size_t vs, int tw, float *s,
                                                                    int wide) {
    /* s[k][j][tx] = Σ_i A^T[k][i] m_{6i+j}[tx] */
    for (int j = 0; j < 6; j++) {
        const float *m0 = m + (size_t)j * vs, *m1 = m0 + 6 * vs, *m2 = m1 + 6 * vs,
                    *m3 = m2 + 6 * vs, *m4 = m3 + 6 * vs, *m5 = m4 + 6 * vs;
        float *s0 = s + (size_t)j * tw, *s1 = s0 + 6 * tw, *s2 = s1 + 6 * tw, *s3 = s2 + 6 * tw;
        #pragma omp simd
        for (int tx = 0; tx < tw; tx++)
            AT4(float, m0[tx], m1[tx], m2[tx], m3[tx], m4[tx], m5[tx], s0[tx], s1[tx], s2[tx],
                s3[tx]);
    }
    for (int k = 0; k < 4; k++) {
        const float *s0 = s + (size_t)k * 6 * tw, *s1 = s0 + tw, *s2 = s1 + tw, *s3 = s2 + tw,
                    *s4 = s3 + tw, *s5 = s4 + tw;
        float *row = o + (size_t)k * 4 * tw;
        int tx = 0;
        if (wide) {
            for (; tx + 8 <= tw; tx += 8) {
                f8 o0, o1, o2, o3;
                AT4(f8, *(const f8u *)(s0 + tx), *(const f8u *)(s1 + tx),
                    *(const f8u *)(s2 + tx), *(const f8u *)(s3 + tx), *(const f8u *)(s4 + tx),
                    *(const f8u *)(s5 + tx), o0, o1, o2, o3);
                f16 a = __builtin_shufflevector(o0, o1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                13, 14, 15),
                    b = __builtin_shufflevector(o2, o3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
                                                13, 14, 15);
                *(f16u *)(row + 4 * tx) = __builtin_shufflevector(
                    a, b, 0, 8, 16, 24, 1, 9, 17, 25, 2, 10, 18, 26, 3, 11, 19, 27);
                *(f16u *)(row + 4 * tx + 16) = __builtin_shufflevector(
                    a, b, 4, 12, 20, 28, 5, 13, 21, 29, 6, 14, 22, 30, 7, 15, 23, 31);
            }
            for (; tx + 4 <= tw; tx += 4) {
                f4 o0, o1, o2, o3;
                AT4(f4, *(const f4u *)(s0 + tx), *(const f4u *)(s1 + tx),
                    *(const f4u *)(s2 + tx), *(const f4u *)(s3 + tx), *(const f4u *)(s4 + tx),
                    *(const f4u *)(s5 + tx), o0, o1, o2, o3);
                f8 a = __builtin_shufflevector(o0, o1, 0, 1, 2, 3, 4, 5, 6, 7),
                   b = __builtin_shufflevector(o2, o3, 0, 1, 2, 3, 4, 5, 6, 7);
                *(f16u *)(row + 4 * tx) = __builtin_shufflevector(
                    a, b, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
            }
        } else if (tw >= 8) {
            #pragma omp simd simdlen(8)
            for (int k2 = 0; k2 < tw; k2++)
                AT4(float, s0[k2], s1[k2], s2[k2], s3[k2], s4[k2], s5[k2], row[4 * k2],
                    row[4 * k2 + 1], row[4 * k2 + 2], row[4 * k2 + 3]);
            tx = tw;
        }
        for (; tx < tw; tx++)
            AT4(float, s0[tx], s1[tx], s2[tx], s3[tx], s4[tx], s5[tx], row[4 * tx],
                row[4 * tx + 1], row[4 * tx + 2], row[4 * tx + 3]);
    }
}

typedef void (*output_rows_fn)(float *, const float *, size_t, int, float *);
__attribute__((target("avx512f"))) static void output_rows_wide(float *o, const float *m,
                                                                size_t vs, int tw, float *s) {
    output_rows_body(o, m, vs, tw, s, 1);
}
UNET_CLONES static void output_rows_plain(float *o, const float *m, size_t vs, int tw, float *s) {
    output_rows_body(o, m, vs, tw, s, 0);
}

/* The n pixels of an output row r into d: d = r + bias, or d += r. Inline in output_transform
 * these loops compiled to scalar SSE (GCC's -O2 cost model does not vectorise a loop that needs
 * a remainder): 2.7 % of a training step (perf, session 14). Here `omp simd` in a cloned
 * function gives AVX-512; the same additions, so the same bits. */
UNET_CLONES static void output_row_out(float *restrict d, const float *restrict r, int n,
                                       float bias, int accumulate) {
    if (accumulate) {
        #pragma omp simd
        for (int x = 0; x < n; x++) d[x] += r[x];
    } else {
        #pragma omp simd
        for (int x = 0; x < n; x++) d[x] = r[x] + bias;
    }
}

/* Output channel o of one sample: y = A^T M A per tile, plus bias (accumulate = 0: y written;
 * 1: y added to what out holds). M [OC][36][T]. */
static void output_transform(float *y, const float *M, int o, int OC, int H, int W, float bias,
                             int accumulate) {
    int th = (H + 3) / 4, tw = (W + 3) / 4, T = th * tw;
    float buf[16 * tw + 24 * tw];   /* four output rows, then A^T M down the planes */
    float *dst = y + (size_t)o * H * W;
    output_rows_fn rows_fn = rows_wide() ? output_rows_wide : output_rows_plain;
    for (int ty = 0; ty < th; ty++) {
        rows_fn(buf, M + (size_t)o * 36 * T + (size_t)ty * tw, (size_t)T, tw, buf + 16 * tw);
        for (int k = 0; k < 4 && 4 * ty + k < H; k++)
            output_row_out(dst + (size_t)(4 * ty + k) * W, buf + (size_t)k * 4 * tw, W, bias,
                           accumulate);
    }
}

/* The six values of A y for one column y0..y3 to v[k], v[vs + k], ..., v[5·vs + k]: the one place
 * the gradient transform's arithmetic is written (down and across); T as in BT6. */
#define A6(T, v, vs, k, y0, y1, y2, y3)                                                            \
    do {                                                                                           \
        __typeof__(y0) e_ = (y0) + (y2), f_ = (y1) + (y3), g_ = (y0) + 4 * (y2),                   \
                       h_ = 2 * (y1) + 8 * (y3);                                                   \
        *(T *)((v) + (k)) = (y0);                                                                  \
        *(T *)((v) + (vs) + (k)) = e_ + f_;                                                        \
        *(T *)((v) + 2 * (vs) + (k)) = e_ - f_;                                                    \
        *(T *)((v) + 3 * (vs) + (k)) = g_ + h_;                                                    \
        *(T *)((v) + 4 * (vs) + (k)) = g_ - h_;                                                    \
        *(T *)((v) + 5 * (vs) + (k)) = (y3);                                                       \
    } while (0)

/* dM = A dY A^T per tile for output channel o of one sample's dout [OC,H,W], dM [OC][36][T]
 * (the adjoint of output_transform, zero beyond the image): A down four rows into z (six rows
 * of width pw = 4·tw), then across, a tile's four columns to six planes. Wide: 8 (then 4) tiles
 * at a time, de-interleaved with permutes (as in input_rows): 69 -> 28 ns per call at 8 tiles a
 * row, 99 -> 47 at 16, 38 -> 19 at 4 (session 14). Plain: an `omp simd` loop 8 lanes wide from
 * 8 tiles a row (134 -> 101 ns at 16 tiles, level at 4 and 8). */
static inline __attribute__((always_inline)) void grad_rows_body(float *dM, size_t vs,
                                                                  const float *const r[4], int W,
                                                                  int pw, int tw, float *z,
                                                                  int wide) {
    const float *y0 = r[0], *y1 = r[1], *y2 = r[2], *y3 = r[3];
    for (int i = 0; i < 6; i++)   /* columns past the image: zero, as A·0 */
        for (int x = W; x < pw; x++) z[(size_t)i * pw + x] = 0;
    #pragma omp simd
    for (int x = 0; x < W; x++)   /* z_i = Σ_k A^T[k][i] y_k */
        A6(float, z, (size_t)pw, (size_t)x, y0[x], y1[x], y2[x], y3[x]);
    for (int i = 0; i < 6; i++) {
        const float *s = z + (size_t)i * pw;
        float *v = dM + (size_t)(6 * i) * vs;
        int tx = 0;
        if (wide) {
            for (; tx + 8 <= tw; tx += 8) {
                f8 q0, q1, q2, q3;
                DEINTERLEAVE8(s + 4 * tx, q0, q1, q2, q3);
                A6(f8u, v, vs, (size_t)tx, q0, q1, q2, q3);
            }
            for (; tx + 4 <= tw; tx += 4) {
                f4 q0, q1, q2, q3;
                DEINTERLEAVE4(s + 4 * tx, q0, q1, q2, q3);
                A6(f4u, v, vs, (size_t)tx, q0, q1, q2, q3);
            }
        } else if (tw >= 8) {
            #pragma omp simd simdlen(8)
            for (int k = 0; k < tw; k++) {
                const float *q = s + 4 * k;
                A6(float, v, vs, (size_t)k, q[0], q[1], q[2], q[3]);
            }
            tx = tw;
        }
        for (; tx < tw; tx++) {
            const float *q = s + 4 * tx;
            A6(float, v, vs, (size_t)tx, q[0], q[1], q[2], q[3]);
        }
    }
}

typedef void (*grad_rows_fn)(float *, size_t, const float *const[4], int, int, int, float *);
__attribute__((target("avx512f"))) static void grad_rows_wide(float *dM, size_t vs,
                                                              const float *const r[4], int W,
                                                              int pw, int tw, float *z) {
    grad_rows_body(dM, vs, r, W, pw, tw, z, 1);
}
UNET_CLONES static void grad_rows_plain(float *dM, size_t vs, const float *const r[4], int W,
                                        int pw, int tw, float *z) {
    grad_rows_body(dM, vs, r, W, pw, tw, z, 0);
}

static void grad_transform(float *dM, const float *dy, int o, int OC, int H, int W) {
    int th = (H + 3) / 4, tw = (W + 3) / 4, T = th * tw, pw = 4 * tw;
    float buf[6 * pw + W];   /* six rows of A dY, a row of zeros (rows past the image) */
    float *zero = buf + 6 * pw;
    memset(zero, 0, (size_t)W * sizeof *zero);
    grad_rows_fn rows_fn = rows_wide() ? grad_rows_wide : grad_rows_plain;
    const float *src = dy + (size_t)o * H * W, *rows[4];
    for (int ty = 0; ty < th; ty++) {
        for (int k = 0; k < 4; k++) {
            int y = 4 * ty + k;
            rows[k] = y < H ? src + (size_t)y * W : zero;
        }
        rows_fn(dM + (size_t)o * 36 * T + (size_t)ty * tw, (size_t)T, rows, W, pw, tw, buf);
    }
}

/* dw[o][c] += G^T dU[o][·][c] G, dU [OC][36][C], in double, for the cn <= CB input channels from
 * c0 of output channel oc. Inlined with cn = CB for full blocks, so its loops have a constant
 * trip count and vectorise (as in filter_rows). */
static inline __attribute__((always_inline)) void filter_grad_block(float *dw, const float *src,
                                                                     int C, int oc, int c0,
                                                                     int cn) {
    double t[6][3][CB], o[9][CB];
    for (int i = 0; i < 6; i++) {   /* t = dU G */
        const float *u = src + (size_t)(6 * i) * C + c0;
        for (int cc = 0; cc < cn; cc++) {
            double x0 = u[cc], x1 = u[C + cc], x2 = u[2 * C + cc], x3 = u[3 * C + cc],
                   x4 = u[4 * C + cc], x5 = u[5 * C + cc];
            t[i][0][cc] = x0 * 0.25 - (x1 + x2) * R6 + (x3 + x4) * R24;
            t[i][1][cc] = (x2 - x1) * R6 + (x3 - x4) * R12;
            t[i][2][cc] = (x3 + x4 - x1 - x2) * R6 + x5;
        }
    }
    for (int b = 0; b < 3; b++)   /* dg = G^T t */
        for (int cc = 0; cc < cn; cc++) {
            double x0 = t[0][b][cc], x1 = t[1][b][cc], x2 = t[2][b][cc], x3 = t[3][b][cc],
                   x4 = t[4][b][cc], x5 = t[5][b][cc];
            o[b][cc] = x0 * 0.25 - (x1 + x2) * R6 + (x3 + x4) * R24;
            o[3 + b][cc] = (x2 - x1) * R6 + (x3 - x4) * R12;
            o[6 + b][cc] = (x3 + x4 - x1 - x2) * R6 + x5;
        }
    for (int cc = 0; cc < cn; cc++) {   /* one filter's 9 weights are contiguous */
        float *g = dw + ((size_t)oc * C + c0 + cc) * 9;
        for (int k = 0; k < 9; k++) g[k] += (float)o[k][cc];
    }
}

UNET_CLONES static void filter_grad_row(float *dw, const float *dU, int C, int oc) {
    const float *src = dU + (size_t)oc * 36 * C;
    for (int c0 = 0; c0 < C; c0 += CB)
        if (C - c0 >= CB) filter_grad_block(dw, src, C, oc, c0, CB);
        else filter_grad_block(dw, src, C, oc, c0, C - c0);
}

struct filter_grad_args {
    float *dw;
    const float *dU;
    int C;
};

/* Item oc: the C filters of output channel oc, which only this item writes. */
static void filter_grad_items(void *p, long o0, long o1) {
    const struct filter_grad_args *a = p;
    for (long oc = o0; oc < o1; oc++) filter_grad_row(a->dw, a->dU, a->C, (int)oc);
}

static void filter_grad(float *dw, const float *dU, int C, int OC) {
    struct filter_grad_args a = {dw, dU, C};
    core_pool_for(OC, (size_t)C * OC >= 4096, filter_grad_items, &a);
}

/* ------------------------------------------------------------------ the passes */

static int imin(int a, int b) { return a < b ? a : b; }

/* Samples per group for per-sample scratch of `per` floats. */
static int group_size(size_t per, int N) {
    size_t g = per ? GROUP_FLOATS / per : (size_t)N;
    return g < 1 ? 1 : (int)(g < (size_t)N ? g : (size_t)N);
}

/* One group's pass: the arguments of its pool loops. x, y: the group's first sample's input and
 * output, the next samples of the group `stride` samples further on (see forward_pass); V, M:
 * its transforms (per sample vn and mn floats); g samples. */
struct pass_args {
    const float *x, *U, *b;
    float *y, *V, *M;
    size_t vn, mn;
    int g, stride, C, H, W, OC, T, accumulate;
};

/* Item sc = (sample sc / C, channel sc % C): that channel's block of the sample's V. */
static void input_items(void *p, long i0, long i1) {
    const struct pass_args *a = p;
    int C = a->C, H = a->H, W = a->W;
    for (int sc = (int)i0; sc < (int)i1; sc++)
        input_transform(a->V + (size_t)(sc / C) * a->vn,
                        a->x + (size_t)(sc / C) * a->stride * C * H * W, sc % C, C, H, W);
}

/* Item sx = (sample sx / 36, ξ sx % 36): plane ξ of the sample's M (on cores with OpenBLAS's
 * small-matrix kernels gemm_sgemm_st runs it in row blocks that skip the packing of U_ξ; gemm.c,
 * "Row blocks"). Sample-major, so the thread that transformed a sample's input (input_items'
 * ranges split the same way) multiplies it. */
static void product_items(void *p, long i0, long i1) {
    const struct pass_args *a = p;
    int C = a->C, OC = a->OC, T = a->T;
    for (int sx = (int)i0; sx < (int)i1; sx++) {
        int s = sx / 36, xi = sx % 36;
        gemm_sgemm_st(0, 0, OC, T, C, 1.0f, a->U + (size_t)xi * C, 36 * C,
                      a->V + s * a->vn + (size_t)xi * T, 36 * T, 0.0f,
                      a->M + s * a->mn + (size_t)xi * T, 36 * T);
    }
}

/* Item so = (sample so / OC, output channel so % OC): that channel's plane of the sample's y. */
static void output_items(void *p, long i0, long i1) {
    const struct pass_args *a = p;
    int OC = a->OC, H = a->H, W = a->W;
    for (int so = (int)i0; so < (int)i1; so++)
        output_transform(a->y + (size_t)(so / OC) * a->stride * OC * H * W,
                         a->M + (size_t)(so / OC) * a->mn, so % OC, OC, H, W,
                         a->b ? a->b[so % OC] : 0.0f, a->accumulate);
}

/* out = conv(in) through transformed filters U [OC][36][C] (+ bias, or accumulated onto out).
 * scr: at least g·36·(C + OC)·T floats for the group size g chosen by the caller. Per group,
 * three pool loops, each the barrier before the next (V, then M, then y).
 * The groups are strided: of ng = ceil(N / G) groups, group k holds samples k, k + ng, k + 2ng, ...
 * Each loop's items are (sample, ...) in sample-major order, and the pool gives thread t the t-th
 * part of them first (core/pool.c, home ranges), so with G samples a group and G threads thread t
 * runs samples from the t-th part of the batch, as in the layers' loops over the whole batch:
 * a sample's activations stay with one thread from layer to layer. Which group a sample is in
 * changes no bit. */
static void forward_pass(float *out, const float *in, const float *U, const float *b, int N,
                         int C, int H, int W, int OC, int accumulate, float *scr, int G) {
    int T = ((H + 3) / 4) * ((W + 3) / 4), ng = (N + G - 1) / G;
    size_t vn = (size_t)36 * C * T, mn = (size_t)36 * OC * T;
    float *V = scr, *M = scr + (size_t)G * vn;
    double flops = 72.0 * OC * C * T;   /* per sample */
    for (int k = 0; k < ng; k++) {
        int g = (N - 1 - k) / ng + 1;
        struct pass_args a = {.x = in + (size_t)k * C * H * W, .U = U, .b = b,
                              .y = out + (size_t)k * OC * H * W, .V = V, .M = M, .vn = vn,
                              .mn = mn, .g = g, .stride = ng, .C = C, .H = H, .W = W, .OC = OC,
                              .T = T, .accumulate = accumulate};
        int par = g * flops >= GEMM_PAR_FLOPS;
        core_pool_for((long)g * C, par, input_items, &a);
        core_pool_for(36L * g, par, product_items, &a);
        core_pool_for((long)g * OC, par, output_items, &a);
    }
}

/* The buffers of one call: `fixed` floats (the transformed filters or their gradient) and groups
 * of `per` floats per sample, *G samples a group. The groups go in the caller's work area when
 * one sample fits there: that is the direct path's im2col buffer (9·C·H·W floats, at least one
 * sample's 36·(C + OC)·T when OC <= 3C), which a Winograd layer leaves unused, so the groups cost
 * no memory of their own and peak memory stays at the direct path's (issue 17's goal; ref64 at
 * batch 8 peaked 10 MiB higher with them in the scratch). Otherwise they follow `fixed` in the
 * thread's scratch (one sample a group when memory is short). Returns 0, or -1 when even that
 * does not fit. Which group a sample is in changes no bit (header). */
static int buffers(size_t fixed, size_t per, int N, float *work, size_t work_floats, float **fx,
                   float **groups, int *G) {
    if (work && per <= work_floats) {
        *G = (int)(work_floats / per < (size_t)N ? work_floats / per : (size_t)N);
        *fx = scratch(fixed);
        *groups = work;
        return *fx ? 0 : -1;
    }
    *G = group_size(per, N);
    float *s = scratch(fixed + (size_t)*G * per);
    if (!s && *G > 1) {
        *G = 1;
        s = scratch(fixed + per);
    }
    *fx = s;
    *groups = s ? s + fixed : NULL;
    return s ? 0 : -1;
}

int winograd_conv3x3_forward(float *out, const float *in, const float *w, const float *b, int N,
                             int C, int H, int W, int OC, float *work, size_t work_floats) {
    int T = ((H + 3) / 4) * ((W + 3) / 4), G;
    float *U, *groups;
    if (buffers((size_t)36 * OC * C, (size_t)36 * (C + OC) * T, N, work, work_floats, &U, &groups,
                &G))
        return -1;
    filter_transform(U, w, C, OC, 0);
    forward_pass(out, in, U, b, N, C, H, W, OC, 0, groups, G);
    return 0;
}

/* One group's gradient pass: x, dy: the group's first sample's input and dout; V, dM: their
 * transforms (per sample vn and mn floats); dU accumulates over groups; g samples. */
struct grad_args {
    const float *x, *dy;
    float *V, *dM, *dU;
    size_t vn, mn;
    int g, C, H, W, OC, T;
};

/* The group's transforms in one pool loop: item sc < g·C is (sample sc / C, channel sc % C) of
 * the input into V, item g·C + so is (sample so / OC, output channel so % OC) of dout into dM.
 * Each item writes its own block, and the two kinds write different buffers and read only the
 * caller's arrays, so they need no barrier between them: one loop saves one. */
static void grad_transform_items(void *p, long i0, long i1) {
    const struct grad_args *a = p;
    int C = a->C, H = a->H, W = a->W, OC = a->OC;
    long nv = (long)a->g * C;
    for (long i = i0; i < i1; i++)
        if (i < nv) {
            int sc = (int)i;
            input_transform(a->V + (size_t)(sc / C) * a->vn, a->x + (size_t)(sc / C) * C * H * W,
                            sc % C, C, H, W);
        } else {
            int so = (int)(i - nv);
            grad_transform(a->dM + (size_t)(so / OC) * a->mn,
                           a->dy + (size_t)(so / OC) * OC * H * W, so % OC, OC, H, W);
        }
}

/* Item ξ: dU_ξ += dM_ξ · V_ξ^T over the group's samples in order; dU_ξ is this item's alone. */
static void du_items(void *p, long i0, long i1) {
    const struct grad_args *a = p;
    int C = a->C, OC = a->OC, T = a->T;
    for (int xi = (int)i0; xi < (int)i1; xi++)
        for (int s = 0; s < a->g; s++)
            gemm_sgemm_st(0, 1, OC, C, T, 1.0f, a->dM + s * a->mn + (size_t)xi * T, 36 * T,
                          a->V + s * a->vn + (size_t)xi * T, 36 * T, 1.0f,
                          a->dU + (size_t)xi * C, 36 * C);
}

/* din: the forward pass on dout with the adjoint filters, accumulated. dw: per group, V of the
 * input and dM of dout per sample, then per ξ (one item each) dU_ξ += dM_ξ · V_ξ^T over the
 * group's samples in order; so every dU element sums samples and tiles in one fixed order, and
 * the thread count changes no bit. */
int winograd_conv3x3_backward(float *din, float *dw, const float *dout, const float *in,
                              const float *w, int N, int C, int H, int W, int OC, float *work,
                              size_t work_floats) {
    if (!din && !dw) return 0;
    int T = ((H + 3) / 4) * ((W + 3) / 4), G;
    size_t un = (size_t)36 * OC * C, vn = (size_t)36 * C * T, mn = (size_t)36 * OC * T;
    float *scr, *groups;
    if (buffers(un, vn + mn, N, work, work_floats, &scr, &groups, &G)) return -1;
    if (din) {
        filter_transform(scr, w, C, OC, 1);
        forward_pass(din, dout, scr, NULL, N, OC, H, W, C, 1, groups, G);
    }
    if (!dw) return 0;
    float *dU = scr, *V = groups, *dM = V + (size_t)G * vn;
    memset(dU, 0, un * sizeof *dU);
    double flops = 72.0 * OC * C * T;
    for (int n0 = 0; n0 < N; n0 += G) {
        int g = imin(G, N - n0);
        struct grad_args a = {.x = in + (size_t)n0 * C * H * W,
                              .dy = dout + (size_t)n0 * OC * H * W, .V = V, .dM = dM, .dU = dU,
                              .vn = vn, .mn = mn, .g = g, .C = C, .H = H, .W = W, .OC = OC,
                              .T = T};
        int par = g * flops >= GEMM_PAR_FLOPS;
        core_pool_for((long)g * (C + OC), par, grad_transform_items, &a);
        core_pool_for(36, par, du_items, &a);
    }
    filter_grad(dw, dU, C, OC);
    return 0;
}
