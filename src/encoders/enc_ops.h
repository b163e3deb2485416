/* Encoder-specific ops (each with forward and backward, float32, row-major, same conventions as
 * src/ops/ops.h: backward ACCUMULATES (+=) into gradient outputs, NULL = not needed, no allocation):
 *   - DeBERTa-v2's bucketed relative positions and disentangled attention bias (c2p + p2c),
 *   - tanh (BERT / RoBERTa poolers),
 *   - mean squared error (regression heads, STS-B). */
#ifndef BL_ENC_OPS_H
#define BL_ENC_OPS_H
#include "core/bl.h"

/* transformers' make_log_bucket_position for one relative distance (computed in float32 as torch
 * does): |rel| < bucket_size/2 stays exact, larger distances share log-spaced buckets up to
 * max_position. bucket_size <= 0 or max_position <= 0: rel unchanged. */
int64_t bl_deberta_bucket(int64_t rel, int64_t bucket_size, int64_t max_position);

/* Index tables for T tokens, span = att_span (position_buckets, or max_relative_positions):
 *   idx_c2p[i*T + j] = clamp(bucket(i - j) + span, 0, 2 span - 1)    (content -> position)
 *   idx_p2c[i*T + j] = clamp(-bucket(j - i) + span, 0, 2 span - 1)   (position -> content, already
 *                      transposed: the score of query i, key j).
 * idx_* [T, T] */
void bl_deberta_rel_index(int32_t *idx_c2p, int32_t *idx_p2c, int64_t T, int64_t bucket_size,
                          int64_t max_position, int64_t span);

/* Disentangled attention bias:
 *   bias[b,h,i,j] = inv_scale * ( q[b,i,h,:] . PK[idx_c2p[i,j], h, :]      (when c2p)
 *                               + k[b,j,h,:] . PQ[idx_p2c[i,j], h, :] )    (when p2c)
 * q [B, T, H, D] rows q_stride apart; k likewise (k_stride); PK, PQ [S2, H, D] rows p_stride apart
 * (PK = key_proj(rel_embeddings), PQ = query_proj(rel_embeddings) with share_att_key);
 * bias [B, H, T, T] (written). inv_scale = 1 / sqrt(D * (1 + number of pos_att_types)). */
typedef struct bl_relbias_desc {
    int64_t B, T, H, D, S2;
    int64_t q_stride, k_stride, p_stride;
    float inv_scale;
    bool c2p, p2c;
    const int32_t *idx_c2p, *idx_p2c; /* [T, T] */
} bl_relbias_desc;

/* scratch: [T, S2] floats. */
void bl_relbias_fwd(const bl_relbias_desc *d, float *bias, const float *q, const float *k, const float *PK,
                    const float *PQ, float *scratch);
/* dq, dk [like q, k], dPK, dPQ [like PK, PQ] accumulate; each may be NULL. dbias [B, H, T, T].
 * scratch: [T, S2] floats. */
void bl_relbias_bwd(const bl_relbias_desc *d, float *dq, float *dk, float *dPK, float *dPQ, const float *dbias,
                    const float *q, const float *k, const float *PK, const float *PQ, float *scratch);

/* y = tanh(x) (y may alias x); backward from the output: dx += dy * (1 - y^2).  [n] */
void bl_tanh_fwd(float *y, const float *x, int64_t n);
void bl_tanh_bwd(float *dx, const float *dy, const float *y, int64_t n);

/* Mean squared error over n predictions (transformers' MSELoss, mean reduction):
 * *loss = mean (pred - target)^2; dpred (may be NULL) = dscale * d loss / d pred, written.
 * A non-finite target fails (INVALID) naming its index. */
balora_status bl_mse(const float *pred, const float *target, int64_t n, float *dpred, float dscale, double *loss);

#endif
