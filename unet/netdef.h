/* netdef.h — a model config's string choices parsed once into enums (DESIGN.md convention 6:
 * names from one table, each with a _COUNT and a name table checked by _Static_assert), and the
 * preconditioner's parameters. pd_model holds the parsed form; nothing compares config strings
 * after load/create.
 */
#ifndef PD_NETDEF_H
#define PD_NETDEF_H

#include "pixdiff.h"

typedef enum { NET_SONGUNET, NET_ADM, NET_CLASSIFIER, NET_COUNT } net_arch;
typedef enum { PC_EDM, PC_VP, PC_VE, PC_IDDPM, PC_EPS, PC_COUNT } net_precond;
typedef enum { EMB_POSITIONAL, EMB_FOURIER, EMB_COUNT } net_embedding;
typedef enum { ENC_STANDARD, ENC_SKIP, ENC_RESIDUAL, ENC_COUNT } net_encoder;
typedef enum { DEC_STANDARD, DEC_SKIP, DEC_COUNT } net_decoder;
typedef enum { KIND_DENOISER, KIND_GENERATOR, KIND_CLASSIFIER, KIND_COUNT } net_kind;

typedef struct net_ids {
    net_arch arch;
    net_precond precond;
    net_embedding embedding;
    net_encoder encoder;
    net_decoder decoder;
    net_kind kind;
} net_ids;

/* Parses every string key of c; an unknown value fails naming the key and the choices. */
int net_ids_parse(net_ids *out, const pd_unet_config *c, pd_error *err);

extern const char *const net_arch_names[NET_COUNT];
extern const char *const net_precond_names[PC_COUNT];
extern const char *const net_embedding_names[EMB_COUNT];
extern const char *const net_encoder_names[ENC_COUNT];
extern const char *const net_decoder_names[DEC_COUNT];
extern const char *const net_kind_names[KIND_COUNT];

/* The preconditioner (Karras et al. 2022, EDM Table 1 and training/networks.py): its kind, its
 * constants, and for iDDPM the σ table u[0..M] (u[j] decreasing in j; EDM iDDPMPrecond.u). */
typedef struct net_pc {
    net_precond id;
    double sigma_data, beta_d, beta_min, C_1, C_2;
    int M;
    int img_channels;         /* iDDPM: F has 2·C channels; D uses the first C */
    float *u;                 /* iDDPM only, M + 1 entries; else NULL */
} net_pc;

/* Fills pc from a validated config (allocates u for iDDPM). */
int net_pc_init(net_pc *pc, const net_ids *ids, const pd_unet_config *c, pd_error *err);
void net_pc_free(net_pc *pc);

#endif
