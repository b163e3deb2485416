/* Benchmark data (GSM8K, MATH, HumanEval, MBPP): the first byte picks the benchmark; part 0 of the
 * rest is the data file, part 1 (optional) a completions file (FZ_SEP framing). Loaded problems get
 * their programs built (code) and, for GSM8K and MATH, the completions graded (bl_eval_score, which
 * runs no code for them). The code benchmarks' sandbox is never run here. */
#include "fuzz_util.h"
#include "eval/bench.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bl_bench bench = (bl_bench)(data[0] % BL_BENCH_COUNT);
    fz_part p[2];
    size_t n = fz_split(data + 1, size - 1, p, 2);
    fz_clear();
    bl_bench_set s;
    if (fz_check(bl_bench_load(bench, fz_write("data.jsonl", p[0].d, p[0].n), &s))) return 0;
    for (int64_t i = 0; i < s.n; i++) {
        bl_bench_find(&s, s.p[i].id);
        if (bl_bench_is_code(bench)) free(bl_bench_program(&s, i, "    return 1\n"));
    }
    bl_completions c;
    if (n > 1 && !fz_check(bl_completions_load(fz_write("completions.jsonl", p[1].d, p[1].n), &s, &c))) {
        if (!bl_bench_is_code(bench)) {
            bl_eval_opts o;
            bl_eval_opts_default(&o);
            bl_eval_report r;
            if (!fz_check(bl_eval_score(&s, &c, &o, &r))) {
                cJSON *j;
                if (!bl_eval_report_json(&r, &s, &j)) cJSON_Delete(j);
                bl_eval_report_free(&r);
            }
        }
        bl_completions_free(&c);
    }
    bl_bench_set_free(&s);
    return 0;
}
