/* data_dir.c — where the library finds its shipped files (models/, configs/), so that an install
 * moved to another prefix still finds them (issue 19, "Relocatable").
 *
 * The data directory is $PIXDIFF_DATA when set (it must then be a directory), else the first of
 * <D>/../share/pixdiff and <D>/share/pixdiff that holds a models/ or configs/ folder, where D is
 * the directory of the file this code was loaded from: libpixdiff.so for a program linked against
 * the shared library, the executable itself when the library is linked in statically (found with
 * dladdr1's link map; the main program's entry has an empty name, so /proc/self/exe is read
 * instead). An install has <prefix>/lib/libpixdiff.so and <prefix>/bin/pixdiff next to
 * <prefix>/share/pixdiff; the build tree has build/share/pixdiff with links to the sources'
 * models/ and configs/ (CMakeLists.txt). Nothing depends on a path fixed at configure time.
 *
 * Relative paths inside a config file resolve against the config file's directory, then the
 * current directory, then the data directory (pd_resolve_input), so the shipped configs, which
 * name "models/fashion32.safetensors", work from any directory.
 */
#include "pixdiff.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p) {
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
    struct stat st;
    return p && *p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The canonical path of the object (shared library or executable) holding this code. */
static int own_file(char *out, size_t cap) {
    Dl_info info;
    struct link_map *lm = NULL;
    const char *file = NULL;
    if (dladdr1((void *)own_file, &info, (void **)&lm, RTLD_DL_LINKMAP) && lm && lm->l_name &&
        lm->l_name[0])
        file = lm->l_name;
    else
        file = "/proc/self/exe";
    char buf[PATH_MAX];
    if (!realpath(file, buf)) return -1;
    if (strlen(buf) + 1 > cap) return -1;
    memcpy(out, buf, strlen(buf) + 1);
    return 0;
}

int pd_data_dir(char *out, size_t cap, pd_error *err) {
    const char *env = getenv("PIXDIFF_DATA");
    if (env && *env) {
        if (!is_dir(env))
            return pd_fail(err, "$PIXDIFF_DATA=%s: not a directory", env);
        if ((size_t)snprintf(out, cap, "%s", env) >= cap)
            return pd_fail(err, "$PIXDIFF_DATA: path too long");
        return 0;
    }
    char self[PATH_MAX];
    if (own_file(self, sizeof self))
        return pd_fail(err, "cannot find the pixdiff data directory: the library's own path is "
                            "unknown; set $PIXDIFF_DATA");
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    static const char *const rel[] = {"/../share/pixdiff", "/share/pixdiff"};
    for (int i = 0; i < 2; i++) {
        char cand[PATH_MAX + 64], sub[PATH_MAX + 80], sub2[PATH_MAX + 80];
        snprintf(cand, sizeof cand, "%s%s", self, rel[i]);
        snprintf(sub, sizeof sub, "%s/models", cand);
        snprintf(sub2, sizeof sub2, "%s/configs", cand);
        if (is_dir(sub) || is_dir(sub2)) {
            char canon[PATH_MAX];
            const char *p = realpath(cand, canon) ? canon : cand;
            if ((size_t)snprintf(out, cap, "%s", p) >= cap)
                return pd_fail(err, "pixdiff data directory: path too long");
            return 0;
        }
    }
    return pd_fail(err, "no pixdiff data directory next to %s (looked for ../share/pixdiff and "
                        "share/pixdiff); set $PIXDIFF_DATA", self);
}

/* <data dir>/<rel>, which must be a regular file. */
static int data_file(char *out, size_t cap, const char *rel, pd_error *err) {
    char dir[PATH_MAX];
    if (pd_data_dir(dir, sizeof dir, err)) return -1;
    if ((size_t)snprintf(out, cap, "%s/%s", dir, rel) >= cap)
        return pd_fail(err, "%s/%s: path too long", dir, rel);
    if (!is_file(out)) return pd_fail(err, "%s: no such file", out);
    return 0;
}

/* $<env> (which must then name a file: a typo is an error, never a silent fall-back) or the
 * shipped file <data dir>/models/<file>. */
static int shipped_model(char *out, size_t cap, const char *env, const char *file, pd_error *err) {
    const char *v = getenv(env);
    if (v && *v) {
        if (!is_file(v)) return pd_fail(err, "$%s=%s: no such file", env, v);
        if ((size_t)snprintf(out, cap, "%s", v) >= cap) return pd_fail(err, "$%s: path too long", env);
        return 0;
    }
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", file);
    pd_error e2 = {{0}};
    if (data_file(out, cap, rel, &e2))
        return pd_fail(err, "no %s: %s (set $%s or pass the file)", file, e2.msg, env);
    return 0;
}

int pd_default_model_path(char *out, size_t cap, pd_error *err) {
    return shipped_model(out, cap, "PIXDIFF_MODEL", "fashion32.safetensors", err);
}

int pd_default_classifier_path(char *out, size_t cap, pd_error *err) {
    return shipped_model(out, cap, "PIXDIFF_CLASSIFIER", "fashion-classifier.safetensors", err);
}

int pd_resolve_input(char *out, size_t cap, const char *path, const char *config_file,
                     pd_error *err) {
    if (!path || !*path) return pd_fail(err, "empty path");
    if ((size_t)snprintf(out, cap, "%s", path) >= cap) return pd_fail(err, "%s: path too long", path);
    if (path[0] == '/') return 0;
    if (config_file) {
        const char *slash = strrchr(config_file, '/');
        char cand[PATH_MAX + 8];
        if (slash) snprintf(cand, sizeof cand, "%.*s/%s", (int)(slash - config_file), config_file, path);
        else snprintf(cand, sizeof cand, "%s", path);
        if (access(cand, F_OK) == 0) {
            if ((size_t)snprintf(out, cap, "%s", cand) >= cap)
                return pd_fail(err, "%s: path too long", cand);
            return 0;
        }
    }
    if (access(path, F_OK) == 0) return 0;
    char dir[PATH_MAX], cand[PATH_MAX + 1100];
    pd_error ignore = {{0}};
    if (pd_data_dir(dir, sizeof dir, &ignore) == 0) {
        snprintf(cand, sizeof cand, "%s/%s", dir, path);
        if (access(cand, F_OK) == 0) {
            if ((size_t)snprintf(out, cap, "%s", cand) >= cap)
                return pd_fail(err, "%s: path too long", cand);
            return 0;
        }
    }
    return 0; /* not found anywhere: left as given, so the reader's error names it */
}
