/* The one training loop of every task: epochs or max steps, the epoch shuffle, gradient
 * accumulation, clipping, LR schedule, AdamW (one weight-decay rule: bl_adamw_decays), progress
 * and metrics, checkpoints and resume. Same seed + data + thread count -> bit-identical trainable
 * tensors, with or without a kill-and-resume in the middle.
 *
 * A task is an objective (objective.h: causal LM, masked LM, sequence classification with CE or
 * MSE) over a model (bl_train_model below: lm.h decoders, cls.h classifiers, mlm.h encoder + MLM
 * head); BA-LoRA wraps any objective as the extra loss (balora.h).
 *
 * One optimizer step = grad_accum micro-batches of batch_size examples. The loss of a step is
 * the mean objective loss over every trained item (token, or example for seq-cls) of its
 * micro-batches (transformers >= 4.46 with num_items_in_batch): each micro-batch's gradient is
 * weighted by its share of the step's trained items, so accumulation matches one big batch
 * exactly (up to float rounding). The last step of an epoch takes the micro-batches that are
 * left (fewer than grad_accum). */
#ifndef BL_TRAIN_TRAINER_H
#define BL_TRAIN_TRAINER_H
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/objective.h"
#include "train/optim.h"
#include "train/progress.h"

/* The model as the trainer sees it: the engine's run API plugs in here. */
typedef struct bl_train_model {
    void *self;
    int64_t n_out;            /* outputs per logits row: the vocabulary (LMs) or num_labels (classifiers) */
    /* trainable tensors (the adapter): parameter and gradient arrays owned by the model */
    int n_params;
    const char *const *names; /* [n_params] keys (as in adapter_model.safetensors) */
    float *const *w;          /* [n_params] */
    float *const *g;          /* [n_params] */
    const int64_t *numel;     /* [n_params] (weight decay: by name, bl_adamw_decays) */
    /* Forward on b (b->B <= the batch size, b->T <= max_len). *logits ([B, T, V] or [B, n_out]) stays
     * valid until the next forward. teacher: the frozen reference model (adapter off /
     * PiSSA's initial factors), no backward follows. training: dropout on, drawing from rng. */
    balora_status (*forward)(void *self, const bl_train_batch *b, bool teacher, bool training, bl_rng *rng, float **logits);
    /* Optional (NULL: the trainer keeps the teacher's [B, T, V] logits): after a forward, its final
     * hidden states [B, T, hidden_size] (valid until the next forward) and the LM head [V, hidden_size]
     * such that logits = hidden head^T exactly (no bias, no adapter on the head). The trainer then
     * keeps only the teacher's hidden states and BA-LoRA recomputes its logits a block at a time. */
    int64_t hidden_size;
    balora_status (*last_hidden)(void *self, const float **hidden, const float **head);
    /* Backward of the last student forward: adds d(loss)/d(param) for dlogits (the logits' shape) into g.
     * dlogits may be the logits buffer returned by forward (overwritten in place). */
    balora_status (*backward)(void *self, const bl_train_batch *b, const float *dlogits);
    /* Writes the trainable tensors as an adapter folder (PEFT format for LoRA). May be NULL. */
    balora_status (*save)(void *self, const char *dir);
} bl_train_model;

/* The teacher as the extra loss gets it: its logits [B, T, V], or (no [B, T, V] copy) its final
 * hidden states [B, T, C] and the LM head [V, C] (logits = hidden head^T). */
typedef struct bl_train_teacher {
    const float *logits;
    const float *hidden;
    const float *head;
    int64_t C;
} bl_train_teacher;

/* An extra loss on the logits (BA-LoRA's terms plug in here, wrapping the run's objective).
 * Called once per micro-batch after the task loss value is taken, before backward; it writes
 * the whole gradient (task + extra) over the logits in place, so no [B, T, V] gradient buffer
 * exists. */
typedef struct bl_extra_loss {
    void *self;
    int n_terms;                     /* <= BL_MAX_EXTRA - 1 values logged each step */
    const char *const *term_names;   /* [n_terms] */
    bool needs_teacher;              /* the trainer runs a teacher forward first */
    /* Optional: called right after the teacher forward with its logits [B, T, V] (valid only during
     * the call) when the trainer keeps the teacher as hidden states: take what is needed of them. */
    balora_status (*teacher_seen)(void *self, const bl_train_batch *b, const float *teacher_logits, int64_t V);
    /* logits ([B, T, V] or [B, n_out]): on entry the student's logits, on return
     *     ce_scale * d(summed objective loss)/d(logits) + scale * d(extra)/d(logits)
     * (every element; the task part what the objective's loss(.., ce_scale, ..) writes, up to float
     * rounding). teacher: NULL unless needs_teacher; b->labels unshifted. step: 0-based optimizer
     * step, total: planned steps (for lambda schedules). Sets *loss to the extra loss of this
     * micro-batch (already weighted by its lambdas) and terms[0..n_terms) to the values to log. */
    balora_status (*fn)(void *self, const bl_train_batch *b, float *logits, const bl_train_teacher *teacher, int64_t V,
                        int64_t step, int64_t total, float ce_scale, float scale, double *loss, double *terms);
} bl_extra_loss;

typedef struct bl_train_cfg {
    const bl_train_objective *objective; /* the task; NULL = bl_objective_causal_lm */
    bl_adamw_cfg adam;
    bl_schedule schedule;
    double warmup_ratio;      /* used when warmup_steps == 0 */
    int64_t warmup_steps;
    double max_grad_norm;     /* 1.0 (transformers' default); 0 = no clipping */
    int64_t batch_size;       /* examples per micro-batch */
    int64_t grad_accum;       /* micro-batches per optimizer step */
    int64_t epochs;           /* used when max_steps == 0 */
    int64_t max_steps;        /* > 0: stop after this many steps (cycling through epochs) */
    uint64_t seed;            /* data order and dropout */
    bool no_shuffle;
    bool pad_to_max;          /* [B, max_len] batches instead of padding to the longest */
    int32_t pad_id;
    int64_t max_len;
    const char *out_dir;      /* checkpoints go to out_dir/checkpoint-STEP; NULL = none */
    int64_t save_every;       /* 0 = no checkpoints */
    int save_keep;            /* keep the last N checkpoints (0 = all) */
    const char *resume;       /* NULL, a checkpoint folder, or "latest" (in out_dir) */
    const char *log_path;     /* metrics log (.jsonl or .csv); NULL = none */
    const char *config_json;  /* recorded as config.json in each checkpoint; may be NULL */
    bl_progress_fn progress;
    void *progress_user;
    int64_t stop_after;       /* tests: stop after this step as if the process were killed (0 = off) */
} bl_train_cfg;
void bl_train_cfg_default(bl_train_cfg *c);

typedef struct bl_train_result {
    int64_t steps;            /* optimizer steps done in total (including before a resume) */
    int64_t resumed_from;     /* 0 or the checkpoint's step */
    double first_loss, last_loss; /* of the first and last step run in this process */
    double seconds;
    int64_t tokens;           /* real tokens seen in this process */
} bl_train_result;

/* The planned number of optimizer steps for n examples. */
int64_t bl_train_total_steps(const bl_train_cfg *c, int64_t n_examples);

/* Runs the loop. extra may be NULL. */
balora_status bl_train_run(const bl_train_cfg *cfg, const bl_train_model *model, const bl_train_data *data,
                           const bl_extra_loss *extra, bl_train_result *res);

#endif
