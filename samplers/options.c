/* options.c — the sampler option table (pixdiff.h "sampler options"): every setting a sampler
 * reads from pd_sample_params, once, with its type, range, default, field, help and the samplers
 * that read it, plus how each record spells it. The CLI (cli/sampling_opts.c), the sweep's YAML
 * reader, cell keys, labels and results.jsonl (sweep/), the PNG metadata (cli/cmd_sample.c) and
 * pd_sample_default_params are generated from these rows, so adding an option is one row here
 * (docs/samplers-dev.md "Adding a sampler option"). Row order is record order: cell keys,
 * labels and JSON list options in it, which is what keeps keys of earlier results valid.
 */
#include "pixdiff.h"
#include "schedules/names_match.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BIT(k) (1u << (k))
#define DPMPP (BIT(PD_SAMPLER_DPMPP_2M) | BIT(PD_SAMPLER_DPMPP_3M))
#define F(f) #f, offsetof(pd_sample_params, f)

/* name, type, field and offset, lo, hi, lo_open, def, def_means, samplers, meta, help,
 * key, key_rule, label, png, json, record, json_block */
static const pd_sampler_option rows[] = {
    /* DDIM's eta (Song et al. 2021, Eq. 16; docs/algorithms.md §S1.3). */
    {"eta", PD_OPT_NUM, F(eta), 0, 1e6, 0, 0, NAN, BIT(PD_SAMPLER_DDIM), "E",
     "DDIM stochasticity (0 deterministic, 1 DDPM-like)",
     NULL, PD_OPT_KEY_ALWAYS, "eta=", "Eta", NULL, NULL, 0},
    /* EDM Alg. 2 (Karras et al. 2022): churn only where S_tmin <= sigma <= S_tmax. */
    {"churn", PD_OPT_NUM, F(s_churn), 0, 1e6, 0, 0, NAN, BIT(PD_SAMPLER_HEUN), "C",
     "EDM S_churn (Alg. 2; 0 = deterministic)", NULL, PD_OPT_KEY_GROUP, "churn=", "S_churn",
     "s_churn", NULL, 0},
    {"s_tmin", PD_OPT_NUM, F(s_tmin), 0, INFINITY, 0, 0, NAN, BIT(PD_SAMPLER_HEUN), "A",
     "EDM S_tmin: churn only where sigma >= A", NULL, PD_OPT_KEY_MEMBER, NULL, "S_tmin", NULL, NULL,
     0},
    {"s_tmax", PD_OPT_NUM, F(s_tmax), 0, INFINITY, 0, INFINITY, NAN, BIT(PD_SAMPLER_HEUN), "B",
     "EDM S_tmax: churn only where sigma <= B", NULL, PD_OPT_KEY_MEMBER, NULL, "S_tmax", NULL, NULL,
     0},
    {"s_noise", PD_OPT_NUM, F(s_noise), 0, 1e6, 0, 1, NAN, BIT(PD_SAMPLER_HEUN), "S",
     "EDM S_noise: scale of the churn noise", NULL, PD_OPT_KEY_MEMBER, NULL, "S_noise", NULL, NULL,
     0},
    /* The order caps of the multistep samplers (samplers/multistep.h); 0: the sampler's own. */
    {"max_order", PD_OPT_INT, F(max_order), 1, 3, 0, 0, NAN, DPMPP | BIT(PD_SAMPLER_UNIPC), "K",
     "order cap (0: the sampler's own; dpmpp-2m 2, dpmpp-3m and unipc 3, ipndm and amed-plugin 4)",
     "order", PD_OPT_KEY_ALWAYS, "order=", NULL, NULL, NULL, 1},
    {"max_order", PD_OPT_INT, F(max_order), 1, 4, 0, 0, NAN, BIT(PD_SAMPLER_IPNDM), "K", NULL,
     "order", PD_OPT_KEY_ALWAYS, "order=", NULL, NULL, NULL, 1},
    {"max_order", PD_OPT_INT, F(max_order), 1, 4, 0, 0, NAN, BIT(PD_SAMPLER_AMED_PLUGIN), "K", NULL,
     "order", PD_OPT_KEY_IF_SET, "order=", NULL, NULL, NULL, 1},
    /* docs/algorithms.md §S3.1: diff-sampler's rule, the last step first order. */
    {"lower_order_final", PD_OPT_BOOL, F(lower_order_final), 0, 1, 0, 1, NAN,
     DPMPP | BIT(PD_SAMPLER_UNIPC), "0|1",
     "1: the last step first order (diff-sampler's rule); 0: full order to the end", "lof",
     PD_OPT_KEY_ALWAYS, "lof=", "Lower order final", NULL, NULL, -1},
    /* Dynamic thresholding (Saharia et al. 2022, Imagen Sec. 2.3) of D, per image. */
    {"thresholding", PD_OPT_NUM, F(thresholding), 0, 0.999999, 0, 0, NAN,
     DPMPP | BIT(PD_SAMPLER_UNIPC), "Q",
     "dynamic-thresholding quantile of |D| per image (0: off; for data in [-1, 1])", "thr",
     PD_OPT_KEY_ALWAYS, "thr=", "Thresholding", NULL, NULL, -1},
    {"exact_d2", PD_OPT_BOOL, F(dpmpp_exact_d2), 0, 1, 0, 0, NAN, DPMPP, "0|1",
     "1: twice the reference codes' D2 term, the exact third-order quadrature (docs/algorithms.md "
     "§S3.1)", "d2", PD_OPT_KEY_ALWAYS, "exact-d2", "Exact D2", NULL, NULL, -1},
    /* DPM-Solver-2 (Lu et al. 2022, DPM-Solver Alg. 1 with r1 = R; docs/algorithms.md §S3.4). */
    {"r", PD_OPT_NUM, F(dpm2_r), 0, 1, 1, 0, 0.5, BIT(PD_SAMPLER_DPM2), "R",
     "intermediate sigma sigma_next^R sigma^(1-R), 0 < R <= 1", NULL, PD_OPT_KEY_ALWAYS, "r=", NULL,
     "dpm2_r", "dpm2_r", 1},
};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))
_Static_assert(PD_SAMPLER_COUNT <= 32, "the samplers bit set is an unsigned");

const pd_sampler_option *pd_sampler_options(int *n) {
    if (n) *n = N_ROWS;
    return rows;
}

const pd_sampler_option *pd_sampler_option_find(pd_sampler_kind k, const char *name, int *exists) {
    const char *one[] = {name};
    if (exists) *exists = 0;
    for (int i = 0; i < N_ROWS; i++) {
        if (names_lookup(one, 1, rows[i].name) != 0) continue;
        if (exists) *exists = 1;
        if ((unsigned)k < PD_SAMPLER_COUNT && (rows[i].samplers & BIT(k))) return &rows[i];
    }
    return NULL;
}

double pd_sampler_option_get(const pd_sample_params *p, const pd_sampler_option *o) {
    const char *base = (const char *)p + o->offset;
    if (o->type == PD_OPT_NUM) return *(const double *)(const void *)base;
    return *(const int *)(const void *)base;
}

double pd_sampler_option_value(const pd_sample_params *p, const pd_sampler_option *o) {
    double v = pd_sampler_option_get(p, o);
    return !isnan(o->def_means) && v == o->def ? o->def_means : v;
}

void pd_sampler_option_set(pd_sample_params *p, const pd_sampler_option *o, double v) {
    char *base = (char *)p + o->offset;
    if (o->type == PD_OPT_NUM) *(double *)(void *)base = v;
    else *(int *)(void *)base = (int)v;
}

int pd_sampler_option_check(const pd_sampler_option *o, double v, char *msg, size_t cap) {
    if (o->type == PD_OPT_BOOL && v != 0 && v != 1) {
        snprintf(msg, cap, "expected 0 or 1, got %g", v);
        return -1;
    }
    if (o->type == PD_OPT_INT && v != floor(v)) {
        snprintf(msg, cap, "expected an integer, got %g", v);
        return -1;
    }
    if (isnan(v) || v < o->lo || (o->lo_open && v == o->lo) || v > o->hi) {
        snprintf(msg, cap, "%.10g is outside %c%.10g, %.10g]", v, o->lo_open ? '(' : '[', o->lo, o->hi);
        return -1;
    }
    return 0;
}

void pd_sampler_option_readers(const char *name, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < PD_SAMPLER_COUNT && len < cap; k++)
        if (pd_sampler_option_find((pd_sampler_kind)k, name, NULL))
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
                                    pd_sampler_name((pd_sampler_kind)k));
}
