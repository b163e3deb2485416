/* BA-LoRA's regularisers (docs/METHOD.md section 3), on plain arrays.
 *
 *   L = L_task + lambda1 * L_CR + lambda2 * L_DR + lambda3 * L_SVDR
 *
 * NLU: z [N, C] (fine-tuned outputs), z_pt [N, C] (the original model's outputs).
 *   L_CR   = mean over N*C of (z/||z|| - z_pt/||z_pt||)^2, row norms, eps 1e-12
 *   L_DR   = (1/C) sum_{i != j} Cov_ij^2, Cov = Zc^T Zc / (N - 1)  (0 when N < 2)
 *   L_SVDR = -(sum of the k largest singular values of z) [/ norm when svd_norm != NONE]
 * NLG: z [B, T, V] logits, z_pt [B, T, V], labels [B, T] (-100 = ignored). Position (b, t)
 *   counts iff t + 1 < T and labels[b, t + 1] != -100 (the causal shift: exactly the
 *   positions the task loss sees). M = those rows.
 *   L_CR   = tau^2 * mean_M KL(softmax(z_pt/tau) || softmax(z/tau))
 *   L_DR   = -mean_M H(softmax(z))  (top_k_entropy K > 0: softmax over the top-K logits)
 *   L_SVDR = -(sum of the k largest singular values of Z[M, V]) / norm(Z),
 *            norm = sum of all singular values (BL_SVD_NORM_SUM) or ||Z||_F (FRO)
 *
 * Every term function returns the term's value and ACCUMULATES weight * dTerm/dz into
 * grad (grad may be NULL for the value only). All arithmetic is double internally; the
 * float API reads float logits and adds into float grads, the _d variants take double
 * arrays (used by the finite-difference tests). Gradients of the SVD terms flow
 * (docs/METHOD.md 3.3): on the Gram matrix G = Z Z^T (dsyevd) when |M| <= V/2, else dgesdd.
 * On the Gram route singular values below 1e-7 * sigma_max contribute no gradient (the
 * eigenvalues of G carry absolute error ~1e-16 sigma_max^2, so such sigma are rounding
 * noise, and at sigma = 0 the subgradient is a choice); dgesdd uses every sigma.
 *
 * Memory: a bl_reg_ws is sized once (bl_reg_ws_init) for the largest row count and
 * column count; no function here allocates afterwards. Its size: 4 rows of ncols doubles per
 * thread, plus for the SVD term ~ 3 R^2 + 3 R * 512 doubles with R = min(max_rows, ncols/2)
 * (Gram route: G, dsyevd work, P) and, only when ncols < 2 * max_rows, 3 max_rows * ncols
 * doubles for dgesdd; NLG workspaces add, for bl_reg_nlg_fused, 10 doubles per row, max_k indices
 * per row, BL_REG_TEACHER_ROWS rows of ncols floats and max_rows x 512 floats (teacher logits
 * recomputed from hidden states). The SVD term costs O(|M|^2 V) flops (dsyrk + one product). OpenMP over rows; the BLAS and
 * LAPACK calls run outside OpenMP regions. Per-row partial values are summed in row
 * order, so results are deterministic for any thread count. */
#ifndef BL_METHOD_REG_H
#define BL_METHOD_REG_H
#include "core/bl.h"

typedef enum bl_reg_task { BL_REG_TASK_NLU = 0, BL_REG_TASK_NLG } bl_reg_task;

typedef enum bl_svd_norm {
    BL_SVD_NORM_NONE = 0, /* -sum of top-k (the paper's NLU form) */
    BL_SVD_NORM_SUM,      /* / sum of all singular values (NLG default) */
    BL_SVD_NORM_FRO       /* / Frobenius norm (paper-v6) */
} bl_svd_norm;

typedef enum bl_lambda_sched {
    BL_LAMBDA_SCHED_CONSTANT = 0,
    BL_LAMBDA_SCHED_COSINE,           /* l(t) = 0.1 l + 0.9 l (1 + cos(pi t / S)) / 2 */
    BL_LAMBDA_SCHED_ADAPTIVE,         /* lambda1 only: l1_min + (l1_max - l1_min) * teacher confidence */
    BL_LAMBDA_SCHED_TWO_PHASE,        /* 0 for t < wS, then a linear ramp over pS, then l */
    BL_LAMBDA_SCHED_LINEAR_WARMUP,    /* l * min(1, t / (wS)) */
    BL_LAMBDA_SCHED_QUADRATIC_WARMUP, /* l * min(1, t / (wS))^2 */
    BL_LAMBDA_SCHED_COUNT
} bl_lambda_sched;

typedef struct bl_reg_config {
    bl_reg_task task;
    double lambda1, lambda2, lambda3; /* 0 removes the term and its cost */
    int64_t svd_k;                    /* k of L_SVDR */
    double tau;                       /* distillation temperature (NLG L_CR; adaptive lambda1) */
    int64_t top_k_entropy;            /* 0 = full softmax; K > 0: renormalised over the top-K logits */
    bl_svd_norm svd_norm;
    bl_lambda_sched sched[3];         /* for lambda1, lambda2, lambda3 */
    double warmup_ratio;              /* w of two_phase / linear_warmup / quadratic_warmup */
    double ramp_ratio;                /* p of two_phase */
    double l1_min, l1_max;            /* adaptive lambda1; < 0 = defaults 0.1 * lambda1, lambda1 */
} bl_reg_config;

/* paper-v1 for the task (the default): NLU 1e-4, 4e-4, 1e-4, k 3, no norm;
 * NLG 1e-4, 3e-4, 1e-4, k 3, sum norm, tau 1; constant schedules. */
void bl_reg_config_default(bl_reg_config *c, bl_reg_task task);
/* "paper-v1" or "paper-v6" (NLG only: lambda1 0.025 cosine, lambda2 = lambda3 = 0.005
 * two_phase w 0.2 p 0.05, k 10, top_k_entropy 20, tau 2, Frobenius norm). */
balora_status bl_reg_config_recipe(bl_reg_config *c, const char *name, bl_reg_task task);
balora_status bl_reg_task_parse(const char *name, bl_reg_task *out);          /* nlu | nlg */
balora_status bl_reg_svd_norm_parse(const char *name, bl_svd_norm *out);      /* none | sum | fro */
balora_status bl_lambda_sched_parse(const char *name, bl_lambda_sched *out);  /* constant | cosine | ... */
const char *bl_lambda_sched_name(bl_lambda_sched s);
const char *bl_reg_svd_norm_name(bl_svd_norm n);
/* Validates the configuration against the number of columns (C or V) and warns
 * (bl_log BL_WARN) for each setting that makes a term constant or a no-op. bl_reg_apply
 * runs it on every call and warns on the first call of each workspace. */
balora_status bl_reg_config_check(const bl_reg_config *c, int64_t ncols);

/* Lambda i (0, 1, 2) at step t of S total steps. conf = teacher confidence in [0, 1]
 * (only read by the adaptive schedule). */
double bl_reg_lambda(const bl_reg_config *c, int i, int64_t t, int64_t S, double conf);

/* Workspace for up to max_rows rows (N, or B*T) of ncols columns (C or V). */
typedef struct bl_reg_ws {
    int64_t max_rows, ncols, max_k;
    int nthreads;
    bl_arena arena;
    int64_t *rows;             /* [max_rows] masked row indices */
    double *row_val;           /* [max_rows] per-row partial values */
    double *row_buf;           /* [nthreads, 4, ncols] per-thread row scratch */
    int64_t *topk_idx;         /* [nthreads, max_k] top-K entropy scratch */
    /* SVD term: Gram route */
    int64_t chunk;             /* columns per block */
    double *gram;              /* [max_rows, max_rows] G, then its eigenvectors */
    double *eig;               /* [max_rows] eigenvalues / singular values */
    double *coef;              /* [max_rows] gradient coefficient per singular value */
    double *blk_in, *blk_out;  /* [max_rows, chunk] gathered columns, P times them */
    double *blk_t;             /* [max_rows, chunk] low-rank intermediate */
    double *lwork;             /* dsyevd / dgesdd work, then P [max_rows, max_rows] */
    int64_t n_lwork;
    int *iwork; int64_t n_iwork;
    /* SVD term: gesdd route (only when ncols < 2 * max_rows) */
    double *zd;                /* [max_rows, ncols] */
    double *u;                 /* [max_rows, mn] */
    double *vt;                /* [mn, ncols] */
    double *nlu_g;             /* [max_rows, ncols] NLU only: Zc Cov */
    /* SVD term state between svd_prepare and its column blocks */
    bool svd_grad, svd_gram, svd_low_rank;
    int64_t svd_nu;
    double svd_beta;
    /* fused NLG step (bl_reg_nlg_fused; NLG workspaces only) */
    double *stat;              /* [max_rows, 8] per-row softmax statistics and term values */
    int64_t *topk_rows;        /* [max_rows, max_k] top-K entropy indices of each row */
    float *t_rows;             /* [BL_REG_TEACHER_ROWS, ncols] teacher logits recomputed from hidden states */
    float *t_blk;              /* [max_rows, chunk] teacher logits of one column block */
    double *t_stat;            /* [max_rows, 2] teacher log-sum-exp at tau and confidence per row */
    double *cov;               /* [ncols, ncols] NLU only */
    bool warned_const;         /* runtime warning given once */
    bool warned_config;        /* bl_reg_apply checked (and warned about) the configuration once */
} bl_reg_ws;

/* max_k: the largest top_k_entropy to be used (0 if none). */
balora_status bl_reg_ws_init(bl_reg_ws *ws, bl_reg_task task, int64_t max_rows, int64_t ncols, int64_t max_k);
void bl_reg_ws_free(bl_reg_ws *ws);

/* ---- single terms (value returned in *value; weight * gradient added to grad) ---- */
balora_status bl_reg_nlu_cr(bl_reg_ws *ws, int64_t N, int64_t C, const float *z, const float *z_pt,
                            double weight, float *grad, double *value);
balora_status bl_reg_nlu_cr_d(bl_reg_ws *ws, int64_t N, int64_t C, const double *z, const double *z_pt,
                              double weight, double *grad, double *value);
balora_status bl_reg_nlu_dr(bl_reg_ws *ws, int64_t N, int64_t C, const float *z, double weight, float *grad, double *value);
balora_status bl_reg_nlu_dr_d(bl_reg_ws *ws, int64_t N, int64_t C, const double *z, double weight, double *grad, double *value);
/* SVD term on all N rows of z [N, C]. */
balora_status bl_reg_nlu_svdr(bl_reg_ws *ws, int64_t N, int64_t C, const float *z, int64_t k, bl_svd_norm norm,
                              double weight, float *grad, double *value);
balora_status bl_reg_nlu_svdr_d(bl_reg_ws *ws, int64_t N, int64_t C, const double *z, int64_t k, bl_svd_norm norm,
                                double weight, double *grad, double *value);

/* NLG terms: z, z_pt [B, T, V], labels [B, T]. Return INVALID if no position is trained. */
balora_status bl_reg_nlg_cr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const float *z_pt,
                            const int64_t *labels, double tau, double weight, float *grad, double *value);
balora_status bl_reg_nlg_cr_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const double *z_pt,
                              const int64_t *labels, double tau, double weight, double *grad, double *value);
balora_status bl_reg_nlg_dr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const int64_t *labels,
                            int64_t top_k, double weight, float *grad, double *value);
balora_status bl_reg_nlg_dr_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const int64_t *labels,
                              int64_t top_k, double weight, double *grad, double *value);
balora_status bl_reg_nlg_svdr(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const int64_t *labels,
                              int64_t k, bl_svd_norm norm, double weight, float *grad, double *value);
balora_status bl_reg_nlg_svdr_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const int64_t *labels,
                                int64_t k, bl_svd_norm norm, double weight, double *grad, double *value);
/* The causal-LM task loss (mean CE over shifted, non-ignored targets) with the same mask:
 * a reference for the golden total; labels must lie in [0, V) or be -100. */
balora_status bl_reg_nlg_ce(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z, const int64_t *labels,
                            double weight, float *grad, double *value);
balora_status bl_reg_nlg_ce_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z, const int64_t *labels,
                              double weight, double *grad, double *value);

/* Teacher confidence for adaptive lambda1: mean over rows of 1 - clamp(H(softmax(z_pt/tau)) / log V, 0, 1)
 * (V = 1: 1). labels NULL = every row of [B*T, V] (NLU: B = N, T = 1, V = C). */
balora_status bl_reg_teacher_conf(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const float *z_pt,
                                  const int64_t *labels, double tau, double *conf);
balora_status bl_reg_teacher_conf_d(bl_reg_ws *ws, int64_t B, int64_t T, int64_t V, const double *z_pt,
                                    const int64_t *labels, double tau, double *conf);

/* ---- the training step: task gradient + all terms, in place, without [B, T, V] copies ---- */
#define BL_REG_TEACHER_ROWS 32
/* The teacher for bl_reg_nlg_fused: either its logits [B*T, V], or (no [B, T, V] copy) its final
 * hidden states [B*T, C] and the frozen LM head [V, C] (logits = hidden head^T, no bias): the
 * teacher logits are then recomputed BL_REG_TEACHER_ROWS rows / one column block at a time. */
typedef struct bl_reg_teacher {
    const float *logits;
    const float *hidden;
    const float *head;
    int64_t C;
    bool stats; /* with hidden: bl_reg_nlg_teacher_stats ran on this teacher's logits (saves a recompute) */
} bl_reg_teacher;
/* Per-row statistics of the teacher's logits zt [B, T, V] that L_CR needs (log-sum-exp at tau, the
 * confidence of adaptive lambda1), kept in the workspace: call it while the teacher's logits exist
 * (right after its forward) and pass the hidden states with stats = true. */
balora_status bl_reg_nlg_teacher_stats(bl_reg_ws *ws, const bl_reg_config *c, int64_t B, int64_t T, int64_t V,
                                       const float *zt);
/* z [B, T, V]: on entry the student logits, on return the gradient
 *     ce_scale * d(summed causal CE)/dz + weight * (l[0] dL_CR + l[1] dL_DR + l[2] dL_SVDR)/dz
 * (every element; rows outside the mask get 0), computed as bl_causal_ce's gradient plus the
 * single-term functions would (same formulas, double arithmetic, one rounding to float).
 * The terms whose configured lambda is > 0 are evaluated: vals[0..3) = L_CR, L_DR, L_SVDR (0
 * when off); lam_out[0..3) = the effective lambdas at step of total (bl_reg_lambda; the adaptive
 * lambda1 from the teacher confidence). teacher may be NULL when lambda1 = 0.
 * With no trained position z is zeroed and vals are 0. Peak extra memory: the workspace only. */
balora_status bl_reg_nlg_fused(bl_reg_ws *ws, const bl_reg_config *c, int64_t step, int64_t total, int64_t B, int64_t T,
                               int64_t V, float *z, const int64_t *labels, const bl_reg_teacher *teacher, double ce_scale,
                               double weight, double vals[3], double lam_out[3]);

/* ---- all three terms with the configuration's lambdas at step t of S ---- */
typedef struct bl_reg_out {
    double cr, dr, svdr;          /* unweighted term values (0 when the term is off) */
    double lambda[3];             /* the effective lambdas used at this step */
    double total;                 /* lambda1 cr + lambda2 dr + lambda3 svdr */
    double conf;                  /* teacher confidence (adaptive lambda1 only, else 0) */
    int64_t n_pos;                /* rows used (N, or |M|) */
} bl_reg_out;
/* NLU: labels ignored (NULL); B = N, T = 1, V = C. NLG: shapes as above.
 * z_pt may be NULL when lambda1 is 0. grad [rows, cols] is accumulated (+=). */
balora_status bl_reg_apply(bl_reg_ws *ws, const bl_reg_config *c, int64_t step, int64_t total_steps,
                           int64_t B, int64_t T, int64_t V, const float *z, const float *z_pt,
                           const int64_t *labels, float *grad, bl_reg_out *out);
balora_status bl_reg_apply_d(bl_reg_ws *ws, const bl_reg_config *c, int64_t step, int64_t total_steps,
                             int64_t B, int64_t T, int64_t V, const double *z, const double *z_pt,
                             const int64_t *labels, double *grad, bl_reg_out *out);

#endif
