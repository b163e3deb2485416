/* safetensors reader and writer. */
#include "io/safetensors.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <unistd.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; size_t size; } g_dtypes[BL_DTYPE_COUNT] = {
    [BL_DTYPE_F32] = {"F32", 4}, [BL_DTYPE_F16] = {"F16", 2}, [BL_DTYPE_BF16] = {"BF16", 2},
    [BL_DTYPE_F64] = {"F64", 8}, [BL_DTYPE_I64] = {"I64", 8}, [BL_DTYPE_I32] = {"I32", 4},
    [BL_DTYPE_I16] = {"I16", 2}, [BL_DTYPE_I8] = {"I8", 1}, [BL_DTYPE_U8] = {"U8", 1},
    [BL_DTYPE_BOOL] = {"BOOL", 1},
};
const char *bl_dtype_name(bl_dtype dt) { return dt < BL_DTYPE_COUNT ? g_dtypes[dt].name : "?"; }
size_t bl_dtype_size(bl_dtype dt) { return dt < BL_DTYPE_COUNT ? g_dtypes[dt].size : 0; }

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const bl_st_tensor *)a)->name, ((const bl_st_tensor *)b)->name);
}
/* The tiling order: by (start, end), as the safetensors crate sorts data_offsets, so a zero-byte
 * tensor at offset s comes before a non-empty one starting at s whatever their names; ties (two
 * zero-byte tensors at one offset) by name, so the order never depends on the header's order. */
static int cmp_range(const void *a, const void *b) {
    const bl_st_tensor *x = *(const bl_st_tensor *const *)a, *y = *(const bl_st_tensor *const *)b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    if (px != py) return px < py ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

void bl_st_close(bl_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_keys[i]); free(f->meta_vals[i]); }
    free(f->tensors); free(f->meta_keys); free(f->meta_vals);
    free(f->buf); free(f->path);
    memset(f, 0, sizeof *f);
}

#define FAIL(...) do { st = bl_fail(BALORA_STATUS_FORMAT, __VA_ARGS__); goto fail; } while (0)

balora_status bl_st_open(bl_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    balora_status st;
    cJSON *hdr = NULL;
    BL_TRY(bl_file_read(path, &f->buf, &f->len));
    f->path = bl_strdup(path);
    if (!f->path) { st = BALORA_STATUS_NOMEM; goto fail; }
    if (f->len < 8) FAIL("%s: not a safetensors file (only %zu bytes; hint: file truncated?)", path, f->len);
    uint64_t n_hdr = 0;
    for (int i = 7; i >= 0; i--) n_hdr = (n_hdr << 8) | (unsigned char)f->buf[i];
    if (n_hdr > 100000000ULL) FAIL("%s: header length %" PRIu64 " exceeds 100,000,000 bytes (not a safetensors file?)", path, n_hdr);
    if (8 + n_hdr > f->len) FAIL("%s: header length %" PRIu64 " runs past the end of the %zu-byte file (truncated?)", path, n_hdr, f->len);
    if (n_hdr < 2 || f->buf[8] != '{') FAIL("%s: header does not start with '{'", path);
    size_t bad_at = 0;
    if (!bl_utf8_valid(f->buf + 8, (size_t)n_hdr, &bad_at))
        FAIL("%s: header is not valid UTF-8 (byte %zu of the header)", path, bad_at);
    hdr = cJSON_ParseWithLength(f->buf + 8, (size_t)n_hdr);
    if (!hdr || !cJSON_IsObject(hdr)) FAIL("%s: header is not valid JSON", path);
    size_t buf_start = 8 + (size_t)n_hdr, buf_len = f->len - buf_start;
    int count = cJSON_GetArraySize(hdr);
    f->tensors = bl_calloc((size_t)count + 1, sizeof *f->tensors);
    const cJSON *meta_obj = cJSON_GetObjectItemCaseSensitive(hdr, "__metadata__");
    int n_meta_max = cJSON_IsObject(meta_obj) ? cJSON_GetArraySize(meta_obj) : 0;
    f->meta_keys = bl_calloc((size_t)n_meta_max + 1, sizeof(char *));
    f->meta_vals = bl_calloc((size_t)n_meta_max + 1, sizeof(char *));
    if (!f->tensors || !f->meta_keys || !f->meta_vals) { st = BALORA_STATUS_NOMEM; goto fail; }
    const cJSON *it;
    cJSON_ArrayForEach(it, hdr) {
        const char *name = it->string;
        if (strcmp(name, "__metadata__") == 0) {
            /* the arrays are sized from meta_obj, the first __metadata__: a second one is refused
             * (JSON leaves duplicate keys undefined; the safetensors crate's serde refuses a duplicate
             * field too). A key repeated inside __metadata__ is kept; bl_st_meta returns the first. */
            if (it != meta_obj) FAIL("%s: the header has more than one '__metadata__' key (duplicate JSON key; hint: the file was written by a broken tool)", path);
            if (!cJSON_IsObject(it)) FAIL("%s: __metadata__ is not an object", path);
            const cJSON *m;
            cJSON_ArrayForEach(m, it) {
                if (!cJSON_IsString(m)) FAIL("%s: __metadata__ value '%s' is not a string", path, m->string);
                f->meta_keys[f->n_meta] = bl_strdup(m->string);
                f->meta_vals[f->n_meta] = bl_strdup(m->valuestring);
                f->n_meta++;
                if (!f->meta_keys[f->n_meta - 1] || !f->meta_vals[f->n_meta - 1]) { st = BALORA_STATUS_NOMEM; goto fail; }
            }
            continue;
        }
        if (!cJSON_IsObject(it)) FAIL("%s: tensor '%s': entry is not an object", path, name);
        bl_st_tensor *t = &f->tensors[f->n];
        t->name = bl_strdup(name);
        f->n++;
        if (!t->name) { st = BALORA_STATUS_NOMEM; goto fail; }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt)) FAIL("%s: tensor '%s': missing 'dtype'", path, name);
        int d = -1;
        for (int k = 0; k < BL_DTYPE_COUNT; k++) if (strcmp(dt->valuestring, g_dtypes[k].name) == 0) d = k;
        if (d < 0) FAIL("%s: tensor '%s': unsupported dtype '%s' (supported: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)", path, name, dt->valuestring);
        t->dtype = (bl_dtype)d;
        if (!cJSON_IsArray(sh)) FAIL("%s: tensor '%s': missing 'shape'", path, name);
        t->ndim = cJSON_GetArraySize(sh);
        if (t->ndim > BL_MAX_DIMS) FAIL("%s: tensor '%s': %d dimensions (at most %d)", path, name, t->ndim, BL_MAX_DIMS);
        t->numel = 1;
        int k = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, sh) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 9.0e15 || e->valuedouble != (double)(int64_t)e->valuedouble)
                FAIL("%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, k);
            t->shape[k] = (int64_t)e->valuedouble;
            if (t->shape[k] && t->numel > INT64_MAX / 8 / t->shape[k]) FAIL("%s: tensor '%s': shape too large", path, name);
            t->numel *= t->shape[k];
            k++;
        }
        if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2) FAIL("%s: tensor '%s': 'data_offsets' must be [begin, end]", path, name);
        const cJSON *ob = cJSON_GetArrayItem(off, 0), *oe = cJSON_GetArrayItem(off, 1);
        if (!cJSON_IsNumber(ob) || !cJSON_IsNumber(oe) || !(fabs(ob->valuedouble) <= 9.0e15) || !(fabs(oe->valuedouble) <= 9.0e15) ||
            ob->valuedouble != (double)(int64_t)ob->valuedouble || oe->valuedouble != (double)(int64_t)oe->valuedouble)
            FAIL("%s: tensor '%s': 'data_offsets' must be two integers", path, name);
        double b = ob->valuedouble, en = oe->valuedouble;
        if (!(b >= 0 && en >= b && en <= (double)buf_len))
            FAIL("%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu-byte data buffer (truncated file?)", path, name, b, en, buf_len);
        t->nbytes = (size_t)(en - b);
        if ((uint64_t)t->nbytes != (uint64_t)t->numel * bl_dtype_size(t->dtype))
            FAIL("%s: tensor '%s': %zu bytes of data but shape and dtype %s need %" PRId64, path, name, t->nbytes,
                 bl_dtype_name(t->dtype), t->numel * (int64_t)bl_dtype_size(t->dtype));
        t->data = f->buf + buf_start + (size_t)b;
    }
    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_tensor);
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) FAIL("%s: duplicate tensor name '%s'", path, f->tensors[i].name);
    /* offsets must tile the buffer from 0 with no holes or overlaps */
    {
        const bl_st_tensor **order = bl_calloc((size_t)f->n + 1, sizeof *order);
        if (!order) { st = BALORA_STATUS_NOMEM; goto fail; }
        for (int i = 0; i < f->n; i++) order[i] = &f->tensors[i];
        qsort(order, (size_t)f->n, sizeof *order, cmp_range);
        const char *pos = f->buf + buf_start;
        for (int i = 0; i < f->n; i++) {
            if ((const char *)order[i]->data != pos) {
                const char *nm = order[i]->name;
                free(order);
                FAIL("%s: tensor '%s': data does not follow the previous tensor (hole or overlap in data_offsets; tensors sorted by [begin, end] must tile the data buffer)", path, nm);
            }
            pos += order[i]->nbytes;
        }
        free(order);
        if (pos != f->buf + f->len)
            FAIL("%s: file is %zu bytes but the header accounts for %zu (trailing data or truncated)", path, f->len, (size_t)(pos - f->buf));
    }
    cJSON_Delete(hdr);
    return BALORA_STATUS_OK;
fail:
    cJSON_Delete(hdr);
    bl_st_close(f);
    return st;
}

const bl_st_tensor *bl_st_find(const bl_st_file *f, const char *name) {
    bl_st_tensor key = {.name = (char *)name};
    return bsearch(&key, f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_tensor);
}

const char *bl_st_meta(const bl_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++) if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

balora_status bl_st_tensor_to_f32(const bl_st_file *f, const bl_st_tensor *t, float *out) {
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case BL_DTYPE_F32: { float v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case BL_DTYPE_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = bl_f16_to_f32(v); break; }
        case BL_DTYPE_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = bl_bf16_to_f32(v); break; }
        case BL_DTYPE_F64: { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        case BL_DTYPE_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        case BL_DTYPE_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; break; }
        case BL_DTYPE_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = (float)v; break; }
        case BL_DTYPE_I8: out[i] = (float)(int8_t)p[i]; break;
        case BL_DTYPE_U8: case BL_DTYPE_BOOL: out[i] = (float)p[i]; break;
        default: return bl_fail(BALORA_STATUS_INTERNAL, "%s: tensor '%s': bad dtype", f->path, t->name);
        }
    }
    return BALORA_STATUS_OK;
}

balora_status bl_st_tensor_to_i64(const bl_st_file *f, const bl_st_tensor *t, int64_t *out) {
    const unsigned char *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case BL_DTYPE_I64: memcpy(&out[i], p + 8 * i, 8); break;
        case BL_DTYPE_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case BL_DTYPE_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case BL_DTYPE_I8: out[i] = (int8_t)p[i]; break;
        case BL_DTYPE_U8: case BL_DTYPE_BOOL: out[i] = p[i]; break;
        default:
            return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' has dtype %s; expected an integer dtype (I64, I32, ...)",
                           f->path, t->name, bl_dtype_name(t->dtype));
        }
    }
    return BALORA_STATUS_OK;
}

balora_status bl_st_read_f32(const bl_st_file *f, const char *name, int ndim, const int64_t *shape, float *out) {
    const bl_st_tensor *t = bl_st_find(f, name);
    if (!t) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing tensor '%s'", f->path, name);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) if (shape[i] >= 0 && shape[i] != t->shape[i]) ok = false;
    if (!ok) {
        char want[160] = "", got[160] = "";
        for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%" PRId64, i ? ", " : "", shape[i]);
        for (int i = 0; i < t->ndim; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64, i ? ", " : "", t->shape[i]);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' has shape [%s], expected [%s] (hint: wrong base model or config?)",
                       f->path, name, got, want);
    }
    if (t->dtype == BL_DTYPE_I64 || t->dtype == BL_DTYPE_I32 || t->dtype == BL_DTYPE_BOOL || t->dtype == BL_DTYPE_U8 ||
        t->dtype == BL_DTYPE_I16 || t->dtype == BL_DTYPE_I8)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' has dtype %s; expected a float dtype (F32, F16, BF16)",
                       f->path, name, bl_dtype_name(t->dtype));
    return bl_st_tensor_to_f32(f, t, out);
}

/* ---- writer ---- */
void bl_st_writer_init(bl_st_writer *w) { memset(w, 0, sizeof *w); }

balora_status bl_st_writer_add(bl_st_writer *w, const char *name, bl_dtype dt, int ndim, const int64_t *shape, const void *data) {
    if (ndim > BL_MAX_DIMS) return bl_fail(BALORA_STATUS_INVALID, "tensor '%s': too many dims", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        void *p = bl_realloc(w->items, (size_t)cap * sizeof *w->items);
        if (!p) return BALORA_STATUS_NOMEM;
        w->items = p; w->cap = cap;
    }
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->items[i].name, name) == 0) return bl_fail(BALORA_STATUS_INVALID, "tensor '%s' added twice", name);
    w->items[w->n].name = bl_strdup(name);
    if (!w->items[w->n].name) return BALORA_STATUS_NOMEM;
    w->items[w->n].dtype = dt;
    w->items[w->n].ndim = ndim;
    for (int i = 0; i < ndim; i++) w->items[w->n].shape[i] = shape[i];
    w->items[w->n].data = data;
    w->n++;
    return BALORA_STATUS_OK;
}

balora_status bl_st_writer_meta(bl_st_writer *w, const char *key, const char *val) {
    if (w->n_meta >= 32) return bl_fail(BALORA_STATUS_INVALID, "too many metadata entries");
    w->meta_keys[w->n_meta] = bl_strdup(key);
    w->meta_vals[w->n_meta] = bl_strdup(val);
    w->n_meta++;
    return BALORA_STATUS_OK;
}

static int cmp_item(const void *a, const void *b, void *w_) {
    const bl_st_writer *w = w_;
    int i = *(const int *)a, j = *(const int *)b;
    return strcmp(w->items[i].name, w->items[j].name);
}

balora_status bl_st_writer_save(bl_st_writer *w, const char *path) {
    int *order = bl_calloc((size_t)w->n + 1, sizeof(int));
    if (!order) return BALORA_STATUS_NOMEM;
    for (int i = 0; i < w->n; i++) order[i] = i;
    qsort_r(order, (size_t)w->n, sizeof(int), cmp_item, w);
    cJSON *hdr = cJSON_CreateObject();
    if (w->n_meta) {
        cJSON *m = cJSON_AddObjectToObject(hdr, "__metadata__");
        for (int i = 0; i < w->n_meta; i++) cJSON_AddStringToObject(m, w->meta_keys[i], w->meta_vals[i]);
    }
    size_t off = 0;
    for (int k = 0; k < w->n; k++) {
        int i = order[k];
        cJSON *e = cJSON_AddObjectToObject(hdr, w->items[i].name);
        cJSON_AddStringToObject(e, "dtype", bl_dtype_name(w->items[i].dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        size_t numel = 1;
        for (int d = 0; d < w->items[i].ndim; d++) { cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)w->items[i].shape[d])); numel *= (size_t)w->items[i].shape[d]; }
        size_t nb = numel * bl_dtype_size(w->items[i].dtype);
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *js = cJSON_PrintUnformatted(hdr);
    cJSON_Delete(hdr);
    if (!js) { free(order); return bl_fail(BALORA_STATUS_NOMEM, "%s: cannot build header", path); }
    size_t hl = strlen(js), padded = (hl + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    /* stream to path.tmp.<pid>, fsync, rename: no second copy of the data in memory */
    char tmp[4200];
    balora_status st = BALORA_STATUS_OK;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp)
        st = bl_fail(BALORA_STATUS_INVALID, "%s: path too long", path);
    FILE *f = st ? NULL : fopen(tmp, "wb");
    if (!st && !f) st = bl_fail(BALORA_STATUS_IO, "%s: cannot create: %s", tmp, strerror(errno));
    bool ok = f && fwrite(len8, 1, 8, f) == 8 && fwrite(js, 1, hl, f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int k = 0; ok && k < w->n; k++) {
        int i = order[k];
        size_t numel = 1;
        for (int d = 0; d < w->items[i].ndim; d++) numel *= (size_t)w->items[i].shape[d];
        size_t nb = numel * bl_dtype_size(w->items[i].dtype);
        ok = nb == 0 || fwrite(w->items[i].data, 1, nb, f) == nb;
    }
    if (f) {
        ok = ok && fflush(f) == 0 && (fsync(fileno(f)) == 0 || errno == EINVAL);
        int e = errno;
        ok = fclose(f) == 0 && ok;
        if (!ok) { unlink(tmp); st = bl_fail(BALORA_STATUS_IO, "%s: write failed: %s", path, strerror(e)); }
        else if (rename(tmp, path) != 0) {
            e = errno;
            unlink(tmp);
            st = bl_fail(BALORA_STATUS_IO, "%s: rename from %s failed: %s", path, tmp, strerror(e));
        }
    }
    free(js);
    free(order);
    return st;
}

void bl_st_writer_free(bl_st_writer *w) {
    for (int i = 0; i < w->n; i++) free(w->items[i].name);
    for (int i = 0; i < w->n_meta; i++) { free(w->meta_keys[i]); free(w->meta_vals[i]); }
    free(w->items);
    memset(w, 0, sizeof *w);
}
