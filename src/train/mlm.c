/* The trainer's view of an encoder + masked-LM head (see mlm.h). */
#include "train/mlm.h"
#include <string.h>

balora_status bl_train_mlm_logits(bl_train_mlm *t, int64_t B, int64_t T, const int64_t *ids, const int64_t *mask) {
    bl_enc_batch eb = {B, T, ids, mask, NULL};
    BL_TRY(bl_enc_forward(&t->run, &eb, BL_ADAPTER_ON));
    return bl_mlm_forward(&t->head, bl_enc_layer_hidden(&t->run, t->enc->cfg.n_layer), B * T, t->logits);
}

static balora_status mlm_forward(void *self, const bl_train_batch *b, bool teacher, bool training, bl_rng *rng, float **logits) {
    (void)teacher; (void)training; (void)rng; /* no adapter, no dropout */
    bl_train_mlm *t = self;
    BL_TRY(bl_train_mlm_logits(t, b->B, b->T, b->ids, b->mask));
    *logits = t->logits;
    return BALORA_STATUS_OK;
}

static balora_status mlm_backward(void *self, const bl_train_batch *b, const float *dlogits) {
    (void)b;
    bl_train_mlm *t = self;
    BL_TRY(bl_mlm_backward(&t->head, dlogits, t->dh));
    return bl_enc_backward_hidden(&t->run, t->dh);
}

static balora_status mlm_save(void *self, const char *dir) {
    bl_train_mlm *t = self;
    return bl_mlm_save(&t->head, dir);
}

balora_status bl_train_mlm_init(bl_train_mlm *t, bl_encoder *enc, int64_t B, int64_t T, uint64_t seed) {
    memset(t, 0, sizeof *t);
    t->enc = enc;
    BL_TRY(bl_enc_set_full_ft(enc, true));
    BL_TRY(bl_enc_run_init(&t->run, enc, B, T));
    BL_TRY(bl_mlm_head_init(&t->head, enc, B * T, seed));
    int64_t V = enc->cfg.vocab_size, C = enc->cfg.hidden;
    int n = 0, ne = enc->mods.n_params;
    for (int i = 0; i < ne; i++) n += enc->mods.params[i].grad != NULL;
    n += BL_MLM_N_PARAMS;
    for (int pass = 0; pass < 2; pass++) {
        t->logits = bl_arena_take(&t->arena, sizeof(float) * (size_t)(B * T * V));
        t->dh = bl_arena_take(&t->arena, sizeof(float) * (size_t)(B * T * C));
        t->names = bl_arena_take(&t->arena, (size_t)n * sizeof *t->names);
        t->w = bl_arena_take(&t->arena, (size_t)n * sizeof *t->w);
        t->g = bl_arena_take(&t->arena, (size_t)n * sizeof *t->g);
        t->numel = bl_arena_take(&t->arena, (size_t)n * sizeof *t->numel);
        if (pass == 0) BL_TRY(bl_arena_alloc(&t->arena));
    }
    int k = 0;
    for (int i = 0; i < ne; i++) {
        bl_param *q = &enc->mods.params[i];
        if (!q->grad) continue; /* the classifier (modules_to_save) has no gradient here: unused by MLM */
        t->names[k] = q->name; t->w[k] = q->data; t->g[k] = q->grad; t->numel[k] = q->numel;
        k++;
    }
    for (int i = 0; i < BL_MLM_N_PARAMS; i++, k++) {
        t->names[k] = bl_mlm_param_name(i); t->w[k] = t->head.p[i]; t->g[k] = t->head.g[i]; t->numel[k] = t->head.numel[i];
    }
    t->n = k;
    t->iface = (bl_train_model){.self = t, .n_out = V, .n_params = k, .names = t->names, .w = t->w, .g = t->g,
                                .numel = t->numel, .forward = mlm_forward, .backward = mlm_backward, .save = mlm_save};
    return BALORA_STATUS_OK;
}

void bl_train_mlm_free(bl_train_mlm *t) {
    bl_enc_run_free(&t->run);
    bl_mlm_head_free(&t->head);
    bl_arena_free(&t->arena);
    memset(t, 0, sizeof *t);
}
