/* songunet.c — the EDM U-Net driver: forward and backward with preconditioning of every network
 * whose walk fills a unet_arch (SongUNet DDPM++/NCSN++, DhariwalUNet; Karras et al. 2022,
 * training/networks.py), over a parameter arena (pd_model) and an activation arena (unet_run).
 * One block implementation (EDM UNetBlock with its switches: adaptive scale/shift, heads, skip
 * scale, eps, resample filter, resample projection) and its backward serve every architecture.
 *
 * A unet_run is planned once for (max_batch, res, keep): every buffer request goes through one
 * planner, which in a sizing pass records sizes and in a second pass hands out pointers into a
 * single allocation. With keep = 1 every cache the backward needs is a buffer of its own (norm
 * outputs + mean/rstd, norm1 inputs, dropout masks, attention q/k/v, probabilities and outputs,
 * the concatenated decoder inputs, the skip stack, the mapping network's activations); SiLU
 * outputs and resampled tensors are recomputed from the kept norm outputs / block inputs in
 * backward. With keep = 0 the per-block caches share slots sized for the largest block, and only
 * the skip stack and two decoder ping-pong buffers hold whole tensors.
 *
 * Resolution: the net runs at any res divisible by 2^(levels-1); level l runs at res >> l.
 * Attention is decided per *level* from the trained resolution (level l has attention iff
 * img_resolution >> l is in attn_resolutions), so at 2x the size the same blocks attend, over
 * 4x as many positions. Tensor names always carry the trained resolutions.
 *
 * Determinism: our own loops (pool loops, core/pool.h) are elementwise or per-sample reductions
 * in a fixed order, each item's result independent of the thread that runs it; layer kernels
 * promise the same (layers.h), so an image's output does not depend on the batch it is in or on
 * the thread count.
 */
#include "unet/songunet.h"
#include "unet/unet_arch.h"
#include "unet/layers.h"
#include "unet/precision.h"
#include "nn/nn_layers.h"
#include "core/arena.h"
#include "core/pool.h"
#include "core/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* NCSN++'s aux_residual merge, (x + aux)/np.sqrt(2), divides by a float32 scalar. */
#define SQRT2F ((float)1.41421356237309504880)
/* Dropout stream of block b: opts->dropout_stream * DROPOUT_STREAMS + b (b < DROPOUT_STREAMS). */
#define DROPOUT_STREAMS 4096
/* Elementwise loops below this many elements run on one thread (a pool loop costs more). */
#define PAR_MIN 32768
/* Pool items of the elementwise loops: blocks of floats long enough that each one's inner loop
 * vectorises and a claim costs nothing beside it (as layers.c's). */
#define CHUNK 4096

/* Caches of one UNetBlock. Pointers into the run's arena (shared slots when keep = 0). */
typedef struct bact {
    float *in;                 /* block input: previous output, or cat (not separately owned) */
    float *cat;                /* decoder: concat([x, skip_scale * skip]) [N, cin, H, W] */
    float *n0, *mean0, *rstd0; /* norm0(in) */
    float *h1, *mean1, *rstd1; /* conv0(...) + affine(emb): norm1's input */
    float *n1;                 /* norm1(h1): the SiLU input */
    uint8_t *mask;             /* dropout mask of silu(n1) */
    float *p;                  /* affine(emb) [N, cout], or [N, 2·cout] = [scale | shift] */
    float *aux;                /* NCSN++ residual encoder: (out + aux_residual(aux_in))/√2 */
    const float *aux_in;       /* its input: the image c_in·x or the previous level's aux */
    float *y;                  /* (conv1 + skip) * s: the output, or attention's residual */
    float *n2, *mean2, *rstd2, *qkv, *att, *a; /* attention caches */
    float *out;                /* block output */
} bact;

/* Slots: buffers that share memory between blocks (always for TEMP/GSLOT, when keep = 0 for KEPT). */
enum {
    S_XIN, S_F, S_N0, S_M0, S_R0, S_H1, S_M1, S_R1, S_N1, S_MASK, S_P, S_Y, S_N2, S_M2, S_R2,
    S_QKV, S_ATT, S_A, S_CAT, S_DEC0, S_DEC1, S_AUXN, S_AUXM, S_AUXR, S_T0, S_T1, S_T2, S_COL,
    S_ASCR, S_MOD, S_AXP, S_AXC, G_0, G_1, G_2, G_4, G_P, G_DA, G_DB, G_DCAT, G_AX, S_COUNT
};
enum { KEPT, TEMP, PERSIST, GPERSIST, GSLOT };

typedef struct plan {
    int keep, pass;
    ar_arena ar;             /* the unshared buffers, after the slots (base NULL in pass 0) */
    size_t slot_size[S_COUNT], slot_off[S_COUNT];
} plan;

/* With keep = 0 a block's caches with disjoint lifetimes share one slot: norm0's output dies at
 * the SiLU before conv0 writes h1; norm1 runs in place (layers.h allows out == in); norm2's
 * output dies in the qkv conv before attention writes a. */
static int inference_slot(int slot) {
    return slot == S_H1 || slot == S_N1 || slot == S_N2 || slot == S_A ? S_N0 : slot;
}

static void *req(plan *p, int mode, int slot, size_t bytes) {
    bytes = (bytes + 63) & ~(size_t)63;
    if ((mode == GPERSIST || mode == GSLOT) && !p->keep) return NULL;
    if (mode == KEPT && !p->keep) slot = inference_slot(slot);
    int shared = mode == TEMP || mode == GSLOT || (mode == KEPT && !p->keep);
    if (shared) {
        if (p->pass == 0) {
            if (bytes > p->slot_size[slot]) p->slot_size[slot] = bytes;
            return NULL;
        }
        return p->ar.base + p->slot_off[slot];
    }
    return ar_take(&p->ar, bytes);
}
#define FL(n) ((size_t)(n) * sizeof(float))

/* ------------------------------------------------------------------ elementwise pool loops */

/* The elementwise updates of the block forward/backward and the residual-encoder merge, as pool
 * loops (core/pool.h) over CHUNK-float items. Each element's result depends on that element
 * alone, so the bits do not depend on the chunking or on which thread runs a chunk. */
enum ew_op {
    EW_SUM_SCALE, /* x = (x + y)·s */
    EW_SCALED,    /* x = s·y */
    EW_SCALE,     /* x *= s */
    EW_ADD,       /* x += y */
    EW_SUM_DIV,   /* x = (y + x)/s: NCSN++'s merge divides by √2 (not a multiply by 1/√2) */
    EW_DIV,       /* x /= s */
};

struct ew_args {
    enum ew_op op;
    float *x;
    const float *y;
    float s;
    size_t n;
};

static void ew_items(void *p, long c0, long c1) {
    const struct ew_args *a = p;
    size_t i0 = (size_t)c0 * CHUNK, i1 = (size_t)c1 * CHUNK < a->n ? (size_t)c1 * CHUNK : a->n;
    float *x = a->x;
    const float *y = a->y;
    const float s = a->s;
    switch (a->op) {   /* the switch sits outside the loops so each one vectorises on its own */
    case EW_SUM_SCALE:
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) x[i] = (x[i] + y[i]) * s;
        break;
    case EW_SCALED:
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) x[i] = s * y[i];
        break;
    case EW_SCALE:
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) x[i] *= s;
        break;
    case EW_ADD:
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) x[i] += y[i];
        break;
    case EW_SUM_DIV:
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) x[i] = (y[i] + x[i]) / s;
        break;
    case EW_DIV:
        #pragma omp simd
        for (size_t i = i0; i < i1; i++) x[i] /= s;
        break;
    }
}

/* x[i] = op(x[i], y[i], s) for i < n; threaded above PAR_MIN elements. */
static void ew(enum ew_op op, float *x, const float *y, float s, size_t n) {
    struct ew_args a = {op, x, y, s, n};
    core_pool_for((long)((n + CHUNK - 1) / CHUNK), n > PAR_MIN, ew_items, &a);
}

/* Per-plane pool loops over the N·co planes of L elements (item = one plane): the affine
 * embedding's bias add and, in backward, its gradient, each plane summed in its own fixed order. */
struct plane_args {
    float *h;        /* bias_planes: the planes, updated */
    const float *g;  /* sum_planes: the planes, read */
    float *gp;       /* sum_planes: one sum per plane */
    const float *p;  /* bias_planes: one bias per plane */
    size_t L;
};

static void bias_planes(void *p, long nc0, long nc1) {
    const struct plane_args *a = p;
    float *h1 = a->h;
    const float *pp = a->p;
    const size_t Lo = a->L;
    for (long nc = nc0; nc < nc1; nc++)
        for (size_t i = 0; i < Lo; i++) h1[nc * Lo + i] += pp[nc];
}

static void sum_planes(void *p, long nc0, long nc1) {
    const struct plane_args *a = p;
    const float *g1 = a->g;
    const size_t Lo = a->L;
    for (long nc = nc0; nc < nc1; nc++) {
        float acc = 0;
        for (size_t i = 0; i < Lo; i++) acc += g1[nc * Lo + i];
        a->gp[nc] = acc;
    }
}

struct unet_run {
    const pd_model *m;
    const unet_arch *a;
    int max_batch, res, keep;
    int hw[PD_MAX_LEVELS];     /* spatial size of each level at this res */
    int tap_skip;              /* the skip whose channel mean is the feature tap */
    char *arena;
    size_t bytes;
    /* preconditioning and mapping network */
    float *x, *xin, *F, *cnoise, *lab, *pe, *e0, *z0, *e1, *z1, *zl, *emb;
    bact *enc, *dec;
    float *skips[UNET_MAX_SKIPS];
    float *aux_n, *aux_mean, *aux_rstd;
    float *t0, *t1, *t2, *col, *ascr, *mod, *axp, *axc;
    /* backward */
    float *dskips[UNET_MAX_SKIPS];
    float *g0, *g1, *g2, *g4, *gp, *dA, *dB, *dcat, *gax;
    float *demb, *dz1, *de1, *dz0, *de0, *dcn, *dxin, *dF;
    /* the last forward */
    int n, have_fwd, dropout_on;
    uint64_t dseed, dstream;
    float sscale[UNET_MAX_SKIPS];
    unet_precond *pc, *pcd;
};

#define PW(t) (r->m->params + r->m->tensors[(t)].offset)
#define PB(t) (r->m->params + r->m->tensors[(t) + 1].offset)
#define BUF(b) (r->m->bufs + r->m->buffers[(b)].offset)
#define DW(t) (dp ? dp + r->m->tensors[(t)].offset : NULL)
#define DB(t) (dp ? dp + r->m->tensors[(t) + 1].offset : NULL)

/* ------------------------------------------------------------------ model structure */

int unet_num_skips(const pd_model *m) { return ((const unet_arch *)m->arch)->n_skips; }

int unet_tensor_index(const pd_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

/* ------------------------------------------------------------------ run planning */

static void plan_block(unet_run *r, plan *p, const unet_block *b, bact *ac, int dec_idx) {
    size_t N = r->max_batch;
    size_t Li = (size_t)r->hw[b->level_in] * r->hw[b->level_in];
    size_t Lo = (size_t)r->hw[b->level_out] * r->hw[b->level_out];
    size_t ci = b->cin, co = b->cout, gi = groupnorm_groups(b->cin), go = groupnorm_groups(b->cout);
    ac->cat = b->pop >= 0 ? req(p, KEPT, S_CAT, FL(N * ci * Li)) : NULL;
    ac->n0 = req(p, KEPT, S_N0, FL(N * ci * Li));
    ac->mean0 = req(p, KEPT, S_M0, FL(N * gi));
    ac->rstd0 = req(p, KEPT, S_R0, FL(N * gi));
    ac->h1 = req(p, KEPT, S_H1, FL(N * co * Lo));
    ac->mean1 = req(p, KEPT, S_M1, FL(N * go));
    ac->rstd1 = req(p, KEPT, S_R1, FL(N * go));
    ac->n1 = req(p, KEPT, S_N1, FL(N * co * Lo));
    ac->mask = req(p, KEPT, S_MASK, N * co * Lo);
    ac->p = req(p, KEPT, S_P, FL(N * co * (b->adaptive ? 2 : 1)));
    if (b->adaptive) r->mod = req(p, TEMP, S_MOD, FL(N * co * Lo));
    /* Outputs: encoder outputs are skips (always whole); decoder outputs ping-pong when keep = 0. */
    int oslot = dec_idx < 0 ? -1 : (dec_idx & 1 ? S_DEC1 : S_DEC0);
    float *outp = oslot < 0 ? req(p, PERSIST, 0, FL(N * co * Lo)) : req(p, KEPT, oslot, FL(N * co * Lo));
    if (b->attn) {
        ac->y = req(p, KEPT, S_Y, FL(N * co * Lo));
        ac->n2 = req(p, KEPT, S_N2, FL(N * co * Lo));
        ac->mean2 = req(p, KEPT, S_M2, FL(N * go));
        ac->rstd2 = req(p, KEPT, S_R2, FL(N * go));
        ac->qkv = req(p, KEPT, S_QKV, FL(N * 3 * co * Lo));
        ac->att = req(p, KEPT, S_ATT, FL(N * b->heads * Lo * Lo));
        ac->a = req(p, KEPT, S_A, FL(N * co * Lo));
        r->ascr = req(p, TEMP, S_ASCR, FL(3 * Lo * Lo + 3 * co * Lo));
    } else {
        ac->y = outp;
    }
    ac->out = outp;
    if (b->t_aux_residual >= 0) {
        /* The fused 3x3 conv runs on the aux input padded by one pixel (so the conv, padded one
         * more, covers EDM's padding 2), then the FIR takes it to the block's output size. */
        size_t Lp = (size_t)(r->hw[b->level_in] + 2) * (r->hw[b->level_in] + 2);
        ac->aux = req(p, PERSIST, 0, FL(N * co * Lo));
        r->axp = req(p, TEMP, S_AXP, FL(N * b->aux_cin * Lp));
        r->axc = req(p, TEMP, S_AXC, FL(N * (size_t)(co > (size_t)b->aux_cin ? co : (size_t)b->aux_cin) * Lp));
        r->col = req(p, TEMP, S_COL, FL(9 * b->aux_cin * Lp));
        r->gax = req(p, GSLOT, G_AX, FL(N * (size_t)(co > (size_t)b->aux_cin ? co : (size_t)b->aux_cin) * Lp));
    }
    size_t big_i = ci * Li > co * Lo ? ci * Li : co * Lo;
    size_t mid = ci * Lo > co * Lo ? ci * Lo : co * Lo;
    r->t0 = req(p, TEMP, S_T0, FL(N * big_i));
    r->t1 = req(p, TEMP, S_T1, FL(N * mid));
    r->t2 = req(p, TEMP, S_T2, FL(N * co * Lo));
    /* im2col of one sample (layers.h): conv0 and conv1 are 3x3 at the output resolution. */
    r->col = req(p, TEMP, S_COL, FL(9 * (ci > co ? ci : co) * Lo));
    /* Backward scratch (block_backward documents each buffer's use). */
    size_t g1 = co * Lo > ci * Li ? co * Lo : ci * Li;
    size_t g2 = 3 * co * Lo > ci * Lo ? 3 * co * Lo : ci * Lo;
    r->g0 = req(p, GSLOT, G_0, FL(N * co * Lo));
    r->g1 = req(p, GSLOT, G_1, FL(N * g1));
    r->g2 = req(p, GSLOT, G_2, FL(N * g2));
    r->g4 = req(p, GSLOT, G_4, FL(N * g1));
    r->gp = req(p, GSLOT, G_P, FL(N * co * (b->adaptive ? 2 : 1)));
    if (dec_idx >= 0) {
        r->dA = req(p, GSLOT, G_DA, FL(N * (co * Lo > ci * Li ? co * Lo : ci * Li)));
        r->dB = req(p, GSLOT, G_DB, FL(N * (co * Lo > ci * Li ? co * Lo : ci * Li)));
        if (b->pop >= 0) r->dcat = req(p, GSLOT, G_DCAT, FL(N * ci * Li));
    }
}

static void plan_run(unet_run *r, plan *p) {
    const pd_unet_config *c = &r->m->cfg;
    const unet_arch *a = r->a;
    size_t N = r->max_batch, C = c->in_channels, L0 = (size_t)r->res * r->res;
    size_t c0 = a->enc_conv_out;
    r->x = req(p, GPERSIST, 0, FL(N * C * L0));
    r->xin = req(p, KEPT, S_XIN, FL(N * C * L0));
    r->F = req(p, KEPT, S_F, FL(N * c->out_channels * L0));
    r->cnoise = req(p, PERSIST, 0, FL(N));
    r->lab = req(p, PERSIST, 0, FL(N * (c->label_dim ? c->label_dim : 1)));
    r->pe = req(p, PERSIST, 0, FL(N * a->noise_ch));
    r->e0 = req(p, PERSIST, 0, FL(N * a->noise_ch));
    r->z0 = req(p, PERSIST, 0, FL(N * a->emb_ch));
    r->e1 = req(p, PERSIST, 0, FL(N * a->emb_ch));
    r->z1 = req(p, PERSIST, 0, FL(N * a->emb_ch));
    r->zl = req(p, PERSIST, 0, FL(N * a->emb_ch));
    r->emb = req(p, PERSIST, 0, FL(N * a->emb_ch));
    r->skips[0] = req(p, PERSIST, 0, FL(N * c0 * L0));
    r->col = req(p, TEMP, S_COL, FL(9 * C * L0));
    for (int i = 0; i < a->n_enc; i++) {
        plan_block(r, p, &a->enc[i], &r->enc[i], -1);
        if (p->pass) r->enc[i].in = NULL;
    }
    for (int i = 0; i < a->n_dec; i++) plan_block(r, p, &a->dec[i], &r->dec[i], i);
    /* Encoder outputs are the skip stack (a residual-encoder down block's is its aux merge);
     * block inputs are the previous module's output. */
    for (int s = 1; s < a->n_skips; s++) {
        const bact *ac = &r->enc[a->skip_src[s]];
        r->skips[s] = a->enc[a->skip_src[s]].t_aux_residual >= 0 ? ac->aux : ac->out;
    }
    const float *aux = r->xin;
    for (int i = 0; i < a->n_enc; i++)
        if (a->enc[i].t_aux_residual >= 0) {
            r->enc[i].aux_in = aux;
            aux = r->enc[i].aux;
        }
    for (int i = 0; i < a->n_enc; i++) {
        int s = 0;
        while (a->skip_src[s] != i) s++;
        r->enc[i].in = r->skips[s - 1];
    }
    for (int i = 0; i < a->n_dec; i++)
        r->dec[i].in = a->dec[i].pop >= 0 ? r->dec[i].cat
                       : i == 0 ? r->skips[a->n_skips - 1] : r->dec[i - 1].out;
    size_t cl = (size_t)a->dec[a->n_dec - 1].cout;
    r->aux_n = req(p, KEPT, S_AUXN, FL(N * cl * L0));
    r->col = req(p, TEMP, S_COL, FL(9 * C * L0));
    r->aux_mean = req(p, KEPT, S_AUXM, FL(N * groupnorm_groups((int)cl)));
    r->aux_rstd = req(p, KEPT, S_AUXR, FL(N * groupnorm_groups((int)cl)));
    r->t0 = req(p, TEMP, S_T0, FL(N * cl * L0));
    r->col = req(p, TEMP, S_COL, FL(9 * cl * L0));
    /* Gradients of the skip stack and of the mapping network / preconditioning (keep only). */
    for (int s = 0; s < a->n_skips; s++) {
        size_t hs = r->hw[a->skip_level[s]];
        r->dskips[s] = req(p, GPERSIST, 0, FL(N * a->skip_ch[s] * hs * hs));
    }
    r->dA = req(p, GSLOT, G_DA, FL(N * cl * L0));
    r->g1 = req(p, GSLOT, G_1, FL(N * cl * L0));
    r->g2 = req(p, GSLOT, G_2, FL(N * cl * L0));
    r->demb = req(p, GPERSIST, 0, FL(N * a->emb_ch));
    r->dz1 = req(p, GPERSIST, 0, FL(N * a->emb_ch));
    r->de1 = req(p, GPERSIST, 0, FL(N * a->emb_ch));
    r->dz0 = req(p, GPERSIST, 0, FL(N * a->emb_ch));
    r->de0 = req(p, GPERSIST, 0, FL(N * a->noise_ch));
    r->dcn = req(p, GPERSIST, 0, FL(N));
    r->dxin = req(p, GPERSIST, 0, FL(N * C * L0));
    r->dF = req(p, GPERSIST, 0, FL(N * c->out_channels * L0));
}

int unet_run_create(unet_run **out, const pd_model *m, int max_batch, int res, int keep,
                    pd_error *err) {
    *out = NULL;
    const pd_unet_config *c = &m->cfg;
    const unet_arch *a = m->arch;
    if (max_batch < 1) return pd_fail(err, "unet: batch size %d must be >= 1", max_batch);
    if (res == 0) res = c->img_resolution;
    int div = 1 << (c->n_levels - 1);
    if (res < div || res % div)
        return pd_fail(err, "unet: resolution %d is not a positive multiple of %d (the model has "
                       "%d levels)", res, div, c->n_levels);
    if (m->ids.kind == KIND_CLASSIFIER || !a)
        return pd_fail(err, "unet: model kind '%s' (arch '%s') is not a denoiser", c->kind,
                       c->arch);
    unet_run *r = calloc(1, sizeof *r);
    if (!r) return pd_fail(err, "out of memory");
    r->m = m;
    r->a = a;
    r->max_batch = max_batch;
    r->res = res;
    r->keep = keep ? 1 : 0;
    for (int l = 0; l < c->n_levels; l++) r->hw[l] = res >> l;
    /* AMED's tap (docs/algorithms.md §S4.4): the last encoder output of the level that runs at 8x8, or
     * of the lowest level when none does. */
    int tap_level = c->n_levels - 1;
    for (int l = 0; l < c->n_levels; l++)
        if (r->hw[l] == 8) tap_level = l;
    for (int s = 0; s < a->n_skips; s++)
        if (a->skip_level[s] == tap_level) r->tap_skip = s;
    r->enc = calloc(a->n_enc ? a->n_enc : 1, sizeof *r->enc);
    r->dec = calloc(a->n_dec, sizeof *r->dec);
    r->pc = calloc(max_batch, sizeof *r->pc);
    r->pcd = calloc(max_batch, sizeof *r->pcd);
    if (!r->enc || !r->dec || !r->pc || !r->pcd) goto oom;
    plan p;
    memset(&p, 0, sizeof p);
    p.keep = r->keep;
    plan_run(r, &p);
    size_t slots = 0;
    for (int s = 0; s < S_COUNT; s++) { p.slot_off[s] = slots; slots += p.slot_size[s]; }
    r->bytes = slots + p.ar.off;
    r->arena = core_alloc(r->bytes);
    if (!r->arena) {
        double mib = r->bytes / 1048576.0;
        unet_run_free(r);
        return pd_fail(err, "unet: out of memory for %.1f MiB of activations (batch %d, %dx%d)",
                       mib, max_batch, res, res);
    }
    p.ar.base = r->arena;
    p.ar.off = slots;
    p.pass = 1;
    plan_run(r, &p);
    *out = r;
    return 0;
oom:
    unet_run_free(r);
    return pd_fail(err, "out of memory");
}

void unet_run_free(unet_run *r) {
    if (!r) return;
    core_free(r->arena);
    free(r->enc);
    free(r->dec);
    free(r->pc);
    free(r->pcd);
    free(r);
}

size_t unet_run_bytes(const unet_run *r) { return r->bytes; }

int unet_feature_dim(const unet_run *r) {
    int h = r->hw[r->a->skip_level[r->tap_skip]];
    return h * h;
}

/* ------------------------------------------------------------------ forward */

/* EDM Conv2d's up/down step with the config's resample_filter: [1,1] is the 2x2 average /
 * nearest x2 (bit-identical to the FIR form), others the FIR of nn/fir.c. H is the input size. */
static void resample_forward(const unet_arch *a, float *out, const float *in, const unet_block *b,
                             int N, int C, int H) {
    if (a->fir && b->down) fir_down_forward(out, in, a->fir_f, a->fir_K, a->fir_pad, N, C, H, H);
    else if (a->fir) fir_up_forward(out, in, a->fir_f, a->fir_K, a->fir_pad, N, C, H, H);
    else if (b->down) avgpool2_forward(out, in, N, C, H, H);
    else upsample2_forward(out, in, N, C, H, H);
}

/* NCSN++'s residual encoder after a down block (EDM SongUNet encoder_type 'residual'):
 * aux = (out + aux_residual(aux_in))/√2, aux_residual = EDM Conv2d(kernel 3, down,
 * fused_resample): the 3x3 conv padded 2, then the FIR with stride 2 and no padding. */
static void aux_forward(unet_run *r, const unet_block *b, bact *ac, int N) {
    const unet_arch *a = r->a;
    int Hi = r->hw[b->level_in], Hp = Hi + 2, ca = b->aux_cin, co = b->cout;
    pad1_forward(r->axp, ac->aux_in, N, ca, Hi, Hi);
    conv2d_forward(r->axc, r->axp, PW(b->t_aux_residual), PB(b->t_aux_residual), N, ca, Hp, Hp, co,
                   3, r->col);
    fir_down_forward(ac->aux, r->axc, a->fir_f, a->fir_K, 0, N, co, Hp, Hp);
    size_t no = (size_t)N * co * r->hw[b->level_out] * r->hw[b->level_out];
    ew(EW_SUM_DIV, ac->aux, ac->out, SQRT2F, no);
}

/* One EDM UNetBlock: h = conv0(resample(silu(norm0(x)))); with adaptive scale
 * h = silu(shift + norm1(h)·(scale + 1)), [scale | shift] = affine(emb), else
 * h = silu(norm1(h + affine(emb))); y = (conv1(dropout(h)) + skip(x))·skip_scale, skip = 1x1 conv
 * of the resampled x, the resampled x alone (kernel 0), or x; then optional multi-head attention
 * o = (proj(attn(qkv(norm2(y)))) + y)·skip_scale. */
static void block_forward(unet_run *r, const unet_block *b, bact *ac, int N, int blk) {
    const pd_unet_config *c = &r->m->cfg;
    int Hi = r->hw[b->level_in], Ho = r->hw[b->level_out], ci = b->cin, co = b->cout;
    size_t Li = (size_t)Hi * Hi, Lo = (size_t)Ho * Ho;
    int gi = groupnorm_groups(ci), go = groupnorm_groups(co), E = r->a->emb_ch;
    const float s = b->skip_scale;
    groupnorm_forward(ac->n0, ac->mean0, ac->rstd0, ac->in, PW(b->t_norm0), PB(b->t_norm0), N, ci,
                      (int)Li, gi, b->eps);
    silu_forward(r->t0, ac->n0, (size_t)N * ci * Li);
    const float *conv_in = r->t0;
    if (b->up || b->down) {            /* conv0 resamples before its 3x3 conv (docs/algorithms.md §M4.1) */
        resample_forward(r->a, r->t1, r->t0, b, N, ci, Hi);
        conv_in = r->t1;
    }
    conv2d_forward(ac->h1, conv_in, PW(b->t_conv0), PB(b->t_conv0), N, ci, Ho, Ho, co, 3, r->col);
    linear_forward(ac->p, r->emb, PW(b->t_affine), PB(b->t_affine), N, E, co * (b->adaptive ? 2 : 1));
    if (!b->adaptive) {
        struct plane_args pa = {.h = ac->h1, .p = ac->p, .L = Lo};
        core_pool_for((long)N * co, (size_t)N * co * Lo > PAR_MIN, bias_planes, &pa);
    }
    groupnorm_forward(ac->n1, ac->mean1, ac->rstd1, ac->h1, PW(b->t_norm1), PB(b->t_norm1), N, co,
                      (int)Lo, go, b->eps);
    if (b->adaptive) {
        modulate_forward(r->mod, ac->n1, ac->p, N, co, (int)Lo);
        silu_forward(r->t0, r->mod, (size_t)N * co * Lo);
    } else {
        silu_forward(r->t0, ac->n1, (size_t)N * co * Lo);
    }
    const float *d1 = r->t0;
    if (r->dropout_on) {
        dropout_forward(r->t1, ac->mask, r->t0, (size_t)N * co * Lo, c->dropout, r->dseed,
                        r->dstream * DROPOUT_STREAMS + (uint64_t)blk);
        d1 = r->t1;
    }
    conv2d_forward(ac->y, d1, PW(b->t_conv1), PB(b->t_conv1), N, co, Ho, Ho, co, 3, r->col);
    const float *sk = ac->in;
    if (b->has_skip) {
        const float *rs = ac->in;
        if (b->up || b->down) {
            resample_forward(r->a, r->t1, ac->in, b, N, ci, Hi);
            rs = r->t1;
        }
        if (b->t_skip >= 0) {
            conv2d_forward(r->t2, rs, PW(b->t_skip), PB(b->t_skip), N, ci, Ho, Ho, co, 1, r->col);
            sk = r->t2;
        } else {
            sk = rs;   /* kernel-0 skip: the resampling alone */
        }
    }
    size_t ny = (size_t)N * co * Lo;
    ew(EW_SUM_SCALE, ac->y, sk, s, ny);
    if (b->attn) {
        groupnorm_forward(ac->n2, ac->mean2, ac->rstd2, ac->y, PW(b->t_norm2), PB(b->t_norm2), N,
                          co, (int)Lo, go, b->eps);
        conv2d_forward(ac->qkv, ac->n2, PW(b->t_qkv), PB(b->t_qkv), N, co, Ho, Ho, 3 * co, 1, r->col);
        attention_forward(ac->a, ac->att, ac->qkv, N, co, (int)Lo, b->heads, r->ascr);
        conv2d_forward(ac->out, ac->a, PW(b->t_proj), PB(b->t_proj), N, co, Ho, Ho, co, 1, r->col);
        ew(EW_SUM_SCALE, ac->out, ac->y, s, ny);
    }
    if (b->t_aux_residual >= 0) aux_forward(r, b, ac, N);
}

/* Per-image pool loops of the driver (item = one image of the batch; each writes only its own
 * image's slice). */
struct img_args {
    float *dst;
    const float *x, *F;
    const unet_precond *pc;
    size_t img, fimg;
};

/* xin = c_in·x. */
static void precond_in_items(void *p, long i0, long i1) {
    const struct img_args *a = p;
    float *xin = a->dst;
    const float *x = a->x;
    const size_t img = a->img;
    for (long i = i0; i < i1; i++) {
        float cin = (float)a->pc[i].c_in;
        for (size_t j = 0; j < img; j++) xin[i * img + j] = cin * x[i * img + j];
    }
}

/* D = c_skip·x + c_out·F[:, :C]. */
static void precond_out_items(void *p, long i0, long i1) {
    const struct img_args *a = p;
    float *out = a->dst;
    const float *x = a->x, *F = a->F;
    const size_t img = a->img, fimg = a->fimg;
    for (long i = i0; i < i1; i++) {
        double cs = a->pc[i].c_skip, co = a->pc[i].c_out;
        for (size_t j = 0; j < img; j++)
            out[i * img + j] = (float)(cs * x[i * img + j] + co * F[i * fimg + j]);
    }
}

/* dL/dF = c_out·g on the first C channels, 0 on the rest. */
static void precond_out_bwd_items(void *p, long i0, long i1) {
    const struct img_args *a = p;
    float *dF = a->dst;
    const float *dout = a->x;
    const size_t img = a->img, fimg = a->fimg;
    for (long i = i0; i < i1; i++) {
        float co = (float)a->pc[i].c_out;
        for (size_t j = 0; j < img; j++) dF[i * fimg + j] = co * dout[i * img + j];
        for (size_t j = img; j < fimg; j++) dF[i * fimg + j] = 0;
    }
}

/* A decoder block's concatenation [x, sc·skip] (cat: cin = cx + cs channels of L elements per
 * image) and its reverse: x's gradient copied out, sc·(the skip's part) added to the skip's. */
struct cat_args {
    float *cat, *dx, *dsk;
    const float *x, *sk, *dcat;
    size_t L;
    int cin, cx, cs;
    float sc;
};

static void concat_items(void *p, long i0, long i1) {
    const struct cat_args *a = p;
    const size_t L = a->L;
    const int cx = a->cx, cs = a->cs;
    for (long i = i0; i < i1; i++) {
        memcpy(a->cat + (size_t)i * a->cin * L, a->x + (size_t)i * cx * L, FL(cx * L));
        float *dst = a->cat + ((size_t)i * a->cin + cx) * L;
        const float *src = a->sk + (size_t)i * cs * L;
        for (size_t j = 0; j < cs * L; j++) dst[j] = a->sc * src[j];
    }
}

static void concat_bwd_items(void *p, long i0, long i1) {
    const struct cat_args *a = p;
    const size_t Li = a->L;
    const int cx = a->cx, cs = a->cs;
    for (long i = i0; i < i1; i++) {
        memcpy(a->dx + (size_t)i * cx * Li, a->dcat + (size_t)i * a->cin * Li, FL(cx * Li));
        const float *src = a->dcat + ((size_t)i * a->cin + cx) * Li;
        float *dst = a->dsk + (size_t)i * cs * Li;
        for (size_t j = 0; j < cs * Li; j++) dst[j] += a->sc * src[j];
    }
}

static int denoise_forward(unet_run *r, float *out, const float *x, const float *sigma,
                           const float *labels, int n, const unet_opts *opts, pd_error *err);

/* A run that keeps no activations is an evaluation (sampling, a distillation's fixed teacher),
 * where --precision bf16 may round the convolutions' products; a training pass keeps them and
 * stays float whatever the setting (unet/precision.h). */
int unet_denoise_forward(unet_run *r, float *out, const float *x, const float *sigma,
                         const float *labels, int n, const unet_opts *opts, pd_error *err) {
    int outer = conv_bf16_scope(!r->keep);
    int rc = denoise_forward(r, out, x, sigma, labels, n, opts, err);
    conv_bf16_scope(outer);
    return rc;
}

static int denoise_forward(unet_run *r, float *out, const float *x, const float *sigma,
                           const float *labels, int n, const unet_opts *opts, pd_error *err) {
    static const unet_opts none;
    const pd_model *m = r->m;
    const pd_unet_config *c = &m->cfg;
    const unet_arch *a = r->a;
    if (!opts) opts = &none;
    r->have_fwd = 0;
    if (n < 1 || n > r->max_batch)
        return pd_fail(err, "unet: batch of %d images, the run holds 1..%d", n, r->max_batch);
    for (int i = 0; i < n; i++)
        if (!(sigma[i] > 0) || !isfinite(sigma[i]))
            return pd_fail(err, "unet: sigma[%d] = %g is not a positive finite noise level", i,
                           (double)sigma[i]);
    if (opts->skip_scale && opts->n_skip_scale != a->n_skips)
        return pd_fail(err, "unet: %d skip scales given, the model has %d skips",
                       opts->n_skip_scale, a->n_skips);
    int C = c->in_channels, H = r->res, E = a->emb_ch, Cn = a->noise_ch, ld = c->label_dim;
    size_t L0 = (size_t)H * H, img = (size_t)C * L0;
    r->n = n;
    r->dropout_on = opts->train && c->dropout > 0;
    r->dseed = opts->dropout_seed;
    r->dstream = opts->dropout_stream;
    for (int s = 0; s < a->n_skips; s++) r->sscale[s] = opts->skip_scale ? opts->skip_scale[s] : 1.0f;

    /* Preconditioning inputs (docs/algorithms.md §M4.3): F's input is c_in·x, its noise label c_noise. */
    for (int i = 0; i < n; i++) {
        r->pc[i] = unet_precond_eval(&m->pc, sigma[i]);
        r->pcd[i] = unet_precond_deriv(&m->pc, sigma[i]);
        r->cnoise[i] = (float)r->pc[i].c_noise;
    }
    if (r->keep) memcpy(r->x, x, FL(n * img));
    struct img_args pin = {.dst = r->xin, .x = x, .pc = r->pc, .img = img};
    core_pool_for(n, n > 1, precond_in_items, &pin);

    /* Mapping network. SongUNet: [sin|cos] positional or Fourier embedding, + map_label(label·√ld),
     * two SiLU linears. ADM: [cos|sin] positional embedding without endpoint, map_layer0, SiLU,
     * map_layer1 + map_label(label) (no bias), SiLU. map_augment (augment labels are zero)
     * contributes nothing. */
    if (a->fourier) fourier_forward(r->pe, r->cnoise, BUF(a->b_freqs), n, Cn, 1);
    else posemb_forward(r->pe, r->cnoise, n, Cn, a->pe_endpoint, a->pe_flip);
    memcpy(r->e0, r->pe, FL((size_t)n * Cn));
    if (ld && a->label_late) {
        for (size_t j = 0; j < (size_t)n * ld; j++) r->lab[j] = labels ? labels[j] : 0.0f;
    } else if (ld) {
        float sc = (float)sqrt((double)ld);
        for (size_t j = 0; j < (size_t)n * ld; j++) r->lab[j] = labels ? labels[j] * sc : 0.0f;
        linear_forward(r->z0, r->lab, PW(a->t_map_label), PB(a->t_map_label), n, ld, Cn);
        for (size_t j = 0; j < (size_t)n * Cn; j++) r->e0[j] += r->z0[j];
    }
    linear_forward(r->z0, r->e0, PW(a->t_map0), PB(a->t_map0), n, Cn, E);
    silu_forward(r->e1, r->z0, (size_t)n * E);
    linear_forward(r->z1, r->e1, PW(a->t_map1), PB(a->t_map1), n, E, E);
    if (ld && a->label_late) {
        linear_forward(r->zl, r->lab, PW(a->t_map_label), NULL, n, ld, E);
        for (size_t j = 0; j < (size_t)n * E; j++) r->z1[j] += r->zl[j];
    }
    silu_forward(r->emb, r->z1, (size_t)n * E);

    /* Encoder: every module's output is a skip. */
    conv2d_forward(r->skips[0], r->xin, PW(a->t_enc_conv), PB(a->t_enc_conv), n, C, H, H,
                   a->enc_conv_out, 3, r->col);
    for (int i = 0; i < a->n_enc; i++) block_forward(r, &a->enc[i], &r->enc[i], n, i);
    if (opts->feature) {
        int ts = r->tap_skip, ch = a->skip_ch[ts], h = r->hw[a->skip_level[ts]];
        size_t hw = (size_t)h * h;
        const float *t = r->skips[ts];
        for (int i = 0; i < n; i++)
            for (size_t q = 0; q < hw; q++) {
                double acc = 0;
                for (int k = 0; k < ch; k++) acc += t[((size_t)i * ch + k) * hw + q];
                opts->feature[i * hw + q] = (float)(acc / ch);
            }
    }

    /* Decoder: blocks concatenate [x, skip_scale[i]·skips[i]] (Skip-Tuning, docs/algorithms.md §S5.3). */
    for (int k = 0; k < a->n_dec; k++) {
        const unet_block *b = &a->dec[k];
        bact *ac = &r->dec[k];
        if (b->pop >= 0) {
            int cs = a->skip_ch[b->pop];
            struct cat_args ca = {.cat = ac->cat, .x = r->dec[k - 1].out, .sk = r->skips[b->pop],
                                  .L = (size_t)r->hw[b->level_in] * r->hw[b->level_in],
                                  .cin = b->cin, .cx = b->cin - cs, .cs = cs,
                                  .sc = r->sscale[b->pop]};
            core_pool_for(n, n > 1, concat_items, &ca);
        }
        block_forward(r, b, ac, n, a->n_enc + k);
    }

    /* Output: out_conv(silu(out_norm(x))) (SongUNet's aux_norm/aux_conv), then
     * D = c_skip·x + c_out·F[:, :C] (iDDPM's F has 2·C channels). */
    int cl = a->dec[a->n_dec - 1].cout, OC = c->out_channels;
    groupnorm_forward(r->aux_n, r->aux_mean, r->aux_rstd, r->dec[a->n_dec - 1].out,
                      PW(a->t_out_norm), PB(a->t_out_norm), n, cl, (int)L0, groupnorm_groups(cl),
                      a->out_eps);
    silu_forward(r->t0, r->aux_n, (size_t)n * cl * L0);
    conv2d_forward(r->F, r->t0, PW(a->t_out_conv), PB(a->t_out_conv), n, cl, H, H, OC, 3, r->col);
    struct img_args pout = {.dst = out, .x = x, .F = r->F, .pc = r->pc, .img = img,
                            .fimg = (size_t)OC * L0};
    core_pool_for(n, n > 1, precond_out_items, &pout);
    r->have_fwd = 1;
    return 0;
}

/* ------------------------------------------------------------------ backward */

static void resample_backward(const unet_arch *a, float *din, const float *dout,
                              const unet_block *b, int N, int C, int H) {
    if (a->fir && b->down) fir_down_backward(din, dout, a->fir_f, a->fir_K, a->fir_pad, N, C, H, H);
    else if (a->fir) fir_up_backward(din, dout, a->fir_f, a->fir_K, a->fir_pad, N, C, H, H);
    else if (b->down) avgpool2_backward(din, dout, N, C, H, H);
    else upsample2_backward(din, dout, N, C, H, H);
}

static void zero(float *p, size_t n) { memset(p, 0, FL(n)); }

/* Reverse of block_forward. dout: gradient of the block output (read, may be scaled in place
 * when attention is off it is only read); din: accumulates the gradient of the block input. */
static void block_backward(unet_run *r, const unet_block *b, bact *ac, int N, const float *dout,
                           float *din, float *dp) {
    const pd_unet_config *c = &r->m->cfg;
    int Hi = r->hw[b->level_in], Ho = r->hw[b->level_out], ci = b->cin, co = b->cout;
    size_t Li = (size_t)Hi * Hi, Lo = (size_t)Ho * Ho, no = (size_t)N * co * Lo;
    size_t ni = (size_t)N * ci * Li, nr = (size_t)N * ci * Lo;
    int gi = groupnorm_groups(ci), go = groupnorm_groups(co), E = r->a->emb_ch;
    const float s = b->skip_scale;
    float *g0 = r->g0, *g1 = r->g1, *g2 = r->g2, *g4 = r->g4;

    /* out = (proj(a) + y)·s  ->  g0 = dL/dy (residual part + through attention). */
    if (b->attn) {
        ew(EW_SCALED, g0, dout, s, no);
        zero(g1, no);                                   /* g1 = dL/da */
        conv2d_backward(g1, DW(b->t_proj), DB(b->t_proj), g0, ac->a, PW(b->t_proj), N, co, Ho,
                        Ho, co, 1, r->col);
        zero(g2, 3 * no);                               /* g2 = dL/dqkv */
        attention_backward(g2, g1, ac->qkv, ac->att, N, co, (int)Lo, b->heads, r->ascr);
        zero(g1, no);                                   /* g1 = dL/dn2 */
        conv2d_backward(g1, DW(b->t_qkv), DB(b->t_qkv), g2, ac->n2, PW(b->t_qkv), N, co, Ho, Ho,
                        3 * co, 1, r->col);
        groupnorm_backward(g0, DW(b->t_norm2), DB(b->t_norm2), g1, ac->y, ac->mean2, ac->rstd2,
                           PW(b->t_norm2), N, co, (int)Lo, go);
        ew(EW_SCALE, g0, NULL, s, no);
    } else {
        ew(EW_SCALED, g0, dout, s, no);
    }
    /* y = (conv1(d1) + skip(in))·s: g0 now holds dL/d(conv1 out) = dL/d(skip out). */

    /* conv1's input, recomputed: d1 = dropout(silu(n1)) with the kept mask. */
    const float *a1 = ac->n1;                           /* the SiLU input */
    if (b->adaptive) {
        modulate_forward(r->mod, ac->n1, ac->p, N, co, (int)Lo);
        a1 = r->mod;
    }
    if (r->dropout_on) silu_dropout_reapply(r->t0, a1, ac->mask, no, c->dropout);
    else silu_forward(r->t0, a1, no);
    zero(g1, no);                                       /* g1 = dL/dd1 */
    conv2d_backward(g1, DW(b->t_conv1), DB(b->t_conv1), g0, r->t0, PW(b->t_conv1), N, co, Ho, Ho,
                    co, 3, r->col);
    zero(g4, no);                                       /* g4 = dL/da1, through the dropout */
    if (r->dropout_on) dropout_silu_backward(g4, g1, ac->mask, a1, no, c->dropout);
    else silu_backward(g4, g1, a1, no);
    float *gp = r->gp;
    if (b->adaptive) {
        /* a1 = shift + n1·(scale + 1): g2 = dL/dn1, gp = dL/d[scale | shift]. */
        zero(g2, no);
        zero(gp, (size_t)N * 2 * co);
        modulate_backward(g2, gp, g4, ac->n1, ac->p, N, co, (int)Lo);
        zero(g1, no);                                   /* g1 = dL/dh1 */
        groupnorm_backward(g1, DW(b->t_norm1), DB(b->t_norm1), g2, ac->h1, ac->mean1, ac->rstd1,
                           PW(b->t_norm1), N, co, (int)Lo, go);
        linear_backward(r->demb, DW(b->t_affine), DB(b->t_affine), gp, r->emb, PW(b->t_affine), N,
                        E, 2 * co);
    } else {
        zero(g1, no);                                   /* g1 = dL/dh1 */
        groupnorm_backward(g1, DW(b->t_norm1), DB(b->t_norm1), g4, ac->h1, ac->mean1, ac->rstd1,
                           PW(b->t_norm1), N, co, (int)Lo, go);
        /* h1 = conv0(...) + p: dL/dp is the spatial sum, which feeds affine and the embedding. */
        struct plane_args pa = {.g = g1, .gp = gp, .L = Lo};
        core_pool_for((long)N * co, (size_t)N * co * Lo > PAR_MIN, sum_planes, &pa);
        linear_backward(r->demb, DW(b->t_affine), DB(b->t_affine), gp, r->emb, PW(b->t_affine), N,
                        E, co);
    }
    /* conv0's input, recomputed: resample(silu(n0)). */
    silu_forward(r->t0, ac->n0, ni);
    const float *conv_in = r->t0;
    if (b->up || b->down) {
        resample_forward(r->a, r->t1, r->t0, b, N, ci, Hi);
        conv_in = r->t1;
    }
    zero(g2, nr);                                       /* g2 = dL/d(conv0 input) */
    conv2d_backward(g2, DW(b->t_conv0), DB(b->t_conv0), g1, conv_in, PW(b->t_conv0), N, ci, Ho,
                    Ho, co, 3, r->col);
    const float *da0 = g2;
    if (b->up || b->down) {
        zero(g4, ni);                                   /* g4 = dL/dsilu(n0) */
        resample_backward(r->a, g4, g2, b, N, ci, Hi);
        da0 = g4;
    }
    zero(g1, ni);                                       /* g1 = dL/dn0 */
    silu_backward(g1, da0, ac->n0, ni);
    groupnorm_backward(din, DW(b->t_norm0), DB(b->t_norm0), g1, ac->in, ac->mean0, ac->rstd0,
                       PW(b->t_norm0), N, ci, (int)Li, gi);
    /* Skip path. */
    if (b->has_skip) {
        if ((b->up || b->down) && b->t_skip < 0) {
            resample_backward(r->a, din, g0, b, N, ci, Hi);   /* kernel-0 skip */
        } else if (b->up || b->down) {
            resample_forward(r->a, r->t1, ac->in, b, N, ci, Hi);
            zero(g2, nr);
            conv2d_backward(g2, DW(b->t_skip), DB(b->t_skip), g0, r->t1, PW(b->t_skip), N, ci, Ho,
                            Ho, co, 1, r->col);
            resample_backward(r->a, din, g2, b, N, ci, Hi);
        } else {
            conv2d_backward(din, DW(b->t_skip), DB(b->t_skip), g0, ac->in, PW(b->t_skip), N, ci,
                            Ho, Ho, co, 1, r->col);
        }
    } else {
        ew(EW_ADD, din, g0, 0.0f, no);
    }
}

/* Reverse of aux_forward. dres: the gradient of the merge (the skip), divided by √2 in place so
 * that it becomes the down block's output gradient; the aux conv's input gradient accumulates
 * into daux_in. */
static void aux_backward(unet_run *r, const unet_block *b, bact *ac, int N, float *dres,
                         float *daux_in, float *dp) {
    const unet_arch *a = r->a;
    int Hi = r->hw[b->level_in], Hp = Hi + 2, ca = b->aux_cin, co = b->cout;
    size_t no = (size_t)N * co * r->hw[b->level_out] * r->hw[b->level_out];
    ew(EW_DIV, dres, NULL, SQRT2F, no);
    zero(r->gax, (size_t)N * co * Hp * Hp);
    fir_down_backward(r->gax, dres, a->fir_f, a->fir_K, 0, N, co, Hp, Hp);
    pad1_forward(r->axp, ac->aux_in, N, ca, Hi, Hi);
    zero(r->axc, (size_t)N * ca * Hp * Hp);             /* axc = dL/d(padded aux input) */
    conv2d_backward(r->axc, DW(b->t_aux_residual), DB(b->t_aux_residual), r->gax, r->axp,
                    PW(b->t_aux_residual), N, ca, Hp, Hp, co, 3, r->col);
    pad1_backward(daux_in, r->axc, N, ca, Hi, Hi);
}

int unet_denoise_backward(unet_run *r, float *dx, float *dsigma, float *dp, const float *dout,
                          pd_error *err) {
    const pd_model *m = r->m;
    const pd_unet_config *c = &m->cfg;
    const unet_arch *a = r->a;
    if (!r->keep) return pd_fail(err, "unet: backward needs a run created with keep = 1");
    if (!r->have_fwd) return pd_fail(err, "unet: backward without a successful forward");
    int n = r->n, C = c->in_channels, H = r->res, E = a->emb_ch, Cn = a->noise_ch;
    size_t L0 = (size_t)H * H, img = (size_t)C * L0;
    int cl = a->dec[a->n_dec - 1].cout, OC = c->out_channels;
    size_t fimg = (size_t)OC * L0;

    /* D = c_skip·x + c_out·F[:, :C]: dL/dF = c_out·g on the first C channels, 0 on the rest. */
    float *dF = r->dF;
    struct img_args pout = {.dst = dF, .x = dout, .pc = r->pc, .img = img, .fimg = fimg};
    core_pool_for(n, n > 1, precond_out_bwd_items, &pout);
    for (int s = 0; s < a->n_skips; s++) {
        size_t hs = r->hw[a->skip_level[s]];
        zero(r->dskips[s], (size_t)n * a->skip_ch[s] * hs * hs);
    }
    zero(r->demb, (size_t)n * E);

    /* Output head: F = aux_conv(silu(aux_norm(h))). dA = dL/dh of the last decoder output. */
    silu_forward(r->t0, r->aux_n, (size_t)n * cl * L0);
    zero(r->g1, (size_t)n * cl * L0);
    conv2d_backward(r->g1, DW(a->t_out_conv), DB(a->t_out_conv), dF, r->t0, PW(a->t_out_conv), n,
                    cl, H, H, OC, 3, r->col);
    zero(r->g2, (size_t)n * cl * L0);
    silu_backward(r->g2, r->g1, r->aux_n, (size_t)n * cl * L0);
    float *dcur = r->dA, *dnext = r->dB;
    zero(dcur, (size_t)n * cl * L0);
    groupnorm_backward(dcur, DW(a->t_out_norm), DB(a->t_out_norm), r->g2, r->dec[a->n_dec - 1].out,
                       r->aux_mean, r->aux_rstd, PW(a->t_out_norm), n, cl, (int)L0, groupnorm_groups(cl));

    /* Decoder in reverse: a concatenating block's input gradient splits into the previous
     * output's and skip_scale·(the popped skip's). */
    for (int k = a->n_dec - 1; k >= 0; k--) {
        const unet_block *b = &a->dec[k];
        size_t Li = (size_t)r->hw[b->level_in] * r->hw[b->level_in];
        float *din;
        if (b->pop >= 0) din = r->dcat;
        else if (k == 0) din = r->dskips[a->n_skips - 1];
        else din = dnext;
        if (din != r->dskips[a->n_skips - 1]) zero(din, (size_t)n * b->cin * Li);
        block_backward(r, b, &r->dec[k], n, dcur, din, dp);
        if (b->pop >= 0) {
            int cs = a->skip_ch[b->pop];
            struct cat_args ca = {.dx = dnext, .dsk = r->dskips[b->pop], .dcat = r->dcat, .L = Li,
                                  .cin = b->cin, .cx = b->cin - cs, .cs = cs,
                                  .sc = r->sscale[b->pop]};
            core_pool_for(n, n > 1, concat_bwd_items, &ca);
        }
        float *t = dcur; dcur = dnext; dnext = t;
    }

    /* Encoder in reverse: module j's input is skip j-1, so its input gradient lands there. A
     * residual-encoder merge first sends its share to its aux input (the image or an earlier
     * merge, i.e. a lower-numbered skip, whose gradient is complete only after this). */
    zero(r->dxin, (size_t)n * img);
    for (int s = a->n_skips - 1; s >= 1; s--) {
        int i = a->skip_src[s];
        const unet_block *b = &a->enc[i];
        if (b->t_aux_residual >= 0) {
            float *dax = r->dxin;
            for (int q = 0; q < s; q++)
                if (r->skips[q] == r->enc[i].aux_in) dax = r->dskips[q];
            aux_backward(r, b, &r->enc[i], n, r->dskips[s], dax, dp);
        }
        block_backward(r, b, &r->enc[i], n, r->dskips[s], r->dskips[s - 1], dp);
    }
    conv2d_backward(r->dxin, DW(a->t_enc_conv), DB(a->t_enc_conv), r->dskips[0], r->xin,
                    PW(a->t_enc_conv), n, C, H, H, a->enc_conv_out, 3, r->col);

    /* Mapping network in reverse; the noise embedding gives dL/dc_noise. */
    zero(r->dz1, (size_t)n * E);
    silu_backward(r->dz1, r->demb, r->z1, (size_t)n * E);
    if (c->label_dim && a->label_late)
        linear_backward(NULL, DW(a->t_map_label), NULL, r->dz1, r->lab, PW(a->t_map_label), n,
                        c->label_dim, E);
    zero(r->de1, (size_t)n * E);
    linear_backward(r->de1, DW(a->t_map1), DB(a->t_map1), r->dz1, r->e1, PW(a->t_map1), n, E, E);
    zero(r->dz0, (size_t)n * E);
    silu_backward(r->dz0, r->de1, r->z0, (size_t)n * E);
    zero(r->de0, (size_t)n * Cn);
    linear_backward(r->de0, DW(a->t_map0), DB(a->t_map0), r->dz0, r->e0, PW(a->t_map0), n, Cn, E);
    if (c->label_dim && !a->label_late)
        linear_backward(NULL, DW(a->t_map_label), DB(a->t_map_label), r->de0, r->lab,
                        PW(a->t_map_label), n, c->label_dim, Cn);
    zero(r->dcn, n);
    /* FourierEmbedding's freqs are a buffer: no gradient (EDM registers them, never trains them). */
    if (a->fourier) fourier_backward(r->dcn, r->de0, r->cnoise, BUF(a->b_freqs), n, Cn, 1);
    else posemb_backward(r->dcn, r->de0, r->cnoise, n, Cn, a->pe_endpoint, a->pe_flip);

    /* Preconditioning: dx = c_skip·g + c_in·dxin;
     * dσ = c_skip'<g,x> + c_out'<g,F> + c_in'<dxin,x> + c_noise'·dc_noise. */
    for (int i = 0; i < n; i++) {
        const float *g = dout + i * img, *xi = r->x + i * img, *Fi = r->F + i * fimg;
        const float *dxi = r->dxin + i * img;
        if (dsigma) {
            double gx = 0, gF = 0, dxx = 0;
            for (size_t j = 0; j < img; j++) {
                gx += (double)g[j] * xi[j];
                gF += (double)g[j] * Fi[j];
                dxx += (double)dxi[j] * xi[j];
            }
            dsigma[i] += (float)(r->pcd[i].c_skip * gx + r->pcd[i].c_out * gF +
                                 r->pcd[i].c_in * dxx + r->pcd[i].c_noise * r->dcn[i]);
        }
        if (dx) {
            double cs = r->pc[i].c_skip, ci = r->pc[i].c_in;
            for (size_t j = 0; j < img; j++) dx[i * img + j] += (float)(cs * g[j] + ci * dxi[j]);
        }
    }
    return 0;
}
