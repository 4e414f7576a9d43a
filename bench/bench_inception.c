/* bench_inception — throughput of the FID Inception-v3 (metrics/inception.c) on batches of 8-bit
 * images, preprocessing (resize to 299 x 299) included: images/s and GFLOP/s (2 multiply-adds per
 * weight and output pixel, summed over the 94 convolutions at 299 x 299) and CPU seconds per
 * image (all threads; the cost on a shared machine), best of `rounds` batches. Weights: a converted file, or the synthetic hashed ones (metrics/inception_synth.c;
 * the speed does not depend on the values). Checks nothing.
 *   bench_inception [--weights FILE] [--batch 50] [--rounds 3] [--threads T] [--size 32]
 *   bench_inception --write-weights FILE     write the synthetic weights as safetensors, exit
 * docs/benchmarks.md ("FID Inception") compares it with torchvision's Inception-v3
 * (bench/torch_inception.py) on the same machine.
 */
#include "pixdiff.h"
#include "core/util.h"
#include "metrics/inception.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* CPU seconds of the process so far (all threads): on a shared machine, CPU time per image is
 * what the work costs, wall time what it got. */
static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static double gflop_per_image(void) {
    mt_inception a;
    mt_inception_arch(&a);
    double f = 0;
    int C = 3, H = INC_SIZE, W = INC_SIZE;
    for (int k = 0; k < a.n_blocks; k++) {
        const inc_block *blk = &a.block[k];
        for (int r = 0; r < blk->nb; r++) {
            int h = H, w = W;
            for (int i = 0; i < blk->br[r].n; i++) {
                int op = blk->br[r].step[i].op;
                if (op == INC_MAX3S2) h = (h - 3) / 2 + 1, w = (w - 3) / 2 + 1;
                for (int j = 0; j < (op == INC_FORK ? 2 : op == INC_CONV ? 1 : 0); j++) {
                    const inc_conv *c = &a.conv[j ? blk->br[r].step[i].conv2 : blk->br[r].step[i].conv];
                    int oh = (h + 2 * c->ph - c->kh) / c->s + 1, ow = (w + 2 * c->pw - c->kw) / c->s + 1;
                    f += 2.0 * c->OC * c->C * c->kh * c->kw * oh * ow;
                    if (j == (op == INC_FORK)) h = oh, w = ow;
                }
            }
        }
        int OC, OH, OW;
        mt_inception_block_shape(&a, k, C, H, W, &OC, &OH, &OW);
        C = OC, H = OH, W = OW;
    }
    return f * 1e-9;
}

int main(int argc, char **argv) {
    const char *weights = NULL;
    int batch = 50, rounds = 3, threads = 0, size = 32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--write-weights") && i + 1 < argc) {
            pd_error err = {{0}};
            if (mt_inception_synthetic_write(argv[i + 1], &err)) {
                fprintf(stderr, "bench_inception: %s\n", err.msg);
                return 1;
            }
            return 0;
        }
        if (i + 1 >= argc) break;
        if (!strcmp(argv[i], "--weights")) weights = argv[++i];
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[++i]);
    }
    if (threads > 0) pd_set_threads(threads);
    pd_error err = {{0}};
    char tmp[64] = "";
    if (!weights) {
        snprintf(tmp, sizeof tmp, "/tmp/bench_inception_%d.safetensors", (int)getpid());
        if (mt_inception_synthetic_write(tmp, &err)) {
            fprintf(stderr, "bench_inception: %s\n", err.msg);
            return 1;
        }
        weights = tmp;
    }
    pd_inception *net = NULL;
    int rc = pd_inception_load(&net, weights, &err);
    if (*tmp) unlink(tmp);
    if (rc) {
        fprintf(stderr, "bench_inception: %s\n", err.msg);
        return 1;
    }
    const size_t img = (size_t)size * size;
    uint8_t *u8 = malloc(img * batch);
    float *feat = malloc(sizeof(float) * PD_INCEPTION_DIM * batch);
    for (int i = 0; i < batch; i++) mt_synthetic_image(u8 + i * img, i, (int)img);
    const double gf = gflop_per_image();
    double best = 1e30, best_cpu = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t0 = core_now(), c0 = cpu_seconds();
        if (pd_inception_features_u8(net, u8, batch, 1, size, size, PD_FID_PREP_PYTORCH_FID, feat, &err)) {
            fprintf(stderr, "bench_inception: %s\n", err.msg);
            return 1;
        }
        double dt = core_now() - t0, dc = cpu_seconds() - c0;
        printf("round %d: %d images in %.2f s: %.2f img/s, %.3f CPU s/image\n", r + 1, batch, dt,
               batch / dt, dc / batch);
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
    }
    printf("FID Inception, batch %d of %dx%d gray, %d threads, OpenBLAS %s: %.2f img/s, "
           "%.2f GFLOP/image, %.1f GFLOP/s, %.3f CPU s/image (%.1f GFLOP per CPU second; best of %d)\n",
           batch, size, size, pd_get_threads(), pd_blas_core(), batch / best, gf, gf * batch / best,
           best_cpu / batch, gf * batch / best_cpu, rounds);
    free(u8), free(feat);
    pd_inception_free(net);
    return 0;
}
