/* Benchmark data, completions, programs and scoring (see bench.h). */
#include "eval/bench.h"
#include "eval/gsm8k.h"
#include "eval/journal.h"
#include "eval/jsonl.h"
#include "eval/mathgrade.h"
#include "eval/metrics.h"
#include "io/json.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *g_bench_names[BL_BENCH_COUNT] = {"gsm8k", "math", "humaneval", "mbpp"};

balora_status bl_bench_parse(const char *name, bl_bench *out) {
    for (int i = 0; name && i < BL_BENCH_COUNT; i++)
        if (!strcasecmp(name, g_bench_names[i])) { *out = (bl_bench)i; return BALORA_STATUS_OK; }
    return bl_fail(BALORA_STATUS_INVALID, "unknown benchmark '%s'; hint: one of gsm8k, math, humaneval, mbpp", name ? name : "(none)");
}
const char *bl_bench_name(bl_bench b) { return (unsigned)b < BL_BENCH_COUNT ? g_bench_names[b] : "?"; }
bool bl_bench_is_code(bl_bench b) { return b == BL_BENCH_HUMANEVAL || b == BL_BENCH_MBPP; }

/* ---- data sets ---- */
typedef struct load_ctx { bl_bench_set *s; int64_t cap; } load_ctx;

static balora_status str_field(const cJSON *o, const char *path, int64_t line, const char *key, bool required, char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: missing field '%s'", path, (long long)line, key);
        *out = bl_strdup("");
        return *out ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
    }
    if (cJSON_IsString(v)) *out = bl_strdup(v->valuestring);
    else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble)) {
        char b[32]; snprintf(b, sizeof b, "%.0f", v->valuedouble); *out = bl_strdup(b);
    } else return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: field '%s' must be a string", path, (long long)line, key);
    return *out ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
}

static char *join_lines(const cJSON *arr, const char *prefix) {
    size_t n = strlen(prefix) + 2;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) if (cJSON_IsString(it)) n += strlen(it->valuestring) + 1;
    char *r = bl_malloc(n);
    if (!r) return NULL;
    size_t k = (size_t)sprintf(r, "%s", prefix);
    cJSON_ArrayForEach(it, arr) if (cJSON_IsString(it)) k += (size_t)sprintf(r + k, "%s\n", it->valuestring);
    return r;
}

char *bl_mbpp_prompt(const char *text, const char *const *tests, int64_t n_tests) {
    static const char head[] = "You are an expert Python programmer, and here is your task: ";
    static const char mid[] = " Your code should pass these tests:\n\n";
    size_t n = sizeof head + sizeof mid + strlen(text) + 2;
    for (int64_t i = 0; i < n_tests; i++) n += strlen(tests[i]) + 1;
    char *r = bl_malloc(n);
    if (!r) return NULL;
    size_t k = (size_t)sprintf(r, "%s%s%s", head, text, mid);
    for (int64_t i = 0; i < n_tests; i++) k += (size_t)sprintf(r + k, "%s\n", tests[i]);
    return r;
}

static balora_status load_line(void *vctx, const char *path, int64_t line, const cJSON *o) {
    load_ctx *ctx = vctx;
    bl_bench_set *s = ctx->s;
    if (s->n == ctx->cap) {
        int64_t nc = ctx->cap ? ctx->cap * 2 : 256;
        bl_bench_problem *np = bl_realloc(s->p, (size_t)nc * sizeof *np);
        if (!np) return BALORA_STATUS_NOMEM;
        s->p = np; ctx->cap = nc;
    }
    bl_bench_problem *p = &s->p[s->n];
    memset(p, 0, sizeof *p);
    s->n++; /* counted now so that bl_bench_set_free frees a half-filled problem */
    char idx[32];
    snprintf(idx, sizeof idx, "%lld", (long long)(s->n - 1));
    switch (s->bench) {
    case BL_BENCH_GSM8K:
        BL_TRY(str_field(o, path, line, "question", true, &p->prompt));
        BL_TRY(str_field(o, path, line, "answer", true, &p->reference));
        if (bl_gsm8k_reference(p->reference, &p->ref_value)) return bl_fail_prefix(BALORA_STATUS_FORMAT, "%s: line %lld", path, (long long)line);
        p->id = bl_strdup(idx);
        break;
    case BL_BENCH_MATH: {
        BL_TRY(str_field(o, path, line, "problem", true, &p->prompt));
        const cJSON *ans = cJSON_GetObjectItemCaseSensitive(o, "answer");
        if (ans && !cJSON_IsNull(ans)) BL_TRY(str_field(o, path, line, "answer", true, &p->reference));
        else {
            char *sol;
            BL_TRY(str_field(o, path, line, "solution", true, &sol));
            p->reference = bl_math_last_boxed(sol);
            free(sol);
            if (!p->reference) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: the solution has no \\boxed{...} final answer (and there is no 'answer' field)", path, (long long)line);
        }
        p->id = bl_strdup(idx);
        break;
    }
    case BL_BENCH_HUMANEVAL:
        BL_TRY(str_field(o, path, line, "task_id", true, &p->id));
        BL_TRY(str_field(o, path, line, "prompt", true, &p->prompt));
        BL_TRY(str_field(o, path, line, "canonical_solution", false, &p->reference));
        BL_TRY(str_field(o, path, line, "test", true, &p->test));
        BL_TRY(str_field(o, path, line, "entry_point", true, &p->entry_point));
        break;
    case BL_BENCH_MBPP: {
        BL_TRY(str_field(o, path, line, "task_id", true, &p->id));
        char *text, *setup;
        BL_TRY(str_field(o, path, line, "text", true, &text));
        balora_status st = str_field(o, path, line, "code", false, &p->reference);
        if (!st) st = str_field(o, path, line, "test_setup_code", false, &setup);
        if (st) { free(text); return st; }
        const cJSON *tl = cJSON_GetObjectItemCaseSensitive(o, "test_list");
        int64_t nt = cJSON_IsArray(tl) ? cJSON_GetArraySize(tl) : 0;
        const cJSON *it;
        bool strings = true;
        cJSON_ArrayForEach(it, tl) strings &= cJSON_IsString(it);
        if (nt == 0 || !strings) { free(text); free(setup); return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: 'test_list' must be a non-empty list of strings", path, (long long)line); }
        const char *tests[64] = {0};
        int64_t k = 0;
        cJSON_ArrayForEach(it, tl) if (k < 64) tests[k++] = it->valuestring;
        p->prompt = bl_mbpp_prompt(text, tests, k);
        char *pre = bl_malloc(strlen(setup) + 2);
        if (pre) { sprintf(pre, "%s\n", setup); p->test = join_lines(tl, pre); free(pre); }
        free(text); free(setup);
        if (!p->prompt || !p->test) return BALORA_STATUS_NOMEM;
        break;
    }
    default: return bl_fail(BALORA_STATUS_INVALID, "bad benchmark id");
    }
    if (!p->id) return BALORA_STATUS_NOMEM;
    return BALORA_STATUS_OK;
}

balora_status bl_bench_load(bl_bench bench, const char *path, bl_bench_set *out) {
    memset(out, 0, sizeof *out);
    if ((unsigned)bench >= BL_BENCH_COUNT) return bl_fail(BALORA_STATUS_INVALID, "bad benchmark id %d", (int)bench);
    out->bench = bench;
    load_ctx ctx = {out, 0};
    balora_status st = bl_jsonl_read(path, load_line, &ctx);
    if (!st && out->n == 0) st = bl_fail(BALORA_STATUS_FORMAT, "%s: no problems in the file", path);
    if (st) { bl_bench_set_free(out); return bl_fail_prefix(st, "loading %s data", bl_bench_name(bench)); }
    return BALORA_STATUS_OK;
}

void bl_bench_set_free(bl_bench_set *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n; i++) {
        bl_bench_problem *p = &s->p[i];
        free(p->id); free(p->prompt); free(p->reference); free(p->test); free(p->entry_point);
    }
    free(s->p);
    memset(s, 0, sizeof *s);
}

int64_t bl_bench_find(const bl_bench_set *s, const char *id) {
    for (int64_t i = 0; i < s->n; i++) if (!strcmp(s->p[i].id, id)) return i;
    return -1;
}

char *bl_bench_program(const bl_bench_set *s, int64_t i, const char *completion) {
    if (i < 0 || i >= s->n || !completion) return NULL;
    const bl_bench_problem *p = &s->p[i];
    size_t n;
    char *r;
    if (s->bench == BL_BENCH_HUMANEVAL) {
        n = strlen(p->prompt) + strlen(completion) + strlen(p->test) + strlen(p->entry_point) + 16;
        if ((r = bl_malloc(n))) snprintf(r, n, "%s%s\n%s\ncheck(%s)\n", p->prompt, completion, p->test, p->entry_point);
    } else if (s->bench == BL_BENCH_MBPP) {
        n = strlen(completion) + strlen(p->test) + 4;
        if ((r = bl_malloc(n))) snprintf(r, n, "%s\n%s", completion, p->test);
    } else return NULL;
    return r;
}

/* ---- completions ---- */
typedef struct comp_ctx { const bl_bench_set *s; bl_completions *c; int64_t cap; } comp_ctx;

static balora_status comp_line(void *vctx, const char *path, int64_t line, const cJSON *o) {
    comp_ctx *ctx = vctx;
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(o, "index");
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(o, "task_id");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "completion");
    if (!cJSON_IsString(text))
        return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: field 'completion' must be a string", path, (long long)line);
    int64_t k = -1;
    if (idx && !cJSON_IsNull(idx)) {
        if (!cJSON_IsNumber(idx) || idx->valuedouble != floor(idx->valuedouble))
            return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: field 'index' must be an integer", path, (long long)line);
        if (idx->valuedouble < 0 || idx->valuedouble >= (double)ctx->s->n)
            return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: index %.0f is outside the data set (%lld problems); hint: indices are 0-based",
                           path, (long long)line, idx->valuedouble, (long long)ctx->s->n);
        k = (int64_t)idx->valuedouble;
    } else if (tid && !cJSON_IsNull(tid)) {
        char b[64];
        const char *id = b;
        if (cJSON_IsString(tid)) id = tid->valuestring;
        else if (cJSON_IsNumber(tid) && tid->valuedouble == floor(tid->valuedouble)) snprintf(b, sizeof b, "%.0f", tid->valuedouble);
        else return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: field 'task_id' must be a string or an integer", path, (long long)line);
        k = bl_bench_find(ctx->s, id);
        if (k < 0) return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: task_id '%s' is not in the data set; hint: wrong --bench or --data?", path, (long long)line, id);
    } else return bl_fail(BALORA_STATUS_FORMAT, "%s: line %lld: needs 'index' (0-based problem position) or 'task_id'", path, (long long)line);
    bl_completions *c = ctx->c;
    if (c->n == ctx->cap) {
        int64_t nc = ctx->cap ? ctx->cap * 2 : 256;
        bl_completion *np = bl_realloc(c->c, (size_t)nc * sizeof *np);
        if (!np) return BALORA_STATUS_NOMEM;
        c->c = np; ctx->cap = nc;
    }
    c->c[c->n].problem = k;
    if (!(c->c[c->n].text = bl_strdup(text->valuestring))) return BALORA_STATUS_NOMEM;
    c->n++;
    return BALORA_STATUS_OK;
}

balora_status bl_completions_load(const char *path, const bl_bench_set *s, bl_completions *out) {
    memset(out, 0, sizeof *out);
    comp_ctx ctx = {s, out, 0};
    balora_status st = bl_jsonl_read(path, comp_line, &ctx);
    if (st) { bl_completions_free(out); return bl_fail_prefix(st, "loading completions"); }
    return BALORA_STATUS_OK;
}

void bl_completions_free(bl_completions *c) {
    if (!c) return;
    for (int64_t i = 0; i < c->n; i++) free(c->c[i].text);
    free(c->c);
    memset(c, 0, sizeof *c);
}

/* ---- scoring ---- */
double bl_pass_at_k(int64_t n, int64_t c, int64_t k) {
    if (n <= 0 || k <= 0 || k > n || c < 0 || c > n) return NAN;
    if (n - c < k) return 1.0;
    double prod = 1.0;
    for (int64_t i = n - c + 1; i <= n; i++) prod *= 1.0 - (double)k / (double)i;
    return 1.0 - prod;
}

void bl_eval_opts_default(bl_eval_opts *o) {
    memset(o, 0, sizeof *o);
    o->ks[0] = 1; o->n_ks = 1;
    bl_sandbox_opts_default(&o->sandbox);
    o->sandbox.timeout_s = 10;
}

void bl_eval_report_free(bl_eval_report *r) {
    if (!r) return;
    for (int64_t i = 0; r->out && i < r->n_problems; i++) { free(r->out[i].answer); free(r->out[i].detail); }
    free(r->out);
    memset(r, 0, sizeof *r);
}

static char *fmt_detail(const bl_sandbox_result *x) {
    char head[96];
    if (x->timed_out) snprintf(head, sizeof head, "timed out after %.1f s", x->wall_s);
    else if (x->signal) snprintf(head, sizeof head, "killed by signal %d", x->signal);
    else snprintf(head, sizeof head, "exit status %d", x->exit_code);
    /* the end of the output (the traceback's end names the failing assert), within
     * BL_EVAL_DETAIL_MAX with the status, ": " and the marker; not starting inside a UTF-8 sequence */
    const char *o = x->output ? x->output : "";
    size_t room = BL_EVAL_DETAIL_MAX - 1 - strlen(head) - 2 - strlen(BL_EVAL_DETAIL_CUT);
    size_t n = x->output_len > room ? room : x->output_len;
    bool cut = x->output_truncated || n < x->output_len;
    const char *tail = o + x->output_len - n;
    while (n > 0 && ((unsigned char)*tail & 0xC0) == 0x80) { tail++; n--; }
    size_t len = strlen(head) + 2 + strlen(BL_EVAL_DETAIL_CUT) + n + 1;
    char *r = bl_malloc(len);
    if (r) snprintf(r, len, "%s%s%s%.*s", head, n || cut ? ": " : "", cut ? BL_EVAL_DETAIL_CUT : "", (int)n, tail);
    return r;
}

/* The journal's record of a scored problem, and back. */
static cJSON *outcome_json(const bl_eval_outcome *o) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "n_samples", (double)o->n_samples);
    cJSON_AddNumberToObject(j, "n_correct", (double)o->n_correct);
    cJSON_AddBoolToObject(j, "correct", o->correct);
    if (o->answer) cJSON_AddStringToObject(j, "answer", o->answer);
    if (o->detail) cJSON_AddStringToObject(j, "detail", o->detail);
    return j;
}

static balora_status outcome_from_json(const bl_eval_journal *jn, int64_t i, const cJSON *j, int64_t want_samples, bl_eval_outcome *o) {
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(j, "n_samples"), *nc = cJSON_GetObjectItemCaseSensitive(j, "n_correct");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "correct"), *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
    if (!cJSON_IsNumber(ns) || !cJSON_IsNumber(nc) || !cJSON_IsBool(c) || (a && !cJSON_IsString(a)) || (d && !cJSON_IsString(d)) ||
        nc->valuedouble < 0 || nc->valuedouble > ns->valuedouble)
        return bl_fail(BALORA_STATUS_FORMAT, "%s: problem %lld: field 'outcome' needs n_samples >= n_correct >= 0, correct, and "
                       "string answer / detail; hint: remove the file to score again", jn->path, (long long)i);
    if ((int64_t)ns->valuedouble != want_samples)
        return bl_fail(BALORA_STATUS_INVALID, "%s: problem %lld: field 'outcome.n_samples' is %.0f there but %lld here: other "
                       "completions; hint: use another --out, or remove the file to score again", jn->path, (long long)i,
                       ns->valuedouble, (long long)want_samples);
    o->n_samples = (int64_t)ns->valuedouble;
    o->n_correct = (int64_t)nc->valuedouble;
    o->correct = cJSON_IsTrue(c);
    if (a && !(o->answer = bl_strdup(a->valuestring))) return BALORA_STATUS_NOMEM;
    if (d && !(o->detail = bl_strdup(d->valuestring))) return BALORA_STATUS_NOMEM;
    return BALORA_STATUS_OK;
}

static balora_status stopped(const bl_eval_journal *jn, int64_t done, int64_t np) {
    if (!jn)
        return bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after %lld of %lld problems scored; nothing was kept; "
                       "hint: give --out REPORT.json to make an interrupted evaluation resumable", balora_interrupted(),
                       (long long)done, (long long)np);
    return bl_fail(BALORA_STATUS_INTERRUPTED, "interrupted (signal %d) after %lld of %lld problems scored; the results so far are "
                   "kept in %s; hint: run the same command again to continue (the problems done are skipped)",
                   balora_interrupted(), (long long)done, (long long)np, jn->path);
}

balora_status bl_eval_score(const bl_bench_set *s, const bl_completions *c, const bl_eval_opts *opts, bl_eval_report *r) {
    memset(r, 0, sizeof *r);
    bl_eval_opts def;
    if (!opts) { bl_eval_opts_default(&def); opts = &def; }
    if (opts->limit < 0) return bl_fail(BALORA_STATUS_INVALID, "limit must be >= 0 (got %lld)", (long long)opts->limit);
    if (opts->n_ks < 0 || opts->n_ks > BL_EVAL_MAX_K) return bl_fail(BALORA_STATUS_INVALID, "at most %d values of k", BL_EVAL_MAX_K);
    for (int j = 0; j < opts->n_ks; j++)
        if (opts->ks[j] < 1) return bl_fail(BALORA_STATUS_INVALID, "pass@k: k must be >= 1 (got %lld)", (long long)opts->ks[j]);
    bl_eval_journal *jn = opts->journal;
    double t0 = bl_time_now();
    int64_t np = opts->limit && opts->limit < s->n ? opts->limit : s->n;
    if (jn && jn->n != s->n) return bl_fail(BALORA_STATUS_INTERNAL, "eval: the journal is for %lld problems, the set has %lld", (long long)jn->n, (long long)s->n);
    r->bench = s->bench;
    r->n_problems = np;
    r->out = bl_calloc((size_t)np, sizeof *r->out);
    if (!r->out) return BALORA_STATUS_NOMEM;
    for (int64_t i = 0; i < np; i++) r->out[i].problem = i;
    /* the samples of each scored problem, in file order: which[first[i] .. first[i + 1]) */
    int64_t *first = bl_calloc((size_t)np + 1, sizeof *first);        /* [np + 1] */
    int64_t ns = 0;
    for (int64_t j = 0; first && j < c->n; j++) if (c->c[j].problem < np) { ns++; first[c->c[j].problem + 1]++; }
    bool *ok = bl_calloc((size_t)(ns ? ns : 1), sizeof *ok);             /* [ns] sample correct */
    int64_t *which = bl_malloc((size_t)(ns ? ns : 1) * sizeof *which);  /* [ns] index into c */
    int64_t *fill = bl_calloc((size_t)np + 1, sizeof *fill);          /* [np] */
    bool *done = bl_calloc((size_t)np + 1, sizeof *done);             /* [np] */
    balora_status st = ok && which && first && fill && done ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
    for (int64_t i = 0; !st && i < np; i++) first[i + 1] += first[i];
    for (int64_t j = 0; !st && j < c->n; j++) {
        int64_t i = c->c[j].problem;
        if (i < np) which[first[i] + fill[i]++] = j;
    }
    int64_t n_done = 0;
    for (int64_t i = 0; !st && jn && i < np; i++)
        if (jn->score[i]) {
            st = outcome_from_json(jn, i, jn->score[i], first[i + 1] - first[i], &r->out[i]);
            done[i] = true;
            n_done++;
        }
    if (!st && n_done) bl_log(BL_INFO, "%s: %lld of %lld problems already scored in %s (skipped)", bl_bench_name(s->bench),
                              (long long)n_done, (long long)np, jn->path);
    if (!st && balora_interrupted()) st = stopped(jn, n_done, np);
    if (!st && bl_bench_is_code(s->bench)) {
        /* In groups of whole problems of about CHUNK samples, so that memory stays bounded for many
         * samples and an interrupt waits for few programs: programs and results of one group at a
         * time; the first failure of each problem keeps its detail. */
        int64_t CHUNK = 2 * (int64_t)(opts->sandbox.jobs > 0 ? opts->sandbox.jobs : 1);
        if (CHUNK < 4) CHUNK = 4;
        r->isolation = bl_sandbox_isolation();
        char **progs = NULL;
        bl_sandbox_result *res = NULL;
        int64_t cap = 0;
        for (int64_t i0 = 0; i0 < np && !st;) {
            while (i0 < np && done[i0]) i0++;
            if (i0 == np) break;
            int64_t i1 = i0, m = 0;
            while (i1 < np && !done[i1] && (m == 0 || m + first[i1 + 1] - first[i1] <= CHUNK)) { m += first[i1 + 1] - first[i1]; i1++; }
            if (m > cap) {
                free(progs); free(res);
                progs = bl_calloc((size_t)m, sizeof *progs);          /* [m] */
                res = bl_calloc((size_t)m, sizeof *res);              /* [m] */
                cap = m;
                if (!progs || !res) { st = BALORA_STATUS_NOMEM; break; }
            }
            for (int64_t j = 0; j < m && !st; j++)
                if (!(progs[j] = bl_bench_program(s, c->c[which[first[i0] + j]].problem, c->c[which[first[i0] + j]].text))) st = BALORA_STATUS_NOMEM;
            if (!st && m) st = bl_sandbox_run_many((const char *const *)progs, m, &opts->sandbox, res);
            /* an interrupt's SIGINT reaches the programs too (same process group): drop the group */
            bool drop = st || balora_interrupted();
            for (int64_t j = 0; j < m; j++) {
                free(progs[j]);
                progs[j] = NULL;
                if (drop) { if (!st) bl_sandbox_result_free(&res[j]); continue; }
                ok[first[i0] + j] = res[j].passed;
                bl_eval_outcome *o = &r->out[c->c[which[first[i0] + j]].problem];
                if (!res[j].passed && !o->detail && !(o->detail = fmt_detail(&res[j]))) st = BALORA_STATUS_NOMEM;
                bl_sandbox_result_free(&res[j]);
            }
            if (!st && drop) { st = stopped(jn, n_done, np); break; }
            for (int64_t i = i0; i < i1 && !st; i++) {
                bl_eval_outcome *o = &r->out[i];
                for (int64_t j = first[i]; j < first[i + 1]; j++) {
                    if (o->n_samples == 0) o->correct = ok[j];
                    o->n_samples++;
                    o->n_correct += ok[j];
                }
                if (jn) st = bl_eval_journal_add(jn, i, s->p[i].id, "outcome", outcome_json(o));
                done[i] = true;
                n_done++;
            }
            bl_log(BL_VERBOSE, "%s: %lld of %lld problems scored", bl_bench_name(s->bench), (long long)n_done, (long long)np);
            i0 = i1;
            if (!st && n_done < np && balora_interrupted()) st = stopped(jn, n_done, np);
        }
        free(progs);
        free(res);
    } else if (!st) {
        /* the answer is extracted once; the first sample's is kept for the report */
        for (int64_t i = 0; i < np && !st; i++) {
            if (done[i]) continue;
            bl_eval_outcome *o = &r->out[i];
            const bl_bench_problem *p = &s->p[i];
            for (int64_t j = first[i]; j < first[i + 1] && !st; j++) {
                const char *text = c->c[which[j]].text;
                char *answer;
                bool good;
                if (s->bench == BL_BENCH_GSM8K) {
                    char buf[128];
                    double v;
                    good = bl_gsm8k_extract(text, &v, buf, sizeof buf) && bl_gsm8k_equal(v, p->ref_value);
                    answer = bl_strdup(buf);
                } else {
                    char *a = bl_math_extract(text);
                    good = a && bl_math_equiv(a, p->reference);
                    answer = a ? a : bl_strdup("");
                }
                if (!answer) { st = BALORA_STATUS_NOMEM; break; }
                if (!o->answer) o->answer = answer; else free(answer);
                if (o->n_samples == 0) o->correct = good;
                o->n_samples++;
                o->n_correct += good;
            }
            if (!st && jn) st = bl_eval_journal_add(jn, i, p->id, "outcome", outcome_json(o));
            done[i] = true;
            n_done++;
            if (!st && n_done < np && balora_interrupted()) st = stopped(jn, n_done, np);
        }
    }
    free(ok); free(which); free(first); free(fill); free(done);
    if (st) { bl_eval_report_free(r); return st; }
    /* aggregates */
    double acc = 0;
    r->n_ks = opts->n_ks;
    for (int j = 0; j < opts->n_ks; j++) r->ks[j] = opts->ks[j];
    for (int64_t i = 0; i < np; i++) {
        bl_eval_outcome *o = &r->out[i];
        r->n_samples += o->n_samples;
        r->n_correct_samples += o->n_correct;
        if (o->n_samples == 0) { r->n_missing++; continue; }
        acc += (double)o->n_correct / (double)o->n_samples;
    }
    r->accuracy = acc / (double)np;
    /* Wilson over samples, with missing problems counted as one wrong sample each */
    bl_wilson_interval(r->n_correct_samples, r->n_samples + r->n_missing, &r->ci_lo, &r->ci_hi);
    for (int j = 0; j < r->n_ks; j++) {
        double sum = 0;
        for (int64_t i = 0; i < np; i++) {
            const bl_eval_outcome *o = &r->out[i];
            if (o->n_samples == 0) continue; /* counts as 0 */
            double v = bl_pass_at_k(o->n_samples, o->n_correct, r->ks[j]);
            if (isnan(v)) { sum = NAN; break; }
            sum += v;
        }
        r->pass_at[j] = sum / (double)np;
    }
    r->seconds = bl_time_now() - t0;
    return BALORA_STATUS_OK;
}

balora_status bl_eval_report_json(const bl_eval_report *r, const bl_bench_set *s, cJSON **out) {
    cJSON *j = cJSON_CreateObject(), *probs = cJSON_CreateArray();
    *out = NULL;
    if (!j || !probs) { cJSON_Delete(j); cJSON_Delete(probs); return bl_fail(BALORA_STATUS_NOMEM, "eval report: out of memory"); }
    cJSON_AddStringToObject(j, "bench", bl_bench_name(r->bench));
    cJSON_AddNumberToObject(j, "n_problems", (double)r->n_problems);
    cJSON_AddNumberToObject(j, "n_samples", (double)r->n_samples);
    cJSON_AddNumberToObject(j, "n_missing", (double)r->n_missing);
    if (bl_bench_is_code(r->bench)) {
        for (int k = 0; k < r->n_ks; k++) {
            char key[32];
            snprintf(key, sizeof key, "pass@%lld", (long long)r->ks[k]);
            if (isnan(r->pass_at[k])) cJSON_AddNullToObject(j, key);
            else cJSON_AddNumberToObject(j, key, r->pass_at[k]);
        }
        cJSON_AddStringToObject(j, "sandbox_isolation", bl_sandbox_iso_name(r->isolation));
        if (r->isolation != BL_SANDBOX_ISO_FULL) { /* say plainly what this run's sandbox did not prevent, and why */
            cJSON_AddStringToObject(j, "sandbox_missing", bl_sandbox_iso_missing(r->isolation));
            cJSON_AddStringToObject(j, "sandbox_fallback_reason", bl_sandbox_iso_reason());
        }
    } else {
        cJSON_AddNumberToObject(j, "accuracy", r->accuracy);
    }
    cJSON *ci = cJSON_AddArrayToObject(j, "ci95_wilson");
    if (ci) { cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->ci_lo)); cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->ci_hi)); }
    cJSON_AddNumberToObject(j, "n_correct_samples", (double)r->n_correct_samples);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    cJSON_AddItemToObject(j, "problems", probs);
    for (int64_t i = 0; i < r->n_problems; i++) {
        const bl_eval_outcome *o = &r->out[i];
        const bl_bench_problem *p = &s->p[o->problem];
        cJSON *e = cJSON_CreateObject();
        if (!e) { cJSON_Delete(j); return bl_fail(BALORA_STATUS_NOMEM, "eval report: out of memory"); }
        cJSON_AddNumberToObject(e, "index", (double)o->problem);
        cJSON_AddStringToObject(e, "id", p->id);
        cJSON_AddNumberToObject(e, "n_samples", (double)o->n_samples);
        cJSON_AddNumberToObject(e, "n_correct", (double)o->n_correct);
        cJSON_AddBoolToObject(e, "correct", o->correct);
        if (r->bench == BL_BENCH_GSM8K) {
            cJSON_AddStringToObject(e, "answer", o->answer ? o->answer : "");
            cJSON_AddNumberToObject(e, "reference", p->ref_value);
        } else if (r->bench == BL_BENCH_MATH) {
            cJSON_AddStringToObject(e, "answer", o->answer ? o->answer : "");
            cJSON_AddStringToObject(e, "reference", p->reference);
        }
        if (o->detail) cJSON_AddStringToObject(e, "failure", o->detail);
        if (o->n_samples == 0) cJSON_AddStringToObject(e, "failure", "no completion for this problem");
        cJSON_AddItemToArray(probs, e);
    }
    *out = j;
    return BALORA_STATUS_OK;
}
