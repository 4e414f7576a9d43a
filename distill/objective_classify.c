/* objective_classify.c — cross-entropy training of the feature classifier through the base
 * trainer, and its test-split accuracy (see objective_classify.h).
 *
 * Softmax cross-entropy in the log-sum-exp form (max subtracted first, sums in double), so large
 * logits neither overflow nor lose the small probabilities; its gradient is softmax - onehot,
 * scaled by 1/n because the loss averages over the batch.
 */
#include "distill/objective_classify.h"
#include "core/progress.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tr_classify_create(tr_classify **out, const pd_model *m, int batch, pd_error *err) {
    *out = NULL;
    tr_classify *c = calloc(1, sizeof *c);
    if (!c) return pd_fail(err, "out of memory");
    c->B = batch;
    c->K = clf_num_classes(m);
    if (clf_run_create(&c->run, m, batch, 1, err)) {
        free(c);
        return -1;
    }
    c->logits = core_alloc(2 * (size_t)batch * c->K * sizeof(float));
    c->target = malloc((size_t)batch * sizeof(int));
    if (!c->logits || !c->target) {
        tr_classify_free(c);
        return pd_fail(err, "out of memory for the classifier's batch buffers");
    }
    c->dlogits = c->logits + (size_t)batch * c->K;
    *out = c;
    return 0;
}

void tr_classify_free(tr_classify *c) {
    if (!c) return;
    clf_run_free(c->run);
    core_free(c->logits);
    free(c->target);
    if (c->have_test) ds_free(&c->test);
    free(c);
}

size_t tr_classify_bytes(const tr_classify *c) { return clf_run_bytes(c->run); }

double tr_cross_entropy(float *dlogits, const float *logits, const int *target, int n, int K,
                        int *correct) {
    return tr_cross_entropy_norm(dlogits, logits, target, n, n, K, correct);
}

double tr_cross_entropy_norm(float *dlogits, const float *logits, const int *target, int n,
                             int norm, int K, int *correct) {
    double total = 0.0;
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        double mx = z[best], s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
        double lse = mx + log(s);
        total += lse - z[target[i]];
        hits += best == target[i];
        if (dlogits)
            for (int k = 0; k < K; k++) {
                double p = exp((double)z[k] - lse);
                dlogits[(size_t)i * K + k] = (float)((p - (k == target[i])) / norm);
            }
    }
    if (correct) *correct = hits;
    return total / norm;
}

int tr_classify_loss(tr_classify *c, const float *x, const int *target, int n,
                     const clf_opts *opts, float *grad, double *loss, int *correct,
                     pd_error *err) {
    if (n < 1 || n > c->B)
        return pd_fail(err, "classify: batch of %d images, the run holds 1..%d", n, c->B);
    for (int i = 0; i < n; i++)
        if (target[i] < 0 || target[i] >= c->K)
            return pd_fail(err, "classify: label %d of image %d is outside 0..%d", target[i], i,
                           c->K - 1);
    if (clf_forward(c->run, c->logits, NULL, x, n, opts, err)) return -1;
    double L = tr_cross_entropy_norm(grad ? c->dlogits : NULL, c->logits, target, n,
                                     c->norm > 0 ? c->norm : n, c->K, correct);
    if (loss) *loss = L;
    if (grad && clf_backward(c->run, NULL, grad, c->dlogits, err)) return -1;
    return 0;
}

int tr_classify_batch(tr_classify *c, const float *y, const ds_dataset *d, const int *idx, int n,
                      const unet_opts *uo, float *grad, double *loss, pd_error *err) {
    if (!d->labels) return pd_fail(err, "classify: data %s has no labels", d->source);
    if (n > c->B) return pd_fail(err, "classify: batch of %d images, the run holds %d", n, c->B);
    for (int i = 0; i < n; i++) c->target[i] = d->labels[idx[i]];
    clf_opts o = {0, 0, 0};
    if (uo) {
        o.train = uo->train;
        o.dropout_seed = uo->dropout_seed;
        o.dropout_stream = uo->dropout_stream;
    }
    return tr_classify_loss(c, y, c->target, n, &o, grad, loss, NULL, err);
}

int tr_classify_accuracy(tr_classify *c, const ds_dataset *d, double *accuracy, double *ce,
                         pd_error *err) {
    if (!d->labels || d->n < 1)
        return pd_fail(err, "classify: data %s has no labelled images", d->source);
    size_t chw = (size_t)d->C * d->H * d->W;
    long long hits = 0;
    double total = 0.0;
    for (int i0 = 0; i0 < d->n; i0 += c->B) {
        int n = d->n - i0 < c->B ? d->n - i0 : c->B, correct;
        for (int i = 0; i < n; i++) c->target[i] = d->labels[i0 + i];
        double L;
        if (tr_classify_loss(c, d->images + (size_t)i0 * chw, c->target, n, NULL, NULL, &L,
                             &correct, err))
            return -1;
        hits += correct;
        total += L * n;
    }
    if (accuracy) *accuracy = (double)hits / d->n;
    if (ce) *ce = total / d->n;
    return 0;
}

int tr_classify_report(tr_trainer *t, const pd_train_options *o, double *accuracy,
                       pd_error *err) {
    tr_classify *c = t->cls;
    if (!c) return pd_fail(err, "classify: the trainer's model is not a classifier");
    if (!c->have_test) {
        if (strcmp(t->cfg.data_kind, "fashion-mnist"))
            return pd_fail(err, "%s: data.kind '%s' has no test split to measure accuracy on",
                           t->cfg.source, t->cfg.data_kind);
        if (ds_load_fashion_mnist(&c->test, t->cfg.data_path, 0, err)) return -1;
        c->have_test = 1;
    }
    /* Measure what gets exported: the EMA weights, swapped in as the params for the forward. */
    float *live = t->model->params;
    t->model->params = t->ema;
    double acc, ce, t0 = core_now();
    int rc = tr_classify_accuracy(c, &c->test, &acc, &ce, err);
    t->model->params = live;
    if (rc) return -1;
    if (accuracy) *accuracy = acc;
    if (o)
        pg_log(o->log, o->user, "test accuracy %.2f%% (cross-entropy %.4f) of the EMA weights on "
               "the %d t10k images at %lld images seen (%.1f s)", 100.0 * acc, ce, c->test.n,
               t->images_seen, core_now() - t0);
    return 0;
}
