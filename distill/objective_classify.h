/* objective_classify.h — the base trainer's second objective: cross-entropy of a classifier's
 * logits against the data labels (models with arch/kind "classifier", classifier/classifier.h).
 *
 * Contract: the trainer picks the objective from the model: a classifier trains with
 * L = (1/B) sum_i [logsumexp(z_i) - z_i[y_i]] (z = logits, y = the image's data label; label
 * dropout does not apply), on the clean images of the batch stream (with the stream's flips).
 * Everything else (batch order, Adam, warm-up, EMA, checkpoints, export) is the trainer's.
 * Progress reports the mean cross-entropy. At every checkpoint and at the end the EMA weights
 * (what gets exported) are evaluated on the Fashion-MNIST t10k split and the accuracy is logged.
 * Per-sample work is in a fixed order, so the step stays bit-reproducible.
 */
#ifndef PD_OBJECTIVE_CLASSIFY_H
#define PD_OBJECTIVE_CLASSIFY_H

#include "distill/dataset.h"
#include "distill/train.h"
#include "classifier/classifier.h"

typedef struct tr_classify {
    clf_run *run;             /* keep = 1, sized for the batch */
    int B, K;
    int norm;                 /* what the loss divides by: 0 = the images of the call; the global
                                 batch while the trainer runs one gradient share of it */
    float *logits, *dlogits;  /* [B, K] */
    int *target;              /* [B] */
    ds_dataset test;          /* the t10k split, loaded on the first tr_classify_report */
    int have_test;
} tr_classify;

int tr_classify_create(tr_classify **out, const pd_model *m, int batch, pd_error *err);
void tr_classify_free(tr_classify *c);
size_t tr_classify_bytes(const tr_classify *c);

/* Mean cross-entropy of logits [n, K] against target [n] (double, per sample in order). With
 * dlogits != NULL writes dL/dlogits = (softmax(z_i) - onehot(y_i)) / n. *correct (may be NULL)
 * gets how many argmax (first maximum) equal the target. */
double tr_cross_entropy(float *dlogits, const float *logits, const int *target, int n, int K,
                        int *correct);
/* The same with the sum divided by norm instead of n (one share of a larger batch). */
double tr_cross_entropy_norm(float *dlogits, const float *logits, const int *target, int n,
                             int norm, int K, int *correct);

/* Forward on x [n, C, R, R], cross-entropy, and with grad != NULL the backward, accumulating
 * dL/dparams into grad. opts NULL = no dropout. */
int tr_classify_loss(tr_classify *c, const float *x, const int *target, int n,
                     const clf_opts *opts, float *grad, double *loss, int *correct,
                     pd_error *err);

/* The trainer's hook: images y of dataset indices idx[0..n) (labels from d), dropout as the
 * U-Net options say (train, seed, stream). */
int tr_classify_batch(tr_classify *c, const float *y, const ds_dataset *d, const int *idx, int n,
                      const unet_opts *uo, float *grad, double *loss, pd_error *err);

/* Accuracy and mean cross-entropy of the model's current params over a whole labelled set. */
int tr_classify_accuracy(tr_classify *c, const ds_dataset *d, double *accuracy, double *ce,
                         pd_error *err);

/* Loads the t10k split (once), evaluates the trainer's EMA weights on it and sends one line
 * through o->log ("test accuracy ..."); the accuracy also lands in *accuracy if non-NULL. */
int tr_classify_report(tr_trainer *t, const pd_train_options *o, double *accuracy,
                       pd_error *err);

#endif
