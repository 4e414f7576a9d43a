/* image_folder.c — PNG folders for the CLI (image_folder.h), through the public pd_png_read. */
#include "cli/image_folder.h"
#include "cli/args.h"
#include "pixdiff.h"

#include <stdlib.h>
#include <string.h>

char **cli_list_pngs(const char *cmd, const char *flag, const char *dir, int *count) {
    char **names = NULL;
    pd_error err = {{0}};
    if (pd_png_list(dir, &names, count, &err)) cli_bad_flag(cmd, flag, "%s", err.msg);
    return names;
}

void cli_free_names(char **names, int count) { pd_png_list_free(names, count); }

float *cli_read_png_folder(const char *cmd, const char *flag, const char *dir, int max_n, int *n,
                           int *C, int *H, int *W) {
    int count = 0;
    char **names = cli_list_pngs(cmd, flag, dir, &count);
    if (max_n > 0 && max_n < count) count = max_n;
    float *all = NULL;
    size_t img = 0;
    for (int i = 0; i < count; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        float *x = NULL;
        int c, h, w;
        pd_error err = {{0}};
        if (pd_png_read(path, &x, &c, &h, &w, &err)) cli_die(1, cmd, "%s", err.msg);
        if (i == 0) {
            *C = c, *H = h, *W = w;
            img = (size_t)c * h * w;
            all = malloc(sizeof(float) * img * (size_t)count);
            if (!all) cli_die(1, cmd, "out of memory for %d images of %dx%dx%d", count, c, h, w);
        } else if (c != *C || h != *H || w != *W) {
            cli_die(1, cmd, "%s: %dx%dx%d differs from the first image's %dx%dx%d", path, c, h, w, *C,
                    *H, *W);
        }
        memcpy(all + img * (size_t)i, x, sizeof(float) * img);
        free(x);
    }
    cli_free_names(names, count > 0 ? count : 0);
    *n = count;
    return all;
}
