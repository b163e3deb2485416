/* LoRA adapters in PEFT's folder format: init, load, save, attach, merge (lora.h). */
#include "adapters/lora.h"
#include "io/json.h"
#include "io/safetensors.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX "base_model.model."

void bl_lora_config_default(bl_lora_config *c) {
    memset(c, 0, sizeof *c);
    c->r = 8;
    c->alpha = 8;
    c->dropout = 0;
    c->init = BL_LORA_INIT_DEFAULT;
}

balora_status bl_lora_config_set_targets(bl_lora_config *c, const char *list) {
    c->n_targets = 0;
    c->target_regex[0] = 0;
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (*p == ' ')) { p++; n--; }
        while (n && p[n - 1] == ' ') n--;
        if (n) {
            if (c->n_targets >= BL_LORA_MAX_TARGETS)
                return bl_fail(BALORA_STATUS_INVALID, "targets: more than %d target modules", BL_LORA_MAX_TARGETS);
            if (n >= sizeof c->targets[0])
                return bl_fail(BALORA_STATUS_INVALID, "targets: module name '%.*s' is too long", (int)n, p);
            memcpy(c->targets[c->n_targets], p, n);
            c->targets[c->n_targets][n] = 0;
            c->n_targets++;
        }
        p = e ? e + 1 : NULL;
    }
    if (c->n_targets == 0)
        return bl_fail(BALORA_STATUS_INVALID, "targets: empty list; hint: e.g. q_proj,v_proj or all-linear");
    return BALORA_STATUS_OK;
}

float bl_lora_scale(const bl_lora_config *c) {
    return (float)(c->rslora ? c->alpha / sqrt((double)c->r) : c->alpha / (double)c->r);
}

/* ------------------------------------------------------------------ matching */

static bool ends_with_dot(const char *name, const char *t) {
    size_t a = strlen(name), b = strlen(t);
    if (a == b) return !strcmp(name, t);
    return a > b && name[a - b - 1] == '.' && !strcmp(name + a - b, t);
}

/* Which linears of s the config targets: out[i] = true. */
static balora_status match_targets(const bl_lora_config *c, const bl_module_set *s, bool *out, int *count) {
    *count = 0;
    if (c->target_regex[0]) {
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)c->target_regex, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                                       &err, &off, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            return bl_fail(BALORA_STATUS_INVALID, "target_modules: regular expression '%s' is invalid at offset %zu: %s",
                           c->target_regex, (size_t)off, (const char *)msg);
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        for (int i = 0; i < s->n_lin; i++) {
            out[i] = pcre2_match(re, (PCRE2_SPTR)s->lin[i].name, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
            *count += out[i];
        }
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        return BALORA_STATUS_OK;
    }
    bool all = false;
    for (int t = 0; t < c->n_targets; t++) all |= !strcmp(c->targets[t], "all-linear");
    for (int i = 0; i < s->n_lin; i++) {
        out[i] = all;
        for (int t = 0; t < c->n_targets && !out[i]; t++) out[i] = ends_with_dot(s->lin[i].name, c->targets[t]);
        *count += out[i];
    }
    return BALORA_STATUS_OK;
}

static balora_status no_match_error(const bl_lora_config *c, const bl_module_set *s) {
    char have[512] = "", want[512] = "";
    size_t hl = 0, wl = 0;
    for (int i = 0; i < s->n_lin; i++) {
        if (strstr(have, s->lin[i].leaf)) continue;
        hl += (size_t)snprintf(have + hl, hl < sizeof have ? sizeof have - hl : 0, "%s%s", hl ? "," : "", s->lin[i].leaf);
        if (hl >= sizeof have) break;
    }
    if (c->target_regex[0]) snprintf(want, sizeof want, "regex '%.400s'", c->target_regex);
    else
        for (int t = 0; t < c->n_targets; t++) {
            wl += (size_t)snprintf(want + wl, wl < sizeof want ? sizeof want - wl : 0, "%s%s", t ? "," : "", c->targets[t]);
            if (wl >= sizeof want) break;
        }
    return bl_fail(BALORA_STATUS_INVALID, "targets: %s match no module of this %s model; hint: its linear modules are %s (or all-linear)",
                   want, s->model_type ? s->model_type : "", have);
}

static bool is_head_param(const bl_module_set *s, const char *pname) {
    for (int h = 0; h < 4 && s->heads[h]; h++) {
        size_t n = strlen(s->heads[h]);
        if (!strncmp(pname, s->heads[h], n) && pname[n] == '.') return true;
    }
    return false;
}

/* ------------------------------------------------------------------ create / attach */

static int cmp_lin_name(const void *a, const void *b, void *ctx) {
    const bl_module_set *s = ctx;
    return strcmp(s->lin[*(const int *)a].name, s->lin[*(const int *)b].name);
}

/* Allocates everything for the modules flagged in sel (and head params), attaches them. */
static balora_status create(bl_adapter *a, bl_module_set *s, const bl_lora_config *c, const bool *sel) {
    a->cfg = *c;
    int n = 0;
    for (int i = 0; i < s->n_lin; i++) n += sel[i];
    int nh = 0;
    for (int i = 0; i < s->n_params; i++) nh += is_head_param(s, s->params[i].name);
    a->mods = bl_calloc((size_t)n + 1, sizeof *a->mods);
    a->lin_index = bl_calloc((size_t)n + 1, sizeof(int));
    a->head_param = bl_calloc((size_t)nh + 1, sizeof(int));
    a->head_data = bl_calloc((size_t)nh + 1, sizeof(float *));
    a->head_grad = bl_calloc((size_t)nh + 1, sizeof(float *));
    if (!a->mods || !a->lin_index || !a->head_param || !a->head_data || !a->head_grad) return BALORA_STATUS_NOMEM;
    int k = 0;
    for (int i = 0; i < s->n_lin; i++) if (sel[i]) a->lin_index[k++] = i;
    qsort_r(a->lin_index, (size_t)n, sizeof(int), cmp_lin_name, s);
    a->n = n;
    int64_t r = c->r;
    bool keep = c->keep_initial;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) BL_TRY(bl_arena_alloc(&a->arena));
        for (int i = 0; i < n; i++) {
            const bl_linear *L = &s->lin[a->lin_index[i]];
            bl_lora *m = &a->mods[i];
            m->in = L->in; m->out = L->out; m->r = r;
            m->scale = bl_lora_scale(c);
            m->dropout = (float)c->dropout;
            m->A = bl_arena_take(&a->arena, (size_t)(r * L->in) * sizeof(float));
            m->B = bl_arena_take(&a->arena, (size_t)(L->out * r) * sizeof(float));
            m->gA = bl_arena_take(&a->arena, (size_t)(r * L->in) * sizeof(float));
            m->gB = bl_arena_take(&a->arena, (size_t)(L->out * r) * sizeof(float));
            m->A0 = keep ? bl_arena_take(&a->arena, (size_t)(r * L->in) * sizeof(float)) : NULL;
            m->B0 = keep ? bl_arena_take(&a->arena, (size_t)(L->out * r) * sizeof(float)) : NULL;
        }
        int h = 0;
        for (int i = 0; i < s->n_params; i++) {
            if (!is_head_param(s, s->params[i].name)) continue;
            a->head_param[h] = i;
            a->head_data[h] = bl_arena_take(&a->arena, (size_t)s->params[i].numel * sizeof(float));
            a->head_grad[h] = bl_arena_take(&a->arena, (size_t)s->params[i].numel * sizeof(float));
            h++;
        }
        a->n_heads = h;
    }
    /* attach */
    for (int i = 0; i < n; i++) s->lin[a->lin_index[i]].lora = &a->mods[i];
    for (int h = 0; h < a->n_heads; h++) {
        bl_param *p = &s->params[a->head_param[h]];
        memcpy(a->head_data[h], p->data, (size_t)p->numel * sizeof(float));
        p->train_data = a->head_data[h];
        p->grad = a->head_grad[h];
    }
    a->set = s;
    s->attach_gen++;
    return BALORA_STATUS_OK;
}

void bl_lora_free(bl_adapter *a) {
    if (!a) return;
    if (a->set) {
        for (int i = 0; i < a->n; i++) a->set->lin[a->lin_index[i]].lora = NULL;
        for (int h = 0; h < a->n_heads; h++) {
            a->set->params[a->head_param[h]].train_data = NULL;
            a->set->params[a->head_param[h]].grad = NULL;
        }
        a->set->attach_gen++;
    }
    bl_arena_free(&a->arena);
    free(a->mods); free(a->lin_index); free(a->head_param); free(a->head_data); free(a->head_grad);
    memset(a, 0, sizeof *a);
}

balora_status bl_lora_init(bl_adapter *a, bl_module_set *s, const bl_lora_config *c, uint64_t seed) {
    memset(a, 0, sizeof *a);
    if (c->r <= 0 || c->r > 65536) return bl_fail(BALORA_STATUS_INVALID, "lora: rank r = %lld must be in 1..65536", (long long)c->r);
    if (!(c->alpha > 0) || !isfinite(c->alpha)) return bl_fail(BALORA_STATUS_INVALID, "lora: alpha must be positive");
    if (!(c->dropout >= 0 && c->dropout < 1)) return bl_fail(BALORA_STATUS_INVALID, "lora: dropout %g must be in [0, 1)", c->dropout);
    bool *sel = bl_calloc((size_t)s->n_lin + 1, 1);
    if (!sel) return BALORA_STATUS_NOMEM;
    int cnt;
    balora_status st = match_targets(c, s, sel, &cnt);
    if (!st && cnt == 0) st = no_match_error(c, s);
    for (int i = 0; !st && i < s->n_lin; i++)
        if (sel[i] && c->r > (s->lin[i].in < s->lin[i].out ? s->lin[i].in : s->lin[i].out) && c->init == BL_LORA_INIT_PISSA)
            st = bl_fail(BALORA_STATUS_INVALID, "lora: rank %lld exceeds min(in, out) of %s for PiSSA", (long long)c->r, s->lin[i].name);
    if (!st) st = create(a, s, c, sel);
    free(sel);
    if (st) { bl_lora_free(a); return st; }
    /* PEFT: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); gaussian: A ~ N(0, std 1/r); B = 0. */
    bl_rng rng;
    bl_rng_seed(&rng, seed);
    for (int i = 0; i < a->n; i++) {
        bl_lora *m = &a->mods[i];
        if (c->init == BL_LORA_INIT_PISSA) continue;
        double bound = 1.0 / sqrt((double)m->in);
        for (int64_t k = 0; k < m->r * m->in; k++)
            m->A[k] = c->init == BL_LORA_INIT_GAUSSIAN ? bl_rng_normal(&rng) / (float)m->r
                                                       : (float)((bl_rng_uniform(&rng) * 2.0 - 1.0) * bound);
        if (m->A0) memcpy(m->A0, m->A, (size_t)(m->r * m->in) * sizeof(float));
    }
    return BALORA_STATUS_OK;
}

/* ------------------------------------------------------------------ load */

static balora_status load_config(const cJSON *j, const char *file, bl_lora_config *c, const bl_module_set *s) {
    bl_lora_config_default(c);
    const char *pt = NULL;
    BL_TRY(bl_json_str(j, file, "peft_type", true, &pt));
    if (strcmp(pt, "LORA"))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'peft_type' = \"%s\": only LORA adapters are supported", file, pt);
    BL_TRY(bl_json_int(j, file, "r", true, &c->r));
    if (c->r <= 0 || c->r > 65536) return bl_fail(BALORA_STATUS_INVALID, "%s: field 'r' = %lld must be in 1..65536", file, (long long)c->r);
    BL_TRY(bl_json_num(j, file, "lora_alpha", true, &c->alpha));
    if (!(c->alpha > 0) || !isfinite(c->alpha)) return bl_fail(BALORA_STATUS_INVALID, "%s: field 'lora_alpha' must be positive", file);
    BL_TRY(bl_json_num(j, file, "lora_dropout", false, &c->dropout));
    if (!(c->dropout >= 0 && c->dropout < 1)) return bl_fail(BALORA_STATUS_INVALID, "%s: field 'lora_dropout' must be in [0, 1)", file);
    BL_TRY(bl_json_bool(j, file, "use_rslora", false, &c->rslora));
    bool dora = false;
    BL_TRY(bl_json_bool(j, file, "use_dora", false, &dora));
    if (dora) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'use_dora' = true: DoRA is not supported", file);
    const char *bias = "none";
    BL_TRY(bl_json_str(j, file, "bias", false, &bias));
    if (strcmp(bias, "none"))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'bias' = \"%s\": only \"none\" is supported", file, bias);
    const char *empty_objs[] = {"rank_pattern", "alpha_pattern"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, empty_objs[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsObject(v) && cJSON_GetArraySize(v) == 0))
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' is not empty: per-module ranks/alphas are not supported", file, empty_objs[i]);
    }
    const char *nulls[] = {"layers_to_transform", "layer_replication"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, nulls[i]);
        if (v && !cJSON_IsNull(v)) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field '%s' is set: not supported", file, nulls[i]);
    }
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
    if (cJSON_IsString(tm)) {
        if (!strcmp(tm->valuestring, "all-linear")) BL_TRY(bl_lora_config_set_targets(c, "all-linear"));
        else {
            if (strlen(tm->valuestring) >= sizeof c->target_regex)
                return bl_fail(BALORA_STATUS_INVALID, "%s: field 'target_modules' regex is too long", file);
            snprintf(c->target_regex, sizeof c->target_regex, "%s", tm->valuestring);
        }
    } else if (cJSON_IsArray(tm)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, tm) {
            if (!cJSON_IsString(it)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'target_modules' must hold strings", file);
            if (c->n_targets >= BL_LORA_MAX_TARGETS || strlen(it->valuestring) >= sizeof c->targets[0])
                return bl_fail(BALORA_STATUS_INVALID, "%s: field 'target_modules': too many or too long names", file);
            snprintf(c->targets[c->n_targets++], sizeof c->targets[0], "%s", it->valuestring);
        }
    } else {
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'target_modules' must be a list of module names or a regex string", file);
    }
    const cJSON *iw = cJSON_GetObjectItemCaseSensitive(j, "init_lora_weights");
    if (cJSON_IsString(iw)) {
        if (!strcmp(iw->valuestring, "gaussian")) c->init = BL_LORA_INIT_GAUSSIAN;
        else if (!strcmp(iw->valuestring, "pissa")) c->init = BL_LORA_INIT_PISSA;
        else if (!strncmp(iw->valuestring, "pissa_niter_", 12)) { c->init = BL_LORA_INIT_PISSA; c->pissa_niter = atoi(iw->valuestring + 12); }
        else return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'init_lora_weights' = \"%s\" is not supported", file, iw->valuestring);
    }
    const char *base = NULL;
    BL_TRY(bl_json_str(j, file, "base_model_name_or_path", false, &base));
    if (base) snprintf(c->base_model, sizeof c->base_model, "%s", base);
    /* modules_to_save: only the model's own head modules (SEQ_CLS) */
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(j, "modules_to_save");
    if (ms && !cJSON_IsNull(ms)) {
        if (!cJSON_IsArray(ms)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'modules_to_save' must be a list", file);
        const cJSON *it;
        cJSON_ArrayForEach(it, ms) {
            if (!cJSON_IsString(it)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'modules_to_save' must hold strings", file);
            bool known = !strcmp(it->valuestring, "classifier") || !strcmp(it->valuestring, "score");
            for (int h = 0; h < 4 && s->heads[h]; h++) known |= !strcmp(it->valuestring, s->heads[h]);
            if (!known)
                return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'modules_to_save' lists '%s': only classification heads "
                               "can be fully trained with an adapter", file, it->valuestring);
        }
    }
    return BALORA_STATUS_OK;
}

balora_status bl_lora_load(bl_adapter *a, bl_module_set *s, const char *dir, bool keep_initial) {
    memset(a, 0, sizeof *a);
    char cpath[4200], wpath[4200];
    BL_TRY(bl_path_join(cpath, sizeof cpath, dir, "adapter_config.json"));
    BL_TRY(bl_path_join(wpath, sizeof wpath, dir, "adapter_model.safetensors"));
    cJSON *j = NULL;
    BL_TRY(bl_json_load(cpath, &j));
    bl_lora_config c;
    balora_status st = cJSON_IsObject(j) ? load_config(j, cpath, &c, s)
                                         : bl_fail(BALORA_STATUS_FORMAT, "%s: not a JSON object", cpath);
    cJSON_Delete(j);
    if (st) return st;
    c.keep_initial = keep_initial;
    bl_st_file f;
    memset(&f, 0, sizeof f);
    BL_TRY(bl_st_open(&f, wpath));
    bool *sel = bl_calloc((size_t)s->n_lin + 1, 1);
    bool *has = bl_calloc((size_t)s->n_lin * 2 + 2, 1);
    if (!sel || !has) { st = BALORA_STATUS_NOMEM; goto done; }
    int cnt;
    if ((st = match_targets(&c, s, sel, &cnt))) goto done;
    /* every key must name a targeted module's factor or a head tensor */
    size_t pl = strlen(KEY_PREFIX);
    for (int i = 0; i < f.n; i++) {
        const char *key = f.tensors[i].name;
        if (strncmp(key, KEY_PREFIX, pl)) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' does not start with '%s'", wpath, key, KEY_PREFIX);
            goto done;
        }
        const char *rest = key + pl;
        size_t rl = strlen(rest);
        const char *sfx[2] = {".lora_A.weight", ".lora_B.weight"};
        bool done_key = false;
        for (int ab = 0; ab < 2 && !done_key; ab++) {
            size_t sl = strlen(sfx[ab]);
            if (rl <= sl || strcmp(rest + rl - sl, sfx[ab])) continue;
            char mod[256];
            if (rl - sl >= sizeof mod) break;
            memcpy(mod, rest, rl - sl);
            mod[rl - sl] = 0;
            bl_linear *L = bl_modules_find(s, mod);
            if (!L) {
                st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' names module '%s', which this model does not have; hint: "
                             "was the adapter trained on another architecture?", wpath, key, mod);
                goto done;
            }
            int li = (int)(L - s->lin);
            if (!sel[li]) {
                st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' is for module '%s', which target_modules in "
                             "adapter_config.json does not select", wpath, key, mod);
                goto done;
            }
            has[2 * li + ab] = true;
            done_key = true;
        }
        if (!done_key) {
            bl_param *p = bl_modules_param(s, rest);
            if (!p || !is_head_param(s, rest)) {
                st = bl_fail(BALORA_STATUS_FORMAT, "%s: unexpected tensor '%s' (neither a lora_A/lora_B factor nor a "
                             "classification head in modules_to_save)", wpath, key);
                goto done;
            }
        }
    }
    for (int i = 0; i < s->n_lin; i++)
        if (sel[i] && !(has[2 * i] && has[2 * i + 1])) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s' is targeted but its lora_%s.weight is missing", wpath,
                         s->lin[i].name, has[2 * i] ? "B" : "A");
            goto done;
        }
    if (cnt == 0) { st = no_match_error(&c, s); goto done; }
    if ((st = create(a, s, &c, sel))) goto done;
    for (int i = 0; i < a->n; i++) {
        bl_lora *m = &a->mods[i];
        char key[512];
        const char *name = s->lin[a->lin_index[i]].name;
        int64_t sa[2] = {m->r, m->in}, sb[2] = {m->out, m->r};
        snprintf(key, sizeof key, KEY_PREFIX "%s.lora_A.weight", name);
        if ((st = bl_st_read_f32(&f, key, 2, sa, m->A))) goto done;
        snprintf(key, sizeof key, KEY_PREFIX "%s.lora_B.weight", name);
        if ((st = bl_st_read_f32(&f, key, 2, sb, m->B))) goto done;
        if (m->A0) {
            memcpy(m->A0, m->A, (size_t)(m->r * m->in) * sizeof(float));
            memcpy(m->B0, m->B, (size_t)(m->out * m->r) * sizeof(float));
        }
    }
    for (int h = 0; h < a->n_heads; h++) {
        bl_param *p = &s->params[a->head_param[h]];
        char key[512];
        snprintf(key, sizeof key, KEY_PREFIX "%s", p->name);
        if (bl_st_find(&f, key) && (st = bl_st_read_f32(&f, key, p->ndim, p->shape, a->head_data[h]))) goto done;
    }
done:
    free(sel);
    free(has);
    bl_st_close(&f);
    if (st) {
        bl_fail_prefix(st, "loading adapter %s: ", dir);
        bl_lora_free(a);
    }
    return st;
}

/* ------------------------------------------------------------------ trainables, save */

static int cmp_param_name(const void *a, const void *b) {
    return strcmp(((const bl_param *)a)->name, ((const bl_param *)b)->name);
}

int bl_lora_trainables(const bl_adapter *a, bl_param *out, int cap) {
    int n = 2 * a->n + a->n_heads;
    if (!out || cap < n) return n;
    int k = 0;
    for (int i = 0; i < a->n; i++) {
        const bl_lora *m = &a->mods[i];
        const char *name = a->set->lin[a->lin_index[i]].name;
        for (int ab = 0; ab < 2; ab++) {
            bl_param *p = &out[k++];
            memset(p, 0, sizeof *p);
            snprintf(p->name, sizeof p->name, KEY_PREFIX "%.120s.lora_%c.weight", name, ab ? 'B' : 'A');
            p->ndim = 2;
            p->shape[0] = ab ? m->out : m->r;
            p->shape[1] = ab ? m->r : m->in;
            p->numel = p->shape[0] * p->shape[1];
            p->data = ab ? m->B : m->A;
            p->grad = ab ? m->gB : m->gA;
        }
    }
    for (int h = 0; h < a->n_heads; h++) {
        const bl_param *src = &a->set->params[a->head_param[h]];
        bl_param *p = &out[k++];
        *p = *src;
        snprintf(p->name, sizeof p->name, KEY_PREFIX "%.*s", (int)(sizeof p->name - sizeof KEY_PREFIX), src->name);
        p->data = a->head_data[h];
        p->grad = a->head_grad[h];
        p->train_data = NULL;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_param_name);
    return n;
}

void bl_lora_zero_grads(bl_adapter *a) {
    for (int i = 0; i < a->n; i++) {
        memset(a->mods[i].gA, 0, (size_t)(a->mods[i].r * a->mods[i].in) * sizeof(float));
        memset(a->mods[i].gB, 0, (size_t)(a->mods[i].out * a->mods[i].r) * sizeof(float));
    }
    for (int h = 0; h < a->n_heads; h++)
        memset(a->head_grad[h], 0, (size_t)a->set->params[a->head_param[h]].numel * sizeof(float));
}

static balora_status write_tensors(const bl_adapter *a, const char *path, bool grads, int n_meta,
                                   const char *const *mk, const char *const *mv) {
    int n = bl_lora_trainables(a, NULL, 0);
    bl_param *ps = bl_calloc((size_t)n + 1, sizeof *ps);
    if (!ps) return BALORA_STATUS_NOMEM;
    bl_lora_trainables(a, ps, n);
    bl_st_writer w;
    bl_st_writer_init(&w);
    balora_status st = bl_st_writer_meta(&w, "format", "pt");
    for (int i = 0; !st && i < n_meta; i++) st = bl_st_writer_meta(&w, mk[i], mv[i]);
    for (int i = 0; !st && i < n; i++)
        st = bl_st_writer_add(&w, ps[i].name, BL_DTYPE_F32, ps[i].ndim, ps[i].shape, grads ? ps[i].grad : ps[i].data);
    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    free(ps);
    return st;
}

balora_status bl_lora_save_grads(const bl_adapter *a, const char *path) {
    return write_tensors(a, path, true, 0, NULL, NULL);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

balora_status bl_lora_save(const bl_adapter *a, const char *dir, int n_meta, const char *const *meta_keys,
                           const char *const *meta_vals) {
    if (!a->set) return bl_fail(BALORA_STATUS_INVALID, "saving adapter: it is not attached to a model");
    BL_TRY(bl_mkdir_p(dir));
    const bl_lora_config *c = &a->cfg;
    const bl_module_set *s = a->set;
    bool conv1d = false;
    for (int i = 0; i < a->n; i++) conv1d |= s->lin[a->lin_index[i]].conv1d;
    /* target_modules: the leaf names actually adapted (PEFT also expands all-linear), sorted */
    const char *leaves[256];
    int nl = 0;
    for (int i = 0; i < a->n; i++) {
        const char *leaf = s->lin[a->lin_index[i]].leaf;
        bool seen = false;
        for (int k = 0; k < nl; k++) seen |= !strcmp(leaves[k], leaf);
        if (!seen && nl < 256) leaves[nl++] = leaf;
    }
    qsort(leaves, (size_t)nl, sizeof *leaves, cmp_str);
    /* keys added in sorted order (cJSON keeps insertion order) */
    cJSON *j = cJSON_CreateObject();
    if (!j) return bl_fail(BALORA_STATUS_NOMEM, "out of memory");
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "auto_mapping");
    cJSON_AddStringToObject(j, "base_model_name_or_path", c->base_model);
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", conv1d);
    cJSON_AddBoolToObject(j, "inference_mode", true);
    if (c->init == BL_LORA_INIT_GAUSSIAN) cJSON_AddStringToObject(j, "init_lora_weights", "gaussian");
    else if (c->init == BL_LORA_INIT_PISSA) {
        char iw[64];
        if (c->pissa_niter > 0) snprintf(iw, sizeof iw, "pissa_niter_%d", c->pissa_niter);
        else snprintf(iw, sizeof iw, "pissa");
        cJSON_AddStringToObject(j, "init_lora_weights", iw);
    } else cJSON_AddBoolToObject(j, "init_lora_weights", true);
    cJSON_AddNullToObject(j, "layer_replication");
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddItemToObject(j, "loftq_config", cJSON_CreateObject());
    cJSON_AddNumberToObject(j, "lora_alpha", c->alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", c->dropout);
    cJSON_AddNullToObject(j, "megatron_config");
    cJSON_AddStringToObject(j, "megatron_core", "megatron.core");
    if (a->n_heads > 0) {
        cJSON *ms = cJSON_AddArrayToObject(j, "modules_to_save");
        for (int h = 0; h < 4 && s->heads[h]; h++) cJSON_AddItemToArray(ms, cJSON_CreateString(s->heads[h]));
    } else cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", (double)c->r);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "revision");
    cJSON *tm = cJSON_AddArrayToObject(j, "target_modules");
    for (int k = 0; k < nl; k++) cJSON_AddItemToArray(tm, cJSON_CreateString(leaves[k]));
    cJSON_AddStringToObject(j, "task_type", s->task_type ? s->task_type : "CAUSAL_LM");
    cJSON_AddBoolToObject(j, "use_dora", false);
    cJSON_AddBoolToObject(j, "use_rslora", c->rslora);
    char path[4200];
    balora_status st = bl_path_join(path, sizeof path, dir, "adapter_config.json");
    if (!st) st = bl_json_save(j, path);
    cJSON_Delete(j);
    if (!st) st = bl_path_join(path, sizeof path, dir, "adapter_model.safetensors");
    if (!st) st = write_tensors(a, path, false, n_meta, meta_keys, meta_vals);
    return st;
}

balora_status bl_lora_merge_into_base(bl_adapter *a) {
    if (!a->set) return bl_fail(BALORA_STATUS_INVALID, "merge: the adapter is not attached");
    for (int i = 0; i < a->n; i++) {
        bl_linear *L = &a->set->lin[a->lin_index[i]];
        const bl_lora *m = &a->mods[i];
        bl_gemm(false, false, L->out, L->in, m->r, m->scale, m->B, m->r, m->A, m->in, 1.0f, L->W, L->in);
    }
    for (int h = 0; h < a->n_heads; h++) {
        bl_param *p = &a->set->params[a->head_param[h]];
        memcpy(p->data, a->head_data[h], (size_t)p->numel * sizeof(float));
    }
    return BALORA_STATUS_OK;
}
