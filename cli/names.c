/* names.c — choice lists and help text for the library's name tables (names.h).
 *
 * The names themselves come only from pd_sampler_name / pd_grid_name / pd_shift_name /
 * pd_unet_preset_name, iterated to _COUNT (DESIGN.md convention 6), so a sampler added to the
 * library appears in the CLI at once. The descriptions below are indexed by enum value; an entry
 * left out shows as "(no description)", which the end-to-end test rejects, so whoever adds a name
 * also adds its line here.
 */
#include "cli/names.h"
#include "pixdiff.h"

#include <stdio.h>
#include <string.h>

typedef struct name_help {
    const char *what;    /* one line */
    const char *options; /* the sample flags it reads */
} name_help;

/* Samplers: what each one is; the flags it reads come from the sampler option table (pixdiff.h)
 * and its default schedule from the sampler itself; `options` holds only flags outside the table. */
static const name_help sampler_help[PD_SAMPLER_COUNT] = {
    [PD_SAMPLER_EULER] = {"Euler step of the probability-flow ODE (docs/algorithms.md S2.1); NFE = steps", ""},
    [PD_SAMPLER_HEUN] = {"EDM Alg. 1/2: Euler + trapezoid corrector, none into sigma 0; NFE 2N-1", ""},
    [PD_SAMPLER_DDIM] =
        {"DDIM = Euler in x/s (docs/algorithms.md S1.2); eta > 0: ancestral noise; NFE = steps", ""},
    [PD_SAMPLER_DPMPP_2M] = {"DPM-Solver++(2M), data prediction in log-SNR (docs/algorithms.md S3.1); NFE = steps",
                             ""},
    [PD_SAMPLER_DPMPP_3M] = {"DPM-Solver++(3M), warm-up and lower-order final steps; NFE = steps", ""},
    [PD_SAMPLER_IPNDM] = {"iPNDM: fixed-coefficient Adams-Bashforth in sigma (docs/algorithms.md S3.2); NFE = steps",
                          ""},
    [PD_SAMPLER_DPM2] = {"DPM-Solver-2, geometric midpoint (docs/algorithms.md S3.4); NFE 2N-1 (2N to sigma-min)",
                         ""},
    [PD_SAMPLER_UNIPC] = {"UniPC bh2 predictor-corrector (docs/algorithms.md S3.3); NFE = steps", ""},
    [PD_SAMPLER_AMED] = {"AMED-Solver: learned intermediate sigma and step scale (docs/algorithms.md S4.2); "
                         "NFE 2N - AFS",
                         "--predictor FILE (pixdiff distill amed; its grid, steps and AFS are the "
                         "defaults)"},
    [PD_SAMPLER_AMED_PLUGIN] = {"AMED-Plugin on iPNDM or Euler, as the predictor was trained "
                                "(docs/algorithms.md S4.6); NFE 2N - AFS",
                                "--predictor FILE (pixdiff distill amed --plugin ipndm|euler)"},
};

static const name_help grid_help[PD_GRID_COUNT] = {
    [PD_GRID_KARRAS] = {"EDM polynomial grid in sigma^(1/rho) (docs/algorithms.md S0.5)",
                        "--rho (default 7)"},
    [PD_GRID_LOGSNR] = {"uniform in log sigma (logSNR-uniform; the rho -> inf limit of karras)",
                        ""},
    [PD_GRID_VP_TIME] = {"uniform in VP time t^(1/rho) (rho 1: AMED default, 2: quadratic)",
                         "--rho (default 1)"},
    [PD_GRID_DDIM_UNIFORM] = {"DDPM linear-beta indices 0, k, 2k, ... of T = 1000 (DDIM uniform)",
                              ""},
    [PD_GRID_DDIM_QUAD] = {"DDPM linear-beta indices, quadratic spacing (DDIM quad)", ""},
    [PD_GRID_COSINE] = {"uniform t of the logSNR-truncated cosine schedule (docs/algorithms.md M3.2)", ""},
};

static const name_help shift_help[PD_SHIFT_COUNT] = {
    [PD_SHIFT_NONE] = {"sigma unchanged", ""},
    [PD_SHIFT_SCALE] = {"simple diffusion: every sigma x size/base (docs/algorithms.md M3.3)",
                        "--shift-base B"},
    [PD_SHIFT_INTERP] =
        {"logSNR interpolated between the shifts for base-low and base (docs/algorithms.md M3.4)",
         "--shift-base B --shift-base-low L"},
};

static const char *sampler_choices[PD_SAMPLER_COUNT + 1];
static const char *grid_choices[PD_GRID_COUNT + 1];
static const char *shift_choices[PD_SHIFT_COUNT + 1];
static const char *preset_choices[33];

const char *const *cli_sampler_choices(void) {
    for (int k = 0; k < PD_SAMPLER_COUNT; k++)
        sampler_choices[k] = pd_sampler_name((pd_sampler_kind)k);
    return sampler_choices;
}

const char *const *cli_grid_choices(void) {
    for (int k = 0; k < PD_GRID_COUNT; k++) grid_choices[k] = pd_grid_name((pd_grid_kind)k);
    return grid_choices;
}

const char *const *cli_shift_choices(void) {
    for (int k = 0; k < PD_SHIFT_COUNT; k++) shift_choices[k] = pd_shift_name((pd_shift_kind)k);
    return shift_choices;
}

const char *const *cli_preset_choices(void) {
    int n = 0;
    for (const char *s; n < 32 && (s = pd_unet_preset_name(n)); n++) preset_choices[n] = s;
    preset_choices[n] = NULL;
    return preset_choices;
}

static void print_entry(FILE *f, const char *name, const name_help *h) {
    const char *what = h->what ? h->what : "(no description)";
    fprintf(f, "  %-14s %s\n", name, what);
    if (h->options && h->options[0]) fprintf(f, "  %-14s options: %s\n", "", h->options);
}

/* A sampler's entry: what it is, the option-table flags it reads (with their ranges where they
 * differ per sampler) plus its other flags, and the schedule it uses when none is named. */
static void print_sampler(FILE *f, pd_sampler_kind k) {
    const name_help *h = &sampler_help[k];
    fprintf(f, "  %-14s %s\n", pd_sampler_name(k), h->what ? h->what : "(no description)");
    char line[400];
    size_t len = 0;
    line[0] = 0;
    int n;
    const pd_sampler_option *t = pd_sampler_options(&n);
    for (int i = 0; i < n && len < sizeof line; i++) {
        if (!(t[i].samplers & (1u << k))) continue;
        len += (size_t)snprintf(line + len, sizeof line - len, "%s--", len ? " " : "");
        for (const char *c = t[i].name; *c && len + 1 < sizeof line; c++) line[len++] = *c == '_' ? '-' : *c;
        line[len] = 0;
        if (t[i].type == PD_OPT_INT && len < sizeof line)
            len += (size_t)snprintf(line + len, sizeof line - len, " %s (%g..%g)", t[i].meta, t[i].lo, t[i].hi);
    }
    if (h->options && h->options[0] && len < sizeof line)
        snprintf(line + len, sizeof line - len, "%s%s", len ? " " : "", h->options);
    if (line[0]) fprintf(f, "  %-14s options: %s\n", "", line);
    fprintf(f, "  %-14s default schedule: %s%s\n", "", pd_grid_name(pd_sampler_default_grid(k)),
            k == PD_SAMPLER_AMED || k == PD_SAMPLER_AMED_PLUGIN ? " (with --predictor: the predictor's)" : "");
}

void cli_print_names(FILE *f) {
    fprintf(f, "samplers (sample --sampler NAME):\n");
    for (int k = 0; k < PD_SAMPLER_COUNT; k++) print_sampler(f, (pd_sampler_kind)k);
    fprintf(f, "\nsigma schedules (sample --schedule NAME), each also reading --sigma-min, "
               "--sigma-max,\n--end zero|sigma-min and --shift:\n");
    for (int k = 0; k < PD_GRID_COUNT; k++)
        print_entry(f, pd_grid_name((pd_grid_kind)k), &grid_help[k]);
    fprintf(f,
            "\nSNR shifts (sample --shift NAME), applied to any schedule at the sampling size:\n");
    for (int k = 0; k < PD_SHIFT_COUNT; k++)
        print_entry(f, pd_shift_name((pd_shift_kind)k), &shift_help[k]);
    fprintf(f, "\nmodels (--model SPEC):\n"
               "  FILE.safetensors                       a pixdiff / converted EDM model file\n"
               "  analytic:gaussian[:mu=M][:std=S][:res=R][:ch=C]\n"
               "                                         exact denoiser of data ~ N(M, S^2 I)\n"
               "  analytic:points[:n=K][:res=R][:ch=C][:seed=S]\n"
               "                                         exact denoiser of K random points\n"
               "  analytic:points:file=X.npy             exact denoiser of the images in X.npy\n");
    fprintf(f, "\npresets (init --preset NAME):");
    for (int i = 0; pd_unet_preset_name(i); i++) fprintf(f, " %s", pd_unet_preset_name(i));
    fputc('\n', f);
}
