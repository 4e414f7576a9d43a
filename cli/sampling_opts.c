/* sampling_opts.c — the shared sampler / sigma-grid options (sampling_opts.h): their table rows,
 * combination checks and conversion to pd_sample_params, as `pixdiff sample` has always read
 * them. Errors print one line naming the flag and exit 2. */
#include "cli/sampling_opts.h"
#include "cli/names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const end_choices[] = {"zero", "sigma-min", NULL};

/* "dpmpp-2m, dpmpp-3m, unipc" for one row's samplers. */
static size_t row_readers(char *out, size_t cap, const pd_sampler_option *r) {
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < PD_SAMPLER_COUNT && len < cap; k++)
        if (r->samplers & (1u << k))
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
                                    pd_sampler_name((pd_sampler_kind)k));
    return len;
}

/* One row per name of the sampler option table (pixdiff.h), its help generated from the rows:
 * the first row's text, then who reads it and the ranges ("dpmpp-2m, unipc 1..3; ipndm 1..4"). */
static int sampler_flag_rows(cli_sampling_opts *o, arg_opt *rows) {
    int n_rows;
    const pd_sampler_option *t = pd_sampler_options(&n_rows);
    o->n_flags = 0;
    for (int i = 0; i < n_rows; i++) {
        cli_sampler_flag *f = NULL;
        for (int j = 0; j < o->n_flags && !f; j++)
            if (!strcmp(o->flags[j].row->name, t[i].name)) f = &o->flags[j];
        size_t len;
        if (!f) {
            if (o->n_flags == CLI_SAMPLER_OPTS_MAX) cli_die(1, "pixdiff", "raise CLI_SAMPLER_OPTS_MAX");
            f = &o->flags[o->n_flags++];
            f->row = &t[i];
            f->given = NULL;
            len = (size_t)snprintf(f->flag, sizeof f->flag, "--%s", t[i].name);
            for (char *c = f->flag; *c; c++)
                if (*c == '_') *c = '-';
            double def = isnan(t[i].def_means) ? t[i].def : t[i].def_means;
            snprintf(f->def, sizeof f->def, "%g", def);
            len = (size_t)snprintf(f->help, sizeof f->help, "%s (", t[i].help);
        } else {
            len = strlen(f->help);
            f->help[--len] = 0; /* reopen the parenthesis */
            len += (size_t)snprintf(f->help + len, sizeof f->help - len, "; ");
        }
        if (len < sizeof f->help) len += row_readers(f->help + len, sizeof f->help - len, &t[i]);
        if (t[i].type == PD_OPT_INT && len < sizeof f->help)
            len += (size_t)snprintf(f->help + len, sizeof f->help - len, " %g..%g", t[i].lo, t[i].hi);
        if (len < sizeof f->help) snprintf(f->help + len, sizeof f->help - len, ")");
    }
    for (int j = 0; j < o->n_flags; j++)
        rows[j] = (arg_opt)OPT_DEF(o->flags[j].flag, ARG_STR, &o->flags[j].given,
                                   o->flags[j].row->meta, o->flags[j].help, o->flags[j].def);
    return o->n_flags;
}

/* The sampler option flags given: each one the sampler reads, in its range (exit 2 naming it). */
static void check_sampler_flags(cli_sampling_opts *o, const char *cmd) {
    pd_sampler_kind k = (pd_sampler_kind)o->sampler;
    for (int j = 0; j < o->n_flags; j++) {
        const cli_sampler_flag *f = &o->flags[j];
        if (!f->given) continue;
        const pd_sampler_option *r = pd_sampler_option_find(k, f->row->name, NULL);
        char who[200], msg[160];
        if (!r) {
            pd_sampler_option_readers(f->row->name, who, sizeof who);
            cli_bad_flag(cmd, f->flag, "only the %s sampler%s read%s it (sampler is %s)", who,
                         strchr(who, ',') ? "s" : "", strchr(who, ',') ? "" : "s", pd_sampler_name(k));
        }
        double v;
        if (args_parse_double(f->given, &v) && strcmp(f->given, "inf"))
            cli_bad_flag(cmd, f->flag, "expected a number, got '%s'", f->given);
        if (!strcmp(f->given, "inf")) v = INFINITY;
        if (pd_sampler_option_check(r, v, msg, sizeof msg))
            cli_bad_flag(cmd, f->flag, "%s (the %s sampler)", msg, pd_sampler_name(k));
        pd_sampler_option_set(&o->opt_values, r, v);
    }
}

int cli_sampling_opts_init(cli_sampling_opts *o, arg_opt *rows, int with_sampler,
                           const char *sigma_min_def, const char *sigma_max_def,
                           const char *base_def) {
    pd_sample_params p = pd_sample_default_params();
    memset(o, 0, sizeof *o);
    o->with_sampler = with_sampler;
    o->sampler = (int)p.sampler;
    o->grid = (int)p.sched.grid;
    o->shift = (int)p.sched.shift;
    o->end = p.sched.end_at_zero ? 0 : 1;
    o->steps = p.steps > 0 ? p.steps : 18;
    o->shift_base_low = p.sched.shift_base_low;
    o->opt_values = p;
    int n = 0;
    if (with_sampler) rows[n++] = (arg_opt)OPT_CHOICE("--sampler", &o->sampler, "sampler", cli_sampler_choices());
    rows[n++] = (arg_opt)OPT("--steps", ARG_POS_INT, &o->steps, "N",
                             with_sampler ? "sampling steps (intervals of the sigma grid)"
                                          : "intervals of the sigma grid");
    if (with_sampler)
        rows[n++] = (arg_opt)OPT_DEF("--nfe", ARG_POS_INT, &o->nfe, "N",
                                     "instead of --steps: the most steps within N network evaluations", "off");
    rows[n++] = (arg_opt){"--schedule", ARG_CHOICE, &o->grid, NULL, "sigma grid",
                          with_sampler ? "the sampler's own (pixdiff --help: default schedule)" : NULL,
                          cli_grid_choices(), 0};
    rows[n++] = (arg_opt)OPT_DEF("--rho", ARG_POS_DOUBLE, &o->rho, "R", "grid exponent (karras, vp-time)",
                                 "karras 7, vp-time 1");
    rows[n++] = (arg_opt)OPT_DEF("--sigma-min", ARG_POS_DOUBLE, &o->sigma_min, "S",
                                 "smallest nonzero sigma of the grid", sigma_min_def);
    rows[n++] = (arg_opt)OPT_DEF("--sigma-max", ARG_POS_DOUBLE, &o->sigma_max, "S",
                                 with_sampler ? "largest sigma; sampling starts from sigma_max * z"
                                              : "largest sigma of the grid", sigma_max_def);
    rows[n++] = (arg_opt)OPT_CHOICE("--end", &o->end,
                                    "last grid point: sigma = 0 (EDM) or stop at sigma_min (AMED tables)",
                                    end_choices);
    rows[n++] = (arg_opt)OPT_CHOICE("--shift", &o->shift,
                                    "SNR shift of the grid for the sampling size", cli_shift_choices());
    rows[n++] = (arg_opt)OPT_DEF("--shift-base", ARG_POS_DOUBLE, &o->shift_base, "B",
                                 "base resolution of the shift", base_def);
    rows[n++] = (arg_opt)OPT("--shift-base-low", ARG_POS_DOUBLE, &o->shift_base_low, "L",
                             "low base resolution of the interp shift");
    if (with_sampler) {
        n += sampler_flag_rows(o, rows + n);
        rows[n++] = (arg_opt)OPT_DEF("--afs", ARG_FLAG, &o->afs, NULL,
                                     "analytical first step (docs/algorithms.md S4.3): one NFE less", "off");
        rows[n++] = (arg_opt)OPT_DEF("--no-afs", ARG_FLAG, &o->no_afs, NULL,
                                     "no AFS even where the predictor was trained with it", "off");
        rows[n++] = (arg_opt)OPT_DEF("--predictor", ARG_STR, &o->predictor_path, "FILE",
                                     "AMED predictor (pixdiff distill amed) for amed / amed-plugin",
                                     "none: r = 1/2, c = 1");
    }
    return n;
}

/* --predictor (and the settings it brings), --afs/--no-afs and the sampler option flags. */
static void check_amed_and_orders(cli_sampling_opts *o, arg_spec *spec, const char *cmd) {
    const char *name = pd_sampler_name((pd_sampler_kind)o->sampler);
    int amed = o->sampler == PD_SAMPLER_AMED || o->sampler == PD_SAMPLER_AMED_PLUGIN;
    if (o->afs && o->no_afs) cli_bad_flag(cmd, "--no-afs", "give --afs or --no-afs, not both");
    if (o->predictor_path) {
        pd_error err = {{0}};
        if (pd_amed_predictor_load(&o->predictor, o->predictor_path, &err))
            cli_die(2, cmd, "--predictor: %s", err.msg);
        const pd_amed_info *in = pd_amed_predictor_info(o->predictor);
        int want = (int)pd_amed_kind_sampler(in->kind);
        if (!args_given(spec, "--sampler")) o->sampler = want;
        else if (o->sampler != want)
            cli_bad_flag(cmd, "--sampler", "%s: the predictor was trained for AMED %s (use --sampler %s)",
                         name, pd_amed_kind_name(in->kind), pd_sampler_name((pd_sampler_kind)want));
        if (!args_given(spec, "--schedule")) o->grid = (int)in->grid;
        if (!args_given(spec, "--rho") && o->grid == (int)in->grid) o->rho = in->rho;
        if (!args_given(spec, "--steps") && !args_given(spec, "--nfe")) o->steps = in->steps;
        if (!args_given(spec, "--end")) o->end = 1;   /* stop at sigma_min, as trained */
        if (!args_given(spec, "--afs") && !o->no_afs) o->afs = in->afs;
        name = pd_sampler_name((pd_sampler_kind)o->sampler);
    } else if (amed && !args_given(spec, "--end")) {
        o->end = 1;   /* AMED's convention (docs/algorithms.md S4.2): stop at sigma_min */
    }
    if (o->no_afs) o->afs = 0;
    check_sampler_flags(o, cmd);
}

void cli_sampling_opts_free(cli_sampling_opts *o) {
    pd_amed_predictor_free(o->predictor);
    o->predictor = NULL;
}

void cli_sampling_opts_check(cli_sampling_opts *o, arg_spec *spec, const char *cmd) {
    /* Each sampler has its own natural grid (ddim: DDPM index grid; dpm-solver++: logsnr). */
    if (o->with_sampler && !args_given(spec, "--schedule"))
        o->grid = (int)pd_sampler_default_grid((pd_sampler_kind)o->sampler);
    if (o->with_sampler) {
        if (args_given(spec, "--steps") && args_given(spec, "--nfe"))
            cli_bad_flag(cmd, "--nfe", "give --steps or --nfe, not both");
        check_amed_and_orders(o, spec, cmd);
        if (o->opt_values.s_tmin > o->opt_values.s_tmax)
            cli_bad_flag(cmd, "--s-tmin", "%g is above --s-tmax %g", o->opt_values.s_tmin,
                         o->opt_values.s_tmax);
    }
    if (args_given(spec, "--rho") && o->grid != PD_GRID_KARRAS && o->grid != PD_GRID_VP_TIME)
        cli_bad_flag(cmd, "--rho", "the %s schedule has no rho", pd_grid_name((pd_grid_kind)o->grid));
    if ((args_given(spec, "--shift-base") || args_given(spec, "--shift-base-low")) &&
        o->shift == PD_SHIFT_NONE)
        cli_bad_flag(cmd, args_given(spec, "--shift-base") ? "--shift-base" : "--shift-base-low",
                     "needs --shift scale or --shift interp");
    if (args_given(spec, "--shift-base-low") && o->shift != PD_SHIFT_INTERP)
        cli_bad_flag(cmd, "--shift-base-low", "only --shift interp reads it");
    if (o->sigma_min > 0 && o->sigma_max > 0 && o->sigma_min >= o->sigma_max)
        cli_bad_flag(cmd, "--sigma-min", "%g is not below --sigma-max %g", o->sigma_min, o->sigma_max);
}

void cli_sampling_opts_params(const cli_sampling_opts *o, arg_spec *spec, const char *cmd,
                              double smin, double smax, int res, int base, pd_sample_params *p) {
    *p = o->opt_values;   /* pd_sample_default_params with the sampler option flags set */
    p->sampler = (pd_sampler_kind)o->sampler;
    p->sched.grid = (pd_grid_kind)o->grid;
    p->sched.rho = o->rho;
    p->sched.sigma_min = o->sigma_min > 0 ? o->sigma_min : smin;
    p->sched.sigma_max = o->sigma_max > 0 ? o->sigma_max : smax;
    if (p->sched.sigma_min >= p->sched.sigma_max)
        cli_bad_flag(cmd, o->sigma_min > 0 ? "--sigma-min" : "--sigma-max",
                     "sigma range [%g, %g] is empty", p->sched.sigma_min, p->sched.sigma_max);
    p->sched.end_at_zero = o->end == 0;
    p->sched.shift = (pd_shift_kind)o->shift;
    p->sched.shift_res = res;
    p->sched.shift_base = o->shift_base > 0 ? o->shift_base : base;
    p->sched.shift_base_low = o->shift_base_low;
    p->afs = o->afs;
    p->amed = o->predictor;
    int steps = o->steps;
    if (o->with_sampler && args_given(spec, "--nfe")) {
        steps = pd_sampler_steps_for_nfe(p, o->nfe);
        if (steps < 1)
            cli_bad_flag(cmd, "--nfe", "%d evaluations are too few for the %s sampler", o->nfe,
                         pd_sampler_name(p->sampler));
    }
    p->steps = steps;
    p->nfe = 0;
    /* Fail on a bad grid now (e.g. DDIM index grids with more steps than indices). */
    pd_error err = {{0}};
    double *sig = malloc(sizeof(double) * (size_t)(steps + 1));
    if (!sig) cli_die(1, cmd, "out of memory");
    if (pd_sigma_grid(sig, steps, &p->sched, &err)) cli_die(2, cmd, "%s", err.msg);
    free(sig);
}

double cli_sampling_opts_rho(const cli_sampling_opts *o) {
    if (o->rho > 0) return o->rho;
    if (o->grid == PD_GRID_KARRAS) return 7;
    if (o->grid == PD_GRID_VP_TIME) return 1;
    return 0;
}
