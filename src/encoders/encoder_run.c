/* Encoder run context: forward and backward of bert / roberta / deberta-v2 classifiers (encoder.h). */
#include "encoders/encoder.h"
#include "encoders/enc_ops.h"
#include <math.h>
#include <string.h>

typedef struct layer_sv {
    float *q, *k, *v;          /* [N, C] */
    float *probs;              /* [B, H, T, T] */
    float *ctx;                /* [N, C] */
    float *a_pre, *h1;         /* [N, C] LN1 input / output */
    float *mean1, *rstd1;      /* [N] */
    float *f, *g;              /* [N, F] intermediate pre-activation / activation */
    float *o_pre;              /* [N, C] LN2 input (output = xs[l+1]) */
    float *mean2, *rstd2;      /* [N] */
    float *PK, *PQ;            /* [S2, C] deberta: key_proj / query_proj of the relative embeddings */
    bl_lin_saved sq, sk, sv, sao, sfi, sfo, spk, spq;
} layer_sv;

struct bl_enc_saved {
    layer_sv *L;               /* [n_layer] */
    float **xs;                /* [n_layer + 1] -> [N, C] */
    int64_t *ids, *mask, *pos_ids, *type_ids; /* [N] */
    float *emb_sum;            /* [N, C] embeddings LayerNorm input */
    float *emb_mean, *emb_rstd; /* [N] */
    float *rel_ln;             /* [S2, C] (normalised) relative embeddings */
    float *rel_mean, *rel_rstd; /* [S2] */
    int32_t *idx_c2p, *idx_p2c; /* [T, T] */
    int64_t idx_T;             /* T the index tables were built for */
    float *bias;               /* [B, H, T, T] relative attention bias */
    float *cls;                /* [B, C] hidden state of token 0 */
    float *pool_pre;           /* [B, C] pooler / classifier.dense output before its activation */
    bl_lin_saved spool;
    const float *hw, *hb, *hdw, *hdb; /* head tensors used by the last forward */
    /* backward */
    float *dcur, *dA, *dB, *dq, *dk, *dv, *dctx; /* [N, C] */
    float *dbig, *dbig2;       /* [N, F] */
    float *dattn, *dbias;      /* [B, H, T, T] */
    float *dPK, *dPQ, *drel;   /* [S2, C] */
    float *dpooled, *dpool_pre, *dcls; /* [B, C] */
    float *scratch;            /* linear backward and relative-bias scratch */
};

static float *takef(bl_arena *a, int64_t n) { return bl_arena_take(a, (size_t)(n > 0 ? n : 1) * sizeof(float)); }

static void plan_lin(bl_arena *a, bl_lin_saved *s, const bl_linear *l, int64_t N) {
    memset(s, 0, sizeof *s);
    if (!l->lora) return;
    s->u = takef(a, N * l->lora->r);
    if (l->lora->dropout > 0) {
        s->xd = takef(a, N * l->in);
        s->mask = takef(a, N * l->in);
    }
}

static int64_t lin_scratch(const bl_linear *l, int64_t N) { return N * ((l->lora ? l->lora->r : 0) + l->in); }

balora_status bl_enc_run_init(bl_enc_run *r, bl_encoder *m, int64_t max_B, int64_t max_T) {
    memset(r, 0, sizeof *r);
    const bl_enc_config *c = &m->cfg;
    if (max_B < 1 || max_T < 1) return bl_fail(BALORA_STATUS_INVALID, "encoder run: batch %lld x %lld", (long long)max_B, (long long)max_T);
    if (c->arch == BL_ENC_BERT && max_T > c->max_pos)
        return bl_fail(BALORA_STATUS_INVALID, "encoder run: sequence length %lld exceeds max_position_embeddings %lld; hint: "
                       "truncate to %lld tokens", (long long)max_T, (long long)c->max_pos, (long long)c->max_pos);
    r->m = m;
    r->max_B = max_B;
    r->max_T = max_T;
    int64_t B = max_B, T = max_T, N = B * T, C = c->hidden, F = c->intermediate, H = c->n_head, L = c->n_layer;
    int64_t S2 = c->arch == BL_ENC_DEBERTA_V2 && c->relative_attention ? 2 * c->att_span : 0;
    int64_t NL = c->num_labels;
    bool deb_rel = S2 > 0;
    int64_t scratch = T * (S2 > 0 ? S2 : 1);
    for (int i = 0; i < m->mods.n_lin; i++) {
        const bl_linear *l = &m->mods.lin[i];
        int64_t n = l == m->pooler ? B : N;
        if (lin_scratch(l, n) > scratch) scratch = lin_scratch(l, n);
        if (deb_rel && lin_scratch(l, S2) > scratch) scratch = lin_scratch(l, S2);
    }
    bl_arena a = {0};
    struct bl_enc_saved *s = NULL;
    for (int pass = 0; pass < 2; pass++) {
        s = bl_arena_take(&a, sizeof *s);
        layer_sv *Ls = bl_arena_take(&a, (size_t)L * sizeof(layer_sv));
        float **xs = bl_arena_take(&a, (size_t)(L + 1) * sizeof(float *));
        if (s) { s->L = Ls; s->xs = xs; }
        for (int64_t l = 0; l <= L; l++) { float *x = takef(&a, N * C); if (s) s->xs[l] = x; }
        for (int64_t l = 0; l < L; l++) {
            layer_sv tmp, *ls = s ? &s->L[l] : &tmp;
            const bl_enc_layer *ly = &m->layers[l];
            ls->q = takef(&a, N * C); ls->k = takef(&a, N * C); ls->v = takef(&a, N * C);
            ls->probs = takef(&a, B * H * T * T);
            ls->ctx = takef(&a, N * C);
            ls->a_pre = takef(&a, N * C); ls->h1 = takef(&a, N * C);
            ls->mean1 = takef(&a, N); ls->rstd1 = takef(&a, N);
            ls->f = takef(&a, N * F); ls->g = takef(&a, N * F);
            ls->o_pre = takef(&a, N * C);
            ls->mean2 = takef(&a, N); ls->rstd2 = takef(&a, N);
            ls->PK = deb_rel ? takef(&a, S2 * C) : NULL;
            ls->PQ = deb_rel ? takef(&a, S2 * C) : NULL;
            plan_lin(&a, &ls->sq, ly->q, N); plan_lin(&a, &ls->sk, ly->k, N); plan_lin(&a, &ls->sv, ly->v, N);
            plan_lin(&a, &ls->sao, ly->ao, N); plan_lin(&a, &ls->sfi, ly->fi, N); plan_lin(&a, &ls->sfo, ly->fo, N);
            if (deb_rel) { plan_lin(&a, &ls->spk, ly->k, S2); plan_lin(&a, &ls->spq, ly->q, S2); }
        }
        struct bl_enc_saved tmp, *t = s ? s : &tmp;
        t->ids = bl_arena_take(&a, (size_t)N * sizeof(int64_t));
        t->mask = bl_arena_take(&a, (size_t)N * sizeof(int64_t));
        t->pos_ids = bl_arena_take(&a, (size_t)N * sizeof(int64_t));
        t->type_ids = bl_arena_take(&a, (size_t)N * sizeof(int64_t));
        t->emb_sum = takef(&a, N * C); t->emb_mean = takef(&a, N); t->emb_rstd = takef(&a, N);
        t->rel_ln = deb_rel ? takef(&a, S2 * C) : NULL;
        t->rel_mean = takef(&a, S2); t->rel_rstd = takef(&a, S2);
        t->idx_c2p = bl_arena_take(&a, (size_t)(T * T) * sizeof(int32_t));
        t->idx_p2c = bl_arena_take(&a, (size_t)(T * T) * sizeof(int32_t));
        t->bias = deb_rel ? takef(&a, B * H * T * T) : NULL;
        t->cls = takef(&a, B * C); t->pool_pre = takef(&a, B * C);
        if (m->pooler) plan_lin(&a, &t->spool, m->pooler, B); else memset(&t->spool, 0, sizeof t->spool);
        t->dcur = takef(&a, N * C); t->dA = takef(&a, N * C); t->dB = takef(&a, N * C);
        t->dq = takef(&a, N * C); t->dk = takef(&a, N * C); t->dv = takef(&a, N * C); t->dctx = takef(&a, N * C);
        t->dbig = takef(&a, N * F); t->dbig2 = takef(&a, N * F);
        t->dattn = takef(&a, B * H * T * T); t->dbias = deb_rel ? takef(&a, B * H * T * T) : NULL;
        t->dPK = takef(&a, S2 * C); t->dPQ = takef(&a, S2 * C); t->drel = takef(&a, S2 * C);
        t->dpooled = takef(&a, B * C); t->dpool_pre = takef(&a, B * C); t->dcls = takef(&a, B * C);
        t->scratch = takef(&a, scratch);
        float *logits = takef(&a, B * NL), *dlogits = takef(&a, B * NL), *pooled = takef(&a, B * C);
        if (pass == 1) { r->logits = logits; r->dlogits = dlogits; r->pooled = pooled; }
        if (pass == 0) BL_TRY(bl_arena_alloc(&a));
    }
    r->arena = a;
    r->sv = s;
    s->idx_T = -1;
    r->attach_gen = m->mods.attach_gen;
    bl_rng_seed(&r->rng, 0);
    return BALORA_STATUS_OK;
}

void bl_enc_run_free(bl_enc_run *r) {
    if (!r) return;
    bl_arena_free(&r->arena);
    memset(r, 0, sizeof *r);
}

const float *bl_enc_layer_hidden(const bl_enc_run *r, int64_t l) {
    if (!r->have_forward || l < 0 || l > r->m->cfg.n_layer) return NULL;
    return r->sv->xs[l];
}

/* ---------------------------------------------------------------- helpers */

static void act_fwd(bl_enc_act k, float *y, const float *x, int64_t n) {
    switch (k) {
    case BL_ENC_ACT_GELU: bl_gelu_erf_fwd(y, x, n); break;
    case BL_ENC_ACT_GELU_TANH: bl_gelu_tanh_fwd(y, x, n); break;
    case BL_ENC_ACT_RELU: bl_relu_fwd(y, x, n); break;
    case BL_ENC_ACT_TANH: bl_tanh_fwd(y, x, n); break;
    }
}

/* dx += act'(x) dy (x: input, y: output) */
static void act_bwd(bl_enc_act k, float *dx, const float *dy, const float *x, const float *y, int64_t n) {
    switch (k) {
    case BL_ENC_ACT_GELU: bl_gelu_erf_bwd(dx, dy, x, n); break;
    case BL_ENC_ACT_GELU_TANH: bl_gelu_tanh_bwd(dx, dy, x, n); break;
    case BL_ENC_ACT_RELU: bl_relu_bwd(dx, dy, x, n); break;
    case BL_ENC_ACT_TANH: bl_tanh_bwd(dx, dy, y, n); break;
    }
}

static void zero(float *x, int64_t n) { memset(x, 0, (size_t)n * sizeof(float)); }

static const float *head_data(const bl_encoder *m, int i, bl_adapter_mode mode) {
    if (i < 0) return NULL;
    const bl_param *p = &m->mods.params[i];
    return (mode == BL_ADAPTER_ON && p->train_data) ? p->train_data : p->data;
}

static float *pgrad(const bl_encoder *m, int i) { return i >= 0 ? m->mods.params[i].grad : NULL; }
static const float *pdata(const bl_encoder *m, int i) { return i >= 0 ? m->mods.params[i].data : NULL; }

static bl_attn_desc attn_desc(const bl_enc_run *r) {
    const bl_enc_config *c = &r->m->cfg;
    bl_attn_desc d = {0};
    d.B = r->B; d.T = r->T;
    d.n_head = d.n_kv_head = c->n_head;
    d.head_dim = c->head_dim;
    d.q_stride = d.k_stride = d.v_stride = d.o_stride = c->hidden;
    double sf = 1.0 + (c->c2p ? 1 : 0) + (c->p2c ? 1 : 0);
    d.scale = (float)(1.0 / sqrt((double)c->head_dim * sf));
    d.key_mask = r->sv->mask;
    d.bias = r->sv->bias;
    return d;
}

static bl_relbias_desc rel_desc(const bl_enc_run *r) {
    const bl_enc_config *c = &r->m->cfg;
    bl_relbias_desc d = {0};
    d.B = r->B; d.T = r->T; d.H = c->n_head; d.D = c->head_dim; d.S2 = 2 * c->att_span;
    d.q_stride = d.k_stride = d.p_stride = c->hidden;
    double sf = 1.0 + (c->c2p ? 1 : 0) + (c->p2c ? 1 : 0);
    d.inv_scale = (float)(1.0 / sqrt((double)c->head_dim * sf));
    d.c2p = c->c2p; d.p2c = c->p2c;
    d.idx_c2p = r->sv->idx_c2p; d.idx_p2c = r->sv->idx_p2c;
    return d;
}

/* ---------------------------------------------------------------- forward */

balora_status bl_enc_forward(bl_enc_run *r, const bl_enc_batch *b, bl_adapter_mode mode) {
    bl_encoder *m = r->m;
    const bl_enc_config *c = &m->cfg;
    struct bl_enc_saved *s = r->sv;
    if (r->attach_gen != m->mods.attach_gen)
        return bl_fail(BALORA_STATUS_INVALID, "encoder run: adapters or full fine-tuning changed after bl_enc_run_init; "
                       "hint: create the run after attaching adapters");
    if (b->B < 1 || b->T < 1 || b->B > r->max_B || b->T > r->max_T)
        return bl_fail(BALORA_STATUS_INVALID, "encoder batch %lld x %lld does not fit the run's %lld x %lld",
                       (long long)b->B, (long long)b->T, (long long)r->max_B, (long long)r->max_T);
    if (!b->input_ids) return bl_fail(BALORA_STATUS_INVALID, "encoder batch: input_ids is NULL");
    int64_t B = b->B, T = b->T, N = B * T, C = c->hidden, F = c->intermediate, L = c->n_layer;
    r->have_forward = false;
    r->B = B; r->T = T;
    /* inputs */
    for (int64_t bi = 0; bi < B; bi++) {
        int64_t real = 0, cnt = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t i = bi * T + t, mk = b->attention_mask ? b->attention_mask[i] : 1;
            if (mk != 0 && mk != 1)
                return bl_fail(BALORA_STATUS_INVALID, "attention_mask[%lld][%lld] = %lld; hint: 1 = token, 0 = padding",
                               (long long)bi, (long long)t, (long long)mk);
            s->mask[i] = mk;
            real += mk;
            s->ids[i] = b->input_ids[i];
            s->type_ids[i] = b->token_type_ids ? b->token_type_ids[i] : 0;
            if (c->arch == BL_ENC_ROBERTA) {
                /* position ids from input ids: cumulative count of non-pad tokens + padding_idx */
                if (b->input_ids[i] != c->pad_id) { cnt++; s->pos_ids[i] = cnt + c->pad_id; }
                else s->pos_ids[i] = c->pad_id;
            } else {
                s->pos_ids[i] = t;
            }
            if (m->pos >= 0 && s->pos_ids[i] >= c->max_pos)
                return bl_fail(BALORA_STATUS_INVALID, "row %lld: position id %lld exceeds max_position_embeddings %lld; "
                               "hint: truncate the sequence", (long long)bi, (long long)s->pos_ids[i], (long long)c->max_pos);
        }
        if (real == 0)
            return bl_fail(BALORA_STATUS_INVALID, "encoder batch row %lld has no real token (attention_mask all 0)", (long long)bi);
        if (!s->mask[bi * T])
            return bl_fail(BALORA_STATUS_INVALID, "encoder batch row %lld: the first token is padding; hint: pad on the "
                           "right (the classifier reads token 0)", (long long)bi);
    }
    /* embeddings */
    BL_TRY(bl_embedding_fwd(s->emb_sum, s->ids, pdata(m, m->word), N, c->vocab_size, C, false, "input_ids"));
    if (m->pos >= 0) BL_TRY(bl_embedding_fwd(s->emb_sum, s->pos_ids, pdata(m, m->pos), N, c->max_pos, C, true, "position_ids"));
    if (m->type >= 0) BL_TRY(bl_embedding_fwd(s->emb_sum, s->type_ids, pdata(m, m->type), N, c->type_vocab, C, true, "token_type_ids"));
    else if (b->token_type_ids)
        for (int64_t i = 0; i < N; i++)
            if (b->token_type_ids[i] != 0)
                return bl_fail(BALORA_STATUS_INVALID, "token_type_ids: %s has no token-type embeddings (type_vocab_size 0) "
                               "but position %lld has type %lld", c->model_type, (long long)i, (long long)b->token_type_ids[i]);
    bl_layernorm_fwd(s->xs[0], s->emb_mean, s->emb_rstd, s->emb_sum, pdata(m, m->emb_ln_w), pdata(m, m->emb_ln_b), N, C, (float)c->ln_eps);
    if (c->arch == BL_ENC_DEBERTA_V2)
        for (int64_t i = 0; i < N; i++) if (!s->mask[i]) zero(s->xs[0] + i * C, C);
    /* relative positions (deberta) */
    bool deb_rel = c->arch == BL_ENC_DEBERTA_V2 && c->relative_attention;
    int64_t S2 = deb_rel ? 2 * c->att_span : 0;
    if (deb_rel) {
        if (s->idx_T != T) {
            bl_deberta_rel_index(s->idx_c2p, s->idx_p2c, T, c->position_buckets, c->max_rel_pos, c->att_span);
            s->idx_T = T;
        }
        if (m->rel_ln_w >= 0)
            bl_layernorm_fwd(s->rel_ln, s->rel_mean, s->rel_rstd, pdata(m, m->rel), pdata(m, m->rel_ln_w),
                             pdata(m, m->rel_ln_b), S2, C, (float)c->ln_eps);
        else
            memcpy(s->rel_ln, pdata(m, m->rel), (size_t)(S2 * C) * sizeof(float));
    }
    bl_attn_desc ad = attn_desc(r);
    bl_relbias_desc rd = deb_rel ? rel_desc(r) : (bl_relbias_desc){0};
    bool tr = r->train;
    for (int64_t l = 0; l < L; l++) {
        const bl_enc_layer *ly = &m->layers[l];
        layer_sv *ls = &s->L[l];
        const float *x = s->xs[l];
        bl_lin_fwd(ly->q, mode, tr, ls->q, x, N, false, &ls->sq, &r->rng);
        bl_lin_fwd(ly->k, mode, tr, ls->k, x, N, false, &ls->sk, &r->rng);
        bl_lin_fwd(ly->v, mode, tr, ls->v, x, N, false, &ls->sv, &r->rng);
        if (deb_rel) {
            bl_lin_fwd(ly->k, mode, tr, ls->PK, s->rel_ln, S2, false, &ls->spk, &r->rng);
            bl_lin_fwd(ly->q, mode, tr, ls->PQ, s->rel_ln, S2, false, &ls->spq, &r->rng);
            bl_relbias_fwd(&rd, s->bias, ls->q, ls->k, ls->PK, ls->PQ, s->scratch);
        }
        bl_attn_fwd(&ad, ls->ctx, ls->probs, ls->q, ls->k, ls->v);
        bl_lin_fwd(ly->ao, mode, tr, ls->a_pre, ls->ctx, N, false, &ls->sao, &r->rng);
        bl_acc(ls->a_pre, x, N * C);
        bl_layernorm_fwd(ls->h1, ls->mean1, ls->rstd1, ls->a_pre, pdata(m, ly->ln1_w), pdata(m, ly->ln1_b), N, C, (float)c->ln_eps);
        bl_lin_fwd(ly->fi, mode, tr, ls->f, ls->h1, N, false, &ls->sfi, &r->rng);
        act_fwd(c->act, ls->g, ls->f, N * F);
        bl_lin_fwd(ly->fo, mode, tr, ls->o_pre, ls->g, N, false, &ls->sfo, &r->rng);
        bl_acc(ls->o_pre, ls->h1, N * C);
        bl_layernorm_fwd(s->xs[l + 1], ls->mean2, ls->rstd2, ls->o_pre, pdata(m, ly->ln2_w), pdata(m, ly->ln2_b), N, C, (float)c->ln_eps);
    }
    /* head */
    for (int64_t bi = 0; bi < B; bi++) memcpy(s->cls + bi * C, s->xs[L] + bi * T * C, (size_t)C * sizeof(float));
    s->hw = head_data(m, m->head_w, mode);
    s->hb = head_data(m, m->head_b, mode);
    s->hdw = head_data(m, m->head_dense_w, mode);
    s->hdb = head_data(m, m->head_dense_b, mode);
    if (c->arch == BL_ENC_ROBERTA) {
        bl_linear_fwd(s->pool_pre, s->cls, s->hdw, s->hdb, B, C, C, false);
        bl_tanh_fwd(r->pooled, s->pool_pre, B * C);
    } else {
        bl_lin_fwd(m->pooler, mode, tr, s->pool_pre, s->cls, B, false, &s->spool, &r->rng);
        act_fwd(c->pooler_act, r->pooled, s->pool_pre, B * C);
    }
    bl_linear_fwd(r->logits, r->pooled, s->hw, s->hb, B, C, c->num_labels, false);
    r->last_mode = mode;
    r->have_forward = true;
    return BALORA_STATUS_OK;
}

balora_status bl_enc_loss(bl_enc_run *r, const int64_t *labels, const float *targets, double *loss, float *dlogits) {
    if (!r->have_forward) return bl_fail(BALORA_STATUS_INVALID, "encoder loss: no forward pass to score");
    const bl_enc_config *c = &r->m->cfg;
    if (c->regression) {
        if (!targets) return bl_fail(BALORA_STATUS_INVALID, "encoder loss: a regression model needs float targets");
        return bl_mse(r->logits, targets, r->B, dlogits, 1.0f, loss);
    }
    if (!labels) return bl_fail(BALORA_STATUS_INVALID, "encoder loss: a classifier needs integer labels");
    int64_t n;
    BL_TRY(bl_xent(r->logits, labels, r->B, 1, c->num_labels, false, dlogits, 1.0f, loss, &n));
    return BALORA_STATUS_OK;
}

/* ---------------------------------------------------------------- backward */

/* dhidden NULL: from the head's dlogits; else from d loss / d (last hidden state) [B, T, C] (no head). */
static balora_status enc_backward(bl_enc_run *r, const float *dlogits, const float *dhidden) {
    bl_encoder *m = r->m;
    const bl_enc_config *c = &m->cfg;
    struct bl_enc_saved *s = r->sv;
    if (!r->have_forward) return bl_fail(BALORA_STATUS_INVALID, "encoder backward: no forward pass");
    if (!(r->last_mode == BL_ADAPTER_ON || (r->last_mode == BL_ADAPTER_OFF && m->full_ft)))
        return bl_fail(BALORA_STATUS_INVALID, "encoder backward: the last forward ran with the adapter %s; hint: backward "
                       "follows an ON forward (or OFF with full fine-tuning)", r->last_mode == BL_ADAPTER_OFF ? "off" : "initial");
    if (r->attach_gen != m->mods.attach_gen)
        return bl_fail(BALORA_STATUS_INVALID, "encoder backward: adapters changed since the forward");
    int64_t B = r->B, T = r->T, N = B * T, C = c->hidden, F = c->intermediate, L = c->n_layer, NL = c->num_labels;
    bool deb_rel = c->arch == BL_ENC_DEBERTA_V2 && c->relative_attention;
    int64_t S2 = deb_rel ? 2 * c->att_span : 0;
    float *sc = s->scratch;
    /* head */
    if (dhidden) {
        memcpy(s->dcur, dhidden, (size_t)(N * C) * sizeof(float));
    } else {
    zero(s->dpooled, B * C);
    bl_linear_bwd(s->dpooled, pgrad(m, m->head_w), pgrad(m, m->head_b), dlogits, r->pooled, s->hw, B, C, NL);
    zero(s->dpool_pre, B * C);
    zero(s->dcls, B * C);
    if (c->arch == BL_ENC_ROBERTA) {
        bl_tanh_bwd(s->dpool_pre, s->dpooled, r->pooled, B * C);
        bl_linear_bwd(s->dcls, pgrad(m, m->head_dense_w), pgrad(m, m->head_dense_b), s->dpool_pre, s->cls, s->hdw, B, C, C);
    } else {
        act_bwd(c->pooler_act, s->dpool_pre, s->dpooled, s->pool_pre, r->pooled, B * C);
        bl_lin_bwd(m->pooler, s->dcls, s->dpool_pre, s->cls, B, &s->spool, sc);
    }
    zero(s->dcur, N * C);
    for (int64_t bi = 0; bi < B; bi++) bl_acc(s->dcur + bi * T * C, s->dcls + bi * C, C);
    }
    if (deb_rel) zero(s->drel, S2 * C);
    bl_attn_desc ad = attn_desc(r);
    bl_relbias_desc rd = deb_rel ? rel_desc(r) : (bl_relbias_desc){0};
    bool need_dx0 = m->full_ft;
    for (int64_t l = L - 1; l >= 0; l--) {
        const bl_enc_layer *ly = &m->layers[l];
        layer_sv *ls = &s->L[l];
        const float *x = s->xs[l];
        /* LN2 */
        zero(s->dA, N * C);
        bl_layernorm_bwd(s->dA, pgrad(m, ly->ln2_w), pgrad(m, ly->ln2_b), s->dcur, ls->o_pre, ls->mean2, ls->rstd2,
                         pdata(m, ly->ln2_w), N, C);
        memcpy(s->dB, s->dA, (size_t)(N * C) * sizeof(float)); /* residual into h1 */
        zero(s->dbig, N * F);
        bl_lin_bwd(ly->fo, s->dbig, s->dA, ls->g, N, &ls->sfo, sc);
        zero(s->dbig2, N * F);
        act_bwd(c->act, s->dbig2, s->dbig, ls->f, ls->g, N * F);
        bl_lin_bwd(ly->fi, s->dB, s->dbig2, ls->h1, N, &ls->sfi, sc);
        /* LN1 */
        zero(s->dA, N * C);
        bl_layernorm_bwd(s->dA, pgrad(m, ly->ln1_w), pgrad(m, ly->ln1_b), s->dB, ls->a_pre, ls->mean1, ls->rstd1,
                         pdata(m, ly->ln1_w), N, C);
        bool need_dx = l > 0 || need_dx0;
        if (need_dx) memcpy(s->dcur, s->dA, (size_t)(N * C) * sizeof(float)); /* residual into x */
        zero(s->dctx, N * C);
        bl_lin_bwd(ly->ao, s->dctx, s->dA, ls->ctx, N, &ls->sao, sc);
        /* attention */
        zero(s->dq, N * C); zero(s->dk, N * C); zero(s->dv, N * C);
        if (deb_rel) zero(s->dbias, B * c->n_head * T * T);
        bl_attn_bwd(&ad, s->dq, s->dk, s->dv, deb_rel ? s->dbias : NULL, s->dattn, s->dctx, ls->q, ls->k, ls->v, ls->probs);
        if (deb_rel) {
            zero(s->dPK, S2 * C); zero(s->dPQ, S2 * C);
            bl_relbias_bwd(&rd, s->dq, s->dk, s->dPK, s->dPQ, s->dbias, ls->q, ls->k, ls->PK, ls->PQ, sc);
            float *drel = m->full_ft ? s->drel : NULL;
            bl_lin_bwd(ly->k, drel, s->dPK, s->rel_ln, S2, &ls->spk, sc);
            bl_lin_bwd(ly->q, drel, s->dPQ, s->rel_ln, S2, &ls->spq, sc);
        }
        float *dx = need_dx ? s->dcur : NULL;
        bl_lin_bwd(ly->q, dx, s->dq, x, N, &ls->sq, sc);
        bl_lin_bwd(ly->k, dx, s->dk, x, N, &ls->sk, sc);
        bl_lin_bwd(ly->v, dx, s->dv, x, N, &ls->sv, sc);
    }
    if (m->full_ft) {
        /* embeddings */
        if (c->arch == BL_ENC_DEBERTA_V2)
            for (int64_t i = 0; i < N; i++) if (!s->mask[i]) zero(s->dcur + i * C, C);
        zero(s->dA, N * C);
        bl_layernorm_bwd(s->dA, pgrad(m, m->emb_ln_w), pgrad(m, m->emb_ln_b), s->dcur, s->emb_sum, s->emb_mean,
                         s->emb_rstd, pdata(m, m->emb_ln_w), N, C);
        bl_embedding_bwd(pgrad(m, m->word), s->dA, s->ids, N, C);
        if (m->pos >= 0) bl_embedding_bwd(pgrad(m, m->pos), s->dA, s->pos_ids, N, C);
        if (m->type >= 0) bl_embedding_bwd(pgrad(m, m->type), s->dA, s->type_ids, N, C);
        if (deb_rel) {
            if (m->rel_ln_w >= 0)
                bl_layernorm_bwd(pgrad(m, m->rel), pgrad(m, m->rel_ln_w), pgrad(m, m->rel_ln_b), s->drel, pdata(m, m->rel),
                                 s->rel_mean, s->rel_rstd, pdata(m, m->rel_ln_w), S2, C);
            else
                bl_acc(pgrad(m, m->rel), s->drel, S2 * C);
        }
    }
    return BALORA_STATUS_OK;
}

balora_status bl_enc_backward(bl_enc_run *r, const float *dlogits) { return enc_backward(r, dlogits, NULL); }

balora_status bl_enc_backward_hidden(bl_enc_run *r, const float *dhidden) {
    if (!dhidden) return bl_fail(BALORA_STATUS_INVALID, "encoder backward: dhidden is NULL");
    return enc_backward(r, NULL, dhidden);
}
