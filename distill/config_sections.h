/* config_sections.h — the YAML readers the run configs share (train_config.c, sid_config.c):
 * range-checked numbers, Adam betas, and the `ema` and `output` sections both configs have.
 *
 * Contract: every reader leaves *out untouched when its key is absent and fails with
 * "file:line: section.key: ..." (the key's own line) when the value is malformed or out of
 * range, so a typo stops a run before any work starts. Section readers first reject unknown
 * keys (yd_check_keys). The messages are the configs' own: a config reads the same values and
 * fails with the same lines whichever reader it goes through.
 */
#ifndef PD_DISTILL_CONFIG_SECTIONS_H
#define PD_DISTILL_CONFIG_SECTIONS_H

#include "core/yamldoc.h"
#include <limits.h>

/* No upper bound for cs_count: the message then says "below the minimum". */
#define CS_NO_MAX LLONG_MAX

/* A number in [lo, hi]; lo_open / hi_open make that end open. */
int cs_real(const yd_doc *d, const yd_node *m, const char *key, double *out, double lo,
            int lo_open, double hi, int hi_open, const char *section, pd_error *err);
/* An integer in [lo, hi] (hi = CS_NO_MAX: at least lo). */
int cs_count(const yd_doc *d, const yd_node *m, const char *key, long long *out, long long lo,
             long long hi, const char *section, pd_error *err);
/* optimizer.<key>: two numbers in [0, 1), Adam's (beta1, beta2). */
int cs_betas(const yd_doc *d, const yd_node *m, const char *key, double *beta1, double *beta2,
             pd_error *err);
/* ema: halflife_images in [0, 1e15], rampup in [0, 1e6] (EDM's ema_rampup ratio). */
int cs_ema(const yd_doc *d, const yd_node *s, double *halflife_images, double *rampup,
           pd_error *err);
/* output: dir, not empty. */
int cs_output(const yd_doc *d, const yd_node *s, char *dir, size_t cap, pd_error *err);

#endif
