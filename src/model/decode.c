/* Incremental decoding with a key/value cache (generation): the same blocks as decoder.c applied
 * to a chunk of new tokens whose attention reads the cached keys and values. */
#include "model/model.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAKE(ptr, n) ((ptr) = bl_arena_take(a, (size_t)(n) * sizeof(*(ptr))))

static void plan(bl_kv_cache *kv, bl_arena *a) {
    const bl_model *m = kv->m;
    const bl_config *c = &m->cfg;
    int64_t NC = kv->B * kv->max_chunk, C = c->hidden, F = c->intermediate;
    int64_t Dq = c->n_head * c->head_dim, Dkv = c->n_kv_head * c->head_dim;
    int64_t rmax = 1;
    for (int i = 0; i < m->mods.n_lin; i++)
        if (m->mods.lin[i].lora && m->mods.lin[i].lora->r > rmax) rmax = m->mods.lin[i].lora->r;
    TAKE(kv->kc, c->n_layer * kv->B * kv->max_T * Dkv);
    TAKE(kv->vc, c->n_layer * kv->B * kv->max_T * Dkv);
    TAKE(kv->x, NC * C);
    TAKE(kv->ln, NC * C);
    TAKE(kv->qkv, NC * (Dq + 2 * Dkv));
    TAKE(kv->att, NC * Dq);
    TAKE(kv->f1, NC * F); TAKE(kv->f2, NC * F); TAKE(kv->f3, NC * F);
    TAKE(kv->hidden, NC * C);
    TAKE(kv->stat, 2 * NC);
    TAKE(kv->u, NC * rmax);
    TAKE(kv->scores, kv->B * c->n_head * kv->max_chunk * kv->max_T);
    TAKE(kv->logits, NC * c->vocab_size);
    TAKE(kv->pos, NC);
    if (c->family != BL_FAMILY_GPT2) { TAKE(kv->rope_cos, kv->max_T * c->head_dim / 2); TAKE(kv->rope_sin, kv->max_T * c->head_dim / 2); }
}

balora_status bl_kv_init(bl_kv_cache *kv, bl_model *m, int64_t B, int64_t max_T, int64_t max_chunk) {
    memset(kv, 0, sizeof *kv);
    if (m->cfg.head != BL_HEAD_CAUSAL_LM)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "decoding: %s is not a causal LM", m->cfg.architecture);
    if (B <= 0 || max_T <= 0 || max_chunk <= 0 || max_chunk > max_T || B > ((int64_t)1 << 20) / max_T)
        return bl_fail(BALORA_STATUS_INVALID, "decoding: batch %lld, length %lld, chunk %lld out of range", (long long)B,
                       (long long)max_T, (long long)max_chunk);
    if (m->cfg.family == BL_FAMILY_GPT2 && max_T > m->cfg.max_pos)
        return bl_fail(BALORA_STATUS_INVALID, "decoding: length %lld exceeds n_positions %lld", (long long)max_T, (long long)m->cfg.max_pos);
    kv->m = m; kv->B = B; kv->max_T = max_T; kv->max_chunk = max_chunk;
    plan(kv, &kv->arena);
    BL_TRY(bl_arena_alloc(&kv->arena));
    plan(kv, &kv->arena);
    if (kv->rope_cos) bl_rope_table(kv->rope_cos, kv->rope_sin, max_T, m->cfg.head_dim, m->cfg.rope_theta);
    kv->attach_gen = m->mods.attach_gen;
    return BALORA_STATUS_OK;
}

void bl_kv_free(bl_kv_cache *kv) {
    if (!kv) return;
    bl_arena_free(&kv->arena);
    memset(kv, 0, sizeof *kv);
}

balora_status bl_model_decode(bl_kv_cache *kv, const int64_t *ids, int64_t n, bl_adapter_mode mode) {
    bl_model *m = kv->m;
    const bl_config *c = &m->cfg;
    if (kv->attach_gen != m->mods.attach_gen)
        return bl_fail(BALORA_STATUS_INVALID, "decoding: adapters changed since bl_kv_init");
    if (n <= 0 || n > kv->max_chunk || kv->len + n > kv->max_T)
        return bl_fail(BALORA_STATUS_INVALID, "decoding: %lld new tokens at position %lld do not fit (chunk %lld, length %lld)",
                       (long long)n, (long long)kv->len, (long long)kv->max_chunk, (long long)kv->max_T);
    int64_t B = kv->B, N = B * n, C = c->hidden, F = c->intermediate, H = c->n_head, Hkv = c->n_kv_head, D = c->head_dim;
    int64_t Dq = H * D, Dkv = Hkv * D, T = kv->max_T, len = kv->len, grp = H / Hkv;
    bool gpt2 = c->family == BL_FAMILY_GPT2;
    float eps = (float)c->norm_eps;
    for (int64_t i = 0; i < N; i++) kv->pos[i] = len + i % n;
    BL_TRY(bl_embedding_fwd(kv->x, ids, m->wte, N, c->vocab_size, C, false, "input_ids"));
    if (gpt2) BL_TRY(bl_embedding_fwd(kv->x, kv->pos, m->wpe, N, c->max_pos, C, true, "position"));
    bl_lin_saved sv;
    memset(&sv, 0, sizeof sv);
    sv.u = kv->u;
    float *mean = kv->stat, *rstd = kv->stat + N;
    float scale = gpt2 && !c->scale_attn_weights ? 1.0f : 1.0f / sqrtf((float)D);
    int64_t sw = c->sliding_window; /* keys j with p - j <= sliding_window are visible */
    for (int64_t l = 0; l < c->n_layer; l++) {
        const bl_block *k = &m->blocks[l];
        float *q, *kk, *vv;
        int64_t qs, ks;
        if (gpt2) {
            bl_layernorm_fwd(kv->ln, mean, rstd, kv->x, k->ln1_w, k->ln1_b, N, C, eps);
            bl_lin_fwd(k->qkv, mode, false, kv->qkv, kv->ln, N, false, &sv, NULL);
            q = kv->qkv; kk = q + C; vv = q + 2 * C; qs = ks = 3 * C;
        } else {
            bl_rmsnorm_fwd(kv->ln, rstd, kv->x, k->ln1_w, N, C, eps);
            q = kv->qkv; kk = q + N * Dq; vv = kk + N * Dkv; qs = Dq; ks = Dkv;
            bl_lin_fwd(k->q, mode, false, q, kv->ln, N, false, &sv, NULL);
            bl_lin_fwd(k->k, mode, false, kk, kv->ln, N, false, &sv, NULL);
            bl_lin_fwd(k->v, mode, false, vv, kv->ln, N, false, &sv, NULL);
            bl_rope_fwd(q, kv->rope_cos, kv->rope_sin, kv->pos, 1, N, H, D, Dq);
            bl_rope_fwd(kk, kv->rope_cos, kv->rope_sin, kv->pos, 1, N, Hkv, D, Dkv);
        }
        float *kc = kv->kc + l * B * T * Dkv, *vc = kv->vc + l * B * T * Dkv;
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = 0; t < n; t++) {
                memcpy(kc + (b * T + len + t) * Dkv, kk + (b * n + t) * ks, (size_t)Dkv * sizeof(float));
                memcpy(vc + (b * T + len + t) * Dkv, vv + (b * n + t) * ks, (size_t)Dkv * sizeof(float));
            }
#pragma omp parallel for schedule(static) if (B * H * n * (len + n) * D > 65536)
        for (int64_t row = 0; row < B * H * n; row++) {
            int64_t t = row % n, h = (row / n) % H, b = row / (n * H), p = len + t, kh = h / grp;
            int64_t lo = sw > 0 && p - sw > 0 ? p - sw : 0;
            float *s = kv->scores + row * T;
            const float *qi = q + (b * n + t) * qs + h * D;
            float mx = -INFINITY;
            for (int64_t j = lo; j <= p; j++) {
                const float *kj = kc + (b * T + j) * Dkv + kh * D;
                float acc = 0.0f;
                for (int64_t d = 0; d < D; d++) acc += qi[d] * kj[d];
                s[j] = scale * acc;
                if (s[j] > mx) mx = s[j];
            }
            double sum = 0.0;
            for (int64_t j = lo; j <= p; j++) { s[j] = bl_fast_expf(s[j] - mx); sum += s[j]; }
            float inv = (float)(1.0 / sum);
            float *o = kv->att + (b * n + t) * Dq + h * D;
            for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
            for (int64_t j = lo; j <= p; j++) {
                const float *vj = vc + (b * T + j) * Dkv + kh * D;
                float w = s[j] * inv;
                for (int64_t d = 0; d < D; d++) o[d] += w * vj[d];
            }
        }
        bl_lin_fwd(k->o, mode, false, kv->x, kv->att, N, true, &sv, NULL);
        if (gpt2) {
            bl_layernorm_fwd(kv->ln, mean, rstd, kv->x, k->ln2_w, k->ln2_b, N, C, eps);
            bl_lin_fwd(k->fc, mode, false, kv->f1, kv->ln, N, false, &sv, NULL);
            if (c->act == BL_ACT_GELU_TANH) bl_gelu_tanh_fwd(kv->f2, kv->f1, N * F);
            else if (c->act == BL_ACT_GELU_ERF) bl_gelu_erf_fwd(kv->f2, kv->f1, N * F);
            else bl_relu_fwd(kv->f2, kv->f1, N * F);
            bl_lin_fwd(k->proj, mode, false, kv->x, kv->f2, N, true, &sv, NULL);
        } else {
            bl_rmsnorm_fwd(kv->ln, rstd, kv->x, k->ln2_w, N, C, eps);
            bl_lin_fwd(k->gate, mode, false, kv->f1, kv->ln, N, false, &sv, NULL);
            bl_lin_fwd(k->up, mode, false, kv->f2, kv->ln, N, false, &sv, NULL);
            bl_swiglu_fwd(kv->f3, kv->f1, kv->f2, N * F);
            bl_lin_fwd(k->down, mode, false, kv->x, kv->f3, N, true, &sv, NULL);
        }
    }
    if (gpt2) bl_layernorm_fwd(kv->hidden, mean, rstd, kv->x, m->lnf_w, m->lnf_b, N, C, eps);
    else bl_rmsnorm_fwd(kv->hidden, rstd, kv->x, m->lnf_w, N, C, eps);
    bl_linear_fwd(kv->logits, kv->hidden, m->lm_head, NULL, N, C, c->vocab_size, false);
    kv->len += n;
    return BALORA_STATUS_OK;
}
