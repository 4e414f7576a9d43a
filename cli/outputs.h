/* outputs.h — a command's outputs written all or nothing (see outputs.c). */
#ifndef PD_CLI_OUTPUTS_H
#define PD_CLI_OUTPUTS_H

#include <stddef.h>

/* A temporary name next to `final` (same directory, so the commit is a rename) for the command to
 * write; renamed to `final` by cli_outputs_commit, removed if the process exits before. */
const char *cli_outputs_file(const char *cmd, const char *final);
/* Creates dir (mkdir -p; the directories it creates are removed again on failure) and a staging
 * directory inside it, whose path is returned: files written there move into dir on commit and
 * are removed if the process exits before. Exits 1 naming flag when dir cannot be made. */
const char *cli_outputs_dir(const char *cmd, const char *flag, const char *dir);
/* Renames everything into place; exits 1 on a failed rename. */
void cli_outputs_commit(const char *cmd);

#endif
