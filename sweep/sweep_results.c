/* sweep_results.c — results.jsonl, the sweep's only source of truth (sweep.h sw_results).
 *
 * One JSON object per line, one line per finished cell. A line is appended with a single write()
 * of the whole line and its newline, then fsync, so a process killed at any moment leaves every
 * earlier line intact and at most a partial last line without its newline. Loading cuts such a
 * torn tail off the file (and says so) before anything is appended after it; any other line that
 * is not a JSON object with a "key" string is an error naming file:line, because it did not come
 * from this code. JSON is parsed with pixdiff's strict reader (core/json.c).
 */
#include "sweep/sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void record_free(sw_record *r) {
    for (int i = 0; i < r->n_fields; i++) {
        free(r->fields[i].name);
        free(r->fields[i].value);
    }
    free(r->fields);
    memset(r, 0, sizeof *r);
}

void sw_results_free(sw_results *r) {
    for (int i = 0; i < r->n; i++) record_free(&r->recs[i]);
    free(r->recs);
    memset(r, 0, sizeof *r);
}

/* Parses one line into a record; source names it in messages ("results.jsonl:7"). */
static int parse_line(sw_record *rec, const char *line, const char *source, pd_error *err) {
    memset(rec, 0, sizeof *rec);
    yd_doc doc;
    if (yd_load_json(&doc, line, source, err)) return -1;
    const yd_node *root = doc.root;
    int rc = 0;
    if (!root || root->kind != YD_MAP || root->n < 1) {
        rc = pd_fail(err, "%s: not a JSON object", source);
        goto done;
    }
    rec->fields = calloc((size_t)root->n, sizeof *rec->fields);
    if (!rec->fields) {
        rc = pd_fail(err, "%s: out of memory", source);
        goto done;
    }
    for (int i = 0; i < root->n; i++) {
        const yd_node *v = root->items[i];
        if (v->kind != YD_SCALAR) {
            rc = pd_fail(err, "%s: field '%s' is not a string, number or null", source, root->keys[i]);
            goto done;
        }
        sw_field *f = &rec->fields[rec->n_fields];
        f->name = strdup(root->keys[i]);
        f->is_string = v->quoted;
        f->value = strdup(!v->quoted && !strcmp(v->scalar, "null") ? "" : v->scalar);
        if (!f->name || !f->value) {
            free(f->name);
            free(f->value);
            rc = pd_fail(err, "%s: out of memory", source);
            goto done;
        }
        rec->n_fields++;
        if (!strcmp(f->name, "key") && f->is_string) rec->key = f->value;
    }
    if (!rec->key) rc = pd_fail(err, "%s: no \"key\" string (not a sweep result line)", source);
done:
    yd_free(&doc);
    if (rc) record_free(rec);
    return rc;
}

static int push(sw_results *r, sw_record *rec, pd_error *err) {
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        sw_record *n = realloc(r->recs, (size_t)cap * sizeof *n);
        if (!n) return pd_fail(err, "%s: out of memory", r->path);
        r->recs = n;
        r->cap = cap;
    }
    r->recs[r->n++] = *rec;
    return 0;
}

int sw_results_load(sw_results *r, const char *out_dir, int repair, int *dropped, pd_error *err) {
    memset(r, 0, sizeof *r);
    if (dropped) *dropped = 0;
    snprintf(r->path, sizeof r->path, "%s/results.jsonl", out_dir);
    FILE *f = fopen(r->path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        return pd_fail(err, "%s: %s", r->path, strerror(errno));
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return pd_fail(err, "%s: out of memory", r->path);
            }
            text = t;
        }
        size_t got = fread(text + len, 1, 65536, f);
        len += got;
        if (got < 65536) break;
    }
    int read_err = ferror(f);
    fclose(f);
    if (read_err) {
        free(text);
        return pd_fail(err, "%s: read error", r->path);
    }
    text[len] = 0;
    /* A tail without its newline is a line the process was killed while writing. */
    size_t complete = len;
    while (complete > 0 && text[complete - 1] != '\n') complete--;
    if (complete < len && !repair) {
        if (dropped) *dropped = 1;
        text[complete] = 0;
    } else if (complete < len) {
        if (truncate(r->path, (off_t)complete)) {
            free(text);
            return pd_fail(err, "%s: cannot cut the torn last line: %s", r->path, strerror(errno));
        }
        int fd = open(r->path, O_WRONLY);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        if (dropped) *dropped = 1;
        text[complete] = 0;
    }
    int line_no = 0, rc = 0;
    for (char *line = text; *line && rc == 0;) {
        char *nl = strchr(line, '\n');
        *nl = 0;
        line_no++;
        if (line[strspn(line, " \t\r")]) {
            char source[1200];
            snprintf(source, sizeof source, "%s:%d", r->path, line_no);
            sw_record rec;
            rc = parse_line(&rec, line, source, err);
            if (rc == 0 && (rc = push(r, &rec, err))) record_free(&rec);
        }
        line = nl + 1;
    }
    free(text);
    if (rc) sw_results_free(r);
    return rc;
}

int sw_results_append(sw_results *r, const char *json_line, pd_error *err) {
    char source[1200];
    snprintf(source, sizeof source, "%s:%d (new)", r->path, r->n + 1);
    sw_record rec;
    if (parse_line(&rec, json_line, source, err)) return -1;
    size_t len = strlen(json_line);
    char *buf = malloc(len + 2);
    if (!buf) {
        record_free(&rec);
        return pd_fail(err, "%s: out of memory", r->path);
    }
    memcpy(buf, json_line, len);
    buf[len] = '\n';
    struct stat st;
    int existed = stat(r->path, &st) == 0;
    int fd = open(r->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(buf);
        record_free(&rec);
        return pd_fail(err, "%s: %s", r->path, strerror(e));
    }
    size_t done = 0;
    int rc = 0;
    while (done < len + 1) {
        ssize_t w = write(fd, buf + done, len + 1 - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = pd_fail(err, "%s: write failed: %s", r->path, strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    if (rc == 0 && fsync(fd)) rc = pd_fail(err, "%s: fsync failed: %s", r->path, strerror(errno));
    close(fd);
    free(buf);
    if (rc == 0 && !existed) {
        /* A new file: make its directory entry durable too. */
        char dir[1100];
        snprintf(dir, sizeof dir, "%s", r->path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (rc == 0) rc = push(r, &rec, err);
    if (rc) record_free(&rec);
    return rc;
}

const sw_record *sw_results_find(const sw_results *r, const char *key) {
    /* The last record wins: a key appears once unless someone ran two sweeps at once. */
    for (int i = r->n - 1; i >= 0; i--)
        if (!strcmp(r->recs[i].key, key)) return &r->recs[i];
    return NULL;
}

int sw_record_json(const sw_record *rec, const char *const *set_names, const char *const *set_values,
                   int n_set, jb_buf *out) {
    jb_printf(out, "{");
    for (int i = 0; i < rec->n_fields; i++) {
        const sw_field *f = &rec->fields[i];
        const char *replace = NULL;
        for (int k = 0; k < n_set; k++)
            if (!strcmp(f->name, set_names[k])) replace = set_values[k];
        jb_printf(out, "%s", i ? ", " : "");
        jb_json_str(out, f->name);
        jb_printf(out, ": ");
        /* Numbers stay the text they were written as, so they round-trip exactly. */
        if (replace) jb_json_str(out, replace);
        else if (f->is_string) jb_json_str(out, f->value);
        else jb_printf(out, "%s", *f->value ? f->value : "null");
    }
    jb_printf(out, "}");
    return out->oom ? -1 : 0;
}

const char *sw_record_get(const sw_record *rec, const char *name) {
    if (!rec) return NULL;
    for (int i = 0; i < rec->n_fields; i++)
        if (!strcmp(rec->fields[i].name, name)) return rec->fields[i].value;
    return NULL;
}

double sw_record_num(const sw_record *rec, const char *name) {
    const char *v = sw_record_get(rec, name);
    if (!v || !*v) return NAN;
    char *end;
    double d = strtod(v, &end);
    return *end ? NAN : d;
}
