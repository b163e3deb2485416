/* Small statistics for the lab's seed comparisons: mean, sample standard deviation and
 * Welch's unequal-variance t-test (two-sided p-value from the regularised incomplete beta
 * function), to say whether a difference between two methods exceeds the seed noise. */
#ifndef BL_LAB_STATS_H
#define BL_LAB_STATS_H
#include "core/bl.h"

/* Mean of x[n]; NaN when n < 1. */
double bl_stats_mean(const double *x, int64_t n);
/* Sample standard deviation (divisor n - 1) of x[n]; NaN when n < 2. */
double bl_stats_std(const double *x, int64_t n);

/* Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1 (NaN otherwise);
 * continued fraction (modified Lentz), relative accuracy about 1e-14. */
double bl_stats_betainc(double a, double b, double x);
/* Two-sided p-value P(|T| >= |t|) of Student's t with df > 0 degrees of freedom
 * (= I_{df/(df+t^2)}(df/2, 1/2)); t = +-inf gives 0, NaN gives NaN. */
double bl_stats_t_pvalue(double t, double df);

typedef struct bl_welch {
    double mean_a, mean_b, std_a, std_b;
    double diff;     /* mean_a - mean_b */
    double t, df, p; /* Welch's t, Welch-Satterthwaite degrees of freedom, two-sided p */
} bl_welch;

/* Welch's t-test of a[na] against b[nb] (na, nb >= 2, every value finite).
 * When both samples have zero variance: equal means give t = 0, p = 1; different means give
 * t = +-inf, p = 0 (df = na + nb - 2). */
balora_status bl_stats_welch(const double *a, int64_t na, const double *b, int64_t nb, bl_welch *out);

#endif
