/* unet_cost.c — the FLOP count of the EDM U-Nets (net_ops gflops entry), from the block list:
 * 2·MACs of convolutions, linears and the two attention matmuls (QᵀK and AV) of one image at
 * resolution res (0 = trained). Elementwise work (norms, SiLU, softmax, resampling) is not
 * counted. */
#include "unet/net_ops.h"
#include "unet/unet_arch.h"

double unet_gflops(const pd_model *m, int res) {
    const pd_unet_config *c = &m->cfg;
    const unet_arch *a = m->arch;
    if (res <= 0) res = c->img_resolution;
    double macs = 0, L0 = (double)res * res, E = a->emb_ch, Cn = a->noise_ch;
    macs += (double)c->label_dim * (a->label_late ? E : Cn) + Cn * E + E * E;
    macs += 9.0 * c->in_channels * a->enc_conv_out * L0;
    for (int k = 0; k < a->n_enc + a->n_dec; k++) {
        const unet_block *b = k < a->n_enc ? &a->enc[k] : &a->dec[k - a->n_enc];
        double h = res >> b->level_out, Lo = h * h, ci = b->cin, co = b->cout;
        macs += 9 * ci * co * Lo + E * co * (b->adaptive ? 2 : 1) + 9 * co * co * Lo;
        if (b->t_skip >= 0) macs += ci * co * Lo;
        if (b->attn) macs += 3 * co * co * Lo + 2 * Lo * Lo * co + co * co * Lo;
        if (b->t_aux_residual >= 0) {
            double hp = (res >> b->level_in) + 2;
            macs += 9.0 * b->aux_cin * co * hp * hp;
        }
    }
    macs += 9.0 * a->dec[a->n_dec - 1].cout * c->out_channels * L0;
    return 2 * macs / 1e9;
}
