/* LoRA adapters in PEFT's folder format: init, load, save, attach, merge (lora.h). */
#include "adapters/lora.h"
#include "io/json.h"
#include "io/merge.h"
#include "io/safetensors.h"
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_PREFIX BL_PEFT_PREFIX

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

float bl_lora_scale(const bl_lora_config *c, int64_t r, double alpha) {
    return (float)(c->rslora ? alpha / sqrt((double)r) : alpha / (double)r);
}

/* "KEY=V,KEY=V" or a JSON object {"KEY": V, ...} -> out (rank: V a positive integer <= 65536, alpha:
 * V a positive finite number; keys non-empty and each given once). */
static balora_status parse_pattern_list(const char *list, bool rank, bl_peft_pattern *out, int *n) {
    const char *what = rank ? "rank_pattern" : "alpha_pattern";
    *n = 0;
    const char *q = list;
    while (q && isspace((unsigned char)*q)) q++;
    bool json = q && *q == '{';
    if (json) { /* JSON object text, as in adapter_config.json */
        cJSON *j = cJSON_Parse(q);
        if (!j) return bl_fail(BALORA_STATUS_INVALID, "%s: '%.80s' is not a JSON object; hint: {\"q_proj\": 16, \"v_proj\": 4} or q_proj=16,v_proj=4",
                               what, q);
        balora_status st = bl_peft_pattern_parse("lora config", what, j, rank, out, n);
        cJSON_Delete(j);
        if (st == BALORA_STATUS_FORMAT) st = BALORA_STATUS_INVALID; /* an option's value, not a file */
        BL_TRY(st);
    }
    for (const char *p = json ? NULL : list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq)
            return bl_fail(BALORA_STATUS_INVALID, "%s: entry '%.*s' is not KEY=VALUE; hint: e.g. v_proj=2,layers.1.mlp.up_proj=6", what,
                           (int)len, p);
        size_t kl = (size_t)(eq - p);
        if (*n >= BL_PEFT_MAX_PATTERNS || kl >= sizeof out[0].key)
            return bl_fail(BALORA_STATUS_INVALID, "%s: more than %d entries or a key longer than %zu bytes", what, BL_PEFT_MAX_PATTERNS,
                           sizeof out[0].key - 1);
        char num[64];
        size_t vl = len - kl - 1;
        if (vl == 0 || vl >= sizeof num) return bl_fail(BALORA_STATUS_INVALID, "%s: entry '%.*s' has no value", what, (int)len, p);
        memcpy(num, eq + 1, vl);
        num[vl] = 0;
        char *end;
        double v = strtod(num, &end);
        if (*end || end == num)
            return bl_fail(BALORA_STATUS_INVALID, "%s: value '%s' for '%.*s' must be a positive %s", what, num, (int)kl, p,
                           rank ? "integer <= 65536" : "number");
        memcpy(out[*n].key, p, kl);
        out[*n].key[kl] = 0;
        out[*n].value = v;
        (*n)++;
        p = e ? e + 1 : NULL;
    }
    for (int k = 0; k < *n; k++) {
        double v = out[k].value;
        if (!out[k].key[0])
            return bl_fail(BALORA_STATUS_INVALID, "%s: entry %d has an empty key; hint: a module name or its end, e.g. v_proj or "
                           "layers.1.mlp.up_proj", what, k + 1);
        if (!(v > 0) || !isfinite(v) || (rank && (v != floor(v) || v > 65536)))
            return bl_fail(BALORA_STATUS_INVALID, "%s: value %g for '%s' must be a positive %s", what, v, out[k].key,
                           rank ? "integer <= 65536" : "finite number");
        for (int i = 0; i < k; i++)
            if (!strcmp(out[i].key, out[k].key))
                return bl_fail(BALORA_STATUS_INVALID, "%s: key '%s' is given twice", what, out[k].key);
    }
    return BALORA_STATUS_OK;
}

balora_status bl_lora_config_set_patterns(bl_lora_config *c, const char *rank_list, const char *alpha_list) {
    bl_peft_patterns p;
    memset(&p, 0, sizeof p);
    BL_TRY(parse_pattern_list(rank_list, true, p.rank, &p.n_rank));
    BL_TRY(parse_pattern_list(alpha_list, false, p.alpha, &p.n_alpha));
    /* every key must be a valid regular expression */
    int64_t r;
    double a;
    for (int k = 0; k < p.n_rank + p.n_alpha; k++)
        BL_TRY(bl_peft_patterns_resolve(&p, "lora config", k < p.n_rank ? p.rank[k].key : p.alpha[k - p.n_rank].key, 1, 1, &r, &a));
    c->patterns = p;
    return BALORA_STATUS_OK;
}

balora_status bl_lora_module_rank_alpha(const bl_lora_config *c, const char *name, int64_t *r, double *alpha) {
    return bl_peft_patterns_resolve(&c->patterns, "lora config", name, c->r, c->alpha, r, alpha);
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

/* Allocates everything for the modules flagged in sel (and head params), attaches them.
 * file names the config in errors (the adapter_config.json, or "lora config"). */
static balora_status create(bl_adapter *a, bl_module_set *s, const bl_lora_config *c, const bool *sel, const char *file) {
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
    for (int i = 0; i < n; i++) { /* each module's r and alpha (rank_pattern / alpha_pattern) */
        const bl_linear *L = &s->lin[a->lin_index[i]];
        bl_lora *m = &a->mods[i];
        int64_t r;
        double alpha;
        BL_TRY(bl_peft_patterns_resolve(&c->patterns, file, L->name, c->r, c->alpha, &r, &alpha));
        if (r <= 0 || r > 65536)
            return bl_fail(BALORA_STATUS_INVALID, "%s: module '%s': rank %lld must be in 1..65536 (fields 'r' / 'rank_pattern')", file,
                           L->name, (long long)r);
        m->in = L->in; m->out = L->out; m->r = r;
        m->scale = bl_lora_scale(c, r, alpha);
        m->dropout = (float)c->dropout;
    }
    bool keep = c->keep_initial;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) BL_TRY(bl_arena_alloc(&a->arena));
        for (int i = 0; i < n; i++) {
            const bl_linear *L = &s->lin[a->lin_index[i]];
            bl_lora *m = &a->mods[i];
            int64_t r = m->r;
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
    for (int i = 0; !st && i < s->n_lin; i++) {
        int64_t r;
        double alpha;
        if (!sel[i] || c->init != BL_LORA_INIT_PISSA) continue;
        st = bl_lora_module_rank_alpha(c, s->lin[i].name, &r, &alpha);
        if (!st && r > (s->lin[i].in < s->lin[i].out ? s->lin[i].in : s->lin[i].out))
            st = bl_fail(BALORA_STATUS_INVALID, "lora: rank %lld exceeds min(in, out) of %s for PiSSA", (long long)r, s->lin[i].name);
    }
    if (!st) st = create(a, s, c, sel, "lora config");
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

/* The parsed PEFT config (src/io/peft_files.h) as a bl_lora_config, refusing what the engine
 * cannot attach. */
static balora_status config_from_peft(const bl_peft_config *pc, const bl_module_set *s, bl_lora_config *c) {
    const char *file = pc->path;
    bl_lora_config_default(c);
    if (pc->r > 65536) return bl_fail(BALORA_STATUS_INVALID, "%s: field 'r' = %lld must be in 1..65536", file, (long long)pc->r);
    for (int k = 0; k < pc->patterns.n_rank; k++)
        if (pc->patterns.rank[k].value > 65536)
            return bl_fail(BALORA_STATUS_INVALID, "%s: field 'rank_pattern': '%s' = %g must be in 1..65536", file,
                           pc->patterns.rank[k].key, pc->patterns.rank[k].value);
    if (!(pc->lora_alpha > 0)) return bl_fail(BALORA_STATUS_INVALID, "%s: field 'lora_alpha' must be positive", file);
    c->r = pc->r;
    c->alpha = pc->lora_alpha;
    c->dropout = pc->lora_dropout;
    c->rslora = pc->use_rslora;
    c->patterns = pc->patterns;
    if (pc->use_dora) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'use_dora' = true: DoRA is not supported", file);
    if (strcmp(pc->bias, "none"))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'bias' = \"%s\": only \"none\" is supported", file, pc->bias);
    if (pc->layers_to_transform) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'layers_to_transform' is set: not supported", file);
    if (pc->layer_replication) return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'layer_replication' is set: not supported", file);
    const cJSON *tm = pc->target_modules;
    if (cJSON_IsString(tm)) {
        if (!strcmp(tm->valuestring, "all-linear")) BL_TRY(bl_lora_config_set_targets(c, "all-linear"));
        else {
            if (strlen(tm->valuestring) >= sizeof c->target_regex)
                return bl_fail(BALORA_STATUS_INVALID, "%s: field 'target_modules' regex is too long", file);
            snprintf(c->target_regex, sizeof c->target_regex, "%s", tm->valuestring);
        }
    } else if (cJSON_IsArray(tm)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, tm) { /* strings (checked by the parser) */
            if (c->n_targets >= BL_LORA_MAX_TARGETS || strlen(it->valuestring) >= sizeof c->targets[0])
                return bl_fail(BALORA_STATUS_INVALID, "%s: field 'target_modules': too many or too long names", file);
            snprintf(c->targets[c->n_targets++], sizeof c->targets[0], "%s", it->valuestring);
        }
    } else {
        return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'target_modules' is missing; hint: a list of module names or a regex string", file);
    }
    const cJSON *iw = pc->init_lora_weights;
    if (cJSON_IsString(iw)) {
        if (!strcmp(iw->valuestring, "gaussian")) c->init = BL_LORA_INIT_GAUSSIAN;
        else if (!strcmp(iw->valuestring, "pissa")) c->init = BL_LORA_INIT_PISSA;
        else if (!strncmp(iw->valuestring, "pissa_niter_", 12)) { c->init = BL_LORA_INIT_PISSA; c->pissa_niter = atoi(iw->valuestring + 12); }
        else return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'init_lora_weights' = \"%s\" is not supported", file, iw->valuestring);
    }
    if (pc->base_model) snprintf(c->base_model, sizeof c->base_model, "%s", pc->base_model);
    /* modules_to_save: only the model's own head modules (SEQ_CLS) */
    const cJSON *ms = pc->modules_to_save, *it;
    if (ms) cJSON_ArrayForEach(it, ms) {
        if (!cJSON_IsString(it)) return bl_fail(BALORA_STATUS_FORMAT, "%s: field 'modules_to_save' must hold strings", file);
        bool known = !strcmp(it->valuestring, "classifier") || !strcmp(it->valuestring, "score");
        for (int h = 0; h < 4 && s->heads[h]; h++) known |= !strcmp(it->valuestring, s->heads[h]);
        if (!known)
            return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: field 'modules_to_save' lists '%s': only classification heads "
                           "can be fully trained with an adapter", file, it->valuestring);
    }
    return BALORA_STATUS_OK;
}

/* Maps the parsed folder onto s and attaches it. */
static balora_status load_into(bl_adapter *a, bl_module_set *s, const bl_peft_adapter *pa, bool keep_initial) {
    const char *wpath = pa->weights_path;
    BL_TRY(bl_peft_validate(pa));
    bl_lora_config c;
    BL_TRY(config_from_peft(&pa->cfg, s, &c));
    c.keep_initial = keep_initial;
    balora_status st = BALORA_STATUS_OK;
    bool *sel = bl_calloc((size_t)s->n_lin + 1, 1);
    const bl_peft_pair **pair_of = bl_calloc((size_t)s->n_lin + 1, sizeof *pair_of); /* [n_lin] */
    if (!sel || !pair_of) { st = BALORA_STATUS_NOMEM; goto done; }
    int cnt;
    if ((st = match_targets(&c, s, sel, &cnt))) goto done;
    /* every factor pair must name a targeted linear module, every full tensor a head */
    for (int i = 0; i < pa->n_pairs; i++) {
        const bl_peft_pair *p = &pa->pairs[i];
        if (p->embedding) {
            st = bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: tensor '%s' adapts module '%s' as an embedding (lora_embedding_A/B): "
                         "balora attaches LoRA to linear modules only; hint: balora merge can merge it", wpath, p->a->name, p->module);
            goto done;
        }
        bl_linear *L = bl_modules_find(s, p->module);
        if (!L) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' names module '%s', which this model does not have; hint: "
                         "was the adapter trained on another architecture?", wpath, p->a->name, p->module);
            goto done;
        }
        int li = (int)(L - s->lin);
        if (!sel[li]) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: tensor '%s' is for module '%s', which field 'target_modules' in %s "
                         "does not select", wpath, p->a->name, p->module, pa->cfg.path);
            goto done;
        }
        pair_of[li] = p;
    }
    for (int i = 0; i < pa->n_full; i++) {
        const bl_peft_full *fu = &pa->full[i];
        if (!bl_modules_param(s, fu->base_name) || !is_head_param(s, fu->base_name)) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: unexpected tensor '%s' (neither a lora_A/lora_B factor nor a "
                         "classification head in modules_to_save)", wpath, fu->t->name);
            goto done;
        }
    }
    for (int i = 0; i < s->n_lin; i++)
        if (sel[i] && !pair_of[i]) {
            st = bl_fail(BALORA_STATUS_FORMAT, "%s: module '%s' is targeted (field 'target_modules' in %s) but its lora_A.weight / "
                         "lora_B.weight are missing", wpath, s->lin[i].name, pa->cfg.path);
            goto done;
        }
    if (cnt == 0) { st = no_match_error(&c, s); goto done; }
    if ((st = create(a, s, &c, sel, pa->cfg.path))) goto done;
    for (int i = 0; i < a->n; i++) {
        bl_lora *m = &a->mods[i];
        const bl_peft_pair *p = pair_of[a->lin_index[i]];
        int64_t sa[2] = {m->r, m->in}, sb[2] = {m->out, m->r};
        if ((st = bl_st_read_f32(&pa->file, p->a->name, 2, sa, m->A))) goto done;
        if ((st = bl_st_read_f32(&pa->file, p->b->name, 2, sb, m->B))) goto done;
        if (m->A0) {
            memcpy(m->A0, m->A, (size_t)(m->r * m->in) * sizeof(float));
            memcpy(m->B0, m->B, (size_t)(m->out * m->r) * sizeof(float));
        }
    }
    for (int h = 0; h < a->n_heads; h++) {
        bl_param *p = &s->params[a->head_param[h]];
        for (int i = 0; i < pa->n_full; i++)
            if (!strcmp(pa->full[i].base_name, p->name) &&
                (st = bl_st_read_f32(&pa->file, pa->full[i].t->name, p->ndim, p->shape, a->head_data[h])))
                goto done;
    }
done:
    free(sel);
    free(pair_of);
    return st;
}

balora_status bl_lora_load(bl_adapter *a, bl_module_set *s, const char *dir, bool keep_initial) {
    memset(a, 0, sizeof *a);
    bl_peft_adapter pa;
    balora_status st = bl_peft_open(&pa, dir);
    if (st) return bl_fail_prefix(st, "loading adapter %s: ", dir);
    st = load_into(a, s, &pa, keep_initial);
    bl_peft_close(&pa);
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

/* A module's alpha: the first of cfg.alpha, its scale times r (or sqrt(r)) rounded to 6 decimals,
 * and that product unrounded, that gives the module's float32 scale exactly. */
static double module_alpha(const bl_lora_config *c, const bl_lora *m) {
    double a = c->rslora ? (double)m->scale * sqrt((double)m->r) : (double)m->scale * (double)m->r;
    double cand[2] = {c->alpha, round(a * 1e6) / 1e6};
    for (int k = 0; k < 2; k++)
        if (cand[k] > 0 && bl_lora_scale(c, m->r, cand[k]) == m->scale) return cand[k];
    return a;
}

/* key for a regular expression matching `text` literally. */
static balora_status escape_key(const char *text, char *out, size_t cap) {
    size_t k = 0;
    for (const char *p = text; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-';
        if (k + 3 > cap) return bl_fail(BALORA_STATUS_INVALID, "saving adapter: module name '%.80s' is too long for a pattern key", text);
        if (!plain) out[k++] = '\\';
        out[k++] = *p;
    }
    out[k] = 0;
    return BALORA_STATUS_OK;
}

static balora_status add_pattern(bl_peft_pattern *list, int *n, const char *key, double v) {
    if (*n >= BL_PEFT_MAX_PATTERNS)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "saving adapter: more than %d modules need their own rank or alpha "
                       "(rank_pattern / alpha_pattern)", BL_PEFT_MAX_PATTERNS);
    snprintf(list[*n].key, sizeof list[0].key, "%s", key);
    list[*n].value = v;
    (*n)++;
    return BALORA_STATUS_OK;
}

/* Does p give every module of a its r and alpha? */
static balora_status patterns_fit(const bl_adapter *a, const bl_peft_patterns *p, const int64_t *rs, const double *as, bool *fit) {
    *fit = true;
    for (int i = 0; i < a->n && *fit; i++) {
        int64_t r;
        double alpha;
        BL_TRY(bl_peft_patterns_resolve(p, "adapter config", a->set->lin[a->lin_index[i]].name, a->cfg.r, a->cfg.alpha, &r, &alpha));
        *fit = r == rs[i] && alpha == as[i];
    }
    return BALORA_STATUS_OK;
}

/* rank_pattern / alpha_pattern for the modules' own r and alpha (see bl_lora_save). */
static balora_status save_patterns(const bl_adapter *a, bl_peft_patterns *out) {
    const bl_lora_config *c = &a->cfg;
    const bl_module_set *s = a->set;
    memset(out, 0, sizeof *out);
    int64_t *rs = bl_calloc((size_t)a->n + 1, sizeof *rs);
    double *as = bl_calloc((size_t)a->n + 1, sizeof *as);
    bool *done = bl_calloc((size_t)a->n + 1, 1);
    balora_status st = (!rs || !as || !done) ? BALORA_STATUS_NOMEM : BALORA_STATUS_OK;
    bool any = false, fit = false;
    for (int i = 0; !st && i < a->n; i++) {
        rs[i] = a->mods[i].r;
        as[i] = module_alpha(c, &a->mods[i]);
        any |= rs[i] != c->r || as[i] != c->alpha;
    }
    if (!st && (c->patterns.n_rank || c->patterns.n_alpha)) st = patterns_fit(a, &c->patterns, rs, as, &fit);
    if (!st && fit) *out = c->patterns; /* the config's own keys */
    if (st || fit || !any) goto done;
    /* one key per leaf name when all its modules agree, else one per module */
    for (int i = 0; !st && i < a->n; i++) {
        if (done[i]) continue;
        const char *leaf = s->lin[a->lin_index[i]].leaf;
        bool same = true;
        for (int j = i; j < a->n; j++)
            if (!strcmp(s->lin[a->lin_index[j]].leaf, leaf)) same &= rs[j] == rs[i] && as[j] == as[i];
        for (int j = i; !st && j < a->n; j++) {
            const char *name = s->lin[a->lin_index[j]].name;
            if (strcmp(s->lin[a->lin_index[j]].leaf, leaf) || done[j]) continue;
            done[j] = true;
            if (same && j != i) continue;
            if (rs[j] == c->r && as[j] == c->alpha) continue;
            char key[sizeof out->rank[0].key];
            if (same) st = escape_key(leaf, key, sizeof key);
            else {
                /* the path without its first component ("layers.1.mlp.up_proj"), if that names only
                 * this module; else the path itself (PEFT's fallback looks it up by name) */
                const char *dot = strchr(name, '.');
                st = escape_key(dot ? dot + 1 : name, key, sizeof key);
                int hits = 0;
                for (int k = 0; !st && dot && k < s->n_lin; k++) {
                    bl_peft_patterns one;
                    memset(&one, 0, sizeof one);
                    one.n_rank = 1;
                    snprintf(one.rank[0].key, sizeof one.rank[0].key, "%s", key);
                    one.rank[0].value = 2;
                    int64_t r;
                    double al;
                    st = bl_peft_patterns_resolve(&one, "adapter config", s->lin[k].name, 1, 1, &r, &al);
                    hits += r == 2;
                }
                if (!st && (!dot || hits != 1)) snprintf(key, sizeof key, "%s", name);
            }
            if (!st && rs[j] != c->r) st = add_pattern(out->rank, &out->n_rank, key, (double)rs[j]);
            if (!st && as[j] != c->alpha) st = add_pattern(out->alpha, &out->n_alpha, key, as[j]);
        }
    }
    if (!st) st = patterns_fit(a, out, rs, as, &fit);
    if (!st && !fit) st = bl_fail(BALORA_STATUS_INTERNAL, "saving adapter: rank_pattern / alpha_pattern do not reproduce the modules' ranks");
done:
    free(rs); free(as); free(done);
    return st;
}

static cJSON *pattern_json(const bl_peft_pattern *p, int n) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < n; i++) cJSON_AddNumberToObject(o, p[i].key, p[i].value);
    return o;
}

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
    bl_peft_patterns *pat = bl_calloc(1, sizeof *pat);
    if (!pat) return BALORA_STATUS_NOMEM;
    balora_status pst = save_patterns(a, pat);
    if (pst) { free(pat); return pst; }
    /* keys added in sorted order (cJSON keeps insertion order) */
    cJSON *j = cJSON_CreateObject();
    if (!j) { free(pat); return bl_fail(BALORA_STATUS_NOMEM, "out of memory"); }
    cJSON_AddItemToObject(j, "alpha_pattern", pattern_json(pat->alpha, pat->n_alpha));
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
    cJSON_AddItemToObject(j, "rank_pattern", pattern_json(pat->rank, pat->n_rank));
    free(pat);
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
        BL_TRY(bl_merge_lora_delta(L->W, false, L->out, L->in, m->r, m->scale, m->B, m->A, L->name));
    }
    for (int h = 0; h < a->n_heads; h++) {
        bl_param *p = &a->set->params[a->head_param[h]];
        memcpy(p->data, a->head_data[h], (size_t)p->numel * sizeof(float));
    }
    return BALORA_STATUS_OK;
}
