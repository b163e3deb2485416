/* The trainer's view (bl_train_model) of a sequence classifier (bl_clsm, src/encoders/clsmodel.h:
 * an encoder, or a decoder *ForSequenceClassification) with a LoRA / PiSSA adapter attached (the
 * head as modules_to_save) or fully fine-tuned, and the tokenised examples (bl_seqcls_set,
 * src/data_glue/seqcls.h) as a trainer dataset. Logits [B, num_labels], scored by
 * bl_objective_seqcls (CE) or bl_objective_seqcls_mse (regression). */
#ifndef BL_TRAIN_CLS_H
#define BL_TRAIN_CLS_H
#include "train/trainer.h"

#include "adapters/lora.h"
#include "data_glue/seqcls.h"
#include "encoders/clsmodel.h"

#define BL_TRAIN_CLS_MAX_META 10

typedef struct bl_train_cls {
    bl_clsm *cm;
    bl_adapter *adapter;          /* NULL: full fine-tuning */
    bl_adapter_mode teacher_mode; /* BL_ADAPTER_OFF (LoRA) or BL_ADAPTER_INITIAL (PiSSA: W_res + s B0 A0, the head's initial weights) */
    bool pissa;                   /* saves convert to a plain LoRA on the original weights (bl_pissa_save_converted) */
    int n;
    const char **names;           /* [n] */
    float **w, **g;               /* [n] (the head's trainable copy when it has one) */
    int64_t *numel;               /* [n] */
    int n_meta;
    const char *meta_keys[BL_TRAIN_CLS_MAX_META], *meta_vals[BL_TRAIN_CLS_MAX_META]; /* into adapter_model.safetensors */
    bl_arena arena;
    bl_train_model iface;
} bl_train_cls;

/* a: the attached adapter, or NULL for full fine-tuning (bl_clsm_set_full_ft is switched on here).
 * Plans a run of max_B x max_T. Set pissa / teacher_mode / meta afterwards as needed. */
balora_status bl_train_cls_init(bl_train_cls *t, bl_clsm *cm, bl_adapter *a, int64_t max_B, int64_t max_T);
void bl_train_cls_free(bl_train_cls *t);

/* The examples of s as a dataset of kind CLASS: ids, token_type_ids, one class id (or regression
 * target) and one trained item per example. */
balora_status bl_train_data_seqcls(bl_train_data *d, const bl_seqcls_set *s);

#endif
