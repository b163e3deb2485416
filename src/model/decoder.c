/* The run context of the decoder families: forward (blocks through bl_block_fwd, block.c) and
 * backward, through ops.h and the attach point.
 * Head: final norm, then logits = h lm_head^T (CAUSAL_LM) or score(h[pooled]) (SEQ_CLS). */
#include "model/internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAKE(ptr, n) ((ptr) = bl_arena_take(a, (size_t)(n) * sizeof(*(ptr))))

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static void plan(bl_run *r, bl_arena *a) {
    bl_model *m = r->m;
    const bl_config *c = &m->cfg;
    int64_t N = r->max_B * r->max_T, T = r->max_T, C = c->hidden, F = c->intermediate;
    int64_t Dq = c->n_head * c->head_dim, Dkv = c->n_kv_head * c->head_dim, L = c->n_layer;
    int64_t Dqkv = Dq + 2 * Dkv;
    bool gpt2 = c->family == BL_FAMILY_GPT2;
    TAKE(r->ids, N); TAKE(r->mask, N); TAKE(r->pos, N); TAKE(r->pool_idx, r->max_B);
    TAKE(r->res, L + 1);
    TAKE(r->layers, L);
    TAKE(r->sv, m->mods.n_lin);
    for (int64_t l = 0; l <= L; l++) {
        float *p; TAKE(p, N * C);
        if (a->base) r->res[l] = p;
    }
    for (int64_t l = 0; l < L; l++) {
        bl_run_layer tmp, *y = a->base ? &r->layers[l] : &tmp;
        TAKE(y->ln1, N * C); TAKE(y->mean1, N); TAKE(y->rstd1, N);
        if (gpt2) { TAKE(y->q, N * 3 * C); y->k = y->v = NULL; }
        else { TAKE(y->q, N * Dq); TAKE(y->k, N * Dkv); TAKE(y->v, N * Dkv); }
        TAKE(y->probs, r->max_B * c->n_head * T * T);
        TAKE(y->att, N * Dq);
        TAKE(y->mid, N * C);
        TAKE(y->ln2, N * C); TAKE(y->mean2, N); TAKE(y->rstd2, N);
        TAKE(y->f1, N * F); TAKE(y->f2, N * F);
        if (!gpt2) TAKE(y->f3, N * F); else y->f3 = NULL;
    }
    int64_t lin_scratch = 0;
    for (int i = 0; i < m->mods.n_lin; i++) {
        const bl_linear *li = &m->mods.lin[i];
        bl_lin_saved tmp, *sv = a->base ? &r->sv[i] : &tmp;
        memset(sv, 0, sizeof *sv);
        if (li->lora) {
            TAKE(sv->u, N * li->lora->r);
            if (li->lora->dropout > 0.0f) { TAKE(sv->xd, N * li->in); TAKE(sv->mask, N * li->in); }
        }
        lin_scratch = max64(lin_scratch, bl_lin_scratch_floats(li, N));
    }
    TAKE(r->hidden, N * C); TAKE(r->lnf_mean, N); TAKE(r->lnf_rstd, N);
    if (c->head == BL_HEAD_CAUSAL_LM) TAKE(r->logits, N * c->vocab_size);
    else TAKE(r->logits, r->max_B * c->num_labels);
    if (!gpt2) { TAKE(r->rope_cos, T * c->head_dim / 2); TAKE(r->rope_sin, T * c->head_dim / 2); }
    TAKE(r->d_res, N * C);
    TAKE(r->d_ln, N * C);
    TAKE(r->d_att, N * Dq);
    TAKE(r->d_qkv, N * (gpt2 ? 3 * C : Dqkv));
    TAKE(r->d_f1, N * F); TAKE(r->d_f2, N * F);
    if (!gpt2) TAKE(r->d_f3, N * F);
    TAKE(r->scratch, max64(r->max_B * c->n_head * T * T, lin_scratch));
}

balora_status bl_run_init(bl_run *r, bl_model *m, int64_t max_B, int64_t max_T) {
    memset(r, 0, sizeof *r);
    if (max_B <= 0 || max_T <= 0)
        return bl_fail(BALORA_STATUS_INVALID, "run context: batch %lld x %lld must be positive", (long long)max_B, (long long)max_T);
    if (m->cfg.family == BL_FAMILY_GPT2 && max_T > m->cfg.max_pos)
        return bl_fail(BALORA_STATUS_INVALID, "run context: sequence length %lld exceeds the model's n_positions %lld",
                       (long long)max_T, (long long)m->cfg.max_pos);
    if (max_B > ((int64_t)1 << 24) / max_T || max_T > 65536)
        return bl_fail(BALORA_STATUS_INVALID, "run context: batch %lld x %lld is too large", (long long)max_B, (long long)max_T);
    r->m = m;
    r->max_B = max_B;
    r->max_T = max_T;
    plan(r, &r->arena);
    BL_TRY(bl_arena_alloc(&r->arena));
    plan(r, &r->arena);
    if (r->rope_cos) bl_rope_table(r->rope_cos, r->rope_sin, max_T, m->cfg.head_dim, m->cfg.rope_theta);
    for (int64_t i = 0; i < max_B * max_T; i++) r->pos[i] = i % max_T;
    r->attach_gen = m->mods.attach_gen;
    bl_rng_seed(&r->rng, 0);
    return BALORA_STATUS_OK;
}

void bl_run_free(bl_run *r) {
    if (!r) return;
    bl_arena_free(&r->arena);
    memset(r, 0, sizeof *r);
}

static bl_attn_desc attn_desc(const bl_run *r) {
    const bl_config *c = &r->m->cfg;
    bl_attn_desc d;
    memset(&d, 0, sizeof d);
    d.B = r->B; d.T = r->T;
    d.n_head = c->n_head; d.n_kv_head = c->n_kv_head; d.head_dim = c->head_dim;
    int64_t Dq = c->n_head * c->head_dim, Dkv = c->n_kv_head * c->head_dim;
    if (c->family == BL_FAMILY_GPT2) {
        d.q_stride = d.k_stride = d.v_stride = 3 * c->hidden;
        d.scale = c->scale_attn_weights ? 1.0f / sqrtf((float)c->head_dim) : 1.0f;
    } else {
        d.q_stride = Dq; d.k_stride = d.v_stride = Dkv;
        d.scale = 1.0f / sqrtf((float)c->head_dim);
    }
    d.o_stride = Dq;
    d.causal = true;
    /* transformers' sliding-window mask keeps keys with i - j <= sliding_window */
    d.window = c->sliding_window > 0 ? c->sliding_window + 1 : 0;
    d.key_mask = r->mask;
    d.bias = NULL;
    return d;
}

static const float *head_weights(const bl_param *p, bl_adapter_mode mode) {
    return (mode == BL_ADAPTER_ON && p->train_data) ? p->train_data : p->data;
}

balora_status bl_model_forward(bl_run *r, const bl_batch *bt, bl_adapter_mode mode) {
    bl_model *m = r->m;
    const bl_config *c = &m->cfg;
    if (r->attach_gen != m->mods.attach_gen)
        return bl_fail(BALORA_STATUS_INVALID, "forward: adapters were attached or detached after bl_run_init; "
                       "hint: create the run context after attaching adapters");
    if (bt->B <= 0 || bt->T <= 0 || bt->B > r->max_B || bt->T > r->max_T)
        return bl_fail(BALORA_STATUS_INVALID, "forward: batch %lld x %lld does not fit the run context (%lld x %lld)",
                       (long long)bt->B, (long long)bt->T, (long long)r->max_B, (long long)r->max_T);
    int64_t B = bt->B, T = bt->T, N = B * T, C = c->hidden;
    for (int64_t i = 0; i < N; i++) {
        int64_t v = bt->attention_mask ? bt->attention_mask[i] : 1;
        if (v != 0 && v != 1)
            return bl_fail(BALORA_STATUS_INVALID, "attention_mask: value %lld at [%lld, %lld] is not 0 or 1",
                           (long long)v, (long long)(i / T), (long long)(i % T));
        r->mask[i] = v;
        r->ids[i] = bt->input_ids[i];
        r->pos[i] = i % T;
    }
    r->have_forward = false;
    r->B = B; r->T = T;
    BL_TRY(bl_model_embed(m, r->res[0], r->ids, r->pos, N));
    bl_attn_desc d = attn_desc(r);
    bl_block_pass pass = {.mode = mode, .train = r->train && mode == BL_ADAPTER_ON, .rng = &r->rng, .sv = r->sv,
                          .pos = r->pos, .B = B, .T = T, .rope_cos = r->rope_cos, .rope_sin = r->rope_sin, .full = &d};
    for (int64_t l = 0; l < c->n_layer; l++) bl_block_fwd(m, l, &r->layers[l], r->res[l], r->res[l + 1], &pass);
    bl_model_final_norm(m, r->hidden, r->lnf_mean, r->lnf_rstd, r->res[c->n_layer], N);
    if (c->head == BL_HEAD_CAUSAL_LM) {
        bl_linear_fwd(r->logits, r->hidden, m->lm_head, NULL, N, C, c->vocab_size, false);
        r->n_logits = N * c->vocab_size;
    } else {
        /* transformers: index of the first pad_token_id minus one, modulo T (the last token when
         * there is no pad) */
        if (c->pad_token_id < 0 && B > 1)
            return bl_fail(BALORA_STATUS_INVALID, "%s: pad_token_id is not set, so rows of a batch > 1 cannot be pooled "
                           "(as transformers); hint: set pad_token_id in config.json", m->source);
        const float *score = head_weights(&m->mods.params[m->p_score], mode);
        for (int64_t b = 0; b < B; b++) {
            int64_t first = 0;
            if (c->pad_token_id >= 0)
                while (first < T && r->ids[b * T + first] != c->pad_token_id) first++;
            if (first == T) first = 0; /* argmax of all-false is 0 */
            int64_t p = c->pad_token_id < 0 ? T - 1 : ((first - 1) % T + T) % T;
            r->pool_idx[b] = p;
            bl_linear_fwd(r->logits + b * c->num_labels, r->hidden + (b * T + p) * C, score, NULL, 1, C, c->num_labels, false);
        }
        r->n_logits = B * c->num_labels;
    }
    r->last_mode = mode;
    r->have_forward = true;
    return BALORA_STATUS_OK;
}

static float *G(bl_model *m, int idx) { return idx >= 0 ? m->mods.params[idx].grad : NULL; }

balora_status bl_model_backward(bl_run *r, const float *dlogits) {
    bl_model *m = r->m;
    const bl_config *c = &m->cfg;
    if (!r->have_forward)
        return bl_fail(BALORA_STATUS_INVALID, "backward: no forward pass to differentiate (the last forward failed or none ran)");
    if (r->last_mode == BL_ADAPTER_INITIAL)
        return bl_fail(BALORA_STATUS_INVALID, "backward: the last forward used the frozen initial factors (teacher); "
                       "hint: run the student forward (BL_ADAPTER_ON) before backward");
    if (r->attach_gen != m->mods.attach_gen)
        return bl_fail(BALORA_STATUS_INVALID, "backward: adapters changed since the forward");
    int64_t B = r->B, T = r->T, N = B * T, C = c->hidden, F = c->intermediate, V = c->vocab_size;
    int64_t Dq = c->n_head * c->head_dim, Dkv = c->n_kv_head * c->head_dim;
    bool gpt2 = c->family == BL_FAMILY_GPT2;
    float *dh = r->d_ln; /* d hidden [N, C] */
    memset(dh, 0, (size_t)(N * C) * sizeof(float));
    if (c->head == BL_HEAD_CAUSAL_LM) {
        bl_linear_bwd(dh, G(m, m->p_lm_head), NULL, dlogits, r->hidden, m->lm_head, N, C, V);
    } else {
        bl_param *sp = &m->mods.params[m->p_score];
        const float *score = head_weights(sp, r->last_mode);
        int64_t nl = c->num_labels;
        for (int64_t b = 0; b < B; b++) {
            int64_t p = r->pool_idx[b];
            bl_linear_bwd(dh + (b * T + p) * C, sp->grad, NULL, dlogits + b * nl, r->hidden + (b * T + p) * C, score, 1, C, nl);
        }
    }
    float *dres = r->d_res;
    memset(dres, 0, (size_t)(N * C) * sizeof(float));
    float *xL = r->res[c->n_layer];
    if (gpt2) bl_layernorm_bwd(dres, G(m, m->p_lnf_w), G(m, m->p_lnf_b), dh, xL, r->lnf_mean, r->lnf_rstd, m->lnf_w, N, C);
    else bl_rmsnorm_bwd(dres, G(m, m->p_lnf_w), dh, xL, r->lnf_rstd, m->lnf_w, N, C);

    bl_attn_desc d = attn_desc(r);
#define SV(lp_) (&r->sv[(lp_) - m->mods.lin])
    for (int64_t l = c->n_layer - 1; l >= 0; l--) {
        const bl_block *k = &m->blocks[l];
        bl_run_layer *y = &r->layers[l];
        float *x = r->res[l];
        float *dln = r->d_ln;
        /* ---- MLP: out = mid + mlp(ln2(mid)); dres is d out and becomes d mid */
        memset(r->d_f1, 0, (size_t)(N * F) * sizeof(float));
        memset(r->d_f2, 0, (size_t)(N * F) * sizeof(float));
        memset(dln, 0, (size_t)(N * C) * sizeof(float));
        if (gpt2) {
            bl_lin_bwd(k->proj, r->d_f2, dres, y->f2, N, SV(k->proj), r->scratch);
            if (c->act == BL_ACT_GELU_TANH) bl_gelu_tanh_bwd(r->d_f1, r->d_f2, y->f1, N * F);
            else if (c->act == BL_ACT_GELU_ERF) bl_gelu_erf_bwd(r->d_f1, r->d_f2, y->f1, N * F);
            else bl_relu_bwd(r->d_f1, r->d_f2, y->f1, N * F);
            bl_lin_bwd(k->fc, dln, r->d_f1, y->ln2, N, SV(k->fc), r->scratch);
            bl_layernorm_bwd(dres, G(m, k->p_ln2_w), G(m, k->p_ln2_b), dln, y->mid, y->mean2, y->rstd2, k->ln2_w, N, C);
        } else {
            memset(r->d_f3, 0, (size_t)(N * F) * sizeof(float));
            bl_lin_bwd(k->down, r->d_f3, dres, y->f3, N, SV(k->down), r->scratch);
            bl_swiglu_bwd(r->d_f1, r->d_f2, r->d_f3, y->f1, y->f2, N * F);
            bl_lin_bwd(k->gate, dln, r->d_f1, y->ln2, N, SV(k->gate), r->scratch);
            bl_lin_bwd(k->up, dln, r->d_f2, y->ln2, N, SV(k->up), r->scratch);
            bl_rmsnorm_bwd(dres, G(m, k->p_ln2_w), dln, y->mid, y->rstd2, k->ln2_w, N, C);
        }
        /* ---- attention: mid = x + o(attn(...)); dres becomes d x */
        memset(r->d_att, 0, (size_t)(N * Dq) * sizeof(float));
        bl_lin_bwd(k->o, r->d_att, dres, y->att, N, SV(k->o), r->scratch);
        memset(dln, 0, (size_t)(N * C) * sizeof(float));
        /* below block 0 only the embeddings would use d x: skip it when they are frozen */
        bool need_dx = l > 0 || G(m, m->p_wte) || (gpt2 && G(m, m->p_wpe));
        float *dlnx = need_dx ? dln : NULL;
        if (gpt2) {
            float *dqkv = r->d_qkv;
            memset(dqkv, 0, (size_t)(N * 3 * C) * sizeof(float));
            bl_attn_bwd(&d, dqkv, dqkv + C, dqkv + 2 * C, NULL, r->scratch, r->d_att, y->q, y->q + C, y->q + 2 * C, y->probs);
            bl_lin_bwd(k->qkv, dlnx, dqkv, y->ln1, N, SV(k->qkv), r->scratch);
            if (need_dx) /* (full fine-tuning always needs it: the embeddings have grads) */
                bl_layernorm_bwd(dres, G(m, k->p_ln1_w), G(m, k->p_ln1_b), dln, x, y->mean1, y->rstd1, k->ln1_w, N, C);
        } else {
            float *dq = r->d_qkv, *dk = dq + N * Dq, *dv = dk + N * Dkv;
            memset(dq, 0, (size_t)(N * (Dq + 2 * Dkv)) * sizeof(float));
            bl_attn_bwd(&d, dq, dk, dv, NULL, r->scratch, r->d_att, y->q, y->k, y->v, y->probs);
            bl_rope_bwd(dq, r->rope_cos, r->rope_sin, r->pos, B, T, c->n_head, c->head_dim, Dq);
            bl_rope_bwd(dk, r->rope_cos, r->rope_sin, r->pos, B, T, c->n_kv_head, c->head_dim, Dkv);
            bl_lin_bwd(k->q, dlnx, dq, y->ln1, N, SV(k->q), r->scratch);
            bl_lin_bwd(k->k, dlnx, dk, y->ln1, N, SV(k->k), r->scratch);
            bl_lin_bwd(k->v, dlnx, dv, y->ln1, N, SV(k->v), r->scratch);
            if (need_dx) /* (full fine-tuning always needs it: the embeddings have grads) */
                bl_rmsnorm_bwd(dres, G(m, k->p_ln1_w), dln, x, y->rstd1, k->ln1_w, N, C);
        }
    }
    if (G(m, m->p_wte)) bl_embedding_bwd(G(m, m->p_wte), dres, r->ids, N, C);
    if (gpt2 && G(m, m->p_wpe)) bl_embedding_bwd(G(m, m->p_wpe), dres, r->pos, N, C);
    return BALORA_STATUS_OK;
}
