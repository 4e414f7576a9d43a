/* checkpoint.h — the checkpoint container shared by the trainer (train.h) and SiD (sid.h).
 *
 * Contract: a checkpoint is one safetensors file holding K 1-D F32 arrays of n values each (the
 * parameters and optimiser state, laid out like pd_model.params) and string metadata under a
 * kind's prefix ("pixdiff.train", "pixdiff.sid"), written in exactly the order the caller adds
 * it — the order is part of the file's bytes, so a writer must never reorder its keys. Every run
 * checkpoint starts with <prefix>.format, .images_seen, .step, .seconds, .seed and .rng
 * (ck_meta_position), carries its YAML as <prefix>.config_yaml / .config_source
 * (ck_meta_config) and ends with pixdiff.config (the model's JSON) and pixdiff.version
 * (ck_meta_model); kind-specific keys go in between. Writing is atomic (st_write: temporary
 * file, fsync, rename), so a crash leaves the old file or the new one, never a mix.
 * Reading checks before anything is handed back: the format, the embedded config, the counts
 * (non-negative integers; seed equal to the config's; step * batch = images seen), and every
 * array (present, 1-D, n values, all finite). Errors name the file and the key or tensor.
 */
#ifndef PD_DISTILL_CHECKPOINT_H
#define PD_DISTILL_CHECKPOINT_H

#include "core/safetensors.h"
#include "pixdiff.h"
#include <stdint.h>

/* What a kind of checkpoint calls itself in its keys and its error messages. */
typedef struct ck_kind {
    const char *prefix;       /* metadata key prefix: "pixdiff.train" */
    const char *format;       /* the supported <prefix>.format value */
    const char *name;         /* "not a pixdiff <name> checkpoint" */
    const char *format_label; /* "<format_label> format 'x' is not the supported 'y'" */
    const char *steps;        /* what a step is called: "steps", "iterations" */
    const char *owner;        /* whose parameter count the arrays must match: "this model" */
} ck_kind;

/* ------------------------------------------------------------------ writing */

#define CK_META_MAX 24

/* Metadata in insertion order. Values are either borrowed (ck_meta_str: they must outlive the
 * ck_write call) or formatted into the builder's own storage. */
typedef struct ck_meta {
    const ck_kind *kind;
    int n, overflow;
    char key[CK_META_MAX][64];
    const char *val[CK_META_MAX];
    char num[CK_META_MAX][200];
    char json[8192];              /* pixdiff.config */
} ck_meta;

void ck_meta_init(ck_meta *m, const ck_kind *kind);
/* <prefix>.name = value (borrowed). */
void ck_meta_str(ck_meta *m, const char *name, const char *value);
/* <prefix>.name = printf("%lld") / printf("%.*g", digits). */
void ck_meta_count(ck_meta *m, const char *name, long long v);
void ck_meta_real(ck_meta *m, const char *name, double v, int digits);
/* The run position, first in every checkpoint: format, images_seen, step, seconds (%.17g),
 * seed and rng (counter-based draws carry no state: the position is the next image and step). */
void ck_meta_position(ck_meta *m, long long images_seen, long long step, double seconds,
                      uint64_t seed);
/* config_yaml (text, "" when NULL) and config_source. */
void ck_meta_config(ck_meta *m, const char *yaml_text, const char *source);
/* pixdiff.config (model's JSON) and pixdiff.version: the last two keys. */
int ck_meta_model(ck_meta *m, const pd_unet_config *model, const char *path, pd_error *err);

/* Writes arrays[i] (n floats each) as tensor names[i], then the metadata; atomic. */
int ck_write(const char *path, int n_arrays, const char *const *names,
             const float *const *arrays, size_t n, const ck_meta *m, pd_error *err);

/* ------------------------------------------------------------------ reading */

typedef struct ck_file {
    st_file f;
    const char *path;
    const ck_kind *kind;
} ck_file;

int ck_open(ck_file *c, const char *path, const ck_kind *kind, pd_error *err);
void ck_close(ck_file *c);
/* <prefix>.name, or NULL. */
const char *ck_get(const ck_file *c, const char *name);
/* A non-negative integer <prefix>.name; fails when missing or malformed. */
int ck_get_count(const ck_file *c, const char *name, long long *out, pd_error *err);
/* A number <prefix>.name (strtod), or 0 when missing. */
double ck_get_real(const ck_file *c, const char *name);
/* The gradient share count the run was made with: <prefix>.shares, or the most shares
 * (GS_MAX_SHARES) for a checkpoint written before the key existed, whose steps summed one share
 * per image (docs/scale-out.md §2). The embedded YAML may say otherwise: a run resumed from its
 * own config adopts this count. */
int ck_get_shares(const ck_file *c, int *shares, pd_error *err);
/* Checks the format and finds the embedded YAML: *text (owned by c) and, in source, the name
 * its parse errors should carry ("<config source> (config of checkpoint <path>)"). */
int ck_config_text(const ck_file *c, const char **text, char *source, size_t cap, pd_error *err);

/* The run position of a checkpoint, checked against the config it is resumed under. */
typedef struct ck_position {
    long long images_seen, step;
    double seconds;               /* 0 when missing or not a finite non-negative number */
} ck_position;
int ck_read_position(const ck_file *c, uint64_t seed, int batch, ck_position *pos, pd_error *err);

/* Tensor `name`: present, 1-D with n values, all finite; NULL (err set) otherwise. */
const st_tensor *ck_tensor(const ck_file *c, const char *name, size_t n, pd_error *err);
/* Checks all n_arrays tensors with ck_tensor, and only then copies each into dst[i]. */
int ck_read_arrays(const ck_file *c, int n_arrays, const char *const *names, float *const *dst,
                   size_t n, pd_error *err);

#endif
