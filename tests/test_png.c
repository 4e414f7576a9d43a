/* test_png — PNG grids and reading: every tile pixel against a double-precision reference of
 * trunc(clip(x*127.5 + 128, 0, 255)) / 127.5 - 1, the 2-pixel black padding, all 256 gray levels
 * surviving read -> write -> read unchanged, iTXt text (A1111 "parameters", JSON "pixdiff", UTF-8)
 * read back exactly, other PNG kinds (16-bit RGBA, palette, 1-bit gray, gray+alpha) converted,
 * corrupt and truncated files giving clean errors, and atomic writes: a write that fails midway
 * (file-size limit) leaves the previous file intact and no temporary file behind. */
#include "pixdiff.h"
#include "testutil.h"
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT "test_png.tmp.png"

static double ref_pixel(float x) {
    double v = (double)x * 127.5 + 128;
    if (!(v > 0)) v = 0;
    if (v > 255) v = 255;
    return floor(v) / 127.5 - 1;
}

static int tmp_files(void) {
    DIR *d = opendir(".");
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) n += !strncmp(de->d_name, "test_png", 8) && strstr(de->d_name, ".tmp.") &&
                                 strcmp(de->d_name, OUT);
    closedir(d);
    return n;
}

/* Writes a PNG of any libpng color type / bit depth straight from raw rows (test input). */
static void write_raw_png(const char *path, int w, int h, int ct, int bd, unsigned char **rows,
                          const png_color *pal, int npal) {
    FILE *f = fopen(path, "wb");
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(p);
    png_init_io(p, f);
    png_set_IHDR(p, info, w, h, bd, ct, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(p, info, pal, npal);
    png_write_info(p, info);
    png_write_image(p, rows);
    png_write_end(p, info);
    png_destroy_write_struct(&p, &info);
    fclose(f);
}

static void expect_read_fail(const char *what, const char *path) {
    float *x = (float *)1;
    int C, H, W;
    pd_error e = {""};
    int rc = pd_png_read(path, &x, &C, &H, &W, &e);
    char **k, **v;
    int n;
    pd_error e2 = {""};
    int rc2 = pd_png_read_text(path, &k, &v, &n, &e2);
    tu_check(rc == -1 && rc2 == -1 && x == NULL && !strncmp(e.msg, path, strlen(path)),
             "%-24s -> %s", what, e.msg);
    if (!rc) free(x);
    if (!rc2) pd_png_text_free(k, v, n);
}

int main(void) {
    pd_error e = {""};
    /* ---- a 5-image RGB grid, cols = 0 -> 3 columns, 2 rows: 3*3 + 2*2 = 13 x 2*4 + 2 = 10 */
    enum { N = 5, C = 3, H = 4, W = 3 };
    float x[N * C * H * W];
    tu_fill(x, N * C * H * W, 11, 1.2f);
    x[0] = -1.0f, x[1] = 0.0f, x[2] = 1.0f, x[3] = NAN, x[4] = 7.0f, x[5] = -7.0f;
    const char *params = "a photo of a sneaker\nNegative prompt: blurry\nSteps: 18, Sampler: heun, "
                         "Schedule: karras, Seed: 42, Model hash: 0123abcd";
    const char *json = "{\"sampler\": \"heun\", \"nfe\": 35, \"seed\": 42, \"note\": \"caf\xc3\xa9\"}";
    const char *text[] = {"parameters", params, "pixdiff", json, NULL};
    int rc = pd_png_write_grid(OUT, x, N, C, H, W, 0, text, &e);
    tu_check(rc == 0, "write 5-image RGB grid (%s)", rc ? e.msg : "");
    float *img = NULL;
    int c, h, w;
    rc = pd_png_read(OUT, &img, &c, &h, &w, &e);
    tu_check(rc == 0 && c == 3 && h == 10 && w == 13, "grid size %dx%dx%d (3x10x13: 2-px padding)",
             c, h, w);
    if (!rc) {
        double *ref = malloc(sizeof(double) * c * h * w);
        for (int i = 0; i < c * h * w; i++) ref[i] = -1;            /* padding: black */
        for (int i = 0; i < N; i++)
            for (int ch = 0; ch < C; ch++)
                for (int y = 0; y < H; y++)
                    for (int j = 0; j < W; j++) {
                        int gy = (i / 3) * (H + 2) + y, gx = (i % 3) * (W + 2) + j;
                        ref[(ch * h + gy) * w + gx] = ref_pixel(x[((i * C + ch) * H + y) * W + j]);
                    }
        tu_compare("grid pixels vs trunc(clip(x*127.5+128))/127.5-1", img, ref, c * h * w, 1e-4);
        tu_check(img[0] == -1.0f && img[1] == 128 / 127.5f - 1 && img[2] == 1.0f &&
                 img[w] == -1.0f && img[w + 1] == 1.0f && img[w + 2] == -1.0f, "x = -1, 0, 1, NaN, 7, -7 -> u8 0, 128, 255, 0, 255, 0");
        free(ref);
        free(img);
    }
    char **keys = NULL, **vals = NULL;
    int nt = 0;
    rc = pd_png_read_text(OUT, &keys, &vals, &nt, &e);
    tu_check(rc == 0 && nt == 2 && !strcmp(keys[0], "parameters") && !strcmp(vals[0], params) &&
             !strcmp(keys[1], "pixdiff") && !strcmp(vals[1], json), "iTXt parameters + pixdiff JSON "
             "read back exactly (%d chunks)", nt);
    if (!rc) pd_png_text_free(keys, vals, nt);

    /* ---- all 256 gray levels: write -> read -> write -> read is stable */
    float g[256], *g1 = NULL, *g2 = NULL;
    double gref[256];
    for (int i = 0; i < 256; i++) g[i] = (i + 0.25f) / 127.5f - 1, gref[i] = i / 127.5 - 1;
    rc = pd_png_write_grid(OUT, g, 1, 1, 16, 16, 1, NULL, &e);
    rc |= pd_png_read(OUT, &g1, &c, &h, &w, &e);
    tu_check(rc == 0 && c == 1 && h == 16 && w == 16, "16x16 gray image, no text");
    if (!rc) {
        tu_compare("256 gray levels read as u8/127.5 - 1", g1, gref, 256, 1e-4);
        rc = pd_png_write_grid(OUT, g1, 1, 1, 16, 16, 1, NULL, &e);
        rc |= pd_png_read(OUT, &g2, &c, &h, &w, &e);
        tu_check(rc == 0 && !memcmp(g1, g2, sizeof g), "read -> write -> read reproduces every level");
        pd_png_read_text(OUT, &keys, &vals, &nt, &e);
        tu_check(nt == 0 && !keys, "no text chunks");
    }
    free(g1), free(g2);
    /* gray grid of 3 in 2 columns: 2*5 + 2 = 12 wide, 2*5 + 2 = 12 high */
    rc = pd_png_write_grid(OUT, x, 3, 1, 5, 5, 2, NULL, &e);
    rc |= pd_png_read(OUT, &img, &c, &h, &w, &e);
    tu_check(rc == 0 && c == 1 && h == 12 && w == 12 && img[11 * 12 + 11] == -1.0f,
             "gray grid, 3 images in 2 columns, empty cell black");
    if (!rc) free(img);

    /* ---- other PNG kinds are converted to 8-bit gray / RGB */
    unsigned char r16[2][16] = {{0x12, 0x34, 0xff, 0xff, 0x00, 0x00, 0x80, 0x00, 0xab, 0xcd, 0x00, 0x01,
                                 0x00, 0x00, 0x00, 0x00},
                                {0x00, 0x00, 0x7f, 0xff, 0x01, 0x00, 0xff, 0xff, 0xfe, 0x00, 0x55, 0x00,
                                 0x40, 0x00, 0x00, 0x00}};
    unsigned char *rows[2] = {r16[0], r16[1]};
    write_raw_png("test_png.in.png", 2, 2, PNG_COLOR_TYPE_RGBA, 16, rows, NULL, 0);
    rc = pd_png_read("test_png.in.png", &img, &c, &h, &w, &e);
    /* 16-bit samples keep their high byte; alpha is dropped. Planar order R(4) G(4) B(4). */
    unsigned char want16[12] = {0x12, 0xab, 0x00, 0xfe, 0xff, 0x00, 0x7f, 0x55, 0x00, 0x00, 0x01, 0x40};
    int ok = rc == 0 && c == 3 && h == 2 && w == 2;
    for (int i = 0; ok && i < 12; i++) ok = img[i] == want16[i] / 127.5f - 1;
    tu_check(ok, "16-bit RGBA -> 8-bit RGB (%s)", rc ? e.msg : "");
    if (!rc) free(img);
    png_color pal[3] = {{255, 0, 0}, {0, 10, 200}, {7, 8, 9}};
    unsigned char p0[3] = {0, 1, 2}, *prow[1] = {p0};
    write_raw_png("test_png.in.png", 3, 1, PNG_COLOR_TYPE_PALETTE, 8, prow, pal, 3);
    rc = pd_png_read("test_png.in.png", &img, &c, &h, &w, &e);
    unsigned char wantp[9] = {255, 0, 7, 0, 10, 8, 0, 200, 9};
    ok = rc == 0 && c == 3 && h == 1 && w == 3;
    for (int i = 0; ok && i < 9; i++) ok = img[i] == wantp[i] / 127.5f - 1;
    tu_check(ok, "palette -> RGB (%s)", rc ? e.msg : "");
    if (!rc) free(img);
    unsigned char b1[1] = {0xa0}, *brow[1] = {b1};                    /* bits 1 0 1 */
    write_raw_png("test_png.in.png", 3, 1, PNG_COLOR_TYPE_GRAY, 1, brow, NULL, 0);
    rc = pd_png_read("test_png.in.png", &img, &c, &h, &w, &e);
    tu_check(rc == 0 && c == 1 && w == 3 && img[0] == 1.0f && img[1] == -1.0f && img[2] == 1.0f,
             "1-bit gray -> 8-bit gray (1, -1, 1)");
    if (!rc) free(img);
    unsigned char ga[4] = {100, 0, 200, 255}, *garow[1] = {ga};
    write_raw_png("test_png.in.png", 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, garow, NULL, 0);
    rc = pd_png_read("test_png.in.png", &img, &c, &h, &w, &e);
    tu_check(rc == 0 && c == 1 && w == 2 && img[0] == 100 / 127.5f - 1 && img[1] == 200 / 127.5f - 1,
             "gray+alpha -> gray");
    if (!rc) free(img);

    /* ---- corrupt and truncated files */
    float big[3 * 64 * 64];
    tu_fill(big, 3 * 64 * 64, 5, 1.0f);
    pd_png_write_grid(OUT, big, 1, 3, 64, 64, 1, text, &e);
    FILE *f = fopen(OUT, "rb");
    static unsigned char bytes[1 << 16];
    size_t len = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    f = fopen("test_png.in.png", "wb");
    fwrite(bytes, 1, len / 2, f);
    fclose(f);
    expect_read_fail("truncated at half", "test_png.in.png");
    bytes[len / 2] ^= 0x55;                                          /* inside IDAT: CRC error */
    f = fopen("test_png.in.png", "wb");
    fwrite(bytes, 1, len, f);
    fclose(f);
    expect_read_fail("flipped byte in IDAT", "test_png.in.png");
    f = fopen("test_png.in.png", "wb");
    fwrite(bytes, 1, 40, f);
    fclose(f);
    expect_read_fail("only the IHDR", "test_png.in.png");
    f = fopen("test_png.in.png", "wb");
    fputs("GIF89a not a png at all", f);
    fclose(f);
    expect_read_fail("not a PNG", "test_png.in.png");
    fclose(fopen("test_png.in.png", "wb"));
    expect_read_fail("empty file", "test_png.in.png");
    remove("test_png.in.png");
    expect_read_fail("missing file", "test_png.in.png");

    /* ---- argument errors */
    tu_check(pd_png_write_grid(OUT, x, 1, 2, 4, 4, 1, NULL, &e) == -1, "C = 2 rejected (%s)", e.msg);
    const char *badkey[] = {"", "v", NULL};
    tu_check(pd_png_write_grid(OUT, x, 1, 1, 4, 4, 1, badkey, &e) == -1, "empty text key rejected");

    /* ---- atomic writes */
    tu_check(pd_png_write_grid("no/such/dir/a.png", x, 1, 3, 4, 3, 1, NULL, &e) == -1 &&
             access("no/such/dir/a.png", F_OK) != 0 && tmp_files() == 0,
             "write into a missing directory fails (%s)", e.msg);
    mkdir("test_png.dir", 0755);
    tu_check(pd_png_write_grid("test_png.dir", x, 1, 3, 4, 3, 1, NULL, &e) == -1 && tmp_files() == 0,
             "write over a directory fails, no temporary file (%s)", e.msg);
    rmdir("test_png.dir");
    /* A write cut off midway (file-size limit, as a full disk would) keeps the old file. */
    rc = pd_png_write_grid(OUT, x, 1, 3, 4, 3, 1, text, &e);
    float *before = NULL, *after = NULL;
    pd_png_read(OUT, &before, &c, &h, &w, &e);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    setrlimit(RLIMIT_FSIZE, &lim);
    float *noise = malloc(sizeof(float) * 16 * 3 * 64 * 64);
    tu_fill(noise, 16 * 3 * 64 * 64, 9, 1.0f);
    int wrc = pd_png_write_grid(OUT, noise, 16, 3, 64, 64, 4, text, &e);
    printf("  (cut-off write: %s)\n", e.msg);
    setrlimit(RLIMIT_FSIZE, &old);
    free(noise);
    rc = pd_png_read(OUT, &after, &c, &h, &w, &e);
    tu_check(wrc == -1 && rc == 0 && c == 3 && h == 4 && w == 3 && !memcmp(before, after, 36 * 4) &&
             tmp_files() == 0, "write failing midway keeps the old file, no temporary file");
    free(before), free(after);
    remove(OUT);
    return tu_finish();
}
