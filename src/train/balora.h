/* BA-LoRA's regularisers (src/method/reg.h) as the trainer's extra loss (bl_extra_loss), wrapping
 * the run's objective: per micro-batch, lambda1 L_CR (against the teacher's logits) + lambda2 L_DR
 * + lambda3 L_SVDR on the logits, with the lambdas of the configured schedules at the current step.
 *   causal LM (task nlg): the NLG terms on the [B, T, V] logits, fused with the cross-entropy
 *                         (bl_reg_nlg_fused: no [B, T, V] copy; the teacher may be kept as hidden states);
 *   sequence classification, CE or MSE (task nlu): the NLU terms on the [B, num_labels] logits
 *                         (bl_reg_apply), added to the objective's own gradient.
 * Masked LM has no BA-LoRA recipe (refused). Logged each step: l_cr, l_dr, l_svdr (unweighted)
 * and lambda1..3. */
#ifndef BL_TRAIN_BALORA_H
#define BL_TRAIN_BALORA_H
#include "train/trainer.h"

#include "method/reg.h"

typedef struct bl_train_balora {
    bl_reg_config cfg;
    const bl_train_objective *task;
    bl_reg_ws ws;
    bool t_stats;      /* ws holds the statistics of this micro-batch's teacher (teacher_seen) */
    float *z, *gz;     /* NLU: [max_rows, n_out] the student's logits and the terms' gradient */
    bl_arena arena;
    bl_extra_loss iface;
} bl_train_balora;

/* task: the run's objective (cfg.objective; NULL = causal LM); c->task must fit it (nlg for causal
 * LM, nlu for seq-cls). max_rows: logits rows of the largest micro-batch (B * T for causal LM, B
 * for seq-cls); n_out: V or num_labels. Checks the configuration. */
balora_status bl_train_balora_init(bl_train_balora *h, const bl_reg_config *c, const bl_train_objective *task,
                                   int64_t max_rows, int64_t n_out);
void bl_train_balora_free(bl_train_balora *h);

#endif
