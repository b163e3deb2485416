/* Finite-difference checks (double precision) of every BA-LoRA term's gradient on several
 * shapes (rows fewer and more than columns: the Gram and the gesdd routes; k below and equal
 * to the rank), plus the properties docs/METHOD.md 5 asks for: non-zero gradients on
 * non-degenerate inputs, the causal shift of the mask, the sign of the entropy term,
 * warnings where a setting makes a term constant, clear errors on bad input. */
#include "harness.h"
#include "method/reg.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- captured warnings ---- */
static int g_warns;
static char g_last_warn[2048];
static void on_log(int level, const char *msg, void *user) {
    (void)user;
    if (level == BL_WARN) { g_warns++; snprintf(g_last_warn, sizeof g_last_warn, "%s", msg); }
}

/* ---- one term as a function of z (double) ---- */
typedef enum { F_NLU_CR, F_NLU_DR, F_NLU_SVD, F_NLG_CR, F_NLG_DR, F_NLG_SVD, F_NLG_CE } fkind;
typedef struct {
    fkind kind;
    bl_reg_ws *ws;
    int64_t B, T, V;        /* NLU: B = N, T = 1, V = C */
    const double *pre;      /* teacher */
    const int64_t *labels;  /* NLG */
    double tau;
    int64_t k, top_k;
    bl_svd_norm norm;
} term;

/* value; grad (if not NULL) receives dL/dz (zeroed first). */
static double eval(const term *t, const double *z, double *grad) {
    const int64_t n = t->B * t->T * t->V;
    if (grad) memset(grad, 0, (size_t)n * sizeof(double));
    double v = NAN;
    balora_status st = BALORA_STATUS_INTERNAL;
    switch (t->kind) {
    case F_NLU_CR: st = bl_reg_nlu_cr_d(t->ws, t->B, t->V, z, t->pre, 1.0, grad, &v); break;
    case F_NLU_DR: st = bl_reg_nlu_dr_d(t->ws, t->B, t->V, z, 1.0, grad, &v); break;
    case F_NLU_SVD: st = bl_reg_nlu_svdr_d(t->ws, t->B, t->V, z, t->k, t->norm, 1.0, grad, &v); break;
    case F_NLG_CR: st = bl_reg_nlg_cr_d(t->ws, t->B, t->T, t->V, z, t->pre, t->labels, t->tau, 1.0, grad, &v); break;
    case F_NLG_DR: st = bl_reg_nlg_dr_d(t->ws, t->B, t->T, t->V, z, t->labels, t->top_k, 1.0, grad, &v); break;
    case F_NLG_SVD: st = bl_reg_nlg_svdr_d(t->ws, t->B, t->T, t->V, z, t->labels, t->k, t->norm, 1.0, grad, &v); break;
    case F_NLG_CE: st = bl_reg_nlg_ce_d(t->ws, t->B, t->T, t->V, z, t->labels, 1.0, grad, &v); break;
    }
    CHECK(st == BALORA_STATUS_OK, "eval failed: %s", balora_last_error());
    return v;
}

/* Central differences over every stride-th element; returns the gradient's max |g|. */
static double fd_check_stride(const char *what, const term *t, double *z, int64_t stride) {
    const int64_t n = t->B * t->T * t->V;
    double *g = malloc((size_t)n * sizeof(double));
    eval(t, z, g);
    const double h = 1e-5;
    int64_t bad = 0, worst = -1;
    double wex = 0, gmax = 0, fdw = 0;
    for (int64_t i = 0; i < n; i += stride) {
        const double z0 = z[i];
        z[i] = z0 + h;
        double fp = eval(t, z, NULL);
        z[i] = z0 - h;
        double fm = eval(t, z, NULL);
        z[i] = z0;
        double fd = (fp - fm) / (2 * h), d = fabs(fd - g[i]), tol = 1e-7 + 1e-5 * fabs(g[i]);
        if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
        if (!(d <= tol)) { bad++; if (d - tol > wex) { wex = d - tol; worst = i; fdw = fd; } }
    }
    CHECK(bad == 0, "%s: %lld of %lld gradient entries differ from finite differences; worst [%lld]: analytic %.10g, "
          "fd %.10g", what, (long long)bad, (long long)n, (long long)worst, worst >= 0 ? g[worst] : 0.0, fdw);
    free(g);
    return gmax;
}
static double fd_check(const char *what, const term *t, double *z) { return fd_check_stride(what, t, z, 1); }

static void fill_normal(bl_rng *r, double *x, int64_t n, double scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * bl_rng_normal(r);
}

/* ---------------------------------------------------------------- NLU */
static void test_nlu(bl_rng *r) {
    static const int64_t shapes[][2] = {{8, 3}, {6, 6}, {3, 12}, {2, 9}, {10, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t N = shapes[s][0], C = shapes[s][1], mn = N < C ? N : C;
        bl_reg_ws ws;
        CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLU, N, C, 0));
        double *z = malloc((size_t)(N * C) * sizeof(double)), *p = malloc((size_t)(N * C) * sizeof(double));
        fill_normal(r, z, N * C, 1.5);
        fill_normal(r, p, N * C, 1.5);
        char what[160];
        term t = {.ws = &ws, .B = N, .T = 1, .V = C, .pre = p};
        t.kind = F_NLU_CR;
        snprintf(what, sizeof what, "NLU L_CR [%lld, %lld]", (long long)N, (long long)C);
        CHECK(fd_check(what, &t, z) > 1e-4, "%s: gradient is zero", what);
        t.kind = F_NLU_DR;
        snprintf(what, sizeof what, "NLU L_DR [%lld, %lld]", (long long)N, (long long)C);
        CHECK(fd_check(what, &t, z) > 1e-4, "%s: gradient is zero", what);
        t.kind = F_NLU_SVD;
        const int64_t ks[] = {1, 2, mn};
        for (int ik = 0; ik < 3; ik++)
            for (int nm = 0; nm < 3; nm++) {
                t.k = ks[ik];
                t.norm = (bl_svd_norm)nm;
                snprintf(what, sizeof what, "NLU L_SVDR [%lld, %lld] k %lld norm %s", (long long)N, (long long)C,
                         (long long)t.k, bl_reg_svd_norm_name(t.norm));
                double gmax = fd_check(what, &t, z);
                if (t.norm == BL_SVD_NORM_SUM && t.k >= mn)
                    CHECK(gmax < 1e-12, "%s: constant term must have zero gradient (max %g)", what, gmax);
                else
                    CHECK(gmax > 1e-4, "%s: gradient is zero", what);
            }
        free(z);
        free(p);
        bl_reg_ws_free(&ws);
    }
}

/* The Gram route (rows << columns) and dgesdd (rows >= columns) agree: SVD term of z and z^T. */
static void test_routes_agree(bl_rng *r) {
    const int64_t N = 3, C = 14;
    double z[3 * 14], zt[14 * 3], g[3 * 14], gt[14 * 3];
    fill_normal(r, z, N * C, 1.0);
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < C; j++) zt[j * N + i] = z[i * C + j];
    bl_reg_ws w1, w2;
    CHECK_OK(bl_reg_ws_init(&w1, BL_REG_TASK_NLU, N, C, 0)); /* 2N <= C: Gram */
    CHECK_OK(bl_reg_ws_init(&w2, BL_REG_TASK_NLU, C, N, 0)); /* gesdd */
    for (int nm = 0; nm < 3; nm++) {
        double v1, v2;
        memset(g, 0, sizeof g);
        memset(gt, 0, sizeof gt);
        CHECK_OK(bl_reg_nlu_svdr_d(&w1, N, C, z, 2, (bl_svd_norm)nm, 1.0, g, &v1));
        CHECK_OK(bl_reg_nlu_svdr_d(&w2, C, N, zt, 2, (bl_svd_norm)nm, 1.0, gt, &v2));
        CHECK(fabs(v1 - v2) < 1e-12 * (1 + fabs(v1)), "routes disagree on the value (norm %d): %.15g vs %.15g", nm, v1, v2);
        double md = 0;
        for (int64_t i = 0; i < N; i++)
            for (int64_t j = 0; j < C; j++) md = fmax(md, fabs(g[i * C + j] - gt[j * N + i]));
        CHECK(md < 1e-10, "routes disagree on the gradient (norm %d): max diff %g", nm, md);
    }
    bl_reg_ws_free(&w1);
    bl_reg_ws_free(&w2);
}

/* ---------------------------------------------------------------- NLG */
static void test_nlg(bl_rng *r) {
    /* {B, T, V}: V large (Gram route) and small (gesdd route) */
    static const int64_t shapes[][3] = {{2, 5, 40}, {2, 6, 7}, {1, 4, 3}, {3, 3, 16}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t B = shapes[s][0], T = shapes[s][1], V = shapes[s][2], n = B * T * V;
        bl_reg_ws ws;
        CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 4));
        double *z = malloc((size_t)n * sizeof(double)), *p = malloc((size_t)n * sizeof(double));
        int64_t *lab = malloc((size_t)(B * T) * sizeof(int64_t));
        fill_normal(r, z, n, 2.0);
        fill_normal(r, p, n, 2.0);
        int64_t M = 0;
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < T; t++) {
                /* first token of each row and the last one of row 0 ignored */
                bool ign = t == 0 || (b == 0 && t == T - 1);
                lab[b * T + t] = ign ? -100 : (int64_t)bl_rng_below(r, (uint64_t)V);
                if (t >= 1 && !ign) M++;
            }
        const int64_t mn = M < V ? M : V;
        char what[160];
        term t = {.ws = &ws, .B = B, .T = T, .V = V, .pre = p, .labels = lab};
        for (int it = 0; it < 2; it++) {
            t.kind = F_NLG_CR;
            t.tau = it == 0 ? 1.0 : 2.0;
            snprintf(what, sizeof what, "NLG L_CR [%lld, %lld, %lld] tau %g", (long long)B, (long long)T, (long long)V, t.tau);
            CHECK(fd_check(what, &t, z) > 1e-5, "%s: gradient is zero", what);
        }
        t.kind = F_NLG_DR;
        for (int64_t K = 0; K <= 4; K += 2) {
            t.top_k = K;
            snprintf(what, sizeof what, "NLG L_DR [%lld, %lld, %lld] top-k %lld", (long long)B, (long long)T, (long long)V,
                     (long long)K);
            CHECK(fd_check(what, &t, z) > 1e-5, "%s: gradient is zero", what);
        }
        t.kind = F_NLG_CE;
        snprintf(what, sizeof what, "NLG task CE [%lld, %lld, %lld]", (long long)B, (long long)T, (long long)V);
        CHECK(fd_check(what, &t, z) > 1e-5, "%s: gradient is zero", what);
        t.kind = F_NLG_SVD;
        const int64_t ks[] = {1, 2, mn};
        for (int ik = 0; ik < 3; ik++)
            for (int nm = 1; nm < 3; nm++) {
                t.k = ks[ik];
                t.norm = (bl_svd_norm)nm;
                snprintf(what, sizeof what, "NLG L_SVDR [%lld, %lld, %lld] |M| %lld k %lld norm %s", (long long)B,
                         (long long)T, (long long)V, (long long)M, (long long)t.k, bl_reg_svd_norm_name(t.norm));
                double gmax = fd_check(what, &t, z);
                if (t.norm == BL_SVD_NORM_SUM && t.k >= mn)
                    CHECK(gmax < 1e-12, "%s: constant term must have zero gradient (max %g)", what, gmax);
                else
                    CHECK(gmax > 1e-5, "%s: gradient is zero", what);
            }
        free(z);
        free(p);
        free(lab);
        bl_reg_ws_free(&ws);
    }
}

/* V larger than the workspace's column block (512): the Gram route in several blocks, the last
 * one partial; finite differences on a subset of entries, float API against double API. */
static void test_nlg_blocks(bl_rng *r) {
    enum { B = 1, T = 8, V = 1300, N = B * T * V };
    double *z = malloc(N * sizeof(double)), *gd = calloc(N, sizeof(double));
    float *zf = malloc(N * sizeof(float)), *gf = calloc(N, sizeof(float));
    int64_t lab[T] = {-100, 3, 900, 1299, -100, 7, 8, 1000}; /* 6 positions */
    fill_normal(r, z, N, 1.0);
    for (int i = 0; i < N; i++) zf[i] = (float)z[i];
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 0));
    term t = {.kind = F_NLG_SVD, .ws = &ws, .B = B, .T = T, .V = V, .labels = lab};
    for (int nm = 1; nm < 3; nm++)
        for (int64_t k = 1; k <= 6; k += 5) {
            t.k = k;
            t.norm = (bl_svd_norm)nm;
            char what[128];
            snprintf(what, sizeof what, "NLG L_SVDR [1, 8, 1300] k %lld norm %s", (long long)k, bl_reg_svd_norm_name(t.norm));
            double gmax = fd_check_stride(what, &t, z, 29);
            CHECK(nm == BL_SVD_NORM_SUM && k == 6 ? gmax < 1e-12 : gmax > 1e-6, "%s: gradient size %g", what, gmax);
            double vd, vf;
            memset(gd, 0, N * sizeof(double));
            memset(gf, 0, N * sizeof(float));
            CHECK_OK(bl_reg_nlg_svdr_d(&ws, B, T, V, z, lab, k, t.norm, 1.0, gd, &vd));
            CHECK_OK(bl_reg_nlg_svdr(&ws, B, T, V, zf, lab, k, t.norm, 1.0, gf, &vf));
            double md = 0;
            for (int i = 0; i < N; i++) md = fmax(md, fabs(gf[i] - gd[i]));
            CHECK(fabs(vd - vf) < 1e-6 * fabs(vd) && md < 1e-6, "%s: float vs double: value %g vs %g, grad diff %g", what,
                  vf, vd, md);
        }
    bl_reg_ws_free(&ws);
    free(z); free(gd); free(zf); free(gf);
}

/* The mask is shifted: position t counts iff labels[t + 1] != -100. */
static void test_causal_shift(bl_rng *r) {
    enum { B = 1, T = 6, V = 20 };
    const int64_t lab[T] = {-100, -100, 5, 6, -100, -100}; /* shifted: t = 1, 2; unshifted would be t = 2, 3 */
    double z[T * V], p[T * V], g[T * V];
    fill_normal(r, z, T * V, 1.0);
    fill_normal(r, p, T * V, 1.0);
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 0));
    /* every term touches exactly rows 1 and 2 */
    for (int term_i = 0; term_i < 4; term_i++) {
        double v;
        memset(g, 0, sizeof g);
        if (term_i == 0) CHECK_OK(bl_reg_nlg_cr_d(&ws, B, T, V, z, p, lab, 1.0, 1.0, g, &v));
        if (term_i == 1) CHECK_OK(bl_reg_nlg_dr_d(&ws, B, T, V, z, lab, 0, 1.0, g, &v));
        if (term_i == 2) CHECK_OK(bl_reg_nlg_svdr_d(&ws, B, T, V, z, lab, 1, BL_SVD_NORM_SUM, 1.0, g, &v));
        if (term_i == 3) CHECK_OK(bl_reg_nlg_ce_d(&ws, B, T, V, z, lab, 1.0, g, &v));
        for (int t = 0; t < T; t++) {
            double nrm = 0;
            for (int j = 0; j < V; j++) nrm += fabs(g[t * V + j]);
            if (t == 1 || t == 2) CHECK(nrm > 1e-8, "term %d: trained position %d has no gradient", term_i, t);
            else CHECK(nrm == 0, "term %d: position %d (next label -100) has a gradient %g", term_i, t, nrm);
        }
    }
    /* the value is the mean over exactly rows 1 and 2 (entropy computed here by hand) */
    double want = 0;
    for (int t = 1; t <= 2; t++) {
        double m = -INFINITY, s = 0, h = 0;
        for (int j = 0; j < V; j++) m = fmax(m, z[t * V + j]);
        for (int j = 0; j < V; j++) s += exp(z[t * V + j] - m);
        for (int j = 0; j < V; j++) { double q = exp(z[t * V + j] - m) / s; h -= q * log(q); }
        want -= h / 2;
    }
    double v;
    CHECK_OK(bl_reg_nlg_dr_d(&ws, B, T, V, z, lab, 0, 0.0, NULL, &v));
    CHECK(fabs(v - want) < 1e-12, "L_DR over the shifted mask: got %.15g want %.15g", v, want);
    /* the CE targets are the next labels: row 1 predicts 5, row 2 predicts 6 */
    double ce_want = 0;
    for (int t = 1; t <= 2; t++) {
        double m = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) m = fmax(m, z[t * V + j]);
        for (int j = 0; j < V; j++) s += exp(z[t * V + j] - m);
        ce_want += (m + log(s) - z[t * V + lab[t + 1]]) / 2;
    }
    CHECK_OK(bl_reg_nlg_ce_d(&ws, B, T, V, z, lab, 0.0, NULL, &v));
    CHECK(fabs(v - ce_want) < 1e-12, "CE over the shifted mask: got %.15g want %.15g", v, ce_want);
    bl_reg_ws_free(&ws);
}

/* L_DR = -mean entropy: flatter distributions lower it; a gradient step raises the entropy. */
static void test_entropy_sign(bl_rng *r) {
    enum { B = 2, T = 4, V = 30, N = B * T * V };
    int64_t lab[B * T];
    for (int i = 0; i < B * T; i++) lab[i] = (int64_t)bl_rng_below(r, V);
    double z[N], zf[N], g[N];
    fill_normal(r, z, N, 3.0);
    for (int i = 0; i < N; i++) zf[i] = 0.3 * z[i];
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 5));
    for (int64_t K = 0; K <= 5; K += 5) {
        double v_sharp, v_flat, v_step;
        CHECK_OK(bl_reg_nlg_dr_d(&ws, B, T, V, z, lab, K, 0.0, NULL, &v_sharp));
        CHECK_OK(bl_reg_nlg_dr_d(&ws, B, T, V, zf, lab, K, 0.0, NULL, &v_flat));
        CHECK(v_sharp < 0 && v_flat < v_sharp, "top-k %lld: L_DR must decrease when distributions flatten: sharp %g, "
              "flat %g", (long long)K, v_sharp, v_flat);
        memset(g, 0, sizeof g);
        CHECK_OK(bl_reg_nlg_dr_d(&ws, B, T, V, z, lab, K, 1.0, g, &v_sharp));
        double zs[N];
        for (int i = 0; i < N; i++) zs[i] = z[i] - 0.05 * g[i];
        CHECK_OK(bl_reg_nlg_dr_d(&ws, B, T, V, zs, lab, K, 0.0, NULL, &v_step));
        CHECK(v_step < v_sharp, "top-k %lld: a descent step must raise the entropy (L_DR %g -> %g)", (long long)K, v_sharp,
              v_step);
    }
    bl_reg_ws_free(&ws);
}

/* The float API accumulates weight * gradient into grad and matches the double API. */
static void test_float_accumulates(bl_rng *r) {
    enum { B = 2, T = 5, V = 24, N = B * T * V };
    double z[N], p[N], gd[N] = {0};
    float zf[N], pf[N], gf[N];
    int64_t lab[B * T];
    for (int i = 0; i < B * T; i++) lab[i] = i % 4 == 0 ? -100 : (int64_t)bl_rng_below(r, V);
    fill_normal(r, z, N, 1.0);
    fill_normal(r, p, N, 1.0);
    for (int i = 0; i < N; i++) { zf[i] = (float)z[i]; pf[i] = (float)p[i]; gf[i] = 1.0f; }
    bl_reg_config c;
    CHECK_OK(bl_reg_config_recipe(&c, "paper-v6", BL_REG_TASK_NLG));
    c.top_k_entropy = 4;
    c.lambda1 = 0.3; c.lambda2 = 0.2; c.lambda3 = 0.1;
    c.sched[1] = c.sched[2] = BL_LAMBDA_SCHED_CONSTANT;
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 4));
    bl_reg_out od, of;
    CHECK_OK(bl_reg_apply_d(&ws, &c, 0, 10, B, T, V, z, p, lab, gd, &od));
    CHECK_OK(bl_reg_apply(&ws, &c, 0, 10, B, T, V, zf, pf, lab, gf, &of));
    CHECK(fabs(od.total - of.total) < 1e-5 * (1 + fabs(od.total)), "float total %g vs double %g", of.total, od.total);
    CHECK(od.cr != 0 && od.dr != 0 && od.svdr != 0, "all three terms on");
    double md = 0;
    for (int i = 0; i < N; i++) md = fmax(md, fabs((gf[i] - 1.0) - gd[i]));
    CHECK(md < 1e-6, "float gradient (accumulated onto 1) differs from double by %g", md);
    /* the combined gradient is the weighted sum of the terms' gradients */
    double g1[N] = {0}, v;
    CHECK_OK(bl_reg_nlg_cr_d(&ws, B, T, V, z, p, lab, c.tau, 0.3, g1, &v));
    CHECK_OK(bl_reg_nlg_dr_d(&ws, B, T, V, z, lab, 4, 0.2, g1, &v));
    CHECK_OK(bl_reg_nlg_svdr_d(&ws, B, T, V, z, lab, c.svd_k, c.svd_norm, 0.1, g1, &v));
    md = 0;
    for (int i = 0; i < N; i++) md = fmax(md, fabs(g1[i] - gd[i]));
    CHECK(md < 1e-14, "bl_reg_apply's gradient is not the weighted sum of the terms (%g)", md);
    /* lambda 0 removes the term: value 0 and grad untouched */
    c.lambda1 = c.lambda2 = c.lambda3 = 0;
    for (int i = 0; i < N; i++) gf[i] = 2.0f;
    CHECK_OK(bl_reg_apply(&ws, &c, 0, 10, B, T, V, zf, NULL, lab, gf, &of));
    bool untouched = true;
    for (int i = 0; i < N; i++) untouched &= gf[i] == 2.0f;
    CHECK(untouched && of.total == 0 && of.cr == 0, "lambdas 0: nothing computed");
    bl_reg_ws_free(&ws);
}

static void test_warnings_and_errors(bl_rng *r) {
    balora_log_set(on_log, NULL);
    bl_reg_config c;
    bl_reg_config_default(&c, BL_REG_TASK_NLU);
    c.svd_norm = BL_SVD_NORM_SUM;
    c.svd_k = 3;
    g_warns = 0;
    CHECK_OK(bl_reg_config_check(&c, 2)); /* top-3 of 2 columns under the ratio form */
    CHECK(g_warns == 1 && strstr(g_last_warn, "constant"), "k >= columns under the sum norm must warn (%d: %s)", g_warns,
          g_last_warn);
    g_warns = 0;
    CHECK_OK(bl_reg_config_check(&c, 5));
    CHECK(g_warns == 0, "no warning for k < columns (%s)", g_last_warn);
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.top_k_entropy = 1;
    g_warns = 0;
    CHECK_OK(bl_reg_config_check(&c, 100));
    CHECK(g_warns == 1 && strstr(g_last_warn, "top_k_entropy = 1"), "top-1 entropy must warn (%s)", g_last_warn);
    c.top_k_entropy = 200;
    g_warns = 0;
    CHECK_OK(bl_reg_config_check(&c, 100));
    CHECK(g_warns == 1, "top-K >= V must warn");
    bl_reg_config_default(&c, BL_REG_TASK_NLU);
    g_warns = 0;
    CHECK_OK(bl_reg_config_check(&c, 1));
    CHECK(g_warns >= 2, "one output column: L_CR and L_DR constant must warn (%d)", g_warns);

    /* runtime: fewer trained positions than k under the sum norm */
    enum { B = 1, T = 4, V = 10 };
    double z[B * T * V], g[B * T * V] = {0}, v;
    fill_normal(r, z, B * T * V, 1.0);
    int64_t lab[T] = {-100, 3, 4, -100}; /* 2 positions */
    bl_reg_ws ws;
    CHECK_OK(bl_reg_ws_init(&ws, BL_REG_TASK_NLG, B * T, V, 0));
    g_warns = 0;
    CHECK_OK(bl_reg_nlg_svdr_d(&ws, B, T, V, z, lab, 3, BL_SVD_NORM_SUM, 1.0, g, &v));
    CHECK(g_warns == 1 && fabs(v + 1) < 1e-12, "k >= |M| must warn at run time (%d warnings, value %g)", g_warns, v);

    /* bl_reg_apply warns about a constant-term configuration once per workspace, not every step */
    bl_reg_config_default(&c, BL_REG_TASK_NLG);
    c.svd_k = V; /* k >= V columns under the sum norm */
    bl_reg_out o;
    g_warns = 0;
    for (int step = 0; step < 3; step++) CHECK_OK(bl_reg_apply_d(&ws, &c, step, 3, B, T, V, z, z, lab, g, &o));
    CHECK(g_warns == 1 && strstr(g_last_warn, "svd_k = 10"), "apply: one warning in 3 steps (%d: %s)", g_warns, g_last_warn);

    /* errors */
    int64_t bad[T] = {-100, 3, 12, -100};
    CHECK_FAILS(bl_reg_nlg_dr_d(&ws, B, T, V, z, bad, 0, 1.0, g, &v), BALORA_STATUS_INVALID, "labels[0, 2] = 12");
    int64_t none[T] = {7, -100, -100, -100};
    CHECK_FAILS(bl_reg_nlg_cr_d(&ws, B, T, V, z, z, none, 1.0, 1.0, g, &v), BALORA_STATUS_INVALID, "no trained position");
    CHECK_FAILS(bl_reg_nlg_dr_d(&ws, B, T, V + 1, z, lab, 0, 1.0, g, &v), BALORA_STATUS_INVALID, "does not fit the workspace");
    CHECK_FAILS(bl_reg_nlg_dr_d(&ws, B, T, V, z, lab, 3, 1.0, g, &v), BALORA_STATUS_INVALID, "max_k");
    CHECK_FAILS(bl_reg_nlg_cr_d(&ws, B, T, V, z, z, lab, 0.0, 1.0, g, &v), BALORA_STATUS_INVALID, "tau");
    z[V + 2] = NAN;
    CHECK_FAILS(bl_reg_nlg_dr_d(&ws, B, T, V, z, lab, 0, 1.0, g, &v), BALORA_STATUS_INVALID, "non-finite");
    CHECK_FAILS(bl_reg_nlg_svdr_d(&ws, B, T, V, z, lab, 1, BL_SVD_NORM_SUM, 1.0, g, &v), BALORA_STATUS_INVALID, "NaN");
    CHECK_FAILS(bl_reg_nlu_dr_d(&ws, 4, V, z, 1.0, g, &v), BALORA_STATUS_INVALID, "made for NLG");
    bl_reg_ws bad_ws;
    CHECK_FAILS(bl_reg_ws_init(&bad_ws, BL_REG_TASK_NLG, 0, 10, 0), BALORA_STATUS_INVALID, "rows 0");
    bl_reg_ws_free(&ws);
    balora_log_set(NULL, NULL);
}

int main(void) {
    bl_rng r;
    bl_rng_seed(&r, 2024);
    test_nlu(&r);
    test_routes_agree(&r);
    test_nlg(&r);
    test_nlg_blocks(&r);
    test_causal_shift(&r);
    test_entropy_sign(&r);
    test_float_accumulates(&r);
    test_warnings_and_errors(&r);
    return t_finish();
}
