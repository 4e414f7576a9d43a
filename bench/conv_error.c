/* conv_error — the rounding error of each 3x3 convolution of a model on its two paths, for
 * docs/benchmarks.md: for every [OC, C, 3, 3] weight tensor whose name carries its resolution
 * ("model.enc.32x32_block0.conv0.weight"), the layer is run in float on one image of unit-normal
 * input through the direct (im2col + sgemm) and the Winograd F(4x4,3x3) kernels, and both are
 * compared with the double-precision direct definition: max|err| / max|ref|; with an OpenBLAS that
 * has cblas_sbgemm, also the direct path in bf16 (--precision bf16). Prints a row per layer and
 * the largest ratio; checks nothing. Usage: conv_error MODEL.safetensors
 */
#include "pixdiff.h"
#include "unet/layers.h"
#include "unet/precision.h"
#include "unet/songunet.h"
#include "unet/winograd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double normwise(const float *got, const double *ref, size_t n) {
    double scale = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(ref[i]));
        err = fmax(err, fabs(got[i] - ref[i]));
    }
    return err / scale;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: conv_error MODEL.safetensors\n");
        return 2;
    }
    pd_error err = {{0}};
    pd_model *m;
    if (pd_model_load(&m, argv[1], &err)) {
        fprintf(stderr, "conv_error: %s\n", err.msg);
        return 1;
    }
    conv_bf16_scope(1);   /* the layers as inside an evaluation, where bf16 may apply */
    int bf16 = pd_set_precision("bf16", &err) == 0;
    pd_set_precision("fp32", &err);
    printf("%-44s %5s %5s %7s %12s %12s %7s %12s\n", "layer", "C", "OC", "HxW", "direct", "winograd",
           "ratio", "direct bf16");
    double bf16_sum = 0;
    double worst = 0, sum_ratio = 0;
    int layers = 0, all = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const unet_tensor_info *ti = &m->tensors[t];
        int res = 0;
        if (ti->ndim != 4 || ti->shape[2] != 3 || ti->shape[3] != 3) continue;
        for (const char *p = ti->name; (p = strchr(p, '.')) != NULL; p++)
            if (sscanf(p + 1, "%dx%d_", &res, &res) == 2) break;
        if (res <= 0) continue;
        int OC = ti->shape[0], C = ti->shape[1], H = res;
        size_t ni = (size_t)C * H * H, no = (size_t)OC * H * H, nw = (size_t)OC * C * 9;
        const float *w = m->params + ti->offset;
        float *x = malloc(ni * sizeof *x), *y = malloc(no * sizeof *y),
              *col = malloc(9 * ni * sizeof *col);
        double *xd = malloc(ni * sizeof *xd), *wd = malloc(nw * sizeof *wd),
               *yd = malloc(no * sizeof *yd);
        pd_randn(x, ni, (uint64_t)t, 0);
        for (size_t i = 0; i < ni; i++) xd[i] = x[i];
        for (size_t i = 0; i < nw; i++) wd[i] = w[i];
        conv2d_forward_naive(yd, xd, wd, NULL, 1, C, H, H, OC, 3);
        conv_set_path(CONV_DIRECT);
        conv2d_forward(y, x, w, NULL, 1, C, H, H, OC, 3, col);
        double ed = normwise(y, yd, no), eb = NAN;
        if (bf16) {
            pd_set_precision("bf16", &err);
            conv2d_forward(y, x, w, NULL, 1, C, H, H, OC, 3, col);
            eb = normwise(y, yd, no);
            bf16_sum += eb;
            pd_set_precision("fp32", &err);
        }
        winograd_conv3x3_forward(y, x, w, NULL, 1, C, H, H, OC, NULL, 0);
        double ew = normwise(y, yd, no);
        conv_set_path(CONV_AUTO);
        int used = conv_winograd_applies(C, H, H, OC);
        printf("%-44s %5d %5d %4dx%-3d %12.3e %12.3e %7.1f %12.3e%s\n", ti->name, C, OC, H, H, ed,
               ew, ew / ed, eb, used ? "" : "  (runs direct)");
        if (used) {
            worst = fmax(worst, ew / ed);
            sum_ratio += ew / ed;
            layers++;
        }
        free(x); free(y); free(col); free(xd); free(wd); free(yd);
        all++;
    }
    printf("layers on Winograd: %d, error ratio winograd/direct: mean %.1f, max %.1f\n", layers,
           layers ? sum_ratio / layers : 0.0, worst);
    if (bf16 && all) printf("direct path in bf16: mean error %.2e over all %d layers\n", bf16_sum / all, all);
    pd_model_free(m);
    return 0;
}
