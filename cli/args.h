/* args.h — the CLI's declarative option parser.
 *
 * A command describes its options as a table of {flag, type, destination, metavar, help, default}
 * and calls args_parse(). The same table generates `pixdiff <cmd> --help`, so help text and
 * behaviour cannot drift apart. The destination holds the default before parsing; help shows
 * that value unless the entry's `def` text overrides it (e.g. "the model's"). Bad input never
 * returns: it prints one line naming the command and the flag
 *   pixdiff sample: --steps: expected a positive integer, got '-3'
 * and exits with status 2. Both `--flag value` and `--flag=value` are accepted; `--` ends options.
 */
#ifndef PD_CLI_ARGS_H
#define PD_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    ARG_FLAG,          /* int*: set to 1, takes no value */
    ARG_INT,           /* int*: any integer */
    ARG_POS_INT,       /* int*: > 0 */
    ARG_NONNEG_INT,    /* int*: >= 0 */
    ARG_U64,           /* uint64_t*: >= 0 (seeds) */
    ARG_DOUBLE,        /* double*: any finite number */
    ARG_POS_DOUBLE,    /* double*: finite, > 0 */
    ARG_NONNEG_DOUBLE, /* double*: finite, >= 0 */
    ARG_STR,           /* const char**: the argv string itself */
    ARG_CHOICE,        /* int*: index into `choices` (NULL-terminated) */
    ARG_INT_LIST       /* arg_int_list*: comma-separated positive integers */
} arg_type;

#define ARG_LIST_MAX 32
typedef struct arg_int_list {
    int v[ARG_LIST_MAX];
    int n;
} arg_int_list;

typedef struct arg_opt {
    const char *flag; /* "--steps" */
    arg_type type;
    void *dest;
    const char *meta;           /* value name in help ("N"); NULL for ARG_FLAG */
    const char *help;           /* one line */
    const char *def;            /* default as shown in help; NULL: print *dest */
    const char *const *choices; /* ARG_CHOICE only */
    int given;                  /* set by args_parse when the flag appears */
} arg_opt;

/* Table rows without -Wmissing-field-initializers noise: OPT shows *dest as the default, OPT_DEF
 * shows the given text, OPT_CHOICE picks from a NULL-terminated list (dest is an int index). */
#define OPT(flag, type, dest, meta, help)                                                          \
    { flag, type, dest, meta, help, NULL, NULL, 0 }
#define OPT_DEF(flag, type, dest, meta, help, def)                                                 \
    { flag, type, dest, meta, help, def, NULL, 0 }
#define OPT_CHOICE(flag, dest, help, choices)                                                      \
    { flag, ARG_CHOICE, dest, NULL, help, NULL, choices, 0 }

typedef struct arg_spec {
    const char *cmd;     /* "sample" */
    const char *usage;   /* text after "pixdiff sample", e.g. "[options] FILE" */
    const char *summary; /* one paragraph shown at the top of --help */
    arg_opt *opts;
    int n_opts;
    const char *pos_name; /* positional argument name ("FILE"), NULL if none */
    int pos_min, pos_max; /* allowed count of positional arguments */
    const char *epilog;   /* extra help text printed last, or NULL */
} arg_spec;

/* Parses argv[1..argc) (argv[0] is the command name). Positional arguments are returned in
 * pos[0..*npos) (pointers into argv; pos must hold pos_max entries). `--help`/`-h` anywhere
 * prints help and exits 0. Returns only on success. */
void args_parse(arg_spec *spec, int argc, char **argv, const char **pos, int *npos);
void args_print_help(const arg_spec *spec, FILE *f);
/* The entry for flag, or NULL; args_given is 1 when the flag appeared on the command line. */
arg_opt *args_find(arg_spec *spec, const char *flag);
int args_given(arg_spec *spec, const char *flag);

/* A command's table assembled from blocks (its own rows, the shared sampler and denoiser rows):
 * copies each block in order into dst, which must hold them all; returns the row count. */
typedef struct arg_rows {
    const arg_opt *rows;
    int n;
} arg_rows;
int args_concat(arg_opt *dst, const arg_rows *blocks, int n_blocks);

/* Prints "pixdiff <cmd>: <message>" on stderr and exits with `code`
 * (2: the command line was wrong; 1: the work failed). */
void cli_die(int code, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
/* The same, naming a flag: "pixdiff <cmd>: <flag>: <message>", exit 2. */
void cli_bad_flag(const char *cmd, const char *flag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Parsing helpers shared by commands for values checked after the table (class names, lists). */
int args_parse_long(const char *s, long long *out); /* 0 on success: whole string, no overflow */
int args_parse_double(const char *s, double *out);  /* 0 on success: whole string, finite */

#endif
