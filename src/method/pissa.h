/* PiSSA (docs/METHOD.md section 2): principal singular values and vectors of a
 * frozen weight as the adapter's initial factors, the rest as the residual weight.
 *
 *   W = U S V^T (float32), top r:  A = diag(sqrt(S_r / s)) V_r^T   [r, in]
 *                                  B = U_r diag(sqrt(S_r / s))     [out, r]
 *                                  W_res = W - s B A               (in place)
 *
 * Exact SVD: bl_svd_f (src/ops; LAPACK sgesdd). Randomized SVD with K power iterations
 * (PEFT's "pissa_niter_K", i.e. torch.svd_lowrank(W, q = r, niter = K)): a Gaussian sketch of
 * q = r + oversample columns from the seeded bl_rng, QR (bl_orth_f) after every product with W
 * or W^T, then the exact SVD of the small q x in matrix Q^T W. Products go through src/ops. */
#ifndef BL_METHOD_PISSA_H
#define BL_METHOD_PISSA_H
#include "core/bl.h"

/* "pissa" -> -1 (exact); "pissa_niter_K" -> K (K >= 0, decimal). Anything else: INVALID. */
balora_status bl_pissa_parse_init(const char *name, int *niter);

/* Top-r singular triplets of W [out, in] (or [in, out] when w_in_out, GPT-2's Conv1D; the
 * triplets are always those of the [out, in] matrix): U [out, r], S [r] descending,
 * Vt [r, in]. niter < 0: exact; niter >= 0: randomized (rng required; oversample >= 0
 * extra sketch columns, PEFT uses 0). Allocates its workspace once per call. */
balora_status bl_pissa_svd(const float *W, int64_t out, int64_t in, bool w_in_out, int64_t r, int niter,
                           int64_t oversample, bl_rng *rng, float *U, float *S, float *Vt);

/* PiSSA initialisation: writes A [r, in] and B [out, r] and replaces W (same layout as given)
 * by W_res = W - s B A. scale = the LoRA scaling s (alpha / r, or alpha / sqrt(r) with rsLoRA). */
balora_status bl_pissa_init(float *W, int64_t out, int64_t in, bool w_in_out, int64_t r, float scale, int niter,
                            int64_t oversample, bl_rng *rng, float *A, float *B);

/* A PiSSA-trained adapter (A, B) with its initial factors (A0, B0) as a plain LoRA on the
 * original W: A2 = [A ; A0] [2r, in], B2 = [B , -B0] [out, 2r], so that with r' = 2r and
 * alpha' = bl_pissa_lora_alpha(alpha) the scaling is unchanged and s' B2 A2 = s (B A - B0 A0). */
balora_status bl_pissa_to_lora(int64_t out, int64_t in, int64_t r, const float *A, const float *B, const float *A0,
                               const float *B0, float *A2, float *B2);
/* alpha' of the converted adapter: 2 alpha, or sqrt(2) alpha with rsLoRA. */
double bl_pissa_lora_alpha(double alpha, bool use_rslora);

#endif
