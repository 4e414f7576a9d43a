/* cmd_distill.c — `pixdiff distill <method> ...`: the distillation methods, dispatched through
 * one table. Each method is a file cli/cmd_distill_<method>.c exporting
 * `int cmd_distill_<method>(int argc, char **argv)` (argv[0] is the method name; declared in
 * cli/commands.h) and one line below, so methods are added without touching each other.
 * `pixdiff distill` or `pixdiff distill --help` lists them; `pixdiff distill <method> --help`
 * gives the method's options.
 */
#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

typedef struct distill_method {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} distill_method;

static const distill_method methods[] = {
    {"sid", cmd_distill_sid,
     "Score identity Distillation: a one-step generator from a teacher denoiser (docs/algorithms.md §M1)"},
    {"amed", cmd_distill_amed,
     "an AMED predictor for the amed / amed-plugin samplers at one NFE (docs/algorithms.md §S4.5)"},
};
static const int n_methods = (int)(sizeof methods / sizeof methods[0]);

static void print_help(FILE *f) {
    fprintf(f, "usage: pixdiff distill <method> [options]   (pixdiff distill <method> --help)\n\n"
               "methods:\n");
    for (int i = 0; i < n_methods; i++) fprintf(f, "  %-8s %s\n", methods[i].name, methods[i].summary);
}

int cmd_distill(int argc, char **argv) {
    if (argc < 2) {
        print_help(stderr);
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "--help") || !strcmp(m, "-h") || !strcmp(m, "help")) {
        print_help(stdout);
        return 0;
    }
    for (int i = 0; i < n_methods; i++)
        if (!strcmp(m, methods[i].name)) return methods[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "pixdiff distill: unknown method '%s' (see pixdiff distill --help)\n", m);
    return 2;
}
