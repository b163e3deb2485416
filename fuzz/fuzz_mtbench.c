/* MT-Bench files: part 0 of the input is question.jsonl, part 1 the answers, part 2 FastChat's
 * judge_prompts.jsonl (empty: balora's default templates), part 3 the judgments (FZ_SEP framing).
 * Every judge prompt of the first questions is built and the judgments scored. */
#include "fuzz_util.h"
#include "eval/mtbench.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_part p[4];
    size_t n = fz_split(data, size, p, 4);
    fz_clear();
    bl_mt_set s;
    if (fz_check(bl_mt_questions_load(fz_write("question.jsonl", p[0].d, p[0].n), &s))) return 0;
    if (n > 1 && !fz_check(bl_mt_answers_load(fz_write("answers.jsonl", p[1].d, p[1].n), &s))) {
        bl_mt_templates t;
        balora_status st = n > 2 && p[2].n ? bl_mt_templates_load(fz_write("judge_prompts.jsonl", p[2].d, p[2].n), &t)
                                           : bl_mt_templates_default(&t);
        if (!fz_check(st)) {
            for (int64_t i = 0; i < s.n && i < 8; i++)
                for (int turn = 1; turn <= s.q[i].n_turns; turn++) {
                    char *sys = NULL, *prompt = NULL;
                    if (!fz_check(bl_mt_judge_prompt(&t, &s.q[i], turn, &sys, &prompt))) { free(sys); free(prompt); }
                }
            bl_mt_templates_free(&t);
        }
    }
    bl_mt_report r;
    if (n > 3) fz_check(bl_mt_score_judgments(&s, fz_write("judgments.jsonl", p[3].d, p[3].n), &r));
    for (int64_t i = 0; i < s.n; i++) bl_mt_find(&s, s.q[i].id);
    bl_mt_set_free(&s);
    return 0;
}
