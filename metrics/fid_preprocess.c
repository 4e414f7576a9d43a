/* fid_preprocess.c — the two ways an 8-bit image becomes the FID network's 3 x 299 x 299 input
 * (pd_fid_prep in pixdiff.h; mt_fid_preprocess and the two resizes in inception.h).
 *
 * pytorch-fid: PIL's convert("RGB") replicates gray; torchvision's ToTensor gives u8 / 255 in
 * float32; F.interpolate(size=(299, 299), mode="bilinear", align_corners=False) samples output
 * pixel j at source s = (in/out)(j + 1/2) - 1/2, clamped below at 0, between pixels floor(s) and
 * floor(s) + 1 (the last one repeated at the edge) with weights 1 - l, l, l = s - floor(s); rows
 * first, then columns: out = (x00 wx0 + x01 wx1) wy0 + (x10 wx0 + x11 wx1) wy1, in ATen's order
 * (UpSampleKernel.cpp) with the weights as ATen computes them. ATen's kernel is vectorised and
 * compiled with FMA, so its last bits are not reproduced by portable C: the values here agree with
 * torch's to one float ulp (tests/test_inception.c: within 1e-6 relative), far below what
 * moves a feature. Then 2x - 1 (pytorch-fid's normalize_input).
 *
 * edm: the StyleGAN3 TorchScript detector (inception-2015-12-05.pkl) that EDM's and SiD's
 * fid.py call on uint8 images computes, in float32, theta = [[1, 0, 1/W - 1/299], [0, 1, 1/H -
 * 1/299]], affine_grid (align_corners=False) and grid_sample (bilinear, padding "border",
 * align_corners=False): output pixel j samples s = (g + 1) W/2 - 1/2, clamped to [0, W - 1], with
 * g = linspace(-1, 1, 299)_j (298/299) + 1/W - 1/299, i.e. s = j W/299 up to float rounding: TF1's
 * legacy resize_bilinear (no half-pixel centres) that the original TF FID applied. The float
 * chain (torch's linspace: start + step i below the midpoint, end - step (n - 1 - i) from it) and
 * grid_sample's four-tap weights are followed here on the 0..255 values; torch's vectorised
 * linspace rounds differently in the last bit of the coordinate, so values agree to within 1e-4
 * relative (tests/test_inception.c). Then (x - 128)/128.
 */
#include "metrics/inception.h"

#include <math.h>
#include <string.h>

static const char *const prep_names[] = {"pytorch-fid", "edm"};
_Static_assert(sizeof prep_names / sizeof prep_names[0] == PD_FID_PREP_COUNT, "fid prep names");

const char *pd_fid_prep_name(pd_fid_prep p) {
    return (unsigned)p < PD_FID_PREP_COUNT ? prep_names[p] : "?";
}

int pd_fid_prep_from_name(const char *name) {
    for (int i = 0; name && i < PD_FID_PREP_COUNT; i++)
        if (!strcmp(name, prep_names[i])) return i;
    return -1;
}

/* ------------------------------------------------------------------ torch bilinear */

/* Source index and weights of output index j (ATen's compute_indices_weights_linear): the
 * scale in float, the source index in double (measured against torch 1.13: this reproduces its
 * 1-D resizes bit for bit), the weights rounded to float. */
static void torch_tap(int j, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    const double scale = (float)in / (float)out;
    double s = scale * (j + 0.5) - 0.5;
    if (s < 0) s = 0;
    int i = (int)s;
    if (i > in - 1) i = in - 1;
    double l = s - i;
    if (l < 0) l = 0;
    if (l > 1) l = 1;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l1 = (float)l;
    *l0 = 1.0f - *l1;
}

void mt_resize_torch_bilinear(float *dst, const float *src, int H, int W, int OH, int OW) {
    for (int y = 0; y < OH; y++) {
        int y0, y1;
        float wy0, wy1;
        torch_tap(y, H, OH, &y0, &y1, &wy0, &wy1);
        const float *r0 = src + (size_t)y0 * W, *r1 = src + (size_t)y1 * W;
        for (int x = 0; x < OW; x++) {
            int x0, x1;
            float wx0, wx1;
            torch_tap(x, W, OW, &x0, &x1, &wx0, &wx1);
            double t0 = (double)r0[x0] * wx0 + (double)r0[x1] * wx1;
            double t1 = (double)r1[x0] * wx0 + (double)r1[x1] * wx1;
            dst[(size_t)y * OW + x] = (float)(t0 * wy0 + t1 * wy1);
        }
    }
}

/* ------------------------------------------------------------------ TF legacy via grid_sample */

/* torch.linspace(-1, 1, n)[j] in float32 (ATen RangeFactoriesKernel: symmetric from both ends). */
static float linspace_pm1(int j, int n) {
    const float step = 2.0f / (float)(n - 1);
    return j < n / 2 ? -1.0f + step * (float)j : 1.0f - step * (float)(n - 1 - j);
}

/* grid_sample's source coordinate (align_corners=False, border) of output j for an input of
 * size `in`: g = base_j + (1/in - 1/out), base_j = linspace * (out - 1) / out. */
static float tf_coord(int j, int in, int out) {
    const float shift = 1.0f / (float)in - 1.0f / (float)out;
    float base = linspace_pm1(j, out) * (float)(out - 1) / (float)out;
    float g = base + shift;
    float s = (g + 1.0f) * ((float)in / 2.0f) - 0.5f;   /* unnormalize, as ATen's vector path */
    if (s < 0.0f) s = 0.0f;
    if (s > (float)(in - 1)) s = (float)(in - 1);
    return s;
}

void mt_resize_tf_legacy(float *dst, const float *src, int H, int W, int OH, int OW) {
    for (int y = 0; y < OH; y++) {
        const float iy = tf_coord(y, H, OH);
        const int yn = (int)floorf(iy), ys = yn + 1;
        const float n = iy - (float)yn, s = 1.0f - n;
        for (int x = 0; x < OW; x++) {
            const float ix = tf_coord(x, W, OW);
            const int xw = (int)floorf(ix), xe = xw + 1;
            const float w = ix - (float)xw, e = 1.0f - w;
            /* ATen's vectorised grid_sampler_2d (GridSamplerKernel.cpp): the weights from the
             * fractional parts, taps outside the image read as 0, summed nw + ne + sw + se. */
            const float nw = s * e, ne = s * w, sw = n * e, se = n * w;
            const float vnw = src[(size_t)yn * W + xw], vne = xe < W ? src[(size_t)yn * W + xe] : 0.0f,
                        vsw = ys < H ? src[(size_t)ys * W + xw] : 0.0f,
                        vse = xe < W && ys < H ? src[(size_t)ys * W + xe] : 0.0f;
            dst[(size_t)y * OW + x] = vnw * nw + vne * ne + vsw * sw + vse * se;
        }
    }
}

/* ------------------------------------------------------------------ the network input */

void mt_fid_preprocess(float *out, const uint8_t *u8, int C, int H, int W, pd_fid_prep mode,
                       float *scratch) {
    const size_t P = (size_t)INC_SIZE * INC_SIZE, HW = (size_t)H * W;
    for (int c = 0; c < C; c++) {
        float *o = out + (size_t)c * P;
        for (size_t i = 0; i < HW; i++) {
            float v = (float)u8[(size_t)c * HW + i];
            scratch[i] = mode == PD_FID_PREP_EDM ? v : v / 255.0f;
        }
        if (mode == PD_FID_PREP_EDM) {
            mt_resize_tf_legacy(o, scratch, H, W, INC_SIZE, INC_SIZE);
            for (size_t i = 0; i < P; i++) o[i] = (o[i] - 128.0f) / 128.0f;
        } else {
            mt_resize_torch_bilinear(o, scratch, H, W, INC_SIZE, INC_SIZE);
            for (size_t i = 0; i < P; i++) o[i] = 2.0f * o[i] - 1.0f;
        }
    }
    for (int c = C; c < 3; c++) memcpy(out + (size_t)c * P, out, sizeof(float) * P);
}
