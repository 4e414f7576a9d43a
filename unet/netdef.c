/* netdef.c — the name tables of unet/netdef.h and the one place config strings become enums. */
#include "unet/netdef.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const net_arch_names[NET_COUNT] = {"songunet", "adm", "classifier"};
const char *const net_precond_names[PC_COUNT] = {"edm", "vp", "ve", "iddpm", "eps"};
const char *const net_embedding_names[EMB_COUNT] = {"positional", "fourier"};
const char *const net_encoder_names[ENC_COUNT] = {"standard", "skip", "residual"};
const char *const net_decoder_names[DEC_COUNT] = {"standard", "skip"};
const char *const net_kind_names[KIND_COUNT] = {"denoiser", "generator", "classifier"};
_Static_assert(sizeof net_arch_names / sizeof *net_arch_names == NET_COUNT, "arch names");
_Static_assert(sizeof net_precond_names / sizeof *net_precond_names == PC_COUNT, "precond names");
_Static_assert(sizeof net_embedding_names / sizeof *net_embedding_names == EMB_COUNT, "emb names");
_Static_assert(sizeof net_encoder_names / sizeof *net_encoder_names == ENC_COUNT, "enc names");
_Static_assert(sizeof net_decoder_names / sizeof *net_decoder_names == DEC_COUNT, "dec names");
_Static_assert(sizeof net_kind_names / sizeof *net_kind_names == KIND_COUNT, "kind names");

static int lookup(int *out, const char *s, const char *const *names, int n, const char *key,
                  pd_error *err) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) { *out = i; return 0; }
    char list[160] = "";
    for (int i = 0; i < n; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return pd_fail(err, "config key '%s': '%s' is not one of %s", key, s, list);
}

int net_ids_parse(net_ids *o, const pd_unet_config *c, pd_error *err) {
    int v[6];
    if (lookup(&v[0], c->arch, net_arch_names, NET_COUNT, "arch", err) ||
        lookup(&v[1], c->precond, net_precond_names, PC_COUNT, "precond", err) ||
        lookup(&v[2], c->embedding_type, net_embedding_names, EMB_COUNT, "embedding_type", err) ||
        lookup(&v[3], c->encoder_type, net_encoder_names, ENC_COUNT, "encoder_type", err) ||
        lookup(&v[4], c->decoder_type, net_decoder_names, DEC_COUNT, "decoder_type", err) ||
        lookup(&v[5], c->kind, net_kind_names, KIND_COUNT, "kind", err))
        return -1;
    o->arch = v[0];
    o->precond = v[1];
    o->embedding = v[2];
    o->encoder = v[3];
    o->decoder = v[4];
    o->kind = v[5];
    return 0;
}

/* iDDPM's ᾱ(j) = sin²(π/2 · j/M/(C_2 + 1)) (Nichol & Dhariwal 2021 cosine schedule, EDM
 * iDDPMPrecond.alpha_bar), in float32 as EDM evaluates it (a float tensor op). */
static float iddpm_alpha_bar(int j, int M, double C_2) {
    float a = (float)(0.5 * M_PI) * (float)j / (float)M / (float)(C_2 + 1);
    float s = sinf(a);
    return s * s;
}

int net_pc_init(net_pc *pc, const net_ids *ids, const pd_unet_config *c, pd_error *err) {
    memset(pc, 0, sizeof *pc);
    pc->id = ids->precond;
    pc->sigma_data = c->sigma_data;
    pc->beta_d = c->beta_d;
    pc->beta_min = c->beta_min;
    pc->C_1 = c->C_1;
    pc->C_2 = c->C_2;
    pc->M = c->M;
    pc->img_channels = c->in_channels;
    if (pc->id != PC_IDDPM) return 0;
    /* EDM iDDPMPrecond.__init__: u[M] = 0, u[j−1] = sqrt((u[j]² + 1)/max(ᾱ(j−1)/ᾱ(j), C_1) − 1),
     * all in float32. */
    pc->u = malloc(sizeof(float) * (size_t)(pc->M + 1));
    if (!pc->u) return pd_fail(err, "out of memory");
    pc->u[pc->M] = 0;
    for (int j = pc->M; j > 0; j--) {
        float r = iddpm_alpha_bar(j - 1, pc->M, c->C_2) / iddpm_alpha_bar(j, pc->M, c->C_2);
        if (r < (float)c->C_1) r = (float)c->C_1;
        pc->u[j - 1] = sqrtf((pc->u[j] * pc->u[j] + 1) / r - 1);
    }
    return 0;
}

void net_pc_free(net_pc *pc) {
    free(pc->u);
    pc->u = NULL;
}
