/* Datasets, epoch order and batches (see data.h). */
#include "train/data.h"
#include "io/json.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const BL_ALPACA_TEMPLATE =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{query}\n\n### Response:";

static const char *const g_fmt_names[] = {"jsonl", "text", "tokens"};

balora_status bl_train_data_format_parse(const char *name, bl_train_data_format *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, g_fmt_names[i]) == 0) { *out = (bl_train_data_format)i; return BALORA_STATUS_OK; }
    return bl_fail(BALORA_STATUS_INVALID, "--data-format: unknown format '%s'; hint: jsonl, text or tokens", name);
}
const char *bl_train_data_format_name(bl_train_data_format f) { return (unsigned)f < 3 ? g_fmt_names[f] : "?"; }

void bl_train_data_cfg_default(bl_train_data_cfg *c) {
    memset(c, 0, sizeof *c);
    c->format = BL_TRAIN_DATA_JSONL;
    c->prompt_field = "query";
    c->response_field = "response";
    c->template_text = NULL;
    c->max_len = 512;
    c->vocab_size = 0;
}

/* ---- growable arrays used only while loading (then compacted into one arena) ---- */
typedef struct vec32 { int32_t *p; int64_t n, cap; } vec32;
typedef struct vec64 { int64_t *p; int64_t n, cap; } vec64;
static balora_status vec32_reserve(vec32 *v, int64_t extra) {
    if (v->n + extra <= v->cap) return BALORA_STATUS_OK;
    int64_t cap = v->cap ? v->cap : 1024;
    while (cap < v->n + extra) cap *= 2;
    int32_t *p = bl_realloc(v->p, (size_t)cap * sizeof *p);
    if (!p) return BALORA_STATUS_NOMEM;
    v->p = p; v->cap = cap;
    return BALORA_STATUS_OK;
}
static balora_status vec64_push(vec64 *v, int64_t x) {
    if (v->n == v->cap) {
        int64_t cap = v->cap ? v->cap * 2 : 256;
        int64_t *p = bl_realloc(v->p, (size_t)cap * sizeof *p);
        if (!p) return BALORA_STATUS_NOMEM;
        v->p = p; v->cap = cap;
    }
    v->p[v->n++] = x;
    return BALORA_STATUS_OK;
}

typedef struct loader {
    const char *path;
    const bl_train_data_cfg *cfg;
    const bl_train_tokenizer *tok;
    vec32 ids, labels;
    vec64 off, trained;
    int32_t *scratch;   /* tokenizer output */
    int64_t scratch_cap;
    char *text;         /* formatted prompt + response */
    size_t text_cap;
} loader;

/* Close the example that starts at off[last] (truncating it to max_len). */
static balora_status finish_example(loader *L, int64_t start) {
    int64_t len = L->ids.n - start;
    if (len > L->cfg->max_len) { L->ids.n = L->labels.n = start + L->cfg->max_len; len = L->cfg->max_len; }
    int64_t tr = 0;
    for (int64_t t = 1; t < len; t++) tr += L->labels.p[start + t] != BL_IGNORE_INDEX;
    BL_TRY(vec64_push(&L->off, L->ids.n));
    BL_TRY(vec64_push(&L->trained, tr));
    return BALORA_STATUS_OK;
}

static balora_status encode(loader *L, const char *text, size_t len, bool special, int64_t *n, int64_t line) {
    for (;;) {
        balora_status st = L->tok->encode(L->tok->self, text, len, special, L->scratch, L->scratch_cap, n);
        if (st) return line > 0 ? bl_fail_prefix(st, "%s:%lld: tokenizing", L->path, (long long)line)
                                : bl_fail_prefix(st, "%s: tokenizing", L->path);
        if (*n <= L->scratch_cap) return BALORA_STATUS_OK;
        int64_t cap = *n + 1024;
        int32_t *p = bl_realloc(L->scratch, (size_t)cap * sizeof *p);
        if (!p) return BALORA_STATUS_NOMEM;
        L->scratch = p; L->scratch_cap = cap;
    }
}

static balora_status check_utf8(const char *path, const char *s, size_t n, int64_t line) {
    size_t bad;
    if (bl_utf8_valid(s, n, &bad)) return BALORA_STATUS_OK;
    int64_t ln = line, col = 1;
    if (line <= 0) { /* whole file: find the line of the bad byte */
        ln = 1;
        for (size_t i = 0; i < bad; i++) { if (s[i] == '\n') { ln++; col = 1; } else col++; }
    } else {
        col = (int64_t)bad + 1;
    }
    return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: text is not valid UTF-8 (byte 0x%02x at column %lld); hint: convert the file to UTF-8",
                   path, (long long)ln, (unsigned)(unsigned char)s[bad], (long long)col);
}

static const cJSON *get_field(const cJSON *obj, const char *path, int64_t line, const char *key, bool required, balora_status *st) {
    *st = BALORA_STATUS_OK;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it && required)
        *st = bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: missing field '%s'; hint: set the field names with --prompt-field / --response-field, or the format with --data-format",
                      path, (long long)line, key);
    return it;
}

static balora_status jsonl_example(loader *L, const cJSON *obj, int64_t line) {
    const bl_train_data_cfg *c = L->cfg;
    balora_status st;
    const cJSON *q = get_field(obj, L->path, line, c->prompt_field, true, &st);
    if (st) return st;
    const cJSON *r = get_field(obj, L->path, line, c->response_field, true, &st);
    if (st) return st;
    if (!cJSON_IsString(q) || !cJSON_IsString(r))
        return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field '%s' must be a string", L->path, (long long)line,
                       cJSON_IsString(q) ? c->response_field : c->prompt_field);
    const char *tmpl = c->template_text ? c->template_text : BL_ALPACA_TEMPLATE;
    const char *hole = strstr(tmpl, "{query}");
    size_t ql = strlen(q->valuestring), rl = strlen(r->valuestring), tl = strlen(tmpl);
    size_t need = tl - 7 + ql + rl + 1;
    if (need > L->text_cap) {
        char *p = bl_realloc(L->text, need + 1024);
        if (!p) return BALORA_STATUS_NOMEM;
        L->text = p; L->text_cap = need + 1024;
    }
    size_t pre = (size_t)(hole - tmpl), pl = tl - 7 + ql;
    memcpy(L->text, tmpl, pre);
    memcpy(L->text + pre, q->valuestring, ql);
    memcpy(L->text + pre + ql, hole + 7, tl - pre - 7);
    memcpy(L->text + pl, r->valuestring, rl);
    L->text[pl + rl] = 0;
    /* prompt alone, then prompt + response: the prompt's token count masks the labels */
    int64_t np, nf;
    BL_TRY(encode(L, L->text, pl, true, &np, line));
    BL_TRY(encode(L, L->text, pl + rl, true, &nf, line));
    int64_t start = L->ids.n;
    BL_TRY(vec32_reserve(&L->ids, nf + 1));
    BL_TRY(vec32_reserve(&L->labels, nf + 1));
    for (int64_t t = 0; t < nf; t++) {
        int32_t id = L->scratch[t];
        if (c->vocab_size > 0 && (id < 0 || id >= c->vocab_size))
            return bl_fail(BALORA_STATUS_INVALID, "%s:%lld: the tokenizer produced id %d, outside the model's vocabulary of %lld; hint: tokenizer and model do not match",
                           L->path, (long long)line, id, (long long)c->vocab_size);
        L->ids.p[L->ids.n++] = id;
        L->labels.p[L->labels.n++] = t < np ? BL_IGNORE_INDEX : id;
    }
    if (L->tok->eos_id >= 0) { L->ids.p[L->ids.n++] = L->tok->eos_id; L->labels.p[L->labels.n++] = L->tok->eos_id; }
    return finish_example(L, start);
}

static balora_status int_array(const cJSON *arr, const char *path, int64_t line, const char *key, int64_t lo, int64_t vocab,
                               int32_t *out) {
    int64_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        double x = it->valuedouble;
        if (!cJSON_IsNumber(it) || x != floor(x))
            return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field '%s'[%lld] is not an integer", path, (long long)line, key, (long long)k);
        if (!((x >= 0 || x == lo) && x < (double)vocab))
            return bl_fail(BALORA_STATUS_INVALID, "%s:%lld: field '%s'[%lld] = %.0f is out of range; hint: ids must be in [0, %lld)%s",
                           path, (long long)line, key, (long long)k, x, (long long)vocab, lo < 0 ? " or -100 (untrained)" : "");
        out[k++] = (int32_t)x;
    }
    return BALORA_STATUS_OK;
}

static balora_status tokens_example(loader *L, const cJSON *obj, int64_t line) {
    balora_status st;
    const cJSON *ids = get_field(obj, L->path, line, "input_ids", true, &st);
    if (st) return st;
    const cJSON *lab = get_field(obj, L->path, line, "labels", false, &st);
    if (!cJSON_IsArray(ids)) return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field 'input_ids' must be an array of integers", L->path, (long long)line);
    int64_t n = cJSON_GetArraySize(ids);
    if (n == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field 'input_ids' is empty", L->path, (long long)line);
    if (lab && !cJSON_IsNull(lab)) {
        if (!cJSON_IsArray(lab)) return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: field 'labels' must be an array of integers", L->path, (long long)line);
        if (cJSON_GetArraySize(lab) != n)
            return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: 'labels' has %d entries but 'input_ids' has %lld; hint: they must have the same length",
                           L->path, (long long)line, cJSON_GetArraySize(lab), (long long)n);
    } else lab = NULL;
    int64_t start = L->ids.n;
    BL_TRY(vec32_reserve(&L->ids, n));
    BL_TRY(vec32_reserve(&L->labels, n));
    BL_TRY(int_array(ids, L->path, line, "input_ids", 0, L->cfg->vocab_size, L->ids.p + start));
    if (lab) BL_TRY(int_array(lab, L->path, line, "labels", BL_IGNORE_INDEX, L->cfg->vocab_size, L->labels.p + start));
    else memcpy(L->labels.p + start, L->ids.p + start, (size_t)n * sizeof(int32_t));
    L->ids.n = L->labels.n = start + n;
    return finish_example(L, start);
}

static balora_status load_lines(loader *L, char *buf, size_t len) {
    int64_t line = 0;
    size_t pos = 0;
    while (pos < len) {
        line++;
        char *s = buf + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
        if (k == n) continue; /* blank line */
        BL_TRY(check_utf8(L->path, s, n, line));
        const char *endp = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(s, n, &endp, false);
        if (!obj || !cJSON_IsObject(obj)) {
            long at = obj ? 0 : (long)(cJSON_GetErrorPtr() && cJSON_GetErrorPtr() >= s ? cJSON_GetErrorPtr() - s : 0);
            cJSON_Delete(obj);
            if (!obj) return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: bad JSON near column %ld; hint: one JSON object per line (JSONL)", L->path, (long long)line, at + 1);
            return bl_fail(BALORA_STATUS_FORMAT, "%s:%lld: expected a JSON object per line", L->path, (long long)line);
        }
        balora_status st = L->cfg->format == BL_TRAIN_DATA_TOKENS ? tokens_example(L, obj, line) : jsonl_example(L, obj, line);
        cJSON_Delete(obj);
        BL_TRY(st);
    }
    return BALORA_STATUS_OK;
}

static balora_status load_text(loader *L, const char *buf, size_t len) {
    BL_TRY(check_utf8(L->path, buf, len, 0));
    int64_t n;
    BL_TRY(encode(L, buf, len, true, &n, 0));
    int64_t T = L->cfg->max_len, blocks = n / T;
    if (blocks == 0 && n >= 2) blocks = 1; /* a short file: one block shorter than max_len */
    for (int64_t b = 0; b < blocks; b++) {
        int64_t m = n - b * T < T ? n - b * T : T, start = L->ids.n;
        BL_TRY(vec32_reserve(&L->ids, m));
        BL_TRY(vec32_reserve(&L->labels, m));
        for (int64_t t = 0; t < m; t++) {
            int32_t id = L->scratch[b * T + t];
            if (L->cfg->vocab_size > 0 && (id < 0 || id >= L->cfg->vocab_size))
                return bl_fail(BALORA_STATUS_INVALID, "%s: the tokenizer produced id %d, outside the model's vocabulary of %lld; hint: tokenizer and model do not match",
                               L->path, id, (long long)L->cfg->vocab_size);
            L->ids.p[L->ids.n++] = id;
            L->labels.p[L->labels.n++] = id;
        }
        BL_TRY(finish_example(L, start));
    }
    return BALORA_STATUS_OK;
}

balora_status bl_train_data_load(bl_train_data *d, const char *path, const bl_train_data_cfg *cfg, const bl_train_tokenizer *tok) {
    memset(d, 0, sizeof *d);
    if (cfg->max_len < 2) return bl_fail(BALORA_STATUS_INVALID, "--max-len %lld: must be at least 2", (long long)cfg->max_len);
    if (cfg->vocab_size <= 0 || cfg->vocab_size > INT32_MAX)
        return bl_fail(BALORA_STATUS_INVALID, "%s: dataset: vocabulary size %lld is invalid", path, (long long)cfg->vocab_size);
    if (cfg->format != BL_TRAIN_DATA_TOKENS && (!tok || !tok->encode))
        return bl_fail(BALORA_STATUS_INVALID, "%s: --data-format %s needs a tokenizer; hint: the model folder must hold tokenizer.json (or use --data-format tokens)",
                       path, bl_train_data_format_name(cfg->format));
    if (cfg->format == BL_TRAIN_DATA_JSONL) {
        const char *t = cfg->template_text ? cfg->template_text : BL_ALPACA_TEMPLATE;
        const char *h = strstr(t, "{query}");
        if (!h || strstr(h + 7, "{query}"))
            return bl_fail(BALORA_STATUS_INVALID, "--template: must contain {query} exactly once");
    }
    loader L = {.path = path, .cfg = cfg, .tok = tok};
    char *buf = NULL;
    size_t len = 0;
    balora_status st = bl_file_read(path, &buf, &len);
    if (!st && cfg->format != BL_TRAIN_DATA_TEXT) { /* a JSON array of records reads as JSONL: record N = line N */
        char *lines = NULL;
        size_t nl = 0;
        st = bl_json_array_as_lines(path, buf, len, &lines, &nl);
        if (lines) { free(buf); buf = lines; len = nl; }
    }
    if (!st) st = vec64_push(&L.off, 0);
    if (!st) st = cfg->format == BL_TRAIN_DATA_TEXT ? load_text(&L, buf, len) : load_lines(&L, buf, len);
    free(buf);
    int64_t n = L.off.n - 1;
    if (!st && n <= 0)
        st = bl_fail(BALORA_STATUS_INVALID, "%s: the dataset is empty%s", path,
                     cfg->format == BL_TRAIN_DATA_TEXT ? " (fewer than 2 tokens)" : " (no examples)");
    if (!st) {
        int64_t tr = 0;
        for (int64_t i = 0; i < n; i++) tr += L.trained.p[i];
        if (tr == 0) st = bl_fail(BALORA_STATUS_INVALID, "%s: no example has a trained token (every label is -100 or prompts fill --max-len %lld); hint: raise --max-len",
                                  path, (long long)cfg->max_len);
        d->total_trained = tr;
    }
    if (!st) { /* compact into one arena */
        bl_arena a = {0};
        bl_arena *ap = &a;
        int64_t nt = L.ids.n;
        for (int pass = 0; pass < 2 && !st; pass++) {
            d->off = bl_arena_take(&a, (size_t)(n + 1) * sizeof(int64_t));
            d->trained = bl_arena_take(&a, (size_t)n * sizeof(int64_t));
            d->ids = bl_arena_take(&a, (size_t)nt * sizeof(int32_t));
            d->labels = bl_arena_take(&a, (size_t)nt * sizeof(int32_t));
            if (pass == 0) st = bl_arena_alloc(&a);
        }
        if (!st) {
            memcpy(d->off, L.off.p, (size_t)(n + 1) * sizeof(int64_t));
            memcpy(d->trained, L.trained.p, (size_t)n * sizeof(int64_t));
            memcpy(d->ids, L.ids.p, (size_t)nt * sizeof(int32_t));
            memcpy(d->labels, L.labels.p, (size_t)nt * sizeof(int32_t));
            d->n = n;
            for (int64_t i = 0; i < n; i++) if (d->off[i + 1] - d->off[i] > d->max_len) d->max_len = d->off[i + 1] - d->off[i];
        }
        if (st) bl_arena_free(ap);
        else d->arena = a;
    }
    free(L.ids.p); free(L.labels.p); free(L.off.p); free(L.trained.p); free(L.scratch); free(L.text);
    if (st) memset(d, 0, sizeof *d);
    return st;
}

void bl_train_data_free(bl_train_data *d) { bl_arena_free(&d->arena); memset(d, 0, sizeof *d); }

void bl_train_data_order(const bl_train_data *d, uint64_t seed, int64_t epoch, bool shuffle, int64_t *perm) {
    for (int64_t i = 0; i < d->n; i++) perm[i] = i;
    if (!shuffle) return;
    bl_rng r;
    bl_rng_seed(&r, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1)));
    for (int64_t i = d->n - 1; i > 0; i--) {
        int64_t j = (int64_t)bl_rng_below(&r, (uint64_t)i + 1);
        int64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

balora_status bl_train_batch_init(bl_train_batch *b, int64_t cap_B, int64_t cap_T) {
    memset(b, 0, sizeof *b);
    if (cap_B <= 0 || cap_T <= 0) return bl_fail(BALORA_STATUS_INVALID, "batch: size %lld x %lld is invalid", (long long)cap_B, (long long)cap_T);
    b->cap_B = cap_B; b->cap_T = cap_T;
    size_t n = (size_t)(cap_B * cap_T);
    for (int pass = 0; pass < 2; pass++) {
        b->ids = bl_arena_take(&b->arena, n * sizeof(int64_t));
        b->labels = bl_arena_take(&b->arena, n * sizeof(int64_t));
        b->mask = bl_arena_take(&b->arena, n * sizeof(int64_t));
        b->types_buf = bl_arena_take(&b->arena, n * sizeof(int64_t));
        b->cls_buf = bl_arena_take(&b->arena, (size_t)cap_B * sizeof(int64_t));
        b->targets_buf = bl_arena_take(&b->arena, (size_t)cap_B * sizeof(float));
        if (pass == 0) BL_TRY(bl_arena_alloc(&b->arena));
    }
    return BALORA_STATUS_OK;
}
void bl_train_batch_free(bl_train_batch *b) { bl_arena_free(&b->arena); memset(b, 0, sizeof *b); }

void bl_train_batch_fill(bl_train_batch *b, const bl_train_data *d, const int64_t *idx, int64_t n, bool pad_to_max, int32_t pad_id) {
    int64_t T = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t len = d->off[idx[i] + 1] - d->off[idx[i]];
        if (len > T) T = len;
    }
    if (pad_to_max || T > b->cap_T) T = b->cap_T;
    b->kind = d->kind;
    b->B = n; b->T = T;
    b->n_trained = b->n_tokens = 0;
    b->types = d->types ? b->types_buf : NULL;
    b->cls_labels = d->cls_label ? b->cls_buf : NULL;
    b->targets = d->target ? b->targets_buf : NULL;
    const int64_t t0 = d->kind == BL_TRAIN_LABELS_NEXT_TOKEN ? 1 : 0; /* position 0 has no previous token to predict it */
    for (int64_t i = 0; i < n; i++) {
        int64_t s = d->off[idx[i]], len = d->off[idx[i] + 1] - s;
        if (len > T) len = T;
        int64_t *ids = b->ids + i * T, *lab = b->labels + i * T, *mask = b->mask + i * T;
        for (int64_t t = 0; t < T; t++) {
            bool real = t < len;
            ids[t] = real ? d->ids[s + t] : pad_id;
            lab[t] = real && d->labels ? d->labels[s + t] : BL_IGNORE_INDEX;
            mask[t] = real;
            if (real && t >= t0 && lab[t] != BL_IGNORE_INDEX) b->n_trained++;
        }
        if (b->types)
            for (int64_t t = 0; t < T; t++) b->types[i * T + t] = t < len ? d->types[s + t] : 0;
        if (b->cls_labels) b->cls_labels[i] = d->cls_label[idx[i]];
        if (b->targets) b->targets[i] = d->target[idx[i]];
        if (d->kind == BL_TRAIN_LABELS_CLASS) b->n_trained += d->trained[idx[i]];
        b->n_tokens += len;
    }
}
