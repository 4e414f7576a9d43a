/* sweep_config.c — reads a sweep file (YAML, core/yamldoc.h) into an sw_spec and validates all of
 * it before any work, so a typo costs seconds, not a night of sampling.
 *
 * Every error is one line "file:line: key.path: why", e.g.
 *   sweep.yaml:14: samplers[2].options: 'eta' is not read by the heun sampler (only ddim)
 * Checked: unknown keys at every level, types, ranges, sampler / schedule / shift / metric names
 * (the library's name tables), options a sampler does not read, rho on grids without one,
 * duplicate series labels, variant names, budgets and metrics, and budgets that fit no step of a
 * sampler ("impossible budgets"). What needs the model (its resolution for size and upsample
 * guidance, its classes for labels and accuracy) is checked by pd_sweep_run once it is loaded,
 * still before any sampling. Relative paths are relative to the current directory, like every
 * path on pixdiff's command line.
 */
#include "sweep/sweep.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ metric table */

static const sw_metric_info metric_table[SW_METRIC_COUNT] = {
    [SW_METRIC_FD] = {"fd", {"fd", NULL}, {1}, {1}, 1, 0, 0},
    [SW_METRIC_KID] = {"kid", {"kid", "kid_se", NULL}, {1, 0}, {1, 1}, 1, 0, 0},
    [SW_METRIC_ACCURACY] = {"accuracy", {"accuracy", NULL}, {1}, {0}, 1, 1, 0},
    [SW_METRIC_PRECISION_RECALL] = {"precision_recall", {"precision", "recall", NULL}, {1, 1},
                                    {0, 0}, 1, 0, 0},
    [SW_METRIC_SPECTRAL] = {"spectral", {"spectral", NULL}, {1}, {1}, 1, 0, 0},
    [SW_METRIC_TRAJECTORY] = {"trajectory", {"traj_rmse", "traj_psnr", NULL}, {1, 1}, {1, 0}, 0, 0, 1},
};

const sw_metric_info *sw_metric_get(sw_metric m) {
    return (unsigned)m < SW_METRIC_COUNT ? &metric_table[m] : NULL;
}

int sw_metric_from_name(const char *name) {
    for (int m = 0; m < SW_METRIC_COUNT; m++)
        if (name && !strcmp(name, metric_table[m].name)) return m;
    return -1;
}

int sw_spec_metric_uses_classifier(const sw_spec *s, sw_metric m) {
    if (s->inception_features && (m == SW_METRIC_FD || m == SW_METRIC_KID || m == SW_METRIC_PRECISION_RECALL))
        return 0;
    return metric_table[m].needs_classifier;
}

int sw_spec_needs_inception(const sw_spec *s) {
    return s->inception_features && (sw_spec_has_metric(s, SW_METRIC_FD) || sw_spec_has_metric(s, SW_METRIC_KID) ||
                                     sw_spec_has_metric(s, SW_METRIC_PRECISION_RECALL));
}

int sw_spec_has_metric(const sw_spec *s, sw_metric m) {
    for (int i = 0; i < s->n_metrics; i++)
        if (s->metrics[i] == m) return 1;
    return 0;
}

/* ------------------------------------------------------------------ typed access with paths */

typedef struct ctx {
    const yd_doc *doc;
    pd_error *err;
} ctx;

static int failf(ctx *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int failf(ctx *c, int line, const char *path, const char *fmt, ...) {
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return pd_fail(c->err, "%s:%d: %s: %s", c->doc->source, line, path, why);
}

static int key_index(const yd_node *map, const char *key) {
    if (!map || map->kind != YD_MAP) return -1;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return i;
    return -1;
}

/* "base.key" (or "key" at the top level), cut to cap: paths only label messages. */
static void join(char *out, size_t cap, const char *base, const char *key) {
    int n = snprintf(out, cap, "%s%s%s", base && *base ? base : "", base && *base ? "." : "", key);
    (void)n;
}

static const char *describe(const yd_node *n, char *buf, size_t cap) {
    if (n->kind == YD_SEQ) return "a list";
    if (n->kind == YD_MAP) return "a mapping";
    snprintf(buf, cap, "'%.60s'", n->scalar);
    return buf;
}

static int check_keys(ctx *c, const yd_node *map, const char *const *known, const char *where) {
    for (int i = 0; i < map->n; i++) {
        int ok = 0;
        for (int k = 0; known[k] && !ok; k++) ok = !strcmp(known[k], map->keys[i]);
        if (ok) continue;
        char list[400] = "";
        size_t len = 0;
        for (int k = 0; known[k] && len < sizeof list; k++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", known[k]);
        char path[320];
        join(path, sizeof path, where, map->keys[i]);
        return failf(c, map->key_lines[i], path, "unknown key (known here: %s)", list);
    }
    return 0;
}

static int need_map(ctx *c, const yd_node *n, int line, const char *path) {
    char b[96];
    if (n->kind != YD_MAP) return failf(c, line, path, "expected a mapping, got %s", describe(n, b, sizeof b));
    return 0;
}

static int parse_number(const yd_node *n, double *out) {
    if (n->kind != YD_SCALAR || n->quoted || !n->scalar[0]) return -1;
    const char *s = n->scalar, *t = (*s == '+' || *s == '-') ? s + 1 : s;
    if (!strcasecmp(t, ".inf") || !strcasecmp(t, "inf")) {
        *out = *s == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || isnan(v)) return -1;
    *out = v;
    return 0;
}

/* A number at map[key] within [lo, hi] (finite unless allow_inf). Absent: *out unchanged, *given 0. */
static int get_num(ctx *c, const yd_node *map, const char *key, const char *where, double lo,
                   double hi, int allow_inf, double *out, int *given) {
    int i = key_index(map, key);
    if (given) *given = i >= 0;
    if (i < 0) return 0;
    char path[320], b[96];
    join(path, sizeof path, where, key);
    double v;
    if (parse_number(map->items[i], &v) || (!allow_inf && !isfinite(v)))
        return failf(c, map->key_lines[i], path, "expected a number, got %s",
                     describe(map->items[i], b, sizeof b));
    if (v < lo || v > hi)
        return failf(c, map->key_lines[i], path, "%g is outside [%g, %g]", v, lo, hi);
    *out = v;
    return 0;
}

static int get_int(ctx *c, const yd_node *map, const char *key, const char *where, long long lo,
                   long long hi, long long *out, int *given) {
    int i = key_index(map, key);
    if (given) *given = i >= 0;
    if (i < 0) return 0;
    char path[320], b[96];
    join(path, sizeof path, where, key);
    const yd_node *n = map->items[i];
    char *end = NULL;
    errno = 0;
    long long v = n->kind == YD_SCALAR && !n->quoted && n->scalar[0] ? strtoll(n->scalar, &end, 10) : 0;
    if (!end || *end || errno)
        return failf(c, map->key_lines[i], path, "expected an integer, got %s", describe(n, b, sizeof b));
    if (v < lo || v > hi) return failf(c, map->key_lines[i], path, "%lld is outside [%lld, %lld]", v, lo, hi);
    *out = v;
    return 0;
}

static int get_bool(ctx *c, const yd_node *map, const char *key, const char *where, int *out,
                    int *given) {
    int i = key_index(map, key);
    if (given) *given = i >= 0;
    if (i < 0) return 0;
    const yd_node *n = map->items[i];
    static const char *const t[] = {"true", "yes", "on"}, *const f[] = {"false", "no", "off"};
    if (n->kind == YD_SCALAR && !n->quoted)
        for (int k = 0; k < 3; k++) {
            if (!strcasecmp(n->scalar, t[k])) return *out = 1, 0;
            if (!strcasecmp(n->scalar, f[k])) return *out = 0, 0;
        }
    char path[320], b[96];
    join(path, sizeof path, where, key);
    return failf(c, map->key_lines[i], path, "expected true or false, got %s", describe(n, b, sizeof b));
}

static int get_str(ctx *c, const yd_node *map, const char *key, const char *where, char *out,
                   size_t cap, int *given) {
    int i = key_index(map, key);
    if (given) *given = i >= 0;
    if (i < 0) return 0;
    const yd_node *n = map->items[i];
    char path[320], b[96];
    join(path, sizeof path, where, key);
    if (n->kind != YD_SCALAR || !n->scalar[0])
        return failf(c, map->key_lines[i], path, "expected a non-empty string, got %s",
                     n->kind == YD_SCALAR ? "''" : describe(n, b, sizeof b));
    if (strlen(n->scalar) >= cap)
        return failf(c, map->key_lines[i], path, "longer than %zu characters", cap - 1);
    memcpy(out, n->scalar, strlen(n->scalar) + 1);
    return 0;
}

static int line_of(const yd_node *map, const char *key) {
    int i = key_index(map, key);
    return i >= 0 ? map->key_lines[i] : (map ? map->line : 0);
}

/* "name1, name2, ..." of a name table, for "known: ..." messages. */
static void name_list(char *out, size_t cap, const char *(*name)(int), int count) {
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < count && len < cap; k++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", k ? ", " : "", name(k));
}
static const char *sampler_name_i(int k) { return pd_sampler_name((pd_sampler_kind)k); }
static const char *grid_name_i(int k) { return pd_grid_name((pd_grid_kind)k); }
static const char *shift_name_i(int k) { return pd_shift_name((pd_shift_kind)k); }
static const char *metric_name_i(int k) { return metric_table[k].name; }

/* ------------------------------------------------------------------ sampler options */

/* options: {...} of a sampler entry: each key a row of the sampler option table (pixdiff.h) that
 * this sampler reads, in its range; afs, for every sampler, is the one key outside the table. */
static int parse_options(ctx *c, const yd_node *opts, int line, const char *where, sw_sampler *sm) {
    if (need_map(c, opts, line, where)) return -1;
    pd_sample_params *p = &sm->p;
    for (int i = 0; i < opts->n; i++) {
        const char *k = opts->keys[i];
        char path[320], msg[160];
        join(path, sizeof path, where, k);
        if (!strcmp(k, "afs")) {
            if (get_bool(c, opts, k, where, &p->afs, NULL)) return -1;
            continue;
        }
        int exists;
        const pd_sampler_option *row = pd_sampler_option_find(p->sampler, k, &exists);
        if (!exists) {
            int n;
            const pd_sampler_option *t = pd_sampler_options(&n);
            const char *known[40];
            int m = 0;
            for (int r = 0; r < n && m < 38; r++)
                if (!r || strcmp(t[r].name, t[r - 1].name)) known[m++] = t[r].name;
            known[m++] = "afs";
            known[m] = NULL;
            return check_keys(c, opts, known, where);
        }
        if (!row) {
            pd_sampler_option_readers(k, msg, sizeof msg);
            return failf(c, opts->key_lines[i], path, "not read by the %s sampler (only %s)",
                         pd_sampler_name(p->sampler), msg);
        }
        double v = 0;
        if (row->type == PD_OPT_BOOL) {
            int bv = 0;
            if (get_bool(c, opts, k, where, &bv, NULL)) return -1;
            v = bv;
        } else if (row->type == PD_OPT_INT) {
            long long iv = 0;
            if (get_int(c, opts, k, where, LLONG_MIN, LLONG_MAX, &iv, NULL)) return -1;
            v = (double)iv;
        } else if (get_num(c, opts, k, where, -INFINITY, INFINITY, isinf(row->hi), &v, NULL)) {
            return -1;
        }
        if (pd_sampler_option_check(row, v, msg, sizeof msg))
            return failf(c, opts->key_lines[i], path, "%s (the %s sampler)", msg, pd_sampler_name(p->sampler));
        pd_sampler_option_set(p, row, v);
    }
    if (p->s_tmin > p->s_tmax)
        return failf(c, line_of(opts, "s_tmin"), where, "s_tmin %g is above s_tmax %g", p->s_tmin, p->s_tmax);
    return 0;
}

/* The default series label: the name plus the options that differ from the defaults. */
static void auto_label(sw_sampler *sm) {
    const pd_sample_params *p = &sm->p;
    char t[64];
    size_t len = (size_t)snprintf(sm->label, sizeof sm->label, "%s", pd_sampler_name(p->sampler));
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (len < sizeof sm->label)                                                                \
            len += (size_t)snprintf(sm->label + len, sizeof sm->label - len, __VA_ARGS__);         \
    } while (0)
    if (p->sched.grid != pd_sampler_default_grid(p->sampler)) ADD(" %s", pd_grid_name(p->sched.grid));
    if (p->sched.rho > 0) {
        jb_fmt_double(t, sizeof t, p->sched.rho);
        ADD(" rho=%s", t);
    }
    if (!p->sched.end_at_zero) ADD(" end=sigma-min");
    int n_opts;
    const pd_sampler_option *rows = pd_sampler_options(&n_opts);
    for (int i = 0; i < n_opts; i++) { /* the option table's label tokens, where not default */
        const pd_sampler_option *o = &rows[i];
        double v = pd_sampler_option_get(p, o);
        if (!o->label || !(o->samplers & (1u << p->sampler)) || v == o->def) continue;
        if (o->label[strlen(o->label) - 1] == '=') ADD(" %s%g", o->label, v);
        else ADD(" %s", o->label);
    }
    if (p->afs) ADD(" afs");
#undef ADD
}

/* "- {generator: FILE[, label: L]}": a one-step generator (SiD) as one more series; it has no
 * sampler, schedule or options (pd_generator_generate evaluates it once at its sigma_init). */
static int parse_generator(ctx *c, const yd_node *item, const char *where, sw_sampler *sm) {
    char path[200];
    for (int i = 0; i < item->n; i++)
        if (strcmp(item->keys[i], "generator") && strcmp(item->keys[i], "label")) {
            join(path, sizeof path, where, item->keys[i]);
            return failf(c, item->key_lines[i], path,
                         "a generator entry takes only generator and label (one evaluation at its "
                         "sigma_init: no sampler, schedule or options)");
        }
    int label_given = 0;
    if (get_str(c, item, "generator", where, sm->generator, sizeof sm->generator, NULL) ||
        get_str(c, item, "label", where, sm->label, sizeof sm->label, &label_given))
        return -1;
    sm->generator_line = line_of(item, "generator");
    if (!sm->generator[0]) {
        join(path, sizeof path, where, "generator");
        return failf(c, sm->generator_line, path, "expected the path of a generator model");
    }
    if (!label_given) { /* the file name without directory and extension */
        const char *base = strrchr(sm->generator, '/');
        snprintf(sm->label, sizeof sm->label, "%s", base ? base + 1 : sm->generator);
        char *dot = strrchr(sm->label, '.');
        if (dot && dot != sm->label) *dot = 0;
    }
    return 0;
}

static int parse_sampler(ctx *c, const yd_node *item, int idx, sw_sampler *sm) {
    char where[64], b[96];
    snprintf(where, sizeof where, "samplers[%d]", idx);
    memset(sm, 0, sizeof *sm);
    sm->line = item->line;
    sm->p = pd_sample_default_params();
    char name[64] = "", label[64] = "", sched[64] = "", end[32] = "";
    const yd_node *opts = NULL;
    int label_given = 0, sched_given = 0, end_given = 0, rho_given = 0, opts_line = item->line;
    if (item->kind == YD_SCALAR) { /* shorthand: "- heun" */
        if (!item->scalar[0] || strlen(item->scalar) >= sizeof name)
            return failf(c, item->line, where, "expected a sampler name or a mapping");
        snprintf(name, sizeof name, "%s", item->scalar);
    } else {
        if (need_map(c, item, item->line, where)) return -1;
        static const char *const known[] = {"name", "label", "schedule", "rho", "end", "options",
                                            "predictor", "generator", NULL};
        if (check_keys(c, item, known, where)) return -1;
        if (key_index(item, "generator") >= 0) return parse_generator(c, item, where, sm);
        int given = 0;
        if (get_str(c, item, "name", where, name, sizeof name, &given)) return -1;
        if (!given) return failf(c, item->line, where, "missing 'name' (the sampler)");
        if (get_str(c, item, "predictor", where, sm->predictor, sizeof sm->predictor, NULL)) return -1;
        sm->predictor_line = line_of(item, "predictor");
        if (get_str(c, item, "label", where, label, sizeof label, &label_given) ||
            get_str(c, item, "schedule", where, sched, sizeof sched, &sched_given) ||
            get_str(c, item, "end", where, end, sizeof end, &end_given) ||
            get_num(c, item, "rho", where, 1e-3, 1e3, 0, &sm->p.sched.rho, &rho_given))
            return -1;
        int oi = key_index(item, "options");
        if (oi >= 0) {
            opts = item->items[oi];
            opts_line = item->key_lines[oi];
        }
    }
    int k = pd_sampler_from_name(name);
    char list[400], path[200];
    if (k < 0) {
        name_list(list, sizeof list, sampler_name_i, PD_SAMPLER_COUNT);
        join(path, sizeof path, where, "name");
        return failf(c, item->kind == YD_SCALAR ? item->line : line_of(item, "name"), path,
                     "unknown sampler '%s' (known: %s)", name, list);
    }
    sm->p.sampler = (pd_sampler_kind)k;
    sm->p.sched.grid = pd_sampler_default_grid(sm->p.sampler);
    if (sched_given) {
        int g = pd_grid_from_name(sched);
        if (g < 0) {
            name_list(list, sizeof list, grid_name_i, PD_GRID_COUNT);
            join(path, sizeof path, where, "schedule");
            return failf(c, line_of(item, "schedule"), path, "unknown schedule '%s' (known: %s)", sched, list);
        }
        sm->p.sched.grid = (pd_grid_kind)g;
    }
    if (rho_given && sm->p.sched.grid != PD_GRID_KARRAS && sm->p.sched.grid != PD_GRID_VP_TIME) {
        join(path, sizeof path, where, "rho");
        return failf(c, line_of(item, "rho"), path, "the %s schedule has no rho (karras and vp-time do)",
                     pd_grid_name(sm->p.sched.grid));
    }
    if (end_given) {
        join(path, sizeof path, where, "end");
        if (!strcmp(end, "zero")) sm->p.sched.end_at_zero = 1;
        else if (!strcmp(end, "sigma-min") || !strcmp(end, "sigma_min")) sm->p.sched.end_at_zero = 0;
        else return failf(c, line_of(item, "end"), path, "expected zero or sigma-min, got '%s'", end);
    }
    if (opts) {
        join(path, sizeof path, where, "options");
        if (opts->kind != YD_MAP)
            return failf(c, opts_line, path, "expected a mapping, got %s", describe(opts, b, sizeof b));
        if (parse_options(c, opts, opts_line, path, sm)) return -1;
    }
    if (sm->predictor[0]) {
        /* AMED's predictor was trained for one grid, sigma range, end, step count and AFS
         * (pd_amed_sample_params): those come from the file, one file per budget. */
        join(path, sizeof path, where, "predictor");
        if (sm->p.sampler != PD_SAMPLER_AMED && sm->p.sampler != PD_SAMPLER_AMED_PLUGIN)
            return failf(c, sm->predictor_line, path, "only amed and amed-plugin read a predictor");
        const char *at = strstr(sm->predictor, "{nfe}");
        if (!at || strstr(at + 5, "{nfe}"))
            return failf(c, sm->predictor_line, path,
                         "must contain {nfe} once: one predictor file per NFE budget, e.g. "
                         "models/fashion32-amed-nfe{nfe}.safetensors");
        static const char *const fixed[] = {"schedule", "rho", "end", "options", NULL};
        for (int k = 0; fixed[k]; k++)
            if (key_index(item, fixed[k]) >= 0) {
                join(path, sizeof path, where, fixed[k]);
                return failf(c, line_of(item, fixed[k]), path,
                             "set by the predictor file (it records the settings it was trained for)");
            }
    }
    if (label_given) snprintf(sm->label, sizeof sm->label, "%s", label);
    else auto_label(sm);
    return 0;
}

int sw_predictor_path(char *out, size_t cap, const sw_sampler *sm, int nfe) {
    const char *at = strstr(sm->predictor, "{nfe}");
    if (!at) return snprintf(out, cap, "%s", sm->predictor) < (int)cap ? 0 : -1;
    int n = snprintf(out, cap, "%.*s%d%s", (int)(at - sm->predictor), sm->predictor, nfe, at + 5);
    return n >= 0 && n < (int)cap ? 0 : -1;
}

/* ------------------------------------------------------------------ variants */

static int parse_variant(ctx *c, const yd_node *item, int idx, sw_variant *v) {
    char where[64];
    snprintf(where, sizeof where, "variants[%d]", idx);
    memset(v, 0, sizeof *v);
    v->line = item->line;
    v->shift = PD_SHIFT_NONE;
    v->shift_base_low = pd_schedule_default_params().shift_base_low;
    v->skip_tuning = pd_skip_tuning_default();
    if (need_map(c, item, item->line, where)) return -1;
    static const char *const known[] = {"name", "shift", "size", "upsample_guidance", "skip_tuning",
                                        "guidance", NULL};
    if (check_keys(c, item, known, where)) return -1;
    int given = 0;
    if (get_str(c, item, "name", where, v->name, sizeof v->name, &given)) return -1;
    if (!given) return failf(c, item->line, where, "missing 'name'");
    for (const char *p = v->name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.+=", *p))
            return failf(c, line_of(item, "name"), where,
                         "name '%s': use letters, digits and - _ . + = only (it goes into file names)", v->name);
    long long size = 0;
    if (get_int(c, item, "size", where, 8, 4096, &size, NULL)) return -1;
    v->size = (int)size;

    int cg = 0;
    if (get_num(c, item, "guidance", where, -100, 100, 0, &v->cfg_w, &cg)) return -1;
    v->cfg = cg;

    char path[200];
    int i = key_index(item, "shift");
    if (i >= 0) {
        const yd_node *s = item->items[i];
        join(path, sizeof path, where, "shift");
        if (need_map(c, s, item->key_lines[i], path)) return -1;
        static const char *const ks[] = {"kind", "base", "base_low", NULL};
        if (check_keys(c, s, ks, path)) return -1;
        char kind[32] = "";
        int kg = 0;
        if (get_str(c, s, "kind", path, kind, sizeof kind, &kg)) return -1;
        if (!kg) return failf(c, item->key_lines[i], path, "missing 'kind' (scale or interp)");
        int k = pd_shift_from_name(kind);
        if (k < 0) {
            char list[200];
            name_list(list, sizeof list, shift_name_i, PD_SHIFT_COUNT);
            return failf(c, line_of(s, "kind"), path, "unknown shift kind '%s' (known: %s)", kind, list);
        }
        v->shift = (pd_shift_kind)k;
        int bg = 0, blg = 0;
        if (get_num(c, s, "base", path, 1, 65536, 0, &v->shift_base, &bg) ||
            get_num(c, s, "base_low", path, 1, 65536, 0, &v->shift_base_low, &blg))
            return -1;
        if ((bg || blg) && v->shift == PD_SHIFT_NONE)
            return failf(c, line_of(s, bg ? "base" : "base_low"), path, "kind none takes no base");
        if (blg && v->shift != PD_SHIFT_INTERP)
            return failf(c, line_of(s, "base_low"), path, "only kind interp reads base_low");
    }
    i = key_index(item, "upsample_guidance");
    if (i >= 0) {
        const yd_node *u = item->items[i];
        join(path, sizeof path, where, "upsample_guidance");
        if (need_map(c, u, item->key_lines[i], path)) return -1;
        static const char *const ku[] = {"w", "eta", NULL};
        if (check_keys(c, u, ku, path)) return -1;
        int wg = 0;
        v->ug_eta = 1;
        if (get_num(c, u, "w", path, -100, 100, 0, &v->ug_w, &wg) ||
            get_num(c, u, "eta", path, 0, 1, 0, &v->ug_eta, NULL))
            return -1;
        if (!wg) return failf(c, item->key_lines[i], path, "missing 'w' (the guidance scale)");
        if (!v->size)
            return failf(c, item->key_lines[i], path,
                         "needs the variant's size: the sampling resolution, a multiple of the model's");
        v->ug = 1;
    }
    i = key_index(item, "skip_tuning");
    if (i >= 0) {
        const yd_node *st = item->items[i];
        join(path, sizeof path, where, "skip_tuning");
        if (need_map(c, st, item->key_lines[i], path)) return -1;
        static const char *const kt[] = {"rho_bottom", "rho_top", "rho", "sigma_lo", "sigma_hi", NULL};
        if (check_keys(c, st, kt, path)) return -1;
        pd_skip_tuning *t = &v->skip_tuning;
        int bg = 0, tg = 0, lg = 0;
        if (get_num(c, st, "rho_bottom", path, -100, 100, 0, &t->rho_bottom, &bg) ||
            get_num(c, st, "rho_top", path, -100, 100, 0, &t->rho_top, &tg) ||
            get_num(c, st, "sigma_lo", path, 0, INFINITY, 0, &t->sigma_lo, NULL) ||
            get_num(c, st, "sigma_hi", path, 0, INFINITY, 1, &t->sigma_hi, NULL))
            return -1;
        int ri = key_index(st, "rho");
        if (ri >= 0) {
            char rp[320];
            join(rp, sizeof rp, path, "rho");
            const yd_node *l = st->items[ri];
            if (bg || tg) return failf(c, st->key_lines[ri], rp, "give rho or rho_bottom/rho_top, not both");
            if (l->kind != YD_SEQ || l->n < 1 || l->n > PD_SKIP_TUNING_MAX)
                return failf(c, st->key_lines[ri], rp, "expected a list of 1..%d numbers", PD_SKIP_TUNING_MAX);
            for (int k = 0; k < l->n; k++)
                if (parse_number(l->items[k], &t->rho[k]) || !isfinite(t->rho[k]))
                    return failf(c, l->items[k]->line, rp, "item %d: expected a number", k);
            t->n_rho = l->n;
            lg = 1;
        }
        if (!bg && !tg && !lg)
            return failf(c, item->key_lines[i], path, "give rho_bottom and/or rho_top, or a rho list");
        if (t->sigma_lo > t->sigma_hi)
            return failf(c, line_of(st, "sigma_lo"), path, "sigma_lo %g is above sigma_hi %g", t->sigma_lo,
                         t->sigma_hi);
        v->skip = 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the file */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int parse_root(ctx *c, const yd_node *root, sw_spec *s) {
    char b[96];
    if (!root) return pd_fail(c->err, "%s: the file is empty", c->doc->source);
    if (root->kind != YD_MAP)
        return failf(c, root->line, "(top level)", "expected a mapping of keys, got %s", describe(root, b, sizeof b));
    static const char *const known[] = {"name",  "model",  "classifier", "samplers", "nfe",
                                        "variants", "n",   "seed",       "batch",    "labels",
                                        "metrics", "reference_steps", "save_grid", "threads",
                                        "output", "reuse", "data_dir", "features", "inception",
                                        "fid_ref", "fid_prep", NULL};
    if (check_keys(c, root, known, "")) return -1;
    static const char *const required[] = {"model", "samplers", "nfe", "n", "metrics", NULL};
    for (int k = 0; required[k]; k++)
        if (key_index(root, required[k]) < 0)
            return pd_fail(c->err, "%s:%d: %s: missing (required keys: model, samplers, nfe, n, metrics)",
                           c->doc->source, root->line, required[k]);

    long long v = 0;
    int given = 0;
    if (get_str(c, root, "name", "", s->name, sizeof s->name, NULL) ||
        get_str(c, root, "model", "", s->model, sizeof s->model, NULL) ||
        get_str(c, root, "classifier", "", s->classifier, sizeof s->classifier, NULL) ||
        get_str(c, root, "data_dir", "", s->data_dir, sizeof s->data_dir, NULL) ||
        get_str(c, root, "inception", "", s->inception, sizeof s->inception, NULL) ||
        get_str(c, root, "fid_ref", "", s->fid_ref, sizeof s->fid_ref, NULL) ||
        get_str(c, root, "output", "", s->out_dir, sizeof s->out_dir, NULL))
        return -1;
    /* reuse: a folder or a list of folders (other sweeps' outputs) */
    int ri = key_index(root, "reuse");
    if (ri >= 0) {
        const yd_node *rl = root->items[ri];
        s->reuse_line = root->key_lines[ri];
        int count = rl->kind == YD_SEQ ? rl->n : 1;
        if (count < 1 || count > SW_MAX_REUSE)
            return failf(c, s->reuse_line, "reuse", "expected a folder or a list of 1 to %d folders", SW_MAX_REUSE);
        for (int i = 0; i < count; i++) {
            const yd_node *it = rl->kind == YD_SEQ ? rl->items[i] : rl;
            if (it->kind != YD_SCALAR || !it->scalar[0] || strlen(it->scalar) >= sizeof s->reuse[0])
                return failf(c, it->line, "reuse", "expected a folder name (a sweep's output)");
            memcpy(s->reuse[i], it->scalar, strlen(it->scalar) + 1);
        }
        s->n_reuse = count;
    }
    s->model_line = line_of(root, "model");
    s->labels_line = line_of(root, "labels"); /* the top line when absent: "auto" was implied */
    s->metrics_line = line_of(root, "metrics");
    s->classifier_line = line_of(root, "classifier");
    if (get_int(c, root, "n", "", 2, 10000000, &v, NULL)) return -1;
    s->n = (int)v;
    if (get_int(c, root, "batch", "", 1, 100000, &v, &given)) return -1;
    if (given) s->batch = (int)v;
    if (get_int(c, root, "seed", "", 0, (long long)(~0ull >> 1), &v, &given)) return -1;
    if (given) s->seed = (uint64_t)v;
    if (get_int(c, root, "reference_steps", "", 500, 100000, &v, &given)) return -1;
    if (given) s->reference_steps = (int)v;
    if (get_int(c, root, "threads", "", 0, 4096, &v, &given)) return -1;
    if (given) s->threads = (int)v;
    if (get_bool(c, root, "save_grid", "", &s->save_grid, NULL)) return -1;
    char feat[32] = "", prep[32] = "";
    if (get_str(c, root, "features", "", feat, sizeof feat, &given)) return -1;
    s->features_line = line_of(root, "features");
    if (given && strcmp(feat, "classifier") && strcmp(feat, "inception"))
        return failf(c, s->features_line, "features", "expected classifier or inception, got '%s'", feat);
    s->inception_features = given && !strcmp(feat, "inception");
    if (get_str(c, root, "fid_prep", "", prep, sizeof prep, &given)) return -1;
    if (given && (s->fid_prep = pd_fid_prep_from_name(prep)) < 0)
        return failf(c, line_of(root, "fid_prep"), "fid_prep", "expected pytorch-fid or edm, got '%s'", prep);
    if (!s->inception_features) {
        static const char *const inc_keys[] = {"inception", "fid_ref", "fid_prep", NULL};
        for (int k = 0; inc_keys[k]; k++)
            if (key_index(root, inc_keys[k]) >= 0)
                return failf(c, line_of(root, inc_keys[k]), inc_keys[k], "only read with features: inception");
    }
    char labels[32] = "";
    if (get_str(c, root, "labels", "", labels, sizeof labels, &given)) return -1;
    if (given) {
        if (!strcmp(labels, "auto")) s->labels = SW_LABELS_AUTO;
        else if (!strcmp(labels, "cycle")) s->labels = SW_LABELS_CYCLE;
        else if (!strcmp(labels, "none")) s->labels = SW_LABELS_NONE;
        else return failf(c, line_of(root, "labels"), "labels", "expected auto, cycle or none, got '%s'", labels);
    }

    /* metrics: a list of names, each once */
    int mi = key_index(root, "metrics");
    const yd_node *ml = root->items[mi];
    if (ml->kind != YD_SEQ || ml->n < 1)
        return failf(c, root->key_lines[mi], "metrics", "expected a non-empty list of metric names");
    for (int i = 0; i < ml->n; i++) {
        const yd_node *it = ml->items[i];
        char list[200];
        name_list(list, sizeof list, metric_name_i, SW_METRIC_COUNT);
        int m = it->kind == YD_SCALAR ? sw_metric_from_name(it->scalar) : -1;
        if (m < 0)
            return failf(c, it->line, "metrics", "unknown metric %s (known: %s)", describe(it, b, sizeof b), list);
        if (sw_spec_has_metric(s, (sw_metric)m))
            return failf(c, it->line, "metrics", "'%s' is listed twice", it->scalar);
        s->metrics[s->n_metrics++] = (sw_metric)m;
    }

    /* samplers */
    int si = key_index(root, "samplers");
    const yd_node *sl = root->items[si];
    if (sl->kind != YD_SEQ || sl->n < 1)
        return failf(c, root->key_lines[si], "samplers", "expected a non-empty list of samplers");
    if (sl->n > SW_MAX_SAMPLERS)
        return failf(c, root->key_lines[si], "samplers", "at most %d samplers, got %d", SW_MAX_SAMPLERS, sl->n);
    for (int i = 0; i < sl->n; i++) {
        if (parse_sampler(c, sl->items[i], i, &s->samplers[i])) return -1;
        for (int j = 0; j < i; j++)
            if (!strcmp(s->samplers[j].label, s->samplers[i].label))
                return failf(c, sl->items[i]->line, "samplers",
                             "items %d and %d have the same label '%s' (give one a 'label')", j, i,
                             s->samplers[i].label);
        s->n_samplers++;
    }

    /* nfe: budgets, each fitting at least one step of every sampler */
    int ni = key_index(root, "nfe");
    const yd_node *nl = root->items[ni];
    if (nl->kind != YD_SEQ || nl->n < 1)
        return failf(c, root->key_lines[ni], "nfe", "expected a non-empty list of NFE budgets");
    if (nl->n > SW_MAX_NFE)
        return failf(c, root->key_lines[ni], "nfe", "at most %d budgets, got %d", SW_MAX_NFE, nl->n);
    for (int i = 0; i < nl->n; i++) {
        const yd_node *it = nl->items[i];
        char path[32];
        snprintf(path, sizeof path, "nfe[%d]", i);
        char *end = NULL;
        long long bv = it->kind == YD_SCALAR && !it->quoted ? strtoll(it->scalar, &end, 10) : 0;
        if (!end || *end || !it->scalar[0])
            return failf(c, it->line, path, "expected a whole number of evaluations, got %s", describe(it, b, sizeof b));
        if (bv < 1 || bv > 100000) return failf(c, it->line, path, "budget %lld is outside 1..100000", bv);
        for (int j = 0; j < i; j++)
            if (s->nfe[j] == bv) return failf(c, it->line, path, "budget %lld is listed twice", bv);
        for (int k = 0; k < s->n_samplers; k++) {
            const pd_sample_params *p = &s->samplers[k].p;
            if (s->samplers[k].predictor[0] || s->samplers[k].generator[0])
                continue; /* files decide (sweep_plan.c); a generator fits every budget */
            if (pd_sampler_steps_for_nfe(p, (int)bv) < 1)
                return failf(c, it->line, path,
                             "budget %lld fits no step of samplers[%d] '%s' (one step costs %d "
                             "evaluations); raise it or remove it",
                             bv, k, s->samplers[k].label, pd_sampler_nfe_for_steps(p, 1));
        }
        s->nfe[s->n_nfe++] = (int)bv;
    }
    qsort(s->nfe, (size_t)s->n_nfe, sizeof s->nfe[0], cmp_int);

    /* variants (optional): default one plain variant */
    int vi = key_index(root, "variants");
    if (vi >= 0) {
        const yd_node *vl = root->items[vi];
        if (vl->kind != YD_SEQ || vl->n < 1)
            return failf(c, root->key_lines[vi], "variants", "expected a non-empty list of variants");
        if (vl->n > SW_MAX_VARIANTS)
            return failf(c, root->key_lines[vi], "variants", "at most %d variants, got %d", SW_MAX_VARIANTS, vl->n);
        for (int i = 0; i < vl->n; i++) {
            if (parse_variant(c, vl->items[i], i, &s->variants[i])) return -1;
            for (int j = 0; j < i; j++)
                if (!strcmp(s->variants[j].name, s->variants[i].name))
                    return failf(c, vl->items[i]->line, "variants", "items %d and %d are both named '%s'", j,
                                 i, s->variants[i].name);
            s->n_variants++;
        }
    } else {
        sw_variant *v = &s->variants[0];
        memset(v, 0, sizeof *v);
        snprintf(v->name, sizeof v->name, "base");
        v->shift = PD_SHIFT_NONE;
        v->shift_base_low = pd_schedule_default_params().shift_base_low;
        v->skip_tuning = pd_skip_tuning_default();
        v->line = root->line;
        s->n_variants = 1;
    }

    /* What the metrics need that the file alone decides. */
    for (int k = 0; k < s->n_samplers; k++)
        if (s->samplers[k].generator[0] && sw_spec_has_metric(s, SW_METRIC_TRAJECTORY)) {
            char path[64];
            snprintf(path, sizeof path, "samplers[%d].generator", k);
            return failf(c, s->samplers[k].generator_line, path,
                         "the trajectory metric compares ODE solutions from the same noise; a "
                         "one-step generator has none (drop the metric or the generator)");
        }
    if (sw_spec_has_metric(s, SW_METRIC_ACCURACY) && s->labels == SW_LABELS_NONE)
        return failf(c, line_of(root, "labels"), "labels",
                     "the accuracy metric needs class-conditional samples (labels: cycle or auto)");
    if (sw_spec_needs_inception(s)) {
        if (!s->fid_ref[0])
            return failf(c, s->features_line, "fid_ref",
                         "features: inception needs a reference (a PNG folder, FILE.npz statistics, "
                         "FILE.npy images or fashion-mnist:test)");
        const char *env = getenv("PIXDIFF_INCEPTION");
        if (!s->inception[0] && env && *env) snprintf(s->inception, sizeof s->inception, "%s", env);
        if (!s->inception[0])
            return failf(c, s->features_line, "inception",
                         "features: inception needs the FID Inception weights (inception: FILE or "
                         "$PIXDIFF_INCEPTION; README \"FID\")");
    }
    if (!strncmp(s->model, "analytic:", 9)) {
        for (int k = 0; k < s->n_metrics; k++)
            if (sw_spec_metric_uses_classifier(s, s->metrics[k]))
                return failf(c, line_of(root, "metrics"), "metrics",
                             "'%s' compares with Fashion-MNIST through the classifier; an analytic "
                             "model (%s) has only the trajectory metric",
                             metric_table[s->metrics[k]].name, s->model);
        for (int k = 0; k < s->n_variants; k++) {
            const sw_variant *v = &s->variants[k];
            if (v->size || v->ug || v->skip)
                return failf(c, v->line, "variants",
                             "'%s': size, upsample_guidance and skip_tuning need a model file, not %s",
                             v->name, s->model);
        }
    }
    return 0;
}

/* A file named by a template (a predictor's "{nfe}"): its folder is resolved, the name kept. */
static int resolve_template(char *p, size_t cap, const char *config, pd_error *err) {
    if (!p[0] || p[0] == '/') return 0;
    char out[1024];
    if (!strchr(p, '{')) {
        if (pd_resolve_input(out, sizeof out, p, config, err)) return -1;
    } else {
        const char *slash = strrchr(p, '/');
        if (!slash) return 0;
        char dir[1024];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - p), p);
        if (pd_resolve_input(out, sizeof out, dir, config, err)) return -1;
        size_t len = strlen(out);
        if (len + strlen(slash) + 1 > sizeof out) return pd_fail(err, "%s: path too long", p);
        memcpy(out + len, slash, strlen(slash) + 1);
    }
    if (strlen(out) + 1 > cap) return pd_fail(err, "%s: path too long", out);
    memcpy(p, out, strlen(out) + 1);
    return 0;
}

/* Input files named in the sweep file (see sweep.h, model_file). */
static int resolve_inputs(sw_spec *s, const char *config, pd_error *err) {
    if (strncmp(s->model, "analytic:", 9) == 0) snprintf(s->model_file, sizeof s->model_file, "%s", s->model);
    else if (pd_resolve_input(s->model_file, sizeof s->model_file, s->model, config, err)) return -1;
    if (pd_resolve_input(s->classifier_file, sizeof s->classifier_file, s->classifier, config, err))
        return -1;
    for (int k = 0; k < s->n_samplers; k++)
        if (resolve_template(s->samplers[k].predictor, sizeof s->samplers[k].predictor, config, err) ||
            resolve_template(s->samplers[k].generator, sizeof s->samplers[k].generator, config, err))
            return -1;
    return 0;
}

int sw_spec_load(sw_spec *s, const char *path, pd_error *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->source, sizeof s->source, "%s", path);
    s->batch = 64;
    s->seed = 0;
    s->labels = SW_LABELS_AUTO;
    s->reference_steps = 500;
    snprintf(s->classifier, sizeof s->classifier, "models/fashion-classifier.safetensors");
    yd_doc doc;
    if (yd_load_file(&doc, path, err)) return -1;
    ctx c = {&doc, err};
    int rc = parse_root(&c, doc.root, s);
    yd_free(&doc);
    if (rc) return -1;
    if (!s->name[0]) { /* the file name without directory and extension */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        snprintf(s->name, sizeof s->name, "%s", base);
        char *dot = strrchr(s->name, '.');
        if (dot && dot != s->name) *dot = 0;
    }
    if (!s->out_dir[0]) snprintf(s->out_dir, sizeof s->out_dir, "runs/sweeps/%s", s->name);
    if (resolve_inputs(s, path, err)) return -1;
    return 0;
}
