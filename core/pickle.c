/* pickle.c — the restricted pickle machine (pickle.h).
 *
 * The pickle format is a program for a stack machine (Python's Lib/pickletools.py documents
 * every opcode). This machine implements the binary opcodes of protocols 2-4 that EDM snapshots
 * (pickle.dump, protocol 4) and torch.save streams (protocol 2) contain, and never calls anything
 * the file names: GLOBAL/STACK_GLOBAL only look the name up in the whitelist below, and REDUCE,
 * NEWOBJ and BUILD interpret the few whitelisted callables here, building plain values (a
 * persistent EDM module becomes an object holding its class name and pickled attribute dict; a
 * tensor a reference to a storage with offset, shape and strides). Bounds: at most PK_MAX_VALUES
 * values, PK_MAX_MARKS open marks and PK_MAX_DEPTH container nesting; every length is checked
 * against the bytes that remain before it is used.
 */
#include "core/pickle.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pickle.c reads little-endian numbers in place and needs a little-endian host"
#endif

#define PK_MAX_VALUES (1 << 22)
#define PK_MAX_MARKS 4096
#define PK_MAX_DEPTH 512
#define PK_MAX_MEMO (1 << 22)

const char *const pk_dtype_names[PK_DTYPE_COUNT] = {"F32", "F16", "BF16", "F64", "I64",
                                                    "I32", "I16", "I8",  "U8",  "BOOL"};
const int pk_dtype_size[PK_DTYPE_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

/* The whitelist: every global the reader accepts, and what it is. */
enum {
    G_PERSISTENT_OBJ, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR, G_REBUILD_PARAMETER,
    G_REBUILD_PARAMETER_STATE, G_REBUILD_FROM_TYPE_V2, G_LOAD_FROM_BYTES, G_ORDERED_DICT,
    G_EASYDICT, G_SET, G_FROZENSET, G_CODECS_ENCODE, G_NP_SCALAR, G_NP_SCALAR2, G_NP_DTYPE,
    G_MODULE_DICT, G_MODULE_LIST, G_SEQUENTIAL, G_TENSOR_CLASS, G_PARAMETER_CLASS,
    G_STORAGE /* first storage type; G_STORAGE + pk_dtype */
};
static const char *const globals[] = {
    "torch_utils.persistence._reconstruct_persistent_obj",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._tensor._rebuild_from_type_v2",
    "torch.storage._load_from_bytes",
    "collections.OrderedDict",
    "dnnlib.util.EasyDict",
    "builtins.set",
    "builtins.frozenset",
    "_codecs.encode",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.dtype",
    "torch.nn.modules.container.ModuleDict",
    "torch.nn.modules.container.ModuleList",
    "torch.nn.modules.container.Sequential",
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    /* storage types, in pk_dtype order */
    "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
    "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
    "torch.ByteStorage", "torch.BoolStorage",
};
#define N_GLOBALS ((int)(sizeof globals / sizeof globals[0]))
_Static_assert(N_GLOBALS == G_STORAGE + PK_DTYPE_COUNT, "one storage global per pk_dtype");

struct pk_ctx {
    char source[512];
    pk_value **all;             /* every value, for pk_ctx_free */
    size_t n_all, cap_all;
    pk_bytes_fn load_from_bytes;
    void *lfb_user;
    int nesting;                /* pickles being parsed (_load_from_bytes nests one) */
};

typedef struct machine {
    pk_ctx *ctx;
    const uint8_t *buf;
    size_t len, pos, base, op_pos;
    pk_value **stack;
    size_t sp, scap;
    size_t marks[PK_MAX_MARKS];
    int nmarks;
    pk_value **memo;
    size_t nmemo, memo_len;     /* slots allocated; slots filled (Python's len(memo)) */
    pk_persid_fn persid;
    void *user;
    pd_error *err;
} machine;

pk_ctx *pk_ctx_new(const char *source) {
    pk_ctx *c = calloc(1, sizeof *c);
    if (c) snprintf(c->source, sizeof c->source, "%s", source);
    return c;
}

void pk_ctx_free(pk_ctx *ctx) {
    if (!ctx) return;
    for (size_t i = 0; i < ctx->n_all; i++) {
        pk_value *v = ctx->all[i];
        free(v->s);
        free(v->items);
        if (v->kind == PK_BYTES && v->cap) free((void *)v->bytes);   /* cap != 0: owned */
        if (v->st) free(v->st->key);
        free(v->st);
        free(v->t);
        free(v);
    }
    free(ctx->all);
    free(ctx);
}

const char *pk_ctx_source(const pk_ctx *ctx) { return ctx->source; }

void pk_ctx_set_load_from_bytes(pk_ctx *ctx, pk_bytes_fn fn, void *user) {
    ctx->load_from_bytes = fn;
    ctx->lfb_user = user;
}

pk_value *pk_new(pk_ctx *ctx, pk_kind kind, pd_error *err) {
    if (ctx->n_all >= PK_MAX_VALUES) {
        pd_fail(err, "%s: pickle holds more than %d values", ctx->source, PK_MAX_VALUES);
        return NULL;
    }
    if (ctx->n_all == ctx->cap_all) {
        size_t cap = ctx->cap_all ? 2 * ctx->cap_all : 1024;
        pk_value **a = realloc(ctx->all, cap * sizeof *a);
        if (!a) { pd_fail(err, "%s: out of memory", ctx->source); return NULL; }
        ctx->all = a;
        ctx->cap_all = cap;
    }
    pk_value *v = calloc(1, sizeof *v);
    if (!v) { pd_fail(err, "%s: out of memory", ctx->source); return NULL; }
    v->kind = kind;
    ctx->all[ctx->n_all++] = v;
    return v;
}

const char *pk_kind_name(pk_kind k) {
    static const char *const n[] = {"None", "bool", "int", "int", "float", "str", "bytes",
                                    "tuple", "list", "dict", "global", "object", "dtype",
                                    "storage", "tensor"};
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

int pk_is_str(const pk_value *v, const char *s) {
    return v && v->kind == PK_STR && !strcmp(v->s, s);
}

pk_value *pk_dict_get(const pk_value *d, const char *key) {
    if (!d || d->kind != PK_DICT) return NULL;
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (pk_is_str(d->items[i], key)) return d->items[i + 1];
    return NULL;
}

/* ------------------------------------------------------------------ machine helpers */

static int fail(machine *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(machine *m, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pd_fail(m->err, "%s: pickle byte %zu: %s", m->ctx->source, m->base + m->op_pos, msg);
}

static int need(machine *m, size_t n) {
    if (n > m->len - m->pos)
        return fail(m, "truncated: needs %zu more bytes, %zu remain", n, m->len - m->pos);
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int push(machine *m, pk_value *v) {
    if (!v) return -1;
    if (m->sp == m->scap) {
        size_t cap = m->scap ? 2 * m->scap : 256;
        pk_value **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return fail(m, "out of memory");
        m->stack = s;
        m->scap = cap;
    }
    m->stack[m->sp++] = v;
    return 0;
}

static pk_value *pop(machine *m) {
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static pk_value *top(machine *m) {
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

static pk_value *newv(machine *m, pk_kind k) { return pk_new(m->ctx, k, m->err); }

/* Appends to a container's items, tracking the nesting depth. */
static int add_item(machine *m, pk_value *c, pk_value *item) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4;
        pk_value **a = realloc(c->items, cap * sizeof *a);
        if (!a) return fail(m, "out of memory");
        c->items = a;
        c->cap = cap;
    }
    c->items[c->n++] = item;
    if (item->depth + 1 > c->depth) c->depth = item->depth + 1;
    if (c->depth > PK_MAX_DEPTH)
        return fail(m, "containers nested deeper than %d", PK_MAX_DEPTH);
    return 0;
}

/* Pops everything above the top mark into a new container of kind k. */
static pk_value *pop_mark(machine *m, pk_kind k) {
    if (!m->nmarks) {
        fail(m, "no MARK on the stack");
        return NULL;
    }
    size_t from = m->marks[--m->nmarks];
    pk_value *c = newv(m, k);
    if (!c) return NULL;
    for (size_t i = from; i < m->sp; i++)
        if (add_item(m, c, m->stack[i])) return NULL;
    m->sp = from;
    return c;
}

static pk_value *make_str(machine *m, const uint8_t *p, size_t n) {
    pk_value *v = newv(m, PK_STR);
    if (!v) return NULL;
    v->s = malloc(n + 1);
    if (!v->s) { fail(m, "out of memory"); return NULL; }
    memcpy(v->s, p, n);
    v->s[n] = 0;
    v->n = n;
    return v;
}

static int op_str(machine *m, int lenbytes, int is_bytes) {
    if (need(m, (size_t)lenbytes)) return -1;
    uint64_t n = rd_le(m->buf + m->pos, lenbytes);
    m->pos += (size_t)lenbytes;
    if (need(m, n)) return -1;
    pk_value *v;
    if (is_bytes) {
        v = newv(m, PK_BYTES);
        if (!v) return -1;
        v->bytes = m->buf + m->pos;   /* borrowed: cap stays 0 */
        v->n = n;
    } else if (!(v = make_str(m, m->buf + m->pos, n))) {
        return -1;
    }
    m->pos += n;
    return push(m, v);
}

static int lookup_global(machine *m, const char *module, const char *name) {
    char full[600];
    snprintf(full, sizeof full, "%s.%s", module, name);
    for (int g = 0; g < N_GLOBALS; g++)
        if (!strcmp(full, globals[g])) {
            pk_value *v = newv(m, PK_GLOBAL);
            if (!v || !(v->s = strdup(full))) return v ? fail(m, "out of memory") : -1;
            v->global = g;
            v->n = strlen(full);
            return push(m, v);
        }
    return fail(m, "global '%s' is not allowed (the restricted reader rebuilds only tensors, "
                "containers and EDM networks, and never runs code from the file)", full);
}

/* ------------------------------------------------------------------ whitelisted calls */

static int get_int(machine *m, const pk_value *v, const char *what, long long *out) {
    if (!v || (v->kind != PK_INT && v->kind != PK_BOOL))
        return fail(m, "%s: expected an int, got %s", what, v ? pk_kind_name(v->kind) : "nothing");
    *out = v->i;
    return 0;
}

static int int_tuple(machine *m, const pk_value *v, const char *what, long long *out, int *n) {
    if (!v || (v->kind != PK_TUPLE && v->kind != PK_LIST) || v->n > 8)
        return fail(m, "%s: expected a tuple of at most 8 ints", what);
    for (size_t i = 0; i < v->n; i++)
        if (get_int(m, v->items[i], what, &out[i])) return -1;
    *n = (int)v->n;
    return 0;
}

/* _rebuild_tensor(_v2)(storage, offset, size, stride, ...): checks that every element the
 * strides can reach lies inside the storage's claimed length. */
static pk_value *rebuild_tensor(machine *m, const pk_value *args) {
    if (args->n < 4) {
        fail(m, "_rebuild_tensor: expected at least 4 arguments, got %zu", args->n);
        return NULL;
    }
    pk_value *st = args->items[0];
    if (st->kind != PK_STORAGE) {
        fail(m, "_rebuild_tensor: argument 1 is a %s, not a storage", pk_kind_name(st->kind));
        return NULL;
    }
    pk_tensor t = {.storage = st};
    int ns;
    if (get_int(m, args->items[1], "tensor storage offset", &t.offset) ||
        int_tuple(m, args->items[2], "tensor size", t.shape, &t.ndim) ||
        int_tuple(m, args->items[3], "tensor stride", t.stride, &ns))
        return NULL;
    if (ns != t.ndim) {
        fail(m, "tensor with %d sizes and %d strides", t.ndim, ns);
        return NULL;
    }
    long long numel = 1, last = t.offset;
    if (t.offset < 0) { fail(m, "negative tensor offset"); return NULL; }
    for (int d = 0; d < t.ndim; d++) {
        if (t.shape[d] < 0 || t.stride[d] < 0 || t.shape[d] > (1LL << 40) ||
            t.stride[d] > (1LL << 40)) {
            fail(m, "tensor size or stride out of range");
            return NULL;
        }
        if (t.shape[d] && numel > (1LL << 40) / t.shape[d]) {
            fail(m, "tensor has too many elements");
            return NULL;
        }
        numel *= t.shape[d];
        if (t.shape[d]) last += (t.shape[d] - 1) * t.stride[d];
    }
    if (numel && last >= st->st->numel) {
        fail(m, "tensor reaches element %lld of a storage of %lld", last, st->st->numel);
        return NULL;
    }
    pk_value *v = newv(m, PK_TENSOR);
    if (!v || !(v->t = malloc(sizeof *v->t))) {
        if (v) fail(m, "out of memory");
        return NULL;
    }
    *v->t = t;
    return v;
}

/* bytes from a str of code points < 256 ('latin1' encoding: how protocol 2 pickles bytes). */
static pk_value *latin1(machine *m, const pk_value *args) {
    if (args->n != 2 || args->items[0]->kind != PK_STR ||
        !(pk_is_str(args->items[1], "latin1") || pk_is_str(args->items[1], "latin-1"))) {
        fail(m, "_codecs.encode: only (str, 'latin1') is accepted");
        return NULL;
    }
    const unsigned char *s = (const unsigned char *)args->items[0]->s;
    size_t n = args->items[0]->n, k = 0;
    uint8_t *out = malloc(n + 1);
    if (!out) { fail(m, "out of memory"); return NULL; }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) out[k++] = s[i];
        else if ((s[i] & 0xe0) == 0xc0 && i + 1 < n && s[i] <= 0xc3 && (s[i + 1] & 0xc0) == 0x80) {
            out[k++] = (uint8_t)((s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f));
            i++;
        } else {
            free(out);
            fail(m, "_codecs.encode: a character outside latin1");
            return NULL;
        }
    }
    pk_value *v = newv(m, PK_BYTES);
    if (!v) { free(out); return NULL; }
    v->bytes = out;
    v->n = k;
    v->cap = k + 1;   /* owned */
    return v;
}

/* numpy.core.multiarray.scalar(dtype, bytes): a numpy scalar as a Python number. */
static pk_value *np_scalar(machine *m, const pk_value *args) {
    if (args->n != 2 || args->items[0]->kind != PK_DTYPE || args->items[1]->kind != PK_BYTES) {
        fail(m, "numpy scalar: expected (dtype, bytes)");
        return NULL;
    }
    const char *t = args->items[0]->s;
    const uint8_t *b = args->items[1]->bytes;
    size_t n = args->items[1]->n;
    int size = t[1] ? atoi(t + 1) : 0;
    if (strlen(t) < 2 || size < 1 || size > 8 || (size_t)size != n) {
        fail(m, "numpy scalar of type '%s' with %zu bytes", t, n);
        return NULL;
    }
    pk_value *v = newv(m, PK_INT);
    if (!v) return NULL;
    if (t[0] == 'f' && size == 8) {
        v->kind = PK_FLOAT;
        memcpy(&v->f, b, 8);
    } else if (t[0] == 'f' && size == 4) {
        float f;
        memcpy(&f, b, 4);
        v->kind = PK_FLOAT;
        v->f = f;
    } else if (t[0] == 'i' || t[0] == 'u' || t[0] == 'b') {
        uint64_t u = rd_le(b, size);
        if (t[0] == 'i' && size < 8 && (u >> (8 * size - 1) & 1)) u |= ~0ULL << (8 * size);
        v->kind = t[0] == 'b' ? PK_BOOL : PK_INT;
        v->i = (long long)u;
    } else {
        fail(m, "numpy scalar of type '%s' is not supported", t);
        return NULL;
    }
    return v;
}

static pk_value *call(machine *m, const pk_value *fn, pk_value *args);

/* EDM's persistence hook (torch_utils/persistence.py): meta = dict(type='class', version,
 * module_src, class_name, state). The module source is kept out of the result and never run. */
static pk_value *persistent_obj(machine *m, const pk_value *args) {
    const pk_value *meta = args->n == 1 ? args->items[0] : NULL;
    pk_value *cls = pk_dict_get(meta, "class_name"), *state = pk_dict_get(meta, "state");
    if (!meta || meta->kind != PK_DICT || !cls || cls->kind != PK_STR || !state ||
        !pk_is_str(pk_dict_get(meta, "type"), "class")) {
        fail(m, "_reconstruct_persistent_obj: expected meta dict(type='class', class_name, "
             "state, ...)");
        return NULL;
    }
    pk_value *o = newv(m, PK_OBJECT);
    if (!o || !(o->s = strdup(cls->s))) {
        if (o) fail(m, "out of memory");
        return NULL;
    }
    o->n = cls->n;
    o->state = state;
    return o;
}

static pk_value *call(machine *m, const pk_value *fn, pk_value *args) {
    if (fn->kind != PK_GLOBAL) {
        fail(m, "REDUCE on a %s, not a global", pk_kind_name(fn->kind));
        return NULL;
    }
    if (args->kind != PK_TUPLE) {
        fail(m, "REDUCE arguments are a %s, not a tuple", pk_kind_name(args->kind));
        return NULL;
    }
    pk_value *a0 = args->n ? args->items[0] : NULL, *v;
    switch (fn->global) {
    case G_PERSISTENT_OBJ: return persistent_obj(m, args);
    case G_REBUILD_TENSOR_V2:
    case G_REBUILD_TENSOR: return rebuild_tensor(m, args);
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_STATE:
        if (!a0 || a0->kind != PK_TENSOR) {
            fail(m, "_rebuild_parameter: argument 1 is not a tensor");
            return NULL;
        }
        return a0;
    case G_REBUILD_FROM_TYPE_V2:
        /* (func, type, args, state): a tensor of class torch.Tensor/Parameter with Python state. */
        if (args->n != 4 || args->items[0]->kind != PK_GLOBAL ||
            args->items[1]->kind != PK_GLOBAL ||
            (args->items[1]->global != G_TENSOR_CLASS &&
             args->items[1]->global != G_PARAMETER_CLASS) ||
            args->items[2]->kind != PK_TUPLE) {
            fail(m, "_rebuild_from_type_v2: expected (func, torch.Tensor|Parameter, args, state)");
            return NULL;
        }
        return call(m, args->items[0], args->items[2]);
    case G_LOAD_FROM_BYTES:
        if (!a0 || a0->kind != PK_BYTES || args->n != 1) {
            fail(m, "_load_from_bytes: expected one bytes argument");
            return NULL;
        }
        if (!m->ctx->load_from_bytes || m->ctx->nesting > 1) {
            fail(m, "torch.storage._load_from_bytes is not allowed here");
            return NULL;
        }
        if (m->ctx->load_from_bytes(m->ctx, m->ctx->lfb_user, a0->bytes, a0->n, &v, m->err))
            return NULL;
        return v;
    case G_ORDERED_DICT:
    case G_EASYDICT:
        v = newv(m, PK_DICT);
        if (!v) return NULL;
        if (args->n == 0) return v;
        if (args->n == 1 && (a0->kind == PK_LIST || a0->kind == PK_TUPLE)) {
            for (size_t i = 0; i < a0->n; i++) {
                pk_value *kv = a0->items[i];
                if ((kv->kind != PK_TUPLE && kv->kind != PK_LIST) || kv->n != 2) {
                    fail(m, "OrderedDict: items must be pairs");
                    return NULL;
                }
                if (add_item(m, v, kv->items[0]) || add_item(m, v, kv->items[1])) return NULL;
            }
            return v;
        }
        fail(m, "OrderedDict: unexpected arguments");
        return NULL;
    case G_SET:
    case G_FROZENSET:
        v = newv(m, PK_LIST);
        if (!v) return NULL;
        if (args->n == 1 && (a0->kind == PK_LIST || a0->kind == PK_TUPLE)) {
            for (size_t i = 0; i < a0->n; i++)
                if (add_item(m, v, a0->items[i])) return NULL;
        } else if (args->n) {
            fail(m, "set: expected a list");
            return NULL;
        }
        return v;
    case G_CODECS_ENCODE: return latin1(m, args);
    case G_NP_SCALAR:
    case G_NP_SCALAR2: return np_scalar(m, args);
    case G_NP_DTYPE:
        if (!a0 || a0->kind != PK_STR || a0->n > 16) {
            fail(m, "numpy.dtype: expected a type string");
            return NULL;
        }
        v = newv(m, PK_DTYPE);
        if (!v || !(v->s = strdup(a0->s))) {
            if (v) fail(m, "out of memory");
            return NULL;
        }
        v->n = a0->n;
        return v;
    default:
        fail(m, "'%s' cannot be called", fn->s);
        return NULL;
    }
}

/* NEWOBJ cls(*args): containers of torch modules, and dict subclasses. */
static pk_value *newobj(machine *m, const pk_value *cls, const pk_value *args) {
    if (cls->kind != PK_GLOBAL || args->kind != PK_TUPLE) {
        fail(m, "NEWOBJ needs a class and a tuple");
        return NULL;
    }
    switch (cls->global) {
    case G_ORDERED_DICT:
    case G_EASYDICT:
        return newv(m, PK_DICT);
    case G_MODULE_DICT:
    case G_MODULE_LIST:
    case G_SEQUENTIAL: {
        pk_value *o = newv(m, PK_OBJECT);
        const char *dot = strrchr(cls->s, '.');
        if (!o || !(o->s = strdup(dot + 1))) {
            if (o) fail(m, "out of memory");
            return NULL;
        }
        o->n = strlen(o->s);
        return o;
    }
    default:
        fail(m, "class '%s' cannot be constructed", cls->s);
        return NULL;
    }
}

static int build(machine *m, pk_value *obj, pk_value *state) {
    if (obj->kind == PK_OBJECT) {
        /* (dict, slots) state: the slots of torch modules are empty. */
        if (state->kind == PK_TUPLE && state->n == 2) state = state->items[0];
        if (state->kind != PK_DICT) return fail(m, "BUILD state of an object is not a dict");
        obj->state = state;
        return 0;
    }
    if (obj->kind == PK_DICT) {
        if (state->kind == PK_NONE) return 0;
        if (state->kind != PK_DICT) return fail(m, "BUILD state of a dict is not a dict");
        return 0;   /* attributes of a dict subclass (EasyDict) carry nothing we read */
    }
    if (obj->kind == PK_DTYPE) {
        /* numpy dtype state: (version, byteorder, ...). Big-endian data are not supported. */
        if (state->kind != PK_TUPLE || state->n < 2 || state->items[1]->kind != PK_STR)
            return fail(m, "numpy dtype state is not (version, byteorder, ...)");
        if (!strcmp(state->items[1]->s, ">"))
            return fail(m, "big-endian numpy scalar '%s'", obj->s);
        return 0;
    }
    return fail(m, "BUILD on a %s", pk_kind_name(obj->kind));
}

/* ------------------------------------------------------------------ the loop */

static int memo_put(machine *m, size_t idx, pk_value *v) {
    if (idx >= PK_MAX_MEMO || idx > m->ctx->n_all + 1)
        return fail(m, "memo index %zu out of range", idx);
    if (idx >= m->nmemo) {
        size_t n = idx + 1 > 2 * m->nmemo ? idx + 1 : 2 * m->nmemo;
        pk_value **a = realloc(m->memo, n * sizeof *a);
        if (!a) return fail(m, "out of memory");
        memset(a + m->nmemo, 0, (n - m->nmemo) * sizeof *a);
        m->memo = a;
        m->nmemo = n;
    }
    if (!m->memo[idx]) m->memo_len++;
    m->memo[idx] = v;
    return 0;
}

static int memo_get(machine *m, size_t idx) {
    if (idx >= m->nmemo || !m->memo[idx]) return fail(m, "memo index %zu was never stored", idx);
    return push(m, m->memo[idx]);
}

static int step(machine *m, int op, int *done) {
    pk_value *v, *a, *b;
    switch (op) {
    case 0x80: /* PROTO */
        if (need(m, 1)) return -1;
        if (m->buf[m->pos] < 2 || m->buf[m->pos] > 4)
            return fail(m, "pickle protocol %d (only 2 to 4 are read)", m->buf[m->pos]);
        m->pos++;
        return 0;
    case 0x95: /* FRAME: an 8-byte length; the framed opcodes follow inline */
        if (need(m, 8)) return -1;
        if (rd_le(m->buf + m->pos, 8) > m->len - m->pos - 8)
            return fail(m, "truncated: frame longer than the file");
        m->pos += 8;
        return 0;
    case '.': *done = 1; return 0;
    case '(':
        if (m->nmarks >= PK_MAX_MARKS) return fail(m, "more than %d open MARKs", PK_MAX_MARKS);
        m->marks[m->nmarks++] = m->sp;
        return 0;
    case '0': return pop(m) ? 0 : -1;
    case '1':
        if (!m->nmarks) return fail(m, "POP_MARK without a MARK");
        m->sp = m->marks[--m->nmarks];
        return 0;
    case '2': return (v = top(m)) ? push(m, v) : -1;
    case 'N': return push(m, newv(m, PK_NONE));
    case 0x88:
    case 0x89:
        if (!(v = newv(m, PK_BOOL))) return -1;
        v->i = op == 0x88;
        return push(m, v);
    case 'J': case 'K': case 'M': {
        int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        if (need(m, (size_t)n) || !(v = newv(m, PK_INT))) return -1;
        uint64_t u = rd_le(m->buf + m->pos, n);
        v->i = op == 'J' ? (long long)(int32_t)(uint32_t)u : (long long)u;
        m->pos += (size_t)n;
        return push(m, v);
    }
    case 0x8a: case 0x8b: { /* LONG1, LONG4: little-endian two's complement */
        int lb = op == 0x8a ? 1 : 4;
        if (need(m, (size_t)lb)) return -1;
        uint64_t n = rd_le(m->buf + m->pos, lb);
        m->pos += (size_t)lb;
        if (n > 64) return fail(m, "integer of %llu bytes", (unsigned long long)n);
        if (need(m, n)) return -1;
        const uint8_t *p = m->buf + m->pos;
        m->pos += n;
        if (n <= 8) {
            if (!(v = newv(m, PK_INT))) return -1;
            uint64_t u = n ? rd_le(p, (int)n) : 0;
            if (n && n < 8 && (p[n - 1] & 0x80)) u |= ~0ULL << (8 * n);
            v->i = (long long)u;
            return push(m, v);
        }
        if (!(v = newv(m, PK_BIGINT)) || !(v->s = malloc(n))) return v ? fail(m, "out of memory") : -1;
        memcpy(v->s, p, n);
        v->n = n;
        return push(m, v);
    }
    case 'G': { /* BINFLOAT: big-endian double */
        if (need(m, 8) || !(v = newv(m, PK_FLOAT))) return -1;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | m->buf[m->pos + i];
        memcpy(&v->f, &u, 8);
        m->pos += 8;
        return push(m, v);
    }
    case 'X': return op_str(m, 4, 0);
    case 0x8c: return op_str(m, 1, 0);
    case 0x8d: return op_str(m, 8, 0);
    case 'B': return op_str(m, 4, 1);
    case 'C': return op_str(m, 1, 1);
    case 0x8e: return op_str(m, 8, 1);
    case ')': return push(m, newv(m, PK_TUPLE));
    case 't': return push(m, pop_mark(m, PK_TUPLE));
    case 0x85: case 0x86: case 0x87: {
        int n = op - 0x84;
        pk_value *it[3];
        for (int i = n - 1; i >= 0; i--)
            if (!(it[i] = pop(m))) return -1;
        if (!(v = newv(m, PK_TUPLE))) return -1;
        for (int i = 0; i < n; i++)
            if (add_item(m, v, it[i])) return -1;
        return push(m, v);
    }
    case ']': return push(m, newv(m, PK_LIST));
    case 'l': return push(m, pop_mark(m, PK_LIST));
    case '}': return push(m, newv(m, PK_DICT));
    case 0x8f: return push(m, newv(m, PK_LIST));   /* EMPTY_SET: kept as a list */
    case 'd':
        if (!(v = pop_mark(m, PK_DICT))) return -1;
        if (v->n % 2) return fail(m, "DICT with an odd number of items");
        return push(m, v);
    case 0x91: return push(m, pop_mark(m, PK_LIST)); /* FROZENSET */
    case 'a':
        if (!(a = pop(m)) || !(b = top(m))) return -1;
        if (b->kind != PK_LIST) return fail(m, "APPEND to a %s", pk_kind_name(b->kind));
        return add_item(m, b, a);
    case 'e': case 0x90: { /* APPENDS, ADDITEMS */
        if (!(v = pop_mark(m, PK_TUPLE)) || !(b = top(m))) return -1;
        if (b->kind != PK_LIST) return fail(m, "APPENDS to a %s", pk_kind_name(b->kind));
        for (size_t i = 0; i < v->n; i++)
            if (add_item(m, b, v->items[i])) return -1;
        return 0;
    }
    case 's':
        if (!(a = pop(m)) || !(v = pop(m)) || !(b = top(m))) return -1;
        if (b->kind != PK_DICT) return fail(m, "SETITEM on a %s", pk_kind_name(b->kind));
        return add_item(m, b, v) || add_item(m, b, a) ? -1 : 0;
    case 'u':
        if (!(v = pop_mark(m, PK_TUPLE)) || !(b = top(m))) return -1;
        if (b->kind != PK_DICT) return fail(m, "SETITEMS on a %s", pk_kind_name(b->kind));
        if (v->n % 2) return fail(m, "SETITEMS with an odd number of items");
        for (size_t i = 0; i < v->n; i++)
            if (add_item(m, b, v->items[i])) return -1;
        return 0;
    case 'c': { /* GLOBAL "module\nname\n", each line at most 255 bytes */
        char part[2][256];
        for (int k = 0; k < 2; k++) {
            size_t avail = m->len - m->pos < 256 ? m->len - m->pos : 256;
            const uint8_t *nl = memchr(m->buf + m->pos, '\n', avail);
            if (!nl) return fail(m, "truncated or overlong GLOBAL");
            size_t n = (size_t)(nl - (m->buf + m->pos));
            memcpy(part[k], m->buf + m->pos, n);
            part[k][n] = 0;
            m->pos += n + 1;
        }
        return lookup_global(m, part[0], part[1]);
    }
    case 0x93: /* STACK_GLOBAL */
        if (!(b = pop(m)) || !(a = pop(m))) return -1;
        if (a->kind != PK_STR || b->kind != PK_STR || a->n > 256 || b->n > 256)
            return fail(m, "STACK_GLOBAL needs two short strings");
        return lookup_global(m, a->s, b->s);
    case 'R':
        if (!(a = pop(m)) || !(b = pop(m))) return -1;
        return push(m, call(m, b, a));
    case 0x81:
        if (!(a = pop(m)) || !(b = pop(m))) return -1;
        return push(m, newobj(m, b, a));
    case 'b':
        if (!(a = pop(m)) || !(b = top(m))) return -1;
        return build(m, b, a);
    case 'h': case 'j': {
        int n = op == 'h' ? 1 : 4;
        if (need(m, (size_t)n)) return -1;
        size_t idx = (size_t)rd_le(m->buf + m->pos, n);
        m->pos += (size_t)n;
        return memo_get(m, idx);
    }
    case 'q': case 'r': {
        int n = op == 'q' ? 1 : 4;
        if (need(m, (size_t)n) || !(v = top(m))) return -1;
        size_t idx = (size_t)rd_le(m->buf + m->pos, n);
        m->pos += (size_t)n;
        return memo_put(m, idx, v);
    }
    case 0x94: /* MEMOIZE: the next free index, as Python's memo is len(memo) */
        if (!(v = top(m))) return -1;
        return memo_put(m, m->memo_len, v);
    case 'Q':
        if (!(a = pop(m))) return -1;
        if (!m->persid) return fail(m, "persistent id outside a torch file");
        if (m->persid(m->ctx, m->user, a, &v, m->err)) return -1;
        return push(m, v);
    default:
        return fail(m, "opcode 0x%02x is not supported", op);
    }
}

int pk_parse(pk_ctx *ctx, const uint8_t *buf, size_t len, size_t base, pk_persid_fn persid,
             void *user, pk_value **out, size_t *used, pd_error *err) {
    machine m = {.ctx = ctx, .buf = buf, .len = len, .base = base, .persid = persid,
                 .user = user, .err = err};
    int done = 0, rc = 0;
    ctx->nesting++;
    while (!done) {
        m.op_pos = m.pos;
        if (m.pos >= m.len) {
            rc = fail(&m, "truncated: the pickle ends without STOP");
            break;
        }
        int op = m.buf[m.pos++];
        if (step(&m, op, &done)) {
            rc = -1;
            break;
        }
    }
    if (!rc) {
        if (m.sp != 1 || m.nmarks) {
            m.op_pos = m.pos;
            rc = fail(&m, "STOP with %zu values and %d marks on the stack", m.sp, m.nmarks);
        } else {
            *out = m.stack[0];
            if (used) *used = m.pos;
        }
    }
    ctx->nesting--;
    free(m.stack);
    free(m.memo);
    return rc;
}
