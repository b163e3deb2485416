/* GLUE metrics (see metrics.h for the conventions). */
#include "eval/metrics.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static balora_status check_cls(const int32_t *pred, const int32_t *label, int64_t n, int32_t n_classes, const char *what) {
    if (!pred || !label) return bl_fail(BALORA_STATUS_INVALID, "%s: predictions or labels missing (NULL)", what);
    if (n <= 0) return bl_fail(BALORA_STATUS_INVALID, "%s: no examples (n = %lld); hint: is the data file empty?", what, (long long)n);
    if (n_classes > 0)
        for (int64_t i = 0; i < n; i++)
            if (pred[i] < 0 || pred[i] >= n_classes || label[i] < 0 || label[i] >= n_classes)
                return bl_fail(BALORA_STATUS_INVALID, "%s: example %lld: class id out of range [0, %d) (prediction %d, label %d)",
                               what, (long long)i, n_classes, pred[i], label[i]);
    return BALORA_STATUS_OK;
}

balora_status bl_metric_accuracy(const int32_t *pred, const int32_t *label, int64_t n, double *out) {
    BL_TRY(check_cls(pred, label, n, 0, "accuracy"));
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) c += pred[i] == label[i];
    *out = (double)c / (double)n;
    return BALORA_STATUS_OK;
}

balora_status bl_metric_f1(const int32_t *pred, const int32_t *label, int64_t n, double *out) {
    BL_TRY(check_cls(pred, label, n, 0, "F1"));
    int64_t tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < n; i++) {
        bool p = pred[i] == 1, t = label[i] == 1;
        tp += p && t; fp += p && !t; fn += !p && t;
    }
    /* F1 = 2 tp / (2 tp + fp + fn); 0 when tp = 0 (including the all-negative case). */
    *out = tp ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
    return BALORA_STATUS_OK;
}

balora_status bl_metric_confusion(const int32_t *pred, const int32_t *label, int64_t n, int32_t n_classes, int64_t *cm) {
    if (n_classes < 1 || !cm) return bl_fail(BALORA_STATUS_INVALID, "confusion matrix: need n_classes >= 1 (got %d) and an output", n_classes);
    BL_TRY(check_cls(pred, label, n, n_classes, "confusion matrix"));
    memset(cm, 0, (size_t)n_classes * (size_t)n_classes * sizeof *cm);
    for (int64_t i = 0; i < n; i++) cm[(int64_t)label[i] * n_classes + pred[i]]++;
    return BALORA_STATUS_OK;
}

balora_status bl_metric_mcc(const int32_t *pred, const int32_t *label, int64_t n, int32_t n_classes, double *out) {
    if (n_classes < 2 || n_classes > 1024) return bl_fail(BALORA_STATUS_INVALID, "MCC: n_classes must be in [2, 1024], got %d", n_classes);
    BL_TRY(check_cls(pred, label, n, n_classes, "MCC"));
    /* R_K = (c s - sum_k p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)), s = n, c = correct,
     * p_k / t_k = how often class k is predicted / true. Counts summed in int64, products in double. */
    int64_t p[1024] = {0}, t[1024] = {0}, c = 0;
    for (int64_t i = 0; i < n; i++) { p[pred[i]]++; t[label[i]]++; c += pred[i] == label[i]; }
    double s = (double)n, pt = 0, pp = 0, tt = 0;
    for (int32_t k = 0; k < n_classes; k++) {
        pt += (double)p[k] * (double)t[k]; pp += (double)p[k] * (double)p[k]; tt += (double)t[k] * (double)t[k];
    }
    double num = (double)c * s - pt, den = (s * s - pp) * (s * s - tt);
    *out = den > 0 ? num / sqrt(den) : 0.0;
    return BALORA_STATUS_OK;
}

static balora_status check_real(const double *x, const double *y, int64_t n, const char *what) {
    if (!x || !y) return bl_fail(BALORA_STATUS_INVALID, "%s: inputs missing (NULL)", what);
    if (n <= 0) return bl_fail(BALORA_STATUS_INVALID, "%s: no examples (n = %lld)", what, (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return bl_fail(BALORA_STATUS_INVALID, "%s: example %lld is not a finite number (%g, %g)", what, (long long)i, x[i], y[i]);
    return BALORA_STATUS_OK;
}

balora_status bl_metric_pearson(const double *x, const double *y, int64_t n, double *out) {
    BL_TRY(check_real(x, y, n, "Pearson correlation"));
    /* Two passes: means, then centred sums (no catastrophic cancellation). */
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= (double)n; my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
    }
    double r = (sxx > 0 && syy > 0) ? sxy / sqrt(sxx * syy) : 0.0;
    *out = r > 1 ? 1 : r < -1 ? -1 : r;
    return BALORA_STATUS_OK;
}

static int cmp_idx(const void *a, const void *b, void *ctx) {
    const double *x = ctx;
    double u = x[*(const int64_t *)a], v = x[*(const int64_t *)b];
    if (u < v) return -1;
    if (u > v) return 1;
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b; /* stable: deterministic order */
    return (i > j) - (i < j);
}

balora_status bl_metric_ranks(const double *x, int64_t n, double *rank, int64_t *idx) {
    BL_TRY(check_real(x, x, n, "ranks"));
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    qsort_r(idx, (size_t)n, sizeof *idx, cmp_idx, (void *)x);
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && x[idx[j]] == x[idx[i]]) j++;
        double r = 0.5 * (double)(i + 1 + j); /* average of ranks i+1 .. j */
        for (int64_t k = i; k < j; k++) rank[idx[k]] = r;
        i = j;
    }
    return BALORA_STATUS_OK;
}

balora_status bl_metric_spearman(const double *x, const double *y, int64_t n, double *out) {
    BL_TRY(check_real(x, y, n, "Spearman correlation"));
    double *rx = bl_malloc((size_t)n * 2 * sizeof *rx);  /* [2, n] ranks of x, y */
    int64_t *idx = bl_malloc((size_t)n * sizeof *idx);    /* [n] scratch */
    if (!rx || !idx) { free(rx); free(idx); return bl_fail_prefix(BALORA_STATUS_NOMEM, "Spearman correlation"); }
    balora_status st = bl_metric_ranks(x, n, rx, idx);
    if (!st) st = bl_metric_ranks(y, n, rx + n, idx);
    if (!st) st = bl_metric_pearson(rx, rx + n, n, out);
    free(rx); free(idx);
    return st;
}

/* ---- GLUE ---- */

balora_status bl_glue_score(bl_glue_task task, const double *pred, const double *label, int64_t n,
                            int32_t n_classes, bl_glue_result *out) {
    if ((unsigned)task >= BL_GLUE_TASK_COUNT) return bl_fail(BALORA_STATUS_INVALID, "GLUE: bad task id %d", (int)task);
    memset(out, 0, sizeof *out);
    out->task = task; out->n = n; out->metrics = bl_glue_task_metrics(task);
    const char *name = bl_glue_task_name(task);
    BL_TRY(check_real(pred, label, n, name));
    if (task == BL_GLUE_TASK_STSB) {
        BL_TRY(bl_metric_pearson(pred, label, n, &out->pearson));
        BL_TRY(bl_metric_spearman(pred, label, n, &out->spearman));
        out->n_classes = 1;
        return bl_glue_set_metrics(out, out->metrics);
    }
    int32_t k = n_classes ? n_classes : bl_glue_task_classes(task);
    int32_t *ids = bl_malloc((size_t)n * 2 * sizeof *ids); /* [2, n] predicted, true class ids */
    if (!ids) return bl_fail_prefix(BALORA_STATUS_NOMEM, "%s", name);
    int32_t maxid = 0;
    balora_status st = BALORA_STATUS_OK;
    for (int64_t i = 0; i < 2 * n && !st; i++) {
        double v = i < n ? pred[i] : label[i - n];
        if (v != floor(v) || v < 0 || v > 1e6)
            st = bl_fail(BALORA_STATUS_INVALID, "%s: example %lld: %s %g is not a class id (a non-negative integer)",
                         name, (long long)(i % n), i < n ? "prediction" : "label", v);
        else { ids[i] = (int32_t)v; if (ids[i] > maxid) maxid = ids[i]; }
    }
    if (!st && k == 0) k = maxid + 1 < 2 ? 2 : maxid + 1;
    if (!st && (k < 2 || k > BL_GLUE_MAX_CLASSES))
        st = bl_fail(BALORA_STATUS_INVALID, "%s: %d classes; the report handles 2 to %d", name, k, BL_GLUE_MAX_CLASSES);
    out->n_classes = k;
    if (!st) st = bl_metric_confusion(ids, ids + n, n, k, out->confusion);
    if (!st) st = bl_metric_accuracy(ids, ids + n, n, &out->accuracy);
    if (!st) st = bl_metric_mcc(ids, ids + n, n, k, &out->mcc);
    if (!st && k == 2) st = bl_metric_f1(ids, ids + n, n, &out->f1);
    free(ids);
    BL_TRY(st);
    return bl_glue_set_metrics(out, out->metrics);
}

balora_status bl_glue_set_metrics(bl_glue_result *r, unsigned metrics) {
    bool reg = r->task == BL_GLUE_TASK_STSB;
    unsigned allowed = reg ? (BL_METRIC_PEARSON | BL_METRIC_SPEARMAN)
                           : (BL_METRIC_ACCURACY | BL_METRIC_MCC | (r->n_classes == 2 ? BL_METRIC_F1 : 0));
    if (!metrics || (metrics & ~allowed))
        return bl_fail(BALORA_STATUS_INVALID, "%s: metrics not available for this task; hint: %s", bl_glue_task_name(r->task),
                       reg ? "regression (STS-B) has pearson and spearman" : r->n_classes == 2 ? "classification has accuracy, f1 and mcc"
                                                                                             : "multi-class classification has accuracy and mcc");
    r->metrics = metrics;
    double v[5] = {r->accuracy, r->f1, r->mcc, r->pearson, r->spearman}, s = 0;
    int m = 0;
    for (int b = 0; b < 5; b++) if (metrics & (1u << b)) { s += v[b]; m++; }
    r->score = s / m;
    return BALORA_STATUS_OK;
}

balora_status bl_glue_metrics_parse(const char *list, unsigned *mask) {
    static const char *names[5] = {"accuracy", "f1", "mcc", "pearson", "spearman"};
    *mask = 0;
    for (const char *p = list; p && *p;) {
        size_t n = strcspn(p, ",");
        int hit = -1;
        for (int b = 0; b < 5; b++) if (strlen(names[b]) == n && !strncasecmp(p, names[b], n)) hit = b;
        if (hit < 0) return bl_fail(BALORA_STATUS_INVALID, "unknown metric '%.*s'; hint: accuracy, f1, mcc, pearson, spearman", (int)n, p);
        *mask |= 1u << hit;
        p += n + (p[n] == ',');
    }
    if (!*mask) return bl_fail(BALORA_STATUS_INVALID, "no metrics given");
    return BALORA_STATUS_OK;
}

balora_status bl_glue_average(const bl_glue_result *r, int64_t n_tasks, double *out) {
    if (!r || n_tasks <= 0) return bl_fail(BALORA_STATUS_INVALID, "GLUE average: no tasks");
    double s = 0;
    for (int64_t i = 0; i < n_tasks; i++) s += r[i].score;
    *out = s / (double)n_tasks;
    return BALORA_STATUS_OK;
}

void bl_wilson_interval(int64_t correct, int64_t n, double *lo, double *hi) {
    if (n <= 0) { *lo = 0; *hi = 1; return; }
    const double z = 1.959963984540054;
    double p = (double)correct / (double)n, nn = (double)n, z2 = z * z;
    double den = 1 + z2 / nn, centre = (p + z2 / (2 * nn)) / den;
    double half = z * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / den;
    *lo = correct <= 0 || centre - half < 0 ? 0 : centre - half; /* exact ends (no 1e-18 round-off) */
    *hi = correct >= n || centre + half > 1 ? 1 : centre + half;
}
