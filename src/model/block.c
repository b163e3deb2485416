/* THE decoder block forward (internal.h), with the key-value cache as an option of it:
 *
 * GPT-2 block:  a = x + c_proj(attn(c_attn(ln_1(x))));  y = a + mlp.c_proj(gelu(mlp.c_fc(ln_2(a))))
 * LLaMA block:  a = x + o(attn(rope(q(n1)), rope(k(n1)), v(n1))), n1 = rms(x)
 *               y = a + down(silu(gate(n2)) * up(n2)), n2 = rms(a)
 *
 * Attention is either full (bl_attn_fwd over [B, T], probabilities kept for the backward in
 * decoder.c) or, with a cache, per packed segment over the row's cached keys through bl_gemm +
 * bl_softmax_rows on the visible range only. Every product goes through ops.h; every linear
 * through bl_lin_fwd (adapters included). */
#include "model/internal.h"
#include <math.h>
#include <string.h>

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

balora_status bl_model_embed(const bl_model *m, float *x, const int64_t *ids, const int64_t *pos, int64_t N) {
    const bl_config *c = &m->cfg;
    BL_TRY(bl_embedding_fwd(x, ids, m->wte, N, c->vocab_size, c->hidden, false, "input_ids"));
    if (m->wpe) BL_TRY(bl_embedding_fwd(x, pos, m->wpe, N, c->max_pos, c->hidden, true, "position"));
    return BALORA_STATUS_OK;
}

void bl_model_final_norm(const bl_model *m, float *out, float *mean, float *rstd, const float *x, int64_t N) {
    const bl_config *c = &m->cfg;
    if (c->arch->norm == BL_NORM_LAYERNORM_PRE) bl_layernorm_fwd(out, mean, rstd, x, m->lnf_w, m->lnf_b, N, c->hidden, (float)c->norm_eps);
    else bl_rmsnorm_fwd(out, rstd, x, m->lnf_w, N, c->hidden, (float)c->norm_eps);
}

/* Attention of one segment (row r, n new tokens at packed offset off, first position p0) over the
 * row's cache -> att rows off..off+n-1. */
static void seg_attention(const bl_config *c, const bl_block_cache *kc, float *att, int64_t r, int64_t off, int64_t n,
                          int64_t p0, const float *q, int64_t qs) {
    int64_t H = c->n_head, D = c->head_dim, grp = c->n_head / c->n_kv_head, Dq = H * D, Dkv = c->n_kv_head * D;
    int64_t sw = c->sliding_window > 0 ? c->sliding_window : 0;
    float scale = (c->family == BL_FAMILY_GPT2 && !c->scale_attn_weights) ? 1.0f : 1.0f / sqrtf((float)D);
    const float *Kr = kc->K + r * kc->max_T * Dkv; /* [max_T, Dkv] */
    const float *Vr = kc->V + r * kc->max_T * Dkv;
    float *S = kc->S;
    if (n == 1) {
        /* one query: the grp query heads of a kv head are contiguous rows (stride D) */
        int64_t lo = sw ? max64(0, p0 - sw) : 0, Lk = p0 - lo + 1;
        for (int64_t g = 0; g < c->n_kv_head; g++) {
            bl_gemm(false, true, grp, Lk, D, scale, q + off * qs + g * grp * D, D, Kr + lo * Dkv + g * D, Dkv,
                    0.0f, S, Lk);
            bl_softmax_rows(S, S, grp, Lk);
            bl_gemm(false, false, grp, D, Lk, 1.0f, S, Lk, Vr + lo * Dkv + g * D, Dkv, 0.0f,
                    att + off * Dq + g * grp * D, D);
        }
        return;
    }
    int64_t QB = kc->S_rows;
    for (int64_t h = 0; h < H; h++) {
        int64_t g = h / grp;
        for (int64_t i0 = 0; i0 < n; i0 += QB) {
            int64_t Tb = min64(QB, n - i0), plo = p0 + i0, phi = plo + Tb - 1;
            int64_t lo = sw ? max64(0, plo - sw) : 0, Lk = phi - lo + 1;
            bl_gemm(false, true, Tb, Lk, D, scale, q + (off + i0) * qs + h * D, qs, Kr + lo * Dkv + g * D, Dkv,
                    0.0f, S, Lk);
            for (int64_t i = 0; i < Tb; i++) {
                int64_t p = plo + i, jlo = sw ? max64(lo, p - sw) : lo;
                float *row = S + i * Lk;
                /* visible keys: jlo..p; the rest get probability 0 */
                memset(row, 0, (size_t)(jlo - lo) * sizeof(float));
                bl_softmax_rows(row + (jlo - lo), row + (jlo - lo), 1, p - jlo + 1);
                memset(row + (p - lo + 1), 0, (size_t)(Lk - (p - lo + 1)) * sizeof(float));
            }
            bl_gemm(false, false, Tb, D, Lk, 1.0f, S, Lk, Vr + lo * Dkv + g * D, Dkv, 0.0f,
                    att + (off + i0) * Dq + h * D, Dq);
        }
    }
}

/* The cache option: append this call's keys and values to the rows' caches, then attend. */
static void cache_attention(const bl_config *c, const bl_block_cache *kc, const int64_t *pos, float *att,
                            const float *q, int64_t qs, const float *kp, const float *vp, int64_t ks) {
    int64_t Dkv = c->n_kv_head * c->head_dim;
    for (int64_t i = 0, t = 0; i < kc->n_seg; i++) {
        int64_t r = kc->segs[i].row;
        float *Kr = kc->K + r * kc->max_T * Dkv, *Vr = kc->V + r * kc->max_T * Dkv;
        for (int64_t j = 0; j < kc->segs[i].n; j++, t++) {
            memcpy(Kr + pos[t] * Dkv, kp + t * ks, (size_t)Dkv * sizeof(float));
            memcpy(Vr + pos[t] * Dkv, vp + t * ks, (size_t)Dkv * sizeof(float));
        }
    }
    for (int64_t i = 0, off = 0; i < kc->n_seg; off += kc->segs[i].n, i++)
        seg_attention(c, kc, att, kc->segs[i].row, off, kc->segs[i].n, kc->len[kc->segs[i].row], q, qs);
}

void bl_block_fwd(const bl_model *m, int64_t l, bl_run_layer *y, const float *x, float *out, const bl_block_pass *p) {
    const bl_config *c = &m->cfg;
    const bl_arch *A = c->arch;
    const bl_block *k = &m->blocks[l];
    int64_t N = p->B * p->T, C = c->hidden, F = c->intermediate;
    int64_t Dq = c->n_head * c->head_dim, Dkv = c->n_kv_head * c->head_dim;
    float eps = (float)c->norm_eps;
    bool ln = A->norm == BL_NORM_LAYERNORM_PRE;
#define LIN(mod_, yv_, xv_, acc_) \
    bl_lin_fwd((mod_), p->mode, p->train, (yv_), (xv_), N, (acc_), p->sv ? &p->sv[(mod_) - m->mods.lin] : p->sv_shared, p->rng)
    /* ---- attention */
    const float *q, *kp, *vp;
    int64_t qs, ks;
    if (ln) bl_layernorm_fwd(y->ln1, y->mean1, y->rstd1, x, k->ln1_w, k->ln1_b, N, C, eps);
    else bl_rmsnorm_fwd(y->ln1, y->rstd1, x, k->ln1_w, N, C, eps);
    if (A->attn & BL_ATTN_FUSED_QKV) {
        LIN(k->qkv, y->q, y->ln1, false);
        q = y->q; kp = y->q + C; vp = y->q + 2 * C; qs = ks = 3 * C;
    } else {
        LIN(k->q, y->q, y->ln1, false);
        LIN(k->k, y->k, y->ln1, false);
        LIN(k->v, y->v, y->ln1, false);
        if (A->pos == BL_POS_ROPE) {
            bl_rope_fwd(y->q, p->rope_cos, p->rope_sin, p->pos, p->B, p->T, c->n_head, c->head_dim, Dq);
            bl_rope_fwd(y->k, p->rope_cos, p->rope_sin, p->pos, p->B, p->T, c->n_kv_head, c->head_dim, Dkv);
        }
        q = y->q; kp = y->k; vp = y->v; qs = Dq; ks = Dkv;
    }
    if (p->cache) cache_attention(c, p->cache, p->pos, y->att, q, qs, kp, vp, ks);
    else bl_attn_fwd(p->full, y->att, y->probs, q, kp, vp);
    if (y->mid != x) memcpy(y->mid, x, (size_t)(N * C) * sizeof(float));
    LIN(k->o, y->mid, y->att, true);
    if (out != y->mid) memcpy(out, y->mid, (size_t)(N * C) * sizeof(float));
    /* ---- MLP */
    if (ln) bl_layernorm_fwd(y->ln2, y->mean2, y->rstd2, y->mid, k->ln2_w, k->ln2_b, N, C, eps);
    else bl_rmsnorm_fwd(y->ln2, y->rstd2, y->mid, k->ln2_w, N, C, eps);
    if (A->mlp == BL_MLP_SWIGLU) {
        LIN(k->gate, y->f1, y->ln2, false);
        LIN(k->up, y->f2, y->ln2, false);
        bl_swiglu_fwd(y->f3, y->f1, y->f2, N * F);
        LIN(k->down, out, y->f3, true);
    } else {
        LIN(k->fc, y->f1, y->ln2, false);
        if (c->act == BL_ACT_GELU_TANH) bl_gelu_tanh_fwd(y->f2, y->f1, N * F);
        else if (c->act == BL_ACT_GELU_ERF) bl_gelu_erf_fwd(y->f2, y->f1, N * F);
        else bl_relu_fwd(y->f2, y->f1, N * F);
        LIN(k->proj, out, y->f2, true);
    }
#undef LIN
}
