/* The GLUE table (src/data_glue/tasks.h): every task is found back by its name, its classes,
 * label names, columns and metrics agree with what the loader, the label reader and the metrics
 * use; and no .c file under src/ or cli/ but src/data_glue/tasks.c spells a GLUE task name or a
 * task's own column as a string literal (the scan reads BALORA_SOURCE_DIR and proves itself). */
#include "harness.h"
#include "data_glue/tasks.h"
#include "eval/glue.h"
#include <stdlib.h>
#include <string.h>

static void test_rows(void) {
    int n_adv = 0;
    for (int t = 0; t < BL_GLUE_TASK_COUNT; t++) {
        const char *name = bl_glue_task_name((bl_glue_task)t);
        bl_glue_task got = BL_GLUE_TASK_COUNT;
        CHECK_OK(bl_glue_task_parse(name, &got));
        CHECK(got == (bl_glue_task)t, "task %s parses back to %d, got %d", name, t, (int)got);
        const bl_glue_task_info *ti = bl_glue_task_get((bl_glue_task)t);
        if (t == BL_GLUE_TASK_GENERIC) {
            CHECK(!ti && bl_glue_task_classes(BL_GLUE_TASK_GENERIC) == 0 && bl_glue_task_metrics(BL_GLUE_TASK_GENERIC) == BL_METRIC_ACCURACY,
                  "generic: no GLUE row, classes from the data, accuracy");
            continue;
        }
        CHECK(ti && !strcmp(ti->name, name), "task %d has a row named %s", t, name);
        if (!ti) continue;
        n_adv += ti->adv_a != NULL;
        CHECK(bl_glue_task_classes((bl_glue_task)t) == ti->n_labels && ti->n_labels >= 1 && ti->n_labels <= 3, "%s: %d classes", name, ti->n_labels);
        CHECK(bl_glue_task_metrics((bl_glue_task)t) == ti->metrics && ti->metrics, "%s: metrics 0x%x", name, ti->metrics);
        CHECK(ti->regression == (ti->n_labels == 1) && ti->col_a && ti->col_label && (ti->pair == (ti->col_b != NULL)),
              "%s: regression, columns and pairs agree", name);
        for (int c = 0; c < ti->n_labels && !ti->regression; c++) {
            double v = -1;
            CHECK(ti->labels[c] && bl_glue_label_value((bl_glue_task)t, ti->labels[c], &v) == BALORA_STATUS_OK && v == c,
                  "%s: label name %d '%s' reads back as %g", name, c, ti->labels[c] ? ti->labels[c] : "(null)", v);
        }
    }
    CHECK(n_adv == 6, "6 tasks of Adversarial GLUE, got %d", n_adv);
    char all[256], adv[160];
    bl_glue_task_list(1, all, sizeof all);
    bl_glue_task_list(2, adv, sizeof adv);
    CHECK(!strcmp(all, "cola, sst2, mrpc, qqp, stsb, mnli, mnli-mm, qnli, rte, wnli, generic"), "task list '%s'", all);
    CHECK(!strcmp(adv, "sst2, qqp, mnli, mnli-mm, qnli, rte"), "Adversarial GLUE list '%s'", adv);
    bl_glue_task t;
    CHECK(bl_glue_task_parse("MNLI_mismatched", &t) == BALORA_STATUS_OK && t == BL_GLUE_TASK_MNLI_MM, "alias, any case");
    CHECK_FAILS(bl_glue_task_parse("squad", &t), BALORA_STATUS_INVALID, "one of cola, sst2");
    CHECK(!bl_glue_task_get(BL_GLUE_TASK_COUNT) && !strcmp(bl_glue_task_name(BL_GLUE_TASK_COUNT), "?"), "out of range");
}

/* ------------------------------------------------------------------ the scan */
static char g_needles[64][64];
static int g_n, g_scanned, g_table_hits;

static void add(const char *s) {
    /* words too common to be GLUE knowledge (the generic loader, the heads, the benchmarks use them) */
    if (!s || !strcmp(s, "label") || !strcmp(s, "text") || !strcmp(s, "sentence") || !strcmp(s, "score") ||
        !strcmp(s, "question") || !strcmp(s, "0") || !strcmp(s, "1")) return;
    char q[64];
    snprintf(q, sizeof q, "\"%s\"", s);
    for (int i = 0; i < g_n; i++) if (!strcmp(g_needles[i], q)) return;
    if (g_n < 64) snprintf(g_needles[g_n++], sizeof q, "%s", q);
}

static void scan_file(const char *full, const char *rel) {
    char *text = NULL;
    size_t len = 0;
    if (bl_file_read(full, &text, &len)) { CHECK(false, "cannot read %s: %s", full, balora_last_error()); return; }
    g_scanned++;
    bool table = !strcmp(rel, "src/data_glue/tasks.c");
    for (int i = 0; i < g_n; i++) {
        const char *hit = strstr(text, g_needles[i]);
        if (!hit) continue;
        if (table) { g_table_hits++; continue; }
        int line = 1;
        for (const char *p = text; p < hit; p++) line += *p == '\n';
        CHECK(false, "%s:%d spells %s, which only the GLUE table (src/data_glue/tasks.c) may; hint: bl_glue_task_get, "
              "bl_glue_task_name, bl_glue_task_list", rel, line, g_needles[i]);
    }
    free(text);
}

static void test_scan(void) {
    for (int t = 0; t < BL_GLUE_TASK_COUNT; t++) {
        const bl_glue_task_info *ti = bl_glue_task_get((bl_glue_task)t);
        if (!ti) continue;
        add(ti->name);
        add(ti->col_a); add(ti->col_b); add(ti->col_label); add(ti->adv_a); add(ti->adv_b);
        for (int c = 0; c < 3; c++) add(ti->labels[c]);
    }
    CHECK(g_n >= 20, "%d needles", g_n);
    t_scan_sources("src", false, scan_file);
    t_scan_sources("cli", false, scan_file);
    CHECK(g_scanned >= 50, "scanned only %d .c files under %s", g_scanned, t_source_dir());
    CHECK(g_table_hits == g_n, "the scan found %d of %d needles in src/data_glue/tasks.c: the scanner is broken", g_table_hits, g_n);
}

int main(void) {
    test_rows();
    test_scan();
    return t_finish();
}
