/* test_sampler_options.c — the sampler option table (pixdiff.h, samplers/options.c) drives every
 * reader and writer: for each row and each sampler that reads it, a value other than the default
 *   - given as the CLI flag (`./pixdiff sample ... --flag V --json`, the build folder's binary)
 *     reaches the run: it appears in the settings JSON (the PNG "pixdiff" chunk) under the row's
 *     JSON name, and, for rows with a PNG name, in the "parameters" text of the PNG;
 *   - given as the sweep YAML key (options: {name: V}) reaches the cell: results.jsonl's column
 *     for the row holds V and the cell key holds "|key=V" (rows that are not group members);
 * and a value outside the row's range is refused by both: the CLI exits 2 naming the flag, the
 * sweep fails naming samplers[0].options.<name>. Plus: pd_sample_default_params holds each row's
 * default, and an unknown YAML option key is an error naming it.
 */
#include "pixdiff.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

/* Runs cmd through the shell; its stdout+stderr into out; returns the exit status. */
static int run_cmd(const char *cmd, char *out, size_t cap) {
    char full[2048];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *f = popen(full, "r");
    if (!f) return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void flag_of(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "--%s", name);
    for (char *c = out; *c; c++)
        if (*c == '_') *c = '-';
}

/* A value in range that is not the default, exactly representable and short in every format. */
static double good_value(const pd_sampler_option *o) {
    if (o->type == PD_OPT_BOOL) return o->def ? 0 : 1;
    if (o->type == PD_OPT_INT) return o->hi;
    return o->hi <= 1 ? 0.25 : 0.5;
}
static double bad_value(const pd_sampler_option *o) {
    if (o->lo_open) return o->lo;
    return isinf(o->hi) ? o->lo - 1 : o->hi + 1;
}

static void fmt(char *out, size_t cap, double v) {
    if (isinf(v)) snprintf(out, cap, "inf");
    else snprintf(out, cap, "%.17g", v);
}

static void check_cli(const pd_sampler_option *o, pd_sampler_kind k) {
    char flag[48], v[40], cmd[1024], *out = malloc(1 << 16);
    flag_of(flag, sizeof flag, o->name);
    double gv = good_value(o);
    fmt(v, sizeof v, gv);
    snprintf(cmd, sizeof cmd,
             "./pixdiff sample --model analytic:gaussian:res=4:ch=1:std=0.5 --seed 1 --n 1 --quiet "
             "--json --sampler %s --steps 3 %s %s --out %s/cli.png",
             pd_sampler_name(k), flag, v, dir);
    int rc = run_cmd(cmd, out, 1 << 16);
    char want[160];
    snprintf(want, sizeof want, "\"%s\": %s", o->json ? o->json : o->name, v);
    tu_check(rc == 0 && strstr(out, want) != NULL, "CLI %s %s %s: exit %d, JSON has %s", pd_sampler_name(k),
             flag, v, rc, want);
    if (o->png && o->key_rule != PD_OPT_KEY_MEMBER) {
        snprintf(cmd, sizeof cmd, "./pixdiff inspect %s/cli.png", dir);
        rc = run_cmd(cmd, out, 1 << 16);
        snprintf(want, sizeof want, "%s: %g", o->png, gv);
        tu_check(rc == 0 && strstr(out, want) != NULL, "CLI %s %s %s: PNG parameters have '%s'",
                 pd_sampler_name(k), flag, v, want);
    }
    fmt(v, sizeof v, bad_value(o));
    snprintf(cmd, sizeof cmd,
             "./pixdiff sample --model analytic:gaussian:res=4:ch=1:std=0.5 --seed 1 --n 1 --quiet "
             "--sampler %s --steps 3 %s %s --out %s/bad.png",
             pd_sampler_name(k), flag, v, dir);
    rc = run_cmd(cmd, out, 1 << 16);
    snprintf(want, sizeof want, "%s: ", flag);
    tu_check(rc == 2 && strstr(out, want) != NULL && !strchr(strchr(out, '\n') + 1, '\n'),
             "CLI %s %s %s refused: exit %d, one line naming the flag: %s", pd_sampler_name(k), flag, v,
             rc, out);
    free(out);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = calloc(1, 1 << 20);
    fread(s, 1, (1 << 20) - 1, f);
    fclose(f);
    return s;
}

static int sweep(pd_sampler_kind k, const char *name, const char *v, int dry, char *key_out,
                 pd_error *err) {
    char yaml[512], path[160], out[128];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/sweep", dir);
    FILE *f = fopen(path, "w");
    snprintf(yaml, sizeof yaml,
             "model: analytic:gaussian:res=4:ch=1:std=0.5\nsamplers:\n  - name: %s\n    options: {%s: %s}\n"
             "nfe: [4]\nn: 2\nbatch: 2\nmetrics: [trajectory]\noutput: %s\n",
             pd_sampler_name(k), name, v, out);
    fputs(yaml, f);
    fclose(f);
    char rm[200];
    snprintf(rm, sizeof rm, "rm -rf %s", out);
    if (system(rm)) return -1;
    pd_sweep_options o = pd_sweep_default_options();
    o.dry_run = dry;
    err->msg[0] = 0;
    int rc = pd_sweep_run(path, &o, NULL, err);
    if (!rc && key_out) {
        snprintf(path, sizeof path, "%s/results.jsonl", out);
        char *s = slurp(path);
        snprintf(key_out, 4096, "%s", s ? s : "");
        free(s);
    }
    return rc;
}

static void check_yaml(const pd_sampler_option *o, pd_sampler_kind k) {
    char v[40], want[160], *rec = malloc(4096);
    double gv = good_value(o);
    if (o->type == PD_OPT_BOOL) snprintf(v, sizeof v, "%s", gv ? "true" : "false");
    else fmt(v, sizeof v, gv);
    pd_error err;
    int rc = sweep(k, o->name, v, 0, rec, &err);
    char num[40];
    fmt(num, sizeof num, gv);
    snprintf(want, sizeof want, "\"%s\": %s,", o->record ? o->record : o->name, num);
    tu_check(rc == 0 && strstr(rec, want) != NULL, "YAML %s %s: %s: results.jsonl has %s %s", pd_sampler_name(k),
             o->name, v, want, err.msg);
    if (o->key_rule != PD_OPT_KEY_MEMBER) {
        snprintf(want, sizeof want, "|%s=%s%s", o->key ? o->key : o->name, num,
                 o->key_rule == PD_OPT_KEY_GROUP ? "," : "|"); /* a group: its members follow */
        tu_check(rc == 0 && strstr(rec, want) != NULL, "YAML %s %s: %s: cell key has %s", pd_sampler_name(k),
                 o->name, v, want);
    }
    fmt(v, sizeof v, bad_value(o));
    rc = sweep(k, o->name, v, 1, NULL, &err);
    snprintf(want, sizeof want, "samplers[0].options.%s: ", o->name);
    tu_check(rc != 0 && strstr(err.msg, want) != NULL, "YAML %s %s: %s refused: %s", pd_sampler_name(k),
             o->name, v, err.msg);
    free(rec);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/pd-test-sopts.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    pd_set_threads(1);
    int n;
    const pd_sampler_option *t = pd_sampler_options(&n);
    pd_sample_params def = pd_sample_default_params();
    for (int i = 0; i < n; i++) {
        const pd_sampler_option *o = &t[i];
        tu_check(pd_sampler_option_get(&def, o) == o->def || (isinf(o->def) && isinf(pd_sampler_option_get(&def, o))),
                 "default of %s (%s) is %g", o->name, o->field, o->def);
        tu_check((o->samplers != 0 && o->help != NULL) || (i > 0 && !strcmp(t[i - 1].name, o->name)),
                 "%s: read by some sampler, with help", o->name);
        for (int k = 0; k < PD_SAMPLER_COUNT; k++) {
            if (!(o->samplers & (1u << k))) continue;
            tu_check(pd_sampler_option_find((pd_sampler_kind)k, o->name, NULL) == o,
                     "%s: the row %s reads", pd_sampler_name((pd_sampler_kind)k), o->name);
            check_cli(o, (pd_sampler_kind)k);
            check_yaml(o, (pd_sampler_kind)k);
        }
    }
    pd_error err;
    int rc = sweep(PD_SAMPLER_HEUN, "no_such_option", "1", 1, NULL, &err);
    tu_check(rc != 0 && strstr(err.msg, "samplers[0].options.no_such_option: unknown key") != NULL,
             "unknown YAML option key refused: %s", err.msg);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    if (system(rm)) fprintf(stderr, "could not remove %s\n", dir);
    return tu_finish();
}
