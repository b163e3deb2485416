/* GLUE metrics against hand-computed values (worked out in the comments), degenerate cases and
 * bad input; the Wilson interval against the textbook value for 8 of 10. */
#include "harness.h"
#include "eval/metrics.h"
#include <math.h>
#include <string.h>

#define NEAR(got, want) CHECK(fabs((got) - (want)) <= 1e-12, "got %.15g want %.15g", (double)(got), (double)(want))

int main(void) {
    /* pred/label: TP = {0,4,6} = 3, FP = {1,7} = 2, FN = {3} = 1, TN = {2,5} = 2.
     * accuracy 5/8; F1 = 2*3/(2*3+2+1) = 2/3; MCC = (3*2 - 2*1)/sqrt(5*4*4*3) = 4/sqrt(240). */
    int32_t p[8] = {1, 1, 0, 0, 1, 0, 1, 1}, t[8] = {1, 0, 0, 1, 1, 0, 1, 0};
    double v;
    CHECK_OK(bl_metric_accuracy(p, t, 8, &v)); NEAR(v, 0.625);
    CHECK_OK(bl_metric_f1(p, t, 8, &v)); NEAR(v, 2.0 / 3.0);
    CHECK_OK(bl_metric_mcc(p, t, 8, 2, &v)); NEAR(v, 4.0 / sqrt(240.0));
    int64_t cm[4];
    CHECK_OK(bl_metric_confusion(p, t, 8, 2, cm));
    /* rows = true class: label 0 at {1,2,5,7} predicted (1,0,0,1) -> TN 2, FP 2;
     * label 1 at {0,3,4,6} predicted (1,0,1,1) -> FN 1, TP 3. */
    CHECK(cm[0] == 2 && cm[1] == 2 && cm[2] == 1 && cm[3] == 3, "confusion [[TN FP] [FN TP]]: %lld %lld %lld %lld",
          (long long)cm[0], (long long)cm[1], (long long)cm[2], (long long)cm[3]);

    /* Degenerate: a constant predictor -> MCC 0 (not NaN); perfect -> 1; inverted -> -1. */
    int32_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, zeros[8] = {0}, inv[8];
    for (int i = 0; i < 8; i++) inv[i] = 1 - t[i];
    CHECK_OK(bl_metric_mcc(ones, t, 8, 2, &v)); CHECK(v == 0.0, "constant predictor MCC %g", v);
    CHECK_OK(bl_metric_mcc(t, zeros, 8, 2, &v)); CHECK(v == 0.0, "constant labels MCC %g", v);
    CHECK_OK(bl_metric_mcc(t, t, 8, 2, &v)); NEAR(v, 1.0);
    CHECK_OK(bl_metric_mcc(inv, t, 8, 2, &v)); NEAR(v, -1.0);
    /* F1: no positive predicted and none true -> 0 (sklearn zero_division=0); all-positive predictor:
     * tp = 4, fp = 4, fn = 0 -> 8/12. */
    CHECK_OK(bl_metric_f1(zeros, zeros, 8, &v)); CHECK(v == 0.0, "F1 with no positives %g", v);
    CHECK_OK(bl_metric_f1(ones, t, 8, &v)); NEAR(v, 8.0 / 12.0);

    /* Multi-class MCC: true {0,1,2,2,1,0}, pred {0,1,1,2,1,2}: correct c = 4, s = 6,
     * t_k = (2,2,2), p_k = (1,3,2): (4*6 - 12) / sqrt((36 - 14)(36 - 12)) = 12/sqrt(528). */
    int32_t t3[6] = {0, 1, 2, 2, 1, 0}, p3[6] = {0, 1, 1, 2, 1, 2};
    CHECK_OK(bl_metric_mcc(p3, t3, 6, 3, &v)); NEAR(v, 12.0 / sqrt(528.0));

    /* Pearson: x = 1..5, y = (2,4,5,4,5): centred sums sxy = 6, sxx = 10, syy = 6 -> 6/sqrt(60).
     * Spearman with ties: ranks(y) = (1, 2.5, 4.5, 2.5, 4.5): sxy = 7, sxx = 10, syy = 9 -> 7/sqrt(90). */
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {2, 4, 5, 4, 5}, r[5]; int64_t idx[5];
    CHECK_OK(bl_metric_pearson(x, y, 5, &v)); NEAR(v, 6.0 / sqrt(60.0));
    CHECK_OK(bl_metric_ranks(y, 5, r, idx));
    CHECK(r[0] == 1 && r[1] == 2.5 && r[2] == 4.5 && r[3] == 2.5 && r[4] == 4.5, "ranks %g %g %g %g %g", r[0], r[1], r[2], r[3], r[4]);
    CHECK_OK(bl_metric_spearman(x, y, 5, &v)); NEAR(v, 7.0 / sqrt(90.0));
    double xr[5] = {5, 4, 3, 2, 1}, c5[5] = {3, 3, 3, 3, 3}, sq[5] = {1, 4, 9, 16, 25};
    CHECK_OK(bl_metric_spearman(x, sq, 5, &v)); NEAR(v, 1.0);   /* monotone, not linear */
    CHECK_OK(bl_metric_pearson(x, xr, 5, &v)); NEAR(v, -1.0);
    CHECK_OK(bl_metric_pearson(x, c5, 5, &v)); CHECK(v == 0.0, "constant Pearson %g", v);
    CHECK_OK(bl_metric_spearman(c5, x, 5, &v)); CHECK(v == 0.0, "constant Spearman %g", v);

    /* Bad input: clear errors, no crash. */
    double nanv[2] = {1, NAN}, two[2] = {1, 2};
    CHECK_FAILS(bl_metric_pearson(nanv, two, 2, &v), BALORA_STATUS_INVALID, "finite");
    CHECK_FAILS(bl_metric_accuracy(p, t, 0, &v), BALORA_STATUS_INVALID, "no examples");
    int32_t bad[2] = {0, 5}, ok2[2] = {0, 1};
    CHECK_FAILS(bl_metric_mcc(bad, ok2, 2, 2, &v), BALORA_STATUS_INVALID, "out of range");
    CHECK_FAILS(bl_metric_confusion(bad, ok2, 2, 2, cm), BALORA_STATUS_INVALID, "out of range");

    /* GLUE tasks: metric choice, per-task score and the average. */
    bl_glue_task task;
    CHECK_OK(bl_glue_task_parse("SST-2", &task)); CHECK(task == BL_GLUE_TASK_SST2, "sst-2 alias");
    CHECK_OK(bl_glue_task_parse("mnli_mismatched", &task)); CHECK(task == BL_GLUE_TASK_MNLI_MM, "mnli-mm alias");
    CHECK_FAILS(bl_glue_task_parse("squad", &task), BALORA_STATUS_INVALID, "unknown GLUE task");
    CHECK(bl_glue_task_metrics(BL_GLUE_TASK_COLA) == BL_METRIC_MCC, "CoLA -> MCC");
    CHECK(bl_glue_task_metrics(BL_GLUE_TASK_MRPC) == (BL_METRIC_F1 | BL_METRIC_ACCURACY), "MRPC -> F1 + acc");
    CHECK(bl_glue_task_metrics(BL_GLUE_TASK_QQP) == (BL_METRIC_F1 | BL_METRIC_ACCURACY), "QQP -> F1 + acc");
    CHECK(bl_glue_task_metrics(BL_GLUE_TASK_STSB) == (BL_METRIC_PEARSON | BL_METRIC_SPEARMAN), "STS-B -> corr");
    CHECK(bl_glue_task_metrics(BL_GLUE_TASK_RTE) == BL_METRIC_ACCURACY, "RTE -> acc");
    double pd[8], td[8];
    for (int i = 0; i < 8; i++) { pd[i] = p[i]; td[i] = t[i]; }
    bl_glue_result res[3];
    CHECK_OK(bl_glue_score(BL_GLUE_TASK_MRPC, pd, td, 8, 0, &res[0]));
    NEAR(res[0].score, 0.5 * (0.625 + 2.0 / 3.0));
    CHECK(res[0].confusion[3] == 3, "TP in confusion");
    CHECK_OK(bl_glue_score(BL_GLUE_TASK_COLA, pd, td, 8, 0, &res[1]));
    NEAR(res[1].score, 4.0 / sqrt(240.0));
    CHECK_OK(bl_glue_score(BL_GLUE_TASK_STSB, x, y, 5, 0, &res[2]));
    NEAR(res[2].score, 0.5 * (6.0 / sqrt(60.0) + 7.0 / sqrt(90.0)));
    CHECK_OK(bl_glue_average(res, 3, &v));
    NEAR(v, (0.5 * (0.625 + 2.0 / 3.0) + 4.0 / sqrt(240.0) + 0.5 * (6.0 / sqrt(60.0) + 7.0 / sqrt(90.0))) / 3.0);
    double frac[2] = {0.5, 1};
    CHECK_FAILS(bl_glue_score(BL_GLUE_TASK_SST2, frac, two, 2, 0, &res[0]), BALORA_STATUS_INVALID, "not a class id");
    double three[3] = {0, 1, 2};
    CHECK_FAILS(bl_glue_score(BL_GLUE_TASK_SST2, three, three, 3, 0, &res[0]), BALORA_STATUS_INVALID, "out of range");
    CHECK_OK(bl_glue_score(BL_GLUE_TASK_MNLI, three, three, 3, 0, &res[0]));
    NEAR(res[0].accuracy, 1.0);

    /* --metrics: another choice of metrics for the score. */
    unsigned mask;
    CHECK_OK(bl_glue_metrics_parse("mcc,Accuracy", &mask));
    CHECK(mask == (BL_METRIC_MCC | BL_METRIC_ACCURACY), "metrics mask %u", mask);
    CHECK_FAILS(bl_glue_metrics_parse("auc", &mask), BALORA_STATUS_INVALID, "unknown metric 'auc'");
    CHECK_OK(bl_glue_score(BL_GLUE_TASK_SST2, pd, td, 8, 0, &res[0]));
    CHECK_OK(bl_glue_set_metrics(&res[0], BL_METRIC_MCC | BL_METRIC_ACCURACY));
    NEAR(res[0].score, 0.5 * (0.625 + 4.0 / sqrt(240.0)));
    CHECK_FAILS(bl_glue_set_metrics(&res[0], BL_METRIC_PEARSON), BALORA_STATUS_INVALID, "not available");
    CHECK_FAILS(bl_glue_set_metrics(&res[2], BL_METRIC_ACCURACY), BALORA_STATUS_INVALID, "pearson and spearman");
    /* a generic 6-class task: 1 + the largest id classes */
    double six_p[6] = {0, 1, 2, 3, 4, 5}, six_t[6] = {0, 1, 2, 3, 4, 4};
    CHECK_OK(bl_glue_score(BL_GLUE_TASK_GENERIC, six_p, six_t, 6, 0, &res[0]));
    CHECK(res[0].n_classes == 6 && res[0].confusion[4 * 6 + 5] == 1, "6 classes");
    NEAR(res[0].accuracy, 5.0 / 6.0);

    /* Wilson 95% interval for 8/10: [0.4902, 0.9433] (textbook); 0/10 and 10/10 stay inside [0,1]. */
    double lo, hi;
    bl_wilson_interval(8, 10, &lo, &hi);
    CHECK(fabs(lo - 0.49016247153664183) < 1e-12 && fabs(hi - 0.9433178485456247) < 1e-12, "wilson 8/10: %g %g", lo, hi);
    bl_wilson_interval(0, 10, &lo, &hi);
    CHECK(lo == 0 && fabs(hi - 0.2775327998628892) < 1e-12, "wilson 0/10: %g %g", lo, hi);
    bl_wilson_interval(10, 10, &lo, &hi);
    CHECK(fabs(lo - 0.7224672001371107) < 1e-12 && hi == 1, "wilson 10/10: %g %g", lo, hi);
    return t_finish();
}
