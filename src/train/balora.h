/* BA-LoRA's regularisers (src/method/reg.h) as the trainer's extra loss (bl_extra_loss):
 * per micro-batch, lambda1 L_CR (against the teacher logits) + lambda2 L_DR + lambda3 L_SVDR
 * on the causal-LM logits, with the lambdas of the configured schedules at the current step.
 * Logged each step: l_cr, l_dr, l_svdr (unweighted) and lambda1..3. */
#ifndef BL_TRAIN_BALORA_H
#define BL_TRAIN_BALORA_H
#include "train/trainer.h"

#include "method/reg.h"

typedef struct bl_train_balora {
    bl_reg_config cfg;
    bl_reg_ws ws;
    bool t_stats;      /* ws holds the statistics of this micro-batch's teacher (teacher_seen) */
    bl_extra_loss iface;
} bl_train_balora;

/* max_rows: B * T of the largest micro-batch; V: vocabulary size. Checks the configuration. */
balora_status bl_train_balora_init(bl_train_balora *h, const bl_reg_config *c, int64_t max_rows, int64_t V);
void bl_train_balora_free(bl_train_balora *h);

#endif
