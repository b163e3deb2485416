/* GGUF reader and writer, and the PEFT LoRA -> llama.cpp LoRA GGUF export (see gguf.h). */
#include "io/gguf.h"
#include "io/llama2c.h"
#include "model/arch.h"
#include "io/peft_files.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- types ---- */

static const char *g_vtype_names[BL_GGUF_VTYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                                         "string", "array", "u64", "i64", "f64"};
static const size_t g_vtype_size[BL_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *bl_gguf_vtype_name(bl_gguf_vtype t) { return (unsigned)t < BL_GGUF_VTYPE_COUNT ? g_vtype_names[t] : "?"; }

static const struct { uint32_t type; const char *name; uint32_t block, size; } g_ggml[] = {
    {0, "F32", 1, 4}, {1, "F16", 1, 2}, {2, "Q4_0", 32, 18}, {3, "Q4_1", 32, 20}, {6, "Q5_0", 32, 22},
    {7, "Q5_1", 32, 24}, {8, "Q8_0", 32, 34}, {9, "Q8_1", 32, 36}, {10, "Q2_K", 256, 84}, {11, "Q3_K", 256, 110},
    {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176}, {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292},
    {24, "I8", 1, 1}, {25, "I16", 1, 2}, {26, "I32", 1, 4}, {27, "I64", 1, 8}, {28, "F64", 1, 8}, {30, "BF16", 1, 2},
};

const char *bl_ggml_type_name(uint32_t type) {
    for (size_t i = 0; i < sizeof g_ggml / sizeof g_ggml[0]; i++) if (g_ggml[i].type == type) return g_ggml[i].name;
    return "?";
}

uint64_t bl_ggml_nbytes(uint32_t type, const uint64_t *ne, uint32_t n_dims) {
    for (size_t i = 0; i < sizeof g_ggml / sizeof g_ggml[0]; i++) {
        if (g_ggml[i].type != type) continue;
        if (n_dims == 0 || ne[0] % g_ggml[i].block) return 0;
        unsigned __int128 n = ne[0] / g_ggml[i].block * g_ggml[i].size;
        for (uint32_t d = 1; d < n_dims; d++) n *= ne[d];
        return n > (unsigned __int128)UINT64_MAX / 2 ? 0 : (uint64_t)n;
    }
    return 0;
}

/* ---- reader ---- */

typedef struct cursor { const unsigned char *p; size_t off, len; const char *path; } cursor;

static balora_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->len - c->off)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: %s at byte %zu runs past the end of the %zu-byte file (truncated?)",
                       c->path, what, c->off, c->len);
    return BALORA_STATUS_OK;
}

static balora_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    BL_TRY(need(c, 4, what));
    *v = 0;
    for (int i = 3; i >= 0; i--) *v = (*v << 8) | c->p[c->off + (size_t)i];
    c->off += 4;
    return BALORA_STATUS_OK;
}

static balora_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    BL_TRY(need(c, 8, what));
    *v = 0;
    for (int i = 7; i >= 0; i--) *v = (*v << 8) | c->p[c->off + (size_t)i];
    c->off += 8;
    return BALORA_STATUS_OK;
}

/* A string: u64 length + bytes; *out is a NUL-terminated copy (NULL out: skip). */
static balora_status rd_str(cursor *c, char **out, const char *what) {
    uint64_t n;
    BL_TRY(rd_u64(c, &n, what));
    BL_TRY(need(c, n, what));
    size_t bad;
    if (!bl_utf8_valid((const char *)c->p + c->off, (size_t)n, &bad))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: %s: string at byte %zu is not valid UTF-8", c->path, what, c->off + bad);
    if (out) {
        *out = bl_malloc((size_t)n + 1);
        if (!*out) return BALORA_STATUS_NOMEM;
        memcpy(*out, c->p + c->off, (size_t)n);
        (*out)[n] = 0;
    }
    c->off += (size_t)n;
    return BALORA_STATUS_OK;
}

static balora_status rd_scalar(cursor *c, bl_gguf_vtype t, bl_gguf_kv *kv) {
    size_t n = g_vtype_size[t];
    BL_TRY(need(c, n, kv->key));
    const unsigned char *p = c->p + c->off;
    uint64_t u = 0;
    for (int i = (int)n - 1; i >= 0; i--) u = (u << 8) | p[i];
    c->off += n;
    switch (t) {
    case BL_GGUF_I8: kv->v.i = (int8_t)u; break;
    case BL_GGUF_I16: kv->v.i = (int16_t)u; break;
    case BL_GGUF_I32: kv->v.i = (int32_t)u; break;
    case BL_GGUF_I64: kv->v.i = (int64_t)u; break;
    case BL_GGUF_F32: { uint32_t b = (uint32_t)u; float f; memcpy(&f, &b, 4); kv->v.f = f; break; }
    case BL_GGUF_F64: { double f; memcpy(&f, &u, 8); kv->v.f = f; break; }
    case BL_GGUF_BOOL:
        if (u > 1) return bl_fail(BALORA_STATUS_FORMAT, "%s: key '%s': bool value %" PRIu64 " is not 0 or 1", c->path, kv->key, u);
        kv->v.b = u; break;
    default: kv->v.u = u; break;
    }
    return BALORA_STATUS_OK;
}

static balora_status rd_value(cursor *c, bl_gguf_kv *kv) {
    uint32_t t;
    BL_TRY(rd_u32(c, &t, kv->key));
    if (t >= BL_GGUF_VTYPE_COUNT)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: key '%s': unknown value type %" PRIu32, c->path, kv->key, t);
    kv->type = (bl_gguf_vtype)t;
    if (t == BL_GGUF_STRING) return rd_str(c, &kv->str, kv->key);
    if (t != BL_GGUF_ARRAY) return rd_scalar(c, kv->type, kv);
    uint32_t at;
    BL_TRY(rd_u32(c, &at, kv->key));
    BL_TRY(rd_u64(c, &kv->arr_n, kv->key));
    if (at >= BL_GGUF_VTYPE_COUNT || at == BL_GGUF_ARRAY)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: key '%s': unsupported array element type %" PRIu32, c->path, kv->key, at);
    kv->arr_type = (bl_gguf_vtype)at;
    kv->arr_data = (const char *)c->p + c->off;
    if (at == BL_GGUF_STRING) {
        if (kv->arr_n > (c->len - c->off) / 8) return need(c, UINT64_MAX, kv->key);
        for (uint64_t i = 0; i < kv->arr_n; i++) BL_TRY(rd_str(c, NULL, kv->key));
        return BALORA_STATUS_OK;
    }
    if (kv->arr_n > (c->len - c->off) / g_vtype_size[at]) return need(c, UINT64_MAX, kv->key);
    c->off += (size_t)(kv->arr_n * g_vtype_size[at]);
    return BALORA_STATUS_OK;
}

static balora_status rd_kvs(cursor *c, bl_gguf_file *g) {
    if (g->n_kv > (c->len - c->off) / 13)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: header claims %" PRIu64 " key-value pairs, more than the file can hold (truncated?)", g->path, g->n_kv);
    g->kvs = bl_calloc((size_t)g->n_kv + 1, sizeof *g->kvs);
    if (!g->kvs) return BALORA_STATUS_NOMEM;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        bl_gguf_kv *kv = &g->kvs[i];
        BL_TRY(rd_str(c, &kv->key, "key"));
        for (uint64_t j = 0; j < i; j++)
            if (!strcmp(g->kvs[j].key, kv->key)) return bl_fail(BALORA_STATUS_FORMAT, "%s: duplicate key '%s'", g->path, kv->key);
        BL_TRY(rd_value(c, kv));
    }
    return BALORA_STATUS_OK;
}

static balora_status rd_tensor_info(cursor *c, bl_gguf_file *g, bl_gguf_tensor *t) {
    BL_TRY(rd_str(c, &t->name, "tensor name"));
    BL_TRY(rd_u32(c, &t->n_dims, t->name));
    if (t->n_dims == 0 || t->n_dims > BL_GGML_MAX_DIMS)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s': %" PRIu32 " dimensions (1 to 4 allowed)", g->path, t->name, t->n_dims);
    for (int d = 0; d < BL_GGML_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        BL_TRY(rd_u64(c, &t->ne[d], t->name));
        if (t->ne[d] == 0 || t->ne[d] > ((uint64_t)1 << 40))
            return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s': dimension %" PRIu32 " = %" PRIu64 " is out of range", g->path, t->name, d, t->ne[d]);
    }
    BL_TRY(rd_u32(c, &t->type, t->name));
    BL_TRY(rd_u64(c, &t->offset, t->name));
    t->nbytes = bl_ggml_nbytes(t->type, t->ne, t->n_dims);
    return BALORA_STATUS_OK;
}

static int cmp_offset(const void *a, const void *b) {
    const bl_gguf_tensor *x = *(const bl_gguf_tensor *const *)a, *y = *(const bl_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Offsets aligned, inside the file, not overlapping; names unique. */
static balora_status check_tensor_data(bl_gguf_file *g) {
    uint64_t data_len = g->len - g->data_offset;
    const bl_gguf_tensor **order = bl_calloc((size_t)g->n_tensors + 1, sizeof *order);
    if (!order) return BALORA_STATUS_NOMEM;
    for (uint64_t i = 0; i < g->n_tensors; i++) order[i] = &g->tensors[i];
    qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_offset);
    balora_status st = BALORA_STATUS_OK;
    for (uint64_t i = 0; i < g->n_tensors && !st; i++) {
        const bl_gguf_tensor *t = order[i];
        if (t->offset % g->alignment)
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu32,
                         g->path, t->name, t->offset, g->alignment);
        else if (t->offset > data_len || t->nbytes > data_len - t->offset)
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s': data [%" PRIu64 ", +%" PRIu64 ") runs past the end of the file (truncated?)",
                         g->path, t->name, t->offset, t->nbytes);
        else if (i + 1 < g->n_tensors && t->offset + t->nbytes > order[i + 1]->offset)
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensors '%s' and '%s' overlap", g->path, t->name, order[i + 1]->name);
    }
    free(order);
    for (uint64_t i = 0; i < g->n_tensors && !st; i++) {
        bl_gguf_tensor *t = &g->tensors[i];
        t->data = t->nbytes ? g->buf + g->data_offset + t->offset : NULL;
        for (uint64_t j = 0; j < i && !st; j++)
            if (!strcmp(g->tensors[j].name, t->name)) st = bl_fail(BALORA_STATUS_FORMAT, "%s: duplicate tensor name '%s'", g->path, t->name);
    }
    return st;
}

static balora_status read_alignment(bl_gguf_file *g) {
    g->alignment = BL_GGUF_DEFAULT_ALIGNMENT;
    const bl_gguf_kv *a = bl_gguf_find_kv(g, "general.alignment");
    if (!a) return BALORA_STATUS_OK;
    if (a->type != BL_GGUF_U32 || a->v.u == 0 || (a->v.u & (a->v.u - 1)) || a->v.u > 65536)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: general.alignment must be a u32 power of two", g->path);
    g->alignment = (uint32_t)a->v.u;
    return BALORA_STATUS_OK;
}

static balora_status parse(bl_gguf_file *g) {
    cursor c = {(const unsigned char *)g->buf, 0, g->len, g->path};
    if (g->len < 4 || memcmp(g->buf, "GGUF", 4) != 0)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: not a GGUF file (no 'GGUF' magic)", g->path);
    c.off = 4;
    BL_TRY(rd_u32(&c, &g->version, "version"));
    if (g->version != 2 && g->version != 3)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: GGUF version %" PRIu32 " (balora reads versions 2 and 3)", g->path, g->version);
    BL_TRY(rd_u64(&c, &g->n_tensors, "tensor count"));
    BL_TRY(rd_u64(&c, &g->n_kv, "key-value count"));
    BL_TRY(rd_kvs(&c, g));
    BL_TRY(read_alignment(g));
    if (g->n_tensors > (c.len - c.off) / 24)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: header claims %" PRIu64 " tensors, more than the file can hold (truncated?)", g->path, g->n_tensors);
    g->tensors = bl_calloc((size_t)g->n_tensors + 1, sizeof *g->tensors);
    if (!g->tensors) return BALORA_STATUS_NOMEM;
    for (uint64_t i = 0; i < g->n_tensors; i++) BL_TRY(rd_tensor_info(&c, g, &g->tensors[i]));
    g->data_offset = (c.off + g->alignment - 1) / g->alignment * g->alignment;
    if (g->n_tensors && g->data_offset > g->len)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: the data section starts past the end of the file (truncated?)", g->path);
    if (g->data_offset > g->len) g->data_offset = g->len;
    return check_tensor_data(g);
}

balora_status bl_gguf_open(bl_gguf_file *g, const char *path) {
    memset(g, 0, sizeof *g);
    BL_TRY(bl_file_read(path, &g->buf, &g->len));
    g->path = bl_strdup(path);
    balora_status st = g->path ? parse(g) : BALORA_STATUS_NOMEM;
    if (st) bl_gguf_close(g);
    return st;
}

void bl_gguf_close(bl_gguf_file *g) {
    if (!g) return;
    if (g->kvs) for (uint64_t i = 0; i < g->n_kv; i++) { free(g->kvs[i].key); free(g->kvs[i].str); }
    if (g->tensors) for (uint64_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kvs); free(g->tensors); free(g->buf); free(g->path);
    memset(g, 0, sizeof *g);
}

const bl_gguf_kv *bl_gguf_find_kv(const bl_gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++) if (g->kvs[i].key && !strcmp(g->kvs[i].key, key)) return &g->kvs[i];
    return NULL;
}

const bl_gguf_tensor *bl_gguf_find_tensor(const bl_gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++) if (g->tensors[i].name && !strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* ---- writer ---- */

void bl_gguf_writer_init(bl_gguf_writer *w) { memset(w, 0, sizeof *w); }

void bl_gguf_writer_free(bl_gguf_writer *w) {
    for (int i = 0; i < w->n_kv; i++) { free(w->kvs[i].key); free(w->kvs[i].str); }
    for (int i = 0; i < w->n_t; i++) free(w->ts[i].name);
    free(w->kvs); free(w->ts);
    memset(w, 0, sizeof *w);
}

static balora_status add_kv(bl_gguf_writer *w, const char *key, bl_gguf_vtype t, uint64_t u, double f, const char *s) {
    for (int i = 0; i < w->n_kv; i++) if (!strcmp(w->kvs[i].key, key)) return bl_fail(BALORA_STATUS_INVALID, "GGUF key '%s' added twice", key);
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? 2 * w->cap_kv : 16;
        void *p = bl_realloc(w->kvs, (size_t)cap * sizeof *w->kvs);
        if (!p) return BALORA_STATUS_NOMEM;
        w->kvs = p; w->cap_kv = cap;
    }
    w->kvs[w->n_kv].key = bl_strdup(key);
    w->kvs[w->n_kv].str = s ? bl_strdup(s) : NULL;
    if (!w->kvs[w->n_kv].key || (s && !w->kvs[w->n_kv].str)) return BALORA_STATUS_NOMEM;
    w->kvs[w->n_kv].type = t;
    w->kvs[w->n_kv].u = u;
    w->kvs[w->n_kv].f = f;
    w->n_kv++;
    return BALORA_STATUS_OK;
}

balora_status bl_gguf_writer_str(bl_gguf_writer *w, const char *key, const char *val) { return add_kv(w, key, BL_GGUF_STRING, 0, 0, val); }
balora_status bl_gguf_writer_u32(bl_gguf_writer *w, const char *key, uint32_t val) { return add_kv(w, key, BL_GGUF_U32, val, 0, NULL); }
balora_status bl_gguf_writer_f32(bl_gguf_writer *w, const char *key, float val) { return add_kv(w, key, BL_GGUF_F32, 0, val, NULL); }

balora_status bl_gguf_writer_tensor(bl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                                    const void *data) {
    if (type != BL_GGML_F32 && type != BL_GGML_F16 && type != BL_GGML_BF16)
        return bl_fail(BALORA_STATUS_INVALID, "GGUF tensor '%s': balora writes F32, F16 or BF16 only", name);
    if (n_dims == 0 || n_dims > BL_GGML_MAX_DIMS) return bl_fail(BALORA_STATUS_INVALID, "GGUF tensor '%s': %u dims", name, n_dims);
    for (int i = 0; i < w->n_t; i++) if (!strcmp(w->ts[i].name, name)) return bl_fail(BALORA_STATUS_INVALID, "GGUF tensor '%s' added twice", name);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        void *p = bl_realloc(w->ts, (size_t)cap * sizeof *w->ts);
        if (!p) return BALORA_STATUS_NOMEM;
        w->ts = p; w->cap_t = cap;
    }
    w->ts[w->n_t].name = bl_strdup(name);
    if (!w->ts[w->n_t].name) return BALORA_STATUS_NOMEM;
    w->ts[w->n_t].n_dims = n_dims;
    for (int d = 0; d < BL_GGML_MAX_DIMS; d++) w->ts[w->n_t].ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    w->ts[w->n_t].type = type;
    w->ts[w->n_t].data = data;
    w->ts[w->n_t].nbytes = bl_ggml_nbytes(type, ne, n_dims);
    w->n_t++;
    return BALORA_STATUS_OK;
}

/* Serialisation: `out` NULL measures. */
typedef struct sink { unsigned char *out; size_t pos; } sink;
static void put(sink *s, const void *p, size_t n) { if (s->out && n) memcpy(s->out + s->pos, p, n); s->pos += n; }
static void put_u32(sink *s, uint32_t v) { unsigned char b[4]; for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i)); put(s, b, 4); }
static void put_u64(sink *s, uint64_t v) { unsigned char b[8]; for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i)); put(s, b, 8); }
static void put_str(sink *s, const char *str) { size_t n = strlen(str); put_u64(s, n); put(s, str, n); }
static void pad_to(sink *s, size_t align) { while (s->pos % align) { unsigned char z = 0; put(s, &z, 1); } }

static void serialise(const bl_gguf_writer *w, sink *s) {
    put(s, "GGUF", 4);
    put_u32(s, 3);
    put_u64(s, (uint64_t)w->n_t);
    put_u64(s, (uint64_t)w->n_kv);
    for (int i = 0; i < w->n_kv; i++) {
        put_str(s, w->kvs[i].key);
        put_u32(s, w->kvs[i].type);
        if (w->kvs[i].type == BL_GGUF_STRING) put_str(s, w->kvs[i].str);
        else if (w->kvs[i].type == BL_GGUF_U32) put_u32(s, (uint32_t)w->kvs[i].u);
        else { float f = (float)w->kvs[i].f; uint32_t b; memcpy(&b, &f, 4); put_u32(s, b); }
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        put_str(s, w->ts[i].name);
        put_u32(s, w->ts[i].n_dims);
        for (uint32_t d = 0; d < w->ts[i].n_dims; d++) put_u64(s, w->ts[i].ne[d]);
        put_u32(s, w->ts[i].type);
        put_u64(s, off);
        off += (w->ts[i].nbytes + BL_GGUF_DEFAULT_ALIGNMENT - 1) / BL_GGUF_DEFAULT_ALIGNMENT * BL_GGUF_DEFAULT_ALIGNMENT;
    }
    pad_to(s, BL_GGUF_DEFAULT_ALIGNMENT);
    for (int i = 0; i < w->n_t; i++) {
        put(s, w->ts[i].data, (size_t)w->ts[i].nbytes);
        pad_to(s, BL_GGUF_DEFAULT_ALIGNMENT);
    }
}

balora_status bl_gguf_writer_save(bl_gguf_writer *w, const char *path) {
    sink m = {NULL, 0};
    serialise(w, &m);
    sink s = {bl_malloc(m.pos), 0};
    if (!s.out) return BALORA_STATUS_NOMEM;
    serialise(w, &s);
    balora_status st = bl_file_write_atomic(path, s.out, s.pos);
    free(s.out);
    return st;
}

/* ---- PEFT LoRA -> llama.cpp LoRA GGUF ---- */

/* "gpt2, llama": the llama.cpp architectures the table's rows export to (error hints). */
static const char *gguf_arch_list(char *buf, size_t cap) {
    int n;
    const bl_arch *rows = bl_arch_rows(&n);
    size_t o = 0;
    buf[0] = 0;
    for (int r = 0; r < n; r++)
        for (int t = 0; t < rows[r].n_types; t++) {
            const char *g = rows[r].types[t].gguf_arch;
            if (!g || bl_arch_find_gguf(g, NULL) != &rows[r] || strstr(buf, g)) continue;
            o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", g);
            if (o >= cap) return buf;
        }
    return buf;
}

/* The block linear a module path names ("model.layers.3.self_attn.q_proj" -> layer 3, q_proj's
 * row of the table), NULL when it is none of the row's block linears. */
static const bl_arch_linear *block_linear(const bl_arch *A, const char *module, long *layer) {
    const char *m = module;
    size_t pl = strlen(A->prefix), bl = strlen(A->block);
    if (!strncmp(m, A->prefix, pl)) m += pl;
    char *end = NULL;
    long l = !strncmp(m, A->block, bl) ? strtol(m + bl, &end, 10) : -1;
    if (!end || end == m + bl || *end != '.' || l < 0) return NULL;
    for (size_t i = 0; i < sizeof A->lin / sizeof A->lin[0] && A->lin[i].path; i++)
        if (!strcmp(end + 1, A->lin[i].path)) {
            *layer = l;
            return &A->lin[i];
        }
    return NULL;
}

/* llama.cpp names come from the architecture table (model/arch.h): the row whose model types
 * export as `arch`, its prefix / block path, and each block linear's gguf name. */
balora_status bl_gguf_tensor_name(const char *arch, const char *module, char *out, size_t cap) {
    const bl_arch *A = bl_arch_find_gguf(arch, NULL);
    char list[128];
    if (!A) return bl_fail(BALORA_STATUS_UNSUPPORTED, "GGUF export: architecture '%s' is not supported (%s)", arch,
                           gguf_arch_list(list, sizeof list));
    const char *m = module;
    size_t pl = strlen(A->prefix);
    if (!strncmp(m, A->prefix, pl)) m += pl;
    if (A->gguf_lm_head && A->lm_head && !strcmp(m, A->lm_head)) {
        snprintf(out, cap, "%s.weight", A->gguf_lm_head);
        return BALORA_STATUS_OK;
    }
    long layer = -1;
    const bl_arch_linear *lin = block_linear(A, module, &layer);
    if (lin && lin->gguf) {
        if ((size_t)snprintf(out, cap, "blk.%ld.%s.weight", layer, lin->gguf) >= cap)
            return bl_fail(BALORA_STATUS_INVALID, "GGUF tensor name too long");
        return BALORA_STATUS_OK;
    }
    char mods[256];
    size_t o = 0;
    mods[0] = 0;
    for (size_t i = 0; i < sizeof A->lin / sizeof A->lin[0] && A->lin[i].path && o < sizeof mods; i++)
        if (A->lin[i].gguf) o += (size_t)snprintf(mods + o, sizeof mods - o, "%s%s", o ? ", " : "", A->lin[i].path);
    return bl_fail(BALORA_STATUS_UNSUPPORTED, "GGUF export: module '%s' has no llama.cpp '%s' tensor (supported for %s: %s%s)",
                   module, arch, arch, mods, A->gguf_lm_head ? ", lm_head" : "");
}

/* ---- head counts against the adapter's shapes ---- */

/* What a q/k/v/o module says about the heads: its rows (q/k/v lora_B) or columns (o_proj
 * lora_A) are heads x head_dim, with n_head for q and o, n_head_kv for k and v. */
typedef struct head_view {
    const bl_peft_pair *p;
    bool kv;                  /* k_proj / v_proj */
    int64_t width;            /* lora_B rows, or o_proj's lora_A columns */
    const char *factor;       /* "lora_B" or "lora_A" */
    const int64_t *shape;     /* that factor's [rows, cols] */
} head_view;

static bool head_view_of(const bl_arch *A, const bl_peft_pair *p, head_view *v) {
    long layer;
    const bl_arch_linear *lin = block_linear(A, p->module, &layer);
    if (!lin || p->embedding || !p->a || !p->b) return false;
    if (lin->role != BL_ROLE_Q && lin->role != BL_ROLE_K && lin->role != BL_ROLE_V && lin->role != BL_ROLE_O) return false;
    v->p = p;
    v->kv = lin->role == BL_ROLE_K || lin->role == BL_ROLE_V;
    bool o = lin->role == BL_ROLE_O;
    v->factor = o ? "lora_A" : "lora_B";
    v->shape = o ? p->a->shape : p->b->shape;
    v->width = o ? p->a->shape[1] : p->b->shape[0];
    return true;
}

static balora_status head_mismatch(const bl_peft_adapter *ad, const char *field, int64_t value, const head_view *v, int64_t head_dim,
                                   const char *hd_from) {
    bool o = !strcmp(v->factor, "lora_A");
    return bl_fail(BALORA_STATUS_INVALID, "%s: GGUF export: %s = %lld contradicts module '%s': its %s is [%lld, %lld], %lld %s, not "
                   "%lld heads x head_dim %lld = %lld (head_dim %s); llama.cpp would load the file and compute wrong logits. "
                   "hint: give the base model's true num_attention_heads / num_key_value_heads (--n-head / --n-head-kv), or "
                   "--base MODEL_DIR", ad->weights_path, field, (long long)value, v->p->module, v->factor, (long long)v->shape[0],
                   (long long)v->shape[1], (long long)v->width, o ? "columns" : "rows", (long long)value, (long long)head_dim,
                   (long long)(value * head_dim), hd_from);
}

static balora_status check_heads(const bl_peft_adapter *ad, const bl_gguf_lora_options *opt, const bl_arch *A) {
    const char *fh = opt->n_head_from ? opt->n_head_from : "n_head";
    char fkv[300];
    if (opt->n_head_kv > 0) snprintf(fkv, sizeof fkv, "%s", opt->n_head_kv_from ? opt->n_head_kv_from : "n_head_kv");
    else snprintf(fkv, sizeof fkv, "%s (n_head_kv defaults to it)", fh);
    int64_t nh = opt->n_head > 0 ? opt->n_head : 0, nkv = opt->n_head_kv > 0 ? opt->n_head_kv : nh;
    if (nh == 0 && nkv == 0) return BALORA_STATUS_OK;
    if (nh > 0 && nh % nkv)
        return bl_fail(BALORA_STATUS_INVALID, "GGUF export: %s = %lld does not divide %s = %lld (grouped-query attention shares each "
                       "key-value head among a whole number of query heads); hint: give the base model's true head counts",
                       fkv, (long long)nkv, fh, (long long)nh);
    int64_t hd = opt->head_dim > 0 ? opt->head_dim : 0;
    char hd_from[700];
    snprintf(hd_from, sizeof hd_from, "from %s", opt->head_dim_from ? opt->head_dim_from : "head_dim");
    head_view v;
    /* head_dim, when not given: from q_proj (n_head), else o_proj, else k_proj / v_proj (n_head_kv) */
    static const bl_arch_role order[] = {BL_ROLE_Q, BL_ROLE_O, BL_ROLE_K, BL_ROLE_V};
    for (int k = 0; k < 4 * ad->n_pairs && hd == 0; k++) {
        long layer;
        const bl_arch_linear *lin = block_linear(A, ad->pairs[k % ad->n_pairs].module, &layer);
        if (!lin || lin->role != order[k / ad->n_pairs] || !head_view_of(A, &ad->pairs[k % ad->n_pairs], &v)) continue;
        int64_t heads = v.kv ? nkv : nh;
        if (heads <= 0) continue;
        if (v.width % heads)
            return bl_fail(BALORA_STATUS_INVALID, "%s: GGUF export: %s = %lld contradicts module '%s': its %s is [%lld, %lld], and "
                           "%lld %s are not %lld heads of one size; hint: give the base model's true num_attention_heads / "
                           "num_key_value_heads (--n-head / --n-head-kv), or --base MODEL_DIR", ad->weights_path,
                           v.kv ? fkv : fh, (long long)heads, v.p->module, v.factor, (long long)v.shape[0], (long long)v.shape[1],
                           (long long)v.width, strcmp(v.factor, "lora_A") ? "rows" : "columns", (long long)heads);
        hd = v.width / heads;
        snprintf(hd_from, sizeof hd_from, "%lld from module '%s': %lld / %s %lld", (long long)hd, v.p->module, (long long)v.width,
                 v.kv ? "n_head_kv" : "n_head", (long long)heads);
    }
    for (int i = 0; i < ad->n_pairs && hd > 0; i++) {
        if (!head_view_of(A, &ad->pairs[i], &v)) continue;
        int64_t heads = v.kv ? nkv : nh;
        if (heads > 0 && v.width != heads * hd) return head_mismatch(ad, v.kv ? fkv : fh, heads, &v, hd, hd_from);
    }
    return BALORA_STATUS_OK;
}

/* What one pair becomes. */
typedef struct lora_out {
    char name[256];             /* base GGUF tensor name */
    const bl_peft_pair *pair;
    float *a, *b;               /* [r, in], [out, r] float32, b permuted and rescaled */
    void *a16, *b16;            /* F16 copies when requested */
    int rope_heads;             /* 0: no permutation */
} lora_out;

static balora_status plan_pair(const bl_peft_adapter *ad, const bl_gguf_lora_options *opt, const bl_peft_pair *p, lora_out *o) {
    if (p->embedding)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: module '%s' is an embedding LoRA; the GGUF export supports linear layers only",
                       ad->weights_path, p->module);
    BL_TRY(bl_gguf_tensor_name(opt->arch, p->module, o->name, sizeof o->name));
    o->pair = p;
    const bl_arch_type *ty;
    const bl_arch *A = bl_arch_find_gguf(opt->arch, &ty);
    const bl_arch_linear *lq = bl_arch_linear_of(A, BL_ROLE_Q), *lk = bl_arch_linear_of(A, BL_ROLE_K);
    char sq[64] = "-", sk[64] = "-";
    if (lq && lq->gguf) snprintf(sq, sizeof sq, ".%s.weight", lq->gguf);
    if (lk && lk->gguf) snprintf(sk, sizeof sk, ".%s.weight", lk->gguf);
    bool is_q = strstr(o->name, sq) != NULL, is_k = strstr(o->name, sk) != NULL;
    if (A->pos == BL_POS_ROPE && ty->gguf_rope_pairs && (is_q || is_k)) { /* llama.cpp's RoPE row order */
        int64_t heads = is_q ? opt->n_head : (opt->n_head_kv > 0 ? opt->n_head_kv : opt->n_head);
        int64_t out = p->b->shape[0];
        if (heads <= 0)
            return bl_fail(BALORA_STATUS_INVALID, "GGUF export: module '%s' needs the base model's head counts for llama.cpp's RoPE row "
                           "order (hint: pass --base MODEL_DIR, or --n-head and --n-head-kv)", p->module);
        if (out % heads || (out / heads) % 2)
            return bl_fail(BALORA_STATUS_INVALID, "GGUF export: module '%s' has %" PRId64 " output rows, not %" PRId64
                           " heads of an even size (wrong --n-head / --n-head-kv?)", p->module, out, heads);
        o->rope_heads = (int)heads;
    }
    return BALORA_STATUS_OK;
}

static void to_f16(const float *src, void *dst, int64_t n) {
    unsigned char *d = dst;
    for (int64_t i = 0; i < n; i++) { uint16_t h = bl_f32_to_f16(src[i]); memcpy(d + 2 * i, &h, 2); }
}

static balora_status fill_pair(const bl_peft_adapter *ad, double alpha_gguf, float *scratch, lora_out *o) {
    const bl_peft_pair *p = o->pair;
    int64_t r = p->r, out = p->b->shape[0];
    BL_TRY(bl_st_tensor_to_f32(&ad->file, p->a, o->a));
    BL_TRY(bl_st_tensor_to_f32(&ad->file, p->b, scratch));
    /* llama.cpp scales by alpha_gguf / r (by 1 when alpha is 0); fold any other per-module scale
     * (alpha_pattern, or lora_alpha 0) into B */
    double llama_scale = alpha_gguf != 0 ? alpha_gguf / (double)r : 1.0;
    double fold = p->scale / llama_scale;
    if (fabs(fold - 1.0) > 1e-12) for (int64_t i = 0; i < out * r; i++) scratch[i] = (float)(scratch[i] * fold);
    if (o->rope_heads) bl_rope_rows_to_interleaved(scratch, o->b, o->rope_heads, out / o->rope_heads, r);
    else memcpy(o->b, scratch, (size_t)(out * r) * sizeof *scratch);
    if (o->a16) { to_f16(o->a, o->a16, p->a->numel); to_f16(o->b, o->b16, p->b->numel); }
    return BALORA_STATUS_OK;
}

static balora_status export_run(const bl_peft_adapter *ad, const char *out_path, const bl_gguf_lora_options *opt,
                                lora_out *outs, bl_arena *ar, bl_gguf_writer *w) {
    if (ad->n_full)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: holds full tensors ('%s', modules_to_save) that a llama.cpp LoRA GGUF cannot "
                       "express (hint: balora merge, then convert the merged model)", ad->weights_path, ad->full[0].t->name);
    if (ad->n_pairs == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: no LoRA pairs to export", ad->weights_path);
    bool f16 = opt->type == BL_GGML_F16;
    BL_TRY(check_heads(ad, opt, bl_arch_find_gguf(opt->arch, NULL)));
    int64_t max_b = 0;
    for (int i = 0; i < ad->n_pairs; i++) {
        BL_TRY(plan_pair(ad, opt, &ad->pairs[i], &outs[i]));
        if (ad->pairs[i].b->numel > max_b) max_b = ad->pairs[i].b->numel;
    }
    float *scratch = NULL; /* [max out*r] */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < ad->n_pairs; i++) {
            outs[i].a = bl_arena_take(ar, (size_t)ad->pairs[i].a->numel * sizeof(float));
            outs[i].b = bl_arena_take(ar, (size_t)ad->pairs[i].b->numel * sizeof(float));
            outs[i].a16 = f16 ? bl_arena_take(ar, (size_t)ad->pairs[i].a->numel * 2) : NULL;
            outs[i].b16 = f16 ? bl_arena_take(ar, (size_t)ad->pairs[i].b->numel * 2) : NULL;
        }
        scratch = bl_arena_take(ar, (size_t)max_b * sizeof(float));
        if (pass == 0) BL_TRY(bl_arena_alloc(ar));
    }
    double alpha_gguf = ad->cfg.lora_alpha * (ad->cfg.use_rslora ? sqrt((double)ad->cfg.r) : 1.0);
    BL_TRY(bl_gguf_writer_str(w, "general.architecture", opt->arch));
    BL_TRY(bl_gguf_writer_str(w, "general.type", "adapter"));
    BL_TRY(bl_gguf_writer_str(w, "adapter.type", "lora"));
    BL_TRY(bl_gguf_writer_f32(w, "adapter.lora.alpha", (float)alpha_gguf));
    for (int i = 0; i < ad->n_pairs; i++) {
        lora_out *o = &outs[i];
        BL_TRY(fill_pair(ad, alpha_gguf, scratch, o));
        int64_t r = o->pair->r, in = o->pair->a->shape[1], out = o->pair->b->shape[0];
        char na[300], nb[300];
        snprintf(na, sizeof na, "%s.lora_a", o->name);
        snprintf(nb, sizeof nb, "%s.lora_b", o->name);
        BL_TRY(bl_gguf_writer_tensor(w, na, opt->type, 2, (uint64_t[]){(uint64_t)in, (uint64_t)r}, f16 ? o->a16 : (void *)o->a));
        BL_TRY(bl_gguf_writer_tensor(w, nb, opt->type, 2, (uint64_t[]){(uint64_t)r, (uint64_t)out}, f16 ? o->b16 : (void *)o->b));
    }
    return bl_gguf_writer_save(w, out_path);
}

balora_status bl_gguf_export_lora(const char *adapter_dir, const char *out_path, const bl_gguf_lora_options *opt, int *n_tensors) {
    char list[128];
    if (!opt || !opt->arch)
        return bl_fail(BALORA_STATUS_INVALID, "GGUF export: the base architecture is required (%s)", gguf_arch_list(list, sizeof list));
    if (!bl_arch_find_gguf(opt->arch, NULL))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "GGUF export: architecture '%s' is not supported (%s)", opt->arch,
                       gguf_arch_list(list, sizeof list));
    if (opt->type != BL_GGML_F32 && opt->type != BL_GGML_F16)
        return bl_fail(BALORA_STATUS_INVALID, "GGUF export: tensor type must be F32 or F16");
    bl_peft_adapter ad;
    BL_TRY(bl_peft_open(&ad, adapter_dir));
    balora_status st = bl_peft_validate(&ad);
    lora_out *outs = st ? NULL : bl_calloc((size_t)ad.n_pairs + 1, sizeof *outs);
    if (!st && !outs) st = BALORA_STATUS_NOMEM;
    bl_arena ar = {0};
    bl_gguf_writer w;
    bl_gguf_writer_init(&w);
    if (!st) st = export_run(&ad, out_path, opt, outs, &ar, &w);
    if (!st && n_tensors) *n_tensors = w.n_t;
    bl_gguf_writer_free(&w);
    bl_arena_free(&ar);
    free(outs);
    bl_peft_close(&ad);
    return st;
}
