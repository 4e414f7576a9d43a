/* inception.h — the FID Inception-v3 network inside the metrics room: its architecture as data
 * (a table of convolutions and blocks of branches), the fast float forward, the naive double
 * twin, and the two input preprocessings. The public entry points are pd_inception_* in
 * pixdiff.h; tests include this header to check each block against its naive twin.
 *
 * The network is torchvision's Inception3 as pytorch-fid patches it for FID (pytorch-fid
 * src/pytorch_fid/inception.py: FIDInceptionA/C/E_1/E_2), i.e. the TensorFlow graph
 * inception-2015-12-05 that the original FID code (Heusel et al. 2017) used: every convolution is
 * BasicConv2d (conv without bias, BatchNorm with eps 1e-3, ReLU); the 3x3 average pools of
 * Mixed_5b-5d, 6b-6e and 7b leave the padding out of the mean (count_include_pad=False, as TF's
 * SAME pooling); Mixed_7c's pool branch is a 3x3 max pool, stride 1, padding 1; the features are
 * the 2048 channel means after Mixed_7c (pytorch-fid's block 3, "pool3"). Tensor names are the
 * pytorch-fid state-dict names: <conv>.conv.weight and <conv>.bn.{weight,bias,running_mean,
 * running_var}; fc.* and num_batches_tracked are ignored.
 */
#ifndef PD_INCEPTION_H
#define PD_INCEPTION_H

#include "core/safetensors.h"
#include "pixdiff.h"

#define INC_FEATURES 2048
#define INC_SIZE 299          /* the input side both preprocessings resize to */
#define INC_BN_EPS 1e-3       /* BasicConv2d's BatchNorm eps (TF's default) */
#define INC_MAX_CONVS 96      /* the network has 94 */
#define INC_MAX_BLOCKS 12     /* stem + 11 mixed blocks */

/* One BasicConv2d: C -> OC channels, kernel kh x kw, stride s (both directions), zero padding
 * ph rows and pw columns on each side. w [OC, C, kh, kw] and b [OC] are the convolution with the
 * BatchNorm folded in (mt_inception_load). */
typedef struct inc_conv {
    char name[40];            /* "Mixed_5b.branch5x5_1" */
    int C, OC, kh, kw, s, ph, pw;
    float *w, *b;
} inc_conv;

/* A step of a branch: a convolution, a 3x3 pool, or a fork (two convolutions applied to the same
 * input, outputs concatenated: the InceptionE 1x3 / 3x1 pairs). */
typedef enum {
    INC_CONV,
    INC_AVG3,                 /* 3x3 average, stride 1, padding 1, padding not counted */
    INC_MAX3S1,               /* 3x3 max, stride 1, padding 1 (padding never wins) */
    INC_MAX3S2,               /* 3x3 max, stride 2, no padding */
    INC_FORK
} inc_op;

#define INC_MAX_STEPS 8
typedef struct inc_branch {
    int n;
    struct { inc_op op; int conv, conv2; } step[INC_MAX_STEPS];
} inc_branch;

/* A block: branches on the same input, outputs concatenated along channels in branch order. The
 * stem (Conv2d_1a_3x3 .. maxpool2) is block 0, one branch. */
typedef struct inc_block {
    char name[16];
    int nb;
    inc_branch br[4];
} inc_block;

typedef struct mt_inception {
    int n_convs, n_blocks;
    inc_conv conv[INC_MAX_CONVS];
    inc_block block[INC_MAX_BLOCKS];
    float *params;            /* one allocation: every folded w and b */
    /* per-thread workspaces, sized for in_h x in_w inputs (inc_ws in inception.c) */
    void **ws;
    int n_ws, ws_h, ws_w;
} mt_inception;

/* The architecture (names, shapes, blocks), without weights. */
void mt_inception_arch(mt_inception *net);
/* The architecture with weights read from f: every conv/bn tensor must be there with its shape
 * (errors name the tensor); BatchNorm folded in double: w' = w g / sqrt(v + eps),
 * b' = beta - m g / sqrt(v + eps). Other tensors are ignored. */
int mt_inception_from_st(mt_inception *net, const st_file *f, pd_error *err);
void mt_inception_release(mt_inception *net);

/* Output shape of block k for a C x H x W input; -1 when the input is too small. */
int mt_inception_block_shape(const mt_inception *net, int k, int C, int H, int W, int *OC,
                             int *OH, int *OW);
/* Block k on one image x [C, H, W] into out [OC, OH, OW], single-threaded, float. */
int mt_inception_block(mt_inception *net, int k, const float *x, int C, int H, int W, float *out,
                       pd_error *err);
/* The 2048 features of n network inputs x [n, 3, H, W] (already preprocessed), OpenMP over images;
 * an image's features depend on nothing else in the batch nor on the thread count. */
int mt_inception_forward(mt_inception *net, const float *x, int n, int H, int W, float *feat,
                         pd_error *err);

/* Naive double twins (inception_naive.c; tests): plain loops from the raw tensors of f, the
 * BatchNorm applied as BatchNorm (not folded). Same shapes as above. */
int mt_inception_block_naive(const mt_inception *arch, const st_file *f, int k, const double *x,
                             int C, int H, int W, double *out, pd_error *err);
int mt_inception_forward_naive(const mt_inception *arch, const st_file *f, const double *x, int H,
                               int W, double *feat, pd_error *err);

/* Synthetic weights and images from an integer hash (inception_synth.c; tests, benchmarks):
 * the weights of every convolution of arch into f (st_free it); 0, or -1 when out of memory.
 * _write saves them as a safetensors file. Image k: n bytes. */
int mt_inception_synthetic(st_file *f, const mt_inception *arch);
int mt_inception_synthetic_write(const char *path, pd_error *err);
void mt_synthetic_image(uint8_t *u8, int k, int n);

/* Preprocessing (fid_preprocess.c) of one 8-bit image u8 [C, H, W] (C = 1 or 3; gray is
 * replicated to RGB) into the network input out [3, 299, 299]; see pd_fid_prep in pixdiff.h. */
void mt_fid_preprocess(float *out, const uint8_t *u8, int C, int H, int W, pd_fid_prep mode,
                       float *scratch /* [H, W] */);
/* The resizes alone, one channel: src [H, W] -> dst [299, 299]. */
void mt_resize_torch_bilinear(float *dst, const float *src, int H, int W, int OH, int OW);
void mt_resize_tf_legacy(float *dst, const float *src, int H, int W, int OH, int OW);

#endif
