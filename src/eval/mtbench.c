/* MT-Bench single-answer grading protocol (see mtbench.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "eval/mtbench.h"
#include "eval/jsonl.h"
#include "io/json.h"
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *id_text(const cJSON *v) {
    char b[64];
    if (cJSON_IsString(v)) return bl_strdup(v->valuestring);
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble)) { snprintf(b, sizeof b, "%.0f", v->valuedouble); return bl_strdup(b); }
    return NULL;
}

/* Up to two strings of a JSON array into out[]; returns how many, -1 if not an array of strings. */
static int two_strings(const cJSON *arr, char **out) {
    if (!cJSON_IsArray(arr)) return -1;
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it)) return -1;
        if (n < 2 && !(out[n++] = bl_strdup(it->valuestring))) return -1;
    }
    return n;
}

typedef struct q_ctx { bl_mt_set *s; int64_t cap; } q_ctx;

static balora_status q_line(void *vctx, const char *path, int64_t line, const cJSON *o) {
    q_ctx *c = vctx;
    bl_mt_set *s = c->s;
    if (s->n == c->cap) {
        int64_t nc = c->cap ? 2 * c->cap : 128;
        bl_mt_question *nq = bl_realloc(s->q, (size_t)nc * sizeof *nq);
        if (!nq) return BALORA_STATUS_NOMEM;
        s->q = nq; c->cap = nc;
    }
    bl_mt_question *q = &s->q[s->n++];
    memset(q, 0, sizeof *q);
    const cJSON *cat = cJSON_GetObjectItemCaseSensitive(o, "category");
    q->id = id_text(cJSON_GetObjectItemCaseSensitive(o, "question_id"));
    q->category = bl_strdup(cJSON_IsString(cat) ? cat->valuestring : "");
    if (!q->id || !q->category) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: needs 'question_id' (string or integer)", path, (long long)line);
    q->n_turns = two_strings(cJSON_GetObjectItemCaseSensitive(o, "turns"), q->turns);
    if (q->n_turns < 1) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: 'turns' must be a list of 1 or 2 question strings", path, (long long)line);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(o, "reference");
    if (ref && !cJSON_IsNull(ref) && two_strings(ref, q->refs) < 0)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: 'reference' must be a list of strings", path, (long long)line);
    return BALORA_STATUS_OK;
}

void bl_mt_set_free(bl_mt_set *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) {
        bl_mt_question *q = &s->q[i];
        free(q->id); free(q->category);
        for (int t = 0; t < 2; t++) { free(q->turns[t]); free(q->refs[t]); free(q->answers[t]); }
    }
    free(s->q);
    memset(s, 0, sizeof *s);
}

balora_status bl_mt_questions_load(const char *path, bl_mt_set *out) {
    memset(out, 0, sizeof *out);
    q_ctx c = {out, 0};
    balora_status st = bl_jsonl_read(path, q_line, &c);
    if (!st && out->n == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no questions", path);
    if (st) bl_mt_set_free(out);
    return st;
}

int64_t bl_mt_find(const bl_mt_set *s, const char *id) {
    for (int64_t i = 0; i < s->n; i++) if (!strcmp(s->q[i].id, id)) return i;
    return -1;
}

static balora_status a_line(void *vctx, const char *path, int64_t line, const cJSON *o) {
    bl_mt_set *s = vctx;
    char *id = id_text(cJSON_GetObjectItemCaseSensitive(o, "question_id"));
    if (!id) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: needs 'question_id'", path, (long long)line);
    int64_t k = bl_mt_find(s, id);
    free(id);
    if (k < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: question_id is not among the questions", path, (long long)line);
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(o, "turns");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(o, "choices");
    if (!turns && cJSON_IsArray(choices) && cJSON_GetArraySize(choices) > 0)
        turns = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "turns");
    bl_mt_question *q = &s->q[k];
    for (int t = 0; t < 2; t++) { free(q->answers[t]); q->answers[t] = NULL; }
    int n = two_strings(turns, q->answers);
    if (n < q->n_turns)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: needs 'turns' (or 'choices'[0].'turns') with %d answer string(s)", path, (long long)line, q->n_turns);
    return BALORA_STATUS_OK;
}

balora_status bl_mt_answers_load(const char *path, bl_mt_set *s) {
    BL_TRY(bl_jsonl_read(path, a_line, s));
    for (int64_t i = 0; i < s->n; i++)
        if (!s->q[i].answers[0]) return bl_fail(BALORA_STATUS_FORMAT, "%s: no answer for question %s", path, s->q[i].id);
    return BALORA_STATUS_OK;
}

/* ---- templates ---- */
static const char g_sys[] = "You are a fair and careful judge of the answers an AI assistant gives.";
static const char g_rate[] =
    "First explain your assessment briefly and objectively. Then give a rating from 1 to 10, written exactly as "
    "\"[[rating]]\", for example \"Rating: [[6]]\".";
static const char *g_default[BL_MT_KIND_COUNT] = {
    "Rate the assistant's answer to the user's question below for helpfulness, relevance, accuracy, depth, creativity "
    "and level of detail. %s\n\n[Question]\n{question}\n\n[Assistant's answer begins]\n{answer}\n[Assistant's answer ends]",
    "Rate the assistant's answer to the user's question below for correctness and helpfulness. A reference answer, "
    "which is correct, is given: compare the assistant's answer with it and name any mistakes. %s\n\n[Question]\n{question}\n\n"
    "[Reference answer begins]\n{ref_answer_1}\n[Reference answer ends]\n\n[Assistant's answer begins]\n{answer}\n[Assistant's answer ends]",
    "Below is a conversation between a user and an AI assistant. Rate the assistant's answer to the user's second "
    "question for helpfulness, relevance, accuracy, depth, creativity and level of detail. %s\n\n"
    "[Conversation begins]\n\n### User:\n{question_1}\n\n### Assistant:\n{answer_1}\n\n### User:\n{question_2}\n\n"
    "### Assistant:\n{answer_2}\n\n[Conversation ends]",
    "Below is a conversation between a user and an AI assistant. Rate the assistant's answer to the user's second "
    "question for correctness and helpfulness. Reference answers, which are correct, are given: compare the "
    "assistant's answer with them and name any mistakes. %s\n\n[Reference answers begin]\n\n### User:\n{question_1}\n\n"
    "### Reference answer:\n{ref_answer_1}\n\n### User:\n{question_2}\n\n### Reference answer:\n{ref_answer_2}\n\n"
    "[Reference answers end]\n\n[Conversation begins]\n\n### User:\n{question_1}\n\n### Assistant:\n{answer_1}\n\n"
    "### User:\n{question_2}\n\n### Assistant:\n{answer_2}\n\n[Conversation ends]",
};

void bl_mt_templates_free(bl_mt_templates *t) {
    if (!t) return;
    for (int k = 0; k < BL_MT_KIND_COUNT; k++) { free(t->system[k]); free(t->prompt[k]); }
    memset(t, 0, sizeof *t);
}

balora_status bl_mt_templates_default(bl_mt_templates *t) {
    memset(t, 0, sizeof *t);
    for (int k = 0; k < BL_MT_KIND_COUNT; k++) {
        size_t n = strlen(g_default[k]) + sizeof g_rate;
        t->system[k] = bl_strdup(g_sys);
        t->prompt[k] = bl_malloc(n);
        if (!t->system[k] || !t->prompt[k]) { bl_mt_templates_free(t); return BALORA_STATUS_NOMEM; }
        snprintf(t->prompt[k], n, g_default[k], g_rate);
    }
    return BALORA_STATUS_OK;
}

static balora_status tmpl_line(void *vctx, const char *path, int64_t line, const cJSON *o) {
    bl_mt_templates *t = vctx;
    static const char *names[BL_MT_KIND_COUNT] = {"single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn"};
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    if (!cJSON_IsString(name)) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: needs 'name'", path, (long long)line);
    for (int k = 0; k < BL_MT_KIND_COUNT; k++) {
        if (strcmp(name->valuestring, names[k])) continue;
        const cJSON *sys = cJSON_GetObjectItemCaseSensitive(o, "system_prompt"), *pt = cJSON_GetObjectItemCaseSensitive(o, "prompt_template");
        if (!cJSON_IsString(sys) || !cJSON_IsString(pt))
            return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: '%s' needs string fields 'system_prompt' and 'prompt_template'", path, (long long)line, names[k]);
        free(t->system[k]); free(t->prompt[k]);
        t->system[k] = bl_strdup(sys->valuestring);
        t->prompt[k] = bl_strdup(pt->valuestring);
        if (!t->system[k] || !t->prompt[k]) return BALORA_STATUS_NOMEM;
    }
    return BALORA_STATUS_OK; /* other judge kinds (pairwise) are not used */
}

balora_status bl_mt_templates_load(const char *path, bl_mt_templates *t) {
    memset(t, 0, sizeof *t);
    balora_status st = bl_jsonl_read(path, tmpl_line, t);
    for (int k = 0; k < BL_MT_KIND_COUNT && !st; k++)
        if (!t->prompt[k]) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no single-answer template of kind %d; hint: the file needs the lines single-v1, "
                                        "single-math-v1, single-v1-multi-turn and single-math-v1-multi-turn", path, k);
    if (st) bl_mt_templates_free(t);
    return st;
}

bool bl_mt_needs_ref(const char *category) {
    return category && (!strcmp(category, "math") || !strcmp(category, "reasoning") || !strcmp(category, "coding") ||
                        !strcmp(category, "arena-hard-200"));
}

/* Fills {name} placeholders (str.format style: "{{" and "}}" are literal braces); unknown names stay. */
static char *fill(const char *tmpl, const char *const *keys, const char *const *vals, int n) {
    size_t cap = strlen(tmpl) + 1;
    for (int i = 0; i < n; i++) {
        size_t occ = 0, kl = strlen(keys[i]);
        for (const char *p = strstr(tmpl, keys[i]); p; p = strstr(p + kl, keys[i])) occ++;
        cap += occ * strlen(vals[i]);
    }
    char *out = bl_malloc(cap);
    if (!out) return NULL;
    size_t k = 0;
    for (const char *p = tmpl; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) { out[k++] = p[0]; p += 2; continue; }
        int hit = -1;
        if (*p == '{') for (int i = 0; i < n && hit < 0; i++) if (!strncmp(p, keys[i], strlen(keys[i]))) hit = i;
        if (hit >= 0) { size_t vl = strlen(vals[hit]); memcpy(out + k, vals[hit], vl); k += vl; p += strlen(keys[hit]); }
        else out[k++] = *p++;
    }
    out[k] = 0;
    return out;
}

balora_status bl_mt_judge_prompt(const bl_mt_templates *t, const bl_mt_question *q, int turn, char **system, char **prompt) {
    *system = *prompt = NULL;
    if (turn < 1 || turn > q->n_turns) return bl_fail(BALORA_STATUS_INVALID, "MT-Bench question %s has no turn %d", q->id, turn);
    if (!q->answers[turn - 1]) return bl_fail(BALORA_STATUS_INVALID, "MT-Bench question %s: no answer for turn %d", q->id, turn);
    bool ref = bl_mt_needs_ref(q->category);
    if (ref && !q->refs[turn - 1])
        return bl_fail(BALORA_STATUS_FORMAT, "MT-Bench question %s (category %s) needs a reference answer for turn %d; hint: add \"reference\" to the question",
                       q->id, q->category, turn);
    bl_mt_kind kind = turn == 1 ? (ref ? BL_MT_SINGLE_REF : BL_MT_SINGLE) : (ref ? BL_MT_MULTI_REF : BL_MT_MULTI);
    const char *e = "";
    const char *keys[] = {"{question}", "{answer}", "{ref_answer_1}", "{question_1}", "{answer_1}", "{ref_answer_2}", "{question_2}", "{answer_2}"};
    const char *vals[] = {q->turns[0], q->answers[0], q->refs[0] ? q->refs[0] : e, q->turns[0], q->answers[0],
                          q->refs[1] ? q->refs[1] : e, q->turns[1] ? q->turns[1] : e, q->answers[1] ? q->answers[1] : e};
    *system = bl_strdup(t->system[kind]);
    *prompt = fill(t->prompt[kind], keys, vals, 8);
    if (!*system || !*prompt) { free(*system); free(*prompt); *system = *prompt = NULL; return BALORA_STATUS_NOMEM; }
    return BALORA_STATUS_OK;
}

bool bl_mt_extract_score(const char *judgment, double *score) {
    static const char *pats[2] = {"\\[\\[(\\d+\\.?\\d*)\\]\\]", "\\[(\\d+\\.?\\d*)\\]"};
    if (!judgment) return false;
    for (int i = 0; i < 2; i++) {
        int err; PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pats[i], PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (!re) return false;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        bool found = false;
        if (md && pcre2_match(re, (PCRE2_SPTR)judgment, strlen(judgment), 0, 0, md, NULL) >= 2) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            char buf[64];
            size_t n = ov[3] - ov[2] < sizeof buf - 1 ? ov[3] - ov[2] : sizeof buf - 1;
            memcpy(buf, judgment + ov[2], n);
            buf[n] = 0;
            *score = strtod(buf, NULL);
            found = true;
        }
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        if (found) return true;
    }
    return false;
}

typedef struct j_ctx { const bl_mt_set *s; bl_mt_report *r; double sum, turn_sum[2], cat_sum[BL_MT_MAX_CATEGORIES]; } j_ctx;

static balora_status j_line(void *vctx, const char *path, int64_t line, const cJSON *o) {
    j_ctx *c = vctx;
    char *id = id_text(cJSON_GetObjectItemCaseSensitive(o, "question_id"));
    if (!id) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: needs 'question_id'", path, (long long)line);
    int64_t k = bl_mt_find(c->s, id);
    free(id);
    if (k < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: question_id is not among the questions", path, (long long)line);
    int64_t turn = 1;
    BL_TRY(bl_json_int(o, path, "turn", false, &turn));
    if (turn < 1 || turn > c->s->q[k].n_turns) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: turn %lld does not exist", path, (long long)line, (long long)turn);
    const char *j = NULL;
    BL_TRY(bl_json_str(o, path, "judgment", true, &j));
    double v;
    bl_mt_report *r = c->r;
    if (!bl_mt_extract_score(j, &v)) { r->n_unscored++; return BALORA_STATUS_OK; }
    r->n++; c->sum += v;
    r->turn_n[turn - 1]++; c->turn_sum[turn - 1] += v;
    const char *cat = c->s->q[k].category;
    int ci = -1;
    for (int i = 0; i < r->n_cats; i++) if (!strcmp(r->cats[i], cat)) ci = i;
    if (ci < 0 && r->n_cats < BL_MT_MAX_CATEGORIES) { ci = r->n_cats++; snprintf(r->cats[ci], sizeof r->cats[ci], "%s", cat); }
    if (ci >= 0) { r->cat_n[ci]++; c->cat_sum[ci] += v; }
    return BALORA_STATUS_OK;
}

balora_status bl_mt_score_judgments(const bl_mt_set *s, const char *path, bl_mt_report *r) {
    memset(r, 0, sizeof *r);
    j_ctx c = {.s = s, .r = r};
    BL_TRY(bl_jsonl_read(path, j_line, &c));
    r->mean = r->n ? c.sum / (double)r->n : NAN;
    for (int t = 0; t < 2; t++) r->turn_mean[t] = r->turn_n[t] ? c.turn_sum[t] / (double)r->turn_n[t] : NAN;
    for (int i = 0; i < r->n_cats; i++) r->cat_mean[i] = c.cat_sum[i] / (double)r->cat_n[i];
    if (r->n + r->n_unscored == 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: no judgments", path);
    return BALORA_STATUS_OK;
}
