/* Tokenizer loading: tokenizer.json (the `tokenizers` format), vocab.json + merges.txt,
 * encoder.json + vocab.bpe, vocab.txt and tokenizer.model (tok_spm.c), into the pipeline of
 * tok_internal.h. Every malformed field gets "FILE: field ...: what; hint: ..." and no crash. */
#include "tok/tok_internal.h"
#include "io/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The GPT-2 pre-tokenization regex (ByteLevel with use_regex). */
const char *const tok_gpt2_pattern = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* ------------------------------------------------------------------ byte-level alphabet */

static uint16_t g_b2c[256];
static int16_t g_c2b[324];
static void byte_tables(void) {
    static int done;
    if (done) return;
    int n = 0;
    for (int i = 0; i < 324; i++) g_c2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        g_b2c[b] = (uint16_t)(keep ? b : 256 + n++);
    }
    for (int b = 0; b < 256; b++) g_c2b[g_b2c[b]] = (int16_t)b;
    done = 1;
}

int tok_byte_char(int byte, char out[3]) {
    byte_tables();
    uint32_t c = g_b2c[byte & 0xFF];
    if (c < 0x80) { out[0] = (char)c; return 1; }
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
}

int tok_char_byte(uint32_t cp) {
    byte_tables();
    return cp < 324 ? g_c2b[cp] : -1;
}

/* ------------------------------------------------------------------ maps */

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ull; }
    return h;
}

int32_t idmap_get(const bl_tok *t, const char *s, size_t len) {
    const idmap *m = &t->vmap;
    if (!m->slot) return -1;
    for (size_t k = fnv(s, len) & m->mask;; k = (k + 1) & m->mask) {
        int32_t id = m->slot[k];
        if (id < 0) return -1;
        if (t->len[id] == len && memcmp(t->str[id], s, len) == 0) return id;
    }
}

static balora_status idmap_insert(bl_tok *t, int32_t id) {
    idmap *m = &t->vmap;
    for (size_t k = fnv(t->str[id], t->len[id]) & m->mask;; k = (k + 1) & m->mask) {
        int32_t o = m->slot[k];
        if (o < 0) { m->slot[k] = id; return BALORA_STATUS_OK; }
        if (o == id) return BALORA_STATUS_OK;
        if (t->len[o] == t->len[id] && memcmp(t->str[o], t->str[id], t->len[id]) == 0) return BALORA_STATUS_OK; /* keep the first id */
    }
}

/* Builds the vocabulary map over ids whose `in_model` flag is set (all when NULL). */
static balora_status idmap_build(bl_tok *t, const uint8_t *in_model) {
    size_t cap = 1024;
    while (cap < (size_t)t->n_vocab * 2 + 2) cap *= 2;
    free(t->vmap.slot);
    t->vmap.slot = bl_malloc(cap * sizeof(int32_t));
    if (!t->vmap.slot) return BALORA_STATUS_NOMEM;
    t->vmap.mask = cap - 1;
    for (size_t k = 0; k < cap; k++) t->vmap.slot[k] = -1;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->str[id] && (!in_model || in_model[id])) BL_TRY(idmap_insert(t, id));
    return BALORA_STATUS_OK;
}

balora_status tok_pairmap_init(pairmap *m, size_t n) {
    size_t cap = 1024;
    while (cap < n * 2 + 2) cap *= 2;
    free(m->e);
    m->e = bl_malloc(cap * sizeof *m->e);
    if (!m->e) return BALORA_STATUS_NOMEM;
    m->mask = cap - 1;
    for (size_t k = 0; k < cap; k++) m->e[k].key = UINT64_MAX;
    return BALORA_STATUS_OK;
}

static uint64_t mix64(uint64_t x) { x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33; return x; }

balora_status pairmap_put(pairmap *m, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t k = mix64(key) & m->mask;; k = (k + 1) & m->mask) {
        if (m->e[k].key == key) return BALORA_STATUS_OK; /* first (lowest-rank) merge wins, as in HF */
        if (m->e[k].key == UINT64_MAX) { m->e[k] = (pairent){key, rank, merged}; return BALORA_STATUS_OK; }
    }
}

bool pairmap_get(const pairmap *m, int32_t a, int32_t b, int32_t *rank, int32_t *merged) {
    if (!m->e) return false;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t k = mix64(key) & m->mask;; k = (k + 1) & m->mask) {
        const pairent *x = &m->e[k];
        if (x->key == key) { *rank = x->rank; *merged = x->merged; return true; }
        if (x->key == UINT64_MAX) return false;
    }
}

/* ------------------------------------------------------------------ vocabulary storage */

balora_status tok_vocab_reserve(bl_tok *t, int32_t n) {
    if (n <= t->n_vocab) return BALORA_STATUS_OK;
    if (n > t->vocab_cap) { /* grow geometrically: vocab.txt adds one id at a time */
        int32_t cap = t->vocab_cap ? t->vocab_cap : 1024;
        while (cap < n) cap = cap > INT32_MAX / 2 ? n : cap * 2;
        char **s = bl_realloc(t->str, (size_t)cap * sizeof *s);
        if (!s) return BALORA_STATUS_NOMEM;
        t->str = s;
        uint32_t *l = bl_realloc(t->len, (size_t)cap * sizeof *l);
        if (!l) return BALORA_STATUS_NOMEM;
        t->len = l;
        uint8_t *sp = bl_realloc(t->is_special, (size_t)cap);
        if (!sp) return BALORA_STATUS_NOMEM;
        t->is_special = sp;
        t->vocab_cap = cap;
    }
    for (int32_t i = t->n_vocab; i < n; i++) { t->str[i] = NULL; t->len[i] = 0; t->is_special[i] = 0; }
    t->n_vocab = n;
    return BALORA_STATUS_OK;
}

/* Strings are kept in t->pool as offsets while loading (the pool moves); finish_common makes them pointers. */
balora_status tok_vocab_add(bl_tok *t, int32_t id, const char *s, size_t len) {
    if (id < 0 || id > 100000000) return bl_fail(BALORA_STATUS_FORMAT, "tokenizer: token id %d is out of range", id);
    BL_TRY(tok_vocab_reserve(t, id + 1));
    if (t->pool_len + len + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 16;
        while (cap < t->pool_len + len + 1) cap *= 2;
        char *p = bl_realloc(t->pool, cap);
        if (!p) return BALORA_STATUS_NOMEM;
        t->pool = p;
        t->pool_cap = cap;
    }
    memcpy(t->pool + t->pool_len, s, len);
    t->pool[t->pool_len + len] = 0;
    t->str[id] = (char *)(uintptr_t)(t->pool_len + 1); /* offset + 1; 0 = hole */
    t->len[id] = (uint32_t)len;
    t->pool_len += len + 1;
    return BALORA_STATUS_OK;
}

static balora_status add_added(bl_tok *t, int32_t id, const char *content, bool special, bool lstrip, bool rstrip, bool single_word, bool normalized) {
    if (!content || !*content) return bl_fail(BALORA_STATUS_FORMAT, "tokenizer: added token %d has empty content", id);
    for (int k = 0; k < t->n_added; k++)
        if (!strcmp(t->added[k].content, content)) { t->added[k].special |= special; return BALORA_STATUS_OK; }
    tadded *a = bl_realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a) return BALORA_STATUS_NOMEM;
    t->added = a;
    char *c = bl_strdup(content);
    if (!c) return BALORA_STATUS_NOMEM;
    t->added[t->n_added++] = (tadded){id, c, strlen(c), special, lstrip, rstrip, single_word, normalized};
    if (id >= t->n_vocab || !t->str[id]) BL_TRY(tok_vocab_add(t, id, content, strlen(content)));
    return BALORA_STATUS_OK;
}

balora_status tok_compile(const char *what, const char *pattern, size_t len, bool literal, pcre2_code **out) {
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0), &err, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: the regex '%.*s' does not compile at offset %zu: %s", what, (int)len, pattern, (size_t)eoff, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
    *out = re;
    return BALORA_STATUS_OK;
}

/* Final step of every loader: pointers into the pool, byte tables, maps, roles, scratch. */
static balora_status finish_common(bl_tok *t, const char *what, const uint8_t *in_model) {
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uintptr_t o = (uintptr_t)t->str[i];
        t->str[i] = o ? t->pool + (o - 1) : NULL;
    }
    BL_TRY(idmap_build(t, in_model));
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int n;
        if (t->byte_level) n = tok_byte_char(b, buf);
        else n = snprintf(buf, sizeof buf, "<0x%02X>", b);
        t->byte_id[b] = idmap_get(t, buf, (size_t)n);
    }
    for (int k = 0; k < t->n_added; k++) {
        if (t->added[k].special) t->is_special[t->added[k].id] = 1;
        if (t->added[k].normalized) { t->added_first_norm[(unsigned char)t->added[k].content[0]] = 1; t->has_norm_added = true; }
        else t->added_first[(unsigned char)t->added[k].content[0]] = 1;
    }
    if (t->model == BL_TOK_MODEL_BPE && t->byte_level) {
        int missing = 0;
        for (int b = 0; b < 256; b++) missing += t->byte_id[b] < 0;
        if (missing == 256) return bl_fail(BALORA_STATUS_FORMAT, "%s: byte-level BPE but the vocabulary has none of the 256 byte characters; hint: is the ByteLevel pre-tokenizer right for this vocabulary?", what);
    }
    t->md = pcre2_match_data_create(4, NULL);
    if (!t->md) return bl_fail(BALORA_STATUS_NOMEM, "%s: out of memory", what);
    return BALORA_STATUS_OK;
}

static void set_role_by_name(bl_tok *t, bl_tok_role r, const char *const *names) {
    if (t->role[r] >= 0) return;
    for (int i = 0; names[i]; i++) {
        int32_t id = bl_tok_token_to_id(t, names[i]);
        if (id >= 0) { t->role[r] = id; return; }
    }
}

static void default_roles(bl_tok *t) {
    static const char *const bos[] = {"<s>", "<|begin_of_text|>", "<bos>", "<|endoftext|>", NULL};
    static const char *const eos[] = {"</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>", NULL};
    static const char *const pad[] = {"<pad>", "[PAD]", NULL};
    static const char *const unk[] = {"<unk>", "[UNK]", "<|endoftext|>", NULL};
    static const char *const cls[] = {"[CLS]", NULL};
    static const char *const sep[] = {"[SEP]", NULL};
    static const char *const mask[] = {"[MASK]", "<mask>", NULL};
    if (t->role[BL_TOK_UNK] < 0 && t->unk_id >= 0) t->role[BL_TOK_UNK] = t->unk_id;
    set_role_by_name(t, BL_TOK_BOS, bos);
    set_role_by_name(t, BL_TOK_EOS, eos);
    set_role_by_name(t, BL_TOK_PAD, pad);
    set_role_by_name(t, BL_TOK_UNK, unk);
    set_role_by_name(t, BL_TOK_CLS, cls);
    set_role_by_name(t, BL_TOK_SEP, sep);
    set_role_by_name(t, BL_TOK_MASK, mask);
}

/* tokenizer_config.json: special-token names (a string or {"content": ...}). Returns an error only
 * for a malformed file; absent file = OK. */
static balora_status apply_config(const char *dir, cJSON **cfg_out) {
    *cfg_out = NULL;
    char path[4200];
    if (bl_path_join(path, sizeof path, dir, "tokenizer_config.json") != BALORA_STATUS_OK || !bl_file_exists(path)) {
        bl_clear_error();
        return BALORA_STATUS_OK;
    }
    cJSON *cfg;
    BL_TRY(bl_json_load(path, &cfg));
    if (!cJSON_IsObject(cfg)) { cJSON_Delete(cfg); return bl_fail(BALORA_STATUS_FORMAT, "%s: expected a JSON object", path); }
    *cfg_out = cfg;
    return BALORA_STATUS_OK;
}

static const char *cfg_token_name(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static void roles_from_config(bl_tok *t, const cJSON *cfg) {
    if (!cfg) return;
    const cJSON *cu = cJSON_GetObjectItemCaseSensitive(cfg, "clean_up_tokenization_spaces");
    if (cJSON_IsBool(cu)) t->cleanup_spaces = cJSON_IsTrue(cu) ? 1 : 0;
    static const char *const keys[BL_TOK_N_ROLES] = {"bos_token", "eos_token", "pad_token", "unk_token", "cls_token", "sep_token", "mask_token"};
    for (int r = 0; r < BL_TOK_N_ROLES; r++) {
        const char *name = cfg_token_name(cfg, keys[r]);
        if (name) {
            int32_t id = bl_tok_token_to_id(t, name);
            if (id >= 0) t->role[r] = id;
        }
    }
}

/* Added tokens declared in tokenizer_config.json's added_tokens_decoder (older folders). */
static balora_status added_from_config(bl_tok *t, const cJSON *cfg, const char *path) {
    const cJSON *atd = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder") : NULL;
    if (!cJSON_IsObject(atd)) return BALORA_STATUS_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, atd) {
        char *end;
        long id = strtol(it->string, &end, 10);
        const char *content = NULL;
        BL_TRY(bl_json_str(it, path, "content", true, &content));
        if (*end || id < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'added_tokens_decoder': key '%s' is not a token id", path, it->string);
        bool special = false, lstrip = false, rstrip = false, sw = false, normalized = false;
        BL_TRY(bl_json_bool(it, path, "special", false, &special));
        BL_TRY(bl_json_bool(it, path, "lstrip", false, &lstrip));
        BL_TRY(bl_json_bool(it, path, "rstrip", false, &rstrip));
        BL_TRY(bl_json_bool(it, path, "single_word", false, &sw));
        BL_TRY(bl_json_bool(it, path, "normalized", false, &normalized));
        BL_TRY(add_added(t, (int32_t)id, content, special, lstrip, rstrip, sw, normalized));
    }
    return BALORA_STATUS_OK;
}

static bl_tok *tok_new(void) {
    bl_tok *t = bl_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->unk_id = -1;
    t->cleanup_spaces = -1;
    t->max_input_chars = 100;
    for (int r = 0; r < BL_TOK_N_ROLES; r++) t->role[r] = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
}

static void tpl_special(ttpl_item *it, int32_t id, int type) { *it = (ttpl_item){.seq = -1, .type_id = type, .n_ids = 1, .ids = {id}}; }
static void tpl_seq(ttpl_item *it, int seq, int type) { *it = (ttpl_item){.seq = seq, .type_id = type}; }

static void tpl_bert(ttpl *p, int32_t cls, int32_t sep) {
    p->present = true;
    p->n_single = 3;
    tpl_special(&p->single[0], cls, 0); tpl_seq(&p->single[1], 0, 0); tpl_special(&p->single[2], sep, 0);
    p->n_pair = 5;
    tpl_special(&p->pair[0], cls, 0); tpl_seq(&p->pair[1], 0, 0); tpl_special(&p->pair[2], sep, 0);
    tpl_seq(&p->pair[3], 1, 1); tpl_special(&p->pair[4], sep, 1);
}

static void tpl_roberta(ttpl *p, int32_t cls, int32_t sep) {
    p->present = true;
    p->n_single = 3;
    tpl_special(&p->single[0], cls, 0); tpl_seq(&p->single[1], 0, 0); tpl_special(&p->single[2], sep, 0);
    p->n_pair = 6;
    tpl_special(&p->pair[0], cls, 0); tpl_seq(&p->pair[1], 0, 0); tpl_special(&p->pair[2], sep, 0);
    tpl_special(&p->pair[3], sep, 1); tpl_seq(&p->pair[4], 1, 1); tpl_special(&p->pair[5], sep, 1);
}

/* ------------------------------------------------------------------ tokenizer.json components */

static char *dupstr(const char *s) { return bl_strdup(s ? s : ""); }

static balora_status get_pattern(const cJSON *o, const char *what, const char **pat, bool *is_regex) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "pattern");
    if (!cJSON_IsObject(p)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'pattern' must be {\"String\": ...} or {\"Regex\": ...}", what);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(p, "String"), *r = cJSON_GetObjectItemCaseSensitive(p, "Regex");
    if (cJSON_IsString(s)) { *pat = s->valuestring; *is_regex = false; return BALORA_STATUS_OK; }
    if (cJSON_IsString(r)) { *pat = r->valuestring; *is_regex = true; return BALORA_STATUS_OK; }
    return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'pattern' must be {\"String\": ...} or {\"Regex\": ...}", what);
}

static const char *type_of(const cJSON *o) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(ty) ? ty->valuestring : NULL;
}

static balora_status base64_decode(const char *in, uint8_t **out, size_t *n_out) {
    size_t n = strlen(in);
    uint8_t *o = bl_malloc(n / 4 * 3 + 4);
    if (!o) return BALORA_STATUS_NOMEM;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : -1;
        if (c == '=') break;
        if (v < 0) { free(o); return bl_fail(BALORA_STATUS_FORMAT, "tokenizer: invalid base64 character at offset %zu", i); }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) { bits -= 8; o[k++] = (uint8_t)(acc >> bits); }
    }
    *out = o;
    *n_out = k;
    return BALORA_STATUS_OK;
}

static balora_status parse_norm(const cJSON *o, const char *file, tnorm *n, int depth) {
    char what[300];
    snprintf(what, sizeof what, "%s: field 'normalizer'", file);
    if (depth > 8) return bl_fail(BALORA_STATUS_FORMAT, "%s: nested too deeply", what);
    const char *ty = type_of(o);
    if (!ty) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing 'type'", what);
    memset(n, 0, sizeof *n);
    if (!strcmp(ty, "Sequence")) {
        n->kind = TN_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "normalizers");
        if (!cJSON_IsArray(arr)) return bl_fail(BALORA_STATUS_FORMAT, "%s: Sequence needs an array 'normalizers'", what);
        int k = cJSON_GetArraySize(arr);
        n->sub = bl_calloc((size_t)k + 1, sizeof *n->sub);
        if (!n->sub) return BALORA_STATUS_NOMEM;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) { tnorm *sub = &n->sub[n->n_sub++]; BL_TRY(parse_norm(it, file, sub, depth + 1)); }
    } else if (!strcmp(ty, "Prepend")) {
        const char *s = NULL;
        n->kind = TN_PREPEND;
        BL_TRY(bl_json_str(o, what, "prepend", true, &s));
        if (!(n->a = dupstr(s))) return BALORA_STATUS_NOMEM;
    } else if (!strcmp(ty, "Replace")) {
        const char *pat, *content = NULL;
        bool rx;
        n->kind = TN_REPLACE;
        BL_TRY(get_pattern(o, what, &pat, &rx));
        BL_TRY(bl_json_str(o, what, "content", true, &content));
        if (!(n->a = dupstr(pat)) || !(n->b = dupstr(content))) return BALORA_STATUS_NOMEM;
        if (rx) BL_TRY(tok_compile(what, pat, strlen(pat), false, &n->re));
    } else if (!strcmp(ty, "NFC")) n->kind = TN_NFC;
    else if (!strcmp(ty, "NFD")) n->kind = TN_NFD;
    else if (!strcmp(ty, "NFKC")) n->kind = TN_NFKC;
    else if (!strcmp(ty, "NFKD")) n->kind = TN_NFKD;
    else if (!strcmp(ty, "Lowercase")) n->kind = TN_LOWERCASE;
    else if (!strcmp(ty, "StripAccents")) n->kind = TN_STRIP_ACCENTS;
    else if (!strcmp(ty, "ByteLevel")) n->kind = TN_BYTELEVEL;
    else if (!strcmp(ty, "Strip")) {
        n->kind = TN_STRIP;
        n->left = n->right = true;
        BL_TRY(bl_json_bool(o, what, "strip_left", false, &n->left));
        BL_TRY(bl_json_bool(o, what, "strip_right", false, &n->right));
    } else if (!strcmp(ty, "BertNormalizer")) {
        n->kind = TN_BERT;
        n->clean_text = n->chinese = n->lowercase = true;
        BL_TRY(bl_json_bool(o, what, "clean_text", false, &n->clean_text));
        BL_TRY(bl_json_bool(o, what, "handle_chinese_chars", false, &n->chinese));
        BL_TRY(bl_json_bool(o, what, "lowercase", false, &n->lowercase));
        n->strip_accents = n->lowercase;
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(o, "strip_accents");
        if (cJSON_IsBool(sa)) n->strip_accents = cJSON_IsTrue(sa);
    } else if (!strcmp(ty, "Precompiled")) {
        const char *b64 = NULL;
        n->kind = TN_PRECOMPILED;
        BL_TRY(bl_json_str(o, what, "precompiled_charsmap", true, &b64));
        BL_TRY(base64_decode(b64, &n->charsmap, &n->charsmap_len));
        BL_TRY(tok_charsmap_check(what, n->charsmap, n->charsmap_len));
    } else {
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: unknown normalizer type '%s'; hint: supported are Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, BertNormalizer, Precompiled, ByteLevel", what, ty);
    }
    return BALORA_STATUS_OK;
}

static balora_status parse_behavior(const cJSON *o, const char *what, tsplit_behavior *b) {
    const char *s = NULL;
    BL_TRY(bl_json_str(o, what, "behavior", false, &s));
    if (!s) return BALORA_STATUS_OK;
    if (!strcmp(s, "Removed")) *b = TS_REMOVED;
    else if (!strcmp(s, "Isolated")) *b = TS_ISOLATED;
    else if (!strcmp(s, "MergedWithPrevious")) *b = TS_MERGED_PREV;
    else if (!strcmp(s, "MergedWithNext")) *b = TS_MERGED_NEXT;
    else if (!strcmp(s, "Contiguous")) *b = TS_CONTIGUOUS;
    else return bl_fail(BALORA_STATUS_FORMAT, "%s: unknown split behavior '%s'", what, s);
    return BALORA_STATUS_OK;
}

static balora_status parse_prepend_scheme(const cJSON *o, const char *what, int *prepend) {
    const char *ps = NULL;
    BL_TRY(bl_json_str(o, what, "prepend_scheme", false, &ps));
    *prepend = 2;
    if (ps) {
        if (!strcmp(ps, "always")) *prepend = 2;
        else if (!strcmp(ps, "first")) *prepend = 1;
        else if (!strcmp(ps, "never")) *prepend = 0;
        else return bl_fail(BALORA_STATUS_FORMAT, "%s: unknown prepend_scheme '%s'", what, ps);
    } else {
        bool aps = true;
        BL_TRY(bl_json_bool(o, what, "add_prefix_space", false, &aps));
        *prepend = aps ? 2 : 0;
    }
    return BALORA_STATUS_OK;
}

static balora_status parse_repl(const cJSON *o, const char *what, char repl[8]) {
    const char *r = "\xE2\x96\x81";
    BL_TRY(bl_json_str(o, what, "replacement", false, &r));
    if (!r || strlen(r) == 0 || strlen(r) > 7) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'replacement' must be one character", what);
    snprintf(repl, 8, "%s", r);
    return BALORA_STATUS_OK;
}

static balora_status parse_pre(bl_tok *t, const cJSON *o, const char *file, tpre *p, int depth) {
    char what[300];
    snprintf(what, sizeof what, "%s: field 'pre_tokenizer'", file);
    if (depth > 8) return bl_fail(BALORA_STATUS_FORMAT, "%s: nested too deeply", what);
    const char *ty = type_of(o);
    if (!ty) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing 'type'", what);
    memset(p, 0, sizeof *p);
    if (!strcmp(ty, "Sequence")) {
        p->kind = TP_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
        if (!cJSON_IsArray(arr)) return bl_fail(BALORA_STATUS_FORMAT, "%s: Sequence needs an array 'pretokenizers'", what);
        p->sub = bl_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *p->sub);
        if (!p->sub) return BALORA_STATUS_NOMEM;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) { tpre *sub = &p->sub[p->n_sub++]; BL_TRY(parse_pre(t, it, file, sub, depth + 1)); }
    } else if (!strcmp(ty, "ByteLevel")) {
        bool use_regex = true;
        p->kind = TP_BYTELEVEL;
        p->add_prefix_space = true;
        BL_TRY(bl_json_bool(o, what, "add_prefix_space", false, &p->add_prefix_space));
        BL_TRY(bl_json_bool(o, what, "use_regex", false, &use_regex));
        if (use_regex) BL_TRY(tok_compile(what, tok_gpt2_pattern, strlen(tok_gpt2_pattern), false, &p->re));
        t->byte_level = true;
    } else if (!strcmp(ty, "Split")) {
        const char *pat;
        bool rx;
        p->kind = TP_SPLIT;
        p->behavior = TS_ISOLATED;
        BL_TRY(get_pattern(o, what, &pat, &rx));
        BL_TRY(parse_behavior(o, what, &p->behavior));
        BL_TRY(bl_json_bool(o, what, "invert", false, &p->invert));
        BL_TRY(tok_compile(what, pat, strlen(pat), !rx, &p->re));
    } else if (!strcmp(ty, "Metaspace")) {
        p->kind = TP_METASPACE;
        p->split = true;
        BL_TRY(parse_repl(o, what, p->repl));
        BL_TRY(parse_prepend_scheme(o, what, &p->prepend));
        BL_TRY(bl_json_bool(o, what, "split", false, &p->split));
    } else if (!strcmp(ty, "BertPreTokenizer")) p->kind = TP_BERT;
    else if (!strcmp(ty, "Whitespace")) p->kind = TP_WHITESPACE;
    else if (!strcmp(ty, "WhitespaceSplit")) p->kind = TP_WHITESPACE_SPLIT;
    else if (!strcmp(ty, "Digits")) {
        p->kind = TP_DIGITS;
        BL_TRY(bl_json_bool(o, what, "individual_digits", false, &p->individual_digits));
    } else if (!strcmp(ty, "Punctuation")) {
        p->kind = TP_PUNCTUATION;
        p->behavior = TS_ISOLATED;
        BL_TRY(parse_behavior(o, what, &p->behavior));
    } else {
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: unknown pre-tokenizer type '%s'; hint: supported are Sequence, ByteLevel, Split, Metaspace, BertPreTokenizer, Whitespace, WhitespaceSplit, Digits, Punctuation", what, ty);
    }
    return BALORA_STATUS_OK;
}

static balora_status parse_dec(const cJSON *o, const char *file, tdec *d, int depth) {
    char what[300];
    snprintf(what, sizeof what, "%s: field 'decoder'", file);
    if (depth > 8) return bl_fail(BALORA_STATUS_FORMAT, "%s: nested too deeply", what);
    const char *ty = type_of(o);
    if (!ty) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing 'type'", what);
    memset(d, 0, sizeof *d);
    if (!strcmp(ty, "Sequence")) {
        d->kind = TD_SEQUENCE;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "decoders");
        if (!cJSON_IsArray(arr)) return bl_fail(BALORA_STATUS_FORMAT, "%s: Sequence needs an array 'decoders'", what);
        d->sub = bl_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *d->sub);
        if (!d->sub) return BALORA_STATUS_NOMEM;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) { tdec *sub = &d->sub[d->n_sub++]; BL_TRY(parse_dec(it, file, sub, depth + 1)); }
    } else if (!strcmp(ty, "ByteLevel")) d->kind = TD_BYTELEVEL;
    else if (!strcmp(ty, "ByteFallback")) d->kind = TD_BYTE_FALLBACK;
    else if (!strcmp(ty, "Fuse")) d->kind = TD_FUSE;
    else if (!strcmp(ty, "Replace")) {
        const char *pat, *content = NULL;
        bool rx;
        d->kind = TD_REPLACE;
        BL_TRY(get_pattern(o, what, &pat, &rx));
        if (rx) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: Replace decoder with a regex pattern is not supported", what);
        BL_TRY(bl_json_str(o, what, "content", true, &content));
        if (!(d->a = dupstr(pat)) || !(d->b = dupstr(content))) return BALORA_STATUS_NOMEM;
    } else if (!strcmp(ty, "Strip")) {
        const char *c = " ";
        int64_t start = 0, stop = 0;
        d->kind = TD_STRIP;
        BL_TRY(bl_json_str(o, what, "content", false, &c));
        BL_TRY(bl_json_int(o, what, "start", false, &start));
        BL_TRY(bl_json_int(o, what, "stop", false, &stop));
        if (start < 0 || stop < 0 || start > 1000 || stop > 1000) return bl_fail(BALORA_STATUS_FORMAT, "%s: Strip start/stop out of range", what);
        d->start = (int)start; d->stop = (int)stop;
        if (!(d->a = dupstr(c))) return BALORA_STATUS_NOMEM;
    } else if (!strcmp(ty, "Metaspace")) {
        d->kind = TD_METASPACE;
        BL_TRY(parse_repl(o, what, d->repl));
        BL_TRY(parse_prepend_scheme(o, what, &d->prepend));
    } else if (!strcmp(ty, "WordPiece")) {
        const char *pre = "##";
        d->kind = TD_WORDPIECE;
        d->cleanup = true;
        BL_TRY(bl_json_str(o, what, "prefix", false, &pre));
        BL_TRY(bl_json_bool(o, what, "cleanup", false, &d->cleanup));
        if (!(d->a = dupstr(pre))) return BALORA_STATUS_NOMEM;
    } else if (!strcmp(ty, "BPEDecoder")) {
        const char *suf = "</w>";
        d->kind = TD_BPE_SUFFIX;
        BL_TRY(bl_json_str(o, what, "suffix", false, &suf));
        if (!(d->a = dupstr(suf))) return BALORA_STATUS_NOMEM;
    } else {
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: unknown decoder type '%s'; hint: supported are Sequence, ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, WordPiece, BPEDecoder", what, ty);
    }
    return BALORA_STATUS_OK;
}

/* A JSON number that is a token id: an integer in [0, INT32_MAX] (checked before the cast, which is
 * undefined behaviour for 1e20 or inf). */
static bool json_token_id(const cJSON *v, int32_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= (double)INT32_MAX) || d != floor(d)) return false;
    *out = (int32_t)d;
    return true;
}

static balora_status parse_tpl_items(const cJSON *arr, const cJSON *specials, const char *what, ttpl_item *items, int cap, int *n) {
    if (!cJSON_IsArray(arr)) return bl_fail(BALORA_STATUS_FORMAT, "%s: template must be an array", what);
    *n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (*n >= cap) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: template has more than %d pieces", what, cap);
        ttpl_item *x = &items[(*n)++];
        memset(x, 0, sizeof *x);
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken"), *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        int64_t type_id = 0;
        if (cJSON_IsObject(sq)) {
            const char *id = NULL;
            BL_TRY(bl_json_str(sq, what, "id", true, &id));
            BL_TRY(bl_json_int(sq, what, "type_id", false, &type_id));
            if (strcmp(id, "A") && strcmp(id, "B")) return bl_fail(BALORA_STATUS_FORMAT, "%s: Sequence id must be \"A\" or \"B\", got \"%s\"", what, id);
            x->seq = id[0] == 'A' ? 0 : 1;
        } else if (cJSON_IsObject(sp)) {
            const char *id = NULL;
            BL_TRY(bl_json_str(sp, what, "id", true, &id));
            BL_TRY(bl_json_int(sp, what, "type_id", false, &type_id));
            x->seq = -1;
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(specials, id);
            const cJSON *ids = st ? cJSON_GetObjectItemCaseSensitive(st, "ids") : NULL;
            if (!cJSON_IsArray(ids)) return bl_fail(BALORA_STATUS_FORMAT, "%s: special token '%s' of the template is not in 'special_tokens' (with 'ids')", what, id);
            const cJSON *v;
            cJSON_ArrayForEach(v, ids) {
                if (!cJSON_IsNumber(v) || x->n_ids >= 4) return bl_fail(BALORA_STATUS_FORMAT, "%s: special token '%s': 'ids' must be up to 4 integers", what, id);
                if (!json_token_id(v, &x->ids[x->n_ids]))
                    return bl_fail(BALORA_STATUS_FORMAT, "%s: special token '%s': id %g is not a token id (an integer in [0, 2147483647])", what, id, v->valuedouble);
                x->n_ids++;
            }
        } else return bl_fail(BALORA_STATUS_FORMAT, "%s: template piece must be {\"SpecialToken\": ...} or {\"Sequence\": ...}", what);
        if (type_id < 0 || type_id > 255) return bl_fail(BALORA_STATUS_FORMAT, "%s: type_id out of range", what);
        x->type_id = (int)type_id;
    }
    return BALORA_STATUS_OK;
}

static balora_status parse_pair_token(const cJSON *o, const char *what, const char *key, int32_t *id) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(a, 1)))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be [\"token\", id]", what, key);
    if (!json_token_id(cJSON_GetArrayItem(a, 1), id))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s': id %g is not a token id (an integer in [0, 2147483647])", what, key,
                       cJSON_GetArrayItem(a, 1)->valuedouble);
    return BALORA_STATUS_OK;
}

static balora_status parse_post(bl_tok *t, const cJSON *o, const char *file, int depth) {
    char what[300];
    snprintf(what, sizeof what, "%s: field 'post_processor'", file);
    if (depth > 8) return bl_fail(BALORA_STATUS_FORMAT, "%s: nested too deeply", what);
    const char *ty = type_of(o);
    if (!ty) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing 'type'", what);
    if (!strcmp(ty, "TemplateProcessing")) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(o, "special_tokens");
        BL_TRY(parse_tpl_items(cJSON_GetObjectItemCaseSensitive(o, "single"), sp, what, t->tpl.single, 8, &t->tpl.n_single));
        BL_TRY(parse_tpl_items(cJSON_GetObjectItemCaseSensitive(o, "pair"), sp, what, t->tpl.pair, 12, &t->tpl.n_pair));
        t->tpl.present = true;
    } else if (!strcmp(ty, "BertProcessing") || !strcmp(ty, "RobertaProcessing")) {
        int32_t cls, sep;
        BL_TRY(parse_pair_token(o, what, "cls", &cls));
        BL_TRY(parse_pair_token(o, what, "sep", &sep));
        if (ty[0] == 'B') tpl_bert(&t->tpl, cls, sep);
        else tpl_roberta(&t->tpl, cls, sep);
    } else if (!strcmp(ty, "ByteLevel")) {
        /* offsets only */
    } else if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "processors"), *it;
        if (!cJSON_IsArray(arr)) return bl_fail(BALORA_STATUS_FORMAT, "%s: Sequence needs an array 'processors'", what);
        cJSON_ArrayForEach(it, arr) BL_TRY(parse_post(t, it, file, depth + 1));
    } else {
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: unknown post-processor type '%s'; hint: supported are TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence", what, ty);
    }
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ models */

/* merges: list of (left, right) strings -> pair map over ids */
static balora_status add_merge(bl_tok *t, const char *what, size_t rank, const char *a, size_t al, const char *b, size_t bl) {
    int32_t ia = idmap_get(t, a, al), ib = idmap_get(t, b, bl);
    if (ia < 0 || ib < 0)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: merge %zu ('%.*s' '%.*s'): token '%.*s' is not in the vocabulary", what, rank + 1, (int)al, a, (int)bl, b,
                       ia < 0 ? (int)al : (int)bl, ia < 0 ? a : b);
    /* merged token: a + b, without b's continuing-subword prefix */
    size_t pl = t->cont_prefix ? strlen(t->cont_prefix) : 0;
    if (pl && bl >= pl && memcmp(b, t->cont_prefix, pl) == 0) { b += pl; bl -= pl; }
    tbuf *w = &t->s_word;
    w->n = 0;
    BL_TRY(tbuf_put(w, a, al));
    BL_TRY(tbuf_put(w, b, bl));
    int32_t im = idmap_get(t, w->p, w->n);
    if (im < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: merge %zu: the merged token '%.*s' is not in the vocabulary", what, rank + 1, (int)w->n, w->p);
    return pairmap_put(&t->merges, ia, ib, (int32_t)rank, im);
}

/* A finished vocabulary (strings as pointers, map built) is needed for merges: build a temporary one. */
balora_status tok_vocab_seal(bl_tok *t) {
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uintptr_t o = (uintptr_t)t->str[i];
        t->str[i] = o ? t->pool + (o - 1) : NULL;
    }
    BL_TRY(idmap_build(t, NULL));
    return BALORA_STATUS_OK;
}
void tok_vocab_unseal(bl_tok *t) {
    for (int32_t i = 0; i < t->n_vocab; i++) if (t->str[i]) t->str[i] = (char *)(uintptr_t)(t->str[i] - t->pool + 1);
}

static balora_status load_vocab_object(bl_tok *t, const cJSON *v, const char *what) {
    if (!cJSON_IsObject(v)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'vocab' must be an object {token: id}", what);
    int n = cJSON_GetArraySize(v);
    BL_TRY(tok_vocab_reserve(t, n));
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e8 || it->valuedouble != (double)(int32_t)it->valuedouble)
            return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'vocab': token '%s' must map to a non-negative integer id", what, it->string);
        BL_TRY(tok_vocab_add(t, (int32_t)it->valuedouble, it->string, strlen(it->string)));
    }
    if (n == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'vocab' is empty", what);
    return BALORA_STATUS_OK;
}

static balora_status load_model_json(bl_tok *t, const cJSON *m, const char *file) {
    char what[300];
    snprintf(what, sizeof what, "%s: field 'model'", file);
    if (!cJSON_IsObject(m)) return bl_fail(BALORA_STATUS_FORMAT, "%s: missing or not an object", what);
    const char *ty = type_of(m);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!ty) ty = cJSON_GetObjectItemCaseSensitive(m, "merges") ? "BPE" : cJSON_IsArray(vocab) ? "Unigram" : "WordPiece";
    if (!strcmp(ty, "BPE")) {
        t->model = BL_TOK_MODEL_BPE;
        const char *unk = NULL, *cp = NULL, *eow = NULL;
        BL_TRY(load_vocab_object(t, vocab, what));
        BL_TRY(bl_json_str(m, what, "unk_token", false, &unk));
        BL_TRY(bl_json_str(m, what, "continuing_subword_prefix", false, &cp));
        BL_TRY(bl_json_str(m, what, "end_of_word_suffix", false, &eow));
        BL_TRY(bl_json_bool(m, what, "fuse_unk", false, &t->fuse_unk));
        BL_TRY(bl_json_bool(m, what, "byte_fallback", false, &t->byte_fallback));
        BL_TRY(bl_json_bool(m, what, "ignore_merges", false, &t->ignore_merges));
        double dropout = 0;
        const cJSON *dr = cJSON_GetObjectItemCaseSensitive(m, "dropout");
        if (cJSON_IsNumber(dr)) dropout = dr->valuedouble;
        if (dropout > 0) bl_log(BL_WARN, "%s: BPE dropout %g is ignored (balora encodes deterministically, as HF does at inference with dropout off)", what, dropout);
        if (cp && *cp && !(t->cont_prefix = bl_strdup(cp))) return BALORA_STATUS_NOMEM;
        if (eow && *eow && !(t->eow_suffix = bl_strdup(eow))) return BALORA_STATUS_NOMEM;
        BL_TRY(tok_vocab_seal(t));
        if (unk) t->unk_id = idmap_get(t, unk, strlen(unk));
        const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
        if (!cJSON_IsArray(merges)) { tok_vocab_unseal(t); return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'merges' must be an array", what); }
        balora_status st = tok_pairmap_init(&t->merges, (size_t)cJSON_GetArraySize(merges));
        size_t rank = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, merges) {
            if (st) break;
            if (cJSON_IsString(it)) {
                const char *s = it->valuestring, *sp = strchr(s, ' ');
                if (!sp || strchr(sp + 1, ' ')) { st = bl_fail(BALORA_STATUS_FORMAT, "%s: merge %zu '%s' must be two tokens separated by one space", what, rank + 1, s); break; }
                st = add_merge(t, what, rank, s, (size_t)(sp - s), sp + 1, strlen(sp + 1));
            } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) && cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
                const char *a = cJSON_GetArrayItem(it, 0)->valuestring, *b = cJSON_GetArrayItem(it, 1)->valuestring;
                st = add_merge(t, what, rank, a, strlen(a), b, strlen(b));
            } else st = bl_fail(BALORA_STATUS_FORMAT, "%s: merge %zu must be \"a b\" or [\"a\", \"b\"]", what, rank + 1);
            rank++;
        }
        tok_vocab_unseal(t);
        return st;
    }
    if (!strcmp(ty, "WordPiece")) {
        t->model = BL_TOK_MODEL_WORDPIECE;
        const char *unk = "[UNK]", *cp = "##";
        int64_t maxc = 100;
        BL_TRY(load_vocab_object(t, vocab, what));
        BL_TRY(bl_json_str(m, what, "unk_token", false, &unk));
        BL_TRY(bl_json_str(m, what, "continuing_subword_prefix", false, &cp));
        BL_TRY(bl_json_int(m, what, "max_input_chars_per_word", false, &maxc));
        t->max_input_chars = maxc > 0 && maxc < 1000000 ? (int)maxc : 100;
        if (!(t->cont_prefix = bl_strdup(cp ? cp : ""))) return BALORA_STATUS_NOMEM;
        BL_TRY(tok_vocab_seal(t));
        t->unk_id = unk ? idmap_get(t, unk, strlen(unk)) : -1;
        tok_vocab_unseal(t);
        if (t->unk_id < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: unk_token '%s' is not in the WordPiece vocabulary", what, unk ? unk : "(null)");
        return BALORA_STATUS_OK;
    }
    if (!strcmp(ty, "Unigram")) {
        t->model = BL_TOK_MODEL_UNIGRAM;
        t->fuse_unk = true;
        if (!cJSON_IsArray(vocab) || cJSON_GetArraySize(vocab) == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'vocab' must be a non-empty array of [piece, score]", what);
        int n = cJSON_GetArraySize(vocab);
        BL_TRY(tok_vocab_reserve(t, n));
        t->score = bl_calloc((size_t)n, sizeof *t->score);
        if (!t->score) return BALORA_STATUS_NOMEM;
        t->min_score = 1e300;
        int32_t id = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, vocab) {
            const cJSON *p = cJSON_GetArrayItem(it, 0), *s = cJSON_GetArrayItem(it, 1);
            if (!cJSON_IsArray(it) || !cJSON_IsString(p) || !cJSON_IsNumber(s))
                return bl_fail(BALORA_STATUS_FORMAT, "%s: vocab entry %d must be [\"piece\", score]", what, id);
            BL_TRY(tok_vocab_add(t, id, p->valuestring, strlen(p->valuestring)));
            t->score[id] = s->valuedouble;
            if (s->valuedouble < t->min_score) t->min_score = s->valuedouble;
            if ((int)strlen(p->valuestring) > t->max_piece_len) t->max_piece_len = (int)strlen(p->valuestring);
            id++;
        }
        int64_t unk_id = -1;
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(m, "unk_id");
        if (cJSON_IsNumber(u)) {
            int32_t uid;
            if (!json_token_id(u, &uid)) return bl_fail(BALORA_STATUS_FORMAT, "%s: unk_id %g is not a token id (an integer in [0, 2147483647])", what, u->valuedouble);
            unk_id = uid;
        }
        if (unk_id >= n) return bl_fail(BALORA_STATUS_FORMAT, "%s: unk_id %lld is outside the vocabulary of %d", what, (long long)unk_id, n);
        t->unk_id = (int32_t)unk_id;
        BL_TRY(bl_json_bool(m, what, "byte_fallback", false, &t->byte_fallback));
        return BALORA_STATUS_OK;
    }
    return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: unknown model type '%s'; hint: supported are BPE, WordPiece and Unigram", what, ty);
}

static balora_status load_json_root(bl_tok *t, const cJSON *root, const char *file) {
    if (!cJSON_IsObject(root)) return bl_fail(BALORA_STATUS_FORMAT, "%s: expected a JSON object", file);
    BL_TRY(load_model_json(t, cJSON_GetObjectItemCaseSensitive(root, "model"), file));
    /* which ids the model itself has (added tokens outside it are never produced by the model) */
    if (!(t->in_model = bl_calloc((size_t)t->n_vocab + 1, 1))) return BALORA_STATUS_NOMEM;
    t->n_in_model = t->n_vocab;
    for (int32_t i = 0; i < t->n_vocab; i++) t->in_model[i] = t->str[i] != NULL;
    const cJSON *x;
    if (cJSON_IsObject(x = cJSON_GetObjectItemCaseSensitive(root, "normalizer"))) {
        if (!(t->norm = bl_calloc(1, sizeof *t->norm))) return BALORA_STATUS_NOMEM;
        BL_TRY(parse_norm(x, file, t->norm, 0));
    }
    if (cJSON_IsObject(x = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"))) {
        if (!(t->pre = bl_calloc(1, sizeof *t->pre))) return BALORA_STATUS_NOMEM;
        BL_TRY(parse_pre(t, x, file, t->pre, 0));
    }
    if (t->norm) { /* a ByteLevel normalizer also means byte-level input */
        const tnorm *n = t->norm;
        if (n->kind == TN_BYTELEVEL) t->byte_level = true;
        for (int i = 0; i < n->n_sub; i++) if (n->sub[i].kind == TN_BYTELEVEL) t->byte_level = true;
    }
    if (cJSON_IsObject(x = cJSON_GetObjectItemCaseSensitive(root, "decoder"))) {
        if (!(t->dec = bl_calloc(1, sizeof *t->dec))) return BALORA_STATUS_NOMEM;
        BL_TRY(parse_dec(x, file, t->dec, 0));
    }
    if (cJSON_IsObject(x = cJSON_GetObjectItemCaseSensitive(root, "post_processor"))) BL_TRY(parse_post(t, x, file, 0));
    x = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (x && !cJSON_IsNull(x)) {
        if (!cJSON_IsArray(x)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'added_tokens' must be an array", file);
        const cJSON *it;
        int k = 0;
        cJSON_ArrayForEach(it, x) {
            char what[300];
            snprintf(what, sizeof what, "%s: added_tokens[%d]", file, k++);
            int64_t id = -1;
            const char *content = NULL;
            bool special = false, lstrip = false, rstrip = false, sw = false, normalized = false;
            BL_TRY(bl_json_int(it, what, "id", true, &id));
            BL_TRY(bl_json_str(it, what, "content", true, &content));
            BL_TRY(bl_json_bool(it, what, "special", false, &special));
            BL_TRY(bl_json_bool(it, what, "lstrip", false, &lstrip));
            BL_TRY(bl_json_bool(it, what, "rstrip", false, &rstrip));
            BL_TRY(bl_json_bool(it, what, "single_word", false, &sw));
            BL_TRY(bl_json_bool(it, what, "normalized", false, &normalized));
            if (id < 0 || id > 100000000) return bl_fail(BALORA_STATUS_FORMAT, "%s: id %lld out of range", what, (long long)id);
            BL_TRY(add_added(t, (int32_t)id, content, special, lstrip, rstrip, sw, normalized));
        }
    }
    /* template ids must exist */
    for (int k = 0; k < t->tpl.n_pair + t->tpl.n_single; k++) {
        const ttpl_item *it = k < t->tpl.n_single ? &t->tpl.single[k] : &t->tpl.pair[k - t->tpl.n_single];
        for (int j = 0; j < it->n_ids; j++)
            if (it->ids[j] < 0 || it->ids[j] >= t->n_vocab || !t->str[it->ids[j]])
                return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'post_processor': special token id %d is not in the vocabulary", file, it->ids[j]);
    }
    return BALORA_STATUS_OK;
}

static void spm_template(bl_tok *t, const cJSON *cfg);

static balora_status finish_json(bl_tok *t, const char *file, const cJSON *cfg) {
    uint8_t *in_model = bl_calloc((size_t)t->n_vocab + 1, 1);
    if (!in_model) return BALORA_STATUS_NOMEM;
    for (int32_t i = 0; i < t->n_vocab; i++) in_model[i] = i < t->n_in_model && t->in_model[i];
    balora_status st = finish_common(t, file, in_model);
    free(in_model);
    BL_TRY(st);
    roles_from_config(t, cfg);
    default_roles(t);
    /* transformers' LlamaTokenizerFast / GemmaTokenizerFast rebuild the post-processor from
       add_bos_token / add_eos_token of tokenizer_config.json: do the same */
    const char *cls = cfg ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class")) : NULL;
    if (cls && (strstr(cls, "Llama") || strstr(cls, "Gemma")) &&
        (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token")) || cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token"))))
        spm_template(t, cfg);
    return BALORA_STATUS_OK;
}

balora_status bl_tok_load_json(bl_tok **out, const char *what, const char *json, size_t len) {
    if (!out) return bl_fail(BALORA_STATUS_INVALID, "bl_tok_load_json: NULL output");
    *out = NULL;
    cJSON *root;
    BL_TRY(bl_json_parse(what, json, len, &root));
    bl_tok *t = tok_new();
    if (!t) { cJSON_Delete(root); return BALORA_STATUS_NOMEM; }
    balora_status st = load_json_root(t, root, what);
    if (!st) st = finish_json(t, what, NULL);
    cJSON_Delete(root);
    if (st) { bl_tok_free(t); return st; }
    *out = t;
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ older formats */

/* vocab.json / encoder.json + merges.txt / vocab.bpe: GPT-2 style byte-level BPE. */
static balora_status load_gpt2_files(bl_tok *t, const char *vocab_path, const char *merges_path, const cJSON *cfg) {
    cJSON *v;
    BL_TRY(bl_json_load(vocab_path, &v));
    balora_status st = load_vocab_object(t, v, vocab_path);
    cJSON_Delete(v);
    BL_TRY(st);
    t->model = BL_TOK_MODEL_BPE;
    t->byte_level = true;
    char *text;
    size_t len;
    BL_TRY(bl_file_read(merges_path, &text, &len));
    st = tok_vocab_seal(t);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    if (!st) st = tok_pairmap_init(&t->merges, lines + 1);
    size_t rank = 0, lineno = 0, i = 0;
    while (!st && i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        size_t le = e;
        if (le > i && text[le - 1] == '\r') le--;
        lineno++;
        if (!(lineno == 1 && le - i >= 9 && memcmp(text + i, "#version:", 9) == 0) && le > i) {
            const char *sp = memchr(text + i, ' ', le - i);
            if (!sp || memchr(sp + 1, ' ', (size_t)(text + le - sp - 1)))
                st = bl_fail(BALORA_STATUS_FORMAT, "%s: line %zu: expected two tokens separated by one space", merges_path, lineno);
            else st = add_merge(t, merges_path, rank++, text + i, (size_t)(sp - (text + i)), sp + 1, (size_t)(text + le - sp - 1));
        }
        i = e + 1;
    }
    free(text);
    tok_vocab_unseal(t);
    BL_TRY(st);
    if (rank == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: no merges found", merges_path);
    /* pre-tokenizer ByteLevel(add_prefix_space from the config, default false), decoder ByteLevel */
    bool aps = false;
    if (cfg) { const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, "add_prefix_space"); if (cJSON_IsBool(a)) aps = cJSON_IsTrue(a); }
    if (!(t->pre = bl_calloc(1, sizeof *t->pre)) || !(t->dec = bl_calloc(1, sizeof *t->dec))) return BALORA_STATUS_NOMEM;
    t->pre->kind = TP_BYTELEVEL;
    t->pre->add_prefix_space = aps;
    BL_TRY(tok_compile(vocab_path, tok_gpt2_pattern, strlen(tok_gpt2_pattern), false, &t->pre->re));
    t->dec->kind = TD_BYTELEVEL;
    BL_TRY(added_from_config(t, cfg, "tokenizer_config.json"));
    /* specials present in the vocabulary */
    static const char *const sp[] = {"<|endoftext|>", "<s>", "</s>", "<pad>", "<unk>", NULL};
    BL_TRY(tok_vocab_seal(t));
    int32_t ids[5];
    for (int k = 0; sp[k]; k++) ids[k] = idmap_get(t, sp[k], strlen(sp[k]));
    int32_t mask = idmap_get(t, "<mask>", 6);
    tok_vocab_unseal(t);
    for (int k = 0; sp[k]; k++) if (ids[k] >= 0) BL_TRY(add_added(t, ids[k], sp[k], true, false, false, false, false));
    if (mask >= 0) BL_TRY(add_added(t, mask, "<mask>", true, true, false, false, false));
    const char *cls = cfg ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "tokenizer_class")) : NULL;
    bool roberta = (cls && strstr(cls, "Roberta")) || (ids[1] == 0 && ids[2] == 2 && !cls);
    if (roberta && ids[1] >= 0 && ids[2] >= 0) tpl_roberta(&t->tpl, ids[1], ids[2]);
    return BALORA_STATUS_OK;
}

/* vocab.txt: BERT WordPiece, one token per line, id = line number. */
static balora_status load_bert_vocab(bl_tok *t, const char *path, const cJSON *cfg) {
    char *text;
    size_t len;
    BL_TRY(bl_file_read(path, &text, &len));
    size_t bad;
    if (!bl_utf8_valid(text, len, &bad)) { free(text); return bl_fail(BALORA_STATUS_FORMAT, "%s: not valid UTF-8 at byte %zu", path, bad); }
    t->model = BL_TOK_MODEL_WORDPIECE;
    int32_t id = 0;
    size_t i = 0;
    balora_status st = BALORA_STATUS_OK;
    while (!st && i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        size_t le = e;
        if (le > i && text[le - 1] == '\r') le--;
        st = tok_vocab_add(t, id++, text + i, le - i);
        i = e + 1;
    }
    free(text);
    BL_TRY(st);
    if (id == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: empty vocabulary", path);
    bool lower = true;
    if (cfg) { const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, "do_lower_case"); if (cJSON_IsBool(a)) lower = cJSON_IsTrue(a); }
    if (!(t->cont_prefix = bl_strdup("##"))) return BALORA_STATUS_NOMEM;
    if (!(t->norm = bl_calloc(1, sizeof *t->norm)) || !(t->pre = bl_calloc(1, sizeof *t->pre)) || !(t->dec = bl_calloc(1, sizeof *t->dec))) return BALORA_STATUS_NOMEM;
    t->norm->kind = TN_BERT;
    t->norm->clean_text = t->norm->chinese = true;
    t->norm->lowercase = t->norm->strip_accents = lower;
    if (cfg) { const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, "strip_accents"); if (cJSON_IsBool(a)) t->norm->strip_accents = cJSON_IsTrue(a); }
    t->pre->kind = TP_BERT;
    t->dec->kind = TD_WORDPIECE;
    t->dec->cleanup = true;
    if (!(t->dec->a = bl_strdup("##"))) return BALORA_STATUS_NOMEM;
    BL_TRY(tok_vocab_seal(t));
    static const char *const sp[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", NULL};
    int32_t ids[5];
    for (int k = 0; sp[k]; k++) ids[k] = idmap_get(t, sp[k], strlen(sp[k]));
    tok_vocab_unseal(t);
    t->unk_id = ids[1];
    if (t->unk_id < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: the vocabulary has no [UNK] token", path);
    for (int k = 0; sp[k]; k++) if (ids[k] >= 0) BL_TRY(add_added(t, ids[k], sp[k], true, false, false, false, false));
    BL_TRY(added_from_config(t, cfg, "tokenizer_config.json"));
    if (ids[2] >= 0 && ids[3] >= 0) tpl_bert(&t->tpl, ids[2], ids[3]);
    return BALORA_STATUS_OK;
}

balora_status tok_load_spm(bl_tok *t, const char *path, const cJSON *cfg); /* tok_spm.c */

/* add_bos_token / add_eos_token from tokenizer_config.json for the SentencePiece path */
static void spm_template(bl_tok *t, const cJSON *cfg) {
    bool bos = true, eos = false;
    if (cfg) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token"), *b = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
        if (cJSON_IsBool(a)) bos = cJSON_IsTrue(a);
        if (cJSON_IsBool(b)) eos = cJSON_IsTrue(b);
    }
    int32_t bid = t->role[BL_TOK_BOS], eid = t->role[BL_TOK_EOS];
    ttpl *p = &t->tpl;
    memset(p, 0, sizeof *p);
    p->present = true;
    for (int pass = 0; pass < 2; pass++) {
        ttpl_item *it = pass ? p->pair : p->single;
        int n = 0;
        for (int s = 0; s <= pass; s++) {
            if (bos && bid >= 0) tpl_special(&it[n++], bid, s);
            tpl_seq(&it[n++], s, s);
            if (eos && eid >= 0) tpl_special(&it[n++], eid, s);
        }
        if (pass) p->n_pair = n; else p->n_single = n;
    }
}

balora_status bl_tok_load(bl_tok **out, const char *dir_or_file) {
    if (!out || !dir_or_file) return bl_fail(BALORA_STATUS_INVALID, "bl_tok_load: NULL argument");
    *out = NULL;
    char dir[4096], p1[4200], p2[4200];
    bool is_dir = bl_dir_exists(dir_or_file);
    if (!is_dir && !bl_file_exists(dir_or_file))
        return bl_fail(BALORA_STATUS_IO, "%s: no such tokenizer folder or file; hint: pass the model folder holding tokenizer.json (or vocab.json + merges.txt, vocab.txt, tokenizer.model)", dir_or_file);
    snprintf(dir, sizeof dir, "%s", dir_or_file);
    if (!is_dir) { char *s = strrchr(dir, '/'); if (s) *s = 0; else snprintf(dir, sizeof dir, "."); }
    bl_tok *t = tok_new();
    if (!t) return BALORA_STATUS_NOMEM;
    cJSON *cfg = NULL;
    balora_status st = apply_config(dir, &cfg);
#define HAVE(p, name) (bl_path_join(p, sizeof p, dir, name) == BALORA_STATUS_OK && bl_file_exists(p))
    if (st) {
    } else if (!is_dir || HAVE(p1, "tokenizer.json")) {
        const char *path = is_dir ? p1 : dir_or_file;
        size_t L = strlen(path);
        if (!is_dir && L >= 6 && !strcmp(path + L - 6, ".model")) {
            st = tok_load_spm(t, path, cfg);
            if (!st) st = finish_common(t, path, NULL);
            if (!st) { roles_from_config(t, cfg); default_roles(t); spm_template(t, cfg); }
            goto loaded;
        }
        cJSON *root = NULL;
        st = bl_json_load(path, &root);
        if (!st) st = load_json_root(t, root, path);
        cJSON_Delete(root);
        if (!st) st = finish_json(t, path, cfg);
        goto loaded;
    } else if (HAVE(p1, "vocab.json") && HAVE(p2, "merges.txt")) {
        st = load_gpt2_files(t, p1, p2, cfg);
    } else if (HAVE(p1, "encoder.json") && HAVE(p2, "vocab.bpe")) {
        st = load_gpt2_files(t, p1, p2, cfg);
    } else if (HAVE(p1, "vocab.txt")) {
        st = load_bert_vocab(t, p1, cfg);
    } else if (HAVE(p1, "tokenizer.model")) {
        st = tok_load_spm(t, p1, cfg);
        if (!st) { st = finish_common(t, p1, NULL); }
        if (!st) { roles_from_config(t, cfg); default_roles(t); spm_template(t, cfg); }
        goto loaded;
    } else {
        st = bl_fail(BALORA_STATUS_IO, "%s: no tokenizer found; hint: expected tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe, vocab.txt or tokenizer.model", dir);
    }
#undef HAVE
    if (!st) st = finish_common(t, dir, NULL);
    if (!st) { roles_from_config(t, cfg); default_roles(t); }
loaded:
    cJSON_Delete(cfg);
    if (st) { bl_tok_free(t); return st; }
    *out = t;
    return BALORA_STATUS_OK;
}
