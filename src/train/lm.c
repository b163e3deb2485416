/* Glue between the trainer and the engine / tokenizers (see lm.h). */
#include "train/lm.h"
#include "io/safetensors.h"
#include "method/pissa_model.h"
#include <stdlib.h>
#include <string.h>

static balora_status lm_forward(void *self, const bl_train_batch *b, bool teacher, bool training, bl_rng *rng, float **logits) {
    bl_train_lm *t = self;
    bl_batch bb = {.B = b->B, .T = b->T, .input_ids = b->ids, .attention_mask = b->mask};
    t->run.train = training && !teacher;
    if (rng) t->run.rng = *rng;
    BL_TRY(bl_model_forward(&t->run, &bb, teacher ? t->teacher_mode : BL_ADAPTER_ON));
    if (rng) *rng = t->run.rng;
    *logits = t->run.logits;
    return BALORA_STATUS_OK;
}

static balora_status lm_backward(void *self, const bl_train_batch *b, const float *dlogits) {
    bl_train_lm *t = self;
    (void)b;
    return bl_model_backward(&t->run, dlogits);
}

/* The final hidden states of the last forward and the LM head: the decoder's logits are exactly
 * hidden lm_head^T (no bias; adapters never sit on the head), so BA-LoRA's teacher needs no
 * [B, T, V] copy. */
static balora_status lm_last_hidden(void *self, const float **hidden, const float **head) {
    bl_train_lm *t = self;
    if (!t->run.have_forward || !t->run.hidden || !t->model->lm_head)
        return bl_fail(BALORA_STATUS_INTERNAL, "trainer: no forward to take the hidden states of");
    *hidden = t->run.hidden;
    *head = t->model->lm_head;
    return BALORA_STATUS_OK;
}

static balora_status lm_save(void *self, const char *dir) {
    bl_train_lm *t = self;
    if (!t->adapter) return bl_model_save(t->model, dir);
    if (t->pissa && !t->pissa_as_is) return bl_pissa_save_converted(t->adapter, dir, t->n_meta, t->meta_keys, t->meta_vals);
    return bl_lora_save(t->adapter, dir, t->n_meta, t->meta_keys, t->meta_vals);
}

static balora_status lm_alloc(bl_train_lm *t, int n) {
    for (int pass = 0; pass < 2; pass++) {
        t->tp = bl_arena_take(&t->arena, (size_t)n * sizeof *t->tp);
        t->names = bl_arena_take(&t->arena, (size_t)n * sizeof *t->names);
        t->w = bl_arena_take(&t->arena, (size_t)n * sizeof *t->w);
        t->g = bl_arena_take(&t->arena, (size_t)n * sizeof *t->g);
        t->numel = bl_arena_take(&t->arena, (size_t)n * sizeof *t->numel);
        if (pass == 0) BL_TRY(bl_arena_alloc(&t->arena));
    }
    return BALORA_STATUS_OK;
}

static balora_status lm_finish(bl_train_lm *t, bl_model *m, int64_t max_B, int64_t max_T) {
    BL_TRY(bl_run_init(&t->run, m, max_B, max_T));
    t->iface = (bl_train_model){.self = t, .n_out = m->cfg.vocab_size, .n_params = t->n, .names = t->names, .w = t->w,
                                .g = t->g, .numel = t->numel, .forward = lm_forward,
                                .backward = lm_backward, .save = lm_save,
                                .hidden_size = m->cfg.hidden, .last_hidden = lm_last_hidden};
    return BALORA_STATUS_OK;
}

static balora_status check_causal(const bl_model *m) {
    if (m->cfg.head != BL_HEAD_CAUSAL_LM)
        return bl_fail(BALORA_STATUS_UNSUPPORTED, "%s: training a %s with the causal-LM trainer; hint: sequence classification is trained elsewhere",
                       m->source, m->cfg.architecture);
    return BALORA_STATUS_OK;
}

balora_status bl_train_lm_init(bl_train_lm *t, bl_model *m, bl_adapter *a, int64_t max_B, int64_t max_T) {
    memset(t, 0, sizeof *t);
    t->model = m; t->adapter = a;
    t->teacher_mode = BL_ADAPTER_OFF;
    BL_TRY(check_causal(m));
    int n = bl_lora_trainables(a, NULL, 0);
    if (n <= 0) return bl_fail(BALORA_STATUS_INVALID, "%s: the adapter has no trainable tensors; hint: check --targets", m->source);
    BL_TRY(lm_alloc(t, n));
    t->n = bl_lora_trainables(a, t->tp, n);
    for (int i = 0; i < t->n; i++) {
        t->names[i] = t->tp[i].name;
        t->w[i] = t->tp[i].data;
        t->g[i] = t->tp[i].grad;
        t->numel[i] = t->tp[i].numel;
        if (!t->w[i] || !t->g[i]) return bl_fail(BALORA_STATUS_INTERNAL, "adapter tensor '%s' has no data or gradient", t->names[i]);
    }
    return lm_finish(t, m, max_B, max_T);
}

balora_status bl_train_lm_init_full(bl_train_lm *t, bl_model *m, int64_t max_B, int64_t max_T, bool train_embeddings) {
    memset(t, 0, sizeof *t);
    t->model = m;
    t->teacher_mode = BL_ADAPTER_OFF;
    BL_TRY(check_causal(m));
    BL_TRY(bl_model_set_full_ft(m, true));
    if (!train_embeddings) bl_model_freeze_embeddings(m);
    BL_TRY(lm_alloc(t, m->mods.n_params));
    int n = 0;
    for (int i = 0; i < m->mods.n_params; i++) {
        bl_param *p = &m->mods.params[i];
        if (!p->grad) continue; /* frozen */
        if (!p->data) return bl_fail(BALORA_STATUS_INTERNAL, "model tensor '%s' has no data", p->name);
        t->tp[n] = *p;
        t->names[n] = p->name;
        t->w[n] = p->data;
        t->g[n] = p->grad;
        t->numel[n] = p->numel;
        n++;
    }
    t->n = n;
    return lm_finish(t, m, max_B, max_T);
}

void bl_train_lm_free(bl_train_lm *t) {
    bl_run_free(&t->run);
    bl_arena_free(&t->arena);
    memset(t, 0, sizeof *t);
}

void bl_train_lm_set_meta(bl_train_lm *t, double loraplus_lr_ratio) {
    t->meta_keys[0] = "balora_version";
    t->meta_vals[0] = balora_version();
    t->n_meta = 1;
    if (loraplus_lr_ratio > 0) {
        snprintf(t->meta_buf, sizeof t->meta_buf, "%g", loraplus_lr_ratio);
        t->meta_keys[t->n_meta] = "balora_loraplus_lr_ratio";
        t->meta_vals[t->n_meta++] = t->meta_buf;
    }
}

static balora_status tok_encode(void *self, const char *text, size_t len, bool special, int32_t *ids, int64_t cap, int64_t *n) {
    bl_train_tok *t = self;
    BL_TRY(bl_tok_encode(t->tok, text, len, special, &t->enc));
    *n = (int64_t)t->enc.n;
    if (*n > 0 && *n <= cap) memcpy(ids, t->enc.ids, t->enc.n * sizeof(int32_t)); /* an empty text: ids may be NULL */
    return BALORA_STATUS_OK;
}

void bl_train_tok_init(bl_train_tok *t, bl_tok *tok, int32_t eos_id) {
    memset(t, 0, sizeof *t);
    t->tok = tok;
    t->iface.self = t;
    t->iface.encode = tok_encode;
    t->iface.eos_id = eos_id >= 0 ? eos_id : bl_tok_special(tok, BL_TOK_EOS);
}

void bl_train_tok_free(bl_train_tok *t) { bl_tok_enc_free(&t->enc); memset(t, 0, sizeof *t); }
