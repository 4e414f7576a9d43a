/* test_inception.c — the FID Inception network (metrics/inception*.c, metrics/fid_*.c).
 *
 * Weights and images come from an integer hash (metrics/inception_synth.c, mirrored in
 * tests/fixtures/make_inception_fixture.py), so both sides build the same network without storing
 * its 24M parameters; the fixture
 * tests/fixtures/inception_ref.safetensors holds torch's outputs. Checks, with tolerances
 * (relative error as tu_compare measures it, against |ref| + 1e-3 max|ref|):
 *   - every block type (stem, FIDInceptionA, InceptionB, FIDInceptionC, InceptionD,
 *     FIDInceptionE_1, FIDInceptionE_2) on small inputs against the naive double twin
 *     (unfolded BatchNorm, direct convolution): <= 5e-4 (float32 sums of up to 4032 terms);
 *   - the whole network at a reduced 75 x 75 input against the naive double chain: <= 5e-4;
 *   - both resizes against torch: F.interpolate bilinear <= 1e-6 (one ulp), affine_grid +
 *     grid_sample <= 1e-4 (torch's vectorised kernels round the last bit of the sampling coordinate
 *     differently; 1e-4 of a 0..255 value is one or two ulps of the coordinate);
 *   - the 2048 features of both preprocessings against pytorch-fid's InceptionV3 in torch, at
 *     299 x 299 from 28 x 28 gray, 32 x 32 RGB and 17 x 40 RGB images: <= 1e-3;
 *   - an image's features are bit-identical alone, inside a batch and on 1 or 2 threads;
 *   - float samples give bit-identical features in memory and after a PNG round trip;
 *   - bad weights: a missing tensor and a misshapen one fail naming the tensor.
 */
#include "pixdiff.h"
#include "testutil.h"
#include "core/safetensors.h"
#include "core/util.h"
#include "metrics/inception.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIXTURE PD_SOURCE_DIR "/tests/fixtures/inception_ref.safetensors"

/* ------------------------------------------------------------------ checks */

static void check_blocks(mt_inception *net, const st_file *w) {
    /* (block, C, H, W): small inputs that every branch of the block can take. */
    static const struct { int k, C, H, W; const char *what; } cases[] = {
        {0, 3, 40, 37, "stem"},          {1, 192, 7, 6, "FIDInceptionA (Mixed_5b)"},
        {4, 288, 7, 8, "InceptionB (Mixed_6a)"}, {5, 768, 5, 6, "FIDInceptionC (Mixed_6b)"},
        {9, 768, 5, 5, "InceptionD (Mixed_7a)"}, {10, 1280, 3, 4, "FIDInceptionE_1 (Mixed_7b)"},
        {11, 2048, 3, 3, "FIDInceptionE_2 (Mixed_7c)"},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int k = cases[t].k, C = cases[t].C, H = cases[t].H, W = cases[t].W;
        int OC, OH, OW;
        pd_error err = {{0}};
        int src = mt_inception_block_shape(net, k, C, H, W, &OC, &OH, &OW);
        tu_check(src == 0, "%s: shape of a %dx%dx%d input -> %dx%dx%d", cases[t].what, C, H, W, OC,
                 OH, OW);
        const size_t n_in = (size_t)C * H * W, n_out = (size_t)OC * OH * OW;
        float *x = malloc(sizeof(float) * n_in), *y = malloc(sizeof(float) * n_out);
        double *xd = malloc(sizeof(double) * n_in), *yd = malloc(sizeof(double) * n_out);
        tu_fill(x, n_in, 100 + (uint64_t)t, 1.0f);
        /* Blocks after the stem see ReLU outputs: non-negative inputs. */
        for (size_t i = 0; i < n_in; i++) {
            if (k > 0) x[i] = fabsf(x[i]);
            xd[i] = x[i];
        }
        int rc = mt_inception_block(net, k, x, C, H, W, y, &err);
        rc |= mt_inception_block_naive(net, w, k, xd, C, H, W, yd, &err);
        if (rc) printf("error: %s\n", err.msg);
        char name[96];
        snprintf(name, sizeof name, "block %s vs naive double", cases[t].what);
        tu_compare(name, y, yd, n_out, 5e-4);
        free(x), free(y), free(xd), free(yd);
    }
}

static void check_whole_reduced(mt_inception *net, const st_file *w) {
    const int H = 75, W = 75;
    const size_t n_in = (size_t)3 * H * W;
    float *x = malloc(sizeof(float) * n_in * 2), f[2 * INC_FEATURES];
    double *xd = malloc(sizeof(double) * n_in), fd[INC_FEATURES];
    tu_fill(x, n_in * 2, 7, 1.0f);
    for (size_t i = 0; i < n_in; i++) xd[i] = x[n_in + i];
    pd_error err = {{0}};
    int rc = mt_inception_forward(net, x, 2, H, W, f, &err);
    rc |= mt_inception_forward_naive(net, w, xd, H, W, fd, &err);
    if (rc) printf("error: %s\n", err.msg);
    tu_compare("whole network 75x75 vs naive double chain", f + INC_FEATURES, fd, INC_FEATURES, 5e-4);
    /* The same image alone, on one thread: the same bits. */
    float g[INC_FEATURES];
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    mt_inception_forward(net, x + n_in, 1, H, W, g, &err);
    omp_set_num_threads(nt);
    tu_check(!memcmp(g, f + INC_FEATURES, sizeof g),
             "75x75: image 1 alone on 1 thread == in a batch of 2 on %d threads (bit for bit)", nt);
    free(x), free(xd);
}

static void check_resize(const st_file *fx) {
    static const struct { const char *name; int H, W, OH, OW, every; } cases[] = {
        {"up28", 28, 28, 299, 299, 32}, {"up17x40", 17, 40, 299, 299, 32},
        {"small", 5, 7, 13, 11, 1},     {"down", 13, 11, 5, 7, 1},
        {"same", 9, 9, 9, 9, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int H = cases[k].H, W = cases[k].W, OH = cases[k].OH, OW = cases[k].OW;
        uint8_t *u8 = malloc((size_t)H * W);
        float *src = malloc(sizeof(float) * H * W), *dst = malloc(sizeof(float) * OH * OW);
        mt_synthetic_image(u8, 100 + (int)k, H * W);
        for (int m = 0; m < 2; m++) {
            char name[64];
            snprintf(name, sizeof name, "resize.%s.%s", m ? "tf" : "torch", cases[k].name);
            const st_tensor *t = st_find(fx, name);
            if (m == 1 && OH != 299) continue;
            if (!t) {
                tu_check(0, "fixture has %s", name);
                continue;
            }
            for (int i = 0; i < H * W; i++) src[i] = m ? (float)u8[i] : u8[i] / 255.0f;
            if (m) mt_resize_tf_legacy(dst, src, H, W, OH, OW);
            else mt_resize_torch_bilinear(dst, src, H, W, OH, OW);
            int rows = (OH + cases[k].every - 1) / cases[k].every;
            float *got = malloc(sizeof(float) * rows * OW);
            for (int r = 0; r < rows; r++)
                memcpy(got + (size_t)r * OW, dst + (size_t)r * cases[k].every * OW, sizeof(float) * OW);
            char label[96];
            snprintf(label, sizeof label, "%s vs torch", name);
            tu_compare_f(label, got, t->data, (size_t)rows * OW, m ? 1e-4 : 1e-6);
            free(got);
        }
        free(u8), free(src), free(dst);
    }
}

static void check_features(pd_inception *inc, const st_file *fx) {
    static const int img[3][3] = {{1, 28, 28}, {3, 32, 32}, {3, 17, 40}};
    for (int m = 0; m < PD_FID_PREP_COUNT; m++) {
        char name[64];
        snprintf(name, sizeof name, "features.%s", pd_fid_prep_name((pd_fid_prep)m));
        const st_tensor *t = st_find(fx, name);
        if (!t || t->numel != 3 * INC_FEATURES) {
            tu_check(0, "fixture has %s [3, 2048]", name);
            continue;
        }
        for (int k = 0; k < 3; k++) {
            const int C = img[k][0], H = img[k][1], W = img[k][2];
            uint8_t *u8 = malloc((size_t)C * H * W);
            mt_synthetic_image(u8, k, C * H * W);
            float f[INC_FEATURES];
            pd_error err = {{0}};
            if (pd_inception_features_u8(inc, u8, 1, C, H, W, (pd_fid_prep)m, f, &err))
                printf("error: %s\n", err.msg);
            char label[96];
            snprintf(label, sizeof label, "%s %dx%dx%d vs pytorch-fid in torch", name, C, H, W);
            tu_compare_f(label, f, t->data + (size_t)k * INC_FEATURES, INC_FEATURES, 1e-3);
            free(u8);
        }
    }
}

/* Float samples: in memory, and through a PNG, the same features. */
static void check_quantised(pd_inception *inc) {
    const int n = 3, C = 1, R = 28;
    const size_t img = (size_t)C * R * R;
    float *x = malloc(sizeof(float) * n * img);
    tu_fill(x, n * img, 42, 1.1f);   /* a little out of range: clipping is part of it */
    float *fa = malloc(sizeof(float) * n * INC_FEATURES), *fb = malloc(sizeof(float) * n * INC_FEATURES);
    pd_error err = {{0}};
    int rc = pd_inception_features(inc, x, n, C, R, R, PD_FID_PREP_PYTORCH_FID, fa, &err);
    char path[64];
    snprintf(path, sizeof path, "/tmp/pd_test_inception_%d.png", (int)getpid());
    for (int i = 0; i < n && !rc; i++) {
        float *y = NULL;
        int c, h, w;
        rc |= pd_png_write_grid(path, x + i * img, 1, C, R, R, 1, NULL, &err);
        rc |= pd_png_read(path, &y, &c, &h, &w, &err);
        if (!rc) rc |= pd_inception_features(inc, y, 1, c, h, w, PD_FID_PREP_PYTORCH_FID,
                                             fb + (size_t)i * INC_FEATURES, &err);
        free(y);
    }
    unlink(path);
    if (rc) printf("error: %s\n", err.msg);
    tu_check(!rc && !memcmp(fa, fb, sizeof(float) * n * INC_FEATURES),
             "samples in memory (batch of %d) == the same samples through PNG files (bit for bit)", n);
    free(x), free(fa), free(fb);
}

static void check_bad_weights(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/pd_test_inception_bad_%d.safetensors", (int)getpid());
    const char *names[1] = {"Conv2d_1a_3x3.conv.weight"};
    const int nd[1] = {4};
    long long shapes[1][8] = {{32, 3, 3, 3}};
    float *w = calloc(32 * 27, sizeof(float));
    const float *data[1] = {w};
    pd_error err = {{0}};
    pd_inception *inc = NULL;
    st_write(path, 1, names, nd, (const long long(*)[8])shapes, data, 0, NULL, NULL, &err);
    int rc = pd_inception_load(&inc, path, &err);
    tu_check(rc && strstr(err.msg, "Conv2d_1a_3x3.bn.weight") && strstr(err.msg, path),
             "weights without a BatchNorm tensor fail naming it: %s", err.msg);
    shapes[0][1] = 1;
    st_write(path, 1, names, nd, (const long long(*)[8])shapes, data, 0, NULL, NULL, &err);
    rc = pd_inception_load(&inc, path, &err);
    tu_check(rc && strstr(err.msg, "Conv2d_1a_3x3.conv.weight") && strstr(err.msg, "[32, 3, 3, 3]"),
             "a misshapen tensor fails naming it and the expected shape: %s", err.msg);
    unlink(path);
    free(w);
}

int main(void) {
    mt_inception arch, net;
    pd_error err = {{0}};
    mt_inception_arch(&arch);
    tu_check(arch.n_convs == 94 && arch.n_blocks == 12, "architecture: %d convolutions, %d blocks",
             arch.n_convs, arch.n_blocks);
    st_file w;
    mt_inception_synthetic(&w, &arch);
    if (mt_inception_from_st(&net, &w, &err)) {
        printf("error: %s\n", err.msg);
        return 1;
    }
    check_blocks(&net, &w);
    check_whole_reduced(&net, &w);

    st_file fx;
    if (st_read(&fx, FIXTURE, &err)) {
        printf("error: %s\n", err.msg);
        return 1;
    }
    check_resize(&fx);

    /* The public loader on the same weights written to a file. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/pd_test_inception_%d.safetensors", (int)getpid());
    pd_inception *inc = NULL;
    if (mt_inception_synthetic_write(path, &err) || pd_inception_load(&inc, path, &err)) {
        printf("error: %s\n", err.msg);
        unlink(path);
        return 1;
    }
    unlink(path);
    check_features(inc, &fx);
    check_quantised(inc);
    check_bad_weights();
    pd_inception_free(inc);
    st_free(&fx);
    st_free(&w);
    mt_inception_release(&net);
    return tu_finish();
}
