/* cmd_convert.c — `pixdiff convert IN OUT.safetensors`: an EDM/SiD network snapshot (.pkl), a
 * torch state dict (.pth/.pt: FID Inception weights, or EDM names with --config) or a plain
 * safetensors state dict (with --config) into a pixdiff model file (pixdiff.h "checkpoint
 * conversion"). A file it cannot read or convert exits 2 with one line naming it; a failed write
 * exits 1; OUT is written atomically, so nothing appears on error. Progress goes to stderr
 * (cli/progress.h): in place on a terminal, else one line per stage for inputs over 64 MB.
 */
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "pixdiff.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int cmd_convert(int argc, char **argv) {
    const char *cmd = "convert";
    pd_convert_params p = pd_convert_default_params();
    int quiet = 0;
    arg_opt opts[] = {
        OPT("--key", ARG_STR, &p.key, "NAME", "entry of the snapshot dict holding the network"),
        OPT("--generator", ARG_FLAG, &p.generator, NULL,
            "mark the network as a one-step generator (SiD, SiDA)"),
        OPT("--sigma-init", ARG_POS_DOUBLE, &p.sigma_init, "S",
            "the generator's sigma (SiD's init_sigma; files do not store it)"),
        OPT_DEF("--config", ARG_STR, &p.config, "ARCH.yaml",
                "architecture (pixdiff.config keys) of a plain state dict with EDM's names",
                "none"),
        OPT("--quiet", ARG_FLAG, &quiet, NULL, "no progress on stderr"),
    };
    arg_spec spec = {cmd,
                     "[options] IN OUT.safetensors",
                     "Convert a checkpoint into a pixdiff model file. IN is an NVlabs/edm or SiD "
                     "network snapshot (.pkl: EDMPrecond, VPPrecond, VEPrecond or iDDPMPrecond "
                     "around SongUNet or DhariwalUNet), a torch .pth/.pt state dict (pytorch-fid's "
                     "Inception weights, or EDM's tensor names with --config), or a .safetensors "
                     "state dict with --config. Pickles are read by a restricted reader that never "
                     "runs code from the file, so untrusted checkpoints are safe to convert.",
                     opts,
                     (int)(sizeof opts / sizeof opts[0]),
                     "IN OUT.safetensors",
                     2,
                     2,
                     NULL};
    const char *pos[2];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    const char *in = pos[0], *out = pos[1];
    if (opts[2].given && !p.generator)
        cli_die(2, cmd, "--sigma-init applies only with --generator");
    cli_check_out_path(cmd, "OUT", out);

    struct stat sb;
    cli_progress ui;
    cli_progress_init(&ui, "convert", quiet);
    if (!quiet && (ui.tty || (stat(in, &sb) == 0 && sb.st_size > (64LL << 20)))) {
        p.progress = cli_progress_show;
        p.user = &ui;
    }
    pd_error err;
    pd_converted *c;
    int rc = pd_convert_read(&c, in, &p, &err);
    if (rc) {
        cli_progress_end(&ui);
        cli_die(2, cmd, "%s", err.msg);
    }
    rc = pd_convert_write(c, out, &p, &err);
    cli_progress_end(&ui);
    if (rc) {
        pd_converted_free(c);
        cli_die(1, cmd, "%s", err.msg);
    }
    printf("%s: %s; %d tensors, %zu values\n", out, pd_converted_summary(c),
           pd_converted_tensor_count(c), pd_converted_param_count(c));
    pd_converted_free(c);
    return 0;
}
