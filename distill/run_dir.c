/* run_dir.c — output-directory plumbing of the long runs (see run_dir.h). POSIX calls only;
 * nothing here touches a run's numbers.
 */
#include "distill/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rd_check_checkpoint(const char *ckpt, int resume, const char *dir_name, pd_error *err) {
    int exists = access(ckpt, F_OK) == 0;
    if (exists && !resume)
        return pd_fail(err, "%s already exists: pass --resume to continue that run, or choose "
                       "another %s", ckpt, dir_name);
    if (!exists && resume) return pd_fail(err, "--resume: no checkpoint at %s", ckpt);
    return 0;
}

/* Removes "<name>.tmp.<pid>" files of the directory of `path` whose writer is gone: those of
 * the file `path` itself when only_path, else those of any name. */
static void remove_stale(const char *path, int only_path) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    char prefix[1300];
    snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    size_t pl = strlen(prefix);
    while ((e = readdir(d))) {
        const char *t = NULL, *next = e->d_name;
        if (only_path) t = strncmp(e->d_name, prefix, pl) ? NULL : e->d_name + pl - 5;
        else
            while ((next = strstr(next, ".tmp."))) t = next++;   /* the last ".tmp." */
        if (!t || t == e->d_name) continue;
        char *end;
        long pid = strtol(t + 5, &end, 10);
        /* kill(pid, 0) fails with ESRCH only when no such process exists: the writer is gone. */
        if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[2600];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        unlink(full);
    }
    closedir(d);
}

/* A run directory is the run's own: a run killed inside an atomic write of its checkpoint, a
 * snapshot, a log or its final export leaves a temporary of that name. */
void rd_remove_stale_tmp(const char *ckpt) { remove_stale(ckpt, 0); }

void rd_remove_stale_tmp_of(const char *path) { remove_stale(path, 1); }

void rd_append_csv(const char *dir, const char *name, const char *header, const char *line) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fresh = access(path, F_OK) != 0;
    FILE *f = fopen(path, "a");
    if (!f) return;
    if (fresh) fprintf(f, "%s\n", header);
    fprintf(f, "%s\n", line);
    fclose(f);
}
