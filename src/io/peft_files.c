/* PEFT LoRA adapter folders at the file level (see peft_files.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "io/peft_files.h"
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bl_peft_config_free(bl_peft_config *c) {
    if (!c) return;
    cJSON_Delete(c->json);
    memset(c, 0, sizeof *c);
}

static const cJSON *optional_field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

balora_status bl_peft_pattern_parse(const char *file, const char *field, const cJSON *pat, bool integer, bl_peft_pattern *out,
                                    int *n) {
    *n = 0;
    if (!pat) return BALORA_STATUS_OK;
    if (!cJSON_IsObject(pat)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s' must be an object {module: value}", file, field);
    const cJSON *it;
    cJSON_ArrayForEach(it, pat) {
        /* isfinite first: cJSON reads 1e999 as inf, and inf must never reach the int64 cast of a rank */
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble <= 0 ||
            (integer && (it->valuedouble != floor(it->valuedouble) || it->valuedouble > 65536)))
            return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s': value for '%s' must be a positive %s", file, field,
                           it->string, integer ? "integer <= 65536" : "finite number");
        if (*n >= BL_PEFT_MAX_PATTERNS)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' has more than %d entries", file, field, BL_PEFT_MAX_PATTERNS);
        if (strlen(it->string) >= sizeof out[0].key)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s': key '%.60s...' is longer than %zu bytes", file, field,
                           it->string, sizeof out[0].key - 1);
        snprintf(out[*n].key, sizeof out[0].key, "%s", it->string);
        out[*n].value = it->valuedouble;
        (*n)++;
    }
    return BALORA_STATUS_OK;
}

static balora_status parse_config(bl_peft_config *c) {
    const cJSON *j = c->json;
    if (!cJSON_IsObject(j)) return bl_fail(BALORA_STATUS_FORMAT, "%s: not a JSON object", c->path);
    c->peft_type = "LORA";
    BL_TRY(bl_json_str(j, c->path, "peft_type", false, &c->peft_type));
    if (strcmp(c->peft_type, "LORA") != 0)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'peft_type' is '%s'; balora reads LoRA adapters (\"LORA\") only",
                       c->path, c->peft_type);
    BL_TRY(bl_json_str(j, c->path, "task_type", false, &c->task_type));
    BL_TRY(bl_json_int(j, c->path, "r", true, &c->r));
    if (c->r <= 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'r' must be positive, got %" PRId64, c->path, c->r);
    c->lora_alpha = 8;
    BL_TRY(bl_json_num(j, c->path, "lora_alpha", true, &c->lora_alpha));
    if (!isfinite(c->lora_alpha)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'lora_alpha' is not finite", c->path);
    BL_TRY(bl_json_num(j, c->path, "lora_dropout", false, &c->lora_dropout));
    if (!(c->lora_dropout >= 0 && c->lora_dropout < 1))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'lora_dropout' = %g must be in [0, 1)", c->path, c->lora_dropout);
    c->bias = "none";
    BL_TRY(bl_json_str(j, c->path, "bias", false, &c->bias));
    BL_TRY(bl_json_str(j, c->path, "base_model_name_or_path", false, &c->base_model));
    c->layers_to_transform = optional_field(j, "layers_to_transform") != NULL;
    c->layer_replication = optional_field(j, "layer_replication") != NULL;
    BL_TRY(bl_json_bool(j, c->path, "use_rslora", false, &c->use_rslora));
    BL_TRY(bl_json_bool(j, c->path, "use_dora", false, &c->use_dora));
    BL_TRY(bl_json_bool(j, c->path, "fan_in_fan_out", false, &c->fan_in_fan_out));
    c->target_modules = optional_field(j, "target_modules");
    if (c->target_modules && !cJSON_IsString(c->target_modules) && !cJSON_IsArray(c->target_modules))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'target_modules' must be a list of names or a regular expression", c->path);
    if (cJSON_IsArray(c->target_modules)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, c->target_modules)
            if (!cJSON_IsString(it)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'target_modules' must hold strings", c->path);
    }
    c->modules_to_save = optional_field(j, "modules_to_save");
    if (c->modules_to_save && !cJSON_IsArray(c->modules_to_save))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'modules_to_save' must be a list or null", c->path);
    c->rank_pattern = optional_field(j, "rank_pattern");
    c->alpha_pattern = optional_field(j, "alpha_pattern");
    BL_TRY(bl_peft_pattern_parse(c->path, "rank_pattern", c->rank_pattern, true, c->patterns.rank, &c->patterns.n_rank));
    BL_TRY(bl_peft_pattern_parse(c->path, "alpha_pattern", c->alpha_pattern, false, c->patterns.alpha, &c->patterns.n_alpha));
    /* every key must compile (a typo fails here, not when some module is resolved) */
    for (int k = 0; k < c->patterns.n_rank + c->patterns.n_alpha; k++) {
        int64_t r;
        double a;
        const char *key = k < c->patterns.n_rank ? c->patterns.rank[k].key : c->patterns.alpha[k - c->patterns.n_rank].key;
        BL_TRY(bl_peft_patterns_resolve(&c->patterns, c->path, key, 1, 1, &r, &a));
    }
    c->init_lora_weights = optional_field(j, "init_lora_weights");
    if (c->init_lora_weights && !cJSON_IsBool(c->init_lora_weights) && !cJSON_IsString(c->init_lora_weights))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'init_lora_weights' must be true, false or a string", c->path);
    return BALORA_STATUS_OK;
}

balora_status bl_peft_config_load(bl_peft_config *c, const char *dir) {
    memset(c, 0, sizeof *c);
    if (!bl_dir_exists(dir))
        return bl_fail(BALORA_STATUS_IO, "%s: not a directory (expected a PEFT adapter folder with adapter_config.json)", dir);
    BL_TRY(bl_path_join(c->path, sizeof c->path, dir, "adapter_config.json"));
    balora_status st = bl_json_load(c->path, &c->json);
    if (!st) st = parse_config(c);
    if (st) bl_peft_config_free(c);
    return st;
}

/* PEFT's re.match(".*\\.KEY$", module), anchored at both ends as PCRE2 full match. */
static balora_status key_matches(const char *file, const char *which, const char *key, const char *module, bool *match) {
    char re[sizeof ((bl_peft_pattern *)0)->key + 16];
    snprintf(re, sizeof re, ".*\\.%s$", key);
    int err;
    PCRE2_SIZE erroff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &erroff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field '%s': key '%s' is not a valid regular expression (%s); hint: PEFT "
                       "matches each key as '.*\\.KEY$' against the module name", file, which, key, (const char *)msg);
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md) { pcre2_code_free(code); return bl_fail(BALORA_STATUS_NOMEM, "out of memory matching '%s'", key); }
    int rc = pcre2_match(code, (PCRE2_SPTR)module, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    *match = rc >= 0;
    return BALORA_STATUS_OK;
}

static const bl_peft_pattern *lookup(const bl_peft_pattern *p, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(p[i].key, key)) return &p[i];
    return NULL;
}

balora_status bl_peft_patterns_resolve(const bl_peft_patterns *p, const char *file, const char *module, int64_t r,
                                       double alpha, int64_t *r_out, double *alpha_out) {
    const char *hit = module; /* PEFT: next(filter(match, rank keys + alpha keys), module) */
    for (int k = 0; k < p->n_rank + p->n_alpha; k++) {
        bool rank = k < p->n_rank;
        const char *key = rank ? p->rank[k].key : p->alpha[k - p->n_rank].key;
        bool m = false;
        BL_TRY(key_matches(file, rank ? "rank_pattern" : "alpha_pattern", key, module, &m));
        if (m) { hit = key; break; }
    }
    const bl_peft_pattern *hr = lookup(p->rank, p->n_rank, hit), *ha = lookup(p->alpha, p->n_alpha, hit);
    *r_out = hr ? (int64_t)hr->value : r;
    *alpha_out = ha ? ha->value : alpha;
    return BALORA_STATUS_OK;
}

balora_status bl_peft_module_rank_alpha(const bl_peft_config *c, const char *module, int64_t *r, double *alpha) {
    return bl_peft_patterns_resolve(&c->patterns, c->path, module, c->r, c->lora_alpha, r, alpha);
}

double bl_peft_scale(const bl_peft_config *c, int64_t r, double alpha) {
    return c->use_rslora ? alpha / sqrt((double)r) : alpha / (double)r;
}

/* ---- keys ---- */

typedef enum key_kind { KEY_A, KEY_B, KEY_EMB_A, KEY_EMB_B, KEY_MAGNITUDE, KEY_FULL, KEY_UNKNOWN } key_kind;

static bool ends_with(const char *s, const char *suffix, size_t *stem) {
    size_t n = strlen(s), m = strlen(suffix);
    if (n <= m || strcmp(s + n - m, suffix) != 0) return false;
    *stem = n - m;
    return true;
}

/* Classifies a key (without the "base_model.model." prefix); *stem = length of the module path. */
static key_kind classify(const char *k, size_t *stem) {
    static const struct { const char *suffix; key_kind kind; } suf[] = {
        {".lora_A.weight", KEY_A}, {".lora_B.weight", KEY_B},
        {".lora_embedding_A", KEY_EMB_A}, {".lora_embedding_B", KEY_EMB_B},
        {".lora_magnitude_vector", KEY_MAGNITUDE}, {".lora_magnitude_vector.weight", KEY_MAGNITUDE},
    };
    for (size_t i = 0; i < sizeof suf / sizeof suf[0]; i++)
        if (ends_with(k, suf[i].suffix, stem)) return suf[i].kind;
    if (strstr(k, "lora_")) return KEY_UNKNOWN;
    *stem = strlen(k);
    return KEY_FULL;
}

static bl_peft_pair *pair_for(bl_peft_adapter *a, const char *module, size_t len) {
    for (int i = 0; i < a->n_pairs; i++)
        if (strlen(a->pairs[i].module) == len && strncmp(a->pairs[i].module, module, len) == 0) return &a->pairs[i];
    bl_peft_pair *p = &a->pairs[a->n_pairs];
    p->module = strndup(module, len);
    if (!p->module) return NULL;
    a->n_pairs++;
    return p;
}

/* "x.modules_to_save.default.weight" -> "x.weight" (PEFT removes it when saving; be lenient). */
static char *full_base_name(const char *k) {
    static const char mid[] = ".modules_to_save.default";
    const char *p = strstr(k, mid);
    if (!p) return bl_strdup(k);
    size_t n = strlen(k) - (sizeof mid - 1);
    char *s = bl_malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, k, (size_t)(p - k));
    strcpy(s + (p - k), p + sizeof mid - 1);
    return s;
}

static int cmp_pair(const void *x, const void *y) {
    return strcmp(((const bl_peft_pair *)x)->module, ((const bl_peft_pair *)y)->module);
}

static balora_status group_keys(bl_peft_adapter *a) {
    const bl_st_file *f = &a->file;
    size_t pl = strlen(BL_PEFT_PREFIX);
    a->pairs = bl_calloc((size_t)f->n + 1, sizeof *a->pairs);
    a->full = bl_calloc((size_t)f->n + 1, sizeof *a->full);
    if (!a->pairs || !a->full) return BALORA_STATUS_NOMEM;
    for (int i = 0; i < f->n; i++) {
        const bl_st_tensor *t = &f->tensors[i];
        a->trainable_params += t->numel;
        if (strncmp(t->name, BL_PEFT_PREFIX, pl) != 0) {
            if (!a->first_unknown) a->first_unknown = t->name;
            a->n_unknown++;
            continue;
        }
        const char *k = t->name + pl;
        size_t stem;
        key_kind kind = classify(k, &stem);
        if (kind == KEY_UNKNOWN) {
            if (!a->first_unknown) a->first_unknown = t->name;
            a->n_unknown++;
        } else if (kind == KEY_MAGNITUDE) {
            a->n_magnitude++;
        } else if (kind == KEY_FULL) {
            bl_peft_full *fu = &a->full[a->n_full];
            fu->base_name = full_base_name(k);
            if (!fu->base_name) return BALORA_STATUS_NOMEM;
            fu->t = t;
            a->n_full++;
        } else {
            bl_peft_pair *p = pair_for(a, k, stem);
            if (!p) return bl_fail(BALORA_STATUS_NOMEM, "out of memory");
            if (kind == KEY_A || kind == KEY_EMB_A) p->a = t; else p->b = t;
            if (kind == KEY_EMB_A || kind == KEY_EMB_B) p->embedding = true;
        }
    }
    qsort(a->pairs, (size_t)a->n_pairs, sizeof *a->pairs, cmp_pair);
    for (int i = 0; i < a->n_pairs; i++) {
        bl_peft_pair *p = &a->pairs[i];
        int64_t r_cfg;
        BL_TRY(bl_peft_module_rank_alpha(&a->cfg, p->module, &r_cfg, &p->alpha));
        p->r = p->a && p->a->ndim == 2 ? p->a->shape[0] : r_cfg;
        p->scale = p->r > 0 ? bl_peft_scale(&a->cfg, p->r, p->alpha) : 0;
    }
    return BALORA_STATUS_OK;
}

void bl_peft_close(bl_peft_adapter *a) {
    if (!a) return;
    for (int i = 0; i < a->n_pairs; i++) free(a->pairs[i].module);
    for (int i = 0; i < a->n_full; i++) free(a->full[i].base_name);
    free(a->pairs);
    free(a->full);
    bl_st_close(&a->file);
    bl_peft_config_free(&a->cfg);
    memset(a, 0, sizeof *a);
}

balora_status bl_peft_open(bl_peft_adapter *a, const char *dir) {
    memset(a, 0, sizeof *a);
    snprintf(a->dir, sizeof a->dir, "%s", dir);
    BL_TRY(bl_peft_config_load(&a->cfg, dir));
    balora_status st = bl_path_join(a->weights_path, sizeof a->weights_path, dir, "adapter_model.safetensors");
    if (!st && !bl_file_exists(a->weights_path)) {
        char bin[4200];
        snprintf(bin, sizeof bin, "%s/adapter_model.bin", dir);
        st = bl_fail(BALORA_STATUS_IO, "%s: missing adapter_model.safetensors%s", dir,
                     bl_file_exists(bin) ? " (found adapter_model.bin; hint: re-save with safe_serialization=True)" : "");
    }
    if (!st) st = bl_st_open(&a->file, a->weights_path);
    if (!st) st = group_keys(a);
    if (st) bl_peft_close(a);
    return st;
}

static void shape_str(const bl_st_tensor *t, char *out, size_t cap) {
    out[0] = 0;
    for (int i = 0; i < t->ndim; i++) snprintf(out + strlen(out), cap - strlen(out), "%s%" PRId64, i ? ", " : "", t->shape[i]);
}

static bool is_float(bl_dtype d) { return d == BL_DTYPE_F32 || d == BL_DTYPE_F16 || d == BL_DTYPE_BF16 || d == BL_DTYPE_F64; }

static balora_status validate_pair(const bl_peft_adapter *a, const bl_peft_pair *p) {
    const char *wp = a->weights_path;
    const char *an = p->embedding ? "lora_embedding_A" : "lora_A", *bn = p->embedding ? "lora_embedding_B" : "lora_B";
    if (!p->a || !p->b)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s' has %s but no %s (incomplete A/B pair)", wp, p->module,
                       p->a ? an : bn, p->a ? bn : an);
    char sa[160], sb[160];
    shape_str(p->a, sa, sizeof sa);
    shape_str(p->b, sb, sizeof sb);
    if (p->a->ndim != 2 || p->b->ndim != 2)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s': %s [%s] and %s [%s] must both be matrices", wp, p->module, an, sa, bn, sb);
    if (!is_float(p->a->dtype) || !is_float(p->b->dtype))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s': LoRA factors must be floating point (got %s and %s)", wp,
                       p->module, bl_dtype_name(p->a->dtype), bl_dtype_name(p->b->dtype));
    if (p->a->shape[0] != p->b->shape[1] || p->r <= 0)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s': %s [%s] and %s [%s] disagree on the rank (A is [r, in], B is [out, r])",
                       wp, p->module, an, sa, bn, sb);
    int64_t r_cfg;
    double alpha;
    BL_TRY(bl_peft_module_rank_alpha(&a->cfg, p->module, &r_cfg, &alpha));
    if (r_cfg != p->r)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s' has rank %" PRId64 " but %s gives it r = %" PRId64
                       " (fields 'r' = %" PRId64 " and 'rank_pattern'; hint: rank_pattern missing or wrong?)", wp, p->module, p->r,
                       a->cfg.path, r_cfg, a->cfg.r);
    return BALORA_STATUS_OK;
}

balora_status bl_peft_validate(const bl_peft_adapter *a) {
    if (a->cfg.use_dora || a->n_magnitude)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: this is a DoRA adapter (use_dora / lora_magnitude_vector); "
                       "balora does not support DoRA (hint: merge it with PEFT's merge_and_unload instead)", a->dir);
    if (a->n_unknown)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: unexpected tensor '%s' (%d key(s) that are neither LoRA factors nor "
                       "modules_to_save tensors under 'base_model.model.')", a->weights_path, a->first_unknown, a->n_unknown);
    if (a->n_pairs == 0 && a->n_full == 0)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: holds no adapter tensors", a->weights_path);
    for (int i = 0; i < a->n_pairs; i++) BL_TRY(validate_pair(a, &a->pairs[i]));
    return BALORA_STATUS_OK;
}
