/* png.c — PNG images with libpng (pixdiff.h pd_png_*).
 *
 * Writing tiles n images [n,C,H,W] (C = 1 gray or 3 RGB, floats in [-1,1]) into a grid of `cols`
 * columns with PNGIO_PAD black pixels between tiles (none around the border), quantised as
 * u8 = trunc(clip(x*127.5 + 128, 0, 255)) (DESIGN.md "File formats"; NaN maps to 0). Text pairs
 * go in uncompressed iTXt chunks (UTF-8) before the image data. The file is written atomically:
 * libpng errors longjmp back here, the temporary file is removed and a half-written PNG never
 * appears under the target name. Reading decodes any PNG to 8-bit gray or RGB (palette
 * expanded, 16-bit stripped, alpha and tRNS transparency dropped) and maps x = u8/127.5 - 1, so
 * writing what was read reproduces the same bytes. Corrupt or truncated files give an error,
 * never a crash; libpng's chunk limits are set and the image size is checked against the file
 * size before the rows are allocated. Text chunks are read by png_text.c without decoding.
 */
#include "core/util.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define PNGIO_PAD 2                     /* pixels between grid tiles */
#define PNGIO_MAX_SIDE 1000000          /* libpng's default read limit, so we can read our files */
#define PNGIO_MAX_PIXELS (1L << 28)
#define PNGIO_MAX_CHUNK ((png_alloc_size_t)8 << 20)   /* an ancillary chunk (ICC profile, ...) */
#define PNGIO_MAX_CACHE 64                              /* ancillary chunks kept */
#define PNGIO_MAX_DEFLATE 1032ULL                       /* zlib's largest expansion ratio */

typedef struct { char msg[256]; } png_errctx;

static void on_error(png_structp png, png_const_charp msg) {
    png_errctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

uint8_t pd_quantise_u8(float x) {
    float v = x * 127.5f + 128.0f;
    if (!(v > 0.0f)) return 0;           /* also NaN */
    if (v > 255.0f) return 255;
    return (unsigned char)v;             /* truncation, as EDM's .to(torch.uint8) */
}

/* PNG keywords: 1-79 printable Latin-1 characters, no leading, trailing or double spaces. */
static int bad_keyword(const char *k) {
    size_t n = strlen(k);
    if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ' || strstr(k, "  ")) return 1;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        if (*p < 32 || (*p > 126 && *p < 161)) return 1;
    return 0;
}

int pd_png_write_grid(const char *path, const float *x, int n, int C, int H, int W, int cols,
                      const char *const *text, pd_error *err) {
    if (n < 1 || (C != 1 && C != 3) || H < 1 || W < 1 || cols < 0)
        return pd_fail(err, "%s: cannot write %d images of %dx%dx%d (need C = 1 or 3)", path, n,
                       C, H, W);
    if (cols == 0) cols = (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    long long gw = (long long)cols * W + (long long)(cols - 1) * PNGIO_PAD;
    long long gh = (long long)rows * H + (long long)(rows - 1) * PNGIO_PAD;
    if (gw > PNGIO_MAX_SIDE || gh > PNGIO_MAX_SIDE || gw * gh > PNGIO_MAX_PIXELS)
        return pd_fail(err, "%s: grid of %lldx%lld pixels is too large", path, gw, gh);
    int nt = 0;
    while (text && text[2 * nt]) {
        if (!text[2 * nt + 1]) return pd_fail(err, "%s: text key '%s' has no value", path, text[2 * nt]);
        if (bad_keyword(text[2 * nt]))
            return pd_fail(err, "%s: invalid PNG text key '%s' (1-79 characters)", path, text[2 * nt]);
        nt++;
    }
    size_t stride = (size_t)gw * C;
    unsigned char *img = calloc((size_t)gh, stride);   /* zero = black padding */
    png_bytep *rowp = malloc((size_t)gh * sizeof *rowp);
    png_text *tx = calloc(nt + 1, sizeof *tx);
    if (!img || !rowp || !tx) {
        free(img), free(rowp), free(tx);
        return pd_fail(err, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) {
        size_t y0 = (size_t)(i / cols) * (H + PNGIO_PAD), x0 = (size_t)(i % cols) * (W + PNGIO_PAD);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++) {
                const float *src = x + (((size_t)i * C + c) * H + y) * W;
                unsigned char *dst = img + (y0 + y) * stride + x0 * C + c;
                for (int j = 0; j < W; j++) dst[(size_t)j * C] = pd_quantise_u8(src[j]);
            }
    }
    for (long long y = 0; y < gh; y++) rowp[y] = img + y * stride;
    for (int i = 0; i < nt; i++) {
        tx[i].compression = PNG_ITXT_COMPRESSION_NONE;
        tx[i].key = (png_charp)text[2 * i];
        tx[i].text = (png_charp)text[2 * i + 1];
        tx[i].itxt_length = strlen(text[2 * i + 1]);
        tx[i].lang = (png_charp)"";
        tx[i].lang_key = (png_charp)"";
    }

    core_atomic_file af;
    png_errctx ec = {""};
    int rc = -1;
    if (core_atomic_open(&af, path, err)) goto done;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ec, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        core_atomic_abort(&af);
        pd_fail(err, "%s: out of memory", path);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        core_atomic_abort(&af);
        pd_fail(err, "%s: PNG write failed: %s", path, ec.msg);
        goto done;
    }
    png_init_io(png, af.f);
    png_set_IHDR(png, info, (png_uint_32)gw, (png_uint_32)gh, 8,
                 C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (nt) png_set_text(png, info, tx, nt);
    png_write_info(png, info);
    png_write_image(png, rowp);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    rc = core_atomic_commit(&af, err);
done:
    free(img), free(rowp), free(tx);
    return rc;
}

void pd_png_text_free(char **keys, char **values, int count) {
    for (int i = 0; i < count; i++) {
        if (keys) free(keys[i]);
        if (values) free(values[i]);
    }
    free(keys);
    free(values);
}

/* Decodes the pixels; text chunks are skipped unread (png_text.c reads them). */
static int png_load(const char *path, float **pixels, int *C, int *H, int *W, pd_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return pd_fail(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return pd_fail(err, "%s: not a regular file", path);
    }
    png_errctx ec = {""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ec, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_infop end = info ? png_create_info_struct(png) : NULL;
    /* Set after setjmp, read after a longjmp: volatile so their values survive it. */
    unsigned char *volatile img = NULL;
    png_bytep *volatile rowp = NULL;
    float *volatile out = NULL;
    volatile int failed_oom = 0;
    if (!end) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return pd_fail(err, "%s: out of memory", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, &end);
        fclose(f);
        free(img), free(rowp), free(out);
        if (failed_oom) return pd_fail(err, "%s: out of memory", path);
        if (!strncmp(ec.msg, "Image too large", 15))
            return pd_fail(err, "%s: image too large%s", path, ec.msg + 15);
        return pd_fail(err, "%s: not a valid PNG (%s)", path, ec.msg);
    }
    png_init_io(png, f);
    /* Bounds before libpng reads a chunk (docs/testing.md "Resource rule"): no ancillary chunk
     * may be longer than the file or PNGIO_MAX_CHUNK, text and other ancillary chunks are
     * dropped unread, at most PNGIO_MAX_CACHE are kept. */
    png_set_user_limits(png, PNGIO_MAX_SIDE, PNGIO_MAX_SIDE);
    png_set_chunk_cache_max(png, PNGIO_MAX_CACHE);
    png_set_chunk_malloc_max(png, (png_alloc_size_t)st.st_size < PNGIO_MAX_CHUNK
                                      ? (png_alloc_size_t)st.st_size + 1 : PNGIO_MAX_CHUNK);
    /* Every ancillary chunk libpng would allocate a buffer of its declared length for: libpng
     * 1.6.39 checks the chunk limit above for the text chunks but not for sPLT (a 416-byte file
     * declaring a 1.9 GB sPLT made it ask for 1.9 GB; found by fuzz_png in a CI smoke run), so
     * none of them is read; the pixels need none of them. */
    static const png_byte skip[] = "tEXt\0zTXt\0iTXt\0sPLT\0iCCP\0pCAL\0sCAL\0eXIf\0";
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, skip, 8);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ct = png_get_color_type(png, info), bd = png_get_bit_depth(png, info);
    if ((unsigned long long)w * h > PNGIO_MAX_PIXELS) png_error(png, "Image too large");
    /* Deflate expands at most 1032:1, so the rows (one filter byte each) cannot be larger than
     * that times the file: checked before the row buffer is allocated. */
    unsigned long long raw = ((unsigned long long)w * png_get_channels(png, info) * bd + 7) / 8 + 1;
    if (raw * h > PNGIO_MAX_DEFLATE * (unsigned long long)st.st_size)
        png_error(png, "Image too large for the file (more than deflate's 1032:1)");
    if (bd == 16) png_set_strip_16(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
    /* Transparency is dropped like an alpha channel: palette_to_rgb also expands a tRNS chunk
     * into alpha (and a gray/RGB tRNS is ignored), so both sources of alpha are stripped. */
    if ((ct & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if ((ch != 1 && ch != 3) || stride != (size_t)w * ch) png_error(png, "unsupported pixel layout");
    img = malloc((size_t)h * stride);
    rowp = malloc((size_t)h * sizeof(png_bytep));
    if (!img || !rowp) { failed_oom = 1; png_error(png, "out of memory"); }
    for (png_uint_32 y = 0; y < h; y++) rowp[y] = img + y * stride;
    png_read_image(png, rowp);
    png_read_end(png, end);
    {
        /* Interleaved HWC bytes -> planar CHW floats, x = u8/127.5 - 1. */
        out = malloc((size_t)h * stride * sizeof(float));
        if (!out) { failed_oom = 1; png_error(png, "out of memory"); }
        for (int c = 0; c < ch; c++)
            for (size_t i = 0; i < (size_t)w * h; i++)
                out[(size_t)c * w * h + i] = img[i * ch + c] / 127.5f - 1.0f;
        *pixels = out;
        *C = ch, *H = (int)h, *W = (int)w;
    }
    png_destroy_read_struct(&png, &info, &end);
    fclose(f);
    free(img), free(rowp);
    return 0;
}

int pd_png_read(const char *path, float **data, int *C, int *H, int *W, pd_error *err) {
    *data = NULL;
    return png_load(path, data, C, H, W, err);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pd_png_list(const char *dir, char ***names_out, int *count, pd_error *err) {
    *names_out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return pd_fail(err, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcasecmp(e->d_name + len - 4, ".png")) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **grown = realloc(names, sizeof(char *) * (size_t)cap);
            if (!grown) break;
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    int oom = e != NULL;
    closedir(d);
    if (oom) {
        pd_png_list_free(names, n);
        return pd_fail(err, "%s: out of memory listing the directory", dir);
    }
    if (n == 0) {
        free(names);
        return pd_fail(err, "%s: no .png files", dir);
    }
    qsort(names, (size_t)n, sizeof(char *), cmp_name);
    *names_out = names;
    *count = n;
    return 0;
}

void pd_png_list_free(char **names, int count) {
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
}
