/* The trainer's view (bl_train_model) of a causal LM from src/model with an adapter from
 * src/adapters attached, and the tokenizer seam (bl_train_tokenizer) over src/tok. */
#ifndef BL_TRAIN_LM_H
#define BL_TRAIN_LM_H
#include "train/trainer.h"

#include "adapters/lora.h"
#include "model/model.h"

typedef struct bl_train_lm {
    bl_model *model;
    bl_adapter *adapter;     /* NULL for full fine-tuning */
    bl_adapter_mode teacher_mode; /* BL_ADAPTER_OFF (LoRA) or BL_ADAPTER_INITIAL (PiSSA) */
    bl_run run;
    int n;
    bl_param *tp;        /* [n] trainables (bl_lora_trainables) */
    const char **names;  /* [n] */
    float **w, **g;      /* [n] */
    int64_t *numel;      /* [n] */
    bool pissa;          /* PiSSA-initialised (bl_pissa_init_adapter): saves convert to a plain LoRA on the original W */
    bool pissa_as_is;    /* PiSSA: save the factors as trained (init_lora_weights "pissa"; valid on W_res) */
    int n_meta;
    const char *meta_keys[4], *meta_vals[4]; /* written into adapter_model.safetensors */
    char meta_buf[32];   /* bl_train_lm_set_meta's value text */
    bl_arena arena;
    bl_train_model iface;
} bl_train_lm;

/* Wraps a loaded model whose adapter is attached; plans a run for max_B x max_T tokens. */
balora_status bl_train_lm_init(bl_train_lm *t, bl_model *m, bl_adapter *a, int64_t max_B, int64_t max_T);
void bl_train_lm_free(bl_train_lm *t);
/* The metadata every trained adapter records: balora_version, and balora_loraplus_lr_ratio when LoRA+
 * is on (an optimizer setting PEFT's adapter_config.json does not hold). */
void bl_train_lm_set_meta(bl_train_lm *t, double loraplus_lr_ratio);

/* Full fine-tuning: every base tensor of m is trainable (gradients allocated by
 * bl_model_set_full_ft), except the embeddings and the LM head unless train_embeddings (the
 * paper's baseline freezes them; pre-training from scratch trains them). Weight decay as
 * transformers: not on biases and norm weights. Saves write a model folder (bl_model_save).
 * No teacher (BA-LoRA needs an adapter). */
balora_status bl_train_lm_init_full(bl_train_lm *t, bl_model *m, int64_t max_B, int64_t max_T, bool train_embeddings);

#include "tok/tok.h"
typedef struct bl_train_tok {
    bl_tok *tok;
    bl_tok_enc enc;
    bl_train_tokenizer iface;
} bl_train_tok;
/* eos_id < 0: the tokenizer's EOS. */
void bl_train_tok_init(bl_train_tok *t, bl_tok *tok, int32_t eos_id);
void bl_train_tok_free(bl_train_tok *t);

#endif
