/* image_folder.h — folders of PNG images for the commands that read them (eval, snr): the
 * sorted *.png listing, and all (or the first N) images read into one array. Exits naming the
 * flag on errors (it is CLI). */
#ifndef PD_CLI_IMAGE_FOLDER_H
#define PD_CLI_IMAGE_FOLDER_H

/* The *.png (any case) names in dir, sorted by strcmp; exits 2 naming flag when the directory
 * cannot be opened or has none. Free with cli_free_names. */
char **cli_list_pngs(const char *cmd, const char *flag, const char *dir, int *count);
void cli_free_names(char **names, int count);
/* Reads the first max_n (0: all) PNGs of dir into [n, C, H, W] floats in [-1, 1]; every image must
 * have the first one's shape (exit 1 naming the file otherwise). */
float *cli_read_png_folder(const char *cmd, const char *flag, const char *dir, int max_n, int *n,
                           int *C, int *H, int *W);

#endif
