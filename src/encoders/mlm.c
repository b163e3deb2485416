/* The masked-language-model head (mlm.h). */
#include "encoders/mlm.h"
#include "io/json.h"
#include "io/safetensors.h"
#include <stdio.h>
#include "ops/ops.h"
#include <string.h>

const char *bl_mlm_param_name(int i) {
    static const char *const n[BL_MLM_N_PARAMS] = {
        "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"};
    return i >= 0 && i < BL_MLM_N_PARAMS ? n[i] : "?";
}

balora_status bl_mlm_head_init(bl_mlm_head *h, bl_encoder *enc, int64_t max_N, uint64_t seed) {
    memset(h, 0, sizeof *h);
    if (!enc || enc->word < 0) return bl_fail(BALORA_STATUS_INVALID, "mlm head: the encoder has no word embeddings");
    if (enc->cfg.arch != BL_ENC_BERT)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "mlm head: model_type %s; hint: the masked-LM head is BERT's (bert)",
                       enc->cfg.model_type);
    if (enc->cfg.act != BL_ENC_ACT_GELU && enc->cfg.act != BL_ENC_ACT_GELU_TANH)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "mlm head: hidden_act of the transform must be gelu or gelu_new here");
    if (max_N < 1) return bl_fail(BALORA_STATUS_INVALID, "mlm head: max_N %lld must be >= 1", (long long)max_N);
    int64_t C = enc->cfg.hidden, V = enc->cfg.vocab_size;
    h->enc = enc;
    h->C = C;
    h->V = V;
    h->max_N = max_N;
    h->eps = (float)enc->cfg.ln_eps;
    int64_t numel[BL_MLM_N_PARAMS] = {C * C, C, C, C, V};
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < BL_MLM_N_PARAMS; i++) {
            h->numel[i] = numel[i];
            h->p[i] = bl_arena_take(&h->arena, (size_t)numel[i] * sizeof(float));
            h->g[i] = bl_arena_take(&h->arena, (size_t)numel[i] * sizeof(float));
        }
        float **buf[] = {&h->h, &h->pre, &h->act, &h->y, &h->dy, &h->dact, &h->dpre};
        for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++) *buf[i] = bl_arena_take(&h->arena, (size_t)(max_N * C) * sizeof(float));
        h->mean = bl_arena_take(&h->arena, (size_t)max_N * sizeof(float));
        h->rstd = bl_arena_take(&h->arena, (size_t)max_N * sizeof(float));
        if (pass == 0) BL_TRY(bl_arena_alloc(&h->arena));
    }
    bl_rng r;
    bl_rng_seed(&r, seed ^ 0x6d6c6d68656164ULL);
    float sd = (float)(enc->cfg.init_range > 0 ? enc->cfg.init_range : 0.02);
    for (int64_t i = 0; i < C * C; i++) h->p[0][i] = sd * bl_rng_normal(&r);
    for (int64_t i = 0; i < C; i++) h->p[2][i] = 1.0f; /* LayerNorm weight; biases stay 0 */
    return BALORA_STATUS_OK;
}

void bl_mlm_head_free(bl_mlm_head *h) {
    bl_arena_free(&h->arena);
    memset(h, 0, sizeof *h);
}

balora_status bl_mlm_forward(bl_mlm_head *h, const float *hidden, int64_t N, float *logits) {
    if (!h->arena.base) return bl_fail(BALORA_STATUS_INVALID, "mlm head: not initialised");
    if (N < 1 || N > h->max_N)
        return bl_fail(BALORA_STATUS_INVALID, "mlm head: %lld rows; the head was sized for 1..%lld", (long long)N, (long long)h->max_N);
    int64_t C = h->C, V = h->V;
    const float *E = h->enc->mods.params[h->enc->word].data; /* [V, C] */
    h->N = N;
    memcpy(h->h, hidden, (size_t)(N * C) * sizeof(float));
    bl_linear_fwd(h->pre, h->h, h->p[0], h->p[1], N, C, C, false);
    if (h->enc->cfg.act == BL_ENC_ACT_GELU_TANH) bl_gelu_tanh_fwd(h->act, h->pre, N * C);
    else bl_gelu_erf_fwd(h->act, h->pre, N * C);
    bl_layernorm_fwd(h->y, h->mean, h->rstd, h->act, h->p[2], h->p[3], N, C, h->eps);
    bl_linear_fwd(logits, h->y, E, h->p[4], N, C, V, false);
    return BALORA_STATUS_OK;
}

balora_status bl_mlm_backward(bl_mlm_head *h, const float *dlogits, float *dhidden) {
    if (!h->arena.base || h->N < 1) return bl_fail(BALORA_STATUS_INVALID, "mlm head: backward without a forward");
    int64_t N = h->N, C = h->C, V = h->V;
    const bl_param *we = &h->enc->mods.params[h->enc->word];
    memset(h->dy, 0, (size_t)(N * C) * sizeof(float));
    bl_linear_bwd(h->dy, we->grad, h->g[4], dlogits, h->y, we->data, N, C, V);
    memset(h->dact, 0, (size_t)(N * C) * sizeof(float));
    bl_layernorm_bwd(h->dact, h->g[2], h->g[3], h->dy, h->act, h->mean, h->rstd, h->p[2], N, C);
    memset(h->dpre, 0, (size_t)(N * C) * sizeof(float));
    if (h->enc->cfg.act == BL_ENC_ACT_GELU_TANH) bl_gelu_tanh_bwd(h->dpre, h->dact, h->pre, N * C);
    else bl_gelu_erf_bwd(h->dpre, h->dact, h->pre, N * C);
    memset(dhidden, 0, (size_t)(N * C) * sizeof(float));
    bl_linear_bwd(dhidden, h->g[0], h->g[1], h->dpre, h->h, h->p[0], N, C, C);
    return BALORA_STATUS_OK;
}

balora_status bl_mlm_save(const bl_mlm_head *h, const char *dir) {
    if (!h->arena.base) return bl_fail(BALORA_STATUS_INVALID, "mlm head: not initialised");
    const bl_encoder *m = h->enc;
    BL_TRY(bl_mkdir_p(dir));
    bl_enc_config c = m->cfg;
    snprintf(c.architecture, sizeof c.architecture, "BertForMaskedLM");
    cJSON *j;
    BL_TRY(bl_enc_config_json(&c, &j));
    cJSON_DeleteItemFromObjectCaseSensitive(j, "num_labels");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "problem_type");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "id2label");
    cJSON_DeleteItemFromObjectCaseSensitive(j, "label2id");
    char path[4200];
    balora_status st = bl_path_join(path, sizeof path, dir, "config.json");
    if (!st) st = bl_json_save(j, path);
    cJSON_Delete(j);
    if (st) return st;
    bl_st_writer w;
    bl_st_writer_init(&w);
    for (int i = 0; i < m->mods.n_params && !st; i++) {
        bool head = i == m->head_w || i == m->head_b || i == m->head_dense_w || i == m->head_dense_b ||
                    (m->pooler && (i == m->pooler->w_param || i == m->pooler->b_param));
        if (head) continue;
        const bl_param *p = &m->mods.params[i];
        st = bl_st_writer_add(&w, p->name, BL_DTYPE_F32, p->ndim, p->shape, p->data);
    }
    for (int i = 0; i < BL_MLM_N_PARAMS && !st; i++) {
        int64_t shape[2] = {i == 0 ? h->C : h->numel[i], h->C};
        st = bl_st_writer_add(&w, bl_mlm_param_name(i), BL_DTYPE_F32, i == 0 ? 2 : 1, shape, h->p[i]);
    }
    if (!st) st = bl_st_writer_meta(&w, "format", "pt");
    if (!st) st = bl_path_join(path, sizeof path, dir, "model.safetensors");
    if (!st) st = bl_st_writer_save(&w, path);
    bl_st_writer_free(&w);
    return st;
}

int64_t bl_mlm_mask(int32_t *ids, int32_t *labels, const bool *maskable, int64_t n, double p, int32_t mask_id,
                    int32_t rand_lo, int32_t rand_hi, bl_rng *rng) {
    int64_t picked = 0;
    for (int64_t i = 0; i < n; i++) {
        labels[i] = -100;
        if (maskable && !maskable[i]) continue;
        if (!(bl_rng_uniform(rng) < p)) continue;
        labels[i] = ids[i];
        picked++;
        double u = bl_rng_uniform(rng);
        if (u < 0.8) ids[i] = mask_id;
        else if (u < 0.9 && rand_hi > rand_lo) ids[i] = rand_lo + (int32_t)bl_rng_below(rng, (uint64_t)(rand_hi - rand_lo));
    }
    return picked;
}
