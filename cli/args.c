/* args.c — the declarative option parser (args.h): one pass over argv against a command's
 * option table, strict numeric parsing (the whole string must be a finite number of the right
 * sign), one-line errors that name the flag and exit 2, and --help generated from the table. */
#include "cli/args.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_die(int code, const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, cmd && *cmd ? "pixdiff %s: " : "pixdiff: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}

void cli_bad_flag(const char *cmd, const char *flag, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pixdiff %s: %s: ", cmd, flag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

int args_parse_long(const char *s, long long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s) return -1;
    *out = v;
    return 0;
}

int args_parse_double(const char *s, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static const char *type_expect(arg_type t) {
    switch (t) {
    case ARG_INT: return "an integer";
    case ARG_POS_INT: return "a positive integer";
    case ARG_NONNEG_INT: return "a non-negative integer";
    case ARG_U64: return "a non-negative integer";
    case ARG_DOUBLE: return "a number";
    case ARG_POS_DOUBLE: return "a positive number";
    case ARG_NONNEG_DOUBLE: return "a non-negative number";
    case ARG_INT_LIST: return "a comma-separated list of positive integers";
    default: return "a value";
    }
}

/* Joins a NULL-terminated list into buf with sep between items. */
static void join_choices(char *buf, size_t cap, const char *const *choices, const char *sep) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; choices[i]; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? sep : "", choices[i]);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
}

/* Names match as the library's tables do: case-insensitive, '_' equal to '-'. */
static int same_name(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char ca = *a == '_' ? '-' : (char)tolower((unsigned char)*a);
        char cb = *b == '_' ? '-' : (char)tolower((unsigned char)*b);
        if (ca != cb) return 0;
    }
    return !*a && !*b;
}

/* Stores value into o->dest; exits 2 naming the flag on bad input. */
static void set_value(const arg_spec *spec, arg_opt *o, const char *val) {
    long long l;
    double d;
    switch (o->type) {
    case ARG_FLAG: *(int *)o->dest = 1; return;
    case ARG_INT:
    case ARG_POS_INT:
    case ARG_NONNEG_INT:
        if (args_parse_long(val, &l) || l < -2147483647LL || l > 2147483647LL ||
            (o->type == ARG_POS_INT && l <= 0) || (o->type == ARG_NONNEG_INT && l < 0))
            cli_bad_flag(spec->cmd, o->flag, "expected %s, got '%s'", type_expect(o->type), val);
        *(int *)o->dest = (int)l;
        return;
    case ARG_U64: {
        /* strtoull accepts "-1" (wrapping it); reject any sign explicitly. */
        char *end;
        errno = 0;
        unsigned long long u = (*val >= '0' && *val <= '9') ? strtoull(val, &end, 10) : 0;
        if (!(*val >= '0' && *val <= '9') || errno || *end)
            cli_bad_flag(spec->cmd, o->flag, "expected %s, got '%s'", type_expect(o->type), val);
        *(uint64_t *)o->dest = (uint64_t)u;
        return;
    }
    case ARG_DOUBLE:
    case ARG_POS_DOUBLE:
    case ARG_NONNEG_DOUBLE:
        if (args_parse_double(val, &d) || (o->type == ARG_POS_DOUBLE && d <= 0) ||
            (o->type == ARG_NONNEG_DOUBLE && d < 0))
            cli_bad_flag(spec->cmd, o->flag, "expected %s, got '%s'", type_expect(o->type), val);
        *(double *)o->dest = d;
        return;
    case ARG_STR:
        if (!*val) cli_bad_flag(spec->cmd, o->flag, "expected a value, got ''");
        *(const char **)o->dest = val;
        return;
    case ARG_CHOICE:
        for (int i = 0; o->choices[i]; i++)
            if (same_name(o->choices[i], val)) {
                *(int *)o->dest = i;
                return;
            }
        {
            char list[512];
            join_choices(list, sizeof list, o->choices, ", ");
            cli_bad_flag(spec->cmd, o->flag, "unknown value '%s' (choose from: %s)", val, list);
        }
    case ARG_INT_LIST: {
        arg_int_list *lst = o->dest;
        lst->n = 0;
        const char *p = val;
        while (1) {
            char item[32];
            size_t k = strcspn(p, ",");
            if (k == 0 || k >= sizeof item || lst->n >= ARG_LIST_MAX)
                cli_bad_flag(spec->cmd, o->flag, "expected %s, got '%s'", type_expect(o->type),
                             val);
            memcpy(item, p, k);
            item[k] = 0;
            if (args_parse_long(item, &l) || l <= 0 || l > 1000000)
                cli_bad_flag(spec->cmd, o->flag, "expected %s, got '%s'", type_expect(o->type),
                             val);
            lst->v[lst->n++] = (int)l;
            if (!p[k]) break;
            p += k + 1;
        }
        return;
    }
    }
}

arg_opt *args_find(arg_spec *spec, const char *flag) {
    for (int i = 0; i < spec->n_opts; i++)
        if (strcmp(spec->opts[i].flag, flag) == 0) return &spec->opts[i];
    return NULL;
}

int args_concat(arg_opt *dst, const arg_rows *blocks, int n_blocks) {
    int n = 0;
    for (int b = 0; b < n_blocks; b++)
        for (int i = 0; i < blocks[b].n; i++) dst[n++] = blocks[b].rows[i];
    return n;
}

int args_given(arg_spec *spec, const char *flag) {
    arg_opt *o = args_find(spec, flag);
    return o ? o->given : 0;
}

void args_parse(arg_spec *spec, int argc, char **argv, const char **pos, int *npos) {
    /* --help wins over everything else on the line, so `--steps -3 --help` still helps. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            args_print_help(spec, stdout);
            exit(0);
        }
    }
    int np = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        /* A lone "-" is a positional (stdin-style name); negative numbers only appear as values. */
        if (only_pos || a[0] != '-' || a[1] == 0) {
            if (np >= spec->pos_max) {
                if (spec->pos_max == 0)
                    cli_die(2, spec->cmd, "unexpected argument '%s' (see pixdiff %s --help)", a,
                            spec->cmd);
                cli_die(2, spec->cmd, "too many arguments: '%s' (see pixdiff %s --help)", a,
                        spec->cmd);
            }
            pos[np++] = a;
            continue;
        }
        char name[128];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof name) nlen = sizeof name - 1;
        memcpy(name, a, nlen);
        name[nlen] = 0;
        arg_opt *o = args_find(spec, name);
        if (!o)
            cli_die(2, spec->cmd, "unknown option '%s' (see pixdiff %s --help)", name, spec->cmd);
        if (o->type == ARG_FLAG) {
            if (eq) cli_bad_flag(spec->cmd, o->flag, "takes no value, got '%s'", eq + 1);
            set_value(spec, o, NULL);
        } else {
            const char *val;
            if (eq) {
                val = eq + 1;
            } else {
                if (i + 1 >= argc)
                    cli_bad_flag(spec->cmd, o->flag, "missing value (%s)",
                                 o->meta ? o->meta : "VALUE");
                val = argv[++i];
            }
            set_value(spec, o, val);
        }
        o->given = 1;
    }
    if (np < spec->pos_min)
        cli_die(2, spec->cmd, "missing %s (see pixdiff %s --help)",
                spec->pos_name ? spec->pos_name : "argument", spec->cmd);
    *npos = np;
}

/* The current value of an option's destination, as help shows its default. */
static void format_default(const arg_opt *o, char *buf, size_t cap) {
    buf[0] = 0;
    if (o->def) {
        snprintf(buf, cap, "%s", o->def);
        return;
    }
    switch (o->type) {
    case ARG_FLAG: break;
    case ARG_INT:
    case ARG_POS_INT:
    case ARG_NONNEG_INT: snprintf(buf, cap, "%d", *(int *)o->dest); break;
    case ARG_U64: snprintf(buf, cap, "%" PRIu64, *(uint64_t *)o->dest); break;
    case ARG_DOUBLE:
    case ARG_POS_DOUBLE:
    case ARG_NONNEG_DOUBLE: snprintf(buf, cap, "%g", *(double *)o->dest); break;
    case ARG_STR:
        if (*(const char **)o->dest) snprintf(buf, cap, "%s", *(const char **)o->dest);
        break;
    case ARG_CHOICE: snprintf(buf, cap, "%s", o->choices[*(int *)o->dest]); break;
    case ARG_INT_LIST: {
        const arg_int_list *l = o->dest;
        size_t len = 0;
        for (int i = 0; i < l->n && len + 12 < cap; i++)
            len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "", l->v[i]);
        break;
    }
    }
}

/* Prints text word-wrapped to HELP_WIDTH columns; the first line continues at column `col`,
 * later lines start at column `indent`. Paragraph breaks ("\n") in text are kept. */
#define HELP_WIDTH 100
static void print_wrapped(FILE *f, const char *text, int col, int indent) {
    int line_start = 1; /* no word on this line yet */
    for (const char *p = text; *p;) {
        if (*p == '\n') {
            fputc('\n', f);
            col = 0;
            line_start = 1;
            p++;
            continue;
        }
        if (*p == ' ') {
            p++;
            continue;
        }
        int w = (int)strcspn(p, " \n");
        if (!line_start && col + 1 + w > HELP_WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
            line_start = 1;
        }
        if (!line_start) fputc(' ', f), col++;
        fprintf(f, "%.*s", w, p);
        col += w;
        p += w;
        line_start = 0;
    }
}

void args_print_help(const arg_spec *spec, FILE *f) {
    fprintf(f, "usage: pixdiff %s %s\n\n", spec->cmd, spec->usage ? spec->usage : "[options]");
    if (spec->summary) {
        print_wrapped(f, spec->summary, 0, 0);
        fprintf(f, "\n\n");
    }
    fprintf(f, "options:\n");
    for (int i = 0; i < spec->n_opts; i++) {
        const arg_opt *o = &spec->opts[i];
        char lhs[640], def[160], choices[512], text[1024];
        if (o->type == ARG_CHOICE) {
            join_choices(choices, sizeof choices, o->choices, "|");
            snprintf(lhs, sizeof lhs, "%s %s", o->flag, choices);
        } else if (o->type == ARG_FLAG) {
            snprintf(lhs, sizeof lhs, "%s", o->flag);
        } else {
            snprintf(lhs, sizeof lhs, "%s %s", o->flag, o->meta ? o->meta : "VALUE");
        }
        format_default(o, def, sizeof def);
        if (def[0]) snprintf(text, sizeof text, "%s [default: %s]", o->help, def);
        else snprintf(text, sizeof text, "%s", o->help);
        if (strlen(lhs) > 24) fprintf(f, "  %s\n%28s", lhs, "");
        else fprintf(f, "  %-24s  ", lhs);
        print_wrapped(f, text, 28, 28);
        fputc('\n', f);
    }
    fprintf(f, "  %-24s  %s\n", "-h, --help", "show this help and exit");
    if (spec->epilog) fprintf(f, "\n%s", spec->epilog);
}
