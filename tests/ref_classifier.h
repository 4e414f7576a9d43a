/* ref_classifier.h — an independent double-precision reference of the feature classifier,
 * written from the architecture description in classifier/classifier.h with naive loops. It shares
 * nothing with unet/ but the model's config and tensor table: its own stage walk, its own
 * lookup of each tensor by name, its own layers (no dropout: inference). Tests only. */
#ifndef PD_REF_CLASSIFIER_H
#define PD_REF_CLASSIFIER_H

#include "unet/songunet.h"

/* logits [n, K] and features [n, F] (either may be NULL) of x [n, C, R, R]. params: doubles at
 * the model's offsets, or NULL for the model's own float params. Returns 0, or -1 if a tensor it
 * looks up is missing or misshaped (message on stderr). */
int ref_classifier(const pd_model *m, const double *params, const double *x, int n,
                   double *logits, double *features);

#endif
