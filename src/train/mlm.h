/* The trainer's view (bl_train_model) of an encoder with the masked-LM head (src/encoders/encoder.h
 * + mlm.h), for masked-LM pre-training with every weight trained (the encoder's full fine-tuning
 * mode plus the head's tensors): logits [B, T, V] = the MLM head on the last layer's hidden states,
 * scored by bl_objective_masked_lm (objective.h; labels at the masked positions, no shift). Saves
 * write a BertForMaskedLM folder (bl_mlm_save). No teacher (no adapter). */
#ifndef BL_TRAIN_MLM_H
#define BL_TRAIN_MLM_H
#include "train/trainer.h"

#include "encoders/mlm.h"

typedef struct bl_train_mlm {
    bl_encoder *enc;
    bl_enc_run run;
    bl_mlm_head head;
    float *logits;            /* [max_B * max_T, V] */
    float *dh;                /* [max_B * max_T, C] */
    int n;
    const char **names;       /* [n] encoder tensors with a gradient, then the head's */
    float **w, **g;           /* [n] */
    int64_t *numel;           /* [n] */
    bl_arena arena;
    bl_train_model iface;
} bl_train_mlm;

/* Switches enc to full fine-tuning, creates the head (seeded) and plans a run of max_B x max_T. */
balora_status bl_train_mlm_init(bl_train_mlm *t, bl_encoder *enc, int64_t max_B, int64_t max_T, uint64_t seed);
void bl_train_mlm_free(bl_train_mlm *t);
/* Forward outside training (probes): logits [B * T, V] in t->logits. */
balora_status bl_train_mlm_logits(bl_train_mlm *t, int64_t B, int64_t T, const int64_t *ids, const int64_t *mask);

#endif
