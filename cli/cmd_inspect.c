/* cmd_inspect.c — `pixdiff inspect IMAGE.png`: print the text chunks of a PNG (the "parameters"
 * line and the "pixdiff" JSON that `pixdiff sample` writes), one "key: value" per chunk, or only
 * the value of one chunk with --key (for scripts). */
#include "cli/args.h"
#include "cli/commands.h"
#include "pixdiff.h"

#include <stdio.h>
#include <string.h>

int cmd_inspect(int argc, char **argv) {
    const char *cmd = "inspect";
    const char *key = NULL;
    arg_opt opts[] = {
        OPT_DEF("--key", ARG_STR, &key, "KEY", "print only the value of this chunk (e.g. pixdiff)",
                "all chunks"),
    };
    arg_spec spec = {cmd,
                     "[--key KEY] IMAGE.png...",
                     "Print the metadata text chunks of PNG files written by pixdiff (or any PNG).",
                     opts,
                     1,
                     "IMAGE.png",
                     1,
                     64,
                     NULL};
    const char *pos[64];
    int npos = 0;
    args_parse(&spec, argc, argv, pos, &npos);
    for (int f = 0; f < npos; f++) {
        pd_error err = {{0}};
        char **keys = NULL, **values = NULL;
        int count = 0;
        if (pd_png_read_text(pos[f], &keys, &values, &count, &err)) cli_die(2, cmd, "%s", err.msg);
        if (npos > 1 && !key) printf("%s%s:\n", f ? "\n" : "", pos[f]);
        int found = 0;
        for (int i = 0; i < count; i++) {
            if (key) {
                if (strcmp(keys[i], key) == 0) {
                    printf("%s\n", values[i]);
                    found = 1;
                }
            } else {
                printf("%s: %s\n", keys[i], values[i]);
            }
        }
        pd_png_text_free(keys, values, count);
        if (key && !found) cli_die(2, cmd, "%s: no text chunk '%s'", pos[f], key);
        if (!key && count == 0) printf("(no text chunks)\n");
    }
    return 0;
}
