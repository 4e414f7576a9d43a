/* denoiser_opts.c — Skip-Tuning and upsample-guidance flags (denoiser_opts.h). Errors print one
 * line naming the flag and exit 2. */
#include "cli/denoiser_opts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_denoiser_opts_init(cli_denoiser_opts *o, arg_opt *rows) {
    memset(o, 0, sizeof *o);
    o->ug_w = 0;
    o->ug_eta = 0.6;   /* docs/algorithms.md §M2.4: guidance over the first 60 % of the trajectory */
    o->st = pd_skip_tuning_default();
    int n = 0;
    rows[n++] = (arg_opt)OPT_DEF("--skip-tuning", ARG_STR, &o->skip_tuning, "RB[:RT]",
                                 "Skip-Tuning: skip scales from RB (innermost) to RT (outermost, "
                                 "default 1), or a list r0,r1,... bottom first", "off");
    rows[n++] = (arg_opt)OPT_DEF("--skip-window", ARG_STR, &o->skip_window, "LO:HI",
                                 "Skip-Tuning only where LO <= sigma <= HI", "every sigma");
    rows[n++] = (arg_opt)OPT_DEF("--upsample-guidance", ARG_NONNEG_DOUBLE, &o->ug_w, "W",
                                 "with --size m x the trained size: guidance weight from the "
                                 "native-size branch (docs/algorithms.md M2)", "off");
    rows[n++] = (arg_opt)OPT("--ug-eta", ARG_NONNEG_DOUBLE, &o->ug_eta, "E",
                             "upsample guidance acts over the first E of the trajectory (VP time)");
    return n;
}

/* "A:B" into two doubles (exit 2 naming flag). */
static void parse_pair(const char *cmd, const char *flag, const char *s, double *a, double *b,
                       int b_optional) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    if (args_parse_double(buf, a) || (colon && args_parse_double(colon + 1, b)) ||
        (!colon && !b_optional))
        cli_bad_flag(cmd, flag, "expected %s, got '%s'", b_optional ? "RB or RB:RT" : "LO:HI", s);
}

void cli_denoiser_opts_check(cli_denoiser_opts *o, arg_spec *spec, const char *cmd) {
    if (o->skip_tuning) {
        pd_skip_tuning *st = &o->st;
        if (strchr(o->skip_tuning, ',')) {
            const char *p = o->skip_tuning;
            while (*p) {
                if (st->n_rho == PD_SKIP_TUNING_MAX)
                    cli_bad_flag(cmd, "--skip-tuning", "more than %d values", PD_SKIP_TUNING_MAX);
                const char *q = strchr(p, ',');
                size_t len = q ? (size_t)(q - p) : strlen(p);
                char item[64];
                if (len >= sizeof item) len = sizeof item - 1;
                memcpy(item, p, len);
                item[len] = 0;
                if (args_parse_double(item, &st->rho[st->n_rho]) || st->rho[st->n_rho] < 0)
                    cli_bad_flag(cmd, "--skip-tuning", "'%s' is not a scale >= 0", item);
                st->n_rho++;
                p = q ? q + 1 : p + len;
            }
        } else {
            parse_pair(cmd, "--skip-tuning", o->skip_tuning, &st->rho_bottom, &st->rho_top, 1);
            if (st->rho_bottom < 0 || st->rho_top < 0)
                cli_bad_flag(cmd, "--skip-tuning", "scales must be >= 0, got '%s'", o->skip_tuning);
        }
        o->st_on = 1;
    }
    if (o->skip_window) {
        if (!o->skip_tuning) cli_bad_flag(cmd, "--skip-window", "needs --skip-tuning");
        parse_pair(cmd, "--skip-window", o->skip_window, &o->st.sigma_lo, &o->st.sigma_hi, 0);
        if (!(o->st.sigma_lo >= 0 && o->st.sigma_lo <= o->st.sigma_hi))
            cli_bad_flag(cmd, "--skip-window", "need 0 <= LO <= HI, got '%s'", o->skip_window);
    }
    if (args_given(spec, "--ug-eta") && !args_given(spec, "--upsample-guidance"))
        cli_bad_flag(cmd, "--ug-eta", "needs --upsample-guidance W");
}

/* o->desc: the transforms' terms of the stack's canonical description (pd_denoiser_describe,
 * what a sweep's keys use), i.e. the text after "model=...|size=N|"; "" for the bare model. */
static void set_desc(cli_denoiser_opts *o, const char *cmd, const pd_denoiser *d, const pd_generator *g) {
    char text[1024];
    pd_error err = {{0}};
    if (g ? pd_generator_describe(g, text, sizeof text, &err) : pd_denoiser_describe(d, text, sizeof text, &err))
        cli_die(1, cmd, "%s", err.msg);
    const char *size = strstr(text, "|size="), *rest = size ? strchr(size + 1, '|') : NULL;
    snprintf(o->desc, sizeof o->desc, "%s", rest ? rest + 1 : "");
}

pd_denoiser *cli_denoiser_opts_apply(cli_denoiser_opts *o, arg_spec *spec, const char *cmd,
                                     cli_model *cm) {
    pd_error err = {{0}};
    o->desc[0] = 0;
    int ug = args_given(spec, "--upsample-guidance");
    if ((o->st_on || ug) && !cm->model)
        cli_bad_flag(cmd, o->st_on ? "--skip-tuning" : "--upsample-guidance",
                     "needs a U-Net model, not %s", cm->spec);
    /* A one-step generator has no trajectory for upsample guidance to act on (pd_generator). */
    if (ug && cm->gen)
        cli_bad_flag(cmd, "--upsample-guidance", "%s is a one-step generator (NFE 1 at sigma_init "
                     "%g): upsample guidance steers a sampler's trajectory, which a generator does "
                     "not have", cm->name, cm->gen->sigma_init);
    if (ug) {
        int r0 = pd_model_config(cm->model)->img_resolution, R = cm->den->H;
        if (R % r0 || R / r0 < 2)
            cli_bad_flag(cmd, "--upsample-guidance", "needs --size m x %d (m >= 2), sampling at %d",
                         r0, R);
        if (pd_denoiser_from_model(&o->lo, cm->model, r0, &err)) cli_die(1, cmd, "%s", err.msg);
    }
    if (o->st_on) {
        if ((cm->gen ? pd_generator_set_skip_tuning(cm->gen, &o->st, &err)
                     : pd_denoiser_set_skip_tuning(cm->den, &o->st, &err)) ||
            (o->lo && pd_denoiser_set_skip_tuning(o->lo, &o->st, &err)))
            cli_bad_flag(cmd, "--skip-tuning", "%s", err.msg);
    }
    if (ug) {
        int m = cm->den->H / o->lo->H;
        if (pd_denoiser_upsample_guidance(&o->ug, cm->den, o->lo, m, o->ug_w, o->ug_eta, &err))
            cli_bad_flag(cmd, "--upsample-guidance", "%s", err.msg);
    }
    pd_denoiser *d = ug ? o->ug : cm->den;
    set_desc(o, cmd, d, cm->gen);
    return d;
}

void cli_denoiser_opts_free(cli_denoiser_opts *o) {
    pd_denoiser_free(o->ug);
    pd_denoiser_free(o->lo);
    o->ug = o->lo = NULL;
}
