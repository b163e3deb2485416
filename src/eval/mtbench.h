/* MT-Bench single-answer grading: the judging protocol without the judge model.
 *
 *   questions  JSONL {"question_id", "category", "turns": [q1, q2], "reference": [r1, r2] (optional)}
 *              (FastChat's question.jsonl)
 *   answers    JSONL {"question_id", "turns": [a1, a2]} or FastChat's {"question_id", "choices": [{"turns": [...]}]}
 *   judge prompts: one per question and turn. Turn 1 shows the question and answer; turn 2 the
 *              whole two-turn conversation and asks about the second answer. Categories math,
 *              reasoning and coding also show the reference answer (FastChat's NEED_REF_CATS).
 *              balora's default wording is its own; for scores comparable with published
 *              MT-Bench numbers give FastChat's judge_prompts.jsonl (bl_mt_templates_load), whose
 *              prompt_template placeholders {question}, {answer}, {ref_answer_1}, {question_1},
 *              {answer_1}, {ref_answer_2}, {question_2}, {answer_2} are filled here.
 *   judgments  JSONL {"question_id", "turn", "judgment"}: the judge's text; the score is the first
 *              "[[x]]" in it, else the first "[x]" (as FastChat extracts it); none = unscored.
 * Scores: mean per turn, per category and overall, over scored judgments. */
#ifndef BL_EVAL_MTBENCH_H
#define BL_EVAL_MTBENCH_H
#include "core/bl.h"

typedef struct bl_mt_question {
    char *id, *category;
    char *turns[2], *refs[2];  /* refs may be NULL */
    int n_turns;               /* 1 or 2 */
    char *answers[2];          /* filled by bl_mt_answers_load (NULL until then) */
} bl_mt_question;

typedef struct bl_mt_set { int64_t n; bl_mt_question *q; } bl_mt_set;

balora_status bl_mt_questions_load(const char *path, bl_mt_set *out);
balora_status bl_mt_answers_load(const char *path, bl_mt_set *s);
void bl_mt_set_free(bl_mt_set *s);
int64_t bl_mt_find(const bl_mt_set *s, const char *id);

/* The four prompt kinds. */
typedef enum bl_mt_kind { BL_MT_SINGLE, BL_MT_SINGLE_REF, BL_MT_MULTI, BL_MT_MULTI_REF, BL_MT_KIND_COUNT } bl_mt_kind;
typedef struct bl_mt_templates { char *system[BL_MT_KIND_COUNT], *prompt[BL_MT_KIND_COUNT]; } bl_mt_templates;
/* balora's own default templates. */
balora_status bl_mt_templates_default(bl_mt_templates *t);
/* FastChat-format judge_prompts.jsonl: lines named single-v1, single-math-v1, single-v1-multi-turn,
 * single-math-v1-multi-turn supply the four kinds (system_prompt, prompt_template). */
balora_status bl_mt_templates_load(const char *path, bl_mt_templates *t);
void bl_mt_templates_free(bl_mt_templates *t);
bool bl_mt_needs_ref(const char *category);

/* The judge prompt for question q, turn 1 or 2 (its answers must be loaded). malloc'd into *out. */
balora_status bl_mt_judge_prompt(const bl_mt_templates *t, const bl_mt_question *q, int turn, char **system, char **prompt);
/* The score in a judgment; false when there is none. */
bool bl_mt_extract_score(const char *judgment, double *score);

#define BL_MT_MAX_CATEGORIES 32
typedef struct bl_mt_report {
    int64_t n, n_unscored;                 /* judgments with / without a score */
    double mean;                           /* over scored judgments (NaN if none) */
    int64_t turn_n[2]; double turn_mean[2];
    int n_cats;
    char cats[BL_MT_MAX_CATEGORIES][48];
    int64_t cat_n[BL_MT_MAX_CATEGORIES]; double cat_mean[BL_MT_MAX_CATEGORIES];
} bl_mt_report;
/* Reads judgments ({"question_id", "turn", "judgment"} lines) of questions in s and averages their scores. */
balora_status bl_mt_score_judgments(const bl_mt_set *s, const char *path, bl_mt_report *r);

#endif
