/* Sequence-classification fine-tuning of an encoder (or of a decoder *ForSequenceClassification
 * checkpoint such as GPT2ForSequenceClassification, through clsmodel.h), end to end: GLUE / generic data with the data
 * knobs, tokenisation, LoRA / PiSSA / BA-LoRA adapters (or full fine-tuning) with the head as
 * modules_to_save, trained by the one training loop (src/train/trainer.h: the seq-cls objective,
 * AdamW with warmup + schedule, gradient clipping, atomic checkpoints and a bit-identical --resume),
 * then the dev-set GLUE metrics (src/eval/metrics.h) and the outputs:
 *   out_dir/adapter/      PEFT adapter (PiSSA / BA-LoRA converted to a plain LoRA on the original
 *                         weights, as PEFT's path_initial_model_for_weight_conversion), with the
 *                         run's settings and the data knobs' metadata in its safetensors __metadata__
 *   out_dir/model/        full fine-tuning: the whole encoder (config.json + model.safetensors)
 *   out_dir/results.json  data metadata (exact knob effects), training losses, dev metrics
 *   out_dir/checkpoint-STEP/  with save_every: the adapter (or model) at that step + trainer state.
 * One call does it all (what `balora train --task seq-cls` needs):
 *
 *     bl_seqcls_ft_cfg c; bl_seqcls_ft_default(&c);
 *     c.model = "roberta-large"; c.task = BL_GLUE_TASK_SST2; c.train = ".../train.tsv"; c.dev = ".../dev.tsv";
 *     c.method = "ba-lora"; c.knobs.label_noise = 0.2; c.out_dir = "runs/sst2";
 *     bl_seqcls_ft_result r; BL_TRY(bl_seqcls_finetune(&c, &r));
 *
 * Progress goes to bl_log (BL_INFO every log_every steps). Deterministic for a given seed and
 * thread count. */
#ifndef BL_ENC_FINETUNE_H
#define BL_ENC_FINETUNE_H
#include "adapters/lora.h"
#include "data_glue/data.h"
#include "encoders/clsmodel.h"
#include "encoders/encoder.h"
#include "eval/metrics.h"
#include "method/reg.h"
#include "train/optim.h"
#include "train/progress.h"
#include "train/trainer.h"

typedef struct bl_seqcls_ft_cfg {
    const char *model;         /* HF encoder folder */
    const char *tokenizer;     /* NULL: the model folder */
    bl_glue_task task;         /* a GLUE layout, or BL_GLUE_TASK_GENERIC with spec */
    const bl_data_spec *spec;  /* generic files (NULL: text/label defaults) */
    const char *train, *dev;   /* dev may be NULL */
    bool skip_bad_rows;        /* GLUE TSVs: skip (and count) malformed rows instead of failing */
    const char *out_dir;       /* NULL: nothing written */
    bl_data_knobs knobs;       /* label noise, imbalance, max_train (training set only; knobs.seed is
                                  their own seed, independent of `seed`) */
    const char *method;        /* "lora" (default), "pissa", "ba-lora" (PiSSA + the NLU terms), "full" */
    bl_lora_config lora;       /* r, alpha, dropout, targets (default r 8, alpha 8; no targets: the
                                  architecture table's default, model/arch.h) */
    int pissa_niter;           /* < 0: exact SVD (default); K >= 0: randomized with K power iterations */
    bl_reg_config reg;         /* BA-LoRA's lambdas, k, schedules (default: paper-v1 NLU) */
    bl_adamw_cfg adam;         /* lr 2e-4 default, no weight decay */
    bl_schedule schedule;      /* default linear */
    double warmup_ratio;       /* default 0.06 */
    int64_t warmup_steps;      /* > 0: warmup steps (overrides warmup_ratio) */
    double max_grad_norm;      /* default 1.0 (0 = off) */
    int64_t batch;             /* examples per micro-batch (default 32) */
    int64_t grad_accum;        /* micro-batches per optimizer step (default 1); the step's loss is the mean
                                  over its examples, so accumulation matches one big batch (CE / MSE) */
    int64_t epochs;            /* default 3 (used when max_steps == 0) */
    int64_t max_steps;         /* > 0: stop after this many steps */
    int64_t max_len;           /* tokens per example (default 128) */
    int64_t num_labels;        /* generic data: classifier outputs (0 = the data's label count) */
    uint64_t seed;             /* adapter init, data order, dropout (default 42) */
    int64_t log_every;         /* default 10 */
    /* Per optimizer step (as src/train/trainer.h): progress(p, progress_user) after each step (NULL =
     * none; then the loss goes to bl_log every log_every steps), and a metrics log file (.jsonl, or
     * .csv by its name; NULL = none). BA-LoRA adds the extra values l_cr, l_dr, l_svdr, lambda1..3.
     * p->loss = task loss + the weighted BA-LoRA terms, p->tokens = real (non-padding) tokens. */
    bl_progress_fn progress;
    void *progress_user;
    const char *log_path;
    const char *config_json;   /* the run's options as JSON text: recorded in results.json as "config" and in each
                                  checkpoint as config.json (NULL = none) */
    /* checkpoints (src/train/checkpoint.h) in out_dir/checkpoint-STEP: every save_every steps (0 = none),
     * keeping the last save_keep (0 = all; default 3); resume: a checkpoint folder or "latest" (same
     * options and data: the run then ends bit-identical to an uninterrupted one); stop_after: tests,
     * stop after this step as if killed (no dev scores, no outputs). */
    int64_t save_every;
    int save_keep;
    const char *resume;
    int64_t stop_after;
} bl_seqcls_ft_cfg;
void bl_seqcls_ft_default(bl_seqcls_ft_cfg *c);

typedef struct bl_seqcls_ft_result {
    int64_t steps;             /* optimizer steps done in total (including those before a resume) */
    int64_t resumed_from;      /* 0 or the checkpoint's step */
    bool stopped;              /* stop_after ended the run early: nothing scored or written but checkpoints */
    int64_t n_train;           /* examples after the knobs */
    bl_data_meta train_meta;   /* the training file as loaded and what the knobs did (exact counts) */
    double first_loss, last_loss; /* mean task loss of the first / last log_every steps run in this process */
    double seconds;
    bool have_dev;
    bl_glue_result dev;        /* dev-set metrics (task GENERIC: accuracy, F1, MCC) */
} bl_seqcls_ft_result;

balora_status bl_seqcls_finetune(const bl_seqcls_ft_cfg *c, bl_seqcls_ft_result *res);

#endif
