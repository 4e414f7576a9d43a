/* cmd_init.c — `pixdiff init`: write a model file with random weights, from a named preset, a
 * YAML architecture file (the pixdiff.config keys), or a preset overlaid by a YAML file. For
 * tests, benchmarks and as the starting point of training; weights are std 1/sqrt(fan_in) with
 * no zero-initialised layers (pd_model_create), and depend only on --seed. */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/names.h"
#include "pixdiff.h"

#include <inttypes.h>
#include <stdio.h>

int cmd_init(int argc, char **argv) {
    const char *cmd = "init";
    const char *out = NULL, *config = NULL;
    int preset = -1, quiet = 0;
    uint64_t seed = 0;
    arg_opt opts[] = {
        OPT_DEF("--out", ARG_STR, &out, "FILE", "model file to write (.safetensors)", "required"),
        OPT_DEF("--preset", ARG_CHOICE, &preset, NULL,
                "named architecture (the base when --config is given too)", "none"),
        OPT_DEF("--config", ARG_STR, &config, "ARCH.yaml",
                "architecture keys (as in pixdiff.config) overriding the preset", "none"),
        OPT("--seed", ARG_U64, &seed, "S", "seed of the random weights"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "print nothing on success"),
    };
    opts[1].choices = cli_preset_choices();
    arg_spec spec = {cmd,
                     "--out FILE (--preset NAME | --config ARCH.yaml) [options]",
                     "Write a model with random weights. Presets: tiny (16x16 gray, tests), "
                     "fashion32 (the default model's architecture), ref64 (the 3.33 GFLOP "
                     "benchmark net), cifar10 (EDM DDPM++ CIFAR-10).",
                     opts,
                     (int)(sizeof opts / sizeof opts[0]),
                     NULL,
                     0,
                     0,
                     NULL};
    const char *pos[1];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    if (!out) cli_bad_flag(cmd, "--out", "required (the model file to write)");
    if (preset < 0 && !config)
        cli_die(2, cmd, "give --preset NAME or --config ARCH.yaml (see pixdiff init --help)");
    cli_check_out_path(cmd, "--out", out);

    pd_error err = {{0}};
    pd_unet_config cfg = pd_unet_config_default();
    if (preset >= 0 && pd_unet_config_preset(&cfg, pd_unet_preset_name(preset), &err))
        cli_bad_flag(cmd, "--preset", "%s", err.msg);
    if (config && pd_unet_config_from_yaml(&cfg, config, &err))
        cli_die(2, cmd, "--config: %s", err.msg);
    pd_model *m = NULL;
    if (pd_model_create(&m, &cfg, seed, &err)) cli_die(2, cmd, "%s", err.msg);
    if (pd_model_save(m, out, &err)) cli_die(1, cmd, "%s", err.msg);
    if (!quiet) {
        const pd_unet_config *c = pd_model_config(m);
        printf("wrote %s: %s %dx%dx%d, %zu parameters, %.3f GFLOP per image, seed %" PRIu64 "\n",
               out, c->arch, c->img_resolution, c->img_resolution, c->in_channels,
               pd_model_param_count(m), pd_model_gflops(m, c->img_resolution), seed);
    }
    pd_model_free(m);
    return 0;
}
