/* Exact t-SNE (van der Maaten & Hinton 2008), O(N^2) time and memory, for up to a few
 * thousand points (the lab's feature maps, appendix C.3 of the BA-LoRA paper).
 *
 *  1. Input affinities: for each point i a Gaussian bandwidth beta_i is found by binary
 *     search (on squared Euclidean distances, tolerance 1e-5 on the entropy, at most 200
 *     steps) so that the conditional distribution p(j|i) has perplexity `perplexity`;
 *     then P = (p(j|i) + p(i|j)) / 2N, floored at 1e-12.
 *  2. Output: Y starts at N(0, 1e-4^2) from `seed`; gradient descent on KL(P || Q) with the
 *     Student-t kernel q_ij = (1 + |y_i - y_j|^2)^-1 / Z, exact gradient
 *     dKL/dy_i = 4 sum_j (p_ij - q_ij) (1 + |y_i - y_j|^2)^-1 (y_i - y_j),
 *     momentum (0.5, then 0.8 from iteration `momentum_switch_iter`), per-coordinate gains
 *     (+0.2 when the gradient's sign flips against the update, x0.8 otherwise, floor 0.01),
 *     early exaggeration (P x `exaggeration` until `exaggeration_iters`), Y re-centred each
 *     step: the scheme of the reference implementations (tsne.py / bhtsne).
 * Deterministic for a given seed and input, whatever the number of OpenMP threads (every
 * sum is reduced in a fixed order). */
#ifndef BL_LAB_TSNE_H
#define BL_LAB_TSNE_H
#include "core/bl.h"

typedef struct bl_tsne_config {
    int32_t dims;               /* output dimensions, 1..3 (default 2) */
    double perplexity;          /* > 0 and < N - 1; typical 5..50 (default 30) */
    int32_t n_iter;             /* gradient steps >= 1 (default 1000) */
    double learning_rate;       /* > 0; 0 = auto: max(N / exaggeration / 4, 50) (default 0) */
    double exaggeration;        /* >= 1 (default 12) */
    int32_t exaggeration_iters; /* iterations with exaggerated P (default 250) */
    int32_t momentum_switch_iter; /* momentum 0.5 before, 0.8 from here on (default 250) */
    int32_t kl_every;           /* record the KL every this many iterations, >= 1 (default 10) */
    uint64_t seed;              /* initial embedding (default 1) */
} bl_tsne_config;

typedef struct bl_tsne_result {
    int64_t n, dims;
    float *y;          /* [n, dims] the embedding */
    int64_t n_kl;
    double *kl;        /* [n_kl] KL(P || Q) with the true (not exaggerated) P */
    int32_t *kl_iter;  /* [n_kl] kl[k] is the KL of the embedding before iteration kl_iter[k];
                          the last entry (kl_iter = n_iter) is the final embedding's */
    double kl_final;   /* = kl[n_kl - 1] */
    double seconds;
    bl_arena arena;    /* owns y, kl, kl_iter */
} bl_tsne_result;

void bl_tsne_config_default(bl_tsne_config *cfg);

/* Embed x [n, d] (row-major floats; every value finite). n >= 3 (more than perplexity + 1),
 * d >= 1. On success *out owns its buffers (free with bl_tsne_result_free); on failure
 * *out is zeroed. Memory: about 8 n^2 bytes (n = 4000: 128 MB); n is limited to 16384. */
balora_status bl_tsne_run(const float *x, int64_t n, int64_t d, const bl_tsne_config *cfg, bl_tsne_result *out);
void bl_tsne_result_free(bl_tsne_result *r);

/* Building blocks, exposed for tests.
 * Conditional affinities p(j|i) of x [n, d] into cond [n, n] (row i sums to 1, cond[i,i] = 0)
 * and the bandwidths beta [n] (1 / 2 sigma_i^2), for the given perplexity. */
balora_status bl_tsne_conditional(const float *x, int64_t n, int64_t d, double perplexity, double *cond, double *beta);
/* KL(P || Q) for the symmetric joint P [n, n] (sums to 1) and embedding y [n, dims];
 * also its gradient into grad [n, dims] when grad is non-NULL. P is used as given
 * (pass an exaggerated P to get the exaggerated gradient). */
double bl_tsne_kl(const double *p, const double *y, int64_t n, int64_t dims, double *grad);

#endif
