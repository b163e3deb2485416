/* Gold labels from GLUE TSV files and predictions from files, for scoring predictions made
 * elsewhere (`balora eval --task seq-cls --predictions F --data GLUE.tsv`).
 *
 * The label column of each task, its label words (entailment 0, not_entailment 1 for QNLI and RTE,
 * and as a fallback for every other task; entailment 0, neutral 1, contradiction 2 for MNLI) and
 * the tasks' names: the GLUE table (src/data_glue/tasks.h).
 * Predictions: one per line (a number or a label word), or GLUE's submission layout
 * "index<TAB>prediction" with that header; in both the last column is the prediction.
 * JSON label files: Adversarial GLUE's dev_ann.json ({"sst2": [{"label": 1, ...}, ...], ...}: the
 * task's name is the key), a JSON list of objects, or JSON lines; the field is "label" (or column). */
#ifndef BL_EVAL_GLUE_H
#define BL_EVAL_GLUE_H
#include "eval/metrics.h"

/* column: NULL for the task's default (a header name, or a 0-based number for files without a header, as
 * train's --label-col).
 * *labels is malloc'd [*n]. */
balora_status bl_glue_read_labels(bl_glue_task task, const char *path, const char *column, double **labels, int64_t *n);
balora_status bl_glue_read_predictions(bl_glue_task task, const char *path, double **preds, int64_t *n);
/* A label word or number as the task's class id (or score for STS-B). */
balora_status bl_glue_label_value(bl_glue_task task, const char *text, double *out);

#endif
