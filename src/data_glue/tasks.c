/* The GLUE table (tasks.h). */
#include "data_glue/tasks.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define M_ACC BL_METRIC_ACCURACY

static const bl_glue_task_info TASKS[BL_GLUE_TASK_COUNT] = {
    [BL_GLUE_TASK_COLA] = {"cola", false, false, 2, {"0", "1"}, "sentence", NULL, "label", 3, 1, NULL, NULL, BL_METRIC_MCC},
    [BL_GLUE_TASK_SST2] = {"sst2", false, false, 2, {"0", "1"}, "sentence", NULL, "label", -1, -1, "sentence", NULL, M_ACC},
    [BL_GLUE_TASK_MRPC] = {"mrpc", true, false, 2, {"0", "1"}, "#1 String", "#2 String", "Quality", -1, -1, NULL, NULL,
                           BL_METRIC_F1 | M_ACC},
    [BL_GLUE_TASK_QQP] = {"qqp", true, false, 2, {"0", "1"}, "question1", "question2", "is_duplicate", -1, -1, "question1",
                          "question2", BL_METRIC_F1 | M_ACC},
    [BL_GLUE_TASK_STSB] = {"stsb", true, true, 1, {NULL}, "sentence1", "sentence2", "score", -1, -1, NULL, NULL,
                           BL_METRIC_PEARSON | BL_METRIC_SPEARMAN},
    [BL_GLUE_TASK_MNLI] = {"mnli", true, false, 3, {"entailment", "neutral", "contradiction"}, "sentence1", "sentence2",
                           "gold_label", -1, -1, "premise", "hypothesis", M_ACC},
    [BL_GLUE_TASK_MNLI_MM] = {"mnli-mm", true, false, 3, {"entailment", "neutral", "contradiction"}, "sentence1", "sentence2",
                              "gold_label", -1, -1, "premise", "hypothesis", M_ACC},
    [BL_GLUE_TASK_QNLI] = {"qnli", true, false, 2, {"entailment", "not_entailment"}, "question", "sentence", "label", -1, -1,
                           "question", "sentence", M_ACC},
    [BL_GLUE_TASK_RTE] = {"rte", true, false, 2, {"entailment", "not_entailment"}, "sentence1", "sentence2", "label", -1, -1,
                          "sentence1", "sentence2", M_ACC},
    [BL_GLUE_TASK_WNLI] = {"wnli", true, false, 2, {"0", "1"}, "sentence1", "sentence2", "label", -1, -1, NULL, NULL, M_ACC},
    /* generic CSV / TSV / JSONL: columns from the caller (bl_data_spec), classes from the data */
    [BL_GLUE_TASK_GENERIC] = {"generic", false, false, 0, {NULL}, "text", NULL, "label", -1, -1, NULL, NULL, M_ACC},
};

static const struct { const char *alias; bl_glue_task t; } ALIASES[] = {
    {"sst-2", BL_GLUE_TASK_SST2}, {"sts-b", BL_GLUE_TASK_STSB}, {"mnli-m", BL_GLUE_TASK_MNLI},
    {"mnli_matched", BL_GLUE_TASK_MNLI}, {"mnli-matched", BL_GLUE_TASK_MNLI}, {"mnli_mismatched", BL_GLUE_TASK_MNLI_MM},
    {"mnli-mismatched", BL_GLUE_TASK_MNLI_MM}, {"mnli_mm", BL_GLUE_TASK_MNLI_MM},
};

const bl_glue_task_info *bl_glue_task_get(bl_glue_task t) {
    return ((unsigned)t < BL_GLUE_TASK_COUNT && t != BL_GLUE_TASK_GENERIC) ? &TASKS[t] : NULL;
}

balora_status bl_glue_task_parse(const char *name, bl_glue_task *out) {
    if (!name) return bl_fail(BALORA_STATUS_INVALID, "GLUE task name missing");
    for (int i = 0; i < BL_GLUE_TASK_COUNT; i++)
        if (!strcasecmp(name, TASKS[i].name)) { *out = (bl_glue_task)i; return BALORA_STATUS_OK; }
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (!strcasecmp(name, ALIASES[i].alias)) { *out = ALIASES[i].t; return BALORA_STATUS_OK; }
    char list[256];
    return bl_fail(BALORA_STATUS_INVALID, "unknown GLUE task '%s'; hint: one of %s", name, bl_glue_task_list(1, list, sizeof list));
}

const char *bl_glue_task_name(bl_glue_task t) { return (unsigned)t < BL_GLUE_TASK_COUNT ? TASKS[t].name : "?"; }
int32_t bl_glue_task_classes(bl_glue_task t) { return (unsigned)t < BL_GLUE_TASK_COUNT ? TASKS[t].n_labels : 0; }
unsigned bl_glue_task_metrics(bl_glue_task t) { return (unsigned)t < BL_GLUE_TASK_COUNT ? TASKS[t].metrics : 0; }

const char *bl_glue_task_list(int which, char *buf, size_t cap) {
    size_t o = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < BL_GLUE_TASK_COUNT; i++) {
        if ((i == BL_GLUE_TASK_GENERIC && which != 1) || (which == 2 && !TASKS[i].adv_a)) continue;
        int k = snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", TASKS[i].name);
        if (k < 0 || (size_t)k >= cap - o) break;
        o += (size_t)k;
    }
    return buf;
}
