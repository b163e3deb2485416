/* GLUE metrics: accuracy, F1, Matthews correlation, Pearson and Spearman correlation,
 * confusion matrix, the per-task metric choice and the GLUE average.
 *
 * Conventions (as sklearn / scipy / the GLUE leaderboard compute them):
 *   - labels and predictions of classification tasks are class ids 0..n_classes-1;
 *   - F1 is binary with class 1 the positive class (MRPC "equivalent", QQP "duplicate");
 *     0 when there is no true positive (sklearn's zero_division=0);
 *   - Matthews correlation is the multi-class form (Gorodkin's R_K, as sklearn), 0 when
 *     a denominator is 0 (a constant predictor or a constant label), never NaN;
 *   - Spearman = Pearson of the ranks, ties getting the average of their ranks;
 *     Pearson/Spearman of a constant vector are 0 (scipy returns NaN; a score must be a number);
 *   - all metrics are fractions in [0,1] (or [-1,1]); reports multiply by 100 if they want.
 * Every function fails (INVALID) on n <= 0, NULL inputs, out-of-range class ids or
 * non-finite values; nothing here allocates except bl_metric_spearman's rank buffers. */
#ifndef BL_EVAL_METRICS_H
#define BL_EVAL_METRICS_H
#include "core/bl.h"
#include "data_glue/tasks.h"

balora_status bl_metric_accuracy(const int32_t *pred, const int32_t *label, int64_t n, double *out);
/* Binary F1 of class 1 (any other id counts as negative). */
balora_status bl_metric_f1(const int32_t *pred, const int32_t *label, int64_t n, double *out);
/* Matthews correlation coefficient over n_classes >= 2 classes. */
balora_status bl_metric_mcc(const int32_t *pred, const int32_t *label, int64_t n, int32_t n_classes, double *out);
balora_status bl_metric_pearson(const double *x, const double *y, int64_t n, double *out);
balora_status bl_metric_spearman(const double *x, const double *y, int64_t n, double *out);
/* Average ranks (1-based, ties averaged) of x[0..n) into rank[0..n); idx is scratch [n]. */
balora_status bl_metric_ranks(const double *x, int64_t n, double *rank, int64_t *idx);
/* cm[t * n_classes + p] = number of examples with label t predicted as p. cm: [n_classes, n_classes] */
balora_status bl_metric_confusion(const int32_t *pred, const int32_t *label, int64_t n, int32_t n_classes, int64_t *cm);

/* ---- GLUE tasks: bl_glue_task, its names, classes and metrics come from the GLUE table
 * (src/data_glue/tasks.h) ---- */

#define BL_GLUE_MAX_CLASSES 16
typedef struct bl_glue_result {
    bl_glue_task task;
    int64_t n;
    unsigned metrics;           /* the task's own metrics (bl_glue_task_metrics) */
    double accuracy, f1, mcc;   /* classification tasks (all three computed; f1 only if 2 classes) */
    double pearson, spearman;   /* STS-B */
    double score;               /* the task's GLUE score: mean of its own metrics */
    int32_t n_classes;
    int64_t confusion[BL_GLUE_MAX_CLASSES * BL_GLUE_MAX_CLASSES]; /* [n_classes, n_classes], classification tasks */
} bl_glue_result;

/* Scores one task. Classification: pred/label hold class ids as doubles (checked integral).
 * STS-B: real-valued predictions and gold scores. n_classes: 0 = the task's default
 * (GENERIC: 1 + the largest id seen, at most BL_GLUE_MAX_CLASSES). */
balora_status bl_glue_score(bl_glue_task task, const double *pred, const double *label, int64_t n,
                            int32_t n_classes, bl_glue_result *out);
/* Re-scores with other metrics (a BL_METRIC_* mask, e.g. from --metrics); fails (INVALID) if a
 * metric does not apply to the task (correlations of a classification task, F1 of > 2 classes). */
balora_status bl_glue_set_metrics(bl_glue_result *r, unsigned metrics);
/* "accuracy,f1,mcc,pearson,spearman" (any subset, comma-separated) -> mask. */
balora_status bl_glue_metrics_parse(const char *list, unsigned *mask);

/* The GLUE average: the mean over tasks of each task's score (a task with two metrics counts
 * their mean, as the leaderboard does). */
balora_status bl_glue_average(const bl_glue_result *r, int64_t n_tasks, double *out);

/* ---- binomial confidence interval ---- */
/* Wilson score interval for `correct` successes out of n at 95% (z = 1.959964). n = 0 gives [0,1]. */
void bl_wilson_interval(int64_t correct, int64_t n, double *lo, double *hi);

#endif
