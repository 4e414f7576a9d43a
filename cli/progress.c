/* progress.c — the CLI's one progress printer (progress.h): formatting a pd_progress into one
 * line that fits 80 columns, and when to draw or print it. */
#include "cli/progress.h"
#include "cli/args.h"
#include "cli/common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cli_progress_init(cli_progress *ui, const char *prefix, int quiet) {
    memset(ui, 0, sizeof *ui);
    ui->prefix = prefix;
    ui->quiet = quiet;
    ui->tty = isatty(2);
    ui->last_draw = cli_now(); /* a log's first timed line comes a minute in */
}

/* What a unit's rate is written as: per second ("img/s") and, below one a second, seconds per
 * one ("s/img"). Units the table lacks are written as they are. */
static void unit_names(const char *unit, const char **per, const char **one) {
    static const char *const t[][3] = {{"images", "img", "img"},   {"steps", "steps", "step"},
                                       {"evals", "evals", "eval"}, {"values", "values", "value"},
                                       {"files", "files", "file"}};
    *per = *one = unit && *unit ? unit : "units";
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (unit && !strcmp(unit, t[i][0])) *per = t[i][1], *one = t[i][2];
}

/* A rate or count in at most about 6 characters: 3.14, 31.4, 314, 31416, 3.1M, 3.1G. */
static void fmt_num(char *b, size_t cap, double v) {
    if (v < 10) snprintf(b, cap, "%.2f", v);
    else if (v < 100) snprintf(b, cap, "%.1f", v);
    else if (v < 1e6) snprintf(b, cap, "%.0f", v);
    else if (v < 1e9) snprintf(b, cap, "%.1fM", v / 1e6);
    else snprintf(b, cap, "%.1fG", v / 1e9);
}

static void fmt_count(char *b, size_t cap, long long v) {
    if (v < 10000000) snprintf(b, cap, "%lld", v);
    else fmt_num(b, cap, (double)v);
}

/* At most room characters of s into out (a cut string ends in '~'); "" when room < 2. */
static void fit(char *out, size_t cap, const char *s, int room) {
    int n = (int)strlen(s);
    if (n <= room) snprintf(out, cap, "%s", s);
    else if (room < 2) snprintf(out, cap, "%s", "");
    else snprintf(out, cap, "%.*s~", room - 1, s);
}

int cli_progress_format(char *line, size_t cap, const char *prefix, const pd_progress *p) {
    const char *per, *one;
    unit_names(p->unit, &per, &one);
    char head[96], pos[96], pct[24] = "", rate[48], det[256] = "", eta[48], a[32], b[32];
    /* a sweep's cell, and its place among the cells to run when some were done before */
    if (p->cells > 0 && (p->todo != p->cells || p->todo_index != p->cell))
        snprintf(head, sizeof head, "%s cell %d/%d (%d/%d)", prefix, p->cell, p->cells, p->todo_index,
                 p->todo);
    else if (p->cells > 0) snprintf(head, sizeof head, "%s cell %d/%d", prefix, p->cell, p->cells);
    else snprintf(head, sizeof head, "%s", prefix);
    /* where the call stands */
    if (p->cells > 0 && p->images > 0 && p->steps > 0)
        snprintf(pos, sizeof pos, "img %lld/%lld step %d/%d", p->images_done, p->images, p->step, p->steps);
    else if (p->cells > 0 && p->images > 0)
        snprintf(pos, sizeof pos, "img %lld/%lld", p->images_done, p->images);
    else if (p->batches > 0)
        snprintf(pos, sizeof pos, "batch %d/%d step %d/%d", p->batch, p->batches, p->step, p->steps);
    else {
        fmt_count(a, sizeof a, p->done);
        fmt_count(b, sizeof b, p->total);
        snprintf(pos, sizeof pos, "%s/%s %s", a, p->total > 0 ? b : "?", p->unit ? p->unit : "");
    }
    if (p->total > 0 && p->cells == 0) snprintf(pct, sizeof pct, " (%.1f%%)", 100.0 * (double)p->done / (double)p->total);
    /* what the rate counts (nothing while it is unknown) */
    if (!(p->rate > 0)) rate[0] = 0;
    else if (p->rate >= 1) fmt_num(a, sizeof a, p->rate), snprintf(rate, sizeof rate, "%s %s/s", a, per);
    else fmt_num(a, sizeof a, 1 / p->rate), snprintf(rate, sizeof rate, "%s s/%s", a, one);
    /* the call's own values */
    size_t dl = 0;
    if (isfinite(p->loss)) dl += (size_t)snprintf(det + dl, sizeof det - dl, "loss %.4f", p->loss);
    if (isfinite(p->loss_psi))
        dl += (size_t)snprintf(det + dl, sizeof det - dl, "%spsi %.4f", dl ? "  " : "", p->loss_psi);
    if (isfinite(p->loss_theta))
        dl += (size_t)snprintf(det + dl, sizeof det - dl, "%stheta %.4f", dl ? " " : "", p->loss_theta);
    if (isfinite(p->fd)) dl += (size_t)snprintf(det + dl, sizeof det - dl, "%sFD %.3g", dl ? "  " : "", p->fd);
    for (int n = 0; p->losses && n < p->n_losses && dl < sizeof det - 16; n++)
        dl += (size_t)snprintf(det + dl, sizeof det - dl, "%s%.3g", n ? " " : dl ? "  loss " : "loss ",
                               p->losses[n]);
    cli_fmt_eta(a, sizeof a, p->eta_seconds);
    snprintf(eta, sizeof eta, "ETA %s", a);

    /* Fit 79 columns: the stage and the values share what the fixed parts leave; each is cut
     * ('~') when both do not fit, the values keeping at least half. */
    const char *stage = p->stage ? p->stage : "";
    int fixed = (int)(strlen(head) + 2 + strlen(pos) + strlen(pct) + (*rate ? 2 + strlen(rate) : 0) + 2 +
                      strlen(eta));
    int room = CLI_PROGRESS_COLUMNS - fixed;
    char *step = p->cells > 0 ? strstr(pos, " step ") : NULL;
    if (step && (int)strlen(stage) + 1 > room) { /* a sweep's cell matters more than its step */
        room += (int)strlen(step);
        *step = 0;
    }
    int sl = *stage ? (int)strlen(stage) + 1 : 0, vl = *det ? (int)strlen(det) + 2 : 0;
    if (sl + vl > room) {
        int vroom = vl < room / 2 ? vl : (room - sl > room / 2 ? room - sl : room / 2);
        if (vroom > vl) vroom = vl;
        sl = room - vroom;
        vl = vroom;
    }
    char st[160], dv[256];
    fit(st, sizeof st, stage, sl - 1);
    fit(dv, sizeof dv, det, vl - 2);
    int n = snprintf(line, cap, "%s%s%s: %s%s%s%s%s%s  %s", head, *st ? " " : "", st, pos, pct,
                     *rate ? "  " : "", rate, *dv ? "  " : "", dv, eta);
    if (n > CLI_PROGRESS_COLUMNS && cap > CLI_PROGRESS_COLUMNS) line[n = CLI_PROGRESS_COLUMNS] = 0;
    return n < (int)cap ? n : (int)cap - 1;
}

void cli_progress_show(void *user, const pd_progress *p) {
    cli_progress *ui = user;
    if (!ui || ui->quiet) return;
    double now = cli_now();
    char key[sizeof ui->key];
    if (p->cells > 0) snprintf(key, sizeof key, "cell %d", p->cell);
    else snprintf(key, sizeof key, "%s", p->stage ? p->stage : "");
    const int new_stage = strcmp(key, ui->key) != 0, last = p->total > 0 && p->done >= p->total;
    snprintf(ui->key, sizeof ui->key, "%s", key);
    if (ui->tty) {
        if (!new_stage && !last && now - ui->last_draw < 0.1) return;
    } else if (new_stage && *key) {
        ui->timed = 0;
    } else if (now - ui->last_draw >= CLI_PROGRESS_LOG_EVERY) {
        ui->timed = 1;
    } else if (last && ui->timed) {
        ui->timed = 0;
    } else {
        return;
    }
    char line[256];
    cli_progress_format(line, sizeof line, ui->prefix, p);
    fprintf(stderr, "%s%s%s", ui->tty ? "\r\033[K" : "", line, ui->tty ? "" : "\n");
    fflush(stderr);
    ui->drawn = ui->tty;
    ui->last_draw = now;
}

void cli_progress_count(cli_progress *ui, const char *stage, const char *unit, long long done,
                        long long total, double t0) {
    pd_progress p;
    memset(&p, 0, sizeof p);
    p.what = ui->prefix;
    p.stage = stage;
    p.unit = unit;
    p.done = done;
    p.total = total;
    p.seconds = cli_now() - t0;
    p.rate = p.seconds > 0 && done > 0 ? (double)done / p.seconds : -1;
    p.eta_seconds = p.rate > 0 && total >= done ? (double)(total - done) / p.rate : -1;
    p.loss = p.loss_psi = p.loss_theta = p.fd = NAN;
    cli_progress_show(ui, &p);
}

void cli_progress_print(cli_progress *ui, const char *line) {
    if (ui->quiet) return;
    fprintf(stderr, "%s%s\n", ui->drawn ? "\r\033[K" : "", line);
    ui->drawn = 0;
    fflush(stderr);
}

void cli_progress_log(void *user, const char *line) {
    cli_progress *ui = user;
    char buf[1600];
    snprintf(buf, sizeof buf, "%s: %s", ui->prefix, line);
    cli_progress_print(ui, buf);
}

void cli_progress_clear(cli_progress *ui) {
    if (!ui->drawn) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    ui->drawn = 0;
}

void cli_progress_end(cli_progress *ui) {
    if (!ui->drawn) return;
    fputc('\n', stderr);
    fflush(stderr);
    ui->drawn = 0;
}

void cli_progress_finish(cli_progress *ui, const char *cmd, int rc, const char *msg) {
    cli_progress_end(ui);
    if (rc) cli_die(cli_interrupted(NULL) ? 130 : 1, cmd, "%s", msg);
}
