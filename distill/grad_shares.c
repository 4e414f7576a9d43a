/* grad_shares.c — the fixed-tree gradient sum over shares and ranks (contract in grad_shares.h).
 *
 * Two walks over the same tree, in the same (pre-)order on every rank. The first computes the
 * maximal subtrees that lie inside this rank's shares ("slots"), each by the local recursion
 * node = left + right. The second combines: a node that spans ranks is left + right, added by
 * the owner of its first share, which receives the right half from the owner of the right
 * half's first share. Every rank meets its sends and receives in the global post-order of the
 * nodes, so the exchange cannot deadlock. The owner of share 0 ends with the root and
 * broadcasts it.
 */
#include "distill/grad_shares.h"
#include "core/dist.h"
#include "core/util.h"

#include <string.h>

int gs_shares(int B, int max_shares) {
    int s = max_shares < GS_MAX_SHARES ? max_shares : GS_MAX_SHARES;
    return B < s ? B : s;
}

uint64_t gs_dropout_seed(uint64_t seed, int share) {
    return seed + (uint64_t)share * 0x9E3779B97F4A7C15ull;   /* golden-ratio spacing of keys */
}

/* The rank whose dist_part of the S shares holds share s. */
static int owner(int S, int s) {
    for (int r = 0; r < dist_size(); r++) {
        long long lo, hi;
        dist_part(S, r, &lo, &hi);
        if (s >= lo && s < hi) return r;
    }
    return 0;
}

/* [lo, hi) lies inside one rank's shares: that rank, else -1. */
static int single_owner(int S, int lo, int hi) {
    int q = owner(S, lo);
    return owner(S, hi - 1) == q ? q : -1;
}

static int depth_of(int S) {
    int d = 0;
    while ((1 << d) < S) d++;
    return d;
}

/* Slots this rank fills: maximal single-owner subtrees that it owns. */
static int count_slots(int S, int lo, int hi) {
    int q = single_owner(S, lo, hi);
    if (q >= 0) return q == dist_rank();
    int mid = lo + (hi - lo) / 2;
    return count_slots(S, lo, mid) + count_slots(S, mid, hi);
}

int gs_plan_init(gs_plan *p, int B, int max_shares, int max_workers, size_t np, pd_error *err) {
    memset(p, 0, sizeof *p);
    if (B < 1) return pd_fail(err, "gradient shares: batch %d", B);
    if (max_shares < 1) return pd_fail(err, "gradient shares: %d shares", max_shares);
    p->B = B;
    p->S = gs_shares(B, max_shares);
    p->np = np;
    long long lo, hi;
    dist_part(p->S, dist_rank(), &lo, &hi);
    p->lo = (int)lo;
    p->hi = (int)hi;
    p->depth = depth_of(p->S);
    p->slots = count_slots(p->S, 0, p->S);
    /* Scratch for each tree level, plus (with several ranks) this rank's finished subtrees; one
     * process sums straight into the caller's gradient. */
    size_t nbuf = (size_t)p->depth + 1 + (dist_size() > 1 ? (size_t)p->slots : 0);
    /* Workers: one process only, at most one per share, within the memory bound. */
    int W = dist_size() > 1 || max_workers < 1 ? 1 : max_workers;
    if (W > p->S) W = p->S;
    size_t per_worker = ((size_t)p->depth + 2) * np * sizeof(float);
    while (W > 1 && (size_t)(W - 1) * per_worker > GS_WORKER_BYTES) W--;
    p->workers = W;
    nbuf += (size_t)(W - 1) * (p->depth + 2);
    p->buf = core_alloc(nbuf * np * sizeof(float));
    if (!p->buf)
        return pd_fail(err, "out of memory for %zu gradient buffers of %zu values", nbuf, np);
    return 0;
}

void gs_plan_free(gs_plan *p) {
    core_free(p->buf);
    memset(p, 0, sizeof *p);
}

static void add_into(float *a, const float *b, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) a[i] = a[i] + b[i];
}

typedef struct walk {
    gs_plan *p;
    gs_share_fn fn;
    void *user;
    double *values;          /* [S][GS_MAX_VALUES] */
    pd_error *err;
    int slot;                /* next slot (both walks number them alike) */
    int worker;              /* the worker this walk computes for */
} walk;

/* Level-d scratch: worker 0's in the plan's first depth + 1 buffers, worker k's (k >= 1) after
 * the slots, depth + 2 buffers each (the last holds the root of its subtree). */
static float *worker_base(gs_plan *p, int k) {
    size_t first = (size_t)p->depth + 1 + (dist_size() > 1 ? (size_t)p->slots : 0);
    return p->buf + (first + (size_t)(k - 1) * (p->depth + 2)) * p->np;
}
static float *tmp_buf_of(gs_plan *p, int k, int d) {
    return (k == 0 ? p->buf : worker_base(p, k)) + (size_t)d * p->np;
}
static float *tmp_buf(gs_plan *p, int d) { return tmp_buf_of(p, 0, d); }
static float *slot_buf(gs_plan *p, int k) { return p->buf + ((size_t)p->depth + 1 + k) * p->np; }

/* The subtree [lo, hi) computed here into out; scratch from level d down. */
static int local(walk *w, int lo, int hi, float *out, int d) {
    gs_plan *p = w->p;
    if (hi - lo == 1) {
        memset(out, 0, p->np * sizeof(float));
        int first = (int)((long long)lo * p->B / p->S), end = (int)((long long)hi * p->B / p->S);
        return w->fn(w->user, lo, w->worker, first, end - first, out,
                     w->values + (size_t)lo * GS_MAX_VALUES, w->err);
    }
    int mid = lo + (hi - lo) / 2;
    if (local(w, lo, mid, out, d + 1) || local(w, mid, hi, tmp_buf_of(p, w->worker, d), d + 1))
        return -1;
    add_into(out, tmp_buf_of(p, w->worker, d), p->np);
    return 0;
}

/* One process, several workers: the tree's top is cut into one subtree per worker (node
 * [lo, hi) with n workers gives n/2 to [lo, mid) and the rest to [mid, hi)). */
typedef struct piece { int lo, hi, d; } piece;

static void cut(piece *pc, int lo, int hi, int d, int k0, int n) {
    if (n == 1 || hi - lo == 1) {
        pc[k0] = (piece){lo, hi, d};
        for (int k = k0 + 1; k < k0 + n; k++) pc[k] = (piece){0, 0, d};   /* idle worker */
        return;
    }
    int mid = lo + (hi - lo) / 2, nl = n / 2;
    cut(pc, lo, mid, d + 1, k0, nl);
    cut(pc, mid, hi, d + 1, k0 + nl, n - nl);
}

/* Adds the workers' subtree roots along the same tree; returns the node's buffer. */
static float *join(gs_plan *p, float *const *root, int lo, int hi, int k0, int n) {
    if (n == 1 || hi - lo == 1) return root[k0];
    int mid = lo + (hi - lo) / 2, nl = n / 2;
    float *left = join(p, root, lo, mid, k0, nl), *right = join(p, root, mid, hi, k0 + nl, n - nl);
    add_into(left, right, p->np);
    return left;
}

static int local_workers(walk *w0, float *grad) {
    gs_plan *p = w0->p;
    int W = p->workers;
    piece pc[GS_MAX_SHARES];
    float *root[GS_MAX_SHARES];
    pd_error errs[GS_MAX_SHARES];
    int rc[GS_MAX_SHARES];
    cut(pc, 0, p->S, 0, 0, W);
    for (int k = 0; k < W; k++) {
        root[k] = k == 0 ? grad : tmp_buf_of(p, k, p->depth + 1);
        rc[k] = 0;
        errs[k].msg[0] = 0;
    }
    #pragma omp parallel for num_threads(W) schedule(static, 1)
    for (int k = 0; k < W; k++) {
        if (pc[k].hi > pc[k].lo) {
            walk w = *w0;
            w.worker = k;
            w.err = &errs[k];
            rc[k] = local(&w, pc[k].lo, pc[k].hi, root[k], pc[k].d);
        }
    }
    for (int k = 0; k < W; k++)
        if (rc[k]) {
            *w0->err = errs[k];
            return -1;
        }
    join(p, root, 0, p->S, 0, W);   /* the root lands in root[0] = grad */
    return 0;
}

static int compute(walk *w, int lo, int hi) {
    int q = single_owner(w->p->S, lo, hi);
    if (q >= 0) return q == dist_rank() ? local(w, lo, hi, slot_buf(w->p, w->slot++), 1) : 0;
    int mid = lo + (hi - lo) / 2;
    return compute(w, lo, mid) || compute(w, mid, hi) ? -1 : 0;
}

/* The node's value on the owner of its first share (NULL elsewhere). */
static float *combine(walk *w, int lo, int hi) {
    gs_plan *p = w->p;
    int q = single_owner(p->S, lo, hi);
    if (q >= 0) return q == dist_rank() ? slot_buf(p, w->slot++) : NULL;
    int mid = lo + (hi - lo) / 2;
    float *left = combine(w, lo, mid), *right = combine(w, mid, hi);
    int ql = owner(p->S, lo), qr = owner(p->S, mid);
    if (dist_rank() == qr) dist_send(right, p->np * sizeof(float), ql);
    if (dist_rank() == ql) {
        dist_recv(tmp_buf(p, 0), p->np * sizeof(float), qr);
        add_into(left, tmp_buf(p, 0), p->np);
    }
    return left;
}

int gs_run(gs_plan *p, gs_share_fn fn, void *user, float *grad, double *values, int n_values,
           pd_error *err) {
    double per[GS_MAX_SHARES][GS_MAX_VALUES];
    memset(per, 0, sizeof per);
    walk w = {p, fn, user, &per[0][0], err, 0, 0};
    if (dist_size() == 1) {
        /* One process: the whole tree is one slot; compute it straight into grad. */
        if (p->workers > 1 ? local_workers(&w, grad) : local(&w, 0, p->S, grad, 0)) return -1;
    } else {
        /* The shares need no messages, so a failure is agreed on before any exchange starts:
         * every rank returns, the failing one with its own message. */
        int failed = compute(&w, 0, p->S) != 0;
        if (dist_any(failed))
            return failed ? -1 : pd_fail(err, "another rank failed computing its gradient shares");
        w.slot = 0;
        float *root = combine(&w, 0, p->S);
        int q0 = owner(p->S, 0);
        if (dist_rank() == q0) memcpy(grad, root, p->np * sizeof(float));
        dist_bcast(grad, p->np * sizeof(float), q0);
        size_t bytes[dist_size()];
        for (int r = 0; r < dist_size(); r++) {
            long long lo, hi;
            dist_part(p->S, r, &lo, &hi);
            bytes[r] = (size_t)(hi - lo) * sizeof per[0];
        }
        double all[GS_MAX_SHARES][GS_MAX_VALUES];
        dist_allgatherv(per[p->lo], all, bytes);
        memcpy(per, all, sizeof all);
    }
    for (int k = 0; k < n_values; k++) {
        double s = 0.0;
        for (int j = 0; j < p->S; j++) s += per[j][k];
        values[k] = s;
    }
    return 0;
}
