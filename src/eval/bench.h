/* Benchmarks scored from completions: GSM8K, MATH, HumanEval, MBPP.
 *
 * Data files (JSON lines; gzip-compressed files are read transparently):
 *   gsm8k     {"question", "answer"}                   reference = the number after "####"
 *   math      {"problem", "solution"[, "answer"]}      reference = "answer", else the last \boxed{}
 *   humaneval {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
 *   mbpp      {"task_id", "text", "code", "test_list", "test_setup_code"}
 * Completions (JSON lines): {"index": I, "completion": TEXT} with I the 0-based position of the
 * problem in the data file, or {"task_id": ID, "completion": TEXT} (HumanEval "HumanEval/0",
 * MBPP 11). Several lines for one problem are n samples of it.
 * Programs run for the code benchmarks (as human-eval and the MBPP harnesses build them):
 *   humaneval: prompt + completion + "\n" + test + "\n" + "check(" entry_point ")\n"
 *   mbpp:      completion + "\n" + test_setup_code + "\n" + the test_list asserts, one a line */
#ifndef BL_EVAL_BENCH_H
#define BL_EVAL_BENCH_H
#include "core/bl.h"
#include "eval/sandbox.h"
#include <cjson/cJSON.h>

typedef enum bl_bench {
    BL_BENCH_GSM8K, BL_BENCH_MATH, BL_BENCH_HUMANEVAL, BL_BENCH_MBPP, BL_BENCH_COUNT
} bl_bench;

balora_status bl_bench_parse(const char *name, bl_bench *out);
const char *bl_bench_name(bl_bench b);
bool bl_bench_is_code(bl_bench b);

typedef struct bl_bench_problem {
    char *id;          /* task_id as text ("HumanEval/0", "11"), else the 0-based index */
    char *prompt;      /* what a model is given: question / problem / HumanEval prompt / MBPP prompt */
    char *reference;   /* gsm8k: answer field; math: final answer; humaneval: canonical_solution; mbpp: code */
    char *test;        /* humaneval: test code; mbpp: test_setup_code + asserts */
    char *entry_point; /* humaneval */
    double ref_value;  /* gsm8k: the reference number */
} bl_bench_problem;

typedef struct bl_bench_set {
    bl_bench bench;
    int64_t n;
    bl_bench_problem *p;   /* [n] */
} bl_bench_set;

/* Loads a data file. Every problem is checked (a GSM8K answer without "####" is an error naming the line). */
balora_status bl_bench_load(bl_bench bench, const char *path, bl_bench_set *out);
void bl_bench_set_free(bl_bench_set *s);
/* Index of the problem with this id, or -1. */
int64_t bl_bench_find(const bl_bench_set *s, const char *id);

/* The MBPP prompt as commonly used (the original paper, bigcode-evaluation-harness):
 * "You are an expert Python programmer, and here is your task: {text} Your code should pass
 * these tests:\n\n{test_list joined by \n}\n". malloc'd. */
char *bl_mbpp_prompt(const char *text, const char *const *tests, int64_t n_tests);

/* The program run for a code problem with this completion (malloc'd, NULL on out of memory). */
char *bl_bench_program(const bl_bench_set *s, int64_t i, const char *completion);

/* ---- completions ---- */
typedef struct bl_completion { int64_t problem; char *text; } bl_completion;
typedef struct bl_completions { int64_t n; bl_completion *c; } bl_completions;
/* Reads a completions file and maps each line to a problem of s; unknown indices/ids are errors. */
balora_status bl_completions_load(const char *path, const bl_bench_set *s, bl_completions *out);
void bl_completions_free(bl_completions *c);

/* ---- scoring ---- */
/* Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k), computed as
 * 1 - prod_{i = n-c+1}^{n} (1 - k / i) (stable for large n). Requires 0 <= c <= n, 1 <= k <= n. */
double bl_pass_at_k(int64_t n, int64_t c, int64_t k);

typedef struct bl_eval_outcome {
    int64_t problem;       /* index in the data set */
    int64_t n_samples, n_correct;
    char *answer;          /* gsm8k/math: the first sample's extracted answer ("" if none) */
    char *detail;          /* code: the first failing sample's status and output tail (at most BL_EVAL_DETAIL_MAX - 1
                              bytes, BL_EVAL_DETAIL_CUT after the status where earlier output was cut); NULL if all passed */
    bool correct;          /* the first sample was correct */
} bl_eval_outcome;

/* Failure text copied into reports (the detail above, report.json's "failure"): at most 2 KiB,
 * the end of the program's output (a traceback names the failing assert there); when anything
 * before it was dropped the text after the status starts with the marker. */
#define BL_EVAL_DETAIL_MAX 2048
#define BL_EVAL_DETAIL_CUT "[earlier output cut] "

#define BL_EVAL_MAX_K 8
typedef struct bl_eval_opts {
    int64_t limit;              /* score the first `limit` problems (0 = all) */
    int64_t ks[BL_EVAL_MAX_K];  /* pass@k to report (code benchmarks); default {1} */
    int n_ks;
    bl_sandbox_opts sandbox;
    /* NULL, or the journal (eval/journal.h) that keeps each problem's outcome as it is scored:
     * problems it already holds are not scored again, and balora_interrupt stops the scoring after
     * the current problem (code: the current group of programs, whose results are dropped when a
     * program was killed by the interrupt's signal) with BALORA_STATUS_INTERRUPTED. */
    struct bl_eval_journal *journal;
} bl_eval_opts;
void bl_eval_opts_default(bl_eval_opts *o);

typedef struct bl_eval_report {
    bl_bench bench;
    int64_t n_problems;         /* scored */
    int64_t n_missing;          /* problems without any completion (scored as wrong) */
    int64_t n_samples, n_correct_samples;
    double accuracy;            /* gsm8k/math: mean over problems of the fraction of correct samples */
    double ci_lo, ci_hi;        /* Wilson 95% over samples */
    int64_t ks[BL_EVAL_MAX_K];
    double pass_at[BL_EVAL_MAX_K]; /* code: mean pass@k over problems; NaN where some problem has n < k */
    int n_ks;
    double seconds;
    bl_sandbox_iso isolation;
    bl_eval_outcome *out;       /* [n_problems] */
} bl_eval_report;

/* Scores completions against the first opts->limit problems. Completions of problems past the
 * limit are ignored. balora_interrupt: see bl_eval_opts.journal (without a journal, nothing is kept). */
balora_status bl_eval_score(const bl_bench_set *s, const bl_completions *c, const bl_eval_opts *opts, bl_eval_report *r);
void bl_eval_report_free(bl_eval_report *r);
/* The JSON report: bench, n_problems, n_samples, n_missing, "accuracy" (gsm8k, math) or "pass@k"
 * (code; null where some problem has fewer than k samples), ci95_wilson, seconds and "problems":
 * one object per scored problem {index, id, n_samples, n_correct, correct (first sample),
 * answer + reference (gsm8k, math), failure (why the first failing sample failed)}. */
balora_status bl_eval_report_json(const bl_eval_report *r, const bl_bench_set *s, cJSON **out);

#endif
