/* BA-LoRA's terms against ../shared/golden/regularizers.safetensors (float64 reference,
 * docs/METHOD.md 3.1-3.2): every value and gradient, through the double API (tight tolerance)
 * and the float API (golden tolerance 1e-4 + 1e-3 |want|). */
#include "harness.h"
#include "io/safetensors.h"
#include "method/reg.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NLU_N 8
#define NLU_C 3
#define NLG_B 2
#define NLG_T 6
#define NLG_V 7
#define NLG_N (NLG_B * NLG_T * NLG_V)

static bl_st_file g_f;

/* A float64 tensor of n elements (n = 1 for scalars). */
static void get_f64(const char *name, double *out, int64_t n) {
    const bl_st_tensor *t = bl_st_find(&g_f, name);
    CHECK(t && t->dtype == BL_DTYPE_F64 && t->numel == n, "golden tensor %s missing or not F64[%lld]", name, (long long)n);
    if (t && t->dtype == BL_DTYPE_F64 && t->numel == n) memcpy(out, t->data, (size_t)n * sizeof(double));
    else memset(out, 0, (size_t)n * sizeof(double));
}
static double get_scalar(const char *name) { double v; get_f64(name, &v, 1); return v; }

static void close_d(const char *what, const double *got, const double *want, int64_t n, double atol, double rtol) {
    int64_t bad = 0, worst = 0;
    double wex = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]), tol = atol + rtol * fabs(want[i]);
        if (!(d <= tol)) { bad++; if (d - tol > wex) { wex = d - tol; worst = i; } }
    }
    CHECK(bad == 0, "%s: %lld of %lld out of tolerance; worst [%lld] got %.12g want %.12g", what, (long long)bad,
          (long long)n, (long long)worst, got[worst], want[worst]);
}
static void close_f(const char *what, const float *got, const double *want, int64_t n) {
    float *w = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) w[i] = (float)want[i];
    t_allclose(what, got, w, (long)n, T_GOLDEN_ATOL, T_GOLDEN_RTOL);
    free(w);
}
static void close_scalar(const char *what, double got, double want, double atol, double rtol) {
    CHECK(fabs(got - want) <= atol + rtol * fabs(want), "%s: got %.12g want %.12g", what, got, want);
}
#define TIGHT_A 1e-10
#define TIGHT_R 1e-8

typedef enum { T_CR1, T_CR2, T_DR, T_DR4, T_SVD_FRO, T_SVD_SUM, T_CE } nlg_term;

/* One NLG term through both APIs. */
static void nlg_case(bl_reg_ws *ws, nlg_term term, const char *key, const double *fine, const double *pre,
                     const int64_t *labels) {
    char gk[96];
    snprintf(gk, sizeof gk, "%s_grad", key);
    double want = get_scalar(key), want_g[NLG_N], got_g[NLG_N] = {0}, v = 0;
    get_f64(gk, want_g, NLG_N);
    float ff[NLG_N], fp[NLG_N], fg[NLG_N] = {0};
    for (int i = 0; i < NLG_N; i++) { ff[i] = (float)fine[i]; fp[i] = (float)pre[i]; }
    double vf = 0;
    switch (term) {
    case T_CR1: case T_CR2: {
        double tau = term == T_CR1 ? 1.0 : 2.0;
        CHECK_OK(bl_reg_nlg_cr_d(ws, NLG_B, NLG_T, NLG_V, fine, pre, labels, tau, 1.0, got_g, &v));
        CHECK_OK(bl_reg_nlg_cr(ws, NLG_B, NLG_T, NLG_V, ff, fp, labels, tau, 1.0, fg, &vf));
        break;
    }
    case T_DR: case T_DR4: {
        int64_t K = term == T_DR ? 0 : 4;
        CHECK_OK(bl_reg_nlg_dr_d(ws, NLG_B, NLG_T, NLG_V, fine, labels, K, 1.0, got_g, &v));
        CHECK_OK(bl_reg_nlg_dr(ws, NLG_B, NLG_T, NLG_V, ff, labels, K, 1.0, fg, &vf));
        break;
    }
    case T_SVD_FRO: case T_SVD_SUM: {
        bl_svd_norm n = term == T_SVD_FRO ? BL_SVD_NORM_FRO : BL_SVD_NORM_SUM;
        CHECK_OK(bl_reg_nlg_svdr_d(ws, NLG_B, NLG_T, NLG_V, fine, labels, 2, n, 1.0, got_g, &v));
        CHECK_OK(bl_reg_nlg_svdr(ws, NLG_B, NLG_T, NLG_V, ff, labels, 2, n, 1.0, fg, &vf));
        break;
    }
    case T_CE:
        CHECK_OK(bl_reg_nlg_ce_d(ws, NLG_B, NLG_T, NLG_V, fine, labels, 1.0, got_g, &v));
        CHECK_OK(bl_reg_nlg_ce(ws, NLG_B, NLG_T, NLG_V, ff, labels, 1.0, fg, &vf));
        break;
    }
    char what[128];
    snprintf(what, sizeof what, "%s (double)", key);
    close_scalar(what, v, want, TIGHT_A, TIGHT_R);
    close_d(what, got_g, want_g, NLG_N, TIGHT_A, TIGHT_R);
    snprintf(what, sizeof what, "%s (float)", key);
    close_scalar(what, vf, want, T_GOLDEN_ATOL, T_GOLDEN_RTOL);
    close_f(what, fg, want_g, NLG_N);
}

typedef enum { U_CR, U_DR, U_SVD, U_SVD_RATIO } nlu_term;

static void nlu_case(bl_reg_ws *ws, nlu_term term, const char *key, const double *fine, const double *pre) {
    enum { N = NLU_N * NLU_C };
    char gk[96];
    snprintf(gk, sizeof gk, "%s_grad", key);
    double want = get_scalar(key), want_g[N], got_g[N] = {0}, v = 0, vf = 0;
    get_f64(gk, want_g, N);
    float ff[N], fp[N], fg[N] = {0};
    for (int i = 0; i < N; i++) { ff[i] = (float)fine[i]; fp[i] = (float)pre[i]; }
    switch (term) {
    case U_CR:
        CHECK_OK(bl_reg_nlu_cr_d(ws, NLU_N, NLU_C, fine, pre, 1.0, got_g, &v));
        CHECK_OK(bl_reg_nlu_cr(ws, NLU_N, NLU_C, ff, fp, 1.0, fg, &vf));
        break;
    case U_DR:
        CHECK_OK(bl_reg_nlu_dr_d(ws, NLU_N, NLU_C, fine, 1.0, got_g, &v));
        CHECK_OK(bl_reg_nlu_dr(ws, NLU_N, NLU_C, ff, 1.0, fg, &vf));
        break;
    case U_SVD: case U_SVD_RATIO: {
        bl_svd_norm n = term == U_SVD ? BL_SVD_NORM_NONE : BL_SVD_NORM_SUM;
        CHECK_OK(bl_reg_nlu_svdr_d(ws, NLU_N, NLU_C, fine, 2, n, 1.0, got_g, &v));
        CHECK_OK(bl_reg_nlu_svdr(ws, NLU_N, NLU_C, ff, 2, n, 1.0, fg, &vf));
        break;
    }
    }
    char what[128];
    snprintf(what, sizeof what, "%s (double)", key);
    close_scalar(what, v, want, TIGHT_A, TIGHT_R);
    close_d(what, got_g, want_g, N, TIGHT_A, TIGHT_R);
    snprintf(what, sizeof what, "%s (float)", key);
    close_scalar(what, vf, want, T_GOLDEN_ATOL, T_GOLDEN_RTOL);
    close_f(what, fg, want_g, N);
}

int main(void) {
    const char *shared = t_require_shared();
    char path[4096];
    snprintf(path, sizeof path, "%s/golden/regularizers.safetensors", shared);
    if (bl_st_open(&g_f, path) != BALORA_STATUS_OK) {
        fprintf(stderr, "cannot open %s: %s\n", path, balora_last_error());
        return 1;
    }

    /* ---- NLU ---- */
    double nf[NLU_N * NLU_C], np[NLU_N * NLU_C];
    get_f64("nlu_fine", nf, NLU_N * NLU_C);
    get_f64("nlu_pre", np, NLU_N * NLU_C);
    bl_reg_ws wu;
    CHECK_OK(bl_reg_ws_init(&wu, BL_REG_TASK_NLU, NLU_N, NLU_C, 0));
    nlu_case(&wu, U_CR, "nlu_cr", nf, np);
    nlu_case(&wu, U_DR, "nlu_dr", nf, np);
    nlu_case(&wu, U_SVD, "nlu_svdr_k2", nf, np);
    nlu_case(&wu, U_SVD_RATIO, "nlu_svdr_ratio_k2", nf, np);
    {
        /* paper-v1 NLU total through bl_reg_apply (default config) */
        bl_reg_config c;
        bl_reg_config_default(&c, BL_REG_TASK_NLU);
        double g[NLU_N * NLU_C] = {0}, wg[NLU_N * NLU_C];
        bl_reg_out o;
        CHECK_OK(bl_reg_apply_d(&wu, &c, 0, 100, NLU_N, 1, NLU_C, nf, np, NULL, g, &o));
        get_f64("nlu_total_paper_v1_grad", wg, NLU_N * NLU_C);
        close_scalar("nlu_total_paper_v1", o.total, get_scalar("nlu_total_paper_v1"), TIGHT_A, TIGHT_R);
        close_d("nlu_total_paper_v1_grad", g, wg, NLU_N * NLU_C, TIGHT_A, TIGHT_R);
        CHECK(o.n_pos == NLU_N, "n_pos %lld", (long long)o.n_pos);
        float ff[NLU_N * NLU_C], fp[NLU_N * NLU_C], fg[NLU_N * NLU_C] = {0};
        for (int i = 0; i < NLU_N * NLU_C; i++) { ff[i] = (float)nf[i]; fp[i] = (float)np[i]; }
        CHECK_OK(bl_reg_apply(&wu, &c, 0, 100, NLU_N, 1, NLU_C, ff, fp, NULL, fg, &o));
        close_scalar("nlu_total_paper_v1 (float)", o.total, get_scalar("nlu_total_paper_v1"), T_GOLDEN_ATOL, T_GOLDEN_RTOL);
        close_f("nlu_total_paper_v1_grad (float)", fg, wg, NLU_N * NLU_C);
    }
    bl_reg_ws_free(&wu);

    /* ---- NLG ---- */
    double gf[NLG_N], gp[NLG_N];
    int64_t labels[NLG_B * NLG_T];
    get_f64("nlg_fine", gf, NLG_N);
    get_f64("nlg_pre", gp, NLG_N);
    const bl_st_tensor *lt = bl_st_find(&g_f, "nlg_labels");
    CHECK(lt && lt->numel == NLG_B * NLG_T, "nlg_labels");
    if (lt) CHECK_OK(bl_st_tensor_to_i64(&g_f, lt, labels));
    bl_reg_ws wg;
    CHECK_OK(bl_reg_ws_init(&wg, BL_REG_TASK_NLG, NLG_B * NLG_T, NLG_V, 4));
    nlg_case(&wg, T_CR1, "nlg_cr_tau1", gf, gp, labels);
    nlg_case(&wg, T_CR2, "nlg_cr_tau2", gf, gp, labels);
    nlg_case(&wg, T_DR, "nlg_dr", gf, gp, labels);
    nlg_case(&wg, T_DR4, "nlg_dr_top4", gf, gp, labels);
    nlg_case(&wg, T_SVD_FRO, "nlg_svdr_k2_fro", gf, gp, labels);
    nlg_case(&wg, T_SVD_SUM, "nlg_svdr_k2_sum", gf, gp, labels);
    nlg_case(&wg, T_CE, "nlg_task", gf, gp, labels);
    {
        /* paper-v1 NLG total = task + bl_reg_apply (default config) */
        bl_reg_config c;
        bl_reg_config_default(&c, BL_REG_TASK_NLG);
        double g[NLG_N] = {0}, want_g[NLG_N], task = 0;
        bl_reg_out o;
        CHECK_OK(bl_reg_nlg_ce_d(&wg, NLG_B, NLG_T, NLG_V, gf, labels, 1.0, g, &task));
        CHECK_OK(bl_reg_apply_d(&wg, &c, 0, 100, NLG_B, NLG_T, NLG_V, gf, gp, labels, g, &o));
        get_f64("nlg_total_paper_v1_grad", want_g, NLG_N);
        close_scalar("nlg_total_paper_v1", task + o.total, get_scalar("nlg_total_paper_v1"), TIGHT_A, TIGHT_R);
        close_d("nlg_total_paper_v1_grad", g, want_g, NLG_N, TIGHT_A, TIGHT_R);
        float ff[NLG_N], fp[NLG_N], fg[NLG_N] = {0};
        for (int i = 0; i < NLG_N; i++) { ff[i] = (float)gf[i]; fp[i] = (float)gp[i]; }
        CHECK_OK(bl_reg_nlg_ce(&wg, NLG_B, NLG_T, NLG_V, ff, labels, 1.0, fg, &task));
        CHECK_OK(bl_reg_apply(&wg, &c, 0, 100, NLG_B, NLG_T, NLG_V, ff, fp, labels, fg, &o));
        close_scalar("nlg_total_paper_v1 (float)", task + o.total, get_scalar("nlg_total_paper_v1"), T_GOLDEN_ATOL,
                     T_GOLDEN_RTOL);
        close_f("nlg_total_paper_v1_grad (float)", fg, want_g, NLG_N);
    }
    bl_reg_ws_free(&wg);
    bl_st_close(&g_f);
    return t_finish();
}
