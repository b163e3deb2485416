/* Lab statistics: mean/std, the incomplete beta against closed forms, Student-t p-values against
 * closed forms (df 1, 2) and numerical integration, Welch's test against R's sleep example. */
#include "harness.h"
#include "lab/stats.h"
#include <math.h>
#include <string.h>

#define NEAR(got, want, tol, ...) CHECK(fabs((got) - (want)) <= (tol), __VA_ARGS__)

int main(void) {
    double x[5] = {2, 4, 4, 5, 5};
    NEAR(bl_stats_mean(x, 5), 4.0, 1e-15, "mean");
    NEAR(bl_stats_std(x, 5), sqrt(1.5), 1e-15, "sample std %g", bl_stats_std(x, 5)); /* squares 4+0+0+1+1 over 4 */
    CHECK(isnan(bl_stats_mean(x, 0)) && isnan(bl_stats_std(x, 1)), "degenerate mean/std should be NaN");

    /* incomplete beta: I_x(a,1) = x^a, I_x(1,b) = 1-(1-x)^b, I_1/2(a,a) = 1/2, I_x(1/2,1/2) = 2/pi asin(sqrt x) */
    double worst = 0;
    for (double xx = 0.01; xx < 1; xx += 0.07)
        for (double a = 0.3; a < 40; a *= 1.9) {
            worst = fmax(worst, fabs(bl_stats_betainc(a, 1, xx) - pow(xx, a)));
            worst = fmax(worst, fabs(bl_stats_betainc(1, a, xx) - (1 - pow(1 - xx, a))));
            worst = fmax(worst, fabs(bl_stats_betainc(a, a, 0.5) - 0.5));
        }
    for (double xx = 0.01; xx < 1; xx += 0.07) worst = fmax(worst, fabs(bl_stats_betainc(0.5, 0.5, xx) - 2 / M_PI * asin(sqrt(xx))));
    CHECK(worst < 1e-12, "incomplete beta vs closed forms: worst error %g", worst);
    CHECK(bl_stats_betainc(2, 3, 0) == 0 && bl_stats_betainc(2, 3, 1) == 1, "betainc endpoints");
    CHECK(isnan(bl_stats_betainc(-1, 3, 0.5)) && isnan(bl_stats_betainc(1, 3, 1.5)) && isnan(bl_stats_betainc(1, 3, NAN)), "betainc domain");

    /* t p-values: df 1 (Cauchy) and df 2 closed forms; numerical integration for others */
    worst = 0;
    for (double t = -30; t <= 30; t += 0.37) {
        worst = fmax(worst, fabs(bl_stats_t_pvalue(t, 1) - (1 - 2 / M_PI * atan(fabs(t)))));
        worst = fmax(worst, fabs(bl_stats_t_pvalue(t, 2) - (1 - fabs(t) / sqrt(2 + t * t))));
    }
    CHECK(worst < 1e-12, "t p-value vs closed forms: worst error %g", worst);
    /* reference values by integrating the t density numerically (numpy, 2e6 points) */
    NEAR(bl_stats_t_pvalue(2.5, 7.5), 0.038820258273625036, 1e-8, "p(2.5, 7.5) = %.12g", bl_stats_t_pvalue(2.5, 7.5));
    NEAR(bl_stats_t_pvalue(-0.3, 30), 0.7662461052843258, 1e-8, "p(0.3, 30) = %.12g", bl_stats_t_pvalue(-0.3, 30));
    NEAR(bl_stats_t_pvalue(1.959963984540054, 1e9), 0.05, 1e-7, "large df -> normal: %.12g", bl_stats_t_pvalue(1.959963984540054, 1e9));
    CHECK(bl_stats_t_pvalue(0, 5) == 1 && bl_stats_t_pvalue(INFINITY, 5) == 0 && isnan(bl_stats_t_pvalue(1, 0)), "t p-value edges");

    /* Welch: R's t.test(extra ~ group, data = sleep): t = -1.8608, df = 17.776, p = 0.07939 */
    double g1[10] = {0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0};
    double g2[10] = {1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4};
    bl_welch w;
    CHECK_OK(bl_stats_welch(g1, 10, g2, 10, &w));
    NEAR(w.t, -1.8608134674868526, 1e-12, "sleep t %.12g", w.t);
    NEAR(w.df, 17.776473516178495, 1e-10, "sleep df %.12g", w.df);
    NEAR(w.p, 0.07939414018735705, 1e-8, "sleep p %.12g", w.p);
    NEAR(w.diff, 0.75 - 2.33, 1e-12, "sleep diff %g", w.diff);
    double a[5] = {1, 2, 3, 4, 5}, b[6] = {2, 4, 6, 8, 10, 12};
    CHECK_OK(bl_stats_welch(a, 5, b, 6, &w));
    NEAR(w.t, -2.3763541031440183, 1e-12, "t %.12g", w.t);
    NEAR(w.df, 6.9722557297949335, 1e-10, "df %.12g", w.df);
    NEAR(w.p, 0.04928433820672975, 1e-8, "p %.12g", w.p);
    CHECK_OK(bl_stats_welch(b, 6, a, 5, &w));
    NEAR(w.t, 2.3763541031440183, 1e-12, "swapped t %.12g", w.t);
    /* zero variance */
    double c1[3] = {0.5, 0.5, 0.5}, c2[3] = {0.7, 0.7, 0.7};
    CHECK_OK(bl_stats_welch(c1, 3, c1, 3, &w));
    CHECK(w.t == 0 && w.p == 1, "equal constants: t %g p %g", w.t, w.p);
    CHECK_OK(bl_stats_welch(c1, 3, c2, 3, &w));
    CHECK(isinf(w.t) && w.t < 0 && w.p == 0, "different constants: t %g p %g", w.t, w.p);
    /* bad input */
    CHECK_FAILS(bl_stats_welch(a, 1, b, 6, &w), BALORA_STATUS_INVALID, ">= 2");
    double bad[3] = {1, NAN, 2};
    CHECK_FAILS(bl_stats_welch(a, 5, bad, 3, &w), BALORA_STATUS_INVALID, "second sample, value 1");
    return t_finish();
}
