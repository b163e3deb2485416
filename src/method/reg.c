/* BA-LoRA's regularisers: see reg.h and docs/METHOD.md section 3. */
#include "method/reg.h"
#include "ops/ops.h"
#include <math.h>
#include <omp.h>
#include <string.h>

#define GRAM_CUTOFF 1e-7 /* sigma <= GRAM_CUTOFF * sigma_max: no gradient on the Gram route */
#define ROWBUF 4          /* rows of ncols doubles of scratch per thread */
#define NORM_EPS 1e-12   /* row-norm floor of the NLU consistency term */
/* Threads only for loops over enough elements: a parallel region costs more than small work,
 * and far more when the cores are oversubscribed. */
#define PAR(work) ((int64_t)(work) >= ((int64_t)1 << 15))

/* ---------------------------------------------------------------- configuration */

void bl_reg_config_default(bl_reg_config *c, bl_reg_task task) {
    memset(c, 0, sizeof *c);
    c->task = task;
    c->lambda1 = 1e-4;
    c->lambda2 = task == BL_REG_TASK_NLU ? 4e-4 : 3e-4;
    c->lambda3 = 1e-4;
    c->svd_k = 3;
    c->tau = 1.0;
    c->top_k_entropy = 0;
    c->svd_norm = task == BL_REG_TASK_NLU ? BL_SVD_NORM_NONE : BL_SVD_NORM_SUM;
    for (int i = 0; i < 3; i++) c->sched[i] = BL_LAMBDA_SCHED_CONSTANT;
    c->warmup_ratio = 0.2;
    c->ramp_ratio = 0.05;
    c->l1_min = -1;
    c->l1_max = -1;
}

balora_status bl_reg_config_recipe(bl_reg_config *c, const char *name, bl_reg_task task) {
    if (!name) return bl_fail(BALORA_STATUS_INVALID, "recipe: no name given; hint: use paper-v1 or paper-v6");
    if (!strcmp(name, "paper-v1")) {
        bl_reg_config_default(c, task);
        return BALORA_STATUS_OK;
    }
    if (!strcmp(name, "paper-v6")) {
        if (task != BL_REG_TASK_NLG)
            return bl_fail(BALORA_STATUS_UNSUPPORTED,
                           "recipe 'paper-v6': defined for NLG only (docs/METHOD.md 3.2); hint: use --recipe paper-v1 "
                           "with --task nlu, or set the lambdas and schedules one by one");
        bl_reg_config_default(c, task);
        c->lambda1 = 0.025;
        c->sched[0] = BL_LAMBDA_SCHED_COSINE;
        c->lambda2 = c->lambda3 = 0.005;
        c->sched[1] = c->sched[2] = BL_LAMBDA_SCHED_TWO_PHASE;
        c->warmup_ratio = 0.2;
        c->ramp_ratio = 0.05;
        c->svd_k = 10;
        c->top_k_entropy = 20;
        c->tau = 2.0;
        c->svd_norm = BL_SVD_NORM_FRO;
        return BALORA_STATUS_OK;
    }
    return bl_fail(BALORA_STATUS_INVALID, "recipe: unknown name '%s'; hint: use paper-v1 or paper-v6", name);
}

balora_status bl_reg_task_parse(const char *name, bl_reg_task *out) {
    if (name && !strcmp(name, "nlu")) { *out = BL_REG_TASK_NLU; return BALORA_STATUS_OK; }
    if (name && !strcmp(name, "nlg")) { *out = BL_REG_TASK_NLG; return BALORA_STATUS_OK; }
    return bl_fail(BALORA_STATUS_INVALID, "task: unknown value '%s'; hint: use nlu or nlg", name ? name : "(null)");
}

static const char *const g_norm_names[] = {"none", "sum", "fro"};
const char *bl_reg_svd_norm_name(bl_svd_norm n) { return (unsigned)n < 3 ? g_norm_names[n] : "?"; }

balora_status bl_reg_svd_norm_parse(const char *name, bl_svd_norm *out) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, g_norm_names[i])) { *out = (bl_svd_norm)i; return BALORA_STATUS_OK; }
    return bl_fail(BALORA_STATUS_INVALID, "svd-norm: unknown value '%s'; hint: use sum, fro or none",
                   name ? name : "(null)");
}

static const char *const g_sched_names[] = {"constant", "cosine", "adaptive", "two_phase", "linear_warmup",
                                            "quadratic_warmup"};
const char *bl_lambda_sched_name(bl_lambda_sched s) {
    return (unsigned)s < BL_LAMBDA_SCHED_COUNT ? g_sched_names[s] : "?";
}

balora_status bl_lambda_sched_parse(const char *name, bl_lambda_sched *out) {
    for (int i = 0; name && i < BL_LAMBDA_SCHED_COUNT; i++)
        if (!strcmp(name, g_sched_names[i])) { *out = (bl_lambda_sched)i; return BALORA_STATUS_OK; }
    return bl_fail(BALORA_STATUS_INVALID,
                   "lambda schedule: unknown value '%s'; hint: use constant, cosine, adaptive (lambda1), "
                   "two_phase, linear_warmup or quadratic_warmup", name ? name : "(null)");
}

static balora_status config_check(const bl_reg_config *c, int64_t ncols, bool warn);
balora_status bl_reg_config_check(const bl_reg_config *c, int64_t ncols) { return config_check(c, ncols, true); }

static balora_status config_check(const bl_reg_config *c, int64_t ncols, bool warn) {
    const double l[3] = {c->lambda1, c->lambda2, c->lambda3};
    for (int i = 0; i < 3; i++) {
        if (!(l[i] >= 0) || isinf(l[i]))
            return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: field 'lambda%d' = %g: must be a finite number >= 0; "
                           "hint: 0 switches the term off", i + 1, l[i]);
        if ((unsigned)c->sched[i] >= BL_LAMBDA_SCHED_COUNT)
            return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: field 'sched%d': unknown schedule %d", i + 1, (int)c->sched[i]);
        if (i > 0 && c->sched[i] == BL_LAMBDA_SCHED_ADAPTIVE)
            return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: lambda%d schedule 'adaptive': defined for lambda1 only "
                           "(docs/METHOD.md 3.4); hint: use two_phase, linear_warmup or quadratic_warmup", i + 1);
    }
    if (c->task != BL_REG_TASK_NLU && c->task != BL_REG_TASK_NLG)
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: field 'task': unknown task %d", (int)c->task);
    if (ncols < 1) return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: %lld output columns; need >= 1", (long long)ncols);
    if (c->svd_k < 1)
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: field 'svd_k' = %lld: must be >= 1", (long long)c->svd_k);
    if (!(c->tau > 0) || isinf(c->tau))
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: field 'tau' = %g: must be > 0", c->tau);
    if (c->top_k_entropy < 0)
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: field 'top_k_entropy' = %lld: must be >= 0 (0 = full softmax)",
                       (long long)c->top_k_entropy);
    if ((unsigned)c->svd_norm > BL_SVD_NORM_FRO)
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: field 'svd_norm': unknown value %d", (int)c->svd_norm);
    if (!(c->warmup_ratio >= 0 && c->warmup_ratio <= 1) || !(c->ramp_ratio >= 0 && c->ramp_ratio <= 1))
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: warmup ratio %g / ramp ratio %g: must lie in [0, 1]",
                       c->warmup_ratio, c->ramp_ratio);
    if (c->sched[0] == BL_LAMBDA_SCHED_ADAPTIVE && c->l1_min >= 0 && c->l1_max >= 0 && c->l1_min > c->l1_max)
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA config: adaptive lambda1: l1_min %g > l1_max %g", c->l1_min, c->l1_max);

    /* Settings under which a term is constant (zero gradient) or does nothing: warn, never silence. */
    if (!warn) return BALORA_STATUS_OK;
    if (c->lambda3 > 0 && c->svd_norm == BL_SVD_NORM_SUM && c->svd_k >= ncols)
        bl_log(BL_WARN, "BA-LoRA: svd_k = %lld >= %lld columns with svd_norm = sum: L_SVDR = -(sum of all)/(sum of all) = -1 "
               "is constant and has zero gradient; use svd_k < %lld or svd_norm = fro/none",
               (long long)c->svd_k, (long long)ncols, (long long)ncols);
    if (c->lambda3 > 0 && c->svd_norm != BL_SVD_NORM_NONE && ncols == 1)
        bl_log(BL_WARN, "BA-LoRA: 1 output column: the logits matrix has rank 1 and L_SVDR (norm %s) is constant",
               bl_reg_svd_norm_name(c->svd_norm));
    if (c->task == BL_REG_TASK_NLU && ncols == 1) {
        if (c->lambda1 > 0)
            bl_log(BL_WARN, "BA-LoRA: 1 output column: every row normalises to +-1, L_CR is constant (zero gradient)");
        if (c->lambda2 > 0)
            bl_log(BL_WARN, "BA-LoRA: 1 output column: the covariance has no off-diagonal entry, L_DR is constant 0");
    }
    if (c->task == BL_REG_TASK_NLG && c->lambda2 > 0 && c->top_k_entropy == 1)
        bl_log(BL_WARN, "BA-LoRA: top_k_entropy = 1: the entropy of one renormalised probability is 0, L_DR is constant");
    if (c->task == BL_REG_TASK_NLG && c->lambda2 > 0 && c->top_k_entropy >= ncols && c->top_k_entropy > 1)
        bl_log(BL_WARN, "BA-LoRA: top_k_entropy = %lld >= vocabulary %lld: same as the full entropy",
               (long long)c->top_k_entropy, (long long)ncols);
    if (c->task == BL_REG_TASK_NLU && c->top_k_entropy > 0)
        bl_log(BL_WARN, "BA-LoRA: top_k_entropy applies to NLG only; ignored for NLU");
    return BALORA_STATUS_OK;
}

double bl_reg_lambda(const bl_reg_config *c, int i, int64_t t, int64_t S, double conf) {
    const double base = i == 0 ? c->lambda1 : i == 1 ? c->lambda2 : c->lambda3;
    const double ts = S > 0 ? (double)(t < 0 ? 0 : t > S ? S : t) : 0;
    const double w = c->warmup_ratio * (double)S;
    switch (c->sched[i]) {
    case BL_LAMBDA_SCHED_CONSTANT: return base;
    case BL_LAMBDA_SCHED_COSINE: return S > 0 ? 0.1 * base + 0.9 * base * (1 + cos(M_PI * ts / (double)S)) / 2 : base;
    case BL_LAMBDA_SCHED_ADAPTIVE: {
        double lo = c->l1_min >= 0 ? c->l1_min : 0.1 * base, hi = c->l1_max >= 0 ? c->l1_max : base;
        double cf = conf < 0 ? 0 : conf > 1 ? 1 : conf;
        return lo + (hi - lo) * cf;
    }
    case BL_LAMBDA_SCHED_TWO_PHASE: {
        if (ts < w) return 0;
        double p = c->ramp_ratio * (double)S;
        return p > 0 ? base * fmin(1.0, (ts - w) / p) : base;
    }
    case BL_LAMBDA_SCHED_LINEAR_WARMUP: return w > 0 ? base * fmin(1.0, ts / w) : base;
    case BL_LAMBDA_SCHED_QUADRATIC_WARMUP: { double f = w > 0 ? fmin(1.0, ts / w) : 1.0; return base * f * f; }
    default: return base;
    }
}

/* ---------------------------------------------------------------- workspace */

balora_status bl_reg_ws_init(bl_reg_ws *ws, bl_reg_task task, int64_t max_rows, int64_t ncols, int64_t max_k) {
    memset(ws, 0, sizeof *ws);
    if (max_rows < 1 || ncols < 1 || max_k < 0)
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA workspace: rows %lld, columns %lld, top-K %lld: need rows >= 1, "
                       "columns >= 1, top-K >= 0", (long long)max_rows, (long long)ncols, (long long)max_k);
    ws->max_rows = max_rows;
    ws->ncols = ncols;
    ws->max_k = max_k < ncols ? max_k : ncols;
    ws->nthreads = omp_get_max_threads();
    ws->chunk = ncols < 512 ? ncols : 512;
    const int64_t mg = max_rows < ncols / 2 ? max_rows : ncols / 2; /* most rows on the Gram route */
    const bool need_svd = ncols < 2 * max_rows;                       /* gesdd route possible */
    const int64_t mn = max_rows < ncols ? max_rows : ncols;

    /* LAPACK workspace sizes (queries, no allocation). */
    int64_t lwork = 1, liwork = 1;
    if (mg >= 1) /* bl_eigh_d's work (1 + 6 mg + 2 mg^2) also holds two [mg, mg] blocks for P */
        bl_eigh_work_d(mg, &lwork, &liwork);
    if (need_svd) {
        int64_t lw, liw;
        balora_status st = bl_svd_work_d(max_rows, ncols, &lw, &liw);
        if (st != BALORA_STATUS_OK) return bl_fail_prefix(st, "BA-LoRA workspace");
        if (lw > lwork) lwork = lw;
        if (liw > liwork) liwork = liw;
    }
    if (lwork > INT32_MAX || liwork > INT32_MAX || (need_svd && max_rows * ncols > INT32_MAX))
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "BA-LoRA workspace: %lld rows x %lld columns exceed LAPACK's 32-bit "
                       "sizes for the SVD term; hint: use fewer positions per batch (B*T)", (long long)max_rows,
                       (long long)ncols);
    ws->n_lwork = lwork;
    ws->n_iwork = liwork;

    bl_arena *a = &ws->arena;
    for (int pass = 0; pass < 2; pass++) {
        ws->rows = bl_arena_take(a, (size_t)max_rows * sizeof(int64_t));
        ws->row_val = bl_arena_take(a, (size_t)max_rows * sizeof(double));
        ws->row_buf = bl_arena_take(a, (size_t)ws->nthreads * ROWBUF * (size_t)ncols * sizeof(double));
        ws->topk_idx = bl_arena_take(a, (size_t)ws->nthreads * (size_t)(ws->max_k + 1) * sizeof(int64_t));
        ws->eig = bl_arena_take(a, (size_t)mn * sizeof(double));
        ws->coef = bl_arena_take(a, (size_t)mn * sizeof(double));
        ws->lwork = bl_arena_take(a, (size_t)lwork * sizeof(double));
        ws->iwork = bl_arena_take(a, (size_t)liwork * sizeof(int));
        if (mg >= 1) {
            ws->gram = bl_arena_take(a, (size_t)mg * (size_t)mg * sizeof(double));
            ws->blk_in = bl_arena_take(a, (size_t)mg * (size_t)ws->chunk * sizeof(double));
            ws->blk_out = bl_arena_take(a, (size_t)mg * (size_t)ws->chunk * sizeof(double));
            ws->blk_t = bl_arena_take(a, (size_t)mg * (size_t)ws->chunk * sizeof(double));
        }
        if (need_svd || task == BL_REG_TASK_NLU)
            ws->zd = bl_arena_take(a, (size_t)max_rows * (size_t)ncols * sizeof(double));
        if (need_svd) {
            ws->u = bl_arena_take(a, (size_t)max_rows * (size_t)mn * sizeof(double));
            ws->vt = bl_arena_take(a, (size_t)mn * (size_t)ncols * sizeof(double));
        }
        if (task == BL_REG_TASK_NLG) {
            ws->stat = bl_arena_take(a, (size_t)max_rows * 8 * sizeof(double));
            ws->topk_rows = bl_arena_take(a, (size_t)max_rows * (size_t)(ws->max_k + 1) * sizeof(int64_t));
            ws->t_rows = bl_arena_take(a, (size_t)BL_REG_TEACHER_ROWS * (size_t)ncols * sizeof(float));
            ws->t_blk = bl_arena_take(a, (size_t)max_rows * (size_t)ws->chunk * sizeof(float));
            ws->t_stat = bl_arena_take(a, (size_t)max_rows * 2 * sizeof(double));
        }
        if (task == BL_REG_TASK_NLU) {
            ws->nlu_g = bl_arena_take(a, (size_t)max_rows * (size_t)ncols * sizeof(double));
            ws->cov = bl_arena_take(a, (size_t)ncols * (size_t)ncols * sizeof(double));
        }
        if (pass == 0) {
            balora_status st = bl_arena_alloc(a);
            if (st != BALORA_STATUS_OK)
                return bl_fail_prefix(st, "BA-LoRA workspace for %lld rows x %lld columns (%.1f MiB): ",
                                      (long long)max_rows, (long long)ncols, (double)a->used / 1048576.0);
        }
    }
    return BALORA_STATUS_OK;
}

void bl_reg_ws_free(bl_reg_ws *ws) {
    bl_arena_free(&ws->arena);
    memset(ws, 0, sizeof *ws);
}

/* ---------------------------------------------------------------- float / double arrays */

/* One implementation for float and double arrays: exactly one of f, d is set. */
typedef struct { const float *f; const double *d; } rin;
typedef struct { float *f; double *d; } rout;
#define RIN_F(p) ((rin){(p), NULL})
#define RIN_D(p) ((rin){NULL, (p)})
#define ROUT_F(p) ((rout){(p), NULL})
#define ROUT_D(p) ((rout){NULL, (p)})
static inline bool rin_null(rin a) { return !a.f && !a.d; }
static inline bool rout_null(rout a) { return !a.f && !a.d; }

/* Loads a row as double; returns the sum of its entries: not finite iff the row holds NaN or Inf. */
static inline double ld_row(rin a, int64_t off, int64_t n, double *dst) {
    double s = 0;
    if (a.f) for (int64_t j = 0; j < n; j++) { dst[j] = a.f[off + j]; s += dst[j]; }
    else for (int64_t j = 0; j < n; j++) { dst[j] = a.d[off + j]; s += dst[j]; }
    return s;
}
/* g[off .. off+n) += w * src */
static inline void add_row(rout g, int64_t off, int64_t n, double w, const double *src) {
    if (g.f) for (int64_t j = 0; j < n; j++) g.f[off + j] += (float)(w * src[j]);
    else for (int64_t j = 0; j < n; j++) g.d[off + j] += w * src[j];
}
static inline void add_one(rout g, int64_t i, double v) {
    if (g.f) g.f[i] += (float)v; else g.d[i] += v;
}

/* Threads for a region: the current setting, at most what the workspace has scratch for. */
static inline int nthr(const bl_reg_ws *ws) {
    int n = omp_get_max_threads();
    return n < ws->nthreads ? n : ws->nthreads;
}

/* ---------------------------------------------------------------- shapes and masks */

static balora_status check_shape(const bl_reg_ws *ws, const char *what, int64_t rows, int64_t cols) {
    if (!ws || !ws->arena.base)
        return bl_fail(BALORA_STATUS_INVALID, "%s: workspace not initialised; hint: call bl_reg_ws_init first", what);
    if (rows < 1 || cols < 1)
        return bl_fail(BALORA_STATUS_INVALID, "%s: shape [%lld rows, %lld columns]: both must be >= 1", what,
                       (long long)rows, (long long)cols);
    if (rows > ws->max_rows || cols != ws->ncols)
        return bl_fail(BALORA_STATUS_INVALID, "%s: shape [%lld rows, %lld columns] does not fit the workspace "
                       "(at most %lld rows, exactly %lld columns); hint: size bl_reg_ws_init for the largest batch",
                       what, (long long)rows, (long long)cols, (long long)ws->max_rows, (long long)ws->ncols);
    return BALORA_STATUS_OK;
}

/* Rows of [B*T, V] that the terms see: with labels, (b, t) iff t + 1 < T and labels[b, t+1] != -100
 * (the causal shift); without labels, every row. Labels must be -100 or in [0, V). */
static balora_status build_rows(bl_reg_ws *ws, const char *what, int64_t B, int64_t T, int64_t V,
                                const int64_t *labels, int64_t *M) {
    if (B < 1 || T < 1) return bl_fail(BALORA_STATUS_INVALID, "%s: B = %lld, T = %lld: both must be >= 1", what,
                                       (long long)B, (long long)T);
    if (B > INT64_MAX / T) return bl_fail(BALORA_STATUS_INVALID, "%s: B * T overflows", what);
    BL_TRY(check_shape(ws, what, B * T, V));
    int64_t m = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            if (!labels) { ws->rows[m++] = b * T + t; continue; }
            int64_t lab = labels[b * T + t];
            if (lab != -100 && (lab < 0 || lab >= V))
                return bl_fail(BALORA_STATUS_INVALID, "%s: labels[%lld, %lld] = %lld: must be -100 (ignored) or a token id "
                               "in [0, %lld)", what, (long long)b, (long long)t, (long long)lab, (long long)V);
            if (t + 1 < T && labels[b * T + t + 1] != -100) ws->rows[m++] = b * T + t;
        }
    if (m == 0)
        return bl_fail(BALORA_STATUS_INVALID, "%s: no trained position (every next-token label is -100); hint: the "
                       "batch needs at least one position t with labels[t+1] != -100", what);
    *M = m;
    return BALORA_STATUS_OK;
}

/* p = softmax(scale * x) into p[0..n) (one exp per element); returns logsumexp(scale * x). */
static inline double softmax_row(const double *x, int64_t n, double scale, double *p) {
    double m = -INFINITY;
    for (int64_t j = 0; j < n; j++) if (x[j] * scale > m) m = x[j] * scale;
    double s = 0;
    for (int64_t j = 0; j < n; j++) { p[j] = exp(x[j] * scale - m); s += p[j]; }
    const double inv = 1.0 / s;
    for (int64_t j = 0; j < n; j++) p[j] *= inv;
    return m + log(s);
}

static balora_status check_finite_rows(const char *what, const double *vals, int64_t M) {
    for (int64_t i = 0; i < M; i++)
        if (!isfinite(vals[i]))
            return bl_fail(BALORA_STATUS_INVALID, "%s: non-finite value on row %lld (NaN or Inf in the logits); hint: "
                           "the model diverged or the inputs are corrupt", what, (long long)i);
    return BALORA_STATUS_OK;
}

/* Sum of per-row values in row order (deterministic). */
static double sum_rows(const double *v, int64_t M) {
    double s = 0;
    for (int64_t i = 0; i < M; i++) s += v[i];
    return s;
}

/* ---------------------------------------------------------------- NLG: consistency, diversity, task */

static balora_status nlg_cr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, rin z, rin zp, const int64_t *labels,
                            double tau, double weight, rout grad, double *value) {
    const char *what = "BA-LoRA L_CR (NLG)";
    if (rin_null(z) || rin_null(zp)) return bl_fail(BALORA_STATUS_INVALID, "%s: logits or teacher logits missing", what);
    if (!(tau > 0)) return bl_fail(BALORA_STATUS_INVALID, "%s: tau = %g: must be > 0", what, tau);
    int64_t M;
    BL_TRY(build_rows(ws, what, B, T, V, labels, &M));
    const double inv_tau = 1.0 / tau, gscale = tau / (double)M;
    const bool want_grad = !rout_null(grad) && weight != 0;
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(M * V))
    for (int64_t i = 0; i < M; i++) {
        double *x = ws->row_buf + (size_t)omp_get_thread_num() * ROWBUF * (size_t)V; /* [V] teacher */
        double *y = x + V;                                                             /* [V] student, then grad */
        double *p = y + V, *q = p + V;                                                 /* [V] softmaxes */
        const int64_t off = ws->rows[i] * V;
        const double fin = ld_row(zp, off, V, x) + ld_row(z, off, V, y);
        if (!isfinite(fin)) { ws->row_val[i] = NAN; continue; }
        const double lp = softmax_row(x, V, inv_tau, p), lq = softmax_row(y, V, inv_tau, q);
        double kl = 0;
        for (int64_t j = 0; j < V; j++) {
            if (p[j] > 0) kl += p[j] * ((x[j] - y[j]) * inv_tau - lp + lq);
            y[j] = gscale * (q[j] - p[j]); /* d/dz of tau^2 KL / M */
        }
        ws->row_val[i] = kl;
        if (want_grad) add_row(grad, off, V, weight, y);
    }
    BL_TRY(check_finite_rows(what, ws->row_val, M));
    *value = tau * tau * sum_rows(ws->row_val, M) / (double)M;
    return BALORA_STATUS_OK;
}

/* Indices of the K largest of y[0..V) into idx (unordered), by a min-heap. */
static void top_k_indices(const double *y, int64_t V, int64_t K, int64_t *idx) {
    int64_t n = 0;
    for (int64_t j = 0; j < V; j++) {
        if (n < K) { /* sift up */
            int64_t c = n++;
            idx[c] = j;
            while (c > 0) {
                int64_t p = (c - 1) / 2;
                if (y[idx[p]] <= y[idx[c]]) break;
                int64_t tmp = idx[p]; idx[p] = idx[c]; idx[c] = tmp; c = p;
            }
        } else if (y[j] > y[idx[0]]) { /* replace the minimum, sift down */
            idx[0] = j;
            int64_t c = 0;
            for (;;) {
                int64_t l = 2 * c + 1, r = l + 1, s = c;
                if (l < K && y[idx[l]] < y[idx[s]]) s = l;
                if (r < K && y[idx[r]] < y[idx[s]]) s = r;
                if (s == c) break;
                int64_t tmp = idx[s]; idx[s] = idx[c]; idx[c] = tmp; c = s;
            }
        }
    }
}

static balora_status nlg_dr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, rin z, const int64_t *labels, int64_t top_k,
                            double weight, rout grad, double *value) {
    const char *what = "BA-LoRA L_DR (NLG)";
    if (rin_null(z)) return bl_fail(BALORA_STATUS_INVALID, "%s: logits missing", what);
    if (top_k < 0) return bl_fail(BALORA_STATUS_INVALID, "%s: top_k_entropy = %lld: must be >= 0", what, (long long)top_k);
    int64_t M;
    BL_TRY(build_rows(ws, what, B, T, V, labels, &M));
    const int64_t K = top_k > 0 && top_k < V ? top_k : 0; /* 0 = full softmax */
    if (K > ws->max_k)
        return bl_fail(BALORA_STATUS_INVALID, "%s: top_k_entropy = %lld exceeds the workspace's %lld; hint: pass it as "
                       "max_k to bl_reg_ws_init", what, (long long)K, (long long)ws->max_k);
    const double inv_m = 1.0 / (double)M;
    const bool want_grad = !rout_null(grad) && weight != 0;
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(M * V))
    for (int64_t i = 0; i < M; i++) {
        const int tid = omp_get_thread_num();
        double *y = ws->row_buf + (size_t)tid * ROWBUF * (size_t)V; /* [V] logits */
        double *g = y + V;                                           /* [V] softmax, then gradient */
        const int64_t off = ws->rows[i] * V;
        if (!isfinite(ld_row(z, off, V, y))) { ws->row_val[i] = NAN; continue; }
        if (K == 0) {
            const double lse = softmax_row(y, V, 1.0, g);
            double h = 0;
            for (int64_t j = 0; j < V; j++)
                if (g[j] > 0) h -= g[j] * (y[j] - lse);
            ws->row_val[i] = h;
            if (want_grad) {
                for (int64_t j = 0; j < V; j++) g[j] *= inv_m * (y[j] - lse + h); /* d(-H/M)/dz_j = q (log q + H) / M */
                add_row(grad, off, V, weight, g);
            }
        } else {
            int64_t *idx = ws->topk_idx + (size_t)tid * (size_t)(ws->max_k + 1);
            top_k_indices(y, V, K, idx);
            double m = -INFINITY, s = 0, h = 0;
            for (int64_t a = 0; a < K; a++) if (y[idx[a]] > m) m = y[idx[a]];
            for (int64_t a = 0; a < K; a++) s += exp(y[idx[a]] - m);
            const double lse = m + log(s);
            for (int64_t a = 0; a < K; a++) {
                double lq = y[idx[a]] - lse, q = exp(lq);
                if (q > 0) h -= q * lq;
            }
            ws->row_val[i] = h;
            if (want_grad)
                for (int64_t a = 0; a < K; a++) {
                    double lq = y[idx[a]] - lse;
                    add_one(grad, off + idx[a], weight * inv_m * exp(lq) * (lq + h));
                }
        }
    }
    BL_TRY(check_finite_rows(what, ws->row_val, M));
    *value = -sum_rows(ws->row_val, M) * inv_m;
    return BALORA_STATUS_OK;
}

static balora_status nlg_ce(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, rin z, const int64_t *labels, double weight,
                            rout grad, double *value) {
    const char *what = "causal-LM cross-entropy";
    if (rin_null(z) || !labels) return bl_fail(BALORA_STATUS_INVALID, "%s: logits or labels missing", what);
    int64_t M;
    BL_TRY(build_rows(ws, what, B, T, V, labels, &M));
    const double inv_m = 1.0 / (double)M;
    const bool want_grad = !rout_null(grad) && weight != 0;
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(M * V))
    for (int64_t i = 0; i < M; i++) {
        double *y = ws->row_buf + (size_t)omp_get_thread_num() * ROWBUF * (size_t)V; /* [V] logits */
        double *q = y + V;                                                             /* [V] softmax, then grad */
        const int64_t r = ws->rows[i], off = r * V, target = labels[r + 1];
        if (!isfinite(ld_row(z, off, V, y))) { ws->row_val[i] = NAN; continue; }
        const double lse = softmax_row(y, V, 1.0, q);
        ws->row_val[i] = lse - y[target];
        if (want_grad) {
            for (int64_t j = 0; j < V; j++) q[j] *= inv_m;
            q[target] -= inv_m;
            add_row(grad, off, V, weight, q);
        }
    }
    BL_TRY(check_finite_rows(what, ws->row_val, M));
    *value = sum_rows(ws->row_val, M) * inv_m;
    return BALORA_STATUS_OK;
}

static balora_status teacher_conf(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, rin zp, const int64_t *labels,
                                  double tau, double *conf) {
    const char *what = "BA-LoRA adaptive lambda1";
    if (rin_null(zp)) return bl_fail(BALORA_STATUS_INVALID, "%s: teacher logits missing", what);
    if (!(tau > 0)) return bl_fail(BALORA_STATUS_INVALID, "%s: tau = %g: must be > 0", what, tau);
    int64_t M;
    BL_TRY(build_rows(ws, what, B, T, V, labels, &M));
    if (V == 1) { *conf = 1; return BALORA_STATUS_OK; }
    const double inv_tau = 1.0 / tau, logv = log((double)V);
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(M * V))
    for (int64_t i = 0; i < M; i++) {
        double *x = ws->row_buf + (size_t)omp_get_thread_num() * ROWBUF * (size_t)V; /* [V] logits */
        double *p = x + V;                                                             /* [V] softmax */
        if (!isfinite(ld_row(zp, ws->rows[i] * V, V, x))) { ws->row_val[i] = NAN; continue; }
        const double lse = softmax_row(x, V, inv_tau, p);
        double h = 0;
        for (int64_t j = 0; j < V; j++)
            if (p[j] > 0) h -= p[j] * (x[j] * inv_tau - lse);
        double r = h / logv;
        ws->row_val[i] = 1 - (r < 0 ? 0 : r > 1 ? 1 : r);
    }
    BL_TRY(check_finite_rows(what, ws->row_val, M));
    *conf = sum_rows(ws->row_val, M) / (double)M;
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- SVD term (NLU and NLG) */

/* blk[m, 0..w) = z[rows[m], c0 .. c0+w) for m < M. The SVD term's copies run serially: they
 * alternate with BLAS calls, and an OpenMP region between two BLAS calls makes the two thread
 * pools spin against each other (measured: 3.2 s instead of 1.0 s for [512, 32000]). */
static void gather_cols(const bl_reg_ws *ws, rin z, int64_t M, int64_t V, int64_t c0, int64_t w, double *blk) {
    for (int64_t m = 0; m < M; m++) ld_row(z, ws->rows[m] * V + c0, w, blk + m * w);
}

/* L = -(sum of top-k sigma) [/ norm] over the M rows in ws->rows of z [*, V]: the value, and with want_grad
 * what the gradient needs (reading z only): Gram route E, Ed and P in the workspace, gesdd route the
 * whole gradient [M, V] in ws->zd. Then svd_block gives the gradient column block by block.
 * Sets ws->svd_grad (false: no gradient, e.g. all logits zero). */
static balora_status svd_prepare(bl_reg_ws *ws, const char *what, int64_t M, int64_t V, rin z, int64_t k,
                                 bl_svd_norm norm, bool want_grad, double *value) {
    ws->svd_grad = false;
    if (rin_null(z)) return bl_fail(BALORA_STATUS_INVALID, "%s: logits missing", what);
    if (k < 1) return bl_fail(BALORA_STATUS_INVALID, "%s: k = %lld: must be >= 1", what, (long long)k);
    if ((unsigned)norm > BL_SVD_NORM_FRO) return bl_fail(BALORA_STATUS_INVALID, "%s: unknown norm %d", what, (int)norm);
    const int64_t mn = M < V ? M : V, kk = k < mn ? k : mn;
    const bool gram = 2 * M <= V;
    double *sig = ws->eig; /* [mn] singular values, descending */
    double fro2 = 0;       /* ||Z||_F^2 */
    balora_status st;

    if (gram) {
        /* G = Z Z^T in double, one block of columns at a time (row-major upper = col-major lower). */
        double *G = ws->gram; /* [M, M] */
        for (int64_t c0 = 0; c0 < V; c0 += ws->chunk) {
            const int64_t w = V - c0 < ws->chunk ? V - c0 : ws->chunk;
            gather_cols(ws, z, M, V, c0, w, ws->blk_in);
            bl_syrk_d(M, w, 1.0, ws->blk_in, w, c0 == 0 ? 0.0 : 1.0, G, M);
        }
        for (int64_t i = 0; i < M; i++) fro2 += G[i * M + i];
        if (!isfinite(fro2))
            return bl_fail(BALORA_STATUS_INVALID, "%s: NaN or Inf in the logits; hint: the model diverged", what);
        st = bl_eigh_d(M, G, M, ws->coef, ws->lwork, ws->n_lwork, ws->iwork, ws->n_iwork);
        if (st != BALORA_STATUS_OK) return bl_fail_prefix(st, "%s: Gram matrix", what);
        /* ascending eigenvalues in coef; eigenvector j is row j of G */
        for (int64_t i = 0; i < M; i++) {
            double e = ws->coef[M - 1 - i];
            sig[i] = e > 0 ? sqrt(e) : 0;
        }
    } else {
        double *zd = ws->zd; /* [M, V] */
        gather_cols(ws, z, M, V, 0, V, zd);
        for (int64_t i = 0; i < M * V; i++) fro2 += zd[i] * zd[i];
        if (!isfinite(fro2))
            return bl_fail(BALORA_STATUS_INVALID, "%s: NaN or Inf in the logits; hint: the model diverged", what);
        st = bl_svd_d(M, V, zd, sig, ws->u, ws->vt, ws->lwork, ws->n_lwork, ws->iwork, ws->n_iwork);
        if (st != BALORA_STATUS_OK) return bl_fail_prefix(st, "%s", what);
        /* u: row-major [M, mn] = U; vt: row-major [mn, V] = V^T */
    }

    double a = 0, sum = 0;
    for (int64_t i = 0; i < mn; i++) { if (i < kk) a += sig[i]; sum += sig[i]; }
    const double b = norm == BL_SVD_NORM_SUM ? sum : norm == BL_SVD_NORM_FRO ? sqrt(fro2) : 1.0;
    if (norm != BL_SVD_NORM_NONE && !(b > 0)) {
        if (!ws->warned_const) bl_log(BL_WARN, "%s: all logits are zero: the ratio is 0/0; term set to 0", what);
        ws->warned_const = true;
        *value = 0;
        return BALORA_STATUS_OK;
    }
    if (norm == BL_SVD_NORM_SUM && kk >= mn && !ws->warned_const) {
        bl_log(BL_WARN, "%s: k = %lld >= min(rows, columns) = %lld with the sum norm: the term is constant -1 "
               "(zero gradient) for this batch", what, (long long)k, (long long)mn);
        ws->warned_const = true;
    }
    *value = -a / b;
    if (!want_grad) return BALORA_STATUS_OK;

    /* dL/dsigma_i (coef) and beta, the coefficient of Z itself: grad = U diag(coef) V^T + beta Z. */
    double beta = 0;
    for (int64_t i = 0; i < mn; i++) {
        double c = i < kk ? -1.0 / b : 0.0;
        if (norm == BL_SVD_NORM_SUM) c += a / (b * b);
        ws->coef[i] = c; /* (the Gram route's eigenvalues were copied to sig) */
    }
    if (norm == BL_SVD_NORM_FRO) beta = a / (b * b * b);

    if (gram) {
        /* grad rows = P Z with P = sum_i (coef_i / sigma_i) e_i e_i^T + beta I (sigma_i above the cutoff). */
        const double cut = GRAM_CUTOFF * sig[0];
        int64_t nu = 0; /* used eigenvectors: the top nu, i.e. the last nu rows of G */
        for (int64_t i = 0; i < M; i++) if (sig[i] > cut && ws->coef[i] != 0) nu = i + 1;
        double *E = ws->gram + (M - nu) * M; /* [nu, M] eigenvectors, ascending */
        double *Ed = ws->lwork;              /* [nu, M] scaled */
        double *P = ws->lwork + M * M;       /* [M, M] */
        for (int64_t r = 0; r < nu; r++) {
            int64_t i = nu - 1 - r; /* row r of E is the (i)-th largest */
            double d = sig[i] > cut ? ws->coef[i] / sig[i] : 0.0;
            for (int64_t j = 0; j < M; j++) Ed[r * M + j] = d * E[r * M + j];
        }
        /* Few directions (fro / none norms: the top k): grad = E^T (Ed Z) + beta Z costs 2 nu M V;
         * otherwise form P once and grad = P Z costs M^2 V. */
        const bool low_rank = 2 * nu < M;
        if (!low_rank) {
            bl_gemm_d(true, false, M, M, nu, 1.0, E, M, Ed, M, 0.0, P, M);
            for (int64_t i = 0; i < M; i++) P[i * M + i] += beta;
        }
        ws->svd_nu = nu;
        ws->svd_low_rank = low_rank;
        ws->svd_beta = beta;
    } else {
        double *U = ws->u, *VT = ws->vt, *out = ws->zd; /* [M, mn], [mn, V], [M, V] */
        for (int64_t m = 0; m < M; m++)
            for (int64_t i = 0; i < mn; i++) U[m * mn + i] *= ws->coef[i];
        bl_gemm_d(false, false, M, V, mn, 1.0, U, mn, VT, V, 0.0, out, V);
        if (beta != 0) {
            for (int64_t m = 0; m < M; m++) {
                double *x = ws->row_buf;
                ld_row(z, ws->rows[m] * V, V, x);
                for (int64_t j = 0; j < V; j++) out[m * V + j] += beta * x[j];
            }
        }
    }
    ws->svd_gram = gram;
    ws->svd_grad = true;
    return BALORA_STATUS_OK;
}

/* The SVD term's gradient (unweighted) on columns [c0, c0 + w) of the M rows, after svd_prepare:
 * *out [M, w] with row stride *ld. Gram route: reads those columns of z (so z must still hold the
 * logits there) and fills ws->blk_out; gesdd route: points into ws->zd. w <= ws->chunk. */
static void svd_block(bl_reg_ws *ws, int64_t M, int64_t V, rin z, int64_t c0, int64_t w, const double **out, int64_t *ld) {
    if (!ws->svd_gram) { *out = ws->zd + c0; *ld = V; return; }
    const int64_t nu = ws->svd_nu;
    const double beta = ws->svd_beta;
    const double *E = ws->gram + (M - nu) * M, *Ed = ws->lwork, *P = ws->lwork + M * M;
    double *in = ws->blk_in, *outb = ws->blk_out; /* [M, w] */
    gather_cols(ws, z, M, V, c0, w, in);
    if (ws->svd_low_rank) {
        for (int64_t i = 0; i < M * w; i++) outb[i] = beta * in[i];
        if (nu > 0) {
            bl_gemm_d(false, false, nu, w, M, 1.0, Ed, M, in, w, 0.0, ws->blk_t, w); /* [nu, w] */
            bl_gemm_d(true, false, M, w, nu, 1.0, E, M, ws->blk_t, w, 1.0, outb, w);
        }
    } else {
        bl_gemm_d(false, false, M, w, M, 1.0, P, M, in, w, 0.0, outb, w);
    }
    *out = outb;
    *ld = w;
}

static balora_status svd_term(bl_reg_ws *ws, const char *what, int64_t M, int64_t V, rin z, int64_t k, bl_svd_norm norm,
                              double weight, rout grad, double *value) {
    const bool want_grad = !rout_null(grad) && weight != 0;
    BL_TRY(svd_prepare(ws, what, M, V, z, k, norm, want_grad, value));
    if (!want_grad || !ws->svd_grad) return BALORA_STATUS_OK;
    const int64_t bw = ws->svd_gram ? ws->chunk : V;
    for (int64_t c0 = 0; c0 < V; c0 += bw) {
        const int64_t w = V - c0 < bw ? V - c0 : bw;
        const double *out;
        int64_t ld;
        svd_block(ws, M, V, z, c0, w, &out, &ld);
        for (int64_t m = 0; m < M; m++) add_row(grad, ws->rows[m] * V + c0, w, weight, out + m * ld);
    }
    return BALORA_STATUS_OK;
}

static balora_status nlg_svdr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, rin z, const int64_t *labels, int64_t k,
                              bl_svd_norm norm, double weight, rout grad, double *value) {
    const char *what = "BA-LoRA L_SVDR (NLG)";
    int64_t M;
    BL_TRY(build_rows(ws, what, B, T, V, labels, &M));
    return svd_term(ws, what, M, V, z, k, norm, weight, grad, value);
}

static balora_status nlu_svdr(bl_reg_ws *ws, int64_t N, int64_t C, rin z, int64_t k, bl_svd_norm norm, double weight,
                              rout grad, double *value) {
    const char *what = "BA-LoRA L_SVDR (NLU)";
    int64_t M;
    BL_TRY(build_rows(ws, what, N, 1, C, NULL, &M));
    return svd_term(ws, what, M, C, z, k, norm, weight, grad, value);
}

/* ---------------------------------------------------------------- NLU: consistency, diversity */

static balora_status nlu_cr(bl_reg_ws *ws, int64_t N, int64_t C, rin z, rin zp, double weight, rout grad, double *value) {
    const char *what = "BA-LoRA L_CR (NLU)";
    if (rin_null(z) || rin_null(zp)) return bl_fail(BALORA_STATUS_INVALID, "%s: outputs or teacher outputs missing", what);
    int64_t M;
    BL_TRY(build_rows(ws, what, N, 1, C, NULL, &M));
    const double scale = 2.0 / ((double)N * (double)C);
    const bool want_grad = !rout_null(grad) && weight != 0;
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(N * C))
    for (int64_t i = 0; i < N; i++) {
        double *x = ws->row_buf + (size_t)omp_get_thread_num() * ROWBUF * (size_t)C; /* [C] teacher */
        double *y = x + C;                                                        /* [C] student */
        if (!isfinite(ld_row(zp, i * C, C, x) + ld_row(z, i * C, C, y))) { ws->row_val[i] = NAN; continue; }
        double nx = 0, ny = 0;
        for (int64_t j = 0; j < C; j++) { nx += x[j] * x[j]; ny += y[j] * y[j]; }
        nx = fmax(sqrt(nx), NORM_EPS);
        const double nyr = sqrt(ny), ny_c = fmax(nyr, NORM_EPS);
        double v = 0, dot = 0;
        for (int64_t j = 0; j < C; j++) {
            double d = y[j] / ny_c - x[j] / nx;
            v += d * d;
            x[j] = scale * d;          /* dL/da_j */
            dot += x[j] * y[j] / ny_c; /* a . dL/da */
        }
        ws->row_val[i] = v;
        if (want_grad) {
            if (nyr > NORM_EPS) for (int64_t j = 0; j < C; j++) y[j] = (x[j] - (y[j] / ny_c) * dot) / ny_c;
            else for (int64_t j = 0; j < C; j++) y[j] = x[j] / ny_c;
            add_row(grad, i * C, C, weight, y);
        }
    }
    BL_TRY(check_finite_rows(what, ws->row_val, N));
    *value = sum_rows(ws->row_val, N) / ((double)N * (double)C);
    return BALORA_STATUS_OK;
}

static balora_status nlu_dr(bl_reg_ws *ws, int64_t N, int64_t C, rin z, double weight, rout grad, double *value) {
    const char *what = "BA-LoRA L_DR (NLU)";
    if (rin_null(z)) return bl_fail(BALORA_STATUS_INVALID, "%s: outputs missing", what);
    BL_TRY(check_shape(ws, what, N, C));
    if (!ws->nlu_g) return bl_fail(BALORA_STATUS_INVALID, "%s: workspace was made for NLG; hint: bl_reg_ws_init with "
                                   "BL_REG_TASK_NLU", what);
    *value = 0;
    if (N < 2) { bl_log(BL_VERBOSE, "%s: batch of %lld row: no covariance, term 0", what, (long long)N); return BALORA_STATUS_OK; }
    double *Zc = ws->zd, *cov = ws->cov, *G = ws->nlu_g; /* [N, C], [C, C], [N, C] */
    for (int64_t i = 0; i < N; i++) ld_row(z, i * C, C, Zc + i * C);
    for (int64_t j = 0; j < C; j++) {
        double mu = 0;
        for (int64_t i = 0; i < N; i++) mu += Zc[i * C + j];
        mu /= (double)N;
        for (int64_t i = 0; i < N; i++) Zc[i * C + j] -= mu;
    }
    bl_gemm_d(true, false, C, C, N, 1.0 / (double)(N - 1), Zc, C, Zc, C, 0.0, cov, C);
    double v = 0;
    for (int64_t i = 0; i < C; i++) {
        cov[i * C + i] = 0;
        for (int64_t j = 0; j < C; j++) v += cov[i * C + j] * cov[i * C + j];
    }
    if (!isfinite(v)) return bl_fail(BALORA_STATUS_INVALID, "%s: NaN or Inf in the outputs", what);
    *value = v / (double)C;
    if (rout_null(grad) || weight == 0) return BALORA_STATUS_OK;
    /* dL/dZ = 4/(C (N-1)) Zc Cov_offdiag (column means of Zc are 0, so centring adds nothing). */
    bl_gemm_d(false, false, N, C, C, 4.0 / ((double)C * (double)(N - 1)), Zc, C, cov, C, 0.0, G, C);
    for (int64_t i = 0; i < N; i++) add_row(grad, i * C, C, weight, G + i * C);
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- fused NLG training step */

enum { ST_LSE = 0, ST_LQ, ST_LP, ST_DLSE, ST_H, ST_CR, ST_CONF, ST_N = 8 };

/* Teacher statistics of one row x [V] (float): t[0] = log-sum-exp(x / tau), t[1] = its confidence
 * 1 - clamp(H(softmax(x / tau)) / log V) (V = 1: 1). p: [V] scratch. Returns false if x holds NaN/Inf. */
static bool teacher_row(const float *xf, int64_t V, double inv_tau, double *x, double *p, double *t) {
    if (!isfinite(ld_row(RIN_F(xf), 0, V, x))) return false;
    const double lp = softmax_row(x, V, inv_tau, p);
    double ht = 0;
    for (int64_t j = 0; j < V; j++)
        if (p[j] > 0) ht -= p[j] * (x[j] * inv_tau - lp);
    const double rr = ht / log((double)V);
    t[0] = lp;
    t[1] = V == 1 ? 1 : 1 - (rr < 0 ? 0 : rr > 1 ? 1 : rr);
    return true;
}

balora_status bl_reg_nlg_teacher_stats(bl_reg_ws *ws, const bl_reg_config *c, int64_t B, int64_t T, int64_t V,
                                       const float *zt) {
    const char *what = "BA-LoRA teacher statistics";
    if (!ws || !ws->t_stat || !c || !zt) return bl_fail(BALORA_STATUS_INVALID, "%s: NLG workspace, configuration or teacher logits missing", what);
    if (!(c->tau > 0)) return bl_fail(BALORA_STATUS_INVALID, "%s: tau = %g: must be > 0", what, c->tau);
    if (B < 1 || T < 1 || B > INT64_MAX / T) return bl_fail(BALORA_STATUS_INVALID, "%s: B = %lld, T = %lld", what, (long long)B, (long long)T);
    BL_TRY(check_shape(ws, what, B * T, V));
    const double inv_tau = 1.0 / c->tau;
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(B * T * V))
    for (int64_t r = 0; r < B * T; r++) {
        double *x = ws->row_buf + (size_t)omp_get_thread_num() * ROWBUF * (size_t)V;
        if (!teacher_row(zt + r * V, V, inv_tau, x, x + V, ws->t_stat + 2 * r)) ws->t_stat[2 * r] = NAN;
    }
    return BALORA_STATUS_OK;
}

balora_status bl_reg_nlg_fused(bl_reg_ws *ws, const bl_reg_config *c, int64_t step, int64_t total, int64_t B, int64_t T,
                               int64_t V, float *z, const int64_t *labels, const bl_reg_teacher *teacher, double ce_scale,
                               double weight, double vals[3], double lam_out[3]) {
    const char *what = "BA-LoRA (training step)";
    for (int i = 0; i < 3; i++) vals[i] = lam_out[i] = 0;
    if (!ws || !ws->arena.base || !c || !z || !labels)
        return bl_fail(BALORA_STATUS_INVALID, "%s: workspace, configuration, logits or labels missing", what);
    if (!ws->stat) return bl_fail(BALORA_STATUS_INVALID, "%s: workspace was made for NLU; hint: bl_reg_ws_init with BL_REG_TASK_NLG", what);
    BL_TRY(config_check(c, V, false));
    for (int i = 0; i < 3; i++)
        if (c->sched[i] != BL_LAMBDA_SCHED_CONSTANT && c->sched[i] != BL_LAMBDA_SCHED_ADAPTIVE && total <= 0)
            return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA: lambda%d schedule '%s' needs the total step count (got %lld)",
                           i + 1, bl_lambda_sched_name(c->sched[i]), (long long)total);
    const bool do_cr = c->lambda1 > 0, do_dr = c->lambda2 > 0, do_sv = c->lambda3 > 0;
    const bool do_conf = do_cr && c->sched[0] == BL_LAMBDA_SCHED_ADAPTIVE;
    const bl_reg_teacher *tt = teacher;
    if (do_cr && (!tt || (!tt->logits && (!tt->hidden || !tt->head || tt->C < 1))))
        return bl_fail(BALORA_STATUS_INVALID, "%s: L_CR needs the teacher (logits, or hidden states and the LM head)", what);
    const bool t_hid = do_cr && !tt->logits;
    const int64_t K = c->top_k_entropy > 0 && c->top_k_entropy < V ? c->top_k_entropy : 0;
    if (do_dr && K > ws->max_k)
        return bl_fail(BALORA_STATUS_INVALID, "%s: top_k_entropy = %lld exceeds the workspace's %lld; hint: pass it as "
                       "max_k to bl_reg_ws_init", what, (long long)K, (long long)ws->max_k);
    if (B < 1 || T < 1 || B > INT64_MAX / T)
        return bl_fail(BALORA_STATUS_INVALID, "%s: B = %lld, T = %lld", what, (long long)B, (long long)T);
    BL_TRY(check_shape(ws, what, B * T, V));
    /* the mask (no trained position: the gradient is zero, every term contributes nothing) */
    int64_t M = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t + 1 < T; t++) {
            int64_t lab = labels[b * T + t + 1];
            if (lab == -100) continue;
            if (lab < 0 || lab >= V)
                return bl_fail(BALORA_STATUS_INVALID, "%s: labels[%lld, %lld] = %lld: must be -100 (ignored) or a token id "
                               "in [0, %lld)", what, (long long)b, (long long)(t + 1), (long long)lab, (long long)V);
            ws->rows[M++] = b * T + t;
        }
    if (M == 0) {
        memset(z, 0, (size_t)(B * T * V) * sizeof(float));
        return BALORA_STATUS_OK;
    }
    const double inv_tau = 1.0 / c->tau, inv_m = 1.0 / (double)M, logv = log((double)V);
    double *stat = ws->stat;        /* [M, ST_N] */
    const int64_t mk = ws->max_k + 1;

    /* The teacher from hidden states: its per-row statistics (log-sum-exp at tau, confidence) come from
     * bl_reg_nlg_teacher_stats on its logits (tt->stats) or are computed here, BL_REG_TEACHER_ROWS
     * recomputed rows at a time; its logits are recomputed once more, by column blocks, in pass B. */
    if (t_hid && !tt->stats) {
        for (int64_t r0 = 0, i0 = 0; r0 < B * T && i0 < M; r0 += BL_REG_TEACHER_ROWS) {
            const int64_t nr = B * T - r0 < BL_REG_TEACHER_ROWS ? B * T - r0 : BL_REG_TEACHER_ROWS;
            int64_t i1 = i0;
            while (i1 < M && ws->rows[i1] < r0 + nr) i1++;
            if (i1 == i0) continue;
            bl_linear_fwd(ws->t_rows, tt->hidden + r0 * tt->C, tt->head, NULL, nr, tt->C, V, false);
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR((i1 - i0) * V))
            for (int64_t i = i0; i < i1; i++) {
                double *x = ws->row_buf + (size_t)omp_get_thread_num() * ROWBUF * (size_t)V;
                const int64_t r = ws->rows[i];
                if (!teacher_row(ws->t_rows + (r - r0) * V, V, inv_tau, x, x + V, ws->t_stat + 2 * r)) ws->t_stat[2 * r] = NAN;
            }
            i0 = i1;
        }
    }

    /* Pass A (reads z): per row, the softmax statistics and the term values (L_CR's only with teacher logits). */
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(M * V))
    for (int64_t i = 0; i < M; i++) {
        const int tid = omp_get_thread_num();
        double *y = ws->row_buf + (size_t)tid * ROWBUF * (size_t)V; /* [V] student */
        double *x = y + V, *p = x + V, *q = p + V;                    /* [V] teacher, softmaxes */
        double *st = stat + i * ST_N;
        const int64_t r = ws->rows[i];
        double fin = ld_row(RIN_F(z), r * V, V, y);
        if (do_cr && !t_hid) fin += ld_row(RIN_F(tt->logits), r * V, V, x);
        if (t_hid) fin += ws->t_stat[2 * r];
        if (!isfinite(fin)) { st[ST_LSE] = NAN; continue; }
        const double lse = softmax_row(y, V, 1.0, q);
        st[ST_LSE] = lse;
        if (do_dr && K == 0) {
            double h = 0;
            for (int64_t j = 0; j < V; j++)
                if (q[j] > 0) h -= q[j] * (y[j] - lse);
            st[ST_DLSE] = lse; st[ST_H] = h;
        } else if (do_dr) {
            int64_t *idx = ws->topk_rows + i * mk;
            top_k_indices(y, V, K, idx);
            double m = -INFINITY, s = 0, h = 0;
            for (int64_t a = 0; a < K; a++) if (y[idx[a]] > m) m = y[idx[a]];
            for (int64_t a = 0; a < K; a++) s += exp(y[idx[a]] - m);
            const double lk = m + log(s);
            for (int64_t a = 0; a < K; a++) {
                double lq = y[idx[a]] - lk, e = exp(lq);
                if (e > 0) h -= e * lq;
            }
            st[ST_DLSE] = lk; st[ST_H] = h;
        }
        if (t_hid) {
            st[ST_LQ] = inv_tau == 1.0 ? lse : softmax_row(y, V, inv_tau, q); /* tau = 1: the same softmax */
            st[ST_LP] = ws->t_stat[2 * r];
            st[ST_CONF] = ws->t_stat[2 * r + 1];
            st[ST_CR] = 0; /* accumulated in pass B */
        } else if (do_cr) {
            const double lp = softmax_row(x, V, inv_tau, p), lq = inv_tau == 1.0 ? lse : softmax_row(y, V, inv_tau, q);
            double kl = 0;
            for (int64_t j = 0; j < V; j++)
                if (p[j] > 0) kl += p[j] * ((x[j] - y[j]) * inv_tau - lp + lq);
            st[ST_LP] = lp; st[ST_LQ] = lq; st[ST_CR] = kl;
            if (do_conf) {
                double ht = 0;
                for (int64_t j = 0; j < V; j++)
                    if (p[j] > 0) ht -= p[j] * (x[j] * inv_tau - lp);
                double rr = ht / logv;
                st[ST_CONF] = V == 1 ? 1 : 1 - (rr < 0 ? 0 : rr > 1 ? 1 : rr);
            }
        }
    }
    for (int64_t i = 0; i < M; i++) ws->row_val[i] = stat[i * ST_N + ST_LSE];
    BL_TRY(check_finite_rows(what, ws->row_val, M));
    double dr = 0, conf = 0;
    for (int64_t i = 0; i < M; i++) {
        if (do_dr) dr += stat[i * ST_N + ST_H];
        if (do_conf) conf += stat[i * ST_N + ST_CONF];
    }
    if (do_dr) vals[1] = -dr * inv_m;
    conf = do_conf ? conf / (double)M : 0;
    for (int i = 0; i < 3; i++) lam_out[i] = bl_reg_lambda(c, i, step, total, conf);
    const double wcr = do_cr ? weight * lam_out[0] * c->tau * inv_m : 0; /* times (q_tau - p_tau) */
    const double wdr = do_dr ? weight * lam_out[1] * inv_m : 0;
    const double wsv = do_sv ? weight * lam_out[2] : 0;
    /* the SVD term: its value and what its gradient needs, reading z */
    if (do_sv) BL_TRY(svd_prepare(ws, "BA-LoRA L_SVDR (NLG)", M, V, RIN_F(z), c->svd_k, c->svd_norm, wsv != 0, &vals[2]));
    const bool sv_grad = do_sv && wsv != 0 && ws->svd_grad;

    /* Pass B, one column block at a time: read the block of every row, then overwrite it with the gradient. */
    const int64_t bw = ws->chunk;
    for (int64_t c0 = 0; c0 < V; c0 += bw) {
        const int64_t w = V - c0 < bw ? V - c0 : bw;
        const double *svo = NULL;
        int64_t svld = 0;
        if (sv_grad) svd_block(ws, M, V, RIN_F(z), c0, w, &svo, &svld);
        if (t_hid) bl_linear_fwd(ws->t_blk, tt->hidden, tt->head + c0 * tt->C, NULL, B * T, tt->C, w, false);
#pragma omp parallel for schedule(static) num_threads(nthr(ws)) if (PAR(M * w))
        for (int64_t i = 0; i < M; i++) {
            double *g = ws->row_buf + (size_t)omp_get_thread_num() * ROWBUF * (size_t)V; /* [w] */
            double *st = stat + i * ST_N;
            const int64_t r = ws->rows[i], off = r * V + c0, target = labels[r + 1];
            const float *zt = !do_cr ? NULL : t_hid ? ws->t_blk + r * w : tt->logits + off;
            double kl = 0;
            for (int64_t j = 0; j < w; j++) {
                const double y = z[off + j], e = exp(y - st[ST_LSE]);
                double v = ce_scale * e;
                if (do_cr) {
                    const double x = zt[j], pj = exp(x * inv_tau - st[ST_LP]);
                    if (t_hid && pj > 0) kl += pj * ((x - y) * inv_tau - st[ST_LP] + st[ST_LQ]);
                    if (wcr != 0) v += wcr * ((inv_tau == 1.0 ? e : exp(y * inv_tau - st[ST_LQ])) - pj);
                }
                if (wdr != 0 && K == 0) v += wdr * e * (y - st[ST_LSE] + st[ST_H]);
                if (sv_grad) v += wsv * svo[i * svld + j];
                g[j] = v;
            }
            st[ST_CR] += kl;
            if (target >= c0 && target < c0 + w) g[target - c0] -= ce_scale;
            if (wdr != 0 && K > 0) {
                const int64_t *idx = ws->topk_rows + i * mk;
                for (int64_t a = 0; a < K; a++) {
                    if (idx[a] < c0 || idx[a] >= c0 + w) continue;
                    const double lq = (double)z[r * V + idx[a]] - st[ST_DLSE];
                    g[idx[a] - c0] += wdr * exp(lq) * (lq + st[ST_H]);
                }
            }
            for (int64_t j = 0; j < w; j++) z[off + j] = (float)g[j];
        }
    }
    if (do_cr) {
        double cr = 0;
        for (int64_t i = 0; i < M; i++) cr += stat[i * ST_N + ST_CR];
        vals[0] = c->tau * c->tau * cr / (double)M;
    }
    /* rows outside the mask: no loss term sees them */
    for (int64_t r = 0, i = 0; r < B * T; r++) {
        if (i < M && ws->rows[i] == r) { i++; continue; }
        memset(z + r * V, 0, (size_t)V * sizeof(float));
    }
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- combined */

static balora_status apply(bl_reg_ws *ws, const bl_reg_config *c, int64_t step, int64_t total, int64_t B, int64_t T,
                           int64_t V, rin z, rin zp, const int64_t *labels, rout grad, bl_reg_out *out) {
    memset(out, 0, sizeof *out);
    if (!ws || !ws->arena.base || !c)
        return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA: workspace or configuration missing; hint: bl_reg_ws_init first");
    BL_TRY(config_check(c, V, !ws->warned_config)); /* warnings once per workspace */
    ws->warned_config = true;
    const bool nlu = c->task == BL_REG_TASK_NLU;
    for (int i = 0; i < 3; i++)
        if (c->sched[i] != BL_LAMBDA_SCHED_CONSTANT && c->sched[i] != BL_LAMBDA_SCHED_ADAPTIVE && total <= 0)
            return bl_fail(BALORA_STATUS_INVALID, "BA-LoRA: lambda%d schedule '%s' needs the total step count (got %lld)",
                           i + 1, bl_lambda_sched_name(c->sched[i]), (long long)total);
    if (nlu) { T = 1; labels = NULL; }
    if (c->sched[0] == BL_LAMBDA_SCHED_ADAPTIVE && c->lambda1 > 0)
        BL_TRY(teacher_conf(ws, B, T, V, zp, labels, c->tau, &out->conf));
    for (int i = 0; i < 3; i++) out->lambda[i] = bl_reg_lambda(c, i, step, total, out->conf);
    int64_t M;
    BL_TRY(build_rows(ws, "BA-LoRA", B, T, V, labels, &M));
    out->n_pos = M;
    if (out->lambda[0] > 0) {
        if (nlu) BL_TRY(nlu_cr(ws, B, V, z, zp, out->lambda[0], grad, &out->cr));
        else BL_TRY(nlg_cr(ws, B, T, V, z, zp, labels, c->tau, out->lambda[0], grad, &out->cr));
    }
    if (out->lambda[1] > 0) {
        if (nlu) BL_TRY(nlu_dr(ws, B, V, z, out->lambda[1], grad, &out->dr));
        else BL_TRY(nlg_dr(ws, B, T, V, z, labels, c->top_k_entropy, out->lambda[1], grad, &out->dr));
    }
    if (out->lambda[2] > 0) {
        if (nlu) BL_TRY(nlu_svdr(ws, B, V, z, c->svd_k, c->svd_norm, out->lambda[2], grad, &out->svdr));
        else BL_TRY(nlg_svdr(ws, B, T, V, z, labels, c->svd_k, c->svd_norm, out->lambda[2], grad, &out->svdr));
    }
    out->total = out->lambda[0] * out->cr + out->lambda[1] * out->dr + out->lambda[2] * out->svdr;
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- public wrappers (float and double) */

balora_status bl_reg_nlu_cr(bl_reg_ws *ws, int64_t N, int64_t C, const float *z, const float *z_pt, double weight,
                            float *grad, double *value) {
    return nlu_cr(ws, N, C, RIN_F(z), RIN_F(z_pt), weight, ROUT_F(grad), value);
}
balora_status bl_reg_nlu_cr_d(bl_reg_ws *ws, int64_t N, int64_t C, const double *z, const double *z_pt, double weight,
                              double *grad, double *value) {
    return nlu_cr(ws, N, C, RIN_D(z), RIN_D(z_pt), weight, ROUT_D(grad), value);
}
balora_status bl_reg_nlu_dr(bl_reg_ws *ws, int64_t N, int64_t C, const float *z, double weight, float *grad, double *value) {
    return nlu_dr(ws, N, C, RIN_F(z), weight, ROUT_F(grad), value);
}
balora_status bl_reg_nlu_dr_d(bl_reg_ws *ws, int64_t N, int64_t C, const double *z, double weight, double *grad,
                              double *value) {
    return nlu_dr(ws, N, C, RIN_D(z), weight, ROUT_D(grad), value);
}
balora_status bl_reg_nlu_svdr(bl_reg_ws *ws, int64_t N, int64_t C, const float *z, int64_t k, bl_svd_norm norm,
                              double weight, float *grad, double *value) {
    return nlu_svdr(ws, N, C, RIN_F(z), k, norm, weight, ROUT_F(grad), value);
}
balora_status bl_reg_nlu_svdr_d(bl_reg_ws *ws, int64_t N, int64_t C, const double *z, int64_t k, bl_svd_norm norm,
                                double weight, double *grad, double *value) {
    return nlu_svdr(ws, N, C, RIN_D(z), k, norm, weight, ROUT_D(grad), value);
}
balora_status bl_reg_nlg_cr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const float *z_pt,
                            const int64_t *labels, double tau, double weight, float *grad, double *value) {
    return nlg_cr(ws, B, T, V, RIN_F(z), RIN_F(z_pt), labels, tau, weight, ROUT_F(grad), value);
}
balora_status bl_reg_nlg_cr_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const double *z_pt,
                              const int64_t *labels, double tau, double weight, double *grad, double *value) {
    return nlg_cr(ws, B, T, V, RIN_D(z), RIN_D(z_pt), labels, tau, weight, ROUT_D(grad), value);
}
balora_status bl_reg_nlg_dr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const int64_t *labels,
                            int64_t top_k, double weight, float *grad, double *value) {
    return nlg_dr(ws, B, T, V, RIN_F(z), labels, top_k, weight, ROUT_F(grad), value);
}
balora_status bl_reg_nlg_dr_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const int64_t *labels,
                              int64_t top_k, double weight, double *grad, double *value) {
    return nlg_dr(ws, B, T, V, RIN_D(z), labels, top_k, weight, ROUT_D(grad), value);
}
balora_status bl_reg_nlg_svdr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const int64_t *labels,
                              int64_t k, bl_svd_norm norm, double weight, float *grad, double *value) {
    return nlg_svdr(ws, B, T, V, RIN_F(z), labels, k, norm, weight, ROUT_F(grad), value);
}
balora_status bl_reg_nlg_svdr_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const int64_t *labels,
                                int64_t k, bl_svd_norm norm, double weight, double *grad, double *value) {
    return nlg_svdr(ws, B, T, V, RIN_D(z), labels, k, norm, weight, ROUT_D(grad), value);
}
balora_status bl_reg_nlg_ce(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const int64_t *labels,
                            double weight, float *grad, double *value) {
    return nlg_ce(ws, B, T, V, RIN_F(z), labels, weight, ROUT_F(grad), value);
}
balora_status bl_reg_nlg_ce_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const int64_t *labels,
                              double weight, double *grad, double *value) {
    return nlg_ce(ws, B, T, V, RIN_D(z), labels, weight, ROUT_D(grad), value);
}
balora_status bl_reg_teacher_conf(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z_pt,
                                  const int64_t *labels, double tau, double *conf) {
    return teacher_conf(ws, B, T, V, RIN_F(z_pt), labels, tau, conf);
}
balora_status bl_reg_teacher_conf_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z_pt,
                                    const int64_t *labels, double tau, double *conf) {
    return teacher_conf(ws, B, T, V, RIN_D(z_pt), labels, tau, conf);
}
balora_status bl_reg_apply(bl_reg_ws *ws, const bl_reg_config *c, int64_t step, int64_t total_steps, int64_t B,
                           int64_t T, int64_t V, const float *z, const float *z_pt, const int64_t *labels, float *grad,
                           bl_reg_out *out) {
    return apply(ws, c, step, total_steps, B, T, V, RIN_F(z), RIN_F(z_pt), labels, ROUT_F(grad), out);
}
balora_status bl_reg_apply_d(bl_reg_ws *ws, const bl_reg_config *c, int64_t step, int64_t total_steps, int64_t B,
                             int64_t T, int64_t V, const double *z, const double *z_pt, const int64_t *labels,
                             double *grad, bl_reg_out *out) {
    return apply(ws, c, step, total_steps, B, T, V, RIN_D(z), RIN_D(z_pt), labels, ROUT_D(grad), out);
}
