/* Gold labels from GLUE TSV files and predictions from files, for scoring predictions made
 * elsewhere (`balora eval --task seq-cls --predictions F --data GLUE.tsv`).
 *
 * Label column per task (GLUE's own layouts): CoLA column 1 (0-based, no header); SST-2 "label";
 * MRPC "Quality"; QQP "is_duplicate"; STS-B "score"; MNLI "gold_label"; QNLI, RTE, WNLI and
 * generic files "label". Label words map as the GLUE datasets do: entailment 0, not_entailment 1
 * (QNLI, RTE), and entailment 0, neutral 1, contradiction 2 (MNLI).
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
