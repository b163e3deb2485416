/* MATH grading: boxed-answer extraction (balanced braces, \fbox, "\boxed X"), "The answer is:"
 * extraction, and strip_string / is_equiv cases worked out by hand from the reference grader's
 * steps; a MATH-format JSONL scored 100% from its own solutions and 0% from wrong answers. */
#include "harness.h"
#include "eval/bench.h"
#include "eval/mathgrade.h"
#include <stdlib.h>
#include <string.h>

static void boxed_is(const char *s, const char *want) {
    char *got = bl_math_last_boxed(s);
    CHECK(want ? got && !strcmp(got, want) : !got, "last_boxed(%s) = %s, want %s", s, got ? got : "NULL", want ? want : "NULL");
    free(got);
}
static void extract_is(const char *s, const char *want) {
    char *got = bl_math_extract(s);
    CHECK(want ? got && !strcmp(got, want) : !got, "extract(%s) = %s, want %s", s, got ? got : "NULL", want ? want : "NULL");
    free(got);
}
static void strip_is(const char *s, const char *want) {
    bool raised;
    char *got = bl_math_strip(s, &raised);
    CHECK(!raised && got && !strcmp(got, want), "strip(%s) = %s, want %s", s, got ? got : "NULL", want);
    free(got);
}
static void equiv(const char *a, const char *b, bool want) {
    CHECK(bl_math_equiv(a, b) == want, "is_equiv(%s, %s) should be %s", a, b, want ? "true" : "false");
}

int main(void) {
    boxed_is("So \\boxed{\\frac{1}{2}} and finally $\\boxed{\\frac{\\sqrt{3}}{2}}$.", "\\frac{\\sqrt{3}}{2}");
    boxed_is("the area is \\fbox{5}", "5");
    boxed_is("$\\boxed 5$ units", "5");
    boxed_is("\\boxed{5", NULL);
    boxed_is("no box here", NULL);
    boxed_is("\\boxed{\\{1,2\\}}", "\\{1,2\\}");

    extract_is("so $x = \\boxed{7}$.\nThe answer is: 7", "7");
    extract_is("The answer is: \\frac{1}{2}.\nAnything after", "\\frac{1}{2}");
    extract_is("We get \\boxed{3}.", "3");
    extract_is("The answer is: 5. Then again \\boxed{6}", "6");     /* whichever comes last */
    extract_is("The answer is: \\boxed{12}", "12");
    extract_is("The answer is:  -3 ", "-3");
    extract_is("no final answer", NULL);

    /* strip_string step by step */
    strip_is("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})");
    strip_is("\\dfrac12", "\\frac{1}{2}");
    strip_is("\\frac1{72}", "\\frac{1}{72}");
    strip_is("\\frac{a}b", "\\frac{a}b");                  /* a braced first argument is left alone */
    strip_is("\\sqrt3+\\sqrt{5}", "\\sqrt{3}+\\sqrt{5}");
    strip_is("10\\text{ inches}", "10");
    strip_is("x = 5", "5");
    strip_is("xyz = 5", "xyz=5");                          /* lhs longer than 2 characters stays */
    strip_is("a = b = c", "a=b=c");                        /* two '=': unchanged */
    strip_is(".5", "\\frac{1}{2}");
    strip_is("{.5}", "{0.5}");
    strip_is("3/4", "\\frac{3}{4}");
    strip_is("-1/2", "\\frac{-1}{2}");
    strip_is("01/2", "01/2");                              /* not canonical integers */
    strip_is("1/2/3", "1/2/3");
    strip_is("50\\%", "50");
    strip_is("90^\\circ", "90");
    strip_is("90^{\\circ}", "90");
    strip_is("\\$18.90", "18.90");
    strip_is("\\!1,\\!000", "1,000");
    strip_is("\\frac1", "\\frac1");                        /* too short: the reference returns it unchanged */
    strip_is("", "");
    bool raised;
    char *r = bl_math_strip("\\frac", &raised);
    CHECK(raised && !r, "empty \\frac argument raises in the reference");
    free(r);
    r = bl_math_strip("1\\text{ m}\\text{ s}", &raised);
    CHECK(raised && !r, "two unit texts raise in the reference");
    free(r);

    equiv("\\frac{1}{2}", "1/2", true);
    equiv("0.5", "\\frac{1}{2}", true);
    equiv(".5", "\\frac12", true);
    equiv("\\dfrac{3}{4}", "\\frac34", true);
    equiv("\\tfrac{3}{4}", "3/4", true);
    equiv("10\\text{ inches}", "10", true);
    equiv("k = 5", "5", true);
    equiv("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", true);
    equiv("\\sqrt3", "\\sqrt{3}", true);
    equiv("50\\%", "50", true);
    equiv("\\frac{1}{2}", "\\frac{1}{3}", false);
    equiv("1/3", "0.333", false);
    equiv("2", "3", false);
    equiv("\\frac", "\\frac", true);                       /* raises: raw comparison */
    equiv("\\frac", "\\frac ", false);
    equiv(NULL, NULL, true);
    equiv("1", NULL, false);

    /* A MATH-format file (problem/solution; one with an "answer" field) scored from completions. */
    const char *dir = t_tmpdir();
    char data[600], comp[600];
    snprintf(data, sizeof data, "%s/math.jsonl", dir);
    snprintf(comp, sizeof comp, "%s/comp.jsonl", dir);
    FILE *f = fopen(data, "w");
    fputs("{\"problem\": \"What is 1/2 + 1/4?\", \"solution\": \"We add: $\\\\frac{1}{2}+\\\\frac{1}{4} = \\\\boxed{\\\\frac{3}{4}}$.\", \"level\": \"Level 1\"}\n"
          "{\"problem\": \"Solve x+1=3.\", \"solution\": \"So $x = \\\\boxed{2}$.\"}\n"
          "{\"problem\": \"Point?\", \"solution\": \"It is $\\\\boxed{\\\\left( 3, \\\\frac{\\\\pi}{2} \\\\right)}$.\"}\n"
          "{\"problem\": \"Angle?\", \"solution\": \"long text\", \"answer\": \"90^\\\\circ\"}\n", f);
    fclose(f);
    bl_bench_set s;
    CHECK_OK(bl_bench_load(BL_BENCH_MATH, data, &s));
    CHECK(s.n == 4 && !strcmp(s.p[0].reference, "\\frac{3}{4}") && !strcmp(s.p[3].reference, "90^\\circ"), "MATH references");
    f = fopen(comp, "w");
    fputs("{\"index\": 0, \"completion\": \"1/2 + 1/4 = 3/4.\\nThe answer is: 3/4\"}\n"
          "{\"index\": 1, \"completion\": \"Subtract 1: $\\\\boxed{x=2}$\"}\n"
          "{\"index\": 2, \"completion\": \"The answer is: (3,\\\\frac{\\\\pi}{2})\"}\n"
          "{\"index\": 3, \"completion\": \"The answer is: 90\"}\n", f);
    fclose(f);
    bl_completions c;
    bl_eval_report rep;
    CHECK_OK(bl_completions_load(comp, &s, &c));
    CHECK_OK(bl_eval_score(&s, &c, NULL, &rep));
    CHECK(rep.accuracy == 1.0, "MATH references graded %g", rep.accuracy);
    bl_eval_report_free(&rep);
    bl_completions_free(&c);
    f = fopen(comp, "w");
    fputs("{\"index\": 0, \"completion\": \"The answer is: 2/3\"}\n"
          "{\"index\": 1, \"completion\": \"$\\\\boxed{3}$\"}\n"
          "{\"index\": 2, \"completion\": \"The answer is: (3,\\\\pi)\"}\n"
          "{\"index\": 3, \"completion\": \"I cannot tell\"}\n", f);
    fclose(f);
    CHECK_OK(bl_completions_load(comp, &s, &c));
    CHECK_OK(bl_eval_score(&s, &c, NULL, &rep));
    CHECK(rep.accuracy == 0.0 && !strcmp(rep.out[3].answer, ""), "wrong MATH answers graded %g", rep.accuracy);
    bl_eval_report_free(&rep);
    bl_completions_free(&c);
    bl_bench_set_free(&s);
    f = fopen(data, "w");
    fputs("{\"problem\": \"p\", \"solution\": \"no box\"}\n", f);
    fclose(f);
    CHECK_FAILS(bl_bench_load(BL_BENCH_MATH, data, &s), BALORA_STATUS_FORMAT, "boxed");
    return t_finish();
}
