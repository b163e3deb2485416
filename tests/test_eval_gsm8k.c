/* GSM8K grading: number parsing and extraction cases, and the real test set graded 100% from its
 * own reference answers ("The answer is: <ref>", with commas, "$", ".0" and the "####" form) and
 * 0% from wrong ones (ref + 1, and the answer stated before "The answer is" but not after). */
#include "harness.h"
#include "eval/bench.h"
#include "eval/gsm8k.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void extract_is(const char *completion, double want) {
    double v = NAN;
    char text[64];
    bool ok = bl_gsm8k_extract(completion, &v, text, sizeof text);
    CHECK(ok && bl_gsm8k_equal(v, want), "extract(\"%s\") = %s (%g), want %g", completion, ok ? text : "(none)", v, want);
}
static void extract_none(const char *completion) {
    double v;
    CHECK(!bl_gsm8k_extract(completion, &v, NULL, 0), "extract(\"%s\") found %g, want none", completion, v);
}

int main(void) {
    double v;
    CHECK(bl_gsm8k_parse_number("1,234.50", 8, &v) && v == 1234.5, "1,234.50 -> %g", v);
    CHECK(bl_gsm8k_parse_number("-$5", 3, &v) && v == -5, "-$5 -> %g", v);
    CHECK(bl_gsm8k_parse_number("3/4", 3, &v) && v == 0.75, "3/4 -> %g", v);
    CHECK(!bl_gsm8k_parse_number("1/0", 3, &v), "1/0 is not a number");
    CHECK(!bl_gsm8k_parse_number("abc", 3, &v), "abc is not a number");

    extract_is("The answer is: 18", 18);
    extract_is("She makes $18 a day.\nThe answer is: $18.", 18);
    extract_is("The answer is: 1,600", 1600);
    extract_is("The answer is: 1,600.00 dollars", 1600);
    extract_is("The answer is:18.0", 18);
    extract_is("so the loss is 10.\nThe answer is: -10", -10);
    extract_is("The answer is: 3/4", 0.75);
    extract_is("the answer is 42", 42);                       /* case and ':' optional */
    extract_is("First 5 then 7. The answer is: 7. Check: 5+2=7, 99", 7); /* first number after the phrase */
    extract_is("The answer is: 3. Wait.\nThe answer is: 4", 4);          /* the last phrase counts */
    extract_is("5 + 7 = 12 eggs\n#### 12", 12);                /* no phrase: the last number */
    extract_is("It costs $1,250,000 in total", 1250000);
    extract_is("from 10-15 items, 15", 15);
    extract_is("x = .5", 0.5);
    char tok[32];
    CHECK(bl_gsm8k_extract("The answer is: $1,600.", &v, tok, sizeof tok) && !strcmp(tok, "$1,600"), "token '%s'", tok);
    extract_none("I do not know.");
    extract_none("Computing 3 + 4.\nThe answer is: unknown"); /* phrase without a number: no answer */
    CHECK(bl_gsm8k_equal(18.0, 18) && !bl_gsm8k_equal(18.5, 18) && !bl_gsm8k_equal(NAN, 18), "numeric equality");

    CHECK_OK(bl_gsm8k_reference("2 + 2 = 4\n#### 4", &v)); CHECK(v == 4, "ref %g", v);
    CHECK_OK(bl_gsm8k_reference("#### 1,450,000", &v)); CHECK(v == 1450000, "ref %g", v);
    CHECK_FAILS(bl_gsm8k_reference("the answer is 4", &v), BALORA_STATUS_FORMAT, "####");
    CHECK_FAILS(bl_gsm8k_reference("#### none", &v), BALORA_STATUS_FORMAT, "no number");

    /* The real test set. */
    const char *shared = t_require_shared();
    char path[1024], cpath[1024];
    snprintf(path, sizeof path, "%s/data/gsm8k/test.jsonl", shared);
    bl_bench_set s;
    CHECK_OK(bl_bench_load(BL_BENCH_GSM8K, path, &s));
    CHECK(s.n == 1319, "GSM8K test has %lld problems, want 1319", (long long)s.n);
    /* Five kinds of correct completions, rotating over the problems, and two wrong ones each. */
    snprintf(cpath, sizeof cpath, "%s/completions.jsonl", t_tmpdir());
    FILE *f = fopen(cpath, "w");
    for (int64_t i = 0; i < s.n; i++) {
        const char *ref = strstr(s.p[i].reference, "####") + 4;
        while (*ref == ' ') ref++;
        double r = s.p[i].ref_value;
        char comp[512];
        switch (i % 5) {
        case 0: snprintf(comp, sizeof comp, "Some reasoning with 123 numbers.\\nThe answer is: %s", ref); break;
        case 1: snprintf(comp, sizeof comp, "The answer is: %.1f", r); break;                   /* "18.0" */
        case 2: snprintf(comp, sizeof comp, "The answer is: %s$%.0f.", r < 0 ? "-" : "", fabs(r)); break;
        case 3: snprintf(comp, sizeof comp, "Thus 1 + 1 = 2 and the total is\\n#### %s", ref); break; /* last number */
        default: snprintf(comp, sizeof comp, "the answer is %.0f", r); break;
        }
        fprintf(f, "{\"index\": %lld, \"completion\": \"%s\"}\n", (long long)i, comp);
    }
    fclose(f);
    bl_completions c;
    bl_eval_report rep;
    bl_eval_opts o;
    bl_eval_opts_default(&o);
    CHECK_OK(bl_completions_load(cpath, &s, &c));
    CHECK(c.n == s.n, "completions %lld", (long long)c.n);
    CHECK_OK(bl_eval_score(&s, &c, &o, &rep));
    CHECK(rep.n_problems == 1319 && rep.accuracy == 1.0 && rep.n_correct_samples == 1319, "references graded %.4f (%lld correct)",
          rep.accuracy, (long long)rep.n_correct_samples);
    for (int64_t i = 0; i < rep.n_problems && i < 2000; i++)
        if (!rep.out[i].correct) { CHECK(0, "problem %lld: answer '%s' vs ref %g", (long long)i, rep.out[i].answer, s.p[i].ref_value); break; }
    bl_eval_report_free(&rep);
    bl_completions_free(&c);

    f = fopen(cpath, "w");
    for (int64_t i = 0; i < s.n; i++) {
        double r = s.p[i].ref_value;
        if (i % 2) fprintf(f, "{\"index\": %lld, \"completion\": \"The answer is: %.0f\"}\n", (long long)i, r + 1);
        else fprintf(f, "{\"index\": %lld, \"completion\": \"It is %.0f.\\nThe answer is: %.0f\"}\n", (long long)i, r, r - 1);
    }
    fclose(f);
    CHECK_OK(bl_completions_load(cpath, &s, &c));
    o.limit = 100;
    CHECK_OK(bl_eval_score(&s, &c, &o, &rep));
    CHECK(rep.n_problems == 100 && rep.accuracy == 0.0 && rep.ci_lo == 0.0 && rep.ci_hi > 0.03 && rep.ci_hi < 0.04,
          "wrong answers graded %.4f over %lld, CI [%g, %g]", rep.accuracy, (long long)rep.n_problems, rep.ci_lo, rep.ci_hi);
    cJSON *j;
    CHECK_OK(bl_eval_report_json(&rep, &s, &j));
    const cJSON *acc = cJSON_GetObjectItem(j, "accuracy"), *probs = cJSON_GetObjectItem(j, "problems");
    CHECK(cJSON_IsNumber(acc) && acc->valuedouble == 0 && cJSON_GetArraySize(probs) == 100, "report JSON");
    cJSON_Delete(j);
    bl_eval_report_free(&rep);
    bl_completions_free(&c);

    /* Missing problems count as wrong; bad completion files are refused with the line. */
    f = fopen(cpath, "w");
    fprintf(f, "{\"index\": 0, \"completion\": \"The answer is: 18\"}\n\n{\"index\": 0, \"completion\": \"The answer is: 17\"}\n");
    fclose(f);
    CHECK_OK(bl_completions_load(cpath, &s, &c));
    o.limit = 4;
    CHECK_OK(bl_eval_score(&s, &c, &o, &rep));
    CHECK(rep.n_missing == 3 && fabs(rep.accuracy - 0.125) < 1e-12 && rep.out[0].n_samples == 2 && rep.out[0].correct,
          "missing: %lld, accuracy %g", (long long)rep.n_missing, rep.accuracy);
    bl_eval_report_free(&rep);
    bl_completions_free(&c);
    const char *bad[] = {"{\"index\": 5000, \"completion\": \"x\"}\n", "{\"index\": 1}\n", "{\"completion\": \"x\"}\n", "[1]\n", "{\"index\": 1, \"completion\": \"x\"\n"};
    /* "[1]": a file starting with '[' is read as one JSON array of records (issue 15): its record 1 is no object */
    const char *why[] = {"outside the data set", "'completion'", "needs 'index'", "record 1 of the JSON array is not an object", "invalid JSON"};
    for (int k = 0; k < 5; k++) {
        f = fopen(cpath, "w"); fputs(bad[k], f); fclose(f);
        CHECK_FAILS(bl_completions_load(cpath, &s, &c), BALORA_STATUS_FORMAT, why[k]);
    }
    bl_bench_set_free(&s);
    f = fopen(cpath, "w"); fputs("{\"question\": \"q\", \"answer\": \"no marker\"}\n", f); fclose(f);
    CHECK_FAILS(bl_bench_load(BL_BENCH_GSM8K, cpath, &s), BALORA_STATUS_FORMAT, "line 1");
    CHECK_FAILS(bl_bench_load(BL_BENCH_GSM8K, "/nonexistent.jsonl", &s), BALORA_STATUS_IO, "cannot open");
    return t_finish();
}
