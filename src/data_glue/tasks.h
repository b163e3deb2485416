/* The GLUE table: the one place that knows the GLUE tasks (their names and aliases, single text or
 * pair, classes and label names, the TSV columns, the Adversarial GLUE keys and the metrics the
 * leaderboard reports). The loaders (data_glue/data.c), the label and prediction readers
 * (eval/glue.c), the metrics (eval/metrics.c) and the CLI's help and hints read it.
 *
 * Label ids follow the Hugging Face `glue` datasets (and Adversarial GLUE): CoLA/SST-2/MRPC/QQP/WNLI
 * 0/1 as in the files; MNLI entailment=0, neutral=1, contradiction=2; QNLI/RTE entailment=0,
 * not_entailment=1; STS-B is regression (one output, score 0..5). */
#ifndef BL_DATA_GLUE_TASKS_H
#define BL_DATA_GLUE_TASKS_H
#include "core/bl.h"

typedef enum bl_glue_task {
    BL_GLUE_TASK_COLA, BL_GLUE_TASK_SST2, BL_GLUE_TASK_MRPC, BL_GLUE_TASK_QQP, BL_GLUE_TASK_STSB,
    BL_GLUE_TASK_MNLI, BL_GLUE_TASK_MNLI_MM, BL_GLUE_TASK_QNLI, BL_GLUE_TASK_RTE, BL_GLUE_TASK_WNLI,
    BL_GLUE_TASK_GENERIC, /* any other classification data: accuracy (+ F1 and MCC shown) */
    BL_GLUE_TASK_COUNT
} bl_glue_task;

/* Metrics a task reports (a bit set). */
enum {
    BL_METRIC_ACCURACY = 1u << 0, BL_METRIC_F1 = 1u << 1, BL_METRIC_MCC = 1u << 2,
    BL_METRIC_PEARSON = 1u << 3, BL_METRIC_SPEARMAN = 1u << 4
};

typedef struct bl_glue_task_info {
    const char *name;        /* "cola", "sst2", ..., "mnli", "mnli-mm" (also Adversarial GLUE's key) */
    bool pair;               /* two texts per example */
    bool regression;         /* STS-B */
    int n_labels;            /* classes; 1 for regression; 0 for generic data (from the data) */
    const char *labels[3];   /* label names in id order, as the files spell them */
    /* TSV header names of text_a, text_b, label (the label column is absent in test files). */
    const char *col_a, *col_b, *col_label;
    /* Files without a header (CoLA's train/dev): 0-based columns of text_a and the label; -1: none. */
    int bare_a, bare_label;
    /* Adversarial GLUE keys of text_a, text_b (NULL: the task is not in Adversarial GLUE). */
    const char *adv_a, *adv_b;
    unsigned metrics;        /* BL_METRIC_*: CoLA MCC; MRPC/QQP F1 and accuracy; STS-B Pearson and
                                Spearman; the others accuracy */
} bl_glue_task_info;

/* The row of a GLUE task; NULL for BL_GLUE_TASK_GENERIC (not a GLUE file) and out-of-range ids. */
const bl_glue_task_info *bl_glue_task_get(bl_glue_task t);
/* "cola", "sst2"/"sst-2", "mrpc", "qqp", "stsb"/"sts-b", "mnli"/"mnli-m"/"mnli_matched",
 * "mnli-mm"/"mnli_mismatched", "qnli", "rte", "wnli", "generic"; case-insensitive. */
balora_status bl_glue_task_parse(const char *name, bl_glue_task *out);
/* The task's name ("generic" for BL_GLUE_TASK_GENERIC, "?" out of range). */
const char *bl_glue_task_name(bl_glue_task t);
/* Number of classes (1 for the STS-B regression, 0 for generic data). */
int32_t bl_glue_task_classes(bl_glue_task t);
/* The task's metrics (BL_METRIC_*; generic data: accuracy). */
unsigned bl_glue_task_metrics(bl_glue_task t);
/* Comma-separated task names into buf (for help texts and hints): which 0 = the GLUE tasks,
 * 1 = the GLUE tasks and "generic", 2 = the tasks of Adversarial GLUE. */
const char *bl_glue_task_list(int which, char *buf, size_t cap);

#endif
