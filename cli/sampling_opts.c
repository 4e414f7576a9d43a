/* sampling_opts.c — the shared sampler / sigma-grid options (sampling_opts.h): their table rows,
 * combination checks and conversion to pd_sample_params, as `pixdiff sample` has always read
 * them. Errors print one line naming the flag and exit 2. */
#include "cli/sampling_opts.h"
#include "cli/names.h"

#include <stdlib.h>
#include <string.h>

static const char *const end_choices[] = {"zero", "sigma-min", NULL};

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
    o->eta = p.eta;
    o->churn = p.s_churn;
    o->s_tmin = p.s_tmin;
    o->s_tmax = p.s_tmax;
    o->s_noise = p.s_noise;
    int n = 0;
    if (with_sampler) rows[n++] = (arg_opt)OPT_CHOICE("--sampler", &o->sampler, "sampler", cli_sampler_choices());
    rows[n++] = (arg_opt)OPT("--steps", ARG_POS_INT, &o->steps, "N",
                             with_sampler ? "sampling steps (intervals of the sigma grid)"
                                          : "intervals of the sigma grid");
    if (with_sampler)
        rows[n++] = (arg_opt)OPT_DEF("--nfe", ARG_POS_INT, &o->nfe, "N",
                                     "instead of --steps: the most steps within N network evaluations", "off");
    rows[n++] = (arg_opt)OPT_CHOICE("--schedule", &o->grid, "sigma grid", cli_grid_choices());
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
        rows[n++] = (arg_opt)OPT("--eta", ARG_NONNEG_DOUBLE, &o->eta, "E",
                                 "DDIM stochasticity (0 deterministic, 1 DDPM-like)");
        rows[n++] = (arg_opt)OPT("--churn", ARG_NONNEG_DOUBLE, &o->churn, "C",
                                 "EDM S_churn (Alg. 2; 0 = deterministic)");
        rows[n++] = (arg_opt)OPT("--s-tmin", ARG_NONNEG_DOUBLE, &o->s_tmin, "A",
                                 "EDM S_tmin: churn only where sigma >= A");
        rows[n++] = (arg_opt)OPT("--s-tmax", ARG_NONNEG_DOUBLE, &o->s_tmax, "B",
                                 "EDM S_tmax: churn only where sigma <= B");
        rows[n++] = (arg_opt)OPT("--s-noise", ARG_POS_DOUBLE, &o->s_noise, "S",
                                 "EDM S_noise: scale of the churn noise");
        rows[n++] = (arg_opt)OPT_DEF("--afs", ARG_FLAG, &o->afs, NULL,
                                     "analytical first step (samplers.md 4.3): one NFE less", "off");
        rows[n++] = (arg_opt)OPT_DEF("--no-afs", ARG_FLAG, &o->no_afs, NULL,
                                     "no AFS even where the predictor was trained with it", "off");
        rows[n++] = (arg_opt)OPT_DEF("--max-order", ARG_POS_INT, &o->max_order, "K",
                                     "order cap of dpmpp-2m/3m, unipc (1..3), ipndm, amed-plugin (1..4)",
                                     "the sampler's");
        rows[n++] = (arg_opt)OPT_DEF("--r", ARG_POS_DOUBLE, &o->dpm2_r, "R",
                                     "dpm2: intermediate sigma sigma_next^R sigma^(1-R), 0 < R <= 1", "0.5");
        rows[n++] = (arg_opt)OPT_DEF("--predictor", ARG_STR, &o->predictor_path, "FILE",
                                     "AMED predictor (pixdiff distill amed) for amed / amed-plugin",
                                     "none: r = 1/2, c = 1");
    }
    return n;
}

/* --predictor (and the settings it brings), --afs/--no-afs, --max-order and --r. */
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
        o->end = 1;   /* AMED's convention (samplers.md 4.2): stop at sigma_min */
    }
    if (o->no_afs) o->afs = 0;
    if (args_given(spec, "--max-order")) {
        int hi = o->sampler == PD_SAMPLER_DPMPP_2M || o->sampler == PD_SAMPLER_DPMPP_3M ||
                         o->sampler == PD_SAMPLER_UNIPC
                     ? 3
                 : o->sampler == PD_SAMPLER_IPNDM || o->sampler == PD_SAMPLER_AMED_PLUGIN ? 4
                                                                                        : 0;
        if (!hi) cli_bad_flag(cmd, "--max-order", "the %s sampler has no order cap", name);
        if (o->max_order > hi)
            cli_bad_flag(cmd, "--max-order", "%d is above %s's highest order %d", o->max_order, name, hi);
    }
    if (args_given(spec, "--r")) {
        if (o->sampler != PD_SAMPLER_DPM2)
            cli_bad_flag(cmd, "--r", "only the dpm2 sampler reads it (sampler is %s)", name);
        if (o->dpm2_r > 1) cli_bad_flag(cmd, "--r", "must be in (0, 1], got %g", o->dpm2_r);
    }
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
        if (args_given(spec, "--eta") && o->sampler != PD_SAMPLER_DDIM)
            cli_bad_flag(cmd, "--eta", "only the ddim sampler reads it (sampler is %s)",
                         pd_sampler_name((pd_sampler_kind)o->sampler));
        const char *churn_flags[] = {"--churn", "--s-tmin", "--s-tmax", "--s-noise"};
        for (int i = 0; i < 4; i++)
            if (args_given(spec, churn_flags[i]) && o->sampler != PD_SAMPLER_HEUN)
                cli_bad_flag(cmd, churn_flags[i], "only the heun sampler reads it (sampler is %s)",
                             pd_sampler_name((pd_sampler_kind)o->sampler));
        if (o->s_tmin > o->s_tmax)
            cli_bad_flag(cmd, "--s-tmin", "%g is above --s-tmax %g", o->s_tmin, o->s_tmax);
        check_amed_and_orders(o, spec, cmd);
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
    *p = pd_sample_default_params();
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
    p->eta = o->eta;
    p->s_churn = o->churn;
    p->s_tmin = o->s_tmin;
    p->s_tmax = o->s_tmax;
    p->s_noise = o->s_noise;
    p->afs = o->afs;
    p->max_order = o->max_order;
    p->dpm2_r = o->dpm2_r;
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
