/* fid_features.c — the public Inception feature extractor (pd_inception_* in pixdiff.h): loads
 * the safetensors weights into the network of inception.c, and turns 8-bit (or float, quantised
 * as PNGs are) images into 2048-d pool3 features through one of the two preprocessings of
 * fid_preprocess.c. Images go through in chunks, so the 299 x 299 float inputs (1 MB each) never
 * need more than a chunk's worth of memory; within a chunk, preprocessing and the network run
 * OpenMP over images, and each image's result depends on nothing but its own pixels.
 */
#include "core/util.h"
#include "metrics/inception.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FID_CHUNK 16

struct pd_inception {
    mt_inception net;
    char path[1024];
};

int pd_inception_load(pd_inception **out, const char *path, pd_error *err) {
    *out = NULL;
    st_file f;
    pd_error e = {{0}};
    if (st_read(&f, path, &e)) return pd_fail(err, "%s", e.msg);
    pd_inception *p = calloc(1, sizeof *p);
    if (!p) {
        st_free(&f);
        return pd_fail(err, "%s: out of memory", path);
    }
    int rc = mt_inception_from_st(&p->net, &f, &e);
    st_free(&f);
    if (rc) {
        free(p);
        return pd_fail(err, "%s: %s", path, e.msg);
    }
    snprintf(p->path, sizeof p->path, "%s", path);
    *out = p;
    return 0;
}

void pd_inception_free(pd_inception *net) {
    if (!net) return;
    mt_inception_release(&net->net);
    free(net);
}

const char *pd_inception_path(const pd_inception *net) { return net ? net->path : ""; }

int pd_inception_features_u8(pd_inception *net, const uint8_t *u8, int n, int C, int H, int W,
                             pd_fid_prep prep, float *features, pd_error *err) {
    if (n < 0 || (C != 1 && C != 3) || H < 1 || W < 1)
        return pd_fail(err, "Inception: cannot take %d images of %dx%dx%d (need 1 or 3 channels)", n, C, H, W);
    if ((unsigned)prep >= PD_FID_PREP_COUNT) return pd_fail(err, "Inception: unknown preprocessing %d", (int)prep);
    if (n == 0) return 0;
    const size_t in_img = (size_t)3 * INC_SIZE * INC_SIZE, src_img = (size_t)C * H * W;
    const int T = omp_get_max_threads();
    float *x = malloc(sizeof(float) * in_img * FID_CHUNK);
    float *scratch = malloc(sizeof(float) * (size_t)H * W * (size_t)T);
    if (!x || !scratch) {
        free(x), free(scratch);
        return pd_fail(err, "Inception: out of memory for %d inputs of 3x%dx%d", FID_CHUNK, INC_SIZE, INC_SIZE);
    }
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += FID_CHUNK) {
        const int c = n - i0 < FID_CHUNK ? n - i0 : FID_CHUNK;
        #pragma omp parallel for schedule(static) if (c > 1)
        for (int i = 0; i < c; i++)
            mt_fid_preprocess(x + (size_t)i * in_img, u8 + (size_t)(i0 + i) * src_img, C, H, W, prep,
                              scratch + (size_t)H * W * omp_get_thread_num());
        rc = mt_inception_forward(&net->net, x, c, INC_SIZE, INC_SIZE,
                                  features + (size_t)i0 * INC_FEATURES, err);
    }
    free(x);
    free(scratch);
    return rc;
}

int pd_inception_features(pd_inception *net, const float *x, int n, int C, int H, int W,
                          pd_fid_prep prep, float *features, pd_error *err) {
    if (n < 0 || (C != 1 && C != 3) || H < 1 || W < 1)
        return pd_fail(err, "Inception: cannot take %d images of %dx%dx%d (need 1 or 3 channels)", n, C, H, W);
    const size_t img = (size_t)C * H * W;
    uint8_t *u8 = malloc(img * FID_CHUNK);
    if (!u8) return pd_fail(err, "Inception: out of memory");
    int rc = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += FID_CHUNK) {
        const int c = n - i0 < FID_CHUNK ? n - i0 : FID_CHUNK;
        for (size_t k = 0; k < img * (size_t)c; k++) u8[k] = pd_quantise_u8(x[(size_t)i0 * img + k]);
        rc = pd_inception_features_u8(net, u8, c, C, H, W, prep, features + (size_t)i0 * INC_FEATURES, err);
    }
    free(u8);
    return rc;
}
