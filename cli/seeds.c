/* seeds.c — the --seeds list syntax of EDM's generate.py ("0-63,100,200-210": ranges inclusive,
 * image i uses the i-th listed seed) and the seed drawn when none is given (printed and recorded by
 * the caller, so any image can be made again). Bad input exits 2 naming the flag (args.h).
 */
#include "cli/seeds.h"
#include "cli/args.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define SEEDS_MAX 100000000LL

/* One unsigned decimal number at *s (digits only); advances *s. */
static int parse_u64(const char **s, uint64_t *out) {
    const char *p = *s;
    if (*p < '0' || *p > '9') return -1;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *s = p;
    *out = v;
    return 0;
}

int cli_parse_seeds(const char *cmd, const char *flag, const char *spec, uint64_t **out) {
    long long n = 0, cap = 0;
    uint64_t *v = NULL;
    const char *s = spec;
    if (!*s) cli_bad_flag(cmd, flag, "expected seeds like 0-63,100,200-210, got ''");
    for (;;) {
        uint64_t a, b;
        if (parse_u64(&s, &a)) break;
        b = a;
        if (*s == '-') {
            s++;
            if (parse_u64(&s, &b)) break;
            if (b < a) cli_bad_flag(cmd, flag, "range %" PRIu64 "-%" PRIu64 " runs backwards", a, b);
        }
        if ((long long)(b - a) >= SEEDS_MAX - n)
            cli_bad_flag(cmd, flag, "more than %lld seeds", SEEDS_MAX);
        long long need = n + (long long)(b - a) + 1;
        if (need > cap) {
            cap = need > 2 * cap ? need : 2 * cap;
            uint64_t *nv = realloc(v, sizeof *v * (size_t)cap);
            if (!nv) cli_die(1, cmd, "out of memory for %lld seeds", cap);
            v = nv;
        }
        for (uint64_t k = a;; k++) {
            v[n++] = k;
            if (k == b) break;
        }
        if (*s == 0) {
            *out = v;
            return (int)n;
        }
        if (*s != ',') break;
        s++;
    }
    free(v);
    cli_bad_flag(cmd, flag, "expected seeds like 0-63,100,200-210, got '%s'", spec);
}

uint64_t cli_random_seed(void) {
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec ^ ((uint32_t)getpid() << 16);
    }
    return r & 0x7fffffff; /* an int, as EDM's seeds; six or more digits in file names */
}

void cli_seeds_describe(char *buf, size_t cap, const uint64_t *seeds, int n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len + 48 < cap;) {
        int j = i;
        while (j + 1 < n && seeds[j + 1] == seeds[j] + 1) j++;
        if (j > i)
            len += (size_t)snprintf(buf + len, cap - len, "%s%" PRIu64 "-%" PRIu64, i ? "," : "",
                                    seeds[i], seeds[j]);
        else len += (size_t)snprintf(buf + len, cap - len, "%s%" PRIu64, i ? "," : "", seeds[i]);
        i = j + 1;
        if (i < n && len + 48 >= cap) snprintf(buf + len, cap - len, ",...");
    }
}
