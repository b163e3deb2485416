/* A task, as the trainer (trainer.h) sees it: the loss and its gradient on the model's outputs.
 * The model (bl_train_model) does forward and backward; the objective scores the logits of one
 * micro-batch against what the batch carries for the task (bl_train_batch, data.h):
 *
 *   bl_objective_causal_lm   logits [B, T, V]; position t scores labels[t + 1] (the causal shift,
 *                            as transformers does); -100 ignored. Label kind NEXT_TOKEN.
 *   bl_objective_masked_lm   logits [B, T, V]; position t scores labels[t] (no shift: the masked
 *                            positions carry their original token); -100 ignored. Kind TOKEN.
 *   bl_objective_seqcls      logits [B, num_labels]; cross-entropy against cls_labels
 *                            (-100 ignored), or with regression the mean squared error against
 *                            targets ([B, 1] logits). Kind CLASS.
 *
 * loss() sets *sum to the summed loss over the trained items (tokens or examples) and *count to
 * their number; with dlogits non-NULL it writes scale * d(sum)/d(logits) there (every element;
 * untrained rows 0; dlogits may alias logits). The trainer's step loss is sum / trained items of
 * the step, so gradient accumulation matches one big batch. BA-LoRA wraps any objective as the
 * trainer's extra loss (balora.h). */
#ifndef BL_TRAIN_OBJECTIVE_H
#define BL_TRAIN_OBJECTIVE_H
#include "train/data.h"

typedef struct bl_train_objective {
    const char *name;            /* "causal-lm", "masked-lm", "seq-cls", "seq-cls-mse" */
    bl_train_label_kind kind;    /* the label kind its batches must have */
    bool per_token;              /* logits [B, T, n_out] (true) or [B, n_out] */
    balora_status (*loss)(const struct bl_train_objective *o, const bl_train_batch *b, const float *logits, int64_t n_out,
                          float scale, float *dlogits, double *sum, int64_t *count);
} bl_train_objective;

extern const bl_train_objective bl_objective_causal_lm;
extern const bl_train_objective bl_objective_masked_lm;
extern const bl_train_objective bl_objective_seqcls;     /* cross-entropy over num_labels classes */
extern const bl_train_objective bl_objective_seqcls_mse; /* regression (num_labels 1) */

/* Cross-entropy with the causal shift (position t predicts labels[t + 1]; -100 ignored) over
 * logits [B, T, V], through the engine's bl_xent: the summed loss in *sum, the trained count in
 * *count. If dlogits ([B, T, V]) is non-NULL, writes scale * d(sum)/d(logits) into it (every
 * element: untrained rows get 0). Deterministic for a given thread count. */
balora_status bl_causal_ce(const float *logits, const int64_t *labels, int64_t B, int64_t T, int64_t V,
                           float scale, float *dlogits, double *sum, int64_t *count);

#endif
