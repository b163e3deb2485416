/* Encoder-specific ops (enc_ops.h): DeBERTa relative positions and bias, tanh, MSE. */
#include "encoders/enc_ops.h"
#include "ops/ops.h"
#include <math.h>
#include <string.h>

int64_t bl_deberta_bucket(int64_t rel, int64_t bucket_size, int64_t max_position) {
    if (bucket_size <= 0 || max_position <= 0) return rel;
    int64_t mid = bucket_size / 2;
    int64_t sign = rel > 0 ? 1 : (rel < 0 ? -1 : 0);
    int64_t abs_pos = (rel < mid && rel > -mid) ? mid - 1 : (rel < 0 ? -rel : rel);
    if (abs_pos <= mid) return rel;
    /* float32 as torch: ceil(log(abs/mid) / log((max_position-1)/mid) * (mid-1)) + mid */
    float num = logf((float)abs_pos / (float)mid);
    float den = logf((float)((double)(max_position - 1) / (double)mid));
    float lp = ceilf(num / den * (float)(mid - 1)) + (float)mid;
    return (int64_t)lp * sign;
}

static int32_t clampi(int64_t v, int64_t lo, int64_t hi) { return (int32_t)(v < lo ? lo : (v > hi ? hi : v)); }

void bl_deberta_rel_index(int32_t *idx_c2p, int32_t *idx_p2c, int64_t T, int64_t bucket_size,
                          int64_t max_position, int64_t span) {
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) {
            idx_c2p[i * T + j] = clampi(bl_deberta_bucket(i - j, bucket_size, max_position) + span, 0, 2 * span - 1);
            idx_p2c[i * T + j] = clampi(-bl_deberta_bucket(j - i, bucket_size, max_position) + span, 0, 2 * span - 1);
        }
}

void bl_relbias_fwd(const bl_relbias_desc *d, float *bias, const float *q, const float *k, const float *PK,
                    const float *PQ, float *scratch) {
    int64_t B = d->B, T = d->T, H = d->H, D = d->D, S2 = d->S2;
    memset(bias, 0, (size_t)(B * H * T * T) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            float *bb = bias + (b * H + h) * T * T; /* [T, T] */
            if (d->c2p) {
                /* att[i, r] = q_i . PK_r */
                bl_gemm(false, true, T, S2, D, 1.0f, q + b * T * d->q_stride + h * D, d->q_stride, PK + h * D,
                        d->p_stride, 0.0f, scratch, S2);
                for (int64_t i = 0; i < T; i++)
                    for (int64_t j = 0; j < T; j++) bb[i * T + j] += d->inv_scale * scratch[i * S2 + d->idx_c2p[i * T + j]];
            }
            if (d->p2c) {
                /* att[j, r] = k_j . PQ_r */
                bl_gemm(false, true, T, S2, D, 1.0f, k + b * T * d->k_stride + h * D, d->k_stride, PQ + h * D,
                        d->p_stride, 0.0f, scratch, S2);
                for (int64_t i = 0; i < T; i++)
                    for (int64_t j = 0; j < T; j++) bb[i * T + j] += d->inv_scale * scratch[j * S2 + d->idx_p2c[i * T + j]];
            }
        }
}

void bl_relbias_bwd(const bl_relbias_desc *d, float *dq, float *dk, float *dPK, float *dPQ, const float *dbias,
                    const float *q, const float *k, const float *PK, const float *PQ, float *scratch) {
    int64_t B = d->B, T = d->T, H = d->H, D = d->D, S2 = d->S2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *db = dbias + (b * H + h) * T * T; /* [T, T] */
            if (d->c2p && (dq || dPK)) {
                memset(scratch, 0, (size_t)(T * S2) * sizeof(float)); /* d att [T, S2] */
                for (int64_t i = 0; i < T; i++)
                    for (int64_t j = 0; j < T; j++) scratch[i * S2 + d->idx_c2p[i * T + j]] += d->inv_scale * db[i * T + j];
                if (dq)
                    bl_gemm(false, false, T, D, S2, 1.0f, scratch, S2, PK + h * D, d->p_stride, 1.0f,
                            dq + b * T * d->q_stride + h * D, d->q_stride);
                if (dPK)
                    bl_gemm(true, false, S2, D, T, 1.0f, scratch, S2, q + b * T * d->q_stride + h * D, d->q_stride, 1.0f,
                            dPK + h * D, d->p_stride);
            }
            if (d->p2c && (dk || dPQ)) {
                memset(scratch, 0, (size_t)(T * S2) * sizeof(float));
                for (int64_t i = 0; i < T; i++)
                    for (int64_t j = 0; j < T; j++) scratch[j * S2 + d->idx_p2c[i * T + j]] += d->inv_scale * db[i * T + j];
                if (dk)
                    bl_gemm(false, false, T, D, S2, 1.0f, scratch, S2, PQ + h * D, d->p_stride, 1.0f,
                            dk + b * T * d->k_stride + h * D, d->k_stride);
                if (dPQ)
                    bl_gemm(true, false, S2, D, T, 1.0f, scratch, S2, k + b * T * d->k_stride + h * D, d->k_stride, 1.0f,
                            dPQ + h * D, d->p_stride);
            }
        }
}

void bl_tanh_fwd(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
}

void bl_tanh_bwd(float *dx, const float *dy, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

balora_status bl_mse(const float *pred, const float *target, int64_t n, float *dpred, float dscale, double *loss) {
    if (n <= 0) return bl_fail(BALORA_STATUS_INVALID, "mse: no predictions");
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(target[i]))
            return bl_fail(BALORA_STATUS_INVALID, "mse: target %lld is not a finite number; hint: regression needs a "
                           "score for every example", (long long)i);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)pred[i] - (double)target[i];
        s += e * e;
    }
    *loss = s / (double)n;
    if (dpred)
        for (int64_t i = 0; i < n; i++) dpred[i] = dscale * 2.0f * (pred[i] - target[i]) / (float)n;
    return BALORA_STATUS_OK;
}
