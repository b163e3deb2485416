/* HumanEval and MBPP scoring through the sandbox: the references' own solutions pass (100%),
 * wrong ones fail (0%), a completion that loops forever or allocates without bound is stopped and
 * scored as a failure; pass@k by the unbiased estimator against hand-computed values.
 * All 164 HumanEval problems run here (about 4 s); for MBPP a deterministic subset (every 20th
 * problem: the full 974 take about 40 s and task 123's reference needs more than 10 s);
 * bench/eval_code_refs.sh runs all of them, and so does BALORA_EVAL_ALL=1 here. */
#include "harness.h"
#include "eval/bench.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Writes completions: for each chosen problem, `kind` 0 = the reference solution, 1 = a wrong
 * solution, 2 = an infinite loop, 3 = unbounded allocation. */
static void write_completions(const char *path, const bl_bench_set *s, const int64_t *pick, int64_t n, int kind) {
    FILE *f = fopen(path, "w");
    for (int64_t j = 0; j < n; j++) {
        const bl_bench_problem *p = &s->p[pick[j]];
        const char *text = p->reference;
        char wrong[512];
        if (kind != 0) {
            const char *body = kind == 1 ? "    return None" : kind == 2 ? "    while True:\n        pass" :
                                "    x = []\n    while True:\n        x.append(bytearray(10**7))";
            if (s->bench == BL_BENCH_HUMANEVAL) snprintf(wrong, sizeof wrong, "%s\n", body);
            else {
                /* MBPP: define the function the asserts call, with any arguments */
                const char *a = strstr(p->test, "assert ");
                char name[128] = "f";
                if (a) {
                    a += 7;
                    while (*a == ' ' || *a == '(' || !strncmp(a, "not ", 4) || !strncmp(a, "set(", 4) || !strncmp(a, "math.isclose(", 13))
                        a += *a == ' ' || *a == '(' ? 1 : !strncmp(a, "not ", 4) ? 4 : !strncmp(a, "set(", 4) ? 4 : 13;
                    size_t k = 0;
                    while ((a[k] == '_' || (a[k] >= 'a' && a[k] <= 'z') || (a[k] >= 'A' && a[k] <= 'Z') || (a[k] >= '0' && a[k] <= '9')) && k < 127) k++;
                    memcpy(name, a, k); name[k] = 0;
                }
                snprintf(wrong, sizeof wrong, "def %s(*args, **kwargs):\n%s\n", name, body);
            }
            text = wrong;
        }
        cJSON *o = cJSON_CreateObject();
        if (s->bench == BL_BENCH_MBPP) cJSON_AddNumberToObject(o, "task_id", atof(p->id));
        else cJSON_AddStringToObject(o, "task_id", p->id);
        cJSON_AddStringToObject(o, "completion", text);
        char *line = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    fclose(f);
}

static void score(const bl_bench_set *s, const char *cpath, const bl_eval_opts *o, int64_t *n_pass, int64_t *n, bl_eval_report *rep) {
    bl_completions c;
    CHECK_OK(bl_completions_load(cpath, s, &c));
    /* score only the picked problems: a set restricted by the completions' own problems */
    CHECK_OK(bl_eval_score(s, &c, o, rep));
    *n_pass = 0; *n = 0;
    for (int64_t i = 0; i < rep->n_problems; i++) {
        if (rep->out[i].n_samples == 0) continue;
        (*n)++;
        *n_pass += rep->out[i].correct;
    }
    bl_completions_free(&c);
}

static void run_bench(bl_bench bench, const char *path, int64_t want_n, int64_t stride) {
    bl_bench_set s;
    CHECK_OK(bl_bench_load(bench, path, &s));
    CHECK(s.n == want_n, "%s has %lld problems, want %lld", bl_bench_name(bench), (long long)s.n, (long long)want_n);
    if (s.n != want_n) { bl_bench_set_free(&s); return; }
    int64_t pick[1000], np = 0;
    for (int64_t i = 0; i < s.n; i += stride) pick[np++] = i;
    char cpath[600];
    snprintf(cpath, sizeof cpath, "%s/%s.jsonl", t_tmpdir(), bl_bench_name(bench));
    bl_eval_opts o;
    bl_eval_opts_default(&o);
    o.sandbox.jobs = 2;
    o.sandbox.timeout_s = 10;
    int64_t pass, n;
    bl_eval_report rep;
    double t0 = bl_time_now();
    write_completions(cpath, &s, pick, np, 0);
    score(&s, cpath, &o, &pass, &n, &rep);
    printf("%s: references %lld/%lld passed in %.1f s (isolation: %s)\n", bl_bench_name(bench), (long long)pass, (long long)n,
           bl_time_now() - t0, bl_sandbox_iso_name(rep.isolation));
    CHECK(n == np && pass == np, "%s: references passed %lld of %lld", bl_bench_name(bench), (long long)pass, (long long)n);
    for (int64_t i = 0; i < rep.n_problems; i++)
        if (rep.out[i].n_samples && !rep.out[i].correct) fprintf(stderr, "  %s failed: %s\n", s.p[i].id, rep.out[i].detail);
    bl_eval_report_free(&rep);

    /* wrong solutions (on a quarter of the subset) */
    int64_t nw = np / 4 ? np / 4 : 1;
    write_completions(cpath, &s, pick, nw, 1);
    score(&s, cpath, &o, &pass, &n, &rep);
    CHECK(n == nw && pass == 0, "%s: wrong solutions passed %lld of %lld", bl_bench_name(bench), (long long)pass, (long long)n);
    bl_eval_report_free(&rep);

    /* an infinite loop and unbounded allocation: stopped, scored as failures */
    o.sandbox.timeout_s = 2;
    o.sandbox.mem_bytes = (int64_t)512 << 20;
    for (int kind = 2; kind <= 3; kind++) {
        t0 = bl_time_now();
        write_completions(cpath, &s, pick, 2, kind);
        score(&s, cpath, &o, &pass, &n, &rep);
        double dt = bl_time_now() - t0;
        CHECK(n == 2 && pass == 0 && dt < 8, "%s: %s: passed %lld of %lld in %.1f s", bl_bench_name(bench),
              kind == 2 ? "infinite loop" : "unbounded allocation", (long long)pass, (long long)n, dt);
        const char *d = rep.out[pick[0]].detail;
        CHECK(d && (kind == 2 ? strstr(d, "timed out") != NULL : (strstr(d, "MemoryError") != NULL || strstr(d, "signal") != NULL)),
              "%s failure detail: %s", kind == 2 ? "loop" : "allocation", d ? d : "(none)");
        bl_eval_report_free(&rep);
    }
    bl_bench_set_free(&s);
}

int main(void) {
    /* pass@k: n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7; k = 1: c/n; c = 0 -> 0;
     * n - c < k -> 1; n = 200, c = 10, k = 10: 1 - C(190,10)/C(200,10). */
    CHECK(fabs(bl_pass_at_k(5, 2, 2) - 0.7) < 1e-12, "pass@2(5,2) = %g", bl_pass_at_k(5, 2, 2));
    CHECK(fabs(bl_pass_at_k(10, 3, 1) - 0.3) < 1e-12, "pass@1 = c/n");
    CHECK(bl_pass_at_k(10, 0, 5) == 0.0 && bl_pass_at_k(10, 8, 5) == 1.0, "pass@k ends");
    double want = 1.0, lc = 0;
    for (int i = 0; i < 10; i++) lc += log(190.0 - i) - log(200.0 - i);
    want = 1.0 - exp(lc);
    CHECK(fabs(bl_pass_at_k(200, 10, 10) - want) < 1e-12, "pass@10(200,10) = %.15g want %.15g", bl_pass_at_k(200, 10, 10), want);
    CHECK(isnan(bl_pass_at_k(3, 1, 5)), "k > n is undefined");

    const char *shared = t_require_shared();
    const char *py;
    if (bl_sandbox_python(NULL, &py) != BALORA_STATUS_OK) { printf("SKIP: %s\n", balora_last_error()); return 77; }
    bool all = getenv("BALORA_EVAL_ALL") && atoi(getenv("BALORA_EVAL_ALL"));
    char path[1024];
    snprintf(path, sizeof path, "%s/data/humaneval/HumanEval.jsonl.gz", shared);
    run_bench(BL_BENCH_HUMANEVAL, path, 164, 1); /* all 164: about 4 s with 2 jobs */
    snprintf(path, sizeof path, "%s/data/mbpp/mbpp.jsonl", shared);
    run_bench(BL_BENCH_MBPP, path, 974, all ? 1 : 20);

    /* pass@k from several samples per problem: HumanEval/0 with 3 samples, 1 correct. */
    snprintf(path, sizeof path, "%s/data/humaneval/HumanEval.jsonl.gz", shared);
    bl_bench_set s;
    CHECK_OK(bl_bench_load(BL_BENCH_HUMANEVAL, path, &s));
    char cpath[600];
    snprintf(cpath, sizeof cpath, "%s/samples.jsonl", t_tmpdir());
    FILE *f = fopen(cpath, "w");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task_id", "HumanEval/0");
    cJSON_AddStringToObject(o, "completion", s.p[0].reference);
    char *line = cJSON_PrintUnformatted(o);
    fprintf(f, "{\"task_id\": \"HumanEval/0\", \"completion\": \"    return False\\n\"}\n%s\n{\"index\": 0, \"completion\": \"    return 1/0\\n\"}\n", line);
    free(line);
    cJSON_Delete(o);
    fclose(f);
    bl_eval_opts opts;
    bl_eval_opts_default(&opts);
    opts.limit = 1;
    opts.ks[1] = 2; opts.ks[2] = 5; opts.n_ks = 3;
    bl_completions c;
    bl_eval_report rep;
    CHECK_OK(bl_completions_load(cpath, &s, &c));
    CHECK_OK(bl_eval_score(&s, &c, &opts, &rep));
    CHECK(rep.out[0].n_samples == 3 && rep.out[0].n_correct == 1 && !rep.out[0].correct, "3 samples, 1 correct");
    CHECK(fabs(rep.pass_at[0] - 1.0 / 3.0) < 1e-12 && fabs(rep.pass_at[1] - 2.0 / 3.0) < 1e-12 && isnan(rep.pass_at[2]),
          "pass@1 %g pass@2 %g pass@5 %g", rep.pass_at[0], rep.pass_at[1], rep.pass_at[2]);
    cJSON *j;
    CHECK_OK(bl_eval_report_json(&rep, &s, &j));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "pass@1")) && cJSON_IsNull(cJSON_GetObjectItem(j, "pass@5")), "JSON pass@k");
    cJSON_Delete(j);
    bl_eval_report_free(&rep);
    bl_completions_free(&c);
    f = fopen(cpath, "w");
    fputs("{\"task_id\": \"HumanEval/999\", \"completion\": \"x\"}\n", f);
    fclose(f);
    CHECK_FAILS(bl_completions_load(cpath, &s, &c), BALORA_STATUS_FORMAT, "not in the data set");
    bl_bench_set_free(&s);
    return t_finish();
}
