/* Mean, sample std, regularised incomplete beta, Student-t tail, Welch's t-test. */
#include "lab/stats.h"
#include <math.h>
#include <string.h>

double bl_stats_mean(const double *x, int64_t n) {
    if (!x || n < 1) return NAN;
    /* shifted by x[0]: exact for constant samples, less cancellation otherwise */
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i] - x[0];
    return x[0] + s / (double)n;
}

double bl_stats_std(const double *x, int64_t n) {
    if (!x || n < 2) return NAN;
    double m = bl_stats_mean(x, n), s = 0;
    for (int64_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return sqrt(s / (double)(n - 1));
}

/* Continued fraction for I_x(a, b) / front, valid (fast) for x < (a + 1) / (a + b + 2). */
static double betacf(double a, double b, double x) {
    const double tiny = 1e-300, eps = 1e-15;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double f = d;
    for (int m = 1; m <= 10000; m++) {
        /* even step: d_2m = m (b - m) x / ((a + 2m - 1)(a + 2m)) */
        double num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        d = 1 + num * d; if (fabs(d) < tiny) d = tiny;
        c = 1 + num / c; if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        f *= d * c;
        /* odd step: d_2m+1 = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)) */
        num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
        d = 1 + num * d; if (fabs(d) < tiny) d = tiny;
        c = 1 + num / c; if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double delta = d * c;
        f *= delta;
        if (fabs(delta - 1) < eps) break;
    }
    return f;
}

double bl_stats_betainc(double a, double b, double x) {
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1) || !isfinite(a) || !isfinite(b)) return NAN;
    if (x == 0) return 0;
    if (x == 1) return 1;
    double lfront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return exp(lfront) * betacf(a, b, x) / a;
    return 1 - exp(lfront) * betacf(b, a, 1 - x) / b;
}

double bl_stats_t_pvalue(double t, double df) {
    if (isnan(t) || !(df > 0)) return NAN;
    if (isinf(t)) return 0;
    /* x = df / (df + t^2), computed without cancellation for large |t| */
    double x = df / (df + t * t);
    return bl_stats_betainc(df / 2, 0.5, x);
}

balora_status bl_stats_welch(const double *a, int64_t na, const double *b, int64_t nb, bl_welch *out) {
    memset(out, 0, sizeof *out);
    if (!a || !b || na < 2 || nb < 2)
        return bl_fail(BALORA_STATUS_INVALID, "Welch t-test: samples of %lld and %lld values; hint: each needs >= 2 (seeds)",
                       (long long)na, (long long)nb);
    for (int64_t i = 0; i < na; i++)
        if (!isfinite(a[i])) return bl_fail(BALORA_STATUS_INVALID, "Welch t-test: first sample, value %lld is %g; hint: every value must be finite", (long long)i, a[i]);
    for (int64_t i = 0; i < nb; i++)
        if (!isfinite(b[i])) return bl_fail(BALORA_STATUS_INVALID, "Welch t-test: second sample, value %lld is %g; hint: every value must be finite", (long long)i, b[i]);
    out->mean_a = bl_stats_mean(a, na);
    out->mean_b = bl_stats_mean(b, nb);
    out->std_a = bl_stats_std(a, na);
    out->std_b = bl_stats_std(b, nb);
    out->diff = out->mean_a - out->mean_b;
    double va = out->std_a * out->std_a / (double)na, vb = out->std_b * out->std_b / (double)nb, se2 = va + vb;
    if (se2 == 0) {
        out->df = (double)(na + nb - 2);
        if (out->diff == 0) { out->t = 0; out->p = 1; }
        else { out->t = out->diff > 0 ? INFINITY : -INFINITY; out->p = 0; }
        return BALORA_STATUS_OK;
    }
    out->t = out->diff / sqrt(se2);
    out->df = se2 * se2 / (va * va / (double)(na - 1) + vb * vb / (double)(nb - 1));
    out->p = bl_stats_t_pvalue(out->t, out->df);
    return BALORA_STATUS_OK;
}
