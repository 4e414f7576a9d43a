/* commands.h — the subcommands of the `pixdiff` binary.
 *
 * Each command is one file cli/cmd_<name>.c exporting `int cmd_<name>(int argc, char **argv)`
 * (argv[0] is the command name) and one line in the table in cli/main.c. A command returns the
 * process exit status: 0 success, 1 the work failed, 2 the command line was wrong (errors are
 * reported by the command itself, as one line on stderr).
 */
#ifndef PD_CLI_COMMANDS_H
#define PD_CLI_COMMANDS_H

typedef int (*cli_command_fn)(int argc, char **argv);

typedef struct cli_command {
    const char *name;
    cli_command_fn fn;
    const char *summary; /* one line, shown by `pixdiff --help` */
} cli_command;

int cmd_sample(int argc, char **argv);
int cmd_denoise(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_snr(int argc, char **argv);
int cmd_distill(int argc, char **argv);   /* dispatches to cmd_distill_<method> (cmd_distill.c) */
int cmd_distill_sid(int argc, char **argv);
int cmd_distill_amed(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
