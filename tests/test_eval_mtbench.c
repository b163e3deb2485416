/* MT-Bench protocol: rating extraction as FastChat does it ([[x]] first, then [x]), judge prompts
 * for the four kinds (reference answers for math/reasoning/coding, two-turn conversations),
 * FastChat-format template files with their placeholders, and averaging judgments. */
#include "harness.h"
#include "eval/mtbench.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *write_file(const char *name, const char *text) {
    static char path[8][600];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 600, "%s/%s", t_tmpdir(), name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return p;
}

static void score_is(const char *j, double want) {
    double v = NAN;
    bool ok = bl_mt_extract_score(j, &v);
    CHECK(want < 0 ? !ok : ok && v == want, "score(%s) = %s%g, want %g", j, ok ? "" : "none ", v, want);
}

int main(void) {
    score_is("Clear and correct. Rating: [[7]]", 7);
    score_is("Rating: [[8.5]]", 8.5);
    score_is("I would give it [6] overall", 6);              /* the backup pattern */
    score_is("[[x]] hmm, then [9]", 9);
    score_is("Rating: [[3]] but others say [[9]]", 3);       /* the first match */
    score_is("Rating: [[10]]", 10);
    score_is("no rating here", -1);
    score_is("Rating: [[-2]]", -1);                          /* not a rating the patterns accept */

    const char *qf = write_file("q.jsonl",
        "{\"question_id\": 81, \"category\": \"writing\", \"turns\": [\"Write a haiku about rain.\", \"Now one about snow.\"]}\n"
        "{\"question_id\": 111, \"category\": \"math\", \"turns\": [\"What is 2+3?\", \"And times 4?\"], \"reference\": [\"5\", \"20\"]}\n"
        "{\"question_id\": \"x1\", \"category\": \"roleplay\", \"turns\": [\"Say hi.\"]}\n");
    const char *af = write_file("a.jsonl",
        "{\"question_id\": 81, \"turns\": [\"Rain taps the window\", \"Snow hushes the street\"]}\n"
        "{\"question_id\": 111, \"choices\": [{\"index\": 0, \"turns\": [\"2+3 = 5\", \"5*4 = 21\"]}]}\n"
        "{\"question_id\": \"x1\", \"turns\": [\"Hi!\"]}\n");
    bl_mt_set s;
    CHECK_OK(bl_mt_questions_load(qf, &s));
    CHECK(s.n == 3 && s.q[1].refs[1] && !strcmp(s.q[1].refs[1], "20") && s.q[2].n_turns == 1, "questions");
    CHECK_OK(bl_mt_answers_load(af, &s));
    CHECK(!strcmp(s.q[1].answers[1], "5*4 = 21"), "FastChat answer layout");
    bl_mt_templates t;
    CHECK_OK(bl_mt_templates_default(&t));
    char *sys, *p;
    CHECK_OK(bl_mt_judge_prompt(&t, &s.q[0], 1, &sys, &p));
    CHECK(strstr(p, "Write a haiku about rain.") && strstr(p, "Rain taps the window") && strstr(p, "[[rating]]") && !strstr(p, "{answer}"),
          "turn-1 prompt: %s", p);
    CHECK(!strstr(p, "Snow"), "turn-1 prompt shows only turn 1");
    free(sys); free(p);
    CHECK_OK(bl_mt_judge_prompt(&t, &s.q[1], 2, &sys, &p));
    CHECK(strstr(p, "And times 4?") && strstr(p, "5*4 = 21") && strstr(p, "20") && strstr(p, "2+3 = 5") && strstr(p, "Reference"),
          "math turn-2 prompt with references: %s", p);
    free(sys); free(p);
    CHECK_FAILS(bl_mt_judge_prompt(&t, &s.q[2], 2, &sys, &p), BALORA_STATUS_INVALID, "no turn 2");
    bl_mt_templates_free(&t);

    /* A FastChat-format template file: placeholders filled, "{{" / "}}" literal. */
    const char *tf = write_file("judge_prompts.jsonl",
        "{\"name\": \"pair-v2\", \"type\": \"pairwise\", \"system_prompt\": \"x\", \"prompt_template\": \"{question}\"}\n"
        "{\"name\": \"single-v1\", \"type\": \"single\", \"system_prompt\": \"S1\", \"prompt_template\": \"Q={question} A={answer} {{braces}} {unknown}\"}\n"
        "{\"name\": \"single-math-v1\", \"type\": \"single\", \"system_prompt\": \"S2\", \"prompt_template\": \"Q={question} R={ref_answer_1} A={answer}\"}\n"
        "{\"name\": \"single-v1-multi-turn\", \"type\": \"single\", \"system_prompt\": \"S3\", \"prompt_template\": \"{question_1}|{answer_1}|{question_2}|{answer_2}\"}\n"
        "{\"name\": \"single-math-v1-multi-turn\", \"type\": \"single\", \"system_prompt\": \"S4\", \"prompt_template\": \"{ref_answer_1}|{ref_answer_2}|{answer_2}\"}\n");
    CHECK_OK(bl_mt_templates_load(tf, &t));
    CHECK_OK(bl_mt_judge_prompt(&t, &s.q[0], 1, &sys, &p));
    CHECK(!strcmp(sys, "S1") && !strcmp(p, "Q=Write a haiku about rain. A=Rain taps the window {braces} {unknown}"), "filled: %s", p);
    free(sys); free(p);
    CHECK_OK(bl_mt_judge_prompt(&t, &s.q[1], 1, &sys, &p));
    CHECK(!strcmp(sys, "S2") && !strcmp(p, "Q=What is 2+3? R=5 A=2+3 = 5"), "math: %s", p);
    free(sys); free(p);
    CHECK_OK(bl_mt_judge_prompt(&t, &s.q[0], 2, &sys, &p));
    CHECK(!strcmp(p, "Write a haiku about rain.|Rain taps the window|Now one about snow.|Snow hushes the street"), "multi: %s", p);
    free(sys); free(p);
    CHECK_OK(bl_mt_judge_prompt(&t, &s.q[1], 2, &sys, &p));
    CHECK(!strcmp(sys, "S4") && !strcmp(p, "5|20|5*4 = 21"), "math multi: %s", p);
    free(sys); free(p);
    bl_mt_templates_free(&t);
    const char *tf2 = write_file("bad_prompts.jsonl", "{\"name\": \"single-v1\", \"system_prompt\": \"S\", \"prompt_template\": \"T\"}\n");
    CHECK_FAILS(bl_mt_templates_load(tf2, &t), BALORA_STATUS_FORMAT, "single-math-v1");

    /* Judgments: writing t1 8, t2 6; math t1 10, t2 2; roleplay t1 unscored -> mean 6.5,
     * turn 1 = 9, turn 2 = 4, writing 7, math 6. */
    const char *jf = write_file("j.jsonl",
        "{\"question_id\": 81, \"turn\": 1, \"judgment\": \"Nice. Rating: [[8]]\"}\n"
        "{\"question_id\": 81, \"turn\": 2, \"judgment\": \"Rating: [[6]]\"}\n"
        "{\"question_id\": 111, \"turn\": 1, \"judgment\": \"Correct. [[10]]\"}\n"
        "{\"question_id\": 111, \"turn\": 2, \"judgment\": \"Wrong: 20 not 21. Rating: [[2]]\"}\n"
        "{\"question_id\": \"x1\", \"turn\": 1, \"judgment\": \"I cannot rate this.\"}\n");
    bl_mt_report r;
    CHECK_OK(bl_mt_score_judgments(&s, jf, &r));
    CHECK(r.n == 4 && r.n_unscored == 1 && r.mean == 6.5 && r.turn_mean[0] == 9 && r.turn_mean[1] == 4, "judgments: n %lld mean %g t1 %g t2 %g",
          (long long)r.n, r.mean, r.turn_mean[0], r.turn_mean[1]);
    CHECK(r.n_cats == 2 && !strcmp(r.cats[0], "writing") && r.cat_mean[0] == 7 && r.cat_mean[1] == 6, "categories");
    const char *jbad = write_file("jbad.jsonl", "{\"question_id\": 81, \"turn\": 3, \"judgment\": \"[[5]]\"}\n");
    CHECK_FAILS(bl_mt_score_judgments(&s, jbad, &r), BALORA_STATUS_FORMAT, "turn 3");
    bl_mt_set_free(&s);

    const char *qbad = write_file("qbad.jsonl", "{\"question_id\": 1, \"category\": \"math\", \"turns\": [\"q\"]}\n");
    CHECK_OK(bl_mt_questions_load(qbad, &s));
    const char *abad = write_file("abad.jsonl", "{\"question_id\": 1, \"turns\": [\"a\"]}\n");
    CHECK_OK(bl_mt_answers_load(abad, &s));
    CHECK_OK(bl_mt_templates_default(&t));
    CHECK_FAILS(bl_mt_judge_prompt(&t, &s.q[0], 1, &sys, &p), BALORA_STATUS_FORMAT, "needs a reference");
    bl_mt_templates_free(&t);
    bl_mt_set_free(&s);
    return t_finish();
}
