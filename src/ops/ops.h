/* The math ops of balora: every kernel a model (decoder or encoder) runs, each with its
 * forward and its backward, float32, row-major, host memory.
 *
 * THE DISPATCH SEAM. Every BLAS and LAPACK call of the library is behind the functions
 * declared here: no file under src/ outside this directory calls cblas_* or LAPACKE_* or
 * includes their headers (tests/test_ops_linalg.c fails if one does), and model code
 * (src/model, src/encoders) writes no arithmetic loop over activations itself. Today
 * they are implemented for the CPU in src/ops/cpu.c (kernels: cblas_sgemm for every matrix
 * product, OpenMP for elementwise/attention loops, never around a BLAS call) and
 * src/ops/linalg.c (the dense linear algebra of the method code: double products, SVD,
 * symmetric eigen-decomposition, QR). A second backend replaces this directory: it provides
 * the same signatures over its own memory (every activation buffer comes from one arena,
 * which then lives on the device) and is chosen when the library is built; bl_ops_backend()
 * says which one is in use.
 *
 * CONVENTIONS (every op):
 *   - shapes are in the comments, [N, C] = N rows of C contiguous floats; sizes are int64_t.
 *   - BACKWARD ACCUMULATES: every gradient output (dx, dW, db, dgamma, ...) is ADDED to (+=),
 *     so residual branches and gradient accumulation need no extra buffers; the caller zeros
 *     what must start at zero. A NULL gradient pointer means "not needed" and is skipped
 *     (frozen weights cost nothing).
 *   - ops never allocate; scratch, where needed, is passed in (its size has a helper).
 *   - ops whose input can be bad data (token ids, labels) return balora_status; pure math
 *     ops return void (their shapes are the caller's contract).
 *   - deterministic for a given thread count (no atomics, fixed reduction order).
 */
#ifndef BL_OPS_H
#define BL_OPS_H
#include "core/bl.h"

typedef enum bl_backend { BL_BACKEND_CPU = 0 } bl_backend;
bl_backend bl_ops_backend(void);
const char *bl_ops_backend_name(void); /* "cpu" */

/* Thread count of the backend's own thread pool (OpenBLAS's); balora_threads_set calls it.
 * balora_blas_info (core/bl.h), defined with the backend, names its library and kernels. */
void bl_ops_threads_set(int n);

/* exp(x) for float32, within 2 ulp of expf on [-87, 88] (clamped outside), vectorisable. */
float bl_fast_expf(float x);

/* ------------------------------------------------------------------ matrix products */

/* C = alpha * op(A) op(B) + beta * C, row-major; op(X) = X or X^T.
 * op(A) is [M, K], op(B) is [K, N], C is [M, N]; lda/ldb/ldc are row strides in floats. */
void bl_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Linear layer, PyTorch orientation:  y = x W^T + b   (accumulate: y += x W^T + b)
 *   x [N, in]   W [out, in]   b [out] or NULL   y [N, out] */
void bl_linear_fwd(float *y, const float *x, const float *W, const float *b,
                   int64_t N, int64_t in, int64_t out, bool accumulate);
/* dx += dy W      dW += dy^T x      db += sum_rows dy      (each skipped when NULL)
 *   dy [N, out]   dx [N, in]   dW [out, in]   db [out] */
void bl_linear_bwd(float *dx, float *dW, float *db, const float *dy, const float *x,
                   const float *W, int64_t N, int64_t in, int64_t out);

/* LoRA branch of the adapter attach point (src/model/model.h bl_lin_fwd):
 *   u = xd A^T          (saved for backward)
 *   y += s * u B^T
 *   xd [N, in] (dropout(x), or x itself)   A [r, in]   B [out, r]   u [N, r]   y [N, out] */
void bl_lora_fwd(float *y, float *u, const float *xd, const float *A, const float *B, float s,
                 int64_t N, int64_t in, int64_t out, int64_t r);
/* Backward of the branch (du is scratch [N, r], overwritten):
 *   dB  += s * dy^T u            [out, r]
 *   du   = s * dy B              [N, r]
 *   dA  += du^T xd               [r, in]
 *   dxd += du A                  [N, in]     (skipped when dxd is NULL) */
void bl_lora_bwd(float *dxd, float *dA, float *dB, float *du, const float *dy, const float *xd,
                 const float *u, const float *A, const float *B, float s,
                 int64_t N, int64_t in, int64_t out, int64_t r);

/* ------------------------------------------------------------------ normalisation */

/* LayerNorm over the last dimension: y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps),
 * var biased (as torch).  x, y [N, C]   w, b [C] (b may be NULL)   mean, rstd [N] (saved). */
void bl_layernorm_fwd(float *y, float *mean, float *rstd, const float *x, const float *w,
                      const float *b, int64_t N, int64_t C, float eps);
/* dx += ..., dw += sum dy*xhat, db += sum dy  (dw/db may be NULL) */
void bl_layernorm_bwd(float *dx, float *dw, float *db, const float *dy, const float *x,
                      const float *mean, const float *rstd, const float *w, int64_t N, int64_t C);

/* RMSNorm (LLaMA): y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps).
 *   x, y [N, C]   w [C]   rstd [N] (saved). */
void bl_rmsnorm_fwd(float *y, float *rstd, const float *x, const float *w, int64_t N, int64_t C, float eps);
void bl_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *rstd,
                    const float *w, int64_t N, int64_t C);

/* ------------------------------------------------------------------ activations (n elements) */

/* gelu_new / gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
void bl_gelu_tanh_fwd(float *y, const float *x, int64_t n);
void bl_gelu_tanh_bwd(float *dx, const float *dy, const float *x, int64_t n);
/* gelu (exact): 0.5 x (1 + erf(x / sqrt 2)) */
void bl_gelu_erf_fwd(float *y, const float *x, int64_t n);
void bl_gelu_erf_bwd(float *dx, const float *dy, const float *x, int64_t n);
/* relu (for encoders / tiny models) */
void bl_relu_fwd(float *y, const float *x, int64_t n);
void bl_relu_bwd(float *dx, const float *dy, const float *x, int64_t n);
/* SwiGLU (LLaMA MLP): h = silu(gate) * up, silu(g) = g sigmoid(g).
 *   gate, up, h [n] (any [N, F] laid out alike) */
void bl_swiglu_fwd(float *h, const float *gate, const float *up, int64_t n);
void bl_swiglu_bwd(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int64_t n);

/* ------------------------------------------------------------------ elementwise helpers */

void bl_add(float *y, const float *a, const float *b, int64_t n);   /* y = a + b (y may alias a or b) */
void bl_acc(float *y, const float *x, int64_t n);                   /* y += x */
void bl_scale(float *y, float s, int64_t n);                        /* y *= s */
/* Inverted dropout: y = x * m / (1 - p), m ~ Bernoulli(1 - p) drawn from rng (one draw per
 * element, in order, so results depend only on the seed). p = 0: y = x. y may alias x.
 * mask [n] (saved, 0 or 1/(1-p)) may be NULL when no backward is needed. */
void bl_dropout_fwd(float *y, float *mask, const float *x, float p, int64_t n, bl_rng *rng);
void bl_dropout_bwd(float *dx, const float *dy, const float *mask, int64_t n); /* dx += dy * mask */

/* ------------------------------------------------------------------ embeddings */

/* y[i] = table[ids[i]] (accumulate: y[i] += ...).   ids [N]   table [V, C]   y [N, C].
 * An id outside [0, V) fails (INVALID) naming `what`, the position and the value. */
balora_status bl_embedding_fwd(float *y, const int64_t *ids, const float *table, int64_t N, int64_t V,
                               int64_t C, bool accumulate, const char *what);
/* dtable[ids[i]] += dy[i] (rows in order: deterministic).   dy [N, C]   dtable [V, C] */
void bl_embedding_bwd(float *dtable, const float *dy, const int64_t *ids, int64_t N, int64_t C);

/* ------------------------------------------------------------------ RoPE (rotate-half, as HF LLaMA) */

/* Tables for positions 0..T_max-1: angle(p, i) = p * theta^(-2i/D), i < D/2.
 *   cos_t, sin_t [T_max, D/2] */
void bl_rope_table(float *cos_t, float *sin_t, int64_t T_max, int64_t D, double theta);
/* In place on x [B, T, H, D] with row stride `stride` floats between tokens (>= H*D; lets q and
 * k be rotated inside a fused qkv buffer). Token (b, t) uses position pos[b*T + t], or t when
 * pos is NULL. For i < D/2:  x1 = x[i], x2 = x[i + D/2]
 *   fwd: x[i] = x1 cos - x2 sin,   x[i + D/2] = x2 cos + x1 sin
 *   bwd: the transpose rotation (angle -> -angle), applied in place to the gradient. */
void bl_rope_fwd(float *x, const float *cos_t, const float *sin_t, const int64_t *pos,
                 int64_t B, int64_t T, int64_t H, int64_t D, int64_t stride);
void bl_rope_bwd(float *dx, const float *cos_t, const float *sin_t, const int64_t *pos,
                 int64_t B, int64_t T, int64_t H, int64_t D, int64_t stride);

/* ------------------------------------------------------------------ attention */

/* Scaled dot-product attention with grouped-query heads.
 * q: [B, T, n_head, D] rows `q_stride` floats apart; k, v: [B, T, n_kv_head, D] (strides
 * k_stride, v_stride); out: [B, T, n_head, D] (o_stride). Query head h reads kv head
 * h / (n_head / n_kv_head). Fused layouts (GPT-2's [B, T, 3C]) are read in place via strides.
 * Score(b, h, i, j) = scale * q_i . k_j (+ bias[b, h, i, j] if bias), key j visible from query
 * i iff key_mask[b, j] != 0 (when key_mask), j <= i (when causal), and i - j < window (when
 * window > 0; Mistral's sliding window). A query row with no visible key gets all-zero
 * probabilities and output. */
typedef struct bl_attn_desc {
    int64_t B, T;
    int64_t n_head, n_kv_head, head_dim;
    int64_t q_stride, k_stride, v_stride, o_stride;
    float scale;              /* usually 1/sqrt(head_dim) */
    bool causal;
    int64_t window;           /* 0 = no sliding window */
    const int64_t *key_mask;  /* [B, T] 1 = real token, 0 = padding; NULL = all real */
    const float *bias;        /* [B, n_head, T, T] added to scores (relative positions), or NULL */
} bl_attn_desc;

/* probs [B, n_head, T, T] is written (softmax of the masked scores) and must be kept for the
 * backward. */
void bl_attn_fwd(const bl_attn_desc *d, float *out, float *probs, const float *q, const float *k,
                 const float *v);
/* Floats of scratch bl_attn_bwd needs. */
int64_t bl_attn_bwd_scratch(const bl_attn_desc *d);
/* dq, dk, dv accumulate (+=), laid out like q, k, v (same strides; a fused dqkv works).
 * dbias [B, n_head, T, T] (+=, may be NULL) is d loss / d score bias.
 * dout is [B, T, n_head, D] with stride o_stride. */
void bl_attn_bwd(const bl_attn_desc *d, float *dq, float *dk, float *dv, float *dbias, float *scratch,
                 const float *dout, const float *q, const float *k, const float *v, const float *probs);

/* ------------------------------------------------------------------ dense linear algebra
 * What the method code needs (BA-LoRA's SVD and covariance terms, PiSSA's initialisation;
 * src/ops/linalg.c). These are not gradient ops: outputs are written (or scaled by beta).
 * Dimensions and strides must fit in an int (LP64 BLAS/LAPACK); the factorisations check this
 * and their arguments and return INVALID naming the routine and the shape, INTERNAL when the
 * library fails (no convergence); the caller prefixes its own context (bl_fail_prefix).
 * Their workspace is passed in, sized by the *_work helpers; the work size given changes how
 * LAPACK blocks (hence rounding), so pass the same size to get the same bits. */

/* bl_gemm in double: C = alpha op(A) op(B) + beta C, row-major; op(A) [M, K], op(B) [K, N],
 * C [M, N], lda/ldb/ldc row strides in doubles. */
void bl_gemm_d(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);
/* bl_gemm on column-major operands (LAPACK's layout, column j of X at X + j * ldx):
 * C = alpha op(A) op(B) + beta C with op(A) [M, K], op(B) [K, N], C [M, N]. For code that keeps
 * its data column-major between factorisations (PiSSA's randomized SVD). */
void bl_gemm_cm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* Symmetric rank-K update, double: C = alpha A A^T + beta C on the upper triangle of C (row i,
 * columns j >= i; the strict lower triangle is left alone).  A [N, K] (row stride lda)
 * C [N, N] (row stride ldc). */
void bl_syrk_d(int64_t N, int64_t K, double alpha, const double *A, int64_t lda, double beta, double *C, int64_t ldc);

/* Thin SVD A = U diag(S) Vt (divide and conquer, LAPACK gesdd), k = min(m, n), row-major:
 *   A [m, n] (destroyed)   S [k] descending, >= 0   U [m, k]   Vt [k, n]   (packed rows)
 *   work [lwork], iwork [liwork] with the sizes bl_svd_work_* gives for (m, n).
 * A NaN or Inf in A fails (INVALID) before LAPACK runs. */
balora_status bl_svd_f(int64_t m, int64_t n, float *A, float *S, float *U, float *Vt, float *work, int64_t lwork,
                       int *iwork, int64_t liwork);
balora_status bl_svd_d(int64_t m, int64_t n, double *A, double *S, double *U, double *Vt, double *work, int64_t lwork,
                       int *iwork, int64_t liwork);
/* Workspace of bl_svd_f / bl_svd_d for an [m, n] matrix: *lwork elements (LAPACK's optimum + 1),
 * *liwork = 8 min(m, n) ints. */
balora_status bl_svd_work_f(int64_t m, int64_t n, int64_t *lwork, int64_t *liwork);
balora_status bl_svd_work_d(int64_t m, int64_t n, int64_t *lwork, int64_t *liwork);

/* Eigen-decomposition of a symmetric A [n, n] (divide and conquer, LAPACK syevd), row-major with
 * row stride lda; only the upper triangle is read (as bl_syrk_d writes it). On return w [n] holds
 * the eigenvalues ascending and row i of A the unit eigenvector of w[i].
 *   work [lwork], iwork [liwork]: at least bl_eigh_work_d's sizes. */
balora_status bl_eigh_d(int64_t n, double *A, int64_t lda, double *w, double *work, int64_t lwork, int *iwork,
                        int64_t liwork);
/* Minimum workspace of bl_eigh_d: *lwork = 1 + 6n + 2n^2 doubles, *liwork = 3 + 5n ints. */
void bl_eigh_work_d(int64_t n, int64_t *lwork, int64_t *liwork);

/* Orthonormal basis of the columns of X [n, q] (column-major, leading dimension n, q <= n) in
 * place, by QR (LAPACK geqrf + orgqr): on return X = Q, Q^T Q = I, and columns 0..j of Q span
 * columns 0..j of the input.  tau [q]   work [lwork] with lwork from bl_orth_work_f(n, q). */
balora_status bl_orth_f(int64_t n, int64_t q, float *X, float *tau, float *work, int64_t lwork);
balora_status bl_orth_work_f(int64_t n, int64_t q, int64_t *lwork);

/* ------------------------------------------------------------------ softmax and losses */

/* Row-wise softmax, y may alias x.  x, y [N, C] */
void bl_softmax_rows(float *y, const float *x, int64_t N, int64_t C);

/* Softmax cross-entropy over logits [B, T, V] with labels [B, T] (-100 = ignored).
 * causal_shift: the logits at (b, t) predict labels[b, t + 1] (transformers' causal-LM shift;
 * the last position predicts nothing); otherwise logits at (b, t) predict labels[b, t].
 * (Classification: B = N examples, T = 1, V = classes.)
 * *loss = mean over counted tokens (0 when none); *n_counted = how many.
 * dlogits (may be NULL; may alias logits) = dscale * d(*loss)/d(logits), ignored rows 0 —
 * written (not accumulated), since it is usually the start of a backward pass.
 * A label outside [0, V) and not -100 fails (INVALID) with its position. */
balora_status bl_xent(const float *logits, const int64_t *labels, int64_t B, int64_t T, int64_t V,
                      bool causal_shift, float *dlogits, float dscale, double *loss, int64_t *n_counted);

#define BL_IGNORE_INDEX (-100)

#endif
