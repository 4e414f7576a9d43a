/* file_kind.c — which kind of pixdiff file a safetensors file is, from the metadata key that
 * marks each kind, so that a loader handed the wrong file (a checkpoint as --model, a model as
 * --predictor) can say what the file is and which command reads it, instead of failing on the
 * first tensor or key it misses. */
#include <stddef.h>
#include <string.h>

#include "safetensors.h"

typedef struct {
    const char *key;   /* present in __metadata__ of every file of this kind */
    const char *what;  /* completes "FILE: not a model: it is ..." */
} file_kind;

/* Checkpoints also carry pixdiff.config (the architecture), so they come before models. */
static const file_kind kinds[] = {
    {"pixdiff.train.format",
     "a training checkpoint (export its model: pixdiff train --export OUT --checkpoint FILE)"},
    {"pixdiff.sid.format", "a SiD distillation checkpoint (export its generator: pixdiff distill "
                           "sid --export OUT --checkpoint FILE)"},
    {"pixdiff.amed_train", "an AMED predictor training checkpoint (pixdiff distill amed --resume)"},
    {"pixdiff.amed", "an AMED predictor (pass it with --predictor)"},
    {"pixdiff.ref", "a reference-statistics cache of pixdiff eval"},
    {"pixdiff.config", "a model (pass it with --model)"},
};

const char *st_pixdiff_other_kind(const st_file *f, const char *expected_key) {
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (st_meta(f, kinds[i].key))
            return strcmp(kinds[i].key, expected_key) ? kinds[i].what : NULL;
    return NULL;
}
