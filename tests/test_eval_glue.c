/* GLUE label and prediction files: each task's column layout, label words, GLUE's submission
 * format, Adversarial GLUE's JSON, JSON lines, and clear errors; the real files in ../shared load
 * with their known sizes and score 1 against themselves. */
#include "harness.h"
#include "eval/glue.h"
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

int main(void) {
    double *v; int64_t n;
    /* CoLA: no header, label in column 2 */
    const char *cola = write_file("cola.tsv", "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n");
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_COLA, cola, NULL, &v, &n));
    CHECK(n == 2 && v[0] == 1 && v[1] == 0, "CoLA labels"); free(v);
    /* column numbers count from 0, as train's --label-col: CoLA's default is column 1 */
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_COLA, cola, "1", &v, &n));
    CHECK(n == 2 && v[0] == 1 && v[1] == 0, "CoLA labels by 0-based column 1"); free(v);
    const char *gen = write_file("gen.tsv", "2\tfirst\t0\n2\tsecond\t1\n");
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_GENERIC, gen, "2", &v, &n));
    CHECK(n == 2 && v[0] == 0 && v[1] == 1, "generic labels by 0-based column 2 (not column 1's text, not column 0's 2s)"); free(v);
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_GENERIC, gen, "0", &v, &n));
    CHECK(n == 2 && v[0] == 2 && v[1] == 2, "column 0 is the first"); free(v);
    CHECK_FAILS(bl_glue_read_labels(BL_GLUE_TASK_GENERIC, gen, "-1", &v, &n), BALORA_STATUS_INVALID, "0-based");
    CHECK_FAILS(bl_glue_read_labels(BL_GLUE_TASK_GENERIC, gen, "3", &v, &n), BALORA_STATUS_FORMAT, "column 3 (0-based)");
    /* MNLI: gold_label words */
    const char *mnli = write_file("mnli.tsv", "index\tsentence1\tsentence2\tgold_label\n0\ta\tb\tneutral\n1\tc\td\tcontradiction\n2\te\tf\tentailment\n");
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_MNLI, mnli, NULL, &v, &n));
    CHECK(n == 3 && v[0] == 1 && v[1] == 2 && v[2] == 0, "MNLI label words"); free(v);
    CHECK_FAILS(bl_glue_read_labels(BL_GLUE_TASK_RTE, mnli, NULL, &v, &n), BALORA_STATUS_FORMAT, "no column 'label'");
    CHECK_FAILS(bl_glue_read_labels(BL_GLUE_TASK_RTE, mnli, "gold_label", &v, &n), BALORA_STATUS_FORMAT, "line 2");
    /* MRPC "Quality" column */
    const char *mrpc = write_file("mrpc.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n0\t3\t4\tc\td\n");
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_MRPC, mrpc, NULL, &v, &n));
    CHECK(n == 2 && v[0] == 1 && v[1] == 0, "MRPC labels"); free(v);
    /* short line */
    const char *bad = write_file("bad.tsv", "sentence\tlabel\nonly one column\n");
    CHECK_FAILS(bl_glue_read_labels(BL_GLUE_TASK_SST2, bad, NULL, &v, &n), BALORA_STATUS_FORMAT, "columns");
    /* predictions: plain and submission format */
    const char *p1 = write_file("p1.txt", "1\n0\n\n2\n");
    CHECK_OK(bl_glue_read_predictions(BL_GLUE_TASK_MNLI, p1, &v, &n));
    CHECK(n == 3 && v[2] == 2, "plain predictions"); free(v);
    const char *p2 = write_file("p2.tsv", "index\tprediction\n0\tnot_entailment\n1\tentailment\n");
    CHECK_OK(bl_glue_read_predictions(BL_GLUE_TASK_QNLI, p2, &v, &n));
    CHECK(n == 2 && v[0] == 1 && v[1] == 0, "submission predictions"); free(v);
    const char *p3 = write_file("p3.txt", "maybe\n");
    CHECK_FAILS(bl_glue_read_predictions(BL_GLUE_TASK_SST2, p3, &v, &n), BALORA_STATUS_FORMAT, "not a label of sst2");
    /* JSON lines and JSON */
    const char *jl = write_file("x.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": \"0\"}\n");
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_GENERIC, jl, NULL, &v, &n));
    CHECK(n == 2 && v[0] == 1 && v[1] == 0, "JSONL labels"); free(v);
    const char *js = write_file("x.json", "{\"rte\": [{\"label\": 1}, {\"label\": 0}]}");
    CHECK_OK(bl_glue_read_labels(BL_GLUE_TASK_RTE, js, NULL, &v, &n));
    CHECK(n == 2 && v[0] == 1, "JSON task lists"); free(v);
    CHECK_FAILS(bl_glue_read_labels(BL_GLUE_TASK_SST2, js, NULL, &v, &n), BALORA_STATUS_FORMAT, "under the key 'sst2'");

    /* The real files. */
    const char *shared = t_require_shared();
    struct { bl_glue_task t; const char *file; int64_t n; } real[] = {
        {BL_GLUE_TASK_SST2, "glue/SST-2/dev.tsv", 872}, {BL_GLUE_TASK_STSB, "glue/STS-B/dev.tsv", 1500},
        {BL_GLUE_TASK_QNLI, "glue/QNLI/dev.tsv", 5463}, {BL_GLUE_TASK_SST2, "advglue/dev_ann.json", 148},
        {BL_GLUE_TASK_QQP, "advglue/dev_ann.json", 78}, {BL_GLUE_TASK_MNLI, "advglue/dev_ann.json", 121},
        {BL_GLUE_TASK_MNLI_MM, "advglue/dev_ann.json", 162}, {BL_GLUE_TASK_QNLI, "advglue/dev_ann.json", 148},
        {BL_GLUE_TASK_RTE, "advglue/dev_ann.json", 81},
    };
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/data/%s", shared, real[i].file);
        balora_status st = bl_glue_read_labels(real[i].t, path, NULL, &v, &n);
        CHECK(st == BALORA_STATUS_OK && n == real[i].n, "%s (%s): %lld examples, want %lld: %s", real[i].file, bl_glue_task_name(real[i].t),
              (long long)n, (long long)real[i].n, st ? balora_last_error() : "");
        if (st) continue;
        bl_glue_result r;
        CHECK_OK(bl_glue_score(real[i].t, v, v, n, 0, &r));
        CHECK(r.score > 1 - 1e-12, "%s scored against itself: %g", real[i].file, r.score);
        if (real[i].t == BL_GLUE_TASK_STSB) CHECK(v[0] == 5.0 && v[1] == 4.75, "STS-B scores %g %g", v[0], v[1]);
        free(v);
    }
    return t_finish();
}
