/* common.c — shared CLI helpers (common.h): model resolution and loading, --class, the clock, a
 * growable string with JSON escaping, output-path checks, interrupts and durations. Errors print one line and exit through cli_die /
 * cli_bad_flag (args.h); the library itself never prints. */
#include "cli/common.h"
#include "cli/args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ models */

void cli_default_model(const char *cmd, char *path, size_t cap) {
    pd_error err = {{0}};
    if (pd_default_model_path(path, cap, &err) == 0) return;
    const char *env = getenv("PIXDIFF_MODEL");
    if (env && *env) cli_die(2, cmd, "%s", err.msg); /* a typo in the variable is bad input */
    cli_die(1, cmd, "no --model given and no default model: %s; pass --model FILE or --model "
                    "analytic:gaussian, or write a random-weight model with `pixdiff init --preset "
                    "fashion32 --out FILE`", err.msg);
}

pd_model *cli_model_load(const char *cmd, const char *path) {
    pd_error err = {{0}};
    pd_model *m = NULL;
    struct stat st;
    /* A model that cannot be read is bad input (exit 2), like a bad flag value. */
    if (stat(path, &st) != 0) cli_die(2, cmd, "%s: cannot open model: %s", path, strerror(errno));
    if (pd_model_load(&m, path, &err)) {
        /* Library messages name the file; add it when one does not, so the line stands alone. */
        if (strstr(err.msg, path)) cli_die(2, cmd, "%s", err.msg);
        cli_die(2, cmd, "%s: %s", path, err.msg);
    }
    return m;
}

/* cm's image shape and sigma range, from its denoiser or its generator (and the model's config). */
static void model_shape(cli_model *cm) {
    if (cm->den) {
        cm->C = cm->den->C, cm->H = cm->den->H, cm->W = cm->den->W;
        cm->label_dim = cm->den->label_dim;
        cm->sigma_min = cm->den->sigma_min, cm->sigma_max = cm->den->sigma_max;
    } else {
        const pd_unet_config *c = pd_model_config(cm->model);
        cm->C = cm->gen->C, cm->H = cm->gen->H, cm->W = cm->gen->W;
        cm->label_dim = cm->gen->label_dim;
        cm->sigma_min = c->sigma_min, cm->sigma_max = c->sigma_max;
    }
}

void cli_model_open(cli_model *cm, const char *cmd, const char *spec, int res) {
    pd_error err = {{0}};
    memset(cm, 0, sizeof *cm);
    if (!spec) {
        cli_default_model(cmd, cm->spec, sizeof cm->spec);
        cm->is_default = 1;
    } else {
        snprintf(cm->spec, sizeof cm->spec, "%s", spec);
    }
    if (strncmp(cm->spec, "analytic:", 9) == 0) {
        if (res > 0)
            cli_bad_flag(cmd, "--size", "an analytic model takes its size from the spec (:res=R)");
        if (pd_denoiser_analytic(&cm->den, cm->spec, &err)) cli_die(2, cmd, "--model: %s", err.msg);
        snprintf(cm->name, sizeof cm->name, "%s", cm->spec);
        model_shape(cm);
        return;
    }
    cm->model = cli_model_load(cmd, cm->spec);
    snprintf(cm->sha256, sizeof cm->sha256, "%s", pd_model_sha256(cm->model));
    const char *base = strrchr(cm->spec, '/');
    snprintf(cm->name, sizeof cm->name, "%s", base ? base + 1 : cm->spec);
    char *dot = strrchr(cm->name, '.');
    if (dot && dot != cm->name) *dot = 0;
    /* One rule for every command with --size (sample, eval, sweeps' variants): the network is
     * fully convolutional, but below its trained size or at a fraction of it the receptive field
     * and the attention resolutions no longer match what it learned. */
    const int trained = pd_model_config(cm->model)->img_resolution;
    if (res > 0 && (res < trained || res % trained))
        cli_bad_flag(cmd, "--size", "%d is not a whole multiple of %s's trained size %d (use %d, "
                     "%d, %d, ...)", res, cm->name, trained, trained, 2 * trained, 4 * trained);
    const int gen = !strcmp(pd_model_config(cm->model)->kind, "generator");
    if (gen ? pd_generator_from_model(&cm->gen, cm->model, res, &err)
            : pd_denoiser_from_model(&cm->den, cm->model, res, &err)) {
        if (res > 0) cli_bad_flag(cmd, "--size", "%s", err.msg);
        cli_die(1, cmd, "%s", err.msg);
    }
    model_shape(cm);
}

void cli_model_close(cli_model *cm) {
    if (cm->den) pd_denoiser_free(cm->den);
    pd_generator_free(cm->gen);
    if (cm->model) pd_model_free(cm->model);
    cm->den = NULL;
    cm->gen = NULL;
    cm->model = NULL;
}

int cli_parse_class(const char *cmd, const char *flag, const char *val, const cli_model *cm,
                    char *name, size_t cap) {
    if (name && cap) name[0] = 0;
    if (!val) return -1;
    int label_dim = cm->label_dim;
    if (label_dim <= 0)
        cli_bad_flag(cmd, flag, "model '%s' is unconditional (label_dim 0), got '%s'", cm->name,
                     val);
    const pd_unet_config *cfg = cm->model ? pd_model_config(cm->model) : NULL;
    int n_names = 0;
    if (cfg)
        while (n_names < 16 && n_names < label_dim && cfg->class_names[n_names][0]) n_names++;
    long long k = -1;
    if (args_parse_long(val, &k) == 0) {
        if (k < 0 || k >= label_dim) k = -1;
    } else {
        k = -1;
        for (int i = 0; i < n_names; i++)
            if (strcasecmp(cfg->class_names[i], val) == 0) k = i;
    }
    if (k < 0) {
        char list[600];
        size_t len = (size_t)snprintf(list, sizeof list, "0..%d", label_dim - 1);
        for (int i = 0; i < n_names && len < sizeof list; i++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : ": ",
                                    cfg->class_names[i]);
        cli_bad_flag(cmd, flag, "'%s' is not a class of this model (%s)", val, list);
    }
    if (name && cap && k < n_names) snprintf(name, cap, "%s", cfg->class_names[k]);
    return (int)k;
}

void cli_fill_labels(float *labels, int n, int label_dim, int cls) {
    if (!labels || label_dim <= 0) return;
    memset(labels, 0, sizeof(float) * (size_t)n * (size_t)label_dim);
    if (cls >= 0 && cls < label_dim)
        for (int i = 0; i < n; i++) labels[(size_t)i * (size_t)label_dim + (size_t)cls] = 1.0f;
}

void cli_apply_threads(int given, int threads) {
    if (!given) {
        const char *env = getenv("OMP_NUM_THREADS");
        long long v;
        threads = env && args_parse_long(env, &v) == 0 && v > 0 && v < 4096 ? (int)v : 0;
    }
    pd_set_threads(threads);
}

/* ------------------------------------------------------------------ clock */

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ strings */

void cli_buf_printf(cli_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) return;
    if (b->len + (size_t)need + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + (size_t)need + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            fprintf(stderr, "pixdiff: out of memory\n");
            exit(1);
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

void cli_buf_json_str(cli_buf *b, const char *s) {
    cli_buf_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') cli_buf_printf(b, "\\%c", *p);
        else if (*p == '\n') cli_buf_printf(b, "\\n");
        else if (*p == '\t') cli_buf_printf(b, "\\t");
        else if (*p < 0x20) cli_buf_printf(b, "\\u%04x", *p);
        else cli_buf_printf(b, "%c", *p);
    }
    cli_buf_printf(b, "\"");
}

void cli_buf_json_num(cli_buf *b, double v) {
    if (!isfinite(v)) {
        cli_buf_printf(b, "null");
        return;
    }
    /* Shortest %g that reads back to the same double, so metadata is exact and readable. */
    char tmp[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    cli_buf_printf(b, "%s", tmp);
}

void cli_buf_free(cli_buf *b) {
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ files */

void cli_check_out_path(const char *cmd, const char *flag, const char *path) {
    size_t n = strlen(path);
    if (n == 0 || path[n - 1] == '/') cli_bad_flag(cmd, flag, "'%s' is not a file name", path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    if (slash == dir) slash[1] = 0;
    else *slash = 0;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        cli_bad_flag(cmd, flag, "%s: directory '%s' does not exist", path, dir);
}

void cli_mkdir_p(const char *cmd, const char *flag, const char *dir) {
    pd_error err = {0};
    if (pd_make_dirs(dir, &err)) cli_die(1, cmd, "%s %s: %s", flag, dir, err.msg);
}

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int sig) {
    interrupted = 1;
    signal(sig, SIG_DFL);
}

void cli_catch_interrupts(void) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}

int cli_interrupted(void *user) {
    (void)user;
    return interrupted;
}

void cli_fmt_eta(char *b, size_t cap, double s) {
    if (!(s >= 0) || s > 1e9) {
        snprintf(b, cap, "--");
        return;
    }
    long t = (long)(s + 0.5), d = t / 86400;
    if (d) snprintf(b, cap, "%ldd %02ld:%02ld:%02ld", d, t / 3600 % 24, t / 60 % 60, t % 60);
    else snprintf(b, cap, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* ------------------------------------------------------------------ long runs */

long long cli_duration_images(const char *cmd, const char *flag, int at_least_one, double images) {
    if ((at_least_one || images != 0) && (images < 1 || images > 9e18 || images != (long long)images))
        cli_bad_flag(cmd, flag, "expected a whole number of images, got %g", images);
    return (long long)images;
}

/* ------------------------------------------------------------------ shipped files */

const char *cli_shipped_config(const char *rel) {
    static char buf[4200];
    char dir[4096];
    pd_error err = {{0}};
    struct stat st;
    if (pd_data_dir(dir, sizeof dir, &err) == 0) {
        snprintf(buf, sizeof buf, "%s/configs/%s", dir, rel);
        if (stat(buf, &st) == 0) return buf;
    }
    snprintf(buf, sizeof buf, "configs/%s", rel);
    return buf;
}

const char *cli_input_path(const char *path) {
    static char buf[4][4200];
    static int next;
    char *out = buf[next++ % 4];
    pd_error err = {{0}};
    if (pd_resolve_input(out, sizeof buf[0], path, NULL, &err)) return path;
    return out;
}
