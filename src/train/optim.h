/* AdamW (exactly torch.optim.AdamW's single-tensor update), global gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_) and learning-rate schedules (transformers'
 * get_{constant,linear,cosine}_schedule_with_warmup).
 *
 * The optimizer works on a list of trainable tensors: parameter w and gradient g belong to
 * the model; the moments m and v are carved from the optimizer's ONE arena, in list order,
 * so a checkpoint is a single write of m and v. */
#ifndef BL_TRAIN_OPTIM_H
#define BL_TRAIN_OPTIM_H
#include "core/bl.h"

typedef struct bl_adamw_cfg {
    double lr;           /* peak learning rate (the schedule multiplies it) */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8, added outside the sqrt as torch does */
    double weight_decay; /* decoupled: w -= lr * wd * w before the Adam update */
    double loraplus_lr_ratio; /* LoRA+ (PEFT's create_loraplus_optimizer): the tensors of its group B
                                 (bl_loraplus_group_b) at lr * ratio, decay included; 0 = off */
} bl_adamw_cfg;
void bl_adamw_cfg_default(bl_adamw_cfg *c); /* torch defaults with weight_decay 0 */

typedef struct bl_opt_param {
    const char *name; /* key in checkpoints (not owned) */
    float *w;         /* [numel] the parameter (owned by the model) */
    float *g;         /* [numel] its gradient (owned by the model) */
    float *m;         /* [numel] first moment (carved from the optimizer's arena) */
    float *v;         /* [numel] second moment (idem) */
    int64_t numel;
    bool decay;       /* apply weight decay (transformers skips biases and norm weights) */
    double lr_mult;   /* this tensor's lr = the scheduled lr * lr_mult (1, or LoRA+'s ratio) */
} bl_opt_param;

typedef struct bl_adamw {
    bl_adamw_cfg cfg;
    int n;
    bl_opt_param *p;  /* [n] (carved from arena) */
    int64_t t;        /* optimizer steps taken (torch's state['step']) */
    int64_t total;    /* sum of numel */
    float *m_all;     /* [total] every m, contiguous in list order */
    float *v_all;     /* [total] every v */
    bl_arena arena;
} bl_adamw;

/* The one weight-decay rule of every trainer (transformers' get_decay_parameter_names): no decay
 * for biases and normalisation weights, i.e. a name containing "bias", "norm" in any case
 * (LayerNorm, RMSNorm, input_layernorm, model.norm) or GPT-2's "ln_" (ln_1, ln_f); every other
 * tensor (LoRA factors included) is decayed. */
bool bl_adamw_decays(const char *name);
/* LoRA+'s group B as PEFT forms it ("lora_B" in the name, or a 1-D tensor): of what balora trains with
 * an adapter, the B factors, DoRA's magnitude vectors and the biases of the heads trained whole
 * (modules_to_save); everything else (A factors, head weights) keeps the base lr. */
bool bl_loraplus_group_b(const char *name);

/* names/w/g/numel/decay describe n tensors; decay may be NULL (all decayed). */
balora_status bl_adamw_init(bl_adamw *o, const bl_adamw_cfg *cfg, int n, const char *const *names,
                            float *const *w, float *const *g, const int64_t *numel, const bool *decay);
void bl_adamw_free(bl_adamw *o);
/* One AdamW step at learning rate lr (the scheduled value), t += 1. Deterministic. */
void bl_adamw_step(bl_adamw *o, double lr);
/* Zero every gradient (one memset per tensor). */
void bl_adamw_zero_grad(bl_adamw *o);

/* Global L2 norm of all gradients (computed in double, fixed order); if max_norm > 0 and the
 * norm exceeds it, scales every gradient by max_norm / (norm + 1e-6) as torch does.
 * Returns the norm before clipping. */
double bl_clip_grad_norm(bl_adamw *o, double max_norm);

/* ---- learning-rate schedules ---- */
typedef enum bl_schedule {
    BL_SCHEDULE_CONSTANT = 0, /* constant after warmup */
    BL_SCHEDULE_LINEAR,       /* linear decay to 0 at the last step */
    BL_SCHEDULE_COSINE        /* half cosine to 0 */
} bl_schedule;
balora_status bl_schedule_parse(const char *name, bl_schedule *out);
const char *bl_schedule_name(bl_schedule s);
/* transformers' get_warmup_steps: warmup_steps if > 0, else ceil(total * warmup_ratio). */
int64_t bl_warmup_steps(int64_t total, int64_t warmup_steps, double warmup_ratio);
/* The multiplier of the peak lr for the optimizer step with 0-based index `step`
 * (LambdaLR: the first step uses step = 0, so warmup starts at lr 0 as in transformers). */
double bl_schedule_factor(bl_schedule s, int64_t step, int64_t warmup, int64_t total);

#endif
