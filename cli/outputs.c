/* outputs.c — nothing written on error (issue 19): a command registers its outputs, writes each
 * under a temporary name in the same directory (a file) or into a staging directory (a folder of
 * images), and commits them with renames once all the work succeeded. An atexit handler removes
 * whatever was not committed, so every error path (cli_die, an interrupt turned into exit 130)
 * leaves the file system as it found it, including directories that --outdir created.
 */
#include "cli/outputs.h"
#include "cli/args.h"
#include "pixdiff.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_MAX 8
#define PATH_CAP 4200

static struct {
    char final[OUT_MAX][PATH_CAP], tmp[OUT_MAX][PATH_CAP];
    int is_dir[OUT_MAX], n;
    char made[32][PATH_CAP]; /* directories created, deepest first */
    int n_made, committed, hooked;
} g;

static void empty_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[PATH_CAP + 260];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static void cleanup(void) {
    if (g.committed) return;
    for (int i = 0; i < g.n; i++) {
        if (g.is_dir[i]) {
            empty_dir(g.tmp[i]);
            rmdir(g.tmp[i]);
        } else {
            unlink(g.tmp[i]);
        }
    }
    for (int i = 0; i < g.n_made; i++) rmdir(g.made[i]);
}

static int add(const char *cmd, const char *final, int is_dir) {
    if (g.n == OUT_MAX) cli_die(1, cmd, "too many outputs");
    if (!g.hooked) atexit(cleanup), g.hooked = 1;
    int i = g.n++;
    snprintf(g.final[i], PATH_CAP, "%s", final);
    g.is_dir[i] = is_dir;
    return i;
}

const char *cli_outputs_file(const char *cmd, const char *final) {
    int i = add(cmd, final, 0);
    const char *slash = strrchr(final, '/');
    int dlen = slash ? (int)(slash - final + 1) : 0;
    if (snprintf(g.tmp[i], PATH_CAP, "%.*s.%s.pixdiff-%d.tmp", dlen, final, final + dlen,
                 (int)getpid()) >= PATH_CAP)
        cli_die(2, cmd, "%s: path too long", final);
    return g.tmp[i];
}

const char *cli_outputs_dir(const char *cmd, const char *flag, const char *dir) {
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) cli_bad_flag(cmd, flag, "path too long");
    /* What pd_make_dirs is about to create: dir and its missing ancestors, deepest first. */
    struct stat st;
    while (g.n_made < 32 && stat(buf, &st) != 0) {
        snprintf(g.made[g.n_made++], PATH_CAP, "%s", buf);
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf) break;
        *slash = 0;
    }
    pd_error err = {0};
    if (pd_make_dirs(dir, &err)) cli_die(1, cmd, "%s %s: %s", flag, dir, err.msg);
    int i = add(cmd, dir, 1);
    snprintf(g.tmp[i], PATH_CAP, "%s/.pixdiff-%d.tmp", dir, (int)getpid());
    if (mkdir(g.tmp[i], 0777) != 0)
        cli_die(1, cmd, "%s %s: cannot write there: %s", flag, dir, strerror(errno));
    return g.tmp[i];
}

void cli_outputs_commit(const char *cmd) {
    for (int i = 0; i < g.n; i++) {
        if (!g.is_dir[i]) {
            if (rename(g.tmp[i], g.final[i]) != 0)
                cli_die(1, cmd, "%s: %s", g.final[i], strerror(errno));
            continue;
        }
        DIR *d = opendir(g.tmp[i]);
        if (!d) cli_die(1, cmd, "%s: %s", g.tmp[i], strerror(errno));
        struct dirent *e;
        char from[PATH_CAP + 260], to[PATH_CAP + 260];
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(from, sizeof from, "%s/%s", g.tmp[i], e->d_name);
            snprintf(to, sizeof to, "%s/%s", g.final[i], e->d_name);
            if (rename(from, to) != 0) {
                closedir(d);
                cli_die(1, cmd, "%s: %s", to, strerror(errno));
            }
        }
        closedir(d);
        rmdir(g.tmp[i]);
    }
    g.committed = 1;
}
