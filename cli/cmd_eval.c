/* balora eval: score GSM8K, MATH, HumanEval and MBPP completions and GLUE predictions.
 *
 *   balora eval --bench gsm8k|math|humaneval|mbpp --data FILE --completions FILE.jsonl
 *               [--limit N] [--out REPORT.json] [--k 1,10] [--timeout S] [--jobs N]
 *   balora eval --bench B --data FILE --prompts-out PROMPTS.jsonl [--limit N]   (prompts to generate from)
 *   balora eval --task seq-cls --glue-task TASK --data GLUE.tsv --predictions FILE [--out REPORT.json]
 *               [--ood-data FILE --ood-predictions FILE [--ood-glue-task TASK]]   (GLUE-X style)
 *   balora eval --task seq-cls --model DIR [--adapter DIR] [--tokenizer DIR] --glue-task TASK --data FILE
 *               [--ood-data FILE [--ood-glue-task TASK]] [--metrics LIST] [--out REPORT.json]
 *               (a classifier's own predictions; FILE: a GLUE TSV, Adversarial GLUE's dev_ann.json,
 *               or with --glue-task generic a CSV / TSV / JSONL with text and label columns)
 *   balora eval --glue-average REPORT1.json,REPORT2.json,... [--out GLUE.json]
 *   balora eval --bench mtbench --data question.jsonl --completions answers.jsonl --judge-prompts-out J.jsonl
 *   balora eval --bench mtbench --data question.jsonl --judgments judgments.jsonl [--out REPORT.json]
 *
 * Completions and predictions come from anywhere (any system's outputs are graded the same way).
 * The model-backed paths (--model DIR [--adapter DIR]: generation, --bench ppl, --task seq-cls
 * with a model) plug in at the MODEL HOOKS section below. */
#include "args.h"
#include "cli.h"
#include "encoders/predict.h"
#include "eval/bench.h"
#include "eval/generate.h"
#include "eval/glue.h"
#include "eval/journal.h"
#include "eval/mtbench.h"
#include "io/json.h"
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct eval_args {
    const char *bench, *task, *data, *completions, *predictions, *out, *ks, *glue_task, *label_column, *python;
    const char *ood_data, *ood_predictions, *ood_glue_task, *prompts_out, *glue_average;
    const char *judge, *judge_prompts, *judge_prompts_out, *judgments, *metrics, *template;
    const char *model, *adapter;
    const char *text_col, *text_pair_col, *labels; /* seq-cls with --model on a generic file */
    int64_t max_len;                               /* seq-cls with --model: tokens per example */
    int64_t limit, jobs, memory_mb, show_failures;
    double timeout;
    /* model-backed generation and perplexity (src/eval/generate.h) */
    const char *tokenizer, *answers_out;
    int64_t max_new_tokens, batch_size, samples, seed, window, stride;
    double temperature, top_p;
} eval_args;

/* ======================================================================================
 * MODEL HOOKS: where the model-backed evaluation plugs in.
 * Each returns BALORA_STATUS_UNSUPPORTED until the generation / encoder components land; the
 * callers around them (loading data, scoring, tables, JSON reports) are already complete:
 *   eval_model_completions: generate completions for every problem of `s` (s->p[i].prompt;
 *       HumanEval completions continue the prompt, MBPP ones are whole programs) into *out,
 *       exactly as bl_completions_load would have read them from a file;
 *   eval_model_ppl: perplexity of the model (+ adapter) on a text file (--bench ppl);
 *   eval_model_seqcls: class predictions (or STS-B scores) of a classifier for every example
 *       of a GLUE file, in file order, into *preds [*n], and the file's gold targets into *gold [*n].
 * ====================================================================================== */
static balora_status eval_model_completions(const eval_args *a, const bl_bench_set *s, bl_eval_journal *jn, bl_completions *out) {
    bl_bench_gen_opts o;
    bl_bench_gen_opts_default(&o);
    o.journal = jn;
    o.model = a->model; o.adapter = a->adapter; o.tokenizer = a->tokenizer;
    o.limit = a->limit; o.max_new_tokens = a->max_new_tokens; o.batch = a->batch_size;
    o.samples = a->samples; o.temperature = a->temperature; o.top_p = a->top_p;
    if (a->seed < 0) return bl_fail(BALORA_STATUS_INVALID, "--seed must be >= 0");
    o.seed = (uint64_t)a->seed;
    if (a->template) {
        if (strcmp(a->template, "alpaca") && strcmp(a->template, "none"))
            return bl_fail(BALORA_STATUS_INVALID, "--template must be alpaca or none, got '%s'", a->template);
        o.alpaca = !strcmp(a->template, "alpaca");
    }
    return bl_bench_generate(s, &o, out);
}
static balora_status eval_model_ppl(const eval_args *a, double *ppl, int64_t *n_tokens) {
    if (!a->data) return bl_fail(BALORA_STATUS_INVALID, "--bench ppl needs --data TEXT_FILE");
    return bl_eval_ppl_file(a->model, a->adapter, a->tokenizer, a->data, a->window, a->stride, ppl, n_tokens);
}
/* The classifier (encoder, or decoder *ForSequenceClassification; + adapter) over `data`: a GLUE TSV of
 * `task`, Adversarial GLUE's dev_ann.json (a .json file with a GLUE task: the task's key), or a generic
 * CSV / TSV / JSONL (task generic: columns --text-col [--text-pair-col] and --label-col, label names
 * --labels). */
/* --out: the predictions go to the journal as they are made (keep_*: the bl_predict_keep of predict.h). */
typedef struct seqcls_keep {
    bl_eval_journal jn;
    const char *path;
    const cJSON *fp;
    bool open;
    char id[32];
} seqcls_keep;
static const char *keep_id(seqcls_keep *k, int64_t i) { snprintf(k->id, sizeof k->id, "%lld", (long long)i + 1); return k->id; }
static balora_status keep_open(void *user, int64_t n) {
    seqcls_keep *k = user;
    const char **ids = bl_malloc((size_t)(n > 0 ? n : 1) * sizeof *ids);
    char *num = bl_malloc((size_t)(n > 0 ? n : 1) * 24);
    balora_status st = ids && num ? BALORA_STATUS_OK : BALORA_STATUS_NOMEM;
    for (int64_t i = 0; !st && i < n; i++) { snprintf(num + 24 * i, 24, "%lld", (long long)i + 1); ids[i] = num + 24 * i; }
    if (!st) st = bl_eval_journal_open(&k->jn, k->path, k->fp, n, ids);
    if (!st) k->open = true;
    free(ids); free(num);
    return st;
}
static bool keep_get(void *user, int64_t i, double *pred) {
    seqcls_keep *k = user;
    const cJSON *v = k->jn.score[i] ? cJSON_GetObjectItemCaseSensitive(k->jn.score[i], "prediction") : NULL;
    if (!cJSON_IsNumber(v)) return false;
    *pred = v->valuedouble; /* cJSON writes doubles with 17 digits where 15 do not round-trip: exact */
    return true;
}
static balora_status keep_put(void *user, int64_t i, double pred) {
    seqcls_keep *k = user;
    cJSON *o = cJSON_CreateObject();
    if (!o) return BALORA_STATUS_NOMEM;
    cJSON_AddNumberToObject(o, "prediction", pred);
    return bl_eval_journal_add(&k->jn, i, keep_id(k, i), "outcome", o);
}
/* What the predictions of eval_model_seqcls depend on. */
static balora_status seqcls_fingerprint(const eval_args *a, bl_glue_task task, const char *data, cJSON **out) {
    cJSON *f = cJSON_CreateObject();
    if (!f) return BALORA_STATUS_NOMEM;
    cJSON_AddStringToObject(f, "task", bl_glue_task_name(task));
    cJSON_AddStringToObject(f, "data", data);
    balora_status st = bl_eval_fingerprint_path(f, "data_content", data);
    cJSON_AddStringToObject(f, "model", a->model);
    if (!st) st = bl_eval_fingerprint_path(f, "model_content", a->model);
    cJSON_AddStringToObject(f, "adapter", a->adapter ? a->adapter : "(none)");
    if (!st && a->adapter) st = bl_eval_fingerprint_path(f, "adapter_content", a->adapter);
    cJSON_AddStringToObject(f, "tokenizer", a->tokenizer ? a->tokenizer : "(the model's)");
    if (!st && a->tokenizer) st = bl_eval_fingerprint_path(f, "tokenizer_content", a->tokenizer);
    const char *cols[][2] = {{"label_column", a->label_column}, {"text_col", a->text_col}, {"text_pair_col", a->text_pair_col},
                             {"labels", a->labels}};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) cJSON_AddStringToObject(f, cols[i][0], cols[i][1] ? cols[i][1] : "(default)");
    cJSON_AddNumberToObject(f, "max_len", (double)a->max_len);
    cJSON_AddNumberToObject(f, "batch_size", (double)a->batch_size);
    cJSON_AddNumberToObject(f, "threads", (double)balora_threads_get());
    if (st) { cJSON_Delete(f); return st; }
    *out = f;
    return BALORA_STATUS_OK;
}
/* The journal of the predictions on `data` for the report `out` (the out-of-domain file's: ood). */
static void seqcls_journal_path(const char *out, bool ood, char *path, size_t cap) {
    snprintf(path, cap, "%s%s.progress.jsonl", out, ood ? ".ood" : "");
}
static balora_status eval_model_seqcls(const eval_args *a, bl_glue_task task, const char *data, bool ood, double **preds,
                                       double **gold, int64_t *n) {
    bl_enc_predict_opts o = BL_ENC_PREDICT_DEFAULT;
    o.tokenizer = a->tokenizer;
    if (a->batch_size > 0) o.batch = a->batch_size;
    if (a->max_len < 1) return bl_fail(BALORA_STATUS_INVALID, "--max-len must be >= 1, got %lld", (long long)a->max_len);
    o.max_len = a->max_len;
    bl_data_spec spec = BL_DATA_SPEC_DEFAULT;
    if (a->label_column) spec.label_col = a->label_column;
    if (a->text_col) spec.text_col = a->text_col;
    if (a->text_pair_col) spec.text_pair_col = a->text_pair_col;
    if (a->labels) spec.labels = a->labels;
    o.spec = &spec;
    size_t len = strlen(data);
    o.advglue = task != BL_GLUE_TASK_GENERIC && len > 5 && !strcmp(data + len - 5, ".json");
    seqcls_keep k = {.open = false};
    char jpath[4200];
    cJSON *fp = NULL;
    bl_predict_keep keep = {keep_open, keep_get, keep_put, &k};
    if (a->out) {
        seqcls_journal_path(a->out, ood, jpath, sizeof jpath);
        BL_TRY(seqcls_fingerprint(a, task, data, &fp));
        k.path = jpath;
        k.fp = fp;
        o.keep = &keep;
    }
    balora_status st = bl_enc_predict_file(a->model, a->adapter, task, data, &o, preds, gold, n);
    if (k.open) { balora_status cs = bl_eval_journal_close(&k.jn, false); if (!st) st = cs; }
    cJSON_Delete(fp);
    if (st) return st;
    for (int64_t i = 0; i < *n; i++)
        if (isnan((*gold)[i])) {
            free(*preds); free(*gold);
            *preds = *gold = NULL;
            return bl_fail(BALORA_STATUS_FORMAT, "%s: example %lld has no label; hint: evaluation needs a labelled file (a GLUE "
                           "test file has none)", data, (long long)i + 1);
        }
    return BALORA_STATUS_OK;
}
/*   eval_model_judge: MT-Bench judging with a model balora runs: for each judge prompt
 *       (bl_mt_judge_prompt: system + prompt) generate the judge's text and write the judgments
 *       file ({"question_id", "turn", "judgment"} lines) to `path`. */
static balora_status eval_model_judge(const eval_args *a, const bl_mt_set *s, const bl_mt_templates *t, const char *path) {
    BL_TRY(bl_mt_judge_with_model(a->judge, a->tokenizer, s, t, a->max_new_tokens, a->batch_size, path));
    bl_mt_report r;
    BL_TRY(bl_mt_score_judgments(s, path, &r));
    printf("judgments written to %s (score them again with --judgments %s)\n", path, path);
    printf("MT-Bench (judge %s): %lld scored, %lld without a [[rating]], mean %.3f\n", a->judge, (long long)r.n,
           (long long)r.n_unscored, r.mean);
    return BALORA_STATUS_OK;
}
/*   eval_model_mt_answers: MT-Bench answers of --model (+ --adapter) for every question and turn. */
static balora_status eval_model_mt_answers(const eval_args *a, bl_mt_set *s) {
    return bl_mt_answer_with_model(a->model, a->adapter, a->tokenizer, s, a->max_new_tokens, a->batch_size, a->answers_out);
}
/* ================================ end of MODEL HOOKS ================================== */

static int parse_ks(const char *text, bl_eval_opts *o) {
    o->n_ks = 0;
    o->ks[o->n_ks++] = 1; /* pass@1 is always reported */
    const char *p = text;
    while (p && *p) {
        char *end;
        long long k = strtoll(p, &end, 10);
        if (end == p || k < 1 || (*end && *end != ',')) {
            fprintf(stderr, "balora eval: error: --k expects positive integers separated by commas (e.g. 1,10), got '%s'\n", text);
            return 2;
        }
        bool dup = false;
        for (int i = 0; i < o->n_ks; i++) dup |= o->ks[i] == k;
        if (!dup) {
            if (o->n_ks == BL_EVAL_MAX_K) { fprintf(stderr, "balora eval: error: --k: at most %d values\n", BL_EVAL_MAX_K); return 2; }
            o->ks[o->n_ks++] = k;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int write_report(cJSON *j, const char *path) {
    balora_status st = bl_json_save(j, path);
    cJSON_Delete(j);
    if (st) return cli_fail(st);
    printf("report written to %s\n", path);
    return 0;
}

/* --prompts-out: the problems' prompts as JSON lines {"index", "task_id", "prompt"}, to generate
 * completions with any system and score them with --completions. */
/* The Alpaca prompt the paper's NLG fine-tuning uses (docs/METHOD.md 4): the model answers after "### Response:". */
static const char k_alpaca[] = "Below is an instruction that describes a task. Write a response that appropriately completes "
                               "the request.\n\n### Instruction:\n%s\n\n### Response:";

static int write_prompts(const eval_args *a, bl_bench bench) {
    bool alpaca = false;
    if (a->template && !strcmp(a->template, "alpaca")) alpaca = true;
    else if (a->template && strcmp(a->template, "none") != 0) {
        fprintf(stderr, "balora eval: error: --template must be alpaca or none, got '%s'\n", a->template);
        return 2;
    }
    bl_bench_set s;
    balora_status st = bl_bench_load(bench, a->data, &s);
    if (st) return cli_fail(st);
    int64_t n = a->limit > 0 && a->limit < s.n ? a->limit : s.n;
    FILE *f = fopen(a->prompts_out, "w");
    if (!f) { bl_bench_set_free(&s); return cli_fail(bl_fail(BALORA_STATUS_IO, "%s: cannot create", a->prompts_out)); }
    for (int64_t i = 0; i < n && !st; i++) {
        cJSON *o = cJSON_CreateObject();
        char *line = NULL;
        if (o) {
            cJSON_AddNumberToObject(o, "index", (double)i);
            cJSON_AddStringToObject(o, "task_id", s.p[i].id);
            if (alpaca) {
                size_t n = sizeof k_alpaca + strlen(s.p[i].prompt);
                char *p = bl_malloc(n);
                if (p) { snprintf(p, n, k_alpaca, s.p[i].prompt); cJSON_AddStringToObject(o, "prompt", p); free(p); }
                else st = BALORA_STATUS_NOMEM;
            } else cJSON_AddStringToObject(o, "prompt", s.p[i].prompt);
            line = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
        }
        if (!st && (!line || fprintf(f, "%s\n", line) < 0)) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", a->prompts_out);
        free(line);
    }
    if (fclose(f) != 0 && !st) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", a->prompts_out);
    bl_bench_set_free(&s);
    if (st) return cli_fail(st);
    printf("%lld prompts written to %s\n", (long long)n, a->prompts_out);
    return 0;
}

/* What the results of run_bench depend on (the journal refuses another run's results). --jobs and
 * --show-failures change no result and are left out. */
static balora_status bench_fingerprint(const eval_args *a, bl_bench bench, cJSON **out) {
    cJSON *f = cJSON_CreateObject();
    if (!f) return BALORA_STATUS_NOMEM;
    balora_status st = BALORA_STATUS_OK;
    cJSON_AddStringToObject(f, "bench", bl_bench_name(bench));
    cJSON_AddStringToObject(f, "data", a->data);
    st = bl_eval_fingerprint_path(f, "data_content", a->data);
    cJSON_AddNumberToObject(f, "limit", (double)a->limit);
    cJSON_AddStringToObject(f, "k", a->ks ? a->ks : "");
    if (bl_bench_is_code(bench)) {
        cJSON_AddNumberToObject(f, "timeout", a->timeout);
        cJSON_AddNumberToObject(f, "memory_mb", (double)a->memory_mb);
        cJSON_AddStringToObject(f, "python", a->python ? a->python : "(default)");
    }
    if (!st && a->completions) {
        cJSON_AddStringToObject(f, "completions", a->completions);
        st = bl_eval_fingerprint_path(f, "completions_content", a->completions);
    }
    if (!st && a->model) {
        cJSON_AddStringToObject(f, "model", a->model);
        st = bl_eval_fingerprint_path(f, "model_content", a->model);
        cJSON_AddStringToObject(f, "adapter", a->adapter ? a->adapter : "(none)");
        if (!st && a->adapter) st = bl_eval_fingerprint_path(f, "adapter_content", a->adapter);
        cJSON_AddStringToObject(f, "tokenizer", a->tokenizer ? a->tokenizer : "(the model's)");
        if (!st && a->tokenizer) st = bl_eval_fingerprint_path(f, "tokenizer_content", a->tokenizer);
        cJSON_AddStringToObject(f, "template", a->template ? a->template : "(default)");
        cJSON_AddNumberToObject(f, "max_new_tokens", (double)a->max_new_tokens);
        cJSON_AddNumberToObject(f, "batch_size", (double)a->batch_size);
        cJSON_AddNumberToObject(f, "samples", (double)a->samples);
        cJSON_AddNumberToObject(f, "temperature", a->temperature);
        cJSON_AddNumberToObject(f, "top_p", a->top_p);
        cJSON_AddNumberToObject(f, "seed", (double)a->seed);
        cJSON_AddNumberToObject(f, "threads", (double)balora_threads_get());
    }
    if (st) { cJSON_Delete(f); return st; }
    *out = f;
    return BALORA_STATUS_OK;
}

static int run_bench(const eval_args *a) {
    bl_bench bench;
    balora_status st = bl_bench_parse(a->bench, &bench);
    if (st) { fprintf(stderr, "balora eval: error: %s\n", balora_last_error()); return 2; }
    if (!a->data) { fprintf(stderr, "balora eval: error: --data FILE is required (the benchmark's JSONL file)\n"); return 2; }
    if (a->prompts_out) return write_prompts(a, bench);
    if (!a->model == !a->completions) {
        fprintf(stderr, "balora eval: error: give exactly one of --completions FILE.jsonl (score outputs made elsewhere) or --model DIR\n");
        return 2;
    }
    if (a->limit < 0) { fprintf(stderr, "balora eval: error: --limit must be >= 0\n"); return 2; }
    bl_eval_opts o;
    bl_eval_opts_default(&o);
    o.limit = a->limit;
    if (parse_ks(a->ks, &o)) return 2;
    o.sandbox.timeout_s = a->timeout;
    o.sandbox.jobs = (int)(a->jobs < 1 ? 1 : a->jobs > 64 ? 64 : a->jobs);
    o.sandbox.mem_bytes = a->memory_mb << 20;
    o.sandbox.python = a->python;
    if (!(a->timeout > 0) || a->memory_mb < 16) { fprintf(stderr, "balora eval: error: --timeout must be > 0 and --memory-mb >= 16\n"); return 2; }

    bl_bench_set s;
    if ((st = bl_bench_load(bench, a->data, &s))) return cli_fail(st);
    /* --out: every problem's completions and outcome go to OUT.progress.jsonl as they are made, so
     * that an interrupted run keeps them and the same command continues from them */
    bl_eval_journal jn = {0}, *jp = NULL;
    if (a->out) {
        char jpath[4200];
        snprintf(jpath, sizeof jpath, "%s.progress.jsonl", a->out);
        cJSON *fp = NULL;
        st = bench_fingerprint(a, bench, &fp);
        const char **ids = st ? NULL : bl_malloc((size_t)s.n * sizeof *ids);
        if (!st && !ids) st = BALORA_STATUS_NOMEM;
        for (int64_t i = 0; !st && i < s.n; i++) ids[i] = s.p[i].id;
        if (!st) st = bl_eval_journal_open(&jn, jpath, fp, s.n, ids);
        free(ids);
        cJSON_Delete(fp);
        if (st) { bl_bench_set_free(&s); return cli_fail(st); }
        jp = &jn;
        o.journal = jp;
    }
    bl_completions c;
    st = a->model ? eval_model_completions(a, &s, jp, &c) : bl_completions_load(a->completions, &s, &c);
    if (st) { if (jp) bl_eval_journal_close(jp, false); bl_bench_set_free(&s); return cli_fail(st); }
    if (bl_bench_is_code(bench)) {
        st = bl_sandbox_selftest(&o.sandbox);
        if (!st) bl_log(BL_INFO, "running programs with python in a sandbox: %s", bl_sandbox_iso_name(bl_sandbox_isolation()));
        if (!st && bl_sandbox_isolation() != BL_SANDBOX_ISO_FULL)
            bl_log(BL_WARN, "the sandbox is weaker here: %s (why: %s); run untrusted completions as root or in a container",
                   bl_sandbox_iso_missing(bl_sandbox_isolation()), bl_sandbox_iso_reason());
    }
    bl_eval_report r;
    if (!st) st = bl_eval_score(&s, &c, &o, &r);
    bl_completions_free(&c);
    if (st) { if (jp) bl_eval_journal_close(jp, false); bl_bench_set_free(&s); return cli_fail(st); }

    printf("%-10s %9s %8s", "benchmark", "problems", "samples");
    if (bl_bench_is_code(bench)) for (int k = 0; k < r.n_ks; k++) { char h[32]; snprintf(h, sizeof h, "pass@%lld", (long long)r.ks[k]); printf(" %9s", h); }
    else printf(" %9s", "accuracy");
    printf("  %-17s %7s\n", "95% CI (Wilson)", "seconds");
    printf("%-10s %9lld %8lld", bl_bench_name(bench), (long long)r.n_problems, (long long)r.n_samples);
    if (bl_bench_is_code(bench)) for (int k = 0; k < r.n_ks; k++) {
        if (isnan(r.pass_at[k])) printf(" %9s", "n<k");
        else printf(" %8.2f%%", 100 * r.pass_at[k]);
    }
    else printf(" %8.2f%%", 100 * r.accuracy);
    printf("  [%5.2f, %6.2f]%%  %7.1f\n", 100 * r.ci_lo, 100 * r.ci_hi, r.seconds);
    if (r.n_missing) printf("%lld problem(s) had no completion and count as wrong\n", (long long)r.n_missing);
    int64_t shown = 0;
    for (int64_t i = 0; i < r.n_problems && shown < a->show_failures; i++) {
        const bl_eval_outcome *x = &r.out[i];
        if (x->correct || !x->n_samples) continue;
        shown++;
        if (bench == BL_BENCH_GSM8K) printf("  wrong %s: answer '%s', reference %g\n", s.p[i].id, x->answer, s.p[i].ref_value);
        else if (bench == BL_BENCH_MATH) printf("  wrong %s: answer '%s', reference '%s'\n", s.p[i].id, x->answer, s.p[i].reference);
        else printf("  failed %s: %.200s\n", s.p[i].id, x->detail ? x->detail : "");
    }
    int rc = 0;
    if (a->out) {
        cJSON *j;
        if ((st = bl_eval_report_json(&r, &s, &j))) rc = cli_fail(st);
        else {
            cJSON_AddStringToObject(j, "data", a->data);
            cJSON_AddStringToObject(j, "completions", a->completions ? a->completions : "(generated)");
            rc = write_report(j, a->out);
        }
    }
    /* the report holds everything now: the journal goes (kept when the report could not be written) */
    if (jp && (st = bl_eval_journal_close(jp, rc == 0)) && !rc) rc = cli_fail(st);
    bl_eval_report_free(&r);
    bl_bench_set_free(&s);
    return rc;
}

/* Scores one GLUE file against predictions (from a file, or the model hook). */
static balora_status seqcls_score(const eval_args *a, bl_glue_task task, const char *data, const char *preds_path, bool ood,
                                  bl_glue_result *r) {
    double *gold = NULL, *pred = NULL;
    int64_t ng = 0, np = 0;
    balora_status st;
    if (a->model) { st = eval_model_seqcls(a, task, data, ood, &pred, &gold, &ng); np = ng; } /* the model reads its own gold labels */
    else {
        st = bl_glue_read_labels(task, data, a->label_column, &gold, &ng);
        if (!st) st = bl_glue_read_predictions(task, preds_path, &pred, &np);
    }
    if (!st && np != ng)
        st = bl_fail(BALORA_STATUS_FORMAT, "%s has %lld predictions but %s has %lld labelled examples; hint: one prediction per example, in file order",
                     preds_path ? preds_path : "the model", (long long)np, data, (long long)ng);
    int64_t n = ng;
    if (!st && a->limit > 0 && a->limit < n) n = a->limit;
    if (!st) st = bl_glue_score(task, pred, gold, n, 0, r);
    free(gold); free(pred);
    unsigned mask;
    if (!st && a->metrics && !(st = bl_glue_metrics_parse(a->metrics, &mask))) st = bl_glue_set_metrics(r, mask);
    return st;
}

static void seqcls_print(const char *label, const bl_glue_result *r) {
    printf("%-14s %-8s %7lld", label, bl_glue_task_name(r->task), (long long)r->n);
    if (r->task == BL_GLUE_TASK_STSB) printf(" %9s %9s %9s %9.4f %9.4f", "-", "-", "-", r->pearson, r->spearman);
    else {
        printf(" %9.4f", r->accuracy);
        if (r->n_classes == 2) printf(" %9.4f", r->f1); else printf(" %9s", "-");
        printf(" %9.4f %9s %9s", r->mcc, "-", "-");
    }
    printf(" %9.4f\n", r->score);
}

static void seqcls_confusion(const char *label, const bl_glue_result *r) {
    if (r->task == BL_GLUE_TASK_STSB) return;
    printf("%s%sconfusion matrix (rows: label, columns: prediction)\n      ", label, *label ? " " : "");
    for (int p = 0; p < r->n_classes; p++) printf(" %8d", p);
    printf("\n");
    for (int t = 0; t < r->n_classes; t++) {
        printf("  %3d ", t);
        for (int p = 0; p < r->n_classes; p++) printf(" %8lld", (long long)r->confusion[t * r->n_classes + p]);
        printf("\n");
    }
}

static cJSON *seqcls_json(const bl_glue_result *r, const char *data) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "task", bl_glue_task_name(r->task));
    cJSON_AddStringToObject(j, "data", data);
    cJSON_AddNumberToObject(j, "n", (double)r->n);
    if (r->task == BL_GLUE_TASK_STSB) {
        cJSON_AddNumberToObject(j, "pearson", r->pearson);
        cJSON_AddNumberToObject(j, "spearman", r->spearman);
    } else {
        cJSON_AddNumberToObject(j, "accuracy", r->accuracy);
        if (r->n_classes == 2) cJSON_AddNumberToObject(j, "f1", r->f1);
        cJSON_AddNumberToObject(j, "mcc", r->mcc);
        cJSON *cm = cJSON_AddArrayToObject(j, "confusion_matrix");
        for (int t = 0; cm && t < r->n_classes; t++) {
            cJSON *row = cJSON_CreateArray();
            for (int p = 0; row && p < r->n_classes; p++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r->confusion[t * r->n_classes + p]));
            cJSON_AddItemToArray(cm, row);
        }
    }
    cJSON *tm = cJSON_AddArrayToObject(j, "task_metrics");
    const char *names[] = {"accuracy", "f1", "mcc", "pearson", "spearman"};
    for (int b = 0; tm && b < 5; b++) if (r->metrics & (1u << b)) cJSON_AddItemToArray(tm, cJSON_CreateString(names[b]));
    cJSON_AddNumberToObject(j, "score", r->score);
    return j;
}

static int run_seqcls(const eval_args *a) {
    if (!a->data) { fprintf(stderr, "balora eval: error: --data GLUE.tsv is required\n"); return 2; }
    if (!a->model == !a->predictions) {
        fprintf(stderr, "balora eval: error: give exactly one of --predictions FILE (predictions made elsewhere) or --model DIR\n");
        return 2;
    }
    if (a->ood_data && !a->model && !a->ood_predictions) {
        fprintf(stderr, "balora eval: error: --ood-data needs --ood-predictions (or --model)\n");
        return 2;
    }
    bl_glue_task task, ood_task;
    balora_status st = bl_glue_task_parse(a->glue_task, &task);
    if (!st) st = bl_glue_task_parse(a->ood_glue_task ? a->ood_glue_task : a->glue_task, &ood_task);
    if (st) { fprintf(stderr, "balora eval: error: %s\n", balora_last_error()); return 2; }
    bl_glue_result r[2];
    if ((st = seqcls_score(a, task, a->data, a->predictions, false, &r[0]))) return cli_fail(st);
    bool ood = a->ood_data != NULL;
    if (ood && (st = seqcls_score(a, ood_task, a->ood_data, a->ood_predictions, true, &r[1]))) return cli_fail(st);
    printf("%-14s %-8s %7s %9s %9s %9s %9s %9s %9s\n", "", "task", "n", "accuracy", "f1", "mcc", "pearson", "spearman", "score");
    seqcls_print(ood ? "in-domain" : "", &r[0]);
    if (ood) seqcls_print("out-of-domain", &r[1]);
    /* GLUE-X: the change from in-domain to out-of-domain of each metric both report */
    bool same_kind = ood && (r[0].task == BL_GLUE_TASK_STSB) == (r[1].task == BL_GLUE_TASK_STSB);
    bool both_f1 = same_kind && r[0].n_classes == 2 && r[1].n_classes == 2;
    if (same_kind) {
        printf("%-14s %-8s %7s", "OOD - ID", "", "");
        if (r[0].task == BL_GLUE_TASK_STSB) printf(" %9s %9s %9s %+9.4f %+9.4f", "-", "-", "-", r[1].pearson - r[0].pearson, r[1].spearman - r[0].spearman);
        else {
            printf(" %+9.4f", r[1].accuracy - r[0].accuracy);
            if (both_f1) printf(" %+9.4f", r[1].f1 - r[0].f1); else printf(" %9s", "-");
            printf(" %+9.4f %9s %9s", r[1].mcc - r[0].mcc, "-", "-");
        }
        printf(" %+9.4f\n", r[1].score - r[0].score);
    }
    seqcls_confusion(ood ? "in-domain" : "", &r[0]);
    if (ood) seqcls_confusion("out-of-domain", &r[1]);
    if (!a->out) return 0;
    cJSON *j = seqcls_json(&r[0], a->data);
    if (j && a->model) {
        cJSON_AddStringToObject(j, "model", a->model);
        if (a->adapter) cJSON_AddStringToObject(j, "adapter", a->adapter); else cJSON_AddNullToObject(j, "adapter");
    }
    if (j && ood) {
        cJSON *o = seqcls_json(&r[1], a->ood_data);
        if (o) cJSON_AddItemToObject(j, "out_of_domain", o);
        cJSON *d = same_kind ? cJSON_AddObjectToObject(j, "ood_minus_id") : NULL;
        if (d && r[0].task == BL_GLUE_TASK_STSB) {
            cJSON_AddNumberToObject(d, "pearson", r[1].pearson - r[0].pearson);
            cJSON_AddNumberToObject(d, "spearman", r[1].spearman - r[0].spearman);
        } else if (d) {
            cJSON_AddNumberToObject(d, "accuracy", r[1].accuracy - r[0].accuracy);
            if (both_f1) cJSON_AddNumberToObject(d, "f1", r[1].f1 - r[0].f1);
            cJSON_AddNumberToObject(d, "mcc", r[1].mcc - r[0].mcc);
        }
        if (d) cJSON_AddNumberToObject(d, "score", r[1].score - r[0].score);
    }
    if (!j) return cli_fail(bl_fail(BALORA_STATUS_NOMEM, "report"));
    int rc = write_report(j, a->out);
    /* the report holds everything now: the journals go (kept when the report could not be written) */
    for (int i = 0; !rc && a->model && i < 1 + ood; i++) {
        char jpath[4200];
        seqcls_journal_path(a->out, i == 1, jpath, sizeof jpath);
        if (unlink(jpath) != 0 && errno != ENOENT) rc = cli_fail(bl_fail(BALORA_STATUS_IO, "%s: cannot remove (%s)", jpath, strerror(errno)));
    }
    return rc;
}

/* --glue-average R1.json,R2.json,...: the GLUE average of seq-cls reports (each task's score is
 * the mean of its own metrics; the average is the mean over tasks). */
static int run_glue_average(const char *list, const char *out) {
    char *copy = bl_strdup(list);
    if (!copy) return cli_fail(BALORA_STATUS_NOMEM);
    bl_glue_result r[64];
    const char *names[64];
    int64_t n = 0;
    cJSON *docs[64] = {0};
    balora_status st = BALORA_STATUS_OK;
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p && !st; p = strtok_r(NULL, ",", &save)) {
        if (n == 64) { st = bl_fail(BALORA_STATUS_INVALID, "--glue-average: at most 64 reports"); break; }
        if ((st = bl_json_load(p, &docs[n]))) break;
        const char *task = NULL;
        double score = NAN;
        st = bl_json_str(docs[n], p, "task", true, &task);
        if (!st) st = bl_json_num(docs[n], p, "score", true, &score);
        memset(&r[n], 0, sizeof r[n]);
        if (!st) st = bl_glue_task_parse(task, &r[n].task);
        r[n].score = score;
        names[n] = p;
        n++;
    }
    double avg = 0;
    if (!st) st = bl_glue_average(r, n, &avg);
    int rc = 0;
    if (st) rc = cli_fail(st);
    else {
        printf("%-8s %9s  %s\n", "task", "score", "report");
        for (int64_t i = 0; i < n; i++) printf("%-8s %9.4f  %s\n", bl_glue_task_name(r[i].task), r[i].score, names[i]);
        printf("%-8s %9.4f  (mean over %lld tasks)\n", "GLUE", avg, (long long)n);
        if (out) {
            cJSON *j = cJSON_CreateObject(), *tasks = cJSON_CreateObject();
            if (!j || !tasks) { cJSON_Delete(j); cJSON_Delete(tasks); rc = cli_fail(bl_fail(BALORA_STATUS_NOMEM, "report")); }
            else {
                for (int64_t i = 0; i < n; i++) cJSON_AddNumberToObject(tasks, bl_glue_task_name(r[i].task), r[i].score);
                cJSON_AddItemToObject(j, "task_scores", tasks);
                cJSON_AddNumberToObject(j, "glue_average", avg);
                rc = write_report(j, out);
            }
        }
    }
    for (int64_t i = 0; i < n; i++) cJSON_Delete(docs[i]);
    free(copy);
    return rc;
}

/* MT-Bench: judge prompts out, judgments in (see eval/mtbench.h). */
static int run_mtbench(const eval_args *a) {
    if (!a->data) { fprintf(stderr, "balora eval: error: --bench mtbench needs --data question.jsonl (MT-Bench questions)\n"); return 2; }
    int modes = !!a->judgments + !!a->judge_prompts_out + !!a->judge;
    if (modes != 1) {
        fprintf(stderr, "balora eval: error: --bench mtbench needs one of --judge-prompts-out FILE (with --completions answers.jsonl), "
                        "--judgments FILE, or --judge DIR\n");
        return 2;
    }
    bl_mt_set s;
    balora_status st = bl_mt_questions_load(a->data, &s);
    if (st) return cli_fail(st);
    int rc = 0;
    if (a->judgments) {
        bl_mt_report r;
        if ((st = bl_mt_score_judgments(&s, a->judgments, &r))) { bl_mt_set_free(&s); return cli_fail(st); }
        printf("%-16s %6s %7s\n", "", "n", "score");
        printf("%-16s %6lld %7.3f\n", "MT-Bench", (long long)r.n, r.mean);
        for (int t = 0; t < 2; t++) if (r.turn_n[t]) printf("%-16s %6lld %7.3f\n", t ? "turn 2" : "turn 1", (long long)r.turn_n[t], r.turn_mean[t]);
        for (int i = 0; i < r.n_cats; i++) printf("  %-14s %6lld %7.3f\n", r.cats[i], (long long)r.cat_n[i], r.cat_mean[i]);
        if (r.n_unscored) printf("%lld judgment(s) without a [[rating]] are left out\n", (long long)r.n_unscored);
        if (a->out) {
            cJSON *j = cJSON_CreateObject(), *cats = cJSON_CreateObject();
            if (!j || !cats) { cJSON_Delete(j); cJSON_Delete(cats); rc = cli_fail(bl_fail(BALORA_STATUS_NOMEM, "report")); }
            else {
                cJSON_AddStringToObject(j, "bench", "mtbench");
                if (r.n) cJSON_AddNumberToObject(j, "score", r.mean); else cJSON_AddNullToObject(j, "score");
                cJSON_AddNumberToObject(j, "n_scored", (double)r.n);
                cJSON_AddNumberToObject(j, "n_unscored", (double)r.n_unscored);
                for (int t = 0; t < 2; t++) {
                    const char *key = t ? "turn_2" : "turn_1";
                    if (r.turn_n[t]) cJSON_AddNumberToObject(j, key, r.turn_mean[t]); else cJSON_AddNullToObject(j, key);
                }
                for (int i = 0; i < r.n_cats; i++) cJSON_AddNumberToObject(cats, r.cats[i], r.cat_mean[i]);
                cJSON_AddItemToObject(j, "categories", cats);
                rc = write_report(j, a->out);
            }
        }
        bl_mt_set_free(&s);
        return rc;
    }
    if (!a->completions && !a->model) { bl_mt_set_free(&s); fprintf(stderr, "balora eval: error: the judge needs the answers: --completions answers.jsonl\n"); return 2; }
    bl_mt_templates t;
    st = a->completions ? bl_mt_answers_load(a->completions, &s) : eval_model_mt_answers(a, &s);
    if (!st) st = a->judge_prompts ? bl_mt_templates_load(a->judge_prompts, &t) : bl_mt_templates_default(&t);
    if (st) { bl_mt_set_free(&s); return cli_fail(st); }
    if (a->judge) st = eval_model_judge(a, &s, &t, a->out);
    else {
        FILE *f = fopen(a->judge_prompts_out, "w");
        int64_t n = 0;
        if (!f) st = bl_fail(BALORA_STATUS_IO, "%s: cannot create", a->judge_prompts_out);
        for (int64_t i = 0; f && i < s.n && !st; i++)
            for (int turn = 1; turn <= s.q[i].n_turns && !st; turn++) {
                char *sys, *prompt, *line = NULL;
                if ((st = bl_mt_judge_prompt(&t, &s.q[i], turn, &sys, &prompt))) break;
                cJSON *o = cJSON_CreateObject();
                if (o) {
                    cJSON_AddStringToObject(o, "question_id", s.q[i].id);
                    cJSON_AddNumberToObject(o, "turn", turn);
                    cJSON_AddStringToObject(o, "category", s.q[i].category);
                    cJSON_AddStringToObject(o, "system", sys);
                    cJSON_AddStringToObject(o, "prompt", prompt);
                    line = cJSON_PrintUnformatted(o);
                    cJSON_Delete(o);
                }
                if (!line || fprintf(f, "%s\n", line) < 0) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", a->judge_prompts_out);
                free(line); free(sys); free(prompt);
                n++;
            }
        if (f && fclose(f) != 0 && !st) st = bl_fail(BALORA_STATUS_IO, "%s: write failed", a->judge_prompts_out);
        if (!st) printf("%lld judge prompts written to %s (answer them with a judge model; then --judgments)\n", (long long)n, a->judge_prompts_out);
    }
    bl_mt_templates_free(&t);
    bl_mt_set_free(&s);
    return st ? cli_fail(st) : 0;
}

int cmd_eval(int argc, char **argv) {
    eval_args a = {.ks = "1", .glue_task = "generic", .jobs = 2, .memory_mb = 1024, .timeout = 10, .show_failures = 5,
                   .max_new_tokens = 512, .batch_size = 8, .samples = 1, .top_p = 1.0, .max_len = 128};
    char glue_help[300], glue[200];
    snprintf(glue_help, sizeof glue_help, "seq-cls: %s", bl_glue_task_list(1, glue, sizeof glue));
    cli_opt opts[] = {
        {"bench", CLI_OPT_STR, &a.bench, "benchmark: gsm8k, math, humaneval, mbpp, mtbench (or ppl, with --model)"},
        {"task", CLI_OPT_STR, &a.task, "seq-cls: score GLUE-style classification predictions"},
        {"data", CLI_OPT_STR, &a.data, "the benchmark's data file (JSONL, .gz allowed) or GLUE TSV"},
        {"completions", CLI_OPT_STR, &a.completions, "JSONL of {\"index\"|\"task_id\", \"completion\"}; several lines per problem = samples"},
        {"predictions", CLI_OPT_STR, &a.predictions, "seq-cls: one prediction per line (or GLUE's index<TAB>prediction)"},
        {"glue-task", CLI_OPT_STR, &a.glue_task, glue_help},
        {"label-col", CLI_OPT_STR, &a.label_column, "seq-cls: the label column's header name (or 0-based number, as train's --label-col; JSON: the field)"},
        {"label-column", CLI_OPT_STR, &a.label_column, "seq-cls: alias of --label-col"},
        {"text-col", CLI_OPT_STR, &a.text_col, "seq-cls with --model, generic files: the text column (default: text)"},
        {"text-pair-col", CLI_OPT_STR, &a.text_pair_col, "seq-cls with --model, generic files: the second text's column (sentence pairs)"},
        {"labels", CLI_OPT_STR, &a.labels, "seq-cls with --model, generic files: label names in id order (as given to train)"},
        {"max-len", CLI_OPT_INT, &a.max_len, "seq-cls with --model: tokens per example (truncation)"},
        {"metrics", CLI_OPT_STR, &a.metrics, "seq-cls: metrics the score averages (accuracy,f1,mcc,pearson,spearman; default: the GLUE task's)"},
        {"ood-data", CLI_OPT_STR, &a.ood_data, "seq-cls: an out-of-domain file (same label space), reported beside --data"},
        {"ood-predictions", CLI_OPT_STR, &a.ood_predictions, "seq-cls: predictions for --ood-data"},
        {"ood-glue-task", CLI_OPT_STR, &a.ood_glue_task, "seq-cls: the task layout of --ood-data (default: --glue-task)"},
        {"glue-average", CLI_OPT_STR, &a.glue_average, "comma-separated seq-cls reports (--out files): print and write the GLUE average"},
        {"prompts-out", CLI_OPT_STR, &a.prompts_out, "write the problems' prompts as JSONL {index, task_id, prompt} and stop"},
        {"template", CLI_OPT_STR, &a.template, "--prompts-out / --model: none, or alpaca (the paper's instruction format; --model default: alpaca for gsm8k and math)"},
        {"limit", CLI_OPT_INT, &a.limit, "score only the first N problems (0 = all)"},
        {"out", CLI_OPT_STR, &a.out, "write the JSON report (metrics and every per-problem outcome) here"},
        {"k", CLI_OPT_STR, &a.ks, "pass@k values for code benchmarks, comma-separated (pass@1 always)"},
        {"timeout", CLI_OPT_FLOAT, &a.timeout, "seconds of wall clock per program (code benchmarks)"},
        {"jobs", CLI_OPT_INT, &a.jobs, "programs run at once (code benchmarks)"},
        {"memory-mb", CLI_OPT_INT, &a.memory_mb, "address-space limit per program, MiB"},
        {"python", CLI_OPT_STR, &a.python, "python3 interpreter (default $BALORA_PYTHON, /usr/bin/python3, PATH)"},
        {"show-failures", CLI_OPT_INT, &a.show_failures, "print this many failed problems"},
        {"judgments", CLI_OPT_STR, &a.judgments, "mtbench: JSONL {question_id, turn, judgment} from a judge: average the [[ratings]]"},
        {"judge-prompts-out", CLI_OPT_STR, &a.judge_prompts_out, "mtbench: write the judge prompts (JSONL) for the answers in --completions"},
        {"judge-prompts", CLI_OPT_STR, &a.judge_prompts, "mtbench: FastChat judge_prompts.jsonl to use instead of balora's wording"},
        {"judge", CLI_OPT_STR, &a.judge, "mtbench: judge model folder run by balora (greedy, plain-text prompt; judgments go to --out)"},
        {"model", CLI_OPT_STR, &a.model, "model folder (or llama2.c .bin): generate the completions with it / --bench ppl"},
        {"adapter", CLI_OPT_STR, &a.adapter, "adapter folder for --model"},
        {"tokenizer", CLI_OPT_STR, &a.tokenizer, "--model / --judge: tokenizer folder (default: the model folder's)"},
        {"max-new-tokens", CLI_OPT_INT, &a.max_new_tokens, "--model: tokens generated at most per completion"},
        {"batch-size", CLI_OPT_INT, &a.batch_size, "--model: prompts decoded together"},
        {"samples", CLI_OPT_INT, &a.samples, "--model: completions per problem (pass@k; > 1 needs --temperature)"},
        {"temperature", CLI_OPT_FLOAT, &a.temperature, "--model: 0 = greedy"},
        {"top-p", CLI_OPT_FLOAT, &a.top_p, "--model: nucleus sampling (1 = off)"},
        {"seed", CLI_OPT_INT, &a.seed, "--model: sampling seed"},
        {"answers-out", CLI_OPT_STR, &a.answers_out, "mtbench --model: also write the model's answers (JSONL {question_id, turns})"},
        {"window", CLI_OPT_INT, &a.window, "--bench ppl: tokens per window (0 = min(model positions, 1024))"},
        {"stride", CLI_OPT_INT, &a.stride, "--bench ppl: window step (0 = window / 2), as the HF perplexity guide"},
    };
    int rc = cli_parse(argc, argv, "--bench B --data FILE --completions FILE.jsonl [options] | --task seq-cls --data GLUE.tsv --predictions FILE",
                       opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, NULL);
    if (rc == 1) return 0;
    if (rc) return rc;
    cli_catch_signals();
    if (a.glue_average) return run_glue_average(a.glue_average, a.out);
    if (a.adapter && !a.model) { fprintf(stderr, "balora eval: error: --adapter needs --model\n"); return 2; }
    if (a.task) {
        if (strcmp(a.task, "seq-cls") != 0) { fprintf(stderr, "balora eval: error: unknown --task '%s' (seq-cls)\n", a.task); return 2; }
        if (a.bench) { fprintf(stderr, "balora eval: error: give --bench or --task, not both\n"); return 2; }
        return run_seqcls(&a);
    }
    if (!a.bench) { fprintf(stderr, "balora eval: error: --bench or --task is required (see balora eval --help)\n"); return 2; }
    if (!strcmp(a.bench, "mtbench")) return run_mtbench(&a);
    if (!strcmp(a.bench, "ppl")) {
        if (!a.model) { fprintf(stderr, "balora eval: error: --bench ppl needs --model DIR and --data TEXT\n"); return 2; }
        double ppl = 0; int64_t nt = 0;
        balora_status st = eval_model_ppl(&a, &ppl, &nt);
        if (st) return cli_fail(st);
        printf("perplexity %.4f over %lld tokens\n", ppl, (long long)nt);
        return 0;
    }
    return run_bench(&a);
}
